/*
 * ternd(8): flags, N worker threads (tern_workers), each a hub with its
 * file store, an epoll loop, an HTTP server and the binary listener, and
 * the shutdown on SIGTERM: GOAWAY to every receiver, the last batch to
 * the store, exit 0.
 *
 *   ternd [--listen ADDR:PORT] [--bin-listen ADDR:PORT] [--data DIR]
 *         [--no-store] [--threads N] [--publish-secret S]
 *         [--token-secret S] [--max-pending N] [--hook-timeout MS]
 *         [--demo]
 *   ternd token --secret S --session KEY --ttl SECONDS
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ternd.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: ternd [--listen ADDR:PORT] [--bin-listen ADDR:PORT]\n"
          "             [--data DIR | --no-store] [--threads N]\n"
          "             [--publish-secret S] [--token-secret S]\n"
          "             [--max-pending N] [--hook-timeout MS] [--demo]\n"
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
  c->hook_timeout = 10 * TERN_SECONDS;
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
    } else if (strcmp(a, "--hook-timeout") == 0) {
      uint32_t ms;
      if (parse_u32(v, 1, 3600000, &ms) != 0) {
        fprintf(stderr, "ternd: --hook-timeout wants 1 to 3600000 (ms)\n");
        return -1;
      }
      c->hook_timeout = (tern_duration)ms * TERN_MILLISECONDS;
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

/* ---- start and stop -------------------------------------------------------- */

/* The store of shard |i|: DIR itself with one thread, DIR/shard-I-of-N
   with N (sessions are sharded by N, so a restart must keep N). */
static void open_store(ternd *t, ternd_shard *sh, tern_tstamp now) {
  char dir[4096];
  if (t->n == 1) {
    snprintf(dir, sizeof(dir), "%s", t->cfg.data_dir);
  } else {
    if (mkdir(t->cfg.data_dir, 0777) != 0 && errno != EEXIST) {
      fprintf(stderr, "ternd: cannot make %s: %s\n", t->cfg.data_dir,
              strerror(errno));
      exit(1);
    }
    snprintf(dir, sizeof(dir), "%s/shard-%u-of-%u", t->cfg.data_dir,
             (unsigned)sh->index, (unsigned)t->n);
  }
  tern_store_file_options so;
  tern_store_file_options_default(&so);
  so.sync_thread = 1; /* fdatasync off the loop */
  int rc = tern_store_file_open(&sh->store, dir, &so, NULL);
  if (rc != 0) {
    fprintf(stderr, "ternd: cannot open the store in %s: %s\n", dir,
            tern_store_file_error(NULL));
    exit(1);
  }
  /* Expiries and dedup windows are stored on the wall clock, so that a
     restart keeps them right. */
  tern_hub_set_wallclock(sh->hub, now, wall_ns());
  rc = tern_hub_set_store(sh->hub, tern_store_file_methods(), sh->store, now);
  if (rc != 0) {
    die("loading the store", rc);
  }
  rc = tern_driver_watch_store(sh->d, sh->store);
  if (rc != 0) {
    die("tern_driver_watch_store", rc);
  }
}

static void start_http(ternd *t, ternd_shard *sh) {
  tern_http_options hopt;
  tern_http_options_default(&hopt);
  hopt.on_request = ternd_on_request;
  hopt.on_abort = ternd_on_abort;
  hopt.user_data = sh;
  hopt.reuseport = t->n > 1; /* every thread accepts on the one port */
  int rc = tern_http_new(&sh->http, sh->d, &hopt);
  if (rc != 0) {
    die("tern_http_new", rc);
  }
  /* Port 0 picks a free port once; the other threads share it. */
  uint16_t port = sh->index == 0 ? t->cfg.listen_port : t->http_port;
  rc = tern_http_listen(sh->http, t->cfg.listen_host, port, &t->http_port);
  if (rc != 0) {
    die("--listen", rc);
  }
}

/* SIGTERM: with the threads stopped, every receiver gets its GOAWAY (the
   driver writes it now, and the socket closes after it), the last batch
   goes to the store, and everything is closed; the store fsyncs. */
