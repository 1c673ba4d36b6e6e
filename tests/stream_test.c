/*
 * Tests of the delivery stream on connections: the in-flight window, ACKs,
 * resuming after a lost connection, DROPPED notices, several connections on
 * one session, limits, session expiry, heartbeats and liveness, ack
 * timeouts, host acceptance of HELLO, restart GOAWAYs, partial writes and
 * the ready list.  Time is injected; every check is on the bytes a fake
 * client receives or on what the host can observe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

static char pbuf[8192];

static void publish_n(tern_hub *hub, const char *key, int prio, int n,
                      const char *prefix, tern_tstamp now) {
  char p[32];
  for (int i = 0; i < n; ++i) {
    snprintf(p, sizeof(p), "%s%d", prefix, i);
    tu_pub(hub, key, prio, p, p, now);
  }
}

/* ---- window and ACK ---------------------------------------------------- */

static void test_window(void) {
  tern_settings s = tu_settings();
  s.inflight_window = 4;
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  const wire_frame *w = tu_nth(&o, WIRE_WELCOME, 0, 0);
  CHECK(w && w->u.welcome.window == 4, "WELCOME carries the window");
  publish_n(hub, "k", TERN_PRIO_NORMAL, 10, "m", T0);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 4, "a full window is sent");
  CHECK(!tern_conn_want_write(c), "nothing to write with the window full");
  CHECK_INT(tu_drain(&o, c, T0), 0, "a write with the window full gives 0");
  CHECK_INT(tu_conn_info(c).inflight, 4, "conn info: 4 in flight");
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.inflight == 4 && i.pending == 6 && i.next_seq == 5,
        "session info: 4 in flight, 6 pending, next seq 5");

  CHECK_INT(tu_ack(c, 2, T0), 3, "ACK consumes its bytes");
  CHECK(tern_conn_want_write(c), "acking makes room");
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 6, "two more sent after ACK 2");
  CHECK_INT(tu_conn_info(c).inflight, 4, "still at most the window");
  CHECK_INT(tu_stats(hub).acked, 2, "ACK 2 acked 2 (cumulative)");

  /* An ACK at or below an earlier one changes nothing. */
  tern_stats sb = tu_stats(hub);
  CHECK_INT(tu_ack(c, 1, T0), 3, "an old ACK is accepted");
  CHECK_INT(tu_ack(c, 0, T0), 3, "ACK 0 is accepted");
  tern_stats sa = tu_stats(hub);
  CHECK(sa.acked == sb.acked && tu_gauges_equal(&sb, &sa),
        "an old ACK changes nothing");

  /* Never more than the window, with acks of every size. */
  int over = 0;
  uint64_t acked = 2;
  for (int round = 0; round < 20; ++round) {
    uint64_t top = tu_max_seq(&o);
    uint64_t to = acked + (uint64_t)(round % 3);
    if (to > top) {
      to = top;
    }
    tu_ack(c, to, T0);
    acked = to;
    tu_drain(&o, c, T0);
    if (tu_conn_info(c).inflight > 4 || tu_max_seq(&o) - acked > 4) {
      over = 1;
    }
  }
  CHECK(!over, "never more than inflight_window unacked");
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 10, "all 10 sent in the end");
  tu_ack(c, 10, T0);
  i = tu_info(hub, "k");
  CHECK(i.inflight == 0 && i.pending == 0 && tu_stats(hub).messages == 0,
        "everything acked and freed");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_ack_beyond(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  publish_n(hub, "k", TERN_PRIO_NORMAL, 3, "m", T0);
  tu_drain(&o, c, T0);
  tern_stats sb = tu_stats(hub);
  tern_session_info ib = tu_info(hub, "k");
  CHECK_INT(tu_ack(c, 4, T0), TERN_ERR_PROTO,
            "ACK of a seq not sent yet -> PROTO");
  CHECK(tern_conn_is_closed(c), "the connection is closed");
  CHECK_INT(tu_conn_info(c).error, TERN_ERR_PROTO, "conn info error PROTO");
  tu_drain(&o, c, T0);
  const wire_frame *g = tu_last(&o, WIRE_GOAWAY);
  CHECK(g && g->u.goaway.reason == TERN_GOAWAY_PROTO, "GOAWAY PROTO written");
  CHECK(o.closed, "then the write reports CLOSED");
  tern_stats sa = tu_stats(hub);
  tern_session_info ia = tu_info(hub, "k");
  CHECK(sa.messages == sb.messages && sa.message_bytes == sb.message_bytes &&
            sa.acked == 0,
        "messages intact, none acked");
  CHECK(ia.pending == 3 && ia.inflight == 0 && ia.next_seq == ib.next_seq,
        "in-flight messages went back to the session");
  CHECK_INT(sa.proto_errors, 1, "stats.proto_errors");
  CHECK_INT(tu_ack(c, 1, T0), TERN_ERR_CLOSED, "reads after close: CLOSED");
  tern_conn_del(c);

  /* The messages go out on the next connection. */
  tu_out o2;
  tu_out_init(&o2);
  c = tu_connect(hub, "k", T0, &o2);
  CHECK(strcmp(tu_payloads(&o2, 0, pbuf, sizeof(pbuf)), "m0 m1 m2") == 0,
        "and are sent again on the next connection");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  tu_out_free(&o2);
}

/* ---- resume -------------------------------------------------------------- */

