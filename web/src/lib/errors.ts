// One root error for the dApp's renter logic, with one subclass per kind of refusal (as blendr/errors.py).
// `code` is the gRPC status name the Python client would give the same refusal.

export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "FAILED_PRECONDITION"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED";

/** The root of every error this library raises on purpose. */
export class BlendrError extends Error {
  readonly code: ErrorCode;

  constructor(message: string, code: ErrorCode) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Raised when an argument (a spec, a key, an amount, a path) is malformed or out of range. */
export class InvalidArgumentError extends BlendrError {
  constructor(message: string) {
    super(message, "INVALID_ARGUMENT");
  }
}

/** Raised when a job payload is malformed, fails authentication or holds an unsafe working directory entry. */
export class PayloadError extends InvalidArgumentError {}

/** Raised when a working directory or payload is over its size or entry-count limit; `size` and `limit` are
 * bytes (or entries, for too many entries). */
export class PayloadTooLargeError extends PayloadError {
  override readonly code: ErrorCode = "RESOURCE_EXHAUSTED";
  readonly size: number;
  readonly limit: number;

  constructor(message: string, size: number, limit: number) {
    super(message);
    this.size = size;
    this.limit = limit;
  }
}

/** Raised when a sealed job output is malformed, tampered with, for another key or job, or holds an unsafe entry. */
export class OutputError extends InvalidArgumentError {}

/** Raised when a job cannot be prepared because of what the king answered (a mismatch, an invalid address). */
export class RenterError extends BlendrError {}

/** Raised when no provider can take the job now; `reason` is the king's, `closest` its nearest offers. */
export class NoProviderError extends BlendrError {
  readonly reason: string;
  readonly closest: readonly unknown[];

  constructor(reason: string, closest: readonly unknown[] = []) {
    super(reason || "no provider can take this job now", "FAILED_PRECONDITION");
    this.reason = reason;
    this.closest = closest;
  }
}

/** Raised when the wallet holds less GPUTOKEN than the job can lock in escrow (amounts in wei). */
export class InsufficientBalanceError extends BlendrError {
  readonly balance: bigint;
  readonly needed: bigint;

  constructor(message: string, balance: bigint, needed: bigint) {
    super(message, "FAILED_PRECONDITION");
    this.balance = balance;
    this.needed = needed;
  }
}

/** Raised when a sign-in message is malformed or not a sign-in for this wallet, chain, king or site. */
export class SignInRefusedError extends BlendrError {
  constructor(message: string) {
    super(message, "PERMISSION_DENIED");
  }
}
