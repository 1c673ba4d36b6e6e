/*
 * The one-way web framings (lib/deliver/framing.c): byte-exact SSE, NDJSON
 * and poll bodies, base64 for payloads that are not UTF-8, items split
 * over small writes, heartbeats, loss notices, resume from Last-Event-ID
 * and ?seq=, out-of-band acks mapped to the stream that carried the seq,
 * long and short polls, goodbyes, topic messages, options refused with
 * nothing changed, allocation failures.
 */
#include "tap.h"
#include "testutil.h"

static const uint8_t *K(const char *s) { return (const uint8_t *)s; }

static tern_stream_opts opts(int framing, const char *key) {
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = framing;
  o.key = K(key);
  o.keylen = strlen(key);
  return o;
}

static tern_conn *open_o(tern_hub *hub, const tern_stream_opts *o,
                         tern_tstamp now) {
  tern_conn *c = NULL;
  int rv = tern_conn_new_stream(&c, hub, o, now);
  if (rv != 0 || !c) {
    printf("# tern_conn_new_stream: %s\n", tern_strerror(rv));
    BAILOUT("cannot open a stream");
  }
  return c;
}

static tern_conn *open_k(tern_hub *hub, int framing, const char *key,
                         tern_tstamp now) {
  tern_stream_opts o = opts(framing, key);
  return open_o(hub, &o, now);
}

/* The body so far: every write with |cap| until 0 or an error. */
typedef struct body {
  char buf[65536];
  size_t len;
  tern_ssize last;
} body;

static void drain(body *b, tern_conn *c, size_t cap, tern_tstamp now) {
  uint8_t tmp[65536];
  for (;;) {
    tern_ssize n = tern_conn_write(c, tmp, cap, now);
    b->last = n;
    if (n <= 0) {
      return;
    }
    memcpy(b->buf + b->len, tmp, (size_t)n);
    b->len += (size_t)n;
  }
}

static void body_reset(body *b) {
  b->len = 0;
  b->last = 0;
}

static int pub_ct(tern_hub *hub, const char *key, int prio, const char *id,
                  const char *ct, const void *payload, size_t len,
                  tern_tstamp now) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = prio;
  d.id = K(id);
  d.idlen = strlen(id);
  d.content_type = ct;
  d.payload = payload;
  d.payloadlen = len;
  return tern_hub_publish(hub, K(key), strlen(key), &d, now, NULL);
}

static int body_is(const body *b, const char *want, const char *what) {
  size_t n = strlen(want);
  int ok = b->len == n && memcmp(b->buf, want, n) == 0;
  CHECK(ok, "%s", what);
  if (!ok) {
    printf("#   got  %.*s|\n#   want %s|\n", (int)b->len, b->buf, want);
  }
  return ok;
}

static char E[32]; /* the hub's epoch in decimal */
static void set_epoch(tern_hub *hub) {
  snprintf(E, sizeof E, "%llu", (unsigned long long)tern_hub_get_epoch(hub));
}

/* Publishes the two messages of the exact-output tests. */
static void pub_two(tern_hub *hub, const char *key) {
  pub_ct(hub, key, TERN_PRIO_NORMAL, "a1", "text/plain", "hello", 5, T0);
  pub_ct(hub, key, TERN_PRIO_HIGH, "b\"2", NULL, "x\"y\n", 4, T0);
}

#define ENV1 "{\"seq\":1,\"id\":\"b\\\"2\",\"prio\":\"high\",\"data\":\"x\\\"y\\u000a\"}"
#define ENV2 "{\"seq\":2,\"id\":\"a1\",\"prio\":\"normal\",\"ct\":\"text/plain\",\"data\":\"hello\"}"

