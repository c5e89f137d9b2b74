// #/network (no wallet needed): pools, providers with their challenge pass rate, recent challenges with their
// ETC batches, and governance proposals with their tallies. With a browser wallet connected, an active proposal
// can be voted on from here (castVote through the wallet); the tally shows once the King re-reads the proposals.
import type { Hex } from "viem";
import { network, renter } from "../api";
import { h, mount, type Child } from "../dom";
import type { ChallengeVerdict, Pool, ProviderView } from "../gen/protos/blendr/v1/network_pb";
import { ProposalState, type Proposal } from "../gen/protos/blendr/v1/renter_pb";
import { governorReads, sendVote, voteRecorded } from "../governance";
import { checkCanVote, tallyAfter, waitForTally, type Support } from "../lib/vote";
import { fixes, needWallet } from "../session";
import { app, bytes, clearError, loading, markReady, pct, perGpuHour, ratioPct, shortAddr, showError, stackable, tflops, tok, txLink, when } from "../ui";
import { wallet } from "../wallet";
import { passRateSparkline } from "./charts";

// How the page waits for the King's next read of the proposals (chain.gov_refresh_s, 30 s by default).
const TALLY_POLL_MS = 3_000;
const TALLY_POLLS = 40; // two minutes

export function renderNetwork(el: HTMLElement): () => void {
  const info = app.info;
  const sections = {
    pools: h("div", { testid: "pools" }, loading("pools-loading")),
    providers: h("div", { testid: "providers" }, loading("providers-loading")),
    challenges: h("div", { testid: "challenges" }, loading("challenges-loading")),
    proposals: h("div", { testid: "proposals" }, loading("proposals-loading")),
  };
  mount(
    el,
    h("h1", null, "Network"),
    info
      ? h(
          "p",
          { class: "muted", testid: "network-summary" },
          `${info.network}: Ethereum chain ${info.ethChainId}, Ethereum Classic chain ${info.etcChainId}; King `,
          h("code", { title: info.kingAddress }, shortAddr(info.kingAddress)),
          info.leader ? " (leader)" : " (follower: answers may lag)",
        )
      : null,
    h("h2", null, "Pools"),
    sections.pools,
    h("h2", null, "Providers"),
    sections.providers,
    h("h2", null, "Recent challenges"),
    sections.challenges,
    h("h2", null, "Governance proposals"),
    sections.proposals,
  );
  let live = true;
  const section = async <T,>(box: HTMLElement, name: string, get: () => Promise<T>, draw: (x: T) => Child) => {
    try {
      const value = await get();
      if (live) mount(box, draw(value));
    } catch (e) {
      if (!live) return;
      mount(box, h("p", { class: "muted", testid: `${name}-unavailable` }, "Unavailable."));
      showError(e, [{ label: "Retry", testid: "error-retry", run: () => app.rerender() }]);
    }
  };
  void section(sections.pools, "pools", () => network.listPools({}), (r) => {
    markReady();
    return poolsTable(r.pools);
  });
  void section(sections.providers, "providers", () => network.listNetworkProviders({}), (r) => providersTable(r.providers));
  void section(sections.challenges, "challenges", () => network.listChallenges({ limit: 50 }), (r) => challengesTable(r.challenges, info?.etcExplorerTxUrl));
  void section(sections.proposals, "proposals", () => renter.listProposals({ limit: 50 }), (r) => proposalsTable(r.proposals, r.asOfBlock, () => live));
  return () => {
    live = false;
  };
}

