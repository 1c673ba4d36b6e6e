/*
 * bench/core — throughput and memory of the delivery core, no sockets.
 *
 *   core single  [messages]   publish -> tern_conn_write -> ACK -> free on
 *                             one session, 64-byte payloads
 *   core spread  [messages]   the same over 100,000 sessions, driven the way
 *                             a host loop does (tern_hub_next_ready)
 *   core peek    [messages]   `single` through tern_conn_peek_output and
 *                             tern_conn_consume, against tern_conn_write in
 *                             the same runs
 *   core idle    [sessions]   RSS per idle session with one connection
 *   core backlog [messages]   one publisher fills a backlog of 1,000,000
 *                             messages (64 B) on one session, then it
 *                             drains through tern_conn_write and ACKs;
 *                             fill and drain rates and peak RSS with the
 *                             message pool off (max_pool_bytes 0) and on
 *                             (the default), alternating, each run in a
 *                             fresh process.  "cold" runs in memory the
 *                             process never had (page faults); "warm"
 *                             runs again after libc was told to keep
 *                             freed memory (mallopt M_TRIM_THRESHOLD).
 *                             Rates per second of the thread's CPU time
 *                             (page faults included), not wall time
 *   core count   N [B]        N messages of `single` (B per write and ACK,
 *                             default 1) and nothing else, for
 *                             bench/callgrind.sh (instructions per message)
 *   core all                  idle, single, spread (what the README quotes)
 *
 * Throughput modes run 5 times and print every run and the median.  The
 * client side is played cheaply (the receiver's costs are not the hub's):
 * ACK frames are pre-encoded and the written bytes are not parsed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_conn.h"
#include "tern.h"
#include "wire/frame.h"

#ifdef __GLIBC__
#include <malloc.h> /* mallopt: backlog's warm runs */
#endif

#define PAYLOAD 64
#define RUNS 5

static tern_tstamp clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (tern_tstamp)ts.tv_sec * 1000000000u + (tern_tstamp)ts.tv_nsec;
}

/* CPU time of this thread, user and system (page faults included): a
   busy machine's other work does not count. */
static tern_tstamp cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (tern_tstamp)ts.tv_sec * 1000000000u + (tern_tstamp)ts.tv_nsec;
}

static void die(const char *what, int rv) {
  fprintf(stderr, "core: %s: %s\n", what, tern_strerror(rv));
  exit(1);
}

/* Opens a connection bound to |key| and flushes its WELCOME. */
static tern_conn *connect(tern_hub *hub, const char *key, tern_tstamp now) {
  tern_conn *c = NULL;
  int rv = bench_connect(hub, key, now, &c);
  if (rv != 0) {
    die("connect", rv);
  }
  return c;
}

/* The receiver's ACK, encoded by hand: the client's cost is not the hub's. */
static void ack(tern_conn *c, uint64_t seq, tern_tstamp now) {
  uint8_t buf[16];
  size_t n;
  buf[0] = WIRE_ACK;
  if (seq < 64) {
    buf[1] = 1;
    buf[2] = (uint8_t)seq;
    n = 3;
  } else if (seq < 16384) {
    buf[1] = 2;
    buf[2] = (uint8_t)(0x40 | (seq >> 8));
    buf[3] = (uint8_t)seq;
    n = 4;
  } else {
    buf[1] = 4;
    buf[2] = (uint8_t)(0x80 | (seq >> 24));
    buf[3] = (uint8_t)(seq >> 16);
    buf[4] = (uint8_t)(seq >> 8);
    buf[5] = (uint8_t)seq;
    n = 6;
  }
  tern_ssize r = tern_conn_read(c, buf, n, now);
  if (r < 0) {
    die("ACK", (int)r);
  }
}

static tern_hub *new_hub_with(const tern_settings *set) {
  tern_settings s = *set;
  s.seed = 1;
  tern_hub *hub;
  int rv = tern_hub_new(&hub, &s, NULL);
  if (rv != 0) {
    die("tern_hub_new", rv);
  }
  return hub;
}

