/*
 * Power loss, simulated through the file store's system-call table
 * (lib/store/sys.h).  The table keeps a model of what a disk holds besides
 * what the page cache shows:
 *
 *  - per file, the bytes as of its last fsync/fdatasync (what is durable)
 *    and as they are now;
 *  - per directory, the entries as of its last fsync, and the creates,
 *    renames and unlinks made since (the store's directory, and its parent
 *    for the mkdir that creates it).
 *
 * At a random mutating call the power fails: that call and every later one
 * fail with EIO and change nothing.  The disk left behind is built from the
 * model: each directory gets its synced entries plus a random prefix of the
 * operations made since (a journal commits them in order), and each file
 * its synced bytes, with each 64-byte sector of what was written since
 * taken or not at random and its length either the synced or the current
 * one (a torn write).  Then the store is opened on that disk (where the
 * power may fail again, inside recovery), checked, written to, and so on
 * for a few rounds.
 *
 * The check after every open: each key holds the value of the last batch
 * that was confirmed durable (an append with sync that returned 0, or a
 * compaction that returned 0), or a value (or DEL) of an append made after
 * it; never anything else (a damaged value, a resurrected key, a value
 * lost although confirmed).
 *
 * TERN_POWER_SEED=<n> replays one seed; TERN_POWER_SEEDS=<n> runs more.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/rand.h"
#include "store_util.h"
#include "tap.h"

#define ROUNDS 4
#define BATCHES 40
#define NKEYS 24
#define SECTOR 64
#define MAXFILES 64
#define MAXOPS 256

/* ---- the model of the disk ---------------------------------------------- */

typedef struct pl_buf {
  uint8_t *p;
  size_t len;
} pl_buf;

typedef struct pl_inode {
  ino_t ino;
  pl_buf cur; /* what reads see */
  pl_buf dur; /* what survives a power loss */
} pl_inode;

typedef struct pl_entry {
  char name[64];
  int inode; /* index into pl.inodes */
} pl_entry;

enum { OP_CREATE, OP_RENAME, OP_UNLINK };

typedef struct pl_op {
  int kind;
  char name[64], to[64];
  int inode;
} pl_op;

enum { FD_NONE, FD_FILE, FD_DIR, FD_PARENT };

static struct {
  const char *dir;    /* the store directory */
  const char *parent; /* its parent */
  int dir_durable;    /* its entry in the parent survives */
  int dir_made;       /* mkdir made it since the parent was synced */
  pl_inode inodes[MAXFILES * 4];
  int ninodes;
  pl_entry durable[MAXFILES]; /* the store directory as synced */
  int ndurable;
  pl_op ops[MAXOPS]; /* since */
  int nops;
  int fdkind[1024];
  int fdinode[1024];
  long steps;    /* mutating calls so far */
  long crash_at; /* the one that fails with the power; 0 never */
  int crashed;
  int overflow; /* the model ran out of room: the seed is skipped */
} pl;

static void buf_set(pl_buf *b, const uint8_t *p, size_t len) {
  free(b->p);
  b->p = malloc(len ? len : 1);
  if (b->p == NULL) {
    su_die("malloc");
  }
  if (len) {
    memcpy(b->p, p, len);
  }
  b->len = len;
}

/* read_fd reads the whole file behind |fd| (which may be write-only). */
static void read_fd(int fd, pl_buf *out) {
  char path[64];
  uint8_t *p;
  size_t len;
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  p = su_read_file(path, &len);
  if (p == NULL) {
    su_die("read_fd");
  }
  free(out->p);
  out->p = p;
  out->len = len;
}

static int find_inode(ino_t ino) {
  for (int i = 0; i < pl.ninodes; ++i) {
    if (pl.inodes[i].ino == ino) {
      return i;
    }
  }
  return -1;
}

static int new_inode(ino_t ino) {
  int i;
  if (pl.ninodes == (int)(sizeof(pl.inodes) / sizeof(pl.inodes[0]))) {
    pl.overflow = 1;
    return -1;
  }
  i = pl.ninodes++;
  memset(&pl.inodes[i], 0, sizeof(pl.inodes[i]));
  pl.inodes[i].ino = ino;
  return i;
}

