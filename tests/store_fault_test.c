/*
 * Fault sweeps over the file store: one scenario (open a store that has
 * several segments, a compacted base and a torn tail; append 30 batches
 * that roll segments and trigger compaction, some with sync; compact; sync;
 * load; close) run again and again, failing the Nth system call (EIO, or
 * ENOSPC and short writes for writes; once, or every call from the Nth on)
 * or the Nth allocation, for every N until the scenario runs clean.
 *
 * After each run:
 *  - every error the store returned is the expected code, with a text;
 *  - every descriptor and directory stream it opened is closed, and with
 *    the counting allocator every block is freed;
 *  - a load that succeeded in the faulty run gave exactly the records of
 *    the batches that returned 0;
 *  - a clean reopen loads, for every key, the state the batches that
 *    returned 0 give it, or a state a failed batch after them wrote (a
 *    failed batch may be on disk when the store broke after writing it).
 *    In particular every record of a batch that returned 0 with sync = 1
 *    is there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_util.h"
#include "tap.h"
#include "testutil.h"

#define NPREP 40
#define NBATCH 30
#define NREC 6
#define BIG 6000

typedef struct batch {
  tern_store_record recs[NREC];
  size_t n;
  int sync;
  char keys[NREC][24];
  uint8_t *values[NREC];
} batch;

static batch prep[NPREP], runb[NBATCH];
static su_model prep_model;
static const tern_store_methods *M;

static void fill_value(batch *b, int i, size_t len, unsigned tag) {
  b->values[i] = malloc(len ? len : 1);
  for (size_t j = 0; j < len; ++j) {
    b->values[i][j] = (uint8_t)(tag * 131 + j * 7);
  }
}

static void set(batch *b, const char *key, size_t len, unsigned tag) {
  int i = (int)b->n++;
  snprintf(b->keys[i], sizeof(b->keys[i]), "%s", key);
  fill_value(b, i, len, tag);
  b->recs[i].op = TERN_STORE_SET;
  b->recs[i].key = (const uint8_t *)b->keys[i];
  b->recs[i].keylen = strlen(b->keys[i]);
  b->recs[i].value = b->values[i];
  b->recs[i].valuelen = len;
}

static void del(batch *b, const char *key) {
  int i = (int)b->n++;
  snprintf(b->keys[i], sizeof(b->keys[i]), "%s", key);
  b->values[i] = NULL;
  b->recs[i].op = TERN_STORE_DEL;
  b->recs[i].key = (const uint8_t *)b->keys[i];
  b->recs[i].keylen = strlen(b->keys[i]);
  b->recs[i].value = NULL;
  b->recs[i].valuelen = 0;
}

static void make_batches(void) {
  char key[24];
  for (int b = 0; b < NPREP; ++b) {
    for (int i = 0; i < 3; ++i) {
      snprintf(key, sizeof(key), "prep-%d", (b * 3 + i) % 60);
      set(&prep[b], key, 30 + (size_t)(b % 7) * 10, (unsigned)(b * 10 + i));
    }
    prep[b].sync = 1;
  }
  for (int b = 0; b < NBATCH; ++b) {
    batch *x = &runb[b];
    snprintf(key, sizeof(key), "new-%d", b);
    set(x, key, 20, (unsigned)(1000 + b));
    snprintf(key, sizeof(key), "hot-%d", b % 5);
    set(x, key, 50, (unsigned)(2000 + b));
    if (b >= 3) {
      snprintf(key, sizeof(key), "new-%d", b - 3);
      del(x, key);
    } else {
      set(x, "early", 10, (unsigned)(3000 + b));
    }
    snprintf(key, sizeof(key), "prep-%d", (b * 3) % 60);
    set(x, key, 40, (unsigned)(4000 + b));
    snprintf(key, sizeof(key), "prep-%d", (b * 7 + 1) % 60);
    del(x, key);
    snprintf(key, sizeof(key), "big-%d", b % 3);
    set(x, key, b % 5 == 0 ? BIG : 100, (unsigned)(5000 + b));
    x->sync = b % 2;
  }
}

static tern_store_file_options scenario_options(void) {
  tern_store_file_options o;
  tern_store_file_options_default(&o);
  o.segment_size = 2048;
  o.compact_garbage = 50;
  return o;
}

/* make_prep builds the starting directory with the real system calls. */
static void make_prep(const char *dir) {
  tern_store_file_options o = scenario_options();
  tern_store_file *s;
  FILE *f;
  char last[64];
  if (tern_store_file_open(&s, dir, &o, NULL) != 0) {
    abort();
  }
  for (int b = 0; b < NPREP; ++b) {
    if (M->append(s, 0, prep[b].recs, prep[b].n, 1) != 0) {
      abort();
    }
    for (size_t i = 0; i < prep[b].n; ++i) {
      su_apply(&prep_model, &prep[b].recs[i]);
    }
    if (b == 25 && M->compact(s) != 0) {
      abort();
    }
  }
  tern_store_file_close(s);
  /* A torn tail for the faulty open to truncate, in the last segment (the
     highest-numbered .log file). */
  {
    DIR *d = opendir(dir);
    struct dirent *e;
    last[0] = '\0';
    while ((e = readdir(d)) != NULL) {
      size_t l = strlen(e->d_name);
      if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0 &&
          strcmp(e->d_name, last) > 0) {
        snprintf(last, sizeof(last), "%s", e->d_name);
      }
    }
    closedir(d);
  }
  f = fopen(su_path(dir, last), "ab");
  fwrite("\x30\0\0\0torn", 1, 8, f);
  fclose(f);
}

