/*
 * tern._tern.Conn: one tern_conn, owned by its Python object.  A Conn
 * keeps its Hub alive; once the Hub is closed the native connection is
 * gone with it, and every call raises ClosedError.
 */
#include "tern_py.h"

#include <structmember.h>

PyTypeObject *tp_ConnType;

PyObject *tp_conn_object(tern_conn *c) {
  PyObject *o = c ? tern_conn_get_user_data(c) : NULL;
  if (!o) {
    Py_RETURN_NONE;
  }
  return Py_NewRef(o);
}

PyObject *tp_conn_wrap(HubObject *hub, tern_conn *c, int framing) {
  ConnObject *o = PyObject_GC_New(ConnObject, tp_ConnType);
  if (!o) {
    tern_conn_del(c);
    return NULL;
  }
  o->hub = (HubObject *)Py_NewRef(hub);
  o->conn = c;
  o->data = NULL;
  o->weakrefs = NULL;
  o->framing = framing;
  tern_conn_set_user_data(c, o);
  PyObject_GC_Track(o);
  return (PyObject *)o;
}

/* Deletes the native connection, or defers that when a store method of
   the hub runs (the hub is inside a call then; see tp_hub_after). */
static void release(ConnObject *self) {
  tern_conn *c = self->conn;
  self->conn = NULL;
  if (!c || !self->hub || !self->hub->hub) {
    return;
  }
  HubObject *h = self->hub;
  tern_conn_set_user_data(c, NULL);
  if (!h->in_store) {
    tern_conn_del(c);
    return;
  }
  if (h->ndeferred == h->capdeferred) {
    size_t cap = h->capdeferred ? 2 * h->capdeferred : 8;
    tern_conn **d = PyMem_Realloc(h->deferred, cap * sizeof(*d));
    if (!d) {
      return; /* freed with the hub, then */
    }
    h->deferred = d;
    h->capdeferred = cap;
  }
  h->deferred[h->ndeferred++] = c;
}

/* The usable native connection, or NULL with ClosedError/StateError. */
static tern_conn *usable(ConnObject *self) {
  if (!self->conn || !self->hub) {
    tp_raise(TERN_ERR_CLOSED, "the connection was closed (Conn.close)");
    return NULL;
  }
  if (!self->hub->hub) {
    tp_raise(TERN_ERR_CLOSED, "the connection's hub is closed");
    return NULL;
  }
  if (!tp_hub_usable(self->hub)) {
    return NULL;
  }
  return self->conn;
}

static int conn_traverse(ConnObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->hub);
  Py_VISIT(self->data);
  return 0;
}

static int conn_clear(ConnObject *self) {
  release(self);
  Py_CLEAR(self->data);
  Py_CLEAR(self->hub);
  return 0;
}

static void conn_dealloc(ConnObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->weakrefs) {
    PyObject_ClearWeakRefs((PyObject *)self);
  }
  conn_clear(self);
  PyObject_GC_Del(self);
  Py_DECREF(tp);
}

static PyObject *conn_close(ConnObject *self, PyObject *noarg) {
  (void)noarg;
  if (self->hub && self->hub->in_store) {
    return tp_raise(TERN_ERR_STATE,
                    "a connection may not be closed from inside a store");
  }
  release(self);
  Py_RETURN_NONE;
}

static PyObject *conn_enter(ConnObject *self, PyObject *noarg) {
  (void)noarg;
  if (!usable(self)) {
    return NULL;
  }
  return Py_NewRef(self);
}

static PyObject *conn_exit(ConnObject *self, PyObject *args) {
  (void)args;
  return conn_close(self, NULL);
}

static int parse_now(PyObject *args, PyObject *kw, const char *fmt,
                     PyObject **first, tern_tstamp *now) {
  static char *kwlist1[] = {"", "now", NULL};
  static char *kwlist0[] = {"now", NULL};
  PyObject *o = NULL;
  int ok = first ? PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist1, first,
                                               &o)
                 : PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist0, &o);
  return ok ? tp_now(o, now) : -1;
}

