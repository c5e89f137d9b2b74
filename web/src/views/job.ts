// #/jobs/<id>: the job's timeline, live logs (WatchJob, resumed with after_seq), progress, cost, Cancel, and
// once settled the receipt per rental with its Ethereum transactions and the ETC verification of its challenges.
import { Code, ConnectError } from "@connectrpc/connect";
import { authed, network, renter } from "../api";
import { h, mount } from "../dom";
import type { ChallengeVerdict } from "../gen/protos/blendr/v1/network_pb";
import { JobState, type Job, type RentalSummary } from "../gen/protos/blendr/v1/renter_pb";
import { formatDuration } from "../lib/format";
import type { Route } from "../route";
import { fixes, needWallet } from "../session";
import { applyEvent, canCancel, emptyTimeline, STATE_NAMES, timelineItems, type JobTimeline } from "../timeline";
import { app, bytes, kv, loading, markReady, perGpuHour, ratioPct, shortAddr, showError, tok, txLink, when } from "../ui";

const RETRY_MAX_S = 30;

export function renderJob(el: HTMLElement, route: Route): () => void {
  const jobId = route.view === "job" ? route.jobId : "";
  const abort = new AbortController();
  let tl: JobTimeline = emptyTimeline();
  let renderedLogs = 0n;
  // The job as last seen (GetJob, then each event that carries it) and its state now.
  let latest: Job | undefined;
  let stateNow = JobState.UNSPECIFIED;

  const title = h("h1", null, "Job ", h("code", { testid: "job-id" }, jobId));
  const state = h("span", { testid: "job-state", class: "badge" }, "…");
  const streamStatus = h("span", { testid: "stream-status", class: "muted" }, "connecting");
  const timeline = h("ol", { testid: "job-timeline", class: "timeline", "aria-label": "Job state timeline" });
  const bar = h("progress", { testid: "job-progress", max: "1", "aria-label": "Job progress" });
  const barText = h("span", { testid: "job-progress-text" }, "progress unknown");
  const facts = h("dl", { class: "kv", testid: "job-facts" });
  const cancelBtn = h("button", { type: "button", testid: "cancel-job", class: "danger", hidden: true }, "Cancel job");
  const follow = h("input", { type: "checkbox", id: "logs-follow", testid: "logs-follow", checked: true });
  const logs = h("pre", { testid: "job-logs", class: "logs", role: "log", "aria-live": "polite", "aria-label": "Job logs", tabindex: "0" });
  const receipt = h("section", { testid: "receipt", hidden: true });
  mount(
    el,
    title,
    h("p", null, state, " ", streamStatus),
    timeline,
    h("div", { class: "row" }, bar, barText),
    facts,
    h("div", { class: "row" }, cancelBtn),
    h("h2", null, "Logs"),
    h("label", { class: "inline" }, follow, " Follow the end of the logs"),
    logs,
    receipt,
  );
  // Scrolling up to read stops following the end; scrolling back to the end follows again.
  logs.addEventListener("scroll", () => {
    follow.checked = logs.scrollHeight - logs.scrollTop - logs.clientHeight < 24;
  });
  if (!app.info) {
    mount(facts, loading("job-loading"));
    return () => abort.abort();
  }

  const draw = () => {
    const job = latest;
    const items = timelineItems(tl);
    mount(
      timeline,
      items.map((i) =>
        h(
          "li",
          { testid: "timeline-step", "data-step": i.step, "data-status": i.status, class: i.status, "aria-current": i.status === "current" ? "step" : false },
          h("span", { class: "step-label" }, i.label),
          i.ts ? h("time", { datetime: new Date(i.ts * 1000).toISOString() }, when(i.ts)) : null,
        ),
      ),
    );
    const progress = tl.progress >= 0 ? tl.progress : job && job.progress >= 0 ? job.progress : -1;
    showState(stateNow);
    if (progress >= 0) {
      bar.value = progress;
      barText.textContent = `${ratioPct(progress)} done`;
    } else {
      bar.removeAttribute("value");
      barText.textContent = "progress unknown";
    }
    if (job) drawFacts(job);
    // New log lines only: the rest are already on the page.
    const fresh = tl.logs.filter((l) => l.seq > renderedLogs);
    if (fresh.length) {
      const stick = follow.checked;
      logs.append(fresh.map((l) => l.text + (l.text.endsWith("\n") ? "" : "\n")).join(""));
      renderedLogs = fresh[fresh.length - 1]!.seq;
      if (stick) logs.scrollTop = logs.scrollHeight;
    }
  };

  const showState = (s: JobState) => {
    state.textContent = STATE_NAMES[s];
    state.setAttribute("data-state", STATE_NAMES[s]);
    cancelBtn.hidden = !canCancel(s);
  };

  /** Remember the job as the King last sent it (its state is the state now). */
  const drawJob = (job: Job) => {
    latest = job;
    stateNow = job.state;
    showState(job.state);
    drawFacts(job);
  };

  const drawFacts = (job: Job) => {
    if (job.name) title.replaceChildren(job.name, " ", h("code", { testid: "job-id" }, job.jobId));
    const spec = job.spec;
    mount(
      facts,
      kv("Asked for", spec ? `${spec.gpus} × ${spec.gpuModel || "any GPU"} for ${formatDuration(Number(spec.durationS))}, at most ${perGpuHour(spec.maxPricePerGpuHour)}` : "—", "job-spec"),
      kv("Cost so far", tok(job.costSoFar || "0"), "job-cost"),
      kv("Provider", job.provider ? h("code", { title: job.provider }, shortAddr(job.provider)) : "not placed yet", "job-provider"),
      kv("Queen", job.queen ? h("code", { title: job.queen }, shortAddr(job.queen)) : "—", "job-queen"),
      kv("Submitted", when(job.submittedUnix), "job-submitted"),
      job.reason ? kv("Reason", job.reason, "job-reason") : [],
      tl.settling ? kv("Settlement waits for", tl.settling, "job-settling") : [],
      tl.rescheduled ? kv("Moved", `${tl.rescheduled} time${tl.rescheduled === 1 ? "" : "s"} to another provider`, "job-rescheduled") : [],
      job.state === JobState.ENDED || job.state === JobState.SETTLED || job.state === JobState.FAILED ? kv("Exit code", String(job.exitCode), "job-exit-code") : [],
      job.outputState ? kv("Outputs", outputText(job), "job-output") : [],
    );
    if (job.rentals.length && job.rentals.some((r) => r.settledTx || r.state === "settled")) drawReceipt(job);
  };

  let receiptFor = "";
  const drawReceipt = (job: Job) => {
    const key = job.rentals.map((r) => r.settledTx + r.state).join(",");
    if (key === receiptFor) return;
    receiptFor = key;
    receipt.hidden = false;
    const info = app.info;
    const body = h("div", null, job.rentals.map((r) => rentalReceipt(r, info?.ethExplorerTxUrl)));
    mount(receipt, h("h2", null, "Receipt"), body);
    // The ETC side: the challenges of each rental and the batch that recorded them.
    void Promise.all(job.rentals.map((r) => network.listChallenges({ provider: r.provider, limit: 500 }).catch(() => null))).then((answers) => {
      job.rentals.forEach((r, i) => {
        const box = body.children[i]?.querySelector("[data-testid=receipt-etc]");
        const list = answers[i];
        if (!box) return;
        if (!list) return mount(box, "ETC verification unavailable.");
        mount(box, etcInfo(list.challenges.filter((c) => sameBytes(c.rentalId, r.rentalId)), info?.etcExplorerTxUrl));
      });
    });
  };

  cancelBtn.addEventListener("click", async () => {
    if (!window.confirm("Cancel this job? Its rental settles for the verified time so far; the rest of the escrow is refunded.")) return;
    cancelBtn.disabled = true;
    try {
      const { w, info } = await needWallet();
      const job = await authed(w, info, () => renter.cancelJob({ jobId, reason: "cancelled by the renter in the web page" }));
      drawJob(job);
      draw();
    } catch (e) {
      showError(e, fixes(e));
    } finally {
      cancelBtn.disabled = false;
    }
  });

  const watch = async () => {
    let attempt = 0;
    let w, info;
    try {
      ({ w, info } = await needWallet());
      const job = await authed(w, info, () => renter.getJob({ jobId }));
      drawJob(job);
      markReady();
    } catch (e) {
      streamStatus.textContent = "";
      mount(facts, h("p", { class: "muted" }, "This job cannot be shown."));
      showError(e, fixes(e, () => app.rerender()));
      return;
    }
    while (!abort.signal.aborted) {
      try {
        streamStatus.textContent = "live";
        await authed(w, info, async () => {
          for await (const ev of renter.watchJob({ jobId, afterSeq: tl.lastSeq }, { signal: abort.signal })) {
            tl = applyEvent(tl, ev);
            attempt = 0;
            if (ev.job) drawJob(ev.job);
            else if (ev.state !== JobState.UNSPECIFIED) stateNow = ev.state;
            draw();
          }
        });
        streamStatus.textContent = "no more events";
        streamStatus.setAttribute("data-stream", "ended");
        return;
      } catch (e) {
        if (abort.signal.aborted) return;
        const retryable = !(e instanceof ConnectError) || [Code.Unavailable, Code.Unknown, Code.DeadlineExceeded, Code.Internal, Code.Aborted].includes(e.code);
        if (!retryable) {
          streamStatus.textContent = "stopped";
          showError(e, fixes(e, () => app.rerender()));
          return;
        }
        attempt++;
        const wait = Math.min(RETRY_MAX_S, 2 ** attempt) * (0.5 + Math.random() / 2);
        streamStatus.textContent = `reconnecting in ${Math.ceil(wait)} s…`;
        streamStatus.setAttribute("data-stream", "reconnecting");
        await sleep(wait * 1000, abort.signal);
      }
    }
  };
  void watch();
  return () => abort.abort();
}

