/*
 * Connections speaking the binary framing: reading frames (HELLO, ACK, PING,
 * PONG, GOAWAY), writing them (WELCOME, PONG, PING, DROPPED, MSG, GOAWAY)
 * into the host's buffer, and the per-connection deadline that covers the
 * handshake, heartbeat, liveness and ack timeout.
 *
 * One timer per connection: its heap deadline may be earlier than the true
 * next deadline (activity only pushes deadlines later), and conn_on_timer
 * re-arms it with the real one.  This keeps the heap out of the hot path.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/produce.h"
#include "deliver/topic.h"
#include "deliver/web.h"
#include "wire/publish.h"

#define MS(d) ((tern_duration)(d) * TERN_MILLISECONDS)

/* The binary framing's reader and writer are inlined twice: into the
   public calls (the hot path, as before) and into the entry points
   tern.bin over WebSocket uses (wsconn.c). */
#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define ALWAYS_INLINE inline
#endif

int conn_aux_get(tern_hub *hub, conn *c) {
  if (!c->aux) {
    c->aux = hub->aux_spare ? hub->aux_spare
                            : mem_malloc(&hub->mem, sizeof(conn_aux));
    hub->aux_spare = NULL;
    if (!c->aux) {
      return TERN_ERR_NOMEM;
    }
    c->aux->rlen = 0;
    c->aux->wmsg = NULL;
    c->aux->wctllen = c->aux->wctloff = 0;
    c->aux->hello_waiting = 0;
    c->aux->told[0] = c->aux->told[1] = c->aux->told[2] = 0;
    c->aux->told_retention = 0;
    c->aux->told_seq = 0;
    c->aux->prod = NULL;
    c->aux->peek = NULL;
    c->aux->peek_off = c->aux->peek_len = 0;
  }
  return 0;
}

void *hub_spare_put(tern_hub *hub, void *spare, void *block) {
  if (!spare) {
    return block;
  }
  mem_free(&hub->mem, block);
  return spare;
}
static void aux_release(tern_hub *hub, conn_aux *a) {
  hub->aux_spare = hub_spare_put(hub, hub->aux_spare, a);
}
static void peek_release(tern_hub *hub, uint8_t *block) {
  hub->peek_spare = hub_spare_put(hub, hub->peek_spare, block);
}

void conn_aux_free(tern_hub *hub, conn *c) {
  if (c->aux) {
    if (c->aux->wmsg) {
      msg_unref(hub, c->aux->wmsg);
    }
    if (c->aux->peek) {
      peek_release(hub, c->aux->peek);
    }
    aux_release(hub, c->aux);
    c->aux = NULL;
  }
}

/* Frees the aux block once nothing in it is in use. */
static void aux_trim(tern_hub *hub, conn *c) {
  conn_aux *a = c->aux;
  if (a && a->rlen == 0 && !a->wmsg && !a->wctllen && !a->hello_waiting &&
      !a->prod && !a->peek &&
      !(a->told[0] | a->told[1] | a->told[2] | a->told_retention)) {
    aux_release(hub, a);
    c->aux = NULL;
  }
}

/* When an in-flight message's ack is overdue.  The timeout doubles with
   every send (up to 2^10 times), as TCP's does: with a fixed one, a path
   whose round trip exceeds it would re-send forever, every ACK naming a
   copy that was already replaced. */
static tern_tstamp ack_deadline(const tern_hub *hub, const msg *m) {
  unsigned shift = m->deliveries > 11 ? 10u : (unsigned)(m->deliveries - 1);
  tern_duration t = hub->set.ack_timeout;
  t = t > (UINT64_MAX >> 11) ? t : t << shift;
  return m->sent_at + t;
}

static tern_tstamp deadline_of(const tern_hub *hub, const conn *c) {
  if (c->state >= CONN_CLOSING) {
    return TERN_TSTAMP_NONE;
  }
  tern_tstamp d = c->last_rx + MS(c->liveness_ms);
  if (c->state != CONN_OPEN) {
    return d;
  }
  if (!(c->ctl & CTL_PING)) {
    tern_tstamp hb = c->last_tx + MS(c->heartbeat_ms);
    d = hb < d ? hb : d;
  }
  if (hub->set.ack_timeout && c->inflight) {
    tern_tstamp at = ack_deadline(hub, c->inflight);
    d = at < d ? at : d;
  }
  return d;
}

static void rearm(tern_hub *hub, conn *c) {
  heap_set(&hub->timers, &c->timer, deadline_of(hub, c));
}

int tern_conn_new(tern_conn **pconn, tern_hub *hub, tern_tstamp now) {
  if (!pconn || !hub) {
    return TERN_ERR_INVALID;
  }
  conn *c;
  int rv = conn_new_binary(hub, sizeof(conn), now, &c);
  if (rv == 0) {
    *pconn = (tern_conn *)c;
  }
  return rv;
}

int conn_new_binary(tern_hub *hub, size_t size, tern_tstamp now,
                    conn **pc) {
  conn *c = mem_calloc(&hub->mem, 1, size);
  if (!c) {
    return TERN_ERR_NOMEM;
  }
  if (hub_reserve_timer(hub) != 0) {
    mem_free(&hub->mem, c);
    return TERN_ERR_NOMEM;
  }
  /* Room for the event that will end it: every end is told. */
  if (event_reserve(hub, 1, 0) != 0) {
    hub_release_timer(hub);
    mem_free(&hub->mem, c);
    return TERN_ERR_NOMEM;
  }
  c->hub = hub;
  c->state = CONN_HANDSHAKE;
  c->last_rx = c->last_tx = now;
  c->liveness_ms = (uint32_t)(hub->set.liveness_timeout / TERN_MILLISECONDS);
  c->heartbeat_ms =
      (uint32_t)(hub->set.heartbeat_interval / TERN_MILLISECONDS);
  c->timer.kind = TIMER_CONN;
  c->all_next = hub->conns;
  if (hub->conns) {
    hub->conns->all_prev = c;
  }
  hub->conns = c;
  rearm(hub, c);
  ++hub->nconns;
  ++hub->stats.conns;
  *pc = c;
  return 0;
}

