/*
 * tern_http_client: HTTP/1.1 requests on a driver's loop.  Each request
 * owns one non-blocking TCP connection ("Connection: close"), its bytes
 * formatted whole at send time, and a response parser (lib/http's
 * response.c) with its head and body buffers, all in one allocation.  One
 * loop timer serves every request: it is armed at the earliest deadline
 * (the connect timeout while connecting, the whole exchange's after), and
 * at once for a request whose failure is known at send time, so that
 * callbacks never run inside tern_http_client_send.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/response.h"
#include "posix/posix.h"

/* Reads per readiness report, so one fast peer cannot hold the loop. */
#define READS_PER_TURN 4
#define READ_CHUNK 16384
/* The longest request: the body and the head together. */
#define MAX_REQUEST ((size_t)64 << 20)
#define HOUR (3600 * TERN_SECONDS)

typedef struct hreq hreq;
struct hreq {
  tern_http_client *c;
  hreq *prev, *next;
  int fd;
  void *io;
  int connecting;          /* connect() in progress                     */
  int reading;             /* the request is written                    */
  int failed;              /* a tern_error to report at the next timer  */
  tern_tstamp connect_deadline, deadline;
  http_resp parser;
  tern_http_client_cb cb;
  void *user_data;
  uint8_t *out;            /* the request's bytes                      */
  size_t outlen, outoff;
  /* Then: max_head bytes of head, keep_body bytes of body, the request. */
};

struct tern_http_client {
  tern_driver *d;
  const tern_loop_methods *m;
  void *loop;
  void *timer;
  tern_tstamp armed;
  tern_http_client_options o;
  hreq *reqs;
  uint32_t n;
};

void tern_http_client_options_default_versioned(uint32_t version,
                                                tern_http_client_options *o) {
  if (!o) {
    return;
  }
  if (version != TERN_HTTP_CLIENT_OPTIONS_V1) {
    o->version = 0;
    return;
  }
  memset(o, 0, sizeof(*o));
  o->version = version;
  o->connect_timeout = 5 * TERN_SECONDS;
  o->timeout = 10 * TERN_SECONDS;
  o->max_head = 8192;
  o->max_headers = 64;
  o->max_body = (uint64_t)1 << 20;
  o->keep_body = 4096;
  o->max_requests = 256;
}

static int options_ok(const tern_http_client_options *o) {
  return o->version == TERN_HTTP_CLIENT_OPTIONS_V1 &&
         o->connect_timeout >= TERN_MILLISECONDS &&
         o->connect_timeout <= HOUR && o->timeout >= TERN_MILLISECONDS &&
         o->timeout <= HOUR && o->timeout >= o->connect_timeout &&
         o->max_head >= 256 && o->max_head <= ((size_t)1 << 20) &&
         o->max_headers >= 1 && o->max_headers <= 1024 &&
         o->max_body <= ((uint64_t)64 << 20) && o->keep_body <= o->max_body &&
         o->keep_body <= ((size_t)1 << 20) && o->max_requests >= 1 &&
         o->max_requests <= 65536;
}

/* ---- the timer ------------------------------------------------------------- */

static tern_tstamp due_of(const hreq *r) {
  if (r->failed) {
    return 0;
  }
  return r->connecting && r->connect_deadline < r->deadline
             ? r->connect_deadline
             : r->deadline;
}

static void rearm(tern_http_client *c) {
  tern_tstamp t = TERN_TSTAMP_NONE;
  for (const hreq *r = c->reqs; r; r = r->next) {
    tern_tstamp d = due_of(r);
    if (d < t) {
      t = d;
    }
  }
  if (t != c->armed) {
    c->m->timer_set(c->loop, c->timer, t);
    c->armed = t;
  }
}

/* ---- ending a request -------------------------------------------------------- */

static void unlink_req(tern_http_client *c, hreq *r) {
  if (r->prev) {
    r->prev->next = r->next;
  } else {
    c->reqs = r->next;
  }
  if (r->next) {
    r->next->prev = r->prev;
  }
  c->n--;
  if (r->io) {
    c->m->io_del(c->loop, r->io);
    r->io = NULL;
  }
  if (r->fd >= 0) {
    close(r->fd);
    r->fd = -1;
  }
}

