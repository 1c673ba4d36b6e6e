/*
 * Policies (lib/deliver/policy.c): quiet hours hold NORMAL and LOW
 * messages until the session's local morning and let HIGH through; a
 * frequency cap holds the excess until its window slides, and collapses
 * held messages by key; channel fallback hands a message not acked in time
 * to the host (TERN_EV_FALLBACK), and counts an ACK that comes after it.
 * Held messages still expire at their TTL, and tern_hub_get_expiry always
 * names the next release.  Wall-clock and monotonic time are injected.
 */
#include "tap.h"
#include "testutil.h"

/* 2025-12-05 00:00:00 UTC, a midnight. */
#define MIDNIGHT_UTC UINT64_C(1764892800)
#define HOUR 3600u
#define UTC8 (8 * 3600)

static tern_settings quiet_settings(void) {
  tern_settings s = tu_settings();
  s.session_ttl = SEC(7 * 24 * 3600);
  s.liveness_timeout = SEC(10 * 24 * 3600);
  s.heartbeat_interval = SEC(5 * 24 * 3600);
  s.max_heartbeat = SEC(5 * 24 * 3600);
  s.dedup_window = 0;
  return s;
}

/* A hub whose wall clock reads |local_hour|:00 at UTC+8 at T0. */
static tern_hub *hub_at(unsigned local_hour) {
  tern_settings s = quiet_settings();
  tern_hub *hub = tu_hub(&s);
  uint64_t wall = (MIDNIGHT_UTC + (uint64_t)local_hour * HOUR - UTC8) *
                  TERN_SECONDS;
  CHECK_INT(tern_hub_set_wallclock(hub, T0, wall), 0, "wall clock set");
  return hub;
}

static tern_policy quiet_policy(void) {
  tern_policy p;
  tern_policy_default(&p);
  p.quiet_start = 22 * HOUR;
  p.quiet_end = 8 * HOUR;
  p.utc_offset = UTC8;
  return p;
}

static int set_policy(tern_hub *hub, const char *key, const tern_policy *p,
                      tern_tstamp now) {
  return tern_hub_set_policy(hub, (const uint8_t *)key, strlen(key), p, now);
}

static void test_quiet_hours(void) {
  tern_hub *hub = hub_at(21); /* 21:00 local at T0 */
  tern_policy p = quiet_policy();
  CHECK_INT(set_policy(hub, "u", &p, T0), 0, "quiet hours 22:00-08:00 set");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  tu_pub(hub, "u", TERN_PRIO_NORMAL, "a", "before", T0);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_new_msgs(&o), 1, "at 21:00 a NORMAL message goes at once");
  tern_tstamp t = T0 + SEC(90 * 60); /* 22:30 */
  tu_pub(hub, "u", TERN_PRIO_LOW, "l", "low", t);
  tu_pub(hub, "u", TERN_PRIO_NORMAL, "n", "normal", t);
  tu_pub(hub, "u", TERN_PRIO_HIGH, "h", "high", t);
  tu_drain(&o, c, t);
  CHECK(tu_new_msgs(&o) == 1 && tu_msg_id_is(tu_nth(&o, WIRE_MSG,
                                                    o.first_new, 0), "h"),
        "at 22:30 only HIGH passes");
  CHECK(!tern_conn_want_write(c), "the held messages do not make the "
                                  "connection writable");
  tern_tstamp morning = T0 + SEC(11 * HOUR); /* 08:00 */
  CHECK_EQ(tern_hub_get_expiry(hub), morning,
           "the hub's expiry is the end of the quiet hours");
  CHECK_INT(tu_stats(hub).policy_holds, 1, "one hold counted");
  tern_session_info i = tu_info(hub, "u");
  CHECK_INT(i.pending, 2, "both are still pending (held, not dropped)");
  tern_hub_handle_expiry(hub, morning - 1);
  tu_drain(&o, c, morning - 1);
  CHECK_INT(tu_new_msgs(&o), 0, "nothing a nanosecond before 08:00");
  tern_hub_handle_expiry(hub, morning);
  CHECK(tern_hub_next_ready(hub) == c, "at 08:00 the connection is ready");
  tu_drain(&o, c, morning);
  char buf[128];
  CHECK(tu_new_msgs(&o) == 2 &&
            strcmp(tu_payloads(&o, o.first_new, buf, sizeof(buf)),
                   "normal low") == 0,
        "released in priority order (%s)", buf);
  CHECK_INT(tu_stats(hub).policy_releases, 1, "one release counted");
  /* The next evening: 23:00 local, a NORMAL message with a one-hour TTL
     expires while held, counted and told as expired. */
  tern_tstamp night = T0 + SEC(26 * HOUR);
  tern_hub_handle_expiry(hub, night);
  tu_ack(c, tu_last(&o, WIRE_MSG)->u.msg.seq, night);
  tu_pub_full(hub, "u", TERN_PRIO_NORMAL, "e", NULL, SEC(HOUR), "short",
              night, NULL);
  tu_drain(&o, c, night);
  CHECK_INT(tu_new_msgs(&o), 0, "23:00: held");
  tern_tstamp exp = tern_hub_get_expiry(hub);
  CHECK_EQ(exp, night + SEC(HOUR), "the expiry is the TTL, before 08:00");
  tern_hub_handle_expiry(hub, exp);
  tu_drain(&o, c, exp);
  CHECK_INT(tu_stats(hub).expired, 1, "the held message expired, counted");
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, o.first_new), 1,
            "and told to the receiver in DROPPED");
  CHECK_INT(tu_new_msgs(&o), 0, "it never goes out");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

