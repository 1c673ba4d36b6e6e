/*
 * WebSocket connections (RFC 6455, tern-web(7)): the two subprotocols as
 * connection kinds of the hub, after the host did the HTTP upgrade.
 *
 *   tern.bin   binary messages carry the byte stream of tern-protocol(7)
 *              both ways: the connection is a binary framing connection
 *              (HELLO, acks, PING/PONG heartbeats and liveness, GOAWAY,
 *              all conn.c's) whose bytes are unwrapped from the peer's
 *              messages and wrapped into ours, one message per write.
 *   tern.json  text messages: the envelopes of framing.c out, {"ack":N}
 *              in; bound at creation like SSE; heartbeats are WebSocket
 *              PINGs, and the peer's PONGs (or anything else) keep it
 *              alive.
 *
 * This file owns what both share: decoding the peer's frames (masked;
 * fragments, PING answered by PONG, CLOSE echoed), the control frames we
 * write, and the closing handshake: every end of the connection, whoever
 * caused it, writes one CLOSE frame last, after which tern_conn_write
 * returns TERN_ERR_CLOSED and the host closes the socket (a server closes
 * the TCP connection first, RFC 6455 7.1.1; we do not wait for the peer's
 * CLOSE).  And tern_ws_handshake, so that a host needs no SHA-1 of its
 * own.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/web.h"
#include "web/json.h"

void ws_init(conn *c) { memset(ws_of(c), 0, sizeof(wsconn)); }

/* ---- what is held only while needed ------------------------------------ */

/* The side block of |c|, the hub's spare or a new one, with a fresh
   decoder.  NULL: no memory. */
static ws_side *side_get(conn *c) {
  wsconn *ws = ws_of(c);
  tern_hub *hub = c->hub;
  if (ws->side) {
    return ws->side;
  }
  ws_side *sd = hub->ws_spare;
  if (sd) {
    hub->ws_spare = NULL;
  } else if (!(sd = mem_malloc(&hub->mem, sizeof(*sd)))) {
    return NULL;
  }
  uint64_t max = c->framing == TERN_FRAMING_WS_JSON ? WS_JSON_IN_MAX
                                                    : WS_BIN_IN_MAX;
  web_ws_decoder_init(&sd->dec, WEB_WS_SERVER, max, max);
  sd->pong_len = sd->out_len = sd->jlen = 0;
  ws->side = sd;
  return sd;
}

/* Gives the side block back once nothing in it is needed: no PING to
   answer, no PONG being written, no message in pieces, and the decoder
   between frames (or done with: the connection is closing).  Not while
   framing_read decodes with it. */
static void side_trim(conn *c) {
  wsconn *ws = ws_of(c);
  ws_side *sd = ws->side;
  if (sd && !ws->pong_due && ws->ctl != WS_CTL_PONG && sd->jlen == 0 &&
      (web_ws_decoder_idle(&sd->dec) || c->state >= CONN_CLOSING)) {
    c->hub->ws_spare = hub_spare_put(c->hub, c->hub->ws_spare, sd);
    ws->side = NULL;
  }
}

void ws_release(tern_hub *hub, conn *c) {
  wsconn *ws = ws_of(c);
  if (ws->side) {
    hub->ws_spare = hub_spare_put(hub, hub->ws_spare, ws->side);
    ws->side = NULL;
  }
}

/* ---- control frames out ------------------------------------------------- */

/* The CLOSE code of an end the peer did not choose (tern-web(7)). */
static unsigned close_code_of(int reason) {
  switch (reason) {
  case TERN_GOAWAY_RESTART:
  case TERN_GOAWAY_TIMEOUT:
    return WEB_WS_CLOSE_GOING_AWAY;
  case TERN_GOAWAY_PROTO:
    return WEB_WS_CLOSE_PROTOCOL;
  case TERN_GOAWAY_TOO_LARGE:
    return WEB_WS_CLOSE_TOO_BIG;
  case TERN_GOAWAY_REJECTED:
    return WEB_WS_CLOSE_POLICY;
  case TERN_GOAWAY_LIMIT:
    return WEB_WS_CLOSE_TRY_LATER;
  case TERN_GOAWAY_INTERNAL:
    return WEB_WS_CLOSE_INTERNAL;
  default: /* client, replaced, done, and the host's own reasons */
    return WEB_WS_CLOSE_NORMAL;
  }
}

