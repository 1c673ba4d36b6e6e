/*
 * The receiver state machine: creation, the host's calls that move it
 * between states (connect, conn_lost, close), deadlines, the event queue
 * the app drains, acknowledgement bookkeeping and statistics.  Frames are
 * read in recv.c and written in send.c.
 *
 * States: WAIT_TRANSPORT (CONNECT emitted) -> connect -> HELLO_SENT ->
 * WELCOME -> CONNECTED; a lost or dead connection -> BACKOFF -> CONNECT
 * again, or GAVE_UP after max_attempts attempts in a row without WELCOME;
 * tern_client_close -> CLOSING (GOAWAY to write) -> CLOSED.
 *
 * Acknowledgement: every MSG frame of the current connection goes into a
 * FIFO with the seq the app must have processed before it may be acked (its
 * own, or for a duplicate the seq of the copy the app got).  "Processed"
 * is what the app took from the queue (automatic mode) or acked itself
 * (manual mode); the FIFO's ackable prefix is what a cumulative ACK covers.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "client/client.h"

#define MS(d) ((tern_duration)(d) * TERN_MILLISECONDS)

static tern_tstamp add(tern_tstamp t, tern_duration d) {
  return t > TERN_TSTAMP_NONE - d ? TERN_TSTAMP_NONE - 1 : t + d;
}

static tern_tstamp tmin(tern_tstamp a, tern_tstamp b) { return a < b ? a : b; }

/* The defaults of every field this library knows. */
static void settings_defaults(tern_client_settings *s) {
  memset(s, 0, sizeof(*s));
  s->version = TERN_CLIENT_SETTINGS_VERSION;
  s->heartbeat_interval = 0;
  s->liveness_timeout = 7 * TERN_SECONDS;
  s->ack_every = 10;
  s->ack_delay = 1 * TERN_SECONDS;
  s->manual_ack = 0;
  s->dedup_max = 10000;
  s->dedup_window = 600 * TERN_SECONDS;
  s->backoff_base = 1 * TERN_SECONDS;
  s->backoff_cap = 15 * TERN_SECONDS;
  s->max_attempts = 6;
  s->adaptive_heartbeat = 0;
  s->heartbeat_cap = 300 * TERN_SECONDS;
  s->seed = 0;
  s->max_payload = 1024 * 1024;
}

void tern_client_settings_default_versioned(uint32_t version,
                                            tern_client_settings *s) {
  if (!s) {
    return;
  }
  tern_client_settings all;
  settings_defaults(&all);
  all.version = version;
  layout_fill_defaults(s, layout_client_settings(version), &all);
}

/* The 0.1 entry point, for programs built against its header. */
#undef tern_client_settings_default
void tern_client_settings_default(tern_client_settings *s) {
  tern_client_settings_default_versioned(TERN_CLIENT_SETTINGS_V1, s);
}

