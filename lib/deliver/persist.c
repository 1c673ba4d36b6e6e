/*
 * The hub's side of persistence: it turns state changes into an ordered log
 * of store records, batches them, hands batches to the store's methods,
 * confirms SYNC publishes once their batch is durable, and rebuilds the hub
 * from the live records at start.
 *
 * Records (keys are a type byte and an identity; numbers big-endian):
 *   "E"                      epoch: 8 bytes, then the seq floor: 8 bytes
 *   "S" session key          session: 8-byte seq reservation, then the
 *                            losses not yet known to have reached the
 *                            receiver, three 4-byte counts by
 *                            tern_drop_reason (absent in older logs)
 *   "M" 8-byte serial        message: see put_message
 *   "D" 8-byte serial        dedup id: 8-byte expiry, key length, session
 *                            key, id
 * Message and dedup records are keyed by the message's serial, which is
 * unique for the hub's life and restored as max + 1.
 *
 * Seqs: a receiver resumes by seq, so a restarted hub must never hand out a
 * seq it used before.  The "S" record reserves seqs in blocks (written with
 * sync when next_seq crosses a block boundary), and a restored session
 * starts one block past its last reservation.
 *
 * Losses: a receiver hears of every loss at least once, across restarts
 * too.  Whenever the count of a session's losses not yet confirmed changes
 * (a discard, a refused publish, an ACK confirming DROPPED notices), its
 * "S" record is written again with the counts, before the discarded
 * message's DEL, so a store that keeps the DEL keeps the count.  A restored
 * session tells them again (DROPPED), together with the messages that
 * expired while the hub was down.
 *
 * Clocks: expiries are stored on the wall clock given by
 * tern_hub_set_wallclock (or as the hub's own tstamps without it), and
 * converted back to the hub's clock when loading.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/persist.h"
#include "deliver/produce.h"
#include "deliver/topic.h"
#include "hooks/hooks.h"

#define BATCH_RECORDS 1024          /* flush a batch past this many ...  */
#define BATCH_BYTES (1024 * 1024)   /* ... or this many bytes            */

typedef struct prec {
  uint8_t op;
  uint32_t key_off, keylen, value_off, valuelen;
} prec;

/* A SYNC publish waiting for its batch. */
typedef struct waiter {
  uint64_t batch;
  uint64_t cookie;       /* the message's, for its PERSISTED event       */
  conn *producer;        /* a producer connection's publish: its PUBACK
                            instead of the event (NULL once it ended)    */
  uint8_t produced;      /* it came from a producer connection           */
  uint8_t idlen, keylen;
  uint8_t id[TERN_MAX_ID];
  uint8_t key[TERN_MAX_SESSION_KEY];
} waiter;

/* persist.srec: hints of sessions' records in the batch being built */
#define SREC_HINTS 64

struct persist {
  tern_store_methods m;
  void *store;
  prec *recs;
  size_t nrecs, caprecs;
  uint8_t *bytes;
  size_t nbytes, capbytes;
  int sync;              /* the waiting batch must be durable            */
  uint64_t next_batch;   /* number of the next batch handed over         */
  uint64_t done_batch;   /* every batch below this one is complete       */
  waiter *waiters;       /* FIFO of SYNC publishes                       */
  size_t wfirst, wlen, wcap;
  struct ptopic *pt;     /* persist_topic.c: cursors in this batch       */
  conn *producing;       /* persist_set_producer                         */
  /* The last "S" record (index + 1) of a session in the batch, by the
     low bits of its uid: a hint, checked against the record, so that a
     burst of losses rewrites one record per batch.  Here rather than in
     every session, which would pay 4 bytes for it. */
  uint32_t srec[SREC_HINTS];
};

/* ---- the batch buffer --------------------------------------------------- */

/* Makes room for |n| more records and |bytes| more bytes. */
static int reserve(tern_hub *hub, size_t n, size_t bytes) {
  persist *p = hub->persist;
  if (p->nrecs + n > p->caprecs) {
    size_t cap = p->caprecs ? p->caprecs * 2 : 64;
    while (cap < p->nrecs + n) {
      cap *= 2;
    }
    prec *r = mem_realloc(&hub->mem, p->recs, cap * sizeof(*r));
    if (!r) {
      return TERN_ERR_NOMEM;
    }
    p->recs = r;
    p->caprecs = cap;
  }
  if (p->nbytes + bytes > p->capbytes) {
    size_t cap = p->capbytes ? p->capbytes * 2 : 4096;
    while (cap < p->nbytes + bytes) {
      cap *= 2;
    }
    uint8_t *b = mem_realloc(&hub->mem, p->bytes, cap);
    if (!b) {
      return TERN_ERR_NOMEM;
    }
    p->bytes = b;
    p->capbytes = cap;
  }
  return 0;
}

/* Appends a record whose key is |type| + |id| and whose value the caller
   writes into the returned pointer (|valuelen| bytes).  Room must be
   reserved. */
