/*
 * The file store (lib/store) through its public functions and methods
 * table: round trips, SET/DEL semantics, argument checks, reopening,
 * segment rolling, the lock, fsync policies and group commit, compaction,
 * recovery from torn tails, damage and leftovers, the failure rule, large
 * values, stats.  Fault sweeps are in store_fault_test.c, kills in
 * store_crash_test.c, random damage in store_corrupt_test.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/rand.h"
#include "store/format.h"
#include "store_util.h"
#include "tap.h"

static const tern_store_methods *M;

static tern_store_record set_rec(const char *key, const void *value,
                                 size_t len) {
  tern_store_record r;
  r.op = TERN_STORE_SET;
  r.key = (const uint8_t *)key;
  r.keylen = strlen(key);
  r.value = value;
  r.valuelen = len;
  return r;
}

static tern_store_record del_rec(const char *key) {
  tern_store_record r;
  r.op = TERN_STORE_DEL;
  r.key = (const uint8_t *)key;
  r.keylen = strlen(key);
  r.value = NULL;
  r.valuelen = 0;
  return r;
}

static tern_store_file_options opts(size_t segment_size,
                                    uint32_t compact_garbage) {
  tern_store_file_options o;
  tern_store_file_options_default(&o);
  o.segment_size = segment_size;
  o.compact_garbage = compact_garbage;
  return o;
}

/* append applies |recs| to the store and, on success, to the model. */
static int append(tern_store_file *s, su_model *m,
                  const tern_store_record *recs, size_t n, int sync) {
  int rv = M->append(s, 0, recs, n, sync);
  if (rv == 0 && m != NULL) {
    for (size_t i = 0; i < n; ++i) {
      su_apply(m, &recs[i]);
    }
  }
  return rv;
}

/* matches loads |s| and compares it with |m|. */
static int matches(tern_store_file *s, const su_model *m) {
  su_loaded l;
  char why[400] = "";
  int ok;
  memset(&l, 0, sizeof(l));
  ok = su_load(s, &l) == 0 && l.duplicates == 0 && su_equal(&l.m, m, why,
                                                             sizeof(why));
  if (!ok) {
    tap_diag("load differs: %s (dups %zu)", why, l.duplicates);
  }
  su_model_free(&l.m);
  return ok;
}

/* random_batch fills |recs| with SETs and DELs over |nkeys| keys; |keys|
   and |vals| hold the bytes. */
static size_t random_batch(rng *r, tern_store_record *recs, size_t max,
                           char (*keys)[32], uint8_t (*vals)[300],
                           unsigned nkeys) {
  size_t n = 1 + (size_t)rng_below(r, max);
  for (size_t i = 0; i < n; ++i) {
    size_t len = (size_t)rng_below(r, 300);
    snprintf(keys[i], 32, "key-%u", (unsigned)rng_below(r, nkeys));
    for (size_t j = 0; j < len; ++j) {
      vals[i][j] = (uint8_t)rng_next(r);
    }
    recs[i] = rng_below(r, 5) == 0 ? del_rec(keys[i])
                                   : set_rec(keys[i], vals[i], len);
  }
  return n;
}

/* ---- options and arguments ---------------------------------------------- */

static void test_options(void) {
  tern_store_file_options o;
  tern_store_file *s = (tern_store_file *)(uintptr_t)1;
  char *dir = su_tmpdir("opts");

  tern_store_file_options_default(&o);
  CHECK_INT(o.version, TERN_STORE_FILE_OPTIONS_VERSION, "default version");
  CHECK_INT(o.fsync, TERN_FSYNC_BATCH, "default fsync is BATCH");
  CHECK_INT(o.strict, 0, "default is not strict");
  CHECK_INT(o.segment_size, 64 << 20, "default segment size 64 MiB");
  CHECK_INT(o.compact_garbage, 50, "default compaction at 50% garbage");
  tern_store_file_options_default(NULL);

  CHECK_INT(tern_store_file_open(NULL, dir, NULL, NULL), TERN_ERR_INVALID,
            "open: NULL pstore");
  CHECK_INT(tern_store_file_open(&s, NULL, NULL, NULL), TERN_ERR_INVALID,
            "open: NULL dir");
  CHECK_INT(tern_store_file_open(&s, "", NULL, NULL), TERN_ERR_INVALID,
            "open: empty dir");
  o.version = 0;
  CHECK_INT(tern_store_file_open(&s, dir, &o, NULL), TERN_ERR_INVALID,
            "open: version 0");
  o = opts(4096, 50);
  o.version = TERN_STORE_FILE_OPTIONS_VERSION + 1;
  CHECK_INT(tern_store_file_open(&s, dir, &o, NULL), TERN_ERR_INVALID,
            "open: unknown version");
  o = opts(4096, 50);
  o.fsync = 7;
  CHECK_INT(tern_store_file_open(&s, dir, &o, NULL), TERN_ERR_INVALID,
            "open: unknown fsync policy");
  o = opts(100, 50);
  CHECK_INT(tern_store_file_open(&s, dir, &o, NULL), TERN_ERR_INVALID,
            "open: segment size below 1 KiB");
  o = opts(4096, 101);
  CHECK_INT(tern_store_file_open(&s, dir, &o, NULL), TERN_ERR_INVALID,
            "open: compact_garbage over 100");
  CHECK(s == (tern_store_file *)(uintptr_t)1,
        "failed opens leave *pstore untouched");
  CHECK(strlen(tern_store_file_error(NULL)) > 0,
        "tern_store_file_error(NULL) says why the last open failed");
  CHECK(su_count_files(dir, "") == 2, "failed opens created nothing");

  s = su_open(dir, NULL);
  CHECK(strcmp(tern_store_file_error(NULL), "") == 0,
        "a successful open clears the thread's open error");
  CHECK(strcmp(tern_store_file_error(s), "") == 0, "a new store has no error");
  CHECK(M->version == TERN_STORE_METHODS_VERSION && M->append && M->load &&
            M->sync && M->compact && M->close,
        "the methods table is complete");
  CHECK_INT(M->append(NULL, 0, NULL, 0, 0), TERN_ERR_INVALID,
            "append: NULL store");
  CHECK_INT(M->append(s, 0, NULL, 3, 0), TERN_ERR_INVALID,
            "append: NULL records");
  CHECK_INT(M->load(s, NULL, NULL), TERN_ERR_INVALID, "load: NULL visitor");
  CHECK_INT(M->sync(NULL), TERN_ERR_INVALID, "sync: NULL store");
  CHECK_INT(M->compact(NULL), TERN_ERR_INVALID, "compact: NULL store");
  M->close(s); /* the table's close is tern_store_file_close */
  tern_store_file_close(NULL);
  tern_store_file_get_stats(NULL, NULL, 0);
  su_rmtree(dir);
  free(dir);
}

