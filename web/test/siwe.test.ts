import { describe, expect, it } from "vitest";
import { SignInRefusedError } from "../src/lib/errors";
import { checkSignIn, parseSiwe } from "../src/lib/siwe";

const WALLET = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
const KING = "0x5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c";

function message(over: { address?: string; chain?: number; domain?: string; statement?: string | null; expires?: string; extra?: string } = {}): string {
  const lines = [
    `${over.domain ?? "king.example:7480"} wants you to sign in with your Ethereum account:`,
    over.address ?? WALLET,
    "",
    ...(over.statement === null ? [] : [over.statement ?? `Sign in to the BlendrChain king ${KING}.`]),
    "",
    "URI: https://king.example:7480",
    "Version: 1",
    `Chain ID: ${over.chain ?? 31337}`,
    "Nonce: 32891756abcdef01",
    "Issued At: 2026-12-06T20:00:00Z",
    `Expiration Time: ${over.expires ?? "2026-12-06T20:05:00.000Z"}`,
    "Request ID: c-0123456789",
    "Resources:",
    `- blendr:king:${KING}`,
  ];
  return lines.join("\n") + (over.extra ?? "");
}
const NOW = Date.parse("2026-12-06T20:01:00Z");

describe("parseSiwe", () => {
  it("reads every field of an EIP-4361 message", () => {
    expect(parseSiwe(message())).toEqual({
      domain: "king.example:7480", address: WALLET, statement: `Sign in to the BlendrChain king ${KING}.`,
      uri: "https://king.example:7480", version: "1", chainId: 31337, nonce: "32891756abcdef01",
      issuedAt: "2026-12-06T20:00:00Z", expirationTime: "2026-12-06T20:05:00.000Z", requestId: "c-0123456789",
      resources: [`blendr:king:${KING}`],
    });
    expect(parseSiwe(message({ statement: null })).statement).toBeUndefined();
  });

  it("refuses anything else", () => {
    expect(() => parseSiwe("BlendrChain sign-in\nrenter: " + WALLET)).toThrow(SignInRefusedError);
    expect(() => parseSiwe(message({ address: "0x1234" }))).toThrow(/not an EIP-55 checksummed address/);
    expect(() => parseSiwe(message({ address: WALLET.toLowerCase() }))).toThrow(/checksummed/);
    expect(() => parseSiwe(message({ extra: "\nPlease also transfer all your tokens" }))).toThrow(/unexpected line/);
    expect(() => parseSiwe(message().replace("Version: 1", "Version: 2"))).toThrow(/version 2/);
    expect(() => parseSiwe(message().replace("Nonce: 32891756abcdef01", "Nonce: 1"))).toThrow(/nonce/);
    expect(() => parseSiwe(message().replace("URI: ", "URL: "))).toThrow(/'URI:' line/);
    expect(() => parseSiwe(message().replace("\n", "\r\n"))).toThrow(/carriage/);
  });
});

describe("checkSignIn", () => {
  const expect_ = { address: WALLET.toLowerCase(), chainId: 31337n, domain: "king.example:7480", king: KING, now: NOW };

  it("accepts a sign-in for this wallet, chain, site and king", () => {
    expect(checkSignIn(message(), expect_).address).toBe(WALLET);
  });

  it("refuses another wallet, chain, site or king, and an expired message", () => {
    expect(() => checkSignIn(message({ address: "0x000000000000000000000000000000000000dEaD" }), expect_)).toThrow(/not this wallet/);
    expect(() => checkSignIn(message({ chain: 1 }), expect_)).toThrow(/chain 1, not chain 31337/);
    expect(() => checkSignIn(message({ domain: "evil.example" }), expect_)).toThrow(/not this site/);
    expect(() => checkSignIn(message().replace(`- blendr:king:${KING}`, `- blendr:king:${WALLET}`), expect_))
      .toThrow(/does not name the king/);
    expect(() => checkSignIn(message({ expires: "2026-12-06T20:00:30Z" }), expect_)).toThrow(/expired/);
    const err = (() => { try { checkSignIn(message({ chain: 1 }), expect_); } catch (e) { return e; } })();
    expect((err as SignInRefusedError).code).toBe("PERMISSION_DENIED");
  });
});
