/*
 * The event queue and the end of a connection: events that carry a duty
 * for the host (HELLO, PERSISTED, STORE_FAILED, the end events, DEAD,
 * SESSION_EXPIRED) are never shed, whatever max_events says or the
 * allocator does; only trace events are, counted in events_lost.  Every
 * way a connection ends gives exactly one end event, after which the
 * connection writes out and reports TERN_ERR_CLOSED.  A write that runs out
 * of memory comes back through the deadline loop and the ready list.
 */
#include "deliver/hub.h"
#include "memstore.h"
#include "tap.h"
#include "testutil.h"

/* Events of |type| naming |c|. */
static size_t count_for(const tu_events *e, int type, const tern_conn *c) {
  size_t n = 0;
  for (size_t i = 0; i < e->n; ++i) {
    n += e->ev[i].type == type && e->ev[i].conn == c;
  }
  return n;
}

/* ---- duty events are never shed ----------------------------------------- */

static void test_hello_past_max_events(void) {
  tern_settings s = tu_settings();
  s.max_events = 1;
  s.hello_accept = 1;
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  tern_conn *c[3];
  for (int i = 0; i < 3; ++i) {
    CHECK_EQ(tern_conn_new(&c[i], hub, T0), 0, "hello: conn %d", i);
    char key[8];
    snprintf(key, sizeof(key), "k%d", i);
    CHECK(tu_hello(c[i], key, 0, 0, 0, "tok", T0) > 0,
          "hello: HELLO %d read", i);
  }
  /* a trace event beyond max_events is shed, a HELLO never */
  tu_pub(hub, "k0", TERN_PRIO_NORMAL, NULL, "x", T0);
  tu_events e = {0};
  tu_events_take(&e, hub);
  for (int i = 0; i < 3; ++i) {
    CHECK_EQ(count_for(&e, TERN_EV_CONN_HELLO, c[i]), 1,
              "hello: the HELLO of conn %d is queued with max_events 1", i);
    CHECK_EQ(tern_conn_accept(c[i], T0), 0, "hello: conn %d accepted", i);
  }
  CHECK(tu_stats(hub).events_lost == 1,
        "hello: only the trace event was shed (events_lost %llu)",
        (unsigned long long)tu_stats(hub).events_lost);
  CHECK(tu_events_find(&e, TERN_EV_ACCEPTED) == NULL,
        "hello: the ACCEPTED trace event was the one shed");
  tu_events_free(&e);
  for (int i = 0; i < 3; ++i) {
    tern_conn_del(c[i]);
  }
  tern_hub_del(hub);
}

static tern_msg_desc sync_desc(const char *id) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.payload = (const uint8_t *)"p";
  d.payloadlen = 1;
  d.id = (const uint8_t *)id;
  d.idlen = strlen(id);
  d.flags = TERN_MSG_SYNC;
  return d;
}

static void test_persisted_past_max_events(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  s.max_events = 1;
  tern_hub *hub = tu_hub(&s);
  CHECK_EQ(tern_hub_set_store(hub, &memstore_methods, &ms, T0), 0,
            "sync: store attached");
  char id[16];
  for (int i = 0; i < 20; ++i) {
    snprintf(id, sizeof(id), "s%d", i);
    tern_msg_desc d = sync_desc(id);
    CHECK_EQ(tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL), 0,
              "sync: publish %d", i);
  }
  tern_hub_handle_expiry(hub, T0);
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK_EQ(tu_events_count(&e, TERN_EV_PERSISTED), 20,
            "sync: 20 PERSISTED events with max_events 1");
  CHECK(tu_stats(hub).events_lost == 0, "sync: no event lost");
  tu_events_free(&e);
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* The allocator fails everything once the SYNC publish succeeded: its
   PERSISTED event still comes, in the room reserved by the publish.  Every
   earlier failure point makes the publish fail and change nothing. */
