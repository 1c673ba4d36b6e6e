/*
 * ternd, the reference push server: what its files share.
 *
 *   main.c    flags, the hub, the store, the loop, signals, the token command
 *   routes.c  the HTTP API (tern_http on the driver's loop)
 *   stats.c   GET /stats (JSON) and GET /metrics (Prometheus text)
 *   tokens.c  publisher secrets and subscriber tokens
 *   demo.c    --demo: the order-status story
 *   page.c    GET /: the live page
 *   webhooks.c  /webhooks: web hooks on thread 0's hub, and their sender
 *   params.c    the flat JSON object of POST /webhooks (params.h)
 *
 * Only tern.h and tern_posix.h: ternd builds against the installed
 * libraries like any other host.
 */
#ifndef TERND_H
#define TERND_H

#include <stddef.h>
#include <stdint.h>

#include <tern.h>
#include <tern_posix.h>

typedef struct ternd_config {
  char listen_host[64];
  uint16_t listen_port;
  char bin_host[64];
  uint16_t bin_port;
  int bin_listen;
  const char *data_dir;
  int no_store;
  uint32_t threads;
  const char *publish_secret;
  const char *token_secret;
  int demo;
  uint32_t max_pending;
  tern_duration hook_timeout; /* --hook-timeout: a web hook's answer */
} ternd_config;

/* A SYNC publish whose answer waits for the store (its cookie). */
typedef struct ternd_pending {
  tern_http_request *req; /* NULL once its connection closed */
  char id[TERN_MAX_ID];
  size_t idlen;
  struct ternd_pending *prev, *next;
} ternd_pending;

struct ternd;

/* One worker thread: its hub, driver, HTTP server and store.  Only that
   thread touches it while the workers run. */
typedef struct ternd_shard {
  struct ternd *t;
  uint32_t index;
  tern_driver *d;
  tern_hub *hub;
  tern_http *http;
  tern_store_file *store;
  ternd_pending *pending;
  /* route counters for /stats and /metrics */
  uint64_t publishes, publish_errors, unauthorized, acks, not_found;
  uint64_t topic_ids; /* names topic publishes that came without an id */
} ternd_shard;

/* Metrics of one shard, summed along a chain (stats.c). */
#define TERND_MAX_METRICS 64

/* A request passed along every shard (tern_http_request_forward), each
   adding its part: GET /stats, GET /metrics, a topic publish. */
typedef struct ternd_chain {
  uint32_t hops;
  int rc;                       /* topic publish: the first error, or 0   */
  char id[TERN_MAX_ID];         /* topic publish: the id every shard uses */
  size_t idlen;
  uint64_t values[TERND_MAX_METRICS];
  uint64_t epochs[];            /* one per shard                          */
} ternd_chain;

typedef struct ternd {
  ternd_config cfg;
  tern_workers *w;
  uint32_t n;
  ternd_shard *shards;
  uint16_t http_port;
  uint16_t bin_port;
  tern_hook_sender *hook_sender; /* thread 0's web hooks */
} ternd;

/* routes.c */
/* on_request and on_abort of each shard's tern_http (user_data: the
   shard); on_event of the workers (user_data: the ternd). */
void ternd_on_request(void *user_data, tern_http_request *req);
void ternd_on_abort(void *user_data, tern_http_request *req);
void ternd_on_event(void *user_data, uint32_t worker, tern_driver *d,
                    const tern_event *ev);
void ternd_pending_drop_all(ternd_shard *sh);
/* The query checks of every route: ternd_param_known is 1 when |name| is
   one of the NULL-ended |known| (or "_", a cache buster), and
   ternd_params_once when none of them is given twice; otherwise each
   answers 400 and returns 0. */
int ternd_param_known(tern_http_request *req, const char *const *known,
                      const char *name, size_t nlen);
int ternd_params_once(tern_http_request *req, const char *const *known);
/* The shard that owns session |key|. */
ternd_shard *ternd_owner(ternd *t, const uint8_t *key, size_t keylen);
/* Writes |len| bytes as the inside of a JSON string into |out| (room for
   6 * len bytes); returns the length written. */
size_t ternd_json_escape(char *out, const uint8_t *p, size_t len);

/* stats.c: adds this shard's metrics to |c|, and answers from a chain
   that went round every shard. */
void ternd_stats_add(ternd_shard *sh, ternd_chain *c);
void ternd_stats_answer(ternd_shard *sh, tern_http_request *req,
                        const ternd_chain *c);
void ternd_metrics_answer(ternd_shard *sh, tern_http_request *req,
                          const ternd_chain *c);

/* tokens.c */
/* 1 when the request may publish or manage subscriptions. */
int ternd_publisher_ok(const ternd *t, const tern_http_request *req);
/* 1 when the request may read session |key|. */
int ternd_subscriber_ok(const ternd *t, const tern_http_request *req,
                        const uint8_t *key, size_t keylen);
/* ternd token --secret S --session KEY --ttl SECONDS */
int ternd_token_main(int argc, char **argv);
uint64_t ternd_wall_seconds(void);

/* demo.c */
int ternd_demo_publish(ternd *t);
void ternd_demo_print(const ternd *t);

/* webhooks.c: the routes under /webhooks (|path| is "/webhooks" or
   starts with "/webhooks/"), and the sender on thread 0 (before the
   workers start). */
void ternd_webhooks_route(ternd_shard *sh, tern_http_request *req,
                          const char *path, size_t len);
int ternd_webhooks_start(ternd *t);
/* Logs the hooks' events (given up, disabled, a failed challenge). */
void ternd_webhooks_event(const tern_event *ev);

/* page.c */
extern const char ternd_page_html[];

#endif
