// #/jobs: the renter's jobs, newest first, filtered by state (the filter lives in the hash: #/jobs?state=running).
import { authed, renter } from "../api";
import { h, mount } from "../dom";
import type { Job } from "../gen/protos/blendr/v1/renter_pb";
import { formatDuration } from "../lib/format";
import { routeHash, type Route } from "../route";
import { fixes, needWallet } from "../session";
import { STATE_NAMES, stateByName } from "../timeline";
import { app, loading, markReady, showError, stackable, tok, when } from "../ui";

const FILTERS = ["queued", "scheduled", "running", "ended", "settled", "failed", "cancelled"];

export function renderJobs(el: HTMLElement, route: Route): () => void {
  const selected = route.view === "jobs" ? route.states.filter((s) => FILTERS.includes(s)) : [];
  const list = h("div", { testid: "jobs" }, loading("jobs-loading"));
  const filters = h(
    "fieldset",
    { class: "filters", testid: "jobs-filters" },
    h("legend", null, "Show states"),
    FILTERS.map((name) => {
      const box = h("input", { type: "checkbox", id: `f-${name}`, testid: `filter-${name}`, checked: selected.includes(name) });
      box.addEventListener("change", () => {
        const states = FILTERS.filter((f) => (f === name ? box.checked : selected.includes(f)));
        location.hash = routeHash({ view: "jobs", states });
      });
      return h("label", { for: `f-${name}`, class: "inline" }, box, ` ${name}`);
    }),
  );
  mount(el, h("h1", null, "Your jobs"), filters, list, h("p", null, h("a", { href: "#/submit", testid: "jobs-submit" }, "Submit a job")));
  let live = true;
  const load = async () => {
    if (!app.info) return;
    try {
      const { w, info } = await needWallet();
      const states = selected.map(stateByName).filter((s) => s !== undefined);
      const res = await authed(w, info, () => renter.listJobs({ states, limit: 100 }));
      if (live) {
        mount(list, jobsTable(res.jobs));
        markReady();
      }
    } catch (e) {
      if (!live) return;
      mount(list, h("p", { class: "muted", testid: "jobs-unavailable" }, "Jobs unavailable."));
      showError(e, fixes(e, () => app.rerender()));
    }
  };
  void load();
  return () => {
    live = false;
  };
}

function jobsTable(jobs: Job[]): HTMLElement {
  if (jobs.length === 0) return h("p", { testid: "jobs-empty" }, "No jobs here yet.");
  return h(
    "div",
    { class: "scroll" },
    stackable(h(
      "table",
      { testid: "jobs-table" },
      h("caption", { class: "sr-only" }, "Your jobs"),
      h("thead", null, h("tr", null, ["Job", "State", "GPUs", "Duration", "Cost so far", "Submitted"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        null,
        jobs.map((j) =>
          h(
            "tr",
            { testid: "job-row", "data-job-id": j.jobId, "data-state": STATE_NAMES[j.state] },
            h("th", { scope: "row" }, h("a", { href: routeHash({ view: "job", jobId: j.jobId }), testid: "job-link" }, j.name || j.jobId)),
            h("td", { testid: "job-row-state" }, STATE_NAMES[j.state], j.reason ? h("small", { class: "block muted" }, j.reason) : null),
            h("td", { testid: "job-row-gpus" }, j.spec ? `${j.spec.gpus} × ${j.spec.gpuModel || "any"}` : "—"),
            h("td", { testid: "job-row-duration" }, j.spec ? formatDuration(Number(j.spec.durationS)) : "—"),
            h("td", { testid: "job-row-cost" }, tok(j.costSoFar || "0")),
            h("td", { testid: "job-row-submitted" }, when(j.submittedUnix)),
          ),
        ),
      ),
    )),
  );
}