static void test_persisted_without_memory(void) {
  int succeeded = 0;
  for (long fail = 1; fail < 200 && !succeeded; ++fail) {
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
    tern_hub_handle_expiry(hub, T0); /* an empty queue, nothing waiting */
    a.calls = 0;
    a.fail_at = fail;
    tern_msg_desc d = sync_desc("sync-1");
    int rv = tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
    if (rv == TERN_ERR_NOMEM) {
      tern_stats st = tu_stats(hub);
      if (st.messages != 0 || st.sessions != 0) {
        CHECK(0, "nomem: publish failing at allocation %ld changed state",
              fail);
      }
    } else {
      CHECK_EQ(rv, 0, "nomem: publish succeeded (allocation %ld fails)",
                fail);
      succeeded = 1;
      a.fail_at = 1;
      a.calls = 0;
      a.fail_rest = 1; /* nothing can be allocated from now on */
      tern_hub_flush(hub);
      a.fail_rest = 0;
      a.fail_at = 0;
      tu_events e = {0};
      tu_events_take(&e, hub);
      const tu_event *ev = tu_events_find(&e, TERN_EV_PERSISTED);
      CHECK(ev && ev->reason == 0 && tu_event_id_is(ev, "sync-1"),
            "nomem: PERSISTED came although the allocator failed "
            "everything");
      tu_events_free(&e);
    }
    tern_hub_del(hub);
    CHECK_EQ(tu_alloc_finish(&a), 0, "nomem: no leak (allocation %ld)",
              fail);
    memstore_free(&ms);
  }
  CHECK(succeeded, "nomem: the sweep reached a successful publish");
}

/* HELLO without memory for its event: the connection ends, told. */
static void test_hello_without_memory(void) {
  tu_alloc a = {0};
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  s.hello_accept = 1;
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    BAILOUT("hello nomem: setup");
  }
  tern_conn *c = NULL;
  CHECK_EQ(tern_conn_new(&c, hub, T0), 0, "hello nomem: conn");
  a.calls = 0;
  a.fail_at = 1;
  a.fail_rest = 1;
  tern_ssize rv = tu_hello(c, "k", 0, 0, 0, "tok", T0);
  a.fail_at = 0;
  a.fail_rest = 0;
  tu_events e = {0};
  tu_events_take(&e, hub);
  if (rv >= 0) {
    CHECK_EQ(count_for(&e, TERN_EV_CONN_HELLO, c), 1,
              "hello nomem: HELLO read, its event queued");
  } else {
    CHECK_EQ(rv, TERN_ERR_NOMEM, "hello nomem: HELLO failed for memory");
    CHECK(tern_conn_is_closed(c), "hello nomem: the connection is closed");
    CHECK_EQ(count_for(&e, TERN_EV_CONN_CLOSED, c), 1,
              "hello nomem: and its end was told");
  }
  tu_events_free(&e);
  tern_conn_del(c);
  tern_hub_del(hub);
  CHECK_EQ(tu_alloc_finish(&a), 0, "hello nomem: no leak");
}

/* SESSION_EXPIRED and DEAD without memory: they wait, due, and come once
   memory is back. */
static void test_expiry_without_memory(void) {
  tu_alloc a = {0};
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  s.session_ttl = SEC(10);
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    BAILOUT("expiry nomem: setup");
  }
  tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, "x", T0);
  tu_events_drain(hub);
  tern_tstamp t = T0 + SEC(11);
  a.calls = 0;
  a.fail_at = 1;
  a.fail_rest = 1;
  int rv = tern_hub_handle_expiry(hub, t);
  a.fail_at = 0;
  a.fail_rest = 0;
  tu_events e = {0};
  tu_events_take(&e, hub);
  if (rv == TERN_ERR_NOMEM) {
    CHECK(tu_events_find(&e, TERN_EV_SESSION_EXPIRED) == NULL &&
              tu_info(hub, "k").pending == 1,
          "expiry nomem: the session lives on without its event");
    CHECK(tern_hub_get_expiry(hub) <= t, "expiry nomem: it stays due");
    CHECK_EQ(tern_hub_handle_expiry(hub, t), 0,
              "expiry nomem: handled once memory is back");
    tu_events_take(&e, hub);
  } else {
    CHECK_EQ(rv, 0, "expiry nomem: handled (the room was there)");
  }
  const tu_event *ev = tu_events_find(&e, TERN_EV_SESSION_EXPIRED);
  CHECK(ev && ev->count == 1, "expiry nomem: SESSION_EXPIRED came");
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"k", 1) == NULL,
        "expiry nomem: the session is gone");
  tu_events_free(&e);
  tern_hub_del(hub);
  CHECK_EQ(tu_alloc_finish(&a), 0, "expiry nomem: no leak");
}

