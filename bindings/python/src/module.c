/*
 * tern._tern: the module, its error mapping, argument conversion shared by
 * every type, and the functions of tern.h that take no object.
 *
 * The exception classes and enums are written in Python (tern/__init__.py)
 * and handed to the module by tern._tern._setup at import: the C side only
 * looks them up, so their docstrings and class hierarchy live in one place.
 */
#include "tern_py.h"

#include <math.h>
#include <stdarg.h>
#include <time.h>

static PyObject *error_base;  /* tern.Error                                */
static PyObject *error_by_code; /* {code: subclass}                        */
static PyObject *enums;       /* {"EventType": EventType, ...}             */

/* ---- errors --------------------------------------------------------------- */

static PyObject *make_exc(int code, const char *msg) {
  if (!msg) {
    msg = tern_strerror(code);
  }
  if (!error_base) {
    PyErr_Format(PyExc_RuntimeError, "tern error %d: %s", code, msg);
    return NULL;
  }
  PyObject *key = PyLong_FromLong(code);
  if (!key) {
    return NULL;
  }
  PyObject *cls = PyDict_GetItemWithError(error_by_code, key);
  Py_DECREF(key);
  if (!cls) {
    if (PyErr_Occurred()) {
      return NULL;
    }
    cls = error_base;
  }
  return PyObject_CallFunction(cls, "si", msg, code);
}

PyObject *tp_raise(int code, const char *msg) {
  PyObject *exc = make_exc(code, msg);
  if (exc) {
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
  }
  return NULL;
}

PyObject *tp_raise_fmt(int code, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return tp_raise(code, buf);
}

int tp_error_code(PyObject *exc) {
  if (error_base && exc && PyObject_IsInstance(exc, error_base) == 1) {
    PyObject *c = PyObject_GetAttrString(exc, "code");
    if (c) {
      long v = PyLong_AsLong(c);
      Py_DECREF(c);
      if (v < 0 && v >= INT32_MIN) {
        return (int)v;
      }
    }
    PyErr_Clear();
  }
  return TERN_ERR_STORE;
}

/* Members by value, per enum: calling an enum class costs a microsecond,
   a dict lookup a few dozen nanoseconds. */
static PyObject *enum_cache;

PyObject *tp_enum(const char *which, long value) {
  PyObject *cls = enums ? PyDict_GetItemString(enums, which) : NULL;
  if (!cls) {
    return PyLong_FromLong(value);
  }
  PyObject *cache = PyDict_GetItemString(enum_cache, which);
  if (!cache) {
    cache = PyDict_New();
    if (!cache || PyDict_SetItemString(enum_cache, which, cache) < 0) {
      Py_XDECREF(cache);
      return NULL;
    }
    Py_DECREF(cache); /* enum_cache holds it */
  }
  PyObject *key = PyLong_FromLong(value);
  if (!key) {
    return NULL;
  }
  PyObject *v = PyDict_GetItemWithError(cache, key);
  if (v) {
    Py_DECREF(key);
    return Py_NewRef(v);
  }
  v = PyErr_Occurred() ? NULL : PyObject_CallOneArg(cls, key);
  if (!v) {
    if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
      Py_DECREF(key);
      return NULL;
    }
    PyErr_Clear(); /* a value this version's enum does not name */
    return key;
  }
  if (PyDict_Size(cache) < 1024 && PyDict_SetItem(cache, key, v) < 0) {
    PyErr_Clear();
  }
  Py_DECREF(key);
  return v;
}

/* ---- arguments ------------------------------------------------------------ */

int tp_bytes_get(PyObject *o, tp_bytes *b, const char *what, int opt) {
  b->held = 0;
  b->p = NULL;
  b->n = 0;
  if (o == NULL || (opt && o == Py_None)) {
    return 0;
  }
  if (PyUnicode_Check(o)) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) {
      return -1;
    }
    b->p = (const uint8_t *)s;
    b->n = (size_t)n;
    return 0;
  }
  if (PyBytes_CheckExact(o)) { /* the common case, without a buffer */
    b->p = (const uint8_t *)PyBytes_AS_STRING(o);
    b->n = (size_t)PyBytes_GET_SIZE(o);
    return 0;
  }
  if (!PyObject_CheckBuffer(o)) {
    PyErr_Format(PyExc_TypeError,
                 "%s must be bytes-like or str%s, not %.100s", what,
                 opt ? " or None" : "", Py_TYPE(o)->tp_name);
    return -1;
  }
  if (PyObject_GetBuffer(o, &b->view, PyBUF_SIMPLE) < 0) {
    return -1;
  }
  b->held = 1;
  b->p = b->view.buf;
  b->n = (size_t)b->view.len;
  return 0;
}

