/*
 * Web hooks (tern_hub_add_hook(3)) for Python: the Hub methods that add,
 * list, describe, feed and drive hooks, and the receiving side's checks.
 *
 * Hooks are named by their 64-bit id; tern.Hook (tern/__init__.py) is a
 * handle by id over these methods, as tern.Session is by key.  A request
 * is copied whole into a tern.HookRequest when it is taken, so nothing of
 * Python points into the hub: the host may answer it at any time, and an
 * answer to a request whose hook is gone is refused (NotFoundError).
 */
#include "tern_py.h"

#include <stddef.h>
#include <time.h>

/* tp_hub_after, then raise for a negative |rc|. */
static int hcheck(HubObject *h, long long rc) {
  tp_hub_after(h, rc);
  if (rc < 0) {
    tp_hub_raise(h, rc);
    return -1;
  }
  return 0;
}

/* Reads a hook id: an int in [1, 2**64 - 1].  0 and negative ids are
   ValueError (no hook has them), other types TypeError. */
static int hook_id(PyObject *o, uint64_t *id) {
  if (tp_uint(o, UINT64_MAX, id, "hook id") < 0) {
    return -1;
  }
  if (*id == 0) {
    PyErr_SetString(PyExc_ValueError, "hook id must be in [1, 2**64 - 1]");
    return -1;
  }
  return 0;
}

/* Options of add_hook that are fields of tern_hook_opts as they are. */
static const tp_field hook_fields[] = {
    {"max_items", offsetof(tern_hook_opts, max_items), TP_U32},
    {"max_attempts", offsetof(tern_hook_opts, max_attempts), TP_U32},
    {"max_bytes", offsetof(tern_hook_opts, max_bytes), TP_U64},
    {"max_delay", offsetof(tern_hook_opts, max_delay), TP_DUR},
    {"retry_base", offsetof(tern_hook_opts, retry_base), TP_DUR},
    {"retry_cap", offsetof(tern_hook_opts, retry_cap), TP_DUR},
    {"disable_after", offsetof(tern_hook_opts, disable_after), TP_U32},
    {"max_inflight", offsetof(tern_hook_opts, max_inflight), TP_U32},
    {"max_queued", offsetof(tern_hook_opts, max_queued), TP_U64},
    {NULL, 0, TP_U32}};

/* The options read by hand (bytes, flags, the time). */
static const char *const hook_special[] = {
    "target", "secret", "verify_token", "object", "verified", "coalesce",
    "now", NULL};

/* kw[name], or the positional argument |i|, or NULL. */
static PyObject *arg_or_kw(PyObject *args, Py_ssize_t i, PyObject *kw,
                           const char *name, int *dup) {
  PyObject *k = kw ? PyDict_GetItemString(kw, name) : NULL;
  if (i < PyTuple_GET_SIZE(args)) {
    if (k) {
      *dup = 1;
    }
    return PyTuple_GET_ITEM(args, i);
  }
  return k;
}

static int flag_kw(PyObject *kw, const char *name, uint32_t bit,
                   uint32_t *flags) {
  PyObject *o = kw ? PyDict_GetItemString(kw, name) : NULL;
  if (!o) {
    return 0;
  }
  int t = PyObject_IsTrue(o);
  if (t < 0) {
    return -1;
  }
  if (t) {
    *flags |= bit;
  }
  return 0;
}

