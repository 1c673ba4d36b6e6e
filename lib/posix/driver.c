/*
 * The driver: one hub on one loop, through tern_loop_methods only.  It
 * owns the connected sockets, the listeners, the hub's timer, the hub's
 * events and the store's completion descriptor.
 *
 * Every entry from the loop (readiness, the timer, a waker) ends in
 * process(), which takes the hub's events, runs its due deadlines,
 * services the sockets that want to write (the "dirty" list: sockets the
 * hub returned from tern_hub_next_ready, sockets just read from, sockets
 * that drained, sockets asked for) and re-arms the timer.  A
 * socket writes with one writev per service: the bytes the kernel did not
 * take last time, then what one pull gave into the driver's scratch
 * buffer.  Bytes left over are kept in the socket's own buffer, and while
 * there are any the socket is not pulled: a slow reader holds at most
 * out_cap bytes here and the rest stays in the hub.  An idle socket holds
 * no buffer at all.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "posix/posix.h"

/* Reads per readiness report of one socket, so one busy peer cannot hold
   the loop (level-triggered: the rest is reported again). */
#define READS_PER_TURN 4
#define READ_BUF 65536
/* Passes of process() before it leaves the rest to the next turn. */
#define MAX_PASSES 16

typedef struct listener {
  tern_driver *d;
  int fd;
  void *io;
  posix_binding *b; /* a reference: NULL serves the binary framing */
  struct listener *next;
} listener;

/* Bindings looked at for one the host asks for again (tern_driver_adopt):
   the newest few, so a host that gives each socket its own user pays one
   binding per socket and no search of them all. */
#define BINDING_SEARCH 8

struct tern_driver {
  tern_mem mem; /* the host's allocator, or libc's behind the same calls */
  tern_hub *hub;
  const tern_loop_methods *m;
  void *loop;
  tern_driver_options o;
  void *timer;
  tern_tstamp armed;
  uint8_t *scratch; /* out_cap bytes: what pull writes into */
  uint8_t *rbuf;    /* READ_BUF bytes */
  tern_socket *sockets;
  posix_binding binary;    /* the binary sockets' (not on |bindings|) */
  posix_binding *bindings; /* the host's, newest first                */
  tern_socket *dirty;
  tern_socket *dead;
  listener *listeners;
  tern_store_file *store;
  void *store_io;
  int depth; /* process() nesting */
  int again; /* process() asked for while running */
  posix_hello_hook hello_hook;
  void *hello_arg;
  posix_turn_hook turn_hook;
  void *turn_arg;
  tern_driver_stats st;
};

size_t posix_driver_options_size(uint32_t version) {
  switch (version) {
  case TERN_DRIVER_OPTIONS_V1:
    return offsetof(tern_driver_options, mem);
  case TERN_DRIVER_OPTIONS_V2:
    return sizeof(tern_driver_options);
  default:
    return 0;
  }
}

/* libc behind tern_mem's calls, so that the driver has one way to
   allocate. */
static void *libc_malloc(size_t size, void *ud) {
  (void)ud;
  return malloc(size);
}
static void libc_free(void *ptr, void *ud) {
  (void)ud;
  free(ptr);
}
static void *libc_calloc(size_t n, size_t size, void *ud) {
  (void)ud;
  return calloc(n, size);
}
static void *libc_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  return realloc(ptr, size);
}

void posix_mem_init(tern_mem *m, const tern_mem *host) {
  if (host) {
    *m = *host;
  } else {
    tern_mem libc = {NULL, libc_malloc, libc_free, libc_calloc, libc_realloc};
    *m = libc;
  }
}

int posix_mem_valid(const tern_mem *m) {
  return !m || (m->malloc && m->free && m->calloc && m->realloc);
}

void *posix_malloc(const tern_driver *d, size_t size) {
  return d->mem.malloc(size, d->mem.user_data);
}

void *posix_calloc(const tern_driver *d, size_t n, size_t size) {
  return d->mem.calloc(n, size, d->mem.user_data);
}

