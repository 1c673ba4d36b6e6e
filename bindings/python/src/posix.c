/*
 * tern._tern's wrapping of libtern-posix (tern_posix.h): subscriber tokens,
 * tern.Workers (N native threads, one hub each, serving the binary framing
 * over TCP) and the HTTP server on the workers (tern.Request).
 *
 * Threads.  The worker threads run without the GIL.  They never call
 * Python on the hot path: publish results and the hub events the host
 * asked for are copied into a queue under a mutex, which Python drains
 * (Workers.next_result, Workers.next_event; an eventfd, Workers.fileno(),
 * is readable while anything waits, for asyncio's add_reader).  The one
 * exception is the HTTP handler: each request is handed to the Python
 * callable on the worker's thread, with the GIL taken (PyGILState_Ensure),
 * and must be answered inside that call (the C rule: a request is answered
 * on its loop's thread).  Python methods that wait for the threads
 * (stop, close) release the GIL first, so that a handler waiting for it
 * can finish its turn.
 *
 * Lifetimes.  A started Workers holds a reference to itself until stop()
 * or close(): its threads use it.  Request objects point at their request
 * only during the handler call; afterwards they raise StateError.
 */
#include "tern_py.h"

#ifdef TERN_PY_POSIX

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <structmember.h>

#include <tern_posix.h>

PyTypeObject *tp_WorkersType;
PyTypeObject *tp_RequestType;

/* ---- tokens ----------------------------------------------------------------- */

static PyObject *m_token_make(PyObject *self, PyObject *args, PyObject *kw) {
  (void)self;
  static char *kwlist[] = {"secret", "session", "expiry", NULL};
  PyObject *secret, *session, *expo;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO:token_make", kwlist,
                                   &secret, &session, &expo)) {
    return NULL;
  }
  uint64_t expiry;
  if (tp_uint(expo, UINT64_MAX, &expiry, "expiry") < 0) {
    return NULL;
  }
  if (expiry == 0) {
    PyErr_SetString(PyExc_ValueError, "expiry must be at least 1 (Unix "
                                      "seconds)");
    return NULL;
  }
  tp_bytes s, k;
  if (tp_bytes_get(secret, &s, "secret", 0) < 0) {
    return NULL;
  }
  if (tp_bytes_get(session, &k, "session", 0) < 0) {
    tp_bytes_release(&s);
    return NULL;
  }
  char out[TERN_TOKEN_MAX];
  size_t n = tern_token_make(out, sizeof(out), s.p ? s.p : (const void *)"",
                             s.n, k.p ? k.p : (const uint8_t *)"", k.n,
                             expiry);
  tp_bytes_release(&s);
  tp_bytes_release(&k);
  if (n == 0) {
    return tp_raise(TERN_ERR_INVALID, "no token could be made");
  }
  return PyUnicode_FromStringAndSize(out, (Py_ssize_t)n);
}

static PyObject *m_token_check(PyObject *self, PyObject *args, PyObject *kw) {
  (void)self;
  static char *kwlist[] = {"token", "secret", "session", "now", NULL};
  PyObject *token, *secret, *session, *nowo = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|$O:token_check", kwlist,
                                   &token, &secret, &session, &nowo)) {
    return NULL;
  }
  uint64_t now;
  if (nowo == Py_None) {
    now = (uint64_t)time(NULL);
  } else if (tp_uint(nowo, UINT64_MAX, &now, "now") < 0) {
    return NULL;
  }
  tp_bytes t, s, k;
  if (tp_bytes_get(token, &t, "token", 0) < 0) {
    return NULL;
  }
  if (tp_bytes_get(secret, &s, "secret", 0) < 0) {
    tp_bytes_release(&t);
    return NULL;
  }
  if (tp_bytes_get(session, &k, "session", 0) < 0) {
    tp_bytes_release(&t);
    tp_bytes_release(&s);
    return NULL;
  }
  int rc = tern_token_check(t.p ? (const char *)t.p : "", t.n,
                            s.p ? s.p : (const void *)"", s.n,
                            k.p ? k.p : (const uint8_t *)"", k.n, now);
  tp_bytes_release(&t);
  tp_bytes_release(&s);
  tp_bytes_release(&k);
  if (rc == TERN_ERR_STATE) {
    return tp_raise(rc, "the token has expired");
  }
  if (rc < 0) {
    return tp_raise(rc, "the token is malformed or not this session's");
  }
  Py_RETURN_NONE;
}

/* ---- the queue of what the workers report ----------------------------------- */

typedef struct note {
  struct note *next;
  uint32_t worker;
  int rc;          /* results: 0 or the tern_error of the publish        */
  uint64_t cookie; /* results: the publish's cookie                      */
  tern_event ev;   /* events: pointers into data                         */
  uint8_t data[];
} note;

typedef struct nqueue {
  note *head, *tail;
} nqueue;

struct http_ctx;

typedef struct WorkersObject {
  PyObject_HEAD
  tern_workers *w;        /* NULL once closed                               */
  uint32_t n;
  int running;            /* started (and holding a reference to itself)   */
  int busy;               /* publishes running without the GIL              */
  int lifecycle;          /* start, stop or close in progress               */
  int closing;
  pthread_mutex_t lock;   /* the queues, qlen, dropped                      */
  nqueue results, events;
  size_t qlen, qmax;
  uint64_t dropped;
  int efd;                /* readable while the queues hold anything        */
  uint64_t event_mask;    /* 1 << EventType the host asked for              */
  uint8_t *secret;        /* token_secret: HELLOs checked natively         */
  size_t secretlen;
  struct http_ctx *http;  /* one per worker once serve_http ran, or NULL   */
  PyObject *handler;      /* the HTTP handler                               */
  PyObject *weakrefs;
} WorkersObject;

typedef struct http_ctx {
  WorkersObject *wo;
  uint32_t index;
  tern_http *h;
} http_ctx;

typedef struct RequestObject {
  PyObject_HEAD
  tern_http_request *r; /* NULL once answered or after its handler         */
  http_ctx *ctx;        /* valid while r is                                */
  uint32_t worker;      /* ctx->index, kept for after                      */
  pthread_t thread;     /* the worker thread the handler runs on           */
} RequestObject;

/* Nonzero on a thread while it runs an HTTP handler. */
static _Thread_local int tl_in_handler;

/* Appends |nt| to |q| (a worker thread, no GIL). */
static void push(WorkersObject *wo, nqueue *q, note *nt) {
  nt->next = NULL;
  pthread_mutex_lock(&wo->lock);
  if (wo->qlen >= wo->qmax) {
    wo->dropped++;
    pthread_mutex_unlock(&wo->lock);
    free(nt);
    return;
  }
  if (q->tail) {
    q->tail->next = nt;
  } else {
    q->head = nt;
  }
  q->tail = nt;
  if (wo->qlen++ == 0 && wo->efd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(wo->efd, &one, sizeof(one));
    (void)w;
  }
  pthread_mutex_unlock(&wo->lock);
}

