from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_PUT: _ClassVar[EventType]
    EVENT_TYPE_DELETE: _ClassVar[EventType]

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    INVALID_KEY: _ClassVar[ErrorReason]
    TOO_LARGE: _ClassVar[ErrorReason]
    INVALID_VALUE: _ClassVar[ErrorReason]
    INVALID_ARGUMENT: _ClassVar[ErrorReason]
    REVISION_MISMATCH: _ClassVar[ErrorReason]
    NOT_FOUND: _ClassVar[ErrorReason]
    CLOSED: _ClassVar[ErrorReason]
    FAILED: _ClassVar[ErrorReason]
    CORRUPT: _ClassVar[ErrorReason]
    LOCKED: _ClassVar[ErrorReason]
    COMPACTED: _ClassVar[ErrorReason]
    WATCH_TOO_SLOW: _ClassVar[ErrorReason]
    UNAVAILABLE: _ClassVar[ErrorReason]
    NOT_SENT: _ClassVar[ErrorReason]
    CONFLICT: _ClassVar[ErrorReason]
    BACKEND_REFUSED: _ClassVar[ErrorReason]
    NOT_GRPC: _ClassVar[ErrorReason]
    LEASE_NOT_FOUND: _ClassVar[ErrorReason]
    LEASE_PRIVATE: _ClassVar[ErrorReason]
    UNAUTHENTICATED: _ClassVar[ErrorReason]
    PERMISSION_DENIED: _ClassVar[ErrorReason]
    AUTH_RATE_LIMITED: _ClassVar[ErrorReason]
    NOT_SUPPORTED: _ClassVar[ErrorReason]

class ErrorTrailer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_TRAILER_UNSPECIFIED: _ClassVar[ErrorTrailer]
    KV_REASON: _ClassVar[ErrorTrailer]
    KV_CURRENT_REVISION: _ClassVar[ErrorTrailer]
    KV_OLDEST_REVISION: _ClassVar[ErrorTrailer]
    KV_RESUME_REVISION: _ClassVar[ErrorTrailer]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_PUT: EventType
EVENT_TYPE_DELETE: EventType
ERROR_REASON_UNSPECIFIED: ErrorReason
INVALID_KEY: ErrorReason
TOO_LARGE: ErrorReason
INVALID_VALUE: ErrorReason
INVALID_ARGUMENT: ErrorReason
REVISION_MISMATCH: ErrorReason
NOT_FOUND: ErrorReason
CLOSED: ErrorReason
FAILED: ErrorReason
CORRUPT: ErrorReason
LOCKED: ErrorReason
COMPACTED: ErrorReason
WATCH_TOO_SLOW: ErrorReason
UNAVAILABLE: ErrorReason
NOT_SENT: ErrorReason
CONFLICT: ErrorReason
BACKEND_REFUSED: ErrorReason
NOT_GRPC: ErrorReason
LEASE_NOT_FOUND: ErrorReason
LEASE_PRIVATE: ErrorReason
UNAUTHENTICATED: ErrorReason
PERMISSION_DENIED: ErrorReason
AUTH_RATE_LIMITED: ErrorReason
NOT_SUPPORTED: ErrorReason
ERROR_TRAILER_UNSPECIFIED: ErrorTrailer
KV_REASON: ErrorTrailer
KV_CURRENT_REVISION: ErrorTrailer
KV_OLDEST_REVISION: ErrorTrailer
KV_RESUME_REVISION: ErrorTrailer

class Entry(_message.Message):
    __slots__ = ("key", "value", "create_revision", "mod_revision", "version", "lease")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CREATE_REVISION_FIELD_NUMBER: _ClassVar[int]
    MOD_REVISION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Value
    create_revision: int
    mod_revision: int
    version: int
    lease: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., create_revision: _Optional[int] = ..., mod_revision: _Optional[int] = ..., version: _Optional[int] = ..., lease: _Optional[int] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: Entry
    def __init__(self, entry: _Optional[_Union[Entry, _Mapping]] = ...) -> None: ...