/* ---- round trips -------------------------------------------------------- */

static void test_roundtrip(void) {
  char *base = su_tmpdir("rt");
  const char *dir = su_path(base, "store"); /* does not exist yet */
  char dirbuf[4096];
  su_model m;
  tern_store_file *s;
  tern_store_file_stats st;
  uint8_t key256[TERN_STORE_MAX_KEY + 1];
  tern_store_record batch[6], bad[2];

  snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
  memset(&m, 0, sizeof(m));
  s = su_open(dirbuf, NULL);
  CHECK(su_file_size(su_path(dirbuf, "LOCK")) >= 0,
        "open creates the directory and its lock file");
  st = su_stats(s);
  CHECK(st.records == 0 && st.live == 0 && st.segments == 0,
        "an empty store has no records and no segment");

  batch[0] = set_rec("a", "1", 1);
  batch[1] = set_rec("b", "2", 1);
  batch[2] = set_rec("c", "", 0);
  batch[3] = set_rec("a", "three", 5);
  batch[4] = del_rec("b");
  batch[5] = del_rec("never-set");
  CHECK_INT(append(s, &m, batch, 6, 1), 0, "append a batch of six");
  CHECK(matches(s, &m), "load: the last SET wins, DEL removes, an empty "
                        "value is a value");
  st = su_stats(s);
  CHECK(st.records == 6 && st.live == 2 && st.segments == 1,
        "stats: 6 records, 2 live keys, 1 segment");
  CHECK_INT(M->append(s, 0, batch, 0, 1), 0, "an empty batch is fine");

  memset(key256, 'k', sizeof(key256));
  bad[0] = set_rec("x", "y", 1);
  bad[1] = set_rec("y", "z", 1);
  bad[1].key = key256;
  bad[1].keylen = TERN_STORE_MAX_KEY;
  CHECK_INT(append(s, &m, bad, 2, 0), 0, "a key of TERN_STORE_MAX_KEY bytes");
  bad[1].keylen = TERN_STORE_MAX_KEY + 1;
  CHECK_INT(M->append(s, 0, bad, 2, 0), TERN_ERR_TOO_LARGE,
            "a longer key: TERN_ERR_TOO_LARGE");
  bad[1].keylen = 0;
  CHECK_INT(M->append(s, 0, bad, 2, 0), TERN_ERR_INVALID, "an empty key");
  bad[1] = set_rec("y", "z", 1);
  bad[1].key = NULL;
  CHECK_INT(M->append(s, 0, bad, 2, 0), TERN_ERR_INVALID, "a NULL key");
  bad[1] = set_rec("y", NULL, 3);
  CHECK_INT(M->append(s, 0, bad, 2, 0), TERN_ERR_INVALID,
            "a NULL value with a length");
  bad[1] = set_rec("y", "z", REC_MAX_VALUE + 1);
  CHECK_INT(M->append(s, 0, bad, 2, 0), TERN_ERR_TOO_LARGE,
            "a value over the limit");
  bad[1] = set_rec("y", "z", 1);
  bad[1].op = 3;
  CHECK_INT(M->append(s, 0, bad, 2, 0), TERN_ERR_INVALID, "an unknown op");
  st = su_stats(s);
  CHECK(st.records == 8 && matches(s, &m),
        "a refused batch writes none of its records");
  tern_store_file_close(s);

  s = su_open(dirbuf, NULL);
  st = su_stats(s);
  CHECK(st.records == 8 && st.live == 4 && st.skipped == 0 &&
            st.truncated == 0,
        "reopen replays the 8 records: 4 live keys, nothing skipped");
  CHECK(matches(s, &m), "reopen: load gives the same live set");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(base);
  free(base);
}