void tern_conn_del(tern_conn *tc) {
  conn *c = (conn *)tc;
  if (!c) {
    return;
  }
  tern_hub *hub = c->hub;
  if (c->state < CONN_CLOSING) {
    /* Ended by the host itself: its end event is not needed. */
    event_unreserve(hub, 1, c->session ? c->session->keylen : 0);
  }
  if (c->session) {
    /* The session's TTL counts from the last sign of life: bytes received,
       or for a one-way framing, whose peer never speaks, bytes sent. */
    session_detach(hub, c->session, c,
                   conn_is_oneway(c) ? c->last_tx : c->last_rx);
  }
  hub_unready(hub, c);
  heap_disarm(&hub->timers, &c->timer);
  hub_release_timer(hub);
  produce_free(hub, c);
  conn_aux_free(hub, c);
  if (c->framing) {
    framing_release(hub, c);
  }
  c->state = CONN_DELETED;
  --hub->nconns;
  --hub->stats.conns;
  if (c->nevents == 0) {
    conn_free(hub, c);
  }
  /* else tern_hub_next_event frees it with the last event naming it */
}

void conn_free(tern_hub *hub, conn *c) {
  if (c->all_prev) {
    c->all_prev->all_next = c->all_next;
  } else {
    hub->conns = c->all_next;
  }
  if (c->all_next) {
    c->all_next->all_prev = c->all_prev;
  }
  mem_free(&hub->mem, c);
}

void conn_close(conn *c, int reason, uint32_t retry_ms, int error, int quiet,
                tern_tstamp now) {
  tern_hub *hub = c->hub;
  if (c->state >= CONN_CLOSING) {
    return;
  }
  /* The one event of its end, in the room reserved since tern_conn_new
     (and for the key since it bound). */
  const session *s = c->session;
  event_duty(hub,
             reason == TERN_GOAWAY_TIMEOUT && c->state == CONN_OPEN
                 ? TERN_EV_CONN_DEAD
                 : TERN_EV_CONN_CLOSED,
             reason, (tern_conn *)c, s ? s->key : NULL, s ? s->keylen : 0,
             NULL, 0, NULL, 0, 0, 0);
  if (c->session) {
    session_detach(hub, c->session, c, now);
  }
  if (c->aux) {
    c->aux->rlen = 0;
    c->aux->hello_waiting = 0;
    aux_trim(hub, c);
  }
  if (conn_producer(c)) {
    produce_closed(hub, c); /* PUBACKs queued so far go before the GOAWAY */
  }
  c->error = conn_error_pack(error);
  c->goaway_reason = (uint8_t)reason;
  c->goaway_retry_ms = retry_ms;
  c->ctl = quiet ? 0 : CTL_GOAWAY;
  c->state = (c->ctl || (c->aux && (c->aux->wmsg || c->aux->wctllen)))
                 ? CONN_CLOSING
                 : CONN_CLOSED;
  heap_disarm(&hub->timers, &c->timer);
  if (c->state == CONN_CLOSING) {
    hub_mark_ready(hub, c);
  } else {
    hub_unready(hub, c);
  }
  if (is_ws(c)) {
    ws_on_close(c); /* a CLOSE frame follows */
  }
}


/* ---- binding to a session ----------------------------------------------- */

static int bind(conn *c, const uint8_t *key, size_t keylen, uint64_t last_seq,
                uint64_t epoch, uint64_t heartbeat_ms, tern_tstamp now) {
  tern_hub *hub = c->hub;
  uint64_t hash = session_hash(hub, key, keylen);
  session *s = session_find(hub, key, keylen, hash);
  int created = 0;
  /* The end event will carry the session key. */
  if (event_reserve(hub, 0, keylen) != 0) {
    return TERN_ERR_NOMEM;
  }
  if (!s) {
    int rv = session_new(hub, &s, key, keylen, hash, now);
    if (rv != 0) {
      event_unreserve(hub, 0, keylen);
      return rv;
    }
    created = 1;
  } else if (epoch == hub->epoch && last_seq) {
    session_resume(hub, s, last_seq, now);
  }
  if (s->nconns >= hub->set.max_conns) {
    event_unreserve(hub, 0, keylen);
    if (created) {
      session_destroy(hub, s);
    }
    return TERN_ERR_LIMIT;
  }
  uint32_t retry_ms = 0;
  int deferred = hub->set.accept_rate &&
                 hub_accept_defer(hub, created ? NULL : s, now, &retry_ms);
  if (!deferred) {
    session_attach(hub, s, c);
  }
  uint64_t base_hb = hub->set.heartbeat_interval / TERN_MILLISECONDS;
  uint64_t max_hb = hub->set.max_heartbeat / TERN_MILLISECONDS;
  uint64_t hb = heartbeat_ms ? heartbeat_ms : base_hb;
  hb = hb < 1000 ? 1000 : hb > max_hb ? max_hb : hb;
  uint64_t margin =
      (hub->set.liveness_timeout - hub->set.heartbeat_interval) /
      TERN_MILLISECONDS;
  c->heartbeat_ms = (uint32_t)hb;
  c->liveness_ms = (uint32_t)(hb + margin);
  c->state = CONN_OPEN;
  c->ctl |= CTL_WELCOME;
  c->welcome_flags = (uint8_t)((epoch == hub->epoch && last_seq
                                    ? WIRE_WELCOME_RESUMED
                                    : 0) |
                               (created ? 0 : WIRE_WELCOME_EXISTED));
  c->last_rx = c->last_tx = now;
  if (deferred) {
    /* A reconnect storm: WELCOME (the receiver's attempt succeeded, and
       its last_seq was applied above), then GOAWAY LIMIT, both with the
       hint.  The connection never joins the session. */
    event_unreserve(hub, 0, keylen);
    conn_close(c, TERN_GOAWAY_LIMIT, retry_ms, 0, 0, now);
    c->ctl |= CTL_WELCOME;
    return 0;
  }
  rearm(hub, c);
  ++hub->stats.conns_opened;
  hub_mark_ready(hub, c);
  return 0;
}

