// Voting on a governance proposal from the page: the Governor's ABI fragment, the checks made before a vote is
// sent (as blendr/chain/governing.py `check_can_vote` makes them for `blendr gov vote`), and waiting for the
// King's proposal list to show the new tally.
//
// Guarantees: `checkCanVote` throws before anything is sent when the Governor would refuse the vote (voting not
// open, already voted, no votes at the snapshot); `waitForTally` polls a bounded number of times.
import { BlendrError } from "./errors";

export type Support = "for" | "against" | "abstain";

/** GovernorCountingSimple's support values. */
export const SUPPORT: Record<Support, number> = { against: 0, for: 1, abstain: 2 };

/** OpenZeppelin Governor's ProposalState (the contract's numbering, not the proto's). */
const GOVERNOR_STATES = ["pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed"] as const;
const ACTIVE = 1;

/** The part of the Governor the page calls: voting, the checks before it, and the event it emits. */
export const GOVERNOR_ABI = [
  {
    type: "function",
    name: "castVote",
    stateMutability: "nonpayable",
    inputs: [
      { name: "proposalId", type: "uint256" },
      { name: "support", type: "uint8" },
    ],
    outputs: [{ name: "", type: "uint256" }],
  },
  {
    type: "function",
    name: "getVotes",
    stateMutability: "view",
    inputs: [
      { name: "account", type: "address" },
      { name: "timepoint", type: "uint256" },
    ],
    outputs: [{ name: "", type: "uint256" }],
  },
  {
    type: "function",
    name: "hasVoted",
    stateMutability: "view",
    inputs: [
      { name: "proposalId", type: "uint256" },
      { name: "account", type: "address" },
    ],
    outputs: [{ name: "", type: "bool" }],
  },
  {
    type: "function",
    name: "state",
    stateMutability: "view",
    inputs: [{ name: "proposalId", type: "uint256" }],
    outputs: [{ name: "", type: "uint8" }],
  },
  {
    type: "event",
    name: "VoteCast",
    inputs: [
      { name: "voter", type: "address", indexed: true },
      { name: "proposalId", type: "uint256", indexed: false },
      { name: "support", type: "uint8", indexed: false },
      { name: "weight", type: "uint256", indexed: false },
      { name: "reason", type: "string", indexed: false },
    ],
  },
] as const;

/** Raised when the voter had no votes at the proposal's snapshot (GPUTOKEN votes only once delegated). */
export class NoVotingPowerError extends BlendrError {
  constructor(public account: string, public snapshotUnix: bigint) {
    super(`${account} had no votes at the proposal's snapshot`, "FAILED_PRECONDITION");
  }
}

/** Raised when the voter has already voted on the proposal (the Governor counts one vote per address). */
export class AlreadyVotedError extends BlendrError {
  constructor(public account: string) {
    super(`${account} has already voted on this proposal`, "FAILED_PRECONDITION");
  }
}

/** Raised when the proposal is not open for votes on the chain now (the page's list may be older). */
export class VotingClosedError extends BlendrError {
  constructor(public state: string) {
    super(`voting is not open: the proposal is ${state}`, "FAILED_PRECONDITION");
  }
}

/** Raised when the vote's transaction was mined but reverted (another vote or the deadline landed first). */
export class VoteRevertedError extends BlendrError {
  constructor(public tx: string) {
    super(`the vote transaction ${tx} reverted`, "FAILED_PRECONDITION");
  }
}

/** What the checks read from the Governor (through the wallet's eth_call). */
export interface GovernorReads {
  state(proposalId: bigint): Promise<number>;
  hasVoted(proposalId: bigint, account: `0x${string}`): Promise<boolean>;
  getVotes(account: `0x${string}`, timepoint: bigint): Promise<bigint>;
}

export function governorStateName(state: number): string {
  return GOVERNOR_STATES[state] ?? `state ${state}`;
}

/** The voter's weight on the proposal; throws (nothing sent) when the Governor would refuse the vote.
 *
 * @throws VotingClosedError, AlreadyVotedError, NoVotingPowerError
 */
export async function checkCanVote(
  gov: GovernorReads,
  proposalId: bigint,
  snapshotUnix: bigint,
  account: `0x${string}`,
): Promise<bigint> {
  const state = await gov.state(proposalId);
  if (state !== ACTIVE) throw new VotingClosedError(governorStateName(state));
  if (await gov.hasVoted(proposalId, account)) throw new AlreadyVotedError(account);
  const weight = await gov.getVotes(account, snapshotUnix);
  if (weight === 0n) throw new NoVotingPowerError(account, snapshotUnix);
  return weight;
}

/** A proposal's tally as the King lists it (GPUTOKEN wei, decimal strings; "" is 0). */
export interface Tally {
  votesFor: string;
  votesAgainst: string;
  votesAbstain: string;
}

/** The tally with `weight` added on the `support` side. */
export function tallyAfter(t: Tally, support: Support, weight: bigint): Tally {
  const n = (s: string) => BigInt(s || "0");
  return {
    votesFor: String(n(t.votesFor) + (support === "for" ? weight : 0n)),
    votesAgainst: String(n(t.votesAgainst) + (support === "against" ? weight : 0n)),
    votesAbstain: String(n(t.votesAbstain) + (support === "abstain" ? weight : 0n)),
  };
}

/** Whether `seen` counts at least the votes of `want` on every side (other votes may land meanwhile). */
export function tallyReached(seen: Tally, want: Tally): boolean {
  const n = (s: string) => BigInt(s || "0");
  return n(seen.votesFor) >= n(want.votesFor) && n(seen.votesAgainst) >= n(want.votesAgainst) && n(seen.votesAbstain) >= n(want.votesAbstain);
}

export interface PollOptions {
  intervalMs: number;
  /** At most this many reads. */
  attempts: number;
  sleep?: (ms: number) => Promise<void>;
  /** Stop early (the view was left). */
  stopped?: () => boolean;
}

/** Re-reads the proposal (`read`) until its tally reaches `want`; the tally seen then, or null when it did not
 * within `attempts` reads (or `stopped` said so). A failed read counts as an attempt and is not thrown. */
export async function waitForTally<T extends Tally>(read: () => Promise<T | undefined>, want: Tally, opts: PollOptions): Promise<T | null> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let i = 0; i < opts.attempts; i++) {
    if (opts.stopped?.()) return null;
    try {
      const seen = await read();
      if (seen && tallyReached(seen, want)) return seen;
    } catch {
      // the King away for a moment: the next read may answer
    }
    if (i + 1 < opts.attempts) await sleep(opts.intervalMs);
  }
  return null;
}
