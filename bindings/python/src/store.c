/*
 * Stores: tern._tern.FileStore (the shipped file store, native), and the
 * bridge that lets an object written in Python be a hub's store.
 *
 * The bridge's methods run inside hub calls (publish, flush,
 * handle_expiry, set_store, close).  While one runs, the hub refuses every
 * other call (tern_hub_store_done excepted), which is the C rule "methods
 * must not call back into the hub", enforced.  An exception a Python
 * method raises becomes TERN_ERR_STORE (or the code of a tern.Error), and
 * is kept: chained to the error the hub call raises, or, when the hub
 * call itself succeeds (a failed batch is reported as events), handed to
 * sys.unraisablehook.
 */
#include "tern_py.h"

#include <stddef.h>

PyTypeObject *tp_FileStoreType;

/* ---- the Python store bridge ------------------------------------------------ */

static int store_failed(HubObject *h) {
  PyObject *et, *ev, *tb;
  PyErr_Fetch(&et, &ev, &tb);
  PyErr_NormalizeException(&et, &ev, &tb);
  if (tb && ev) {
    PyException_SetTraceback(ev, tb);
  }
  int code = tp_error_code(ev);
  if (!h->store_exc && ev) {
    h->store_exc = ev;
    ev = NULL;
  }
  Py_XDECREF(et);
  Py_XDECREF(ev);
  Py_XDECREF(tb);
  return code;
}

static int py_append(void *store, uint64_t batch,
                     const tern_store_record *recs, size_t n, int sync) {
  HubObject *h = store;
  if (!h->store) {
    return TERN_ERR_STORE;
  }
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (!list) {
    return store_failed(h);
  }
  for (size_t i = 0; i < n; ++i) {
    PyObject *rec = Py_BuildValue(
        "(iy#y#)", recs[i].op, (const char *)recs[i].key,
        (Py_ssize_t)recs[i].keylen,
        recs[i].value ? (const char *)recs[i].value : "",
        (Py_ssize_t)recs[i].valuelen);
    if (!rec) {
      Py_DECREF(list);
      return store_failed(h);
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, rec);
  }
  h->in_store++;
  PyObject *r = PyObject_CallMethod(h->store, "append", "KNO",
                                    (unsigned long long)batch, list,
                                    sync ? Py_True : Py_False);
  h->in_store--;
  if (!r) {
    return store_failed(h);
  }
  int rc = 0;
  if (r == Py_True) {
    rc = TERN_STORE_LATER;
  } else if (PyLong_Check(r)) {
    long v = PyLong_AsLong(r);
    rc = v == TERN_STORE_LATER ? TERN_STORE_LATER
         : v < 0 && v >= INT32_MIN ? (int)v
                                   : 0;
    PyErr_Clear();
  }
  Py_DECREF(r);
  return rc;
}

static int py_load(void *store, tern_store_visit visit, void *ctx) {
  HubObject *h = store;
  if (!h->store) {
    return TERN_ERR_STORE;
  }
  h->in_store++;
  PyObject *r = PyObject_CallMethod(h->store, "load", NULL);
  h->in_store--;
  if (!r) {
    return store_failed(h);
  }
  PyObject *it;
  if (PyDict_Check(r)) {
    PyObject *items = PyDict_Items(r);
    it = items ? PyObject_GetIter(items) : NULL;
    Py_XDECREF(items);
  } else {
    it = PyObject_GetIter(r);
  }
  Py_DECREF(r);
  if (!it) {
    return store_failed(h);
  }
  int rc = 0;
  PyObject *item;
  for (;;) {
    h->in_store++;
    item = PyIter_Next(it);
    h->in_store--;
    if (!item) {
      break;
    }
    PyObject *k = NULL, *v = NULL;
    Py_buffer kb, vb;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      PyErr_SetString(PyExc_TypeError,
                      "Store.load must yield (key, value) pairs of bytes");
      Py_DECREF(item);
      break;
    }
    k = PyTuple_GET_ITEM(item, 0);
    v = PyTuple_GET_ITEM(item, 1);
    if (PyObject_GetBuffer(k, &kb, PyBUF_SIMPLE) < 0) {
      Py_DECREF(item);
      break;
    }
    if (PyObject_GetBuffer(v, &vb, PyBUF_SIMPLE) < 0) {
      PyBuffer_Release(&kb);
      Py_DECREF(item);
      break;
    }
    rc = visit(ctx, kb.buf, (size_t)kb.len, vb.buf, (size_t)vb.len);
    PyBuffer_Release(&kb);
    PyBuffer_Release(&vb);
    Py_DECREF(item);
    if (rc != 0) {
      break;
    }
  }
  Py_DECREF(it);
  if (PyErr_Occurred()) {
    return store_failed(h);
  }
  return rc;
}

