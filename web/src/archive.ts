// An archive picked as the working directory, unpacked in the page into the files of a job: .tar, .tar.gz /
// .tgz and .zip (stored or deflated), with the browser's own DecompressionStream. Guarantees: only regular files
// come out, at relative paths without "..", absolute parts or empty names; anything else in the archive is skipped.
import { InputError } from "./errors";

export interface ArchiveFile {
  path: string;
  data: Uint8Array;
  mode?: number;
}

/** Whether a file name is an archive this page can unpack. */
export function isArchive(name: string): boolean {
  return /\.(tar|tar\.gz|tgz|zip)$/i.test(name);
}

/** The files inside an archive (by its name's extension). InputError: not an archive, or damaged. */
export async function unpackArchive(name: string, data: Uint8Array): Promise<ArchiveFile[]> {
  const lower = name.toLowerCase();
  try {
    if (lower.endsWith(".zip")) return await unzip(data);
    if (lower.endsWith(".tar.gz") || lower.endsWith(".tgz")) return untar(await inflate(data, "gzip"));
    if (lower.endsWith(".tar")) return untar(data);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError("archive", `${name} could not be unpacked (damaged or not the archive its name says).`);
  }
  throw new InputError("archive", `${name} is not a .tar, .tar.gz, .tgz or .zip archive.`);
}

/** A path inside the working directory, or null for one that would leave it. */
export function safePath(path: string): string | null {
  const parts = path.replace(/\\/g, "/").split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0 || parts.includes("..") || /^[A-Za-z]:$/.test(parts[0] ?? "")) return null;
  return parts.join("/");
}

async function inflate(data: Uint8Array, format: "gzip" | "deflate-raw"): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new DecompressionStream(format));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const text = new TextDecoder();

function cstr(b: Uint8Array): string {
  const end = b.indexOf(0);
  return text.decode(end < 0 ? b : b.subarray(0, end));
}

function octal(b: Uint8Array): number {
  const s = cstr(b).trim();
  return s ? parseInt(s, 8) : 0;
}

/** ustar/GNU tar: regular files ('0' or NUL type), with ustar prefixes and GNU/PAX long names. */
export function untar(data: Uint8Array): ArchiveFile[] {
  const out: ArchiveFile[] = [];
  let off = 0;
  let longName: string | null = null;
  while (off + 512 <= data.length) {
    const head = data.subarray(off, off + 512);
    if (head.every((x) => x === 0)) break;
    const size = octal(head.subarray(124, 136));
    const type = String.fromCharCode(head[156] ?? 0);
    const body = data.subarray(off + 512, off + 512 + size);
    if (body.length < size) throw new Error("truncated tar");
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "L") {
      longName = cstr(body);
      continue;
    }
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text.decode(body));
      if (m) longName = m[1] ?? null;
      continue;
    }
    const prefix = cstr(head.subarray(345, 500));
    const name = longName ?? (prefix ? `${prefix}/${cstr(head.subarray(0, 100))}` : cstr(head.subarray(0, 100)));
    longName = null;
    if (type !== "0" && type !== "\0") continue;
    const path = safePath(name);
    if (path) out.push({ path, data: body.slice(), mode: octal(head.subarray(100, 108)) & 0o777 });
  }
  return out;
}

/** zip by its central directory: stored (0) and deflated (8) entries; directories skipped. */
export async function unzip(data: Uint8Array): Promise<ArchiveFile[]> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let eocd = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("no zip directory");
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  const out: ArchiveFile[] = [];
  for (let n = 0; n < count; n++) {
    if (view.getUint32(p, true) !== 0x02014b50) throw new Error("bad zip entry");
    const method = view.getUint16(p + 10, true);
    const compressed = view.getUint32(p + 20, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const external = view.getUint32(p + 38, true);
    const local = view.getUint32(p + 42, true);
    const name = text.decode(data.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (name.endsWith("/")) continue;
    const path = safePath(name);
    if (!path) continue;
    if (view.getUint32(local, true) !== 0x04034b50) throw new Error("bad zip local header");
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const raw = data.subarray(start, start + compressed);
    let body: Uint8Array;
    if (method === 0) body = raw.slice();
    else if (method === 8) body = await inflate(raw, "deflate-raw");
    else throw new InputError("archive", `${path} in the zip uses a compression this page cannot open (method ${method}).`);
    const unixMode = (external >>> 16) & 0o777;
    out.push(unixMode ? { path, data: body, mode: unixMode } : { path, data: body });
  }
  return out;
}
