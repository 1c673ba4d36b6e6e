/*
 * tern_http: HTTP/1.1 on a driver's loop.  Each connection is a host
 * socket of the driver (tern_socket_handler) whose protocol is lib/http's
 * strict parser on the way in and a small output buffer on the way out;
 * a connection turned into a stream hands its output over to a one-way
 * tern_conn of the driver's hub and drops its parser; once the answer's
 * head is out, the driver serves that connection itself, as it does a
 * binary socket's, and this struct goes too (posix_socket_set_conn), so
 * that an idle SSE subscriber costs its socket and the hub's connection.
 *
 * One request is served at a time per connection: bytes pipelined behind
 * a request that waits for its answer (a SYNC publish waiting for the
 * disk, say) are kept, up to a bound, and parsed once it is answered.
 * The raw bytes of the request being served are kept too (from req_start)
 * until it is answered, so that it can be forwarded to another server,
 * whose loop parses them again: the parser decodes in place.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/http.h"
#include "posix/posix.h"

/* How often the timeouts are looked at, and so their resolution. */
#define SWEEP_EVERY TERN_SECONDS

enum conn_state {
  C_READ = 0, /* parsing (or idle between requests)          */
  C_DISPATCH, /* inside on_request                           */
  C_PENDING,  /* on_request returned without an answer       */
  C_STREAM,   /* a one-way tern_conn writes the rest         */
  C_CLOSING,  /* the last answer is written; close after it  */
  C_FORWARD,  /* forwarded from inside on_request: leave      */
  C_FORWARD_WAIT /* forwarded; earlier answers still being sent */
};

/* A forwarded connection on its way to another server's loop. */
typedef struct handoff {
  struct handoff *next;
  int fd;
  void *arg;
  size_t len;
  uint8_t bytes[]; /* the request and what was pipelined behind it */
} handoff;

struct tern_http_request {
  tern_http *h;
  tern_socket *s;
  http_parser *p;          /* NULL once a stream                        */
  enum conn_state state;
  uint8_t *out;            /* answer bytes not yet pulled               */
  size_t out_off, out_len, out_cap;
  uint8_t *in;             /* bytes read: the current request's from
                              req_start, the unparsed ones from in_off */
  size_t req_start, in_off, in_len, in_cap;
  void *forward_arg;       /* tern_http_request_forwarded               */
  tern_http *forward_to;   /* C_FORWARD                                 */
  tern_conn *conn;         /* C_STREAM                                  */
  char *poll_heads;        /* a poll's 200 head, NUL, its 204 head      */
  size_t poll_200_len, poll_204_len;
  int poll_started;        /* the 200 head was written                  */
  int ws;                  /* C_STREAM over WebSocket: reads go to conn  */
  tern_tstamp mark;        /* start of the request, or of idleness      */
  void *user_data;
  tern_http_request *prev, *next; /* the timed list (not streams)       */
  tern_http_request *wait_next;  /* C_FORWARD_WAIT: on the server's list */
};

struct tern_http {
  tern_driver *d;
  const tern_loop_methods *m;
  void *loop;
  tern_http_options o;
  http_limits lim;
  void *timer;
  int armed;
  tern_http_request *timed;
  tern_http_stats st;
  void *waker;             /* forwarded connections arrive through it   */
  pthread_mutex_t lock;    /* guards handoffs                           */
  handoff *handoffs;
  tern_http_request *fwait; /* forwards waiting for earlier answers to go */
  posix_binding *http_b;   /* what its sockets are served with, shared */
  posix_binding *stream_b; /* ... once the driver serves their streams */
};

static int forward_now(tern_http_request *c);
static int on_read(void *user, tern_socket *s, const uint8_t *in, size_t len,
                   tern_tstamp now);
static const tern_socket_handler handler_of_http;
static const tern_socket_handler handler_of_stream;

void tern_http_options_default_versioned(uint32_t version,
                                         tern_http_options *o) {
  if (!o) {
    return;
  }
  if (version != TERN_HTTP_OPTIONS_V1) {
    o->version = 0;
    return;
  }
  memset(o, 0, sizeof(*o));
  o->version = version;
  o->max_target = HTTP_DEFAULT_MAX_TARGET;
  o->max_head = HTTP_DEFAULT_MAX_HEAD;
  o->max_headers = HTTP_DEFAULT_MAX_HEADERS;
  o->max_body = HTTP_DEFAULT_MAX_BODY;
  o->request_timeout = 30 * TERN_SECONDS;
  o->idle_timeout = 60 * TERN_SECONDS;
}

/* ---- the timed list ----------------------------------------------------- */

static void timed_unlink(tern_http_request *c) {
  tern_http *h = c->h;
  if (c->prev) {
    c->prev->next = c->next;
  } else if (h->timed == c) {
    h->timed = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  }
  c->prev = c->next = NULL;
}

static void arm(tern_http *h) {
  if (!h->armed && h->timed &&
      (h->o.request_timeout || h->o.idle_timeout)) {
    h->m->timer_set(h->loop, h->timer, h->m->now(h->loop) + SWEEP_EVERY);
    h->armed = 1;
  }
}

