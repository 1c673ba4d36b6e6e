/*
 * Helpers shared by the file store tests (store, store_crash,
 * store_corrupt, store_hard, the recover fuzz target) and bench/store:
 *
 *  - scratch directories under $TMPDIR (default /tmp), removed afterwards,
 *    and file helpers (copy a directory, read or patch a file);
 *  - a model of the key-value state (what a store must load), applied
 *    record by record, and a loader that compares a store with it;
 *  - a system-call table (lib/store/sys.h) that counts calls and open
 *    descriptors and, at the Nth eligible call, fails it (EIO, ENOSPC), makes
 *    it write short, or kills the process; fsync can be made a no-op so that
 *    sweeps run fast (they never simulate a power loss: store_power_test
 *    has its own table for that);
 *  - a segment image whose one damaged record holds a hostile payload.
 *
 * Header-only; every function is static inline.
 */
#ifndef TERN_TESTS_STORE_UTIL_H
#define TERN_TESTS_STORE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/format.h"
#include "store/sys.h"
#include "tern.h"

/* ---- scratch directories ------------------------------------------------ */

static inline void su_die(const char *what) {
  fprintf(stderr, "store test: %s: %s\n", what, strerror(errno));
  abort();
}

/* su_tmpdir makes a fresh directory and returns its malloc'd path. */
static inline char *su_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  char *path = malloc(4096);
  if (path == NULL) {
    su_die("malloc");
  }
  snprintf(path, 4096, "%s/tern-%s-XXXXXX", base && *base ? base : "/tmp",
           tag);
  if (mkdtemp(path) == NULL) {
    su_die("mkdtemp");
  }
  return path;
}

/* su_rmtree removes |path| and what it holds (one level of directories
   below it is enough for the tests). */
static inline void su_rmtree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char child[4096];
  if (d == NULL) {
    unlink(path);
    return;
  }
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
      continue;
    }
    if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >=
        (int)sizeof(child)) {
      continue;
    }
    if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
      su_rmtree(child);
    } else {
      unlink(child);
    }
  }
  closedir(d);
  rmdir(path);
}

/* su_path joins a directory and a name into a static buffer. */
static inline const char *su_path(const char *dir, const char *name) {
  static char buf[4][4096];
  static int next;
  char *p = buf[next++ & 3];
  if (snprintf(p, 4096, "%s/%s", dir, name) >= 4096) {
    abort();
  }
  return p;
}

/* su_read_file returns a malloc'd copy of a file and its size in |*len|. */
static inline uint8_t *su_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *p;
  long n;
  if (f == NULL) {
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc((size_t)n + 1);
  if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
    su_die("read");
  }
  fclose(f);
  *len = (size_t)n;
  return p;
}

static inline void su_write_file(const char *path, const uint8_t *p,
                                 size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
    su_die(path);
  }
}

static inline off_t su_file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* su_copy_dir copies the regular files of |from| into |to| (created). */
static inline void su_copy_dir(const char *from, const char *to) {
  DIR *d = opendir(from);
  struct dirent *e;
  if (d == NULL || (mkdir(to, 0777) != 0 && errno != EEXIST)) {
    su_die("copy_dir");
  }
  while ((e = readdir(d)) != NULL) {
    char src[4096], dst[4096];
    uint8_t *p;
    size_t len;
    if (e->d_name[0] == '.') {
      continue;
    }
    if (snprintf(src, sizeof(src), "%s/%s", from, e->d_name) >=
            (int)sizeof(src) ||
        snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name) >=
            (int)sizeof(dst)) {
      continue;
    }
    p = su_read_file(src, &len);
    if (p != NULL) {
      su_write_file(dst, p, len);
      free(p);
    }
  }
  closedir(d);
}

/* su_count_files counts the names in |dir| ending in |suffix|. */
static inline int su_count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  size_t sl = strlen(suffix);
  if (d == NULL) {
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0) {
      ++n;
    }
  }
  closedir(d);
  return n;
}

/* ---- the model ---------------------------------------------------------- */

typedef struct su_entry {
  uint8_t key[TERN_STORE_MAX_KEY];
  size_t keylen;
  uint8_t *value;
  size_t valuelen;
  int live;
  int seen; /* set by su_compare */
} su_entry;

typedef struct su_model {
  su_entry *e;
  size_t n, cap;
  size_t *idx; /* open addressing over e: index + 1, 0 empty */
  size_t idxcap;
} su_model;

