/*
 * tern._tern.Hub: a tern_hub, with publishing, events, expiry, session
 * management and the calls behind tern.Topic and tern.Session.
 */
#include "tern_py.h"

#include <stddef.h>
#include <structmember.h>

PyTypeObject *tp_HubType;

/* ---- lifetime -------------------------------------------------------------- */

int tp_hub_usable(HubObject *h) {
  if (!h->hub) {
    tp_raise(TERN_ERR_CLOSED, "the hub is closed");
    return 0;
  }
  if (h->in_zone) {
    tp_raise(TERN_ERR_STATE,
             "a hub may not be used from inside its zone callback");
    return 0;
  }
  if (h->in_store) {
    tp_raise(TERN_ERR_STATE,
             "a hub may not be used from inside its store's methods");
    return 0;
  }
  return 1;
}

long long tp_hub_after(HubObject *h, long long rc) {
  if (h->in_store) {
    return rc;
  }
  if (h->ndeferred && h->hub) {
    for (size_t i = 0; i < h->ndeferred; ++i) {
      tern_conn_del(h->deferred[i]);
    }
  }
  h->ndeferred = 0;
  if (h->store_exc && rc >= 0) {
    /* The store failed, the hub reported it as an event (STORE_FAILED,
       PERSISTED with an error); the exception itself goes to the hook. */
    PyObject *exc = h->store_exc;
    h->store_exc = NULL;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    PyErr_WriteUnraisable(h->store ? h->store : Py_None);
    PyErr_Restore(et, ev, tb);
    Py_DECREF(exc);
  }
  return rc;
}

PyObject *tp_hub_raise(HubObject *h, long long rc) {
  PyObject *cause = h->store_exc;
  h->store_exc = NULL;
  tp_raise((int)rc, NULL);
  if (cause) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    if (ev) {
      PyException_SetCause(ev, cause); /* steals */
    } else {
      Py_DECREF(cause);
    }
    PyErr_Restore(et, ev, tb);
  }
  return NULL;
}

/* tp_hub_after, then raise for a negative |rc|: NULL, or NULL-free 0. */
static int check(HubObject *h, long long rc) {
  tp_hub_after(h, rc);
  if (rc < 0) {
    tp_hub_raise(h, rc);
    return -1;
  }
  return 0;
}

/* Session user data holds a reference to a Python object (Hub.
   set_session_data); it is handed over in the SESSION_EXPIRED event or
   dropped by delete_session.  Before the hub goes: what is left. */
static void release_session_data(HubObject *h) {
  tern_event ev;
  while (tern_hub_next_event(h->hub, &ev) == 1) {
    if (ev.type == TERN_EV_SESSION_EXPIRED && ev.cookie) {
      Py_DECREF((PyObject *)(uintptr_t)ev.cookie);
    }
  }
  tern_session_iter it = TERN_SESSION_ITER_INIT;
  tern_session *s;
  while ((s = tern_hub_next_session(h->hub, &it)) != NULL) {
    PyObject *o = tern_session_get_user_data(s);
    if (o) {
      tern_session_set_user_data(s, NULL);
      Py_DECREF(o);
    }
  }
}

void tp_hub_close(HubObject *h) {
  if (!h->hub) {
    return;
  }
  release_session_data(h);
  /* tern_hub_del flushes what waits to the store: the Python store's
     methods may run, and may not re-enter. */
  h->in_store++;
  tern_hub_del(h->hub);
  h->in_store--;
  h->hub = NULL;
  h->ndeferred = 0; /* those connections went with the hub */
  PyMem_Free(h->deferred);
  h->deferred = NULL;
  h->capdeferred = 0;
  if (h->store_exc) {
    tp_hub_after(h, 0);
  }
  tp_store_detach(h);
}

const tp_field tp_settings_fields[] = {
    {"max_payload", offsetof(tern_settings, max_payload), TP_SIZE},
    {"max_sessions", offsetof(tern_settings, max_sessions), TP_U32},
    {"max_conns", offsetof(tern_settings, max_conns), TP_U32},
    {"inflight_window", offsetof(tern_settings, inflight_window), TP_U32},
    {"max_pending", offsetof(tern_settings, max_pending), TP_U32},
    {"max_pending_bytes", offsetof(tern_settings, max_pending_bytes),
     TP_SIZE},
    {"overflow", offsetof(tern_settings, overflow), TP_OVERFLOW3},
    {"retry_after", offsetof(tern_settings, retry_after), TP_DUR},
    {"default_ttl", offsetof(tern_settings, default_ttl), TP_DUR},
    {"heartbeat_interval", offsetof(tern_settings, heartbeat_interval),
     TP_DUR},
    {"liveness_timeout", offsetof(tern_settings, liveness_timeout), TP_DUR},
    {"max_heartbeat", offsetof(tern_settings, max_heartbeat), TP_DUR},
    {"session_ttl", offsetof(tern_settings, session_ttl), TP_DUR},
    {"dedup_window", offsetof(tern_settings, dedup_window), TP_DUR},
    {"ack_timeout", offsetof(tern_settings, ack_timeout), TP_DUR},
    {"max_deliver", offsetof(tern_settings, max_deliver), TP_U32},
    {"max_events", offsetof(tern_settings, max_events), TP_U32},
    {"seed", offsetof(tern_settings, seed), TP_U64},
    {"trace", offsetof(tern_settings, trace), TP_BOOL},
    {"hello_accept", offsetof(tern_settings, hello_accept), TP_BOOL},
    {"max_pool_bytes", offsetof(tern_settings, max_pool_bytes), TP_SIZE},
    {"topic_rate", offsetof(tern_settings, topic_rate), TP_U32},
    {"topic_burst", offsetof(tern_settings, topic_burst), TP_U32},
    {"accept_rate", offsetof(tern_settings, accept_rate), TP_U32},
    {"accept_burst", offsetof(tern_settings, accept_burst), TP_U32},
    {"accept_max_retry", offsetof(tern_settings, accept_max_retry), TP_DUR},
    {NULL, 0, TP_U32}};

static int hub_init(HubObject *self, PyObject *args, PyObject *kwargs) {
  if (PyTuple_GET_SIZE(args) != 0) {
    PyErr_SetString(PyExc_TypeError,
                    "Hub() takes keyword arguments only (settings)");
    return -1;
  }
  if (self->hub) {
    PyErr_SetString(PyExc_RuntimeError, "Hub.__init__ called twice");
    return -1;
  }
  tern_settings s;
  tern_settings_default(&s);
  if (tp_apply_fields(&s, tp_settings_fields, kwargs, NULL) < 0) {
    return -1;
  }
  int rc = tern_hub_new(&self->hub, &s, NULL);
  if (rc < 0) {
    tp_raise(rc, rc == TERN_ERR_INVALID ? "invalid hub settings" : NULL);
    return -1;
  }
  return 0;
}

static int hub_traverse(HubObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->store);
  Py_VISIT(self->zone_fn);
  return 0;
}

static int hub_clear(HubObject *self) {
  tp_hub_close(self);
  Py_CLEAR(self->store_exc);
  Py_CLEAR(self->zone_fn);
  return 0;
}