static void shutdown_all(ternd *t) {
  tern_workers_stop(t->w);
  for (uint32_t i = 0; i < t->n; ++i) {
    ternd_shard *sh = &t->shards[i];
    tern_hub_goaway_all(sh->hub, TERN_GOAWAY_RESTART, 5 * TERN_SECONDS,
                        tern_posix_now());
    tern_driver_process(sh->d);
    if (sh->store) {
      int rc = tern_hub_flush(sh->hub);
      if (rc != 0) {
        fprintf(stderr, "ternd: the last flush: %s\n", tern_strerror(rc));
      }
    }
  }
  tern_hook_sender_del(t->hook_sender);
  for (uint32_t i = 0; i < t->n; ++i) {
    tern_http_del(t->shards[i].http);
  }
  tern_workers_del(t->w); /* hubs, drivers, loops */
  for (uint32_t i = 0; i < t->n; ++i) {
    ternd_pending_drop_all(&t->shards[i]);
    tern_store_file_close(t->shards[i].store);
  }
  free(t->shards);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "token") == 0) {
    return ternd_token_main(argc - 2, argv + 2);
  }
  static ternd t;
  if (parse_flags(argc, argv, &t.cfg) != 0) {
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  /* The worker threads inherit the mask: only sigwait below sees these. */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, NULL);

  tern_settings set;
  tern_settings_default(&set);
  set.seed = wall_ns() ^ ((uint64_t)getpid() << 32);
  set.max_pending = t.cfg.max_pending;
  /* An HTTP producer is told when a session is full (429 with
     Retry-After) rather than having older messages evicted. */
  for (int p = 0; p < 3; ++p) {
    set.overflow[p] = TERN_OVERFLOW_REJECT;
  }
  /* With --token-secret, binary receivers' HELLOs wait for the check of
     their token (ternd_on_event). */
  set.hello_accept = 1; /* producers and tokens: ternd_on_event */
  tern_workers_options wo;
  tern_workers_options_default(&wo);
  wo.nthreads = t.cfg.threads;
  wo.settings = &set;
  wo.on_event = ternd_on_event;
  wo.user_data = &t;
  int rc = tern_workers_new(&t.w, &wo);
  if (rc != 0) {
    die("tern_workers_new", rc);
  }
  t.n = tern_workers_count(t.w);
  t.shards = calloc(t.n, sizeof(ternd_shard));
  if (!t.shards) {
    die("start", TERN_ERR_NOMEM);
  }
  tern_tstamp now = tern_posix_now();
  for (uint32_t i = 0; i < t.n; ++i) {
    ternd_shard *sh = &t.shards[i];
    sh->t = &t;
    sh->index = i;
    sh->d = tern_workers_get_driver(t.w, i);
    sh->hub = tern_driver_get_hub(sh->d);
    if (!t.cfg.no_store) {
      open_store(&t, sh, now);
    } else {
      /* Web hooks sign with the wall clock's seconds. */
      tern_hub_set_wallclock(sh->hub, now, wall_ns());
    }
    start_http(&t, sh);
  }
  rc = ternd_webhooks_start(&t);
  if (rc != 0) {
    die("web hooks", rc);
  }
  if (t.cfg.bin_listen) {
    rc = tern_workers_listen(t.w, t.cfg.bin_host, t.cfg.bin_port, &t.bin_port);
    if (rc != 0) {
      die("--bin-listen", rc);
    }
  }
  printf("ternd: listening on http://%s:%u", t.cfg.listen_host,
         (unsigned)t.http_port);
  if (t.cfg.bin_listen) {
    printf(" and tcp://%s:%u (binary framing)", t.cfg.bin_host,
           (unsigned)t.bin_port);
  }
  printf(", %u thread%s, %s\n", (unsigned)t.n, t.n == 1 ? "" : "s",
         t.cfg.no_store ? "no store" : t.cfg.data_dir);
  if (t.cfg.demo) {
    rc = ternd_demo_publish(&t);
    if (rc < 0) {
      die("--demo", rc);
    }
  }
  rc = tern_workers_start(t.w);
  if (rc != 0) {
    die("tern_workers_start", rc);
  }
  if (t.cfg.demo) {
    ternd_demo_print(&t);
  }
  fflush(stdout);
  int sig = 0;
  while (sigwait(&mask, &sig) != 0) {
  }
  shutdown_all(&t);
  printf("ternd: bye\n");
  return 0;
}