static uint8_t *add(persist *p, uint8_t op, uint8_t type, const uint8_t *id,
                    size_t idlen, size_t valuelen) {
  prec *r = &p->recs[p->nrecs++];
  r->op = op;
  r->key_off = (uint32_t)p->nbytes;
  r->keylen = (uint32_t)(1 + idlen);
  p->bytes[p->nbytes++] = type;
  if (idlen) {
    memcpy(p->bytes + p->nbytes, id, idlen);
  }
  p->nbytes += idlen;
  r->value_off = (uint32_t)p->nbytes;
  r->valuelen = (uint32_t)valuelen;
  p->nbytes += valuelen;
  return p->bytes + r->value_off;
}

/* Adds a DEL that must not fail: when the buffer cannot grow, the batch is
   flushed first.  If even that fails the DEL is lost, which at worst brings
   the record back after a restart: a duplicate, never a loss. */
static void add_del(tern_hub *hub, uint8_t type, const uint8_t *id,
                    size_t idlen) {
  if (reserve(hub, 1, 1 + idlen) != 0) {
    tern_hub_flush(hub);
    if (reserve(hub, 1, 1 + idlen) != 0) {
      return;
    }
  }
  add(hub->persist, TERN_STORE_DEL, type, id, idlen, 0);
  if (hub->persist->nrecs >= BATCH_RECORDS) {
    tern_hub_flush(hub);
  }
}

static void maybe_flush(tern_hub *hub) {
  persist *p = hub->persist;
  if (p->nrecs >= BATCH_RECORDS || p->nbytes >= BATCH_BYTES) {
    tern_hub_flush(hub);
  }
}

/* The batch, for persist_topic.c (persist.h). */
int prec_reserve(tern_hub *hub, size_t n, size_t bytes) {
  return reserve(hub, n, bytes);
}

uint8_t *prec_set(tern_hub *hub, uint8_t type, const uint8_t *id,
                  size_t idlen, size_t valuelen, uint32_t *index) {
  persist *p = hub->persist;
  uint8_t *v = add(p, TERN_STORE_SET, type, id, idlen, valuelen);
  if (index) {
    *index = (uint32_t)(p->nrecs - 1);
  }
  return v;
}

uint8_t *prec_value(tern_hub *hub, uint32_t index, const uint8_t *key,
                    size_t keylen, size_t valuelen) {
  persist *p = hub->persist;
  if (index >= p->nrecs) {
    return NULL;
  }
  const prec *r = &p->recs[index];
  if (r->op != TERN_STORE_SET || r->keylen != keylen ||
      r->valuelen != valuelen ||
      memcmp(p->bytes + r->key_off, key, keylen) != 0) {
    return NULL;
  }
  return p->bytes + r->value_off;
}

void prec_del(tern_hub *hub, uint8_t type, const uint8_t *id, size_t idlen) {
  add_del(hub, type, id, idlen);
}

void prec_maybe_flush(tern_hub *hub) { maybe_flush(hub); }

struct ptopic **persist_ptopic(tern_hub *hub) {
  return &hub->persist->pt;
}

void persist_sync(tern_hub *hub) { hub->persist->sync = 1; }

uint64_t persist_batch_number(const tern_hub *hub) {
  return hub->persist->next_batch;
}

/* ---- confirming SYNC publishes ------------------------------------------ */

/* Both events are duties: every batch handed over holds the room of its
   STORE_FAILED event, every SYNC waiter that of its PERSISTED event. */
static void complete(tern_hub *hub, uint64_t batch, int status) {
  persist *p = hub->persist;
  /* Every batch up to |batch| completes: one STORE_FAILED event tells of
     them all, the others give their room back. */
  size_t n = (size_t)(batch + 1 - p->done_batch);
  if (status != 0) {
    event_duty(hub, TERN_EV_STORE_FAILED, status, NULL, NULL, 0, NULL, 0,
               NULL, 0, batch, 0);
    --n;
  }
  event_unreserve(hub, n, 0);
  while (p->wlen && p->waiters[p->wfirst].batch <= batch) {
    waiter *w = &p->waiters[p->wfirst];
    if (w->produced) {
      /* A PUBACK answers it, not the host (produce.c). */
      event_unreserve(hub, 1, (size_t)w->keylen + w->idlen);
      if (w->producer) {
        produce_persisted(hub, w->producer, w->cookie, w->id, w->idlen,
                          status);
      }
    } else {
      evrec *e = event_duty(hub, TERN_EV_PERSISTED, status, NULL, w->key,
                            w->keylen, w->id, w->idlen, NULL, 0, 0, 0);
      e->cookie = w->cookie;
    }
    if (status != 0) {
      dedup_forget(hub, w->key, w->keylen, w->id, w->idlen);
    }
    p->wfirst = (p->wfirst + 1) % p->wcap;
    --p->wlen;
  }
  p->done_batch = batch + 1;
}

void persist_set_producer(tern_hub *hub, conn *c) {
  hub->persist->producing = c;
}

void persist_forget_producer(tern_hub *hub, const conn *c) {
  persist *p = hub->persist;
  for (size_t i = 0; p && i < p->wlen; ++i) {
    waiter *w = &p->waiters[(p->wfirst + i) % p->wcap];
    if (w->producer == c) {
      w->producer = NULL;
    }
  }
}

