/*
 * tern._tern.Client: the receiver (and producer) end of the binary
 * framing, a tern_client.  Sans-I/O like the hub: the host moves bytes.
 */
#include "tern_py.h"

#include <stddef.h>

PyTypeObject *tp_ClientType;

static const tp_field client_fields[] = {
    {"heartbeat_interval",
     offsetof(tern_client_settings, heartbeat_interval), TP_DUR},
    {"liveness_timeout", offsetof(tern_client_settings, liveness_timeout),
     TP_DUR},
    {"ack_every", offsetof(tern_client_settings, ack_every), TP_U32},
    {"ack_delay", offsetof(tern_client_settings, ack_delay), TP_DUR},
    {"manual_ack", offsetof(tern_client_settings, manual_ack), TP_BOOL},
    {"dedup_max", offsetof(tern_client_settings, dedup_max), TP_U32},
    {"dedup_window", offsetof(tern_client_settings, dedup_window), TP_DUR},
    {"backoff_base", offsetof(tern_client_settings, backoff_base), TP_DUR},
    {"backoff_cap", offsetof(tern_client_settings, backoff_cap), TP_DUR},
    {"max_attempts", offsetof(tern_client_settings, max_attempts), TP_U32},
    {"adaptive_heartbeat",
     offsetof(tern_client_settings, adaptive_heartbeat), TP_BOOL},
    {"heartbeat_cap", offsetof(tern_client_settings, heartbeat_cap), TP_DUR},
    {"seed", offsetof(tern_client_settings, seed), TP_U64},
    {"max_payload", offsetof(tern_client_settings, max_payload), TP_SIZE},
    {NULL, 0, TP_U32}};

static tern_client *usable(ClientObject *self) {
  if (!self->client) {
    tp_raise(TERN_ERR_CLOSED, "the client was released (Client.release)");
  }
  return self->client;
}

static int client_init(ClientObject *self, PyObject *args, PyObject *kw) {
  PyObject *key, *token = Py_None;
  if (!PyArg_ParseTuple(args, "O|O:Client", &key, &token)) {
    return -1;
  }
  if (self->client) {
    PyErr_SetString(PyExc_RuntimeError, "Client.__init__ called twice");
    return -1;
  }
  tern_client_settings s;
  tern_client_settings_default(&s);
  static const char *const skip[] = {"now", "token", NULL};
  tern_tstamp now;
  if (kw && PyDict_GetItemString(kw, "token")) {
    token = PyDict_GetItemString(kw, "token");
  }
  if (tp_apply_fields(&s, client_fields, kw, skip) < 0 ||
      tp_now(kw ? PyDict_GetItemString(kw, "now") : NULL, &now) < 0) {
    return -1;
  }
  tp_bytes k, t;
  if (tp_bytes_get(key, &k, "key", 0) < 0) {
    return -1;
  }
  if (tp_bytes_get(token, &t, "token", 1) < 0) {
    tp_bytes_release(&k);
    return -1;
  }
  int rc = tern_client_new(&self->client, k.p, k.n, t.p, t.n, &s, NULL, now);
  tp_bytes_release(&k);
  tp_bytes_release(&t);
  if (rc < 0) {
    tp_raise(rc, NULL);
    return -1;
  }
  return 0;
}

static void client_dealloc(ClientObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  tern_client_del(self->client);
  self->client = NULL;
  tp->tp_free((PyObject *)self);
  Py_DECREF(tp);
}

static PyObject *client_release(ClientObject *self, PyObject *noarg) {
  (void)noarg;
  tern_client_del(self->client);
  self->client = NULL;
  Py_RETURN_NONE;
}

static PyObject *client_enter(ClientObject *self, PyObject *noarg) {
  (void)noarg;
  if (!usable(self)) {
    return NULL;
  }
  return Py_NewRef(self);
}

static PyObject *client_exit(ClientObject *self, PyObject *args) {
  (void)args;
  return client_release(self, NULL);
}

static int parse_now(PyObject *args, PyObject *kw, const char *fmt,
                     tern_tstamp *now) {
  static char *kwlist[] = {"now", NULL};
  PyObject *o = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &o)) {
    return -1;
  }
  return tp_now(o, now);
}

static PyObject *result(long long rc) {
  if (rc < 0) {
    return tp_raise((int)rc, NULL);
  }
  Py_RETURN_NONE;
}