/* ---- output ------------------------------------------------------------- */

static int out_reserve(tern_http_request *c, size_t n) {
  if (c->out_off == c->out_len) {
    c->out_off = c->out_len = 0;
  }
  if (c->out_len + n <= c->out_cap) {
    return 0;
  }
  size_t cap = c->out_cap ? c->out_cap : 256;
  while (cap < c->out_len + n) {
    cap *= 2;
  }
  uint8_t *p = realloc(c->out, cap);
  if (!p) {
    return TERN_ERR_NOMEM;
  }
  c->out = p;
  c->out_cap = cap;
  return 0;
}

/* Answers a request the server refuses itself, and closes after it. */
static void refuse(tern_http_request *c, int status, const char *reason,
                   int head_only) {
  size_t n = http_error_size(status, reason, HTTP_RESP_CLOSE, -1, head_only);
  if (out_reserve(c, n) == 0) {
    c->out_len += http_write_error((char *)c->out + c->out_len, n, status,
                                   reason, HTTP_RESP_CLOSE, -1, head_only);
  }
  c->state = C_CLOSING;
  c->h->st.bad_requests++;
  timed_unlink(c);
}

/* ---- requests ----------------------------------------------------------- */

static tern_tstamp now_of(const tern_http *h) { return h->m->now(h->loop); }

/* Parses what is buffered and hands complete requests to the host, while
   the connection is free for the next request.  Returns 1 when the
   connection was forwarded (|c| is gone), else 0. */
static int serve(tern_http_request *c) {
  tern_http *h = c->h;
  while (c->state == C_READ && c->in_off < c->in_len) {
    if (http_parser_idle(c->p)) {
      c->mark = now_of(h); /* a request starts: its timeout runs */
      c->req_start = c->in_off;
    }
    size_t used = 0;
    int rc = http_parse(c->p, c->in + c->in_off, c->in_len - c->in_off, &used);
    c->in_off += used;
    if (http_parser_take_continue(c->p) && out_reserve(c, 32) == 0) {
      c->out_len += http_write_continue((char *)c->out + c->out_len, 32);
    }
    if (rc == HTTP_PARSE_MORE) {
      break;
    }
    if (rc == HTTP_PARSE_ERROR) {
      const char *reason;
      int status = http_error(c->p, &reason);
      refuse(c, status, reason, 0);
      break;
    }
    c->state = C_DISPATCH;
    h->st.requests++;
    h->o.on_request(h->o.user_data, c);
    if (c->state == C_FORWARD && forward_now(c) == 0) {
      return 1;
    }
    if (c->state == C_FORWARD_WAIT) {
      break; /* the rest goes with it */
    }
    if (c->state == C_DISPATCH) {
      c->state = C_PENDING;
    }
  }
  if (c->in && c->in_off == c->in_len && c->state == C_READ &&
      http_parser_idle(c->p)) {
    free(c->in);
    c->in = NULL;
    c->req_start = c->in_off = c->in_len = c->in_cap = 0;
  }
  if (c->state == C_READ && !c->in) {
    http_parser_trim(c->p); /* an idle keep-alive connection holds nothing */
  }
  tern_socket_want_write(c->s);
  return 0;
}

/* The answer is written: on to the next request, or close. */
static void answered(tern_http_request *c, int closing) {
  int deferred = c->state == C_PENDING;
  c->h->st.responses++;
  c->user_data = NULL;
  c->forward_arg = NULL;
  if (closing) {
    c->state = C_CLOSING;
    timed_unlink(c);
    tern_socket_want_write(c->s);
    return;
  }
  http_parser_next(c->p);
  c->state = C_READ;
  c->mark = now_of(c->h);
  c->req_start = c->in_off;
  if (deferred && serve(c)) {
    return; /* requests that arrived meanwhile; the next was forwarded */
  }
  tern_socket_want_write(c->s);
}

static int can_answer(const tern_http_request *c) {
  return c->state == C_DISPATCH || c->state == C_PENDING;
}

/* |headers|: nothing, or "Name: value\r\n" lines with no other CR or LF. */
static int headers_ok(const char *headers) {
  if (!headers) {
    return 1;
  }
  const char *p = headers;
  while (*p) {
    const char *colon = NULL;
    const char *q = p;
    for (; *q && *q != '\r' && *q != '\n'; ++q) {
      if (!colon && *q == ':') {
        colon = q;
      }
    }
    if (!colon || colon == p || q[0] != '\r' || q[1] != '\n') {
      return 0;
    }
    p = q + 2;
  }
  return 1;
}

static int no_crlf(const char *z) {
  return !z || strpbrk(z, "\r\n") == NULL;
}

static unsigned conn_flags(const http_request *req, int closing) {
  if (closing) {
    return HTTP_RESP_CLOSE;
  }
  return req->minor == 0 ? HTTP_RESP_KEEP_ALIVE : 0;
}

