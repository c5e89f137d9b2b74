// TEMPORARY stub (branch webui only): the renter logic lands from another branch; drop this file at merge.
import type { Offer, Quote, SubmitJobRequest, Wallet } from "../gen/protos/blendr/v1/renter_pb";

export { PayloadTooLargeError } from "./payload";

export interface Signer {
  address: `0x${string}`;
  signTypedData(td: any): Promise<`0x${string}`>;
}

export class NoProviderError extends Error {
  constructor(public reason: string, public closest: Offer[]) {
    super(reason);
  }
}

export class InsufficientBalanceError extends Error {
  constructor(public balance: bigint, public needed: bigint) {
    super("insufficient balance");
  }
}

export function buildSubmission(_args: {
  quote: Quote;
  wallet: Wallet;
  spec: {
    gpus: number;
    gpuModel: string;
    minVramBytes: bigint;
    minTflops: number;
    durationS: bigint;
    maxPricePerGpuHour: string;
  };
  name: string;
  requestId?: string;
  entrypoint: string;
  env: Record<string, string>;
  files: { path: string; data: Uint8Array; mode?: number }[];
  outputKeyPub: Uint8Array;
  signer: Signer;
  maxPayloadBytes: number;
  maxWaitS?: number;
}): Promise<SubmitJobRequest> {
  throw new Error("not merged yet");
}

export function randomRequestId(): string {
  throw new Error("not merged yet");
}
