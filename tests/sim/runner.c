/*
 * Running many seeds: a batch is split over forked workers (seed start+w,
 * start+w+jobs, ...), which report failures, progress and totals as
 * fixed-size records over one pipe.  Each seed's result does not depend
 * on the number of workers.  This is the only simulator code that reads a
 * real clock, and only to stop a timed soak and print seeds per second.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { REC_FAIL = 1, REC_PROGRESS = 2, REC_DONE = 3 };

/* One record on the pipe; small enough for an atomic pipe write. */
typedef struct record {
  int type;
  uint64_t seed;
  uint64_t seeds; /* PROGRESS and DONE: seeds run since the last record */
  sim_result res; /* FAIL: the failure; PROGRESS, DONE: summed figures */
} record;

static void add(sim_result *t, const sim_result *r) {
  t->publishes += r->publishes;
  t->accepted += r->accepted;
  t->delivered += r->delivered;
  t->acked += r->acked;
  t->expired += r->expired;
  t->collapsed += r->collapsed;
  t->evicted += r->evicted;
  t->dead += r->dead;
  t->gaps += r->gaps;
  t->lost_notices += r->lost_notices;
  t->faults += r->faults;
  t->restarts += r->restarts;
  t->links += r->links;
  t->steps += r->steps;
  t->topic_publishes += r->topic_publishes;
  t->topic_copies += r->topic_copies;
  t->topic_delivered += r->topic_delivered;
  t->topic_acked += r->topic_acked;
  t->topic_retention += r->topic_retention;
  t->topic_left += r->topic_left;
  t->joins += r->joins;
  t->leaves += r->leaves;
  t->many_publishes += r->many_publishes;
  t->receipts_checked += r->receipts_checked;
  t->late_wakeups += r->late_wakeups;
  t->policy_holds += r->policy_holds;
  t->fallbacks += r->fallbacks;
  t->fallback_acked += r->fallback_acked;
  t->deferred += r->deferred;
  t->lossy_sessions += r->lossy_sessions;
  t->blind_sessions += r->blind_sessions;
  t->hub_crashes += r->hub_crashes;
  t->hub_shutdowns += r->hub_shutdowns;
  t->sync_accepted += r->sync_accepted;
  t->confirmed += r->confirmed;
  t->volatile_accepted += r->volatile_accepted;
  t->restored += r->restored;
  t->revived += r->revived;
  t->crash_lost += r->crash_lost;
  t->lost_arrived += r->lost_arrived;
  t->expired_down += r->expired_down;
  t->redelivered += r->redelivered;
  t->unannounced += r->unannounced;
  t->carried += r->carried;
  t->order_lost += r->order_lost;
  t->dedup_adopted += r->dedup_adopted;
  t->virtual_time += r->virtual_time;
}

static void put(int fd, const record *rec) {
  const char *p = (const char *)rec;
  size_t left = sizeof(*rec);
  while (left) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      _exit(3);
    }
    p += n;
    left -= (size_t)n;
  }
}

/* A run that crashes or hangs must still name its seed: the record is
   made before the run and written from the signal handler (write(2) is
   async-signal-safe), with the signal as a negative invariant. */
static record died;
static int died_fd = -1;

static void on_death(int sig) {
  died.res.invariant = -sig;
  const char *p = (const char *)&died;
  size_t left = sizeof(died);
  while (left) {
    ssize_t n = write(died_fd, p, left);
    if (n <= 0) {
      break;
    }
    p += n;
    left -= (size_t)n;
  }
  _exit(4);
}

static void watch(int fd) {
  static const int sigs[] = {SIGALRM, SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                             SIGABRT};
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_death;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); ++i) {
    sigaction(sigs[i], &sa, NULL);
  }
  died_fd = fd;
  died.type = REC_FAIL;
  snprintf(died.res.why, sizeof(died.res.why),
           "the run died: a crash, an abort, or over %d s of wall time "
           "(an endless loop)",
           SIM_SEED_TIMEOUT);
  died.res.failed = 1;
}

