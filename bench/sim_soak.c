/*
 * bench/sim_soak — the simulator (tests/sim) run for a long time.
 *
 *   sim_soak --seconds 600 [--start S] [--jobs J]   seeds S, S+1, ... for
 *                                                   ten minutes
 *   sim_soak --count N [--start S] [--jobs J]       N seeds
 *   options: --hub-restart, --strict-dropped, --ack-livelock, --topics,
 *            --policies
 *            (as for tests/sim/sim)
 *
 * Prints progress every 10 s, each failing seed with the command line that
 * replays it, and at the end the seeds run, seeds per second and what the
 * runs did.  Exits 1 when a seed failed.  Start where the last soak ended
 * (--start) to cover new seeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "sim.h"

static void usage(FILE *f) {
  fprintf(f, "usage: sim_soak (--seconds S | --count N) [--start S] "
             "[--jobs J] [--hub-restart] [--strict-dropped] "
             "[--ack-livelock] [--topics] [--policies]\n");
}

/* The simulator binary next to this one: build/bench/sim_soak ->
   build/tests/sim/sim. */
static void sim_path(char *buf, size_t cap, const char *argv0) {
  const char *tail = "bench/sim_soak";
  size_t n = strlen(argv0), t = strlen(tail);
  if (n >= t && strcmp(argv0 + n - t, tail) == 0 && n - t < cap - 16) {
    snprintf(buf, cap, "%.*stests/sim/sim", (int)(n - t), argv0);
  } else {
    snprintf(buf, cap, "build/tests/sim/sim");
  }
}

int main(int argc, char **argv) {
  sim_batch b;
  memset(&b, 0, sizeof(b));
  b.name = "sim_soak";
  b.start = 1;
  b.max_reports = 50;
  b.progress = 10;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (strcmp(a, "--seconds") == 0 && v) {
      b.seconds = strtod(v, &end);
      ++i;
    } else if (strcmp(a, "--count") == 0 && v) {
      b.count = strtoull(v, &end, 10);
      ++i;
    } else if (strcmp(a, "--start") == 0 && v) {
      b.start = strtoull(v, &end, 10);
      ++i;
    } else if (strcmp(a, "--jobs") == 0 && v) {
      b.jobs = (int)strtol(v, &end, 10);
      ++i;
    } else if (strcmp(a, "--hub-restart") == 0) {
      b.opts.hub_restart = 1;
    } else if (strcmp(a, "--strict-dropped") == 0) {
      b.opts.strict_dropped = 1;
    } else if (strcmp(a, "--ack-livelock") == 0) {
      b.opts.ack_livelock = 1;
    } else if (strcmp(a, "--topics") == 0) {
      b.opts.topics = 1;
    } else if (strcmp(a, "--policies") == 0) {
      b.opts.policies = 1;
    } else {
      usage(stderr);
      return 2;
    }
    if (end && *end) {
      usage(stderr);
      return 2;
    }
  }
  if (b.opts.topics && b.opts.hub_restart) {
    /* Topics are not persisted yet: a restarted hub would forget them. */
    fprintf(stderr, "sim_soak: --topics with --hub-restart needs "
                    "persistent topics\n");
    return 2;
  }
  if ((b.seconds <= 0 && b.count == 0) || b.jobs < 0) {
    usage(stderr);
    return 2;
  }
  if (b.jobs == 0) {
    b.jobs = sim_default_jobs();
  }
  char prog[512];
  sim_path(prog, sizeof(prog), argv[0]);
  b.replay_prog = prog;
  sim_batch_result r;
  if (sim_run_batch(&b, &r) != 0) {
    return 2;
  }
  sim_print_totals("sim_soak", &r, b.jobs);
  printf("sim_soak: next start %llu\n",
         (unsigned long long)(b.start + r.seeds));
  if (r.failures) {
    printf("sim_soak: %llu seeds failed; the first is %llu\n",
           (unsigned long long)r.failures,
           (unsigned long long)r.first_failed);
  }
  return r.failures || r.crashed ? 1 : 0;
}
