/*
 * What the files of bench/e2e share: one run's configuration and result,
 * the run itself (e2e_load.c) and its helpers (e2e_net.c): buffers, the
 * latency histogram, sockets, a small HTTP/1.1 response reader, the
 * payload format and the server process's counters from /proc.
 */
#ifndef TERN_BENCH_E2E_H
#define TERN_BENCH_E2E_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum e2e_mode { E2E_1TO1 = 1, E2E_FANOUT, E2E_IDLE };
enum e2e_kind { E2E_BIN = 1, E2E_SSE, E2E_WS };
enum e2e_pub { E2E_PUB_BIN = 1, E2E_PUB_HTTP };
enum e2e_status { E2E_OK = 0, E2E_NA, E2E_FAIL };

/* The payload: 64 bytes of ASCII (so that every framing carries it as a
   JSON string): the publish time on CLOCK_MONOTONIC and the message's
   number, 16 hex digits each, then padding. */
#define E2E_PAYLOAD 64

typedef struct e2e_cfg {
  char http_host[64];
  uint16_t http_port; /* 0: the server speaks no HTTP                 */
  char bin_host[64];
  uint16_t bin_port;  /* 0: no binary listener                        */
  const char *token;  /* the producers' HELLO token                   */
  const char *topic;  /* the fan-out topic                            */
  int mode, kind, pub;
  uint32_t k;          /* subscribers                                 */
  uint32_t publishers;
  uint32_t window;     /* messages published and not yet delivered, at
                          most (times k for fan-out)                  */
  uint64_t n;          /* messages to publish; 0: for |seconds|       */
  double seconds;
  double rate;         /* publishes per second; 0: as fast as possible */
  uint32_t run_id;     /* makes each run's session keys its own       */
  int verbose;
} e2e_cfg;

typedef struct e2e_result {
  int status;          /* enum e2e_status                             */
  char note[200];
  uint64_t published;  /* accepted by the server                      */
  uint64_t refused;    /* publishes the server did not accept         */
  uint64_t expected;   /* deliveries owed: published (times k)        */
  uint64_t delivered;  /* deliveries, duplicates excluded             */
  uint64_t dups;
  uint64_t gaps;       /* messages the server said it dropped         */
  double elapsed;      /* first publish to last delivery, seconds     */
  double msgs_per_s;   /* delivered / elapsed                         */
  double p50_us, p99_us, p999_us;
  double cpu_s;        /* server CPU (user + system) over the run; <0
                          when unknown                                */
  double gen_cpu_s;    /* the generator's own CPU over the run: when it
                          is near the server's, the generator (on the
                          same cores) bounds msg/s, not the server    */
  long rss_before_kb, rss_after_kb; /* idle rows; <0 unknown          */
  double bytes_per_conn;
} e2e_result;

/* e2e_run runs one row against the server (whose pid, when > 0, gives
   the CPU and RSS figures) and fills |res|. */
void e2e_run(const e2e_cfg *cfg, pid_t server, e2e_result *res);

/* ---- e2e_net.c ----------------------------------------------------------- */

/* e2e_now: CLOCK_MONOTONIC in nanoseconds. */
uint64_t e2e_now(void);

/* A byte buffer: data[off..len). */
typedef struct e2e_buf {
  uint8_t *data;
  size_t off, len, cap;
} e2e_buf;
int e2e_buf_put(e2e_buf *b, const void *p, size_t n);
/* e2e_buf_room makes room for |n| more bytes and returns where they go. */
uint8_t *e2e_buf_room(e2e_buf *b, size_t n);
void e2e_buf_consume(e2e_buf *b, size_t n);
void e2e_buf_free(e2e_buf *b);

/* The latency histogram: log-linear buckets of 1/64 of a power of two. */
#define E2E_HIST_BUCKETS 3776
typedef struct e2e_hist {
  uint64_t count[E2E_HIST_BUCKETS];
  uint64_t total;
} e2e_hist;
void e2e_hist_add(e2e_hist *h, uint64_t ns);
/* e2e_hist_quantile: the latency at quantile |q| in ns (0 when empty). */
uint64_t e2e_hist_quantile(const e2e_hist *h, double q);

/* e2e_connect starts a non-blocking TCP connect to |host|:|port| (numeric
   IPv4); the fd or -1. */
int e2e_connect(const char *host, uint16_t port);
/* e2e_free_port: a port the kernel had free on 127.0.0.1 just now. */
uint16_t e2e_free_port(void);
/* e2e_port_open: 1 when something accepts on |host|:|port| (blocking). */
int e2e_port_open(const char *host, uint16_t port);

/* One HTTP/1.1 response read from |b|: 1 and the status (and body) when
   complete, the bytes consumed; 0 when more is needed; -1 when it is no
   HTTP response.  |head_only| stops after the head (a stream follows). */
typedef struct e2e_http_resp {
  int status;
  const uint8_t *body;
  size_t bodylen;
} e2e_http_resp;
int e2e_http_take(e2e_buf *b, e2e_http_resp *r, int head_only);

/* e2e_http_call makes a blocking request over the keep-alive connection
   *|pfd| (opened to |host|:|port| when -1) and returns the status, or -1
   (the connection is then closed). */
int e2e_http_call(int *pfd, const char *host, uint16_t port,
                  const char *method, const char *target);

/* e2e_payload_write fills E2E_PAYLOAD bytes; e2e_payload_read reads one
   (0) or says it is not ours (-1). */
void e2e_payload_write(uint8_t *p, uint64_t t_ns, uint64_t idx);
int e2e_payload_read(const uint8_t *p, size_t len, uint64_t *t_ns,
                     uint64_t *idx);

/* e2e_proc_cpu: user + system CPU of |pid| in seconds (all threads), or
   -1.  e2e_proc_rss: its VmRSS in KiB, or -1. */
double e2e_proc_cpu(pid_t pid);
/* e2e_self_cpu: this process's user + system CPU in seconds. */
double e2e_self_cpu(void);
long e2e_proc_rss(pid_t pid);

#endif
