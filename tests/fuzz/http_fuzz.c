/*
 * Fuzz target for the HTTP/1.1 request parser (lib/http).
 *
 * Input: byte 0 seeds the read sizes, byte 1 picks the limits (0: the
 * defaults; otherwise small ones, so that every limit is reached), the
 * rest is what a client sent on one connection.  Checks, aborting on any
 * violation:
 *  - the text form of the results (tests/http_util.h) is the same for one
 *    read, for random read sizes and for byte-by-byte reads;
 *  - an error has one of the statuses the parser documents, a reason, and
 *    is sticky (nothing consumed afterwards);
 *  - every accepted request, written back out from its parsed fields,
 *    parses to the very same text form (what a proxy in front of ternd
 *    would forward means what ternd understood);
 *  - the error answer for it is written at exactly its computed size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "http_fuzz: %s:%d: %s\n", __FILE__, __LINE__,        \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

typedef struct rng {
  uint32_t s;
} rng;

static size_t random_chunk(void *ctx) {
  rng *r = ctx;
  r->s = r->s * 1103515245u + 12345u;
  switch ((r->s >> 16) & 3) {
  case 0:
    return 1;
  case 1:
    return 1 + ((r->s >> 18) & 7);
  case 2:
    return 1 + ((r->s >> 18) & 127);
  default:
    return 1 + ((r->s >> 18) & 2047);
  }
}

/* ---- re-serialisation ---------------------------------------------------- */

static void enc(hu_str *s, http_slice v, int keep_slash) {
  size_t i;
  for (i = 0; i < v.len; i++) {
    unsigned char c = (unsigned char)v.p[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~' || (keep_slash && c == '/')) {
      hu_add(s, (const char *)&c, 1);
    } else {
      hu_printf(s, "%%%02X", c);
    }
  }
}

static void header(hu_str *s, const char *name, http_slice v) {
  if (v.p != NULL) {
    hu_printf(s, "%s: ", name);
    hu_add(s, v.p, v.len);
    hu_add(s, "\r\n", 2);
  }
}

static void reserialise(hu_str *s, const http_request *r) {
  size_t i;
  const char *conn_tokens[2];
  size_t nconn = 0;
  hu_printf(s, "%s ", hu_method(r->method));
  enc(s, r->path, 1);
  for (i = 0; i < r->nparams; i++) {
    hu_add(s, i == 0 ? "?" : "&", 1);
    enc(s, r->params[i].name, 0);
    hu_add(s, "=", 1);
    enc(s, r->params[i].value, 0);
  }
  hu_printf(s, " HTTP/1.%d\r\n", r->minor);
  header(s, "Host", r->host);
  header(s, "Authorization", r->authorization);
  header(s, "Content-Type", r->content_type);
  header(s, "Accept", r->accept);
  header(s, "Last-Event-ID", r->last_event_id);
  header(s, "Upgrade", r->upgrade);
  header(s, "Sec-WebSocket-Key", r->ws_key);
  header(s, "Sec-WebSocket-Version", r->ws_version);
  header(s, "Sec-WebSocket-Protocol", r->ws_protocol);
  if (r->minor == 1 && !r->keep_alive) {
    conn_tokens[nconn++] = "close";
  } else if (r->minor == 0 && r->keep_alive) {
    conn_tokens[nconn++] = "keep-alive";
  }
  if (r->connection_upgrade) {
    conn_tokens[nconn++] = "Upgrade";
  }
  for (i = 0; i < nconn; i++) {
    hu_printf(s, "%s%s", i == 0 ? "Connection: " : ", ", conn_tokens[i]);
  }
  if (nconn > 0) {
    hu_add(s, "\r\n", 2);
  }
  if (r->expect_continue) {
    hu_add(s, "Expect: 100-continue\r\n", 22);
  }
  if (r->has_content_length) {
    hu_printf(s, "Content-Length: %llu\r\n",
              (unsigned long long)r->content_length);
  }
  hu_add(s, "\r\n", 2);
  hu_add(s, (const char *)r->body, (size_t)r->content_length);
}

/* check_requests walks the stream once more by hand: stickiness of
   errors, statuses, and the round trip of every accepted request. */
