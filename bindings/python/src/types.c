/*
 * The result types: named tuples (struct sequences) for events, statistics
 * and descriptions.  Every byte field is copied into a bytes object, since
 * the hub's pointers live only until its next call.
 */
#include "tern_py.h"

static PyTypeObject *PublishResultType, *EventType, *StatsType,
    *SessionInfoType, *ConnInfoType, *TopicInfoType, *ReceiptType,
    *ClientEventType, *ClientStatsType, *FileStatsType, *HookInfoType,
    *HookRequestType;

/* ---- field lists ----------------------------------------------------------- */

static PyStructSequence_Field publish_result_fields[] = {
    {"id", "the message id used, given or generated (bytes)"},
    {"outcome", "a set of PublishOutcome bits"},
    {"evicted", "messages evicted by this publish"},
    {"retry_after", "seconds to wait before retrying (with REJECTED)"},
    {NULL, NULL}};

static PyStructSequence_Field event_fields[] = {
    {"type", "an EventType"},
    {"reason", "a DropReason, GoawayReason or error code, see EventType"},
    {"conn", "the Conn concerned, or None"},
    {"session_key", "bytes or None"},
    {"msg_id", "the message id (bytes) for message events, else None"},
    {"aux", "COLLAPSED: the newer id; CONN_HELLO: the token; else None"},
    {"seq", "the message's last seq; CONN_HELLO: last_seq"},
    {"count", "SESSION_EXPIRED: messages it still held"},
    {"cookie", "the publish's cookie"},
    {NULL, NULL}};

/* tern_stats: every field is a uint64_t, in this order. */
static const char *const stats_names[] = {
    "published", "duplicates", "collapsed", "evicted", "refused",
    "rejected", "expired", "dead", "sent", "resent", "acked",
    "dropped_notices", "sessions_created", "sessions_expired",
    "conns_opened", "conns_dead", "proto_errors", "events_lost", "bytes_in",
    "bytes_out", "sessions", "conns", "messages", "message_bytes",
    "inflight", "store_batches", "sessions_deleted", "canceled", "topics",
    "members", "topic_messages", "topic_bytes", "policy_holds",
    "policy_releases", "fallbacks", "fallback_acked", "accepts_deferred",
    NULL};
#define NSTATS (sizeof(tern_stats) / sizeof(uint64_t))
/* A field appended to tern_stats needs its name here. */
_Static_assert(sizeof(stats_names) / sizeof(stats_names[0]) == NSTATS + 1,
               "stats_names lists every field of tern_stats");

static const char *const file_stats_names[] = {
    "records", "live", "bytes", "garbage_bytes", "segments", "skipped",
    "truncated", "compactions", "fsyncs", "skipped_bytes", "index_bytes",
    "compact_failures", "skipped_files", NULL};
#define NFILESTATS (sizeof(tern_store_file_stats) / sizeof(uint64_t))

static PyStructSequence_Field session_info_fields[] = {
    {"key", "the session key (bytes)"},
    {"pending", "messages waiting to be sent"},
    {"inflight", "messages sent, not acked"},
    {"pending_bytes", "payload bytes held"},
    {"conns", "attached connections"},
    {"next_seq", "the seq the next message will carry"},
    {"dropped", "messages lost before an ack, since creation"},
    {"expires", "when it expires (ns), None while a connection is attached"},
    {NULL, NULL}};

static PyStructSequence_Field conn_info_fields[] = {
    {"closed", "True once closed"},
    {"inflight", "messages sent on it, not acked"},
    {"rtt", "last PING/PONG round trip in seconds, 0 unknown"},
    {"heartbeat_interval", "negotiated, seconds"},
    {"liveness_timeout", "negotiated, seconds"},
    {"error", "why it closed: an error code or 0"},
    {NULL, NULL}};

static PyStructSequence_Field topic_info_fields[] = {
    {"name", "the topic name (str)"},
    {"first_offset", "oldest retained message"},
    {"end_offset", "the offset the next message will get"},
    {"messages", "retained messages"},
    {"bytes", "their payload bytes"},
    {"members", "subscribed sessions"},
    {NULL, NULL}};

