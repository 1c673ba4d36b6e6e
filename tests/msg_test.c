/*
 * Tests of the message pool (lib/deliver/msg.c): a backlog costs one
 * allocation per slab, not per message; it gives its memory back as it
 * drains, down to max_pool_bytes; max_pool_bytes 0 turns it off; messages
 * of every size class and of none come out intact whatever order they are
 * freed in; and a slab that cannot be allocated fails the publish with
 * nothing changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/hub.h"
#include "tap.h"
#include "testutil.h"

#define KEY "pool-session"

static tern_settings backlog_settings(size_t max_pool_bytes) {
  tern_settings s = tu_settings();
  s.max_pending = 1000000;
  s.max_pending_bytes = 1u << 30;
  s.max_pool_bytes = max_pool_bytes;
  return s;
}

static tern_hub *hub_with(tu_alloc *a, const tern_settings *s) {
  memset(a, 0, sizeof(*a));
  tern_mem mem = tu_alloc_mem(a);
  tern_hub *hub = NULL;
  if (tern_hub_new(&hub, s, &mem) != 0) {
    abort();
  }
  return hub;
}

/* |n| messages with 64-byte payloads and generated ids. */
static int fill(tern_hub *hub, long n) {
  char payload[65];
  memset(payload, 'p', 64);
  payload[64] = 0;
  for (long i = 0; i < n; ++i) {
    int rv = tu_pub(hub, KEY, TERN_PRIO_NORMAL, NULL, payload, T0);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

/* Writes and acks until |upto| messages are acked or nothing is left. */
static void drain(tern_conn *c, uint64_t upto) {
  static uint8_t buf[1 << 16];
  tern_session_info info;
  uint64_t acked = 0;
  while (acked < upto && tern_conn_want_write(c)) {
    if (tern_conn_write(c, buf, sizeof(buf), T0) <= 0) {
      break;
    }
    tern_session_get_info(tern_conn_get_session(c), &info, sizeof(info));
    uint64_t seq = info.next_seq - 1 < upto ? info.next_seq - 1 : upto;
    if (seq > acked) {
      tu_ack(c, seq, T0);
      acked = seq;
    }
  }
}

/* The size classes: each size goes to the smallest class that holds it
   rounded up to 32 bytes. */
static void test_classes(void) {
  int ok = 1;
  for (size_t size = 1; size <= MSG_POOL_MAX_BLOCK; ++size) {
    unsigned c = msg_class_of[(size - 1) >> 5];
    size_t want = (size + 31) / 32 * 32;
    if (c >= MSG_CLASSES || msg_class_size[c] < size ||
        (c > 0 && msg_class_size[c - 1] >= want)) {
      ok = 0;
      tap_diag("size %zu: class %u", size, c);
      break;
    }
  }
  CHECK(ok, "every size up to %d bytes goes to the smallest class that fits",
        MSG_POOL_MAX_BLOCK);
  CHECK_INT(msg_class_size[MSG_CLASSES - 1], MSG_POOL_MAX_BLOCK,
            "the largest class is the largest pooled block");
  CHECK((MSG_SLAB_BYTES - sizeof(slab)) / MSG_POOL_MAX_BLOCK >= 8 &&
            MSG_SLAB_BYTES < 65536,
        "a slab holds 8 of the largest blocks; offsets fit slab_off");
}

/* A backlog costs one allocation per slab; pool off, one per message. */
static void test_backlog_allocations(void) {
  const long n = 20000;
  tu_alloc a;
  tern_settings s = backlog_settings(1024 * 1024);
  tern_hub *hub = hub_with(&a, &s);
  CHECK_INT(fill(hub, 1), 0, "first publish");
  long calls = a.calls;
  CHECK_INT(fill(hub, n), 0, "20,000 more into the backlog");
  calls = a.calls - calls;
  CHECK(calls <= n / 50,
        "pool on: %ld allocation calls for %ld messages (one per slab)",
        calls, n);
  size_t per_msg = a.bytes / (size_t)(n + 1);
  CHECK(per_msg < 256, "pool on: %zu bytes per small message", per_msg);
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "pool on: tern_hub_del frees every slab, nothing written after free");

  s = backlog_settings(0);
  hub = hub_with(&a, &s);
  tern_conn *c = tu_connect(hub, KEY, T0, NULL);
  CHECK_INT(fill(hub, 1), 0, "pool off: first publish");
  calls = a.calls;
  long blocks = a.outstanding;
  CHECK_INT(fill(hub, n), 0, "pool off: 20,000 more");
  CHECK(a.calls - calls == n && a.outstanding - blocks == n,
        "pool off: one allocation per message (%ld calls)", a.calls - calls);
  drain(c, UINT64_MAX);
  CHECK_INT(tu_stats(hub).messages, 0, "pool off: the backlog drained");
  CHECK(a.outstanding <= blocks,
        "pool off: every message block freed (%ld left, %ld before)",
        a.outstanding, blocks);
  tern_conn_del(c);
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "pool off: nothing leaked, nothing written after free");
}