static tern_hub *new_hub(void) {
  tern_settings s;
  tern_settings_default(&s);
  return new_hub_with(&s);
}

static void session_key(char *out, size_t i) {
  snprintf(out, 17, "user-%011lu", (unsigned long)(i % 100000000000u));
}

/* The benchmark's message: 64 bytes of |fill|, NORMAL, a 60 s TTL. */
static tern_msg_desc bench_msg(uint8_t *payload, uint8_t fill) {
  memset(payload, fill, PAYLOAD);
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = payload;
  d.payloadlen = PAYLOAD;
  d.priority = TERN_PRIO_NORMAL;
  d.ttl = 60 * TERN_SECONDS;
  return d;
}

/* One session: returns messages per second.  |batch| messages are
   published, then written with one call and acked with one ACK (the
   receiver's batching); batch 1 is a full round trip per message.
   SEND_LOOP writes until the connection has nothing more, as a host loop
   does; SEND_PEEK likewise through tern_conn_peek_output, each peek
   consumed whole. */
enum { SEND_ONCE, SEND_LOOP, SEND_PEEK };
static double run_single(uint64_t count, uint64_t batch, int send) {
  tern_hub *hub = new_hub();
  uint8_t payload[PAYLOAD];
  tern_msg_desc d = bench_msg(payload, 'x');
  char key[17];
  session_key(key, 1);
  tern_tstamp now = 1;
  tern_conn *c = connect(hub, key, now);
  uint8_t out[4096];
  tern_tstamp t0 = clock_ns();
  for (uint64_t i = 1; i <= count; i += batch) {
    for (uint64_t j = 0; j < batch; ++j) {
      int rv = tern_hub_publish(hub, (const uint8_t *)key, 16, &d, now, NULL);
      if (rv != 0) {
        die("publish", rv);
      }
    }
    tern_ssize n, total = 0;
    do {
      if (send == SEND_PEEK) {
        const uint8_t *p;
        n = tern_conn_peek_output(c, &p, now);
        if (n > 0) {
          tern_conn_consume(c, (size_t)n);
        }
      } else {
        n = tern_conn_write(c, out, sizeof(out), now);
      }
      total += n > 0 ? n : 0;
    } while (n > 0 && send != SEND_ONCE);
    if (n < 0 || total == 0) {
      die("write", (int)n);
    }
    ack(c, i + batch - 1, now);
  }
  tern_tstamp t1 = clock_ns();
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  count = (count + batch - 1) / batch * batch;
  if (st.acked != count || st.messages != 0) {
    fprintf(stderr, "core: single: acked %llu of %llu\n",
            (unsigned long long)st.acked, (unsigned long long)count);
    exit(1);
  }
  tern_conn_del(c);
  tern_hub_del(hub);
  return (double)count * 1e9 / (double)(t1 - t0);
}

/* 100,000 sessions, host-loop style: publish a batch to random sessions,
   then write every ready connection and ack what it got. */
