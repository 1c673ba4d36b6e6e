/*
 * Tests of producers on the binary framing (lib/deliver/produce.c,
 * lib/wire/publish.c): PUBLISH frames answered by PUBACKs with every
 * status, SYNC answered only once the store confirms, 10,000 publishes
 * pipelined in one buffer (with the read stopping while PUBACKs pile up),
 * bad frames closing with the right GOAWAY and changing nothing, topics,
 * and a tern_client producer end to end.
 */
#include "memstore.h"
#include "tap.h"
#include "testutil.h"
#include "wire/publish.h"

/* Every PUBACK (and the GOAWAY, if any) written on a producer connection. */
typedef struct acks {
  wire_puback a[20000];
  uint8_t ids[20000][TERN_MAX_ID];
  size_t n;
  int goaway;          /* the GOAWAY reason + 1, 0 none */
  uint8_t *raw;
  size_t len, cap, off;
} acks;

static void parse(acks *k) {
  while (k->off < k->len) {
    const uint8_t *p = k->raw + k->off;
    size_t avail = k->len - k->off;
    tern_ssize n;
    if (p[0] == WIRE_PUBACK) {
      wire_puback a;
      n = wire_puback_decode(&a, p, avail);
      if (n > 0 && k->n < 20000) {
        memcpy(k->ids[k->n], a.id, a.idlen);
        a.id = k->ids[k->n];
        k->a[k->n++] = a;
      }
    } else {
      wire_frame f;
      n = wire_frame_decode(&f, p, avail, 1 << 24);
      if (n > 0 && f.type == WIRE_GOAWAY) {
        k->goaway = (int)f.u.goaway.reason + 1;
      }
    }
    if (n <= 0) {
      return;
    }
    k->off += (size_t)n;
  }
}

static void drain(acks *k, tern_conn *c, tern_tstamp now) {
  uint8_t buf[4096];
  tern_ssize n;
  while ((n = tern_conn_write(c, buf, sizeof(buf), now)) > 0) {
    if (k->len + (size_t)n > k->cap) {
      k->cap = (k->cap + (size_t)n) * 2;
      k->raw = tu_xrealloc(k->raw, k->cap);
    }
    memcpy(k->raw + k->len, buf, (size_t)n);
    k->len += (size_t)n;
  }
  parse(k);
}

static acks *acks_new(void) {
  acks *k = tu_xmalloc(sizeof(*k));
  memset(k, 0, sizeof(*k));
  return k;
}
static void acks_del(acks *k) {
  free(k->raw);
  free(k);
}

static size_t enc(uint8_t *buf, size_t cap, uint64_t req, unsigned flags,
                  const char *target, const char *id, const char *payload) {
  wire_publish p;
  memset(&p, 0, sizeof(p));
  p.req = req;
  p.flags = flags;
  p.priority = TERN_PRIO_NORMAL;
  p.target = (const uint8_t *)target;
  p.targetlen = strlen(target);
  p.id = (const uint8_t *)id;
  p.idlen = id ? strlen(id) : 0;
  p.payload = (const uint8_t *)payload;
  p.payloadlen = strlen(payload);
  return wire_publish_encode(buf, cap, &p);
}

static tern_conn *producer(tern_hub *hub, acks *k, tern_tstamp now) {
  tern_conn *c = NULL;
  if (tern_conn_new(&c, hub, now) != 0 || tern_conn_allow_publish(c, 1) != 0) {
    BAILOUT("producer");
  }
  tu_hello(c, "producer", 0, 0, 0, NULL, now);
  drain(k, c, now);
  return c;
}

static tern_ssize pub1(tern_conn *c, uint64_t req, unsigned flags,
                       const char *target, const char *id,
                       const char *payload, tern_tstamp now) {
  uint8_t buf[8192];
  size_t n = enc(buf, sizeof(buf), req, flags, target, id, payload);
  return tern_conn_read(c, buf, n, now);
}

