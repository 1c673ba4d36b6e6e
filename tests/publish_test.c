/*
 * Tests of tern_hub_publish as a producer and a receiver see it: the order
 * on the wire, message ids, argument checking, collapse keys, publisher
 * dedup, the overflow rules and TTLs.  Every delivery is checked on the
 * bytes a fake client receives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

static char pbuf[4096];

/* ---- order -------------------------------------------------------------- */

static void test_priority_order(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_LOW, NULL, "L1", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, "N1", T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, NULL, "H1", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, NULL, "L2", T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, NULL, "H2", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, "N2", T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "H1 H2 N1 N2 L1 L2") ==
            0,
        "HIGH before NORMAL before LOW, publish order within each");
  tap_diag("got %s", pbuf);
  int prio_ok = 1;
  for (size_t k = 0; k < 6; ++k) {
    const wire_frame *f = tu_nth(&o, WIRE_MSG, 0, k);
    int want = k < 2   ? TERN_PRIO_HIGH
               : k < 4 ? TERN_PRIO_NORMAL
                       : TERN_PRIO_LOW;
    if (!f || f->u.msg.priority != want || f->u.msg.seq != k + 1) {
      prio_ok = 0;
    }
  }
  CHECK(prio_ok, "MSG frames carry their priority and seqs 1..6 in order");

  /* With the window full, a HIGH published later overtakes queued LOWs. */
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  s.inflight_window = 1;
  hub = tu_hub(&s);
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0, &o);
  tu_pub(hub, "k", TERN_PRIO_LOW, NULL, "L1", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, NULL, "L2", T0);
  tu_drain(&o, c, T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, NULL, "H1", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, "N1", T0);
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    tu_ack(c, seq, T0);
    tu_drain(&o, c, T0);
  }
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "L1 H1 N1 L2") == 0,
        "a HIGH published later goes before queued NORMAL and LOW");
  tap_diag("got %s", pbuf);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_fifo(void) {
  tern_settings s = tu_settings();
  s.inflight_window = 7; /* several write rounds */
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  char p[16];
  for (int i = 0; i < 100; ++i) {
    snprintf(p, sizeof(p), "m%03d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, p, T0);
    if (i % 13 == 0) {
      tu_drain(&o, c, T0); /* interleave publishing and sending */
    }
  }
  for (int round = 0; round < 40 && tu_count(&o, WIRE_MSG, 0) < 100; ++round) {
    tu_ack(c, tu_max_seq(&o), T0);
    tu_drain(&o, c, T0);
  }
  int fifo = tu_count(&o, WIRE_MSG, 0) == 100;
  uint64_t last_seq = 0;
  for (size_t k = 0; fifo && k < 100; ++k) {
    const wire_frame *f = tu_nth(&o, WIRE_MSG, 0, k);
    snprintf(p, sizeof(p), "m%03d", (int)k);
    if (!tu_msg_payload_is(f, p) || f->u.msg.seq <= last_seq) {
      fifo = 0;
      tap_diag("message %zu out of order", k);
    } else {
      last_seq = f->u.msg.seq;
    }
  }
  CHECK(fifo, "100 messages of one priority arrive in publish order with "
              "increasing seqs");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- ids ---------------------------------------------------------------- */

static int cmp_ids(const void *a, const void *b) {
  return memcmp(a, b, TERN_MAX_ID + 1);
}

static void test_ids(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  enum { N = 1000 };
  static uint8_t ids[N][TERN_MAX_ID + 1];
  int lens_ok = 1;
  for (int i = 0; i < N; ++i) {
    tern_publish_result r;
    memset(&r, 0, sizeof(r));
    char key[8];
    snprintf(key, sizeof(key), "k%d", i % 3);
    int rv = tu_pub_full(hub, key, i % 3, NULL, NULL, 0, "x", T0, &r);
    if (rv != 0 || r.idlen == 0 || r.idlen > TERN_MAX_ID ||
        r.outcome != TERN_PUBLISH_QUEUED) {
      lens_ok = 0;
    }
    memset(ids[i], 0, sizeof(ids[i]));
    ids[i][0] = (uint8_t)r.idlen;
    memcpy(ids[i] + 1, r.id, r.idlen < TERN_MAX_ID ? r.idlen : TERN_MAX_ID);
  }
  CHECK(lens_ok, "generated ids: 1..TERN_MAX_ID bytes, outcome QUEUED");
  qsort(ids, N, sizeof(ids[0]), cmp_ids);
  int unique = 1;
  for (int i = 1; i < N; ++i) {
    if (memcmp(ids[i - 1], ids[i], sizeof(ids[0])) == 0) {
      unique = 0;
    }
  }
  CHECK(unique, "1000 generated ids across sessions are unique");
  tern_hub_del(hub);

  /* A given id comes back in the result and on the wire; a generated id on
     the wire is the one in the result. */
  hub = tu_hub(&s);
  tern_publish_result r1, r2;
  memset(&r1, 0, sizeof(r1));
  char given[TERN_MAX_ID + 1];
  memset(given, 'g', TERN_MAX_ID);
  given[TERN_MAX_ID] = 0;
  CHECK_INT(
      tu_pub_full(hub, "k", TERN_PRIO_NORMAL, given, NULL, 0, "a", T0, &r1), 0,
      "publish with a 64-byte id");
  CHECK_MEM(r1.id, r1.idlen, given, strlen(given),
            "a given id is returned in the result");
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, NULL, NULL, 0, "b", T0, &r2);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  const wire_frame *f1 = tu_nth(&o, WIRE_MSG, 0, 0);
  const wire_frame *f2 = tu_nth(&o, WIRE_MSG, 0, 1);
  CHECK(f1 && tu_msg_id_is(f1, given), "the given id is on the wire");
  CHECK(f2 && f2->u.msg.idlen == r2.idlen &&
            memcmp(f2->u.msg.id, r2.id, r2.idlen) == 0,
        "the generated id on the wire is the one in the result");

  /* An id pointer with idlen 0 asks for a generated id. */
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)"ignored";
  d.idlen = 0;
  tern_publish_result r3;
  memset(&r3, 0, sizeof(r3));
  CHECK_INT(tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, &r3), 0,
            "publish with id set and idlen 0");
  CHECK(r3.idlen > 0 &&
            !(r3.idlen == r2.idlen && memcmp(r3.id, r2.id, r2.idlen) == 0),
        "idlen 0 generates a fresh id");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- argument checking -------------------------------------------------- */

