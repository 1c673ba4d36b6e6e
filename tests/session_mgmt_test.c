/*
 * Session management by the host (lib/deliver/manage.c): user data,
 * tern_hub_delete_session, tern_hub_purge_session, tern_hub_cancel and
 * tern_hub_next_session, with connections attached, with a store, across
 * restarts, while the session map grows, and with allocations failing.
 */
#include "memstore.h"
#include "tap.h"
#include "testutil.h"

#define K(s) (const uint8_t *)(s), strlen(s)

static tern_settings traced(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  return s;
}

static tern_hub *hub_on(memstore *ms, const tern_settings *s,
                        tern_tstamp now) {
  tern_hub *hub = tu_hub(s);
  if (tern_hub_set_store(hub, &memstore_methods, ms, now) != 0) {
    BAILOUT("set_store");
  }
  return hub;
}

/* Events of |type| naming |c|. */
static size_t count_for(const tu_events *e, int type, const tern_conn *c) {
  size_t n = 0;
  for (size_t i = 0; i < e->n; ++i) {
    n += e->ev[i].type == type && e->ev[i].conn == c;
  }
  return n;
}

/* The CANCELED event of message |id|, or NULL. */
static const tu_event *canceled(const tu_events *e, const char *id) {
  for (size_t i = 0; i < e->n; ++i) {
    if (e->ev[i].type == TERN_EV_CANCELED && tu_event_id_is(&e->ev[i], id)) {
      return &e->ev[i];
    }
  }
  return NULL;
}

/* MSG frames with id |id| from frame |from| on. */
static size_t msgs_with_id(const tu_out *o, const char *id, size_t from) {
  size_t n = 0;
  for (size_t i = from; i < o->nframes; ++i) {
    n += o->frames[i].f.type == WIRE_MSG && tu_msg_id_is(&o->frames[i].f, id);
  }
  return n;
}

/* ---- user data ---------------------------------------------------------- */

static void test_user_data(void) {
  tern_settings s = tu_settings();
  s.session_ttl = SEC(10);
  tern_hub *hub = tu_hub(&s);
  int mine = 0;
  tu_pub(hub, "u", TERN_PRIO_NORMAL, NULL, "x", T0);
  tern_session *ss = tern_hub_find_session(hub, K("u"));
  CHECK(ss && tern_session_get_user_data(ss) == NULL,
        "user data: NULL on a new session");
  tern_session_set_user_data(ss, &mine);
  tu_pub(hub, "u", TERN_PRIO_NORMAL, NULL, "y", T0);
  tu_pub(hub, "other", TERN_PRIO_NORMAL, NULL, "z", T0);
  CHECK(tern_session_get_user_data(ss) == &mine,
        "user data: survives publishes");
  CHECK(tern_session_get_user_data(tern_hub_find_session(hub, K("other"))) ==
            NULL,
        "user data: another session's stays NULL");
  tern_session_info i = tu_info(hub, "u");
  CHECK(i.user_data == &mine && i.expires == T0 + SEC(10),
        "user data: tern_session_info has it and the expiry");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "u", T0, &o);
  CHECK(tern_conn_get_session(c) == ss &&
            tern_session_get_user_data(ss) == &mine &&
            tu_info(hub, "u").expires == TERN_TSTAMP_NONE,
        "user data: survives a connection; no expiry while connected");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_session_set_user_data(NULL, &mine);
  CHECK(tern_session_get_user_data(NULL) == NULL, "user data: NULL session");
  /* Expiry hands the pointer back, so the host can free what it holds. */
  tu_events_drain(hub);
  tern_hub_handle_expiry(hub, T0 + SEC(11));
  tern_event ev;
  int found = 0;
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (ev.type == TERN_EV_SESSION_EXPIRED && ev.session_keylen == 1) {
      found = ev.cookie == (uint64_t)(uintptr_t)&mine;
    }
  }
  CHECK(found, "user data: SESSION_EXPIRED carries it in cookie");
  /* A session created again with the key starts without it. */
  tu_pub(hub, "u", TERN_PRIO_NORMAL, NULL, "x", T0 + SEC(12));
  CHECK(tern_session_get_user_data(tern_hub_find_session(hub, K("u"))) ==
            NULL,
        "user data: NULL on the session created again");
  tern_session_set_user_data(tern_hub_find_session(hub, K("u")), &mine);
  CHECK_EQ(tern_hub_delete_session(hub, K("u"), T0 + SEC(12)), 0,
           "user data: delete");
  tu_pub(hub, "u", TERN_PRIO_NORMAL, NULL, "x", T0 + SEC(12));
  CHECK(tern_session_get_user_data(tern_hub_find_session(hub, K("u"))) ==
            NULL,
        "user data: NULL after delete and create");
  tern_hub_del(hub);
}

