/*
 * Tests of the hub as a host sees it first: the settings defaults and their
 * validation by tern_hub_new, the epoch, the allocator hook, and the small
 * static functions (tern_strerror, tern_err_is_fatal, tern_version).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

static void test_defaults(void) {
  tern_settings s;
  memset(&s, 0xa5, sizeof(s));
  tern_settings_default(&s);
  CHECK_INT(s.version, TERN_SETTINGS_VERSION, "default version");
  CHECK_INT(s.max_payload, 1024 * 1024, "default max_payload 1 MiB");
  CHECK_INT(s.max_sessions, 0, "default max_sessions unlimited");
  CHECK_INT(s.max_conns, 10, "default max_conns 10");
  CHECK_INT(s.inflight_window, 256, "default inflight_window 256");
  CHECK_INT(s.max_pending, 10000, "default max_pending 10000");
  CHECK_INT(s.max_pending_bytes, 64 * 1024 * 1024,
            "default max_pending_bytes 64 MiB");
  CHECK(s.overflow[0] == TERN_OVERFLOW_EVICT &&
            s.overflow[1] == TERN_OVERFLOW_EVICT &&
            s.overflow[2] == TERN_OVERFLOW_EVICT,
        "default overflow EVICT for every priority");
  CHECK(s.retry_after == SEC(1), "default retry_after 1 s");
  CHECK(s.default_ttl == 0, "default default_ttl: never expires");
  CHECK(s.heartbeat_interval == SEC(4), "default heartbeat_interval 4 s");
  CHECK(s.liveness_timeout == SEC(7), "default liveness_timeout 7 s");
  CHECK(s.max_heartbeat == SEC(300), "default max_heartbeat 5 min");
  CHECK(s.session_ttl == SEC(24 * 3600), "default session_ttl 24 h");
  CHECK(s.dedup_window == SEC(120), "default dedup_window 2 min");
  CHECK(s.ack_timeout == 0, "default ack_timeout off");
  CHECK_INT(s.max_deliver, 5, "default max_deliver 5");
  CHECK_INT(s.max_events, 65536, "default max_events 65536");
  CHECK(s.seed == 0 && s.trace == 0 && s.hello_accept == 0,
        "default seed, trace, hello_accept 0");
  CHECK_INT(s.max_pool_bytes, 1024 * 1024, "default max_pool_bytes 1 MiB");

  /* The defaults themselves make a valid hub, as does NULL settings. */
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, NULL), 0, "hub from defaults");
  tern_hub_del(hub);
  hub = NULL;
  CHECK_INT(tern_hub_new(&hub, NULL, NULL), 0, "hub from NULL settings");
  CHECK(hub != NULL, "hub stored in *phub");
  tern_hub_del(hub);
}

/* expect_invalid: tern_hub_new refuses |s|, allocates nothing and leaves
 *phub alone. */
static void expect_invalid(const tern_settings *s, const char *what) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_hub *hub = (tern_hub *)&a; /* a sentinel that must stay */
  int rv = tern_hub_new(&hub, s, &mem);
  char buf[160];
  snprintf(buf, sizeof(buf), "tern_hub_new INVALID: %s", what);
  CHECK_INT(rv, TERN_ERR_INVALID, buf);
  snprintf(buf, sizeof(buf), "INVALID leaves *phub and allocates nothing: %s",
           what);
  CHECK(hub == (tern_hub *)&a && a.outstanding == 0, "%s", buf);
  if (rv == 0 && hub != (tern_hub *)&a) {
    tern_hub_del(hub);
  }
  tu_alloc_finish(&a);
}