/* ---- the oracle --------------------------------------------------------- */

/* expected is the prep state plus the batches that returned 0. */
static void expected(su_model *e, const int *status, int upto) {
  su_copy(e, &prep_model);
  for (int b = 0; b < upto; ++b) {
    if (status[b] == 0) {
      for (size_t i = 0; i < runb[b].n; ++i) {
        su_apply(e, &runb[b].recs[i]);
      }
    }
  }
}

/* state_ok: |got| (NULL: absent) is the key's state in |e|, or a state a
   failed batch after the key's last successful one wrote. */
static int state_ok(const su_model *e, const int *status, const uint8_t *key,
                    size_t keylen, const su_entry *got) {
  su_entry *want = su_find((su_model *)e, key, keylen);
  int last_ok = -1;
  int got_live = got != NULL && got->live;
  if ((want == NULL || !want->live) ? !got_live
                                    : got_live &&
                                          got->valuelen == want->valuelen &&
                                          memcmp(got->value, want->value,
                                                 want->valuelen) == 0) {
    return 1;
  }
  for (int b = 0; b < NBATCH; ++b) {
    for (size_t i = 0; i < runb[b].n; ++i) {
      const tern_store_record *r = &runb[b].recs[i];
      if (status[b] == 0 && r->keylen == keylen &&
          memcmp(r->key, key, keylen) == 0) {
        last_ok = b;
      }
    }
  }
  for (int b = last_ok + 1; b < NBATCH; ++b) {
    for (size_t i = 0; status[b] != 0 && i < runb[b].n; ++i) {
      const tern_store_record *r = &runb[b].recs[i];
      if (r->keylen != keylen || memcmp(r->key, key, keylen) != 0) {
        continue;
      }
      if (r->op == TERN_STORE_DEL ? !got_live
                                  : got_live && got->valuelen == r->valuelen &&
                                        memcmp(got->value, r->value,
                                               r->valuelen) == 0) {
        return 1;
      }
    }
  }
  return 0;
}

static int recovered_ok(const su_model *got, const int *status, char *why,
                        size_t whylen) {
  su_model e;
  int ok = 1;
  memset(&e, 0, sizeof(e));
  expected(&e, status, NBATCH);
  for (int pass = 0; pass < 2 && ok; ++pass) {
    const su_model *keys = pass ? got : &e;
    for (size_t i = 0; i < keys->n && ok; ++i) {
      const su_entry *k = &keys->e[i];
      if (!state_ok(&e, status, k->key, k->keylen,
                    su_find((su_model *)got, k->key, k->keylen))) {
        snprintf(why, whylen, "key %.*s", (int)k->keylen,
                 (const char *)k->key);
        ok = 0;
      }
    }
  }
  su_model_free(&e);
  return ok;
}

/* ---- one run ------------------------------------------------------------ */

typedef struct outcome {
  int errors;       /* calls that failed                                  */
  int bad_codes;    /* failures with an unexpected code or no text        */
  int bad_load;     /* a successful load that differed from the batches   */
  int opened;
  char first_bad[200];
} outcome;

static void note(outcome *out, tern_store_file *s, int rv, int want,
                 const char *what) {
  const char *text;
  if (rv == 0) {
    return;
  }
  ++out->errors;
  text = tern_store_file_error(s);
  if (rv != want || text == NULL || text[0] == '\0') {
    if (out->bad_codes++ == 0) {
      snprintf(out->first_bad, sizeof(out->first_bad), "%s: %s (%s)", what,
               tern_strerror(rv), text ? text : "no text");
    }
  }
}

