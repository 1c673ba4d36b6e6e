/*
 * WebSocket connections (lib/deliver/wsconn.c, TERN_FRAMING_WS_BIN and
 * _WS_JSON): the handshake helper against RFC 6455's example, both
 * subprotocols end to end through a hub with a client of our own that
 * masks its frames and decodes the server's (which must not be masked),
 * fragments and frames cut across reads at every byte, PING/PONG both
 * ways, heartbeats and liveness, every CLOSE path with its code, size
 * limits, and bad input that changes nothing but its own connection.
 */
#include "deliver/web.h"
#include "tap.h"
#include "testutil.h"
#include "web/ws.h"

static const uint8_t *K(const char *s) { return (const uint8_t *)s; }

/* ---- the client ---------------------------------------------------------- */

/* One message or control frame the server sent. */
typedef struct wsmsg {
  int kind; /* 'T' text, 'B' binary, 'P' ping, 'O' pong, 'C' close */
  unsigned code;
  uint8_t *data;
  size_t len;
} wsmsg;

typedef struct wsc {
  tern_conn *c;
  web_ws_decoder dec; /* the server's frames, as a client decodes them */
  wsmsg msgs[256];
  size_t n;
  uint8_t cur[1 << 16]; /* the open message */
  size_t curlen;
  uint8_t stream[1 << 16]; /* tern.bin: the binary messages' bytes */
  size_t streamlen;
  size_t nbin;   /* binary messages */
  int bad;       /* the server wrote something a client must refuse */
  int closed;    /* tern_conn_write returned TERN_ERR_CLOSED */
  int after_close; /* bytes after the server's CLOSE */
  tern_ssize last;
} wsc;

static void wsc_init(wsc *w, tern_conn *c) {
  memset(w, 0, sizeof(*w));
  w->c = c;
  web_ws_decoder_init(&w->dec, WEB_WS_CLIENT, 1 << 20, 1 << 20);
}

static void wsc_free(wsc *w) {
  for (size_t i = 0; i < w->n; ++i) {
    free(w->msgs[i].data);
  }
  w->n = 0;
}

static void add(wsc *w, int kind, unsigned code, const uint8_t *p, size_t n) {
  if (w->n == sizeof(w->msgs) / sizeof(w->msgs[0])) {
    BAILOUT("too many messages");
  }
  wsmsg *m = &w->msgs[w->n++];
  m->kind = kind;
  m->code = code;
  m->data = tu_xmalloc(n + 1);
  if (n) {
    memcpy(m->data, p, n);
  }
  m->data[n] = 0;
  m->len = n;
}

/* Decodes what the server wrote. */
static void wsc_take(wsc *w, const uint8_t *p, size_t len) {
  uint8_t out[4096];
  if (w->dec.state == 2 && len) { /* finished: the CLOSE came */
    w->after_close = 1;
    return;
  }
  while (len) {
    web_ws_event ev;
    tern_ssize n = web_ws_decode(&w->dec, p, len, out, sizeof(out), &ev);
    if (n < 0) {
      w->bad = 1;
      return;
    }
    p += n;
    len -= (size_t)n;
    switch (ev.type) {
    case WEB_WS_EV_DATA:
      memcpy(w->cur + w->curlen, ev.data, ev.len);
      w->curlen += ev.len;
      if (ev.opcode == WEB_WS_BINARY) {
        memcpy(w->stream + w->streamlen, ev.data, ev.len);
        w->streamlen += ev.len;
      }
      if (ev.fin) {
        if (ev.opcode == WEB_WS_TEXT) {
          add(w, 'T', 0, w->cur, w->curlen);
        } else {
          ++w->nbin; /* the bytes are in |stream| */
        }
        w->curlen = 0;
      }
      break;
    case WEB_WS_EV_PING:
      add(w, 'P', 0, ev.data, ev.len);
      break;
    case WEB_WS_EV_PONG:
      add(w, 'O', 0, ev.data, ev.len);
      break;
    case WEB_WS_EV_CLOSE:
      add(w, 'C', ev.close_code, ev.data, ev.len);
      if (len) {
        w->after_close = 1;
      }
      return;
    default:
      break;
    }
  }
}

/* Writes with |cap| until 0 or an error. */
static void wsc_drain_cap(wsc *w, size_t cap, tern_tstamp now) {
  static uint8_t buf[1 << 17];
  for (int i = 0; i < 100000; ++i) {
    tern_ssize n = tern_conn_write(w->c, buf, cap, now);
    w->last = n;
    if (n == TERN_ERR_CLOSED) {
      w->closed = 1;
    }
    if (n <= 0) {
      return;
    }
    wsc_take(w, buf, (size_t)n);
  }
}

static void wsc_drain(wsc *w, tern_tstamp now) {
  wsc_drain_cap(w, sizeof(uint8_t[1 << 16]), now);
}

/* A frame as a client sends it: masked with |mask| (NULL: unmasked, which
   a server refuses).  Returns its size. */
static size_t frame(uint8_t *out, int fin, int opcode, const void *payload,
                    size_t len, const uint8_t *mask) {
  size_t h = web_ws_header_write(out, fin, opcode, len, mask);
  if (len) {
    memcpy(out + h, payload, len);
    if (mask) {
      web_ws_mask(out + h, len, mask, 0);
    }
  }
  return h + len;
}

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Feeds |len| bytes in pieces of |piece| (0: at once); returns the last
   result. */
static tern_ssize feed(tern_conn *c, const uint8_t *p, size_t len,
                       size_t piece, tern_tstamp now) {
  if (piece == 0) {
    return tern_conn_read(c, p, len, now);
  }
  for (size_t at = 0; at < len; at += piece) {
    size_t n = len - at < piece ? len - at : piece;
    tern_ssize rv = tern_conn_read(c, p + at, n, now);
    if (rv != (tern_ssize)n) {
      return rv < 0 ? rv : -1;
    }
  }
  return (tern_ssize)len;
}

static tern_ssize send_frame(wsc *w, int fin, int opcode, const void *p,
                             size_t len, tern_tstamp now) {
  static uint8_t buf[1 << 17];
  size_t n = frame(buf, fin, opcode, p, len, MASK);
  return tern_conn_read(w->c, buf, n, now);
}

static tern_ssize send_text(wsc *w, const char *s, tern_tstamp now) {
  return send_frame(w, 1, WEB_WS_TEXT, s, strlen(s), now);
}

static const wsmsg *last_of(const wsc *w, int kind) {
  for (size_t i = w->n; i-- > 0;) {
    if (w->msgs[i].kind == kind) {
      return &w->msgs[i];
    }
  }
  return NULL;
}

static size_t count_of(const wsc *w, int kind) {
  size_t k = 0;
  for (size_t i = 0; i < w->n; ++i) {
    k += w->msgs[i].kind == kind;
  }
  return k;
}

