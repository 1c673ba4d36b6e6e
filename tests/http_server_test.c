/*
 * tern_http (lib/posix/http.c) over real sockets on 127.0.0.1: answers,
 * keep-alive, HEAD, deferred answers with pipelined requests behind them,
 * on_abort, refused requests, streams (SSE, a poll's 204), forwarding to
 * another server, the request and idle timeouts, limits, and
 * tern_http_del with connections open.  One thread: the test turns the
 * loop while it waits for its client socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern_posix.h>

#include "tap.h"

static tern_epoll *ep;
static tern_hub *hub, *hub2;
static tern_driver *drv, *drv2;
static tern_http *http, *http2;
static uint16_t port;

static tern_http_request *later; /* a request left unanswered */
static int aborts;
static int marker;
static void *seen_forwarded;
static int h2_requests;

static void on_request(void *user, tern_http_request *req) {
  (void)user;
  size_t len;
  const char *p = tern_http_request_path(req, &len);
  char path[128];
  snprintf(path, sizeof(path), "%.*s", (int)len, p);
  if (strcmp(path, "/later") == 0) {
    later = req;
    return;
  }
  if (strcmp(path, "/fwd") == 0) {
    CHECK_EQ(tern_http_request_forward(req, http2, &marker), 0, "forward");
    return;
  }
  if (strcmp(path, "/sse") == 0 || strcmp(path, "/poll") == 0) {
    tern_stream_opts o;
    tern_stream_opts_default(&o);
    o.framing = path[1] == 's' ? TERN_FRAMING_SSE : TERN_FRAMING_POLL;
    o.key = (const uint8_t *)"k";
    o.keylen = 1;
    o.poll_hold = 0;
    CHECK_EQ(tern_http_respond_stream(req, &o, "X-Test: 1\r\n", NULL), 0,
             "respond_stream %s", path);
    return;
  }
  if (strcmp(path, "/checks") == 0) {
    CHECK_EQ(tern_http_respond(req, 99, NULL, NULL, NULL, 0),
             TERN_ERR_INVALID, "status 99 is refused");
    CHECK_EQ(tern_http_respond(req, 200, NULL, "X: 1", NULL, 0),
             TERN_ERR_INVALID, "a header line without CRLF is refused");
    CHECK_EQ(tern_http_respond(req, 200, NULL, "NoColon\r\n", NULL, 0),
             TERN_ERR_INVALID, "a header line without a colon is refused");
    CHECK_EQ(tern_http_respond(req, 200, "a\r\nb", NULL, NULL, 0),
             TERN_ERR_INVALID, "a content type with CRLF is refused");
    const char *v;
    size_t vl;
    CHECK(tern_http_request_param(req, "a", &v, &vl) == 2 && vl == 3 &&
              memcmp(v, "x y", 3) == 0,
          "param: decoded, repeated");
    CHECK(tern_http_request_header(req, "x-thing", &v, &vl) == 1 &&
              vl == 5 && memcmp(v, "hello", 5) == 0,
          "header: case-insensitive, trimmed");
    const char *name;
    size_t nl;
    CHECK(tern_http_request_param_at(req, 2, &name, &nl, &v, &vl) == 1 &&
              nl == 1 && name[0] == 'b' &&
              !tern_http_request_param_at(req, 3, NULL, NULL, NULL, NULL),
          "param_at walks the parameters");
    size_t bl;
    const uint8_t *b = tern_http_request_body(req, &bl);
    CHECK(bl == 4 && memcmp(b, "body", 4) == 0, "body");
    CHECK(strcmp(tern_http_request_method(req), "POST") == 0, "method");
    CHECK_EQ(tern_http_respond(req, 201, "text/plain", "X-A: b\r\n", "ok", 2),
             0, "respond");
    CHECK_EQ(tern_http_respond(req, 200, NULL, NULL, NULL, 0), TERN_ERR_STATE,
             "a second answer is refused");
    return;
  }
  tern_http_respond(req, 200, "text/plain", NULL, path, strlen(path));
}

static void on_request2(void *user, tern_http_request *req) {
  (void)user;
  h2_requests++;
  seen_forwarded = tern_http_request_forwarded(req);
  tern_http_respond(req, 200, "text/plain", NULL, "h2", 2);
}

static void on_abort(void *user, tern_http_request *req) {
  (void)user;
  if (req == later) {
    later = NULL;
  }
  aborts++;
}

static int client(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    BAILOUT("connect");
  }
  return fd;
}

/* Turns the loop and reads |fd| for |ms| milliseconds or until |want|
   occurs |times| times in what came (want NULL: until EOF).  Returns the
   bytes read; *eof says whether the server closed. */