void posix_free(const tern_driver *d, void *ptr) {
  d->mem.free(ptr, d->mem.user_data);
}

void tern_driver_options_default_versioned(uint32_t version,
                                           tern_driver_options *o) {
  if (!o) {
    return;
  }
  size_t size = posix_driver_options_size(version);
  if (size == 0) {
    o->version = 0;
    return;
  }
  memset(o, 0, size); /* a V1 caller's struct ends before |mem| */
  o->version = version;
  o->out_cap = 65536;
}

static void process(tern_driver *d);

/* ---- bindings ---------------------------------------------------------------- */

posix_binding *posix_binding_get(tern_driver *d, const tern_socket_handler *h,
                                 void *user) {
  posix_binding *b = d->bindings;
  for (int i = 0; b && i < BINDING_SEARCH; ++i, b = b->next) {
    if (b->h == h && b->user == user) {
      b->refs++;
      return b;
    }
  }
  b = posix_calloc(d, 1, sizeof(*b));
  if (!b) {
    return NULL;
  }
  b->d = d;
  b->h = h;
  b->user = user;
  b->refs = 1;
  b->next = d->bindings;
  if (d->bindings) {
    d->bindings->prev = b;
  }
  d->bindings = b;
  return b;
}

void posix_binding_put(posix_binding *b) {
  if (!b || --b->refs > 0) {
    return;
  }
  tern_driver *d = b->d;
  if (b->prev) {
    b->prev->next = b->next;
  } else {
    d->bindings = b->next;
  }
  if (b->next) {
    b->next->prev = b->prev;
  }
  posix_free(d, b);
}

/* ---- sockets ---------------------------------------------------------------- */

static void watch(tern_socket *s, unsigned events) {
  tern_driver *d = s->b->d;
  if (s->watching != events && s->io) {
    if (d->m->io_set(d->loop, s->io, events) == 0) {
      s->watching = events & (TERN_IO_READ | TERN_IO_WRITE);
    }
  }
}

static void mark_dirty(tern_socket *s) {
  if (!s->dirty && !s->dead) {
    s->dirty = 1;
    s->next_dirty = s->b->d->dirty;
    s->b->d->dirty = s;
  }
}