/* The server's CLOSE is its last frame, with |code| and |why|. */
static void check_close(const wsc *w, unsigned code, const char *why,
                        const char *what) {
  const wsmsg *m = w->n ? &w->msgs[w->n - 1] : NULL;
  int ok = m && m->kind == 'C' && m->code == code &&
           (!why || (m->len == strlen(why) && memcmp(m->data, why, m->len) == 0));
  CHECK(ok, "%s: CLOSE %u", what, code);
  if (!ok && m) {
    printf("#   last frame %c code %u reason '%s'\n", m->kind, m->code,
           (const char *)m->data);
  }
  CHECK(w->closed && !w->bad && !w->after_close,
        "%s: then TERN_ERR_CLOSED, nothing after", what);
}

static tern_stream_opts ws_opts(int framing, const char *key) {
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = framing;
  if (key) {
    o.key = K(key);
    o.keylen = strlen(key);
  }
  return o;
}

static tern_conn *open_ws(tern_hub *hub, int framing, const char *key,
                          tern_tstamp now) {
  tern_stream_opts o = ws_opts(framing, key);
  tern_conn *c = NULL;
  int rv = tern_conn_new_stream(&c, hub, &o, now);
  if (rv != 0) {
    printf("# tern_conn_new_stream: %s\n", tern_strerror(rv));
    BAILOUT("cannot open a WebSocket connection");
  }
  return c;
}

/* tern.bin: a frame of tern-protocol(7) in one binary message. */
static tern_ssize send_wire(wsc *w, const wire_frame *f, tern_tstamp now) {
  uint8_t body[1024];
  size_t n = tu_encode(body, sizeof(body), f);
  return send_frame(w, 1, WEB_WS_BINARY, body, n, now);
}

static tern_ssize send_hello(wsc *w, const char *key, tern_tstamp now) {
  uint8_t body[1024];
  size_t n = tu_hello_bytes(body, sizeof(body), key, 0, 0, 0, NULL);
  return send_frame(w, 1, WEB_WS_BINARY, body, n, now);
}

static tern_ssize send_ack(wsc *w, uint64_t seq, tern_tstamp now) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_ACK;
  f.u.ack_seq = seq;
  return send_wire(w, &f, now);
}

/* The tern.bin stream's frames so far. */
static size_t wire_frames(const wsc *w, wire_frame *out, size_t max) {
  size_t at = 0, n = 0;
  while (at < w->streamlen && n < max) {
    tern_ssize k = wire_frame_decode(&out[n], w->stream + at,
                                     w->streamlen - at, 1 << 20);
    if (k <= 0) {
      break;
    }
    at += (size_t)k;
    ++n;
  }
  return n;
}

static size_t count_wire(const wsc *w, uint8_t type) {
  wire_frame f[256];
  size_t n = wire_frames(w, f, 256), k = 0;
  for (size_t i = 0; i < n; ++i) {
    k += f[i].type == type;
  }
  return k;
}

static tern_event next_end(tern_hub *hub, tern_conn *c) {
  tern_event ev, end;
  memset(&end, 0, sizeof(end));
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (ev.conn == c && (ev.type == TERN_EV_CONN_CLOSED ||
                         ev.type == TERN_EV_CONN_DEAD)) {
      end = ev;
    }
  }
  return end;
}

/* ---- the handshake -------------------------------------------------------- */

static int hs(const char *key, const char *version, const char *protos,
              int dflt, tern_ws_answer *a) {
  return tern_ws_handshake(key, key ? strlen(key) : 0, version,
                           version ? strlen(version) : 0, protos,
                           protos ? strlen(protos) : 0, dflt, a, sizeof(*a));
}

static void test_handshake(void) {
  tern_ws_answer a;
  const char *rfc = "dGhlIHNhbXBsZSBub25jZQ==";
  memset(&a, 0xaa, sizeof(a));
  CHECK_INT(hs(rfc, "13", "chat, tern.json", 0, &a), 0, "RFC 6455 example");
  /* RFC 6455, 1.3 (and Python's hashlib agree). */
  CHECK(strcmp(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
        "its Sec-WebSocket-Accept is the RFC's");
  CHECK_INT(strlen(a.accept), TERN_WS_ACCEPT_LEN, "28 characters and a NUL");
  CHECK(a.framing == TERN_FRAMING_WS_JSON && a.protocol &&
            strcmp(a.protocol, "tern.json") == 0,
        "tern.json chosen from 'chat, tern.json'");

  CHECK_INT(hs(" dGhlIHNhbXBsZSBub25jZQ==\t", " 13 ", "tern.bin,tern.json",
               0, &a), 0, "spaces around the values");
  CHECK(a.framing == TERN_FRAMING_WS_BIN && strcmp(a.protocol, "tern.bin") == 0,
        "the client's first choice wins");
  CHECK_INT(hs(rfc, "13", NULL, TERN_FRAMING_WS_JSON, &a), 0,
            "no subprotocol offered: the default");
  CHECK(a.framing == TERN_FRAMING_WS_JSON && a.protocol == NULL,
        "... and no Sec-WebSocket-Protocol in the answer");
  CHECK_INT(hs(rfc, "13", "", TERN_FRAMING_WS_BIN, &a), 0, "an empty header");
  CHECK(a.framing == TERN_FRAMING_WS_BIN && a.protocol == NULL, "default bin");

  tern_ws_answer before;
  memset(&a, 0x5c, sizeof(a));
  before = a;
  CHECK_INT(hs(rfc, "13", NULL, 0, &a), TERN_ERR_NOT_FOUND,
            "none offered, no default: 400");
  CHECK_INT(hs(rfc, "13", "chat, superchat", TERN_FRAMING_WS_JSON, &a),
            TERN_ERR_NOT_FOUND, "only others offered: 400 (even with a "
                                "default)");
  CHECK_INT(hs(rfc, "13", "tern.JSON", 0, &a), TERN_ERR_NOT_FOUND,
            "names are case-sensitive");
  CHECK_INT(hs(rfc, "8", "tern.json", 0, &a), TERN_ERR_PROTO,
            "version 8: 426");
  CHECK_INT(hs(rfc, NULL, "tern.json", 0, &a), TERN_ERR_PROTO,
            "no version: 426");
  CHECK_INT(hs(NULL, "13", "tern.json", 0, &a), TERN_ERR_INVALID,
            "no key: 400");
  CHECK_INT(hs("dGhlIHNhbXBsZSBub25jZQ", "13", "tern.json", 0, &a),
            TERN_ERR_INVALID, "a key without its padding: 400");
  CHECK_INT(hs("dGhlIHNhbXBsZSBub25jZQ==AAAA", "13", "tern.json", 0, &a),
            TERN_ERR_INVALID, "a key of 19 bytes: 400");
  CHECK_INT(hs("dGhlIHNhbXBsZSBub25j*Q==", "13", "tern.json", 0, &a),
            TERN_ERR_INVALID, "a key that is not base64: 400");
  CHECK_INT(hs(rfc, "13", "tern.json, a b", 0, &a), TERN_ERR_INVALID,
            "a protocol list that is not tokens: 400");
  CHECK_INT(hs(rfc, "13", "tern.json", 3, &a), TERN_ERR_INVALID,
            "a default that is no WebSocket framing");
  CHECK_INT(tern_ws_handshake(rfc, strlen(rfc), "13", 2, NULL, 0,
                              TERN_FRAMING_WS_JSON, NULL, sizeof(a)),
            TERN_ERR_INVALID, "NULL answer");
  CHECK(memcmp(&a, &before, sizeof(a)) == 0, "answer untouched on errors");

  /* An older, shorter answer gets its prefix only. */
  struct {
    int framing;
    uint8_t guard[32];
  } small;
  memset(&small, 0x77, sizeof(small));
  CHECK_INT(tern_ws_handshake(rfc, strlen(rfc), "13", 2, "tern.bin", 8, 0,
                              (tern_ws_answer *)(void *)&small,
                              sizeof(int)),
            0, "a shorter answer");
  CHECK(small.framing == TERN_FRAMING_WS_BIN && small.guard[0] == 0x77 &&
            small.guard[31] == 0x77,
        "nothing written past its size");
}

/* ---- tern.json ------------------------------------------------------------ */

#define ENV1 "{\"seq\":1,\"id\":\"a1\",\"prio\":\"normal\",\"ct\":\"text/plain\",\"data\":\"hello\"}"

static int pub(tern_hub *hub, const char *key, const char *id,
               const void *payload, size_t len, tern_tstamp now) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = K(id);
  d.idlen = strlen(id);
  d.content_type = "text/plain";
  d.payload = payload;
  d.payloadlen = len;
  return tern_hub_publish(hub, K(key), strlen(key), &d, now, NULL);
}

