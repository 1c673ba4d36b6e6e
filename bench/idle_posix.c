/*
 * idle_posix: memory per idle binary connection through tern_driver.
 *
 *   idle_posix [--conns N] [--heap]
 *
 * The server is this process: an epoll loop, a hub with default settings
 * (heartbeats and liveness stretched so that idle receivers stay) and a
 * driver listening on 127.0.0.1.  A child process opens N TCP connections
 * (10,000 by default), sends each a HELLO for its own session (encoded by
 * tern_client in the child) and then keeps them open without reading.
 * Once the hub has N sessions, each with its connection open, the figure
 * is the growth of the server's resident set (VmRSS) divided by N: the
 * socket, the tern_conn, the session and the epoll registration, with the
 * allocator's overhead; kernel socket buffers are not in it.
 *
 * RLIMIT_NOFILE is raised to its hard limit; with fewer descriptors than N
 * needs, N is lowered to fit and the program says so.  --heap also counts
 * the bytes the driver and the hub ask of their allocators (tern_mem hooks
 * with a 16-byte header, which the RSS figure then includes).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tern_posix.h>

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof(line), f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
    }
  }
  if (f) {
    fclose(f);
  }
  return kib;
}

/* Counting allocator: live bytes asked for. */
typedef struct counter {
  size_t live;
} counter;
typedef union hdr {
  size_t size;
  max_align_t align;
} hdr;
static void *c_malloc(size_t n, void *ud) {
  hdr *h = malloc(sizeof(hdr) + n);
  if (!h) {
    return NULL;
  }
  h->size = n;
  ((counter *)ud)->live += n;
  return h + 1;
}
static void c_free(void *p, void *ud) {
  if (p) {
    hdr *h = (hdr *)p - 1;
    ((counter *)ud)->live -= h->size;
    free(h);
  }
}
static void *c_calloc(size_t n, size_t size, void *ud) {
  if (size && n > ((size_t)-1 - sizeof(hdr)) / size) {
    return NULL;
  }
  void *p = c_malloc(n * size, ud);
  if (p) {
    memset(p, 0, n * size);
  }
  return p;
}
static void *c_realloc(void *p, size_t n, void *ud) {
  if (!p) {
    return c_malloc(n, ud);
  }
  hdr *h = (hdr *)p - 1;
  size_t old = h->size;
  hdr *q = realloc(h, sizeof(hdr) + n);
  if (!q) {
    return NULL;
  }
  q->size = n;
  ((counter *)ud)->live += n;
  ((counter *)ud)->live -= old;
  return q + 1;
}

/* The child: N receivers that say HELLO and then nothing. */
static void clients(uint16_t port, int n, int stop_fd) {
  int *fds = calloc((size_t)n, sizeof(int));
  for (int i = 0; i < n; ++i) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa))) {
      fprintf(stderr, "idle_posix: client %d: %s\n", i, strerror(errno));
      _exit(1);
    }
    char key[24];
    snprintf(key, sizeof(key), "idle-%d", i);
    tern_client *c;
    tern_tstamp now = tern_posix_now();
    tern_client_settings cs;
    tern_client_settings_default(&cs);
    cs.liveness_timeout = 600 * TERN_SECONDS;
    tern_client_new(&c, (const uint8_t *)key, strlen(key), NULL, 0, &cs, NULL,
                    now);
    tern_client_connect(c, now);
    uint8_t buf[512];
    tern_ssize len = tern_client_write(c, buf, sizeof(buf), now);
    if (len <= 0 || write(fds[i], buf, (size_t)len) != len) {
      _exit(1);
    }
    tern_client_del(c);
  }
  char b;
  _exit(read(stop_fd, &b, 1) < 0); /* until the server has measured */
}

