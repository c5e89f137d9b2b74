// The King's Connect clients (same origin), the session token interceptor and sign-in (EIP-4361 text signed
// with personal_sign). Tokens are kept in sessionStorage per address; a call refused as unauthenticated signs
// in once more and is retried once.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { hexToBytes } from "viem";
import { NetworkView, type NetworkInfo } from "./gen/protos/blendr/v1/network_pb";
import { RenterGateway } from "./gen/protos/blendr/v1/renter_pb";
import { checkSignIn } from "./lib/siwe";
import { sessionKey, storedToken } from "./tokens";
import type { ConnectedWallet } from "./wallet";

let token: string | null = null;

const bearer: Interceptor = (next) => async (req) => {
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [bearer] });
export const renter = createClient(RenterGateway, transport);
export const network = createClient(NetworkView, transport);

/** Sign in with the wallet: the King's challenge is checked (this wallet, this chain, this King) before signing. */
export async function signIn(w: ConnectedWallet, info: NetworkInfo): Promise<void> {
  const challenge = await renter.getSignInChallenge({ address: w.address });
  // Throws SignInRefusedError when the text is not a sign-in for this wallet, chain, site and King.
  checkSignIn(challenge.message, { address: w.address, chainId: info.ethChainId, domain: location.host, king: info.kingAddress });
  const signature = await w.signMessage(challenge.message);
  token = null;
  const session = await renter.signIn({ challengeId: challenge.challengeId, address: w.address, signature: hexToBytes(signature) });
  token = session.token;
  sessionStorage.setItem(sessionKey(w.address), JSON.stringify({ token: session.token, expires: session.expiresUnix }));
}

/** Use this wallet's session (signing in when there is none). */
async function ensureSession(w: ConnectedWallet, info: NetworkInfo): Promise<void> {
  token = storedToken(sessionStorage, w.address, Date.now() / 1000);
  if (!token) await signIn(w, info);
}

export function isUnauthenticated(e: unknown): boolean {
  return e instanceof ConnectError && e.code === Code.Unauthenticated;
}

/** Run an authenticated call for this wallet; on `unauthenticated` sign in again once and retry. */
export async function authed<T>(w: ConnectedWallet, info: NetworkInfo, call: () => Promise<T>): Promise<T> {
  await ensureSession(w, info);
  try {
    return await call();
  } catch (e) {
    if (!isUnauthenticated(e)) throw e;
    sessionStorage.removeItem(sessionKey(w.address));
    await signIn(w, info);
    return await call();
  }
}

/** Forget the token in use (the wallet changed). */
export function dropToken(): void {
  token = null;
}
