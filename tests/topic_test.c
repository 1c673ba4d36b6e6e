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
  const member *mb = ((const session *)ts)->members;
  CHECK(member_cursor(mb) == 2, "bob's cursor is 2");
  mb = ((const session *)tern_hub_find_session(hub, K("alice"), 5))->members;
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
      ((const session *)tern_hub_find_session(hub, K("u"), 1))->members;
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
  CHECK_INT((int)tern_hub_unsubscribe(hub, K("a"), 1, "feed"), 1, "leave");
  tu_ack(a, tu_max_seq(&oa), T0);
  tu_drain(&oa, a, T0);
  CHECK(strcmp(tu_payloads(&oa, 0, buf, sizeof(buf)), "m1") == 0,
        "one leaving gets nothing it was not sent (%s)", buf);
  CHECK(receipt(t, 1).acked == 0,
        "an ack after leaving moves no receipt (the member is gone)");
  CHECK_INT((int)tu_stats(hub).members, 1, "one member left");
  CHECK(tern_hub_unsubscribe(hub, K("a"), 1, "feed") == TERN_ERR_NOT_FOUND,
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
  CHECK_INT((int)tern_hub_unsubscribe(hub, K("u"), 1, "trade.*"), 2,
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
  tern_topic_del(t);
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
    al.fail_at = 0;
    tern_hub_del(hub);
    CHECK(al.outstanding == 0, "no leak at %ld", k);
    tu_alloc_finish(&al);
  }
  CHECK(failures > 0 && successes > 0, "the sweep hit both");
}

int main(void) {
  test_fanout();
  test_merge_order();
  test_resend();
  test_retention();
  test_ttl();
  test_join_leave();
  test_patterns();
  test_delete_and_expiry();
  test_nomem();
  return tap_done();
}
