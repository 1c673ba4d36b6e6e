/*
 * tern_hub_publish_many: one shared payload for many sessions, per-key
 * outcomes, dedup per session, memory (a 1 MiB message to 10,000 sessions
 * costs the payload once), allocation failures.
 */
#include "tap.h"
#include "testutil.h"

static void test_basic(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o[3];
  tern_conn *c[3];
  const char *names[3] = {"a", "bb", "ccc"};
  tern_key keys[4];
  for (int i = 0; i < 3; ++i) {
    tu_out_init(&o[i]);
    c[i] = tu_connect(hub, names[i], T0, &o[i]);
    keys[i].key = (const uint8_t *)names[i];
    keys[i].keylen = strlen(names[i]);
  }
  keys[3].key = (const uint8_t *)"";
  keys[3].keylen = 0;
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)"id-1";
  d.idlen = 4;
  d.payload = (const uint8_t *)"hello";
  d.payloadlen = 5;
  d.cookie = 7;
  tern_key_result res[4];
  tern_publish_result r;
  tern_ssize n = tern_hub_publish_many(hub, keys, 4, &d, T0, res, &r);
  CHECK_INT((int)n, 3, "queued for three");
  CHECK(res[0].error == 0 && res[1].error == 0 && res[2].error == 0 &&
            res[3].error == TERN_ERR_INVALID &&
            res[0].outcome == TERN_PUBLISH_QUEUED,
        "per-key outcomes");
  CHECK(r.idlen == 4 && memcmp(r.id, "id-1", 4) == 0 &&
            r.outcome == TERN_PUBLISH_QUEUED,
        "the result names the id");
  for (int i = 0; i < 3; ++i) {
    tu_drain(&o[i], c[i], T0);
    const wire_frame *f = tu_nth(&o[i], WIRE_MSG, 0, 0);
    CHECK(tu_msg_id_is(f, "id-1") && tu_msg_payload_is(f, "hello"),
          "%s got it", names[i]);
  }
  n = tern_hub_publish_many(hub, keys, 3, &d, T0, res, NULL);
  CHECK(n == 0 && res[0].error == TERN_ERR_DUPLICATE &&
            res[2].error == TERN_ERR_DUPLICATE,
        "dedup per session");
  for (int i = 0; i < 3; ++i) {
    tu_ack(c[i], tu_max_seq(&o[i]), T0);
  }
  CHECK(tu_stats(hub).messages == 0, "acked everywhere");
  d.payloadlen = s.max_payload + 1;
  CHECK(tern_hub_publish_many(hub, keys, 3, &d, T0, res, NULL) ==
            TERN_ERR_TOO_LARGE,
        "a bad descriptor fails as a whole");
  CHECK(tern_hub_publish_many(hub, NULL, 3, &d, T0, res, NULL) ==
            TERN_ERR_INVALID,
        "NULL keys");
  for (int i = 0; i < 3; ++i) {
    tern_conn_del(c[i]);
    tu_out_free(&o[i]);
  }
  tern_hub_del(hub);
}

#define NSESS 10000

static void test_memory(void) {
  tu_alloc al;
  memset(&al, 0, sizeof(al));
  tern_mem mem = tu_alloc_mem(&al);
  tern_settings s = tu_settings();
  tern_hub *hub = NULL;
  tern_hub_new(&hub, &s, &mem);
  static char names[NSESS][8];
  static tern_key keys[NSESS];
  for (int i = 0; i < NSESS; ++i) {
    snprintf(names[i], sizeof(names[i]), "s%05d", i);
    keys[i].key = (const uint8_t *)names[i];
    keys[i].keylen = strlen(names[i]);
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"x";
  d.payloadlen = 1;
  /* Sessions first, so that what is measured is the message. */
  CHECK_INT((int)tern_hub_publish_many(hub, keys, NSESS, &d, T0, NULL, NULL),
            NSESS, "sessions made");
  size_t before = al.bytes;
  size_t big = 1024 * 1024;
  uint8_t *payload = calloc(1, big);
  d.payload = payload;
  d.payloadlen = big;
  CHECK_INT((int)tern_hub_publish_many(hub, keys, NSESS, &d, T0, NULL, NULL),
            NSESS, "1 MiB to 10,000 sessions");
  size_t cost = al.bytes - before;
  tap_diag("1 MiB to %d sessions: %zu bytes (%.1f per session beyond the "
           "payload)", NSESS, cost, (double)(cost - big) / NSESS);
  CHECK(cost < 2 * big + (size_t)NSESS * 256,
        "costs the payload once plus a small record each (%zu)", cost);
  tern_hub_del(hub);
  CHECK(al.outstanding == 0, "nothing leaked");
  tu_alloc_finish(&al);
  free(payload);
}

static void test_nomem(void) {
  int whole = 0, partial = 0;
  for (long k = 1; k < 30; ++k) {
    tu_alloc al;
    memset(&al, 0, sizeof(al));
    tern_mem mem = tu_alloc_mem(&al);
    tern_settings s = tu_settings();
    tern_hub *hub = NULL;
    tern_hub_new(&hub, &s, &mem);
    tu_pub(hub, "a", TERN_PRIO_NORMAL, NULL, "x", T0);
    tern_key keys[3] = {{(const uint8_t *)"a", 1},
                        {(const uint8_t *)"b", 1},
                        {(const uint8_t *)"c", 1}};
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.payload = (const uint8_t *)"p";
    d.payloadlen = 1;
    tern_key_result res[3];
    tern_stats before = tu_stats(hub);
    al.fail_at = al.calls + k;
    tern_ssize n = tern_hub_publish_many(hub, keys, 3, &d, T0, res, NULL);
    al.fail_at = 0;
    tern_stats after = tu_stats(hub);
    if (n == TERN_ERR_NOMEM) {
      ++whole;
      CHECK(tu_gauges_equal(&before, &after), "NOMEM at %ld: no change", k);
    } else {
      int failed = 0;
      for (int i = 0; i < 3; ++i) {
        failed += res[i].error == TERN_ERR_NOMEM;
      }
      partial += failed > 0;
      CHECK((int)n + failed == 3 &&
                after.messages == before.messages + (uint64_t)n,
            "at %ld: the failed keys got nothing, the others one each", k);
    }
    tern_hub_del(hub);
    CHECK(al.outstanding == 0, "no leak at %ld", k);
    tu_alloc_finish(&al);
  }
  CHECK(whole > 0 && partial > 0, "the sweep hit the payload and a key");
}

int main(void) {
  test_basic();
  test_memory();
  test_nomem();
  return tap_done();
}
