/*
 * Recovery at open: list the directory, read the segment headers, replay
 * every record into the index, and repair what a crash leaves behind.
 *
 * Reading comes first and changes nothing, so that a strict open that
 * refuses leaves the directory as it found it.  Then:
 *  - temporary files ("N.log.tmp": a compaction or a new segment that was
 *    never renamed into place) are removed;
 *  - segments below the newest compacted one (SEG_BASE) are removed: the
 *    compaction that wrote it was interrupted before it could;
 *  - a torn tail of the last segment (bytes after the last good record
 *    that no good record follows) is truncated and fsynced.
 * Damage elsewhere (a bad record that a good one follows, a segment whose
 * two header copies are both bad, bad bytes at the end of a segment that
 * is not the last) is skipped, counted and left on disk; strict refuses it.
 */
#include "store/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/mem.h"

/* parse_name accepts the canonical names "NNNNNN.log" and "NNNNNN.log.tmp"
   (at least six digits, no superfluous leading zero). */
static int parse_name(const char *name, uint32_t *number, int *tmp) {
  uint64_t v = 0;
  size_t i = 0;
  char canon[32];

  while (name[i] >= '0' && name[i] <= '9') {
    v = v * 10 + (uint64_t)(name[i] - '0');
    if (v > UINT32_MAX || ++i > 10) {
      return 0;
    }
  }
  if (i < 6 || v == 0) {
    return 0;
  }
  if (strcmp(name + i, ".log") == 0) {
    *tmp = 0;
  } else if (strcmp(name + i, ".log.tmp") == 0) {
    *tmp = 1;
  } else {
    return 0;
  }
  seg_name(canon, (uint32_t)v, *tmp ? ".tmp" : "");
  if (strcmp(canon, name) != 0) {
    return 0;
  }
  *number = (uint32_t)v;
  return 1;
}

static int by_number(const void *a, const void *b) {
  uint32_t x = ((const seg *)a)->number, y = ((const seg *)b)->number;
  return x < y ? -1 : x > y;
}

typedef struct listing {
  uint32_t *tmps;
  size_t ntmps;
  size_t tmpcap;
} listing;

static int add_tmp(tern_store_file *s, listing *l, uint32_t number) {
  if (l->ntmps == l->tmpcap) {
    size_t cap = l->tmpcap ? l->tmpcap * 2 : 8;
    uint32_t *t = mem_realloc(&s->mem, l->tmps, cap * sizeof(*t));
    if (t == NULL) {
      return TERN_ERR_NOMEM;
    }
    l->tmps = t;
    l->tmpcap = cap;
  }
  l->tmps[l->ntmps++] = number;
  return 0;
}

static int take_number(tern_store_file *s, uint32_t number);

static int list_dir(tern_store_file *s, listing *l) {
  DIR *d = s->sys->opendir(s->dir);
  int rv = 0;
  if (d == NULL) {
    return store_sys_error(s, "opendir", s->dir);
  }
  for (;;) {
    struct dirent *ent;
    uint32_t number;
    int tmp;
    errno = 0;
    ent = s->sys->readdir(d);
    if (ent == NULL) {
      if (errno != 0) {
        rv = store_sys_error(s, "readdir", s->dir);
      }
      break;
    }
    if (!parse_name(ent->d_name, &number, &tmp)) {
      continue;
    }
    if (tmp) {
      /* Removed below; a new segment skips its number in case it cannot
         be (a directory), and so does the check of lengths. */
      rv = add_tmp(s, l, number);
      if (rv == 0) {
        rv = take_number(s, number);
      }
    } else if ((rv = store_reserve_segs(s, 1)) == 0) {
      seg *sg = &s->segs[s->nsegs++];
      memset(sg, 0, sizeof(*sg));
      sg->number = number;
    }
    if (rv != 0) {
      break;
    }
  }
  s->sys->closedir(d);
  if (rv == 0 && s->nsegs > 1) {
    qsort(s->segs, s->nsegs, sizeof(seg), by_number);
  }
  return rv;
}

