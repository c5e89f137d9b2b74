// A renter job's payload in the browser, byte-compatible with blendr/payload.py: the working directory as a
// tar.gz, framed with the entrypoint and environment (JobPayload), encrypted under a fresh AES key wrapped
// (ECIES on secp256k1, `seal`) to each candidate provider whose key belongs to its address.
//
// Guarantees: the Python provider opens and unpacks what this writes, and this opens what Python seals
// (tests/unit/web/test_cross.py). Crypto is @noble (synchronous, and it works where crypto.subtle does not: a
// page served over plain http); randomness is crypto.getRandomValues. Every malformed or oversized input
// raises PayloadError (or PayloadTooLargeError); nothing here logs plaintext or keys.
//
// Sealed format (version 1):
//   0x01 | ephemeral public key (65 bytes, uncompressed SEC1) | nonce (12) | AES-256-GCM ciphertext+tag
// The AES key is HKDF-SHA256 over the ECDH x coordinate, salted with both uncompressed public keys, info
// "blendr/payload/v1"; the GCM associated data is the 78-byte header followed by the caller's aad.

import { gcm } from "@noble/ciphers/aes";
import { secp256k1 } from "@noble/curves/secp256k1";
import { hkdf } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha2";
import { bytesToHex, getAddress, hexToBytes, keccak256 } from "viem";
import { NoProviderError, PayloadError, PayloadTooLargeError } from "./errors";

export { PayloadError, PayloadTooLargeError };
import type { Address } from "./intents";
import { pyFixed, pyJsonDumps } from "./pyjson";
import { TarWriter } from "./tar";

export const MAX_PAYLOAD_BYTES = 50 * 2 ** 20;
export const MAX_ENTRIES = 100_000;
export const IGNORE_FILE = ".blendrignore";
/** Never shipped: VCS metadata, bytecode caches and virtualenvs. */
export const ALWAYS_SKIPPED: ReadonlySet<string> = new Set([".git", "__pycache__", ".venv"]);
export const SEAL_VERSION = 1;
export const MAX_DOC_HEADER_BYTES = 2 ** 20;
export const MAX_ENTRYPOINT_CHARS = 64 * 1024;
export const MAX_PIP_REQUIREMENTS = 64;
export const MAX_PIP_REQUIREMENT_CHARS = 256;

const PUB_LEN = 65;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const HEADER_LEN = 1 + PUB_LEN + NONCE_LEN;
const HKDF_INFO = new TextEncoder().encode("blendr/payload/v1");
const DOC_MAGIC = new TextEncoder().encode("BLJP");
const DOC_VERSION = 1;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Human size in binary units as the Python payload messages write it ("73.2 MB", "50 MB", "512 bytes"). */
function size(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const [value, unit] = n >= 2 ** 20 ? [n / 2 ** 20, "MB"] : [n / 1024, "KB"];
  return pyFixed(value, 1).replace(/0+$/, "").replace(/\.$/, "") + ` ${unit}`;
}

function over(n: number, limit: number): [string, string] {
  const a = size(n);
  const b = size(limit);
  return a === b ? [`${a} (${n} bytes)`, `${b} (${limit} bytes)`] : [a, b];
}

// --- working directory -> tar.gz -------------------------------------------------------------------------

/** Python's fnmatch.translate: `*` (any characters, "/" included), `?`, `[...]` / `[!...]`. */
function globToRegExp(pattern: string): RegExp {
  let re = "";
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i++] as string;
    if (c === "*") {
      if (!re.endsWith(".*")) re += ".*";
    } else if (c === "?") {
      re += ".";
    } else if (c === "[") {
      let j = i;
      if (pattern[j] === "!") j++;
      if (pattern[j] === "]") j++;
      while (j < pattern.length && pattern[j] !== "]") j++;
      if (j >= pattern.length) {
        re += "\\[";
      } else {
        let stuff = pattern.slice(i, j).replace(/\\/g, "\\\\");
        i = j + 1;
        if (stuff.startsWith("!")) stuff = "^" + stuff.slice(1);
        else if (stuff.startsWith("^") || stuff.startsWith("[")) stuff = "\\" + stuff;
        re += `[${stuff.replace(/]/g, "\\]")}]`;
      }
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
    }
  }
  return new RegExp(`^(?:${re})$`, "su");
}

