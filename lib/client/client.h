/*
 * The receiver state machine's internal types and the functions the files
 * of lib/client call across each other.
 *
 * One tern_client owns: its settings and allocator, the stream position of
 * the current epoch ("generation"), the dedup set, the event queue (a ring
 * of records; MESSAGE records own a copy of their frame), the state of the
 * current connection (receive buffer, ack FIFO, control frames to write)
 * and the reconnect and keepalive policy.
 *
 * Files: client.c (lifecycle, host calls, deadlines, events), recv.c
 * (frames from the server), send.c (frames to the server), idset.c (ids
 * seen), queue.c (event ring, ack FIFO), backoff.c (reconnect backoff and
 * the adaptive heartbeat), state.c (the resume state an app saves across
 * its restarts).
 */
#ifndef TERN_CLIENT_CLIENT_H
#define TERN_CLIENT_CLIENT_H

#include <stdint.h>

#include "base/hashmap.h"
#include "base/rand.h"
#include "tern.h"
#include "wire/frame.h"

/* client.state */
enum {
  CL_WAIT_TRANSPORT = 1, /* CONNECT was emitted; waiting for connect()     */
  CL_HELLO_SENT,         /* transport up, HELLO queued or sent             */
  CL_CONNECTED,          /* WELCOME received                               */
  CL_BACKOFF,            /* waiting for the reconnect deadline             */
  CL_GAVE_UP,            /* max_attempts failed in a row                   */
  CL_CLOSING,            /* tern_client_close: GOAWAY still to write       */
  CL_CLOSED
};

/* client.ctl: control frames to write */
enum {
  CTL_PONG = 0x1,
  CTL_PING = 0x2,      /* RTT probe or keepalive                          */
  CTL_KEEPALIVE = 0x4, /* the queued PING is a keepalive (adaptive mode)  */
  CTL_GOAWAY = 0x8,    /* CLOSING: GOAWAY(CLIENT) still to encode          */
  CTL_HELLO = 0x10     /* HELLO still to encode                           */
};

/*
 * The most bytes of a MSG body other than the payload: seq and ttl (8 each),
 * flags (1), id (1+64), collapse key (1+64), content type (2+128), nattrs
 * (1) and 8 attributes of (1+64)+(2+256).  See tern-protocol(7).
 */
#define CLIENT_MSG_OVERHEAD 2862

/* The most unacked MSG frames one connection may carry (ack FIFO bound). */
#define CLIENT_ACKQ_MAX 65536u

/* A receive buffer larger than this is freed once it is empty again. */
#define CLIENT_RBUF_KEEP 65536u

/* Adaptive heartbeat: the start when heartbeat_interval is 0, the floor. */
#define CLIENT_HB_START (30 * TERN_SECONDS)
#define CLIENT_HB_MIN (1 * TERN_SECONDS)
/* Failures of a known-good (locked) interval before it is halved. */
#define CLIENT_HB_LOCK_FAILURES 2

/* ---- ids seen, for dedup (idset.c) --------------------------------------- */

/* One id seen: the seq it was delivered with, and when. */
typedef struct idset_entry {
  hnode link;
  struct idset_entry *newer; /* FIFO towards the newest */
  tern_tstamp at;
  uint64_t seq;
  uint8_t idlen;
  uint8_t id[];
} idset_entry;

/* The set of ids seen: a hash set for lookups, a FIFO for eviction. */
typedef struct idset {
  hmap map;
  idset_entry *oldest, *newest;
  uint32_t len;
  uint64_t key[2]; /* hash key, random per client */
} idset;

int idset_init(idset *d, const tern_mem *mem, rng *r);
void idset_free(idset *d, const tern_mem *mem);
/* idset_clear forgets every id (an epoch change). */
void idset_clear(idset *d, const tern_mem *mem);
/* idset_find returns the entry for |id|, or NULL.  Callers expire old
   entries first (idset_expire), so the set never holds an id twice. */
idset_entry *idset_find(const idset *d, const uint8_t *id, size_t idlen);
/* idset_entry_new allocates an entry (not yet in the set). */
idset_entry *idset_entry_new(const tern_mem *mem, const uint8_t *id,
                             size_t idlen);
