/*
 * Topics over a store (tests/memstore.h, and once the file store): what a
 * restart restores of topics, members' cursors, retention losses, pattern
 * subscriptions and shared payloads; what deleting leaves; what a crash in
 * the middle of a batch may do to a cursor; corrupt records.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver/hub.h"
#include "memstore.h"
#include "store_util.h"
#include "tap.h"
#include "testutil.h"

static char pbuf[8192];

static const tern_store_methods *methods = &memstore_methods;

static tern_hub *hub_with(void *store, const tern_settings *s,
                          const tern_mem *mem, tern_tstamp now) {
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, s, mem) != 0) {
    abort();
  }
  int rv = tern_hub_set_store(hub, methods, store, now);
  if (rv != 0) {
    fprintf(stderr, "topic_persist_test: set_store: %s\n", tern_strerror(rv));
    abort();
  }
  return hub;
}

static tern_hub *hub_on(void *store, tern_tstamp now) {
  tern_settings s = tu_settings();
  s.session_ttl = SEC(3600);
  return hub_with(store, &s, NULL, now);
}

/* Makes every batch so far durable, then the process dies. */
static void stop(tern_hub *hub, memstore *ms) {
  tern_hub_flush(hub);
  memstore_sync(ms);
  memstore_crash(ms);
  tern_hub_del(hub);
  memstore_restart(ms);
}

static int tpub(tern_hub *hub, const char *name, const char *payload,
                const char *price, tern_tstamp now) {
  tern_topic *t = tern_hub_find_topic(hub, name);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.payload = (const uint8_t *)payload;
  d.payloadlen = strlen(payload);
  tern_attr a = {"price", price};
  if (price) {
    d.attrs = &a;
    d.nattrs = 1;
  }
  return tern_topic_publish(t, &d, now, NULL);
}

static tern_ssize sub(tern_hub *hub, const char *key, const char *pattern,
                      const char *filter, tern_tstamp now) {
  return tern_hub_subscribe(hub, (const uint8_t *)key, strlen(key), pattern,
                            filter, now, NULL);
}

/* The seq of the MSG frame whose payload is |payload|, 0 if none. */
static uint64_t seq_of(const tu_out *o, const char *payload) {
  for (size_t i = 0; i < o->nframes; ++i) {
    if (tu_msg_payload_is(&o->frames[i].f, payload)) {
      return o->frames[i].f.u.msg.seq;
    }
  }
  return 0;
}

/* Connects |key|, reads everything, returns the payloads in |buf|. */
static const char *read_all(tern_hub *hub, const char *key, tern_tstamp now,
                            tu_out *o, tern_conn **pc) {
  tu_out_init(o);
  tern_conn *c = tu_connect(hub, key, now, o);
  tu_drain(o, c, now);
  if (pc) {
    *pc = c;
  } else {
    tern_conn_del(c);
  }
  return tu_payloads(o, 0, pbuf, sizeof(pbuf));
}

static size_t count_kinds(const memstore *ms, const char *kinds) {
  size_t n = 0;
  for (const char *k = kinds; *k; ++k) {
    n += memstore_count(ms, (uint8_t)*k);
  }
  return n;
}

/* ---- 1. a restart resumes each member where it acked ------------------- */

static void resume_scenario(void *store, memstore *ms, const char *tag) {
  tern_hub *hub = hub_on(store, T0);
  CHECK(tern_hub_create_topic(hub, "news", NULL, T0, NULL) == 0,
        "%s: topic", tag);
  CHECK(sub(hub, "a", "news", NULL, T0) == 1, "%s: a subscribes", tag);
  CHECK(sub(hub, "b", "news", NULL, T0) == 1, "%s: b subscribes", tag);
  CHECK(sub(hub, "c", "news", NULL, T0) == 1, "%s: c subscribes", tag);
  const char *m[] = {"m1", "m2", "m3", "m4", "m5"};
  for (int i = 0; i < 5; ++i) {
    tpub(hub, "news", m[i], NULL, T0);
  }
  tu_out oa, ob;
  tern_conn *ca, *cb;
  read_all(hub, "a", T0, &oa, &ca);
  CHECK(strcmp(pbuf, "m1 m2 m3 m4 m5") == 0, "%s: a reads all (%s)", tag,
        pbuf);
  tu_ack(ca, seq_of(&oa, "m3"), T0); /* a acks m1..m3 */
  read_all(hub, "b", T0, &ob, &cb);  /* b acks nothing; c is offline */
  tern_hub_flush(hub);
  if (ms) {
    stop(hub, ms);
  } else {
    tern_hub_del(hub); /* the file store: what it holds survives */
  }
  tu_out_free(&oa);
  tu_out_free(&ob);

  hub = hub_on(store, T0 + SEC(1));
  tern_topic_info ti;
  tern_topic_get_info(tern_hub_find_topic(hub, "news"), &ti, sizeof(ti));
  CHECK(ti.messages == 5 && ti.members == 3 && ti.end_offset == 6,
        "%s: the topic is back with its log and members (%llu msgs, %llu "
        "members, end %llu)",
        tag, (unsigned long long)ti.messages, (unsigned long long)ti.members,
        (unsigned long long)ti.end_offset);
  read_all(hub, "a", T0 + SEC(1), &oa, NULL);
  CHECK(strcmp(pbuf, "m4 m5") == 0,
        "%s: a resumes after what it acked (%s)", tag, pbuf);
  tu_out_free(&oa);
  read_all(hub, "b", T0 + SEC(1), &oa, NULL);
  CHECK(strcmp(pbuf, "m1 m2 m3 m4 m5") == 0,
        "%s: b gets again what it was sent and did not ack (%s)", tag, pbuf);
  tu_out_free(&oa);
  read_all(hub, "c", T0 + SEC(1), &oa, NULL);
  CHECK(strcmp(pbuf, "m1 m2 m3 m4 m5") == 0,
        "%s: c, offline, gets everything (%s)", tag, pbuf);
  tu_out_free(&oa);
  uint64_t off = 0;
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"m6";
  d.payloadlen = 2;
  tern_topic_publish(tern_hub_find_topic(hub, "news"), &d, T0 + SEC(1), &off);
  CHECK(off == 6, "%s: offsets go on after the restart (%llu)", tag,
        (unsigned long long)off);
  tern_receipt r;
  memset(&r, 0, sizeof(r));
  tern_topic_get_receipt(tern_hub_find_topic(hub, "news"), 2, &r, sizeof(r));
  CHECK(r.subscribed == 3 && r.acked == 1,
        "%s: receipts from the restored cursors: 3 members, a acked it "
        "(subscribed %llu, acked %llu)",
        tag, (unsigned long long)r.subscribed, (unsigned long long)r.acked);
  tern_hub_del(hub);
}

