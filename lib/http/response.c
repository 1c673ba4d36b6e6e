/*
 * The response parser (response.h): one line at a time into the caller's
 * head buffer, each line judged when its LF arrives; the head's meaning
 * settled at its empty line; then the body by its framing.  Lines past the
 * head (chunk sizes, trailers) are judged in the buffer's spare room and
 * dropped, so that the head's pointers stay valid to the end.
 */
#include "http/response.h"

#include <string.h>

#include "tern.h"

#define DEFAULT_MAX_HEADERS 64
#define DEFAULT_MAX_BODY ((uint64_t)1 << 20)
/* Hex digits of a chunk size: 15 keep it below 2^60. */
#define MAX_CHUNK_DIGITS 15

void http_resp_init(http_resp *p, char *head, size_t headcap, uint8_t *keep,
                    size_t keepcap, const http_resp_limits *lim) {
  memset(p, 0, sizeof(*p));
  p->head = head;
  p->headcap = headcap;
  p->keep = keep;
  p->keepcap = keep ? keepcap : 0;
  if (lim) {
    p->lim = *lim;
  } else {
    p->lim.max_headers = DEFAULT_MAX_HEADERS;
    p->lim.max_body = DEFAULT_MAX_BODY;
  }
  p->state = HTTP_R_STATUS;
}

static int fail(http_resp *p, int error, const char *reason) {
  p->state = HTTP_R_ERROR;
  p->error = error;
  p->reason = reason;
  return HTTP_RESP_ERROR;
}

static unsigned lower(unsigned c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int is_tchar(unsigned c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL);
}

static int is_value_char(unsigned c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int hex_value(unsigned c) {
  if (c >= '0' && c <= '9') {
    return (int)(c - '0');
  }
  c = lower(c);
  if (c >= 'a' && c <= 'f') {
    return (int)(c - 'a' + 10);
  }
  return -1;
}

/* |s| (|n| bytes) equals lowercase |name| without case. */
static int same(const char *s, size_t n, const char *name) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (name[i] == '\0' || lower((unsigned char)s[i]) != (unsigned char)name[i]) {
      return 0;
    }
  }
  return name[n] == '\0';
}

/* ---- lines ---------------------------------------------------------------- */

static int status_line(http_resp *p, const char *l, size_t n) {
  if (n < 12 || memcmp(l, "HTTP/", 5) != 0 || l[6] != '.' || l[8] != ' ') {
    return fail(p, TERN_ERR_PROTO, "malformed status line");
  }
  if (l[5] != '1') {
    return fail(p, TERN_ERR_PROTO, "not HTTP/1");
  }
  if (l[7] < '0' || l[7] > '9') {
    return fail(p, TERN_ERR_PROTO, "malformed status line");
  }
  int status = 0;
  for (size_t i = 9; i < 12; i++) {
    if (l[i] < '0' || l[i] > '9') {
      return fail(p, TERN_ERR_PROTO, "malformed status code");
    }
    status = status * 10 + (l[i] - '0');
  }
  if (status < 100 || status > 599) {
    return fail(p, TERN_ERR_PROTO, "status out of range");
  }
  if (n > 12 && l[12] != ' ') {
    return fail(p, TERN_ERR_PROTO, "malformed status line");
  }
  for (size_t i = 13; i < n; i++) {
    if (!is_value_char((unsigned char)l[i])) {
      return fail(p, TERN_ERR_PROTO, "control character in reason");
    }
  }
  p->status = status;
  p->minor = l[7] - '0';
  p->keep_alive = p->minor >= 1;
  p->state = HTTP_R_HEADER;
  return HTTP_RESP_MORE;
}

/* Splits "name: value" and checks both; |*v| and |*vn| get the value
   trimmed.  0 or the error. */