static void hub_dealloc(HubObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->weakrefs) {
    PyObject_ClearWeakRefs((PyObject *)self);
  }
  hub_clear(self);
  tp->tp_free((PyObject *)self);
  Py_DECREF(tp);
}

static PyObject *hub_close(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (self->in_store) {
    return tp_raise(TERN_ERR_STATE,
                    self->in_zone
                        ? "a hub may not be closed from inside its zone "
                          "callback"
                        : "a hub may not be closed from inside its store");
  }
  tp_hub_close(self);
  Py_RETURN_NONE;
}

static PyObject *hub_enter(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  return Py_NewRef(self);
}

static PyObject *hub_exit(HubObject *self, PyObject *args) {
  (void)args;
  return hub_close(self, NULL);
}

static PyObject *hub_get_closed(HubObject *self, void *c) {
  (void)c;
  return PyBool_FromLong(self->hub == NULL);
}

static PyObject *hub_get_epoch(HubObject *self, void *c) {
  (void)c;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  return PyLong_FromUnsignedLongLong(tern_hub_get_epoch(self->hub));
}

static PyObject *hub_get_expiry(HubObject *self, void *c) {
  (void)c;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  return tp_tstamp(tern_hub_get_expiry(self->hub));
}

/* Parses the single optional keyword argument now=. */
static int now_only(PyObject *args, PyObject *kw, const char *fmt,
                    tern_tstamp *now) {
  static char *kwlist[] = {"now", NULL};
  PyObject *o = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &o)) {
    return -1;
  }
  return tp_now(o, now);
}

static PyObject *hub_handle_expiry(HubObject *self, PyObject *args,
                                   PyObject *kw) {
  tern_tstamp now;
  if (now_only(args, kw, "|O:handle_expiry", &now) < 0 ||
      !tp_hub_usable(self)) {
    return NULL;
  }
  if (check(self, tern_hub_handle_expiry(self->hub, now)) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *hub_next_ready(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  for (;;) {
    tern_conn *c = tern_hub_next_ready(self->hub);
    if (!c) {
      Py_RETURN_NONE;
    }
    if (tern_conn_get_user_data(c)) {
      return tp_conn_object(c);
    }
    /* a connection whose Conn died inside a store method: deleted soon */
  }
}

static PyObject *hub_goaway_all(HubObject *self, PyObject *args,
                                PyObject *kw) {
  static char *kwlist[] = {"reason", "max_retry", "now", NULL};
  unsigned int reason = TERN_GOAWAY_RESTART;
  PyObject *max_retry = NULL, *nowo = NULL;
  tern_duration mr;
  tern_tstamp now;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|IO$O:goaway_all", kwlist,
                                   &reason, &max_retry, &nowo) ||
      tp_duration(max_retry, &mr, "max_retry") < 0 || tp_now(nowo, &now) < 0 ||
      !tp_hub_usable(self)) {
    return NULL;
  }
  int n = tern_hub_goaway_all(self->hub, reason, mr, now);
  if (check(self, n) < 0) {
    return NULL;
  }
  return PyLong_FromLong(n);
}

static PyObject *hub_stats(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  tern_stats st;
  tern_hub_get_stats(self->hub, &st, sizeof(st));
  return tp_stats(&st);
}

static PyObject *hub_next_event(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  tern_event ev;
  int rc = tern_hub_next_event(self->hub, &ev);
  if (rc < 0) {
    return tp_raise(rc, NULL);
  }
  if (rc == 0) {
    Py_RETURN_NONE;
  }
  PyObject *data = NULL;
  if (ev.type == TERN_EV_SESSION_EXPIRED && ev.cookie) {
    data = (PyObject *)(uintptr_t)ev.cookie; /* the session's reference */
    ev.cookie = 0;
  }
  PyObject *o = tp_event(&ev);
  if (o && data) {
    PyObject *old = PyStructSequence_GetItem(o, 8);
    PyStructSequence_SetItem(o, 8, data); /* steals */
    Py_DECREF(old);
  } else {
    Py_XDECREF(data);
  }
  return o;
}

/* ---- publishing ------------------------------------------------------------ */

/* Raises for a failed publish, with what the result says. */
static PyObject *publish_error(HubObject *self, int rc,
                               const tern_publish_result *r) {
  tp_hub_raise(self, rc);
  if (rc != TERN_ERR_FULL && rc != TERN_ERR_DUPLICATE) {
    return NULL;
  }
  PyObject *et, *ev, *tb;
  PyErr_Fetch(&et, &ev, &tb);
  PyErr_NormalizeException(&et, &ev, &tb);
  if (ev) {
    PyObject *id = PyBytes_FromStringAndSize((const char *)r->id,
                                             (Py_ssize_t)r->idlen);
    PyObject *oc = tp_enum("PublishOutcome", (long)r->outcome);
    PyObject *ra = tp_seconds(r->retry_after);
    if (id && oc && ra) {
      PyObject_SetAttrString(ev, "id", id);
      PyObject_SetAttrString(ev, "outcome", oc);
      PyObject_SetAttrString(ev, "retry_after", ra);
    }
    Py_XDECREF(id);
    Py_XDECREF(oc);
    Py_XDECREF(ra);
    PyErr_Clear();
  }
  PyErr_Restore(et, ev, tb);
  return NULL;
}

static const char *const publish_names[] = {
    "key",          "payload", "id",   "collapse_key", "priority",
    "ttl",          "content_type", "attrs", "sync", "volatile",
    "trace",        "cookie",  "fallback", "now",  NULL};

static PyObject *hub_publish(HubObject *self, PyObject *const *args,
                             Py_ssize_t nargs, PyObject *kwnames) {
  static tp_args spec = {"publish", publish_names, 2, 2, {0}, 0};
  PyObject *a[14];
  if (tp_parse(&spec, args, nargs, kwnames, a) < 0) {
    return NULL;
  }
  PyObject *key = a[0], *payload = a[1], **o = a + 2, *nowo = a[13];
  tern_tstamp now;
  tp_bytes k;
  tp_msg m;
  tp_msg_init(&m);
  k.held = 0;
  PyObject *ret = NULL;
  if (tp_now(nowo, &now) < 0 || tp_bytes_get(key, &k, "key", 0) < 0 ||
      tp_msg_parse(&m, payload, o[0], o[1], o[2], o[3], o[4], o[5], o[6],
                   o[7], o[8], o[9]) < 0 ||
      tp_duration(a[12], &m.d.fallback, "fallback") < 0 ||
      !tp_hub_usable(self)) {
    goto done;
  }
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  int rc = tern_hub_publish(self->hub, k.p, k.n, &m.d, now, &r);
  tp_hub_after(self, rc);
  ret = rc < 0 ? publish_error(self, rc, &r) : tp_publish_result(&r);
done:
  tp_bytes_release(&k);
  tp_msg_release(&m);
  return ret;
}

/* publish_batch: many payloads to one session, one call.  The loop is the
   whole point: no Python frame and no result object per message. */
