// What a view needs before a signed call: the network info and a wallet on the network's chain.
import type { NetworkInfo } from "./gen/protos/blendr/v1/network_pb";
import { WrongChainError } from "./errors";
import { app, showError, type ErrorAction } from "./ui";
import { checkChain, connectInjected, switchChain, wallet, type ConnectedWallet } from "./wallet";

/** The connected wallet (connecting the browser's wallet when none is), checked to be on the network's chain. */
export async function needWallet(): Promise<{ w: ConnectedWallet; info: NetworkInfo }> {
  const info = app.info;
  if (!info) throw new Error("The network is not loaded yet.");
  const w = wallet() ?? (await connectInjected());
  if (w.kind === "injected") checkChain(w, info.ethChainId);
  return { w, info };
}

/** The buttons that fix an error, where one exists (switch the wallet's chain), plus a retry when given. */
export function fixes(e: unknown, retry?: () => void | Promise<void>): ErrorAction[] {
  const out: ErrorAction[] = [];
  if (e instanceof WrongChainError) {
    out.push({
      label: "Switch network",
      testid: "switch-network",
      run: async () => {
        try {
          await switchChain(e.wantChainId);
        } catch (err) {
          showError(err);
        }
      },
    });
  }
  if (retry) out.push({ label: "Retry", testid: "error-retry", run: retry });
  return out;
}