/* Takes the oldest note of |q|, or NULL. */
static note *pop(WorkersObject *wo, nqueue *q) {
  pthread_mutex_lock(&wo->lock);
  note *nt = q->head;
  if (nt) {
    q->head = nt->next;
    if (!q->head) {
      q->tail = NULL;
    }
    if (--wo->qlen == 0 && wo->efd >= 0) {
      uint64_t v;
      ssize_t r = read(wo->efd, &v, sizeof(v));
      (void)r;
    }
  }
  pthread_mutex_unlock(&wo->lock);
  return nt;
}

static void free_queue(nqueue *q) {
  note *nt = q->head;
  while (nt) {
    note *next = nt->next;
    free(nt);
    nt = next;
  }
  q->head = q->tail = NULL;
}

/* Worker thread: the inbox's result of one publish.  Kept when it failed
   or when the publish asked with a cookie. */
static void on_done(void *ud, uint32_t worker, uint64_t cookie, int rc) {
  WorkersObject *wo = ud;
  if (rc >= 0 && cookie == 0) {
    return;
  }
  note *nt = malloc(sizeof(*nt));
  if (!nt) {
    return;
  }
  memset(nt, 0, sizeof(*nt));
  nt->worker = worker;
  nt->rc = rc < 0 ? rc : 0;
  nt->cookie = cookie;
  push(wo, &wo->results, nt);
}

/* Worker thread: a hub event.  HELLOs are checked against token_secret
   here (no Python); the events of event_mask are copied for Python. */
static void on_event(void *ud, uint32_t worker, tern_driver *d,
                     const tern_event *ev) {
  (void)d;
  WorkersObject *wo = ud;
  if (ev->type == TERN_EV_CONN_HELLO && wo->secret && ev->conn) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int rc = tern_token_check((const char *)ev->aux, ev->auxlen, wo->secret,
                              wo->secretlen, ev->session_key,
                              ev->session_keylen, (uint64_t)ts.tv_sec);
    tern_tstamp now = tern_posix_now();
    if (rc == 0) {
      tern_conn_accept(ev->conn, now);
    } else {
      tern_conn_goaway(ev->conn, TERN_GOAWAY_REJECTED, 0, now);
    }
  }
  if (ev->type < 0 || ev->type >= 64 ||
      !(wo->event_mask & ((uint64_t)1 << ev->type))) {
    return;
  }
  size_t len = ev->session_keylen + ev->msg_idlen + ev->auxlen;
  note *nt = malloc(sizeof(*nt) + len);
  if (!nt) {
    return;
  }
  memset(nt, 0, sizeof(*nt));
  nt->worker = worker;
  nt->ev = *ev;
  nt->ev.conn = NULL; /* the driver's: no Python object stands for it */
  uint8_t *p = nt->data;
  if (ev->session_keylen) {
    memcpy(p, ev->session_key, ev->session_keylen);
    nt->ev.session_key = p;
    p += ev->session_keylen;
  }
  if (ev->msg_idlen) {
    memcpy(p, ev->msg_id, ev->msg_idlen);
    nt->ev.msg_id = p;
    p += ev->msg_idlen;
  }
  if (ev->auxlen) {
    memcpy(p, ev->aux, ev->auxlen);
    nt->ev.aux = p;
  }
  push(wo, &wo->events, nt);
}

/* ---- Workers ------------------------------------------------------------------ */

static int usable(WorkersObject *self) {
  if (!self->w || self->closing) {
    tp_raise(TERN_ERR_CLOSED, "the workers are closed");
    return 0;
  }
  return 1;
}

static int not_in_handler(const char *what) {
  if (tl_in_handler) {
    tp_raise_fmt(TERN_ERR_STATE,
                 "Workers.%s may not be called from an HTTP handler (it "
                 "runs on a worker thread)",
                 what);
    return 0;
  }
  return 1;
}

static int workers_init(WorkersObject *self, PyObject *args, PyObject *kw) {
  if (PyTuple_GET_SIZE(args) != 0) {
    PyErr_SetString(PyExc_TypeError,
                    "Workers() takes keyword arguments only");
    return -1;
  }
  if (self->w || self->efd != 0) {
    PyErr_SetString(PyExc_RuntimeError, "Workers.__init__ called twice");
    return -1;
  }
  self->efd = -1;
  static const char *const skip[] = {"threads", "max_queue", "events",
                                     "token_secret", "out_cap", NULL};
  tern_settings s;
  tern_settings_default(&s);
  if (tp_apply_fields(&s, tp_settings_fields, kw, skip) < 0) {
    return -1;
  }
  uint64_t threads = 1, qmax = 65536, out_cap = 0;
  PyObject *o;
  if (kw && (o = PyDict_GetItemString(kw, "threads")) &&
      (tp_uint(o, 1024, &threads, "threads") < 0 ||
       (threads == 0 &&
        (PyErr_SetString(PyExc_ValueError, "threads must be in [1, 1024]"),
         1)))) {
    return -1;
  }
  if (kw && (o = PyDict_GetItemString(kw, "max_queue")) &&
      tp_uint(o, (uint64_t)1 << 32, &qmax, "max_queue") < 0) {
    return -1;
  }
  if (kw && (o = PyDict_GetItemString(kw, "out_cap")) &&
      tp_uint(o, (uint64_t)64 << 20, &out_cap, "out_cap") < 0) {
    return -1;
  }
  uint64_t mask = 0;
  if (kw && (o = PyDict_GetItemString(kw, "events")) && o != Py_None) {
    PyObject *it = PyObject_GetIter(o);
    if (!it) {
      return -1;
    }
    PyObject *e;
    while ((e = PyIter_Next(it))) {
      uint64_t t;
      int bad = tp_uint(e, 63, &t, "an event type") < 0;
      Py_DECREF(e);
      if (bad) {
        Py_DECREF(it);
        return -1;
      }
      mask |= (uint64_t)1 << t;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
      return -1;
    }
  }
  if (kw && (o = PyDict_GetItemString(kw, "token_secret")) && o != Py_None) {
    tp_bytes b;
    if (tp_bytes_get(o, &b, "token_secret", 0) < 0) {
      return -1;
    }
    self->secret = PyMem_RawMalloc(b.n ? b.n : 1);
    if (!self->secret) {
      tp_bytes_release(&b);
      PyErr_NoMemory();
      return -1;
    }
    memcpy(self->secret, b.p, b.n);
    self->secretlen = b.n;
    tp_bytes_release(&b);
    s.hello_accept = 1; /* on_event answers every HELLO */
  } else if (s.hello_accept) {
    tp_raise(TERN_ERR_INVALID,
             "hello_accept needs an answer on the worker thread: use "
             "token_secret= instead");
    return -1;
  }
  self->event_mask = mask;
  self->qmax = (size_t)qmax;
  if (pthread_mutex_init(&self->lock, NULL) != 0) {
    PyErr_NoMemory();
    return -1;
  }
  self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (self->efd < 0) {
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
  }
  tern_driver_options dopt;
  tern_driver_options_default(&dopt);
  if (out_cap) {
    dopt.out_cap = (size_t)out_cap;
  }
  tern_workers_options wopt;
  tern_workers_options_default(&wopt);
  wopt.nthreads = (uint32_t)threads;
  wopt.settings = &s;
  wopt.driver = &dopt;
  wopt.on_event = on_event;
  wopt.on_done = on_done;
  wopt.user_data = self;
  int rc = tern_workers_new(&self->w, &wopt);
  if (rc < 0) {
    self->w = NULL;
    tp_raise(rc, rc == TERN_ERR_INVALID ? "invalid workers settings" : NULL);
    return -1;
  }
  self->n = (uint32_t)threads;
  return 0;
}