static int call_simple(void *store, const char *name) {
  HubObject *h = store;
  if (!h->store) {
    return TERN_ERR_STORE;
  }
  h->in_store++;
  PyObject *r = PyObject_CallMethod(h->store, name, NULL);
  h->in_store--;
  if (!r) {
    return store_failed(h);
  }
  Py_DECREF(r);
  return 0;
}

static int py_sync(void *store) { return call_simple(store, "sync"); }
static int py_compact(void *store) { return call_simple(store, "compact"); }

static int has_method(PyObject *o, const char *name) {
  PyObject *m = PyObject_GetAttrString(o, name);
  if (!m) {
    PyErr_Clear();
    return 0;
  }
  int ok = PyCallable_Check(m);
  Py_DECREF(m);
  return ok;
}

/* ---- attach / detach --------------------------------------------------------- */

int tp_store_attach(HubObject *h, PyObject *store, tern_tstamp now) {
  if (h->store) {
    tp_raise(TERN_ERR_STATE, "the hub has a store already");
    return -1;
  }
  const tern_store_methods *m;
  void *arg;
  FileStoreObject *fs = NULL;
  if (PyObject_TypeCheck(store, tp_FileStoreType)) {
    fs = (FileStoreObject *)store;
    if (!fs->store) {
      tp_raise(TERN_ERR_CLOSED, "the file store is closed");
      return -1;
    }
    if (fs->hub) {
      tp_raise(TERN_ERR_STATE, "the file store is attached to another hub");
      return -1;
    }
    m = tern_store_file_methods();
    arg = fs->store;
  } else {
    if (!has_method(store, "append") || !has_method(store, "load")) {
      PyErr_Format(PyExc_TypeError,
                   "a store needs append and load methods (tern.Store), "
                   "%.100s has not",
                   Py_TYPE(store)->tp_name);
      return -1;
    }
    tern_store_methods *pm = &h->pystore_methods;
    memset(pm, 0, sizeof(*pm));
    pm->version = TERN_STORE_METHODS_VERSION;
    pm->append = py_append;
    pm->load = py_load;
    pm->sync = has_method(store, "sync") ? py_sync : NULL;
    pm->compact = has_method(store, "compact") ? py_compact : NULL;
    m = pm;
    arg = h;
  }
  h->store = Py_NewRef(store);
  h->fstore = fs;
  if (fs) {
    fs->hub = h;
  }
  int rc = tern_hub_set_store(h->hub, m, arg, now);
  tp_hub_after(h, rc);
  if (rc < 0) {
    /* The store stays referenced even when the hub dropped it ("load
       failed: the hub is left empty and storeless"): which of the two
       happened is not told, and a store the hub may still call must
       outlive it.  Such a hub takes no other store.  INVALID and STATE
       attached nothing. */
    if (rc == TERN_ERR_INVALID || rc == TERN_ERR_STATE) {
      tp_store_detach(h);
    }
    tp_hub_raise(h, rc);
    return -1;
  }
  return 0;
}

void tp_store_detach(HubObject *h) {
  if (h->fstore) {
    h->fstore->hub = NULL;
    h->fstore = NULL;
  }
  Py_CLEAR(h->store);
}

/* ---- FileStore ----------------------------------------------------------------- */

