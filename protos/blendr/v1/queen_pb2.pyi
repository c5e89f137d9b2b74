from protos.blendr.v1 import outputs_pb2 as _outputs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_NVIDIA_GPU: _ClassVar[DeviceKind]
    DEVICE_KIND_CPU: _ClassVar[DeviceKind]

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_FP32: _ClassVar[DType]

class ProviderState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROVIDER_STATE_UNSPECIFIED: _ClassVar[ProviderState]
    PROVIDER_STATE_ALIVE: _ClassVar[ProviderState]
    PROVIDER_STATE_SUSPECT: _ClassVar[ProviderState]
    PROVIDER_STATE_DEAD: _ClassVar[ProviderState]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_PASSED: _ClassVar[Verdict]
    VERDICT_FAILED: _ClassVar[Verdict]
    VERDICT_MISSED: _ClassVar[Verdict]
    VERDICT_PENDING: _ClassVar[Verdict]
    VERDICT_ABANDONED: _ClassVar[Verdict]
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_NVIDIA_GPU: DeviceKind
DEVICE_KIND_CPU: DeviceKind
DTYPE_UNSPECIFIED: DType
DTYPE_FP32: DType
PROVIDER_STATE_UNSPECIFIED: ProviderState
PROVIDER_STATE_ALIVE: ProviderState
PROVIDER_STATE_SUSPECT: ProviderState
PROVIDER_STATE_DEAD: ProviderState
VERDICT_UNSPECIFIED: Verdict
VERDICT_PASSED: Verdict
VERDICT_FAILED: Verdict
VERDICT_MISSED: Verdict
VERDICT_PENDING: Verdict
VERDICT_ABANDONED: Verdict

class Device(_message.Message):
    __slots__ = ("index", "kind", "name", "uuid", "memory_bytes", "driver_version", "cuda_version", "model")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRIVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUDA_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    index: int
    kind: DeviceKind
    name: str
    uuid: str
    memory_bytes: int
    driver_version: str
    cuda_version: str
    model: str
    def __init__(self, index: _Optional[int] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., name: _Optional[str] = ..., uuid: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., driver_version: _Optional[str] = ..., cuda_version: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class RayResources(_message.Message):
    __slots__ = ("ray_version", "num_cpus", "num_gpus", "pin_resource")
    RAY_VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_CPUS_FIELD_NUMBER: _ClassVar[int]
    NUM_GPUS_FIELD_NUMBER: _ClassVar[int]
    PIN_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    ray_version: str
    num_cpus: float
    num_gpus: float
    pin_resource: str
    def __init__(self, ray_version: _Optional[str] = ..., num_cpus: _Optional[float] = ..., num_gpus: _Optional[float] = ..., pin_resource: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("address", "devices", "ray", "software_version", "ask_per_gpu_hour", "readiness", "sandbox")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    RAY_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ASK_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    READINESS_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    address: str
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    ray: RayResources
    software_version: str
    ask_per_gpu_hour: str
    readiness: Readiness
    sandbox: str
    def __init__(self, address: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., ray: _Optional[_Union[RayResources, _Mapping]] = ..., software_version: _Optional[str] = ..., ask_per_gpu_hour: _Optional[str] = ..., readiness: _Optional[_Union[Readiness, _Mapping]] = ..., sandbox: _Optional[str] = ...) -> None: ...

class Readiness(_message.Message):
    __slots__ = ("ready", "reason")
    READY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    reason: str
    def __init__(self, ready: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class AdmissionResponse(_message.Message):
    __slots__ = ("signature",)
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    def __init__(self, signature: _Optional[bytes] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("seq", "busy_devices", "readiness")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BUSY_DEVICES_FIELD_NUMBER: _ClassVar[int]
    READINESS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    busy_devices: int
    readiness: Readiness
    def __init__(self, seq: _Optional[int] = ..., busy_devices: _Optional[int] = ..., readiness: _Optional[_Union[Readiness, _Mapping]] = ...) -> None: ...

class DeviceCommitment(_message.Message):
    __slots__ = ("device_index", "root", "work_seconds", "peak_memory_bytes", "probe")
    DEVICE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    WORK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    device_index: int
    root: bytes
    work_seconds: float
    peak_memory_bytes: int
    probe: bytes
    def __init__(self, device_index: _Optional[int] = ..., root: _Optional[bytes] = ..., work_seconds: _Optional[float] = ..., peak_memory_bytes: _Optional[int] = ..., probe: _Optional[bytes] = ...) -> None: ...

class Commitment(_message.Message):
    __slots__ = ("challenge_id", "devices")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    devices: _containers.RepeatedCompositeFieldContainer[DeviceCommitment]
    def __init__(self, challenge_id: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[DeviceCommitment, _Mapping]]] = ...) -> None: ...

class RowOpening(_message.Message):
    __slots__ = ("device_index", "row", "values", "proof", "probe_block")
    DEVICE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    PROBE_BLOCK_FIELD_NUMBER: _ClassVar[int]
    device_index: int
    row: int
    values: bytes
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    probe_block: bytes
    def __init__(self, device_index: _Optional[int] = ..., row: _Optional[int] = ..., values: _Optional[bytes] = ..., proof: _Optional[_Iterable[bytes]] = ..., probe_block: _Optional[bytes] = ...) -> None: ...

class Openings(_message.Message):
    __slots__ = ("challenge_id", "rows")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    rows: _containers.RepeatedCompositeFieldContainer[RowOpening]
    def __init__(self, challenge_id: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[RowOpening, _Mapping]]] = ...) -> None: ...