static void test_resume(void) {
  tern_settings s = tu_settings();
  s.inflight_window = 8;
  tern_hub *hub = tu_hub(&s);
  uint64_t epoch = tern_hub_get_epoch(hub);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub(hub, "k", TERN_PRIO_HIGH, "h0", "h0", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "n0", "n0", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, "l0", "l0", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "n1", "n1", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, "l1", "l1", T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, "h1", "h1", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "n2", "n2", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, "l2", "l2", T0);
  tu_drain(&o, c, T0);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)),
               "h0 h1 n0 n1 n2 l0 l1 l2") == 0,
        "a full window sent (seqs 1..8)");
  /* The client acks half the window, receives up to seq 6, and the
     connection dies. */
  tu_ack(c, 4, T0);
  tern_conn_del(c);
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.inflight == 0 && i.pending == 4 && i.nconns == 0,
        "the unacked in-flight messages are back in the session");
  /* Meanwhile more is published. */
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "n3", "n3", T0 + SEC(1));
  tu_pub(hub, "k", TERN_PRIO_HIGH, "h2", "h2", T0 + SEC(1));

  tu_out o2;
  tu_out_init(&o2);
  tern_conn *c2 = NULL;
  tern_conn_new(&c2, hub, T0 + SEC(2));
  CHECK_INT(tu_hello(c2, "k", 6, epoch, 0, NULL, T0 + SEC(2)),
            (tern_ssize)tu_hello_bytes((uint8_t *)pbuf, sizeof(pbuf), "k", 6,
                                       epoch, 0, NULL),
            "HELLO with last_seq 6 and the hub epoch");
  tu_drain(&o2, c2, T0 + SEC(2));
  const wire_frame *w = tu_nth(&o2, WIRE_WELCOME, 0, 0);
  CHECK(w && (w->u.welcome.flags & WIRE_WELCOME_RESUMED) &&
            (w->u.welcome.flags & WIRE_WELCOME_EXISTED) &&
            w->u.welcome.epoch == epoch,
        "WELCOME: RESUMED, EXISTED, the hub epoch");
  CHECK(strcmp(tu_payloads(&o2, 0, pbuf, sizeof(pbuf)), "h2 n3 l1 l2") == 0,
        "exactly the unreceived ones are sent again, in priority/publish "
        "order, with the new ones");
  tap_diag("got %s", pbuf);
  int new_seqs = tu_count(&o2, WIRE_MSG, 0) == 4;
  for (size_t k = 0; k < tu_count(&o2, WIRE_MSG, 0); ++k) {
    if (tu_nth(&o2, WIRE_MSG, 0, k)->u.msg.seq != 9 + k) {
      new_seqs = 0;
    }
  }
  CHECK(new_seqs, "the 4 messages sent carry new seqs (9..12)");
  CHECK_INT(tu_count(&o2, WIRE_DROPPED, 0), 0, "no DROPPED on resume");
  CHECK_INT(tu_stats(hub).acked, 6, "last_seq 6 acknowledged 5 and 6");
  CHECK_INT(tu_stats(hub).resent, 2, "stats.resent counts the re-sends");
  tern_conn_del(c2);
  tu_out_free(&o2);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_resume_wrong_epoch(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  uint64_t epoch = tern_hub_get_epoch(hub);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  publish_n(hub, "k", TERN_PRIO_NORMAL, 4, "m", T0);
  tu_drain(&o, c, T0);
  tu_ack(c, 1, T0);
  tern_conn_del(c);
  for (int variant = 0; variant < 2; ++variant) {
    uint64_t e = variant == 0 ? epoch ^ 1 : 0;
    tu_out o2;
    tu_out_init(&o2);
    c = NULL;
    tern_conn_new(&c, hub, T0);
    tu_hello(c, "k", 4, e, 0, NULL, T0);
    tu_drain(&o2, c, T0);
    const wire_frame *w = tu_nth(&o2, WIRE_WELCOME, 0, 0);
    CHECK(w && !(w->u.welcome.flags & WIRE_WELCOME_RESUMED) &&
              w->u.welcome.epoch == epoch,
          variant == 0 ? "wrong epoch: WELCOME has the hub epoch, no RESUMED"
                       : "epoch 0: WELCOME has the hub epoch, no RESUMED");
    CHECK(strcmp(tu_payloads(&o2, 0, pbuf, sizeof(pbuf)), "m1 m2 m3") == 0,
          variant == 0 ? "wrong epoch: last_seq acks nothing"
                       : "epoch 0: last_seq acks nothing");
    tern_conn_del(c);
    tu_out_free(&o2);
  }
  /* last_seq 0 with the right epoch also acks nothing. */
  tu_out o3;
  tu_out_init(&o3);
  c = NULL;
  tern_conn_new(&c, hub, T0);
  tu_hello(c, "k", 0, epoch, 0, NULL, T0);
  tu_drain(&o3, c, T0);
  const wire_frame *w = tu_nth(&o3, WIRE_WELCOME, 0, 0);
  CHECK(w && !(w->u.welcome.flags & WIRE_WELCOME_RESUMED),
        "last_seq 0: no RESUMED");
  CHECK_INT(tu_count(&o3, WIRE_MSG, 0), 3, "last_seq 0: everything again");
  tern_conn_del(c);
  tu_out_free(&o3);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_resume_stale(void) {
  /* The previous connection is still attached (the server did not notice
     it died): the resume acks it up to last_seq and replaces it. */
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  uint64_t epoch = tern_hub_get_epoch(hub);
  tu_out o, o2;
  tu_out_init(&o);
  tu_out_init(&o2);
  tern_conn *old = tu_connect(hub, "k", T0, &o);
  publish_n(hub, "k", TERN_PRIO_NORMAL, 5, "m", T0);
  tu_drain(&o, old, T0);
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0 + SEC(1));
  tu_hello(c, "k", 3, epoch, 0, NULL, T0 + SEC(1));
  CHECK(tern_conn_is_closed(old), "the stale connection is closed");
  tu_drain(&o, old, T0 + SEC(1));
  const wire_frame *g = tu_last(&o, WIRE_GOAWAY);
  CHECK(g && g->u.goaway.reason == TERN_GOAWAY_REPLACED,
        "with GOAWAY REPLACED");
  tu_drain(&o2, c, T0 + SEC(1));
  CHECK(strcmp(tu_payloads(&o2, 0, pbuf, sizeof(pbuf)), "m3 m4") == 0,
        "the rest of its stream goes out on the new connection");
  CHECK_INT(tu_stats(hub).acked, 3, "and 1..3 were acknowledged");
  tern_conn_del(old);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  tu_out_free(&o2);
}

static void test_resume_expired(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  uint64_t epoch = tern_hub_get_epoch(hub);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "a", NULL, 0, "a", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "b", NULL, 0, "b", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "c", NULL, SEC(3), "c", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "d", NULL, 0, "d", T0, NULL);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 4, "a b c d in flight");
  /* The client got a and b; c (seq 3) expires while it is away. */
  tern_conn_del(c);
  tern_hub_handle_expiry(hub, T0 + SEC(3));
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.pending == 3 && i.dropped == 1,
        "the expired in-flight message is dropped");
  tu_out o2;
  tu_out_init(&o2);
  c = NULL;
  tern_conn_new(&c, hub, T0 + SEC(4));
  tu_hello(c, "k", 2, epoch, 0, NULL, T0 + SEC(4));
  tu_drain(&o2, c, T0 + SEC(4));
  CHECK(strcmp(tu_payloads(&o2, 0, pbuf, sizeof(pbuf)), "d") == 0,
        "after resume only d is sent: not the acked, not the expired");
  CHECK_INT(tu_dropped(&o2, TERN_DROP_EXPIRED, 0), 1,
            "DROPPED(1, EXPIRED) for the expired in-flight message");
  tern_conn_del(c);
  tu_out_free(&o2);
  tern_hub_del(hub);
  tu_out_free(&o);

  /* The message at last_seq itself expired: everything before it on that
     connection is still acknowledged by last_seq. */
  hub = tu_hub(&s);
  epoch = tern_hub_get_epoch(hub);
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0, &o);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "a", NULL, 0, "a", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "b", NULL, 0, "b", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "c", NULL, SEC(3), "c", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "d", NULL, 0, "d", T0, NULL);
  tu_drain(&o, c, T0);
  tern_conn_del(c);
  tern_hub_handle_expiry(hub, T0 + SEC(3));
  tu_out_init(&o2);
  c = NULL;
  tern_conn_new(&c, hub, T0 + SEC(4));
  tu_hello(c, "k", 3, epoch, 0, NULL, T0 + SEC(4));
  tu_drain(&o2, c, T0 + SEC(4));
  CHECK(strcmp(tu_payloads(&o2, 0, pbuf, sizeof(pbuf)), "d") == 0,
        "last_seq naming an expired message still acks the ones before it");
  tap_diag("got %s", pbuf);
  tern_conn_del(c);
  tu_out_free(&o2);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- DROPPED ------------------------------------------------------------ */

