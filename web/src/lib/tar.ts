// POSIX tar as Python's tarfile writes it in PAX_FORMAT (a ustar header, and a pax "x" header before a member
// whose name is not ASCII or longer than 100 bytes), and a reader for what blendr's providers send back.
// Used by payload.ts (the working directory) and outputs.ts (a job's outputs).

const BLOCK = 512;
const RECORD = 20 * BLOCK;
const enc = new TextEncoder();

export interface TarMember {
  /** A relative path; a directory's ends without "/" here. */
  path: string;
  dir: boolean;
  mode: number;
  data: Uint8Array;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: Uint8Array, type: string, size: number, mode: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (off: number, text: string | Uint8Array) => h.set(typeof text === "string" ? enc.encode(text) : text, off);
  put(0, name.subarray(0, 100));
  put(100, octal(mode, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(0, 12));
  put(148, "        ");
  put(156, type);
  put(257, "ustar\0");
  put(263, "00");
  put(329, octal(0, 8));
  put(337, octal(0, 8));
  let sum = 0;
  for (const b of h) sum += b;
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function paxRecord(keyword: string, value: string): string {
  const rest = ` ${keyword}=${value}\n`;
  const l = enc.encode(rest).length;
  let p = 0;
  for (;;) {
    const n = l + String(p).length;
    if (n === p) break;
    p = n;
  }
  return `${p}${rest}`;
}

/** Writes members one after another; `bytes()` ends the archive (two zero blocks, padded to a 10 KiB record). */
export class TarWriter {
  private parts: Uint8Array[] = [];
  private offset = 0;

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.offset += b.length;
  }

  private pad(n: number): void {
    const r = n % BLOCK;
    if (r) this.push(new Uint8Array(BLOCK - r));
  }

  get size(): number {
    return this.offset;
  }

  add(m: TarMember): void {
    const name = m.dir ? `${m.path}/` : m.path;
    const raw = enc.encode(name);
    // eslint-disable-next-line no-control-regex
    if (raw.length > 100 || !/^[\x00-\x7f]*$/.test(name)) {
      const pax = enc.encode(paxRecord("path", name));
      this.push(header(enc.encode("././@PaxHeader"), "x", pax.length, 0o644));
      this.push(pax);
      this.pad(pax.length);
    }
    const size = m.dir ? 0 : m.data.length;
    this.push(header(raw, m.dir ? "5" : "0", size, m.mode));
    if (size) {
      this.push(m.data);
      this.pad(size);
    }
  }

  bytes(): Uint8Array {
    this.push(new Uint8Array(2 * BLOCK));
    const r = this.offset % RECORD;
    if (r) this.push(new Uint8Array(RECORD - r));
    const out = new Uint8Array(this.offset);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Why a tar could not be read; `tooLarge` when over a limit. */
export class TarReadError extends Error {
  readonly tooLarge: boolean;

  constructor(message: string, tooLarge = false) {
    super(message);
    this.tooLarge = tooLarge;
  }
}

function cstring(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

function readOctal(b: Uint8Array, what: string): number {
  const text = cstring(b).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarReadError(`invalid ${what} field in a tar header`);
  return text ? parseInt(text, 8) : 0;
}

function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    let sp = at;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const len = Number(new TextDecoder().decode(data.subarray(at, sp)));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length) throw new TarReadError("invalid pax header");
    const rec = new TextDecoder().decode(data.subarray(sp + 1, at + len - 1));
    const eq = rec.indexOf("=");
    if (eq < 0) throw new TarReadError("invalid pax header");
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

export interface RawMember {
  name: string;
  type: string;
  mode: number;
  data: Uint8Array;
}

/** Every member of a tar (pax "x" headers applied, "g" headers skipped), or TarReadError if it is corrupt or
 * holds more than `maxEntries` members or `maxBytes` of file data. Only zero bytes may follow its end. */
export function readTar(tar: Uint8Array, maxBytes: number, maxEntries: number): RawMember[] {
  const out: RawMember[] = [];
  let at = 0;
  let total = 0;
  let pax: Map<string, string> | null = null;
  for (;;) {
    if (at + BLOCK > tar.length) {
      if (at === tar.length && out.length === 0 && tar.length === 0) return out;
      throw new TarReadError("unexpected end of data");
    }
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) {
      if (!tar.subarray(at).every((b) => b === 0)) throw new TarReadError("data after the end of the archive");
      return out;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
    if (readOctal(h.subarray(148, 156), "checksum") !== sum) throw new TarReadError("bad checksum in a tar header");
    const type = String.fromCharCode(h[156] ?? 0);
    let size = readOctal(h.subarray(124, 136), "size");
    let name = cstring(h.subarray(0, 100));
    const prefix = cstring(h.subarray(345, 500));
    if (cstring(h.subarray(257, 263)) === "ustar" && prefix) name = `${prefix}/${name}`;
    if (pax?.has("size")) size = Number(pax.get("size"));
    if (pax?.has("path")) name = pax.get("path") ?? name;
    const start = at + BLOCK;
    const end = start + size;
    if (!Number.isSafeInteger(size) || end > tar.length) throw new TarReadError("unexpected end of data");
    const data = tar.subarray(start, end);
    at = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      pax = parsePax(data);
      continue;
    }
    if (type === "g") continue;
    pax = null;
    if (out.length >= maxEntries) throw new TarReadError(`more than ${maxEntries} entries`, true);
    if (type === "0" || type === "\0" || type === "7") {
      total += size;
      if (total > maxBytes) throw new TarReadError(`unpacks to more than ${maxBytes} bytes`, true);
    }
    out.push({ name, type, mode: readOctal(h.subarray(100, 108), "mode"), data });
  }
}
