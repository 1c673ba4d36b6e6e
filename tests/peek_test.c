/*
 * tern_conn_peek_output and tern_conn_consume: the connection keeps what
 * the host's socket did not take.  Bytes consumed a few at a time make the
 * same frames, in the same order, as tern_conn_write gives; a peek repeats
 * itself until consumed; tern_conn_write waits for the peeked bytes; the
 * held block is freed once consumed, and with the connection; no memory,
 * no loss; a closed connection says so after its last bytes; SSE alike.
 * The client's tern_client_peek_output and tern_client_consume likewise,
 * against a hub whose connections peek too: a producer's PUBLISH frames
 * and a receiver's ACKs arrive whole and in order however they are cut;
 * a closing client is closed once its GOAWAY is consumed; a lost transport
 * drops what was held.
 */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"
#include "wire/publish.h"

/* Everything the connection has, peeked and consumed |step| bytes at a
   time, into |o|.  Returns the last peek's result (0 or an error). */
static tern_ssize take_all(tu_out *o, tern_conn *c, size_t step,
                           tern_tstamp now) {
  for (;;) {
    const uint8_t *p;
    tern_ssize n = tern_conn_peek_output(c, &p, now);
    if (n <= 0) {
      return n;
    }
    size_t k = (size_t)n < step ? (size_t)n : step;
    tu_out_append(o, p, k);
    tu_out_decode(o);
    if (tern_conn_consume(c, k) != 0) {
      return TERN_ERR_INVALID;
    }
  }
}

static void test_binary(void) {
  tu_alloc a = {0};
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    BAILOUT("peek: setup");
  }
  char payload[301];
  memset(payload, 'p', 300);
  payload[300] = '\0';
  for (int i = 0; i < 100; ++i) {
    char id[16];
    snprintf(id, sizeof(id), "m%d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, id, payload, T0);
  }
  tern_conn *c = NULL;
  CHECK_EQ(tern_conn_new(&c, hub, T0), 0, "peek: conn");
  tu_hello(c, "k", 0, 0, 0, NULL, T0);
  const uint8_t *p1, *p2;
  tern_ssize n1 = tern_conn_peek_output(c, &p1, T0);
  CHECK(n1 > 0 && n1 <= TERN_CONN_PEEK_MAX, "peek: bytes, at most the max");
  tern_ssize n2 = tern_conn_peek_output(c, &p2, T0);
  CHECK(n2 == n1 && p2 == p1, "peek: the same bytes until consumed");
  CHECK(tern_conn_want_write(c), "peek: want_write while bytes are held");
  uint8_t buf[64];
  CHECK_EQ(tern_conn_write(c, buf, sizeof(buf), T0), TERN_ERR_STATE,
           "peek: tern_conn_write waits for the peeked bytes");
  CHECK_EQ(tern_conn_consume(c, (size_t)n1 + 1), TERN_ERR_INVALID,
           "peek: consuming more than offered is refused");
  CHECK_EQ(tern_conn_consume(c, 0), 0, "peek: consuming nothing is fine");
  tu_out o;
  tu_out_init(&o);
  CHECK_EQ(take_all(&o, c, 7, T0), 0, "peek: drained 7 bytes at a time");
  CHECK(!o.bad && o.nframes == 101 && o.frames[0].f.type == WIRE_WELCOME,
        "peek: a WELCOME and 100 whole frames");
  int in_order = 1;
  for (size_t i = 1; i < o.nframes; ++i) {
    in_order &= o.frames[i].f.type == WIRE_MSG &&
                o.frames[i].f.u.msg.seq == (uint64_t)i &&
                o.frames[i].f.u.msg.payloadlen == 300;
  }
  CHECK(in_order, "peek: the messages in order, none lost or doubled");
  const uint8_t *p3 = p1;
  CHECK(tern_conn_peek_output(c, &p3, T0) == 0 && p3 == NULL &&
            !tern_conn_want_write(c),
        "peek: then nothing, and no wish to write");
  /* The blocks of a peek consumed whole serve the next one. */
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "last", "x", T0);
  long calls = a.calls;
  CHECK(tern_conn_peek_output(c, &p1, T0) > 0 && a.calls == calls,
        "peek: the last peek's blocks reused, no allocation");
  /* Held bytes go with the connection (the leak check below). */
  tern_conn_del(c);
  /* No memory: an error, nothing taken from the hub. */
  c = NULL;
  CHECK_EQ(tern_conn_new(&c, hub, T0), 0, "peek nomem: conn");
  tu_hello(c, "k", 0, 0, 0, NULL, T0);
  /* Another connection holds the spare blocks, unconsumed. */
  tern_conn *holder = NULL;
  CHECK_EQ(tern_conn_new(&holder, hub, T0), 0, "peek nomem: holder");
  tu_hello(holder, "k2", 0, 0, 0, NULL, T0);
  tern_ssize held = tern_conn_peek_output(holder, &p2, T0);
  CHECK(held > 0, "peek nomem: the holder holds");
  a.calls = 0;
  a.fail_at = 1;
  a.fail_rest = 1;
  CHECK_EQ(tern_conn_peek_output(c, &p1, T0), TERN_ERR_NOMEM,
           "peek nomem: TERN_ERR_NOMEM");
  a.fail_at = 0;
  a.fail_rest = 0;
  CHECK(p1 == NULL && tern_conn_consume(holder, (size_t)held) == 0,
        "peek nomem: no bytes offered; the holder's consumed");
  tern_conn_del(holder);
  tu_out o2;
  tu_out_init(&o2);
  CHECK_EQ(take_all(&o2, c, 1000, T0), 0, "peek nomem: later it works");
  CHECK(o2.nframes >= 2 && o2.frames[0].f.type == WIRE_WELCOME &&
            o2.frames[1].f.type == WIRE_MSG,
        "peek nomem: the WELCOME and the messages, nothing skipped");
  /* Closed: the GOAWAY, then TERN_ERR_CLOSED. */
  CHECK_EQ(tern_conn_goaway(c, TERN_GOAWAY_RESTART, 0, T0), 0,
           "peek close: goaway");
  tu_out o3;
  tu_out_init(&o3);
  CHECK_EQ(take_all(&o3, c, 3, T0), TERN_ERR_CLOSED,
           "peek close: TERN_ERR_CLOSED after the last bytes");
  CHECK(o3.nframes >= 1 && o3.frames[o3.nframes - 1].f.type == WIRE_GOAWAY,
        "peek close: the GOAWAY came first");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_free(&o2);
  tu_out_free(&o3);
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && a.bad_frees == 0 && tu_alloc_finish(&a) == 0,
        "peek: every block freed, once");
}

