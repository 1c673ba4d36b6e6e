/*
 * Web hooks (lib/hooks): batching by count, bytes and delay; coalescing;
 * signatures and the receiving side's checks; every status class, 429 and
 * Retry-After; backoff bounds; max_attempts; disabling and enabling;
 * ordering with one and several batches in flight; the challenge; restart
 * with a store; bad input; allocation failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hooks.h"
#include "memstore.h"
#include "store_util.h"
#include "tap.h"
#include "testutil.h"
#include "web/sha256.h"

#define SECRET "s3cret"

static tern_hook_opts opts_for(uint32_t flags) {
  tern_hook_opts o;
  tern_hook_opts_default(&o);
  o.flags = flags;
  o.target = (const uint8_t *)"http://127.0.0.1:9/hook";
  o.targetlen = strlen("http://127.0.0.1:9/hook");
  o.secret = (const uint8_t *)SECRET;
  o.secretlen = strlen(SECRET);
  return o;
}

static uint64_t add(tern_hub *hub, const tern_hook_opts *o) {
  uint64_t id = 0;
  int rv = tern_hub_add_hook(hub, o, T0, &id);
  if (rv != 0) {
    BAILOUT("tern_hub_add_hook");
  }
  return id;
}

static int enq(tern_hub *hub, uint64_t id, const char *key, const char *f1,
               const char *f2, uint64_t time, const char *payload,
               tern_tstamp now) {
  const char *fields[2] = {f1, f2};
  tern_hook_entry e;
  memset(&e, 0, sizeof(e));
  e.key = (const uint8_t *)key;
  e.keylen = strlen(key);
  e.fields = fields;
  e.nfields = f2 ? 2 : f1 ? 1 : 0;
  e.time = time;
  if (payload) {
    e.payload = (const uint8_t *)payload;
    e.payloadlen = strlen(payload);
  }
  return tern_hub_hook_enqueue(hub, id, &e, now);
}

static const char *header(const tern_hook_request *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; ++i) {
    if (strcmp(r->headers[i].name, name) == 0) {
      return r->headers[i].value;
    }
  }
  return NULL;
}

static int body_has(const tern_hook_request *r, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= r->bodylen; ++i) {
    if (memcmp(r->body + i, s, n) == 0) {
      return 1;
    }
  }
  return 0;
}

static int next_ev(tern_hub *hub, tern_event *ev) {
  return tern_hub_next_event(hub, ev);
}

static tern_hook_info info(tern_hub *hub, uint64_t id) {
  tern_hook_info in;
  memset(&in, 0xff, sizeof(in));
  if (tern_hub_get_hook_info(hub, id, &in, sizeof(in)) != 0) {
    BAILOUT("tern_hub_get_hook_info");
  }
  return in;
}

static void test_defaults(void) {
  tern_hook_opts o;
  tern_hook_opts_default(&o);
  CHECK_INT(o.version, TERN_HOOK_OPTS_VERSION, "defaults: version");
  CHECK_INT(o.max_items, 1000, "defaults: max_items 1000");
  CHECK(o.max_delay == SEC(5), "defaults: max_delay 5 s");
  CHECK(o.retry_base == SEC(1) && o.retry_cap == SEC(3600),
        "defaults: backoff 1 s .. 1 h");
  CHECK_INT(o.max_inflight, 1, "defaults: one batch in flight");
  tern_hook_opts_default_versioned(99, &o);
  CHECK_INT(o.version, 0, "defaults: unknown layout sets version 0");
}

static void test_batch_by_count_and_delay(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  o.max_items = 3;
  uint64_t id = add(hub, &o);
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, T0, &r), 0, "empty: nothing due");
  CHECK(tern_hub_get_expiry(hub) == TERN_TSTAMP_NONE, "empty: no expiry");
  CHECK_INT(enq(hub, id, "u1", "name", NULL, 11, NULL, T0), 0, "enqueue 1");
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(5), "one entry: due at +5 s");
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(4), &r), 0,
            "not due before max_delay");
  enq(hub, id, "u2", "name", NULL, 12, NULL, T0 + SEC(1));
  enq(hub, id, "u3", "pic", NULL, 13, NULL, T0 + SEC(1));
  enq(hub, id, "u4", "pic", NULL, 14, NULL, T0 + SEC(1));
  CHECK(tern_hub_get_expiry(hub) == 0, "max_items waiting: due now");
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(1), &r), 1,
            "count reached: a batch");
  CHECK_INT(r.kind, TERN_HOOK_DELIVERY, "delivery kind");
  CHECK_INT(r.entries, 3, "max_items entries");
  CHECK(strcmp(r.method, "POST") == 0, "POST");
  CHECK(r.attempt == 1 && r.hook == id, "attempt 1 of the hook");
  CHECK(body_has(&r, "{\"object\":\"object\",\"delivery\":\""),
        "body starts with the object");
  CHECK(body_has(&r, "{\"id\":\"u1\",\"changed_fields\":[\"name\"],"
                     "\"time\":11}"),
        "entry u1 as Facebook's");
  CHECK(!body_has(&r, "u4"), "u4 waits for the next batch");
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(100), &r), 0,
            "one in flight: u4 waits even when due");
  CHECK_INT(tern_hub_hook_done(hub, id, r.delivery, 200, NULL, 0, NULL, 0,
                               T0 + SEC(2)),
            0, "200 settles");
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(6), "u4 due 5 s after queued");
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(6), &r), 1,
            "delay reached: a batch");
  CHECK_INT(r.entries, 1, "the one entry");
  CHECK(body_has(&r, "\"u4\""), "it is u4");
  tern_hub_hook_done(hub, id, r.delivery, 204, NULL, 0, NULL, 0, T0 + SEC(6));
  tern_hook_info in = info(hub, id);
  CHECK(in.delivered == 4 && in.queued == 0 && in.outstanding == 0,
        "info: 4 delivered, nothing left");
  tern_event ev;
  CHECK_INT(next_ev(hub, &ev), 0, "success queues no event");
  tern_hub_del(hub);
}

static void test_batch_by_bytes(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  o.max_bytes = 600;
  uint64_t id = add(hub, &o);
  char payload[200];
  memset(payload, 'x', sizeof(payload));
  payload[0] = '"';
  payload[sizeof(payload) - 2] = '"';
  payload[sizeof(payload) - 1] = '\0';
  CHECK_INT(enq(hub, id, "a", "f", NULL, 1, payload, T0), 0, "enqueue a");
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(5), "one fits: not due");
  enq(hub, id, "b", "f", NULL, 1, payload, T0);
  enq(hub, id, "c", "f", NULL, 1, payload, T0);
  CHECK(tern_hub_get_expiry(hub) == 0, "bytes over max_bytes: due now");
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, T0, &r), 1, "a batch");
  CHECK(r.bodylen <= 600, "body within max_bytes");
  CHECK_INT(r.entries, 2, "two entries fit");
  char big[600];
  memset(big, 'y', sizeof(big));
  big[0] = '"';
  big[sizeof(big) - 2] = '"';
  big[sizeof(big) - 1] = '\0';
  CHECK_INT(enq(hub, id, "d", "f", NULL, 1, big, T0), TERN_ERR_TOO_LARGE,
            "an entry over max_bytes alone: TOO_LARGE");
  tern_hub_del(hub);
}

static void test_coalesce(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED | TERN_HOOK_COALESCE);
  uint64_t id = add(hub, &o);
  enq(hub, id, "u1", "name", NULL, 10, "{\"v\":1}", T0);
  enq(hub, id, "u2", "friends", NULL, 11, NULL, T0 + SEC(1));
  enq(hub, id, "u1", "picture", "name", 15, NULL, T0 + SEC(2));
  enq(hub, id, "u1", "email", NULL, 12, "{\"v\":3}", T0 + SEC(3));
  tern_hook_info in = info(hub, id);
  CHECK_INT(in.queued, 2, "coalesced: two objects wait");
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(5),
        "coalesced entry keeps its first age");
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(5), &r), 1, "batch");
  CHECK_INT(r.entries, 2, "two entries");
  CHECK(hook_json_value_ok(r.body, r.bodylen), "the body is one JSON value");
  CHECK(body_has(&r, "{\"id\":\"u1\",\"changed_fields\":[\"name\",\"picture\","
                     "\"email\"],\"time\":15,\"data\":{\"v\":3}},"
                     "{\"id\":\"u2\""),
        "union of fields, latest time, latest payload, first position");
  /* while the batch is out, a change to u1 starts a new entry */
  enq(hub, id, "u1", "name", NULL, 20, NULL, T0 + SEC(6));
  CHECK_INT(info(hub, id).queued, 1, "a new entry beside the batch");
  tern_hub_del(hub);
}

