/*
 * bench/e2e: the end-to-end load generator.  K subscribers and the
 * publishers over loopback against a server in its own process, 64-byte
 * payloads carrying their publish time; it prints a table of delivered
 * messages per second, publish-to-receive latency (p50, p99, p99.9), the
 * server's CPU per delivered message (utime + stime from /proc/PID/stat
 * around the run) and its RSS per idle subscriber (the VmRSS delta over K
 * idle connections).  "gen" is the generator's own CPU per delivered
 * message: it shares the machine's cores with the server, so when it is
 * the larger of the two, msg/s says more about the generator than about
 * the server.
 *
 *   e2e                      the full table against bench/e2e_server
 *   e2e --mode 1to1|fanout|idle [--kind bin|sse|ws] [--pub bin|http]
 *       [-k N] [-n N] [--seconds S] [--publishers P] [--window W]
 *       [--rate R]           one row
 *   --server 'CMD'           spawn CMD (through /bin/sh) instead of
 *                            e2e_server; "{http}" and "{bin}" in it are
 *                            replaced by free ports, and say which
 *                            listeners the server has
 *   --target HOST:PORT       a running server's HTTP listener (no spawn);
 *   --bin-target HOST:PORT   its binary listener; --pid PID for CPU/RSS
 *   --token T                the binary producers' HELLO token ("e2e")
 *   --topic NAME             the fan-out topic ("e2e")
 *   --strict                 a row the server cannot serve (n/a) fails
 *
 * Exit status 0 when every row delivered everything it published (rows
 * the server cannot serve print n/a), 1 when one did not, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

typedef struct server_proc {
  pid_t pid;
  char cmd[4096];
} server_proc;

static const char *mode_name(int m) {
  return m == E2E_1TO1 ? "1to1" : m == E2E_FANOUT ? "fanout" : "idle";
}

static const char *kind_name(int k) {
  return k == E2E_BIN ? "bin" : k == E2E_SSE ? "sse" : "ws";
}

/* Replaces every |from| in |s| (in place, |cap| bytes) by |to|. */
static int replace_all(char *s, size_t cap, const char *from, const char *to) {
  int count = 0;
  size_t fl = strlen(from), tl = strlen(to);
  char *at = s;
  while ((at = strstr(at, from)) != NULL) {
    size_t rest = strlen(at + fl);
    if ((size_t)(at - s) + tl + rest + 1 > cap) {
      return -1;
    }
    memmove(at + tl, at + fl, rest + 1);
    memcpy(at, to, tl);
    at += tl;
    count++;
  }
  return count;
}

static int spawn(server_proc *sp, const e2e_cfg *cfg) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    /* The table owns stdout; the server dies with the generator. */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char *cmd = malloc(strlen(sp->cmd) + 6);
    if (cmd) {
      sprintf(cmd, "exec %s", sp->cmd); /* the pid stays the server's */
      execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    }
    _exit(127);
  }
  sp->pid = pid;
  /* Ready when every listener it was given accepts. */
  uint64_t deadline = e2e_now() + 15 * 1000000000ull;
  for (;;) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      fprintf(stderr, "e2e: the server exited at start (status %d)\n", st);
      sp->pid = 0;
      return -1;
    }
    if ((!cfg->http_port || e2e_port_open(cfg->http_host, cfg->http_port)) &&
        (!cfg->bin_port || e2e_port_open(cfg->bin_host, cfg->bin_port))) {
      return 0;
    }
    if (e2e_now() > deadline) {
      fprintf(stderr, "e2e: the server did not listen within 15 s\n");
      return -1;
    }
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
  }
}