class ChallengeError(_message.Message):
    __slots__ = ("challenge_id", "reason")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    reason: str
    def __init__(self, challenge_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ProviderMessage(_message.Message):
    __slots__ = ("hello", "admission_response", "heartbeat", "commitment", "openings", "challenge_error", "job_update")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    OPENINGS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_UPDATE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    admission_response: AdmissionResponse
    heartbeat: Heartbeat
    commitment: Commitment
    openings: Openings
    challenge_error: ChallengeError
    job_update: JobUpdate
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., admission_response: _Optional[_Union[AdmissionResponse, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., commitment: _Optional[_Union[Commitment, _Mapping]] = ..., openings: _Optional[_Union[Openings, _Mapping]] = ..., challenge_error: _Optional[_Union[ChallengeError, _Mapping]] = ..., job_update: _Optional[_Union[JobUpdate, _Mapping]] = ...) -> None: ...

class AdmissionChallenge(_message.Message):
    __slots__ = ("nonce", "queen_address")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    QUEEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    queen_address: str
    def __init__(self, nonce: _Optional[bytes] = ..., queen_address: _Optional[str] = ...) -> None: ...

class Admitted(_message.Message):
    __slots__ = ("provider_address", "heartbeat_interval_seconds", "resumed", "queen_address")
    PROVIDER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    QUEEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    provider_address: str
    heartbeat_interval_seconds: float
    resumed: bool
    queen_address: str
    def __init__(self, provider_address: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[float] = ..., resumed: _Optional[bool] = ..., queen_address: _Optional[str] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("challenge_id", "seed", "n", "dtype", "count", "timeout_ms", "device_indices", "b_seed", "hold")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_INDICES_FIELD_NUMBER: _ClassVar[int]
    B_SEED_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    seed: bytes
    n: int
    dtype: DType
    count: int
    timeout_ms: int
    device_indices: _containers.RepeatedScalarFieldContainer[int]
    b_seed: bytes
    hold: bool
    def __init__(self, challenge_id: _Optional[str] = ..., seed: _Optional[bytes] = ..., n: _Optional[int] = ..., dtype: _Optional[_Union[DType, str]] = ..., count: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., device_indices: _Optional[_Iterable[int]] = ..., b_seed: _Optional[bytes] = ..., hold: _Optional[bool] = ...) -> None: ...

class RowRef(_message.Message):
    __slots__ = ("device_index", "row")
    DEVICE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    device_index: int
    row: int
    def __init__(self, device_index: _Optional[int] = ..., row: _Optional[int] = ...) -> None: ...

class OpeningRequest(_message.Message):
    __slots__ = ("challenge_id", "rows", "timeout_ms", "probe_key")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    PROBE_KEY_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    rows: _containers.RepeatedCompositeFieldContainer[RowRef]
    timeout_ms: int
    probe_key: bytes
    def __init__(self, challenge_id: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[RowRef, _Mapping]]] = ..., timeout_ms: _Optional[int] = ..., probe_key: _Optional[bytes] = ...) -> None: ...

class ChallengeResult(_message.Message):
    __slots__ = ("challenge_id", "verdict", "reason", "reported_tflops", "wall_tflops")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORTED_TFLOPS_FIELD_NUMBER: _ClassVar[int]
    WALL_TFLOPS_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    verdict: Verdict
    reason: str
    reported_tflops: float
    wall_tflops: float
    def __init__(self, challenge_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reason: _Optional[str] = ..., reported_tflops: _Optional[float] = ..., wall_tflops: _Optional[float] = ...) -> None: ...

class QueenMessage(_message.Message):
    __slots__ = ("admission_challenge", "admitted", "challenge", "opening_request", "challenge_result", "job_start", "job_stop")
    ADMISSION_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    OPENING_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_RESULT_FIELD_NUMBER: _ClassVar[int]
    JOB_START_FIELD_NUMBER: _ClassVar[int]
    JOB_STOP_FIELD_NUMBER: _ClassVar[int]
    admission_challenge: AdmissionChallenge
    admitted: Admitted
    challenge: Challenge
    opening_request: OpeningRequest
    challenge_result: ChallengeResult
    job_start: JobStart
    job_stop: JobStopRequest
    def __init__(self, admission_challenge: _Optional[_Union[AdmissionChallenge, _Mapping]] = ..., admitted: _Optional[_Union[Admitted, _Mapping]] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ..., opening_request: _Optional[_Union[OpeningRequest, _Mapping]] = ..., challenge_result: _Optional[_Union[ChallengeResult, _Mapping]] = ..., job_start: _Optional[_Union[JobStart, _Mapping]] = ..., job_stop: _Optional[_Union[JobStopRequest, _Mapping]] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[ProviderState]
    def __init__(self, states: _Optional[_Iterable[_Union[ProviderState, str]]] = ...) -> None: ...

class ChallengeSummary(_message.Message):
    __slots__ = ("challenge_id", "verdict", "reason", "issued_unix", "reported_tflops")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ISSUED_UNIX_FIELD_NUMBER: _ClassVar[int]
    REPORTED_TFLOPS_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    verdict: Verdict
    reason: str
    issued_unix: float
    reported_tflops: float
    def __init__(self, challenge_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reason: _Optional[str] = ..., issued_unix: _Optional[float] = ..., reported_tflops: _Optional[float] = ...) -> None: ...

class ProviderInfo(_message.Message):
    __slots__ = ("address", "state", "devices", "challenges_issued", "challenges_passed", "challenges_failed", "challenges_missed", "measured_tflops", "fingerprint_tflops", "uptime", "connected_seconds", "last_seen_unix", "last_challenge", "software_version", "admitted_unix", "not_ready", "challenges_abandoned", "quarantined_until_unix", "sandbox")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_ISSUED_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_PASSED_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_FAILED_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_MISSED_FIELD_NUMBER: _ClassVar[int]
    MEASURED_TFLOPS_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_TFLOPS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_UNIX_FIELD_NUMBER: _ClassVar[int]
    LAST_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_UNIX_FIELD_NUMBER: _ClassVar[int]
    NOT_READY_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_ABANDONED_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_UNTIL_UNIX_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    address: str
    state: ProviderState
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    challenges_issued: int
    challenges_passed: int
    challenges_failed: int
    challenges_missed: int
    measured_tflops: float
    fingerprint_tflops: float
    uptime: float
    connected_seconds: float
    last_seen_unix: float
    last_challenge: ChallengeSummary
    software_version: str
    admitted_unix: float
    not_ready: str
    challenges_abandoned: int
    quarantined_until_unix: float
    sandbox: str
    def __init__(self, address: _Optional[str] = ..., state: _Optional[_Union[ProviderState, str]] = ..., devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., challenges_issued: _Optional[int] = ..., challenges_passed: _Optional[int] = ..., challenges_failed: _Optional[int] = ..., challenges_missed: _Optional[int] = ..., measured_tflops: _Optional[float] = ..., fingerprint_tflops: _Optional[float] = ..., uptime: _Optional[float] = ..., connected_seconds: _Optional[float] = ..., last_seen_unix: _Optional[float] = ..., last_challenge: _Optional[_Union[ChallengeSummary, _Mapping]] = ..., software_version: _Optional[str] = ..., admitted_unix: _Optional[float] = ..., not_ready: _Optional[str] = ..., challenges_abandoned: _Optional[int] = ..., quarantined_until_unix: _Optional[float] = ..., sandbox: _Optional[str] = ...) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers", "queen_address")
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    QUEEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderInfo]
    queen_address: str
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderInfo, _Mapping]]] = ..., queen_address: _Optional[str] = ...) -> None: ...

class JobStart(_message.Message):
    __slots__ = ("job_id", "attempt", "gpus", "deadline_unix", "ciphertext", "sealed_key", "aad", "max_output_bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    SEALED_KEY_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    gpus: int
    deadline_unix: float
    ciphertext: bytes
    sealed_key: bytes
    aad: str
    max_output_bytes: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., gpus: _Optional[int] = ..., deadline_unix: _Optional[float] = ..., ciphertext: _Optional[bytes] = ..., sealed_key: _Optional[bytes] = ..., aad: _Optional[str] = ..., max_output_bytes: _Optional[int] = ...) -> None: ...

class JobStopRequest(_message.Message):
    __slots__ = ("job_id", "attempt", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class JobUpdate(_message.Message):
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