class SetRequest(_message.Message):
    __slots__ = ("key", "value", "expected_revision", "lease", "ttl_ms")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Value
    expected_revision: int
    lease: int
    ttl_ms: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., expected_revision: _Optional[int] = ..., lease: _Optional[int] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class SetResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("key", "expected_revision")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    key: str
    expected_revision: int
    def __init__(self, key: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted", "revision")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    revision: int
    def __init__(self, deleted: _Optional[bool] = ..., revision: _Optional[int] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("prefix", "page_size", "page_token")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    page_size: int
    page_token: str
    def __init__(self, prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token", "revision")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    revision: int
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class ClearRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class ClearResponse(_message.Message):
    __slots__ = ("deleted_count", "revision")
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    revision: int
    def __init__(self, deleted_count: _Optional[int] = ..., revision: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("key", "prefix", "start_revision", "prev_entry", "fragment")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    START_REVISION_FIELD_NUMBER: _ClassVar[int]
    PREV_ENTRY_FIELD_NUMBER: _ClassVar[int]
    FRAGMENT_FIELD_NUMBER: _ClassVar[int]
    key: str
    prefix: str
    start_revision: int
    prev_entry: bool
    fragment: bool
    def __init__(self, key: _Optional[str] = ..., prefix: _Optional[str] = ..., start_revision: _Optional[int] = ..., prev_entry: _Optional[bool] = ..., fragment: _Optional[bool] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("events", "revision", "fragment", "progress_interval_ms", "history_id")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    FRAGMENT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ID_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    revision: int
    fragment: bool
    progress_interval_ms: int
    history_id: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., revision: _Optional[int] = ..., fragment: _Optional[bool] = ..., progress_interval_ms: _Optional[int] = ..., history_id: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("type", "entry", "prev_entry")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PREV_ENTRY_FIELD_NUMBER: _ClassVar[int]
    type: EventType
    entry: Entry
    prev_entry: Entry
    def __init__(self, type: _Optional[_Union[EventType, str]] = ..., entry: _Optional[_Union[Entry, _Mapping]] = ..., prev_entry: _Optional[_Union[Entry, _Mapping]] = ...) -> None: ...

class Compare(_message.Message):
    __slots__ = ("result", "key", "version", "create_revision", "mod_revision", "value", "lease")
    class CompareResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        COMPARE_RESULT_UNSPECIFIED: _ClassVar[Compare.CompareResult]
        COMPARE_RESULT_EQUAL: _ClassVar[Compare.CompareResult]
        COMPARE_RESULT_NOT_EQUAL: _ClassVar[Compare.CompareResult]
        COMPARE_RESULT_LESS: _ClassVar[Compare.CompareResult]
        COMPARE_RESULT_GREATER: _ClassVar[Compare.CompareResult]
    COMPARE_RESULT_UNSPECIFIED: Compare.CompareResult
    COMPARE_RESULT_EQUAL: Compare.CompareResult
    COMPARE_RESULT_NOT_EQUAL: Compare.CompareResult
    COMPARE_RESULT_LESS: Compare.CompareResult
    COMPARE_RESULT_GREATER: Compare.CompareResult
    RESULT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_REVISION_FIELD_NUMBER: _ClassVar[int]
    MOD_REVISION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    result: Compare.CompareResult
    key: str
    version: int
    create_revision: int
    mod_revision: int
    value: _struct_pb2.Value
    lease: int
    def __init__(self, result: _Optional[_Union[Compare.CompareResult, str]] = ..., key: _Optional[str] = ..., version: _Optional[int] = ..., create_revision: _Optional[int] = ..., mod_revision: _Optional[int] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., lease: _Optional[int] = ...) -> None: ...

class RequestOp(_message.Message):
    __slots__ = ("get", "set", "delete", "clear", "update")
    GET_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    get: GetRequest
    set: SetRequest
    delete: DeleteRequest
    clear: ClearRequest
    update: UpdateRequest
    def __init__(self, get: _Optional[_Union[GetRequest, _Mapping]] = ..., set: _Optional[_Union[SetRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., clear: _Optional[_Union[ClearRequest, _Mapping]] = ..., update: _Optional[_Union[UpdateRequest, _Mapping]] = ...) -> None: ...

class ResponseOp(_message.Message):
    __slots__ = ("get", "set", "delete", "clear", "update")
    GET_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    get: GetResponse
    set: SetResponse
    delete: DeleteResponse
    clear: ClearResponse
    update: UpdateResponse
    def __init__(self, get: _Optional[_Union[GetResponse, _Mapping]] = ..., set: _Optional[_Union[SetResponse, _Mapping]] = ..., delete: _Optional[_Union[DeleteResponse, _Mapping]] = ..., clear: _Optional[_Union[ClearResponse, _Mapping]] = ..., update: _Optional[_Union[UpdateResponse, _Mapping]] = ...) -> None: ...

class TxnRequest(_message.Message):
    __slots__ = ("compare", "success", "failure")
    COMPARE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    compare: _containers.RepeatedCompositeFieldContainer[Compare]
    success: _containers.RepeatedCompositeFieldContainer[RequestOp]
    failure: _containers.RepeatedCompositeFieldContainer[RequestOp]
    def __init__(self, compare: _Optional[_Iterable[_Union[Compare, _Mapping]]] = ..., success: _Optional[_Iterable[_Union[RequestOp, _Mapping]]] = ..., failure: _Optional[_Iterable[_Union[RequestOp, _Mapping]]] = ...) -> None: ...

class TxnResponse(_message.Message):
    __slots__ = ("succeeded", "revision", "responses")
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    succeeded: bool
    revision: int
    responses: _containers.RepeatedCompositeFieldContainer[ResponseOp]
    def __init__(self, succeeded: _Optional[bool] = ..., revision: _Optional[int] = ..., responses: _Optional[_Iterable[_Union[ResponseOp, _Mapping]]] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ("key", "patch", "expected_revision", "create_if_missing")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    CREATE_IF_MISSING_FIELD_NUMBER: _ClassVar[int]
    key: str
    patch: _struct_pb2.Value
    expected_revision: int
    create_if_missing: bool
    def __init__(self, key: _Optional[str] = ..., patch: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., expected_revision: _Optional[int] = ..., create_if_missing: _Optional[bool] = ...) -> None: ...

class UpdateResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: Entry
    def __init__(self, entry: _Optional[_Union[Entry, _Mapping]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("prefix", "page_size", "page_token")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    page_size: int
    page_token: str
    def __init__(self, prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("entries", "next_page_token", "revision")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    next_page_token: str
    revision: int
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class GrantLeaseRequest(_message.Message):
    __slots__ = ("ttl_ms",)
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ttl_ms: int
    def __init__(self, ttl_ms: _Optional[int] = ...) -> None: ...

class GrantLeaseResponse(_message.Message):
    __slots__ = ("id", "ttl_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    ttl_ms: int
    def __init__(self, id: _Optional[int] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class KeepAliveRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class KeepAliveResponse(_message.Message):
    __slots__ = ("id", "ttl_ms", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    ttl_ms: int
    error: KeepAliveError
    def __init__(self, id: _Optional[int] = ..., ttl_ms: _Optional[int] = ..., error: _Optional[_Union[KeepAliveError, _Mapping]] = ...) -> None: ...

class KeepAliveError(_message.Message):
    __slots__ = ("code", "reason", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: ErrorReason
    message: str
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[_Union[ErrorReason, str]] = ..., message: _Optional[str] = ...) -> None: ...

class RevokeLeaseRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class RevokeLeaseResponse(_message.Message):
    __slots__ = ("deleted_count", "revision")
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    revision: int
    def __init__(self, deleted_count: _Optional[int] = ..., revision: _Optional[int] = ...) -> None: ...

class LeaseInfoRequest(_message.Message):
    __slots__ = ("id", "keys")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    id: int
    keys: bool
    def __init__(self, id: _Optional[int] = ..., keys: _Optional[bool] = ...) -> None: ...

class LeaseInfoResponse(_message.Message):
    __slots__ = ("id", "granted_ttl_ms", "remaining_ttl_ms", "keys")
    ID_FIELD_NUMBER: _ClassVar[int]
    GRANTED_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    id: int
    granted_ttl_ms: int
    remaining_ttl_ms: int
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[int] = ..., granted_ttl_ms: _Optional[int] = ..., remaining_ttl_ms: _Optional[int] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class ListLeasesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLeasesResponse(_message.Message):
    __slots__ = ("leases", "next_page_token")
    LEASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[LeaseStatus]
    next_page_token: str
    def __init__(self, leases: _Optional[_Iterable[_Union[LeaseStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class LeaseStatus(_message.Message):
    __slots__ = ("id", "granted_ttl_ms", "remaining_ttl_ms", "key_count", "private")
    ID_FIELD_NUMBER: _ClassVar[int]
    GRANTED_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_FIELD_NUMBER: _ClassVar[int]
    id: int
    granted_ttl_ms: int
    remaining_ttl_ms: int
    key_count: int
    private: bool
    def __init__(self, id: _Optional[int] = ..., granted_ttl_ms: _Optional[int] = ..., remaining_ttl_ms: _Optional[int] = ..., key_count: _Optional[int] = ..., private: _Optional[bool] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupResponse(_message.Message):
    __slots__ = ("header", "leases", "entries", "trailer")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TRAILER_FIELD_NUMBER: _ClassVar[int]
    header: BackupHeader
    leases: BackupLeases
    entries: BackupEntries
    trailer: BackupTrailer
    def __init__(self, header: _Optional[_Union[BackupHeader, _Mapping]] = ..., leases: _Optional[_Union[BackupLeases, _Mapping]] = ..., entries: _Optional[_Union[BackupEntries, _Mapping]] = ..., trailer: _Optional[_Union[BackupTrailer, _Mapping]] = ...) -> None: ...

class BackupHeader(_message.Message):
    __slots__ = ("format_version", "revision", "key_count", "lease_count", "created_at_ms")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    LEASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    revision: int
    key_count: int
    lease_count: int
    created_at_ms: int
    def __init__(self, format_version: _Optional[int] = ..., revision: _Optional[int] = ..., key_count: _Optional[int] = ..., lease_count: _Optional[int] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class BackupLeases(_message.Message):
    __slots__ = ("leases",)
    LEASES_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[BackupLease]
    def __init__(self, leases: _Optional[_Iterable[_Union[BackupLease, _Mapping]]] = ...) -> None: ...

class BackupLease(_message.Message):
    __slots__ = ("id", "ttl_ms", "private")
    ID_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_FIELD_NUMBER: _ClassVar[int]
    id: int
    ttl_ms: int
    private: bool
    def __init__(self, id: _Optional[int] = ..., ttl_ms: _Optional[int] = ..., private: _Optional[bool] = ...) -> None: ...

class BackupEntries(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[BackupEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[BackupEntry, _Mapping]]] = ...) -> None: ...

class BackupEntry(_message.Message):
    __slots__ = ("key", "value_json", "create_revision", "mod_revision", "version", "lease")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATE_REVISION_FIELD_NUMBER: _ClassVar[int]
    MOD_REVISION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value_json: str
    create_revision: int
    mod_revision: int
    version: int
    lease: int
    def __init__(self, key: _Optional[str] = ..., value_json: _Optional[str] = ..., create_revision: _Optional[int] = ..., mod_revision: _Optional[int] = ..., version: _Optional[int] = ..., lease: _Optional[int] = ...) -> None: ...

class BackupTrailer(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: bytes
    def __init__(self, sha256: _Optional[bytes] = ...) -> None: ...