int tern_hub_store_done(tern_hub *hub, uint64_t batch, int status) {
  if (!hub || status > 0) {
    return TERN_ERR_INVALID;
  }
  persist *p = hub->persist;
  if (!p || batch < p->done_batch || batch >= p->next_batch) {
    return TERN_ERR_STATE;
  }
  complete(hub, batch, status < 0 ? TERN_ERR_STORE : 0);
  return 0;
}

int tern_hub_flush(tern_hub *hub) {
  if (!hub) {
    return TERN_ERR_INVALID;
  }
  persist *p = hub->persist;
  if (!p || p->nrecs == 0) {
    return 0;
  }
  /* The store gets pointers; the buffer does not move during the call. */
  tern_store_record stack[64];
  tern_store_record *recs = stack;
  if (p->nrecs > 64) {
    recs = mem_malloc(&hub->mem, p->nrecs * sizeof(*recs));
    if (!recs) {
      return TERN_ERR_NOMEM;
    }
  }
  if (event_reserve(hub, 1, 0) != 0) { /* its STORE_FAILED event */
    if (recs != stack) {
      mem_free(&hub->mem, recs);
    }
    return TERN_ERR_NOMEM;
  }
  for (size_t i = 0; i < p->nrecs; ++i) {
    const prec *r = &p->recs[i];
    recs[i].op = r->op;
    recs[i].key = p->bytes + r->key_off;
    recs[i].keylen = r->keylen;
    recs[i].value = r->valuelen ? p->bytes + r->value_off : NULL;
    recs[i].valuelen = r->valuelen;
  }
  uint64_t batch = p->next_batch++;
  int sync = p->sync;
  size_t n = p->nrecs;
  p->nrecs = 0;
  p->nbytes = 0;
  p->sync = 0;
  ++hub->stats.store_batches;
  int rv = p->m.append(p->store, batch, recs, n, sync);
  if (recs != stack) {
    mem_free(&hub->mem, recs);
  }
  if (rv == TERN_STORE_LATER) {
    return 0;
  }
  complete(hub, batch, rv < 0 ? TERN_ERR_STORE : 0);
  return rv < 0 ? TERN_ERR_STORE : 0;
}

int persist_pending(const tern_hub *hub) {
  return hub->persist && hub->persist->nrecs > 0;
}

/* ---- what the hub records ----------------------------------------------- */

/* |t| on a clock whose |from| is |to| on the other, clamped to what a
   tern_tstamp holds below TERN_TSTAMP_NONE. */
static uint64_t rebase(uint64_t t, uint64_t from, uint64_t to) {
  if (t >= from) {
    uint64_t d = t - from;
    return d >= TERN_TSTAMP_NONE - to ? TERN_TSTAMP_NONE - 1 : to + d;
  }
  uint64_t d = from - t;
  return d < to ? to - d : 0;
}

/* The wall clock's time for the hub's |t| (TERN_TSTAMP_NONE stays). */
static uint64_t to_wall(const tern_hub *hub, tern_tstamp t) {
  if (!hub->wall_set || t == TERN_TSTAMP_NONE) {
    return t;
  }
  return rebase(t, hub->wall_mono, hub->wall_real);
}

/* The hub's time for the wall clock's |w|. */
static tern_tstamp from_wall(const tern_hub *hub, uint64_t w) {
  if (!hub->wall_set || w == TERN_TSTAMP_NONE) {
    return w;
  }
  return rebase(w, hub->wall_real, hub->wall_mono);
}

uint64_t persist_to_wall(const tern_hub *hub, tern_tstamp t) {
  return to_wall(hub, t);
}

tern_tstamp persist_from_wall(const tern_hub *hub, uint64_t w) {
  return from_wall(hub, w);
}

int tern_hub_set_wallclock(tern_hub *hub, tern_tstamp now, uint64_t wall_ns) {
  if (!hub || now == TERN_TSTAMP_NONE || wall_ns == 0 ||
      wall_ns == TERN_TSTAMP_NONE) {
    return TERN_ERR_INVALID;
  }
  hub->wall_set = 1;
  hub->wall_mono = now;
  hub->wall_real = wall_ns;
  return 0;
}

/* Message record value: session keylen, key, flags, deliveries (2),
   expiry (8), format (1), then
     format 0: the MSG tail as sent on the wire, which the loader decodes
               with the wire codec: a damaged record is refused, not sent;
     format 1: the 8-byte serial of the shared payload ("P" record) that
               holds the tail (MSG_SHARED: tern_hub_publish_many), so a
               payload sent to many sessions is stored once. */
#define MESSAGE_FIXED 12
#define MESSAGE_SHARED 1
static size_t message_size(const session *s, const msg *m) {
  return 1u + s->keylen + MESSAGE_FIXED +
         ((m->flags & MSG_SHARED) ? 8u : m->taillen);
}

