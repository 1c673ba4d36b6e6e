/*
 * The shipped loop: epoll(7) for readiness, one eventfd shared by every
 * waker of the loop, and timers in a list (a loop has few: the driver
 * uses one), which set epoll_wait's timeout.  tern_epoll_methods is its
 * tern_loop_methods table.
 *
 * A callback may delete any handle.  Deleted handles are only marked and
 * unlinked; they are freed at the end of the turn, so an epoll_event of
 * the same batch that still points to one finds it marked and skips it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <tern_posix.h>

/* One per socket of the loop: 24 bytes, as a dead one's callback is never
   called and its place holds the link of the dead list. */
typedef struct ep_io {
  int fd;
  int dead;
  union {
    tern_loop_io_cb cb;        /* while live */
    struct ep_io *next_dead;   /* once dead  */
  } u;
  void *arg;
} ep_io;

typedef struct ep_timer {
  tern_tstamp deadline; /* TERN_TSTAMP_NONE: stopped */
  uint64_t fired_turn;  /* the turn it last fired in */
  int dead;
  tern_loop_cb cb;
  void *arg;
  struct ep_timer *prev, *next;
  struct ep_timer *next_dead;
} ep_timer;

typedef struct ep_waker {
  atomic_int woken;
  int dead;
  tern_loop_cb cb;
  void *arg;
  struct ep_waker *prev, *next;
  struct ep_waker *next_dead;
} ep_waker;

struct tern_epoll {
  int epfd;
  int evfd;
  atomic_int stop;
  ep_timer *timers;
  /* Wakers are added and deleted on the loop thread only; wake only sets
     |woken| and writes the eventfd, so the list needs no lock. */
  ep_waker *wakers;
  ep_io *dead_ios;
  ep_timer *dead_timers;
  ep_waker *dead_wakers;
  uint64_t turn;
  char evfd_tag;
};

tern_tstamp tern_posix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (tern_tstamp)ts.tv_sec * TERN_SECONDS + (tern_tstamp)ts.tv_nsec;
}

static tern_tstamp ep_now(void *loop) {
  (void)loop;
  return tern_posix_now();
}

static uint32_t to_epoll(unsigned events) {
  uint32_t e = 0;
  if (events & TERN_IO_READ) {
    e |= EPOLLIN | EPOLLRDHUP;
  }
  if (events & TERN_IO_WRITE) {
    e |= EPOLLOUT;
  }
  return e;
}

static int io_add(void *loop, void **pio, int fd, unsigned events,
                  tern_loop_io_cb cb, void *arg) {
  tern_epoll *ep = loop;
  if (!ep || !pio || fd < 0 || !cb) {
    return TERN_ERR_INVALID;
  }
  ep_io *io = calloc(1, sizeof(*io));
  if (!io) {
    return TERN_ERR_NOMEM;
  }
  io->fd = fd;
  io->u.cb = cb;
  io->arg = arg;
  struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
  if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int rc = errno == ENOMEM ? TERN_ERR_NOMEM : TERN_ERR_STORE;
    free(io);
    return rc;
  }
  *pio = io;
  return 0;
}

