/*
 * The delivery engine's internal types: hub, session, connection, message,
 * and the functions the files of lib/deliver call across each other.
 *
 * Ownership in one paragraph: the hub owns sessions (hash map by key) and
 * dedup entries; a session owns its messages, which sit either in one of its
 * three pending queues or on the in-flight list of one of its connections;
 * connections are owned by the host (tern_conn_new/tern_conn_del) and
 * attached to at most one session.  Every object that can have a deadline
 * embeds one timer in the hub's heap.
 */
#ifndef TERN_DELIVER_HUB_H
#define TERN_DELIVER_HUB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/hashmap.h"
#include "base/heap.h"
#include "base/rand.h"
#include "tern.h"
#include "wire/frame.h"

typedef struct session session;
typedef struct persist persist;
typedef struct conn conn;
typedef struct msg msg;
typedef struct member member;
typedef struct psub psub;
typedef struct stopics stopics;
typedef struct topic topic;
typedef struct producer producer;
typedef struct spolicy spolicy;

/* timer.kind */
enum { TIMER_SESSION = 2, TIMER_CONN = 3 };

/* msg.flags */
enum {
  MSG_TRACE = 0x1,      /* emit lifecycle events                          */
  MSG_SUPERSEDED = 0x2, /* a newer message with its collapse key exists   */
  MSG_GONE = 0x4,       /* left its session; only a partial write holds it */
  MSG_STORED = 0x8,     /* a store record holds it                         */
  MSG_COOKIE = 0x10,    /* a nonzero host cookie follows the tail          */
  MSG_SHARED = 0x20,    /* the tail area holds a msg_ref to a shared
                           payload instead of the bytes (topic.h)      */
  MSG_TOPIC = 0x40,     /* a per-send message of a topic member: its
                           msg_ref names the member and offset         */
  MSG_FALLBACK = 0x80   /* a fallback record names it (policy.c)       */
};

/*
 * A message, stored once.  The wire tail (flags, id, collapse key, content
 * type, attrs, payload) is encoded at publish time, so a send only writes
 * the frame head and copies the tail.  The host's cookie, when nonzero
 * (MSG_COOKIE), is kept in 8 bytes after the tail, so messages without one
 * pay nothing for it (msg_cookie).
 */
struct msg {
  msg *prev, *next;     /* circular list: a pending queue or an in-flight list */
  session *session;     /* NULL once MSG_GONE                               */
  conn *conn;           /* in flight on; NULL while pending                 */
  tern_tstamp expiry;   /* TERN_TSTAMP_NONE: never expires; the session's
                           timer serves it (session_on_timer)           */
  hnode collapse;       /* hub->collapse_index, when it has a collapse key  */
  uint64_t serial;      /* publish order, hub-wide                          */
  uint64_t seq;         /* seq of its last send; 0 never sent               */
  tern_tstamp sent_at;  /* time of its last send (ack timeout)              */
  uint32_t stream;      /* session-local id of the connection last sent on  */
  uint32_t taillen;
  uint32_t payloadlen;
  uint32_t refs;        /* 1 for the session + 1 per partial write          */
  uint16_t deliveries;  /* sends so far                                     */
  uint8_t priority;
  uint8_t flags;
  uint8_t idlen, id_off;     /* id bytes at tail + id_off                   */
  uint8_t cklen, ck_off;     /* collapse key bytes at tail + ck_off         */
  uint16_t slab_off;         /* offset from its slab's start; set by
                                msg_alloc, and kept while the block is free */
  uint8_t tail[];
};

/*
 * A message's wire tail (flags, id, collapse key, content type, attrs,
 * payload), stored once and shared by reference: by the messages of a
 * tern_hub_publish_many and by a topic's log and its per-send messages.
 */
typedef struct spayload {
  uint32_t refs;
  uint32_t taillen;
  uint32_t payloadlen;
  uint8_t idlen, id_off;   /* as in struct msg                            */
  uint8_t cklen, ck_off;
  uint64_t serial;         /* the hub serial of its publish: the key its
                              store record will have                    */
  uint8_t stored;          /* h-tpersist: a "P" record holds it, deleted
                              with it (persist_topic.c)                 */
  uint8_t tail[];
} spayload;

/*
 * What the tail area of a MSG_SHARED message holds instead of the bytes
 * (at MSG_REF_OFF, for alignment).  A MSG_TOPIC message (a member's
 * per-send message) also names its member and offset, and links into the
 * member's list of outstanding messages.  A host cookie follows it.
 */
typedef struct msg_ref {
  spayload *pl;
  member *mb;              /* MSG_TOPIC: NULL once the member is gone      */
  uint64_t offset;         /* MSG_TOPIC: its offset in the topic           */
  msg *mprev, *mnext;      /* MSG_TOPIC: the member's outstanding list,
                              circular, in offset order                  */
} msg_ref;
#define MSG_REF_OFF \
  (((offsetof(msg, tail) + 7) & ~(size_t)7) - offsetof(msg, tail))