/** One line of a .blendrignore. */
export interface IgnoreRule {
  re: RegExp;
  dirOnly: boolean;
  anchored: boolean;
}

/** `.blendrignore` rules (read_ignore_rules): one glob a line, `#` comments, a trailing `/` matches only
 * directories, a pattern with a `/` matches the path from the root, else the name at any depth. */
export function parseIgnoreRules(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  text.split(/\r\n|\r|\n/).forEach((raw, i) => {
    let line = raw.trim();
    if (!line || line.startsWith("#")) return;
    if (line.startsWith("!")) {
      throw new PayloadError(`${IGNORE_FILE}:${i + 1}: negated patterns ('!') are not supported`);
    }
    const dirOnly = line.endsWith("/");
    line = line.replace(/\/+$/, "");
    const anchored = line.includes("/");
    line = line.replace(/^\/+/, "");
    if (line) rules.push({ re: globToRegExp(line), dirOnly, anchored });
  });
  return rules;
}

function ignored(rules: IgnoreRule[], rel: string, isDir: boolean): boolean {
  const name = rel.slice(rel.lastIndexOf("/") + 1);
  return rules.some((r) => (!r.dirOnly || isDir) && r.re.test(r.anchored ? rel : name));
}

/** A file of the working directory: a path relative to it ("src/train.py"), its bytes, its mode (executable
 * when any x bit is set). */
export interface WorkdirFile {
  path: string;
  data: Uint8Array;
  mode?: number;
}

function safeRelPath(path: string): string {
  const bad = () => new PayloadError(`workdir entry '${path.slice(0, 200)}' has an unsafe path`);
  if (!path || path.includes("\0") || path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path)) throw bad();
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (!parts.length || parts.includes("..")) throw bad();
  return parts.join("/");
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A tar.gz of the working directory, by pack_workdir's rules: `.git`, `__pycache__` and `.venv` are skipped
 * (at any depth), and whatever the directory's own `.blendrignore` lists; directories are stored as entries
 * before their contents, each level sorted by name; owners and times are zero.
 *
 * @param name shown in messages ("workdir proj is 73.2 MB, ...").
 * @throws PayloadError an absolute path, a `..`, a NUL, a duplicate, or a `!` rule in `.blendrignore`.
 * @throws PayloadTooLargeError the files add up to more than `maxBytes` (uncompressed), the archive compresses
 *   to more than `maxBytes`, or there are more than `maxEntries` entries. */
