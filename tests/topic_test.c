/*
 * Topics: fan-out to members, merging with direct messages, acks and
 * cursors, resends, retention losses, receipts, joining and leaving,
 * pattern subscriptions, delete, session expiry, allocation failures.
 */
#include "deliver/topic.h"
#include "tap.h"
#include "testutil.h"

static const uint8_t *K(const char *s) { return (const uint8_t *)s; }

static tern_topic *mk(tern_hub *hub, const char *name, uint32_t max_messages) {
  tern_topic_options o;
  tern_topic_options_default(&o);
  o.max_messages = max_messages;
  tern_topic *t = NULL;
  if (tern_hub_create_topic(hub, name, &o, T0, &t) != 0) {
    abort();
  }
  return t;
}

static int sub(tern_hub *hub, const char *key, const char *pattern,
               const char *ftext) {
  return (int)tern_hub_subscribe(hub, K(key), strlen(key), pattern, ftext,
                                 T0, NULL);
}

static int tpub(tern_topic *t, int prio, const char *payload,
                const char *attr_val, uint64_t *off) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = prio;
  d.payload = K(payload);
  d.payloadlen = strlen(payload);
  tern_attr a = {"k", attr_val};
  if (attr_val) {
    d.attrs = &a;
    d.nattrs = 1;
  }
  return tern_topic_publish(t, &d, T0, off);
}

static tern_receipt receipt(tern_topic *t, uint64_t off) {
  tern_receipt r;
  memset(&r, 0xff, sizeof(r));
  if (tern_topic_get_receipt(t, off, &r, sizeof(r)) != 0) {
    memset(&r, 0xff, sizeof(r));
  }
  return r;
}

static void test_fanout(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = mk(hub, "news", 100);
  tu_out o[3];
  tern_conn *c[3];
  const char *keys[3] = {"alice", "bob", "carol"};
  for (int i = 0; i < 3; ++i) {
    tu_out_init(&o[i]);
    c[i] = tu_connect(hub, keys[i], T0, &o[i]);
    CHECK_INT(sub(hub, keys[i], "news", NULL), 1, "subscribe joins one topic");
  }
  uint64_t off1 = 0, off2 = 0;
  CHECK_INT(tpub(t, TERN_PRIO_NORMAL, "one", NULL, &off1), 0, "publish");
  CHECK_INT(tpub(t, TERN_PRIO_NORMAL, "two", NULL, &off2), 0, "publish");
  CHECK(off1 == 1 && off2 == 2, "offsets from 1");
  tern_stats st = tu_stats(hub);
  CHECK(st.topics == 1 && st.members == 3 && st.topic_messages == 2 &&
            st.topic_bytes == 6,
        "stats count topics, members, messages, bytes");
  tern_receipt r = receipt(t, 1);
  CHECK(r.subscribed == 3 && r.sent == 0 && r.acked == 0, "receipt before");
  int n = 0;
  for (tern_conn *rc; (rc = tern_hub_next_ready(hub));) {
    for (int i = 0; i < 3; ++i) {
      if (rc == c[i]) {
        tu_drain(&o[i], c[i], T0);
        ++n;
      }
    }
  }
  CHECK_INT(n, 3, "every member's connection got ready");
  char buf[256];
  for (int i = 0; i < 3; ++i) {
    CHECK(strcmp(tu_payloads(&o[i], 0, buf, sizeof(buf)), "one two") == 0,
          "%s got both in offset order (%s)", keys[i], buf);
  }
  r = receipt(t, 1);
  CHECK(r.subscribed == 3 && r.sent == 3 && r.acked == 0, "receipt sent");
  /* alice acks both, bob the first */
  tu_ack(c[0], tu_max_seq(&o[0]), T0);
  tu_ack(c[1], tu_nth(&o[1], WIRE_MSG, 0, 0)->u.msg.seq, T0);
  r = receipt(t, 1);
  CHECK(r.acked == 2, "two acked offset 1 (%" PRIu64 ")", r.acked);
  r = receipt(t, 2);
  CHECK(r.acked == 1, "one acked offset 2");
  tern_session *ts = tern_hub_find_session(hub, K("bob"), 3);
  const member *mb = ((const session *)ts)->tp->members;
  CHECK(member_cursor(mb) == 2, "bob's cursor is 2");
  mb = ((const session *)tern_hub_find_session(hub, K("alice"), 5))
           ->tp->members;
  CHECK(member_cursor(mb) == 3, "alice's cursor is past both");
  CHECK(tern_topic_get_receipt(t, 3, &r, sizeof(r)) == TERN_ERR_NOT_FOUND,
        "no receipt past the end");
  st = tu_stats(hub);
  CHECK(st.messages == 3, "messages held: the unacked per-send ones");
  for (int i = 0; i < 3; ++i) {
    tern_conn_del(c[i]);
    tu_out_free(&o[i]);
  }
  tern_hub_del(hub);
}