/* Closes |s|, calling its handler's close when |notify|. */
static void stream_close_as(tern_socket *s, int notify) {
  tern_driver *d = s->b->d;
  if (s->dead) {
    return;
  }
  s->dead = 1;
  if (s->io) {
    d->m->io_del(d->loop, s->io);
    s->io = NULL;
  }
  if (s->prev) {
    s->prev->next = s->next;
  } else {
    d->sockets = s->next;
  }
  if (s->next) {
    s->next->prev = s->prev;
  }
  if (s->conn) {
    /* In-flight messages go back to the session.  A connection the hub
       had not closed ends here without an event (the host knows). */
    tern_conn_del(s->conn);
    s->conn = NULL;
  }
  if (notify && s->b->h && s->b->h->close) {
    s->b->h->close(s->b->user, s); /* a converted socket's too */
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  d->st.buffered -= posix_socket_held(s);
  d->st.sockets--;
  d->st.closed++;
  s->prev = d->dead; /* |next| stays: a walk of the list may be on |s| */
  d->dead = s;
}

static void stream_close(tern_socket *s) { stream_close_as(s, 1); }

/* Frees dead socket |s| of |d|.  Its binding may be the last reference
   to a host's, whose server is gone: it is not read here but to drop it. */
static void stream_free(tern_driver *d, tern_socket *s) {
  posix_free(d, s->out);
  if (s->recording) {
    posix_free(d, posix_socket_hello(s));
  } else if (s->b != &d->binary) {
    posix_binding_put(s->b);
  }
  posix_free(d, s);
}

void posix_socket_drop_hello(tern_socket *s) {
  posix_hello *rec = posix_socket_hello(s);
  if (rec) {
    s->b = &rec->b.d->binary;
    s->recording = 0;
    posix_free(s->b->d, rec);
  }
}

static tern_ssize stream_pull(tern_socket *s, uint8_t *out, size_t cap,
                              tern_tstamp now) {
  if (!s->conn) {
    return s->b->h->pull(s->b->user, s, out, cap, now);
  }
  tern_ssize n = tern_conn_write(s->conn, out, cap, now);
  if (n == TERN_ERR_NOMEM) {
    /* The hub hands the connection back through tern_hub_next_ready once
       its expiry ran (tern_conn_write says so). */
    return 0;
  }
  return n;
}

/* Writes what |s| holds and what one pull gives, in one writev.  Keeps
   what the socket did not take.  Returns 0, or -1 when |s| was closed. */
static int stream_service(tern_socket *s, tern_tstamp now) {
  tern_driver *d = s->b->d;
  for (int round = 0; round < 8; ++round) {
    size_t held = posix_socket_held(s);
    size_t room = d->o.out_cap - held;
    tern_ssize n = 0;
    if (!s->pull_done && room > 0) {
      n = stream_pull(s, d->scratch, room, now);
      if (n < 0 || (n == 0 && s->ending)) {
        s->pull_done = 1; /* everything was given */
        n = 0;
      }
      d->st.pulled += (uint64_t)n;
    }
    if (held + (size_t)n == 0) {
      if (s->pull_done) {
        stream_close(s);
        return -1;
      }
      watch(s, TERN_IO_READ);
      return 0;
    }
    struct iovec iov[2];
    int niov = 0;
    if (held) {
      iov[niov].iov_base = s->out->bytes + s->out->off;
      iov[niov++].iov_len = held;
    }
    if (n > 0) {
      iov[niov].iov_base = d->scratch;
      iov[niov++].iov_len = (size_t)n;
    }
    ssize_t w;
    do {
      w = writev(s->fd, iov, niov);
    } while (w < 0 && errno == EINTR);
    d->st.writes++;
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      stream_close(s); /* the peer is gone */
      return -1;
    }
    size_t took = w > 0 ? (size_t)w : 0;
    d->st.bytes_out += took;
    size_t total = held + (size_t)n;
    if (took == total) {
      d->st.buffered -= held;
      if (s->out) {
        /* Drained: a socket that was slow once holds nothing while idle. */
        posix_free(d, s->out);
        s->out = NULL;
      }
      /* Everything went out; a pull that filled the room may have more,
         and one that did not says so with 0 next round. */
      continue;
    }
    /* The socket is full: keep the rest (at most out_cap bytes). */
    if (!s->out) {
      s->out = posix_malloc(d, sizeof(posix_held) + d->o.out_cap);
      if (!s->out) {
        stream_close(s); /* cannot keep its bytes: the socket is broken */
        return -1;
      }
    }
    uint8_t *b = s->out->bytes;
    if (took < held) {
      memmove(b, b + s->out->off + took, held - took);
      memcpy(b + held - took, d->scratch, (size_t)n);
    } else {
      memcpy(b, d->scratch + (took - held), total - took);
    }
    s->out->off = 0;
    s->out->len = (uint32_t)(total - took);
    d->st.buffered += s->out->len;
    d->st.buffered -= held;
    if (s->out->len > d->st.buffered_max) {
      d->st.buffered_max = s->out->len;
    }
    d->st.blocked++;
    if (s->pull_done) {
      /* Ending, and the peer does not read: drop the goodbye rather than
         hold the socket with no deadline. */
      stream_close(s);
      return -1;
    }
    watch(s, TERN_IO_READ | TERN_IO_WRITE);
    return 0;
  }
  /* Still more after several full rounds: leave the loop to others and
     come back on the next turn. */
  mark_dirty(s);
  return 0;
}