void tp_bytes_release(tp_bytes *b) {
  if (b->held) {
    PyBuffer_Release(&b->view);
    b->held = 0;
  }
}

int tp_cstr_get(PyObject *o, const char **s, size_t *n, const char *what,
                int opt) {
  Py_ssize_t len = 0;
  const char *p;
  if (opt && (o == NULL || o == Py_None)) {
    *s = NULL;
    if (n) {
      *n = 0;
    }
    return 0;
  }
  if (o && PyUnicode_Check(o)) {
    p = PyUnicode_AsUTF8AndSize(o, &len);
    if (!p) {
      return -1;
    }
  } else if (o && PyBytes_Check(o)) {
    p = PyBytes_AS_STRING(o);
    len = PyBytes_GET_SIZE(o);
  } else {
    PyErr_Format(PyExc_TypeError, "%s must be str or bytes%s, not %.100s",
                 what, opt ? " or None" : "",
                 o ? Py_TYPE(o)->tp_name : "nothing");
    return -1;
  }
  if (strlen(p) != (size_t)len) {
    tp_raise_fmt(TERN_ERR_INVALID, "%s contains a NUL byte", what);
    return -1;
  }
  *s = p;
  if (n) {
    *n = (size_t)len;
  }
  return 0;
}

int tp_now(PyObject *o, tern_tstamp *now) {
  if (o == NULL || o == Py_None) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *now = (tern_tstamp)ts.tv_sec * 1000000000u + (tern_tstamp)ts.tv_nsec;
    return 0;
  }
  if (!PyLong_Check(o)) {
    PyErr_Format(PyExc_TypeError,
                 "now must be an int (nanoseconds) or None, not %.100s",
                 Py_TYPE(o)->tp_name);
    return -1;
  }
  unsigned long long v = PyLong_AsUnsignedLongLong(o);
  if (v == (unsigned long long)-1 && PyErr_Occurred()) {
    PyErr_Clear();
    PyErr_SetString(PyExc_ValueError, "now must be in [0, 2**64 - 2]");
    return -1;
  }
  if (v == TERN_TSTAMP_NONE) {
    PyErr_SetString(PyExc_ValueError, "now must be in [0, 2**64 - 2]");
    return -1;
  }
  *now = v;
  return 0;
}

int tp_duration(PyObject *o, tern_duration *d, const char *what) {
  if (o == NULL || o == Py_None) {
    *d = 0;
    return 0;
  }
  if (PyLong_Check(o)) {
    long long s = PyLong_AsLongLong(o);
    if (s == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      s = -1;
    }
    if (s < 0 || (unsigned long long)s > UINT64_MAX / TERN_SECONDS) {
      PyErr_Format(PyExc_ValueError, "%s must be a number of seconds >= 0 "
                   "and below 2**64 ns", what);
      return -1;
    }
    *d = (tern_duration)s * TERN_SECONDS;
    return 0;
  }
  if (PyFloat_Check(o)) {
    double s = PyFloat_AS_DOUBLE(o);
    if (!(s >= 0) || s * 1e9 >= 18446744073709549568.0) {
      PyErr_Format(PyExc_ValueError, "%s must be a number of seconds >= 0 "
                   "and below 2**64 ns", what);
      return -1;
    }
    *d = (tern_duration)llround(s * 1e9);
    return 0;
  }
  PyErr_Format(PyExc_TypeError, "%s must be seconds as int or float, not "
               "%.100s", what, Py_TYPE(o)->tp_name);
  return -1;
}

PyObject *tp_seconds(tern_duration d) {
  return PyFloat_FromDouble((double)d / 1e9);
}