/* Many random batches, reopened: exactly the live set comes back. */
static void test_reopen_random(void) {
  char *dir = su_tmpdir("reopen");
  tern_store_file_options o = opts(16384, 0);
  tern_store_record recs[40];
  char keys[40][32];
  static uint8_t vals[40][300];
  su_model m;
  su_loaded l;
  tern_store_file *s;
  rng r;
  int ok = 1;

  memset(&m, 0, sizeof(m));
  memset(&l, 0, sizeof(l));
  rng_seed(&r, 7);
  s = su_open(dir, &o);
  for (int b = 0; b < 300; ++b) {
    size_t n = random_batch(&r, recs, 40, keys, vals, 400);
    ok &= append(s, &m, recs, n, b % 10 == 0) == 0;
  }
  CHECK(ok, "300 random batches appended");
  CHECK(matches(s, &m), "load equals the model before reopening");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(su_load(s, &l) == 0 && l.visits == su_live(&m) && l.duplicates == 0,
        "reopen: load visits each live key once (%zu keys)", su_live(&m));
  CHECK(su_equal(&l.m, &m, NULL, 0), "reopen: the values are the last SETs");
  CHECK_INT(su_stats(s).live, su_live(&m), "stats: live keys");
  tern_store_file_close(s);
  su_model_free(&l.m);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

/* ---- segments ----------------------------------------------------------- */

static void test_segments(void) {
  char *dir = su_tmpdir("seg");
  tern_store_file_options o = opts(4096, 0);
  su_model m;
  tern_store_file *s;
  tern_store_file_stats st;
  uint8_t value[100], big[10000];
  char key[32];
  int ok = 1, oversize = 0;

  memset(&m, 0, sizeof(m));
  memset(value, 'v', sizeof(value));
  memset(big, 'B', sizeof(big));
  s = su_open(dir, &o);
  for (int i = 0; i < 300; ++i) {
    tern_store_record r;
    snprintf(key, sizeof(key), "k%03d", i);
    r = set_rec(key, value, sizeof(value));
    ok &= append(s, &m, &r, 1, 0) == 0;
  }
  st = su_stats(s);
  CHECK(ok && st.segments >= 8, "300 records of 111 bytes fill %llu segments "
                               "of 4 KiB",
        (unsigned long long)st.segments);
  CHECK_INT(su_count_files(dir, ".log"), st.segments,
            "one NNNNNN.log file per segment");
  for (unsigned i = 1; i <= st.segments; ++i) {
    char name[32];
    snprintf(name, sizeof(name), "%06u.log", i);
    if (su_file_size(su_path(dir, name)) > 4096) {
      ++oversize;
    }
  }
  CHECK_INT(oversize, 0, "no segment passes segment_size");
  {
    tern_store_record r = set_rec("big", big, sizeof(big));
    char name[32];
    CHECK_INT(append(s, &m, &r, 1, 0), 0, "a record larger than a segment");
    snprintf(name, sizeof(name), "%06llu.log",
             (unsigned long long)st.segments + 1);
    CHECK(su_stats(s).segments == st.segments + 1 &&
              su_file_size(su_path(dir, name)) ==
                  (off_t)(SEG_DATA_START + rec_size(3, sizeof(big))),
          "gets a segment of its own");
  }
  st = su_stats(s);
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m), "reopen reads every segment");
  CHECK_INT(su_stats(s).segments, st.segments, "reopen finds every segment");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

/* ---- the lock ----------------------------------------------------------- */

/* The lock test runs this program again (a fresh process, nothing
   inherited) as "store_test --try-open DIR". */
static const char *self_path;

/* try_open is the child's part: 0 opened, 1 TERN_ERR_STATE with a text,
   2 anything else. */
static int try_open(const char *dir) {
  tern_store_file *s;
  int rv = tern_store_file_open(&s, dir, NULL, NULL);
  if (rv == 0) {
    tern_store_file_close(s);
    return 0;
  }
  return rv == TERN_ERR_STATE &&
                 strstr(tern_store_file_error(NULL), "locked") != NULL
             ? 1
             : 2;
}

/* try_open_in_child returns the exit status of try_open in another
   process. */
static int try_open_in_child(const char *dir) {
  pid_t pid;
  int status;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    execl(self_path, self_path, "--try-open", dir, (char *)NULL);
    _exit(3);
  }
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

static void test_lock(void) {
  char *dir = su_tmpdir("lock");
  tern_store_file *s = su_open(dir, NULL), *t = NULL;

  CHECK_INT(try_open_in_child(dir), 1,
            "another process gets TERN_ERR_STATE (\"locked\")");
  CHECK_INT(tern_store_file_open(&t, dir, NULL, NULL), TERN_ERR_STATE,
            "a second open in the same process: TERN_ERR_STATE");
  tern_store_file_close(s);
  CHECK_INT(try_open_in_child(dir), 0, "after close another process opens it");
  s = su_open(dir, NULL);
  tern_store_file_close(s);
  su_rmtree(dir);
  free(dir);
}

/* ---- fsync policies and group commit ------------------------------------ */

static tern_store_file *open_sys(const char *dir,
                                 const tern_store_file_options *o) {
  tern_store_file *s = NULL;
  int rv = store_file_open_sys(&s, dir, o, NULL, &su_sys);
  if (rv != 0) {
    fprintf(stderr, "open %s: %s\n", dir, tern_store_file_error(NULL));
    abort();
  }
  return s;
}

