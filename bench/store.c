/*
 * bench/store — throughput of the file store (lib/store), in a scratch
 * directory under $TMPDIR (default /tmp), removed afterwards.
 *
 *   store append  [batches]  appends of records with 16-byte keys and
 *                            64-byte values in batches of 1, 64 and 1024,
 *                            each batch with sync = 1 (one fsync per
 *                            batch), beside the raw bandwidth of write() +
 *                            fdatasync() of the same bytes in the same
 *                            batches into a plain file, without the store
 *   store recover [records]  open + load of a store of that many records
 *                            (default 10,000,000 distinct keys), and the
 *                            index memory per live key
 *   store nosync  [batches]  batches of 1024 without fsync (TERN_FSYNC_NEVER)
 *                            beside write() alone: the store's own cost
 *   store latency [arrivals] [sync_every] [interval_us]
 *                            delivery latency of non-durable traffic on a
 *                            hub over the file store while SYNC publishes
 *                            run, fsync inline (the default) beside
 *                            fsync on the store's thread (sync_thread):
 *                            see bench_latency
 *   store hostile [max KiB]  open of a segment whose one damaged record
 *                            holds a payload full of plausible record heads
 *                            (each claiming the rest of the segment), of
 *                            64 KiB doubling up to max (default 16384):
 *                            the current format (2, with its head check)
 *                            beside format 1 (up to 512 KiB, as it is
 *                            quadratic): median open time, time per MiB
 *                            and the bytes run through CRC-32C per byte
 *   store all                append and recover (what the README quotes)
 *
 * Every figure is the median of 5 runs; every run is printed.  The store
 * and the raw file use fdatasync the same way.  The recovery figures are
 * with the segment files in the page cache (the usual case at restart after
 * a process crash); a cold cache adds the disk's read time.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../tests/store_util.h"
#include "bench_conn.h"
#include "base/mem.h"
#include "store/format.h"
#include "tern.h"

#define RUNS 5
#define KEYLEN 16
#define VALUELEN 64
#define RECORD_BYTES (15 + KEYLEN + VALUELEN) /* as stored on disk */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rv) {
  fprintf(stderr, "store: %s: %s\n", what,
          rv < 0 ? tern_strerror(rv) : "system error");
  exit(1);
}

static char *scratch(void) {
  const char *base = getenv("TMPDIR");
  char *p = malloc(4096);
  snprintf(p, 4096, "%s/tern-bench-XXXXXX", base && *base ? base : "/tmp");
  if (p == NULL || mkdtemp(p) == NULL) {
    die("mkdtemp", 1);
  }
  return p;
}

static void rmtree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4200];
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.' &&
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) <
            (int)sizeof(path)) {
      unlink(path);
    }
  }
  if (d != NULL) {
    closedir(d);
  }
  rmdir(dir);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v) {
  qsort(v, RUNS, sizeof(double), cmp_double);
  return v[RUNS / 2];
}

/* make_batch fills |recs| with keys counting up from |first|: "k" and 15
   hex digits (cheap to make, so that the figures are the store's). */
static void make_batch(tern_store_record *recs, char (*keys)[KEYLEN + 1],
                       const uint8_t *value, size_t n, uint64_t first) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    uint64_t v = first + i;
    keys[i][0] = 'k';
    for (int d = KEYLEN - 1; d >= 1; --d) {
      keys[i][d] = hex[v & 15];
      v >>= 4;
    }
    keys[i][KEYLEN] = '\0';
    recs[i].op = TERN_STORE_SET;
    recs[i].key = (const uint8_t *)keys[i];
    recs[i].keylen = KEYLEN;
    recs[i].value = value;
    recs[i].valuelen = VALUELEN;
  }
}

/* ---- append ------------------------------------------------------------- */

/* store_run appends |nbatches| batches of |batch| records; returns the
   seconds taken. */
