// A job submission prepared in the browser, with the steps of blendr/client.py KingClient.prepare: the spec
// checked, the working directory packed and encrypted to the quote's candidates (each key checked against its
// provider's address), the scheduler, contracts and balance checked, then rental intents signed for this king's
// scheduler and these candidates, and a permit only when the allowance is short. Unlike prepare, every check
// comes before the first signature: a browser wallet shows a prompt per signature. The page fetches the quote
// and the wallet (GetQuote, GetWallet) and sends the result (SubmitJob); nothing here talks to the network.
//
// Guarantees: the king accepts what this builds exactly as it accepts the Python client's
// (tests/unit/web/test_cross.py submits one to a KingCore); every refusal is a BlendrError subclass.

import { create } from "@bufbuild/protobuf";
import { bytesToHex, hexToBytes, isAddress, parseSignature, type Hex, type LocalAccount, type WalletClient } from "viem";
import {
  EncryptedPayloadSchema,
  PermitSchema,
  SignedIntentSchema,
  SubmitJobRequestSchema,
  WrappedKeySchema,
  type Quote,
  type SubmitJobRequest,
  type Wallet,
} from "../gen/protos/blendr/v1/renter_pb";
import { InsufficientBalanceError, InvalidArgumentError, NoProviderError, RenterError } from "./errors";
import { formatTokens } from "./format";
import {
  ZERO_ADDRESS,
  candidatesRoot,
  permitTypedData,
  rentalIntentTypedData,
  specHash,
  voucherIntentTypedData,
  type Address,
  type RenterTypedData,
} from "./intents";
import { encodeJobPayload, encryptPayload, packWorkdir, randomBytes, type WorkdirFile } from "./payload";
import { checkRequestId, randomRequestId, specToProto, toSpec, validateSpec, type Spec, type SpecLike, type SpecLimits } from "./spec";

export { randomRequestId, validateSpec };
export { InsufficientBalanceError, NoProviderError, RenterError } from "./errors";

/** Who signs: an EIP-1193 wallet (viem WalletClient: `(td) => wallet.signTypedData({account, ...td})`) or a
 * devnet key (viem privateKeyToAccount: `(td) => account.signTypedData(td)`). Returns the 65-byte signature. */
export interface Signer {
  address: Address;
  signTypedData(td: RenterTypedData): Promise<Hex>;
}

/** What the renter knows independently of the king (its config): a quote or wallet that says otherwise is
 * refused, so a rogue king cannot get a permit for its own contract (blendr.client.Pins). */
export interface Pins {
  chainId?: bigint;
  rentalContract?: string;
  tokenContract?: string;
}

export interface SubmissionInput {
  /** The king's quote for `spec` (GetQuote). */
  quote: Quote;
  /** The renter's wallet as the king reads it (GetWallet). */
  wallet: Wallet;
  /** The spec that was quoted (a Spec, or the JobSpec fields sent to GetQuote). */
  spec: SpecLike;
  name?: string;
  /** The idempotency key; a fresh one when absent (keep it to retry the same submission). */
  requestId?: string;
  entrypoint: string;
  env?: Record<string, string>;
  pip?: readonly string[];
  /** The working directory's files (none: no working directory). */
  files?: readonly WorkdirFile[];
  /** The page's output key (loadOrCreateOutputKey): the job's outputs come back sealed to it. */
  outputKeyPub: Uint8Array;
  signer: Signer;
  /** The most the packed working directory may take (the Python client's default: 8 MiB). */
  maxPayloadBytes?: number;
  /** Spare intents beyond the first, so the king can move the job (absent: as many as the king accepts). */
  spareIntents?: number;
  /** The longest the job may wait for a provider, in seconds (0: the king's default). */
  maxWaitS?: number;
  /** Nonzero: pay with ComputeVoucher GPU-hours of this class (pickVoucherClass); no permit then. */
  voucherId?: bigint;
  limits?: SpecLimits;
  pins?: Pins;
  /** Unix seconds (tests inject a clock). */
  now?: () => number;
}

function checkPins(pins: Pins, what: string, chainId: bigint, rental: string, token: string): void {
  const bad: string[] = [];
  if (pins.chainId && chainId !== pins.chainId) bad.push(`chain ${chainId} (expected ${pins.chainId})`);
  if (pins.rentalContract && rental.toLowerCase() !== pins.rentalContract.toLowerCase()) {
    bad.push(`GPURental ${rental} (expected ${pins.rentalContract})`);
  }
  if (pins.tokenContract && token.toLowerCase() !== pins.tokenContract.toLowerCase()) {
    bad.push(`GPUTOKEN ${token} (expected ${pins.tokenContract})`);
  }
  if (bad.length) {
    throw new RenterError(`the king's ${what} names ${bad.join(", ")}: refusing to sign for it`, "PERMISSION_DENIED");
  }
}