static void stream_read(tern_socket *s, tern_tstamp now) {
  tern_driver *d = s->b->d;
  for (int i = 0; i < READS_PER_TURN && !s->dead; ++i) {
    ssize_t n = read(s->fd, d->rbuf, READ_BUF);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    if (n <= 0) { /* EOF or a reset: the peer is gone */
      stream_close(s);
      return;
    }
    d->st.bytes_in += (uint64_t)n;
    if (s->ending) {
      continue; /* bytes after the end are not served */
    }
    if (s->conn) {
      posix_hello *rec = posix_socket_hello(s);
      if (rec && tern_conn_get_session(s->conn) == NULL) {
        size_t keep = (size_t)n;
        if (rec->len + keep > POSIX_HELLO_RECORD) {
          keep = POSIX_HELLO_RECORD - (size_t)rec->len;
        }
        memcpy(rec->bytes + rec->len, d->rbuf, keep);
        rec->len = (uint16_t)(rec->len + keep);
      }
      /* An error closed the connection and queued its end event, which
         process() acts on. */
      (void)tern_conn_read(s->conn, d->rbuf, (size_t)n, now);
      if (s->recording && tern_conn_get_session(s->conn) != NULL) {
        posix_socket_drop_hello(s); /* bound where it is: nothing to hand over */
      }
    } else {
      int rc = s->b->h->read(s->b->user, s, d->rbuf, (size_t)n, now);
      if (rc < 0) {
        s->ending = 1;
      }
      mark_dirty(s);
    }
  }
}

static void stream_io(void *arg, unsigned events) {
  tern_socket *s = arg;
  tern_driver *d = s->b->d;
  tern_tstamp now = d->m->now(d->loop);
  d->depth++;
  if ((events & TERN_IO_WRITE) && !s->dead) {
    mark_dirty(s);
  }
  if ((events & (TERN_IO_READ | TERN_IO_ERROR)) && !s->dead) {
    stream_read(s, now);
  }
  d->depth--;
  process(d);
}

/* A socket for |fd| served with host binding |b| (a reference is taken),
   or the binary framing when |b| is NULL, recording the bytes before its
   HELLO when |record|. */
static int stream_new(tern_driver *d, int fd, posix_binding *b, int record,
                      tern_socket **ps) {
  tern_tstamp now = d->m->now(d->loop);
  tern_socket *s = posix_calloc(d, 1, sizeof(*s));
  int rc = s ? 0 : TERN_ERR_NOMEM;
  if (rc == 0) {
    s->b = b ? b : &d->binary;
  }
  if (rc == 0 && record && !b) {
    posix_hello *rec = posix_malloc(d, sizeof(*rec));
    rc = rec ? 0 : TERN_ERR_NOMEM;
    if (rec) {
      rec->b = d->binary;
      rec->len = 0;
      s->b = &rec->b;
      s->recording = 1;
    }
  }
  if (rc == 0 && !b) {
    rc = tern_conn_new(&s->conn, d->hub, now);
  }
  if (rc == 0) {
    s->fd = fd;
    if (s->conn) {
      tern_conn_set_user_data(s->conn, s);
    }
    rc = d->m->io_add(d->loop, &s->io, fd, TERN_IO_READ, stream_io, s);
    s->watching = TERN_IO_READ;
  }
  if (rc != 0) {
    if (s) {
      tern_conn_del(s->conn);
      posix_free(d, posix_socket_hello(s));
      posix_free(d, s);
    }
    close(fd);
    return rc;
  }
  if (b) {
    b->refs++;
  }
  s->next = d->sockets;
  if (d->sockets) {
    d->sockets->prev = s;
  }
  d->sockets = s;
  d->st.sockets++;
  d->st.accepted++;
  if (b && b->h->open) {
    rc = b->h->open(b->user, s, now);
    if (rc != 0) {
      stream_close_as(s, 0); /* no close call for a socket its open refused */
      return rc < 0 ? rc : TERN_ERR_INVALID;
    }
  }
  mark_dirty(s);
  if (ps) {
    *ps = s;
  }
  return 0;
}

static int nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int check_handler(const tern_socket_handler *h) {
  return !h || (h->version >= TERN_SOCKET_HANDLER_V1 && h->read && h->pull);
}