static void test_validation(void) {
  tern_settings base = tu_settings(), s;

  CHECK_INT(tern_hub_new(NULL, &base, NULL), TERN_ERR_INVALID,
            "tern_hub_new(NULL phub)");

#define BAD(field, value, what)                                                \
  do {                                                                         \
    s = base;                                                                  \
    s.field = value;                                                           \
    expect_invalid(&s, what);                                                  \
  } while (0)

  BAD(version, 0, "version 0");
  BAD(version, TERN_SETTINGS_VERSION + 1, "version from the future");
  BAD(max_payload, 0, "max_payload 0");
  BAD(max_conns, 0, "max_conns 0");
  BAD(inflight_window, 0, "inflight_window 0");
  BAD(max_pending, 0, "max_pending 0");
  BAD(max_pending_bytes, 0, "max_pending_bytes 0");
  BAD(max_events, 0, "max_events 0");
  BAD(session_ttl, 0, "session_ttl 0");
  BAD(overflow[0], 3, "overflow[LOW] unknown rule");
  BAD(overflow[2], 0xff, "overflow[HIGH] unknown rule");
  BAD(liveness_timeout, base.heartbeat_interval,
      "liveness_timeout equal to heartbeat_interval");
  BAD(liveness_timeout, base.heartbeat_interval - 1,
      "liveness_timeout below heartbeat_interval");
  BAD(heartbeat_interval, 0, "heartbeat_interval 0");
  BAD(max_heartbeat, base.heartbeat_interval - 1,
      "max_heartbeat below heartbeat_interval");
#undef BAD

  /* Incomplete allocators. */
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  for (int i = 0; i < 4; ++i) {
    tern_mem m = tu_alloc_mem(&a);
    const char *what = "";
    switch (i) {
    case 0:
      m.malloc = NULL;
      what = "tern_mem without malloc";
      break;
    case 1:
      m.free = NULL;
      what = "tern_mem without free";
      break;
    case 2:
      m.calloc = NULL;
      what = "tern_mem without calloc";
      break;
    default:
      m.realloc = NULL;
      what = "tern_mem without realloc";
      break;
    }
    tern_hub *hub = NULL;
    CHECK_INT(tern_hub_new(&hub, &base, &m), TERN_ERR_INVALID, what);
    CHECK(hub == NULL, "incomplete tern_mem leaves *phub NULL");
  }
  CHECK_INT(a.calls, 0, "no allocation for an incomplete tern_mem");

  /* Zeros that mean "off" or "unlimited" are valid. */
  s = base;
  s.max_sessions = 0;
  s.dedup_window = 0;
  s.ack_timeout = 0;
  s.max_deliver = 0;
  s.default_ttl = 0;
  s.seed = 0;
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, NULL), 0,
            "zero max_sessions, dedup_window, ack_timeout, max_deliver ok");
  tern_hub_del(hub);

  /* Just above the liveness bound is fine. */
  s = base;
  s.liveness_timeout = s.heartbeat_interval + 1;
  hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, NULL), 0,
            "liveness_timeout just above heartbeat_interval ok");
  tern_hub_del(hub);

  /* The settings are copied: changing the struct later changes nothing. */
  s = base;
  s.max_conns = 1;
  hub = NULL;
  tern_hub_new(&hub, &s, NULL);
  s.max_conns = 5;
  tu_out o;
  tu_out_init(&o);
  tern_conn *c1 = tu_connect(hub, "k", T0, &o);
  tern_conn *c2 = NULL;
  tern_conn_new(&c2, hub, T0);
  CHECK_INT(tu_hello(c2, "k", 0, 0, 0, NULL, T0), TERN_ERR_LIMIT,
            "settings copied at tern_hub_new (max_conns stays 1)");
  tern_conn_del(c1);
  tern_conn_del(c2);
  tern_hub_del(hub);
  tu_out_free(&o);
}

static void test_epoch(void) {
  tern_settings s = tu_settings();
  tern_hub *a = tu_hub(&s), *b = tu_hub(&s);
  s.seed = 0x5eee;
  tern_hub *c = tu_hub(&s);
  s.seed = 0;
  tern_hub *d = tu_hub(&s);
  CHECK(tern_hub_get_epoch(a) != 0, "epoch nonzero");
  CHECK(tern_hub_get_epoch(d) != 0, "epoch nonzero with seed 0");
  CHECK(tern_hub_get_epoch(a) == tern_hub_get_epoch(b),
        "same seed gives the same epoch");
  CHECK(tern_hub_get_epoch(a) != tern_hub_get_epoch(c),
        "another seed gives another epoch");

  /* The same seed replays the same run: same generated ids, same bytes. */
  tern_publish_result ra, rb;
  tu_pub_full(a, "s", TERN_PRIO_NORMAL, NULL, NULL, 0, "x", T0, &ra);
  tu_pub_full(b, "s", TERN_PRIO_NORMAL, NULL, NULL, 0, "x", T0, &rb);
  CHECK_MEM(ra.id, ra.idlen, rb.id, rb.idlen,
            "same seed gives the same generated id");
  tu_out oa, ob;
  tu_out_init(&oa);
  tu_out_init(&ob);
  tern_conn *ca = tu_connect(a, "s", T0, &oa);
  tern_conn *cb = tu_connect(b, "s", T0, &ob);
  CHECK(oa.len > 0 && oa.len == ob.len &&
            memcmp(oa.stream, ob.stream, oa.len) == 0,
        "same seed gives the same bytes on the wire");
  const wire_frame *w = tu_nth(&oa, WIRE_WELCOME, 0, 0);
  CHECK(w && w->u.welcome.epoch == tern_hub_get_epoch(a),
        "WELCOME carries the hub epoch");
  tern_conn_del(ca);
  tern_conn_del(cb);
  tu_out_free(&oa);
  tu_out_free(&ob);

  /* Epochs differ across many seeds (a restart must change the epoch). */
  uint64_t seen[64];
  int distinct = 1;
  for (int i = 0; i < 64; ++i) {
    s.seed = (uint64_t)i + 1;
    tern_hub *h = tu_hub(&s);
    seen[i] = tern_hub_get_epoch(h);
    tern_hub_del(h);
    for (int j = 0; j < i; ++j) {
      if (seen[j] == seen[i] || seen[i] == 0) {
        distinct = 0;
      }
    }
  }
  CHECK(distinct, "64 seeds give 64 distinct nonzero epochs");

  tern_hub_del(a);
  tern_hub_del(b);
  tern_hub_del(c);
  tern_hub_del(d);
}