static int close_reason(int err) {
  switch (err) {
  case TERN_ERR_TOO_LARGE:
    return TERN_GOAWAY_TOO_LARGE;
  case TERN_ERR_LIMIT:
    return TERN_GOAWAY_LIMIT;
  case TERN_ERR_NOMEM:
    return TERN_GOAWAY_INTERNAL;
  default:
    return TERN_GOAWAY_PROTO;
  }
}

static int on_hello(conn *c, const wire_hello *h, tern_tstamp now) {
  tern_hub *hub = c->hub;
  if (c->state != CONN_HANDSHAKE) {
    return TERN_ERR_PROTO;
  }
  /* Without room for its event the HELLO fails as a whole (NOMEM closes
     the connection, and that end is told in the room it holds). */
  if (event_reserve(hub, 1, h->keylen + h->tokenlen) != 0) {
    return TERN_ERR_NOMEM;
  }
  int rv = hub->set.hello_accept ? conn_aux_get(hub, c) : 0;
  if (rv != 0) {
    event_unreserve(hub, 1, h->keylen + h->tokenlen);
    return rv;
  }
  event_duty(hub, TERN_EV_CONN_HELLO, 0, (tern_conn *)c, h->key, h->keylen,
             NULL, 0, h->token, h->tokenlen, h->last_seq, 0);
  if (!hub->set.hello_accept) {
    return bind(c, h->key, h->keylen, h->last_seq, h->epoch, h->heartbeat_ms,
                now);
  }
  conn_aux *a = c->aux;
  a->hello_waiting = 1;
  a->hello_last_seq = h->last_seq;
  a->hello_epoch = h->epoch;
  a->hello_heartbeat_ms = h->heartbeat_ms;
  a->hello_keylen = (uint8_t)h->keylen;
  memcpy(a->hello_key, h->key, h->keylen);
  c->state = CONN_WAIT_ACCEPT;
  return 0;
}

/* Handles one decoded frame.  Returns 0, 1 (stop reading), or an error. */
static int on_ack(conn *c, uint64_t seq) {
  if (c->state != CONN_OPEN || seq >= c->session->next_seq) {
    return TERN_ERR_PROTO;
  }
  conn_on_ack(c, seq);
  return 0;
}

/* The ack of an open connection's messages up to |seq| (< next_seq), in-band
   or out of band (tern_hub_ack). */
void conn_on_ack(conn *c, uint64_t seq) {
  if (c->inflight && c->inflight->seq <= seq) {
    conn_ack(c->hub, c, seq);
    if (c->session->npending ||
        (c->session->tp && topic_has_output(c->hub, c->session))) {
      hub_mark_ready(c->hub, c);
    }
  }
  conn_aux *a = c->aux;
  if (a && seq >= a->told_seq &&
      (a->told[0] | a->told[1] | a->told[2] | a->told_retention)) {
    /* the notices arrived */
    a->told[0] = a->told[1] = a->told[2] = a->told_retention = 0;
    aux_trim(c->hub, c);
    if (c->session->tp) {
      topic_session_trim(c->hub, c->session); /* held for the notice */
    }
    if (c->hub->persist) {
      persist_drops(c->hub, c->session); /* a restart need not tell them */
    }
  }
}

tern_tstamp conn_ack_deadline(const tern_hub *hub, const msg *m) {
  return ack_deadline(hub, m);
}
void conn_aux_trim(tern_hub *hub, conn *c) { aux_trim(hub, c); }

static int on_frame(conn *c, const wire_frame *f, tern_tstamp now) {
  tern_hub *hub = c->hub;
  switch (f->type) {
  case WIRE_ACK:
    return on_ack(c, f->u.ack_seq);
  case WIRE_HELLO:
    return on_hello(c, &f->u.hello, now);
  case WIRE_PING:
    if (c->state == CONN_HANDSHAKE) {
      return TERN_ERR_PROTO;
    }
    c->pong_value = f->u.ping;
    c->ctl |= CTL_PONG;
    hub_mark_ready(hub, c);
    return 0;
  case WIRE_PONG:
    if (c->state == CONN_HANDSHAKE) {
      return TERN_ERR_PROTO;
    }
    /* Our PINGs carry the time they were sent; a PONG that answers no
       PING of ours is ignored. */
    if (c->ping_sent && f->u.ping == c->ping_sent && f->u.ping <= now) {
      uint64_t us = (now - f->u.ping) / 1000;
      c->rtt_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
      c->ping_sent = 0;
    }
    return 0;
  case WIRE_GOAWAY:
    conn_close(c, TERN_GOAWAY_CLIENT, 0, 0, 1, now);
    return 1;
  default:
    return TERN_ERR_PROTO;
  }
}

/* Decodes and handles the frames in [p, p+len).  Returns bytes used, or an
   error.  Stops early (returning len) once the connection closes. */
