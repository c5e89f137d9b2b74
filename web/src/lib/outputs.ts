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

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Opens a sealed output stream as it arrives (GetJobOutput's chunks, of any size): `push` returns the
 * plaintext of every record completed so far, `end` checks that the last record came. The sealed bytes are not
 * kept.
 * @throws OutputError (from push and end) bad magic or version, a truncated, reordered or tampered record,
 *   another key or aad, bytes after the last record, or more than `maxBytes` of plaintext. */
export class OutputOpener {
  private buf: Uint8Array[] = [];
  private buffered = 0;
  private aead: ((nonce: Uint8Array) => { decrypt(ct: Uint8Array): Uint8Array }) | null = null;
  private prefix = new Uint8Array();
  private index = 0;
  private done = false;
  private total = 0;

  constructor(private readonly privateKey: Uint8Array, private readonly aad: Uint8Array,
    private readonly maxBytes = MAX_OUTPUT_BYTES * 4) {}

  private take(n: number): Uint8Array | null {
    if (this.buffered < n) return null;
    const all = this.buf.length === 1 ? (this.buf[0] as Uint8Array) : concat(this.buf, this.buffered);
    this.buf = n < all.length ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }

  private peekLength(): number | null {
    if (this.buffered < 4) return null;
    let n = 0;
    let got = 0;
    for (const part of this.buf) {
      for (let i = 0; i < part.length && got < 4; i++, got++) n = n * 256 + (part[i] as number);
      if (got === 4) break;
    }
    return n;
  }

  private open(header: Uint8Array): void {
    if (!MAGIC.every((b, i) => header[i] === b)) throw new OutputError("not a sealed job output (bad magic)");
    if (header[4] !== VERSION) throw new OutputError(`sealed output has unknown version ${header[4]} (this client reads ${VERSION})`);
    const ephPub = header.slice(5, 5 + PUB_LEN);
    let key: Uint8Array;
    try {
      const shared = secp256k1.getSharedSecret(this.privateKey, secp256k1.ProjectivePoint.fromHex(ephPub).toRawBytes(false), true).subarray(1);
      const salt = new Uint8Array(2 * PUB_LEN);
      salt.set(ephPub, 0);
      salt.set(secp256k1.getPublicKey(this.privateKey, false), PUB_LEN);
      key = hkdf(sha256, shared, salt, new TextEncoder().encode("blendr/payload/v1"), 32);
    } catch {
      throw new OutputError("sealed output authentication failed (invalid key)");
    }
    const ad = new Uint8Array(HEADER_LEN + this.aad.length);
    ad.set(header, 0);
    ad.set(this.aad, HEADER_LEN);
    this.prefix = header.slice(5 + PUB_LEN);
    this.aead = (nonce) => gcm(key, nonce, ad);
  }

  /** The plaintext of the records `chunk` completes (none, one or several). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.done) {
      if (chunk.length) throw new OutputError("sealed output has bytes after its last record");
      return [];
    }
    this.buf.push(chunk);
    this.buffered += chunk.length;
    const out: Uint8Array[] = [];
    if (this.aead === null) {
      const header = this.take(HEADER_LEN);
      if (header === null) return out;
      this.open(header);
    }
    for (;;) {
      const n = this.peekLength();
      if (n === null) return out;
      if (n < TAG_LEN || n > CHUNK + TAG_LEN) throw new OutputError(`sealed output has a record of ${n} bytes (corrupt)`);
      if (this.buffered < 4 + n) return out;
      const ct = (this.take(4 + n) as Uint8Array).subarray(4);
      out.push(this.record(ct));
      if (this.done) {
        if (this.buffered) throw new OutputError("sealed output has bytes after its last record");
        return out;
      }
    }
  }

  private record(ct: Uint8Array): Uint8Array {
    for (const flag of [0, 1]) {
      const nonce = new Uint8Array(12);
      nonce.set(this.prefix, 0);
      nonce[PREFIX_LEN] = flag;
      new DataView(nonce.buffer).setUint32(PREFIX_LEN + 1, this.index);
      let plain: Uint8Array;
      try {
        plain = (this.aead as NonNullable<typeof this.aead>)(nonce).decrypt(ct);
      } catch {
        continue; // the other flag, then refuse
      }
      this.index += 1;
      this.done = flag === 1;
      this.total += plain.length;
      if (this.total > this.maxBytes) throw new OutputError(`output archive unpacks to more than ${mib(this.maxBytes)}`);
      return plain;
    }
    throw new OutputError("sealed output authentication failed: it was tampered with, sealed to another key, or sealed for another job");
  }

  /** Throws unless the last record came (a stream cut after any record but the last does not open). */
  end(): void {
    if (!this.done) {
      throw new OutputError(this.aead === null ? "sealed output is truncated" : "sealed output is truncated (its last record is missing)");
    }
  }
}

/** The plaintext (a tar) of a whole sealed output stream (see OutputOpener).
 * @throws OutputError as OutputOpener. */
export function openOutputs(sealed: Uint8Array, privateKey: Uint8Array, aad: Uint8Array, maxBytes = MAX_OUTPUT_BYTES * 4): Uint8Array {
  const opener = new OutputOpener(privateKey, aad, maxBytes);
  const parts = opener.push(sealed);
  opener.end();
  return concat(parts, parts.reduce((n, p) => n + p.length, 0));
}

/** The files of a tar opened with OutputOpener (the parts in order): see unpackOutputs. */
export function outputFiles(tar: Uint8Array, opts: { maxBytes?: number; maxEntries?: number } = {}): OutputFile[] {
  return filesOf(tar, opts.maxBytes ?? MAX_OUTPUT_BYTES * 4, opts.maxEntries ?? MAX_ENTRIES);
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
 * @throws OutputError the stream does not open, or an entry is unsafe (a link, a device, `..`, a duplicate),
 *   or it is over `maxBytes` or `maxEntries`. */
export function unpackOutputs(sealed: Uint8Array, privateKey: Uint8Array, aad: Uint8Array,
  opts: { maxBytes?: number; maxEntries?: number } = {}): OutputFile[] {
  const maxBytes = opts.maxBytes ?? MAX_OUTPUT_BYTES * 4;
  // the tar's headers and padding come on top of the files' bytes
  const tar = openOutputs(sealed, privateKey, aad, maxBytes + 2 ** 20);
  return filesOf(tar, maxBytes, opts.maxEntries ?? MAX_ENTRIES);
}

function filesOf(tar: Uint8Array, maxBytes: number, maxEntries: number): OutputFile[] {
  let members;
  try {
    members = readTar(tar, maxBytes, maxEntries);
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