static int io_set(void *loop, void *handle, unsigned events) {
  tern_epoll *ep = loop;
  ep_io *io = handle;
  if (!ep || !io || io->dead) {
    return TERN_ERR_INVALID;
  }
  struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
  if (epoll_ctl(ep->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) {
    return errno == ENOMEM ? TERN_ERR_NOMEM : TERN_ERR_STORE;
  }
  return 0;
}

static void io_del(void *loop, void *handle) {
  tern_epoll *ep = loop;
  ep_io *io = handle;
  if (!ep || !io || io->dead) {
    return;
  }
  epoll_ctl(ep->epfd, EPOLL_CTL_DEL, io->fd, NULL);
  io->dead = 1;
  io->u.next_dead = ep->dead_ios;
  ep->dead_ios = io;
}

static int timer_add(void *loop, void **ptimer, tern_loop_cb cb, void *arg) {
  tern_epoll *ep = loop;
  if (!ep || !ptimer || !cb) {
    return TERN_ERR_INVALID;
  }
  ep_timer *t = calloc(1, sizeof(*t));
  if (!t) {
    return TERN_ERR_NOMEM;
  }
  t->deadline = TERN_TSTAMP_NONE;
  t->cb = cb;
  t->arg = arg;
  t->next = ep->timers;
  if (ep->timers) {
    ep->timers->prev = t;
  }
  ep->timers = t;
  *ptimer = t;
  return 0;
}

static void timer_set(void *loop, void *handle, tern_tstamp deadline) {
  ep_timer *t = handle;
  (void)loop;
  if (t && !t->dead) {
    t->deadline = deadline;
  }
}

static void timer_del(void *loop, void *handle) {
  tern_epoll *ep = loop;
  ep_timer *t = handle;
  if (!ep || !t || t->dead) {
    return;
  }
  if (t->prev) {
    t->prev->next = t->next;
  } else {
    ep->timers = t->next;
  }
  if (t->next) {
    t->next->prev = t->prev;
  }
  t->dead = 1;
  t->next_dead = ep->dead_timers;
  ep->dead_timers = t;
}

static int waker_add(void *loop, void **pwaker, tern_loop_cb cb, void *arg) {
  tern_epoll *ep = loop;
  if (!ep || !pwaker || !cb) {
    return TERN_ERR_INVALID;
  }
  ep_waker *w = calloc(1, sizeof(*w));
  if (!w) {
    return TERN_ERR_NOMEM;
  }
  atomic_init(&w->woken, 0);
  w->cb = cb;
  w->arg = arg;
  w->next = ep->wakers;
  if (ep->wakers) {
    ep->wakers->prev = w;
  }
  ep->wakers = w;
  *pwaker = w;
  return 0;
}

static void kick(tern_epoll *ep) {
  uint64_t one = 1;
  /* EAGAIN means the counter is already nonzero: the loop will wake. */
  ssize_t n = write(ep->evfd, &one, sizeof(one));
  (void)n;
}

static void wake(void *loop, void *handle) {
  ep_waker *w = handle;
  if (!loop || !w) {
    return;
  }
  /* Only the first wake since the last call writes the eventfd. */
  if (atomic_exchange(&w->woken, 1) == 0) {
    kick(loop);
  }
}

static void waker_del(void *loop, void *handle) {
  tern_epoll *ep = loop;
  ep_waker *w = handle;
  if (!ep || !w || w->dead) {
    return;
  }
  if (w->prev) {
    w->prev->next = w->next;
  } else {
    ep->wakers = w->next;
  }
  if (w->next) {
    w->next->prev = w->prev;
  }
  w->dead = 1;
  w->next_dead = ep->dead_wakers;
  ep->dead_wakers = w;
}

static const tern_loop_methods epoll_methods = {
    .version = TERN_LOOP_METHODS_VERSION,
    .now = ep_now,
    .io_add = io_add,
    .io_set = io_set,
    .io_del = io_del,
    .timer_add = timer_add,
    .timer_set = timer_set,
    .timer_del = timer_del,
    .waker_add = waker_add,
    .wake = wake,
    .waker_del = waker_del,
};

const tern_loop_methods *tern_epoll_methods(void) { return &epoll_methods; }

int tern_epoll_new(tern_epoll **pep) {
  if (!pep) {
    return TERN_ERR_INVALID;
  }
  tern_epoll *ep = calloc(1, sizeof(*ep));
  if (!ep) {
    return TERN_ERR_NOMEM;
  }
  atomic_init(&ep->stop, 0);
  ep->epfd = epoll_create1(EPOLL_CLOEXEC);
  ep->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ep->evfd_tag};
  if (ep->epfd < 0 || ep->evfd < 0 ||
      epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->evfd, &ev) != 0) {
    int saved = errno;
    if (ep->epfd >= 0) {
      close(ep->epfd);
    }
    if (ep->evfd >= 0) {
      close(ep->evfd);
    }
    free(ep);
    errno = saved;
    return saved == ENOMEM ? TERN_ERR_NOMEM : TERN_ERR_STORE;
  }
  *pep = ep;
  return 0;
}

static void reap(tern_epoll *ep) {
  while (ep->dead_ios) {
    ep_io *io = ep->dead_ios;
    ep->dead_ios = io->u.next_dead;
    free(io);
  }
  while (ep->dead_timers) {
    ep_timer *t = ep->dead_timers;
    ep->dead_timers = t->next_dead;
    free(t);
  }
  while (ep->dead_wakers) {
    ep_waker *w = ep->dead_wakers;
    ep->dead_wakers = w->next_dead;
    free(w);
  }
}

