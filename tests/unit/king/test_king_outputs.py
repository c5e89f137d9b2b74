"""Jobs' outputs on the king: the disk store's limits and retention, and the whole way from the provider's
upload through a real queen relay and the king's gRPC servers to the renter's ``get_output`` (see
tests/fakes/output_chain.py for what is real), with the exact status codes of every refusal."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from eth_account import Account

from blendr.client import KingClient, RenterError
from blendr.config import Config
from blendr.errors import BlendrError, NotFoundError, ResourceExhaustedError
from blendr.outputs import OutputsTooLargeError
from blendr.payload import public_key_of
from king.outputs import OutputStore
from tests.fakes.output_chain import OutputChain, start_output_chain
from tests.fakes.queens import FakeClock

# --- the store ------------------------------------------------------------------------------------------


def store(tmp_path: Path, clock: FakeClock, **kw: float) -> OutputStore:
    args: dict[str, float] = {"max_job_bytes": 1000, "max_total_bytes": 2500, "retention_s": 60.0, **kw}
    return OutputStore(tmp_path / "outputs", clock, max_job_bytes=int(args["max_job_bytes"]),
                       max_total_bytes=int(args["max_total_bytes"]), retention_s=args["retention_s"])


def put(s: OutputStore, job_id: str, data: bytes, attempt: int = 1) -> None:
    inc = s.begin(job_id, attempt)
    for i in range(0, len(data), 300):
        inc.write(data[i:i + 300])
    inc.commit()


def test_the_store_keeps_outputs_until_their_retention_and_then_removes_them(tmp_path: Path) -> None:
    clock = FakeClock()
    s = store(tmp_path, clock)
    put(s, "j-a", b"a" * 700)
    assert b"".join(s.read("j-a")) == b"a" * 700 and s.used == 700
    clock.advance(59)
    assert s.expire() == []
    clock.advance(2)
    assert s.expire() == ["j-a"] and s.used == 0
    with pytest.raises(NotFoundError):
        s.read("j-a")
    assert not any((tmp_path / "outputs").iterdir())


def test_a_job_over_its_limit_is_refused_while_it_arrives_and_leaves_nothing(tmp_path: Path) -> None:
    s = store(tmp_path, FakeClock())
    inc = s.begin("j-a", 1)
    inc.write(b"x" * 1000)
    with pytest.raises(OutputsTooLargeError, match="per job"):
        inc.write(b"x")
    inc.abort()
    assert s.reserved == 0 and s.get("j-a") is None and not any((tmp_path / "outputs").iterdir())


def test_the_total_cap_counts_stored_outputs_and_uploads_in_flight(tmp_path: Path) -> None:
    s = store(tmp_path, FakeClock())
    put(s, "j-a", b"a" * 1000)
    inflight = s.begin("j-b", 1)
    inflight.write(b"b" * 1000)
    third = s.begin("j-c", 1)
    third.write(b"c" * 500)
    with pytest.raises(OutputsTooLargeError, match="storage is full"):
        third.write(b"c")
    third.abort()
    inflight.commit()
    assert s.used == 2000 and s.reserved == 0


def test_a_new_attempt_replaces_the_jobs_output_and_a_restart_finds_it(tmp_path: Path) -> None:
    clock = FakeClock()
    s = store(tmp_path, clock)
    put(s, "j-a", b"1" * 400, attempt=1)
    put(s, "j-a", b"2" * 300, attempt=2)
    assert s.used == 300
    leftover = s.begin("j-b", 1)  # a crash mid-upload leaves a .part file
    leftover.write(b"z" * 10)
    again = store(tmp_path, clock)
    assert again.get("j-a") is not None and again.get("j-a").attempt == 2  # type: ignore[union-attr]
    assert again.used == 300 and not list((tmp_path / "outputs").glob("*.part"))


def test_limits_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(BlendrError):
        store(tmp_path, FakeClock(), max_job_bytes=0)


# --- the whole way, over gRPC ---------------------------------------------------------------------------


@pytest.fixture
async def net(make_config: Callable[..., Config], tmp_path: Path) -> AsyncIterator[tuple[OutputChain, FakeClock]]:
    clock = FakeClock(time.time())  # the SDK and the upload headers are signed on the wall clock
    cfg = make_config("net", rpc__tls=False)
    chain = await start_output_chain(cfg, clock, tmp_path / "king-outputs", max_job_bytes=4 * 2**20,
                                     retention_s=3600.0, wait_s=120.0)
    try:
        yield chain, clock
    finally:
        await chain.close()


async def last_output_event(king: KingClient, job_id: str) -> str:
    """The job's output event (the watch goes on until settlement: read up to the first output event)."""
    async for ev in king.watch(job_id):
        if ev.kind.startswith("output_"):
            return f"{ev.kind}"
    return ""


