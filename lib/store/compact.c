/*
 * Compaction and load: both stream the segments record by record and keep
 * a record only when the index says it is its key's live one.
 *
 * Compaction writes the live records of every segment into a new segment
 * N+1 (N the last) flagged SEG_BASE, under a temporary name; fsyncs it;
 * renames it into place (the commit); fsyncs the directory; points the
 * index at the new copies (by reading the new file back); and deletes the
 * old segments.  Memory stays bounded by the read and write buffers.
 *
 * A crash at any step leaves a loadable directory: before the rename, the
 * old segments and a temporary file that open removes; after it, a base
 * segment that open prefers to every lower-numbered one, which it deletes.
 * A failure before the rename leaves the store as it was and usable; after
 * it the store is broken (file.h) and a reopen finishes the job.
 */
#include "store/file.h"

#include <errno.h>
#include <string.h>

#include "base/mem.h"

/* is_live says whether |r| (of segment |number|, its key hashed to |h|) is
   its key's live record. */
static int is_live(tern_store_file *s, const rec *r, uint32_t number,
                   uint64_t h) {
  uint32_t ref;
  kloc loc;

  if (r->op != REC_OP_SET) {
    return 0;
  }
  ref = kindex_find(&s->index, h, r->key, r->keylen);
  if (ref == 0) {
    return 0;
  }
  kindex_get(&s->index, ref, &loc);
  return loc.seg == number && loc.off == r->off;
}

/* hash_all hashes the keys of a batch and prefetches their slots. */
static void hash_all(tern_store_file *s, const rec *recs, size_t n,
                     uint64_t *h) {
  for (size_t i = 0; i < n; ++i) {
    h[i] = kindex_hash(&s->index, recs[i].key, recs[i].keylen);
    kindex_prefetch(&s->index, h[i]);
  }
}

/* scan_each runs |visit| over every usable segment in order; |ctx| is a
   walk whose |number| is set before each segment. */
typedef struct walk {
  tern_store_file *s;
  uint32_t number;
  uint64_t count;
  ostream *out;
  uint64_t out_size;
  tern_store_visit visit;
  void *visit_ctx;
} walk;

static int scan_one(tern_store_file *s, const seg *sg, scan_visit visit,
                    walk *w) {
  scan_result res;
  w->number = sg->number;
  return store_scan(s, sg, visit, w, &res);
}

/* ---- load --------------------------------------------------------------- */

static int load_some(void *ctx, const rec *recs, size_t n) {
  walk *w = ctx;
  uint64_t h[SCAN_BATCH];
  hash_all(w->s, recs, n, h);
  for (size_t i = 0; i < n; ++i) {
    const rec *r = &recs[i];
    if (is_live(w->s, r, w->number, h[i])) {
      int rv;
      ++w->count;
      rv = w->visit(w->visit_ctx, r->key, r->keylen, r->value, r->valuelen);
      if (rv != 0) {
        return rv;
      }
    }
  }
  return 0;
}

int store_load(tern_store_file *s, tern_store_visit visit, void *ctx) {
  walk w;
  memset(&w, 0, sizeof(w));
  w.s = s;
  w.visit = visit;
  w.visit_ctx = ctx;
  for (size_t i = 0; i < s->nsegs; ++i) {
    if (s->segs[i].usable) {
      int rv = scan_one(s, &s->segs[i], load_some, &w);
      if (rv != 0) {
        return rv;
      }
    }
  }
  if (w.count != kindex_count(&s->index)) {
    return store_error(s,
                       "load found %llu of %llu live records: the segment "
                       "files changed since open",
                       (unsigned long long)w.count,
                       (unsigned long long)kindex_count(&s->index));
  }
  return 0;
}

/* ---- compaction --------------------------------------------------------- */

static int copy_some(void *ctx, const rec *recs, size_t n) {
  walk *w = ctx;
  uint64_t h[SCAN_BATCH];
  hash_all(w->s, recs, n, h);
  for (size_t i = 0; i < n; ++i) {
    const rec *r = &recs[i];
    if (is_live(w->s, r, w->number, h[i])) {
      int rv = os_add(w->out, REC_OP_SET, r->key, r->keylen, r->value,
                      r->valuelen, 0);
      if (rv != 0) {
        return rv;
      }
      ++w->count;
      w->out_size += rec_size(r->keylen, r->valuelen); /* re-encoded */
    }
  }
  return 0;
}

