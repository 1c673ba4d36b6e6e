/*
 * ternd(8): flags, the hub and its file store, the epoll loop with the
 * HTTP server and the binary listener, and the shutdown on SIGTERM:
 * GOAWAY to every receiver, the last batch to the store, exit 0.
 *
 *   ternd [--listen ADDR:PORT] [--bin-listen ADDR:PORT] [--data DIR]
 *         [--no-store] [--threads N] [--publish-secret S]
 *         [--token-secret S] [--max-pending N] [--demo]
 *   ternd token --secret S --session KEY --ttl SECONDS
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "ternd.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: ternd [--listen ADDR:PORT] [--bin-listen ADDR:PORT]\n"
          "             [--data DIR | --no-store] [--threads N]\n"
          "             [--publish-secret S] [--token-secret S]\n"
          "             [--max-pending N] [--demo]\n"
          "       ternd token --secret S --session KEY --ttl SECONDS\n"
          "See ternd(8).\n");
}

/* ADDR:PORT, ADDR an IPv4 address or [IPv6]; port 0 picks a free one. */
static int parse_addr(const char *s, char *host, size_t hostcap,
                      uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (!colon) {
    return -1;
  }
  const char *h = s;
  size_t hlen = (size_t)(colon - s);
  if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
    h++;
    hlen -= 2;
  }
  if (hlen == 0 || hlen >= hostcap) {
    return -1;
  }
  char *end;
  errno = 0;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (errno || *end || end == colon + 1 || p > 65535 || colon[1] == '-') {
    return -1;
  }
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = (uint16_t)p;
  return 0;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max,
                     uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || end == s || s[0] == '-' || v < min || v > max) {
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

static int parse_flags(int argc, char **argv, ternd_config *c) {
  memset(c, 0, sizeof(*c));
  strcpy(c->listen_host, "127.0.0.1");
  c->listen_port = 8080;
  c->data_dir = "./ternd-data";
  c->threads = 1;
  c->max_pending = 10000;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = 1;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--no-store") == 0) {
      c->no_store = 1;
      takes = 0;
    } else if (strcmp(a, "--demo") == 0) {
      c->demo = 1;
      takes = 0;
    } else if (!v) {
      fprintf(stderr, "ternd: %s needs a value\n", a);
      return -1;
    } else if (strcmp(a, "--listen") == 0) {
      if (parse_addr(v, c->listen_host, sizeof(c->listen_host),
                     &c->listen_port) != 0) {
        fprintf(stderr, "ternd: --listen wants ADDR:PORT, not %s\n", v);
        return -1;
      }
    } else if (strcmp(a, "--bin-listen") == 0) {
      if (parse_addr(v, c->bin_host, sizeof(c->bin_host), &c->bin_port) !=
          0) {
        fprintf(stderr, "ternd: --bin-listen wants ADDR:PORT, not %s\n", v);
        return -1;
      }
      c->bin_listen = 1;
    } else if (strcmp(a, "--data") == 0) {
      c->data_dir = v;
    } else if (strcmp(a, "--threads") == 0) {
      if (parse_u32(v, 1, 1024, &c->threads) != 0) {
        fprintf(stderr, "ternd: --threads wants 1 to 1024\n");
        return -1;
      }
    } else if (strcmp(a, "--max-pending") == 0) {
      if (parse_u32(v, 1, 100000000, &c->max_pending) != 0) {
        fprintf(stderr, "ternd: --max-pending wants 1 to 100000000\n");
        return -1;
      }
    } else if (strcmp(a, "--publish-secret") == 0) {
      c->publish_secret = *v ? v : NULL;
    } else if (strcmp(a, "--token-secret") == 0) {
      c->token_secret = *v ? v : NULL;
    } else {
      fprintf(stderr, "ternd: unknown flag %s\n", a);
      usage(stderr);
      return -1;
    }
    i += takes;
  }
  return 0;
}

static uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * TERN_SECONDS + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "ternd: %s: %s%s%s\n", what, tern_strerror(rc),
          rc == TERN_ERR_STORE && errno ? ": " : "",
          rc == TERN_ERR_STORE && errno ? strerror(errno) : "");
  exit(1);
}

/* ---- signals --------------------------------------------------------------- */

static int stopping;
static int signal_fd = -1;