static const tp_field file_fields[] = {
    {"fsync", offsetof(tern_store_file_options, fsync), TP_INT},
    {"strict", offsetof(tern_store_file_options, strict), TP_BOOL},
    {"segment_size", offsetof(tern_store_file_options, segment_size),
     TP_SIZE},
    {"compact_garbage", offsetof(tern_store_file_options, compact_garbage),
     TP_U32},
    {"sync_thread", offsetof(tern_store_file_options, sync_thread), TP_BOOL},
    {NULL, 0, TP_U32}};

static tern_store_file *fs_usable(FileStoreObject *self) {
  if (!self->store) {
    tp_raise(TERN_ERR_CLOSED, "the file store is closed");
  }
  return self->store;
}

static int fs_init(FileStoreObject *self, PyObject *args, PyObject *kw) {
  PyObject *path;
  if (!PyArg_ParseTuple(args, "O&:FileStore", PyUnicode_FSConverter, &path)) {
    return -1;
  }
  if (self->store) {
    Py_DECREF(path);
    PyErr_SetString(PyExc_RuntimeError, "FileStore.__init__ called twice");
    return -1;
  }
  tern_store_file_options o;
  tern_store_file_options_default(&o);
  if (tp_apply_fields(&o, file_fields, kw, NULL) < 0) {
    Py_DECREF(path);
    return -1;
  }
  const char *dir = PyBytes_AS_STRING(path);
  if (strlen(dir) != (size_t)PyBytes_GET_SIZE(path)) {
    Py_DECREF(path);
    tp_raise(TERN_ERR_INVALID, "path contains a NUL byte");
    return -1;
  }
  int rc = tern_store_file_open(&self->store, dir, &o, NULL);
  if (rc < 0) {
    const char *why = tern_store_file_error(NULL);
    tp_raise_fmt(rc, "%s%s%s", tern_strerror(rc), why && *why ? ": " : "",
                 why ? why : "");
    Py_DECREF(path);
    return -1;
  }
  Py_XSETREF(self->path, path);
  return 0;
}

static void fs_dealloc(FileStoreObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  /* a hub holds a reference to its store: none is attached here */
  tern_store_file_close(self->store);
  self->store = NULL;
  Py_CLEAR(self->path);
  tp->tp_free((PyObject *)self);
  Py_DECREF(tp);
}

static PyObject *fs_close(FileStoreObject *self, PyObject *noarg) {
  (void)noarg;
  if (self->hub) {
    return tp_raise(TERN_ERR_STATE,
                    "the file store is attached to an open hub: close the "
                    "hub first");
  }
  tern_store_file_close(self->store);
  self->store = NULL;
  Py_RETURN_NONE;
}

static PyObject *fs_enter(FileStoreObject *self, PyObject *noarg) {
  (void)noarg;
  if (!fs_usable(self)) {
    return NULL;
  }
  return Py_NewRef(self);
}

static PyObject *fs_exit(FileStoreObject *self, PyObject *args) {
  (void)args;
  if (self->hub) {
    /* leaving the with block before the hub closes: close the hub */
    tp_hub_close(self->hub);
  }
  return fs_close(self, NULL);
}

static PyObject *fs_stats(FileStoreObject *self, PyObject *noarg) {
  (void)noarg;
  tern_store_file *s = fs_usable(self);
  if (!s) {
    return NULL;
  }
  tern_store_file_stats st;
  tern_store_file_get_stats(s, &st, sizeof(st));
  return tp_file_stats(&st);
}

static PyObject *fs_complete(FileStoreObject *self, PyObject *noarg) {
  (void)noarg;
  tern_store_file *s = fs_usable(self);
  if (!s) {
    return NULL;
  }
  if (!self->hub || !tp_hub_usable(self->hub)) {
    if (!PyErr_Occurred()) {
      tp_raise(TERN_ERR_STATE, "the file store is not attached to a hub");
    }
    return NULL;
  }
  int n = tern_store_file_complete(s, self->hub->hub);
  tp_hub_after(self->hub, n);
  if (n < 0) {
    return tp_raise(n, NULL);
  }
  return PyLong_FromLong(n);
}