static void test_errors(void) {
  static const int codes[] = {
      TERN_ERR_INVALID,   TERN_ERR_NOMEM,  TERN_ERR_TOO_LARGE,
      TERN_ERR_DUPLICATE, TERN_ERR_FULL,   TERN_ERR_NOT_FOUND,
      TERN_ERR_PROTO,     TERN_ERR_CLOSED, TERN_ERR_STORE,
      TERN_ERR_LIMIT,     TERN_ERR_STATE};
  size_t n = sizeof(codes) / sizeof(codes[0]);
  int ok_known = 1, ok_distinct = 1;
  for (size_t i = 0; i < n; ++i) {
    const char *m = tern_strerror(codes[i]);
    if (!m || !m[0] || strcmp(m, "unknown error") == 0 ||
        strcmp(m, "success") == 0) {
      ok_known = 0;
      tap_diag("no message for %d", codes[i]);
    }
    for (size_t j = 0; j < i; ++j) {
      if (m && strcmp(m, tern_strerror(codes[j])) == 0) {
        ok_distinct = 0;
      }
    }
  }
  CHECK(ok_known, "tern_strerror has a message for every tern_error");
  CHECK(ok_distinct, "tern_strerror messages are distinct");
  CHECK(strcmp(tern_strerror(0), "success") == 0, "tern_strerror(0)");
  CHECK(strcmp(tern_strerror(-1), "unknown error") == 0,
        "tern_strerror(unknown negative)");
  CHECK(strcmp(tern_strerror(12345), "unknown error") == 0,
        "tern_strerror(unknown positive)");
  CHECK(strcmp(tern_strerror(TERN_ERR_INVALID + 1), "unknown error") == 0,
        "tern_strerror(next to a code)");

  /* The codes are stable: the values are part of the ABI. */
  CHECK(TERN_ERR_INVALID == -501 && TERN_ERR_NOMEM == -502 &&
            TERN_ERR_TOO_LARGE == -503 && TERN_ERR_DUPLICATE == -504 &&
            TERN_ERR_FULL == -505 && TERN_ERR_NOT_FOUND == -506 &&
            TERN_ERR_PROTO == -507 && TERN_ERR_CLOSED == -508 &&
            TERN_ERR_STORE == -509 && TERN_ERR_LIMIT == -510 &&
            TERN_ERR_STATE == -511,
        "error code values");

  int fatal_ok = 1;
  for (size_t i = 0; i < n; ++i) {
    int want = codes[i] == TERN_ERR_PROTO || codes[i] == TERN_ERR_CLOSED;
    if (!!tern_err_is_fatal(codes[i]) != want) {
      fatal_ok = 0;
      tap_diag("tern_err_is_fatal(%d) wrong", codes[i]);
    }
  }
  CHECK(fatal_ok, "tern_err_is_fatal: only PROTO and CLOSED are fatal");
  CHECK(!tern_err_is_fatal(0), "tern_err_is_fatal(0) is 0");
  CHECK(!tern_err_is_fatal(-1), "tern_err_is_fatal(unknown) is 0");
}

static void test_version(void) {
  const char *v = tern_version();
  CHECK(v && strcmp(v, TERN_VERSION) == 0, "tern_version matches TERN_VERSION");
  unsigned maj = 0, min = 0, pat = 0;
  int n = sscanf(TERN_VERSION, "%u.%u.%u", &maj, &min, &pat);
  CHECK(n == 3 && (maj << 16 | min << 8 | pat) == TERN_VERSION_NUM,
        "TERN_VERSION_NUM is 0xMMmmpp of TERN_VERSION");
}

/* The allocator hook: every byte a hub allocates goes through it and is
   returned by tern_hub_del, including sessions, messages, connections,
   events and partial frames. */