static void test_exact(void) {
  char want[1024];
  size_t caps[] = {65536, 7, 1};
  for (size_t i = 0; i < 3; ++i) {
    tern_hub *hub = tu_hub(NULL);
    set_epoch(hub);
    tern_stream_opts o = opts(TERN_FRAMING_SSE, "s");
    o.retry = SEC(3);
    tern_conn *c = open_o(hub, &o, T0);
    pub_two(hub, "s");
    body b;
    body_reset(&b);
    drain(&b, c, caps[i], T0);
    snprintf(want, sizeof want,
             "retry: 3000\n"
             "id: %s.1\nevent: msg\ndata: " ENV1 "\n\n"
             "id: %s.2\nevent: msg\ndata: " ENV2 "\n\n",
             E, E);
    body_is(&b, want, "SSE body exact");
    CHECK_EQ(b.last, 0, "then nothing (cap %zu)", caps[i]);
    tern_conn_del(c);

    tern_conn *n = open_k(hub, TERN_FRAMING_NDJSON, "n", T0);
    pub_two(hub, "n");
    body_reset(&b);
    drain(&b, n, caps[i], T0);
    body_is(&b, ENV1 "\r\n" ENV2 "\r\n", "NDJSON body exact");
    tern_conn_del(n);

    pub_two(hub, "p");
    tern_conn *p = open_k(hub, TERN_FRAMING_POLL, "p", T0);
    body_reset(&b);
    drain(&b, p, caps[i], T0);
    body_is(&b, "[" ENV1 "," ENV2 "]", "poll body exact");
    CHECK_EQ(b.last, TERN_ERR_CLOSED, "then the poll is over (cap %zu)",
             caps[i]);
    CHECK(tern_conn_is_closed(p), "closed");
    tern_event ev;
    int found = 0;
    while (tern_hub_next_event(hub, &ev) == 1) {
      if (ev.type == TERN_EV_CONN_CLOSED && ev.conn == p &&
          ev.reason == TERN_GOAWAY_DONE) {
        ++found;
      }
    }
    CHECK_EQ(found, 1, "one end event, reason DONE");
    tern_session_info si = tu_info(hub, "p");
    CHECK_EQ(si.inflight, 0, "its messages went back to the session");
    CHECK_EQ(si.pending, 2, "both pending again");
    tern_conn_del(p);
    tern_hub_del(hub);
  }
}

static void test_base64(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_k(hub, TERN_FRAMING_NDJSON, "k", T0);
  static const uint8_t bad[] = {0xff, 0xfe, 0x00, 'a'};
  pub_ct(hub, "k", TERN_PRIO_LOW, "i", "application/octet-stream", bad, 4, T0);
  pub_ct(hub, "k", TERN_PRIO_LOW, "j", NULL, "\xc3\xa9\xe2\x82\xac", 5, T0);
  body b;
  body_reset(&b);
  drain(&b, c, 4096, T0);
  body_is(&b,
          "{\"seq\":1,\"id\":\"i\",\"prio\":\"low\",\"ct\":"
          "\"application/octet-stream\",\"enc\":\"base64\",\"data\":"
          "\"//4AYQ==\"}\r\n"
          "{\"seq\":2,\"id\":\"j\",\"prio\":\"low\",\"data\":"
          "\"\xc3\xa9\xe2\x82\xac\"}\r\n",
          "not UTF-8: base64; UTF-8 as is");
  tern_conn_del(c);
  tern_hub_del(hub);
}

static void test_heartbeat(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_stream_opts o = opts(TERN_FRAMING_SSE, "h");
  o.heartbeat_interval = SEC(2);
  tern_conn *c = open_o(hub, &o, T0);
  tern_stream_opts on = opts(TERN_FRAMING_NDJSON, "h2");
  on.heartbeat_interval = SEC(3);
  tern_conn *n = open_o(hub, &on, T0);
  body b, bn;
  body_reset(&b);
  body_reset(&bn);
  drain(&b, c, 100, T0);
  CHECK_EQ(b.len, 0, "no retry hint: nothing at first");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(2), "first deadline: heartbeat");
  tern_hub_handle_expiry(hub, T0 + SEC(2));
  CHECK(tern_conn_want_write(c), "heartbeat due");
  CHECK(!tern_conn_want_write(n), "not the slower one");
  drain(&b, c, 100, T0 + SEC(2));
  body_is(&b, ":\n", "SSE heartbeat: a comment line");
  /* A message written at 3 s pushes the next heartbeat to 5 s. */
  tu_pub(hub, "h", TERN_PRIO_NORMAL, "m", "x", T0 + SEC(3));
  body_reset(&b);
  drain(&b, c, 4096, T0 + SEC(3));
  CHECK(b.len > 0, "message written");
  tern_hub_handle_expiry(hub, T0 + SEC(3));
  drain(&bn, n, 100, T0 + SEC(3));
  body_is(&bn, "{\"hb\":3000}\r\n", "NDJSON heartbeat line");
  tern_hub_handle_expiry(hub, T0 + MS(4500));
  body_reset(&b);
  drain(&b, c, 100, T0 + MS(4500));
  CHECK_EQ(b.len, 0, "no heartbeat 1.5 s after a message");
  tern_hub_handle_expiry(hub, T0 + SEC(5));
  drain(&b, c, 100, T0 + SEC(5));
  body_is(&b, ":\n", "heartbeat 2 s after the message");
  tern_conn_info ci = tu_conn_info(c);
  CHECK_EQ(ci.heartbeat_interval, SEC(2), "info: heartbeat");
  CHECK_EQ(ci.liveness_timeout, 0, "info: no liveness timeout");
  /* Silence from the peer never ends it. */
  tern_hub_handle_expiry(hub, T0 + SEC(60));
  CHECK(!tern_conn_is_closed(c), "no liveness deadline");
  uint8_t in[4] = {1, 2, 3, 4};
  CHECK_EQ(tern_conn_read(c, in, 4, T0), TERN_ERR_STATE, "read refused");
  CHECK(!tern_conn_is_closed(c), "and the stream goes on");
  tern_conn_del(c);
  tern_conn_del(n);
  tern_hub_del(hub);
}

