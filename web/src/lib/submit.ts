// TEMPORARY stub (branch webui only): the renter logic (branch weblib) lands here; drop this file at merge.
import type { Quote, SubmitJobRequest, Wallet } from "../gen/protos/blendr/v1/renter_pb";

export interface Signer {
  address: `0x${string}`;
  signTypedData(td: any): Promise<`0x${string}`>;
}

interface Spec {
  gpus: number;
  durationS: number;
  maxPricePerGpuHour: bigint;
  gpuModel: string;
  minVramBytes: bigint;
  minTflops: number;
}

export interface SubmissionInput {
  quote: Quote;
  wallet: Wallet;
  spec: Spec;
  name?: string;
  requestId?: string;
  entrypoint: string;
  env?: Record<string, string>;
  files?: readonly { path: string; data: Uint8Array; mode?: number }[];
  outputKeyPub: Uint8Array;
  signer: Signer;
  maxPayloadBytes?: number;
  maxWaitS?: number;
}

export async function buildSubmission(_input: SubmissionInput): Promise<SubmitJobRequest> {
  throw new Error("not merged yet");
}

export function randomRequestId(): string {
  throw new Error("not merged yet");
}