function wei(text: string, what: string): bigint {
  if (!/^\d+$/.test(text)) throw new RenterError(`the king sent ${what} '${text.slice(0, 40)}', not an amount in wei`, "FAILED_PRECONDITION");
  return BigInt(text);
}

/** The signed, encrypted SubmitJobRequest for a job (KingClient.prepare).
 *
 * @throws InvalidArgumentError a bad spec, entrypoint, env, pip requirement, request id or max wait.
 * @throws PayloadError / PayloadTooLargeError the working directory cannot be packed or is too large.
 * @throws NoProviderError the quote has no candidate, or none with a key that belongs to its address.
 * @throws RenterError the quote names no valid scheduler, or the quote and wallet name other contracts (or
 *   contracts other than the pins).
 * @throws InsufficientBalanceError the wallet holds less than the job can lock in escrow.
 * Every check comes before the first signature; whatever the signer throws (the user declined) passes through.
 * The wallet is asked for one signature per intent (1 + spareIntents, at most quote.intents) and, when the
 * allowance is short, one for the permit. */
export async function buildSubmission(input: SubmissionInput): Promise<SubmitJobRequest> {
  const { quote: q, wallet: w, signer } = input;
  const now = input.now ?? (() => Math.floor(Date.now() / 1000));
  const spec = validateSpec(toSpec(input.spec), input.limits);
  const tarGz = input.files?.length ? await packWorkdir(input.files, input.maxPayloadBytes ?? 8 * 2 ** 20) : new Uint8Array();
  const doc = encodeJobPayload({ entrypoint: input.entrypoint, env: input.env ?? {}, pip: input.pip ?? [],
    outputKey: input.outputKeyPub, tarGz });
  const maxWaitS = input.maxWaitS ?? 0;
  if (!(maxWaitS >= 0 && maxWaitS < 2 ** 32)) {
    throw new InvalidArgumentError("max wait must be 0 (the king's default) or a positive number of seconds");
  }
  const voucherId = input.voucherId ?? 0n;
  const pins = input.pins ?? {};
  checkPins(pins, "quote", q.chainId, q.rentalContract, q.tokenContract);
  if (!q.candidates.length) throw new NoProviderError(q.reason || "no provider can take this job now", q.closest);
  const requestId = checkRequestId(input.requestId ?? randomRequestId());
  const payload = encryptPayload(doc, q.candidates.map((c) => ({ provider: c.provider, publicKey: c.publicKey })), requestId);
  // The intents bind the king (only it may place them or cancel their rentals) and the providers the key is
  // wrapped for (the king may place the job on no other).
  if (!isAddress(q.scheduler, { strict: false })) {
    throw new RenterError("the king named no valid scheduler address in its quote: refusing to sign", "FAILED_PRECONDITION");
  }
  checkPins(pins, "wallet", w.chainId, w.rentalContract, w.tokenContract);
  if (w.address && w.address.toLowerCase() !== signer.address.toLowerCase()) {
    // the session belongs to another account (the wallet switched accounts): its balance is not the signer's
    throw new RenterError(`the king's wallet is ${w.address}'s, not the signer ${signer.address}'s: sign in again`,
      "FAILED_PRECONDITION");
  }
  if (w.rentalContract.toLowerCase() !== q.rentalContract.toLowerCase()
    || w.tokenContract.toLowerCase() !== q.tokenContract.toLowerCase()) {
    throw new RenterError("the king named different contracts in its quote and wallet: refusing to sign", "PERMISSION_DENIED");
  }
  const spare = input.spareIntents ?? -1;
  const n = Math.max(1, spare < 0 ? q.intents : Math.min(q.intents, 1 + spare));
  // Every check is done before the wallet is asked for a signature (KingClient.prepare checks the balance after
  // signing; a browser wallet would show its prompts for a job that is then refused).
  let permitValue = 0n;
  if (!voucherId) {
    const maxEscrow = wei(q.maxEscrow, "max escrow");
    const balance = wei(w.balance, "balance");
    if (balance < maxEscrow) {
      throw new InsufficientBalanceError(`insufficient balance: you hold ${formatTokens(balance)} GPUTOKEN and this job ` +
        `can lock up to ${formatTokens(maxEscrow)} in escrow`, balance, maxEscrow);
    }
    const need = maxEscrow * BigInt(n);
    const allowance = wei(w.allowance, "allowance");
    if (allowance < need) permitValue = allowance + need;
  }
  const root = candidatesRoot(payload.keys.map((k) => k.provider));
  const sh = specHash(spec, payload.ciphertext);
  const deadline = BigInt(Math.min(Math.floor(now()) + 86400, Number(q.maxIntentDeadline)));
  const intents = [];
  for (let i = 0; i < n; i++) {
    const nonceBytes = randomBytes(32);
    const intent = {
      renter: signer.address, provider: ZERO_ADDRESS, gpus: spec.gpus, specHash: sh,
      maxPricePerGpuHour: spec.maxPricePerGpuHour, duration: BigInt(spec.durationS),
      nonce: BigInt(bytesToHex(nonceBytes)), deadline, candidatesRoot: root, scheduler: q.scheduler as Address,
    };
    const td = voucherId
      ? voucherIntentTypedData(intent, voucherId, q.chainId, q.rentalContract)
      : rentalIntentTypedData(intent, q.chainId, q.rentalContract);
    const sig = await signer.signTypedData(td);
    intents.push(create(SignedIntentSchema, { nonce: nonceBytes, deadline, signature: hexToBytes(sig) }));
  }
  let permit;
  if (permitValue) {
    // an ERC-2612 permit of GPUTOKEN for GPURental, for what the allowance lacks (on top of it, as the CLI does)
    const sig = parseSignature(await signer.signTypedData(permitTypedData(w.tokenName, w.chainId, w.tokenContract, {
      owner: signer.address, spender: w.rentalContract, value: permitValue, nonce: w.permitNonce, deadline,
    })));
    permit = create(PermitSchema, {
      value: permitValue.toString(), deadline, v: Number(sig.v ?? 27n + BigInt(sig.yParity)),
      r: hexToBytes(sig.r, { size: 32 }), s: hexToBytes(sig.s, { size: 32 }),
    });
  }
  return create(SubmitJobRequestSchema, {
    requestId, spec: specToProto(spec), name: input.name ?? "", specHash: hexToBytes(sh), intents, permit,
    payload: create(EncryptedPayloadSchema, {
      ciphertext: payload.ciphertext,
      keys: payload.keys.map((k) => create(WrappedKeySchema, k)),
    }),
    maxWaitS: Math.ceil(maxWaitS),
    voucherId,
  });
}