/* A one-way stream's peer never speaks: deleting it after a day on the air
   starts the session's TTL from the bytes last written, not from its open
   (which would expire the session, and what it holds, at once). */
static void test_ttl_after_long_stream(void) {
  tern_settings st = tu_settings();
  st.session_ttl = SEC(10);
  tern_hub *hub = tu_hub(&st);
  tern_stream_opts o = opts(TERN_FRAMING_SSE, "long");
  o.heartbeat_interval = SEC(2);
  tern_conn *c = open_o(hub, &o, T0);
  body b;
  tern_tstamp t = T0;
  for (; t <= T0 + SEC(60); t += SEC(2)) {
    tern_hub_handle_expiry(hub, t);
    body_reset(&b);
    drain(&b, c, 4096, t);
  }
  t -= SEC(2);
  CHECK_EQ(tu_info(hub, "long").expires, TERN_TSTAMP_NONE,
           "long stream: no expiry while attached");
  tu_pub(hub, "long", TERN_PRIO_NORMAL, "kept", "x", t);
  drain(&b, c, 4096, t);
  CHECK_EQ(tu_info(hub, "long").inflight, 1, "long stream: one in flight");
  tern_conn_del(c);
  tern_session_info i = tu_info(hub, "long");
  CHECK_EQ(i.expires, t + SEC(10),
           "long stream: the TTL starts at the last bytes written");
  CHECK_EQ(i.pending, 1, "long stream: its message went back to the queue");
  tern_hub_handle_expiry(hub, t + SEC(9));
  CHECK(tern_hub_find_session(hub, K("long"), 4) != NULL,
        "long stream: the session outlives its stream by the TTL");
  tern_hub_handle_expiry(hub, t + SEC(10));
  CHECK(tern_hub_find_session(hub, K("long"), 4) == NULL,
        "long stream: and expires then");
  tern_hub_del(hub);
}

static void test_dropped(void) {
  tern_settings s = tu_settings();
  s.max_pending = 2;
  tern_hub *hub = tu_hub(&s);
  set_epoch(hub);
  for (int i = 0; i < 3; ++i) {
    tu_pub(hub, "d", TERN_PRIO_LOW, i == 0 ? "m0" : i == 1 ? "m1" : "m2",
           "z", T0);
  }
  tern_conn *c = open_k(hub, TERN_FRAMING_SSE, "d", T0);
  body b;
  body_reset(&b);
  drain(&b, c, 4096, T0);
  char want[512];
  snprintf(want, sizeof want,
           "event: dropped\ndata: {\"count\":1,\"reason\":\"overflow\"}\n\n"
           "id: %s.1\nevent: msg\ndata: {\"seq\":1,\"id\":\"m1\",\"prio\":"
           "\"low\",\"data\":\"z\"}\n\n"
           "id: %s.2\nevent: msg\ndata: {\"seq\":2,\"id\":\"m2\",\"prio\":"
           "\"low\",\"data\":\"z\"}\n\n",
           E, E);
  body_is(&b, want, "SSE: dropped event, then the messages");
  /* Not confirmed (no ack): the next stream tells it again. */
  tern_conn_del(c);
  tern_conn *n = open_k(hub, TERN_FRAMING_NDJSON, "d", T0);
  body_reset(&b);
  drain(&b, n, 4096, T0);
  CHECK(b.len > 44 && memcmp(b.buf,
                             "{\"dropped\":{\"count\":1,\"reason\":"
                             "\"overflow\"}}\r\n",
                             44) == 0,
        "NDJSON: dropped line, told again on the next stream");
  CHECK_EQ(tern_hub_ack(hub, K("d"), 1, 4, T0), 2, "ack of both");
  tern_conn_del(n);
  tern_conn *p = open_k(hub, TERN_FRAMING_POLL, "d", T0);
  tu_pub(hub, "d", TERN_PRIO_LOW, "m3", "z", T0);
  body_reset(&b);
  drain(&b, p, 4096, T0);
  body_is(&b, "[{\"seq\":5,\"id\":\"m3\",\"prio\":\"low\",\"data\":\"z\"}]",
          "the ack confirmed the notice: not told a third time");
  tern_conn_del(p);
  tern_hub_del(hub);
}