/* Hands the answer (|error| 0) or the error over, and frees |r|. */
static void finish(hreq *r, int error) {
  tern_http_client *c = r->c;
  unlink_req(c, r);
  tern_http_client_answer a;
  memset(&a, 0, sizeof(a));
  a.error = error;
  if (!error) {
    a.status = r->parser.status;
    a.retry_after = r->parser.retry_after;
    a.retry_afterlen = r->parser.retry_afterlen;
    a.body = r->parser.kept ? r->parser.keep : NULL;
    a.bodylen = r->parser.kept;
    a.body_total = r->parser.bodylen;
  }
  r->cb(r->user_data, &a);
  posix_free(c->d, r);
  rearm(c);
}

static void on_timer(void *arg) {
  tern_http_client *c = arg;
  c->armed = TERN_TSTAMP_NONE;
  tern_tstamp now = c->m->now(c->loop);
  /* A callback may send, which adds at the head: start over each time. */
  for (;;) {
    hreq *r = c->reqs;
    while (r && due_of(r) > now) {
      r = r->next;
    }
    if (!r) {
      break;
    }
    finish(r, r->failed ? r->failed : TERN_ERR_LIMIT);
  }
  rearm(c);
}

/* ---- the socket ----------------------------------------------------------------- */

static void on_io(void *arg, unsigned events);

static void read_answer(hreq *r) {
  uint8_t buf[READ_CHUNK];
  for (int i = 0; i < READS_PER_TURN; i++) {
    ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      }
      finish(r, TERN_ERR_CLOSED);
      return;
    }
    if (n == 0) {
      /* A close before the answer ended is a transport failure; a body
         that runs to the close ends here. */
      finish(r, http_resp_eof(&r->parser) == HTTP_RESP_DONE ? 0
                                                           : TERN_ERR_CLOSED);
      return;
    }
    size_t used;
    int res = http_resp_feed(&r->parser, buf, (size_t)n, &used);
    if (res == HTTP_RESP_DONE) {
      finish(r, 0);
      return;
    }
    if (res == HTTP_RESP_ERROR) {
      finish(r, r->parser.error);
      return;
    }
  }
}

static void write_request(hreq *r) {
  tern_http_client *c = r->c;
  while (r->outoff < r->outlen) {
    ssize_t n = send(r->fd, r->out + r->outoff, r->outlen - r->outoff,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      }
      /* The peer may have answered before it stopped reading (a 413,
         say): read what it said. */
      break;
    }
    r->outoff += (size_t)n;
  }
  r->reading = 1;
  if (c->m->io_set(c->loop, r->io, TERN_IO_READ) != 0) {
    finish(r, TERN_ERR_STORE);
  }
}

static void on_io(void *arg, unsigned events) {
  hreq *r = arg;
  (void)events;
  if (r->connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err == EINPROGRESS || err == EALREADY) {
      return;
    }
    if (err != 0) {
      finish(r, TERN_ERR_CLOSED);
      return;
    }
    r->connecting = 0;
    rearm(r->c);
  }
  if (!r->reading) {
    write_request(r);
    return;
  }
  read_answer(r);
}

/* ---- the URL and the request's bytes --------------------------------------------- */

typedef struct url_parts {
  const char *host;        /* as written for Host ("[::1]", "localhost")  */
  size_t hostlen;
  const char *path;        /* "/..." with its query; NULL: "/"            */
  size_t pathlen;
  int has_query;
  uint16_t port;
  int port_given;
} url_parts;

static int visible(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '#') {
      return 0;
    }
  }
  return 1;
}

static int lower_eq(const char *s, const char *lit, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z') {
      ch = (char)(ch + 32);
    }
    if (ch != lit[i]) {
      return 0;
    }
  }
  return 1;
}

