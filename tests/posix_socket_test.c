#define _DEFAULT_SOURCE /* mkdtemp, usleep */
/*
 * libtern-posix beyond the binary framing: a host protocol on the driver's
 * sockets end to end over 127.0.0.1 (open, read, pull, close, want_write
 * from outside a callback, tern_socket_end flushing before the close, a
 * read error, a refusing open, out_cap backpressure, adopt), each method
 * called with its own socket's user, the epoll loop with hundreds of
 * handles, some deleted by the callbacks of their batch, a socket closed
 * while it waits for the next pass of the driver, the file store's sync thread completing into the loop
 * (tern_driver_watch_store),
 * and the driver's allocator: every allocation of the driver, its sockets
 * and its inbox fails in turn, and each failure is an error code or a
 * closed socket, never a leak or a crash.
 *
 * One thread: the test turns the epoll loop itself (tern_epoll_run_once)
 * between the steps of its clients.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern_posix.h>

#include "store_util.h"
#include "tap.h"
#include "testutil.h"

/* ---- helpers ---- */

static tern_epoll *ep;

/* Turns the loop until |done(arg)| or |ms| passed; returns done(arg). */
static int spin(int (*done)(void *), void *arg, int ms) {
  tern_tstamp end = tern_posix_now() + (tern_duration)ms * TERN_MILLISECONDS;
  while (!(done && done(arg)) && tern_posix_now() < end) {
    tern_epoll_run_once(ep, 2 * TERN_MILLISECONDS);
  }
  return done ? done(arg) : 0;
}

static int client_connect(uint16_t port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    BAILOUT("connect");
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static void send_all(int fd, const char *s) {
  size_t len = strlen(s);
  if (write(fd, s, len) != (ssize_t)len) {
    BAILOUT("client write");
  }
}

/* What a client read: bytes, and whether EOF came. */
typedef struct inbound {
  int fd;
  uint8_t *buf;
  size_t len, cap;
  int eof;
  size_t want; /* spin until this many bytes (or EOF with want 0) */
} inbound;

static void inbound_read(inbound *in) {
  for (;;) {
    if (in->cap - in->len < 65536) {
      in->cap = in->cap * 2 + 65536;
      in->buf = tu_xrealloc(in->buf, in->cap);
    }
    ssize_t n = read(in->fd, in->buf + in->len, in->cap - in->len);
    if (n > 0) {
      in->len += (size_t)n;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      in->eof = 1;
    }
    return;
  }
}

static int inbound_done(void *arg) {
  inbound *in = arg;
  inbound_read(in);
  return in->eof || (in->want && in->len >= in->want);
}

static int inbound_eof(void *arg) {
  inbound *in = arg;
  inbound_read(in);
  return in->eof;
}

static int has(const inbound *in, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= in->len; ++i) {
    if (memcmp(in->buf + i, s, n) == 0) {
      return 1;
    }
  }
  return 0;
}

/* ---- a line protocol of the host's ---- */

/* Per socket: bytes to send, and the partial line read. */
typedef struct line_sock {
  uint8_t *out;
  size_t off, len;
  char in[256];
  size_t inlen;
} line_sock;

static struct {
  int opens, closes, refuse_next, reads_after_end;
  tern_socket *last;
  int ended;
} lp;

static void out_add(line_sock *ls, const void *p, size_t n) {
  ls->out = tu_xrealloc(ls->out, ls->len + n);
  memcpy(ls->out + ls->len, p, n);
  ls->len += n;
}

static int lp_open(void *user, tern_socket *s, tern_tstamp now) {
  (void)user;
  (void)now;
  if (lp.refuse_next) {
    lp.refuse_next = 0;
    return TERN_ERR_LIMIT;
  }
  line_sock *ls = calloc(1, sizeof(*ls));
  out_add(ls, "hi\n", 3); /* pulled at once: pull comes after open */
  tern_socket_set_user_data(s, ls);
  lp.opens++;
  lp.last = s;
  return 0;
}

static int lp_line(tern_socket *s, line_sock *ls, const char *l) {
  if (strncmp(l, "echo ", 5) == 0) {
    out_add(ls, l + 5, strlen(l + 5));
    out_add(ls, "\n", 1);
  } else if (strncmp(l, "big ", 4) == 0) {
    size_t n = strtoul(l + 4, NULL, 10);
    uint8_t *b = tu_xmalloc(n);
    for (size_t i = 0; i < n; ++i) {
      b[i] = (uint8_t)('a' + i % 23);
    }
    out_add(ls, b, n);
    free(b);
  } else if (strcmp(l, "bye") == 0) {
    out_add(ls, "bye\n", 4);
    tern_socket_end(s);
    lp.ended++;
  } else if (strcmp(l, "fail") == 0) {
    out_add(ls, "last\n", 5);
    return TERN_ERR_PROTO;
  }
  return 0;
}

