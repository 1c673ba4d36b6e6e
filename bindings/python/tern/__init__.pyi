# Type hints for the tern package (libtern for Python).  Timestamps (now)
# are int nanoseconds of a monotonic clock, None meaning time.monotonic_ns();
# durations are seconds (int or float).
import enum
import os
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional,
                    Protocol, Sequence, Tuple, Union, runtime_checkable, Callable)

__version__: str

Bytes = Union[bytes, bytearray, memoryview, str]
WritableBuffer = Union[bytearray, memoryview]
Attrs = Union[Mapping[str, str], Sequence[Tuple[str, str]], None]

MAX_ID: int
MAX_COLLAPSE_KEY: int
MAX_SESSION_KEY: int
MAX_TOKEN: int
MAX_ATTRS: int
MAX_ATTR_KEY: int
MAX_ATTR_VALUE: int
MAX_CONTENT_TYPE: int
MAX_TOPIC: int
MAX_FILTER: int
MAX_CAP: int
STORE_MAX_KEY: int
STORE_LATER: int
MAX_HOOK_TARGET: int
MAX_HOOK_SECRET: int
MAX_HOOK_OBJECT: int
MAX_HOOK_KEY: int
MAX_HOOK_FIELDS: int
MAX_HOOK_FIELD: int
HOOK_NO_ANSWER: int
CONN_PEEK_MAX: int

# ---- enums -------------------------------------------------------------------

class ErrorCode(enum.IntEnum):
    INVALID: int
    NOMEM: int
    TOO_LARGE: int
    DUPLICATE: int
    FULL: int
    NOT_FOUND: int
    PROTO: int
    CLOSED: int
    STORE: int
    LIMIT: int
    STATE: int

class Priority(enum.IntEnum):
    LOW: int
    NORMAL: int
    HIGH: int

class Overflow(enum.IntEnum):
    EVICT: int
    REFUSE: int
    REJECT: int

class Framing(enum.IntEnum):
    BINARY: int
    SSE: int
    NDJSON: int
    POLL: int
    WS_BIN: int
    WS_JSON: int

class EventType(enum.IntEnum):
    ACCEPTED: int
    SENT: int
    ACKED: int
    EXPIRED: int
    COLLAPSED: int
    EVICTED: int
    DEAD: int
    CONN_HELLO: int
    CONN_DEAD: int
    CONN_CLOSED: int
    SESSION_EXPIRED: int
    PERSISTED: int
    STORE_FAILED: int
    CANCELED: int
    FALLBACK: int
    HOOK_DROPPED: int
    HOOK_DISABLED: int
    HOOK_VERIFIED: int

class HookKind(enum.IntEnum):
    DELIVERY: int
    CHALLENGE: int

class HookState(enum.IntFlag):
    VERIFIED: int
    DISABLED: int

class ClientEventType(enum.IntEnum):
    CONNECT: int
    CONNECTED: int
    MESSAGE: int
    GAP: int
    RESYNC: int
    DISCONNECTED: int
    GIVE_UP: int
    PUBACK: int

class GoawayReason(enum.IntEnum):
    RESTART: int
    PROTO: int
    TOO_LARGE: int
    TIMEOUT: int
    REJECTED: int
    LIMIT: int
    INTERNAL: int
    CLIENT: int
    REPLACED: int
    DONE: int
    TRANSPORT_LOST: int

class DropReason(enum.IntEnum):
    EXPIRED: int
    OVERFLOW: int
    DEAD: int
    RETENTION: int

class ResyncReason(enum.IntEnum):
    EPOCH: int
    SESSION: int

class PubackStatus(enum.IntEnum):
    ACCEPTED: int
    PERSISTED: int
    DUPLICATE: int
    FULL: int
    INVALID: int
    TOO_LARGE: int
    NOT_FOUND: int
    LIMIT: int
    INTERNAL: int
    STORE: int