static void test_signature(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hub_set_wallclock(hub, T0, (uint64_t)1700000000 * TERN_SECONDS);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  o.max_delay = 0;
  uint64_t id = add(hub, &o);
  enq(hub, id, "k", "f", NULL, 1, NULL, T0);
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(10), &r), 1,
            "max_delay 0: at once");
  const char *ts = header(&r, "X-Tern-Timestamp");
  const char *sig = header(&r, "X-Tern-Signature");
  CHECK(ts && strcmp(ts, "1700000010") == 0, "timestamp: wall seconds");
  CHECK(r.timestamp == 1700000010u, "request timestamp");
  CHECK(header(&r, "Content-Type") &&
            strcmp(header(&r, "Content-Type"), "application/json") == 0,
        "content type");
  char want[8 + 64];
  uint8_t mac[32];
  web_hmac_sha256 c;
  web_hmac_sha256_init(&c, SECRET, strlen(SECRET));
  web_hmac_sha256_update(&c, ts, strlen(ts));
  web_hmac_sha256_update(&c, ".", 1);
  web_hmac_sha256_update(&c, r.body, r.bodylen);
  web_hmac_sha256_final(&c, mac);
  memcpy(want, "sha256=", 7);
  *web_hex_lower(want + 7, mac, 32) = '\0';
  CHECK(sig && strcmp(sig, want) == 0, "signature: HMAC of ts.body");
  char did[24];
  snprintf(did, sizeof(did), "%llu", (unsigned long long)r.delivery);
  CHECK(strcmp(header(&r, "X-Tern-Delivery"), did) == 0, "delivery header");
  CHECK(strcmp(header(&r, "X-Tern-Attempt"), "1") == 0, "attempt header");
  const uint8_t *sec = (const uint8_t *)SECRET;
  CHECK_INT(tern_hook_check_signature(sec, 6, ts, strlen(ts), sig,
                                      strlen(sig), r.body, r.bodylen,
                                      1700000020, 300),
            0, "verify: good");
  CHECK_INT(tern_hook_check_signature(sec, 6, ts, strlen(ts), sig,
                                      strlen(sig), r.body, r.bodylen - 1,
                                      1700000020, 300),
            TERN_ERR_PROTO, "verify: body changed");
  CHECK_INT(tern_hook_check_signature((const uint8_t *)"other", 5, ts,
                                      strlen(ts), sig, strlen(sig), r.body,
                                      r.bodylen, 1700000020, 300),
            TERN_ERR_PROTO, "verify: wrong secret");
  CHECK_INT(tern_hook_check_signature(sec, 6, "1700000011", 10, sig,
                                      strlen(sig), r.body, r.bodylen,
                                      1700000020, 300),
            TERN_ERR_PROTO, "verify: timestamp changed");
  CHECK_INT(tern_hook_check_signature(sec, 6, ts, strlen(ts), sig,
                                      strlen(sig), r.body, r.bodylen,
                                      1700000311, 300),
            TERN_ERR_STATE, "verify: stale (replay)");
  CHECK_INT(tern_hook_check_signature(sec, 6, ts, strlen(ts), sig,
                                      strlen(sig), r.body, r.bodylen,
                                      1699999000, 300),
            TERN_ERR_STATE, "verify: from the future");
  CHECK_INT(tern_hook_check_signature(sec, 6, ts, strlen(ts), sig + 1,
                                      strlen(sig) - 1, r.body, r.bodylen,
                                      1700000020, 300),
            TERN_ERR_INVALID, "verify: malformed signature");
  CHECK_INT(tern_hook_check_signature(sec, 6, "17x", 3, sig, strlen(sig),
                                      r.body, r.bodylen, 1700000020, 300),
            TERN_ERR_INVALID, "verify: malformed timestamp");
  /* a retry signs again with its own time */
  tern_hub_hook_done(hub, id, r.delivery, 503, NULL, 0, NULL, 0,
                     T0 + SEC(10));
  tern_hook_request r2;
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(20), &r2), 1, "retry");
  CHECK(r2.delivery == r.delivery, "retry: same delivery id");
  CHECK(strcmp(header(&r2, "X-Tern-Timestamp"), "1700000020") == 0,
        "retry: new timestamp");
  CHECK(strcmp(header(&r2, "X-Tern-Attempt"), "2") == 0, "retry: attempt 2");
  tern_hub_del(hub);
}