static void test_fsync_policy(void) {
  char *dir = su_tmpdir("fsync");
  tern_store_file_options o = opts(1 << 20, 0);
  tern_store_record r = set_rec("k", "v", 1);
  tern_store_file *s;
  long before;

  su_faults_reset(0);
  s = open_sys(dir, &o);
  CHECK_INT(M->append(s, 0, &r, 1, 0), 0, "BATCH: append, sync 0");
  before = su_calls(SU_FDATASYNC);
  CHECK_INT(M->append(s, 0, &r, 1, 0), 0, "BATCH: append, sync 0 again");
  CHECK_INT(su_calls(SU_FDATASYNC) - before, 0, "BATCH, sync 0: no fsync");
  CHECK_INT(M->append(s, 0, &r, 1, 1), 0, "BATCH: append, sync 1");
  CHECK_INT(su_calls(SU_FDATASYNC) - before, 1,
            "BATCH, sync 1: one fdatasync for the batch");
  before = su_calls(SU_FDATASYNC);
  CHECK_INT(M->sync(s), 0, "sync with nothing new");
  CHECK_INT(su_calls(SU_FDATASYNC) - before, 0, "no fsync when clean");
  M->append(s, 0, &r, 1, 0);
  CHECK_INT(M->sync(s), 0, "sync after an unsynced append");
  CHECK_INT(su_calls(SU_FDATASYNC) - before, 1, "sync: one fdatasync");
  tern_store_file_close(s);

  o.fsync = TERN_FSYNC_ALWAYS;
  s = open_sys(dir, &o);
  before = su_calls(SU_FDATASYNC);
  M->append(s, 0, &r, 1, 0);
  M->append(s, 0, &r, 1, 0);
  CHECK_INT(su_calls(SU_FDATASYNC) - before, 2,
            "ALWAYS: one fdatasync per batch, sync or not");
  tern_store_file_close(s);

  o.fsync = TERN_FSYNC_NEVER;
  s = open_sys(dir, &o);
  before = su_calls(SU_FDATASYNC) + su_calls(SU_FSYNC);
  M->append(s, 0, &r, 1, 1);
  M->sync(s);
  tern_store_file_close(s);
  CHECK_INT(su_calls(SU_FDATASYNC) + su_calls(SU_FSYNC) - before, 0,
            "NEVER: no fsync for appends, sync or close");

  /* Group commit: one writev and one fdatasync per batch. */
  o.fsync = TERN_FSYNC_BATCH;
  s = open_sys(dir, &o);
  {
    static tern_store_record recs[1024];
    static char keys[1024][16];
    static uint8_t small[64], large[10][8192];
    long w, f;
    for (int i = 0; i < 1024; ++i) {
      snprintf(keys[i], sizeof(keys[i]), "g%05d", i);
      recs[i] = set_rec(keys[i], small, sizeof(small));
    }
    M->append(s, 0, recs, 1, 1); /* the segment exists */
    w = su_calls(SU_WRITEV) + su_calls(SU_WRITE);
    f = su_calls(SU_FDATASYNC);
    CHECK_INT(M->append(s, 0, recs, 1024, 1), 0,
              "a batch of 1024 records with 64-byte values");
    CHECK_INT(su_calls(SU_WRITEV) + su_calls(SU_WRITE) - w, 1,
              "is written by one writev");
    CHECK_INT(su_calls(SU_FDATASYNC) - f, 1, "and made durable by one fsync");
    for (int i = 0; i < 10; ++i) {
      recs[i] = set_rec(keys[i], large[i], sizeof(large[i]));
    }
    w = su_calls(SU_WRITEV) + su_calls(SU_WRITE);
    CHECK_INT(M->append(s, 0, recs, 10, 1), 0,
              "a batch of ten 8 KiB values");
    CHECK_INT(su_calls(SU_WRITEV) + su_calls(SU_WRITE) - w, 1,
              "is one writev from the caller's memory");
  }
  tern_store_file_close(s);
  CHECK(su_f.fds == 0 && su_f.dirs == 0, "every descriptor was closed");
  su_rmtree(dir);
  free(dir);
}

/* ---- compaction --------------------------------------------------------- */