static void test_statuses(void) {
  tern_settings s = tu_settings();
  s.max_pending = 2;
  s.overflow[TERN_PRIO_NORMAL] = TERN_OVERFLOW_REJECT;
  s.max_payload = 100;
  tern_hub *hub = tu_hub(&s);
  acks *k = acks_new();
  tern_conn *c = producer(hub, k, T0);
  pub1(c, 1, 0, "s1", "m1", "hello", T0);
  pub1(c, 2, 0, "s1", "m1", "again", T0);
  pub1(c, 3, 0, "s1", NULL, "gen", T0);
  pub1(c, 4, 0, "s1", "m3", "full", T0);
  pub1(c, 5, WIRE_PUB_TOPIC, "no.such", NULL, "x", T0);
  char big[201];
  memset(big, 'b', 200);
  big[200] = 0;
  pub1(c, 6, 0, "s2", "m4", big, T0);
  drain(k, c, T0);
  CHECK_INT(k->n, 6, "six PUBACKs");
  CHECK(k->a[0].req == 1 && k->a[0].status == TERN_PUBACK_ACCEPTED &&
            k->a[0].idlen == 2 && memcmp(k->a[0].id, "m1", 2) == 0,
        "accepted, id echoed");
  CHECK(k->a[1].req == 2 && k->a[1].status == TERN_PUBACK_DUPLICATE,
        "duplicate");
  CHECK(k->a[2].status == TERN_PUBACK_ACCEPTED && k->a[2].idlen > 0,
        "accepted with a generated id");
  CHECK(k->a[3].status == TERN_PUBACK_FULL && k->a[3].retry_ms == 1000,
        "full with retry-after 1000 ms");
  CHECK(k->a[4].status == TERN_PUBACK_NOT_FOUND, "topic not found");
  CHECK(k->a[5].status == TERN_PUBACK_TOO_LARGE, "payload too large");
  CHECK_INT(tu_info(hub, "s1").pending, 2, "s1 holds two messages");
  tern_conn_del(c);
  tern_hub_del(hub);
  acks_del(k);
}

/* VOLATILE is flag 0x40, the first that needs a two-byte varint: the
   encoder once wrote the flags as one byte, which the decoder (rightly)
   read as the start of a two-byte varint (publish_fuzz found it). */
static void test_volatile(void) {
  uint8_t buf[256];
  size_t n = enc(buf, sizeof(buf), 7, WIRE_PUB_VOLATILE, "s1", "v1", "gone");
  wire_publish w;
  CHECK(n > 0 && wire_publish_decode(&w, buf, n, 1 << 16) == (tern_ssize)n &&
            w.flags == WIRE_PUB_VOLATILE && w.req == 7 &&
            wire_publish_size(&w) == n,
        "a VOLATILE PUBLISH encodes, decodes and sizes alike");
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  acks *k = acks_new();
  tern_conn *c = producer(hub, k, T0);
  CHECK(tern_conn_read(c, buf, n, T0) == (tern_ssize)n, "the hub reads it");
  drain(k, c, T0);
  CHECK(k->n == 1 && k->a[0].req == 7 &&
            k->a[0].status == TERN_PUBACK_ACCEPTED,
        "VOLATILE publish over the wire: accepted");
  CHECK_INT(tu_info(hub, "s1").pending, 1, "and queued");
  tern_conn_del(c);
  tern_hub_del(hub);
  acks_del(k);
}

static void test_sync(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  ms.later = 1;
  CHECK_INT(tern_hub_set_store(hub, &memstore_methods, &ms, T0), 0, "store");
  acks *k = acks_new();
  tern_conn *c = producer(hub, k, T0);
  pub1(c, 1, WIRE_PUB_SYNC, "s", "a", "sync", T0);
  pub1(c, 2, 0, "s", "b", "async", T0);
  drain(k, c, T0);
  CHECK(k->n == 1 && k->a[0].req == 2 &&
            k->a[0].status == TERN_PUBACK_ACCEPTED,
        "the ASYNC publish is answered, the SYNC one waits");
  tern_hub_flush(hub);
  drain(k, c, T0);
  CHECK_INT(k->n, 1, "handed to the store: still no PERSISTED");
  memstore_sync(&ms);
  CHECK_INT(tern_hub_store_done(hub, ms.last_batch, 0), 0, "store done");
  drain(k, c, T0);
  CHECK(k->n == 2 && k->a[1].req == 1 &&
            k->a[1].status == TERN_PUBACK_PERSISTED && k->a[1].idlen == 1,
        "PERSISTED once the store confirmed");
  tern_event ev;
  int persisted_events = 0;
  while (tern_hub_next_event(hub, &ev) == 1) {
    persisted_events += ev.type == TERN_EV_PERSISTED;
  }
  CHECK_INT(persisted_events, 0, "no PERSISTED event for the host");
  /* A producer that leaves before its store answers: nothing is owed. */
  pub1(c, 3, WIRE_PUB_SYNC, "s", "c", "sync", T0);
  tern_hub_flush(hub);
  tern_conn_del(c);
  CHECK_INT(tern_hub_store_done(hub, ms.last_batch, 0), 0, "done after del");
  persisted_events = 0;
  while (tern_hub_next_event(hub, &ev) == 1) {
    persisted_events += ev.type == TERN_EV_PERSISTED;
  }
  CHECK_INT(persisted_events, 0, "still no PERSISTED event");
  tern_hub_del(hub);
  memstore_free(&ms);
  acks_del(k);
}