export async function packWorkdir(files: readonly WorkdirFile[], maxBytes: number = MAX_PAYLOAD_BYTES,
  opts: { name?: string; maxEntries?: number } = {}): Promise<Uint8Array> {
  const shown = opts.name ?? "(selected files)";
  const maxEntries = opts.maxEntries ?? MAX_ENTRIES;
  const byPath = new Map<string, WorkdirFile>();
  for (const f of files) {
    const rel = safeRelPath(f.path);
    if (byPath.has(rel)) throw new PayloadError(`workdir ${shown}: ${rel} is listed twice`);
    byPath.set(rel, f);
  }
  for (const rel of byPath.keys()) {
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (byPath.has(dir)) throw new PayloadError(`workdir ${shown}: ${dir} is both a file and a directory`);
    }
  }
  const ignoreFile = byPath.get(IGNORE_FILE);
  let rules: IgnoreRule[] = [];
  if (ignoreFile) {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(ignoreFile.data);
    } catch {
      throw new PayloadError(`cannot read ${IGNORE_FILE}: it is not UTF-8`);
    }
    rules = parseIgnoreRules(text);
  }

  // The tree, then walked as _collect walks a directory: each level's entries sorted by name (code units of
  // the UTF-8 names, as os.scandir names sort), subdirectories' contents after the level, depth first.
  interface Dir { dirs: Map<string, Dir>; files: Map<string, WorkdirFile> }
  const root: Dir = { dirs: new Map(), files: new Map() };
  for (const [rel, f] of byPath) {
    const parts = rel.split("/");
    let d = root;
    for (const p of parts.slice(0, -1)) {
      let next = d.dirs.get(p);
      if (!next) d.dirs.set(p, (next = { dirs: new Map(), files: new Map() }));
      d = next;
    }
    d.files.set(parts[parts.length - 1] as string, f);
  }
  const entries: { rel: string; file: WorkdirFile | null }[] = [];
  const stack: [Dir, string][] = [[root, ""]];
  while (stack.length) {
    const [dir, prefix] = stack.pop() as [Dir, string];
    const names = [...new Set([...dir.dirs.keys(), ...dir.files.keys()])].sort();
    const subdirs: [Dir, string][] = [];
    for (const name of names) {
      if (ALWAYS_SKIPPED.has(name)) continue;
      const rel = prefix + name;
      const sub = dir.dirs.get(name);
      if (ignored(rules, rel, sub !== undefined)) continue;
      entries.push({ rel, file: sub ? null : (dir.files.get(name) as WorkdirFile) });
      if (entries.length > maxEntries) {
        throw new PayloadTooLargeError(`workdir ${shown} has more than ${maxEntries} entries; add a ${IGNORE_FILE} or trim it`,
          entries.length, maxEntries);
      }
      if (sub) subdirs.push([sub, rel + "/"]);
    }
    stack.push(...subdirs.reverse());
  }
  const total = entries.reduce((n, e) => n + (e.file ? e.file.data.length : 0), 0);
  if (total > maxBytes) {
    const [s, l] = over(total, maxBytes);
    throw new PayloadTooLargeError(`workdir ${shown} is ${s}, over the ${l} limit; add a ${IGNORE_FILE} or trim it`, total, maxBytes);
  }
  const tar = new TarWriter();
  for (const e of entries) {
    const exec = e.file === null || ((e.file.mode ?? 0o644) & 0o111) !== 0;
    tar.add({ path: e.rel, dir: e.file === null, mode: exec ? 0o755 : 0o644, data: e.file?.data ?? new Uint8Array() });
  }
  const gz = await gzip(tar.bytes());
  if (gz.length > maxBytes) {
    const [s, l] = over(gz.length, maxBytes);
    throw new PayloadTooLargeError(`workdir ${shown} compresses to ${s}, over the ${l} limit; add a ${IGNORE_FILE} or trim it`,
      gz.length, maxBytes);
  }
  return gz;
}

// --- keys and sealing ------------------------------------------------------------------------------------

function privateKeyBytes(privateKey: Uint8Array): Uint8Array {
  if (privateKey.length !== 32) throw new PayloadError("a private key must be 32 bytes");
  if (!secp256k1.utils.isValidPrivateKey(privateKey)) throw new PayloadError("not a valid secp256k1 private key");
  return privateKey;
}

/** A secp256k1 public key (64 raw bytes x || y, 65 uncompressed or 33 compressed) as 65 uncompressed bytes.
 * @throws PayloadError any other length, or not a point on the curve. */
function uncompressed(pub: Uint8Array): Uint8Array {
  let data = pub;
  if (data.length === 64) data = concat(new Uint8Array([4]), data);
  if (data.length !== 33 && data.length !== 65) {
    throw new PayloadError(`a public key must be 64, 65 or 33 bytes (got ${pub.length})`);
  }
  try {
    return secp256k1.ProjectivePoint.fromHex(data).toRawBytes(false);
  } catch {
    throw new PayloadError("not a valid secp256k1 public key");
  }
}

/** The 64-byte public key (x || y) of a 32-byte private key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return secp256k1.getPublicKey(privateKeyBytes(privateKey), false).subarray(1);
}

/** The EIP-55 address of a public key (last 20 bytes of keccak256(x || y)).
 * @throws PayloadError not a valid secp256k1 public key. */
export function addressOfPublicKey(pub: Uint8Array): Address {
  const raw = uncompressed(pub).subarray(1);
  return getAddress(bytesToHex(keccak256(raw, "bytes").subarray(12)));
}

function deriveKey(shared: Uint8Array, ephPub: Uint8Array, recipientPub: Uint8Array): Uint8Array {
  return hkdf(sha256, shared, concat(ephPub, recipientPub), HKDF_INFO, 32);
}