static PyObject *fs_method(FileStoreObject *self, int which) {
  tern_store_file *s = fs_usable(self);
  if (!s) {
    return NULL;
  }
  if (self->hub && self->hub->in_store) {
    return tp_raise(TERN_ERR_STATE, "the store is busy");
  }
  const tern_store_methods *m = tern_store_file_methods();
  int rc = which ? m->compact(s) : m->sync(s);
  if (rc < 0) {
    const char *why = tern_store_file_error(s);
    return tp_raise_fmt(rc, "%s%s%s", tern_strerror(rc),
                        why && *why ? ": " : "", why ? why : "");
  }
  Py_RETURN_NONE;
}

static PyObject *fs_sync(FileStoreObject *self, PyObject *noarg) {
  (void)noarg;
  return fs_method(self, 0);
}

static PyObject *fs_compact(FileStoreObject *self, PyObject *noarg) {
  (void)noarg;
  return fs_method(self, 1);
}

static PyObject *fs_get_fd(FileStoreObject *self, void *x) {
  (void)x;
  tern_store_file *s = fs_usable(self);
  return s ? PyLong_FromLong(tern_store_file_fd(s)) : NULL;
}

static PyObject *fs_get_error(FileStoreObject *self, void *x) {
  (void)x;
  tern_store_file *s = fs_usable(self);
  return s ? PyUnicode_DecodeFSDefault(tern_store_file_error(s)) : NULL;
}

static PyObject *fs_get_closed(FileStoreObject *self, void *x) {
  (void)x;
  return PyBool_FromLong(self->store == NULL);
}

static PyObject *fs_get_path(FileStoreObject *self, void *x) {
  (void)x;
  if (!self->path) {
    Py_RETURN_NONE;
  }
  return PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(self->path),
                                          PyBytes_GET_SIZE(self->path));
}

static PyMethodDef fs_methods[] = {
    {"close", (PyCFunction)fs_close, METH_NOARGS,
     "close()\n\nFsyncs (unless FsyncPolicy.NEVER) and releases the "
     "directory lock.  Raises StateError while a hub uses the store."},
    {"__enter__", (PyCFunction)fs_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)fs_exit, METH_VARARGS, NULL},
    {"stats", (PyCFunction)fs_stats, METH_NOARGS, "stats() -> FileStoreStats"},
    {"complete", (PyCFunction)fs_complete, METH_NOARGS,
     "complete() -> int\n\nWith sync_thread: reports the batches whose sync "
     "finished to the hub (call when fd is readable)."},
    {"sync", (PyCFunction)fs_sync, METH_NOARGS,
     "sync()\n\nMakes everything appended so far durable."},
    {"compact", (PyCFunction)fs_compact, METH_NOARGS,
     "compact()\n\nRewrites the log to its live records."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef fs_getset[] = {
    {"fd", (getter)fs_get_fd, NULL,
     "The descriptor to watch for completed batches (sync_thread), or -1.",
     NULL},
    {"error", (getter)fs_get_error, NULL,
     "The last failure of a call on the store, or ''.", NULL},
    {"closed", (getter)fs_get_closed, NULL, "True once closed.", NULL},
    {"path", (getter)fs_get_path, NULL, "The store's directory.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot fs_slots[] = {
    {Py_tp_doc,
     "FileStore(path, *, fsync=FsyncPolicy.BATCH, strict=False, "
     "segment_size=64 MiB, compact_garbage=50, sync_thread=False)\n\n"
     "The shipped store: CRC-framed segment files in one directory, locked "
     "while open.  Attach it with Hub.set_store; close the hub first."},
    {Py_tp_init, fs_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, fs_dealloc},
    {Py_tp_methods, fs_methods},
    {Py_tp_getset, fs_getset},
    {0, NULL}};

static PyType_Spec fs_spec = {"tern._tern.FileStore", sizeof(FileStoreObject),
                              0, Py_TPFLAGS_DEFAULT, fs_slots};

int tp_store_type_init(PyObject *m) {
  tp_FileStoreType = (PyTypeObject *)PyType_FromSpec(&fs_spec);
  if (!tp_FileStoreType) {
    return -1;
  }
  Py_INCREF(tp_FileStoreType);
  return PyModule_AddObject(m, "FileStore", (PyObject *)tp_FileStoreType);
}