static int stop(server_proc *sp) {
  if (sp->pid <= 0) {
    return 0;
  }
  kill(sp->pid, SIGTERM);
  int st = 0;
  for (int i = 0; i < 300; ++i) {
    if (waitpid(sp->pid, &st, WNOHANG) == sp->pid) {
      sp->pid = 0;
      return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
    }
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  kill(sp->pid, SIGKILL);
  waitpid(sp->pid, &st, 0);
  sp->pid = 0;
  return -1;
}

/* Picks free ports, puts them in |templ|'s "{http}" and "{bin}" and
   starts the server. */
static int start_server(server_proc *sp, const char *templ, e2e_cfg *c) {
  char port[16];
  uint16_t hp = e2e_free_port(), bp = e2e_free_port();
  while (bp == hp) {
    bp = e2e_free_port();
  }
  snprintf(sp->cmd, sizeof(sp->cmd), "%s", templ);
  snprintf(port, sizeof(port), "%u", hp);
  int nh = replace_all(sp->cmd, sizeof(sp->cmd), "{http}", port);
  snprintf(port, sizeof(port), "%u", bp);
  int nb = replace_all(sp->cmd, sizeof(sp->cmd), "{bin}", port);
  if (nh < 0 || nb < 0) {
    fprintf(stderr, "e2e: the server command is too long\n");
    return -1;
  }
  c->http_port = nh ? hp : 0;
  c->bin_port = nb ? bp : 0;
  if (spawn(sp, c) != 0) {
    stop(sp);
    return -1;
  }
  return 0;
}

static int parse_hostport(const char *arg, char *host, size_t cap,
                          uint16_t *port) {
  const char *colon = strrchr(arg, ':');
  if (!colon || colon == arg || (size_t)(colon - arg) >= cap) {
    return -1;
  }
  memcpy(host, arg, (size_t)(colon - arg));
  host[colon - arg] = 0;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p <= 0 || p > 65535) {
    return -1;
  }
  *port = (uint16_t)p;
  return 0;
}

static void print_header(void) {
  printf("%-30s %6s %10s %10s %10s %8s %8s %8s %10s %8s %8s  %s\n", "row",
         "k", "published", "delivered", "msg/s", "p50 us", "p99 us",
         "p999 us", "CPU us/msg", "gen", "B/idle", "result");
}

static void print_row(const e2e_cfg *c, const e2e_result *r) {
  char row[64];
  if (c->mode == E2E_IDLE) {
    snprintf(row, sizeof(row), "idle %s", kind_name(c->kind));
  } else {
    int n = snprintf(row, sizeof(row), "%s %s <- pub %s", mode_name(c->mode),
                     kind_name(c->kind),
                     c->pub == E2E_PUB_BIN ? "bin" : "http");
    if (c->rate > 0 && n > 0 && (size_t)n < sizeof(row)) {
      snprintf(row + n, sizeof(row) - (size_t)n, " @%.0f/s", c->rate);
    }
  }
  const char *result = r->status == E2E_OK ? "ok"
                       : r->status == E2E_NA ? "n/a"
                                             : "FAIL";
  if (r->status == E2E_NA) {
    printf("%-30s %6u %10s %10s %10s %8s %8s %8s %10s %8s %8s  %s: %s\n",
           row, c->k, "-", "-", "-", "-", "-", "-", "-", "-", "-", result,
           r->note);
    fflush(stdout);
    return;
  }
  char cpu[32] = "-", gen[32] = "-", idle[32] = "-";
  if (c->mode == E2E_IDLE) {
    if (r->rss_before_kb >= 0 && r->rss_after_kb >= 0) {
      snprintf(idle, sizeof(idle), "%.0f", r->bytes_per_conn);
    }
    printf("%-30s %6u %10s %10s %10s %8s %8s %8s %10s %8s %8s  %s%s%s\n",
           row, c->k, "-", "-", "-", "-", "-", "-", "-", "-", idle, result,
           r->note[0] ? ": " : "", r->note);
    fflush(stdout);
    return;
  }
  if (r->cpu_s >= 0 && r->delivered > 0) {
    snprintf(cpu, sizeof(cpu), "%.2f", r->cpu_s * 1e6 / (double)r->delivered);
  }
  if (r->gen_cpu_s >= 0 && r->delivered > 0) {
    snprintf(gen, sizeof(gen), "%.2f",
             r->gen_cpu_s * 1e6 / (double)r->delivered);
  }
  printf("%-30s %6u %10llu %10llu %10.0f %8.1f %8.1f %8.1f %10s %8s %8s  "
         "%s%s%s\n",
         row, c->k, (unsigned long long)r->published,
         (unsigned long long)r->delivered, r->msgs_per_s, r->p50_us,
         r->p99_us, r->p999_us, cpu, gen, idle, result,
         r->note[0] ? ": " : "", r->note);
  fflush(stdout);
}

static int usage(void) {
  fprintf(stderr,
          "usage: e2e [--server 'CMD with {http} {bin}' | --target H:P "
          "[--bin-target H:P] [--pid PID]]\n"
          "           [--mode 1to1|fanout|idle] [--kind bin|sse|ws] "
          "[--pub bin|http]\n"
          "           [-k N] [-n N] [--seconds S] [--publishers P] "
          "[--window W] [--rate R]\n"
          "           [--token T] [--topic NAME] [--strict] [-v]\n");
  return 2;
}