/** A Signer over a viem local account (a devnet private key: privateKeyToAccount). */
export function signerFromAccount(account: LocalAccount): Signer {
  return {
    address: account.address,
    signTypedData: (td) => account.signTypedData(td as Parameters<LocalAccount["signTypedData"]>[0]),
  };
}

/** A Signer over an EIP-1193 wallet through viem's WalletClient (eth_signTypedData_v4; the wallet shows every
 * field). `address` is the connected account. */
export function signerFromWallet(wallet: WalletClient, address: Address): Signer {
  return {
    address,
    signTypedData: (td) => wallet.signTypedData({ account: address, ...(td as Omit<Parameters<WalletClient["signTypedData"]>[0], "account">) }),
  };
}

/** The voucher class that pays `spec` (its GPU model, enough GPU-hours, priced at most the spec's max price;
 * the cheapest, then the lowest id) and the spec at that class's price (_pick_voucher_class).
 * @throws InvalidArgumentError no GPU model, or not whole GPU-hours. @throws RenterError no class can pay. */
export function pickVoucherClass(wallet: Wallet, spec: Spec): { voucherId: bigint; spec: Spec } {
  if (!spec.gpuModel) {
    throw new InvalidArgumentError("a job paid with vouchers names its GPU model (--gpu-model): vouchers are per model");
  }
  if ((spec.gpus * spec.durationS) % 3600) throw new InvalidArgumentError("vouchers are whole GPU-hours: make GPUs x hours a whole number");
  const need = BigInt((spec.gpus * spec.durationS) / 3600);
  const held = wallet.vouchers.filter((v) => v.gpuModel === spec.gpuModel);
  const usable = held.filter((v) => v.hours >= need && BigInt(v.pricePerGpuHour) <= spec.maxPricePerGpuHour);
  if (!usable.length) {
    const have = held.map((v) => `${v.hours} h of class ${v.id} at ${formatTokens(v.pricePerGpuHour)}/h`).join(", ");
    throw new RenterError(`no voucher class of ${spec.gpuModel} with ${need} GPU-hours at most ` +
      `${formatTokens(spec.maxPricePerGpuHour)}/h (you hold: ${have || "none"})`, "FAILED_PRECONDITION");
  }
  usable.sort((a, b) => {
    const pa = BigInt(a.pricePerGpuHour);
    const pb = BigInt(b.pricePerGpuHour);
    return pa !== pb ? (pa < pb ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const best = usable[0] as (typeof usable)[number];
  return { voucherId: best.id, spec: { ...spec, maxPricePerGpuHour: BigInt(best.pricePerGpuHour) } };
}
