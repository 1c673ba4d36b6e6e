/*
 * Regressions found by the simulator, each cut down to the few API calls
 * that show it (TAP, suite 'sim').  Every case names the seed that found
 * it; `build/tests/sim/sim --seed N --verbose` replays the original.
 */
#include <stdio.h>
#include <string.h>

#include "../memstore.h"
#include "../tap.h"
#include "../testutil.h"

static char pbuf[256];

/*
 * Seed 171: a resume acked messages the receiver never got.
 *
 * The app's connection A died silently with m1 in flight.  It reconnected
 * (B) while the hub still had A; m2 went out on B as seq 2 and reached the
 * app, then the host closed B before the ACK.  m2 went back and out again
 * on the stale A as seq 3; then A died too.  The app resumes with
 * last_seq 2: no held message carries seq 2 any more, and the only stream
 * holding messages at or below it is A's, so the hub took A for the app's
 * stream and acked m1, which the app never received.
 */
static void test_resume_other_stream(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  uint64_t epoch = tern_hub_get_epoch(hub);
  tu_out oa, ob, oc;
  tu_out_init(&oa);
  tu_out_init(&ob);
  tu_out_init(&oc);

  tern_conn *a = tu_connect(hub, "k", T0, &oa);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m1", "m1", T0);
  tu_drain(&oa, a, T0); /* m1, seq 1: lost on the dead path */

  tern_conn *b = tu_connect(hub, "k", T0 + SEC(1), &ob);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m2", "m2", T0 + SEC(1));
  tu_drain(&ob, b, T0 + SEC(1)); /* m2, seq 2: the app gets it */
  CHECK_INT(tu_max_seq(&ob), 2, "m2 went out on B with seq 2");
  tern_conn_goaway(b, TERN_GOAWAY_REPLACED, 0, T0 + SEC(1));
  tu_drain(&ob, b, T0 + SEC(1));
  tern_conn_del(b);
  tu_drain(&oa, a, T0 + SEC(1)); /* m2 again, seq 3, on the stale A */
  CHECK_INT(tu_max_seq(&oa), 3, "m2 went out again on A with seq 3");
  tern_conn_del(a);

  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0 + SEC(2));
  tu_hello(c, "k", 2, epoch, 0, NULL, T0 + SEC(2));
  tu_drain(&oc, c, T0 + SEC(2));
  CHECK(strcmp(tu_payloads(&oc, 0, pbuf, sizeof(pbuf)), "m1 m2") == 0,
        "resume with last_seq 2 (sent on B) acks nothing of A: m1 m2 again");
  tap_diag("got \"%s\"", pbuf);
  CHECK_INT(tu_stats(hub).acked, 0, "nothing acked");

  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&oa);
  tu_out_free(&ob);
  tu_out_free(&oc);
}


/*
 * Seeds 82 and 149: with ack_timeout and max_deliver 0, a message whose ACK
 * takes longer than ack_timeout to come back is never acknowledged.
 *
 * Each timeout sends the message again with a new seq on the same ordered
 * connection.  The ACK for the copy that did arrive names the old seq, and
 * the hub only compares ACKs with the newest seq, so the ACK is ignored;
 * by the time the ACK for the new copy arrives, the timeout has sent a
 * third.  On a slow link (seed 82: a 5.9 KB message, a 1.9 KB window and
 * 260 ms latency) this never ends: the session holds the message forever
 * and sends it every ack_timeout.
 */