static double run_spread(uint64_t count, size_t nsessions) {
  tern_hub *hub = new_hub();
  char (*keys)[17] = malloc(nsessions * sizeof(*keys));
  tern_conn **conns = malloc(nsessions * sizeof(*conns));
  if (!keys || !conns) {
    die("malloc", TERN_ERR_NOMEM);
  }
  tern_tstamp now = 1;
  for (size_t i = 0; i < nsessions; ++i) {
    session_key(keys[i], i);
    conns[i] = connect(hub, keys[i], now);
  }
  uint8_t payload[PAYLOAD];
  tern_msg_desc d = bench_msg(payload, 'y');
  uint8_t out[16384];
  uint64_t x = 88172645463325252u; /* xorshift: which session next */
  const uint64_t batch = 1024;
  tern_tstamp t0 = clock_ns();
  for (uint64_t done = 0; done < count; done += batch) {
    for (uint64_t j = 0; j < batch; ++j) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      size_t i = (size_t)(x % nsessions);
      int rv = tern_hub_publish(hub, (const uint8_t *)keys[i], 16, &d, now,
                                NULL);
      if (rv != 0) {
        die("publish", rv);
      }
    }
    tern_conn *c;
    while ((c = tern_hub_next_ready(hub)) != NULL) {
      tern_ssize n = tern_conn_write(c, out, sizeof(out), now);
      if (n <= 0) {
        die("write", (int)n);
      }
      /* The receiver acks the last seq it got: the session's latest. */
      tern_session_info info;
      tern_session_get_info(tern_conn_get_session(c), &info, sizeof(info));
      ack(c, info.next_seq - 1, now);
    }
  }
  tern_tstamp t1 = clock_ns();
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  uint64_t total = (count + batch - 1) / batch * batch;
  if (st.acked != total || st.messages != 0) {
    fprintf(stderr, "core: spread: acked %llu of %llu\n",
            (unsigned long long)st.acked, (unsigned long long)total);
    exit(1);
  }
  for (size_t i = 0; i < nsessions; ++i) {
    tern_conn_del(conns[i]);
  }
  tern_hub_del(hub);
  free(keys);
  free(conns);
  return (double)total * 1e9 / (double)(t1 - t0);
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (!f) {
    return -1;
  }
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
    resident = -1;
  }
  fclose(f);
  return resident * 4096;
}