static inline msg_ref *msg_ref_of(const msg *m) {
  return (msg_ref *)(void *)((uint8_t *)(uintptr_t)m->tail + MSG_REF_OFF);
}
/* msg_tail: the wire tail of |m|, its own or the shared one. */
static inline const uint8_t *msg_tail(const msg *m) {
  return (m->flags & MSG_SHARED) ? msg_ref_of(m)->pl->tail : m->tail;
}

/*
 * The message pool.  Messages up to MSG_POOL_MAX_BLOCK bytes (header and
 * tail) come from slabs: MSG_SLAB_BYTES blocks from tern_mem, each cut into
 * blocks of one size class, so a backlog costs one allocation per slab
 * rather than one per message, and blocks are not rounded up far (classes
 * four per doubling waste 11% on average).  A slab is on its class's avail
 * list while it has a free block.  The first slab of a class to empty
 * becomes the class's spare, never freed before the hub (a session that
 * publishes and acks one message at a time keeps reusing it); others that
 * empty are kept, up to max_pool_bytes in all, and freed past it.  A kept
 * slab keeps its blocks for its class (the next burst reuses them at the
 * fast path's cost); another class takes it when its own has none.  So a
 * backlog gives its memory back as it drains, down to max_pool_bytes plus
 * one slab per class.  A larger message, or any with the pool off, is one
 * allocation with a slab header of its own (class MSG_CLASS_SOLO), so that
 * freeing takes one path.
 */
#define MSG_SLAB_BYTES 16384
#define MSG_POOL_MAX_BLOCK 1024
#define MSG_CLASSES 13
#define MSG_CLASS_SOLO 255 /* a "slab" of one message of any size           */
typedef struct slab slab;
struct slab {
  slab *prev, *next;   /* hub->pool_avail[cls] (NULL-terminated), or next on
                          hub->pool_kept[cls]                              */
  void *free;          /* free blocks, linked through their first word    */
  int32_t used;        /* blocks handed out, plus 1 for the class's spare;
                          less SLAB_UNLISTED while off the avail list (it
                          was full), so one test on a free finds both     */
  uint16_t fresh;      /* offset of the first block never handed out:
                          blocks are cut one by one as they are first
                          needed, so that a new slab's memory is first
                          touched by the message that uses it             */
  uint8_t cls;
};
#define SLAB_UNLISTED (1 << 30)

/*
 * A session.  Kept small: a million idle sessions with one connection each
 * must fit in 384 bytes apiece (bench/core measures it), and the struct is
 * 136 bytes so that with a key of up to 16 bytes it takes a 160-byte
 * malloc chunk.
 */
struct session {
  /* hot: lookup, publish, write and ack, in the first lines */
  hnode link;              /* hub->sessions, hash of the key                */
  msg *queue[3];           /* pending, one circular list per priority,
                              sorted by serial                              */
  union {                  /* which one, nconns says:                       */
    conn *conns;           /* nconns > 0: attached connections, singly
                              linked (session_conns)                        */
    tern_tstamp ttl_at;    /* nconns == 0: the session's expiry
                              (session_ttl_at)                              */
  } u;
  uint64_t next_seq;
  uint64_t bytes;          /* payload bytes held                            */
  uint32_t npending;       /* held, not in flight; in flight is the sum of
                              its connections' ninflight (session_nmsgs)    */
  uint32_t dropped[3];     /* not yet told, by tern_drop_reason - 1         */
  uint32_t dropped_total;  /* since creation, saturating                    */
  /* cold */
  uint32_t stream_serial;  /* last stream id given to a connection          */
  uint32_t uid;            /* keys dedup and collapse entries; 2^32 sessions
                              would have to be created within one dedup
                              window for a dead one's entries to match     */
  uint16_t nconns;
  uint8_t keylen;
  uint8_t restored;        /* loading: its "S" record was seen              */
  /* One timer serves both deadlines: the session's own expiry while no
     connection is attached, and its messages' TTLs.  msg_due is a lower
     bound on the earliest message expiry: removing a message leaves it
     alone, and a firing that finds nothing due just recomputes it.  So
     publish and ack never touch the heap for a message's TTL. */
  timer timer;
  tern_tstamp msg_due;
  void *user_data;         /* the host's (tern_session_set_user_data)      */
  stopics *tp;             /* its topic subscriptions; NULL without any,
                              which costs one pointer test per write      */
  uint8_t key[];
};

/*
 * A session's topic state: allocated with its first subscription, freed
 * once it has none left and no loss to tell (topic_session_trim).
 */
struct stopics {
  member *members;         /* its members, one per topic (topic.h)          */
  psub *psubs;             /* its wildcard pattern subscriptions            */
  uint32_t lost;           /* retention losses of members that left (or of
                              notices a dead connection gave back), not
                              yet told                                      */
  spolicy *pol;            /* its policy and fallback records (policy.c);
                              NULL without: the block is the session's one
                              side block, so an idle session without topics
                              or policy pays one pointer for both          */
};

static inline member *session_members(const session *s) {
  return s->tp ? s->tp->members : NULL;
}
static inline psub *session_psubs(const session *s) {
  return s->tp ? s->tp->psubs : NULL;
}

