/*
 * The CPython extension module tern._tern: what its files share.
 *
 * Ownership in one paragraph.  A Hub owns its tern_hub; Conn objects own
 * their tern_conn and hold a strong reference to their Hub, so a Hub lives
 * as long as any of its connections.  Hub.close() (or a with block) deletes
 * the tern_hub, which frees every connection with it: from then on a Conn
 * only checks hub->hub and raises tern.ClosedError.  A tern_conn's user
 * data is its Conn object (borrowed), so events and tern_hub_next_ready
 * map back to the Python object; a Conn that goes away deletes its
 * tern_conn first, after which the hub reports conn NULL.  Sessions and
 * topics are named by key and name (see tern/__init__.py), never by
 * pointer, so no Python object can outlive what it points to.
 *
 * Everything runs with the GIL held: a hub may be used by one thread at a
 * time, and the GIL is what keeps two Python threads from using one at
 * once.
 */
#ifndef TERN_PY_H
#define TERN_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>

#include <tern.h>

/* ---- objects -------------------------------------------------------------- */

typedef struct FileStoreObject FileStoreObject;

typedef struct HubObject {
  PyObject_HEAD
  tern_hub *hub;            /* NULL once closed                            */
  PyObject *store;          /* the attached store object, or NULL          */
  FileStoreObject *fstore;  /* == store when it is a FileStore             */
  tern_store_methods pystore_methods; /* the bridge to a Python store      */
  PyObject *store_exc;      /* first exception a Python store method raised
                               during the current call                     */
  int in_store;             /* nonzero while a Python store method runs    */
  PyObject *zone_fn;        /* set_zone_callback's callable, or NULL       */
  int in_zone;              /* nonzero while that callable runs (in_store
                               is raised with it)                          */
  int wall_set;             /* set_wallclock was called (add_hook sets it
                               to time.time_ns() otherwise)               */
  tern_conn **deferred;     /* conns whose Conn died inside a store method */
  size_t ndeferred, capdeferred;
  PyObject *weakrefs;
} HubObject;

typedef struct ConnObject {
  PyObject_HEAD
  HubObject *hub;           /* strong reference                            */
  tern_conn *conn;          /* NULL after close                            */
  PyObject *data;           /* the host's own object                       */
  PyObject *weakrefs;
  int framing;
} ConnObject;

struct FileStoreObject {
  PyObject_HEAD
  tern_store_file *store;   /* NULL once closed                            */
  HubObject *hub;           /* the hub it is attached to (borrowed), or NULL */
  PyObject *path;
};

typedef struct ClientObject {
  PyObject_HEAD
  tern_client *client;      /* NULL once closed                            */
} ClientObject;

extern PyTypeObject *tp_HubType;
extern PyTypeObject *tp_ConnType;
extern PyTypeObject *tp_FileStoreType;
extern PyTypeObject *tp_ClientType;

/* ---- errors (module.c) ----------------------------------------------------- */

/* tp_raise raises the tern.Error subclass of |code| with tern_strerror's
   text, or |msg| when not NULL.  Returns NULL. */
PyObject *tp_raise(int code, const char *msg);
/* tp_raise_fmt: the same with a printf-style message. */
PyObject *tp_raise_fmt(int code, const char *fmt, ...);
/* tp_error_code returns the tern code a Python exception stands for:
   its .code when it is a tern.Error, else TERN_ERR_STORE. */
int tp_error_code(PyObject *exc);
/* tp_enum converts |value| to the registered IntEnum |which| ("EventType",
   ...), falling back to a plain int for values the enum lacks. */
PyObject *tp_enum(const char *which, long value);

/* ---- arguments (module.c) ------------------------------------------------- */

/* tp_bytes is a borrowed view of a bytes-like argument: bytes, bytearray,
   memoryview or any contiguous buffer, or a str (its UTF-8, which Python
   caches on the string: no copy either way). */
typedef struct tp_bytes {
  Py_buffer view;
  int held;
  const uint8_t *p;
  size_t n;
} tp_bytes;

