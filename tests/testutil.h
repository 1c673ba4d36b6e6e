/*
 * Helpers shared by the engine tests (hub, publish, stream, badinput):
 *
 *  - a counting allocator (tern_mem) that can fail the Nth allocation and
 *    reports what is still allocated, for NOMEM sweeps and leak checks;
 *  - a fake client that encodes HELLO/ACK/PING/PONG/GOAWAY with the wire
 *    codec and feeds them through tern_conn_read;
 *  - an output collector that drains tern_conn_write with a chosen cap and
 *    decodes every frame the hub wrote (MSG, DROPPED, PING, PONG, WELCOME,
 *    GOAWAY), keeping the raw byte stream as well;
 *  - an event collector that copies events out of the hub's queue.
 *
 * Header-only: every function is static inline so that a test file uses
 * what it needs without unused-function warnings.  Test-side memory comes
 * from libc, never from the allocator under test.
 */
#ifndef TERN_TESTS_TESTUTIL_H
#define TERN_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"
#include "wire/frame.h"

#define MS(n) ((tern_duration)(n)*TERN_MILLISECONDS)
#define SEC(n) ((tern_duration)(n)*TERN_SECONDS)

/* A base time far from 0, so that "now - x" never wraps in the hub. */
#define T0 ((tern_tstamp)1000 * TERN_SECONDS)

static inline void *tu_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "testutil: out of memory\n");
    abort();
  }
  return p;
}

static inline void *tu_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "testutil: out of memory\n");
    abort();
  }
  return q;
}

/* ---- counting allocator ------------------------------------------------ */

/*
 * tu_alloc counts allocation calls (malloc, calloc, and realloc that asks
 * for memory) and live blocks.  With fail_at = N > 0 the Nth allocation
 * call fails (only that one, or every one from it on with fail_rest).
 * Freed blocks are poisoned and kept in a quarantine until tu_alloc_finish,
 * which reports any that were written after being freed (a use after free
 * that corrupts memory, caught without a sanitizer).
 */
typedef struct tu_alloc {
  long calls;       /* allocation calls so far                          */
  long fail_at;     /* 1-based call number to fail; 0 never              */
  int fail_rest;    /* fail every call from fail_at on                   */
  long failed;      /* calls made to fail                                */
  long outstanding; /* live blocks                                       */
  size_t bytes;     /* live bytes                                        */
  size_t peak;      /* most live bytes                                   */
  long bad_frees;   /* frees of pointers not from this allocator or
                       freed twice                                       */
  void *quarantine; /* freed blocks, poisoned                            */
} tu_alloc;

typedef union tu_hdr {
  struct {
    size_t size;
    uint64_t magic;
    void *next; /* quarantine link */
  } h;
  max_align_t align;
} tu_hdr;

#define TU_MAGIC UINT64_C(0x7465726e616c6c63)
#define TU_FREED UINT64_C(0x6672656564626c6b)
#define TU_POISON 0xdb

static inline int tu_should_fail(tu_alloc *a) {
  ++a->calls;
  if (a->fail_at > 0 &&
      (a->calls == a->fail_at || (a->fail_rest && a->calls > a->fail_at))) {
    ++a->failed;
    return 1;
  }
  return 0;
}

static inline void *tu_track(tu_alloc *a, tu_hdr *h, size_t size) {
  h->h.size = size;
  h->h.magic = TU_MAGIC;
  h->h.next = NULL;
  ++a->outstanding;
  a->bytes += size;
  if (a->bytes > a->peak) {
    a->peak = a->bytes;
  }
  return h + 1;
}

static inline void *tu_malloc(size_t size, void *ud) {
  tu_alloc *a = ud;
  if (tu_should_fail(a)) {
    return NULL;
  }
  tu_hdr *h = malloc(sizeof(tu_hdr) + size);
  if (!h) {
    return NULL;
  }
  memset(h + 1, 0xa5, size); /* malloc'd memory is not zero */
  return tu_track(a, h, size);
}

static inline void *tu_calloc(size_t n, size_t size, void *ud) {
  tu_alloc *a = ud;
  if (tu_should_fail(a)) {
    return NULL;
  }
  if (size && n > ((size_t)-1 - sizeof(tu_hdr)) / size) {
    return NULL;
  }
  tu_hdr *h = calloc(1, sizeof(tu_hdr) + n * size);
  if (!h) {
    return NULL;
  }
  return tu_track(a, h, n * size);
}