/* skip_file records that the name of segment |number| (|suffix|) holds
   something that is not a segment: it is reported, and its number never
   given to a new segment (which could not be renamed onto it). */
static int take_number(tern_store_file *s, uint32_t number) {
  uint32_t *t = mem_realloc(&s->mem, s->taken, (s->ntaken + 1) * sizeof(*t));
  if (t == NULL) {
    return TERN_ERR_NOMEM;
  }
  s->taken = t;
  s->taken[s->ntaken++] = number;
  return 0;
}

static int skip_file(tern_store_file *s, uint32_t number, const char *suffix,
                     const char *why) {
  char name[32];
  seg_name(name, number, suffix);
  ++s->st.skipped_files;
  store_note(s, "skipped %s: %s", name, why);
  return suffix[0] == '\0' ? take_number(s, number) : 0;
}

/* read_header fills in the size and, if a header copy is good, the salt
   and flags of |sg|.  Only a regular file is a segment: anything else
   under its name (a FIFO would block a plain open forever) is marked junk
   and skipped. */
static int read_header(tern_store_file *s, seg *sg) {
  char name[32];
  uint8_t head[SEG_DATA_START];
  struct stat stbuf;
  size_t got = 0;
  seg_header h;
  int fd;

  seg_name(name, sg->number, "");
  fd = s->sys->openat(s->dirfd, name,
                      O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP || errno == ENXIO ||
        errno == ENOTDIR) { /* a dangling symlink, a socket, ... */
      char why[80];
      if (strerror_r(errno, why, sizeof(why)) != 0) {
        snprintf(why, sizeof(why), "error %d", errno);
      }
      sg->junk = 1;
      return skip_file(s, sg->number, "", why);
    }
    return store_sys_error(s, "open", name);
  }
  if (s->sys->fstat(fd, &stbuf) != 0) {
    store_sys_error(s, "fstat", name);
    s->sys->close(fd);
    return TERN_ERR_STORE;
  }
  if (!S_ISREG(stbuf.st_mode)) {
    s->sys->close(fd);
    sg->junk = 1;
    return skip_file(s, sg->number, "", "not a regular file");
  }
  sg->size = (uint64_t)stbuf.st_size;
  while (got < sizeof(head)) {
    ssize_t k = s->sys->pread(fd, head + got, sizeof(head) - got, (off_t)got);
    if (k < 0) {
      if (errno == EINTR) {
        continue;
      }
      store_sys_error(s, "pread", name);
      s->sys->close(fd);
      return TERN_ERR_STORE;
    }
    if (k == 0) {
      break;
    }
    got += (size_t)k;
  }
  s->sys->close(fd);
  if (got == sizeof(head) && seg_header_decode(head, got, &h) &&
      h.number == sg->number) {
    sg->usable = 1;
    sg->salt = h.salt;
    sg->flags = h.flags;
    sg->version = h.version;
    sg->prev_size = h.prev_size;
  }
  return 0;
}

/* drop_segs removes from the list the segments |which| says to. */
static void drop_segs(tern_store_file *s, int (*which)(const seg *)) {
  size_t kept = 0;
  for (size_t i = 0; i < s->nsegs; ++i) {
    if (!which(&s->segs[i])) {
      s->segs[kept++] = s->segs[i];
    }
  }
  s->nsegs = kept;
}

static int is_junk(const seg *sg) { return sg->junk; }

typedef struct replay {
  tern_store_file *s;
  uint32_t number;
} replay;