int persist_reserve_publish(tern_hub *hub, const session *s, size_t taillen,
                            size_t keylen, size_t idlen, int with_dedup,
                            int sync) {
  persist *p = hub->persist;
  (void)s;
  /* a shared payload's message stores its 8-byte reference instead */
  size_t bytes = 9 + 1 + keylen + MESSAGE_FIXED + (taillen < 8 ? 8 : taillen);
  if (with_dedup) {
    bytes += 9 + 8 + 1 + keylen + idlen;
  }
  int rv = reserve(hub, 2, bytes);
  if (rv == 0 && sync && p->wlen == p->wcap) {
    size_t cap = p->wcap ? p->wcap * 2 : 16;
    waiter *w = mem_malloc(&hub->mem, cap * sizeof(*w));
    if (!w) {
      return TERN_ERR_NOMEM;
    }
    for (size_t i = 0; i < p->wlen; ++i) {
      w[i] = p->waiters[(p->wfirst + i) % p->wcap];
    }
    mem_free(&hub->mem, p->waiters);
    p->waiters = w;
    p->wfirst = 0;
    p->wcap = cap;
  }
  if (rv == 0 && sync) {
    rv = event_reserve(hub, 1, keylen + idlen); /* its PERSISTED event */
  }
  return rv;
}

void persist_message(tern_hub *hub, const session *s, msg *m, int sync,
                     tern_tstamp dedup_expires) {
  persist *p = hub->persist;
  uint8_t serial[8];
  put_be64(serial, m->serial);
  uint8_t *v = add(p, TERN_STORE_SET, 'M', serial, 8, message_size(s, m));
  *v++ = s->keylen;
  memcpy(v, s->key, s->keylen);
  v += s->keylen;
  *v++ = (uint8_t)(m->flags & MSG_TRACE);
  *v++ = (uint8_t)(m->deliveries >> 8);
  *v++ = (uint8_t)m->deliveries;
  put_be64(v, to_wall(hub, m->expiry));
  v += 8;
  if (m->flags & MSG_SHARED) {
    /* persist_payload wrote the "P" record before this one */
    *v++ = MESSAGE_SHARED;
    put_be64(v, msg_ref_of(m)->pl->serial);
  } else {
    *v++ = 0;
    memcpy(v, m->tail, m->taillen);
  }
  m->flags |= MSG_STORED;
  if (dedup_expires) {
    v = add(p, TERN_STORE_SET, 'D', serial, 8,
            8u + 1 + s->keylen + m->idlen);
    put_be64(v, to_wall(hub, dedup_expires));
    v[8] = s->keylen;
    memcpy(v + 9, s->key, s->keylen);
    memcpy(v + 9 + s->keylen, msg_id(m), m->idlen);
  }
  if (sync) {
    p->sync = 1;
    waiter *w = &p->waiters[(p->wfirst + p->wlen) % p->wcap];
    ++p->wlen;
    w->batch = p->next_batch;
    w->cookie = msg_cookie(m);
    w->producer = p->producing;
    w->produced = p->producing != NULL;
    w->idlen = m->idlen;
    memcpy(w->id, msg_id(m), m->idlen);
    w->keylen = s->keylen;
    memcpy(w->key, s->key, s->keylen);
  }
  maybe_flush(hub);
}

void persist_message_gone(tern_hub *hub, const msg *m) {
  uint8_t serial[8];
  put_be64(serial, m->serial);
  add_del(hub, 'M', serial, 8);
}

void persist_dedup_gone(tern_hub *hub, uint64_t serial) {
  uint8_t id[8];
  put_be64(id, serial);
  add_del(hub, 'D', id, 8);
}

/* reservation, three loss counts by tern_drop_reason, and the retention
   losses of the session's topics not in a member's record (those of
   members that left, told and unconfirmed); 8 and 20 bytes still load */
#define SESSION_VALUE 24
#define SESSION_VALUE_V1 20

/* The value of |s|'s last "S" record in the batch being built, or NULL
   (also when its hint was taken by another session: a new record is then
   written, which replaying a batch in order makes harmless). */
static uint8_t *batch_session(const persist *p, const session *s) {
  uint32_t i = p->srec[s->uid % SREC_HINTS];
  if (i == 0 || i > p->nrecs) {
    return NULL;
  }
  const prec *r = &p->recs[i - 1];
  const uint8_t *key = p->bytes + r->key_off;
  if (r->op != TERN_STORE_SET || r->keylen != 1u + s->keylen ||
      key[0] != 'S' || r->valuelen != SESSION_VALUE ||
      memcmp(key + 1, s->key, s->keylen) != 0) {
    return NULL; /* a batch was handed over since */
  }
  return p->bytes + r->value_off;
}

static void put_counts(uint8_t *v, const session *s) {
  for (int r = 0; r < 4; ++r) {
    uint64_t n;
    if (r < 3) {
      n = session_untold(s, r);
    } else {
      n = s->tp ? (uint64_t)s->tp->lost + topic_told_retention(s) : 0;
      n = n > UINT32_MAX ? UINT32_MAX : n;
    }
    v[8 + 4 * r] = (uint8_t)(n >> 24);
    v[9 + 4 * r] = (uint8_t)(n >> 16);
    v[10 + 4 * r] = (uint8_t)(n >> 8);
    v[11 + 4 * r] = (uint8_t)n;
  }
}