/* conn.state */
enum {
  CONN_HANDSHAKE = 0, /* waiting for HELLO                                  */
  CONN_WAIT_ACCEPT,   /* HELLO seen, the host decides                        */
  CONN_OPEN,
  CONN_CLOSING,       /* GOAWAY or a partial frame still to write            */
  CONN_CLOSED,
  CONN_DELETED        /* deleted by the host; kept until no queued event
                         names it, so deleting is O(1)                     */
};

/* conn.ctl: control frames to write */
enum {
  CTL_WELCOME = 0x1,
  CTL_PONG = 0x2,
  CTL_PING = 0x4,
  CTL_GOAWAY = 0x8
};

/*
 * State a connection needs only sometimes: a partial incoming frame, a
 * partial outgoing frame, a HELLO waiting for the host.  Allocated on
 * demand and freed when empty, so idle connections stay small.
 */
typedef struct conn_aux {
  /* incoming frame tail */
  size_t rlen;
  uint8_t rbuf[WIRE_HEADER_MAX + WIRE_CLIENT_BODY_MAX];
  /* outgoing frame in progress: head bytes then the message tail */
  msg *wmsg;
  size_t woff;  /* bytes of head+tail already written */
  uint8_t whead[WIRE_MSG_HEAD_MAX];
  uint8_t wheadlen;
  /* outgoing control frame in progress (it did not fit the host's buffer) */
  uint16_t wctllen, wctloff;
  uint8_t wctl[WIRE_HEADER_MAX + 2 * 8 + 2 + WIRE_MAX_GOAWAY_TEXT];
  /* DROPPED notices written but not yet known to have arrived: an ACK of
     told_seq or later confirms them (the stream is ordered); if the
     connection dies first, they go back to the session to be told again.
     So a receiver may hear of a loss twice, never not at all. */
  uint32_t told[3];
  uint32_t told_retention; /* TERN_DROP_RETENTION: the members' losses    */
  uint64_t told_seq;
  /* what tern_conn_peek_output offered: peek[peek_off, peek_len) */
  uint8_t *peek;
  uint32_t peek_off, peek_len;
  /* HELLO waiting for tern_conn_accept */
  int hello_waiting;
  uint64_t hello_last_seq, hello_epoch, hello_heartbeat_ms;
  uint8_t hello_keylen;
  uint8_t hello_key[TERN_MAX_SESSION_KEY];
  /* allowed to publish: the PUBLISH/PUBACK state (produce.c), kept until
     tern_conn_del (so the block stays).  Here rather than in the conn: a
     producer is rare, an idle receiver is not. */
  producer *prod;
} conn_aux;



struct conn {
  /* hot: read, write and ack, in the first line */
  tern_hub *hub;
  session *session;
  msg *inflight;           /* circular list in seq order                    */
  conn_aux *aux;
  conn *ready_prev, *ready_next; /* hub ready list                          */
  tern_tstamp last_rx, last_tx;
  uint32_t ninflight;
  uint32_t stream;         /* session-local id                              */
  uint8_t state;
  uint8_t ctl;
  uint8_t ready;           /* on the hub ready list                         */
  uint8_t goaway_reason;
  union {
    uint8_t welcome_flags; /* binary: WIRE_WELCOME_* for the queued WELCOME */
    uint8_t web_flags;     /* web framings: WEB_* (deliver/web.h)          */
  };
  uint8_t write_retry;     /* tern_conn_write ran out of memory: the timer
                              puts it back on the ready list               */
  uint8_t framing;         /* tern_framing; not BINARY: a webconn (and a
                              wsconn for WebSocket) follows the struct
                              (deliver/web.h)                              */
  uint8_t error;           /* the tern_error that closed it, as
                              conn_error_of reads it; 0 none               */
  /* cold */
  timer timer;             /* handshake, heartbeat, liveness, ack timeout   */
  conn *session_next;      /* session->conns                                */
  conn *all_prev, *all_next;     /* hub->conns: every connection            */
  void *user_data;
  uint32_t heartbeat_ms;
  union {
    uint32_t liveness_ms;  /* two-way framings: silence allowed; read it
                              through conn_liveness_ms                     */
    uint32_t retry_ms;     /* one-way framings: SSE's "retry:" hint         */
  };
  uint32_t goaway_retry_ms;
  uint32_t nevents;        /* queued events naming this connection          */
  /* The PING state, last: the one-way web framings (SSE, NDJSON, polls)
     never ping, and their webconn starts here instead (CONN_ONEWAY_SIZE). */
  uint64_t pong_value;     /* PING value to echo                            */
  tern_tstamp ping_sent;   /* value of our unanswered PING; 0 none          */
  uint32_t rtt_us;         /* last PING/PONG round trip, microseconds       */
};

/* The bytes of a one-way web connection's conn: all but the PING state,
   which it has no use for (an idle SSE subscriber saves 24 bytes). */
#define CONN_ONEWAY_SIZE offsetof(conn, pong_value)

/* 1 for SSE, NDJSON and polls, whose conn ends at CONN_ONEWAY_SIZE. */
static inline int conn_is_oneway(const conn *c) {
  return c->framing == TERN_FRAMING_SSE || c->framing == TERN_FRAMING_NDJSON ||
         c->framing == TERN_FRAMING_POLL;
}

/* How long |c| may stay silent; 0: forever (one-way framings, whose peer
   never speaks: the host sees their socket close). */
