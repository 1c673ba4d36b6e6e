/*
 * Frames from the server: reassembling them from the host's reads, and what
 * each one does (WELCOME, MSG, PING, PONG, DROPPED, GOAWAY).
 *
 * A frame either takes effect completely or, when it is malformed or an
 * allocation fails, not at all: each handler checks and allocates first and
 * changes state last.  A bad frame ends the connection like any other loss.
 */
#include <limits.h>
#include <string.h>

#include "base/mem.h"
#include "client/client.h"
#include "wire/publish.h"

static uint64_t clamp32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : v; }

static int on_welcome(tern_client *c, const wire_welcome *w) {
  /* WELCOME answers our HELLO, so the HELLO must have gone out. */
  if (c->state != CL_HELLO_SENT || (c->ctl & CTL_HELLO) || w->epoch == 0) {
    return TERN_ERR_PROTO;
  }
  int resync = 0;
  if (c->epoch && c->epoch != w->epoch) {
    resync = TERN_CLIENT_RESYNC_EPOCH;
  } else if (c->have_session && !(w->flags & WIRE_WELCOME_EXISTED)) {
    /* Same server state, but our session expired with what it held: the
       seqs start again from 1. */
    resync = TERN_CLIENT_RESYNC_SESSION;
  }
  int rv = evq_reserve(&c->events, &c->mem, resync ? 2 : 1);
  if (rv != 0) {
    return rv;
  }
  if (resync) {
    client_new_gen(c);
  }
  c->epoch = w->epoch;
  c->have_session = 1;
  c->hb_ms = clamp32(w->heartbeat_ms);
  c->live_ms = clamp32(w->liveness_ms);
  c->window = w->window;
  c->retry_ms = clamp32(w->retry_ms);
  c->state = CL_CONNECTED;
  c->failures = 0;
  c->waits = 0;
  cevent *e = evq_push(&c->events);
  e->type = TERN_CLIENT_EV_CONNECTED;
  e->count = (w->flags & WIRE_WELCOME_RESUMED) ? 1 : 0;
  e->gen = c->gen;
  if (resync) {
    e = evq_push(&c->events);
    e->type = TERN_CLIENT_EV_RESYNC;
    e->reason = resync;
    e->gen = c->gen;
  }
  /* One PING for the round-trip time. */
  c->ctl |= CTL_PING;
  return 0;
}

static int on_msg(tern_client *c, const wire_msg *m, const uint8_t *raw,
                  size_t rawlen, tern_tstamp now) {
  if (c->state != CL_CONNECTED || m->seq <= c->rx_seq) {
    return TERN_ERR_PROTO; /* before WELCOME, or seqs not increasing */
  }
  if (m->payloadlen > c->set.max_payload) {
    return TERN_ERR_TOO_LARGE; /* the frame limit left room for fields */
  }
  /* Seqs grow for the whole life of a session, so a new connection that
     starts below what we saw serves a new session under the old key (ours
     expired and was created again, by a publish, before we came back). */
  int reset = c->rx_seq == 0 && m->seq <= c->rx_max;
  const idset_entry *first = NULL;
  if (c->set.dedup_max && !reset) {
    if (c->set.dedup_window && now > c->set.dedup_window) {
      idset_expire(&c->dd, &c->mem, now - c->set.dedup_window);
    }
    first = idset_find(&c->dd, m->id, m->idlen);
  }
  int rv = ackq_reserve(&c->acks, &c->mem);
  if (rv != 0) {
    return rv;
  }
  msg_copy *mc = NULL;
  idset_entry *seen = NULL;
  if (!first) {
    mc = mem_malloc(&c->mem, sizeof(msg_copy) + rawlen);
    if (mc && c->set.dedup_max) {
      seen = idset_entry_new(&c->mem, m->id, m->idlen);
    }
  }
  uint32_t nevents = (first ? 0u : 1u) + (reset ? 1u : 0u);
  if ((!first && (!mc || (c->set.dedup_max && !seen))) ||
      evq_reserve(&c->events, &c->mem, nevents) != 0) {
    mem_free(&c->mem, mc);
    mem_free(&c->mem, seen);
    return TERN_ERR_NOMEM;
  }
  if (reset) {
    client_new_gen(c);
    cevent *e = evq_push(&c->events);
    e->type = TERN_CLIENT_EV_RESYNC;
    e->reason = TERN_CLIENT_RESYNC_SESSION;
    e->gen = c->gen;
  }
  uint64_t need;
  if (first) {
    /* Not for the app again; ackable once the app processed the copy it
       got, so that the server frees this one. */
    need = first->seq;
    ++c->stats.duplicates;
  } else {
    mc->len = rawlen;
    memcpy(mc->raw, raw, rawlen);
    cevent *e = evq_push(&c->events);
    e->type = TERN_CLIENT_EV_MESSAGE;
    e->seq = m->seq;
    e->gen = c->gen;
    e->msg = mc;
    if (seen) {
      idset_add(&c->dd, &c->mem, seen, m->seq, now, c->set.dedup_max);
    }
    need = m->seq;
  }
  ++c->stats.received;
  c->rx_seq = m->seq;
  if (m->seq > c->rx_max) {
    c->rx_max = m->seq;
  }
  ackq_push(&c->acks, m->seq, need);
  client_ack_advance(c, now);
  return 0;
}