static void test_dropped(void) {
  tern_settings s = tu_settings();
  s.inflight_window = 2;
  s.max_pending = 6;
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "w1", "w1", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "w2", "w2", T0);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 2, "window of 2 full");
  /* While the window is full, pending messages are lost. */
  tu_pub_full(hub, "k", TERN_PRIO_LOW, "x1", NULL, SEC(1), "x1", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_LOW, "x2", NULL, SEC(1), "x2", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_LOW, "x3", NULL, SEC(1), "x3", T0, NULL);
  tu_pub(hub, "k", TERN_PRIO_LOW, "y1", "y1", T0);
  tern_hub_handle_expiry(hub, T0 + SEC(1));
  tu_ack(c, 0, T0 + SEC(1)); /* keep it alive */
  CHECK(tern_conn_want_write(c), "a loss makes the connection writable");
  size_t from = o.nframes;
  tu_drain(&o, c, T0 + SEC(1));
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, from), 3,
            "DROPPED(3, EXPIRED) is written even with the window full");
  CHECK(!o.stalled, "want_write never promises what write does not give");
  /* Overflow while the window is full: w1 w2 y1 held, max_pending 6. */
  tu_pub(hub, "k", TERN_PRIO_LOW, "y2", "y2", T0 + SEC(1));
  tu_pub(hub, "k", TERN_PRIO_LOW, "y3", "y3", T0 + SEC(1));
  tu_pub(hub, "k", TERN_PRIO_LOW, "y4", "y4", T0 + SEC(1));
  tu_pub(hub, "k", TERN_PRIO_LOW, "y5", "y5", T0 + SEC(1)); /* evicts y1 */
  tu_pub(hub, "k", TERN_PRIO_LOW, "y6", "y6", T0 + SEC(1)); /* evicts y2 */
  from = o.nframes;
  tu_drain(&o, c, T0 + SEC(1));
  CHECK_INT(tu_dropped(&o, TERN_DROP_OVERFLOW, from), 2,
            "DROPPED(2, OVERFLOW) with the window full");
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, from), 0,
            "each loss is reported once");
  /* z evicts y3, then expires; after the ack both notices come before the
     next MSG, one frame per reason. */
  tu_pub_full(hub, "k", TERN_PRIO_HIGH, "z", NULL, SEC(1), "z", T0 + SEC(1),
              NULL);
  tern_hub_handle_expiry(hub, T0 + SEC(2));
  tu_ack(c, 2, T0 + SEC(2));
  from = o.nframes;
  tu_drain(&o, c, T0 + SEC(2));
  CHECK(from + 2 < o.nframes && o.frames[from].f.type == WIRE_DROPPED &&
            o.frames[from].f.u.dropped.count == 1 &&
            o.frames[from].f.u.dropped.reason == TERN_DROP_EXPIRED &&
            o.frames[from + 1].f.type == WIRE_DROPPED &&
            o.frames[from + 1].f.u.dropped.count == 1 &&
            o.frames[from + 1].f.u.dropped.reason == TERN_DROP_OVERFLOW &&
            o.frames[from + 2].f.type == WIRE_MSG,
        "DROPPED(1, EXPIRED), DROPPED(1, OVERFLOW), then the next MSG");
  CHECK(strcmp(tu_payloads(&o, from, pbuf, sizeof(pbuf)), "y4 y5") == 0,
        "then the messages");
  tap_diag("got %s", pbuf);
  CHECK_INT(tu_info(hub, "k").dropped, 7, "session info: 7 dropped in all");
  CHECK_INT(tu_stats(hub).dropped_notices, 4, "stats.dropped_notices");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- several connections ------------------------------------------------- */

static void test_multi_conn(void) {
  tern_settings s = tu_settings();
  s.inflight_window = 3;
  tern_hub *hub = tu_hub(&s);
  enum { NC = 3, NM = 40 };
  tern_conn *c[NC];
  tu_out o[NC];
  for (int k = 0; k < NC; ++k) {
    tu_out_init(&o[k]);
    c[k] = tu_connect(hub, "k", T0, &o[k]);
  }
  CHECK_INT(tu_info(hub, "k").nconns, NC, "three connections on one session");
  publish_n(hub, "k", TERN_PRIO_NORMAL, NM, "m", T0);
  /* Drain round robin, acking what each got. */
  for (int round = 0; round < 40; ++round) {
    for (int k = 0; k < NC; ++k) {
      tu_drain(&o[k], c[k], T0);
      uint64_t top = tu_max_seq(&o[k]);
      if (top && round % 2 == 0) {
        tu_ack(c[k], top, T0);
      }
    }
  }
  int seen[NM] = {0};
  int spread = 0;
  for (int k = 0; k < NC; ++k) {
    size_t n = tu_count(&o[k], WIRE_MSG, 0);
    spread += n > 0;
    for (size_t j = 0; j < n; ++j) {
      const wire_frame *f = tu_nth(&o[k], WIRE_MSG, 0, j);
      int idx = atoi((const char *)f->u.msg.id + 1);
      if (idx >= 0 && idx < NM) {
        ++seen[idx];
      }
    }
  }
  int once = 1;
  for (int j = 0; j < NM; ++j) {
    if (seen[j] != 1) {
      once = 0;
      tap_diag("m%d delivered %d times", j, seen[j]);
    }
  }
  CHECK(once, "each message delivered on exactly one connection");
  CHECK_INT(spread, NC, "every connection carried some");

  /* A connection's death returns only its own in-flight messages. */
  publish_n(hub, "k", TERN_PRIO_NORMAL, 9, "z", T0);
  size_t from[NC];
  for (int k = 0; k < NC; ++k) {
    from[k] = o[k].nframes;
    tu_drain(&o[k], c[k], T0);
  }
  CHECK(tu_new_msgs(&o[0]) == 3 && tu_new_msgs(&o[1]) == 3 &&
            tu_new_msgs(&o[2]) == 3,
        "three in flight on each connection");
  char lost[64];
  tu_payloads(&o[1], from[1], lost, sizeof(lost));
  tern_conn_del(c[1]);
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.inflight == 6 && i.pending == 3 && i.nconns == 2,
        "only the dead connection's 3 come back");
  tu_ack(c[0], tu_max_seq(&o[0]), T0);
  size_t f0 = o[0].nframes;
  tu_drain(&o[0], c[0], T0);
  tu_drain(&o[2], c[2], T0);
  CHECK(strcmp(tu_payloads(&o[0], f0, pbuf, sizeof(pbuf)), lost) == 0,
        "they go out on a surviving connection");
  tap_diag("lost %s, got %s", lost, pbuf);
  CHECK_INT(tu_info(hub, "k").inflight, 6, "no duplicates in flight");
  tern_conn_del(c[0]);
  tern_conn_del(c[2]);
  for (int k = 0; k < NC; ++k) {
    tu_out_free(&o[k]);
  }
  tern_hub_del(hub);
}

static void test_max_conns(void) {
  tern_settings s = tu_settings();
  s.max_conns = 2;
  tern_hub *hub = tu_hub(&s);
  tu_out o1, o2, o3;
  tu_out_init(&o1);
  tu_out_init(&o2);
  tu_out_init(&o3);
  tern_conn *c1 = tu_connect(hub, "k", T0, &o1);
  tern_conn *c2 = tu_connect(hub, "k", T0, &o2);
  tern_conn *c3 = NULL;
  tern_conn_new(&c3, hub, T0);
  tern_stats sb = tu_stats(hub);
  CHECK_INT(tu_hello(c3, "k", 0, 0, 0, NULL, T0), TERN_ERR_LIMIT,
            "a third HELLO to a session with max_conns 2 -> LIMIT");
  tu_drain(&o3, c3, T0);
  const wire_frame *g = tu_last(&o3, WIRE_GOAWAY);
  CHECK(g && g->u.goaway.reason == TERN_GOAWAY_LIMIT &&
            !tu_count(&o3, WIRE_WELCOME, 0),
        "GOAWAY LIMIT, no WELCOME");
  CHECK(tern_conn_is_closed(c3) && tern_conn_get_session(c3) == NULL,
        "the refused connection is closed and unbound");
  tern_stats sa = tu_stats(hub);
  CHECK(sa.conns_opened == sb.conns_opened && tu_info(hub, "k").nconns == 2,
        "the session keeps its two connections");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m", "m", T0);
  tu_drain(&o1, c1, T0);
  tu_drain(&o2, c2, T0);
  CHECK_INT(tu_count(&o1, WIRE_MSG, 0) + tu_count(&o2, WIRE_MSG, 0), 1,
            "the others still work");
  tern_conn_del(c3);
  /* Room again once one leaves. */
  tern_conn_del(c2);
  tu_out o4;
  tu_out_init(&o4);
  tern_conn *c4 = tu_connect(hub, "k", T0, &o4);
  CHECK(!tern_conn_is_closed(c4), "a connection leaving makes room");
  tern_conn_del(c4);
  tern_conn_del(c1);

  /* max_sessions applies to HELLO too. */
  tern_hub_del(hub);
  s.max_conns = 10;
  s.max_sessions = 1;
  hub = tu_hub(&s);
  c1 = tu_connect(hub, "a", T0, NULL);
  c2 = NULL;
  tern_conn_new(&c2, hub, T0);
  CHECK_INT(tu_hello(c2, "b", 0, 0, 0, NULL, T0), TERN_ERR_LIMIT,
            "HELLO for a new session past max_sessions -> LIMIT");
  tu_out o5;
  tu_out_init(&o5);
  tu_drain(&o5, c2, T0);
  g = tu_last(&o5, WIRE_GOAWAY);
  CHECK(g && g->u.goaway.reason == TERN_GOAWAY_LIMIT, "GOAWAY LIMIT");
  CHECK_INT(tu_stats(hub).sessions, 1, "no session created");
  tern_conn_del(c1);
  tern_conn_del(c2);
  tern_hub_del(hub);
  tu_out_free(&o1);
  tu_out_free(&o2);
  tu_out_free(&o3);
  tu_out_free(&o4);
  tu_out_free(&o5);
}

