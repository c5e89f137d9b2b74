// Errors a person can act on: our own UI errors, the renter logic's, the wallet's and the King's (Connect
// codes), each turned into one specific message. Never a stack trace.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Offer } from "./gen/protos/blendr/v1/renter_pb";
import {
  BlendrError,
  InsufficientBalanceError,
  NoProviderError,
  PayloadTooLargeError,
  RenterError,
  SignInRefusedError,
} from "./lib/errors";
import { formatTokens } from "./lib/format";
import { AlreadyVotedError, NoVotingPowerError, VoteRevertedError, VotingClosedError } from "./lib/vote";

/** No EIP-1193 wallet (window.ethereum) in this browser. */
export class NoWalletError extends Error {
  constructor() {
    super("no wallet");
  }
}

/** The wallet is on another chain than the network's Ethereum chain. */
export class WrongChainError extends Error {
  constructor(public walletChainId: bigint, public wantChainId: bigint) {
    super("wrong chain");
  }
}

/** The renter's max price per GPU-hour is under the quote (found before anything is signed). */
export class MaxPriceError extends Error {
  constructor(public maxPrice: bigint, public quotePrice: bigint, public closest: Offer[]) {
    super("max price under the quote");
  }
}

/** A form value the person has to fix. */
export class InputError extends Error {
  constructor(public field: string, message: string) {
    super(message);
  }
}

export type ErrorKind =
  | "no-wallet"
  | "wrong-chain"
  | "insufficient-balance"
  | "max-price"
  | "no-provider"
  | "payload-too-large"
  | "king-unreachable"
  | "king-timeout"
  | "unauthenticated"
  | "sign-in-refused"
  | "king-mismatch"
  | "permission-denied"
  | "not-found"
  | "invalid-argument"
  | "already-exists"
  | "refused"
  | "resource-exhausted"
  | "unimplemented"
  | "internal"
  | "rejected"
  | "unknown-chain"
  | "input"
  | "no-voting-power"
  | "already-voted"
  | "voting-closed"
  | "vote-reverted"
  | "unknown";

export interface UiError {
  kind: ErrorKind;
  message: string;
  /** Trying the same thing again may work (the King was away). */
  retryable: boolean;
  /** Offers to show beside the message (no provider fits, max price under the quote). */
  closest?: Offer[];
}

export interface ErrorContext {
  /** The King's origin (location.origin). */
  origin: string;
  /** The token's symbol ("GPUTOKEN"). */
  symbol: string;
  /** Whether the network is a devnet (a devnet key is offered). */
  devnet?: boolean;
}

const MAX_TEXT = 300;

/** The message for any error thrown by this page's calls. */
export function describeError(err: unknown, ctx: ErrorContext): UiError {
  const tok = (wei: bigint) => `${formatTokens(wei)} ${ctx.symbol}`;
  const ui = (kind: ErrorKind, message: string, retryable = false): UiError => ({ kind, message, retryable });

  if (err instanceof NoWalletError) {
    return ui(
      "no-wallet",
      "No Ethereum wallet was found in this browser. Install a wallet extension (for example MetaMask) and reload" +
        (ctx.devnet ? ", or use a devnet key." : "."),
    );
  }
  if (err instanceof WrongChainError) {
    return ui(
      "wrong-chain",
      `Your wallet is on chain ${err.walletChainId}, but this network runs on chain ${err.wantChainId}. ` +
        `Switch your wallet to chain ${err.wantChainId}.`,
    );
  }
  if (err instanceof InsufficientBalanceError) {
    return ui(
      "insufficient-balance",
      `Your balance is too low: you hold ${tok(err.balance)}, and this job locks up to ${tok(err.needed)} in escrow. ` +
        "Add tokens to your wallet, or ask for fewer GPUs or hours.",
    );
  }
  if (err instanceof MaxPriceError) {
    return {
      ...ui(
        "max-price",
        `Your max price of ${tok(err.maxPrice)} per GPU-hour is under the quote of ${tok(err.quotePrice)} per GPU-hour. ` +
          "Raise your max price, or pick one of the closest offers.",
      ),
      closest: err.closest,
    };
  }
  if (err instanceof NoProviderError) {
    return {
      ...ui("no-provider", `No provider can run this job now: ${clip(err.reason)}.` + (err.closest.length ? " The closest offers:" : "")),
      closest: err.closest as Offer[],
    };
  }
  if (err instanceof PayloadTooLargeError) {
    // The renter logic's words name the size and the limit; it checks before anything is signed.
    return ui(
      "payload-too-large",
      `The working directory is too large: ${clip(err.message)}. Leave out large files (data sets, checkpoints); nothing was signed.`,
    );
  }
  if (err instanceof SignInRefusedError) {
    return ui("sign-in-refused", `The King's sign-in text was not signed: ${clip(err.message)}.`);
  }
  if (err instanceof RenterError) {
    return ui("king-mismatch", `Nothing was signed: ${clip(err.message)}.`);
  }
  if (err instanceof NoVotingPowerError) {
    return ui(
      "no-voting-power",
      `Your address ${err.account} had no votes at this proposal's snapshot (${utc(err.snapshotUnix)}), so nothing was sent. ` +
        `${ctx.symbol} counts as votes only once delegated (or staked) before a proposal's snapshot: delegate your votes to ` +
        `yourself with \`blendr gov delegate ${err.account}\` (or call the token's delegate(${err.account}) from your wallet), ` +
        "and you can vote on proposals made after that.",
    );
  }
  if (err instanceof AlreadyVotedError) {
    return ui("already-voted", `Your address ${err.account} has already voted on this proposal; the Governor counts one vote per address. Nothing was sent.`);
  }
  if (err instanceof VotingClosedError) {
    return ui("voting-closed", `Voting on this proposal is not open on the chain now: it is ${err.state}. Nothing was sent; reload to see the proposals as they are.`);
  }
  if (err instanceof VoteRevertedError) {
    return ui("vote-reverted", `Your vote's transaction ${err.tx} was mined but reverted (voting closed, or a vote from this address landed first); nothing was counted.`);
  }
  if (err instanceof InputError) return ui("input", err.message);
  if (err instanceof BlendrError) return ui("input", `Please fix: ${clip(err.message)}.`);
  if (err instanceof ConnectError) return describeConnect(err, ctx);

  const wallet = walletCode(err);
  if (wallet === 4001) return ui("rejected", "You declined the request in your wallet; nothing was sent.");
  if (wallet === 4902) {
    return ui("unknown-chain", "Your wallet does not know this network's chain yet. Add the chain in your wallet, then switch to it.");
  }
  if (err instanceof TypeError && /fetch|network/i.test(err.message)) {
    return ui("king-unreachable", `The King at ${ctx.origin} is not answering. Check your connection and retry.`, true);
  }
  return ui("unknown", `Something went wrong: ${clip(shortText(err))}`);
}