static tern_ssize on_bytes(conn *c, const uint8_t *p, size_t len,
                           tern_tstamp now) {
  size_t used = 0;
  while (used < len) {
    uint64_t seq;
    tern_ssize n = wire_ack_peek(&seq, p + used, len - used);
    if (n > 0) {
      int rv = on_ack(c, seq);
      if (rv < 0) {
        return rv;
      }
      used += (size_t)n;
      continue;
    }
    if (p[used] == WIRE_PUBLISH) {
      if (conn_producer(c)) {
        return (tern_ssize)used; /* produce_read takes it */
      }
      /* Not allowed to publish (tern_conn_allow_publish). */
      conn_close(c, TERN_GOAWAY_REJECTED, 0, TERN_ERR_PROTO, 0, now);
      return TERN_ERR_PROTO;
    }
    wire_frame f;
    n = wire_frame_decode(&f, p + used, len - used, WIRE_CLIENT_BODY_MAX);
    if (n <= 0) {
      return n < 0 ? n : (tern_ssize)used;
    }
    int rv = on_frame(c, &f, now);
    if (rv < 0) {
      return rv;
    }
    used += (size_t)n;
    if (rv > 0 || c->state >= CONN_CLOSING) {
      return (tern_ssize)len;
    }
  }
  return (tern_ssize)used;
}

tern_ssize conn_frames(conn *c, const uint8_t *p, size_t len,
                       tern_tstamp now) {
  return on_bytes(c, p, len, now);
}

static ALWAYS_INLINE tern_ssize read_binary(conn *c, const uint8_t *in,
                                            size_t len, tern_tstamp now) {
  tern_hub *hub = c->hub;
  hub->stats.bytes_in += len;
  if (c->state == CONN_OPEN) {
    c->last_rx = now; /* the handshake deadline does not move */
  }
  size_t left = len;
  tern_ssize rv = 0;
  if (conn_producer(c)) {
    /* A producer: it may stop early (see produce.c). */
    rv = produce_read(c, in, len, now);
    if (rv >= 0) {
      hub->stats.bytes_in -= len - (size_t)rv;
      return rv;
    }
    left = 0;
  }
  while (left > 0 && c->state < CONN_CLOSING) {
    if (c->aux && c->aux->rlen) {
      /* Complete the buffered frame; the buffer holds a whole one. */
      conn_aux *a = c->aux;
      size_t room = sizeof(a->rbuf) - a->rlen;
      size_t n = left < room ? left : room;
      memcpy(a->rbuf + a->rlen, in, n);
      a->rlen += n;
      in += n;
      left -= n;
      rv = on_bytes(c, a->rbuf, a->rlen, now);
      if (rv < 0 || c->state >= CONN_CLOSING) {
        break;
      }
      memmove(a->rbuf, a->rbuf + rv, a->rlen - (size_t)rv);
      a->rlen -= (size_t)rv;
      continue;
    }
    rv = on_bytes(c, in, left, now);
    if (rv < 0) {
      break;
    }
    in += rv;
    left -= (size_t)rv;
    if (left > 0 && c->state < CONN_CLOSING) {
      /* An incomplete frame: keep it (the decoder already refused any
         frame longer than the buffer). */
      rv = conn_aux_get(hub, c);
      if (rv < 0) {
        break;
      }
      memcpy(c->aux->rbuf, in, left);
      c->aux->rlen = left;
      left = 0;
    }
    rv = 0;
  }
  if (rv < 0) {
    if (rv == TERN_ERR_PROTO || rv == TERN_ERR_TOO_LARGE) {
      ++hub->stats.proto_errors;
    }
    conn_close(c, close_reason((int)rv), 0, (int)rv, 0, now);
    return rv;
  }
  if (c->aux) {
    aux_trim(hub, c);
  }
  return (tern_ssize)len;
}

tern_ssize tern_conn_read(tern_conn *tc, const uint8_t *in, size_t len,
                          tern_tstamp now) {
  conn *c = (conn *)tc;
  if (!c || (!in && len)) {
    return TERN_ERR_INVALID;
  }
  if (c->state >= CONN_CLOSING) {
    return TERN_ERR_CLOSED;
  }
  if (c->framing) {
    return framing_read(c, in, len, now);
  }
  return read_binary(c, in, len, now);
}

tern_ssize conn_read_binary(conn *c, const uint8_t *in, size_t len,
                            tern_tstamp now) {
  return read_binary(c, in, len, now);
}

/* ---- writing ------------------------------------------------------------ */

typedef struct out {
  uint8_t *p, *end;
  uint8_t *start; /* the host's buffer */
  int nomem;      /* a partial frame could not get the aux block */
} out;

/* Continues a control frame that did not fit last time.  1 when done. */
static int put_ctl_rest(tern_hub *hub, conn *c, out *o) {
  conn_aux *a = c->aux;
  size_t n = (size_t)(a->wctllen - a->wctloff);
  size_t room = (size_t)(o->end - o->p);
  n = n < room ? n : room;
  memcpy(o->p, a->wctl + a->wctloff, n);
  o->p += n;
  a->wctloff = (uint16_t)(a->wctloff + n);
  if (a->wctloff < a->wctllen) {
    return 0;
  }
  a->wctllen = a->wctloff = 0;
  aux_trim(hub, c);
  return 1;
}

/*
 * Writes |f|.  A frame larger than the whole buffer is written in part and
 * continued by the next writes, before anything else.  1 when the frame
 * was written or started, 0 when it must wait for the next write.
 */
static int put_frame(tern_hub *hub, conn *c, out *o, const wire_frame *f) {
  size_t n = wire_frame_encode(o->p, (size_t)(o->end - o->p), f);
  if (n > 0) {
    o->p += n;
    return 1;
  }
  if (o->p != o->start || o->p == o->end) {
    return 0;
  }
  if (conn_aux_get(hub, c) != 0) {
    o->nomem = 1;
    return 0;
  }
  conn_aux *a = c->aux;
  a->wctllen = (uint16_t)wire_frame_encode(a->wctl, sizeof(a->wctl), f);
  a->wctloff = 0;
  if (a->wctllen == 0) {
    aux_trim(hub, c);
    return 0;
  }
  put_ctl_rest(hub, c, o);
  return 1;
}

