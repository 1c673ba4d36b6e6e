/*
 * Fuzz target for the HTTP/1.1 response parser (lib/http/response.c), the
 * one tern_http_client reads web hook endpoints' answers with.
 *
 * Input: byte 0 seeds the read sizes, byte 1 picks the limits (0: the
 * client's defaults; otherwise small head, body and line limits, so that
 * each is reached, and bit 7 marks the request a HEAD), the rest is what
 * a server sent before closing the connection.  Checks, aborting on any
 * violation:
 *  - the outcome (result, status, framing, Retry-After, body length and
 *    kept bytes, error and where it stopped) is the same for one read, for
 *    random read sizes and for byte-by-byte reads;
 *  - an answer has a final status (200..599, 1xx skipped), a body within
 *    max_body of which exactly min(body, keep) bytes are kept, and a
 *    Content-Length body is exactly that long;
 *  - an error is TERN_ERR_PROTO or TERN_ERR_TOO_LARGE with a reason, and
 *    is sticky: nothing is consumed after it, and the eof keeps it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/response.h"
#include "tern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "http_response_fuzz: %s:%d: %s\n", __FILE__,         \
              __LINE__, #cond);                                             \
      abort();                                                              \
    }                                                                       \
  } while (0)

#define HEAD_CAP 8192
#define KEEP_CAP 4096

typedef struct outcome {
  int result;
  size_t consumed;
  int status, keep_alive, chunked, has_length;
  uint64_t content_length, bodylen;
  size_t kept;
  uint8_t keep[KEEP_CAP];
  char retry_after[HEAD_CAP];
  size_t retry_afterlen;
  int has_retry_after;
  int error;
} outcome;

typedef struct setup {
  size_t headcap, keepcap;
  http_resp_limits lim;
  int head_request;
} setup;

static uint32_t next(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 16;
}

/* mode 0: one read; 1: random sizes seeded by |seed|; 2: byte by byte. */
static void run(const setup *su, const uint8_t *in, size_t len, int mode,
                uint32_t seed, outcome *o) {
  static char head[HEAD_CAP];
  static uint8_t keep[KEEP_CAP];
  http_resp p;
  http_resp_init(&p, head, su->headcap, su->keepcap ? keep : NULL,
                 su->keepcap, &su->lim);
  p.head_request = su->head_request;
  size_t off = 0;
  int r = HTTP_RESP_MORE;
  while (off < len) {
    size_t n = len - off;
    if (mode == 2) {
      n = 1;
    } else if (mode == 1) {
      size_t c = 1 + (next(&seed) % 97);
      if (next(&seed) % 4 == 0) {
        c = 1;
      }
      n = c < n ? c : n;
    }
    size_t used = 0;
    r = http_resp_feed(&p, in + off, n, &used);
    REQUIRE(used <= n);
    off += used;
    if (r == HTTP_RESP_MORE) {
      REQUIRE(used == n);
    } else {
      break;
    }
  }
  if (r == HTTP_RESP_ERROR) {
    /* Sticky: nothing more is taken, and the eof keeps the error. */
    size_t used = 1;
    if (off < len) {
      REQUIRE(http_resp_feed(&p, in + off, len - off, &used) ==
              HTTP_RESP_ERROR);
      REQUIRE(used == 0);
    }
    REQUIRE(http_resp_eof(&p) == HTTP_RESP_ERROR);
  } else if (r == HTTP_RESP_MORE) {
    r = http_resp_eof(&p);
  }
  memset(o, 0, sizeof(*o));
  o->result = r;
  o->consumed = off;
  if (r == HTTP_RESP_DONE) {
    o->status = p.status;
    o->keep_alive = p.keep_alive;
    o->chunked = p.chunked;
    o->has_length = p.has_length;
    o->content_length = p.content_length;
    o->bodylen = p.bodylen;
    o->kept = p.kept;
    memcpy(o->keep, keep, p.kept);
    if (p.retry_after) {
      o->has_retry_after = 1;
      o->retry_afterlen = p.retry_afterlen;
      memcpy(o->retry_after, p.retry_after, p.retry_afterlen);
    }
  } else {
    REQUIRE(r == HTTP_RESP_ERROR);
    REQUIRE(p.error == TERN_ERR_PROTO || p.error == TERN_ERR_TOO_LARGE);
    REQUIRE(p.reason && p.reason[0]);
    o->error = p.error;
  }
}

static void check(const setup *su, const outcome *o) {
  if (o->result != HTTP_RESP_DONE) {
    return;
  }
  REQUIRE(o->status >= 200 && o->status <= 599);
  REQUIRE(o->bodylen <= su->lim.max_body);
  REQUIRE(o->kept == (o->bodylen < su->keepcap ? o->bodylen : su->keepcap));
  REQUIRE(!(o->chunked && o->has_length));
  int bodiless = su->head_request || o->status == 204 || o->status == 304;
  if (bodiless) {
    REQUIRE(o->bodylen == 0);
  } else if (o->has_length) {
    REQUIRE(o->bodylen == o->content_length);
  } else if (!o->chunked) {
    REQUIRE(!o->keep_alive);
  }
}

static int same(const outcome *a, const outcome *b) {
  return a->result == b->result && a->consumed == b->consumed &&
         a->status == b->status && a->keep_alive == b->keep_alive &&
         a->chunked == b->chunked && a->has_length == b->has_length &&
         a->content_length == b->content_length &&
         a->bodylen == b->bodylen && a->kept == b->kept &&
         memcmp(a->keep, b->keep, a->kept) == 0 &&
         a->has_retry_after == b->has_retry_after &&
         a->retry_afterlen == b->retry_afterlen &&
         memcmp(a->retry_after, b->retry_after, a->retry_afterlen) == 0 &&
         a->error == b->error;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static outcome whole, random, bytes;
  if (size < 2) {
    return 0;
  }
  uint32_t seed = data[0];
  uint8_t sel = data[1];
  setup su;
  su.head_request = (sel & 0x80) != 0;
  if ((sel & 0x7f) == 0) {
    su.headcap = HEAD_CAP;
    su.keepcap = KEEP_CAP;
    su.lim.max_headers = 64;
    su.lim.max_body = (uint64_t)1 << 20;
  } else {
    su.headcap = 64 + (size_t)(sel & 0x0f) * 16;
    su.keepcap = (size_t)((sel >> 4) & 0x7) * 3;
    su.lim.max_headers = 1 + (size_t)(sel & 0x3);
    su.lim.max_body = 16 + (uint64_t)(sel & 0x3f);
  }
  const uint8_t *in = data + 2;
  size_t len = size - 2;
  run(&su, in, len, 0, seed, &whole);
  check(&su, &whole);
  run(&su, in, len, 1, seed, &random);
  REQUIRE(same(&whole, &random));
  if (len <= 4096) {
    run(&su, in, len, 2, seed, &bytes);
    REQUIRE(same(&whole, &bytes));
  }
  return 0;
}