/* Encodes the control frame being written into |f|; its length.  The
   same bytes every time: what it is made of does not change while it is
   written (a newer PING of the peer waits in side->pong). */
static size_t ctl_encode(const conn *c, const wsconn *ws,
                         uint8_t f[WEB_WS_CONTROL_MAX + 2]) {
  const size_t cap = WEB_WS_CONTROL_MAX + 2;
  tern_ssize n = 0;
  switch (ws->ctl) {
  case WS_CTL_PING: {
    /* Our PINGs carry the time they were sent (8 bytes, big-endian), so
       that the PONG gives the round trip. */
    uint8_t stamp[8];
    for (unsigned i = 0; i < 8; ++i) {
      stamp[i] = (uint8_t)(ws->ping_stamp >> (56 - 8 * i));
    }
    n = web_ws_control_write(f, cap, WEB_WS_PING, stamp, sizeof(stamp), NULL);
    break;
  }
  case WS_CTL_PONG:
    n = web_ws_control_write(f, cap, WEB_WS_PONG, ws->side->out,
                             ws->side->out_len, NULL);
    break;
  case WS_CTL_CLOSE:
    if (ws->close_empty) {
      n = web_ws_close_write(f, cap, 0, NULL, 0, NULL);
      break;
    }
    unsigned code = ws->close_code ? ws->close_code
                                   : close_code_of(c->goaway_reason);
    const char *why = ws->close_why ? ws->close_why
                                    : framing_goaway_name(c->goaway_reason);
    n = web_ws_close_write(f, cap, code, why, strlen(why), NULL);
    if (n < 0) { /* not reachable: our reasons are short ASCII */
      n = web_ws_close_write(f, cap, code, NULL, 0, NULL);
    }
    break;
  default:
    break;
  }
  return n > 0 ? (size_t)n : 0;
}

int ws_flush_ctl(conn *c, uint8_t **p, uint8_t *end) {
  wsconn *ws = ws_of(c);
  if (ws->ctl == WS_CTL_NONE) {
    return 1;
  }
  uint8_t f[WEB_WS_CONTROL_MAX + 2];
  size_t len = ctl_encode(c, ws, f);
  size_t n = len > ws->ctl_off ? len - ws->ctl_off : 0;
  size_t room = (size_t)(end - *p);
  n = n < room ? n : room;
  if (n) {
    memcpy(*p, f + ws->ctl_off, n);
    *p += n;
    ws->ctl_off = (uint8_t)(ws->ctl_off + n);
  }
  if (ws->ctl_off < len) {
    return 0;
  }
  ws->ctl = WS_CTL_NONE;
  ws->ctl_off = 0;
  side_trim(c);
  return 1;
}

/* Starts the control frame |kind| and writes what fits. */
static int take_ctl(conn *c, uint8_t kind, uint8_t **p, uint8_t *end) {
  wsconn *ws = ws_of(c);
  ws->ctl = kind;
  ws->ctl_off = 0;
  return ws_flush_ctl(c, p, end);
}

int ws_put_pong(conn *c, uint8_t **p, uint8_t *end) {
  wsconn *ws = ws_of(c);
  if (!ws_flush_ctl(c, p, end)) {
    return 0;
  }
  if (!ws->pong_due) {
    return 1;
  }
  ws->pong_due = 0;
  ws_side *sd = ws->side; /* there while pong_due */
  memcpy(sd->out, sd->pong, sd->pong_len);
  sd->out_len = sd->pong_len;
  return take_ctl(c, WS_CTL_PONG, p, end);
}

int ws_put_ping(conn *c, uint8_t **p, uint8_t *end, tern_tstamp now) {
  wsconn *ws = ws_of(c);
  if (!ws_flush_ctl(c, p, end)) {
    return 0;
  }
  c->ping_sent = now;
  ws->ping_stamp = now;
  return take_ctl(c, WS_CTL_PING, p, end);
}

