"""The provider's OutputShipper: each ended attempt answered once (outputs or why not), bounded, retried while
the queen is away, and nothing of the outputs left behind."""

from __future__ import annotations

import io
from pathlib import Path

from blendr.errors import FailedPreconditionError, PermissionDeniedError, UnavailableError
from blendr.outputs import output_aad, unpack_outputs
from blendr.payload import JobPayload, public_key_of
from protos.blendr.v1 import queen_pb2 as pb
from provider.outputs import NO_KEY, OutputShipper, output_dir_of

KEY = bytes.fromhex("33" * 32)
AAD = "req-0123456789abcdef"


class Queen:
    """Takes uploads; fails the first ``fail`` ones with ``error``."""

    def __init__(self, fail: int = 0, error: type[Exception] = UnavailableError) -> None:
        self.fail, self.error = fail, error
        self.got: list[tuple[str, int, str, bytes | None]] = []
        self.calls = 0

    async def upload(self, job_id: str, attempt: int, error: str, spool: Path | None) -> int:
        self.calls += 1
        if self.calls <= self.fail:
            raise self.error("not now")
        data = spool.read_bytes() if spool is not None else None
        self.got.append((job_id, attempt, error, data))
        return len(data or b"")


def job_outputs(home: Path, run_id: str, files: dict[str, bytes]) -> Path:
    d = output_dir_of(home, run_id)
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


async def test_outputs_are_sealed_to_the_renter_uploaded_and_removed(tmp_path: Path) -> None:
    queen = Queen(fail=2)  # the queen is away twice (or has not relayed the job's end yet)
    ship = OutputShipper(tmp_path, queen.upload, retry_s=0.01)
    d = job_outputs(tmp_path, "j-1.1", {"img.png": b"\x89PNG" * 1000})
    await ship.send("j-1", 1, "j-1.1", public_key_of(KEY), 0)
    assert queen.calls == 3 and len(queen.got) == 1
    job_id, attempt, error, data = queen.got[0]
    assert (job_id, attempt, error) == ("j-1", 1, "") and data is not None
    assert unpack_outputs(io.BytesIO(data), KEY, output_aad("j-1", 1), tmp_path / "renter") == 1
    assert (tmp_path / "renter" / "img.png").read_bytes() == b"\x89PNG" * 1000
    assert not d.exists() and not list((tmp_path / "outputs").iterdir())


async def test_too_large_or_keyless_outputs_are_answered_with_why(tmp_path: Path) -> None:
    queen = Queen()
    ship = OutputShipper(tmp_path, queen.upload, retry_s=0.01)
    job_outputs(tmp_path, "j-2.1", {"big": b"x" * 5000})
    await ship.send("j-2", 1, "j-2.1", public_key_of(KEY), 4000)
    job_outputs(tmp_path, "j-3.1", {"f": b"x"})
    await ship.send("j-3", 1, "j-3.1", b"", 0)
    assert [(g[0], g[3]) for g in queen.got] == [("j-2", None), ("j-3", None)]
    assert "limit" in queen.got[0][2] and queen.got[1][2] == NO_KEY
    assert not list((tmp_path / "outputs").iterdir())


async def test_a_refusal_is_not_retried_and_a_missing_dir_is_no_outputs(tmp_path: Path) -> None:
    refused = Queen(fail=99, error=PermissionDeniedError)
    await OutputShipper(tmp_path, refused.upload, retry_s=0.01).send("j-4", 1, "j-4.1", public_key_of(KEY), 0)
    assert refused.calls == 1
    late = Queen(fail=1, error=FailedPreconditionError)
    await OutputShipper(tmp_path, late.upload, retry_s=0.01).send("j-5", 1, "j-5.1", public_key_of(KEY), 0)
    assert late.calls == 2 and late.got[0][2] == "" and late.got[0][3]


async def test_the_job_host_ships_each_ended_attempt_once_with_the_renters_key_after_its_end(tmp_path: Path) -> None:
    from provider import convert
    from provider.jobtypes import UpdateKind
    from tests.fakes.jobhost import FakeExecutor
    from tests.unit.provider.test_provider_jobs_agent import KEY as NODE_KEY
    from tests.unit.provider.test_provider_jobs_agent import PAYLOAD, Sink, encrypt, make_host, started, until

    renter_key = bytes.fromhex("44" * 32)
    payload = JobPayload(PAYLOAD.entrypoint, PAYLOAD.env, output_key=public_key_of(renter_key))
    ciphertext, sealed_key = encrypt(payload, public_key_of(NODE_KEY))
    start = pb.JobStart(job_id="j-9", attempt=2, gpus=1, deadline_unix=2e9, ciphertext=ciphertext,
                        sealed_key=sealed_key, aad=AAD, max_output_bytes=12345)
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    shipped: list[tuple[str, int, str, bytes, int]] = []

    class Recorder(OutputShipper):
        def ship(self, job_id: str, attempt: int, run_id: str, output_key: bytes, max_bytes: int) -> None:
            # the end was published before the outputs are sent: settlement never waits on them
            assert out.of("j-9", 2) and host.state("j-9", 2) is not None and host.state("j-9", 2).value == "succeeded"
            shipped.append((job_id, attempt, run_id, output_key, max_bytes))

    host.outputs = Recorder(tmp_path, Queen().upload)
    host.attach(out)
    host.handle_start(convert.assignment_from_proto(start))
    await started(ex, "j-9.2")
    ex.cluster.succeed("j-9.2")
    await until(lambda: shipped, "the outputs shipped")
    assert shipped == [("j-9", 2, "j-9.2", public_key_of(renter_key), 12345)]
    assert [u.kind for u in out.of("j-9", 2)][-1] == UpdateKind.SUCCEEDED