static PyStructSequence_Field receipt_fields[] = {
    {"offset", "the message's offset"},
    {"subscribed", "members whose filter matched it"},
    {"sent", "members it was sent to"},
    {"acked", "members that acked it"},
    {NULL, NULL}};

static PyStructSequence_Field client_event_fields[] = {
    {"type", "a ClientEventType"},
    {"reason", "see ClientEventType"},
    {"seq", "MESSAGE: its seq; PUBACK: the request number"},
    {"count", "GAP: lost messages; CONNECTED: 1 if resumed"},
    {"priority", "MESSAGE: a Priority"},
    {"ttl", "MESSAGE: remaining lifetime in seconds, 0 none"},
    {"retry_after", "DISCONNECTED, PUBACK: the server's hint in seconds"},
    {"id", "the message id (bytes) or None"},
    {"collapse_key", "bytes or None"},
    {"content_type", "str or None"},
    {"payload", "MESSAGE: the payload (bytes), else None"},
    {"attrs", "MESSAGE: a dict of str to str, else None"},
    {NULL, NULL}};

static PyStructSequence_Field hook_info_fields[] = {
    {"id", "the hook's id"},
    {"state", "HookState bits: VERIFIED, DISABLED"},
    {"failures", "batches given up in a row"},
    {"target", "the target (bytes)"},
    {"queued", "entries waiting, not in a batch"},
    {"queued_bytes", "their size in the body"},
    {"outstanding", "batches taken and not settled"},
    {"delivered", "entries delivered since the hub started"},
    {"dropped", "entries given up since the hub started"},
    {"attempts", "requests answered since the hub started"},
    {NULL, NULL}};

static PyStructSequence_Field hook_request_fields[] = {
    {"kind", "a HookKind: DELIVERY (POST body) or CHALLENGE (GET with query)"},
    {"hook", "the hook's id"},
    {"delivery", "the delivery id: names the request in Hub.hook_done"},
    {"attempt", "1 for the first try"},
    {"entries", "DELIVERY: entries in the body"},
    {"method", "'POST' or 'GET'"},
    {"target", "the hook's target (bytes), a URL say"},
    {"query", "CHALLENGE: the query to append after '?'; '' for DELIVERY"},
    {"body", "DELIVERY: the JSON batch (bytes); CHALLENGE: b''"},
    {"headers", "the headers to set, a dict of str to str"},
    {"timestamp", "Unix seconds, as in X-Tern-Timestamp"},
    {NULL, NULL}};

static const char *const client_stats_names[] = {
    "received", "delivered", "duplicates", "gaps", "resyncs", "reconnects",
    "acks_sent", "rtt", "heartbeat_interval", NULL};

/* ---- construction ---------------------------------------------------------- */

static PyTypeObject *new_type(const char *name, const char *doc,
                              PyStructSequence_Field *fields) {
  PyStructSequence_Desc desc = {name, doc, fields, 0};
  int n = 0;
  while (fields[n].name) {
    ++n;
  }
  desc.n_in_sequence = n;
  return PyStructSequence_NewType(&desc);
}

/* A type over a NULL-terminated list of names. */
static PyTypeObject *names_type(const char *name, const char *doc,
                                const char *const *names) {
  static PyStructSequence_Field fields[3][48];
  static int used;
  PyStructSequence_Field *f = fields[used++];
  size_t i = 0;
  for (; names[i]; ++i) {
    f[i].name = names[i];
    f[i].doc = NULL;
  }
  f[i].name = NULL;
  return new_type(name, doc, f);
}

static int add(PyObject *m, const char *name, PyTypeObject *t) {
  if (!t) {
    return -1;
  }
  Py_INCREF(t);
  if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
    Py_DECREF(t);
    return -1;
  }
  return 0;
}