int tern_http_respond(tern_http_request *r, int status,
                      const char *content_type, const char *headers,
                      const void *body, size_t len) {
  if (!r || status < 200 || status > 599 || !headers_ok(headers) ||
      !no_crlf(content_type) || (len > 0 && !body)) {
    return TERN_ERR_INVALID;
  }
  if (!can_answer(r)) {
    return TERN_ERR_STATE;
  }
  const http_request *req = http_parser_request(r->p);
  int closing = http_parser_closing(r->p);
  int head_only = req->method == HTTP_HEAD;
  http_response resp;
  http_response_init(&resp, status);
  resp.minor = req->minor;
  resp.flags = conn_flags(req, closing);
  resp.content_type = content_type;
  resp.content_length = len;
  resp.extra = headers;
  size_t hn = http_response_size(&resp);
  size_t bn = head_only || status == 204 ? 0 : len;
  if (out_reserve(r, hn + bn) != 0) {
    return TERN_ERR_NOMEM;
  }
  r->out_len += http_response_write(&resp, (char *)r->out + r->out_len, hn);
  if (bn) {
    memcpy(r->out + r->out_len, body, bn);
    r->out_len += bn;
  }
  answered(r, closing);
  return 0;
}

/* Writes |z| as the inside of a JSON string; returns its length. */
static size_t json_escape(char *out, const char *z) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)z; *p; ++p) {
    if (*p == '"' || *p == '\\') {
      if (out) {
        out[n] = '\\';
        out[n + 1] = (char)*p;
      }
      n += 2;
    } else if (*p < 0x20 || *p == 0x7f) {
      if (out) {
        memcpy(out + n, "\\u00", 4);
        out[n + 4] = hex[*p >> 4];
        out[n + 5] = hex[*p & 15];
      }
      n += 6;
    } else {
      if (out) {
        out[n] = (char)*p;
      }
      n++;
    }
  }
  return n;
}

int tern_http_respond_error(tern_http_request *r, int status,
                            const char *headers, const char *message) {
  if (!r || status < 200 || status > 599 || !headers_ok(headers)) {
    return TERN_ERR_INVALID;
  }
  if (!message) {
    message = http_status_text(status);
  }
  size_t hl = headers ? strlen(headers) : 0;
  const char *cc = "Cache-Control: no-store\r\n";
  size_t len = 12 + json_escape(NULL, message);
  char *buf = malloc(len + hl + strlen(cc) + 1);
  if (!buf) {
    return TERN_ERR_NOMEM;
  }
  char *all = buf + len;
  memcpy(all, cc, strlen(cc));
  memcpy(all + strlen(cc), headers ? headers : "", hl);
  all[strlen(cc) + hl] = '\0';
  memcpy(buf, "{\"error\":\"", 10);
  size_t n = 10 + json_escape(buf + 10, message);
  memcpy(buf + n, "\"}", 2);
  int rc = tern_http_respond(r, status, "application/json", all, buf, len);
  free(buf);
  return rc;
}

/* The head of a stream's answer, written into a new string. */
static char *stream_head(const http_request *req, int status, int framing,
                         const char *headers, size_t *plen) {
  http_response resp;
  http_response_init(&resp, status);
  resp.minor = req->minor;
  resp.flags = HTTP_RESP_NO_LENGTH | HTTP_RESP_CLOSE | HTTP_RESP_NO_STORE;
  if (framing == TERN_FRAMING_SSE) {
    resp.flags |= HTTP_RESP_SSE;
  } else if (status != 204) {
    resp.content_type = tern_framing_content_type(framing);
  }
  resp.extra = headers;
  size_t n = http_response_size(&resp);
  char *p = malloc(n + 1);
  if (p) {
    http_response_write(&resp, p, n);
    p[n] = '\0';
    *plen = n;
  }
  return p;
}

/* 1 when the comma-separated list |v| (|len| bytes) holds |token|,
   compared without case. */