/* A burst gives its memory back as it drains: what stays is at most
   max_pool_bytes plus one slab per class in use. */
static void test_backlog_returns_memory(void) {
  const long n = 40000; /* about 9 MB */
  const size_t cap = 64 * 1024;
  tu_alloc a;
  tern_settings s = backlog_settings(cap);
  tern_hub *hub = hub_with(&a, &s);
  tern_conn *c = tu_connect(hub, KEY, T0, NULL);
  size_t base = a.bytes;
  CHECK_INT(fill(hub, n), 0, "a burst of 40,000 messages");
  size_t full = a.bytes - base;
  CHECK(full > (size_t)n * 200, "the burst holds %zu bytes", full);
  drain(c, (uint64_t)n / 2);
  size_t half = a.bytes - base;
  CHECK(half < full / 2 + full / 10,
        "half drained: %zu bytes held of %zu", half, full);
  drain(c, UINT64_MAX);
  CHECK_INT(tu_stats(hub).messages, 0, "the burst drained");
  size_t left = a.bytes - base;
  CHECK(left <= cap + MSG_SLAB_BYTES + 65536,
        "drained: %zu bytes held (max_pool_bytes %zu + one slab + the "
        "in-flight and event tables)",
        left, cap);
  CHECK(hub->pool_kept_bytes <= cap, "kept slabs within max_pool_bytes");
  /* The kept slabs serve the next burst without new allocations. */
  long calls = a.calls;
  CHECK_INT(fill(hub, (long)(cap / 256)), 0, "a small second burst");
  CHECK_INT(a.calls - calls, 0, "served by the kept slabs");
  drain(c, UINT64_MAX);
  /* Kept slabs serve another size class too (cut anew). */
  static char big[701];
  memset(big, 'q', 700);
  calls = a.calls;
  int ok = 1;
  for (int i = 0; i < 40; ++i) { /* 40 * ~820 bytes: 3 slabs */
    ok &= tu_pub(hub, KEY, TERN_PRIO_NORMAL, NULL, big, T0) == 0;
  }
  CHECK(ok && a.calls == calls,
        "another size class takes the kept slabs (%ld calls)", a.calls - calls);
  drain(c, UINT64_MAX);
  /* One message at a time reuses one slab, however long it goes on. */
  calls = a.calls;
  for (int i = 0; i < 1000; ++i) {
    fill(hub, 1);
    drain(c, UINT64_MAX);
  }
  CHECK_INT(a.calls - calls, 0, "publish and ack one at a time: no allocation");
  tern_conn_del(c);
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "nothing leaked, nothing written after free");
}

/* Payload |i|: length i * 37 % 1500 (every class and beyond), bytes from i. */
static size_t payload_of(char *out, long i) {
  size_t len = (size_t)(i * 37 % 1500);
  for (size_t k = 0; k < len; ++k) {
    out[k] = (char)('a' + (i + (long)k) % 26);
  }
  out[len] = 0;
  return len;
}

/* Messages of every class and unpooled ones, on several sessions freed in
   interleaved orders (acks, collapse, expiry), come out intact. */
