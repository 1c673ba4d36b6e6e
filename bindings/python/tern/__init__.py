"""libtern for Python: an embeddable push-delivery engine.

The core is sans-I/O: a Hub never opens a socket, starts a thread or reads
a clock.  You pass bytes and the time in (``Conn.read``, ``now=``), and
pull bytes and events out (``Conn.write``/``Conn.write_into``, or
``Conn.peek_output`` + ``Conn.consume`` for a socket that takes only part;
``Hub.next_event``).  Timestamps (``now``) are integers in nanoseconds of
a monotonic clock (``time.monotonic_ns()``, the default when omitted);
durations (``ttl``, ``retry_after``, settings) are seconds, int or float.

Objects that own native memory (Hub, Conn, Client, FileStore) release it
in ``close()`` (``Client.release()``) or at the end of a ``with`` block; a
Conn keeps its Hub alive, and a closed Hub makes its Conns raise
ClosedError.  Session and Topic are handles by key and name.

Every failure of the C library raises a subclass of :class:`Error`
carrying the C error ``code`` and its ``message``.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Iterable, Iterator, List, Optional, Protocol, Tuple, Union, runtime_checkable

try:
    from . import _tern
except ImportError as e:  # the source tree, not the build or install tree
    raise ImportError(
        "tern: the native module tern._tern is missing next to " + __file__ +
        ": import the built package (PYTHONPATH=<builddir>/bindings/python) "
        "or an installed one") from e
from ._tern import (
    Client,
    ClientEvent,
    ClientStats,
    Conn,
    ConnInfo,
    Event,
    FileStore,
    FileStoreStats,
    HookInfo,
    HookRequest,
    PublishResult,
    Receipt,
    SessionInfo,
    Stats,
    TopicInfo,
    check_hook_challenge,
    check_hook_signature,
    err_is_fatal,
    filter_check,
    framing_content_type,
    parse_resume,
    shard_of,
    strerror,
    topic_pattern_check,
    version,
    version_info,
)

__version__ = _tern.HEADER_VERSION

#: True when the binding was built with libtern-posix (Linux): token_make,
#: token_check, Workers and Request exist.
HAVE_POSIX = hasattr(_tern, "Workers")

MAX_ID = _tern.MAX_ID
MAX_COLLAPSE_KEY = _tern.MAX_COLLAPSE_KEY
MAX_SESSION_KEY = _tern.MAX_SESSION_KEY
MAX_TOKEN = _tern.MAX_TOKEN
MAX_ATTRS = _tern.MAX_ATTRS
MAX_ATTR_KEY = _tern.MAX_ATTR_KEY
MAX_ATTR_VALUE = _tern.MAX_ATTR_VALUE
MAX_CONTENT_TYPE = _tern.MAX_CONTENT_TYPE
MAX_TOPIC = _tern.MAX_TOPIC
MAX_FILTER = _tern.MAX_FILTER
MAX_CAP = _tern.MAX_CAP
STORE_MAX_KEY = _tern.STORE_MAX_KEY
STORE_LATER = _tern.STORE_LATER
MAX_HOOK_TARGET = _tern.MAX_HOOK_TARGET
MAX_HOOK_SECRET = _tern.MAX_HOOK_SECRET
MAX_HOOK_OBJECT = _tern.MAX_HOOK_OBJECT
MAX_HOOK_KEY = _tern.MAX_HOOK_KEY
MAX_HOOK_FIELDS = _tern.MAX_HOOK_FIELDS
MAX_HOOK_FIELD = _tern.MAX_HOOK_FIELD
HOOK_NO_ANSWER = _tern.HOOK_NO_ANSWER
#: The most bytes one Conn.peek_output returns.
CONN_PEEK_MAX = _tern.CONN_PEEK_MAX

Bytes = Union[bytes, bytearray, memoryview, str]

# ---- enums ------------------------------------------------------------------


class ErrorCode(enum.IntEnum):
    """The C library's error codes (tern_error)."""

    INVALID = -501
    NOMEM = -502
    TOO_LARGE = -503
    DUPLICATE = -504
    FULL = -505
    NOT_FOUND = -506
    PROTO = -507
    CLOSED = -508
    STORE = -509
    LIMIT = -510
    STATE = -511