/* tu_block returns the header of a live block, or NULL (counted). */
static inline tu_hdr *tu_block(tu_alloc *a, void *p) {
  tu_hdr *h = (tu_hdr *)p - 1;
  if (h->h.magic != TU_MAGIC) {
    ++a->bad_frees;
    return NULL;
  }
  return h;
}

static inline void tu_release(tu_alloc *a, tu_hdr *h) {
  h->h.magic = TU_FREED;
  --a->outstanding;
  a->bytes -= h->h.size;
  memset(h + 1, TU_POISON, h->h.size);
  h->h.next = a->quarantine;
  a->quarantine = h;
}

static inline void tu_free(void *p, void *ud) {
  tu_alloc *a = ud;
  if (!p) {
    return;
  }
  tu_hdr *h = tu_block(a, p);
  if (h) {
    tu_release(a, h);
  }
}

static inline void *tu_realloc(void *p, size_t size, void *ud) {
  tu_alloc *a = ud;
  if (!p) {
    return tu_malloc(size, ud);
  }
  tu_hdr *old = tu_block(a, p);
  if (!old) {
    return NULL;
  }
  if (tu_should_fail(a)) {
    return NULL; /* the old block stays valid */
  }
  tu_hdr *h = malloc(sizeof(tu_hdr) + size);
  if (!h) {
    return NULL;
  }
  size_t keep = old->h.size < size ? old->h.size : size;
  memcpy(h + 1, old + 1, keep);
  if (size > keep) {
    memset((uint8_t *)(h + 1) + keep, 0xa5, size - keep);
  }
  tu_release(a, old);
  return tu_track(a, h, size);
}

/*
 * tu_alloc_finish empties the quarantine and returns how many freed blocks
 * were written after being freed.  Call it once the hub is gone.
 */
static inline long tu_alloc_finish(tu_alloc *a) {
  long corrupted = 0;
  while (a->quarantine) {
    tu_hdr *h = a->quarantine;
    a->quarantine = h->h.next;
    const uint8_t *b = (const uint8_t *)(h + 1);
    for (size_t i = 0; i < h->h.size; ++i) {
      if (b[i] != TU_POISON) {
        ++corrupted;
        break;
      }
    }
    free(h);
  }
  return corrupted;
}

/* tu_alloc_mem returns a tern_mem that routes through |a|. */
static inline tern_mem tu_alloc_mem(tu_alloc *a) {
  tern_mem m;
  m.user_data = a;
  m.malloc = tu_malloc;
  m.free = tu_free;
  m.calloc = tu_calloc;
  m.realloc = tu_realloc;
  return m;
}

/* ---- settings and hubs -------------------------------------------------- */

/* tu_settings: defaults with a fixed seed, so that every run is the same. */
static inline tern_settings tu_settings(void) {
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 0x5eed;
  return s;
}

static inline tern_hub *tu_hub(const tern_settings *s) {
  tern_hub *hub = NULL;
  int rv = tern_hub_new(&hub, s, NULL);
  if (rv != 0 || !hub) {
    fprintf(stderr, "testutil: tern_hub_new: %s\n", tern_strerror(rv));
    abort();
  }
  return hub;
}

static inline tern_stats tu_stats(const tern_hub *hub) {
  tern_stats st;
  memset(&st, 0, sizeof(st));
  tern_hub_get_stats(hub, &st, sizeof(st));
  return st;
}

/* tu_info describes the session |key| (all zero when it does not exist). */
static inline tern_session_info tu_info(tern_hub *hub, const char *key) {
  tern_session_info i;
  memset(&i, 0, sizeof(i));
  tern_session *s =
      tern_hub_find_session(hub, (const uint8_t *)key, strlen(key));
  if (s) {
    tern_session_get_info(s, &i, sizeof(i));
  }
  return i;
}

static inline tern_conn_info tu_conn_info(const tern_conn *c) {
  tern_conn_info i;
  memset(&i, 0, sizeof(i));
  tern_conn_get_info(c, &i, sizeof(i));
  return i;
}

/* tu_gauges_equal: the "what the hub holds" part of two stats. */
static inline int tu_gauges_equal(const tern_stats *a, const tern_stats *b) {
  return a->sessions == b->sessions && a->conns == b->conns &&
         a->messages == b->messages && a->message_bytes == b->message_bytes &&
         a->inflight == b->inflight;
}

