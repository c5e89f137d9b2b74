"""The provider agent's challenge handling, without a queen: thread runtime, a fake ``send``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from blendr.config import Config
from blendr.errors import ChallengeExpiredError, InvalidArgumentError
from blendr.identity import NodeIdentity
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import DeviceProof, prove_device
from blendr.proof.verifier import verify_openings
from blendr.rpc import convert
from blendr.types import DeviceInfo, DeviceKind, RayInfo, Verdict
from protos.blendr.v1 import queen_pb2 as pb
from provider.agent import KEEP_PROOFS, ProviderAgent, _Proof
from provider.compute import ComputeRuntime, ThreadRuntime

SEED = bytes(range(16))
GPUS = [
    DeviceInfo(index=i, kind=DeviceKind.GPU, name="NVIDIA T4", model="t4", memory_bytes=16 * 2**30)
    for i in range(2)
]


class Outbox:
    """The agent's ``send``: collects the provider messages it would write to the stream."""

    def __init__(self) -> None:
        self.sent: list[pb.ProviderMessage] = []

    async def __call__(self, msg: pb.ProviderMessage) -> None:
        self.sent.append(msg)

    def bodies(self, kind: str) -> list[Any]:
        return [getattr(m, kind) for m in self.sent if m.WhichOneof("body") == kind]


class ExpiringRuntime(ComputeRuntime):
    async def start(self) -> RayInfo:
        return RayInfo()

    async def prove(
        self, params: ChallengeParams, devices: Sequence[DeviceInfo], timeout_s: float
    ) -> list[DeviceProof]:
        raise ChallengeExpiredError(f"challenge {params.challenge_id} passed its deadline")

    async def close(self) -> None:
        pass


def make_agent(tmp_path: Path, runtime: ComputeRuntime | None = None) -> ProviderAgent:
    return ProviderAgent(
        Config(home=tmp_path), NodeIdentity.generate(), GPUS, runtime or ThreadRuntime(), ["127.0.0.1:7470"]
    )


def challenge(cid: str = "c1", **kw: Any) -> pb.Challenge:
    base: dict[str, object] = {
        "challenge_id": cid,
        "seed": SEED,
        "n": 8,
        "dtype": pb.DTYPE_FP32,
        "count": 2,
        "timeout_ms": 30_000,
        "device_indices": [0, 1],
    }
    return pb.Challenge(**{**base, **kw})


def test_an_agent_needs_a_queen(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no queen to connect to"):
        ProviderAgent(Config(home=tmp_path), NodeIdentity.generate(), GPUS, ThreadRuntime(), [])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"n": 0}, "n must be 1 to 16384, got 0"),
        ({"seed": b"short"}, "seed must be 16 to 64 bytes, got 5"),
        ({"dtype": pb.DTYPE_UNSPECIFIED}, "challenge dtype 0 is not supported"),
        ({"device_indices": [0, 5]}, "challenge names devices [5] this provider does not have"),
    ],
)
async def test_invalid_challenge_is_answered_with_a_challenge_error(
    tmp_path: Path, changes: dict[str, Any], reason: str
) -> None:
    agent, out = make_agent(tmp_path), Outbox()
    await agent._on_challenge(challenge(**changes), out)
    [err] = out.bodies("challenge_error")
    assert err.challenge_id == "c1"
    assert reason in err.reason
    assert len(out.sent) == 1
    assert agent.status.challenges == 1
    assert agent._proofs == {}


async def test_expired_challenge_is_answered_with_a_challenge_error(tmp_path: Path) -> None:
    agent, out = make_agent(tmp_path, ExpiringRuntime()), Outbox()
    await agent._on_challenge(challenge(), out)
    [err] = out.bodies("challenge_error")
    assert err.reason == "challenge c1 passed its deadline"


async def test_valid_challenge_gets_a_commitment_with_the_true_roots(tmp_path: Path) -> None:
    agent, out = make_agent(tmp_path), Outbox()
    await agent._on_challenge(challenge(), out)
    [commit] = out.bodies("commitment")
    assert commit.challenge_id == "c1"
    params = ChallengeParams("c1", SEED, 8, 2)
    devices = commit.devices
    assert [d.device_index for d in devices] == [0, 1]
    for d in devices:
        assert d.root == prove_device(params, d.device_index).root
        assert d.work_seconds > 0
        assert d.peak_memory_bytes > 0
    assert list(agent._proofs) == ["c1"]


async def test_opening_request_gets_openings_that_verify(tmp_path: Path) -> None:
    agent, out = make_agent(tmp_path), Outbox()
    await agent._on_challenge(challenge(), out)
    [commit] = out.bodies("commitment")
    roots = {d.device_index: d.root for d in commit.devices}
    wanted = {0: [0, 7, 15], 1: [3, 4]}
    req = pb.OpeningRequest(
        challenge_id="c1",
        timeout_ms=5000,
        rows=[pb.RowRef(device_index=dev, row=r) for dev, rows in wanted.items() for r in rows],
    )
    await agent._on_openings(req, out)
    [msg] = out.bodies("openings")
    assert msg.challenge_id == "c1"
    openings = convert.openings_from_proto(msg)
    params = ChallengeParams("c1", SEED, 8, 2)
    for dev, rows in wanted.items():
        mine = [o for o in openings if o.device_index == dev]
        assert [o.row for o in mine] == rows
        assert verify_openings(params, dev, roots[dev], mine, rows).ok
    # The proof is dropped once opened: a repeated request gets no answer.
    assert agent._proofs == {}
    await agent._on_openings(req, out)
    assert len(out.bodies("openings")) == 1


async def test_opening_request_for_an_unknown_challenge_is_ignored(tmp_path: Path) -> None:
    agent, out = make_agent(tmp_path), Outbox()
    await agent._on_openings(
        pb.OpeningRequest(challenge_id="nope", rows=[pb.RowRef(device_index=0, row=0)]), out
    )
    assert out.sent == []


async def test_only_the_latest_proofs_are_kept(tmp_path: Path) -> None:
    agent, out = make_agent(tmp_path), Outbox()
    ids = [f"c{i}" for i in range(KEEP_PROOFS + 2)]
    for cid in ids:
        await agent._on_challenge(challenge(cid, n=4, count=1, device_indices=[0]), out)
    assert list(agent._proofs) == ids[-KEEP_PROOFS:]


def test_open_skips_unknown_devices_and_out_of_range_rows() -> None:
    params = ChallengeParams("c", SEED, 8, 2)
    proof = prove_device(params, 0)
    entry = _Proof(params, {0: replace(proof, tree=None)})  # as if it came back from a Ray worker
    out = ProviderAgent._open(entry, [(0, 3), (0, 16), (0, -1), (1, 0), (0, 1)])
    assert [(o.device_index, o.row) for o in out] == [(0, 3), (0, 1)]
    assert verify_openings(params, 0, proof.root, out, [3, 1]).ok
    assert entry.trees[0].root == proof.root  # built once, kept for the next request
    again = ProviderAgent._open(entry, [(0, 2)])
    assert verify_openings(params, 0, proof.root, again, [2]).ok


def test_challenge_results_are_counted(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    for verdict in (pb.VERDICT_PASSED, pb.VERDICT_PASSED, pb.VERDICT_FAILED, 42):
        msg = pb.QueenMessage(challenge_result=pb.ChallengeResult(challenge_id="c", verdict=verdict))  # type: ignore[arg-type]
        agent._handle(msg, Outbox())
    assert agent.status.results == {Verdict.PASSED.value: 2, Verdict.FAILED.value: 1, "42": 1}