static double store_run(size_t batch, size_t nbatches, int fsync) {
  char *dir = scratch();
  tern_store_file *s;
  const tern_store_methods *m = tern_store_file_methods();
  tern_store_record *recs = malloc(batch * sizeof(*recs));
  char(*keys)[KEYLEN + 1] = malloc(batch * sizeof(*keys));
  uint8_t value[VALUELEN];
  double t0, t;
  int rv;

  tern_store_file_options o;
  memset(value, 'v', sizeof(value));
  tern_store_file_options_default(&o);
  o.fsync = fsync;
  rv = tern_store_file_open(&s, dir, &o, NULL);
  if (rv != 0) {
    die(tern_store_file_error(NULL), rv);
  }
  make_batch(recs, keys, value, batch, 0);
  rv = m->append(s, 0, recs, batch, 1); /* the segment exists */
  if (rv != 0) {
    die("append", rv);
  }
  t0 = now_s();
  for (size_t b = 0; b < nbatches; ++b) {
    make_batch(recs, keys, value, batch, (b + 1) * batch);
    rv = m->append(s, b + 1, recs, batch, 1);
    if (rv != 0) {
      die("append", rv);
    }
  }
  t = now_s() - t0;
  tern_store_file_close(s);
  rmtree(dir);
  free(dir);
  free(recs);
  free(keys);
  return t;
}

/* raw_run writes the same bytes with write() + fdatasync() per batch
   (without fdatasync when |sync| is 0). */
static double raw_run(size_t batch, size_t nbatches, int sync) {
  char *dir = scratch();
  char path[4200];
  size_t len = batch * RECORD_BYTES;
  uint8_t *buf = malloc(len);
  double t0, t;
  int fd;

  memset(buf, 'r', len);
  snprintf(path, sizeof(path), "%s/raw", dir);
  fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fdatasync(fd) != 0) {
    die("raw", 1);
  }
  t0 = now_s();
  for (size_t b = 0; b < nbatches; ++b) {
    memset(buf, (int)(b & 0xff), 16); /* as if the bytes changed */
    if (write(fd, buf, len) != (ssize_t)len || (sync && fdatasync(fd) != 0)) {
      die("raw", 1);
    }
  }
  t = now_s() - t0;
  close(fd);
  unlink(path);
  rmtree(dir);
  free(dir);
  free(buf);
  return t;
}

static void bench_nosync(size_t n);

static void bench_append(size_t scale) {
  static const size_t batches[3] = {1, 64, 1024};
  printf("append: %d-byte keys, %d-byte values (%d bytes a record on disk), "
         "sync = 1: one fsync per batch\n",
         KEYLEN, VALUELEN, RECORD_BYTES);
  printf("%8s %10s %14s %12s %12s %8s\n", "batch", "batches", "records/s",
         "store MB/s", "raw MB/s", "of raw");
  for (int i = 0; i < 3; ++i) {
    size_t batch = batches[i];
    size_t n = scale ? scale : (batch == 1 ? 2000 : batch == 64 ? 1000 : 300);
    double st[RUNS], raw[RUNS], rps, smb, rmb;
    for (int r = 0; r < RUNS; ++r) {
      st[r] = store_run(batch, n, TERN_FSYNC_BATCH);
      raw[r] = raw_run(batch, n, 1);
      printf("  run %d: batch %zu: store %.3f s, raw %.3f s\n", r + 1, batch,
             st[r], raw[r]);
    }
    rps = (double)(batch * n) / median(st);
    smb = rps * RECORD_BYTES / 1e6;
    rmb = (double)(batch * n * RECORD_BYTES) / median(raw) / 1e6;
    printf("%8zu %10zu %14.0f %12.1f %12.1f %7.0f%%\n", batch, n, rps, smb,
           rmb, 100.0 * smb / rmb);
  }
  bench_nosync(scale ? scale : 2000);
}

/* bench_nosync: batches of 1024 without fsync, what the store's own work
   costs beside write() alone. */
static void bench_nosync(size_t n) {
  double st[RUNS], raw[RUNS], rps, smb, rmb;
  for (int r = 0; r < RUNS; ++r) {
    st[r] = store_run(1024, n, TERN_FSYNC_NEVER);
    raw[r] = raw_run(1024, n, 0);
  }
  rps = (double)(1024 * n) / median(st);
  smb = rps * RECORD_BYTES / 1e6;
  rmb = (double)(1024 * n * RECORD_BYTES) / median(raw) / 1e6;
  printf("no fsync (TERN_FSYNC_NEVER; raw: write() alone):\n");
  printf("%8d %10zu %14.0f %12.1f %12.1f %7.0f%%\n", 1024, n, rps, smb, rmb,
         100.0 * smb / rmb);
}

/* ---- recovery ----------------------------------------------------------- */