def files(tmp_path: Path, name: str) -> Path:
    src = tmp_path / name
    (src / "sub").mkdir(parents=True)
    (src / "result.bin").write_bytes(os.urandom(2 * 2**20 + 17))  # several chunks, not a multiple of one
    (src / "sub" / "log.txt").write_text("done\n")
    (src / "escape").symlink_to("/etc/passwd")  # never followed: a job cannot ship the provider's files
    return src


async def test_a_renter_gets_its_jobs_outputs_back_byte_identical(net: tuple[OutputChain, FakeClock],
                                                                  tmp_path: Path) -> None:
    chain, _ = net
    renter = Account.create()
    (tmp_path / "w").mkdir()
    src = files(tmp_path, "out")
    async with chain.client(renter) as king:
        job_id, attempt = await chain.run_job(king, tmp_path / "w")
        pending = await king.get(job_id)
        assert pending.output_state == "pending"
        with pytest.raises(RenterError) as early:
            await king.get_output(job_id, tmp_path / "early")
        assert early.value.code == grpc.StatusCode.FAILED_PRECONDITION and not (tmp_path / "early").exists()
        stored = await chain.upload(job_id, attempt, src, public_key_of(bytes(renter.key)), tmp_path / "spool")
        job = await king.get(job_id)
        assert job.output_state == "ready" and job.output_bytes == stored
        assert await last_output_event(king, job_id) == "output_ready"
        n = await king.get_output(job_id, tmp_path / "got")
    assert n == 2
    assert (tmp_path / "got" / "result.bin").read_bytes() == (src / "result.bin").read_bytes()
    assert (tmp_path / "got" / "sub" / "log.txt").read_text() == "done\n"
    assert not (tmp_path / "got" / "escape").exists()
    assert not list(tmp_path.glob(".blendr-output-*"))  # the spooled download is gone


async def test_someone_elses_job_and_an_unknown_job_are_not_found(net: tuple[OutputChain, FakeClock],
                                                                 tmp_path: Path) -> None:
    chain, _ = net
    owner, other = Account.create(), Account.create()
    (tmp_path / "w").mkdir()
    async with chain.client(owner) as king:
        job_id, attempt = await chain.run_job(king, tmp_path / "w")
        await chain.upload(job_id, attempt, files(tmp_path, "out"), public_key_of(bytes(owner.key)), tmp_path / "sp")
    async with chain.client(other) as king:
        for jid in (job_id, "j-00000000000000000000", "not-a-job"):
            with pytest.raises(RenterError) as err:
                await king.get_output(jid, tmp_path / "x")
            assert err.value.code == grpc.StatusCode.NOT_FOUND


async def test_outputs_over_the_kings_limit_fail_and_everyone_is_told(net: tuple[OutputChain, FakeClock],
                                                                      tmp_path: Path) -> None:
    chain, _ = net
    renter = Account.create()
    (tmp_path / "w").mkdir()
    src = tmp_path / "big"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(5 * 2**20))  # the chain's king takes 4 MiB per job
    async with chain.client(renter) as king:
        job_id, attempt = await chain.run_job(king, tmp_path / "w")
        with pytest.raises(ResourceExhaustedError, match="over this king's limit"):  # the provider is told
            await chain.upload(job_id, attempt, src, public_key_of(bytes(renter.key)), tmp_path / "sp")
        job = await king.get(job_id)
        assert job.output_state == "failed" and "limit" in job.output_reason
        assert await last_output_event(king, job_id) == "output_failed"
        with pytest.raises(RenterError) as err:
            await king.get_output(job_id, tmp_path / "x")
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and "limit" in str(err.value)
    assert not list((tmp_path / "king-outputs").iterdir())