static void test_sse(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = TERN_FRAMING_SSE;
  o.key = (const uint8_t *)"s";
  o.keylen = 1;
  tern_conn *c = NULL;
  CHECK_EQ(tern_conn_new_stream(&c, hub, &o, T0), 0, "peek sse: stream");
  tu_pub(hub, "s", TERN_PRIO_NORMAL, "a", "hello", T0);
  const uint8_t *p;
  tern_ssize n = tern_conn_peek_output(c, &p, T0);
  char text[4096] = "";
  if (n > 0 && (size_t)n < sizeof(text)) {
    memcpy(text, p, (size_t)n);
    text[n] = '\0';
  }
  CHECK(strstr(text, "event: msg\n") && strstr(text, "\"data\":\"hello\""),
        "peek sse: the event, as tern_conn_write writes it");
  CHECK_EQ(tern_conn_consume(c, (size_t)n), 0, "peek sse: consumed");
  CHECK_EQ(tern_conn_peek_output(c, &p, T0), 0, "peek sse: then nothing");
  tern_conn_del(c);
  tern_hub_del(hub);
}

/* ---- the client ---------------------------------------------------------- */

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Moves what |cl| peeks into |sc|, |step| bytes per consume.  Returns the
   bytes moved, or the error that stopped it with nothing moved. */