/* tu_info_equal compares two session descriptions field by field. */
static inline int tu_info_equal(const tern_session_info *a,
                                const tern_session_info *b) {
  return a->keylen == b->keylen && a->pending == b->pending &&
         a->inflight == b->inflight && a->pending_bytes == b->pending_bytes &&
         a->nconns == b->nconns && a->next_seq == b->next_seq &&
         a->dropped == b->dropped;
}

/* ---- publishing --------------------------------------------------------- */

/*
 * tu_pub publishes |payload| (a string) to session |key| with priority
 * |prio| and message id |id| (NULL: generated).  Returns the publish code;
 * the result goes to |res| when given.
 */
static inline int tu_pub_full(tern_hub *hub, const char *key, int prio,
                              const char *id, const char *ck, tern_duration ttl,
                              const char *payload, tern_tstamp now,
                              tern_publish_result *res) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = prio;
  if (id) {
    d.id = (const uint8_t *)id;
    d.idlen = strlen(id);
  }
  if (ck) {
    d.collapse_key = (const uint8_t *)ck;
    d.collapse_keylen = strlen(ck);
  }
  d.ttl = ttl;
  if (payload) {
    d.payload = (const uint8_t *)payload;
    d.payloadlen = strlen(payload);
  }
  return tern_hub_publish(hub, (const uint8_t *)key, strlen(key), &d, now, res);
}

static inline int tu_pub(tern_hub *hub, const char *key, int prio,
                         const char *id, const char *payload, tern_tstamp now) {
  return tu_pub_full(hub, key, prio, id, NULL, 0, payload, now, NULL);
}

/* ---- the fake client ---------------------------------------------------- */

/* tu_encode encodes |f| into |buf| (cap bytes); aborts when it cannot. */
static inline size_t tu_encode(uint8_t *buf, size_t cap, const wire_frame *f) {
  size_t n = wire_frame_encode(buf, cap, f);
  if (n == 0) {
    fprintf(stderr, "testutil: cannot encode frame type %u\n", f->type);
    abort();
  }
  return n;
}

static inline size_t tu_hello_bytes(uint8_t *buf, size_t cap, const char *key,
                                    uint64_t last_seq, uint64_t epoch,
                                    uint64_t heartbeat_ms, const char *token) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_HELLO;
  f.u.hello.version = WIRE_VERSION;
  f.u.hello.last_seq = last_seq;
  f.u.hello.epoch = epoch;
  f.u.hello.heartbeat_ms = heartbeat_ms;
  f.u.hello.key = (const uint8_t *)key;
  f.u.hello.keylen = strlen(key);
  if (token) {
    f.u.hello.token = (const uint8_t *)token;
    f.u.hello.tokenlen = strlen(token);
  }
  return tu_encode(buf, cap, &f);
}

static inline size_t tu_ack_bytes(uint8_t *buf, size_t cap, uint64_t seq) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_ACK;
  f.u.ack_seq = seq;
  return tu_encode(buf, cap, &f);
}

static inline size_t tu_ping_bytes(uint8_t *buf, size_t cap, uint8_t type,
                                   uint64_t value) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = type; /* WIRE_PING or WIRE_PONG */
  f.u.ping = value;
  return tu_encode(buf, cap, &f);
}

static inline size_t tu_goaway_bytes(uint8_t *buf, size_t cap, uint64_t reason,
                                     const char *text) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_GOAWAY;
  f.u.goaway.reason = reason;
  f.u.goaway.text = (const uint8_t *)(text ? text : "");
  f.u.goaway.textlen = text ? strlen(text) : 0;
  return tu_encode(buf, cap, &f);
}

/* tu_feed hands |len| bytes to the connection in one tern_conn_read. */
static inline tern_ssize tu_feed(tern_conn *c, const uint8_t *p, size_t len,
                                 tern_tstamp now) {
  return tern_conn_read(c, p, len, now);
}

static inline tern_ssize tu_hello(tern_conn *c, const char *key,
                                  uint64_t last_seq, uint64_t epoch,
                                  uint64_t heartbeat_ms, const char *token,
                                  tern_tstamp now) {
  uint8_t buf[WIRE_HEADER_MAX + WIRE_CLIENT_BODY_MAX];
  size_t n = tu_hello_bytes(buf, sizeof(buf), key, last_seq, epoch,
                            heartbeat_ms, token);
  return tu_feed(c, buf, n, now);
}