/* Continues a frame that did not fit last time.  1 when it is complete. */
static int put_partial(tern_hub *hub, conn *c, out *o) {
  conn_aux *a = c->aux;
  size_t total = a->wheadlen + a->wmsg->taillen;
  while (a->woff < total && o->p < o->end) {
    size_t room = (size_t)(o->end - o->p);
    size_t n;
    if (a->woff < a->wheadlen) {
      n = a->wheadlen - a->woff;
      n = n < room ? n : room;
      memcpy(o->p, a->whead + a->woff, n);
    } else {
      size_t off = a->woff - a->wheadlen;
      n = a->wmsg->taillen - off;
      n = n < room ? n : room;
      memcpy(o->p, msg_tail(a->wmsg) + off, n);
    }
    o->p += n;
    a->woff += n;
  }
  if (a->woff < total) {
    return 0;
  }
  msg_unref(hub, a->wmsg);
  a->wmsg = NULL;
  aux_trim(hub, c);
  return 1;
}

/* The WELCOME; its retry hint is that of a deferred HELLO's GOAWAY (0
   for a connection that opened). */
static int put_welcome(tern_hub *hub, conn *c, out *o) {
  wire_frame f;
  f.type = WIRE_WELCOME;
  f.u.welcome.version = WIRE_VERSION;
  f.u.welcome.epoch = hub->epoch;
  f.u.welcome.flags = c->welcome_flags;
  f.u.welcome.heartbeat_ms = c->heartbeat_ms;
  f.u.welcome.liveness_ms = c->liveness_ms;
  f.u.welcome.window = hub->set.inflight_window;
  f.u.welcome.retry_ms = c->goaway_retry_ms;
  if (!put_frame(hub, c, o, &f)) {
    return 0;
  }
  c->ctl &= (uint8_t)~CTL_WELCOME;
  return 1;
}

static int put_control(tern_hub *hub, conn *c, out *o, tern_tstamp now) {
  wire_frame f;
  if ((c->ctl & CTL_WELCOME) && !put_welcome(hub, c, o)) {
    return 0;
  }
  if (c->ctl & CTL_PONG) {
    f.type = WIRE_PONG;
    f.u.ping = c->pong_value;
    if (!put_frame(hub, c, o, &f)) {
      return 0;
    }
    c->ctl &= (uint8_t)~CTL_PONG;
  }
  if (c->ctl & CTL_PING) {
    f.type = WIRE_PING;
    f.u.ping = now;
    if (!put_frame(hub, c, o, &f)) {
      return 0;
    }
    c->ctl &= (uint8_t)~CTL_PING;
    c->ping_sent = now;
    /* The timer was armed without a heartbeat while this PING waited; the
       next one is due a heartbeat from now. */
    tern_tstamp hb = now + MS(c->heartbeat_ms);
    if (hb < c->timer.deadline) {
      heap_arm(&hub->timers, &c->timer, hb);
    }
  }
  return 1;
}

static int put_dropped(tern_hub *hub, conn *c, out *o) {
  session *s = c->session;
  if (conn_aux_get(hub, c) != 0) {
    o->nomem = 1; /* the notice waits: it must be remembered once written */
    return 0;
  }
  for (int r = 0; r < 3; ++r) {
    if (s->dropped[r]) {
      wire_frame f;
      f.type = WIRE_DROPPED;
      f.u.dropped.count = s->dropped[r];
      f.u.dropped.reason = (uint64_t)(r + 1);
      if (!put_frame(hub, c, o, &f)) {
        aux_trim(hub, c);
        return 0;
      }
      c->aux->told[r] += s->dropped[r];
      c->aux->told_seq = s->next_seq;
      s->dropped[r] = 0;
      ++hub->stats.dropped_notices;
    }
  }
  uint32_t lost = s->tp ? topic_lost_total(s) : 0;
  if (lost) {
    wire_frame f;
    f.type = WIRE_DROPPED;
    f.u.dropped.count = lost;
    f.u.dropped.reason = TERN_DROP_RETENTION;
    if (!put_frame(hub, c, o, &f)) {
      aux_trim(hub, c);
      return 0;
    }
    c->aux->told_retention += lost;
    c->aux->told_seq = s->next_seq;
    topic_lost_told(s);
    ++hub->stats.dropped_notices;
  }
  return 1;
}

static msg *peek_pending(const session *s) {
  for (int p = TERN_PRIO_HIGH; p >= TERN_PRIO_LOW; --p) {
    if (s->queue[p]) {
      return s->queue[p];
    }
  }
  return NULL;
}

/* Writes messages while the window and the buffer allow.  Returns 0 or
   TERN_ERR_NOMEM (a partial frame needed the aux block).  The settings the
   loop reads are copied to locals first: every byte it stores could alias
   them, so the compiler would load them again for each message. */
/* |topics|: the session has members, whose next topic messages merge with
   its pending ones (a constant in each of the two copies below, so that a
   session without subscriptions pays nothing for them). */