PyObject *tp_hub_add_hook(HubObject *self, PyObject *args, PyObject *kw) {
  if (PyTuple_GET_SIZE(args) > 2) {
    PyErr_Format(PyExc_TypeError,
                 "add_hook() takes at most 2 positional arguments (%zd "
                 "given)",
                 PyTuple_GET_SIZE(args));
    return NULL;
  }
  int dup = 0;
  PyObject *target = arg_or_kw(args, 0, kw, "target", &dup);
  PyObject *secret = arg_or_kw(args, 1, kw, "secret", &dup);
  if (dup) {
    PyErr_SetString(PyExc_TypeError,
                    "add_hook() got multiple values for target or secret");
    return NULL;
  }
  if (!target || !secret) {
    PyErr_Format(PyExc_TypeError, "add_hook() missing required argument "
                                  "'%s'",
                 target ? "secret" : "target");
    return NULL;
  }
  tern_hook_opts o;
  tern_hook_opts_default(&o);
  tern_tstamp now;
  tp_bytes t, s, v;
  t.held = s.held = v.held = 0;
  const char *object = NULL;
  PyObject *ret = NULL;
  if (tp_apply_fields(&o, hook_fields, kw, hook_special) < 0 ||
      flag_kw(kw, "verified", TERN_HOOK_VERIFIED, &o.flags) < 0 ||
      flag_kw(kw, "coalesce", TERN_HOOK_COALESCE, &o.flags) < 0 ||
      tp_now(kw ? PyDict_GetItemString(kw, "now") : NULL, &now) < 0 ||
      tp_cstr_get(kw ? PyDict_GetItemString(kw, "object") : NULL, &object,
                  NULL, "object", 1) < 0 ||
      tp_bytes_get(target, &t, "target", 0) < 0 ||
      tp_bytes_get(secret, &s, "secret", 0) < 0 ||
      tp_bytes_get(kw ? PyDict_GetItemString(kw, "verify_token") : NULL, &v,
                   "verify_token", 1) < 0 ||
      !tp_hub_usable(self)) {
    goto done;
  }
  o.target = t.p;
  o.targetlen = t.n;
  o.secret = s.p;
  o.secretlen = s.n;
  o.verify_token = v.p;
  o.verify_tokenlen = v.n;
  o.object = object;
  if (!self->wall_set) {
    /* Requests carry X-Tern-Timestamp from the hub's wall clock, which
       receivers compare with theirs: without one it would be the
       monotonic clock's seconds. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (tern_hub_set_wallclock(self->hub, now, wall) == 0) {
      self->wall_set = 1;
    }
  }
  uint64_t id = 0;
  int rc = tern_hub_add_hook(self->hub, &o, now, &id);
  if (rc == TERN_ERR_INVALID) {
    tp_hub_after(self, rc);
    tp_raise(rc, "invalid hook options (an empty target or secret, an "
                 "option out of its range, or a bad object name)");
    goto done;
  }
  if (hcheck(self, rc) == 0) {
    ret = PyLong_FromUnsignedLongLong(id);
  }
done:
  tp_bytes_release(&t);
  tp_bytes_release(&s);
  tp_bytes_release(&v);
  return ret;
}

PyObject *tp_hub_remove_hook(HubObject *self, PyObject *arg) {
  uint64_t id;
  if (hook_id(arg, &id) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  if (hcheck(self, tern_hub_remove_hook(self->hub, id)) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

/* id, *, now=None: the arguments of enable_hook and verify_hook. */
static int id_now(PyObject *args, PyObject *kw, const char *fmt, uint64_t *id,
                  tern_tstamp *now) {
  static char *kwlist[] = {"id", "now", NULL};
  PyObject *ido, *nowo = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &ido, &nowo)) {
    return -1;
  }
  if (hook_id(ido, id) < 0 || tp_now(nowo, now) < 0) {
    return -1;
  }
  return 0;
}