static void test_compaction(void) {
  char *dir = su_tmpdir("compact");
  tern_store_file_options o = opts(4096, 0);
  tern_store_file *s;
  tern_store_file_stats st;
  su_model m;
  char key[32], value[64];
  int ok = 1;

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  for (int v = 0; v < 20; ++v) {
    for (int k = 0; k < 50; ++k) {
      tern_store_record r;
      snprintf(key, sizeof(key), "key%02d", k);
      snprintf(value, sizeof(value), "value %d of %d", v, k);
      r = (k % 7 == 0 && v == 19) ? del_rec(key)
                                  : set_rec(key, value, strlen(value));
      ok &= append(s, &m, &r, 1, 0) == 0;
    }
  }
  st = su_stats(s);
  CHECK(ok && st.segments > 5 && st.garbage_bytes > st.bytes / 2,
        "1000 overwrites: %llu segments, %llu of %llu bytes garbage",
        (unsigned long long)st.segments, (unsigned long long)st.garbage_bytes,
        (unsigned long long)st.bytes);
  CHECK_INT(M->compact(s), 0, "compact");
  st = su_stats(s);
  CHECK(st.segments == 1 && st.garbage_bytes == 0 && st.compactions == 1 &&
            st.records == st.live && st.live == su_live(&m),
        "after compaction: one segment, no garbage, only live records");
  CHECK_INT(su_count_files(dir, ".log"), 1, "the old segment files are gone");
  CHECK_INT(su_count_files(dir, ".tmp"), 0, "no temporary file is left");
  CHECK(matches(s, &m), "load after compaction");
  {
    tern_store_record r[2] = {set_rec("after", "x", 1), del_rec("key01")};
    CHECK_INT(append(s, &m, r, 2, 1), 0, "append after compaction");
  }
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m), "reopen after compaction");
  CHECK_INT(M->compact(s), 0, "compact again");
  CHECK(matches(s, &m), "load after the second compaction");
  tern_store_file_close(s);

  /* Automatic compaction keeps the log within a bound. */
  su_rmtree(dir);
  o = opts(4096, 50);
  s = su_open(dir, &o);
  su_model_free(&m);
  ok = 1;
  for (int v = 0; v < 200; ++v) {
    for (int k = 0; k < 20; ++k) {
      tern_store_record r;
      snprintf(key, sizeof(key), "key%02d", k);
      snprintf(value, sizeof(value), "value %d of %d", v, k);
      r = set_rec(key, value, strlen(value));
      ok &= append(s, &m, &r, 1, 0) == 0;
    }
  }
  st = su_stats(s);
  CHECK(ok && st.compactions >= 10 && st.bytes < 4 * 4096 + 2 * 20 * 40,
        "4000 overwrites at compact_garbage 50: %llu compactions, %llu bytes",
        (unsigned long long)st.compactions, (unsigned long long)st.bytes);
  CHECK(matches(s, &m), "load after automatic compactions");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m), "reopen after automatic compactions");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

/* ---- recovery ----------------------------------------------------------- */

/* fill writes |n| records "r<i>" = 40-byte values, one per batch. */
static void fill(tern_store_file *s, su_model *m, int from, int n) {
  char key[32];
  uint8_t value[40];
  for (int i = from; i < from + n; ++i) {
    tern_store_record r;
    snprintf(key, sizeof(key), "r%04d", i);
    memset(value, 'a' + i % 26, sizeof(value));
    r = set_rec(key, value, sizeof(value));
    append(s, m, &r, 1, 1);
  }
}

static void test_torn_tail(void) {
  char *dir = su_tmpdir("torn");
  tern_store_file_options o = opts(1 << 20, 0);
  const char *seg1;
  tern_store_file *s;
  tern_store_file_stats st;
  su_model m;
  off_t size;
  uint8_t junk[5] = {0x40, 0, 0, 0, 0x11};

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  fill(s, &m, 0, 10);
  tern_store_file_close(s);
  seg1 = su_path(dir, "000001.log");
  size = su_file_size(seg1);
  {
    FILE *f = fopen(seg1, "ab");
    fwrite(junk, 1, sizeof(junk), f);
    fclose(f);
  }
  s = su_open(dir, &o);
  st = su_stats(s);
  CHECK(st.truncated == 5 && st.skipped == 0,
        "a partial record head at the end: 5 bytes truncated, none skipped");
  CHECK_INT(su_file_size(seg1), size, "the file is cut back to the last "
                                      "good record");
  CHECK(matches(s, &m), "every whole record is still there");
  tern_store_file_close(s);

  /* Cut the last record in half: it is gone, the rest stays. */
  if (truncate(seg1, size - 20) != 0) {
    su_die("truncate");
  }
  s = su_open(dir, &o);
  st = su_stats(s);
  CHECK_INT(st.truncated, rec_size(5, 40) - 20,
            "a half-written last record is truncated");
  su_del(&m, (const uint8_t *)"r0009", 5);
  CHECK(matches(s, &m), "the records before it are all there");
  fill(s, &m, 10, 3);
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_stats(s).truncated == 0,
        "appends after a truncation reopen cleanly");
  tern_store_file_close(s);

  /* A complete last record with a bad CRC is a torn tail too. */
  {
    size_t len;
    uint8_t *p = su_read_file(seg1, &len);
    p[len - 3] ^= 0x20;
    su_write_file(seg1, p, len);
    free(p);
  }
  s = su_open(dir, &o);
  CHECK_INT(su_stats(s).truncated, rec_size(5, 40),
            "a last record with a bad CRC is truncated");
  su_del(&m, (const uint8_t *)"r0012", 5);
  CHECK(matches(s, &m), "and only it is lost");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

/* flip_byte xors one byte of a file. */
static void flip_byte(const char *path, size_t off, uint8_t mask) {
  size_t len;
  uint8_t *p = su_read_file(path, &len);
  if (p == NULL || off >= len) {
    su_die("flip_byte");
  }
  p[off] ^= mask;
  su_write_file(path, p, len);
  free(p);
}

/* first_log finds the lowest-numbered segment file of |dir|. */
static void first_log(const char *dir, char *out, size_t len) {
  DIR *d = opendir(dir);
  struct dirent *e;
  out[0] = '\0';
  while (d != NULL && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0 &&
        (out[0] == '\0' || strcmp(e->d_name, out) < 0)) {
      snprintf(out, len, "%s", e->d_name);
    }
  }
  if (d != NULL) {
    closedir(d);
  }
}