static int count_visit(void *ctx, const uint8_t *key, size_t keylen,
                       const uint8_t *value, size_t valuelen) {
  uint64_t *n = ctx;
  (void)key;
  (void)keylen;
  (void)value;
  (void)valuelen;
  ++*n;
  return 0;
}

static long rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static void bench_recover(size_t records) {
  char *dir = scratch();
  const tern_store_methods *m = tern_store_file_methods();
  tern_store_file_options o;
  tern_store_file *s;
  tern_store_record recs[1024];
  static char keys[1024][KEYLEN + 1];
  uint8_t value[VALUELEN];
  double open_t[RUNS], load_t[RUNS], total[RUNS], t0;
  tern_store_file_stats st;
  int rv;

  memset(value, 'v', sizeof(value));
  tern_store_file_options_default(&o);
  o.fsync = TERN_FSYNC_NEVER; /* building it is not what is measured */
  rv = tern_store_file_open(&s, dir, &o, NULL);
  if (rv != 0) {
    die(tern_store_file_error(NULL), rv);
  }
  t0 = now_s();
  for (size_t done = 0; done < records; done += 1024) {
    size_t n = records - done < 1024 ? records - done : 1024;
    make_batch(recs, keys, value, n, done);
    rv = m->append(s, 0, recs, n, 0);
    if (rv != 0) {
      die("append", rv);
    }
  }
  tern_store_file_get_stats(s, &st, sizeof(st));
  printf("recover: built %zu records (%.0f MB in %llu segments) in %.1f s\n",
         records, (double)st.bytes / 1e6, (unsigned long long)st.segments,
         now_s() - t0);
  tern_store_file_close(s);

  for (int r = 0; r < RUNS; ++r) {
    uint64_t visited = 0;
    double t1;
    t0 = now_s();
    rv = tern_store_file_open(&s, dir, &o, NULL);
    if (rv != 0) {
      die(tern_store_file_error(NULL), rv);
    }
    t1 = now_s();
    rv = m->load(s, count_visit, &visited);
    if (rv != 0 || visited != records) {
      die("load", rv);
    }
    load_t[r] = now_s() - t1;
    open_t[r] = t1 - t0;
    total[r] = open_t[r] + load_t[r];
    tern_store_file_get_stats(s, &st, sizeof(st));
    tern_store_file_close(s);
    printf("  run %d: open %.3f s + load %.3f s = %.3f s\n", r + 1, open_t[r],
           load_t[r], total[r]);
  }
  printf("recover: open %.3f s, load %.3f s: %.0f records/s (open + load)\n",
         median(open_t), median(load_t), (double)records / median(total));
  printf("index: %.1f bytes per live key (%llu bytes, %llu keys of %d "
         "bytes); peak RSS %ld MiB\n",
         (double)st.index_bytes / (double)st.live,
         (unsigned long long)st.index_bytes, (unsigned long long)st.live,
         KEYLEN, rss_kib() / 1024);
  rmtree(dir);
  free(dir);
}

/* ---- latency under SYNC publishes --------------------------------------- */

/*
 * One thread plays a host's loop over a hub with the file store.  Messages
 * arrive on a fixed schedule (open loop: one every |arrival_ns|, whether
 * the loop kept up or not; it sleeps until the next one, as a host sleeps
 * in poll); for each the loop publishes a VOLATILE message to
 * session "live", which has a connection, writes it out with
 * tern_conn_write and acks it; every |sync_every|th arrival it also
 * publishes a TERN_MSG_SYNC message to session "durable" (no connection).
 * Then, as a host does, it calls tern_hub_handle_expiry when
 * tern_hub_get_expiry says so (that flushes the batch: with the fsync
 * inline, the loop waits for it there), and with sync_thread it calls
 * tern_store_file_complete when the store's descriptor is readable.
 * Delivery latency is the real time from a message's arrival to the return
 * of the tern_conn_write that wrote it; confirmation latency is from a
 * SYNC publish's arrival to its TERN_EV_PERSISTED.  The stall is the time
 * the loop spends in tern_hub_handle_expiry and tern_store_file_complete
 * (the longest one, and all of them): what every connection waits for,
 * whatever else the machine is doing.  Each run measures three loops
 * one after the other: no SYNC publish at all (the baseline: the loop's
 * own cost and the machine's noise; with sync_thread, since the hub's own
 * seq reservations are synced too), SYNC publishes with the fsync inline,
 * and SYNC publishes with sync_thread.
 */
