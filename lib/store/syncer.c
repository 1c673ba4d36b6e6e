/*
 * The file store's sync thread (option sync_thread).  The caller's thread
 * writes each batch as before, so the order of the log and the index stay
 * its own; this thread runs fdatasync, so the host's loop never waits for
 * the disk.  Completions go back to the host's thread through a descriptor
 * (an eventfd, a pipe where there is none) and tern_store_file_complete,
 * which reports them to the hub in order.
 *
 * Writes are counted.  The owner asks for "every write through W durable";
 * the thread syncs through the newest W asked for when it starts, so all
 * batches that arrive while one fdatasync runs share the next one (group
 * commit).  A sync that fails breaks the store (file.h): the batches not
 * yet covered by a good sync complete with TERN_ERR_STORE.
 *
 * Who touches what: the queue of waiting batches, the write count and the
 * store itself belong to the owner's thread; the request (want, fd, seg),
 * the result (synced, err), the flags and the descriptor's readiness are
 * under |lock|.  The thread sees nothing of the store but |sys|.
 */
#include "store/file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#endif

#include "base/mem.h"

/* A batch the append method returned TERN_STORE_LATER for. */
typedef struct waiting {
  uint64_t batch;
  uint64_t need; /* durable once |synced| reaches it; 0: no sync asked */
  int status;    /* the append's own error, or 0 */
} waiting;

struct syncer {
  const store_sys *sys;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake; /* the thread: work to do, or stop */
  pthread_cond_t idle; /* the owner: the thread finished a sync */
  int rfd, wfd;        /* the completion descriptor's ends (one eventfd) */
  int started;
  /* the owner's */
  uint64_t written; /* appends that wrote records, since open */
  waiting *q;       /* ring of waiting batches, oldest first */
  size_t qfirst, qlen, qcap;
  /* under lock */
  uint64_t want;   /* sync every write through this count */
  uint64_t synced; /* every write through this count is durable */
  int fd;          /* the active segment, to sync */
  uint32_t seg;    /* its number, for the error text */
  int busy, paused, stop;
  int err;          /* errno of a failed fdatasync; 0 none */
  uint32_t err_seg; /* the segment it failed on */
  uint64_t fsyncs;
  int raised; /* the descriptor is readable */
};

/* ---- the descriptor (under lock) ---------------------------------------- */

static void raise_fd(struct syncer *y) {
  if (y->raised) {
    return;
  }
  y->raised = 1;
#if defined(__linux__)
  uint64_t one = 1;
  ssize_t w = write(y->wfd, &one, sizeof(one));
#else
  uint8_t one = 1;
  ssize_t w = write(y->wfd, &one, 1);
#endif
  (void)w; /* nonblocking and never full: at most one wake-up is in it */
}

static void drain_fd(struct syncer *y) {
  uint8_t buf[64];
  if (!y->raised) {
    return;
  }
  while (read(y->rfd, buf, sizeof(buf)) > 0) {
  }
  y->raised = 0;
}

/* ---- the thread --------------------------------------------------------- */

static void *run(void *arg) {
  struct syncer *y = arg;
  pthread_mutex_lock(&y->lock);
  for (;;) {
    while (!y->stop && (y->paused || y->err != 0 || y->want <= y->synced)) {
      pthread_cond_wait(&y->wake, &y->lock);
    }
    if (y->stop) {
      break;
    }
    uint64_t target = y->want;
    int fd = y->fd;
    uint32_t seg_number = y->seg;
    y->busy = 1;
    pthread_mutex_unlock(&y->lock);

    int rv = y->sys->fdatasync(fd);
    int e = errno;

    pthread_mutex_lock(&y->lock);
    y->busy = 0;
    ++y->fsyncs;
    if (rv != 0) {
      y->err = e != 0 ? e : EIO;
      y->err_seg = seg_number;
    } else if (target > y->synced) {
      y->synced = target;
    }
    raise_fd(y);
    pthread_cond_broadcast(&y->idle);
  }
  pthread_mutex_unlock(&y->lock);
  return NULL;
}

/* ---- the owner's side --------------------------------------------------- */

/* collect takes in the thread's result: a failed sync breaks the store;
   when every write is durable the active segment is clean.  Returns the
   synced count. */