static void log_op(int kind, const char *name, const char *to, int inode) {
  pl_op *o;
  if (pl.nops == MAXOPS) {
    pl.overflow = 1;
    return;
  }
  o = &pl.ops[pl.nops++];
  o->kind = kind;
  snprintf(o->name, sizeof(o->name), "%s", name);
  snprintf(o->to, sizeof(o->to), "%s", to ? to : "");
  o->inode = inode;
}

/* apply_op applies a directory operation to an entry list. */
static void apply_op(pl_entry *e, int *n, const pl_op *o) {
  int i;
  for (i = 0; i < *n && strcmp(e[i].name, o->name) != 0; ++i) {
  }
  switch (o->kind) {
  case OP_CREATE:
    if (i == *n && *n < MAXFILES) {
      snprintf(e[*n].name, sizeof(e[*n].name), "%s", o->name);
      e[(*n)++].inode = o->inode;
    }
    break;
  case OP_RENAME:
    if (i < *n) {
      int inode = e[i].inode, j;
      e[i] = e[--*n];
      for (j = 0; j < *n && strcmp(e[j].name, o->to) != 0; ++j) {
      }
      if (j == *n && *n < MAXFILES) {
        ++*n;
      }
      snprintf(e[j].name, sizeof(e[j].name), "%s", o->to);
      e[j].inode = inode;
    }
    break;
  case OP_UNLINK:
    if (i < *n) {
      e[i] = e[--*n];
    }
    break;
  }
}

/* pl_begin makes the model of a disk that holds exactly what |dir| holds
   now, all of it durable. */
static void pl_begin(const char *dir, const char *parent, long crash_at) {
  DIR *d;
  struct dirent *e;
  for (int i = 0; i < pl.ninodes; ++i) {
    free(pl.inodes[i].cur.p);
    free(pl.inodes[i].dur.p);
  }
  memset(&pl, 0, sizeof(pl));
  pl.dir = dir;
  pl.parent = parent;
  pl.crash_at = crash_at;
  d = opendir(dir);
  pl.dir_durable = d != NULL;
  while (d != NULL && (e = readdir(d)) != NULL) {
    struct stat st;
    uint8_t *p;
    size_t len = 0;
    int i;
    if (e->d_name[0] == '.' || strlen(e->d_name) >= 64 ||
        lstat(su_path(dir, e->d_name), &st) != 0 || !S_ISREG(st.st_mode) ||
        pl.ndurable == MAXFILES) {
      continue;
    }
    i = new_inode(st.st_ino);
    if (i < 0) {
      continue;
    }
    p = su_read_file(su_path(dir, e->d_name), &len);
    buf_set(&pl.inodes[i].cur, p, len);
    buf_set(&pl.inodes[i].dur, p, len);
    free(p);
    memcpy(pl.durable[pl.ndurable].name, e->d_name, strlen(e->d_name) + 1);
    pl.durable[pl.ndurable++].inode = i;
  }
  if (d != NULL) {
    closedir(d);
  }
}

/* power_fails says whether this mutating call is the one the power fails
   at, or comes after it. */
static int power_fails(void) {
  if (pl.crashed) {
    return 1;
  }
  if (++pl.steps == pl.crash_at) {
    pl.crashed = 1;
    return 1;
  }
  return 0;
}

static int tracked(int fd) {
  return fd >= 0 && fd < 1024 ? pl.fdkind[fd] : FD_NONE;
}

static void refresh(int fd) {
  if (tracked(fd) == FD_FILE) {
    read_fd(fd, &pl.inodes[pl.fdinode[fd]].cur);
  }
}

/* ---- the system-call table ---------------------------------------------- */