static int on_dropped(tern_client *c, uint64_t count, uint64_t reason) {
  if (c->state != CL_CONNECTED) {
    return TERN_ERR_PROTO;
  }
  if (count == 0) {
    return 0;
  }
  int rv = evq_reserve(&c->events, &c->mem, 1);
  if (rv != 0) {
    return rv;
  }
  cevent *e = evq_push(&c->events);
  e->type = TERN_CLIENT_EV_GAP;
  e->count = count;
  e->reason = reason > INT_MAX ? INT_MAX : (int)reason;
  e->gen = c->gen;
  c->stats.gaps += count;
  return 0;
}

static void on_pong(tern_client *c, uint64_t value, tern_tstamp now) {
  if (!c->ping_out || value != c->ping_value) {
    return; /* answers no PING of ours */
  }
  c->ping_out = 0;
  c->stats.rtt = now >= value ? now - value : 0;
  if (c->probe) {
    client_hb_probe_ok(c, c->probe);
    c->probe = 0;
  }
}

/* Handles one frame of |rawlen| bytes at |raw|.  0, or an error. */
static int on_frame(tern_client *c, const wire_frame *f, const uint8_t *raw,
                    size_t rawlen, tern_tstamp now) {
  if (f->type == WIRE_WELCOME) {
    return on_welcome(c, &f->u.welcome);
  }
  if (f->type == WIRE_GOAWAY) {
    uint64_t r = f->u.goaway.reason;
    client_end_conn(c, r > INT_MAX ? INT_MAX : (int)r,
                    clamp32(f->u.goaway.retry_ms), 1, now);
    return 0;
  }
  if (c->state != CL_CONNECTED) {
    return TERN_ERR_PROTO; /* WELCOME must come first */
  }
  switch (f->type) {
  case WIRE_MSG:
    return on_msg(c, &f->u.msg, raw, rawlen, now);
  case WIRE_PING:
    c->pong_value = f->u.ping;
    c->ctl |= CTL_PONG;
    return 0;
  case WIRE_PONG:
    on_pong(c, f->u.ping, now);
    return 0;
  case WIRE_DROPPED:
    return on_dropped(c, f->u.dropped.count, f->u.dropped.reason);
  default:
    return TERN_ERR_PROTO; /* HELLO, ACK: the client's frames */
  }
}

static size_t max_body(const tern_client *c) {
  return c->set.max_payload + CLIENT_MSG_OVERHEAD;
}

/* The total size of the frame starting at [p, p+n) once its header is
   readable: the size, 0 (more bytes needed) or an error. */
static tern_ssize frame_size(const tern_client *c, const uint8_t *p,
                             size_t n) {
  if (n == 0) {
    return 0;
  }
  if ((p[0] < WIRE_HELLO || p[0] > WIRE_GOAWAY) && p[0] != WIRE_PUBACK) {
    return TERN_ERR_PROTO;
  }
  uint64_t body;
  tern_ssize v = wire_get_varint(&body, p + 1, p + n);
  if (v <= 0) {
    return v;
  }
  if (body > max_body(c)) {
    return TERN_ERR_TOO_LARGE;
  }
  return (tern_ssize)(1 + (size_t)v + (size_t)body);
}

static int rbuf_reserve(tern_client *c, size_t n) {
  if (n <= c->rcap) {
    return 0;
  }
  uint8_t *b = mem_realloc(&c->mem, c->rbuf, n);
  if (!b) {
    return TERN_ERR_NOMEM;
  }
  c->rbuf = b;
  c->rcap = n;
  return 0;
}