class Priority(enum.IntEnum):
    """A message's priority: HIGH is sent before NORMAL before LOW."""

    LOW = 0
    NORMAL = 1
    HIGH = 2


class Overflow(enum.IntEnum):
    """What a full session does with a new message (Hub(overflow=...))."""

    EVICT = 0
    REFUSE = 1
    REJECT = 2


class Framing(enum.IntEnum):
    """What a connection speaks."""

    BINARY = 0
    SSE = 1
    NDJSON = 2
    POLL = 3
    WS_BIN = 4
    WS_JSON = 5


class EventType(enum.IntEnum):
    """The type of a hub Event.

    The web-hook events (HOOK_*) are duty events: ``seq`` is the hook's
    id, ``cookie`` the delivery id (0 for HOOK_DISABLED).  HOOK_DROPPED:
    a batch was given up, ``count`` entries lost, ``reason`` the last HTTP
    status (0: no answer).  HOOK_DISABLED: ``count`` batches in a row
    failed, the hook sends nothing until Hub.enable_hook.  HOOK_VERIFIED:
    a challenge ended, ``reason`` 0 (verified), ErrorCode.PROTO (a wrong
    answer, or a status that gives up) or ErrorCode.LIMIT (no answer
    within max_attempts).

    FALLBACK (a duty event): a message published with ``fallback=`` was
    not acked within that span.  ``msg_id`` is its id, ``session_key``
    its session, ``aux`` its payload (bytes), ``seq`` its last seq (0:
    never sent), ``count`` its sends so far, ``cookie`` its cookie.  The
    message stays queued; hand the payload to another channel.
    """

    ACCEPTED = 1
    SENT = 2
    ACKED = 3
    EXPIRED = 4
    COLLAPSED = 5
    EVICTED = 6
    DEAD = 7
    CONN_HELLO = 8
    CONN_DEAD = 9
    CONN_CLOSED = 10
    SESSION_EXPIRED = 11
    PERSISTED = 12
    STORE_FAILED = 13
    CANCELED = 14
    FALLBACK = 15
    HOOK_DROPPED = 32
    HOOK_DISABLED = 33
    HOOK_VERIFIED = 34


class HookKind(enum.IntEnum):
    """What a HookRequest asks for."""

    DELIVERY = 1   # POST the body to the target with the headers
    CHALLENGE = 2  # GET the target with "?" and the query appended


class HookState(enum.IntFlag):
    """The bits of HookInfo.state."""

    VERIFIED = 0x1
    DISABLED = 0x2


class ClientEventType(enum.IntEnum):
    """The type of a ClientEvent."""

    CONNECT = 1
    CONNECTED = 2
    MESSAGE = 3
    GAP = 4
    RESYNC = 5
    DISCONNECTED = 6
    GIVE_UP = 7
    PUBACK = 8


class GoawayReason(enum.IntEnum):
    """Why a connection was closed (GOAWAY, CONN_CLOSED, DISCONNECTED)."""

    RESTART = 0
    PROTO = 1
    TOO_LARGE = 2
    TIMEOUT = 3
    REJECTED = 4
    LIMIT = 5
    INTERNAL = 6
    CLIENT = 7
    REPLACED = 8
    DONE = 9
    TRANSPORT_LOST = 256


class DropReason(enum.IntEnum):
    """Why messages were lost (EXPIRED, EVICTED, DEAD events; GAP)."""

    EXPIRED = 1
    OVERFLOW = 2
    DEAD = 3
    RETENTION = 4


class ResyncReason(enum.IntEnum):
    """Why a client's stream restarted (RESYNC)."""

    EPOCH = 1
    SESSION = 2


class PubackStatus(enum.IntEnum):
    """The outcome of a Client.publish (PUBACK events' reason)."""

    ACCEPTED = 0
    PERSISTED = 1
    DUPLICATE = 2
    FULL = 3
    INVALID = 4
    TOO_LARGE = 5
    NOT_FOUND = 6
    LIMIT = 7
    INTERNAL = 8
    STORE = 9


class PublishOutcome(enum.IntFlag):
    """The bits of PublishResult.outcome."""

    QUEUED = 0x1
    REPLACED = 0x2
    EVICTED = 0x4
    REFUSED = 0x8
    REJECTED = 0x10


