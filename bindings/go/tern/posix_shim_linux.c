/*
 * Go binding helpers for libtern-posix (see posix_shim.h).  Built on Linux
 * only, as libtern-posix is.
 */
#include "posix_shim.h"

#include <stdlib.h>
#include <string.h>

/* Exported by workers_linux.go; |handle| is the workers' cgo.Handle. */
extern int goTernAuthorize(uintptr_t handle, uint32_t worker, uint8_t *key,
                           size_t keylen, uint8_t *token, size_t tokenlen);
extern void goTernDone(uintptr_t handle, uint32_t worker, uint64_t cookie,
                       int rc);

/* What the workers' callbacks need, in C memory for the workers' life. */
struct go_workers_cb {
  uintptr_t handle;
  uint32_t n;
  int authorize;
  int done;
};

/* Answers each HELLO that reaches the host: with the Go authorizer's
   verdict when there is one; else, with several workers (whose hubs wait
   for an answer to every HELLO), by accepting it.  Binary sockets were
   moved to the session's worker already (and accepted there, without an
   authorizer: a second accept is a harmless TERN_ERR_STATE); a WebSocket
   of the binary framing cannot move, so one whose HELLO names a session
   of another worker is refused. */
static void on_event(void *user_data, uint32_t worker, tern_driver *d,
                     const tern_event *ev) {
  (void)d;
  go_workers_cb *cb = user_data;
  if (ev->type != TERN_EV_CONN_HELLO) {
    return;
  }
  tern_tstamp now = tern_posix_now();
  if (cb->n > 1 &&
      tern_shard_of(ev->session_key, ev->session_keylen, cb->n) != worker) {
    tern_conn_goaway(ev->conn, TERN_GOAWAY_REJECTED, 0, now);
  } else if (cb->authorize) {
    if (goTernAuthorize(cb->handle, worker, (uint8_t *)ev->session_key,
                        ev->session_keylen, (uint8_t *)ev->aux, ev->auxlen)) {
      tern_conn_accept(ev->conn, now); /* LIMIT closes it, with its event */
    } else {
      tern_conn_goaway(ev->conn, TERN_GOAWAY_REJECTED, 0, now);
    }
  } else if (cb->n > 1) {
    tern_conn_accept(ev->conn, now);
  }
}

static void on_done(void *user_data, uint32_t worker, uint64_t cookie,
                    int rc) {
  go_workers_cb *cb = user_data;
  goTernDone(cb->handle, worker, cookie, rc);
}

int go_workers_new(tern_workers **pw, go_workers_cb **pcb,
                   tern_workers_options *o, uintptr_t handle, int authorize,
                   int done) {
  go_workers_cb *cb = calloc(1, sizeof(*cb));
  if (!cb) {
    return TERN_ERR_NOMEM;
  }
  cb->handle = handle;
  cb->n = o->nthreads;
  cb->authorize = authorize;
  cb->done = done;
  o->user_data = cb;
  o->on_event = authorize || o->nthreads > 1 ? on_event : NULL;
  o->on_done = done ? on_done : NULL;
  int rc = tern_workers_new(pw, o);
  if (rc != 0) {
    free(cb);
    return rc;
  }
  *pcb = cb;
  return 0;
}

void go_workers_del(tern_workers *w, go_workers_cb *cb) {
  tern_workers_del(w);
  free(cb);
}

int go_workers_publish(tern_workers *w, const go_msg *m, const uint8_t *buf,
                       const uint8_t *pbuf) {
  tern_msg_desc d;
  tern_attr attrs[TERN_MAX_ATTRS];
  go_fill_desc(&d, attrs, m, buf, pbuf);
  /* The versioned name, not the macro: cgo's build cache does not see a
     change in an outside header. */
  return tern_workers_publish_versioned(w, buf + m->key_off,
                                        (size_t)m->key_len,
                                        TERN_MSG_DESC_VERSION, &d);
}

/* ---- HTTP ------------------------------------------------------------------ */

extern void goTernHTTP(uintptr_t handle, go_http_set *set, uint32_t worker,
                       tern_http_request *r);

typedef struct go_http_ctx {
  go_http_set *set;
  uint32_t index;
} go_http_ctx;

struct go_http_set {
  uintptr_t handle;
  uint32_t n;
  tern_http **servers;
  go_http_ctx *ctx;
};

/* A stream answer on its way to the session's owner, as the forwarded
   request's argument. */
#define GO_FWD_MAGIC 0x676f6677u
typedef struct go_fwd {
  uint32_t magic;
  int ws;
  tern_stream_opts o;
  char *headers; /* in the same block, or NULL */
  uint8_t key[];
} go_fwd;