static uint64_t arrival_ns = 100000; /* 10,000 arrivals a second */

typedef struct lat_result {
  double p50, p99, max;        /* delivery, microseconds */
  double conf_p50, conf_p99;   /* confirmation, microseconds */
  double stall_max;            /* longest expiry + completion step, us */
  double stall_sum;            /* all of them, milliseconds */
  uint64_t fsyncs, sync_batches;
} lat_result;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static tern_tstamp wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (tern_tstamp)ts.tv_sec * 1000000000u + (tern_tstamp)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, size_t n, double p) {
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return n == 0 ? 0 : (double)v[i] / 1e3;
}

static tern_conn *live_conn(tern_hub *hub, tern_tstamp now) {
  tern_conn *c = NULL;
  int rv = bench_connect(hub, "live", now, &c);
  if (rv != 0) {
    die("HELLO", rv);
  }
  return c;
}

static void live_ack(tern_conn *c, uint64_t seq, tern_tstamp now) {
  int rv = bench_ack(c, seq, now);
  if (rv != 0) {
    die("ACK", rv);
  }
}

static lat_result latency_run(size_t count, size_t sync_every,
                              int sync_thread) {
  char *dir = scratch();
  tern_store_file_options o;
  tern_store_file *fs;
  tern_settings set;
  tern_hub *hub;
  tern_conn *c;
  uint8_t out[4096], payload[VALUELEN];
  uint64_t *lat = malloc(count * sizeof(*lat));
  size_t nsync = sync_every > 0 ? count / sync_every + 1 : 1;
  uint64_t *sync_at = calloc(nsync, sizeof(*sync_at));
  uint64_t *conf = malloc(nsync * sizeof(*conf));
  size_t nconf = 0;
  uint64_t seq = 0, start, stall_sum = 0, stall_max = 0;
  tern_store_file_stats st0, st1;
  lat_result res;
  tern_event ev;
  int rv, fd;

  memset(payload, 'p', sizeof(payload));
  tern_store_file_options_default(&o);
  o.sync_thread = (uint32_t)sync_thread;
  rv = tern_store_file_open(&fs, dir, &o, NULL);
  if (rv != 0) {
    die(tern_store_file_error(NULL), rv);
  }
  tern_settings_default(&set);
  set.seed = 1;
  rv = tern_hub_new(&hub, &set, NULL);
  if (rv == 0) {
    rv = tern_hub_set_store(hub, tern_store_file_methods(), fs, wall_ns());
  }
  if (rv != 0) {
    die("hub", rv);
  }
  fd = tern_store_file_fd(fs);
  c = live_conn(hub, wall_ns());
  tern_store_file_get_stats(fs, &st0, sizeof(st0));
  uint64_t batches0 = 0;
  {
    tern_stats hs;
    tern_hub_get_stats(hub, &hs, sizeof(hs));
    batches0 = hs.store_batches;
  }

  start = mono_ns();
  for (size_t k = 0; k < count; ++k) {
    uint64_t arrival = start + (uint64_t)k * arrival_ns;
    if (mono_ns() < arrival) { /* a host sleeps in poll until then */
      struct timespec ts;
      ts.tv_sec = (time_t)(arrival / 1000000000u);
      ts.tv_nsec = (long)(arrival % 1000000000u);
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    tern_tstamp now = wall_ns();
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.payload = payload;
    d.payloadlen = sizeof(payload);
    d.flags = TERN_MSG_VOLATILE;
    rv = tern_hub_publish(hub, (const uint8_t *)"live", 4, &d, now, NULL);
    if (rv != 0) {
      die("publish", rv);
    }
    if (sync_every > 0 && k % sync_every == 0) {
      char id[32];
      size_t i = k / sync_every;
      snprintf(id, sizeof(id), "s%zu", i);
      d.id = (const uint8_t *)id;
      d.idlen = strlen(id);
      d.flags = TERN_MSG_SYNC;
      d.ttl = 10 * TERN_SECONDS;
      sync_at[i] = arrival; /* what the producer sees */
      rv = tern_hub_publish(hub, (const uint8_t *)"durable", 7, &d, now,
                            NULL);
      if (rv != 0) {
        die("publish SYNC", rv);
      }
    }
    tern_ssize n = tern_conn_write(c, out, sizeof(out), now);
    lat[k] = mono_ns() - arrival;
    if (n <= 0) {
      die("write", (int)n);
    }
    live_ack(c, ++seq, now);
    uint64_t in_hub = mono_ns();
    if (tern_hub_get_expiry(hub) <= now) {
      tern_hub_handle_expiry(hub, now);
    }
    if (fd >= 0) {
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 0) == 1) {
        tern_store_file_complete(fs, hub);
      }
    }
    in_hub = mono_ns() - in_hub;
    stall_sum += in_hub;
    if (in_hub > stall_max) {
      stall_max = in_hub;
    }
    while (tern_hub_next_event(hub, &ev) == 1) {
      if (ev.type == TERN_EV_PERSISTED && ev.msg_idlen > 1 &&
          ev.msg_idlen < 31) {
        char id[32];
        memcpy(id, ev.msg_id, ev.msg_idlen);
        id[ev.msg_idlen] = '\0';
        size_t i = (size_t)strtoull(id + 1, NULL, 10);
        if (ev.reason != 0) {
          die("PERSISTED", ev.reason);
        }
        if (i < nsync && nconf < nsync) {
          conf[nconf++] = mono_ns() - sync_at[i];
        }
      }
    }
  }
  tern_store_file_get_stats(fs, &st1, sizeof(st1));
  {
    tern_stats hs;
    tern_hub_get_stats(hub, &hs, sizeof(hs));
    res.sync_batches = hs.store_batches - batches0;
  }
  res.fsyncs = st1.fsyncs - st0.fsyncs;
  res.stall_max = (double)stall_max / 1e3;
  res.stall_sum = (double)stall_sum / 1e6;
  qsort(lat, count, sizeof(*lat), cmp_u64);
  qsort(conf, nconf, sizeof(*conf), cmp_u64);
  res.p50 = pct_us(lat, count, 0.50);
  res.p99 = pct_us(lat, count, 0.99);
  res.max = pct_us(lat, count, 1.0);
  res.conf_p50 = pct_us(conf, nconf, 0.50);
  res.conf_p99 = pct_us(conf, nconf, 0.99);
  tern_conn_del(c);
  tern_hub_del(hub);
  tern_store_file_close(fs);
  rmtree(dir);
  free(dir);
  free(lat);
  free(sync_at);
  free(conf);
  return res;
}