/* ---- delete ------------------------------------------------------------- */

static void test_delete_args(void) {
  tern_hub *hub = tu_hub(NULL);
  uint8_t big[TERN_MAX_SESSION_KEY + 1];
  memset(big, 'k', sizeof(big));
  CHECK_EQ(tern_hub_delete_session(hub, K("nope"), T0), TERN_ERR_NOT_FOUND,
           "delete: unknown key is NOT_FOUND");
  CHECK_EQ(tern_hub_delete_session(NULL, K("k"), T0), TERN_ERR_INVALID,
           "delete: NULL hub");
  CHECK_EQ(tern_hub_delete_session(hub, NULL, 1, T0), TERN_ERR_INVALID,
           "delete: NULL key");
  CHECK_EQ(tern_hub_delete_session(hub, big, 0, T0), TERN_ERR_INVALID,
           "delete: empty key");
  CHECK_EQ(tern_hub_delete_session(hub, big, sizeof(big), T0),
           TERN_ERR_INVALID, "delete: key over the limit");
  CHECK_EQ(tern_hub_purge_session(hub, K("nope"), 0, T0), TERN_ERR_NOT_FOUND,
           "purge: unknown key is NOT_FOUND");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a", T0);
  CHECK_EQ(tern_hub_purge_session(hub, K("k"), 0x2, T0), TERN_ERR_INVALID,
           "purge: unknown flag");
  CHECK_EQ(tern_hub_purge_session(NULL, K("k"), 0, T0), TERN_ERR_INVALID,
           "purge: NULL hub");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), NULL, 1, T0), TERN_ERR_INVALID,
           "cancel: NULL id");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), big, 0, T0), TERN_ERR_INVALID,
           "cancel: empty id");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), big, TERN_MAX_ID + 1, T0),
           TERN_ERR_INVALID, "cancel: id over the limit");
  CHECK_EQ(tern_hub_cancel(hub, K("nope"), K("a"), T0), TERN_ERR_NOT_FOUND,
           "cancel: unknown session is NOT_FOUND");
  CHECK_EQ(tu_stats(hub).messages, 1, "args: nothing changed");
  tern_hub_del(hub);
}

static void test_delete_pending(void) {
  tern_settings s = traced();
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_LOW, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, "b", "b", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "c", "c", T0);
  tu_pub(hub, "keep", TERN_PRIO_NORMAL, "d", "d", T0);
  tu_events_drain(hub);
  CHECK_EQ(tern_hub_delete_session(hub, K("k"), T0), 0, "delete: 0");
  CHECK(tern_hub_find_session(hub, K("k")) == NULL, "delete: session gone");
  tern_stats st = tu_stats(hub);
  CHECK(st.sessions == 1 && st.messages == 1 && st.sessions_deleted == 1 &&
            st.canceled == 3,
        "delete: gauges and counters (sessions 1, messages 1, deleted 1, "
        "canceled 3)");
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK(e.n == 3 && canceled(&e, "a") && canceled(&e, "b") &&
            canceled(&e, "c") && canceled(&e, "a")->seq == 0,
        "delete: each traced message gets exactly one CANCELED, seq 0");
  tu_events_free(&e);
  CHECK_EQ(tern_hub_delete_session(hub, K("k"), T0), TERN_ERR_NOT_FOUND,
           "delete: twice is NOT_FOUND");
  CHECK_EQ(tu_info(hub, "keep").pending, 1, "delete: others untouched");
  tern_hub_del(hub);
}