/* One batch out with |status|; what happened to it. */
static int status_outcome(int status, int *dropped_event) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  o.max_delay = 0;
  uint64_t id = add(hub, &o);
  enq(hub, id, "k", "f", NULL, 1, NULL, T0);
  tern_hook_request r;
  tern_hub_next_hook_request(hub, T0, &r);
  tern_hub_hook_done(hub, id, r.delivery, status, NULL, 0, NULL, 0, T0);
  tern_hook_info in = info(hub, id);
  tern_event ev;
  *dropped_event = next_ev(hub, &ev) == 1 && ev.type == TERN_EV_HOOK_DROPPED &&
                   ev.seq == id && ev.count == 1 && ev.reason == status &&
                   ev.cookie == r.delivery;
  int outcome = in.delivered == 1   ? 'd'
                : in.dropped == 1   ? 'x'
                : in.outstanding == 1 ? 'r'
                                      : '?';
  tern_hub_del(hub);
  return outcome;
}

static void test_status_classes(void) {
  static const int ok[] = {200, 201, 202, 204, 102};
  static const int retry[] = {500, 502, 503, 504, 429, TERN_HOOK_NO_ANSWER};
  static const int give_up[] = {100, 203, 206, 301, 304, 400, 401, 403,
                                404, 408, 410, 413, 501, 505, 599};
  int ev;
  for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); ++i) {
    CHECK(status_outcome(ok[i], &ev) == 'd', "status %d delivers", ok[i]);
  }
  for (size_t i = 0; i < sizeof(retry) / sizeof(*retry); ++i) {
    CHECK(status_outcome(retry[i], &ev) == 'r', "status %d retries",
          retry[i]);
  }
  for (size_t i = 0; i < sizeof(give_up) / sizeof(*give_up); ++i) {
    CHECK(status_outcome(give_up[i], &ev) == 'x' && ev,
          "status %d gives up with a DROPPED event", give_up[i]);
  }
}

static void test_backoff_bounds(void) {
  /* Full jitter: attempt n waits in [0, min(cap, base * 2^(n-1))]. */
  tern_duration maxwait[12] = {0};
  int spread = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    tern_settings s = tu_settings();
    s.seed = seed;
    tern_hub *hub = tu_hub(&s);
    tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
    o.max_delay = 0;
    o.max_attempts = 0;
    o.retry_base = SEC(1);
    o.retry_cap = SEC(60);
    uint64_t id = add(hub, &o);
    enq(hub, id, "k", "f", NULL, 1, NULL, T0);
    tern_tstamp now = T0;
    for (uint32_t n = 1; n <= 10; ++n) {
      tern_hook_request r;
      if (tern_hub_next_hook_request(hub, now, &r) != 1 || r.attempt != n) {
        BAILOUT("backoff: request");
      }
      tern_hub_hook_done(hub, id, r.delivery, 500, NULL, 0, NULL, 0, now);
      tern_tstamp due = tern_hub_get_expiry(hub);
      tern_duration wait = due - now;
      tern_duration ceil = SEC(1) << (n - 1);
      if (ceil > SEC(60)) {
        ceil = SEC(60);
      }
      if (wait > ceil) {
        CHECK(0, "backoff: attempt %u waited %llu > %llu", n,
              (unsigned long long)wait, (unsigned long long)ceil);
      }
      if (wait > maxwait[n]) {
        maxwait[n] = wait;
      }
      if (due > now) {
        tern_hook_request early;
        if (tern_hub_next_hook_request(hub, due - 1, &early) != 0) {
          CHECK(0, "backoff: sent before its time");
        }
      }
      spread += wait != 0 && wait < ceil / 2;
      now = due;
    }
    tern_hub_del(hub);
  }
  CHECK(maxwait[1] <= SEC(1) && maxwait[1] > MS(500),
        "attempt 1: jitter reaches near 1 s, never past");
  CHECK(maxwait[4] <= SEC(8) && maxwait[4] > SEC(4),
        "attempt 4: up to 8 s");
  CHECK(maxwait[10] <= SEC(60) && maxwait[10] > SEC(30),
        "attempt 10: capped at 60 s");
  CHECK(spread > 20, "full jitter: waits spread below half the ceiling");
}

