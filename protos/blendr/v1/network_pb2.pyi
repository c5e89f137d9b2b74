from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NetworkInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NetworkInfo(_message.Message):
    __slots__ = ("network", "king_address", "eth_chain_id", "etc_chain_id", "token_contract", "rental_contract", "governance_contract", "voucher_contract", "work_verification_contract", "token_name", "token_symbol", "max_payload_bytes", "eth_explorer_tx_url", "etc_explorer_tx_url", "leader")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    KING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ETH_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    ETC_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    RENTAL_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    GOVERNANCE_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    WORK_VERIFICATION_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MAX_PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    ETH_EXPLORER_TX_URL_FIELD_NUMBER: _ClassVar[int]
    ETC_EXPLORER_TX_URL_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    network: str
    king_address: str
    eth_chain_id: int
    etc_chain_id: int
    token_contract: str
    rental_contract: str
    governance_contract: str
    voucher_contract: str
    work_verification_contract: str
    token_name: str
    token_symbol: str
    max_payload_bytes: int
    eth_explorer_tx_url: str
    etc_explorer_tx_url: str
    leader: bool
    def __init__(self, network: _Optional[str] = ..., king_address: _Optional[str] = ..., eth_chain_id: _Optional[int] = ..., etc_chain_id: _Optional[int] = ..., token_contract: _Optional[str] = ..., rental_contract: _Optional[str] = ..., governance_contract: _Optional[str] = ..., voucher_contract: _Optional[str] = ..., work_verification_contract: _Optional[str] = ..., token_name: _Optional[str] = ..., token_symbol: _Optional[str] = ..., max_payload_bytes: _Optional[int] = ..., eth_explorer_tx_url: _Optional[str] = ..., etc_explorer_tx_url: _Optional[str] = ..., leader: _Optional[bool] = ...) -> None: ...

class ListPoolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Pool(_message.Message):
    __slots__ = ("queen", "endpoint", "providers", "providers_alive", "gpus_total", "gpus_free", "connected_since_unix", "last_snapshot_unix")
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_ALIVE_FIELD_NUMBER: _ClassVar[int]
    GPUS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    GPUS_FREE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SINCE_UNIX_FIELD_NUMBER: _ClassVar[int]
    LAST_SNAPSHOT_UNIX_FIELD_NUMBER: _ClassVar[int]
    queen: str
    endpoint: str
    providers: int
    providers_alive: int
    gpus_total: int
    gpus_free: int
    connected_since_unix: float
    last_snapshot_unix: float
    def __init__(self, queen: _Optional[str] = ..., endpoint: _Optional[str] = ..., providers: _Optional[int] = ..., providers_alive: _Optional[int] = ..., gpus_total: _Optional[int] = ..., gpus_free: _Optional[int] = ..., connected_since_unix: _Optional[float] = ..., last_snapshot_unix: _Optional[float] = ...) -> None: ...

class ListPoolsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[Pool]
    def __init__(self, pools: _Optional[_Iterable[_Union[Pool, _Mapping]]] = ...) -> None: ...

class ListNetworkProvidersRequest(_message.Message):
    __slots__ = ("queen", "gpu_model")
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    queen: str
    gpu_model: str
    def __init__(self, queen: _Optional[str] = ..., gpu_model: _Optional[str] = ...) -> None: ...