PyObject *tp_tstamp(tern_tstamp t) {
  if (t == TERN_TSTAMP_NONE) {
    Py_RETURN_NONE;
  }
  return PyLong_FromUnsignedLongLong(t);
}

static int get_uint(PyObject *v, uint64_t max, uint64_t *out,
                    const char *name) {
  if (!PyLong_Check(v) || PyBool_Check(v)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name,
                 Py_TYPE(v)->tp_name);
    return -1;
  }
  unsigned long long x = PyLong_AsUnsignedLongLong(v);
  if ((x == (unsigned long long)-1 && PyErr_Occurred()) || x > max) {
    PyErr_Clear();
    PyErr_Format(PyExc_ValueError, "%s must be in [0, %llu]", name,
                 (unsigned long long)max);
    return -1;
  }
  *out = x;
  return 0;
}

static int set_field(void *st, const tp_field *f, PyObject *v) {
  char *base = (char *)st + f->off;
  uint64_t x;
  switch (f->kind) {
  case TP_U32:
    if (get_uint(v, UINT32_MAX, &x, f->name) < 0) {
      return -1;
    }
    *(uint32_t *)(void *)base = (uint32_t)x;
    return 0;
  case TP_U64:
    if (get_uint(v, UINT64_MAX, &x, f->name) < 0) {
      return -1;
    }
    *(uint64_t *)(void *)base = x;
    return 0;
  case TP_SIZE:
    if (get_uint(v, SIZE_MAX, &x, f->name) < 0) {
      return -1;
    }
    *(size_t *)(void *)base = (size_t)x;
    return 0;
  case TP_INT:
    if (get_uint(v, INT32_MAX, &x, f->name) < 0) {
      return -1;
    }
    *(int *)(void *)base = (int)x;
    return 0;
  case TP_DUR:
    return tp_duration(v, (tern_duration *)(void *)base, f->name);
  case TP_BOOL: {
    int t = PyObject_IsTrue(v);
    if (t < 0) {
      return -1;
    }
    *(uint32_t *)(void *)base = (uint32_t)t;
    return 0;
  }
  case TP_OVERFLOW3: {
    PyObject *seq = PySequence_Fast(v, "overflow must be a sequence of 3 "
                                       "Overflow values");
    if (!seq) {
      return -1;
    }
    if (PySequence_Fast_GET_SIZE(seq) != 3) {
      Py_DECREF(seq);
      PyErr_SetString(PyExc_ValueError,
                      "overflow must have 3 values (LOW, NORMAL, HIGH)");
      return -1;
    }
    for (Py_ssize_t i = 0; i < 3; ++i) {
      if (get_uint(PySequence_Fast_GET_ITEM(seq, i), 2, &x, "overflow") < 0) {
        Py_DECREF(seq);
        return -1;
      }
      ((uint8_t *)base)[i] = (uint8_t)x;
    }
    Py_DECREF(seq);
    return 0;
  }
  }
  return 0;
}

int tp_apply_fields(void *st, const tp_field *fields, PyObject *kwargs,
                    const char *const *skip) {
  if (!kwargs) {
    return 0;
  }
  PyObject *k, *v;
  Py_ssize_t pos = 0;
  while (PyDict_Next(kwargs, &pos, &k, &v)) {
    const char *name = PyUnicode_AsUTF8(k);
    if (!name) {
      return -1;
    }
    int skipped = 0;
    for (const char *const *s = skip; s && *s; ++s) {
      skipped |= strcmp(*s, name) == 0;
    }
    if (skipped) {
      continue;
    }
    const tp_field *f = fields;
    while (f->name && strcmp(f->name, name) != 0) {
      ++f;
    }
    if (!f->name) {
      PyErr_Format(PyExc_TypeError, "unexpected keyword argument '%s'",
                   name);
      return -1;
    }
    if (set_field(st, f, v) < 0) {
      return -1;
    }
  }
  return 0;
}

