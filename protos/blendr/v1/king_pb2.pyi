from protos.blendr.v1 import outputs_pb2 as _outputs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_GATHERING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]

class RentalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RENTAL_STATE_UNSPECIFIED: _ClassVar[RentalState]
    RENTAL_STATE_ACTIVE: _ClassVar[RentalState]
    RENTAL_STATE_CANCELLED: _ClassVar[RentalState]
    RENTAL_STATE_SETTLED: _ClassVar[RentalState]
    RENTAL_STATE_EXPIRED: _ClassVar[RentalState]
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_GATHERING: DeliveryState
DELIVERY_STATE_DELIVERING: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
RENTAL_STATE_UNSPECIFIED: RentalState
RENTAL_STATE_ACTIVE: RentalState
RENTAL_STATE_CANCELLED: RentalState
RENTAL_STATE_SETTLED: RentalState
RENTAL_STATE_EXPIRED: RentalState

class BridgeMessage(_message.Message):
    __slots__ = ("src_chain_id", "src_outbox", "nonce", "dst_chain_id", "sender", "target", "data")
    SRC_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    SRC_OUTBOX_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    DST_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    src_chain_id: int
    src_outbox: bytes
    nonce: int
    dst_chain_id: int
    sender: bytes
    target: bytes
    data: bytes
    def __init__(self, src_chain_id: _Optional[int] = ..., src_outbox: _Optional[bytes] = ..., nonce: _Optional[int] = ..., dst_chain_id: _Optional[int] = ..., sender: _Optional[bytes] = ..., target: _Optional[bytes] = ..., data: _Optional[bytes] = ...) -> None: ...