/* ---- one end event per connection -------------------------------------- */

typedef struct ending {
  tern_hub *hub;
  tern_conn *c;
  tu_out o;
  tu_events e;
} ending;

static void ending_start(ending *x, const tern_settings *s, const char *key) {
  memset(x, 0, sizeof(*x));
  x->hub = tu_hub(s);
  tu_out_init(&x->o);
  if (key) {
    x->c = tu_connect(x->hub, key, T0, &x->o);
  } else if (tern_conn_new(&x->c, x->hub, T0) != 0) {
    BAILOUT("end: conn");
  }
}

/* Checks that |c| got exactly one end event of |type| and |reason|, and
   that it then writes out until TERN_ERR_CLOSED. */
static void ending_check(ending *x, tern_conn *c, const char *what, int type,
                         int reason, tern_tstamp now) {
  tu_events_take(&x->e, x->hub);
  size_t dead = count_for(&x->e, TERN_EV_CONN_DEAD, c);
  size_t closed = count_for(&x->e, TERN_EV_CONN_CLOSED, c);
  CHECK(dead + closed == 1, "end %s: one end event (%zu DEAD, %zu CLOSED)",
        what, dead, closed);
  const tu_event *ev = NULL;
  for (size_t i = 0; i < x->e.n; ++i) {
    if (x->e.ev[i].conn == c && (x->e.ev[i].type == TERN_EV_CONN_DEAD ||
                                  x->e.ev[i].type == TERN_EV_CONN_CLOSED)) {
      ev = &x->e.ev[i];
    }
  }
  CHECK(ev && ev->type == type && ev->reason == reason,
        "end %s: event %d reason %d (want %d, %d)", what, ev ? ev->type : 0,
        ev ? ev->reason : -1, type, reason);
  CHECK(tern_conn_is_closed(c), "end %s: the connection is closed", what);
  tu_out o;
  tu_out_init(&o);
  tu_drain(&o, c, now);
  tern_ssize rv = tern_conn_write(c, (uint8_t[64]){0}, 64, now);
  CHECK_EQ(rv, TERN_ERR_CLOSED, "end %s: written out, then CLOSED", what);
  /* Nothing later ends it again. */
  tern_hub_handle_expiry(x->hub, now + SEC(3600));
  tern_conn_goaway(c, TERN_GOAWAY_RESTART, 0, now + SEC(3600));
  tu_events_take(&x->e, x->hub);
  CHECK_EQ(count_for(&x->e, TERN_EV_CONN_DEAD, c) +
                count_for(&x->e, TERN_EV_CONN_CLOSED, c),
            1, "end %s: still one end event later", what);
  tu_out_free(&o);
}

static void ending_free(ending *x) {
  if (x->c) {
    tern_conn_del(x->c);
  }
  /* Every reservation was used or given back. */
  CHECK(x->hub->ev_reserved == 0 && x->hub->arena_reserved == 0,
        "end: no event room left reserved (%zu, %zu)", x->hub->ev_reserved,
        x->hub->arena_reserved);
  tu_events_free(&x->e);
  tu_out_free(&x->o);
  tern_hub_del(x->hub);
}

