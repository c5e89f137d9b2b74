// The TypeScript renter logic as a command for the cross-language tests: `node xtest.mjs <command>` reads one
// JSON request on stdin and writes one JSON answer on stdout (bytes as hex without 0x; bigints as decimal
// strings). A BlendrError is answered as {"error": name, "code": ..., "message": ...} with exit status 0.

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { bytesToHex, hexToBytes, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { QuoteSchema, SubmitJobRequestSchema, WalletSchema } from "../src/gen/protos/blendr/v1/renter_pb";
import { BlendrError } from "../src/lib/errors";
import { formatBytes, formatDuration, formatTokens, parseTokens } from "../src/lib/format";
import {
  candidatesRoot,
  permitTypedData,
  rentalIntentTypedData,
  specHash,
  typedDataDigest,
  voucherIntentTypedData,
  type Address,
  type RenterTypedData,
} from "../src/lib/intents";
import { OutputOpener, outputAad, outputFiles, unpackOutputs } from "../src/lib/outputs";
import { encodeJobPayload, encryptPayload, openSealed, packWorkdir, seal } from "../src/lib/payload";
import { pyFixed, pyFloatRepr, pyJsonDumps, type PyJson } from "../src/lib/pyjson";
import type { Spec } from "../src/lib/spec";
import { buildSubmission } from "../src/lib/submit";

declare const process: {
  argv: string[];
  stdin: AsyncIterable<Uint8Array>;
  stdout: { write(s: string): void };
  exitCode: number;
};

type Json = Record<string, unknown>;

const hex = (b: Uint8Array) => bytesToHex(b).slice(2);
const bytes = (h: unknown) => hexToBytes(`0x${String(h ?? "")}`);

function spec(s: Json): Spec {
  return {
    gpus: Number(s.gpus),
    durationS: Number(s.duration_s),
    maxPricePerGpuHour: BigInt(String(s.max_price_per_gpu_hour)),
    gpuModel: String(s.gpu_model ?? ""),
    minVramBytes: BigInt(String(s.min_vram_bytes ?? 0)),
    minTflops: Number(s.min_tflops ?? 0),
  };
}

function files(list: unknown) {
  return ((list ?? []) as Json[]).map((f) => ({ path: String(f.path), data: bytes(f.data), mode: Number(f.mode ?? 0o644) }));
}

function signer(privateKey: unknown) {
  const account = privateKeyToAccount(`0x${String(privateKey)}`);
  return {
    address: account.address as Address,
    signTypedData: (td: RenterTypedData) => account.signTypedData(td as Parameters<typeof account.signTypedData>[0]),
  };
}

async function hashes(req: Json): Promise<Json> {
  const s = spec(req.spec as Json);
  const sh = specHash(s, bytes(req.ciphertext));
  const root = candidatesRoot(req.providers as string[]);
  const acct = signer(req.private_key);
  const it = req.intent as Json;
  const intent = {
    renter: acct.address, provider: String(it.provider) as Address, gpus: s.gpus, specHash: sh,
    maxPricePerGpuHour: s.maxPricePerGpuHour, duration: BigInt(s.durationS), nonce: BigInt(String(it.nonce)),
    deadline: BigInt(String(it.deadline)), candidatesRoot: root, scheduler: String(it.scheduler) as Address,
  };
  const chainId = BigInt(String(req.chain_id));
  const rental = String(req.rental);
  const p = req.permit as Json;
  const tds = {
    intent: rentalIntentTypedData(intent, chainId, rental),
    voucher: voucherIntentTypedData(intent, BigInt(String(req.voucher_id)), chainId, rental),
    permit: permitTypedData(String(p.token_name), chainId, String(p.token), {
      owner: acct.address, spender: rental, value: BigInt(String(p.value)), nonce: BigInt(String(p.nonce)),
      deadline: BigInt(String(p.deadline)),
    }),
  };
  const out: Json = { spec_hash: sh.slice(2), candidates_root: root.slice(2) };
  for (const [k, td] of Object.entries(tds)) {
    out[`${k}_digest`] = typedDataDigest(td).slice(2);
    out[`${k}_signature`] = (await acct.signTypedData(td)).slice(2);
  }
  return out;
}

const commands: Record<string, (req: Json) => Promise<Json> | Json> = {
  async pack(req) {
    return { tar_gz: hex(await packWorkdir(files(req.files), Number(req.max_bytes ?? 50 * 2 ** 20), { name: "proj" })) };
  },

  async encrypt(req) {
    const tarGz = await packWorkdir(files(req.files), Number(req.max_bytes ?? 50 * 2 ** 20));
    const doc = encodeJobPayload({ entrypoint: String(req.entrypoint), env: (req.env ?? {}) as Record<string, string>,
      pip: (req.pip ?? []) as string[], outputKey: bytes(req.output_key), tarGz });
    const candidates = (req.candidates as Json[]).map((c) => ({ provider: String(c.provider), publicKey: bytes(c.public_key) }));
    const out = encryptPayload(doc, candidates, String(req.request_id));
    return { doc: hex(doc), ciphertext: hex(out.ciphertext), keys: out.keys.map((k) => ({ provider: k.provider, sealed_key: hex(k.sealedKey) })) };
  },

  seal(req) {
    const fixed = req.ephemeral_key ? { ephemeralKey: bytes(req.ephemeral_key), nonce: bytes(req.nonce) } : undefined;
    return { sealed: hex(seal(bytes(req.plaintext), bytes(req.public_key), bytes(req.aad), fixed)) };
  },

  open(req) {
    return { plaintext: hex(openSealed(bytes(req.sealed), bytes(req.private_key), bytes(req.aad))) };
  },

  async hashes(batch) {
    const out: Json[] = [];
    for (const req of batch.cases as Json[]) out.push(await hashes(req));
    return { cases: out };
  },

  async submit(req) {
    const sub = await buildSubmission({
      quote: fromBinary(QuoteSchema, bytes(req.quote)),
      wallet: fromBinary(WalletSchema, bytes(req.wallet)),
      spec: spec(req.spec as Json),
      name: String(req.name ?? ""),
      requestId: req.request_id === undefined ? undefined : String(req.request_id),
      entrypoint: String(req.entrypoint),
      env: (req.env ?? {}) as Record<string, string>,
      files: files(req.files),
      outputKeyPub: bytes(req.output_key),
      signer: signer(req.private_key),
      spareIntents: req.spare_intents === undefined ? undefined : Number(req.spare_intents),
      voucherId: req.voucher_id === undefined ? undefined : BigInt(String(req.voucher_id)),
      now: () => Number(req.now),
    });
    return { request: hex(toBinary(SubmitJobRequestSchema, sub)) };
  },

  outputs(req) {
    const aad = outputAad(String(req.job_id), Number(req.attempt));
    const sealed = bytes(req.sealed);
    let out;
    if (req.chunk) {
      // as the page reads GetJobOutput: chunk by chunk, through OutputOpener
      const opener = new OutputOpener(bytes(req.private_key), aad);
      const parts: Uint8Array[] = [];
      for (let at = 0; at < sealed.length; at += Number(req.chunk)) parts.push(...opener.push(sealed.subarray(at, at + Number(req.chunk))));
      opener.end();
      const tar = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (tar.set(p, at), at + p.length), 0);
      out = outputFiles(tar);
    } else {
      out = unpackOutputs(sealed, bytes(req.private_key), aad);
    }
    return { files: out.map((f) => ({ path: f.path, data: hex(f.data), executable: f.executable })) };
  },

  text(req) {
    return {
      repr: (req.floats as number[]).map(pyFloatRepr),
      fixed: (req.fixed as [number, number][]).map(([x, p]) => pyFixed(x, p)),
      json: (req.docs as PyJson[]).map((d) => [pyJsonDumps(d, true), pyJsonDumps(d, false)]),
      tokens: (req.wei as string[]).map((w) => formatTokens(w)),
      parsed: (req.amounts as string[]).map((a) => {
        try {
          return parseTokens(a).toString();
        } catch (exc) {
          return `error: ${(exc as Error).message}`;
        }
      }),
      durations: (req.durations as number[]).map(formatDuration),
      sizes: (req.sizes as number[]).map(formatBytes),
    };
  },
};

async function main(): Promise<void> {
  const name = process.argv[2] ?? "";
  const command = commands[name];
  if (!command) throw new Error(`unknown command ${name}`);
  let text = "";
  const dec = new TextDecoder();
  for await (const chunk of process.stdin) text += dec.decode(chunk, { stream: true });
  // numbers that do not fit a double (wei, nonces) come as strings; floats as JSON numbers
  const req = JSON.parse(text) as Json;
  let out: Json;
  try {
    out = await command(req);
  } catch (exc) {
    if (!(exc instanceof BlendrError)) throw exc;
    out = { error: exc.name, code: exc.code, message: exc.message };
  }
  process.stdout.write(JSON.stringify(out, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
}

void main().catch((exc: unknown) => {
  process.stdout.write(JSON.stringify({ crash: String((exc as Error)?.stack ?? exc) }));
  process.exitCode = 1;
});

export type { Hex };
