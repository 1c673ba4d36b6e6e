/*
 * The connections of the web framings (tern-web(7)): SSE, NDJSON, polls
 * and WebSocket's tern.json (whose reading and control frames are
 * wsconn.c's; tern.bin is wsconn.c's alone).  SSE, NDJSON and polls are
 * one-way.  Bound to their session at creation (no HELLO), acked out of
 * band (tern_hub_ack) or by a resume, never read from.  They share the
 * session machinery of the binary framing (seqs, the in-flight window, the
 * return of in-flight messages when the connection goes, DROPPED notices
 * confirmed by a later ack, topic messages): only the bytes differ.
 *
 * Each message is one JSON envelope (lib/web/json.c), wrapped per framing.
 * An item (envelope, notice, heartbeat) is written whole into the host's
 * buffer when it fits; one that does not fit an empty buffer goes to a
 * spill buffer, allocated for it and freed once written, and the next
 * writes continue it before anything else (the binary framing's partial
 * frame).  So the common case copies nothing twice, and an idle connection
 * holds no buffer.
 *
 * conn.c hands these connections over at four points (write, wants_write,
 * timer, read refused); the binary path pays one byte test for it.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/topic.h"
#include "deliver/web.h"
#include "web/json.h"

#define MS(d) ((tern_duration)(d) * TERN_MILLISECONDS)
/* The longest retry hint and poll hold accepted: a day. */
#define STREAM_MAX_SPAN (24 * 3600 * TERN_SECONDS)

/* ---- options -------------------------------------------------------------- */

static void opts_all(tern_stream_opts *o) {
  memset(o, 0, sizeof(*o));
  o->version = TERN_STREAM_OPTS_VERSION;
  o->framing = TERN_FRAMING_BINARY;
  o->poll_hold = 25 * TERN_SECONDS;
}

void tern_stream_opts_default_versioned(uint32_t version,
                                        tern_stream_opts *o) {
  if (!o) {
    return;
  }
  tern_stream_opts all;
  opts_all(&all);
  all.version = version;
  layout_fill_defaults(o, layout_stream_opts(version), &all);
}

const char *tern_framing_content_type(int framing) {
  switch (framing) {
  case TERN_FRAMING_SSE:
    return "text/event-stream";
  case TERN_FRAMING_NDJSON:
    return "application/x-ndjson";
  case TERN_FRAMING_POLL:
    return "application/json";
  default:
    return NULL;
  }
}

/* Reads a decimal number of 1..20 digits from [p, end) up to a '.' or the
   end.  Returns the bytes used, or 0 when there is none or it overflows. */
static size_t parse_u64(const char *p, const char *end, uint64_t *v) {
  uint64_t x = 0;
  size_t n = 0;
  while (p + n < end && p[n] != '.') {
    char ch = p[n];
    if (ch < '0' || ch > '9' || n == 20) {
      return 0;
    }
    uint64_t d = (uint64_t)(ch - '0');
    if (x > (UINT64_MAX - d) / 10) {
      return 0;
    }
    x = x * 10 + d;
    ++n;
  }
  *v = x;
  return n;
}

int tern_stream_parse_resume(const char *text, size_t len, uint64_t *epoch,
                             uint64_t *seq) {
  if (!text || !epoch || !seq) {
    return TERN_ERR_INVALID;
  }
  const char *end = text + len;
  uint64_t a, b;
  size_t n = parse_u64(text, end, &a);
  if (n == 0) {
    return TERN_ERR_INVALID;
  }
  if (n == len) {
    *epoch = 0;
    *seq = a;
    return 0;
  }
  /* text[n] is '.' */
  size_t m = parse_u64(text + n + 1, end, &b);
  if (m == 0 || n + 1 + m != len) {
    return TERN_ERR_INVALID;
  }
  *epoch = a;
  *seq = b;
  return 0;
}

/* ---- numbers and literals ----------------------------------------------- */

#define LIT(s) (sizeof(s) - 1)
static uint8_t *put_lit(uint8_t *out, const char *s, size_t n) {
  memcpy(out, s, n);
  return out + n;
}
#define PUT(o, s) put_lit((o), (s), LIT(s))

/* ---- the output: the host's buffer, then the spill ------------------------ */

typedef struct wout {
  uint8_t *p, *end, *start;
  int full;  /* an item had to wait for the next write */
  int nomem; /* a spill buffer could not be had */
} wout;

