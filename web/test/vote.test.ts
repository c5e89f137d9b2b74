import { describe, expect, it } from "vitest";
import {
  AlreadyVotedError,
  checkCanVote,
  GOVERNOR_ABI,
  NoVotingPowerError,
  SUPPORT,
  tallyAfter,
  tallyReached,
  VotingClosedError,
  waitForTally,
  type GovernorReads,
} from "../src/lib/vote";
import { describeError } from "../src/errors";

const ME = "0x000000000000000000000000000000000000bEEF" as const;
const E18 = 10n ** 18n;

function governor(over: Partial<{ state: number; voted: boolean; votes: bigint }> = {}) {
  const calls: string[] = [];
  const gov: GovernorReads = {
    state: async (id) => (calls.push(`state ${id}`), over.state ?? 1),
    hasVoted: async (id, who) => (calls.push(`hasVoted ${id} ${who}`), over.voted ?? false),
    getVotes: async (who, t) => (calls.push(`getVotes ${who} ${t}`), over.votes ?? 5n * E18),
  };
  return { gov, calls };
}

describe("checkCanVote", () => {
  it("answers the voter's weight at the proposal's snapshot", async () => {
    const { gov, calls } = governor();
    expect(await checkCanVote(gov, 7n, 1_700_000_000n, ME)).toBe(5n * E18);
    expect(calls).toEqual(["state 7", `hasVoted 7 ${ME}`, `getVotes ${ME} 1700000000`]);
  });

  it("refuses without votes at the snapshot, and says how to get them", async () => {
    const { gov } = governor({ votes: 0n });
    const err = await checkCanVote(gov, 7n, 1_700_000_000n, ME).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoVotingPowerError);
    const ui = describeError(err, { origin: "https://king.example", symbol: "GPUTOKEN" });
    expect(ui.kind).toBe("no-voting-power");
    expect(ui.message).toContain(`blendr gov delegate ${ME}`);
    expect(ui.message).toContain("2023-11-14 22:13:20 UTC");
    expect(ui.message).toContain("nothing was sent");
  });

  it("refuses a second vote and a closed proposal before reading further", async () => {
    const voted = governor({ voted: true });
    await expect(checkCanVote(voted.gov, 7n, 1n, ME)).rejects.toBeInstanceOf(AlreadyVotedError);
    expect(voted.calls).toHaveLength(2);
    const closed = governor({ state: 3 });
    const err = await checkCanVote(closed.gov, 7n, 1n, ME).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VotingClosedError);
    expect((err as VotingClosedError).state).toBe("defeated");
    expect(closed.calls).toEqual(["state 7"]);
    expect(describeError(err, { origin: "", symbol: "GPUTOKEN" }).kind).toBe("voting-closed");
    expect(describeError(new AlreadyVotedError(ME), { origin: "", symbol: "GPUTOKEN" }).kind).toBe("already-voted");
  });
});

describe("tallies", () => {
  const before = { votesFor: "10", votesAgainst: "", votesAbstain: "3" };

  it("adds the weight on the voted side", () => {
    expect(tallyAfter(before, "for", 5n)).toEqual({ votesFor: "15", votesAgainst: "0", votesAbstain: "3" });
    expect(tallyAfter(before, "abstain", 5n)).toEqual({ votesFor: "10", votesAgainst: "0", votesAbstain: "8" });
    expect(tallyReached({ votesFor: "16", votesAgainst: "0", votesAbstain: "3" }, tallyAfter(before, "for", 5n))).toBe(true);
    expect(tallyReached(before, tallyAfter(before, "for", 5n))).toBe(false);
  });

  it("re-reads until the tally reaches the vote, a bounded number of times", async () => {
    const want = tallyAfter(before, "for", 5n);
    const seen = [before, undefined, { ...before, votesFor: "15" }];
    const slept: number[] = [];
    let reads = 0;
    const got = await waitForTally(async () => {
      const s = seen[reads++];
      if (reads === 2) throw new Error("King away");
      return s;
    }, want, { intervalMs: 3000, attempts: 5, sleep: async (ms) => void slept.push(ms) });
    expect(got?.votesFor).toBe("15");
    expect(reads).toBe(3);
    expect(slept).toEqual([3000, 3000]);

    let n = 0;
    const never = await waitForTally(async () => (n++, before), want, { intervalMs: 1, attempts: 4, sleep: async () => {} });
    expect(never).toBeNull();
    expect(n).toBe(4);
  });
});

it("votes with GovernorCountingSimple's numbering", () => {
  expect(SUPPORT).toEqual({ against: 0, for: 1, abstain: 2 });
  expect(GOVERNOR_ABI.find((f) => f.name === "castVote")?.inputs.map((i) => i.type)).toEqual(["uint256", "uint8"]);
});