static void test_ack_timeout_livelock(void) {
  tern_settings s = tu_settings();
  s.ack_timeout = SEC(1);
  s.max_deliver = 0;
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m1", "m1", T0);
  tu_drain(&o, c, T0);
  uint64_t got = tu_max_seq(&o); /* the copy the app received */
  tern_tstamp t = T0;
  for (int round = 0; round < 5; ++round) {
    /* The ACK is on its way when the timeout fires. */
    t += SEC(1);
    tern_hub_handle_expiry(hub, t);
    tu_drain(&o, c, t);
    tu_ack(c, got, t + MS(500));
    got = tu_max_seq(&o);
  }
  CHECK(tu_max_seq(&o) > 1, "the timeout sent m1 again");
  CHECK(tu_stats(hub).acked == 1,
        "m1 is acknowledged: the ack timeout backs off past the round trip");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/*
 * Every seed with path deaths (run with --strict-dropped, e.g. seed 2): a
 * DROPPED notice written on a connection whose path died is lost for good.
 *
 * The hub clears a session's count of losses once it has written a
 * DROPPED frame, whether or not the frame reaches the app; the messages
 * that were in flight on that connection come back and are sent again,
 * the notice does not.  The app then never learns that its copy of the
 * stream has a hole, which is the one thing DROPPED is for.  This happens
 * whenever a loss is told to a connection that is dead but not yet
 * detected, a third of all notices in a 5,000-seed run.
 */
static void test_dropped_lost_with_conn(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out oa, ob;
  tu_out_init(&oa);
  tu_out_init(&ob);
  tern_conn *a = tu_connect(hub, "k", T0, &oa);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "m1", NULL, 0, "m1", T0, NULL);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "m2", NULL, SEC(1), "m2", T0,
              NULL);
  tern_hub_handle_expiry(hub, T0 + SEC(1)); /* m2 expires, unsent */
  tu_drain(&oa, a, T0 + SEC(1)); /* DROPPED(1), m1: the path is dead */
  CHECK_INT(tu_dropped(&oa, TERN_DROP_EXPIRED, 0), 1,
            "DROPPED(1, EXPIRED) went out on A");
  tern_conn_del(a); /* liveness found A dead */
  tern_conn *b = tu_connect(hub, "k", T0 + SEC(2), &ob);
  tu_drain(&ob, b, T0 + SEC(2));
  CHECK(strcmp(tu_payloads(&ob, 0, pbuf, sizeof(pbuf)), "m1") == 0,
        "m1, lost with A, is sent again on B");
  CHECK(tu_dropped(&ob, TERN_DROP_EXPIRED, 0) == 1,
        "the DROPPED notice lost with A is told again on B");
  tern_conn_del(b);
  tern_hub_del(hub);
  tu_out_free(&oa);
  tu_out_free(&ob);
}

/*
 * Seed 3108: an ack timeout made a message pending again and told only the
 * connection it timed out on, although another connection of the session
 * had room to send it; tern_hub_next_ready never returned that one.
 *
 * When the connection told is a stale one (its path died, the hub does not
 * know yet), a host that writes what tern_hub_next_ready returns sends the
 * message into the dead path again and again, up to max_deliver, while
 * the app's live connection sits idle.
 */
static void test_ack_timeout_tells_every_conn(void) {
  tern_settings s = tu_settings();
  s.inflight_window = 1;
  s.ack_timeout = SEC(1);
  tern_hub *hub = tu_hub(&s);
  tu_out oa, ob;
  tu_out_init(&oa);
  tu_out_init(&ob);
  tern_conn *a = tu_connect(hub, "k", T0, &oa);
  tern_conn *b = tu_connect(hub, "k", T0, &ob);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m1", "m1", T0);
  tu_drain(&oa, a, T0); /* m1 on A, whose path is dead */
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m2", "m2", T0);
  tu_drain(&ob, b, T0); /* m2 on B, the live one */
  tu_ack(b, tu_max_seq(&ob), T0 + MS(100));
  while (tern_hub_next_ready(hub)) {
  }
  tern_hub_handle_expiry(hub, T0 + SEC(1)); /* m1 times out on A */
  int got_a = 0, got_b = 0;
  for (tern_conn *c; (c = tern_hub_next_ready(hub));) {
    got_a |= c == a;
    got_b |= c == b;
  }
  CHECK(tern_conn_want_write(b), "B can send m1 now");
  CHECK(got_b, "tern_hub_next_ready returns B");
  tap_diag("ready: A %d, B %d", got_a, got_b);
  tern_conn_del(a);
  tern_conn_del(b);
  tern_hub_del(hub);
  tu_out_free(&oa);
  tu_out_free(&ob);
}

/*
 * Seed 104935 (a soak seed): a resume acked messages of a newer session
 * with a seq the app got from an older one.
 *
 * The app's session expired while it was away and a publish created it
 * again; seqs start at 1 in the new session and the hub's epoch is the
 * same, so nothing tells the app's last_seq (6, from the old session)
 * from a seq of the new one.  The app's first connection to the new
 * session died before its WELCOME arrived, after the hub had sent seqs
 * 1..7 on it; when the app came back with last_seq 6, the hub found seq 6
 * among the new session's messages and acked 1..6 of them, none of which
 * the app ever received.
 */
