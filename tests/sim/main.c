/*
 * tests/sim/sim — the simulator's command line.
 *
 *   sim --seeds N [--start S] [--jobs J]   run seeds S..S+N-1 (S = 1)
 *   sim --seed X [--verbose]               run one seed, narrating it
 *   options: --hub-restart (the hub runs over a store and crashes now
 *            and then: driver.c, durable.c),
 *            --strict-dropped (a DROPPED notice lost with its connection
 *            fails invariant 6),
 *            --ack-livelock (also draw max_deliver 0 with ack_timeout,
 *            which livelocks on slow links: a known issue, regress.c),
 *            --topics (topics, members joining and leaving, topic
 *            publishes and tern_hub_publish_many: topics.c),
 *            --policies (quiet hours, frequency caps, fallback deadlines
 *            and an accept rate: driver.c, check.c)
 *
 * Exits 0 when every seed held every invariant; otherwise prints, for each
 * failing seed, the invariant, the reason and the one command line that
 * replays it, and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "sim.h"

static void usage(FILE *f) {
  fprintf(f, "usage: sim [--seeds N [--start S] [--jobs J] | --seed X "
             "[--verbose]]\n"
             "           [--hub-restart] [--strict-dropped] [--ack-livelock]\n"
             "           [--topics] [--policies]\n");
}

static int parse_u64(const char *s, uint64_t *v) {
  char *end;
  if (!s || !*s) {
    return -1;
  }
  unsigned long long x = strtoull(s, &end, 10);
  if (*end) {
    return -1;
  }
  *v = (uint64_t)x;
  return 0;
}

int main(int argc, char **argv) {
  sim_opts o;
  memset(&o, 0, sizeof(o));
  uint64_t seeds = 0, start = 1, jobs = 0;
  int single = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--seed") == 0 && parse_u64(v, &o.seed) == 0) {
      single = 1;
      ++i;
    } else if (strcmp(a, "--seeds") == 0 && parse_u64(v, &seeds) == 0) {
      ++i;
    } else if (strcmp(a, "--start") == 0 && parse_u64(v, &start) == 0) {
      ++i;
    } else if (strcmp(a, "--jobs") == 0 && parse_u64(v, &jobs) == 0 &&
               jobs > 0 && jobs <= 64) {
      ++i;
    } else if (strcmp(a, "--verbose") == 0) {
      o.verbose = 1;
    } else if (strcmp(a, "--hub-restart") == 0) {
      o.hub_restart = 1;
    } else if (strcmp(a, "--strict-dropped") == 0) {
      o.strict_dropped = 1;
    } else if (strcmp(a, "--ack-livelock") == 0) {
      o.ack_livelock = 1;
    } else if (strcmp(a, "--topics") == 0) {
      o.topics = 1;
    } else if (strcmp(a, "--policies") == 0) {
      o.policies = 1;
    } else if (strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (o.topics && o.hub_restart) {
    /* Topics are not persisted yet: a restarted hub would forget them. */
    fprintf(stderr, "sim: --topics with --hub-restart needs persistent "
                    "topics\n");
    return 2;
  }
  if (!single && seeds == 0) {
    usage(stderr);
    return 2;
  }
  if (single) {
    sim_result r;
    sim_run(&o, &r);
    if (r.failed) {
      char cmd[512];
      sim_replay_command(cmd, sizeof(cmd), argv[0], &o);
      printf("FAIL seed %llu: invariant %d at %.6f s: %s\n  replay: %s\n",
             (unsigned long long)o.seed, r.invariant,
             (double)r.fail_time / 1e9, r.why, cmd);
      return 1;
    }
    printf("seed %llu: ok: %llu publishes, %llu delivered, %llu acked, "
           "%llu expired, %llu collapsed, %llu evicted, %llu dead, %llu "
           "gaps, %llu lost notices, %llu faults, %llu restarts, %llu "
           "links, %llu steps, %.1f virtual s\n",
           (unsigned long long)o.seed, (unsigned long long)r.publishes,
           (unsigned long long)r.delivered, (unsigned long long)r.acked,
           (unsigned long long)r.expired, (unsigned long long)r.collapsed,
           (unsigned long long)r.evicted, (unsigned long long)r.dead,
           (unsigned long long)r.gaps, (unsigned long long)r.lost_notices,
           (unsigned long long)r.faults, (unsigned long long)r.restarts,
           (unsigned long long)r.links, (unsigned long long)r.steps,
           (double)r.virtual_time / 1e9);
    if (o.topics) {
      char name[32];
      snprintf(name, sizeof(name), "seed %llu", (unsigned long long)o.seed);
      sim_print_topics(name, &r);
    }
    if (o.hub_restart) {
      char name[32];
      snprintf(name, sizeof(name), "seed %llu", (unsigned long long)o.seed);
      sim_print_durability(name, &r);
    }
    return 0;
  }
  sim_batch b;
  memset(&b, 0, sizeof(b));
  b.name = "sim";
  b.start = start;
  b.count = seeds;
  b.jobs = jobs ? (int)jobs : sim_default_jobs();
  b.opts = o;
  b.replay_prog = argv[0];
  b.max_reports = 20;
  sim_batch_result res;
  if (sim_run_batch(&b, &res) != 0) {
    return 2;
  }
  sim_print_totals("sim", &res, b.jobs);
  if (res.failures) {
    printf("sim: %llu of %llu seeds failed; the first is %llu\n",
           (unsigned long long)res.failures, (unsigned long long)res.seeds,
           (unsigned long long)res.first_failed);
  }
  return res.failures || res.crashed || res.seeds != seeds ? 1 : 0;
}