static int lp_read(void *user, tern_socket *s, const uint8_t *in, size_t len,
                   tern_tstamp now) {
  (void)user;
  (void)now;
  line_sock *ls = tern_socket_get_user_data(s);
  if (lp.ended) {
    lp.reads_after_end++;
  }
  for (size_t i = 0; i < len; ++i) {
    if (in[i] != '\n') {
      if (ls->inlen < sizeof(ls->in) - 1) {
        ls->in[ls->inlen++] = (char)in[i];
      }
      continue;
    }
    ls->in[ls->inlen] = 0;
    ls->inlen = 0;
    int rc = lp_line(s, ls, ls->in);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static tern_ssize lp_pull(void *user, tern_socket *s, uint8_t *out, size_t cap,
                          tern_tstamp now) {
  (void)user;
  (void)now;
  line_sock *ls = tern_socket_get_user_data(s);
  size_t n = ls->len - ls->off < cap ? ls->len - ls->off : cap;
  memcpy(out, ls->out + ls->off, n);
  ls->off += n;
  if (ls->off == ls->len) {
    ls->off = ls->len = 0;
  }
  return (tern_ssize)n;
}

static void lp_close(void *user, tern_socket *s) {
  (void)user;
  line_sock *ls = tern_socket_get_user_data(s);
  free(ls->out);
  free(ls);
  lp.closes++;
  if (lp.last == s) {
    lp.last = NULL;
  }
}

static const tern_socket_handler line_proto = {
    TERN_SOCKET_HANDLER_VERSION, lp_open, lp_read, lp_pull, lp_close};

static size_t held_by_protocol(const tern_socket *s) {
  line_sock *ls = tern_socket_get_user_data(s);
  return ls ? ls->len - ls->off : 0;
}

typedef struct blocked_arg {
  tern_driver *d;
  uint64_t blocked;
} blocked_arg;

static int socket_blocked(void *arg) {
  blocked_arg *b = arg;
  tern_driver_stats st;
  tern_driver_get_stats(b->d, &st, sizeof(st));
  return st.blocked > b->blocked;
}

static void test_handler(void) {
  tern_hub *hub;
  tern_driver *d;
  uint16_t port = 0;
  tern_driver_options o;
  tern_driver_options_default(&o);
  o.out_cap = 4096;
  CHECK_EQ(tern_epoll_new(&ep), 0, "loop");
  CHECK_EQ(tern_hub_new(&hub, NULL, NULL), 0, "hub");
  CHECK_EQ(tern_driver_new(&d, hub, tern_epoll_methods(), ep, &o), 0,
           "driver with out_cap 4096");

  tern_socket_handler bad = line_proto;
  bad.pull = NULL;
  CHECK_EQ(tern_driver_listen(d, NULL, 0, &bad, NULL, NULL), TERN_ERR_INVALID,
           "a handler without pull is refused");
  bad = line_proto;
  bad.version = 0;
  CHECK_EQ(tern_driver_listen(d, NULL, 0, &bad, NULL, NULL), TERN_ERR_INVALID,
           "a handler of no known layout is refused");
  CHECK_EQ(tern_driver_listen(d, "not-an-address", 0, &line_proto, NULL, NULL),
           TERN_ERR_INVALID, "a bad address is refused");
  CHECK_EQ(tern_driver_listen(d, "127.0.0.1", 0, &line_proto, NULL, &port), 0,
           "listen with the line protocol");

  /* open, pull after open, read, pull after read. */
  inbound a = {.fd = client_connect(port, 0), .want = 3};
  spin(inbound_done, &a, 2000);
  CHECK(a.len == 3 && memcmp(a.buf, "hi\n", 3) == 0 && lp.opens == 1,
        "open was called and its greeting pulled at once");
  tern_socket *s = lp.last;
  struct sockaddr_in peer;
  socklen_t plen = sizeof(peer);
  CHECK(s && getpeername(tern_socket_fd(s), (struct sockaddr *)&peer, &plen) == 0,
        "tern_socket_fd is the connected socket");
  CHECK(tern_socket_get_conn(s) == NULL && tern_socket_get_driver(s) == d,
        "a host socket has no tern_conn, and its driver");
  send_all(a.fd, "echo one\necho two\n");
  a.want = 3 + 8;
  spin(inbound_done, &a, 2000);
  CHECK(a.len == 11 && memcmp(a.buf + 3, "one\ntwo\n", 8) == 0,
        "lines read are answered through pull");

  /* want_write from outside every callback: the loop comes back by itself. */
  out_add(tern_socket_get_user_data(s), "push\n", 5);
  tern_socket_want_write(s);
  a.want = 16;
  spin(inbound_done, &a, 2000);
  CHECK(a.len == 16 && memcmp(a.buf + 11, "push\n", 5) == 0,
        "tern_socket_want_write outside a callback sends what the protocol has");

  /* tern_socket_end flushes what pull gives, then closes. */
  send_all(a.fd, "big 32768\nbye\n");
  spin(inbound_eof, &a, 3000);
  CHECK(a.eof && a.len == 16 + 32768 + 4 &&
            memcmp(a.buf + a.len - 4, "bye\n", 4) == 0,
        "tern_socket_end: the bytes before it arrive, then EOF (%zu bytes)",
        a.len);
  CHECK_EQ(lp.closes, 1, "close was called once");
  CHECK_EQ(lp.reads_after_end, 0, "nothing read after the end");
  close(a.fd);
  lp.ended = 0;

  /* A read error ends the socket after what pull still gives. */
  inbound b = {.fd = client_connect(port, 0)};
  send_all(b.fd, "echo x\nfail\necho never\n");
  spin(inbound_eof, &b, 3000);
  CHECK(b.eof && has(&b, "x\nlast\n") && !has(&b, "never"),
        "a read error: the answers before it and pull's last bytes, then EOF");
  CHECK_EQ(lp.closes, 2, "close was called");
  close(b.fd);

  /* open refusing: closed at once, no close call. */
  lp.refuse_next = 1;
  tern_driver_stats st0, st1;
  tern_driver_get_stats(d, &st0, sizeof(st0));
  inbound c = {.fd = client_connect(port, 0)};
  spin(inbound_eof, &c, 3000);
  tern_driver_get_stats(d, &st1, sizeof(st1));
  CHECK(c.eof && c.len == 0 && lp.closes == 2 && lp.opens == 2 &&
            st1.closed == st0.closed + 1,
        "a refusing open closes the socket without a close call");
  close(c.fd);

  /* Backpressure: the client reads nothing; the driver holds at most out_cap
     bytes and stops pulling, the rest stays with the protocol. */
  const size_t big = (size_t)8 << 20;
  inbound e = {.fd = client_connect(port, 4096)};
  spin(NULL, NULL, 50);
  char cmd[64];
  snprintf(cmd, sizeof(cmd), "big %zu\n", big);
  send_all(e.fd, cmd);
  /* Until the socket is full (the kernel's buffers are large on loopback),
     then a while longer: nothing more may be pulled once it is. */
  blocked_arg ba = {d, 0};
  tern_driver_get_stats(d, &st0, sizeof(st0));
  ba.blocked = st0.blocked;
  CHECK(spin(socket_blocked, &ba, 20000), "the socket filled up");
  s = lp.last;
  size_t held = s ? held_by_protocol(s) : 0;
  spin(NULL, NULL, 200);
  tern_driver_stats st;
  tern_driver_get_stats(d, &st, sizeof(st));
  CHECK(st.buffered_max <= 4096 && st.buffered <= 4096 && st.buffered > 0,
        "the driver holds at most out_cap bytes (%llu now, %llu at most)",
        (unsigned long long)st.buffered, (unsigned long long)st.buffered_max);
  CHECK(s && held > 0 && held_by_protocol(s) == held,
        "pull is not called while the socket is full: the protocol still "
        "holds %zu of %zu bytes",
        held, big);
  e.want = 3 + big;
  spin(inbound_done, &e, 20000);
  int intact = e.len == 3 + big;
  for (size_t i = 0; intact && i < big; ++i) {
    intact = e.buf[3 + i] == (uint8_t)('a' + i % 23);
  }
  CHECK(intact, "once the client reads, every byte arrives in order (%zu)",
        e.len);
  close(e.fd);
  spin(NULL, NULL, 50);

  /* adopt: a socketpair end served as if accepted; ended from outside. */
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  tern_socket *as = NULL;
  CHECK_EQ(tern_driver_adopt(d, sv[0], &line_proto, NULL, &as), 0,
           "tern_driver_adopt");
  CHECK(as && tern_socket_fd(as) == sv[0], "the adopted socket is stored");
  fcntl(sv[1], F_SETFL, O_NONBLOCK);
  inbound f = {.fd = sv[1]};
  send_all(sv[1], "echo z\n");
  f.want = 5;
  spin(inbound_done, &f, 2000);
  CHECK(f.len == 5 && memcmp(f.buf, "hi\nz\n", 5) == 0,
        "an adopted socket is served");
  int closes = lp.closes;
  tern_socket_end(as);
  spin(inbound_eof, &f, 2000);
  CHECK(f.eof && lp.closes == closes + 1,
        "tern_socket_end outside a callback closes it, with its close call");
  close(sv[1]);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(tern_driver_adopt(d, fd, &bad, NULL, NULL), TERN_ERR_INVALID,
           "adopt with a bad handler fails");
  CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF,
        "and closes the descriptor it was given");

  /* NULL does nothing. */
  tern_socket_want_write(NULL);
  tern_socket_end(NULL);
  tern_socket_set_user_data(NULL, NULL);
  CHECK(tern_socket_fd(NULL) == -1 && !tern_socket_get_conn(NULL) &&
            !tern_socket_get_driver(NULL) && !tern_socket_get_user_data(NULL),
        "the socket functions take NULL");

  /* A socket still open at tern_driver_del gets its close call. */
  inbound g = {.fd = client_connect(port, 0), .want = 3};
  spin(inbound_done, &g, 2000);
  closes = lp.closes;
  tern_driver_del(d);
  CHECK_EQ(lp.closes, closes + 1, "tern_driver_del closes open sockets");
  close(g.fd);
  tern_hub_del(hub);
  tern_epoll_del(ep);
  free(a.buf);
  free(b.buf);
  free(c.buf);
  free(e.buf);
  free(f.buf);
  free(g.buf);
}

/* ---- every method gets the user its socket was served with ---- */

/* The user a socket's methods were called with, and whether it was ever
   another one. */
typedef struct user_probe {
  const void *user;
  int mixed, reads, closed;
} user_probe;

static int up_reads, nclosed;

static int up_open(void *user, tern_socket *s, tern_tstamp now) {
  (void)now;
  user_probe *p = calloc(1, sizeof(*p));
  p->user = user;
  tern_socket_set_user_data(s, p);
  return 0;
}

static int up_read(void *user, tern_socket *s, const uint8_t *in, size_t len,
                   tern_tstamp now) {
  (void)in, (void)len, (void)now;
  user_probe *p = tern_socket_get_user_data(s);
  p->mixed |= p->user != user;
  p->reads++;
  up_reads++;
  return 0;
}

static tern_ssize up_pull(void *user, tern_socket *s, uint8_t *out,
                          size_t cap, tern_tstamp now) {
  (void)out, (void)cap, (void)now;
  user_probe *p = tern_socket_get_user_data(s);
  p->mixed |= p->user != user;
  return 0;
}

static user_probe closed_probes[32];

static void up_close(void *user, tern_socket *s) {
  user_probe *p = tern_socket_get_user_data(s);
  p->mixed |= p->user != user;
  if (nclosed < 32) {
    closed_probes[nclosed++] = *p;
  }
  free(p);
}

static const tern_socket_handler user_proto = {
    TERN_SOCKET_HANDLER_VERSION, up_open, up_read, up_pull, up_close};

static int reads_reach(void *arg) { return up_reads >= *(int *)arg; }

static int closes_reach(void *arg) { return nclosed >= *(int *)arg; }

static void test_users(void) {
  tern_hub *hub;
  tern_driver *d;
  CHECK_EQ(tern_epoll_new(&ep), 0, "loop");
  CHECK_EQ(tern_hub_new(&hub, NULL, NULL), 0, "hub");
  CHECK_EQ(tern_driver_new(&d, hub, tern_epoll_methods(), ep, NULL), 0,
           "driver");
  /* Sockets 0-9 each with a user of their own (more than the driver looks
     back over for one to share), 10-19 two by two with the same one, and
     a listener with the first of those. */
  static int users[15];
  uint16_t port;
  CHECK_EQ(tern_driver_listen(d, "127.0.0.1", 0, &user_proto, &users[10],
                              &port),
           0, "listen");
  tern_socket *ss[20];
  int peers[20];
  int adopted = 0;
  for (int i = 0; i < 20; ++i) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    void *user = i < 10 ? &users[i] : &users[10 + (i - 10) / 2];
    adopted += tern_driver_adopt(d, sv[0], &user_proto, user, &ss[i]) == 0;
    peers[i] = sv[1];
  }
  CHECK_EQ(adopted, 20, "20 sockets adopted");
  for (int i = 0; i < 20; ++i) {
    send_all(peers[i], "x");
  }
  int want = 20;
  spin(reads_reach, &want, 2000);
  int right = 0;
  for (int i = 0; i < 20; ++i) {
    user_probe *p = tern_socket_get_user_data(ss[i]);
    right += p->reads > 0 && !p->mixed &&
             p->user == (i < 10 ? &users[i] : &users[10 + (i - 10) / 2]);
  }
  CHECK_EQ(right, 20, "each socket's methods get its own user");
  int lfd = client_connect(port, 0);
  send_all(lfd, "x");
  want = 21;
  spin(reads_reach, &want, 2000);
  close(peers[3]);
  close(peers[12]);
  want = 2;
  spin(closes_reach, &want, 2000);
  CHECK(nclosed == 2 && !closed_probes[0].mixed && !closed_probes[1].mixed,
        "a closed peer's socket gets its close call with its user");
  tern_driver_del(d);
  int mixed = 0, accepted = 0;
  for (int i = 0; i < nclosed; ++i) {
    mixed += closed_probes[i].mixed;
    accepted += closed_probes[i].user == &users[10] &&
                closed_probes[i].reads > 0;
  }
  CHECK(nclosed == 21 && mixed == 0,
        "tern_driver_del closes the 19 others with their users (%d)",
        nclosed);
  CHECK_EQ(accepted, 3, "the accepted one got its listener's user, as did "
                        "the two adopted with it");
  for (int i = 0; i < 20; ++i) {
    if (i != 3 && i != 12) {
      close(peers[i]);
    }
  }
  close(lfd);
  tern_hub_del(hub);
  tern_epoll_del(ep);
}