static int split_field(http_resp *p, const char *l, size_t n,
                       size_t *namelen, const char **v, size_t *vn) {
  size_t c = 0;
  while (c < n && l[c] != ':') {
    if (!is_tchar((unsigned char)l[c])) {
      return fail(p, TERN_ERR_PROTO, "malformed header name");
    }
    c++;
  }
  if (c == n || c == 0) {
    return fail(p, TERN_ERR_PROTO, "malformed header line");
  }
  size_t s = c + 1, e = n;
  while (s < e && (l[s] == ' ' || l[s] == '\t')) {
    s++;
  }
  while (e > s && (l[e - 1] == ' ' || l[e - 1] == '\t')) {
    e--;
  }
  for (size_t i = s; i < e; i++) {
    if (!is_value_char((unsigned char)l[i])) {
      return fail(p, TERN_ERR_PROTO, "control character in header");
    }
  }
  *namelen = c;
  *v = l + s;
  *vn = e - s;
  return 0;
}

/* Whether a comma list holds |token| (lowercase) without case. */
static int list_has(const char *v, size_t n, const char *token) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
      i++;
    }
    size_t s = i;
    while (i < n && v[i] != ',') {
      i++;
    }
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
      e--;
    }
    if (e > s && same(v + s, e - s, token)) {
      return 1;
    }
  }
  return 0;
}