static void test_json_end_to_end(void) {
  static wsc w;
  size_t caps[] = {65536, 40, 7, 1};
  for (size_t k = 0; k < 4; ++k) {
    tern_hub *hub = tu_hub(NULL);
    tern_conn *c = open_ws(hub, TERN_FRAMING_WS_JSON, "alice", T0);
    wsc_init(&w, c);
    pub(hub, "alice", "a1", "hello", 5, T0);
    pub(hub, "alice", "b2", "\xff\xfe", 2, T0);
    wsc_drain_cap(&w, caps[k], T0);
    CHECK(!w.bad && w.n == 2, "two text messages, unmasked (cap %zu)",
          caps[k]);
    CHECK(w.n == 2 && w.msgs[0].kind == 'T' &&
              strcmp((char *)w.msgs[0].data, ENV1) == 0,
          "the first is its envelope");
    CHECK(w.n == 2 &&
              strcmp((char *)w.msgs[1].data,
                     "{\"seq\":2,\"id\":\"b2\",\"prio\":\"normal\","
                     "\"ct\":\"text/plain\",\"enc\":\"base64\","
                     "\"data\":\"//4=\"}") == 0,
          "a payload that is not UTF-8 goes in base64");
    CHECK_INT(tu_stats(hub).inflight, 2, "both in flight");
    CHECK_INT(send_text(&w, "{\"ack\":1}", T0), 2 + 4 + 9,
              "{\"ack\":1} read: the whole frame consumed");
    CHECK_INT(tu_stats(hub).acked, 1, "acks the first");
    CHECK_INT(send_text(&w, " { \"ack\" : 2 } ", T0), 2 + 4 + 15,
              "{\"ack\":2} with spaces");
    CHECK_INT(tu_stats(hub).acked, 2, "and the second");
    CHECK_INT(tu_stats(hub).messages, 0, "nothing held");
    CHECK(!tern_conn_want_write(c), "nothing to write");
    tern_conn_del(c);
    tern_hub_del(hub);
    wsc_free(&w);
  }
}

/* A loss is one text message, before the next envelope. */
static void test_json_dropped(void) {
  static wsc w;
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_JSON, "d", T0);
  wsc_init(&w, c);
  tu_pub_full(hub, "d", TERN_PRIO_NORMAL, "old", NULL, SEC(1), "x", T0, NULL);
  tern_hub_handle_expiry(hub, T0 + SEC(2));
  pub(hub, "d", "new", "y", 1, T0 + SEC(2));
  wsc_drain(&w, T0 + SEC(2));
  CHECK(w.n == 2 && w.msgs[0].kind == 'T' &&
            strcmp((char *)w.msgs[0].data,
                   "{\"dropped\":{\"count\":1,\"reason\":\"expired\"}}") == 0,
        "the loss notice as a text message");
  CHECK(w.n == 2 && strstr((char *)w.msgs[1].data, "\"id\":\"new\"") != NULL,
        "then the next message");
  tern_conn_del(c);
  tern_hub_del(hub);
  wsc_free(&w);
}

/* A fragmented ack, a PING between its fragments, every byte its own
   read. */
static void test_json_fragments(void) {
  static wsc w;
  static uint8_t bytes[512];
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_JSON, "frag", T0);
  wsc_init(&w, c);
  for (int i = 0; i < 3; ++i) {
    char id[8];
    snprintf(id, sizeof id, "m%d", i);
    pub(hub, "frag", id, "x", 1, T0);
  }
  wsc_drain(&w, T0);
  CHECK_INT(count_of(&w, 'T'), 3, "three messages");
  size_t n = 0;
  n += frame(bytes + n, 0, WEB_WS_TEXT, "{\"ac", 4, MASK);
  n += frame(bytes + n, 1, WEB_WS_PING, "hi!", 3, MASK);
  n += frame(bytes + n, 0, WEB_WS_CONT, "", 0, MASK);
  n += frame(bytes + n, 0, WEB_WS_CONT, "k\":", 3, MASK);
  n += frame(bytes + n, 1, WEB_WS_CONT, "3}", 2, MASK);
  CHECK_INT(feed(c, bytes, n, 1, T0), n, "fed byte by byte");
  CHECK_INT(tu_stats(hub).acked, 3, "the fragmented ack acks all three");
  wsc_drain(&w, T0);
  const wsmsg *p = last_of(&w, 'O');
  CHECK(p && p->len == 3 && memcmp(p->data, "hi!", 3) == 0,
        "the PING between fragments is answered with its payload");
  /* Two PINGs before a write: one PONG, the newer payload. */
  send_frame(&w, 1, WEB_WS_PING, "one", 3, T0);
  send_frame(&w, 1, WEB_WS_PING, "two", 3, T0);
  size_t pongs = count_of(&w, 'O');
  wsc_drain(&w, T0);
  p = last_of(&w, 'O');
  CHECK(count_of(&w, 'O') == pongs + 1 && p && memcmp(p->data, "two", 3) == 0,
        "two PINGs: the newer one is answered");
  /* A PONG nobody asked for is ignored. */
  CHECK_INT(send_frame(&w, 1, WEB_WS_PONG, "zz", 2, T0), 8, "stray PONG");
  CHECK(!tern_conn_is_closed(c), "still open");
  tern_conn_del(c);
  tern_hub_del(hub);
  wsc_free(&w);
}