static tern_ssize client_to_conn(tern_client *cl, tern_conn *sc, size_t step,
                                 size_t *most, tern_tstamp now) {
  tern_ssize total = 0;
  for (;;) {
    const uint8_t *p;
    tern_ssize n = tern_client_peek_output(cl, &p, now);
    if (n <= 0) {
      return total ? total : n;
    }
    if ((size_t)n > *most) {
      *most = (size_t)n;
    }
    size_t k = min_size((size_t)n, step);
    if (tern_conn_read(sc, p, k, now) != (tern_ssize)k ||
        tern_client_consume(cl, k) != 0) {
      return TERN_ERR_PROTO;
    }
    total += (tern_ssize)k;
  }
}

/* The other way: what |sc| peeks into |cl|, |step| bytes at a time. */
static tern_ssize conn_to_client(tern_conn *sc, tern_client *cl, size_t step,
                                 tern_tstamp now) {
  tern_ssize total = 0;
  for (;;) {
    const uint8_t *p;
    tern_ssize n = tern_conn_peek_output(sc, &p, now);
    if (n <= 0) {
      return total ? total : n;
    }
    size_t k = min_size((size_t)n, step);
    if (tern_client_read(cl, p, k, now) != (tern_ssize)k ||
        tern_conn_consume(sc, k) != 0) {
      return TERN_ERR_PROTO;
    }
    total += (tern_ssize)k;
  }
}

/* A client with its CONNECT event taken and a transport given. */
static tern_client *client_up(const char *key, tern_tstamp now) {
  tern_client *cl = NULL;
  tern_client_event ev;
  if (tern_client_new(&cl, (const uint8_t *)key, strlen(key), NULL, 0, NULL,
                      NULL, now) != 0 ||
      tern_client_next_event(cl, &ev) != 1 ||
      ev.type != TERN_CLIENT_EV_CONNECT || tern_client_connect(cl, now) != 0) {
    BAILOUT("peek client: setup");
  }
  return cl;
}

/* Runs |cl|'s backoff to its CONNECT event and gives it a transport;
   returns the time then. */
static tern_tstamp reconnect(tern_client *cl, tern_tstamp now) {
  tern_client_event ev;
  for (int i = 0; i < 1000; ++i) {
    now += 100 * TERN_MILLISECONDS;
    tern_client_handle_expiry(cl, now);
    if (tern_client_next_event(cl, &ev) == 1 &&
        ev.type == TERN_CLIENT_EV_CONNECT) {
      break;
    }
  }
  tern_client_connect(cl, now);
  return now;
}

#define NPUB 500