static char longstr[2048];

static const char *str_of(size_t n) {
  memset(longstr, 'x', n);
  longstr[n] = 0;
  return longstr;
}

static void expect_refused(tern_hub *hub, const uint8_t *key, size_t keylen,
                           const tern_msg_desc *d, int want, const char *what) {
  tern_stats before = tu_stats(hub);
  tern_session_info ib = tu_info(hub, "k");
  tern_publish_result r;
  memset(&r, 0xab, sizeof(r));
  tern_publish_result sentinel = r;
  int rv = tern_hub_publish(hub, key, keylen, d, T0 + SEC(1), &r);
  char buf[200];
  snprintf(buf, sizeof(buf), "%s -> %s", what,
           want == TERN_ERR_INVALID ? "INVALID" : "TOO_LARGE");
  CHECK_INT(rv, want, buf);
  tern_stats after = tu_stats(hub);
  tern_session_info ia = tu_info(hub, "k");
  snprintf(buf, sizeof(buf), "%s changes nothing", what);
  CHECK(memcmp(&before, &after, sizeof(before)) == 0 &&
            tu_info_equal(&ib, &ia) && memcmp(&r, &sentinel, sizeof(r)) == 0 &&
            tern_hub_find_session(hub, (const uint8_t *)"new", 3) == NULL,
        "%s", buf);
  tern_event ev;
  CHECK_INT(tern_hub_next_event(hub, &ev), 0, "and queues no event");
}