int main(int argc, char **argv) {
  int n = 10000, heap = 0;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--conns") && i + 1 < argc) {
      n = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--heap")) {
      heap = 1;
    } else {
      fprintf(stderr, "usage: idle_posix [--conns N] [--heap]\n");
      return 2;
    }
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  /* Both processes need one descriptor per connection, and a few more. */
  if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 64 > rl.rlim_cur) {
    int fit = (int)rl.rlim_cur - 64;
    printf("RLIMIT_NOFILE is %llu: %d connections instead of %d\n",
           (unsigned long long)rl.rlim_cur, fit, n);
    n = fit;
  }
  if (n <= 0) {
    return 1;
  }

  counter dc = {0}, hc = {0};
  tern_mem dmem = {&dc, c_malloc, c_free, c_calloc, c_realloc};
  tern_mem hmem = {&hc, c_malloc, c_free, c_calloc, c_realloc};
  tern_settings set;
  tern_settings_default(&set);
  set.heartbeat_interval = 300 * TERN_SECONDS; /* idle means idle */
  set.max_heartbeat = 300 * TERN_SECONDS;
  set.liveness_timeout = 600 * TERN_SECONDS;
  set.max_conns = (uint32_t)n + 16;
  set.max_sessions = (uint32_t)n + 16;
  tern_epoll *ep;
  tern_hub *hub;
  tern_driver *d;
  tern_driver_options o;
  tern_driver_options_default(&o);
  o.mem = heap ? &dmem : NULL;
  uint16_t port;
  int rc = tern_epoll_new(&ep);
  if (rc == 0) {
    rc = tern_hub_new(&hub, &set, heap ? &hmem : NULL);
  }
  if (rc == 0) {
    rc = tern_driver_new(&d, hub, tern_epoll_methods(), ep, &o);
  }
  if (rc == 0) {
    rc = tern_driver_listen(d, "127.0.0.1", 0, NULL, NULL, &port);
  }
  if (rc != 0) {
    fprintf(stderr, "idle_posix: %s\n", tern_strerror(rc));
    return 1;
  }
  int stop[2];
  if (pipe(stop)) {
    return 1;
  }
  /* Turn the loop once so that lazily made state is there before. */
  tern_epoll_run_once(ep, 0);
  long before = rss_kib();
  size_t dbefore = dc.live, hbefore = hc.live;
  pid_t pid = fork();
  if (pid == 0) {
    close(stop[1]);
    clients(port, n, stop[0]);
  }
  close(stop[0]);
  tern_tstamp start = tern_posix_now(), end = start + 120 * TERN_SECONDS;
  tern_driver_stats st;
  tern_stats hs;
  do {
    tern_epoll_run_once(ep, 10 * TERN_MILLISECONDS);
    tern_driver_get_stats(d, &st, sizeof(st));
    tern_hub_get_stats(hub, &hs, sizeof(hs));
  } while ((st.sockets < (uint64_t)n || hs.sessions < (uint64_t)n) &&
           tern_posix_now() < end);
  double secs = (double)(tern_posix_now() - start) / 1e9;
  long after = rss_kib();
  printf("connections        %d open, %llu sessions (%.1f s to connect)\n",
         n, (unsigned long long)hs.sessions, secs);
  printf("server RSS         %ld KiB before, %ld KiB after\n", before, after);
  printf("RSS per idle conn  %.0f bytes\n",
         (double)(after - before) * 1024.0 / n);
  if (heap) {
    printf("driver heap/conn   %.0f bytes (sockets; epoll handles not counted)\n",
           (double)(dc.live - dbefore) / n);
    printf("hub heap/conn      %.0f bytes (tern_conn, session)\n",
           (double)(hc.live - hbefore) / n);
  }
  char b = 1;
  if (write(stop[1], &b, 1) != 1) {
    perror("idle_posix: write");
  }
  waitpid(pid, NULL, 0);
  tern_driver_del(d);
  tern_hub_del(hub);
  tern_epoll_del(ep);
  return st.sockets == (uint64_t)n && hs.sessions == (uint64_t)n ? 0 : 1;
}