static inline tern_ssize tu_ack(tern_conn *c, uint64_t seq, tern_tstamp now) {
  uint8_t buf[16];
  size_t n = tu_ack_bytes(buf, sizeof(buf), seq);
  return tu_feed(c, buf, n, now);
}

static inline tern_ssize tu_ping(tern_conn *c, uint64_t value,
                                 tern_tstamp now) {
  uint8_t buf[16];
  size_t n = tu_ping_bytes(buf, sizeof(buf), WIRE_PING, value);
  return tu_feed(c, buf, n, now);
}

static inline tern_ssize tu_pong(tern_conn *c, uint64_t value,
                                 tern_tstamp now) {
  uint8_t buf[16];
  size_t n = tu_ping_bytes(buf, sizeof(buf), WIRE_PONG, value);
  return tu_feed(c, buf, n, now);
}

static inline tern_ssize tu_client_goaway(tern_conn *c, uint64_t reason,
                                          tern_tstamp now) {
  uint8_t buf[64];
  size_t n = tu_goaway_bytes(buf, sizeof(buf), reason, "bye");
  return tu_feed(c, buf, n, now);
}

/* ---- server output ------------------------------------------------------ */

/* One decoded frame; |f|'s pointers point into |raw|, which it owns. */
typedef struct tu_frame {
  wire_frame f;
  uint8_t *raw;
  size_t rawlen;
} tu_frame;

/*
 * tu_out collects everything written on one connection.  Frames are
 * decoded as they complete; |stream| keeps every byte.
 */
typedef struct tu_out {
  uint8_t *stream;
  size_t len, cap, decoded;
  tu_frame *frames;
  size_t nframes, framecap;
  size_t first_new;      /* frames before it were there before the last write */
  int closed;            /* a write returned TERN_ERR_CLOSED                */
  int bad;               /* a frame failed to decode                        */
  int stalled;           /* want_write was set but write gave 0 bytes       */
  tern_ssize last_error; /* the last negative write result other than CLOSED */
  long writes;           /* tern_conn_write calls                           */
} tu_out;

static inline void tu_out_init(tu_out *o) { memset(o, 0, sizeof(*o)); }

static inline void tu_out_free(tu_out *o) {
  for (size_t i = 0; i < o->nframes; ++i) {
    free(o->frames[i].raw);
  }
  free(o->frames);
  free(o->stream);
  memset(o, 0, sizeof(*o));
}

static inline void tu_out_append(tu_out *o, const uint8_t *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + n) {
      cap *= 2;
    }
    o->stream = tu_xrealloc(o->stream, cap);
    o->cap = cap;
  }
  memcpy(o->stream + o->len, p, n);
  o->len += n;
}

static inline void tu_out_decode(tu_out *o) {
  while (!o->bad && o->decoded < o->len) {
    wire_frame f;
    tern_ssize n = wire_frame_decode(&f, o->stream + o->decoded,
                                     o->len - o->decoded, (size_t)1 << 30);
    if (n == 0) {
      return;
    }
    if (n < 0) {
      o->bad = 1;
      return;
    }
    /* Re-decode from a private copy so that the pointers stay valid. */
    tu_frame t;
    t.rawlen = (size_t)n;
    t.raw = tu_xmalloc(t.rawlen);
    memcpy(t.raw, o->stream + o->decoded, t.rawlen);
    if (wire_frame_decode(&t.f, t.raw, t.rawlen, (size_t)1 << 30) != n) {
      o->bad = 1;
      free(t.raw);
      return;
    }
    if (o->nframes == o->framecap) {
      o->framecap = o->framecap ? o->framecap * 2 : 32;
      o->frames = tu_xrealloc(o->frames, o->framecap * sizeof(*o->frames));
    }
    o->frames[o->nframes++] = t;
    o->decoded += (size_t)n;
  }
}

/*
 * tu_write_once makes one tern_conn_write call with |cap| bytes of room and
 * collects what it wrote.  Returns its result.
 */
