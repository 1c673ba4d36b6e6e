/*
 * The HTTP/1.1 request parser and response writer (lib/http).
 *
 * A table of good and bad requests with the status each must get, each
 * run in one read and byte by byte (the two must agree to the byte); every
 * limit at and one past its edge; pipelining; keep-alive for 1.0 and 1.1;
 * 100-continue; the error state; lookups; the response writer's exact
 * output and sizes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_util.h"
#include "tap.h"

/* ---- helpers ------------------------------------------------------------- */

/* run_status: the parse of |req| in one read; returns the status of the
   first answer (200 for a request, the error status, 0 when incomplete)
   and checks that byte-by-byte feeding gives the same text. */
static int run_status(const char *what, const char *req, size_t len,
                      const http_limits *lim) {
  hu_str whole = {NULL, 0, 0}, bytes = {NULL, 0, 0};
  int st = 0;
  hu_run(&whole, (const uint8_t *)req, len, lim, hu_whole, NULL);
  hu_run(&bytes, (const uint8_t *)req, len, lim, hu_one, NULL);
  if (whole.p == NULL) {
    st = 0;
  } else if (strncmp(whole.p, "REQ ", 4) == 0) {
    st = 200;
  } else if (strncmp(whole.p, "ERR ", 4) == 0) {
    st = atoi(whole.p + 4);
  }
  if (!(whole.len == bytes.len &&
        (whole.len == 0 || memcmp(whole.p, bytes.p, whole.len) == 0))) {
    CHECK(0, "%s: byte by byte equals one read", what);
    printf("#   one read: %s#   by bytes: %s", whole.p ? whole.p : "\n",
           bytes.p ? bytes.p : "\n");
  }
  free(whole.p);
  free(bytes.p);
  return st;
}

/* parse_one: one request in one read; returns the parser (DONE or ERROR)
   for field checks.  The caller frees it. */
static int parse_one(http_parser *p, const char *req, const http_limits *lim,
                     size_t *used) {
  size_t u;
  int rc;
  http_parser_init(p, lim);
  rc = http_parse(p, (const uint8_t *)req, strlen(req), &u);
  if (used != NULL) {
    *used = u;
  }
  return rc;
}

/* ---- the table ----------------------------------------------------------- */

typedef struct tcase {
  const char *name;
  const char *req;
  int status; /* 200: accepted; 0: incomplete */
} tcase;

#define H11 " HTTP/1.1\r\nHost: x\r\n"