int ws_put_close(conn *c, uint8_t **p, uint8_t *end) {
  wsconn *ws = ws_of(c);
  if (!ws_flush_ctl(c, p, end)) {
    return 0;
  }
  if (ws->close != WS_CLOSE_DUE) {
    return 1;
  }
  ws->close = WS_CLOSE_SENT;
  return take_ctl(c, WS_CTL_CLOSE, p, end);
}

void ws_on_close(conn *c) {
  wsconn *ws = ws_of(c);
  ws->pong_due = 0; /* the side block goes after the CLOSE frame */
  if (ws->close == WS_OPEN) {
    ws->close = WS_CLOSE_DUE;
  }
  c->state = CONN_CLOSING;
  hub_mark_ready(c->hub, c);
}

/* ---- reading ------------------------------------------------------------ */

/* Ends the connection for what the peer sent, or for want of memory to
   take it: a CLOSE frame with |code| (0: the goaway reason's) and |why|
   (NULL: the goaway name), and no goodbye of the framing before it (the
   stream it would go in is broken).  Returns |err|. */
static tern_ssize ws_fail(conn *c, unsigned code, const char *why, int err,
                          tern_tstamp now) {
  wsconn *ws = ws_of(c);
  ws->close_code = (uint16_t)code;
  ws->close_why = why;
  int reason = TERN_GOAWAY_INTERNAL;
  if (err != TERN_ERR_NOMEM) {
    ++c->hub->stats.proto_errors;
    reason = err == TERN_ERR_TOO_LARGE ? TERN_GOAWAY_TOO_LARGE
                                       : TERN_GOAWAY_PROTO;
  }
  conn_close(c, reason, 0, err, 1, now);
  return err;
}

/* A complete tern.json message: {"ack":N}, acking as an ACK frame does. */
static tern_ssize json_message(conn *c, const uint8_t *text, size_t len,
                               tern_tstamp now) {
  uint64_t seq;
  const char *why = NULL;
  if (web_json_ack_parse(text, len, &seq, &why) != 0) {
    return ws_fail(c, WEB_WS_CLOSE_POLICY, why, TERN_ERR_PROTO, now);
  }
  if (seq >= c->session->next_seq) {
    return ws_fail(c, WEB_WS_CLOSE_POLICY, "the ack names a seq not sent",
                   TERN_ERR_PROTO, now);
  }
  conn_on_ack(c, seq);
  return 0;
}

/* Message bytes of the peer.  Returns 0 or an error (the connection is
   then closed). */
static tern_ssize on_data(conn *c, wsconn *ws, const web_ws_event *ev,
                          size_t *fed, tern_tstamp now) {
  if (c->framing == TERN_FRAMING_WS_BIN) {
    if (ev->opcode != WEB_WS_BINARY) {
      return ws_fail(c, WEB_WS_CLOSE_UNSUPPORTED,
                     "tern.bin takes binary messages", TERN_ERR_PROTO, now);
    }
    if (ev->len == 0) {
      return 0;
    }
    *fed += ev->len;
    tern_ssize n = conn_read_binary(c, ev->data, ev->len, now);
    return n < 0 ? n : 0;
  }
  if (ev->opcode != WEB_WS_TEXT) {
    return ws_fail(c, WEB_WS_CLOSE_UNSUPPORTED,
                   "tern.json takes text messages", TERN_ERR_PROTO, now);
  }
  if (ev->fin && !(ws->side && ws->side->jlen)) {
    return json_message(c, ev->data, ev->len, now); /* whole: no copy */
  }
  /* In pieces: gathered in the side block (framing_read holds it), whose
     buffer is the decoder's message limit. */
  ws_side *sd = ws->side;
  memcpy(sd->jbuf + sd->jlen, ev->data, ev->len);
  sd->jlen = (uint8_t)(sd->jlen + ev->len);
  if (!ev->fin) {
    return 0;
  }
  tern_ssize rv = json_message(c, sd->jbuf, sd->jlen, now);
  sd->jlen = 0;
  return rv;
}