int tern_driver_adopt(tern_driver *d, int fd, const tern_socket_handler *h,
                      void *user, tern_socket **ps) {
  if (!d || fd < 0 || !check_handler(h)) {
    if (fd >= 0) {
      close(fd);
    }
    return TERN_ERR_INVALID;
  }
  if (nonblocking(fd) != 0) {
    close(fd);
    return TERN_ERR_INVALID;
  }
  posix_binding *b = NULL;
  if (h) {
    b = posix_binding_get(d, h, user);
    if (!b) {
      close(fd);
      return TERN_ERR_NOMEM;
    }
  }
  d->depth++;
  int rc = stream_new(d, fd, b, d->hello_hook != NULL, ps);
  d->depth--;
  posix_binding_put(b); /* the socket holds its own */
  process(d);
  return rc;
}

int posix_driver_adopt_bound(tern_driver *d, int fd, posix_binding *b,
                             tern_socket **ps) {
  if (fd < 0) {
    return TERN_ERR_INVALID;
  }
  if (nonblocking(fd) != 0) {
    close(fd);
    return TERN_ERR_INVALID;
  }
  d->depth++;
  int rc = stream_new(d, fd, b, 0, ps);
  d->depth--;
  process(d);
  return rc;
}

int posix_driver_adopt_replay(tern_driver *d, int fd, const uint8_t *bytes,
                              size_t len) {
  tern_socket *s;
  if (nonblocking(fd) != 0) {
    close(fd);
    return TERN_ERR_INVALID;
  }
  d->depth++;
  int rc = stream_new(d, fd, NULL, 0, &s);
  if (rc == 0 && len > 0) {
    d->st.bytes_in += len;
    (void)tern_conn_read(s->conn, bytes, len, d->m->now(d->loop));
  }
  d->depth--;
  process(d);
  return rc;
}

void posix_stream_detach(tern_socket *s, int *pfd, uint8_t **phello,
                         size_t *phello_len) {
  posix_hello *rec = posix_socket_hello(s); /* a host socket records none */
  *pfd = s->fd;
  *phello = rec ? rec->bytes : NULL; /* the record's block: bytes first */
  *phello_len = rec ? rec->len : 0;
  s->fd = -1;
  if (rec) {
    s->b = &rec->b.d->binary; /* the record is the caller's now */
    s->recording = 0;
  }
  stream_close(s);
}

/* ---- public socket calls ------------------------------------------------------ */

void tern_socket_want_write(tern_socket *s) {
  if (!s || s->dead) {
    return;
  }
  tern_driver *d = s->b->d;
  mark_dirty(s);
  if (d->depth == 0) {
    /* Called from outside the driver's callbacks: let the loop come back
       at once rather than rely on a tern_driver_process. */
    d->m->timer_set(d->loop, d->timer, 0);
    d->armed = 0;
  }
}

void tern_socket_end(tern_socket *s) {
  if (!s || s->dead || s->ending) {
    return;
  }
  s->ending = 1;
  if (s->conn) {
    tern_driver *d = s->b->d;
    tern_conn_goaway(s->conn, TERN_GOAWAY_REPLACED, 0, d->m->now(d->loop));
  }
  tern_socket_want_write(s);
}

int tern_socket_fd(const tern_socket *s) { return s ? s->fd : -1; }

tern_conn *tern_socket_get_conn(const tern_socket *s) {
  return s ? s->conn : NULL;
}

tern_driver *tern_socket_get_driver(const tern_socket *s) {
  return s ? s->b->d : NULL;
}

void tern_socket_set_user_data(tern_socket *s, void *user_data) {
  if (s) {
    s->user_data = user_data;
  }
}

void *tern_socket_get_user_data(const tern_socket *s) {
  return s ? s->user_data : NULL;
}

/* ---- the hub's side ------------------------------------------------------------- */