static void test_retry_after(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hub_set_wallclock(hub, T0, (uint64_t)784111777 * TERN_SECONDS);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  o.max_delay = 0;
  uint64_t id = add(hub, &o);
  enq(hub, id, "k", "f", NULL, 1, NULL, T0);
  tern_hook_request r;
  tern_hub_next_hook_request(hub, T0, &r);
  tern_hub_hook_done(hub, id, r.delivery, 429, "120", 3, NULL, 0, T0);
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(120), "429 Retry-After: 120");
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(119), &r), 0,
            "not before Retry-After");
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(120), &r), 1,
            "at Retry-After");
  /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT is 784111777 */
  const char *date = "Sun, 06 Nov 1994 08:50:37 GMT";
  tern_hub_hook_done(hub, id, r.delivery, 429, date, strlen(date), NULL, 0,
                     T0 + SEC(120));
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(120),
        "Retry-After date in the past: at once");
  tern_hub_next_hook_request(hub, T0 + SEC(120), &r);
  tern_hub_set_wallclock(hub, T0 + SEC(120), (uint64_t)784111777 * TERN_SECONDS);
  tern_hub_hook_done(hub, id, r.delivery, 429, date, strlen(date), NULL, 0,
                     T0 + SEC(120));
  CHECK(tern_hub_get_expiry(hub) == T0 + SEC(180),
        "Retry-After date: 60 s ahead of the wall clock");
  tern_hub_next_hook_request(hub, T0 + SEC(180), &r);
  tern_hub_hook_done(hub, id, r.delivery, 429, "soon", 4, NULL, 0,
                     T0 + SEC(180));
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(180) + SEC(8),
        "unreadable Retry-After: the backoff");
  tern_hub_next_hook_request(hub, T0 + SEC(200), &r);
  tern_hub_hook_done(hub, id, r.delivery, 503, "100", 3, NULL, 0,
                     T0 + SEC(200));
  CHECK(tern_hub_get_expiry(hub) <= T0 + SEC(200) + SEC(16),
        "Retry-After is read with 429 only");
  uint64_t d;
  CHECK_INT(hook_parse_retry_after("0", 1, 0, &d), 0, "parse 0");
  CHECK_INT(hook_parse_retry_after("12a", 3, 0, &d), -1, "parse 12a");
  CHECK_INT(hook_parse_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", 29, 0,
                                   &d),
            -1, "parse: zone not GMT");
  CHECK_INT(hook_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 29, 0,
                                   &d),
            0, "parse: IMF-fixdate");
  CHECK(d == 784111777u, "parse: the date's Unix time");
  tern_hub_del(hub);
}

static void test_max_attempts_and_disable(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  o.max_delay = 0;
  o.max_attempts = 3;
  o.disable_after = 2;
  uint64_t id = add(hub, &o);
  tern_tstamp now = T0;
  tern_event ev;
  for (int batch = 0; batch < 2; ++batch) {
    enq(hub, id, batch ? "b" : "a", "f", NULL, 1, NULL, now);
    for (uint32_t n = 1; n <= 3; ++n) {
      tern_hook_request r;
      now += SEC(3600);
      CHECK(tern_hub_next_hook_request(hub, now, &r) == 1 && r.attempt == n,
            "batch %d attempt %u", batch, n);
      tern_hub_hook_done(hub, id, r.delivery, TERN_HOOK_NO_ANSWER, NULL, 0,
                         NULL, 0, now);
      if (n < 3) {
        CHECK_INT(next_ev(hub, &ev), 0, "no event before max_attempts");
      }
    }
    CHECK(next_ev(hub, &ev) == 1 && ev.type == TERN_EV_HOOK_DROPPED &&
              ev.reason == TERN_HOOK_NO_ANSWER && ev.count == 1,
          "max_attempts: DROPPED");
    CHECK_INT(info(hub, id).failures, batch + 1, "failures counted");
  }
  CHECK(next_ev(hub, &ev) == 1 && ev.type == TERN_EV_HOOK_DISABLED &&
            ev.seq == id && ev.count == 2,
        "two failed batches: DISABLED");
  CHECK(info(hub, id).state & TERN_HOOK_STATE_DISABLED, "state disabled");
  enq(hub, id, "c", "f", NULL, 1, NULL, now);
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, now + SEC(100), &r), 0,
            "disabled: no request");
  CHECK(tern_hub_get_expiry(hub) == TERN_TSTAMP_NONE, "disabled: no expiry");
  CHECK_INT(info(hub, id).queued, 1, "disabled: entries kept");
  CHECK_INT(tern_hub_enable_hook(hub, id, now + SEC(100)), 0, "enable");
  CHECK_INT(info(hub, id).failures, 0, "enable: failures reset");
  CHECK_INT(tern_hub_next_hook_request(hub, now + SEC(100), &r), 1,
            "enabled: the queue goes");
  CHECK(body_has(&r, "\"c\""), "the kept entry");
  tern_hub_hook_done(hub, id, r.delivery, 200, NULL, 0, NULL, 0, now);
  CHECK_INT(tern_hub_enable_hook(hub, id, now), 0, "enable twice: fine");
  CHECK_INT(tern_hub_enable_hook(hub, 999, now), TERN_ERR_NOT_FOUND,
            "enable: unknown hook");
  tern_hub_del(hub);
}

static void test_ordering(void) {
  for (uint32_t inflight = 1; inflight <= 3; inflight += 2) {
    tern_settings s = tu_settings();
    tern_hub *hub = tu_hub(&s);
    tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
    o.max_items = 1;
    o.max_inflight = inflight;
    uint64_t id = add(hub, &o);
    for (int i = 0; i < 6; ++i) {
      char k[8];
      snprintf(k, sizeof(k), "k%d", i);
      enq(hub, id, k, "f", NULL, (uint64_t)i, NULL, T0);
    }
    tern_hook_request r[6];
    size_t n = 0;
    while (n < 6 && tern_hub_next_hook_request(hub, T0, &r[n]) == 1) {
      ++n;
    }
    CHECK_EQ(n, inflight, "max_inflight %u: that many out at once",
             inflight);
    /* The first fails and goes again before any later batch is formed
       beyond the limit. */
    tern_hub_hook_done(hub, id, r[0].delivery, 503, NULL, 0, NULL, 0, T0);
    tern_hook_request x;
    CHECK_INT(tern_hub_next_hook_request(hub, T0, &x), 0,
              "a batch waiting for its retry still counts");
    tern_tstamp due = tern_hub_get_expiry(hub);
    CHECK_INT(tern_hub_next_hook_request(hub, due, &x), 1, "its retry");
    CHECK(x.delivery == r[0].delivery, "the same batch first");
    for (size_t i = 1; i < n; ++i) {
      tern_hub_hook_done(hub, id, r[i].delivery, 200, NULL, 0, NULL, 0, due);
    }
    tern_hub_hook_done(hub, id, x.delivery, 200, NULL, 0, NULL, 0, due);
    /* the rest in order, one at a time */
    uint64_t last = 0;
    int ordered = 1;
    size_t sent = n;
    while (tern_hub_next_hook_request(hub, due, &x) == 1) {
      ordered &= x.delivery > last;
      last = x.delivery;
      tern_hub_hook_done(hub, id, x.delivery, 200, NULL, 0, NULL, 0, due);
      ++sent;
    }
    CHECK(ordered && sent == 6, "max_inflight %u: every batch, in order",
          inflight);
    tern_hub_del(hub);
  }
}