static void test_delete_with_conns(void) {
  tern_settings s = traced();
  s.inflight_window = 2;
  tern_hub *hub = tu_hub(&s);
  tu_out o1, o2;
  tu_out_init(&o1);
  tu_out_init(&o2);
  tern_conn *c1 = tu_connect(hub, "k", T0, &o1);
  tern_conn *c2 = tu_connect(hub, "k", T0, &o2);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0);
  tu_drain(&o1, c1, T0); /* a, b in flight on c1 */
  /* A large message, partly written on c2 when the session goes. */
  char big[3000];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "big", big, T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "c", "c", T0);
  size_t len2 = o2.len;
  tu_write_once(&o2, c2, 100, T0);
  CHECK(tu_count(&o1, WIRE_MSG, 0) == 2 && o2.len > len2 &&
            tu_count(&o2, WIRE_MSG, 0) == 0,
        "delete conns: two in flight, one partly written");
  tu_events_drain(hub);
  CHECK_EQ(tern_hub_delete_session(hub, K("k"), T0), 0, "delete conns: 0");
  CHECK(tern_conn_is_closed(c1) && tern_conn_is_closed(c2) &&
            tern_conn_get_session(c1) == NULL,
        "delete conns: both closed and detached");
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK(count_for(&e, TERN_EV_CONN_CLOSED, c1) == 1 &&
            count_for(&e, TERN_EV_CONN_CLOSED, c2) == 1 &&
            tu_events_count(&e, TERN_EV_CONN_CLOSED) == 2 &&
            tu_events_count(&e, TERN_EV_CONN_DEAD) == 0,
        "delete conns: exactly one end event per connection");
  const tu_event *end = tu_events_find(&e, TERN_EV_CONN_CLOSED);
  CHECK(end && end->reason == TERN_GOAWAY_REPLACED,
        "delete conns: end event reason REPLACED");
  CHECK(tu_events_count(&e, TERN_EV_CANCELED) == 4 && canceled(&e, "a") &&
            canceled(&e, "a")->seq != 0 && canceled(&e, "c") &&
            canceled(&e, "c")->seq == 0,
        "delete conns: four CANCELED, the sent ones with their seq");
  tu_events_free(&e);
  size_t before1 = o1.nframes;
  tu_drain(&o1, c1, T0);
  tu_drain(&o2, c2, T0);
  const wire_frame *g1 = tu_last(&o1, WIRE_GOAWAY);
  const wire_frame *g2 = tu_last(&o2, WIRE_GOAWAY);
  CHECK(g1 && g1->u.goaway.reason == TERN_GOAWAY_REPLACED && g2 &&
            g2->u.goaway.reason == TERN_GOAWAY_REPLACED &&
            tu_count(&o1, WIRE_MSG, before1) == 0,
        "delete conns: GOAWAY REPLACED written on both, no more MSG");
  CHECK(!o2.bad && tu_count(&o2, WIRE_MSG, 0) == 1 &&
            o2.frames[o2.nframes - 1].f.type == WIRE_GOAWAY,
        "delete conns: the partial frame completes before the GOAWAY");
  CHECK(o1.closed && o2.closed, "delete conns: writes end with CLOSED");
  tern_stats st = tu_stats(hub);
  CHECK(st.messages == 0 && st.sessions == 0 && st.inflight == 0,
        "delete conns: nothing held");
  tern_conn_del(c1);
  tern_conn_del(c2);
  tu_events_take(&e, hub);
  CHECK_EQ(e.n, 0, "delete conns: no event after the host deletes them");
  tu_events_free(&e);
  tu_out_free(&o1);
  tu_out_free(&o2);
  tern_hub_del(hub);
}

/* A session created again: seqs above the old ones, old ids forgotten,
   WELCOME without EXISTED. */
static void test_delete_recreate(void) {
  tern_hub *hub = tu_hub(NULL);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  for (int i = 0; i < 5; ++i) {
    char id[8];
    snprintf(id, sizeof(id), "m%d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, id, "p", T0);
  }
  tu_drain(&o, c, T0);
  uint64_t old_max = tu_max_seq(&o);
  tu_ack(c, 3, T0);
  CHECK(old_max >= 5, "recreate: five sent");
  CHECK_EQ(tern_hub_delete_session(hub, K("k"), T0), 0, "recreate: delete");
  tern_conn_del(c);
  tu_events_drain(hub);
  /* The receiver comes back with its old last_seq. */
  tu_out o2;
  tu_out_init(&o2);
  tern_conn *c2 = NULL;
  tern_conn_new(&c2, hub, T0);
  tu_hello(c2, "k", old_max, tern_hub_get_epoch(hub), 0, NULL, T0);
  tu_drain(&o2, c2, T0);
  const wire_frame *w = tu_nth(&o2, WIRE_WELCOME, 0, 0);
  CHECK(w && !(w->u.welcome.flags & WIRE_WELCOME_EXISTED),
        "recreate: WELCOME says the session is new");
  CHECK_EQ(tu_pub(hub, "k", TERN_PRIO_NORMAL, "m0", "again", T0), 0,
           "recreate: an id of the deleted session is not a duplicate");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "n1", "p", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "n2", "p", T0);
  tu_drain(&o2, c2, T0);
  const wire_frame *m = tu_nth(&o2, WIRE_MSG, 0, 0);
  CHECK(m && m->u.msg.seq > old_max && tu_msg_id_is(m, "m0"),
        "recreate: the new messages' seqs are above every old one");
  /* A second connection of the receiver, lost the first, resumes with the
     old last_seq: with seqs from 1 again it would ack the new messages. */
  tern_conn *c3 = NULL;
  tern_conn_new(&c3, hub, T0);
  tu_hello(c3, "k", old_max, tern_hub_get_epoch(hub), 0, NULL, T0);
  CHECK_EQ(tu_info(hub, "k").pending + tu_info(hub, "k").inflight, 3,
           "recreate: the old last_seq acks none of the new messages");
  tern_conn_del(c3);
  tern_conn_del(c2);
  tu_out_free(&o);
  tu_out_free(&o2);
  tern_hub_del(hub);
}