static void test_resume(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  resume_scenario(&ms, &ms, "resume");
  memstore_free(&ms);
}

static void test_file_store(void) {
  char *dir = su_tmpdir("topic-persist");
  tern_store_file *fs = su_open(dir, NULL);
  methods = tern_store_file_methods();
  resume_scenario(fs, NULL, "file");
  methods = &memstore_methods;
  tern_store_file_close(fs);
  su_rmtree(dir);
  free(dir);
}

/* A burst of acks rewrites the member's record waiting in the batch: one
   record per batch, not one per ack. */
static void test_cursor_coalesce(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  s.session_ttl = SEC(3600);
  s.inflight_window = 1000;
  tern_hub *hub = hub_with(&ms, &s, NULL, T0);
  tern_hub_create_topic(hub, "burst", NULL, T0, NULL);
  sub(hub, "b", "burst", NULL, T0);
  char p[16];
  for (int i = 1; i <= 100; ++i) {
    snprintf(p, sizeof(p), "b%d", i);
    tpub(hub, "burst", p, NULL, T0);
  }
  tu_out o;
  tern_conn *c;
  read_all(hub, "b", T0, &o, &c);
  tern_hub_flush(hub);
  size_t before = ms.records;
  for (int i = 1; i <= 100; ++i) {
    snprintf(p, sizeof(p), "b%d", i);
    tu_ack(c, seq_of(&o, p), T0);
  }
  tern_hub_flush(hub);
  CHECK(ms.records - before == 1,
        "coalesce: 100 acks wrote %zu cursor records in one batch",
        ms.records - before);
  tern_conn_del(c);
  tu_out_free(&o);
  stop(hub, &ms);
  hub = hub_on(&ms, T0 + SEC(1));
  read_all(hub, "b", T0 + SEC(1), &o, NULL);
  CHECK(strcmp(pbuf, "") == 0, "coalesce: the last cursor is the one kept "
                               "(%s)",
        pbuf);
  tu_out_free(&o);
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* ---- 2. retention losses across a restart ------------------------------ */

static tern_tstamp now_r = T0;

static void test_retention_losses(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, now_r);
  tern_topic_options opt;
  tern_topic_options_default(&opt);
  opt.max_messages = 3;
  tern_hub_create_topic(hub, "t", &opt, now_r, NULL);
  sub(hub, "x", "t", NULL, now_r);
  sub(hub, "f", "t", "price > 100", now_r); /* filtered: offline */
  tpub(hub, "t", "p1", "500", now_r);
  tu_out o;
  tern_conn *c;
  read_all(hub, "x", now_r, &o, &c);
  tu_ack(c, seq_of(&o, "p1"), now_r); /* x's cursor: 2 */
  tern_conn_del(c);
  tu_out_free(&o);
  char p[16];
  for (int i = 2; i <= 11; ++i) {
    snprintf(p, sizeof(p), "p%d", i);
    tpub(hub, "t", p, "500", now_r);
  }
  /* retained: p9 p10 p11; x lost p2..p8 (7), not told yet */
  stop(hub, &ms);
  hub = hub_on(&ms, now_r + SEC(1));
  read_all(hub, "x", now_r + SEC(1), &o, &c);
  CHECK_INT(tu_dropped(&o, TERN_DROP_RETENTION, 0), 7,
            "retention: the restart tells the 7 losses not told before");
  CHECK(strcmp(pbuf, "p9 p10 p11") == 0, "retention: then the log (%s)",
        pbuf);
  tu_out_free(&o);
  tu_out fo;
  read_all(hub, "f", now_r + SEC(1), &fo, NULL);
  CHECK(tu_dropped(&fo, TERN_DROP_RETENTION, 0) >= 8,
        "retention: a filtered member behind retention hears of its 8 "
        "losses at least (%llu)",
        (unsigned long long)tu_dropped(&fo, TERN_DROP_RETENTION, 0));
  tu_out_free(&fo);
  /* Told, not confirmed: told again after a crash. */
  tern_conn_del(c);
  stop(hub, &ms);
  hub = hub_on(&ms, now_r + SEC(2));
  read_all(hub, "x", now_r + SEC(2), &o, &c);
  CHECK_INT(tu_dropped(&o, TERN_DROP_RETENTION, 0), 7,
            "retention: told and unconfirmed losses are told again");
  /* Confirmed by an ACK past the notice: never again. */
  tu_ack(c, tu_max_seq(&o), now_r + SEC(2));
  tern_conn_del(c);
  tu_out_free(&o);
  stop(hub, &ms);
  hub = hub_on(&ms, now_r + SEC(3));
  read_all(hub, "x", now_r + SEC(3), &o, NULL);
  CHECK_INT(tu_dropped(&o, 0, 0), 0, "retention: confirmed losses stay told");
  CHECK(strcmp(pbuf, "") == 0, "retention: acked messages stay acked (%s)",
        pbuf);
  tu_out_free(&o);
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* A member that leaves behind its losses: its session still tells them,
   across a restart too (the "S" record's fourth count), until an ACK
   past the notice confirms them; then the session's topic state goes. */
static void test_leave_losses(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tern_topic_options opt;
  tern_topic_options_default(&opt);
  opt.max_messages = 3;
  tern_hub_create_topic(hub, "t", &opt, T0, NULL);
  sub(hub, "x", "t", NULL, T0); /* offline throughout */
  sub(hub, "y", "t", NULL, T0);
  tern_hub_unsubscribe(hub, (const uint8_t *)"y", 1, "t", T0);
  const session *sy =
      (const session *)tern_hub_find_session(hub, (const uint8_t *)"y", 1);
  CHECK(sy && sy->tp == NULL,
        "leave: a session that lost nothing keeps no topic state");
  char p[16];
  for (int i = 1; i <= 5; ++i) {
    snprintf(p, sizeof(p), "p%d", i);
    tpub(hub, "t", p, NULL, T0);
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.payload = (const uint8_t *)"e1";
  d.payloadlen = 2;
  d.ttl = SEC(1);
  tern_topic_publish(tern_hub_find_topic(hub, "t"), &d, T0, NULL);
  /* x lost p1..p3 to retention, e1 to its TTL; p4 p5 it just leaves */
  CHECK_INT(tern_hub_unsubscribe(hub, (const uint8_t *)"x", 1, "t",
                                 T0 + SEC(2)),
            1, "leave: x leaves");
  stop(hub, &ms);
  hub = hub_on(&ms, T0 + SEC(3));
  /* a message after the notice: its ACK confirms the notice arrived */
  tu_pub(hub, "x", TERN_PRIO_NORMAL, "i1", "d1", T0 + SEC(3));
  tu_out o;
  tern_conn *c;
  read_all(hub, "x", T0 + SEC(3), &o, &c);
  CHECK_INT(tu_dropped(&o, TERN_DROP_RETENTION, 0), 4,
            "leave: after a restart x hears of its 4 losses");
  CHECK(strcmp(pbuf, "d1") == 0, "leave: and no topic message (%s)", pbuf);
  tu_ack(c, tu_max_seq(&o), T0 + SEC(3));
  const session *sx =
      (const session *)tern_hub_find_session(hub, (const uint8_t *)"x", 1);
  CHECK(sx && sx->tp == NULL,
        "leave: confirmed, the session's topic state is freed");
  tern_conn_del(c);
  tu_out_free(&o);
  stop(hub, &ms);
  hub = hub_on(&ms, T0 + SEC(4));
  read_all(hub, "x", T0 + SEC(4), &o, NULL);
  CHECK_INT(tu_dropped(&o, 0, 0), 0, "leave: confirmed losses stay told");
  tu_out_free(&o);
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* Messages of a topic whose TTL passes while the hub is down are lost for
   the members behind them, counted as a live hub counts them. */
static void test_expired_while_down(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tern_hub_create_topic(hub, "e", NULL, T0, NULL);
  sub(hub, "y", "e", NULL, T0);
  tern_topic *t = tern_hub_find_topic(hub, "e");
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"short";
  d.payloadlen = 5;
  d.ttl = SEC(5);
  tern_topic_publish(t, &d, T0, NULL);
  tern_topic_publish(t, &d, T0, NULL);
  d.payload = (const uint8_t *)"long";
  d.payloadlen = 4;
  d.ttl = 0;
  tern_topic_publish(t, &d, T0, NULL);
  stop(hub, &ms);
  hub = hub_on(&ms, T0 + SEC(10));
  tu_out o;
  read_all(hub, "y", T0 + SEC(10), &o, NULL);
  CHECK_INT(tu_dropped(&o, TERN_DROP_RETENTION, 0), 2,
            "expired: the 2 messages that expired while down are told");
  CHECK(strcmp(pbuf, "long") == 0, "expired: the live one is sent (%s)",
        pbuf);
  tu_out_free(&o);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK_INT(memstore_count(&ms, 'U'), 1,
            "expired: their records are deleted");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* ---- 3. pattern subscriptions ------------------------------------------ */

static void test_pattern(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  CHECK_INT(sub(hub, "p", "trade.*", "price > 100", T0), 0,
            "pattern: subscribed before any topic");
  stop(hub, &ms);
  hub = hub_on(&ms, T0 + SEC(1));
  CHECK_INT(tern_hub_create_topic(hub, "trade.usd", NULL, T0 + SEC(1), NULL),
            0, "pattern: a topic created after the restart");
  tern_topic_info ti;
  tern_topic_get_info(tern_hub_find_topic(hub, "trade.usd"), &ti, sizeof(ti));
  CHECK_INT(ti.members, 1, "pattern: the restored subscription joins it");
  tpub(hub, "trade.usd", "cheap", "50", T0 + SEC(1));
  tpub(hub, "trade.usd", "dear", "150", T0 + SEC(1));
  tu_out o;
  read_all(hub, "p", T0 + SEC(1), &o, NULL);
  CHECK(strcmp(pbuf, "dear") == 0, "pattern: its filter still applies (%s)",
        pbuf);
  tu_out_free(&o);
  CHECK_INT(tern_hub_unsubscribe(hub, (const uint8_t *)"p", 1, "trade.*", T0), 1,
            "pattern: unsubscribe after the restart");
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK_INT(count_kinds(&ms, "WC"), 0,
            "pattern: unsubscribing deletes its records");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* ---- 4. a payload sent to many is stored once ------------------------- */

#define MANY 100
#define BIG 65536

static size_t value_bytes(const memstore *ms) {
  size_t n = 0;
  for (size_t i = 0; i < ms->nkv; ++i) {
    n += ms->kv[i].keylen + ms->kv[i].valuelen;
  }
  return n;
}

static void test_publish_many(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  s.session_ttl = SEC(3600);
  tern_hub *hub = hub_with(&ms, &s, NULL, T0);
  static uint8_t big[BIG];
  memset(big, 'z', sizeof(big));
  tern_key keys[MANY];
  char names[MANY][8];
  for (int i = 0; i < MANY; ++i) {
    snprintf(names[i], sizeof(names[i]), "s%d", i);
    keys[i].key = (const uint8_t *)names[i];
    keys[i].keylen = strlen(names[i]);
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = big;
  d.payloadlen = sizeof(big);
  CHECK_INT(tern_hub_publish_many(hub, keys, MANY, &d, T0, NULL, NULL), MANY,
            "many: queued for every session");
  stop(hub, &ms);
  size_t bytes = value_bytes(&ms);
  CHECK(bytes < 2 * BIG, "many: the store holds the payload once (%zu bytes "
                         "for %d sessions)",
        bytes, MANY);
  CHECK_INT(memstore_count(&ms, 'P'), 1, "many: one payload record");

  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  s.max_pool_bytes = 0;
  hub = hub_with(&ms, &s, &mem, T0 + SEC(1));
  CHECK(a.bytes < 2 * BIG + 256 * 1024,
        "many: after reload the payload is in memory once (%zu bytes)",
        a.bytes);
  tu_out o;
  read_all(hub, "s7", T0 + SEC(1), &o, NULL);
  const wire_frame *f = tu_last(&o, WIRE_MSG);
  CHECK(f && f->u.msg.payloadlen == BIG && f->u.msg.payload[BIG - 1] == 'z',
        "many: and delivered whole");
  tu_out_free(&o);
  /* acked by all: the payload record goes after the last message's */
  for (int i = 0; i < MANY; ++i) {
    tern_conn *c;
    read_all(hub, names[i], T0 + SEC(1), &o, &c);
    tu_ack(c, tu_max_seq(&o), T0 + SEC(1));
    tern_conn_del(c);
    tu_out_free(&o);
  }
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK_INT(count_kinds(&ms, "MP"), 0,
            "many: acked everywhere, no message or payload record is left");
  tern_hub_del(hub);
  CHECK_INT(a.outstanding, 0, "many: nothing leaked");
  tu_alloc_finish(&a);
  memstore_free(&ms);
}

/* ---- 5. deleting leaves no records ------------------------------------- */

static void test_deletes(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  s.session_ttl = SEC(60);
  tern_hub *hub = hub_with(&ms, &s, NULL, T0);
  tern_hub_create_topic(hub, "a.one", NULL, T0, NULL);
  tern_hub_create_topic(hub, "a.two", NULL, T0, NULL);
  sub(hub, "k1", "a.*", NULL, T0);
  sub(hub, "k2", "a.one", "price > 1", T0);
  sub(hub, "k3", "a.two", NULL, T0);
  tpub(hub, "a.one", "x", "5", T0);
  tpub(hub, "a.two", "y", "5", T0);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK(count_kinds(&ms, "TUCW") == 2 + 2 + 4 + 1,
        "deletes: the records are there (%zu)", count_kinds(&ms, "TUCW"));
  tern_topic_del(tern_hub_find_topic(hub, "a.one"), T0);
  tern_hub_unsubscribe(hub, (const uint8_t *)"k3", 2, "a.two", T0);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK_INT(count_kinds(&ms, "TUC"), 1 + 1 + 1,
            "deletes: topic delete and unsubscribe delete theirs");
  /* the sessions expire: their members and patterns go */
  tern_hub_handle_expiry(hub, T0 + SEC(61));
  memstore_sync(&ms);
  CHECK_INT(count_kinds(&ms, "CWS"), 0,
            "deletes: expired sessions leave no cursor or pattern");
  tern_topic_del(tern_hub_find_topic(hub, "a.two"), T0);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK_INT(count_kinds(&ms, "TUCWP"), 0, "deletes: nothing is left");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* ---- 6. a crash in the middle of a batch ------------------------------- */

/* A crash that keeps the first |keep| records appended since the last
   sync (a prefix, as a log store keeps). */
static void crash_keeping(memstore *ms, size_t keep) {
  for (size_t i = 0; i < ms->npending; ++i) {
    if (i < keep) {
      memstore_apply(ms, &ms->pending[i]);
    } else {
      memrec_free(&ms->pending[i]);
    }
  }
  ms->npending = 0;
  ms->frozen = 1;
}

static void test_crash_prefix(void) {
  int ok_forward = 1, ok_back = 1, ok_load = 1;
  size_t kept_max = 0;
  for (size_t keep = 0;; ++keep) {
    memstore ms;
    memset(&ms, 0, sizeof(ms));
    tern_hub *hub = hub_on(&ms, T0);
    tern_topic_options opt;
    tern_topic_options_default(&opt);
    opt.max_messages = 6;
    tern_hub_create_topic(hub, "c", &opt, T0, NULL);
    sub(hub, "r", "c", NULL, T0);
    sub(hub, "q", "c", NULL, T0);
    char p[16];
    for (int i = 1; i <= 4; ++i) {
      snprintf(p, sizeof(p), "c%d", i);
      tpub(hub, "c", p, NULL, T0);
    }
    tu_out o;
    tern_conn *c;
    read_all(hub, "r", T0, &o, &c);
    tu_ack(c, seq_of(&o, "c2"), T0); /* durable: r acked c1 c2 */
    tern_hub_flush(hub);
    memstore_sync(&ms);
    /* Not durable: more publishes (evicting), acks up to c5 */
    for (int i = 5; i <= 9; ++i) {
      snprintf(p, sizeof(p), "c%d", i);
      tpub(hub, "c", p, NULL, T0);
    }
    tu_drain(&o, c, T0);
    tu_ack(c, seq_of(&o, "c5"), T0);
    tern_hub_flush(hub);
    size_t pending = ms.npending;
    crash_keeping(&ms, keep);
    tern_conn_del(c);
    tern_hub_del(hub);
    memstore_restart(&ms);
    tu_out_free(&o);
    tern_hub *h2 = NULL;
    tern_settings s = tu_settings();
    s.session_ttl = SEC(3600);
    tern_hub_new(&h2, &s, NULL);
    if (tern_hub_set_store(h2, &memstore_methods, &ms, T0 + SEC(1)) != 0) {
      ok_load = 0;
    } else {
      read_all(h2, "r", T0 + SEC(1), &o, NULL);
      tern_topic_info ti;
      tern_topic_get_info(tern_hub_find_topic(h2, "c"), &ti, sizeof(ti));
      /* Payload cN is offset N.  The first resent is c3 (c1 c2 acked
         durably) or c6 (c5 acked, not durable), or the log's first when
         retention took those (told as lost); never one in between (a
         cursor that moved past what was not acked); the rest follow
         without a gap up to the log's end. */
      int first = 0, prev = 0, gap = 0;
      for (size_t i = 0; i < o.nframes; ++i) {
        const wire_frame *f = &o.frames[i].f;
        if (f->type != WIRE_MSG) {
          continue;
        }
        char num[16] = {0};
        memcpy(num, f->u.msg.payload + 1,
               f->u.msg.payloadlen - 1 < 15 ? f->u.msg.payloadlen - 1 : 15);
        int k = atoi(num);
        if (!first) {
          first = k;
        } else if (k != prev + 1) {
          gap = 1;
        }
        prev = k;
      }
      uint64_t dropped = tu_dropped(&o, TERN_DROP_RETENTION, 0);
      int retained = dropped && (uint64_t)first == ti.first_offset;
      if (first != 3 && first != 6 && !retained) {
        ok_forward = 0;
        tap_diag("keep %zu: resumed at c%d (log from %llu)", keep, first,
                 (unsigned long long)ti.first_offset);
      }
      if (gap || (first && (uint64_t)prev + 1 != ti.end_offset)) {
        ok_back = 0;
        tap_diag("keep %zu: c%d..c%d read, log end %llu", keep, first, prev,
                 (unsigned long long)ti.end_offset);
      }
      tu_out_free(&o);
    }
    tern_hub_del(h2);
    memstore_free(&ms);
    kept_max = pending;
    if (keep >= pending) {
      break;
    }
  }
  CHECK(ok_load, "crash: every prefix of the lost batch loads");
  CHECK(ok_forward, "crash: a cursor never moves past what was not acked "
                    "(%zu prefixes)",
        kept_max + 1);
  CHECK(ok_back, "crash: nothing after the restored cursor is skipped "
                 "silently");
}

/* The same over the file store, killed with SIGKILL at random moments
   (tests/hub_crash_test.c style): a child publishes to a topic and a
   member acks as it reads, making some acks durable and saying so; after
   each kill the member must resume after its last durable ack at the
   earliest, after its last ack sent at the latest, and get everything
   from there on without a gap. */
#define KILLS 20

static tern_tstamp wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (tern_tstamp)ts.tv_sec * TERN_SECONDS + (tern_tstamp)ts.tv_nsec;
}

static unsigned long id_num(const wire_frame *f) {
  char num[24] = {0};
  size_t n = f->u.msg.idlen - 1 < 23 ? f->u.msg.idlen - 1 : 23;
  memcpy(num, f->u.msg.id + 1, n);
  return strtoul(num, NULL, 10);
}

static tern_hub *kill_hub(const char *dir, tern_store_file **pfs,
                          tern_tstamp now) {
  *pfs = su_open(dir, NULL);
  tern_settings s;
  tern_settings_default(&s);
  s.session_ttl = SEC(3600);
  s.inflight_window = 1000000;
  tern_hub *hub;
  if (tern_hub_new(&hub, &s, NULL) != 0 ||
      tern_hub_set_store(hub, tern_store_file_methods(), *pfs, now) != 0) {
    _exit(2);
  }
  tern_topic_options o;
  tern_topic_options_default(&o);
  o.max_messages = 0;
  o.max_bytes = 0;
  tern_hub_create_topic(hub, "k", &o, now, NULL); /* or it was restored */
  sub(hub, "r", "k", NULL, now);
  return hub;
}

static void kill_child(const char *dir, int fd, unsigned long first) {
  tern_store_file *fs;
  tern_hub *hub = kill_hub(dir, &fs, wall_now());
  tern_hub_flush(hub);
  tern_store_file_methods()->sync(fs);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "r", wall_now(), &o);
  for (unsigned long i = first;; ++i) {
    tern_tstamp now = wall_now();
    char id[24];
    snprintf(id, sizeof(id), "m%lu", i);
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.id = (const uint8_t *)id;
    d.idlen = strlen(id);
    d.payload = (const uint8_t *)id;
    d.payloadlen = d.idlen;
    tern_topic_publish(tern_hub_find_topic(hub, "k"), &d, now, NULL);
    if (i % 5 == 0) {
      size_t from = o.nframes;
      tu_drain(&o, c, now);
      /* the receiver acks all but the last message it read, so that
         a durable message is always unacked */
      const wire_frame *f = NULL, *newest = NULL;
      for (size_t k = from; k < o.nframes; ++k) {
        if (o.frames[k].f.type == WIRE_MSG) {
          f = newest;
          newest = &o.frames[k].f;
        }
      }
      if (f && (i / 5) % 2 == 0) {
        char line[32];
        int len = snprintf(line, sizeof(line), "i%lu\n", id_num(f));
        if (write(fd, line, (size_t)len) != len) {
          _exit(3);
        }
        tu_ack(c, f->u.msg.seq, now);
        tern_hub_flush(hub);
        tern_store_file_methods()->sync(fs);
        /* durable: the ack, and every message published so far */
        len = snprintf(line, sizeof(line), "a%lu\ns%lu\n", id_num(f), i);
        if (write(fd, line, (size_t)len) != len) {
          _exit(3);
        }
      }
      if (o.nframes > 10000) {
        tu_out_free(&o);
        tu_out_init(&o);
      }
    }
    tern_hub_handle_expiry(hub, now);
  }
}

static int is_start(const unsigned long *starts, int n, unsigned long id) {
  for (int i = 0; i < n; ++i) {
    if (starts[i] == id) {
      return 1;
    }
  }
  return 0;
}

static void test_kill(void) {
  char *dir = su_tmpdir("topic-kill");
  srand((unsigned)time(NULL));
  unsigned long next = 1, durable = 0, intent = 0, synced = 0;
  int ok_open = 1, ok_back = 1, ok_forward = 1, ok_gap = 1, kills = 0;
  unsigned long starts[KILLS]; /* each child's first id */
  for (int round = 0; round < KILLS; ++round) {
    starts[round] = next;
    int fds[2];
    if (pipe(fds) != 0) {
      abort();
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      kill_child(dir, fds[1], next);
      _exit(0);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[64];
    /* every other child first gets as far as a durable ack */
    int wait_ack = round % 2 == 0;
    while (wait_ack && in && fgets(line, sizeof(line), in)) {
      unsigned long n = strtoul(line + 1, NULL, 10);
      if (line[0] == 'i' && n > intent) {
        intent = n;
      } else if (line[0] == 'a') {
        durable = n > durable ? n : durable;
      } else if (line[0] == 's') {
        synced = n > synced ? n : synced;
        wait_ack = 0;
      }
    }
    struct timespec t = {0, (long)(2 + rand() % 30) * 1000000L};
    nanosleep(&t, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ++kills;
    while (in && fgets(line, sizeof(line), in)) {
      unsigned long n = strtoul(line + 1, NULL, 10);
      if (line[0] == 'i' && n > intent) {
        intent = n;
      } else if (line[0] == 'a' && n > durable) {
        durable = n;
      } else if (line[0] == 's' && n > synced) {
        synced = n;
      }
    }
    if (in) {
      fclose(in);
    }
    /* What the store holds: r resumes between its durable ack and its
       last ack sent, then reads without a gap. */
    tern_store_file *fs;
    tern_tstamp now = wall_now();
    tern_hub *hub = kill_hub(dir, &fs, now);
    tu_out o;
    tu_out_init(&o);
    tern_conn *c = tu_connect(hub, "r", now, &o);
    tu_drain(&o, c, now);
    unsigned long first = 0, prev = 0, last = 0;
    for (size_t k = 0; k < o.nframes; ++k) {
      if (o.frames[k].f.type != WIRE_MSG) {
        continue;
      }
      unsigned long n = id_num(&o.frames[k].f);
      if (!first) {
        first = n;
      } else if (n != prev + 1 && !is_start(starts, round + 1, n)) {
        /* a jump to a child's first id crosses ids that never existed */
        ok_gap = 0;
        tap_diag("round %d: m%lu after m%lu", round, n, prev);
      }
      prev = last = n;
    }
    /* ids of a child start at |next|, beyond every earlier one: an id
       below a durable ack must never come back */
    if (first && first <= durable) {
      ok_back = 0;
      tap_diag("round %d: resumed at m%lu, durably acked m%lu", round,
               first, durable);
    }
    /* m(intent + 1), when durably published, was never acked: it must
       be the first sent again, or an earlier one */
    if (intent + 1 <= synced && (first == 0 || first > intent + 1)) {
      ok_forward = 0;
      tap_diag("round %d: resumed at m%lu, last ack m%lu", round, first,
               intent);
    }
    tern_conn_del(c);
    tern_hub_del(hub); /* nothing acked: what it writes changes nothing */
    tern_store_file_close(fs);
    tu_out_free(&o);
    next = (last > next ? last : next) + 1000;
  }
  CHECK(kills == KILLS && ok_open, "kill: %d SIGKILLs, the store reopened "
                                   "every time",
        kills);
  CHECK(durable > 0, "kill: acks were made durable (up to m%lu)", durable);
  CHECK(ok_back, "kill: a durably acked topic message never came back");
  CHECK(ok_forward, "kill: a cursor never moved past what was not acked");
  CHECK(ok_gap, "kill: from the cursor on, nothing is skipped");
  su_rmtree(dir);
  free(dir);
}

/* ---- 7. corrupt records ------------------------------------------------ */

static int load_with(const char *key, size_t keylen, const uint8_t *value,
                     size_t valuelen, const memstore *base) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  for (size_t i = 0; base && i < base->nkv; ++i) {
    tern_store_record r = {TERN_STORE_SET, base->kv[i].key,
                           base->kv[i].keylen, base->kv[i].value,
                           base->kv[i].valuelen};
    memstore_append(&ms, 0, &r, 1, 1);
  }
  tern_store_record r = {TERN_STORE_SET, (const uint8_t *)key, keylen, value,
                         valuelen};
  memstore_append(&ms, 0, &r, 1, 1);
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  int rv = tern_hub_set_store(hub, &memstore_methods, &ms, T0);
  tern_stats st = tu_stats(hub);
  if (rv != 0 && (st.sessions || st.topics || st.messages)) {
    rv = 1; /* a failed load must leave the hub empty */
  }
  tern_hub_del(hub);
  memstore_free(&ms);
  return rv;
}

static void test_corrupt(void) {
  /* a store with a session, a topic and a member to build on */
  memstore base;
  memset(&base, 0, sizeof(base));
  tern_hub *hub = hub_on(&base, T0);
  tern_hub_create_topic(hub, "z", NULL, T0, NULL);
  sub(hub, "k", "z", NULL, T0);
  tpub(hub, "z", "hello", NULL, T0);
  stop(hub, &base);
  CHECK_INT(load_with("Zx", 2, (const uint8_t *)"", 0, &base), 0,
            "corrupt: the base store loads");
  /* a message of session k that refers to a payload that is not there */
  uint8_t v[64];
  size_t n = 0;
  v[n++] = 1;
  v[n++] = 'k';
  v[n++] = 0;        /* flags */
  v[n++] = 0;
  v[n++] = 1;        /* deliveries */
  memset(v + n, 0xff, 8);
  n += 8;            /* expiry: none */
  v[n++] = 1;        /* format: shared */
  memset(v + n, 0, 8);
  v[n + 7] = 42;     /* payload serial 42 */
  n += 8;
  char mkey[9] = {'M', 0, 0, 0, 0, 0, 0, 0, 99};
  CHECK_INT(load_with(mkey, 9, v, n, &base), TERN_ERR_STORE,
            "corrupt: a message whose payload record is missing");
  /* a cursor record with an unknown version */
  const memrec *c = NULL, *t = NULL, *u = NULL;
  for (size_t i = 0; i < base.nkv; ++i) {
    switch (base.kv[i].key[0]) {
    case 'C': c = &base.kv[i]; break;
    case 'T': t = &base.kv[i]; break;
    case 'U': u = &base.kv[i]; break;
    default: break;
    }
  }
  if (!c || !t || !u) {
    CHECK(0, "corrupt: the base store has C, T and U records");
    memstore_free(&base);
    return;
  }
  uint8_t bad[512];
  memcpy(bad, c->value, c->valuelen);
  bad[0] = 9;
  CHECK_INT(load_with((const char *)c->key, c->keylen, bad, c->valuelen,
                      &base),
            TERN_ERR_STORE, "corrupt: a cursor record of an unknown version");
  CHECK_INT(load_with((const char *)t->key, t->keylen, t->value,
                      t->valuelen - 1, &base),
            TERN_ERR_STORE, "corrupt: a truncated topic record");
  memcpy(bad, u->value, u->valuelen);
  bad[u->valuelen - 6] ^= 0xff; /* inside the tail's head */
  memset(bad + 27, 0xff, 2);
  CHECK_INT(load_with((const char *)u->key, u->keylen, bad, u->valuelen,
                      &base),
            TERN_ERR_STORE, "corrupt: a topic message whose tail is damaged");
  CHECK_INT(load_with("P\0\0\0\0\0\0\0\1", 9, (const uint8_t *)"\1", 1, &base),
            TERN_ERR_STORE, "corrupt: an empty payload record");
  memstore_free(&base);
}

/* Offsets far apart (forged, or a long run of volatile messages) do not
   make a log of their span: libFuzzer found a store whose load tried to
   allocate one for 16 million offsets. */
static void test_forged_offsets(void) {
  memstore base;
  memset(&base, 0, sizeof(base));
  tern_hub *hub = hub_on(&base, T0);
  tern_topic_options opt;
  tern_topic_options_default(&opt);
  opt.max_messages = 0x1000000; /* a large bound, as in the fuzzer's input */
  tern_hub_create_topic(hub, "far", &opt, T0, NULL);
  sub(hub, "k", "far", NULL, T0);
  tpub(hub, "far", "first", NULL, T0);
  stop(hub, &base);
  const memrec *u = NULL;
  for (size_t i = 0; i < base.nkv; ++i) {
    if (base.kv[i].key[0] == 'U') {
      u = &base.kv[i];
    }
  }
  if (!u) {
    CHECK(0, "forged: the base store has a U record");
    memstore_free(&base);
    return;
  }
  uint8_t key[17];
  memcpy(key, u->key, 17);
  key[11] = 1; /* offset 2^40 + 1 */
  tern_store_record r = {TERN_STORE_SET, key, 17, u->value, u->valuelen};
  memstore_append(&base, 0, &r, 1, 1);
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  s.max_pool_bytes = 0;
  tern_hub *h = NULL;
  tern_hub_new(&h, &s, &mem);
  CHECK_INT(tern_hub_set_store(h, &memstore_methods, &base, T0), 0,
            "forged: the store loads");
  tern_topic_info ti;
  tern_topic_get_info(tern_hub_find_topic(h, "far"), &ti, sizeof(ti));
  CHECK(ti.end_offset == ((uint64_t)1 << 40) + 2 && ti.messages <= 2048,
        "forged: the log keeps a bounded window (%llu messages, end %llu)",
        (unsigned long long)ti.messages, (unsigned long long)ti.end_offset);
  CHECK(a.peak < 4 * 1024 * 1024, "forged: loading took %zu bytes at most",
        a.peak);
  tern_hub_del(h);
  tu_alloc_finish(&a);
  memstore_free(&base);
}

/* ---- 8. allocation failures while loading ------------------------------ */

static void test_nomem(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tern_hub_create_topic(hub, "n.one", NULL, T0, NULL);
  sub(hub, "k", "n.*", "price > 1", T0);
  sub(hub, "j", "n.one", NULL, T0);
  tpub(hub, "n.one", "a", "5", T0);
  tern_key keys[2] = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"j", 1}};
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"shared";
  d.payloadlen = 6;
  tern_hub_publish_many(hub, keys, 2, &d, T0, NULL, NULL);
  stop(hub, &ms);
  int completed = 0, ok = 1;
  for (long n = 1; n < 1000 && !completed; ++n) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    a.fail_at = n;
    tern_mem mem = tu_alloc_mem(&a);
    tern_settings s = tu_settings();
    s.max_pool_bytes = 0;
    tern_hub *h = NULL;
    int rv = tern_hub_new(&h, &s, &mem);
    if (rv == 0) {
      rv = tern_hub_set_store(h, &memstore_methods, &ms, T0);
      if (rv == 0) {
        completed = a.failed == 0;
      } else if (tu_stats(h).topics || tu_stats(h).sessions) {
        ok = 0;
      }
      tern_hub_del(h);
    }
    if (rv != 0 && rv != TERN_ERR_NOMEM) {
      ok = 0;
      tap_diag("nomem %ld: %s", n, tern_strerror(rv));
    }
    if (a.outstanding) {
      ok = 0;
      tap_diag("nomem %ld: %ld blocks leaked", n, a.outstanding);
    }
    tu_alloc_finish(&a);
    memstore_sync(&ms); /* what a load wrote stays */
  }
  CHECK(ok, "nomem: each allocation failure while loading fails cleanly");
  CHECK(completed, "nomem: then a clean load");
  memstore_free(&ms);
}

int main(void) {
  test_resume();
  test_cursor_coalesce();
  test_retention_losses();
  test_expired_while_down();
  test_leave_losses();
  test_pattern();
  test_publish_many();
  test_deletes();
  test_crash_prefix();
  test_kill();
  test_corrupt();
  test_forged_offsets();
  test_nomem();
  test_file_store();
  return tap_done();
}