static inline uint32_t conn_liveness_ms(const conn *c) {
  return conn_is_oneway(c) ? 0 : c->liveness_ms;
}

/* conn.error: every tern_error is -501..-755, kept as -error - 500. */
static inline uint8_t conn_error_pack(int error) {
  return error <= -501 && error >= -755 ? (uint8_t)(-error - 500) : 0;
}
static inline int conn_error_of(const conn *c) {
  return c->error ? -500 - (int)c->error : 0;
}

/* conn_producer: the connection's producer state, NULL for a receiver. */
static inline producer *conn_producer(const conn *c) {
  return c->aux ? c->aux->prod : NULL;
}

/* One dedup entry: (session uid, id) seen at a time. */
typedef struct dedup {
  hnode link;
  struct dedup *fifo_next;
  uint32_t uid;
  uint32_t stored;         /* a "D" record holds it, keyed by serial         */
  uint64_t serial;         /* the message's serial                           */
  tern_tstamp expires;
  uint8_t idlen;
  uint8_t id[];
} dedup;

/* A queued event; strings live in the hub's event arena. */
typedef struct evrec {
  tern_conn *conn;
  uint64_t seq, count;
  uint64_t cookie;         /* the message's tern_msg_desc.cookie           */
  uint32_t key_off, id_off, aux_off;
  uint32_t auxlen;         /* a FALLBACK event's payload may be long      */
  int16_t reason;          /* a tern_drop/goaway_reason or a tern_error */
  uint8_t type, keylen, idlen;
} evrec;

struct tern_hub {
  tern_settings set;
  tern_mem mem;
  rng rand;
  uint64_t hash_key[2];
  uint64_t epoch;
  uint64_t next_serial;
  uint32_t next_uid;
  uint64_t seq_floor;      /* highest seq any deleted session used: a session
                              created again starts above it, so a receiver's
                              stale last_seq never names a new message     */
  heap timers;
  size_t timer_objects;    /* objects that may be armed: heap capacity      */
  hmap sessions;
  hmap collapse_index;     /* (uid, collapse key) -> newest message         */
  hmap dedup_index;
  dedup *dedup_head, *dedup_tail; /* in expiry order                        */
  conn *ready_head, *ready_tail;
  conn *conns;             /* every connection not yet deleted              */
  session *last_session;   /* the last one published to: bursts skip hashing */
  /* message pool (msg.c) */
  size_t pool_limit;       /* largest pooled block; 0: pooling off          */
  slab *pool_avail[MSG_CLASSES]; /* slabs with a free block, per class, but
                                    the head may be full; &pool_none when
                                    there is none                           */
  slab pool_none;          /* no free block: msg_alloc goes the slow way    */
  slab *pool_spare[MSG_CLASSES]; /* the class's spare, once one emptied     */
  slab *pool_kept[MSG_CLASSES]; /* empty slabs kept for reuse, blocks cut:
                                   its class takes them first, another
                                   cuts them anew                           */
  size_t pool_kept_bytes;
  uint32_t pool_slabs;     /* slabs allocated                               */
  uint32_t nconns;
  /* events */
  evrec *ev;
  size_t ev_head, ev_len, ev_cap;
  uint8_t *arena;
  size_t arena_len, arena_cap;
  size_t ev_reserved;      /* duty events promised: room kept for them    */
  uint8_t *peek_spare;     /* a free TERN_CONN_PEEK_MAX block: the next
                              peek's, so a peek consumed whole costs no
                              allocation (conn.c)                          */
  conn_aux *aux_spare;     /* a free aux block, likewise: a connection
                              takes one for every peek or partial frame    */
  struct ws_side *ws_spare; /* a free WebSocket side block, likewise: a
                              WebSocket connection takes one to read      */
  size_t arena_reserved;   /* ... and for their strings                   */
  uint8_t genid[32];       /* last generated id: hex epoch, hex counter      */
  struct persist *persist; /* NULL without a store (persist.c)            */
  int loading;             /* tern_hub_set_store is replaying records       */
  /* tern_hub_set_wallclock: stored expiries are wall-clock times; |now|
     (monotonic) at wall_mono was wall_real on the wall clock.  Without
     it (wall_set 0) both are the same clock. */
  int wall_set;
  tern_tstamp wall_mono;
  uint64_t wall_real;
  /* topics (topic.c) */
  hmap topics;             /* by name                                        */
  topic *topic_list;       /* every topic                                    */
  psub *psubs;             /* every wildcard pattern subscription            */
  struct ifilter *filters; /* interned filters                               */
  member *member_free;     /* the member pool's free list                    */
  void *member_chunks;     /* the pool's blocks, linked through their start  */
  uint32_t member_blocks;
  uint32_t topic_tokens;   /* pacing (set.topic_rate): tokens at tokens_at   */
  tern_tstamp topic_tokens_at;
  tern_tstamp topic_refill; /* when a paced send may go; NONE: none waits   */
  uint64_t accept_tokens;  /* settings.accept_rate's bucket, in token-ns   */
  tern_tstamp accept_at;   /* when it was last filled; NONE: not yet      */
  tern_zone_fn zone_fn;    /* tern_hub_set_zone_callback                  */
  void *zone_data;
  tern_stats stats;
  struct hooks *hooks;     /* web hooks (lib/hooks); NULL until the first  */
};

