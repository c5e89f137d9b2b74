import { gcm } from "@noble/ciphers/aes";
import { secp256k1 } from "@noble/curves/secp256k1";
import { hkdf } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha2";
import { describe, expect, it } from "vitest";
import { NoProviderError, OutputError, PayloadError, PayloadTooLargeError } from "../src/lib/errors";
import { OutputOpener, outputAad, unpackOutputs } from "../src/lib/outputs";
import {
  addressOfPublicKey,
  decodeJobPayload,
  decryptPayload,
  encodeJobPayload,
  encryptPayload,
  loadOrCreateOutputKey,
  openSealed,
  packWorkdir,
  publicKeyOf,
  seal,
} from "../src/lib/payload";
import { readTar, TarWriter } from "../src/lib/tar";
import { bytesToHex, hexToBytes } from "viem";

const enc = new TextEncoder();
const KEY = hexToBytes("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");

async function gunzip(b: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([b as BlobPart]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

describe("keys", () => {
  it("derive the Ethereum address of a node key", () => {
    const pub = publicKeyOf(KEY);
    expect(pub.length).toBe(64);
    expect(addressOfPublicKey(pub)).toBe("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
    expect(addressOfPublicKey(secp256k1.getPublicKey(KEY, true))).toBe("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
    expect(() => addressOfPublicKey(new Uint8Array(64))).toThrow(PayloadError);
    expect(() => addressOfPublicKey(new Uint8Array(10))).toThrow("a public key must be 64, 65 or 33 bytes (got 10)");
  });
});

describe("seal", () => {
  const aad = enc.encode("r-0123456789abcdef01234567");

  it("opens only with the recipient's key and the same aad", () => {
    const blob = seal(enc.encode("secret"), publicKeyOf(KEY), aad);
    expect(blob.length).toBe(78 + 6 + 16);
    expect(blob[0]).toBe(1);
    expect(new TextDecoder().decode(openSealed(blob, KEY, aad))).toBe("secret");
    expect(() => openSealed(blob, KEY, enc.encode("another job"))).toThrow(/authentication failed/);
    expect(() => openSealed(blob, secp256k1.utils.randomPrivateKey(), aad)).toThrow(/authentication failed/);
    const tampered = blob.slice();
    tampered[80] = (tampered[80] ?? 0) ^ 1;
    expect(() => openSealed(tampered, KEY, aad)).toThrow(/authentication failed/);
    expect(() => openSealed(blob.subarray(0, 90), KEY, aad)).toThrow("sealed payload is truncated (90 bytes)");
  });

  it("uses a fresh ephemeral key and nonce each time, or the fixed ones given", () => {
    const a = seal(enc.encode("x"), publicKeyOf(KEY), aad);
    const b = seal(enc.encode("x"), publicKeyOf(KEY), aad);
    expect(bytesToHex(a.subarray(1, 78))).not.toBe(bytesToHex(b.subarray(1, 78)));
    const fixed = { ephemeralKey: KEY, nonce: new Uint8Array(12).fill(0x11) };
    expect(seal(enc.encode("x"), publicKeyOf(KEY), aad, fixed)).toEqual(seal(enc.encode("x"), publicKeyOf(KEY), aad, fixed));
  });
});

describe("the job document", () => {
  it("frames entrypoint, env, pip and output key as JobPayload.encode", () => {
    const out = publicKeyOf(KEY);
    const doc = encodeJobPayload({ entrypoint: "python t.py", env: { B: "2", A: "é" }, pip: ["numpy==2.1"], outputKey: out,
      tarGz: enc.encode("TAR") });
    const header = `{"entrypoint":"python t.py","env":{"A":"é","B":"2"},"output_key":"${bytesToHex(out).slice(2)}","pip":["numpy==2.1"]}`;
    const h = enc.encode(header);
    expect(Array.from(doc.subarray(0, 9))).toEqual([...enc.encode("BLJP"), 1, 0, 0, (h.length >> 8) & 255, h.length & 255]);
    expect(new TextDecoder().decode(doc.subarray(9, 9 + h.length))).toBe(header);
    expect(new TextDecoder().decode(doc.subarray(9 + h.length))).toBe("TAR");
    const back = decodeJobPayload(doc);
    expect(back.env).toEqual({ A: "é", B: "2" });
    expect(back.outputKey).toEqual(out);
  });

  it("leaves pip and output_key out when empty", () => {
    const doc = encodeJobPayload({ entrypoint: "true" });
    expect(new TextDecoder().decode(doc.subarray(9))).toBe('{"entrypoint":"true","env":{}}');
  });

  it("refuses what the provider would refuse", () => {
    expect(() => encodeJobPayload({ entrypoint: "  " })).toThrow("job entrypoint is empty");
    expect(() => encodeJobPayload({ entrypoint: "a\0b" })).toThrow(/without NUL/);
    expect(() => encodeJobPayload({ entrypoint: "x", env: { "1A": "v" } })).toThrow("job env name '1A' is not a valid variable name");
    expect(() => encodeJobPayload({ entrypoint: "x", pip: ["--index-url=http://evil"] })).toThrow(/is an option/);
    expect(() => encodeJobPayload({ entrypoint: "x", pip: ["a b"] })).toThrow(/without spaces/);
    expect(() => encodeJobPayload({ entrypoint: "x", outputKey: new Uint8Array(64) })).toThrow(PayloadError);
  });
});

describe("packWorkdir", () => {
  const files = [
    { path: "train.py", data: enc.encode("print(1)\n") },
    { path: "run.sh", data: enc.encode("#!/bin/sh\n"), mode: 0o755 },
    { path: "data/sub/b.txt", data: enc.encode("b") },
    { path: "data/a.ckpt", data: enc.encode("big") },
    { path: ".git/HEAD", data: enc.encode("ref") },
    { path: "src/__pycache__/m.pyc", data: enc.encode("\0") },
    { path: "logs/x.log", data: enc.encode("l") },
    { path: "./" + "n".repeat(120), data: enc.encode("long") },
    { path: ".blendrignore", data: enc.encode("*.ckpt\nlogs/\n") },
  ];

  it("writes ustar members in pack_workdir's order, with pax names for long ones", async () => {
    const tar = await gunzip(await packWorkdir(files, 1 << 20));
    expect(tar.length % 10240).toBe(0);
    const members = readTar(tar, 1 << 20, 100).map((m) => [m.name, m.type, m.mode.toString(8)]);
    expect(members).toEqual([
      [".blendrignore", "0", "644"],
      ["data/", "5", "755"],
      ["n".repeat(120), "0", "644"],
      ["run.sh", "0", "755"],
      ["src/", "5", "755"],
      ["train.py", "0", "644"],
      ["data/sub/", "5", "755"],
      ["data/sub/b.txt", "0", "644"],
    ]);
    expect(cstr(tar.subarray(257, 263))).toBe("ustar");
  });

  it("refuses unsafe paths and negated ignore rules", async () => {
    await expect(packWorkdir([{ path: "/etc/passwd", data: new Uint8Array() }], 100)).rejects.toThrow(PayloadError);
    await expect(packWorkdir([{ path: "a/../../b", data: new Uint8Array() }], 100)).rejects.toThrow(/unsafe path/);
    await expect(packWorkdir([{ path: "a", data: new Uint8Array() }, { path: "./a", data: new Uint8Array() }], 100))
      .rejects.toThrow(/listed twice/);
    await expect(packWorkdir([{ path: ".blendrignore", data: enc.encode("!keep\n") }], 100))
      .rejects.toThrow(".blendrignore:1: negated patterns ('!') are not supported");
  });

  it("refuses a working directory over the limit, saying its size and the limit", async () => {
    const big = [{ path: "w.bin", data: new Uint8Array(3 * 2 ** 20 + 200 * 1024) }];
    const err = await packWorkdir(big, 2 ** 20, { name: "proj" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as PayloadTooLargeError).code).toBe("RESOURCE_EXHAUSTED");
    expect([(err as PayloadTooLargeError).size, (err as PayloadTooLargeError).limit]).toEqual([3 * 2 ** 20 + 200 * 1024, 2 ** 20]);
    expect((err as Error).message).toBe("workdir proj is 3.2 MB, over the 1 MB limit; add a .blendrignore or trim it");
    const random = [{ path: "r.bin", data: crypto.getRandomValues(new Uint8Array(60000)) }];
    await expect(packWorkdir(random, 60000)).rejects.toThrow(/compresses to 58.\d KB, over the 58.6 KB limit/);
    await expect(packWorkdir([{ path: "a", data: new Uint8Array() }, { path: "b", data: new Uint8Array() }], 100, { maxEntries: 1 }))
      .rejects.toThrow(/more than 1 entries/);
  });
});

function cstr(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

describe("encryptPayload", () => {
  it("wraps the key only for candidates whose key is theirs", () => {
    const good = secp256k1.utils.randomPrivateKey();
    const other = secp256k1.utils.randomPrivateKey();
    const goodPub = publicKeyOf(good);
    const candidates = [
      { provider: addressOfPublicKey(goodPub).toLowerCase(), publicKey: goodPub },
      { provider: "0x000000000000000000000000000000000000dEaD", publicKey: publicKeyOf(other) },
      { provider: addressOfPublicKey(publicKeyOf(other)), publicKey: new Uint8Array(64) },
    ];
    const doc = encodeJobPayload({ entrypoint: "true" });
    const out = encryptPayload(doc, candidates, "r-000000000000000000000001");
    expect(out.keys.map((k) => k.provider)).toEqual([candidates[0]?.provider]);
    expect(decryptPayload(out.ciphertext, out.keys[0]?.sealedKey as Uint8Array, good, "r-000000000000000000000001")).toEqual(doc);
    expect(() => decryptPayload(out.ciphertext, out.keys[0]?.sealedKey as Uint8Array, good, "r-000000000000000000000002"))
      .toThrow(PayloadError);
    expect(() => encryptPayload(doc, candidates.slice(1), "r-000000000000000000000001")).toThrow(NoProviderError);
  });
});

class MemoryStorage implements Storage {
  private m = new Map<string, string>();
  get length() { return this.m.size; }
  clear() { this.m.clear(); }
  getItem(k: string) { return this.m.get(k) ?? null; }
  key(i: number) { return [...this.m.keys()][i] ?? null; }
  removeItem(k: string) { this.m.delete(k); }
  setItem(k: string, v: string) { this.m.set(k, v); }
}

describe("the page's output key", () => {
  it("is kept per renter and reused", () => {
    const storage = new MemoryStorage();
    const a = loadOrCreateOutputKey(storage, "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
    expect(loadOrCreateOutputKey(storage, "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23")).toEqual(a);
    expect(loadOrCreateOutputKey(storage, "0x000000000000000000000000000000000000dEaD").priv).not.toEqual(a.priv);
    expect(storage.length).toBe(2);
    expect(a.pub).toEqual(publicKeyOf(a.priv));
  });
});

// A provider's side of blendr/outputs.py, written out here to test the opener against the format.
function sealOutputs(plain: Uint8Array, pub: Uint8Array, aad: Uint8Array, chunk: number): Uint8Array {
  const eph = secp256k1.utils.randomPrivateKey();
  const ephPub = secp256k1.getPublicKey(eph, false);
  const recipient = secp256k1.ProjectivePoint.fromHex(Uint8Array.from([4, ...pub])).toRawBytes(false);
  const key = hkdf(sha256, secp256k1.getSharedSecret(eph, recipient, true).subarray(1), Uint8Array.from([...ephPub, ...recipient]),
    enc.encode("blendr/payload/v1"), 32);
  const prefix = crypto.getRandomValues(new Uint8Array(7));
  const header = Uint8Array.from([...enc.encode("BLOS"), 1, ...ephPub, ...prefix]);
  const out: number[] = [...header];
  const n = Math.max(1, Math.ceil(plain.length / chunk));
  for (let i = 0; i < n; i++) {
    const nonce = new Uint8Array(12);
    nonce.set(prefix);
    nonce[7] = i === n - 1 ? 1 : 0;
    new DataView(nonce.buffer).setUint32(8, i);
    const ct = gcm(key, nonce, Uint8Array.from([...header, ...aad])).encrypt(plain.subarray(i * chunk, (i + 1) * chunk));
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, ct.length);
    out.push(...len, ...ct);
  }
  return Uint8Array.from(out);
}

describe("outputs", () => {
  const tar = new TarWriter();
  tar.add({ path: "ckpt", dir: true, mode: 0o755, data: new Uint8Array() });
  tar.add({ path: "ckpt/m.bin", dir: false, mode: 0o644, data: enc.encode("weights") });
  tar.add({ path: "run.sh", dir: false, mode: 0o755, data: enc.encode("#!/bin/sh") });
  const plain = tar.bytes();
  const pub = publicKeyOf(KEY);
  const aad = outputAad("j-0123456789abcdef0123", 1);

  it("open record by record into their files", () => {
    const files = unpackOutputs(sealOutputs(plain, pub, aad, 4096), KEY, aad);
    expect(files.map((f) => [f.path, new TextDecoder().decode(f.data), f.executable])).toEqual([
      ["ckpt/m.bin", "weights", false], ["run.sh", "#!/bin/sh", true]]);
  });

  it("open as they arrive, in chunks of any size", () => {
    const sealed = sealOutputs(plain, pub, aad, 4096);
    for (const size of [1, 7, 4100, sealed.length]) {
      const opener = new OutputOpener(KEY, aad);
      const parts: Uint8Array[] = [];
      for (let at = 0; at < sealed.length; at += size) parts.push(...opener.push(sealed.subarray(at, at + size)));
      opener.end();
      expect(Uint8Array.from(parts.flatMap((p) => [...p]))).toEqual(plain);
    }
    const cut = new OutputOpener(KEY, aad);
    cut.push(sealed.subarray(0, sealed.length - 1));
    expect(() => cut.end()).toThrow(/truncated/);
    const extra = new OutputOpener(KEY, aad);
    expect(() => extra.push(Uint8Array.from([...sealed, 0]))).toThrow(/bytes after its last record/);
  });

  it("refuse another attempt's aad, a dropped record and a link", () => {
    const sealed = sealOutputs(plain, pub, aad, 4096);
    expect(() => unpackOutputs(sealed, KEY, outputAad("j-0123456789abcdef0123", 2))).toThrow(OutputError);
    const firstRecord = 4 + 80 + 4 + 4096 + 16;
    expect(() => unpackOutputs(sealed.subarray(0, firstRecord), KEY, aad)).toThrow(/truncated/);
    const evil = new TarWriter();
    evil.add({ path: "../x", dir: false, mode: 0o644, data: enc.encode("x") });
    expect(() => unpackOutputs(sealOutputs(evil.bytes(), pub, aad, 4096), KEY, aad)).toThrow(/unsafe path/);
  });
});