/* tp_bytes_get fills |b| from |o| or raises TypeError naming |what|; with
   |opt|, None gives an empty view.  Release with tp_bytes_release. */
int tp_bytes_get(PyObject *o, tp_bytes *b, const char *what, int opt);
void tp_bytes_release(tp_bytes *b);

/* tp_cstr_get gives a NUL-terminated string from a str or bytes (None with
   |opt| gives NULL); TypeError for other types, tern.InvalidError for an
   embedded NUL.  The pointer lives as long as |o|. */
int tp_cstr_get(PyObject *o, const char **s, size_t *n, const char *what,
                int opt);

/* tp_now reads |o|: None is time.monotonic_ns(), else an int >= 0. */
int tp_now(PyObject *o, tern_tstamp *now);
/* tp_duration reads seconds (int or float, >= 0) into nanoseconds. */
int tp_duration(PyObject *o, tern_duration *d, const char *what);
/* tp_seconds converts nanoseconds back to float seconds. */
PyObject *tp_seconds(tern_duration d);
/* tp_tstamp gives an int, or None for TERN_TSTAMP_NONE. */
PyObject *tp_tstamp(tern_tstamp t);

/* tp_uint reads an int in [0, max] (TypeError for other types, bools
   included; ValueError out of range). */
int tp_uint(PyObject *v, uint64_t max, uint64_t *out, const char *name);

/* A table of settable fields for the **kwargs of constructors. */
typedef enum tp_kind {
  TP_U32, TP_U64, TP_SIZE, TP_DUR, TP_BOOL, TP_INT, TP_OVERFLOW3
} tp_kind;
typedef struct tp_field {
  const char *name;
  size_t off;
  tp_kind kind;
} tp_field;
/* tp_apply_fields sets the fields named in |kwargs| (NULL: none) on |st|;
   TypeError for an unknown name.  Names listed in |skip| are ignored. */
int tp_apply_fields(void *st, const tp_field *fields, PyObject *kwargs,
                    const char *const *skip);

/* A fast-call argument list: positional names first.  The first call
   interns the names; keywords then match by pointer. */
typedef struct tp_args {
  const char *fname;
  const char *const *names; /* NULL-terminated                          */
  int npos;                 /* how many may be given by position         */
  int nreq;                 /* how many are required                     */
  PyObject *interned[16];
  int n;
} tp_args;

/* tp_parse fills |out| (one slot per name, NULL when absent) from a
   METH_FASTCALL | METH_KEYWORDS call.  0, or -1 with TypeError. */
int tp_parse(tp_args *a, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames, PyObject **out);

/* A message descriptor read from keyword arguments. */
typedef struct tp_msg {
  tern_msg_desc d;
  tp_bytes id, collapse_key, payload;
  PyObject *refs[2 * TERN_MAX_ATTRS + 1]; /* objects the strings live in  */
  size_t nrefs;
  tern_attr attrs[TERN_MAX_ATTRS];
} tp_msg;

/* tp_msg_init zeroes |m|; tp_msg_parse reads id, collapse_key, priority,
   ttl, content_type, attrs, sync, volatile, trace and cookie (each object
   may be NULL: absent) and |payload| (NULL: none); tp_msg_release undoes
   it. */
void tp_msg_init(tp_msg *m);
int tp_msg_parse(tp_msg *m, PyObject *payload, PyObject *id,
                 PyObject *collapse_key, PyObject *priority, PyObject *ttl,
                 PyObject *content_type, PyObject *attrs, PyObject *sync,
                 PyObject *volatile_, PyObject *trace, PyObject *cookie);
void tp_msg_release(tp_msg *m);

/* ---- result types (types.c) ----------------------------------------------- */