static PyObject *client_connect(ClientObject *self, PyObject *a, PyObject *k) {
  tern_tstamp now;
  tern_client *c;
  if (parse_now(a, k, "|$O:connect", &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  return result(tern_client_connect(c, now));
}

static PyObject *client_conn_lost(ClientObject *self, PyObject *a,
                                  PyObject *k) {
  tern_tstamp now;
  tern_client *c;
  if (parse_now(a, k, "|$O:conn_lost", &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  return result(tern_client_conn_lost(c, now));
}

static PyObject *client_close(ClientObject *self, PyObject *a, PyObject *k) {
  tern_tstamp now;
  tern_client *c;
  if (parse_now(a, k, "|$O:close", &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  return result(tern_client_close(c, now));
}

static PyObject *client_handle_expiry(ClientObject *self, PyObject *a,
                                      PyObject *k) {
  tern_tstamp now;
  tern_client *c;
  if (parse_now(a, k, "|$O:handle_expiry", &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  return result(tern_client_handle_expiry(c, now));
}

static PyObject *client_read(ClientObject *self, PyObject *args,
                             PyObject *kw) {
  static char *kwlist[] = {"data", "now", NULL};
  PyObject *data, *nowo = NULL;
  tern_tstamp now;
  tern_client *c;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:read", kwlist, &data,
                                   &nowo) ||
      tp_now(nowo, &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  tp_bytes b;
  if (tp_bytes_get(data, &b, "data", 0) < 0) {
    return NULL;
  }
  tern_ssize n = tern_client_read(c, b.p, b.n, now);
  tp_bytes_release(&b);
  if (n < 0) {
    return tp_raise((int)n, NULL);
  }
  return PyLong_FromSsize_t(n);
}

static PyObject *client_write(ClientObject *self, PyObject *args,
                              PyObject *kw) {
  static char *kwlist[] = {"size", "now", NULL};
  Py_ssize_t size = 65536;
  PyObject *nowo = NULL;
  tern_tstamp now;
  tern_client *c;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|n$O:write", kwlist, &size,
                                   &nowo) ||
      tp_now(nowo, &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  if (size <= 0) {
    PyErr_SetString(PyExc_ValueError, "size must be positive");
    return NULL;
  }
  PyObject *out = PyBytes_FromStringAndSize(NULL, size);
  if (!out) {
    return NULL;
  }
  tern_ssize n = tern_client_write(c, (uint8_t *)PyBytes_AS_STRING(out),
                                   (size_t)size, now);
  if (n < 0) {
    Py_DECREF(out);
    return tp_raise((int)n, NULL);
  }
  if (n != size) {
    _PyBytes_Resize(&out, n);
  }
  return out;
}

static PyObject *client_write_into(ClientObject *self, PyObject *args,
                                   PyObject *kw) {
  static char *kwlist[] = {"buffer", "now", NULL};
  PyObject *buf, *nowo = NULL;
  tern_tstamp now;
  tern_client *c;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:write_into", kwlist, &buf,
                                   &nowo) ||
      tp_now(nowo, &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  Py_buffer view;
  if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE | PyBUF_SIMPLE) < 0) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError,
                 "buffer must be a writable contiguous buffer, not %.100s",
                 Py_TYPE(buf)->tp_name);
    return NULL;
  }
  tern_ssize n = view.len ? tern_client_write(c, view.buf, (size_t)view.len,
                                              now)
                          : 0;
  PyBuffer_Release(&view);
  if (n < 0) {
    return tp_raise((int)n, NULL);
  }
  return PyLong_FromSsize_t(n);
}

/* peek_output copies the held bytes out: the pointer is valid only until
   the next call on the client, so Python never gets a view of it. */
static PyObject *client_peek_output(ClientObject *self, PyObject *args,
                                    PyObject *kw) {
  tern_tstamp now;
  tern_client *c;
  if (parse_now(args, kw, "|$O:peek_output", &now) < 0 ||
      !(c = usable(self))) {
    return NULL;
  }
  const uint8_t *data = NULL;
  tern_ssize n = tern_client_peek_output(c, &data, now);
  if (n < 0) {
    return tp_raise((int)n, NULL);
  }
  return PyBytes_FromStringAndSize((const char *)data, n);
}

static PyObject *client_consume(ClientObject *self, PyObject *arg) {
  uint64_t n;
  if (tp_uint(arg, SIZE_MAX, &n, "n") < 0) {
    return NULL;
  }
  tern_client *c = usable(self);
  if (!c) {
    return NULL;
  }
  int rc = tern_client_consume(c, (size_t)n);
  if (rc < 0) {
    return tp_raise_fmt(rc, "consume(%llu): more than the peeked bytes held",
                        (unsigned long long)n);
  }
  Py_RETURN_NONE;
}

static PyObject *client_ack(ClientObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"seq", "now", NULL};
  unsigned long long seq;
  PyObject *nowo = NULL;
  tern_tstamp now;
  tern_client *c;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "K|$O:ack", kwlist, &seq,
                                   &nowo) ||
      tp_now(nowo, &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  return result(tern_client_ack(c, seq, now));
}

static PyObject *client_next_event(ClientObject *self, PyObject *noarg) {
  (void)noarg;
  tern_client *c = usable(self);
  if (!c) {
    return NULL;
  }
  tern_client_event ev;
  int rc = tern_client_next_event(c, &ev);
  if (rc < 0) {
    return tp_raise(rc, NULL);
  }
  if (rc == 0) {
    Py_RETURN_NONE;
  }
  return tp_client_event(&ev);
}

static PyObject *client_publish(ClientObject *self, PyObject *args,
                                PyObject *kw) {
  static char *kwlist[] = {"target",   "payload", "topic",  "id",
                           "collapse_key", "priority", "ttl", "content_type",
                           "attrs",    "sync",    "volatile", "now", NULL};
  PyObject *target, *payload, *o[8] = {0}, *nowo = NULL;
  int topic = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$pOOOOOOOOO:publish", kwlist,
                                   &target, &payload, &topic, &o[0], &o[1],
                                   &o[2], &o[3], &o[4], &o[5], &o[6], &o[7],
                                   &nowo)) {
    return NULL;
  }
  tern_tstamp now;
  tp_bytes t;
  tp_msg m;
  tp_msg_init(&m);
  t.held = 0;
  PyObject *ret = NULL;
  tern_client *c;
  if (tp_now(nowo, &now) < 0 || tp_bytes_get(target, &t, "target", 0) < 0 ||
      tp_msg_parse(&m, payload, o[0], o[1], o[2], o[3], o[4], o[5], o[6],
                   o[7], NULL, NULL) < 0 ||
      !(c = usable(self))) {
    goto done;
  }
  uint64_t req = 0;
  int rc = tern_client_publish(c, topic ? TERN_CLIENT_PUBLISH_TOPIC : 0, t.p,
                               t.n, &m.d, &req, now);
  ret = rc < 0 ? tp_raise(rc, NULL) : PyLong_FromUnsignedLongLong(req);
done:
  tp_bytes_release(&t);
  tp_msg_release(&m);
  return ret;
}

static PyObject *client_save_state(ClientObject *self, PyObject *noarg) {
  (void)noarg;
  tern_client *c = usable(self);
  if (!c) {
    return NULL;
  }
  tern_ssize n = tern_client_save_state(c, NULL, 0);
  if (n < 0) {
    return tp_raise((int)n, NULL);
  }
  PyObject *out = PyBytes_FromStringAndSize(NULL, n);
  if (!out) {
    return NULL;
  }
  tern_ssize m = tern_client_save_state(c, (uint8_t *)PyBytes_AS_STRING(out),
                                        (size_t)n);
  if (m != n) {
    Py_DECREF(out);
    return tp_raise(m < 0 ? (int)m : TERN_ERR_STATE, NULL);
  }
  return out;
}

static PyObject *client_restore_state(ClientObject *self, PyObject *args,
                                      PyObject *kw) {
  static char *kwlist[] = {"state", "now", NULL};
  PyObject *state, *nowo = NULL;
  tern_tstamp now;
  tern_client *c;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:restore_state", kwlist,
                                   &state, &nowo) ||
      tp_now(nowo, &now) < 0 || !(c = usable(self))) {
    return NULL;
  }
  tp_bytes b;
  if (tp_bytes_get(state, &b, "state", 0) < 0) {
    return NULL;
  }
  int rc = tern_client_restore_state(c, b.p, b.n, now);
  tp_bytes_release(&b);
  return result(rc);
}