static int put_session(tern_hub *hub, session *s, uint64_t reserved) {
  if (reserve(hub, 1, 1 + s->keylen + SESSION_VALUE) != 0) {
    return TERN_ERR_NOMEM;
  }
  persist *p = hub->persist;
  uint8_t *v = add(p, TERN_STORE_SET, 'S', s->key, s->keylen, SESSION_VALUE);
  p->srec[s->uid % SREC_HINTS] = (uint32_t)p->nrecs;
  put_be64(v, reserved);
  put_counts(v, s);
  return 0;
}

/* The reservation for a session whose next seq is |next_seq|. */
int persist_session(tern_hub *hub, session *s, uint64_t reserved) {
  if (put_session(hub, s, reserved) != 0) {
    return TERN_ERR_NOMEM;
  }
  hub->persist->sync = 1; /* seqs past the old reservation go out soon */
  maybe_flush(hub);
  return 0;
}

void persist_drops(tern_hub *hub, session *s) {
  if (hub->loading) {
    return;
  }
  if (session_members(s)) {
    persist_topic_drops(hub, s); /* their own: in their cursor records */
  }
  /* A record of the session waits in this batch: its counts change in
     place (it precedes whatever follows, the DEL of a lost message among
     them), so a burst of losses costs one record per batch. */
  uint8_t *v = batch_session(hub->persist, s);
  if (v) {
    put_counts(v, s);
    return;
  }
  /* Any reservation at or above the last one written will do: next_seq
     only grows. */
  uint64_t reserved = s->next_seq + 2 * SEQ_BLOCK;
  if (put_session(hub, s, reserved) != 0) {
    /* The buffer keeps room for a record once it is empty, so this fails
       only when even the flush found no memory: the stored counts are
       then those of the last change, and a restart might tell fewer. */
    tern_hub_flush(hub);
    if (put_session(hub, s, reserved) != 0) {
      return;
    }
  }
  /* No sync of its own: it goes with the DEL it precedes. */
  maybe_flush(hub);
}

void persist_seq(tern_hub *hub, session *s) {
  /* Called when next_seq reaches a block boundary: reserve two blocks on,
     so the record has a block's worth of sends to become durable. */
  if (persist_session(hub, s, s->next_seq + 2 * SEQ_BLOCK) != 0) {
    tern_hub_flush(hub);
    persist_session(hub, s, s->next_seq + 2 * SEQ_BLOCK);
  }
}

void persist_epoch(tern_hub *hub) {
  if (reserve(hub, 1, PERSIST_EPOCH_BYTES) != 0) {
    tern_hub_flush(hub);
    if (reserve(hub, 1, PERSIST_EPOCH_BYTES) != 0) {
      return; /* the floor is a margin; the next deletion writes it */
    }
  }
  uint8_t *v = add(hub->persist, TERN_STORE_SET, 'E', NULL, 0, 16);
  put_be64(v, hub->epoch);
  put_be64(v + 8, hub->seq_floor);
  hub->persist->sync = 1;
}

void persist_session_gone(tern_hub *hub, const session *s) {
  add_del(hub, 'S', s->key, s->keylen);
}

