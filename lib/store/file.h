/*
 * The file store's state, shared by its files: file.c (open, append, sync,
 * close, the methods table), recover.c (reading the directory at open) and
 * compact.c (compaction and load).
 *
 * Failure rule: a failed write rolls the active segment back to where the
 * batch began (ftruncate) and the store stays usable; when that is not
 * possible, or an fsync failed (the kernel may have dropped the unsynced
 * pages, so what is durable is unknown), or compaction failed after its
 * rename, the store is broken: every later append, sync, compact and load
 * fails with TERN_ERR_STORE until it is closed and opened again, which
 * recovers whatever reached the disk.
 */
#ifndef TERN_STORE_FILE_H
#define TERN_STORE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/rand.h"
#include "store/format.h"
#include "store/index.h"
#include "store/sys.h"
#include "tern.h"

struct syncer; /* syncer.c */

/* One segment file. */
typedef struct seg {
  uint32_t number;
  uint32_t salt;
  uint32_t flags;  /* SEG_BASE */
  uint32_t version; /* of its format (format.h) */
  int usable;      /* its header is good: its records count */
  int damaged;     /* damage was found in it at open */
  int junk;        /* not a regular file (open skips it)  */
  uint64_t size;   /* bytes */
  uint64_t prev_size; /* from the header: the predecessor's final size */
} seg;

#define STORE_ERROR_SIZE 320
#define STORE_WBUF_SIZE ((size_t)1 << 20)
#define STORE_SMALL_VALUE 4096 /* larger values are written from the
                                  caller's memory (writev), not copied */
#define STORE_IOV 64

struct tern_store_file {
  tern_mem mem;
  const store_sys *sys;
  tern_store_file_options opt;
  char *dir;
  int dirfd;
  int lockfd;
  int active_fd; /* the last segment, open for appending; -1: none */
  seg *segs;     /* by increasing number */
  size_t nsegs;
  size_t segcap;
  int dirty;  /* the active segment has appends not yet fsynced */
  int broken; /* see the failure rule above */
  kindex index;
  rng rng;
  uint8_t *wbuf;
  uint64_t *hashes; /* the key hashes of the batch being appended */
  size_t hashcap;
  scan_buf sbuf;
  uint64_t live_bytes;      /* record bytes of the live keys */
  uint64_t compact_after;   /* no automatic compaction below this garbage */
  tern_store_file_stats st; /* records, bytes, skipped, ... (live and
                               garbage_bytes are derived) */
  uint32_t *taken;  /* numbers of segment names held by what is not a
                       segment (open skipped it): never given out */
  size_t ntaken;
  char err[STORE_ERROR_SIZE];
  struct syncer *syncer; /* the sync thread (option sync_thread); NULL:
                            fsync inside append */
  char note[STORE_ERROR_SIZE]; /* what open skipped or kept aside: the
                                  error text after a successful open */
};

/* ---- errors (file.c) ---------------------------------------------------- */

/* store_error formats the store's error text; returns TERN_ERR_STORE. */
/* store_note adds a sentence to the open note (what open skipped or kept
   aside); it becomes the error text of a store that opened. */
void store_note(tern_store_file *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int store_error(tern_store_file *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* store_sys_error: "|call| |name|: strerror(errno)"; TERN_ERR_STORE. */
int store_sys_error(tern_store_file *s, const char *call, const char *name);
/* store_break marks the store broken (the error text says so). */
int store_break(tern_store_file *s);
/* store_refuse is the result of any call on a broken store. */
int store_refuse(tern_store_file *s);

/* seg_name writes "000042.log" plus |suffix| into |out| (32 bytes). */
void seg_name(char *out, uint32_t number, const char *suffix);

/* ---- writing records ---------------------------------------------------- */

typedef struct ostream {
  tern_store_file *s;
  int fd;
  uint32_t salt;
  const char *name; /* for error texts */
  struct iovec iov[STORE_IOV];
  int niov;
  size_t used; /* bytes of s->wbuf in use */
  size_t mark; /* start of the wbuf bytes not yet in iov */
} ostream;

void os_init(ostream *o, tern_store_file *s, int fd, uint32_t salt,
             const char *name);
/* os_add queues one record.  |value_stays|: the value's memory stays valid
   until os_flush; otherwise a long value is written before returning. */
int os_add(ostream *o, int op, const uint8_t *key, size_t keylen,
           const uint8_t *value, size_t valuelen, int value_stays);
int os_flush(ostream *o);

/* ---- segments (file.c) -------------------------------------------------- */

/* store_new_segment creates "N.log.tmp" with both header copies; sets
   |*fd| (open O_RDWR|O_APPEND) and |*salt|. */
int store_new_segment(tern_store_file *s, uint32_t number, uint32_t flags,
                      uint64_t prev_size, int *fd, uint32_t *salt);
/* store_next_number is the number after the last segment that no other
   file's name holds, or 0 with the error set when numbers ran out. */
uint32_t store_next_number(tern_store_file *s);
int store_fdatasync(tern_store_file *s, int fd, const char *name);
int store_fsync_dir(tern_store_file *s);
int store_reserve_segs(tern_store_file *s, size_t n);

/* store_scan reads segment |sg| from its first record through
   scan_segment (format.h): opens the file, scans, closes it.  Returns what
   scan_segment returns; a failed open or read is also recorded as a store
   error naming the file.  |res| is filled once the file opened. */
int store_scan(tern_store_file *s, const seg *sg, scan_visit visit,
               void *ctx, scan_result *res);

/* store_garbage is the byte count of dead records and damage. */
uint64_t store_garbage(const tern_store_file *s);

/* ---- the sync thread (syncer.c) ----------------------------------------- */

/* With a syncer, append writes on the caller's thread and the syncer's
   thread runs fdatasync; everything else stays on the caller's thread.
   All of these do nothing when s->syncer is NULL. */

/* syncer_start starts the thread when the options ask for it (at open). */
int syncer_start(tern_store_file *s);
/* syncer_stop joins the thread after the sync it runs (at close), and
   breaks the store if a sync failed. */
void syncer_stop(tern_store_file *s);
/* syncer_free releases what syncer_start made (at release). */
void syncer_free(tern_store_file *s);
/* syncer_prepare runs before an append: it takes in the thread's result
   (a failed sync breaks the store) and makes room to queue the batch. */
int syncer_prepare(tern_store_file *s);
/* syncer_append takes the result |rv| of appending batch |batch| of |n|
   records and returns what the append method returns: 0, the error, or
   TERN_STORE_LATER with the batch queued (and its sync asked for). */
int syncer_append(tern_store_file *s, uint64_t batch, int rv, size_t n,
                  int sync);
/* syncer_pause waits until the thread is idle and keeps it so; call it
   before closing or replacing the active segment's descriptor (roll,
   compaction, an inline sync).  syncer_resume lets it go on; when s->dirty
   is clear, everything written counts as durable. */
void syncer_pause(tern_store_file *s);
void syncer_resume(tern_store_file *s);
/* syncer_fsyncs is the count of the thread's fdatasync calls. */
uint64_t syncer_fsyncs(const tern_store_file *s);

/* ---- recover.c, compact.c ----------------------------------------------- */

int store_recover(tern_store_file *s);
int store_compact(tern_store_file *s);
int store_load(tern_store_file *s, tern_store_visit visit, void *ctx);

#endif