int tp_types_init(PyObject *m) {
  PublishResultType = new_type("tern.PublishResult",
                               "What happened to a publish.",
                               publish_result_fields);
  EventType = new_type("tern.Event", "One event of a hub (Hub.next_event).",
                       event_fields);
  StatsType = names_type("tern.Stats", "A hub's counters and gauges.",
                         stats_names);
  SessionInfoType = new_type("tern.SessionInfo", "A session now.",
                             session_info_fields);
  ConnInfoType = new_type("tern.ConnInfo", "A connection now.",
                          conn_info_fields);
  TopicInfoType = new_type("tern.TopicInfo", "A topic now.",
                           topic_info_fields);
  ReceiptType = new_type("tern.Receipt", "A topic message's read receipt.",
                         receipt_fields);
  ClientEventType = new_type("tern.ClientEvent", "One event of a Client.",
                             client_event_fields);
  ClientStatsType = names_type("tern.ClientStats", "A client's counters.",
                               client_stats_names);
  FileStatsType = names_type("tern.FileStoreStats", "A file store's stats.",
                             file_stats_names);
  HookInfoType = new_type("tern.HookInfo", "A web hook now (Hub.hook_info).",
                          hook_info_fields);
  HookRequestType = new_type("tern.HookRequest",
                             "A request for the host to make for a web hook "
                             "(Hub.next_hook_request); answer it with "
                             "Hub.hook_done.",
                             hook_request_fields);
  if (add(m, "HookInfo", HookInfoType) < 0 ||
      add(m, "HookRequest", HookRequestType) < 0) {
    return -1;
  }
  if (add(m, "PublishResult", PublishResultType) < 0 ||
      add(m, "Event", EventType) < 0 || add(m, "Stats", StatsType) < 0 ||
      add(m, "SessionInfo", SessionInfoType) < 0 ||
      add(m, "ConnInfo", ConnInfoType) < 0 ||
      add(m, "TopicInfo", TopicInfoType) < 0 ||
      add(m, "Receipt", ReceiptType) < 0 ||
      add(m, "ClientEvent", ClientEventType) < 0 ||
      add(m, "ClientStats", ClientStatsType) < 0 ||
      add(m, "FileStoreStats", FileStatsType) < 0) {
    return -1;
  }
  return 0;
}

/* Fills |o| from |vals|, stealing each reference; NULL vals fail it. */
static PyObject *fill(PyTypeObject *t, PyObject **vals, int n) {
  PyObject *o = PyStructSequence_New(t);
  int ok = o != NULL;
  for (int i = 0; i < n; ++i) {
    ok = ok && vals[i] != NULL;
  }
  if (!ok) {
    for (int i = 0; i < n; ++i) {
      Py_XDECREF(vals[i]);
    }
    Py_XDECREF(o);
    return NULL;
  }
  for (int i = 0; i < n; ++i) {
    PyStructSequence_SET_ITEM(o, i, vals[i]);
  }
  return o;
}

static PyObject *bytes_or_none(const uint8_t *p, size_t n) {
  if (!p) {
    Py_RETURN_NONE;
  }
  return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
}

static PyObject *u64(uint64_t v) { return PyLong_FromUnsignedLongLong(v); }

static PyObject *u64_seq(PyTypeObject *t, const uint64_t *v, size_t n) {
  PyObject *vals[48];
  for (size_t i = 0; i < n; ++i) {
    vals[i] = u64(v[i]);
  }
  return fill(t, vals, (int)n);
}

PyObject *tp_publish_result(const tern_publish_result *r) {
  PyObject *v[4] = {bytes_or_none(r->id, r->idlen),
                    tp_enum("PublishOutcome", (long)r->outcome),
                    PyLong_FromUnsignedLong(r->nevicted),
                    tp_seconds(r->retry_after)};
  return fill(PublishResultType, v, 4);
}

