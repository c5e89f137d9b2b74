// The renter's wallet: an EIP-1193 wallet (window.ethereum) through viem, or on a devnet a pasted private key
// kept only in memory. Both sign EIP-712 typed data (shown in full by the wallet) and the sign-in text.
import { createWalletClient, custom, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { InputError, NoWalletError, WrongChainError } from "./errors";

export interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
  on?(event: string, fn: (arg: unknown) => void): void;
  removeListener?(event: string, fn: (arg: unknown) => void): void;
}

export interface ConnectedWallet {
  kind: "injected" | "devnet";
  address: `0x${string}`;
  chainId: bigint;
  signTypedData(td: any): Promise<Hex>;
  signMessage(message: string): Promise<Hex>;
}

let current: ConnectedWallet | null = null;
const listeners = new Set<(w: ConnectedWallet | null) => void>();

export function wallet(): ConnectedWallet | null {
  return current;
}

/** Called with the wallet whenever it connects, changes account or chain, or disconnects. */
export function onWalletChange(fn: (w: ConnectedWallet | null) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function set(w: ConnectedWallet | null): void {
  current = w;
  for (const fn of listeners) fn(w);
}

/** The browser's EIP-1193 wallet (window.ethereum), if any: it signs, sends transactions and answers reads. */
export function injectedProvider(): Eip1193 | undefined {
  return provider();
}

function provider(): Eip1193 | undefined {
  return (window as unknown as { ethereum?: Eip1193 }).ethereum;
}

export function hasInjectedWallet(): boolean {
  return provider() !== undefined;
}

let watching = false;

/** Connect the browser's wallet (eth_requestAccounts). Throws NoWalletError when there is none. */
export async function connectInjected(): Promise<ConnectedWallet> {
  const eth = provider();
  if (!eth) throw new NoWalletError();
  const accounts = (await eth.request({ method: "eth_requestAccounts" })) as string[];
  const chainHex = (await eth.request({ method: "eth_chainId" })) as string;
  const first = accounts[0];
  if (!first) throw new NoWalletError();
  const w = injected(eth, first as `0x${string}`, BigInt(chainHex));
  if (!watching && eth.on) {
    watching = true;
    eth.on("accountsChanged", (arg) => {
      const list = arg as string[];
      const c = current;
      if (!c || c.kind !== "injected") return;
      set(list[0] ? injected(eth, list[0] as `0x${string}`, c.chainId) : null);
    });
    eth.on("chainChanged", (arg) => {
      const c = current;
      if (!c || c.kind !== "injected") return;
      set(injected(eth, c.address, BigInt(arg as string)));
    });
  }
  set(w);
  return w;
}

function injected(eth: Eip1193, address: `0x${string}`, chainId: bigint): ConnectedWallet {
  const client = createWalletClient({ transport: custom(eth) });
  return {
    kind: "injected",
    address,
    chainId,
    signTypedData: (td) => client.signTypedData({ ...td, account: address }),
    signMessage: (message) => client.signMessage({ account: address, message }),
  };
}

/** Use a pasted devnet private key (kept in memory only; gone on reload). */
export function useDevnetKey(key: string, chainId: bigint): ConnectedWallet {
  const hex = (key.trim().startsWith("0x") ? key.trim() : "0x" + key.trim()) as Hex;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new InputError("devnet-key", "A private key is 32 bytes: 64 hex digits (0x optional).");
  const account = privateKeyToAccount(hex);
  const w: ConnectedWallet = {
    kind: "devnet",
    address: account.address,
    chainId,
    signTypedData: (td) => account.signTypedData(td),
    signMessage: (message) => account.signMessage({ message }),
  };
  set(w);
  return w;
}

export function disconnect(): void {
  set(null);
}

/** Throws WrongChainError when the wallet is not on the network's Ethereum chain. */
export function checkChain(w: ConnectedWallet, ethChainId: bigint): void {
  if (w.chainId !== ethChainId) throw new WrongChainError(w.chainId, ethChainId);
}

/** Ask the browser's wallet to switch to a chain (wallet_switchEthereumChain). */
export async function switchChain(chainId: bigint): Promise<void> {
  const eth = provider();
  if (!eth) throw new NoWalletError();
  await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + chainId.toString(16) }] });
}