/* Stops the threads with the GIL released; drops the self-reference.
   The caller holds a reference of its own. */
static void do_stop(WorkersObject *self) {
  if (!self->running) {
    return;
  }
  tern_workers *w = self->w;
  Py_BEGIN_ALLOW_THREADS
  tern_workers_stop(w);
  Py_END_ALLOW_THREADS
  self->running = 0;
  Py_DECREF(self);
}

static void do_close(WorkersObject *self) {
  if (!self->w) {
    return;
  }
  self->closing = 1;
  do_stop(self);
  while (self->busy > 0) { /* publishes of other threads finish first */
    Py_BEGIN_ALLOW_THREADS
    sched_yield();
    Py_END_ALLOW_THREADS
  }
  if (self->http) {
    for (uint32_t i = 0; i < self->n; ++i) {
      tern_http_del(self->http[i].h);
    }
    PyMem_Free(self->http);
    self->http = NULL;
  }
  tern_workers_del(self->w);
  self->w = NULL;
  free_queue(&self->results);
  free_queue(&self->events);
  self->qlen = 0;
  if (self->efd >= 0) {
    close(self->efd);
    self->efd = -1;
  }
  pthread_mutex_destroy(&self->lock);
  PyMem_RawFree(self->secret);
  self->secret = NULL;
  Py_CLEAR(self->handler);
}

static int workers_traverse(WorkersObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->handler);
  return 0;
}

static int workers_clear(WorkersObject *self) {
  if (!self->running) {
    Py_CLEAR(self->handler);
  }
  return 0;
}

static void workers_dealloc(WorkersObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->weakrefs) {
    PyObject_ClearWeakRefs((PyObject *)self);
  }
  do_close(self); /* never running here: a running one holds itself */
  if (self->efd > 0) { /* an __init__ that failed */
    close(self->efd);
  }
  PyMem_RawFree(self->secret);
  tp->tp_free((PyObject *)self);
  Py_DECREF(tp);
}

static PyObject *workers_listen(WorkersObject *self, PyObject *args,
                                PyObject *kw) {
  static char *kwlist[] = {"host", "port", NULL};
  PyObject *hosto = Py_None;
  int port = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|Oi:listen", kwlist, &hosto,
                                   &port)) {
    return NULL;
  }
  if (port < 0 || port > 65535) {
    PyErr_SetString(PyExc_ValueError, "port must be in [0, 65535]");
    return NULL;
  }
  const char *host;
  size_t hlen;
  if (tp_cstr_get(hosto, &host, &hlen, "host", 1) < 0 || !usable(self)) {
    return NULL;
  }
  if (self->running || self->lifecycle) {
    return tp_raise(TERN_ERR_STATE, "listen before start");
  }
  uint16_t bound = 0;
  errno = 0;
  int rc = tern_workers_listen(self->w, host, (uint16_t)port, &bound);
  if (rc == TERN_ERR_STORE && errno) {
    return tp_raise_fmt(rc, "cannot listen on %s port %d: %s",
                        host ? host : "127.0.0.1", port, strerror(errno));
  }
  if (rc < 0) {
    return tp_raise(rc, rc == TERN_ERR_INVALID ? "not a numeric address"
                                               : NULL);
  }
  return PyLong_FromLong(bound);
}

static PyObject *workers_start(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!usable(self)) {
    return NULL;
  }
  if (self->running || self->lifecycle) {
    return tp_raise(TERN_ERR_STATE, "the workers are running");
  }
  int rc = tern_workers_start(self->w);
  if (rc < 0) {
    return tp_raise(rc, NULL);
  }
  self->running = 1;
  Py_INCREF(self); /* the threads use it until stop */
  Py_RETURN_NONE;
}

static PyObject *workers_stop(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!not_in_handler("stop") || !usable(self)) {
    return NULL;
  }
  if (self->lifecycle) {
    return tp_raise(TERN_ERR_STATE, "another thread stops or closes them");
  }
  self->lifecycle = 1;
  do_stop(self);
  self->lifecycle = 0;
  Py_RETURN_NONE;
}

static PyObject *workers_close(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!not_in_handler("close")) {
    return NULL;
  }
  if (self->lifecycle) {
    return tp_raise(TERN_ERR_STATE, "another thread stops or closes them");
  }
  self->lifecycle = 1;
  do_close(self);
  self->lifecycle = 0;
  Py_RETURN_NONE;
}

static PyObject *workers_enter(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!usable(self)) {
    return NULL;
  }
  return Py_NewRef(self);
}

static PyObject *workers_exit(WorkersObject *self, PyObject *args) {
  (void)args;
  return workers_close(self, NULL);
}

static const char *const wpublish_names[] = {
    "session", "payload", "id",     "collapse_key", "priority",
    "ttl",     "content_type", "attrs", "sync",     "volatile",
    "trace",   "cookie",  "fallback", NULL};

static PyObject *workers_publish(WorkersObject *self, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames) {
  static tp_args spec = {"publish", wpublish_names, 2, 2, {0}, 0};
  PyObject *a[13];
  if (tp_parse(&spec, args, nargs, kwnames, a) < 0) {
    return NULL;
  }
  PyObject **o = a + 2;
  tp_bytes k;
  tp_msg m;
  tp_msg_init(&m);
  k.held = 0;
  PyObject *ret = NULL;
  if (tp_bytes_get(a[0], &k, "session", 0) < 0 ||
      tp_msg_parse(&m, a[1], o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7],
                   o[8], o[9]) < 0 ||
      tp_duration(a[12], &m.d.fallback, "fallback") < 0 || !usable(self)) {
    goto done;
  }
  if (k.n == 0) {
    tp_raise(TERN_ERR_INVALID, "empty session key");
    goto done;
  }
  tern_workers *w = self->w;
  int rc;
  self->busy++;
  Py_BEGIN_ALLOW_THREADS
  rc = tern_workers_publish(w, k.p, k.n, &m.d);
  Py_END_ALLOW_THREADS
  self->busy--;
  if (rc < 0) {
    tp_raise(rc, NULL);
    goto done;
  }
  ret = Py_NewRef(Py_None);
done:
  tp_bytes_release(&k);
  tp_msg_release(&m);
  return ret;
}

static PyObject *workers_next_result(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!self->w) {
    return tp_raise(TERN_ERR_CLOSED, "the workers are closed");
  }
  note *nt = pop(self, &self->results);
  if (!nt) {
    Py_RETURN_NONE;
  }
  PyObject *r = Py_BuildValue("(IKi)", nt->worker,
                              (unsigned long long)nt->cookie, nt->rc);
  free(nt);
  return r;
}