PyObject *tp_event(const tern_event *ev) {
  const char *reason_enum = NULL;
  switch (ev->type) {
  case TERN_EV_HOOK_VERIFIED:
    reason_enum = "ErrorCode"; /* 0 (verified) stays a plain int */
    break;
  case TERN_EV_EXPIRED:
  case TERN_EV_EVICTED:
  case TERN_EV_DEAD:
    reason_enum = "DropReason";
    break;
  case TERN_EV_CONN_DEAD:
  case TERN_EV_CONN_CLOSED:
    reason_enum = "GoawayReason";
    break;
  default:
    break;
  }
  PyObject *v[9] = {
      tp_enum("EventType", ev->type),
      reason_enum ? tp_enum(reason_enum, ev->reason)
                  : PyLong_FromLong(ev->reason),
      tp_conn_object(ev->conn),
      bytes_or_none(ev->session_key, ev->session_keylen),
      bytes_or_none(ev->msg_id, ev->msg_idlen),
      bytes_or_none(ev->aux, ev->auxlen),
      u64(ev->seq),
      u64(ev->count),
      u64(ev->cookie)};
  return fill(EventType, v, 9);
}

PyObject *tp_stats(const tern_stats *st) {
  return u64_seq(StatsType, (const uint64_t *)(const void *)st, NSTATS);
}

PyObject *tp_file_stats(const tern_store_file_stats *st) {
  return u64_seq(FileStatsType, (const uint64_t *)(const void *)st,
                 NFILESTATS);
}

PyObject *tp_session_info(const tern_session_info *si) {
  PyObject *v[8] = {bytes_or_none(si->key, si->keylen),
                    PyLong_FromUnsignedLong(si->pending),
                    PyLong_FromUnsignedLong(si->inflight),
                    u64(si->pending_bytes),
                    PyLong_FromUnsignedLong(si->nconns),
                    u64(si->next_seq),
                    u64(si->dropped),
                    tp_tstamp(si->expires)};
  return fill(SessionInfoType, v, 8);
}

PyObject *tp_conn_info(const tern_conn_info *ci) {
  PyObject *v[6] = {PyBool_FromLong(ci->closed),
                    PyLong_FromUnsignedLong(ci->inflight),
                    tp_seconds(ci->rtt),
                    tp_seconds(ci->heartbeat_interval),
                    tp_seconds(ci->liveness_timeout),
                    PyLong_FromLong(ci->error)};
  return fill(ConnInfoType, v, 6);
}

PyObject *tp_topic_info(const tern_topic_info *ti) {
  PyObject *v[6] = {PyUnicode_FromString(ti->name ? ti->name : ""),
                    u64(ti->first_offset),
                    u64(ti->end_offset),
                    u64(ti->messages),
                    u64(ti->bytes),
                    u64(ti->members)};
  return fill(TopicInfoType, v, 6);
}

PyObject *tp_receipt(const tern_receipt *r) {
  PyObject *v[4] = {u64(r->offset), u64(r->subscribed), u64(r->sent),
                    u64(r->acked)};
  return fill(ReceiptType, v, 4);
}

static PyObject *client_attrs(const tern_client_event *ev) {
  PyObject *d = PyDict_New();
  for (size_t i = 0; d && i < ev->nattrs && i < TERN_MAX_ATTRS; ++i) {
    const tern_client_attr *a = &ev->attrs[i];
    PyObject *k = PyUnicode_DecodeUTF8((const char *)a->key,
                                       (Py_ssize_t)a->keylen, "replace");
    PyObject *val = PyUnicode_DecodeUTF8((const char *)a->value,
                                         (Py_ssize_t)a->valuelen, "replace");
    if (!k || !val || PyDict_SetItem(d, k, val) < 0) {
      Py_XDECREF(k);
      Py_XDECREF(val);
      Py_DECREF(d);
      return NULL;
    }
    Py_DECREF(k);
    Py_DECREF(val);
  }
  return d;
}