static void handle_event(tern_driver *d, const tern_event *ev) {
  tern_socket *s = ev->conn ? tern_conn_get_user_data(ev->conn) : NULL;
  if (ev->type == TERN_EV_CONN_HELLO && s && !s->b->h && d->hello_hook &&
      d->hello_hook(d->hello_arg, d, s, ev)) {
    return; /* handed to another driver */
  }
  if (d->o.on_event) {
    d->o.on_event(d->o.user_data, d, ev);
  }
  if ((ev->type == TERN_EV_CONN_DEAD || ev->type == TERN_EV_CONN_CLOSED) &&
      ev->conn) {
    /* The one rule of tern_conn_new: write out what is left, until
       TERN_ERR_CLOSED, then close and delete. */
    s = tern_conn_get_user_data(ev->conn);
    if (s && !s->dead) {
      s->ending = 1;
      mark_dirty(s);
    }
  }
}

static void process(tern_driver *d) {
  if (d->depth > 0) {
    d->again = 1;
    return;
  }
  d->depth++;
  int pass = 0;
  do {
    d->again = 0;
    tern_tstamp now = d->m->now(d->loop);
    if (tern_hub_get_expiry(d->hub) <= now) {
      tern_hub_handle_expiry(d->hub, now);
    }
    if (d->turn_hook) {
      d->turn_hook(d->turn_arg, now);
    }
    tern_event ev;
    while (tern_hub_next_event(d->hub, &ev) == 1) {
      d->st.events++;
      handle_event(d, &ev);
    }
    tern_conn *c;
    while ((c = tern_hub_next_ready(d->hub)) != NULL) {
      tern_socket *s = tern_conn_get_user_data(c);
      if (s && !s->dead && !s->out) {
        mark_dirty(s);
      }
    }
    tern_socket *list = d->dirty;
    d->dirty = NULL;
    while (list) {
      tern_socket *s = list;
      list = s->next_dirty;
      s->dirty = 0;
      if (s->dead) {
        continue;
      }
      stream_service(s, now);
      if (d->dirty) {
        d->again = 1;
      }
    }
    /* Writing made events (SENT, CONN_CLOSED after a GOAWAY...) or the
       host asked for more: another pass. */
  } while ((d->again || d->dirty) && ++pass < MAX_PASSES);
  if (d->dead) {
    /* Passes used up: a socket closed after it was put on the dirty list
       for the next pass is still on it, and is freed now. */
    for (tern_socket **ps = &d->dirty; *ps;) {
      if ((*ps)->dead) {
        *ps = (*ps)->next_dirty;
      } else {
        ps = &(*ps)->next_dirty;
      }
    }
  }
  while (d->dead) {
    tern_socket *s = d->dead;
    d->dead = s->prev;
    stream_free(d, s);
  }
  d->depth--;
  tern_tstamp expiry = d->dirty || d->again ? 0 : tern_hub_get_expiry(d->hub);
  if (expiry != d->armed) {
    d->m->timer_set(d->loop, d->timer, expiry);
    d->armed = expiry;
  }
}

static void on_timer(void *arg) {
  tern_driver *d = arg;
  d->armed = TERN_TSTAMP_NONE; /* it fired: no longer armed */
  process(d);
}

int posix_driver_set_turn_hook(tern_driver *d, posix_turn_hook fn,
                               void *arg) {
  if (fn && d->turn_hook) {
    return TERN_ERR_STATE;
  }
  d->turn_hook = fn;
  d->turn_arg = fn ? arg : NULL;
  return 0;
}

void tern_driver_process(tern_driver *d) {
  if (d) {
    process(d);
  }
}

tern_hub *tern_driver_get_hub(const tern_driver *d) {
  return d ? d->hub : NULL;
}

void tern_driver_get_stats(const tern_driver *d, tern_driver_stats *st,
                           size_t size) {
  if (!d || !st) {
    return;
  }
  if (size > sizeof(d->st)) {
    memset((char *)st + sizeof(d->st), 0, size - sizeof(d->st));
    size = sizeof(d->st);
  }
  memcpy(st, &d->st, size);
}