static void bench_latency(size_t count, size_t sync_every) {
  static const char *const names[3] = {"no SYNC", "fsync inline",
                                       "sync_thread"};
  lat_result r[3][RUNS];
  printf("latency: %zu arrivals, one every %d us, of a VOLATILE 64-byte "
         "message to a connected session; every %zuth also a SYNC publish\n",
         count, (int)(arrival_ns / 1000), sync_every);
  for (int run = 0; run < RUNS; ++run) {
    for (int m = 0; m < 3; ++m) {
      /* the baseline: the same loop and store (with its thread, so the
         hub's own seq reservations do not fsync inline), no SYNC publish */
      r[m][run] = latency_run(count, m == 0 ? 0 : sync_every, m != 1);
      printf("  run %d: %-12s delivery p50 %7.1f p99 %8.1f max %8.1f us; "
             "confirm p50 %7.1f p99 %8.1f us; loop in the store: max %7.1f "
             "us, total %6.1f ms; %llu fsyncs\n",
             run + 1, names[m], r[m][run].p50, r[m][run].p99, r[m][run].max,
             r[m][run].conf_p50, r[m][run].conf_p99, r[m][run].stall_max,
             r[m][run].stall_sum,
             (unsigned long long)r[m][run].fsyncs);
    }
  }
  printf("%-13s %9s %9s %9s %11s %11s %10s %10s %7s %7s\n", "medians of 5",
         "p50 us", "p99 us", "max us", "confirm p50", "confirm p99",
         "stall max", "stall ms", "fsyncs", "batches");
  for (int m = 0; m < 3; ++m) {
    double v[9][RUNS];
    for (int run = 0; run < RUNS; ++run) {
      v[0][run] = r[m][run].p50;
      v[1][run] = r[m][run].p99;
      v[2][run] = r[m][run].max;
      v[3][run] = r[m][run].conf_p50;
      v[4][run] = r[m][run].conf_p99;
      v[5][run] = (double)r[m][run].fsyncs;
      v[6][run] = (double)r[m][run].sync_batches;
      v[7][run] = r[m][run].stall_max;
      v[8][run] = r[m][run].stall_sum;
    }
    printf("%-13s %9.1f %9.1f %9.1f %11.1f %11.1f %10.1f %10.1f %7.0f %7.0f\n",
           names[m], median(v[0]), median(v[1]), median(v[2]), median(v[3]),
           median(v[4]), median(v[7]), median(v[8]), median(v[5]),
           median(v[6]));
  }
}