/* idset_add inserts |e| (never fails), then evicts past |max| ids. */
void idset_add(idset *d, const tern_mem *mem, idset_entry *e, uint64_t seq,
               tern_tstamp now, uint32_t max);
/* idset_expire forgets ids seen at or before |before|. */
void idset_expire(idset *d, const tern_mem *mem, tern_tstamp before);

/* ---- event ring and ack FIFO (queue.c) ----------------------------------- */

/* A MESSAGE event's storage: a copy of the whole MSG frame. */
typedef struct msg_copy {
  size_t len;
  uint8_t raw[];
} msg_copy;

/* One queued event. */
typedef struct cevent {
  int type;
  int reason;
  uint32_t gen;          /* the stream generation it belongs to          */
  uint64_t seq, count;
  tern_duration retry_after;
  msg_copy *msg;         /* MESSAGE only                                 */
} cevent;

/*
 * The event ring.  evq_reserve(n) makes room for n events plus one spare,
 * so that ending a connection can always queue its DISCONNECTED event
 * (evq_push_spare) without an allocation that could fail.
 */
typedef struct evq {
  cevent *ring;
  uint32_t head, len, cap; /* cap is a power of two */
} evq;

int evq_init(evq *q, const tern_mem *mem);
void evq_free(evq *q, const tern_mem *mem);
int evq_reserve(evq *q, const tern_mem *mem, uint32_t n);
/* evq_push returns a zeroed record; room must have been reserved. */
cevent *evq_push(evq *q);
/* evq_push_spare uses the spare slot; NULL only if even that is gone and
   growing failed (the event is then lost). */
cevent *evq_push_spare(evq *q, const tern_mem *mem);
/* evq_pop moves the oldest record into |e|; 0 when empty. */
int evq_pop(evq *q, cevent *e);

/*
 * One MSG frame received on the current connection and not yet covered by
 * a cumulative ACK: it may be acked once the app has processed seq |need|
 * (its own seq, or for a duplicate the seq its first copy was delivered
 * with).
 */
typedef struct ack_item {
  uint64_t seq, need;
} ack_item;

typedef struct ackq {
  ack_item *ring;
  uint32_t head, len, cap; /* cap is 0 or a power of two */
} ackq;

/* ackq_reserve makes room for one more item: 0, TERN_ERR_NOMEM, or
   TERN_ERR_PROTO past CLIENT_ACKQ_MAX items. */
int ackq_reserve(ackq *q, const tern_mem *mem);
void ackq_push(ackq *q, uint64_t seq, uint64_t need);
void ackq_free(ackq *q, const tern_mem *mem);

static inline const ack_item *ackq_front(const ackq *q) {
  return q->len ? &q->ring[q->head] : NULL;
}
static inline void ackq_pop(ackq *q) {
  q->head = (q->head + 1) & (q->cap - 1);
  --q->len;
}

/* ---- the client ---------------------------------------------------------- */

struct tern_client {
  tern_mem mem;
  tern_client_settings set;
  rng rand;
  int state;
  tern_tstamp now;           /* latest time given by the host              */
  uint8_t key[TERN_MAX_SESSION_KEY];
  size_t keylen;
  uint8_t *token;
  size_t tokenlen;

  /* reconnecting */
  uint32_t failures;         /* attempts in a row that never got WELCOME   */
  uint32_t waits;            /* backoff waits since the last WELCOME       */
  int give_up;               /* BACKOFF ends in GIVE_UP                    */
  tern_tstamp retry_at;      /* BACKOFF deadline                           */
  uint64_t connects;         /* tern_client_connect calls that took        */

  /* the stream of the current generation (epoch) */
  uint64_t epoch;            /* from the last WELCOME; 0 before the first  */
  int have_session;          /* a WELCOME of this epoch was received       */
  uint32_t gen;              /* bumped by every RESYNC                     */
  uint64_t rx_max;           /* highest seq received                       */
  uint64_t ready_max;        /* highest seq acked or ackable (manual)      */
  uint64_t delivered_max;    /* highest seq the app took                   */
  uint64_t processed;        /* highest seq processed: taken (automatic)
                                or acked by the app (manual)              */
  uint32_t pull_gen;         /* generation of the last event taken         */