function describeConnect(err: ConnectError, ctx: ErrorContext): UiError {
  const raw = clip(err.rawMessage);
  const ui = (kind: ErrorKind, message: string, retryable = false): UiError => ({ kind, message, retryable });
  switch (err.code) {
    case Code.Unavailable:
      return ui("king-unreachable", `The King at ${ctx.origin} is not answering. It may be restarting; retry in a moment.`, true);
    case Code.Unknown:
      // A fetch that never reached the King (connect-web wraps the TypeError).
      if (err.cause instanceof TypeError) {
        return ui("king-unreachable", `The King at ${ctx.origin} is not answering. Check your connection and retry.`, true);
      }
      return ui("internal", `The King answered with an unknown error: ${raw}`, true);
    case Code.DeadlineExceeded:
      return ui("king-timeout", `The King at ${ctx.origin} did not answer in time. Retry in a moment.`, true);
    case Code.Unauthenticated:
      return ui("unauthenticated", "Your sign-in expired or was refused. Sign in again with your wallet.");
    case Code.PermissionDenied:
      return ui("permission-denied", `The King does not allow this for your wallet: ${raw}`);
    case Code.NotFound:
      return ui("not-found", `Not found: ${raw}`);
    case Code.InvalidArgument:
      return ui("invalid-argument", `The King cannot take this request: ${raw}`);
    case Code.AlreadyExists:
      return ui("already-exists", `This submission's request id was already used for another job (${raw}). Submit again for a new id.`);
    case Code.FailedPrecondition:
      // SubmitJob: max price below the quote, insufficient balance, no candidate provider — the King's words say which.
      return ui("refused", `The King refused: ${raw}`);
    case Code.ResourceExhausted:
      return ui("resource-exhausted", `Over the King's limit: ${raw}`);
    case Code.Unimplemented:
      return ui("unimplemented", "This King does not serve that call (is the page newer than the King?).");
    case Code.Canceled:
      return ui("unknown", "The request was cancelled.");
    default:
      return ui("internal", `The King hit an internal error (${raw}). Retry later; if it persists, tell the operator this text.`, true);
  }
}

/** An EIP-1193 error code on the error or its causes (viem wraps the wallet's error). */
function walletCode(err: unknown): number | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 4001 || code === 4902) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function utc(unix: bigint): string {
  return new Date(Number(unix) * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function shortText(err: unknown): string {
  if (err && typeof err === "object") {
    const short = (err as { shortMessage?: unknown }).shortMessage;
    if (typeof short === "string" && short) return short;
    const msg = (err as { message?: unknown }).message;
    if (typeof msg === "string" && msg) return msg.split("\n")[0] ?? msg;
  }
  return String(err);
}

function clip(text: string): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > MAX_TEXT ? one.slice(0, MAX_TEXT - 1) + "…" : one || "no details";
}