static void test_mixed_sizes(void) {
  tu_alloc a;
  tern_settings s = backlog_settings(32 * 1024);
  s.max_payload = 4096;
  tern_hub *hub = hub_with(&a, &s);
  enum { NSESS = 5, NMSG = 3000 };
  tu_out out[NSESS];
  tern_conn *conns[NSESS];
  char key[NSESS][8];
  for (int k = 0; k < NSESS; ++k) {
    snprintf(key[k], sizeof(key[k]), "mix%d", k);
    tu_out_init(&out[k]);
    conns[k] = tu_connect(hub, key[k], T0, &out[k]);
  }
  static char payload[1600];
  int ok = 1;
  for (long i = 0; i < NMSG; ++i) {
    payload_of(payload, i);
    char id[16], ck[8];
    snprintf(id, sizeof(id), "m%ld", i);
    snprintf(ck, sizeof(ck), "c%ld", i % 7);
    /* every third message carries a collapse key: some are replaced while
       pending, and their blocks go back early */
    int rv = tu_pub_full(hub, key[i % NSESS], (int)(i % 3), id,
                         i % 3 == 0 ? ck : NULL, i % 11 == 0 ? SEC(1) : 0,
                         payload, T0, NULL);
    ok &= rv == 0;
    if (i % 97 == 0) { /* sessions drain at different paces */
      int k = (int)(i / 97 % NSESS);
      tu_write(&out[k], conns[k], 1000, T0);
      tern_session_info info;
      tern_session_get_info(tern_conn_get_session(conns[k]), &info,
                            sizeof(info));
      tu_ack(conns[k], info.next_seq - 1, T0);
    }
  }
  CHECK(ok, "3,000 publishes of 0 to 1,500 bytes");
  tern_hub_handle_expiry(hub, T0 + SEC(2)); /* the 1 s TTLs go */
  for (int k = 0; k < NSESS; ++k) {
    tu_drain(&out[k], conns[k], T0 + SEC(2));
  }
  long bad = 0, seen = 0;
  for (int k = 0; k < NSESS; ++k) {
    for (size_t f = 0; f < out[k].nframes; ++f) {
      const wire_frame *w = &out[k].frames[f].f;
      if (w->type != WIRE_MSG) {
        continue;
      }
      ++seen;
      long i = atol((const char *)w->u.msg.id + 1);
      size_t len = payload_of(payload, i);
      if (w->u.msg.payloadlen != len ||
          memcmp(w->u.msg.payload, payload, len) != 0) {
        ++bad;
      }
    }
  }
  CHECK(seen > NMSG / 2 && bad == 0, "%ld messages received, %ld altered",
        seen, bad);
  CHECK(a.bad_frees == 0, "no foreign frees");
  for (int k = 0; k < NSESS; ++k) {
    tern_conn_del(conns[k]);
    tu_out_free(&out[k]);
  }
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "mixed sizes: nothing leaked, nothing written after free");
}

/* A slab that cannot be allocated fails the publish with NOMEM and leaves
   the hub as it was; the next publish succeeds. */
static void test_slab_nomem(void) {
  tu_alloc a;
  tern_settings s = backlog_settings(0);
  s.max_pool_bytes = 1024 * 1024;
  tern_hub *hub = hub_with(&a, &s);
  CHECK_INT(fill(hub, 1), 0, "a session with one message");
  /* Fill the slab, then fail the next slab's allocation. */
  long n = 0;
  int rv = 0;
  for (; n < 1000 && rv == 0; ++n) {
    tern_stats before = tu_stats(hub);
    tern_session_info ibefore = tu_info(hub, KEY);
    a.fail_at = a.calls + 1;
    a.failed = 0;
    rv = fill(hub, 1);
    if (a.failed) {
      tern_stats after = tu_stats(hub);
      tern_session_info iafter = tu_info(hub, KEY);
      CHECK_INT(rv, TERN_ERR_NOMEM, "the publish needing a new slab fails");
      CHECK(tu_gauges_equal(&before, &after) &&
                before.published == after.published &&
                tu_info_equal(&ibefore, &iafter),
            "and changes nothing");
      break;
    }
  }
  CHECK(a.failed == 1, "a publish needed a new slab after %ld", n);
  a.fail_at = 0;
  CHECK_INT(fill(hub, 1), 0, "the next publish succeeds");
  tern_conn *c = tu_connect(hub, KEY, T0, NULL);
  drain(c, UINT64_MAX);
  CHECK_INT(tu_stats(hub).messages, 0, "everything drains");
  tern_conn_del(c);
  tern_hub_del(hub);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "nothing leaked, nothing written after free");
}

int main(void) {
  test_classes();
  test_backlog_allocations();
  test_backlog_returns_memory();
  test_mixed_sizes();
  test_slab_nomem();
  return tap_done();
}