static inline tern_ssize tu_write_once(tu_out *o, tern_conn *c, size_t cap,
                                       tern_tstamp now) {
  uint8_t small[256];
  uint8_t *buf = cap <= sizeof(small) ? small : tu_xmalloc(cap);
  tern_ssize n = tern_conn_write(c, buf, cap, now);
  ++o->writes;
  if (n > 0) {
    tu_out_append(o, buf, (size_t)n);
    tu_out_decode(o);
  } else if (n == TERN_ERR_CLOSED) {
    o->closed = 1;
  } else if (n < 0) {
    o->last_error = n;
  }
  if (buf != small) {
    free(buf);
  }
  return n;
}

/*
 * tu_write drains the connection: tern_conn_write with |cap| until it
 * returns 0 or an error.  Returns the bytes written in total, or the error
 * when nothing was written.  Sets o->stalled when the connection still says
 * it wants to write after a write gave nothing.
 */
static inline tern_ssize tu_write(tu_out *o, tern_conn *c, size_t cap,
                                  tern_tstamp now) {
  size_t total = 0;
  o->first_new = o->nframes;
  for (long i = 0; i < 10000000; ++i) {
    tern_ssize n = tu_write_once(o, c, cap, now);
    if (n < 0) {
      return total ? (tern_ssize)total : n;
    }
    if (n == 0) {
      if (tern_conn_want_write(c)) {
        o->stalled = 1;
      }
      break;
    }
    total += (size_t)n;
  }
  return (tern_ssize)total;
}

/* tu_drain writes with a large buffer. */
static inline tern_ssize tu_drain(tu_out *o, tern_conn *c, tern_tstamp now) {
  return tu_write(o, c, 1 << 20, now);
}

/* tu_count counts frames of |type| from frame index |from| on. */
static inline size_t tu_count(const tu_out *o, uint8_t type, size_t from) {
  size_t n = 0;
  for (size_t i = from; i < o->nframes; ++i) {
    n += o->frames[i].f.type == type;
  }
  return n;
}

/* tu_nth returns the |k|th (0-based) frame of |type| from |from| on. */
static inline const wire_frame *tu_nth(const tu_out *o, uint8_t type,
                                       size_t from, size_t k) {
  for (size_t i = from; i < o->nframes; ++i) {
    if (o->frames[i].f.type == type && k-- == 0) {
      return &o->frames[i].f;
    }
  }
  return NULL;
}

static inline const wire_frame *tu_last(const tu_out *o, uint8_t type) {
  for (size_t i = o->nframes; i > 0; --i) {
    if (o->frames[i - 1].f.type == type) {
      return &o->frames[i - 1].f;
    }
  }
  return NULL;
}

/* tu_new_msgs counts MSG frames the last tu_write produced. */
static inline size_t tu_new_msgs(const tu_out *o) {
  return tu_count(o, WIRE_MSG, o->first_new);
}

/* tu_dropped sums DROPPED counts of |reason| (0: any) from |from| on. */
static inline uint64_t tu_dropped(const tu_out *o, uint64_t reason,
                                  size_t from) {
  uint64_t n = 0;
  for (size_t i = from; i < o->nframes; ++i) {
    const wire_frame *f = &o->frames[i].f;
    if (f->type == WIRE_DROPPED &&
        (reason == 0 || f->u.dropped.reason == reason)) {
      n += f->u.dropped.count;
    }
  }
  return n;
}

/* tu_msg_id_is, tu_msg_payload_is: the MSG frame |f| carries |id| or
   |payload|. */
static inline int tu_msg_id_is(const wire_frame *f, const char *id) {
  return f && f->type == WIRE_MSG && f->u.msg.idlen == strlen(id) &&
         memcmp(f->u.msg.id, id, f->u.msg.idlen) == 0;
}

static inline int tu_msg_payload_is(const wire_frame *f, const char *payload) {
  return f && f->type == WIRE_MSG && f->u.msg.payloadlen == strlen(payload) &&
         memcmp(f->u.msg.payload, payload, f->u.msg.payloadlen) == 0;
}

/*
 * tu_payloads joins the payloads of the MSG frames from |from| on into |buf|,
 * separated by spaces (a compact way to assert order).
 */
static inline const char *tu_payloads(const tu_out *o, size_t from, char *buf,
                                      size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (size_t i = from; i < o->nframes; ++i) {
    const wire_frame *f = &o->frames[i].f;
    if (f->type != WIRE_MSG) {
      continue;
    }
    size_t len = f->u.msg.payloadlen;
    if (n + len + 2 > cap) {
      break;
    }
    if (n) {
      buf[n++] = ' ';
    }
    memcpy(buf + n, f->u.msg.payload, len);
    n += len;
    buf[n] = 0;
  }
  return buf;
}