/* ---- session expiry ------------------------------------------------------ */

static void test_session_expiry(void) {
  tern_settings s = tu_settings();
  s.session_ttl = SEC(60);
  tern_hub *hub = tu_hub(&s);
  publish_n(hub, "k", TERN_PRIO_NORMAL, 3, "m", T0);
  tu_pub(hub, "other", TERN_PRIO_NORMAL, NULL, "x", T0 + SEC(30));
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(60),
        "the session TTL is a deadline");
  tern_hub_handle_expiry(hub, T0 + SEC(60) - 1);
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"k", 1) != NULL,
        "the session lives until session_ttl");
  tern_hub_handle_expiry(hub, T0 + SEC(60));
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"k", 1) == NULL,
        "it is gone after session_ttl without connections");
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_SESSION_EXPIRED);
  CHECK(ev && ev->count == 3 && ev->keylen == 1 && ev->key[0] == 'k',
        "SESSION_EXPIRED with its key and the 3 messages it held");
  tu_events_free(&e);
  tern_stats st = tu_stats(hub);
  CHECK(st.sessions == 1 && st.messages == 1 && st.message_bytes == 1 &&
            st.sessions_expired == 1,
        "its messages are freed; the other session stays");

  /* A connection keeps a session alive; the TTL starts when it leaves. */
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "other", T0 + SEC(40), &o);
  for (int t = 45; t <= 200; t += 5) {
    tu_ack(c, 0, T0 + SEC(t)); /* stay alive */
    tern_hub_handle_expiry(hub, T0 + SEC(t));
    tu_drain(&o, c, T0 + SEC(t));
  }
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"other", 5) != NULL,
        "an attached connection keeps the session");
  tern_conn_goaway(c, TERN_GOAWAY_RESTART, 0, T0 + SEC(200));
  tern_hub_handle_expiry(hub, T0 + SEC(259));
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"other", 5) != NULL,
        "the TTL runs from when the last connection left");
  tern_hub_handle_expiry(hub, T0 + SEC(260));
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"other", 5) == NULL,
        "and expires session_ttl after it");
  tern_conn_del(c);
  tu_out_free(&o);

  /* A HELLO after expiry gets a fresh session: EXISTED is clear. */
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0 + SEC(300), &o);
  const wire_frame *w = tu_nth(&o, WIRE_WELCOME, 0, 0);
  CHECK(w && !(w->u.welcome.flags & WIRE_WELCOME_EXISTED),
        "WELCOME after expiry: EXISTED clear");
  tu_out_free(&o);
  tu_out_init(&o);
  tern_conn *c2 = tu_connect(hub, "k", T0 + SEC(300), &o);
  w = tu_nth(&o, WIRE_WELCOME, 0, 0);
  CHECK(w && (w->u.welcome.flags & WIRE_WELCOME_EXISTED),
        "WELCOME to a live session: EXISTED set");
  tern_conn_del(c);
  tern_conn_del(c2);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- heartbeat, liveness, RTT -------------------------------------------- */

static int has_ping(tern_hub *hub, tern_conn *c, tu_out *o, tern_tstamp now) {
  tern_hub_handle_expiry(hub, now);
  size_t from = o->nframes;
  tu_drain(o, c, now);
  return tu_count(o, WIRE_PING, from) > 0;
}

static void test_heartbeat(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(4),
        "a heartbeat deadline is armed");
  CHECK(!has_ping(hub, c, &o, T0 + SEC(4) - 1), "no PING before 4 s");
  CHECK(has_ping(hub, c, &o, T0 + SEC(4)), "PING after 4 s of silence");
  const wire_frame *p = tu_last(&o, WIRE_PING);
  CHECK(p && p->u.ping == T0 + SEC(4), "the PING carries the send time");
  tu_pong(c, T0 + SEC(4), T0 + SEC(4) + MS(37));
  CHECK(tu_conn_info(c).rtt == MS(37), "RTT from the PONG (37 ms)");
  /* Client bytes are no heartbeat of the server: PING 4 s after the last
     one, wherever the host's timer stood. */
  tu_ack(c, 0, T0 + SEC(7));
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(8),
        "next heartbeat deadline at most 4 s after the last PING");
  CHECK(!has_ping(hub, c, &o, T0 + SEC(8) - 1), "no PING before 8 s");
  CHECK(has_ping(hub, c, &o, T0 + SEC(8)), "PING at 8 s");
  /* A PING goes 4 s after the last write, not after the last PING. */
  tu_pong(c, T0 + SEC(8), T0 + SEC(8));
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m", "m", T0 + SEC(10));
  tu_drain(&o, c, T0 + SEC(10));
  CHECK(!has_ping(hub, c, &o, T0 + SEC(12)), "a MSG resets the heartbeat");
  tu_ack(c, 1, T0 + SEC(13));
  CHECK(has_ping(hub, c, &o, T0 + SEC(14)), "PING 4 s after the MSG");

  /* A PONG that answers no PING is ignored. */
  tern_duration rtt = tu_conn_info(c).rtt;
  tu_pong(c, 12345, T0 + SEC(14) + MS(5));
  CHECK(tu_conn_info(c).rtt == rtt, "a PONG that answers no PING is ignored");

  /* The client's PING is answered with a PONG carrying its value. */
  size_t from = o.nframes;
  tu_ping(c, 0xdeadbeef, T0 + SEC(15));
  CHECK(tern_conn_want_write(c), "a PING makes a PONG to write");
  tu_drain(&o, c, T0 + SEC(15));
  const wire_frame *pong = tu_nth(&o, WIRE_PONG, from, 0);
  CHECK(pong && pong->u.ping == 0xdeadbeef, "PONG echoes the PING value");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* host_loop runs a faithful host from |from| to |to|: handle_expiry at each
   deadline, drain, answer PINGs.  Returns the PING times in |pings|. */