/* What a tern.json connection holds only while it needs it: an idle one
   keeps no side block (the hub keeps one spare, so reading allocates
   nothing); a frame cut across reads keeps it; a PONG cut across writes
   stays whole while a newer PING waits for its turn; a message in pieces
   is gathered, then let go. */
static void test_json_side(void) {
  static wsc w;
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem m = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, &s, &m) != 0) {
    BAILOUT("side: hub");
  }
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_JSON, "side", T0);
  wsc_init(&w, c);
  pub(hub, "side", "m1", "x", 1, T0);
  wsc_drain(&w, T0);
  send_text(&w, "{\"ack\":1}", T0);
  const wsconn *ws = ws_of((const conn *)c);
  CHECK(tu_stats(hub).acked == 1 && ws->side == NULL,
        "side: acked whole, and nothing held");
  long idle = a.outstanding; /* the hub's spare among them */
  static uint8_t cut[16];
  size_t cutn = frame(cut, 1, WEB_WS_TEXT, "{\"ack\":1}", 9, MASK);
  CHECK(feed(c, cut, 4, 4, T0) == 4 && ws->side != NULL &&
            a.outstanding == idle,
        "side: a frame cut across reads keeps the spare block");
  CHECK(feed(c, cut + 4, cutn - 4, 1, T0) == (tern_ssize)(cutn - 4) &&
            ws->side == NULL && !tern_conn_is_closed(c),
        "side: its rest, a byte at a time, and it is let go");
  char one[100], two[100];
  memset(one, 'a', sizeof(one));
  memset(two, 'b', sizeof(two));
  send_frame(&w, 1, WEB_WS_PING, one, sizeof(one), T0);
  CHECK(ws->side != NULL && a.outstanding == idle,
        "side: a PING to answer takes the block");
  uint8_t buf[7];
  tern_ssize n = tern_conn_write(c, buf, sizeof(buf), T0);
  CHECK_INT(n, 7, "side: 7 bytes of the PONG written");
  if (n > 0) {
    wsc_take(&w, buf, (size_t)n);
  }
  send_frame(&w, 1, WEB_WS_PING, two, sizeof(two), T0);
  wsc_drain_cap(&w, 3, T0);
  const wsmsg *o1 = count_of(&w, 'O') == 2 ? &w.msgs[w.n - 2] : NULL;
  const wsmsg *o2 = last_of(&w, 'O');
  CHECK(!w.bad && o1 && o1->kind == 'O' && o1->len == 100 &&
            memcmp(o1->data, one, 100) == 0 && o2 && o2->len == 100 &&
            memcmp(o2->data, two, 100) == 0,
        "side: the cut PONG whole, then the newer PING's");
  CHECK(ws->side == NULL && a.outstanding == idle,
        "side: both answered, the block is given back");
  send_frame(&w, 0, WEB_WS_TEXT, "{\"ack\"", 6, T0);
  CHECK(ws->side != NULL, "side: a message in pieces is kept");
  send_frame(&w, 1, WEB_WS_CONT, ":1}", 3, T0);
  CHECK(ws->side == NULL && a.outstanding == idle && !tern_conn_is_closed(c),
        "side: once whole, read and let go");
  wsc_drain(&w, T0);
  tern_conn_del(c);
  tern_hub_del(hub);
  CHECK(tu_alloc_finish(&a) == 0 && a.bad_frees == 0,
        "side: every block freed, once");
  wsc_free(&w);
}

/* Heartbeats are PINGs carrying the time; the PONG gives the rtt; a peer
   that answers nothing is dead. */
static void test_json_heartbeat(void) {
  static wsc w;
  tern_settings s = tu_settings(); /* heartbeat 4 s, liveness 7 s */
  tern_hub *hub = tu_hub(&s);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_JSON, "hb", T0);
  wsc_init(&w, c);
  wsc_drain(&w, T0);
  CHECK_INT(w.n, 0, "nothing at first");
  tern_tstamp t = T0 + SEC(4);
  CHECK(tern_hub_get_expiry(hub) <= t, "a heartbeat deadline");
  tern_hub_handle_expiry(hub, t);
  wsc_drain(&w, t);
  const wsmsg *p = last_of(&w, 'P');
  CHECK(p && p->len == 8, "a PING of 8 bytes after 4 s");
  if (!p) {
    return;
  }
  send_frame(&w, 1, WEB_WS_PONG, p->data, p->len, t + MS(30));
  tern_conn_info ci = tu_conn_info(c);
  CHECK_INT(ci.rtt, MS(30), "its PONG gives the round trip");
  CHECK_INT(ci.heartbeat_interval, SEC(4), "heartbeat 4 s");
  CHECK_INT(ci.liveness_timeout, SEC(7), "liveness 7 s");
  /* Now silence: PINGs go out, nothing comes back. */
  tern_tstamp u = t + MS(30);
  for (int i = 0; i < 40 && !tern_conn_is_closed(c); ++i) {
    u += MS(500);
    tern_hub_handle_expiry(hub, u);
    wsc_drain(&w, u);
  }
  CHECK(tern_conn_is_closed(c), "a silent peer is closed");
  CHECK(u <= t + MS(30) + SEC(7) + MS(500) && u >= t + MS(30) + SEC(7),
        "after its liveness (7 s)");
  tern_event ev = next_end(hub, c);
  CHECK(ev.type == TERN_EV_CONN_DEAD && ev.reason == TERN_GOAWAY_TIMEOUT,
        "TERN_EV_CONN_DEAD");
  const wsmsg *g = last_of(&w, 'T');
  CHECK(g && strcmp((char *)g->data,
                    "{\"goaway\":{\"reason\":\"timeout\",\"retry\":0}}") == 0,
        "the goodbye as a text message");
  check_close(&w, 1001, "timeout", "liveness");
  CHECK_INT(tu_stats(hub).conns_dead, 1, "counted dead");
  tern_conn_del(c);
  tern_hub_del(hub);
  wsc_free(&w);
}

/* ---- tern.bin ------------------------------------------------------------- */