/* tu_max_seq returns the highest MSG seq seen (0: none). */
static inline uint64_t tu_max_seq(const tu_out *o) {
  uint64_t m = 0;
  for (size_t i = 0; i < o->nframes; ++i) {
    if (o->frames[i].f.type == WIRE_MSG && o->frames[i].f.u.msg.seq > m) {
      m = o->frames[i].f.u.msg.seq;
    }
  }
  return m;
}

/* ---- connecting --------------------------------------------------------- */

/*
 * tu_connect creates a connection, sends HELLO for |key| (last_seq 0, no
 * epoch, server heartbeat) and drains the WELCOME into |o|.  Aborts when
 * the connection cannot be made.
 */
static inline tern_conn *tu_connect(tern_hub *hub, const char *key,
                                    tern_tstamp now, tu_out *o) {
  tern_conn *c = NULL;
  if (tern_conn_new(&c, hub, now) != 0) {
    fprintf(stderr, "testutil: tern_conn_new failed\n");
    abort();
  }
  tern_ssize rv = tu_hello(c, key, 0, 0, 0, NULL, now);
  if (rv < 0) {
    fprintf(stderr, "testutil: HELLO failed: %s\n", tern_strerror((int)rv));
    abort();
  }
  if (o) {
    tu_drain(o, c, now);
  }
  return c;
}

/* ---- events ------------------------------------------------------------- */

typedef struct tu_event {
  int type, reason;
  tern_conn *conn;
  uint64_t seq, count;
  uint8_t key[TERN_MAX_SESSION_KEY];
  size_t keylen;
  uint8_t id[TERN_MAX_ID];
  size_t idlen;
  uint8_t aux[TERN_MAX_TOKEN];
  size_t auxlen;
} tu_event;

typedef struct tu_events {
  tu_event *ev;
  size_t n, cap;
} tu_events;

static inline void tu_events_free(tu_events *e) {
  free(e->ev);
  memset(e, 0, sizeof(*e));
}

/* tu_events_take drains the hub's queue, appending to |e|. */
static inline size_t tu_events_take(tu_events *e, tern_hub *hub) {
  size_t got = 0;
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (e->n == e->cap) {
      e->cap = e->cap ? e->cap * 2 : 16;
      e->ev = tu_xrealloc(e->ev, e->cap * sizeof(*e->ev));
    }
    tu_event *t = &e->ev[e->n++];
    memset(t, 0, sizeof(*t));
    t->type = ev.type;
    t->reason = ev.reason;
    t->conn = ev.conn;
    t->seq = ev.seq;
    t->count = ev.count;
    if (ev.session_keylen <= sizeof(t->key)) {
      t->keylen = ev.session_keylen;
      if (t->keylen) {
        memcpy(t->key, ev.session_key, t->keylen);
      }
    }
    if (ev.msg_idlen <= sizeof(t->id)) {
      t->idlen = ev.msg_idlen;
      if (t->idlen) {
        memcpy(t->id, ev.msg_id, t->idlen);
      }
    }
    if (ev.auxlen <= sizeof(t->aux)) {
      t->auxlen = ev.auxlen;
      if (t->auxlen) {
        memcpy(t->aux, ev.aux, t->auxlen);
      }
    }
    ++got;
  }
  return got;
}

/* tu_events_drain discards every queued event. */
static inline void tu_events_drain(tern_hub *hub) {
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
  }
}

static inline size_t tu_events_count(const tu_events *e, int type) {
  size_t n = 0;
  for (size_t i = 0; i < e->n; ++i) {
    n += e->ev[i].type == type;
  }
  return n;
}

static inline const tu_event *tu_events_find(const tu_events *e, int type) {
  for (size_t i = 0; i < e->n; ++i) {
    if (e->ev[i].type == type) {
      return &e->ev[i];
    }
  }
  return NULL;
}

/* tu_event_id_is: the event names message id |id|. */
static inline int tu_event_id_is(const tu_event *ev, const char *id) {
  return ev && ev->idlen == strlen(id) && memcmp(ev->id, id, ev->idlen) == 0;
}

#endif