class StoreOp(enum.IntEnum):
    """What a store record does to its key."""

    SET = 1
    DEL = 2


class FsyncPolicy(enum.IntEnum):
    """When the FileStore calls fsync."""

    BATCH = 0
    ALWAYS = 1
    NEVER = 2


# ---- exceptions -------------------------------------------------------------


class Error(Exception):
    """A libtern call failed.  ``code`` is the C error code (ErrorCode),
    ``message`` its description."""

    default_code = 0

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        super().__init__(message)
        if code is None:
            code = self.default_code
        try:
            code = ErrorCode(code)
        except ValueError:
            pass
        self.code = code
        self.message = message

    def __reduce__(self):  # picklable with its code
        return (type(self), (self.message, int(self.code)))


class InvalidError(Error, ValueError):
    """An argument is out of range or malformed (TERN_ERR_INVALID)."""

    default_code = ErrorCode.INVALID


class NoMemoryError(Error, MemoryError):
    """The allocator failed; the call changed nothing (TERN_ERR_NOMEM)."""

    default_code = ErrorCode.NOMEM


class TooLargeError(Error, ValueError):
    """A key, id, payload or frame is over its limit (TERN_ERR_TOO_LARGE)."""

    default_code = ErrorCode.TOO_LARGE


class DuplicateError(Error):
    """The id was published within the dedup window (TERN_ERR_DUPLICATE);
    ``id`` is set by Hub.publish."""

    default_code = ErrorCode.DUPLICATE


class FullError(Error):
    """The session's overflow rule refused or rejected the message
    (TERN_ERR_FULL); Hub.publish sets ``outcome`` and ``retry_after``."""

    default_code = ErrorCode.FULL


class NotFoundError(Error, LookupError):
    """No such session, topic, message or offset (TERN_ERR_NOT_FOUND)."""

    default_code = ErrorCode.NOT_FOUND


class ProtocolError(Error):
    """The peer broke the protocol; the connection is closed."""

    default_code = ErrorCode.PROTO


class ClosedError(Error):
    """The connection, hub, client or store is closed (TERN_ERR_CLOSED)."""

    default_code = ErrorCode.CLOSED


class StoreError(Error):
    """A store failed (TERN_ERR_STORE); a Python store's own exception is
    chained as ``__cause__``."""

    default_code = ErrorCode.STORE


class LimitError(Error):
    """max_sessions or max_conns was reached (TERN_ERR_LIMIT)."""

    default_code = ErrorCode.LIMIT


class StateError(Error):
    """The call is not valid in the object's current state."""

    default_code = ErrorCode.STATE


_ERRORS = {
    cls.default_code: cls
    for cls in (InvalidError, NoMemoryError, TooLargeError, DuplicateError, FullError,
                NotFoundError, ProtocolError, ClosedError, StoreError, LimitError,
                StateError)
}

_tern._setup(Error, {int(k): v for k, v in _ERRORS.items()}, {
    cls.__name__: cls
    for cls in (ErrorCode, Priority, Overflow, Framing, EventType, ClientEventType,
                GoawayReason, DropReason, ResyncReason, PubackStatus, PublishOutcome,
                StoreOp, FsyncPolicy, HookKind, HookState)
})

# ---- stores -----------------------------------------------------------------


@runtime_checkable
class Store(Protocol):
    """The store interface (tern_store(3)) for a store written in Python.

    ``append(batch, records, sync)`` persists ``records``, a list of
    ``(op, key, value)`` tuples (op a StoreOp, key and value bytes; a DEL
    has an empty value), after every earlier batch.  ``sync`` asks for
    them to be durable before the batch counts as done.  Return None (or
    0) when done, or ``STORE_LATER`` (or True) and call
    ``hub.store_done(batch, status)`` later, in batch order.  Raising an
    exception fails the batch: the hub reports STORE_FAILED (and
    PERSISTED with the error for SYNC messages); a tern.Error raised
    gives its code, anything else ErrorCode.STORE.

    ``load()`` returns the live records, each key once, as an iterable of
    ``(key, value)`` pairs (or a dict).

    Optional: ``sync()`` makes everything appended durable; ``compact()``.
    The methods must not call the hub (it raises StateError), except
    ``hub.store_done``.
    """

    def append(self, batch: int, records: List[Tuple[int, bytes, bytes]],
               sync: bool) -> Optional[int]:
        ...

    def load(self) -> Iterable[Tuple[bytes, bytes]]:
        ...