static const tcase cases[] = {
  /* accepted */
  {"simple GET", "GET /" H11 "\r\n", 200},
  {"HEAD", "HEAD /stats" H11 "\r\n", 200},
  {"OPTIONS", "OPTIONS /publish" H11 "\r\n", 200},
  {"POST with body", "POST /publish?session=a" H11
                     "Content-Length: 5\r\n\r\nhello", 200},
  {"POST without Content-Length", "POST /ack?session=a&seq=1" H11 "\r\n", 200},
  {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 200},
  {"HTTP/1.2 taken as 1.1", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 200},
  {"leading empty lines skipped", "\r\n\r\nGET /" H11 "\r\n", 200},
  {"value with obs-text", "GET /" H11 "X-A: caf\xc3\xa9\r\n\r\n", 200},
  {"value with tabs and inner spaces", "GET /" H11 "X-A:\t a  b \t\r\n\r\n",
   200},
  {"empty header value", "GET /" H11 "X-A:\r\n\r\n", 200},
  {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 200},
  {"Host with port and IPv6", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
   200},
  {"equal Content-Length twice", "POST /" H11 "Content-Length: 2\r\n"
                                 "Content-Length: 2\r\n\r\nab", 200},
  {"Content-Length with leading zeros", "POST /" H11
                                        "Content-Length: 002\r\n\r\nab", 200},
  {"Content-Length 0", "POST /" H11 "Content-Length: 0\r\n\r\n", 200},
  {"all target characters",
   "GET /a-._~!$&'()*+,;=:@/%41?x=/?:@&y" H11 "\r\n", 200},
  {"lowercase header names", "GET / HTTP/1.1\r\nhOsT: x\r\n\r\n", 200},
  {"Expect 100-continue", "POST /" H11 "Expect: 100-Continue\r\n"
                          "Content-Length: 1\r\n\r\nz", 200},
  {"websocket headers", "GET /ws" H11 "Upgrade: websocket\r\n"
                        "Connection: keep-alive, Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Protocol: tern.json, tern.bin\r\n\r\n",
   200},
  {"duplicate list headers", "GET /" H11 "Accept: a\r\nAccept: b\r\n\r\n", 200},

  /* incomplete */
  {"incomplete request line", "GET / HTTP/1.1\r", 0},
  {"incomplete head", "GET /" H11, 0},
  {"incomplete body", "POST /" H11 "Content-Length: 3\r\n\r\nab", 0},

  /* request line */
  {"bare LF after request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
  {"bare LF after header", "GET / HTTP/1.1\r\nHost: x\n\r\n", 400},
  {"bare LF as final line", "GET /" H11 "\n", 400},
  {"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"bare CR in header", "GET /" H11 "X-A: a\rb\r\n\r\n", 400},
  {"bare LF before request line", "\nGET /" H11 "\r\n", 400},
  {"double space after method", "GET  /" H11 "\r\n", 400},
  {"double space before version", "GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"trailing space after version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
  {"tab as separator", "GET\t/" H11 "\r\n", 400},
  {"leading space", " GET /" H11 "\r\n", 400},
  {"missing version", "GET /\r\nHost: x\r\n\r\n", 400},
  {"HTTP/0.9 style", "GET\r\n\r\n", 400},
  {"lowercase version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
  {"version with two digits", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400},
  {"version garbage", "GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400},
  {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
  {"HTTP/0.9 number", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
  {"method with bad character", "G(T /" H11 "\r\n", 400},
  {"PUT not implemented", "PUT /" H11 "\r\n", 501},
  {"PATCH not implemented", "PATCH /" H11 "\r\n", 501},
  {"CONNECT not implemented", "CONNECT x:443" H11 "\r\n", 501},
  {"lowercase get not implemented", "get /" H11 "\r\n", 501},
  {"absolute-form target", "GET http://x/" H11 "\r\n", 400},
  {"asterisk-form target", "OPTIONS *" H11 "\r\n", 400},
  {"authority-form target", "GET x:80" H11 "\r\n", 400},
  {"fragment in target", "GET /a#b" H11 "\r\n", 400},
  {"space-like character in target", "GET /a\"b" H11 "\r\n", 400},
  {"backslash in target", "GET /a\\b" H11 "\r\n", 400},
  {"non-ASCII in target", "GET /caf\xc3\xa9" H11 "\r\n", 400},
  {"NUL in target", "GET /a\0b" H11 "\r\n", 400},
  {"bad escape %zz", "GET /a%zz" H11 "\r\n", 400},
  {"truncated escape %4", "GET /a%4" H11 "\r\n", 400},
  {"truncated escape in query", "GET /a?x=%" H11 "\r\n", 400},
  {"%00 in path", "GET /a%00" H11 "\r\n", 400},

  /* headers */
  {"space before colon", "GET /" H11 "X-A : b\r\n\r\n", 400},
  {"tab before colon", "GET /" H11 "X-A\t: b\r\n\r\n", 400},
  {"obs-fold", "GET /" H11 "X-A: b\r\n c\r\n\r\n", 400},
  {"obs-fold with tab", "GET /" H11 "X-A: b\r\n\tc\r\n\r\n", 400},
  {"first header folded", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400},
  {"no colon", "GET /" H11 "X-A b\r\n\r\n", 400},
  {"empty name", "GET /" H11 ": b\r\n\r\n", 400},
  {"bad name character", "GET /" H11 "X(A): b\r\n\r\n", 400},
  {"control character in value", "GET /" H11 "X-A: a\x01" "b\r\n\r\n", 400},
  {"DEL in value", "GET /" H11 "X-A: a\x7f\r\n\r\n", 400},
  {"NUL in value", "GET /" H11 "X-A: a\0\r\n\r\n", 400},
  {"missing Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
  {"two Hosts", "GET /" H11 "Host: y\r\n\r\n", 400},
  {"bad Host character", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
  {"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
  {"Content-Length not digits", "POST /" H11 "Content-Length: 1a\r\n\r\n",
   400},
  {"Content-Length negative", "POST /" H11 "Content-Length: -1\r\n\r\n", 400},
  {"Content-Length empty", "POST /" H11 "Content-Length:\r\n\r\n", 400},
  {"Content-Length list", "POST /" H11 "Content-Length: 1, 1\r\n\r\n", 400},
  {"Content-Length plus sign", "POST /" H11 "Content-Length: +1\r\n\r\n", 400},
  {"Content-Length differing", "POST /" H11 "Content-Length: 1\r\n"
                               "Content-Length: 2\r\n\r\nab", 400},
  {"Content-Length huge", "POST /" H11
                          "Content-Length: 99999999999999999999999\r\n\r\n",
   413},
  {"Content-Length over limit", "POST /" H11 "Content-Length: 1048577\r\n\r\n",
   413},
  {"Transfer-Encoding chunked", "POST /" H11
                                "Transfer-Encoding: chunked\r\n\r\n", 501},
  {"Transfer-Encoding and Content-Length", "POST /" H11
   "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400},
  {"Transfer-Encoding in 1.0", "POST / HTTP/1.0\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n", 400},
  {"Expect other", "POST /" H11 "Expect: 200-ok\r\n\r\n", 417},
  {"Expect twice", "POST /" H11 "Expect: 100-continue\r\n"
                   "Expect: 100-continue\r\n\r\n", 400},
  {"two Authorization", "GET /" H11 "Authorization: a\r\n"
                        "Authorization: b\r\n\r\n", 400},
  {"two Sec-WebSocket-Key", "GET /" H11 "Sec-WebSocket-Key: a\r\n"
                            "Sec-WebSocket-Key: a\r\n\r\n", 400},
  {"two Upgrade", "GET /" H11 "Upgrade: a\r\nUpgrade: b\r\n\r\n", 400},
  {"two Last-Event-ID", "GET /" H11 "Last-Event-ID: 1\r\n"
                        "Last-Event-ID: 2\r\n\r\n", 400},
  {"two Content-Type", "POST /" H11 "Content-Type: a\r\n"
                       "Content-Type: b\r\n\r\n", 400},
};

static void test_table(void) {
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const tcase *c = &cases[i];
    /* the table's strings may hold NUL: measure up to the final CRLFCRLF
       or the end of the literal */
    size_t len = strlen(c->req);
    char what[160];
    if (strstr(c->name, "NUL") != NULL) {
      const char *nul = c->req + len + 1;
      len += 1 + strlen(nul);
    }
    snprintf(what, sizeof what, "%s -> %d", c->name, c->status);
    CHECK_INT(run_status(c->name, c->req, len, NULL), c->status, what);
  }
}

/* ---- fields -------------------------------------------------------------- */

static int slice_eq(http_slice s, const char *z) {
  return s.p != NULL && s.len == strlen(z) && memcmp(s.p, z, s.len) == 0;
}

static void test_fields(void) {
  http_parser p;
  const http_request *r;
  http_slice v;
  uint64_t u = 0;
  size_t used, pos;
  const char *req =
      "POST /pub%6cish?session=a%2Fb&topic=x+y%2B&id=&prio&&seq=42&seq2="
      "18446744073709551616&ttl=1x HTTP/1.1\r\n"
      "Host: example.com:80\r\n"
      "Authorization:  Bearer s3cret \r\n"
      "Content-Type: application/json\r\n"
      "Accept: text/event-stream\r\n"
      "Last-Event-ID: 7.12\r\n"
      "X-Dup: one\r\n"
      "x-dup: two\r\n"
      "Content-Length: 4\r\n"
      "\r\n"
      "body";
  CHECK_INT(parse_one(&p, req, NULL, &used), HTTP_PARSE_DONE, "fields: done");
  CHECK_INT(used, strlen(req), "fields: every byte consumed");
  r = http_parser_request(&p);
  CHECK(r != NULL && r->method == HTTP_POST && r->minor == 1 &&
            r->keep_alive, "fields: method, version, keep-alive");
  CHECK(slice_eq(r->path, "/publish"), "fields: path decoded");
  CHECK_INT(http_param_get(r, "session", &v), 1, "fields: session once");
  CHECK(slice_eq(v, "a/b"), "fields: %%2F decoded in a value");
  CHECK_INT(http_param_get(r, "topic", &v), 1, "fields: topic");
  CHECK(slice_eq(v, "x y+"), "fields: '+' is a space, %%2B a plus");
  CHECK_INT(http_param_get(r, "id", &v), 1, "fields: id= present");
  CHECK(v.len == 0, "fields: id= empty");
  CHECK_INT(http_param_get(r, "prio", &v), 1, "fields: bare name present");
  CHECK(v.len == 0, "fields: bare name has an empty value");
  CHECK_INT(http_param_get(r, "absent", NULL), 0, "fields: absent");
  CHECK_INT(r->nparams, 7, "fields: empty piece skipped");
  CHECK_INT(http_param_u64(r, "seq", &u), 1, "fields: seq is a number");
  CHECK_INT(u, 42, "fields: seq value");
  CHECK_INT(http_param_u64(r, "seq2", &u), -1, "fields: u64 overflow");
  CHECK_INT(http_param_u64(r, "ttl", &u), -1, "fields: not a number");
  CHECK_INT(http_param_u64(r, "id", &u), -1, "fields: empty number");
  CHECK_INT(http_param_u64(r, "nope", &u), 0, "fields: absent number");
  CHECK(slice_eq(r->host, "example.com:80"), "fields: Host");
  CHECK(slice_eq(r->authorization, "Bearer s3cret"),
        "fields: Authorization trimmed");
  CHECK(slice_eq(r->content_type, "application/json"), "fields: Content-Type");
  CHECK(slice_eq(r->accept, "text/event-stream"), "fields: Accept");
  CHECK(slice_eq(r->last_event_id, "7.12"), "fields: Last-Event-ID");
  CHECK(r->has_content_length && r->content_length == 4 && r->body != NULL &&
            memcmp(r->body, "body", 4) == 0, "fields: body");
  CHECK_INT(r->nheaders, 8, "fields: header count");
  pos = 0;
  CHECK(http_header_next(r, "X-DUP", &pos, &v) && slice_eq(v, "one"),
        "header_next: first line");
  CHECK(http_header_next(r, "x-dup", &pos, &v) && slice_eq(v, "two"),
        "header_next: second line");
  CHECK(!http_header_next(r, "x-dup", &pos, &v), "header_next: no more");
  pos = 0;
  CHECK(!http_header_next(r, "X-Du", &pos, &v), "header_next: prefix no match");
  CHECK_INT(http_parser_closing(&p), 0, "fields: connection stays");
  http_parser_free(&p);

  /* a decoded %0A in the target does not start a header line */
  CHECK_INT(parse_one(&p, "GET /a%0AX-Evil:%20yes?q=%0AHost:%20evil HTTP/1.1"
                          "\r\nHost: good\r\n\r\n", NULL, NULL),
            HTTP_PARSE_DONE, "decoded LF: parsed");
  r = http_parser_request(&p);
  pos = 0;
  CHECK(!http_header_next(r, "x-evil", &pos, &v),
        "decoded LF: no header from the path");
  pos = 0;
  CHECK(http_header_next(r, "host", &pos, &v) && slice_eq(v, "good") &&
            !http_header_next(r, "host", &pos, &v),
        "decoded LF: one Host, the real one");
  http_parser_free(&p);

  /* duplicate parameters are reported, the first value kept */
  CHECK_INT(parse_one(&p, "GET /?a=1&b=2&a=3" H11 "\r\n", NULL, NULL),
            HTTP_PARSE_DONE, "dup params: parsed");
  r = http_parser_request(&p);
  CHECK_INT(http_param_get(r, "a", &v), 2, "dup params: reported");
  CHECK(slice_eq(v, "1"), "dup params: first value");
  CHECK_INT(http_param_u64(r, "a", &u), -1, "dup params: not a number");
  http_parser_free(&p);

  /* names are decoded too, and a value may hold '=' */
  CHECK_INT(parse_one(&p, "GET /?s%65q=a=b" H11 "\r\n", NULL, NULL),
            HTTP_PARSE_DONE, "param names: parsed");
  r = http_parser_request(&p);
  CHECK(http_param_get(r, "seq", &v) == 1 && slice_eq(v, "a=b"),
        "param names: decoded, '=' kept in the value");
  http_parser_free(&p);

  /* websocket capture */
  CHECK_INT(parse_one(&p,
                      "GET /ws?session=k" H11 "Upgrade: websocket\r\n"
                      "Connection: keep-alive, Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Protocol: tern.json, tern.bin\r\n"
                      "Sec-WebSocket-Protocol: other\r\n\r\n",
                      NULL, NULL),
            HTTP_PARSE_DONE, "ws: parsed");
  r = http_parser_request(&p);
  CHECK(slice_eq(r->upgrade, "websocket") && r->connection_upgrade,
        "ws: Upgrade and Connection: upgrade");
  CHECK(slice_eq(r->ws_key, "dGhlIHNhbXBsZSBub25jZQ==") &&
            slice_eq(r->ws_version, "13"), "ws: key and version");
  CHECK(slice_eq(r->ws_protocol, "tern.json, tern.bin"),
        "ws: first protocol line");
  CHECK(http_list_has(r->ws_protocol, "TERN.BIN") &&
            !http_list_has(r->ws_protocol, "tern"), "list_has: tokens");
  pos = 0;
  CHECK(http_header_next(r, "sec-websocket-protocol", &pos, &v) &&
            http_header_next(r, "sec-websocket-protocol", &pos, &v) &&
            slice_eq(v, "other"), "ws: second protocol line reachable");
  http_parser_free(&p);
}

/* ---- keep-alive ---------------------------------------------------------- */

static int keep_of(const char *req) {
  http_parser p;
  int k = -1;
  if (parse_one(&p, req, NULL, NULL) == HTTP_PARSE_DONE) {
    k = http_parser_request(&p)->keep_alive;
    if (k != !http_parser_closing(&p)) {
      k = -2;
    }
  }
  http_parser_free(&p);
  return k;
}

static void test_keep_alive(void) {
  CHECK_INT(keep_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1, "1.1: keep");
  CHECK_INT(keep_of("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            0, "1.1 close: close");
  CHECK_INT(keep_of("GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n"),
            0, "1.1 Close (any case): close");
  CHECK_INT(keep_of("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                    "Connection: close\r\n\r\n"),
            0, "1.1 close on a second Connection line: close");
  CHECK_INT(keep_of("GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n"),
            1, "1.1 'closed' is not close");
  CHECK_INT(keep_of("GET / HTTP/1.0\r\n\r\n"), 0, "1.0: close");
  CHECK_INT(keep_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 1,
            "1.0 keep-alive: keep");
  CHECK_INT(keep_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 1,
            "1.0 Keep-Alive (any case): keep");
  CHECK_INT(keep_of("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
            0, "1.0 keep-alive and close: close");
}

/* ---- pipelining ---------------------------------------------------------- */

static void test_pipelining(void) {
  const char *two = "POST /publish?session=a HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: 3\r\n\r\nabc"
                    "GET /poll?session=a&seq=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  const char *first_end = strstr(two, "abc") + 3;
  http_parser p;
  size_t used, len = strlen(two);
  hu_str out = {NULL, 0, 0};
  const http_request *r;

  http_parser_init(&p, NULL);
  CHECK_INT(http_parse(&p, (const uint8_t *)two, len, &used), HTTP_PARSE_DONE,
            "pipelined: first request");
  CHECK_INT(used, first_end - two, "pipelined: only the first consumed");
  r = http_parser_request(&p);
  CHECK(r->method == HTTP_POST && r->content_length == 3, "pipelined: POST");
  CHECK_INT(http_parse(&p, (const uint8_t *)two + used, len - used, &used),
            HTTP_PARSE_DONE, "pipelined: DONE until next");
  CHECK_INT(used, 0, "pipelined: nothing consumed while DONE");
  http_parser_next(&p);
  CHECK_INT(http_parse(&p, (const uint8_t *)first_end,
                       len - (size_t)(first_end - two), &used),
            HTTP_PARSE_DONE, "pipelined: second request");
  CHECK_INT(used, len - (size_t)(first_end - two), "pipelined: rest consumed");
  r = http_parser_request(&p);
  CHECK(r->method == HTTP_GET && r->path.len == 5, "pipelined: GET /poll");
  http_parser_free(&p);

  CHECK_INT(hu_run(&out, (const uint8_t *)two, len, NULL, hu_whole, NULL), 2,
            "pipelined: two requests from one read");
  free(out.p);
  out.p = NULL;
  out.len = out.cap = 0;

  /* three in one read, the second asks to close: the third is left */
  {
    const char *three = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        "GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(hu_run(&out, (const uint8_t *)three, strlen(three), NULL,
                     hu_whole, NULL),
              2, "pipelined: stop after Connection: close");
    CHECK(strstr(out.p, "LEFT 28\n") != NULL, "pipelined: third left unread");
    free(out.p);
    out.p = NULL;
    out.len = out.cap = 0;
  }
  /* a bad second request: the first is served, then the error */
  {
    const char *bad = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /b HTTP/1.1\nHost: x\r\n\r\nGET /c HTTP/1.1\r\n";
    CHECK_INT(hu_run(&out, (const uint8_t *)bad, strlen(bad), NULL, hu_whole,
                     NULL),
              1, "pipelined: one good before the bad one");
    CHECK(strstr(out.p, "ERR 400 bare LF\n") != NULL,
          "pipelined: then the error");
    CHECK(strstr(out.p, "LEFT 28\n") != NULL,
          "pipelined: nothing read past the bad line");
    free(out.p);
  }
}

/* ---- the error state ----------------------------------------------------- */

static void test_error_state(void) {
  http_parser p;
  size_t used;
  const char *why = NULL;
  const char *req = "GET /x HTTP/1.1\r\nBad Name: x\r\nHost: x\r\n\r\n";
  CHECK_INT(parse_one(&p, req, NULL, &used), HTTP_PARSE_ERROR, "error: found");
  CHECK_INT(used, strlen("GET /x HTTP/1.1\r\nBad Name: x\r\n"),
            "error: consumed up to the bad line's end, no further");
  CHECK_INT(http_error(&p, &why), 400, "error: status");
  CHECK(why != NULL && strcmp(why, "bad header name") == 0, "error: reason");
  CHECK(http_parser_closing(&p), "error: connection closes");
  CHECK(http_parser_request(&p) == NULL, "error: no request");
  CHECK_INT(http_parse(&p, (const uint8_t *)"GET", 3, &used), HTTP_PARSE_ERROR,
            "error: sticky");
  CHECK_INT(used, 0, "error: nothing consumed afterwards");
  http_parser_next(&p);
  CHECK_INT(http_error(&p, NULL), 400, "error: next does not clear it");
  http_parser_free(&p);

  http_parser_init(&p, NULL);
  CHECK_INT(http_error(&p, &why), 0, "no error: status 0");
  CHECK(why == NULL, "no error: no reason");
  CHECK(!http_parser_closing(&p), "no error: not closing");
  http_parser_free(&p);
}

/* ---- limits -------------------------------------------------------------- */

static char *make_req(const char *method, size_t target_len, size_t nheaders,
                      size_t pad_len, size_t body_len, size_t *len) {
  hu_str s = {NULL, 0, 0};
  size_t i;
  hu_printf(&s, "%s /", method);
  for (i = 1; i < target_len; i++) {
    hu_add(&s, "a", 1);
  }
  hu_printf(&s, " HTTP/1.1\r\nHost: x\r\n");
  for (i = 1; i < nheaders; i++) {
    hu_printf(&s, "X-%zu: v\r\n", i);
  }
  if (pad_len > 0) {
    hu_add(&s, "X-Pad: ", 7);
    for (i = 0; i < pad_len; i++) {
      hu_add(&s, "p", 1);
    }
    hu_add(&s, "\r\n", 2);
  }
  if (body_len > 0) {
    hu_printf(&s, "Content-Length: %zu\r\n", body_len);
  }
  hu_add(&s, "\r\n", 2);
  for (i = 0; i < body_len; i++) {
    hu_add(&s, "b", 1);
  }
  *len = s.len;
  return s.p;
}

static void edge(const char *what, const char *method, size_t target,
                 size_t nheaders, size_t pad, size_t body,
                 const http_limits *lim, int want) {
  size_t len;
  char *req = make_req(method, target, nheaders, pad, body, &len);
  CHECK_INT(run_status(what, req, len, lim), want, what);
  free(req);
}

static void test_limits(void) {
  http_limits lim;
  size_t len, base;
  char *req;

  http_limits_default(&lim);
  CHECK(lim.max_target == 2048 && lim.max_head == 8192 &&
            lim.max_headers == 64 && lim.max_body == 1048576,
        "limits: defaults");

  /* target: default limit, at and past */
  edge("target at 2048", "GET", 2048, 1, 0, 0, NULL, 200);
  edge("target at 2049", "GET", 2049, 1, 0, 0, NULL, 414);
  edge("target far past (no line end)", "GET", 100000, 1, 0, 0, NULL, 414);
  lim.max_target = 10;
  edge("target at 10", "OPTIONS", 10, 1, 0, 0, &lim, 200);
  edge("target at 11", "GET", 11, 1, 0, 0, &lim, 414);
  edge("target at 11, long method", "OPTIONS", 11, 1, 0, 0, &lim, 414);

  /* head size: the whole head is exactly max_head, then one more */
  http_limits_default(&lim);
  req = make_req("GET", 1, 1, 0, 0, &len);
  free(req);
  base = len + strlen("X-Pad: \r\n"); /* head with an empty pad */
  lim.max_head = 1000;
  edge("head at 1000", "GET", 1, 1, 1000 - base, 0, &lim, 200);
  edge("head at 1001", "GET", 1, 1, 1001 - base, 0, &lim, 431);
  edge("default head at 8192", "GET", 1, 1, 8192 - base, 0, NULL, 200);
  edge("default head at 8193", "GET", 1, 1, 8193 - base, 0, NULL, 431);
  lim.max_head = 10;
  edge("request line longer than max_head", "GET", 1, 1, 0, 0, &lim, 431);

  /* header count */
  http_limits_default(&lim);
  edge("64 headers", "GET", 1, 64, 0, 0, NULL, 200);
  edge("65 headers", "GET", 1, 65, 0, 0, NULL, 431);
  lim.max_headers = 2;
  edge("2 headers of 2", "POST", 1, 1, 0, 1, &lim, 200);
  edge("3 headers of 2", "POST", 1, 2, 0, 1, &lim, 431);

  /* body */
  http_limits_default(&lim);
  lim.max_body = 100;
  edge("body at 100", "POST", 1, 1, 0, 100, &lim, 200);
  edge("body at 101", "POST", 1, 1, 0, 101, &lim, 413);
  edge("default body at 1 MiB", "POST", 1, 1, 0, (size_t)1 << 20, NULL, 200);
  edge("default body at 1 MiB + 1", "POST", 1, 1, 0, ((size_t)1 << 20) + 1,
       NULL, 413);
  lim.max_body = 0;
  edge("body limit 0, Content-Length 0", "POST", 1, 1, 0, 0, &lim, 200);
  edge("body limit 0, Content-Length 1", "POST", 1, 1, 0, 1, &lim, 413);

  /* query parameters */
  {
    hu_str s = {NULL, 0, 0};
    size_t i;
    hu_add(&s, "GET /?", 6);
    for (i = 0; i < HTTP_MAX_PARAMS; i++) {
      hu_printf(&s, "p%zu=%zu&", i, i);
    }
    hu_printf(&s, " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(run_status("16 params", s.p, s.len, NULL), 200, "16 params");
    s.len = 0;
    hu_add(&s, "GET /?", 6);
    for (i = 0; i <= HTTP_MAX_PARAMS; i++) {
      hu_printf(&s, "p%zu=%zu&", i, i);
    }
    hu_printf(&s, " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(run_status("17 params", s.p, s.len, NULL), 400, "17 params");
    free(s.p);
  }
}

/* ---- bodies, 100-continue, memory ----------------------------------------- */

static void test_body_and_memory(void) {
  http_parser p;
  size_t used, len;
  char *req = make_req("POST", 1, 1, 0, 5000, &len);
  const http_request *r;
  size_t head = len - 5000, i;
  int rc = HTTP_PARSE_MORE, ok = 1;

  /* a body larger than the head buffer's spare room, fed in uneven reads */
  http_parser_init(&p, NULL);
  for (i = 0; i < len && rc == HTTP_PARSE_MORE; i += used) {
    size_t n = len - i < 777 ? len - i : 777;
    rc = http_parse(&p, (const uint8_t *)req + i, n, &used);
    if (rc == HTTP_PARSE_MORE && used != n) {
      ok = 0;
    }
  }
  CHECK(ok && rc == HTTP_PARSE_DONE && i == len, "big body: uneven reads");
  r = http_parser_request(&p);
  CHECK(r->content_length == 5000 && r->body[0] == 'b' && r->body[4999] == 'b',
        "big body: bytes");
  CHECK(p.bodybuf != NULL, "big body: in its own buffer");
  CHECK(!http_parser_trim(&p), "trim: not while a request is held");
  http_parser_next(&p);
  CHECK(p.bodybuf == NULL, "next: body buffer given back");
  CHECK(http_parser_trim(&p), "trim: idle parser holds nothing");
  CHECK(p.buf == NULL, "trim: head buffer given back");
  http_parser_free(&p);
  free(req);
  (void)head;

  /* a small body stays in the head buffer */
  CHECK_INT(parse_one(&p, "POST /" H11 "Content-Length: 2\r\n\r\nok", NULL,
                      NULL),
            HTTP_PARSE_DONE, "small body: done");
  CHECK(p.bodybuf == NULL, "small body: no second allocation");
  http_parser_free(&p);

  /* trim in the middle of a head keeps the bytes */
  http_parser_init(&p, NULL);
  CHECK(http_parser_idle(&p), "idle: fresh parser");
  http_parse(&p, (const uint8_t *)"GET / HT", 8, &used);
  CHECK(!http_parser_idle(&p), "idle: not with a partial head");
  CHECK(!http_parser_trim(&p) && p.buf != NULL, "trim: partial head kept");
  http_parser_free(&p);

  /* idle again between requests */
  CHECK_INT(parse_one(&p, "POST /" H11 "Content-Length: 2\r\n\r\n", NULL,
                      NULL),
            HTTP_PARSE_MORE, "idle: head in");
  CHECK(!http_parser_idle(&p), "idle: not while the body is awaited");
  http_parse(&p, (const uint8_t *)"ok", 2, &used);
  CHECK(!http_parser_idle(&p), "idle: not while a request is held");
  http_parser_next(&p);
  CHECK(http_parser_idle(&p), "idle: after next");
  http_parser_free(&p);

  /* 100-continue: flagged once the head is in, once */
  {
    const char *h = "POST /publish HTTP/1.1\r\nHost: x\r\n"
                    "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    char out[64];
    http_parser_init(&p, NULL);
    CHECK_INT(http_parse(&p, (const uint8_t *)h, strlen(h), &used),
              HTTP_PARSE_MORE, "continue: head in, body pending");
    CHECK_INT(http_parser_take_continue(&p), 1, "continue: to send");
    CHECK_INT(http_parser_take_continue(&p), 0, "continue: only once");
    CHECK_INT(http_parse(&p, (const uint8_t *)"xyz", 3, &used),
              HTTP_PARSE_DONE, "continue: body");
    CHECK(http_parser_request(&p)->expect_continue, "continue: flag kept");
    http_parser_free(&p);
    CHECK_INT(http_write_continue(out, sizeof out), 25, "continue: line size");
    CHECK_MEM(out, 25, "HTTP/1.1 100 Continue\r\n\r\n", 25, "continue: line");
    CHECK_INT(http_write_continue(out, 24), 0, "continue: no room");
  }
  /* no 100 when the body came with the head, or from HTTP/1.0 */
  CHECK_INT(parse_one(&p, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue"
                          "\r\nContent-Length: 1\r\n\r\nz", NULL, NULL),
            HTTP_PARSE_DONE, "continue: body already here");
  CHECK_INT(http_parser_take_continue(&p), 0, "continue: not needed");
  http_parser_free(&p);
  CHECK_INT(parse_one(&p, "POST / HTTP/1.0\r\nExpect: 100-continue"
                          "\r\nContent-Length: 1\r\n\r\n", NULL, NULL),
            HTTP_PARSE_MORE, "continue: 1.0 head");
  CHECK_INT(http_parser_take_continue(&p), 0, "continue: ignored from 1.0");
  http_parser_free(&p);
}

/* ---- responses ------------------------------------------------------------ */

static void test_responses(void) {
  http_response r;
  char buf[512];
  size_t n;
  const char *want;

  http_response_init(&r, 202);
  r.content_type = "application/json";
  r.content_length = 12;
  want = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
         "Content-Length: 12\r\n\r\n";
  n = http_response_write(&r, buf, sizeof buf);
  CHECK_MEM(buf, n, want, strlen(want), "response: 202 with JSON");
  CHECK_INT(http_response_size(&r), strlen(want), "response: size exact");
  CHECK_INT(http_response_write(&r, buf, strlen(want) - 1), 0,
            "response: one byte short writes nothing");
  CHECK_INT(http_response_write(&r, buf, strlen(want)), strlen(want),
            "response: exact room is enough");

  http_response_init(&r, 429);
  r.retry_after = 3;
  r.flags = HTTP_RESP_CLOSE | HTTP_RESP_NO_STORE;
  r.content_type = "application/json";
  r.content_length = 0;
  want = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
         "Cache-Control: no-store\r\nContent-Length: 0\r\nRetry-After: 3\r\n"
         "Connection: close\r\n\r\n";
  n = http_response_write(&r, buf, sizeof buf);
  CHECK_MEM(buf, n, want, strlen(want), "response: 429 Retry-After, close");

  http_response_init(&r, 200);
  r.flags = HTTP_RESP_SSE | HTTP_RESP_NO_LENGTH | HTTP_RESP_KEEP_ALIVE;
  r.minor = 0;
  want = "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n"
         "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
         "Connection: keep-alive\r\n\r\n";
  n = http_response_write(&r, buf, sizeof buf);
  CHECK_MEM(buf, n, want, strlen(want), "response: SSE head");

  http_response_init(&r, 204);
  want = "HTTP/1.1 204 No Content\r\n\r\n";
  n = http_response_write(&r, buf, sizeof buf);
  CHECK_MEM(buf, n, want, strlen(want), "response: 204 has no length");

  http_response_init(&r, 101);
  r.extra = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\n\r\n";
  n = http_response_write(&r, buf, sizeof buf);
  CHECK_MEM(buf, n, want, strlen(want), "response: 101 with extra lines");

  http_response_init(&r, 405);
  r.allow = "POST, OPTIONS";
  r.content_length = 0;
  want = "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
         "Allow: POST, OPTIONS\r\n\r\n";
  n = http_response_write(&r, buf, sizeof buf);
  CHECK_MEM(buf, n, want, strlen(want), "response: 405 with Allow");

  want = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
         "Cache-Control: no-store\r\nContent-Length: 29\r\n"
         "Connection: close\r\n\r\n{\"error\":\"bad \\\"x\\\"\\\\\\u0001\"}";
  n = http_write_error(buf, sizeof buf, 400, "bad \"x\"\\\x01", HTTP_RESP_CLOSE,
                       -1, 0);
  CHECK_MEM(buf, n, want, strlen(want), "error: JSON escaped body");
  CHECK_INT(http_error_size(400, "bad \"x\"\\\x01", HTTP_RESP_CLOSE, -1, 0),
            strlen(want), "error: size exact");
  CHECK_INT(http_error_body_size("bad \"x\"\\\x01"), 29, "error: body size");
  CHECK_INT(http_write_error(buf, strlen(want) - 1, 400, "bad \"x\"\\\x01",
                             HTTP_RESP_CLOSE, -1, 0),
            0, "error: one byte short writes nothing");
  n = http_write_error(buf, sizeof buf, 404, "no such path", 0, -1, 1);
  want = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
         "Cache-Control: no-store\r\nContent-Length: 24\r\n\r\n";
  CHECK_MEM(buf, n, want, strlen(want), "error: HEAD gets the head only");
  n = http_write_error(buf, sizeof buf, 503, "busy", 0, 5, 0);
  CHECK(n > 0 && strstr(buf, "Retry-After: 5\r\n") != NULL,
        "error: Retry-After");

  {
    /* every status the parser or ternd's API answers has its phrase */
    static const int used[] = {100, 101, 200, 202, 204, 400, 401, 403, 404,
                               405, 408, 413, 414, 417, 429, 431, 500, 501,
                               503, 505};
    size_t i;
    int all = 1;
    for (i = 0; i < sizeof used / sizeof used[0]; i++) {
      all &= strcmp(http_status_text(used[i]), "Unknown") != 0;
    }
    CHECK(all, "status texts: every status in use has its phrase");
  }
  CHECK(strcmp(http_status_text(413), "Content Too Large") == 0 &&
            strcmp(http_status_text(431),
                   "Request Header Fields Too Large") == 0 &&
            strcmp(http_status_text(299), "Unknown") == 0,
        "status texts");
}

/* ---- the parser's answers go through the writer --------------------------- */

static void test_error_roundtrip(void) {
  http_parser p;
  char buf[512];
  const char *why;
  size_t n;
  int st;
  parse_one(&p, "GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                "\r\n\r\n", NULL, NULL);
  st = http_error(&p, &why);
  n = http_write_error(buf, sizeof buf, st, why, HTTP_RESP_CLOSE, -1, 0);
  buf[n < sizeof buf ? n : sizeof buf - 1] = '\0';
  CHECK(st == 501 && strstr(buf, "HTTP/1.1 501 Not Implemented\r\n") == buf &&
            strstr(buf, "{\"error\":\"Transfer-Encoding not supported\"}") !=
                NULL, "501 for chunked, said in the body");
  http_parser_free(&p);
}

/* ---- allocation failures ------------------------------------------------- */

typedef struct failing {
  long calls, fail_at, live;
} failing;

static void *failing_realloc(void *ud, void *ptr, size_t n) {
  failing *f = ud;
  void *q;
  if (n == 0) {
    if (ptr != NULL) {
      f->live--;
    }
    free(ptr);
    return NULL;
  }
  if (++f->calls == f->fail_at) {
    return NULL;
  }
  q = realloc(ptr, n);
  if (q != NULL && ptr == NULL) {
    f->live++;
  }
  return q;
}

/* Every allocation of a parse, failed in turn: a 503 (or success when the
   failed call is past the last one), the parser stays usable for
   http_parser_free, and nothing leaks. */
static void test_alloc_failures(void) {
  size_t len;
  char *req = make_req("POST", 1, 40, 1500, 3000, &len);
  long at;
  int all_ok = 1, saw_503 = 0, saw_done = 0;
  for (at = 1; at <= 8; at++) {
    int chunk;
    for (chunk = 0; chunk < 2; chunk++) {
      failing f = {0, at, 0};
      http_parser p;
      size_t off = 0, used;
      int rc = HTTP_PARSE_MORE;
      http_parser_init(&p, NULL);
      http_parser_set_allocator(&p, failing_realloc, &f);
      while (off < len && rc == HTTP_PARSE_MORE) {
        size_t n = chunk ? 1 : len - off;
        rc = http_parse(&p, (const uint8_t *)req + off, n, &used);
        off += used;
      }
      if (rc == HTTP_PARSE_ERROR) {
        saw_503 += http_error(&p, NULL) == 503;
        all_ok &= http_error(&p, NULL) == 503 && http_parser_closing(&p);
      } else {
        saw_done += rc == HTTP_PARSE_DONE;
        all_ok &= rc == HTTP_PARSE_DONE && f.calls < at;
      }
      http_parser_free(&p);
      all_ok &= f.live == 0;
    }
  }
  CHECK(all_ok, "alloc failures: 503 or success, no leak");
  CHECK(saw_503 > 0 && saw_done > 0, "alloc failures: both outcomes seen");
  free(req);
}

int main(void) {
  test_table();
  test_fields();
  test_keep_alive();
  test_pipelining();
  test_error_state();
  test_limits();
  test_body_and_memory();
  test_responses();
  test_error_roundtrip();
  test_alloc_failures();
  return tap_done();
}
