// Sign-In with Ethereum (EIP-4361): the king's GetSignInChallenge returns the text to sign with personal_sign.
// The page parses it strictly and signs it only when it is a sign-in for this wallet, on this chain, from this
// site (and, when pinned, naming this king), current and not expired: never an arbitrary text the server sends.
// The layout is blendr/siwe.py's (the king formats its challenge there); the king is named by a resource
// "blendr:king:<its address>".

import { getAddress } from "viem";
import { SignInRefusedError } from "./errors";
import type { Address } from "./intents";

export interface SiweMessage {
  /** The RFC 3986 authority asking for the sign-in (host[:port]), and its scheme when given. */
  domain: string;
  scheme?: string;
  address: Address;
  statement?: string;
  uri: string;
  version: string;
  chainId: number;
  nonce: string;
  issuedAt: string;
  expirationTime?: string;
  notBefore?: string;
  requestId?: string;
  resources: string[];
}

/** The resource that names the king a sign-in is for (blendr/siwe.py KING_RESOURCE). */
export const KING_RESOURCE = "blendr:king:";

const HEADER = /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):\/\/)?([^\s/?#]+) wants you to sign in with your Ethereum account:$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const TAGS: [key: keyof SiweMessage, tag: string, required: boolean][] = [
  ["uri", "URI", true],
  ["version", "Version", true],
  ["chainId", "Chain ID", true],
  ["nonce", "Nonce", true],
  ["issuedAt", "Issued At", true],
  ["expirationTime", "Expiration Time", false],
  ["notBefore", "Not Before", false],
  ["requestId", "Request ID", false],
];

function refuse(why: string): never {
  throw new SignInRefusedError(`not a sign-in message this page will sign: ${why}`);
}

/** The fields of an EIP-4361 message, in the order the standard fixes.
 * @throws SignInRefusedError anything else (a missing or misplaced field, an invalid address, chain id, nonce
 *   or timestamp, a line left over). */
export function parseSiwe(text: string): SiweMessage {
  if (text.includes("\r")) refuse("it contains carriage returns");
  const lines = text.split("\n");
  let i = 0;
  const next = () => (i < lines.length ? (lines[i++] as string) : refuse("it ends early"));
  const head = HEADER.exec(next());
  if (!head) refuse("the first line is not '<domain> wants you to sign in with your Ethereum account:'");
  const address = next();
  if (!/^0x[0-9a-fA-F]{40}$/.test(address) || getAddress(address) !== address) {
    refuse("the second line is not an EIP-55 checksummed address");
  }
  if (next() !== "") refuse("no blank line after the address");
  let statement: string | undefined;
  if (lines[i] !== "") {
    statement = next();
    if (statement.startsWith("URI: ")) refuse("no blank line before the URI");
  }
  if (next() !== "") refuse("no blank line after the statement");
  const msg: Partial<SiweMessage> & { resources: string[] } = {
    domain: head[2] as string, address: getAddress(address), resources: [],
  };
  if (head[1]) msg.scheme = head[1];
  if (statement !== undefined) msg.statement = statement;
  for (const [key, tag, required] of TAGS) {
    const line = lines[i];
    if (line !== undefined && line.startsWith(`${tag}: `)) {
      (msg as Record<string, unknown>)[key] = line.slice(tag.length + 2);
      i++;
    } else if (required) {
      refuse(`the '${tag}:' line is missing or out of place`);
    }
  }
  if (lines[i] === "Resources:") {
    i++;
    while (i < lines.length && (lines[i] as string).startsWith("- ")) {
      const r = (lines[i++] as string).slice(2);
      if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/.test(r)) refuse("a resource is not a URI");
      msg.resources.push(r);
    }
  }
  if (i < lines.length && !(i === lines.length - 1 && lines[i] === "")) refuse(`unexpected line ${i + 1}`);
  const chain = String((msg as Record<string, unknown>).chainId);
  if (!/^[1-9]\d{0,15}$/.test(chain)) refuse("the chain id is not a number");
  msg.chainId = Number(chain);
  if (msg.version !== "1") refuse(`version ${msg.version} (this page signs version 1)`);
  if (!/^[A-Za-z0-9]{8,}$/.test(msg.nonce ?? "")) refuse("the nonce is not 8 or more letters and digits");
  for (const t of ["issuedAt", "expirationTime", "notBefore"] as const) {
    const v = msg[t];
    if (v !== undefined && (!RFC3339.test(v) || Number.isNaN(Date.parse(v)))) refuse(`${t} is not an RFC 3339 time`);
  }
  if (!msg.uri || !/^[a-zA-Z][a-zA-Z0-9+.-]*:\S*$/.test(msg.uri)) refuse("the URI is not an absolute URI");
  return msg as SiweMessage;
}

export interface SignInExpectation {
  /** The wallet that will sign. */
  address: string;
  /** The chain the page is on. */
  chainId: number | bigint;
  /** The site the page was loaded from (location.host): a king relaying another site's sign-in is refused. */
  domain?: string;
  /** The king's address, when pinned: a resource must be "blendr:king:<this address>" (any case). */
  king?: string;
  /** Unix milliseconds (tests inject a clock); a message not yet valid or expired is refused. */
  now?: number;
}

/** The parsed message when `text` is a sign-in for this wallet and chain (and domain, king, time); else
 * SignInRefusedError saying why. Sign `text` itself (personal_sign) only after this returns. */
export function checkSignIn(text: string, expect: SignInExpectation): SiweMessage {
  const msg = parseSiwe(text);
  if (msg.address.toLowerCase() !== expect.address.toLowerCase()) refuse(`it is for ${msg.address}, not this wallet ${expect.address}`);
  if (BigInt(msg.chainId) !== BigInt(expect.chainId)) refuse(`it is for chain ${msg.chainId}, not chain ${expect.chainId}`);
  if (expect.domain !== undefined && msg.domain.toLowerCase() !== expect.domain.toLowerCase()) {
    refuse(`it asks for ${msg.domain}, not this site ${expect.domain}`);
  }
  if (expect.king) {
    const want = `${KING_RESOURCE}${expect.king}`.toLowerCase();
    if (!msg.resources.some((r) => r.toLowerCase() === want)) refuse(`it does not name the king ${expect.king}`);
  }
  const now = expect.now ?? Date.now();
  if (msg.expirationTime !== undefined && Date.parse(msg.expirationTime) <= now) refuse("it has expired");
  if (msg.notBefore !== undefined && Date.parse(msg.notBefore) > now) refuse("it is not valid yet");
  return msg;
}