/* The start of the quiet hours is a deadline too: a host that serves its
   deadlines never sees tern_conn_want_write say yes for a held message. */
static void test_quiet_start_deadline(void) {
  tern_hub *hub = hub_at(21);
  tern_policy p = quiet_policy();
  set_policy(hub, "w", &p, T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "w", T0, &o);
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(HOUR),
           "the hub wakes at 22:00, when the quiet hours begin");
  tern_hub_handle_expiry(hub, T0 + SEC(HOUR));
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(11 * HOUR),
           "then at 08:00, when they end");
  tu_pub(hub, "w", TERN_PRIO_NORMAL, "n", "n", T0 + SEC(HOUR + 60));
  CHECK(!tern_conn_want_write(c) && tern_hub_next_ready(hub) == NULL,
        "a message published at 22:01 does not make the connection ready");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

static void test_quiet_window_same_day_and_removal(void) {
  tern_hub *hub = hub_at(12); /* noon at T0 */
  tern_policy p = quiet_policy();
  p.quiet_start = 12 * HOUR; /* 12:00-14:00, no midnight crossing */
  p.quiet_end = 14 * HOUR;
  set_policy(hub, "u", &p, T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  tu_pub(hub, "u", TERN_PRIO_NORMAL, "a", "a", T0 + SEC(1));
  tu_drain(&o, c, T0 + SEC(1));
  CHECK_INT(tu_new_msgs(&o), 0, "12:00:01 is inside 12:00-14:00");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(2 * HOUR),
           "release at 14:00");
  /* Removing the policy releases at once. */
  CHECK_INT(set_policy(hub, "u", NULL, T0 + SEC(2)), 0, "policy removed");
  tu_drain(&o, c, T0 + SEC(2));
  CHECK_INT(tu_new_msgs(&o), 1, "the held message goes when it is removed");
  CHECK(tern_hub_get_expiry(hub) > T0 + SEC(3 * HOUR),
        "no release deadline left");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

/* A zone whose offset is +1 h before |switch_at| (wall seconds) and +2 h
   from then on. */
static int64_t switch_at;
static int zone_calls;
static int32_t zone_offset(uint32_t zone, int64_t wall_seconds, void *ud) {
  (void)ud;
  ++zone_calls;
  if (zone != 7) {
    return 0;
  }
  return wall_seconds < switch_at ? 3600 : 7200;
}

static void test_zone_callback(void) {
  tern_settings s = quiet_settings();
  tern_hub *hub = tu_hub(&s);
  /* No wall clock: |now| is the wall clock itself. */
  tern_tstamp now = (MIDNIGHT_UTC + 3 * HOUR) * TERN_SECONDS; /* 04:00 +1 */
  switch_at = (int64_t)(MIDNIGHT_UTC + 4 * HOUR); /* at 05:00 +1 -> 06:00 */
  CHECK_INT(tern_hub_set_zone_callback(hub, zone_offset, NULL), 0,
            "zone callback set");
  tern_policy p;
  tern_policy_default(&p);
  p.quiet_start = 0;
  p.quiet_end = 7 * HOUR; /* 00:00-07:00 local */
  p.zone = 7;
  p.utc_offset = -3600; /* ignored: the zone decides */
  set_policy(hub, "z", &p, now);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "z", now, &o);
  tu_pub(hub, "z", TERN_PRIO_NORMAL, "m", "m", now);
  tu_drain(&o, c, now);
  CHECK(tu_new_msgs(&o) == 0 && zone_calls > 0,
        "04:00 in zone 7: held, the callback asked");
  /* Quiet hours end at 07:00 local, which after the switch to +2 is
     05:00 UTC, one hour earlier than +1 alone would say (06:00 UTC). */
  tern_tstamp exp = tern_hub_get_expiry(hub);
  CHECK(exp <= now + SEC(15 * 60), "with a zone the hold is checked again "
                                   "within 15 minutes");
  tern_tstamp end = (MIDNIGHT_UTC + 5 * HOUR) * TERN_SECONDS;
  int rounds = 0;
  while (tu_new_msgs(&o) == 0 && rounds++ < 100) {
    now = tern_hub_get_expiry(hub);
    tern_hub_handle_expiry(hub, now);
    tu_drain(&o, c, now);
  }
  CHECK(tu_new_msgs(&o) == 1 && now == end,
        "released at 07:00 local after the offset changed (%d checks)",
        rounds);
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

static void test_frequency_cap(void) {
  tern_settings s = quiet_settings();
  tern_hub *hub = tu_hub(&s);
  tern_policy p;
  tern_policy_default(&p);
  p.cap_count = 3;
  p.cap_window = SEC(60);
  CHECK_INT(set_policy(hub, "c", &p, T0), 0, "cap 3 per minute set");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "c", T0, &o);
  char id[16];
  for (int i = 0; i < 5; ++i) {
    snprintf(id, sizeof(id), "n%d", i);
    tu_pub(hub, "c", TERN_PRIO_NORMAL, id, id, T0 + SEC((uint64_t)i));
    tu_drain(&o, c, T0 + SEC((uint64_t)i));
  }
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 3, "three of five go");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(60),
           "the next release is when the first send leaves the window");
  tu_pub(hub, "c", TERN_PRIO_HIGH, "h", "h", T0 + SEC(10));
  tu_drain(&o, c, T0 + SEC(10));
  CHECK(tu_new_msgs(&o) == 1 &&
            tu_msg_id_is(tu_nth(&o, WIRE_MSG, o.first_new, 0), "h"),
        "HIGH passes the cap");
  /* Two held messages with one collapse key: the newer replaces the
     older, as for any pending message. */
  tu_pub_full(hub, "c", TERN_PRIO_LOW, "k1", "score", 0, "1:0", T0 + SEC(11),
              NULL);
  tu_pub_full(hub, "c", TERN_PRIO_LOW, "k2", "score", 0, "2:0", T0 + SEC(12),
              NULL);
  CHECK_INT(tu_stats(hub).collapsed, 1, "a held message collapsed");
  tern_hub_handle_expiry(hub, T0 + SEC(60));
  tu_drain(&o, c, T0 + SEC(60));
  CHECK(tu_new_msgs(&o) == 1 &&
            tu_msg_id_is(tu_nth(&o, WIRE_MSG, o.first_new, 0), "n3"),
        "the window slid by one send: one more goes");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(61), "then the next slide");
  tern_tstamp t = T0 + SEC(61);
  char buf[64];
  size_t from = o.nframes;
  for (int i = 0; i < 4 && tern_hub_get_expiry(hub) <= T0 + SEC(200); ++i) {
    t = tern_hub_get_expiry(hub);
    tern_hub_handle_expiry(hub, t);
    tu_drain(&o, c, t);
  }
  CHECK(strcmp(tu_payloads(&o, from, buf, sizeof(buf)), "n4 2:0") == 0,
        "the rest go as the window slides, the collapsed one as its newest "
        "(%s)", buf);
  CHECK_INT(tu_stats(hub).expired, 0, "nothing lost");
  /* Sent again after a lost connection: no second count. */
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