static void test_delete_store(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  tern_hub *hub = hub_on(&ms, &s, T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "gone", T0, &o);
  tu_pub(hub, "gone", TERN_PRIO_NORMAL, "a", "a", T0);
  tu_pub(hub, "gone", TERN_PRIO_NORMAL, "b", "b", T0);
  tu_drain(&o, c, T0);
  uint64_t old_max = tu_max_seq(&o);
  tu_pub(hub, "gone", TERN_PRIO_NORMAL, "c", "c", T0);
  tu_pub(hub, "stays", TERN_PRIO_NORMAL, "d", "d", T0);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK_EQ(memstore_count(&ms, 'M'), 4, "store: four message records");
  CHECK_EQ(tern_hub_delete_session(hub, K("gone"), T0), 0, "store: delete");
  tern_conn_del(c);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK(memstore_count(&ms, 'M') == 1 && memstore_count(&ms, 'S') == 1,
        "store: its session and message records are deleted");
  tern_hub_del(hub);
  hub = hub_on(&ms, &s, T0 + SEC(1));
  CHECK(tern_hub_find_session(hub, K("gone")) == NULL &&
            tu_info(hub, "stays").pending == 1 && tu_stats(hub).messages == 1,
        "store: after a restart the deleted session is gone, the other "
        "stays");
  /* created again after the restart: still above the old seqs */
  tu_pub(hub, "gone", TERN_PRIO_NORMAL, "e", "e", T0 + SEC(1));
  tu_out o2;
  tu_out_init(&o2);
  tern_conn *c2 = tu_connect(hub, "gone", T0 + SEC(1), &o2);
  tu_drain(&o2, c2, T0 + SEC(1));
  const wire_frame *m = tu_nth(&o2, WIRE_MSG, 0, 0);
  CHECK(m && m->u.msg.seq > old_max,
        "store: a session created again after the restart starts above "
        "the old seqs");
  CHECK_EQ(tu_pub(hub, "gone", TERN_PRIO_NORMAL, "a", "a", T0 + SEC(1)), 0,
           "store: after the restart the deleted session's ids are "
           "forgotten");
  /* The documented limit (tern_hub_delete_session): stored ids name the
     key, so a session created again before a restart within the window
     gets the old ids back as duplicates. */
  tu_pub(hub, "again", TERN_PRIO_NORMAL, "x", "x", T0 + SEC(1));
  CHECK_EQ(tern_hub_delete_session(hub, K("again"), T0 + SEC(1)), 0,
           "store: delete another");
  tu_pub(hub, "again", TERN_PRIO_NORMAL, "y", "y", T0 + SEC(1));
  tern_hub_flush(hub);
  memstore_sync(&ms);
  tern_conn_del(c2);
  tern_hub_del(hub);
  hub = hub_on(&ms, &s, T0 + SEC(2));
  CHECK_EQ(tu_pub(hub, "again", TERN_PRIO_NORMAL, "x", "x", T0 + SEC(2)),
           TERN_ERR_DUPLICATE,
           "store: created again before a restart, old ids count again");
  tern_hub_del(hub);
  tu_out_free(&o);
  tu_out_free(&o2);
  memstore_free(&ms);
}

/* ---- cancel ------------------------------------------------------------- */

