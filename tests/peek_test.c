/*
 * tern_conn_peek_output and tern_conn_consume: the connection keeps what
 * the host's socket did not take.  Bytes consumed a few at a time make the
 * same frames, in the same order, as tern_conn_write gives; a peek repeats
 * itself until consumed; tern_conn_write waits for the peeked bytes; the
 * held block is freed once consumed, and with the connection; no memory,
 * no loss; a closed connection says so after its last bytes; SSE alike.
 */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

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

int main(void) {
  test_binary();
  test_sse();
  return tap_done();
}