static int live(const tern_client *c) {
  return c->state == CL_HELLO_SENT || c->state == CL_CONNECTED;
}

/* Handles the complete frame in the receive buffer. */
static int buffered_frame(tern_client *c, size_t size, tern_tstamp now) {
  wire_frame f;
  int rv = 0;
  if (c->rbuf[0] == WIRE_PUBACK) {
    tern_ssize n = client_puback(c, c->rbuf, size);
    if (n < 0) {
      return (int)n;
    }
  } else {
    tern_ssize n = wire_frame_decode(&f, c->rbuf, size, max_body(c));
    if (n < 0) {
      return (int)n;
    }
    rv = on_frame(c, &f, c->rbuf, size, now);
  }
  c->rlen = 0;
  if (c->rcap > CLIENT_RBUF_KEEP) {
    mem_free(&c->mem, c->rbuf);
    c->rbuf = NULL;
    c->rcap = 0;
  }
  return rv;
}

static int read_frames(tern_client *c, const uint8_t *in, size_t len,
                       tern_tstamp now) {
  size_t used = 0;
  while (used < len && live(c)) {
    if (c->rlen) {
      /* Complete the frame that began in an earlier read.  Until its
         header is whole, take one byte at a time: the header of a short
         frame must not swallow the next frame. */
      tern_ssize size = frame_size(c, c->rbuf, c->rlen);
      if (size < 0) {
        return (int)size;
      }
      size_t want = size ? (size_t)size : c->rlen + 1;
      size_t take = want - c->rlen < len - used ? want - c->rlen : len - used;
      int rv = rbuf_reserve(c, size ? (size_t)size : WIRE_HEADER_MAX);
      if (rv != 0) {
        return rv;
      }
      memcpy(c->rbuf + c->rlen, in + used, take);
      c->rlen += take;
      used += take;
      if (size && c->rlen == (size_t)size) {
        rv = buffered_frame(c, (size_t)size, now);
        if (rv != 0) {
          return rv;
        }
      }
      continue;
    }
    wire_frame f;
    int puback = in[used] == WIRE_PUBACK;
    tern_ssize n = puback ? client_puback(c, in + used, len - used)
                          : wire_frame_decode(&f, in + used, len - used,
                                              max_body(c));
    if (n < 0) {
      return (int)n;
    }
    if (n == 0) {
      /* An incomplete frame: keep it.  The decoder refused a body over
         the limit already, so the buffer stays bounded. */
      size_t tail = len - used;
      tern_ssize size = frame_size(c, in + used, tail);
      if (size < 0) {
        return (int)size;
      }
      int rv = rbuf_reserve(c, size ? (size_t)size : WIRE_HEADER_MAX);
      if (rv != 0) {
        return rv;
      }
      memcpy(c->rbuf, in + used, tail);
      c->rlen = tail;
      return 0;
    }
    int rv = puback ? 0 : on_frame(c, &f, in + used, (size_t)n, now);
    if (rv != 0) {
      return rv;
    }
    used += (size_t)n;
  }
  return 0;
}

static int goaway_reason(int err) {
  switch (err) {
  case TERN_ERR_TOO_LARGE:
    return TERN_GOAWAY_TOO_LARGE;
  case TERN_ERR_NOMEM:
    return TERN_GOAWAY_INTERNAL;
  default:
    return TERN_GOAWAY_PROTO;
  }
}

tern_ssize tern_client_read(tern_client *c, const uint8_t *in, size_t len,
                            tern_tstamp now) {
  if (!c || (!in && len)) {
    return TERN_ERR_INVALID;
  }
  switch (c->state) {
  case CL_HELLO_SENT:
  case CL_CONNECTED:
    break;
  case CL_CLOSING:
    return (tern_ssize)len; /* we said goodbye: ignore what follows */
  case CL_CLOSED:
    return TERN_ERR_CLOSED;
  default:
    return TERN_ERR_STATE;
  }
  if (now > c->now) {
    c->now = now;
  }
  if (len) {
    c->last_rx = now; /* any bytes are a sign of life */
  }
  int rv = read_frames(c, in, len, now);
  if (rv < 0) {
    client_end_conn(c, goaway_reason(rv), 0, 1, now);
    return rv;
  }
  return (tern_ssize)len;
}