int persist_reserve_dels(tern_hub *hub, size_t n, size_t bytes) {
  return hub->persist ? reserve(hub, n, bytes) : 0;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct loader {
  tern_hub *hub;
  tern_tstamp now;
  int found_epoch;
  int error;
  uint64_t *gone;      /* serials of messages that expired while down:   */
  size_t ngone, capgone; /* deleted after the counts that tell them     */
  tload *tl;           /* topics, cursors, shared payloads: built last   */
} loader;

static session *load_session(loader *l, const uint8_t *key, size_t keylen) {
  tern_hub *hub = l->hub;
  uint64_t hash = session_hash(hub, key, keylen);
  session *s = session_find(hub, key, keylen, hash);
  if (!s && session_new(hub, &s, key, keylen, hash, l->now) != 0) {
    l->error = TERN_ERR_NOMEM;
    return NULL;
  }
  return s;
}

/* Decodes a stored MSG tail with the wire codec.  0 or -1. */
static int decode_tail(tern_hub *hub, const uint8_t *tail, size_t taillen,
                       wire_msg *out) {
  size_t cap = WIRE_MSG_HEAD_MAX + taillen;
  uint8_t stack[512];
  uint8_t *buf = cap <= sizeof(stack) ? stack : mem_malloc(&hub->mem, cap);
  if (!buf) {
    return -2;
  }
  size_t head = wire_msg_head_encode(buf, 1, 0, taillen);
  memcpy(buf + head, tail, taillen);
  wire_frame f;
  tern_ssize n = wire_frame_decode(&f, buf, head + taillen,
                                   hub->set.max_payload + 65536);
  int rv = -1;
  if (n == (tern_ssize)(head + taillen) && f.type == WIRE_MSG) {
    *out = f.u.msg;
    /* rebase the pointers onto |tail| */
    const uint8_t *base = buf + head;
    out->id = tail + (size_t)(out->id - base);
    out->collapse_key = out->collapse_keylen
                            ? tail + (size_t)(out->collapse_key - base)
                            : NULL;
    out->payload = tail + (size_t)(out->payload - base);
    out->content_type = out->content_typelen
                            ? tail + (size_t)(out->content_type - base)
                            : NULL;
    for (size_t i = 0; i < out->nattrs; ++i) {
      out->attrs[i].key = tail + (size_t)(out->attrs[i].key - base);
      out->attrs[i].value = tail + (size_t)(out->attrs[i].value - base);
    }
    rv = 0;
  }
  if (buf != stack) {
    mem_free(&hub->mem, buf);
  }
  return rv;
}

int persist_decode_tail(tern_hub *hub, const uint8_t *tail, size_t taillen,
                        wire_msg *out) {
  return decode_tail(hub, tail, taillen, out);
}

/* |pl|: the shared payload of a format 1 record, resolved by
   tload_finish; NULL for format 0 (which the first pass builds). */
static void load_message(loader *l, uint64_t serial, const uint8_t *v,
                         size_t len, spayload *pl) {
  tern_hub *hub = l->hub;
  if (len < 1 || v[0] == 0 || v[0] > TERN_MAX_SESSION_KEY ||
      len < 1u + v[0] + MESSAGE_FIXED + 1u) {
    return; /* not ours: skip */
  }
  const uint8_t *key = v + 1;
  size_t keylen = v[0];
  const uint8_t *f = key + keylen;
  const uint8_t *tail = f + MESSAGE_FIXED;
  size_t taillen = len - (1 + keylen + MESSAGE_FIXED);
  if (f[11] == MESSAGE_SHARED && !pl) {
    /* Its payload may come later in the store's order. */
    uint8_t k[9];
    k[0] = 'M';
    put_be64(k + 1, serial);
    int rv = tload_record(hub, &l->tl, k, 9, v, len);
    if (rv != 0) {
      l->error = rv;
    }
    return;
  }
  if (f[11] != 0 && !pl) {
    return; /* a format this version does not know: skip */
  }
  tern_tstamp expiry = from_wall(hub, get_be64(f + 3));
  wire_msg w;
  int rv = 0;
  if (pl) {
    /* checked when its "P" record was loaded */
    w.id = pl->tail + pl->id_off;
    w.idlen = pl->idlen;
    w.collapse_key = pl->cklen ? pl->tail + pl->ck_off : NULL;
    w.collapse_keylen = pl->cklen;
    w.payloadlen = pl->payloadlen;
    w.priority = (int)(pl->tail[0] & WIRE_MSG_PRIO_MASK);
    tail = pl->tail;
    taillen = pl->taillen;
  } else {
    rv = decode_tail(hub, tail, taillen, &w);
  }
  if (rv == -2) {
    l->error = TERN_ERR_NOMEM;
    return;
  }
  if (rv != 0 || w.payloadlen > hub->set.max_payload) {
    return; /* damaged: never send it */
  }
  session *s = load_session(l, key, keylen);
  if (!s) {
    return;
  }
  if (expiry <= l->now) {
    /* Expired while the hub was down: a loss like any other, told to the
       receiver (DROPPED) and, when traced, to the host (EXPIRED). */
    if (l->ngone == l->capgone) {
      size_t cap = l->capgone ? 2 * l->capgone : 64;
      uint64_t *g = mem_realloc(&hub->mem, l->gone, cap * sizeof(*g));
      if (!g) {
        l->error = TERN_ERR_NOMEM;
        return;
      }
      l->gone = g;
      l->capgone = cap;
    }
    l->gone[l->ngone++] = serial;
    if (serial >= hub->next_serial) {
      hub->next_serial = serial;
    }
    if (hub->set.trace || (f[0] & MSG_TRACE)) {
      event_push(hub, TERN_EV_EXPIRED, TERN_DROP_EXPIRED, NULL, key, keylen,
                 w.id, w.idlen, NULL, 0, 0, 0);
    }
    ++hub->stats.expired;
    ++s->dropped[TERN_DROP_EXPIRED - 1];
    s->dropped_total += s->dropped_total != UINT32_MAX;
    return;
  }
  msg *m;
  if (pl) {
    /* shares the payload again, as before the restart */
    m = msg_new_shared(hub, pl, w.priority, expiry, 0);
    if (!m) {
      l->error = TERN_ERR_NOMEM;
      return;
    }
    m->flags |= (uint8_t)((f[0] & MSG_TRACE) | MSG_STORED);
  } else {
    m = msg_alloc(hub, sizeof(msg) + taillen);
    if (!m) {
      l->error = TERN_ERR_NOMEM;
      return;
    }
    *m = (msg){.slab_off = m->slab_off};
    m->priority = (uint8_t)w.priority;
    m->flags = (uint8_t)((f[0] & MSG_TRACE) | MSG_STORED);
    m->expiry = expiry;
    m->id_off = (uint8_t)(w.id - tail);
    m->idlen = (uint8_t)w.idlen;
    m->ck_off = (uint8_t)(w.collapse_key ? w.collapse_key - tail : 0);
    m->cklen = (uint8_t)w.collapse_keylen;
    m->payloadlen = (uint32_t)w.payloadlen;
    m->taillen = (uint32_t)taillen;
    m->refs = 1;
    memcpy(m->tail, tail, taillen);
  }
  m->deliveries = (uint16_t)(f[1] << 8 | f[2]);
  m->serial = serial;
  m->session = s;
  mlist_insert_sorted(&s->queue[m->priority], m);
  ++s->npending;
  s->bytes += m->payloadlen;
  ++hub->stats.messages;
  hub->stats.message_bytes += m->payloadlen;
  if (serial >= hub->next_serial) {
    hub->next_serial = serial;
  }
  if (expiry < s->msg_due) {
    s->msg_due = expiry;
  }
  if (m->cklen) {
    /* Newest per key wins the index; older ones stay as they were sent. */
    m->collapse.hash = hash_bytes(hub->hash_key, s->uid, msg_ck(m), m->cklen);
    collapse_restore(hub, m);
  }
}

static void load_dedup(loader *l, uint64_t serial, const uint8_t *v,
                       size_t len) {
  tern_hub *hub = l->hub;
  if (len < 10 || v[8] == 0 || len < 9u + v[8] + 1u ||
      len - 9 - v[8] > TERN_MAX_ID) {
    return;
  }
  tern_tstamp expires = from_wall(hub, get_be64(v));
  /* The serial names this record: the next hub must not hand it out
     again, whether or not the record is still live. */
  if (serial >= hub->next_serial) {
    hub->next_serial = serial;
  }
  if (expires <= l->now) {
    persist_dedup_gone(hub, serial);
    return;
  }
  session *s = load_session(l, v + 9, v[8]);
  if (s && dedup_restore(hub, s, v + 9 + v[8], len - 9 - v[8], expires,
                         serial) != 0) {
    l->error = TERN_ERR_NOMEM;
  }
}

static int visit(void *ctx, const uint8_t *key, size_t keylen,
                 const uint8_t *value, size_t valuelen) {
  loader *l = ctx;
  tern_hub *hub = l->hub;
  if (keylen == 0) {
    return 0;
  }
  switch (key[0]) {
  case 'E':
    if (keylen == 1 && (valuelen == 8 || valuelen == 16) &&
        get_be64(value) != 0) {
      hub->epoch = get_be64(value);
      l->found_epoch = 1;
      if (valuelen == 16) {
        /* one block of margin, as for sessions */
        hub->seq_floor = get_be64(value + 8) + SEQ_BLOCK;
      }
    }
    break;
  case 'S':
    if (keylen >= 2 && keylen - 1 <= TERN_MAX_SESSION_KEY &&
        (valuelen == 8 || valuelen == SESSION_VALUE_V1 ||
         valuelen == SESSION_VALUE)) {
      session *s = load_session(l, key + 1, keylen - 1);
      if (s) {
        /* one block past the reservation: see the top of this file */
        uint64_t next = get_be64(value) + SEQ_BLOCK;
        s->next_seq = next > s->next_seq ? next : s->next_seq;
        s->restored = 1;
        for (int r = 0; valuelen > 8 && r < 3; ++r) {
          const uint8_t *c = value + 8 + 4 * r;
          uint64_t n = (uint64_t)s->dropped[r] +
                       ((uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 |
                        (uint32_t)c[2] << 8 | c[3]);
          s->dropped[r] = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        }
        uint32_t lost = valuelen == SESSION_VALUE ? get_be32(value + 20) : 0;
        if (lost && topic_session_tp(hub, s) != 0) {
          l->error = TERN_ERR_NOMEM;
        } else if (lost) {
          uint64_t n = (uint64_t)s->tp->lost + lost;
          s->tp->lost = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        }
      }
    }
    break;
  case 'M':
    if (keylen == 9) {
      load_message(l, get_be64(key + 1), value, valuelen, NULL);
    }
    break;
  case 'T':
  case 'U':
  case 'C':
  case 'W':
  case 'P': {
    int rv = tload_record(hub, &l->tl, key, keylen, value, valuelen);
    if (rv != 0) {
      l->error = rv;
    }
    break;
  }
  case 'G':
  case 'H':
  case 'Q': {
    /* web hooks (lib/hooks/store.c) */
    int rv = hooks_load_record(hub, key, keylen, value, valuelen, l->now);
    if (rv != 0) {
      l->error = rv;
    }
    break;
  }
  case 'D':
    if (keylen == 9) {
      load_dedup(l, get_be64(key + 1), value, valuelen);
    }
    break;
  default:
    break;
  }
  return l->error;
}

/* tload_finish's way back for the messages of shared payloads. */
static int load_shared(void *ctx, uint64_t serial, const uint8_t *v,
                       size_t len, spayload *pl) {
  loader *l = ctx;
  load_message(l, serial, v, len, pl);
  return l->error;
}

/* Frees everything a failed load built. */
static void unload(tern_hub *hub) {
  tload_unload(hub);
  hooks_unload(hub);
  for (size_t i = 0; i <= hub->sessions.mask; ++i) {
    while (hub->sessions.buckets[i]) {
      session_destroy(hub, (session *)hub->sessions.buckets[i]);
    }
  }
  dedup_expire(hub, TERN_TSTAMP_NONE);
}

static void persist_free(tern_hub *hub) {
  persist *p = hub->persist;
  if (!p) {
    return;
  }
  mem_free(&hub->mem, p->recs);
  mem_free(&hub->mem, p->bytes);
  mem_free(&hub->mem, p->waiters);
  ptopic_free(hub);
  mem_free(&hub->mem, p);
  hub->persist = NULL;
}

void persist_close(tern_hub *hub) {
  persist *p = hub->persist;
  if (p) {
    tern_hub_flush(hub);
    persist_free(hub);
  }
}

int tern_hub_set_store(tern_hub *hub, const tern_store_methods *m, void *store,
                       tern_tstamp now) {
  size_t mlen = m ? layout_store_methods(m->version) : 0;
  if (!hub || mlen == 0 || !m->append || !m->load) {
    return TERN_ERR_INVALID;
  }
  if (hub->persist || hub->sessions.len || hub->conns || hub->topic_list ||
      hooks_count(hub)) {
    return TERN_ERR_STATE;
  }
  persist *p = mem_calloc(&hub->mem, 1, sizeof(*p));
  if (!p) {
    return TERN_ERR_NOMEM;
  }
  memcpy(&p->m, m, mlen); /* the caller's layout; newer methods stay NULL */
  p->m.version = TERN_STORE_METHODS_VERSION;
  p->store = store;
  hub->persist = p;
  /* The first DELs must fit even when memory is short later. */
  if (reserve(hub, 64, 4096) != 0) {
    persist_free(hub);
    return TERN_ERR_NOMEM;
  }
  loader l = {hub, now, 0, 0, NULL, 0, 0, NULL};
  uint64_t old_epoch = hub->epoch, old_expired = hub->stats.expired;
  size_t old_ev_head = hub->ev_head, old_ev_len = hub->ev_len,
         old_arena_len = hub->arena_len;
  hub->loading = 1;
  int rv = p->m.load(store, visit, &l);
  if (rv == 0) {
    rv = l.error;
  }
  if (rv == 0 && l.tl) {
    /* Sessions are in: topics, their logs, shared payloads and the
       messages that refer to them, then members and patterns. */
    rv = tload_finish(hub, l.tl, now, load_shared, &l);
  }
  if (rv == 0) {
    rv = hooks_load_finish(hub, now);
  }
  /* Sessions named only by dedup or message records lost their "S" record
     (deleted): their remains go too. */
  for (size_t i = 0; rv == 0 && i <= hub->sessions.mask; ++i) {
    hnode *n = hub->sessions.buckets[i];
    while (n) {
      session *s = (session *)n;
      n = n->next;
      if (!s->restored) {
        persist_session_gone(hub, s);
        session_destroy(hub, s);
      }
    }
  }
  if (rv != 0) {
    mem_free(&hub->mem, l.gone);
    tload_free(hub, l.tl);
    persist_free(hub); /* before unloading: nothing may be written */
    unload(hub);
    hub->loading = 0;
    hub->epoch = old_epoch;
    hub->stats.expired = old_expired;
    /* the EXPIRED events of a load that did not happen */
    hub->ev_head = old_ev_head;
    hub->ev_len = old_ev_len;
    hub->arena_len = old_arena_len;
    return rv == TERN_ERR_NOMEM ? rv : TERN_ERR_STORE;
  }
  hub->loading = 0;
  if (hub->next_serial) {
    ++hub->next_serial;
  }
  if (!l.found_epoch) {
    persist_epoch(hub);
  }
  for (size_t i = 0; i <= hub->sessions.mask; ++i) {
    for (hnode *n = hub->sessions.buckets[i]; n; n = n->next) {
      session *s = (session *)n;
      session_arm(hub, s); /* msg_due was set while loading */
      /* A new reservation above the restored next_seq: without it a
         second restart would hand out these seqs again.  It carries the
         losses to tell, those that expired while down among them. */
      persist_session(hub, s, s->next_seq + 2 * SEQ_BLOCK);
      if (s->dropped[0] | s->dropped[1] | s->dropped[2] ||
          (s->tp && s->tp->lost)) {
        session_notify(hub, s);
      }
    }
  }
  /* Only now the expired messages' records go: after the counts. */
  for (size_t i = 0; i < l.ngone; ++i) {
    persist_message_gone(hub, &(msg){.serial = l.gone[i]});
  }
  mem_free(&hub->mem, l.gone);
  /* Topic messages that expired while down go now, as a live hub's would
     (their members count the losses when they next look); payloads no
     record refers to any more go too. */
  tload_after(hub, l.tl, now);
  rv = tern_hub_flush(hub);
  return rv == TERN_ERR_NOMEM ? 0 : rv;
}