static void test_pipeline(void) {
  tern_settings s = tu_settings();
  s.max_pending = 20000;
  tern_hub *hub = tu_hub(&s);
  acks *k = acks_new();
  tern_conn *c = producer(hub, k, T0);
  size_t cap = 10000 * 64, len = 0;
  uint8_t *buf = tu_xmalloc(cap);
  for (uint64_t i = 1; i <= 10000; ++i) {
    char id[32];
    snprintf(id, sizeof(id), "id%llu", (unsigned long long)i);
    len += enc(buf + len, cap - len, i, 0, "sink", id, "payload");
  }
  size_t off = 0;
  int reads = 0, short_reads = 0;
  while (off < len && reads < 100000) {
    tern_ssize n = tern_conn_read(c, buf + off, len - off, T0);
    if (n < 0) {
      break;
    }
    short_reads += (size_t)n < len - off;
    off += (size_t)n;
    ++reads;
    drain(k, c, T0);
  }
  CHECK(off == len, "all 10,000 publishes consumed");
  CHECK(short_reads > 0, "the read stopped while PUBACKs piled up");
  int order = k->n == 10000;
  for (size_t i = 0; order && i < k->n; ++i) {
    order = k->a[i].req == i + 1 && k->a[i].status == TERN_PUBACK_ACCEPTED;
  }
  CHECK(order, "10,000 PUBACKs, ACCEPTED, in order");
  CHECK_INT(tu_info(hub, "sink").pending, 10000, "10,000 messages queued");
  /* Byte by byte: the same. */
  acks_del(k);
  k = acks_new();
  tern_conn *c2 = producer(hub, k, T0);
  size_t one = enc(buf, cap, 7, 0, "sink2", "x", "split");
  for (size_t i = 0; i < one; ++i) {
    tern_conn_read(c2, buf + i, 1, T0);
  }
  drain(k, c2, T0);
  CHECK(k->n == 1 && k->a[0].req == 7, "a PUBLISH fed byte by byte");
  free(buf);
  tern_conn_del(c);
  tern_conn_del(c2);
  tern_hub_del(hub);
  acks_del(k);
}

static void bad(const uint8_t *frame, size_t n, int want, int reason,
                const char *what) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  acks *k = acks_new();
  tern_conn *c = producer(hub, k, T0);
  pub1(c, 1, 0, "s", "ok", "before", T0);
  tern_stats before = tu_stats(hub);
  tern_ssize rv = tern_conn_read(c, frame, n, T0);
  drain(k, c, T0);
  tern_stats after = tu_stats(hub);
  CHECK(rv == want && k->goaway == reason + 1 && k->n == 1 &&
            after.published == before.published,
        "%s: %s, GOAWAY %d, the PUBACK before it, nothing published", what,
        tern_strerror(want), reason);
  tern_conn_del(c);
  tern_hub_del(hub);
  acks_del(k);
}

static void test_bad(void) {
  uint8_t b[512];
  size_t n = enc(b, sizeof(b), 9, 0, "s", "x", "p");
  uint8_t f[512];
  /* flags is the byte after req (a one-byte varint) */
  memcpy(f, b, n);
  f[3] = 0x03;
  bad(f, n, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "priority 3");
  memcpy(f, b, n);
  f[3] = 0x21 | 0x40;
  bad(f, n, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "SYNC with VOLATILE");
  memcpy(f, b, n);
  f[3] = 0x31;
  bad(f, n, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "SYNC to a topic");
  memcpy(f, b, n);
  f[4] = 0; /* empty target */
  bad(f, n, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "empty target");
  char key[200];
  memset(key, 'k', 129);
  key[129] = 0;
  size_t m = enc(f, sizeof(f), 9, 0, key, "x", "p");
  bad(f, m, TERN_ERR_TOO_LARGE, TERN_GOAWAY_TOO_LARGE, "key of 129 bytes");
  /* body length over max_payload + overhead, from the header alone */
  uint8_t h[5] = {WIRE_PUBLISH, 0x80, 0x20, 0, 0}; /* 2 MiB */
  bad(h, sizeof(h), TERN_ERR_TOO_LARGE, TERN_GOAWAY_TOO_LARGE, "huge body");
  /* a body one byte short of its fields */
  memcpy(f, b, n);
  f[1] = 3;
  bad(f, 5, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "truncated fields");

  /* PUBLISH before the WELCOME, and after the right is taken back */
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0);
  tern_conn_allow_publish(c, 1);
  CHECK_INT(tern_conn_read(c, b, n, T0), TERN_ERR_PROTO,
            "PUBLISH before HELLO");
  tern_conn_del(c);
  acks *k = acks_new();
  c = producer(hub, k, T0);
  tern_conn_allow_publish(c, 0);
  CHECK_INT(tern_conn_read(c, b, n, T0), TERN_ERR_PROTO, "revoked");
  drain(k, c, T0);
  CHECK_INT(k->goaway, TERN_GOAWAY_REJECTED + 1, "revoked: GOAWAY REJECTED");
  tern_conn_del(c);
  tern_hub_del(hub);
  acks_del(k);
}