void tern_epoll_del(tern_epoll *ep) {
  if (!ep) {
    return;
  }
  /* Handles the user forgot are freed too, rather than leaked. */
  while (ep->timers) {
    timer_del(ep, ep->timers);
  }
  while (ep->wakers) {
    waker_del(ep, ep->wakers);
  }
  reap(ep);
  close(ep->epfd);
  close(ep->evfd);
  free(ep);
}

static tern_tstamp next_deadline(const tern_epoll *ep) {
  tern_tstamp d = TERN_TSTAMP_NONE;
  for (const ep_timer *t = ep->timers; t; t = t->next) {
    if (t->deadline < d) {
      d = t->deadline;
    }
  }
  return d;
}

/* Fires the timers due at |now|, each at most once a turn: one re-armed
   for a time already past by its own callback waits for the next turn.
   A callback may add, re-arm or delete any timer, so the scan starts over
   after each call (the list is short). */
static int run_timers(tern_epoll *ep, tern_tstamp now) {
  int n = 0;
  ++ep->turn;
  for (;;) {
    ep_timer *due = NULL;
    for (ep_timer *t = ep->timers; t; t = t->next) {
      if (t->deadline <= now && t->fired_turn != ep->turn &&
          (!due || t->deadline < due->deadline)) {
        due = t;
      }
    }
    if (!due) {
      return n;
    }
    due->deadline = TERN_TSTAMP_NONE;
    due->fired_turn = ep->turn;
    due->cb(due->arg);
    ++n;
  }
}

/* Calls the callback of every woken waker.  A callback may delete any
   waker (unlinked at once), so the scan starts over after each call. */
static int run_wakers(tern_epoll *ep) {
  uint64_t count;
  ssize_t r = read(ep->evfd, &count, sizeof(count));
  (void)r;
  int n = 0;
  for (;;) {
    ep_waker *w = ep->wakers;
    while (w && atomic_exchange(&w->woken, 0) == 0) {
      w = w->next;
    }
    if (!w) {
      return n;
    }
    w->cb(w->arg);
    ++n;
  }
}

int tern_epoll_run_once(tern_epoll *ep, tern_duration max_wait) {
  if (!ep) {
    return TERN_ERR_INVALID;
  }
  tern_tstamp now = tern_posix_now();
  tern_tstamp deadline = next_deadline(ep);
  int timeout;
  if (deadline <= now) {
    timeout = 0;
  } else {
    tern_duration wait = deadline - now;
    if (max_wait < wait) {
      wait = max_wait;
    }
    if (wait == TERN_TSTAMP_NONE) {
      timeout = -1;
    } else if (wait >= (tern_duration)3600 * TERN_SECONDS) {
      timeout = 3600 * 1000;
    } else {
      /* Round up: waking early would only spin until the deadline. */
      timeout = (int)((wait + TERN_MILLISECONDS - 1) / TERN_MILLISECONDS);
    }
  }
  struct epoll_event evs[64];
  int nev = epoll_wait(ep->epfd, evs, 64, timeout);
  if (nev < 0) {
    if (errno != EINTR) {
      return TERN_ERR_STORE;
    }
    nev = 0;
  }
  int n = 0;
  for (int i = 0; i < nev; ++i) {
    if (evs[i].data.ptr == &ep->evfd_tag) {
      n += run_wakers(ep);
      continue;
    }
    ep_io *io = evs[i].data.ptr;
    if (io->dead) {
      continue;
    }
    unsigned what = 0;
    if (evs[i].events & (EPOLLIN | EPOLLRDHUP)) {
      what |= TERN_IO_READ;
    }
    if (evs[i].events & EPOLLOUT) {
      what |= TERN_IO_WRITE;
    }
    if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
      what |= TERN_IO_ERROR | TERN_IO_READ;
    }
    io->u.cb(io->arg, what);
    ++n;
  }
  n += run_timers(ep, tern_posix_now());
  reap(ep);
  return n;
}

int tern_epoll_run(tern_epoll *ep) {
  if (!ep) {
    return TERN_ERR_INVALID;
  }
  while (!atomic_exchange(&ep->stop, 0)) {
    int rc = tern_epoll_run_once(ep, TERN_TSTAMP_NONE);
    if (rc < 0) {
      return rc;
    }
  }
  return 0;
}

void tern_epoll_stop(tern_epoll *ep) {
  if (ep) {
    atomic_store(&ep->stop, 1);
    kick(ep);
  }
}