static void test_mid_damage(void) {
  char *dir = su_tmpdir("mid");
  char *copy = su_tmpdir("midcopy");
  tern_store_file_options o = opts(2048, 0), strict;
  tern_store_file *s;
  tern_store_file_stats st;
  su_model m;
  size_t rsize = rec_size(5, 40);
  int rv;

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  fill(s, &m, 0, 100); /* 56-byte records, 35 per 2 KiB segment */
  tern_store_file_close(s);

  /* Damage the 4th record of the first segment (a whole segment follows). */
  flip_byte(su_path(dir, "000001.log"), SEG_DATA_START + 3 * rsize + 20,
            0x01);
  su_rmtree(copy);
  su_copy_dir(dir, copy);
  strict = o;
  strict.strict = 1;
  s = (tern_store_file *)(uintptr_t)1;
  rv = tern_store_file_open(&s, copy, &strict, NULL);
  CHECK_INT(rv, TERN_ERR_STORE, "strict: a damaged record in the middle "
                                "refuses the open");
  CHECK(strstr(tern_store_file_error(NULL), "000001.log") != NULL &&
            strstr(tern_store_file_error(NULL), "strict") != NULL,
        "the error names the segment and strict mode: %s",
        tern_store_file_error(NULL));
  CHECK(s == (tern_store_file *)(uintptr_t)1, "*pstore untouched");

  s = su_open(dir, &o);
  st = su_stats(s);
  CHECK(st.skipped == 1 && st.skipped_bytes == rsize && st.truncated == 0,
        "non-strict: one record skipped (%llu bytes), nothing truncated",
        (unsigned long long)st.skipped_bytes);
  su_del(&m, (const uint8_t *)"r0003", 5);
  CHECK(matches(s, &m), "every other record is served");
  fill(s, &m, 100, 5);
  CHECK_INT(M->compact(s), 0, "compaction after damage");
  CHECK(su_count_files(dir, ".corrupt") == 1,
        "the damaged segment is kept aside as .corrupt");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  st = su_stats(s);
  CHECK(st.skipped == 0 && matches(s, &m),
        "after compaction the store is clean and complete");
  tern_store_file_close(s);

  /* One header copy damaged: the other serves.  Both: the segment is
     skipped whole. */
  {
    char name[64];
    first_log(dir, name, sizeof(name));
    flip_byte(su_path(dir, name), 3, 0x10);
    s = su_open(dir, &o);
    CHECK(su_stats(s).skipped == 0 && matches(s, &m),
          "one bad header copy: the other one serves");
    tern_store_file_close(s);
    off_t size = su_file_size(su_path(dir, name));
    char kept[80];
    flip_byte(su_path(dir, name), SEG_HEADER_SIZE + 20, 0x10);
    s = su_open(dir, &o);
    st = su_stats(s);
    CHECK(st.skipped == 1 && st.live == 0 &&
              st.skipped_bytes == (uint64_t)size,
          "both copies bad: the segment is skipped and counted");
    snprintf(kept, sizeof(kept), "%s.corrupt", name);
    CHECK(su_file_size(su_path(dir, name)) < 0 &&
              su_file_size(su_path(dir, kept)) == size &&
              strstr(tern_store_file_error(s), kept) != NULL,
          "it is moved aside as %s, and the open says so: %s", kept,
          tern_store_file_error(s));
    tern_store_file_close(s);
  }
  su_model_free(&m);
  su_rmtree(dir);
  su_rmtree(copy);
  free(dir);
  free(copy);
}

/* A record hidden in a value, with the salt an attacker would guess, is
   never taken for a real one when recovery searches past damage. */
