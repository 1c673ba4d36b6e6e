/*
 * libtern — an embeddable push-delivery engine.
 *
 * This is the only header a host needs.  The core is sans-I/O: the hub and
 * the client never open a socket, start a thread, read a clock or touch a
 * disk.  The host passes bytes and the current time in, pulls bytes and
 * events out.  The one part that touches a disk is the optional file store
 * (tern_store_file), which a host plugs in like any other store.
 *
 * Thread rule for the whole header: a tern_hub and every object that belongs
 * to it (sessions, connections) may be used by one thread at a time; so may
 * each tern_client.  Distinct hubs and clients are independent.  The
 * functions that take no object (tern_strerror, tern_version,
 * tern_version_info, the *_default functions, tern_topic_pattern_check,
 * tern_filter_check) may be called from any thread.
 *
 * The overview is tern(3); the wire format is tern-protocol(7).
 */
#ifndef TERN_H
#define TERN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * TERN_EXTERN marks every public declaration.  Building the shared library
 * defines BUILDING_TERN so that only these symbols are exported; static users
 * may define TERN_STATICLIB.
 */
#if defined(TERN_STATICLIB)
#  define TERN_EXTERN
#elif defined(_WIN32)
#  ifdef BUILDING_TERN
#    define TERN_EXTERN __declspec(dllexport)
#  else
#    define TERN_EXTERN __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define TERN_EXTERN __attribute__((visibility("default")))
#else
#  define TERN_EXTERN
#endif

/* ---- version ------------------------------------------------------------ */

/* TERN_VERSION is the version of this header as a string. */
#define TERN_VERSION "0.3.0"
/* TERN_VERSION_NUM is the same as 0xMMmmpp: major, minor, patch. */
#define TERN_VERSION_NUM 0x000300

/*
 * TERN_VERSION_CHECK(maj, min, patch) is nonzero when this header is
 * version maj.min.patch or newer.  It is a constant expression, usable in
 * #if.  At run time, tern_version_info tells the same of the library.
 */
#define TERN_VERSION_CHECK(maj, min, patch) \
  (TERN_VERSION_NUM >= (((maj) << 16) | ((min) << 8) | (patch)))

/*
 * tern_version returns the version of the linked library as a static
 * NUL-terminated string such as "0.3.0".  Compare it with TERN_VERSION to
 * detect a header/library mismatch.
 */
TERN_EXTERN const char *tern_version(void);

/*
 * tern_version_info returns the linked library's version as a number
 * (0xMMmmpp, like TERN_VERSION_NUM), or 0 when the library is older than
 * |least|, a number of the same form.  A program that needs what its header
 * declares checks tern_version_info(TERN_VERSION_NUM) != 0 once at start:
 * a library older than the header may lack functions and struct versions
 * the header offers.  |least| 0 always gets the version.
 */
TERN_EXTERN uint32_t tern_version_info(uint32_t least);

/*
 * Versioned structs.  Every struct that a caller allocates and the library
 * reads or writes has numbered layouts, TERN_<STRUCT>_V1, _V2, ..., and
 * TERN_<STRUCT>_VERSION, the newest this header knows.  A newer layout only
 * appends fields to the one before.  The caller tells the library which
 * layout its struct has: in the struct's own |version| field (tern_settings,
 * tern_client_settings, tern_store_methods, tern_store_file_options), or as
 * an argument of a *_versioned function (tern_msg_desc,
 * tern_publish_result, tern_event, tern_client_event).  The library reads
 * and writes only the bytes of that layout, and takes the default (zero
 * where none is listed) for each field the layout lacks.  So a program
 * built against an older header keeps working with a newer library, and a
 * newer program against an older library (0.2 or later; 0.1 lacks the
 * *_versioned functions, so the program does not load) gets
 * TERN_ERR_INVALID rather than memory errors (check tern_version_info at
 * start).
 *
 * The usual names are macros that pass this header's version:
 * tern_settings_default(&s) expands to
 * tern_settings_default_versioned(TERN_SETTINGS_VERSION, &s), and so on.
 * The functions of the same names (tern_settings_default,
 * tern_client_settings_default, tern_hub_publish, tern_hub_next_event,
 * tern_client_next_event, tern_store_file_options_default,
 * tern_store_file_methods) stay exported, with the meaning they had in
 * version 0.1: they use layout V1.  Programs built against the 0.1 header
 * call these; a program that takes such a function's address gets them
 * too (the layout V1 prefix of a newer struct is valid, so that is safe).
 *
 * Structs the library fills with statistics or descriptions
 * (tern_stats, tern_session_info, tern_conn_info, tern_client_stats,
 * tern_store_file_stats) take the caller's sizeof instead: the library
 * writes exactly that many bytes, zero past the fields it knows.
 * Structs whose size both sides must agree on never change: tern_attr,
 * tern_store_record and tern_client_attr (passed in arrays), tern_mem and
 * tern_session_iter are frozen.
 */

/* ---- time and sizes ----------------------------------------------------- */

/*
 * tern_tstamp is a point in time in nanoseconds.  The clock rule, the same
 * for every function that takes a |now|: |now| comes from a monotonic clock
 * of the host's choice (CLOCK_MONOTONIC, say) with any origin, and never
 * goes backwards between calls on one hub or client.  What a hub stores
 * (expiries of messages and dedup ids) must outlive the process, so it is
 * kept on a wall clock: give the hub one with tern_hub_set_wallclock before
 * tern_hub_set_store.  A hub with a store but no wall clock stores its
 * |now| as it is, which is only right when |now| itself survives restarts
 * (CLOCK_REALTIME).  tern(3) shows both clocks read with clock_gettime.
 */
typedef uint64_t tern_tstamp;
/* tern_duration is a span of time in nanoseconds. */
typedef uint64_t tern_duration;
/* TERN_TSTAMP_NONE means "no deadline". */
#define TERN_TSTAMP_NONE UINT64_MAX
/* TERN_MILLISECONDS is one millisecond as a tern_duration. */
#define TERN_MILLISECONDS ((tern_duration)1000000ULL)
/* TERN_SECONDS is one second as a tern_duration. */
#define TERN_SECONDS ((tern_duration)1000000000ULL)
/* tern_ssize is a byte count or, when negative, a tern_error code. */
typedef ptrdiff_t tern_ssize;

/* ---- errors ------------------------------------------------------------- */

/*
 * tern_error lists every error a function returns.  Success is 0; errors are
 * negative.  The codes are stable across versions.
 */
typedef enum tern_error {
  /* An argument is NULL where it may not be, out of range, or malformed. */
  TERN_ERR_INVALID = -501,
  /* The allocator failed.  The call changed nothing. */
  TERN_ERR_NOMEM = -502,
  /* A key, id, payload, attribute or frame is longer than its limit. */
  TERN_ERR_TOO_LARGE = -503,
  /* A message with this id was already published to this session within the
     dedup window.  No second copy was queued. */
  TERN_ERR_DUPLICATE = -504,
  /* The session's queue is full and its overflow rule refused or rejected
     the message (see tern_publish_result.outcome). */
  TERN_ERR_FULL = -505,
  /* The named object does not exist (reserved: no function returns it
     yet). */
  TERN_ERR_NOT_FOUND = -506,
  /* The peer broke the protocol (a malformed or unexpected frame).  The
     connection is closed. */
  TERN_ERR_PROTO = -507,
  /* The connection is closed; nothing more can be read or written. */
  TERN_ERR_CLOSED = -508,
  /* A store reported a failure (reserved for the store interface). */
  TERN_ERR_STORE = -509,
  /* A count limit was reached: max_sessions, or max_conns of a session. */
  TERN_ERR_LIMIT = -510,
  /* The call is not valid in the object's current state. */
  TERN_ERR_STATE = -511
} tern_error;

/*
 * tern_strerror returns a static, NUL-terminated English description of
 * |code|.  Unknown codes get "unknown error"; 0 gets "success".
 */
TERN_EXTERN const char *tern_strerror(int code);

/*
 * tern_err_is_fatal returns nonzero when |code| always means the
 * connection that returned it is finished (TERN_ERR_PROTO, TERN_ERR_CLOSED),
 * 0 otherwise.  tern_conn_read closes its connection on a few more codes
 * (see there); tern_conn_is_closed is the exact test.  A hub never becomes
 * unusable.
 */
TERN_EXTERN int tern_err_is_fatal(int code);

/* ---- memory ------------------------------------------------------------- */

/*
 * tern_mem lets a host route every allocation of a hub through its own
 * allocator.  Either all four function pointers are set or the pointer to
 * the struct is NULL (libc's malloc family).  Each function gets |user_data|
 * last.  A failing function returns NULL; the library then returns
 * TERN_ERR_NOMEM and leaves its state as it was before the call (one
 * exception: tern_conn_read closes the connection it could not serve).
 * The struct is copied by tern_hub_new.
 */
typedef struct tern_mem {
  /* user_data is passed unchanged to every function below. */
  void *user_data;
  /* malloc allocates |size| bytes. */
  void *(*malloc)(size_t size, void *user_data);
  /* free releases memory from this allocator; |ptr| may be NULL. */
  void (*free)(void *ptr, void *user_data);
  /* calloc allocates |nmemb| * |size| zeroed bytes. */
  void *(*calloc)(size_t nmemb, size_t size, void *user_data);
  /* realloc resizes a block; on failure the old block stays valid. */
  void *(*realloc)(void *ptr, size_t size, void *user_data);
} tern_mem;

/* ---- settings ----------------------------------------------------------- */

/* TERN_SETTINGS_V1 is the layout of tern_settings in version 0.1. */
#define TERN_SETTINGS_V1 1
/* TERN_SETTINGS_V2 adds |max_pool_bytes|. */
#define TERN_SETTINGS_V2 2
/* TERN_SETTINGS_V3 adds |topic_rate| and |topic_burst|. */
#define TERN_SETTINGS_V3 3
/* TERN_SETTINGS_V4 adds |accept_rate|, |accept_burst| and
   |accept_max_retry|. */
#define TERN_SETTINGS_V4 4
/* TERN_SETTINGS_VERSION is the layout of tern_settings in this header. */
#define TERN_SETTINGS_VERSION TERN_SETTINGS_V4

/*
 * tern_priority is a message's priority.  On the wire, a connection always
 * sends HIGH before NORMAL before LOW; within one priority, publish order.
 */
typedef enum tern_priority {
  TERN_PRIO_LOW = 0,
  TERN_PRIO_NORMAL = 1,
  TERN_PRIO_HIGH = 2
} tern_priority;

/*
 * tern_overflow is what happens when a publish would push a session past
 * max_pending messages or max_pending_bytes.  The rule is chosen by the
 * priority of the message being published (tern_settings.overflow).
 */
typedef enum tern_overflow {
  /* Evict the oldest pending messages of the lowest priority not above the
     new message's until it fits (each counted as dropped for the session);
     when nothing of a priority not above the new one is left, refuse. */
  TERN_OVERFLOW_EVICT = 0,
  /* Refuse the new message: it is counted as dropped for the session, and
     the publish returns TERN_ERR_FULL with outcome TERN_PUBLISH_REFUSED. */
  TERN_OVERFLOW_REFUSE = 1,
  /* Reject the publish with a retry hint: TERN_ERR_FULL with outcome
     TERN_PUBLISH_REJECTED and retry_after set.  The receiver is not told:
     the producer keeps responsibility for the message. */
  TERN_OVERFLOW_REJECT = 2
} tern_overflow;

/*
 * tern_settings configures a hub.  Fill it with tern_settings_default, then
 * change what you need; fields are only ever appended, and |version| tells
 * the library which fields the caller knows.  Durations of 0 mean "off"
 * where noted.  tern_hub_new copies the struct.
 */
typedef struct tern_settings {
  /* version is set to TERN_SETTINGS_VERSION by tern_settings_default. */
  uint32_t version;
  /* max_payload is the largest payload accepted, in bytes.  1 MiB. */
  size_t max_payload;
  /* max_sessions bounds the number of sessions; 0 is unlimited (default). */
  uint32_t max_sessions;
  /* max_conns bounds the connections attached to one session.  10. */
  uint32_t max_conns;
  /* inflight_window is how many messages one connection may have sent but
     not acked.  256. */
  uint32_t inflight_window;
  /* max_pending bounds the messages a session holds (pending and in
     flight).  10000. */
  uint32_t max_pending;
  /* max_pending_bytes bounds the payload bytes a session holds.  64 MiB. */
  size_t max_pending_bytes;
  /* overflow is the overflow rule per priority of the incoming message,
     indexed by tern_priority.  All TERN_OVERFLOW_EVICT. */
  uint8_t overflow[3];
  /* retry_after is the hint returned with TERN_OVERFLOW_REJECT.  1 s. */
  tern_duration retry_after;
  /* default_ttl applies to messages published with ttl 0.  0 means such
     messages never expire (default). */
  tern_duration default_ttl;
  /* heartbeat_interval: a connection that sent nothing for this long sends
     a PING.  4 s.  A client may ask for another value in HELLO; the hub
     clamps it to [1 s, max_heartbeat]. */
  tern_duration heartbeat_interval;
  /* liveness_timeout: nothing heard from the peer for this long declares
     the connection dead (TERN_EV_CONN_DEAD).  7 s.  With a negotiated
     heartbeat H it becomes H + (liveness_timeout - heartbeat_interval). */
  tern_duration liveness_timeout;
  /* max_heartbeat caps the heartbeat interval a client may ask for.  5 min. */
  tern_duration max_heartbeat;
  /* session_ttl: a session without connections is deleted, with whatever it
     still holds, after this long.  24 h. */
  tern_duration session_ttl;
  /* dedup_window: a message id published twice to one session within this
     span is refused with TERN_ERR_DUPLICATE.  2 min; 0 turns dedup off. */
  tern_duration dedup_window;
  /* ack_timeout: a message in flight on a live connection that is not
     acked within this span is sent again; the span doubles with each send
     of the message (at most 1024 times), so a path slower than it still
     gets its ACK through.  0 (default) re-sends only after the connection
     is lost. */
  tern_duration ack_timeout;
  /* max_deliver: with ack_timeout, a message whose ack timeout passes after
     its max_deliver-th send (re-sends after a lost connection count too) is
     discarded with a TERN_EV_DEAD event.  5; 0 is unlimited. */
  uint32_t max_deliver;
  /* max_events bounds the trace events (ACCEPTED, SENT, ACKED, EXPIRED,
     COLLAPSED, EVICTED) in the queue: one past it, or one the queue has no
     memory for, is counted in tern_stats.events_lost and discarded.  The
     other events carry a duty for the host and are never discarded (see
     tern_event_type); they do not count against it.  65536. */
  uint32_t max_events;
  /* seed feeds the hub's random generator (message ids, epoch, jitter).
     Give each hub process a fresh random seed so that epochs differ across
     restarts; the same seed replays the same run.  0 mixes in the hub's
     address, which is weaker. */
  uint64_t seed;
  /* trace: nonzero emits lifecycle events (accepted, sent, acked, expired,
     collapsed, evicted) for every message; 0 only for messages published
     with TERN_MSG_TRACE.  0. */
  uint32_t trace;
  /* hello_accept: nonzero makes every HELLO wait, after its
     TERN_EV_CONN_HELLO event, for tern_conn_accept or for tern_conn_goaway
     with TERN_GOAWAY_REJECTED (authentication by the host), at most
     liveness_timeout after tern_conn_new.  0 accepts at once. */
  uint32_t hello_accept;
  /* max_pool_bytes (layout V2): messages up to 1 KiB (payload and header) are carved
     from 16 KiB slabs allocated through the hub's tern_mem, one allocation
     per slab rather than per message.  As a backlog drains, slabs that
     empty are kept for reuse up to max_pool_bytes in all, plus one per size
     class, and the rest are freed, so a burst does not pin its memory.
     1 MiB.  0 turns the pool off: each message is an allocation of its own
     (what a tool tracing allocations, such as a sanitizer, needs). */
  size_t max_pool_bytes;
  /* topic_rate (layout V3) paces topic fan-out: at most this many topic
     messages per second are written, over all connections of the hub, in
     a token bucket of |topic_burst| tokens.  When the bucket is empty,
     topic messages wait (tern_hub_get_expiry reports when it refills);
     direct messages never wait.  A refill puts as many waiting
     connections back on the ready list as it brings tokens, not all of
     them, so that a broadcast to many does not wake every member for
     each token: until its turn, a waiting connection may say yes to
     tern_conn_want_write without tern_hub_next_ready returning it yet.
     0 (default) does not pace. */
  uint32_t topic_rate;
  /* topic_burst (layout V3) is the size of that bucket: how many topic
     messages may go out at once after a quiet spell.  0 takes topic_rate
     (one second's worth).  Unused while topic_rate is 0. */
  uint32_t topic_burst;
  /* accept_rate (layout V4) flattens reconnect storms: at most this many
     HELLOs a second, in a token bucket of |accept_burst| tokens, are
     welcomed into their sessions.  Past it, a HELLO (binary framing and
     WebSocket tern.bin) still gets its WELCOME, applying its last_seq,
     but with a retry hint drawn from [1 ms, accept_max_retry], followed
     by GOAWAY TERN_GOAWAY_LIMIT with the same hint: the receiver counts
     the attempt as a success (its backoff and attempt count start again)
     and comes back after the hint.  Sessions with HIGH messages pending
     are admitted first: the last quarter of the bucket is kept for them,
     and when they are deferred too their hints come from the first
     quarter of the span.  Each deferral counts in
     tern_stats.accepts_deferred.  0 (default) admits every HELLO. */
  uint32_t accept_rate;
  /* accept_burst (layout V4): the bucket's size.  0 takes accept_rate. */
  uint32_t accept_burst;
  /* accept_max_retry (layout V4): the longest retry hint of a deferred
     HELLO, at most 24 h.  30 s. */
  tern_duration accept_max_retry;
} tern_settings;

/*
 * tern_settings_default_versioned fills the fields of layout |version| of
 * |s| with the defaults listed above and sets s->version to |version|; it
 * writes no byte past that layout.  An unknown |version| (0, or newer than
 * the library) sets s->version to 0 only, which tern_hub_new refuses.  |s|
 * must not be NULL.  Call it through the tern_settings_default macro.
 */
TERN_EXTERN void tern_settings_default_versioned(uint32_t version,
                                                 tern_settings *s);
/* tern_settings_default is the 0.1 entry point: layout V1. */
TERN_EXTERN void tern_settings_default(tern_settings *s);
/* tern_settings_default(s) fills |s| in this header's layout. */
#define tern_settings_default(s) \
  tern_settings_default_versioned(TERN_SETTINGS_VERSION, (s))

/* ---- limits ------------------------------------------------------------- */

/* TERN_MAX_ID is the longest message id, in bytes. */
#define TERN_MAX_ID 64
/* TERN_MAX_COLLAPSE_KEY is the longest collapse key, in bytes. */
#define TERN_MAX_COLLAPSE_KEY 64
/* TERN_MAX_SESSION_KEY is the longest session key, in bytes. */
#define TERN_MAX_SESSION_KEY 128
/* TERN_MAX_TOKEN is the longest HELLO token, in bytes. */
#define TERN_MAX_TOKEN 1024
/* TERN_MAX_ATTRS is the most attributes a message carries. */
#define TERN_MAX_ATTRS 8
/* TERN_MAX_ATTR_KEY is the longest attribute key, in bytes. */
#define TERN_MAX_ATTR_KEY 64
/* TERN_MAX_ATTR_VALUE is the longest attribute value, in bytes. */
#define TERN_MAX_ATTR_VALUE 256
/* TERN_MAX_CONTENT_TYPE is the longest content type, in bytes. */
#define TERN_MAX_CONTENT_TYPE 128
/* TERN_MAX_TOPIC is the longest topic name or topic pattern, in bytes
   (tern_topic_pattern_check). */
#define TERN_MAX_TOPIC 255
/* TERN_MAX_FILTER is the longest filter text, in bytes, both as given and
   in its canonical form (tern_filter_check, tern-filter(7)). */