/* ---- hub.c --------------------------------------------------------------- */
/* hub_accept_defer: with settings.accept_rate, 1 when a HELLO for |s|
   (NULL: a new session) is past the rate; *retry_ms is its hint. */
int hub_accept_defer(tern_hub *hub, const session *s, tern_tstamp now,
                     uint32_t *retry_ms);
int hub_grow_timers(tern_hub *hub);
/* hub_reserve_timer: one more object may be armed.  0 or TERN_ERR_NOMEM. */
static inline int hub_reserve_timer(tern_hub *hub) {
  if (hub->timer_objects < hub->timers.cap) {
    ++hub->timer_objects;
    return 0;
  }
  return hub_grow_timers(hub);
}
static inline void hub_release_timer(tern_hub *hub) { --hub->timer_objects; }
/* The ready list: inline, as every publish and write moves a connection on
   or off it. */
static inline void hub_link_ready(tern_hub *hub, conn *c) {
  c->ready = 1;
  c->ready_next = NULL;
  c->ready_prev = hub->ready_tail;
  if (hub->ready_tail) {
    hub->ready_tail->ready_next = c;
  } else {
    hub->ready_head = c;
  }
  hub->ready_tail = c;
}

static inline void hub_unlink_ready(tern_hub *hub, conn *c) {
  if (c->ready_prev) {
    c->ready_prev->ready_next = c->ready_next;
  } else {
    hub->ready_head = c->ready_next;
  }
  if (c->ready_next) {
    c->ready_next->ready_prev = c->ready_prev;
  } else {
    hub->ready_tail = c->ready_prev;
  }
  c->ready = 0;
  c->ready_prev = c->ready_next = NULL;
}
/* hub_mark_ready puts |c| on the ready list unless it is there already. */
static inline void hub_mark_ready(tern_hub *hub, conn *c) {
  if (!c->ready) {
    hub_link_ready(hub, c);
  }
}
static inline void hub_unready(tern_hub *hub, conn *c) {
  if (c->ready) {
    hub_unlink_ready(hub, c);
  }
}

/* ---- msg.c --------------------------------------------------------------- */
/* msg_class_of maps (size - 1) / 32 to a size class, for sizes up to
   MSG_POOL_MAX_BLOCK; msg_class_size is each class's block size. */
extern const uint8_t msg_class_of[MSG_POOL_MAX_BLOCK / 32];
extern const uint16_t msg_class_size[MSG_CLASSES];
/* msg_pool_init readies the pool of a new hub (hub->set filled in). */
void msg_pool_init(tern_hub *hub);
msg *msg_alloc_slow(tern_hub *hub, size_t size);
/* msg_slab_settle: a block went back to |s|, which was full or is empty. */
void msg_slab_settle(tern_hub *hub, slab *s);
/*
 * msg_alloc returns a block of |size| bytes for a message, uninitialised
 * but for slab_off (which the caller must keep), or NULL (nothing
 * changed).  The pool's fast paths are inline: they run once per message,
 * the rest (a new slab, a slab that fills or empties) once per slab.
 */
static inline msg *msg_alloc(tern_hub *hub, size_t size) {
  if (size <= hub->pool_limit) {
    slab *s = hub->pool_avail[msg_class_of[(size - 1) >> 5]];
    msg *m = s->free;
    if (m) {
      s->free = *(void **)m;
      ++s->used;
      return m; /* slab_off was set when the block was cut */
    }
  }
  return msg_alloc_slow(hub, size);
}
/* msg_unref drops one reference and frees the message at zero.  The list
   and reference helpers are inline: they run several times per message. */
/* msg_release_shared: a MSG_SHARED message is being freed: drop its
   payload reference (topic.c). */
void msg_release_shared(tern_hub *hub, msg *m);
/* msg_free_block returns |m|'s block to the pool (refs reached 0, not
   MSG_SHARED). */
static inline void msg_free_block(tern_hub *hub, msg *m) {
  slab *s = (slab *)(void *)((uint8_t *)m - m->slab_off);
  *(void **)m = s->free;
  s->free = m;
  if (--s->used <= 0) { /* empty, off the avail list, or a solo message */
    msg_slab_settle(hub, s);
  }
}
static inline void msg_unref(tern_hub *hub, msg *m) {
  if (--m->refs != 0) {
    return;
  }
  if (m->flags & MSG_SHARED) {
    msg_release_shared(hub, m);
  }
  msg_free_block(hub, m);
}
/* msg_pool_free frees the pool's slabs (tern_hub_del: no message left). */
void msg_pool_free(tern_hub *hub);
static inline const uint8_t *msg_id(const msg *m) {
  return msg_tail(m) + m->id_off;
}
static inline const uint8_t *msg_ck(const msg *m) {
  return msg_tail(m) + m->ck_off;
}
static inline uint64_t msg_cookie(const msg *m) {
  uint64_t cookie = 0;
  if (m->flags & MSG_COOKIE) {
    const uint8_t *at = (m->flags & MSG_SHARED)
                            ? (const uint8_t *)(msg_ref_of(m) + 1)
                            : m->tail + m->taillen;
    memcpy(&cookie, at, sizeof(cookie));
  }
  return cookie;
}
static inline int msg_traced(const tern_hub *hub, const msg *m) {
  return hub->set.trace || (m->flags & MSG_TRACE);
}
/* list helpers for circular message lists */
static inline void mlist_push(msg **head, msg *m) {
  msg *h = *head;
  if (!h) {
    m->prev = m->next = m;
    *head = m;
    return;
  }
  m->next = h;
  m->prev = h->prev;
  h->prev->next = m;
  h->prev = m;
}
static inline void mlist_remove(msg **head, msg *m) {
  if (m->next == m) {
    *head = NULL;
  } else {
    m->prev->next = m->next;
    m->next->prev = m->prev;
    if (*head == m) {
      *head = m->next;
    }
  }
  m->prev = m->next = NULL;
}
/* mlist_insert_sorted puts m by serial order (returning messages). */
void mlist_insert_sorted(msg **head, msg *m);