/* ---- listeners and the store ------------------------------------------------- */

static void on_accept(void *arg, unsigned events) {
  listener *l = arg;
  tern_driver *d = l->d;
  (void)events;
  d->depth++;
  for (int i = 0; i < 64; ++i) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      break; /* EAGAIN, or a connection that died in the backlog */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)stream_new(d, fd, l->b, d->hello_hook != NULL, NULL);
  }
  d->depth--;
  process(d);
}

int posix_listen_socket(const char *host, uint16_t port, int reuseport,
                        uint16_t *pport) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof(ss));
  if (!host || !*host) {
    host = "127.0.0.1";
  }
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sslen = sizeof(*sin);
  } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sslen = sizeof(*sin6);
  } else {
    return TERN_ERR_INVALID;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return TERN_ERR_STORE;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuseport) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 511) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return TERN_ERR_STORE;
  }
  if (pport) {
    *pport = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
  }
  return fd;
}

int posix_driver_listen_fd(tern_driver *d, int fd, posix_binding *b) {
  listener *l = posix_calloc(d, 1, sizeof(*l));
  if (!l) {
    close(fd);
    return TERN_ERR_NOMEM;
  }
  l->d = d;
  l->fd = fd;
  int rc = d->m->io_add(d->loop, &l->io, fd, TERN_IO_READ, on_accept, l);
  if (rc != 0) {
    close(fd);
    posix_free(d, l);
    return rc;
  }
  if (b) {
    b->refs++;
  }
  l->b = b;
  l->next = d->listeners;
  d->listeners = l;
  return 0;
}

int tern_driver_listen(tern_driver *d, const char *host, uint16_t port,
                       const tern_socket_handler *h, void *user,
                       uint16_t *pport) {
  if (!d || !check_handler(h)) {
    return TERN_ERR_INVALID;
  }
  posix_binding *b = NULL;
  if (h) {
    b = posix_binding_get(d, h, user);
    if (!b) {
      return TERN_ERR_NOMEM;
    }
  }
  int fd = posix_listen_socket(host, port, 0, pport);
  int rc = fd < 0 ? fd : posix_driver_listen_fd(d, fd, b);
  posix_binding_put(b); /* the listener holds its own */
  return rc;
}

static void on_store(void *arg, unsigned events) {
  tern_driver *d = arg;
  (void)events;
  tern_store_file_complete(d->store, d->hub);
  process(d);
}

int tern_driver_watch_store(tern_driver *d, tern_store_file *store) {
  if (!d || !store) {
    return TERN_ERR_INVALID;
  }
  if (d->store) {
    return TERN_ERR_STATE;
  }
  int fd = tern_store_file_fd(store);
  if (fd < 0) {
    return 0; /* it completes every batch inside append */
  }
  int rc = d->m->io_add(d->loop, &d->store_io, fd, TERN_IO_READ, on_store, d);
  if (rc == 0) {
    d->store = store;
  }
  return rc;
}

/* ---- life ------------------------------------------------------------------------ */