/** Encrypt `plaintext` so only the holder of the recipient's private key can read it, bound to `aad`.
 * `fixed` (tests only) pins the ephemeral key and nonce.
 * @throws PayloadError the public key is invalid. */
export function seal(plaintext: Uint8Array, recipientPublicKey: Uint8Array, aad: Uint8Array,
  fixed?: { ephemeralKey: Uint8Array; nonce: Uint8Array }): Uint8Array {
  const recipient = uncompressed(recipientPublicKey);
  const eph = fixed ? privateKeyBytes(fixed.ephemeralKey) : secp256k1.utils.randomPrivateKey();
  const ephPub = secp256k1.getPublicKey(eph, false);
  const shared = secp256k1.getSharedSecret(eph, recipient, true).subarray(1);
  const key = deriveKey(shared, ephPub, recipient);
  const nonce = fixed ? fixed.nonce : randomBytes(NONCE_LEN);
  if (nonce.length !== NONCE_LEN) throw new PayloadError("a nonce must be 12 bytes");
  const header = concat(new Uint8Array([SEAL_VERSION]), ephPub, nonce);
  return concat(header, gcm(key, nonce, concat(header, aad)).encrypt(plaintext));
}

/** Decrypt a blob made by `seal` (here or in Python) for this private key and `aad`.
 * @throws PayloadError unknown version, truncated, invalid ephemeral key, or authentication failure. */
export function openSealed(blob: Uint8Array, privateKey: Uint8Array, aad: Uint8Array): Uint8Array {
  if (blob.length < HEADER_LEN + TAG_LEN) throw new PayloadError(`sealed payload is truncated (${blob.length} bytes)`);
  if (blob[0] !== SEAL_VERSION) {
    throw new PayloadError(`sealed payload has unknown version ${blob[0]} (this node reads ${SEAL_VERSION})`);
  }
  const me = privateKeyBytes(privateKey);
  const ephPub = blob.subarray(1, 1 + PUB_LEN);
  const nonce = blob.subarray(1 + PUB_LEN, HEADER_LEN);
  let shared: Uint8Array;
  try {
    shared = secp256k1.getSharedSecret(me, secp256k1.ProjectivePoint.fromHex(ephPub).toRawBytes(false), true).subarray(1);
  } catch {
    throw new PayloadError("sealed payload authentication failed (invalid ephemeral key)");
  }
  const key = deriveKey(shared, ephPub, secp256k1.getPublicKey(me, false));
  try {
    return gcm(key, nonce, concat(blob.subarray(0, HEADER_LEN), aad)).decrypt(blob.subarray(HEADER_LEN));
  } catch {
    throw new PayloadError("sealed payload authentication failed: it was tampered with, sealed to another key, or sealed for another job");
  }
}

// --- the job payload document ----------------------------------------------------------------------------

/** What a job needs on the provider (blendr.payload.JobPayload). */
export interface JobPayloadDoc {
  entrypoint: string;
  env?: Record<string, string>;
  pip?: readonly string[];
  /** The renter's 64-byte public key the outputs are sealed to; empty or absent: none sent back. */
  outputKey?: Uint8Array;
  /** A packWorkdir tar.gz; empty or absent: no working directory. */
  tarGz?: Uint8Array;
}

/** Throws PayloadError unless `pip` is at most 64 requirement specifiers of 1-256 printable characters
 * without spaces, none a pip option (check_pip_requirements). */
export function checkPipRequirements(pip: readonly string[]): void {
  if (pip.length > MAX_PIP_REQUIREMENTS) {
    throw new PayloadError(`a job declares at most ${MAX_PIP_REQUIREMENTS} pip requirements (got ${pip.length})`);
  }
  for (const req of pip) {
    const n = Array.from(req).length;
    if (!(n > 0 && n <= MAX_PIP_REQUIREMENT_CHARS) || /[\p{C}\p{Z}\s]/u.test(req)) {
      throw new PayloadError(`pip requirement '${req.slice(0, 80)}' must be 1-${MAX_PIP_REQUIREMENT_CHARS} printable characters without spaces`);
    }
    if (req.startsWith("-")) {
      throw new PayloadError(`pip requirement '${req.slice(0, 80)}' is an option; put pip options in requirements.txt`);
    }
  }
}