static void check_requests(const uint8_t *in, size_t len,
                           const http_limits *lim) {
  http_parser p;
  http_limits wide = *lim;
  size_t off = 0, used;
  http_parser_init(&p, lim);
  /* re-encoding may triple the target and adds header lines */
  wide.max_target = 3 * lim->max_target + 16;
  wide.max_head = 4 * lim->max_head + 4096 + 3 * lim->max_target;
  wide.max_headers = 64;
  for (;;) {
    int rc = http_parse(&p, in + off, len - off, &used);
    off += used;
    if (rc == HTTP_PARSE_MORE) {
      REQUIRE(off == len);
      break;
    }
    if (rc == HTTP_PARSE_ERROR) {
      const char *why = NULL;
      int st = http_error(&p, &why);
      char buf[512];
      size_t n;
      REQUIRE(st == 400 || st == 413 || st == 414 || st == 417 ||
              st == 431 || st == 501 || st == 505 || st == 503);
      REQUIRE(why != NULL && why[0] != '\0');
      REQUIRE(http_parser_closing(&p));
      REQUIRE(http_parser_request(&p) == NULL);
      REQUIRE(http_parse(&p, in, len, &used) == HTTP_PARSE_ERROR &&
              used == 0);
      n = http_write_error(buf, sizeof buf, st, why, HTTP_RESP_CLOSE, -1, 0);
      REQUIRE(n > 0 && n == http_error_size(st, why, HTTP_RESP_CLOSE, -1, 0));
      break;
    }
    {
      const http_request *r = http_parser_request(&p);
      hu_str a = {NULL, 0, 0}, b = {NULL, 0, 0}, ser = {NULL, 0, 0};
      REQUIRE(r != NULL);
      REQUIRE(r->path.len >= 1 && r->path.p[0] == '/');
      REQUIRE(memchr(r->path.p, '\0', r->path.len) == NULL);
      REQUIRE(r->content_length <= lim->max_body);
      REQUIRE(r->minor == 1 || r->host.p == NULL || r->minor == 0);
      REQUIRE(r->minor == 0 || r->host.p != NULL);
      REQUIRE(!http_parser_take_continue(&p));
      {
        /* the field lines as http_header_next sees them agree with what
           the parser captured */
        http_slice v;
        size_t pos = 0, nhost = 0, ncl = 0;
        while (http_header_next(r, "host", &pos, &v)) {
          REQUIRE(v.len == r->host.len && v.p == r->host.p);
          nhost++;
        }
        REQUIRE(nhost == (r->host.p != NULL));
        pos = 0;
        while (http_header_next(r, "Content-Length", &pos, &v)) {
          ncl++;
        }
        REQUIRE((ncl > 0) == (r->has_content_length != 0));
      }
      hu_describe(&a, r);
      reserialise(&ser, r);
      /* the round trip stops after one request: keep-alive or not */
      hu_run(&b, (const uint8_t *)ser.p, ser.len, &wide, hu_whole, NULL);
      if (!(a.len <= b.len && memcmp(a.p, b.p, a.len) == 0 &&
            (b.len == a.len))) {
        fprintf(stderr, "original: %s\nre-serialised: %.*s\nparsed: %s\n",
                a.p, (int)ser.len, ser.p, b.p ? b.p : "");
        REQUIRE(0);
      }
      free(a.p);
      free(b.p);
      free(ser.p);
      if (http_parser_closing(&p)) {
        break;
      }
      http_parser_next(&p);
      if (off == len) {
        break;
      }
    }
  }
  http_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  http_limits lim;
  hu_str whole = {NULL, 0, 0}, chunked = {NULL, 0, 0}, bytes = {NULL, 0, 0};
  rng r;
  if (size < 2) {
    return 0;
  }
  http_limits_default(&lim);
  if (data[1] != 0) {
    lim.max_target = 4 + (data[1] & 31u);
    lim.max_head = 48 + 8u * (data[1] >> 3);
    lim.max_headers = data[1] % 9u;
    lim.max_body = data[1] % 61u;
  }
  r.s = data[0];
  hu_run(&whole, data + 2, size - 2, &lim, hu_whole, NULL);
  hu_run(&chunked, data + 2, size - 2, &lim, random_chunk, &r);
  hu_run(&bytes, data + 2, size - 2, &lim, hu_one, NULL);
  REQUIRE(whole.len == chunked.len && whole.len == bytes.len);
  REQUIRE(whole.len == 0 || (memcmp(whole.p, chunked.p, whole.len) == 0 &&
                             memcmp(whole.p, bytes.p, whole.len) == 0));
  check_requests(data + 2, size - 2, &lim);
  free(whole.p);
  free(chunked.p);
  free(bytes.p);
  return 0;
}