/* ---- a socket that asks to write again and again, then ends ---- */

/* Its pull asks for another service every time and says it is done at
   the |limit|th: for one limit that is in the last pass the driver makes
   before it leaves the rest to the next turn, and the socket is closed
   while it waits on the dirty list. */
static int restless_closes;

static int rs_open(void *user, tern_socket *s, tern_tstamp now) {
  (void)now;
  tern_socket_set_user_data(s, calloc(1, sizeof(int)));
  (void)user;
  return 0;
}

static int rs_read(void *user, tern_socket *s, const uint8_t *in, size_t len,
                   tern_tstamp now) {
  (void)user, (void)s, (void)in, (void)len, (void)now;
  return 0;
}

static tern_ssize rs_pull(void *user, tern_socket *s, uint8_t *out,
                          size_t cap, tern_tstamp now) {
  (void)out, (void)cap, (void)now;
  int *pulls = tern_socket_get_user_data(s);
  tern_socket_want_write(s);
  return ++*pulls >= *(int *)user ? TERN_ERR_CLOSED : 0;
}

static void rs_close(void *user, tern_socket *s) {
  (void)user;
  free(tern_socket_get_user_data(s));
  restless_closes++;
}

static const tern_socket_handler restless = {
    TERN_SOCKET_HANDLER_VERSION, rs_open, rs_read, rs_pull, rs_close};