static uint64_t collect(tern_store_file *s) {
  struct syncer *y = s->syncer;
  pthread_mutex_lock(&y->lock);
  int e = y->err;
  uint32_t seg_number = y->err_seg;
  uint64_t synced = y->synced;
  pthread_mutex_unlock(&y->lock);
  if (e != 0 && !s->broken) {
    char name[32];
    seg_name(name, seg_number, "");
    errno = e;
    store_sys_error(s, "fdatasync", name);
    store_break(s);
  }
  if (!s->broken && synced >= y->written) {
    s->dirty = 0;
  }
  return synced;
}

/* done says whether the oldest waiting batch can be reported. */
static int front_done(const tern_store_file *s, uint64_t synced) {
  const struct syncer *y = s->syncer;
  const waiting *w = &y->q[y->qfirst];
  return w->status != 0 || w->need <= synced || s->broken;
}

/* poke makes the descriptor readable when the oldest waiting batch can be
   reported without the thread (an error, or an inline sync covered it). */
static void poke(tern_store_file *s) {
  struct syncer *y = s->syncer;
  if (y->qlen == 0) {
    return;
  }
  pthread_mutex_lock(&y->lock);
  if (front_done(s, y->synced)) {
    raise_fd(y);
  }
  pthread_mutex_unlock(&y->lock);
}

int syncer_prepare(tern_store_file *s) {
  struct syncer *y = s->syncer;
  if (y == NULL) {
    return 0;
  }
  collect(s);
  if (y->qlen == y->qcap) {
    size_t cap = y->qcap * 2;
    waiting *q = mem_malloc(&s->mem, cap * sizeof(*q));
    if (q == NULL) {
      store_error(s, "out of memory");
      return TERN_ERR_NOMEM;
    }
    for (size_t i = 0; i < y->qlen; ++i) {
      q[i] = y->q[(y->qfirst + i) % y->qcap];
    }
    mem_free(&s->mem, y->q);
    y->q = q;
    y->qfirst = 0;
    y->qcap = cap;
  }
  return 0;
}

int syncer_append(tern_store_file *s, uint64_t batch, int rv, size_t n,
                  int sync) {
  struct syncer *y = s->syncer;
  uint64_t need = 0;
  if (rv == 0 && n > 0) {
    ++y->written;
  }
  if (rv == 0 && s->broken) {
    rv = store_refuse(s); /* a sync failure came in during the append */
  }
  if (rv == 0 && (sync || s->opt.fsync == TERN_FSYNC_ALWAYS) && s->dirty) {
    need = y->written;
    pthread_mutex_lock(&y->lock);
    y->want = need;
    y->fd = s->active_fd;
    y->seg = s->segs[s->nsegs - 1].number;
    pthread_cond_signal(&y->wake);
    pthread_mutex_unlock(&y->lock);
  }
  if (y->qlen == 0 && (rv != 0 || need == 0)) {
    return rv; /* nothing before it waits: done now */
  }
  waiting *w = &y->q[(y->qfirst + y->qlen) % y->qcap];
  ++y->qlen;
  w->batch = batch;
  w->need = need;
  w->status = rv;
  poke(s);
  return TERN_STORE_LATER;
}

void syncer_pause(tern_store_file *s) {
  struct syncer *y = s->syncer;
  if (y == NULL) {
    return;
  }
  pthread_mutex_lock(&y->lock);
  y->paused = 1;
  while (y->busy) {
    pthread_cond_wait(&y->idle, &y->lock);
  }
  pthread_mutex_unlock(&y->lock);
  /* An inline sync after a failed one could succeed and hide the loss. */
  collect(s);
}

void syncer_resume(tern_store_file *s) {
  struct syncer *y = s->syncer;
  if (y == NULL) {
    return;
  }
  pthread_mutex_lock(&y->lock);
  y->paused = 0;
  if (!s->dirty && !s->broken && y->written > y->synced) {
    y->synced = y->written; /* an inline sync covered every write */
  }
  if (y->want > y->synced) {
    pthread_cond_signal(&y->wake);
  }
  pthread_mutex_unlock(&y->lock);
  poke(s);
}

uint64_t syncer_fsyncs(const tern_store_file *s) {
  struct syncer *y = s->syncer;
  uint64_t n;
  if (y == NULL) {
    return 0;
  }
  pthread_mutex_lock(&y->lock);
  n = y->fsyncs;
  pthread_mutex_unlock(&y->lock);
  return n;
}