static void on_pong(conn *c, const web_ws_event *ev, tern_tstamp now) {
  uint64_t stamp = 0;
  if (c->framing != TERN_FRAMING_WS_JSON || ev->len != 8) {
    return; /* tern.bin's heartbeats are its own PINGs */
  }
  for (unsigned i = 0; i < 8; ++i) {
    stamp = stamp << 8 | ev->data[i];
  }
  if (c->ping_sent && stamp == c->ping_sent && stamp <= now) {
    uint64_t us = (now - stamp) / 1000;
    c->rtt_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    c->ping_sent = 0;
  }
}

tern_ssize framing_read(conn *c, const uint8_t *in, size_t len,
                        tern_tstamp now) {
  if (!is_ws(c)) {
    return TERN_ERR_STATE; /* one-way: nothing comes from the peer */
  }
  tern_hub *hub = c->hub;
  wsconn *ws = ws_of(c);
  uint8_t out[2048]; /* unmasked message bytes, a chunk at a time */
  size_t used = 0, fed = 0;
  tern_ssize rv = 0;
  if (c->state == CONN_OPEN) {
    c->last_rx = now; /* tern.bin's handshake deadline does not move */
  }
  if (len == 0 || c->state >= CONN_CLOSING) {
    hub->stats.bytes_in += len;
    return (tern_ssize)len;
  }
  /* The decoder lives in the side block while it reads (and while it is
     in the middle of a frame or message). */
  ws_side *sd = side_get(c);
  if (!sd) {
    hub->stats.bytes_in += len;
    return ws_fail(c, 0, NULL, TERN_ERR_NOMEM, now);
  }
  while (used < len && c->state < CONN_CLOSING) {
    web_ws_event ev;
    tern_ssize n =
        web_ws_decode(&sd->dec, in + used, len - used, out, sizeof(out), &ev);
    if (n < 0) {
      rv = ws_fail(c, sd->dec.close_code, NULL, (int)n, now);
      break;
    }
    used += (size_t)n;
    switch (ev.type) {
    case WEB_WS_EV_DATA:
      rv = on_data(c, ws, &ev, &fed, now);
      break;
    case WEB_WS_EV_PING:
      /* Answered once; a newer PING replaces one not answered yet. */
      memcpy(sd->pong, ev.data, ev.len);
      sd->pong_len = (uint8_t)ev.len;
      ws->pong_due = 1;
      hub_mark_ready(hub, c);
      break;
    case WEB_WS_EV_PONG:
      on_pong(c, &ev, now);
      break;
    case WEB_WS_EV_CLOSE:
      /* Echo its code (none for none) and end quietly. */
      if (ev.close_code == WEB_WS_CLOSE_NO_STATUS) {
        ws->close_empty = 1;
      } else {
        ws->close_code = (uint16_t)ev.close_code;
      }
      conn_close(c, TERN_GOAWAY_CLIENT, 0, 0, 1, now);
      break;
    default:
      break;
    }
    if (rv < 0) {
      break;
    }
  }
  hub->stats.bytes_in += len - fed; /* conn_read_binary counted the rest */
  side_trim(c);
  return rv < 0 ? rv : (tern_ssize)len;
}

/* ---- tern.bin writing --------------------------------------------------- */

int ws_bin_wants_write(const conn *c) {
  if (c->state == CONN_CLOSED) {
    return 0;
  }
  return ws_ctl_waits(ws_of(c)) || conn_binary_wants_write(c);
}

/*
 * One binary message per write: the binary framing writes into the
 * buffer after room for the longest header the rest of it could need,
 * and the header goes in front (the bytes move down when a shorter one
 * does: RFC 6455 asks for the shortest length encoding).  So a message
 * is always complete, and control frames go between two writes.
 */
