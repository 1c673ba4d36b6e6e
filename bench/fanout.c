/*
 * Topic fan-out figures (issue 9):
 *   fanout    one message to a topic with 100,000 members, each with a
 *             connection handshaken in memory: time from the publish until
 *             every connection has written it (tern_hub_next_ready and
 *             tern_conn_write in a loop), pacing off.  Target <= 150 ns
 *             per member (<= 15 ms in all).
 *   memory    1,000,000 offline subscriptions (the sessions made first and
 *             their memory subtracted, counted through a tern_mem), then
 *             1,000 retained messages: bytes per subscription (target
 *             <= 64) and bytes per subscriber per message (target 0: the
 *             messages cost their own size once).
 *   receipts  tern_topic_get_receipt on the 100,000-member topic: ns per
 *             query (target <= 10 us).
 * Each timed figure is the median of 5 runs (CPU time of the thread);
 * every run is printed.
 *   usage: fanout [members] [subscriptions]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_conn.h"
#include "tern.h"

#define RUNS 5

static tern_tstamp clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (tern_tstamp)ts.tv_sec * 1000000000u + (tern_tstamp)ts.tv_nsec;
}

static void die(const char *what, long rv) {
  fprintf(stderr, "fanout: %s: %s\n", what, tern_strerror((int)rv));
  exit(1);
}

/* CPU time of this thread, as bench/core measures: the machine's other
   work does not count. */
static tern_tstamp cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (tern_tstamp)ts.tv_sec * 1000000000u + (tern_tstamp)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v) {
  qsort(v, RUNS, sizeof(*v), cmp_double);
  return v[RUNS / 2];
}

/* ---- a counting allocator ------------------------------------------------ */

typedef struct counter {
  size_t bytes;
} counter;

typedef union hdr {
  size_t size;
  max_align_t align;
} hdr;

static void *c_malloc(size_t n, void *ud) {
  hdr *h = malloc(sizeof(hdr) + n);
  if (!h) {
    return NULL;
  }
  h->size = n;
  ((counter *)ud)->bytes += n;
  return h + 1;
}

static void c_free(void *p, void *ud) {
  if (p) {
    hdr *h = (hdr *)p - 1;
    ((counter *)ud)->bytes -= h->size;
    free(h);
  }
}

static void *c_calloc(size_t n, size_t size, void *ud) {
  void *p = c_malloc(n * size, ud);
  if (p) {
    memset(p, 0, n * size);
  }
  return p;
}

static void *c_realloc(void *p, size_t n, void *ud) {
  if (!p) {
    return c_malloc(n, ud);
  }
  hdr *h = (hdr *)p - 1;
  size_t old = h->size;
  hdr *g = realloc(h, sizeof(hdr) + n);
  if (!g) {
    return NULL;
  }
  g->size = n;
  ((counter *)ud)->bytes += n;
  ((counter *)ud)->bytes -= old;
  return g + 1;
}

/* ---- helpers ------------------------------------------------------------- */

static tern_conn *connect_key(tern_hub *hub, const char *key, tern_tstamp now) {
  tern_conn *c = NULL;
  int rv = bench_connect(hub, key, now, &c);
  if (rv != 0) {
    die("connect", rv);
  }
  return c;
}

static void ack(tern_conn *c, uint64_t seq, tern_tstamp now) {
  int rv = bench_ack(c, seq, now);
  if (rv != 0) {
    die("ACK", rv);
  }
}

static tern_msg_desc msg_of(const uint8_t *payload, size_t len) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.payload = payload;
  d.payloadlen = len;
  return d;
}

/* ---- fanout and receipts -------------------------------------------------- */