static void test_cap_resend_counts_once(void) {
  tern_settings s = quiet_settings();
  tern_hub *hub = tu_hub(&s);
  tern_policy p;
  tern_policy_default(&p);
  p.cap_count = 2;
  p.cap_window = SEC(60);
  set_policy(hub, "r", &p, T0);
  tu_pub(hub, "r", TERN_PRIO_NORMAL, "a", "a", T0);
  tu_pub(hub, "r", TERN_PRIO_NORMAL, "b", "b", T0);
  tu_pub(hub, "r", TERN_PRIO_NORMAL, "c", "c", T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "r", T0, &o);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 2, "two go, the cap is reached");
  tern_conn_del(c); /* both return unacked */
  tu_events_drain(hub);
  tu_out o2;
  tu_out_init(&o2);
  c = tu_connect(hub, "r", T0 + SEC(1), &o2);
  tu_drain(&o2, c, T0 + SEC(1));
  CHECK_INT(tu_count(&o2, WIRE_MSG, 0), 0,
            "sent again, they wait for the window like any NORMAL message");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(60), "until it slides");
  tern_hub_handle_expiry(hub, T0 + SEC(60));
  tu_drain(&o2, c, T0 + SEC(60));
  CHECK_INT(tu_count(&o2, WIRE_MSG, 0), 3,
            "then the two re-sends (not counted again) and the third go");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_free(&o2);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

