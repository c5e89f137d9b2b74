"""What a provider's stream ends with when its challenges go wrong: a real queen (grpc.aio on port 0, manual
clock and ticks) and a provider scripted message by message."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from blendr.clock import ManualClock
from blendr.config import Config
from blendr.store import MemoryStore
from protos.blendr.v1 import queen_pb2 as pb
from queen.app import QueenApp, start_queen
from tests.integration.scripted import ScriptedProvider


@pytest.fixture
async def queen_stopper(make_config: Callable[..., Config]) -> AsyncIterator[Callable[..., Any]]:
    """Starts a queen (plaintext, manual clock, no ticker) and a provider config; stops the queens after."""
    apps: list[QueenApp] = []

    async def make(**overrides: Any) -> tuple[QueenApp, Config]:
        cfg = make_config("queen", rpc__tls=False, queen__listen="127.0.0.1:0", queen__admin_listen="127.0.0.1:0",
                          queen__admission="open", queen__challenge_n_cpu=16, queen__challenge_max_count=2,
                          metrics__port=-1, **overrides)
        app = await start_queen(cfg, store=MemoryStore(), clock=ManualClock(), run_ticker=False)
        apps.append(app)
        return app, make_config("provider", rpc__tls=False)

    yield make
    for app in apps:
        await app.stop()


async def challenged(app: QueenApp, sp: ScriptedProvider) -> Any:
    app.core.challenger.schedule(sp.ident.address, immediate=True)
    app.core.tick()
    return await sp.read_kind("challenge")


async def test_infinite_work_seconds_is_invalid_argument_and_a_recorded_failure(
        queen_stopper: Callable[..., Any]) -> None:
    app, cfg = await queen_stopper()
    async with ScriptedProvider(cfg, f"127.0.0.1:{app.port}") as sp:
        await sp.join()
        ch = await challenged(app, sp)
        await sp.send(pb.ProviderMessage(commitment=pb.Commitment(challenge_id=ch.challenge_id, devices=[
            pb.DeviceCommitment(device_index=0, root=b"\x00" * 32, work_seconds=float("inf"), peak_memory_bytes=1)])))
        code, details = await sp.status()
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "work_seconds must be a finite number" in details
    assert "challenges/" not in details and sp.ident.address not in details
    rec = app.core.pool.get(sp.ident.address)
    assert rec is not None and (rec.issued, rec.failed, rec.uptime) == (1, 1, 0.0)
    assert app.core.open_challenges() == {}


async def test_a_bug_in_the_queen_is_internal_with_an_error_id_and_abandons_the_challenge(
        queen_stopper: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    app, cfg = await queen_stopper()

    def bug(*_: Any) -> None:
        raise RuntimeError("SECRET store key providers/0xabc")

    async with ScriptedProvider(cfg, f"127.0.0.1:{app.port}") as sp:
        await sp.join()
        ch = await challenged(app, sp)
        monkeypatch.setattr(app.core.challenger, "on_commitment", bug)
        await sp.send(pb.ProviderMessage(commitment=pb.Commitment(challenge_id=ch.challenge_id, devices=[
            pb.DeviceCommitment(device_index=0, root=b"\x00" * 32, work_seconds=0.01)])))
        code, details = await sp.status()
    assert code is grpc.StatusCode.INTERNAL
    assert re.fullmatch(r"internal error [0-9a-f]{12}; the server logged it", details), details
    rec = app.core.pool.get(sp.ident.address)
    assert rec is not None and (rec.issued, rec.abandoned) == (1, 1)


async def test_a_provider_that_keeps_failing_is_cut_off_and_refused(queen_stopper: Callable[..., Any]) -> None:
    app, cfg = await queen_stopper(queen__quarantine_failures=2, queen__quarantine_window=3)
    target = f"127.0.0.1:{app.port}"
    async with ScriptedProvider(cfg, target) as sp:
        await sp.join()
        for _ in range(2):
            ch = await challenged(app, sp)
            await sp.send(pb.ProviderMessage(challenge_error=pb.ChallengeError(challenge_id=ch.challenge_id,
                                                                              reason="no device")))
            await sp.read_kind("challenge_result")
        code, details = await sp.status()
    assert code is grpc.StatusCode.PERMISSION_DENIED and details.startswith("quarantined until "), details
    async with ScriptedProvider(cfg, target, sp.ident) as again:
        await again.send(pb.ProviderMessage(hello=pb.Hello(address=sp.ident.address, devices=[
            pb.Device(index=0, kind=pb.DEVICE_KIND_CPU, name="cpu", model="cpu", memory_bytes=8 << 30)])))
        nonce = await again.read_kind("admission_challenge")
        await again.send(pb.ProviderMessage(admission_response=pb.AdmissionResponse(
            signature=sp.ident.sign_admission(nonce.queen_address, bytes(nonce.nonce)))))
        code, details = await again.status()
    assert code is grpc.StatusCode.PERMISSION_DENIED and "is quarantined until" in details


async def test_leaving_mid_challenge_and_coming_back_does_not_dodge_it(queen_stopper: Callable[..., Any]) -> None:
    from tests.integration.helpers import wait_for

    app, cfg = await queen_stopper()
    target = f"127.0.0.1:{app.port}"
    async with ScriptedProvider(cfg, target) as sp:
        await sp.join()
        await challenged(app, sp)
    # The stream is gone; the provider comes back at once with the same key.
    async with ScriptedProvider(cfg, target, sp.ident) as again:
        assert (await again.join()).resumed
        rec = await wait_for(lambda: (r := app.core.pool.get(sp.ident.address)) and r.abandoned == 1 and r, 10,
                             "the abandoned verdict")
        assert (rec.issued, rec.passed, rec.uptime) == (1, 0, 0.0)
        assert rec.last_challenge is not None and rec.last_challenge["verdict"] == "abandoned"
