/*
 * sse_load: K SSE subscribers held on a server for S seconds, with the
 * server's RSS sampled all along (issue 10).
 *
 * It starts a server (ternd by default, or --server CMD with {http} for
 * the port), or uses one running (--target HOST:PORT --pid PID); raises
 * its descriptor limit (the server inherits it); opens K connections to
 * GET /stream?session=KEY, one session each, at most a few hundred
 * connecting at a time; then holds them for S seconds while a publisher
 * trickles --rate messages a second (HTTP POST /publish on a keep-alive
 * connection) to every tenth session in turn, the messages are acked
 * (POST /ack) as a browser's code would, and the server's heartbeats
 * flow.  Every few seconds it reads the server's VmRSS from
 * /proc/PID/status.  At the end it prints the samples, the bytes per
 * connection (the RSS once all are connected, over the RSS before), the
 * drift over the hold (max - min), and whether every connection stayed
 * open and received every message published to its session.  Exit 0
 * when they did, 1 when not, 2 on bad arguments.
 *
 *   sse_load [-k 10000] [--seconds 60] [--rate 100] [--sample 5]
 *            [--server 'CMD {http}' | --target HOST:PORT [--pid PID]]
 *
 * One epoll thread for every socket.  Not a test: the 10,000 x 60 s run
 * is the benchmark; meson registers a small one as the test sse_load.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

/* Connections in progress at once: the server's listen backlog is 511. */
#define CONNECTING_MAX 256
/* Every SUBSET-th session gets messages. */
#define SUBSET 10
#define MAX_SAMPLES 4096

enum { S_IDLE, S_CONNECTING, S_HEAD, S_STREAM, S_DEAD };

typedef struct sub {
  int fd;
  uint8_t state;
  uint8_t in_msg;          /* the current event is "msg"                  */
  uint16_t plen;           /* bytes of an unfinished line in |partial|    */
  char *partial;
  uint32_t expected;       /* publishes to its session the server took     */
  uint32_t received;       /* "msg" events                                */
  uint32_t heartbeats;     /* ":" comments                                */
  uint64_t last_seq, acked_seq;
} sub;

/* One keep-alive connection for the publishes and the acks, one request
   at a time. */
typedef struct api {
  int fd;
  int busy;                /* a request is out, its answer not yet in      */
  uint32_t target;         /* the session index of a publish; UINT32_MAX:
                              an ack                                       */
  char in[8192];
  size_t inlen;
  uint64_t sent, ok, failed;
} api;

typedef struct sample {
  double t;
  long rss_kb;
  uint32_t open;
} sample;

typedef struct bench {
  struct sockaddr_in addr;
  char host[64];
  uint16_t port;
  pid_t pid;
  uint32_t k;
  double seconds, rate, sample_every;
  int ep;
  sub *subs;
  uint32_t next_connect, connecting, open, failed_connects, closed;
  api pub;
  uint32_t *ack_queue;     /* sessions with an ack to send                */
  uint32_t ack_len;
  uint64_t published, delivered, heartbeats, bad;
  sample samples[MAX_SAMPLES];
  uint32_t nsamples;
  char note[256];
} bench;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note(bench *b, const char *what) {
  if (!b->note[0]) {
    snprintf(b->note, sizeof(b->note), "%s", what);
  }
}

static int tcp_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return fd;
}

static void key_of(const bench *b, uint32_t i, char *out, size_t cap) {
  snprintf(out, cap, "sl-%d-%u", (int)getpid() % 100000, i);
  (void)b;
}

/* ---- subscribers ------------------------------------------------------------ */