static void worker(const sim_batch *b, int w, int fd, double deadline) {
  watch(fd);
  record rec;
  memset(&rec, 0, sizeof(rec));
  record prog;
  memset(&prog, 0, sizeof(prog));
  prog.type = REC_PROGRESS;
  double last = wall();
  for (uint64_t k = (uint64_t)w;; k += (uint64_t)b->jobs) {
    if (b->count && k >= b->count) {
      break;
    }
    if (deadline > 0 && wall() >= deadline) {
      break;
    }
    sim_opts o = b->opts;
    o.seed = b->start + k;
    o.verbose = 0;
    sim_result r;
    died.seed = o.seed;
    alarm(SIM_SEED_TIMEOUT);
    sim_run(&o, &r);
    alarm(0);
    add(&prog.res, &r);
    ++prog.seeds;
    if (r.failed) {
      rec.type = REC_FAIL;
      rec.seed = o.seed;
      rec.res = r;
      put(fd, &rec);
    }
    double t = wall();
    if (t - last >= 1.0) {
      put(fd, &prog);
      memset(&prog, 0, sizeof(prog));
      prog.type = REC_PROGRESS;
      last = t;
    }
  }
  prog.type = REC_DONE;
  put(fd, &prog);
}

static int cmp_seed(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int sim_run_batch(const sim_batch *b, sim_batch_result *out) {
  memset(out, 0, sizeof(*out));
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    return -1;
  }
  double start = wall();
  double deadline = b->seconds > 0 ? start + b->seconds : 0;
  int jobs = b->jobs > 0 ? b->jobs : 1;
  pid_t *pids = calloc((size_t)jobs, sizeof(*pids));
  sim_batch bb = *b;
  bb.jobs = jobs;
  for (int w = 0; w < jobs; ++w) {
    pids[w] = fork();
    if (pids[w] < 0) {
      perror("fork");
      return -1;
    }
    if (pids[w] == 0) {
      close(fds[0]);
      worker(&bb, w, fds[1], deadline);
      _exit(0);
    }
  }
  close(fds[1]);
  size_t failcap = 16;
  uint64_t *failed = malloc(failcap * sizeof(*failed));
  double last_print = start;
  int done = 0;
  record rec;
  for (;;) {
    size_t got = 0;
    while (got < sizeof(rec)) {
      ssize_t n = read(fds[0], (char *)&rec + got, sizeof(rec) - got);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      got += (size_t)n;
    }
    if (got < sizeof(rec)) {
      break;
    }
    if (rec.type == REC_FAIL) {
      if (out->failures == failcap) {
        failcap *= 2;
        failed = realloc(failed, failcap * sizeof(*failed));
      }
      failed[out->failures++] = rec.seed;
      if (out->failures <= (uint64_t)b->max_reports) {
        char cmd[512];
        sim_opts o = b->opts;
        o.seed = rec.seed;
        sim_replay_command(cmd, sizeof(cmd), b->replay_prog, &o);
        if (rec.res.invariant < 0) {
          printf("FAIL seed %llu: signal %d: %s\n  replay: %s\n",
                 (unsigned long long)rec.seed, -rec.res.invariant,
                 rec.res.why, cmd);
        } else {
          printf("FAIL seed %llu: invariant %d at %.6f s: %s\n  replay: %s\n",
                 (unsigned long long)rec.seed, rec.res.invariant,
                 (double)rec.res.fail_time / 1e9, rec.res.why, cmd);
        }
        fflush(stdout);
      }
      continue;
    }
    out->seeds += rec.seeds;
    add(&out->totals, &rec.res);
    if (rec.type == REC_DONE) {
      ++done;
    }
    double t = wall();
    if (b->progress > 0 && t - last_print >= b->progress) {
      printf("%s: %llu seeds, %.0f seeds/s, %llu failed\n", b->name,
             (unsigned long long)out->seeds, (double)out->seeds / (t - start),
             (unsigned long long)out->failures);
      fflush(stdout);
      last_print = t;
    }
  }
  close(fds[0]);
  int bad_exit = 0;
  for (int w = 0; w < jobs; ++w) {
    int st = 0;
    if (waitpid(pids[w], &st, 0) < 0 || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
      bad_exit = 1;
    }
  }
  free(pids);
  out->elapsed = wall() - start;
  if (done != jobs || bad_exit) {
    printf("%s: a worker died (see the failure above); the seeds it had "
           "left did not run\n",
           b->name);
    out->crashed = 1;
  }
  qsort(failed, (size_t)out->failures, sizeof(*failed), cmp_seed);
  out->first_failed = out->failures ? failed[0] : 0;
  free(failed);
  return 0;
}