static int answer_stream(tern_http_request *r, int ws,
                         const tern_stream_opts *o, const char *headers) {
  return ws ? tern_http_respond_websocket(r, o, headers, NULL)
            : tern_http_respond_stream(r, o, headers, NULL);
}

static void on_request(void *user_data, tern_http_request *r) {
  go_http_ctx *ctx = user_data;
  go_fwd *f = tern_http_request_forwarded(r);
  if (f && f->magic == GO_FWD_MAGIC) {
    int rc = answer_stream(r, f->ws, &f->o, f->headers);
    if (rc != 0 && rc != TERN_ERR_PROTO) {
      (void)tern_http_respond_error(r, rc == TERN_ERR_INVALID ? 400 : 503,
                                    NULL, tern_strerror(rc));
    }
    free(f);
    return;
  }
  goTernHTTP(ctx->set->handle, ctx->set, ctx->index, r);
}

static void on_abort(void *user_data, tern_http_request *r) {
  (void)user_data;
  go_fwd *f = tern_http_request_forwarded(r);
  if (f && f->magic == GO_FWD_MAGIC) {
    free(f);
  }
}

void go_http_del(go_http_set *set) {
  if (!set) {
    return;
  }
  for (uint32_t i = 0; i < set->n; ++i) {
    tern_http_del(set->servers[i]);
  }
  free(set->servers);
  free(set->ctx);
  free(set);
}

int go_http_new(go_http_set **pset, tern_workers *w, uintptr_t handle) {
  go_http_set *set = calloc(1, sizeof(*set));
  uint32_t n = tern_workers_count(w);
  if (!set) {
    return TERN_ERR_NOMEM;
  }
  set->handle = handle;
  set->servers = calloc(n, sizeof(*set->servers));
  set->ctx = calloc(n, sizeof(*set->ctx));
  if (!set->servers || !set->ctx) {
    go_http_del(set);
    return TERN_ERR_NOMEM;
  }
  for (uint32_t i = 0; i < n; ++i) {
    tern_http_options o;
    tern_http_options_default(&o);
    set->ctx[i].set = set;
    set->ctx[i].index = i;
    o.on_request = on_request;
    o.on_abort = on_abort;
    o.user_data = &set->ctx[i];
    o.reuseport = 1;
    int rc = tern_http_new(&set->servers[i], tern_workers_get_driver(w, i), &o);
    if (rc != 0) {
      go_http_del(set);
      return rc;
    }
    set->n = i + 1;
  }
  *pset = set;
  return 0;
}

int go_http_listen(go_http_set *set, const char *host, uint16_t port,
                   uint16_t *pport) {
  for (uint32_t i = 0; i < set->n; ++i) {
    /* Port 0: the first server picks one, the others join it. */
    int rc = tern_http_listen(set->servers[i], host, port, &port);
    if (rc != 0) {
      return rc;
    }
  }
  *pport = port;
  return 0;
}

int go_http_stream(go_http_set *set, uint32_t here, tern_http_request *r,
                   int ws, int framing, const uint8_t *key, size_t keylen,
                   uint64_t resume_epoch, uint64_t resume_seq,
                   uint64_t heartbeat, uint64_t retry, uint64_t poll_hold,
                   const char *headers) {
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = framing;
  o.key = key;
  o.keylen = keylen;
  o.resume_epoch = resume_epoch;
  o.resume_seq = resume_seq;
  o.heartbeat_interval = heartbeat;
  o.retry = retry;
  if (poll_hold != UINT64_MAX) {
    o.poll_hold = poll_hold;
  }
  if (!key || keylen == 0 || keylen > TERN_MAX_SESSION_KEY) {
    return keylen > TERN_MAX_SESSION_KEY ? TERN_ERR_TOO_LARGE
                                         : TERN_ERR_INVALID;
  }
  uint32_t owner = tern_shard_of(key, keylen, set->n);
  if (owner == here) {
    return answer_stream(r, ws, &o, headers);
  }
  size_t hlen = headers ? strlen(headers) + 1 : 0;
  go_fwd *f = malloc(sizeof(*f) + keylen + hlen);
  if (!f) {
    return TERN_ERR_NOMEM;
  }
  f->magic = GO_FWD_MAGIC;
  f->ws = ws;
  f->o = o;
  memcpy(f->key, key, keylen);
  f->o.key = f->key;
  f->headers = NULL;
  if (headers) {
    f->headers = (char *)f->key + keylen;
    memcpy(f->headers, headers, hlen);
  }
  /* The owner's on_request answers and frees |f| (on_abort frees it when
     the connection closes first).  A connection the owner cannot take
     over is closed by tern_http and |f| is lost: a rare leak of one small
     block, which tern_http_request_forward(3) leaves no way to avoid. */
  int rc = tern_http_request_forward(r, set->servers[owner], f);
  if (rc != 0) {
    free(f);
  }
  return rc;
}