#define TERN_MAX_FILTER 1024

/* ---- topics: names, patterns and filters -------------------------------- */

/*
 * A topic name is 1..TERN_MAX_TOPIC bytes of segments separated by '.',
 * every segment non-empty, every byte printable ASCII (0x21..0x7e) other
 * than '*' and '#': "trade.usd.nyse".  A topic pattern is written like a
 * name, except that a whole segment may be "*" (exactly one segment) or
 * "#" (zero or more segments, anywhere in the pattern): "trade.*",
 * "order.#", "#.error".  tern-filter(7) has the full rules.
 *
 * tern_topic_pattern_check validates the |len| bytes at |pattern| (need
 * not be NUL-terminated) as a topic pattern; a topic name is a pattern
 * without wildcards, so this checks names too.  It lets a host validate
 * user input before subscribing.  Returns 0 or TERN_ERR_INVALID (NULL
 * |pattern| with |len| > 0, an empty pattern, a longer one than
 * TERN_MAX_TOPIC, an empty segment, a byte outside 0x21..0x7e, a '*' or
 * '#' that is not a whole segment); on TERN_ERR_INVALID, *|errpos| (when
 * |errpos| is not NULL) is the byte offset of the first bad byte (|len|
 * for a pattern that ends in '.', TERN_MAX_TOPIC for one that is too
 * long).  Uses no hub, allocates nothing; any thread.
 */
TERN_EXTERN int tern_topic_pattern_check(const char *pattern, size_t len,
                                         size_t *errpos);

/*
 * tern_filter_check validates the |len| bytes at |text| (need not be
 * NUL-terminated) as a filter: a predicate over message attributes such
 * as "status in (ItemAdd, ItemUpdate) and price > 100", in the language
 * of tern-filter(7).  It lets a host validate user input (a subscription
 * coming over HTTP, say) before subscribing.  Returns 0,
 * TERN_ERR_INVALID (a syntax error, or NULL |text| with |len| > 0) or
 * TERN_ERR_TOO_LARGE (a limit of tern-filter(7): TERN_MAX_FILTER bytes,
 * nesting, number of terms or values, length of a name or value).  On
 * either error, *|errpos| is the byte offset of the error and *|msg| a
 * static English message such as "expected ')'", each when not NULL.
 * Uses no hub, allocates nothing; any thread.
 */
TERN_EXTERN int tern_filter_check(const char *text, size_t len,
                                  size_t *errpos, const char **msg);

/* ---- hub ---------------------------------------------------------------- */

/* tern_hub owns sessions, messages, connections, timers and events. */
typedef struct tern_hub tern_hub;
/* tern_session is one recipient endpoint, found by its key. */
typedef struct tern_session tern_session;
/* tern_conn is one transport stream, bound to a session by its HELLO. */
typedef struct tern_conn tern_conn;

/*
 * tern_hub_new creates a hub with settings |s| (NULL: defaults) and
 * allocator |mem| (NULL: libc) and stores it in |*phub|.  Both structs are
 * copied; of |s|, the bytes of layout s->version only (fields of newer
 * layouts take their defaults).  The hub's epoch is drawn from the seed.
 *
 * Returns 0, TERN_ERR_INVALID (phub NULL, s->version unknown or 0, a limit
 * of 0 where one is required, liveness_timeout not above
 * heartbeat_interval, an incomplete tern_mem) or TERN_ERR_NOMEM.
 */
TERN_EXTERN int tern_hub_new(tern_hub **phub, const tern_settings *s,
                             const tern_mem *mem);

/*
 * tern_hub_del frees the hub, every session and message it holds, and every
 * connection that the host has not yet deleted.  Pointers to any of them
 * become invalid.  NULL does nothing.
 */
TERN_EXTERN void tern_hub_del(tern_hub *hub);

/*
 * tern_hub_get_epoch returns the hub's epoch: a random 64-bit value that
 * changes whenever the hub starts without its previous state.  Receivers
 * that see a new epoch drop their seq and dedup state.
 */
TERN_EXTERN uint64_t tern_hub_get_epoch(const tern_hub *hub);

/*
 * tern_hub_get_expiry returns the earliest deadline at which the hub needs
 * tern_hub_handle_expiry (heartbeats, liveness, TTLs, session expiry, ack
 * timeouts, dedup window), or TERN_TSTAMP_NONE.  Deadlines may be early:
 * handling one that is not yet due only re-arms it.
 */
TERN_EXTERN tern_tstamp tern_hub_get_expiry(const tern_hub *hub);

/*
 * tern_hub_handle_expiry runs every deadline at or before |now|: expires
 * messages and sessions, declares silent connections dead, schedules PINGs
 * and redeliveries, and hands the waiting batch to the store.  Results come
 * out as events and as bytes for tern_conn_write.
 *
 * Returns 0, TERN_ERR_NOMEM (an event that may not be lost, SESSION_EXPIRED
 * or DEAD, found no memory: what it reports did not happen yet, its
 * deadline stays due, so tern_hub_get_expiry says to call again) or
 * TERN_ERR_INVALID (hub NULL).
 */
TERN_EXTERN int tern_hub_handle_expiry(tern_hub *hub, tern_tstamp now);

/*
 * tern_hub_next_ready returns a connection that has become writable (it has
 * messages or control frames to send) since it was last returned, or NULL.
 * A host that does not want to poll every connection with
 * tern_conn_want_write calls this until NULL after each batch of calls.
 * A connection is returned once until tern_conn_write empties it again.
 */
TERN_EXTERN tern_conn *tern_hub_next_ready(tern_hub *hub);

/*
 * tern_hub_goaway_all queues a GOAWAY with |reason| (tern_goaway_reason) on
 * every open connection, for a restart or shutdown.  Each carries a retry
 * hint drawn uniformly from [0, |max_retry|]; sessions with HIGH messages
 * pending get hints from the first quarter, so they come back first.
 * Each connection's in-flight messages return to its session, and each
 * gets its end event (TERN_EV_CONN_CLOSED with |reason|), as for
 * tern_conn_goaway.
 *
 * Returns the number of connections told, or TERN_ERR_INVALID.
 */
TERN_EXTERN int tern_hub_goaway_all(tern_hub *hub, uint32_t reason,
                                    tern_duration max_retry, tern_tstamp now);

/*
 * tern_stats holds the hub's counters since tern_hub_new, and gauges of what
 * it holds now.  Fields are only ever appended; the caller passes its
 * sizeof to tern_hub_get_stats.
 */
typedef struct tern_stats {
  uint64_t published;   /* messages accepted by tern_hub_publish            */
  uint64_t duplicates;  /* publishes refused with TERN_ERR_DUPLICATE        */
  uint64_t collapsed;   /* pending messages replaced by a newer one         */
  uint64_t evicted;     /* pending messages evicted by an overflow rule     */
  uint64_t refused;     /* publishes refused by TERN_OVERFLOW_REFUSE/EVICT  */
  uint64_t rejected;    /* publishes rejected by TERN_OVERFLOW_REJECT       */
  uint64_t expired;     /* messages discarded at their expiry               */
  uint64_t dead;        /* messages discarded after max_deliver sends       */
  uint64_t sent;        /* MSG frames written (re-sends included)           */
  uint64_t resent;      /* of which re-sends                                */
  uint64_t acked;       /* messages acknowledged                            */
  uint64_t dropped_notices; /* DROPPED frames written                       */
  uint64_t sessions_created;
  uint64_t sessions_expired;
  uint64_t conns_opened;    /* connections that completed HELLO             */
  uint64_t conns_dead;      /* connections declared dead by liveness        */
  uint64_t proto_errors;    /* connections closed for a protocol error      */
  uint64_t events_lost;     /* events discarded past max_events             */
  uint64_t bytes_in;
  uint64_t bytes_out;
  /* gauges */
  uint64_t sessions;
  uint64_t conns;
  uint64_t messages;        /* messages held (pending and in flight)        */
  uint64_t message_bytes;   /* payload bytes held                           */
  uint64_t inflight;
  /* counters again (appended) */
  uint64_t store_batches;   /* batches handed to the store                  */
  uint64_t sessions_deleted; /* by tern_hub_delete_session                  */
  uint64_t canceled;        /* messages removed by tern_hub_cancel,
                               tern_hub_purge_session or
                               tern_hub_delete_session                      */
  /* topic gauges (appended in 0.3) */
  uint64_t topics;          /* topics                                       */
  uint64_t members;         /* subscriptions of a session to a topic        */
  uint64_t topic_messages;  /* messages retained in topic logs              */
  uint64_t topic_bytes;     /* their payload bytes (each stored once)       */
  /* policies (appended; tern_hub_set_policy, tern_msg_desc.fallback,
     settings.accept_rate) */
  uint64_t policy_holds;    /* times a session's policy (quiet hours or a
                               frequency cap) started holding its NORMAL and
                               LOW messages                                  */
  uint64_t policy_releases; /* times such a hold ended                      */
  uint64_t fallbacks;       /* TERN_EV_FALLBACK events queued               */
  uint64_t fallback_acked;  /* messages acked after their fallback event    */
  uint64_t accepts_deferred; /* HELLOs welcomed and sent away with a retry
                               hint past settings.accept_rate              */
} tern_stats;

/*
 * tern_hub_get_stats copies the first |size| bytes of the hub's statistics
 * into |st| (pass sizeof(tern_stats); an older caller passes a smaller size).
 * Bytes past the statistics this library knows are set to zero.
 */
TERN_EXTERN void tern_hub_get_stats(const tern_hub *hub, tern_stats *st,
                                    size_t size);

/* ---- publishing --------------------------------------------------------- */

/* tern_attr is one key=value attribute of a message (NUL-terminated). */
typedef struct tern_attr {
  const char *key;
  const char *value;
} tern_attr;

/* TERN_MSG_TRACE asks for lifecycle events for this one message. */
#define TERN_MSG_TRACE 0x1u
/* TERN_MSG_SYNC: with a store, confirm the publish (TERN_EV_PERSISTED) only
   once the message is durable.  The default is ASYNC: stored in the next
   batch, confirmed at once by the publish call. */
#define TERN_MSG_SYNC 0x2u
/* TERN_MSG_VOLATILE: never store this message (durability NONE). */
#define TERN_MSG_VOLATILE 0x4u

/* TERN_MSG_DESC_V1 is the layout of tern_msg_desc in version 0.1 (up to
   |flags|); V2 adds |cookie|. */
#define TERN_MSG_DESC_V1 1
#define TERN_MSG_DESC_V2 2
/* TERN_MSG_DESC_V3 adds |fallback|. */
#define TERN_MSG_DESC_V3 3
/* TERN_MSG_DESC_VERSION is the layout of tern_msg_desc in this header. */
#define TERN_MSG_DESC_VERSION TERN_MSG_DESC_V3

/*
 * tern_msg_desc describes a message to publish.  Zero-initialise it, then
 * set what you need; everything it points to is copied by the publish call.
 */
typedef struct tern_msg_desc {
  /* id (up to TERN_MAX_ID bytes) is the dedup key; NULL or idlen 0 asks
     the hub to generate a unique one. */
  const uint8_t *id;
  size_t idlen;
  /* collapse_key (up to TERN_MAX_COLLAPSE_KEY bytes), optional: a newer
     message with the same key replaces an older one not yet sent. */
  const uint8_t *collapse_key;
  size_t collapse_keylen;
  /* priority is a tern_priority. */
  int priority;
  /* ttl is the lifetime from |now|; 0 uses settings.default_ttl. */
  tern_duration ttl;
  /* payload is binary-safe, up to settings.max_payload bytes. */
  const uint8_t *payload;
  size_t payloadlen;
  /* content_type (NUL-terminated, up to TERN_MAX_CONTENT_TYPE), optional. */
  const char *content_type;
  /* attrs, up to TERN_MAX_ATTRS of them. */
  const tern_attr *attrs;
  size_t nattrs;
  /* flags is a set of TERN_MSG_* bits. */
  uint32_t flags;
  /* cookie (layout V2) is the host's own value, such as a pointer to the
     producer waiting for this message.  The hub does not interpret it; it
     echoes it in the message's events (tern_event.cookie): PERSISTED,
     ACKED, EXPIRED and every other lifecycle event.  PERSISTED is a duty
     event, never shed; the lifecycle events follow the trace rule and may
     be shed past max_events (tern_event_type).  It is not stored:
     messages restored by tern_hub_set_store after a restart have cookie
     0.  0 (the default) costs no memory. */
  uint64_t cookie;
  /* fallback (layout V3): channel fallback.  When the message is
     not acknowledged within this span of its publish, the hub queues a
     TERN_EV_FALLBACK event carrying it (id, payload, session key) so the
     host can hand it to another channel (a platform push service, SMS).
     The message stays queued: if its ACK comes later, it counts in
     tern_stats.fallback_acked too, and the receiver, which may get it
     both ways, deduplicates by id.  A message that leaves before the
     deadline (acked, expired, collapsed, evicted, canceled) produces no
     event.  The deadline is not stored: messages restored by
     tern_hub_set_store have none.  0 (the default): no fallback. */
  tern_duration fallback;
} tern_msg_desc;

/* Publish outcomes (tern_publish_result.outcome), a set of bits. */
/* The message was queued. */
#define TERN_PUBLISH_QUEUED 0x1u
/* It replaced an older pending message with the same collapse key. */
#define TERN_PUBLISH_REPLACED 0x2u
/* Older messages were evicted to make room (see nevicted). */
#define TERN_PUBLISH_EVICTED 0x4u
/* The queue was full and the message was refused (counted as dropped). */
#define TERN_PUBLISH_REFUSED 0x8u
/* The queue was full and the publish was rejected; retry after. */
#define TERN_PUBLISH_REJECTED 0x10u

/* TERN_PUBLISH_RESULT_V1 is the layout of tern_publish_result in 0.1. */
#define TERN_PUBLISH_RESULT_V1 1
/* TERN_PUBLISH_RESULT_VERSION is its layout in this header. */
#define TERN_PUBLISH_RESULT_VERSION TERN_PUBLISH_RESULT_V1

/*
 * tern_publish_result tells the producer what happened to a publish.
 */
typedef struct tern_publish_result {
  /* id is the message id used, given or generated. */
  uint8_t id[TERN_MAX_ID];
  size_t idlen;
  /* outcome is a set of TERN_PUBLISH_* bits. */
  uint32_t outcome;
  /* nevicted counts the messages evicted by this publish. */
  uint32_t nevicted;
  /* retry_after is set with TERN_PUBLISH_REJECTED. */
  tern_duration retry_after;
} tern_publish_result;

/*
 * tern_hub_publish queues one message for the session with key |key|
 * (1..TERN_MAX_SESSION_KEY bytes), creating the session when it does not
 * exist yet.  The message is stored once; |desc| and everything it points
 * to are copied.  |result| may be NULL.  When given it is filled on success;
 * on TERN_ERR_FULL too (outcome says which rule applied); on
 * TERN_ERR_DUPLICATE only its id and idlen are set (the rest is zero); on
 * other errors it is left untouched.
 *
 * tern_hub_publish_versioned reads |desc| in layout |desc_version| and
 * writes |result| in layout |result_version| (no byte past it); call it
 * through the tern_hub_publish macro, which passes this header's versions.
 *
 * Returns 0, TERN_ERR_INVALID (NULL arguments, empty key, priority out of
 * range, attrs with NULL strings, a layout version the library does not
 * know), TERN_ERR_TOO_LARGE (a field over its limit), TERN_ERR_DUPLICATE,
 * TERN_ERR_FULL (the overflow rule refused or rejected it: see
 * result->outcome), TERN_ERR_LIMIT (max_sessions) or TERN_ERR_NOMEM (for a
 * TERN_MSG_SYNC message this includes the room of its TERN_EV_PERSISTED
 * event).  On any error nothing changed, except that a refused message is
 * counted as dropped for the session.
 */
TERN_EXTERN int tern_hub_publish_versioned(tern_hub *hub, const uint8_t *key,
                                           size_t keylen,
                                           uint32_t desc_version,
                                           const tern_msg_desc *desc,
                                           tern_tstamp now,
                                           uint32_t result_version,
                                           tern_publish_result *result);
/* tern_hub_publish is the 0.1 entry point: layouts V1. */
TERN_EXTERN int tern_hub_publish(tern_hub *hub, const uint8_t *key,
                                 size_t keylen, const tern_msg_desc *desc,
                                 tern_tstamp now, tern_publish_result *result);
#define tern_hub_publish(hub, key, keylen, desc, now, result)              \
  tern_hub_publish_versioned((hub), (key), (keylen), TERN_MSG_DESC_VERSION, \
                             (desc), (now), TERN_PUBLISH_RESULT_VERSION,   \
                             (result))

/*
 * tern_key names one session by its key (1..TERN_MAX_SESSION_KEY bytes),
 * in the arrays of tern_hub_publish_many.  Frozen: it never changes.
 */
typedef struct tern_key {
  const uint8_t *key;
  size_t keylen;
} tern_key;

/*
 * tern_key_result is the outcome of tern_hub_publish_many for one key.
 * Frozen: it never changes.
 */
typedef struct tern_key_result {
  /* error is 0 when the message was queued for the session, else what
     tern_hub_publish would have returned for it alone:
     TERN_ERR_INVALID or TERN_ERR_TOO_LARGE (a bad key),
     TERN_ERR_DUPLICATE, TERN_ERR_FULL, TERN_ERR_LIMIT or TERN_ERR_NOMEM. */
  int32_t error;
  /* outcome is a set of TERN_PUBLISH_* bits, as in tern_publish_result. */
  uint32_t outcome;
  /* nevicted counts the messages evicted from this session. */
  uint32_t nevicted;
} tern_key_result;

/*
 * tern_hub_publish_many queues one message for each of the |nkeys|
 * sessions named by |keys|, creating the sessions that do not exist yet.
 * The payload and the rest of the encoded message are stored once and
 * shared by every session (reference-counted), so a 1 MiB message to
 * 10,000 sessions costs about 1 MiB plus a small record per session.
 * Every session gets the same message id: |desc|'s, or one generated id,
 * written to *|result| (when not NULL, layout |result_version|; its
 * outcome is the union of the per-key outcomes and nevicted their sum).
 * Dedup, collapse keys and the overflow rules apply per session, as for
 * tern_hub_publish; |results| (NULL, or an array of |nkeys|) tells each
 * key's outcome.  A key listed twice is a duplicate the second time when
 * the message has an id and dedup is on, otherwise it gets two copies.
 * |desc| and the keys are copied.  Call it through the
 * tern_hub_publish_many macro.
 *
 * Returns the number of sessions the message was queued for (0 to
 * |nkeys|), or, before anything changed, TERN_ERR_INVALID (NULL hub,
 * desc or keys with nkeys > 0, a bad descriptor, an unknown layout),
 * TERN_ERR_TOO_LARGE (a field of |desc| over its limit) or
 * TERN_ERR_NOMEM (the shared payload).
 */
TERN_EXTERN tern_ssize tern_hub_publish_many_versioned(
    tern_hub *hub, const tern_key *keys, size_t nkeys, uint32_t desc_version,
    const tern_msg_desc *desc, tern_tstamp now, tern_key_result *results,
    uint32_t result_version, tern_publish_result *result);
#define tern_hub_publish_many(hub, keys, nkeys, desc, now, results, result) \
  tern_hub_publish_many_versioned((hub), (keys), (nkeys),                   \
                                  TERN_MSG_DESC_VERSION, (desc), (now),     \
                                  (results), TERN_PUBLISH_RESULT_VERSION,   \
                                  (result))

/* ---- sharding ----------------------------------------------------------- */

/*
 * tern_shard_of returns which of |nshards| hubs owns the session with key
 * |key| (|keylen| bytes): a number in [0, nshards).  A host that runs one
 * hub per thread or per process publishes to, and accepts the receivers
 * of, each session on the hub this names.  It is a pure function, stable
 * across versions, platforms and processes: FNV-1a (64 bit) of the key
 * followed by the jump consistent hash of Lamping and Veach (tern_shard_of(3)
 * gives the algorithm, for routers written in other languages).  When
 * |nshards| grows by one, a key either keeps its shard or moves to the new
 * one (shard nshards - 1); nothing moves between old shards.  |nshards| 0
 * or 1 returns 0; a NULL |key| with |keylen| > 0 returns 0.  Uses no hub,
 * allocates nothing; any thread.
 */
