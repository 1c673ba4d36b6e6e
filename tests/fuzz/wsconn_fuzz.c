/*
 * Fuzz target for the WebSocket connection kinds (lib/deliver/wsconn.c):
 * a tern.bin and a tern.json connection of one hub fed a script.  Steps
 * feed raw bytes (split at arbitrary points), well-formed masked frames
 * (tern-protocol(7) HELLO/ACK in binary messages, {"ack":N} in text
 * messages, fragmented or not), control frames, publishes, writes with
 * arbitrary buffer sizes, time, goaways, deletions, and a failing
 * allocation.  Checked after every step:
 *  - tern_conn_read consumes everything or fails, and a failure closes;
 *  - what the server writes decodes as a client decodes it (unmasked,
 *    well-formed, text valid UTF-8), tern.bin's binary messages carry
 *    well-formed frames of tern-protocol(7), and nothing follows the
 *    server's CLOSE, which a closed connection always wrote last;
 *  - the hub's gauges add up; at the end every allocation came back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tern.h"
#include "web/ws.h"
#include "wire/frame.h"

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "wsconn_fuzz: %s:%d: %s\n", __FILE__, __LINE__,       \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

static const char *keys[] = {"alice", "bob"};

/* The client's view of one connection. */
typedef struct peer {
  tern_conn *c;
  int framing;
  web_ws_decoder dec;
  int got_close;          /* the server's CLOSE arrived */
  uint8_t stream[1 << 16]; /* tern.bin: bytes of frames not complete yet */
  size_t streamlen;
} peer;

static peer peers[2];

static void peer_open(peer *p, tern_hub *hub, int framing, tern_tstamp now) {
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = framing;
  if (framing == TERN_FRAMING_WS_JSON) {
    o.key = (const uint8_t *)keys[1];
    o.keylen = strlen(keys[1]);
  }
  p->framing = framing;
  p->c = NULL;
  if (tern_conn_new_stream(&p->c, hub, &o, now) != 0) {
    p->c = NULL;
    return;
  }
  web_ws_decoder_init(&p->dec, WEB_WS_CLIENT, 1 << 20, 1 << 20);
  p->got_close = 0;
  p->streamlen = 0;
}

static void peer_close(peer *p) {
  tern_conn_del(p->c);
  p->c = NULL;
}

/* Takes what the server wrote. */
static void peer_take(peer *p, const uint8_t *b, size_t n) {
  uint8_t out[4096];
  REQUIRE(!p->got_close); /* nothing after the CLOSE */
  while (n) {
    web_ws_event ev;
    tern_ssize k = web_ws_decode(&p->dec, b, n, out, sizeof(out), &ev);
    REQUIRE(k >= 0);
    b += k;
    n -= (size_t)k;
    if (ev.type == WEB_WS_EV_CLOSE) {
      REQUIRE(n == 0);
      p->got_close = 1;
      return;
    }
    if (ev.type == WEB_WS_EV_DATA) {
      REQUIRE(ev.opcode == (p->framing == TERN_FRAMING_WS_BIN
                                ? WEB_WS_BINARY
                                : WEB_WS_TEXT));
      if (p->framing == TERN_FRAMING_WS_BIN) {
        REQUIRE(p->streamlen + ev.len <= sizeof(p->stream));
        memcpy(p->stream + p->streamlen, ev.data, ev.len);
        p->streamlen += ev.len;
        size_t at = 0;
        for (;;) {
          wire_frame f;
          tern_ssize m = wire_frame_decode(&f, p->stream + at,
                                           p->streamlen - at, 1 << 20);
          REQUIRE(m >= 0);
          if (m == 0) {
            break;
          }
          at += (size_t)m;
        }
        memmove(p->stream, p->stream + at, p->streamlen - at);
        p->streamlen -= at;
      }
    }
  }
}