static inline size_t su_hash(const uint8_t *key, size_t keylen) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < keylen; ++i) {
    h = (h ^ key[i]) * UINT64_C(0x100000001b3);
  }
  return (size_t)(h ^ (h >> 29));
}

static inline void su_index(su_model *m, size_t i) {
  size_t j = su_hash(m->e[i].key, m->e[i].keylen) & (m->idxcap - 1);
  while (m->idx[j] != 0) {
    j = (j + 1) & (m->idxcap - 1);
  }
  m->idx[j] = i + 1;
}

static inline su_entry *su_find(su_model *m, const uint8_t *key,
                                size_t keylen) {
  size_t j;
  if (m->idxcap == 0) {
    return NULL;
  }
  j = su_hash(key, keylen) & (m->idxcap - 1);
  while (m->idx[j] != 0) {
    su_entry *e = &m->e[m->idx[j] - 1];
    if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
      return e;
    }
    j = (j + 1) & (m->idxcap - 1);
  }
  return NULL;
}

static inline su_entry *su_slot(su_model *m, const uint8_t *key,
                                size_t keylen) {
  su_entry *e = su_find(m, key, keylen);
  if (e != NULL) {
    return e;
  }
  if (m->n == m->cap) {
    m->cap = m->cap ? m->cap * 2 : 64;
    m->e = realloc(m->e, m->cap * sizeof(*m->e));
    free(m->idx);
    m->idxcap = m->cap * 2;
    m->idx = calloc(m->idxcap, sizeof(*m->idx));
    if (m->e == NULL || m->idx == NULL) {
      su_die("realloc");
    }
    for (size_t i = 0; i < m->n; ++i) {
      su_index(m, i);
    }
  }
  e = &m->e[m->n++];
  memset(e, 0, sizeof(*e));
  memcpy(e->key, key, keylen);
  e->keylen = keylen;
  su_index(m, m->n - 1);
  return e;
}

static inline void su_set(su_model *m, const uint8_t *key, size_t keylen,
                          const uint8_t *value, size_t valuelen) {
  su_entry *e = su_slot(m, key, keylen);
  free(e->value);
  e->value = malloc(valuelen ? valuelen : 1);
  if (e->value == NULL) {
    su_die("malloc");
  }
  if (valuelen) {
    memcpy(e->value, value, valuelen);
  }
  e->valuelen = valuelen;
  e->live = 1;
}

static inline void su_del(su_model *m, const uint8_t *key, size_t keylen) {
  su_entry *e = su_find(m, key, keylen);
  if (e != NULL) {
    e->live = 0;
  }
}

static inline void su_apply(su_model *m, const tern_store_record *r) {
  if (r->op == TERN_STORE_SET) {
    su_set(m, r->key, r->keylen, r->value, r->valuelen);
  } else {
    su_del(m, r->key, r->keylen);
  }
}

static inline size_t su_live(const su_model *m) {
  size_t n = 0;
  for (size_t i = 0; i < m->n; ++i) {
    n += (size_t)m->e[i].live;
  }
  return n;
}

static inline void su_copy(su_model *to, const su_model *from) {
  for (size_t i = 0; i < to->n; ++i) {
    to->e[i].live = 0;
  }
  for (size_t i = 0; i < from->n; ++i) {
    if (from->e[i].live) {
      su_set(to, from->e[i].key, from->e[i].keylen, from->e[i].value,
             from->e[i].valuelen);
    }
  }
}

static inline void su_model_free(su_model *m) {
  for (size_t i = 0; i < m->n; ++i) {
    free(m->e[i].value);
  }
  free(m->e);
  free(m->idx);
  memset(m, 0, sizeof(*m));
}

/* su_load_visit adds every loaded record to a model (duplicates counted). */
typedef struct su_loaded {
  su_model m;
  size_t visits;
  size_t duplicates;
} su_loaded;

/* su_mem_src is a segment image in memory, read by su_mem_read_at as a
   scan_source (format.h) reads a file. */
typedef struct su_mem_src {
  const uint8_t *p;
  size_t len;
} su_mem_src;

static inline tern_ssize su_mem_read_at(void *ctx, uint8_t *buf, size_t n,
                                        uint64_t off) {
  su_mem_src *m = ctx;
  if (off >= m->len) {
    return 0;
  }
  if (n > m->len - off) {
    n = (size_t)(m->len - off);
  }
  memcpy(buf, m->p + off, n);
  return (tern_ssize)n;
}