/* Continues the spilled item.  1 when it is all written. */
static int spill_drain(tern_hub *hub, webconn *w, wout *o) {
  web_spill *sp = w->spill;
  size_t n = sp->len - sp->off;
  size_t room = (size_t)(o->end - o->p);
  n = n < room ? n : room;
  memcpy(o->p, sp->bytes + sp->off, n);
  o->p += n;
  sp->off += n;
  if (sp->off < sp->len) {
    o->full = 1;
    return 0;
  }
  mem_free(&hub->mem, sp);
  w->spill = NULL;
  return 1;
}

/* Where to write an item of |n| bytes: the host's buffer when it fits,
   else, when nothing was written in this call yet, a spill buffer; NULL:
   it waits (o->full or o->nomem set). */
static uint8_t *item_begin(tern_hub *hub, webconn *w, wout *o, size_t n) {
  size_t room = (size_t)(o->end - o->p);
  if (n <= room) {
    return o->p;
  }
  if (o->p != o->start || room == 0) {
    o->full = 1;
    return NULL;
  }
  web_spill *sp = mem_malloc(&hub->mem, sizeof(*sp) + n);
  if (!sp) {
    o->nomem = 1;
    return NULL;
  }
  sp->len = n;
  sp->off = 0;
  w->spill = sp;
  return sp->bytes;
}

/* The item of |n| bytes at |at| (from item_begin) is written. */
static void item_end(tern_hub *hub, webconn *w, wout *o, const uint8_t *at,
                     size_t n) {
  if (at == o->p) {
    o->p += n;
  } else {
    spill_drain(hub, w, o);
  }
}

/* ---- items ---------------------------------------------------------------- */

/* POLL items are array elements: '[' before the first, ',' before others. */
static uint8_t *poll_sep(conn *c, uint8_t *at) {
  *at = (c->web_flags & WEB_ARRAY_OPEN) ? ',' : '[';
  c->web_flags |= WEB_ARRAY_OPEN;
  return at + 1;
}

/* The fields of a message's envelope, from its wire tail (written by the
   hub itself, so well formed): flags, id, collapse key, content type,
   attrs, payload (the tail's last payloadlen bytes). */
static void msg_fields(const msg *m, uint64_t seq, web_json_msg *jm) {
  const uint8_t *t = msg_tail(m), *end = t + m->taillen;
  const uint8_t *p = t + 1;
  unsigned flags = t[0];
  uint64_t len = 0;
  jm->seq = seq;
  jm->priority = m->priority;
  p += wire_get_varint(&len, p, end);
  jm->id = p;
  jm->idlen = (size_t)len;
  p += len;
  if (flags & WIRE_MSG_HAS_COLLAPSE_KEY) {
    p += wire_get_varint(&len, p, end);
    p += len;
  }
  jm->content_type = NULL;
  jm->content_typelen = 0;
  if (flags & WIRE_MSG_HAS_CONTENT_TYPE) {
    p += wire_get_varint(&len, p, end);
    jm->content_type = p;
    jm->content_typelen = (size_t)len;
  }
  jm->payload = end - m->payloadlen;
  jm->payloadlen = m->payloadlen;
}

#define SSE_ID "id: "
#define SSE_MSG "\nevent: msg\ndata: "
#define SSE_END "\n\n"
#define NL_END "\r\n"

/* Writes |m| with |seq|.  1 when written (or spilled), 0 when it waits. */
static int put_msg(tern_hub *hub, conn *c, webconn *w, wout *o, const msg *m,
                   uint64_t seq) {
  web_json_msg jm;
  web_json_plan plan;
  msg_fields(m, seq, &jm);
  tern_ssize env = web_json_msg_len(&jm, &plan);
  if (env < 0) {
    o->nomem = 1; /* not reachable: the hub wrote the fields */
    return 0;
  }
  size_t n = (size_t)env;
  switch (c->framing) {
  case TERN_FRAMING_SSE:
    n += LIT(SSE_ID) + web_u64_len(hub->epoch) + 1 + web_u64_len(seq) + LIT(SSE_MSG) +
         LIT(SSE_END);
    break;
  case TERN_FRAMING_NDJSON:
    n += LIT(NL_END);
    break;
  case TERN_FRAMING_WS_JSON:
    n += web_ws_header_len(n, 0); /* one text message */
    break;
  default:
    n += 1;
    break;
  }
  uint8_t *at = item_begin(hub, w, o, n);
  if (!at) {
    return 0;
  }
  uint8_t *q = at;
  if (c->framing == TERN_FRAMING_SSE) {
    q = PUT(q, SSE_ID);
    q = web_put_u64(q, hub->epoch);
    *q++ = '.';
    q = web_put_u64(q, seq);
    q = PUT(q, SSE_MSG);
  } else if (c->framing == TERN_FRAMING_POLL) {
    q = poll_sep(c, q);
  } else if (c->framing == TERN_FRAMING_WS_JSON) {
    q += web_ws_header_write(q, 1, WEB_WS_TEXT, (uint64_t)env, NULL);
  }
  q += web_json_msg_write(q, &jm, &plan);
  if (c->framing == TERN_FRAMING_SSE) {
    q = PUT(q, SSE_END);
  } else if (c->framing == TERN_FRAMING_NDJSON) {
    q = PUT(q, NL_END);
  }
  item_end(hub, w, o, at, n);
  return 1;
}

