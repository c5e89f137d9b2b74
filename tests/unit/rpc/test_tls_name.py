"""open_channel(tls_name=…): kings dial each other at pod addresses and check the name their shared certificate
carries (king.peer_tls_name), against a real TLS grpc.aio server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from blendr.config import Config
from blendr.rpc.server import open_channel, start_server


async def check(cfg: Config, target: str, tls_name: str) -> int:
    async with open_channel(cfg, target, tls_name=tls_name) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        status: int = response.status
        return status


async def test_the_certificates_name_is_checked_not_the_address(tmp_path: Path) -> None:
    cfg = Config(home=tmp_path)
    cfg.rpc.hostnames = ["bc-king.blendr.svc"]  # the certificate names the Service, and 127.0.0.1/localhost
    handle = await start_server(cfg, "127.0.0.1:0", [], service_names=[])
    try:
        target = f"127.0.0.1:{handle.port}"
        assert await check(cfg, target, "") == health_pb2.HealthCheckResponse.SERVING
        assert await check(cfg, target, "bc-king.blendr.svc") == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await check(cfg, target, "evil.example.com")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await handle.stop(0)