tern_ssize ws_bin_write(conn *c, uint8_t *buf, size_t cap, tern_tstamp now) {
  tern_hub *hub = c->hub;
  wsconn *ws = ws_of(c);
  uint8_t *p = buf, *end = buf + cap;
  size_t payload = 0;
  tern_ssize rv = 0;
  if (!ws_put_pong(c, &p, end)) {
    goto done;
  }
  if (ws->close != WS_CLOSE_SENT && conn_binary_wants_write(c)) {
    size_t room = (size_t)(end - p), head, max;
    if (room >= 0x10000 + 10) {
      head = 10;
      max = room - 10;
    } else if (room >= 126 + 4) {
      head = 4;
      max = room - 4 < 0xffff ? room - 4 : 0xffff;
    } else {
      head = 2;
      max = room < 3 ? 0 : room - 2 < 125 ? room - 2 : 125;
    }
    if (max > 0) {
      tern_ssize n = conn_write_binary(c, p + head, max, now);
      if (n > 0) {
        size_t hl = web_ws_header_len((uint64_t)n, 0);
        if (hl < head) {
          memmove(p + hl, p + head, (size_t)n);
        }
        web_ws_header_write(p, 1, WEB_WS_BINARY, (uint64_t)n, NULL);
        p += hl + (size_t)n;
        payload = (size_t)n;
      } else if (n < 0 && n != TERN_ERR_CLOSED) {
        rv = n; /* NOMEM: conn_write_binary armed the retry */
      }
    }
  }
  if (ws->close == WS_CLOSE_DUE &&
      (c->state == CONN_CLOSED || !conn_binary_wants_write(c))) {
    /* The binary framing said all it had (its GOAWAY too): CLOSE last. */
    c->state = CONN_CLOSING;
    ws_put_close(c, &p, end);
  }
  if (ws->close == WS_CLOSE_SENT && ws->ctl == WS_CTL_NONE &&
      !conn_binary_wants_write(c)) {
    c->state = CONN_CLOSED;
  }
done:
  if (p != buf) {
    c->last_tx = now;
    hub->stats.bytes_out += (size_t)(p - buf) - payload;
  }
  if (ws_bin_wants_write(c)) {
    hub_mark_ready(hub, c);
  } else {
    hub_unready(hub, c);
  }
  if (p == buf) {
    if (rv < 0) {
      return rv;
    }
    if (c->state == CONN_CLOSED) {
      return TERN_ERR_CLOSED;
    }
  }
  return p - buf;
}

/* ---- the opening handshake ---------------------------------------------- */

int tern_ws_handshake(const char *key, size_t keylen, const char *version,
                      size_t versionlen, const char *protocols,
                      size_t protocolslen, int default_framing,
                      tern_ws_answer *answer, size_t size) {
  if (!answer || size == 0 ||
      (default_framing != 0 && default_framing != TERN_FRAMING_WS_BIN &&
       default_framing != TERN_FRAMING_WS_JSON)) {
    return TERN_ERR_INVALID;
  }
  unsigned proto = WEB_WS_PROTO_NONE;
  tern_ws_answer a;
  memset(&a, 0, sizeof(a));
  switch (web_ws_handshake(key, keylen, version, versionlen, protocols,
                           protocolslen, WEB_WS_PROTO_BIN | WEB_WS_PROTO_JSON,
                           &proto, a.accept)) {
  case WEB_WS_HS_OK:
    break;
  case WEB_WS_HS_BAD_VERSION:
    return TERN_ERR_PROTO;
  case WEB_WS_HS_NO_PROTOCOL:
    return TERN_ERR_NOT_FOUND;
  default:
    return TERN_ERR_INVALID;
  }
  if (proto == WEB_WS_PROTO_NONE) {
    if (default_framing == 0) {
      return TERN_ERR_NOT_FOUND;
    }
    a.framing = default_framing;
  } else {
    a.framing = proto == WEB_WS_PROTO_BIN ? TERN_FRAMING_WS_BIN
                                          : TERN_FRAMING_WS_JSON;
    a.protocol = web_ws_proto_name(proto);
  }
  a.accept[TERN_WS_ACCEPT_LEN] = '\0';
  layout_copy_out(answer, size, &a, sizeof(a));
  return 0;
}