TERN_EXTERN uint32_t tern_shard_of(const uint8_t *key, size_t keylen,
                                   uint32_t nshards);

/* ---- topics ------------------------------------------------------------- */

/*
 * tern_topic is a store-once log for fan-out.  A message published to a
 * topic is kept once, with an offset (1, 2, ... per topic), and every
 * subscribed session (a "member") keeps a cursor into the log: an offline
 * member costs a cursor, not a copy.  A topic message is merged into each
 * member's stream by priority, then publish order, and gets the member's
 * seq only when it is sent; the member's acks advance its cursor.  When
 * the topic's retention (count, bytes, age) or the message's own TTL
 * discards messages a member was not sent yet, the member's next frames
 * include DROPPED(count, TERN_DROP_RETENTION) with the exact count of the
 * ones it lost (those its filter matched).
 */
typedef struct tern_topic tern_topic;

/* TERN_TOPIC_OPTIONS_V1 is the layout of tern_topic_options in 0.3. */
#define TERN_TOPIC_OPTIONS_V1 1
/* TERN_TOPIC_OPTIONS_VERSION is its layout in this header. */
#define TERN_TOPIC_OPTIONS_VERSION TERN_TOPIC_OPTIONS_V1

/*
 * tern_topic_options configures a topic.  Fill it with
 * tern_topic_options_default, then change what you need.
 */
typedef struct tern_topic_options {
  /* version is set by tern_topic_options_default. */
  uint32_t version;
  /* max_messages bounds the messages the log keeps; the oldest go first.
     10000; 0 is unlimited. */
  uint32_t max_messages;
  /* max_bytes bounds the payload bytes the log keeps.  64 MiB; 0 is
     unlimited. */
  uint64_t max_bytes;
  /* max_age: a message is discarded this long after its publish.  0
     (default) keeps it until count, bytes or its own TTL discard it. */
  tern_duration max_age;
  /* rate and burst pace this topic's sends (messages per second, bucket
     size), on top of the hub's topic_rate.  0 (default): not paced. */
  uint32_t rate;
  uint32_t burst;
} tern_topic_options;

/*
 * tern_topic_options_default_versioned fills the fields of layout
 * |version| of |o| with the defaults above and sets o->version; an
 * unknown |version| sets o->version to 0 only, which
 * tern_hub_create_topic refuses.  |o| must not be NULL.  Any thread.
 * Call it through the tern_topic_options_default macro.
 */
TERN_EXTERN void tern_topic_options_default_versioned(uint32_t version,
                                                      tern_topic_options *o);
#define tern_topic_options_default(o) \
  tern_topic_options_default_versioned(TERN_TOPIC_OPTIONS_VERSION, (o))

/*
 * tern_hub_create_topic creates the topic |name| (a topic name, see
 * tern_topic_pattern_check; NUL-terminated) with options |opts| (NULL:
 * the defaults; copied).  Sessions whose pattern subscriptions
 * (tern_hub_subscribe) match the name become members at once, their
 * cursors at the (empty) log's end.  *|ptopic| (when not NULL) gets the
 * topic, valid until tern_topic_del or tern_hub_del.  Returns 0,
 * TERN_ERR_INVALID (NULL hub or name, a bad name, unknown options
 * layout), TERN_ERR_DUPLICATE (a topic of that name exists; *|ptopic|
 * gets it) or TERN_ERR_NOMEM (nothing changed).
 */
TERN_EXTERN int tern_hub_create_topic(tern_hub *hub, const char *name,
                                      const tern_topic_options *opts,
                                      tern_tstamp now, tern_topic **ptopic);

/* tern_hub_find_topic returns the topic |name|, or NULL. */
TERN_EXTERN tern_topic *tern_hub_find_topic(tern_hub *hub, const char *name);

/*
 * tern_topic_del deletes |topic|, its log and its members.  Messages of
 * the topic already sent and not yet acked stay in flight (their payload
 * lives until the last of them is acked or dropped); the others are not
 * sent.  What a member lost before |now| (retention, or a TTL that passed
 * before it was sent) and was not told yet is still told to its session
 * (DROPPED, reason retention).  Pattern subscriptions stay, and match a
 * topic created again under the name.  NULL does nothing.
 */
TERN_EXTERN void tern_topic_del(tern_topic *topic, tern_tstamp now);

/*
 * tern_topic_publish_versioned appends a message to |topic|'s log: stored
 * once, shared by reference with every member it is sent to.  |desc| is
 * read in layout |desc_version| and copied; its collapse key is carried
 * to receivers but does not collapse topic messages, its id is not
 * deduplicated, TERN_MSG_TRACE asks for nothing (the hub's trace setting
 * traces the sends), and TERN_MSG_SYNC is not supported
 * (TERN_ERR_INVALID).  Members whose filter does not match
 * the message's attrs skip it.  *|offset| (when not NULL) gets the
 * message's offset.  Retention is applied first: the oldest messages
 * over the topic's limits are discarded.  Call it through the
 * tern_topic_publish macro.  Returns 0, TERN_ERR_INVALID,
 * TERN_ERR_TOO_LARGE (a field, or a payload over max_bytes) or
 * TERN_ERR_NOMEM (nothing changed).
 */
TERN_EXTERN int tern_topic_publish_versioned(tern_topic *topic,
                                             uint32_t desc_version,
                                             const tern_msg_desc *desc,
                                             tern_tstamp now,
                                             uint64_t *offset);
#define tern_topic_publish(topic, desc, now, offset)                      \
  tern_topic_publish_versioned((topic), TERN_MSG_DESC_VERSION, (desc),    \
                               (now), (offset))

/*
 * tern_hub_subscribe subscribes the session |key| (created when it does
 * not exist) to the topics matching |pattern| (NUL-terminated; a topic
 * name, or a pattern with "*" and "#" segments), with an optional
 * |filter| (NULL or a filter text of tern-filter(7), compiled once;
 * members of one topic with equal filters share it, so a message is
 * matched once per distinct filter).  An exact name needs the topic to
 * exist; a wildcard pattern also subscribes to topics created later.
 * Each new member starts at the end of its topic's log: it gets only
 * messages published after this call.  Subscribing again with the same
 * pattern replaces the filter (the cursors stay).  Returns the number of
 * topics joined now (>= 0), TERN_ERR_INVALID (NULL arguments, a bad key,
 * pattern or filter: *|errpos| (when not NULL) gets the byte offset of a
 * bad pattern's or filter's error), TERN_ERR_NOT_FOUND (an exact name
 * that is no topic), TERN_ERR_LIMIT (max_sessions, or more than 63
 * distinct filters on a topic) or TERN_ERR_NOMEM (nothing changed).
 */
TERN_EXTERN tern_ssize tern_hub_subscribe(tern_hub *hub, const uint8_t *key,
                                          size_t keylen, const char *pattern,
                                          const char *filter, tern_tstamp now,
                                          size_t *errpos);

/*
 * tern_hub_unsubscribe ends the subscription of session |key| made with
 * |pattern| (the same text given to tern_hub_subscribe), and its members
 * on the topics it matched.  Messages of those topics not yet sent to the
 * session are not sent; those in flight are still delivered and acked,
 * but no longer move a cursor.  What a member lost before |now|
 * (retention, or a TTL that passed before it was sent) and was not told
 * yet is still told to the session (DROPPED, reason retention).  Returns
 * the number of members removed, TERN_ERR_INVALID or TERN_ERR_NOT_FOUND
 * (no such session or subscription).
 */
TERN_EXTERN tern_ssize tern_hub_unsubscribe(tern_hub *hub, const uint8_t *key,
                                            size_t keylen, const char *pattern,
                                            tern_tstamp now);

/*
 * tern_receipt is a topic message's read receipt.  The library writes
 * the caller's sizeof (fields are only ever appended).
 */
typedef struct tern_receipt {
  uint64_t offset;     /* the message's offset                            */
  uint64_t subscribed; /* members whose filter matched it when published  */
  uint64_t sent;       /* of those, members it was sent to at least once  */
  uint64_t acked;      /* members that acked it                           */
} tern_receipt;

/*
 * tern_topic_get_receipt fills *|receipt| (|size| bytes, pass
 * sizeof(tern_receipt)) for the message at |offset| of |topic|, while the
 * log retains it.  Constant time, whatever the number of members.
 * Returns 0, TERN_ERR_INVALID (NULL arguments) or TERN_ERR_NOT_FOUND (no
 * such offset, or retention discarded it).
 */
TERN_EXTERN int tern_topic_get_receipt(const tern_topic *topic,
                                       uint64_t offset,
                                       tern_receipt *receipt, size_t size);

/*
 * tern_topic_info describes a topic; the library writes the caller's
 * sizeof.  |name| is valid while the topic is.
 */
typedef struct tern_topic_info {
  const char *name;
  uint64_t first_offset; /* oldest retained message; end if none          */
  uint64_t end_offset;   /* the offset the next message will get          */
  uint64_t messages;     /* retained                                      */
  uint64_t bytes;        /* their payload bytes                           */
  uint64_t members;
} tern_topic_info;

/* tern_topic_get_info fills *|info| (|size| bytes); NULL topic gives
   zeros. */
TERN_EXTERN void tern_topic_get_info(const tern_topic *topic,
                                     tern_topic_info *info, size_t size);

/* ---- sessions ----------------------------------------------------------- */

/*
 * tern_hub_find_session returns the session with key |key|, or NULL.  The
 * pointer stays valid until the session expires (TERN_EV_SESSION_EXPIRED,
 * which only happens inside tern_hub_handle_expiry), the host deletes it
 * (tern_hub_delete_session) or the hub is deleted.
 */
TERN_EXTERN tern_session *tern_hub_find_session(tern_hub *hub,
                                                const uint8_t *key,
                                                size_t keylen);

/*
 * tern_session_info describes a session now.  Fields are only appended.
 */
typedef struct tern_session_info {
  const uint8_t *key;     /* borrowed, valid as long as the session        */
  size_t keylen;
  uint32_t pending;       /* messages waiting to be sent                    */
  uint32_t inflight;      /* messages sent, not acked                       */
  uint64_t pending_bytes; /* payload bytes held                             */
  uint32_t nconns;        /* attached connections                           */
  uint64_t next_seq;      /* the seq the next MSG frame will carry          */
  uint64_t dropped;       /* messages lost before an ack, since creation    */
  tern_tstamp expires;    /* (0.3) when it expires unless a connection
                             attaches; TERN_TSTAMP_NONE while one is       */
  void *user_data;        /* (0.3) tern_session_set_user_data's pointer     */
} tern_session_info;

/*
 * tern_session_get_info copies the first |size| bytes of the session's
 * description into |info| (pass sizeof(tern_session_info)); bytes past the
 * fields this library knows are set to zero.
 */
TERN_EXTERN void tern_session_get_info(const tern_session *session,
                                       tern_session_info *info, size_t size);

/*
 * tern_session_set_user_data attaches an opaque pointer of the host to the
 * session (its user record, say); tern_session_get_user_data returns it
 * (NULL for a new session, and for every session restored by
 * tern_hub_set_store: it is not stored).  The hub never dereferences it.
 * When the session expires, its TERN_EV_SESSION_EXPIRED event carries the
 * pointer in |cookie| (as (uint64_t)(uintptr_t)), so the host can release
 * what it points to; tern_hub_delete_session hands the host nothing, the
 * host knows.  Both do nothing (return NULL) for a NULL session.
 */
TERN_EXTERN void tern_session_set_user_data(tern_session *session,
                                            void *user_data);
TERN_EXTERN void *tern_session_get_user_data(const tern_session *session);

/*
 * tern_hub_delete_session ends the session with key |key| now, as if it had
 * never been: its connections get a GOAWAY with TERN_GOAWAY_REPLACED and
 * no retry hint, and each its end event (TERN_EV_CONN_CLOSED, the one rule
 * of tern_conn_new); every message it holds, pending or in flight, is
 * released and never sent again, a traced one (tern_event_type) with a
 * TERN_EV_CANCELED event; the receiver is not told of them (no DROPPED).
 * With a store, the session's and its messages' records are deleted, so a
 * restarted hub does not restore it.  Its dedup ids are forgotten: a
 * session created again with the same key accepts them (one limit: when
 * that session is created before a restart from a store within the dedup
 * window, the restarted hub counts them again for it, as after an expiry:
 * the stored ids name the key, not the session's generation).  Such a
 * session starts its seqs above every seq the deleted one used, so a
 * receiver that resumes with an old last_seq never acks a new message by
 * mistake (its WELCOME has EXISTED clear: the receiver re-synchronises).
 * Pointers to the session become invalid.  A connection whose HELLO waits
 * for the host (settings.hello_accept) is not attached yet: it is left
 * alone.
 *
 * Returns 0, TERN_ERR_NOT_FOUND (no session with that key),
 * TERN_ERR_INVALID (hub or key NULL, keylen 0 or over
 * TERN_MAX_SESSION_KEY) or TERN_ERR_NOMEM (the store's batch found no room
 * for the deletions; nothing changed).
 */
TERN_EXTERN int tern_hub_delete_session(tern_hub *hub, const uint8_t *key,
                                        size_t keylen, tern_tstamp now);

/* tern_hub_purge_session flag: purge only messages never sent. */
#define TERN_PURGE_UNSENT 0x1u

/*
 * tern_hub_purge_session removes the messages the session with key |key|
 * holds and keeps the session: its connections, its stream position
 * (next_seq), its dedup ids and its losses still to tell.  With |flags| 0
 * every message goes, pending or in flight (one in flight may have reached
 * the receiver already, and is not sent again); with TERN_PURGE_UNSENT only
 * those never sent (a message sent once and waiting to be sent again
 * stays).  A host purges on purpose, so the receiver is not told: purged
 * messages are not losses (no DROPPED, tern_session_info.dropped
 * unchanged).  Each traced message gets a TERN_EV_CANCELED event, and its
 * store record is deleted.
 *
 * Returns the number of messages removed (0 or more), TERN_ERR_NOT_FOUND
 * (no session with that key), TERN_ERR_INVALID (hub or key NULL, keylen 0
 * or over TERN_MAX_SESSION_KEY, unknown |flags|) or TERN_ERR_NOMEM (the
 * store's batch found no room for the deletions; nothing changed).
 */
TERN_EXTERN tern_ssize tern_hub_purge_session(tern_hub *hub,
                                              const uint8_t *key,
                                              size_t keylen, uint32_t flags,
                                              tern_tstamp now);

/*
 * tern_hub_cancel removes the message with id |id| (the id given to
 * tern_hub_publish, or the one it generated: tern_publish_result.id) from
 * the session with key |key|.  A pending message is never sent; one in
 * flight is never sent again, but may have reached the receiver already:
 * the return value says which.  Messages with that id that are held twice
 * (possible with dedup off, or past the dedup window) all go.  The receiver
 * is not told; a traced message gets a TERN_EV_CANCELED event; its store
 * record is deleted.  The id stays in the dedup window: publishing it again
 * within settings.dedup_window is still TERN_ERR_DUPLICATE (a retrying
 * producer does not revive what the host canceled).  Cost: one pass over
 * the messages the session holds (no index by id).
 *
 * Returns 0 (removed, and never sent), 1 (removed, but it had been sent at
 * least once: the receiver may have it), TERN_ERR_NOT_FOUND (no such
 * session, or it holds no message with that id: acked, expired, or never
 * published), TERN_ERR_INVALID (NULL hub, key or id, a length 0 or over
 * its limit) or TERN_ERR_NOMEM (the store's batch found no room for the
 * deletion; nothing changed).
 */
TERN_EXTERN int tern_hub_cancel(tern_hub *hub, const uint8_t *key,
                                size_t keylen, const uint8_t *id,
                                size_t idlen, tern_tstamp now);

/*
 * tern_session_iter is a position in the hub's sessions for
 * tern_hub_next_session.  Zero it to start (TERN_SESSION_ITER_INIT).  Its
 * contents are private; its size is frozen.  It holds no pointer: it stays
 * valid whatever happens to the hub between steps.
 */
typedef struct tern_session_iter {
  uint64_t opaque[2];
} tern_session_iter;
#define TERN_SESSION_ITER_INIT {{0, 0}}

/*
 * tern_hub_next_session returns the next session of |hub| after the
 * position |it|, and moves |it| past it, or returns NULL at the end (and
 * keeps returning NULL).  The order is the hub's own (neither key nor
 * creation order) and does not depend on the table's size, so the host may
 * do anything between two steps: publish, delete sessions, let them
 * expire, create a million more.  Every session that exists from the first
 * step to the last is returned exactly once; one created or deleted in
 * between may be returned or not.  The returned pointer is valid as
 * tern_hub_find_session's.  A whole pass costs O(sessions + table size),
 * so a step O(1) on average while the table is not much larger than the
 * number of sessions (it never shrinks: after most sessions went, steps
 * skip empty buckets).
 */
TERN_EXTERN tern_session *tern_hub_next_session(tern_hub *hub,
                                                tern_session_iter *it);

/* ---- policies: quiet hours, frequency caps ----------------------------- */

/* TERN_POLICY_V1 is the layout of tern_policy. */
#define TERN_POLICY_V1 1
/* TERN_POLICY_VERSION is its layout in this header. */
#define TERN_POLICY_VERSION TERN_POLICY_V1
/* TERN_MAX_CAP is the largest tern_policy.cap_count. */
#define TERN_MAX_CAP 1024

/*
 * tern_policy is a session's delivery policy.  Both rules hold NORMAL and
 * LOW messages back, never drop them: a held message stays queued (it
 * counts against max_pending, may be collapsed by a newer one with its
 * collapse key, and expires at its TTL as any other, counted in
 * tern_stats.expired and told to the receiver in DROPPED), and goes out
 * when the rule lets it.  HIGH messages always pass, and do not count
 * against the cap.  tern_hub_get_expiry includes the moment a hold ends,
 * so the host's loop wakes for it.  Fill it with tern_policy_default,
 * then set what you need.
 *
 * Quiet hours use the wall clock: the hub's |now| moved to the wall clock
 * given by tern_hub_set_wallclock (without one, |now| is taken to be the
 * wall clock, nanoseconds since the Unix epoch), then to the session's
 * local time by |utc_offset|, or by the host's zone callback
 * (tern_hub_set_zone_callback) when |zone| is not 0.
 */
typedef struct tern_policy {
  /* version is set to TERN_POLICY_VERSION by tern_policy_default. */
  uint32_t version;
  /* quiet_start and quiet_end: the quiet hours, seconds after local
     midnight (0..86399), from quiet_start up to but not including
     quiet_end; a window that crosses midnight has quiet_start >
     quiet_end (22:00 to 08:00 is 79200 and 28800).  Equal values: no
     quiet hours (default 0, 0). */
  uint32_t quiet_start;
  uint32_t quiet_end;
  /* utc_offset is the session's local time minus UTC, in seconds
     (-64800..64800): 28800 for UTC+8.  0. */
  int32_t utc_offset;
  /* zone, when not 0, names the session's time zone for the hub's zone
     callback, which then gives the offset instead of |utc_offset|
     (daylight saving time).  0. */
  uint32_t zone;
  /* cap_count: at most this many NORMAL and LOW messages are sent to the
     session within any |cap_window|; the rest wait for the window to
     slide (a message sent again after a lost connection waits too, but
     counts once).  0 (default): no cap.  At most TERN_MAX_CAP. */
  uint32_t cap_count;
  /* cap_window is the cap's sliding window.  Required with cap_count. */
  tern_duration cap_window;
} tern_policy;

/*
 * tern_policy_default_versioned fills the fields of layout |version| of
 * |p| with the defaults above (no policy) and sets p->version; an unknown
 * |version| sets p->version to 0 only, which tern_hub_set_policy refuses.
 * Call it through the tern_policy_default macro.
 */