static void test_invalid(void) {
  tern_settings s = tu_settings();
  s.max_payload = 1000;
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "first", "existing", T0);
  tu_events_drain(hub);
  const uint8_t *k = (const uint8_t *)"k";
  const uint8_t *nk = (const uint8_t *)"new";
  static uint8_t payload[2000];
  tern_msg_desc good, d;
  memset(&good, 0, sizeof(good));
  good.priority = TERN_PRIO_NORMAL;
  good.payload = payload;
  good.payloadlen = 10;
  tern_attr attrs[TERN_MAX_ATTRS + 1];
  for (int i = 0; i <= TERN_MAX_ATTRS; ++i) {
    attrs[i].key = "a";
    attrs[i].value = "v";
  }

  CHECK_INT(tern_hub_publish(NULL, k, 1, &good, T0, NULL), TERN_ERR_INVALID,
            "NULL hub -> INVALID");
  expect_refused(hub, NULL, 1, &good, TERN_ERR_INVALID, "NULL key");
  expect_refused(hub, nk, 0, &good, TERN_ERR_INVALID, "empty key");
  expect_refused(hub, k, 1, NULL, TERN_ERR_INVALID, "NULL desc");
  d = good;
  d.priority = -1;
  expect_refused(hub, k, 1, &d, TERN_ERR_INVALID, "priority -1");
  d.priority = 3;
  expect_refused(hub, nk, 3, &d, TERN_ERR_INVALID, "priority 3 (new key)");
  d = good;
  d.payload = NULL;
  expect_refused(hub, k, 1, &d, TERN_ERR_INVALID, "payload NULL with length");
  d = good;
  d.idlen = 3;
  expect_refused(hub, k, 1, &d, TERN_ERR_INVALID, "id NULL with length");
  d = good;
  d.collapse_keylen = 3;
  expect_refused(hub, k, 1, &d, TERN_ERR_INVALID,
                 "collapse key NULL with length");
  d = good;
  d.nattrs = 1;
  expect_refused(hub, k, 1, &d, TERN_ERR_INVALID, "attrs NULL with nattrs");
  tern_attr bad[1];
  d = good;
  d.attrs = bad;
  d.nattrs = 1;
  bad[0].key = NULL;
  bad[0].value = "v";
  expect_refused(hub, k, 1, &d, TERN_ERR_INVALID, "attr with NULL key");
  bad[0].key = "a";
  bad[0].value = NULL;
  expect_refused(hub, nk, 3, &d, TERN_ERR_INVALID,
                 "attr with NULL value (new key)");

  expect_refused(hub, (const uint8_t *)str_of(TERN_MAX_SESSION_KEY + 1),
                 TERN_MAX_SESSION_KEY + 1, &good, TERN_ERR_TOO_LARGE,
                 "session key of 129 bytes");
  d = good;
  d.id = (const uint8_t *)str_of(TERN_MAX_ID + 1);
  d.idlen = TERN_MAX_ID + 1;
  expect_refused(hub, k, 1, &d, TERN_ERR_TOO_LARGE, "id of 65 bytes");
  d = good;
  d.collapse_key = (const uint8_t *)str_of(TERN_MAX_COLLAPSE_KEY + 1);
  d.collapse_keylen = TERN_MAX_COLLAPSE_KEY + 1;
  expect_refused(hub, k, 1, &d, TERN_ERR_TOO_LARGE, "collapse key of 65 bytes");
  d = good;
  d.payloadlen = s.max_payload + 1;
  expect_refused(hub, k, 1, &d, TERN_ERR_TOO_LARGE, "payload over max_payload");
  expect_refused(hub, nk, 3, &d, TERN_ERR_TOO_LARGE,
                 "payload over max_payload (new key)");
  d = good;
  d.content_type = str_of(TERN_MAX_CONTENT_TYPE + 1);
  expect_refused(hub, k, 1, &d, TERN_ERR_TOO_LARGE,
                 "content type of 129 bytes");
  d = good;
  d.attrs = attrs;
  d.nattrs = TERN_MAX_ATTRS + 1;
  expect_refused(hub, k, 1, &d, TERN_ERR_TOO_LARGE, "9 attrs");
  tern_attr big[1];
  d.attrs = big;
  d.nattrs = 1;
  big[0].key = str_of(TERN_MAX_ATTR_KEY + 1);
  big[0].value = "v";
  expect_refused(hub, k, 1, &d, TERN_ERR_TOO_LARGE, "attr key of 65 bytes");
  static char bigval[TERN_MAX_ATTR_VALUE + 2];
  memset(bigval, 'v', TERN_MAX_ATTR_VALUE + 1);
  big[0].key = "a";
  big[0].value = bigval;
  expect_refused(hub, k, 1, &d, TERN_ERR_TOO_LARGE, "attr value of 257 bytes");

  /* The limits themselves are accepted and arrive intact. */
  tern_msg_desc m;
  memset(&m, 0, sizeof(m));
  static char id[TERN_MAX_ID + 1], ck[TERN_MAX_COLLAPSE_KEY + 1],
      ct[TERN_MAX_CONTENT_TYPE + 1], skey[TERN_MAX_SESSION_KEY + 1];
  static char akey[TERN_MAX_ATTRS][TERN_MAX_ATTR_KEY + 1];
  static char aval[TERN_MAX_ATTRS][TERN_MAX_ATTR_VALUE + 1];
  memset(id, 'i', TERN_MAX_ID);
  memset(ck, 'c', TERN_MAX_COLLAPSE_KEY);
  memset(ct, 't', TERN_MAX_CONTENT_TYPE);
  memset(skey, 's', TERN_MAX_SESSION_KEY);
  tern_attr full[TERN_MAX_ATTRS];
  for (int i = 0; i < TERN_MAX_ATTRS; ++i) {
    memset(akey[i], 'a' + i, TERN_MAX_ATTR_KEY);
    memset(aval[i], 'A' + i, TERN_MAX_ATTR_VALUE);
    full[i].key = akey[i];
    full[i].value = aval[i];
  }
  for (size_t i = 0; i < s.max_payload; ++i) {
    payload[i] = (uint8_t)(i * 7);
  }
  m.id = (const uint8_t *)id;
  m.idlen = TERN_MAX_ID;
  m.collapse_key = (const uint8_t *)ck;
  m.collapse_keylen = TERN_MAX_COLLAPSE_KEY;
  m.content_type = ct;
  m.attrs = full;
  m.nattrs = TERN_MAX_ATTRS;
  m.payload = payload;
  m.payloadlen = s.max_payload;
  m.priority = TERN_PRIO_HIGH;
  CHECK_INT(tern_hub_publish(hub, (const uint8_t *)skey, TERN_MAX_SESSION_KEY,
                             &m, T0, NULL),
            0, "every field at its limit is accepted");
  /* Everything was copied: scribble over the caller's memory. */
  static uint8_t saved[2000];
  memcpy(saved, payload, s.max_payload);
  memset(payload, 0, sizeof(payload));
  char saved_aval0 = aval[0][0];
  memset(aval[0], 'z', TERN_MAX_ATTR_VALUE);
  memset(ct, 'z', TERN_MAX_CONTENT_TYPE);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, skey, T0, &o);
  const wire_frame *f = tu_nth(&o, WIRE_MSG, 0, 0);
  CHECK(f != NULL, "the message at the limits is delivered");
  if (f) {
    const wire_msg *w = &f->u.msg;
    CHECK_MEM(w->payload, w->payloadlen, saved, s.max_payload,
              "payload delivered intact (copied at publish)");
    CHECK(w->idlen == TERN_MAX_ID &&
              w->collapse_keylen == TERN_MAX_COLLAPSE_KEY &&
              w->content_typelen == TERN_MAX_CONTENT_TYPE &&
              w->content_type[0] == 't',
          "id, collapse key and content type delivered intact");
    int attrs_ok = w->nattrs == TERN_MAX_ATTRS;
    for (size_t i = 0; attrs_ok && i < TERN_MAX_ATTRS; ++i) {
      if (w->attrs[i].keylen != TERN_MAX_ATTR_KEY ||
          w->attrs[i].valuelen != TERN_MAX_ATTR_VALUE ||
          w->attrs[i].key[0] != 'a' + (int)i ||
          w->attrs[i].value[0] != (i == 0 ? saved_aval0 : 'A' + (int)i)) {
        attrs_ok = 0;
      }
    }
    CHECK(attrs_ok, "8 attrs delivered intact, in order");
    CHECK_INT(w->priority, TERN_PRIO_HIGH, "priority delivered");
  }
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- collapse ------------------------------------------------------------ */