static void test_cancel(void) {
  tern_settings s = traced();
  s.inflight_window = 1;
  tern_hub *hub = tu_hub(&s);
  tern_publish_result gen;
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, NULL, NULL, 0, "g", T0, &gen);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "d", "d", T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_drain(&o, c, T0); /* a in flight: the window is 1 */
  CHECK(msgs_with_id(&o, "a", 0) == 1 && tu_count(&o, WIRE_MSG, 0) == 1,
        "cancel: a in flight");
  tu_events_drain(hub);
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("b"), T0), 0,
           "cancel: a pending message, never sent: 0");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), gen.id, gen.idlen, T0), 0,
           "cancel: by a generated id");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("a"), T0), 1,
           "cancel: the message in flight: 1, it may have arrived");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("a"), T0), TERN_ERR_NOT_FOUND,
           "cancel: twice is NOT_FOUND");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("zz"), T0), TERN_ERR_NOT_FOUND,
           "cancel: unknown id is NOT_FOUND");
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK(tu_events_count(&e, TERN_EV_CANCELED) == 3 && canceled(&e, "b") &&
            canceled(&e, "b")->seq == 0 && canceled(&e, "a") &&
            canceled(&e, "a")->seq == 1,
        "cancel: one CANCELED each, seq of the last send");
  tu_events_free(&e);
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.pending == 1 && i.inflight == 0 && i.dropped == 0 &&
            tu_stats(hub).canceled == 3,
        "cancel: d left; no loss counted");
  /* The window has room again: d goes out now, nothing else ever. */
  size_t from = o.nframes;
  tu_drain(&o, c, T0);
  CHECK(tu_count(&o, WIRE_MSG, from) == 1 && msgs_with_id(&o, "d", from) == 1 &&
            tu_count(&o, WIRE_DROPPED, 0) == 0,
        "cancel: the window refills with d, no DROPPED");
  /* A reconnect does not bring a back. */
  tern_conn_del(c);
  tu_out o2;
  tu_out_init(&o2);
  c = tu_connect(hub, "k", T0, &o2);
  tu_drain(&o2, c, T0);
  CHECK(msgs_with_id(&o2, "a", 0) == 0 && msgs_with_id(&o2, "b", 0) == 0 &&
            msgs_with_id(&o2, "d", 0) == 1,
        "cancel: a new connection gets d again, never a or b");
  CHECK_EQ(tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0),
           TERN_ERR_DUPLICATE, "cancel: the id stays a duplicate");
  tern_conn_del(c);
  tu_out_free(&o);
  tu_out_free(&o2);
  tern_hub_del(hub);
}

/* CANCELED carries the message's cookie, like every lifecycle event. */
static void test_cancel_cookie(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)"c";
  d.idlen = 1;
  d.flags = TERN_MSG_TRACE;
  d.cookie = 0xc00c1e;
  tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
  tu_events_drain(hub);
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("c"), T0), 0, "cookie: cancel");
  tern_event ev;
  int found = 0;
  while (tern_hub_next_event(hub, &ev) == 1) {
    found += ev.type == TERN_EV_CANCELED && ev.cookie == 0xc00c1e &&
             ev.msg_idlen == 1;
  }
  CHECK_EQ(found, 1, "cookie: one CANCELED with the message's cookie");
  tern_hub_del(hub);
}

/* Dedup off: two messages with one id both go.  Collapse: the canceled
   newest leaves the index, so a newer publish does not point at it. */
static void test_cancel_twins_and_collapse(void) {
  tern_settings s = tu_settings();
  s.dedup_window = 0;
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "1", T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, "x", "2", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "y", "3", T0);
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("x"), T0), 0,
           "cancel twins: 0");
  CHECK_EQ(tu_info(hub, "k").pending, 1, "cancel twins: both went");
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "c1", "ck", 0, "c1", T0, NULL);
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("c1"), T0), 0,
           "cancel collapse: the indexed one");
  tern_publish_result r;
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "c2", "ck", 0, "c2", T0, &r);
  CHECK(!(r.outcome & TERN_PUBLISH_REPLACED) && tu_info(hub, "k").pending == 2,
        "cancel collapse: a later message with the key replaces nothing");
  tern_hub_del(hub);
}

static void test_cancel_store(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  tern_hub *hub = hub_on(&ms, &s, T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0);
  tern_hub_flush(hub);
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("a"), T0), 0, "cancel store: 0");
  tern_hub_flush(hub);
  memstore_sync(&ms);
  tern_hub_del(hub);
  hub = hub_on(&ms, &s, T0 + SEC(1));
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0 + SEC(1), &o);
  tu_drain(&o, c, T0 + SEC(1));
  CHECK(msgs_with_id(&o, "a", 0) == 0 && msgs_with_id(&o, "b", 0) == 1,
        "cancel store: after a restart the canceled message stays gone");
  CHECK_EQ(tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a", T0 + SEC(1)),
           TERN_ERR_DUPLICATE,
           "cancel store: its id is still a duplicate after the restart");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* ---- purge -------------------------------------------------------------- */