TERN_EXTERN void tern_policy_default_versioned(uint32_t version,
                                               tern_policy *p);
#define tern_policy_default(p) \
  tern_policy_default_versioned(TERN_POLICY_VERSION, (p))

/*
 * tern_hub_set_policy sets the policy of the session with key |key|,
 * creating the session when it does not exist yet (as a publish would).
 * |p| is copied (its layout p->version); NULL, or a policy with neither
 * quiet hours nor a cap, removes it.  Messages held by the old policy are
 * released at once if the new one lets them go.  The policy is not
 * stored: a hub restored from a store has none until the host sets them
 * again.  A session without a policy costs nothing for it; one with a
 * policy holds a small block (8 bytes per cap_count more).
 *
 * Returns 0, TERN_ERR_INVALID (NULL hub or key, keylen 0, an unknown
 * p->version, a quiet hour past 86399, |utc_offset| out of range,
 * cap_count over TERN_MAX_CAP, cap_count without cap_window),
 * TERN_ERR_TOO_LARGE (keylen over TERN_MAX_SESSION_KEY), TERN_ERR_LIMIT
 * (max_sessions) or TERN_ERR_NOMEM; on any error nothing changed.
 */
TERN_EXTERN int tern_hub_set_policy(tern_hub *hub, const uint8_t *key,
                                    size_t keylen, const tern_policy *p,
                                    tern_tstamp now);

/*
 * tern_zone_fn returns the offset from UTC, in seconds (-64800..64800;
 * a value out of range counts as 0), of time zone |zone| (a
 * tern_policy.zone, the host's own numbering) at |wall_seconds| (seconds
 * since the Unix epoch).  It is called from within hub calls that send
 * or run deadlines; it must not call the hub.
 */
typedef int32_t (*tern_zone_fn)(uint32_t zone, int64_t wall_seconds,
                                void *user_data);

/*
 * tern_hub_set_zone_callback sets the hub's time-zone callback for the
 * policies with a |zone| (NULL |fn|: none; such policies then use their
 * utc_offset).  The hub checks the quiet hours of a session with a zone
 * at least every 15 minutes, so that an offset change is seen in time.
 * Returns 0 or TERN_ERR_INVALID (hub NULL).
 */
TERN_EXTERN int tern_hub_set_zone_callback(tern_hub *hub, tern_zone_fn fn,
                                           void *user_data);

/* ---- connections -------------------------------------------------------- */

/*
 * tern_goaway_reason says why a connection was closed; it travels in the
 * GOAWAY frame and in TERN_EV_CONN_CLOSED events.
 */
typedef enum tern_goaway_reason {
  TERN_GOAWAY_RESTART = 0,   /* the server restarts or shuts down          */
  TERN_GOAWAY_PROTO = 1,     /* the peer broke the protocol                */
  TERN_GOAWAY_TOO_LARGE = 2, /* a frame or field exceeded a limit          */
  TERN_GOAWAY_TIMEOUT = 3,   /* HELLO never came, or the peer went silent  */
  TERN_GOAWAY_REJECTED = 4,  /* the host rejected the HELLO                */
  TERN_GOAWAY_LIMIT = 5,     /* too many connections or sessions           */
  TERN_GOAWAY_INTERNAL = 6,  /* the server ran out of memory               */
  TERN_GOAWAY_CLIENT = 7,    /* the client said goodbye                    */
  TERN_GOAWAY_REPLACED = 8,  /* the host closed it (tern_conn_goaway), or a
                                newer connection of the same receiver
                                resumed its stream                          */
  TERN_GOAWAY_DONE = 9       /* (0.3) a poll's answer is complete
                                (TERN_FRAMING_POLL); never on the wire      */
} tern_goaway_reason;

/*
 * tern_conn_new creates a connection speaking the binary framing of
 * tern-protocol(7), not yet bound to a session: its first frame from the
 * peer must be HELLO, within liveness_timeout of |now|.  The host owns the
 * connection and deletes it with tern_conn_del.
 *
 * How a connection ends, the one rule: whatever ends it (a protocol error
 * or NOMEM in tern_conn_read, max_conns or max_sessions, no HELLO in time,
 * liveness, a GOAWAY from the client, a newer connection of the receiver
 * resuming its stream, tern_conn_goaway, tern_hub_goaway_all,
 * tern_hub_delete_session), the hub queues exactly one end event for it:
 * TERN_EV_CONN_DEAD (liveness of an open connection) or
 * TERN_EV_CONN_CLOSED (everything else, |reason| says why).  On that event the host writes out what tern_conn_write still
 * gives, until it returns TERN_ERR_CLOSED, then closes its socket and calls
 * tern_conn_del.  Return values (tern_conn_read's error, TERN_ERR_CLOSED
 * from a write) need no action of their own.  The room for the end event
 * is reserved here, so it is never lost.  Only tern_conn_del ends a
 * connection without an event (the host knows).
 *
 * Returns 0, TERN_ERR_INVALID or TERN_ERR_NOMEM.
 */
TERN_EXTERN int tern_conn_new(tern_conn **pconn, tern_hub *hub,
                              tern_tstamp now);

/*
 * tern_conn_del detaches the connection from its session (its in-flight
 * messages go back to the session's queue, keeping their priority, to be
 * sent again on another connection or after a resume) and frees it.  A
 * session left without connections starts its session_ttl from the last
 * bytes this connection received.  Queued events that name the connection
 * report conn NULL from then on.  Deleting a connection that has not ended
 * yet ends it without an end event.  NULL does nothing.  Must not be called
 * after tern_hub_del of its hub.
 */
TERN_EXTERN void tern_conn_del(tern_conn *conn);

/*
 * tern_conn_read hands the hub |len| bytes received from the peer.  Complete
 * frames are processed at once; an incomplete tail is kept for the next call.
 *
 * Returns |len| (all bytes are always consumed) or a negative code:
 * TERN_ERR_PROTO or TERN_ERR_TOO_LARGE (malformed or oversized frame: a
 * GOAWAY is queued, the connection is closed, frames before the bad one took
 * effect, nothing of the bad one did), TERN_ERR_LIMIT (HELLO to a session
 * already at max_conns, or max_sessions reached; closed likewise),
 * TERN_ERR_NOMEM (closed likewise), TERN_ERR_CLOSED (already closed),
 * TERN_ERR_INVALID (NULL arguments with len > 0).  Every close queues the
 * connection's end event (see tern_conn_new); the host acts on that.
 */
TERN_EXTERN tern_ssize tern_conn_read(tern_conn *conn, const uint8_t *in,
                                      size_t len, tern_tstamp now);

/*
 * tern_conn_write fills |out| with up to |cap| bytes to send to the peer:
 * control frames first (WELCOME, PONG, PING, DROPPED, GOAWAY), then messages
 * highest priority first, as long as the in-flight window allows.  A message
 * counts as sent, and gets its seq, when its frame starts in |out|; a frame
 * larger than |cap| is continued by the next calls, before anything else.
 *
 * Returns the number of bytes written (0: nothing to send now),
 * TERN_ERR_CLOSED once the connection is closed and everything queued for it
 * was written, TERN_ERR_NOMEM (a frame larger than |cap| needed a buffer to
 * continue from; nothing was written), TERN_ERR_STATE (bytes of
 * tern_conn_peek_output wait for tern_conn_consume) or TERN_ERR_INVALID.
 * After TERN_ERR_NOMEM the hub's deadline is due at once
 * (tern_hub_get_expiry returns at most |now|): tern_hub_handle_expiry puts
 * the connection back on the ready list, so it comes back from
 * tern_hub_next_ready and the host retries then.
 */
TERN_EXTERN tern_ssize tern_conn_write(tern_conn *conn, uint8_t *out,
                                       size_t cap, tern_tstamp now);

/*
 * tern_conn_peek_output is tern_conn_write for a host whose socket may take
 * only part of what it is given: the connection keeps the bytes, and the
 * host needs no buffer of its own.  It points *|data| at the bytes to send
 * and returns their number; they stay offered, the same ones, until
 * tern_conn_consume takes them, and only then does a peek take more from
 * the hub (at most TERN_CONN_PEEK_MAX bytes at a time, held in a block of
 * the hub's allocator that goes back once consumed: an idle connection
 * keeps nothing, and the hub keeps one such block for the next peek).  Returns 0 (nothing to send now), TERN_ERR_CLOSED (closed and
 * everything written), TERN_ERR_NOMEM or TERN_ERR_INVALID, as
 * tern_conn_write does; *|data| is then NULL.  Use one or the other on a
 * connection: tern_conn_write refuses with TERN_ERR_STATE while peeked
 * bytes are not consumed.
 */
#define TERN_CONN_PEEK_MAX 16384
TERN_EXTERN tern_ssize tern_conn_peek_output(tern_conn *conn,
                                             const uint8_t **data,
                                             tern_tstamp now);

/*
 * tern_conn_consume marks the first |n| bytes of the last peek as sent (the
 * number the host's send took).  0, or TERN_ERR_INVALID (|n| larger than
 * what the peek offered).
 */
TERN_EXTERN int tern_conn_consume(tern_conn *conn, size_t n);

/*
 * tern_conn_want_write returns nonzero when tern_conn_write has something to
 * write now, or peeked bytes are not consumed yet.
 */
TERN_EXTERN int tern_conn_want_write(const tern_conn *conn);

/*
 * tern_conn_is_closed returns nonzero once the connection is closed (its end
 * event is queued).  The host writes out what tern_conn_write still gives,
 * then closes its socket and calls tern_conn_del.
 */
TERN_EXTERN int tern_conn_is_closed(const tern_conn *conn);

/*
 * tern_conn_accept completes a HELLO that waits for the host
 * (settings.hello_accept): the connection binds to its session and a
 * WELCOME is queued.
 *
 * Returns 0, TERN_ERR_STATE (no HELLO waiting), TERN_ERR_LIMIT (the session
 * reached max_conns, or max_sessions: the connection is closed, with its
 * end event), TERN_ERR_NOMEM (nothing changed) or TERN_ERR_INVALID.
 */
TERN_EXTERN int tern_conn_accept(tern_conn *conn, tern_tstamp now);

/*
 * tern_conn_goaway queues a GOAWAY with |reason| and |retry_after| and
 * closes the connection; its in-flight messages return to the session.
 * To refuse a HELLO that waits (settings.hello_accept), call it with
 * TERN_GOAWAY_REJECTED.  Like every end, it queues the connection's end
 * event (TERN_EV_CONN_CLOSED with |reason|).
 *
 * Returns 0, TERN_ERR_CLOSED (already closed) or TERN_ERR_INVALID.
 */
TERN_EXTERN int tern_conn_goaway(tern_conn *conn, uint32_t reason,
                                 tern_duration retry_after, tern_tstamp now);

/*
 * tern_conn_set_user_data attaches an opaque pointer to the connection (its
 * socket, say); tern_conn_get_user_data returns it (NULL at first).
 */
TERN_EXTERN void tern_conn_set_user_data(tern_conn *conn, void *user_data);
TERN_EXTERN void *tern_conn_get_user_data(const tern_conn *conn);

/*
 * tern_conn_get_session returns the session the connection is bound to, or
 * NULL before its HELLO is accepted and after it is closed.
 */
TERN_EXTERN tern_session *tern_conn_get_session(const tern_conn *conn);

/*
 * tern_conn_info describes a connection now.  Fields are only appended.
 */
typedef struct tern_conn_info {
  int closed;                       /* tern_conn_is_closed                  */
  uint32_t inflight;                /* messages sent on it, not acked       */
  tern_duration rtt;                /* last PING/PONG round trip, 0 unknown */
  tern_duration heartbeat_interval; /* negotiated                           */
  tern_duration liveness_timeout;   /* negotiated                           */
  int error;                        /* why it closed: a tern_error or 0     */
} tern_conn_info;

/*
 * tern_conn_get_info copies the first |size| bytes of the connection's
 * description into |info| (pass sizeof(tern_conn_info)); bytes past the
 * fields this library knows are set to zero.
 */
TERN_EXTERN void tern_conn_get_info(const tern_conn *conn, tern_conn_info *info,
                                    size_t size);

/* ---- web framings: one-way connections ---------------------------------- */

/*
 * tern_framing names what a connection speaks.  The binary framing of
 * tern-protocol(7) is two-way (tern_conn_new: HELLO, acks in-band).  SSE,
 * NDJSON and polls (tern-web(7)) are one-way: the hub writes, the peer
 * never sends a byte through the connection; it acks out of band
 * (tern_hub_ack) or by resuming with a higher seq.  The two WebSocket
 * framings (0.3) are two-way again: after the host's HTTP upgrade
 * (tern_ws_handshake), tern_conn_read takes the peer's WebSocket frames
 * and tern_conn_write gives the server's.
 */
typedef enum tern_framing {
  TERN_FRAMING_BINARY = 0,  /* tern-protocol(7): tern_conn_new              */
  TERN_FRAMING_SSE = 1,     /* text/event-stream (Server-Sent Events)       */
  TERN_FRAMING_NDJSON = 2,  /* one JSON envelope per line, "\r\n" ended     */
  TERN_FRAMING_POLL = 3,    /* one JSON array per answer (long or short
                               poll), then the connection ends             */
  TERN_FRAMING_WS_BIN = 4,  /* (0.3) WebSocket, subprotocol tern.bin: the
                               binary framing in binary messages, HELLO
                               and acks in-band                            */
  TERN_FRAMING_WS_JSON = 5  /* (0.3) WebSocket, subprotocol tern.json: one
                               JSON envelope per text message, acks as
                               {"ack":N} text messages                     */
} tern_framing;

/* TERN_STREAM_OPTS_V1 is the layout of tern_stream_opts in 0.3. */
#define TERN_STREAM_OPTS_V1 1
/* TERN_STREAM_OPTS_VERSION is its layout in this header. */
#define TERN_STREAM_OPTS_VERSION TERN_STREAM_OPTS_V1

/*
 * tern_stream_opts describes a one-way connection for tern_conn_new_stream.
 * Fill it with tern_stream_opts_default, then set |framing|, the session
 * key and what the request carried.  Fields are only ever appended; the
 * struct is read in layout |version| and not kept (the key is copied).
 */
typedef struct tern_stream_opts {
  /* version is set to TERN_STREAM_OPTS_VERSION by tern_stream_opts_default. */
  uint32_t version;
  /* framing is TERN_FRAMING_SSE, _NDJSON, _POLL, _WS_BIN or _WS_JSON.  0
     (BINARY) by default, which tern_conn_new_stream refuses: the caller
     must choose. */
  int framing;
  /* key is the session key, 1..TERN_MAX_SESSION_KEY bytes; the session is
     created when it does not exist.  NULL by default.  WS_BIN takes none
     (NULL and 0): its HELLO names the session, and the resume. */
  const uint8_t *key;
  size_t keylen;
  /* resume_epoch and resume_seq say what the receiver already has: every
     message of this session up to resume_seq, in hub epoch resume_epoch
     (SSE's Last-Event-ID "<epoch>.<seq>", or ?seq=N; see
     tern_stream_parse_resume).  The seq acks what it names, as a HELLO's
     last_seq does (tern-protocol(7)): the messages up to it on the stream
     that carried it are acked, that stream's connection, if still open,
     is closed (TERN_GOAWAY_REPLACED) and the rest is sent again here.  A
     seq of another epoch, or one that names nothing the session holds,
     acks nothing.  resume_epoch 0 means "not known" (?seq=N alone): the
     seq is then taken as of the current epoch.  0 and 0 by default. */
  uint64_t resume_epoch;
  uint64_t resume_seq;
  /* heartbeat_interval (SSE, NDJSON, WS_JSON): a connection that wrote
     nothing for this long writes a heartbeat (an SSE comment line, an
     NDJSON {"hb":MS} line, a WebSocket PING).  0 takes the hub's
     settings.heartbeat_interval (default); otherwise at least 1 s and at
     most settings.max_heartbeat.  Polls have none; WS_BIN's HELLO
     negotiates its own, as on the binary framing. */
  tern_duration heartbeat_interval;
  /* retry (SSE): the reconnection delay the browser should use, written
     first as "retry: MS".  0 writes none (default).  At most 24 h. */
  tern_duration retry;
  /* poll_hold (POLL): how long the poll waits for a message when none is
     pending, after which it ends with an empty answer (the host answers
     204).  0 is a short poll: it answers at once.  25 s by default (below
     the usual proxy timeouts of 30 s and more).  At most 24 h. */
  tern_duration poll_hold;
} tern_stream_opts;

/* tern_stream_opts_default_versioned fills the fields of layout |version|
   of |o| with the defaults above and sets o->version (no byte past the
   layout); an unknown |version| sets o->version to 0 only, which
   tern_conn_new_stream refuses.  NULL does nothing.  Call it through the
   tern_stream_opts_default macro. */
TERN_EXTERN void tern_stream_opts_default_versioned(uint32_t version,
                                                    tern_stream_opts *o);
#define tern_stream_opts_default(o) \
  tern_stream_opts_default_versioned(TERN_STREAM_OPTS_VERSION, (o))

/*
 * tern_conn_new_stream creates a web connection of framing opts->framing.
 *
 * TERN_FRAMING_WS_BIN (0.3): a connection of the binary framing whose
 * bytes travel in WebSocket binary messages, created as by tern_conn_new
 * (not bound: the peer's first frame must be HELLO, settings.hello_accept
 * applies, heartbeats and liveness are the binary framing's PING/PONG);
 * opts->key must be empty and the resume 0.  Everything else is as for
 * tern_conn_new; only the bytes are wrapped: tern_conn_read decodes the
 * peer's WebSocket frames, tern_conn_write writes one binary message per
 * call (give it at least 3 bytes), plus control frames.
 *
 * TERN_FRAMING_WS_JSON (0.3): as SSE below (bound to opts->key at once,
 * with the resume), but two-way: tern_conn_read takes the peer's
 * {"ack":N} text messages; heartbeats are WebSocket PINGs, and a peer
 * that sends nothing (not even a PONG) for the heartbeat interval plus
 * the hub's margin (settings.liveness_timeout - heartbeat_interval) is
 * dead (TERN_EV_CONN_DEAD).
 *
 * For both WebSocket framings tern_conn_read checks the frames as RFC
 * 6455 asks (masked, fragments, control frames), answers PING with PONG
 * and CLOSE with CLOSE (the code echoed), and any end of the connection
 * writes a CLOSE frame last (tern-web(7) lists the codes), after which
 * tern_conn_write returns TERN_ERR_CLOSED.  A frame that breaks RFC 6455
 * or the subprotocol makes tern_conn_read return TERN_ERR_PROTO (CLOSE
 * 1002, 1003, 1007 or 1008) or TERN_ERR_TOO_LARGE (1009: a tern.json
 * message over 128 bytes, a tern.bin one over 1 MiB), with the end event
 * (TERN_GOAWAY_PROTO, TERN_GOAWAY_TOO_LARGE); a CLOSE of the peer ends it
 * with TERN_GOAWAY_CLIENT.
 *
 * TERN_FRAMING_SSE, _NDJSON and _POLL: a one-way connection bound at
 * once to the session opts->key (created when it does not exist; no
 * HELLO, no TERN_EV_CONN_HELLO, and settings.hello_accept does not apply:
 * the host authenticated the request before this call).
 * The resume in |opts| is applied first.  Then call tern_conn_write as for
 * any connection: it gives the bytes of the response body (the host writes
 * the HTTP status and headers itself; tern-web(7) lists them).
 *
 * A one-way connection has no liveness timeout (nothing comes from the
 * peer): the host calls tern_conn_del when its socket closes, and the
 * messages in flight on it go back to the session, to be sent again unless
 * acked (tern_hub_ack) first.  tern_conn_read refuses it (TERN_ERR_STATE).
 * Its heartbeats, the poll's hold time and the ack timeout are deadlines
 * of the hub (tern_hub_get_expiry, tern_hub_handle_expiry).  A poll ends
 * by itself once its answer is written, or its hold time passed with
 * nothing to send: tern_conn_write then returns TERN_ERR_CLOSED (after 0
 * bytes in all: answer 204), with its end event (TERN_EV_CONN_CLOSED,
 * reason TERN_GOAWAY_DONE); every other end is as for tern_conn_new.
 *
 * Returns 0 and *|pconn|, or: TERN_ERR_INVALID (NULL arguments, an unknown
 * opts->version, a framing that is not SSE, NDJSON, POLL, WS_BIN or
 * WS_JSON, an empty key (a key or resume for WS_BIN), an option out of
 * its range), TERN_ERR_TOO_LARGE (key over
 * TERN_MAX_SESSION_KEY), TERN_ERR_NOMEM or TERN_ERR_LIMIT (the session is
 * at max_conns, or max_sessions is reached).  On TERN_ERR_INVALID,
 * TERN_ERR_TOO_LARGE and TERN_ERR_NOMEM nothing changed; on TERN_ERR_LIMIT
 * only the resume's acks took effect (the receiver did get those
 * messages).  *|pconn| is untouched on error.
 */