static void test_collapse_pending(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  tern_publish_result r;
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "s1", "score", 0, "1-0", T0, &r);
  CHECK_INT(r.outcome, TERN_PUBLISH_QUEUED, "first with a key: QUEUED");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "other", "other", T0);
  tu_pub_full(hub, "other-session", TERN_PRIO_NORMAL, "o1", "score", 0, "9-9",
              T0, NULL);
  tu_events_drain(hub);
  memset(&r, 0, sizeof(r));
  CHECK_INT(
      tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "s2", "score", 0, "2-0", T0, &r),
      0, "second with the same key");
  CHECK_INT(r.outcome, TERN_PUBLISH_QUEUED | TERN_PUBLISH_REPLACED,
            "outcome QUEUED|REPLACED");
  tern_session_info i = tu_info(hub, "k");
  CHECK_INT(i.pending, 2, "the replaced message is gone from the queue");
  CHECK_INT(i.pending_bytes, 3 + 5, "its bytes are released");
  CHECK_INT(tu_stats(hub).collapsed, 1, "stats.collapsed");
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_COLLAPSED);
  CHECK(ev && tu_event_id_is(ev, "s1"), "COLLAPSED names the older id");
  CHECK(ev && ev->auxlen == 2 && memcmp(ev->aux, "s2", 2) == 0,
        "COLLAPSED carries the newer id in aux");
  CHECK(ev && ev->keylen == 1 && ev->key[0] == 'k',
        "COLLAPSED carries the session key");
  tu_events_free(&e);

  /* A third one replaces the second, with another priority. */
  memset(&r, 0, sizeof(r));
  tu_pub_full(hub, "k", TERN_PRIO_HIGH, "s3", "score", 0, "3-0", T0, &r);
  CHECK(r.outcome & TERN_PUBLISH_REPLACED, "third replaces the second");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "3-0 other") == 0,
        "only the newest with a key is delivered, at its own priority");
  tap_diag("got %s", pbuf);
  CHECK_INT(tu_count(&o, WIRE_DROPPED, 0), 0, "collapse is not a drop");
  tern_session_info io = tu_info(hub, "other-session");
  CHECK_INT(io.pending, 1, "collapse keys are per session");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_collapse_inflight(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "s1", "score", 0, "1-0", T0, NULL);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 1, "s1 sent");
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "s2", "score", 0, "2-0", T0, &r);
  CHECK_INT(r.outcome, TERN_PUBLISH_QUEUED,
            "an in-flight message is not replaced (no REPLACED)");
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.inflight == 1 && i.pending == 1,
        "the in-flight one stays in flight, the new one pending");
  tu_drain(&o, c, T0);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "1-0 2-0") == 0,
        "the newer one is sent after the one in flight");
  tu_ack(c, 2, T0);
  i = tu_info(hub, "k");
  CHECK(i.inflight == 0 && i.pending == 0 && tu_stats(hub).acked == 2,
        "both are acked normally");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_drain(hub);

  /* In flight, a newer one published, the connection lost before the ack:
     the older one is not sent again, only the newer. */
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0, &o);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "s3", "score", 0, "3-0", T0, NULL);
  tu_pub(hub, "k", TERN_PRIO_LOW, "plain", "plain", T0);
  tu_drain(&o, c, T0);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "s4", "score", 0, "4-0", T0, NULL);
  tu_events_drain(hub);
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0 + SEC(1), &o);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "4-0 plain") == 0,
        "after the connection is lost, the superseded in-flight message is "
        "not sent again");
  tap_diag("got %s", pbuf);
  CHECK_INT(tu_count(&o, WIRE_DROPPED, 0), 0, "and it is not a drop");
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_COLLAPSED);
  CHECK(ev && tu_event_id_is(ev, "s3"),
        "COLLAPSED event for the superseded in-flight message");
  CHECK(ev && ev->auxlen == 2 && memcmp(ev->aux, "s4", 2) == 0,
        "its COLLAPSED event names the newer id in aux");
  tu_events_free(&e);
  tern_stats st = tu_stats(hub);
  CHECK_INT(st.messages, 2, "the superseded message is freed");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- dedup -------------------------------------------------------------- */