static void test_end_events(void) {
  tern_settings s = tu_settings();
  ending x;

  ending_start(&x, &s, "k");
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  CHECK(tern_conn_read(x.c, junk, sizeof(junk), T0) < 0,
        "end proto: junk refused");
  ending_check(&x, x.c, "proto", TERN_EV_CONN_CLOSED, TERN_GOAWAY_PROTO, T0);
  ending_free(&x);

  ending_start(&x, &s, "k");
  tern_hub_handle_expiry(x.hub, T0 + SEC(60));
  ending_check(&x, x.c, "liveness", TERN_EV_CONN_DEAD, TERN_GOAWAY_TIMEOUT,
               T0 + SEC(60));
  ending_free(&x);

  ending_start(&x, &s, "k");
  tu_client_goaway(x.c, TERN_GOAWAY_CLIENT, T0);
  ending_check(&x, x.c, "client goaway", TERN_EV_CONN_CLOSED,
               TERN_GOAWAY_CLIENT, T0);
  ending_free(&x);

  ending_start(&x, &s, "k");
  tern_conn_goaway(x.c, TERN_GOAWAY_REJECTED, SEC(1), T0);
  ending_check(&x, x.c, "tern_conn_goaway", TERN_EV_CONN_CLOSED,
               TERN_GOAWAY_REJECTED, T0);
  ending_free(&x);

  ending_start(&x, &s, "k");
  CHECK_EQ(tern_hub_goaway_all(x.hub, TERN_GOAWAY_RESTART, SEC(1), T0), 1,
            "end goaway_all: one told");
  ending_check(&x, x.c, "goaway_all", TERN_EV_CONN_CLOSED,
               TERN_GOAWAY_RESTART, T0);
  ending_free(&x);

  ending_start(&x, &s, NULL);
  tern_hub_handle_expiry(x.hub, T0 + SEC(60));
  ending_check(&x, x.c, "hello timeout", TERN_EV_CONN_CLOSED,
               TERN_GOAWAY_TIMEOUT, T0 + SEC(60));
  ending_free(&x);

  /* replaced: the receiver resumes on a new connection */
  ending_start(&x, &s, "k");
  tu_pub(x.hub, "k", TERN_PRIO_NORMAL, NULL, "a", T0);
  tu_drain(&x.o, x.c, T0);
  tern_conn *c2 = NULL;
  tern_conn_new(&c2, x.hub, T0);
  tu_hello(c2, "k", 1, tern_hub_get_epoch(x.hub), 0, NULL, T0);
  tu_events_take(&x.e, x.hub);
  CHECK_EQ(count_for(&x.e, TERN_EV_CONN_CLOSED, c2) +
                count_for(&x.e, TERN_EV_CONN_DEAD, c2),
            0, "end replaced: the new connection goes on");
  CHECK(!tern_conn_is_closed(c2), "end replaced: the new one is open");
  ending_check(&x, x.c, "replaced", TERN_EV_CONN_CLOSED,
               TERN_GOAWAY_REPLACED, T0);
  tern_conn_del(c2);
  ending_free(&x);

  /* max_conns, at HELLO and at tern_conn_accept */
  tern_settings one = s;
  one.max_conns = 1;
  ending_start(&x, &one, "k");
  c2 = NULL;
  tern_conn_new(&c2, x.hub, T0);
  CHECK_EQ(tu_hello(c2, "k", 0, 0, 0, NULL, T0), TERN_ERR_LIMIT,
            "end limit: second HELLO refused");
  ending_check(&x, c2, "limit", TERN_EV_CONN_CLOSED, TERN_GOAWAY_LIMIT, T0);
  tern_conn_del(c2);
  ending_free(&x);

  one.hello_accept = 1;
  ending_start(&x, &one, NULL);
  tu_hello(x.c, "k", 0, 0, 0, NULL, T0);
  tern_conn_accept(x.c, T0);
  c2 = NULL;
  tern_conn_new(&c2, x.hub, T0);
  tu_hello(c2, "k", 0, 0, 0, NULL, T0);
  CHECK_EQ(tern_conn_accept(c2, T0), TERN_ERR_LIMIT,
            "end accept limit: refused");
  ending_check(&x, c2, "accept limit", TERN_EV_CONN_CLOSED,
               TERN_GOAWAY_LIMIT, T0);
  tern_conn_del(c2);
  ending_free(&x);

  /* NOMEM in tern_conn_read: the HELLO cannot bind */
  tu_alloc a = {0};
  tern_mem mem = tu_alloc_mem(&a);
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    BAILOUT("end nomem: setup");
  }
  int told = 0;
  for (long fail = 1; fail < 50 && !told; ++fail) {
    tern_conn *c = NULL;
    if (tern_conn_new(&c, hub, T0) != 0) {
      BAILOUT("end nomem: conn");
    }
    a.calls = 0;
    a.fail_at = fail;
    tern_ssize rv = tu_hello(c, "k", 0, 0, 0, NULL, T0);
    a.fail_at = 0;
    memset(&x, 0, sizeof(x));
    x.hub = hub;
    if (rv == TERN_ERR_NOMEM) {
      ending_check(&x, c, "nomem", TERN_EV_CONN_CLOSED, TERN_GOAWAY_INTERNAL,
                   T0);
      told = 1;
    }
    tu_events_free(&x.e);
    tern_conn_del(c);
  }
  CHECK(told, "end nomem: a HELLO failed for memory");
  tern_hub_del(hub);
  CHECK_EQ(tu_alloc_finish(&a), 0, "end nomem: no leak");

  /* tern_conn_del ends a connection without an event */
  ending_start(&x, &s, "k");
  tern_conn *gone = x.c;
  tern_conn_del(x.c);
  x.c = NULL;
  tu_events_take(&x.e, x.hub);
  CHECK(tu_events_find(&x.e, TERN_EV_CONN_CLOSED) == NULL &&
            tu_events_find(&x.e, TERN_EV_CONN_DEAD) == NULL,
        "end del: the host's own delete is not told (%p)", (void *)gone);
  ending_free(&x);
}