static PyObject *workers_next_event(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!self->w) {
    return tp_raise(TERN_ERR_CLOSED, "the workers are closed");
  }
  note *nt = pop(self, &self->events);
  if (!nt) {
    Py_RETURN_NONE;
  }
  PyObject *ev = tp_event(&nt->ev);
  PyObject *r = ev ? Py_BuildValue("(IN)", nt->worker, ev) : NULL;
  free(nt);
  return r;
}

static PyObject *workers_fileno(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!usable(self)) {
    return NULL;
  }
  return PyLong_FromLong(self->efd);
}

static PyObject *workers_get_dropped(WorkersObject *self, void *c) {
  (void)c;
  if (!self->w) {
    return PyLong_FromUnsignedLongLong(self->dropped);
  }
  pthread_mutex_lock(&self->lock);
  uint64_t d = self->dropped;
  pthread_mutex_unlock(&self->lock);
  return PyLong_FromUnsignedLongLong(d);
}

static PyObject *workers_get_count(WorkersObject *self, void *c) {
  (void)c;
  return PyLong_FromUnsignedLong(self->n);
}

static PyObject *workers_get_closed(WorkersObject *self, void *c) {
  (void)c;
  return PyBool_FromLong(self->w == NULL);
}

static PyObject *workers_get_running(WorkersObject *self, void *c) {
  (void)c;
  return PyBool_FromLong(self->running);
}

static PyObject *workers_shard_of(WorkersObject *self, PyObject *key) {
  tp_bytes k;
  if (tp_bytes_get(key, &k, "session", 0) < 0) {
    return NULL;
  }
  uint32_t s = tern_shard_of(k.p, k.n, self->n ? self->n : 1);
  tp_bytes_release(&k);
  return PyLong_FromUnsignedLong(s);
}

/* stats(worker): the driver's and the hub's counters of one worker, read
   while the workers are stopped (the C rule). */
static PyObject *workers_stats(WorkersObject *self, PyObject *arg) {
  uint64_t i;
  if (tp_uint(arg, UINT32_MAX, &i, "worker") < 0 || !usable(self)) {
    return NULL;
  }
  if (self->running) {
    return tp_raise(TERN_ERR_STATE, "stats are read while stopped");
  }
  tern_driver *d = tern_workers_get_driver(self->w, (uint32_t)i);
  if (!d) {
    PyErr_SetString(PyExc_ValueError, "no such worker");
    return NULL;
  }
  tern_stats st;
  tern_hub_get_stats(tern_driver_get_hub(d), &st, sizeof(st));
  return tp_stats(&st);
}

/* ---- HTTP ---------------------------------------------------------------------- */

/* What a request forwarded to the session's owner carries: the stream or
   WebSocket to open there, without Python. */
typedef struct fwd {
  int websocket;
  tern_stream_opts opts;
  char *headers;
  uint8_t key[];
} fwd;

static void open_forwarded(tern_http_request *req, fwd *f) {
  int rc = f->websocket
               ? tern_http_respond_websocket(req, &f->opts, f->headers, NULL)
               : tern_http_respond_stream(req, &f->opts, f->headers, NULL);
  if (rc < 0 && rc != TERN_ERR_PROTO) {
    tern_http_respond_error(req,
                            rc == TERN_ERR_LIMIT ? 503
                            : rc == TERN_ERR_NOMEM ? 500
                                                   : 400,
                            NULL, tern_strerror(rc));
  }
  free(f);
}

static PyObject *request_new(http_ctx *ctx, tern_http_request *req) {
  RequestObject *ro = PyObject_New(RequestObject, tp_RequestType);
  if (!ro) {
    return NULL;
  }
  ro->r = req;
  ro->ctx = ctx;
  ro->worker = ctx->index;
  ro->thread = pthread_self();
  return (PyObject *)ro;
}

/* A worker thread: a request, handed to the Python handler. */
static void on_request(void *ud, tern_http_request *req) {
  http_ctx *ctx = ud;
  fwd *f = tern_http_request_forwarded(req);
  if (f) {
    open_forwarded(req, f);
    return;
  }
  PyGILState_STATE g = PyGILState_Ensure();
  tl_in_handler = 1;
  PyObject *ro = request_new(ctx, req);
  PyObject *handler = ctx->wo->handler;
  if (ro && handler) {
    Py_INCREF(handler);
    PyObject *res = PyObject_CallOneArg(handler, ro);
    if (!res) {
      PyErr_WriteUnraisable(handler);
    }
    Py_XDECREF(res);
    Py_DECREF(handler);
  } else if (PyErr_Occurred()) {
    PyErr_WriteUnraisable(NULL);
  }
  if (!ro || ((RequestObject *)ro)->r) {
    tern_http_respond_error(req, 500, NULL,
                            "the handler did not answer the request");
  }
  if (ro) {
    ((RequestObject *)ro)->r = NULL;
    Py_DECREF(ro);
  }
  tl_in_handler = 0;
  PyGILState_Release(g);
}

/* A worker thread: a request's connection closed before its answer: only
   forwarded ones can be unanswered here. */
static void on_abort(void *ud, tern_http_request *req) {
  (void)ud;
  free(tern_http_request_forwarded(req));
}

static const tp_field http_fields[] = {
    {"max_target", offsetof(tern_http_options, max_target), TP_SIZE},
    {"max_head", offsetof(tern_http_options, max_head), TP_SIZE},
    {"max_headers", offsetof(tern_http_options, max_headers), TP_SIZE},
    {"max_body", offsetof(tern_http_options, max_body), TP_SIZE},
    {"request_timeout", offsetof(tern_http_options, request_timeout),
     TP_DUR},
    {"idle_timeout", offsetof(tern_http_options, idle_timeout), TP_DUR},
    {NULL, 0, TP_U32}};

