/*
 * bench/hooks — entries per second through the web hooks of a hub
 * (lib/hooks): enqueue, take the request (form the batch, write its JSON
 * body, sign it with HMAC-SHA256), report 200.
 *
 *   hooks [entries]   (default 1,000,000 per run)
 *
 * Three shapes: batches of 1000 entries (the default max_items), batches
 * of 1000 with coalescing over 100 keys (ten changes per key per batch),
 * and one entry per request (max_items 1: the signing cost per request).
 * Every figure is the median of 5 runs; every run is printed.  Single
 * thread, CPU time of the thread; no store; no I/O (the host's HTTP is
 * not measured).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tern.h"

#define RUNS 5

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One run: ns per entry. */
static double run(long entries, uint32_t max_items, int coalesce,
                  double *body_bytes) {
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 1;
  tern_hub *hub;
  if (tern_hub_new(&hub, &s, NULL) != 0) {
    abort();
  }
  tern_hook_opts o;
  tern_hook_opts_default(&o);
  o.flags = TERN_HOOK_VERIFIED | (coalesce ? TERN_HOOK_COALESCE : 0);
  o.target = (const uint8_t *)"http://127.0.0.1:8080/hook";
  o.targetlen = strlen((const char *)o.target);
  o.secret = (const uint8_t *)"a 32-byte secret for the bench..";
  o.secretlen = 32;
  o.max_items = max_items;
  o.max_queued = 0;
  /* coalescing: a batch every 1000 changes (5 us of |now| apart), which
     hold 100 keys */
  o.max_delay = coalesce ? 5 * TERN_MILLISECONDS : 5 * TERN_SECONDS;
  uint64_t id;
  if (tern_hub_add_hook(hub, &o, 0, &id) != 0) {
    abort();
  }
  const char *fields[2] = {"name", "picture"};
  char key[24];
  tern_hook_entry e = {(const uint8_t *)key, 0, fields, 2, 0, NULL, 0};
  tern_hook_request r;
  double bytes = 0, requests = 0;
  double t0 = cpu_ns();
  for (long i = 0; i < entries; ++i) {
    long k = coalesce ? i % 100 : i;
    e.keylen = (size_t)snprintf(key, sizeof(key), "user%ld", k);
    e.time = (uint64_t)i;
    tern_tstamp now = (tern_tstamp)i * 5000;
    if (tern_hub_hook_enqueue(hub, id, &e, now) != 0) {
      abort();
    }
    if (!coalesce || (i + 1) % (10 * 100) == 0) {
      while (tern_hub_next_hook_request(hub, now, &r) == 1) {
        bytes += (double)r.bodylen;
        ++requests;
        tern_hub_hook_done(hub, id, r.delivery, 200, NULL, 0, NULL, 0, now);
      }
    }
  }
  /* the rest, as its delay passes */
  tern_tstamp end = (tern_tstamp)entries * 5000 + 10 * TERN_SECONDS;
  while (tern_hub_next_hook_request(hub, end, &r) == 1) {
    bytes += (double)r.bodylen;
    ++requests;
    tern_hub_hook_done(hub, id, r.delivery, 200, NULL, 0, NULL, 0, end);
  }
  double t1 = cpu_ns();
  *body_bytes = requests > 0 ? bytes / (double)requests : 0.0;
  tern_hub_del(hub);
  return (t1 - t0) / (double)entries;
}

static void shape(const char *name, long entries, uint32_t max_items,
                  int coalesce) {
  double ns[RUNS], body = 0;
  printf("%-32s", name);
  for (int i = 0; i < RUNS; ++i) {
    ns[i] = run(entries, max_items, coalesce, &body);
    printf(" %7.1f", ns[i]);
  }
  qsort(ns, RUNS, sizeof(*ns), cmp_double);
  printf("  median %7.1f ns/entry = %6.2f M entries/s, body %.0f B\n",
         ns[RUNS / 2], 1e3 / ns[RUNS / 2], body);
}

int main(int argc, char **argv) {
  long entries = argc > 1 ? atol(argv[1]) : 1000000;
  printf("hooks: %ld entries per run, ns per entry (enqueue -> request -> "
         "200)\n",
         entries);
  shape("batches of 1000", entries, 1000, 0);
  shape("batches of 1000, coalesced x10", entries, 1000, 1);
  shape("one entry per request (signed)", entries / 10, 1, 0);
  return 0;
}