static void sub_close(bench *b, sub *s, int counted) {
  if (s->fd >= 0) {
    epoll_ctl(b->ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
  }
  if (counted) {
    if (s->state == S_STREAM) {
      b->open--;
      b->closed++;
    } else if (s->state == S_CONNECTING || s->state == S_HEAD) {
      b->connecting--;
      b->failed_connects++;
    }
  }
  s->state = S_DEAD;
  free(s->partial);
  s->partial = NULL;
  s->plen = 0;
}

static void sub_start(bench *b, uint32_t i) {
  sub *s = &b->subs[i];
  s->fd = tcp_socket();
  if (s->fd < 0) {
    s->state = S_DEAD;
    b->failed_connects++;
    note(b, "socket() failed: the descriptor limit?");
    return;
  }
  s->state = S_CONNECTING;
  b->connecting++;
  if (connect(s->fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) != 0 &&
      errno != EINPROGRESS) {
    sub_close(b, s, 1);
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = i};
  epoll_ctl(b->ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void sub_send_request(bench *b, uint32_t i) {
  sub *s = &b->subs[i];
  char key[32], req[256];
  key_of(b, i, key, sizeof(key));
  int n = snprintf(req, sizeof(req),
                   "GET /stream?session=%s HTTP/1.1\r\nHost: %s\r\n"
                   "Accept: text/event-stream\r\n\r\n",
                   key, b->host);
  /* A fresh socket takes 200 bytes whole. */
  if (write(s->fd, req, (size_t)n) != n) {
    sub_close(b, s, 1);
    return;
  }
  s->state = S_HEAD;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = i};
  epoll_ctl(b->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static uint64_t parse_u64(const char *p, const char *end) {
  uint64_t v = 0;
  while (p < end && *p >= '0' && *p <= '9') {
    v = v * 10 + (uint64_t)(*p++ - '0');
  }
  return v;
}

/* One line of the answer's head or of the event stream, without its end. */
static void sub_line(bench *b, uint32_t i, const char *p, size_t n) {
  sub *s = &b->subs[i];
  if (s->state == S_HEAD) {
    if (n >= 12 && memcmp(p, "HTTP/1.", 7) == 0) {
      if (memcmp(p + 9, "200", 3) != 0) {
        note(b, "GET /stream was not answered 200");
        sub_close(b, s, 1);
      }
    } else if (n == 0) {
      s->state = S_STREAM;
      b->connecting--;
      b->open++;
    }
    return;
  }
  if (n == 0) {
    s->in_msg = 0;
    return;
  }
  if (p[0] == ':') {
    s->heartbeats++;
    b->heartbeats++;
    return;
  }
  if (n >= 6 && memcmp(p, "event:", 6) == 0) {
    const char *v = p + 6;
    size_t vl = n - 6;
    if (vl && *v == ' ') {
      v++, vl--;
    }
    s->in_msg = vl == 3 && memcmp(v, "msg", 3) == 0;
    if (vl == 6 && memcmp(v, "goaway", 6) == 0) {
      note(b, "a stream got goaway");
    }
    return;
  }
  if (s->in_msg && n > 5 && memcmp(p, "data:", 5) == 0) {
    const char *seq = memmem(p, n, "\"seq\":", 6);
    if (!seq) {
      b->bad++;
      return;
    }
    uint64_t v = parse_u64(seq + 6, p + n);
    s->received++;
    b->delivered++;
    if (v > s->last_seq) {
      if (s->last_seq == s->acked_seq) {
        b->ack_queue[b->ack_len++] = i; /* once per pending ack */
      }
      s->last_seq = v;
    }
  }
}

static void sub_read(bench *b, uint32_t i, char *buf, size_t cap) {
  sub *s = &b->subs[i];
  for (;;) {
    size_t have = s->plen;
    if (have) {
      memcpy(buf, s->partial, have);
    }
    ssize_t r = read(s->fd, buf + have, cap - have);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    if (r <= 0) {
      if (s->state == S_STREAM) {
        note(b, "the server closed a stream");
      }
      sub_close(b, s, 1);
      return;
    }
    size_t len = have + (size_t)r, used = 0;
    while (s->state == S_HEAD || s->state == S_STREAM) {
      char *nl = memchr(buf + used, '\n', len - used);
      if (!nl) {
        break;
      }
      size_t end = (size_t)(nl - buf);
      size_t ln = end - used;
      if (ln && buf[end - 1] == '\r') {
        ln--;
      }
      sub_line(b, i, buf + used, ln);
      used = end + 1;
    }
    if (s->state == S_DEAD) {
      return;
    }
    size_t rest = len - used;
    if (rest > 60000) {
      note(b, "a line longer than 60000 bytes");
      sub_close(b, s, 1);
      return;
    }
    if (rest > s->plen || !s->partial) {
      char *np = realloc(s->partial, rest ? rest : 1);
      if (!np) {
        sub_close(b, s, 1);
        return;
      }
      s->partial = np;
    }
    memcpy(s->partial, buf + used, rest);
    s->plen = (uint16_t)rest;
    if (!rest) {
      free(s->partial); /* an idle subscriber holds nothing here either */
      s->partial = NULL;
    }
  }
}

/* ---- the publisher and acker ------------------------------------------------- */

#define API_TAG UINT64_MAX

static int api_open(bench *b) {
  api *a = &b->pub;
  a->fd = tcp_socket();
  if (a->fd < 0) {
    return -1;
  }
  int fl = fcntl(a->fd, F_GETFL);
  fcntl(a->fd, F_SETFL, fl & ~O_NONBLOCK); /* connect blocking, then not */
  if (connect(a->fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) != 0) {
    close(a->fd);
    a->fd = -1;
    return -1;
  }
  fcntl(a->fd, F_SETFL, fl | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = API_TAG};
  epoll_ctl(b->ep, EPOLL_CTL_ADD, a->fd, &ev);
  return 0;
}

static void api_send(bench *b, const char *method, const char *target,
                     const char *body, uint32_t who) {
  api *a = &b->pub;
  char req[512];
  size_t bl = body ? strlen(body) : 0;
  int n = snprintf(req, sizeof(req),
                   "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n\r\n"
                   "%s",
                   method, target, b->host, bl, body ? body : "");
  if (n <= 0 || (size_t)n >= sizeof(req) || write(a->fd, req, (size_t)n) != n) {
    note(b, "the API connection refused a request");
    a->failed++;
    return;
  }
  a->busy = 1;
  a->target = who;
  a->sent++;
}

static void publish_next(bench *b, uint64_t nth) {
  uint32_t nsubset = (b->k + SUBSET - 1) / SUBSET;
  uint32_t i = (uint32_t)(nth % nsubset) * SUBSET;
  char key[32], target[96], body[64];
  key_of(b, i, key, sizeof(key));
  snprintf(target, sizeof(target), "/publish?session=%s", key);
  snprintf(body, sizeof(body), "m%llu", (unsigned long long)nth);
  api_send(b, "POST", target, body, i);
}

static void ack_next(bench *b) {
  uint32_t i = b->ack_queue[--b->ack_len];
  sub *s = &b->subs[i];
  char key[32], target[128];
  key_of(b, i, key, sizeof(key));
  snprintf(target, sizeof(target), "/ack?session=%s&seq=%llu", key,
           (unsigned long long)s->last_seq);
  s->acked_seq = s->last_seq;
  api_send(b, "POST", target, NULL, UINT32_MAX);
}

/* Takes the answer to the request that is out, when it is all in. */
static void api_read(bench *b) {
  api *a = &b->pub;
  for (;;) {
    ssize_t r = read(a->fd, a->in + a->inlen, sizeof(a->in) - a->inlen);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    if (r <= 0) {
      note(b, "the server closed the API connection");
      epoll_ctl(b->ep, EPOLL_CTL_DEL, a->fd, NULL);
      close(a->fd);
      a->fd = -1;
      a->busy = 0;
      return;
    }
    a->inlen += (size_t)r;
  }
  while (a->busy) {
    char *end = memmem(a->in, a->inlen, "\r\n\r\n", 4);
    if (!end) {
      return;
    }
    size_t head = (size_t)(end - a->in) + 4, body = 0;
    for (char *p = a->in; p < end; ++p) {
      if (*p == '\n' && strncasecmp(p + 1, "Content-Length:", 15) == 0) {
        body = (size_t)strtoul(p + 16, NULL, 10);
      }
    }
    if (a->inlen < head + body) {
      return;
    }
    int status = a->inlen >= 12 ? atoi(a->in + 9) : 0;
    if (status / 100 == 2) {
      a->ok++;
      if (a->target != UINT32_MAX) {
        b->subs[a->target].expected++;
        b->published++;
      }
    } else {
      a->failed++;
      note(b, "a publish or ack was refused");
    }
    memmove(a->in, a->in + head + body, a->inlen - head - body);
    a->inlen -= head + body;
    a->busy = 0;
  }
}

/* ---- the loop ------------------------------------------------------------------ */

static void take_sample(bench *b, double t0) {
  if (b->nsamples < MAX_SAMPLES) {
    sample *s = &b->samples[b->nsamples++];
    s->t = now_s() - t0;
    s->rss_kb = e2e_proc_rss(b->pid);
    s->open = b->open;
    printf("  t=%6.1f s  rss %8ld kB  open %u\n", s->t, s->rss_kb, s->open);
    fflush(stdout);
  }
}

/* One turn: up to |wait_ms| for readiness, then the work it brought. */
static void turn(bench *b, int wait_ms) {
  static char buf[65536];
  struct epoll_event evs[256];
  int n = epoll_wait(b->ep, evs, 256, wait_ms);
  for (int e = 0; e < n; ++e) {
    uint64_t tag = evs[e].data.u64;
    if (tag == API_TAG) {
      if (b->pub.fd >= 0) {
        api_read(b);
      }
      continue;
    }
    uint32_t i = (uint32_t)tag;
    sub *s = &b->subs[i];
    if (s->state == S_CONNECTING) {
      int err = 0;
      socklen_t el = sizeof(err);
      getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (err || (evs[e].events & (EPOLLERR | EPOLLHUP))) {
        note(b, "a connect failed");
        sub_close(b, s, 1);
      } else {
        sub_send_request(b, i);
      }
    } else if (s->state == S_HEAD || s->state == S_STREAM) {
      sub_read(b, i, buf, sizeof(buf));
    }
  }
  while (b->connecting < CONNECTING_MAX && b->next_connect < b->k) {
    sub_start(b, b->next_connect++);
  }
}

/* ---- the server ----------------------------------------------------------------- */

static pid_t start_server(const char *templ, uint16_t port) {
  char cmd[4096], num[16];
  snprintf(num, sizeof(num), "%u", port);
  size_t o = 0;
  for (const char *p = templ; *p && o + 16 < sizeof(cmd);) {
    if (strncmp(p, "{http}", 6) == 0) {
      o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "%s", num);
      p += 6;
    } else {
      cmd[o++] = *p++;
    }
  }
  cmd[o] = 0;
  printf("sse_load: server %s\n", cmd);
  fflush(stdout);
  char full[4200];
  snprintf(full, sizeof(full), "exec %s > /dev/null", cmd);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", full, (char *)NULL);
    _exit(127);
  }
  return pid;
}

static int wait_listening(const struct sockaddr_in *addr, double seconds) {
  double until = now_s() + seconds;
  while (now_s() < until) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
      close(fd);
      return 0;
    }
    if (fd >= 0) {
      close(fd);
    }
    usleep(20000);
  }
  return -1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: sse_load [-k N] [--seconds S] [--rate MSG_PER_S] "
          "[--sample S]\n"
          "                [--server 'CMD {http}' | --target HOST:PORT "
          "[--pid PID]]\n");
  return 2;
}