static PyObject *workers_serve_http(WorkersObject *self, PyObject *args,
                                    PyObject *kw) {
  PyObject *handler, *hosto = Py_None, *porto = NULL;
  if (!PyArg_ParseTuple(args, "O|OO:serve_http", &handler, &hosto, &porto)) {
    return NULL;
  }
  static const char *const skip[] = {"host", "port", NULL};
  if (kw) {
    PyObject *v;
    if ((v = PyDict_GetItemString(kw, "host"))) {
      hosto = v;
    }
    if ((v = PyDict_GetItemString(kw, "port"))) {
      porto = v;
    }
  }
  uint64_t port = 0;
  if (!PyCallable_Check(handler)) {
    PyErr_SetString(PyExc_TypeError, "handler must be callable");
    return NULL;
  }
  if (porto && tp_uint(porto, 65535, &port, "port") < 0) {
    return NULL;
  }
  tern_http_options o;
  tern_http_options_default(&o);
  const char *host;
  size_t hlen;
  if (tp_apply_fields(&o, http_fields, kw, skip) < 0 ||
      tp_cstr_get(hosto, &host, &hlen, "host", 1) < 0 || !usable(self)) {
    return NULL;
  }
  if (self->running || self->lifecycle) {
    return tp_raise(TERN_ERR_STATE, "serve_http before start");
  }
  if (self->http) {
    return tp_raise(TERN_ERR_STATE, "the workers serve HTTP already");
  }
  http_ctx *ctx = PyMem_Calloc(self->n, sizeof(http_ctx));
  if (!ctx) {
    return PyErr_NoMemory();
  }
  o.on_request = on_request;
  o.on_abort = on_abort;
  o.reuseport = 1;
  int rc = 0;
  uint16_t p = (uint16_t)port;
  uint32_t i;
  errno = 0;
  for (i = 0; i < self->n && rc == 0; ++i) {
    ctx[i].wo = self;
    ctx[i].index = i;
    o.user_data = &ctx[i];
    rc = tern_http_new(&ctx[i].h, tern_workers_get_driver(self->w, i), &o);
    if (rc == 0) {
      rc = tern_http_listen(ctx[i].h, host, p, &p);
    }
  }
  if (rc < 0) {
    int err = errno;
    for (uint32_t j = 0; j < self->n; ++j) {
      tern_http_del(ctx[j].h);
    }
    PyMem_Free(ctx);
    if (rc == TERN_ERR_STORE && err) {
      return tp_raise_fmt(rc, "cannot listen on %s port %d: %s",
                          host ? host : "127.0.0.1", (int)port,
                          strerror(err));
    }
    return tp_raise(rc, rc == TERN_ERR_INVALID
                            ? "invalid HTTP options or address"
                            : NULL);
  }
  self->http = ctx;
  Py_XSETREF(self->handler, Py_NewRef(handler));
  return PyLong_FromLong(p);
}

static PyObject *workers_http_stats(WorkersObject *self, PyObject *noarg) {
  (void)noarg;
  if (!usable(self)) {
    return NULL;
  }
  if (self->running) {
    return tp_raise(TERN_ERR_STATE, "stats are read while stopped");
  }
  if (!self->http) {
    Py_RETURN_NONE;
  }
  tern_http_stats t;
  memset(&t, 0, sizeof(t));
  for (uint32_t i = 0; i < self->n; ++i) {
    tern_http_stats s;
    tern_http_get_stats(self->http[i].h, &s, sizeof(s));
    t.connections += s.connections;
    t.accepted += s.accepted;
    t.requests += s.requests;
    t.responses += s.responses;
    t.bad_requests += s.bad_requests;
    t.timeouts += s.timeouts;
    t.streams += s.streams;
    t.streams_opened += s.streams_opened;
    t.forwarded += s.forwarded;
  }
  return Py_BuildValue(
      "{sKsKsKsKsKsKsKsKsK}", "connections",
      (unsigned long long)t.connections, "accepted",
      (unsigned long long)t.accepted, "requests",
      (unsigned long long)t.requests, "responses",
      (unsigned long long)t.responses, "bad_requests",
      (unsigned long long)t.bad_requests, "timeouts",
      (unsigned long long)t.timeouts, "streams",
      (unsigned long long)t.streams, "streams_opened",
      (unsigned long long)t.streams_opened, "forwarded",
      (unsigned long long)t.forwarded);
}