static void test_topic_and_client(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  CHECK_INT(tern_hub_create_topic(hub, "news", NULL, T0, NULL), 0, "topic");
  tu_out so;
  tu_out_init(&so);
  tern_conn *sub = tu_connect(hub, "reader", T0, &so);
  CHECK(tern_hub_subscribe(hub, (const uint8_t *)"reader", 6, "news", NULL,
                           T0, NULL) == 1,
        "subscribed");
  acks *k = acks_new();
  tern_conn *c = producer(hub, k, T0);
  pub1(c, 1, WIRE_PUB_TOPIC, "news", "n1", "headline", T0);
  drain(k, c, T0);
  CHECK(k->n == 1 && k->a[0].status == TERN_PUBACK_ACCEPTED,
        "topic publish accepted");
  tu_drain(&so, sub, T0);
  CHECK(tu_count(&so, WIRE_MSG, 0) == 1 &&
            tu_msg_payload_is(tu_last(&so, WIRE_MSG), "headline"),
        "the subscriber gets it");

  /* tern_client as the producer, end to end */
  tern_client *cl = NULL;
  tern_client_settings cs;
  tern_client_settings_default(&cs);
  CHECK_INT(tern_client_new(&cl, (const uint8_t *)"cprod", 5, NULL, 0, &cs,
                            NULL, T0),
            0, "client");
  tern_client_event ce;
  while (tern_client_next_event(cl, &ce) == 1) {
  }
  tern_conn *sc = NULL;
  tern_conn_new(&sc, hub, T0);
  tern_conn_allow_publish(sc, 1);
  tern_client_connect(cl, T0);
  uint8_t buf[65536];
  int puback_ok = 0, sent = 0;
  uint64_t reqs = 0;
  for (int round = 0; round < 200; ++round) {
    tern_ssize n = tern_client_write(cl, buf, sizeof(buf), T0);
    if (n > 0) {
      tern_ssize r = tern_conn_read(sc, buf, (size_t)n, T0);
      if (r != n) {
        break;
      }
    }
    tern_ssize m = tern_conn_write(sc, buf, sizeof(buf), T0);
    if (m > 0) {
      tern_client_read(cl, buf, (size_t)m, T0);
    }
    while (tern_client_next_event(cl, &ce) == 1) {
      if (ce.type == TERN_CLIENT_EV_CONNECTED && !sent) {
        tern_msg_desc d;
        memset(&d, 0, sizeof(d));
        d.priority = TERN_PRIO_HIGH;
        d.payload = (const uint8_t *)"from client";
        d.payloadlen = 11;
        for (int i = 0; i < 1000; ++i) {
          char id[16];
          snprintf(id, sizeof(id), "c%d", i);
          d.id = (const uint8_t *)id;
          d.idlen = strlen(id);
          if (tern_client_publish(cl, 0, (const uint8_t *)"reader", 6, &d,
                                  &reqs, T0) != 0) {
            break;
          }
        }
        sent = 1;
      }
      if (ce.type == TERN_CLIENT_EV_PUBACK && ce.reason == 0 &&
          ce.seq == (uint64_t)puback_ok + 1) {
        ++puback_ok;
      }
    }
  }
  CHECK(reqs == 1000 && puback_ok == 1000,
        "1,000 client publishes, their PUBACK events in order");
  tu_drain(&so, sub, T0);
  CHECK_INT(tu_count(&so, WIRE_MSG, 0), 256,
            "the subscriber gets them (a window's worth, unacked)");
  tern_client_del(cl);
  tern_conn_del(sc);
  tern_conn_del(c);
  tern_conn_del(sub);
  tu_out_free(&so);
  tern_hub_del(hub);
  acks_del(k);
}

int main(void) {
  test_statuses();
  test_sync();
  test_volatile();
  test_pipeline();
  test_bad();
  test_topic_and_client();
  return tap_done();
}
