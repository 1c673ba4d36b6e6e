/*
 * The hub over a store (tests/memstore.h): what a restart restores, what
 * SYNC confirms, what a crash that loses unsynced batches may and may not
 * lose, store failures, and allocation failures with a store attached.
 */
#include "memstore.h"
#include "tap.h"
#include "testutil.h"

static char pbuf[4096];

static tern_hub *hub_on(memstore *ms, tern_tstamp now) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  int rv = tern_hub_set_store(hub, &memstore_methods, ms, now);
  if (rv != 0) {
    fprintf(stderr, "persist_test: set_store: %s\n", tern_strerror(rv));
    abort();
  }
  return hub;
}

/* A crash: the process is gone; unsynced batches are lost. */
static void crash(tern_hub *hub, memstore *ms) {
  memstore_crash(ms);
  tern_hub_del(hub); /* appends are ignored while frozen */
  memstore_restart(ms);
}

static void test_restart_restores(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  uint64_t epoch = tern_hub_get_epoch(hub);
  tu_pub(hub, "k", TERN_PRIO_LOW, "a", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, "b", "b", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "c", "c", T0);
  tu_pub(hub, "k", TERN_PRIO_HIGH, "d", "d", T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_drain(&o, c, T0); /* b d c a in flight */
  tu_ack(c, 1, T0);    /* b acked */
  tern_hub_handle_expiry(hub, T0); /* flushes the batch */
  CHECK(ms.appends > 0, "restart: batches reached the store");
  memstore_sync(&ms);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);

  hub = hub_on(&ms, T0 + SEC(1));
  CHECK(tern_hub_get_epoch(hub) == epoch, "restart: the epoch is restored");
  tern_session_info si = tu_info(hub, "k");
  CHECK_INT(si.pending, 3, "restart: unacked messages are pending again");
  CHECK(si.next_seq > 4, "restart: seqs never go back");
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0 + SEC(1), &o);
  tu_drain(&o, c, T0 + SEC(1));
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "d c a") == 0,
        "restart: re-sent by priority, then publish order (got %s)", pbuf);
  /* Dedup ids survive within their window. */
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_LOW, "a", "again", T0 + SEC(2)),
            TERN_ERR_DUPLICATE, "restart: dedup ids are restored");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  memstore_free(&ms);
}

static void test_crash_keeps_sync(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.payload = (const uint8_t *)"x";
  d.payloadlen = 1;
  d.id = (const uint8_t *)"sync-1";
  d.idlen = 6;
  d.flags = TERN_MSG_SYNC;
  CHECK_INT(tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL), 0,
            "sync: publish");
  tu_events ev;
  memset(&ev, 0, sizeof(ev));
  tu_events_take(&ev, hub);
  CHECK_INT(tu_events_count(&ev, TERN_EV_PERSISTED), 0,
            "sync: not confirmed before the batch is durable");
  CHECK(tern_hub_get_expiry(hub) == 0, "sync: the hub asks to flush now");
  tern_hub_handle_expiry(hub, T0);
  tu_events_take(&ev, hub);
  const tu_event *e = tu_events_find(&ev, TERN_EV_PERSISTED);
  CHECK(e && e->reason == 0 && tu_event_id_is(e, "sync-1"),
        "sync: PERSISTED once durable");
  /* An ASYNC one published after it is lost by a crash before any sync. */
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "async-1", "y", T0);
  tern_hub_handle_expiry(hub, T0);
  crash(hub, &ms);
  hub = hub_on(&ms, T0 + SEC(1));
  tern_session_info si = tu_info(hub, "k");
  CHECK_INT(si.pending, 1, "crash: the SYNC message survives, the unsynced one "
                           "may not");
  tu_events_free(&ev);
  tern_hub_del(hub);
  memstore_free(&ms);
}