static ALWAYS_INLINE int put_messages_of(tern_hub *hub, conn *c, out *o,
                                         uint8_t *start, tern_tstamp now,
                                         const int topics) {
  session *s = c->session;
  const uint32_t window = hub->set.inflight_window;
  const tern_duration ack_timeout = hub->set.ack_timeout;
  const int trace = hub->set.trace != 0;
  const int stored = hub->persist != NULL;
  uint64_t sent = 0, resent = 0;
  int rv = 0;
  /* DROPPED is a control frame: it does not wait for the window.  It goes
     before the next MSG, so a receiver hears of a loss in order.  Inside
     the loop only an expiry found there adds a loss, so the check runs
     here and after such an expiry, not once per message. */
  if ((session_has_drops(s) || (topics && topic_refresh(hub, s, now))) &&
      !put_dropped(hub, c, o)) {
    return 0;
  }
  for (;;) {
    if (c->ninflight >= window) {
      break;
    }
    msg *m;
    if (topics) {
      int found = 0;
      /* a session's policy lives in the same side block as its topics */
      m = s->tp->pol ? policy_peek(hub, s, now) : peek_pending(s);
      m = topic_next(hub, s, m, now, &found);
      if (found & TOPIC_NEXT_NOMEM) {
        rv = TERN_ERR_NOMEM;
        break;
      }
      /* A loss found on the way is told before the next MSG; without
         room for the notice, the message waits at its queue's head. */
      if ((found & TOPIC_NEXT_LOST) && !put_dropped(hub, c, o)) {
        break;
      }
    } else {
      m = peek_pending(s);
    }
    if (!m) {
      break;
    }
    tern_tstamp exp = m->expiry;
    if (exp <= now) {
      /* Due but not yet handled: never send an expired message. */
      ++hub->stats.expired;
      session_discard(hub, m, TERN_DROP_EXPIRED, TERN_EV_EXPIRED);
      if (session_has_drops(s) && !put_dropped(hub, c, o)) {
        break;
      }
      continue;
    }
    uint64_t ttl_ms = 0;
    if (exp != TERN_TSTAMP_NONE) {
      ttl_ms = (exp - now + TERN_MILLISECONDS - 1) / TERN_MILLISECONDS;
    }
    size_t room = (size_t)(o->end - o->p);
    if (room >= WIRE_MSG_HEAD_MAX + (size_t)m->taillen) {
      /* The common case: encode the head in place, then the tail. */
      size_t headlen = wire_msg_head_encode(o->p, s->next_seq, ttl_ms,
                                            m->taillen);
      memcpy(o->p + headlen, msg_tail(m), m->taillen);
      o->p += headlen + m->taillen;
    } else {
      uint8_t head[WIRE_MSG_HEAD_MAX];
      size_t headlen = wire_msg_head_encode(head, s->next_seq, ttl_ms,
                                            m->taillen);
      size_t total = headlen + m->taillen;
      if (total <= room) {
        memcpy(o->p, head, headlen);
        memcpy(o->p + headlen, msg_tail(m), m->taillen);
        o->p += total;
      } else if (o->p == start && room > 0) {
        if (conn_aux_get(hub, c) != 0) {
          rv = TERN_ERR_NOMEM;
          break;
        }
        conn_aux *a = c->aux;
        memcpy(a->whead, head, headlen);
        a->wheadlen = (uint8_t)headlen;
        a->woff = 0;
        a->wmsg = m;
        ++m->refs;
        put_partial(hub, c, o);
      } else {
        break;
      }
    }
    mlist_remove(&s->queue[m->priority], m);
    --s->npending;
    m->seq = s->next_seq++;
    if (stored && s->next_seq % SEQ_BLOCK == 0) {
      persist_seq(hub, s);
    }
    m->stream = c->stream;
    m->conn = c;
    m->sent_at = now;
    if (topics && m->deliveries == 0 && (m->flags & MSG_TOPIC)) {
      topic_msg_sent(m); /* its receipt counts it now, not when made */
    }
    if (topics && s->tp->pol) {
      policy_sent(hub, s, m, now);
    }
    resent += m->deliveries++ != 0;
    ++sent;
    if (!c->inflight && ack_timeout &&
        now + ack_timeout < c->timer.deadline) {
      heap_arm(&hub->timers, &c->timer, now + ack_timeout);
    }
    mlist_push(&c->inflight, m);
    ++c->ninflight;
    if (trace || (m->flags & MSG_TRACE)) {
      event_msg(hub, TERN_EV_SENT, 0, m, (tern_conn *)c, NULL, 0);
    }
    if (c->aux && c->aux->wmsg) {
      break; /* the rest of this frame goes first next time */
    }
  }
  if (topics && rv == 0 && topic_lost_total(s) && !(c->aux && c->aux->wmsg)) {
    /* Losses found on the way (a message past its time): told now, not
       after the next message. */
    put_dropped(hub, c, o);
  }
  hub->stats.sent += sent;
  hub->stats.resent += resent;
  hub->stats.inflight += sent;
  return rv;
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int put_messages_topics(tern_hub *hub, conn *c, out *o,
                               uint8_t *start, tern_tstamp now) {
  return put_messages_of(hub, c, o, start, now, 1);
}

static ALWAYS_INLINE int put_messages(tern_hub *hub, conn *c, out *o,
                                      uint8_t *start, tern_tstamp now) {
  if (c->session->tp) {
    return put_messages_topics(hub, c, o, start, now);
  }
  return put_messages_of(hub, c, o, start, now, 0);
}

/* Something to write: a frame in progress, a control frame, a DROPPED
   notice, or a pending message the window lets out. */
static inline int binary_wants_write(const conn *c);
static inline int wants_write(const conn *c) {
  if (c->state == CONN_CLOSED) {
    return 0;
  }
  if (c->framing) {
    return framing_wants_write(c);
  }
  return binary_wants_write(c);
}

static inline int binary_wants_write(const conn *c) {
  if (c->ctl || (c->aux && (c->aux->wmsg || c->aux->wctllen))) {
    return 1;
  }
  if (conn_producer(c) && produce_want_write(c)) {
    return 1;
  }
  const session *s = c->session;
  if (c->state != CONN_OPEN || !s) {
    return 0;
  }
  if (session_has_drops(s)) {
    return 1;
  }
  if (c->ninflight >= c->hub->set.inflight_window) {
    return s->tp && topic_lost_total(s) != 0;
  }
  if (s->tp) {
    return (s->tp->pol ? policy_has_pending(s) : s->npending != 0) ||
           topic_has_output(c->hub, s);
  }
  return s->npending != 0;
}

int tern_conn_want_write(const tern_conn *tc) {
  const conn *c = (const conn *)tc;
  return c ? (c->aux && c->aux->peek) || wants_write(c) : 0;
}

int conn_binary_wants_write(const conn *c) {
  return c->state != CONN_CLOSED && binary_wants_write(c);
}

static ALWAYS_INLINE tern_ssize write_binary(conn *c, uint8_t *buf,
                                             size_t cap, tern_tstamp now) {
  tern_hub *hub = c->hub;
  out o = {buf, buf + cap, buf, 0};
  int rv = 0;
  if (c->aux) { /* rare: one test for the common case; each step may
                   free the block (aux_trim) */
    if (c->aux->wmsg && !put_partial(hub, c, &o)) {
      goto done;
    }
    if (c->aux && c->aux->wctllen && !put_ctl_rest(hub, c, &o)) {
      goto done;
    }
    if (conn_producer(c) && produce_cut_pending(c) &&
        !produce_write(c, &o.p, o.end)) {
      goto done; /* the rest of a PUBACK goes before anything else */
    }
  }
  if (c->state == CONN_CLOSING) {
    if (conn_producer(c) && !produce_write(c, &o.p, o.end)) {
      goto done;
    }
    if ((c->ctl & CTL_WELCOME) && !put_welcome(hub, c, &o)) {
      goto done; /* a deferred HELLO: WELCOME, then GOAWAY */
    }
    if (c->ctl & CTL_GOAWAY) {
      wire_frame f;
      f.type = WIRE_GOAWAY;
      f.u.goaway.reason = c->goaway_reason;
      f.u.goaway.retry_ms = c->goaway_retry_ms;
      const char *text = c->error ? tern_strerror(conn_error_of(c)) : "";
      f.u.goaway.text = (const uint8_t *)text;
      f.u.goaway.textlen = strlen(text);
      if (!put_frame(hub, c, &o, &f)) {
        goto done;
      }
      c->ctl = 0;
    }
    if (!(c->aux && c->aux->wctllen)) {
      c->state = CONN_CLOSED;
    }
    goto done;
  }
  if (c->ctl && !put_control(hub, c, &o, now)) {
    goto done;
  }
  /* PUBACKs are control frames: before any message. */
  if (conn_producer(c) && !produce_write(c, &o.p, o.end)) {
    goto done;
  }
  if (c->state == CONN_OPEN) {
    rv = put_messages(hub, c, &o, buf, now);
  }
done:
  if (o.p != buf) {
    size_t n = (size_t)(o.p - buf);
    c->last_tx = now;
    hub->stats.bytes_out += n;
  }
  if (c->ready && !wants_write(c)) {
    hub_unready(hub, c);
  }
  if (o.nomem) {
    rv = TERN_ERR_NOMEM;
  }
  if (rv < 0 && o.p == buf) {
    /* Nothing written for want of memory: the hub's next deadline is now,
       and handling it puts the connection back on the ready list. */
    c->write_retry = 1;
    heap_arm(&hub->timers, &c->timer, now);
    return rv;
  }
  return o.p - buf;
}

/* The bytes of |c|'s framing, for tern_conn_write and a peek. */
static ALWAYS_INLINE tern_ssize pull(conn *c, uint8_t *buf, size_t cap,
                                     tern_tstamp now) {
  return c->framing ? framing_write(c, buf, cap, now)
                    : write_binary(c, buf, cap, now);
}

tern_ssize tern_conn_write(tern_conn *tc, uint8_t *buf, size_t cap,
                           tern_tstamp now) {
  conn *c = (conn *)tc;
  if (!c || (!buf && cap)) {
    return TERN_ERR_INVALID;
  }
  if (c->aux && c->aux->peek) {
    return TERN_ERR_STATE; /* the peeked bytes go first: consume them */
  }
  if (c->state == CONN_CLOSED) {
    return TERN_ERR_CLOSED;
  }
  return pull(c, buf, cap, now);
}

tern_ssize tern_conn_peek_output(tern_conn *tc, const uint8_t **data,
                                 tern_tstamp now) {
  conn *c = (conn *)tc;
  if (!c || !data) {
    return TERN_ERR_INVALID;
  }
  *data = NULL;
  tern_hub *hub = c->hub;
  if (c->aux && c->aux->peek) {
    *data = c->aux->peek + c->aux->peek_off;
    return (tern_ssize)(c->aux->peek_len - c->aux->peek_off);
  }
  if (c->state == CONN_CLOSED) {
    return TERN_ERR_CLOSED;
  }
  /* Both blocks first: once tern_conn_write has taken messages from the
     hub, its bytes must have a home. */
  uint8_t *buf = hub->peek_spare;
  if (buf) {
    hub->peek_spare = NULL;
  } else if (!(buf = mem_malloc(&hub->mem, TERN_CONN_PEEK_MAX))) {
    return TERN_ERR_NOMEM;
  }
  if (conn_aux_get(hub, c) != 0) {
    peek_release(hub, buf);
    return TERN_ERR_NOMEM;
  }
  c->aux->peek = buf; /* also keeps the aux block through the write */
  c->aux->peek_off = c->aux->peek_len = 0;
  tern_ssize n = pull(c, buf, TERN_CONN_PEEK_MAX, now);
  if (n <= 0) {
    c->aux->peek = NULL;
    peek_release(hub, buf);
    aux_trim(hub, c);
    return n;
  }
  /* Whole: a connection whose socket stalls keeps the block until it
     drains, as a host's own buffer would be kept. */
  c->aux->peek_off = 0;
  c->aux->peek_len = (uint32_t)n;
  *data = buf;
  return n;
}

int tern_conn_consume(tern_conn *tc, size_t n) {
  conn *c = (conn *)tc;
  if (!c) {
    return TERN_ERR_INVALID;
  }
  conn_aux *a = c->aux;
  size_t held = a && a->peek ? a->peek_len - a->peek_off : 0;
  if (n > held) {
    return TERN_ERR_INVALID;
  }
  if (n == 0) {
    return 0;
  }
  a->peek_off += (uint32_t)n;
  if (a->peek_off == a->peek_len) {
    peek_release(c->hub, a->peek);
    a->peek = NULL;
    a->peek_off = a->peek_len = 0;
    aux_trim(c->hub, c);
  }
  return 0;
}

tern_ssize conn_write_binary(conn *c, uint8_t *buf, size_t cap,
                             tern_tstamp now) {
  return write_binary(c, buf, cap, now);
}

/* ---- timers ------------------------------------------------------------- */

int conn_ack_timeouts(tern_hub *hub, conn *c, tern_tstamp now) {
  int moved = 0, rv = 0;
  while (c->inflight && ack_deadline(hub, c->inflight) <= now) {
    msg *m = c->inflight;
    if (hub->set.max_deliver && m->deliveries >= hub->set.max_deliver) {
      /* TERN_EV_DEAD is never shed: no room, no discard (yet). */
      if (event_reserve(hub, 1, c->session->keylen + m->idlen) != 0) {
        rv = TERN_ERR_NOMEM;
        break;
      }
      ++hub->stats.dead;
      session_discard(hub, m, TERN_DROP_DEAD, TERN_EV_DEAD);
    } else {
      mlist_remove(&c->inflight, m);
      --c->ninflight;
      --hub->stats.inflight;
      session_return(hub, c->session, m);
    }
    moved = 1;
  }
  if (moved) {
    /* Any connection of the session may send them now, not only this
       one (which may be the stale one). */
    session_notify(hub, c->session);
  }
  return rv;
}

int conn_on_timer(tern_hub *hub, conn *c, tern_tstamp now) {
  if (c->write_retry) {
    c->write_retry = 0;
    if (wants_write(c)) {
      hub_mark_ready(hub, c);
    }
  }
  if (c->state >= CONN_CLOSING) {
    return 0; /* it has no deadlines of its own any more */
  }
  if (c->framing && c->framing != TERN_FRAMING_WS_BIN) {
    return framing_on_timer(hub, c, now); /* tern.bin's are the binary's */
  }
  if (now >= c->last_rx + MS(c->liveness_ms)) {
    if (c->state == CONN_OPEN) {
      ++hub->stats.conns_dead;
    }
    conn_close(c, TERN_GOAWAY_TIMEOUT, 0, 0, 0, now);
    return 0;
  }
  int rv = 0;
  if (c->state == CONN_OPEN) {
    if (!(c->ctl & CTL_PING) && now >= c->last_tx + MS(c->heartbeat_ms)) {
      c->ctl |= CTL_PING;
      hub_mark_ready(hub, c);
    }
    if (hub->set.ack_timeout) {
      rv = conn_ack_timeouts(hub, c, now);
    }
  }
  if (rv != 0) {
    heap_arm(&hub->timers, &c->timer, now); /* still due */
    return rv;
  }
  rearm(hub, c);
  return 0;
}

/* ---- host calls --------------------------------------------------------- */

int tern_conn_is_closed(const tern_conn *tc) {
  const conn *c = (const conn *)tc;
  return c ? c->state >= CONN_CLOSING : 1;
}

int tern_conn_accept(tern_conn *tc, tern_tstamp now) {
  conn *c = (conn *)tc;
  if (!c) {
    return TERN_ERR_INVALID;
  }
  if (c->state != CONN_WAIT_ACCEPT) {
    return TERN_ERR_STATE;
  }
  conn_aux *a = c->aux;
  int rv = bind(c, a->hello_key, a->hello_keylen, a->hello_last_seq,
                a->hello_epoch, a->hello_heartbeat_ms, now);
  if (rv == TERN_ERR_NOMEM) {
    return rv;
  }
  if (rv != 0) {
    a->hello_waiting = 0;
    conn_close(c, close_reason(rv), 0, rv, 0, now);
    return rv;
  }
  /* A HELLO deferred by the accept rate closed the connection, which
     freed the block already. */
  if (c->aux) {
    c->aux->hello_waiting = 0;
    aux_trim(c->hub, c);
  }
  return 0;
}

int tern_conn_goaway(tern_conn *tc, uint32_t reason, tern_duration retry_after,
                     tern_tstamp now) {
  conn *c = (conn *)tc;
  if (!c || reason > 0xff) {
    return TERN_ERR_INVALID;
  }
  if (c->state >= CONN_CLOSING) {
    return TERN_ERR_CLOSED;
  }
  uint64_t ms = retry_after / TERN_MILLISECONDS;
  conn_close(c, (int)reason, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms, 0, 0,
             now);
  return 0;
}

void tern_conn_set_user_data(tern_conn *tc, void *user_data) {
  if (tc) {
    ((conn *)tc)->user_data = user_data;
  }
}

void *tern_conn_get_user_data(const tern_conn *tc) {
  return tc ? ((const conn *)tc)->user_data : NULL;
}

tern_session *tern_conn_get_session(const tern_conn *tc) {
  return tc ? (tern_session *)((const conn *)tc)->session : NULL;
}

void tern_conn_get_info(const tern_conn *tc, tern_conn_info *info,
                        size_t size) {
  const conn *c = (const conn *)tc;
  tern_conn_info i;
  memset(&i, 0, sizeof(i));
  if (c) {
    i.closed = c->state >= CONN_CLOSING;
    i.inflight = c->ninflight;
    i.rtt = conn_is_oneway(c) ? 0 : (tern_duration)c->rtt_us * 1000;
    i.heartbeat_interval = MS(c->heartbeat_ms);
    i.liveness_timeout = MS(conn_liveness_ms(c));
    i.error = conn_error_of(c);
  }
  if (info) {
    layout_copy_out(info, size, &i, sizeof(i));
  }
}