static void test_bin_end_to_end(void) {
  static wsc w;
  size_t caps[] = {65536, 200, 20, 3};
  for (size_t k = 0; k < 4; ++k) {
    tern_hub *hub = tu_hub(NULL);
    tern_conn *c = open_ws(hub, TERN_FRAMING_WS_BIN, NULL, T0);
    wsc_init(&w, c);
    CHECK(tern_conn_get_session(c) == NULL, "not bound before HELLO");
    CHECK(send_hello(&w, "bob", T0) > 0, "HELLO in a binary message");
    CHECK(tern_conn_get_session(c) != NULL, "bound by it");
    pub(hub, "bob", "a1", "hello", 5, T0);
    static char big[3000];
    memset(big, 'z', sizeof big);
    pub(hub, "bob", "b2", big, sizeof big, T0);
    wsc_drain_cap(&w, caps[k], T0);
    wire_frame f[16];
    size_t n = wire_frames(&w, f, 16);
    CHECK(!w.bad && n == 3 && f[0].type == WIRE_WELCOME &&
              f[1].type == WIRE_MSG && f[2].type == WIRE_MSG,
          "WELCOME and two MSG frames in binary messages (cap %zu)", caps[k]);
    CHECK(n == 3 && f[1].u.msg.seq == 1 && f[1].u.msg.payloadlen == 5 &&
              memcmp(f[1].u.msg.payload, "hello", 5) == 0 &&
              f[2].u.msg.payloadlen == sizeof big,
          "their payloads");
    CHECK(w.nbin >= 1 && count_of(&w, 'T') == 0, "binary messages only");
    CHECK(send_ack(&w, 2, T0) > 0, "ACK in a binary message");
    CHECK_INT(tu_stats(hub).acked, 2, "both acked");
    /* A PING of the binary framing, and one of WebSocket's. */
    wire_frame ping;
    memset(&ping, 0, sizeof(ping));
    ping.type = WIRE_PING;
    ping.u.ping = 77;
    send_wire(&w, &ping, T0);
    send_frame(&w, 1, WEB_WS_PING, "ws", 2, T0);
    wsc_drain_cap(&w, caps[k], T0);
    n = wire_frames(&w, f, 16);
    CHECK(n == 4 && f[3].type == WIRE_PONG && f[3].u.ping == 77,
          "the binary PING is answered in-band");
    const wsmsg *p = last_of(&w, 'O');
    CHECK(p && p->len == 2 && memcmp(p->data, "ws", 2) == 0,
          "the WebSocket PING with a PONG");
    tern_conn_del(c);
    tern_hub_del(hub);
    wsc_free(&w);
  }
}

/* The binary stream may cut its frames anywhere: a HELLO split over two
   messages, and then the whole thing fed a byte at a time. */
static void test_bin_split(void) {
  static wsc w;
  static uint8_t bytes[1024];
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_BIN, NULL, T0);
  wsc_init(&w, c);
  uint8_t hello[256];
  size_t hn = tu_hello_bytes(hello, sizeof(hello), "carol", 0, 0, 0, NULL);
  uint8_t ack[16];
  size_t an = tu_ack_bytes(ack, sizeof(ack), 1);
  size_t n = 0;
  n += frame(bytes + n, 1, WEB_WS_BINARY, hello, 3, MASK);
  n += frame(bytes + n, 0, WEB_WS_BINARY, hello + 3, hn - 3, MASK);
  n += frame(bytes + n, 1, WEB_WS_CONT, NULL, 0, MASK);
  CHECK_INT(feed(c, bytes, n, 1, T0), n, "byte by byte");
  CHECK(tern_conn_get_session(c) != NULL, "the split HELLO binds");
  pub(hub, "carol", "x", "1", 1, T0);
  wsc_drain(&w, T0);
  CHECK_INT(count_wire(&w, WIRE_MSG), 1, "its message");
  n = frame(bytes, 1, WEB_WS_BINARY, ack, an, MASK);
  CHECK_INT(feed(c, bytes, n, 2, T0), n, "ACK in pieces of 2");
  CHECK_INT(tu_stats(hub).acked, 1, "acked");
  tern_conn_del(c);
  tern_hub_del(hub);
  wsc_free(&w);
}

static void test_bin_hello_accept(void) {
  static wsc w;
  tern_settings s = tu_settings();
  s.hello_accept = 1;
  tern_hub *hub = tu_hub(&s);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_BIN, NULL, T0);
  wsc_init(&w, c);
  send_hello(&w, "dave", T0);
  tern_event ev;
  int hello = 0;
  while (tern_hub_next_event(hub, &ev) == 1) {
    hello |= ev.type == TERN_EV_CONN_HELLO && ev.conn == c;
  }
  CHECK(hello, "TERN_EV_CONN_HELLO as on TCP");
  CHECK_INT(tern_conn_accept(c, T0), 0, "accepted");
  wsc_drain(&w, T0);
  CHECK_INT(count_wire(&w, WIRE_WELCOME), 1, "WELCOME");
  /* No HELLO in time on another: closed (TIMEOUT), CLOSE 1001. */
  static wsc v;
  tern_conn *d = open_ws(hub, TERN_FRAMING_WS_BIN, NULL, T0);
  wsc_init(&v, d);
  tern_hub_handle_expiry(hub, T0 + SEC(8));
  wsc_drain(&v, T0 + SEC(8));
  CHECK_INT(count_wire(&v, WIRE_GOAWAY), 1, "no HELLO in time: GOAWAY");
  check_close(&v, 1001, "timeout", "handshake timeout");
  tern_conn_del(c);
  tern_conn_del(d);
  tern_hub_del(hub);
  wsc_free(&w);
  wsc_free(&v);
}

/* ---- closing -------------------------------------------------------------- */

typedef struct bad_case {
  const char *what;
  int framing;
  uint8_t bytes[300];
  size_t len;
  tern_ssize err;
  unsigned code;
  const char *why;
  int reason; /* of the end event */
} bad_case;

static size_t raw(uint8_t *out, const char *hex) {
  size_t n = 0;
  unsigned v;
  while (*hex && sscanf(hex, "%2x", &v) == 1) {
    out[n++] = (uint8_t)v;
    hex += 2;
    while (*hex == ' ') {
      ++hex;
    }
  }
  return n;
}

/* Runs one bad input on a fresh connection beside a healthy one of
   another session, and checks the close and that nothing else changed. */
static void run_bad(const bad_case *b) {
  static wsc w;
  tern_hub *hub = tu_hub(NULL);
  tern_conn *other = open_ws(hub, TERN_FRAMING_WS_JSON, "other", T0);
  pub(hub, "other", "o1", "x", 1, T0);
  pub(hub, "other", "o2", "y", 1, T0);
  static uint8_t buf[4096];
  tern_ssize ow = tern_conn_write(other, buf, 100, T0); /* one in flight */
  tern_session_info oi = tu_info(hub, "other");
  CHECK(ow > 0 && oi.inflight == 1, "%s: the other has one in flight",
        b->what);
  tern_conn *c = open_ws(hub, b->framing,
                         b->framing == TERN_FRAMING_WS_JSON ? "victim" : NULL,
                         T0);
  wsc_init(&w, c);
  if (b->framing == TERN_FRAMING_WS_BIN) {
    send_hello(&w, "victim", T0);
  }
  pub(hub, "victim", "v1", "x", 1, T0);
  wsc_drain(&w, T0);
  tu_events_drain(hub);
  tern_stats st = tu_stats(hub);
  tern_ssize rv = tern_conn_read(c, b->bytes, b->len, T0);
  CHECK_EQ(rv, b->err, "%s: tern_conn_read's result", b->what);
  CHECK(tern_conn_is_closed(c), "%s: closed", b->what);
  CHECK_INT(tern_conn_read(c, b->bytes, b->len, T0), TERN_ERR_CLOSED,
            "then reads are refused");
  wsc_drain(&w, T0);
  check_close(&w, b->code, b->why, b->what);
  tern_event ev = next_end(hub, c);
  CHECK(ev.type == TERN_EV_CONN_CLOSED && ev.reason == b->reason,
        "%s: end event, reason %d", b->what, b->reason);
  tern_stats st2 = tu_stats(hub);
  tern_session_info oi2 = tu_info(hub, "other");
  CHECK(ow > 0 && tu_info_equal(&oi, &oi2) && st2.messages == st.messages &&
            st2.sessions == st.sessions && st2.acked == st.acked,
        "%s: nothing else changed", b->what);
  tern_session_info vi = tu_info(hub, "victim");
  CHECK(vi.pending == 1 && vi.inflight == 0,
        "%s: its message went back to its session", b->what);
  tern_conn_del(c);
  /* The other still works. */
  static wsc o;
  wsc_init(&o, other);
  wsc_drain(&o, T0);
  CHECK(send_text(&o, "{\"ack\":2}", T0) > 0 &&
            tu_info(hub, "other").pending + tu_info(hub, "other").inflight ==
                0,
        "%s: the other connection still acks", b->what);
  tern_conn_del(other);
  tern_hub_del(hub);
  wsc_free(&w);
  wsc_free(&o);
}