TERN_EXTERN int tern_conn_new_stream(tern_conn **pconn, tern_hub *hub,
                                     const tern_stream_opts *opts,
                                     tern_tstamp now);

/*
 * tern_stream_parse_resume parses a resume position: a Last-Event-ID value
 * "<epoch>.<seq>" as the SSE framing writes it, or a bare "<seq>" (a
 * ?seq=N parameter; *|epoch| is then 0, "not known").  Both numbers are
 * decimal, 1 to 20 digits, no sign, no spaces, at most UINT64_MAX.  The
 * |len| bytes at |text| need not be NUL-terminated; trim the header value
 * first.  Returns 0 with *|epoch| and *|seq| set, or TERN_ERR_INVALID
 * (anything else, NULL arguments), leaving them untouched.  Uses no hub;
 * any thread.
 */
TERN_EXTERN int tern_stream_parse_resume(const char *text, size_t len,
                                         uint64_t *epoch, uint64_t *seq);

/*
 * tern_framing_content_type returns the media type of a framing's response
 * body as a static string: "text/event-stream" (SSE),
 * "application/x-ndjson" (NDJSON), "application/json" (POLL), or NULL for
 * any other value.  Any thread.
 */
TERN_EXTERN const char *tern_framing_content_type(int framing);

/*
 * tern_hub_ack acknowledges, out of band, every message up to |seq| on the
 * stream that carried |seq| to the session |key| (acks are per connection:
 * a seq names one connection's messages; an "ack" request of the web
 * framings comes here).  The stream's connection may be open, closed or
 * deleted already (its messages waiting in the session to be sent again
 * are acked then, and not sent again).  A seq whose message is no longer
 * held (acked, expired, or sent again under a newer seq) names its stream
 * only when the session never had another one; otherwise nothing is
 * acked, which is safe (the messages come again, with their ids).
 * Returns the number of messages acked (0 or more), TERN_ERR_NOT_FOUND (no
 * session with that key), TERN_ERR_INVALID (NULL hub or key, keylen 0 or
 * over TERN_MAX_SESSION_KEY, seq 0, or a seq the session has not sent
 * yet); on error nothing changed.
 */
TERN_EXTERN tern_ssize tern_hub_ack(tern_hub *hub, const uint8_t *key,
                                    size_t keylen, uint64_t seq,
                                    tern_tstamp now);

/* ---- WebSocket: the opening handshake (0.3) ----------------------------- */

/* TERN_WS_ACCEPT_LEN is the length of a Sec-WebSocket-Accept value. */
#define TERN_WS_ACCEPT_LEN 28

/*
 * tern_ws_answer is what tern_ws_handshake found: what the 101 answer
 * carries and the framing of the connection to create.  Fields are only
 * appended (tern_ws_handshake takes the caller's size).
 */
typedef struct tern_ws_answer {
  /* framing is TERN_FRAMING_WS_BIN or TERN_FRAMING_WS_JSON: the
     opts->framing of tern_conn_new_stream. */
  int framing;
  /* protocol is the value of the answer's Sec-WebSocket-Protocol header
     ("tern.bin" or "tern.json", a static string), or NULL when the
     client offered none: the answer then has no such header. */
  const char *protocol;
  /* accept is the value of the answer's Sec-WebSocket-Accept header,
     TERN_WS_ACCEPT_LEN characters and a NUL. */
  char accept[TERN_WS_ACCEPT_LEN + 1];
} tern_ws_answer;

/*
 * tern_ws_handshake checks the WebSocket headers of an upgrade request
 * (RFC 6455, 4.2.1) and works out the answer: |key|, |version| and
 * |protocols| are the values of Sec-WebSocket-Key, Sec-WebSocket-Version
 * and Sec-WebSocket-Protocol (several lines of it joined with ","), not
 * NUL-terminated, spaces and tabs around them allowed, NULL (with 0) for
 * a header that is absent.  The chosen subprotocol is the first of
 * "tern.bin" and "tern.json" in the client's list; when the client lists
 * none, |default_framing| (TERN_FRAMING_WS_BIN or _WS_JSON) applies, or,
 * when it is 0, the request is refused.  The host checks the rest itself:
 * GET, HTTP/1.1, "Upgrade: websocket" and "upgrade" among the Connection
 * options (400 otherwise).  On success it answers
 *   HTTP/1.1 101 Switching Protocols
 *   Upgrade: websocket
 *   Connection: Upgrade
 *   Sec-WebSocket-Accept: <answer->accept>
 *   Sec-WebSocket-Protocol: <answer->protocol>   (unless NULL)
 * then creates the connection with tern_conn_new_stream (framing
 * answer->framing) and from then on hands it the socket's bytes.
 * tern_ws_handshake copies the first |size| bytes of its answer to
 * |answer| (pass sizeof(tern_ws_answer); bytes past the fields this
 * library knows are set to zero).  Uses no hub; any thread.
 *
 * Returns 0, or, with |answer| untouched, the code that says what to
 * answer: TERN_ERR_PROTO (Sec-WebSocket-Version absent or not 13: answer
 * 426 Upgrade Required with "Sec-WebSocket-Version: 13"), TERN_ERR_INVALID
 * (400 Bad Request: Sec-WebSocket-Key absent or not the base64 of 16
 * bytes, Sec-WebSocket-Protocol not a list of tokens; also NULL |answer|,
 * |size| 0 or another |default_framing|), TERN_ERR_NOT_FOUND (400 too: the
 * client offered subprotocols but neither of ours, or none while
 * |default_framing| is 0).
 */
TERN_EXTERN int tern_ws_handshake(const char *key, size_t keylen,
                                  const char *version, size_t versionlen,
                                  const char *protocols, size_t protocolslen,
                                  int default_framing, tern_ws_answer *answer,
                                  size_t size);
/* ---- producers on the binary framing (0.3) ------------------------------ */

/*
 * tern_puback_status is the outcome of one PUBLISH frame, carried by its
 * PUBACK (tern-protocol(7)) and by TERN_CLIENT_EV_PUBACK.  A receiver
 * accepts values it does not know.
 */
typedef enum tern_puback_status {
  TERN_PUBACK_ACCEPTED = 0,  /* queued (see tern_hub_publish; a SYNC publish
                                without a store too), or appended to the
                                topic                                        */
  TERN_PUBACK_PERSISTED = 1, /* a SYNC publish is durable: its store batch
                                completed (the TERN_EV_PERSISTED moment)    */
  TERN_PUBACK_DUPLICATE = 2, /* the id was published within dedup_window:
                                nothing changed                             */
  TERN_PUBACK_FULL = 3,      /* the overflow rule refused it (retry 0: it is
                                counted as dropped) or rejected it (retry:
                                try again after that many milliseconds)     */
  TERN_PUBACK_INVALID = 4,   /* a bad session key or topic name, a NUL in a
                                content type or attribute, SYNC to a topic  */
  TERN_PUBACK_TOO_LARGE = 5, /* a payload over max_payload (or the topic's
                                max_bytes)                                  */
  TERN_PUBACK_NOT_FOUND = 6, /* no topic of that name                       */
  TERN_PUBACK_LIMIT = 7,     /* max_sessions reached                        */
  TERN_PUBACK_INTERNAL = 8,  /* the hub ran out of memory: nothing changed  */
  TERN_PUBACK_STORE = 9      /* a SYNC publish's store batch failed: the
                                message stays queued, not durable           */
} tern_puback_status;

/*
 * tern_conn_allow_publish lets the connection's peer publish with PUBLISH
 * frames (|allow| nonzero), or stops it (0).  No connection may publish
 * until its host allows it: a PUBLISH on any other connection ends it with
 * GOAWAY REJECTED and TERN_ERR_PROTO from tern_conn_read.  The host decides
 * who produces: every connection of a listener reserved for producers,
 * say (call it right after tern_conn_new), or those whose HELLO token it
 * checked (settings.hello_accept; call it before or after
 * tern_conn_accept).  A producer still opens with HELLO: its session is
 * its own and receives only what is published to it.  The right covers
 * every session and topic of the hub.
 *
 * A PUBLISH is handled as tern_hub_publish or tern_topic_publish would
 * handle it, at the |now| of its tern_conn_read, and answered by a PUBACK
 * with a tern_puback_status; a SYNC publish with a store is answered once
 * its batch completes (instead of a TERN_EV_PERSISTED event).  PUBACKs are
 * written before any message.
 *
 * Once allowed, tern_conn_read may consume fewer than |len| bytes: the
 * connection owes as many PUBACKs as it holds room for (about 700 not yet
 * written, or 256 SYNC publishes waiting for the store).  The host keeps
 * the bytes not consumed, stops reading the socket, and passes them again
 * after its next tern_conn_write of this connection (a PUBACK that becomes
 * due puts the connection on the ready list).  A connection that stays
 * blocked past its liveness timeout is closed like a silent one.
 *
 * The connection's producer state (64 KiB) is allocated at the first
 * allow and kept until tern_conn_del.  Returns 0, TERN_ERR_CLOSED (the
 * connection is closed), TERN_ERR_NOMEM (nothing changed),
 * TERN_ERR_STATE (a connection of tern_conn_new_stream: publishing goes
 * over the binary framing on its own connection) or TERN_ERR_INVALID
 * (|conn| NULL).
 */
TERN_EXTERN int tern_conn_allow_publish(tern_conn *conn, int allow);

/* ---- events ------------------------------------------------------------- */

/*
 * tern_event_type names an event.  |reason| is a tern_drop_reason for
 * EXPIRED, EVICTED and DEAD, a tern_goaway_reason for CONN_DEAD and
 * CONN_CLOSED, 0 or a tern_error for PERSISTED and STORE_FAILED, 0
 * otherwise.
 *
 * Trace events (ACCEPTED, SENT, ACKED, EXPIRED, COLLAPSED, EVICTED,
 * CANCELED) come only when tracing is on for the hub or the message; they
 * may be shed (settings.max_events, or no memory), counted in
 * tern_stats.events_lost.
 * The others carry a duty for the host and are never shed: PERSISTED and
 * STORE_FAILED (a producer waits), CONN_HELLO (the host must accept or
 * refuse), CONN_DEAD and CONN_CLOSED (the host must delete the
 * connection), SESSION_EXPIRED and DEAD (messages left undelivered),
 * FALLBACK (a message to hand to another channel).  Their
 * room is reserved when the call that will produce them is made, or the
 * call fails with TERN_ERR_NOMEM before it changed anything (see
 * tern_hub_publish, tern_conn_new, tern_hub_flush, tern_hub_handle_expiry).
 *
 * CONN_DEAD and CONN_CLOSED are the end events: exactly one per connection
 * the hub closes, whatever closed it (tern_conn_new says what the host does
 * then).  EXPIRED also comes, under the trace rule, for a stored message
 * found expired by tern_hub_set_store (it expired while the hub was down):
 * |seq| is then 0.
 */
typedef enum tern_event_type {
  TERN_EV_ACCEPTED = 1,        /* a message was queued                        */
  TERN_EV_SENT = 2,            /* sent with |seq| on |conn|                   */
  TERN_EV_ACKED = 3,           /* acknowledged (|seq| is its last seq)        */
  TERN_EV_EXPIRED = 4,         /* discarded at its expiry                     */
  TERN_EV_COLLAPSED = 5,       /* replaced by the message |aux| (its id)      */
  TERN_EV_EVICTED = 6,         /* evicted or refused by an overflow rule      */
  TERN_EV_DEAD = 7,            /* discarded after max_deliver sends           */
  TERN_EV_CONN_HELLO = 8,      /* a HELLO for |session_key|, token in |aux|,
                                  its last_seq in |seq|                       */
  TERN_EV_CONN_DEAD = 9,       /* |conn| was silent past its liveness timeout */
  TERN_EV_CONN_CLOSED = 10,    /* |conn| closed, |reason| a tern_goaway_reason */
  TERN_EV_SESSION_EXPIRED = 11, /* a session expired; |count| messages lost   */
  TERN_EV_PERSISTED = 12,      /* a TERN_MSG_SYNC message is durable; |reason|
                                  is 0, or a tern_error if its batch failed   */
  TERN_EV_STORE_FAILED = 13,   /* a store batch failed: |reason| the error.
                                  One per batch, naming no message: each
                                  SYNC message of the batch gets its own
                                  PERSISTED with the error and its cookie;
                                  ASYNC ones were confirmed by their
                                  publish and stay queued                     */
  TERN_EV_CANCELED = 14,       /* (0.3) removed by the host: tern_hub_cancel,
                                  tern_hub_purge_session or
                                  tern_hub_delete_session; |seq| is its last
                                  seq, 0 if it was never sent                 */
  TERN_EV_FALLBACK = 15,       /* a message with a fallback deadline
                                  (tern_msg_desc.fallback) was not acked by
                                  then: |aux| is its payload, |seq| its last
                                  seq (0: never sent), |count| its sends so
                                  far, |cookie| its cookie.  A duty event   */
  /* (0.3) web hooks, see "web hooks" below; duty events.  |seq| is the
     hook's id, |cookie| the delivery id (0 for DISABLED). */
  TERN_EV_HOOK_DROPPED = 32,   /* a batch was given up: |count| entries lost,
                                  |reason| the last HTTP status (0: no
                                  answer)                                     */
  TERN_EV_HOOK_DISABLED = 33,  /* |count| consecutive batches failed: the
                                  hook sends nothing until
                                  tern_hub_enable_hook                         */
  TERN_EV_HOOK_VERIFIED = 34   /* a challenge ended: |reason| 0 (verified),
                                  TERN_ERR_PROTO (a wrong answer, or a status
                                  that gives up) or TERN_ERR_LIMIT (no answer
                                  within max_attempts)                        */
} tern_event_type;

/* TERN_EVENT_V1 is the layout of tern_event in version 0.1 (up to |count|);
   V2 adds |cookie|. */
#define TERN_EVENT_V1 1
#define TERN_EVENT_V2 2
/* TERN_EVENT_VERSION is the layout of tern_event in this header. */
#define TERN_EVENT_VERSION TERN_EVENT_V2

/*
 * tern_event is one event.  Every pointer in it is owned by the hub and
 * valid until the next call of tern_hub_next_event or any call that changes
 * the hub.  |conn| is NULL when the event names no connection or when the
 * host has deleted it since.
 */
typedef struct tern_event {
  int type;                    /* a tern_event_type                           */
  int reason;                  /* see tern_event_type                         */
  tern_conn *conn;             /* the connection concerned, or NULL           */
  const uint8_t *session_key;
  size_t session_keylen;
  const uint8_t *msg_id;       /* message events: the message's id           */
  size_t msg_idlen;
  const uint8_t *aux;          /* COLLAPSED: the newer id; CONN_HELLO: token;
                                  FALLBACK: the payload                      */
  size_t auxlen;
  uint64_t seq;                /* SENT, ACKED, EXPIRED...: the message's last
                                  seq; CONN_HELLO: last_seq; STORE_FAILED: the
                                  batch                                       */
  uint64_t count;              /* SESSION_EXPIRED: messages it still held     */
  uint64_t cookie;             /* (layout V2) message events (ACCEPTED ..
                                  DEAD, PERSISTED, CANCELED):
                                  tern_msg_desc.cookie of the message, 0 for
                                  messages restored from a store;
                                  SESSION_EXPIRED (0.3): the session's user
                                  data (tern_session_set_user_data); 0 for
                                  other events                              */
} tern_event;

/*
 * tern_hub_next_event_versioned moves the oldest queued event into |ev|,
 * written in layout |version| (no byte past it).  Call it through the
 * tern_hub_next_event macro, which passes TERN_EVENT_VERSION.
 * Returns 1 when it did, 0 when the queue is empty, TERN_ERR_INVALID (NULL
 * arguments, a layout the library does not know).
 */
TERN_EXTERN int tern_hub_next_event_versioned(tern_hub *hub, uint32_t version,
                                              tern_event *ev);
/* tern_hub_next_event is the 0.1 entry point: layout V1. */
TERN_EXTERN int tern_hub_next_event(tern_hub *hub, tern_event *ev);
#define tern_hub_next_event(hub, ev) \
  tern_hub_next_event_versioned((hub), TERN_EVENT_VERSION, (ev))

/*
 * tern_drop_reason is the reason carried by DROPPED frames: why the
 * session lost messages it never acknowledged.  A DROPPED frame written on
 * a connection that ends before its receiver acks a later MSG is told again
 * on the next one: a receiver hears of every loss at least once.  With a
 * store this holds across restarts too: the losses not yet confirmed are
 * kept in the session's record, and a restored session tells them again,
 * together with the stored messages that expired while the hub was down.
 */
typedef enum tern_drop_reason {
  TERN_DROP_EXPIRED = 1,  /* their TTL passed                           */
  TERN_DROP_OVERFLOW = 2, /* evicted or refused by a full queue         */
  TERN_DROP_DEAD = 3,     /* sent max_deliver times without an ack      */
  TERN_DROP_RETENTION = 4 /* a topic's retention passed its subscription's
                             cursor before they were sent (0.3)         */
} tern_drop_reason;

/* ==== persistence: tern_store ============================================ */

/*
 * The hub keeps its state in a store through a table of methods, the model
 * of SQLite's VFS: the host (or the shipped file store) fills the table, the
 * hub calls it.  The store sees an ordered log of records, each setting or
 * deleting one key; it must persist them in order and, at load, replay the
 * live ones (the last set of every key not deleted since).  Keys and values
 * are opaque bytes chosen by the hub; see tern_store(3).
 */

/* TERN_STORE_METHODS_V1 is the layout of tern_store_methods in 0.1. */
#define TERN_STORE_METHODS_V1 1
/* TERN_STORE_METHODS_VERSION is the layout of tern_store_methods. */
#define TERN_STORE_METHODS_VERSION TERN_STORE_METHODS_V1

/* tern_store_op is what a record does to its key. */
typedef enum tern_store_op {
  TERN_STORE_SET = 1, /* key = value                                         */
  TERN_STORE_DEL = 2  /* key is gone (value empty)                           */
} tern_store_op;

/* tern_store_record is one record of a batch; its pointers are valid for
   the duration of the append call only.  Its layout is frozen (append gets
   an array of them). */
typedef struct tern_store_record {
  int op;               /* a tern_store_op                                   */
  const uint8_t *key;
  size_t keylen;        /* 1..TERN_STORE_MAX_KEY                              */
  const uint8_t *value;
  size_t valuelen;
} tern_store_record;

/* TERN_STORE_MAX_KEY is the longest key the hub writes. */
#define TERN_STORE_MAX_KEY 256

/* TERN_STORE_LATER is returned by an append that completes later. */
#define TERN_STORE_LATER 1

/* tern_store_visit receives one live record at load; its pointers are
   valid until it returns.  A nonzero result stops the load, which returns
   that result. */
typedef int (*tern_store_visit)(void *ctx, const uint8_t *key, size_t keylen,
                                const uint8_t *value, size_t valuelen);