/** `BLJP` | version 1 | u32 header length | JSON header (entrypoint, env, pip, output_key) | tar.gz —
 * JobPayload.encode, with its checks.
 * @throws PayloadError empty or oversized entrypoint, NUL bytes, an invalid env name, a bad pip requirement or
 *   output key. @throws PayloadTooLargeError the header is over 1 MiB. */
export function encodeJobPayload(doc: JobPayloadDoc): Uint8Array {
  const env = doc.env ?? {};
  const pip = doc.pip ?? [];
  const outputKey = doc.outputKey ?? new Uint8Array();
  if (!doc.entrypoint.trim()) throw new PayloadError("job entrypoint is empty");
  if (Array.from(doc.entrypoint).length > MAX_ENTRYPOINT_CHARS || doc.entrypoint.includes("\0")) {
    throw new PayloadError(`job entrypoint must be at most ${MAX_ENTRYPOINT_CHARS} characters, without NUL`);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) throw new PayloadError(`job env name '${name.slice(0, 80)}' is not a valid variable name`);
    if (typeof value !== "string" || value.includes("\0")) throw new PayloadError(`job env ${name} must be a string without NUL bytes`);
  }
  checkPipRequirements(pip);
  if (outputKey.length) uncompressed(outputKey);
  const header: Record<string, string | Record<string, string> | string[]> = { entrypoint: doc.entrypoint, env: { ...env } };
  if (pip.length) header.pip = [...pip];
  if (outputKey.length) header.output_key = bytesToHex(outputKey).slice(2);
  const h = new TextEncoder().encode(pyJsonDumps(header, false));
  if (h.length > MAX_DOC_HEADER_BYTES) {
    throw new PayloadTooLargeError(`job entrypoint and env take ${size(h.length)}, over the ${size(MAX_DOC_HEADER_BYTES)} limit`,
      h.length, MAX_DOC_HEADER_BYTES);
  }
  const prefix = new Uint8Array(9);
  prefix.set(DOC_MAGIC, 0);
  prefix[4] = DOC_VERSION;
  new DataView(prefix.buffer).setUint32(5, h.length);
  return concat(prefix, h, doc.tarGz ?? new Uint8Array());
}

/** The inverse of encodeJobPayload (JobPayload.decode), for tests and tools.
 * @throws PayloadError wrong magic or version, truncated, or a malformed header. */
export function decodeJobPayload(data: Uint8Array): Required<JobPayloadDoc> {
  if (data.length < 9) throw new PayloadError("job payload is truncated");
  if (!DOC_MAGIC.every((b, i) => data[i] === b)) throw new PayloadError("not a job payload (bad magic)");
  if (data[4] !== DOC_VERSION) throw new PayloadError(`job payload has unknown version ${data[4]} (this node reads ${DOC_VERSION})`);
  const hlen = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(5);
  if (hlen > MAX_DOC_HEADER_BYTES) {
    throw new PayloadTooLargeError(`job payload header is ${size(hlen)}, over the ${size(MAX_DOC_HEADER_BYTES)} limit`, hlen, MAX_DOC_HEADER_BYTES);
  }
  if (data.length < 9 + hlen) throw new PayloadError("job payload is truncated");
  let header: { entrypoint?: unknown; env?: unknown; pip?: unknown; output_key?: unknown };
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(9, 9 + hlen))) as typeof header;
  } catch {
    throw new PayloadError("job payload header is not valid JSON");
  }
  const known = new Set(["entrypoint", "env", "pip", "output_key"]);
  if (typeof header !== "object" || header === null || Array.isArray(header) || !Object.keys(header).every((k) => known.has(k))
    || typeof header.entrypoint !== "string" || typeof header.env !== "object" || header.env === null || Array.isArray(header.env)) {
    throw new PayloadError("job payload header must hold 'entrypoint' and 'env' (and optionally 'pip')");
  }
  const pip = header.pip ?? [];
  if (!Array.isArray(pip) || !pip.every((p) => typeof p === "string")) throw new PayloadError("job payload 'pip' must be a list of requirements");
  const key = header.output_key ?? "";
  if (typeof key !== "string" || !/^([0-9a-fA-F]{2})*$/.test(key)) throw new PayloadError("job payload 'output_key' must be hex");
  const doc = {
    entrypoint: header.entrypoint,
    env: header.env as Record<string, string>,
    pip: pip as string[],
    outputKey: key ? hexToBytes(`0x${key}`) : new Uint8Array(),
    tarGz: data.slice(9 + hlen),
  };
  encodeJobPayload(doc); // the same checks as on the way in
  return doc;
}