PyObject *tp_hub_enable_hook(HubObject *self, PyObject *args, PyObject *kw) {
  uint64_t id;
  tern_tstamp now;
  if (id_now(args, kw, "O|$O:enable_hook", &id, &now) < 0 ||
      !tp_hub_usable(self)) {
    return NULL;
  }
  if (hcheck(self, tern_hub_enable_hook(self->hub, id, now)) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

PyObject *tp_hub_verify_hook(HubObject *self, PyObject *args, PyObject *kw) {
  uint64_t id;
  tern_tstamp now;
  if (id_now(args, kw, "O|$O:verify_hook", &id, &now) < 0 ||
      !tp_hub_usable(self)) {
    return NULL;
  }
  int rc = tern_hub_verify_hook(self->hub, id, now);
  if (rc == TERN_ERR_STATE) {
    tp_hub_after(self, rc);
    return tp_raise(rc, "the hook has batches outstanding: report their "
                        "answers first");
  }
  if (hcheck(self, rc) < 0) {
    return NULL;
  }
  Py_RETURN_NONE;
}

PyObject *tp_hub_hook_ids(HubObject *self, PyObject *noarg) {
  (void)noarg;
  if (!tp_hub_usable(self)) {
    return NULL;
  }
  PyObject *list = PyList_New(0);
  uint64_t id = 0;
  while (list && (id = tern_hub_next_hook(self->hub, id)) != 0) {
    PyObject *o = PyLong_FromUnsignedLongLong(id);
    if (!o || PyList_Append(list, o) < 0) {
      Py_XDECREF(o);
      Py_CLEAR(list);
      break;
    }
    Py_DECREF(o);
  }
  return list;
}

PyObject *tp_hub_has_hook(HubObject *self, PyObject *arg) {
  uint64_t id;
  if (tp_uint(arg, UINT64_MAX, &id, "hook id") < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  tern_hook_info in;
  return PyBool_FromLong(
      id != 0 && tern_hub_get_hook_info(self->hub, id, &in, sizeof(in)) == 0);
}

PyObject *tp_hub_hook_info(HubObject *self, PyObject *arg) {
  uint64_t id;
  if (hook_id(arg, &id) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  tern_hook_info in;
  int rc = tern_hub_get_hook_info(self->hub, id, &in, sizeof(in));
  if (rc < 0) {
    return tp_raise(rc, rc == TERN_ERR_NOT_FOUND ? "no such hook" : NULL);
  }
  return tp_hook_info(&in);
}

/* The changed fields of an entry: a sequence of str (or bytes), each kept
   alive in |refs| while the entry is enqueued. */
typedef struct hook_fields_arg {
  const char *names[TERN_MAX_HOOK_FIELDS];
  size_t n;
  PyObject *seq;
} hook_fields_arg;

static int read_fields(PyObject *o, hook_fields_arg *f) {
  f->n = 0;
  f->seq = NULL;
  if (o == NULL || o == Py_None) {
    return 0;
  }
  if (PyUnicode_Check(o) || PyBytes_Check(o)) {
    PyErr_SetString(PyExc_TypeError,
                    "fields must be a sequence of str, not one string");
    return -1;
  }
  f->seq = PySequence_Fast(o, "fields must be a sequence of str");
  if (!f->seq) {
    return -1;
  }
  Py_ssize_t n = PySequence_Fast_GET_SIZE(f->seq);
  if (n > TERN_MAX_HOOK_FIELDS) {
    tp_raise_fmt(TERN_ERR_TOO_LARGE, "more than %d changed fields",
                 TERN_MAX_HOOK_FIELDS);
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (tp_cstr_get(PySequence_Fast_GET_ITEM(f->seq, i), &f->names[i], NULL,
                    "field name", 0) < 0) {
      return -1;
    }
  }
  f->n = (size_t)n;
  return 0;
}

PyObject *tp_hub_hook_enqueue(HubObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"id", "key", "fields", "time", "data", "now",
                           NULL};
  PyObject *ido, *key, *fields = NULL, *timeo = NULL, *data = NULL,
                       *nowo = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O$OOO:hook_enqueue", kwlist,
                                   &ido, &key, &fields, &timeo, &data,
                                   &nowo)) {
    return NULL;
  }
  uint64_t id, t = 0;
  tern_tstamp now;
  hook_fields_arg f;
  tp_bytes k, d;
  k.held = d.held = 0;
  f.seq = NULL;
  PyObject *ret = NULL;
  if (hook_id(ido, &id) < 0 || tp_now(nowo, &now) < 0) {
    return NULL;
  }
  if (timeo == NULL || timeo == Py_None) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t = ts.tv_sec > 0 ? (uint64_t)ts.tv_sec : 0;
  } else if (tp_uint(timeo, UINT64_MAX, &t, "time") < 0) {
    return NULL;
  }
  if (read_fields(fields, &f) < 0 || tp_bytes_get(key, &k, "key", 0) < 0 ||
      tp_bytes_get(data, &d, "data", 1) < 0 || !tp_hub_usable(self)) {
    goto done;
  }
  tern_hook_entry e;
  memset(&e, 0, sizeof(e));
  e.key = k.p;
  e.keylen = k.n;
  e.fields = f.names;
  e.nfields = f.n;
  e.time = t;
  if (data && data != Py_None) {
    if (d.n == 0) { /* the library reads an empty payload as none */
      tp_raise(TERN_ERR_INVALID, "data must be one JSON value (None for "
                                 "none), not empty");
      goto done;
    }
    e.payload = d.p;
    e.payloadlen = d.n;
  }
  int rc = tern_hub_hook_enqueue(self->hub, id, &e, now);
  if (rc == TERN_ERR_INVALID) {
    tp_hub_after(self, rc);
    tp_raise(rc, "invalid entry (an empty or non-UTF-8 key or field name, "
                 "or data that is not one JSON value)");
    goto done;
  }
  if (hcheck(self, rc) == 0) {
    ret = Py_NewRef(Py_None);
  }
done:
  Py_XDECREF(f.seq);
  tp_bytes_release(&k);
  tp_bytes_release(&d);
  return ret;
}