static void peer_write(peer *p, size_t cap, tern_tstamp now) {
  uint8_t buf[8192];
  if (!p->c) {
    return;
  }
  cap = cap < sizeof(buf) ? cap : sizeof(buf);
  tern_ssize n = tern_conn_write(p->c, buf, cap, now);
  if (n > 0) {
    peer_take(p, buf, (size_t)n);
  } else if (n == TERN_ERR_CLOSED) {
    REQUIRE(p->got_close); /* every end writes a CLOSE last */
  }
}

static void peer_read(peer *p, const uint8_t *b, size_t n, size_t piece,
                      tern_tstamp now) {
  if (!p->c) {
    return;
  }
  piece = piece ? piece : n;
  for (size_t at = 0; at < n || at == 0; at += piece) {
    size_t k = n - at < piece ? n - at : piece;
    int was_closed = tern_conn_is_closed(p->c);
    tern_ssize r = tern_conn_read(p->c, b + at, k, now);
    if (r >= 0) {
      REQUIRE((size_t)r == k && !was_closed);
    } else {
      REQUIRE(tern_conn_is_closed(p->c));
      return;
    }
    if (n == 0) {
      break;
    }
  }
}

static void check(tern_hub *hub) {
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  uint64_t msgs = 0, bytes = 0, inflight = 0, sessions = 0, cinf = 0;
  for (int i = 0; i < 2; ++i) {
    tern_session *ss = tern_hub_find_session(
        hub, (const uint8_t *)keys[i], strlen(keys[i]));
    if (ss) {
      tern_session_info si;
      tern_session_get_info(ss, &si, sizeof(si));
      msgs += si.pending + si.inflight;
      bytes += si.pending_bytes;
      inflight += si.inflight;
      ++sessions;
    }
    if (peers[i].c) {
      tern_conn_info ci;
      tern_conn_get_info(peers[i].c, &ci, sizeof(ci));
      cinf += ci.inflight;
    }
  }
  REQUIRE(st.messages == msgs && st.message_bytes == bytes &&
          st.inflight == inflight && st.inflight == cinf &&
          st.sessions == sessions);
}

static const uint8_t MASK[4] = {0x11, 0x80, 0x7f, 0x3c};

