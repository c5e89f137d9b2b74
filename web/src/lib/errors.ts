// TEMPORARY stub (branch webui only): the renter logic (branch weblib) lands here; drop this file at merge.
// The classes the views import, with weblib's shapes.
export type ErrorCode = "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "PERMISSION_DENIED" | "RESOURCE_EXHAUSTED";

export class BlendrError extends Error {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}
export class InvalidArgumentError extends BlendrError {
  constructor(message: string) {
    super(message, "INVALID_ARGUMENT");
  }
}
export class PayloadError extends InvalidArgumentError {}
export class PayloadTooLargeError extends PayloadError {
  override readonly code: ErrorCode = "RESOURCE_EXHAUSTED";
}
export class RenterError extends BlendrError {}
export class NoProviderError extends BlendrError {
  readonly reason: string;
  readonly closest: readonly unknown[];
  constructor(reason: string, closest: readonly unknown[] = []) {
    super(reason || "no provider can take this job now", "FAILED_PRECONDITION");
    this.reason = reason;
    this.closest = closest;
  }
}
export class InsufficientBalanceError extends BlendrError {
  readonly balance: bigint;
  readonly need: bigint;
  constructor(message: string, balance: bigint, need: bigint) {
    super(message, "FAILED_PRECONDITION");
    this.balance = balance;
    this.need = need;
  }
}
export class SignInRefusedError extends BlendrError {
  constructor(message: string) {
    super(message, "PERMISSION_DENIED");
  }
}