#define SSE_DROPPED "event: dropped\ndata: "
#define J_DROPPED "{\"dropped\":"

/* A loss notice: {"count":N,"reason":"..."} in the framing's dress. */
static int put_notice(tern_hub *hub, conn *c, webconn *w, wout *o,
                      uint64_t count, int reason) {
  tern_ssize dn = web_json_dropped_len(count, reason);
  if (dn < 0) {
    o->nomem = 1; /* not reachable: the reasons are the hub's */
    return 0;
  }
  size_t n = (size_t)dn;
  switch (c->framing) {
  case TERN_FRAMING_SSE:
    n += LIT(SSE_DROPPED) + LIT(SSE_END);
    break;
  case TERN_FRAMING_NDJSON:
    n += LIT(J_DROPPED) + 1 + LIT(NL_END);
    break;
  case TERN_FRAMING_WS_JSON:
    n += LIT(J_DROPPED) + 1;
    n += web_ws_header_len(n, 0);
    break;
  default:
    n += 1 + LIT(J_DROPPED) + 1;
    break;
  }
  uint8_t *at = item_begin(hub, w, o, n);
  if (!at) {
    return 0;
  }
  uint8_t *q = at;
  if (c->framing == TERN_FRAMING_SSE) {
    q = PUT(q, SSE_DROPPED);
    q += web_json_dropped_write(q, count, reason);
    q = PUT(q, SSE_END);
  } else {
    if (c->framing == TERN_FRAMING_POLL) {
      q = poll_sep(c, q);
    } else if (c->framing == TERN_FRAMING_WS_JSON) {
      q += web_ws_header_write(q, 1, WEB_WS_TEXT,
                               LIT(J_DROPPED) + (size_t)dn + 1, NULL);
    }
    q = PUT(q, J_DROPPED);
    q += web_json_dropped_write(q, count, reason);
    *q++ = '}';
    if (c->framing == TERN_FRAMING_NDJSON) {
      q = PUT(q, NL_END);
    }
  }
  item_end(hub, w, o, at, n);
  return 1;
}

/* The session's untold losses, as conn.c's put_dropped tells them (the
   aux block remembers them until an ack of a later seq confirms them). */
