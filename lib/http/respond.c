/*
 * The response writer: status line and the headers ternd sends, into the
 * caller's buffer, with the exact size computed first so that a response
 * is written whole or not at all; JSON error bodies {"error":"..."}.
 */
#include "http/http.h"

#include <string.h>

void http_response_init(http_response *r, int status) {
  memset(r, 0, sizeof *r);
  r->status = status;
  r->minor = 1;
  r->retry_after = -1;
}

const char *http_status_text(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

/*
 * One routine both measures and writes: with |out| NULL it only counts.
 * Every piece goes through put(), so the size and the bytes cannot
 * disagree.
 */
typedef struct sink {
  char *out;
  size_t n;
} sink;

static void put(sink *s, const char *p, size_t n) {
  if (s->out != NULL) {
    memcpy(s->out + s->n, p, n);
  }
  s->n += n;
}

static void puts_(sink *s, const char *z) {
  put(s, z, strlen(z));
}

static void put_u64(sink *s, uint64_t v) {
  char d[20];
  size_t i = sizeof d;
  do {
    d[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  put(s, d + i, sizeof d - i);
}

static void head(sink *s, const http_response *r) {
  int st = r->status < 100 || r->status > 999 ? 500 : r->status;
  puts_(s, r->minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  put_u64(s, (uint64_t)st);
  puts_(s, " ");
  puts_(s, http_status_text(st));
  puts_(s, "\r\n");
  if (r->flags & HTTP_RESP_SSE) {
    puts_(s, "Content-Type: text/event-stream\r\n"
             "Cache-Control: no-store\r\n"
             "X-Accel-Buffering: no\r\n");
  } else {
    if (r->content_type != NULL) {
      puts_(s, "Content-Type: ");
      puts_(s, r->content_type);
      puts_(s, "\r\n");
    }
    if (r->flags & HTTP_RESP_NO_STORE) {
      puts_(s, "Cache-Control: no-store\r\n");
    }
  }
  /* RFC 9110 §8.6: no Content-Length in 1xx and 204 answers. */
  if (!(r->flags & HTTP_RESP_NO_LENGTH) && st >= 200 && st != 204) {
    puts_(s, "Content-Length: ");
    put_u64(s, r->content_length);
    puts_(s, "\r\n");
  }
  if (r->retry_after >= 0) {
    puts_(s, "Retry-After: ");
    put_u64(s, (uint64_t)r->retry_after);
    puts_(s, "\r\n");
  }
  if (r->allow != NULL) {
    puts_(s, "Allow: ");
    puts_(s, r->allow);
    puts_(s, "\r\n");
  }
  if (r->flags & HTTP_RESP_CLOSE) {
    puts_(s, "Connection: close\r\n");
  } else if (r->flags & HTTP_RESP_KEEP_ALIVE) {
    puts_(s, "Connection: keep-alive\r\n");
  }
  if (r->extra != NULL) {
    puts_(s, r->extra);
  }
  puts_(s, "\r\n");
}

size_t http_response_size(const http_response *r) {
  sink s = {NULL, 0};
  head(&s, r);
  return s.n;
}

size_t http_response_write(const http_response *r, char *buf, size_t cap) {
  sink s = {NULL, 0};
  head(&s, r);
  if (s.n > cap) {
    return 0;
  }
  s.out = buf;
  s.n = 0;
  head(&s, r);
  return s.n;
}

/* JSON string escaping of a NUL-terminated reason (UTF-8 passes). */
static void json_string(sink *s, const char *z) {
  static const char hex[] = "0123456789abcdef";
  puts_(s, "\"");
  for (; *z != '\0'; z++) {
    unsigned char c = (unsigned char)*z;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(s, e, 2);
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(s, e, 6);
    } else {
      put(s, (const char *)&c, 1);
    }
  }
  puts_(s, "\"");
}

static void error_body(sink *s, const char *reason) {
  puts_(s, "{\"error\":");
  json_string(s, reason != NULL ? reason : "");
  puts_(s, "}");
}

size_t http_error_body_size(const char *reason) {
  sink s = {NULL, 0};
  error_body(&s, reason);
  return s.n;
}

static void error_response(sink *s, int status, const char *reason,
                           unsigned flags, int64_t retry_after,
                           int head_only) {
  http_response r;
  http_response_init(&r, status);
  r.flags = (flags | HTTP_RESP_NO_STORE) & ~(unsigned)HTTP_RESP_NO_LENGTH &
            ~(unsigned)HTTP_RESP_SSE;
  r.content_type = "application/json";
  r.content_length = http_error_body_size(reason);
  r.retry_after = retry_after;
  head(s, &r);
  if (!head_only) {
    error_body(s, reason);
  }
}

size_t http_error_size(int status, const char *reason, unsigned flags,
                       int64_t retry_after, int head_only) {
  sink s = {NULL, 0};
  error_response(&s, status, reason, flags, retry_after, head_only);
  return s.n;
}

size_t http_write_error(char *buf, size_t cap, int status, const char *reason,
                        unsigned flags, int64_t retry_after, int head_only) {
  sink s = {NULL, 0};
  error_response(&s, status, reason, flags, retry_after, head_only);
  if (s.n > cap) {
    return 0;
  }
  s.out = buf;
  s.n = 0;
  error_response(&s, status, reason, flags, retry_after, head_only);
  return s.n;
}

size_t http_write_continue(char *buf, size_t cap) {
  static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
  if (cap < sizeof line - 1) {
    return 0;
  }
  memcpy(buf, line, sizeof line - 1);
  return sizeof line - 1;
}