static int list_has(const char *v, size_t len, const char *token) {
  size_t tl = strlen(token);
  size_t i = 0;
  while (i < len) {
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
      ++i;
    }
    size_t start = i;
    while (i < len && v[i] != ',') {
      ++i;
    }
    size_t end = i;
    while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) {
      --end;
    }
    if (end - start == tl && strncasecmp(v + start, token, tl) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Turns |r| into a stream of |conn| once its head is in r->out: the
   request's parser and input go, the stats count it. */
static void become_stream(tern_http_request *r, tern_conn *conn) {
  tern_conn_set_user_data(conn, r->s);
  r->conn = conn;
  r->state = C_STREAM;
  r->user_data = NULL;
  r->forward_arg = NULL;
  timed_unlink(r);
  /* The request is done with: a stream keeps no parser and no input. */
  http_parser_free(r->p);
  free(r->p);
  r->p = NULL;
  free(r->in);
  r->in = NULL;
  r->req_start = r->in_off = r->in_len = r->in_cap = 0;
  r->h->st.streams++;
  r->h->st.streams_opened++;
  tern_socket_want_write(r->s);
}

int tern_http_respond_websocket(tern_http_request *r,
                                const tern_stream_opts *opts,
                                const char *headers, tern_conn **pconn) {
  if (!r || !opts || !headers_ok(headers)) {
    return TERN_ERR_INVALID;
  }
  if (!can_answer(r)) {
    return TERN_ERR_STATE;
  }
  const http_request *req = http_parser_request(r->p);
  const char *up = NULL, *co = NULL, *key = NULL, *ver = NULL, *pro = NULL;
  size_t upl = 0, col = 0, keyl = 0, verl = 0, prol = 0;
  tern_http_request_header(r, "Upgrade", &up, &upl);
  tern_http_request_header(r, "Connection", &co, &col);
  tern_http_request_header(r, "Sec-WebSocket-Key", &key, &keyl);
  tern_http_request_header(r, "Sec-WebSocket-Version", &ver, &verl);
  tern_http_request_header(r, "Sec-WebSocket-Protocol", &pro, &prol);
  int dflt = opts->framing == TERN_FRAMING_WS_BIN ||
                     opts->framing == TERN_FRAMING_WS_JSON
                 ? opts->framing
                 : 0;
  tern_ws_answer a;
  int rc = TERN_ERR_INVALID;
  if (req->method == HTTP_GET && req->minor >= 1 && up &&
      list_has(up, upl, "websocket") && co && list_has(co, col, "upgrade")) {
    rc = tern_ws_handshake(key, keyl, ver, verl, pro, prol, dflt, &a,
                           sizeof(a));
  }
  if (rc == TERN_ERR_PROTO) {
    (void)tern_http_respond_error(r, 426, "Sec-WebSocket-Version: 13\r\n",
                                  "WebSocket version 13 is required");
    return TERN_ERR_PROTO;
  }
  if (rc != 0) {
    (void)tern_http_respond_error(
        r, 400, NULL,
        rc == TERN_ERR_NOT_FOUND
            ? "no WebSocket subprotocol of ours (tern.bin, tern.json)"
            : "not a valid WebSocket upgrade");
    return TERN_ERR_PROTO;
  }
  char head[256];
  int hn = snprintf(head, sizeof(head),
                    "HTTP/1.1 101 Switching Protocols\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n%s%s%s",
                    a.accept, a.protocol ? "Sec-WebSocket-Protocol: " : "",
                    a.protocol ? a.protocol : "", a.protocol ? "\r\n" : "");
  size_t extra = headers ? strlen(headers) : 0;
  if (hn < 0 || (size_t)hn >= sizeof(head) ||
      out_reserve(r, (size_t)hn + extra + 2) != 0) {
    return TERN_ERR_NOMEM;
  }
  tern_stream_opts o = *opts;
  o.framing = a.framing;
  if (a.framing == TERN_FRAMING_WS_BIN) {
    o.key = NULL;
    o.keylen = 0;
    o.resume_epoch = o.resume_seq = 0;
  }
  tern_conn *conn = NULL;
  tern_tstamp now = now_of(r->h);
  rc = tern_conn_new_stream(&conn, tern_driver_get_hub(r->h->d), &o, now);
  if (rc != 0) {
    return rc;
  }
  memcpy(r->out + r->out_len, head, (size_t)hn);
  r->out_len += (size_t)hn;
  if (extra) {
    memcpy(r->out + r->out_len, headers, extra);
    r->out_len += extra;
  }
  memcpy(r->out + r->out_len, "\r\n", 2);
  r->out_len += 2;
  /* Frames the client sent right behind its request go first. */
  if (r->in_off < r->in_len) {
    (void)tern_conn_read(conn, r->in + r->in_off, r->in_len - r->in_off, now);
  }
  r->ws = 1;
  become_stream(r, conn);
  if (pconn) {
    *pconn = conn;
  }
  return 0;
}

int tern_http_respond_stream(tern_http_request *r,
                             const tern_stream_opts *opts,
                             const char *headers, tern_conn **pconn) {
  if (!r || !opts || !headers_ok(headers)) {
    return TERN_ERR_INVALID;
  }
  if (!can_answer(r)) {
    return TERN_ERR_STATE;
  }
  const http_request *req = http_parser_request(r->p);
  if (req->method == HTTP_HEAD) {
    return TERN_ERR_INVALID;
  }
  int framing = opts->framing;
  if (framing != TERN_FRAMING_SSE && framing != TERN_FRAMING_NDJSON &&
      framing != TERN_FRAMING_POLL) {
    return TERN_ERR_INVALID;
  }
  size_t n200 = 0, n204 = 0;
  char *h200 = stream_head(req, 200, framing, headers, &n200);
  char *h204 = framing == TERN_FRAMING_POLL
                   ? stream_head(req, 204, framing, headers, &n204)
                   : NULL;
  int rc = h200 && (h204 || framing != TERN_FRAMING_POLL) ? 0 : TERN_ERR_NOMEM;
  if (rc == 0 && framing != TERN_FRAMING_POLL) {
    rc = out_reserve(r, n200);
  }
  char *heads = NULL;
  if (rc == 0 && framing == TERN_FRAMING_POLL) {
    heads = malloc(n200 + n204 + 2);
    rc = heads ? 0 : TERN_ERR_NOMEM;
  }
  tern_conn *conn = NULL;
  if (rc == 0) {
    rc = tern_conn_new_stream(&conn, tern_driver_get_hub(r->h->d), opts,
                              now_of(r->h));
  }
  if (rc != 0) {
    free(h200);
    free(h204);
    free(heads);
    return rc;
  }
  if (framing == TERN_FRAMING_POLL) {
    memcpy(heads, h200, n200 + 1);
    memcpy(heads + n200 + 1, h204, n204 + 1);
    r->poll_heads = heads;
    r->poll_200_len = n200;
    r->poll_204_len = n204;
  } else {
    memcpy(r->out + r->out_len, h200, n200);
    r->out_len += n200;
  }
  free(h200);
  free(h204);
  become_stream(r, conn);
  if (pconn) {
    *pconn = conn;
  }
  return 0;
}

/* ---- forwarding ------------------------------------------------------------ */

int tern_http_request_forward(tern_http_request *r, tern_http *to, void *arg) {
  if (!r || !to) {
    return TERN_ERR_INVALID;
  }
  if (!can_answer(r)) {
    return TERN_ERR_STATE;
  }
  r->forward_to = to;
  r->forward_arg = arg;
  if (r->out_off < r->out_len || posix_socket_held(r->s) > 0) {
    /* Answers to earlier (pipelined) requests are still being sent: the
       connection moves once they are out (on_pull wakes on_handoff). */
    r->state = C_FORWARD_WAIT;
    r->wait_next = r->h->fwait;
    r->h->fwait = r;
    tern_socket_want_write(r->s);
    return 0;
  }
  if (r->state == C_DISPATCH) {
    r->state = C_FORWARD; /* serve() finishes it when on_request returns */
    return 0;
  }
  return forward_now(r);
}

void *tern_http_request_forwarded(const tern_http_request *r) {
  return r ? r->forward_arg : NULL;
}

/* Takes the connection off this driver and queues it for forward_to's
   loop.  |c| is freed.  Returns 0 or TERN_ERR_NOMEM (|c| untouched). */
static int forward_now(tern_http_request *c) {
  tern_http *to = c->forward_to;
  size_t len = c->in_len - c->req_start;
  handoff *ho = malloc(sizeof(*ho) + len);
  if (!ho) {
    if (c->state == C_FORWARD || c->state == C_FORWARD_WAIT) {
      /* Inside serve(): the host cannot be told any more; refuse it. */
      c->state = C_DISPATCH;
      refuse(c, 503, "out of memory", 0);
      tern_socket_want_write(c->s);
    }
    return TERN_ERR_NOMEM;
  }
  memcpy(ho->bytes, c->in + c->req_start, len);
  ho->len = len;
  ho->arg = c->forward_arg;
  ho->next = NULL;
  c->state = C_FORWARD; /* on_close: no on_abort */
  c->h->st.forwarded++;
  uint8_t *hello;
  size_t hello_len;
  posix_stream_detach(c->s, &ho->fd, &hello, &hello_len); /* frees c */
  free(hello);
  pthread_mutex_lock(&to->lock);
  handoff **tail = &to->handoffs;
  while (*tail) {
    tail = &(*tail)->next;
  }
  *tail = ho;
  pthread_mutex_unlock(&to->lock);
  to->m->wake(to->loop, to->waker);
  return 0;
}

/* On this server's loop: adopts the connections forwarded to it and
   feeds each its bytes as if just read. */
static void wait_unlink(tern_http_request *c) {
  tern_http_request **pp = &c->h->fwait;
  while (*pp && *pp != c) {
    pp = &(*pp)->wait_next;
  }
  if (*pp) {
    *pp = c->wait_next;
  }
  c->wait_next = NULL;
}

static void on_handoff(void *arg) {
  tern_http *h = arg;
  /* Forwards whose earlier answers are all sent now leave. */
  tern_http_request **pp = &h->fwait;
  while (*pp) {
    tern_http_request *c = *pp;
    if (c->out_off == c->out_len && posix_socket_held(c->s) == 0) {
      *pp = c->wait_next;
      c->wait_next = NULL;
      (void)forward_now(c); /* on failure it answered 503 itself */
    } else {
      pp = &c->wait_next;
    }
  }
  pthread_mutex_lock(&h->lock);
  handoff *list = h->handoffs;
  h->handoffs = NULL;
  pthread_mutex_unlock(&h->lock);
  while (list) {
    handoff *ho = list;
    list = ho->next;
    tern_socket *s = NULL;
    if (posix_driver_adopt_bound(h->d, ho->fd, h->http_b, &s) == 0 && s) {
      tern_http_request *c = tern_socket_get_user_data(s);
      if (c) {
        c->forward_arg = ho->arg;
        (void)on_read(h, s, ho->bytes, ho->len, now_of(h));
      }
    }
    free(ho);
  }
  tern_driver_process(h->d);
}

/* ---- request accessors --------------------------------------------------- */

static const http_request *req_of(const tern_http_request *r) {
  return r && r->p ? http_parser_request(r->p) : NULL;
}

const char *tern_http_request_method(const tern_http_request *r) {
  const http_request *q = req_of(r);
  switch (q ? q->method : 0) {
  case HTTP_GET: return "GET";
  case HTTP_HEAD: return "HEAD";
  case HTTP_POST: return "POST";
  case HTTP_OPTIONS: return "OPTIONS";
  case HTTP_DELETE: return "DELETE";
  default: return "";
  }
}

const char *tern_http_request_path(const tern_http_request *r, size_t *len) {
  const http_request *q = req_of(r);
  if (len) {
    *len = q ? q->path.len : 0;
  }
  return q ? q->path.p : "";
}

int tern_http_request_param(const tern_http_request *r, const char *name,
                            const char **value, size_t *len) {
  const http_request *q = req_of(r);
  http_slice v = {NULL, 0};
  int rc = q && name ? http_param_get(q, name, &v) : 0;
  if (rc > 0) {
    if (value) {
      *value = v.p ? v.p : "";
    }
    if (len) {
      *len = v.len;
    }
  }
  return rc;
}

int tern_http_request_param_at(const tern_http_request *r, size_t i,
                               const char **name, size_t *nlen,
                               const char **value, size_t *vlen) {
  const http_request *q = req_of(r);
  if (!q || i >= q->nparams) {
    return 0;
  }
  const http_param *pa = &q->params[i];
  if (name) {
    *name = pa->name.p ? pa->name.p : "";
  }
  if (nlen) {
    *nlen = pa->name.len;
  }
  if (value) {
    *value = pa->value.p ? pa->value.p : "";
  }
  if (vlen) {
    *vlen = pa->value.len;
  }
  return 1;
}

int tern_http_request_header(const tern_http_request *r, const char *name,
                             const char **value, size_t *len) {
  const http_request *q = req_of(r);
  size_t pos = 0;
  http_slice v;
  if (!q || !name || !http_header_next(q, name, &pos, &v)) {
    return 0;
  }
  if (value) {
    *value = v.p ? v.p : "";
  }
  if (len) {
    *len = v.len;
  }
  return 1;
}

const uint8_t *tern_http_request_body(const tern_http_request *r,
                                      size_t *len) {
  const http_request *q = req_of(r);
  size_t n = q && q->body ? (size_t)q->content_length : 0;
  if (len) {
    *len = n;
  }
  return n ? q->body : NULL;
}

tern_socket *tern_http_request_socket(const tern_http_request *r) {
  return r ? r->s : NULL;
}

void tern_http_request_set_user_data(tern_http_request *r, void *user_data) {
  if (r) {
    r->user_data = user_data;
  }
}

void *tern_http_request_get_user_data(const tern_http_request *r) {
  return r ? r->user_data : NULL;
}

/* ---- the socket handler --------------------------------------------------- */

static int on_open(void *user, tern_socket *s, tern_tstamp now) {
  tern_http *h = user;
  tern_http_request *c = calloc(1, sizeof(*c));
  http_parser *p = malloc(sizeof(*p));
  if (!c || !p) {
    free(c);
    free(p);
    return TERN_ERR_NOMEM;
  }
  http_parser_init(p, &h->lim);
  c->h = h;
  c->s = s;
  c->p = p;
  c->mark = now;
  tern_socket_set_user_data(s, c);
  c->next = h->timed;
  if (h->timed) {
    h->timed->prev = c;
  }
  h->timed = c;
  h->st.connections++;
  h->st.accepted++;
  arm(h);
  return 0;
}

static int on_read(void *user, tern_socket *s, const uint8_t *in, size_t len,
                   tern_tstamp now) {
  tern_http_request *c = tern_socket_get_user_data(s);
  (void)user;
  if (c && c->state == C_STREAM && c->ws) {
    /* A bad frame makes the connection write its CLOSE and end: the pull
       that follows every read says so. */
    (void)tern_conn_read(c->conn, in, len, now);
    return 0;
  }
  if (!c || c->state == C_STREAM || c->state == C_CLOSING ||
      c->state == C_FORWARD) {
    return 0; /* a stream is one-way; after the last answer, nothing */
  }
  size_t held = c->in_len - c->in_off;
  /* Bytes pipelined behind a waiting request: at most one request's
     worth, so a client cannot queue without bound. */
  size_t bound = c->h->lim.max_head + c->h->lim.max_body + 4096;
  if (c->state != C_READ && held + len > bound) {
    return TERN_ERR_TOO_LARGE;
  }
  if (c->in_len + len > c->in_cap && c->req_start > 0) {
    /* Keep the current request's bytes (for a forward) and what follows. */
    memmove(c->in, c->in + c->req_start, c->in_len - c->req_start);
    c->in_off -= c->req_start;
    c->in_len -= c->req_start;
    c->req_start = 0;
  }
  if (c->in_len + len > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap : 1024;
    while (cap < c->in_len + len) {
      cap *= 2;
    }
    uint8_t *p = realloc(c->in, cap);
    if (!p) {
      return TERN_ERR_NOMEM;
    }
    c->in = p;
    c->in_cap = cap;
  }
  memcpy(c->in + c->in_len, in, len);
  c->in_len += len;
  if (c->state == C_READ) {
    (void)serve(c);
  }
  return 0;
}

/* Frees |c| and what it holds (not its connection). */
static void release(tern_http_request *c) {
  if (c->p) {
    http_parser_free(c->p);
    free(c->p);
  }
  free(c->in);
  free(c->out);
  free(c->poll_heads);
  free(c);
}

static tern_ssize pull_stream(tern_http_request *c, uint8_t *out, size_t cap,
                              tern_tstamp now) {
  size_t head = 0;
  if (c->poll_heads && !c->poll_started) {
    head = c->poll_200_len;
    if (cap <= head) {
      return 0; /* the driver comes back with room once its buffer drains */
    }
  }
  tern_ssize n = tern_conn_write(c->conn, out + head, cap - head, now);
  if (n > 0) {
    if (head) {
      memcpy(out, c->poll_heads, head);
      c->poll_started = 1;
    }
    return n + (tern_ssize)head;
  }
  if (n == TERN_ERR_CLOSED && c->poll_heads && !c->poll_started &&
      cap >= c->poll_204_len) {
    /* The hold time passed with nothing to send. */
    memcpy(out, c->poll_heads + c->poll_200_len + 1, c->poll_204_len);
    c->poll_started = 1;
    c->state = C_CLOSING;
    return (tern_ssize)c->poll_204_len;
  }
  return n == TERN_ERR_CLOSED ? TERN_ERR_CLOSED : 0;
}

static tern_ssize on_pull(void *user, tern_socket *s, uint8_t *out, size_t cap,
                          tern_tstamp now) {
  tern_http_request *c = tern_socket_get_user_data(s);
  (void)user;
  if (!c) {
    return TERN_ERR_CLOSED;
  }
  size_t n = c->out_len - c->out_off;
  if (n > cap) {
    n = cap;
  }
  if (n) {
    memcpy(out, c->out + c->out_off, n);
    c->out_off += n;
  }
  if (c->out_off < c->out_len) {
    return (tern_ssize)n;
  }
  if (c->out) {
    free(c->out); /* nothing held between answers */
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
  }
  if (c->state == C_FORWARD_WAIT) {
    c->h->m->wake(c->h->loop, c->h->waker); /* its turn may have come */
  }
  if (c->state == C_STREAM && !c->poll_heads) {
    /* Everything before the stream's bytes is out: the driver serves the
       connection from here as it does a binary socket's, and the request
       is no more (an idle subscriber keeps no struct of ours). */
    tern_conn *conn = c->conn;
    c->conn = NULL;
    posix_socket_set_conn(s, conn, c->h->stream_b);
    release(c);
    if (n == cap) {
      return (tern_ssize)n;
    }
    tern_ssize w = tern_conn_write(conn, out + n, cap - n, now);
    if (w > 0) {
      return (tern_ssize)n + w;
    }
    return n > 0 || w == TERN_ERR_NOMEM ? (tern_ssize)n : w;
  }
  if (c->state == C_STREAM && n < cap) {
    tern_ssize w = pull_stream(c, out + n, cap - n, now);
    if (w > 0) {
      return (tern_ssize)n + w;
    }
    if (w < 0) {
      c->state = C_CLOSING;
    }
  }
  if (n == 0 && c->state == C_CLOSING) {
    return TERN_ERR_CLOSED;
  }
  return (tern_ssize)n;
}

static void on_close(void *user, tern_socket *s) {
  tern_http *h = user;
  tern_http_request *c = tern_socket_get_user_data(s);
  if (!c) {
    return;
  }
  tern_socket_set_user_data(s, NULL);
  if (c->state == C_FORWARD_WAIT) {
    wait_unlink(c);
  }
  if ((c->state == C_PENDING || c->state == C_DISPATCH ||
       c->state == C_FORWARD_WAIT) &&
      h->o.on_abort) {
    h->o.on_abort(h->o.user_data, c);
  }
  if (c->conn) {
    tern_conn_del(c->conn);
    h->st.streams--;
  }
  timed_unlink(c);
  release(c);
  h->st.connections--;
}

/* A stream the driver serves (posix_socket_set_conn) only closes here:
   the driver deleted its connection. */
static int on_stream_read(void *user, tern_socket *s, const uint8_t *in,
                          size_t len, tern_tstamp now) {
  (void)user, (void)s, (void)in, (void)len, (void)now;
  return 0;
}

static tern_ssize on_stream_pull(void *user, tern_socket *s, uint8_t *out,
                                 size_t cap, tern_tstamp now) {
  (void)user, (void)s, (void)out, (void)cap, (void)now;
  return TERN_ERR_CLOSED;
}

static void on_stream_close(void *user, tern_socket *s) {
  tern_http *h = user;
  (void)s;
  h->st.streams--;
  h->st.connections--;
}

static const tern_socket_handler handler_of_http = {
    TERN_SOCKET_HANDLER_VERSION, on_open, on_read, on_pull, on_close,
};

static const tern_socket_handler handler_of_stream = {
    TERN_SOCKET_HANDLER_VERSION, NULL, on_stream_read, on_stream_pull,
    on_stream_close,
};

/* ---- timeouts --------------------------------------------------------------- */

static void on_timer(void *arg) {
  tern_http *h = arg;
  tern_tstamp now = now_of(h);
  h->armed = 0;
  tern_http_request *c = h->timed;
  while (c) {
    tern_http_request *next = c->next;
    if (c->state == C_READ) {
      int idle = http_parser_idle(c->p) && c->in_off == c->in_len;
      tern_duration limit = idle ? h->o.idle_timeout : h->o.request_timeout;
      if (limit && now - c->mark >= limit) {
        h->st.timeouts++;
        if (idle) {
          c->state = C_CLOSING;
          timed_unlink(c);
          tern_socket_end(c->s);
        } else {
          refuse(c, 408, "request timeout", 0);
          h->st.bad_requests--; /* counted as a timeout */
          tern_socket_want_write(c->s);
        }
      }
    }
    c = next;
  }
  arm(h);
}

/* ---- life -------------------------------------------------------------------- */

int tern_http_new(tern_http **ph, tern_driver *d, const tern_http_options *o) {
  if (!ph || !d || !o || o->version != TERN_HTTP_OPTIONS_V1 ||
      !o->on_request || o->max_target < 16 || o->max_target > 65536 ||
      o->max_head < 256 || o->max_head > ((size_t)1 << 20) ||
      o->max_headers < 1 || o->max_headers > 1024 ||
      o->max_body > ((size_t)64 << 20)) {
    return TERN_ERR_INVALID;
  }
  tern_http *h = calloc(1, sizeof(*h));
  if (!h) {
    return TERN_ERR_NOMEM;
  }
  h->d = d;
  h->o = *o;
  h->m = posix_driver_methods(d, &h->loop);
  h->lim.max_target = o->max_target;
  h->lim.max_head = o->max_head;
  h->lim.max_headers = o->max_headers;
  h->lim.max_body = o->max_body;
  h->http_b = posix_binding_get(d, &handler_of_http, h);
  h->stream_b = posix_binding_get(d, &handler_of_stream, h);
  int rc = h->http_b && h->stream_b ? 0 : TERN_ERR_NOMEM;
  if (rc == 0) {
    rc = h->m->timer_add(h->loop, &h->timer, on_timer, h);
  }
  if (rc != 0) {
    posix_binding_put(h->http_b);
    posix_binding_put(h->stream_b);
    free(h);
    return rc;
  }
  rc = h->m->waker_add(h->loop, &h->waker, on_handoff, h);
  if (rc != 0) {
    h->m->timer_del(h->loop, h->timer);
    posix_binding_put(h->http_b);
    posix_binding_put(h->stream_b);
    free(h);
    return rc;
  }
  pthread_mutex_init(&h->lock, NULL);
  *ph = h;
  return 0;
}

int tern_http_listen(tern_http *h, const char *host, uint16_t port,
                     uint16_t *pport) {
  if (!h) {
    return TERN_ERR_INVALID;
  }
  int fd = posix_listen_socket(host, port, h->o.reuseport != 0, pport);
  if (fd < 0) {
    return fd;
  }
  return posix_driver_listen_fd(h->d, fd, h->http_b);
}

int tern_http_adopt(tern_http *h, int fd) {
  if (!h) {
    return TERN_ERR_INVALID;
  }
  return posix_driver_adopt_bound(h->d, fd, h->http_b, NULL);
}

void tern_http_get_stats(const tern_http *h, tern_http_stats *st,
                         size_t size) {
  if (!h || !st) {
    return;
  }
  if (size > sizeof(h->st)) {
    memset((char *)st + sizeof(h->st), 0, size - sizeof(h->st));
    size = sizeof(h->st);
  }
  memcpy(st, &h->st, size);
}

void tern_http_del(tern_http *h) {
  if (!h) {
    return;
  }
  posix_driver_unlisten(h->d, h);
  posix_driver_close_sockets(h->d, h);
  tern_driver_process(h->d); /* frees the closed sockets */
  h->m->timer_del(h->loop, h->timer);
  h->m->waker_del(h->loop, h->waker);
  /* Sockets still to be freed (a del from a callback) keep their own. */
  posix_binding_put(h->http_b);
  posix_binding_put(h->stream_b);
  while (h->handoffs) {
    handoff *ho = h->handoffs;
    h->handoffs = ho->next;
    close(ho->fd);
    free(ho);
  }
  pthread_mutex_destroy(&h->lock);
  free(h);
}