static void test_later_store(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  ms.later = 1;
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"x";
  d.payloadlen = 1;
  d.flags = TERN_MSG_SYNC;
  tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
  tern_hub_flush(hub);
  tu_events ev;
  memset(&ev, 0, sizeof(ev));
  tu_events_take(&ev, hub);
  CHECK_INT(tu_events_count(&ev, TERN_EV_PERSISTED), 0,
            "later: no confirmation before store_done");
  CHECK_INT(tern_hub_store_done(hub, ms.last_batch + 1, 0), TERN_ERR_STATE,
            "later: done for an unknown batch is refused");
  CHECK_INT(tern_hub_store_done(hub, ms.last_batch, 0), 0, "later: done");
  tu_events_take(&ev, hub);
  CHECK_INT(tu_events_count(&ev, TERN_EV_PERSISTED), 1,
            "later: PERSISTED after store_done");
  tu_events_free(&ev);
  tern_hub_del(hub);
  memstore_free(&ms);
}

static void test_store_failure(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"x";
  d.payloadlen = 1;
  d.flags = TERN_MSG_SYNC;
  tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
  ms.fail = 1;
  CHECK_INT(tern_hub_flush(hub), TERN_ERR_STORE, "failure: flush reports it");
  tu_events ev;
  memset(&ev, 0, sizeof(ev));
  tu_events_take(&ev, hub);
  const tu_event *e = tu_events_find(&ev, TERN_EV_PERSISTED);
  CHECK(e && e->reason == TERN_ERR_STORE,
        "failure: the SYNC producer learns its message is not durable");
  CHECK_INT(tu_events_count(&ev, TERN_EV_STORE_FAILED), 1,
            "failure: STORE_FAILED event");
  CHECK_INT(tu_info(hub, "k").pending, 1,
            "failure: the message is still delivered from memory");
  d.id = (const uint8_t *)"retry";
  d.idlen = 5;
  ms.fail = 1;
  tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
  tern_hub_flush(hub);
  CHECK_INT(tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL), 0,
            "failure: a SYNC id whose batch failed may be published again");
  tu_events_free(&ev);
  tern_hub_del(hub);
  memstore_free(&ms);
}

static void test_expired_and_acked_stay_gone(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "short", NULL, SEC(5), "s", T0, NULL);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "acked", "a", T0);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "kept", "k", T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_drain(&o, c, T0);
  tern_conn_del(c); /* nothing acked: all pending again */
  c = tu_connect(hub, "k", T0, &o);
  tu_drain(&o, c, T0);
  uint64_t acked_seq = 0;
  for (size_t i = 0; i < o.nframes; ++i) {
    if (o.frames[i].f.type == WIRE_MSG &&
        tu_msg_id_is(&o.frames[i].f, "acked")) {
      acked_seq = o.frames[i].f.u.msg.seq;
    }
  }
  /* ack up to "acked" (short, acked) */
  tu_ack(c, acked_seq, T0);
  tern_hub_handle_expiry(hub, T0);
  memstore_sync(&ms);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  CHECK_INT(memstore_count(&ms, 'M'), 1, "acked: only the unacked message is "
                                         "stored");
  /* Reload after "kept"'s neighbour would have expired anyway. */
  hub = hub_on(&ms, T0 + SEC(10));
  CHECK_INT(tu_info(hub, "k").pending, 1, "reload: acked ones never return");
  tern_hub_del(hub);
  memstore_free(&ms);

  /* An expired message is dropped while loading. */
  memset(&ms, 0, sizeof(ms));
  hub = hub_on(&ms, T0);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, NULL, NULL, SEC(5), "s", T0, NULL);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, "forever", T0);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  tern_hub_del(hub);
  hub = hub_on(&ms, T0 + SEC(6));
  CHECK_INT(tu_info(hub, "k").pending, 1, "reload: expired messages dropped");
  tern_hub_flush(hub);
  memstore_sync(&ms);
  CHECK_INT(memstore_count(&ms, 'M'), 1, "reload: and deleted from the store");
  tern_hub_del(hub);
  memstore_free(&ms);
}

static void test_seqs_after_restart(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  for (int i = 0; i < 3000; ++i) {
    tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, "m", T0);
    tu_drain(&o, c, T0);
    tu_ack(c, tu_max_seq(&o), T0);
  }
  uint64_t used = tu_max_seq(&o);
  tern_hub_handle_expiry(hub, T0);
  memstore_sync(&ms);
  crash(hub, &ms); /* tern_hub_del freed the connection too */
  hub = hub_on(&ms, T0 + SEC(1));
  tern_session_info si = tu_info(hub, "k");
  CHECK(si.next_seq > used, "seqs: a restarted session never reuses a seq "
                            "(next %llu, used %llu)",
        (unsigned long long)si.next_seq, (unsigned long long)used);
  tern_hub_del(hub);
  tu_out_free(&o);
  memstore_free(&ms);
}