static int pub_fallback(tern_hub *hub, const char *key, const char *id,
                        const char *payload, tern_duration after,
                        tern_tstamp now) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)id;
  d.idlen = strlen(id);
  d.payload = (const uint8_t *)payload;
  d.payloadlen = strlen(payload);
  d.cookie = 42;
  d.fallback = after;
  return tern_hub_publish(hub, (const uint8_t *)key, strlen(key), &d, now,
                          NULL);
}

static void test_fallback(void) {
  tern_settings s = quiet_settings();
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(pub_fallback(hub, "f", "m1", "order shipped", SEC(5), T0), 0,
            "published with a 5 s fallback");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(5),
           "the fallback deadline is the hub's expiry");
  tern_hub_handle_expiry(hub, T0 + SEC(5));
  tu_events ev;
  memset(&ev, 0, sizeof(ev));
  tu_events_take(&ev, hub);
  const tu_event *e = tu_events_find(&ev, TERN_EV_FALLBACK);
  CHECK(e && tu_event_id_is(e, "m1") && e->keylen == 1 && e->key[0] == 'f' &&
            e->auxlen == 13 && memcmp(e->aux, "order shipped", 13) == 0 &&
            e->seq == 0 && e->count == 0,
        "FALLBACK carries the id, the session key and the payload");
  CHECK_INT(tu_stats(hub).fallbacks, 1, "counted");
  tern_hub_handle_expiry(hub, T0 + SEC(10));
  tu_events_free(&ev);
  tu_events_take(&ev, hub);
  CHECK_INT(tu_events_count(&ev, TERN_EV_FALLBACK), 0, "only once");
  /* The receiver connects later and acks: both channels delivered it. */
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "f", T0 + SEC(20), &o);
  tu_drain(&o, c, T0 + SEC(20));
  CHECK(tu_msg_id_is(tu_last(&o, WIRE_MSG), "m1"),
        "the message still goes to the receiver");
  tu_ack(c, tu_last(&o, WIRE_MSG)->u.msg.seq, T0 + SEC(20));
  CHECK_INT(tu_stats(hub).fallback_acked, 1, "its late ack is counted");
  /* Acked in time: no event. */
  pub_fallback(hub, "f", "m2", "on time", SEC(5), T0 + SEC(30));
  tu_drain(&o, c, T0 + SEC(30));
  tu_ack(c, tu_last(&o, WIRE_MSG)->u.msg.seq, T0 + SEC(31));
  tern_hub_handle_expiry(hub, T0 + SEC(40));
  tu_events_free(&ev);
  tu_events_take(&ev, hub);
  CHECK_INT(tu_events_count(&ev, TERN_EV_FALLBACK), 0,
            "a message acked before its deadline has no fallback");
  CHECK_INT(tu_stats(hub).fallbacks, 1, "still one");
  /* Sent but not acked: the event says how often it was sent. */
  pub_fallback(hub, "f", "m3", "unacked", SEC(5), T0 + SEC(50));
  tu_drain(&o, c, T0 + SEC(50));
  tern_hub_handle_expiry(hub, T0 + SEC(55));
  tu_events_free(&ev);
  tu_events_take(&ev, hub);
  e = tu_events_find(&ev, TERN_EV_FALLBACK);
  CHECK(e && tu_event_id_is(e, "m3") && e->count == 1 &&
            e->seq == tu_last(&o, WIRE_MSG)->u.msg.seq,
        "a sent message's fallback names its seq and its one send");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_free(&ev);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

