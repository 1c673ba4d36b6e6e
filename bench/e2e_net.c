/*
 * bench/e2e's helpers: buffers, the latency histogram, sockets, a minimal
 * HTTP/1.1 response reader, the payload format, /proc counters.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

uint64_t e2e_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- buffers ----------------------------------------------------------- */

uint8_t *e2e_buf_room(e2e_buf *b, size_t n) {
  if (b->off > 0 && b->off == b->len) {
    b->off = b->len = 0;
  }
  if (b->len + n > b->cap && b->off > 0) {
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) {
      cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
      return NULL;
    }
    b->data = d;
    b->cap = cap;
  }
  return b->data + b->len;
}

int e2e_buf_put(e2e_buf *b, const void *p, size_t n) {
  uint8_t *at = e2e_buf_room(b, n);
  if (!at) {
    return -1;
  }
  memcpy(at, p, n);
  b->len += n;
  return 0;
}

void e2e_buf_consume(e2e_buf *b, size_t n) {
  b->off += n;
  if (b->off == b->len) {
    b->off = b->len = 0;
  }
}

void e2e_buf_free(e2e_buf *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

/* ---- histogram --------------------------------------------------------- */

/* Values below 64 have a bucket each; above, a power of two 2^e is cut in
   64 buckets, so a bucket is at most 1/64 (1.6 %) wide. */
static size_t hist_index(uint64_t v) {
  if (v < 64) {
    return (size_t)v;
  }
  int e = 63 - __builtin_clzll(v);
  return (size_t)(e - 5) * 64 + (size_t)((v >> (e - 6)) & 63);
}

static uint64_t hist_value(size_t i) {
  if (i < 64) {
    return i;
  }
  int e = (int)(i / 64) + 5;
  uint64_t sub = i % 64;
  return (64 + sub) << (e - 6);
}

void e2e_hist_add(e2e_hist *h, uint64_t ns) {
  h->count[hist_index(ns)]++;
  h->total++;
}

uint64_t e2e_hist_quantile(const e2e_hist *h, double q) {
  if (h->total == 0) {
    return 0;
  }
  uint64_t want = (uint64_t)(q * (double)h->total);
  if (want < 1) {
    want = 1;
  }
  uint64_t seen = 0;
  for (size_t i = 0; i < E2E_HIST_BUCKETS; ++i) {
    seen += h->count[i];
    if (seen >= want) {
      return hist_value(i);
    }
  }
  return hist_value(E2E_HIST_BUCKETS - 1);
}

/* ---- sockets ------------------------------------------------------------ */

static int addr_of(const char *host, uint16_t port, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  return inet_pton(AF_INET, host && *host ? host : "127.0.0.1",
                   &sa->sin_addr) == 1
             ? 0
             : -1;
}

int e2e_connect(const char *host, uint16_t port) {
  struct sockaddr_in sa;
  if (addr_of(host, port, &sa) != 0) {
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
      errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t e2e_free_port(void) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  addr_of("127.0.0.1", 0, &sa);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  uint16_t port = 0;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  if (fd >= 0) {
    close(fd);
  }
  return port;
}

static int connect_blocking(const char *host, uint16_t port) {
  struct sockaddr_in sa;
  if (addr_of(host, port, &sa) != 0) {
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

int e2e_port_open(const char *host, uint16_t port) {
  int fd = connect_blocking(host, port);
  if (fd < 0) {
    return 0;
  }
  close(fd);
  return 1;
}

/* ---- HTTP responses ---------------------------------------------------- */

/* The end of the head ("\r\n\r\n") in |p|..|p|+|n|, or NULL. */
static const uint8_t *head_end(const uint8_t *p, size_t n) {
  for (size_t i = 3; i < n; ++i) {
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
        p[i - 3] == '\r') {
      return p + i + 1;
    }
  }
  return NULL;
}

int e2e_http_take(e2e_buf *b, e2e_http_resp *r, int head_only) {
  const uint8_t *p = b->data + b->off;
  size_t n = b->len - b->off;
  if (n >= 5 && memcmp(p, "HTTP/", 5) != 0) {
    return -1;
  }
  const uint8_t *end = head_end(p, n);
  if (!end) {
    return n > 65536 ? -1 : 0;
  }
  size_t headlen = (size_t)(end - p);
  /* "HTTP/1.1 200 OK" */
  if (headlen < 12 || p[8] != ' ') {
    return -1;
  }
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (p[i] < '0' || p[i] > '9') {
      return -1;
    }
    status = status * 10 + (p[i] - '0');
  }
  size_t clen = 0;
  const char *cl = "\r\ncontent-length:";
  size_t cllen = strlen(cl);
  for (size_t i = 0; i + cllen < headlen; ++i) {
    if (strncasecmp((const char *)p + i, cl, cllen) == 0) {
      const uint8_t *q = p + i + cllen;
      while (*q == ' ') {
        ++q;
      }
      while (*q >= '0' && *q <= '9') {
        clen = clen * 10 + (size_t)(*q++ - '0');
      }
      break;
    }
  }
  if (head_only) {
    clen = 0;
  } else if (status == 204 || status == 304 || status / 100 == 1) {
    clen = 0;
  }
  if (n < headlen + clen) {
    return 0;
  }
  r->status = status;
  r->body = clen ? p + headlen : NULL;
  r->bodylen = clen;
  e2e_buf_consume(b, headlen + clen);
  return 1;
}

int e2e_http_call(int *pfd, const char *host, uint16_t port,
                  const char *method, const char *target) {
  if (*pfd < 0) {
    *pfd = connect_blocking(host, port);
    if (*pfd < 0) {
      return -1;
    }
  }
  char req[1024];
  int n = snprintf(req, sizeof(req),
                   "%s %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Length: 0\r\n\r\n",
                   method, target, host, (unsigned)port);
  e2e_buf in;
  memset(&in, 0, sizeof(in));
  int status = -1;
  if (n > 0 && (size_t)n < sizeof(req) &&
      write(*pfd, req, (size_t)n) == (ssize_t)n) {
    for (;;) {
      e2e_http_resp r;
      int got = e2e_http_take(&in, &r, 0);
      if (got == 1) {
        status = r.status;
        break;
      }
      uint8_t *at = got == 0 ? e2e_buf_room(&in, 4096) : NULL;
      ssize_t k = at ? read(*pfd, at, 4096) : -1;
      if (k <= 0) {
        break;
      }
      in.len += (size_t)k;
    }
  }
  e2e_buf_free(&in);
  if (status < 0) {
    close(*pfd);
    *pfd = -1;
  }
  return status;
}

/* ---- payload --------------------------------------------------------- */

static void put_hex(uint8_t *p, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    p[i] = (uint8_t)digits[v & 15];
    v >>= 4;
  }
}

static int get_hex(const uint8_t *p, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < 16; ++i) {
    uint8_t c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = (unsigned)(c - 'a' + 10);
    } else {
      return -1;
    }
    x = (x << 4) | d;
  }
  *v = x;
  return 0;
}

void e2e_payload_write(uint8_t *p, uint64_t t_ns, uint64_t idx) {
  put_hex(p, t_ns);
  put_hex(p + 16, idx);
  memset(p + 32, 'x', E2E_PAYLOAD - 32);
}

int e2e_payload_read(const uint8_t *p, size_t len, uint64_t *t_ns,
                     uint64_t *idx) {
  if (len != E2E_PAYLOAD || get_hex(p, t_ns) != 0 ||
      get_hex(p + 16, idx) != 0) {
    return -1;
  }
  return 0;
}

/* ---- /proc --------------------------------------------------------------- */

double e2e_proc_cpu(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) {
    return -1;
  }
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  /* The command name may hold spaces: fields count from its ')'. */
  char *p = strrchr(buf, ')');
  if (!p) {
    return -1;
  }
  unsigned long long utime = 0, stime = 0;
  /* After ')': state (3), then fields 4..13, then utime (14), stime (15). */
  if (sscanf(p + 1,
             " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &utime, &stime) != 2) {
    return -1;
  }
  long hz = sysconf(_SC_CLK_TCK);
  return (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
}

double e2e_self_cpu(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) {
    return -1;
  }
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

long e2e_proc_rss(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) {
    return -1;
  }
  long kb = -1;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}
