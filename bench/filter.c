/*
 * bench/filter — cost of matching topic subscriptions (lib/filter).
 *
 *   filter [iterations]   (default 5,000,000 per run)
 *
 * Nanoseconds per call of filter_match for a few filters against a message
 * with four attributes, and of pattern_match for a few patterns, beside a
 * baseline: the same decision hand-written in C (memcmp and strtod), to
 * show what the interpreter costs over code written for one filter.
 * Every figure is the median of 5 runs; every run is printed.  Single
 * thread, CPU time of the thread.  Also prints the size of a compiled
 * filter (one block, shared by the subscriptions that use it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filter/filter.h"

#define RUNS 5

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static volatile int sink;

#define A(k, v)                                                            \
  { (const uint8_t *)(k), sizeof(k) - 1, (const uint8_t *)(v), sizeof(v) - 1 }

static const filter_attr pass_attrs[] = {
    A("region", "eu"), A("kind", "item"), A("status", "ItemUpdate"),
    A("price", "149.90")};
static const filter_attr fail_attrs[] = {
    A("region", "eu"), A("kind", "item"), A("status", "ItemDelete"),
    A("price", "149.90")};

/* The hand-written equivalent of the issue's filter. */
static int baseline(const filter_attr *a, size_t n) {
  const filter_attr *status = NULL, *price = NULL;
  for (size_t i = 0; i < n; ++i) {
    if (!status && a[i].keylen == 6 && memcmp(a[i].key, "status", 6) == 0) {
      status = &a[i];
    } else if (!price && a[i].keylen == 5 &&
               memcmp(a[i].key, "price", 5) == 0) {
      price = &a[i];
    }
  }
  if (!status || !price) {
    return 0;
  }
  if (!((status->valuelen == 7 &&
         memcmp(status->value, "ItemAdd", 7) == 0) ||
        (status->valuelen == 10 &&
         memcmp(status->value, "ItemUpdate", 10) == 0))) {
    return 0;
  }
  char buf[64];
  size_t l = price->valuelen < 63 ? price->valuelen : 63;
  memcpy(buf, price->value, l);
  buf[l] = 0;
  return strtod(buf, NULL) > 100;
}

typedef struct job {
  const char *name;
  const filter *f;                   /* filter_match when set */
  const char *pat, *topic;           /* else pattern_match when set */
  const filter_attr *attrs;          /* else the baseline */
  int want;
} job;

static double run_once(const job *j, long iters) {
  int r = 0;
  double t0 = cpu_ns();
  for (long i = 0; i < iters; ++i) {
    if (j->f) {
      r += filter_match(j->f, j->attrs, 4);
    } else if (j->pat) {
      r += pattern_match((const uint8_t *)j->pat, strlen(j->pat),
                         (const uint8_t *)j->topic, strlen(j->topic));
    } else {
      r += baseline(j->attrs, 4);
    }
  }
  double t = cpu_ns() - t0;
  sink = r;
  if (r != (j->want ? iters : 0)) {
    fprintf(stderr, "filter: %s: wrong result\n", j->name);
    exit(1);
  }
  return t / (double)iters;
}

static filter *compile(const char *text) {
  filter *f = NULL;
  size_t pos;
  const char *msg;
  if (filter_compile(NULL, text, strlen(text), &f, &pos, &msg) != 0) {
    fprintf(stderr, "filter: '%s': %s at %zu\n", text, msg, pos);
    exit(1);
  }
  return f;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 5000000;
  filter *issue = compile("status in (ItemAdd, ItemUpdate) and price > 100");
  filter *one = compile("region = eu");
  filter *three =
      compile("kind = item and (price >= 100 or status = ItemAdd)");
  const job jobs[] = {
      {"baseline (C) issue filter, pass", NULL, NULL, NULL, pass_attrs, 1},
      {"baseline (C) issue filter, fail", NULL, NULL, NULL, fail_attrs, 0},
      {"status in (2) and price > 100, pass", issue, NULL, NULL, pass_attrs,
       1},
      {"status in (2) and price > 100, fail", issue, NULL, NULL, fail_attrs,
       0},
      {"region = eu", one, NULL, NULL, pass_attrs, 1},
      {"kind = item and (price >= 100 or ...)", three, NULL, NULL,
       pass_attrs, 1},
      {"pattern order.# ~ order.new.eu", NULL, "order.#", "order.new.eu",
       NULL, 1},
      {"pattern trade.*.usd ~ trade.x.eur", NULL, "trade.*.usd",
       "trade.x.eur", NULL, 0},
      {"pattern exact a.b.c ~ a.b.c", NULL, "a.b.c", "a.b.c", NULL, 1},
  };
  printf("compiled size: issue filter %zu B, region = eu %zu B\n",
         filter_size(issue), filter_size(one));
  printf("%ld calls per run, median of %d runs, ns per call\n", iters, RUNS);
  for (size_t k = 0; k < sizeof(jobs) / sizeof(jobs[0]); ++k) {
    double t[RUNS];
    printf("%-40s", jobs[k].name);
    for (int r = 0; r < RUNS; ++r) {
      t[r] = run_once(&jobs[k], iters);
      printf(" %6.1f", t[r]);
    }
    qsort(t, RUNS, sizeof(t[0]), cmp_double);
    printf("  -> median %.1f ns\n", t[RUNS / 2]);
  }
  filter_free(NULL, issue);
  filter_free(NULL, one);
  filter_free(NULL, three);
  return 0;
}