/* A masked frame of |len| payload bytes into |out| (room for it). */
static size_t frame(uint8_t *out, int fin, int opcode, const uint8_t *p,
                    size_t len) {
  size_t h = web_ws_header_write(out, fin, opcode, len, MASK);
  if (len) {
    memcpy(out + h, p, len);
    web_ws_mask(out + h, len, MASK, 0);
  }
  return h + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, data + size};
  tern_mem mem = fuzz_mem();
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 11;
  s.max_pending = 8;
  s.inflight_window = 4;
  s.max_conns = 2;
  s.hello_accept = take(&in) & 1;
  s.ack_timeout = (take(&in) & 1) ? TERN_SECONDS : 0;
  tern_hub *hub;
  outstanding = calls = fail_at = 0;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    abort();
  }
  tern_tstamp now = 1000;
  peer_open(&peers[0], hub, TERN_FRAMING_WS_BIN, now);
  peer_open(&peers[1], hub, TERN_FRAMING_WS_JSON, now);
  uint8_t body[512], bytes[1024];
  while (in.p < in.end) {
    uint8_t op = take(&in);
    peer *p = &peers[op >> 7];
    switch (op & 0x7) {
    case 0: { /* raw bytes, in pieces */
      size_t n = take(&in);
      size_t piece = take(&in) & 15;
      if (n > (size_t)(in.end - in.p)) {
        n = (size_t)(in.end - in.p);
      }
      peer_read(p, in.p, n, piece, now);
      in.p += n;
      break;
    }
    case 1: { /* a well-formed message, maybe in two fragments */
      uint8_t a = take(&in), b = take(&in);
      size_t n;
      if (p->framing == TERN_FRAMING_WS_BIN) {
        wire_frame f;
        memset(&f, 0, sizeof(f));
        if (a & 1) {
          f.type = WIRE_ACK;
          f.u.ack_seq = b;
        } else {
          f.type = WIRE_HELLO;
          f.u.hello.version = WIRE_VERSION;
          f.u.hello.key = (const uint8_t *)keys[0];
          f.u.hello.keylen = strlen(keys[0]);
          f.u.hello.last_seq = b;
          f.u.hello.epoch = (a & 2) ? tern_hub_get_epoch(hub) : 0;
        }
        n = wire_frame_encode(body, sizeof(body), &f);
      } else {
        n = (size_t)snprintf((char *)body, sizeof(body), "{\"ack\":%u}", b);
      }
      int op1 = p->framing == TERN_FRAMING_WS_BIN ? WEB_WS_BINARY
                                                  : WEB_WS_TEXT;
      size_t cut = (a & 4) ? (size_t)(a >> 3) % (n + 1) : n;
      size_t len = frame(bytes, cut == n, op1, body, cut);
      if (cut < n) {
        len += frame(bytes + len, 1, WEB_WS_CONT, body + cut, n - cut);
      }
      peer_read(p, bytes, len, take(&in) & 7, now);
      break;
    }
    case 2: { /* a control frame */
      uint8_t a = take(&in);
      size_t n = (size_t)(a >> 2) & 15;
      static const int ops[] = {WEB_WS_PING, WEB_WS_PONG, WEB_WS_CLOSE,
                                WEB_WS_CLOSE};
      int opcode = ops[a & 3];
      for (size_t i = 0; i < n; ++i) {
        body[i] = take(&in);
      }
      if ((a & 3) == 3) { /* a valid close code */
        body[0] = 0x03;
        body[1] = 0xe8;
        n = n < 2 ? 2 : n;
      }
      size_t len = frame(bytes, 1, opcode, body, n);
      peer_read(p, bytes, len, 0, now);
      break;
    }
    case 3: { /* publish */
      uint8_t a = take(&in);
      tern_msg_desc d;
      memset(&d, 0, sizeof(d));
      d.priority = a % 3;
      d.payload = bytes;
      d.payloadlen = (size_t)(a >> 3) * 9;
      memset(bytes, a, d.payloadlen);
      const char *k = keys[(a >> 2) & 1];
      tern_hub_publish(hub, (const uint8_t *)k, strlen(k), &d, now, NULL);
      break;
    }
    case 4: /* write */
      peer_write(p, (size_t)take(&in) * 4 + 1, now);
      break;
    case 5: /* time */
      now += (tern_duration)take(&in) * 100 * TERN_MILLISECONDS;
      tern_hub_handle_expiry(hub, now);
      break;
    case 6: /* host: accept, goaway, or delete and open again */
      if (p->c) {
        uint8_t a = take(&in);
        if (a & 1) {
          tern_conn_accept(p->c, now);
        } else if (a & 2) {
          tern_conn_goaway(p->c, a >> 4, TERN_SECONDS, now);
        } else {
          peer_close(p);
        }
      } else {
        peer_open(p, hub, (op >> 7) ? TERN_FRAMING_WS_JSON
                                    : TERN_FRAMING_WS_BIN, now);
      }
      break;
    default: /* the next allocation fails */
      fail_at = calls + 1 + (take(&in) & 3);
      break;
    }
    tern_event ev;
    while (tern_hub_next_event(hub, &ev) == 1) {
    }
    check(hub);
  }
  /* Every open connection can say goodbye to the end. */
  fail_at = 0;
  for (int i = 0; i < 2; ++i) {
    if (peers[i].c) {
      tern_conn_goaway(peers[i].c, TERN_GOAWAY_RESTART, 0, now);
      for (int k = 0; k < 1000 && !peers[i].got_close; ++k) {
        peer_write(&peers[i], 64, now);
      }
      REQUIRE(peers[i].got_close);
      peer_close(&peers[i]);
    }
  }
  tern_hub_del(hub);
  if (outstanding != 0) {
    fprintf(stderr, "wsconn_fuzz: %ld allocations leaked\n", outstanding);
    abort();
  }
  return 0;
}
