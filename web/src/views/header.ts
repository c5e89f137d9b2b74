// The page header: network and chain, navigation, the wallet button (browser wallet, or a devnet key).
import { dropToken } from "../api";
import { h, mount } from "../dom";
import type { Route } from "../route";
import { fixes } from "../session";
import { app, busy, clearError, shortAddr, showError } from "../ui";
import { connectInjected, disconnect, useDevnetKey, wallet } from "../wallet";

const NAV: { view: Route["view"]; href: string; label: string }[] = [
  { view: "offers", href: "#/offers", label: "Offers" },
  { view: "submit", href: "#/submit", label: "Submit" },
  { view: "jobs", href: "#/jobs", label: "Jobs" },
  { view: "wallet", href: "#/wallet", label: "Wallet" },
  { view: "network", href: "#/network", label: "Network" },
];

export function renderHeader(el: HTMLElement, route: Route): void {
  const info = app.info;
  const active = route.view === "job" ? "jobs" : route.view;
  mount(
    el,
    h(
      "div",
      { class: "bar" },
      h("a", { href: "#/offers", class: "brand", testid: "brand" }, "BlendrChain"),
      h(
        "span",
        { class: "net", testid: "network" },
        info
          ? [
              h("span", { testid: "network-name" }, info.network || "unknown network"),
              " · ",
              h("span", { testid: "network-chain" }, `ETH chain ${info.ethChainId}`),
              info.leader ? null : h("span", { class: "warn", testid: "network-follower", title: "This King follows another; answers may lag." }, " · follower"),
            ]
          : h("span", { testid: "network-name", class: "muted" }, "connecting…"),
      ),
      walletArea(),
    ),
    h(
      "nav",
      { "aria-label": "Main" },
      NAV.map((n) =>
        h("a", { href: n.href, testid: `nav-${n.view}`, "aria-current": n.view === active ? "page" : false }, n.label),
      ),
    ),
  );
}

function walletArea(): HTMLElement {
  const info = app.info;
  const w = wallet();
  const box = h("div", { class: "wallet", testid: "wallet-area" });
  if (w) {
    const wrong = w.kind === "injected" && info !== null && w.chainId !== info.ethChainId;
    mount(
      box,
      h("span", { testid: "wallet-address", title: w.address }, shortAddr(w.address)),
      h("span", { testid: "wallet-chain", class: wrong ? "warn" : "muted" }, ` chain ${w.chainId}`),
      w.kind === "devnet" ? h("span", { class: "muted", testid: "wallet-devnet" }, " (devnet key)") : null,
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          testid: "disconnect-wallet",
          onclick: () => {
            dropToken();
            disconnect();
          },
        },
        "Disconnect",
      ),
    );
    return box;
  }
  const connect = h("button", { type: "button", testid: "connect-wallet" }, "Connect wallet");
  connect.addEventListener("click", () =>
    busy(connect, async () => {
      clearError();
      // A wallet on another chain is told so by main's wallet listener.
      await connectInjected();
    }, (e) => fixes(e)),
  );
  mount(box, connect);
  if (info?.network === "devnet") {
    const form = devnetForm();
    const toggle = h("button", { type: "button", class: "secondary", testid: "use-devnet-key", "aria-expanded": "false" }, "Use a devnet key");
    toggle.addEventListener("click", () => {
      form.hidden = !form.hidden;
      toggle.setAttribute("aria-expanded", String(!form.hidden));
      if (!form.hidden) form.querySelector("input")?.focus();
    });
    box.append(toggle, form);
  }
  return box;
}

function devnetForm(): HTMLFormElement {
  const input = h("input", {
    id: "devnet-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "0x…",
    testid: "devnet-key-input",
    required: true,
  });
  const form = h(
    "form",
    { class: "devnet", testid: "devnet-key-form", hidden: true },
    h("label", { for: "devnet-key" }, "Devnet private key (kept in memory only)"),
    input,
    h("button", { type: "submit", testid: "devnet-key-submit" }, "Use key"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    try {
      if (!app.info) throw new Error("The network is not loaded yet.");
      useDevnetKey(input.value, app.info.ethChainId);
      input.value = "";
      clearError();
    } catch (e) {
      input.value = "";
      showError(e);
    }
  });
  return form;
}