static PyObject *hub_publish_batch(HubObject *self, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames) {
  static const char *const names[] = {
      "key",   "payloads", "collapse_key", "priority", "ttl", "content_type",
      "attrs", "sync",     "volatile",     "trace",    "cookie", "fallback",
      "now",   NULL};
  static tp_args spec = {"publish_batch", names, 2, 2, {0}, 0};
  PyObject *a[13];
  if (tp_parse(&spec, args, nargs, kwnames, a) < 0) {
    return NULL;
  }
  PyObject *key = a[0], *payloads = a[1], **o = a + 2, *nowo = a[12];
  tern_tstamp now;
  tp_bytes k;
  tp_msg m;
  tp_msg_init(&m);
  k.held = 0;
  PyObject *seq = NULL, *ret = NULL;
  if (tp_now(nowo, &now) < 0 || tp_bytes_get(key, &k, "key", 0) < 0 ||
      tp_msg_parse(&m, NULL, NULL, o[0], o[1], o[2], o[3], o[4], o[5], o[6],
                   o[7], o[8]) < 0 ||
      tp_duration(a[11], &m.d.fallback, "fallback") < 0 ||
      !tp_hub_usable(self)) {
    goto done;
  }
  seq = PySequence_Fast(payloads, "payloads must be a sequence");
  if (!seq) {
    goto done;
  }
  /* The size is read again each time: a list may change under us when a
     Python store method runs inside a publish. */
  Py_ssize_t i;
  int rc = 0, failed = 0;
  for (i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
    PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, i));
    tp_bytes p;
    if (tp_bytes_get(item, &p, "payload", 0) < 0) {
      Py_DECREF(item);
      failed = 1;
      break;
    }
    m.d.payload = p.p;
    m.d.payloadlen = p.n;
    rc = tern_hub_publish(self->hub, k.p, k.n, &m.d, now, NULL);
    tp_bytes_release(&p);
    Py_DECREF(item);
    if (rc < 0) {
      failed = 1;
      break;
    }
  }
  Py_ssize_t n = i;
  tp_hub_after(self, rc);
  if (failed) {
    if (rc < 0) {
      tp_hub_raise(self, rc);
    }
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    if (ev) {
      PyObject *idx = PyLong_FromSsize_t(i);
      if (idx) {
        PyObject_SetAttrString(ev, "index", idx);
        Py_DECREF(idx);
      }
      PyErr_Clear();
    }
    PyErr_Restore(et, ev, tb);
    goto done;
  }
  ret = PyLong_FromSsize_t(n);
done:
  Py_XDECREF(seq);
  tp_bytes_release(&k);
  tp_msg_release(&m);
  return ret;
}

static PyObject *hub_publish_many(HubObject *self, PyObject *args,
                                  PyObject *kw) {
  static char *kwlist[] = {"keys",     "payload", "id",           "collapse_key",
                           "priority", "ttl",     "content_type", "attrs",
                           "sync",     "volatile", "trace",       "cookie",
                           "fallback", "now",      NULL};
  PyObject *keys, *payload, *o[10] = {0}, *nowo = NULL, *fallback = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$OOOOOOOOOOOO:publish_many",
                                   kwlist, &keys, &payload, &o[0], &o[1],
                                   &o[2], &o[3], &o[4], &o[5], &o[6], &o[7],
                                   &o[8], &o[9], &fallback, &nowo)) {
    return NULL;
  }
  tern_tstamp now;
  tp_msg m;
  tp_msg_init(&m);
  PyObject *seq = NULL, *ret = NULL, *failed = NULL;
  tern_key *tk = NULL;
  tern_key_result *res = NULL;
  tp_bytes *views = NULL;
  Py_ssize_t nk = 0, got = 0;
  if (tp_now(nowo, &now) < 0 ||
      tp_msg_parse(&m, payload, o[0], o[1], o[2], o[3], o[4], o[5], o[6],
                   o[7], o[8], o[9]) < 0 ||
      tp_duration(fallback, &m.d.fallback, "fallback") < 0 ||
      !tp_hub_usable(self)) {
    goto done;
  }
  seq = PySequence_Fast(keys, "keys must be a sequence");
  if (!seq) {
    goto done;
  }
  nk = PySequence_Fast_GET_SIZE(seq);
  tk = PyMem_Calloc((size_t)nk + 1, sizeof(*tk));
  res = PyMem_Calloc((size_t)nk + 1, sizeof(*res));
  views = PyMem_Calloc((size_t)nk + 1, sizeof(*views));
  if (!tk || !res || !views) {
    PyErr_NoMemory();
    goto done;
  }
  for (; got < nk && got < PySequence_Fast_GET_SIZE(seq); ++got) {
    if (tp_bytes_get(PySequence_Fast_GET_ITEM(seq, got), &views[got], "key",
                     0) < 0) {
      goto done;
    }
    tk[got].key = views[got].p;
    tk[got].keylen = views[got].n;
  }
  tern_publish_result r;
  memset(&r, 0, sizeof(r));
  nk = got;
  tern_ssize q = tern_hub_publish_many(self->hub, tk, (size_t)nk, &m.d, now,
                                       res, &r);
  if (check(self, q) < 0) {
    goto done;
  }
  failed = PyDict_New();
  for (Py_ssize_t i = 0; failed && i < nk; ++i) {
    if (res[i].error == 0) {
      continue;
    }
    PyObject *kb = PyBytes_FromStringAndSize((const char *)tk[i].key,
                                             (Py_ssize_t)tk[i].keylen);
    PyObject *code = tp_enum("ErrorCode", res[i].error);
    if (!kb || !code || PyDict_SetItem(failed, kb, code) < 0) {
      Py_CLEAR(failed);
    }
    Py_XDECREF(kb);
    Py_XDECREF(code);
  }
  if (failed) {
    ret = Py_BuildValue("(nNN)", (Py_ssize_t)q,
                        PyBytes_FromStringAndSize((const char *)r.id,
                                                  (Py_ssize_t)r.idlen),
                        failed);
  }
done:
  for (Py_ssize_t i = 0; i < got; ++i) {
    tp_bytes_release(&views[i]);
  }
  PyMem_Free(tk);
  PyMem_Free(res);
  PyMem_Free(views);
  Py_XDECREF(seq);
  tp_msg_release(&m);
  return ret;
}

/* ---- sessions -------------------------------------------------------------- */