/* The rows of the full table: a short run (well under 20 s). */
typedef struct row_spec {
  int mode, kind, pub;
  uint32_t k;
  double seconds;
  double rate; /* 0: as fast as the window lets */
} row_spec;

static const row_spec default_rows[] = {
    {E2E_1TO1, E2E_BIN, E2E_PUB_BIN, 1, 2, 0},
    {E2E_1TO1, E2E_BIN, E2E_PUB_BIN, 1, 1, 20000},
    {E2E_1TO1, E2E_BIN, E2E_PUB_HTTP, 1, 1.5, 0},
    {E2E_1TO1, E2E_SSE, E2E_PUB_BIN, 1, 1.5, 0},
    {E2E_1TO1, E2E_WS, E2E_PUB_BIN, 1, 1.5, 0},
    {E2E_FANOUT, E2E_BIN, E2E_PUB_BIN, 100, 1.5, 0},
    {E2E_FANOUT, E2E_SSE, E2E_PUB_BIN, 100, 1.5, 0},
    {E2E_IDLE, E2E_BIN, 0, 10000, 0, 0},
    {E2E_IDLE, E2E_SSE, 0, 10000, 0, 0},
    {E2E_IDLE, E2E_WS, 0, 10000, 0, 0},
};

int main(int argc, char **argv) {
  e2e_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  strcpy(cfg.http_host, "127.0.0.1");
  strcpy(cfg.bin_host, "127.0.0.1");
  cfg.token = "e2e";
  cfg.topic = "e2e";
  cfg.kind = E2E_BIN;
  cfg.pub = 0;
  cfg.publishers = 1;
  cfg.window = 1024;
  cfg.seconds = 2;
  int one_row = 0, have_k = 0, strict = 0;
  const char *server_cmd = NULL;
  const char *target = NULL, *bin_target = NULL;
  pid_t pid = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-v") == 0) {
      cfg.verbose = 1;
      continue;
    }
    if (strcmp(a, "--strict") == 0) {
      strict = 1;
      continue;
    }
    if (!v) {
      return usage();
    }
    ++i;
    if (strcmp(a, "--server") == 0) {
      server_cmd = v;
    } else if (strcmp(a, "--target") == 0) {
      target = v;
    } else if (strcmp(a, "--bin-target") == 0) {
      bin_target = v;
    } else if (strcmp(a, "--pid") == 0) {
      pid = (pid_t)atol(v);
    } else if (strcmp(a, "--mode") == 0) {
      one_row = 1;
      if (strcmp(v, "1to1") == 0) {
        cfg.mode = E2E_1TO1;
      } else if (strcmp(v, "fanout") == 0) {
        cfg.mode = E2E_FANOUT;
      } else if (strcmp(v, "idle") == 0) {
        cfg.mode = E2E_IDLE;
      } else {
        return usage();
      }
    } else if (strcmp(a, "--kind") == 0) {
      cfg.kind = strcmp(v, "bin") == 0   ? E2E_BIN
                 : strcmp(v, "sse") == 0 ? E2E_SSE
                 : strcmp(v, "ws") == 0  ? E2E_WS
                                         : 0;
      if (!cfg.kind) {
        return usage();
      }
    } else if (strcmp(a, "--pub") == 0) {
      cfg.pub = strcmp(v, "bin") == 0    ? E2E_PUB_BIN
                : strcmp(v, "http") == 0 ? E2E_PUB_HTTP
                                         : 0;
      if (!cfg.pub) {
        return usage();
      }
    } else if (strcmp(a, "-k") == 0) {
      cfg.k = (uint32_t)strtoul(v, NULL, 10);
      have_k = 1;
    } else if (strcmp(a, "-n") == 0) {
      cfg.n = strtoull(v, NULL, 10);
    } else if (strcmp(a, "--seconds") == 0) {
      cfg.seconds = atof(v);
    } else if (strcmp(a, "--publishers") == 0) {
      cfg.publishers = (uint32_t)strtoul(v, NULL, 10);
    } else if (strcmp(a, "--window") == 0) {
      cfg.window = (uint32_t)strtoul(v, NULL, 10);
    } else if (strcmp(a, "--rate") == 0) {
      cfg.rate = atof(v);
    } else if (strcmp(a, "--token") == 0) {
      cfg.token = v;
    } else if (strcmp(a, "--topic") == 0) {
      cfg.topic = v;
    } else {
      return usage();
    }
  }
  if ((have_k && cfg.k == 0) || cfg.window == 0 || cfg.publishers == 0 ||
      cfg.seconds <= 0 || (server_cmd && (target || bin_target))) {
    return usage();
  }
  /* 10,000 idle subscribers need as many descriptors, here and in the
     server (which inherits the limit). */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);

  server_proc sp;
  memset(&sp, 0, sizeof(sp));
  char templ[4096] = "";
  if (target || bin_target) {
    if ((target && parse_hostport(target, cfg.http_host,
                                  sizeof(cfg.http_host), &cfg.http_port)) ||
        (bin_target && parse_hostport(bin_target, cfg.bin_host,
                                      sizeof(cfg.bin_host), &cfg.bin_port))) {
      return usage();
    }
    snprintf(sp.cmd, sizeof(sp.cmd), "(running%s%s%s%s)",
             target ? " http " : "", target ? target : "",
             bin_target ? " bin " : "", bin_target ? bin_target : "");
  } else {
    if (server_cmd) {
      snprintf(templ, sizeof(templ), "%s", server_cmd);
    } else {
      char self[1024];
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
               "%s/e2e_server --listen 127.0.0.1:{http} "
               "--bin-listen 127.0.0.1:{bin}",
               self);
    }
    if (!strstr(templ, "{http}") && !strstr(templ, "{bin}")) {
      fprintf(stderr, "e2e: --server needs {http} and/or {bin} in it\n");
      return 2;
    }
    cfg.http_port = strstr(templ, "{http}") ? 1 : 0; /* which it has */
    cfg.bin_port = strstr(templ, "{bin}") ? 1 : 0;
  }
  if (!cfg.pub) {
    cfg.pub = E2E_PUB_BIN;
  }
  printf("e2e: server %s; %d-byte payloads, window %u\n",
         templ[0] ? templ : sp.cmd, E2E_PAYLOAD, cfg.window);
  if (templ[0]) {
    printf("(a fresh server process for each row)\n");
  }
  /* The machine's load says how much the figures below can be trusted:
     the generator and the server share its cores with everything else. */
  FILE *la = fopen("/proc/loadavg", "r");
  char load[64] = "?";
  if (la) {
    if (fgets(load, sizeof(load), la)) {
      load[strcspn(load, " ")] = 0; /* the 1-minute figure */
    }
    fclose(la);
  }
  printf("load average %s on %ld CPUs\n", load, sysconf(_SC_NPROCESSORS_ONLN));
  printf("targets (one server thread): >= 500000 msg/s 1to1 bin, "
         "<= 2 us CPU/msg, <= 512 B per idle SSE subscriber (k 10000)\n");
  print_header();

  int failed = 0;
  uint32_t base = (uint32_t)getpid() * 100u;
  size_t nrows = one_row ? 1 : sizeof(default_rows) / sizeof(default_rows[0]);
  for (size_t i = 0; i < nrows; ++i) {
    e2e_cfg c = cfg;
    if (one_row) {
      if (!have_k) {
        c.k = c.mode == E2E_IDLE ? 10000 : c.mode == E2E_FANOUT ? 100 : 1;
      }
    } else {
      const row_spec *rs = &default_rows[i];
      c.mode = rs->mode;
      c.kind = rs->kind;
      c.pub = rs->pub ? rs->pub : cfg.pub;
      c.k = have_k ? cfg.k : rs->k;
      c.rate = rs->rate;
      if (cfg.n == 0) {
        c.seconds = rs->seconds > 0 ? rs->seconds : cfg.seconds;
      }
    }
    if (c.pub == E2E_PUB_BIN && !cfg.bin_port) {
      c.pub = E2E_PUB_HTTP;
    }
    c.run_id = base + (uint32_t)i;
    /* Each row gets a server of its own, so that one row's memory (freed
       but still resident) does not hide in the next row's RSS delta. */
    if (templ[0] && start_server(&sp, templ, &c) != 0) {
      return 1;
    }
    e2e_result r;
    e2e_run(&c, templ[0] ? sp.pid : pid, &r);
    print_row(&c, &r);
    failed |= r.status == E2E_FAIL || (strict && r.status == E2E_NA);
    if (sp.pid > 0 && stop(&sp) != 0) {
      fprintf(stderr, "e2e: the server did not exit cleanly on SIGTERM\n");
      failed = 1;
    }
  }
  return failed ? 1 : 0;
}