class PublishOutcome(enum.IntFlag):
    QUEUED: int
    REPLACED: int
    EVICTED: int
    REFUSED: int
    REJECTED: int

class StoreOp(enum.IntEnum):
    SET: int
    DEL: int

class FsyncPolicy(enum.IntEnum):
    BATCH: int
    ALWAYS: int
    NEVER: int

# ---- exceptions --------------------------------------------------------------

class Error(Exception):
    default_code: int
    code: Union[ErrorCode, int]
    message: str
    def __init__(self, message: str = ..., code: Optional[int] = ...) -> None: ...

class InvalidError(Error, ValueError):
    position: int  # set by topic_pattern_check and filter_check
class NoMemoryError(Error, MemoryError): ...
class TooLargeError(Error, ValueError):
    position: int
    index: int  # set by Hub.publish_batch
class DuplicateError(Error):
    id: bytes
class FullError(Error):
    id: bytes
    outcome: PublishOutcome
    retry_after: float
class NotFoundError(Error, LookupError): ...
class ProtocolError(Error): ...
class ClosedError(Error): ...
class StoreError(Error): ...
class LimitError(Error): ...
class StateError(Error): ...

# ---- results -----------------------------------------------------------------

class PublishResult(NamedTuple):
    id: bytes
    outcome: PublishOutcome
    evicted: int
    retry_after: float

class Event(NamedTuple):
    type: Union[EventType, int]
    reason: int  # DropReason, GoawayReason or an ErrorCode, by type
    conn: Optional[Conn]
    session_key: Optional[bytes]
    msg_id: Optional[bytes]
    aux: Optional[bytes]
    seq: int
    count: int
    cookie: Any  # the publish's cookie; SESSION_EXPIRED: the session's data

class Stats(NamedTuple):
    published: int
    duplicates: int
    collapsed: int
    evicted: int
    refused: int
    rejected: int
    expired: int
    dead: int
    sent: int
    resent: int
    acked: int
    dropped_notices: int
    sessions_created: int
    sessions_expired: int
    conns_opened: int
    conns_dead: int
    proto_errors: int
    events_lost: int
    bytes_in: int
    bytes_out: int
    sessions: int
    conns: int
    messages: int
    message_bytes: int
    inflight: int
    store_batches: int
    sessions_deleted: int
    canceled: int
    topics: int
    members: int
    topic_messages: int
    topic_bytes: int
    policy_holds: int
    policy_releases: int
    fallbacks: int
    fallback_acked: int
    accepts_deferred: int

class SessionInfo(NamedTuple):
    key: bytes
    pending: int
    inflight: int
    pending_bytes: int
    conns: int
    next_seq: int
    dropped: int
    expires: Optional[int]

class ConnInfo(NamedTuple):
    closed: bool
    inflight: int
    rtt: float
    heartbeat_interval: float
    liveness_timeout: float
    error: int

class TopicInfo(NamedTuple):
    name: str
    first_offset: int
    end_offset: int
    messages: int
    bytes: int
    members: int

class Receipt(NamedTuple):
    offset: int
    subscribed: int
    sent: int
    acked: int

class ClientEvent(NamedTuple):
    type: Union[ClientEventType, int]
    reason: int  # DropReason, GoawayReason, PubackStatus or ResyncReason
    seq: int
    count: int
    priority: int
    ttl: float
    retry_after: float
    id: Optional[bytes]
    collapse_key: Optional[bytes]
    content_type: Optional[str]
    payload: Optional[bytes]
    attrs: Optional[Dict[str, str]]

class ClientStats(NamedTuple):
    received: int
    delivered: int
    duplicates: int
    gaps: int
    resyncs: int
    reconnects: int
    acks_sent: int
    rtt: float
    heartbeat_interval: float

class FileStoreStats(NamedTuple):
    records: int
    live: int
    bytes: int
    garbage_bytes: int
    segments: int
    skipped: int
    truncated: int
    compactions: int
    fsyncs: int
    skipped_bytes: int
    index_bytes: int
    compact_failures: int
    skipped_files: int