static int pl_openat(int dirfd, const char *path, int flags, mode_t mode) {
  int existed = 1, fd;
  struct stat st;
  if (pl.crashed || ((flags & O_CREAT) && power_fails())) {
    errno = EIO;
    return -1;
  }
  if (dirfd != AT_FDCWD && (flags & O_CREAT)) {
    existed = fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
  }
  fd = openat(dirfd, path, flags, mode);
  if (fd < 0 || fd >= 1024) {
    return fd;
  }
  pl.fdkind[fd] = FD_NONE;
  if (dirfd == AT_FDCWD) {
    if (strcmp(path, pl.dir) == 0) {
      pl.fdkind[fd] = FD_DIR;
    } else if (strcmp(path, pl.parent) == 0) {
      pl.fdkind[fd] = FD_PARENT;
    }
    return fd;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return fd;
  }
  {
    int i = find_inode(st.st_ino);
    if (i < 0) {
      i = new_inode(st.st_ino);
      if (i < 0) {
        return fd;
      }
      read_fd(fd, &pl.inodes[i].cur);
    }
    if (!existed) {
      log_op(OP_CREATE, path, NULL, i);
    }
    pl.fdkind[fd] = FD_FILE;
    pl.fdinode[fd] = i;
  }
  return fd;
}

static int pl_close(int fd) {
  if (fd >= 0 && fd < 1024) {
    pl.fdkind[fd] = FD_NONE;
  }
  return close(fd);
}

static ssize_t pl_read(int fd, void *buf, size_t n) {
  if (pl.crashed) {
    errno = EIO;
    return -1;
  }
  return read(fd, buf, n);
}

static ssize_t pl_pread(int fd, void *buf, size_t n, off_t off) {
  if (pl.crashed) {
    errno = EIO;
    return -1;
  }
  return pread(fd, buf, n, off);
}

static ssize_t pl_write(int fd, const void *buf, size_t n) {
  ssize_t w;
  if (power_fails()) {
    errno = EIO;
    return -1;
  }
  w = write(fd, buf, n);
  refresh(fd);
  return w;
}

static ssize_t pl_writev(int fd, const struct iovec *iov, int n) {
  ssize_t w;
  if (power_fails()) {
    errno = EIO;
    return -1;
  }
  w = writev(fd, iov, n);
  refresh(fd);
  return w;
}

static int pl_sync(int fd) {
  if (power_fails()) {
    errno = EIO;
    return -1;
  }
  switch (tracked(fd)) {
  case FD_FILE: {
    pl_inode *in = &pl.inodes[pl.fdinode[fd]];
    buf_set(&in->dur, in->cur.p, in->cur.len);
    break;
  }
  case FD_DIR:
    for (int i = 0; i < pl.nops; ++i) {
      apply_op(pl.durable, &pl.ndurable, &pl.ops[i]);
    }
    pl.nops = 0;
    break;
  case FD_PARENT:
    if (pl.dir_made) {
      pl.dir_durable = 1;
      pl.dir_made = 0;
    }
    break;
  default:
    break;
  }
  return 0;
}

static int pl_ftruncate(int fd, off_t len) {
  int rv;
  if (power_fails()) {
    errno = EIO;
    return -1;
  }
  rv = ftruncate(fd, len);
  refresh(fd);
  return rv;
}

static int pl_renameat(int a, const char *from, int b, const char *to) {
  int rv;
  if (power_fails()) {
    errno = EIO;
    return -1;
  }
  rv = renameat(a, from, b, to);
  if (rv == 0) {
    log_op(OP_RENAME, from, to, -1);
  }
  return rv;
}

static int pl_unlinkat(int dirfd, const char *path, int flags) {
  int rv;
  if (power_fails()) {
    errno = EIO;
    return -1;
  }
  rv = unlinkat(dirfd, path, flags);
  if (rv == 0) {
    log_op(OP_UNLINK, path, NULL, -1);
  }
  return rv;
}

static int pl_mkdir(const char *path, mode_t mode) {
  int rv;
  if (power_fails()) {
    errno = EIO;
    return -1;
  }
  rv = mkdir(path, mode);
  if (rv == 0 && strcmp(path, pl.dir) == 0) {
    pl.dir_made = 1;
  }
  return rv;
}

static int pl_flock(int fd, int op) {
  if (pl.crashed) {
    errno = EIO;
    return -1;
  }
  return store_sys_default()->flock(fd, op);
}

static int pl_fstat(int fd, struct stat *st) {
  if (pl.crashed) {
    errno = EIO;
    return -1;
  }
  return fstat(fd, st);
}

static DIR *pl_opendir(const char *path) {
  if (pl.crashed) {
    errno = EIO;
    return NULL;
  }
  return opendir(path);
}