/* ---- session.c ----------------------------------------------------------- */
/* key_eq compares session keys of equal length |n| (<= 255) without a
   libc call: every publish compares one, and they are short. */
static inline int key_eq(const uint8_t *a, const uint8_t *b, size_t n) {
  uint64_t diff = 0;
  if (n == 16) { /* the usual length: a user id, a device token's digest */
    uint64_t x[2], y[2];
    memcpy(x, a, 16);
    memcpy(y, b, 16);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
  }
  for (; n >= 8; n -= 8, a += 8, b += 8) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    diff |= x ^ y;
  }
  for (; n > 0; --n) {
    diff |= (uint64_t)(*a++ ^ *b++);
  }
  return diff == 0;
}
session *session_find(tern_hub *hub, const uint8_t *key, size_t keylen,
                      uint64_t hash);
uint64_t session_hash(const tern_hub *hub, const uint8_t *key, size_t keylen);
int session_new(tern_hub *hub, session **ps, const uint8_t *key,
                size_t keylen, uint64_t hash, tern_tstamp now);
/* session_destroy frees the session and everything it holds; no events. */
void session_destroy(tern_hub *hub, session *s);
/* session_on_timer expires due messages, then the session if it is due.
   0, or TERN_ERR_NOMEM: the session's expiry event had no room; it stays
   due. */
int session_on_timer(tern_hub *hub, session *s, tern_tstamp now);
void session_arm(tern_hub *hub, session *s);
/* session_conns: the connections attached to |s|, or NULL. */
static inline conn *session_conns(const session *s) {
  return s->nconns ? s->u.conns : NULL;
}
/* session_ttl_at: when |s| expires; NONE while a connection is attached. */
static inline tern_tstamp session_ttl_at(const session *s) {
  return s->nconns ? TERN_TSTAMP_NONE : s->u.ttl_at;
}
/* session_nmsgs: the messages |s| holds, pending and in flight. */
static inline uint64_t session_nmsgs(const session *s) {
  uint64_t n = s->npending;
  for (const conn *c = session_conns(s); c; c = c->session_next) {
    n += c->ninflight;
  }
  return n;
}
/* session_has_drops: losses the receiver has not been told of yet. */
static inline int session_has_drops(const session *s) {
  return (s->dropped[0] | s->dropped[1] | s->dropped[2]) != 0;
}

/* session_enqueue appends a new message to its pending queue. */
static inline void session_enqueue(session *s, msg *m) {
  m->session = s;
  mlist_push(&s->queue[m->priority], m);
  ++s->npending;
  s->bytes += m->payloadlen;
}
/* session_pop_pending removes and returns the next message to send. */
msg *session_pop_pending(session *s);
/* session_return puts an in-flight message back (connection lost). */
void session_return(tern_hub *hub, session *s, msg *m);
/* session_discard removes a message for |reason| (tern_drop_reason, or 0
   for collapsed/acked) and releases it.  |ev| is the trace event type. */
void session_discard(tern_hub *hub, msg *m, int reason, int ev);
/* session_has_output: something for a connection to write. */
int session_has_output(const session *s);
/* session_notify marks the session's connections ready to write. */
static inline void session_notify(tern_hub *hub, session *s) {
  for (conn *c = session_conns(s); c; c = c->session_next) {
    hub_mark_ready(hub, c);
  }
}
void session_attach(tern_hub *hub, session *s, conn *c);
void session_detach(tern_hub *hub, session *s, conn *c, tern_tstamp now);
/* session_resume applies a HELLO's last_seq; may close a stale conn. */
void session_resume(tern_hub *hub, session *s, uint64_t last_seq,
                    tern_tstamp now);
int session_publish(tern_hub *hub, const uint8_t *key, size_t keylen,
                    const tern_msg_desc *d, tern_tstamp now,
                    tern_publish_result *res);
void dedup_expire(tern_hub *hub, tern_tstamp now);
/* For shared payloads: the publish checks of a descriptor (0 or an error),
   the next generated id (sizeof(hub->genid) bytes), and the encoded tail
   of a message (its size when |out| is NULL). */