static void test_dedup(void) {
  tern_settings s = tu_settings();
  s.dedup_window = SEC(60);
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "one", T0), 0,
            "first publish of id x");
  tern_session_info before = tu_info(hub, "k");
  tern_stats sb = tu_stats(hub);
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_HIGH, "x", NULL, 0, "two",
                        T0 + SEC(1), &r),
            TERN_ERR_DUPLICATE, "same id within the window -> DUPLICATE");
  CHECK_MEM(r.id, r.idlen, "x", 1, "DUPLICATE fills the result id");
  tern_session_info after = tu_info(hub, "k");
  tern_stats sa = tu_stats(hub);
  CHECK(tu_info_equal(&before, &after) && tu_gauges_equal(&sb, &sa) &&
            sa.published == sb.published,
        "DUPLICATE queues nothing");
  CHECK_INT(sa.duplicates, 1, "stats.duplicates");
  CHECK_INT(tu_pub(hub, "other", TERN_PRIO_NORMAL, "x", "three", T0), 0,
            "the same id in another session is not a duplicate");

  /* Dedup outlives the message: delivered and acked, still a duplicate. */
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_ack(c, 1, T0);
  CHECK_INT(tu_info(hub, "k").inflight, 0, "x acked");
  tern_conn_del(c);
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(60),
        "the dedup window is a deadline");
  tern_hub_handle_expiry(hub, T0 + SEC(60) - 1);
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "four", T0 + SEC(60) - 1),
            TERN_ERR_DUPLICATE, "still a duplicate just inside the window");
  tern_hub_handle_expiry(hub, T0 + SEC(60));
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "five", T0 + SEC(60)), 0,
            "accepted again once the window passed (handle_expiry ran)");
  c = tu_connect(hub, "k", T0 + SEC(60), &o);
  const wire_frame *f = tu_last(&o, WIRE_MSG);
  CHECK(f && tu_msg_payload_is(f, "five"), "and delivered");
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "six", T0 + SEC(61)),
            TERN_ERR_DUPLICATE, "the new publish opened a new window");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);

  /* The window is a span of time: a late handle_expiry does not extend it. */
  hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "y", "one", T0);
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "y", "two", T0 + SEC(61)), 0,
            "accepted after the window even before handle_expiry ran");
  CHECK_INT(tu_info(hub, "k").pending, 2, "both queued");
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "y", "three", T0 + SEC(62)),
            TERN_ERR_DUPLICATE, "and the second publish starts a new window");
  tern_hub_handle_expiry(hub, T0 + SEC(62));
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "y", "four", T0 + SEC(63)),
            TERN_ERR_DUPLICATE, "expiring the old entry keeps the new one");
  tern_hub_del(hub);

  /* dedup_window 0 turns dedup off. */
  s.dedup_window = 0;
  hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "one", T0);
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "two", T0), 0,
            "dedup_window 0: the same id is accepted twice");
  CHECK_INT(tu_info(hub, "k").pending, 2, "both queued");
  tern_hub_del(hub);
}

/* ---- overflow ----------------------------------------------------------- */