static void fanout(size_t members) {
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 1;
  s.liveness_timeout = 3600 * TERN_SECONDS;
  s.heartbeat_interval = 1800 * TERN_SECONDS;
  s.max_heartbeat = 1800 * TERN_SECONDS;
  tern_hub *hub;
  int rv = tern_hub_new(&hub, &s, NULL);
  if (rv != 0) {
    die("tern_hub_new", rv);
  }
  tern_tstamp now = 1000 * TERN_SECONDS;
  tern_topic *t;
  rv = tern_hub_create_topic(hub, "all", NULL, now, &t);
  if (rv != 0) {
    die("create topic", rv);
  }
  tern_conn **conns = calloc(members, sizeof(*conns));
  char key[32];
  for (size_t i = 0; i < members; ++i) {
    snprintf(key, sizeof(key), "member-%08zu", i);
    conns[i] = connect_key(hub, key, now);
    tern_ssize n = tern_hub_subscribe(hub, (const uint8_t *)key, strlen(key),
                                      "all", NULL, now, NULL);
    if (n != 1) {
      die("subscribe", n);
    }
  }
  uint8_t payload[64];
  memset(payload, 'x', sizeof(payload));
  tern_msg_desc d = msg_of(payload, sizeof(payload));
  double runs[RUNS];
  uint8_t buf[4096];
  uint64_t last = 0;
  printf("fan-out, one 64 B message to %zu members with connections:",
         members);
  for (int r = 0; r < RUNS; ++r) {
    tern_stats before, after;
    tern_hub_get_stats(hub, &before, sizeof(before));
    tern_tstamp t0 = cpu_ns();
    rv = tern_topic_publish(t, &d, now, &last);
    if (rv != 0) {
      die("publish", rv);
    }
    for (tern_conn *c; (c = tern_hub_next_ready(hub));) {
      while (tern_conn_write(c, buf, sizeof(buf), now) > 0) {
      }
    }
    tern_tstamp t1 = cpu_ns();
    tern_hub_get_stats(hub, &after, sizeof(after));
    if (after.sent - before.sent != members) {
      fprintf(stderr, "fanout: sent %llu of %zu\n",
              (unsigned long long)(after.sent - before.sent), members);
      exit(1);
    }
    runs[r] = (double)(t1 - t0);
    printf(" %.1f ms", runs[r] / 1e6);
    /* every member acks (not timed), so the next run starts clean */
    for (size_t i = 0; i < members; ++i) {
      tern_session_info info;
      tern_session_get_info(tern_conn_get_session(conns[i]), &info,
                            sizeof(info));
      ack(conns[i], info.next_seq - 1, now);
    }
  }
  double m = median(runs);
  printf(" -> median %.1f ms, %.0f ns per member (target <= 150)\n", m / 1e6,
         m / (double)members);
  /* receipts */
  tern_receipt rc;
  tern_topic_get_receipt(t, last, &rc, sizeof(rc));
  printf("receipt of the last: subscribed %llu, sent %llu, acked %llu\n",
         (unsigned long long)rc.subscribed, (unsigned long long)rc.sent,
         (unsigned long long)rc.acked);
  printf("receipts on a %zu-member topic:", members);
  const int queries = 1000000;
  for (int r = 0; r < RUNS; ++r) {
    uint64_t sum = 0;
    tern_tstamp t0 = clock_ns();
    for (int q = 0; q < queries; ++q) {
      tern_topic_get_receipt(t, last - (uint64_t)(q % RUNS), &rc,
                             sizeof(rc));
      sum += rc.acked;
    }
    tern_tstamp t1 = clock_ns();
    runs[r] = (double)(t1 - t0) / queries;
    printf(" %.1f", runs[r]);
    if (sum == 0) {
      printf("?");
    }
  }
  printf(" -> median %.1f ns per query (target <= 10000)\n", median(runs));
  for (size_t i = 0; i < members; ++i) {
    tern_conn_del(conns[i]);
  }
  free(conns);
  tern_hub_del(hub);
}

/* ---- memory --------------------------------------------------------------- */

static void memory(size_t subs) {
  counter cnt = {0};
  tern_mem mem = {&cnt, c_malloc, c_free, c_calloc, c_realloc};
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 1;
  tern_hub *hub;
  int rv = tern_hub_new(&hub, &s, &mem);
  if (rv != 0) {
    die("tern_hub_new", rv);
  }
  tern_tstamp now = 1000 * TERN_SECONDS;
  tern_topic *warm, *feed;
  tern_hub_create_topic(hub, "warm", NULL, now, &warm);
  tern_topic_options o;
  tern_topic_options_default(&o);
  o.max_messages = 1000;
  tern_hub_create_topic(hub, "feed", &o, now, &feed);
  char key[32];
  /* The sessions first, each with one subscription of its own, so that
     the pool and the session tables are warm. */
  for (size_t i = 0; i < subs; ++i) {
    snprintf(key, sizeof(key), "sub-%08zu", i);
    tern_ssize n = tern_hub_subscribe(hub, (const uint8_t *)key, strlen(key),
                                      "warm", NULL, now, NULL);
    if (n != 1) {
      die("subscribe", n);
    }
  }
  size_t b0 = cnt.bytes;
  for (size_t i = 0; i < subs; ++i) {
    snprintf(key, sizeof(key), "sub-%08zu", i);
    tern_ssize n = tern_hub_subscribe(hub, (const uint8_t *)key, strlen(key),
                                      "feed", NULL, now, NULL);
    if (n != 1) {
      die("subscribe", n);
    }
  }
  size_t b1 = cnt.bytes;
  printf("%zu offline subscriptions: %.2f bytes per subscription "
         "(target <= 64)\n",
         subs, (double)(b1 - b0) / (double)subs);
  uint8_t payload[64];
  memset(payload, 'y', sizeof(payload));
  tern_msg_desc d = msg_of(payload, sizeof(payload));
  const int nmsgs = 1000;
  /* The same messages to a topic without members, for comparison: what
     the 1,000,000 members add is the difference. */
  tern_topic *empty;
  tern_hub_create_topic(hub, "empty", &o, now, &empty);
  size_t e0 = cnt.bytes;
  for (int i = 0; i < nmsgs; ++i) {
    rv = tern_topic_publish(empty, &d, now, NULL);
    if (rv != 0) {
      die("publish", rv);
    }
  }
  size_t e1 = cnt.bytes;
  size_t f0 = cnt.bytes;
  for (int i = 0; i < nmsgs; ++i) {
    rv = tern_topic_publish(feed, &d, now, NULL);
    if (rv != 0) {
      die("publish", rv);
    }
  }
  size_t f1 = cnt.bytes;
  double with = (double)(f1 - f0), without = (double)(e1 - e0);
  printf("%d retained 64 B messages: %.1f bytes each with %zu members, "
         "%.1f without; %.6f bytes per subscriber per message (target 0)\n",
         nmsgs, with / nmsgs, subs, without / nmsgs,
         (with - without) / ((double)subs * nmsgs));
  tern_hub_del(hub);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  size_t members = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 100000;
  size_t subs = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 1000000;
  if (members) {
    fanout(members);
  }
  if (subs) {
    memory(subs);
  }
  return 0;
}