static int apply_one(tern_store_file *s, uint32_t number, const rec *r,
                     uint64_t h) {
  kloc loc, old;

  ++s->st.records;
  if (r->op == REC_OP_DEL) {
    if (kindex_del(&s->index, h, r->key, r->keylen, &old) == 1) {
      s->live_bytes -= old.size;
    }
    return 0;
  }
  if (r->off > KINDEX_MAX_OFFSET) {
    return store_error(s, "segment %lu is too long", (unsigned long)number);
  }
  loc.seg = number;
  loc.off = r->off;
  loc.size = (uint32_t)r->size;
  switch (kindex_put(&s->index, h, r->key, r->keylen, &loc, &old)) {
  case 1:
    s->live_bytes -= old.size;
    break;
  case 0:
    break;
  default:
    return TERN_ERR_NOMEM;
  }
  s->live_bytes += loc.size;
  return 0;
}

/* apply replays a few records: their slots are prefetched first, so that
   the cache misses of a large index overlap. */
static int apply(void *ctx, const rec *recs, size_t n) {
  replay *rp = ctx;
  uint64_t h[SCAN_BATCH];
  for (size_t i = 0; i < n; ++i) {
    h[i] = kindex_hash(&rp->s->index, recs[i].key, recs[i].keylen);
    kindex_prefetch(&rp->s->index, h[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    int rv = apply_one(rp->s, rp->number, &recs[i], h[i]);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

/* The first damage found, for the strict refusal. */
typedef struct damage {
  uint32_t number;
  uint64_t off;
  int found;
} damage;

/* note_damage counts damage in segment |number| (|sg| when it exists, to
   be kept aside at compaction). */
static void note_damage(tern_store_file *s, seg *sg, uint32_t number,
                        damage *d, uint64_t off, uint64_t count,
                        uint64_t bytes) {
  s->st.skipped += count;
  s->st.skipped_bytes += bytes;
  if (sg != NULL) {
    sg->damaged = 1;
  }
  if (!d->found) {
    d->found = 1;
    d->number = number;
    d->off = off;
  }
}

/* follows says whether segment |next| was started after |prev|: the
   numbers between them, if any, are held by files that are no segments
   (a new segment skips them). */
static int follows(const tern_store_file *s, uint32_t prev, uint32_t next) {
  for (uint32_t n = prev + 1; n < next; ++n) {
    size_t i = 0;
    while (i < s->ntaken && s->taken[i] != n) {
      ++i;
    }
    if (i == s->ntaken) {
      return 0;
    }
  }
  return 1;
}

/*
 * check_lengths compares each segment's size with the size its successor
 * recorded when it was started: a sealed segment that is shorter, or
 * missing, lost records that no scan can see.
 */
static void check_lengths(tern_store_file *s, size_t first, damage *d) {
  for (size_t i = first; i < s->nsegs; ++i) {
    seg *cur = &s->segs[i];
    seg *prev = i > first ? &s->segs[i - 1] : NULL;
    if (!cur->usable || cur->prev_size == 0) {
      continue;
    }
    if (prev == NULL || !follows(s, prev->number, cur->number)) {
      /* The predecessor is gone. */
      note_damage(s, NULL, cur->number - 1, d, 0, 1, cur->prev_size);
    } else if (prev->usable && prev->size < cur->prev_size) {
      note_damage(s, prev, prev->number, d, prev->size, 1,
                  cur->prev_size - prev->size);
    }
  }
}

/* replay_all scans segments [first, nsegs) into the index.  |*cut| gets
   where the last segment's torn tail starts (its size if none). */
static int replay_all(tern_store_file *s, size_t first, damage *d,
                      uint64_t *cut) {
  *cut = s->nsegs > 0 ? s->segs[s->nsegs - 1].size : 0;
  for (size_t i = first; i < s->nsegs; ++i) {
    seg *sg = &s->segs[i];
    scan_result res;
    replay rp;
    int rv;

    if (!sg->usable) {
      note_damage(s, sg, sg->number, d, 0, 1, sg->size);
      continue;
    }
    rp.s = s;
    rp.number = sg->number;
    rv = store_scan(s, sg, apply, &rp, &res);
    if (rv != 0) {
      return rv;
    }
    if (res.damaged > 0) {
      note_damage(s, sg, sg->number, d, res.first_damage, res.damaged,
                  res.damaged_bytes);
    }
    if (res.tail < sg->size) {
      if (i + 1 == s->nsegs) {
        *cut = res.tail;
      } else {
        note_damage(s, sg, sg->number, d, res.tail, 1,
                    sg->size - res.tail);
      }
    }
  }
  check_lengths(s, first, d);
  return 0;
}

static int unlink_name(tern_store_file *s, uint32_t number,
                       const char *suffix) {
  char name[32];
  seg_name(name, number, suffix);
  if (s->sys->unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT) {
    if (errno == EISDIR || errno == EPERM) { /* a directory */
      return skip_file(s, number, suffix, "a directory");
    }
    return store_sys_error(s, "unlink", name);
  }
  return 0;
}

/*
 * set_aside moves a segment without a good header out of the segment
 * names, to "N.log.corrupt": it holds no record that can be read, and left
 * in place it could hold the highest number (an empty 4294967295.log would
 * leave no number for a new segment).  Its damage was counted already.  A
 * failed rename leaves it where it is.
 */
static void set_aside(tern_store_file *s, seg *sg) {
  char name[32], kept[32];
  seg_name(name, sg->number, "");
  seg_name(kept, sg->number, ".corrupt");
  if (s->sys->renameat(s->dirfd, name, s->dirfd, kept) == 0) {
    store_note(s, "moved %s without a good header to %s", name, kept);
    sg->junk = 1; /* dropped from the list */
  }
}

/*
 * keep_tail copies the bytes of segment |sg| from |cut| to its end into
 * "N.log.CUT.tail", durably (the file and its directory entry), before
 * they are truncated: a bit flip in the last record looks like a torn
 * write, and strict mode keeps what it cannot tell apart.
 */
static int keep_tail(tern_store_file *s, const seg *sg, uint64_t cut) {
  char name[32], kept[64], suffix[32];
  uint8_t buf[65536];
  uint64_t off = cut;
  int in, out, rv = 0;

  seg_name(name, sg->number, "");
  snprintf(suffix, sizeof(suffix), ".%llu.tail", (unsigned long long)cut);
  seg_name(kept, sg->number, suffix);
  in = s->sys->openat(s->dirfd, name, O_RDONLY | O_CLOEXEC, 0);
  if (in < 0) {
    return store_sys_error(s, "open", name);
  }
  out = s->sys->openat(s->dirfd, kept,
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    store_sys_error(s, "open", kept);
    s->sys->close(in);
    return TERN_ERR_STORE;
  }
  while (rv == 0 && off < sg->size) {
    size_t want = sizeof(buf), done = 0;
    ssize_t k;
    if (want > sg->size - off) {
      want = (size_t)(sg->size - off);
    }
    k = s->sys->pread(in, buf, want, (off_t)off);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) {
        continue;
      }
      if (k == 0) {
        errno = EIO;
      }
      rv = store_sys_error(s, "pread", name);
      break;
    }
    while (rv == 0 && done < (size_t)k) {
      ssize_t w = s->sys->write(out, buf + done, (size_t)k - done);
      if (w <= 0) {
        if (w < 0 && errno == EINTR) {
          continue;
        }
        if (w == 0) {
          errno = EIO;
        }
        rv = store_sys_error(s, "write", kept);
      } else {
        done += (size_t)w;
      }
    }
    off += (uint64_t)k;
  }
  if (rv == 0) {
    rv = store_fdatasync(s, out, kept);
  }
  s->sys->close(out);
  s->sys->close(in);
  if (rv == 0) {
    rv = store_fsync_dir(s);
  }
  if (rv == 0) {
    store_note(s, "strict: kept the %llu bytes of %s after its last good "
               "record (offset %llu) in %s before truncating them",
               (unsigned long long)(sg->size - cut), name,
               (unsigned long long)cut, kept);
  }
  return rv;
}

/* open_active opens the last segment for appending (if it has the current
   format), truncating its torn tail at |cut| (kept aside first in strict
   mode). */
static int open_active(tern_store_file *s, uint64_t cut) {
  seg *sg = &s->segs[s->nsegs - 1];
  char name[32];

  seg_name(name, sg->number, "");
  if (cut < sg->size && s->opt.strict && keep_tail(s, sg, cut) != 0) {
    return TERN_ERR_STORE;
  }
  s->active_fd = s->sys->openat(s->dirfd, name,
                                O_WRONLY | O_APPEND | O_CLOEXEC, 0);
  if (s->active_fd < 0) {
    return store_sys_error(s, "open", name);
  }
  if (cut < sg->size) {
    if (s->sys->ftruncate(s->active_fd, (off_t)cut) != 0) {
      return store_sys_error(s, "ftruncate", name);
    }
    /* Durable at once, whatever the fsync option: appends go after it. */
    if (store_fdatasync(s, s->active_fd, name) != 0) {
      return TERN_ERR_STORE;
    }
    s->st.truncated = sg->size - cut;
    sg->size = cut;
  }
  if (sg->version != SEG_VERSION) {
    /* An old-format segment is only read: the first append starts a new
       one. */
    s->sys->close(s->active_fd);
    s->active_fd = -1;
  }
  return 0;
}

int store_recover(tern_store_file *s) {
  listing l = {NULL, 0, 0};
  damage d = {0, 0, 0};
  size_t base = 0;
  uint64_t cut = UINT64_MAX;
  int append_last, rv;

  rv = list_dir(s, &l);
  for (size_t i = 0; rv == 0 && i < s->nsegs; ++i) {
    rv = read_header(s, &s->segs[i]);
  }
  if (rv == 0) {
    drop_segs(s, is_junk);
  }
  for (size_t i = 0; rv == 0 && i < s->nsegs; ++i) {
    if (s->segs[i].usable && (s->segs[i].flags & SEG_BASE) != 0) {
      base = i;
    }
  }
  if (rv == 0) {
    rv = replay_all(s, base, &d, &cut);
  }
  if (rv == 0 && d.found && s->opt.strict) {
    char name[32];
    seg_name(name, d.number, "");
    rv = store_error(s,
                     "%s: damaged at offset %llu (%llu damaged regions, "
                     "%llu bytes); strict mode refuses to open",
                     name, (unsigned long long)d.off,
                     (unsigned long long)s->st.skipped,
                     (unsigned long long)s->st.skipped_bytes);
  }

  /* From here on the directory changes. */
  for (size_t i = 0; rv == 0 && i < l.ntmps; ++i) {
    rv = unlink_name(s, l.tmps[i], ".tmp");
  }
  mem_free(&s->mem, l.tmps);
  for (size_t i = 0; rv == 0 && i < base; ++i) {
    rv = unlink_name(s, s->segs[i].number, "");
  }
  if (rv != 0) {
    return rv;
  }
  if (base > 0) {
    memmove(s->segs, s->segs + base, (s->nsegs - base) * sizeof(seg));
    s->nsegs -= base;
  }
  /* Appends go on in the last segment only if it is usable; else the
     first append starts a new one. */
  append_last = s->nsegs > 0 && s->segs[s->nsegs - 1].usable;
  for (size_t i = 0; i < s->nsegs; ++i) {
    if (!s->segs[i].usable) {
      set_aside(s, &s->segs[i]);
    }
  }
  drop_segs(s, is_junk);
  if (append_last) {
    rv = open_active(s, cut);
    if (rv != 0) {
      return rv;
    }
  }
  s->st.bytes = 0;
  for (size_t i = 0; i < s->nsegs; ++i) {
    s->st.bytes += s->segs[i].size;
  }
  return 0;
}