#define FN_KW(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef workers_methods[] = {
    {"listen", FN_KW(workers_listen), METH_VARARGS | METH_KEYWORDS,
     "listen(host=None, port=0) -> int\n\nListens for binary connections "
     "(tern-protocol(7)) on every worker; returns the bound port (port 0: "
     "a free one).  Before start()."},
    {"serve_http", FN_KW(workers_serve_http), METH_VARARGS | METH_KEYWORDS,
     "serve_http(handler, host=None, port=0, **options) -> int\n\nServes "
     "HTTP/1.1 on every worker; handler(request) is called on the worker's "
     "thread with the GIL and must answer the tern.Request before it "
     "returns.  Options (tern_http_options): max_target, max_head, "
     "max_headers, max_body, request_timeout, idle_timeout (seconds).  "
     "Returns the bound port.  Before start(); once."},
    {"start", (PyCFunction)workers_start, METH_NOARGS,
     "start()\n\nStarts the threads."},
    {"stop", (PyCFunction)workers_stop, METH_NOARGS,
     "stop()\n\nStops the threads after their current turn and joins them; "
     "the hubs keep their state, start() runs them again."},
    {"close", (PyCFunction)workers_close, METH_NOARGS,
     "close()\n\nStops the threads and frees everything (sockets, hubs, "
     "what the queues hold).  Idempotent."},
    {"__enter__", (PyCFunction)workers_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)workers_exit, METH_VARARGS, NULL},
    {"publish", FN_KW(workers_publish), METH_FASTCALL | METH_KEYWORDS,
     "publish(session, payload, *, id=None, collapse_key=None, "
     "priority=NORMAL, ttl=None, content_type=None, attrs=None, sync=False, "
     "volatile=False, trace=False, cookie=0, fallback=None)\n\nQueues a "
     "copy of the message for the worker owning the session (any thread; "
     "the GIL is released during the copy).  The hub's own result comes "
     "later through next_result() when it failed or cookie was set.  Raises "
     "InvalidError, TooLargeError, NoMemoryError, ClosedError."},
    {"_next_result", (PyCFunction)workers_next_result, METH_NOARGS, NULL},
    {"_next_event", (PyCFunction)workers_next_event, METH_NOARGS, NULL},
    {"fileno", (PyCFunction)workers_fileno, METH_NOARGS,
     "fileno() -> int\n\nAn eventfd readable while results or events wait "
     "(for selectors or asyncio's loop.add_reader)."},
    {"shard_of", (PyCFunction)workers_shard_of, METH_O,
     "shard_of(session) -> int\n\nThe worker that owns the session."},
    {"stats", (PyCFunction)workers_stats, METH_O,
     "stats(worker) -> Stats\n\nThe hub counters of one worker; while "
     "stopped."},
    {"http_stats", (PyCFunction)workers_http_stats, METH_NOARGS,
     "http_stats() -> dict | None\n\nThe HTTP servers' counters summed "
     "over the workers (tern_http_stats); while stopped."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef workers_getset[] = {
    {"count", (getter)workers_get_count, NULL, "The number of workers.",
     NULL},
    {"closed", (getter)workers_get_closed, NULL, "True once closed.", NULL},
    {"running", (getter)workers_get_running, NULL, "True while started.",
     NULL},
    {"dropped", (getter)workers_get_dropped, NULL,
     "Results and events lost because the queue held max_queue.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef workers_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(WorkersObject, weakrefs),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyType_Slot workers_slots[] = {
    {Py_tp_doc, "Workers(**settings)\n\nNative worker threads (tern_workers), "
                "one hub each."},
    {Py_tp_init, workers_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, workers_dealloc},
    {Py_tp_traverse, workers_traverse},
    {Py_tp_clear, workers_clear},
    {Py_tp_methods, workers_methods},
    {Py_tp_getset, workers_getset},
    {Py_tp_members, workers_members},
    {0, NULL}};

static PyType_Spec workers_spec = {
    "tern._tern.Workers", sizeof(WorkersObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    workers_slots};

/* ---- Request -------------------------------------------------------------------- */

static tern_http_request *req_usable(RequestObject *self) {
  if (!self->r) {
    tp_raise(TERN_ERR_STATE,
             "the request was answered, or its handler returned");
    return NULL;
  }
  if (!pthread_equal(self->thread, pthread_self())) {
    tp_raise(TERN_ERR_STATE,
             "a request is answered on its worker's thread, in its handler");
    return NULL;
  }
  return self->r;
}

static PyObject *text(const char *s, size_t n) {
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "surrogateescape");
}

static PyObject *req_get_method(RequestObject *self, void *c) {
  (void)c;
  tern_http_request *r = req_usable(self);
  return r ? PyUnicode_FromString(tern_http_request_method(r)) : NULL;
}

static PyObject *req_get_path(RequestObject *self, void *c) {
  (void)c;
  tern_http_request *r = req_usable(self);
  if (!r) {
    return NULL;
  }
  size_t n;
  const char *p = tern_http_request_path(r, &n);
  return text(p, n);
}

static PyObject *req_get_body(RequestObject *self, void *c) {
  (void)c;
  tern_http_request *r = req_usable(self);
  if (!r) {
    return NULL;
  }
  size_t n = 0;
  const uint8_t *b = tern_http_request_body(r, &n);
  return PyBytes_FromStringAndSize((const char *)b, b ? (Py_ssize_t)n : 0);
}

static PyObject *req_get_worker(RequestObject *self, void *c) {
  (void)c;
  return PyLong_FromUnsignedLong(self->worker);
}

static PyObject *req_get_answered(RequestObject *self, void *c) {
  (void)c;
  return PyBool_FromLong(self->r == NULL);
}

/* Request.header and Request.param: one named value of the request, or
   |def| when it has none. */
static PyObject *req_lookup(RequestObject *self, PyObject *args,
                            const char *fmt,
                            int (*lookup)(const tern_http_request *,
                                          const char *, const char **,
                                          size_t *)) {
  const char *name;
  PyObject *def = Py_None;
  if (!PyArg_ParseTuple(args, fmt, &name, &def)) {
    return NULL;
  }
  tern_http_request *r = req_usable(self);
  if (!r) {
    return NULL;
  }
  const char *v;
  size_t n;
  if (!lookup(r, name, &v, &n)) {
    return Py_NewRef(def);
  }
  return text(v, n);
}

static PyObject *req_header(RequestObject *self, PyObject *args) {
  return req_lookup(self, args, "s|O:header", tern_http_request_header);
}

static PyObject *req_param(RequestObject *self, PyObject *args) {
  return req_lookup(self, args, "s|O:param", tern_http_request_param);
}

static PyObject *req_params(RequestObject *self, PyObject *noarg) {
  (void)noarg;
  tern_http_request *r = req_usable(self);
  if (!r) {
    return NULL;
  }
  PyObject *l = PyList_New(0);
  const char *k, *v;
  size_t kn, vn;
  for (size_t i = 0; l && tern_http_request_param_at(r, i, &k, &kn, &v, &vn);
       ++i) {
    PyObject *ko = text(k, kn), *vo = text(v, vn);
    PyObject *t = ko && vo ? PyTuple_Pack(2, ko, vo) : NULL;
    Py_XDECREF(ko);
    Py_XDECREF(vo);
    if (!t || PyList_Append(l, t) < 0) {
      Py_XDECREF(t);
      Py_CLEAR(l);
      break;
    }
    Py_DECREF(t);
  }
  return l;
}

/* A header name or value must not hold CR, LF or NUL: a value "a\r\nX: b"
   would smuggle in a header line of its own. */
static int bad_header_text(PyObject *u) {
  static const Py_UCS4 bad[] = {'\r', '\n', 0};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    Py_ssize_t at = PyUnicode_FindChar(u, bad[i], 0, PY_SSIZE_T_MAX, 1);
    if (at != -1) {
      return 1; /* -2 (an error) counts as bad, with the error set */
    }
  }
  return 0;
}

/* Builds "Name: value\r\n" lines from None, a mapping or pairs: a new
   bytes object in |*keep| (NULL for None) whose text goes to |*out|. */
static int build_headers(PyObject *o, PyObject **keep, const char **out) {
  *keep = NULL;
  *out = NULL;
  if (!o || o == Py_None) {
    return 0;
  }
  PyObject *items = PyMapping_Check(o) && !PyUnicode_Check(o) &&
                            PyObject_HasAttrString(o, "items")
                        ? PyMapping_Items(o)
                        : PySequence_List(o);
  if (!items) {
    return -1;
  }
  PyObject *parts = PyList_New(0);
  for (Py_ssize_t i = 0; parts && i < PyList_GET_SIZE(items); ++i) {
    PyObject *pair = PyList_GET_ITEM(items, i);
    PyObject *line = NULL;
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) ||
        !PyUnicode_Check(PyTuple_GET_ITEM(pair, 1))) {
      PyErr_SetString(PyExc_TypeError,
                      "headers must be a mapping or (name, value) pairs of "
                      "str");
    } else if (PyUnicode_FindChar(PyTuple_GET_ITEM(pair, 0), ':', 0,
                                  PY_SSIZE_T_MAX, 1) != -1 ||
               bad_header_text(PyTuple_GET_ITEM(pair, 0)) ||
               bad_header_text(PyTuple_GET_ITEM(pair, 1))) {
      if (!PyErr_Occurred()) {
        tp_raise(TERN_ERR_INVALID, "a header name or value holds CR, LF, "
                                   "NUL (or the name a colon)");
      }
    } else {
      line = PyUnicode_FromFormat("%U: %U\r\n", PyTuple_GET_ITEM(pair, 0),
                                  PyTuple_GET_ITEM(pair, 1));
    }
    if (!line || PyList_Append(parts, line) < 0) {
      Py_XDECREF(line);
      Py_CLEAR(parts);
      break;
    }
    Py_DECREF(line);
  }
  Py_DECREF(items);
  if (!parts) {
    return -1;
  }
  PyObject *empty = PyUnicode_FromString("");
  PyObject *joined = empty ? PyUnicode_Join(empty, parts) : NULL;
  Py_XDECREF(empty);
  Py_DECREF(parts);
  if (!joined) {
    return -1;
  }
  *keep = PyUnicode_AsUTF8String(joined);
  Py_DECREF(joined);
  if (!*keep) {
    return -1;
  }
  if (strlen(PyBytes_AS_STRING(*keep)) != (size_t)PyBytes_GET_SIZE(*keep)) {
    Py_CLEAR(*keep);
    tp_raise(TERN_ERR_INVALID, "a header holds a NUL byte");
    return -1;
  }
  *out = PyBytes_GET_SIZE(*keep) ? PyBytes_AS_STRING(*keep) : NULL;
  return 0;
}

static int get_status(PyObject *o, int *status) {
  uint64_t s;
  if (tp_uint(o, 999, &s, "status") < 0) {
    return -1;
  }
  if (s < 200 || s > 599) {
    PyErr_SetString(PyExc_ValueError, "status must be in [200, 599]");
    return -1;
  }
  *status = (int)s;
  return 0;
}

