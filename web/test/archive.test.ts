import { describe, expect, it } from "vitest";
import { InputError } from "../src/errors";
import { isArchive, safePath, unpackArchive, untar } from "../src/archive";

const enc = new TextEncoder();

function tarEntry(name: string, body: string, type = "0", mode = 0o644): Uint8Array {
  const head = new Uint8Array(512);
  head.set(enc.encode(name), 0);
  head.set(enc.encode(mode.toString(8).padStart(7, "0") + "\0"), 100);
  const data = enc.encode(body);
  head.set(enc.encode(data.length.toString(8).padStart(11, "0") + "\0"), 124);
  head[156] = type.charCodeAt(0);
  const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
  padded.set(data);
  return concat(head, padded);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A zip of (name, body, method) entries. */
async function zip(entries: [string, string, 0 | 8][]): Promise<Uint8Array> {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, body, method] of entries) {
    const nameB = enc.encode(name);
    const raw = enc.encode(body);
    const data = method === 8 ? await deflateRaw(raw) : raw;
    const local = new Uint8Array(30 + nameB.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(8, method, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, raw.length, true);
    lv.setUint16(26, nameB.length, true);
    local.set(nameB, 30);
    const central = new Uint8Array(46 + nameB.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(10, method, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, raw.length, true);
    cv.setUint16(28, nameB.length, true);
    cv.setUint32(38, (0o100755 << 16) >>> 0, true);
    cv.setUint32(42, offset, true);
    central.set(nameB, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.length + data.length;
  }
  const dir = concat(...centrals);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, dir.length, true);
  ev.setUint32(16, offset, true);
  return concat(...locals, dir, end);
}

const dec = new TextDecoder();

describe("archives", () => {
  it("knows the archive names it can open", () => {
    expect(isArchive("work.tar.gz")).toBe(true);
    expect(isArchive("work.TGZ")).toBe(true);
    expect(isArchive("work.zip")).toBe(true);
    expect(isArchive("work.7z")).toBe(false);
  });

  it("keeps paths inside the working directory", () => {
    expect(safePath("./a/b.py")).toBe("a/b.py");
    expect(safePath("/etc/passwd")).toBe("etc/passwd");
    expect(safePath("a/../../x")).toBeNull();
    expect(safePath("C:/x")).toBeNull();
    expect(safePath("./")).toBeNull();
  });

  it("unpacks a tar's regular files with their modes, skipping links and escapes", () => {
    const tar = concat(
      tarEntry("src/", "", "5"),
      tarEntry("src/train.py", "print(1)\n", "0", 0o755),
      tarEntry("link", "", "2"),
      tarEntry("../evil", "x"),
      new Uint8Array(1024),
    );
    const files = untar(tar);
    expect(files.map((f) => f.path)).toEqual(["src/train.py"]);
    expect(dec.decode(files[0]!.data)).toBe("print(1)\n");
    expect(files[0]!.mode).toBe(0o755);
  });

  it("takes GNU long names", () => {
    const long = "d/".repeat(60) + "f.txt";
    const files = untar(concat(tarEntry("././@LongLink", long + "\0", "L"), tarEntry("short", "hi"), new Uint8Array(1024)));
    expect(files.map((f) => f.path)).toEqual([long]);
  });

  it("unpacks a .tar.gz", async () => {
    const tar = concat(tarEntry("a.txt", "alpha"), new Uint8Array(1024));
    const gz = new Uint8Array(await new Response(new Blob([tar as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    const files = await unpackArchive("w.tgz", gz);
    expect(files.map((f) => [f.path, dec.decode(f.data)])).toEqual([["a.txt", "alpha"]]);
  });

  it("unpacks stored and deflated zip entries", async () => {
    const data = await zip([
      ["dir/", "", 0],
      ["dir/a.txt", "stored text", 0],
      ["b.txt", "deflated text ".repeat(20), 8],
      ["../x", "no", 0],
    ]);
    const files = await unpackArchive("w.zip", data);
    expect(files.map((f) => [f.path, dec.decode(f.data)])).toEqual([
      ["dir/a.txt", "stored text"],
      ["b.txt", "deflated text ".repeat(20)],
    ]);
    expect(files[0]!.mode).toBe(0o755);
  });

  it("says a damaged archive could not be unpacked", async () => {
    await expect(unpackArchive("w.zip", new Uint8Array(10))).rejects.toThrow(InputError);
    await expect(unpackArchive("w.tar.gz", new Uint8Array([1, 2, 3]))).rejects.toThrow(/could not be unpacked/);
    await expect(unpackArchive("w.rar", new Uint8Array(1))).rejects.toThrow(/not a .tar/);
  });
});