int main(int argc, char **argv) {
  static bench B;
  bench *b = &B;
  b->k = 10000;
  b->seconds = 60;
  b->rate = 100;
  b->sample_every = 0;
  b->pid = -1;
  b->pub.fd = -1;
  const char *server = NULL, *target = NULL;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      return usage();
    }
    ++i;
    if (strcmp(a, "-k") == 0) {
      b->k = (uint32_t)strtoul(v, NULL, 10);
    } else if (strcmp(a, "--seconds") == 0) {
      b->seconds = atof(v);
    } else if (strcmp(a, "--rate") == 0) {
      b->rate = atof(v);
    } else if (strcmp(a, "--sample") == 0) {
      b->sample_every = atof(v);
    } else if (strcmp(a, "--server") == 0) {
      server = v;
    } else if (strcmp(a, "--target") == 0) {
      target = v;
    } else if (strcmp(a, "--pid") == 0) {
      b->pid = (pid_t)atoi(v);
    } else {
      return usage();
    }
  }
  if (b->k == 0 || b->seconds <= 0 || b->rate < 0 || (server && target)) {
    return usage();
  }
  if (b->sample_every <= 0) {
    b->sample_every = b->seconds >= 30 ? 5 : b->seconds >= 6 ? 1 : 0.5;
  }
  signal(SIGPIPE, SIG_IGN);
  /* K sockets here and K in the server, which inherits the limit. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)b->k + 64) {
    fprintf(stderr, "sse_load: %u connections need %u descriptors; the limit "
            "is %llu\n", b->k, b->k + 64, (unsigned long long)rl.rlim_cur);
    return 1;
  }

  char templ[4096];
  snprintf(b->host, sizeof(b->host), "127.0.0.1");
  if (target) {
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof(b->host)) {
      return usage();
    }
    memcpy(b->host, target, (size_t)(colon - target));
    b->host[colon - target] = 0;
    b->port = (uint16_t)atoi(colon + 1);
  } else {
    if (server) {
      snprintf(templ, sizeof(templ), "%s", server);
    } else {
      char self[2048];
      ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      if (n <= 0) {
        return usage();
      }
      self[n] = 0;
      char *slash = strrchr(self, '/');
      if (slash) {
        *slash = 0;
      }
      snprintf(templ, sizeof(templ),
               "%s/../examples/ternd --no-store --threads 1 "
               "--listen 127.0.0.1:{http}",
               self);
    }
    if (!strstr(templ, "{http}")) {
      fprintf(stderr, "sse_load: --server needs {http} in it\n");
      return 2;
    }
    b->port = e2e_free_port();
  }
  b->addr.sin_family = AF_INET;
  b->addr.sin_port = htons(b->port);
  if (inet_pton(AF_INET, b->host, &b->addr.sin_addr) != 1) {
    fprintf(stderr, "sse_load: %s is not an IPv4 address\n", b->host);
    return 2;
  }
  pid_t child = -1;
  if (!target) {
    child = start_server(templ, b->port);
    b->pid = child;
  }
  if (child == 0 || wait_listening(&b->addr, 10) != 0) {
    fprintf(stderr, "sse_load: nothing listens on %s:%u\n", b->host, b->port);
    if (child > 0) {
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
    }
    return 1;
  }

  b->ep = epoll_create1(EPOLL_CLOEXEC);
  b->subs = calloc(b->k, sizeof(sub));
  b->ack_queue = calloc(b->k, sizeof(uint32_t));
  if (b->ep < 0 || !b->subs || !b->ack_queue) {
    fprintf(stderr, "sse_load: out of memory\n");
    return 1;
  }
  for (uint32_t i = 0; i < b->k; ++i) {
    b->subs[i].fd = -1;
  }
  uint32_t nsubset = (b->k + SUBSET - 1) / SUBSET;
  printf("sse_load: %u SSE subscribers on %s:%u for %.0f s; %.0f messages/s "
         "to %u of them (every %dth), acked; RSS every %.1f s\n",
         b->k, b->host, b->port, b->seconds, b->rate, nsubset, SUBSET,
         b->sample_every);
  usleep(200000); /* the server's start settles */
  long rss0 = b->pid > 0 ? e2e_proc_rss(b->pid) : -1;

  /* Connect them all. */
  double t0 = now_s();
  while ((b->open + b->failed_connects + b->closed < b->k) &&
         now_s() - t0 < 120) {
    turn(b, 10);
  }
  double t_connected = now_s() - t0;
  if (b->open < b->k) {
    note(b, "not every connection was opened");
  }
  /* Let the server settle what the connections made, then read its RSS. */
  double settle = now_s() + 0.5;
  while (now_s() < settle) {
    turn(b, 10);
  }
  long rss1 = b->pid > 0 ? e2e_proc_rss(b->pid) : -1;
  printf("connected %u of %u in %.2f s; server RSS %ld kB before, %ld kB "
         "after: %.0f bytes per connection\n",
         b->open, b->k, t_connected, rss0, rss1,
         rss0 >= 0 && rss1 >= 0 ? (double)(rss1 - rss0) * 1024.0 / b->k : -1.0);
  fflush(stdout);

  /* Hold them, publishing and acking. */
  if (api_open(b) != 0) {
    note(b, "no API connection");
  }
  double hold0 = now_s();
  double next_sample = hold0, next_pub = hold0;
  uint64_t nth = 0;
  take_sample(b, hold0);
  next_sample += b->sample_every;
  /* The publisher stops a second before the end, so that the last
     messages can arrive within the hold. */
  double pub_until = hold0 + (b->seconds > 2 ? b->seconds - 1 : b->seconds / 2);
  double end = hold0 + b->seconds;
  for (;;) {
    double t = now_s();
    if (t >= end) {
      break;
    }
    turn(b, 5);
    t = now_s();
    if (b->pub.fd >= 0 && !b->pub.busy) {
      if (b->ack_len > 0) {
        ack_next(b);
      } else if (b->rate > 0 && t < pub_until && t >= next_pub) {
        publish_next(b, nth++);
        next_pub += 1.0 / b->rate;
        if (next_pub < t - 1) {
          next_pub = t; /* fell behind: no burst to catch up */
        }
      }
    }
    if (t >= next_sample) {
      take_sample(b, hold0);
      next_sample += b->sample_every;
    }
  }
  take_sample(b, hold0);
  /* Messages still on their way: a little longer, without new ones. */
  double drain = now_s() + 3;
  while (now_s() < drain && (b->delivered < b->published || b->pub.busy)) {
    turn(b, 10);
  }

  /* The figures. */
  long lo = -1, hi = -1;
  for (uint32_t i = 0; i < b->nsamples; ++i) {
    long r = b->samples[i].rss_kb;
    if (r < 0) {
      continue;
    }
    lo = lo < 0 || r < lo ? r : lo;
    hi = hi < 0 || r > hi ? r : hi;
  }
  uint32_t missing = 0, extra = 0, with_hb = 0;
  for (uint32_t i = 0; i < b->k; ++i) {
    const sub *s = &b->subs[i];
    missing += s->received < s->expected;
    extra += s->received > s->expected;
    with_hb += s->heartbeats > 0;
  }
  int all_open = b->open == b->k && b->closed == 0;
  int all_received = missing == 0 && extra == 0 && b->bad == 0;
  printf("server RSS over the hold: min %ld kB, max %ld kB, drift (max - min) "
         "%ld kB = %.1f bytes per connection; %.0f bytes per connection at "
         "the end\n",
         lo, hi, hi - lo, (double)(hi - lo) * 1024.0 / b->k,
         rss0 >= 0 && b->nsamples ? (double)(b->samples[b->nsamples - 1].rss_kb -
                                             rss0) * 1024.0 / b->k
                                   : -1.0);
  printf("published %llu (refused %llu), received %llu; heartbeats %llu "
         "(%u connections got one)\n",
         (unsigned long long)b->published, (unsigned long long)b->pub.failed,
         (unsigned long long)b->delivered, (unsigned long long)b->heartbeats,
         with_hb);
  printf("every connection stayed open: %s (%u open, %u closed, %u failed "
         "to open)\n",
         all_open ? "yes" : "NO", b->open, b->closed, b->failed_connects);
  printf("every connection received what was published to it: %s "
         "(%u short, %u over, %llu unreadable)\n",
         all_received ? "yes" : "NO", missing, extra,
         (unsigned long long)b->bad);
  int ok = all_open && all_received && b->pub.failed == 0 &&
           (b->rate == 0 || b->published > 0);
  printf("result: %s%s%s\n", ok ? "ok" : "FAIL", b->note[0] ? "; first note: " : "",
         b->note);

  for (uint32_t i = 0; i < b->k; ++i) {
    sub_close(b, &b->subs[i], 0);
  }
  if (b->pub.fd >= 0) {
    close(b->pub.fd);
  }
  if (child > 0) {
    kill(child, SIGTERM);
    int st = 0;
    waitpid(child, &st, 0);
  }
  free(b->subs);
  free(b->ack_queue);
  close(b->ep);
  return ok ? 0 : 1;
}