function table(testid: string, caption: string, cols: string[], rows: HTMLElement[], empty: string): HTMLElement {
  if (rows.length === 0) return h("p", { testid: `${testid}-empty`, class: "muted" }, empty);
  return h(
    "div",
    { class: "scroll" },
    stackable(h(
      "table",
      { testid: `${testid}-table` },
      h("caption", { class: "sr-only" }, caption),
      h("thead", null, h("tr", null, cols.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, rows),
    )),
  );
}

function poolsTable(pools: Pool[]): HTMLElement {
  return table(
    "pools",
    "Pools",
    ["Queen", "Endpoint", "Providers alive / total", "GPUs free / total", "Connected since", "Last snapshot"],
    pools.map((p) =>
      h(
        "tr",
        { testid: "pool-row", "data-queen": p.queen },
        h("th", { scope: "row" }, h("code", { title: p.queen }, shortAddr(p.queen))),
        h("td", { testid: "pool-endpoint" }, p.endpoint),
        h("td", { testid: "pool-providers" }, `${p.providersAlive} / ${p.providers} providers`),
        h("td", { testid: "pool-gpus" }, `${p.gpusFree} / ${p.gpusTotal} GPUs`),
        h("td", { testid: "pool-since" }, when(p.connectedSinceUnix)),
        h("td", { testid: "pool-snapshot" }, when(p.lastSnapshotUnix)),
      ),
    ),
    "No queen is connected to this King.",
  );
}

function providersTable(providers: ProviderView[]): HTMLElement {
  return table(
    "providers",
    "Providers",
    ["Provider", "GPU model", "GPUs busy / total", "State", "Uptime", "Reputation", "Sandbox", "Ask", "Challenges (24 h, hourly pass rate)"],
    providers.map((p) => {
      const decided = p.challengesPassed + p.challengesFailed;
      return h(
        "tr",
        { testid: "provider-row", "data-provider": p.address, "data-state": p.state },
        h("th", { scope: "row" }, h("code", { title: p.address }, shortAddr(p.address))),
        h("td", { testid: "provider-model" }, p.gpuModel, h("small", { class: "block muted" }, `${bytes(p.vramBytes)}, ${tflops(p.tflops)}`)),
        h("td", { testid: "provider-gpus" }, `${p.busyGpus} / ${p.gpus} GPUs`),
        h("td", { testid: "provider-state", class: p.state === "offline" ? "warn" : "" }, p.state),
        h("td", { testid: "provider-uptime" }, ratioPct(p.uptime)),
        h("td", { testid: "provider-reputation" }, pct(p.reputationBps)),
        h("td", { testid: "provider-sandbox", class: p.sandbox === "none" ? "warn" : "" }, p.sandbox === "none" ? "⚠ none" : p.sandbox),
        h("td", { testid: "provider-ask" }, perGpuHour(p.askPerGpuHour)),
        h(
          "td",
          { testid: "provider-challenges" },
          passRateSparkline(p.passRate, `Challenge pass rate per hour of ${shortAddr(p.address)}`),
          h("small", { class: "block muted" }, decided ? `${p.challengesPassed} of ${decided} passed (${ratioPct(p.challengesPassed / decided)})` : "no verdicts yet"),
        ),
      );
    }),
    "No providers are connected.",
  );
}

function challengesTable(challenges: ChallengeVerdict[], etcTx: string | undefined): HTMLElement {
  return table(
    "challenges",
    "Recent challenges",
    ["Decided", "Provider", "Verdict", "Reason", "ETC batch"],
    challenges.map((c) =>
      h(
        "tr",
        { testid: "challenge-row", "data-verdict": c.verdict },
        h("td", { testid: "challenge-time" }, when(c.decidedUnix || c.issuedUnix)),
        h("td", { testid: "challenge-provider" }, h("code", { title: c.provider }, shortAddr(c.provider))),
        h("td", { testid: "challenge-verdict", class: c.verdict === "passed" ? "ok" : "warn" }, c.verdict),
        h("td", { testid: "challenge-reason" }, c.reason || "—"),
        h(
          "td",
          { testid: "challenge-etc" },
          c.etcBatchId ? [h("code", { title: c.etcBatchId }, shortAddr(c.etcBatchId)), " ", txLink(c.etcTx, etcTx, "challenge-etc-tx")] : c.rentalId.length ? "pending" : "outside a rental",
        ),
      ),
    ),
    "No challenges decided yet.",
  );
}

const PROPOSAL_STATES: Record<ProposalState, string> = {
  [ProposalState.UNSPECIFIED]: "unknown",
  [ProposalState.PENDING]: "pending",
  [ProposalState.ACTIVE]: "active",
  [ProposalState.CANCELED]: "canceled",
  [ProposalState.DEFEATED]: "defeated",
  [ProposalState.SUCCEEDED]: "succeeded",
  [ProposalState.QUEUED]: "queued",
  [ProposalState.EXPIRED]: "expired",
  [ProposalState.EXECUTED]: "executed",
};

function proposalsTable(proposals: Proposal[], asOf: bigint, live: () => boolean): HTMLElement {
  const asOfNote = h("p", { class: "muted", testid: "proposals-as-of" }, `As read at Ethereum block ${asOf}.`);
  const t = table(
    "proposals",
    "Governance proposals",
    ["Proposal", "State", "For", "Against", "Abstain", "Quorum", "Voting", "Your vote"],
    proposals.map((p) => {
      const tally = {
        votesFor: h("td", { testid: "proposal-for" }, tok(p.votesFor || "0")),
        votesAgainst: h("td", { testid: "proposal-against" }, tok(p.votesAgainst || "0")),
        votesAbstain: h("td", { testid: "proposal-abstain" }, tok(p.votesAbstain || "0")),
      };
      return h(
        "tr",
        { testid: "proposal-row", "data-proposal-id": p.proposalId, "data-state": PROPOSAL_STATES[p.state] },
        h(
          "th",
          { scope: "row" },
          h("span", { testid: "proposal-description" }, firstLine(p.description)),
          h("small", { class: "block muted" }, `by ${shortAddr(p.proposer)}`),
          p.calls.length ? h("ul", { class: "calls" }, p.calls.map((c) => h("li", { testid: "proposal-call" }, c.text || `call ${shortAddr(c.target)}`))) : null,
        ),
        h("td", { testid: "proposal-state" }, PROPOSAL_STATES[p.state]),
        tally.votesFor,
        tally.votesAgainst,
        tally.votesAbstain,
        h("td", { testid: "proposal-quorum" }, tok(p.quorum || "0")),
        h("td", { testid: "proposal-deadline" }, `${when(Number(p.snapshotUnix))} to ${when(Number(p.deadlineUnix))}`, p.etaUnix ? h("small", { class: "block muted" }, `executes after ${when(Number(p.etaUnix))}`) : null),
        h("td", { testid: "proposal-vote" }, p.state === ProposalState.ACTIVE ? voteCell(p, tally, asOfNote, live) : "—"),
      );
    }),
    "No proposals yet.",
  );
  return h("div", null, t, asOfNote);
}

const SUPPORT_LABEL: Record<Support, string> = { for: "For", against: "Against", abstain: "Abstain" };
const SUPPORT_OF: Record<number, Support> = { 0: "against", 1: "for", 2: "abstain" };

/** The vote buttons of an active proposal (a browser wallet), or why there are none. */
function voteCell(p: Proposal, cells: Record<"votesFor" | "votesAgainst" | "votesAbstain", HTMLElement>, asOfNote: HTMLElement, live: () => boolean): Child {
  const w = wallet();
  if (!w) return h("small", { class: "muted", testid: "vote-connect" }, "Connect a browser wallet to vote.");
  if (w.kind !== "injected") {
    return h(
      "small",
      { class: "muted", testid: "vote-unavailable" },
      "Voting needs a browser wallet, or use ",
      h("code", null, `blendr gov vote ${p.proposalId} for`),
      ".",
    );
  }
  const status = h("div", { testid: "vote-status", "data-stage": "idle" });
  const stage = (name: string, ...children: Child[]) => {
    status.setAttribute("data-stage", name);
    mount(status, ...children);
  };
  const buttons = (["for", "against", "abstain"] as const).map((support) =>
    h("button", { type: "button", class: "secondary small", testid: `vote-${support}`, onclick: () => void vote(support) }, SUPPORT_LABEL[support]),
  );
  const enable = (on: boolean) => buttons.forEach((b) => (b.disabled = !on));

  const vote = async (support: Support) => {
    enable(false);
    clearError();
    let sent = false;
    try {
      stage("checking", h("small", { class: "muted" }, "Checking your votes at the proposal's snapshot…"));
      const { w, info } = await needWallet();
      const governance = info.governanceContract as Hex;
      const proposalId = BigInt(p.proposalId);
      await checkCanVote(governorReads(governance), proposalId, p.snapshotUnix, w.address);
      stage("signing", h("small", { class: "muted" }, "Confirm the vote in your wallet…"));
      const tx = await sendVote(w, governance, proposalId, support);
      sent = true;
      const txEl = txLink(tx, info.ethExplorerTxUrl, "vote-tx");
      stage("pending", h("small", { class: "block" }, "Vote sent: ", txEl), h("small", { class: "muted" }, "Waiting for it to be mined…"));
      const rec = await voteRecorded(tx);
      const side = SUPPORT_OF[rec.support] ?? support;
      const recorded = h(
        "small",
        { class: "block ok", testid: "vote-recorded", "data-support": side, "data-weight": String(rec.weight) },
        `You voted ${SUPPORT_LABEL[side]} with ${tok(rec.weight)} (block ${rec.block}).`,
      );
      const waiting = h("small", { class: "block muted", testid: "vote-tally-note" }, "The tally updates when the King next reads the proposals…");
      stage("recorded", h("small", { class: "block" }, "Vote sent: ", txEl), recorded, waiting);
      const want = tallyAfter(p, side, rec.weight);
      const seen = await waitForTally(
        async () => (await renter.listProposals({ limit: 50 })).proposals.find((q) => q.proposalId === p.proposalId),
        want,
        { intervalMs: TALLY_POLL_MS, attempts: TALLY_POLLS, stopped: () => !live() },
      );
      if (!live()) return;
      if (seen) {
        mount(cells.votesFor, tok(seen.votesFor || "0"));
        mount(cells.votesAgainst, tok(seen.votesAgainst || "0"));
        mount(cells.votesAbstain, tok(seen.votesAbstain || "0"));
        mount(asOfNote, "Tallies as the King last read them (after your vote).");
        stage("counted", h("small", { class: "block" }, "Vote sent: ", txEl), recorded, h("small", { class: "block muted", testid: "vote-tally-note" }, "Counted in the tally above."));
      } else {
        stage(
          "recorded",
          h("small", { class: "block" }, "Vote sent: ", txEl),
          recorded,
          h(
            "small",
            { class: "block muted", testid: "vote-tally-note" },
            "Your vote is on chain, but the King has not shown it in the tally yet (it re-reads proposals every chain.gov_refresh_s, 30 s by default). Reload later to see it.",
          ),
        );
      }
    } catch (e) {
      if (!live()) return;
      stage("failed", sent ? h("small", { class: "muted" }, "The vote did not go through.") : null);
      enable(!sent);
      showError(e, fixes(e));
    }
  };
  return [h("div", { class: "row" }, buttons), status];
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.replace(/^#\s*/, "") || "(no description)";
}