/* RSS per idle session with one connection. */
static void run_idle(size_t nsessions) {
  tern_conn **conns = malloc(nsessions * sizeof(*conns));
  if (!conns) {
    die("malloc", TERN_ERR_NOMEM);
  }
  long before = rss_bytes();
  tern_hub *hub = new_hub();
  char key[17];
  for (size_t i = 0; i < nsessions; ++i) {
    session_key(key, i);
    conns[i] = connect(hub, key, 1);
    /* A host takes its events every loop; a queue of a million HELLOs
       (never shed: a duty event) is no idle state. */
    tern_event ev;
    while (tern_hub_next_event(hub, &ev) == 1) {
    }
  }
  long after = rss_bytes();
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  printf("idle: %zu sessions, %llu connections, 16-byte keys: RSS +%ld bytes"
         " = %.1f bytes per session (target <= 384)\n",
         nsessions, (unsigned long long)st.conns, after - before,
         (double)(after - before) / (double)nsessions);
  for (size_t i = 0; i < nsessions; ++i) {
    tern_conn_del(conns[i]);
  }
  tern_hub_del(hub);
  free(conns);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void report(const char *name, double runs[RUNS], double target) {
  printf("%s:", name);
  for (int i = 0; i < RUNS; ++i) {
    printf(" %.2fM", runs[i] / 1e6);
  }
  qsort(runs, RUNS, sizeof(double), cmp_double);
  double median = runs[RUNS / 2];
  printf(" -> median %.2fM msg/s, %.0f ns/msg", median / 1e6, 1e9 / median);
  if (target > 0) {
    printf(" (target >= %.0fM msg/s)", target / 1e6);
  }
  printf("\n");
}

/* kB of a "Vm...:" line of /proc/self/status. */
static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  if (!f) {
    return -1;
  }
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, field, n) == 0) {
      kb = strtol(line + n, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}

typedef struct backlog_run {
  double fill, drain;        /* cold: memory the process never had */
  double fill_warm, drain_warm; /* memory freed earlier, kept by libc */
  long rss_before, rss_peak, rss_after; /* bytes; after the cold drain */
} backlog_run;

/* Fills |count| messages into the session of |c| (attached, not written
   meanwhile), then drains them through tern_conn_write and ACKs.  Sets
   messages per second of both phases. */
static void backlog_cycle(tern_hub *hub, tern_conn *c, uint64_t count,
                          double *fill, double *drain) {
  uint8_t payload[PAYLOAD];
  tern_msg_desc d = bench_msg(payload, 'b');
  char key[17];
  session_key(key, 1);
  tern_tstamp now = 1;
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  uint64_t acked_before = st.acked;
  tern_session_info info;
  tern_session_get_info(tern_conn_get_session(c), &info, sizeof(info));
  uint64_t acked = info.next_seq - 1;
  tern_tstamp t0 = cpu_ns();
  for (uint64_t i = 0; i < count; ++i) {
    int rv = tern_hub_publish(hub, (const uint8_t *)key, 16, &d, now, NULL);
    if (rv != 0) {
      die("publish", rv);
    }
  }
  tern_tstamp t1 = cpu_ns();
  static uint8_t out[65536];
  while (tern_conn_want_write(c)) {
    tern_ssize n = tern_conn_write(c, out, sizeof(out), now);
    if (n <= 0) {
      die("write", (int)n);
    }
    tern_session_get_info(tern_conn_get_session(c), &info, sizeof(info));
    if (info.next_seq - 1 > acked) {
      acked = info.next_seq - 1;
      ack(c, acked, now);
    }
  }
  tern_tstamp t2 = cpu_ns();
  tern_hub_get_stats(hub, &st, sizeof(st));
  if (st.acked - acked_before != count || st.messages != 0) {
    fprintf(stderr, "core: backlog: acked %llu of %llu\n",
            (unsigned long long)(st.acked - acked_before),
            (unsigned long long)count);
    exit(1);
  }
  *fill = (double)count * 1e9 / (double)(t1 - t0);
  *drain = (double)count * 1e9 / (double)(t2 - t1);
}

/* One backlog run, in this process: a cold cycle, then (libc told to keep
   what is freed) one to map the memory and a warm one. */
static backlog_run run_backlog(uint64_t count, size_t pool_bytes) {
  tern_settings s;
  tern_settings_default(&s);
  s.max_pending = (uint32_t)count;
  s.max_pending_bytes = (size_t)count * PAYLOAD;
  s.max_pool_bytes = pool_bytes;
  backlog_run r;
  r.rss_before = rss_bytes();
  tern_hub *hub = new_hub_with(&s);
  char key[17];
  session_key(key, 1);
  tern_conn *c = connect(hub, key, 1);
  backlog_cycle(hub, c, count, &r.fill, &r.drain);
  r.rss_peak = status_kb("VmHWM:") * 1024;
  r.rss_after = rss_bytes();
#ifdef M_TRIM_THRESHOLD
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
  backlog_cycle(hub, c, count, &r.fill_warm, &r.drain_warm);
  backlog_cycle(hub, c, count, &r.fill_warm, &r.drain_warm);
  tern_conn_del(c);
  tern_hub_del(hub);
  return r;
}

static double median_of(double *v) {
  qsort(v, RUNS, sizeof(double), cmp_double);
  return v[RUNS / 2];
}

/* The backlog runs, each in a child process so that its peak RSS is its
   own; pool off and on alternate so that both see the same machine. */
static void backlog(uint64_t count) {
  backlog_run runs[2][RUNS];
  for (int i = 0; i < RUNS; ++i) {
    for (int on = 0; on < 2; ++on) {
      int fd[2];
      if (pipe(fd) != 0) {
        die("pipe", TERN_ERR_NOMEM);
      }
      fflush(stdout);
      pid_t pid = fork();
      if (pid < 0) {
        die("fork", TERN_ERR_NOMEM);
      }
      if (pid == 0) {
        close(fd[0]);
        backlog_run r = run_backlog(count, on ? 1024 * 1024 : 0);
        _exit(write(fd[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
      }
      close(fd[1]);
      ssize_t got = read(fd[0], &runs[on][i], sizeof(runs[on][i]));
      close(fd[0]);
      int status;
      waitpid(pid, &status, 0);
      if (got != (ssize_t)sizeof(runs[on][i]) || !WIFEXITED(status) ||
          WEXITSTATUS(status) != 0) {
        fprintf(stderr, "core: backlog run failed\n");
        exit(1);
      }
    }
  }
  for (int on = 0; on < 2; ++on) {
    double fill[RUNS], drain[RUNS], fillw[RUNS], drainw[RUNS];
    double peak[RUNS], after[RUNS];
    printf("backlog of %llu messages, 64 B, pool %s\n  fill/drain, cold:",
           (unsigned long long)count,
           on ? "on (max_pool_bytes 1 MiB)" : "off (max_pool_bytes 0)");
    for (int i = 0; i < RUNS; ++i) {
      const backlog_run *r = &runs[on][i];
      fill[i] = r->fill;
      drain[i] = r->drain;
      fillw[i] = r->fill_warm;
      drainw[i] = r->drain_warm;
      peak[i] = (double)(r->rss_peak - r->rss_before);
      after[i] = (double)(r->rss_after - r->rss_before);
      printf(" %.2fM/%.2fM", fill[i] / 1e6, drain[i] / 1e6);
    }
    printf("\n  fill/drain, warm:");
    for (int i = 0; i < RUNS; ++i) {
      printf(" %.2fM/%.2fM", fillw[i] / 1e6, drainw[i] / 1e6);
    }
    double f = median_of(fill), dr = median_of(drain);
    double fw = median_of(fillw), dw = median_of(drainw);
    double pk = median_of(peak), af = median_of(after);
    printf("\n  medians: cold fill %.2fM msg/s (%.0f ns/msg), drain %.2fM"
           " msg/s (%.0f ns/msg); warm fill %.2fM msg/s (%.0f ns/msg),"
           " drain %.2fM msg/s (%.0f ns/msg)\n"
           "  peak RSS +%.0f MB (%.0f bytes per message), RSS after the"
           " cold drain +%.1f MB\n",
           f / 1e6, 1e9 / f, dr / 1e6, 1e9 / dr, fw / 1e6, 1e9 / fw,
           dw / 1e6, 1e9 / dw, pk / 1e6, pk / (double)count, af / 1e6);
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "all";
  uint64_t arg = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
  double runs[RUNS];
  const char *ns = getenv("TERN_BENCH_SESSIONS"); /* for experiments */
  size_t nspread = ns ? (size_t)strtoull(ns, NULL, 10) : 100000;
  if (strcmp(mode, "count") == 0) {
    uint64_t batch = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    run_single(arg ? arg : 100000, batch ? batch : 1, SEND_ONCE);
    return 0;
  }
  int all = strcmp(mode, "all") == 0;
  /* idle first: memory the other modes freed would otherwise be reused and
     hide part of its growth. */
  if (all || strcmp(mode, "idle") == 0) {
    run_idle(arg ? (size_t)arg : 1000000);
  }
  if (all || strcmp(mode, "single") == 0) {
    for (int i = 0; i < RUNS; ++i) {
      runs[i] = run_single(arg ? arg : 3000000, 1, SEND_ONCE);
    }
    report("single session, 64 B, one round trip per message", runs, 5e6);
    for (int i = 0; i < RUNS; ++i) {
      runs[i] = run_single(arg ? arg : 3000000, 10, SEND_ONCE);
    }
    report("single session, 64 B, 10 per write and ACK", runs, 5e6);
  }
  if (strcmp(mode, "peek") == 0) {
    /* tern_conn_peek_output's block per write against the host's buffer,
       run by run. */
    double peeks[RUNS];
    for (int i = 0; i < RUNS; ++i) {
      runs[i] = run_single(arg ? arg : 3000000, 1, SEND_LOOP);
      peeks[i] = run_single(arg ? arg : 3000000, 1, SEND_PEEK);
    }
    report("single session, 64 B, tern_conn_write until 0", runs, 0);
    report("single session, 64 B, peek_output + consume until 0", peeks, 0);
  }
  if (all || strcmp(mode, "spread") == 0) {
    for (int i = 0; i < RUNS; ++i) {
      runs[i] = run_spread(arg ? arg : 2000000, nspread);
    }
    report("100,000 sessions, 64 B", runs, 2e6);
  }
  if (strcmp(mode, "backlog") == 0) {
    backlog(arg ? arg : 1000000);
  }
  return 0;
}