PyObject *tp_client_event(const tern_client_event *ev) {
  int msg = ev->type == TERN_CLIENT_EV_MESSAGE;
  const char *reason_enum = NULL;
  if (ev->type == TERN_CLIENT_EV_GAP) {
    reason_enum = "DropReason";
  } else if (ev->type == TERN_CLIENT_EV_DISCONNECTED) {
    reason_enum = "GoawayReason";
  } else if (ev->type == TERN_CLIENT_EV_PUBACK) {
    reason_enum = "PubackStatus";
  } else if (ev->type == TERN_CLIENT_EV_RESYNC) {
    reason_enum = "ResyncReason";
  }
  PyObject *ct;
  if (ev->content_type) {
    ct = PyUnicode_DecodeUTF8((const char *)ev->content_type,
                              (Py_ssize_t)ev->content_typelen, "replace");
  } else {
    ct = Py_NewRef(Py_None);
  }
  PyObject *v[12] = {
      tp_enum("ClientEventType", ev->type),
      reason_enum ? tp_enum(reason_enum, ev->reason)
                  : PyLong_FromLong(ev->reason),
      u64(ev->seq),
      u64(ev->count),
      msg ? tp_enum("Priority", ev->priority) : PyLong_FromLong(ev->priority),
      tp_seconds(ev->ttl),
      tp_seconds(ev->retry_after),
      bytes_or_none(ev->id, ev->idlen),
      bytes_or_none(ev->collapse_key, ev->collapse_keylen),
      ct,
      msg ? PyBytes_FromStringAndSize((const char *)ev->payload,
                                      (Py_ssize_t)ev->payloadlen)
          : Py_NewRef(Py_None),
      msg ? client_attrs(ev) : Py_NewRef(Py_None)};
  return fill(ClientEventType, v, 12);
}

PyObject *tp_client_stats(const tern_client_stats *st) {
  PyObject *v[9] = {u64(st->received),   u64(st->delivered),
                    u64(st->duplicates), u64(st->gaps),
                    u64(st->resyncs),    u64(st->reconnects),
                    u64(st->acks_sent),  tp_seconds(st->rtt),
                    tp_seconds(st->heartbeat_interval)};
  return fill(ClientStatsType, v, 9);
}

PyObject *tp_hook_info(const tern_hook_info *in) {
  PyObject *v[10] = {u64(in->id),
                     tp_enum("HookState", (long)in->state),
                     PyLong_FromUnsignedLong(in->failures),
                     PyBytes_FromStringAndSize((const char *)in->target,
                                               (Py_ssize_t)in->targetlen),
                     u64(in->queued),
                     u64(in->queued_bytes),
                     PyLong_FromUnsignedLong(in->outstanding),
                     u64(in->delivered),
                     u64(in->dropped),
                     u64(in->attempts)};
  return fill(HookInfoType, v, 10);
}

static PyObject *hook_headers(const tern_hook_request *r) {
  PyObject *d = PyDict_New();
  for (size_t i = 0; d && i < r->nheaders; ++i) {
    const tern_hook_header *h = &r->headers[i];
    PyObject *k = PyUnicode_DecodeLatin1(h->name, (Py_ssize_t)strlen(h->name),
                                         NULL);
    PyObject *val = PyUnicode_DecodeLatin1(
        h->value, (Py_ssize_t)strlen(h->value), NULL);
    if (!k || !val || PyDict_SetItem(d, k, val) < 0) {
      Py_XDECREF(k);
      Py_XDECREF(val);
      Py_CLEAR(d);
    } else {
      Py_DECREF(k);
      Py_DECREF(val);
    }
  }
  return d;
}

PyObject *tp_hook_request(const tern_hook_request *r) {
  PyObject *v[11] = {
      tp_enum("HookKind", r->kind),
      u64(r->hook),
      u64(r->delivery),
      PyLong_FromUnsignedLong(r->attempt),
      PyLong_FromUnsignedLong(r->entries),
      PyUnicode_FromString(r->method ? r->method : ""),
      PyBytes_FromStringAndSize((const char *)r->target,
                                (Py_ssize_t)r->targetlen),
      PyUnicode_DecodeLatin1(r->query ? r->query : "",
                             r->query ? (Py_ssize_t)r->querylen : 0, NULL),
      PyBytes_FromStringAndSize(r->body ? (const char *)r->body : "",
                                r->body ? (Py_ssize_t)r->bodylen : 0),
      hook_headers(r),
      u64(r->timestamp)};
  return fill(HookRequestType, v, 11);
}

int tp_is_hook_request(PyObject *o) {
  return HookRequestType && Py_IS_TYPE(o, HookRequestType);
}
