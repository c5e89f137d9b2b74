// Shared view helpers: the alert region, number formatting with units, links, busy buttons.
import type { NetworkInfo } from "./gen/protos/blendr/v1/network_pb";
import type { Offer } from "./gen/protos/blendr/v1/renter_pb";
import { h, mount, type Child } from "./dom";
import { describeError, type UiError } from "./errors";
import { formatBytes, formatTokens } from "./lib/format";

export interface App {
  info: NetworkInfo | null;
  /** Draw the current view again (after a retry): clears the alert, loads the network info if missing. */
  rerender(): void;
}

export const app: App = { info: null, rerender: () => {} };

export function symbol(): string {
  return app.info?.tokenSymbol || "GPUTOKEN";
}

/** An amount of tokens (wei) with its unit: "1.5 GPUTOKEN". */
export function tok(wei: bigint | string): string {
  if (wei === "") return "—";
  return `${formatTokens(wei)} ${symbol()}`;
}

/** A price per GPU-hour with its unit. */
export function perGpuHour(wei: string): string {
  return wei === "" ? "—" : `${tok(wei)} / GPU-hour`;
}

/** Basis points as a percentage: 9750 → "97.5 %". */
export function pct(bps: number): string {
  return `${(bps / 100).toFixed(bps % 100 === 0 ? 0 : 2)} %`;
}

export function ratioPct(x: number): string {
  return `${(x * 100).toFixed(x >= 0.995 || x === 0 ? 0 : 1)} %`;
}

export function bytes(n: number | bigint): string {
  return formatBytes(Number(n));
}

export function tflops(x: number): string {
  return `${x.toFixed(x >= 100 ? 0 : 1)} TFLOPS`;
}

export function when(unix: number): string {
  if (!unix) return "—";
  return new Date(unix * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function shortAddr(a: string): string {
  return a.length > 14 ? `${a.slice(0, 8)}…${a.slice(-6)}` : a || "—";
}

/** A transaction hash as a link when the network has an explorer URL template ({tx}), else as text. */
export function txLink(tx: string, template: string | undefined, testid: string): HTMLElement {
  if (!tx) return h("span", { testid, class: "muted" }, "—");
  if (template) {
    const href = template.replace("{tx}", tx);
    return h("a", { testid, href, target: "_blank", rel: "noopener noreferrer", title: tx }, shortAddr(tx));
  }
  return h("code", { testid, title: tx }, shortAddr(tx));
}

// ---- the alert region -------------------------------------------------------------------------------------

let region: HTMLElement | null = null;

export function errorRegion(): HTMLElement {
  if (!region) {
    region = h("div", { testid: "error", role: "alert", "aria-live": "assertive", class: "alert", hidden: true });
  }
  return region;
}

export interface ErrorAction {
  label: string;
  testid: string;
  run: () => void | Promise<void>;
}

/** Show an error a person can act on (replaces the one shown). Returns the UiError it showed. */
export function showError(err: unknown, actions: ErrorAction[] = [], extra?: Child): UiError {
  const info = app.info;
  const ui = describeError(err, { origin: location.origin, symbol: symbol(), devnet: info?.network === "devnet" });
  const el = errorRegion();
  el.hidden = false;
  el.setAttribute("data-error-kind", ui.kind);
  markReady();
  mount(
    el,
    h("p", { testid: "error-message" }, ui.message),
    ui.closest && ui.closest.length ? offersMini(ui.closest) : null,
    extra ?? null,
    h(
      "div",
      { class: "row" },
      actions.map((a) => h("button", { type: "button", testid: a.testid, onclick: () => void a.run() }, a.label)),
      h("button", { type: "button", testid: "error-dismiss", class: "secondary", onclick: clearError }, "Dismiss"),
    ),
  );
  return ui;
}

export function clearError(): void {
  const el = errorRegion();
  el.hidden = true;
  el.removeAttribute("data-error-kind");
  el.replaceChildren();
}

/** A short list of offers (the closest ones when nothing fits). */
export function offersMini(offers: Offer[]): HTMLElement {
  return h(
    "ul",
    { testid: "closest-offers", class: "closest" },
    offers.map((o) =>
      h(
        "li",
        { testid: "closest-offer" },
        `${o.gpuModel}: ${o.gpusFree}/${o.gpusTotal} GPUs free, quote ${perGpuHour(o.quotePerGpuHour)}, ` +
          `min ask ${perGpuHour(o.minAskPerGpuHour)}`,
      ),
    ),
  );
}

/** Run an action with its button disabled; errors go to the alert region. */
export async function busy(button: HTMLButtonElement | null, run: () => Promise<void>, actions?: (e: unknown) => ErrorAction[]): Promise<void> {
  if (button) button.disabled = true;
  try {
    await run();
  } catch (e) {
    showError(e, actions ? actions(e) : []);
  } finally {
    if (button) button.disabled = false;
  }
}

/** A labelled value for key/value lists. */
export function kv(label: string, value: Child, testid: string): HTMLElement[] {
  return [h("dt", null, label), h("dd", { testid }, value)];
}

export function loading(testid: string): HTMLElement {
  return h("p", { testid, class: "muted", "aria-busy": "true" }, "Loading…");
}

/** Label each body cell with its column's heading (data-label), so a phone-width screen can show rows as cards. */
export function stackable<T extends HTMLElement>(table: T): T {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent ?? "");
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, i) => {
      if (heads[i]) cell.setAttribute("data-label", heads[i]!);
    });
  }
  table.classList.add("stack");
  return table;
}

/** The view's main data is on the page (or its error is): body[data-ready="1"] from the first view on (browser
 * tests time the first view by it), and the view element's data-ready="1" for the view shown now. */
export function markReady(): void {
  document.body.dataset.ready = "1";
  const view = document.querySelector<HTMLElement>("[data-testid=view]");
  if (view) view.dataset.ready = "1";
}