/* A fallback deadline with quiet hours: the message is held, the host
   gets it through the other channel at its deadline. */
static void test_fallback_while_held(void) {
  tern_hub *hub = hub_at(23);
  tern_policy p = quiet_policy();
  set_policy(hub, "q", &p, T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "q", T0, &o);
  pub_fallback(hub, "q", "x", "held", SEC(600), T0);
  tu_drain(&o, c, T0);
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 0, "held in the quiet hours");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(600),
           "the fallback comes before the morning");
  tern_hub_handle_expiry(hub, T0 + SEC(600));
  tu_events ev;
  memset(&ev, 0, sizeof(ev));
  tu_events_take(&ev, hub);
  CHECK_INT(tu_events_count(&ev, TERN_EV_FALLBACK), 1,
            "handed to the other channel");
  CHECK_EQ(tern_hub_get_expiry(hub), T0 + SEC(9 * HOUR),
           "then the morning release");
  tu_events_free(&ev);
  tern_conn_del(c);
  tu_out_free(&o);
  tu_events_drain(hub);
  tern_hub_del(hub);
}

/* FALLBACK is a duty event: without memory for it (here, a large payload
   the event arena must grow for), tern_hub_handle_expiry says NOMEM and
   the deadline stays due; nothing is lost. */
static void test_fallback_nomem(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = quiet_settings();
  s.max_pool_bytes = 0;
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, &mem), 0, "hub with a failing allocator");
  static char big[65536];
  memset(big, 'p', sizeof(big) - 1);
  CHECK_INT(pub_fallback(hub, "f", "big", big, SEC(1), T0), 0,
            "a 64 KiB message with a fallback deadline");
  a.fail_at = a.calls + 1;
  a.fail_rest = 1;
  CHECK_INT(tern_hub_handle_expiry(hub, T0 + SEC(1)), TERN_ERR_NOMEM,
            "no room for the event: NOMEM");
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(1), "the deadline stays due");
  a.fail_at = 0;
  a.fail_rest = 0;
  CHECK_INT(tern_hub_handle_expiry(hub, T0 + SEC(2)), 0, "then it goes");
  tern_event e;
  int found = 0;
  while (tern_hub_next_event(hub, &e) == 1) {
    found += e.type == TERN_EV_FALLBACK && e.auxlen == sizeof(big) - 1;
  }
  CHECK_INT(found, 1, "one FALLBACK with the whole payload");
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0, "no leak");
}

static void test_invalid(void) {
  tern_hub *hub = hub_at(0);
  tern_policy p = quiet_policy();
  const uint8_t *k = (const uint8_t *)"k";
  CHECK_INT(tern_hub_set_policy(NULL, k, 1, &p, T0), TERN_ERR_INVALID,
            "NULL hub");
  CHECK_INT(tern_hub_set_policy(hub, k, 0, &p, T0), TERN_ERR_INVALID,
            "empty key");
  uint8_t big[TERN_MAX_SESSION_KEY + 1];
  memset(big, 'x', sizeof(big));
  CHECK_INT(tern_hub_set_policy(hub, big, sizeof(big), &p, T0),
            TERN_ERR_TOO_LARGE, "long key");
  p.quiet_end = 86400;
  CHECK_INT(tern_hub_set_policy(hub, k, 1, &p, T0), TERN_ERR_INVALID,
            "a quiet hour past the day");
  p = quiet_policy();
  p.utc_offset = 19 * 3600;
  CHECK_INT(tern_hub_set_policy(hub, k, 1, &p, T0), TERN_ERR_INVALID,
            "offset out of range");
  p = quiet_policy();
  p.cap_count = 2;
  CHECK_INT(tern_hub_set_policy(hub, k, 1, &p, T0), TERN_ERR_INVALID,
            "a cap without a window");
  p.cap_window = SEC(1);
  p.cap_count = TERN_MAX_CAP + 1;
  CHECK_INT(tern_hub_set_policy(hub, k, 1, &p, T0), TERN_ERR_INVALID,
            "a cap over TERN_MAX_CAP");
  tern_policy_default_versioned(99, &p);
  CHECK_INT(p.version, 0, "an unknown layout gets version 0");
  CHECK_INT(tern_hub_set_policy(hub, k, 1, &p, T0), TERN_ERR_INVALID,
            "which set_policy refuses");
  CHECK(tern_hub_find_session(hub, k, 1) == NULL, "no session was made");
  CHECK_INT(tern_hub_set_policy(hub, k, 1, NULL, T0), 0,
            "removing a policy of no session is fine");
  CHECK(tern_hub_find_session(hub, k, 1) == NULL, "and makes none");
  CHECK_INT(tern_hub_set_zone_callback(NULL, NULL, NULL), TERN_ERR_INVALID,
            "zone callback: NULL hub");
  tern_hub_del(hub);
}