/*
 * tern_store_methods is the store's table.  Methods are only ever appended
 * (|version| says which the table has); optional ones may be NULL.  Every method gets the store's |store|
 * pointer first.  Methods return 0 or a negative tern_error (the hub then
 * reports TERN_ERR_STORE); they must not call back into the hub, except
 * tern_hub_store_done.
 */
typedef struct tern_store_methods {
  uint32_t version;   /* TERN_STORE_METHODS_VERSION                          */
  /* append persists |n| records of batch |batch| after every earlier batch.
     |sync| nonzero asks for them to be durable before the batch counts as
     done.  Returns 0 (done), TERN_STORE_LATER (the store will call
     tern_hub_store_done) or an error. */
  int (*append)(void *store, uint64_t batch, const tern_store_record *recs,
                size_t n, int sync);
  /* load replays the live records, in any order, through |visit|, each
     key once.  Returns 0, the first nonzero result of |visit|, or an
     error. */
  int (*load)(void *store, tern_store_visit visit, void *ctx);
  /* sync makes everything appended so far durable.  Optional: NULL means
     append with sync nonzero is the only way. */
  int (*sync)(void *store);
  /* compact rewrites the log to its live records.  Optional. */
  int (*compact)(void *store);
  /* close releases the store.  Optional; the hub never calls it (the
     store's owner closes it after tern_hub_del), it lets generic code close
     any store. */
  void (*close)(void *store);
} tern_store_methods;

/*
 * tern_hub_set_store attaches store |store| with methods |m| (copied: the
 * bytes of layout m->version only; newer methods count as NULL) to an
 * empty hub and restores what it holds: sessions, pending messages (those
 * that were in flight are pending again), dedup ids still in their window,
 * the losses its receivers have not had confirmed, and the epoch, so
 * receivers resume where they were.  Messages whose expiry passed are
 * dropped while loading, each counted as a loss of its session (told to
 * the receiver in DROPPED) and, under the trace rule, reported as
 * TERN_EV_EXPIRED.  From then on the hub appends
 * its changes in batches: at the end of tern_hub_handle_expiry, at
 * tern_hub_flush, and whenever a batch grows large.  tern_hub_get_expiry
 * returns 0 while a batch waits, so a host loop flushes at once.
 *
 * Expiries are stored on the wall clock set by tern_hub_set_wallclock,
 * which should be called first; without one they are stored as |now|'s
 * tstamps, and |now| must then come from a clock that survives restarts
 * (CLOCK_REALTIME).
 *
 * |store| is passed to every method as is (it may be NULL if the methods
 * need nothing).  max_sessions does not limit what is restored.
 *
 * Returns 0, TERN_ERR_INVALID (hub or m NULL, unknown m->version, a
 * required method missing), TERN_ERR_STATE (the hub already has sessions,
 * connections, web hooks or a store), TERN_ERR_STORE or TERN_ERR_NOMEM (load failed:
 * the hub is left empty and storeless; or the first batch after loading
 * failed: the state is restored and the store attached, as after a failed
 * tern_hub_flush).
 */
TERN_EXTERN int tern_hub_set_store(tern_hub *hub, const tern_store_methods *m,
                                   void *store, tern_tstamp now);

/*
 * tern_hub_set_wallclock tells the hub that at its |now| (the monotonic
 * clock of every other call) the wall clock reads |wall_ns| (nanoseconds
 * since the Unix epoch, CLOCK_REALTIME).  The hub stores expiries on the
 * wall clock and converts them back when loading, so that a restart with a
 * monotonic clock that started again from 0 keeps every TTL and dedup
 * window right (time passed while the hub was down counts).  Call it before
 * tern_hub_set_store; calling it again later (say, after the wall clock was
 * stepped) changes only what is stored from then on.  The quiet hours of
 * session policies (tern_hub_set_policy) read the same wall clock.  The core never reads
 * a clock: the host reads both (tern(3) shows how).
 *
 * Returns 0 or TERN_ERR_INVALID (hub NULL, |now| TERN_TSTAMP_NONE, |wall_ns|
 * 0 or TERN_TSTAMP_NONE).
 */
TERN_EXTERN int tern_hub_set_wallclock(tern_hub *hub, tern_tstamp now,
                                       uint64_t wall_ns);

/*
 * tern_hub_flush hands the waiting batch, if any, to the store.  Returns 0,
 * TERN_ERR_STORE (the append failed: TERN_EV_STORE_FAILED and, for SYNC
 * messages in it, TERN_EV_PERSISTED with the error were queued; their ids
 * leave the dedup window so the producer can publish them again),
 * TERN_ERR_NOMEM (nothing was handed over, not even room for the batch's
 * STORE_FAILED event could be found; try again) or TERN_ERR_INVALID.
 */
TERN_EXTERN int tern_hub_flush(tern_hub *hub);

/*
 * tern_hub_store_done is how a store that returned TERN_STORE_LATER from
 * append reports batch |batch| complete: |status| 0 or a negative error.
 * May be called from inside append.  Batches must complete in order.
 * Returns 0, TERN_ERR_INVALID or TERN_ERR_STATE (no such batch waits).
 */
TERN_EXTERN int tern_hub_store_done(tern_hub *hub, uint64_t batch, int status);

/* ==== the file store ====================================================== */

/*
 * The file store is the shipped tern_store: an append-only log of
 * CRC-32C-framed records in segment files (000001.log, 000002.log, ...) in
 * one directory, with a lock file LOCK, an in-memory index of the live
 * keys, group commit (one write and at most one fsync per batch) and
 * compaction.  By default it completes every batch before append returns
 * (it never returns TERN_STORE_LATER).  With the sync_thread option it
 * fsyncs on a thread of its own instead: append writes the batch and
 * returns TERN_STORE_LATER for a batch that must be durable, and the host
 * completes batches on its loop thread with tern_store_file_complete when
 * tern_store_file_fd becomes readable.  After the process crashes the
 * directory holds a prefix of the records appended, in whole records;
 * after the machine crashes, at least every batch that was fsynced
 * (tern_store_file_fsync).  See tern_store_file(3).
 *
 * Thread rule: a tern_store_file may be used by one thread at a time (the
 * host's loop thread, the one that runs its hub).  The store's own sync
 * thread, when there is one, only ever calls fdatasync and wakes the
 * descriptor of tern_store_file_fd; it never calls into the hub or the
 * host.
 */

/* tern_store_file_fsync is when the file store calls fsync (fdatasync). */
typedef enum tern_store_file_fsync {
  TERN_FSYNC_BATCH = 0,  /* once per batch appended with sync nonzero, and
                            by the sync method (default)                   */
  TERN_FSYNC_ALWAYS = 1, /* once per batch, sync or not                     */
  TERN_FSYNC_NEVER = 2   /* never for appends, sync or close (the OS
                            decides); a power loss may lose what a sync
                            append confirmed.  Compaction still fsyncs.    */
} tern_store_file_fsync;

/* TERN_STORE_FILE_OPTIONS_V1 is the layout of tern_store_file_options in
   0.1. */
#define TERN_STORE_FILE_OPTIONS_V1 1
/* TERN_STORE_FILE_OPTIONS_VERSION is the layout of tern_store_file_options. */
/* TERN_STORE_FILE_OPTIONS_V2 adds |sync_thread|. */
#define TERN_STORE_FILE_OPTIONS_V2 2
#define TERN_STORE_FILE_OPTIONS_VERSION TERN_STORE_FILE_OPTIONS_V2

/* TERN_STORE_FILE_MAX_VALUE is the longest value the file store keeps
   (64 MiB); a longer one fails its batch with TERN_ERR_TOO_LARGE. */
#define TERN_STORE_FILE_MAX_VALUE ((size_t)64 * 1024 * 1024)

/* tern_store_file_options configures the file store; fields only appended. */
typedef struct tern_store_file_options {
  uint32_t version;           /* set by tern_store_file_options_default    */
  int fsync;                  /* a tern_store_file_fsync                   */
  uint32_t strict;            /* nonzero: refuse to open when damage other
                                 than a torn tail is found (default: skip
                                 and count it)                              */
  size_t segment_size;        /* start a new segment before a batch would
                                 pass this; 64 MiB; 1 KiB..512 GiB          */
  uint32_t compact_garbage;   /* compact, inside the append that passes it,
                                 when dead bytes exceed this percent of the
                                 log and one segment_size; 50; 0 never;
                                 at most 100                               */
  /* layout V2 */
  uint32_t sync_thread;       /* nonzero: fdatasync on a thread of the
                                 store's own, so the host's loop never waits
                                 for the disk; batches that arrive while a
                                 sync runs share the next one.  Appends
                                 return TERN_STORE_LATER; see
                                 tern_store_file_fd.  Ignored with
                                 TERN_FSYNC_NEVER.  Default 0 (fsync inside
                                 append)                                    */
} tern_store_file_options;

/* tern_store_file_options_default_versioned fills the fields of layout
   |version| of |o| with the defaults and sets o->version (no byte past the
   layout); an unknown |version| sets o->version to 0 only, which
   tern_store_file_open refuses.  NULL does nothing.  Call it through the
   tern_store_file_options_default macro. */
TERN_EXTERN void
tern_store_file_options_default_versioned(uint32_t version,
                                          tern_store_file_options *o);
/* tern_store_file_options_default is the 0.1 entry point: layout V1. */
TERN_EXTERN void tern_store_file_options_default(tern_store_file_options *o);
#define tern_store_file_options_default(o) \
  tern_store_file_options_default_versioned(TERN_STORE_FILE_OPTIONS_VERSION, \
                                            (o))

/* tern_store_file is the shipped store: segment files in one directory. */
typedef struct tern_store_file tern_store_file;

/*
 * tern_store_file_open opens the store in directory |dir| (created if
 * missing, and its parent fsynced; the parent must exist) and stores it in
 * |*pstore|.  It takes an exclusive flock(2) on the directory itself (and
 * on |dir|/LOCK, for older versions), held until close, so that no other
 * process (and no other open in this one) uses the directory, and recovers:
 * temporary files of an interrupted compaction or segment start are
 * removed, as are segments that a finished compaction replaced; a torn tail
 * of the last segment (bytes after the last good record that no good
 * record follows) is truncated and fsynced, with |o|->strict after copying
 * it to "N.log.OFFSET.tail"; a segment without a good header is renamed
 * "N.log.corrupt"; any other damage (a record with a bad CRC, a sealed
 * segment that is shorter than recorded or missing) is skipped, counted in
 * the stats and left on disk, or with |o|->strict refused.  Files named
 * like segments that are no regular files (directories, FIFOs, dangling
 * symlinks) are skipped unread and counted in skipped_files.  Recovery
 * takes time in proportion to the segments' size whatever the records
 * hold (segments of the older format 1 excepted).  |o| NULL
 * takes the defaults (of |o|, the bytes of layout o->version are read;
 * newer options take their defaults); |mem| NULL libc (the struct is
 * copied).  Descriptors are opened close-on-exec.
 *
 * Returns 0, TERN_ERR_INVALID (NULL or empty arguments, bad options),
 * TERN_ERR_NOMEM, TERN_ERR_STATE (the directory is locked) or
 * TERN_ERR_STORE (a system call failed, or strict found damage).  On
 * failure |*pstore| is untouched and tern_store_file_error(NULL) says why.
 */
TERN_EXTERN int tern_store_file_open(tern_store_file **pstore,
                                     const char *dir,
                                     const tern_store_file_options *o,
                                     const tern_mem *mem);

/*
 * tern_store_file_methods_versioned returns the methods table in layout
 * |version| (static; NULL for a layout the library does not know) to pass
 * to tern_hub_set_store together with the tern_store_file pointer; the
 * tern_store_file_methods macro passes TERN_STORE_METHODS_VERSION, and the
 * function of that name, the 0.1 entry point, returns layout V1.
 * Every method is set; its close is tern_store_file_close, so close the
 * store once, through the table or directly.  The methods return, besides
 * 0 (and TERN_STORE_LATER from append with the sync_thread option):
 * append TERN_ERR_INVALID (an unknown op, a NULL or empty key),
 * TERN_ERR_TOO_LARGE (a key longer than TERN_STORE_MAX_KEY or a value
 * longer than TERN_STORE_FILE_MAX_VALUE; nothing of the batch is written),
 * TERN_ERR_NOMEM or TERN_ERR_STORE; load, sync and compact TERN_ERR_NOMEM
 * or TERN_ERR_STORE.  After TERN_ERR_STORE the store is either unchanged
 * and usable (a failed write is cut off the log again; a compaction that
 * failed before its commit is undone) or, when that is not possible or an
 * fsync failed (what reached the disk is then unknown), broken: every later
 * append, load, sync and compact returns TERN_ERR_STORE until the store is
 * closed and opened again, which recovers what is on disk.
 * tern_store_file_error says which.
 */
TERN_EXTERN const tern_store_methods *
tern_store_file_methods_versioned(uint32_t version);
TERN_EXTERN const tern_store_methods *tern_store_file_methods(void);
#define tern_store_file_methods() \
  tern_store_file_methods_versioned(TERN_STORE_METHODS_VERSION)

/* tern_store_file_close closes the store: unless the fsync policy is
   TERN_FSYNC_NEVER, what was appended is fsynced first; the lock is
   released.  With a sync thread, the thread finishes the sync it is
   running and is joined; batches still waiting are made durable as above
   but not reported (call it after tern_hub_del).  NULL does nothing. */
TERN_EXTERN void tern_store_file_close(tern_store_file *store);

/*
 * tern_store_file_fd returns the descriptor that becomes readable when
 * batches the store returned TERN_STORE_LATER for are complete (their sync
 * finished or failed), or -1 when the store completes every batch inside
 * append (no sync_thread, TERN_FSYNC_NEVER, or NULL |store|).  Watch it for
 * reading with poll(2), epoll(7) (level- or edge-triggered) or kqueue, and
 * call tern_store_file_complete when it is readable; do not read or close
 * it.  It is the same descriptor for the store's life.
 */
TERN_EXTERN int tern_store_file_fd(const tern_store_file *store);

/*
 * tern_store_file_complete reports to |hub| (the hub the store is attached
 * to, through tern_hub_set_store) every batch that completed since the
 * last call, in order, through tern_hub_store_done; the hub then queues
 * TERN_EV_PERSISTED for the SYNC publishes in them.  It clears the
 * readiness of tern_store_file_fd and never blocks.  Call it on the hub's
 * thread when the descriptor is readable (a spurious call does no harm).
 * A batch that was written but whose fdatasync failed completes with
 * TERN_ERR_STORE, and so does every batch behind it: the store is broken
 * (see tern_store_file_methods).  To wait for every batch, for example
 * before shutting down, call the sync method first (it fsyncs inline),
 * then this.  Returns the number of batches reported (0 or more), or
 * TERN_ERR_INVALID (|store| or |hub| NULL).
 */
TERN_EXTERN int tern_store_file_complete(tern_store_file *store,
                                         tern_hub *hub);

/* tern_store_file_stats describes a file store; fields only appended. */
typedef struct tern_store_file_stats {
  uint64_t records;        /* records in the log, live or dead            */
  uint64_t live;           /* live keys                                   */
  uint64_t bytes;          /* bytes of all segment files                  */
  uint64_t garbage_bytes;  /* bytes of dead records and of damage         */
  uint64_t segments;       /* segment files                               */
  uint64_t skipped;        /* damaged regions skipped at open: runs of
                              bad bytes, segments without a good header,
                              missing segment ends                        */
  uint64_t truncated;      /* bytes of torn tail truncated at open        */
  uint64_t compactions;    /* since open                                  */
  uint64_t fsyncs;         /* fsync and fdatasync calls since open        */
  uint64_t skipped_bytes;  /* bytes in the skipped regions                */
  uint64_t index_bytes;    /* memory of the in-memory key index           */
  uint64_t compact_failures; /* automatic compactions that failed (the
                              appends that ran them still succeeded)     */
  uint64_t skipped_files;  /* names of segment files that open skipped as
                              no regular file (a directory, FIFO, socket,
                              device or dangling symlink) or could not
                              remove (a directory named like a temporary
                              file); their numbers are never used        */
} tern_store_file_stats;

/* tern_store_file_get_stats copies the first |size| bytes of the stats to
   |st|, zero past the fields this library knows.  NULL |store| or |st|
   does nothing. */
TERN_EXTERN void tern_store_file_get_stats(const tern_store_file *store,
                                           tern_store_file_stats *st,
                                           size_t size);

/*
 * tern_store_file_error describes the last failure of a call on |store|:
 * the failing system call, the file and errno's text, such as "fdatasync
 * 000003.log: Input/output error", or "" when none; valid until the next
 * call on |store|; after a successful open, until a call fails, what the
 * open skipped, moved aside or kept ("" if nothing).  With NULL it
 * describes why the last tern_store_file_open of the calling thread failed
 * ("" if it succeeded).
 */
TERN_EXTERN const char *tern_store_file_error(const tern_store_file *store);

/* ==== the receiver: tern_client ========================================== */

/*
 * tern_client is the other end of the wire, sans-I/O like the hub: it
 * speaks tern-protocol(7) for an app, SDK or test, and owns what receivers
 * get wrong by hand: HELLO with the last seq, dedup by message id, batched
 * acks, liveness, reconnect backoff with jitter, gaps and epoch changes.
 * The host owns the transport: it opens one when the client asks
 * (TERN_CLIENT_EV_CONNECT), calls tern_client_connect once it is up,
 * moves bytes with tern_client_read/tern_client_write, and reports a broken
 * transport with tern_client_conn_lost.  See tern_client_new(3).
 *
 * One rule ends a connection: every transport handed over with a
 * successful tern_client_connect ends with exactly one
 * TERN_CLIENT_EV_DISCONNECTED event, whoever ended it (the server's GOAWAY,
 * silence, a bad frame, no memory, tern_client_conn_lost,
 * tern_client_close), and the host closes the transport on that event and
 * nowhere else.  Error returns of tern_client_read and tern_client_write
 * say why, but the event is what the host acts on.  A transport that
 * could not be opened (tern_client_conn_lost after CONNECT, before
 * tern_client_connect) was never handed over and has no event.
 *
 * States: waiting for a transport (after CONNECT), HELLO sent, connected
 * (after WELCOME), backing off before the next CONNECT, given up, closed.
 *
 * Thread rule: a client may be used by one thread at a time; distinct
 * clients are independent.  A client never calls out except to its
 * tern_mem functions.
 */
typedef struct tern_client tern_client;

/* TERN_CLIENT_SETTINGS_V1 is the layout of tern_client_settings in 0.1. */
#define TERN_CLIENT_SETTINGS_V1 1
/* TERN_CLIENT_SETTINGS_VERSION is the layout of tern_client_settings. */
#define TERN_CLIENT_SETTINGS_VERSION TERN_CLIENT_SETTINGS_V1

/*
 * tern_client_settings configures a client.  Fill it with
 * tern_client_settings_default, then change what you need; fields are only
 * ever appended.  tern_client_new copies it.
 */