class PassRatePoint(_message.Message):
    __slots__ = ("start_unix", "passed", "failed")
    START_UNIX_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    start_unix: float
    passed: int
    failed: int
    def __init__(self, start_unix: _Optional[float] = ..., passed: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class ProviderView(_message.Message):
    __slots__ = ("address", "queen", "gpu_model", "gpus", "busy_gpus", "vram_bytes", "tflops", "ask_per_gpu_hour", "uptime", "alive", "sandbox", "reputation_bps", "challenges_passed", "challenges_failed", "pass_rate", "state")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    BUSY_GPUS_FIELD_NUMBER: _ClassVar[int]
    VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    TFLOPS_FIELD_NUMBER: _ClassVar[int]
    ASK_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_BPS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_PASSED_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_FAILED_FIELD_NUMBER: _ClassVar[int]
    PASS_RATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    address: str
    queen: str
    gpu_model: str
    gpus: int
    busy_gpus: int
    vram_bytes: int
    tflops: float
    ask_per_gpu_hour: str
    uptime: float
    alive: bool
    sandbox: str
    reputation_bps: int
    challenges_passed: int
    challenges_failed: int
    pass_rate: _containers.RepeatedCompositeFieldContainer[PassRatePoint]
    state: str
    def __init__(self, address: _Optional[str] = ..., queen: _Optional[str] = ..., gpu_model: _Optional[str] = ..., gpus: _Optional[int] = ..., busy_gpus: _Optional[int] = ..., vram_bytes: _Optional[int] = ..., tflops: _Optional[float] = ..., ask_per_gpu_hour: _Optional[str] = ..., uptime: _Optional[float] = ..., alive: _Optional[bool] = ..., sandbox: _Optional[str] = ..., reputation_bps: _Optional[int] = ..., challenges_passed: _Optional[int] = ..., challenges_failed: _Optional[int] = ..., pass_rate: _Optional[_Iterable[_Union[PassRatePoint, _Mapping]]] = ..., state: _Optional[str] = ...) -> None: ...

class ListNetworkProvidersResponse(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderView]
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderView, _Mapping]]] = ...) -> None: ...

class ListChallengesRequest(_message.Message):
    __slots__ = ("provider", "limit")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    provider: str
    limit: int
    def __init__(self, provider: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ChallengeVerdict(_message.Message):
    __slots__ = ("challenge_id", "provider", "queen", "verdict", "reason", "issued_unix", "decided_unix", "rental_id", "etc_batch_id", "etc_tx")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ISSUED_UNIX_FIELD_NUMBER: _ClassVar[int]
    DECIDED_UNIX_FIELD_NUMBER: _ClassVar[int]
    RENTAL_ID_FIELD_NUMBER: _ClassVar[int]
    ETC_BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ETC_TX_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    provider: str
    queen: str
    verdict: str
    reason: str
    issued_unix: float
    decided_unix: float
    rental_id: bytes
    etc_batch_id: str
    etc_tx: str
    def __init__(self, challenge_id: _Optional[str] = ..., provider: _Optional[str] = ..., queen: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., issued_unix: _Optional[float] = ..., decided_unix: _Optional[float] = ..., rental_id: _Optional[bytes] = ..., etc_batch_id: _Optional[str] = ..., etc_tx: _Optional[str] = ...) -> None: ...

class ListChallengesResponse(_message.Message):
    __slots__ = ("challenges",)
    CHALLENGES_FIELD_NUMBER: _ClassVar[int]
    challenges: _containers.RepeatedCompositeFieldContainer[ChallengeVerdict]
    def __init__(self, challenges: _Optional[_Iterable[_Union[ChallengeVerdict, _Mapping]]] = ...) -> None: ...

class PriceHistoryRequest(_message.Message):
    __slots__ = ("gpu_model", "window_s")
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    gpu_model: str
    window_s: int
    def __init__(self, gpu_model: _Optional[str] = ..., window_s: _Optional[int] = ...) -> None: ...

class PricePoint(_message.Message):
    __slots__ = ("ts_unix", "gpu_model", "quote_per_gpu_hour", "min_ask_per_gpu_hour", "gpus_free", "gpus_total")
    TS_UNIX_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    QUOTE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    MIN_ASK_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    GPUS_FREE_FIELD_NUMBER: _ClassVar[int]
    GPUS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ts_unix: float
    gpu_model: str
    quote_per_gpu_hour: str
    min_ask_per_gpu_hour: str
    gpus_free: int
    gpus_total: int
    def __init__(self, ts_unix: _Optional[float] = ..., gpu_model: _Optional[str] = ..., quote_per_gpu_hour: _Optional[str] = ..., min_ask_per_gpu_hour: _Optional[str] = ..., gpus_free: _Optional[int] = ..., gpus_total: _Optional[int] = ...) -> None: ...

class PriceHistory(_message.Message):
    __slots__ = ("points", "interval_s")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[PricePoint]
    interval_s: float
    def __init__(self, points: _Optional[_Iterable[_Union[PricePoint, _Mapping]]] = ..., interval_s: _Optional[float] = ...) -> None: ...