static int put_dropped(tern_hub *hub, conn *c, webconn *w, wout *o) {
  session *s = c->session;
  if (conn_aux_get(hub, c) != 0) {
    o->nomem = 1;
    return 0;
  }
  for (int r = 0; r < 3; ++r) {
    if (s->dropped[r]) {
      if (!put_notice(hub, c, w, o, s->dropped[r], r + 1)) {
        conn_aux_trim(hub, c);
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
    if (!put_notice(hub, c, w, o, lost, TERN_DROP_RETENTION)) {
      conn_aux_trim(hub, c);
      return 0;
    }
    c->aux->told_retention += lost;
    c->aux->told_seq = s->next_seq;
    topic_lost_told(s);
    ++hub->stats.dropped_notices;
  }
  return 1;
}

#define SSE_RETRY "retry: "
#define SSE_HB ":\n"
#define SSE_GOAWAY "event: goaway\ndata: {\"reason\":\""
#define J_GOAWAY "{\"goaway\":{\"reason\":\""
#define J_RETRY "\",\"retry\":"

static int put_retry(tern_hub *hub, const conn *c, webconn *w, wout *o) {
  size_t n = LIT(SSE_RETRY) + web_u64_len(c->retry_ms) + 1;
  uint8_t *at = item_begin(hub, w, o, n);
  if (!at) {
    return 0;
  }
  uint8_t *q = PUT(at, SSE_RETRY);
  q = web_put_u64(q, c->retry_ms);
  *q = '\n';
  item_end(hub, w, o, at, n);
  return 1;
}

static int put_heartbeat(tern_hub *hub, conn *c, webconn *w, wout *o) {
  size_t n = c->framing == TERN_FRAMING_SSE
                 ? LIT(SSE_HB)
                 : web_json_hb_len(c->heartbeat_ms) + LIT(NL_END);
  uint8_t *at = item_begin(hub, w, o, n);
  if (!at) {
    return 0;
  }
  if (c->framing == TERN_FRAMING_SSE) {
    PUT(at, SSE_HB);
  } else {
    uint8_t *q = at + web_json_hb_write(at, c->heartbeat_ms);
    PUT(q, NL_END);
  }
  item_end(hub, w, o, at, n);
  return 1;
}

static const char *goaway_name(int reason) {
  static const char *const names[] = {
      "restart", "proto",    "too_large", "timeout", "rejected",
      "limit",   "internal", "client",    "replaced", "done"};
  if (reason >= 0 && reason < (int)(sizeof(names) / sizeof(names[0]))) {
    return names[reason];
  }
  return "other";
}

const char *framing_goaway_name(int reason) { return goaway_name(reason); }

/* The goodbye of a connection the hub closed: an SSE "goaway" event
   (after a "retry:" line with the hint, so that the browser waits that
   long), an NDJSON {"goaway":{...}} line, or that object as a tern.json
   text message (the CLOSE frame follows).  Polls have none. */
static int put_goaway(tern_hub *hub, conn *c, webconn *w, wout *o) {
  const char *name = goaway_name(c->goaway_reason);
  size_t namelen = strlen(name);
  uint32_t retry = c->goaway_retry_ms;
  size_t n = namelen + LIT(J_RETRY) + web_u64_len(retry) + 1;
  if (c->framing == TERN_FRAMING_SSE) {
    n += (retry ? LIT(SSE_RETRY) + web_u64_len(retry) + 1 : 0) +
         LIT(SSE_GOAWAY) + LIT(SSE_END);
  } else if (c->framing == TERN_FRAMING_WS_JSON) {
    n += LIT(J_GOAWAY) + 1;
    n += web_ws_header_len(n, 0);
  } else {
    n += LIT(J_GOAWAY) + 1 + LIT(NL_END);
  }
  uint8_t *at = item_begin(hub, w, o, n);
  if (!at) {
    return 0;
  }
  uint8_t *q = at;
  if (c->framing == TERN_FRAMING_SSE) {
    if (retry) {
      q = PUT(q, SSE_RETRY);
      q = web_put_u64(q, retry);
      *q++ = '\n';
    }
    q = PUT(q, SSE_GOAWAY);
  } else {
    if (c->framing == TERN_FRAMING_WS_JSON) {
      size_t json = LIT(J_GOAWAY) + namelen + LIT(J_RETRY) + web_u64_len(retry) +
                    2;
      q += web_ws_header_write(q, 1, WEB_WS_TEXT, json, NULL);
    }
    q = PUT(q, J_GOAWAY);
  }
  q = put_lit(q, name, namelen);
  q = PUT(q, J_RETRY);
  q = web_put_u64(q, retry);
  *q++ = '}';
  if (c->framing == TERN_FRAMING_SSE) {
    PUT(q, SSE_END);
  } else {
    *q++ = '}';
    if (c->framing != TERN_FRAMING_WS_JSON) {
      PUT(q, NL_END);
    }
  }
  item_end(hub, w, o, at, n);
  return 1;
}

/* ---- messages --------------------------------------------------------------- */

static msg *peek_pending(const session *s) {
  for (int p = TERN_PRIO_HIGH; p >= TERN_PRIO_LOW; --p) {
    if (s->queue[p]) {
      return s->queue[p];
    }
  }
  return NULL;
}

/*
 * Writes notices and messages while the window and the buffer allow, with
 * the bookkeeping of conn.c's put_messages_of (a message counts as sent,
 * and gets its seq, once its item is written or spilled).  0 or
 * TERN_ERR_NOMEM.
 */
static int put_messages(tern_hub *hub, conn *c, webconn *w, wout *o,
                        tern_tstamp now) {
  session *s = c->session;
  const int topics = s->tp != NULL;
  int rv = 0;
  if ((session_has_drops(s) || (topics && topic_refresh(hub, s, now))) &&
      !put_dropped(hub, c, w, o)) {
    return 0;
  }
  for (;;) {
    if (c->ninflight >= hub->set.inflight_window) {
      break;
    }
    msg *m;
    if (topics) {
      int found = 0;
      m = s->tp->pol ? policy_peek(hub, s, now) : peek_pending(s);
      m = topic_next(hub, s, m, now, &found);
      if (found & TOPIC_NEXT_NOMEM) {
        rv = TERN_ERR_NOMEM;
        break;
      }
      /* A loss found on the way is told before the next message, as on
         the binary framing (conn.c). */
      if ((found & TOPIC_NEXT_LOST) && !put_dropped(hub, c, w, o)) {
        break;
      }
    } else {
      m = peek_pending(s);
    }
    if (!m) {
      break;
    }
    if (m->expiry <= now) {
      ++hub->stats.expired;
      session_discard(hub, m, TERN_DROP_EXPIRED, TERN_EV_EXPIRED);
      if (session_has_drops(s) && !put_dropped(hub, c, w, o)) {
        break;
      }
      continue;
    }
    if (!put_msg(hub, c, w, o, m, s->next_seq)) {
      break;
    }
    mlist_remove(&s->queue[m->priority], m);
    --s->npending;
    m->seq = s->next_seq++;
    if (hub->persist && s->next_seq % SEQ_BLOCK == 0) {
      persist_seq(hub, s);
    }
    m->stream = c->stream;
    m->conn = c;
    m->sent_at = now;
    if (topics && m->deliveries == 0 && (m->flags & MSG_TOPIC)) {
      topic_msg_sent(m); /* its receipt counts it now */
    }
    if (topics && s->tp->pol) {
      policy_sent(hub, s, m, now);
    }
    hub->stats.resent += m->deliveries++ != 0;
    ++hub->stats.sent;
    ++hub->stats.inflight;
    if (!c->inflight && hub->set.ack_timeout &&
        now + hub->set.ack_timeout < c->timer.deadline) {
      heap_arm(&hub->timers, &c->timer, now + hub->set.ack_timeout);
    }
    mlist_push(&c->inflight, m);
    ++c->ninflight;
    if (msg_traced(hub, m)) {
      event_msg(hub, TERN_EV_SENT, 0, m, (tern_conn *)c, NULL, 0);
    }
    if (w->spill) {
      break; /* the rest of this item goes first next time */
    }
  }
  if (topics && rv == 0 && !w->spill && !o->full && !o->nomem &&
      topic_lost_total(s)) {
    put_dropped(hub, c, w, o);
  }
  return rv;
}

/* Something for the connection to write now (it is open and bound). */
static int has_output(const conn *c) {
  const session *s = c->session;
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

int framing_wants_write(const conn *c) {
  if (c->framing == TERN_FRAMING_WS_BIN) {
    return ws_bin_wants_write(c);
  }
  const webconn *w = web_of(c);
  if (w->spill) {
    return 1;
  }
  if (c->framing == TERN_FRAMING_WS_JSON && ws_ctl_waits(ws_of(c))) {
    return 1;
  }
  if (c->state == CONN_CLOSING) {
    return c->ctl != 0 || (c->web_flags & WEB_ARRAY_OPEN);
  }
  if (c->state != CONN_OPEN) {
    return 0;
  }
  if (c->ctl || (c->web_flags & WEB_RETRY_DUE)) {
    return 1;
  }
  if (c->framing == TERN_FRAMING_POLL && w->hold_until[0] <= c->last_tx) {
    return 1; /* a short poll, or one whose hold passed: it answers */
  }
  return has_output(c);
}

/* Ends the connection (conn_close), keeping it CLOSING while it still has
   bytes to write. */
static void end_conn(conn *c, int reason, tern_tstamp now) {
  conn_close(c, reason, 0, 0, 1, now);
  webconn *w = web_of(c);
  if (w->spill || (c->web_flags & WEB_ARRAY_OPEN)) {
    c->state = CONN_CLOSING;
    hub_mark_ready(c->hub, c);
  }
}

static void rearm(tern_hub *hub, conn *c);

/* ---- writing ---------------------------------------------------------------- */

/* The goodbye of a closing connection, the rest of a poll's array. */
static void put_closing(tern_hub *hub, conn *c, webconn *w, wout *o) {
  if (c->ctl & CTL_GOAWAY) {
    if (c->framing != TERN_FRAMING_POLL && !put_goaway(hub, c, w, o)) {
      return;
    }
    c->ctl = 0;
  }
  if (c->web_flags & WEB_ARRAY_OPEN) {
    if (o->p == o->end) {
      return;
    }
    *o->p++ = ']';
    c->web_flags &= (uint8_t)~WEB_ARRAY_OPEN;
  }
  if (w->spill) {
    return;
  }
  if (c->framing == TERN_FRAMING_WS_JSON && !ws_put_close(c, &o->p, o->end)) {
    o->full = 1;
    return;
  }
  c->state = CONN_CLOSED;
}

static void put_open(tern_hub *hub, conn *c, webconn *w, wout *o,
                     tern_tstamp now, int *rv) {
  const int ws = c->framing == TERN_FRAMING_WS_JSON;
  if (ws && !ws_put_pong(c, &o->p, o->end)) {
    o->full = 1;
    return;
  }
  if (c->web_flags & WEB_RETRY_DUE) {
    if (!put_retry(hub, c, w, o)) {
      return;
    }
    c->web_flags &= (uint8_t)~WEB_RETRY_DUE;
  }
  if (c->ctl & CTL_PING) {
    /* tern.json's heartbeat is a PING frame: taken whole even when only
       its start fits (the rest goes first next time). */
    int whole = ws ? ws_put_ping(c, &o->p, o->end, now)
                   : put_heartbeat(hub, c, w, o);
    if (!ws && !whole) {
      return;
    }
    c->ctl &= (uint8_t)~CTL_PING;
    c->last_tx = now;
    rearm(hub, c); /* the timer waited without a heartbeat deadline */
    if (!whole) {
      o->full = 1;
      return;
    }
  }
  *rv = put_messages(hub, c, w, o, now);
  if (c->framing != TERN_FRAMING_POLL || *rv != 0 || o->full || o->nomem ||
      w->spill) {
    return;
  }
  if (c->web_flags & WEB_ARRAY_OPEN) {
    /* Everything there is now is in the answer: close it. */
    if (o->p == o->end) {
      o->full = 1;
      return;
    }
    *o->p++ = ']';
    c->web_flags &= (uint8_t)~WEB_ARRAY_OPEN;
    end_conn(c, TERN_GOAWAY_DONE, now);
  } else if (now >= w->hold_until[0]) {
    end_conn(c, TERN_GOAWAY_DONE, now); /* nothing came: an empty answer */
  }
}

tern_ssize framing_write(conn *c, uint8_t *buf, size_t cap, tern_tstamp now) {
  if (c->framing == TERN_FRAMING_WS_BIN) {
    return ws_bin_write(c, buf, cap, now);
  }
  tern_hub *hub = c->hub;
  webconn *w = web_of(c);
  wout o = {buf, buf + cap, buf, 0, 0};
  int rv = 0;
  if (w->spill && !spill_drain(hub, w, &o)) {
    goto done;
  }
  if (c->framing == TERN_FRAMING_WS_JSON &&
      !ws_flush_ctl(c, &o.p, o.end)) {
    goto done;
  }
  if (c->state == CONN_CLOSING) {
    put_closing(hub, c, w, &o);
  } else if (c->state == CONN_OPEN) {
    put_open(hub, c, w, &o, now, &rv);
  }
done:
  if (o.p != buf) {
    c->last_tx = now;
    hub->stats.bytes_out += (size_t)(o.p - buf);
  }
  if (c->ready && !framing_wants_write(c)) {
    hub_unready(hub, c);
  }
  if (o.nomem) {
    rv = TERN_ERR_NOMEM;
  }
  if (rv < 0 && o.p == buf) {
    c->write_retry = 1; /* conn_on_timer puts it back on the ready list */
    heap_arm(&hub->timers, &c->timer, now);
    return rv;
  }
  if (o.p == buf && c->state == CONN_CLOSED) {
    return TERN_ERR_CLOSED;
  }
  return o.p - buf;
}

/* ---- deadlines -------------------------------------------------------------- */

/* When the heartbeat interval starts: the last write, and for tern.json
   also the last receipt unless a PING of ours since then is unanswered,
   so that a peer that only listens is asked for a PONG before its
   liveness runs out. */
static tern_tstamp hb_base(const conn *c) {
  if (c->framing == TERN_FRAMING_WS_JSON && c->last_rx < c->last_tx &&
      !(c->ping_sent && c->ping_sent >= c->last_rx)) {
    return c->last_rx;
  }
  return c->last_tx;
}

static tern_tstamp deadline_of(const tern_hub *hub, const conn *c) {
  const webconn *w = web_of(c);
  tern_tstamp d = TERN_TSTAMP_NONE;
  if (c->framing == TERN_FRAMING_POLL) {
    /* Once ready, its next write answers: a passed hold time re-armed
       here would make tern_hub_handle_expiry spin. */
    if (!(c->web_flags & WEB_ARRAY_OPEN) && !c->ready) {
      d = w->hold_until[0];
    }
  } else if (!(c->ctl & CTL_PING)) {
    d = hb_base(c) + MS(c->heartbeat_ms);
  }
  if (conn_liveness_ms(c)) { /* tern.json: the peer answers our PINGs */
    tern_tstamp live = c->last_rx + MS(conn_liveness_ms(c));
    d = live < d ? live : d;
  }
  if (hub->set.ack_timeout && c->inflight) {
    tern_tstamp at = conn_ack_deadline(hub, c->inflight);
    d = at < d ? at : d;
  }
  return d;
}

static void rearm(tern_hub *hub, conn *c) {
  heap_set(&hub->timers, &c->timer, deadline_of(hub, c));
}

/* The timer of an open one-way connection (conn_on_timer did the rest). */
int framing_on_timer(tern_hub *hub, conn *c, tern_tstamp now) {
  webconn *w = web_of(c);
  if (conn_liveness_ms(c) && now >= c->last_rx + MS(conn_liveness_ms(c))) {
    ++hub->stats.conns_dead;
    conn_close(c, TERN_GOAWAY_TIMEOUT, 0, 0, 0, now);
    return 0;
  }
  if (c->framing == TERN_FRAMING_POLL) {
    if (!(c->web_flags & WEB_ARRAY_OPEN) && now >= w->hold_until[0]) {
      if (!has_output(c)) {
        end_conn(c, TERN_GOAWAY_DONE, now); /* the host answers 204 */
        return 0;
      }
      hub_mark_ready(hub, c); /* it answers at its next write */
    }
  } else if (!(c->ctl & CTL_PING) && now >= hb_base(c) + MS(c->heartbeat_ms)) {
    c->ctl |= CTL_PING;
    hub_mark_ready(hub, c);
  }
  int rv = 0;
  if (hub->set.ack_timeout) {
    rv = conn_ack_timeouts(hub, c, now);
  }
  if (rv != 0) {
    heap_arm(&hub->timers, &c->timer, now); /* still due */
    return rv;
  }
  rearm(hub, c);
  return 0;
}

void framing_release(tern_hub *hub, conn *c) {
  webconn *w = web_of(c);
  mem_free(&hub->mem, w->spill);
  w->spill = NULL;
  if (is_ws(c)) {
    ws_release(hub, c);
  }
}

/* ---- opening ---------------------------------------------------------------- */

static int check_opts(const tern_hub *hub, const tern_stream_opts *o) {
  if (o->framing < TERN_FRAMING_SSE || o->framing > TERN_FRAMING_WS_JSON) {
    return TERN_ERR_INVALID;
  }
  if (o->framing == TERN_FRAMING_WS_BIN) {
    /* Its HELLO names the session and the resume. */
    return o->key || o->keylen || o->resume_epoch || o->resume_seq
               ? TERN_ERR_INVALID
               : 0;
  }
  if (!o->key || o->keylen == 0) {
    return TERN_ERR_INVALID;
  }
  if (o->keylen > TERN_MAX_SESSION_KEY) {
    return TERN_ERR_TOO_LARGE;
  }
  if (o->heartbeat_interval &&
      (o->heartbeat_interval < TERN_SECONDS ||
       o->heartbeat_interval > hub->set.max_heartbeat)) {
    return TERN_ERR_INVALID;
  }
  if (o->retry > STREAM_MAX_SPAN || o->poll_hold > STREAM_MAX_SPAN) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

int tern_conn_new_stream(tern_conn **pconn, tern_hub *hub,
                         const tern_stream_opts *opts, tern_tstamp now) {
  if (!pconn || !hub || !opts) {
    return TERN_ERR_INVALID;
  }
  size_t olen = layout_stream_opts(opts->version);
  if (olen == 0) {
    return TERN_ERR_INVALID;
  }
  tern_stream_opts o;
  opts_all(&o);
  memcpy(&o, opts, olen);
  int rv = check_opts(hub, &o);
  if (rv != 0) {
    return rv;
  }
  if (o.framing == TERN_FRAMING_WS_BIN) {
    /* tern.bin is the binary framing inside WebSocket messages: a
       connection of tern_conn_new's, waiting for HELLO. */
    conn *b;
    rv = conn_new_binary(hub, sizeof(conn) + sizeof(webconn) + sizeof(wsconn),
                         now, &b);
    if (rv == 0) {
      b->framing = TERN_FRAMING_WS_BIN;
      ws_init(b);
      *pconn = (tern_conn *)b;
    }
    return rv;
  }
  const int ws = o.framing == TERN_FRAMING_WS_JSON;
  conn *c = mem_calloc(&hub->mem, 1,
                       ws ? sizeof(conn) + sizeof(webconn) + sizeof(wsconn)
                          : CONN_ONEWAY_SIZE + sizeof(webconn) +
                                (o.framing == TERN_FRAMING_POLL
                                     ? sizeof(tern_tstamp)
                                     : 0));
  if (!c) {
    return TERN_ERR_NOMEM;
  }
  if (hub_reserve_timer(hub) != 0) {
    mem_free(&hub->mem, c);
    return TERN_ERR_NOMEM;
  }
  /* Room for the end event and its key: every end is told. */
  if (event_reserve(hub, 1, o.keylen) != 0) {
    hub_release_timer(hub);
    mem_free(&hub->mem, c);
    return TERN_ERR_NOMEM;
  }
  uint64_t hash = session_hash(hub, o.key, o.keylen);
  session *s = session_find(hub, o.key, o.keylen, hash);
  int created = 0;
  if (!s) {
    rv = session_new(hub, &s, o.key, o.keylen, hash, now);
    created = 1;
  } else if (o.resume_seq &&
             (o.resume_epoch == 0 || o.resume_epoch == hub->epoch)) {
    session_resume(hub, s, o.resume_seq, now);
  }
  if (rv == 0 && s->nconns >= hub->set.max_conns) {
    if (created) {
      session_destroy(hub, s);
    }
    rv = TERN_ERR_LIMIT;
  }
  if (rv != 0) {
    event_unreserve(hub, 1, o.keylen);
    hub_release_timer(hub);
    mem_free(&hub->mem, c);
    return rv;
  }
  c->hub = hub;
  c->framing = (uint8_t)o.framing;
  c->last_rx = c->last_tx = now;
  uint64_t hb = (o.heartbeat_interval ? o.heartbeat_interval
                                      : hub->set.heartbeat_interval) /
                TERN_MILLISECONDS;
  c->heartbeat_ms = hb > UINT32_MAX ? UINT32_MAX : (uint32_t)hb;
  if (ws) {
    /* Two-way: the peer answers PINGs (browsers do by themselves), so a
       silent one is dead after the hub's margin, as on the binary
       framing. */
    uint64_t margin = (hub->set.liveness_timeout -
                       hub->set.heartbeat_interval) / TERN_MILLISECONDS;
    uint64_t live = hb + margin;
    c->liveness_ms = live > UINT32_MAX ? UINT32_MAX : (uint32_t)live;
    ws_init(c);
  }
  c->timer.kind = TIMER_CONN;
  c->all_next = hub->conns;
  if (hub->conns) {
    hub->conns->all_prev = c;
  }
  hub->conns = c;
  ++hub->nconns;
  ++hub->stats.conns;
  ++hub->stats.conns_opened;
  webconn *w = web_of(c);
  if (o.framing == TERN_FRAMING_SSE) {
    c->retry_ms = (uint32_t)(o.retry / TERN_MILLISECONDS); /* <= MAX_SPAN */
    c->web_flags = c->retry_ms ? WEB_RETRY_DUE : 0;
  } else if (o.framing == TERN_FRAMING_POLL) {
    w->hold_until[0] = now + o.poll_hold;
  }
  session_attach(hub, s, c);
  c->state = CONN_OPEN;
  rearm(hub, c);
  if (framing_wants_write(c)) {
    hub_mark_ready(hub, c);
  }
  *pconn = (tern_conn *)c;
  return 0;
}

/* ---- out-of-band acks ------------------------------------------------------- */

tern_ssize tern_hub_ack(tern_hub *hub, const uint8_t *key, size_t keylen,
                        uint64_t seq, tern_tstamp now) {
  (void)now;
  if (!hub || !key || keylen == 0 || keylen > TERN_MAX_SESSION_KEY) {
    return TERN_ERR_INVALID;
  }
  session *s = session_find(hub, key, keylen, session_hash(hub, key, keylen));
  if (!s) {
    return TERN_ERR_NOT_FOUND;
  }
  if (seq == 0 || seq >= s->next_seq) {
    return TERN_ERR_INVALID;
  }
  uint32_t stream;
  if (!session_find_stream(s, seq, &stream)) {
    return 0;
  }
  uint64_t before = hub->stats.acked;
  for (conn *c = session_conns(s); c; c = c->session_next) {
    if (c->stream == stream) {
      if (c->state == CONN_OPEN) {
        conn_on_ack(c, seq);
      }
      break;
    }
  }
  /* Its messages that went back to the session (the connection went, or
     their ack timed out) are acked too: they will not be sent again. */
  for (int p = 0; p < 3; ++p) {
    msg *m = s->queue[p];
    while (m) {
      msg *next = m->next == s->queue[p] ? NULL : m->next;
      if (m->seq && m->seq <= seq && m->stream == stream) {
        ++hub->stats.acked;
        session_discard(hub, m, 0, TERN_EV_ACKED);
      }
      m = next;
    }
  }
  return (tern_ssize)(hub->stats.acked - before);
}