int tp_parse(tp_args *a, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames, PyObject **out) {
  if (a->n == 0) {
    while (a->names[a->n]) {
      PyObject *s = PyUnicode_InternFromString(a->names[a->n]);
      if (!s) {
        return -1;
      }
      a->interned[a->n++] = s; /* kept for the module's life */
    }
  }
  for (int i = 0; i < a->n; ++i) {
    out[i] = NULL;
  }
  if (nargs > a->npos) {
    PyErr_Format(PyExc_TypeError,
                 "%s() takes at most %d positional arguments (%zd given)",
                 a->fname, a->npos, nargs);
    return -1;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    out[i] = args[i];
  }
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject *name = PyTuple_GET_ITEM(kwnames, k);
    int i = 0;
    while (i < a->n && a->interned[i] != name) {
      ++i;
    }
    if (i == a->n) { /* not interned the same way: compare the text */
      i = 0;
      while (i < a->n && PyUnicode_Compare(a->interned[i], name) != 0) {
        ++i;
      }
      if (PyErr_Occurred()) {
        return -1;
      }
    }
    if (i == a->n) {
      PyErr_Format(PyExc_TypeError,
                   "%s() got an unexpected keyword argument '%U'", a->fname,
                   name);
      return -1;
    }
    if (out[i]) {
      PyErr_Format(PyExc_TypeError,
                   "%s() got multiple values for argument '%s'", a->fname,
                   a->names[i]);
      return -1;
    }
    out[i] = args[nargs + k];
  }
  for (int i = 0; i < a->nreq; ++i) {
    if (!out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'",
                   a->fname, a->names[i]);
      return -1;
    }
  }
  return 0;
}

int tp_uint(PyObject *v, uint64_t max, uint64_t *out, const char *name) {
  return get_uint(v, max, out, name);
}

/* ---- message descriptors --------------------------------------------------- */

void tp_msg_init(tp_msg *m) {
  memset(m, 0, sizeof(*m));
  m->d.priority = TERN_PRIO_NORMAL;
}

void tp_msg_release(tp_msg *m) {
  tp_bytes_release(&m->id);
  tp_bytes_release(&m->collapse_key);
  tp_bytes_release(&m->payload);
  for (size_t i = 0; i < m->nrefs; ++i) {
    Py_DECREF(m->refs[i]);
  }
  m->nrefs = 0;
}

static int flag(PyObject *o, uint32_t bit, uint32_t *flags) {
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

/* Keeps |o| alive in |m| and gives its C string. */
static int keep_cstr(tp_msg *m, PyObject *o, const char **s,
                     const char *what) {
  if (tp_cstr_get(o, s, NULL, what, 0) < 0) {
    return -1;
  }
  Py_INCREF(o);
  m->refs[m->nrefs++] = o;
  return 0;
}

static int parse_attrs(tp_msg *m, PyObject *attrs) {
  PyObject *items;
  if (PyDict_Check(attrs)) {
    items = PyDict_Items(attrs);
  } else {
    items = PySequence_List(attrs);
  }
  if (!items) {
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_SetString(PyExc_TypeError,
                      "attrs must be a dict or a sequence of pairs");
    }
    return -1;
  }
  Py_ssize_t n = PyList_GET_SIZE(items);
  if (n > TERN_MAX_ATTRS) {
    Py_DECREF(items);
    tp_raise_fmt(TERN_ERR_TOO_LARGE, "more than %d attributes",
                 TERN_MAX_ATTRS);
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject *pair = PyList_GET_ITEM(items, i);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
      Py_DECREF(items);
      PyErr_SetString(PyExc_TypeError, "attrs must be (key, value) pairs");
      return -1;
    }
    if (keep_cstr(m, PyTuple_GET_ITEM(pair, 0), &m->attrs[i].key,
                  "attribute key") < 0 ||
        keep_cstr(m, PyTuple_GET_ITEM(pair, 1), &m->attrs[i].value,
                  "attribute value") < 0) {
      Py_DECREF(items);
      return -1;
    }
  }
  Py_DECREF(items);
  m->d.attrs = m->attrs;
  m->d.nattrs = (size_t)n;
  return 0;
}