static PyObject *answered(RequestObject *self, int rc) {
  if (rc < 0) {
    return tp_raise(rc, rc == TERN_ERR_INVALID
                            ? "invalid answer (headers must be "
                              "'Name: value' without CR or LF)"
                            : NULL);
  }
  self->r = NULL;
  Py_RETURN_NONE;
}

static PyObject *req_respond(RequestObject *self, PyObject *args,
                             PyObject *kw) {
  static char *kwlist[] = {"status", "body", "content_type", "headers",
                           NULL};
  PyObject *st, *body = NULL, *cto = Py_None, *hdrs = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$OO:respond", kwlist, &st,
                                   &body, &cto, &hdrs)) {
    return NULL;
  }
  int status;
  const char *ct;
  size_t ctn;
  if (get_status(st, &status) < 0 ||
      tp_cstr_get(cto, &ct, &ctn, "content_type", 1) < 0) {
    return NULL;
  }
  tern_http_request *r = req_usable(self);
  if (!r) {
    return NULL;
  }
  tp_bytes b;
  if (tp_bytes_get(body, &b, "body", 1) < 0) {
    return NULL;
  }
  PyObject *keep;
  const char *h;
  if (build_headers(hdrs, &keep, &h) < 0) {
    tp_bytes_release(&b);
    return NULL;
  }
  if (!ct && body && PyUnicode_Check(body)) {
    ct = "text/plain; charset=utf-8";
  }
  int rc = tern_http_respond(r, status, ct, h, b.p, b.n);
  tp_bytes_release(&b);
  Py_XDECREF(keep);
  return answered(self, rc);
}

static PyObject *req_respond_error(RequestObject *self, PyObject *args,
                                   PyObject *kw) {
  static char *kwlist[] = {"status", "message", "headers", NULL};
  PyObject *st, *msgo = Py_None, *hdrs = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$O:respond_error", kwlist,
                                   &st, &msgo, &hdrs)) {
    return NULL;
  }
  int status;
  const char *msg;
  size_t mn;
  if (get_status(st, &status) < 0 ||
      tp_cstr_get(msgo, &msg, &mn, "message", 1) < 0) {
    return NULL;
  }
  tern_http_request *r = req_usable(self);
  if (!r) {
    return NULL;
  }
  PyObject *keep;
  const char *h;
  if (build_headers(hdrs, &keep, &h) < 0) {
    return NULL;
  }
  int rc = tern_http_respond_error(r, status, h, msg);
  Py_XDECREF(keep);
  return answered(self, rc);
}

/* A WebSocket upgrade's headers are there (the server checks the rest). */
static int looks_like_upgrade(const tern_http_request *r) {
  const char *v;
  size_t n;
  return tern_http_request_header(r, "Upgrade", &v, &n) && n == 9 &&
         strncasecmp(v, "websocket", 9) == 0 &&
         tern_http_request_header(r, "Sec-WebSocket-Key", NULL, NULL);
}

/* respond_stream and respond_websocket: the stream options, then either
   here (this worker owns the session) or forwarded to the owner. */
static PyObject *req_open(RequestObject *self, PyObject *args, PyObject *kw,
                          int websocket) {
  static char *kwlist[] = {"session", "framing", "resume", "heartbeat_interval",
                           "retry", "poll_hold", "headers", NULL};
  PyObject *key = Py_None, *resume = Py_None, *hb = NULL, *retry = NULL,
           *hold = NULL, *hdrs = Py_None;
  int framing = websocket ? TERN_FRAMING_WS_JSON : TERN_FRAMING_SSE;
  if (!PyArg_ParseTupleAndKeywords(
          args, kw,
          websocket ? "|Oi$OOOOO:respond_websocket" : "O|i$OOOOO:respond_stream",
          kwlist, &key, &framing, &resume, &hb, &retry, &hold, &hdrs)) {
    return NULL;
  }
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = framing;
  if (websocket ? framing != TERN_FRAMING_WS_JSON &&
                      framing != TERN_FRAMING_WS_BIN && framing != 0
                : framing != TERN_FRAMING_SSE &&
                      framing != TERN_FRAMING_NDJSON &&
                      framing != TERN_FRAMING_POLL) {
    PyErr_SetString(PyExc_ValueError,
                    websocket ? "framing must be Framing.WS_JSON or WS_BIN"
                              : "framing must be Framing.SSE, NDJSON or "
                                "POLL");
    return NULL;
  }
  if (tp_duration(hb, &o.heartbeat_interval, "heartbeat_interval") < 0 ||
      tp_duration(retry, &o.retry, "retry") < 0 ||
      (hold && tp_duration(hold, &o.poll_hold, "poll_hold") < 0)) {
    return NULL;
  }
  tern_http_request *r = req_usable(self);
  if (!r) {
    return NULL;
  }
  /* resume: "<epoch>.<seq>", (epoch, seq), or None: Last-Event-ID. */
  if (resume == Py_None) {
    const char *v;
    size_t n;
    if (tern_http_request_header(r, "Last-Event-ID", &v, &n) &&
        tern_stream_parse_resume(v, n, &o.resume_epoch, &o.resume_seq) < 0) {
      o.resume_epoch = o.resume_seq = 0;
    }
  } else if (PyTuple_Check(resume)) {
    uint64_t e, s;
    if (PyTuple_GET_SIZE(resume) != 2 ||
        tp_uint(PyTuple_GET_ITEM(resume, 0), UINT64_MAX, &e, "epoch") < 0 ||
        tp_uint(PyTuple_GET_ITEM(resume, 1), UINT64_MAX, &s, "seq") < 0) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "resume must be (epoch, seq)");
      }
      return NULL;
    }
    o.resume_epoch = e;
    o.resume_seq = s;
  } else {
    const char *v;
    size_t n;
    if (tp_cstr_get(resume, &v, &n, "resume", 0) < 0) {
      return NULL;
    }
    int rc = tern_stream_parse_resume(v, n, &o.resume_epoch, &o.resume_seq);
    if (rc < 0) {
      return tp_raise(rc, "not a resume position (<epoch>.<seq> or <seq>)");
    }
  }
  tp_bytes k;
  if (tp_bytes_get(key, &k, "session", websocket) < 0) {
    return NULL;
  }
  if (k.n == 0 && !(websocket && framing == TERN_FRAMING_WS_BIN)) {
    tp_bytes_release(&k);
    return tp_raise(TERN_ERR_INVALID, "empty session key");
  }
  if (k.n > TERN_MAX_SESSION_KEY) {
    tp_bytes_release(&k);
    return tp_raise(TERN_ERR_TOO_LARGE, "session key too long");
  }
  PyObject *keep;
  const char *h;
  if (build_headers(hdrs, &keep, &h) < 0) {
    tp_bytes_release(&k);
    return NULL;
  }
  http_ctx *ctx = self->ctx;
  uint32_t owner = k.n ? tern_shard_of(k.p, k.n, ctx->wo->n) : ctx->index;
  if (websocket && owner != ctx->index && !looks_like_upgrade(r)) {
    owner = ctx->index; /* refused here (400 or 426), not forwarded */
  }
  int rc;
  if (owner != ctx->index) {
    size_t hn = h ? strlen(h) + 1 : 0;
    fwd *f = malloc(sizeof(*f) + k.n + hn);
    if (!f) {
      rc = TERN_ERR_NOMEM;
    } else {
      f->websocket = websocket;
      f->opts = o;
      memcpy(f->key, k.p, k.n);
      f->opts.key = f->key;
      f->opts.keylen = k.n;
      f->headers = NULL;
      if (h) {
        f->headers = (char *)f->key + k.n;
        memcpy(f->headers, h, hn);
      }
      rc = tern_http_request_forward(r, ctx->wo->http[owner].h, f);
      if (rc < 0) {
        free(f);
      }
    }
  } else {
    o.key = k.n ? k.p : NULL;
    o.keylen = k.n;
    rc = websocket ? tern_http_respond_websocket(r, &o, h, NULL)
                   : tern_http_respond_stream(r, &o, h, NULL);
  }
  tp_bytes_release(&k);
  Py_XDECREF(keep);
  if (websocket && rc == TERN_ERR_PROTO) {
    self->r = NULL; /* the server answered 400 or 426 itself */
    Py_RETURN_FALSE;
  }
  PyObject *ret = answered(self, rc);
  if (ret && websocket) {
    Py_DECREF(ret);
    Py_RETURN_TRUE;
  }
  return ret;
}

