/*
 * Fuzz target for tern_http (lib/posix/http.c), the server around the
 * HTTP parser: its input buffering, pipelining behind deferred answers,
 * the hand-over of a request's raw bytes to another server, and streams.
 *
 * Input: byte 0 seeds the chunk sizes; the rest is what a client sends on
 * one connection (a socketpair adopted by the server).  The host answers
 * by path: "/d..." is left unanswered until the next chunk arrives, then
 * answered; "/f..." is forwarded to a second server, which answers;
 * "/s..." and "/p..." become an SSE stream and a short poll of session
 * "k", which has a message; anything else is answered 200 with the path.
 * Checks, aborting on any violation:
 *  - what comes back is a sequence of HTTP/1.1 responses: each starts
 *    with "HTTP/1.x NNN ", and no response but a stream's lacks a head;
 *  - every request handed to the host is answered, aborted or forwarded
 *    exactly once (no double answer, no request lost);
 *  - nothing leaks and nothing is touched after it was freed (ASan).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern_posix.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "http_server_fuzz: %s:%d: %s\n", __FILE__, __LINE__, \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

typedef struct world {
  tern_hub *hub;
  tern_driver *d, *d2;
  tern_http *h, *h2;
  tern_http_request *deferred;
  long handed, answered, aborted, forwarded;
} world;

static void answer(world *w, tern_http_request *r) {
  size_t len;
  const char *path = tern_http_request_path(r, &len);
  REQUIRE(tern_http_respond(r, 200, "text/plain", NULL, path, len) == 0);
  w->answered++;
}

static void on_request(void *user, tern_http_request *r) {
  world *w = user;
  size_t len;
  const char *path = tern_http_request_path(r, &len);
  w->handed++;
  REQUIRE(len >= 1 && path[0] == '/');
  char c = len > 1 ? path[1] : 0;
  if (c == 'd' && !w->deferred) {
    w->deferred = r;
    return;
  }
  if (c == 'f' && tern_http_request_forward(r, w->h2, w) == 0) {
    w->forwarded++;
    return;
  }
  if ((c == 's' || c == 'p') && strcmp(tern_http_request_method(r), "GET") ==
                                    0) {
    tern_stream_opts o;
    tern_stream_opts_default(&o);
    o.framing = c == 's' ? TERN_FRAMING_SSE : TERN_FRAMING_POLL;
    o.key = (const uint8_t *)"k";
    o.keylen = 1;
    o.poll_hold = 0;
    if (tern_http_respond_stream(r, &o, NULL, NULL) == 0) {
      w->answered++;
      return;
    }
  }
  answer(w, r);
}

static void on_request2(void *user, tern_http_request *r) {
  world *w = user;
  w->handed++;
  REQUIRE(tern_http_request_forwarded(r) == NULL ||
          tern_http_request_forwarded(r) == w);
  answer(w, r);
}

static void on_abort(void *user, tern_http_request *r) {
  world *w = user;
  if (r == w->deferred) {
    w->deferred = NULL;
  }
  w->aborted++;
}

static tern_epoll *ep;

static void turn(void) {
  for (int i = 0; i < 4; ++i) {
    tern_epoll_run_once(ep, 0);
  }
}

/* Reads what the server wrote; checks that answers start with a head. */
static void drain(int fd, uint8_t *acc, size_t *acclen, size_t cap) {
  for (;;) {
    ssize_t n = recv(fd, acc + *acclen, cap - *acclen, MSG_DONTWAIT);
    if (n <= 0) {
      return;
    }
    *acclen += (size_t)n;
    if (*acclen == cap) {
      *acclen = 0; /* a long stream: the head was checked already */
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536) {
    return 0;
  }
  world w;
  memset(&w, 0, sizeof(w));
  if (!ep) {
    REQUIRE(tern_epoll_new(&ep) == 0);
  }
  tern_hub *hub2;
  REQUIRE(tern_hub_new(&w.hub, NULL, NULL) == 0);
  REQUIRE(tern_hub_new(&hub2, NULL, NULL) == 0);
  REQUIRE(tern_driver_new(&w.d, w.hub, tern_epoll_methods(), ep, NULL) == 0);
  REQUIRE(tern_driver_new(&w.d2, hub2, tern_epoll_methods(), ep, NULL) == 0);
  tern_http_options o;
  tern_http_options_default(&o);
  o.on_request = on_request;
  o.on_abort = on_abort;
  o.user_data = &w;
  o.max_head = 1024;
  o.max_body = 2048;
  REQUIRE(tern_http_new(&w.h, w.d, &o) == 0);
  o.on_request = on_request2;
  REQUIRE(tern_http_new(&w.h2, w.d2, &o) == 0);
  tern_msg_desc m;
  memset(&m, 0, sizeof(m));
  m.payload = (const uint8_t *)"msg";
  m.payloadlen = 3;
  REQUIRE(tern_hub_publish(w.hub, (const uint8_t *)"k", 1, &m,
                           tern_posix_now(), NULL) == 0);

  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  REQUIRE(tern_http_adopt(w.h, sv[0]) == 0);
  static uint8_t acc[1 << 16];
  size_t acclen = 0;
  uint32_t seed = data[0] * 2654435761u + 1;
  size_t off = 1;
  while (off < size) {
    seed = seed * 1103515245u + 12345u;
    size_t chunk = 1 + (seed >> 16) % 64;
    if (chunk > size - off) {
      chunk = size - off;
    }
    /* The server may have closed (after an error, a stream's end): the
       rest of the input goes nowhere. */
    if (send(sv[1], data + off, chunk, MSG_NOSIGNAL) != (ssize_t)chunk) {
      break;
    }
    off += chunk;
    turn();
    if (w.deferred) {
      tern_http_request *r = w.deferred;
      w.deferred = NULL;
      answer(&w, r);
      turn();
    }
    drain(sv[1], acc, &acclen, sizeof(acc));
  }
  shutdown(sv[1], SHUT_WR);
  turn();
  if (w.deferred) {
    tern_http_request *r = w.deferred;
    w.deferred = NULL;
    answer(&w, r);
    turn();
  }
  drain(sv[1], acc, &acclen, sizeof(acc));
  if (acclen > 0) {
    REQUIRE(acclen >= 13 && memcmp(acc, "HTTP/1.", 7) == 0 &&
            acc[8] == ' ' && acc[12] == ' ');
  }
  tern_http_del(w.h);
  tern_http_del(w.h2);
  REQUIRE(w.handed == w.answered + w.aborted + w.forwarded);
  close(sv[1]);
  tern_driver_del(w.d);
  tern_driver_del(w.d2);
  tern_hub_del(w.hub);
  tern_hub_del(hub2);
  return 0;
}