typedef struct tern_client_settings {
  /* version is set by tern_client_settings_default. */
  uint32_t version;
  /* heartbeat_interval is asked for in HELLO; 0 takes the server's. 0.
     With adaptive_heartbeat it is the first keepalive interval tried
     instead (0: 30 s). */
  tern_duration heartbeat_interval;
  /* liveness_timeout: no bytes from the server for this long declares the
     connection dead.  7 s, or the server's value from WELCOME once it
     came.  It is also how long the client waits for WELCOME. */
  tern_duration liveness_timeout;
  /* ack_every: an ACK goes out after this many delivered messages (at most
     half the server's in-flight window).  10; at least 1. */
  uint32_t ack_every;
  /* ack_delay: ... or when the oldest unacked one is this old.  1 s. */
  tern_duration ack_delay;
  /* manual_ack: nonzero acks only what the app passes to tern_client_ack,
     so that at-least-once holds through app crashes.  0 (auto ack): a
     message counts as processed, and may be acked to the server, as soon
     as tern_client_next_event returned it, before the app handled it; an
     app that crashes while handling it does not get it again.  An app
     that must not lose such a message sets manual_ack and calls
     tern_client_ack after it handled and persisted the message (see
     tern_client_save_state). */
  uint32_t manual_ack;
  /* dedup_max and dedup_window bound the ids remembered for dedup: the
     oldest id is forgotten past dedup_max ids or after dedup_window.
     10000 ids, 10 min.  dedup_max 0 turns dedup off; dedup_window 0 keeps
     ids until dedup_max pushes them out. */
  uint32_t dedup_max;
  tern_duration dedup_window;
  /* Reconnect backoff: full jitter, exponential from backoff_base up to
     backoff_cap (the n-th wait since the last WELCOME is uniform in
     [0, min(cap, base * 2^n))), at most max_attempts in a row without
     WELCOME, then GIVE_UP.  1 s, 15 s, 6; max_attempts 0 never gives up. */
  tern_duration backoff_base;
  tern_duration backoff_cap;
  uint32_t max_attempts;
  /* adaptive_heartbeat: nonzero probes longer keepalive intervals while
     the path survives them, steps back and locks after a failure, never
     above heartbeat_cap.  The client then asks the server for
     heartbeat_cap in HELLO and keeps the connection alive with its own
     PINGs (tern_client_new(3) describes the algorithm).  0; 5 min. */
  uint32_t adaptive_heartbeat;
  tern_duration heartbeat_cap;
  /* seed feeds the jitter; the same seed replays the same run.  0 mixes in
     the client's address, which is weaker. */
  uint64_t seed;
  /* max_payload is the largest payload accepted from the server, in bytes:
     a larger MSG ends the connection with TERN_ERR_TOO_LARGE.  Match the
     hub's max_payload.  1 MiB; at most 1 GiB. */
  size_t max_payload;
} tern_client_settings;

/* tern_client_settings_default_versioned fills the fields of layout
   |version| of |s| with the defaults above and sets s->version (no byte
   past the layout); an unknown |version| sets s->version to 0 only, which
   tern_client_new refuses.  NULL does nothing.  Call it through the
   tern_client_settings_default macro. */
TERN_EXTERN void
tern_client_settings_default_versioned(uint32_t version,
                                       tern_client_settings *s);
/* tern_client_settings_default is the 0.1 entry point: layout V1. */
TERN_EXTERN void tern_client_settings_default(tern_client_settings *s);
#define tern_client_settings_default(s) \
  tern_client_settings_default_versioned(TERN_CLIENT_SETTINGS_VERSION, (s))

/*
 * tern_client_new creates a client for session |key| (1..TERN_MAX_SESSION_KEY
 * bytes) with |token| (0..TERN_MAX_TOKEN bytes, may be NULL when 0), both
 * copied; |s| NULL takes defaults, |mem| NULL libc (both copied; of |s|
 * the bytes of layout s->version, newer fields taking their defaults).
 * The new client asks for a transport at once (TERN_CLIENT_EV_CONNECT).
 * Returns 0, TERN_ERR_INVALID (NULL or empty key, a setting out of range,
 * an unknown settings version, an incomplete tern_mem), TERN_ERR_TOO_LARGE
 * (key or token) or TERN_ERR_NOMEM.
 */
TERN_EXTERN int tern_client_new(tern_client **pclient, const uint8_t *key,
                                size_t keylen, const uint8_t *token,
                                size_t tokenlen,
                                const tern_client_settings *s,
                                const tern_mem *mem, tern_tstamp now);

/* tern_client_del frees the client and every event still queued.  NULL
   does nothing. */
TERN_EXTERN void tern_client_del(tern_client *client);

/*
 * The resume state: what a receiver must keep across its own restarts so
 * that a new process resumes the stream instead of starting from zero and
 * getting again what the old one processed.  It is a small blob: the
 * session key, the epoch, the highest seq the app processed, and the ids
 * of processed messages that dedup still remembers (within dedup_max and
 * dedup_window), with their ages; versioned and checksummed.  Its format
 * is stable: every later version of libtern restores it (tern_client_new(3)
 * describes it).  Messages taken but not processed are not in it: they
 * come again after a crash.
 *
 * When to save: after the app processed a message, together with the
 * app's own data (one atomic write or transaction), and before the next
 * tern_client_write.  With manual_ack: process, tern_client_ack, save,
 * persist both, then write.  In automatic mode a message counts as
 * processed once tern_client_next_event returned it.
 *
 * tern_client_save_state writes the state into |buf| when it fits in |cap|
 * bytes.  Returns its size in bytes either way (nothing written when that
 * is over |cap|: call again with a buffer that large; |buf| may be NULL
 * when |cap| is 0) or TERN_ERR_INVALID.  Size: 31 + keylen + (5 + idlen)
 * per id, so lower dedup_max to bound it.
 */
TERN_EXTERN tern_ssize tern_client_save_state(const tern_client *client,
                                              uint8_t *buf, size_t cap);

/*
 * tern_client_restore_state loads a state saved by a client of the same
 * session key into a new client, before its first tern_client_connect;
 * |state| is read, not kept.  Ids past dedup_max or dedup_window are
 * dropped; their ages count from |now|.  Returns 0, TERN_ERR_PROTO (not a
 * state: wrong magic, unknown format version, bad checksum, bad length or
 * contents, or no bytes), TERN_ERR_INVALID (NULL client, NULL |state| with
 * a length, or the state of another session key), TERN_ERR_STATE (the
 * client connected already, or was closed) or TERN_ERR_NOMEM.  On error
 * nothing changed.
 */
TERN_EXTERN int tern_client_restore_state(tern_client *client,
                                          const uint8_t *state, size_t len,
                                          tern_tstamp now);

/*
 * tern_client_connect tells the client that the transport it asked for is
 * up: it queues HELLO (last seq, epoch).  The host may also connect while
 * the client backs off or after it gave up (say, when the network came
 * back); the attempt count then starts again after GIVE_UP.
 * Returns 0, TERN_ERR_STATE (a connection is already up),
 * TERN_ERR_CLOSED (after tern_client_close), TERN_ERR_NOMEM (nothing
 * changed) or TERN_ERR_INVALID.
 */
TERN_EXTERN int tern_client_connect(tern_client *client, tern_tstamp now);

/*
 * tern_client_conn_lost tells the client that the transport broke, or
 * that opening it failed.  Unacked state is kept for the resume; a
 * reconnect is scheduled by the backoff.  A transport that was connected
 * ends with TERN_CLIENT_EV_DISCONNECTED (reason
 * TERN_CLIENT_TRANSPORT_LOST, or TERN_GOAWAY_CLIENT after
 * tern_client_close); a failed open queues no event.  After the transport
 * ended (a DISCONNECTED event was queued) this call changes nothing.
 * Returns 0 or TERN_ERR_INVALID.
 */
TERN_EXTERN int tern_client_conn_lost(tern_client *client, tern_tstamp now);

/*
 * tern_client_read hands the client bytes from the server; an incomplete
 * frame at the end is kept for the next call.  Returns |len| or:
 * TERN_ERR_PROTO / TERN_ERR_TOO_LARGE (malformed frame) or TERN_ERR_NOMEM:
 * the frames before took effect, nothing of the bad one did, the
 * connection is ended (its DISCONNECTED event is queued even without
 * memory, a reconnect is scheduled): the host closes the transport when it
 * takes that event; TERN_ERR_STATE (no transport), TERN_ERR_CLOSED (after
 * close), TERN_ERR_INVALID.
 * Bytes after a GOAWAY from the server are ignored.
 */
TERN_EXTERN tern_ssize tern_client_read(tern_client *client, const uint8_t *in,
                                        size_t len, tern_tstamp now);

/*
 * tern_client_write fills |out| with up to |cap| bytes for the server
 * (HELLO, ACK, PING, PONG, GOAWAY, PUBLISH).  Returns bytes written (0:
 * nothing now) or TERN_ERR_STATE (no transport, or bytes of
 * tern_client_peek_output wait for tern_client_consume), TERN_ERR_CLOSED
 * (closed: the GOAWAY was written, and its DISCONNECTED event queued),
 * TERN_ERR_INVALID.
 */
TERN_EXTERN tern_ssize tern_client_write(tern_client *client, uint8_t *out,
                                         size_t cap, tern_tstamp now);

/*
 * tern_client_peek_output is tern_client_write for a host whose socket may
 * take only part of what it is given: it points *|data| at the next bytes
 * for the server, where the client keeps them (no copy, no allocation),
 * and returns their number.  They stay offered until tern_client_consume
 * takes them; a peek after a partial consume offers the rest.  One peek
 * offers one control frame, or up to 16 KiB of queued PUBLISH frames.
 * Returns 0 (nothing now), TERN_ERR_STATE, TERN_ERR_CLOSED or
 * TERN_ERR_INVALID as tern_client_write does; *|data| is then NULL.  The
 * bytes are valid until the next call on the client.  A transport that
 * ends (tern_client_conn_lost, a DISCONNECTED event) drops what was not
 * consumed.  Use one or the other: tern_client_write refuses with
 * TERN_ERR_STATE while peeked bytes are not consumed.
 */
TERN_EXTERN tern_ssize tern_client_peek_output(tern_client *client,
                                               const uint8_t **data,
                                               tern_tstamp now);

/*
 * tern_client_consume marks the first |n| bytes of the last peek as sent
 * (the number the host's send took).  Once the GOAWAY of a closing client
 * is consumed, the client is closed (its DISCONNECTED event queued), as
 * when tern_client_write writes it.  0, or TERN_ERR_INVALID (|n| larger
 * than what the peek offered).
 */
TERN_EXTERN int tern_client_consume(tern_client *client, size_t n);

/* tern_client_want_write: nonzero when tern_client_write has bytes now,
   or peeked bytes are not consumed yet.
   It may turn nonzero after any call, tern_client_next_event included
   (taking a message can make an ACK due). */
TERN_EXTERN int tern_client_want_write(const tern_client *client);

/*
 * tern_client_ack acknowledges every delivered message up to |seq|.  In
 * manual mode this is what lets ACKs go out (batched by ack_every and
 * ack_delay) and what the next HELLO resumes from; in automatic mode it
 * only speeds the next ACK.  An ack for a message taken before a RESYNC
 * event is ignored.  Returns 0 or TERN_ERR_INVALID (NULL, seq 0, or a seq
 * the client never delivered).
 */
TERN_EXTERN int tern_client_ack(tern_client *client, uint64_t seq,
                                tern_tstamp now);

/*
 * tern_client_close says goodbye: pending ACKs and a GOAWAY go out, and no
 * reconnect follows.  Once the GOAWAY is written (or the transport broke,
 * or nothing was sent on it yet) the transport ends with
 * TERN_CLIENT_EV_DISCONNECTED, reason TERN_GOAWAY_CLIENT: close it then.
 * Without a transport the client is closed at once, with no event (a
 * transport opened for a pending CONNECT is refused by
 * tern_client_connect with TERN_ERR_CLOSED: close it).  Returns 0 or
 * TERN_ERR_INVALID.
 */
TERN_EXTERN int tern_client_close(tern_client *client, tern_tstamp now);

/* tern_client_get_expiry / tern_client_handle_expiry: the client's deadlines
   (liveness, ack delay, keepalive, reconnect), as for the hub.
   tern_client_handle_expiry returns 0, TERN_ERR_NOMEM (an event could not
   be queued: nothing changed, the deadline stays due) or TERN_ERR_INVALID. */
TERN_EXTERN tern_tstamp tern_client_get_expiry(const tern_client *client);
TERN_EXTERN int tern_client_handle_expiry(tern_client *client,
                                          tern_tstamp now);

/* tern_client_event_type names a client event. */
typedef enum tern_client_event_type {
  TERN_CLIENT_EV_CONNECT = 1,      /* open a transport now, then connect   */
  TERN_CLIENT_EV_CONNECTED = 2,    /* WELCOME came: |count| 1 if resumed   */
  TERN_CLIENT_EV_MESSAGE = 3,      /* a message for the app (not a dup)    */
  TERN_CLIENT_EV_GAP = 4,          /* the server lost |count| messages
                                      (|reason| a tern_drop_reason)        */
  TERN_CLIENT_EV_RESYNC = 5,       /* the stream restarted (|reason| a
                                      tern_client_resync_reason): seq and
                                      dedup state were cleared; re-sync the
                                      app                                  */
  TERN_CLIENT_EV_DISCONNECTED = 6, /* the transport ended, exactly once per
                                      tern_client_connect (|reason| a
                                      tern_goaway_reason: the server's
                                      GOAWAY, TERN_GOAWAY_TIMEOUT for
                                      silence, PROTO or TOO_LARGE for a bad
                                      frame, INTERNAL for no memory, CLIENT
                                      after tern_client_close; or
                                      TERN_CLIENT_TRANSPORT_LOST); close
                                      the transport.  Unless closed, a
                                      reconnect is scheduled, waiting
                                      |retry_after| when the server gave a
                                      hint                                 */
  TERN_CLIENT_EV_GIVE_UP = 7,      /* |count| attempts failed in a row     */
  TERN_CLIENT_EV_PUBACK = 8        /* (0.3) the answer to a
                                      tern_client_publish: |seq| its
                                      request number, |reason| a
                                      tern_puback_status, |id| the message
                                      id (given or generated; empty for a
                                      topic publish without one),
                                      |retry_after| with FULL              */
} tern_client_event_type;

/* TERN_CLIENT_TRANSPORT_LOST is the reason of the DISCONNECTED event that
   tern_client_conn_lost queues: the host saw the transport break.  It is
   no tern_goaway_reason (those travel on the wire) and above all of them. */
#define TERN_CLIENT_TRANSPORT_LOST 256

/* tern_client_resync_reason says why a RESYNC event came. */
typedef enum tern_client_resync_reason {
  TERN_CLIENT_RESYNC_EPOCH = 1,  /* the server lost its state: new epoch   */
  TERN_CLIENT_RESYNC_SESSION = 2 /* the session expired on the server with
                                    whatever it held (WELCOME says it did
                                    not exist, or its seqs started over)   */
} tern_client_resync_reason;

/* tern_client_attr is one attribute of a received message (frozen). */
typedef struct tern_client_attr {
  const uint8_t *key;
  size_t keylen;
  const uint8_t *value;
  size_t valuelen;
} tern_client_attr;

/* TERN_CLIENT_EVENT_V1 is the layout of tern_client_event in 0.1. */
#define TERN_CLIENT_EVENT_V1 1
/* TERN_CLIENT_EVENT_VERSION is its layout in this header. */
#define TERN_CLIENT_EVENT_VERSION TERN_CLIENT_EVENT_V1

/*
 * tern_client_event is one event; its pointers point into storage owned by
 * the client, valid until the next tern_client_next_event or
 * tern_client_del.
 */
typedef struct tern_client_event {
  int type;                    /* a tern_client_event_type                  */
  int reason;
  uint64_t seq;                /* MESSAGE: its seq (for tern_client_ack)    */
  uint64_t count;
  int priority;                /* MESSAGE                                   */
  tern_duration ttl;           /* MESSAGE: remaining lifetime when the
                                  server sent it; 0 none                    */
  tern_duration retry_after;   /* DISCONNECTED: the server's retry hint     */
  const uint8_t *id;
  size_t idlen;
  const uint8_t *collapse_key;
  size_t collapse_keylen;
  const uint8_t *content_type;
  size_t content_typelen;
  const uint8_t *payload;
  size_t payloadlen;
  size_t nattrs;
  tern_client_attr attrs[TERN_MAX_ATTRS];
} tern_client_event;

/* tern_client_next_event_versioned: 1 and |ev| filled in layout |version|
   (no byte past it), 0 none, TERN_ERR_INVALID (NULL arguments, a layout
   the library does not know).  Call it through the tern_client_next_event
   macro, which passes TERN_CLIENT_EVENT_VERSION. */
TERN_EXTERN int tern_client_next_event_versioned(tern_client *client,
                                                 uint32_t version,
                                                 tern_client_event *ev);
/* tern_client_next_event is the 0.1 entry point: layout V1. */
TERN_EXTERN int tern_client_next_event(tern_client *client,
                                       tern_client_event *ev);
#define tern_client_next_event(client, ev) \
  tern_client_next_event_versioned((client), TERN_CLIENT_EVENT_VERSION, (ev))

/* TERN_CLIENT_PUBLISH_TOPIC: tern_client_publish's target is a topic
   name, not a session key. */
#define TERN_CLIENT_PUBLISH_TOPIC 0x1u

/*
 * tern_client_publish (0.3) queues a PUBLISH frame for the server: the
 * message |desc| (read in layout V1: the id, collapse key, priority, ttl in
 * whole milliseconds, payload, content type, attrs and the flags
 * TERN_MSG_SYNC and TERN_MSG_VOLATILE; cookie and TERN_MSG_TRACE are not
 * sent) for the session |target| (1..TERN_MAX_SESSION_KEY bytes), or with
 * TERN_CLIENT_PUBLISH_TOPIC in |flags| for the topic |target|
 * (1..TERN_MAX_TOPIC bytes).  Everything is copied.  *|req| (when not
 * NULL) gets the request number, 1, 2, ... per client, that the
 * TERN_CLIENT_EV_PUBACK event answering it carries in |seq|.  Publishes
 * are pipelined: queue many, write them with tern_client_write (after any
 * ACK or PONG due), and take their PUBACK events as they come.  PUBACKs
 * come in request order, except that a SYNC publish to a server with a
 * store is answered when its store confirms it, after PUBACKs of later
 * publishes.
 *
 * The server must let the connection publish (tern_conn_allow_publish), or
 * it ends it with GOAWAY REJECTED.  A publish queued or written on a
 * connection that ends before its PUBACK came has an unknown fate: the app
 * publishes it again (with the same id, so that dedup keeps one copy)
 * after the next CONNECTED event; the queue is emptied at every
 * disconnect.
 *
 * Returns 0, TERN_ERR_STATE (not connected: wait for
 * TERN_CLIENT_EV_CONNECTED), TERN_ERR_FULL (1 MiB of publishes is queued
 * and not yet written, or 65536 wait for their PUBACK: write, read, and
 * try again), TERN_ERR_TOO_LARGE (a field over its limit, or a payload
 * over the client's max_payload), TERN_ERR_NOMEM (nothing changed),
 * TERN_ERR_CLOSED (after tern_client_close) or TERN_ERR_INVALID (NULL
 * arguments, an empty target, unknown |flags|, a priority out of range,
 * SYNC with VOLATILE or with a topic).
 */
TERN_EXTERN int tern_client_publish(tern_client *client, uint32_t flags,
                                    const uint8_t *target, size_t targetlen,
                                    const tern_msg_desc *desc, uint64_t *req,
                                    tern_tstamp now);

/* tern_client_stats: counters since tern_client_new; only appended. */
typedef struct tern_client_stats {
  uint64_t received;    /* MSG frames                                      */
  uint64_t delivered;   /* MESSAGE events taken by the app                 */
  uint64_t duplicates;  /* MSG frames dropped by dedup                     */
  uint64_t gaps;        /* messages reported lost by DROPPED               */
  uint64_t resyncs;
  uint64_t reconnects;  /* connects after the first                        */
  uint64_t acks_sent;
  tern_duration rtt;    /* last PING/PONG round trip                       */
  tern_duration heartbeat_interval; /* in use now (adaptive: the keepalive
                                       interval; else the server's)        */
} tern_client_stats;

/* tern_client_get_stats copies the first |size| bytes of the statistics,
   zero past the fields this library knows. */
TERN_EXTERN void tern_client_get_stats(const tern_client *client,
                                       tern_client_stats *st, size_t size);

/* ==== web hooks ========================================================== */