static void test_restless(void) {
  tern_hub *hub;
  tern_driver *d;
  CHECK_EQ(tern_epoll_new(&ep), 0, "loop");
  CHECK_EQ(tern_hub_new(&hub, NULL, NULL), 0, "hub");
  CHECK_EQ(tern_driver_new(&d, hub, tern_epoll_methods(), ep, NULL), 0,
           "driver");
  static int limits[40];
  int peers[40];
  for (int i = 0; i < 40; ++i) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    limits[i] = i + 1;
    (void)tern_driver_adopt(d, sv[0], &restless, &limits[i], NULL);
    peers[i] = sv[1];
    tern_driver_process(d); /* walks the dirty list the last pass left */
    spin(NULL, NULL, 2);
  }
  tern_driver_stats st;
  tern_driver_get_stats(d, &st, sizeof(st));
  CHECK(restless_closes == 40 && st.sockets == 0,
        "each socket ends at its limit, in whichever pass (%d)",
        restless_closes);
  tern_driver_del(d);
  for (int i = 0; i < 40; ++i) {
    close(peers[i]);
  }
  tern_hub_del(hub);
  tern_epoll_del(ep);
}

/* ---- the epoll loop with many handles, deleted in their batch ---- */

#define MANY_IOS 400

static struct {
  int fds[MANY_IOS];
  void *io[MANY_IOS];
  int calls[MANY_IOS];
  int deleted_peer_called;
} mi;