static void run(const char *dir, const store_sys *sys, const tern_mem *mem,
                int want, int *status, outcome *out) {
  tern_store_file_options o = scenario_options();
  tern_store_file *s = NULL;
  su_loaded l;
  int rv;

  memset(out, 0, sizeof(*out));
  for (int b = 0; b < NBATCH; ++b) {
    status[b] = TERN_ERR_STORE; /* not attempted counts as failed */
  }
  rv = store_file_open_sys(&s, dir, &o, mem, sys);
  note(out, NULL, rv, want, "open");
  if (rv != 0) {
    return;
  }
  out->opened = 1;
  for (int b = 0; b < NBATCH; ++b) {
    status[b] = M->append(s, (uint64_t)b, runb[b].recs, runb[b].n,
                          runb[b].sync);
    note(out, s, status[b], want, "append");
    if (b == 9) {
      note(out, s, M->compact(s), want, "compact");
    }
    if (b == 19) {
      note(out, s, M->sync(s), want, "sync");
    }
  }
  memset(&l, 0, sizeof(l));
  rv = su_load(s, &l);
  note(out, s, rv, want, "load");
  if (rv == 0) {
    su_model e;
    memset(&e, 0, sizeof(e));
    expected(&e, status, NBATCH);
    if (!su_equal(&l.m, &e, NULL, 0) || l.duplicates != 0) {
      ++out->bad_load;
    }
    su_model_free(&e);
  }
  su_model_free(&l.m);
  tern_store_file_close(s);
}

/* ---- sweeps ------------------------------------------------------------- */

typedef struct sweep {
  const char *name;
  unsigned eligible;
  int kind;
  int every;
} sweep;

static void sys_sweep(const char *prepdir, const char *work, const sweep *w) {
  long runs = 0, leaks = 0, lost = 0, bad_codes = 0, bad_loads = 0;
  long errors = 0, reopen_fail = 0;
  char first[300] = "";
  int status[NBATCH];

  for (long n = 1;; ++n) {
    outcome out;
    tern_store_file *s;
    su_loaded l;
    char why[200];

    su_rmtree(work);
    su_copy_dir(prepdir, work);
    su_faults_reset(0);
    su_f.eligible = w->eligible;
    su_f.kind = w->kind;
    su_f.every = w->every;
    su_f.fail_at = n;
    run(work, &su_sys, NULL, TERN_ERR_STORE, status, &out);
    if (su_f.failed == 0) {
      break; /* the scenario made fewer than n such calls */
    }
    ++runs;
    errors += out.errors;
    if (su_f.fds != 0 || su_f.dirs != 0) {
      if (leaks++ == 0 && first[0] == '\0') {
        snprintf(first, sizeof(first), "N=%ld leaks %ld fds, %ld dirs", n,
                 su_f.fds, su_f.dirs);
      }
    }
    if (out.bad_codes > 0) {
      if (bad_codes++ == 0 && first[0] == '\0') {
        snprintf(first, sizeof(first), "N=%ld %s", n, out.first_bad);
      }
    }
    bad_loads += out.bad_load;
    if (tern_store_file_open(&s, work, NULL, NULL) != 0) {
      if (reopen_fail++ == 0 && first[0] == '\0') {
        snprintf(first, sizeof(first), "N=%ld reopen: %s", n,
                 tern_store_file_error(NULL));
      }
      continue;
    }
    memset(&l, 0, sizeof(l));
    if (su_load(s, &l) != 0 || !recovered_ok(&l.m, status, why, sizeof(why))) {
      if (lost++ == 0 && first[0] == '\0') {
        snprintf(first, sizeof(first), "N=%ld after reopen: %s", n, why);
      }
    }
    su_model_free(&l.m);
    tern_store_file_close(s);
  }
  tap_diag("%s: %ld runs, %ld errors returned", w->name, runs, errors);
  if (first[0] != '\0') {
    tap_diag("first problem: %s", first);
  }
  CHECK(runs > 0, "%s: the scenario makes such calls", w->name);
  if (w->kind == SU_FAIL_SHORT) {
    CHECK_INT(errors, 0, "short writes are continued: no call fails");
  } else {
    CHECK(errors >= runs / 2, "%s: the failures reach the caller", w->name);
  }
  CHECK_INT(bad_codes, 0, "every error is TERN_ERR_STORE with a text");
  CHECK_INT(leaks, 0, "no descriptor is left open");
  CHECK_INT(bad_loads, 0, "a load that succeeds gives the batches that "
                          "returned 0");
  CHECK_INT(reopen_fail, 0, "the directory always reopens");
  CHECK_INT(lost, 0, "reopen loses nothing that was confirmed");
}