static size_t host_loop(tern_hub *hub, tern_conn *c, tu_out *o,
                        tern_tstamp from, tern_tstamp to, tern_tstamp *pings,
                        size_t max) {
  size_t n = 0;
  tern_tstamp now = from;
  for (int guard = 0; guard < 1000; ++guard) {
    tern_tstamp next = tern_hub_get_expiry(hub);
    if (next > to) {
      break;
    }
    now = next > now ? next : now;
    tern_hub_handle_expiry(hub, now);
    size_t f = o->nframes;
    tu_drain(o, c, now);
    for (size_t k = f; k < o->nframes; ++k) {
      if (o->frames[k].f.type == WIRE_PING) {
        if (n < max) {
          pings[n++] = now;
        }
        tu_pong(c, o->frames[k].f.u.ping, now + MS(10));
      }
    }
    if (tern_conn_is_closed(c)) {
      break;
    }
  }
  return n;
}

static void test_heartbeat_loop(void) {
  /* A host that only wakes at tern_hub_get_expiry still sends every PING on
     time, even when the client's bytes arrive just before a heartbeat. */
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_ack(c, 0, T0 + MS(3900));
  tern_tstamp pings[16];
  size_t n = host_loop(hub, c, &o, T0, T0 + SEC(30), pings, 16);
  int on_time = n >= 6;
  for (size_t k = 0; k < n; ++k) {
    if (pings[k] != T0 + SEC(4) * (k + 1)) {
      on_time = 0;
      tap_diag("PING %zu at +%.3f s", k,
               (double)(pings[k] - T0) / (double)TERN_SECONDS);
    }
  }
  CHECK(on_time, "PINGs every 4 s with a host driven by get_expiry");
  CHECK(!tern_conn_is_closed(c), "the answering client stays alive");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_liveness(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  publish_n(hub, "k", TERN_PRIO_NORMAL, 3, "m", T0);
  tu_drain(&o, c, T0);
  tu_ack(c, 1, T0 + SEC(2)); /* bytes at 2 s: dead at 9 s */
  tern_hub_handle_expiry(hub, T0 + SEC(4));
  tu_drain(&o, c, T0 + SEC(4)); /* the PING does not count as life */
  tern_hub_handle_expiry(hub, T0 + SEC(9) - 1);
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK(!tern_conn_is_closed(c) && !tu_events_find(&e, TERN_EV_CONN_DEAD),
        "alive just before liveness_timeout after the last bytes");
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(9), "liveness is a deadline");
  tern_hub_handle_expiry(hub, T0 + SEC(9));
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_CONN_DEAD);
  CHECK(ev && ev->conn == c && ev->reason == TERN_GOAWAY_TIMEOUT,
        "CONN_DEAD at liveness_timeout, with the connection");
  CHECK(ev && ev->keylen == 1 && ev->key[0] == 'k',
        "CONN_DEAD names the session");
  tu_events_free(&e);
  CHECK(tern_conn_is_closed(c), "the dead connection is closed");
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.inflight == 0 && i.pending == 2 && i.nconns == 0,
        "its in-flight messages are back in the session");
  CHECK_INT(tu_stats(hub).conns_dead, 1, "stats.conns_dead");
  tu_drain(&o, c, T0 + SEC(9));
  const wire_frame *g = tu_last(&o, WIRE_GOAWAY);
  CHECK(g && g->u.goaway.reason == TERN_GOAWAY_TIMEOUT, "GOAWAY TIMEOUT");
  tern_conn_del(c);

  /* No HELLO within liveness_timeout: closed, not "dead". */
  c = NULL;
  tern_conn_new(&c, hub, T0 + SEC(20));
  tern_hub_handle_expiry(hub, T0 + SEC(27) - 1);
  CHECK(!tern_conn_is_closed(c), "waiting for HELLO before the timeout");
  tern_hub_handle_expiry(hub, T0 + SEC(27));
  tu_events_take(&e, hub);
  ev = tu_events_find(&e, TERN_EV_CONN_CLOSED);
  CHECK(tern_conn_is_closed(c) && ev && ev->conn == c &&
            ev->reason == TERN_GOAWAY_TIMEOUT &&
            !tu_events_find(&e, TERN_EV_CONN_DEAD),
        "no HELLO within liveness_timeout: CONN_CLOSED TIMEOUT");
  tu_events_free(&e);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_negotiated_heartbeat(void) {
  tern_settings s = tu_settings();
  s.max_heartbeat = SEC(60);
  tern_hub *hub = tu_hub(&s);
  static const struct {
    uint64_t asked, hb;
  } cases[] = {{0, 4000},      {1, 1000},
               {999, 1000},    {1000, 1000},
               {10000, 10000}, {60000, 60000},
               {60001, 60000}, {UINT64_C(1) << 40, 60000}};
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); ++k) {
    tu_out o;
    tu_out_init(&o);
    tern_conn *c = NULL;
    tern_conn_new(&c, hub, T0);
    tu_hello(c, "k", 0, 0, cases[k].asked, NULL, T0);
    tu_drain(&o, c, T0);
    const wire_frame *w = tu_nth(&o, WIRE_WELCOME, 0, 0);
    tern_conn_info ci = tu_conn_info(c);
    char what[96];
    snprintf(
        what, sizeof(what), "HELLO heartbeat %llu ms -> %llu ms, liveness +3 s",
        (unsigned long long)cases[k].asked, (unsigned long long)cases[k].hb);
    CHECK(w && w->u.welcome.heartbeat_ms == cases[k].hb &&
              w->u.welcome.liveness_ms == cases[k].hb + 3000 &&
              ci.heartbeat_interval == MS(cases[k].hb) &&
              ci.liveness_timeout == MS(cases[k].hb + 3000),
          "%s", what);
    tern_conn_del(c);
    tu_out_free(&o);
  }
  /* The negotiated values drive the timers. */
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0);
  tu_hello(c, "k", 0, 0, 10000, NULL, T0);
  tu_drain(&o, c, T0);
  CHECK(!has_ping(hub, c, &o, T0 + SEC(10) - 1),
        "negotiated 10 s: no PING at 4 s .. 10 s");
  CHECK(has_ping(hub, c, &o, T0 + SEC(10)), "negotiated 10 s: PING at 10 s");
  tern_hub_handle_expiry(hub, T0 + SEC(13) - 1);
  CHECK(!tern_conn_is_closed(c), "negotiated liveness 13 s: alive at 13 s - 1");
  tern_hub_handle_expiry(hub, T0 + SEC(13));
  CHECK(tern_conn_is_closed(c), "negotiated liveness 13 s: dead at 13 s");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- ack timeout --------------------------------------------------------- */

