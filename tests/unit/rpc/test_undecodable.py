"""Random bytes sent to every method of the queen's and the king's servers (real servicers on a real grpc.aio
server, port 0) are answered INVALID_ARGUMENT, never UNKNOWN or a text naming a protobuf exception.

The provider agent serves no gRPC method (it is a client of its queens), so it has none to test here.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from blendr.clock import ManualClock
from blendr.config import Config
from blendr.rpc.server import ServerHandle, start_server
from blendr.store import MemoryStore
from king.control import KingControlServicer
from king.gateway import RenterGatewayServicer
from king.queens import QueenHub
from protos.blendr.v1 import king_pb2, queen_pb2, renter_pb2
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc
from queen.app import QueenApp, start_queen

# Bytes protobuf cannot decode whatever the message: a field tag with wire type 7, which does not exist.
UNDECODABLE = [b"\x0f", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x0a\x05ab"]


def methods(*files: Any) -> list[tuple[str, bool, bool]]:
    """(path, client streaming, server streaming) of every method of every service in the proto modules."""
    out = []
    for f in files:
        for service in f.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                out.append((f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming))
    return out


async def send_raw(channel: grpc.aio.Channel, path: str, client_streaming: bool, server_streaming: bool,
                   raw: bytes) -> grpc.aio.AioRpcError:
    kind = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, False): channel.stream_unary, (True, True): channel.stream_stream}[client_streaming, server_streaming]
    call = kind(path, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        c = call(iter([raw]) if client_streaming else raw, timeout=10)
        if server_streaming:
            async for _ in c:
                pass
        else:
            await c
    return info.value


def assert_invalid(err: grpc.aio.AioRpcError, path: str) -> None:
    details = err.details() or ""
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, (path, err.code(), details)
    assert details.startswith("the request could not be decoded as blendr.v1.") or "grpc.health" in details, details
    assert "DecodeError" not in details and "Error" not in details, details


def garbage(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [*UNDECODABLE, *(b"\x0f" + rng.randbytes(rng.randrange(0, 64)) for _ in range(3))]


@pytest.fixture
async def queen(make_config: Callable[..., Config]) -> AsyncIterator[QueenApp]:
    cfg = make_config("queen", rpc__tls=False, queen__listen="127.0.0.1:0", queen__admin_listen="127.0.0.1:0",
                      queen__admission="open", metrics__port=-1)
    app = await start_queen(cfg, store=MemoryStore(), clock=ManualClock(), run_ticker=False)
    yield app
    await app.stop()


async def test_every_queen_method_refuses_undecodable_bytes(queen: QueenApp) -> None:
    paths = methods(queen_pb2)
    assert {p for p, *_ in paths} >= {"/blendr.v1.QueenService/Connect", "/blendr.v1.QueenService/UploadOutput",
                                      "/blendr.v1.QueenAdmin/ListProviders"}
    health = ("/grpc.health.v1.Health/Check", False, False)
    for port, served in ((queen.port, "QueenService"), (queen.admin_port, "QueenAdmin")):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for path, cs, ss in [*(m for m in paths if f".{served}/" in m[0]), health]:
                for i, raw in enumerate(garbage(port)):
                    assert_invalid(await send_raw(channel, path, cs, ss, raw), f"{path} #{i}")


async def test_undecodable_bytes_mid_stream_end_it_invalid_and_abandon_the_challenge(queen: QueenApp) -> None:
    from blendr.identity import NodeIdentity
    from tests.integration.scripted import cpu_hello

    ident = NodeIdentity.generate()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{queen.port}") as channel:
        call = channel.stream_stream("/blendr.v1.QueenService/Connect", request_serializer=None,
                                     response_deserializer=queen_pb2.QueenMessage.FromString)
        c = call(timeout=20)
        await c.write(cpu_hello(ident).SerializeToString())
        nonce = (await c.read()).admission_challenge.nonce
        sig = ident.sign_admission(queen.core.address, bytes(nonce))
        await c.write(queen_pb2.ProviderMessage(admission_response=queen_pb2.AdmissionResponse(signature=sig))
                      .SerializeToString())
        assert (await c.read()).WhichOneof("body") == "admitted"
        queen.core.tick()  # the challenge at admission
        assert (await c.read()).WhichOneof("body") == "challenge"
        await c.write(os.urandom(3) + b"\x0f")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            while (await c.read()) is not grpc.aio.EOF:
                pass
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (info.value.details() or "").startswith("the request could not be decoded as blendr.v1.ProviderMessage")
    rec = queen.core.pool.get(ident.address)
    assert rec is not None and (rec.issued, rec.abandoned) == (1, 1) and queen.core.open_challenges() == {}


@pytest.fixture
async def king(make_config: Callable[..., Config]) -> AsyncIterator[ServerHandle]:
    """The king's two services with their real servicers. Undecodable unary requests are refused before a
    servicer runs, so their collaborators are not needed; the streaming ones get what reads the stream."""
    clock = ManualClock()
    hub = QueenHub("0x" + "11" * 20, clock, stake_check=lambda _q: (True, "staked"))
    control = KingControlServicer(None, None, hub, object(), object())  # type: ignore[arg-type]
    gateway = RenterGatewayServicer(None, None)  # type: ignore[arg-type]
    cfg = make_config("king", rpc__tls=False)
    server = await start_server(cfg, "127.0.0.1:0", [
        lambda s: kpb_grpc.add_KingControlServicer_to_server(control, s),
        lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(gateway, s)],
        service_names=("blendr.v1.KingControl", "blendr.v1.RenterGateway"))
    yield server
    await server.stop(0)


async def test_every_king_method_refuses_undecodable_bytes(king: ServerHandle) -> None:
    paths = methods(king_pb2, renter_pb2)
    assert len(paths) >= 15
    async with grpc.aio.insecure_channel(f"127.0.0.1:{king.port}") as channel:
        for path, cs, ss in paths:
            for i, raw in enumerate(garbage(len(path))):
                assert_invalid(await send_raw(channel, path, cs, ss, raw), f"{path} #{i}")
