/*
 * Tests of the host cookie (tern_msg_desc.cookie, layout V2): the hub
 * echoes it in every event about the message, so a host ties a
 * confirmation or a failure to the producer waiting for it without a table
 * of its own: PERSISTED (and PERSISTED with the error of a failed batch),
 * ACKED, EXPIRED, EVICTED (evicted, and refused at publish), COLLAPSED,
 * SENT, ACCEPTED.  Messages restored from a store have cookie 0, and so
 * do events that name no message (STORE_FAILED).
 */
#include "memstore.h"
#include "tap.h"
#include "testutil.h"

/* One event: what the cookie tests need of it. */
typedef struct cev {
  int type, reason;
  uint64_t seq, cookie;
  char id[TERN_MAX_ID + 1];
} cev;

typedef struct cevs {
  cev ev[256];
  size_t n;
} cevs;

static void take(cevs *e, tern_hub *hub) {
  tern_event ev;
  e->n = 0;
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (e->n == sizeof(e->ev) / sizeof(e->ev[0])) {
      continue;
    }
    cev *c = &e->ev[e->n++];
    memset(c, 0, sizeof(*c));
    c->type = ev.type;
    c->reason = ev.reason;
    c->seq = ev.seq;
    c->cookie = ev.cookie;
    if (ev.msg_idlen <= TERN_MAX_ID && ev.msg_idlen) {
      memcpy(c->id, ev.msg_id, ev.msg_idlen);
    }
  }
}

/* find: the first event of |type| about message |id| (NULL: any). */
static const cev *find(const cevs *e, int type, const char *id) {
  for (size_t i = 0; i < e->n; ++i) {
    if (e->ev[i].type == type && (!id || strcmp(e->ev[i].id, id) == 0)) {
      return &e->ev[i];
    }
  }
  return NULL;
}

static int pub(tern_hub *hub, const char *key, const char *id, uint64_t cookie,
               uint32_t flags, tern_duration ttl, const char *ck,
               size_t payloadlen, tern_tstamp now) {
  static uint8_t payload[4096];
  memset(payload, 'x', sizeof(payload));
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)id;
  d.idlen = strlen(id);
  d.priority = TERN_PRIO_NORMAL;
  d.payload = payload;
  d.payloadlen = payloadlen;
  d.flags = flags;
  d.ttl = ttl;
  d.cookie = cookie;
  if (ck) {
    d.collapse_key = (const uint8_t *)ck;
    d.collapse_keylen = strlen(ck);
  }
  return tern_hub_publish(hub, (const uint8_t *)key, strlen(key), &d, now,
                          NULL);
}

#define C1 UINT64_C(0x1111222233334444)
#define C2 UINT64_C(0xfeedfacecafebeef)
#define C3 UINT64_C(3)

/* PERSISTED carries the cookie; a failed batch gives STORE_FAILED (cookie
   0: it names no message) and, per SYNC message, PERSISTED with the error
   and the cookie. */