static void test_challenge(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(0);
  o.verify_token = (const uint8_t *)"tok en&1";
  o.verify_tokenlen = 8;
  o.max_delay = 0;
  uint64_t id = add(hub, &o);
  enq(hub, id, "k", "f", NULL, 1, NULL, T0);
  CHECK(!(info(hub, id).state & TERN_HOOK_STATE_VERIFIED), "unverified");
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, T0, &r), 1, "challenge first");
  CHECK_INT(r.kind, TERN_HOOK_CHALLENGE, "kind challenge");
  CHECK(strcmp(r.method, "GET") == 0 && r.body == NULL, "a GET, no body");
  tern_hook_request r2;
  CHECK_INT(tern_hub_next_hook_request(hub, T0, &r2), 0,
            "no delivery while unverified");
  const char *chal;
  size_t chall;
  CHECK_INT(tern_hook_check_challenge(r.query, r.querylen,
                                      (const uint8_t *)"tok en&1", 8, &chal,
                                      &chall),
            0, "receiver: the query checks");
  CHECK_INT(tern_hook_check_challenge(r.query, r.querylen,
                                      (const uint8_t *)"tok en&2", 8, &chal,
                                      &chall),
            TERN_ERR_PROTO, "receiver: wrong token");
  CHECK_INT(tern_hook_check_challenge("hub.mode=unsubscribe&hub.challenge=a&"
                                      "hub.verify_token=",
                                      strlen("hub.mode=unsubscribe&hub."
                                             "challenge=a&hub.verify_token="),
                                      NULL, 0, &chal, &chall),
            TERN_ERR_PROTO, "receiver: wrong mode");
  CHECK_INT(tern_hook_check_challenge("hub.mode=subscribe&hub.challenge=a", 34,
                                      NULL, 0, &chal, &chall),
            TERN_ERR_INVALID, "receiver: token missing");
  CHECK_INT(tern_hook_check_challenge(r.query, r.querylen,
                                      (const uint8_t *)"tok en&1", 8, &chal,
                                      &chall),
            0, "again");
  /* a wrong answer */
  CHECK_INT(tern_hub_hook_done(hub, id, r.delivery, 200,
                               NULL, 0, (const uint8_t *)"nope", 4, T0),
            0, "wrong answer reported");
  tern_event ev;
  CHECK(next_ev(hub, &ev) == 1 && ev.type == TERN_EV_HOOK_VERIFIED &&
            ev.reason == TERN_ERR_PROTO,
        "wrong answer: VERIFIED with PROTO");
  CHECK_INT(tern_hub_next_hook_request(hub, T0, &r2), 0,
            "failed: nothing more until verified again");
  CHECK_INT(tern_hub_verify_hook(hub, id, T0), 0, "verify again");
  CHECK_INT(tern_hub_next_hook_request(hub, T0, &r), 1, "a new challenge");
  tern_hook_check_challenge(r.query, r.querylen, (const uint8_t *)"tok en&1",
                            8, &chal, &chall);
  /* 503 retries the challenge */
  tern_hub_hook_done(hub, id, r.delivery, 503, NULL, 0, NULL, 0, T0);
  CHECK_INT(next_ev(hub, &ev), 0, "503: no event yet");
  tern_tstamp due = tern_hub_get_expiry(hub);
  CHECK_INT(tern_hub_next_hook_request(hub, due, &r2), 1, "challenge again");
  CHECK(r2.kind == TERN_HOOK_CHALLENGE && r2.attempt == 2, "attempt 2");
  char answer[160];
  memcpy(answer, chal, chall);
  memcpy(answer + chall, "\r\n", 2);
  CHECK_INT(tern_hub_hook_done(hub, id, r2.delivery, 200, NULL, 0,
                               (const uint8_t *)answer, chall + 2, due),
            0, "the echo");
  CHECK(next_ev(hub, &ev) == 1 && ev.type == TERN_EV_HOOK_VERIFIED &&
            ev.reason == 0 && ev.seq == id,
        "VERIFIED 0");
  CHECK(info(hub, id).state & TERN_HOOK_STATE_VERIFIED, "verified");
  CHECK_INT(tern_hub_next_hook_request(hub, due, &r), 1, "now the delivery");
  CHECK_INT(r.kind, TERN_HOOK_DELIVERY, "delivery");
  CHECK_INT(tern_hub_verify_hook(hub, id, due), TERN_ERR_STATE,
            "verify again with a batch out: STATE");
  CHECK_INT(tern_hub_hook_done(hub, id, r2.delivery, 200, NULL, 0, NULL, 0,
                               due),
            TERN_ERR_NOT_FOUND, "a challenge answered twice");
  tern_hub_del(hub);
}