static void test_collapse_restart(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "old", "score", 0, "1-0", T0, NULL);
  tu_drain(&o, c, T0); /* old in flight */
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "new", "score", 0, "2-0", T0, NULL);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  crash(hub, &ms); /* tern_hub_del freed the connection too */
  tu_out_free(&o);
  hub = hub_on(&ms, T0 + SEC(1));
  tu_out_init(&o);
  c = tu_connect(hub, "k", T0 + SEC(1), &o);
  tu_drain(&o, c, T0 + SEC(1));
  CHECK(strcmp(tu_payloads(&o, 0, pbuf, sizeof(pbuf)), "2-0") == 0,
        "collapse: after a restart only the newest of a key is sent (got %s)",
        pbuf);
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  memstore_free(&ms);
}

/* Every allocation failing in turn while publishing and loading with a
   store: NOMEM, no leak, nothing half done. */
static void test_nomem(void) {
  long completed = 0;
  for (long n = 1; n < 400 && !completed; ++n) {
    memstore ms;
    memset(&ms, 0, sizeof(ms));
    /* a populated store to load */
    {
      tern_hub *h0 = hub_on(&ms, T0);
      tu_pub(h0, "k", TERN_PRIO_HIGH, "a", "a", T0);
      tu_pub_full(h0, "j", TERN_PRIO_LOW, "b", "ck", SEC(60), "b", T0, NULL);
      tern_hub_del(h0);
      memstore_sync(&ms);
    }
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    a.fail_at = n;
    tern_mem mem = tu_alloc_mem(&a);
    tern_settings s = tu_settings();
    tern_hub *hub = NULL;
    int rv = tern_hub_new(&hub, &s, &mem);
    if (rv == 0) {
      rv = tern_hub_set_store(hub, &memstore_methods, &ms, T0);
      if (rv == 0) {
        rv = tu_pub(hub, "k", TERN_PRIO_NORMAL, "c", "c", T0);
        if (rv == 0) {
          rv = tern_hub_flush(hub);
          completed = a.failed == 0;
        }
      } else {
        CHECK(tern_hub_find_session(hub, (const uint8_t *)"k", 1) == NULL,
              "nomem %ld: a failed load leaves the hub empty", n);
      }
      tern_hub_del(hub);
    }
    if (rv != 0 && rv != TERN_ERR_NOMEM) {
      CHECK(0, "nomem %ld: unexpected %s", n, tern_strerror(rv));
    }
    if (a.outstanding != 0) {
      CHECK(0, "nomem %ld: %ld blocks leaked", n, a.outstanding);
    }
    tu_alloc_finish(&a);
    memstore_free(&ms);
  }
  CHECK(completed, "nomem: every failure point handled, then a clean run");
}

/* Publishes |id| with |ttl| and |flags| to session "k". */
static int pub_flags(tern_hub *hub, const char *id, tern_duration ttl,
                     uint32_t flags, tern_tstamp now) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)id;
  d.idlen = strlen(id);
  d.payload = (const uint8_t *)id;
  d.payloadlen = strlen(id);
  d.ttl = ttl;
  d.flags = flags;
  return tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, now, NULL);
}

/* A receiver that resumes on |hub| (same epoch, |last_seq|) and reads. */
static tern_conn *resume(tern_hub *hub, uint64_t last_seq, uint64_t epoch,
                         tu_out *o, tern_tstamp now) {
  tern_conn *c = NULL;
  if (tern_conn_new(&c, hub, now) != 0 ||
      tu_hello(c, "k", last_seq, epoch, 0, NULL, now) < 0) {
    fprintf(stderr, "persist_test: resume failed\n");
    abort();
  }
  tu_drain(o, c, now);
  return c;
}

/* Issue 8, 1: a durable message whose TTL passes while the hub is down is
   a loss like any other: the receiver hears of it (DROPPED), the host too
   (EXPIRED, traced). */