/* Every allocation of set_policy and of a fallback publish may fail:
   nothing changes, nothing leaks. */
static void test_nomem(void) {
  int ok = 1;
  long n;
  for (n = 1; n < 200; ++n) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    tern_mem mem = tu_alloc_mem(&a);
    tern_settings s = quiet_settings();
    tern_hub *hub = NULL;
    if (tern_hub_new(&hub, &s, &mem) != 0) {
      ok = 0;
      break;
    }
    a.fail_at = a.calls + n;
    tern_policy p = quiet_policy();
    p.cap_count = 4;
    p.cap_window = SEC(10);
    int r1 = set_policy(hub, "s", &p, T0);
    int r2 = pub_fallback(hub, "t", "id", "x", SEC(1), T0);
    int failed = a.failed != 0;
    if ((r1 != 0 && r1 != TERN_ERR_NOMEM) ||
        (r2 != 0 && r2 != TERN_ERR_NOMEM)) {
      ok = 0;
    }
    if (r1 == TERN_ERR_NOMEM &&
        tern_hub_find_session(hub, (const uint8_t *)"s", 1)) {
      ok = 0; /* nothing changed */
    }
    if (r2 == TERN_ERR_NOMEM && tu_stats(hub).messages != 0) {
      ok = 0;
    }
    tern_hub_handle_expiry(hub, T0 + SEC(2));
    tu_events_drain(hub);
    tern_hub_del(hub);
    if (a.outstanding != 0 || tu_alloc_finish(&a) != 0) {
      ok = 0;
    }
    if (!failed) {
      break;
    }
  }
  CHECK(ok, "allocation failures leave no change and no leak (%ld points)",
        n);
}

/* Reconnect storms: past accept_rate a HELLO gets WELCOME and GOAWAY LIMIT
   with one jittered hint; sessions with HIGH backlog are admitted first. */
static tern_conn *hello(tern_hub *hub, const char *key, tern_tstamp now,
                        tu_out *o) {
  tern_conn *c = NULL;
  if (tern_conn_new(&c, hub, now) != 0) {
    abort();
  }
  tu_hello(c, key, 0, 0, 0, NULL, now);
  tu_out_init(o);
  tu_drain(o, c, now);
  return c;
}

static int deferred(const tu_out *o, uint64_t max_ms) {
  const wire_frame *w = tu_nth(o, WIRE_WELCOME, 0, 0);
  const wire_frame *g = tu_nth(o, WIRE_GOAWAY, 0, 0);
  return w && g && o->nframes == 2 && o->frames[0].f.type == WIRE_WELCOME &&
         g->u.goaway.reason == TERN_GOAWAY_LIMIT &&
         w->u.welcome.retry_ms == g->u.goaway.retry_ms &&
         g->u.goaway.retry_ms >= 1 && g->u.goaway.retry_ms <= max_ms;
}