/* su_open opens the store in |dir| or aborts, saying why. */
static inline tern_store_file *su_open(const char *dir,
                                       const tern_store_file_options *o) {
  tern_store_file *s = NULL;
  int rv = tern_store_file_open(&s, dir, o, NULL);
  if (rv != 0) {
    fprintf(stderr, "open %s: %s: %s\n", dir, tern_strerror(rv),
            tern_store_file_error(NULL));
    abort();
  }
  return s;
}

/* su_stats returns the store's statistics. */
static inline tern_store_file_stats su_stats(tern_store_file *s) {
  tern_store_file_stats st;
  tern_store_file_get_stats(s, &st, sizeof(st));
  return st;
}

static inline int su_load_visit(void *ctx, const uint8_t *key, size_t keylen,
                                const uint8_t *value, size_t valuelen) {
  su_loaded *l = ctx;
  su_entry *e = su_find(&l->m, key, keylen);
  if (e != NULL && e->live) {
    ++l->duplicates;
  }
  su_set(&l->m, key, keylen, value, valuelen);
  ++l->visits;
  return 0;
}

/* su_load loads |store| into |out| (emptied first); returns load's result. */
static inline int su_load(tern_store_file *store, su_loaded *out) {
  su_model_free(&out->m);
  out->visits = 0;
  out->duplicates = 0;
  return tern_store_file_methods()->load(store, su_load_visit, out);
}

/* su_equal says whether two models hold the same live keys and values; the
   first difference goes to |why| if not NULL. */
static inline int su_equal(const su_model *a, const su_model *b,
                           char *why, size_t whylen) {
  for (int pass = 0; pass < 2; ++pass) {
    const su_model *x = pass ? b : a, *y = pass ? a : b;
    for (size_t i = 0; i < x->n; ++i) {
      const su_entry *e = &x->e[i];
      su_entry *f;
      if (!e->live) {
        continue;
      }
      f = su_find((su_model *)y, e->key, e->keylen);
      if (f == NULL || !f->live || f->valuelen != e->valuelen ||
          (e->valuelen && memcmp(f->value, e->value, e->valuelen) != 0)) {
        if (why) {
          snprintf(why, whylen, "key %.*s: %s in %s", (int)e->keylen,
                   (const char *)e->key,
                   f == NULL || !f->live ? "missing" : "other value",
                   pass ? "the first" : "the second");
        }
        return 0;
      }
    }
  }
  return 1;
}

/* ---- a system-call table with faults ------------------------------------ */

enum {
  SU_OPEN = 1 << 0,
  SU_CLOSE = 1 << 1,
  SU_READ = 1 << 2,
  SU_PREAD = 1 << 3,
  SU_WRITE = 1 << 4,
  SU_WRITEV = 1 << 5,
  SU_FSYNC = 1 << 6,
  SU_FDATASYNC = 1 << 7,
  SU_FTRUNCATE = 1 << 8,
  SU_RENAME = 1 << 9,
  SU_UNLINK = 1 << 10,
  SU_MKDIR = 1 << 11,
  SU_FLOCK = 1 << 12,
  SU_FSTAT = 1 << 13,
  SU_OPENDIR = 1 << 14,
  SU_READDIR = 1 << 15,
  SU_CLOSEDIR = 1 << 16,
  SU_ALL = (1 << 17) - 1
};

enum {
  SU_FAIL_EIO = 1,    /* return -1 with EIO                             */
  SU_FAIL_ENOSPC = 2, /* return -1 with ENOSPC (writes), EIO otherwise   */
  SU_FAIL_SHORT = 3,  /* write/writev: write half and return that;
                         other calls: EIO                                */
  SU_FAIL_KILL = 4    /* raise SIGKILL before making the call            */
};

typedef struct su_faults {
  unsigned eligible; /* calls that count (SU_* mask)                    */
  long fail_at;      /* the eligible call to fail, 1-based; 0 never     */
  int kind;          /* SU_FAIL_*                                       */
  int every;         /* with fail_at: fail every eligible call from it  */
  int real_fsync;    /* 0: fsync and fdatasync succeed without syncing  */
  int armed;         /* 0: count nothing (the crash test arms it)       */
  long calls;        /* eligible calls so far                           */
  long failed;       /* calls made to fail                              */
  long by_kind[17];  /* every call, by kind                             */
  long fds;          /* descriptors open through the table              */
  long dirs;         /* directory streams open                          */
} su_faults;

static su_faults su_f;

static inline int su_kind_index(unsigned kind) {
  int i = 0;
  while ((1u << i) != kind) {
    ++i;
  }
  return i;
}