static void test_merge_order(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = mk(hub, "feed", 100);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  sub(hub, "u", "feed", NULL);
  tu_pub(hub, "u", TERN_PRIO_NORMAL, NULL, "d1", T0);
  tpub(t, TERN_PRIO_NORMAL, "t1", NULL, NULL);
  tu_pub(hub, "u", TERN_PRIO_NORMAL, NULL, "d2", T0);
  tpub(t, TERN_PRIO_LOW, "t2", NULL, NULL);
  tpub(t, TERN_PRIO_HIGH, "t3", NULL, NULL);
  tu_pub(hub, "u", TERN_PRIO_HIGH, NULL, "d3", T0);
  tu_drain(&o, c, T0);
  char buf[256];
  /* The member offers its next offset only (t1, then t2, then t3: a
     topic's own messages go in offset order); against the direct queues
     it competes by priority, then publish serial. */
  tu_payloads(&o, 0, buf, sizeof(buf));
  CHECK(strcmp(buf, "d3 d1 t1 d2 t2 t3") == 0,
        "merge by priority then serial, topic in offset order (%s)", buf);
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

static void test_resend(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = mk(hub, "feed", 100);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  sub(hub, "u", "feed", NULL);
  tpub(t, TERN_PRIO_NORMAL, "a", NULL, NULL);
  tpub(t, TERN_PRIO_NORMAL, "b", NULL, NULL);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 2, "two sent");
  tu_ack(c, tu_nth(&o, WIRE_MSG, 0, 0)->u.msg.seq, T0);
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_init(&o);
  c = tu_connect(hub, "u", T0, &o);
  tu_drain(&o, c, T0);
  char buf[64];
  CHECK(strcmp(tu_payloads(&o, 0, buf, sizeof(buf)), "b") == 0,
        "the unacked one is sent again (%s)", buf);
  tern_receipt r = receipt(t, 2);
  CHECK(r.sent == 1 && r.acked == 0, "a resend is not a second member");
  tu_ack(c, tu_max_seq(&o), T0);
  r = receipt(t, 2);
  CHECK(r.acked == 1, "acked after the resend");
  const member *mb =
      ((const session *)tern_hub_find_session(hub, K("u"), 1))->tp->members;
  CHECK(member_cursor(mb) == 3, "cursor past both");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

static void test_retention(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = mk(hub, "feed", 3);
  sub(hub, "plain", "feed", NULL);
  sub(hub, "filt", "feed", "k = a");
  sub(hub, "filt2", "feed", "k = a"); /* shares the slot */
  /* 8 messages: a b a b a b a b; the log keeps the last 3 (b a b). */
  for (int i = 0; i < 8; ++i) {
    char p[8];
    snprintf(p, sizeof(p), "m%d", i);
    tpub(t, TERN_PRIO_NORMAL, p, i % 2 ? "b" : "a", NULL);
  }
  tern_topic_info info;
  tern_topic_get_info(t, &info, sizeof(info));
  CHECK(info.first_offset == 6 && info.end_offset == 9 && info.messages == 3,
        "the log keeps 3");
  tern_receipt r = receipt(t, 7);
  CHECK(r.subscribed == 3, "m6 (k=a) matched all three (%" PRIu64 ")",
        r.subscribed);
  r = receipt(t, 8);
  CHECK(r.subscribed == 1, "m7 (k=b) matched the unfiltered one");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "plain", T0, &o);
  tu_drain(&o, c, T0);
  CHECK_INT((int)tu_dropped(&o, TERN_DROP_RETENTION, 0), 5,
            "unfiltered: lost 5 of 8");
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 3, "then the 3 kept");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_init(&o);
  c = tu_connect(hub, "filt", T0, &o);
  tu_drain(&o, c, T0);
  /* k=a: m0 m2 m4 m6; m6 kept, m0 m2 m4 lost */
  CHECK_INT((int)tu_dropped(&o, TERN_DROP_RETENTION, 0), 3,
            "filtered: lost the 3 matching ones");
  char buf[64];
  CHECK(strcmp(tu_payloads(&o, 0, buf, sizeof(buf)), "m6") == 0,
        "then the one matching kept (%s)", buf);
  /* The notice is told again on a new connection until a later ack. */
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_init(&o);
  c = tu_connect(hub, "filt", T0, &o);
  tu_drain(&o, c, T0);
  CHECK_INT((int)tu_dropped(&o, TERN_DROP_RETENTION, 0), 3,
            "an unconfirmed notice is told again");
  tu_ack(c, tu_max_seq(&o), T0);
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_init(&o);
  c = tu_connect(hub, "filt", T0, &o);
  tu_drain(&o, c, T0);
  CHECK_INT((int)tu_dropped(&o, 0, 0), 0, "a confirmed one is not");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