/* ---- recovery after damage in a hostile payload ------------------------- */

static int no_visit(void *ctx, const rec *recs, size_t n) {
  (void)ctx;
  (void)recs;
  (void)n;
  return 0;
}

static void hostile_one(uint32_t version, size_t payload) {
  size_t len, hoff, hsize;
  uint32_t salt = 0x2545f491;
  uint8_t *img = su_hostile_segment(version, 100, payload, salt, &len, &hoff,
                                    &hsize);
  char *dir = scratch();
  char path[4200];
  double t[RUNS];
  su_mem_src image = {img, len};
  scan_source src = {su_mem_read_at, &image, len};
  scan_buf sb = {NULL, 0, mem_default()};
  scan_result res;
  tern_store_file_options o;
  tern_store_file *s;
  FILE *f;
  int rv;

  snprintf(path, sizeof(path), "%s/000001.log", dir);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(img, 1, len, f) != len || fclose(f) != 0) {
    die("write", 1);
  }
  tern_store_file_options_default(&o);
  o.fsync = TERN_FSYNC_NEVER;
  for (int r = 0; r < RUNS; ++r) {
    double t0 = now_s();
    rv = tern_store_file_open(&s, dir, &o, NULL);
    if (rv != 0) {
      die(tern_store_file_error(NULL), rv);
    }
    t[r] = now_s() - t0;
    tern_store_file_close(s);
  }
  if (scan_segment(&sb, &src, SEG_DATA_START, salt, version, no_visit, NULL,
                   &res) != 0 ||
      res.damaged != 1) {
    die("scan", 1);
  }
  scan_buf_free(&sb);
  printf("%8u %10zu %12zu %12.3f %12.3f %14.1f\n", (unsigned)version,
         payload / 1024, len, median(t) * 1e3,
         median(t) * 1e3 / ((double)len / (1 << 20)),
         (double)res.crc_bytes / (double)len);
  rmtree(dir);
  free(dir);
  free(img);
}

static void bench_hostile(size_t max_kib) {
  printf("hostile: open of one segment with a damaged record whose payload "
         "has a plausible head every 16 bytes (median of %d opens)\n",
         RUNS);
  printf("%8s %10s %12s %12s %12s %14s\n", "format", "payload KiB",
         "segment B", "open ms", "ms per MiB", "CRC B per B");
  for (size_t kib = 64; kib <= max_kib; kib *= 2) {
    hostile_one(SEG_VERSION, kib * 1024);
  }
  for (size_t kib = 64; kib <= max_kib && kib <= 512; kib *= 2) {
    hostile_one(1, kib * 1024);
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "all";
  size_t n = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(mode, "latency") == 0) {
    size_t every = argc > 3 ? (size_t)strtoull(argv[3], NULL, 10) : 0;
    if (argc > 4 && strtoull(argv[4], NULL, 10) > 0) {
      arrival_ns = 1000 * (uint64_t)strtoull(argv[4], NULL, 10);
    }
    bench_latency(n ? n : 20000, every ? every : 200);
    return 0;
  }
  if (strcmp(mode, "append") == 0 || strcmp(mode, "all") == 0) {
    bench_append(n);
  }
  if (strcmp(mode, "nosync") == 0) {
    bench_nosync(n ? n : 2000);
    return 0;
  }
  if (strcmp(mode, "recover") == 0 || strcmp(mode, "all") == 0) {
    bench_recover(n ? n : 10000000);
  }
  if (strcmp(mode, "hostile") == 0) {
    bench_hostile(n ? n : 16384);
    return 0;
  }
  if (strcmp(mode, "append") != 0 && strcmp(mode, "recover") != 0 &&
      strcmp(mode, "all") != 0) {
    fprintf(stderr,
            "usage: %s [append|recover|nosync|hostile|all] [count]\n"
            "       %s latency [arrivals] [sync_every] [interval_us]\n",
            argv[0], argv[0]);
    return 2;
  }
  return 0;
}