class SubmitAttestationRequest(_message.Message):
    __slots__ = ("message", "signature")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    message: BridgeMessage
    signature: bytes
    def __init__(self, message: _Optional[_Union[BridgeMessage, _Mapping]] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SubmitAttestationResponse(_message.Message):
    __slots__ = ("message_hash", "attester", "attestations", "threshold", "state", "tx_hash")
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    ATTESTER_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    message_hash: bytes
    attester: str
    attestations: int
    threshold: int
    state: DeliveryState
    tx_hash: str
    def __init__(self, message_hash: _Optional[bytes] = ..., attester: _Optional[str] = ..., attestations: _Optional[int] = ..., threshold: _Optional[int] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., tx_hash: _Optional[str] = ...) -> None: ...

class GetAttestationsRequest(_message.Message):
    __slots__ = ("message_hash",)
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    message_hash: bytes
    def __init__(self, message_hash: _Optional[bytes] = ...) -> None: ...

class Attestation(_message.Message):
    __slots__ = ("attester", "signature")
    ATTESTER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    attester: str
    signature: bytes
    def __init__(self, attester: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetAttestationsResponse(_message.Message):
    __slots__ = ("message", "attestations", "threshold", "state", "tx_hash", "last_error", "attempts")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    message: BridgeMessage
    attestations: _containers.RepeatedCompositeFieldContainer[Attestation]
    threshold: int
    state: DeliveryState
    tx_hash: str
    last_error: str
    attempts: int
    def __init__(self, message: _Optional[_Union[BridgeMessage, _Mapping]] = ..., attestations: _Optional[_Iterable[_Union[Attestation, _Mapping]]] = ..., threshold: _Optional[int] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., tx_hash: _Optional[str] = ..., last_error: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class GetSettlementRequest(_message.Message):
    __slots__ = ("rental_id",)
    RENTAL_ID_FIELD_NUMBER: _ClassVar[int]
    rental_id: bytes
    def __init__(self, rental_id: _Optional[bytes] = ...) -> None: ...

class Settlement(_message.Message):
    __slots__ = ("rental_id", "state", "renter", "provider", "queen", "gpus", "escrow", "price_per_gpu_hour", "start", "duration", "verified_seconds", "failed", "provider_payment", "fee", "refund", "slashed", "created_tx", "settled_tx")
    RENTAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RENTER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    ESCROW_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    SLASHED_FIELD_NUMBER: _ClassVar[int]
    CREATED_TX_FIELD_NUMBER: _ClassVar[int]
    SETTLED_TX_FIELD_NUMBER: _ClassVar[int]
    rental_id: bytes
    state: RentalState
    renter: str
    provider: str
    queen: str
    gpus: int
    escrow: str
    price_per_gpu_hour: str
    start: int
    duration: int
    verified_seconds: int
    failed: bool
    provider_payment: str
    fee: str
    refund: str
    slashed: str
    created_tx: str
    settled_tx: str
    def __init__(self, rental_id: _Optional[bytes] = ..., state: _Optional[_Union[RentalState, str]] = ..., renter: _Optional[str] = ..., provider: _Optional[str] = ..., queen: _Optional[str] = ..., gpus: _Optional[int] = ..., escrow: _Optional[str] = ..., price_per_gpu_hour: _Optional[str] = ..., start: _Optional[int] = ..., duration: _Optional[int] = ..., verified_seconds: _Optional[int] = ..., failed: _Optional[bool] = ..., provider_payment: _Optional[str] = ..., fee: _Optional[str] = ..., refund: _Optional[str] = ..., slashed: _Optional[str] = ..., created_tx: _Optional[str] = ..., settled_tx: _Optional[str] = ...) -> None: ...

class QueenRegistration(_message.Message):
    __slots__ = ("queen_address", "king_address", "timestamp", "endpoint", "signature")
    QUEEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    KING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    queen_address: str
    king_address: str
    timestamp: int
    endpoint: str
    signature: bytes
    def __init__(self, queen_address: _Optional[str] = ..., king_address: _Optional[str] = ..., timestamp: _Optional[int] = ..., endpoint: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PoolProvider(_message.Message):
    __slots__ = ("address", "public_key", "gpu_model", "gpus", "vram_bytes", "tflops", "ask_per_gpu_hour", "uptime", "alive", "busy_gpus", "admission_nonce", "admission_signature", "sandbox")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    TFLOPS_FIELD_NUMBER: _ClassVar[int]
    ASK_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    BUSY_GPUS_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_NONCE_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    address: str
    public_key: bytes
    gpu_model: str
    gpus: int
    vram_bytes: int
    tflops: float
    ask_per_gpu_hour: str
    uptime: float
    alive: bool
    busy_gpus: int
    admission_nonce: bytes
    admission_signature: bytes
    sandbox: str
    def __init__(self, address: _Optional[str] = ..., public_key: _Optional[bytes] = ..., gpu_model: _Optional[str] = ..., gpus: _Optional[int] = ..., vram_bytes: _Optional[int] = ..., tflops: _Optional[float] = ..., ask_per_gpu_hour: _Optional[str] = ..., uptime: _Optional[float] = ..., alive: _Optional[bool] = ..., busy_gpus: _Optional[int] = ..., admission_nonce: _Optional[bytes] = ..., admission_signature: _Optional[bytes] = ..., sandbox: _Optional[str] = ...) -> None: ...

class PoolSnapshotMsg(_message.Message):
    __slots__ = ("seq", "providers")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    providers: _containers.RepeatedCompositeFieldContainer[PoolProvider]
    def __init__(self, seq: _Optional[int] = ..., providers: _Optional[_Iterable[_Union[PoolProvider, _Mapping]]] = ...) -> None: ...

class QueenJobEvent(_message.Message):
    __slots__ = ("job_id", "attempt", "seq", "kind", "message", "progress", "ts_unix", "exit_code", "provider_fault")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TS_UNIX_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FAULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    seq: int
    kind: str
    message: str
    progress: float
    ts_unix: float
    exit_code: int
    provider_fault: bool
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., seq: _Optional[int] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ..., progress: _Optional[float] = ..., ts_unix: _Optional[float] = ..., exit_code: _Optional[int] = ..., provider_fault: _Optional[bool] = ...) -> None: ...

class ChallengeVerdictMsg(_message.Message):
    __slots__ = ("challenge_id", "provider", "verdict", "reason", "issued_unix", "decided_unix", "rental_id")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ISSUED_UNIX_FIELD_NUMBER: _ClassVar[int]
    DECIDED_UNIX_FIELD_NUMBER: _ClassVar[int]
    RENTAL_ID_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    provider: str
    verdict: str
    reason: str
    issued_unix: float
    decided_unix: float
    rental_id: bytes
    def __init__(self, challenge_id: _Optional[str] = ..., provider: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., issued_unix: _Optional[float] = ..., decided_unix: _Optional[float] = ..., rental_id: _Optional[bytes] = ...) -> None: ...

class ChallengeVerdicts(_message.Message):
    __slots__ = ("verdicts",)
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    verdicts: _containers.RepeatedCompositeFieldContainer[ChallengeVerdictMsg]
    def __init__(self, verdicts: _Optional[_Iterable[_Union[ChallengeVerdictMsg, _Mapping]]] = ...) -> None: ...

class BatchedRental(_message.Message):
    __slots__ = ("rental_id", "challenge_ids")
    RENTAL_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_IDS_FIELD_NUMBER: _ClassVar[int]
    rental_id: bytes
    challenge_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rental_id: _Optional[bytes] = ..., challenge_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchLanded(_message.Message):
    __slots__ = ("batch_id", "tx", "rentals")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TX_FIELD_NUMBER: _ClassVar[int]
    RENTALS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    tx: str
    rentals: _containers.RepeatedCompositeFieldContainer[BatchedRental]
    def __init__(self, batch_id: _Optional[str] = ..., tx: _Optional[str] = ..., rentals: _Optional[_Iterable[_Union[BatchedRental, _Mapping]]] = ...) -> None: ...

class QueenToKing(_message.Message):
    __slots__ = ("registration", "snapshot", "job_event", "verdicts", "batch_landed")
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    JOB_EVENT_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_LANDED_FIELD_NUMBER: _ClassVar[int]
    registration: QueenRegistration
    snapshot: PoolSnapshotMsg
    job_event: QueenJobEvent
    verdicts: ChallengeVerdicts
    batch_landed: BatchLanded
    def __init__(self, registration: _Optional[_Union[QueenRegistration, _Mapping]] = ..., snapshot: _Optional[_Union[PoolSnapshotMsg, _Mapping]] = ..., job_event: _Optional[_Union[QueenJobEvent, _Mapping]] = ..., verdicts: _Optional[_Union[ChallengeVerdicts, _Mapping]] = ..., batch_landed: _Optional[_Union[BatchLanded, _Mapping]] = ...) -> None: ...

class JobAssignment(_message.Message):
    __slots__ = ("job_id", "attempt", "provider", "gpus", "rental_id", "deadline_unix", "ciphertext", "sealed_key", "aad", "max_output_bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    RENTAL_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    SEALED_KEY_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    provider: str
    gpus: int
    rental_id: bytes
    deadline_unix: float
    ciphertext: bytes
    sealed_key: bytes
    aad: str
    max_output_bytes: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., provider: _Optional[str] = ..., gpus: _Optional[int] = ..., rental_id: _Optional[bytes] = ..., deadline_unix: _Optional[float] = ..., ciphertext: _Optional[bytes] = ..., sealed_key: _Optional[bytes] = ..., aad: _Optional[str] = ..., max_output_bytes: _Optional[int] = ...) -> None: ...

class JobStop(_message.Message):
    __slots__ = ("job_id", "attempt", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class QueenRegistered(_message.Message):
    __slots__ = ("king_address", "snapshot_interval_s", "heartbeat_interval_s")
    KING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    king_address: str
    snapshot_interval_s: float
    heartbeat_interval_s: float
    def __init__(self, king_address: _Optional[str] = ..., snapshot_interval_s: _Optional[float] = ..., heartbeat_interval_s: _Optional[float] = ...) -> None: ...

class KingToQueen(_message.Message):
    __slots__ = ("registered", "assign", "stop")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    registered: QueenRegistered
    assign: JobAssignment
    stop: JobStop
    def __init__(self, registered: _Optional[_Union[QueenRegistered, _Mapping]] = ..., assign: _Optional[_Union[JobAssignment, _Mapping]] = ..., stop: _Optional[_Union[JobStop, _Mapping]] = ...) -> None: ...