int tp_msg_parse(tp_msg *m, PyObject *payload, PyObject *id,
                 PyObject *collapse_key, PyObject *priority, PyObject *ttl,
                 PyObject *content_type, PyObject *attrs, PyObject *sync,
                 PyObject *volatile_, PyObject *trace, PyObject *cookie) {
  if (payload && tp_bytes_get(payload, &m->payload, "payload", 0) < 0) {
    return -1;
  }
  m->d.payload = m->payload.p;
  m->d.payloadlen = m->payload.n;
  if (tp_bytes_get(id, &m->id, "id", 1) < 0 ||
      tp_bytes_get(collapse_key, &m->collapse_key, "collapse_key", 1) < 0) {
    return -1;
  }
  m->d.id = m->id.p;
  m->d.idlen = m->id.n;
  m->d.collapse_key = m->collapse_key.p;
  m->d.collapse_keylen = m->collapse_key.n;
  if (priority) {
    uint64_t p;
    if (get_uint(priority, 2, &p, "priority") < 0) {
      return -1;
    }
    m->d.priority = (int)p;
  }
  if (tp_duration(ttl, &m->d.ttl, "ttl") < 0) {
    return -1;
  }
  if (content_type && content_type != Py_None &&
      keep_cstr(m, content_type, &m->d.content_type, "content_type") < 0) {
    return -1;
  }
  if (attrs && attrs != Py_None && parse_attrs(m, attrs) < 0) {
    return -1;
  }
  if (flag(sync, TERN_MSG_SYNC, &m->d.flags) < 0 ||
      flag(volatile_, TERN_MSG_VOLATILE, &m->d.flags) < 0 ||
      flag(trace, TERN_MSG_TRACE, &m->d.flags) < 0) {
    return -1;
  }
  if (cookie && cookie != Py_None &&
      get_uint(cookie, UINT64_MAX, &m->d.cookie, "cookie") < 0) {
    return -1;
  }
  return 0;
}

/* ---- functions without an object ------------------------------------------ */

static PyObject *m_strerror(PyObject *self, PyObject *arg) {
  (void)self;
  int overflow;
  long code = PyLong_AsLongAndOverflow(arg, &overflow);
  if (code == -1 && PyErr_Occurred()) {
    return NULL;
  }
  if (overflow || code < INT32_MIN || code > INT32_MAX) {
    code = 1; /* unknown */
  }
  return PyUnicode_FromString(tern_strerror((int)code));
}

static PyObject *m_err_is_fatal(PyObject *self, PyObject *arg) {
  (void)self;
  int overflow;
  long code = PyLong_AsLongAndOverflow(arg, &overflow);
  if (code == -1 && PyErr_Occurred()) {
    return NULL;
  }
  if (overflow || code < INT32_MIN || code > INT32_MAX) {
    Py_RETURN_FALSE;
  }
  return PyBool_FromLong(tern_err_is_fatal((int)code));
}

static PyObject *m_version(PyObject *self, PyObject *noarg) {
  (void)self;
  (void)noarg;
  return PyUnicode_FromString(tern_version());
}

static PyObject *m_version_info(PyObject *self, PyObject *noarg) {
  (void)self;
  (void)noarg;
  uint32_t v = tern_version_info(0);
  return Py_BuildValue("(III)", v >> 16, (v >> 8) & 0xff, v & 0xff);
}

static PyObject *m_shard_of(PyObject *self, PyObject *args, PyObject *kw) {
  (void)self;
  static char *kwlist[] = {"key", "nshards", NULL};
  PyObject *key;
  unsigned long long n;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OK:shard_of", kwlist, &key,
                                   &n)) {
    return NULL;
  }
  if (n > UINT32_MAX) {
    PyErr_SetString(PyExc_ValueError, "nshards must be below 2**32");
    return NULL;
  }
  tp_bytes b;
  if (tp_bytes_get(key, &b, "key", 0) < 0) {
    return NULL;
  }
  uint32_t s = tern_shard_of(b.p, b.n, (uint32_t)n);
  tp_bytes_release(&b);
  return PyLong_FromUnsignedLong(s);
}