class HookInfo(NamedTuple):
    id: int
    state: HookState
    failures: int
    target: bytes
    queued: int
    queued_bytes: int
    outstanding: int
    delivered: int
    dropped: int
    attempts: int

class HookRequest(NamedTuple):
    kind: HookKind
    hook: int
    delivery: int
    attempt: int
    entries: int
    method: str
    target: bytes
    query: str
    body: bytes
    headers: Dict[str, str]
    timestamp: int

# ---- functions -----------------------------------------------------------------

def strerror(code: int) -> str: ...
def err_is_fatal(code: int) -> bool: ...
def version() -> str: ...
def version_info() -> Tuple[int, int, int]: ...
def shard_of(key: Bytes, nshards: int) -> int: ...
def topic_pattern_check(pattern: Union[str, bytes]) -> None: ...
def filter_check(text: Union[str, bytes]) -> None: ...
def parse_resume(text: Union[str, bytes]) -> Tuple[int, int]: ...
def framing_content_type(framing: int) -> Optional[str]: ...
def check_hook_signature(secret: Bytes, timestamp: Union[Bytes, int], signature: Bytes,
                         body: Optional[Bytes], *, now_s: Optional[int] = ...,
                         tolerance: float = ...) -> None: ...
def check_hook_challenge(query: Bytes, token: Optional[Bytes] = ...) -> str: ...

# ---- stores ------------------------------------------------------------------

Record = Tuple[int, bytes, bytes]  # (StoreOp, key, value)

@runtime_checkable
class Store(Protocol):
    def append(self, batch: int, records: List[Record], sync: bool) -> Optional[int]: ...
    def load(self) -> Iterable[Tuple[bytes, bytes]]: ...

class DictStore:
    data: Dict[bytes, bytes]
    batches: int
    syncs: int
    def __init__(self, data: Optional[Dict[bytes, bytes]] = ...) -> None: ...
    def append(self, batch: int, records: List[Record], sync: bool) -> None: ...
    def load(self) -> Iterable[Tuple[bytes, bytes]]: ...
    def sync(self) -> None: ...