static void test_ack_timeout(void) {
  tern_settings s = tu_settings();
  s.ack_timeout = SEC(2);
  s.max_deliver = 3;
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "ok", "ok", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m", "m", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m2", "m2", T0);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 3, "sent once");
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(2),
        "the ack timeout is a deadline");
  tu_ack(c, 1, T0 + SEC(1)); /* "ok" is acked in time */
  tern_hub_handle_expiry(hub, T0 + SEC(2) - 1);
  tu_drain(&o, c, T0 + SEC(2) - 1);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 3, "not sent again before ack_timeout");
  tern_hub_handle_expiry(hub, T0 + SEC(2));
  size_t from = o.nframes;
  tu_drain(&o, c, T0 + SEC(2));
  CHECK(strcmp(tu_payloads(&o, from, pbuf, sizeof(pbuf)), "m m2") == 0,
        "the unacked ones are sent again at ack_timeout, in order");
  const wire_frame *f = tu_nth(&o, WIRE_MSG, from, 0);
  CHECK(f && f->u.msg.seq == 4, "with new seqs");
  CHECK_INT(tu_stats(hub).resent, 2, "stats.resent 2");
  tu_ack(c, 5, T0 + SEC(2)); /* m2's second send is acked; so is m */
  CHECK_INT(tu_info(hub, "k").inflight, 0, "acking the re-sends acks them");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "dead", "dead", T0 + SEC(2));
  tu_drain(&o, c, T0 + SEC(2));
  tu_events_drain(hub);
  /* Keep the client alive but never ack "dead": sends at 0, 2 and 6 s (the
     timeout doubles), dead at 14 s. */
  tern_tstamp now = T0 + SEC(2);
  for (int step = 0; step < 16; ++step) {
    now += SEC(1);
    tu_ack(c, 0, now);
    tern_hub_handle_expiry(hub, now);
    tu_drain(&o, c, now);
  }
  size_t m_sends = 0;
  for (size_t k = 0; k < tu_count(&o, WIRE_MSG, 0); ++k) {
    m_sends += (size_t)tu_msg_id_is(tu_nth(&o, WIRE_MSG, 0, k), "dead");
  }
  CHECK_INT(m_sends, 3, "sent max_deliver (3) times");
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_DEAD);
  CHECK(ev && tu_event_id_is(ev, "dead") && ev->reason == TERN_DROP_DEAD,
        "DEAD event after max_deliver sends (without trace)");
  tu_events_free(&e);
  CHECK_INT(tu_dropped(&o, TERN_DROP_DEAD, 0), 1, "DROPPED(1, DEAD)");
  tern_stats st = tu_stats(hub);
  CHECK(st.dead == 1 && tu_info(hub, "k").dropped == 1,
        "stats.dead 1, session dropped 1");
  CHECK(!tern_conn_is_closed(c), "the connection stays open");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);

  /* Without ack_timeout nothing is re-sent on a live connection. */
  s.ack_timeout = 0;
  hub = tu_hub(&s);
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0, &o);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m", "m", T0);
  tu_drain(&o, c, T0);
  for (int t = 1; t <= 60; ++t) {
    tu_ack(c, 0, T0 + SEC(t));
    tern_hub_handle_expiry(hub, T0 + SEC(t));
    tu_drain(&o, c, T0 + SEC(t));
  }
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 1,
            "ack_timeout 0: sent once on a live connection");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- hello_accept ------------------------------------------------------- */

static void test_hello_accept(void) {
  tern_settings s = tu_settings();
  s.hello_accept = 1;
  s.max_conns = 1;
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0);
  CHECK_INT(tern_conn_accept(c, T0), TERN_ERR_STATE,
            "accept before any HELLO -> STATE");
  tu_pub(hub, "dev", TERN_PRIO_NORMAL, "m", "m", T0);
  tu_hello(c, "dev", 0, 0, 0, "secret-token", T0);
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_CONN_HELLO);
  CHECK(ev && ev->conn == c && ev->keylen == 3 &&
            memcmp(ev->key, "dev", 3) == 0,
        "CONN_HELLO names the connection and the session key");
  CHECK(ev && ev->auxlen == 12 && memcmp(ev->aux, "secret-token", 12) == 0,
        "CONN_HELLO carries the token in aux");
  tu_events_free(&e);
  tu_drain(&o, c, T0);
  CHECK(o.nframes == 0 && tern_conn_get_session(c) == NULL &&
            !tern_conn_is_closed(c),
        "nothing is sent while the host decides");
  CHECK_INT(tu_info(hub, "dev").nconns, 0, "not yet attached");
  CHECK_INT(tern_conn_accept(c, T0 + MS(5)), 0, "tern_conn_accept");
  tu_drain(&o, c, T0 + MS(5));
  CHECK(tu_count(&o, WIRE_WELCOME, 0) == 1 && tu_count(&o, WIRE_MSG, 0) == 1 &&
            o.frames[0].f.type == WIRE_WELCOME,
        "WELCOME then the pending message");
  CHECK(tern_conn_get_session(c) ==
            tern_hub_find_session(hub, (const uint8_t *)"dev", 3),
        "bound to its session");
  CHECK_INT(tern_conn_accept(c, T0), TERN_ERR_STATE, "accept twice -> STATE");

  /* Rejecting a waiting HELLO. */
  tern_conn *r = NULL;
  tern_conn_new(&r, hub, T0);
  tu_hello(r, "newkey", 0, 0, 0, "bad", T0);
  tu_events_drain(hub);
  CHECK_INT(tern_conn_goaway(r, TERN_GOAWAY_REJECTED, SEC(5), T0), 0,
            "reject with tern_conn_goaway(REJECTED)");
  tu_out ro;
  tu_out_init(&ro);
  tu_drain(&ro, r, T0);
  const wire_frame *g = tu_last(&ro, WIRE_GOAWAY);
  CHECK(g && g->u.goaway.reason == TERN_GOAWAY_REJECTED &&
            g->u.goaway.retry_ms == 5000 && tu_count(&ro, WIRE_WELCOME, 0) == 0,
        "GOAWAY REJECTED with the retry hint, no WELCOME");
  CHECK(ro.closed && tern_conn_is_closed(r), "then closed");
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"newkey", 6) == NULL,
        "a rejected HELLO creates no session");
  CHECK_INT(tern_conn_accept(r, T0), TERN_ERR_STATE,
            "accept after reject -> STATE");
  CHECK_INT(tern_conn_goaway(r, TERN_GOAWAY_REJECTED, 0, T0), TERN_ERR_CLOSED,
            "goaway twice -> CLOSED");
  tern_conn_del(r);
  tu_out_free(&ro);

  /* Accepting past max_conns: LIMIT, closed with GOAWAY LIMIT. */
  tern_conn *x = NULL;
  tern_conn_new(&x, hub, T0);
  tu_hello(x, "dev", 0, 0, 0, NULL, T0);
  CHECK_INT(tern_conn_accept(x, T0), TERN_ERR_LIMIT,
            "accept past max_conns -> LIMIT");
  tu_out xo;
  tu_out_init(&xo);
  tu_drain(&xo, x, T0);
  g = tu_last(&xo, WIRE_GOAWAY);
  CHECK(g && g->u.goaway.reason == TERN_GOAWAY_LIMIT && tern_conn_is_closed(x),
        "and closed with GOAWAY LIMIT");
  tern_conn_del(x);
  tu_out_free(&xo);

  /* A waiting HELLO times out like a missing one. */
  tern_conn *w = NULL;
  tern_conn_new(&w, hub, T0 + SEC(1));
  tu_hello(w, "slow", 0, 0, 0, NULL, T0 + SEC(1));
  tern_hub_handle_expiry(hub, T0 + SEC(8));
  CHECK(tern_conn_is_closed(w), "a HELLO left waiting times out");
  tern_conn_del(w);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- goaway_all ---------------------------------------------------------- */