/* su_hit counts a call of |kind| and says whether it must fail. */
static inline int su_hit(unsigned kind) {
  ++su_f.by_kind[su_kind_index(kind)];
  if (!su_f.armed || (su_f.eligible & kind) == 0) {
    return 0;
  }
  ++su_f.calls;
  if (su_f.fail_at > 0 && (su_f.calls == su_f.fail_at ||
                           (su_f.every && su_f.calls > su_f.fail_at))) {
    ++su_f.failed;
    if (su_f.kind == SU_FAIL_KILL) {
      raise(SIGKILL);
    }
    return 1;
  }
  return 0;
}

static inline void su_fail_errno(unsigned kind) {
  errno = su_f.kind == SU_FAIL_ENOSPC && (kind & (SU_WRITE | SU_WRITEV))
              ? ENOSPC
              : EIO;
}

static inline int su_openat(int dirfd, const char *path, int flags,
                            mode_t mode) {
  int fd;
  if (su_hit(SU_OPEN)) {
    su_fail_errno(SU_OPEN);
    return -1;
  }
  fd = openat(dirfd, path, flags, mode);
  if (fd >= 0) {
    ++su_f.fds;
  }
  return fd;
}

static inline int su_close(int fd) {
  int fail = su_hit(SU_CLOSE);
  int rv = close(fd); /* the descriptor is gone even when close fails */
  if (rv == 0) {
    --su_f.fds;
  }
  if (fail) {
    errno = EIO;
    return -1;
  }
  return rv;
}

static inline ssize_t su_read(int fd, void *buf, size_t n) {
  if (su_hit(SU_READ)) {
    errno = EIO;
    return -1;
  }
  return read(fd, buf, n);
}

static inline ssize_t su_pread(int fd, void *buf, size_t n, off_t off) {
  if (su_hit(SU_PREAD)) {
    errno = EIO;
    return -1;
  }
  return pread(fd, buf, n, off);
}

static inline ssize_t su_write(int fd, const void *buf, size_t n) {
  if (su_hit(SU_WRITE)) {
    if (su_f.kind == SU_FAIL_SHORT && n > 1) {
      return write(fd, buf, n / 2);
    }
    su_fail_errno(SU_WRITE);
    return -1;
  }
  return write(fd, buf, n);
}

static inline ssize_t su_writev(int fd, const struct iovec *iov, int n) {
  if (su_hit(SU_WRITEV)) {
    if (su_f.kind == SU_FAIL_SHORT && n > 0 && iov[0].iov_len > 1) {
      return write(fd, iov[0].iov_base, iov[0].iov_len / 2);
    }
    su_fail_errno(SU_WRITEV);
    return -1;
  }
  return writev(fd, iov, n);
}

static inline int su_fsync(int fd) {
  if (su_hit(SU_FSYNC)) {
    errno = EIO;
    return -1;
  }
  return su_f.real_fsync ? fsync(fd) : 0;
}

static inline int su_fdatasync(int fd) {
  if (su_hit(SU_FDATASYNC)) {
    errno = EIO;
    return -1;
  }
  return su_f.real_fsync ? store_sys_default()->fdatasync(fd) : 0;
}

static inline int su_ftruncate(int fd, off_t len) {
  if (su_hit(SU_FTRUNCATE)) {
    errno = EIO;
    return -1;
  }
  return ftruncate(fd, len);
}

static inline int su_renameat(int a, const char *from, int b, const char *to) {
  if (su_hit(SU_RENAME)) {
    errno = EIO;
    return -1;
  }
  return store_sys_default()->renameat(a, from, b, to);
}

static inline int su_unlinkat(int dirfd, const char *path, int flags) {
  if (su_hit(SU_UNLINK)) {
    errno = EIO;
    return -1;
  }
  return unlinkat(dirfd, path, flags);
}

static inline int su_mkdir(const char *path, mode_t mode) {
  if (su_hit(SU_MKDIR)) {
    errno = EIO;
    return -1;
  }
  return mkdir(path, mode);
}

static inline int su_flock(int fd, int op) {
  if (su_hit(SU_FLOCK)) {
    errno = EIO;
    return -1;
  }
  return store_sys_default()->flock(fd, op);
}

static inline int su_fstat(int fd, struct stat *st) {
  if (su_hit(SU_FSTAT)) {
    errno = EIO;
    return -1;
  }
  return fstat(fd, st);
}

static inline DIR *su_opendir(const char *path) {
  DIR *d;
  if (su_hit(SU_OPENDIR)) {
    errno = EIO;
    return NULL;
  }
  d = opendir(path);
  if (d != NULL) {
    ++su_f.dirs;
  }
  return d;
}