static void test_allocator(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings s = tu_settings();
  s.trace = 1;
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &s, &mem), 0, "hub with a host allocator");
  CHECK(a.calls > 0 && a.outstanding > 0, "the hub allocates through tern_mem");
  mem.malloc = NULL; /* the struct was copied */
  char payload[1000];
  memset(payload, 'p', sizeof(payload) - 1);
  payload[sizeof(payload) - 1] = 0;
  for (int i = 0; i < 20; ++i) {
    char key[16], id[16];
    snprintf(key, sizeof(key), "s%d", i % 5);
    snprintf(id, sizeof(id), "id%d", i);
    tu_pub(hub, key, i % 3, id, i % 2 ? payload : "small", T0);
  }
  tu_out o;
  tu_out_init(&o);
  tern_conn *c = tu_connect(hub, "s1", T0, NULL);
  tu_write(&o, c, 100, T0); /* leaves a partial frame behind */
  tern_conn *c2 = NULL;
  tern_conn_new(&c2, hub, T0);
  uint8_t hello[64];
  size_t hn = tu_hello_bytes(hello, sizeof(hello), "s2", 0, 0, 0, NULL);
  tern_conn_read(c2, hello, hn / 2, T0); /* a partial incoming frame */
  CHECK(a.bad_frees == 0, "no foreign frees");
  tern_hub_del(hub); /* frees the connections the host did not delete */
  CHECK_INT(a.outstanding, 0, "tern_hub_del returns every allocation");
  CHECK_INT(a.bytes, 0, "tern_hub_del returns every byte");
  CHECK_INT(tu_alloc_finish(&a), 0, "no freed block is written after free");
  tu_out_free(&o);

  /* tern_hub_new under allocation failure: NOMEM and nothing leaked. */
  int all_nomem = 1;
  long n;
  for (n = 1; n < 100; ++n) {
    memset(&a, 0, sizeof(a));
    a.fail_at = n;
    mem = tu_alloc_mem(&a);
    hub = NULL;
    int rv = tern_hub_new(&hub, &s, &mem);
    if (a.failed == 0) {
      tern_hub_del(hub);
      tu_alloc_finish(&a);
      break;
    }
    if (rv != TERN_ERR_NOMEM || hub != NULL || a.outstanding != 0 ||
        tu_alloc_finish(&a) != 0) {
      all_nomem = 0;
      tap_diag("tern_hub_new failing at %ld: rv %d, %ld blocks left", n, rv,
               a.outstanding);
      if (rv == 0) {
        tern_hub_del(hub);
      }
    }
  }
  CHECK(n > 1 && all_nomem,
        "tern_hub_new with a failing allocation returns NOMEM, leaks nothing");
}

static void test_events_and_stats(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  s.max_events = 3;
  tern_hub *hub = tu_hub(&s);
  for (int i = 0; i < 5; ++i) {
    tu_pub(hub, "k", TERN_PRIO_NORMAL, NULL, "x", T0);
  }
  tu_events e = {0};
  tu_events_take(&e, hub);
  CHECK_INT(e.n, 3, "max_events bounds the queue");
  CHECK_INT(tu_stats(hub).events_lost, 2, "events past it are counted lost");
  CHECK(e.n == 3 && e.ev[0].type == TERN_EV_ACCEPTED && e.ev[0].keylen == 1 &&
            e.ev[0].key[0] == 'k',
        "oldest first, with the session key");
  tu_events_free(&e);
  tern_event ev;
  CHECK_INT(tern_hub_next_event(hub, &ev), 0, "then the queue is empty");
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "again", "x", T0);
  CHECK_INT(tern_hub_next_event(hub, &ev), 1, "room again once drained");
  CHECK(ev.msg_idlen == 5 && memcmp(ev.msg_id, "again", 5) == 0,
        "the event names the message id");

  /* tern_hub_get_stats copies only the |size| bytes asked for. */
  tern_stats st;
  memset(&st, 0x77, sizeof(st));
  tern_hub_get_stats(hub, &st, offsetof(tern_stats, duplicates));
  CHECK(st.published == 6 && st.duplicates == 0x7777777777777777ull,
        "an older caller's smaller size is respected");
  tern_session_info si;
  memset(&si, 0x77, sizeof(si));
  tern_session_get_info(tern_hub_find_session(hub, (const uint8_t *)"k", 1),
                        &si, offsetof(tern_session_info, pending));
  CHECK(si.keylen == 1 && si.key && si.key[0] == 'k' &&
            si.pending == 0x77777777u,
        "session info: only |size| bytes copied");
  tern_hub_del(hub);
}

int main(void) {
  test_defaults();
  test_validation();
  test_epoch();
  test_errors();
  test_version();
  test_allocator();
  test_events_and_stats();
  return tap_done();
}