  /* the current connection */
  tern_tstamp last_rx, last_tx;
  uint64_t hb_ms, live_ms;   /* from WELCOME                               */
  uint64_t window;           /* in-flight window from WELCOME              */
  uint64_t retry_ms;         /* WELCOME's reconnect hint                   */
  uint64_t rx_seq;           /* highest seq on this connection             */
  ackq acks;
  uint64_t ack_ready;        /* every seq up to it may be acked            */
  uint64_t ack_sent;         /* highest seq sent in an ACK                 */
  uint32_t ready_count;      /* items that became ackable since the ACK    */
  tern_tstamp ready_since;   /* when the first of them did                 */
  int ack_due;
  uint32_t ctl;              /* CTL_* frames to write                      */
  uint64_t pong_value;
  int ping_out;              /* a PING was sent and not answered           */
  uint64_t ping_value;
  tern_tstamp ping_sent_at;
  tern_duration probe;       /* keepalive interval the PING probes; 0 none */
  int goaway_sent;
  /* receive buffer: an incomplete frame */
  uint8_t *rbuf;
  size_t rlen, rcap;
  /* send buffer: the frame being written */
  uint8_t wbuf[WIRE_HEADER_MAX + WIRE_CLIENT_BODY_MAX];
  size_t wlen, woff;
  /* what tern_client_peek_output offered and is not consumed: |peek_len|
     bytes in place, of wbuf or of the PUBLISH queue (send.c's FROM_*);
     0: nothing held */
  int peek_src;
  size_t peek_len;

  /* adaptive heartbeat */
  tern_duration hb_cur;      /* the interval in use                        */
  tern_duration hb_good;     /* the longest that survived; 0 none yet      */
  int hb_locked;
  uint32_t hb_lock_failures;

  idset dd;
  evq events;
  msg_copy *taken;           /* storage of the last MESSAGE (or PUBACK id)
                                taken                                      */
  struct client_pub *pub;    /* publishes (publish.c); NULL until the first */
  tern_client_stats stats;
};

/* ---- across files -------------------------------------------------------- */

/* client.c: ends the connection (see the DISCONNECTED event); |emit| says
   whether to queue that event. */
void client_end_conn(tern_client *c, int reason, uint64_t hint_ms, int emit,
                     tern_tstamp now);
/* client.c: the transport of a closing client is finished (the GOAWAY
   is written, or the transport broke): CLOSED, and the DISCONNECTED event
   that ends every transport. */
void client_closed(tern_client *c);
/* client.c: moves ackable items out of the FIFO and decides whether an
   ACK is due. */
void client_ack_advance(tern_client *c, tern_tstamp now);
/* client.c: starts a new generation (epoch change or lost session). */
void client_new_gen(tern_client *c);

/* send.c */
tern_ssize client_write(tern_client *c, uint8_t *out, size_t cap,
                        tern_tstamp now);
int client_want_write(const tern_client *c);

/* recv.c */
tern_ssize client_read(tern_client *c, const uint8_t *in, size_t len,
                       tern_tstamp now);

/* publish.c: the PUBLISH queue and PUBACK frames */
int client_pub_want_write(const tern_client *c);
/* client_pub_cut: the bytes left of a PUBLISH written in part (they go
   first), or 0. */
size_t client_pub_cut(const tern_client *c);
/* client_pub_write copies queued PUBLISH bytes to |out|; bytes copied. */
size_t client_pub_write(tern_client *c, uint8_t *out, size_t cap);
/* client_pub_peek points *|data| at up to |max| queued PUBLISH bytes and
   returns their number; client_pub_take marks |n| of them written. */
size_t client_pub_peek(const tern_client *c, const uint8_t **data, size_t max);
void client_pub_take(tern_client *c, size_t n);
/* client_pub_reset empties the queue (the connection ended). */
void client_pub_reset(tern_client *c);
void client_pub_free(tern_client *c);
/* client_puback handles the PUBACK at [in, in+len): its size, 0 when
   incomplete, or an error. */
tern_ssize client_puback(tern_client *c, const uint8_t *in, size_t len);

/* backoff.c */
tern_duration client_backoff_wait(tern_client *c);
void client_hb_init(tern_client *c);
/* the keepalive interval in force on the current connection */
tern_duration client_hb_interval(const tern_client *c);
void client_hb_probe_ok(tern_client *c, tern_duration probe);
void client_hb_probe_failed(tern_client *c, tern_duration probe);

#endif