/* Parses (key, ..., now=) for the session calls; |fmt| names the rest. */
static PyObject *session_info(HubObject *self, PyObject *key) {
  tp_bytes k;
  if (tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  tern_session *s = tern_hub_find_session(self->hub, k.p, k.n);
  tp_bytes_release(&k);
  if (!s) {
    return tp_raise(TERN_ERR_NOT_FOUND, "no session with that key");
  }
  tern_session_info si;
  tern_session_get_info(s, &si, sizeof(si));
  return tp_session_info(&si);
}

static PyObject *hub_session_info(HubObject *self, PyObject *key) {
  return session_info(self, key);
}

static PyObject *hub_has_session(HubObject *self, PyObject *key) {
  tp_bytes k;
  if (tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  tern_session *s = tern_hub_find_session(self->hub, k.p, k.n);
  tp_bytes_release(&k);
  return PyBool_FromLong(s != NULL);
}

static tern_session *find_session(HubObject *self, PyObject *key) {
  tp_bytes k;
  if (tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  tern_session *s = NULL;
  if (tp_hub_usable(self)) {
    s = tern_hub_find_session(self->hub, k.p, k.n);
    if (!s) {
      tp_raise(TERN_ERR_NOT_FOUND, "no session with that key");
    }
  }
  tp_bytes_release(&k);
  return s;
}

static PyObject *hub_session_data(HubObject *self, PyObject *key) {
  tern_session *s = find_session(self, key);
  if (!s) {
    return NULL;
  }
  PyObject *o = tern_session_get_user_data(s);
  return Py_NewRef(o ? o : Py_None);
}

static PyObject *hub_set_session_data(HubObject *self, PyObject *args) {
  PyObject *key, *data;
  if (!PyArg_ParseTuple(args, "OO:set_session_data", &key, &data)) {
    return NULL;
  }
  tern_session *s = find_session(self, key);
  if (!s) {
    return NULL;
  }
  PyObject *old = tern_session_get_user_data(s);
  tern_session_set_user_data(s, data == Py_None ? NULL : Py_NewRef(data));
  Py_XDECREF(old);
  Py_RETURN_NONE;
}

static PyObject *hub_session_keys(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  PyObject *list = PyList_New(0);
  tern_session_iter it = TERN_SESSION_ITER_INIT;
  tern_session *s;
  while (list && (s = tern_hub_next_session(self->hub, &it)) != NULL) {
    tern_session_info si;
    tern_session_get_info(s, &si, sizeof(si));
    PyObject *k = PyBytes_FromStringAndSize((const char *)si.key,
                                            (Py_ssize_t)si.keylen);
    if (!k || PyList_Append(list, k) < 0) {
      Py_CLEAR(list);
    }
    Py_XDECREF(k);
  }
  return list;
}

static PyObject *hub_delete_session(HubObject *self, PyObject *args,
                                    PyObject *kw) {
  static char *kwlist[] = {"key", "now", NULL};
  PyObject *key, *nowo = NULL;
  tern_tstamp now;
  tp_bytes k;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:delete_session", kwlist,
                                   &key, &nowo) ||
      tp_now(nowo, &now) < 0 || tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  PyObject *data = NULL;
  int rc = 1;
  if (tp_hub_usable(self)) {
    tern_session *s = tern_hub_find_session(self->hub, k.p, k.n);
    data = s ? tern_session_get_user_data(s) : NULL;
    rc = tern_hub_delete_session(self->hub, k.p, k.n, now);
  }
  tp_bytes_release(&k);
  if (rc == 1 || check(self, rc) < 0) {
    return NULL;
  }
  Py_XDECREF(data); /* the session is gone, and its reference with it */
  Py_RETURN_NONE;
}

static PyObject *hub_purge_session(HubObject *self, PyObject *args,
                                   PyObject *kw) {
  static char *kwlist[] = {"key", "unsent_only", "now", NULL};
  PyObject *key, *nowo = NULL;
  int unsent = 0;
  tern_tstamp now;
  tp_bytes k;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$pO:purge_session", kwlist,
                                   &key, &unsent, &nowo) ||
      tp_now(nowo, &now) < 0 || tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  tern_ssize n = tern_hub_purge_session(self->hub, k.p, k.n,
                                        unsent ? TERN_PURGE_UNSENT : 0, now);
  tp_bytes_release(&k);
  if (check(self, n) < 0) {
    return NULL;
  }
  return PyLong_FromSsize_t(n);
}

static PyObject *hub_cancel(HubObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"key", "id", "now", NULL};
  PyObject *key, *id, *nowo = NULL;
  tern_tstamp now;
  tp_bytes k, i;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$O:cancel", kwlist, &key,
                                   &id, &nowo) ||
      tp_now(nowo, &now) < 0 || tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (tp_bytes_get(id, &i, "id", 0) < 0) {
    tp_bytes_release(&k);
    return NULL;
  }
  int rc = tp_hub_usable(self)
               ? tern_hub_cancel(self->hub, k.p, k.n, i.p, i.n, now)
               : 2;
  tp_bytes_release(&k);
  tp_bytes_release(&i);
  if (rc == 2 || check(self, rc) < 0) {
    return NULL;
  }
  return PyBool_FromLong(rc == 1);
}

static PyObject *hub_ack(HubObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames) {
  static const char *const names[] = {"key", "seq", "now", NULL};
  static tp_args spec = {"ack", names, 2, 2, {0}, 0};
  PyObject *a[3];
  tern_tstamp now;
  tp_bytes k;
  if (tp_parse(&spec, args, nargs, kwnames, a) < 0) {
    return NULL;
  }
  unsigned long long seq = PyLong_Check(a[1]) ? PyLong_AsUnsignedLongLong(a[1])
                                              : 0;
  if (!PyLong_Check(a[1])) {
    PyErr_SetString(PyExc_TypeError, "seq must be an int");
    return NULL;
  }
  if ((seq == (unsigned long long)-1 && PyErr_Occurred()) ||
      tp_now(a[2], &now) < 0 || tp_bytes_get(a[0], &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  tern_ssize n = tern_hub_ack(self->hub, k.p, k.n, seq, now);
  tp_bytes_release(&k);
  if (check(self, n) < 0) {
    return NULL;
  }
  return PyLong_FromSsize_t(n);
}

static PyObject *hub_subscribe(HubObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"key", "pattern", "filter", "now", NULL};
  PyObject *key, *pat, *filt = NULL, *nowo = NULL;
  const char *ps, *fs;
  tern_tstamp now;
  tp_bytes k;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O$O:subscribe", kwlist, &key,
                                   &pat, &filt, &nowo) ||
      tp_now(nowo, &now) < 0 || tp_cstr_get(pat, &ps, NULL, "pattern", 0) < 0 ||
      tp_cstr_get(filt, &fs, NULL, "filter", 1) < 0 ||
      tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  size_t errpos = 0;
  tern_ssize n = tern_hub_subscribe(self->hub, k.p, k.n, ps, fs, now, &errpos);
  tp_bytes_release(&k);
  if (check(self, n) < 0) {
    if (n == TERN_ERR_INVALID) { /* where the pattern or filter went wrong */
      PyObject *et, *ev, *tb;
      PyErr_Fetch(&et, &ev, &tb);
      PyErr_NormalizeException(&et, &ev, &tb);
      PyObject *pos = ev ? PyLong_FromSize_t(errpos) : NULL;
      if (pos) {
        PyObject_SetAttrString(ev, "position", pos);
        Py_DECREF(pos);
      }
      PyErr_Clear();
      PyErr_Restore(et, ev, tb);
    }
    return NULL;
  }
  return PyLong_FromSsize_t(n);
}

static PyObject *hub_unsubscribe(HubObject *self, PyObject *args,
                                 PyObject *kw) {
  static char *kwlist[] = {"key", "pattern", "now", NULL};
  PyObject *key, *pat, *nowo = NULL;
  const char *ps;
  tern_tstamp now;
  tp_bytes k;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$O:unsubscribe", kwlist, &key,
                                   &pat, &nowo) ||
      tp_now(nowo, &now) < 0 || tp_cstr_get(pat, &ps, NULL, "pattern", 0) < 0 ||
      tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  tern_ssize n = tern_hub_unsubscribe(self->hub, k.p, k.n, ps, now);
  tp_bytes_release(&k);
  if (check(self, n) < 0) {
    return NULL;
  }
  return PyLong_FromSsize_t(n);
}