static void test_embedded_record(void) {
  char *dir = su_tmpdir("embed");
  tern_store_file_options o = opts(1 << 20, 0);
  uint8_t fake[64];
  tern_store_file *s;
  su_model m;
  size_t fsize = rec_size(4, 10);

  memset(&m, 0, sizeof(m));
  rec_encode_head(fake, 0, REC_OP_SET, (const uint8_t *)"evil", 4,
                  (const uint8_t *)"0123456789", 10);
  memcpy(fake + REC_HEAD, "evil0123456789", 14);
  s = su_open(dir, &o);
  fill(s, &m, 0, 2);
  {
    tern_store_record r = set_rec("victim", fake, fsize);
    append(s, &m, &r, 1, 1);
  }
  fill(s, &m, 2, 2);
  tern_store_file_close(s);
  /* Break the victim's length field. */
  flip_byte(su_path(dir, "000001.log"), SEG_DATA_START + 2 * rec_size(5, 40),
            0x04);
  s = su_open(dir, &o);
  su_del(&m, (const uint8_t *)"victim", 6);
  CHECK(matches(s, &m) && su_stats(s).skipped == 1,
        "the embedded record is not loaded; the records after it are");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

static void test_missing_and_short_segments(void) {
  char *dir = su_tmpdir("gone");
  char *copy = su_tmpdir("gonecopy");
  tern_store_file_options o = opts(2048, 0);
  tern_store_file *s;
  tern_store_file_stats st;
  su_model m;
  off_t size;

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  fill(s, &m, 0, 100);
  tern_store_file_close(s);
  su_rmtree(copy);
  su_copy_dir(dir, copy);

  /* A sealed segment cut at a record boundary: no scan sees it, the next
     segment's header does. */
  size = su_file_size(su_path(dir, "000002.log"));
  if (truncate(su_path(dir, "000002.log"), size - (off_t)rec_size(5, 40)) !=
      0) {
    su_die("truncate");
  }
  s = su_open(dir, &o);
  st = su_stats(s);
  CHECK(st.skipped == 1 && st.skipped_bytes == rec_size(5, 40),
        "a shortened sealed segment is reported (%llu bytes)",
        (unsigned long long)st.skipped_bytes);
  tern_store_file_close(s);

  unlink(su_path(copy, "000002.log"));
  s = su_open(copy, &o);
  st = su_stats(s);
  CHECK(st.skipped == 1 && st.skipped_bytes == (uint64_t)size,
        "a missing segment file is reported");
  tern_store_file_close(s);
  o.strict = 1;
  s = NULL;
  CHECK_INT(tern_store_file_open(&s, copy, &o, NULL), TERN_ERR_STORE,
            "strict refuses a missing segment");
  su_model_free(&m);
  su_rmtree(dir);
  su_rmtree(copy);
  free(dir);
  free(copy);
}

/* The states an interrupted compaction leaves behind. */
static void test_compaction_leftovers(void) {
  char *dir = su_tmpdir("left");
  char *old = su_tmpdir("leftold");
  tern_store_file_options o = opts(2048, 0);
  tern_store_file *s;
  su_model m;
  uint8_t junk[300];

  memset(&m, 0, sizeof(m));
  memset(junk, 0x5a, sizeof(junk));
  s = su_open(dir, &o);
  fill(s, &m, 0, 100);
  fill(s, &m, 0, 50); /* overwrite half */
  tern_store_file_close(s);
  su_rmtree(old);
  su_copy_dir(dir, old);

  /* Before the rename: a temporary file beside the old segments. */
  su_write_file(su_path(dir, "000099.log.tmp"), junk, sizeof(junk));
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_count_files(dir, ".tmp") == 0,
        "a leftover temporary file is removed; the old state loads");
  CHECK_INT(M->compact(s), 0, "compact");
  tern_store_file_close(s);

  /* After the rename, before the deletes: old segments reappear. */
  su_copy_dir(old, dir);
  s = su_open(dir, &o);
  CHECK(matches(s, &m), "old segments below a compacted one are ignored");
  CHECK_INT(su_count_files(dir, ".log"), 1, "and removed");
  CHECK_INT(su_stats(s).skipped, 0, "nothing is reported as damage");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  su_rmtree(old);
  free(dir);
  free(old);
}

/* ---- the failure rule --------------------------------------------------- */

static void test_failures(void) {
  char *dir = su_tmpdir("fail");
  tern_store_file_options o = opts(1 << 20, 0);
  tern_store_file *s;
  su_model m, confirmed;
  su_loaded l;
  tern_store_record r;
  off_t size;

  memset(&m, 0, sizeof(m));
  memset(&confirmed, 0, sizeof(confirmed));
  memset(&l, 0, sizeof(l));
  su_faults_reset(0);
  s = open_sys(dir, &o);
  fill(s, &m, 0, 5);
  size = su_file_size(su_path(dir, "000001.log"));

  /* A failed write is rolled back; the store stays usable. */
  su_f.eligible = SU_WRITEV;
  su_f.kind = SU_FAIL_ENOSPC;
  su_f.calls = 0;
  su_f.fail_at = 1;
  r = set_rec("lost", "x", 1);
  CHECK_INT(M->append(s, 0, &r, 1, 1), TERN_ERR_STORE,
            "a write failing with ENOSPC: TERN_ERR_STORE");
  CHECK(strstr(tern_store_file_error(s), "writev") != NULL &&
            strstr(tern_store_file_error(s), strerror(ENOSPC)) != NULL,
        "the error names the call and errno: %s", tern_store_file_error(s));
  CHECK_INT(su_file_size(su_path(dir, "000001.log")), size,
            "the segment is cut back to before the batch");
  su_f.fail_at = 0;
  fill(s, &m, 5, 2);
  CHECK(matches(s, &m), "the store stays usable; the failed batch is not "
                        "there");

  /* A short write followed by a failure: same. */
  su_f.kind = SU_FAIL_SHORT;
  su_f.calls = 0;
  su_f.fail_at = 1;
  r = set_rec("short", "written in two", 14);
  CHECK_INT(append(s, &m, &r, 1, 1), 0, "a short write is continued");
  su_f.fail_at = 0;
  CHECK(matches(s, &m), "and the record is whole");

  /* A failed fsync breaks the store until it is reopened. */
  su_copy(&confirmed, &m);
  su_f.eligible = SU_FDATASYNC;
  su_f.kind = SU_FAIL_EIO;
  su_f.calls = 0;
  su_f.fail_at = 1;
  r = set_rec("maybe", "y", 1);
  CHECK_INT(M->append(s, 0, &r, 1, 1), TERN_ERR_STORE,
            "a failing fdatasync: TERN_ERR_STORE");
  CHECK(strstr(tern_store_file_error(s), "fdatasync") != NULL &&
            strstr(tern_store_file_error(s), "reopened") != NULL,
        "the error says fdatasync and that a reopen is needed: %s",
        tern_store_file_error(s));
  su_f.fail_at = 0;
  r = set_rec("refused", "z", 1);
  CHECK_INT(M->append(s, 0, &r, 1, 1), TERN_ERR_STORE,
            "a broken store refuses appends");
  CHECK_INT(M->sync(s), TERN_ERR_STORE, "and sync");
  CHECK_INT(M->compact(s), TERN_ERR_STORE, "and compact");
  CHECK_INT(su_load(s, &l), TERN_ERR_STORE, "and load");
  tern_store_file_close(s);
  CHECK(su_f.fds == 0 && su_f.dirs == 0, "close releases every descriptor");
  s = su_open(dir, &o);
  CHECK(su_load(s, &l) == 0 && su_find(&l.m, (const uint8_t *)"refused", 7) ==
                                   NULL,
        "reopen: the refused batch is not there");
  su_del(&l.m, (const uint8_t *)"maybe", 5); /* may or may not be durable */
  CHECK(su_equal(&l.m, &confirmed, NULL, 0),
        "reopen: every confirmed record is there");
  tern_store_file_close(s);
  su_model_free(&m);
  su_model_free(&confirmed);
  su_model_free(&l.m);
  su_rmtree(dir);
  free(dir);
}

