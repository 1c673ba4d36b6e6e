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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../tests/store_util.h"
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

/* ---- recovery after damage in a hostile payload ------------------------- */

static tern_ssize image_read_at(void *ctx, uint8_t *buf, size_t n,
                                uint64_t off) {
  const uint8_t **img = ctx; /* [0] the bytes, [1] their end */
  size_t len = (size_t)(img[1] - img[0]);
  if (off >= len) {
    return 0;
  }
  if (n > len - off) {
    n = (size_t)(len - off);
  }
  memcpy(buf, img[0] + off, n);
  return (tern_ssize)n;
}

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
  const uint8_t *range[2] = {img, img + len};
  scan_source src = {image_read_at, range, len};
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
    fprintf(stderr, "usage: %s [append|recover|nosync|hostile|all] "
            "[count]\n", argv[0]);
    return 2;
  }
  return 0;
}
