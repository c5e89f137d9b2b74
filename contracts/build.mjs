// Compiles contracts/ with the pinned solc-js into blendr/chain/artifacts/ (run by `make contracts`).
//
// Two compilation units, one per chain, because the chains run different EVMs:
//   eth: contracts/eth + bridge + interfaces, for Ethereum mainnet's EVM (prague)
//   etc: contracts/etc + bridge + interfaces, for Ethereum Classic mainnet's EVM. ETC activated
//        Spiral (ECIP-1109: Shanghai's PUSH0 and friends) in 2024; Olympia (ECIP-1111/1121) is still a
//        draft with no activation block, so ETC has no Cancun opcodes (MCOPY, TSTORE): shanghai.
// contracts/test/ holds contracts that only tests deploy (reentrant receivers, mocks, attackers): both units
// compile it, but its artifacts go to tests/contracts/artifacts/ (with their own index.json), never into the
// package's blendr/chain/artifacts/; the loader finds them only where a test registers that folder.
// Each artifact holds the ABI, creation bytecode, runtime bytecode and the hash of every source that
// went into its unit; index.json holds the hash of all inputs so a test can tell when artifacts are stale.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, readdirSync, mkdirSync, rmSync, statSync, existsSync } from "node:fs";
import { join, relative, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// Options for working on part of the tree (the committed artifacts always come from a plain run):
//   --out DIR        write artifacts to DIR instead of blendr/chain/artifacts (tests read $BLENDR_ARTIFACTS_DIR)
//   --test-out DIR   write the test-only artifacts to DIR instead of tests/contracts/artifacts
//   --only a,b       compile only sources whose path starts with one of these prefixes (imports still resolve)
const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
const OUT = opt("--out") ? resolve(opt("--out")) : join(ROOT, "blendr", "chain", "artifacts");
const TEST_OUT = opt("--test-out") ? resolve(opt("--test-out")) : join(ROOT, "tests", "contracts", "artifacts");
const ONLY = opt("--only") ? opt("--only").split(",") : null;
const TEST_DIR = "contracts/test/";
export const UNITS = {
  // eth: through the IR pipeline, optimized for many runs: rentals are created and settled all the time (with
  // the legacy pipeline at 200 runs createRental with an open intent cost ~152k gas, over its 150k target).
  eth: { dirs: ["eth", "bridge", "interfaces", "test"], evmVersion: "prague", viaIR: true, runs: 20000 },
  etc: { dirs: ["etc", "bridge", "interfaces", "test"], evmVersion: "shanghai" },
};

function solFiles(dir) {
  const out = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...solFiles(p));
    else if (name.endsWith(".sol")) out.push(p);
  }
  return out;
}

function findImport(path) {
  for (const base of [join(ROOT, "node_modules"), ROOT]) {
    const p = join(base, path);
    if (existsSync(p)) return { contents: readFileSync(p, "utf8") };
  }
  return { error: `import not found: ${path}` };
}

function sha256(s) {
  return createHash("sha256").update(s).digest("hex");
}

const ozVersion = JSON.parse(readFileSync(join(ROOT, "node_modules/@openzeppelin/contracts/package.json"), "utf8")).version;
rmSync(OUT, { recursive: true, force: true });
rmSync(TEST_OUT, { recursive: true, force: true });
let failed = false;
const index = { solc: solc.version(), openzeppelin: ozVersion, units: {} };
const testIndex = { solc: solc.version(), openzeppelin: ozVersion, units: {} };
for (const [unit, cfg] of Object.entries(UNITS)) {
  const sources = {};
  for (const d of cfg.dirs) {
    for (const f of solFiles(join(ROOT, "contracts", d))) {
      const rel = relative(ROOT, f);
      if (ONLY && !ONLY.some((p) => rel.startsWith(p))) continue;
      sources[rel] = { content: readFileSync(f, "utf8") };
    }
  }
  if (Object.keys(sources).length === 0) continue;
  const input = {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: cfg.evmVersion,
      optimizer: { enabled: true, runs: cfg.runs ?? 200 },
      viaIR: cfg.viaIR ?? false,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const t0 = Date.now();
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) {
    if (e.severity === "error" || !e.sourceLocation?.file?.startsWith("@openzeppelin")) {
      console.error(`[${unit}] ${e.formattedMessage}`);
    }
  }
  if (errors.length) { failed = true; continue; }
  mkdirSync(join(OUT, unit), { recursive: true });
  const names = [];
  const testNames = [];
  for (const [file, contracts] of Object.entries(output.contracts)) {
    if (!file.startsWith("contracts/")) continue;
    const isTest = file.startsWith(TEST_DIR);
    const dir = join(isTest ? TEST_OUT : OUT, unit);
    mkdirSync(dir, { recursive: true });
    for (const [name, c] of Object.entries(contracts)) {
      if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
      const artifact = {
        contractName: name, sourceName: file, chain: unit, evmVersion: cfg.evmVersion,
        solc: solc.version(), abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object, deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      };
      writeFileSync(join(dir, `${name}.json`), JSON.stringify(artifact, null, 1) + "\n");
      (isTest ? testNames : names).push(name);
    }
  }
  // the shipped index covers the shipped sources only; the test index every source its contracts compiled with
  const hashes = (keys) => Object.fromEntries(keys.sort().map((k) => [k, sha256(sources[k].content)]));
  const shipped = Object.keys(sources).filter((k) => !k.startsWith(TEST_DIR));
  index.units[unit] = { evmVersion: cfg.evmVersion, contracts: names.sort(), sources: hashes(shipped) };
  testIndex.units[unit] = { evmVersion: cfg.evmVersion, contracts: testNames.sort(), sources: hashes(Object.keys(sources)) };
  console.log(`${unit}: ${names.length} contracts (+ ${testNames.length} test-only) for ${cfg.evmVersion} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
if (failed) process.exit(1);
writeFileSync(join(OUT, "index.json"), JSON.stringify(index, null, 1) + "\n");
mkdirSync(TEST_OUT, { recursive: true });
writeFileSync(join(TEST_OUT, "index.json"), JSON.stringify(testIndex, null, 1) + "\n");
