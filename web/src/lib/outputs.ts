// A job's outputs at the renter (blendr/outputs.py): the provider sealed a tar to the page's output key; the
// page opens it record by record and lists its files, in memory (for a download link each).
//
// Sealed stream format (version 1):
//   "BLOS" | 0x01 | ephemeral public key (65) | nonce prefix (7)
//   then records: u32 ciphertext length | AES-256-GCM(chunk of at most 1 MiB)
// Record i uses nonce prefix | last flag (1 byte) | i (u32) and associated data header | aad.
//
// Guarantees (as unpack_outputs against a hostile provider): records cannot be reordered, dropped, cut after any
// record but the last or moved to another job; only regular files and directories come out, with relative
// paths without `..`, within maxBytes and maxEntries; every failure is an OutputError.

import { gcm } from "@noble/ciphers/aes";
import { secp256k1 } from "@noble/curves/secp256k1";
import { hkdf } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha2";
import { OutputError } from "./errors";
import { readTar, TarReadError } from "./tar";

export const CHUNK = 1 << 20;
export const MAX_OUTPUT_BYTES = 1 << 30;
export const MAX_ENTRIES = 100_000;
const MAGIC = new TextEncoder().encode("BLOS");
const VERSION = 1;
const PUB_LEN = 65;
const PREFIX_LEN = 7;
export const HEADER_LEN = MAGIC.length + 1 + PUB_LEN + PREFIX_LEN;
const TAG_LEN = 16;

/** The associated data a job attempt's outputs are sealed with. */
export function outputAad(jobId: string, attempt: number): Uint8Array {
  return new TextEncoder().encode(`blendr/outputs/v1|${jobId}|${Math.trunc(attempt)}`);
}

function mib(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} bytes`;
}

/** The plaintext (a tar) of a whole sealed output stream.
 * @throws OutputError bad magic or version, a truncated, reordered or tampered record, another key or aad,
 *   bytes after the last record, or more than `maxBytes`. */
export function openOutputs(sealed: Uint8Array, privateKey: Uint8Array, aad: Uint8Array, maxBytes = MAX_OUTPUT_BYTES * 4): Uint8Array {
  if (sealed.length < HEADER_LEN) throw new OutputError("sealed output is truncated");
  if (!MAGIC.every((b, i) => sealed[i] === b)) throw new OutputError("not a sealed job output (bad magic)");
  if (sealed[4] !== VERSION) throw new OutputError(`sealed output has unknown version ${sealed[4]} (this client reads ${VERSION})`);
  const header = sealed.subarray(0, HEADER_LEN);
  const ephPub = header.subarray(5, 5 + PUB_LEN);
  const prefix = header.subarray(5 + PUB_LEN);
  let key: Uint8Array;
  try {
    const shared = secp256k1.getSharedSecret(privateKey, secp256k1.ProjectivePoint.fromHex(ephPub).toRawBytes(false), true).subarray(1);
    const salt = new Uint8Array(2 * PUB_LEN);
    salt.set(ephPub, 0);
    salt.set(secp256k1.getPublicKey(privateKey, false), PUB_LEN);
    key = hkdf(sha256, shared, salt, new TextEncoder().encode("blendr/payload/v1"), 32);
  } catch {
    throw new OutputError("sealed output authentication failed (invalid key)");
  }
  const ad = new Uint8Array(HEADER_LEN + aad.length);
  ad.set(header, 0);
  ad.set(aad, HEADER_LEN);
  const parts: Uint8Array[] = [];
  let total = 0;
  let at = HEADER_LEN;
  for (let index = 0; ; index++) {
    if (at + 4 > sealed.length) throw new OutputError("sealed output is truncated (its last record is missing)");
    const n = new DataView(sealed.buffer, sealed.byteOffset + at, 4).getUint32(0);
    if (n < TAG_LEN || n > CHUNK + TAG_LEN) throw new OutputError(`sealed output has a record of ${n} bytes (corrupt)`);
    if (at + 4 + n > sealed.length) throw new OutputError("sealed output is truncated");
    const ct = sealed.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    let plain: Uint8Array | null = null;
    let last = false;
    for (const flag of [0, 1]) {
      const nonce = new Uint8Array(12);
      nonce.set(prefix, 0);
      nonce[PREFIX_LEN] = flag;
      new DataView(nonce.buffer).setUint32(PREFIX_LEN + 1, index);
      try {
        plain = gcm(key, nonce, ad).decrypt(ct);
        last = flag === 1;
        break;
      } catch {
        // the other flag, then refuse
      }
    }
    if (plain === null) {
      throw new OutputError("sealed output authentication failed: it was tampered with, sealed to another key, or sealed for another job");
    }
    total += plain.length;
    if (total > maxBytes) throw new OutputError(`output archive unpacks to more than ${mib(maxBytes)}`);
    parts.push(plain);
    if (last) {
      if (at !== sealed.length) throw new OutputError("sealed output has bytes after its last record");
      break;
    }
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A file of a job's outputs. */
export interface OutputFile {
  path: string;
  data: Uint8Array;
  executable: boolean;
}

function safePath(name: string): string {
  const bad = () => new OutputError(`output archive entry '${name.slice(0, 200)}' has an unsafe path`);
  if (!name || name.includes("\0") || name.startsWith("/") || name.includes("\\")) throw bad();
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (!parts.length || parts.includes("..")) throw bad();
  return parts.join("/");
}

/** The regular files of a job's sealed outputs (directories are implied by the paths).
 * @throws OutputError the stream does not open, or an entry is unsafe (a link, a device, `..`, a duplicate).
 * @throws OutputError over `maxBytes` or `maxEntries`. */
export function unpackOutputs(sealed: Uint8Array, privateKey: Uint8Array, aad: Uint8Array,
  opts: { maxBytes?: number; maxEntries?: number } = {}): OutputFile[] {
  const maxBytes = opts.maxBytes ?? MAX_OUTPUT_BYTES * 4;
  const tar = openOutputs(sealed, privateKey, aad, maxBytes + 2 ** 20);
  let members;
  try {
    members = readTar(tar, maxBytes, opts.maxEntries ?? MAX_ENTRIES);
  } catch (exc) {
    if (exc instanceof TarReadError) {
      throw new OutputError(exc.tooLarge ? `output archive ${exc.message}` : `output archive is corrupt: ${exc.message}`);
    }
    throw exc;
  }
  const files: OutputFile[] = [];
  const seen = new Map<string, "dir" | "file">();
  for (const m of members) {
    const path = safePath(m.name);
    const isDir = m.type === "5";
    const isFile = m.type === "0" || m.type === "\0" || m.type === "7";
    if (!isDir && !isFile) {
      const kind = m.type === "1" || m.type === "2" ? "link" : "special file";
      throw new OutputError(`output archive entry '${m.name.slice(0, 200)}' is a ${kind}; only regular files and directories are allowed`);
    }
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (seen.get(parent) === "file") throw new OutputError(`output archive has conflicting entries: ${path.slice(0, 200)}`);
      seen.set(parent, "dir");
    }
    const prior = seen.get(path);
    if (isDir) {
      if (prior === "file") throw new OutputError(`output archive entry '${m.name.slice(0, 200)}' is duplicated`);
      seen.set(path, "dir");
      continue;
    }
    if (prior) throw new OutputError(`output archive entry '${m.name.slice(0, 200)}' is duplicated`);
    seen.set(path, "file");
    files.push({ path, data: m.data, executable: (m.mode & 0o111) !== 0 });
  }
  return files;
}