static void test_bad_input(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  uint64_t id = 77;
  CHECK_INT(tern_hub_add_hook(NULL, &o, T0, &id), TERN_ERR_INVALID,
            "NULL hub");
  CHECK_INT(tern_hub_add_hook(hub, NULL, T0, &id), TERN_ERR_INVALID,
            "NULL opts");
  tern_hook_opts b = o;
  b.version = 7;
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_INVALID,
            "unknown layout");
  b = o;
  b.targetlen = 0;
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_INVALID,
            "no target");
  b = o;
  b.secret = NULL;
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_INVALID,
            "no secret");
  b = o;
  b.targetlen = TERN_MAX_HOOK_TARGET + 1;
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_TOO_LARGE,
            "target too long");
  b = o;
  b.max_items = 0;
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_INVALID,
            "max_items 0");
  b = o;
  b.retry_cap = MS(1);
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_INVALID,
            "cap below base");
  b = o;
  b.object = "a\"b";
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_INVALID,
            "object with a quote");
  b = o;
  b.flags = 0x80;
  CHECK_INT(tern_hub_add_hook(hub, &b, T0, &id), TERN_ERR_INVALID,
            "unknown flag");
  CHECK(id == 77 && tern_hub_next_hook(hub, 0) == 0,
        "refused: no hook, id untouched");
  id = add(hub, &o);
  tern_hook_info before = info(hub, id);
  CHECK_INT(enq(hub, id, "", "f", NULL, 1, NULL, T0), TERN_ERR_INVALID,
            "empty key");
  CHECK_INT(enq(hub, id, "k", "", NULL, 1, NULL, T0), TERN_ERR_INVALID,
            "empty field");
  CHECK_INT(enq(hub, id, "\xff", "f", NULL, 1, NULL, T0), TERN_ERR_INVALID,
            "key not UTF-8");
  CHECK_INT(enq(hub, id, "k", "f", NULL, 1, "{\"a\":}", T0), TERN_ERR_INVALID,
            "payload not JSON");
  CHECK_INT(enq(hub, id, "k", "f", NULL, 1, "1 2", T0), TERN_ERR_INVALID,
            "payload two values");
  CHECK_INT(enq(hub, id + 1, "k", "f", NULL, 1, NULL, T0), TERN_ERR_NOT_FOUND,
            "unknown hook");
  char longkey[300];
  memset(longkey, 'k', sizeof(longkey) - 1);
  longkey[sizeof(longkey) - 1] = '\0';
  CHECK_INT(enq(hub, id, longkey, "f", NULL, 1, NULL, T0), TERN_ERR_TOO_LARGE,
            "key too long");
  CHECK_INT(tern_hub_hook_enqueue_versioned(hub, id, 9, NULL, T0),
            TERN_ERR_INVALID, "NULL entry");
  tern_hook_info after = info(hub, id);
  CHECK(memcmp(&before, &after, sizeof(before)) == 0,
        "refused entries changed nothing");
  CHECK_INT(enq(hub, id, "k", "f", NULL, 1, " [1, {\"x\": \"\\u00e9\"}] ",
                T0),
            0, "a JSON payload with spaces");
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request_versioned(hub, 5, T0, &r),
            TERN_ERR_INVALID, "request: unknown layout");
  CHECK_INT(tern_hub_hook_done(hub, id, 12345, 200, NULL, 0, NULL, 0, T0),
            TERN_ERR_NOT_FOUND, "done: unknown delivery");
  CHECK_INT(tern_hub_hook_done(hub, id, 1, 99, NULL, 0, NULL, 0, T0),
            TERN_ERR_INVALID, "done: status 99");
  CHECK_INT(tern_hub_hook_done(hub, id, 1, 600, NULL, 0, NULL, 0, T0),
            TERN_ERR_INVALID, "done: status 600");
  /* max_queued */
  tern_hook_opts q = o;
  q.max_queued = 2;
  uint64_t qid = add(hub, &q);
  enq(hub, qid, "a", "f", NULL, 1, NULL, T0);
  enq(hub, qid, "b", "f", NULL, 1, NULL, T0);
  CHECK_INT(enq(hub, qid, "c", "f", NULL, 1, NULL, T0), TERN_ERR_FULL,
            "max_queued: FULL");
  /* remove */
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(5), &r), 1, "a batch");
  uint64_t rid = r.hook;
  CHECK_INT(tern_hub_remove_hook(hub, rid), 0, "remove with a batch out");
  CHECK_INT(tern_hub_hook_done(hub, rid, r.delivery, 200, NULL, 0, NULL, 0,
                               T0),
            TERN_ERR_NOT_FOUND, "its answer is refused");
  CHECK_INT(tern_hub_remove_hook(hub, rid), TERN_ERR_NOT_FOUND,
            "remove twice");
  tern_hub_del(hub);
}

static void test_listing(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  uint64_t a = add(hub, &o), b = add(hub, &o), c = add(hub, &o);
  CHECK(a && b > a && c > b, "ids ascend");
  tern_hub_remove_hook(hub, b);
  CHECK(tern_hub_next_hook(hub, 0) == a && tern_hub_next_hook(hub, a) == c &&
            tern_hub_next_hook(hub, c) == 0,
        "next_hook lists the live ones");
  uint64_t d = add(hub, &o);
  CHECK(d > c, "a removed id is not given again");
  tern_hook_info in = info(hub, a);
  CHECK_MEM(in.target, in.targetlen, o.target, o.targetlen, "info: target");
  tern_hub_del(hub);
}

static tern_hub *hub_on(memstore *ms, tern_tstamp now) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hub_set_wallclock(hub, now,
                         (uint64_t)1700000000 * TERN_SECONDS + (now - T0));
  if (tern_hub_set_store(hub, &memstore_methods, ms, now) != 0) {
    BAILOUT("set_store");
  }
  return hub;
}