static size_t collect(int fd, char *buf, size_t cap, const char *want,
                      int times, int ms, int *eof) {
  size_t n = 0;
  *eof = 0;
  for (int i = 0; i < ms; ++i) {
    tern_epoll_run_once(ep, TERN_MILLISECONDS);
    ssize_t r = recv(fd, buf + n, cap - 1 - n, MSG_DONTWAIT);
    if (r == 0) {
      *eof = 1;
      break;
    }
    if (r > 0) {
      n += (size_t)r;
      buf[n] = '\0';
      if (want) {
        int c = 0;
        for (const char *p = buf; (p = strstr(p, want)) != NULL; p++) {
          c++;
        }
        if (c >= times) {
          break;
        }
      }
    }
  }
  buf[n] = '\0';
  return n;
}

static void send_str(int fd, const char *s) {
  if (send(fd, s, strlen(s), 0) != (ssize_t)strlen(s)) {
    BAILOUT("send");
  }
}

static char buf[65536];

static void test_basic(void) {
  int eof;
  int fd = client();
  send_str(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "/a", 1, 1000, &eof);
  CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") && strstr(buf, "Content-Length: 2"),
        "GET: 200 with Content-Length");
  send_str(fd, "HEAD /bb HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "\r\n\r\n", 1, 1000, &eof);
  collect(fd, buf + strlen(buf), sizeof(buf) - strlen(buf), NULL, 1, 50,
          &eof);
  CHECK(strstr(buf, "Content-Length: 3\r\n") && !strstr(buf, "/bb") && !eof,
        "HEAD on the same connection: length, no body, kept open");
  send_str(fd, "POST /checks?a=x+y&a=2&b HTTP/1.1\r\nHost: x\r\n"
               "X-Thing:  hello \r\nContent-Length: 4\r\n\r\nbody");
  collect(fd, buf, sizeof(buf), "ok", 1, 1000, &eof);
  CHECK(strstr(buf, "HTTP/1.1 201 Created\r\n") && strstr(buf, "X-A: b\r\n"),
        "201 with the host's header line");
  close(fd);
}

static void test_deferred(void) {
  int eof;
  int fd = client();
  send_str(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /now HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "HTTP", 1, 200, &eof);
  CHECK(later != NULL && buf[0] == '\0',
        "a request left unanswered holds the one behind it");
  CHECK_EQ(tern_http_respond(later, 200, NULL, NULL, "L", 1), 0,
           "answer it later");
  later = NULL;
  collect(fd, buf, sizeof(buf), "/now", 1, 1000, &eof);
  char *l = strstr(buf, "\r\n\r\nL");
  char *nw = strstr(buf, "/now");
  CHECK(l && nw && l < nw, "then both answers come, in order");
  /* A pending request whose client goes: on_abort. */
  send_str(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "HTTP", 1, 100, &eof);
  int before = aborts;
  close(fd);
  for (int i = 0; i < 100 && aborts == before; ++i) {
    tern_epoll_run_once(ep, TERN_MILLISECONDS);
  }
  CHECK(aborts == before + 1 && later == NULL, "on_abort when the client left");
}

static void test_refused(void) {
  int eof;
  tern_http_stats st0, st1;
  tern_http_get_stats(http, &st0, sizeof(st0));
  int fd = client();
  send_str(fd, "GARBAGE\r\n\r\n");
  collect(fd, buf, sizeof(buf), NULL, 1, 1000, &eof);
  CHECK(strncmp(buf, "HTTP/1.1 400 ", 13) == 0 && eof &&
            strstr(buf, "{\"error\":"),
        "a malformed request: 400, JSON error, closed");
  close(fd);
  fd = client();
  send_str(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
  collect(fd, buf, sizeof(buf), NULL, 1, 1000, &eof);
  CHECK(strncmp(buf, "HTTP/1.1 413 ", 13) == 0 && eof,
        "a body over max_body (10): 413");
  close(fd);
  tern_http_get_stats(http, &st1, sizeof(st1));
  CHECK_EQ(st1.bad_requests - st0.bad_requests, 2, "counted as bad requests");
  CHECK_EQ(st1.requests, st0.requests, "and never handed to the host");
}

static void test_streams(void) {
  int eof;
  tern_http_stats st0;
  tern_http_get_stats(http, &st0, sizeof(st0));
  int fd = client();
  send_str(fd, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "\r\n\r\n", 1, 1000, &eof);
  CHECK(strstr(buf, "Content-Type: text/event-stream") &&
            strstr(buf, "X-Test: 1\r\n") && strstr(buf, "Connection: close"),
        "SSE head");
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"hello";
  d.payloadlen = 5;
  tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, tern_posix_now(), NULL);
  tern_driver_process(drv);
  collect(fd, buf, sizeof(buf), "hello", 1, 1000, &eof);
  CHECK(strstr(buf, "event: msg") && strstr(buf, "\"data\":\"hello\""),
        "a publish reaches the stream");
  tern_http_stats st;
  tern_http_get_stats(http, &st, sizeof(st));
  CHECK_EQ(st.streams, 1, "one stream open");
  close(fd);
  for (int i = 0; i < 200 && st.streams; ++i) {
    tern_epoll_run_once(ep, TERN_MILLISECONDS);
    tern_http_get_stats(http, &st, sizeof(st));
  }
  tern_stats hs;
  tern_hub_get_stats(hub, &hs, sizeof(hs));
  CHECK(st.streams == 0 && hs.conns == 0,
        "the client's close deletes the hub's connection");
  /* Once its head was out the driver served the stream, without the
     request struct: its close is still counted. */
  CHECK(st.connections == st0.connections &&
            st.streams_opened == st0.streams_opened + 1,
        "a stream's close is counted once it ends");
  fd = client();
  tern_hub_ack(hub, (const uint8_t *)"k", 1, 1, tern_posix_now());
  send_str(fd, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), NULL, 1, 1000, &eof);
  CHECK(strncmp(buf, "HTTP/1.1 204 ", 13) == 0 && eof,
        "a short poll with nothing to send: 204");
  close(fd);
}