static void test_ttl(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_topic_options opt;
  tern_topic_options_default(&opt);
  opt.max_age = SEC(10);
  tern_topic *t = NULL;
  tern_hub_create_topic(hub, "feed", &opt, T0, &t);
  sub(hub, "u", "feed", NULL);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = K("short");
  d.payloadlen = 5;
  d.ttl = SEC(1);
  tern_topic_publish(t, &d, T0, NULL);
  d.payload = K("long");
  d.payloadlen = 4;
  d.ttl = 0;
  tern_topic_publish(t, &d, T0, NULL);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0 + SEC(2), &o);
  tu_drain(&o, c, T0 + SEC(2));
  char buf[64];
  CHECK(strcmp(tu_payloads(&o, 0, buf, sizeof(buf)), "long") == 0 &&
            tu_dropped(&o, TERN_DROP_RETENTION, 0) == 1,
        "a message past its TTL is lost, counted (%s)", buf);
  tu_ack(c, tu_max_seq(&o), T0 + SEC(2));
  tern_conn_del(c);
  tu_out_free(&o);
  tpub(t, TERN_PRIO_NORMAL, "late", NULL, NULL);
  tu_out_init(&o);
  c = tu_connect(hub, "u", T0 + SEC(20), &o);
  tu_drain(&o, c, T0 + SEC(20));
  CHECK(tu_count(&o, WIRE_MSG, 0) == 0 &&
            tu_dropped(&o, TERN_DROP_RETENTION, 0) == 1,
        "max_age discards it");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