static void test_resume_across_sessions(void) {
  tern_settings s = tu_settings();
  s.session_ttl = SEC(10);
  tern_hub *hub = tu_hub(&s);
  uint64_t epoch = tern_hub_get_epoch(hub);
  tu_out oa, ob, oc;
  tu_out_init(&oa);
  tu_out_init(&ob);
  tu_out_init(&oc);
  char id[8];

  tern_conn *a = tu_connect(hub, "k", T0, &oa);
  for (int i = 1; i <= 6; ++i) {
    snprintf(id, sizeof(id), "o%d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, id, id, T0);
  }
  tu_drain(&oa, a, T0);
  tu_ack(a, 6, T0); /* the app has seq 6 of the old session */
  tern_conn_del(a);
  tern_hub_handle_expiry(hub, T0 + SEC(11)); /* the session expires */
  CHECK(tu_info(hub, "k").keylen == 0, "the session expired");

  for (int i = 1; i <= 7; ++i) {
    snprintf(id, sizeof(id), "n%d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, id, id, T0 + SEC(12));
  }
  tern_conn *b = NULL;
  tern_conn_new(&b, hub, T0 + SEC(12));
  tu_hello(b, "k", 6, epoch, 0, NULL, T0 + SEC(12));
  tu_drain(&ob, b, T0 + SEC(12)); /* WELCOME, n1..n7: the path is dead */
  tern_conn_del(b);

  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0 + SEC(13));
  tu_hello(c, "k", 6, epoch, 0, NULL, T0 + SEC(13));
  tu_drain(&oc, c, T0 + SEC(13));
  CHECK(tu_count(&oc, WIRE_MSG, 0) == 7,
        "last_seq 6 of the expired session acks nothing of the new one");
  tap_diag("got \"%s\"", tu_payloads(&oc, 0, pbuf, sizeof(pbuf)));

  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&oa);
  tu_out_free(&ob);
  tu_out_free(&oc);
}

/* ---- found with --hub-restart ------------------------------------------- */

/* A hub over |ms| (tests/memstore.h), as a restarted process makes it. */
static tern_hub *store_hub(memstore *ms, tern_tstamp now) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  int rv = tern_hub_set_store(hub, &memstore_methods, ms, now);
  if (rv != 0) {
    fprintf(stderr, "regress: tern_hub_set_store: %s\n", tern_strerror(rv));
    abort();
  }
  return hub;
}

/* The process dies: what the store did not sync is lost, and the last
   flush of tern_hub_del never happens. */
static void crash(tern_hub *hub, memstore *ms) {
  memstore_crash(ms);
  tern_hub_del(hub);
  memstore_restart(ms);
}

/* Publishes |id| to "k", sends it on a new connection and acks it; the
   batches are synced.  Returns the seq it went out with. */
static uint64_t deliver_one(tern_hub *hub, memstore *ms, const char *id,
                            tern_tstamp now) {
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", now, &o);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, id, id, now);
  tu_drain(&o, c, now);
  uint64_t seq = tu_max_seq(&o);
  tu_ack(c, seq, now);
  tern_hub_handle_expiry(hub, now);
  memstore_sync(ms);
  tern_conn_del(c);
  tern_hub_handle_expiry(hub, now);
  memstore_sync(ms);
  tu_out_free(&o);
  return seq;
}

/*
 * Seed 1 (tests/sim/sim --hub-restart; 14425 of the first 20000 seeds fail
 * this way, and seed 14219 loses messages: a resume acks seqs the app got
 * from the hub before, which now name new messages): a session restored
 * twice hands out seqs it used before.
 *
 * A session's "S" record reserves seqs in blocks, renewed when next_seq
 * crosses a block boundary; a restored session starts one block past its
 * stored reservation.  But restoring writes no new reservation, so the
 * seqs the restored session hands out (3073 and up, for a session created
 * at seq 1) are covered by nothing durable: after the next crash the
 * session starts from the same stored reservation and sends 3073 again.
 * A receiver that resumed with last_seq 3074 then gets seq 3073 and, its
 * seqs going backwards, RESYNCs as if its session had expired.
 */
