"""A provider's readiness on the wire: absent means ready (older agents); a not-ready one always has a reason."""

from __future__ import annotations

from blendr.identity import NodeIdentity
from blendr.rpc import convert
from blendr.types import Hello, Readiness
from protos.blendr.v1 import queen_pb2 as pb


def test_hello_readiness_round_trip_and_defaults() -> None:
    addr = NodeIdentity.generate().address
    h = Hello(address=addr, devices=(), readiness=Readiness(False, "no job API"))
    assert convert.hello_from_proto(convert.hello_to_proto(h), max_devices=4).readiness == Readiness(False, "no job API")
    old = pb.Hello(address=addr)  # an agent from before readiness existed
    assert convert.hello_from_proto(old, max_devices=4).readiness == Readiness()
    silent = convert.readiness_from_proto(pb.Readiness(ready=False))
    assert not silent.ready and silent.reason
    long = convert.readiness_from_proto(pb.Readiness(ready=False, reason="x" * 10_000))
    assert len(long.reason) == convert.MAX_READINESS_REASON
    assert convert.readiness_from_proto(pb.Readiness(ready=True, reason="ignored")) == Readiness()