static void test_join_leave(void) {
  tern_settings s = tu_settings();
  s.inflight_window = 1;
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = mk(hub, "feed", 100);
  tu_out oa, ob;
  tu_out_init(&oa);
  tu_out_init(&ob);
  tern_conn *a = tu_connect(hub, "a", T0, &oa);
  tern_conn *b = tu_connect(hub, "b", T0, &ob);
  sub(hub, "a", "feed", NULL);
  tpub(t, TERN_PRIO_NORMAL, "m1", NULL, NULL);
  tpub(t, TERN_PRIO_NORMAL, "m2", NULL, NULL);
  /* b joins while m1 and m2 are being fanned out: it starts after them */
  sub(hub, "b", "feed", NULL);
  tpub(t, TERN_PRIO_NORMAL, "m3", NULL, NULL);
  tu_drain(&ob, b, T0);
  char buf[64];
  CHECK(strcmp(tu_payloads(&ob, 0, buf, sizeof(buf)), "m3") == 0,
        "a member joining mid-broadcast starts after it (%s)", buf);
  CHECK(receipt(t, 1).subscribed == 1 && receipt(t, 3).subscribed == 2,
        "receipts count members at publish");
  tu_drain(&oa, a, T0);
  CHECK_INT(tu_count(&oa, WIRE_MSG, 0), 1, "a: m1 in flight (window 1)");
  /* a leaves: m1 stays in flight, m2 and m3 are never sent */
  CHECK_INT((int)tern_hub_unsubscribe(hub, K("a"), 1, "feed", T0), 1, "leave");
  tu_ack(a, tu_max_seq(&oa), T0);
  tu_drain(&oa, a, T0);
  CHECK(strcmp(tu_payloads(&oa, 0, buf, sizeof(buf)), "m1") == 0,
        "one leaving gets nothing it was not sent (%s)", buf);
  CHECK(receipt(t, 1).acked == 0,
        "an ack after leaving moves no receipt (the member is gone)");
  CHECK_INT((int)tu_stats(hub).members, 1, "one member left");
  CHECK(tern_hub_unsubscribe(hub, K("a"), 1, "feed", T0) == TERN_ERR_NOT_FOUND,
        "unsubscribing twice: not found");
  tern_conn_del(a);
  tern_conn_del(b);
  tu_out_free(&oa);
  tu_out_free(&ob);
  tern_hub_del(hub);
}