/* ---- a write without memory comes back ---------------------------------- */

static void test_write_nomem_retry(void) {
  tu_alloc a = {0};
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    BAILOUT("write nomem: setup");
  }
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  char big[600];
  memset(big, 'b', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "big", big, T0);
  CHECK(tern_hub_next_ready(hub) == c, "write nomem: ready");
  tern_tstamp t = T0 + MS(5);
  a.calls = 0;
  a.fail_at = 1;
  a.fail_rest = 1;
  uint8_t buf[64];
  tern_ssize rv = tern_conn_write(c, buf, sizeof(buf), t);
  a.fail_at = 0;
  a.fail_rest = 0;
  CHECK_EQ(rv, TERN_ERR_NOMEM, "write nomem: a frame larger than the "
                                "buffer needs memory");
  CHECK(tern_hub_next_ready(hub) == NULL,
        "write nomem: not ready before the deadline is handled");
  CHECK(tern_hub_get_expiry(hub) <= t, "write nomem: a deadline is due now");
  CHECK_EQ(tern_hub_handle_expiry(hub, t), 0, "write nomem: handled");
  CHECK(tern_hub_next_ready(hub) == c,
        "write nomem: the connection is ready again");
  tu_write(&o, c, sizeof(buf), t);
  CHECK(tu_last(&o, WIRE_MSG) && tu_msg_id_is(tu_last(&o, WIRE_MSG), "big"),
        "write nomem: the retry wrote the message");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
  CHECK_EQ(tu_alloc_finish(&a), 0, "write nomem: no leak");
}

/* A store that completes later may report several batches at once: the
   room each held for its STORE_FAILED event comes back, one event tells of
   a failure. */
static void test_later_batches_give_room_back(void) {
  for (int fail = 0; fail < 2; ++fail) {
    memstore ms;
    memset(&ms, 0, sizeof(ms));
    tern_settings s = tu_settings();
    tern_hub *hub = tu_hub(&s);
    if (tern_hub_set_store(hub, &memstore_methods, &ms, T0) != 0) {
      BAILOUT("later: store");
    }
    ms.later = 1;
    for (int i = 0; i < 3; ++i) {
      char id[8];
      snprintf(id, sizeof(id), "l%d", i);
      tern_msg_desc d = sync_desc(id);
      tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
      tern_hub_flush(hub);
    }
    tu_events_drain(hub);
    CHECK_EQ(tern_hub_store_done(hub, ms.last_batch,
                                 fail ? TERN_ERR_STORE : 0),
             0, "later %d: three batches done at once", fail);
    tu_events e = {0};
    tu_events_take(&e, hub);
    CHECK_EQ(tu_events_count(&e, TERN_EV_PERSISTED), 3,
             "later %d: three PERSISTED", fail);
    CHECK_EQ(tu_events_count(&e, TERN_EV_STORE_FAILED), fail,
             "later %d: STORE_FAILED once if it failed", fail);
    CHECK(hub->ev_reserved == 0 && hub->arena_reserved == 0,
          "later %d: every reservation came back (%zu, %zu)", fail,
          hub->ev_reserved, hub->arena_reserved);
    tu_events_free(&e);
    tern_hub_del(hub);
    memstore_free(&ms);
  }
}

int main(void) {
  test_hello_past_max_events();
  test_persisted_past_max_events();
  test_persisted_without_memory();
  test_later_batches_give_room_back();
  test_hello_without_memory();
  test_expiry_without_memory();
  test_end_events();
  test_write_nomem_retry();
  return tap_done();
}
