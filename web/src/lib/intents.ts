// What a renter signs, as EIP-712 typed data a wallet shows in full (viem's signTypedData, or an EIP-1193
// eth_signTypedData_v4), with the domains, types and field order of GPURental and GPUTOKEN as
// blendr/chain/contracts.py signs them; and the two hashes an intent binds: specHash (blendr.jobspec.spec_hash)
// and candidatesRoot (blendr.chain.contracts.candidates_root).
//
// Guarantees: for the same inputs, the same specHash, candidatesRoot and EIP-712 digests as the Python client
// and the king (tests/unit/web/test_cross.py checks it).

import { sha256 } from "@noble/hashes/sha2";
import { bytesToHex, getAddress, hashTypedData, hexToBytes, isAddress, keccak256, type Hex } from "viem";
import { InvalidArgumentError } from "./errors";
import { pyJsonDumps } from "./pyjson";
import type { Spec } from "./spec";

export type Address = `0x${string}`;

export const ZERO_ADDRESS: Address = "0x0000000000000000000000000000000000000000";

/** The intents' specHash: keccak256 of the canonical JSON of the spec and of SHA-256 of the encrypted payload. */
export function specHash(spec: Spec, ciphertext: Uint8Array): Hex {
  const doc = {
    gpus: BigInt(spec.gpus),
    duration_s: BigInt(spec.durationS),
    max_price_per_gpu_hour: spec.maxPricePerGpuHour,
    gpu_model: spec.gpuModel,
    min_vram_bytes: spec.minVramBytes,
    min_tflops: spec.minTflops, // a Python float: 0 is written "0.0"
    payload_sha256: bytesToHex(sha256(ciphertext)).slice(2),
    v: 1n,
  };
  return keccak256(new TextEncoder().encode(pyJsonDumps(doc, true)));
}

function checksum(address: string, what: string): Address {
  if (!isAddress(address, { strict: false })) throw new InvalidArgumentError(`${what}: ${address.slice(0, 80)} is not an address`);
  return getAddress(address);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return d;
  }
  return a.length - b.length;
}

function pair(a: Uint8Array, b: Uint8Array): Uint8Array {
  const [x, y] = compareBytes(a, b) < 0 ? [a, b] : [b, a];
  const both = new Uint8Array(64);
  both.set(x, 0);
  both.set(y, 32);
  return keccak256(both, "bytes");
}

/** The candidatesRoot a renter signs for these providers: the set deduplicated and sorted by address, leaves
 * keccak256(address), an OpenZeppelin sorted-pair Merkle tree (an odd last node moves up); none: the zero root. */
export function candidatesRoot(providers: readonly string[]): Hex {
  const unique = [...new Set(providers.map((p) => checksum(p, "candidate")))];
  unique.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
  if (!unique.length) return `0x${"00".repeat(32)}`;
  let level = unique.map((a) => keccak256(hexToBytes(a), "bytes"));
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(pair(level[i] as Uint8Array, level[i + 1] as Uint8Array));
    if (level.length % 2) next.push(level[level.length - 1] as Uint8Array);
    level = next;
  }
  return bytesToHex(level[0] as Uint8Array);
}

/** An EIP-712 domain (name, version, chainId, verifyingContract: the order GPURental and GPUTOKEN use). */
export interface Domain {
  name: string;
  version: string;
  chainId: bigint;
  verifyingContract: Address;
}

/** IGPURental.RentalIntent: with provider zero, the king may pick only a provider under candidatesRoot. */
export interface RentalIntent {
  renter: Address;
  provider: Address;
  gpus: number;
  specHash: Hex;
  maxPricePerGpuHour: bigint;
  duration: bigint;
  nonce: bigint;
  deadline: bigint;
  candidatesRoot: Hex;
  scheduler: Address;
}

export const RENTAL_INTENT_TYPES = {
  RentalIntent: [
    { name: "renter", type: "address" },
    { name: "provider", type: "address" },
    { name: "gpus", type: "uint32" },
    { name: "specHash", type: "bytes32" },
    { name: "maxPricePerGpuHour", type: "uint256" },
    { name: "duration", type: "uint64" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint64" },
    { name: "candidatesRoot", type: "bytes32" },
    { name: "scheduler", type: "address" },
  ],
} as const;

export const VOUCHER_RENTAL_INTENT_TYPES = {
  ...RENTAL_INTENT_TYPES,
  VoucherRentalIntent: [
    { name: "intent", type: "RentalIntent" },
    { name: "voucherId", type: "uint256" },
  ],
} as const;

export const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

/** GPURental's EIP-712 domain ("BlendrGPURental", version 1). */
export function rentalDomain(chainId: bigint | number, rental: string): Domain {
  return { name: "BlendrGPURental", version: "1", chainId: BigInt(chainId), verifyingContract: checksum(rental, "GPURental") };
}

function canonicalIntent(it: RentalIntent): RentalIntent {
  return {
    ...it,
    renter: checksum(it.renter, "renter"),
    provider: checksum(it.provider, "provider"),
    scheduler: checksum(it.scheduler, "scheduler"),
  };
}

export function rentalIntentTypedData(it: RentalIntent, chainId: bigint | number, rental: string) {
  return {
    domain: rentalDomain(chainId, rental),
    types: RENTAL_INTENT_TYPES,
    primaryType: "RentalIntent" as const,
    message: canonicalIntent(it),
  };
}

/** VoucherRentalIntent(RentalIntent intent, uint256 voucherId): the intent paid with ComputeVoucher GPU-hours. */
export function voucherIntentTypedData(it: RentalIntent, voucherId: bigint, chainId: bigint | number, rental: string) {
  return {
    domain: rentalDomain(chainId, rental),
    types: VOUCHER_RENTAL_INTENT_TYPES,
    primaryType: "VoucherRentalIntent" as const,
    message: { intent: canonicalIntent(it), voucherId },
  };
}

export interface PermitFields {
  owner: string;
  spender: string;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
}

/** An ERC-2612 permit of the token (domain: its name, version "1"). */
export function permitTypedData(tokenName: string, chainId: bigint | number, token: string, p: PermitFields) {
  return {
    domain: { name: tokenName, version: "1", chainId: BigInt(chainId), verifyingContract: checksum(token, "token") },
    types: PERMIT_TYPES,
    primaryType: "Permit" as const,
    message: {
      owner: checksum(p.owner, "owner"),
      spender: checksum(p.spender, "spender"),
      value: p.value,
      nonce: p.nonce,
      deadline: p.deadline,
    },
  };
}

export type IntentTypedData = ReturnType<typeof rentalIntentTypedData>;
export type VoucherIntentTypedData = ReturnType<typeof voucherIntentTypedData>;
export type PermitTypedData = ReturnType<typeof permitTypedData>;
/** Everything a renter is asked to sign. */
export type RenterTypedData = IntentTypedData | VoucherIntentTypedData | PermitTypedData;

/** The EIP-712 digest a wallet signs for `td` (what GPURental / GPUTOKEN recover the signer from). */
export function typedDataDigest(td: RenterTypedData): Hex {
  return hashTypedData(td as Parameters<typeof hashTypedData>[0]);
}