static void test_client(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_client *cl = client_up("prod", T0);
  tern_conn *sc = NULL;
  CHECK_EQ(tern_conn_new(&sc, hub, T0), 0, "peek client: conn");
  tern_conn_allow_publish(sc, 1);

  /* The HELLO: offered in place until consumed, write refused meanwhile. */
  const uint8_t *p1, *p2;
  tern_ssize n1 = tern_client_peek_output(cl, &p1, T0);
  tern_ssize n2 = tern_client_peek_output(cl, &p2, T0);
  CHECK(n1 > 0 && n2 == n1 && p2 == p1 && tern_client_want_write(cl),
        "peek client: the HELLO, the same bytes until consumed");
  uint8_t buf[64];
  CHECK_EQ(tern_client_write(cl, buf, sizeof(buf), T0), TERN_ERR_STATE,
           "peek client: tern_client_write waits for them");
  CHECK_EQ(tern_client_consume(cl, (size_t)n1 + 1), TERN_ERR_INVALID,
           "peek client: consuming more than offered is refused");
  CHECK(tern_conn_read(sc, p1, 2, T0) == 2 && tern_client_consume(cl, 2) == 0,
        "peek client: 2 bytes sent and consumed");
  CHECK(tern_client_peek_output(cl, &p2, T0) == n1 - 2 && p2 == p1 + 2,
        "peek client: then the rest is offered");

  /* A producer: NPUB publishes of 200 bytes, cut into odd pieces both ways;
     every PUBACK comes back accepted and in order. */
  size_t most = 0;
  int published = 0, acked_ok = 0, in_order = 1;
  char payload[200];
  memset(payload, 'q', sizeof(payload));
  for (int round = 0; round < 2000 && acked_ok < NPUB; ++round) {
    client_to_conn(cl, sc, 777, &most, T0);
    conn_to_client(sc, cl, 333, T0);
    tern_client_event ev;
    while (tern_client_next_event(cl, &ev) == 1) {
      if (ev.type == TERN_CLIENT_EV_CONNECTED) {
        tern_msg_desc d;
        memset(&d, 0, sizeof(d));
        d.payload = (const uint8_t *)payload;
        d.payloadlen = sizeof(payload);
        for (; published < NPUB; ++published) {
          char id[16];
          snprintf(id, sizeof(id), "p%d", published);
          d.id = (const uint8_t *)id;
          d.idlen = strlen(id);
          if (tern_client_publish(cl, 0, (const uint8_t *)"reader", 6, &d,
                                  NULL, T0) != 0) {
            break;
          }
        }
      } else if (ev.type == TERN_CLIENT_EV_PUBACK) {
        in_order &= ev.seq == (uint64_t)acked_ok + 1 && ev.reason == 0;
        ++acked_ok;
      }
    }
  }
  CHECK(published == NPUB && acked_ok == NPUB && in_order,
        "peek client: every PUBLISH arrived whole, its PUBACK in order");
  CHECK(most > 4096 && most <= 16384,
        "peek client: PUBLISH frames offered up to 16 KiB at a time");

  /* Close: the client is closed only once its GOAWAY is consumed. */
  CHECK_EQ(tern_client_close(cl, T0), 0, "peek client: close");
  tern_ssize g = tern_client_peek_output(cl, &p1, T0);
  tern_client_event ev;
  int early = 0;
  while (tern_client_next_event(cl, &ev) == 1) {
    early |= ev.type == TERN_CLIENT_EV_DISCONNECTED;
  }
  CHECK(g > 0 && !early, "peek client: the GOAWAY offered, not yet closed");
  CHECK_EQ(tern_conn_read(sc, p1, (size_t)g, T0), g,
           "peek client: the hub reads it");
  CHECK_EQ(tern_client_consume(cl, (size_t)g), 0,
           "peek client: GOAWAY consumed");
  CHECK(tern_client_next_event(cl, &ev) == 1 &&
            ev.type == TERN_CLIENT_EV_DISCONNECTED &&
            ev.reason == TERN_GOAWAY_CLIENT,
        "peek client: then DISCONNECTED(CLIENT)");
  CHECK(tern_client_peek_output(cl, &p1, T0) == TERN_ERR_CLOSED && p1 == NULL,
        "peek client: then TERN_ERR_CLOSED");
  tern_client_del(cl);
  tern_conn_del(sc);

  /* A receiver, cut into pieces both ways: every message once, all acked. */
  tern_client *rc = client_up("reader", T0);
  tern_conn *rconn = NULL;
  tern_conn_new(&rconn, hub, T0);
  int got = 0;
  tern_tstamp now = T0;
  for (int round = 0; round < 5000 && tu_stats(hub).acked < NPUB; ++round) {
    now += TERN_MILLISECONDS;
    client_to_conn(rc, rconn, 5, &most, now);
    conn_to_client(rconn, rc, 7, now);
    while (tern_client_next_event(rc, &ev) == 1) {
      got += ev.type == TERN_CLIENT_EV_MESSAGE;
    }
    if (tern_client_get_expiry(rc) <= now) {
      tern_client_handle_expiry(rc, now);
    }
    if (tern_hub_get_expiry(hub) <= now) {
      tern_hub_handle_expiry(hub, now);
    }
  }
  CHECK(got == NPUB && tu_stats(hub).acked == NPUB,
        "peek client: the receiver got all, its ACKs arrived whole");

  /* A lost transport drops the held bytes; the next HELLO starts whole. */
  tern_client_conn_lost(rc, now);
  CHECK_EQ(tern_client_peek_output(rc, &p1, now), TERN_ERR_STATE,
           "peek client: no transport, no bytes");
  now = reconnect(rc, now);
  tern_ssize h = tern_client_peek_output(rc, &p1, now);
  CHECK_EQ(tern_client_consume(rc, 3), 0, "peek client: 3 HELLO bytes out");
  tern_client_conn_lost(rc, now);
  now = reconnect(rc, now);
  tu_out o;
  tu_out_init(&o);
  tern_ssize h2 = tern_client_peek_output(rc, &p1, now);
  if (h2 > 0) {
    tu_out_append(&o, p1, (size_t)h2);
    tu_out_decode(&o);
  }
  CHECK(h > 0 && h2 == h && !o.bad && o.nframes == 1 &&
            o.frames[0].f.type == WIRE_HELLO,
        "peek client: after a cut HELLO and a new transport, a whole HELLO");
  tu_out_free(&o);
  tern_client_del(rc);
  tern_conn_del(rconn);
  tern_hub_del(hub);
}