static void test_expired_while_down(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  uint64_t epoch = tern_hub_get_epoch(hub);
  pub_flags(hub, "short", SEC(5), TERN_MSG_TRACE, T0);
  pub_flags(hub, "kept", 0, 0, T0);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  crash(hub, &ms);

  hub = hub_on(&ms, T0 + SEC(10));
  CHECK(tern_hub_get_epoch(hub) == epoch, "down: same epoch");
  tu_events e = {0};
  tu_events_take(&e, hub);
  const tu_event *ev = tu_events_find(&e, TERN_EV_EXPIRED);
  CHECK(ev && ev->reason == TERN_DROP_EXPIRED && tu_event_id_is(ev, "short"),
        "down: EXPIRED for the message that expired while the hub was down");
  CHECK_INT(tu_info(hub, "k").dropped, 1, "down: counted as dropped");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = resume(hub, 0, epoch, &o, T0 + SEC(10));
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, 0), 1,
            "down: the receiver gets DROPPED(1, expired)");
  const wire_frame *m = tu_nth(&o, WIRE_MSG, 0, 0);
  CHECK(tu_msg_id_is(m, "kept"), "down: then the message that lives");
  /* Confirmed (an ACK past the notice): a second restart is quiet. */
  tu_ack(c, m ? m->u.msg.seq : 0, T0 + SEC(10));
  tern_hub_handle_expiry(hub, T0 + SEC(10));
  memstore_sync(&ms);
  crash(hub, &ms);
  tu_out_free(&o);
  hub = hub_on(&ms, T0 + SEC(11));
  tu_out_init(&o);
  c = resume(hub, 0, epoch, &o, T0 + SEC(11));
  CHECK_INT(tu_dropped(&o, 0, 0), 0, "down: a confirmed loss is not told "
                                     "again");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  tu_events_free(&e);
  memstore_free(&ms);
}

/* Issue 8, 1: losses not yet told, or told and not confirmed, when the hub
   crashed are told by the next one. */
static void test_untold_across_crash(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  uint64_t epoch = tern_hub_get_epoch(hub);
  pub_flags(hub, "e1", SEC(5), 0, T0);
  pub_flags(hub, "e2", SEC(5), 0, T0);
  tern_hub_handle_expiry(hub, T0 + SEC(6)); /* both expire, nobody told */
  memstore_sync(&ms);
  crash(hub, &ms);
  hub = hub_on(&ms, T0 + SEC(7));
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = resume(hub, 0, epoch, &o, T0 + SEC(7));
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, 0), 2,
            "untold: losses not told before the crash are told after it");
  /* Told, not confirmed: the crash comes before an ACK. */
  tern_hub_handle_expiry(hub, T0 + SEC(7));
  memstore_sync(&ms);
  crash(hub, &ms);
  tu_out_free(&o);
  hub = hub_on(&ms, T0 + SEC(8));
  tu_out_init(&o);
  c = resume(hub, 0, epoch, &o, T0 + SEC(8));
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, 0), 2,
            "untold: notices written but not confirmed are told again");
  /* Confirmed by an ACK past them: not told again. */
  pub_flags(hub, "after", 0, 0, T0 + SEC(8));
  tu_drain(&o, c, T0 + SEC(8));
  tu_ack(c, tu_max_seq(&o), T0 + SEC(8));
  tern_hub_handle_expiry(hub, T0 + SEC(8));
  memstore_sync(&ms);
  crash(hub, &ms);
  tu_out_free(&o);
  hub = hub_on(&ms, T0 + SEC(9));
  tu_out_init(&o);
  c = resume(hub, 0, epoch, &o, T0 + SEC(9));
  CHECK_INT(tu_dropped(&o, 0, 0), 0, "untold: confirmed losses stay told");
  /* Evictions count too. */
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  memstore_free(&ms);
}

/* Issue 8, 6: the monotonic clock starts again from 0 at the restart, the
   wall clock moved on by 30 s: TTLs and dedup windows keep their place. */