static void test_evict_count(void) {
  tern_settings s = tu_settings();
  s.max_pending = 3;
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_LOW, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, "c", "c", T0);
  tu_events_drain(hub);
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "d", NULL, 0, "d", T0, &r),
            0, "EVICT: publish into a full queue succeeds");
  CHECK_INT(r.outcome, TERN_PUBLISH_QUEUED | TERN_PUBLISH_EVICTED,
            "outcome QUEUED|EVICTED");
  CHECK_INT(r.nevicted, 1, "nevicted 1");
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_EVICTED);
  CHECK(ev && tu_event_id_is(ev, "a") && ev->reason == TERN_DROP_OVERFLOW,
        "the oldest of the lowest priority (a) was evicted");
  tu_events_free(&e);
  memset(&r, 0, sizeof(r));
  tu_pub_full(hub, "k", TERN_PRIO_HIGH, "h", NULL, 0, "h", T0, &r);
  CHECK(r.nevicted == 1 && (r.outcome & TERN_PUBLISH_EVICTED),
        "HIGH evicts the remaining LOW");
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.pending == 3 && i.dropped == 2, "3 held, 2 dropped");
  CHECK_INT(tu_stats(hub).evicted, 2, "stats.evicted");

  /* Only higher priorities queued: EVICT refuses. */
  tern_stats sb = tu_stats(hub);
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_LOW, "l", NULL, 0, "l", T0, &r),
            TERN_ERR_FULL, "EVICT with only higher priorities queued -> FULL");
  CHECK_INT(r.outcome, TERN_PUBLISH_REFUSED, "outcome REFUSED");
  CHECK_MEM(r.id, r.idlen, "l", 1, "FULL fills the result id");
  tern_stats sa = tu_stats(hub);
  CHECK(tu_gauges_equal(&sb, &sa) && sa.refused == sb.refused + 1 &&
            sa.published == sb.published,
        "nothing queued, stats.refused counted");
  CHECK_INT(tu_info(hub, "k").dropped, 3, "the refused one counts as dropped");
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_LOW, "l", "l", T0), TERN_ERR_FULL,
            "a refused id is not remembered by dedup (FULL again, not "
            "DUPLICATE)");

  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "h b d") == 0,
        "the survivors are delivered");
  tap_diag("got %s", pbuf);
  CHECK_INT(tu_dropped(&o, TERN_DROP_OVERFLOW, 0), 4,
            "DROPPED(4, OVERFLOW): 2 evicted + 2 refused");
  const wire_frame *first = tu_nth(&o, WIRE_MSG, 0, 0);
  size_t di = 0, mi = 0;
  for (size_t k = 0; k < o.nframes; ++k) {
    if (&o.frames[k].f == first) {
      mi = k;
    }
    if (o.frames[k].f.type == WIRE_DROPPED) {
      di = k;
    }
  }
  CHECK(di < mi, "DROPPED comes before the first MSG");

  /* In-flight messages are never evicted. */
  tu_pub(hub, "k", TERN_PRIO_LOW, "z", "z", T0);
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_HIGH, "hh", NULL, 0, "hh", T0, &r),
            TERN_ERR_FULL, "nothing pending to evict -> FULL");
  CHECK_INT(tu_info(hub, "k").inflight, 3, "in-flight messages stay");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_evict_bytes(void) {
  tern_settings s = tu_settings();
  s.max_pending_bytes = 100;
  tern_hub *hub = tu_hub(&s);
  char p40a[41], p40b[41], p10[11], p50[51], p60[61], p70[71];
  memset(p40a, 'a', 40);
  p40a[40] = 0;
  memset(p40b, 'b', 40);
  p40b[40] = 0;
  memset(p10, 'c', 10);
  p10[10] = 0;
  memset(p50, 'd', 50);
  p50[50] = 0;
  memset(p60, 'e', 60);
  p60[60] = 0;
  memset(p70, 'f', 70);
  p70[70] = 0;
  tu_pub(hub, "k", TERN_PRIO_LOW, "a", p40a, T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, "b", p40b, T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "c", p10, T0);
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "d", NULL, 0, p50, T0, &r),
            0, "bytes: publish 50 into 90/100");
  CHECK_INT(r.nevicted, 1, "evicts exactly one (a) to fit");
  CHECK_INT(tu_info(hub, "k").pending_bytes, 100, "exactly at the byte limit");
  tern_session_info ib = tu_info(hub, "k");
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_LOW, "e", NULL, 0, p60, T0, &r),
            TERN_ERR_FULL, "LOW 60 cannot fit by evicting LOWs only -> FULL");
  tern_session_info ia = tu_info(hub, "k");
  CHECK(ia.pending == ib.pending && ia.pending_bytes == ib.pending_bytes,
        "a refused publish evicts nothing");
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "f", NULL, 0, p70, T0, &r),
            0, "NORMAL 70 fits by evicting b, c and d");
  CHECK_INT(r.nevicted, 3, "nevicted 3");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  CHECK(tu_count(&o, WIRE_MSG, 0) == 1 &&
            tu_msg_id_is(tu_nth(&o, WIRE_MSG, 0, 0), "f"),
        "only f is left");
  CHECK_INT(tu_dropped(&o, TERN_DROP_OVERFLOW, 0), 5,
            "DROPPED(5, OVERFLOW): 4 evicted + 1 refused");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_refuse_reject(void) {
  tern_settings s = tu_settings();
  s.max_pending = 2;
  s.overflow[TERN_PRIO_LOW] = TERN_OVERFLOW_EVICT;
  s.overflow[TERN_PRIO_NORMAL] = TERN_OVERFLOW_REFUSE;
  s.overflow[TERN_PRIO_HIGH] = TERN_OVERFLOW_REJECT;
  s.retry_after = MS(2500);
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_LOW, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, "b", "b", T0);
  tern_stats sb = tu_stats(hub);
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "n", NULL, 0, "n", T0, &r),
            TERN_ERR_FULL, "REFUSE -> FULL");
  CHECK_INT(r.outcome, TERN_PUBLISH_REFUSED, "REFUSE outcome REFUSED");
  CHECK_INT(r.nevicted, 0, "REFUSE evicts nothing");
  CHECK_MEM(r.id, r.idlen, "n", 1, "REFUSE fills the result id");
  tern_stats sa = tu_stats(hub);
  CHECK(tu_gauges_equal(&sb, &sa) && sa.refused == 1 && sa.published == 2,
        "REFUSE: nothing queued, stats.refused 1");
  CHECK_INT(tu_info(hub, "k").dropped, 1, "REFUSE counts as dropped");

  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_HIGH, "h", NULL, 0, "h", T0, &r),
            TERN_ERR_FULL, "REJECT -> FULL");
  CHECK_INT(r.outcome, TERN_PUBLISH_REJECTED, "REJECT outcome REJECTED");
  CHECK(r.retry_after == MS(2500), "REJECT carries retry_after");
  CHECK_MEM(r.id, r.idlen, "h", 1, "REJECT fills the result id");
  sa = tu_stats(hub);
  CHECK(tu_gauges_equal(&sb, &sa) && sa.rejected == 1,
        "REJECT: nothing queued, stats.rejected 1");
  CHECK_INT(tu_info(hub, "k").dropped, 1, "REJECT is not counted as dropped");

  /* The rule goes by the new message's priority: LOW still evicts. */
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_LOW, "c", NULL, 0, "c", T0, &r), 0,
            "LOW with EVICT evicts");
  CHECK_INT(r.nevicted, 1, "nevicted 1");

  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "b c") == 0,
        "delivered: b c");
  CHECK_INT(tu_dropped(&o, TERN_DROP_OVERFLOW, 0), 2,
            "DROPPED(2, OVERFLOW): the refused and the evicted, not the "
            "rejected");
  CHECK_INT(tu_count(&o, WIRE_DROPPED, 0), 1, "one DROPPED frame per reason");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);

  /* REJECT alone: the receiver is not told. */
  s.overflow[TERN_PRIO_NORMAL] = TERN_OVERFLOW_REJECT;
  hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0);
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "c", "c", T0), TERN_ERR_FULL,
            "REJECT on a full queue");
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0, &o);
  CHECK(tu_count(&o, WIRE_DROPPED, 0) == 0 && tu_count(&o, WIRE_MSG, 0) == 2,
        "REJECT sends no DROPPED");
  /* Room again once acked. */
  tu_ack(c, 2, T0);
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "c", "c", T0), 0,
            "acks make room");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_collapse_and_room(void) {
  /* A collapse frees the room of the message it replaces. */
  tern_settings s = tu_settings();
  s.max_pending = 2;
  s.overflow[TERN_PRIO_NORMAL] = TERN_OVERFLOW_REFUSE;
  tern_hub *hub = tu_hub(&s);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "a", "key", 0, "a", T0, NULL);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0);
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  CHECK_INT(tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "c", "key", 0, "c", T0, &r),
            0, "a collapsing publish into a full queue fits");
  CHECK_INT(r.outcome, TERN_PUBLISH_QUEUED | TERN_PUBLISH_REPLACED,
            "QUEUED|REPLACED");
  CHECK_INT(tu_info(hub, "k").pending, 2, "still 2 held");
  tern_hub_del(hub);
}