static void on_signal(void *arg, unsigned events) {
  ternd *t = arg;
  struct signalfd_siginfo si;
  (void)events;
  while (read(signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
  }
  stopping = 1;
  tern_epoll_stop(t->ep);
}

/* Turns the loop until the hub has no connection left or |limit| passed. */
static void drain(ternd *t, tern_duration limit) {
  tern_tstamp end = tern_posix_now() + limit;
  for (;;) {
    tern_stats st;
    tern_hub_get_stats(t->hub, &st, sizeof(st));
    tern_tstamp n = tern_posix_now();
    if (st.conns == 0 || n >= end) {
      return;
    }
    tern_duration wait = end - n < 50 * TERN_MILLISECONDS
                             ? end - n
                             : 50 * TERN_MILLISECONDS;
    tern_epoll_run_once(t->ep, wait);
  }
}

/* ---- start and stop -------------------------------------------------------- */

static void open_store(ternd *t, tern_tstamp now) {
  tern_store_file_options so;
  tern_store_file_options_default(&so);
  so.sync_thread = 1; /* fdatasync off the loop */
  int rc = tern_store_file_open(&t->store, t->cfg.data_dir, &so, NULL);
  if (rc != 0) {
    fprintf(stderr, "ternd: cannot open the store in %s: %s\n",
            t->cfg.data_dir, tern_store_file_error(NULL));
    exit(1);
  }
  /* Expiries and dedup windows are stored on the wall clock, so that a
     restart keeps them right. */
  tern_hub_set_wallclock(t->hub, now, wall_ns());
  rc = tern_hub_set_store(t->hub, tern_store_file_methods(), t->store, now);
  if (rc != 0) {
    die("loading the store", rc);
  }
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "token") == 0) {
    return ternd_token_main(argc - 2, argv + 2);
  }
  static ternd t;
  if (parse_flags(argc, argv, &t.cfg) != 0) {
    return 2;
  }
  if (t.cfg.threads != 1) {
    /* Session-sharded HTTP across workers needs the hand-over of a
       request's connection to the owning worker's loop; until then one
       loop serves everything. */
    fprintf(stderr, "ternd: --threads: only 1 is supported by this build\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signal_fd = sfd;
  if (sfd < 0) {
    perror("ternd: signalfd");
    return 1;
  }

  tern_settings set;
  tern_settings_default(&set);
  set.seed = wall_ns() ^ ((uint64_t)getpid() << 32);
  set.max_pending = t.cfg.max_pending;
  /* An HTTP producer is told when a session is full (429 with
     Retry-After) rather than having older messages evicted. */
  for (int p = 0; p < 3; ++p) {
    set.overflow[p] = TERN_OVERFLOW_REJECT;
  }
  set.hello_accept = t.cfg.token_secret != NULL;
  int rc = tern_hub_new(&t.hub, &set, NULL);
  if (rc != 0) {
    die("tern_hub_new", rc);
  }
  tern_tstamp now = tern_posix_now();
  if (!t.cfg.no_store) {
    open_store(&t, now);
  }
  rc = tern_epoll_new(&t.ep);
  if (rc != 0) {
    die("tern_epoll_new", rc);
  }
  tern_driver_options dopt;
  tern_driver_options_default(&dopt);
  dopt.on_event = ternd_on_event;
  dopt.user_data = &t;
  rc = tern_driver_new(&t.d, t.hub, tern_epoll_methods(), t.ep, &dopt);
  if (rc != 0) {
    die("tern_driver_new", rc);
  }
  if (t.store && (rc = tern_driver_watch_store(t.d, t.store)) != 0) {
    die("tern_driver_watch_store", rc);
  }
  tern_http_options hopt;
  tern_http_options_default(&hopt);
  hopt.on_request = ternd_on_request;
  hopt.on_abort = ternd_on_abort;
  hopt.user_data = &t;
  rc = tern_http_new(&t.http, t.d, &hopt);
  if (rc != 0) {
    die("tern_http_new", rc);
  }
  rc = tern_http_listen(t.http, t.cfg.listen_host, t.cfg.listen_port,
                        &t.http_port);
  if (rc != 0) {
    die("--listen", rc);
  }
  if (t.cfg.bin_listen) {
    rc = tern_driver_listen(t.d, t.cfg.bin_host, t.cfg.bin_port, NULL, NULL,
                            &t.bin_port);
    if (rc != 0) {
      die("--bin-listen", rc);
    }
  }
  void *sig_io;
  rc = tern_epoll_methods()->io_add(t.ep, &sig_io, sfd, TERN_IO_READ,
                                    on_signal, &t);
  if (rc != 0) {
    die("watching signals", rc);
  }
  printf("ternd: listening on http://%s:%u", t.cfg.listen_host,
         (unsigned)t.http_port);
  if (t.cfg.bin_listen) {
    printf(" and tcp://%s:%u (binary framing)", t.cfg.bin_host,
           (unsigned)t.bin_port);
  }
  printf(", %s\n", t.store ? t.cfg.data_dir : "no store");
  fflush(stdout);
  if (t.cfg.demo) {
    rc = ternd_demo_publish(&t);
    if (rc < 0) {
      die("--demo", rc);
    }
    ternd_demo_print(&t);
  }

  rc = tern_epoll_run(t.ep);
  if (rc != 0 && !stopping) {
    die("the loop", rc);
  }

  /* SIGTERM: every receiver is told to come back (within 5 s) and gets
     its GOAWAY while the loop turns for up to a second. */
  tern_hub_goaway_all(t.hub, TERN_GOAWAY_RESTART, 5 * TERN_SECONDS,
                      tern_posix_now());
  tern_driver_process(t.d);
  drain(&t, TERN_SECONDS);
  if (t.store) {
    rc = tern_hub_flush(t.hub);
    if (rc != 0) {
      fprintf(stderr, "ternd: the last flush: %s\n", tern_strerror(rc));
    }
  }
  tern_epoll_methods()->io_del(t.ep, sig_io);
  close(sfd);
  tern_driver_del(t.d);
  tern_http_del(t.http);
  ternd_pending_drop_all(&t);
  tern_hub_del(t.hub);
  tern_store_file_close(t.store); /* fsyncs what was appended */
  tern_epoll_del(t.ep);
  printf("ternd: bye\n");
  return 0;
}