static void many_cb(void *arg, unsigned events) {
  int i = (int)(intptr_t)arg;
  (void)events;
  mi.calls[i]++;
  uint64_t v;
  if (read(mi.fds[i], &v, sizeof(v)) < 0) {
    return;
  }
  /* The even ones delete their odd neighbour: its event of this batch, if
     any, must not be delivered. */
  if (i % 2 == 0 && mi.io[i + 1]) {
    tern_epoll_methods()->io_del(ep, mi.io[i + 1]);
    mi.io[i + 1] = NULL;
  } else if (i % 2 == 1 && !mi.io[i]) {
    mi.deleted_peer_called++;
  }
}

static void test_many_ios(void) {
  const tern_loop_methods *m = tern_epoll_methods();
  CHECK_EQ(tern_epoll_new(&ep), 0, "loop");
  int added = 0;
  for (int i = 0; i < MANY_IOS; ++i) {
    mi.fds[i] = eventfd(0, EFD_NONBLOCK);
    added += m->io_add(ep, &mi.io[i], mi.fds[i], TERN_IO_READ, many_cb,
                       (void *)(intptr_t)i) == 0;
  }
  CHECK_EQ(added, MANY_IOS, "%d handles on one loop", MANY_IOS);
  uint64_t one = 1;
  for (int i = 0; i < MANY_IOS; ++i) {
    if (write(mi.fds[i], &one, sizeof(one)) != sizeof(one)) {
      BAILOUT("eventfd write");
    }
  }
  for (int turn = 0; turn < 50; ++turn) {
    tern_epoll_run_once(ep, 0);
  }
  int evens = 0, odds_late = 0;
  for (int i = 0; i < MANY_IOS; i += 2) {
    evens += mi.calls[i] == 1;
    odds_late += mi.calls[i + 1] > 1;
  }
  CHECK_EQ(evens, MANY_IOS / 2, "each ready handle is called once");
  CHECK(mi.deleted_peer_called == 0 && odds_late == 0,
        "a handle deleted in a batch is not called after");
  /* Every other handle is gone; the rest go too, then new ones take the
     freed places and are served. */
  for (int i = 0; i < MANY_IOS; ++i) {
    if (mi.io[i]) {
      m->io_del(ep, mi.io[i]);
      mi.io[i] = NULL;
    }
  }
  tern_epoll_run_once(ep, 0);
  memset(mi.calls, 0, sizeof(mi.calls));
  added = 0;
  for (int i = 0; i < MANY_IOS; i += 2) {
    added += m->io_add(ep, &mi.io[i], mi.fds[i], TERN_IO_READ, many_cb,
                       (void *)(intptr_t)i) == 0;
    if (write(mi.fds[i], &one, sizeof(one)) != sizeof(one)) {
      BAILOUT("eventfd write");
    }
  }
  for (int turn = 0; turn < 20; ++turn) {
    tern_epoll_run_once(ep, 0);
  }
  evens = 0;
  for (int i = 0; i < MANY_IOS; i += 2) {
    evens += mi.calls[i] == 1;
  }
  CHECK(added == MANY_IOS / 2 && evens == MANY_IOS / 2,
        "handles added again after all went are served");
  /* Deleted in the loop's absence: freed by tern_epoll_del. */
  for (int i = 0; i < MANY_IOS; i += 2) {
    m->io_del(ep, mi.io[i]);
  }
  tern_epoll_del(ep);
  for (int i = 0; i < MANY_IOS; ++i) {
    close(mi.fds[i]);
  }
}