static void test_goaway_all(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o[4];
  tern_conn *c[4];
  for (int k = 0; k < 4; ++k) {
    tu_out_init(&o[k]);
  }
  c[0] = tu_connect(hub, "a", T0, &o[0]);
  c[1] = tu_connect(hub, "a", T0, &o[1]);
  c[2] = tu_connect(hub, "b", T0, &o[2]);
  c[3] = NULL;
  tern_conn_new(&c[3], hub, T0); /* no HELLO yet */
  publish_n(hub, "a", TERN_PRIO_NORMAL, 4, "a", T0);
  publish_n(hub, "b", TERN_PRIO_LOW, 2, "b", T0);
  for (int k = 0; k < 3; ++k) {
    tu_drain(&o[k], c[k], T0);
  }
  CHECK(tu_stats(hub).inflight == 6, "6 in flight before the restart");
  tu_pub(hub, "b", TERN_PRIO_HIGH, "urgent", "u", T0);
  CHECK_INT(tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, SEC(10), T0), 3,
            "goaway_all tells the 3 open connections");
  int ok = 1, closed = 1;
  for (int k = 0; k < 3; ++k) {
    size_t from = o[k].nframes;
    tu_drain(&o[k], c[k], T0);
    const wire_frame *g = tu_nth(&o[k], WIRE_GOAWAY, from, 0);
    if (!g || g->u.goaway.reason != TERN_GOAWAY_RESTART ||
        g->u.goaway.retry_ms > (k == 2 ? 2500u : 10000u)) {
      ok = 0;
    }
    if (!tern_conn_is_closed(c[k]) || !o[k].closed) {
      closed = 0;
    }
  }
  CHECK(ok, "each gets GOAWAY RESTART with retry <= max (HIGH backlog: first "
            "quarter)");
  CHECK(closed, "and is closed");
  CHECK(!tern_conn_is_closed(c[3]), "a connection without HELLO is not told");
  tern_stats st = tu_stats(hub);
  CHECK(st.inflight == 0 && st.messages == 7,
        "in-flight messages returned, none lost");
  CHECK(tu_info(hub, "a").pending == 4 && tu_info(hub, "b").pending == 3,
        "back in their sessions");
  CHECK_INT(tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, SEC(10), T0), 0,
            "closed connections are not told twice");
  CHECK_INT(tern_hub_goaway_all(NULL, 0, 0, T0), TERN_ERR_INVALID,
            "goaway_all(NULL) -> INVALID");
  for (int k = 0; k < 4; ++k) {
    tern_conn_del(c[k]);
    tu_out_free(&o[k]);
  }

  /* The hints spread over [0, max]. */
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int round = 0; round < 40; ++round) {
    tu_out x;
    tu_out_init(&x);
    tern_conn *xc = tu_connect(hub, "spread", T0, &x);
    tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, SEC(10), T0);
    tu_drain(&x, xc, T0);
    const wire_frame *g = tu_last(&x, WIRE_GOAWAY);
    if (g) {
      lo = g->u.goaway.retry_ms < lo ? g->u.goaway.retry_ms : lo;
      hi = g->u.goaway.retry_ms > hi ? g->u.goaway.retry_ms : hi;
    }
    tern_conn_del(xc);
    tu_out_free(&x);
  }
  CHECK(lo < 3000 && hi > 7000 && hi <= 10000,
        "retry hints are spread over [0, max]");
  tern_hub_del(hub);
}

/* ---- client GOAWAY ------------------------------------------------------- */

static void test_client_goaway(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  publish_n(hub, "k", TERN_PRIO_NORMAL, 2, "m", T0);
  tu_drain(&o, c, T0);
  tu_events_drain(hub);
  size_t from = o.nframes;
  CHECK(tu_client_goaway(c, TERN_GOAWAY_CLIENT, T0) > 0,
        "client GOAWAY is consumed");
  CHECK(tern_conn_is_closed(c), "the connection is closed");
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_CONN_CLOSED);
  CHECK(ev && ev->conn == c && ev->reason == TERN_GOAWAY_CLIENT,
        "CONN_CLOSED with reason CLIENT");
  tu_events_free(&e);
  tu_drain(&o, c, T0);
  CHECK(o.nframes == from && o.closed, "the server does not answer it");
  CHECK_INT(tu_info(hub, "k").pending, 2, "in-flight messages returned");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- partial writes ------------------------------------------------------ */

/* One scripted run; all output written with |cap|-byte writes. */
static void partial_run(size_t cap, tu_out *o) {
  tern_settings s = tu_settings();
  s.inflight_window = 5;
  tern_hub *hub = tu_hub(&s);
  static char big[3000];
  memset(big, 'B', sizeof(big) - 1);
  tu_pub_full(hub, "k", TERN_PRIO_LOW, "gone", NULL, SEC(1), "x", T0, NULL);
  tern_hub_handle_expiry(hub, T0 + SEC(1));
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0 + SEC(1));
  tu_hello(c, "k", 0, 0, 0, "tok", T0 + SEC(1));
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "small", "s", T0 + SEC(1));
  tu_pub(hub, "k", TERN_PRIO_HIGH, "big", big, T0 + SEC(1));
  tu_pub_full(hub, "k", TERN_PRIO_LOW, "ttl", "ck", SEC(30), "with ttl",
              T0 + SEC(1), NULL);
  for (int i = 0; i < 5; ++i) {
    char p[400];
    memset(p, 'a' + i, (size_t)(50 + 70 * i));
    p[50 + 70 * i] = 0;
    tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, p, T0 + SEC(1));
  }
  tu_ping(c, 42, T0 + SEC(1));
  tu_write(o, c, cap, T0 + SEC(1));
  tu_ack(c, 3, T0 + SEC(2));
  tern_hub_handle_expiry(hub, T0 + SEC(5) + MS(1));
  tu_write(o, c, cap, T0 + SEC(5) + MS(1)); /* PING, more messages */
  tern_conn_goaway(c, TERN_GOAWAY_RESTART, SEC(3), T0 + SEC(6));
  tu_write(o, c, cap, T0 + SEC(6));
  tern_conn_del(c);
  tern_hub_del(hub);
}

static void test_partial_writes(void) {
  tu_out ref;
  tu_out_init(&ref);
  partial_run(1 << 20, &ref);
  CHECK(!ref.bad && ref.closed && tu_count(&ref, WIRE_WELCOME, 0) == 1 &&
            tu_count(&ref, WIRE_DROPPED, 0) == 1 &&
            tu_count(&ref, WIRE_PONG, 0) == 1 &&
            tu_count(&ref, WIRE_PING, 0) == 1 &&
            tu_count(&ref, WIRE_MSG, 0) == 8 &&
            tu_count(&ref, WIRE_GOAWAY, 0) == 1,
        "reference run: WELCOME, PONG, DROPPED, 8 MSG, PING, GOAWAY");
  int same = 1, stalls = 0;
  size_t bad_cap = 0;
  static const size_t extra[] = {100, 127, 128, 500, 1000, 2999, 3000, 3050};
  for (size_t k = 0; k < 64 + sizeof(extra) / sizeof(extra[0]); ++k) {
    size_t cap = k < 64 ? k + 1 : extra[k - 64];
    tu_out o;
    tu_out_init(&o);
    partial_run(cap, &o);
    if (o.len != ref.len || memcmp(o.stream, ref.stream, ref.len) != 0 ||
        o.nframes != ref.nframes || !o.closed) {
      if (same) {
        bad_cap = cap;
      }
      same = 0;
    }
    stalls += o.stalled;
    tu_out_free(&o);
  }
  CHECK(same, "writes of 1..64 bytes give the same byte stream as one big "
              "write");
  if (!same) {
    tap_diag("first differing cap: %zu", bad_cap);
  }
  CHECK_INT(stalls, 0, "no write returns 0 while want_write is set");
  tu_out_free(&ref);
}