PyObject *tp_hub_next_hook_request(HubObject *self, PyObject *args,
                                   PyObject *kw) {
  static char *kwlist[] = {"now", NULL};
  PyObject *nowo = NULL;
  tern_tstamp now;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:next_hook_request", kwlist,
                                   &nowo) ||
      tp_now(nowo, &now) < 0 || !tp_hub_usable(self)) {
    return NULL;
  }
  tern_hook_request r;
  int rc = tern_hub_next_hook_request(self->hub, now, &r);
  if (hcheck(self, rc) < 0) {
    return NULL;
  }
  if (rc == 0) {
    Py_RETURN_NONE;
  }
  /* Taken: from here on the hub waits for its answer.  Should the copy
     fail (no memory), report it unanswered, so that it is tried again. */
  PyObject *o = tp_hook_request(&r);
  if (!o) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    tp_hub_after(self, tern_hub_hook_done(self->hub, r.hook, r.delivery,
                                          TERN_HOOK_NO_ANSWER, NULL, 0, NULL,
                                          0, now));
    PyErr_Restore(et, ev, tb);
  }
  return o;
}

/* The status of hook_done: an int, or None for no answer. */
static int read_status(PyObject *o, int *status) {
  if (o == Py_None) {
    *status = TERN_HOOK_NO_ANSWER;
    return 0;
  }
  if (!PyLong_Check(o) || PyBool_Check(o)) {
    PyErr_Format(PyExc_TypeError,
                 "status must be an int (an HTTP status) or None (no "
                 "answer), not %.100s",
                 Py_TYPE(o)->tp_name);
    return -1;
  }
  int overflow;
  long v = PyLong_AsLongAndOverflow(o, &overflow);
  if (v == -1 && PyErr_Occurred()) {
    return -1;
  }
  if (overflow || v < 0 || v > 999) {
    v = -1; /* out of range: the library says InvalidError */
  }
  *status = (int)v;
  return 0;
}

/* The request hook_done answers: a HookRequest, or a (hook, delivery)
   pair. */
static int read_request(PyObject *o, uint64_t *hook, uint64_t *delivery) {
  PyObject *h, *d;
  if (tp_is_hook_request(o)) {
    h = PyTuple_GET_ITEM(o, 1);
    d = PyTuple_GET_ITEM(o, 2);
  } else if (PyTuple_Check(o) && PyTuple_GET_SIZE(o) == 2) {
    h = PyTuple_GET_ITEM(o, 0);
    d = PyTuple_GET_ITEM(o, 1);
  } else {
    PyErr_Format(PyExc_TypeError,
                 "request must be a HookRequest or a (hook, delivery) "
                 "tuple, not %.100s",
                 Py_TYPE(o)->tp_name);
    return -1;
  }
  if (hook_id(h, hook) < 0 ||
      tp_uint(d, UINT64_MAX, delivery, "delivery") < 0) {
    return -1;
  }
  return 0;
}

PyObject *tp_hub_hook_done(HubObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"request", "status", "retry_after", "body", "now",
                           NULL};
  PyObject *req, *st, *ra = NULL, *body = NULL, *nowo = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$OOO:hook_done", kwlist,
                                   &req, &st, &ra, &body, &nowo)) {
    return NULL;
  }
  uint64_t hook, delivery;
  int status;
  tern_tstamp now;
  if (read_request(req, &hook, &delivery) < 0 ||
      read_status(st, &status) < 0 || tp_now(nowo, &now) < 0) {
    return NULL;
  }
  /* Retry-After: the header's text, or a number of seconds. */
  PyObject *ratext = NULL;
  tp_bytes r, b;
  r.held = b.held = 0;
  PyObject *ret = NULL;
  if (ra && ra != Py_None && PyLong_Check(ra) && !PyBool_Check(ra)) {
    ratext = PyObject_Str(ra);
    if (!ratext) {
      return NULL;
    }
    ra = ratext;
  }
  if (tp_bytes_get(ra, &r, "retry_after", 1) < 0 ||
      tp_bytes_get(body, &b, "body", 1) < 0 || !tp_hub_usable(self)) {
    goto done;
  }
  int rc = tern_hub_hook_done(self->hub, hook, delivery, status,
                              (const char *)r.p, r.n, b.p, b.n, now);
  if (rc == TERN_ERR_INVALID) {
    tp_hub_after(self, rc);
    tp_raise(rc, "status must be an HTTP status (100..599) or None (no "
                 "answer)");
    goto done;
  }
  if (rc == TERN_ERR_NOT_FOUND) {
    tp_hub_after(self, rc);
    tp_raise(rc, "no such request outstanding (already answered, or its "
                 "hook was removed or verified again)");
    goto done;
  }
  if (hcheck(self, rc) == 0) {
    ret = Py_NewRef(Py_None);
  }