int session_check_desc(const tern_hub *hub, const tern_msg_desc *d);
const uint8_t *session_next_id(tern_hub *hub);
size_t session_desc_tail(uint8_t *out, const tern_msg_desc *d,
                         const uint8_t *id, size_t idlen);
int dedup_restore(tern_hub *hub, session *s, const uint8_t *id, size_t idlen,
                  tern_tstamp expires, uint64_t serial);
/* dedup_forget lets an id be published again (its SYNC batch failed). */
void dedup_forget(tern_hub *hub, const uint8_t *key, size_t keylen,
                  const uint8_t *id, size_t idlen);
void collapse_unindex(tern_hub *hub, msg *m);
/* collapse_restore indexes a loaded message; of two with one key, the older
   goes (it had been superseded). */
void collapse_restore(tern_hub *hub, msg *m);

/* ---- persist.c ----------------------------------------------------------- */
#define SEQ_BLOCK 1024
int persist_pending(const tern_hub *hub);
int persist_reserve_publish(tern_hub *hub, const session *s, size_t taillen,
                            size_t keylen, size_t idlen, int with_dedup,
                            int sync);
void persist_message(tern_hub *hub, const session *s, msg *m, int sync,
                     tern_tstamp dedup_expires);
void persist_message_gone(tern_hub *hub, const msg *m);
void persist_dedup_gone(tern_hub *hub, uint64_t serial);
int persist_session(tern_hub *hub, session *s, uint64_t reserved);
void persist_seq(tern_hub *hub, session *s);
void persist_session_gone(tern_hub *hub, const session *s);
/* persist_reserve_dels makes room in the batch for |n| more records of
   |bytes| key and value bytes in all, so that the DELs (and the epoch
   record) of a host's deletion cannot be lost.  0 (also without a store)
   or TERN_ERR_NOMEM. */
int persist_reserve_dels(tern_hub *hub, size_t n, size_t bytes);
/* Sizes of the records a deletion writes, for persist_reserve_dels. */
#define PERSIST_MSG_DEL_BYTES 9u   /* "M" + serial                          */
#define PERSIST_EPOCH_BYTES 17u    /* "E" + epoch + seq floor               */
/* persist_drops writes the session record again with the losses it has not
   had confirmed yet (persist.c), so a restarted hub tells them. */
void persist_drops(tern_hub *hub, session *s);
/* session_untold: losses of |s| for reason |r| (0-based) not yet known to
   have reached its receiver: to tell, and told but unconfirmed. */
uint32_t session_untold(const session *s, int r);
/* persist_epoch writes the epoch record (epoch and seq floor). */
void persist_epoch(tern_hub *hub);
/* persist_close flushes and detaches the store (tern_hub_del). */
void persist_close(tern_hub *hub);

/* ---- policy.c ------------------------------------------------------------ */
/*
 * A session's policy lives in its side block (s->tp->pol), so the write
 * paths reach it only on their "topics" branch, which a session without
 * topics or policy never takes.  Held NORMAL and LOW messages stay in the
 * pending queues: the write paths take the next message through
 * policy_peek instead of the queue heads, and ask policy_has_pending
 * whether anything may go.
 */
static inline spolicy *session_policy(const session *s) {
  return s->tp ? s->tp->pol : NULL;
}
/* policy_peek: the next pending message the policy lets go at |now|
   (HIGH first), or NULL; when it holds the rest it arms the release. */
msg *policy_peek(tern_hub *hub, session *s, tern_tstamp now);
/* policy_sent: |m| (sent for the first time) counts against the cap. */
void policy_sent(tern_hub *hub, session *s, const msg *m, tern_tstamp now);
/* policy_has_pending: a pending message may go, as of the last check. */
int policy_has_pending(const session *s);
/* policy_holds_back: NORMAL and LOW messages of |s| are held now (for
   the simulator's checks). */
int policy_holds_back(const session *s);
/* policy_due: the policy's next deadline (a release, a fallback), NONE. */
tern_tstamp policy_due(const session *s);
/* policy_on_timer: releases a hold that ended, queues due FALLBACK
   events.  0 or TERN_ERR_NOMEM (an event found no room: still due). */
int policy_on_timer(tern_hub *hub, session *s, tern_tstamp now);
/* policy_fallback_reserve makes the side block and one fallback record
   for a publish: 0 or TERN_ERR_NOMEM (nothing changed but perhaps an
   empty side block, which policy_trim frees). */
int policy_fallback_reserve(tern_hub *hub, session *s);
/* policy_fallback_add uses the reserved record for |m|, due at |due|. */
void policy_fallback_add(tern_hub *hub, session *s, msg *m, tern_tstamp due);
/* policy_fallback_gone: |m| (MSG_FALLBACK) leaves its session; |acked|
   says it was acknowledged. */
void policy_fallback_gone(tern_hub *hub, msg *m, int acked);
/* policy_trim frees the policy block once it holds nothing. */
void policy_trim(tern_hub *hub, session *s);
/* policy_free frees the policy block (the session goes). */
void policy_free(tern_hub *hub, session *s);

/* ---- conn.c -------------------------------------------------------------- */
/* conn_free releases a deleted connection's memory (no event names it). */
void conn_free(tern_hub *hub, conn *c);
/* conn_on_timer: 0, or TERN_ERR_NOMEM (a DEAD event had no room: the
   timer stays due). */
