"""The committed contract artifacts match contracts/ and the pinned compiler (else: run `make contracts`)."""

from __future__ import annotations

import json
from pathlib import Path

from blendr.chain import artifacts

ROOT = Path(__file__).resolve().parents[3]
UNITS = {"eth": ["eth", "bridge", "interfaces", "test"], "etc": ["etc", "bridge", "interfaces", "test"]}
EVM = {"eth": "prague", "etc": "shanghai"}


def _index() -> dict:
    return json.loads((ROOT / "blendr" / "chain" / "artifacts" / "index.json").read_text())


def test_artifacts_were_built_from_the_current_sources() -> None:
    index = _index()
    for unit, dirs in UNITS.items():
        built = index["units"][unit]["sources"]
        current = artifacts.source_hashes(ROOT, dirs)
        stale = sorted(k for k in set(built) | set(current) if built.get(k) != current.get(k))
        assert not stale, f"contract artifacts are stale for {stale}: run `make contracts` and commit the result"


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
                "BridgeInbox", "BridgeOutbox"],
        "etc": ["WorkVerification", "ReputationSystem", "BridgeInbox", "BridgeOutbox", "BridgeGovernanceExecutor"],
    }.items():
        for name in names:
            art = artifacts.load(chain, name)
            assert art.bytecode.startswith("0x") and len(art.bytecode) > 100 and art.abi
