import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it, vi } from "vitest";
import { OfferSchema } from "../src/gen/protos/blendr/v1/renter_pb";

// The real formatter comes from the renter logic (web/src/lib); this stand-in makes the messages checkable.
vi.mock("../src/lib/format", () => ({
  formatTokens: (wei: bigint | string) => `${BigInt(wei) / 10n ** 18n}`,
}));

const { describeError, InputError, MaxPriceError, NoWalletError, WrongChainError } = await import("../src/errors");
const { InsufficientBalanceError, InvalidArgumentError, NoProviderError, PayloadTooLargeError, RenterError, SignInRefusedError } =
  await import("../src/lib/errors");

const ctx = { origin: "https://king.example", symbol: "GPUTOKEN" };
const E18 = 10n ** 18n;

describe("describeError", () => {
  it("says the King is not answering when it is unavailable or unreachable", () => {
    for (const err of [
      new ConnectError("upstream", Code.Unavailable),
      new ConnectError("fetch failed", Code.Unknown, undefined, undefined, new TypeError("Failed to fetch")),
      new TypeError("Failed to fetch"),
    ]) {
      const ui = describeError(err, ctx);
      expect(ui.kind).toBe("king-unreachable");
      expect(ui.message).toContain("The King at https://king.example is not answering");
      expect(ui.retryable).toBe(true);
    }
  });

  it("maps each Connect code to its own message", () => {
    const kinds = new Map<Code, string>([
      [Code.Unauthenticated, "unauthenticated"],
      [Code.PermissionDenied, "permission-denied"],
      [Code.NotFound, "not-found"],
      [Code.InvalidArgument, "invalid-argument"],
      [Code.AlreadyExists, "already-exists"],
      [Code.FailedPrecondition, "refused"],
      [Code.ResourceExhausted, "resource-exhausted"],
      [Code.DeadlineExceeded, "king-timeout"],
      [Code.Unimplemented, "unimplemented"],
      [Code.Internal, "internal"],
    ]);
    for (const [code, kind] of kinds) expect(describeError(new ConnectError("why", code), ctx).kind).toBe(kind);
  });

  it("passes the King's words on for a refusal", () => {
    const ui = describeError(new ConnectError("insufficient balance: 1 < 5 GPUTOKEN", Code.FailedPrecondition), ctx);
    expect(ui.message).toBe("The King refused: insufficient balance: 1 < 5 GPUTOKEN");
  });

  it("explains a low balance with both amounts and their unit", () => {
    const ui = describeError(new InsufficientBalanceError("insufficient balance", 2n * E18, 12n * E18), ctx);
    expect(ui.kind).toBe("insufficient-balance");
    expect(ui.message).toContain("you hold 2 GPUTOKEN");
    expect(ui.message).toContain("up to 12 GPUTOKEN");
  });

  it("shows the quote and the closest offers when the max price is under it", () => {
    const closest = [create(OfferSchema, { gpuModel: "h100-sxm" })];
    const ui = describeError(new MaxPriceError(1n * E18, 3n * E18, closest), ctx);
    expect(ui.kind).toBe("max-price");
    expect(ui.message).toContain("max price of 1 GPUTOKEN per GPU-hour is under the quote of 3 GPUTOKEN per GPU-hour");
    expect(ui.closest).toBe(closest);
  });

  it("explains a missing provider with its reason and the closest offers", () => {
    const ui = describeError(new NoProviderError("no provider with 2×H100 under 3.0/h", []), ctx);
    expect(ui.kind).toBe("no-provider");
    expect(ui.message).toContain("no provider with 2×H100 under 3.0/h");
    expect(ui.closest).toEqual([]);
  });

  it("explains a folder over the size limit, before signing", () => {
    const ui = describeError(new PayloadTooLargeError("workdir w is 300 MiB, over the 50 MiB limit", 300 * 2 ** 20, 50 * 2 ** 20), ctx);
    expect(ui.kind).toBe("payload-too-large");
    expect(ui.message).toContain("300 MiB, over the 50 MiB limit");
    expect(ui.message).toContain("nothing was signed");
  });

  it("names both chains for a wallet on the wrong one", () => {
    const ui = describeError(new WrongChainError(1n, 31337n), ctx);
    expect(ui.kind).toBe("wrong-chain");
    expect(ui.message).toContain("chain 1");
    expect(ui.message).toContain("chain 31337");
  });

  it("offers the devnet key only on a devnet when no wallet is installed", () => {
    expect(describeError(new NoWalletError(), { ...ctx, devnet: true }).message).toContain("devnet key");
    expect(describeError(new NoWalletError(), ctx).message).not.toContain("devnet key");
  });

  it("recognizes a declined wallet request, also wrapped", () => {
    expect(describeError({ code: 4001, message: "User rejected" }, ctx).kind).toBe("rejected");
    const wrapped = Object.assign(new Error("viem"), { cause: { code: 4001 } });
    expect(describeError(wrapped, ctx).kind).toBe("rejected");
    expect(describeError({ code: 4902 }, ctx).kind).toBe("unknown-chain");
  });

  it("never shows a stack trace", () => {
    const err = new Error("boom\n    at f (x.js:1:1)\n    at g (y.js:2:2)");
    const ui = describeError(err, ctx);
    expect(ui.kind).toBe("unknown");
    expect(ui.message).toBe("Something went wrong: boom");
    expect(describeError(new SignInRefusedError("it is for chain 1, not chain 5"), ctx).kind).toBe("sign-in-refused");
    expect(describeError(new RenterError("the king's quote names chain 9", "PERMISSION_DENIED"), ctx).kind).toBe("king-mismatch");
    expect(describeError(new InvalidArgumentError("env key 1A is not a name"), ctx)).toMatchObject({ kind: "input", message: "Please fix: env key 1A is not a name." });
    expect(describeError(new InputError("gpus", "GPUs must be…"), ctx).message).toBe("GPUs must be…");
  });
});
