"""``KingControl``: what queens call on the king (attestations) and the settlements it follows.

The servicer converts and dispatches; errors are raised as BlendrErrors and become gRPC status in the one
interceptor every server has (:mod:`blendr.rpc.interceptor`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from blendr.chain.relay import message_from_proto, message_to_proto
from blendr.errors import BlendrError, FailedPreconditionError, InvalidArgumentError
from blendr.outputs import drain_upload, verify_upload
from blendr.telemetry import get_logger
from king.bridge import DELIVERED, DELIVERING, GATHERING, AttestationBook
from king.outputs import OutputDesk
from king.queens import QueenHub, QueenListener
from king.settlements import SettlementBook
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from protos.blendr.v1 import outputs_pb2 as opb

log = get_logger("blendr.king.rpc")

STATE_TO_PB = {GATHERING: kpb.DELIVERY_STATE_GATHERING, DELIVERING: kpb.DELIVERY_STATE_DELIVERING,
               DELIVERED: kpb.DELIVERY_STATE_DELIVERED}
RENTAL_TO_PB = {"active": kpb.RENTAL_STATE_ACTIVE, "cancelled": kpb.RENTAL_STATE_CANCELLED,
                "settled": kpb.RENTAL_STATE_SETTLED, "expired": kpb.RENTAL_STATE_EXPIRED}


class KingControlServicer(kpb_grpc.KingControlServicer):
    def __init__(self, book: AttestationBook, settlements: SettlementBook, hub: QueenHub | None = None,
                 listener: QueenListener | None = None, outputs: OutputDesk | None = None) -> None:
        self.book = book
        self.settlements = settlements
        self.hub = hub
        self.listener = listener  # the king's core: what it does with a queen's snapshots and job events
        self.outputs = outputs  # jobs' outputs (king.outputs), None: this king takes none

    async def QueenSession(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if self.hub is None or self.listener is None:
            raise FailedPreconditionError("this king takes no queen sessions")
        async for msg in self.hub.session(request_iterator, self.listener):
            yield msg

    async def UploadOutput(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        desk = self.outputs
        if desk is None:
            raise FailedPreconditionError("this king takes no job outputs")
        it = request_iterator.__aiter__()
        first = await anext(it, None)
        if first is None or first.WhichOneof("body") != "header":
            raise InvalidArgumentError("an output upload starts with its header")
        h = first.header
        queen = verify_upload(h.signer, h.job_id, h.attempt, h.timestamp, h.error, h.size, bytes(h.signature),
                              now=desk.ctx.clock.time())

        async def chunks() -> Any:
            async for msg in it:
                if msg.WhichOneof("body") != "chunk":
                    raise InvalidArgumentError("after its header an output upload carries only chunks")
                yield bytes(msg.chunk)

        try:
            stored = await desk.receive(queen, h.job_id, h.attempt, h.error, h.size, chunks())
        except BlendrError:
            await drain_upload(it)
            raise
        return opb.OutputReceipt(stored_bytes=stored)

    async def SubmitAttestation(
        self, request: kpb.SubmitAttestationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> kpb.SubmitAttestationResponse:
        if not request.HasField("message"):
            raise InvalidArgumentError("message is required")
        msg = message_from_proto(request.message)
        res = await asyncio.to_thread(self.book.submit, msg, bytes(request.signature))
        return kpb.SubmitAttestationResponse(
            message_hash=res.message_hash, attester=res.attester, attestations=res.attestations,
            threshold=res.threshold, state=STATE_TO_PB[res.state], tx_hash=res.tx_hash)

    async def GetAttestations(
        self, request: kpb.GetAttestationsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> kpb.GetAttestationsResponse:
        from blendr.chain.bridge import BridgeMessage

        if len(request.message_hash) != 32:
            raise InvalidArgumentError("message_hash must be 32 bytes")
        doc, sigs, threshold = await asyncio.to_thread(self.book.get, bytes(request.message_hash))
        return kpb.GetAttestationsResponse(
            message=message_to_proto(BridgeMessage.from_json(doc["message"])),
            attestations=[kpb.Attestation(attester=a, signature=s) for a, s in sorted(sigs.items())],
            threshold=threshold, state=STATE_TO_PB[doc["state"]], tx_hash=doc["tx_hash"],
            last_error=doc["last_error"], attempts=int(doc["attempts"]))

    async def GetSettlement(
        self, request: kpb.GetSettlementRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> kpb.Settlement:
        if len(request.rental_id) != 32:
            raise InvalidArgumentError("rental_id must be 32 bytes")
        d = self.settlements.get(int.from_bytes(request.rental_id, "big"))
        return settlement_to_proto(d)


def settlement_to_proto(d: dict[str, Any]) -> kpb.Settlement:
    return kpb.Settlement(
        rental_id=bytes.fromhex(d["rental_id"]), state=RENTAL_TO_PB.get(d.get("state", ""), kpb.RENTAL_STATE_UNSPECIFIED),
        renter=d.get("renter", ""), provider=d.get("provider", ""), queen=d.get("queen", ""), gpus=d.get("gpus", 0),
        escrow=d.get("escrow", "0"), price_per_gpu_hour=d.get("price_per_gpu_hour", "0"), start=d.get("start", 0),
        duration=d.get("duration", 0), verified_seconds=d.get("verified_seconds", 0), failed=d.get("failed", False),
        provider_payment=d.get("provider_payment", "0"), fee=d.get("fee", "0"), refund=d.get("refund", "0"),
        slashed=d.get("slashed", "0"), created_tx=d.get("created_tx", ""), settled_tx=d.get("settled_tx", ""))
