/*
 * tern_workers: N threads, each an epoll loop running one hub through a
 * driver, with an inbox for publishes from other threads.  Sessions are
 * sharded by tern_shard_of: publishes go to the owning worker's inbox;
 * a receiver's connection, accepted by whichever worker the kernel chose
 * (SO_REUSEPORT), waits for its HELLO there (the hubs run with
 * hello_accept) and is handed, socket and HELLO bytes, to the owner, which
 * replays the bytes into a new tern_conn of its own hub.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/layout.h"
#include "posix/posix.h"

typedef struct worker {
  struct tern_workers *w;
  uint32_t index;
  tern_epoll *ep;
  tern_hub *hub;
  tern_driver *d;
  tern_inbox *in;
  pthread_t thread;
  int running;
} worker;

struct tern_workers {
  tern_mem mem; /* the driver options' allocator, or libc */
  uint32_t n;
  tern_workers_options o;
  int host_accepts; /* the host's settings asked for hello_accept */
  int started;
  worker *workers;
};

void tern_workers_options_default_versioned(uint32_t version,
                                            tern_workers_options *o) {
  if (!o) {
    return;
  }
  if (version != TERN_WORKERS_OPTIONS_V1) {
    o->version = 0;
    return;
  }
  memset(o, 0, sizeof(*o));
  o->version = version;
  o->nthreads = 1;
}

static void on_event(void *arg, tern_driver *d, const tern_event *ev) {
  worker *wk = arg;
  if (wk->w->o.on_event) {
    wk->w->o.on_event(wk->w->o.user_data, wk->index, d, ev);
  }
}

static void on_done(void *arg, uint64_t cookie, int rc) {
  worker *wk = arg;
  if (wk->w->o.on_done) {
    wk->w->o.on_done(wk->w->o.user_data, wk->index, cookie, rc);
  }
}

/* Sees every CONN_HELLO first: hands the connection to the session's
   owner, or accepts it here (unless the host accepts itself). */
static int hello_hook(void *arg, tern_driver *d, tern_socket *s,
                      const tern_event *ev) {
  worker *wk = arg;
  tern_workers *w = wk->w;
  (void)d; /* the socket's binding knows it */
  uint32_t owner = tern_shard_of(ev->session_key, ev->session_keylen, w->n);
  tern_tstamp now = tern_posix_now();
  if (owner != wk->index) {
    posix_hello *rec = posix_socket_hello(s);
    if (!rec || rec->len >= POSIX_HELLO_RECORD) {
      /* More bytes than a HELLO before it: cannot be replayed whole. */
      tern_conn_goaway(s->conn, TERN_GOAWAY_REJECTED, 0, now);
      return 1;
    }
    int fd;
    uint8_t *hello;
    size_t len;
    posix_stream_detach(s, &fd, &hello, &len);
    (void)posix_inbox_handover(w->workers[owner].in, fd, hello, len);
    return 1;
  }
  posix_socket_drop_hello(s);
  if (!w->host_accepts) {
    tern_conn_accept(s->conn, now); /* LIMIT closes it, with its event */
  }
  return 0;
}

static void *run(void *arg) {
  worker *wk = arg;
  tern_epoll_run(wk->ep);
  return NULL;
}

static void worker_free(worker *wk) {
  tern_inbox_del(wk->in);
  tern_driver_del(wk->d);
  tern_hub_del(wk->hub);
  tern_epoll_del(wk->ep);
}