/* repoint moves the keys' locations to the new segment. */
static int repoint(void *ctx, const rec *recs, size_t n) {
  walk *w = ctx;
  tern_store_file *s = w->s;
  uint64_t h[SCAN_BATCH];
  hash_all(s, recs, n, h);
  for (size_t i = 0; i < n; ++i) {
    uint32_t ref = kindex_find(&s->index, h[i], recs[i].key, recs[i].keylen);
    kloc loc, old;
    if (ref == 0) {
      return store_error(s, "compaction copied a key the index does not "
                            "hold");
    }
    kindex_get(&s->index, ref, &old);
    loc.seg = w->number;
    loc.off = recs[i].off;
    loc.size = (uint32_t)recs[i].size;
    /* A record of an old-format segment may have changed size. */
    s->live_bytes += (uint64_t)loc.size - old.size;
    kindex_set(&s->index, ref, &loc);
    ++w->count;
  }
  return 0;
}

/* retire deletes an old segment, or keeps one that held damage under the
   name "N.log.corrupt" for inspection.  Failures only leave files that the
   next open removes. */
static void retire(tern_store_file *s, const seg *sg) {
  char name[32], kept[32];
  seg_name(name, sg->number, "");
  if (sg->damaged) {
    seg_name(kept, sg->number, ".corrupt");
    if (s->sys->renameat(s->dirfd, name, s->dirfd, kept) == 0) {
      return;
    }
  }
  s->sys->unlinkat(s->dirfd, name, 0);
}

int store_compact(tern_store_file *s) {
  char tmp[32], name[32];
  uint32_t number, salt;
  uint64_t live = kindex_count(&s->index);
  ostream out;
  walk w;
  seg *sg;
  int fd, rv;

  if (s->nsegs == 1 && (s->segs[0].flags & SEG_BASE) != 0 &&
      store_garbage(s) == 0) {
    return 0; /* compacted already, and nothing died since */
  }
  if (s->wbuf == NULL) {
    s->wbuf = mem_malloc(&s->mem, STORE_WBUF_SIZE);
    if (s->wbuf == NULL) {
      return TERN_ERR_NOMEM;
    }
  }
  if (store_reserve_segs(s, 1) != 0) {
    return TERN_ERR_NOMEM;
  }
  number = store_next_number(s);
  if (number == 0) {
    return TERN_ERR_STORE;
  }
  rv = store_new_segment(s, number, SEG_BASE, 0, &fd, &salt);
  if (rv != 0) {
    return rv;
  }
  seg_name(tmp, number, ".tmp");
  seg_name(name, number, "");

  /* Copy the live records. */
  memset(&w, 0, sizeof(w));
  w.s = s;
  w.out = &out;
  w.out_size = SEG_DATA_START;
  os_init(&out, s, fd, salt, tmp);
  for (size_t i = 0; rv == 0 && i < s->nsegs; ++i) {
    if (s->segs[i].usable) {
      rv = scan_one(s, &s->segs[i], copy_some, &w);
    }
  }
  if (rv == 0) {
    rv = os_flush(&out);
  }
  if (rv == 0 && w.count != live) {
    rv = store_error(s,
                     "compaction found %llu of %llu live records: the "
                     "segment files changed since open",
                     (unsigned long long)w.count, (unsigned long long)live);
  }
  if (rv == 0 && w.out_size > KINDEX_MAX_OFFSET) {
    rv = store_error(s, "compaction: the live records exceed one segment");
  }
  if (rv == 0) {
    rv = store_fdatasync(s, fd, tmp);
  }
  if (rv == 0 && s->sys->renameat(s->dirfd, tmp, s->dirfd, name) != 0) {
    rv = store_sys_error(s, "rename", tmp);
  }
  if (rv != 0) {
    s->sys->close(fd);
    s->sys->unlinkat(s->dirfd, tmp, 0);
    return rv;
  }

  /* Committed: the new segment replaces the old ones at the next open. */
  if (store_fsync_dir(s) != 0) {
    s->sys->close(fd);
    return store_break(s);
  }
  {
    seg fresh;
    scan_result res;
    memset(&fresh, 0, sizeof(fresh));
    fresh.number = number;
    fresh.salt = salt;
    fresh.flags = SEG_BASE;
    fresh.version = SEG_VERSION;
    fresh.usable = 1;
    fresh.size = w.out_size;
    /* Read the new file back. */
    memset(&w, 0, sizeof(w));
    w.s = s;
    w.number = number;
    rv = store_scan(s, &fresh, repoint, &w, &res);
    if (rv == 0 && (w.count != live || res.damaged != 0 ||
                    res.tail != fresh.size)) {
      rv = store_error(s, "%s: the compacted segment does not read back",
                       name);
    }
    if (rv != 0) {
      s->sys->close(fd);
      return store_break(s);
    }

    for (size_t i = 0; i < s->nsegs; ++i) {
      retire(s, &s->segs[i]);
    }
    if (s->active_fd >= 0) {
      s->sys->close(s->active_fd);
    }
    s->active_fd = fd;
    s->dirty = 0;
    sg = &s->segs[0];
    *sg = fresh;
    s->nsegs = 1;
  }
  s->st.records = live;
  s->st.bytes = sg->size;
  s->compact_after = 0;
  ++s->st.compactions;
  return 0;
}
