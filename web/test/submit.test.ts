import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { secp256k1 } from "@noble/curves/secp256k1";
import { bytesToHex, hexToBytes, recoverTypedDataAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { CandidateSchema, OfferSchema, QuoteSchema, WalletSchema, type Quote } from "../src/gen/protos/blendr/v1/renter_pb";
import { InsufficientBalanceError, NoProviderError, RenterError } from "../src/lib/errors";
import { candidatesRoot, rentalIntentTypedData, specHash, type RenterTypedData } from "../src/lib/intents";
import { addressOfPublicKey, decryptPayload, decodeJobPayload, publicKeyOf } from "../src/lib/payload";
import type { Spec } from "../src/lib/spec";
import { buildSubmission, pickVoucherClass, signerFromAccount, type Signer } from "../src/lib/submit";

const RENTAL = "0x00000000000000000000000000000000000bE7A1";
const TOKEN = "0x00000000000000000000000000000000000be70c";
const SCHEDULER = `0x${"5c".repeat(20)}` as const;
const E18 = 10n ** 18n;
const account = privateKeyToAccount("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
const providerKeys = [secp256k1.utils.randomPrivateKey(), secp256k1.utils.randomPrivateKey()];
const SPEC: Spec = { gpus: 2, durationS: 7200, maxPricePerGpuHour: 3n * E18, gpuModel: "h100-sxm", minVramBytes: 0n, minTflops: 0 };
const NOW = 1_800_000_000;

function quote(over: MessageInitShape<typeof QuoteSchema> = {}): Quote {
  return create(QuoteSchema, {
    pricePerGpuHour: (2n * E18).toString(), maxEscrow: (12n * E18).toString(), intents: 4, chainId: 31337n,
    rentalContract: RENTAL, tokenContract: TOKEN, maxIntentDeadline: BigInt(NOW + 3 * 86400), scheduler: SCHEDULER,
    candidates: providerKeys.map((k) => {
      const pub = publicKeyOf(k);
      return create(CandidateSchema, { provider: addressOfPublicKey(pub), publicKey: pub, gpuModel: "h100-sxm" });
    }),
    ...over,
  });
}

function wallet(balance: bigint, allowance: bigint, over: MessageInitShape<typeof WalletSchema> = {}) {
  return create(WalletSchema, {
    address: account.address, balance: balance.toString(), allowance: allowance.toString(), permitNonce: 5n,
    chainId: 31337n, tokenName: "GPUToken", tokenContract: TOKEN, rentalContract: RENTAL, ...over,
  });
}

function counting(): Signer & { asked: RenterTypedData[] } {
  const inner = signerFromAccount(account);
  const asked: RenterTypedData[] = [];
  return { address: inner.address, asked, signTypedData: (td) => { asked.push(td); return inner.signTypedData(td); } };
}

const base = {
  spec: SPEC, entrypoint: "python train.py", env: { SEED: "1" }, files: [{ path: "train.py", data: new TextEncoder().encode("x") }],
  outputKeyPub: publicKeyOf(secp256k1.utils.randomPrivateKey()), requestId: "r-000000000000000000000042", now: () => NOW,
};

describe("buildSubmission", () => {
  it("signs intents for this king and these candidates, and a permit when the allowance is short", async () => {
    const signer = counting();
    const sub = await buildSubmission({ ...base, quote: quote(), wallet: wallet(100n * E18, 0n), signer, spareIntents: 1, name: "job" });
    expect(sub.intents.length).toBe(2);
    expect(signer.asked.map((t) => t.primaryType)).toEqual(["RentalIntent", "RentalIntent", "Permit"]);
    expect(sub.permit?.value).toBe((24n * E18).toString());
    expect(sub.permit?.deadline).toBe(BigInt(NOW + 86400));
    const sh = specHash(SPEC, sub.payload?.ciphertext ?? new Uint8Array());
    expect(sub.specHash).toEqual(hexToBytes(sh));
    const root = candidatesRoot(quote().candidates.map((c) => c.provider));
    for (const it of sub.intents) {
      const td = rentalIntentTypedData({
        renter: account.address, provider: "0x0000000000000000000000000000000000000000", gpus: 2, specHash: sh,
        maxPricePerGpuHour: 3n * E18, duration: 7200n, nonce: BigInt(bytesToHex(it.nonce)),
        deadline: it.deadline, candidatesRoot: root, scheduler: SCHEDULER,
      }, 31337n, RENTAL);
      expect(await recoverTypedDataAddress({ ...td, signature: bytesToHex(it.signature) })).toBe(account.address);
    }
    const doc = decodeJobPayload(decryptPayload(sub.payload?.ciphertext ?? new Uint8Array(), sub.payload?.keys[1]?.sealedKey ?? new Uint8Array(),
      providerKeys[1] as Uint8Array, sub.requestId));
    expect(doc.entrypoint).toBe("python train.py");
  });

  it("asks for no permit when the allowance covers every intent (the spec as JobSpec fields)", async () => {
    const signer = counting();
    const asProto = { gpus: 2, gpuModel: "h100-sxm", minVramBytes: 0n, minTflops: 0, durationS: 7200n, maxPricePerGpuHour: (3n * E18).toString() };
    const sub = await buildSubmission({ ...base, spec: asProto, quote: quote(), wallet: wallet(100n * E18, 48n * E18), signer });
    expect(sub.intents.length).toBe(4);
    expect(sub.permit).toBeUndefined();
    expect(signer.asked.length).toBe(4);
  });

  it("refuses before any signature: no candidate, short balance, other contracts, no scheduler", async () => {
    const signer = counting();
    const closest = [create(OfferSchema, { gpuModel: "h100-sxm", providers: 1 })];
    const none = await buildSubmission({ ...base, quote: quote({ candidates: [], reason: "no provider with 2×H100 under 3/h", closest }),
      wallet: wallet(100n * E18, 0n), signer }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(NoProviderError);
    expect((none as NoProviderError).reason).toBe("no provider with 2×H100 under 3/h");
    expect((none as NoProviderError).closest).toEqual(closest);
    const poor = await buildSubmission({ ...base, quote: quote(), wallet: wallet(E18, 0n), signer }).catch((e: unknown) => e);
    expect(poor).toBeInstanceOf(InsufficientBalanceError);
    expect((poor as Error).message).toBe("insufficient balance: you hold 1 GPUTOKEN and this job can lock up to 12 in escrow");
    expect((poor as InsufficientBalanceError).needed).toBe(12n * E18);
    const other = wallet(100n * E18, 0n, { tokenContract: `0x${"66".repeat(20)}` });
    await expect(buildSubmission({ ...base, quote: quote(), wallet: other, signer })).rejects.toThrow(/different contracts/);
    await expect(buildSubmission({ ...base, quote: quote(), wallet: wallet(100n * E18, 0n, { address: `0x${"66".repeat(20)}` }), signer }))
      .rejects.toThrow(/sign in again/);
    await expect(buildSubmission({ ...base, quote: quote({ scheduler: "" }), wallet: wallet(100n * E18, 0n), signer }))
      .rejects.toThrow(RenterError);
    await expect(buildSubmission({ ...base, quote: quote(), wallet: wallet(100n * E18, 0n), signer, pins: { chainId: 1n } }))
      .rejects.toThrow("the king's quote names chain 31337 (expected 1): refusing to sign for it");
    const impostor = quote({ candidates: [create(CandidateSchema, { provider: `0x${"77".repeat(20)}`, publicKey: publicKeyOf(providerKeys[0] as Uint8Array) })] });
    await expect(buildSubmission({ ...base, quote: impostor, wallet: wallet(100n * E18, 0n), signer }))
      .rejects.toThrow("no candidate provider has a valid public key");
    await expect(buildSubmission({ ...base, spec: { ...SPEC, gpus: 0 }, quote: quote(), wallet: wallet(100n * E18, 0n), signer }))
      .rejects.toThrow("gpus must be at least 1");
    expect(signer.asked).toEqual([]);
  });

  it("pays with vouchers: VoucherRentalIntents, no permit, no balance check", async () => {
    const signer = counting();
    const w = wallet(0n, 0n, { vouchers: [
      { id: 3n, gpuModel: "h100-sxm", pricePerGpuHour: (2n * E18).toString(), hours: 10n },
      { id: 2n, gpuModel: "h100-sxm", pricePerGpuHour: (25n * E18 / 10n).toString(), hours: 10n },
      { id: 1n, gpuModel: "a100-80gb", pricePerGpuHour: "1", hours: 10n }] });
    const picked = pickVoucherClass(w, SPEC);
    expect(picked).toEqual({ voucherId: 3n, spec: { ...SPEC, maxPricePerGpuHour: 2n * E18 } });
    const sub = await buildSubmission({ ...base, spec: picked.spec, voucherId: picked.voucherId, quote: quote(), wallet: w, signer, spareIntents: 0 });
    expect(sub.voucherId).toBe(3n);
    expect(sub.permit).toBeUndefined();
    expect(signer.asked.map((t) => t.primaryType)).toEqual(["VoucherRentalIntent"]);
    expect(() => pickVoucherClass(w, { ...SPEC, gpus: 8, durationS: 7200 })).toThrow(/no voucher class of h100-sxm with 16 GPU-hours/);
    expect(() => pickVoucherClass(w, { ...SPEC, durationS: 1800, gpus: 1 })).toThrow(/whole GPU-hours/);
  });
});