int tern_workers_new(tern_workers **pw, const tern_workers_options *o) {
  tern_workers_options def;
  if (!o) {
    tern_workers_options_default(&def);
    o = &def;
  }
  if (!pw || o->version != TERN_WORKERS_OPTIONS_V1 || o->nthreads == 0 ||
      o->nthreads > 1024) {
    return TERN_ERR_INVALID;
  }
  /* The caller's driver options, in the layout it knows. */
  tern_driver_options dopt;
  tern_driver_options_default(&dopt);
  if (o->driver) {
    size_t size = posix_driver_options_size(o->driver->version);
    if (size == 0 || !posix_mem_valid(size > offsetof(tern_driver_options, mem)
                                          ? o->driver->mem
                                          : NULL)) {
      return TERN_ERR_INVALID;
    }
    memcpy(&dopt, o->driver, size);
  }
  /* The caller's settings in the layout it knows, the rest at defaults:
     its struct may be shorter than this header's. */
  tern_settings set;
  tern_settings_default(&set);
  if (o->settings) {
    size_t len = layout_settings(o->settings->version);
    if (len == 0) {
      return TERN_ERR_INVALID;
    }
    memcpy(&set, o->settings, len);
    set.version = TERN_SETTINGS_VERSION;
  }
  const tern_mem *hmem = dopt.version >= TERN_DRIVER_OPTIONS_V2 ? dopt.mem : NULL;
  tern_mem mem;
  posix_mem_init(&mem, hmem);
  tern_workers *w = mem.calloc(1, sizeof(*w), mem.user_data);
  if (!w) {
    return TERN_ERR_NOMEM;
  }
  w->mem = mem;
  w->n = o->nthreads;
  w->o = *o;
  w->o.driver = NULL; /* copied into dopt; the caller's may go */
  w->o.settings = NULL;
  w->workers = mem.calloc(w->n, sizeof(worker), mem.user_data);
  if (!w->workers) {
    mem.free(w, mem.user_data);
    return TERN_ERR_NOMEM;
  }
  w->host_accepts = set.hello_accept != 0;
  if (w->n > 1) {
    set.hello_accept = 1; /* a HELLO waits until its owner is known */
  }
  uint64_t seed = set.seed;
  int rc = 0;
  for (uint32_t i = 0; i < w->n && rc == 0; ++i) {
    worker *wk = &w->workers[i];
    wk->w = w;
    wk->index = i;
    set.seed = seed + i;
    dopt.on_event = on_event;
    dopt.user_data = wk;
    rc = tern_epoll_new(&wk->ep);
    if (rc == 0) {
      rc = tern_hub_new(&wk->hub, &set, hmem);
    }
    if (rc == 0) {
      rc = tern_driver_new(&wk->d, wk->hub, tern_epoll_methods(), wk->ep,
                           &dopt);
    }
    if (rc == 0) {
      rc = tern_inbox_new(&wk->in, wk->d, on_done, wk);
    }
    if (rc == 0 && w->n > 1) {
      posix_driver_set_hello_hook(wk->d, hello_hook, wk);
    }
  }
  if (rc != 0) {
    for (uint32_t i = 0; i < w->n; ++i) {
      worker_free(&w->workers[i]);
    }
    mem.free(w->workers, mem.user_data);
    mem.free(w, mem.user_data);
    return rc;
  }
  *pw = w;
  return 0;
}

int tern_workers_listen(tern_workers *w, const char *host, uint16_t port,
                        uint16_t *pport) {
  if (!w) {
    return TERN_ERR_INVALID;
  }
  if (w->started) {
    return TERN_ERR_STATE;
  }
  for (uint32_t i = 0; i < w->n; ++i) {
    /* Port 0: the first socket picks one, the others join it. */
    int fd = posix_listen_socket(host, port, 1, &port);
    if (fd < 0) {
      return fd;
    }
    int rc = posix_driver_listen_fd(w->workers[i].d, fd, NULL);
    if (rc != 0) {
      return rc;
    }
  }
  if (pport) {
    *pport = port;
  }
  return 0;
}

int tern_workers_start(tern_workers *w) {
  if (!w) {
    return TERN_ERR_INVALID;
  }
  if (w->started) {
    return TERN_ERR_STATE;
  }
  for (uint32_t i = 0; i < w->n; ++i) {
    worker *wk = &w->workers[i];
    if (pthread_create(&wk->thread, NULL, run, wk) != 0) {
      tern_workers_stop(w);
      return TERN_ERR_NOMEM;
    }
    wk->running = 1;
    w->started = 1;
  }
  return 0;
}

int tern_workers_publish_versioned(tern_workers *w, const uint8_t *key,
                                   size_t keylen, uint32_t desc_version,
                                   const tern_msg_desc *desc) {
  if (!w || !key || keylen == 0) {
    return TERN_ERR_INVALID;
  }
  uint32_t owner = tern_shard_of(key, keylen, w->n);
  return tern_inbox_publish_versioned(w->workers[owner].in, key, keylen,
                                      desc_version, desc);
}

uint32_t tern_workers_count(const tern_workers *w) { return w ? w->n : 0; }

tern_driver *tern_workers_get_driver(const tern_workers *w, uint32_t i) {
  return w && i < w->n ? w->workers[i].d : NULL;
}

void tern_workers_stop(tern_workers *w) {
  if (!w) {
    return;
  }
  for (uint32_t i = 0; i < w->n; ++i) {
    if (w->workers[i].running) {
      tern_epoll_stop(w->workers[i].ep);
    }
  }
  for (uint32_t i = 0; i < w->n; ++i) {
    if (w->workers[i].running) {
      pthread_join(w->workers[i].thread, NULL);
      w->workers[i].running = 0;
    }
  }
  w->started = 0;
}

void tern_workers_del(tern_workers *w) {
  if (!w) {
    return;
  }
  tern_workers_stop(w);
  /* Inboxes first: a hand-over queued on one worker holds a socket. */
  for (uint32_t i = 0; i < w->n; ++i) {
    tern_inbox_del(w->workers[i].in);
    w->workers[i].in = NULL;
  }
  for (uint32_t i = 0; i < w->n; ++i) {
    worker_free(&w->workers[i]);
  }
  tern_mem mem = w->mem;
  mem.free(w->workers, mem.user_data);
  mem.free(w, mem.user_data);
}
