from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_SCHEDULED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_ENDED: _ClassVar[JobState]
    JOB_STATE_SETTLED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class JobEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_EVENT_KIND_UNSPECIFIED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_QUEUED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_SCHEDULED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_RENTAL_CREATED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_RUNNING: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_LOG: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_PROGRESS: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_ENDED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_VERIFIED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_SETTLED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_FAILED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_CANCELLED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_RESCHEDULED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_OUTPUT_READY: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_OUTPUT_FAILED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_SETTLING: _ClassVar[JobEventKind]

class ProposalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPOSAL_STATE_UNSPECIFIED: _ClassVar[ProposalState]
    PROPOSAL_STATE_PENDING: _ClassVar[ProposalState]
    PROPOSAL_STATE_ACTIVE: _ClassVar[ProposalState]
    PROPOSAL_STATE_CANCELED: _ClassVar[ProposalState]
    PROPOSAL_STATE_DEFEATED: _ClassVar[ProposalState]
    PROPOSAL_STATE_SUCCEEDED: _ClassVar[ProposalState]
    PROPOSAL_STATE_QUEUED: _ClassVar[ProposalState]
    PROPOSAL_STATE_EXPIRED: _ClassVar[ProposalState]
    PROPOSAL_STATE_EXECUTED: _ClassVar[ProposalState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_SCHEDULED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_ENDED: JobState
JOB_STATE_SETTLED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_EVENT_KIND_UNSPECIFIED: JobEventKind
JOB_EVENT_KIND_QUEUED: JobEventKind
JOB_EVENT_KIND_SCHEDULED: JobEventKind
JOB_EVENT_KIND_RENTAL_CREATED: JobEventKind
JOB_EVENT_KIND_RUNNING: JobEventKind
JOB_EVENT_KIND_LOG: JobEventKind
JOB_EVENT_KIND_PROGRESS: JobEventKind
JOB_EVENT_KIND_ENDED: JobEventKind
JOB_EVENT_KIND_VERIFIED: JobEventKind
JOB_EVENT_KIND_SETTLED: JobEventKind
JOB_EVENT_KIND_FAILED: JobEventKind
JOB_EVENT_KIND_CANCELLED: JobEventKind
JOB_EVENT_KIND_RESCHEDULED: JobEventKind
JOB_EVENT_KIND_OUTPUT_READY: JobEventKind
JOB_EVENT_KIND_OUTPUT_FAILED: JobEventKind
JOB_EVENT_KIND_SETTLING: JobEventKind
PROPOSAL_STATE_UNSPECIFIED: ProposalState
PROPOSAL_STATE_PENDING: ProposalState
PROPOSAL_STATE_ACTIVE: ProposalState
PROPOSAL_STATE_CANCELED: ProposalState
PROPOSAL_STATE_DEFEATED: ProposalState
PROPOSAL_STATE_SUCCEEDED: ProposalState
PROPOSAL_STATE_QUEUED: ProposalState
PROPOSAL_STATE_EXPIRED: ProposalState
PROPOSAL_STATE_EXECUTED: ProposalState

class SignInChallengeRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class SignInChallenge(_message.Message):
    __slots__ = ("challenge_id", "message", "expires_unix")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    message: str
    expires_unix: float
    def __init__(self, challenge_id: _Optional[str] = ..., message: _Optional[str] = ..., expires_unix: _Optional[float] = ...) -> None: ...

class SignInRequest(_message.Message):
    __slots__ = ("challenge_id", "address", "signature")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    address: str
    signature: bytes
    def __init__(self, challenge_id: _Optional[str] = ..., address: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("token", "address", "expires_unix")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_FIELD_NUMBER: _ClassVar[int]
    token: str
    address: str
    expires_unix: float
    def __init__(self, token: _Optional[str] = ..., address: _Optional[str] = ..., expires_unix: _Optional[float] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("gpus", "gpu_model", "min_vram_bytes", "min_tflops", "duration_s", "max_price_per_gpu_hour")
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    MIN_VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    MIN_TFLOPS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    gpus: int
    gpu_model: str
    min_vram_bytes: int
    min_tflops: float
    duration_s: int
    max_price_per_gpu_hour: str
    def __init__(self, gpus: _Optional[int] = ..., gpu_model: _Optional[str] = ..., min_vram_bytes: _Optional[int] = ..., min_tflops: _Optional[float] = ..., duration_s: _Optional[int] = ..., max_price_per_gpu_hour: _Optional[str] = ...) -> None: ...

class QuoteRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("provider", "queen", "public_key", "gpu_model", "ask_per_gpu_hour", "reputation_bps")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    ASK_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_BPS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    queen: str
    public_key: bytes
    gpu_model: str
    ask_per_gpu_hour: str
    reputation_bps: int
    def __init__(self, provider: _Optional[str] = ..., queen: _Optional[str] = ..., public_key: _Optional[bytes] = ..., gpu_model: _Optional[str] = ..., ask_per_gpu_hour: _Optional[str] = ..., reputation_bps: _Optional[int] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("price_per_gpu_hour", "max_escrow", "candidates", "reason", "closest", "intents", "chain_id", "rental_contract", "token_contract", "max_intent_deadline", "scheduler")
    PRICE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    MAX_ESCROW_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLOSEST_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    RENTAL_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    MAX_INTENT_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    price_per_gpu_hour: str
    max_escrow: str
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    reason: str
    closest: _containers.RepeatedCompositeFieldContainer[Offer]
    intents: int
    chain_id: int
    rental_contract: str
    token_contract: str
    max_intent_deadline: int
    scheduler: str
    def __init__(self, price_per_gpu_hour: _Optional[str] = ..., max_escrow: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., reason: _Optional[str] = ..., closest: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., intents: _Optional[int] = ..., chain_id: _Optional[int] = ..., rental_contract: _Optional[str] = ..., token_contract: _Optional[str] = ..., max_intent_deadline: _Optional[int] = ..., scheduler: _Optional[str] = ...) -> None: ...

class SignedIntent(_message.Message):
    __slots__ = ("nonce", "deadline", "signature")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    deadline: int
    signature: bytes
    def __init__(self, nonce: _Optional[bytes] = ..., deadline: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Permit(_message.Message):
    __slots__ = ("value", "deadline", "v", "r", "s")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    V_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    value: str
    deadline: int
    v: int
    r: bytes
    s: bytes
    def __init__(self, value: _Optional[str] = ..., deadline: _Optional[int] = ..., v: _Optional[int] = ..., r: _Optional[bytes] = ..., s: _Optional[bytes] = ...) -> None: ...

class WrappedKey(_message.Message):
    __slots__ = ("provider", "sealed_key")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    SEALED_KEY_FIELD_NUMBER: _ClassVar[int]
    provider: str
    sealed_key: bytes
    def __init__(self, provider: _Optional[str] = ..., sealed_key: _Optional[bytes] = ...) -> None: ...

class EncryptedPayload(_message.Message):
    __slots__ = ("ciphertext", "keys")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    keys: _containers.RepeatedCompositeFieldContainer[WrappedKey]
    def __init__(self, ciphertext: _Optional[bytes] = ..., keys: _Optional[_Iterable[_Union[WrappedKey, _Mapping]]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("request_id", "spec", "name", "spec_hash", "intents", "permit", "payload", "max_wait_s", "voucher_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_HASH_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    PERMIT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    spec: JobSpec
    name: str
    spec_hash: bytes
    intents: _containers.RepeatedCompositeFieldContainer[SignedIntent]
    permit: Permit
    payload: EncryptedPayload
    max_wait_s: int
    voucher_id: int
    def __init__(self, request_id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., name: _Optional[str] = ..., spec_hash: _Optional[bytes] = ..., intents: _Optional[_Iterable[_Union[SignedIntent, _Mapping]]] = ..., permit: _Optional[_Union[Permit, _Mapping]] = ..., payload: _Optional[_Union[EncryptedPayload, _Mapping]] = ..., max_wait_s: _Optional[int] = ..., voucher_id: _Optional[int] = ...) -> None: ...

class RentalSummary(_message.Message):
    __slots__ = ("rental_id", "provider", "queen", "price_per_gpu_hour", "escrow", "state", "verified_seconds", "failed_verification", "provider_payment", "fee", "refund", "created_tx", "settled_tx", "start")
    RENTAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    ESCROW_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAILED_VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    CREATED_TX_FIELD_NUMBER: _ClassVar[int]
    SETTLED_TX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    rental_id: bytes
    provider: str
    queen: str
    price_per_gpu_hour: str
    escrow: str
    state: str
    verified_seconds: int
    failed_verification: bool
    provider_payment: str
    fee: str
    refund: str
    created_tx: str
    settled_tx: str
    start: int
    def __init__(self, rental_id: _Optional[bytes] = ..., provider: _Optional[str] = ..., queen: _Optional[str] = ..., price_per_gpu_hour: _Optional[str] = ..., escrow: _Optional[str] = ..., state: _Optional[str] = ..., verified_seconds: _Optional[int] = ..., failed_verification: _Optional[bool] = ..., provider_payment: _Optional[str] = ..., fee: _Optional[str] = ..., refund: _Optional[str] = ..., created_tx: _Optional[str] = ..., settled_tx: _Optional[str] = ..., start: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "request_id", "renter", "name", "spec", "state", "reason", "submitted_unix", "started_unix", "ended_unix", "progress", "provider", "queen", "rentals", "cost_so_far", "last_seq", "exit_code", "output_state", "output_reason", "output_bytes", "output_expires_unix")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RENTER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_UNIX_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_FIELD_NUMBER: _ClassVar[int]
    ENDED_UNIX_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    QUEEN_FIELD_NUMBER: _ClassVar[int]
    RENTALS_FIELD_NUMBER: _ClassVar[int]
    COST_SO_FAR_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_REASON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_EXPIRES_UNIX_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    request_id: str
    renter: str
    name: str
    spec: JobSpec
    state: JobState
    reason: str
    submitted_unix: float
    started_unix: float
    ended_unix: float
    progress: float
    provider: str
    queen: str
    rentals: _containers.RepeatedCompositeFieldContainer[RentalSummary]
    cost_so_far: str
    last_seq: int
    exit_code: int
    output_state: str
    output_reason: str
    output_bytes: int
    output_expires_unix: float
    def __init__(self, job_id: _Optional[str] = ..., request_id: _Optional[str] = ..., renter: _Optional[str] = ..., name: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., reason: _Optional[str] = ..., submitted_unix: _Optional[float] = ..., started_unix: _Optional[float] = ..., ended_unix: _Optional[float] = ..., progress: _Optional[float] = ..., provider: _Optional[str] = ..., queen: _Optional[str] = ..., rentals: _Optional[_Iterable[_Union[RentalSummary, _Mapping]]] = ..., cost_so_far: _Optional[str] = ..., last_seq: _Optional[int] = ..., exit_code: _Optional[int] = ..., output_state: _Optional[str] = ..., output_reason: _Optional[str] = ..., output_bytes: _Optional[int] = ..., output_expires_unix: _Optional[float] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "seq", "kind", "ts_unix", "message", "progress", "job", "state")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TS_UNIX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    seq: int
    kind: JobEventKind
    ts_unix: float
    message: str
    progress: float
    job: Job
    state: JobState
    def __init__(self, job_id: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[_Union[JobEventKind, str]] = ..., ts_unix: _Optional[float] = ..., message: _Optional[str] = ..., progress: _Optional[float] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_seq")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_seq: int
    def __init__(self, job_id: _Optional[str] = ..., after_seq: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "limit")
    STATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    limit: int
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("gpu_model", "providers", "gpus_free", "gpus_total", "min_ask_per_gpu_hour", "quote_per_gpu_hour", "best_reputation_bps", "vram_bytes", "tflops", "unsandboxed_providers")
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FREE_FIELD_NUMBER: _ClassVar[int]
    GPUS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MIN_ASK_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    QUOTE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    BEST_REPUTATION_BPS_FIELD_NUMBER: _ClassVar[int]
    VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    TFLOPS_FIELD_NUMBER: _ClassVar[int]
    UNSANDBOXED_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    gpu_model: str
    providers: int
    gpus_free: int
    gpus_total: int
    min_ask_per_gpu_hour: str
    quote_per_gpu_hour: str
    best_reputation_bps: int
    vram_bytes: int
    tflops: float
    unsandboxed_providers: int
    def __init__(self, gpu_model: _Optional[str] = ..., providers: _Optional[int] = ..., gpus_free: _Optional[int] = ..., gpus_total: _Optional[int] = ..., min_ask_per_gpu_hour: _Optional[str] = ..., quote_per_gpu_hour: _Optional[str] = ..., best_reputation_bps: _Optional[int] = ..., vram_bytes: _Optional[int] = ..., tflops: _Optional[float] = ..., unsandboxed_providers: _Optional[int] = ...) -> None: ...

class ListOffersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListOffersResponse(_message.Message):
    __slots__ = ("offers",)
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    def __init__(self, offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ...) -> None: ...

class GetWalletRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetJobOutputRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobOutputChunk(_message.Message):
    __slots__ = ("attempt", "total_bytes", "data")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    total_bytes: int
    data: bytes
    def __init__(self, attempt: _Optional[int] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Wallet(_message.Message):
    __slots__ = ("address", "balance", "allowance", "in_escrow", "permit_nonce", "chain_id", "token_name", "token_contract", "rental_contract", "vouchers", "fees_burned", "fees_burn_pending", "fee_burn_bps", "voucher_contract", "rewards")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    ALLOWANCE_FIELD_NUMBER: _ClassVar[int]
    IN_ESCROW_FIELD_NUMBER: _ClassVar[int]
    PERMIT_NONCE_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    RENTAL_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    VOUCHERS_FIELD_NUMBER: _ClassVar[int]
    FEES_BURNED_FIELD_NUMBER: _ClassVar[int]
    FEES_BURN_PENDING_FIELD_NUMBER: _ClassVar[int]
    FEE_BURN_BPS_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    address: str
    balance: str
    allowance: str
    in_escrow: str
    permit_nonce: int
    chain_id: int
    token_name: str
    token_contract: str
    rental_contract: str
    vouchers: _containers.RepeatedCompositeFieldContainer[VoucherHolding]
    fees_burned: str
    fees_burn_pending: str
    fee_burn_bps: int
    voucher_contract: str
    rewards: _containers.RepeatedCompositeFieldContainer[RewardHolding]
    def __init__(self, address: _Optional[str] = ..., balance: _Optional[str] = ..., allowance: _Optional[str] = ..., in_escrow: _Optional[str] = ..., permit_nonce: _Optional[int] = ..., chain_id: _Optional[int] = ..., token_name: _Optional[str] = ..., token_contract: _Optional[str] = ..., rental_contract: _Optional[str] = ..., vouchers: _Optional[_Iterable[_Union[VoucherHolding, _Mapping]]] = ..., fees_burned: _Optional[str] = ..., fees_burn_pending: _Optional[str] = ..., fee_burn_bps: _Optional[int] = ..., voucher_contract: _Optional[str] = ..., rewards: _Optional[_Iterable[_Union[RewardHolding, _Mapping]]] = ...) -> None: ...

class RewardHolding(_message.Message):
    __slots__ = ("epoch", "kind", "amount", "publish_tx")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TX_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    kind: str
    amount: str
    publish_tx: str
    def __init__(self, epoch: _Optional[int] = ..., kind: _Optional[str] = ..., amount: _Optional[str] = ..., publish_tx: _Optional[str] = ...) -> None: ...

class VoucherHolding(_message.Message):
    __slots__ = ("id", "gpu_model", "price_per_gpu_hour", "hours")
    ID_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    id: int
    gpu_model: str
    price_per_gpu_hour: str
    hours: int
    def __init__(self, id: _Optional[int] = ..., gpu_model: _Optional[str] = ..., price_per_gpu_hour: _Optional[str] = ..., hours: _Optional[int] = ...) -> None: ...

class ProposalCall(_message.Message):
    __slots__ = ("target", "value", "calldata", "text")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CALLDATA_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    target: str
    value: str
    calldata: bytes
    text: str
    def __init__(self, target: _Optional[str] = ..., value: _Optional[str] = ..., calldata: _Optional[bytes] = ..., text: _Optional[str] = ...) -> None: ...

class Proposal(_message.Message):
    __slots__ = ("proposal_id", "proposer", "description", "state", "votes_for", "votes_against", "votes_abstain", "quorum", "snapshot_block", "deadline_block", "eta_unix", "calls", "created_block", "snapshot_unix", "deadline_unix")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VOTES_FOR_FIELD_NUMBER: _ClassVar[int]
    VOTES_AGAINST_FIELD_NUMBER: _ClassVar[int]
    VOTES_ABSTAIN_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_BLOCK_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_BLOCK_FIELD_NUMBER: _ClassVar[int]
    ETA_UNIX_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BLOCK_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_UNIX_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    proposer: str
    description: str
    state: ProposalState
    votes_for: str
    votes_against: str
    votes_abstain: str
    quorum: str
    snapshot_block: int
    deadline_block: int
    eta_unix: int
    calls: _containers.RepeatedCompositeFieldContainer[ProposalCall]
    created_block: int
    snapshot_unix: int
    deadline_unix: int
    def __init__(self, proposal_id: _Optional[str] = ..., proposer: _Optional[str] = ..., description: _Optional[str] = ..., state: _Optional[_Union[ProposalState, str]] = ..., votes_for: _Optional[str] = ..., votes_against: _Optional[str] = ..., votes_abstain: _Optional[str] = ..., quorum: _Optional[str] = ..., snapshot_block: _Optional[int] = ..., deadline_block: _Optional[int] = ..., eta_unix: _Optional[int] = ..., calls: _Optional[_Iterable[_Union[ProposalCall, _Mapping]]] = ..., created_block: _Optional[int] = ..., snapshot_unix: _Optional[int] = ..., deadline_unix: _Optional[int] = ...) -> None: ...

class ListProposalsRequest(_message.Message):
    __slots__ = ("states", "limit")
    STATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[ProposalState]
    limit: int
    def __init__(self, states: _Optional[_Iterable[_Union[ProposalState, str]]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListProposalsResponse(_message.Message):
    __slots__ = ("proposals", "as_of_block")
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_BLOCK_FIELD_NUMBER: _ClassVar[int]
    proposals: _containers.RepeatedCompositeFieldContainer[Proposal]
    as_of_block: int
    def __init__(self, proposals: _Optional[_Iterable[_Union[Proposal, _Mapping]]] = ..., as_of_block: _Optional[int] = ...) -> None: ...

class GetProposalRequest(_message.Message):
    __slots__ = ("proposal_id",)
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    def __init__(self, proposal_id: _Optional[str] = ...) -> None: ...