static PyObject *conn_read(ConnObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames) {
  static const char *const names[] = {"data", "now", NULL};
  static tp_args spec = {"read", names, 1, 1, {0}, 0};
  PyObject *a[2];
  tern_tstamp now;
  if (tp_parse(&spec, args, nargs, kwnames, a) < 0 || tp_now(a[1], &now) < 0) {
    return NULL;
  }
  PyObject *data = a[0];
  tp_bytes b;
  if (tp_bytes_get(data, &b, "data", 0) < 0) {
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    tp_bytes_release(&b);
    return NULL;
  }
  HubObject *h = (HubObject *)Py_NewRef(self->hub);
  tern_ssize n = tern_conn_read(c, b.p, b.n, now);
  tp_bytes_release(&b);
  tp_hub_after(h, n);
  PyObject *ret = n < 0 ? tp_hub_raise(h, n) : PyLong_FromSsize_t(n);
  Py_DECREF(h);
  return ret;
}

static PyObject *conn_write(ConnObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"size", "now", NULL};
  Py_ssize_t size = 65536;
  PyObject *nowo = NULL;
  tern_tstamp now;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|n$O:write", kwlist, &size,
                                   &nowo) ||
      tp_now(nowo, &now) < 0) {
    return NULL;
  }
  if (size <= 0) {
    PyErr_SetString(PyExc_ValueError, "size must be positive");
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  PyObject *out = PyBytes_FromStringAndSize(NULL, size);
  if (!out) {
    return NULL;
  }
  HubObject *h = (HubObject *)Py_NewRef(self->hub);
  tern_ssize n = tern_conn_write(c, (uint8_t *)PyBytes_AS_STRING(out),
                                 (size_t)size, now);
  tp_hub_after(h, n);
  if (n < 0) {
    Py_DECREF(out);
    out = tp_hub_raise(h, n);
  } else if (n != size) {
    _PyBytes_Resize(&out, n);
  }
  Py_DECREF(h);
  return out;
}

static PyObject *conn_write_into(ConnObject *self, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames) {
  static const char *const names[] = {"buffer", "now", NULL};
  static tp_args spec = {"write_into", names, 1, 1, {0}, 0};
  PyObject *a[2];
  tern_tstamp now;
  if (tp_parse(&spec, args, nargs, kwnames, a) < 0 || tp_now(a[1], &now) < 0) {
    return NULL;
  }
  PyObject *buf = a[0];
  Py_buffer view;
  if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE | PyBUF_SIMPLE) < 0) {
    if (PyErr_ExceptionMatches(PyExc_TypeError) ||
        PyErr_ExceptionMatches(PyExc_BufferError)) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError,
                   "buffer must be a writable contiguous buffer (bytearray, "
                   "memoryview, ...), not %.100s",
                   Py_TYPE(buf)->tp_name);
    }
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    PyBuffer_Release(&view);
    return NULL;
  }
  HubObject *h = (HubObject *)Py_NewRef(self->hub);
  tern_ssize n = view.len ? tern_conn_write(c, view.buf, (size_t)view.len, now)
                          : 0;
  PyBuffer_Release(&view);
  tp_hub_after(h, n);
  PyObject *ret = n < 0 ? tp_hub_raise(h, n) : PyLong_FromSsize_t(n);
  Py_DECREF(h);
  return ret;
}

/* peek_output copies the held bytes out: the block behind the pointer is
   freed by consume(), so Python never gets a view of it. */