int tern_driver_new(tern_driver **pd, tern_hub *hub, const tern_loop_methods *m,
                    void *loop, const tern_driver_options *o) {
  tern_driver_options def;
  if (!o) {
    tern_driver_options_default(&def);
    o = &def;
  }
  size_t osize = o ? posix_driver_options_size(o->version) : 0;
  if (!pd || !hub || !m || m->version < TERN_LOOP_METHODS_V1 || !m->now ||
      !m->io_add || !m->io_set || !m->io_del || !m->timer_add ||
      !m->timer_set || !m->timer_del || !m->waker_add || !m->wake ||
      !m->waker_del || osize == 0 || o->out_cap < 1024 ||
      o->out_cap > ((size_t)64 << 20)) {
    return TERN_ERR_INVALID;
  }
  tern_driver_options opt;
  memset(&opt, 0, sizeof(opt));
  memcpy(&opt, o, osize);
  if (!posix_mem_valid(opt.mem)) {
    return TERN_ERR_INVALID;
  }
  tern_mem mem;
  posix_mem_init(&mem, opt.mem);
  opt.mem = NULL; /* the copy is d->mem; the host's struct may go */
  tern_driver *d = mem.calloc(1, sizeof(*d), mem.user_data);
  if (!d) {
    return TERN_ERR_NOMEM;
  }
  d->mem = mem;
  d->hub = hub;
  d->m = m;
  d->loop = loop;
  d->o = opt;
  d->armed = TERN_TSTAMP_NONE;
  d->binary.d = d;
  d->binary.refs = 1; /* never dropped: it is the driver's */
  d->scratch = posix_malloc(d, opt.out_cap);
  d->rbuf = d->scratch ? posix_malloc(d, READ_BUF) : NULL;
  int rc = d->scratch && d->rbuf ? 0 : TERN_ERR_NOMEM;
  if (rc == 0) {
    rc = m->timer_add(loop, &d->timer, on_timer, d);
  }
  if (rc != 0) {
    posix_free(d, d->scratch);
    posix_free(d, d->rbuf);
    posix_free(d, d);
    return rc;
  }
  /* The hub may have deadlines already (a restored store). */
  process(d);
  *pd = d;
  return 0;
}

void tern_driver_del(tern_driver *d) {
  if (!d) {
    return;
  }
  d->depth++; /* no process() from the close calls */
  while (d->listeners) {
    listener *l = d->listeners;
    d->listeners = l->next;
    d->m->io_del(d->loop, l->io);
    close(l->fd);
    posix_binding_put(l->b);
    posix_free(d, l);
  }
  while (d->sockets) {
    stream_close(d->sockets);
  }
  while (d->dead) {
    tern_socket *s = d->dead;
    d->dead = s->prev;
    stream_free(d, s);
  }
  while (d->bindings) {
    /* Held by a tern_http not deleted first: its del no longer can. */
    posix_binding *b = d->bindings;
    d->bindings = b->next;
    posix_free(d, b);
  }
  if (d->store_io) {
    d->m->io_del(d->loop, d->store_io);
  }
  d->m->timer_del(d->loop, d->timer);
  tern_mem mem = d->mem;
  mem.free(d->scratch, mem.user_data);
  mem.free(d->rbuf, mem.user_data);
  mem.free(d, mem.user_data);
}

void posix_driver_unlisten(tern_driver *d, const void *user) {
  listener **pl = &d->listeners;
  while (*pl) {
    listener *l = *pl;
    if (l->b && l->b->user == user) {
      *pl = l->next;
      d->m->io_del(d->loop, l->io);
      close(l->fd);
      posix_binding_put(l->b);
      posix_free(d, l); /* it came from posix_calloc */
    } else {
      pl = &l->next;
    }
  }
}

void posix_driver_close_sockets(tern_driver *d, const void *user) {
  /* Closed sockets stay in memory until process() frees them, which the
     depth keeps from happening here, and keep their |next|: following it
     from one that a close call closed still reaches every live socket
     behind it. */
  d->depth++;
  tern_socket *s = d->sockets;
  while (s) {
    tern_socket *next = s->next;
    if (!s->dead && s->b->h && s->b->user == user) {
      stream_close(s);
    }
    s = next;
  }
  d->depth--;
}

void posix_socket_set_conn(tern_socket *s, tern_conn *conn, posix_binding *b) {
  b->refs++;
  posix_binding_put(s->b); /* a host socket's: not the binary one */
  s->b = b;
  s->conn = conn;
  s->user_data = NULL;
  tern_conn_set_user_data(conn, s);
}

void posix_driver_set_hello_hook(tern_driver *d, posix_hello_hook hook,
                                 void *arg) {
  d->hello_hook = hook;
  d->hello_arg = arg;
}

/* Internal accessors for the inbox and the workers. */
const tern_loop_methods *posix_driver_methods(const tern_driver *d,
                                              void **ploop) {
  *ploop = d->loop;
  return d->m;
}