static int header_line(http_resp *p, const char *l, size_t n) {
  if (n > 0 && (l[0] == ' ' || l[0] == '\t')) {
    return fail(p, TERN_ERR_PROTO, "obsolete line folding");
  }
  size_t namelen, vn;
  const char *v;
  if (split_field(p, l, n, &namelen, &v, &vn) != 0) {
    return HTTP_RESP_ERROR;
  }
  if (same(l, namelen, "content-length")) {
    uint64_t x = 0;
    if (vn == 0 || vn > 19) {
      return fail(p, TERN_ERR_PROTO, "malformed Content-Length");
    }
    for (size_t i = 0; i < vn; i++) {
      if (v[i] < '0' || v[i] > '9') {
        return fail(p, TERN_ERR_PROTO, "malformed Content-Length");
      }
      x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (p->has_length && x != p->content_length) {
      return fail(p, TERN_ERR_PROTO, "Content-Length lines disagree");
    }
    p->has_length = 1;
    p->content_length = x;
  } else if (same(l, namelen, "transfer-encoding")) {
    if (p->chunked || !same(v, vn, "chunked")) {
      return fail(p, TERN_ERR_PROTO, "transfer coding other than chunked");
    }
    p->chunked = 1;
  } else if (same(l, namelen, "connection")) {
    if (list_has(v, vn, "close")) {
      p->keep_alive = 0;
    } else if (p->minor == 0 && list_has(v, vn, "keep-alive")) {
      p->keep_alive = 1;
    }
  } else if (same(l, namelen, "retry-after") && !p->retry_after) {
    p->retry_after = v;
    p->retry_afterlen = vn;
  }
  return HTTP_RESP_MORE;
}

/* The empty line ends the head: decide the body's framing. */
static int head_done(http_resp *p) {
  if (p->status < 200) {
    if (p->status == 101) {
      return fail(p, TERN_ERR_PROTO, "unasked protocol switch");
    }
    /* Interim: forget it, the final answer follows. */
    p->headlen = 0;
    p->nlines = 0;
    p->has_length = p->chunked = 0;
    p->content_length = 0;
    p->retry_after = NULL;
    p->retry_afterlen = 0;
    p->state = HTTP_R_STATUS;
    return HTTP_RESP_MORE;
  }
  if (p->chunked && p->has_length) {
    return fail(p, TERN_ERR_PROTO, "both Content-Length and chunked");
  }
  if (p->head_request || p->status == 204 || p->status == 304) {
    p->state = HTTP_R_DONE;
    return HTTP_RESP_DONE;
  }
  if (p->chunked) {
    p->state = HTTP_R_CHUNK_SIZE;
    return HTTP_RESP_MORE;
  }
  if (p->has_length) {
    if (p->content_length > p->lim.max_body) {
      return fail(p, TERN_ERR_TOO_LARGE, "body over the limit");
    }
    p->remaining = p->content_length;
    if (p->remaining == 0) {
      p->state = HTTP_R_DONE;
      return HTTP_RESP_DONE;
    }
    p->state = HTTP_R_BODY;
    return HTTP_RESP_MORE;
  }
  p->keep_alive = 0;
  p->state = HTTP_R_CLOSE;
  return HTTP_RESP_MORE;
}

static int chunk_size_line(http_resp *p, const char *l, size_t n) {
  uint64_t x = 0;
  size_t i = 0;
  while (i < n && hex_value((unsigned char)l[i]) >= 0) {
    if (i == MAX_CHUNK_DIGITS) {
      return fail(p, TERN_ERR_TOO_LARGE, "chunk size too long");
    }
    x = x * 16 + (uint64_t)hex_value((unsigned char)l[i]);
    i++;
  }
  if (i == 0) {
    return fail(p, TERN_ERR_PROTO, "malformed chunk size");
  }
  while (i < n && (l[i] == ' ' || l[i] == '\t')) {
    i++;
  }
  if (i < n && l[i] != ';') {
    return fail(p, TERN_ERR_PROTO, "malformed chunk size");
  }
  for (; i < n; i++) {
    if (!is_value_char((unsigned char)l[i])) {
      return fail(p, TERN_ERR_PROTO, "control character in chunk extension");
    }
  }
  if (x > p->lim.max_body - p->bodylen) {
    return fail(p, TERN_ERR_TOO_LARGE, "body over the limit");
  }
  if (x == 0) {
    p->state = HTTP_R_TRAILER;
  } else {
    p->remaining = x;
    p->state = HTTP_R_CHUNK_DATA;
  }
  return HTTP_RESP_MORE;
}

/* A complete line (without its CRLF) in the buffer at line_start. */
static int line(http_resp *p) {
  const char *l = p->head + p->line_start;
  size_t n = p->headlen - p->line_start;
  int r;
  switch (p->state) {
  case HTTP_R_STATUS:
    return status_line(p, l, n);
  case HTTP_R_HEADER:
    if (n == 0) {
      return head_done(p);
    }
    if (++p->nlines > p->lim.max_headers) {
      return fail(p, TERN_ERR_TOO_LARGE, "too many header lines");
    }
    return header_line(p, l, n);
  case HTTP_R_CHUNK_SIZE:
    r = chunk_size_line(p, l, n);
    p->headlen = p->line_start;
    return r;
  case HTTP_R_CHUNK_END:
    if (n != 0) {
      return fail(p, TERN_ERR_PROTO, "no CRLF after chunk data");
    }
    p->state = HTTP_R_CHUNK_SIZE;
    return HTTP_RESP_MORE;
  case HTTP_R_TRAILER:
    p->headlen = p->line_start;
    if (n == 0) {
      p->state = HTTP_R_DONE;
      return HTTP_RESP_DONE;
    }
    if (++p->nlines > p->lim.max_headers) {
      return fail(p, TERN_ERR_TOO_LARGE, "too many trailer lines");
    }
    {
      size_t namelen, vn;
      const char *v;
      if (l[0] == ' ' || l[0] == '\t') {
        return fail(p, TERN_ERR_PROTO, "obsolete line folding");
      }
      return split_field(p, l, n, &namelen, &v, &vn) != 0 ? HTTP_RESP_ERROR
                                                         : HTTP_RESP_MORE;
    }
  default:
    return fail(p, TERN_ERR_PROTO, "internal state");
  }
}

static int is_line_state(enum http_resp_state s) {
  return s == HTTP_R_STATUS || s == HTTP_R_HEADER || s == HTTP_R_CHUNK_SIZE ||
         s == HTTP_R_CHUNK_END || s == HTTP_R_TRAILER;
}

/* Bytes of a line state: copied until CRLF, then judged.  Returns MORE,
   DONE or ERROR; *|i| advances past what was taken.  Returns MORE early
   when a line led out of the line states. */
static int line_bytes(http_resp *p, const uint8_t *in, size_t len,
                      size_t *i) {
  while (*i < len) {
    uint8_t c = in[*i];
    if (p->cr) {
      if (c != '\n') {
        return fail(p, TERN_ERR_PROTO, "CR without LF");
      }
      (*i)++;
      p->cr = 0;
      int r = line(p);
      p->line_start = p->headlen;
      if (r != HTTP_RESP_MORE || !is_line_state(p->state)) {
        return r;
      }
      continue;
    }
    if (c == '\r') {
      p->cr = 1;
      (*i)++;
      continue;
    }
    if (c == '\n') {
      return fail(p, TERN_ERR_PROTO, "bare LF");
    }
    if (p->headlen == p->headcap) {
      return fail(p, TERN_ERR_TOO_LARGE, "head over the limit");
    }
    p->head[p->headlen++] = (char)c;
    (*i)++;
  }
  return HTTP_RESP_MORE;
}

static void body_bytes(http_resp *p, const uint8_t *in, size_t n) {
  if (p->kept < p->keepcap) {
    size_t room = p->keepcap - p->kept;
    size_t k = n < room ? n : room;
    memcpy(p->keep + p->kept, in, k);
    p->kept += k;
  }
  p->bodylen += n;
}

int http_resp_feed(http_resp *p, const uint8_t *in, size_t len,
                   size_t *used) {
  size_t i = 0;
  int r = HTTP_RESP_MORE;
  while (i < len && r == HTTP_RESP_MORE) {
    switch (p->state) {
    case HTTP_R_STATUS:
    case HTTP_R_HEADER:
    case HTTP_R_CHUNK_SIZE:
    case HTTP_R_CHUNK_END:
    case HTTP_R_TRAILER:
      r = line_bytes(p, in, len, &i);
      break;
    case HTTP_R_BODY:
    case HTTP_R_CHUNK_DATA: {
      size_t n = len - i;
      if (n > p->remaining) {
        n = (size_t)p->remaining;
      }
      body_bytes(p, in + i, n);
      i += n;
      p->remaining -= n;
      if (p->remaining == 0) {
        if (p->state == HTTP_R_BODY) {
          p->state = HTTP_R_DONE;
          r = HTTP_RESP_DONE;
        } else {
          p->state = HTTP_R_CHUNK_END;
        }
      }
      break;
    }
    case HTTP_R_CLOSE: {
      /* Up to the limit, then the first byte past it is the error, so
         that where it stops does not depend on the reads. */
      size_t n = len - i;
      uint64_t room = p->lim.max_body - p->bodylen;
      if (n > room) {
        body_bytes(p, in + i, (size_t)room);
        *used = i + (size_t)room;
        return fail(p, TERN_ERR_TOO_LARGE, "body over the limit");
      }
      body_bytes(p, in + i, n);
      i += n;
      break;
    }
    case HTTP_R_DONE:
      r = HTTP_RESP_DONE;
      break;
    case HTTP_R_ERROR:
      r = HTTP_RESP_ERROR;
      break;
    }
  }
  if (r == HTTP_RESP_MORE && p->state == HTTP_R_DONE) {
    r = HTTP_RESP_DONE;
  }
  if (r == HTTP_RESP_MORE && p->state == HTTP_R_ERROR) {
    r = HTTP_RESP_ERROR;
  }
  *used = i;
  return r;
}

int http_resp_eof(http_resp *p) {
  switch (p->state) {
  case HTTP_R_DONE:
    return HTTP_RESP_DONE;
  case HTTP_R_ERROR:
    return HTTP_RESP_ERROR;
  case HTTP_R_CLOSE:
    p->state = HTTP_R_DONE;
    return HTTP_RESP_DONE;
  default:
    return fail(p, TERN_ERR_PROTO, "connection closed before the end");
  }
}