class DictStore:
    """A Store kept in a dict: ``data`` maps key to value.  Every batch
    is complete when append returns.  It outlives the hubs that use it,
    so a new hub on the same DictStore restores what the last one left
    (what a process restart does with a durable store)."""

    def __init__(self, data: Optional[Dict[bytes, bytes]] = None) -> None:
        self.data: Dict[bytes, bytes] = {} if data is None else data
        self.batches = 0
        self.syncs = 0

    def append(self, batch: int, records: List[Tuple[int, bytes, bytes]],
               sync: bool) -> None:
        for op, key, value in records:
            if op == StoreOp.SET:
                self.data[key] = value
            else:
                self.data.pop(key, None)
        self.batches += 1

    def load(self) -> Iterable[Tuple[bytes, bytes]]:
        return list(self.data.items())

    def sync(self) -> None:
        self.syncs += 1


# ---- handles ----------------------------------------------------------------


class Session:
    """A session of a hub, named by its key.  It holds no native pointer:
    every call looks the session up, so a Session object stays safe after
    the session expired or was deleted (calls then raise NotFoundError)."""

    __slots__ = ("hub", "key")

    def __init__(self, hub: "Hub", key: Bytes) -> None:
        self.hub = hub
        self.key = key.encode() if isinstance(key, str) else bytes(key)

    def __repr__(self) -> str:
        return f"<tern.Session {self.key!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other.hub is self.hub and other.key == self.key

    def __hash__(self) -> int:
        return hash((id(self.hub), self.key))

    @property
    def exists(self) -> bool:
        """True while the hub has this session."""
        return self.hub.has_session(self.key)

    def info(self) -> SessionInfo:
        """The session now (raises NotFoundError)."""
        return self.hub.session_info(self.key)

    @property
    def data(self) -> Any:
        """Any object of the host's attached to the session (None at
        first): Hub.session_data / Hub.set_session_data."""
        return self.hub.session_data(self.key)

    @data.setter
    def data(self, value: Any) -> None:
        self.hub.set_session_data(self.key, value)

    def publish(self, payload: Bytes, **kw: Any) -> PublishResult:
        """Hub.publish to this session."""
        return self.hub.publish(self.key, payload, **kw)

    def publish_batch(self, payloads: Iterable[Bytes], **kw: Any) -> int:
        """Hub.publish_batch to this session."""
        return self.hub.publish_batch(self.key, payloads, **kw)

    def set_policy(self, **kw: Any) -> None:
        """Hub.set_policy for this session (created when new)."""
        self.hub.set_policy(self.key, **kw)

    def clear_policy(self, **kw: Any) -> None:
        """Hub.clear_policy for this session."""
        self.hub.clear_policy(self.key, **kw)

    def ack(self, seq: int, **kw: Any) -> int:
        """Hub.ack: acks out of band up to seq."""
        return self.hub.ack(self.key, seq, **kw)

    def cancel(self, id: Bytes, **kw: Any) -> bool:
        """Hub.cancel: removes the message with this id."""
        return self.hub.cancel(self.key, id, **kw)

    def purge(self, unsent_only: bool = False, **kw: Any) -> int:
        """Hub.purge_session: removes the messages it holds."""
        return self.hub.purge_session(self.key, unsent_only=unsent_only, **kw)

    def delete(self, **kw: Any) -> None:
        """Hub.delete_session: ends the session now."""
        self.hub.delete_session(self.key, **kw)

    def subscribe(self, pattern: str, filter: Optional[str] = None, **kw: Any) -> int:
        """Hub.subscribe: joins the topics matching pattern."""
        return self.hub.subscribe(self.key, pattern, filter, **kw)

    def unsubscribe(self, pattern: str, **kw: Any) -> int:
        """Hub.unsubscribe."""
        return self.hub.unsubscribe(self.key, pattern, **kw)


