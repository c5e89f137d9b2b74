// #/network (no wallet needed): pools, providers with their challenge pass rate, recent challenges with their
// ETC batches, and governance proposals with their tallies (read-only).
import { network, renter } from "../api";
import { h, mount, type Child } from "../dom";
import type { ChallengeVerdict, Pool, ProviderView } from "../gen/protos/blendr/v1/network_pb";
import { ProposalState, type Proposal } from "../gen/protos/blendr/v1/renter_pb";
import { app, bytes, loading, markReady, pct, perGpuHour, ratioPct, shortAddr, showError, stackable, tflops, tok, txLink, when } from "../ui";
import { passRateSparkline } from "./charts";

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
  void section(sections.proposals, "proposals", () => renter.listProposals({ limit: 50 }), (r) => proposalsTable(r.proposals, r.asOfBlock));
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

function proposalsTable(proposals: Proposal[], asOf: bigint): HTMLElement {
  const t = table(
    "proposals",
    "Governance proposals",
    ["Proposal", "State", "For", "Against", "Abstain", "Quorum", "Voting"],
    proposals.map((p) =>
      h(
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
        h("td", { testid: "proposal-for" }, tok(p.votesFor || "0")),
        h("td", { testid: "proposal-against" }, tok(p.votesAgainst || "0")),
        h("td", { testid: "proposal-abstain" }, tok(p.votesAbstain || "0")),
        h("td", { testid: "proposal-quorum" }, tok(p.quorum || "0")),
        h("td", { testid: "proposal-deadline" }, `${when(Number(p.snapshotUnix))} to ${when(Number(p.deadlineUnix))}`, p.etaUnix ? h("small", { class: "block muted" }, `executes after ${when(Number(p.etaUnix))}`) : null),
      ),
    ),
    "No proposals yet.",
  );
  return h("div", null, t, h("p", { class: "muted", testid: "proposals-as-of" }, `As read at Ethereum block ${asOf}.`));
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.replace(/^#\s*/, "") || "(no description)";
}