/* Parses |url| and fills |r->addr|; 0 or TERN_ERR_INVALID. */
static int parse_url(const char *url, size_t len, url_parts *u,
                     struct sockaddr_storage *ss, socklen_t *sslen) {
  memset(u, 0, sizeof(*u));
  memset(ss, 0, sizeof(*ss));
  if (len < 8 || !lower_eq(url, "http://", 7) || !visible(url, len)) {
    return TERN_ERR_INVALID;
  }
  const char *a = url + 7, *end = url + len;
  const char *slash = a;
  while (slash < end && *slash != '/' && *slash != '?') {
    slash++;
  }
  const char *host = a, *hend;
  const char *colon = NULL;
  if (a < slash && *a == '[') {
    const char *rb = memchr(a, ']', (size_t)(slash - a));
    if (!rb) {
      return TERN_ERR_INVALID;
    }
    hend = rb + 1;
    if (hend < slash) {
      if (*hend != ':') {
        return TERN_ERR_INVALID;
      }
      colon = hend;
    }
  } else {
    colon = memchr(a, ':', (size_t)(slash - a));
    hend = colon ? colon : slash;
  }
  if (hend == host || memchr(a, '@', (size_t)(slash - a))) {
    return TERN_ERR_INVALID;
  }
  u->port = 80;
  if (colon) {
    unsigned long port = 0;
    const char *p = colon + 1;
    if (p == slash || slash - p > 5) {
      return TERN_ERR_INVALID;
    }
    for (; p < slash; p++) {
      if (*p < '0' || *p > '9') {
        return TERN_ERR_INVALID;
      }
      port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535) {
      return TERN_ERR_INVALID;
    }
    u->port = (uint16_t)port;
    u->port_given = 1;
  }
  u->host = host;
  u->hostlen = (size_t)(hend - host);
  char name[64];
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (host[0] == '[') {
    size_t n = u->hostlen - 2;
    if (n == 0 || n >= sizeof(name)) {
      return TERN_ERR_INVALID;
    }
    memcpy(name, host + 1, n);
    name[n] = '\0';
    if (inet_pton(AF_INET6, name, &sin6->sin6_addr) != 1) {
      return TERN_ERR_INVALID;
    }
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(u->port);
    *sslen = sizeof(*sin6);
  } else {
    if (u->hostlen >= sizeof(name)) {
      return TERN_ERR_INVALID;
    }
    memcpy(name, host, u->hostlen);
    name[u->hostlen] = '\0';
    if (u->hostlen == 9 && lower_eq(name, "localhost", 9)) {
      strcpy(name, "127.0.0.1");
    }
    if (inet_pton(AF_INET, name, &sin->sin_addr) != 1) {
      return TERN_ERR_INVALID;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons(u->port);
    *sslen = sizeof(*sin);
  }
  if (slash < end) {
    u->path = slash;
    u->pathlen = (size_t)(end - slash);
    u->has_query = memchr(slash, '?', u->pathlen) != NULL;
  }
  return 0;
}

static int is_tchar(unsigned c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL);
}

static int token_ok(const char *s) {
  if (!s || !*s) {
    return 0;
  }
  for (; *s; s++) {
    if (!is_tchar((unsigned char)*s)) {
      return 0;
    }
  }
  return 1;
}

static int value_ok(const char *s) {
  if (!s) {
    return 0;
  }
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      return 0;
    }
  }
  return 1;
}

/* Appends |n| bytes at |p| to |o| (NULL: counts only). */
static size_t put(uint8_t *o, size_t at, const void *p, size_t n) {
  if (o && n) {
    memcpy(o + at, p, n);
  }
  return at + n;
}

static size_t put_s(uint8_t *o, size_t at, const char *s) {
  return put(o, at, s, strlen(s));
}

/* Writes the request into |o| (NULL: its size). */
static size_t format(uint8_t *o, const tern_http_client_request *q,
                     const url_parts *u) {
  size_t at = 0;
  char num[24];
  at = put_s(o, at, q->method);
  at = put_s(o, at, " ");
  if (u->path) {
    at = put(o, at, u->path, u->pathlen);
  } else {
    at = put_s(o, at, "/");
  }
  if (q->query && q->querylen) {
    at = put_s(o, at, u->has_query ? "&" : "?");
    at = put(o, at, q->query, q->querylen);
  }
  at = put_s(o, at, " HTTP/1.1\r\nHost: ");
  at = put(o, at, u->host, u->hostlen);
  if (u->port_given) {
    int n = snprintf(num, sizeof(num), ":%u", (unsigned)u->port);
    at = put(o, at, num, (size_t)n);
  }
  at = put_s(o, at, "\r\n");
  for (size_t i = 0; i < q->nheaders; i++) {
    at = put_s(o, at, q->headers[i].name);
    at = put_s(o, at, ": ");
    at = put_s(o, at, q->headers[i].value);
    at = put_s(o, at, "\r\n");
  }
  if (q->bodylen || strcmp(q->method, "POST") == 0) {
    int n = snprintf(num, sizeof(num), "Content-Length: %llu\r\n",
                     (unsigned long long)q->bodylen);
    at = put(o, at, num, (size_t)n);
  }
  at = put_s(o, at, "Connection: close\r\n\r\n");
  return put(o, at, q->body, q->bodylen);
}