class Topic:
    """A topic of a hub (a store-once log for fan-out), named by its name.
    It holds no native pointer: after delete() (or the hub's close) calls
    raise NotFoundError (ClosedError)."""

    __slots__ = ("hub", "name")

    def __init__(self, hub: "Hub", name: str) -> None:
        self.hub = hub
        self.name = name

    def __repr__(self) -> str:
        return f"<tern.Topic {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Topic) and other.hub is self.hub and other.name == self.name

    def __hash__(self) -> int:
        return hash((id(self.hub), self.name))

    @property
    def exists(self) -> bool:
        """True while the hub has this topic."""
        return self.hub._has_topic(self.name)

    def publish(self, payload: Bytes, *, id: Optional[Bytes] = None,
                collapse_key: Optional[Bytes] = None, priority: int = Priority.NORMAL,
                ttl: float = 0, content_type: Optional[str] = None,
                attrs: Any = None, volatile: bool = False, cookie: int = 0,
                now: Optional[int] = None) -> int:
        """Appends a message to the log; returns its offset.  Members
        whose filter does not match ``attrs`` skip it."""
        return self.hub._topic_publish(self.name, payload, id=id, collapse_key=collapse_key,
                                       priority=priority, ttl=ttl, content_type=content_type,
                                       attrs=attrs, volatile=volatile, cookie=cookie, now=now)

    def info(self) -> TopicInfo:
        """The topic now."""
        return self.hub._topic_info(self.name)

    def receipt(self, offset: int) -> Receipt:
        """The read receipt of the message at offset (NotFoundError once
        retention discarded it)."""
        return self.hub._topic_receipt(self.name, offset)

    def delete(self, **kw: Any) -> None:
        """Deletes the topic, its log and its members; what a member lost
        before ``now`` and was not told is still told to its session."""
        self.hub._delete_topic(self.name, **kw)


class Hook:
    """A web hook of a hub, named by its id (tern_hub_add_hook(3)).  It
    holds no native pointer: after remove() (or the hub's close) calls
    raise NotFoundError (ClosedError).  Hub.add_hook creates one,
    Hub.hook(id) and Hub.hooks() find them (those restored from a store
    among them)."""

    __slots__ = ("hub", "id")

    def __init__(self, hub: "Hub", id: int) -> None:
        self.hub = hub
        self.id = id

    def __repr__(self) -> str:
        return f"<tern.Hook {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hook) and other.hub is self.hub and other.id == self.id

    def __hash__(self) -> int:
        return hash((id(self.hub), self.id))

    def __int__(self) -> int:
        return self.id

    @property
    def exists(self) -> bool:
        """True while the hub has this hook."""
        return self.hub.has_hook(self.id)

    def info(self) -> HookInfo:
        """The hook now: state, failures, queued entries, counters
        (raises NotFoundError)."""
        return self.hub.hook_info(self.id)

    def enqueue(self, key: Bytes, fields: Iterable[Union[str, bytes]] = (), *,
                time: Optional[int] = None, data: Optional[Bytes] = None,
                now: Optional[int] = None) -> None:
        """Hub.hook_enqueue: queues a change of the object ``key`` (the
        names of the ``fields`` that changed, its ``time`` for the body,
        optional ``data``: one JSON value as text)."""
        self.hub.hook_enqueue(self.id, key, fields, time=time, data=data, now=now)

    def remove(self) -> None:
        """Hub.remove_hook: deletes the hook and what it holds."""
        self.hub.remove_hook(self.id)

    def enable(self, *, now: Optional[int] = None) -> None:
        """Hub.enable_hook: a disabled hook sends again."""
        self.hub.enable_hook(self.id, now=now)

    def verify(self, *, now: Optional[int] = None) -> None:
        """Hub.verify_hook: challenges the endpoint again."""
        self.hub.verify_hook(self.id, now=now)


