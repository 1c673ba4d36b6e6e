/*
 * Damage test of the file store: a store with history (overwrites, DELs, a
 * compacted base segment and later segments) is damaged at random, again
 * and again, on a fresh copy each time: bytes flipped, ranges zeroed,
 * files truncated at random offsets, or several of these.  Then:
 *
 *  - a non-strict open succeeds and reports the damage (skipped or
 *    truncated) whenever a byte of a record region changed, except a last
 *    segment cut exactly between two records, which no reader can tell
 *    from one that was never longer;
 *  - every key whose live record is untouched (its bytes unchanged, and
 *    its segment still has one good header copy) loads with its value;
 *    every key whose DEL record is untouched stays deleted; a key whose
 *    record was hit is absent or has one of its earlier values; no other
 *    key appears;
 *  - reopening gives the same state again (the repair is stable);
 *  - a strict open of the same damage refuses with TERN_ERR_STORE exactly
 *    when the non-strict one skipped something, and otherwise loads the
 *    same state.
 *
 * The record layout of the undamaged files comes from the store's own
 * scanner (lib/store/format.h).  TERN_CORRUPT_SEED=<n> replays a run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "base/rand.h"
#include "store/format.h"
#include "store_util.h"
#include "tap.h"

#define NKEYS 150
#define NOPS 1400
#define TRIALS 400
#define MAXFILES 64

/* ---- the undamaged store ------------------------------------------------ */

typedef struct orec {
  int file;
  uint64_t off;
  size_t size;
  int op;
  char key[16];
  size_t keylen;
} orec;

typedef struct layout {
  char names[MAXFILES][32];
  uint8_t *bytes[MAXFILES];
  size_t sizes[MAXFILES];
  int nfiles;
  orec *recs;
  size_t nrecs, cap;
} layout;

typedef struct history {
  su_model last;        /* final state */
  uint8_t *values[NKEYS][64];
  size_t lens[NKEYS][64];
  int nvalues[NKEYS];
} history;

static int key_index(const uint8_t *key, size_t keylen) {
  if (keylen < 2 || key[0] != 'k') {
    return -1;
  }
  return atoi((const char *)key + 1) % NKEYS;
}

typedef struct collect {
  layout *lay;
  int file;
} collect;

static int collect_rec(void *ctx, const rec *recs, size_t n) {
  collect *c = ctx;
  layout *l = c->lay;
  for (size_t i = 0; i < n; ++i) {
    const rec *r = &recs[i];
    orec *o;
    if (l->nrecs == l->cap) {
      l->cap = l->cap ? l->cap * 2 : 256;
      l->recs = realloc(l->recs, l->cap * sizeof(*l->recs));
    }
    o = &l->recs[l->nrecs++];
    o->file = c->file;
    o->off = r->off;
    o->size = r->size;
    o->op = r->op;
    o->keylen = r->keylen < sizeof(o->key) ? r->keylen : sizeof(o->key) - 1;
    memcpy(o->key, r->key, o->keylen);
    o->key[o->keylen] = '\0';
  }
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static void read_layout(const char *dir, layout *l) {
  DIR *d = opendir(dir);
  struct dirent *e;
  scan_buf sb;
  memset(l, 0, sizeof(*l));
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0 &&
        l->nfiles < MAXFILES) {
      snprintf(l->names[l->nfiles++], 32, "%s", e->d_name);
    }
  }
  closedir(d);
  qsort(l->names, (size_t)l->nfiles, sizeof(l->names[0]), by_name);
  memset(&sb, 0, sizeof(sb));
  sb.mem = mem_default();
  for (int f = 0; f < l->nfiles; ++f) {
    seg_header h;
    su_mem_src ms;
    scan_source src;
    scan_result res;
    collect c;
    l->bytes[f] = su_read_file(su_path(dir, l->names[f]), &l->sizes[f]);
    if (!seg_header_decode(l->bytes[f], l->sizes[f], &h)) {
      abort();
    }
    ms.p = l->bytes[f];
    ms.len = l->sizes[f];
    src.read_at = su_mem_read_at;
    src.ctx = &ms;
    src.size = ms.len;
    c.lay = l;
    c.file = f;
    if (scan_segment(&sb, &src, SEG_DATA_START, h.salt, h.version,
                     collect_rec, &c, &res) != 0 ||
        res.damaged != 0 || res.tail != l->sizes[f]) {
      abort();
    }
  }
  scan_buf_free(&sb);
}