/* ---- the file store's sync thread, completing into the loop ---- */

static struct {
  int persisted, failed;
} ps;

static void count_persisted(void *ud, tern_driver *d, const tern_event *ev) {
  (void)ud;
  (void)d;
  if (ev->type == TERN_EV_PERSISTED) {
    ps.persisted++;
    ps.failed += ev->reason != 0;
  }
}

static int all_persisted(void *arg) { return ps.persisted >= *(int *)arg; }

static void publish_sync(tern_hub *hub, int from, int n) {
  for (int i = from; i < from + n; ++i) {
    char id[16];
    snprintf(id, sizeof(id), "p%d", i);
    tern_msg_desc desc;
    memset(&desc, 0, sizeof(desc));
    desc.id = (const uint8_t *)id;
    desc.idlen = strlen(id);
    desc.payload = (const uint8_t *)id;
    desc.payloadlen = strlen(id);
    desc.flags = TERN_MSG_SYNC;
    if (tern_hub_publish(hub, (const uint8_t *)"s", 1, &desc, tern_posix_now(),
                         NULL) != 0) {
      BAILOUT("publish");
    }
  }
}

static void test_store_watch(void) {
  char *dir = su_tmpdir("posix-store");
  tern_store_file_options so;
  tern_store_file_options_default(&so);
  so.sync_thread = 1;
  tern_store_file *store;
  CHECK_EQ(tern_store_file_open(&store, dir, &so, NULL), 0,
           "a file store with a sync thread");
  tern_hub *hub;
  tern_hub_new(&hub, NULL, NULL);
  CHECK_EQ(tern_hub_set_store(hub, tern_store_file_methods(), store,
                              tern_posix_now()),
           0, "attached to the hub");
  tern_driver_options o;
  tern_driver_options_default(&o);
  o.on_event = count_persisted;
  tern_driver *d;
  tern_epoll_new(&ep);
  tern_driver_new(&d, hub, tern_epoll_methods(), ep, &o);

  /* Not watched: the batches are durable but nobody hands them back. */
  publish_sync(hub, 0, 10);
  tern_driver_process(d);
  spin(NULL, NULL, 300);
  CHECK_EQ(ps.persisted, 0, "unwatched, no PERSISTED comes out of the loop");

  CHECK_EQ(tern_driver_watch_store(d, NULL), TERN_ERR_INVALID,
           "watch_store(NULL) is refused");
  CHECK_EQ(tern_driver_watch_store(d, store), 0, "tern_driver_watch_store");
  CHECK_EQ(tern_driver_watch_store(d, store), TERN_ERR_STATE,
           "a second watch is refused");
  int want = 10;
  int done = spin(all_persisted, &want, 5000);
  CHECK(done, "watched, the waiting batches complete from the loop (%d)",
        ps.persisted);
  publish_sync(hub, 10, 200);
  tern_driver_process(d);
  want = 210;
  done = spin(all_persisted, &want, 10000);
  CHECK(done && ps.persisted == 210,
        "200 more SYNC publishes are all confirmed (%d)", ps.persisted);
  CHECK_EQ(ps.failed, 0, "none failed");
  tern_stats hs;
  tern_hub_get_stats(hub, &hs, sizeof(hs));
  CHECK_EQ(hs.messages, 210, "the hub holds them");

  tern_driver_del(d);
  tern_hub_del(hub);
  tern_store_file_close(store);
  tern_epoll_del(ep);

  /* A store without a sync thread has no descriptor: nothing to watch. */
  tern_store_file_options_default(&so);
  CHECK_EQ(tern_store_file_open(&store, dir, &so, NULL), 0, "reopened inline");
  tern_hub_new(&hub, NULL, NULL);
  tern_hub_set_store(hub, tern_store_file_methods(), store, tern_posix_now());
  tern_epoll_new(&ep);
  tern_driver_new(&d, hub, tern_epoll_methods(), ep, NULL);
  CHECK_EQ(tern_driver_watch_store(d, store), 0,
           "watching an inline store is a no-op");
  tern_stats rs;
  tern_hub_get_stats(hub, &rs, sizeof(rs));
  CHECK_EQ(rs.messages, 210, "and the 210 confirmed messages were restored");
  tern_driver_del(d);
  tern_hub_del(hub);
  tern_store_file_close(store);
  tern_epoll_del(ep);
  su_rmtree(dir);
  free(dir);
}