static PyObject *req_respond_stream(RequestObject *self, PyObject *args,
                                    PyObject *kw) {
  return req_open(self, args, kw, 0);
}

static PyObject *req_respond_websocket(RequestObject *self, PyObject *args,
                                       PyObject *kw) {
  return req_open(self, args, kw, 1);
}

static void req_dealloc(RequestObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(tp);
}

static PyMethodDef req_methods[] = {
    {"header", (PyCFunction)req_header, METH_VARARGS,
     "header(name, default=None) -> str\n\nThe first header line name "
     "(compared without case), trimmed."},
    {"param", (PyCFunction)req_param, METH_VARARGS,
     "param(name, default=None) -> str\n\nThe first query parameter name, "
     "decoded as a form."},
    {"params", (PyCFunction)req_params, METH_NOARGS,
     "params() -> list[(name, value)]\n\nEvery query parameter, in order."},
    {"respond", FN_KW(req_respond), METH_VARARGS | METH_KEYWORDS,
     "respond(status, body=b'', *, content_type=None, headers=None)\n\n"
     "Answers with status (200..599) and the body (bytes-like, or str sent "
     "as UTF-8 text/plain unless content_type says otherwise); headers: a "
     "mapping or (name, value) pairs."},
    {"respond_error", FN_KW(req_respond_error), METH_VARARGS | METH_KEYWORDS,
     "respond_error(status, message=None, *, headers=None)\n\nAnswers with "
     "status and the JSON body {\"error\": message} (default: the reason "
     "phrase)."},
    {"respond_stream", FN_KW(req_respond_stream), METH_VARARGS | METH_KEYWORDS,
     "respond_stream(session, framing=Framing.SSE, *, resume=None, "
     "heartbeat_interval=None, retry=None, poll_hold=None, headers=None)\n\n"
     "Turns the connection into a stream of the session's messages in a web "
     "framing (SSE, NDJSON, POLL), on the worker that owns the session (the "
     "request is forwarded there when needed).  resume: '<epoch>.<seq>', "
     "(epoch, seq), or None for the Last-Event-ID header.  Raises "
     "InvalidError, TooLargeError, LimitError, NoMemoryError."},
    {"respond_websocket", FN_KW(req_respond_websocket),
     METH_VARARGS | METH_KEYWORDS,
     "respond_websocket(session=None, framing=Framing.WS_JSON, *, "
     "resume=None, heartbeat_interval=None, headers=None) -> bool\n\n"
     "Upgrades to a WebSocket of the hub (subprotocol tern.json or "
     "tern.bin, else framing) on the worker that owns the session.  False "
     "when the request was no valid upgrade: the server answered 400 or 426 "
     "itself (a forwarded request is checked whole by its owner, which may "
     "refuse it there)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef req_getset[] = {
    {"method", (getter)req_get_method, NULL, "GET, HEAD, POST, OPTIONS or "
                                             "DELETE.", NULL},
    {"path", (getter)req_get_path, NULL, "The decoded path, without the "
                                         "query.", NULL},
    {"body", (getter)req_get_body, NULL, "The body (bytes).", NULL},
    {"worker", (getter)req_get_worker, NULL, "The worker serving it.", NULL},
    {"answered", (getter)req_get_answered, NULL,
     "True once answered (or its handler returned).", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot req_slots[] = {
    {Py_tp_doc, "An HTTP request handed to a Workers' handler: valid during "
                "the handler call only, on its thread."},
    {Py_tp_dealloc, req_dealloc},
    {Py_tp_methods, req_methods},
    {Py_tp_getset, req_getset},
    {0, NULL}};

#ifndef Py_TPFLAGS_DISALLOW_INSTANTIATION
#define Py_TPFLAGS_DISALLOW_INSTANTIATION 0
#endif
static PyType_Spec req_spec = {
    "tern._tern.Request", sizeof(RequestObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, req_slots};

static PyMethodDef posix_functions[] = {
    {"token_make", FN_KW(m_token_make), METH_VARARGS | METH_KEYWORDS,
     "token_make(secret, session, expiry) -> str\n\nThe subscriber token of "
     "the session, valid until expiry (Unix seconds): "
     "'<expiry>.<hex HMAC-SHA256>' (tern_token_make(3))."},
    {"token_check", FN_KW(m_token_check), METH_VARARGS | METH_KEYWORDS,
     "token_check(token, secret, session, *, now=None)\n\nReturns None when "
     "the token is the session's and not expired at now (Unix seconds; "
     "default: the wall clock).  Raises InvalidError (malformed, wrong "
     "secret or session; compared in constant time) or StateError "
     "(expired)."},
    {NULL, NULL, 0, NULL}};

int tp_posix_init(PyObject *m) {
  if (PyModule_AddFunctions(m, posix_functions) < 0) {
    return -1;
  }
  tp_WorkersType = (PyTypeObject *)PyType_FromSpec(&workers_spec);
  tp_RequestType = (PyTypeObject *)PyType_FromSpec(&req_spec);
  if (!tp_WorkersType || !tp_RequestType) {
    return -1;
  }
  Py_INCREF(tp_WorkersType);
  Py_INCREF(tp_RequestType);
  if (PyModule_AddObject(m, "Workers", (PyObject *)tp_WorkersType) < 0 ||
      PyModule_AddObject(m, "Request", (PyObject *)tp_RequestType) < 0) {
    return -1;
  }
  return PyModule_AddIntConstant(m, "TOKEN_MAX", TERN_TOKEN_MAX);
}

#else

int tp_posix_init(PyObject *m) {
  (void)m;
  return 0;
}

#endif
