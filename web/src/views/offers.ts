// #/offers (the landing view): what the network offers per GPU model, and each model's quote over time.
import { network, renter } from "../api";
import { priceSeries } from "../chart";
import { h, mount } from "../dom";
import type { Offer } from "../gen/protos/blendr/v1/renter_pb";
import { app, bytes, loading, markReady, stackable, pct, perGpuHour, showError, tflops, tok, when } from "../ui";
import { priceChart } from "./charts";

export function renderOffers(el: HTMLElement): () => void {
  const table = h("div", { testid: "offers" }, loading("offers-loading"));
  const charts = h("div", { testid: "price-history", class: "charts" }, loading("price-history-loading"));
  mount(
    el,
    h("h1", null, "GPU offers"),
    h("p", { class: "muted" }, "What the network's providers offer now, per GPU model. Prices are per GPU-hour."),
    table,
    h("h2", null, "Quote over time"),
    charts,
  );
  let live = true;
  const load = async () => {
    try {
      const res = await renter.listOffers({});
      if (live) {
        mount(table, offersTable(res.offers));
        markReady();
      }
    } catch (e) {
      if (live) {
        mount(table, h("p", { class: "muted", testid: "offers-unavailable" }, "Offers unavailable."));
        showError(e, [{ label: "Retry", testid: "error-retry", run: () => app.rerender() }]);
      }
    }
    try {
      const hist = await network.getPriceHistory({ gpuModel: "", windowS: 0 });
      if (live) mount(charts, priceCharts(hist.points));
    } catch {
      if (live) mount(charts, h("p", { class: "muted", testid: "price-history-unavailable" }, "Price history unavailable."));
    }
  };
  void load();
  return () => {
    live = false;
  };
}

function offersTable(offers: Offer[]): HTMLElement {
  if (offers.length === 0) return h("p", { testid: "offers-empty" }, "No GPUs are offered right now.");
  return h(
    "div",
    { class: "scroll" },
    stackable(h(
      "table",
      { testid: "offers-table" },
      h("caption", { class: "sr-only" }, "GPU offers"),
      h(
        "thead",
        null,
        h("tr", null, ["GPU model", "Providers", "Free / total", "Min ask", "Quote", "Best reputation", "VRAM", "Compute", "Sandbox", ""].map((c) => h("th", { scope: "col" }, c))),
      ),
      h(
        "tbody",
        null,
        offers.map((o) =>
          h(
            "tr",
            { testid: "offer-row", "data-model": o.gpuModel },
            h("th", { scope: "row", testid: "offer-model" }, o.gpuModel),
            h("td", { testid: "offer-providers" }, `${o.providers} provider${o.providers === 1 ? "" : "s"}`),
            h("td", { testid: "offer-gpus" }, `${o.gpusFree} / ${o.gpusTotal} GPUs`),
            h("td", { testid: "offer-min-ask" }, perGpuHour(o.minAskPerGpuHour)),
            h("td", { testid: "offer-quote" }, perGpuHour(o.quotePerGpuHour)),
            h("td", { testid: "offer-reputation" }, pct(o.bestReputationBps)),
            h("td", { testid: "offer-vram" }, bytes(o.vramBytes)),
            h("td", { testid: "offer-tflops" }, tflops(o.tflops)),
            h(
              "td",
              { testid: "offer-sandbox" },
              o.unsandboxedProviders > 0
                ? h("span", { class: "warn", testid: "offer-unsandboxed", title: "These providers run jobs without a sandbox: the provider's operator could read the job." },
                    `⚠ ${o.unsandboxedProviders} of ${o.providers} unsandboxed`)
                : "all sandboxed",
            ),
            h("td", null, h("a", { href: `#/submit?model=${encodeURIComponent(o.gpuModel)}`, testid: "offer-rent", "aria-label": `Rent ${o.gpuModel}` }, "Rent")),
          ),
        ),
      ),
    )),
  );
}

function priceCharts(points: Parameters<typeof priceSeries>[0]): HTMLElement {
  const series = priceSeries(points);
  if (series.size === 0) return h("p", { testid: "price-history-empty", class: "muted" }, "No price samples yet.");
  const fmt = (wei: number) => tok(BigInt(Math.round(wei)));
  return h(
    "div",
    { class: "chart-grid" },
    [...series.entries()].map(([model, pts]) => {
      const last = pts[pts.length - 1]!;
      const first = pts[0]!;
      return h(
        "figure",
        { testid: "price-chart", "data-model": model },
        priceChart(pts, `Quote per GPU-hour of ${model} from ${when(first.t)} to ${when(last.t)}`, fmt),
        h(
          "figcaption",
          null,
          h("strong", null, model),
          " now ",
          h("span", { testid: "price-chart-last" }, `${fmt(last.v)} / GPU-hour`),
          h("span", { class: "muted" }, ` · ${pts.length} samples since ${when(first.t)}`),
        ),
      );
    }),
  );
}