static void test_restart(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_hub *hub = hub_on(&ms, T0);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED | TERN_HOOK_COALESCE);
  o.max_items = 2;
  o.disable_after = 1;
  o.object = "user";
  uint64_t id = add(hub, &o);
  tern_hook_opts o2 = opts_for(0);
  uint64_t id2 = add(hub, &o2);
  for (int i = 0; i < 5; ++i) {
    char k[8];
    snprintf(k, sizeof(k), "u%d", i);
    enq(hub, id, k, "name", NULL, (uint64_t)i, "{\"n\":1}", T0);
  }
  enq(hub, id, "u1", "picture", NULL, 9, NULL, T0);
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, T0, &r), 1, "a batch out");
  uint64_t out = r.delivery;
  tern_hub_flush(hub);
  memstore_sync(&ms);
  tern_hub_del(hub); /* the batch out is lost with the process */
  hub = hub_on(&ms, T0 + SEC(1));
  CHECK(tern_hub_next_hook(hub, 0) == id &&
            tern_hub_next_hook(hub, id) == id2,
        "restart: both hooks back");
  tern_hook_info in = info(hub, id);
  CHECK_INT(in.queued, 5, "restart: every entry waits again");
  CHECK(in.state & TERN_HOOK_STATE_VERIFIED, "restart: still verified");
  CHECK(!(info(hub, id2).state & TERN_HOOK_STATE_VERIFIED),
        "restart: the other still unverified");
  /* deliver everything; check nothing lost and fields kept */
  char seen[5] = {0};
  int union_kept = 0, object_kept = 1, first = 1;
  tern_tstamp now = T0 + SEC(10);
  while (tern_hub_next_hook_request(hub, now, &r) == 1) {
    if (r.kind == TERN_HOOK_CHALLENGE) {
      CHECK(r.hook == id2, "restart: the unverified hook is challenged");
      continue;
    }
    if (first) {
      CHECK(r.delivery == out, "restart: same first entry, same delivery id");
      first = 0;
    }
    for (int i = 0; i < 5; ++i) {
      char k[12];
      snprintf(k, sizeof(k), "\"u%d\"", i);
      seen[i] += (char)body_has(&r, k);
    }
    union_kept |= body_has(&r, "[\"name\",\"picture\"],\"time\":9,"
                               "\"data\":{\"n\":1}");
    object_kept &= body_has(&r, "{\"object\":\"user\"");
    tern_hub_hook_done(hub, r.hook, r.delivery, 200, NULL, 0, NULL, 0, now);
  }
  CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1 &&
            seen[4] == 1,
        "restart: each entry delivered once");
  CHECK(union_kept, "restart: the coalesced entry kept its union");
  CHECK(object_kept, "restart: options kept");
  /* coalescing goes on after the restart */
  enq(hub, id, "z", "a", NULL, 1, NULL, now);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  tern_hub_del(hub);
  hub = hub_on(&ms, now);
  enq(hub, id, "z", "b", NULL, 2, NULL, now);
  CHECK_INT(info(hub, id).queued, 1, "restart: coalesces into the stored");
  /* state: disabled survives (the other hook's new challenge aside) */
  tern_hub_remove_hook(hub, id2);
  CHECK_INT(tern_hub_next_hook_request(hub, now + SEC(5), &r), 1, "batch");
  tern_hub_hook_done(hub, id, r.delivery, 404, NULL, 0, NULL, 0, now);
  tern_event ev;
  while (next_ev(hub, &ev) == 1) {
  }
  CHECK(info(hub, id).state & TERN_HOOK_STATE_DISABLED, "disabled");
  CHECK_INT(info(hub, id).dropped, 1, "dropped");
  tern_hub_flush(hub);
  memstore_sync(&ms);
  tern_hub_del(hub);
  hub = hub_on(&ms, now);
  CHECK(info(hub, id).state & TERN_HOOK_STATE_DISABLED,
        "restart: still disabled");
  CHECK_INT(info(hub, id).queued, 0, "restart: the dropped entry is gone");
  tern_hub_remove_hook(hub, id);
  tern_hub_flush(hub);
  memstore_sync(&ms);
  tern_hub_del(hub);
  CHECK(memstore_count(&ms, 'H') == 0 && memstore_count(&ms, 'Q') == 0,
        "removed: no hook or entry record left");
  hub = hub_on(&ms, now);
  CHECK(tern_hub_add_hook(hub, &o, now, &id) == 0 && id > id2,
        "restart: ids go on past removed ones");
  tern_hub_del(hub);
  memstore_free(&ms);
}

/* The shipped file store, through a restart of hub and store. */
static void test_file_store(void) {
  char *dir = su_tmpdir("hooks");
  tern_store_file *fs;
  if (tern_store_file_open(&fs, dir, NULL, NULL) != 0) {
    BAILOUT("tern_store_file_open");
  }
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(tern_hub_set_store(hub, tern_store_file_methods(), fs, T0), 0,
            "file store: attach");
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  uint64_t id = add(hub, &o);
  for (int i = 0; i < 50; ++i) {
    char k[8];
    snprintf(k, sizeof(k), "f%d", i);
    enq(hub, id, k, "a", NULL, (uint64_t)i, NULL, T0);
  }
  tern_hub_del(hub);
  tern_store_file_close(fs);
  if (tern_store_file_open(&fs, dir, NULL, NULL) != 0) {
    BAILOUT("tern_store_file_open again");
  }
  hub = tu_hub(&s);
  CHECK_INT(tern_hub_set_store(hub, tern_store_file_methods(), fs, T0), 0,
            "file store: restore");
  CHECK_INT(info(hub, id).queued, 50, "file store: the 50 entries are back");
  tern_hook_request r;
  CHECK_INT(tern_hub_next_hook_request(hub, T0 + SEC(5), &r), 1, "a batch");
  CHECK(r.entries == 50 && body_has(&r, "\"f0\"") && body_has(&r, "\"f49\""),
        "file store: in one batch, in order");
  tern_hub_del(hub);
  tern_store_file_close(fs);
  su_rmtree(dir);
  free(dir);
}

/* Hooks take turns: a busy hook does not starve the others. */
static void test_turns(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  o.max_items = 1;
  o.max_inflight = 100;
  uint64_t a = add(hub, &o), b = add(hub, &o);
  for (int i = 0; i < 10; ++i) {
    enq(hub, a, "x", "f", NULL, 1, NULL, T0);
  }
  enq(hub, b, "y", "f", NULL, 1, NULL, T0);
  tern_hook_request r1, r2;
  tern_hub_next_hook_request(hub, T0, &r1);
  tern_hub_next_hook_request(hub, T0, &r2);
  CHECK(r1.hook != r2.hook, "two hooks due: one request of each first");
  tern_hub_del(hub);
}

static void test_store_state_rule(void) {
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
  add(hub, &o);
  CHECK_INT(tern_hub_set_store(hub, &memstore_methods, &ms, T0),
            TERN_ERR_STATE, "set_store after a hook: STATE");
  tern_hub_del(hub);
  memstore_free(&ms);
}