static void test_resume(void) {
  tern_hub *hub = tu_hub(NULL);
  set_epoch(hub);
  for (int i = 0; i < 3; ++i) {
    char id[4] = {'m', (char)('1' + i), 0};
    tu_pub(hub, "r", TERN_PRIO_NORMAL, id, "p", T0);
  }
  tern_conn *c1 = open_k(hub, TERN_FRAMING_SSE, "r", T0);
  body b;
  body_reset(&b);
  drain(&b, c1, 4096, T0);
  CHECK_EQ(tu_info(hub, "r").inflight, 3, "three in flight on the first");
  /* The browser reconnects with Last-Event-ID while the server has not
     seen the old socket close yet. */
  char leid[64];
  snprintf(leid, sizeof leid, "%s.2", E);
  tern_stream_opts o = opts(TERN_FRAMING_SSE, "r");
  CHECK_EQ(tern_stream_parse_resume(leid, strlen(leid), &o.resume_epoch,
                                    &o.resume_seq),
           0, "Last-Event-ID parsed");
  uint64_t acked0 = tu_stats(hub).acked;
  tern_conn *c2 = open_o(hub, &o, T0 + SEC(1));
  CHECK_EQ(tu_stats(hub).acked - acked0, 2, "resume acked 1 and 2");
  CHECK(tern_conn_is_closed(c1), "the stale stream is replaced");
  body_reset(&b);
  drain(&b, c1, 4096, T0 + SEC(1));
  body_is(&b,
          "event: goaway\ndata: {\"reason\":\"replaced\",\"retry\":0}\n\n",
          "its goodbye");
  CHECK_EQ(b.last, TERN_ERR_CLOSED, "then closed");
  tern_conn_del(c1);
  body_reset(&b);
  drain(&b, c2, 4096, T0 + SEC(1));
  char want[256];
  snprintf(want, sizeof want,
           "id: %s.4\nevent: msg\ndata: {\"seq\":4,\"id\":\"m3\",\"prio\":"
           "\"normal\",\"data\":\"p\"}\n\n",
           E);
  body_is(&b, want, "only the unacked one again, under a new seq");
  /* Another epoch acks nothing. */
  tern_conn_del(c2);
  tern_stream_opts o3 = opts(TERN_FRAMING_NDJSON, "r");
  o3.resume_epoch = tern_hub_get_epoch(hub) + 1;
  o3.resume_seq = 4;
  acked0 = tu_stats(hub).acked;
  tern_conn *c3 = open_o(hub, &o3, T0 + SEC(2));
  CHECK_EQ(tu_stats(hub).acked, acked0, "a seq of another epoch acks nothing");
  body_reset(&b);
  drain(&b, c3, 4096, T0 + SEC(2));
  CHECK(b.len > 8 && memcmp(b.buf, "{\"seq\":5,", 9) == 0, "sent again as 5");
  tern_conn_del(c3);
  /* ?seq=N (no epoch) acks like Last-Event-ID. */
  tern_stream_opts o4 = opts(TERN_FRAMING_POLL, "r");
  CHECK_EQ(tern_stream_parse_resume("5", 1, &o4.resume_epoch, &o4.resume_seq),
           0, "?seq= parsed");
  CHECK_EQ(o4.resume_epoch, 0, "no epoch");
  tern_conn *c4 = open_o(hub, &o4, T0 + SEC(3)); /* c3 sent m3 as seq 5 */
  CHECK_EQ(tu_stats(hub).acked - acked0, 1, "?seq=5 acked it");
  CHECK_EQ(tu_info(hub, "r").pending + tu_info(hub, "r").inflight, 0,
           "nothing left to send");
  tern_conn_del(c4);
  tern_hub_del(hub);
}