done:
  Py_XDECREF(ratext);
  tp_bytes_release(&r);
  tp_bytes_release(&b);
  return ret;
}

/* ---- the receiving side ------------------------------------------------------ */

PyObject *tp_check_hook_signature(PyObject *self, PyObject *args,
                                  PyObject *kw) {
  (void)self;
  static char *kwlist[] = {"secret", "timestamp", "signature", "body",
                           "now_s",  "tolerance", NULL};
  PyObject *seco, *tso, *sigo, *bodyo, *nowo = NULL, *tolo = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO|$OO:check_hook_signature",
                                   kwlist, &seco, &tso, &sigo, &bodyo, &nowo,
                                   &tolo)) {
    return NULL;
  }
  uint64_t now_s, tol = 300;
  if (nowo == NULL || nowo == Py_None) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now_s = ts.tv_sec > 0 ? (uint64_t)ts.tv_sec : 0;
  } else if (tp_uint(nowo, UINT64_MAX, &now_s, "now_s") < 0) {
    return NULL;
  }
  if (tolo && tolo != Py_None) {
    tern_duration d;
    if (tp_duration(tolo, &d, "tolerance") < 0) {
      return NULL;
    }
    tol = d / TERN_SECONDS;
  }
  tp_bytes sec, ts, sig, body;
  sec.held = ts.held = sig.held = body.held = 0;
  PyObject *ret = NULL;
  PyObject *tstext = NULL;
  if (PyLong_Check(tso) && !PyBool_Check(tso)) { /* an int timestamp */
    tstext = PyObject_Str(tso);
    if (!tstext) {
      return NULL;
    }
    tso = tstext;
  }
  if (tp_bytes_get(seco, &sec, "secret", 0) < 0 ||
      tp_bytes_get(tso, &ts, "timestamp", 0) < 0 ||
      tp_bytes_get(sigo, &sig, "signature", 0) < 0 ||
      tp_bytes_get(bodyo, &body, "body", 1) < 0) {
    goto done;
  }
  int rc = tern_hook_check_signature(
      sec.p ? sec.p : (const uint8_t *)"", sec.n,
      ts.p ? (const char *)ts.p : "", ts.n,
      sig.p ? (const char *)sig.p : "", sig.n,
      body.p ? body.p : (const uint8_t *)"", body.n, now_s, tol);
  switch (rc) {
  case 0:
    ret = Py_NewRef(Py_None);
    break;
  case TERN_ERR_PROTO:
    tp_raise(rc, "the signature does not match");
    break;
  case TERN_ERR_STATE:
    tp_raise(rc, "the timestamp is outside the tolerance (a replay, or "
                 "clocks apart)");
    break;
  case TERN_ERR_INVALID:
    tp_raise(rc, "malformed X-Tern-Timestamp or X-Tern-Signature value");
    break;
  default:
    tp_raise(rc, NULL);
    break;
  }
done:
  Py_XDECREF(tstext);
  tp_bytes_release(&sec);
  tp_bytes_release(&ts);
  tp_bytes_release(&sig);
  tp_bytes_release(&body);
  return ret;
}

PyObject *tp_check_hook_challenge(PyObject *self, PyObject *args,
                                  PyObject *kw) {
  (void)self;
  static char *kwlist[] = {"query", "token", NULL};
  PyObject *qo, *tok = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:check_hook_challenge",
                                   kwlist, &qo, &tok)) {
    return NULL;
  }
  tp_bytes q, t;
  q.held = t.held = 0;
  PyObject *ret = NULL;
  if (tp_bytes_get(qo, &q, "query", 0) < 0 ||
      tp_bytes_get(tok, &t, "token", 1) < 0) {
    goto done;
  }
  const char *chal = NULL;
  size_t challen = 0;
  int rc = tern_hook_check_challenge(
      q.p ? (const char *)q.p : "", q.n, t.p ? t.p : (const uint8_t *)"",
      t.n, &chal, &challen);
  if (rc == TERN_ERR_PROTO) {
    tp_raise(rc, "wrong hub.mode or hub.verify_token");
  } else if (rc == TERN_ERR_INVALID) {
    tp_raise(rc, "not a challenge query (a parameter missing or "
                 "malformed)");
  } else if (rc < 0) {
    tp_raise(rc, NULL);
  } else {
    ret = PyUnicode_DecodeASCII(chal, (Py_ssize_t)challen, "strict");
  }
done:
  tp_bytes_release(&q);
  tp_bytes_release(&t);
  return ret;
}