/* ---- allocation failures ---- */

/* One run of a driver with an allocator that fails its |fail_at|th call:
   a listener, a binary receiver that says HELLO and reads slowly, messages
   published through an inbox, a host socket.  Returns the calls made. */
typedef struct nomem_run {
  long calls, failed, leaked, bad, corrupted;
  int bad_rc; /* an error other than TERN_ERR_NOMEM came back */
  int got;    /* messages the receiver got */
} nomem_run;

static int ok_or_nomem(int rc) { return rc == 0 || rc == TERN_ERR_NOMEM; }

static nomem_run nomem_once(long fail_at) {
  nomem_run r;
  memset(&r, 0, sizeof(r));
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  a.fail_at = fail_at;
  tern_mem mem = tu_alloc_mem(&a);
  tern_hub *hub;
  tern_hub_new(&hub, NULL, NULL); /* the hub's own allocator: libc */
  tern_epoll_new(&ep);
  tern_driver_options o;
  tern_driver_options_default(&o);
  o.mem = &mem;
  o.out_cap = 2048;
  tern_driver *d = NULL;
  tern_inbox *in = NULL;
  uint16_t port = 0, hport = 0;
  int rc = tern_driver_new(&d, hub, tern_epoll_methods(), ep, &o);
  r.bad_rc |= !ok_or_nomem(rc);
  if (rc == 0) {
    rc = tern_driver_listen(d, "127.0.0.1", 0, NULL, NULL, &port);
    r.bad_rc |= !ok_or_nomem(rc);
  }
  if (rc == 0) {
    rc = tern_driver_listen(d, "127.0.0.1", 0, &line_proto, NULL, &hport);
    r.bad_rc |= !ok_or_nomem(rc);
  }
  if (rc == 0) {
    rc = tern_inbox_new(&in, d, NULL, NULL);
    r.bad_rc |= !ok_or_nomem(rc);
  }
  if (rc == 0) {
    int fd = client_connect(port, 4096);
    int hfd = client_connect(hport, 0);
    tern_tstamp now = tern_posix_now();
    tern_client *c;
    tern_client_new(&c, (const uint8_t *)"r", 1, NULL, 0, NULL, NULL, now);
    tern_client_connect(c, now);
    static uint8_t payload[1500];
    memset(payload, 'q', sizeof(payload));
    for (int i = 0; i < 20; ++i) {
      tern_msg_desc desc;
      memset(&desc, 0, sizeof(desc));
      desc.payload = payload;
      desc.payloadlen = sizeof(payload);
      r.bad_rc |= !ok_or_nomem(
          tern_inbox_publish(in, (const uint8_t *)"r", 1, &desc));
    }
    send_all(hfd, "echo a\n");
    tern_tstamp end = now + 300 * TERN_MILLISECONDS;
    while ((now = tern_posix_now()) < end && r.got < 20) {
      uint8_t buf[8192];
      tern_ssize n;
      while ((n = tern_client_write(c, buf, sizeof(buf), now)) > 0) {
        if (write(fd, buf, (size_t)n) != n) {
          break;
        }
      }
      tern_epoll_run_once(ep, TERN_MILLISECONDS);
      ssize_t got = read(fd, buf, 1024); /* slowly: the socket fills */
      if (got > 0) {
        tern_client_read(c, buf, (size_t)got, now);
      }
      tern_client_event ev;
      while (tern_client_next_event(c, &ev) == 1) {
        r.got += ev.type == TERN_CLIENT_EV_MESSAGE;
      }
    }
    tern_client_del(c);
    close(fd);
    close(hfd);
  }
  tern_inbox_del(in);
  tern_driver_del(d);
  tern_hub_del(hub);
  tern_epoll_del(ep);
  r.calls = a.calls;
  r.failed = a.failed;
  r.leaked = a.outstanding;
  r.bad = a.bad_frees;
  r.corrupted = tu_alloc_finish(&a);
  return r;
}