static void test_oob_ack(void) {
  tern_hub *hub = tu_hub(NULL);
  tu_pub(hub, "a", TERN_PRIO_NORMAL, "m1", "1", T0);
  tu_pub(hub, "a", TERN_PRIO_NORMAL, "m2", "2", T0);
  tern_conn *s1 = open_k(hub, TERN_FRAMING_SSE, "a", T0);
  body b;
  body_reset(&b);
  drain(&b, s1, 4096, T0);
  /* A second stream of the session, opened while the first is alive. */
  tern_conn *s2 = open_k(hub, TERN_FRAMING_NDJSON, "a", T0);
  tu_pub(hub, "a", TERN_PRIO_NORMAL, "m3", "3", T0);
  tu_pub(hub, "a", TERN_PRIO_NORMAL, "m4", "4", T0);
  body_reset(&b);
  drain(&b, s2, 4096, T0);
  CHECK_EQ(tu_conn_info(s1).inflight, 2, "s1 carries 1, 2");
  CHECK_EQ(tu_conn_info(s2).inflight, 2, "s2 carries 3, 4");
  tern_stats st0 = tu_stats(hub);
  CHECK_EQ(tern_hub_ack(hub, K("a"), 1, 3, T0), 1, "ack 3: one message");
  CHECK_EQ(tu_conn_info(s2).inflight, 1, "on s2");
  CHECK_EQ(tu_conn_info(s1).inflight, 2, "s1 untouched (acks per stream)");
  CHECK_EQ(tu_stats(hub).acked - st0.acked, 1, "counted");
  /* s1 goes; its messages wait in the session; the ack of 2 still finds
     them through their stream. */
  tern_conn_del(s1);
  CHECK_EQ(tu_info(hub, "a").pending, 2, "s1's two back in the session");
  CHECK_EQ(tern_hub_ack(hub, K("a"), 1, 2, T0), 2, "ack 2 after s1 went");
  CHECK_EQ(tu_info(hub, "a").pending, 0, "not sent again");
  CHECK_EQ(tern_hub_ack(hub, K("a"), 1, 4, T0), 1, "ack 4 on s2");
  CHECK_EQ(tern_hub_ack(hub, K("a"), 1, 4, T0), 0, "again: nothing");
  /* Errors change nothing. */
  tu_pub(hub, "a", TERN_PRIO_NORMAL, "m5", "5", T0);
  body_reset(&b);
  drain(&b, s2, 4096, T0);
  tern_stats st1 = tu_stats(hub);
  tern_session_info si1 = tu_info(hub, "a");
  CHECK_EQ(tern_hub_ack(hub, K("zz"), 2, 1, T0), TERN_ERR_NOT_FOUND,
           "unknown session");
  CHECK_EQ(tern_hub_ack(hub, K("a"), 1, 6, T0), TERN_ERR_INVALID,
           "a seq not sent yet");
  CHECK_EQ(tern_hub_ack(hub, K("a"), 1, 0, T0), TERN_ERR_INVALID, "seq 0");
  CHECK_EQ(tern_hub_ack(hub, NULL, 1, 1, T0), TERN_ERR_INVALID, "NULL key");
  CHECK_EQ(tern_hub_ack(NULL, K("a"), 1, 1, T0), TERN_ERR_INVALID, "NULL hub");
  tern_stats st2 = tu_stats(hub);
  tern_session_info si2 = tu_info(hub, "a");
  CHECK(tu_gauges_equal(&st1, &st2) && st1.acked == st2.acked &&
            tu_info_equal(&si1, &si2),
        "nothing changed");
  CHECK_EQ(tern_hub_ack(hub, K("a"), 1, 5, T0), 1, "then ack 5");
  tern_conn_del(s2);
  tern_hub_del(hub);
}

static void test_poll(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_stream_opts o = opts(TERN_FRAMING_POLL, "q");
  o.poll_hold = SEC(10);
  tern_conn *p = open_o(hub, &o, T0);
  body b;
  body_reset(&b);
  drain(&b, p, 4096, T0);
  CHECK(b.len == 0 && b.last == 0, "long poll: holds");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(10), "until its hold time");
  tern_hub_handle_expiry(hub, T0 + SEC(10));
  CHECK(tern_conn_is_closed(p), "ends at the hold time");
  drain(&b, p, 4096, T0 + SEC(10));
  CHECK(b.len == 0 && b.last == TERN_ERR_CLOSED, "with an empty body (204)");
  tern_conn_del(p);
  /* A message during the hold answers at once. */
  p = open_o(hub, &o, T0 + SEC(11));
  CHECK(tern_hub_next_ready(hub) == NULL, "nothing to write yet");
  tu_pub(hub, "q", TERN_PRIO_NORMAL, "m1", "x", T0 + SEC(12));
  CHECK(tern_hub_next_ready(hub) == p, "a publish makes it ready");
  body_reset(&b);
  drain(&b, p, 4096, T0 + SEC(12));
  body_is(&b, "[{\"seq\":1,\"id\":\"m1\",\"prio\":\"normal\",\"data\":\"x\"}]",
          "answer");
  CHECK_EQ(b.last, TERN_ERR_CLOSED, "then over");
  tern_conn_del(p);
  /* The next poll without the ack gets it again; with ?seq=2 it is acked. */
  tern_stream_opts sp = opts(TERN_FRAMING_POLL, "q");
  sp.poll_hold = 0;
  p = open_o(hub, &sp, T0 + SEC(13));
  body_reset(&b);
  drain(&b, p, 4096, T0 + SEC(13));
  body_is(&b, "[{\"seq\":2,\"id\":\"m1\",\"prio\":\"normal\",\"data\":\"x\"}]",
          "short poll: sent again, unacked");
  tern_conn_del(p);
  sp.resume_seq = 2;
  p = open_o(hub, &sp, T0 + SEC(14));
  CHECK(tern_hub_next_ready(hub) == p, "short poll: ready at once");
  body_reset(&b);
  drain(&b, p, 4096, T0 + SEC(14));
  CHECK(b.len == 0 && b.last == TERN_ERR_CLOSED,
        "short poll with ?seq=2: acked, empty answer at once");
  tern_conn_del(p);
  /* A poll answers at most the window, and a goaway closes the array. */
  tern_settings s = tu_settings();
  s.inflight_window = 2;
  tern_hub *h2 = tu_hub(&s);
  for (int i = 0; i < 3; ++i) {
    tu_pub(h2, "w", TERN_PRIO_NORMAL, NULL, "v", T0);
  }
  p = open_k(h2, TERN_FRAMING_POLL, "w", T0);
  body_reset(&b);
  drain(&b, p, 4096, T0);
  CHECK(b.last == TERN_ERR_CLOSED && b.len > 2 && b.buf[0] == '[' &&
            b.buf[b.len - 1] == ']',
        "window full: the answer ends");
  CHECK_EQ(tu_info(h2, "w").pending, 3, "all three pending again");
  tern_conn_del(p);
  p = open_k(h2, TERN_FRAMING_POLL, "w", T0);
  uint8_t one[1];
  CHECK_EQ(tern_conn_write(p, one, 1, T0), 1, "'[' then a message spills");
  tern_conn_goaway(p, TERN_GOAWAY_RESTART, 0, T0);
  drain(&b, p, 3, T0);
  CHECK(b.last == TERN_ERR_CLOSED, "closed after the goaway");
  tern_conn_del(p);
  tern_hub_del(h2);
  tern_hub_del(hub);
}

