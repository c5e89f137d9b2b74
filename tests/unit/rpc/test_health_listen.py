"""rpc.health_listen: a plaintext listener serving only the health service of a node whose gRPC is TLS (Kubernetes'
grpc probes cannot speak TLS), against real grpc.aio servers."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from blendr.config import Config
from blendr.errors import ConfigError
from blendr.rpc.server import start_health_only, start_server
from protos.blendr.v1 import queen_pb2 as pb
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def probe(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10)
        status: int = response.status
        return status


async def test_probe_answers_in_plaintext_what_the_tls_server_reports(tmp_path: Path) -> None:
    cfg = Config(home=tmp_path)  # TLS on: the devnet CA issues the node's certificate
    handle = await start_server(cfg, "127.0.0.1:0", [], service_names=["blendr.v1.QueenService"],
                                health_listen="127.0.0.1:0")
    try:
        assert handle.tls and handle.probe_port is not None and handle.probe_port != handle.port
        assert await probe(handle.probe_port) == SERVING
        assert await probe(handle.probe_port, "blendr.v1.QueenService") == SERVING
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await probe(handle.probe_port, "blendr.v1.NoSuchService")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        # Nothing but health answers on the probe port: the node's services stay behind TLS.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.probe_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.QueenAdminStub(channel).ListProviders(pb.ListProvidersRequest(), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # And the TLS port refuses a plaintext client.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await probe(handle.port)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # Shutting down is seen by the probe at once.
        await handle.health.enter_graceful_shutdown()
        assert await probe(handle.probe_port) == NOT_SERVING
    finally:
        await handle.stop(0)
    with pytest.raises(grpc.aio.AioRpcError):
        await probe(handle.probe_port)


async def test_no_probe_listener_unless_configured(tmp_path: Path) -> None:
    handle = await start_server(Config(home=tmp_path), "127.0.0.1:0", [], service_names=[])
    try:
        assert handle.probe is None and handle.probe_port is None
    finally:
        await handle.stop(0)
    assert await start_health_only(Config(home=tmp_path)) is None


async def test_health_only_for_a_node_without_a_server(tmp_path: Path) -> None:
    cfg = Config(home=tmp_path)
    cfg.rpc.health_listen = "127.0.0.1:0"
    handle = await start_health_only(cfg)
    assert handle is not None and not handle.tls
    try:
        assert await probe(handle.port) == SERVING
    finally:
        await handle.stop(0)


async def test_a_taken_probe_port_is_a_clear_error_and_frees_the_main_port(tmp_path: Path) -> None:
    cfg = Config(home=tmp_path)
    cfg.rpc.health_listen = "127.0.0.1:0"
    taken = await start_health_only(cfg)
    assert taken is not None
    try:
        with pytest.raises(ConfigError, match=r"rpc\.health_listen"):
            await start_server(cfg, "127.0.0.1:0", [], service_names=[],
                               health_listen=f"127.0.0.1:{taken.port}")
    finally:
        await taken.stop(0)
