"""A provider driven message by message over a raw gRPC stream, to test how a queen treats misbehaviour."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from blendr.config import Config
from blendr.identity import NodeIdentity
from blendr.rpc.server import open_channel
from protos.blendr.v1 import queen_pb2 as pb
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc


def cpu_hello(ident: NodeIdentity, *, model: str = "cpu", kind: int = pb.DEVICE_KIND_CPU,
              memory: int = 8 << 30, devices: int = 1) -> pb.ProviderMessage:
    return pb.ProviderMessage(hello=pb.Hello(
        address=ident.address,
        devices=[pb.Device(index=i, kind=kind, name="test device", model=model, memory_bytes=memory)
                 for i in range(devices)],
        software_version="scripted/0"))


class ScriptedProvider:
    """Open a stream, then send and receive exactly what a test says."""

    def __init__(self, cfg: Config, target: str, ident: NodeIdentity | None = None) -> None:
        self.cfg = cfg
        self.target = target
        self.ident = ident or NodeIdentity.generate()
        self.channel: grpc.aio.Channel | None = None
        self.call: Any = None

    async def __aenter__(self) -> ScriptedProvider:
        self.channel = open_channel(self.cfg, self.target)
        self.call = pb_grpc.QueenServiceStub(self.channel).Connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.call is not None:
            self.call.cancel()
        if self.channel is not None:
            await self.channel.close()

    async def send(self, msg: pb.ProviderMessage) -> None:
        await self.call.write(msg)

    async def read(self, timeout: float = 10.0) -> Any:
        return await asyncio.wait_for(self.call.read(), timeout)

    async def read_kind(self, kind: str, timeout: float = 20.0) -> Any:
        """Read until a message of ``kind`` arrives (returns its body)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            msg = await self.read(max(0.01, left))
            if msg is grpc.aio.EOF:
                raise AssertionError(f"stream ended before {kind}: {await self.call.code()} {await self.call.details()}")
            if msg.WhichOneof("body") == kind:
                return getattr(msg, kind)

    async def status(self, timeout: float = 10.0) -> tuple[grpc.StatusCode, str]:
        """Drain the stream and return its final status."""
        try:
            while True:
                msg = await self.read(timeout)
                if msg is grpc.aio.EOF:
                    break
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        return await self.call.code(), await self.call.details()

    async def join(self, hello: pb.ProviderMessage | None = None) -> pb.Admitted:
        """Hello, sign the nonce, and return the Admitted message."""
        await self.send(hello or cpu_hello(self.ident))
        ch = await self.read_kind("admission_challenge")
        sig = self.ident.sign_admission(ch.queen_address, bytes(ch.nonce))
        await self.send(pb.ProviderMessage(admission_response=pb.AdmissionResponse(signature=sig)))
        admitted: pb.Admitted = await self.read_kind("admitted")
        return admitted

    async def heartbeat(self, seq: int = 1) -> None:
        await self.send(pb.ProviderMessage(heartbeat=pb.Heartbeat(seq=seq)))