static void test_patterns(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_topic *usd = mk(hub, "trade.usd", 100);
  CHECK_INT(sub(hub, "u", "trade.*", NULL), 1, "matches the existing topic");
  CHECK(sub(hub, "u", "nope", NULL) == TERN_ERR_NOT_FOUND,
        "an exact name must exist");
  size_t errpos = 99;
  CHECK(tern_hub_subscribe(hub, K("u"), 1, "trade.*x", NULL, T0, &errpos) ==
                TERN_ERR_INVALID &&
            errpos == 6,
        "a bad pattern: its error offset (%zu)", errpos);
  CHECK(tern_hub_subscribe(hub, K("u"), 1, "trade.*", "k = = 1", T0,
                           &errpos) == TERN_ERR_INVALID,
        "a bad filter");
  tern_topic *eur = mk(hub, "trade.eur", 100);
  mk(hub, "news", 100);
  CHECK_INT((int)tu_stats(hub).members, 2, "a topic created later joins");
  tpub(usd, TERN_PRIO_NORMAL, "usd", NULL, NULL);
  tpub(eur, TERN_PRIO_NORMAL, "eur", NULL, NULL);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  tu_drain(&o, c, T0);
  char buf[64];
  CHECK(strcmp(tu_payloads(&o, 0, buf, sizeof(buf)), "usd eur") == 0,
        "both topics (%s)", buf);
  CHECK_INT((int)tern_hub_unsubscribe(hub, K("u"), 1, "trade.*", T0), 2,
            "unsubscribe leaves both");
  mk(hub, "trade.gbp", 100);
  CHECK_INT((int)tu_stats(hub).members, 0, "and the pattern is gone");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

static void test_delete_and_expiry(void) {
  tern_settings s = tu_settings();
  s.session_ttl = SEC(60);
  tu_alloc al;
  memset(&al, 0, sizeof(al));
  tern_mem mem = tu_alloc_mem(&al);
  tern_hub *hub = NULL;
  tern_hub_new(&hub, &s, &mem);
  tern_topic *t = mk(hub, "feed", 100);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  sub(hub, "u", "feed", NULL);
  sub(hub, "off", "feed", NULL);
  tpub(t, TERN_PRIO_NORMAL, "x", NULL, NULL);
  tu_drain(&o, c, T0);
  tern_topic_del(t, T0);
  tern_stats st = tu_stats(hub);
  CHECK(st.topics == 0 && st.members == 0 && st.topic_messages == 0,
        "delete removes the topic and its members");
  CHECK(tern_hub_find_topic(hub, "feed") == NULL, "not found after");
  tu_ack(c, tu_max_seq(&o), T0);
  CHECK(tu_stats(hub).messages == 0, "the in-flight copy acked after delete");
  t = mk(hub, "feed", 100);
  sub(hub, "off", "feed", NULL);
  CHECK_INT((int)tu_stats(hub).members, 1, "a member offline");
  tern_hub_handle_expiry(hub, T0 + SEC(61));
  tu_events_drain(hub);
  CHECK_INT((int)tu_stats(hub).members, 0, "session expiry removes it");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
  CHECK(al.outstanding == 0 && tu_alloc_finish(&al) == 0,
        "nothing leaked or written after free");
}

/* Allocation failures: each call either succeeds or changes nothing. */
static void test_nomem(void) {
  int failures = 0, successes = 0;
  for (long k = 1; k < 40; ++k) {
    tu_alloc al;
    memset(&al, 0, sizeof(al));
    tern_mem mem = tu_alloc_mem(&al);
    tern_settings s = tu_settings();
    tern_hub *hub = NULL;
    tern_hub_new(&hub, &s, &mem);
    tern_topic *t = mk(hub, "a.b", 100);
    sub(hub, "u", "a.*", "k = a");
    tern_stats before = tu_stats(hub);
    al.fail_at = al.calls + k;
    int rv = tpub(t, TERN_PRIO_NORMAL, "p", "a", NULL);
    tern_stats after = tu_stats(hub);
    if (rv == TERN_ERR_NOMEM) {
      ++failures;
      CHECK(after.topic_messages == before.topic_messages,
            "publish NOMEM at %ld changes nothing", k);
    } else {
      ++successes;
    }
    al.fail_at = al.calls + k;
    before = tu_stats(hub);
    tern_ssize n = tern_hub_subscribe(hub, K("v"), 1, "a.#", "k = b", T0, NULL);
    after = tu_stats(hub);
    if (n == TERN_ERR_NOMEM) {
      CHECK(after.members == before.members &&
                after.sessions == before.sessions &&
                tern_hub_find_session(hub, K("v"), 1) == NULL,
            "subscribe NOMEM at %ld changes nothing", k);
    }
    al.fail_at = al.calls + k;
    before = tu_stats(hub);
    tern_topic *nt = NULL;
    rv = tern_hub_create_topic(hub, "a.c", NULL, T0, &nt);
    after = tu_stats(hub);
    if (rv == TERN_ERR_NOMEM) {
      CHECK(tern_hub_find_topic(hub, "a.c") == NULL &&
                after.members == before.members &&
                after.topics == before.topics,
            "create NOMEM at %ld changes nothing", k);
    } else {
      /* u's "a.*", and v's "a.#" when that subscribe got through */
      uint64_t psubs = 1 + (tern_hub_find_session(hub, K("v"), 1) != NULL);
      CHECK(rv == 0 && after.members == before.members + psubs,
            "create at %ld: the patterns' members join", k);
    }
    al.fail_at = 0;
    tern_hub_del(hub);
    CHECK(al.outstanding == 0, "no leak at %ld", k);
    tu_alloc_finish(&al);
  }
  CHECK(failures > 0 && successes > 0, "the sweep hit both");
}

/* ---- real receivers ------------------------------------------------------- */

typedef struct rx {
  tern_client *cl;
  tern_conn *conn;
  char got[256];
  uint64_t gap, gap_reason;
} rx;

static void rx_pump(tern_hub *hub, rx *r, int n, tern_tstamp now) {
  uint8_t buf[8192];
  for (int round = 0; round < 20; ++round) {
    int moved = 0;
    for (int i = 0; i < n; ++i) {
      tern_ssize k;
      while ((k = tern_client_write(r[i].cl, buf, sizeof(buf), now)) > 0) {
        tern_conn_read(r[i].conn, buf, (size_t)k, now);
        moved = 1;
      }
      while ((k = tern_conn_write(r[i].conn, buf, sizeof(buf), now)) > 0) {
        tern_client_read(r[i].cl, buf, (size_t)k, now);
        moved = 1;
      }
      tern_client_event ev;
      while (tern_client_next_event(r[i].cl, &ev) == 1) {
        if (ev.type == TERN_CLIENT_EV_MESSAGE) {
          size_t len = strlen(r[i].got);
          snprintf(r[i].got + len, sizeof(r[i].got) - len, "%s%.*s",
                   len ? " " : "", (int)ev.payloadlen,
                   (const char *)ev.payload);
        } else if (ev.type == TERN_CLIENT_EV_GAP) {
          r[i].gap += ev.count;
          r[i].gap_reason = (uint64_t)ev.reason;
        }
      }
    }
    tern_client_handle_expiry(r[0].cl, now);
    (void)hub;
    if (!moved) {
      break;
    }
  }
}

static void rx_open(tern_hub *hub, rx *r, const char *key, tern_tstamp now) {
  tern_client_settings cs;
  tern_client_settings_default(&cs);
  cs.ack_every = 1;
  memset(r, 0, sizeof(*r));
  if (tern_client_new(&r->cl, K(key), strlen(key), NULL, 0, &cs, NULL, now) !=
      0) {
    abort();
  }
  tern_client_event ev;
  tern_client_next_event(r->cl, &ev);
  tern_client_connect(r->cl, now);
  tern_conn_new(&r->conn, hub, now);
}

static void test_clients(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = mk(hub, "feed", 2);
  rx r[2];
  rx_open(hub, &r[0], "one", T0);
  rx_open(hub, &r[1], "two", T0);
  sub(hub, "one", "feed", NULL);
  sub(hub, "two", "feed", "k = a");
  rx_pump(hub, r, 1, T0); /* only "one" connects for now */
  tpub(t, TERN_PRIO_NORMAL, "a1", "a", NULL);
  tpub(t, TERN_PRIO_NORMAL, "b1", "b", NULL);
  tu_pub(hub, "one", TERN_PRIO_HIGH, NULL, "direct", T0);
  rx_pump(hub, r, 1, T0);
  CHECK(strcmp(r[0].got, "direct a1 b1") == 0,
        "a tern_client gets the topic and direct messages merged (%s)",
        r[0].got);
  tern_receipt rc = receipt(t, 2);
  CHECK(rc.subscribed == 1 && rc.sent == 1 && rc.acked == 1,
        "the client's acks reach the receipt");
  const member *mb =
      ((const session *)tern_hub_find_session(hub, K("one"), 3))->tp->members;
  CHECK(member_cursor(mb) == 3, "and move the cursor");
  /* "two" was offline: a2 a3 go by while the log keeps 2 */
  tpub(t, TERN_PRIO_NORMAL, "a2", "a", NULL);
  tpub(t, TERN_PRIO_NORMAL, "a3", "a", NULL);
  tpub(t, TERN_PRIO_NORMAL, "b2", "b", NULL);
  rx_pump(hub, r, 2, T0);
  CHECK(strcmp(r[1].got, "a3") == 0 && r[1].gap == 2 &&
            r[1].gap_reason == TERN_DROP_RETENTION,
        "the late client hears of its 2 filtered losses, then a3 (%s, gap "
        "%" PRIu64 ")",
        r[1].got, r[1].gap);
  for (int i = 0; i < 2; ++i) {
    tern_conn_del(r[i].conn);
    tern_client_del(r[i].cl);
  }
  tern_hub_del(hub);
}

static void test_ack_timeout(void) {
  tern_settings s = tu_settings();
  s.ack_timeout = SEC(1);
  s.max_deliver = 2;
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = mk(hub, "feed", 100);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  sub(hub, "u", "feed", NULL);
  tpub(t, TERN_PRIO_NORMAL, "x", NULL, NULL);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 1, "sent");
  tern_tstamp now = T0 + SEC(1);
  tern_hub_handle_expiry(hub, now);
  tu_drain(&o, c, now);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 2, "sent again after the ack timeout");
  CHECK(receipt(t, 1).sent == 1, "still one member sent it");
  now += SEC(2);
  tern_hub_handle_expiry(hub, now);
  tu_events_drain(hub);
  tu_drain(&o, c, now);
  CHECK(tu_dropped(&o, TERN_DROP_DEAD, 0) == 1,
        "dead after max_deliver sends, told");
  const member *mb =
      ((const session *)tern_hub_find_session(hub, K("u"), 1))->tp->members;
  CHECK(member_cursor(mb) == 2 && mb->out == NULL,
        "the cursor moves past a dead message");
  /* A pending per-send message goes when its topic goes. */
  tpub(t, TERN_PRIO_NORMAL, "y", NULL, NULL);
  uint8_t tiny[4];
  tern_conn_write(c, tiny, 0, now); /* makes it, cannot send it */
  CHECK(tu_info(hub, "u").pending == 1, "a per-send message is pending");
  tern_topic_del(t, now);
  tu_drain(&o, c, now);
  CHECK(tu_count(&o, WIRE_MSG, 0) == 2 && tu_stats(hub).messages == 0,
        "a topic deleted before its message went out: not sent");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