function rentalReceipt(r: RentalSummary, ethTx: string | undefined): HTMLElement {
  return h(
    "article",
    { testid: "receipt-rental", class: "card", "data-rental-id": hex(r.rentalId) },
    h("h3", null, "Rental ", h("code", { title: hex(r.rentalId) }, shortAddr(hex(r.rentalId)))),
    h(
      "dl",
      { class: "kv" },
      kv("State", r.state, "receipt-state"),
      kv("Provider", h("code", { title: r.provider }, shortAddr(r.provider)), "receipt-provider"),
      kv("Price", perGpuHour(r.pricePerGpuHour), "receipt-price"),
      kv("Escrow", tok(r.escrow || "0"), "receipt-escrow"),
      kv("Verified time", `${formatDuration(Number(r.verifiedSeconds))} (${r.verifiedSeconds} s)`, "receipt-verified"),
      kv("Verification", r.failedVerification ? "failed: the provider's stake is slashed" : "passed", "receipt-verification"),
      kv("Paid to the provider", tok(r.providerPayment || "0"), "receipt-payment"),
      kv("Protocol fee", tok(r.fee || "0"), "receipt-fee"),
      kv("Refunded to you", tok(r.refund || "0"), "receipt-refund"),
      kv("Created (Ethereum)", txLink(r.createdTx, ethTx, "receipt-created-tx"), "receipt-created"),
      kv("Settled (Ethereum)", txLink(r.settledTx, ethTx, "receipt-settled-tx"), "receipt-settled"),
      kv("Verification (ETC)", h("span", null, "Loading…"), "receipt-etc"),
    ),
  );
}