/* ---- TTL ---------------------------------------------------------------- */

static void test_ttl(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "e1", NULL, SEC(5), "expires", T0,
              NULL);
  tu_pub_full(hub, "k", TERN_PRIO_HIGH, "e2", NULL, SEC(5), "expires2", T0,
              NULL);
  tu_pub_full(hub, "k", TERN_PRIO_LOW, "e3", NULL, SEC(6), "expires3", T0,
              NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "keep", NULL, SEC(60), "keep", T0,
              NULL);
  tu_pub(hub, "k", TERN_PRIO_LOW, "forever", "forever", T0);
  tu_events_drain(hub);
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(5),
        "get_expiry is the earliest TTL");
  tern_hub_handle_expiry(hub, T0 + SEC(5) - 1);
  CHECK_INT(tu_stats(hub).messages, 5, "nothing expires early");
  tern_hub_handle_expiry(hub, T0 + SEC(5));
  tern_stats st = tu_stats(hub);
  CHECK_INT(st.messages, 3, "two messages released at their expiry");
  CHECK_INT(st.message_bytes, 8 + 4 + 7, "their bytes are released");
  CHECK_INT(st.expired, 2, "stats.expired");
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK_INT(tu_events_count(&e, TERN_EV_EXPIRED), 2, "two EXPIRED events");
  tu_events_free(&e);
  tern_hub_handle_expiry(hub, T0 + SEC(7));
  CHECK_INT(tu_stats(hub).messages, 2, "the third expires at its own TTL");
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.pending == 2 && i.dropped == 3, "2 pending, 3 dropped");

  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0 + SEC(8), &o);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "keep forever") == 0,
        "expired messages are never sent");
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, 0), 3, "DROPPED(3, EXPIRED)");
  const wire_frame *f = tu_nth(&o, WIRE_MSG, 0, 0);
  CHECK(f && f->u.msg.ttl_ms == 52000, "ttl_ms on the wire is what is left");
  f = tu_nth(&o, WIRE_MSG, 0, 1);
  CHECK(f && f->u.msg.ttl_ms == 0, "ttl_ms 0: never expires");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);

  /* Without handle_expiry: a write at a later now still never sends an
     expired message, and reports it. */
  s.trace = 0;
  hub = tu_hub(&s);
  tu_pub_full(hub, "k", TERN_PRIO_HIGH, "x1", NULL, SEC(5), "x1", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "x2", NULL, MS(5001), "x2", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_LOW, "x3", NULL, SEC(5), "x3", T0, NULL);
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0 + SEC(5), &o);
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "x2") == 0,
        "write at a later now skips expired messages");
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, 0), 2,
            "DROPPED(2, EXPIRED) without handle_expiry");
  f = tu_nth(&o, WIRE_MSG, 0, 0);
  CHECK(f && f->u.msg.ttl_ms == 1, "1 ms left is sent as ttl_ms 1");
  st = tu_stats(hub);
  CHECK(st.messages == 1 && st.expired == 2,
        "skipped expired messages are released");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);

  /* default_ttl applies to ttl 0. */
  s.default_ttl = SEC(10);
  hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "d", "d", T0);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "own", NULL, SEC(20), "own", T0,
              NULL);
  tern_hub_handle_expiry(hub, T0 + SEC(10));
  i = tu_info(hub, "k");
  CHECK(i.pending == 1 && i.dropped == 1,
        "default_ttl expires messages published with ttl 0");
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0 + SEC(10), &o);
  CHECK(tu_count(&o, WIRE_MSG, 0) == 1 &&
            tu_msg_id_is(tu_nth(&o, WIRE_MSG, 0, 0), "own"),
        "a message's own ttl beats default_ttl");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_max_sessions(void) {
  tern_settings s = tu_settings();
  s.max_sessions = 2;
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(tu_pub(hub, "a", TERN_PRIO_NORMAL, NULL, "x", T0), 0, "session a");
  CHECK_INT(tu_pub(hub, "b", TERN_PRIO_NORMAL, NULL, "x", T0), 0, "session b");
  tern_stats sb = tu_stats(hub);
  CHECK_INT(tu_pub(hub, "c", TERN_PRIO_NORMAL, NULL, "x", T0), TERN_ERR_LIMIT,
            "a third session -> LIMIT");
  tern_stats sa = tu_stats(hub);
  CHECK(tu_gauges_equal(&sb, &sa) && sa.sessions_created == 2 &&
            tern_hub_find_session(hub, (const uint8_t *)"c", 1) == NULL,
        "LIMIT creates nothing");
  CHECK_INT(tu_pub(hub, "a", TERN_PRIO_NORMAL, NULL, "x", T0), 0,
            "existing sessions still accept");
  tern_hub_del(hub);
}

