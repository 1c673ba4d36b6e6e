/*
 * Frames to the server: HELLO, then PONG, ACK and PING, and GOAWAY when the
 * client closes.  Each frame is encoded into the client's send buffer when
 * it starts and copied out as the host's buffers allow, so a frame larger
 * than the host's buffer simply continues in the next write.
 */
#include <string.h>

#include "client/client.h"

#define MS(d) ((tern_duration)(d) * TERN_MILLISECONDS)

static int ack_pending(const tern_client *c) {
  return c->ack_due && c->ack_ready > c->ack_sent;
}

int client_want_write(const tern_client *c) {
  if (c->woff < c->wlen || client_pub_want_write(c)) {
    return 1;
  }
  switch (c->state) {
  case CL_HELLO_SENT:
    return (c->ctl & CTL_HELLO) != 0;
  case CL_CONNECTED:
    return (c->ctl & (CTL_PONG | CTL_PING)) != 0 || ack_pending(c);
  case CL_CLOSING:
    return ack_pending(c) || (c->ctl & CTL_GOAWAY) != 0;
  default:
    return 0;
  }
}

int tern_client_want_write(const tern_client *c) {
  return c ? client_want_write(c) : 0;
}

static uint64_t hello_last_seq(const tern_client *c) {
  if (!c->epoch) {
    return 0;
  }
  if (c->set.manual_ack) {
    /* Only what the app acknowledged (or duplicates of it): the rest is
       sent again should the app have crashed meanwhile. */
    return c->processed > c->ready_max ? c->processed : c->ready_max;
  }
  return c->rx_max;
}

static void hello(tern_client *c, wire_frame *f) {
  f->type = WIRE_HELLO;
  f->u.hello.version = WIRE_VERSION;
  f->u.hello.last_seq = hello_last_seq(c);
  f->u.hello.epoch = c->epoch;
  tern_duration hb = c->set.adaptive_heartbeat ? c->set.heartbeat_cap
                                               : c->set.heartbeat_interval;
  f->u.hello.heartbeat_ms = hb / TERN_MILLISECONDS;
  f->u.hello.key = c->key;
  f->u.hello.keylen = c->keylen;
  f->u.hello.token = c->token;
  f->u.hello.tokenlen = c->tokenlen;
}

static void ack(tern_client *c, wire_frame *f) {
  f->type = WIRE_ACK;
  f->u.ack_seq = c->ack_ready;
  c->ack_sent = c->ack_ready;
  c->ready_count = 0;
  c->ack_due = 0;
  ++c->stats.acks_sent;
}

static void ping(tern_client *c, wire_frame *f, tern_tstamp now) {
  f->type = WIRE_PING;
  f->u.ping = now;
  c->ping_out = 1;
  c->ping_value = now;
  c->ping_sent_at = now;
  c->probe = 0;
  if (c->ctl & CTL_KEEPALIVE) {
    /* A probe only when the link really was idle, both ways, for the
       interval: only then does its PONG prove that the path survives it. */
    tern_duration h = client_hb_interval(c);
    tern_tstamp idle_from = c->last_rx > c->last_tx ? c->last_rx : c->last_tx;
    if (now >= idle_from && now - idle_from >= h) {
      c->probe = h;
    }
  }
  c->ctl &= ~(uint32_t)(CTL_PING | CTL_KEEPALIVE);
}

/* Encodes the next frame due into the send buffer.  0 when none is. */
static int next_frame(tern_client *c, tern_tstamp now) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  if (c->ctl & CTL_HELLO) {
    hello(c, &f);
    c->ctl &= ~(uint32_t)CTL_HELLO;
  } else if (c->state == CL_CONNECTED && (c->ctl & CTL_PONG)) {
    f.type = WIRE_PONG;
    f.u.ping = c->pong_value;
    c->ctl &= ~(uint32_t)CTL_PONG;
  } else if ((c->state == CL_CONNECTED || c->state == CL_CLOSING) &&
             ack_pending(c)) {
    ack(c, &f);
  } else if (c->state == CL_CONNECTED && (c->ctl & CTL_PING)) {
    ping(c, &f, now);
  } else if (c->state == CL_CLOSING && (c->ctl & CTL_GOAWAY)) {
    f.type = WIRE_GOAWAY;
    f.u.goaway.reason = TERN_GOAWAY_CLIENT;
    f.u.goaway.text = (const uint8_t *)"";
    c->ctl &= ~(uint32_t)CTL_GOAWAY;
    c->goaway_sent = 1;
  } else {
    return 0;
  }
  c->wlen = wire_frame_encode(c->wbuf, sizeof(c->wbuf), &f);
  c->woff = 0;
  return c->wlen != 0;
}

