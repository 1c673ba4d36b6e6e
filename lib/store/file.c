/*
 * The file store: open and close, append with group commit, sync, stats,
 * error texts and the methods table.  Recovery is in recover.c, compaction
 * and load in compact.c.
 */
#include "store/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/layout.h"
#include "base/mem.h"

/* Why the last tern_store_file_open of this thread failed. */
static _Thread_local char open_error[STORE_ERROR_SIZE];

#define MIN_SEGMENT_SIZE ((size_t)1024)
#define MAX_SEGMENT_SIZE ((size_t)1 << 39)

/* The defaults of every option this library knows. */
static void options_defaults(tern_store_file_options *o) {
  memset(o, 0, sizeof(*o));
  o->version = TERN_STORE_FILE_OPTIONS_VERSION;
  o->fsync = TERN_FSYNC_BATCH;
  o->strict = 0;
  o->segment_size = (size_t)64 << 20;
  o->compact_garbage = 50;
  o->sync_thread = 0;
}

void tern_store_file_options_default_versioned(uint32_t version,
                                               tern_store_file_options *o) {
  tern_store_file_options all;
  if (o == NULL) {
    return;
  }
  options_defaults(&all);
  all.version = version;
  layout_fill_defaults(o, layout_store_file_options(version), &all);
}

/* The 0.1 entry point, for programs built against its header. */
#undef tern_store_file_options_default
void tern_store_file_options_default(tern_store_file_options *o) {
  tern_store_file_options_default_versioned(TERN_STORE_FILE_OPTIONS_V1, o);
}

/* ---- errors ------------------------------------------------------------- */

int store_error(tern_store_file *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof(s->err), fmt, ap);
  va_end(ap);
  return TERN_ERR_STORE;
}

void store_note(tern_store_file *s, const char *fmt, ...) {
  size_t len = strlen(s->note);
  va_list ap;
  if (len > 0 && len + 2 < sizeof(s->note)) {
    memcpy(s->note + len, "; ", 3);
    len += 2;
  }
  va_start(ap, fmt);
  vsnprintf(s->note + len, sizeof(s->note) - len, fmt, ap);
  va_end(ap);
}

int store_sys_error(tern_store_file *s, const char *call, const char *name) {
  int e = errno;
  char text[128];
  if (strerror_r(e, text, sizeof(text)) != 0) {
    snprintf(text, sizeof(text), "error %d", e);
  }
  if (name != NULL) {
    return store_error(s, "%s %s: %s", call, name, text);
  }
  return store_error(s, "%s: %s", call, text);
}

int store_break(tern_store_file *s) {
  size_t len = strlen(s->err);
  static const char more[] = "; the store must be reopened";
  s->broken = 1;
  if (len + sizeof(more) <= sizeof(s->err)) {
    memcpy(s->err + len, more, sizeof(more));
  }
  return TERN_ERR_STORE;
}

int store_refuse(tern_store_file *s) {
  (void)s; /* the text of the failure that broke it stays */
  return TERN_ERR_STORE;
}

void seg_name(char *out, uint32_t number, const char *suffix) {
  snprintf(out, 32, "%06lu.log%s", (unsigned long)number, suffix);
}

/* ---- writing records ---------------------------------------------------- */

void os_init(ostream *o, tern_store_file *s, int fd, uint32_t salt,
             const char *name) {
  o->s = s;
  o->fd = fd;
  o->salt = salt;
  o->name = name;
  o->niov = 0;
  o->used = 0;
  o->mark = 0;
}

static void os_cut(ostream *o) {
  if (o->used > o->mark) {
    o->iov[o->niov].iov_base = o->s->wbuf + o->mark;
    o->iov[o->niov].iov_len = o->used - o->mark;
    ++o->niov;
    o->mark = o->used;
  }
}