/* ---- topics (by name: tern.Topic holds no pointer) ------------------------ */

static const tp_field topic_fields[] = {
    {"max_messages", offsetof(tern_topic_options, max_messages), TP_U32},
    {"max_bytes", offsetof(tern_topic_options, max_bytes), TP_U64},
    {"max_age", offsetof(tern_topic_options, max_age), TP_DUR},
    {"rate", offsetof(tern_topic_options, rate), TP_U32},
    {"burst", offsetof(tern_topic_options, burst), TP_U32},
    {NULL, 0, TP_U32}};

static tern_topic *find_topic(HubObject *self, PyObject *name) {
  const char *s;
  if (tp_cstr_get(name, &s, NULL, "name", 0) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  tern_topic *t = tern_hub_find_topic(self->hub, s);
  if (!t) {
    tp_raise(TERN_ERR_NOT_FOUND, "no topic of that name");
  }
  return t;
}

static PyObject *hub_create_topic(HubObject *self, PyObject *args,
                                  PyObject *kw) {
  PyObject *name;
  if (!PyArg_ParseTuple(args, "O:create_topic", &name)) {
    return NULL;
  }
  tern_topic_options o;
  tern_topic_options_default(&o);
  static const char *const skip[] = {"now", NULL};
  tern_tstamp now;
  const char *s;
  if (tp_apply_fields(&o, topic_fields, kw, skip) < 0 ||
      tp_now(kw ? PyDict_GetItemString(kw, "now") : NULL, &now) < 0 ||
      tp_cstr_get(name, &s, NULL, "name", 0) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  if (check(self, tern_hub_create_topic(self->hub, s, &o, now, NULL)) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *hub_has_topic(HubObject *self, PyObject *name) {
  const char *s;
  if (tp_cstr_get(name, &s, NULL, "name", 0) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  return PyBool_FromLong(tern_hub_find_topic(self->hub, s) != NULL);
}

static PyObject *hub_delete_topic(HubObject *self, PyObject *args,
                                  PyObject *kw) {
  static char *kwlist[] = {"name", "now", NULL};
  PyObject *name, *nowo = NULL;
  tern_tstamp now;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:_delete_topic", kwlist,
                                   &name, &nowo) ||
      tp_now(nowo, &now) < 0) {
    return NULL;
  }
  tern_topic *t = find_topic(self, name);
  if (!t) {
    return NULL;
  }
  tern_topic_del(t, now);
  tp_hub_after(self, 0);
  Py_RETURN_NONE;
}

static PyObject *hub_topic_info(HubObject *self, PyObject *name) {
  tern_topic *t = find_topic(self, name);
  if (!t) {
    return NULL;
  }
  tern_topic_info ti;
  tern_topic_get_info(t, &ti, sizeof(ti));
  return tp_topic_info(&ti);
}

static PyObject *hub_topic_receipt(HubObject *self, PyObject *args) {
  PyObject *name;
  unsigned long long off;
  if (!PyArg_ParseTuple(args, "OK:topic_receipt", &name, &off)) {
    return NULL;
  }
  tern_topic *t = find_topic(self, name);
  if (!t) {
    return NULL;
  }
  tern_receipt r;
  int rc = tern_topic_get_receipt(t, off, &r, sizeof(r));
  if (rc < 0) {
    return tp_raise(rc, rc == TERN_ERR_NOT_FOUND
                            ? "no message at that offset (or retention "
                              "discarded it)"
                            : NULL);
  }
  return tp_receipt(&r);
}

static PyObject *hub_topic_publish(HubObject *self, PyObject *args,
                                   PyObject *kw) {
  static char *kwlist[] = {"name",     "payload", "id",           "collapse_key",
                           "priority", "ttl",     "content_type", "attrs",
                           "volatile", "cookie",  "now",          NULL};
  PyObject *name, *payload, *o[8] = {0}, *nowo = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$OOOOOOOOO:topic_publish",
                                   kwlist, &name, &payload, &o[0], &o[1],
                                   &o[2], &o[3], &o[4], &o[5], &o[6], &o[7],
                                   &nowo)) {
    return NULL;
  }
  tern_tstamp now;
  tp_msg m;
  tp_msg_init(&m);
  PyObject *ret = NULL;
  tern_topic *t;
  if (tp_now(nowo, &now) < 0 ||
      tp_msg_parse(&m, payload, o[0], o[1], o[2], o[3], o[4], o[5], NULL,
                   o[6], NULL, o[7]) < 0 ||
      (t = find_topic(self, name)) == NULL) {
    goto done;
  }
  uint64_t off = 0;
  if (check(self, tern_topic_publish(t, &m.d, now, &off)) == 0) {
    ret = PyLong_FromUnsignedLongLong(off);
  }
done:
  tp_msg_release(&m);
  return ret;
}

/* ---- connections ------------------------------------------------------------ */

static PyObject *hub_open_conn(HubObject *self, PyObject *args, PyObject *kw) {
  tern_tstamp now;
  if (now_only(args, kw, "|$O:open_conn", &now) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  tern_conn *c;
  int rc = tern_conn_new(&c, self->hub, now);
  if (check(self, rc) < 0) {
    return NULL;
  }
  return tp_conn_wrap(self, c, TERN_FRAMING_BINARY);
}

static PyObject *hub_open_stream(HubObject *self, PyObject *args,
                                 PyObject *kw) {
  static char *kwlist[] = {"key",   "framing",            "resume_epoch",
                           "resume_seq", "heartbeat_interval", "retry",
                           "poll_hold", "now", NULL};
  PyObject *key, *hb = NULL, *retry = NULL, *hold = NULL, *nowo = NULL;
  int framing = TERN_FRAMING_SSE;
  unsigned long long epoch = 0, seq = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i$KKOOOO:open_stream", kwlist,
                                   &key, &framing, &epoch, &seq, &hb, &retry,
                                   &hold, &nowo)) {
    return NULL;
  }
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  tern_tstamp now;
  o.framing = framing;
  o.resume_epoch = epoch;
  o.resume_seq = seq;
  if (tp_now(nowo, &now) < 0 ||
      tp_duration(hb, &o.heartbeat_interval, "heartbeat_interval") < 0 ||
      tp_duration(retry, &o.retry, "retry") < 0 ||
      (hold && tp_duration(hold, &o.poll_hold, "poll_hold") < 0)) {
    return NULL;
  }
  tp_bytes k;
  if (tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  o.key = k.p;
  o.keylen = k.n;
  tern_conn *c;
  int rc = tern_conn_new_stream(&c, self->hub, &o, now);
  tp_bytes_release(&k);
  if (check(self, rc) < 0) {
    return NULL;
  }
  return tp_conn_wrap(self, c, framing);
}

/* ---- policies -------------------------------------------------------------- */

/* Reads a signed int in [lo, hi] (TypeError for other types, bools too). */
static int get_int_range(PyObject *v, long lo, long hi, long *out,
                         const char *name) {
  if (!PyLong_Check(v) || PyBool_Check(v)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name,
                 Py_TYPE(v)->tp_name);
    return -1;
  }
  int overflow;
  long x = PyLong_AsLongAndOverflow(v, &overflow);
  if (x == -1 && PyErr_Occurred()) {
    return -1;
  }
  if (overflow || x < lo || x > hi) {
    PyErr_Format(PyExc_ValueError, "%s must be in [%ld, %ld]", name, lo, hi);
    return -1;
  }
  *out = x;
  return 0;
}