static struct dirent *pl_readdir(DIR *d) {
  if (pl.crashed) {
    errno = EIO;
    return NULL;
  }
  return readdir(d);
}

static const store_sys pl_sys = {
    pl_openat,    pl_close,   pl_read,     pl_pread,    pl_write,
    pl_writev,    pl_sync,    pl_sync,     pl_ftruncate, pl_renameat,
    pl_unlinkat,  pl_mkdir,   pl_flock,    pl_fstat,    pl_opendir,
    pl_readdir,   closedir,
};

/* ---- the disk after the power failed ------------------------------------ */

/* torn builds what a file holds after the power failed: its synced bytes,
   and each sector written since taken or not; the length either. */
static void torn(const pl_inode *in, rng *r, pl_buf *out) {
  const pl_buf *d = &in->dur, *c = &in->cur;
  size_t len = rng_below(r, 2) ? d->len : c->len;
  uint8_t *p = calloc(1, len ? len : 1);
  if (p == NULL) {
    su_die("calloc");
  }
  for (size_t s = 0; s < len; s += SECTOR) {
    size_t n = len - s < SECTOR ? len - s : SECTOR;
    const pl_buf *from = rng_below(r, 2) ? c : d;
    for (size_t i = 0; i < n; ++i) {
      p[s + i] = s + i < from->len ? from->p[s + i] : 0;
    }
  }
  out->p = p;
  out->len = len;
}

/* pl_disk replaces the store directory with what the disk holds. */
static void pl_disk(rng *r) {
  pl_entry e[MAXFILES];
  int n = pl.ndurable, keep = (int)rng_below(r, (uint64_t)pl.nops + 1);
  pl_buf files[MAXFILES];

  memcpy(e, pl.durable, sizeof(e));
  for (int i = 0; i < keep; ++i) {
    apply_op(e, &n, &pl.ops[i]);
  }
  for (int i = 0; i < n; ++i) {
    torn(&pl.inodes[e[i].inode], r, &files[i]);
  }
  su_rmtree(pl.dir);
  if (getenv("TERN_POWER_DEBUG")) {
    fprintf(stderr, "disk: dir durable %d made %d, %d entries (%d of %d ops)"
            " after %ld steps\n", pl.dir_durable, pl.dir_made, n, keep,
            pl.nops, pl.steps);
    for (int i = 0; i < n; ++i) {
      fprintf(stderr, "  %s %zu (synced %zu, now %zu)\n", e[i].name,
              files[i].len, pl.inodes[e[i].inode].dur.len,
              pl.inodes[e[i].inode].cur.len);
    }
  }
  if (pl.dir_durable || (pl.dir_made && rng_below(r, 2))) {
    if (mkdir(pl.dir, 0777) != 0) {
      su_die("mkdir");
    }
    for (int i = 0; i < n; ++i) {
      su_write_file(su_path(pl.dir, e[i].name), files[i].p, files[i].len);
    }
  }
  for (int i = 0; i < n; ++i) {
    free(files[i].p);
  }
}

/* ---- what may be loaded ------------------------------------------------- */

typedef struct pending {
  char key[16];
  int del;
  uint8_t value[64];
  size_t len;
} pending;

typedef struct expect {
  su_model confirmed; /* as of the last durable confirmation */
  su_model applied;   /* every append that returned 0 */
  pending *after;     /* appends since the confirmation, failed ones too */
  size_t nafter, cap;
} expect;

static void add_after(expect *x, const tern_store_record *r) {
  pending *p;
  if (x->nafter == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 64;
    x->after = realloc(x->after, x->cap * sizeof(*x->after));
    if (x->after == NULL) {
      su_die("realloc");
    }
  }
  p = &x->after[x->nafter++];
  memset(p, 0, sizeof(*p));
  memcpy(p->key, r->key, r->keylen);
  p->del = r->op == TERN_STORE_DEL;
  if (!p->del) {
    memcpy(p->value, r->value, r->valuelen);
    p->len = r->valuelen;
  }
}

static void confirm(expect *x) {
  su_copy(&x->confirmed, &x->applied);
  x->nafter = 0;
}