static PyObject *conn_peek_output(ConnObject *self, PyObject *args,
                                  PyObject *kw) {
  tern_tstamp now;
  if (parse_now(args, kw, "|$O:peek_output", NULL, &now) < 0) {
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  HubObject *h = (HubObject *)Py_NewRef(self->hub);
  const uint8_t *data = NULL;
  tern_ssize n = tern_conn_peek_output(c, &data, now);
  tp_hub_after(h, n);
  PyObject *out = n < 0 ? tp_hub_raise(h, n)
                        : PyBytes_FromStringAndSize((const char *)data, n);
  Py_DECREF(h);
  return out;
}

static PyObject *conn_consume(ConnObject *self, PyObject *arg) {
  uint64_t n;
  if (tp_uint(arg, SIZE_MAX, &n, "n") < 0) {
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  int rc = tern_conn_consume(c, (size_t)n);
  if (rc < 0) {
    return tp_raise_fmt(rc, "consume(%llu): more than the peeked bytes held",
                        (unsigned long long)n);
  }
  Py_RETURN_NONE;
}

static PyObject *conn_accept(ConnObject *self, PyObject *args, PyObject *kw) {
  tern_tstamp now;
  if (parse_now(args, kw, "|$O:accept", NULL, &now) < 0) {
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  int rc = tern_conn_accept(c, now);
  tp_hub_after(self->hub, rc);
  if (rc < 0) {
    return tp_hub_raise(self->hub, rc);
  }
  Py_RETURN_NONE;
}

static PyObject *conn_goaway(ConnObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"reason", "retry_after", "now", NULL};
  unsigned int reason = TERN_GOAWAY_REPLACED;
  PyObject *ra = NULL, *nowo = NULL;
  tern_duration retry;
  tern_tstamp now;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|IO$O:goaway", kwlist, &reason,
                                   &ra, &nowo) ||
      tp_duration(ra, &retry, "retry_after") < 0 || tp_now(nowo, &now) < 0) {
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  int rc = tern_conn_goaway(c, reason, retry, now);
  tp_hub_after(self->hub, rc);
  if (rc < 0) {
    return tp_hub_raise(self->hub, rc);
  }
  Py_RETURN_NONE;
}

static PyObject *conn_allow_publish(ConnObject *self, PyObject *args) {
  int allow = 1;
  if (!PyArg_ParseTuple(args, "|p:allow_publish", &allow)) {
    return NULL;
  }
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  int rc = tern_conn_allow_publish(c, allow);
  if (rc < 0) {
    return tp_raise(rc, NULL);
  }
  Py_RETURN_NONE;
}

static PyObject *conn_info(ConnObject *self, PyObject *noarg) {
  (void)noarg;
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  tern_conn_info ci;
  tern_conn_get_info(c, &ci, sizeof(ci));
  return tp_conn_info(&ci);
}

static PyObject *conn_get_want_write(ConnObject *self, void *x) {
  (void)x;
  tern_conn *c = usable(self);
  return c ? PyBool_FromLong(tern_conn_want_write(c)) : NULL;
}

static PyObject *conn_get_closed(ConnObject *self, void *x) {
  (void)x;
  if (!self->conn || !self->hub || !self->hub->hub) {
    Py_RETURN_TRUE;
  }
  return PyBool_FromLong(tern_conn_is_closed(self->conn));
}

static PyObject *conn_get_released(ConnObject *self, void *x) {
  (void)x;
  return PyBool_FromLong(!self->conn || !self->hub || !self->hub->hub);
}

static PyObject *conn_get_session_key(ConnObject *self, void *x) {
  (void)x;
  tern_conn *c = usable(self);
  if (!c) {
    return NULL;
  }
  tern_session *s = tern_conn_get_session(c);
  if (!s) {
    Py_RETURN_NONE;
  }
  tern_session_info si;
  tern_session_get_info(s, &si, sizeof(si));
  return PyBytes_FromStringAndSize((const char *)si.key,
                                   (Py_ssize_t)si.keylen);
}

static PyObject *conn_get_framing(ConnObject *self, void *x) {
  (void)x;
  return tp_enum("Framing", self->framing);
}

static PyObject *conn_get_content_type(ConnObject *self, void *x) {
  (void)x;
  const char *ct = tern_framing_content_type(self->framing);
  if (!ct) {
    Py_RETURN_NONE;
  }
  return PyUnicode_FromString(ct);
}

static PyObject *conn_get_hub(ConnObject *self, void *x) {
  (void)x;
  if (!self->hub) {
    Py_RETURN_NONE;
  }
  return Py_NewRef(self->hub);
}

#define KW METH_VARARGS | METH_KEYWORDS
#define FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef conn_methods[] = {
    {"close", (PyCFunction)conn_close, METH_NOARGS,
     "close()\n\nDeletes the native connection: its in-flight messages go "
     "back to the session.  Closing twice does nothing."},
    {"__enter__", (PyCFunction)conn_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)conn_exit, METH_VARARGS, NULL},
    {"read", FN(conn_read), METH_FASTCALL | METH_KEYWORDS,
     "read(data, *, now=None) -> int\n\nHands bytes received from the peer "
     "(any bytes-like object, read in place) to the hub.  Returns how many "
     "were consumed (fewer than len(data) only for a producer that owes "
     "PUBACKs: pass the rest again after the next write).  Raises "
     "ProtocolError, TooLargeError, LimitError (the connection is then "
     "closed, its end event queued) or ClosedError."},
    {"write", FN(conn_write), KW,
     "write(size=65536, *, now=None) -> bytes\n\nUp to size bytes to send "
     "(b'' when nothing is due).  Raises ClosedError once the connection is "
     "closed and everything was written, StateError while bytes of "
     "peek_output() are not consumed."},
    {"write_into", FN(conn_write_into), METH_FASTCALL | METH_KEYWORDS,
     "write_into(buffer, *, now=None) -> int\n\nFills a writable buffer "
     "(bytearray, memoryview, mmap) with as many frames as fit and returns "
     "the byte count: no bytes object per call.  Raises as write() "
     "does."},
    {"peek_output", FN(conn_peek_output), KW,
     "peek_output(*, now=None) -> bytes\n\nThe bytes to send, for a socket "
     "that may take only part of them: up to CONN_PEEK_MAX (16384) of them, a "
     "copy (b'' when nothing is due).  The connection keeps them and "
     "returns the same bytes again until consume() marks them sent; only "
     "then does it take more from the hub.  Loop: data = peek_output(); "
     "n = sock.send(data); consume(n).  While bytes are held write() and "
     "write_into() raise StateError and want_write is True.  Raises "
     "ClosedError once the connection is closed and everything was "
     "consumed, NoMemoryError as write() does."},
    {"consume", (PyCFunction)conn_consume, METH_O,
     "consume(n) -> None\n\nMarks the first n bytes of the last "
     "peek_output() as sent (what the socket took).  InvalidError (a "
     "ValueError) when n is more than the connection holds, ValueError "
     "when it is negative."},
    {"accept", FN(conn_accept), KW,
     "accept(*, now=None)\n\nCompletes a HELLO that waits for the host "
     "(hello_accept)."},
    {"goaway", FN(conn_goaway), KW,
     "goaway(reason=GoawayReason.REPLACED, retry_after=0, *, now=None)\n\n"
     "Queues a GOAWAY and closes the connection (its end event follows)."},
    {"allow_publish", (PyCFunction)conn_allow_publish, METH_VARARGS,
     "allow_publish(allow=True)\n\nLets the peer publish with PUBLISH "
     "frames."},
    {"info", (PyCFunction)conn_info, METH_NOARGS, "info() -> ConnInfo"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef conn_getset[] = {
    {"want_write", (getter)conn_get_want_write, NULL,
     "True when write() has something to write now, or bytes of "
     "peek_output() wait for consume().", NULL},
    {"closed", (getter)conn_get_closed, NULL,
     "True once the connection is closed (its end event is queued), "
     "released or its hub closed.", NULL},
    {"released", (getter)conn_get_released, NULL,
     "True once the native connection is gone (close() or the hub's).",
     NULL},
    {"session_key", (getter)conn_get_session_key, NULL,
     "The key of the session it is bound to, or None.", NULL},
    {"framing", (getter)conn_get_framing, NULL, "Its Framing.", NULL},
    {"content_type", (getter)conn_get_content_type, NULL,
     "The media type of a web framing's body, or None.", NULL},
    {"hub", (getter)conn_get_hub, NULL, "The Hub it belongs to.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef conn_members[] = {
    {"data", T_OBJECT, offsetof(ConnObject, data), 0,
     "Any object of the host's (its transport, say); None at first."},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ConnObject, weakrefs),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyObject *conn_new(PyTypeObject *t, PyObject *a, PyObject *k) {
  (void)t;
  (void)a;
  (void)k;
  PyErr_SetString(PyExc_TypeError,
                  "Conn objects come from Hub.open_conn and Hub.open_stream");
  return NULL;
}

static PyType_Slot conn_slots[] = {
    {Py_tp_doc,
     "A connection of a Hub (Hub.open_conn, Hub.open_stream).  It owns the "
     "native connection: close() or a with block deletes it."},
    {Py_tp_new, conn_new},
    {Py_tp_dealloc, conn_dealloc},
    {Py_tp_traverse, conn_traverse},
    {Py_tp_clear, conn_clear},
    {Py_tp_methods, conn_methods},
    {Py_tp_getset, conn_getset},
    {Py_tp_members, conn_members},
    {0, NULL}};

static PyType_Spec conn_spec = {"tern._tern.Conn", sizeof(ConnObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
                                conn_slots};

int tp_conn_type_init(PyObject *m) {
  tp_ConnType = (PyTypeObject *)PyType_FromSpec(&conn_spec);
  if (!tp_ConnType) {
    return -1;
  }
  Py_INCREF(tp_ConnType);
  return PyModule_AddObject(m, "Conn", (PyObject *)tp_ConnType);
}