static void test_bad_input(void) {
  static bad_case cases[40];
  size_t n = 0;
  bad_case *b;
#define CASE(fr, what_, err_, code_, why_, reason_)                          \
  b = &cases[n++];                                                          \
  memset(b, 0, sizeof(*b));                                                 \
  b->what = what_;                                                          \
  b->framing = fr;                                                          \
  b->err = err_;                                                            \
  b->code = code_;                                                          \
  b->why = why_;                                                            \
  b->reason = reason_

  static const int J = TERN_FRAMING_WS_JSON, B = TERN_FRAMING_WS_BIN;
  for (int i = 0; i < 2; ++i) {
    int fr = i ? B : J;
    CASE(fr, "an unmasked frame", TERN_ERR_PROTO, 1002, "proto",
         TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 1, WEB_WS_PING, "x", 1, NULL);
    CASE(fr, "an RSV bit", TERN_ERR_PROTO, 1002, "proto", TERN_GOAWAY_PROTO);
    b->len = raw(b->bytes, "c1 80 00 00 00 00");
    CASE(fr, "opcode 3", TERN_ERR_PROTO, 1002, "proto", TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 1, 3, "", 0, MASK);
    CASE(fr, "a fragmented PING", TERN_ERR_PROTO, 1002, "proto",
         TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 0, WEB_WS_PING, "x", 1, MASK);
    CASE(fr, "a PING of 126 bytes", TERN_ERR_PROTO, 1002, "proto",
         TERN_GOAWAY_PROTO);
    {
      uint8_t p[126];
      memset(p, 'p', sizeof p);
      b->len = frame(b->bytes, 1, WEB_WS_PING, p, sizeof p, MASK);
    }
    CASE(fr, "a continuation with no message", TERN_ERR_PROTO, 1002, "proto",
         TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 1, WEB_WS_CONT, "x", 1, MASK);
    CASE(fr, "a new message inside one", TERN_ERR_PROTO, 1002, "proto",
         TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 0, i ? WEB_WS_BINARY : WEB_WS_TEXT, "", 0, MASK);
    b->len += frame(b->bytes + b->len, 1, WEB_WS_TEXT, "x", 1, MASK);
    CASE(fr, "a CLOSE of one byte", TERN_ERR_PROTO, 1002, "proto",
         TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 1, WEB_WS_CLOSE, "x", 1, MASK);
    CASE(fr, "a CLOSE with code 1005", TERN_ERR_PROTO, 1002, "proto",
         TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 1, WEB_WS_CLOSE, "\x03\xed", 2, MASK);
    CASE(fr, "a CLOSE reason not UTF-8", TERN_ERR_PROTO, 1007, "proto",
         TERN_GOAWAY_PROTO);
    b->len = frame(b->bytes, 1, WEB_WS_CLOSE, "\x03\xe8\xc3\x28", 4, MASK);
    CASE(fr, "a length not in its shortest form", TERN_ERR_PROTO, 1002,
         "proto", TERN_GOAWAY_PROTO);
    b->len = raw(b->bytes, "82 fe 00 05 00 00 00 00 01 02 03 04 05");
    CASE(fr, "a message over the limit", TERN_ERR_TOO_LARGE, 1009,
         "too_large", TERN_GOAWAY_TOO_LARGE);
    if (i) {
      b->len = raw(b->bytes, "82 ff 00 00 00 00 00 10 00 01 00 00 00 00");
    } else {
      char big[129];
      memset(big, ' ', sizeof big);
      b->len = frame(b->bytes, 1, WEB_WS_TEXT, big, sizeof big, MASK);
    }
    CASE(fr, "fragments over the limit", TERN_ERR_TOO_LARGE, 1009,
         "too_large", TERN_GOAWAY_TOO_LARGE);
    if (i) {
      /* 1 byte, then a fragment of 1 MiB: one byte over */
      b->len = frame(b->bytes, 0, WEB_WS_BINARY, "\x04", 1, MASK);
      b->len += raw(b->bytes + b->len, "80 ff 00 00 00 00 00 10 00 00 00 00 00 00");
    } else {
      char part[100];
      memset(part, ' ', sizeof part);
      b->len = frame(b->bytes, 0, WEB_WS_TEXT, part, sizeof part, MASK);
      b->len += frame(b->bytes + b->len, 1, WEB_WS_CONT, part, 29, MASK);
    }
  }
  CASE(J, "text not UTF-8", TERN_ERR_PROTO, 1007, "proto", TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 1, WEB_WS_TEXT, "{\"ack\":\xff}", 9, MASK);
  CASE(J, "UTF-8 cut at the message's end", TERN_ERR_PROTO, 1007, "proto",
       TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 0, WEB_WS_TEXT, "\xe2\x82", 2, MASK);
  b->len += frame(b->bytes + b->len, 1, WEB_WS_CONT, "", 0, MASK);
  CASE(J, "a binary message on tern.json", TERN_ERR_PROTO, 1003,
       "tern.json takes text messages", TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 1, WEB_WS_BINARY, "{\"ack\":1}", 9, MASK);
  CASE(B, "a text message on tern.bin", TERN_ERR_PROTO, 1003,
       "tern.bin takes binary messages", TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 1, WEB_WS_TEXT, "x", 1, MASK);
  CASE(J, "not an ack", TERN_ERR_PROTO, 1008,
       "unknown member: only \"ack\" is accepted", TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 1, WEB_WS_TEXT, "{\"nack\":1}", 10, MASK);
  CASE(J, "an ack of a seq not sent", TERN_ERR_PROTO, 1008,
       "the ack names a seq not sent", TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 1, WEB_WS_TEXT, "{\"ack\":2}", 9, MASK);
  CASE(B, "a bad frame of tern-protocol(7)", TERN_ERR_PROTO, 1002, "proto",
       TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 1, WEB_WS_BINARY, "\x7f\x00", 2, MASK);
  CASE(B, "an ACK of a seq not sent", TERN_ERR_PROTO, 1002, "proto",
       TERN_GOAWAY_PROTO);
  b->len = frame(b->bytes, 1, WEB_WS_BINARY, "\x04\x01\x09", 3, MASK);
  for (size_t i = 0; i < n; ++i) {
    run_bad(&cases[i]);
  }
#undef CASE
}