/* ---- values, load, stats ------------------------------------------------ */

static int stop_at_three(void *ctx, const uint8_t *key, size_t keylen,
                         const uint8_t *value, size_t valuelen) {
  int *n = ctx;
  (void)key;
  (void)keylen;
  (void)value;
  (void)valuelen;
  return ++*n == 3 ? 7 : 0;
}

static void test_large_values(void) {
  char *dir = su_tmpdir("large");
  tern_store_file_options o = opts(1 << 20, 0);
  size_t sizes[4] = {4096, 4097, 100000, 3 << 20};
  tern_store_file *s;
  su_model m;
  int n = 0;

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  {
    tern_store_record r[4];
    uint8_t *v[4];
    char keys[4][16];
    for (int i = 0; i < 4; ++i) {
      v[i] = malloc(sizes[i]);
      for (size_t j = 0; j < sizes[i]; ++j) {
        v[i][j] = (uint8_t)(j * 31 + (size_t)i);
      }
      snprintf(keys[i], sizeof(keys[i]), "large%d", i);
      r[i] = set_rec(keys[i], v[i], sizes[i]);
    }
    CHECK_INT(append(s, &m, r, 4, 1), 0, "values of 4 KiB to 3 MiB");
    for (int i = 0; i < 4; ++i) {
      free(v[i]);
    }
  }
  fill(s, &m, 0, 3);
  CHECK(matches(s, &m), "load them");
  CHECK_INT(M->load(s, stop_at_three, &n), 7,
            "a visitor's nonzero result stops load and is returned");
  CHECK_INT(n, 3, "no record is visited after it");
  CHECK_INT(M->compact(s), 0, "compact them");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m), "reopen after compaction");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

static void test_index_memory(void) {
  char *dir = su_tmpdir("mem");
  tern_store_file_options o = opts(64 << 20, 0);
  tern_store_file *s;
  tern_store_file_stats st;
  static tern_store_record recs[1000];
  static char keys[1000][17];
  uint8_t value[64];

  memset(value, 1, sizeof(value));
  o.fsync = TERN_FSYNC_NEVER;
  s = su_open(dir, &o);
  for (int b = 0; b < 100; ++b) {
    for (int i = 0; i < 1000; ++i) {
      snprintf(keys[i], sizeof(keys[i]), "m/%014d", b * 1000 + i);
      recs[i] = set_rec(keys[i], value, sizeof(value));
    }
    M->append(s, 0, recs, 1000, 0);
  }
  st = su_stats(s);
  tap_diag("index: %llu bytes for %llu keys of 16 bytes: %.1f bytes a key",
           (unsigned long long)st.index_bytes, (unsigned long long)st.live,
           (double)st.index_bytes / (double)st.live);
  CHECK(st.live == 100000 && st.index_bytes < 60 * st.live,
        "the index takes under 60 bytes per 16-byte key");
  tern_store_file_close(s);

  /* The hub's keys are mostly 9 bytes: a type byte and a serial. */
  su_rmtree(dir);
  s = su_open(dir, &o);
  for (int b = 0; b < 100; ++b) {
    for (int i = 0; i < 1000; ++i) {
      uint32_t serial = (uint32_t)(b * 1000 + i);
      keys[i][0] = 'M';
      memset(keys[i] + 1, 0, 4);
      memcpy(keys[i] + 5, &serial, 4);
      recs[i] = set_rec("x", value, sizeof(value));
      recs[i].key = (const uint8_t *)keys[i];
      recs[i].keylen = 9;
    }
    M->append(s, 0, recs, 1000, 0);
  }
  st = su_stats(s);
  tap_diag("index: %llu bytes for %llu keys of 9 bytes: %.1f bytes a key",
           (unsigned long long)st.index_bytes, (unsigned long long)st.live,
           (double)st.index_bytes / (double)st.live);
  CHECK(st.live == 100000 && st.index_bytes < 45 * st.live,
        "the index takes under 45 bytes per 9-byte key");
  tern_store_file_close(s);
  su_rmtree(dir);
  free(dir);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--try-open") == 0) {
    return try_open(argv[2]);
  }
  self_path = argv[0];
  M = tern_store_file_methods();
  test_options();
  test_roundtrip();
  test_reopen_random();
  test_segments();
  test_lock();
  test_fsync_policy();
  test_compaction();
  test_torn_tail();
  test_mid_damage();
  test_embedded_record();
  test_missing_and_short_segments();
  test_compaction_leftovers();
  test_failures();
  test_large_values();
  test_index_memory();
  return tap_done();
}