/* allowed says whether |e| (NULL: absent) may be what key |key| holds. */
static int allowed(const expect *x, const char *key, const su_entry *e) {
  su_entry *c = su_find((su_model *)&x->confirmed, (const uint8_t *)key,
                        strlen(key));
  int live = e != NULL && e->live;
  if (c != NULL && c->live ? live && e->valuelen == c->valuelen &&
                                 memcmp(e->value, c->value, c->valuelen) == 0
                           : !live) {
    return 1;
  }
  for (size_t i = 0; i < x->nafter; ++i) {
    const pending *p = &x->after[i];
    if (strcmp(p->key, key) != 0) {
      continue;
    }
    if (p->del ? !live
               : live && e->valuelen == p->len &&
                     memcmp(e->value, p->value, p->len) == 0) {
      return 1;
    }
  }
  return 0;
}

/* check loads |s| and compares it with |x|; then the loaded state is the
   confirmed one. */
static int check(tern_store_file *s, expect *x, char *why, size_t whylen) {
  su_loaded l;
  int ok = 1;
  memset(&l, 0, sizeof(l));
  if (su_load(s, &l) != 0) {
    snprintf(why, whylen, "load failed: %s", tern_store_file_error(s));
    su_model_free(&l.m);
    return 0;
  }
  for (int k = 0; k < NKEYS && ok; ++k) {
    char key[16];
    snprintf(key, sizeof(key), "key%02d", k);
    if (!allowed(x, key, su_find(&l.m, (const uint8_t *)key, strlen(key)))) {
      su_entry *c = su_find(&x->confirmed, (const uint8_t *)key, strlen(key));
      snprintf(why, whylen, "%s: %s loaded, confirmed %s", key,
               su_find(&l.m, (const uint8_t *)key, strlen(key)) ? "a value"
                                                               : "nothing",
               c != NULL && c->live ? "a value" : "nothing");
      ok = 0;
    }
  }
  for (size_t i = 0; i < l.m.n && ok; ++i) {
    if (l.m.e[i].live && (l.m.e[i].keylen != 5 ||
                          memcmp(l.m.e[i].key, "key", 3) != 0)) {
      snprintf(why, whylen, "a key never written");
      ok = 0;
    }
  }
  su_copy(&x->confirmed, &l.m);
  su_copy(&x->applied, &l.m);
  x->nafter = 0;
  su_model_free(&l.m);
  return ok;
}

/* ---- one seed ----------------------------------------------------------- */

typedef struct tally {
  long seeds, rounds, crashes_in_open, opens, confirmed, skipped_seeds;
  char first[400];
} tally;

static void note(tally *t, uint64_t seed, const char *what) {
  if (t->first[0] == '\0') {
    snprintf(t->first, sizeof(t->first), "seed %llu: %s",
             (unsigned long long)seed, what);
  }
}