/* The peer's CLOSE is echoed: its code, or none. */
static void test_peer_close(void) {
  static wsc w;
  static const struct {
    const char *body;
    size_t len;
    unsigned code;
  } closes[] = {{"\x03\xe8" "bye", 5, 1000},
                {"", 0, 1005},
                {"\x0f\xa1", 2, 4001},
                {"\x03\xe9", 2, 1001}};
  for (int fr = TERN_FRAMING_WS_BIN; fr <= TERN_FRAMING_WS_JSON; ++fr) {
    for (size_t i = 0; i < 4; ++i) {
      tern_hub *hub = tu_hub(NULL);
      tern_conn *c = open_ws(hub, fr, fr == TERN_FRAMING_WS_JSON ? "k" : NULL,
                             T0);
      wsc_init(&w, c);
      if (fr == TERN_FRAMING_WS_BIN) {
        send_hello(&w, "k", T0);
      }
      pub(hub, "k", "m", "x", 1, T0);
      wsc_drain(&w, T0);
      size_t before = w.n;
      static uint8_t bytes[64];
      size_t n = frame(bytes, 1, WEB_WS_CLOSE, closes[i].body, closes[i].len,
                       MASK);
      CHECK_EQ(tern_conn_read(c, bytes, n, T0), (tern_ssize)n,
               "CLOSE %u read (framing %d)", closes[i].code, fr);
      wsc_drain(&w, T0);
      CHECK(w.n == before + 1, "only the CLOSE follows (no goodbye)");
      if (closes[i].code == 1005) {
        const wsmsg *m = w.n ? &w.msgs[w.n - 1] : NULL;
        CHECK(m && m->kind == 'C' && m->code == 1005 && m->len == 0 &&
                  w.closed,
              "an empty CLOSE is echoed empty");
      } else {
        check_close(&w, closes[i].code, "client", "echo");
      }
      tern_event ev = next_end(hub, c);
      CHECK(ev.type == TERN_EV_CONN_CLOSED &&
                ev.reason == TERN_GOAWAY_CLIENT,
            "end event: client");
      CHECK_INT(tu_info(hub, "k").pending, 1,
                "the unacked message is back in the session");
      tern_conn_del(c);
      tern_hub_del(hub);
      wsc_free(&w);
    }
  }
}

/* tern.bin's own goodbye, a GOAWAY frame: no GOAWAY back, CLOSE 1000. */
static void test_bin_client_goaway(void) {
  static wsc w;
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_BIN, NULL, T0);
  wsc_init(&w, c);
  send_hello(&w, "g", T0);
  wsc_drain(&w, T0);
  uint8_t body[64];
  size_t n = tu_goaway_bytes(body, sizeof(body), TERN_GOAWAY_CLIENT, "bye");
  CHECK(send_frame(&w, 1, WEB_WS_BINARY, body, n, T0) > 0, "GOAWAY read");
  CHECK(tern_conn_is_closed(c), "closed");
  wsc_drain(&w, T0);
  CHECK_INT(count_wire(&w, WIRE_GOAWAY), 0, "no GOAWAY back");
  check_close(&w, 1000, "client", "client GOAWAY");
  tern_event ev = next_end(hub, c);
  CHECK(ev.type == TERN_EV_CONN_CLOSED && ev.reason == TERN_GOAWAY_CLIENT,
        "end event: client");
  tern_conn_del(c);
  tern_hub_del(hub);
  wsc_free(&w);
}

/* tern.bin's heartbeats are the binary framing's PINGs, in messages. */
static void test_bin_heartbeat(void) {
  static wsc w;
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_BIN, NULL, T0);
  wsc_init(&w, c);
  send_hello(&w, "h", T0);
  wsc_drain(&w, T0);
  tern_hub_handle_expiry(hub, T0 + SEC(4));
  wsc_drain(&w, T0 + SEC(4));
  CHECK_INT(count_wire(&w, WIRE_PING), 1, "a PING frame after 4 s");
  CHECK_INT(count_of(&w, 'P'), 0, "not a WebSocket PING");
  /* WebSocket PINGs of the peer keep it alive, as any byte does. */
  tern_tstamp t = T0 + SEC(4);
  for (int i = 0; i < 5; ++i) {
    t += SEC(2);
    send_frame(&w, 1, WEB_WS_PING, "", 0, t);
    tern_hub_handle_expiry(hub, t);
    wsc_drain(&w, t);
  }
  CHECK(!tern_conn_is_closed(c), "alive after 14 s of WebSocket PINGs");
  tern_hub_handle_expiry(hub, t + SEC(8));
  wsc_drain(&w, t + SEC(8));
  CHECK(tern_conn_is_closed(c), "dead after 8 s of silence");
  check_close(&w, 1001, "timeout", "tern.bin liveness");
  tern_conn_del(c);
  tern_hub_del(hub);
  wsc_free(&w);
}

/* tern.json resumes like SSE: the seq acks, the rest comes again. */
static void test_json_resume(void) {
  static wsc w, v;
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_ws(hub, TERN_FRAMING_WS_JSON, "r", T0);
  wsc_init(&w, c);
  pub(hub, "r", "a", "1", 1, T0);
  pub(hub, "r", "b", "2", 1, T0);
  pub(hub, "r", "c", "3", 1, T0);
  wsc_drain(&w, T0);
  CHECK_INT(count_of(&w, 'T'), 3, "three sent");
  tern_stream_opts o = ws_opts(TERN_FRAMING_WS_JSON, "r");
  o.resume_epoch = tern_hub_get_epoch(hub);
  o.resume_seq = 2;
  tern_conn *d = NULL;
  CHECK_INT(tern_conn_new_stream(&d, hub, &o, T0), 0, "resume at 2");
  wsc_drain(&w, T0);
  check_close(&w, 1000, "replaced", "the old connection");
  wsc_init(&v, d);
  wsc_drain(&v, T0);
  CHECK(v.n == 1 && strstr((char *)v.msgs[0].data, "\"id\":\"c\"") != NULL,
        "only the third comes again");
  CHECK_INT(tu_stats(hub).acked, 2, "two acked by the resume");
  tern_conn_del(c);
  tern_conn_del(d);
  tern_hub_del(hub);
  wsc_free(&w);
  wsc_free(&v);
}