int conn_on_timer(tern_hub *hub, conn *c, tern_tstamp now);
/* conn_close: queue GOAWAY (unless |quiet|), detach, state CLOSING. */
void conn_close(conn *c, int reason, uint32_t retry_ms, int error, int quiet,
                tern_tstamp now);
/*
 * conn_ack frees the in-flight messages with seq <= |seq|.  They leave from
 * the head of the in-flight list; the common ones (no trace, store record
 * or collapse index entry) leave in bulk, the counters they share moved
 * once per ACK, and the others through session_discard.
 */
static inline void conn_ack(tern_hub *hub, conn *c, uint64_t seq) {
  session *s = c->session;
  const int traced = hub->set.trace != 0;
  uint32_t n = 0;
  uint64_t bytes = 0;
  msg *m;
  while ((m = c->inflight) != NULL && m->seq <= seq) {
    if (traced ||
        (m->flags & (MSG_TRACE | MSG_STORED | MSG_SHARED | MSG_FALLBACK)) ||
        m->cklen) {
      ++hub->stats.acked;
      session_discard(hub, m, 0, TERN_EV_ACKED);
      continue;
    }
    mlist_remove(&c->inflight, m);
    ++n;
    bytes += m->payloadlen;
    m->session = NULL;
    m->conn = NULL;
    m->flags |= MSG_GONE;
    if (--m->refs == 0) {
      msg_free_block(hub, m); /* not MSG_SHARED: that took the way above */
    }
  }
  c->ninflight -= n;
  s->bytes -= bytes;
  hub->stats.acked += n;
  hub->stats.inflight -= n;
  hub->stats.messages -= n;
  hub->stats.message_bytes -= bytes;
}

/* conn.c's helpers for the one-way connections of framing.c: the aux
   block (DROPPED notices told), the ack of an in-flight prefix with its
   notices, and the ack timeouts. */
int conn_aux_get(tern_hub *hub, conn *c);
/* conn_aux_free frees the aux block and what it holds (a partial frame's
   message, peeked bytes). */
void conn_aux_free(tern_hub *hub, conn *c);
void conn_aux_trim(tern_hub *hub, conn *c);
/* hub_spare_put: a block done with (aux, peek, WebSocket side) becomes
   |spare|, the hub's spare of its kind, when there is none, else it is
   freed.  Returns the spare. */
void *hub_spare_put(tern_hub *hub, void *spare, void *block);
void conn_on_ack(conn *c, uint64_t seq);
int conn_ack_timeouts(tern_hub *hub, conn *c, tern_tstamp now);
tern_tstamp conn_ack_deadline(const tern_hub *hub, const msg *m);

/* ---- framing.c ----------------------------------------------------------- */
/* The web connections (c->framing not TERN_FRAMING_BINARY): conn.c hands
   them their writes, their wants_write, their timer (not tern.bin's) and
   their reads (framing_read, deliver/web.h). */
tern_ssize framing_write(conn *c, uint8_t *buf, size_t cap, tern_tstamp now);
int framing_wants_write(const conn *c);
int framing_on_timer(tern_hub *hub, conn *c, tern_tstamp now);
/* framing_release frees what the connection holds (tern_conn_del,
   tern_hub_del). */
void framing_release(tern_hub *hub, conn *c);
/* session_find_stream: the stream that |seq| names (session.c). */
int session_find_stream(const session *s, uint64_t seq, uint32_t *stream);

/* ---- event.c ------------------------------------------------------------- */
/*
 * Two kinds of events.  Trace events (the lifecycle of traced messages) are
 * shed past max_events or when memory is short, counted in events_lost.
 * Duty events (event_duty) are never shed: whoever will produce one first
 * reserves its room with event_reserve, which may fail with TERN_ERR_NOMEM
 * before anything changed, and event_duty then cannot fail.  A connection
 * holds the reservation of its end event from tern_conn_new on (its key's
 * bytes from binding on); a SYNC publish that of its PERSISTED event; a
 * batch in the store that of a STORE_FAILED event; the others reserve just
 * before the change they report.
 */
int event_reserve(tern_hub *hub, size_t n, size_t strings);
void event_unreserve(tern_hub *hub, size_t n, size_t strings);
/* Both return the queued record (to set its cookie); event_push returns
   NULL when it shed the event. */
evrec *event_duty(tern_hub *hub, int type, int reason, tern_conn *c,
                  const uint8_t *key, size_t keylen, const uint8_t *id,
                  size_t idlen, const uint8_t *aux, size_t auxlen,
                  uint64_t seq, uint64_t count);
evrec *event_push(tern_hub *hub, int type, int reason, tern_conn *c,
                  const uint8_t *key, size_t keylen, const uint8_t *id,
                  size_t idlen,
                  const uint8_t *aux, size_t auxlen, uint64_t seq,
                  uint64_t count);
/* event_msg is event_push for a message's lifecycle event. */
void event_msg(tern_hub *hub, int type, int reason, const msg *m,
               tern_conn *c, const uint8_t *aux, size_t auxlen);
void event_free(tern_hub *hub);

#endif