static void test_goaway_and_topic(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_conn *c = open_k(hub, TERN_FRAMING_SSE, "g", T0);
  tern_conn *n = open_k(hub, TERN_FRAMING_NDJSON, "g2", T0);
  tern_conn_goaway(c, TERN_GOAWAY_RESTART, SEC(5), T0);
  tern_conn_goaway(n, TERN_GOAWAY_RESTART, SEC(5), T0);
  body b;
  body_reset(&b);
  drain(&b, c, 4096, T0);
  body_is(&b,
          "retry: 5000\nevent: goaway\ndata: {\"reason\":\"restart\","
          "\"retry\":5000}\n\n",
          "SSE goodbye with the retry hint");
  body_reset(&b);
  drain(&b, n, 4096, T0);
  body_is(&b, "{\"goaway\":{\"reason\":\"restart\",\"retry\":5000}}\r\n",
          "NDJSON goodbye");
  tern_conn_del(c);
  tern_conn_del(n);

  tern_topic_options to;
  tern_topic_options_default(&to);
  tern_topic *t = NULL;
  tern_hub_create_topic(hub, "news", &to, T0, &t);
  CHECK_EQ(tern_hub_subscribe(hub, K("t"), 1, "news", NULL, T0, NULL), 1,
           "subscribed");
  tern_conn *tc = open_k(hub, TERN_FRAMING_NDJSON, "t", T0);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = K("n1");
  d.idlen = 2;
  d.priority = TERN_PRIO_NORMAL;
  d.content_type = "application/json";
  d.payload = K("{\"a\":1}");
  d.payloadlen = 7;
  uint64_t off = 99;
  tern_topic_publish(t, &d, T0, &off);
  tu_pub(hub, "t", TERN_PRIO_HIGH, "direct", "d", T0);
  body_reset(&b);
  drain(&b, tc, 4096, T0);
  body_is(&b,
          "{\"seq\":1,\"id\":\"direct\",\"prio\":\"high\",\"data\":\"d\"}\r\n"
          "{\"seq\":2,\"id\":\"n1\",\"prio\":\"normal\",\"ct\":"
          "\"application/json\",\"data\":\"{\\\"a\\\":1}\"}\r\n",
          "a topic message in the stream, after a higher direct one");
  CHECK_EQ(tern_hub_ack(hub, K("t"), 1, 2, T0), 2, "both acked out of band");
  tern_receipt r;
  memset(&r, 0, sizeof r);
  tern_topic_get_receipt(t, off, &r, sizeof(r));
  CHECK_EQ(r.acked, 1, "the topic's receipt counts the ack");
  CHECK_EQ(r.sent, 1, "and the send, made on a web framing");
  /* A loss found on the way (e1's TTL passed unsent) is told before the
     message after it. */
  d.id = K("e1");
  d.ttl = SEC(1);
  tern_topic_publish(t, &d, T0, NULL);
  d.id = K("n2");
  d.ttl = 0;
  tern_topic_publish(t, &d, T0, NULL);
  body_reset(&b);
  drain(&b, tc, 4096, T0 + SEC(2));
  b.buf[b.len] = '\0';
  const char *lost = strstr(b.buf, "{\"dropped\":{\"count\":1,");
  const char *n2 = strstr(b.buf, "\"id\":\"n2\"");
  CHECK(lost && n2 && lost < n2 && !strstr(b.buf, "\"e1\""),
        "the loss is told before the next message, the expired one never "
        "sent");
  if (!(lost && n2 && lost < n2)) {
    printf("#   got %s\n", b.buf);
  }
  tern_conn_del(tc);
  tern_hub_del(hub);
}