async def test_uploads_are_refused_from_the_wrong_provider_twice_or_before_the_end(
        net: tuple[OutputChain, FakeClock], tmp_path: Path) -> None:
    from blendr.errors import FailedPreconditionError, PermissionDeniedError
    from blendr.identity import NodeIdentity

    chain, _ = net
    renter = Account.create()
    (tmp_path / "w").mkdir()
    src = files(tmp_path, "out")
    key = public_key_of(bytes(renter.key))
    async with chain.client(renter) as king:
        job_id, attempt = await chain.run_job(king, tmp_path / "w")
    real = chain.provider
    chain.provider = NodeIdentity.from_key(os.urandom(32))  # a provider the job was not assigned to
    with pytest.raises(PermissionDeniedError):
        await chain.upload(job_id, attempt, src, key, tmp_path / "sp")
    chain.provider = real
    await chain.upload(job_id, attempt, src, key, tmp_path / "sp")
    with pytest.raises(FailedPreconditionError):  # delivered once per finished attempt
        await chain.upload(job_id, attempt, src, key, tmp_path / "sp")


async def test_a_provider_without_outputs_to_send_says_why_and_outputs_never_sent_fail_when_due(
        net: tuple[OutputChain, FakeClock], tmp_path: Path) -> None:
    chain, clock = net
    renter = Account.create()
    (tmp_path / "w").mkdir()
    (tmp_path / "w2").mkdir()
    async with chain.client(renter) as king:
        job_id, attempt = await chain.run_job(king, tmp_path / "w", kind="failed")
        await chain.upload(job_id, attempt, tmp_path, b"", tmp_path / "sp", error="the job's payload names no key")
        job = await king.get(job_id)
        assert job.output_state == "failed" and "names no key" in job.output_reason
        silent, _ = await chain.run_job(king, tmp_path / "w2", kind="stopped")
        assert (await king.get(silent)).output_state == "pending"
        clock.advance(121)
        assert chain.core.outputs is not None
        chain.core.outputs.tick()
        job = await king.get(silent)
        assert job.output_state == "failed" and "none arrived" in job.output_reason


async def test_outputs_expire_after_the_retention_period(net: tuple[OutputChain, FakeClock], tmp_path: Path) -> None:
    chain, clock = net
    renter = Account.create()
    (tmp_path / "w").mkdir()
    async with chain.client(renter) as king:
        job_id, attempt = await chain.run_job(king, tmp_path / "w")
        await chain.upload(job_id, attempt, files(tmp_path, "out"), public_key_of(bytes(renter.key)), tmp_path / "s")
        clock.advance(3601)
        assert chain.core.outputs is not None
        chain.core.outputs.tick()
        assert (await king.get(job_id)).output_state == "expired"
        with pytest.raises(RenterError) as err:
            await king.get_output(job_id, tmp_path / "x")
        assert err.value.code == grpc.StatusCode.NOT_FOUND


async def test_a_restarted_king_still_expects_the_outputs_on_their_way(net: tuple[OutputChain, FakeClock],
                                                                       tmp_path: Path) -> None:
    from king.core import KingCore

    chain, clock = net
    renter = Account.create()
    (tmp_path / "w").mkdir()
    async with chain.client(renter) as king:
        job_id, _ = await chain.run_job(king, tmp_path / "w")
    old = chain.core
    again = KingCore(old.store, clock, old.scheduler, old.chain, chain.queens, old.cfg,
                     outputs=OutputStore(chain.store.root, clock, max_job_bytes=2**20, max_total_bytes=2**21,
                                         retention_s=60.0), output_wait_s=120.0)
    again.load()
    job = again.book.get(job_id)
    assert job is not None and job.output == "pending"
    assert again.outputs is not None
    again.outputs.tick()
    assert again.book.get(job_id).output == "pending"  # type: ignore[union-attr]
    clock.advance(121)
    again.outputs.tick()
    assert again.book.get(job_id).output == "failed"  # type: ignore[union-attr]