static int run_seed(uint64_t seed, const char *base, tally *t) {
  char dir[4200];
  expect x;
  rng r;
  tern_store_file_options o;
  const tern_store_methods *m = tern_store_file_methods();
  char why[300];
  int ok = 1;

  memset(&x, 0, sizeof(x));
  rng_seed(&r, seed);
  snprintf(dir, sizeof(dir), "%s/s%llu", base, (unsigned long long)seed);
  tern_store_file_options_default(&o);
  o.segment_size = 1024 + (size_t)rng_below(&r, 3000);
  o.compact_garbage = rng_below(&r, 2) ? 30 : 0;
  o.fsync = rng_below(&r, 4) ? TERN_FSYNC_BATCH : TERN_FSYNC_ALWAYS;

  for (int round = 0; round < ROUNDS && ok; ++round) {
    tern_store_file *s = NULL;
    int rv;
    pl_begin(dir, base, 1 + (long)rng_below(&r, 150));
    ++t->rounds;
    rv = store_file_open_sys(&s, dir, &o, NULL, &pl_sys);
    if (rv != 0) {
      if (!pl.crashed) {
        snprintf(why, sizeof(why), "open failed: %s",
                 tern_store_file_error(NULL));
        note(t, seed, why);
        ok = 0;
        break;
      }
      ++t->crashes_in_open;
      pl_disk(&r);
      continue;
    }
    ++t->opens;
    if (!check(s, &x, why, sizeof(why))) {
      note(t, seed, why);
      ok = 0;
    }
    for (int b = 0; b < BATCHES && ok && !pl.crashed; ++b) {
      tern_store_record recs[8];
      char keys[8][16];
      uint8_t vals[8][64];
      size_t n = 1 + (size_t)rng_below(&r, 8);
      int sync = rng_below(&r, 10) < 7;
      for (size_t i = 0; i < n; ++i) {
        snprintf(keys[i], 16, "key%02u", (unsigned)rng_below(&r, NKEYS));
        recs[i].key = (const uint8_t *)keys[i];
        recs[i].keylen = strlen(keys[i]);
        if (rng_below(&r, 5) == 0) {
          recs[i].op = TERN_STORE_DEL;
          recs[i].value = NULL;
          recs[i].valuelen = 0;
        } else {
          size_t len = 8 + (size_t)rng_below(&r, 56);
          recs[i].op = TERN_STORE_SET;
          for (size_t j = 0; j < len; ++j) {
            vals[i][j] = (uint8_t)rng_next(&r);
          }
          recs[i].value = vals[i];
          recs[i].valuelen = len;
        }
        add_after(&x, &recs[i]);
      }
      if (rng_below(&r, 25) == 0) {
        if (m->compact(s) == 0) {
          confirm(&x);
        }
        continue;
      }
      rv = m->append(s, 0, recs, n, sync);
      if (rv != 0) {
        if (!pl.crashed) {
          snprintf(why, sizeof(why), "append failed: %s",
                   tern_store_file_error(s));
          note(t, seed, why);
          ok = 0;
        }
        break;
      }
      for (size_t i = 0; i < n; ++i) {
        su_apply(&x.applied, &recs[i]);
      }
      if (sync) {
        confirm(&x);
        ++t->confirmed;
      }
    }
    if (!pl.crashed && rng_below(&r, 2)) {
      pl.crashed = 1; /* the power fails before the close */
    }
    tern_store_file_close(s);
    pl.crashed = 1;
    if (pl.overflow) {
      ++t->skipped_seeds;
      break;
    }
    pl_disk(&r);
  }
  if (ok && !pl.overflow) {
    tern_store_file *s = NULL;
    if (tern_store_file_open(&s, dir, &o, NULL) != 0) {
      snprintf(why, sizeof(why), "the last open failed: %s",
               tern_store_file_error(NULL));
      note(t, seed, why);
      ok = 0;
    } else {
      if (!check(s, &x, why, sizeof(why))) {
        note(t, seed, why);
        ok = 0;
      }
      tern_store_file_close(s);
    }
  }
  su_rmtree(dir);
  su_model_free(&x.confirmed);
  su_model_free(&x.applied);
  free(x.after);
  ++t->seeds;
  return ok;
}

int main(void) {
  char *base = su_tmpdir("power");
  const char *env = getenv("TERN_POWER_SEED");
  const char *nenv = getenv("TERN_POWER_SEEDS");
  uint64_t first = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  long nseeds = env ? 1 : nenv ? atol(nenv) : 200;
  long failed = 0;
  tally t;

  memset(&t, 0, sizeof(t));
  tap_diag("seeds %llu.. (TERN_POWER_SEED=<n> replays one)",
           (unsigned long long)first);
  for (long i = 0; i < nseeds; ++i) {
    failed += !run_seed(first + (uint64_t)i, base, &t);
  }
  tap_diag("%ld seeds, %ld rounds: %ld opens, %ld power failures inside "
           "recovery, %ld synced batches confirmed; %ld seeds cut short",
           t.seeds, t.rounds, t.opens, t.crashes_in_open, t.confirmed,
           t.skipped_seeds);
  if (t.first[0] != '\0') {
    tap_diag("first failure: %s", t.first);
  }
  CHECK(failed == 0, "after every power failure, every confirmed record is "
                     "there and nothing else (%ld of %ld seeds failed)",
        failed, nseeds);
  CHECK(t.crashes_in_open > 0, "some power failures hit recovery itself");
  for (int i = 0; i < pl.ninodes; ++i) {
    free(pl.inodes[i].cur.p);
    free(pl.inodes[i].dur.p);
  }
  su_rmtree(base);
  free(base);
  return tap_done();
}
