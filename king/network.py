"""``NetworkView``: the network as the king sees it, for anyone (no sign-in; read-only).

Each method converts the request, calls one :class:`king.netview.NetworkDesk` method and converts the answer;
``GetNetworkInfo`` answers from what every king knows (deployment, config, whether it leads). Errors are
``BlendrError``s (INVALID_ARGUMENT for a bad filter, limit or window) mapped to status codes by the server's one
interceptor (blendr.rpc.server), so no method catches anything. A king that does not lead answers
``GetNetworkInfo`` itself and passes every other call to the leader (king.app ``_start_ha``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import grpc

from blendr.chain.manifest import Manifest
from blendr.config import KingConfig
from blendr.errors import FailedPreconditionError
from king import convert
from king.netview import NetworkDesk, NetworkInfo
from king.rentals import TOKEN_NAME
from protos.blendr.v1 import network_pb2 as npb
from protos.blendr.v1 import network_pb2_grpc as npb_grpc

TOKEN_SYMBOL = "GPUTOKEN"  # GPUToken's ERC-20 symbol (contracts/eth/GPUToken.sol)


def network_info(m: Manifest, king_address: str, kc: KingConfig) -> NetworkInfo:
    """The deployment as the page needs it, ``leader`` False (the servicer fills it in per call).

    Raises:
        ConfigError: the manifest lacks one of the contracts every deployment has.
    """
    return NetworkInfo(
        network=m.network, king_address=king_address, eth_chain_id=m.eth.chain_id, etc_chain_id=m.etc.chain_id,
        token_contract=m.eth.address("GPUToken"), rental_contract=m.eth.address("GPURental"),
        governance_contract=m.eth.address("Governance"), voucher_contract=m.eth.contracts.get("ComputeVoucher", ""),
        work_verification_contract=m.etc.address("WorkVerification"), token_name=TOKEN_NAME, token_symbol=TOKEN_SYMBOL,
        max_payload_bytes=kc.max_payload_bytes, eth_explorer_tx_url=kc.eth_explorer_tx_url,
        etc_explorer_tx_url=kc.etc_explorer_tx_url, leader=False)


class NetworkViewServicer(npb_grpc.NetworkViewServicer):
    """``desk``: the leading king's network view (None on a follower: only GetNetworkInfo is answered)."""

    def __init__(self, info: NetworkInfo, leads: Callable[[], bool], desk: NetworkDesk | None = None) -> None:
        self.info = info
        self.leads = leads
        self.desk = desk

    def _desk(self) -> NetworkDesk:
        if self.desk is None:
            raise FailedPreconditionError("this king does not lead now; ask the leader")
        return self.desk

    async def GetNetworkInfo(self, request: npb.NetworkInfoRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> npb.NetworkInfo:
        return convert.network_info_to_proto(replace(self.info, leader=self.leads()))

    async def ListPools(self, request: npb.ListPoolsRequest,
                        context: grpc.aio.ServicerContext[Any, Any]) -> npb.ListPoolsResponse:
        return npb.ListPoolsResponse(pools=[convert.pool_to_proto(p) for p in self._desk().pool_views()])

    async def ListNetworkProviders(self, request: npb.ListNetworkProvidersRequest,
                                   context: grpc.aio.ServicerContext[Any, Any]) -> npb.ListNetworkProvidersResponse:
        views = self._desk().provider_views(queen=request.queen, gpu_model=request.gpu_model)
        return npb.ListNetworkProvidersResponse(providers=[convert.provider_view_to_proto(v) for v in views])

    async def ListChallenges(self, request: npb.ListChallengesRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> npb.ListChallengesResponse:
        found = self._desk().challenges(provider=request.provider, limit=int(request.limit))
        return npb.ListChallengesResponse(challenges=[convert.verdict_to_proto(r) for r in found])

    async def GetPriceHistory(self, request: npb.PriceHistoryRequest,
                              context: grpc.aio.ServicerContext[Any, Any]) -> npb.PriceHistory:
        desk = self._desk()
        points = desk.price_history(gpu_model=request.gpu_model, window_s=float(request.window_s))
        return npb.PriceHistory(points=[convert.price_point_to_proto(p) for p in points],
                                interval_s=desk.prices.interval_s)
