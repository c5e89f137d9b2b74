import { describe, expect, it } from "vitest";
import { getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  ZERO_ADDRESS,
  candidatesRoot,
  permitTypedData,
  rentalIntentTypedData,
  specHash,
  typedDataDigest,
  voucherIntentTypedData,
} from "../src/lib/intents";
import type { Spec } from "../src/lib/spec";

// Vectors computed with blendr (jobspec.spec_hash, contracts.candidates_root, king.rentals digests, eth-account).
const KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const RENTER = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
const RENTAL = "0x00000000000000000000000000000000000Be7A1";
const TOKEN = "0x00000000000000000000000000000000000bE70C";
const SCHEDULER = `0x${"5c".repeat(20)}` as const;
const PROVIDERS = [0x11, 0x22, 0x33].map((b) => `0x${b.toString(16).repeat(20)}`);
const SPEC: Spec = {
  gpus: 2, durationS: 5400, maxPricePerGpuHour: 2750000000000000001n, gpuModel: "h100-sxm",
  minVramBytes: 80n * 2n ** 30n, minTflops: 12.5,
};
const CT = Uint8Array.from({ length: 200 }, (_, i) => i);

describe("specHash", () => {
  it("is jobspec.spec_hash", () => {
    expect(specHash(SPEC, CT)).toBe("0xc7f6867ce9743e7cd820fe7660142ac6f98a940f1363619f56d1d9a217ddc3a7");
    const plain: Spec = { gpus: 1, durationS: 3600, maxPricePerGpuHour: 10n ** 18n, gpuModel: "", minVramBytes: 0n, minTflops: 0 };
    expect(specHash(plain, new Uint8Array())).toBe("0x1a8954ed58dbdd2f987d65f8072275be46335505ee48ca4fd701eff81bd3038f");
  });

  it("binds the payload and every field", () => {
    const base = specHash(SPEC, CT);
    expect(specHash(SPEC, CT.slice(1))).not.toBe(base);
    expect(specHash({ ...SPEC, minTflops: 12.75 }, CT)).not.toBe(base);
    expect(specHash({ ...SPEC, maxPricePerGpuHour: SPEC.maxPricePerGpuHour + 1n }, CT)).not.toBe(base);
  });
});

describe("candidatesRoot", () => {
  it("is candidates_root for 0 to 3 providers", () => {
    expect(candidatesRoot([])).toBe(`0x${"00".repeat(32)}`);
    expect(candidatesRoot(PROVIDERS.slice(0, 1))).toBe("0xe2c07404b8c1df4c46226425cac68c28d27a766bbddce62309f36724839b22c0");
    expect(candidatesRoot(PROVIDERS.slice(0, 2))).toBe("0x4beda981c9d34f2dd099131be6049a1d87676d227e63f4a409ee629043314b4f");
    expect(candidatesRoot(PROVIDERS)).toBe("0xcbf843e9efe7be41ca4d3a03347d27e7bb96d83ae75b3b36983ad907d2109c65");
  });

  it("depends on the set only: order, spelling and repeats do not count", () => {
    const root = candidatesRoot(PROVIDERS);
    expect(candidatesRoot([...PROVIDERS].reverse())).toBe(root);
    expect(candidatesRoot([...PROVIDERS, (PROVIDERS[0] as string).toUpperCase().replace("0X", "0x")])).toBe(root);
  });

  it("refuses what is not an address", () => {
    expect(() => candidatesRoot(["0x1234"])).toThrow(/not an address/);
  });
});

describe("EIP-712 typed data", () => {
  const intent = {
    renter: RENTER as `0x${string}`, provider: ZERO_ADDRESS, gpus: 2, specHash: specHash(SPEC, CT),
    maxPricePerGpuHour: SPEC.maxPricePerGpuHour, duration: 5400n, nonce: 123456789n, deadline: 1900000000n,
    candidatesRoot: candidatesRoot(PROVIDERS), scheduler: SCHEDULER,
  };

  it("hashes a RentalIntent, a VoucherRentalIntent and a Permit as the contracts do", () => {
    expect(typedDataDigest(rentalIntentTypedData(intent, 31337n, RENTAL.toLowerCase())))
      .toBe("0x5d84a86c4435cffe2ac67a36a515c162e8f8ba19f8dfd5ea3d9a1087aaefaea9");
    expect(typedDataDigest(voucherIntentTypedData(intent, 7n, 31337, RENTAL)))
      .toBe("0x0e1c794e5517a383135fc8113c8e7cca9ab5a9cc940285b401f0784372c17c23");
    const permit = permitTypedData("GPUToken", 31337, TOKEN, { owner: RENTER, spender: RENTAL, value: 10n ** 21n, nonce: 3n, deadline: 1900000000n });
    expect(typedDataDigest(permit)).toBe("0x9d1ee5b80ddbb2afac307f75debe1cb8709ed286b3116e278daf6b16d4064e95");
  });

  it("signs as eth-account signs (a wallet sees the field order of the contract)", async () => {
    const td = rentalIntentTypedData(intent, 31337n, RENTAL);
    expect(td.domain).toEqual({ name: "BlendrGPURental", version: "1", chainId: 31337n, verifyingContract: getAddress(RENTAL) });
    expect(td.types.RentalIntent.map((f) => f.name)).toEqual([
      "renter", "provider", "gpus", "specHash", "maxPricePerGpuHour", "duration", "nonce", "deadline", "candidatesRoot", "scheduler"]);
    const sig = await privateKeyToAccount(KEY).signTypedData(td);
    expect(sig).toBe("0x63414164b67d68c233909443918442ff0ce3fe08be23176ecccf5a3d31ad1e0f383a4135b0186027ef0a1d87e3ed96091734421792718edbd48e5dede0062afe1c");
  });
});