int os_flush(ostream *o) {
  struct iovec *iov = o->iov;
  int n;

  os_cut(o);
  n = o->niov;
  while (n > 0) {
    ssize_t w = o->s->sys->writev(o->fd, iov, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return store_sys_error(o->s, "writev", o->name);
    }
    if (w == 0) {
      errno = EIO;
      return store_sys_error(o->s, "writev", o->name);
    }
    /* A short write: go on from where it stopped. */
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  o->niov = 0;
  o->used = 0;
  o->mark = 0;
  return 0;
}

int os_add(ostream *o, int op, const uint8_t *key, size_t keylen,
           const uint8_t *value, size_t valuelen, int value_stays) {
  int copy = valuelen <= STORE_SMALL_VALUE;
  size_t need = REC_HEAD + keylen + (copy ? valuelen : 0);
  uint8_t *p;

  if (o->used + need > STORE_WBUF_SIZE || o->niov + 3 > STORE_IOV) {
    int rv = os_flush(o);
    if (rv != 0) {
      return rv;
    }
  }
  p = o->s->wbuf + o->used;
  memcpy(p + REC_HEAD, key, keylen);
  o->used += REC_HEAD + keylen;
  if (copy) {
    if (valuelen > 0) {
      memcpy(p + REC_HEAD + keylen, value, valuelen);
    }
    o->used += valuelen;
    rec_encode_head(p, o->salt, op, p + REC_HEAD, keylen,
                    p + REC_HEAD + keylen, valuelen);
    return 0;
  }
  rec_encode_head(p, o->salt, op, key, keylen, value, valuelen);
  os_cut(o);
  o->iov[o->niov].iov_base = (void *)(uintptr_t)value;
  o->iov[o->niov].iov_len = valuelen;
  ++o->niov;
  return value_stays ? 0 : os_flush(o);
}

/* ---- segments ----------------------------------------------------------- */

static int is_taken(const tern_store_file *s, uint32_t number) {
  for (size_t i = 0; i < s->ntaken; ++i) {
    if (s->taken[i] == number) {
      return 1;
    }
  }
  return 0;
}

uint32_t store_next_number(tern_store_file *s) {
  uint32_t n = s->nsegs > 0 ? s->segs[s->nsegs - 1].number : 0;
  do {
    if (n == UINT32_MAX) {
      store_error(s, "segment numbers are exhausted");
      return 0;
    }
    ++n;
  } while (is_taken(s, n));
  return n;
}

int store_reserve_segs(tern_store_file *s, size_t n) {
  seg *segs;
  size_t cap;
  if (s->nsegs + n <= s->segcap) {
    return 0;
  }
  cap = s->segcap ? s->segcap * 2 : 16;
  while (cap < s->nsegs + n) {
    cap *= 2;
  }
  segs = mem_realloc(&s->mem, s->segs, cap * sizeof(*segs));
  if (segs == NULL) {
    return TERN_ERR_NOMEM;
  }
  s->segs = segs;
  s->segcap = cap;
  return 0;
}

int store_fdatasync(tern_store_file *s, int fd, const char *name) {
  ++s->st.fsyncs;
  if (s->sys->fdatasync(fd) != 0) {
    return store_sys_error(s, "fdatasync", name);
  }
  return 0;
}

int store_fsync_dir(tern_store_file *s) {
  ++s->st.fsyncs;
  if (s->sys->fsync(s->dirfd) != 0) {
    return store_sys_error(s, "fsync", s->dir);
  }
  return 0;
}

int store_new_segment(tern_store_file *s, uint32_t number, uint32_t flags,
                      uint64_t prev_size, int *fd, uint32_t *salt) {
  char name[32];
  uint8_t head[SEG_DATA_START];
  seg_header h;
  const char *p = (const char *)head;
  size_t left = sizeof(head);
  int f;

  seg_name(name, number, ".tmp");
  f = s->sys->openat(s->dirfd, name,
                     O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (f < 0 && errno == EEXIST) { /* left by a failed attempt */
    s->sys->unlinkat(s->dirfd, name, 0);
    f = s->sys->openat(s->dirfd, name,
                       O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  }
  if (f < 0) {
    return store_sys_error(s, "open", name);
  }
  h.version = SEG_VERSION;
  h.flags = flags;
  h.number = number;
  h.salt = (uint32_t)rng_next(&s->rng);
  h.prev_size = prev_size;
  seg_header_encode(head, &h);
  memcpy(head + SEG_HEADER_SIZE, head, SEG_HEADER_SIZE);
  while (left > 0) {
    ssize_t w = s->sys->write(f, p, left);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w == 0) {
        errno = EIO;
      }
      store_sys_error(s, "write", name);
      s->sys->close(f);
      s->sys->unlinkat(s->dirfd, name, 0);
      return TERN_ERR_STORE;
    }
    p += w;
    left -= (size_t)w;
  }
  *fd = f;
  *salt = h.salt;
  return 0;
}

/* A segment open for scanning: scan_segment reads it through |read_at|. */
typedef struct seg_reader {
  const store_sys *sys;
  int fd;
} seg_reader;

/* reader_read_at is a scan source over a segment: pread until |n| bytes
   or the end of the file. */
static tern_ssize reader_read_at(void *ctx, uint8_t *buf, size_t n,
                                 uint64_t off) {
  seg_reader *r = ctx;
  size_t got = 0;
  while (got < n) {
    ssize_t k = r->sys->pread(r->fd, buf + got, n - got, (off_t)(off + got));
    if (k < 0) {
      if (errno == EINTR) {
        continue;
      }
      return -1;
    }
    if (k == 0) {
      break;
    }
    got += (size_t)k;
  }
  return (tern_ssize)got;
}

int store_scan(tern_store_file *s, const seg *sg, scan_visit visit,
               void *ctx, scan_result *res) {
  char name[32];
  seg_name(name, sg->number, "");
  seg_reader r;
  r.sys = s->sys;
  r.fd = s->sys->openat(s->dirfd, name, O_RDONLY | O_CLOEXEC, 0);
  if (r.fd < 0) {
    memset(res, 0, sizeof(*res));
    return store_sys_error(s, "open", name);
  }
  scan_source src;
  src.read_at = reader_read_at;
  src.ctx = &r;
  src.size = sg->size;
  int rv = scan_segment(&s->sbuf, &src, SEG_DATA_START, sg->salt,
                        sg->version, visit, ctx, res);
  s->sys->close(r.fd);
  if (rv == TERN_ERR_STORE && res->read_errno != 0) {
    errno = res->read_errno;
    return store_sys_error(s, "pread", name);
  }
  return rv;
}

uint64_t store_garbage(const tern_store_file *s) {
  uint64_t overhead = 0;
  for (size_t i = 0; i < s->nsegs; ++i) {
    if (s->segs[i].usable) {
      overhead += SEG_DATA_START;
    }
  }
  return s->st.bytes - s->live_bytes - overhead;
}

/*
 * roll seals the active segment (fsynced unless NEVER, so that a segment
 * that has a successor is complete on disk) and makes a new one active.
 * The new file is written under a temporary name and renamed, so a segment
 * never exists without its header.
 */
static int roll(tern_store_file *s) {
  int never = s->opt.fsync == TERN_FSYNC_NEVER;
  char tmp[32], name[32];
  uint32_t number, salt;
  uint64_t prev_size;
  int fd, rv;
  seg *sg;

  if (store_reserve_segs(s, 1) != 0) {
    return TERN_ERR_NOMEM;
  }
  if (s->active_fd >= 0 && s->dirty && !never) {
    seg_name(name, s->segs[s->nsegs - 1].number, "");
    if (store_fdatasync(s, s->active_fd, name) != 0) {
      return store_break(s);
    }
    s->dirty = 0;
  }
  number = store_next_number(s);
  if (number == 0) {
    return TERN_ERR_STORE;
  }
  prev_size = s->nsegs > 0 ? s->segs[s->nsegs - 1].size : 0;
  rv = store_new_segment(s, number, 0, prev_size, &fd, &salt);
  if (rv != 0) {
    return rv;
  }
  seg_name(tmp, number, ".tmp");
  seg_name(name, number, "");
  if (!never && store_fdatasync(s, fd, tmp) != 0) {
    goto undo;
  }
  if (s->sys->renameat(s->dirfd, tmp, s->dirfd, name) != 0) {
    store_sys_error(s, "rename", tmp);
    goto undo;
  }
  if (s->active_fd >= 0) {
    s->sys->close(s->active_fd);
  }
  s->active_fd = fd;
  s->dirty = 0;
  sg = &s->segs[s->nsegs++];
  memset(sg, 0, sizeof(*sg));
  sg->number = number;
  sg->salt = salt;
  sg->version = SEG_VERSION;
  sg->usable = 1;
  sg->size = SEG_DATA_START;
  sg->prev_size = prev_size;
  s->st.bytes += SEG_DATA_START;
  if (!never && store_fsync_dir(s) != 0) {
    return store_break(s);
  }
  return 0;

undo:
  s->sys->close(fd);
  s->sys->unlinkat(s->dirfd, tmp, 0);
  return TERN_ERR_STORE;
}

/* ---- append ------------------------------------------------------------- */

static int check_batch(const tern_store_record *recs, size_t n,
                       uint64_t *bytes, size_t *nset, size_t *units) {
  *bytes = 0;
  *nset = 0;
  *units = 0;
  for (size_t i = 0; i < n; ++i) {
    const tern_store_record *r = &recs[i];
    if ((r->op != TERN_STORE_SET && r->op != TERN_STORE_DEL) ||
        r->key == NULL || r->keylen == 0) {
      return TERN_ERR_INVALID;
    }
    if (r->keylen > TERN_STORE_MAX_KEY) {
      return TERN_ERR_TOO_LARGE;
    }
    if (r->op == TERN_STORE_SET) {
      if (r->valuelen > REC_MAX_VALUE) {
        return TERN_ERR_TOO_LARGE;
      }
      if (r->value == NULL && r->valuelen > 0) {
        return TERN_ERR_INVALID;
      }
      *bytes += rec_size(r->keylen, r->valuelen);
      ++*nset;
      *units += kindex_cell_units(r->keylen);
    } else {
      *bytes += rec_size(r->keylen, 0);
    }
  }
  return 0;
}

/* apply_batch updates the index for a batch written at |start|, its keys'
   hashes in s->hashes; it cannot fail: the index was reserved before the
   write. */
static void apply_batch(tern_store_file *s, const tern_store_record *recs,
                        size_t n, uint64_t start) {
  seg *sg = &s->segs[s->nsegs - 1];
  uint64_t off = start;
  for (size_t i = 0; i < n; ++i) {
    const tern_store_record *r = &recs[i];
    uint64_t h = s->hashes[i];
    kloc loc, old;
    if (r->op == TERN_STORE_SET) {
      loc.seg = sg->number;
      loc.off = off;
      loc.size = (uint32_t)rec_size(r->keylen, r->valuelen);
      if (kindex_put(&s->index, h, r->key, r->keylen, &loc, &old) == 1) {
        s->live_bytes -= old.size;
      }
      s->live_bytes += loc.size;
      off += loc.size;
    } else {
      if (kindex_del(&s->index, h, r->key, r->keylen, &old) == 1) {
        s->live_bytes -= old.size;
      }
      off += rec_size(r->keylen, 0);
    }
  }
}

static int sync_active(tern_store_file *s) {
  char name[32];
  if (s->active_fd < 0 || !s->dirty) {
    return 0;
  }
  seg_name(name, s->segs[s->nsegs - 1].number, "");
  if (store_fdatasync(s, s->active_fd, name) != 0) {
    return store_break(s);
  }
  s->dirty = 0;
  return 0;
}

static void maybe_compact(tern_store_file *s) {
  uint64_t garbage;
  if (s->opt.compact_garbage == 0 || s->broken) {
    return;
  }
  garbage = store_garbage(s);
  if (garbage < s->opt.segment_size || garbage < s->compact_after ||
      garbage * 100 <= (uint64_t)s->opt.compact_garbage * s->st.bytes) {
    return;
  }
  syncer_pause(s); /* compaction replaces the active segment */
  if (!s->broken && store_compact(s) != 0 && !s->broken) {
    /* Keep the append's success; try again after another segment's worth
       of garbage.  The error text says what failed. */
    s->compact_after = garbage + s->opt.segment_size;
    ++s->st.compact_failures;
  }
  syncer_resume(s);
}

static int append(tern_store_file *s, const tern_store_record *recs, size_t n,
                  int sync) {
  uint64_t bytes, start;
  size_t nset, units;
  int rv, want_sync;
  seg *sg;
  ostream o;
  char name[32];

  rv = check_batch(recs, n, &bytes, &nset, &units);
  if (rv != 0) {
    return rv;
  }
  want_sync = s->opt.fsync == TERN_FSYNC_ALWAYS ||
              (s->opt.fsync == TERN_FSYNC_BATCH && sync);
  if (s->syncer != NULL) {
    want_sync = 0; /* the sync thread syncs (syncer_append) */
  }
  if (n == 0) {
    return want_sync ? sync_active(s) : 0;
  }
  if (bytes > KINDEX_MAX_OFFSET - SEG_DATA_START) {
    return TERN_ERR_TOO_LARGE;
  }
  if (kindex_reserve(&s->index, nset, units) != 0) {
    return TERN_ERR_NOMEM;
  }
  if (s->wbuf == NULL) {
    s->wbuf = mem_malloc(&s->mem, STORE_WBUF_SIZE);
    if (s->wbuf == NULL) {
      return TERN_ERR_NOMEM;
    }
  }
  if (n > s->hashcap) {
    size_t cap = n < 1024 ? 1024 : n;
    uint64_t *h = mem_realloc(&s->mem, s->hashes, cap * sizeof(*h));
    if (h == NULL) {
      return TERN_ERR_NOMEM;
    }
    s->hashes = h;
    s->hashcap = cap;
  }
  sg = s->nsegs > 0 ? &s->segs[s->nsegs - 1] : NULL;
  if (s->active_fd < 0 ||
      (sg->size > SEG_DATA_START && sg->size + bytes > s->opt.segment_size) ||
      sg->size + bytes > KINDEX_MAX_OFFSET) {
    syncer_pause(s); /* roll closes the active segment */
    rv = s->broken ? store_refuse(s) : roll(s);
    syncer_resume(s);
    if (rv != 0) {
      return rv;
    }
    sg = &s->segs[s->nsegs - 1];
  }

  start = sg->size;
  seg_name(name, sg->number, "");
  os_init(&o, s, s->active_fd, sg->salt, name);
  for (size_t i = 0; i < n && rv == 0; ++i) {
    const tern_store_record *r = &recs[i];
    /* Start loading the index slots apply_batch will need: the misses
       overlap each other and the write. */
    s->hashes[i] = kindex_hash(&s->index, r->key, r->keylen);
    kindex_prefetch(&s->index, s->hashes[i]);
    if (r->op == TERN_STORE_SET) {
      rv = os_add(&o, REC_OP_SET, r->key, r->keylen, r->value, r->valuelen, 1);
    } else {
      rv = os_add(&o, REC_OP_DEL, r->key, r->keylen, NULL, 0, 1);
    }
  }
  if (rv == 0) {
    rv = os_flush(&o);
  }
  if (rv != 0) {
    /* Take back what part of the batch reached the file; the store stays
       usable if that works. */
    if (s->sys->ftruncate(s->active_fd, (off_t)start) != 0) {
      char first[STORE_ERROR_SIZE], then[STORE_ERROR_SIZE];
      memcpy(first, s->err, sizeof(first));
      store_sys_error(s, "ftruncate", name);
      memcpy(then, s->err, sizeof(then));
      store_error(s, "%.150s; then %.150s", first, then);
      return store_break(s);
    }
    return rv;
  }
  apply_batch(s, recs, n, start);
  sg->size += bytes;
  s->st.bytes += bytes;
  s->st.records += n;
  s->dirty = 1;
  if (want_sync) {
    rv = sync_active(s);
    if (rv != 0) {
      return rv;
    }
  }
  maybe_compact(s);
  return 0;
}

static int nomem_text(tern_store_file *s, int rv) {
  if (rv == TERN_ERR_NOMEM) {
    store_error(s, "out of memory");
  }
  return rv;
}

static int file_append(void *store, uint64_t batch,
                       const tern_store_record *recs, size_t n, int sync) {
  tern_store_file *s = store;
  int rv;
  if (s == NULL || (recs == NULL && n > 0)) {
    return TERN_ERR_INVALID;
  }
  if (s->syncer == NULL) {
    /* every batch completes before returning: |batch| is not needed */
    if (s->broken) {
      return store_refuse(s);
    }
    return nomem_text(s, append(s, recs, n, sync));
  }
  rv = syncer_prepare(s);
  if (rv != 0) {
    return rv;
  }
  rv = s->broken ? store_refuse(s) : nomem_text(s, append(s, recs, n, sync));
  return syncer_append(s, batch, rv, n, sync);
}

/* ---- the other methods -------------------------------------------------- */

static int file_load(void *store, tern_store_visit visit, void *ctx) {
  tern_store_file *s = store;
  if (s == NULL || visit == NULL) {
    return TERN_ERR_INVALID;
  }
  if (s->broken) {
    return store_refuse(s);
  }
  return nomem_text(s, store_load(s, visit, ctx));
}

static int file_sync(void *store) {
  tern_store_file *s = store;
  if (s == NULL) {
    return TERN_ERR_INVALID;
  }
  if (s->broken) {
    return store_refuse(s);
  }
  if (s->opt.fsync == TERN_FSYNC_NEVER) {
    return 0;
  }
  syncer_pause(s);
  int rv = s->broken ? store_refuse(s) : sync_active(s);
  syncer_resume(s);
  return rv;
}

static int file_compact(void *store) {
  tern_store_file *s = store;
  if (s == NULL) {
    return TERN_ERR_INVALID;
  }
  if (s->broken) {
    return store_refuse(s);
  }
  syncer_pause(s);
  int rv = s->broken ? store_refuse(s) : nomem_text(s, store_compact(s));
  syncer_resume(s);
  return rv;
}

static void file_close(void *store) { tern_store_file_close(store); }

static const tern_store_methods file_methods = {
    TERN_STORE_METHODS_VERSION, file_append, file_load, file_sync,
    file_compact,               file_close,
};

/* One table per layout, each saying its own version: a caller may copy
   the table into its own struct of that layout. */
const tern_store_methods *tern_store_file_methods_versioned(uint32_t version) {
  return version == TERN_STORE_METHODS_VERSION ? &file_methods : NULL;
}

/* The 0.1 entry point, for programs built against its header. */
#undef tern_store_file_methods
const tern_store_methods *tern_store_file_methods(void) {
  return tern_store_file_methods_versioned(TERN_STORE_METHODS_V1);
}

/* ---- open and close ----------------------------------------------------- */

static int check_options(const tern_store_file_options *o) {
  if (o->fsync != TERN_FSYNC_BATCH && o->fsync != TERN_FSYNC_ALWAYS &&
      o->fsync != TERN_FSYNC_NEVER) {
    return TERN_ERR_INVALID;
  }
  if (o->segment_size < MIN_SEGMENT_SIZE ||
      o->segment_size > MAX_SEGMENT_SIZE || o->compact_garbage > 100) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

/* Seeds the store's generator (segment salts) and the index's hash key
   from /dev/urandom, or from the clock and pid when it cannot be read. */
static void seed(tern_store_file *s, uint64_t out[2]) {
  uint8_t b[16];
  size_t got = 0;
  uint64_t x;
  int fd = s->sys->openat(AT_FDCWD, "/dev/urandom", O_RDONLY | O_CLOEXEC, 0);
  if (fd >= 0) {
    while (got < sizeof(b)) {
      ssize_t k = s->sys->read(fd, b + got, sizeof(b) - got);
      if (k <= 0) {
        if (k < 0 && errno == EINTR) {
          continue;
        }
        break;
      }
      got += (size_t)k;
    }
    s->sys->close(fd);
  }
  if (got == sizeof(b)) {
    x = get_le64(b) ^ get_le64(b + 8) * UINT64_C(0x9e3779b97f4a7c15);
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x ^= ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^
         (uint64_t)(uintptr_t)s;
  }
  rng_seed(&s->rng, x);
  out[0] = rng_next(&s->rng);
  out[1] = rng_next(&s->rng);
}

/* lock takes an exclusive flock on |fd|: TERN_ERR_STATE when another
   holder has it. */
static int lock(tern_store_file *s, int fd, const char *name) {
  if (s->sys->flock(fd, STORE_LOCK_EX | STORE_LOCK_NB) == 0) {
    return 0;
  }
  if (errno == EWOULDBLOCK || errno == EAGAIN) {
    store_error(s, "%s is locked by another process (or another open "
                "store)", s->dir);
    return TERN_ERR_STATE;
  }
  return store_sys_error(s, "flock", name);
}

/*
 * sync_parent makes the entry of a directory just created durable: without
 * it a power loss can take the whole store away, every fsynced segment in
 * it.
 */
static int sync_parent(tern_store_file *s) {
  size_t len = strlen(s->dir);
  char *parent;
  int fd, rv = 0;

  while (len > 1 && s->dir[len - 1] == '/') {
    --len;
  }
  while (len > 0 && s->dir[len - 1] != '/') {
    --len;
  }
  while (len > 1 && s->dir[len - 1] == '/') {
    --len;
  }
  parent = mem_malloc(&s->mem, len + 2);
  if (parent == NULL) {
    return TERN_ERR_NOMEM;
  }
  if (len == 0) {
    memcpy(parent, ".", 2);
  } else {
    memcpy(parent, s->dir, len);
    parent[len] = '\0';
  }
  fd = s->sys->openat(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                      0);
  if (fd < 0) {
    rv = store_sys_error(s, "open", parent);
  } else {
    ++s->st.fsyncs;
    if (s->sys->fsync(fd) != 0) {
      rv = store_sys_error(s, "fsync", parent);
    }
    s->sys->close(fd);
  }
  mem_free(&s->mem, parent);
  return rv;
}

static int open_dir(tern_store_file *s) {
  if (s->sys->mkdir(s->dir, 0777) == 0) {
    int rv = sync_parent(s);
    if (rv != 0) {
      return rv;
    }
  } else if (errno != EEXIST) {
    return store_sys_error(s, "mkdir", s->dir);
  }
  s->dirfd = s->sys->openat(AT_FDCWD, s->dir,
                            O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (s->dirfd < 0) {
    return store_sys_error(s, "open", s->dir);
  }
  /* The lock that counts is on the directory itself, which nobody can
     unlink from under an open store (a deleted LOCK file let a second
     writer in).  LOCK is still created and locked, for older versions of
     the store, which lock only it. */
  int rv = lock(s, s->dirfd, s->dir);
  if (rv != 0) {
    return rv;
  }
  s->lockfd = s->sys->openat(s->dirfd, "LOCK",
                             O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
  if (s->lockfd < 0) {
    return store_sys_error(s, "open", "LOCK");
  }
  return lock(s, s->lockfd, "LOCK");
}

static void release(tern_store_file *s) {
  syncer_free(s);
  if (s->active_fd >= 0) {
    s->sys->close(s->active_fd);
  }
  if (s->lockfd >= 0) {
    s->sys->close(s->lockfd); /* releases the lock */
  }
  if (s->dirfd >= 0) {
    s->sys->close(s->dirfd);
  }
  kindex_free(&s->index);
  scan_buf_free(&s->sbuf);
  mem_free(&s->mem, s->wbuf);
  mem_free(&s->mem, s->hashes);
  mem_free(&s->mem, s->segs);
  mem_free(&s->mem, s->taken);
  mem_free(&s->mem, s->dir);
  mem_free(&s->mem, s);
}

int store_file_open_sys(tern_store_file **pstore, const char *dir,
                        const tern_store_file_options *o, const tern_mem *mem,
                        const store_sys *sys) {
  tern_store_file_options all;
  tern_store_file *s;
  uint64_t hash_key[2];
  size_t dirlen;
  int rv;

  open_error[0] = '\0';
  /* The caller's layout, the options it lacks at their defaults. */
  options_defaults(&all);
  if (o != NULL) {
    size_t len = layout_store_file_options(o->version);
    if (len == 0) {
      snprintf(open_error, sizeof(open_error), "invalid argument");
      return TERN_ERR_INVALID;
    }
    memcpy(&all, o, len);
    all.version = TERN_STORE_FILE_OPTIONS_VERSION;
  }
  o = &all;
  if (pstore == NULL || dir == NULL || dir[0] == '\0' ||
      check_options(o) != 0) {
    snprintf(open_error, sizeof(open_error), "invalid argument");
    return TERN_ERR_INVALID;
  }
  if (mem == NULL) {
    mem = mem_default();
  }
  s = mem_calloc(mem, 1, sizeof(*s));
  if (s == NULL) {
    snprintf(open_error, sizeof(open_error), "out of memory");
    return TERN_ERR_NOMEM;
  }
  s->mem = *mem;
  s->sys = sys != NULL ? sys : store_sys_default();
  s->opt = *o; /* |all|: the caller's layout completed by the defaults */
  s->dirfd = s->lockfd = s->active_fd = -1;
  s->sbuf.mem = &s->mem;
  dirlen = strlen(dir);
  s->dir = mem_malloc(&s->mem, dirlen + 1);
  if (s->dir == NULL) {
    mem_free(&s->mem, s);
    snprintf(open_error, sizeof(open_error), "out of memory");
    return TERN_ERR_NOMEM;
  }
  memcpy(s->dir, dir, dirlen + 1);

  rv = open_dir(s);
  if (rv == 0) {
    seed(s, hash_key);
    rv = kindex_init(&s->index, &s->mem, hash_key);
  }
  if (rv == 0) {
    rv = store_recover(s);
  }
  if (rv == 0) {
    rv = syncer_start(s);
  }
  if (rv != 0) {
    if (rv == TERN_ERR_NOMEM && s->err[0] == '\0') {
      store_error(s, "out of memory");
    }
    memcpy(open_error, s->err, sizeof(open_error));
    release(s);
    return rv;
  }
  memcpy(s->err, s->note, sizeof(s->err));
  *pstore = s;
  return 0;
}

int tern_store_file_open(tern_store_file **pstore, const char *dir,
                         const tern_store_file_options *o,
                         const tern_mem *mem) {
  return store_file_open_sys(pstore, dir, o, mem, NULL);
}

void tern_store_file_close(tern_store_file *s) {
  if (s == NULL) {
    return;
  }
  syncer_stop(s); /* after the sync it runs; a failed one breaks s */
  /* A clean close leaves everything appended durable. */
  if (!s->broken && s->opt.fsync != TERN_FSYNC_NEVER) {
    sync_active(s);
  }
  release(s);
}

void tern_store_file_get_stats(const tern_store_file *s,
                               tern_store_file_stats *st, size_t size) {
  tern_store_file_stats all;
  if (s == NULL || st == NULL) {
    return;
  }
  all = s->st;
  all.live = kindex_count(&s->index);
  all.garbage_bytes = store_garbage(s);
  all.segments = s->nsegs;
  all.index_bytes = kindex_bytes(&s->index);
  all.fsyncs += syncer_fsyncs(s);
  layout_copy_out(st, size, &all, sizeof(all));
}

const char *tern_store_file_error(const tern_store_file *s) {
  return s == NULL ? open_error : s->err;
}