static int check_settings(const tern_client_settings *s) {
  if (s->liveness_timeout < TERN_MILLISECONDS || s->ack_every == 0 ||
      s->backoff_base == 0 || s->backoff_cap < s->backoff_base ||
      s->max_payload == 0 || s->max_payload > ((size_t)1 << 30) ||
      (s->adaptive_heartbeat && s->heartbeat_cap < CLIENT_HB_MIN)) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

static void free_all(tern_client *c) {
  const tern_mem *mem = &c->mem;
  idset_free(&c->dd, mem);
  if (c->events.ring) {
    evq_free(&c->events, mem);
  }
  ackq_free(&c->acks, mem);
  mem_free(mem, c->taken);
  client_pub_free(c);
  mem_free(mem, c->rbuf);
  mem_free(mem, c->token);
  tern_mem copy = *mem;
  mem_free(&copy, c);
}

int tern_client_new(tern_client **pclient, const uint8_t *key, size_t keylen,
                    const uint8_t *token, size_t tokenlen,
                    const tern_client_settings *s, const tern_mem *mem,
                    tern_tstamp now) {
  tern_client_settings all;
  if (!pclient || !key || keylen == 0 || (!token && tokenlen)) {
    return TERN_ERR_INVALID;
  }
  if (keylen > TERN_MAX_SESSION_KEY || tokenlen > TERN_MAX_TOKEN) {
    return TERN_ERR_TOO_LARGE;
  }
  /* The caller's layout, the fields it lacks at their defaults. */
  settings_defaults(&all);
  if (s) {
    size_t len = layout_client_settings(s->version);
    if (len == 0) {
      return TERN_ERR_INVALID;
    }
    memcpy(&all, s, len);
    all.version = TERN_CLIENT_SETTINGS_VERSION;
  }
  s = &all;
  if (check_settings(s) != 0) {
    return TERN_ERR_INVALID;
  }
  if (!mem) {
    mem = mem_default();
  } else if (!mem->malloc || !mem->free || !mem->calloc || !mem->realloc) {
    return TERN_ERR_INVALID;
  }
  tern_client *c = mem_calloc(mem, 1, sizeof(*c));
  if (!c) {
    return TERN_ERR_NOMEM;
  }
  c->mem = *mem;
  c->set = *s;
  c->set.version = TERN_CLIENT_SETTINGS_VERSION;
  rng_seed(&c->rand, s->seed ? s->seed : (uint64_t)(uintptr_t)c);
  memcpy(c->key, key, keylen);
  c->keylen = keylen;
  if (tokenlen) {
    c->token = mem_malloc(mem, tokenlen);
    if (!c->token) {
      free_all(c);
      return TERN_ERR_NOMEM;
    }
    memcpy(c->token, token, tokenlen);
    c->tokenlen = tokenlen;
  }
  if (idset_init(&c->dd, mem, &c->rand) != 0 ||
      evq_init(&c->events, mem) != 0) {
    free_all(c);
    return TERN_ERR_NOMEM;
  }
  client_hb_init(c);
  c->now = now;
  c->state = CL_WAIT_TRANSPORT;
  evq_push(&c->events)->type = TERN_CLIENT_EV_CONNECT;
  *pclient = c;
  return 0;
}

void tern_client_del(tern_client *c) {
  if (c) {
    free_all(c);
  }
}

static void note_now(tern_client *c, tern_tstamp now) {
  if (now > c->now) {
    c->now = now;
  }
}

/* Forgets everything about the current connection. */
static void reset_conn(tern_client *c) {
  c->rlen = 0;
  if (c->rcap > CLIENT_RBUF_KEEP) {
    mem_free(&c->mem, c->rbuf);
    c->rbuf = NULL;
    c->rcap = 0;
  }
  c->wlen = c->woff = 0;
  c->peek_src = 0;
  c->peek_len = 0;
  c->ctl = 0;
  c->ping_out = 0;
  c->probe = 0;
  c->goaway_sent = 0;
  c->acks.head = c->acks.len = 0;
  if (c->acks.cap > 1024) {
    ackq_free(&c->acks, &c->mem);
  }
  c->ack_ready = c->ack_sent = 0;
  c->ready_count = 0;
  c->ack_due = 0;
  c->rx_seq = 0;
  c->hb_ms = c->live_ms = c->window = c->retry_ms = 0;
  client_pub_reset(c);
}

void client_end_conn(tern_client *c, int reason, uint64_t hint_ms, int emit,
                     tern_tstamp now) {
  int welcomed = c->state == CL_CONNECTED;
  if (c->ping_out && c->probe) {
    client_hb_probe_failed(c, c->probe);
  }
  uint64_t hint = hint_ms ? hint_ms : c->retry_ms;
  if (emit) {
    cevent *e = evq_push_spare(&c->events, &c->mem);
    if (e) {
      e->type = TERN_CLIENT_EV_DISCONNECTED;
      e->reason = reason;
      e->retry_after = MS(hint);
      e->gen = c->gen;
    }
  }
  reset_conn(c);
  if (welcomed) {
    c->failures = 0;
    c->waits = 0;
  } else {
    ++c->failures;
  }
  c->state = CL_BACKOFF;
  if (c->set.max_attempts && c->failures >= c->set.max_attempts) {
    c->give_up = 1;
    c->retry_at = now;
    return;
  }
  if (hint) {
    /* The server's hint replaces our jitter (it spreads its clients
       itself), but the next failure still backs off further. */
    ++c->waits;
    c->retry_at = add(now, MS(hint));
  } else {
    c->retry_at = add(now, client_backoff_wait(c));
  }
}

void client_closed(tern_client *c) {
  cevent *e = evq_push_spare(&c->events, &c->mem);
  if (e) {
    e->type = TERN_CLIENT_EV_DISCONNECTED;
    e->reason = TERN_GOAWAY_CLIENT;
    e->gen = c->gen;
  }
  reset_conn(c);
  c->give_up = 0;
  c->state = CL_CLOSED;
}

void client_new_gen(tern_client *c) {
  idset_clear(&c->dd, &c->mem);
  c->rx_max = c->ready_max = c->delivered_max = c->processed = 0;
  ++c->gen;
  ++c->stats.resyncs;
}

/* The ACK batch size: ack_every, but at most half the server's window so
   that the stream never waits for ack_delay. */
static uint32_t ack_every(const tern_client *c) {
  uint64_t every = c->set.ack_every;
  if (c->window && every > c->window / 2) {
    every = c->window / 2 ? c->window / 2 : 1;
  }
  return (uint32_t)every;
}

void client_ack_advance(tern_client *c, tern_tstamp now) {
  const ack_item *it;
  while ((it = ackq_front(&c->acks)) && it->need <= c->processed) {
    c->ack_ready = it->seq;
    ackq_pop(&c->acks);
    if (c->ready_count++ == 0) {
      c->ready_since = now;
    }
  }
  if (c->ack_ready > c->ready_max) {
    c->ready_max = c->ack_ready;
  }
  if (c->ack_ready > c->ack_sent && c->ready_count >= ack_every(c)) {
    c->ack_due = 1;
  }
}

/* ---- host calls --------------------------------------------------------- */

int tern_client_connect(tern_client *c, tern_tstamp now) {
  if (!c) {
    return TERN_ERR_INVALID;
  }
  switch (c->state) {
  case CL_WAIT_TRANSPORT:
    break;
  case CL_BACKOFF:
  case CL_GAVE_UP:
    /* The host connects early, e.g. after a network change.  Ending this
       connection must be able to queue its event. */
    if (evq_reserve(&c->events, &c->mem, 0) != 0) {
      return TERN_ERR_NOMEM;
    }
    if (c->state == CL_GAVE_UP) {
      c->failures = 0;
      c->waits = 0;
    }
    c->give_up = 0;
    break;
  case CL_CLOSING:
  case CL_CLOSED:
    return TERN_ERR_CLOSED;
  default:
    return TERN_ERR_STATE;
  }
  note_now(c, now);
  if (c->connects++) {
    ++c->stats.reconnects;
  }
  reset_conn(c);
  c->state = CL_HELLO_SENT;
  c->ctl = CTL_HELLO;
  c->last_rx = c->last_tx = now;
  return 0;
}

int tern_client_conn_lost(tern_client *c, tern_tstamp now) {
  if (!c) {
    return TERN_ERR_INVALID;
  }
  note_now(c, now);
  switch (c->state) {
  case CL_WAIT_TRANSPORT:
    /* Opening the transport failed: a failed attempt, no transport to
       end. */
    client_end_conn(c, TERN_GOAWAY_TIMEOUT, 0, 0, now);
    break;
  case CL_HELLO_SENT:
  case CL_CONNECTED:
    client_end_conn(c, TERN_CLIENT_TRANSPORT_LOST, 0, 1, now);
    break;
  case CL_CLOSING:
    client_closed(c);
    break;
  default:
    break; /* the transport was ended already */
  }
  return 0;
}

int tern_client_close(tern_client *c, tern_tstamp now) {
  if (!c) {
    return TERN_ERR_INVALID;
  }
  note_now(c, now);
  switch (c->state) {
  case CL_CLOSING:
  case CL_CLOSED:
    return 0;
  case CL_CONNECTED:
    c->ctl = CTL_GOAWAY;
    if (c->ack_ready > c->ack_sent) {
      c->ack_due = 1;
    }
    c->state = CL_CLOSING;
    return 0;
  case CL_HELLO_SENT:
    if (!(c->ctl & CTL_HELLO)) {
      /* The HELLO went out: say goodbye after it. */
      c->ctl = CTL_GOAWAY;
      c->state = CL_CLOSING;
      return 0;
    }
    /* Nothing was sent on the transport: it ends now. */
    client_closed(c);
    return 0;
  default:
    break;
  }
  reset_conn(c);
  c->give_up = 0;
  c->state = CL_CLOSED;
  return 0;
}

int tern_client_ack(tern_client *c, uint64_t seq, tern_tstamp now) {
  if (!c) {
    return TERN_ERR_INVALID;
  }
  if (c->pull_gen != c->gen) {
    /* The app acks a message of a stream that is gone (before RESYNC). */
    return 0;
  }
  if (seq == 0 || seq > c->delivered_max) {
    return TERN_ERR_INVALID;
  }
  note_now(c, now);
  if (c->set.manual_ack) {
    if (seq > c->processed) {
      c->processed = seq;
      client_ack_advance(c, now);
    }
  } else if (c->ack_ready > c->ack_sent) {
    c->ack_due = 1;
  }
  return 0;
}

/* ---- deadlines ---------------------------------------------------------- */

static tern_duration liveness(const tern_client *c) {
  return c->live_ms ? MS(c->live_ms) : c->set.liveness_timeout;
}

static tern_tstamp liveness_deadline(const tern_client *c) {
  tern_tstamp d = add(c->last_rx, liveness(c));
  if (c->set.adaptive_heartbeat && c->ping_out) {
    /* A PING must be answered within the server's margin: liveness minus
       heartbeat (3 s by default), or our own timeout without one. */
    tern_duration margin = c->live_ms > c->hb_ms
                               ? MS(c->live_ms - c->hb_ms)
                               : c->set.liveness_timeout;
    d = tmin(d, add(c->ping_sent_at, margin));
  }
  return d;
}

static tern_tstamp keepalive_deadline(const tern_client *c) {
  if (!c->set.adaptive_heartbeat || c->ping_out || (c->ctl & CTL_PING)) {
    return TERN_TSTAMP_NONE;
  }
  tern_tstamp idle_from = c->last_rx > c->last_tx ? c->last_rx : c->last_tx;
  tern_tstamp d = add(idle_from, client_hb_interval(c));
  if (c->hb_ms) {
    /* The server must hear from us within its heartbeat, however busy
       the other direction is. */
    d = tmin(d, add(c->last_tx, MS(c->hb_ms)));
  }
  return d;
}

static tern_tstamp ack_deadline(const tern_client *c) {
  if (c->ack_ready <= c->ack_sent || c->ack_due) {
    return TERN_TSTAMP_NONE;
  }
  return add(c->ready_since, c->set.ack_delay);
}

tern_tstamp tern_client_get_expiry(const tern_client *c) {
  if (!c) {
    return TERN_TSTAMP_NONE;
  }
  switch (c->state) {
  case CL_BACKOFF:
    return c->retry_at;
  case CL_HELLO_SENT:
    return add(c->last_rx, c->set.liveness_timeout);
  case CL_CONNECTED:
    return tmin(liveness_deadline(c),
                tmin(keepalive_deadline(c), ack_deadline(c)));
  default:
    return TERN_TSTAMP_NONE;
  }
}

int tern_client_handle_expiry(tern_client *c, tern_tstamp now) {
  if (!c) {
    return TERN_ERR_INVALID;
  }
  note_now(c, now);
  switch (c->state) {
  case CL_BACKOFF:
    if (now >= c->retry_at) {
      if (evq_reserve(&c->events, &c->mem, 1) != 0) {
        return TERN_ERR_NOMEM;
      }
      cevent *e = evq_push(&c->events);
      e->gen = c->gen;
      if (c->give_up) {
        e->type = TERN_CLIENT_EV_GIVE_UP;
        e->count = c->failures;
        c->give_up = 0;
        c->state = CL_GAVE_UP;
      } else {
        e->type = TERN_CLIENT_EV_CONNECT;
        c->state = CL_WAIT_TRANSPORT;
      }
    }
    break;
  case CL_HELLO_SENT:
    if (now >= add(c->last_rx, c->set.liveness_timeout)) {
      client_end_conn(c, TERN_GOAWAY_TIMEOUT, 0, 1, now);
    }
    break;
  case CL_CONNECTED:
    if (now >= liveness_deadline(c)) {
      client_end_conn(c, TERN_GOAWAY_TIMEOUT, 0, 1, now);
      break;
    }
    if (now >= keepalive_deadline(c)) {
      c->ctl |= CTL_PING | CTL_KEEPALIVE;
    }
    if (now >= ack_deadline(c)) {
      c->ack_due = 1;
    }
    break;
  default:
    break;
  }
  if (c->set.dedup_window && now > c->set.dedup_window) {
    idset_expire(&c->dd, &c->mem, now - c->set.dedup_window);
  }
  return 0;
}

/* ---- events and statistics ---------------------------------------------- */

static void fill_message(tern_client_event *ev, const msg_copy *mc) {
  wire_frame f;
  /* The copy was decoded once already; it cannot fail now. */
  if (wire_frame_decode(&f, mc->raw, mc->len, mc->len) <= 0 ||
      f.type != WIRE_MSG) {
    return;
  }
  const wire_msg *m = &f.u.msg;
  ev->seq = m->seq;
  ev->priority = m->priority;
  ev->ttl = MS(m->ttl_ms > UINT32_MAX ? UINT32_MAX : m->ttl_ms);
  ev->id = m->id;
  ev->idlen = m->idlen;
  ev->collapse_key = m->collapse_key;
  ev->collapse_keylen = m->collapse_keylen;
  ev->content_type = m->content_type;
  ev->content_typelen = m->content_typelen;
  ev->payload = m->payload;
  ev->payloadlen = m->payloadlen;
  ev->nattrs = m->nattrs;
  for (size_t i = 0; i < m->nattrs; ++i) {
    ev->attrs[i].key = m->attrs[i].key;
    ev->attrs[i].keylen = m->attrs[i].keylen;
    ev->attrs[i].value = m->attrs[i].value;
    ev->attrs[i].valuelen = m->attrs[i].valuelen;
  }
}

static int next_event(tern_client *c, tern_client_event *ev) {
  mem_free(&c->mem, c->taken);
  c->taken = NULL;
  cevent e;
  if (!evq_pop(&c->events, &e)) {
    return 0;
  }
  memset(ev, 0, sizeof(*ev));
  ev->type = e.type;
  ev->reason = e.reason;
  ev->seq = e.seq;
  ev->count = e.count;
  ev->retry_after = e.retry_after;
  c->pull_gen = e.gen;
  if (e.type == TERN_CLIENT_EV_PUBACK && e.msg) {
    ev->id = e.msg->raw;
    ev->idlen = e.msg->len;
    c->taken = e.msg;
  }
  if (e.type == TERN_CLIENT_EV_MESSAGE) {
    fill_message(ev, e.msg);
    c->taken = e.msg;
    ++c->stats.delivered;
    if (e.gen == c->gen && e.seq > c->delivered_max) {
      c->delivered_max = e.seq;
      if (!c->set.manual_ack) {
        c->processed = e.seq;
        client_ack_advance(c, c->now);
      }
    }
  }
  return 1;
}

/* An older caller's layout: no byte past it. */
LAYOUT_OLD static int next_event_old(tern_client *c, uint32_t version,
                                     tern_client_event *ev) {
  size_t len = layout_client_event(version);
  if (!c || !ev || len == 0) {
    return TERN_ERR_INVALID;
  }
  tern_client_event all;
  int rv = next_event(c, &all);
  if (rv == 1) {
    memcpy(ev, &all, len);
  }
  return rv;
}

int tern_client_next_event_versioned(tern_client *c, uint32_t version,
                                     tern_client_event *ev) {
  if (version != TERN_CLIENT_EVENT_VERSION) {
    return next_event_old(c, version, ev);
  }
  if (!c || !ev) {
    return TERN_ERR_INVALID;
  }
  return next_event(c, ev);
}

/* The 0.1 entry point, for programs built against its header. */
#undef tern_client_next_event
int tern_client_next_event(tern_client *c, tern_client_event *ev) {
  return tern_client_next_event_versioned(c, TERN_CLIENT_EVENT_V1, ev);
}

void tern_client_get_stats(const tern_client *c, tern_client_stats *st,
                           size_t size) {
  if (!c || !st) {
    return;
  }
  tern_client_stats s = c->stats;
  if (c->set.adaptive_heartbeat) {
    s.heartbeat_interval = client_hb_interval(c);
  } else {
    s.heartbeat_interval = MS(c->hb_ms);
  }
  layout_copy_out(st, size, &s, sizeof(s));
}