static void test_bad_options(void) {
  tern_settings s = tu_settings();
  s.max_conns = 1;
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "b", TERN_PRIO_NORMAL, "m", "x", T0);
  tern_conn *keep = open_k(hub, TERN_FRAMING_SSE, "full", T0);
  tern_stats st0 = tu_stats(hub);
  tern_session_info si0 = tu_info(hub, "b");
  tern_conn *c = (tern_conn *)&s; /* must stay untouched */
  tern_conn *const sentinel = c;
  tern_stream_opts o;
  struct {
    const char *what;
    int want;
  } cases[] = {
      {"version 0", TERN_ERR_INVALID},      {"version 99", TERN_ERR_INVALID},
      {"binary framing", TERN_ERR_INVALID}, {"WS_BIN with a key", TERN_ERR_INVALID},
      {"framing 77", TERN_ERR_INVALID},     {"NULL key", TERN_ERR_INVALID},
      {"empty key", TERN_ERR_INVALID},      {"long key", TERN_ERR_TOO_LARGE},
      {"heartbeat 500 ms", TERN_ERR_INVALID},
      {"heartbeat over max", TERN_ERR_INVALID},
      {"retry over a day", TERN_ERR_INVALID},
      {"hold over a day", TERN_ERR_INVALID},
      {"max_conns", TERN_ERR_LIMIT},
  };
  static uint8_t longkey[TERN_MAX_SESSION_KEY + 1];
  memset(longkey, 'k', sizeof longkey);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    o = opts(TERN_FRAMING_SSE, "b");
    o.resume_seq = 1;
    switch (i) {
    case 0: o.version = 0; break;
    case 1: o.version = 99; break;
    case 2: o.framing = TERN_FRAMING_BINARY; break;
    case 3: o.framing = TERN_FRAMING_WS_BIN; break;
    case 4: o.framing = 77; break;
    case 5: o.key = NULL; break;
    case 6: o.keylen = 0; break;
    case 7: o.key = longkey; o.keylen = sizeof longkey; break;
    case 8: o.heartbeat_interval = MS(500); break;
    case 9: o.heartbeat_interval = s.max_heartbeat + 1; break;
    case 10: o.retry = SEC(86401); break;
    case 11: o.framing = TERN_FRAMING_POLL; o.poll_hold = SEC(86401); break;
    case 12: o.key = K("full"); o.keylen = 4; break;
    }
    CHECK_EQ(tern_conn_new_stream(&c, hub, &o, T0), cases[i].want, "%s",
             cases[i].what);
  }
  tern_stats st1 = tu_stats(hub);
  tern_session_info si1 = tu_info(hub, "b");
  CHECK(c == sentinel, "*pconn untouched");
  CHECK(tu_gauges_equal(&st0, &st1) && st0.acked == st1.acked &&
            st0.sessions_created == st1.sessions_created &&
            tu_info_equal(&si0, &si1),
        "nothing changed");
  o = opts(TERN_FRAMING_SSE, "b");
  CHECK_EQ(tern_conn_new_stream(NULL, hub, &o, T0), TERN_ERR_INVALID,
           "NULL pconn");
  CHECK_EQ(tern_conn_new_stream(&c, NULL, &o, T0), TERN_ERR_INVALID,
           "NULL hub");
  CHECK_EQ(tern_conn_new_stream(&c, hub, NULL, T0), TERN_ERR_INVALID,
           "NULL opts");
  CHECK_EQ(tu_stats(hub).sessions, st0.sessions, "no session made");
  tern_conn_del(keep);
  tern_hub_del(hub);

  CHECK(strcmp(tern_framing_content_type(TERN_FRAMING_SSE),
               "text/event-stream") == 0 &&
            strcmp(tern_framing_content_type(TERN_FRAMING_NDJSON),
                   "application/x-ndjson") == 0 &&
            strcmp(tern_framing_content_type(TERN_FRAMING_POLL),
                   "application/json") == 0 &&
            tern_framing_content_type(TERN_FRAMING_BINARY) == NULL &&
            tern_framing_content_type(TERN_FRAMING_WS_JSON) == NULL,
        "content types");
  tern_stream_opts d;
  memset(&d, 0xab, sizeof d);
  tern_stream_opts_default(&d);
  CHECK(d.version == TERN_STREAM_OPTS_VERSION && d.framing == 0 &&
            d.key == NULL && d.keylen == 0 && d.resume_seq == 0 &&
            d.heartbeat_interval == 0 && d.retry == 0 &&
            d.poll_hold == SEC(25),
        "defaults");
  memset(&d, 0xab, sizeof d);
  tern_stream_opts_default_versioned(42, &d);
  CHECK_EQ(d.version, 0, "an unknown layout: version 0");
}