class Hub(_tern.Hub):
    """Hub(**settings): a push-delivery hub.

    Settings are the fields of tern_settings, durations in seconds:
    max_payload, max_sessions, max_conns, inflight_window, max_pending,
    max_pending_bytes, overflow (three Overflow values by Priority),
    retry_after, default_ttl, heartbeat_interval, liveness_timeout,
    max_heartbeat, session_ttl, dedup_window, ack_timeout, max_deliver,
    max_events, seed, trace, hello_accept, max_pool_bytes, topic_rate,
    topic_burst, accept_rate, accept_burst, accept_max_retry (HELLOs past
    accept_rate a second are welcomed, then sent away with GOAWAY LIMIT
    and a retry hint up to accept_max_retry; Stats.accepts_deferred).
    Delivery policies: set_policy, clear_policy, set_zone_callback, and
    publish(fallback=) with EventType.FALLBACK (README "Delivery
    policies").  Use it in a ``with`` block or call ``close()``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<tern.Hub closed>" if self.closed else f"<tern.Hub epoch={self.epoch:#x}>"

    def session(self, key: Bytes) -> Session:
        """A handle on the session key (which need not exist yet)."""
        return Session(self, key)

    def sessions(self) -> Iterator[Session]:
        """Every session of the hub."""
        for key in self.session_keys():
            yield Session(self, key)

    def create_topic(self, name: str, *, now: Optional[int] = None, **options: Any) -> Topic:
        """Creates a topic.  Options: max_messages, max_bytes, max_age
        (seconds), rate, burst.  Raises DuplicateError when it exists."""
        self._create_topic(name, now=now, **options)
        return Topic(self, name)

    def topic(self, name: str) -> Topic:
        """The topic name (raises NotFoundError)."""
        if not self._has_topic(name):
            raise NotFoundError(f"no topic {name!r}")
        return Topic(self, name)

    def add_hook(self, target: Bytes, secret: Bytes, *, verify_token: Optional[Bytes] = None,
                 object: Optional[str] = None, verified: bool = False, coalesce: bool = False,
                 now: Optional[int] = None, **policy: Any) -> Hook:
        """Registers a web hook (tern_hub_add_hook(3)) and returns it.

        ``target`` is what your HTTP client understands (a URL), handed
        back in each HookRequest; ``secret`` keys the HMAC-SHA256
        signatures.  Unless ``verified``, the endpoint is first challenged
        (a GET with hub.mode, hub.challenge and ``verify_token``).
        ``coalesce`` merges waiting entries of one object key.  ``object``
        is the body's "object" value.  Policy options (tern_hook_opts;
        durations in seconds): max_items (1000), max_bytes (1 MiB),
        max_delay (5), max_attempts (10; 0 unlimited), retry_base (1),
        retry_cap (3600), disable_after (5; 0 never), max_inflight (1),
        max_queued (100000; 0 unlimited).  Raises InvalidError,
        TooLargeError.  With a store, add hooks after set_store.
        Requests are signed with a timestamp from the hub's wall clock:
        a hub without one (set_wallclock never called) gets
        time.time_ns() at the first add_hook.
        """
        id = self._add_hook(target, secret, verify_token=verify_token, object=object,
                            verified=verified, coalesce=coalesce, now=now, **policy)
        return Hook(self, id)

    def hook(self, id: int) -> Hook:
        """The hook with this id (raises NotFoundError)."""
        if not self.has_hook(id):
            raise NotFoundError(f"no hook {id!r}")
        return Hook(self, id)

    def hooks(self) -> Iterator[Hook]:
        """Every hook of the hub, by ascending id."""
        for id in self.hook_ids():
            yield Hook(self, id)

    def hook_requests(self, now: Optional[int] = None) -> Iterator[HookRequest]:
        """Takes every hook request due at now (next_hook_request until
        None); answer each with hook_done."""
        while True:
            r = self.next_hook_request(now)
            if r is None:
                return
            yield r

    def events(self) -> Iterator[Event]:
        """Takes every queued event."""
        while True:
            ev = self.next_event()
            if ev is None:
                return
            yield ev

    def ready(self) -> Iterator[Conn]:
        """Every connection that has become writable."""
        while True:
            c = self.next_ready()
            if c is None:
                return
            yield c


# ---- libtern-posix: tokens, native worker threads, HTTP --------------------

if HAVE_POSIX:
    import atexit as _atexit
    import collections as _collections
    import weakref as _weakref

    from ._tern import Request, token_check, token_make

    TOKEN_MAX = _tern.TOKEN_MAX

    class PublishDone(_collections.namedtuple("PublishDone", "worker cookie error")):
        """The hub's result of a Workers.publish, as the worker published
        it: ``error`` is None (published) or the ErrorCode (FULL, LIMIT,
        DUPLICATE...); ``cookie`` the publish's cookie."""

        __slots__ = ()

        @property
        def ok(self) -> bool:
            return self.error is None

    _running: "_weakref.WeakSet[Workers]" = _weakref.WeakSet()

    @_atexit.register
    def _stop_workers() -> None:
        # Worker threads must not wait for the GIL of a finalizing
        # interpreter: stop what is still running first.
        for w in list(_running):
            try:
                w.close()
            except Exception:
                pass

    class Workers(_tern.Workers):
        """Workers(threads=1, *, events=(), token_secret=None, max_queue=65536,
        out_cap=None, **settings): native worker threads (tern_workers(3)),
        each an epoll loop running its own hub, sessions sharded over them
        by shard_of.

        ``settings`` are Hub's (durations in seconds), for every hub.
        ``listen(host, port)`` serves the binary framing (tern.Client) and
        ``serve_http(handler, host, port)`` HTTP/1.1 with a Python handler;
        both return the bound port and come before ``start()``.
        ``publish`` works from any thread, running or not.  The hubs report
        back through a queue drained from Python, never by calling Python
        from the workers: ``results()`` (PublishDone for each publish that
        failed or set a cookie) and ``events()`` ((worker, Event) for the
        EventType values listed in ``events``; Event.conn is None).
        ``fileno()`` is readable while anything waits.  ``token_secret``
        makes the workers accept a binary HELLO only with a valid
        token_make token of its session (else GOAWAY REJECTED), checked on
        the worker thread.  ``stop()`` joins the threads (stats() can be
        read then); ``close()`` or a ``with`` block frees everything.  A
        started Workers stays alive until stopped or closed; it is closed
        at interpreter exit.
        """

        __slots__ = ()

        def __init__(self, threads: int = 1, **kwargs: Any) -> None:
            super().__init__(threads=threads, **kwargs)

        def __repr__(self) -> str:
            if self.closed:
                return "<tern.Workers closed>"
            return f"<tern.Workers count={self.count} running={self.running}>"

        def start(self) -> None:
            """Starts the threads."""
            super().start()
            _running.add(self)

        def stop(self) -> None:
            """Stops and joins the threads (not from an HTTP handler)."""
            super().stop()
            _running.discard(self)

        def close(self) -> None:
            """Stops the threads and frees everything; idempotent."""
            super().close()
            _running.discard(self)

        def next_result(self) -> Optional[PublishDone]:
            """The oldest PublishDone waiting, or None."""
            r = self._next_result()
            if r is None:
                return None
            return PublishDone(r[0], r[1], ErrorCode(r[2]) if r[2] else None)

        def results(self) -> Iterator[PublishDone]:
            """Takes every PublishDone waiting."""
            while True:
                r = self.next_result()
                if r is None:
                    return
                yield r

        def next_event(self) -> Optional[Tuple[int, Event]]:
            """The oldest (worker, Event) waiting, or None."""
            return self._next_event()

        def events(self) -> Iterator[Tuple[int, Event]]:
            """Takes every (worker, Event) waiting."""
            while True:
                e = self._next_event()
                if e is None:
                    return
                yield e