/* 0 when the client has a transport to write to, else what a write
   returns. */
static int writable(const tern_client *c) {
  switch (c->state) {
  case CL_HELLO_SENT:
  case CL_CONNECTED:
  case CL_CLOSING:
    return 0;
  case CL_CLOSED:
    return TERN_ERR_CLOSED;
  default:
    return TERN_ERR_STATE;
  }
}

/* After |n| bytes went to the host at |now|: a closing client whose
   goodbye is out is done with its transport. */
static void wrote(tern_client *c, size_t n, tern_tstamp now) {
  if (c->woff == c->wlen) {
    c->woff = c->wlen = 0;
  }
  if (n) {
    c->last_tx = now;
  }
  if (c->state == CL_CLOSING && c->goaway_sent && c->wlen == 0) {
    /* The goodbye is out: the host closes the transport. */
    client_closed(c);
  }
}

/* Where the next bytes come from (client.peek_src): the frame in wbuf, or
   the PUBLISH queue. */
enum { FROM_NONE = 0, FROM_WBUF, FROM_PUB };

/* Picks the next bytes to send, in this order: the rest of a PUBLISH cut
   by the host's buffer (only it: *|max| its length), the frame in
   progress or the next control frame due (encoded into wbuf), then
   queued PUBLISH frames (*|max| SIZE_MAX). */
static int next_source(tern_client *c, tern_tstamp now, size_t *max) {
  if (c->woff == c->wlen && (*max = client_pub_cut(c)) != 0) {
    return FROM_PUB;
  }
  if (c->woff < c->wlen || next_frame(c, now)) {
    return FROM_WBUF;
  }
  if (c->state == CL_CONNECTED && client_pub_want_write(c)) {
    *max = SIZE_MAX;
    return FROM_PUB;
  }
  return FROM_NONE;
}

tern_ssize tern_client_write(tern_client *c, uint8_t *out, size_t cap,
                             tern_tstamp now) {
  if (!c || (!out && cap)) {
    return TERN_ERR_INVALID;
  }
  int rv = writable(c);
  if (rv != 0) {
    return rv;
  }
  if (c->peek_src) {
    return TERN_ERR_STATE; /* the peeked bytes go first: consume them */
  }
  if (now > c->now) {
    c->now = now;
  }
  size_t n = 0, max = 0;
  int src;
  while (n < cap && (src = next_source(c, now, &max)) != FROM_NONE) {
    if (src == FROM_PUB) {
      n += client_pub_write(c, out + n, max < cap - n ? max : cap - n);
      continue;
    }
    size_t chunk = c->wlen - c->woff;
    if (chunk > cap - n) {
      chunk = cap - n;
    }
    memcpy(out + n, c->wbuf + c->woff, chunk);
    c->woff += chunk;
    n += chunk;
  }
  wrote(c, n, now);
  return (tern_ssize)n;
}

/* The most PUBLISH bytes one peek offers: a control frame that comes due
   waits for no more than this and the rest of one frame. */
#define PEEK_PUB_MAX 16384

tern_ssize tern_client_peek_output(tern_client *c, const uint8_t **data,
                                   tern_tstamp now) {
  if (!c || !data) {
    return TERN_ERR_INVALID;
  }
  *data = NULL;
  int rv = writable(c);
  if (rv != 0) {
    return rv;
  }
  if (now > c->now) {
    c->now = now;
  }
  /* The bytes stay where they are, the frame in progress or the PUBLISH
     queue, in the order tern_client_write would copy them; a peek again
     offers what is left of the last one, no more. */
  if (!c->peek_src) {
    size_t max = 0;
    c->peek_src = next_source(c, now, &max);
    if (c->peek_src == FROM_NONE) {
      return 0;
    }
    c->peek_len = max < PEEK_PUB_MAX ? max : PEEK_PUB_MAX;
  }
  if (c->peek_src == FROM_WBUF) {
    *data = c->wbuf + c->woff;
    c->peek_len = c->wlen - c->woff;
  } else {
    c->peek_len = client_pub_peek(c, data, c->peek_len);
  }
  return (tern_ssize)c->peek_len;
}

int tern_client_consume(tern_client *c, size_t n) {
  if (!c || n > c->peek_len) {
    return TERN_ERR_INVALID;
  }
  if (n == 0) {
    return 0;
  }
  if (c->peek_src == FROM_WBUF) {
    c->woff += n;
  } else {
    client_pub_take(c, n);
  }
  c->peek_len -= n;
  if (c->peek_len == 0) {
    c->peek_src = 0;
  }
  wrote(c, n, c->now);
  return 0;
}