function etcInfo(challenges: ChallengeVerdict[], etcTx: string | undefined): HTMLElement {
  if (challenges.length === 0) return h("span", { class: "muted" }, "no challenges of this rental on record");
  const passed = challenges.filter((c) => c.verdict === "passed").length;
  const batches = new Map<string, string>();
  for (const c of challenges) if (c.etcBatchId) batches.set(c.etcBatchId, c.etcTx);
  return h(
    "span",
    null,
    h("span", { testid: "receipt-challenges" }, `${passed} of ${challenges.length} challenges passed`),
    batches.size
      ? [...batches].map(([batch, tx]) => h("span", { class: "block" }, "batch ", h("code", { testid: "receipt-etc-batch", title: batch }, shortAddr(batch)), " ", txLink(tx, etcTx, "receipt-etc-tx")))
      : h("span", { class: "block muted" }, "not yet recorded on ETC"),
  );
}

function outputText(job: Job): string {
  switch (job.outputState) {
    case "ready":
      return `ready: ${bytes(job.outputBytes)} sealed to your key, kept until ${when(job.outputExpiresUnix)} (fetch with blendr job get)`;
    case "pending":
      return "on their way to the King";
    case "failed":
      return `not available: ${job.outputReason}`;
    case "expired":
      return "removed after the King's retention period";
    default:
      return job.outputState;
  }
}

function hex(b: Uint8Array): string {
  return "0x" + [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.length > 0 && a.every((x, i) => x === b[i]);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
