/*
 * Shared by the HTTP parser's test, its fuzz target and http_dump: a
 * canonical text form of what the parser made of a byte stream, so that
 * two runs (one read versus byte by byte, a request versus its
 * re-serialisation) are compared as strings.
 *
 * hu_run feeds a stream through one parser in chunks whose sizes come from
 * a callback, handles every request as a server would (http_parser_next,
 * and stops after one without keep-alive), and appends one line per
 * request ("REQ ...") or error ("ERR <status> <reason>"), then "MORE <n>"
 * if a request was left incomplete, and "LEFT <n>" for bytes not consumed.
 * Header-only (static functions), test-side memory from libc.
 */
#ifndef TERN_TESTS_HTTP_UTIL_H
#define TERN_TESTS_HTTP_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

typedef struct hu_str {
  char *p;
  size_t len, cap;
} hu_str;

static inline void hu_grow(hu_str *s, size_t more) {
  if (s->len + more + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + more + 1) {
      cap *= 2;
    }
    s->p = realloc(s->p, cap);
    if (s->p == NULL) {
      abort();
    }
    s->cap = cap;
  }
}

static inline void hu_add(hu_str *s, const char *p, size_t n) {
  hu_grow(s, n);
  if (n) {
    memcpy(s->p + s->len, p, n);
  }
  s->len += n;
  s->p[s->len] = '\0';
}

static inline void hu_printf(hu_str *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static inline void hu_printf(hu_str *s, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) {
    hu_add(s, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
  }
}

/* hu_bytes writes |n| bytes with everything but [A-Za-z0-9._/-] escaped
   as %XX, so that the text form is unambiguous. */
static inline void hu_bytes(hu_str *s, const char *p, size_t n) {
  size_t i;
  if (p == NULL) {
    hu_add(s, "-", 1);
    return;
  }
  hu_add(s, "'", 1);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' ||
        c == '-') {
      hu_add(s, (const char *)&c, 1);
    } else {
      hu_printf(s, "%%%02X", c);
    }
  }
  hu_add(s, "'", 1);
}

static inline void hu_slice(hu_str *s, const char *name, http_slice v) {
  hu_printf(s, " %s=", name);
  hu_bytes(s, v.p, v.len);
}

static inline const char *hu_method(int m) {
  switch (m) {
  case HTTP_GET: return "GET";
  case HTTP_HEAD: return "HEAD";
  case HTTP_POST: return "POST";
  case HTTP_OPTIONS: return "OPTIONS";
  case HTTP_DELETE: return "DELETE";
  default: return "?";
  }
}

static inline void hu_describe(hu_str *s, const http_request *r) {
  size_t i;
  hu_printf(s, "REQ %s 1.%d keep=%d cont=%d", hu_method(r->method), r->minor,
            r->keep_alive, r->expect_continue);
  hu_slice(s, "path", r->path);
  for (i = 0; i < r->nparams; i++) {
    hu_add(s, " ?", 2);
    hu_bytes(s, r->params[i].name.p, r->params[i].name.len);
    hu_add(s, "=", 1);
    hu_bytes(s, r->params[i].value.p, r->params[i].value.len);
  }
  hu_slice(s, "host", r->host);
  hu_slice(s, "auth", r->authorization);
  hu_slice(s, "ctype", r->content_type);
  hu_slice(s, "accept", r->accept);
  hu_slice(s, "leid", r->last_event_id);
  hu_slice(s, "upgrade", r->upgrade);
  hu_slice(s, "wskey", r->ws_key);
  hu_slice(s, "wsver", r->ws_version);
  hu_slice(s, "wsproto", r->ws_protocol);
  hu_printf(s, " connup=%d cl=%d/%llu", r->connection_upgrade,
            r->has_content_length, (unsigned long long)r->content_length);
  hu_add(s, " body=", 6);
  hu_bytes(s, (const char *)r->body, (size_t)r->content_length);
  hu_add(s, "\n", 1);
}

/* The chunk-size source: returns the next read size (>= 1). */
typedef size_t (*hu_chunker)(void *ctx);

static inline size_t hu_whole(void *ctx) {
  (void)ctx;
  return (size_t)-1;
}

static inline size_t hu_one(void *ctx) {
  (void)ctx;
  return 1;
}

/* hu_run: see the file comment.  |lim| may be NULL.  Returns the number
   of complete requests. */
static inline size_t hu_run(hu_str *out, const uint8_t *in, size_t len,
                     const http_limits *lim, hu_chunker next, void *ctx) {
  http_parser p;
  size_t off = 0, nreq = 0;
  int stop = 0;
  http_parser_init(&p, lim);
  while (!stop && off < len) {
    size_t n = next(ctx), used;
    if (n > len - off) {
      n = len - off;
    }
    /* a read is fed until the parser wants more or stops */
    while (n > 0) {
      int rc = http_parse(&p, in + off, n, &used);
      off += used;
      n -= used;
      if (rc == HTTP_PARSE_ERROR) {
        const char *why;
        int st = http_error(&p, &why);
        hu_printf(out, "ERR %d %s\n", st, why);
        stop = 1;
        break;
      }
      if (rc == HTTP_PARSE_DONE) {
        hu_describe(out, http_parser_request(&p));
        nreq++;
        if (http_parser_closing(&p)) {
          stop = 1;
          break;
        }
        http_parser_next(&p);
        http_parser_trim(&p);
        continue;
      }
      if (used == 0 && n > 0) {
        hu_printf(out, "STUCK\n");
        stop = 1;
        break;
      }
    }
  }
  if (!stop && (p.len > 0 || p.state == HTTP_S_BODY)) {
    hu_printf(out, "MORE head=%zu body=%zu\n", p.len, p.body_got);
  }
  if (off < len) {
    hu_printf(out, "LEFT %zu\n", len - off);
  }
  http_parser_free(&p);
  return nreq;
}

#endif