void sim_print_totals(const char *name, const sim_batch_result *r, int jobs) {
  const sim_result *t = &r->totals;
  printf("%s: %llu seeds in %.1f s (%.0f seeds/s, %d jobs), %llu failed\n",
         name, (unsigned long long)r->seeds, r->elapsed,
         r->elapsed > 0 ? (double)r->seeds / r->elapsed : 0.0, jobs,
         (unsigned long long)r->failures);
  printf("%s: %llu publishes, %llu accepted, %llu delivered to apps, %llu "
         "acked, %llu expired, %llu collapsed, %llu evicted, %llu dead\n",
         name, (unsigned long long)t->publishes,
         (unsigned long long)t->accepted, (unsigned long long)t->delivered,
         (unsigned long long)t->acked, (unsigned long long)t->expired,
         (unsigned long long)t->collapsed, (unsigned long long)t->evicted,
         (unsigned long long)t->dead);
  printf("%s: %llu faults, %llu app restarts, %llu links, %llu steps, "
         "%.1f virtual hours\n",
         name, (unsigned long long)t->faults,
         (unsigned long long)t->restarts, (unsigned long long)t->links,
         (unsigned long long)t->steps, (double)t->virtual_time / 3.6e12);
  printf("%s: DROPPED: %llu losses told to apps as GAP, %llu written on "
         "connections that died or were left (never told); %llu of %llu "
         "session instances with losses never told their app anything\n",
         name, (unsigned long long)t->gaps,
         (unsigned long long)t->lost_notices,
         (unsigned long long)t->blind_sessions,
         (unsigned long long)t->lossy_sessions);
  if (t->topic_publishes || t->joins) {
    sim_print_topics(name, t);
  }
  if (t->hub_crashes || t->hub_shutdowns) {
    sim_print_durability(name, t);
  }
  if (t->policy_holds || t->fallbacks || t->deferred) {
    printf("%s: policies: %llu holds, %llu FALLBACK events (%llu acked "
           "later), %llu HELLOs deferred by the accept rate\n",
           name, (unsigned long long)t->policy_holds,
           (unsigned long long)t->fallbacks,
           (unsigned long long)t->fallback_acked,
           (unsigned long long)t->deferred);
  }
}

void sim_print_durability(const char *name, const sim_result *t) {
  printf("%s: hub restarts: %llu crashes, %llu clean shutdowns; %llu SYNC "
         "publishes accepted, %llu confirmed; %llu VOLATILE\n",
         name, (unsigned long long)t->hub_crashes,
         (unsigned long long)t->hub_shutdowns,
         (unsigned long long)t->sync_accepted,
         (unsigned long long)t->confirmed,
         (unsigned long long)t->volatile_accepted);
  printf("%s: restored %llu messages (%llu of them revived: gone from the "
         "old hub, deletion not durable); lost %llu held messages that "
         "were not durable (%llu deliveries of them still came); %llu "
         "expired while the hub was down (told as losses)\n",
         name, (unsigned long long)t->restored,
         (unsigned long long)t->revived, (unsigned long long)t->crash_lost,
         (unsigned long long)t->lost_arrived,
         (unsigned long long)t->expired_down);
  printf("%s: %llu re-deliveries after a restart passed the client's dedup; "
         "%llu losses carried over restarts to be told; %llu never "
         "announced (their count was not durable: volatile or refused "
         "messages); %llu older "
         "messages back from the store after newer ones; %llu "
         "dedup ids adopted by a newer session of their key\n",
         name, (unsigned long long)t->redelivered,
         (unsigned long long)t->carried, (unsigned long long)t->unannounced,
         (unsigned long long)t->order_lost,
         (unsigned long long)t->dedup_adopted);
}

int sim_default_jobs(void) {
  long n = 1;
#ifdef _SC_NPROCESSORS_ONLN
  n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
  return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

void sim_print_topics(const char *name, const sim_result *t) {
  printf("%s: topics: %llu publishes, %llu copies expected, %llu delivered "
         "to apps, %llu acked, %llu taken by retention unsent, %llu left "
         "unsent by their member; %llu joins, %llu leaves, %llu "
         "publish_many calls, %llu receipts checked, %llu late wakeups "
         "of paced sends\n",
         name, (unsigned long long)t->topic_publishes,
         (unsigned long long)t->topic_copies,
         (unsigned long long)t->topic_delivered,
         (unsigned long long)t->topic_acked,
         (unsigned long long)t->topic_retention,
         (unsigned long long)t->topic_left, (unsigned long long)t->joins,
         (unsigned long long)t->leaves,
         (unsigned long long)t->many_publishes,
         (unsigned long long)t->receipts_checked,
         (unsigned long long)t->late_wakeups);
}
