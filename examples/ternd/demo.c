/*
 * --demo: a short order-status story for session "demo", published at
 * start-up so that the first curl or browser has something to show: the
 * order is placed, paid and shipped; its price changes twice under one
 * collapse key, so only the newer price is delivered; a flash-sale notice
 * lives 5 seconds and expires unread if nobody comes by then.  The ids
 * are fixed, so a restart within the dedup window publishes nothing twice.
 */
#include <stdio.h>
#include <string.h>

#include "ternd.h"

static const char demo_key[] = "demo";

typedef struct story {
  const char *id;
  const char *payload;
  const char *collapse;
  int prio;
  uint64_t ttl_seconds;
} story;

static const story demo_story[] = {
    {"order-1042-placed", "{\"order\":1042,\"status\":\"placed\"}", NULL,
     TERN_PRIO_NORMAL, 0},
    {"order-1042-price-1", "{\"order\":1042,\"price\":\"24.90\"}", "price",
     TERN_PRIO_LOW, 0},
    {"order-1042-paid", "{\"order\":1042,\"status\":\"paid\"}", NULL,
     TERN_PRIO_NORMAL, 0},
    {"order-1042-price-2", "{\"order\":1042,\"price\":\"19.90\"}", "price",
     TERN_PRIO_LOW, 0},
    {"order-1042-flash", "{\"order\":1042,\"flash_sale\":\"ends in 5 s\"}",
     NULL, TERN_PRIO_HIGH, 5},
    {"order-1042-shipped", "{\"order\":1042,\"status\":\"shipped\"}", NULL,
     TERN_PRIO_NORMAL, 0},
};

/* Called before the workers start, so the owner's hub is this thread's. */
int ternd_demo_publish(ternd *t) {
  ternd_shard *sh = ternd_owner(t, (const uint8_t *)demo_key, strlen(demo_key));
  tern_tstamp now = tern_posix_now();
  int published = 0;
  for (size_t i = 0; i < sizeof(demo_story) / sizeof(demo_story[0]); ++i) {
    const story *s = &demo_story[i];
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.id = (const uint8_t *)s->id;
    d.idlen = strlen(s->id);
    d.payload = (const uint8_t *)s->payload;
    d.payloadlen = strlen(s->payload);
    d.content_type = "application/json";
    d.priority = s->prio;
    d.ttl = s->ttl_seconds * TERN_SECONDS;
    if (s->collapse) {
      d.collapse_key = (const uint8_t *)s->collapse;
      d.collapse_keylen = strlen(s->collapse);
    }
    int rc = tern_hub_publish(sh->hub, (const uint8_t *)demo_key,
                              strlen(demo_key), &d, now, NULL);
    if (rc == 0) {
      published++;
    } else if (rc != TERN_ERR_DUPLICATE) {
      fprintf(stderr, "ternd: demo: %s: %s\n", s->id, tern_strerror(rc));
      return rc;
    }
  }
  tern_driver_process(sh->d);
  return published;
}

void ternd_demo_print(const ternd *t) {
  char base[128];
  snprintf(base, sizeof(base), "http://%s:%u", t->cfg.listen_host,
           (unsigned)t->http_port);
  char token[TERN_TOKEN_MAX + 8] = "";
  if (t->cfg.token_secret) {
    char tok[TERN_TOKEN_MAX];
    size_t n = tern_token_make(tok, sizeof(tok), t->cfg.token_secret,
                               strlen(t->cfg.token_secret),
                               (const uint8_t *)demo_key, strlen(demo_key),
                               ternd_wall_seconds() + 3600);
    snprintf(token, sizeof(token), "&token=%.*s", (int)n, tok);
  }
  printf("ternd: the demo story is waiting in session \"demo\" "
         "(the flash sale expires in 5 s)\n"
         "  stream it:  curl -N '%s/stream?session=demo%s'\n"
         "  watch it:   %s/?session=demo%s\n"
         "  publish:    curl -d 'hello' '%s/publish?session=demo'\n",
         base, token, base, token, base);
  fflush(stdout);
}