static void test_wallclock_restart(void) {
  const uint64_t wall = (uint64_t)1700000000 * TERN_SECONDS;
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(tern_hub_set_wallclock(hub, T0, wall), 0, "wall: set");
  CHECK_INT(tern_hub_set_store(hub, &memstore_methods, &ms, T0), 0,
            "wall: store");
  pub_flags(hub, "ttl", SEC(60), 0, T0);      /* until wall + 60 s  */
  tern_hub_flush(hub);                        /* dedup until + 120 s */
  memstore_sync(&ms);
  crash(hub, &ms);

  tern_tstamp now = SEC(5); /* a new boot */
  hub = tu_hub(&s);
  CHECK_INT(tern_hub_set_wallclock(hub, now, wall + SEC(30)), 0,
            "wall: set after the restart");
  CHECK_INT(tern_hub_set_store(hub, &memstore_methods, &ms, now), 0,
            "wall: store after the restart");
  CHECK_INT(tu_info(hub, "k").pending, 1, "wall: the message is restored");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", now, &o);
  const wire_frame *m = tu_last(&o, WIRE_MSG);
  CHECK(m && m->u.msg.ttl_ms == 30000,
        "wall: 30 s of its 60 s are left (ttl_ms %llu)",
        m ? (unsigned long long)m->u.msg.ttl_ms : 0ULL);
  tern_conn_del(c); /* pending again */
  tern_hub_handle_expiry(hub, now + SEC(29));
  CHECK_INT(tu_info(hub, "k").pending, 1, "wall: alive 29 s later");
  tern_hub_handle_expiry(hub, now + SEC(30));
  CHECK_INT(tu_info(hub, "k").pending, 0, "wall: expired 30 s later");
  CHECK_INT(pub_flags(hub, "ttl", 0, 0, now + SEC(89)), TERN_ERR_DUPLICATE,
            "wall: the dedup window runs on (89 s of 90 s left)");
  CHECK_INT(pub_flags(hub, "ttl", 0, 0, now + SEC(90)), 0,
            "wall: and ends on time");
  CHECK_INT(tern_hub_set_wallclock(NULL, now, wall), TERN_ERR_INVALID,
            "wall: NULL hub");
  CHECK_INT(tern_hub_set_wallclock(hub, now, 0), TERN_ERR_INVALID,
            "wall: wall time 0");
  tern_hub_del(hub);
  tu_out_free(&o);
  memstore_free(&ms);
}

/* A burst of losses rewrites the session's record waiting in the batch
   instead of adding one record per loss; the count survives a crash. */
static void test_loss_records_coalesce(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  s.max_pending = 1;
  s.overflow[TERN_PRIO_NORMAL] = TERN_OVERFLOW_REFUSE;
  tern_hub *hub = tu_hub(&s);
  if (tern_hub_set_store(hub, &memstore_methods, &ms, T0) != 0) {
    abort();
  }
  uint64_t epoch = tern_hub_get_epoch(hub);
  pub_flags(hub, "first", 0, 0, T0);
  tern_hub_flush(hub);
  size_t before = ms.records;
  char id[16];
  for (int i = 0; i < 100; ++i) {
    snprintf(id, sizeof(id), "r%d", i);
    pub_flags(hub, id, 0, TERN_MSG_VOLATILE, T0);
  }
  tern_hub_flush(hub);
  CHECK(ms.records - before <= 2,
        "coalesce: 100 refused publishes wrote %zu records",
        ms.records - before);
  memstore_sync(&ms);
  crash(hub, &ms);
  hub = tu_hub(&s);
  if (tern_hub_set_store(hub, &memstore_methods, &ms, T0 + SEC(1)) != 0) {
    abort();
  }
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = resume(hub, 0, epoch, &o, T0 + SEC(1));
  CHECK_INT(tu_dropped(&o, TERN_DROP_OVERFLOW, 0), 100,
            "coalesce: the restarted hub tells all 100 losses");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
  memstore_free(&ms);
}

int main(void) {
  test_restart_restores();
  test_crash_keeps_sync();
  test_later_store();
  test_store_failure();
  test_expired_and_acked_stay_gone();
  test_seqs_after_restart();
  test_collapse_restart();
  test_nomem();
  test_expired_while_down();
  test_untold_across_crash();
  test_wallclock_restart();
  test_loss_records_coalesce();
  return tap_done();
}
