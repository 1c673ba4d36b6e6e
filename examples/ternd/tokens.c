/*
 * Who may do what: publishers carry "Authorization: Bearer S" when
 * --publish-secret is set; subscribers carry token=E.H (tern_token_check)
 * when --token-secret is set.  And the "ternd token" command.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ternd.h"

uint64_t ternd_wall_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec;
}

/* Compares in a time that depends on the lengths only. */
static int same(const char *a, size_t alen, const char *b, size_t blen) {
  unsigned diff = alen != blen;
  size_t n = alen < blen ? alen : blen;
  for (size_t i = 0; i < n; ++i) {
    diff |= (unsigned)(a[i] ^ b[i]);
  }
  return diff == 0;
}

int ternd_publisher_ok(const ternd *t, const tern_http_request *req) {
  const char *secret = t->cfg.publish_secret;
  if (!secret) {
    return 1;
  }
  const char *v;
  size_t len;
  if (!tern_http_request_header(req, "Authorization", &v, &len) || len < 7 ||
      strncmp(v, "Bearer ", 7) != 0) {
    return 0;
  }
  v += 7;
  len -= 7;
  while (len > 0 && *v == ' ') {
    v++;
    len--;
  }
  return same(v, len, secret, strlen(secret));
}

int ternd_subscriber_ok(const ternd *t, const tern_http_request *req,
                        const uint8_t *key, size_t keylen) {
  const char *secret = t->cfg.token_secret;
  if (!secret) {
    return 1;
  }
  const char *tok;
  size_t len;
  if (tern_http_request_param(req, "token", &tok, &len) != 1) {
    return 0;
  }
  return tern_token_check(tok, len, secret, strlen(secret), key, keylen,
                          ternd_wall_seconds()) == 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: ternd token --secret S --session KEY --ttl SECONDS\n");
  return 2;
}

int ternd_token_main(int argc, char **argv) {
  const char *secret = NULL, *session = NULL, *ttl = NULL;
  for (int i = 0; i < argc; ++i) {
    const char **slot = NULL;
    if (strcmp(argv[i], "--secret") == 0) {
      slot = &secret;
    } else if (strcmp(argv[i], "--session") == 0) {
      slot = &session;
    } else if (strcmp(argv[i], "--ttl") == 0) {
      slot = &ttl;
    } else {
      return usage();
    }
    if (i + 1 >= argc) {
      return usage();
    }
    *slot = argv[++i];
  }
  if (!secret || !session || !ttl || !*session ||
      strlen(session) > TERN_MAX_SESSION_KEY || !*secret) {
    return usage();
  }
  char *end;
  errno = 0;
  unsigned long long secs = strtoull(ttl, &end, 10);
  if (errno || *end || end == ttl || ttl[0] == '-' || secs == 0 ||
      secs > 100ull * 365 * 86400) {
    fprintf(stderr, "ternd token: --ttl wants 1 to 3153600000 seconds\n");
    return 2;
  }
  char out[TERN_TOKEN_MAX];
  size_t n = tern_token_make(out, sizeof(out), secret, strlen(secret),
                             (const uint8_t *)session, strlen(session),
                             ternd_wall_seconds() + secs);
  if (n == 0) {
    return 1;
  }
  printf("%.*s\n", (int)n, out);
  return 0;
}