class FileStore:
    def __init__(self, path: Union[str, bytes, "os.PathLike[str]"], *, fsync: int = ...,
                 strict: bool = ..., segment_size: int = ..., compact_garbage: int = ...,
                 sync_thread: bool = ...) -> None: ...
    @property
    def fd(self) -> int: ...
    @property
    def error(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> Optional[str]: ...
    def close(self) -> None: ...
    def stats(self) -> FileStoreStats: ...
    def complete(self) -> int: ...
    def sync(self) -> None: ...
    def compact(self) -> None: ...
    def __enter__(self) -> FileStore: ...
    def __exit__(self, *exc: Any) -> None: ...

# ---- hub ---------------------------------------------------------------------

class Conn:
    data: Any
    @property
    def want_write(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def released(self) -> bool: ...
    @property
    def session_key(self) -> Optional[bytes]: ...
    @property
    def framing(self) -> Framing: ...
    @property
    def content_type(self) -> Optional[str]: ...
    @property
    def hub(self) -> Hub: ...
    def read(self, data: Bytes, *, now: Optional[int] = ...) -> int: ...
    def write(self, size: int = ..., *, now: Optional[int] = ...) -> bytes: ...
    def write_into(self, buffer: WritableBuffer, *, now: Optional[int] = ...) -> int: ...
    def peek_output(self, *, now: Optional[int] = ...) -> bytes: ...
    def consume(self, n: int) -> None: ...
    def accept(self, *, now: Optional[int] = ...) -> None: ...
    def goaway(self, reason: int = ..., retry_after: float = ..., *,
               now: Optional[int] = ...) -> None: ...
    def allow_publish(self, allow: bool = ...) -> None: ...
    def info(self) -> ConnInfo: ...
    def close(self) -> None: ...
    def __enter__(self) -> Conn: ...
    def __exit__(self, *exc: Any) -> None: ...

class Session:
    hub: Hub
    key: bytes
    def __init__(self, hub: Hub, key: Bytes) -> None: ...
    @property
    def exists(self) -> bool: ...
    def info(self) -> SessionInfo: ...
    data: Any
    def publish(self, payload: Bytes, **kw: Any) -> PublishResult: ...
    def publish_batch(self, payloads: Iterable[Bytes], **kw: Any) -> int: ...
    def set_policy(self, **kw: Any) -> None: ...
    def clear_policy(self, **kw: Any) -> None: ...
    def ack(self, seq: int, **kw: Any) -> int: ...
    def cancel(self, id: Bytes, **kw: Any) -> bool: ...
    def purge(self, unsent_only: bool = ..., **kw: Any) -> int: ...
    def delete(self, **kw: Any) -> None: ...
    def subscribe(self, pattern: str, filter: Optional[str] = ..., **kw: Any) -> int: ...
    def unsubscribe(self, pattern: str, *, now: Optional[int] = ...) -> int: ...

class Topic:
    hub: Hub
    name: str
    def __init__(self, hub: Hub, name: str) -> None: ...
    @property
    def exists(self) -> bool: ...
    def publish(self, payload: Bytes, *, id: Optional[Bytes] = ...,
                collapse_key: Optional[Bytes] = ..., priority: int = ..., ttl: float = ...,
                content_type: Optional[str] = ..., attrs: Attrs = ..., volatile: bool = ...,
                cookie: int = ..., now: Optional[int] = ...) -> int: ...
    def info(self) -> TopicInfo: ...
    def receipt(self, offset: int) -> Receipt: ...
    def delete(self, *, now: Optional[int] = ...) -> None: ...

class Hook:
    hub: Hub
    id: int
    def __init__(self, hub: Hub, id: int) -> None: ...
    def __int__(self) -> int: ...
    @property
    def exists(self) -> bool: ...
    def info(self) -> HookInfo: ...
    def enqueue(self, key: Bytes, fields: Iterable[Union[str, bytes]] = ..., *,
                time: Optional[int] = ..., data: Optional[Bytes] = ...,
                now: Optional[int] = ...) -> None: ...
    def remove(self) -> None: ...
    def enable(self, *, now: Optional[int] = ...) -> None: ...
    def verify(self, *, now: Optional[int] = ...) -> None: ...

HookAnswerTo = Union[HookRequest, Tuple[int, int]]

class Hub:
    def __init__(self, *, max_payload: int = ..., max_sessions: int = ..., max_conns: int = ...,
                 inflight_window: int = ..., max_pending: int = ...,
                 max_pending_bytes: int = ..., overflow: Sequence[int] = ...,
                 retry_after: float = ..., default_ttl: float = ...,
                 heartbeat_interval: float = ..., liveness_timeout: float = ...,
                 max_heartbeat: float = ..., session_ttl: float = ...,
                 dedup_window: float = ..., ack_timeout: float = ..., max_deliver: int = ...,
                 max_events: int = ..., seed: int = ..., trace: bool = ...,
                 hello_accept: bool = ..., max_pool_bytes: int = ..., topic_rate: int = ...,
                 topic_burst: int = ..., accept_rate: int = ..., accept_burst: int = ...,
                 accept_max_retry: float = ...) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def epoch(self) -> int: ...
    @property
    def expiry(self) -> Optional[int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Hub: ...
    def __exit__(self, *exc: Any) -> None: ...
    def handle_expiry(self, now: Optional[int] = ...) -> None: ...
    def next_ready(self) -> Optional[Conn]: ...
    def ready(self) -> Iterator[Conn]: ...
    def goaway_all(self, reason: int = ..., max_retry: float = ..., *,
                   now: Optional[int] = ...) -> int: ...
    def stats(self) -> Stats: ...
    def next_event(self) -> Optional[Event]: ...
    def events(self) -> Iterator[Event]: ...
    def publish(self, key: Bytes, payload: Bytes, *, id: Optional[Bytes] = ...,
                collapse_key: Optional[Bytes] = ..., priority: int = ..., ttl: float = ...,
                content_type: Optional[str] = ..., attrs: Attrs = ..., sync: bool = ...,
                volatile: bool = ..., trace: bool = ..., cookie: int = ...,
                fallback: float = ..., now: Optional[int] = ...) -> PublishResult: ...
    def publish_batch(self, key: Bytes, payloads: Sequence[Bytes], *,
                      collapse_key: Optional[Bytes] = ..., priority: int = ...,
                      ttl: float = ..., content_type: Optional[str] = ..., attrs: Attrs = ...,
                      sync: bool = ..., volatile: bool = ..., trace: bool = ...,
                      cookie: int = ..., fallback: float = ...,
                      now: Optional[int] = ...) -> int: ...
    def publish_many(self, keys: Sequence[Bytes], payload: Bytes, *, id: Optional[Bytes] = ...,
                     collapse_key: Optional[Bytes] = ..., priority: int = ..., ttl: float = ...,
                     content_type: Optional[str] = ..., attrs: Attrs = ..., sync: bool = ...,
                     volatile: bool = ..., trace: bool = ..., cookie: int = ...,
                     fallback: float = ...,
                     now: Optional[int] = ...) -> Tuple[int, bytes, Dict[bytes, ErrorCode]]: ...
    def session(self, key: Bytes) -> Session: ...
    def sessions(self) -> Iterator[Session]: ...
    def session_info(self, key: Bytes) -> SessionInfo: ...
    def has_session(self, key: Bytes) -> bool: ...
    def session_keys(self) -> List[bytes]: ...
    def session_data(self, key: Bytes) -> Any: ...
    def set_session_data(self, key: Bytes, data: Any) -> None: ...
    def delete_session(self, key: Bytes, *, now: Optional[int] = ...) -> None: ...
    def purge_session(self, key: Bytes, *, unsent_only: bool = ...,
                      now: Optional[int] = ...) -> int: ...
    def cancel(self, key: Bytes, id: Bytes, *, now: Optional[int] = ...) -> bool: ...
    def ack(self, key: Bytes, seq: int, *, now: Optional[int] = ...) -> int: ...
    def subscribe(self, key: Bytes, pattern: Union[str, bytes],
                  filter: Union[str, bytes, None] = ..., *, now: Optional[int] = ...) -> int: ...
    def unsubscribe(self, key: Bytes, pattern: Union[str, bytes], *,
                    now: Optional[int] = ...) -> int: ...
    def create_topic(self, name: str, *, now: Optional[int] = ..., max_messages: int = ...,
                     max_bytes: int = ..., max_age: float = ..., rate: int = ...,
                     burst: int = ...) -> Topic: ...
    def topic(self, name: str) -> Topic: ...
    def open_conn(self, *, now: Optional[int] = ...) -> Conn: ...
    def open_stream(self, key: Bytes, framing: int = ..., *, resume_epoch: int = ...,
                    resume_seq: int = ..., heartbeat_interval: float = ..., retry: float = ...,
                    poll_hold: float = ..., now: Optional[int] = ...) -> Conn: ...
    def set_store(self, store: Union[FileStore, Store], *, now: Optional[int] = ...) -> None: ...
    def set_wallclock(self, now: Optional[int] = ..., wall_ns: Optional[int] = ...) -> None: ...
    def set_policy(self, key: Bytes, *, quiet_start: Optional[int] = ...,
                   quiet_end: Optional[int] = ..., utc_offset: int = ..., zone: int = ...,
                   cap_count: int = ..., cap_window: float = ...,
                   now: Optional[int] = ...) -> None: ...
    def clear_policy(self, key: Bytes, *, now: Optional[int] = ...) -> None: ...
    def set_zone_callback(self, fn: Optional[Callable[[int, int], int]]) -> None: ...
    def flush(self) -> None: ...
    def store_done(self, batch: int, status: int = ...) -> None: ...
    def add_hook(self, target: Bytes, secret: Bytes, *, verify_token: Optional[Bytes] = ...,
                 object: Optional[str] = ..., verified: bool = ..., coalesce: bool = ...,
                 now: Optional[int] = ..., max_items: int = ..., max_attempts: int = ...,
                 max_bytes: int = ..., max_delay: float = ..., retry_base: float = ...,
                 retry_cap: float = ..., disable_after: int = ..., max_inflight: int = ...,
                 max_queued: int = ...) -> Hook: ...
    def hook(self, id: int) -> Hook: ...
    def hooks(self) -> Iterator[Hook]: ...
    def hook_ids(self) -> List[int]: ...
    def has_hook(self, id: int) -> bool: ...
    def hook_info(self, id: int) -> HookInfo: ...
    def remove_hook(self, id: int) -> None: ...
    def enable_hook(self, id: int, *, now: Optional[int] = ...) -> None: ...
    def verify_hook(self, id: int, *, now: Optional[int] = ...) -> None: ...
    def hook_enqueue(self, id: int, key: Bytes, fields: Iterable[Union[str, bytes]] = ..., *,
                     time: Optional[int] = ..., data: Optional[Bytes] = ...,
                     now: Optional[int] = ...) -> None: ...
    def next_hook_request(self, now: Optional[int] = ...) -> Optional[HookRequest]: ...
    def hook_requests(self, now: Optional[int] = ...) -> Iterator[HookRequest]: ...
    def hook_done(self, request: HookAnswerTo, status: Optional[int], *,
                  retry_after: Union[str, bytes, int, None] = ...,
                  body: Optional[Bytes] = ..., now: Optional[int] = ...) -> None: ...

# ---- client ------------------------------------------------------------------

class Client:
    def __init__(self, key: Bytes, token: Optional[Bytes] = ..., *, now: Optional[int] = ...,
                 heartbeat_interval: float = ..., liveness_timeout: float = ...,
                 ack_every: int = ..., ack_delay: float = ..., manual_ack: bool = ...,
                 dedup_max: int = ..., dedup_window: float = ..., backoff_base: float = ...,
                 backoff_cap: float = ..., max_attempts: int = ...,
                 adaptive_heartbeat: bool = ..., heartbeat_cap: float = ..., seed: int = ...,
                 max_payload: int = ...) -> None: ...
    @property
    def want_write(self) -> bool: ...
    @property
    def expiry(self) -> Optional[int]: ...
    @property
    def released(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(self, *exc: Any) -> None: ...
    def connect(self, *, now: Optional[int] = ...) -> None: ...
    def conn_lost(self, *, now: Optional[int] = ...) -> None: ...
    def close(self, *, now: Optional[int] = ...) -> None: ...
    def handle_expiry(self, *, now: Optional[int] = ...) -> None: ...
    def read(self, data: Bytes, *, now: Optional[int] = ...) -> int: ...
    def write(self, size: int = ..., *, now: Optional[int] = ...) -> bytes: ...
    def write_into(self, buffer: WritableBuffer, *, now: Optional[int] = ...) -> int: ...
    def peek_output(self, *, now: Optional[int] = ...) -> bytes: ...
    def consume(self, n: int) -> None: ...
    def ack(self, seq: int, *, now: Optional[int] = ...) -> None: ...
    def next_event(self) -> Optional[ClientEvent]: ...
    def publish(self, target: Bytes, payload: Bytes, *, topic: bool = ...,
                id: Optional[Bytes] = ..., collapse_key: Optional[Bytes] = ...,
                priority: int = ..., ttl: float = ..., content_type: Optional[str] = ...,
                attrs: Attrs = ..., sync: bool = ..., volatile: bool = ...,
                now: Optional[int] = ...) -> int: ...
    def save_state(self) -> bytes: ...
    def restore_state(self, state: Bytes, *, now: Optional[int] = ...) -> None: ...
    def stats(self) -> ClientStats: ...

# ---- libtern-posix (Linux builds; HAVE_POSIX says whether it is there) ----

HAVE_POSIX: bool
TOKEN_MAX: int

def token_make(secret: Bytes, session: Bytes, expiry: int) -> str: ...
def token_check(token: Bytes, secret: Bytes, session: Bytes, *,
                now: Optional[int] = ...) -> None: ...

class PublishDone(NamedTuple):
    worker: int
    cookie: int
    error: Optional[ErrorCode]
    @property
    def ok(self) -> bool: ...

class Request:
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def worker(self) -> int: ...
    @property
    def answered(self) -> bool: ...
    def header(self, name: str, default: Any = ...) -> Optional[str]: ...
    def param(self, name: str, default: Any = ...) -> Optional[str]: ...
    def params(self) -> List[Tuple[str, str]]: ...
    def respond(self, status: int, body: Optional[Bytes] = ..., *,
                content_type: Optional[str] = ...,
                headers: Union[Mapping[str, str], Sequence[Tuple[str, str]], None] = ...) -> None: ...
    def respond_error(self, status: int, message: Optional[str] = ..., *,
                      headers: Union[Mapping[str, str], Sequence[Tuple[str, str]], None] = ...) -> None: ...
    def respond_stream(self, session: Bytes, framing: int = ..., *,
                       resume: Union[str, bytes, Tuple[int, int], None] = ...,
                       heartbeat_interval: Optional[float] = ..., retry: Optional[float] = ...,
                       poll_hold: Optional[float] = ...,
                       headers: Union[Mapping[str, str], Sequence[Tuple[str, str]], None] = ...) -> None: ...
    def respond_websocket(self, session: Optional[Bytes] = ..., framing: int = ..., *,
                          resume: Union[str, bytes, Tuple[int, int], None] = ...,
                          heartbeat_interval: Optional[float] = ..., retry: Optional[float] = ...,
                          poll_hold: Optional[float] = ...,
                          headers: Union[Mapping[str, str], Sequence[Tuple[str, str]], None] = ...) -> bool: ...

class Workers:
    def __init__(self, threads: int = ..., *, events: Iterable[int] = ...,
                 token_secret: Optional[Bytes] = ..., max_queue: int = ...,
                 out_cap: int = ..., **settings: Any) -> None: ...
    @property
    def count(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def running(self) -> bool: ...
    @property
    def dropped(self) -> int: ...
    def __enter__(self) -> Workers: ...
    def __exit__(self, *exc: Any) -> None: ...
    def listen(self, host: Optional[str] = ..., port: int = ...) -> int: ...
    def serve_http(self, handler: Callable[[Request], Any], host: Optional[str] = ...,
                   port: int = ..., *, max_target: int = ..., max_head: int = ...,
                   max_headers: int = ..., max_body: int = ...,
                   request_timeout: float = ..., idle_timeout: float = ...) -> int: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...
    def publish(self, session: Bytes, payload: Bytes, *, id: Optional[Bytes] = ...,
                collapse_key: Optional[Bytes] = ..., priority: int = ..., ttl: float = ...,
                content_type: Optional[str] = ..., attrs: Attrs = ..., sync: bool = ...,
                volatile: bool = ..., trace: bool = ..., cookie: int = ...,
                fallback: Optional[float] = ...) -> None: ...
    def next_result(self) -> Optional[PublishDone]: ...
    def results(self) -> Iterator[PublishDone]: ...
    def next_event(self) -> Optional[Tuple[int, Event]]: ...
    def events(self) -> Iterator[Tuple[int, Event]]: ...
    def fileno(self) -> int: ...
    def shard_of(self, session: Bytes) -> int: ...
    def stats(self, worker: int) -> Stats: ...
    def http_stats(self) -> Optional[Dict[str, int]]: ...
