/*
 * tern_http_client (lib/posix/httpc.c) over loopback, against a scripted
 * server on a thread of its own: what a request looks like on the wire,
 * answers with a length, chunked, to the close and after interim 1xx
 * answers, Retry-After and the kept body, and each transport error
 * (refused, reset, cut short, malformed, timeout), URLs and headers it
 * refuses, max_requests, and deleting the client with requests out; and
 * tern_hook_sender making a hub's hooks with it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern_posix.h>

#include "tap.h"

/* ---- the scripted server --------------------------------------------------- */

#define MAX_SEEN 8192

typedef struct server {
  int fd;
  uint16_t port;
  pthread_mutex_t lock;
  const char *reply;     /* bytes to send; NULL: reset; "" sleep+close  */
  size_t replylen;
  char seen[MAX_SEEN];   /* the last request's bytes                   */
  size_t seenlen;
  int stop;
} server;

static void *serve(void *arg) {
  server *sv = arg;
  for (;;) {
    int c = accept(sv->fd, NULL, NULL);
    if (c < 0) {
      return NULL;
    }
    pthread_mutex_lock(&sv->lock);
    int stop = sv->stop;
    const char *reply = sv->reply;
    size_t replylen = sv->replylen;
    pthread_mutex_unlock(&sv->lock);
    if (stop) {
      close(c);
      return NULL;
    }
    /* Read the head and a Content-Length body. */
    char buf[MAX_SEEN];
    size_t len = 0;
    for (;;) {
      ssize_t n = recv(c, buf + len, sizeof(buf) - 1 - len, 0);
      if (n <= 0) {
        break;
      }
      len += (size_t)n;
      buf[len] = '\0';
      char *end = strstr(buf, "\r\n\r\n");
      if (end) {
        size_t need = (size_t)(end + 4 - buf);
        char *cl = strstr(buf, "Content-Length: ");
        if (cl && cl < end) {
          need += (size_t)strtoul(cl + 16, NULL, 10);
        }
        if (len >= need) {
          break;
        }
      }
    }
    pthread_mutex_lock(&sv->lock);
    memcpy(sv->seen, buf, len);
    sv->seenlen = len;
    pthread_mutex_unlock(&sv->lock);
    if (!reply) {
      struct linger lg = {1, 0};
      setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else if (replylen == 0) {
      usleep(400 * 1000);
    } else {
      (void)send(c, reply, replylen, MSG_NOSIGNAL);
    }
    close(c);
  }
}

static void script(server *sv, const char *reply) {
  pthread_mutex_lock(&sv->lock);
  sv->reply = reply;
  sv->replylen = reply ? strlen(reply) : 0;
  sv->seenlen = 0;
  pthread_mutex_unlock(&sv->lock);
}

static int listen_any(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof(a);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(fd, 16) != 0 || getsockname(fd, (struct sockaddr *)&a, &al)) {
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* ---- the client side ----------------------------------------------------------- */

typedef struct result {
  int calls;
  int error, status;
  char retry_after[64];
  char body[256];
  size_t bodylen;
  uint64_t body_total;
} result;

static void on_answer(void *user, const tern_http_client_answer *a) {
  result *r = user;
  r->calls++;
  r->error = a->error;
  r->status = a->status;
  r->retry_after[0] = '\0';
  if (a->retry_after) {
    snprintf(r->retry_after, sizeof(r->retry_after), "%.*s",
             (int)a->retry_afterlen, a->retry_after);
  }
  r->bodylen = a->bodylen < sizeof(r->body) ? a->bodylen : sizeof(r->body);
  if (a->bodylen) {
    memcpy(r->body, a->body, r->bodylen);
  }
  r->body_total = a->body_total;
}

typedef struct world {
  tern_epoll *ep;
  tern_hub *hub;
  tern_driver *d;
  tern_http_client *c;
  server sv;
  char url[128];
} world;

/* Turns the loop until |r| has its answer (at most 5 s). */
static void wait_answer(world *w, result *r) {
  tern_tstamp end = tern_posix_now() + 5 * TERN_SECONDS;
  while (r->calls == 0 && tern_posix_now() < end) {
    tern_epoll_run_once(w->ep, 50 * TERN_MILLISECONDS);
  }
}

static int post(world *w, const char *url, const char *body, result *r) {
  tern_hook_header h[2] = {{"Content-Type", "application/json"},
                           {"X-Tern-Attempt", "1"}};
  tern_http_client_request q;
  memset(&q, 0, sizeof(q));
  q.method = "POST";
  q.url = url;
  q.urllen = strlen(url);
  q.headers = h;
  q.nheaders = 2;
  q.body = body;
  q.bodylen = body ? strlen(body) : 0;
  memset(r, 0, sizeof(*r));
  return tern_http_client_send(w->c, &q, on_answer, r);
}

static void exchange(world *w, const char *reply, result *r) {
  script(&w->sv, reply);
  CHECK(post(w, w->url, "{}", r) == 0, "send");
  CHECK(r->calls == 0, "no callback from inside the send");
  wait_answer(w, r);
}

static void test_request_bytes(world *w) {
  result r;
  script(&w->sv, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  char url[160];
  snprintf(url, sizeof(url), "http://localhost:%u/hook/a?x=1",
           (unsigned)w->sv.port);
  tern_http_client_request q;
  memset(&q, 0, sizeof(q));
  tern_hook_header h[1] = {{"X-Tern-Signature", "sha256=00"}};
  q.method = "GET";
  q.url = url;
  q.urllen = strlen(url);
  q.query = "hub.mode=subscribe";
  q.querylen = 18;
  q.headers = h;
  q.nheaders = 1;
  memset(&r, 0, sizeof(r));
  CHECK(tern_http_client_send(w->c, &q, on_answer, &r) == 0, "GET sent");
  CHECK(tern_http_client_pending(w->c) == 1, "one pending");
  wait_answer(w, &r);
  CHECK(r.calls == 1 && r.error == 0 && r.status == 200, "answered 200");
  CHECK(r.bodylen == 2 && memcmp(r.body, "ok", 2) == 0 && r.body_total == 2,
        "the body is handed over");
  CHECK(tern_http_client_pending(w->c) == 0, "none pending");
  char want[256];
  snprintf(want, sizeof(want),
           "GET /hook/a?x=1&hub.mode=subscribe HTTP/1.1\r\n"
           "Host: localhost:%u\r\nX-Tern-Signature: sha256=00\r\n"
           "Connection: close\r\n\r\n",
           (unsigned)w->sv.port);
  pthread_mutex_lock(&w->sv.lock);
  CHECK(w->sv.seenlen == strlen(want) &&
            memcmp(w->sv.seen, want, w->sv.seenlen) == 0,
        "GET on the wire: the query appended with &, Host, the headers, "
        "Connection: close, no Content-Length");
  pthread_mutex_unlock(&w->sv.lock);

  exchange(w, "HTTP/1.1 204 No Content\r\n\r\n", &r);
  CHECK(r.status == 204, "POST answered 204");
  pthread_mutex_lock(&w->sv.lock);
  w->sv.seen[w->sv.seenlen] = '\0';
  CHECK(strncmp(w->sv.seen, "POST / HTTP/1.1\r\n", 17) == 0 &&
            strstr(w->sv.seen, "Content-Type: application/json\r\n") &&
            strstr(w->sv.seen, "Content-Length: 2\r\n") &&
            strstr(w->sv.seen, "\r\n\r\n{}"),
        "POST on the wire: path /, its headers, Content-Length and the body");
  pthread_mutex_unlock(&w->sv.lock);
}

static void test_answers(world *w) {
  result r;
  exchange(w,
           "HTTP/1.1 429 Too Many Requests\r\nRetry-After:  7 \r\n"
           "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n"
           "0\r\nT: 1\r\n\r\n",
           &r);
  CHECK(r.error == 0 && r.status == 429 && strcmp(r.retry_after, "7") == 0,
        "429 with its Retry-After, trimmed");
  CHECK(r.bodylen == 5 && memcmp(r.body, "abcde", 5) == 0,
        "a chunked body, de-chunked, extensions and trailers dropped");
  exchange(w, "HTTP/1.0 500 Oops\r\n\r\nto the close", &r);
  CHECK(r.error == 0 && r.status == 500 && r.bodylen == 12,
        "a body that runs to the close");
  exchange(w,
           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
           "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
           &r);
  CHECK(r.error == 0 && r.status == 202, "interim 1xx answers are skipped");
}

static void test_errors(world *w) {
  result r;
  exchange(w, NULL, &r);
  CHECK(r.calls == 1 && r.error == TERN_ERR_CLOSED && r.status == 0,
        "a reset: TERN_ERR_CLOSED, status 0");
  exchange(w, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", &r);
  CHECK(r.error == TERN_ERR_CLOSED, "an answer cut short: TERN_ERR_CLOSED");
  exchange(w, "HTTP/1.1 200 OK\nContent-Length: 0\n\n", &r);
  CHECK(r.error == TERN_ERR_PROTO, "bare LF line ends: TERN_ERR_PROTO");
  exchange(w,
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
           "Content-Length: 1\r\n\r\n0\r\n\r\n",
           &r);
  CHECK(r.error == TERN_ERR_PROTO, "chunked with a length: TERN_ERR_PROTO");
  tern_tstamp t0 = tern_posix_now();
  exchange(w, "", &r);
  tern_tstamp dt = tern_posix_now() - t0;
  CHECK(r.error == TERN_ERR_LIMIT, "no answer within the timeout: "
                                   "TERN_ERR_LIMIT");
  CHECK(dt >= 190 * TERN_MILLISECONDS && dt < 1500 * TERN_MILLISECONDS,
        "after the 200 ms timeout (%llu ms)",
        (unsigned long long)(dt / TERN_MILLISECONDS));

  uint16_t port;
  int fd = listen_any(&port);
  close(fd);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)port);
  CHECK(post(w, url, NULL, &r) == 0, "a send to a closed port");
  wait_answer(w, &r);
  CHECK(r.calls == 1 && r.error == TERN_ERR_CLOSED,
        "connection refused: TERN_ERR_CLOSED through the callback");
  /* IPv6: the URL is taken; on a machine without ::1 the socket fails. */
  snprintf(url, sizeof(url), "http://[::1]:%u/x", (unsigned)port);
  int rc = post(w, url, NULL, &r);
  if (rc == 0) {
    wait_answer(w, &r);
  }
  CHECK(rc == TERN_ERR_NOMEM || (rc == 0 && r.calls == 1 &&
                                 r.error == TERN_ERR_CLOSED),
        "[::1] to a closed port: refused through the callback");
}

static void test_refused(world *w) {
  static const char *const bad[] = {
      "https://127.0.0.1/", "http://example.com/", "http://[::1/",
      "http://127.0.0.1:0/", "http://127.0.0.1:70000/", "http://u@127.0.0.1/",
      "http://127.0.0.1/a b", "http://127.0.0.1/#f", "http://", "ftp://x",
      "http://256.1.1.1/"};
  result r;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK(post(w, bad[i], NULL, &r) == TERN_ERR_INVALID, "refused: %s",
          bad[i]);
  }
  CHECK(r.calls == 0 && tern_http_client_pending(w->c) == 0,
        "no callback, nothing pending after refusals");
  tern_http_client_request q;
  memset(&q, 0, sizeof(q));
  q.method = "POST";
  q.url = w->url;
  q.urllen = strlen(w->url);
  tern_hook_header host[1] = {{"Host", "x"}};
  q.headers = host;
  q.nheaders = 1;
  CHECK(tern_http_client_send(w->c, &q, on_answer, &r) == TERN_ERR_INVALID,
        "a Host header of the caller's: refused");
  tern_hook_header crlf[1] = {{"X-A", "1\r\nX-B: 2"}};
  q.headers = crlf;
  CHECK(tern_http_client_send(w->c, &q, on_answer, &r) == TERN_ERR_INVALID,
        "a value with CR LF: refused");
  q.headers = NULL;
  q.nheaders = 0;
  q.method = "PO ST";
  CHECK(tern_http_client_send(w->c, &q, on_answer, &r) == TERN_ERR_INVALID,
        "a method that is no token: refused");
}

static void test_full_and_del(world *w) {
  tern_http_client_options o;
  tern_http_client_options_default(&o);
  o.max_requests = 2;
  o.connect_timeout = o.timeout = 200 * TERN_MILLISECONDS;
  tern_http_client *c;
  CHECK(tern_http_client_new(&c, w->d, &o) == 0, "a client of 2 requests");
  script(&w->sv, "");
  result r[3];
  tern_http_client_request q;
  memset(&q, 0, sizeof(q));
  q.method = "POST";
  q.url = w->url;
  q.urllen = strlen(w->url);
  memset(r, 0, sizeof(r));
  CHECK(tern_http_client_send(c, &q, on_answer, &r[0]) == 0 &&
            tern_http_client_send(c, &q, on_answer, &r[1]) == 0,
        "two sent");
  CHECK(tern_http_client_send(c, &q, on_answer, &r[2]) == TERN_ERR_FULL,
        "the third: TERN_ERR_FULL");
  tern_epoll_run_once(w->ep, 20 * TERN_MILLISECONDS);
  tern_http_client_del(c);
  CHECK(r[0].calls == 0 && r[1].calls == 0,
        "deleted with requests out: no callbacks (and no leak)");
  tern_http_client_options_default(&o);
  o.timeout = TERN_MILLISECONDS / 2;
  CHECK(tern_http_client_new(&c, w->d, &o) == TERN_ERR_INVALID,
        "a timeout under 1 ms: TERN_ERR_INVALID");
  o.version = 99;
  CHECK(tern_http_client_new(&c, w->d, &o) == TERN_ERR_INVALID,
        "an unknown version: TERN_ERR_INVALID");
}

/* tern_hook_sender: the hub's hooks go out through a client of its own. */
static void test_hook_sender(world *w) {
  tern_hook_sender *hs, *again;
  tern_http_client_options o;
  tern_http_client_options_default(&o);
  o.timeout = o.connect_timeout = 300 * TERN_MILLISECONDS;
  int rc = tern_hook_sender_new(&hs, w->d, &o);
  CHECK(rc == 0, "a hook sender");
  if (rc != 0) {
    return;
  }
  CHECK(tern_hook_sender_new(&again, w->d, &o) == TERN_ERR_STATE,
        "a second one on the driver: TERN_ERR_STATE");
  script(&w->sv, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  char url[96];
  snprintf(url, sizeof(url), "%s/hook", w->url);
  tern_hook_opts ho;
  tern_hook_opts_default(&ho);
  ho.flags = TERN_HOOK_VERIFIED;
  ho.target = (const uint8_t *)url;
  ho.targetlen = strlen(url);
  ho.secret = (const uint8_t *)"k";
  ho.secretlen = 1;
  ho.max_delay = 0;
  ho.retry_base = TERN_MILLISECONDS;
  ho.retry_cap = 2 * TERN_MILLISECONDS;
  ho.max_attempts = 2;
  uint64_t good = 0, bad = 0;
  CHECK(tern_hub_add_hook(w->hub, &ho, tern_posix_now(), &good) == 0,
        "a hook to the server");
  ho.target = (const uint8_t *)"https://127.0.0.1/";
  ho.targetlen = strlen((const char *)ho.target);
  CHECK(tern_hub_add_hook(w->hub, &ho, tern_posix_now(), &bad) == 0,
        "a hook the client cannot reach");
  tern_hook_entry e;
  memset(&e, 0, sizeof(e));
  e.key = (const uint8_t *)"k1";
  e.keylen = 2;
  CHECK(tern_hub_hook_enqueue(w->hub, good, &e, tern_posix_now()) == 0 &&
            tern_hub_hook_enqueue(w->hub, bad, &e, tern_posix_now()) == 0,
        "an entry for each");
  tern_driver_process(w->d); /* enqueued outside a driver callback */
  tern_hook_info gi, bi;
  tern_tstamp end = tern_posix_now() + 5 * TERN_SECONDS;
  do {
    tern_epoll_run_once(w->ep, 20 * TERN_MILLISECONDS);
    tern_hub_get_hook_info(w->hub, good, &gi, sizeof(gi));
    tern_hub_get_hook_info(w->hub, bad, &bi, sizeof(bi));
  } while ((gi.delivered != 1 || bi.dropped != 1) && tern_posix_now() < end);
  CHECK(gi.delivered == 1 && gi.attempts == 1,
        "delivered by the server's 200, first attempt");
  CHECK(bi.dropped == 1 && bi.attempts == 2,
        "the unreachable one: no answer twice, then dropped");
  pthread_mutex_lock(&w->sv.lock);
  w->sv.seen[w->sv.seenlen] = '\0';
  CHECK(strncmp(w->sv.seen, "POST /hook HTTP/1.1\r\n", 21) == 0 &&
            strstr(w->sv.seen, "X-Tern-Signature: sha256=") &&
            strstr(w->sv.seen, "X-Tern-Attempt: 1\r\n"),
        "the batch went as a signed POST");
  pthread_mutex_unlock(&w->sv.lock);
  tern_hook_sender_stats st;
  tern_hook_sender_get_stats(hs, &st, sizeof(st));
  CHECK(st.requests == 3 && st.answered == 1 && st.refused == 2 &&
            st.outstanding == 0,
        "stats: 3 requests, 1 answered, 2 refused");
  tern_hook_sender_del(hs);
  tern_hook_sender_del(NULL);
  CHECK(tern_hook_sender_new(&hs, w->d, &o) == 0,
        "after its deletion the driver takes a new sender");
  tern_hook_sender_del(hs);
}

int main(void) {
  world w;
  memset(&w, 0, sizeof(w));
  pthread_mutex_init(&w.sv.lock, NULL);
  w.sv.fd = listen_any(&w.sv.port);
  if (w.sv.fd < 0) {
    BAILOUT("cannot listen on loopback");
  }
  snprintf(w.url, sizeof(w.url), "http://127.0.0.1:%u", (unsigned)w.sv.port);
  pthread_t th;
  pthread_create(&th, NULL, serve, &w.sv);
  CHECK(tern_epoll_new(&w.ep) == 0, "epoll");
  CHECK(tern_hub_new(&w.hub, NULL, NULL) == 0, "hub");
  CHECK(tern_driver_new(&w.d, w.hub, tern_epoll_methods(), w.ep, NULL) == 0,
        "driver");
  tern_http_client_options o;
  tern_http_client_options_default(&o);
  o.timeout = 200 * TERN_MILLISECONDS;
  o.connect_timeout = 100 * TERN_MILLISECONDS;
  CHECK(tern_http_client_new(&w.c, w.d, &o) == 0, "client");

  test_request_bytes(&w);
  test_answers(&w);
  test_errors(&w);
  test_refused(&w);
  test_full_and_del(&w);
  test_hook_sender(&w);

  tern_http_client_del(w.c);
  tern_http_client_del(NULL);
  tern_driver_del(w.d);
  tern_hub_del(w.hub);
  tern_epoll_del(w.ep);
  pthread_mutex_lock(&w.sv.lock);
  w.sv.stop = 1;
  pthread_mutex_unlock(&w.sv.lock);
  /* Wake the accept with one last connection. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(w.sv.port);
  (void)connect(fd, (struct sockaddr *)&a, sizeof(a));
  pthread_join(th, NULL);
  close(fd);
  close(w.sv.fd);
  pthread_mutex_destroy(&w.sv.lock);
  return tap_done();
}