__all__ = [
    "Bytes", "Client", "ClientEvent", "ClientEventType", "ClientStats", "ClosedError", "Conn",
    "ConnInfo", "DictStore", "DropReason", "DuplicateError", "Error", "ErrorCode", "Event",
    "EventType", "FileStore", "FileStoreStats", "Framing", "FsyncPolicy", "FullError",
    "GoawayReason", "HOOK_NO_ANSWER", "Hook", "HookInfo", "HookKind", "HookRequest",
    "HookState", "Hub", "InvalidError", "LimitError", "NoMemoryError", "NotFoundError",
    "Overflow", "Priority", "ProtocolError", "PubackStatus", "PublishOutcome", "PublishResult",
    "Receipt", "ResyncReason", "Session", "SessionInfo", "Stats", "StateError", "Store",
    "StoreError", "StoreOp", "TooLargeError", "Topic", "TopicInfo", "check_hook_challenge",
    "check_hook_signature", "err_is_fatal",
    "filter_check", "framing_content_type", "parse_resume", "shard_of", "strerror",
    "topic_pattern_check", "version", "version_info", "HAVE_POSIX",
]
if HAVE_POSIX:
    __all__ += ["PublishDone", "Request", "TOKEN_MAX", "Workers", "token_check", "token_make"]
