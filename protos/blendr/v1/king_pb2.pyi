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