static void test_forward(void) {
  int eof;
  int fd = client();
  send_str(fd, "GET /fwd HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "h2", 1, 1000, &eof);
  CHECK(strstr(buf, "\r\n\r\nh2") && seen_forwarded == &marker,
        "a forwarded request is answered by the other server, with its arg");
  send_str(fd, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "h2", 1, 1000, &eof);
  CHECK(h2_requests == 2 && seen_forwarded == NULL,
        "the connection stays with it; its next request has no arg");
  close(fd);
  /* Pipelined behind an answer not yet sent: the forward waits for it. */
  fd = client();
  send_str(fd, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /fwd HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /third HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(fd, buf, sizeof(buf), "HTTP/1.1 200", 3, 1000, &eof);
  char *first = strstr(buf, "/first");
  char *h2 = strstr(buf, "\r\n\r\nh2");
  CHECK(first && h2 && first < h2 && strstr(h2 + 1, "\r\n\r\nh2") &&
            h2_requests == 4,
        "a pipelined forward goes after the answers before it, with the "
        "requests behind it");
  close(fd);
}

static void test_timeouts(void) {
  int eof;
  int fd = client();
  send_str(fd, "GET / HTTP/1.1\r\n");
  collect(fd, buf, sizeof(buf), NULL, 1, 3000, &eof);
  CHECK(strncmp(buf, "HTTP/1.1 408 ", 13) == 0 && eof,
        "a request that does not finish in time: 408");
  close(fd);
  fd = client();
  collect(fd, buf, sizeof(buf), NULL, 1, 3000, &eof);
  CHECK(buf[0] == '\0' && eof, "an idle connection is closed");
  close(fd);
}

static void test_del(void) {
  int eof;
  int a = client(), b = client();
  send_str(a, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
  send_str(b, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
  collect(a, buf, sizeof(buf), "\r\n\r\n", 1, 500, &eof);
  collect(b, buf, sizeof(buf), NULL, 1, 100, &eof);
  int before = aborts;
  tern_http_del(http);
  http = NULL;
  collect(a, buf, sizeof(buf), NULL, 1, 500, &eof);
  int eof_a = eof;
  collect(b, buf, sizeof(buf), NULL, 1, 500, &eof);
  tern_stats hs;
  tern_hub_get_stats(hub, &hs, sizeof(hs));
  CHECK(eof_a && eof && aborts == before + 1 && hs.conns == 0,
        "tern_http_del closes streams and pending requests (on_abort)");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0,
        "and stops listening");
  close(fd);
  close(a);
  close(b);
}

int main(void) {
  if (tern_epoll_new(&ep) != 0 || tern_hub_new(&hub, NULL, NULL) != 0 ||
      tern_hub_new(&hub2, NULL, NULL) != 0 ||
      tern_driver_new(&drv, hub, tern_epoll_methods(), ep, NULL) != 0 ||
      tern_driver_new(&drv2, hub2, tern_epoll_methods(), ep, NULL) != 0) {
    BAILOUT("setup");
  }
  tern_http_options o;
  tern_http_options_default(&o);
  CHECK_EQ(tern_http_new(&http, drv, &o), TERN_ERR_INVALID,
           "no on_request: refused");
  o.on_request = on_request;
  o.max_head = 10;
  CHECK_EQ(tern_http_new(&http, drv, &o), TERN_ERR_INVALID,
           "max_head out of range: refused");
  o.max_head = 8192;
  o.max_body = 10;
  o.on_abort = on_abort;
  o.request_timeout = 500 * TERN_MILLISECONDS;
  o.idle_timeout = 500 * TERN_MILLISECONDS;
  if (tern_http_new(&http, drv, &o) != 0 ||
      tern_http_listen(http, "127.0.0.1", 0, &port) != 0) {
    BAILOUT("http");
  }
  tern_http_options o2;
  tern_http_options_default(&o2);
  o2.on_request = on_request2;
  if (tern_http_new(&http2, drv2, &o2) != 0) {
    BAILOUT("http2");
  }
  test_basic();
  test_deferred();
  test_refused();
  test_streams();
  test_forward();
  test_timeouts();
  test_del();
  tern_http_del(http2);
  tern_driver_del(drv);
  tern_driver_del(drv2);
  tern_hub_del(hub);
  tern_hub_del(hub2);
  tern_epoll_del(ep);
  return tap_done();
}