static void test_parse(void) {
  struct {
    const char *in;
    int ok;
    uint64_t e, s;
  } cases[] = {
      {"1.2", 1, 1, 2},
      {"18446744073709551615.18446744073709551615", 1, UINT64_MAX, UINT64_MAX},
      {"42", 1, 0, 42},
      {"0", 1, 0, 0},
      {"007.1", 1, 7, 1},
      {"", 0, 0, 0},
      {".", 0, 0, 0},
      {"1.", 0, 0, 0},
      {".1", 0, 0, 0},
      {"1.2.3", 0, 0, 0},
      {"18446744073709551616", 0, 0, 0},
      {"1.18446744073709551616", 0, 0, 0},
      {"000000000000000000001", 0, 0, 0},
      {" 1", 0, 0, 0},
      {"1 ", 0, 0, 0},
      {"-1", 0, 0, 0},
      {"+1", 0, 0, 0},
      {"1x", 0, 0, 0},
      {"0x10", 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    uint64_t e = 99, s = 99;
    int rv = tern_stream_parse_resume(cases[i].in, strlen(cases[i].in), &e, &s);
    if (cases[i].ok) {
      CHECK(rv == 0 && e == cases[i].e && s == cases[i].s, "parse \"%s\"",
            cases[i].in);
    } else {
      CHECK(rv == TERN_ERR_INVALID && e == 99 && s == 99,
            "refuse \"%s\", untouched", cases[i].in);
    }
  }
  uint64_t e, s;
  CHECK_EQ(tern_stream_parse_resume("1.2", 2, &e, &s), TERN_ERR_INVALID,
           "length counts: \"1.\"");
  CHECK_EQ(tern_stream_parse_resume("12", 1, &e, &s), 0, "prefix \"1\"");
  CHECK_EQ(tern_stream_parse_resume(NULL, 0, &e, &s), TERN_ERR_INVALID, "NULL");
}

/* Every allocation failure while opening and writing: an error and nothing
   changed, then the same output as without failures; no leak. */
static void test_nomem(void) {
  int clean = 1, same = 1, leaks = 0;
  for (long fail = 1; fail < 60; ++fail) {
    tu_alloc a;
    memset(&a, 0, sizeof a);
    tern_mem mem = tu_alloc_mem(&a);
    tern_settings s = tu_settings();
    s.max_pool_bytes = 0;
    tern_hub *hub = NULL;
    if (tern_hub_new(&hub, &s, &mem) != 0) {
      BAILOUT("hub");
    }
    char big[3000];
    memset(big, 'b', sizeof big);
    big[sizeof big - 1] = 0;
    tu_pub(hub, "x", TERN_PRIO_NORMAL, "m1", big, T0);
    tu_pub(hub, "x", TERN_PRIO_NORMAL, "m2", "y", T0);
    tern_stats st0 = tu_stats(hub);
    a.fail_at = a.calls + fail;
    tern_stream_opts o = opts(TERN_FRAMING_POLL, "x");
    tern_conn *c = NULL;
    int rv;
    while ((rv = tern_conn_new_stream(&c, hub, &o, T0)) != 0) {
      tern_stats st1 = tu_stats(hub);
      if (rv != TERN_ERR_NOMEM || !tu_gauges_equal(&st0, &st1)) {
        clean = 0;
      }
    }
    body b;
    body_reset(&b);
    for (int tries = 0; tries < 100; ++tries) {
      drain(&b, c, 100, T0);
      if (b.last != TERN_ERR_NOMEM) {
        break;
      }
      tern_hub_handle_expiry(hub, T0);
    }
    if (b.last != TERN_ERR_CLOSED || b.len != 3093) {
      same = 0;
      printf("# fail at %ld: last %ld len %zu\n", fail, (long)b.last, b.len);
    }
    tern_conn_del(c);
    tern_hub_del(hub);
    leaks += a.outstanding != 0;
    tu_alloc_finish(&a);
  }
  CHECK(clean, "NOMEM while opening: nothing changed");
  CHECK(same, "then the whole poll body");
  CHECK_EQ(leaks, 0, "no leak");
}

int main(void) {
  test_exact();
  test_base64();
  test_heartbeat();
  test_ttl_after_long_stream();
  test_dropped();
  test_resume();
  test_oob_ack();
  test_poll();
  test_goaway_and_topic();
  test_bad_options();
  test_parse();
  test_nomem();
  return tap_done();
}