/*
 * Web hooks (callback push): the hub batches entries (an object key, the
 * fields that changed, a time, an optional JSON payload) for an endpoint
 * the host registered, and the host POSTs each batch to the endpoint's
 * target.  The core stays sans-I/O: the target is opaque bytes (a URL,
 * say) that only the host interprets; the host asks for the next request
 * (tern_hub_next_hook_request), performs it with its own HTTP client and
 * timeout, and reports the answer (tern_hub_hook_done).  Hooks belong to
 * the hub: they share its allocator, its thread rule, its event queue
 * (TERN_EV_HOOK_*, duty events) and its store (they survive restarts), and
 * tern_hub_get_expiry includes their deadlines.  tern-hooks(7) tells the
 * whole flow.
 *
 * A hook is named by a 64-bit id the hub gives it (never 0, never given
 * twice by one store).  Every body is JSON:
 *   {"object":"<object>","delivery":"<id>","entry":[
 *     {"id":"<key>","changed_fields":["f",...],"time":T,"data":<payload>},
 *     ...]}
 * ("data" only when the entry has a payload).  Each request carries the
 * headers X-Tern-Timestamp (Unix seconds, from the hub's wall clock, see
 * tern_hub_set_wallclock), X-Tern-Signature ("sha256=" and the lowercase
 * hex HMAC-SHA256, under the hook's secret, of the timestamp's digits, a
 * ".", and the body), X-Tern-Delivery (the delivery id, decimal; the same
 * for every attempt of a batch) and X-Tern-Attempt (1, 2, ...).
 *
 * The answer decides: 200, 201, 202, 204 and 102 deliver the batch; 500,
 * 502, 503, 504, no answer at all (TERN_HOOK_NO_ANSWER: a transport error
 * or the host's timeout) and 429 try again after a backoff (429 honours
 * Retry-After); every other status gives the batch up.  The backoff is
 * exponential with full jitter: attempt n waits a uniform random time in
 * [0, min(retry_cap, retry_base * 2^(n-1))].  A batch given up after
 * max_attempts or by its status is lost (TERN_EV_HOOK_DROPPED); after
 * disable_after consecutive lost batches the hook is disabled
 * (TERN_EV_HOOK_DISABLED) and keeps its queue until tern_hub_enable_hook.
 *
 * Unless created TERN_HOOK_VERIFIED, a hook is first verified as Facebook
 * does: its first request is a GET whose query carries hub.mode=subscribe,
 * hub.challenge (random) and hub.verify_token; the endpoint answers 200
 * with the challenge as its body (tern_hook_check_challenge does its side).
 * Only a verified hook gets deliveries.
 */

/* TERN_MAX_HOOK_TARGET is the longest target, in bytes. */
#define TERN_MAX_HOOK_TARGET 2048
/* TERN_MAX_HOOK_SECRET is the longest secret and the longest verify token. */
#define TERN_MAX_HOOK_SECRET 256
/* TERN_MAX_HOOK_OBJECT is the longest object name. */
#define TERN_MAX_HOOK_OBJECT 64
/* TERN_MAX_HOOK_KEY is the longest object key of an entry. */
#define TERN_MAX_HOOK_KEY 255
/* TERN_MAX_HOOK_FIELDS is the most changed fields an entry (or a coalesced
   entry) names; TERN_MAX_HOOK_FIELD the longest field name. */
#define TERN_MAX_HOOK_FIELDS 32
#define TERN_MAX_HOOK_FIELD 64
/* TERN_HOOK_NO_ANSWER is the status of a request that got no HTTP answer
   (connection refused or reset, the host's timeout). */
#define TERN_HOOK_NO_ANSWER 0

/* tern_hook_opts.flags: the hook needs no challenge (the host verified the
   endpoint some other way). */
#define TERN_HOOK_VERIFIED 0x1u
/* tern_hook_opts.flags: coalesce entries by object key while they wait:
   several changes to one object make one entry with the union of their
   changed fields, the latest time and the latest payload. */
#define TERN_HOOK_COALESCE 0x2u

/* TERN_HOOK_OPTS_V1 is the layout of tern_hook_opts in 0.3. */
#define TERN_HOOK_OPTS_V1 1
/* TERN_HOOK_OPTS_VERSION is its layout in this header. */
#define TERN_HOOK_OPTS_VERSION TERN_HOOK_OPTS_V1

/*
 * tern_hook_opts describes a hook for tern_hub_add_hook.  Fill it with
 * tern_hook_opts_default, then set the target, the secret and what you
 * need.  Read in layout |version| and not kept: the bytes are copied.
 */
typedef struct tern_hook_opts {
  /* version is set by tern_hook_opts_default. */
  uint32_t version;
  /* flags: TERN_HOOK_VERIFIED, TERN_HOOK_COALESCE.  0 by default. */
  uint32_t flags;
  /* target: 1..TERN_MAX_HOOK_TARGET bytes the host understands (a URL),
     handed back in each request.  Required. */
  const uint8_t *target;
  size_t targetlen;
  /* secret: 1..TERN_MAX_HOOK_SECRET bytes that key the signatures.
     Required. */
  const uint8_t *secret;
  size_t secretlen;
  /* verify_token: 0..TERN_MAX_HOOK_SECRET bytes sent as hub.verify_token
     in the challenge.  None by default. */
  const uint8_t *verify_token;
  size_t verify_tokenlen;
  /* object: the body's "object" value, NUL-terminated, printable ASCII
     without '"' or '\\', at most TERN_MAX_HOOK_OBJECT bytes.  NULL (the
     default) writes "object". */
  const char *object;
  /* max_items: a batch holds at most this many entries, and is sent as
     soon as this many wait.  1000; 1 to 1,000,000. */
  uint32_t max_items;
  /* max_attempts: a batch is given up after this many attempts.  10; 0 is
     unlimited. */
  uint32_t max_attempts;
  /* max_bytes: a body is at most this long, and a batch is sent as soon
     as its entries fill it.  1 MiB; 256 to 64 MiB. */
  uint64_t max_bytes;
  /* max_delay: a batch is sent at the latest this long after its oldest
     entry was queued.  5 s; 0 sends each entry at once. */
  tern_duration max_delay;
  /* retry_base and retry_cap: the backoff's first ceiling and its largest.
     1 s and 1 h; base at least 1 ms, cap at least base. */
  tern_duration retry_base;
  tern_duration retry_cap;
  /* disable_after: this many batches given up in a row disable the hook.
     5; 0 never disables. */
  uint32_t disable_after;
  /* max_inflight: batches of the hook outstanding at once (taken and not
     settled, including those waiting to be tried again).  1 (default)
     keeps the endpoint's order strictly: a batch is not sent before the
     one before it is settled.  1 to 1024. */
  uint32_t max_inflight;
  /* max_queued: entries waiting (not in a batch yet) at most; past it
     tern_hub_hook_enqueue fails with TERN_ERR_FULL.  100,000; 0 is
     unlimited. */
  uint64_t max_queued;
} tern_hook_opts;

/* tern_hook_opts_default_versioned fills the fields of layout |version|
   of |o| with the defaults above and sets o->version; an unknown
   |version| sets o->version to 0 only, which tern_hub_add_hook refuses.
   NULL does nothing.  Any thread.  Call it through the
   tern_hook_opts_default macro. */
TERN_EXTERN void tern_hook_opts_default_versioned(uint32_t version,
                                                  tern_hook_opts *o);
#define tern_hook_opts_default(o) \
  tern_hook_opts_default_versioned(TERN_HOOK_OPTS_VERSION, (o))

/*
 * tern_hub_add_hook registers a hook described by |opts| (copied) and
 * sets *|id| (when not NULL) to its id.  A hook without
 * TERN_HOOK_VERIFIED starts with its challenge due at |now|.  With a
 * store, the hook is written in the next batch (sync).  Returns 0,
 * TERN_ERR_INVALID (NULL hub or opts, an unknown layout, a missing target
 * or secret, an option out of its range, a bad object name),
 * TERN_ERR_TOO_LARGE (target, secret, token or object over its limit) or
 * TERN_ERR_NOMEM; on error nothing changed and *|id| is untouched.
 */
TERN_EXTERN int tern_hub_add_hook(tern_hub *hub, const tern_hook_opts *opts,
                                  tern_tstamp now, uint64_t *id);

/*
 * tern_hub_remove_hook deletes hook |id| with its waiting entries and
 * batches (no event: the host asked).  Requests of it already taken stay
 * valid until their answer is reported, which is then refused
 * (TERN_ERR_NOT_FOUND) and changes nothing.  Returns 0, TERN_ERR_INVALID
 * (NULL hub) or TERN_ERR_NOT_FOUND.
 */
TERN_EXTERN int tern_hub_remove_hook(tern_hub *hub, uint64_t id);

/*
 * tern_hub_enable_hook enables a disabled hook again: its count of failed
 * batches starts from 0 and its waiting entries are due as usual from
 * |now|.  An enabled hook is left as it is.  Returns 0, TERN_ERR_INVALID,
 * TERN_ERR_NOT_FOUND or TERN_ERR_NOMEM (its store record; nothing
 * changed).
 */
TERN_EXTERN int tern_hub_enable_hook(tern_hub *hub, uint64_t id,
                                     tern_tstamp now);

/*
 * tern_hub_verify_hook starts the challenge of hook |id| again (after a
 * failed one, or when the endpoint changed hands): the hook is unverified
 * from now on, sends no delivery, and its challenge is due at |now|.  A
 * challenge already taken is forgotten: its answer is refused
 * (TERN_ERR_NOT_FOUND).  Returns 0, TERN_ERR_INVALID, TERN_ERR_NOT_FOUND,
 * TERN_ERR_STATE (batches of it are outstanding: settle them first) or
 * TERN_ERR_NOMEM (nothing changed).
 */
TERN_EXTERN int tern_hub_verify_hook(tern_hub *hub, uint64_t id,
                                     tern_tstamp now);

/*
 * tern_hub_next_hook returns the smallest hook id above |after|, or 0 when
 * there is none: tern_hub_next_hook(hub, 0) is the first.  How a host
 * lists hooks (those restored from a store among them).  NULL hub: 0.
 */
TERN_EXTERN uint64_t tern_hub_next_hook(const tern_hub *hub, uint64_t after);

/* tern_hook_info.state bits. */
#define TERN_HOOK_STATE_VERIFIED 0x1u
#define TERN_HOOK_STATE_DISABLED 0x2u

/* tern_hook_info describes a hook; tern_hub_get_hook_info fills it. */
typedef struct tern_hook_info {
  uint64_t id;
  uint32_t state;            /* TERN_HOOK_STATE_* bits                      */
  uint32_t failures;         /* batches given up in a row                   */
  const uint8_t *target;     /* owned by the hub; valid until the hook is
                                removed                                    */
  size_t targetlen;
  uint64_t queued;           /* entries waiting, not in a batch             */
  uint64_t queued_bytes;     /* their size in the body                      */
  uint32_t outstanding;      /* batches taken and not settled               */
  uint64_t delivered;        /* entries delivered since the hub started     */
  uint64_t dropped;          /* entries given up since the hub started      */
  uint64_t attempts;         /* requests reported since the hub started     */
} tern_hook_info;

/*
 * tern_hub_get_hook_info writes the first |size| bytes of hook |id|'s
 * description into |info|, zero past the fields this library knows.
 * Returns 0, TERN_ERR_INVALID or TERN_ERR_NOT_FOUND (|info| untouched).
 */
TERN_EXTERN int tern_hub_get_hook_info(const tern_hub *hub, uint64_t id,
                                       tern_hook_info *info, size_t size);

/* TERN_HOOK_ENTRY_V1 is the layout of tern_hook_entry in 0.3. */
#define TERN_HOOK_ENTRY_V1 1
/* TERN_HOOK_ENTRY_VERSION is its layout in this header. */
#define TERN_HOOK_ENTRY_VERSION TERN_HOOK_ENTRY_V1

/*
 * tern_hook_entry is one change to tell an endpoint.  The caller fills it
 * (zero what it does not use); it is read in the layout given to
 * tern_hub_hook_enqueue_versioned and copied.
 */
typedef struct tern_hook_entry {
  /* key: the object's key, 1..TERN_MAX_HOOK_KEY bytes of UTF-8, the body's
     "id" (and what TERN_HOOK_COALESCE coalesces by). */
  const uint8_t *key;
  size_t keylen;
  /* fields: |nfields| (0..TERN_MAX_HOOK_FIELDS) NUL-terminated UTF-8 names
     of the fields that changed, each 1..TERN_MAX_HOOK_FIELD bytes. */
  const char *const *fields;
  size_t nfields;
  /* time: when it changed, as the host wants it in the body (Unix seconds,
     say). */
  uint64_t time;
  /* payload: a JSON value for the body's "data", or NULL.  Checked to be
     one JSON value (RFC 8259, UTF-8, nesting at most 64 deep). */
  const uint8_t *payload;
  size_t payloadlen;
} tern_hook_entry;

/*
 * tern_hub_hook_enqueue_versioned queues entry |e| (layout |version|) for
 * hook |id|.  A hook with TERN_HOOK_COALESCE merges it into the waiting
 * entry of the same key, if any.  Disabled and unverified hooks queue too;
 * they send once enabled or verified.  With a store the entry is written
 * in the next batch.  Returns 0, TERN_ERR_INVALID (NULL arguments, an
 * unknown layout, an empty or non-UTF-8 key or field, a payload that is
 * not one JSON value), TERN_ERR_TOO_LARGE (a key, field or count over its
 * limit, a coalesced entry over TERN_MAX_HOOK_FIELDS fields, or an entry
 * whose batch alone would pass max_bytes), TERN_ERR_NOT_FOUND (no hook
 * |id|), TERN_ERR_FULL (max_queued entries wait) or TERN_ERR_NOMEM; on
 * error nothing changed.  Call it through the tern_hub_hook_enqueue
 * macro.
 */
TERN_EXTERN int tern_hub_hook_enqueue_versioned(tern_hub *hub, uint64_t id,
                                                uint32_t version,
                                                const tern_hook_entry *e,
                                                tern_tstamp now);
#define tern_hub_hook_enqueue(hub, id, e, now) \
  tern_hub_hook_enqueue_versioned((hub), (id), TERN_HOOK_ENTRY_VERSION, \
                                  (e), (now))

/* tern_hook_request.kind */
typedef enum tern_hook_kind {
  TERN_HOOK_DELIVERY = 1,  /* POST |body| to |target| with |headers|       */
  TERN_HOOK_CHALLENGE = 2  /* GET |target| with "?" and |query| appended   */
} tern_hook_kind;

/* tern_hook_header is one HTTP header to set: NUL-terminated name and
   value.  Frozen layout (passed in arrays). */
typedef struct tern_hook_header {
  const char *name;
  const char *value;
} tern_hook_header;

/* TERN_HOOK_REQUEST_V1 is the layout of tern_hook_request in 0.3. */
#define TERN_HOOK_REQUEST_V1 1
/* TERN_HOOK_REQUEST_VERSION is its layout in this header. */
#define TERN_HOOK_REQUEST_VERSION TERN_HOOK_REQUEST_V1

/*
 * tern_hook_request is a request for the host to make.  Every pointer is
 * owned by the hub and valid until its answer is reported, the hook is
 * removed (or, for a challenge, verified again) or the hub is deleted.
 */
typedef struct tern_hook_request {
  int kind;                       /* a tern_hook_kind                        */
  uint64_t hook;                  /* the hook's id                           */
  uint64_t delivery;              /* names this request's batch (or
                                     challenge) in tern_hub_hook_done      */
  uint32_t attempt;               /* 1 for the first try                     */
  uint32_t entries;               /* DELIVERY: entries in the body           */
  const char *method;             /* "POST" or "GET"                         */
  const uint8_t *target;
  size_t targetlen;
  const char *query;              /* CHALLENGE: hub.mode=subscribe&
                                     hub.challenge=..&hub.verify_token=..,
                                     percent-encoded; "" for DELIVERY     */
  size_t querylen;
  const uint8_t *body;            /* DELIVERY: the JSON batch; CHALLENGE:
                                     none (NULL, 0)                        */
  size_t bodylen;
  const tern_hook_header *headers; /* to set, Content-Type among them       */
  size_t nheaders;
  uint64_t timestamp;             /* Unix seconds, as in X-Tern-Timestamp    */
} tern_hook_request;

/*
 * tern_hub_next_hook_request_versioned takes the next request due at
 * |now| and describes it in |req| (layout |version|): a challenge due, a
 * batch due again after its backoff, or a new batch (when max_items or
 * max_bytes worth of entries wait, or the oldest waited max_delay, and the
 * hook has fewer than max_inflight batches outstanding).  Hooks take turns.
 * The request is outstanding until tern_hub_hook_done; the host may make
 * several at once.  Returns 1 (|req| filled), 0 (nothing due: see
 * tern_hub_get_expiry), TERN_ERR_INVALID (NULL arguments, unknown layout)
 * or TERN_ERR_NOMEM (nothing taken; |req| untouched on error and at 0).
 * Call it through the tern_hub_next_hook_request macro.
 */
TERN_EXTERN int tern_hub_next_hook_request_versioned(tern_hub *hub,
                                                     uint32_t version,
                                                     tern_tstamp now,
                                                     tern_hook_request *req);
#define tern_hub_next_hook_request(hub, now, req) \
  tern_hub_next_hook_request_versioned((hub), TERN_HOOK_REQUEST_VERSION, \
                                       (now), (req))

/*
 * tern_hub_hook_done reports the answer to the outstanding request
 * |delivery| of hook |hook|: |status| the HTTP status (100..599) or
 * TERN_HOOK_NO_ANSWER; |retry_after| the Retry-After header's value
 * (|retry_afterlen| bytes, NULL if none: delay-seconds or an IMF-fixdate,
 * read only with 429; an unreadable one is ignored); |body| the answer's
 * body (read only for a challenge; NULL if none).  See the top of this
 * section for what each status does.  Returns 0 or: TERN_ERR_INVALID (NULL
 * hub, a status out of range), TERN_ERR_NOT_FOUND (no such hook, or no
 * such request outstanding: already reported, or the hook was removed or
 * verified again), TERN_ERR_NOMEM (room for its events or store records:
 * nothing changed, report it again).
 */
TERN_EXTERN int tern_hub_hook_done(tern_hub *hub, uint64_t hook,
                                   uint64_t delivery, int status,
                                   const char *retry_after,
                                   size_t retry_afterlen, const uint8_t *body,
                                   size_t bodylen, tern_tstamp now);

/*
 * The receiving side (no hub; any thread).
 *
 * tern_hook_check_signature checks a request a hook sent: |timestamp| and
 * |signature| are the values of X-Tern-Timestamp and X-Tern-Signature
 * (not NUL-terminated), |body| the body, |secret| the hook's secret,
 * |now_s| the receiver's Unix time in seconds and |tolerance_s| how far
 * (either way) the timestamp may be from it: a replayed request is
 * refused once its timestamp is older.  Returns 0 (authentic),
 * TERN_ERR_INVALID (NULL arguments, a malformed header value),
 * TERN_ERR_PROTO (the signature does not match; compared in constant
 * time) or TERN_ERR_STATE (the timestamp is outside the tolerance).
 */
TERN_EXTERN int tern_hook_check_signature(const uint8_t *secret,
                                          size_t secretlen,
                                          const char *timestamp,
                                          size_t timestamplen,
                                          const char *signature,
                                          size_t signaturelen,
                                          const uint8_t *body, size_t bodylen,
                                          uint64_t now_s,
                                          uint64_t tolerance_s);

/*
 * tern_hook_check_challenge reads a challenge's query (the part after "?",
 * |querylen| bytes, percent-encoded; parameters in any order, others
 * ignored), checks hub.mode is "subscribe" and hub.verify_token equals
 * |token| (constant time), and points *|challenge| at the challenge to
 * answer with (it lies in |query|: a challenge of the hub needs no
 * decoding).  Returns 0, TERN_ERR_INVALID (NULL arguments, malformed or
 * missing parameters, a challenge that is not 1..128 letters and digits)
 * or TERN_ERR_PROTO (wrong mode or token); the outputs are untouched on
 * error.
 */
TERN_EXTERN int tern_hook_check_challenge(const char *query, size_t querylen,
                                          const uint8_t *token,
                                          size_t tokenlen,
                                          const char **challenge,
                                          size_t *challengelen);

#ifdef __cplusplus
}
#endif

#endif /* TERN_H */