/* A producer with a long PUBLISH queue still answers a PING at once: the
   PONG goes within 16 KiB and one frame, peeked a few bytes at a time or
   written 16 KiB at a time, not after the whole queue. */
static void test_client_interleave(void) {
  for (int mode = 0; mode < 2; ++mode) {
    tern_hub *hub = tu_hub(NULL);
    tern_client *cl = client_up("both", T0);
    tern_conn *sc = NULL;
    tern_conn_new(&sc, hub, T0);
    tern_conn_allow_publish(sc, 1);
    size_t most = 0;
    int up = 0;
    for (int i = 0; i < 10 && !up; ++i) {
      client_to_conn(cl, sc, 1 << 20, &most, T0);
      conn_to_client(sc, cl, 1 << 20, T0);
      tern_client_event ev;
      while (tern_client_next_event(cl, &ev) == 1) {
        up |= ev.type == TERN_CLIENT_EV_CONNECTED;
      }
    }
    char payload[1000];
    memset(payload, 'z', sizeof(payload));
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.payload = (const uint8_t *)payload;
    d.payloadlen = sizeof(payload);
    int queued = 0;
    while (queued < 200 && tern_client_publish(cl, 0, (const uint8_t *)"r", 1,
                                               &d, NULL, T0) == 0) {
      ++queued;
    }
    /* Some of the queue goes, cut mid-frame; then a PING comes. */
    uint8_t buf[16384];
    tu_out o;
    tu_out_init(&o);
    tern_ssize n = tern_client_write(cl, buf, 5000, T0);
    if (n > 0) {
      tu_out_append(&o, buf, (size_t)n);
    }
    wire_frame ping;
    memset(&ping, 0, sizeof(ping));
    ping.type = WIRE_PING;
    ping.u.ping = 42;
    uint8_t pb[32];
    size_t pn = wire_frame_encode(pb, sizeof(pb), &ping);
    tern_client_read(cl, pb, pn, T0);
    size_t from = o.len;
    for (int i = 0; i < 100000; ++i) {
      const uint8_t *p;
      if (mode == 0) {
        n = tern_client_peek_output(cl, &p, T0);
        if (n <= 0) {
          break;
        }
        size_t k = min_size((size_t)n, 7);
        tu_out_append(&o, p, k);
        tern_client_consume(cl, k);
      } else {
        n = tern_client_write(cl, buf, sizeof(buf), T0);
        if (n <= 0) {
          break;
        }
        tu_out_append(&o, buf, (size_t)n);
      }
    }
    /* The frames by their heads (PUBLISH is not a receiver's frame). */
    size_t at = 0, pong_at = 0, pubs = 0;
    int whole = 1;
    while (at < o.len) {
      uint8_t type;
      uint64_t body;
      tern_ssize h = wire_frame_head(o.stream + at, o.len - at, &type, &body);
      if (h <= 0 || body > o.len - at - (size_t)h) {
        whole = 0;
        break;
      }
      if (type == WIRE_PONG && !pong_at) {
        pong_at = at + 1;
      }
      pubs += type == WIRE_PUBLISH;
      at += (size_t)h + (size_t)body;
    }
    CHECK(up && queued == 200 && whole && pubs == 200 && pong_at > from &&
              pong_at - from <= 16384 + 1100,
          mode == 0 ? "peek client: a PONG does not wait for the queue"
                    : "write client: a PONG does not wait for the queue");
    tu_out_free(&o);
    tern_client_del(cl);
    tern_conn_del(sc);
    tern_hub_del(hub);
  }
}

int main(void) {
  test_binary();
  test_sse();
  test_client();
  test_client_interleave();
  return tap_done();
}