static void build(const char *dir, history *h, uint64_t seed) {
  tern_store_file_options o;
  tern_store_file *s;
  const tern_store_methods *m = tern_store_file_methods();
  rng r;
  tern_store_file_options_default(&o);
  o.segment_size = 2048;
  o.compact_garbage = 0;
  o.fsync = TERN_FSYNC_NEVER;
  if (tern_store_file_open(&s, dir, &o, NULL) != 0) {
    abort();
  }
  rng_seed(&r, seed);
  for (int i = 0; i < NOPS; ++i) {
    char key[16];
    int k = (int)rng_below(&r, NKEYS);
    tern_store_record one;
    int kept = 0;
    snprintf(key, sizeof(key), "k%03d", k);
    one.key = (const uint8_t *)key;
    one.keylen = strlen(key);
    if (rng_below(&r, 5) == 0) {
      one.op = TERN_STORE_DEL;
      one.value = NULL;
      one.valuelen = 0;
    } else {
      size_t len = (size_t)rng_below(&r, 120);
      uint8_t *v = malloc(len + 1);
      for (size_t j = 0; j < len; ++j) {
        v[j] = (uint8_t)rng_next(&r);
      }
      one.op = TERN_STORE_SET;
      one.value = v;
      one.valuelen = len;
      if (h->nvalues[k] < 64) {
        h->values[k][h->nvalues[k]] = v;
        h->lens[k][h->nvalues[k]++] = len;
        kept = 1;
      }
    }
    if (m->append(s, 0, &one, 1, 0) != 0) {
      abort();
    }
    su_apply(&h->last, &one);
    if (one.op == TERN_STORE_SET && !kept) {
      free((void *)(uintptr_t)one.value);
    }
    if (i == NOPS / 2 && m->compact(s) != 0) {
      abort();
    }
  }
  tern_store_file_close(s);
}

static int in_history(const history *h, const su_entry *e) {
  int k = key_index(e->key, e->keylen);
  if (k < 0) {
    return 0;
  }
  for (int i = 0; i < h->nvalues[k]; ++i) {
    if (h->lens[k][i] == e->valuelen &&
        memcmp(h->values[k][i], e->value, e->valuelen) == 0) {
      return 1;
    }
  }
  return 0;
}

/* ---- damage ------------------------------------------------------------- */

typedef struct damaged {
  uint8_t *bytes[MAXFILES];
  size_t sizes[MAXFILES];
  const char *what;
} damaged;

static void damage(const layout *l, damaged *d, rng *r) {
  int mode = (int)rng_below(r, 4);
  for (int f = 0; f < l->nfiles; ++f) {
    d->sizes[f] = l->sizes[f];
    d->bytes[f] = malloc(l->sizes[f] + 1);
    memcpy(d->bytes[f], l->bytes[f], l->sizes[f]);
  }
  if (mode == 0 || mode == 3) {
    int n = 1 + (int)rng_below(r, 4);
    for (int i = 0; i < n; ++i) {
      int f = (int)rng_below(r, (uint64_t)l->nfiles);
      size_t off = (size_t)rng_below(r, d->sizes[f]);
      d->bytes[f][off] ^= (uint8_t)(1 + rng_below(r, 255));
    }
    d->what = mode == 0 ? "flipped bytes" : "flips and a cut";
  }
  if (mode == 1 || mode == 3) {
    int f = (int)rng_below(r, (uint64_t)l->nfiles);
    d->sizes[f] = (size_t)rng_below(r, d->sizes[f]);
    if (mode == 1) {
      d->what = "a cut";
    }
  }
  if (mode == 2) {
    int f = (int)rng_below(r, (uint64_t)l->nfiles);
    size_t off = (size_t)rng_below(r, d->sizes[f]);
    size_t len = 1 + (size_t)rng_below(r, 300);
    if (len > d->sizes[f] - off) {
      len = d->sizes[f] - off;
    }
    memset(d->bytes[f] + off, 0, len);
    d->what = "a zeroed range";
  }
}

/* changed says whether any byte of file |f| in [lo, hi) differs from the
   original (bytes cut off count as changed). */
static int changed(const layout *l, const damaged *d, int f, uint64_t lo,
                   uint64_t hi) {
  if (hi > d->sizes[f]) {
    return 1;
  }
  for (uint64_t i = lo; i < hi; ++i) {
    if (d->bytes[f][i] != l->bytes[f][i]) {
      return 1;
    }
  }
  return 0;
}