static void mem_sweep(const char *prepdir, const char *work) {
  long runs = 0, errors = 0, leaks = 0, bad = 0, lost = 0, bad_loads = 0;
  char first[300] = "";
  int status[NBATCH];

  for (long n = 1;; ++n) {
    tu_alloc a;
    tern_mem mem;
    outcome out;
    tern_store_file *s;
    su_loaded l;
    char why[200];

    memset(&a, 0, sizeof(a));
    a.fail_at = n;
    mem = tu_alloc_mem(&a);
    su_rmtree(work);
    su_copy_dir(prepdir, work);
    su_faults_reset(0);
    run(work, &su_sys, &mem, TERN_ERR_NOMEM, status, &out);
    if (a.failed == 0) {
      tu_alloc_finish(&a);
      break;
    }
    ++runs;
    errors += out.errors;
    if (a.outstanding != 0 || tu_alloc_finish(&a) != 0 || a.bad_frees != 0 ||
        su_f.fds != 0) {
      if (leaks++ == 0 && first[0] == '\0') {
        snprintf(first, sizeof(first), "N=%ld: %ld blocks, %ld fds left", n,
                 a.outstanding, su_f.fds);
      }
    }
    if (out.bad_codes > 0 && bad++ == 0 && first[0] == '\0') {
      snprintf(first, sizeof(first), "N=%ld %s", n, out.first_bad);
    }
    bad_loads += out.bad_load;
    if (tern_store_file_open(&s, work, NULL, NULL) != 0) {
      ++lost;
      continue;
    }
    memset(&l, 0, sizeof(l));
    if (su_load(s, &l) != 0 || !recovered_ok(&l.m, status, why, sizeof(why))) {
      if (lost++ == 0 && first[0] == '\0') {
        snprintf(first, sizeof(first), "N=%ld after reopen: %s", n, why);
      }
    }
    su_model_free(&l.m);
    tern_store_file_close(s);
  }
  tap_diag("allocation failures: %ld runs, %ld errors returned", runs, errors);
  if (first[0] != '\0') {
    tap_diag("first problem: %s", first);
  }
  CHECK(runs > 5 && errors >= runs / 2,
        "failed allocations reach the caller");
  CHECK_INT(bad, 0, "every error is TERN_ERR_NOMEM");
  CHECK_INT(leaks, 0, "every block and descriptor is released");
  CHECK_INT(bad_loads, 0, "a load that succeeds gives the batches that "
                          "returned 0");
  CHECK_INT(lost, 0, "reopen loses nothing that was confirmed");
}

int main(void) {
  char *base = su_tmpdir("fault");
  char prepdir[4096], work[4096];
  static const sweep sweeps[] = {
      {"EIO at the Nth system call", SU_ALL, SU_FAIL_EIO, 0},
      {"EIO at every system call from the Nth", SU_ALL, SU_FAIL_EIO, 1},
      {"ENOSPC at the Nth write", SU_WRITE | SU_WRITEV, SU_FAIL_ENOSPC, 0},
      {"a short Nth write", SU_WRITE | SU_WRITEV, SU_FAIL_SHORT, 0},
  };

  M = tern_store_file_methods();
  make_batches();
  snprintf(prepdir, sizeof(prepdir), "%s/prep", base);
  snprintf(work, sizeof(work), "%s/work", base);
  make_prep(prepdir);
  for (size_t i = 0; i < sizeof(sweeps) / sizeof(sweeps[0]); ++i) {
    sys_sweep(prepdir, work, &sweeps[i]);
  }
  mem_sweep(prepdir, work);
  su_model_free(&prep_model);
  for (int b = 0; b < NPREP; ++b) {
    for (size_t i = 0; i < prep[b].n; ++i) {
      free(prep[b].values[i]);
    }
  }
  for (int b = 0; b < NBATCH; ++b) {
    for (size_t i = 0; i < runb[b].n; ++i) {
      free(runb[b].values[i]);
    }
  }
  su_rmtree(base);
  free(base);
  return tap_done();
}