static void test_restore_renews_reservation(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = store_hub(&ms, T0);
  deliver_one(hub, &ms, "a", T0);
  crash(hub, &ms);
  hub = store_hub(&ms, T0 + SEC(1));
  uint64_t used = deliver_one(hub, &ms, "b", T0 + SEC(1));
  tap_diag("the restored session sent seq %llu", (unsigned long long)used);
  crash(hub, &ms);
  hub = store_hub(&ms, T0 + SEC(2));
  uint64_t next = tu_info(hub, "k").next_seq;
  tap_diag("restored again, its next seq is %llu", (unsigned long long)next);
  CHECK(next > used,
        "a session restored a second time continues above the seqs it "
        "used after the first restart");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/*
 * Seeds 512, 790, 928 (tests/sim/sim --hub-restart; 40 of the first 20000
 * seeds): a producer's retry within dedup_window is accepted after a second
 * restart.
 *
 * Message and dedup records are keyed by the message's serial, and a new
 * hub continues at the highest serial of the message records it loaded,
 * plus one.  Dedup records outlive their messages (an id stays in its
 * window after its message was acked), so their serials are not counted:
 * the new hub hands one out again, the next message's dedup record
 * overwrites the old id's (the old id is forgotten at the next restart),
 * and when the old entry's window passes its deletion removes the new
 * id's record.
 */
static void test_dedup_serial_reused(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = store_hub(&ms, T0);
  deliver_one(hub, &ms, "a", T0); /* acked: only a's dedup record stays */
  tern_hub_del(hub);
  memstore_sync(&ms);
  hub = store_hub(&ms, T0 + SEC(1));
  CHECK_INT(tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a2", T0 + SEC(1)),
            TERN_ERR_DUPLICATE, "after a restart a retry of a is refused");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "b", "b", T0 + SEC(2));
  tern_hub_handle_expiry(hub, T0 + SEC(2));
  tern_hub_del(hub);
  memstore_sync(&ms);
  tap_diag("the store holds %zu dedup records (a's and b's: 2)",
           memstore_count(&ms, 'D'));
  hub = store_hub(&ms, T0 + SEC(3));
  CHECK(tu_pub(hub, "k", TERN_PRIO_NORMAL, "a", "a3", T0 + SEC(3)) ==
                 TERN_ERR_DUPLICATE,
             "after a second restart a retry of a is still refused");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/*
 * Seeds 2643, 2901, 4111 (tests/sim/sim --hub-restart; 22 of the first
 * 20000 seeds): after a restart the app gets a message older than one it
 * already had with the same collapse key.
 *
 * A publish that supersedes an in-flight message of its collapse key only
 * flags it (it is discarded when it comes back, never sent again), but its
 * store record stays until then.  If the newer message leaves first and
 * durably (acked on the live connection while the old one sits on a stale
 * one, or expired while the hub was down) a restarted hub restores the old
 * one and sends it.
 */
static void test_superseded_comes_back(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = store_hub(&ms, T0);
  tu_out oa, ob;
  tu_out_init(&oa);
  tu_out_init(&ob);
  tern_conn *a = tu_connect(hub, "k", T0, &oa);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "old", "score", 0, "1-0", T0, NULL);
  tu_drain(&oa, a, T0); /* old in flight on A, whose path is dead */
  tern_conn *b = tu_connect(hub, "k", T0 + SEC(1), &ob);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "new", "score", 0, "2-0",
              T0 + SEC(1), NULL);
  tu_drain(&ob, b, T0 + SEC(1));
  CHECK(strcmp(tu_payloads(&ob, 0, pbuf, sizeof(pbuf)), "2-0") == 0,
        "the app gets the newer score on B");
  tu_ack(b, tu_max_seq(&ob), T0 + SEC(1));
  tern_hub_handle_expiry(hub, T0 + SEC(1));
  memstore_sync(&ms);
  crash(hub, &ms); /* the connections go with the hub */
  tu_out_free(&oa);
  tu_out_free(&ob);
  hub = store_hub(&ms, T0 + SEC(2));
  tu_out_init(&oa);
  a = tu_connect(hub, "k", T0 + SEC(2), &oa);
  tu_drain(&oa, a, T0 + SEC(2));
  tap_diag("after the restart the app gets \"%s\"",
           tu_payloads(&oa, 0, pbuf, sizeof(pbuf)));
  CHECK(tu_count(&oa, WIRE_MSG, 0) == 0,
             "a message superseded by one the app acked never comes back");
  tern_conn_del(a);
  tern_hub_del(hub);
  tu_out_free(&oa);
  memstore_free(&ms);
}

/*
 * Seed 1 (tests/sim/sim --hub-restart, built with ASan): tern_hub_del
 * writes freed memory.
 *
 * For a connection the host did not delete, tern_hub_del frees the
 * connection's aux block and then detaches it from its session; detaching
 * now hands DROPPED notices written on it but not yet confirmed back to
 * the session, reading and clearing them in the freed aux block.  Any hub
 * deleted with a connection open that told a loss is affected (a host
 * that shuts down without deleting its connections first, or a crash
 * test); the simulator's own teardown deletes connections first, so only
 * the hub restarts reach it.
 */
static void test_hub_del_open_conn_told(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, &mem), 0, "hub with a checking allocator");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_pub_full(hub, "k", TERN_PRIO_NORMAL, "m1", NULL, SEC(1), "m1", T0, NULL);
  tern_hub_handle_expiry(hub, T0 + SEC(1)); /* m1 expires unsent */
  tu_drain(&o, c, T0 + SEC(1));
  CHECK_INT(tu_dropped(&o, TERN_DROP_EXPIRED, 0), 1,
            "DROPPED(1, EXPIRED) went out, not yet confirmed by an ACK");
  tern_hub_del(hub); /* the connection is still open: the hub frees it */
  long corrupted = tu_alloc_finish(&a);
  CHECK(corrupted == 0,
             "tern_hub_del with an open connection writes no freed memory");
  tap_diag("%ld freed blocks were written after free", corrupted);
  tu_out_free(&o);
}

int main(void) {
  test_resume_other_stream();
  test_ack_timeout_livelock();
  test_dropped_lost_with_conn();
  test_ack_timeout_tells_every_conn();
  test_resume_across_sessions();
  test_restore_renews_reservation();
  test_dedup_serial_reused();
  test_superseded_comes_back();
  test_hub_del_open_conn_told();
  return tap_done();
}