/* Ends the server chooses: a goodbye of the framing, then CLOSE. */
static void test_server_close(void) {
  static wsc w;
  static const struct {
    int reason;
    unsigned code;
    const char *name;
  } ends[] = {{TERN_GOAWAY_RESTART, 1001, "restart"},
              {TERN_GOAWAY_REJECTED, 1008, "rejected"},
              {TERN_GOAWAY_LIMIT, 1013, "limit"},
              {TERN_GOAWAY_INTERNAL, 1011, "internal"},
              {TERN_GOAWAY_REPLACED, 1000, "replaced"}};
  for (int fr = TERN_FRAMING_WS_BIN; fr <= TERN_FRAMING_WS_JSON; ++fr) {
    for (size_t i = 0; i < 5; ++i) {
      size_t caps[] = {65536, fr == TERN_FRAMING_WS_BIN ? 3u : 1u};
      for (size_t k = 0; k < 2; ++k) {
        tern_hub *hub = tu_hub(NULL);
        tern_conn *c = open_ws(hub, fr,
                               fr == TERN_FRAMING_WS_JSON ? "k" : NULL, T0);
        wsc_init(&w, c);
        if (fr == TERN_FRAMING_WS_BIN) {
          send_hello(&w, "k", T0);
        }
        CHECK_INT(tern_conn_goaway(c, (uint32_t)ends[i].reason, SEC(2), T0),
                  0, "tern_conn_goaway");
        CHECK(tern_conn_want_write(c), "it wants to write its goodbye");
        wsc_drain_cap(&w, caps[k], T0);
        if (fr == TERN_FRAMING_WS_JSON) {
          char want[128];
          snprintf(want, sizeof want,
                   "{\"goaway\":{\"reason\":\"%s\",\"retry\":2000}}",
                   ends[i].name);
          const wsmsg *g = last_of(&w, 'T');
          CHECK(g && strcmp((char *)g->data, want) == 0,
                "the goodbye text message (%s, cap %zu)", ends[i].name,
                caps[k]);
        } else {
          wire_frame f[8];
          size_t n = wire_frames(&w, f, 8);
          /* (the WELCOME not written yet gives way to it) */
          CHECK(n == 1 && f[0].type == WIRE_GOAWAY &&
                    f[0].u.goaway.reason == (uint64_t)ends[i].reason &&
                    f[0].u.goaway.retry_ms == 2000,
                "the GOAWAY frame (%s, cap %zu)", ends[i].name, caps[k]);
        }
        check_close(&w, ends[i].code, ends[i].name, ends[i].name);
        CHECK(!tern_conn_want_write(c), "then nothing to write");
        tern_conn_del(c);
        tern_hub_del(hub);
        wsc_free(&w);
      }
    }
  }
}

/* ---- options -------------------------------------------------------------- */

static void test_opts(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = (tern_conn *)&c;
  tern_stream_opts o = ws_opts(TERN_FRAMING_WS_BIN, "k");
  CHECK_INT(tern_conn_new_stream(&c, hub, &o, T0), TERN_ERR_INVALID,
            "tern.bin with a key");
  o = ws_opts(TERN_FRAMING_WS_BIN, NULL);
  o.resume_seq = 3;
  CHECK_INT(tern_conn_new_stream(&c, hub, &o, T0), TERN_ERR_INVALID,
            "tern.bin with a resume");
  o = ws_opts(TERN_FRAMING_WS_JSON, NULL);
  CHECK_INT(tern_conn_new_stream(&c, hub, &o, T0), TERN_ERR_INVALID,
            "tern.json without a key");
  o = ws_opts(6, "k");
  CHECK_INT(tern_conn_new_stream(&c, hub, &o, T0), TERN_ERR_INVALID,
            "framing 6");
  CHECK(c == (tern_conn *)&c, "untouched");
  CHECK_INT(tu_stats(hub).conns, 0, "nothing created");
  CHECK_INT(tu_stats(hub).sessions, 0, "no session");
  tern_conn *w = open_ws(hub, TERN_FRAMING_WS_BIN, NULL, T0);
  CHECK_INT(tern_conn_allow_publish(w, 1), TERN_ERR_STATE,
            "no producer over WebSocket");
  tern_conn *s = open_ws(hub, TERN_FRAMING_SSE, "k", T0);
  CHECK_INT(tern_conn_read(s, (const uint8_t *)"x", 1, T0), TERN_ERR_STATE,
            "SSE still refuses reads");
  CHECK(tern_framing_content_type(TERN_FRAMING_WS_JSON) == NULL,
        "no content type for WebSocket");
  tern_conn_del(w);
  tern_conn_del(s);
  tern_hub_del(hub);
}

/* ---- allocation failures -------------------------------------------------- */

/* Every allocation of a tern.json and a tern.bin connection's life fails
   in turn: each call fails cleanly or succeeds, and nothing leaks. */
static void test_nomem(void) {
  static wsc w;
  long worst = 0;
  int fine = 1;
  for (long fail = 1; fail < 200; ++fail) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    tern_mem m = tu_alloc_mem(&a);
    tern_settings s = tu_settings();
    tern_hub *hub = NULL;
    if (tern_hub_new(&hub, &s, &m) != 0) {
      continue;
    }
    a.fail_at = a.calls + fail;
    for (int fr = TERN_FRAMING_WS_BIN; fr <= TERN_FRAMING_WS_JSON; ++fr) {
      tern_stream_opts o =
          ws_opts(fr, fr == TERN_FRAMING_WS_JSON ? "nm" : NULL);
      tern_conn *c = NULL;
      int rv = tern_conn_new_stream(&c, hub, &o, T0);
      if (rv != 0) {
        fine &= rv == TERN_ERR_NOMEM && c == NULL;
        continue;
      }
      wsc_init(&w, c);
      if (fr == TERN_FRAMING_WS_BIN) {
        send_hello(&w, "nm", T0);
      }
      pub(hub, "nm", "x", "payload", 7, T0);
      send_frame(&w, 1, WEB_WS_PING, "pp", 2, T0); /* its PONG: a block */
      wsc_drain_cap(&w, 5, T0);
      wsc_drain(&w, T0);
      if (fr == TERN_FRAMING_WS_BIN) {
        send_ack(&w, 1, T0);
      } else {
        /* in pieces: a block too */
        send_frame(&w, 0, WEB_WS_TEXT, "{\"ack\"", 6, T0);
        send_frame(&w, 1, WEB_WS_CONT, ":1}", 3, T0);
      }
      wsc_drain(&w, T0);
      fine &= !w.bad;
      tern_conn_del(c);
      wsc_free(&w);
    }
    tern_hub_del(hub);
    long left = tu_alloc_finish(&a);
    worst = left > worst ? left : left == 0 ? worst : left;
    fine &= left == 0;
  }
  CHECK(fine, "every failure handled, nothing leaked");
  CHECK_INT(worst, 0, "no block left");
}

int main(void) {
  test_handshake();
  test_json_end_to_end();
  test_json_dropped();
  test_json_fragments();
  test_json_side();
  test_json_heartbeat();
  test_bin_end_to_end();
  test_bin_split();
  test_bin_hello_accept();
  test_bad_input();
  test_peer_close();
  test_bin_client_goaway();
  test_bin_heartbeat();
  test_json_resume();
  test_server_close();
  test_opts();
  test_nomem();
  return tap_done();
}