/* A topic holds 63 distinct filters (slot 0 is "no filter"): the 64th is
   TERN_ERR_LIMIT and changes nothing; an equal filter shares its slot. */
static void test_filter_limit(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  mk(hub, "feed", 100);
  char key[16], flt[32];
  int joined = 0;
  for (int i = 0; i < 63; ++i) {
    snprintf(key, sizeof(key), "k%d", i);
    snprintf(flt, sizeof(flt), "n = %d", i);
    joined += tern_hub_subscribe(hub, (const uint8_t *)key, strlen(key),
                                 "feed", flt, T0, NULL) == 1;
  }
  CHECK_INT(joined, 63, "63 distinct filters each take a slot");
  tern_stats before = tu_stats(hub);
  CHECK_INT((int)tern_hub_subscribe(hub, (const uint8_t *)"k63", 3, "feed",
                                    "n = 63", T0, NULL),
            TERN_ERR_LIMIT, "the 64th distinct filter is refused");
  tern_stats after = tu_stats(hub);
  CHECK(after.members == before.members && after.sessions == before.sessions,
        "the refused subscribe changed nothing");
  CHECK_INT((int)tern_hub_subscribe(hub, (const uint8_t *)"k63", 3, "feed",
                                    "n = 5", T0, NULL),
            1, "an equal filter shares its slot");
  CHECK_INT((int)tern_hub_subscribe(hub, (const uint8_t *)"k64", 3, "feed",
                                    NULL, T0, NULL),
            1, "no filter needs no slot");
  tern_hub_del(hub);
}

int main(void) {
  test_clients();
  test_ack_timeout();
  test_fanout();
  test_merge_order();
  test_resend();
  test_retention();
  test_ttl();
  test_join_leave();
  test_patterns();
  test_delete_and_expiry();
  test_nomem();
  test_filter_limit();
  return tap_done();
}
