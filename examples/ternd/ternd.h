/*
 * ternd, the reference push server: what its files share.
 *
 *   main.c    flags, the hub, the store, the loop, signals, the token command
 *   routes.c  the HTTP API (tern_http on the driver's loop)
 *   stats.c   GET /stats (JSON) and GET /metrics (Prometheus text)
 *   tokens.c  publisher secrets and subscriber tokens
 *   demo.c    --demo: the order-status story
 *   page.c    GET /: the live page
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
} ternd_config;

/* A SYNC publish whose answer waits for the store (its cookie). */
typedef struct ternd_pending {
  tern_http_request *req; /* NULL once its connection closed */
  char id[TERN_MAX_ID];
  size_t idlen;
  struct ternd_pending *prev, *next;
} ternd_pending;

typedef struct ternd {
  ternd_config cfg;
  tern_epoll *ep;
  tern_hub *hub;
  tern_driver *d;
  tern_http *http;
  tern_store_file *store;
  uint16_t http_port;
  uint16_t bin_port;
  ternd_pending *pending;
  uint64_t started_wall; /* Unix seconds */
  /* route counters for /metrics */
  uint64_t publishes, publish_errors, unauthorized, acks, not_found;
} ternd;

/* routes.c */
void ternd_on_request(void *user_data, tern_http_request *req);
void ternd_on_abort(void *user_data, tern_http_request *req);
void ternd_on_event(void *user_data, tern_driver *d, const tern_event *ev);
void ternd_pending_drop_all(ternd *t);
/* Writes |len| bytes as the inside of a JSON string into |out| (room for
   6 * len bytes); returns the length written. */
size_t ternd_json_escape(char *out, const uint8_t *p, size_t len);

/* stats.c */
void ternd_stats(ternd *t, tern_http_request *req);
void ternd_metrics(ternd *t, tern_http_request *req);

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

/* page.c */
extern const char ternd_page_html[];

#endif
