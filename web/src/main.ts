// Entry point of the dApp: the header, the alert region and the hash-routed views (src/views/).
import "./style.css";
import { network } from "./api";
import { h, mount } from "./dom";
import { WrongChainError } from "./errors";
import { parseRoute, type Route } from "./route";
import { fixes } from "./session";
import { app, clearError, errorRegion, loading, markReady, showError } from "./ui";
import { renderHeader } from "./views/header";
import { renderJob } from "./views/job";
import { renderJobs } from "./views/jobs";
import { renderNetwork } from "./views/network";
import { renderOffers } from "./views/offers";
import { renderSubmit } from "./views/submit";
import { renderWallet } from "./views/wallet";
import { onWalletChange } from "./wallet";

/** A view draws into its element and returns what stops it (streams, timers) when the page moves on. */
export type View = (el: HTMLElement, route: Route) => (() => void) | void;

/** Views whose state is the renter's input, not the wallet's data: a wallet change does not draw them again. */
const KEEPS_FORM_ON_WALLET_CHANGE: ReadonlySet<Route["view"]> = new Set(["submit"]);

const header = h("header", { testid: "header" });
const main = h("main", { id: "view", testid: "view", tabindex: "-1" });
let stop: (() => void) | void;

function viewFor(route: Route): View {
  switch (route.view) {
    case "offers":
      return renderOffers;
    case "submit":
      return renderSubmit;
    case "jobs":
      return renderJobs;
    case "job":
      return renderJob;
    case "wallet":
      return renderWallet;
    case "network":
      return renderNetwork;
    case "notfound":
      return (el, r) => {
        mount(el, h("h1", null, "Not found"), h("p", { testid: "not-found" }, `No page at ${r.view === "notfound" ? r.path : ""}. `, h("a", { href: "#/offers" }, "See the offers")));
        markReady();
      };
  }
}

function render(): void {
  const route = parseRoute(location.hash);
  if (stop) stop();
  stop = undefined;
  main.dataset.view = route.view;
  main.dataset.ready = "0";
  renderHeader(header, route);
  stop = viewFor(route)(main, route);
}

async function loadNetwork(): Promise<void> {
  try {
    app.info = await network.getNetworkInfo({});
    clearError();
    render();
  } catch (e) {
    render();
    showError(e, [{ label: "Retry", testid: "error-retry", run: loadNetwork }]);
  }
}

function start(): void {
  const root = document.getElementById("app") ?? document.body;
  mount(root, h("a", { href: "#view", class: "skip" }, "Skip to content"), header, errorRegion(), main);
  // Retry, or a wallet that changed: the alert goes, the network is loaded if it was not, and the view draws again.
  app.rerender = () => {
    clearError();
    if (app.info) render();
    else void loadNetwork();
  };
  window.addEventListener("hashchange", () => {
    clearError();
    render();
  });
  // Another account or chain: views that show the renter's data draw again for it. The submit form keeps what the
  // renter typed: "Get quote" and "Sign and submit" connect the wallet themselves, and drawing the form again then
  // would wipe it and drop the action under way (only the header shows the new wallet).
  onWalletChange((w) => {
    const route = parseRoute(location.hash);
    if (KEEPS_FORM_ON_WALLET_CHANGE.has(route.view)) {
      clearError();
      renderHeader(header, route);
    } else {
      app.rerender();
    }
    // A wallet that moved to another chain is told so at once, with the button that moves it back.
    if (w && w.kind === "injected" && app.info && w.chainId !== app.info.ethChainId) {
      const e = new WrongChainError(w.chainId, app.info.ethChainId);
      showError(e, fixes(e));
    }
  });
  renderHeader(header, parseRoute(location.hash));
  mount(main, loading("page-loading"));
  void loadNetwork();
}

start();