static PyObject *hub_set_policy(HubObject *self, PyObject *args,
                                PyObject *kw) {
  static char *kwlist[] = {"key",       "quiet_start", "quiet_end",
                           "utc_offset", "zone",       "cap_count",
                           "cap_window", "now",        NULL};
  PyObject *key, *qs = NULL, *qe = NULL, *off = NULL, *zone = NULL,
           *cc = NULL, *cw = NULL, *nowo = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$OOOOOOO:set_policy", kwlist,
                                   &key, &qs, &qe, &off, &zone, &cc, &cw,
                                   &nowo)) {
    return NULL;
  }
  tern_policy p;
  tern_policy_default(&p);
  tern_tstamp now;
  uint64_t x;
  long sx;
  if ((qs == NULL || qs == Py_None) != (qe == NULL || qe == Py_None)) {
    PyErr_SetString(PyExc_TypeError,
                    "set_policy: quiet_start and quiet_end go together");
    return NULL;
  }
  if (qs && qs != Py_None) {
    if (tp_uint(qs, 86399, &x, "quiet_start") < 0) {
      return NULL;
    }
    p.quiet_start = (uint32_t)x;
    if (tp_uint(qe, 86399, &x, "quiet_end") < 0) {
      return NULL;
    }
    p.quiet_end = (uint32_t)x;
  }
  if (off && off != Py_None) {
    if (get_int_range(off, -64800, 64800, &sx, "utc_offset") < 0) {
      return NULL;
    }
    p.utc_offset = (int32_t)sx;
  }
  if (zone && zone != Py_None) {
    if (tp_uint(zone, UINT32_MAX, &x, "zone") < 0) {
      return NULL;
    }
    p.zone = (uint32_t)x;
  }
  if (cc && cc != Py_None) {
    if (tp_uint(cc, TERN_MAX_CAP, &x, "cap_count") < 0) {
      return NULL;
    }
    p.cap_count = (uint32_t)x;
  }
  if (tp_duration(cw, &p.cap_window, "cap_window") < 0) {
    return NULL;
  }
  if (p.cap_count && !p.cap_window) {
    PyErr_SetString(PyExc_ValueError,
                    "set_policy: cap_count needs a cap_window > 0");
    return NULL;
  }
  if (tp_now(nowo, &now) < 0) {
    return NULL;
  }
  tp_bytes k;
  if (tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  int rc = tern_hub_set_policy(self->hub, k.p, k.n, &p, now);
  tp_bytes_release(&k);
  if (check(self, rc) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *hub_clear_policy(HubObject *self, PyObject *args,
                                  PyObject *kw) {
  static char *kwlist[] = {"key", "now", NULL};
  PyObject *key, *nowo = NULL;
  tern_tstamp now;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:clear_policy", kwlist, &key,
                                   &nowo) ||
      tp_now(nowo, &now) < 0) {
    return NULL;
  }
  tp_bytes k;
  if (tp_bytes_get(key, &k, "key", 0) < 0) {
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    tp_bytes_release(&k);
    return NULL;
  }
  int rc = tern_hub_set_policy(self->hub, k.p, k.n, NULL, now);
  tp_bytes_release(&k);
  if (check(self, rc) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

/* The bridge from tern_zone_fn to the Python callable.  It runs inside a
   hub call made from Python, so the GIL is held.  The callable may not use
   the hub (in_zone makes every hub method raise StateError).  The hub is
   inside a call as it is during a store method, so in_store is raised
   too: closing the hub or a Conn raises StateError, and a Conn that goes
   away (its last reference dropped, or the garbage collector running)
   has its native connection deleted after the call (tp_hub_after), not
   under the hub's feet.  An exception
   or a result that is not an int in [-64800, 64800] gives 0 (UTC), the
   exception going to sys.unraisablehook. */
static int32_t zone_bridge(uint32_t zone, int64_t wall_seconds, void *ud) {
  HubObject *h = ud;
  if (!h->zone_fn) {
    return 0;
  }
  PyObject *et, *ev, *tb;
  PyErr_Fetch(&et, &ev, &tb); /* keep whatever is pending as it is */
  int32_t ret = 0;
  PyObject *fn = Py_NewRef(h->zone_fn);
  h->in_zone++;
  h->in_store++;
  PyObject *r = PyObject_CallFunction(fn, "kL", (unsigned long)zone,
                                      (long long)wall_seconds);
  h->in_store--;
  h->in_zone--;
  if (r) {
    int overflow = 0;
    long v = PyLong_Check(r) && !PyBool_Check(r)
                 ? PyLong_AsLongAndOverflow(r, &overflow)
                 : 0;
    if (!PyLong_Check(r) || PyBool_Check(r)) {
      PyErr_Format(PyExc_TypeError,
                   "the zone callback must return an int, not %.100s",
                   Py_TYPE(r)->tp_name);
    } else if (!overflow && v >= -64800 && v <= 64800) {
      ret = (int32_t)v;
    } else {
      PyErr_Format(PyExc_ValueError, "the zone callback returned an offset "
                   "out of [-64800, 64800]");
    }
    Py_DECREF(r);
  }
  if (PyErr_Occurred()) {
    PyErr_WriteUnraisable(fn);
  }
  Py_DECREF(fn);
  PyErr_Restore(et, ev, tb);
  return ret;
}

static PyObject *hub_set_zone_callback(HubObject *self, PyObject *fn) {
  if (fn != Py_None && !PyCallable_Check(fn)) {
    PyErr_Format(PyExc_TypeError,
                 "set_zone_callback: fn must be callable or None, not %.100s",
                 Py_TYPE(fn)->tp_name);
    return NULL;
  }
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  int rc = tern_hub_set_zone_callback(self->hub,
                                      fn == Py_None ? NULL : zone_bridge,
                                      fn == Py_None ? NULL : self);
  if (check(self, rc) < 0) {
    return NULL;
  }
  Py_XSETREF(self->zone_fn, fn == Py_None ? NULL : Py_NewRef(fn));
  Py_RETURN_NONE;
}

/* ---- store ------------------------------------------------------------------ */

static PyObject *hub_set_store(HubObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"store", "now", NULL};
  PyObject *store, *nowo = NULL;
  tern_tstamp now;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:set_store", kwlist, &store,
                                   &nowo) ||
      tp_now(nowo, &now) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  if (tp_store_attach(self, store, now) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *hub_set_wallclock(HubObject *self, PyObject *args,
                                   PyObject *kw) {
  static char *kwlist[] = {"now", "wall_ns", NULL};
  PyObject *nowo = NULL, *wallo = NULL;
  tern_tstamp now;
  unsigned long long wall;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:set_wallclock", kwlist,
                                   &nowo, &wallo) ||
      tp_now(nowo, &now) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  if (wallo && wallo != Py_None) {
    wall = PyLong_AsUnsignedLongLong(wallo);
    if (PyErr_Occurred()) {
      return NULL;
    }
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    wall = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  }
  if (check(self, tern_hub_set_wallclock(self->hub, now, wall)) < 0) {
    return NULL;
  }
  self->wall_set = 1;
  Py_RETURN_NONE;
}

static PyObject *hub_flush(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (!tp_hub_usable(self) || check(self, tern_hub_flush(self->hub)) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *hub_store_done(HubObject *self, PyObject *args,
                                PyObject *kw) {
  static char *kwlist[] = {"batch", "status", NULL};
  unsigned long long batch;
  int status = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "K|i:store_done", kwlist, &batch,
                                   &status)) {
    return NULL;
  }
  if (!self->hub) {
    return tp_raise(TERN_ERR_CLOSED, "the hub is closed");
  }
  if (status > 0) {
    PyErr_SetString(PyExc_ValueError, "status must be 0 or an error code");
    return NULL;
  }
  int rc = tern_hub_store_done(self->hub, batch, status);
  if (rc < 0) {
    return tp_raise(rc, NULL);
  }
  Py_RETURN_NONE;
}

/* ---- the type --------------------------------------------------------------- */

#define KW METH_VARARGS | METH_KEYWORDS
#define FAST METH_FASTCALL | METH_KEYWORDS
#define FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef hub_methods[] = {
    {"close", (PyCFunction)hub_close, METH_NOARGS,
     "close()\n\nDeletes the hub with every session, message and connection "
     "it holds (what waits for the store is flushed first).  Its Conn "
     "objects raise ClosedError from then on.  Closing twice does nothing."},
    {"__enter__", (PyCFunction)hub_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)hub_exit, METH_VARARGS, NULL},
    {"handle_expiry", FN(hub_handle_expiry), KW,
     "handle_expiry(now=None)\n\nRuns every deadline at or before now."},
    {"next_ready", (PyCFunction)hub_next_ready, METH_NOARGS,
     "next_ready() -> Conn | None\n\nA connection that has become writable."},
    {"goaway_all", FN(hub_goaway_all), KW,
     "goaway_all(reason=GoawayReason.RESTART, max_retry=0, *, now=None) -> "
     "int\n\nTells every open connection to go away; returns how many."},
    {"stats", (PyCFunction)hub_stats, METH_NOARGS,
     "stats() -> Stats\n\nThe hub's counters and gauges."},
    {"next_event", (PyCFunction)hub_next_event, METH_NOARGS,
     "next_event() -> Event | None\n\nTakes the oldest queued event."},
    {"publish", FN(hub_publish), FAST,
     "publish(key, payload, *, id=None, collapse_key=None, priority="
     "Priority.NORMAL, ttl=0, content_type=None, attrs=None, sync=False, "
     "volatile=False, trace=False, cookie=0, fallback=0, now=None) -> "
     "PublishResult\n\n"
     "Queues one message for the session key (created when new).  fallback "
     "(seconds, 0: none): if it is not acked that long after the publish, "
     "a FALLBACK event carries it (msg_id, session_key, aux = the payload) "
     "so it can go by another channel; it stays queued.  payload "
     "is any bytes-like object (or str), read in place.  Raises "
     "DuplicateError, FullError (with .outcome and .retry_after), "
     "TooLargeError, InvalidError, LimitError."},
    {"publish_batch", FN(hub_publish_batch), FAST,
     "publish_batch(key, payloads, *, collapse_key=None, priority=..., "
     "ttl=0, ..., fallback=0, now=None) -> int\n\nPublishes every payload of the "
     "sequence to one session in one call, ids generated.  On an error the "
     "exception's .index says which payload failed; those before it were "
     "queued."},
    {"publish_many", FN(hub_publish_many), KW,
     "publish_many(keys, payload, *, id=None, ..., now=None) -> (queued, "
     "id, failed)\n\nOne message to many sessions, stored once.  failed "
     "maps each key that did not get it to its ErrorCode."},
    {"session_info", (PyCFunction)hub_session_info, METH_O,
     "session_info(key) -> SessionInfo\n\nRaises NotFoundError."},
    {"has_session", (PyCFunction)hub_has_session, METH_O,
     "has_session(key) -> bool"},
    {"session_data", (PyCFunction)hub_session_data, METH_O,
     "session_data(key) -> object\n\nThe object set_session_data attached "
     "to the session (None at first, and after a restore from a store)."},
    {"set_session_data", (PyCFunction)hub_set_session_data, METH_VARARGS,
     "set_session_data(key, data)\n\nAttaches any object to the session.  "
     "The hub keeps a reference until the session ends: its "
     "SESSION_EXPIRED event hands it over in Event.cookie; delete_session "
     "and close drop it.  Raises NotFoundError."},
    {"session_keys", (PyCFunction)hub_session_keys, METH_NOARGS,
     "session_keys() -> list[bytes]\n\nThe keys of every session."},
    {"delete_session", FN(hub_delete_session), KW,
     "delete_session(key, *, now=None)\n\nEnds the session now, as if it "
     "had never been.  Raises NotFoundError."},
    {"purge_session", FN(hub_purge_session), KW,
     "purge_session(key, *, unsent_only=False, now=None) -> int\n\nRemoves "
     "the messages the session holds, keeps the session."},
    {"cancel", FN(hub_cancel), KW,
     "cancel(key, id, *, now=None) -> bool\n\nRemoves the message; True "
     "when it had been sent at least once.  Raises NotFoundError."},
    {"ack", FN(hub_ack), FAST,
     "ack(key, seq, *, now=None) -> int\n\nAcknowledges out of band every "
     "message up to seq on the stream that carried seq; returns how many."},
    {"subscribe", FN(hub_subscribe), KW,
     "subscribe(key, pattern, filter=None, *, now=None) -> int\n\nSubscribes "
     "the session to the topics matching pattern; returns topics joined."},
    {"unsubscribe", FN(hub_unsubscribe), KW,
     "unsubscribe(key, pattern) -> int"},
    {"_create_topic", FN(hub_create_topic), KW, NULL},
    {"_has_topic", (PyCFunction)hub_has_topic, METH_O, NULL},
    {"_delete_topic", FN(hub_delete_topic),
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"_topic_info", (PyCFunction)hub_topic_info, METH_O, NULL},
    {"_topic_receipt", (PyCFunction)hub_topic_receipt, METH_VARARGS, NULL},
    {"_topic_publish", FN(hub_topic_publish), KW, NULL},
    {"open_conn", FN(hub_open_conn), KW,
     "open_conn(*, now=None) -> Conn\n\nA connection speaking the binary "
     "framing; its first frame from the peer must be HELLO."},
    {"open_stream", FN(hub_open_stream), KW,
     "open_stream(key, framing=Framing.SSE, *, resume_epoch=0, resume_seq=0, "
     "heartbeat_interval=0, retry=0, poll_hold=25, now=None) -> Conn\n\n"
     "A one-way connection (SSE, NDJSON or POLL) bound to the session key."},
    {"set_store", FN(hub_set_store), KW,
     "set_store(store, *, now=None)\n\nAttaches a FileStore or a Python "
     "store (see tern.Store) to this empty hub and restores its state."},
    {"set_wallclock", FN(hub_set_wallclock), KW,
     "set_wallclock(now=None, wall_ns=None)\n\nTells the hub the wall clock "
     "(default: time.time_ns()) at its monotonic now.  Call before "
     "set_store."},
    {"set_policy", FN(hub_set_policy), KW,
     "set_policy(key, *, quiet_start=None, quiet_end=None, utc_offset=0, "
     "zone=0, cap_count=0, cap_window=0, now=None)\n\nSets the delivery "
     "policy of session |key| (created if missing), replacing any other.  "
     "Quiet hours: quiet_start and quiet_end in seconds after local midnight "
     "(0..86399; start > end crosses midnight) hold NORMAL and LOW messages; "
     "local time is the hub's wall clock (set_wallclock) plus utc_offset "
     "seconds (-64800..64800), or the zone callback's offset when zone is "
     "not 0.  Cap: at most cap_count (<= MAX_CAP) NORMAL and LOW messages "
     "per sliding cap_window seconds; the rest wait.  HIGH always passes.  "
     "Held messages are never dropped by the policy.  A policy with neither "
     "rule removes it.  ValueError/TypeError for bad arguments; "
     "LimitError (max_sessions), TooLargeError (key)."},
    {"clear_policy", FN(hub_clear_policy), KW,
     "clear_policy(key, *, now=None)\n\nRemoves the policy of session |key| "
     "(created if missing); what it held goes out at once."},
    {"set_zone_callback", (PyCFunction)hub_set_zone_callback, METH_O,
     "set_zone_callback(fn)\n\nfn(zone: int, wall_seconds: int) -> int gives "
     "the UTC offset in seconds of a policy's zone; None removes it.  It is "
     "called synchronously from inside hub calls, on the calling thread; it "
     "may not use the hub (StateError).  An exception, or a result that is "
     "not an int in [-64800, 64800], counts as offset 0 (UTC) and is "
     "reported to sys.unraisablehook."},
    {"flush", (PyCFunction)hub_flush, METH_NOARGS,
     "flush()\n\nHands the waiting batch to the store."},
    {"_add_hook", FN(tp_hub_add_hook), KW, NULL},
    {"remove_hook", (PyCFunction)tp_hub_remove_hook, METH_O,
     "remove_hook(id)\n\nDeletes the web hook with its waiting entries and "
     "batches (no event).  Answers to its requests already taken are then "
     "refused.  Raises NotFoundError."},
    {"enable_hook", FN(tp_hub_enable_hook), KW,
     "enable_hook(id, *, now=None)\n\nEnables a disabled hook again: its "
     "failures count from 0 and its waiting entries are due from now.  An "
     "enabled hook is left as it is.  Raises NotFoundError."},
    {"verify_hook", FN(tp_hub_verify_hook), KW,
     "verify_hook(id, *, now=None)\n\nStarts the hook's challenge again: "
     "unverified from now on, its challenge due at now.  Raises "
     "NotFoundError, StateError (batches of it are outstanding)."},
    {"hook_ids", (PyCFunction)tp_hub_hook_ids, METH_NOARGS,
     "hook_ids() -> list[int]\n\nThe ids of every hook, ascending (those "
     "restored from a store among them)."},
    {"has_hook", (PyCFunction)tp_hub_has_hook, METH_O,
     "has_hook(id) -> bool"},
    {"hook_info", (PyCFunction)tp_hub_hook_info, METH_O,
     "hook_info(id) -> HookInfo\n\nThe hook now.  Raises NotFoundError."},
    {"hook_enqueue", FN(tp_hub_hook_enqueue), KW,
     "hook_enqueue(id, key, fields=(), *, time=None, data=None, now=None)"
     "\n\nQueues an entry for the hook: the object key (the body's \"id\"), "
     "the names of the fields that changed, its time (an int for the "
     "body, default the Unix time in seconds) and data, one JSON value as "
     "text (str or bytes) or None.  A COALESCE hook merges it into the "
     "waiting entry of the same key.  Raises NotFoundError, InvalidError, "
     "TooLargeError, FullError (max_queued entries wait)."},
    {"next_hook_request", FN(tp_hub_next_hook_request), KW,
     "next_hook_request(now=None) -> HookRequest | None\n\nTakes the next "
     "request due at now: a challenge, a batch due again after its backoff, "
     "or a new batch.  Make it with your HTTP client, then report the "
     "answer with hook_done.  None when nothing is due (see expiry)."},
    {"hook_done", FN(tp_hub_hook_done), KW,
     "hook_done(request, status, *, retry_after=None, body=None, now=None)"
     "\n\nReports the answer to a HookRequest (or a (hook, delivery) pair): "
     "status the HTTP status, or None (HOOK_NO_ANSWER) when there was no "
     "answer (a transport error, a timeout).  retry_after is the "
     "Retry-After header (str, or int seconds; read with 429), body the "
     "answer's body (read for a challenge).  2xx and 102 deliver; 500, "
     "502, 503, 504, 429 and no answer retry after a backoff; other "
     "statuses give the batch up.  Raises NotFoundError (not outstanding), "
     "InvalidError (a status out of range)."},
    {"store_done", FN(hub_store_done), KW,
     "store_done(batch, status=0)\n\nReports a batch that the store's append "
     "answered with STORE_LATER as complete (may be called from inside "
     "append)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef hub_getset[] = {
    {"closed", (getter)hub_get_closed, NULL, "True once closed.", NULL},
    {"epoch", (getter)hub_get_epoch, NULL, "The hub's epoch.", NULL},
    {"expiry", (getter)hub_get_expiry, NULL,
     "The earliest deadline (ns) for handle_expiry, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef hub_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HubObject, weakrefs),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyType_Slot hub_slots[] = {
    {Py_tp_doc,
     "Hub(**settings)\n\nA push-delivery hub: sessions, messages, "
     "connections, timers and events.  Settings are tern_settings fields "
     "(durations in seconds).  Use it in a with block, or call close()."},
    {Py_tp_init, hub_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, hub_dealloc},
    {Py_tp_traverse, hub_traverse},
    {Py_tp_clear, hub_clear},
    {Py_tp_methods, hub_methods},
    {Py_tp_getset, hub_getset},
    {Py_tp_members, hub_members},
    {0, NULL}};

static PyType_Spec hub_spec = {
    "tern._tern.Hub", sizeof(HubObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, hub_slots};

int tp_hub_type_init(PyObject *m) {
  tp_HubType = (PyTypeObject *)PyType_FromSpec(&hub_spec);
  if (!tp_HubType) {
    return -1;
  }
  Py_INCREF(tp_HubType);
  return PyModule_AddObject(m, "Hub", (PyObject *)tp_HubType);
}
