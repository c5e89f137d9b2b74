from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputHeader(_message.Message):
    __slots__ = ("job_id", "attempt", "signer", "timestamp", "signature", "error", "size")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    signer: str
    timestamp: int
    signature: bytes
    error: str
    size: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., signer: _Optional[str] = ..., timestamp: _Optional[int] = ..., signature: _Optional[bytes] = ..., error: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class OutputUpload(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: OutputHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[OutputHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class OutputReceipt(_message.Message):
    __slots__ = ("stored_bytes",)
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    stored_bytes: int
    def __init__(self, stored_bytes: _Optional[int] = ...) -> None: ...