static int usable(const layout *l, const damaged *d, int f) {
  return d->sizes[f] >= SEG_DATA_START &&
         (!changed(l, d, f, 0, SEG_HEADER_SIZE) ||
          !changed(l, d, f, SEG_HEADER_SIZE, SEG_DATA_START));
}

/* detectable: a record region changed, other than a clean cut of the last
   file between records (or of a file whose successor lost its headers). */
static int detectable(const layout *l, const damaged *d) {
  for (int f = 0; f < l->nfiles; ++f) {
    int cut = d->sizes[f] < l->sizes[f];
    int boundary = 0;
    if (!usable(l, d, f)) {
      return 1;
    }
    if (changed(l, d, f, SEG_DATA_START, d->sizes[f])) {
      return 1;
    }
    if (!cut) {
      continue;
    }
    for (size_t i = 0; i < l->nrecs; ++i) {
      if (l->recs[i].file == f && l->recs[i].off == d->sizes[f]) {
        boundary = 1;
      }
    }
    if (!boundary) {
      return 1; /* a record is cut in two */
    }
    if (f + 1 < l->nfiles && usable(l, d, f + 1)) {
      return 1; /* the successor's header knows the length */
    }
  }
  return 0;
}

static void write_damaged(const char *dir, const layout *l,
                          const damaged *d) {
  su_rmtree(dir);
  if (mkdir(dir, 0777) != 0) {
    su_die("mkdir");
  }
  for (int f = 0; f < l->nfiles; ++f) {
    su_write_file(su_path(dir, l->names[f]), d->bytes[f], d->sizes[f]);
  }
}

/* ---- one trial ---------------------------------------------------------- */

typedef struct tally {
  int opened, reported, lost_untouched, resurrected, strange, unstable;
  int strict_ok, reported_any, hidden_ok;
  char first[300];
} tally;

static void fail_note(tally *t, int trial, const char *what,
                      const char *key) {
  if (t->first[0] == '\0') {
    snprintf(t->first, sizeof(t->first), "trial %d: %s %s", trial, what,
             key);
  }
}

static void trial(int n, const char *dir, const char *sdir, const layout *l,
                  const history *h, rng *r, tally *t) {
  damaged d;
  tern_store_file_options o, so;
  tern_store_file *s;
  tern_store_file_stats st;
  su_loaded got, again;
  int rv, det;

  damage(l, &d, r);
  det = detectable(l, &d);
  write_damaged(dir, l, &d);
  write_damaged(sdir, l, &d);
  tern_store_file_options_default(&o);
  o.segment_size = 2048;
  o.compact_garbage = 0;
  so = o;
  so.strict = 1;

  memset(&got, 0, sizeof(got));
  memset(&again, 0, sizeof(again));
  rv = tern_store_file_open(&s, dir, &o, NULL);
  if (rv != 0) {
    fail_note(t, n, "open failed:", tern_store_file_error(NULL));
    goto out;
  }
  ++t->opened;
  tern_store_file_get_stats(s, &st, sizeof(st));
  if (!det || st.skipped + st.truncated > 0) {
    ++t->reported;
  } else {
    fail_note(t, n, d.what, "went unreported");
  }
  t->reported_any += st.skipped + st.truncated > 0;
  if (su_load(s, &got) != 0) {
    fail_note(t, n, "load failed:", tern_store_file_error(s));
  }
  tern_store_file_close(s);

  /* Every key against the undamaged history. */
  for (size_t i = 0; i < h->last.n; ++i) {
    const su_entry *want = &h->last.e[i];
    su_entry *e = su_find(&got.m, want->key, want->keylen);
    const orec *latest = NULL;
    int touched;
    for (size_t j = 0; j < l->nrecs; ++j) {
      if (l->recs[j].keylen == want->keylen &&
          memcmp(l->recs[j].key, want->key, want->keylen) == 0) {
        latest = &l->recs[j];
      }
    }
    if (latest == NULL) { /* deleted before the compaction: in no file */
      if (e != NULL && e->live) {
        ++t->resurrected;
        fail_note(t, n, "resurrected", (const char *)want->key);
      }
      continue;
    }
    touched = !usable(l, &d, latest->file) ||
              changed(l, &d, latest->file, latest->off,
                      latest->off + latest->size);
    if (want->live && !touched &&
        (e == NULL || !e->live || e->valuelen != want->valuelen ||
         memcmp(e->value, want->value, want->valuelen) != 0)) {
      ++t->lost_untouched;
      fail_note(t, n, "lost the untouched key", (const char *)want->key);
    }
    if (!want->live && !touched && e != NULL && e->live) {
      ++t->resurrected;
      fail_note(t, n, "resurrected", (const char *)want->key);
    }
  }
  for (size_t i = 0; i < got.m.n; ++i) {
    if (got.m.e[i].live && !in_history(h, &got.m.e[i])) {
      ++t->strange;
      fail_note(t, n, "a value never written for",
                (const char *)got.m.e[i].key);
    }
  }

  /* The repair is stable. */
  if (tern_store_file_open(&s, dir, &o, NULL) == 0) {
    if (su_load(s, &again) != 0 || !su_equal(&again.m, &got.m, NULL, 0)) {
      ++t->unstable;
      fail_note(t, n, "the second reopen differs", "");
    }
    tern_store_file_close(s);
  } else {
    ++t->unstable;
    fail_note(t, n, "the second reopen failed", tern_store_file_error(NULL));
  }

  /* Strict mode on the same damage. */
  rv = tern_store_file_open(&s, sdir, &so, NULL);
  if (st.skipped > 0) {
    if (rv == TERN_ERR_STORE && strstr(tern_store_file_error(NULL), "strict")) {
      ++t->strict_ok;
    } else {
      fail_note(t, n, "strict did not refuse", d.what);
    }
    if (rv == 0) {
      tern_store_file_close(s);
    }
  } else if (rv == 0) {
    su_loaded sl;
    memset(&sl, 0, sizeof(sl));
    if (su_load(s, &sl) == 0 && su_equal(&sl.m, &got.m, NULL, 0)) {
      ++t->strict_ok;
    } else {
      fail_note(t, n, "strict loaded something else", "");
    }
    su_model_free(&sl.m);
    tern_store_file_close(s);
  } else {
    fail_note(t, n, "strict refused without skipped records:",
              tern_store_file_error(NULL));
  }
  t->hidden_ok += !det;
out:
  su_model_free(&got.m);
  su_model_free(&again.m);
  for (int f = 0; f < l->nfiles; ++f) {
    free(d.bytes[f]);
  }
}