static void test_trace_flag(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)"traced";
  d.idlen = 6;
  d.flags = TERN_MSG_TRACE;
  tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "quiet", "q", T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_ack(c, 2, T0);
  tu_events e = {0};
  tu_events_take(&e, hub);
  int only_traced = 1;
  for (size_t k = 0; k < e.n; ++k) {
    if (e.ev[k].type <= TERN_EV_EVICTED &&
        !tu_event_id_is(&e.ev[k], "traced")) {
      only_traced = 0;
    }
  }
  CHECK(only_traced, "trace off: lifecycle events only for TERN_MSG_TRACE");
  const tu_event *acc = tu_events_find(&e, TERN_EV_ACCEPTED);
  const tu_event *sent = tu_events_find(&e, TERN_EV_SENT);
  const tu_event *ack = tu_events_find(&e, TERN_EV_ACKED);
  CHECK(acc && sent && ack, "ACCEPTED, SENT, ACKED for the traced message");
  CHECK(sent && sent->seq == 1 && sent->conn == c,
        "SENT carries the seq and the connection");
  CHECK(ack && ack->seq == 1, "ACKED carries the seq");
  tu_events_free(&e);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

int main(void) {
  test_priority_order();
  test_fifo();
  test_ids();
  test_invalid();
  test_collapse_pending();
  test_collapse_inflight();
  test_dedup();
  test_evict_count();
  test_evict_bytes();
  test_refuse_reject();
  test_collapse_and_room();
  test_ttl();
  test_max_sessions();
  test_trace_flag();
  return tap_done();
}