static void test_nomem(void) {
  nomem_run clean = nomem_once(0);
  CHECK(clean.calls > 5 && clean.leaked == 0 && clean.got == 20 && !clean.bad_rc,
        "with no failure every allocation goes through the driver's "
        "allocator (%ld calls) and every message arrives",
        clean.calls);
  long worst_leak = 0, bad = 0, bad_rc = 0, corrupted = 0, runs = 0;
  for (long k = 1; k <= clean.calls + 5; ++k) {
    nomem_run r = nomem_once(k);
    ++runs;
    worst_leak = r.leaked > worst_leak ? r.leaked : worst_leak;
    bad += r.bad;
    bad_rc += r.bad_rc;
    corrupted += r.corrupted;
    if (r.failed == 0) {
      break; /* past the last allocation */
    }
  }
  CHECK(runs >= clean.calls, "failed each of the %ld allocations in turn",
        clean.calls);
  CHECK_EQ(worst_leak, 0, "no failure leaks a block");
  CHECK_EQ(bad + corrupted, 0, "no bad free, no write after free");
  CHECK_EQ(bad_rc, 0, "every failing call returned TERN_ERR_NOMEM");

  /* An incomplete allocator is refused. */
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  mem.realloc = NULL;
  tern_hub *hub;
  tern_hub_new(&hub, NULL, NULL);
  tern_epoll_new(&ep);
  tern_driver_options o;
  tern_driver_options_default(&o);
  o.mem = &mem;
  tern_driver *d = NULL;
  CHECK_EQ(tern_driver_new(&d, hub, tern_epoll_methods(), ep, &o),
           TERN_ERR_INVALID, "a tern_mem with a function missing is refused");
  /* A caller of layout V1 has no |mem|: whatever follows is not read. */
  struct {
    tern_driver_options v1;
    char guard[sizeof(void *)];
  } old;
  memset(&old, 0xff, sizeof(old));
  tern_driver_options_default_versioned(TERN_DRIVER_OPTIONS_V1, &old.v1);
  CHECK(old.v1.version == TERN_DRIVER_OPTIONS_V1 &&
            ((unsigned char *)&old)[offsetof(tern_driver_options, mem)] == 0xff,
        "V1 defaults write nothing past the V1 layout");
  CHECK_EQ(tern_driver_new(&d, hub, tern_epoll_methods(), ep, &old.v1), 0,
           "a V1 caller's options are taken (garbage where mem would be)");
  tern_driver_del(d);
  tern_hub_del(hub);
  tern_epoll_del(ep);
  CHECK_EQ(a.calls, 0, "the refused allocator was never called");
}

/* Workers route their own allocations and their hubs' through the driver
   options' allocator. */
static void test_workers_mem(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_driver_options dopt;
  tern_driver_options_default(&dopt);
  dopt.mem = &mem;
  tern_workers_options o;
  tern_workers_options_default(&o);
  o.nthreads = 2;
  o.driver = &dopt;
  tern_workers *w;
  CHECK_EQ(tern_workers_new(&w, &o), 0, "workers with an allocator");
  long calls = a.calls;
  CHECK(calls > 4 && a.outstanding > 0,
        "workers, their drivers and hubs allocate through it (%ld calls)",
        calls);
  tern_workers_del(w);
  CHECK_EQ(a.outstanding, 0, "and free everything through it");
  long failures = 0, leaks = 0, bad_rc = 0;
  for (long k = 1; k <= calls; ++k) {
    tu_alloc_finish(&a);
    memset(&a, 0, sizeof(a));
    a.fail_at = k;
    int rc = tern_workers_new(&w, &o);
    if (rc == 0) {
      tern_workers_del(w);
    } else {
      failures++;
      bad_rc += rc != TERN_ERR_NOMEM;
    }
    leaks += a.outstanding;
  }
  CHECK_EQ(failures, calls, "each failing allocation fails tern_workers_new");
  CHECK_EQ(bad_rc, 0, "with TERN_ERR_NOMEM");
  CHECK_EQ(leaks, 0, "leaving nothing allocated");
  tu_alloc_finish(&a);
}

int main(void) {
  test_handler();
  test_users();
  test_many_ios();
  test_restless();
  test_store_watch();
  test_nomem();
  test_workers_mem();
  return tap_done();
}