int tern_store_file_fd(const tern_store_file *s) {
  return s != NULL && s->syncer != NULL ? s->syncer->rfd : -1;
}

int tern_store_file_complete(tern_store_file *s, tern_hub *hub) {
  struct syncer *y;
  uint64_t synced;
  int count = 0;
  if (s == NULL || hub == NULL) {
    return TERN_ERR_INVALID;
  }
  y = s->syncer;
  if (y == NULL) {
    return 0;
  }
  /* Clear the readiness first: a sync that ends after this raises it
     again, so no wake-up is lost. */
  pthread_mutex_lock(&y->lock);
  drain_fd(y);
  pthread_mutex_unlock(&y->lock);
  synced = collect(s);
  while (y->qlen > 0 && front_done(s, synced)) {
    waiting w = y->q[y->qfirst];
    y->qfirst = (y->qfirst + 1) % y->qcap;
    --y->qlen;
    if (w.status == 0 && w.need > synced) {
      w.status = TERN_ERR_STORE; /* written, never durably */
    }
    /* TERN_ERR_STATE only when the hub failed the batch already (an append
       that returned an error while it waited); nothing to do then. */
    tern_hub_store_done(hub, w.batch, w.status);
    ++count;
  }
  return count;
}

/* ---- start and stop ----------------------------------------------------- */

static int open_fd(struct syncer *y) {
#if defined(__linux__)
  y->rfd = y->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return y->rfd < 0 ? -1 : 0;
#else
  int p[2];
  if (pipe(p) != 0) {
    return -1;
  }
  for (int i = 0; i < 2; ++i) {
    if (fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK) != 0 ||
        fcntl(p[i], F_SETFD, FD_CLOEXEC) != 0) {
      close(p[0]);
      close(p[1]);
      return -1;
    }
  }
  y->rfd = p[0];
  y->wfd = p[1];
  return 0;
#endif
}

int syncer_start(tern_store_file *s) {
  struct syncer *y;
  sigset_t all, old;
  int rv;
  if (!s->opt.sync_thread || s->opt.fsync == TERN_FSYNC_NEVER) {
    return 0;
  }
  y = mem_calloc(&s->mem, 1, sizeof(*y));
  if (y == NULL) {
    return TERN_ERR_NOMEM;
  }
  y->qcap = 16;
  y->q = mem_malloc(&s->mem, y->qcap * sizeof(*y->q));
  if (y->q == NULL) {
    mem_free(&s->mem, y);
    return TERN_ERR_NOMEM;
  }
  y->sys = s->sys;
  y->fd = -1;
  y->rfd = y->wfd = -1;
  pthread_mutex_init(&y->lock, NULL);
  pthread_cond_init(&y->wake, NULL);
  pthread_cond_init(&y->idle, NULL);
  s->syncer = y; /* syncer_free releases it from here on */
  if (open_fd(y) != 0) {
    return store_sys_error(s, "eventfd", NULL);
  }
  /* The thread takes no signals: the host's handlers run on its own
     threads, and fdatasync is never interrupted. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rv = pthread_create(&y->thread, NULL, run, y);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rv != 0) {
    errno = rv;
    return store_sys_error(s, "pthread_create", NULL);
  }
  y->started = 1;
  return 0;
}

void syncer_stop(tern_store_file *s) {
  struct syncer *y = s->syncer;
  if (y == NULL || !y->started) {
    return;
  }
  pthread_mutex_lock(&y->lock);
  y->stop = 1;
  pthread_cond_signal(&y->wake);
  pthread_mutex_unlock(&y->lock);
  pthread_join(y->thread, NULL);
  y->started = 0;
  collect(s);
}

void syncer_free(tern_store_file *s) {
  struct syncer *y = s->syncer;
  if (y == NULL) {
    return;
  }
  syncer_stop(s);
  if (y->rfd >= 0) {
    close(y->rfd);
  }
  if (y->wfd >= 0 && y->wfd != y->rfd) {
    close(y->wfd);
  }
  pthread_cond_destroy(&y->idle);
  pthread_cond_destroy(&y->wake);
  pthread_mutex_destroy(&y->lock);
  mem_free(&s->mem, y->q);
  mem_free(&s->mem, y);
  s->syncer = NULL;
}
