"""The committed contract artifacts match contracts/ and the pinned compiler (else: run `make contracts`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from blendr.chain import artifacts

ROOT = Path(__file__).resolve().parents[3]
UNITS = {"eth": ["eth", "bridge", "interfaces"], "etc": ["etc", "bridge", "interfaces"]}
EVM = {"eth": "prague", "etc": "shanghai"}
SHIPPED = ROOT / "blendr" / "chain" / "artifacts"
TEST_ONLY = ROOT / "tests" / "contracts" / "artifacts"


def _index(folder: Path = SHIPPED) -> dict:
    return json.loads((folder / "index.json").read_text())


def test_artifacts_were_built_from_the_current_sources() -> None:
    for folder, extra in ((SHIPPED, []), (TEST_ONLY, ["test"])):
        index = _index(folder)
        for unit, dirs in UNITS.items():
            built = index["units"][unit]["sources"]
            current = artifacts.source_hashes(ROOT, dirs + extra)
            stale = sorted(k for k in set(built) | set(current) if built.get(k) != current.get(k))
            assert not stale, f"{folder}: artifacts are stale for {stale}: run `make contracts` and commit the result"


def _contracts_declared_in(folder: Path) -> set[str]:
    names: set[str] = set()
    for p in folder.rglob("*.sol"):
        names |= set(re.findall(r"^(?:abstract\s+)?contract\s+(\w+)", p.read_text(), re.MULTILINE))
    return names


def test_the_shipped_artifacts_hold_no_test_contract() -> None:
    """Mocks, attackers and receivers from contracts/test/ are built next to the tests, never into the package."""
    test_contracts = _contracts_declared_in(ROOT / "contracts" / "test")
    assert {"EconFlashLender", "MockRentalStaking", "BridgeReentrantReceiver"} <= test_contracts  # the scan works
    shipped = {p.stem for p in SHIPPED.rglob("*.json")} | {n for u in _index()["units"].values() for n in u["contracts"]}
    assert not shipped & test_contracts, f"test-only contracts in the package's artifacts: {sorted(shipped & test_contracts)}"
    assert not any(k.startswith("contracts/test/") for u in _index()["units"].values() for k in u["sources"])
    built_for_tests = {p.stem for p in TEST_ONLY.rglob("*.json")} - {"index"}
    assert built_for_tests == test_contracts


def test_artifacts_were_built_with_the_pinned_compiler_and_library() -> None:
    index = _index()
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    solc = lock["node_modules/solc"]["version"]
    oz = lock["node_modules/@openzeppelin/contracts"]["version"]
    assert index["solc"].startswith(solc + "+"), f"built with solc {index['solc']}, pinned {solc}: run `make contracts`"
    assert index["openzeppelin"] == oz, f"built with OpenZeppelin {index['openzeppelin']}, pinned {oz}"


def test_each_chain_is_compiled_for_the_evm_it_runs() -> None:
    """Ethereum Classic runs Shanghai (Spiral): its unit must not use Cancun opcodes such as MCOPY."""
    index = _index()
    for unit, evm in EVM.items():
        assert index["units"][unit]["evmVersion"] == evm
        for name in index["units"][unit]["contracts"]:
            assert artifacts.load(unit, name).evm_version == evm
    for name in index["units"]["etc"]["contracts"]:
        code = artifacts.load("etc", name).deployed_bytecode
        used = _opcodes(bytes.fromhex(code[2:])) & CANCUN_ONLY
        assert not used, f"etc contract {name} uses Cancun-only opcodes {sorted(hex(o) for o in used)}"


CANCUN_ONLY = {0x5C, 0x5D, 0x5E, 0x49, 0x4A}  # TLOAD, TSTORE, MCOPY, BLOBHASH, BLOBBASEFEE


def _opcodes(code: bytes) -> set[int]:
    """Opcodes in runtime code, skipping PUSH data and the trailing CBOR metadata."""
    if len(code) >= 2:
        meta = int.from_bytes(code[-2:], "big") + 2
        if meta <= len(code):
            code = code[:-meta]
    ops: set[int] = set()
    i = 0
    while i < len(code):
        op = code[i]
        ops.add(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return ops


def test_the_opcode_scan_sees_cancun_opcodes() -> None:
    """The scan above can fail: MCOPY as an instruction is found, inside PUSH data it is not."""
    assert 0x5E in _opcodes(bytes([0x60, 0x01, 0x5E, 0x00, 0x00]))
    assert 0x5E not in _opcodes(bytes([0x61, 0x5E, 0x5E, 0x00, 0x00, 0x00]))


def test_every_deployed_contract_has_an_artifact_on_its_chain() -> None:
    for chain, names in {
        "eth": ["GPUToken", "StakingManager", "GPURental", "Governance", "BlendrTimelock", "TokenDistributor",
                "VotesVestingWallet", "BridgeInbox", "BridgeOutbox"],
        "etc": ["WorkVerification", "ReputationSystem", "BridgeInbox", "BridgeOutbox", "BridgeGovernanceExecutor"],
    }.items():
        for name in names:
            art = artifacts.load(chain, name)
            assert art.bytecode.startswith("0x") and len(art.bytecode) > 100 and art.abi