int main(void) {
  char *base = su_tmpdir("corrupt");
  char pristine[4096], dir[4096], sdir[4096];
  const char *env = getenv("TERN_CORRUPT_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  static history h;
  layout l;
  tally t;
  rng r;

  tap_diag("seed %llu (TERN_CORRUPT_SEED replays it)",
           (unsigned long long)seed);
  snprintf(pristine, sizeof(pristine), "%s/pristine", base);
  snprintf(dir, sizeof(dir), "%s/damaged", base);
  snprintf(sdir, sizeof(sdir), "%s/strict", base);
  build(pristine, &h, seed);
  read_layout(pristine, &l);
  tap_diag("%d segment files, %zu records, %zu live keys", l.nfiles, l.nrecs,
           su_live(&h.last));
  CHECK(l.nfiles >= 5, "the store spans several segments");

  memset(&t, 0, sizeof(t));
  rng_seed(&r, seed ^ 0x5eed);
  for (int i = 0; i < TRIALS; ++i) {
    trial(i, dir, sdir, &l, &h, &r, &t);
  }
  tap_diag("%d trials: damage reported in %d, undetectable by design in %d",
           TRIALS, t.reported_any, t.hidden_ok);
  if (t.first[0] != '\0') {
    tap_diag("first failure: %s", t.first);
  }
  CHECK_INT(t.opened, TRIALS, "a non-strict open always succeeds");
  CHECK_INT(t.reported, TRIALS, "damage to records is always reported");
  CHECK_INT(t.lost_untouched, 0, "every untouched live record is served");
  CHECK_INT(t.resurrected, 0, "every untouched DEL stays honored");
  CHECK_INT(t.strange, 0, "no value appears that was never written");
  CHECK_INT(t.unstable, 0, "a second reopen gives the same state");
  CHECK_INT(t.strict_ok, TRIALS,
            "strict refuses exactly when something was skipped");

  su_model_free(&h.last);
  for (int k = 0; k < NKEYS; ++k) {
    for (int i = 0; i < h.nvalues[k]; ++i) {
      free(h.values[k][i]);
    }
  }
  for (int f = 0; f < l.nfiles; ++f) {
    free(l.bytes[f]);
  }
  free(l.recs);
  su_rmtree(base);
  free(base);
  return tap_done();
}