static int request_ok(const tern_http_client_request *q) {
  if (!token_ok(q->method) || !q->url || (q->bodylen && !q->body) ||
      (q->querylen && !q->query) || (q->nheaders && !q->headers)) {
    return 0;
  }
  if (q->querylen && !visible(q->query, q->querylen)) {
    return 0;
  }
  for (size_t i = 0; i < q->nheaders; i++) {
    const char *name = q->headers[i].name;
    if (!token_ok(name) || !value_ok(q->headers[i].value)) {
      return 0;
    }
    /* The client writes these itself. */
    if (strcasecmp(name, "Host") == 0 ||
        strcasecmp(name, "Content-Length") == 0 ||
        strcasecmp(name, "Connection") == 0 ||
        strcasecmp(name, "Transfer-Encoding") == 0) {
      return 0;
    }
  }
  return 1;
}

/* ---- the API ------------------------------------------------------------------------ */

int tern_http_client_new(tern_http_client **pc, tern_driver *d,
                         const tern_http_client_options *o) {
  tern_http_client_options def;
  if (!pc || !d) {
    return TERN_ERR_INVALID;
  }
  if (!o) {
    tern_http_client_options_default(&def);
    o = &def;
  }
  if (!options_ok(o)) {
    return TERN_ERR_INVALID;
  }
  tern_http_client *c = posix_calloc(d, 1, sizeof(*c));
  if (!c) {
    return TERN_ERR_NOMEM;
  }
  c->d = d;
  c->o = *o;
  c->m = posix_driver_methods(d, &c->loop);
  c->armed = TERN_TSTAMP_NONE;
  int rc = c->m->timer_add(c->loop, &c->timer, on_timer, c);
  if (rc != 0) {
    posix_free(d, c);
    return rc;
  }
  *pc = c;
  return 0;
}

int tern_http_client_send(tern_http_client *c,
                          const tern_http_client_request *q,
                          tern_http_client_cb cb, void *user_data) {
  if (!c || !q || !cb || !request_ok(q)) {
    return TERN_ERR_INVALID;
  }
  url_parts u;
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  if (parse_url(q->url, q->urllen, &u, &ss, &sslen) != 0) {
    return TERN_ERR_INVALID;
  }
  if (q->bodylen > MAX_REQUEST) {
    return TERN_ERR_TOO_LARGE;
  }
  size_t outlen = format(NULL, q, &u);
  if (outlen > MAX_REQUEST) {
    return TERN_ERR_TOO_LARGE;
  }
  if (c->n >= c->o.max_requests) {
    return TERN_ERR_FULL;
  }
  size_t size = sizeof(hreq) + c->o.max_head + c->o.keep_body + outlen;
  hreq *r = posix_malloc(c->d, size);
  if (!r) {
    return TERN_ERR_NOMEM;
  }
  memset(r, 0, sizeof(*r));
  r->c = c;
  r->fd = -1;
  char *head = (char *)(r + 1);
  uint8_t *keep = (uint8_t *)head + c->o.max_head;
  r->out = keep + c->o.keep_body;
  r->outlen = format(r->out, q, &u);
  http_resp_limits lim = {c->o.max_headers, c->o.max_body};
  http_resp_init(&r->parser, head, c->o.max_head,
                 c->o.keep_body ? keep : NULL, c->o.keep_body, &lim);
  r->parser.head_request = strcmp(q->method, "HEAD") == 0;
  r->cb = cb;
  r->user_data = user_data;
  tern_tstamp now = c->m->now(c->loop);
  r->connect_deadline = now + c->o.connect_timeout;
  r->deadline = now + c->o.timeout;
  r->connecting = 1;

  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0) {
    posix_free(c->d, r);
    return TERN_ERR_NOMEM; /* out of descriptors or buffers */
  }
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int rc = c->m->io_add(c->loop, &r->io, fd, TERN_IO_WRITE, on_io, r);
  if (rc != 0) {
    close(fd);
    posix_free(c->d, r);
    return rc;
  }
  r->fd = fd;
  if (connect(fd, (struct sockaddr *)&ss, sslen) != 0 &&
      errno != EINPROGRESS) {
    r->failed = TERN_ERR_CLOSED; /* reported by the timer, now */
    c->m->io_del(c->loop, r->io);
    r->io = NULL;
    close(fd);
    r->fd = -1;
  }
  r->next = c->reqs;
  if (c->reqs) {
    c->reqs->prev = r;
  }
  c->reqs = r;
  c->n++;
  rearm(c);
  return 0;
}

uint32_t tern_http_client_pending(const tern_http_client *c) {
  return c ? c->n : 0;
}

void tern_http_client_del(tern_http_client *c) {
  if (!c) {
    return;
  }
  while (c->reqs) {
    hreq *r = c->reqs;
    unlink_req(c, r);
    posix_free(c->d, r);
  }
  c->m->timer_del(c->loop, c->timer);
  posix_free(c->d, c);
}
