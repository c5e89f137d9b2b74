// #/wallet: the renter's wallet as the King sees it on chain (GetWallet).
import { authed, renter } from "../api";
import { h, mount } from "../dom";
import type { RewardHolding, Wallet } from "../gen/protos/blendr/v1/renter_pb";
import { formatRewardEpoch, formatRewardKind } from "../lib/format";
import { fixes, needWallet } from "../session";
import { app, kv, loading, markReady, pct, perGpuHour, showError, tok, txLink } from "../ui";

export function renderWallet(el: HTMLElement): () => void {
  const body = h("div", { testid: "wallet-view" }, loading("wallet-loading"));
  mount(el, h("h1", null, "Wallet"), body);
  let live = true;
  const load = async () => {
    if (!app.info) return;
    try {
      const { w, info } = await needWallet();
      const wallet = await authed(w, info, () => renter.getWallet({}));
      if (live) {
        mount(body, walletView(wallet));
        markReady();
      }
    } catch (e) {
      if (!live) return;
      mount(body, h("p", { class: "muted", testid: "wallet-unavailable" }, "Connect a wallet to see its balance."));
      showError(e, fixes(e, () => app.rerender()));
    }
  };
  void load();
  return () => {
    live = false;
  };
}

function walletView(w: Wallet): HTMLElement[] {
  return [
    h(
      "dl",
      { class: "kv" },
      kv("Address", h("code", null, w.address), "wallet-view-address"),
      kv("Chain", `Ethereum chain ${w.chainId}`, "wallet-view-chain"),
      kv("Balance", tok(w.balance || "0"), "wallet-balance"),
      kv("Allowance for GPURental", tok(w.allowance || "0"), "wallet-allowance"),
      kv("In escrow", tok(w.inEscrow || "0"), "wallet-in-escrow"),
      kv("Protocol fees burned (network)", tok(w.feesBurned || "0"), "wallet-fees-burned"),
      kv("Fees waiting to be burned", tok(w.feesBurnPending || "0"), "wallet-fees-burn-pending"),
      kv("Share of each fee burned", pct(w.feeBurnBps), "wallet-fee-burn-bps"),
      kv("Token contract", h("code", null, w.tokenContract || "—"), "wallet-token-contract"),
      kv("Rental contract", h("code", null, w.rentalContract || "—"), "wallet-rental-contract"),
    ),
    h("h2", null, "Compute vouchers"),
    w.vouchers.length === 0
      ? h("p", { testid: "vouchers-empty", class: "muted" }, "No vouchers.")
      : h(
          "table",
          { testid: "vouchers-table" },
          h("thead", null, h("tr", null, ["Class", "GPU model", "Price backing each", "Held"].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            null,
            w.vouchers.map((v) =>
              h(
                "tr",
                { testid: "voucher-row", "data-voucher-id": String(v.id) },
                h("td", null, `#${v.id}`),
                h("td", { testid: "voucher-model" }, v.gpuModel),
                h("td", { testid: "voucher-price" }, perGpuHour(v.pricePerGpuHour)),
                h("td", { testid: "voucher-hours" }, `${v.hours} GPU-hour${v.hours === 1n ? "" : "s"}`),
              ),
            ),
          ),
        ),
    h("h2", null, "Rewards"),
    rewardsView(w.rewards, app.info?.ethExplorerTxUrl),
  ];
}

/** The epoch rewards the King published for this address, newest first; the page does not claim them. */
function rewardsView(rewards: RewardHolding[], ethTx: string | undefined): HTMLElement {
  const claim = h(
    "p",
    { class: "muted", testid: "rewards-claim-note" },
    "Claim them from the command line: ",
    h("code", null, "blendr rewards claim"),
    " (this page does not claim).",
  );
  if (rewards.length === 0) {
    return h("div", null, h("p", { testid: "rewards-empty", class: "muted" }, "No rewards yet."), claim);
  }
  return h(
    "div",
    null,
    h(
      "table",
      { testid: "rewards-table" },
      h("thead", null, h("tr", null, ["Epoch", "Earned as", "Amount", "Published"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        null,
        rewards.map((r) =>
          h(
            "tr",
            { testid: "reward-row", "data-epoch": String(r.epoch), "data-kind": r.kind },
            h("td", { testid: "reward-epoch" }, formatRewardEpoch(r.epoch)),
            h("td", { testid: "reward-kind" }, formatRewardKind(r.kind)),
            h("td", { testid: "reward-amount", title: `${r.amount} wei` }, tok(r.amount)),
            h("td", null, txLink(r.publishTx, ethTx, "reward-publish-tx")),
          ),
        ),
      ),
    ),
    claim,
  );
}