static void test_partial_interrupted(void) {
  /* A frame begun is always finished, whatever happens meanwhile. */
  static char big[2000];
  memset(big, 'B', sizeof(big) - 1);
  for (int variant = 0; variant < 3; ++variant) {
    tern_settings s = tu_settings();
    tern_hub *hub = tu_hub(&s);
    tu_out o;
    tu_out_init(&o);
    tern_conn *c = tu_connect(hub, "k", T0, &o);
    tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "big", NULL, SEC(2), big, T0, NULL);
    tu_pub(hub, "k", TERN_PRIO_LOW, "next", "next", T0);
    tu_write_once(&o, c, 100, T0); /* the big frame is started */
    CHECK(tern_conn_want_write(c), "a started frame wants to be finished");
    const char *what = "";
    tern_tstamp now = T0 + SEC(1);
    if (variant == 0) {
      tern_conn_goaway(c, TERN_GOAWAY_RESTART, 0, now);
      what = "closed by the host during a partial frame";
    } else if (variant == 1) {
      now = T0 + SEC(2);
      tu_ack(c, 0, now);
      tern_hub_handle_expiry(hub, now);
      what = "the message expired during its partial frame";
    } else {
      tu_ack(c, 0, now);
      tu_client_goaway(c, TERN_GOAWAY_CLIENT, now);
      what = "client GOAWAY during a partial frame";
    }
    tu_write(&o, c, 64, now);
    const wire_frame *m = tu_nth(&o, WIRE_MSG, 0, 0);
    CHECK(!o.bad && m && tu_msg_id_is(m, "big") &&
              m->u.msg.payloadlen == sizeof(big) - 1,
          "%s: the frame is completed", what);
    if (variant == 0) {
      CHECK(tu_count(&o, WIRE_GOAWAY, 0) == 1 &&
                o.frames[o.nframes - 1].f.type == WIRE_GOAWAY && o.closed,
            "%s: then GOAWAY, then closed", what);
      CHECK_INT(tu_info(hub, "k").pending, 2,
                "the started message is back in the session");
    } else if (variant == 1) {
      static char want[sizeof(big) + 8];
      snprintf(want, sizeof(want), "%s next", big);
      CHECK(tu_dropped(&o, TERN_DROP_EXPIRED, 0) == 1 &&
                strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), want) == 0,
            "%s: then DROPPED and the next message", what);
    } else {
      CHECK(o.closed && tu_count(&o, WIRE_GOAWAY, 0) == 0,
            "%s: then closed without a GOAWAY", what);
    }
    tern_conn_del(c);
    tern_hub_del(hub);
    tu_out_free(&o);
  }
}

/* ---- ready list ---------------------------------------------------------- */

static void test_next_ready(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o[3];
  tern_conn *c[3];
  const char *keys[3] = {"s0", "s1", "s2"};
  for (int k = 0; k < 3; ++k) {
    tu_out_init(&o[k]);
    c[k] = NULL;
    tern_conn_new(&c[k], hub, T0);
    tu_hello(c[k], keys[k], 0, 0, 0, NULL, T0);
  }
  int found[3] = {0}, others = 0;
  tern_conn *r;
  while ((r = tern_hub_next_ready(hub)) != NULL) {
    int hit = 0;
    for (int k = 0; k < 3; ++k) {
      if (r == c[k]) {
        ++found[k];
        hit = 1;
        tu_drain(&o[k], c[k], T0);
      }
    }
    others += !hit;
  }
  CHECK(found[0] == 1 && found[1] == 1 && found[2] == 1 && !others,
        "after HELLO each connection is ready once (WELCOME)");
  CHECK(tern_hub_next_ready(hub) == NULL, "then nothing is ready");
  tu_pub(hub, "s0", TERN_PRIO_NORMAL, NULL, "x", T0);
  tu_pub(hub, "s2", TERN_PRIO_NORMAL, NULL, "y", T0);
  tu_pub(hub, "s2", TERN_PRIO_NORMAL, NULL, "z", T0);
  memset(found, 0, sizeof(found));
  others = 0;
  while ((r = tern_hub_next_ready(hub)) != NULL) {
    int hit = 0;
    for (int k = 0; k < 3; ++k) {
      if (r == c[k]) {
        ++found[k];
        hit = 1;
        tu_drain(&o[k], c[k], T0);
      }
    }
    others += !hit;
  }
  CHECK(found[0] == 1 && found[1] == 0 && found[2] == 1 && !others,
        "publishing makes exactly the receiving connections ready, once");
  CHECK(tu_count(&o[0], WIRE_MSG, 0) == 1 && tu_count(&o[2], WIRE_MSG, 0) == 2,
        "and writing them delivers");
  /* Ready without being asked: a not-written connection stays returned
     once; after its write empties it, a new event makes it ready again. */
  tu_pub(hub, "s1", TERN_PRIO_NORMAL, NULL, "w", T0);
  CHECK(tern_hub_next_ready(hub) == c[1], "s1 ready");
  CHECK(tern_hub_next_ready(hub) == NULL, "returned once");
  tu_drain(&o[1], c[1], T0);
  /* Timers: a due heartbeat makes every connection ready. */
  tern_hub_handle_expiry(hub, T0 + SEC(4));
  int n = 0;
  while ((r = tern_hub_next_ready(hub)) != NULL) {
    ++n;
    for (int k = 0; k < 3; ++k) {
      if (r == c[k]) {
        tu_drain(&o[k], c[k], T0 + SEC(4));
      }
    }
  }
  CHECK_INT(n, 3, "a heartbeat makes each connection ready");
  /* Closing makes a connection ready for its GOAWAY. */
  tern_conn_goaway(c[1], TERN_GOAWAY_REPLACED, 0, T0 + SEC(4));
  CHECK(tern_hub_next_ready(hub) == c[1], "a closing connection is ready");
  CHECK(tern_hub_next_ready(hub) == NULL, "only it");
  /* A deleted connection is never returned. */
  tu_pub(hub, "s0", TERN_PRIO_NORMAL, NULL, "v", T0 + SEC(4));
  tern_conn_del(c[0]);
  CHECK(tern_hub_next_ready(hub) == NULL,
        "a deleted connection is not returned");
  tern_conn_del(c[1]);
  tern_conn_del(c[2]);
  for (int k = 0; k < 3; ++k) {
    tu_out_free(&o[k]);
  }
  tern_hub_del(hub);
}

/* Deleting a connection whose events are still queued: the events come
   out with conn NULL, and nothing leaks once they are read. */
static void test_deleted_conn_events(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  s.trace = 1;
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, &mem), 0, "deleted conn: hub");
  tu_out o;
  tu_out_init(&o);
  tern_conn *keep = tu_connect(hub, "k", T0, &o);
  tern_conn *gone = NULL;
  tern_conn_new(&gone, hub, T0);
  tu_hello(gone, "j", 0, 0, 0, NULL, T0);
  tu_pub(hub, "j", TERN_PRIO_NORMAL, NULL, "x", T0);
  tu_out o2;
  tu_out_init(&o2);
  tu_drain(&o2, gone, T0); /* SENT names |gone| */
  tern_conn_del(gone);
  int hello_keep = 0, hello_gone = 0, sent_null = 0;
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (ev.type == TERN_EV_CONN_HELLO) {
      hello_keep += ev.conn == keep;
      hello_gone += ev.conn == NULL && ev.session_keylen == 1 &&
                    ev.session_key[0] == 'j';
    }
    sent_null += ev.type == TERN_EV_SENT && ev.conn == NULL;
  }
  CHECK(hello_keep == 1, "deleted conn: a live conn's event names it");
  CHECK(hello_gone == 1 && sent_null == 1,
        "deleted conn: its queued events come out with conn NULL");
  tern_conn_del(keep);
  tern_hub_del(hub);
  tu_out_free(&o);
  tu_out_free(&o2);
  CHECK_INT(a.outstanding, 0, "deleted conn: no leak");
  CHECK_INT(tu_alloc_finish(&a), 0, "deleted conn: no write after free");
}

int main(void) {
  test_window();
  test_ack_beyond();
  test_resume();
  test_resume_wrong_epoch();
  test_resume_stale();
  test_resume_expired();
  test_dropped();
  test_multi_conn();
  test_max_conns();
  test_session_expiry();
  test_heartbeat();
  test_heartbeat_loop();
  test_liveness();
  test_negotiated_heartbeat();
  test_ack_timeout();
  test_hello_accept();
  test_goaway_all();
  test_client_goaway();
  test_partial_writes();
  test_partial_interrupted();
  test_next_ready();
  test_deleted_conn_events();
  return tap_done();
}
