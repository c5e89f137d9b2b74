"""Bad input through the real gateway: each gets a precise status and a message that says what to fix, and
nothing changes on chain (no block is mined, no balance moves)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import grpc
import pytest

from blendr.chain.anvil import AnvilProcess
from blendr.client import JobRequest, KingClient, NoProviderError, Pins, RenterError
from protos.blendr.v1 import renter_pb2 as rpb
from tests.e2e.net import ACCOUNTS, network
from tests.rayhead import RayHead

pytestmark = [pytest.mark.usefixtures("ray_cluster", "snapshot"), pytest.mark.timeout(600)]


def req(workdir: Path, **kw: Any) -> JobRequest:
    base: dict[str, Any] = {"entrypoint": "python job.py 1", "gpus": 1, "gpu_model": "cpu", "hours": 60 / 3600,
                            "max_price": "3", "workdir": workdir}
    base.update(kw)
    return JobRequest(**base)


async def expect(code: grpc.StatusCode, match: str, coro: Any) -> None:
    with pytest.raises(RenterError) as err:
        await coro
    assert err.value.code == code, (err.value.code, str(err.value))
    assert match in str(err.value), str(err.value)


async def raw(king: Any, method: str, request: Any, token: str) -> None:
    await getattr(king._stub, method)(request, metadata=(("authorization", f"Bearer {token}"),), timeout=10)


async def test_bad_inputs_get_clear_errors_and_change_nothing_on_chain(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, jobs_ray: RayHead, tmp_path: Path,
        workdir: Path) -> None:
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path, providers=(("provider1", "queen1"),)) as net:
        assert net.king is not None
        net.king.jobs.cfg = dataclasses.replace(net.king.jobs.cfg, max_payload_bytes=64 * 1024)
        renter = ACCOUNTS["renter"].address
        w3 = net.rental().client.w3
        block, balance = w3.eth.block_number, net.balance(renter)
        async with net.renter() as king:
            good = await king.prepare(req(workdir))

            # the gateway's own checks (a client that skips the SDK's)
            bad = rpb.SubmitJobRequest()
            bad.CopyFrom(good)
            bad.spec.gpus = 0
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "gpus must be at least 1", king.send(bad))
            bad.CopyFrom(good)
            bad.spec.duration_s = 0
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "duration", king.send(bad))
            bad.CopyFrom(good)
            bad.spec.gpu_model = "h900"
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "unknown GPU model 'h900'", king.send(bad))
            bad.CopyFrom(good)
            bad.spec.gpus = 2  # the signed intents and spec hash say 1
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "spec_hash does not match", king.send(bad))
            bad.CopyFrom(good)
            forged_sig = bytearray(good.intents[0].signature)
            forged_sig[10] ^= 0xFF  # r changes: the signature recovers to someone else, or to no one
            bad.intents[0].signature = bytes(forged_sig)
            bad.request_id = good.request_id + "x"
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "is not signed by the renter", king.send(bad))

            # the SDK's checks, before anything is signed
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "gpus must be at least 1", king.submit(req(workdir, gpus=0)))
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "hours must be positive",
                         king.submit(req(workdir, hours=-1)))
            await expect(grpc.StatusCode.INVALID_ARGUMENT, "unknown GPU model",
                         king.submit(req(workdir, gpu_model="h900")))
            # max price below the quote: no candidate, with the reason and the closest offers
            with pytest.raises(NoProviderError) as nop:
                await king.submit(req(workdir, max_price="0.0001"))
            assert "under 0.0001/h" in str(nop.value) and "cheapest is 0.5/h" in str(nop.value)
            assert nop.value.closest and nop.value.closest[0].gpu_model == "cpu"

            # a workdir over the king's size limit
            big = tmp_path / "big"
            big.mkdir()
            (big / "blob.bin").write_bytes(os.urandom(200 * 1024))
            await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, "over the 64.0 KiB limit",
                         king.send(await king.prepare(req(big, request_id="r-big-workdir-0001"))))
            with pytest.raises(RenterError, match="over the"):  # and the SDK's own limit
                await king.prepare(req(big), max_payload_bytes=100 * 1024)

            # sessions: forged, expired, missing
            token = await king.sign_in()
            forged = token.replace(renter, ACCOUNTS["provider2"].address)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await raw(king, "GetJob", rpb.GetJobRequest(job_id="j-x"), forged)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "invalid session token" in e.value.details()
            expired = net.king.sessions._token(renter, 1_000)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await raw(king, "GetJob", rpb.GetJobRequest(job_id="j-x"), expired)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "session expired" in e.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await king._stub.GetJob(rpb.GetJobRequest(job_id="j-x"), timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "sign in first" in e.value.details()
            await expect(grpc.StatusCode.NOT_FOUND, "no job j-nope", king.get("j-nope"))

            assert w3.eth.block_number == block and net.balance(renter) == balance  # nothing happened on chain

            # idempotent submit, and a replayed intent under another request id
            job = await king.send(good)
            again = await king.send(good)
            assert again.job_id == job.job_id
            replay = rpb.SubmitJobRequest()
            replay.CopyFrom(good)
            replay.request_id = "r-another-request-id-01"
            await expect(grpc.StatusCode.FAILED_PRECONDITION, "already used (replayed)", king.send(replay))
            changed = rpb.SubmitJobRequest()
            changed.CopyFrom(good)
            changed.name = "other"
            changed.spec.max_price_per_gpu_hour = str(int(good.spec.max_price_per_gpu_hour) - 1)
            await expect(grpc.StatusCode.ALREADY_EXISTS, "was used for another job", king.send(changed))
            await king.cancel(job.job_id)

        # pinned chain and contracts: a king that names others is refused before anything is signed
        target, ca = f"127.0.0.1:{net.king.port}", tmp_path / "king" / "tls" / "ca.crt"
        m = net.manifest
        right = Pins(king=net.king.address, chain_id=31337, rental_contract=m.eth.address("GPURental"),
                     token_contract=m.eth.address("GPUToken"))
        async with KingClient(target, ACCOUNTS["renter"], ca_file=ca, pins=right) as k:
            assert (await k.prepare(req(workdir))).intents
        for pins, match in ((Pins(rental_contract="0x" + "12" * 20), "names GPURental"),
                            (Pins(chain_id=1), "not a sign-in to this king"),  # the challenge names chain 31337
                            (Pins(king=ACCOUNTS["provider3"].address), "not a sign-in to this king")):
            async with KingClient(target, ACCOUNTS["renter"], ca_file=ca, pins=pins) as k:
                with pytest.raises(RenterError, match=match) as err:
                    await k.prepare(req(workdir))
                assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