static void test_purge(void) {
  tern_settings s = traced();
  s.inflight_window = 2;
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  for (int i = 0; i < 6; ++i) {
    char id[8];
    snprintf(id, sizeof(id), "m%d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, id, "p", T0);
  }
  tu_drain(&o, c, T0); /* m0 m1 in flight, four pending */
  uint64_t next_seq = tu_info(hub, "k").next_seq;
  tu_events_drain(hub);
  CHECK_EQ(tern_hub_purge_session(hub, K("k"), TERN_PURGE_UNSENT, T0), 4,
           "purge unsent: the four never sent");
  tern_session_info i = tu_info(hub, "k");
  CHECK(i.pending == 0 && i.inflight == 2, "purge unsent: in flight stays");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m6", "p", T0);
  CHECK_EQ(tern_hub_purge_session(hub, K("k"), 0, T0), 3,
           "purge: every message, in flight too");
  i = tu_info(hub, "k");
  CHECK(i.pending == 0 && i.inflight == 0 && i.nconns == 1 &&
            i.next_seq == next_seq && i.dropped == 0,
        "purge: session, connection and stream position kept; no loss");
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK_EQ(tu_events_count(&e, TERN_EV_CANCELED), 7,
           "purge: a CANCELED event per message");
  tu_events_free(&e);
  CHECK_EQ(tern_hub_purge_session(hub, K("k"), 0, T0), 0,
           "purge: nothing left: 0");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m7", "p", T0);
  size_t from = o.nframes;
  tu_drain(&o, c, T0);
  const wire_frame *m = tu_nth(&o, WIRE_MSG, from, 0);
  CHECK(m && tu_msg_id_is(m, "m7") && m->u.msg.seq == next_seq &&
            tu_count(&o, WIRE_DROPPED, 0) == 0 &&
            tu_count(&o, WIRE_MSG, from) == 1,
        "purge: the stream goes on at its seq, no DROPPED");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

/* ---- iteration ---------------------------------------------------------- */

/* Keys "s<n>"; seen[n] counts how often session n came back. */
static int key_number(const tern_session *ss, const char *prefix) {
  tern_session_info i;
  tern_session_get_info(ss, &i, sizeof(i));
  size_t pl = strlen(prefix);
  if (i.keylen <= pl || i.keylen > 16 || memcmp(i.key, prefix, pl) != 0) {
    return -1;
  }
  char buf[17];
  memcpy(buf, i.key + pl, i.keylen - pl);
  buf[i.keylen - pl] = 0;
  return atoi(buf);
}

static void test_iterate_empty(void) {
  tern_hub *hub = tu_hub(NULL);
  tern_session_iter it = TERN_SESSION_ITER_INIT;
  CHECK(tern_hub_next_session(hub, &it) == NULL &&
            tern_hub_next_session(hub, &it) == NULL &&
            tern_hub_next_session(NULL, &it) == NULL &&
            tern_hub_next_session(hub, NULL) == NULL,
        "iterate: empty hub and NULL arguments give NULL");
  tu_pub(hub, "one", TERN_PRIO_NORMAL, NULL, "p", T0);
  tern_session_iter it2 = TERN_SESSION_ITER_INIT;
  tern_session *a = tern_hub_next_session(hub, &it2);
  CHECK(a && a == tern_hub_find_session(hub, K("one")) &&
            tern_hub_next_session(hub, &it2) == NULL &&
            tern_hub_next_session(hub, &it2) == NULL,
        "iterate: one session, then NULL for good");
  tern_hub_del(hub);
}

/*
 * Walks 1000 sessions while, between steps, the host deletes sessions not
 * seen yet and seen already, publishes to 20,000 new keys (the map grows
 * from 1024 buckets through several doublings) and purges.  Every session
 * that stays is seen exactly once; none is seen twice.
 */
static void test_iterate_mutating(void) {
  enum { N = 1000, NEW = 20000 };
  tern_hub *hub = tu_hub(NULL);
  char key[32];
  for (int i = 0; i < N; ++i) {
    snprintf(key, sizeof(key), "s%d", i);
    tu_pub(hub, key, TERN_PRIO_NORMAL, NULL, "p", T0);
  }
  static int seen[N], seen_new[NEW], deleted[N];
  memset(seen, 0, sizeof(seen));
  memset(seen_new, 0, sizeof(seen_new));
  memset(deleted, 0, sizeof(deleted));
  tern_session_iter it = TERN_SESSION_ITER_INIT;
  tern_session *ss;
  int steps = 0, created = 0, twice = 0, del_next = 0;
  while ((ss = tern_hub_next_session(hub, &it)) != NULL) {
    int n = key_number(ss, "s"), m = key_number(ss, "n");
    if (n >= 0) {
      twice += seen[n]++ != 0;
    } else if (m >= 0) {
      twice += seen_new[m]++ != 0;
    }
    ++steps;
    /* the session just returned, one in four of those above 300 */
    if (n >= 300 && n % 4 == 1) {
      snprintf(key, sizeof(key), "s%d", n);
      tern_hub_delete_session(hub, K(key), T0);
      deleted[n] = 1;
    }
    /* sessions 0..299, seen or not yet, one every five steps */
    if (steps % 5 == 0) {
      while (del_next < 300 && deleted[del_next]) {
        ++del_next;
      }
      if (del_next < 300) {
        snprintf(key, sizeof(key), "s%d", del_next);
        tern_hub_delete_session(hub, K(key), T0);
        deleted[del_next] = 1;
      }
    }
    /* growth: 20 new sessions a step */
    for (int k = 0; k < 20 && created < NEW; ++k, ++created) {
      snprintf(key, sizeof(key), "n%d", created);
      tu_pub(hub, key, TERN_PRIO_NORMAL, NULL, "p", T0);
    }
    if (n >= 0 && steps % 3 == 0) {
      snprintf(key, sizeof(key), "s%d", n);
      tern_hub_purge_session(hub, K(key), 0, T0);
    }
  }
  int missed = 0, ndeleted = 0;
  for (int i = 0; i < N; ++i) {
    missed += !deleted[i] && seen[i] != 1;
    ndeleted += deleted[i];
  }
  tap_diag("iterate: %d steps, %d created, %d deleted", steps, created,
           ndeleted);
  CHECK(created == NEW && ndeleted > 400 && N - ndeleted > 500,
        "iterate: the map grew by 20,000 and 400+ were deleted meanwhile, "
        "500+ stayed");
  CHECK_EQ(missed, 0, "iterate: every session that stayed seen exactly once");
  CHECK_EQ(twice, 0, "iterate: no session seen twice");
  /* A fresh pass sees each live session once. */
  tern_session_iter it2 = TERN_SESSION_ITER_INIT;
  size_t count = 0;
  while (tern_hub_next_session(hub, &it2)) {
    ++count;
  }
  CHECK_EQ(count, tu_stats(hub).sessions, "iterate: a quiet pass sees all");
  tern_hub_del(hub);
}

/* Expiry between steps: sessions with a connection stay and are seen once;
   the others expire half way. */
static void test_iterate_expiry(void) {
  enum { N = 600 };
  tern_settings s = tu_settings();
  s.session_ttl = SEC(10);
  s.heartbeat_interval = SEC(100);
  s.liveness_timeout = SEC(200);
  s.max_heartbeat = SEC(100);
  tern_hub *hub = tu_hub(&s);
  static tern_conn *conns[N];
  char key[32];
  for (int i = 0; i < N; ++i) {
    snprintf(key, sizeof(key), "s%d", i);
    if (i % 2 == 0) {
      conns[i] = tu_connect(hub, key, T0, NULL);
    } else {
      conns[i] = NULL;
      tu_pub(hub, key, TERN_PRIO_NORMAL, NULL, "p", T0);
    }
  }
  static int seen[N];
  memset(seen, 0, sizeof(seen));
  tern_session_iter it = TERN_SESSION_ITER_INIT;
  tern_session *ss;
  int steps = 0, twice = 0;
  while ((ss = tern_hub_next_session(hub, &it)) != NULL) {
    int n = key_number(ss, "s");
    twice += n < 0 || seen[n]++ != 0;
    if (++steps == N / 4) {
      tern_hub_handle_expiry(hub, T0 + SEC(11));
    }
  }
  int missed = 0;
  for (int i = 0; i < N; i += 2) {
    missed += seen[i] != 1;
  }
  CHECK(tu_stats(hub).sessions == N / 2 && tu_stats(hub).sessions_expired ==
                                               N / 2,
        "iterate expiry: half expired during the walk");
  CHECK(missed == 0 && twice == 0,
        "iterate expiry: each connected session seen exactly once");
  for (int i = 0; i < N; ++i) {
    tern_conn_del(conns[i]);
  }
  tern_hub_del(hub);
}

/* ---- allocation failures ------------------------------------------------ */

/*
 * Delete with a store whose batch must grow to hold the DELs: each
 * allocation failing in turn (alone, then with every later one) gives
 * NOMEM with nothing changed, or success; after a success the session is
 * gone for good (a restart does not bring it back).
 */
static void test_delete_nomem(void) {
  int nomem = 0, ok = 0;
  for (int rest = 0; rest < 2; ++rest) {
    for (long fail = 1; fail < 40; ++fail) {
      memstore ms;
      memset(&ms, 0, sizeof(ms));
      tu_alloc a = {0};
      tern_mem mem = tu_alloc_mem(&a);
      tern_settings s = traced();
      s.inflight_window = 10;
      tern_hub *hub = NULL;
      if (tern_hub_new(&hub, &s, &mem) != 0 ||
          tern_hub_set_store(hub, &memstore_methods, &ms, T0) != 0) {
        BAILOUT("nomem: setup");
      }
      tu_out o;
      tu_out_init(&o);
      tern_conn *c = tu_connect(hub, "k", T0, &o);
      tern_hub_flush(hub);
      for (int i = 0; i < 100; ++i) {
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        tu_pub(hub, "k", TERN_PRIO_NORMAL, id, "p", T0);
      }
      tu_drain(&o, c, T0);
      tu_events_drain(hub);
      tern_stats before = tu_stats(hub);
      tern_session_info ibefore = tu_info(hub, "k");
      a.calls = 0;
      a.fail_at = fail;
      a.fail_rest = rest;
      int rv = tern_hub_delete_session(hub, K("k"), T0);
      a.fail_at = 0;
      a.fail_rest = 0;
      if (rv == TERN_ERR_NOMEM) {
        ++nomem;
        tern_stats after = tu_stats(hub);
        tern_session_info iafter = tu_info(hub, "k");
        tern_event ev;
        if (!tu_gauges_equal(&before, &after) ||
            !tu_info_equal(&ibefore, &iafter) || tern_conn_is_closed(c) ||
            tern_hub_next_event(hub, &ev) != 0) {
          CHECK(0, "nomem: delete failing at allocation %ld changed state",
                fail);
        }
      } else if (rv == 0) {
        ++ok;
        tern_hub_flush(hub);
        memstore_sync(&ms);
        if (memstore_count(&ms, 'M') != 0 || memstore_count(&ms, 'S') != 0) {
          CHECK(0, "nomem: delete succeeded (allocation %ld failing) but "
                   "left store records", fail);
        }
      } else {
        CHECK(0, "nomem: delete returned %d", rv);
      }
      tern_conn_del(c);
      tern_hub_del(hub);
      tu_out_free(&o);
      if (a.outstanding != 0 || tu_alloc_finish(&a) != 0) {
        CHECK(0, "nomem: leak or use after free (allocation %ld)", fail);
      }
      memstore_free(&ms);
    }
  }
  tap_diag("nomem: %d NOMEM, %d successes", nomem, ok);
  CHECK(nomem > 0 && ok > 0,
        "nomem: delete met NOMEM (nothing changed) and succeeded");
}

/* Cancel and purge need the same room: NOMEM, nothing changed. */
static void test_cancel_purge_nomem(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tu_alloc a = {0};
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, &s, &mem) != 0 ||
      tern_hub_set_store(hub, &memstore_methods, &ms, T0) != 0) {
    BAILOUT("nomem: setup");
  }
  tern_hub_flush(hub);
  for (int i = 0; i < 100; ++i) {
    char id[8];
    snprintf(id, sizeof(id), "m%d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, id, "p", T0);
  }
  a.fail_at = 1;
  a.calls = 0;
  a.fail_rest = 1;
  CHECK_EQ(tern_hub_purge_session(hub, K("k"), 0, T0), TERN_ERR_NOMEM,
           "nomem: purge");
  CHECK_EQ(tu_info(hub, "k").pending, 100, "nomem: purge changed nothing");
  CHECK_EQ(tern_hub_purge_session(hub, K("k"), TERN_PURGE_UNSENT, T0),
           TERN_ERR_NOMEM, "nomem: purge unsent");
  CHECK_EQ(tern_hub_cancel(hub, K("k"), K("m7"), T0), 0,
           "nomem: cancel of one fits the batch's spare room");
  CHECK_EQ(tu_info(hub, "k").pending, 99, "nomem: one canceled");
  a.fail_at = 0;
  a.fail_rest = 0;
  CHECK_EQ(tern_hub_purge_session(hub, K("k"), 0, T0), 99,
           "nomem: purge once memory is back");
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0, "nomem: no leak");
  memstore_free(&ms);
}

int main(void) {
  test_user_data();
  test_delete_args();
  test_delete_pending();
  test_delete_with_conns();
  test_delete_recreate();
  test_delete_store();
  test_cancel();
  test_cancel_cookie();
  test_cancel_twins_and_collapse();
  test_cancel_store();
  test_purge();
  test_iterate_empty();
  test_iterate_mutating();
  test_iterate_expiry();
  test_delete_nomem();
  test_cancel_purge_nomem();
  return tap_done();
}