static PyObject *raise_at(int code, size_t pos, const char *msg) {
  PyObject *exc = make_exc(code, msg);
  if (exc) {
    PyObject *p = PyLong_FromSize_t(pos);
    if (p) {
      PyObject_SetAttrString(exc, "position", p);
      Py_DECREF(p);
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
  }
  return NULL;
}

static PyObject *m_topic_pattern_check(PyObject *self, PyObject *arg) {
  (void)self;
  const char *s;
  size_t n, pos = 0;
  if (tp_cstr_get(arg, &s, &n, "pattern", 0) < 0) {
    return NULL;
  }
  int rc = tern_topic_pattern_check(s, n, &pos);
  if (rc < 0) {
    char msg[96];
    snprintf(msg, sizeof(msg), "bad topic pattern at byte %zu", pos);
    return raise_at(rc, pos, msg);
  }
  Py_RETURN_NONE;
}

static PyObject *m_filter_check(PyObject *self, PyObject *arg) {
  (void)self;
  const char *s, *msg = NULL;
  size_t n, pos = 0;
  if (tp_cstr_get(arg, &s, &n, "filter", 0) < 0) {
    return NULL;
  }
  int rc = tern_filter_check(s, n, &pos, &msg);
  if (rc < 0) {
    char text[160];
    snprintf(text, sizeof(text), "%s at byte %zu", msg ? msg : "bad filter",
             pos);
    return raise_at(rc, pos, text);
  }
  Py_RETURN_NONE;
}

static PyObject *m_parse_resume(PyObject *self, PyObject *arg) {
  (void)self;
  const char *s;
  size_t n;
  uint64_t epoch = 0, seq = 0;
  if (tp_cstr_get(arg, &s, &n, "text", 0) < 0) {
    return NULL;
  }
  int rc = tern_stream_parse_resume(s, n, &epoch, &seq);
  if (rc < 0) {
    return tp_raise(rc, "not a resume position (<epoch>.<seq> or <seq>)");
  }
  return Py_BuildValue("(KK)", (unsigned long long)epoch,
                       (unsigned long long)seq);
}

static PyObject *m_framing_content_type(PyObject *self, PyObject *arg) {
  (void)self;
  int overflow;
  long f = PyLong_AsLongAndOverflow(arg, &overflow);
  if (f == -1 && PyErr_Occurred()) {
    return NULL;
  }
  const char *ct = overflow || f < INT32_MIN || f > INT32_MAX
                       ? NULL
                       : tern_framing_content_type((int)f);
  if (!ct) {
    Py_RETURN_NONE;
  }
  return PyUnicode_FromString(ct);
}

static PyObject *m_setup(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *base, *codes, *en;
  if (!PyArg_ParseTuple(args, "OO!O!:_setup", &base, &PyDict_Type, &codes,
                        &PyDict_Type, &en)) {
    return NULL;
  }
  Py_INCREF(base);
  Py_INCREF(codes);
  Py_INCREF(en);
  Py_XSETREF(error_base, base);
  Py_XSETREF(error_by_code, codes);
  Py_XSETREF(enums, en);
  Py_XSETREF(enum_cache, PyDict_New());
  if (!enum_cache) {
    return NULL;
  }
  Py_RETURN_NONE;
}

#define FN_KW(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef module_methods[] = {
    {"strerror", m_strerror, METH_O,
     "strerror(code) -> str\n\nThe English description of a tern error "
     "code."},
    {"err_is_fatal", m_err_is_fatal, METH_O,
     "err_is_fatal(code) -> bool\n\nTrue when the code always means the "
     "connection that returned it is finished."},
    {"version", m_version, METH_NOARGS,
     "version() -> str\n\nThe linked libtern's version, such as '0.3.0'."},
    {"version_info", m_version_info, METH_NOARGS,
     "version_info() -> (major, minor, patch) of the linked libtern."},
    {"shard_of", (PyCFunction)(void (*)(void))m_shard_of,
     METH_VARARGS | METH_KEYWORDS,
     "shard_of(key, nshards) -> int\n\nWhich of nshards hubs owns the "
     "session key (stable across versions and processes)."},
    {"topic_pattern_check", m_topic_pattern_check, METH_O,
     "topic_pattern_check(pattern)\n\nRaises InvalidError (with .position) "
     "unless pattern is a valid topic name or pattern."},
    {"filter_check", m_filter_check, METH_O,
     "filter_check(text)\n\nRaises InvalidError or TooLargeError (with "
     ".position) unless text is a valid filter (tern-filter(7))."},
    {"parse_resume", m_parse_resume, METH_O,
     "parse_resume(text) -> (epoch, seq)\n\nParses a Last-Event-ID "
     "'<epoch>.<seq>' or a bare '<seq>' (epoch 0)."},
    {"framing_content_type", m_framing_content_type, METH_O,
     "framing_content_type(framing) -> str | None\n\nThe media type of a "
     "web framing's response body."},
    {"check_hook_signature", FN_KW(tp_check_hook_signature),
     METH_VARARGS | METH_KEYWORDS,
     "check_hook_signature(secret, timestamp, signature, body, *, "
     "now_s=None, tolerance=300)\n\nChecks a request a web hook sent: "
     "timestamp and signature are its X-Tern-Timestamp and X-Tern-Signature "
     "values, body its body, secret the hook's secret.  now_s is your Unix "
     "time in seconds (default: the wall clock), tolerance how many seconds "
     "the timestamp may be from it either way.  Returns None when "
     "authentic; raises ProtocolError (no match; compared in constant "
     "time), StateError (outside the tolerance: a replay), InvalidError "
     "(malformed values)."},
    {"check_hook_challenge", FN_KW(tp_check_hook_challenge),
     METH_VARARGS | METH_KEYWORDS,
     "check_hook_challenge(query, token=None) -> str\n\nThe endpoint's side "
     "of a hook's challenge: reads the query (after '?'), checks hub.mode "
     "is subscribe and hub.verify_token is token, and returns the "
     "challenge to answer with (status 200, the challenge as the body).  "
     "Raises ProtocolError (wrong mode or token), InvalidError (not a "
     "challenge query)."},
    {"_setup", m_setup, METH_VARARGS, "Internal: registers the Python "
                                      "exception classes and enums."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tern._tern",
    "The native part of the tern package: libtern wrapped for CPython.\n"
    "Import tern, not this module.",
    -1, module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__tern(void);
PyMODINIT_FUNC PyInit__tern(void) {
  PyObject *m = PyModule_Create(&module_def);
  if (!m) {
    return NULL;
  }
  if (tp_types_init(m) < 0 || tp_hub_type_init(m) < 0 ||
      tp_conn_type_init(m) < 0 || tp_client_type_init(m) < 0 ||
      tp_store_type_init(m) < 0 || tp_posix_init(m) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  struct {
    const char *name;
    long long value;
  } consts[] = {
      {"MAX_ID", TERN_MAX_ID},
      {"MAX_COLLAPSE_KEY", TERN_MAX_COLLAPSE_KEY},
      {"MAX_SESSION_KEY", TERN_MAX_SESSION_KEY},
      {"MAX_TOKEN", TERN_MAX_TOKEN},
      {"MAX_ATTRS", TERN_MAX_ATTRS},
      {"MAX_ATTR_KEY", TERN_MAX_ATTR_KEY},
      {"MAX_ATTR_VALUE", TERN_MAX_ATTR_VALUE},
      {"MAX_CONTENT_TYPE", TERN_MAX_CONTENT_TYPE},
      {"MAX_TOPIC", TERN_MAX_TOPIC},
      {"MAX_FILTER", TERN_MAX_FILTER},
      {"MAX_CAP", TERN_MAX_CAP},
      {"STORE_MAX_KEY", TERN_STORE_MAX_KEY},
      {"STORE_LATER", TERN_STORE_LATER},
      {"VERSION_NUM", TERN_VERSION_NUM},
      {"MAX_HOOK_TARGET", TERN_MAX_HOOK_TARGET},
      {"MAX_HOOK_SECRET", TERN_MAX_HOOK_SECRET},
      {"MAX_HOOK_OBJECT", TERN_MAX_HOOK_OBJECT},
      {"MAX_HOOK_KEY", TERN_MAX_HOOK_KEY},
      {"MAX_HOOK_FIELDS", TERN_MAX_HOOK_FIELDS},
      {"MAX_HOOK_FIELD", TERN_MAX_HOOK_FIELD},
      {"HOOK_NO_ANSWER", TERN_HOOK_NO_ANSWER},
      {"CONN_PEEK_MAX", TERN_CONN_PEEK_MAX},
  };
  for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); ++i) {
    if (PyModule_AddIntConstant(m, consts[i].name, (long)consts[i].value) <
        0) {
      Py_DECREF(m);
      return NULL;
    }
  }
  if (PyModule_AddStringConstant(m, "HEADER_VERSION", TERN_VERSION) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