static void test_persisted(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  CHECK_INT(tern_hub_set_store(hub, &memstore_methods, &ms, T0), 0, "store");
  CHECK_INT(pub(hub, "k", "a", C1, TERN_MSG_SYNC, 0, NULL, 10, T0), 0,
            "SYNC publish a");
  CHECK_INT(pub(hub, "k", "b", C2, TERN_MSG_SYNC, 0, NULL, 10, T0), 0,
            "SYNC publish b");
  CHECK_INT(pub(hub, "k", "c", 0, TERN_MSG_SYNC, 0, NULL, 10, T0), 0,
            "SYNC publish c without a cookie");
  tern_hub_flush(hub);
  cevs e;
  take(&e, hub);
  const cev *a = find(&e, TERN_EV_PERSISTED, "a");
  const cev *b = find(&e, TERN_EV_PERSISTED, "b");
  const cev *c = find(&e, TERN_EV_PERSISTED, "c");
  CHECK(a && a->reason == 0 && a->cookie == C1, "PERSISTED a has cookie C1");
  CHECK(b && b->reason == 0 && b->cookie == C2, "PERSISTED b has cookie C2");
  CHECK(c && c->cookie == 0, "PERSISTED c has cookie 0");

  ms.fail = 1;
  CHECK_INT(pub(hub, "k", "d", C3, TERN_MSG_SYNC, 0, NULL, 10, T0), 0,
            "SYNC publish d");
  CHECK_INT(pub(hub, "k", "e", C1, 0, 0, NULL, 10, T0), 0,
            "ASYNC publish e in the same batch");
  CHECK_INT(tern_hub_flush(hub), TERN_ERR_STORE, "the batch fails");
  take(&e, hub);
  const cev *f = find(&e, TERN_EV_STORE_FAILED, NULL);
  const cev *d = find(&e, TERN_EV_PERSISTED, "d");
  CHECK(f && f->cookie == 0, "STORE_FAILED names no message: cookie 0");
  CHECK(d && d->reason == TERN_ERR_STORE && d->cookie == C3,
        "PERSISTED d with the error carries d's cookie");
  CHECK(!find(&e, TERN_EV_PERSISTED, "e"), "no PERSISTED for ASYNC e");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* ACCEPTED, SENT and ACKED (trace) carry it, for pooled (small) and
   allocated (large) messages alike. */
static void test_acked(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(pub(hub, "k", "small", C1, 0, 0, NULL, 10, T0), 0, "small");
  CHECK_INT(pub(hub, "k", "large", C2, 0, 0, NULL, 3000, T0), 0, "large");
  CHECK_INT(pub(hub, "k", "none", 0, 0, 0, NULL, 3000, T0), 0,
            "large, no cookie");
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  tu_drain(&o, c, T0);
  cevs e;
  take(&e, hub);
  const cev *acc = find(&e, TERN_EV_ACCEPTED, "small");
  const cev *sent = find(&e, TERN_EV_SENT, "large");
  CHECK(acc && acc->cookie == C1, "ACCEPTED carries the cookie");
  CHECK(sent && sent->cookie == C2, "SENT carries the cookie");
  CHECK_INT(tu_count(&o, WIRE_MSG, 0), 3, "three messages sent");
  static char big[3001];
  memset(big, 'x', 3000);
  CHECK(tu_msg_payload_is(tu_nth(&o, WIRE_MSG, 0, 0), "xxxxxxxxxx") &&
            tu_msg_payload_is(tu_nth(&o, WIRE_MSG, 0, 1), big),
        "the cookie is not on the wire: the payloads are intact");
  tu_ack(c, tu_max_seq(&o), T0);
  take(&e, hub);
  const cev *s1 = find(&e, TERN_EV_ACKED, "small");
  const cev *s2 = find(&e, TERN_EV_ACKED, "large");
  const cev *s3 = find(&e, TERN_EV_ACKED, "none");
  CHECK(s1 && s1->cookie == C1, "ACKED small has cookie C1");
  CHECK(s2 && s2->cookie == C2, "ACKED large has cookie C2");
  CHECK(s3 && s3->cookie == 0, "ACKED none has cookie 0");
  tern_conn_del(c);
  tu_out_free(&o);
  tern_hub_del(hub);
}

/* EXPIRED, EVICTED (evicted and refused), COLLAPSED carry it. */
static void test_discards(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  s.max_pending = 2;
  s.overflow[TERN_PRIO_NORMAL] = TERN_OVERFLOW_EVICT;
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(pub(hub, "k", "ttl", C1, 0, SEC(1), NULL, 10, T0), 0, "ttl 1 s");
  tern_hub_handle_expiry(hub, T0 + SEC(2));
  cevs e;
  take(&e, hub);
  const cev *x = find(&e, TERN_EV_EXPIRED, "ttl");
  CHECK(x && x->cookie == C1, "EXPIRED carries the cookie");

  CHECK_INT(pub(hub, "k", "old", C2, 0, 0, "ck", 10, T0 + SEC(2)), 0, "old");
  CHECK_INT(pub(hub, "k", "new", C3, 0, 0, "ck", 10, T0 + SEC(2)), 0,
            "new, same collapse key");
  take(&e, hub);
  const cev *col = find(&e, TERN_EV_COLLAPSED, "old");
  CHECK(col && col->cookie == C2, "COLLAPSED carries the replaced one's "
                                  "cookie");

  CHECK_INT(pub(hub, "k", "p2", C1, 0, 0, NULL, 10, T0 + SEC(2)), 0, "p2");
  CHECK_INT(pub(hub, "k", "p3", C2, 0, 0, NULL, 10, T0 + SEC(2)), 0,
            "p3 evicts the oldest");
  take(&e, hub);
  const cev *ev = find(&e, TERN_EV_EVICTED, "new");
  CHECK(ev && ev->cookie == C3, "EVICTED carries the evicted one's cookie");
  tern_hub_del(hub);

  s.overflow[TERN_PRIO_NORMAL] = TERN_OVERFLOW_REFUSE;
  hub = tu_hub(&s);
  pub(hub, "k", "r1", 0, 0, 0, NULL, 10, T0);
  pub(hub, "k", "r2", 0, 0, 0, NULL, 10, T0);
  CHECK_INT(pub(hub, "k", "r3", C1, 0, 0, NULL, 10, T0), TERN_ERR_FULL,
            "r3 is refused");
  take(&e, hub);
  ev = find(&e, TERN_EV_EVICTED, "r3");
  CHECK(ev && ev->cookie == C1, "the refusal's EVICTED carries the cookie");
  tern_hub_del(hub);
}

/* The cookie is not stored: after a restart the message's events say 0. */
static void test_restored(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = tu_hub(&s);
  tern_hub_set_store(hub, &memstore_methods, &ms, T0);
  CHECK_INT(pub(hub, "k", "m", C1, TERN_MSG_SYNC, SEC(10), NULL, 10, T0), 0,
            "SYNC publish with a cookie");
  tern_hub_flush(hub);
  tern_hub_del(hub);
  hub = tu_hub(&s);
  CHECK_INT(tern_hub_set_store(hub, &memstore_methods, &ms, T0 + SEC(1)), 0,
            "restart");
  cevs e;
  take(&e, hub);
  tern_hub_handle_expiry(hub, T0 + SEC(20));
  take(&e, hub);
  const cev *x = find(&e, TERN_EV_EXPIRED, "m");
  CHECK(x && x->cookie == 0, "a restored message's EXPIRED has cookie 0");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* Every allocation of a SYNC publish with a cookie fails in turn: the call
   returns NOMEM and changes nothing, or succeeds and its PERSISTED carries
   the cookie; nothing leaks. */
static void test_nomem(void) {
  int bad = 0, succeeded = 0;
  for (long n = 1; n < 200 && !succeeded; ++n) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    tern_mem mem = tu_alloc_mem(&a);
    tern_settings s = tu_settings();
    tern_hub *hub = NULL;
    memstore ms;
    memset(&ms, 0, sizeof(ms));
    if (tern_hub_new(&hub, &s, &mem) != 0 ||
        tern_hub_set_store(hub, &memstore_methods, &ms, T0) != 0) {
      ++bad;
      break;
    }
    a.fail_at = a.calls + n;
    int rv = pub(hub, "k", "a", C1, TERN_MSG_SYNC, 0, NULL, 500, T0);
    a.fail_at = 0;
    if (rv == 0) {
      succeeded = 1;
      tern_hub_flush(hub);
      cevs e;
      take(&e, hub);
      const cev *p = find(&e, TERN_EV_PERSISTED, "a");
      bad += !(p && p->cookie == C1);
    } else {
      bad += rv != TERN_ERR_NOMEM || tu_stats(hub).messages != 0;
    }
    tern_hub_del(hub);
    memstore_free(&ms);
    bad += a.outstanding != 0;
    bad += tu_alloc_finish(&a) != 0;
  }
  CHECK(succeeded, "the publish succeeds once allocations stop failing");
  CHECK_INT(bad, 0, "each failed allocation gives NOMEM, nothing held, no "
                    "leak; the success carries the cookie");
}

int main(void) {
  test_persisted();
  test_nomem();
  test_acked();
  test_discards();
  test_restored();
  return tap_done();
}