int tp_types_init(PyObject *module);
PyObject *tp_publish_result(const tern_publish_result *r);
PyObject *tp_event(const tern_event *ev);
PyObject *tp_stats(const tern_stats *st);
PyObject *tp_session_info(const tern_session_info *si);
PyObject *tp_conn_info(const tern_conn_info *ci);
PyObject *tp_topic_info(const tern_topic_info *ti);
PyObject *tp_receipt(const tern_receipt *r);
PyObject *tp_client_event(const tern_client_event *ev);
PyObject *tp_client_stats(const tern_client_stats *st);
PyObject *tp_file_stats(const tern_store_file_stats *st);
PyObject *tp_hook_info(const tern_hook_info *in);
PyObject *tp_hook_request(const tern_hook_request *r);
/* tp_is_hook_request: |o| is a tern.HookRequest. */
int tp_is_hook_request(PyObject *o);

/* ---- hub helpers (hub.c) --------------------------------------------------- */

/* tp_hub_usable raises ClosedError (hub closed) or StateError (called
   from inside a store method) and returns 0, else 1. */
int tp_hub_usable(HubObject *h);
/* tp_hub_after runs after every call into a hub that may reach its store:
   it deletes deferred connections and reports what a Python store raised
   when |rc| succeeded (sys.unraisablehook).  Returns |rc|. */
long long tp_hub_after(HubObject *h, long long rc);
/* tp_hub_raise raises for |rc| < 0, chaining a Python store's exception
   as __cause__.  Returns NULL. */
PyObject *tp_hub_raise(HubObject *h, long long rc);
/* tp_conn_object maps a tern_conn to its Conn (new reference) or None. */
PyObject *tp_conn_object(tern_conn *c);
/* tp_conn_new wraps a fresh tern_conn of |hub|. */
PyObject *tp_conn_wrap(HubObject *hub, tern_conn *c, int framing);
/* tp_hub_close deletes the native hub and releases what it holds. */
void tp_hub_close(HubObject *h);

/* ---- store bridge (store.c) ----------------------------------------------- */

/* tp_store_attach attaches |store| (a FileStore or an object with append
   and load methods) to |h|.  0, or -1 with an exception set. */
int tp_store_attach(HubObject *h, PyObject *store, tern_tstamp now);
/* tp_store_detach drops the hub's store reference when the hub closes. */
void tp_store_detach(HubObject *h);

/* ---- web hooks (hooks.c) -------------------------------------------------- */

/* Methods of Hub (its method table lists them) and of the module. */
PyObject *tp_hub_add_hook(HubObject *self, PyObject *args, PyObject *kw);
PyObject *tp_hub_remove_hook(HubObject *self, PyObject *arg);
PyObject *tp_hub_enable_hook(HubObject *self, PyObject *args, PyObject *kw);
PyObject *tp_hub_verify_hook(HubObject *self, PyObject *args, PyObject *kw);
PyObject *tp_hub_hook_ids(HubObject *self, PyObject *noarg);
PyObject *tp_hub_has_hook(HubObject *self, PyObject *arg);
PyObject *tp_hub_hook_info(HubObject *self, PyObject *arg);
PyObject *tp_hub_hook_enqueue(HubObject *self, PyObject *args, PyObject *kw);
PyObject *tp_hub_next_hook_request(HubObject *self, PyObject *args,
                                   PyObject *kw);
PyObject *tp_hub_hook_done(HubObject *self, PyObject *args, PyObject *kw);
PyObject *tp_check_hook_signature(PyObject *self, PyObject *args,
                                  PyObject *kw);
PyObject *tp_check_hook_challenge(PyObject *self, PyObject *args,
                                  PyObject *kw);

/* The settable tern_settings fields (hub.c), for Hub and Workers. */
extern const tp_field tp_settings_fields[];

/* ---- libtern-posix (posix.c) ------------------------------------------------ */

/* tp_posix_init adds tokens, Workers and Request to the module when the
   binding is built with libtern-posix (TERN_PY_POSIX); else nothing. */
int tp_posix_init(PyObject *module);

int tp_hub_type_init(PyObject *module);
int tp_conn_type_init(PyObject *module);
int tp_client_type_init(PyObject *module);
int tp_store_type_init(PyObject *module);

#endif