/** A candidate provider as a quote names it: its address and its node's 64-byte public key. */
export interface KeyedCandidate {
  provider: string;
  publicKey: Uint8Array;
}

export interface EncryptedPayload {
  /** nonce (12) || AES-256-GCM(document), associated data the request id. */
  ciphertext: Uint8Array;
  /** The AES key sealed to each candidate whose key belongs to its address, in the quote's order. */
  keys: { provider: string; sealedKey: Uint8Array }[];
}

/** Encrypt an encoded job document under a fresh AES-256 key (aad = the request id) and wrap the key for each
 * candidate whose public key is 64 bytes and hashes to its provider address (the king cannot slip its own key
 * in under a provider's name); the others are left out.
 * @throws NoProviderError no candidate has a valid public key. */
export function encryptPayload(doc: Uint8Array, candidates: readonly KeyedCandidate[], requestId: string): EncryptedPayload {
  const aad = new TextEncoder().encode(requestId);
  const key = randomBytes(32);
  const nonce = randomBytes(NONCE_LEN);
  const ciphertext = concat(nonce, gcm(key, nonce, aad).encrypt(doc));
  const keys: EncryptedPayload["keys"] = [];
  for (const c of candidates) {
    if (c.publicKey.length !== 64) continue;
    let owner: string;
    try {
      owner = addressOfPublicKey(c.publicKey);
    } catch {
      continue; // not a point on the curve: as good as another provider's key
    }
    if (owner.toLowerCase() !== c.provider.toLowerCase()) continue;
    keys.push({ provider: c.provider, sealedKey: seal(key, c.publicKey, aad) });
  }
  key.fill(0);
  if (!keys.length) throw new NoProviderError("no candidate provider has a valid public key");
  return { ciphertext, keys };
}

/** Open what encryptPayload made, as a provider does (tests and tools): the document. */
export function decryptPayload(ciphertext: Uint8Array, sealedKey: Uint8Array, providerKey: Uint8Array, requestId: string): Uint8Array {
  const aad = new TextEncoder().encode(requestId);
  const key = openSealed(sealedKey, providerKey, aad);
  try {
    return gcm(key, ciphertext.subarray(0, NONCE_LEN), aad).decrypt(ciphertext.subarray(NONCE_LEN));
  } catch {
    throw new PayloadError("payload authentication failed");
  }
}

// --- the renter's output key -----------------------------------------------------------------------------

/** The key pair a job's outputs are sealed to. A browser wallet never shows its private key, so the page keeps
 * its own secp256k1 key, per renter address; its public key goes inside the sealed payload. */
export interface OutputKey {
  /** 32 bytes. */
  priv: Uint8Array;
  /** 64 bytes (x || y), what JobPayload.output_key holds. */
  pub: Uint8Array;
}

export const OUTPUT_KEY_PREFIX = "blendr.outputKey.";

/** The page's output key for `renter`, kept in `storage` (localStorage) under "blendr.outputKey.<address>";
 * made on first use. Outputs sealed to a key that was cleared from storage cannot be opened. */
export function loadOrCreateOutputKey(storage: Storage, renter: string): OutputKey {
  const slot = OUTPUT_KEY_PREFIX + getAddress(renter).toLowerCase();
  const stored = storage.getItem(slot);
  if (stored && /^0x[0-9a-f]{64}$/.test(stored)) {
    const privateKey = hexToBytes(stored as `0x${string}`);
    if (secp256k1.utils.isValidPrivateKey(privateKey)) return { priv: privateKey, pub: publicKeyOf(privateKey) };
  }
  const privateKey = secp256k1.utils.randomPrivateKey();
  storage.setItem(slot, bytesToHex(privateKey));
  return { priv: privateKey, pub: publicKeyOf(privateKey) };
}