static PyObject *client_stats(ClientObject *self, PyObject *noarg) {
  (void)noarg;
  tern_client *c = usable(self);
  if (!c) {
    return NULL;
  }
  tern_client_stats st;
  tern_client_get_stats(c, &st, sizeof(st));
  return tp_client_stats(&st);
}

static PyObject *client_get_want_write(ClientObject *self, void *x) {
  (void)x;
  tern_client *c = usable(self);
  return c ? PyBool_FromLong(tern_client_want_write(c)) : NULL;
}

static PyObject *client_get_expiry(ClientObject *self, void *x) {
  (void)x;
  tern_client *c = usable(self);
  return c ? tp_tstamp(tern_client_get_expiry(c)) : NULL;
}

static PyObject *client_get_released(ClientObject *self, void *x) {
  (void)x;
  return PyBool_FromLong(self->client == NULL);
}

#define KW METH_VARARGS | METH_KEYWORDS
#define FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef client_methods[] = {
    {"release", (PyCFunction)client_release, METH_NOARGS,
     "release()\n\nFrees the native client (a with block does it).  Not to "
     "be confused with close(), the protocol's goodbye."},
    {"__enter__", (PyCFunction)client_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)client_exit, METH_VARARGS, NULL},
    {"connect", FN(client_connect), KW,
     "connect(*, now=None)\n\nThe transport asked for is up: queues HELLO."},
    {"conn_lost", FN(client_conn_lost), KW,
     "conn_lost(*, now=None)\n\nThe transport broke (or failed to open)."},
    {"close", FN(client_close), KW,
     "close(*, now=None)\n\nSays goodbye: pending ACKs and a GOAWAY go out, "
     "no reconnect follows."},
    {"handle_expiry", FN(client_handle_expiry), KW,
     "handle_expiry(*, now=None)\n\nRuns the client's deadlines."},
    {"read", FN(client_read), KW,
     "read(data, *, now=None) -> int\n\nHands bytes from the server."},
    {"write", FN(client_write), KW,
     "write(size=65536, *, now=None) -> bytes\n\nBytes for the server.  "
     "Raises StateError without a transport or while bytes of "
     "peek_output() are not consumed, ClosedError once the goodbye was "
     "written."},
    {"write_into", FN(client_write_into), KW,
     "write_into(buffer, *, now=None) -> int\n\nFills a writable buffer "
     "and returns the byte count.  Raises as write() does."},
    {"peek_output", FN(client_peek_output), KW,
     "peek_output(*, now=None) -> bytes\n\nThe bytes for the server, for "
     "a socket that may take only part of them: one control frame, or up "
     "to 16 KiB of queued PUBLISH frames, a copy (b'' when nothing is "
     "due).  The client keeps them and offers them again until consume() "
     "marks them sent (after a partial consume, the rest first).  Loop: "
     "data = peek_output(); n = sock.send(data); consume(n).  While bytes "
     "are held write() and write_into() raise StateError and want_write is "
     "True; conn_lost() (or a DISCONNECTED event) drops them.  Raises "
     "StateError without a transport, ClosedError once the goodbye was "
     "consumed."},
    {"consume", (PyCFunction)client_consume, METH_O,
     "consume(n) -> None\n\nMarks the first n bytes of the last "
     "peek_output() as sent (what the socket took); once a closing "
     "client's GOAWAY is consumed the client is closed.  InvalidError (a "
     "ValueError) when n is more than the client holds, ValueError when "
     "it is negative."},
    {"ack", FN(client_ack), KW,
     "ack(seq, *, now=None)\n\nAcknowledges every message up to seq."},
    {"next_event", (PyCFunction)client_next_event, METH_NOARGS,
     "next_event() -> ClientEvent | None"},
    {"publish", FN(client_publish), KW,
     "publish(target, payload, *, topic=False, id=None, collapse_key=None, "
     "priority=Priority.NORMAL, ttl=0, content_type=None, attrs=None, "
     "sync=False, volatile=False, now=None) -> int\n\nQueues a PUBLISH for "
     "the session (or topic) target; returns the request number its "
     "PUBACK event carries in seq."},
    {"save_state", (PyCFunction)client_save_state, METH_NOARGS,
     "save_state() -> bytes\n\nThe resume state to keep across restarts."},
    {"restore_state", FN(client_restore_state), KW,
     "restore_state(state, *, now=None)\n\nLoads a saved state before the "
     "first connect."},
    {"stats", (PyCFunction)client_stats, METH_NOARGS,
     "stats() -> ClientStats"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef client_getset[] = {
    {"want_write", (getter)client_get_want_write, NULL,
     "True when write() has bytes now, or bytes of peek_output() wait "
     "for consume().", NULL},
    {"expiry", (getter)client_get_expiry, NULL,
     "The client's next deadline (ns), or None.", NULL},
    {"released", (getter)client_get_released, NULL,
     "True once release() freed the native client.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot client_slots[] = {
    {Py_tp_doc,
     "Client(key, token=None, *, now=None, **settings)\n\nThe receiver of "
     "a session: HELLO with the last seq, dedup, batched acks, liveness, "
     "reconnect backoff.  Settings are tern_client_settings fields "
     "(durations in seconds)."},
    {Py_tp_init, client_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, client_dealloc},
    {Py_tp_methods, client_methods},
    {Py_tp_getset, client_getset},
    {0, NULL}};

static PyType_Spec client_spec = {"tern._tern.Client", sizeof(ClientObject),
                                  0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
                                  client_slots};

int tp_client_type_init(PyObject *m) {
  tp_ClientType = (PyTypeObject *)PyType_FromSpec(&client_spec);
  if (!tp_ClientType) {
    return -1;
  }
  Py_INCREF(tp_ClientType);
  return PyModule_AddObject(m, "Client", (PyObject *)tp_ClientType);
}