static void test_storm(void) {
  tern_settings s = quiet_settings();
  s.accept_rate = 10;
  s.accept_burst = 4; /* one token kept for HIGH backlog */
  s.accept_max_retry = SEC(8);
  tern_hub *hub = tu_hub(&s);
  char key[8];
  for (int i = 0; i < 6; ++i) {
    snprintf(key, sizeof(key), "s%d", i);
    tu_pub(hub, key, TERN_PRIO_NORMAL, NULL, "x", T0);
  }
  tu_pub(hub, "h1", TERN_PRIO_HIGH, NULL, "urgent", T0);
  tu_pub(hub, "h2", TERN_PRIO_HIGH, NULL, "urgent", T0);
  tern_conn *c[8];
  tu_out o[8];
  int admitted = 0;
  for (int i = 0; i < 4; ++i) {
    snprintf(key, sizeof(key), "s%d", i);
    c[i] = hello(hub, key, T0, &o[i]);
    admitted += tu_count(&o[i], WIRE_MSG, 0) == 1 && !tern_conn_is_closed(c[i]);
  }
  CHECK_INT(admitted, 3, "three of four admitted from a bucket of four "
                         "(a quarter kept for HIGH backlog)");
  CHECK(deferred(&o[3], 8000) && tern_conn_is_closed(c[3]),
        "the fourth gets WELCOME and GOAWAY LIMIT with one hint in "
        "[1 ms, 8 s]");
  tern_session_info i3 = tu_info(hub, "s3");
  CHECK(i3.nconns == 0 && i3.pending == 1,
        "the deferred connection did not join its session");
  c[4] = hello(hub, "h1", T0, &o[4]);
  CHECK(tu_count(&o[4], WIRE_MSG, 0) == 1 && !tern_conn_is_closed(c[4]),
        "a session with HIGH backlog takes the kept token");
  c[5] = hello(hub, "h2", T0, &o[5]);
  CHECK(deferred(&o[5], 2000),
        "the next one with HIGH backlog gets a hint from the first quarter");
  CHECK_INT(tu_stats(hub).accepts_deferred, 2, "two deferrals counted");
  CHECK_INT(tu_stats(hub).conns_opened, 4, "four connections opened");
  /* The bucket refills at accept_rate: 0.2 s brings two tokens. */
  c[6] = hello(hub, "s4", T0 + MS(200), &o[6]);
  c[7] = hello(hub, "s5", T0 + MS(200), &o[7]);
  CHECK(tu_count(&o[6], WIRE_MSG, 0) == 1 && deferred(&o[7], 8000),
        "0.2 s later one more is admitted (the second token is kept)");
  tu_events ev;
  memset(&ev, 0, sizeof(ev));
  tu_events_take(&ev, hub);
  CHECK_INT(tu_events_count(&ev, TERN_EV_CONN_CLOSED), 3,
            "each deferred connection has its end event");
  tu_events_free(&ev);
  for (int i = 0; i < 8; ++i) {
    tern_conn_del(c[i]);
    tu_out_free(&o[i]);
  }
  tu_events_drain(hub);
  tern_hub_del(hub);
}

/* A HELLO that waited for the host (hello_accept) is deferred the same
   way when the host accepts it past the rate. */
static void test_storm_hello_accept(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = quiet_settings();
  s.accept_rate = 1;
  s.hello_accept = 1;
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, &mem), 0, "hub: accept rate 1, "
                                             "hello_accept");
  tern_conn *c[2];
  tu_out o[2];
  for (int i = 0; i < 2; ++i) {
    CHECK_INT(tern_conn_new(&c[i], hub, T0), 0, "connection");
    tu_hello(c[i], i ? "b" : "a", 0, 0, 0, NULL, T0);
    CHECK_INT(tern_conn_accept(c[i], T0), 0, "accepted by the host");
    tu_out_init(&o[i]);
    tu_drain(&o[i], c[i], T0);
  }
  CHECK(!tern_conn_is_closed(c[0]) && deferred(&o[1], 30000),
        "the first opens, the second is deferred");
  for (int i = 0; i < 2; ++i) {
    tern_conn_del(c[i]);
    tu_out_free(&o[i]);
  }
  tu_events_drain(hub);
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "no leak, nothing written after it was freed");
}

int main(void) {
  test_quiet_hours();
  test_quiet_start_deadline();
  test_quiet_window_same_day_and_removal();
  test_zone_callback();
  test_frequency_cap();
  test_cap_resend_counts_once();
  test_fallback();
  test_fallback_while_held();
  test_fallback_nomem();
  test_invalid();
  test_nomem();
  test_storm();
  test_storm_hello_accept();
  return tap_done();
}