static void test_corrupt_records(void) {
  static const struct {
    const char *what;
    uint8_t key[17];
    size_t keylen;
    const char *value;
  } bad[] = {
      {"a short hook record", {'H', 0, 0, 0, 0, 0, 0, 0, 1}, 9, "x"},
      {"a hook record of id 0", {'H'}, 9, "x"},
      {"a short entry record", {'Q', 0, 0, 0, 0, 0, 0, 0, 1}, 17, "y"},
      {"a counters record of 3 bytes", {'G'}, 1, "abc"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); ++i) {
    memstore ms;
    memset(&ms, 0, sizeof(ms));
    tern_store_record record = {TERN_STORE_SET, bad[i].key, bad[i].keylen,
                             (const uint8_t *)bad[i].value,
                             strlen(bad[i].value)};
    memstore_append(&ms, 0, &record, 1, 1);
    tern_settings s = tu_settings();
    tern_hub *hub = tu_hub(&s);
    CHECK_INT(tern_hub_set_store(hub, &memstore_methods, &ms, T0),
              TERN_ERR_STORE, bad[i].what);
    CHECK(tern_hub_next_hook(hub, 0) == 0, "%s: no hook", bad[i].what);
    tern_hook_opts o = opts_for(TERN_HOOK_VERIFIED);
    uint64_t id;
    CHECK_INT(tern_hub_add_hook(hub, &o, T0, &id), 0,
              "the hub is usable after");
    tern_hub_del(hub);
    memstore_free(&ms);
  }
}

/* One full cycle under an allocator failing at call |k|: every call
   either works or fails with NOMEM and changes nothing visible. */
static int cycle(tern_hub *hub, int *nomem) {
  tern_hook_opts o = opts_for(TERN_HOOK_COALESCE);
  o.max_delay = 0;
  o.disable_after = 1;
  uint64_t id = 0;
  int rv;
  while ((rv = tern_hub_add_hook(hub, &o, T0, &id)) == TERN_ERR_NOMEM) {
    ++*nomem;
  }
  if (rv != 0 || tern_hub_next_hook(hub, 0) != id) {
    return -1;
  }
  tern_hook_request r;
  while ((rv = tern_hub_next_hook_request(hub, T0, &r)) == TERN_ERR_NOMEM) {
    ++*nomem;
  }
  if (rv != 1 || r.kind != TERN_HOOK_CHALLENGE) {
    return -2;
  }
  const char *chal;
  size_t chall;
  tern_hook_check_challenge(r.query, r.querylen, NULL, 0, &chal, &chall);
  char answer[64];
  memcpy(answer, chal, chall);
  while ((rv = tern_hub_hook_done(hub, id, r.delivery, 200, NULL, 0,
                                  (const uint8_t *)answer, chall, T0)) ==
         TERN_ERR_NOMEM) {
    ++*nomem;
  }
  if (rv != 0) {
    return -3;
  }
  for (int i = 0; i < 3; ++i) {
    char k[4] = {'k', (char)('0' + i), 0, 0};
    for (int j = 0; j < 2; ++j) {
      while ((rv = enq(hub, id, k, j ? "b" : "a", NULL, 1, "[1]", T0)) ==
             TERN_ERR_NOMEM) {
        ++*nomem;
      }
      if (rv != 0) {
        return -4;
      }
    }
  }
  tern_hook_info in;
  tern_hub_get_hook_info(hub, id, &in, sizeof(in));
  if (in.queued != 3) {
    return -5;
  }
  while ((rv = tern_hub_next_hook_request(hub, T0, &r)) == TERN_ERR_NOMEM) {
    ++*nomem;
  }
  if (rv != 1 || r.entries != 3) {
    return -6;
  }
  while ((rv = tern_hub_hook_done(hub, id, r.delivery, 400, NULL, 0, NULL, 0,
                                  T0)) == TERN_ERR_NOMEM) {
    ++*nomem;
  }
  tern_event ev;
  int drop = 0, dis = 0;
  while (tern_hub_next_event(hub, &ev) == 1) {
    drop += ev.type == TERN_EV_HOOK_DROPPED;
    dis += ev.type == TERN_EV_HOOK_DISABLED;
  }
  tern_hub_get_hook_info(hub, id, &in, sizeof(in));
  if (rv != 0 || drop != 1 || dis != 1 || in.dropped != 3) {
    return -7;
  }
  return 0;
}

static void test_alloc_failures(void) {
  int bad = 0, total_nomem = 0;
  long leaks = 0;
  for (long k = 1; k < 120; ++k) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    tern_mem mem = tu_alloc_mem(&a);
    tern_settings s = tu_settings();
    tern_hub *hub = NULL;
    if (tern_hub_new(&hub, &s, &mem) != 0) {
      BAILOUT("hub");
    }
    memstore ms;
    memset(&ms, 0, sizeof(ms));
    tern_hub_set_store(hub, &memstore_methods, &ms, T0);
    a.fail_at = a.calls + k;
    int nomem = 0;
    int rv = cycle(hub, &nomem);
    if (rv != 0) {
      tap_diag("fail at +%ld: cycle %d", k, rv);
      ++bad;
    }
    total_nomem += nomem;
    tern_hub_del(hub);
    memstore_free(&ms);
    leaks += a.outstanding + tu_alloc_finish(&a);
  }
  CHECK_INT(bad, 0, "allocation failures: every call fails cleanly or works");
  CHECK(total_nomem > 10, "allocation failures were met");
  CHECK_INT(leaks, 0, "allocation failures: no leak");
}

int main(void) {
  test_defaults();
  test_batch_by_count_and_delay();
  test_batch_by_bytes();
  test_coalesce();
  test_signature();
  test_status_classes();
  test_backoff_bounds();
  test_retry_after();
  test_max_attempts_and_disable();
  test_ordering();
  test_challenge();
  test_bad_input();
  test_listing();
  test_restart();
  test_store_state_rule();
  test_file_store();
  test_turns();
  test_corrupt_records();
  test_alloc_failures();
  return tap_done();
}