static inline struct dirent *su_readdir(DIR *d) {
  if (su_hit(SU_READDIR)) {
    errno = EIO;
    return NULL;
  }
  return readdir(d);
}

static inline int su_closedir(DIR *d) {
  int fail = su_hit(SU_CLOSEDIR);
  int rv = closedir(d);
  if (rv == 0) {
    --su_f.dirs;
  }
  if (fail) {
    errno = EIO;
    return -1;
  }
  return rv;
}

static const store_sys su_sys = {
    su_openat,    su_close,   su_read,     su_pread,    su_write,
    su_writev,    su_fsync,   su_fdatasync, su_ftruncate, su_renameat,
    su_unlinkat,  su_mkdir,   su_flock,    su_fstat,    su_opendir,
    su_readdir,   su_closedir,
};

/* su_faults_reset: count everything, fail nothing, fsync for real or not. */
static inline void su_faults_reset(int real_fsync) {
  memset(&su_f, 0, sizeof(su_f));
  su_f.eligible = SU_ALL;
  su_f.armed = 1;
  su_f.real_fsync = real_fsync;
}

static inline long su_calls(unsigned kind) {
  return su_f.by_kind[su_kind_index(kind)];
}

/* ---- a segment with a hostile payload ----------------------------------- */

/*
 * su_hostile_segment builds segment 1 of format |version| (1 or 2) in
 * memory (malloc'd, its size in |*len|, its salt |salt|): |nrec| records
 * "b<i>" of 40 bytes, then one record "hostile" whose |payload|-byte value
 * holds, every 16 bytes, a plausible record head whose length reaches
 * exactly to the end of the segment, then |nrec| records "a<i>".  The CRC
 * of the hostile record is broken, so that a scan meets damage and
 * searches through the payload.  |*hostile_off| and |*hostile_size| locate
 * that record.
 */
static inline void su_encode(uint8_t *p, uint32_t version, uint32_t salt,
                             const char *key, size_t keylen,
                             const uint8_t *value, size_t valuelen) {
  size_t hs = rec_head_size(version);
  memcpy(p + hs, key, keylen);
  if (value != p + hs + keylen && valuelen > 0) {
    memcpy(p + hs + keylen, value, valuelen);
  }
  if (version >= 2) {
    rec_encode_head(p, salt, REC_OP_SET, p + hs, keylen, p + hs + keylen,
                    valuelen);
  } else {
    rec_encode_head_v1(p, salt, REC_OP_SET, p + hs, keylen, p + hs + keylen,
                       valuelen);
  }
}

static inline uint8_t *su_hostile_segment(uint32_t version, size_t nrec,
                                          size_t payload, uint32_t salt,
                                          size_t *len, size_t *hostile_off,
                                          size_t *hostile_size) {
  size_t hs = rec_head_size(version);
  size_t small = hs + 3 + 40;
  size_t hsize = hs + 7 + payload;
  size_t total = SEG_DATA_START + 2 * nrec * small + hsize;
  size_t off = SEG_DATA_START;
  uint8_t *p = calloc(1, total), filler[40];
  seg_header h;
  char key[8];

  if (p == NULL) {
    su_die("calloc");
  }
  memset(filler, 'v', sizeof(filler));
  h.version = version;
  h.flags = 0;
  h.number = 1;
  h.salt = salt;
  h.prev_size = 0;
  seg_header_encode(p, &h);
  memcpy(p + SEG_HEADER_SIZE, p, SEG_HEADER_SIZE);
  for (int pass = 0; pass < 3; ++pass) {
    if (pass == 1) {
      size_t voff = off + hs + 7;
      uint8_t *v = p + voff;
      *hostile_off = off;
      *hostile_size = hsize;
      for (size_t q = 0; q + REC_HEAD <= payload; q += 16) {
        /* [length to the end][crc][SET][keylen 1] */
        put_le32(v + q, (uint32_t)(total - (voff + q) - 8));
        v[q + 8] = REC_OP_SET;
        put_le16(v + q + 9, 1);
      }
      su_encode(p + off, version, salt, "hostile", 7, v, payload);
      p[off + 4] ^= 0x01; /* the damage */
      off += hsize;
      continue;
    }
    for (size_t i = 0; i < nrec; ++i) {
      snprintf(key, sizeof(key), "%c%02u", pass ? 'a' : 'b',
               (unsigned)(i % 100));
      su_encode(p + off, version, salt, key, 3, filler, sizeof(filler));
      off += small;
    }
  }
  *len = total;
  return p;
}

#endif
