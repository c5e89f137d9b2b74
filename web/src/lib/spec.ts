// What a renter's job asks for (blendr/jobspec.py Spec, validate; blendr/client.py JobRequest.spec), and its
// protobuf form. Token amounts are wei (bigint).

import { create } from "@bufbuild/protobuf";
import { JobSpecSchema, type JobSpec } from "../gen/protos/blendr/v1/renter_pb";
import { InvalidArgumentError } from "./errors";
import { formatDuration, parseTokens } from "./format";

/** A job's hardware, duration and price ceiling (wei per GPU-hour). */
export interface Spec {
  gpus: number;
  durationS: number;
  maxPricePerGpuHour: bigint;
  gpuModel: string;
  minVramBytes: bigint;
  minTflops: number;
}

/** A spec as a page may hold it: a Spec, or the fields of the protobuf JobSpec (duration as bigint, the
 * price as a decimal string of wei). */
export interface SpecLike {
  gpus: number;
  durationS: number | bigint;
  maxPricePerGpuHour: bigint | string;
  gpuModel?: string;
  minVramBytes?: bigint | number;
  minTflops?: number;
}

/** `s` as a Spec. @throws InvalidArgumentError the price is not a whole number of wei. */
export function toSpec(s: SpecLike): Spec {
  let price = s.maxPricePerGpuHour;
  if (typeof price === "string") {
    if (!/^\d{1,78}$/.test(price)) throw new InvalidArgumentError("the max price per GPU-hour must be a whole number of wei");
    price = BigInt(price);
  }
  return {
    gpus: s.gpus,
    durationS: Number(s.durationS),
    maxPricePerGpuHour: price,
    gpuModel: s.gpuModel ?? "",
    minVramBytes: BigInt(s.minVramBytes ?? 0),
    minTflops: s.minTflops ?? 0,
  };
}

/** The limits GPURental's governance sets (the king validates against them too). */
export interface SpecLimits {
  maxGpus?: number;
  minDurationS?: number;
  maxDurationS?: number;
  /** GPU model keys the king knows (e.g. from its offers); when given, another model is refused. */
  knownModels?: readonly string[];
}

// Python's round(): half to even.
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A spec from what a renter types (JobRequest.spec): hours, a max price in tokens, VRAM in GiB.
 *
 * @throws InvalidArgumentError hours not positive, or the price is not a number. */
export function makeSpec(req: {
  gpus: number;
  hours: number;
  maxPrice: string;
  gpuModel?: string;
  minVramGb?: number;
  minTflops?: number;
}): Spec {
  if (!(req.hours > 0)) throw new InvalidArgumentError("hours must be positive");
  return {
    gpus: req.gpus,
    durationS: roundHalfEven(req.hours * 3600),
    maxPricePerGpuHour: parseTokens(req.maxPrice, "max price"),
    gpuModel: req.gpuModel ?? "",
    minVramBytes: BigInt(Math.trunc((req.minVramGb ?? 0) * 2 ** 30)),
    minTflops: req.minTflops ?? 0,
  };
}

/** `spec`, or InvalidArgumentError saying what to fix (blendr.jobspec.validate, same order and messages). */
export function validateSpec(spec: Spec, limits: SpecLimits = {}): Spec {
  const maxGpus = limits.maxGpus ?? 64;
  const minD = limits.minDurationS ?? 1;
  const maxD = limits.maxDurationS ?? 30 * 86400;
  if (!Number.isInteger(spec.gpus) || !Number.isInteger(spec.durationS)) {
    throw new InvalidArgumentError("gpus and the duration must be whole numbers");
  }
  if (spec.gpus < 1) throw new InvalidArgumentError("gpus must be at least 1");
  if (spec.gpus > maxGpus) throw new InvalidArgumentError(`gpus must be at most ${maxGpus}`);
  if (spec.durationS <= 0) throw new InvalidArgumentError("the duration (hours) must be positive");
  if (spec.durationS < minD || spec.durationS > maxD) {
    throw new InvalidArgumentError(`the duration must be between ${formatDuration(minD)} and ${formatDuration(maxD)} ` +
      `(got ${formatDuration(spec.durationS)})`);
  }
  if (spec.gpuModel && limits.knownModels && !limits.knownModels.includes(spec.gpuModel)) {
    throw new InvalidArgumentError(`unknown GPU model '${spec.gpuModel}' (known: ${[...limits.knownModels].sort().join(", ")})`);
  }
  if (spec.maxPricePerGpuHour <= 0n) throw new InvalidArgumentError("the max price per GPU-hour must be positive");
  if (spec.minVramBytes < 0n || !Number.isFinite(spec.minTflops) || spec.minTflops < 0) {
    throw new InvalidArgumentError("minimum VRAM and TFLOP/s must be finite and not negative");
  }
  if (spec.maxPricePerGpuHour >= 2n ** 88n) throw new InvalidArgumentError("the max price per GPU-hour is out of range");
  return spec;
}

/** The most one rental of this job can lock: max price × GPUs × duration / 3600 (GPURental's formula). */
export function maxEscrow(spec: Spec): bigint {
  return (spec.maxPricePerGpuHour * BigInt(spec.gpus) * BigInt(spec.durationS)) / 3600n;
}

export function specToProto(spec: Spec): JobSpec {
  return create(JobSpecSchema, {
    gpus: spec.gpus,
    gpuModel: spec.gpuModel,
    minVramBytes: spec.minVramBytes,
    minTflops: spec.minTflops,
    durationS: BigInt(spec.durationS),
    maxPricePerGpuHour: spec.maxPricePerGpuHour.toString(),
  });
}

export function specFromProto(s: JobSpec): Spec {
  return {
    gpus: s.gpus,
    durationS: Number(s.durationS),
    maxPricePerGpuHour: BigInt(s.maxPricePerGpuHour || "0"),
    gpuModel: s.gpuModel,
    minVramBytes: s.minVramBytes,
    minTflops: s.minTflops,
  };
}

const REQUEST_ID = /^[A-Za-z0-9_-]{16,64}$/;

/** A fresh idempotency key for a submission: "r-" and 24 hex digits (as the Python client makes them). */
export function randomRequestId(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return "r-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** `requestId`, or InvalidArgumentError unless 16-64 characters of A-Z a-z 0-9 _ - (check_request_id). */
export function checkRequestId(requestId: string): string {
  if (!REQUEST_ID.test(requestId)) {
    throw new InvalidArgumentError("request_id must be 16-64 characters of A-Z a-z 0-9 _ -");
  }
  return requestId;
}
