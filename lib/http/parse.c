/*
 * The request parser: bytes in any chunking, one line at a time into the
 * parser's buffer, each line checked as soon as its LF arrives (so a bad
 * request line is answered before its headers are read), the head's
 * meaning (Host, Content-Length, Connection, ...) settled once the empty
 * line ends it, then the Content-Length body.  Limits are checked as bytes
 * arrive, so the status of a bad request does not depend on how it was cut
 * into reads.  Pointers into the buffer are handed out only once the head
 * is complete; the buffer never moves after that.
 */
#include "http/http.h"

#include <stdlib.h>
#include <string.h>

/* The request line besides the target: "OPTIONS" SP SP "HTTP/1.1" CRLF. */
#define REQUEST_LINE_OVERHEAD 19
/* The first buffer; doubled up to max_head. */
#define HEAD_BUF_MIN 1024

void http_limits_default(http_limits *lim) {
  lim->max_target = HTTP_DEFAULT_MAX_TARGET;
  lim->max_head = HTTP_DEFAULT_MAX_HEAD;
  lim->max_headers = HTTP_DEFAULT_MAX_HEADERS;
  lim->max_body = HTTP_DEFAULT_MAX_BODY;
}

/* ---- character classes (RFC 9110 §5.6.2, RFC 3986) --------------------- */

static int is_alnum(unsigned c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z');
}

static int is_hex(unsigned c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

static int is_tchar(unsigned c) {
  return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL);
}

/* A request-target character besides '%': unreserved, sub-delims, ':',
   '@', '/', '?'. */
static int is_target_char(unsigned c) {
  return is_alnum(c) ||
         (c != 0 && strchr("-._~!$&'()*+,;=:@/?", (int)c) != NULL);
}

/* A Host character: reg-name, IP-literal brackets, port colon. */
static int is_host_char(unsigned c) {
  return is_alnum(c) ||
         (c != 0 && strchr("-._~!$&'()*+,;=:[]%", (int)c) != NULL);
}

/* field-vchar, SP, HTAB, obs-text. */
static int is_value_char(unsigned c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned lower(unsigned c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int name_is(const char *s, size_t n, const char *name) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (name[i] == '\0' || lower((unsigned char)s[i]) != (unsigned char)name[i]) {
      return 0;
    }
  }
  return name[n] == '\0';
}

/* ---- errors -------------------------------------------------------------- */

static int fail(http_parser *p, int status, const char *reason) {
  p->state = HTTP_S_ERROR;
  p->status = status;
  p->reason = reason;
  p->req.keep_alive = 0;
  p->continue_pending = 0;
  return HTTP_PARSE_ERROR;
}

/* ---- lifecycle ----------------------------------------------------------- */

void http_parser_init(http_parser *p, const http_limits *lim) {
  memset(p, 0, sizeof *p);
  if (lim != NULL) {
    p->lim = *lim;
  } else {
    http_limits_default(&p->lim);
  }
  p->state = HTTP_S_HEAD;
}

void http_parser_set_allocator(http_parser *p, http_realloc_fn fn,
                               void *user_data) {
  p->realloc_fn = fn;
  p->alloc_user_data = user_data;
}

static void *mem_realloc(http_parser *p, void *ptr, size_t n) {
  if (p->realloc_fn != NULL) {
    return p->realloc_fn(p->alloc_user_data, ptr, n);
  }
  if (n == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, n);
}

static void mem_free(http_parser *p, void *ptr) {
  if (ptr != NULL) {
    mem_realloc(p, ptr, 0);
  }
}

void http_parser_free(http_parser *p) {
  mem_free(p, p->buf);
  mem_free(p, p->bodybuf);
  p->buf = NULL;
  p->bodybuf = NULL;
  p->cap = 0;
  p->len = 0;
}

static void reset_request(http_parser *p) {
  mem_free(p, p->bodybuf);
  p->bodybuf = NULL;
  p->body_got = 0;
  p->len = 0;
  p->line_start = 0;
  p->reqline_start = 0;
  p->target_off = 0;
  p->headlen = 0;
  p->have_request_line = 0;
  p->continue_pending = 0;
  memset(&p->req, 0, sizeof p->req);
  p->state = HTTP_S_HEAD;
}

void http_parser_next(http_parser *p) {
  if (p->state == HTTP_S_DONE) {
    reset_request(p);
  }
}

int http_parser_trim(http_parser *p) {
  if (p->state == HTTP_S_HEAD && p->len == 0) {
    mem_free(p, p->buf);
    p->buf = NULL;
    p->cap = 0;
  }
  return p->buf == NULL && p->bodybuf == NULL;
}

int http_parser_idle(const http_parser *p) {
  return p->state == HTTP_S_HEAD && p->len == 0;
}

const http_request *http_parser_request(const http_parser *p) {
  return p->state == HTTP_S_DONE ? &p->req : NULL;
}

int http_error(const http_parser *p, const char **reason) {
  if (reason != NULL) {
    *reason = p->status ? p->reason : NULL;
  }
  return p->status;
}

int http_parser_closing(const http_parser *p) {
  return p->state == HTTP_S_ERROR ||
         (p->state == HTTP_S_DONE && !p->req.keep_alive);
}

int http_parser_take_continue(http_parser *p) {
  int c = p->continue_pending;
  p->continue_pending = 0;
  return c;
}

/* ---- the request line ---------------------------------------------------- */

static int method_of(const char *m, size_t n) {
  if (n == 3 && memcmp(m, "GET", 3) == 0) {
    return HTTP_GET;
  }
  if (n == 4 && memcmp(m, "POST", 4) == 0) {
    return HTTP_POST;
  }
  if (n == 4 && memcmp(m, "HEAD", 4) == 0) {
    return HTTP_HEAD;
  }
  if (n == 7 && memcmp(m, "OPTIONS", 7) == 0) {
    return HTTP_OPTIONS;
  }
  if (n == 6 && memcmp(m, "DELETE", 6) == 0) {
    return HTTP_DELETE;
  }
  return 0;
}

/* check_target: origin-form, RFC 3986 characters, well-formed escapes. */
static int check_target(http_parser *p, const char *t, size_t n) {
  size_t i;
  if (t[0] != '/') {
    if (t[0] == '*' && n == 1) {
      return fail(p, 400, "asterisk-form target not accepted");
    }
    return fail(p, 400, "target must be origin-form (start with /)");
  }
  for (i = 0; i < n; i++) {
    unsigned c = (unsigned char)t[i];
    if (c == '%') {
      if (i + 2 >= n || !is_hex((unsigned char)t[i + 1]) ||
          !is_hex((unsigned char)t[i + 2])) {
        return fail(p, 400, "bad percent-escape in target");
      }
      i += 2;
    } else if (c == '#') {
      return fail(p, 400, "fragment in target");
    } else if (!is_target_char(c)) {
      return fail(p, 400, "bad character in target");
    }
  }
  return 0;
}

/* request_line parses |n| bytes (CRLF excluded) at buf + |start|. */
static int request_line(http_parser *p, size_t start, size_t n) {
  const char *l = p->buf + start, *sp1, *sp2, *v;
  size_t mlen, tlen, i;
  int method;

  sp1 = memchr(l, ' ', n);
  if (sp1 == NULL || sp1 == l) {
    return fail(p, 400, "bad request line");
  }
  mlen = (size_t)(sp1 - l);
  for (i = 0; i < mlen; i++) {
    if (!is_tchar((unsigned char)l[i])) {
      return fail(p, 400, "bad method");
    }
  }
  sp2 = memchr(sp1 + 1, ' ', n - mlen - 1);
  if (sp2 == NULL) {
    return fail(p, 400, "bad request line");
  }
  tlen = (size_t)(sp2 - sp1 - 1);
  if (tlen == 0) {
    return fail(p, 400, "bad request line");
  }
  v = sp2 + 1;
  if ((size_t)(l + n - v) != 8 || memcmp(v, "HTTP/", 5) != 0 ||
      v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9') {
    return fail(p, 400, "bad HTTP version");
  }
  if (v[5] != '1') {
    return fail(p, 505, "only HTTP/1.x is supported");
  }
  method = method_of(l, mlen);
  if (method == 0) {
    return fail(p, 501, "method not implemented");
  }
  if (tlen > p->lim.max_target) {
    return fail(p, 414, "request target too long");
  }
  if (check_target(p, sp1 + 1, tlen) < 0) {
    return HTTP_PARSE_ERROR;
  }
  p->req.method = method;
  p->req.minor = v[7] == '0' ? 0 : 1;
  p->req.target_len = tlen;
  p->target_off = (size_t)(sp1 + 1 - p->buf);
  p->reqline_start = start;
  p->have_request_line = 1;
  return 0;
}

/* ---- header lines -------------------------------------------------------- */

/* header_line checks the form of one field line (CRLF excluded). */
static int header_line(http_parser *p, const char *l, size_t n) {
  const char *colon;
  size_t i, nlen;

  if (l[0] == ' ' || l[0] == '\t') {
    return fail(p, 400, "obsolete line folding");
  }
  colon = memchr(l, ':', n);
  if (colon == NULL) {
    return fail(p, 400, "header line without colon");
  }
  nlen = (size_t)(colon - l);
  if (nlen == 0) {
    return fail(p, 400, "empty header name");
  }
  if (l[nlen - 1] == ' ' || l[nlen - 1] == '\t') {
    return fail(p, 400, "whitespace before colon");
  }
  for (i = 0; i < nlen; i++) {
    if (!is_tchar((unsigned char)l[i])) {
      return fail(p, 400, "bad header name");
    }
  }
  for (i = nlen + 1; i < n; i++) {
    if (!is_value_char((unsigned char)l[i])) {
      return fail(p, 400, "bad character in header value");
    }
  }
  if (++p->req.nheaders > p->lim.max_headers) {
    return fail(p, 431, "too many header fields");
  }
  return 0;
}

/* ---- the complete head --------------------------------------------------- */

static http_slice trim(const char *s, size_t n) {
  http_slice v;
  while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
    s++;
    n--;
  }
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
    n--;
  }
  v.p = s;
  v.len = n;
  return v;
}

/* once stores a header that may appear only once. */
static int once(http_parser *p, http_slice *dst, http_slice v,
                const char *dup_reason) {
  if (dst->p != NULL) {
    return fail(p, 400, dup_reason);
  }
  *dst = v;
  return 0;
}

/* content_length: 1*DIGIT, at most max_body, equal when repeated. */
static int content_length(http_parser *p, http_slice v) {
  uint64_t n = 0;
  size_t i;
  int too_big = 0;
  if (v.len == 0) {
    return fail(p, 400, "bad Content-Length");
  }
  for (i = 0; i < v.len; i++) {
    unsigned d = (unsigned char)v.p[i] - '0';
    if (d > 9) {
      return fail(p, 400, "bad Content-Length");
    }
    if (n > (UINT64_MAX - d) / 10) {
      too_big = 1;
    } else {
      n = n * 10 + d;
    }
  }
  if (too_big || n > p->lim.max_body) {
    return fail(p, 413, "body too large");
  }
  if (p->req.has_content_length && p->req.content_length != n) {
    return fail(p, 400, "conflicting Content-Length");
  }
  p->req.has_content_length = 1;
  p->req.content_length = n;
  return 0;
}

/* The Connection options we act on. */
#define CONN_CLOSE 0x1
#define CONN_KEEP_ALIVE 0x2

static int connection_options(http_parser *p, http_slice v) {
  int opts = 0;
  if (http_list_has(v, "close")) {
    opts |= CONN_CLOSE;
  }
  if (http_list_has(v, "keep-alive")) {
    opts |= CONN_KEEP_ALIVE;
  }
  if (http_list_has(v, "upgrade")) {
    p->req.connection_upgrade = 1;
  }
  return opts;
}

static int check_host(http_parser *p, http_slice v) {
  size_t i;
  for (i = 0; i < v.len; i++) {
    if (!is_host_char((unsigned char)v.p[i])) {
      return fail(p, 400, "bad Host");
    }
  }
  return 0;
}

/* decode_target splits the target into path and parameters and decodes
   them in place (decoding never lengthens). */
static int decode_target(http_parser *p) {
  http_request *r = &p->req;
  char *t = p->buf + p->target_off;
  size_t n = r->target_len, plen;
  char *q = memchr(t, '?', n);
  ptrdiff_t d;

  plen = q != NULL ? (size_t)(q - t) : n;
  d = http_pct_decode(t, t, plen, 0);
  if (d < 0) {
    return fail(p, 400, "bad percent-escape in target");
  }
  if (memchr(t, '\0', (size_t)d) != NULL) {
    return fail(p, 400, "NUL in path");
  }
  r->path.p = t;
  r->path.len = (size_t)d;
  if (q == NULL) {
    return 0;
  }
  q++;
  n -= plen + 1;
  while (n > 0) {
    char *amp = memchr(q, '&', n);
    size_t plen2 = amp != NULL ? (size_t)(amp - q) : n;
    if (plen2 > 0) {
      char *eq = memchr(q, '=', plen2);
      size_t nlen = eq != NULL ? (size_t)(eq - q) : plen2;
      ptrdiff_t dn, dv = 0;
      http_param *pr;
      if (r->nparams == HTTP_MAX_PARAMS) {
        return fail(p, 400, "too many query parameters");
      }
      pr = &r->params[r->nparams++];
      dn = http_pct_decode(q, q, nlen, 1);
      if (eq != NULL) {
        dv = http_pct_decode(eq + 1, eq + 1, plen2 - nlen - 1, 1);
      }
      if (dn < 0 || dv < 0) {
        return fail(p, 400, "bad percent-escape in target");
      }
      pr->name.p = q;
      pr->name.len = (size_t)dn;
      pr->value.p = eq != NULL ? eq + 1 : q + nlen;
      pr->value.len = (size_t)dv;
    }
    if (amp == NULL) {
      break;
    }
    q = amp + 1;
    n -= plen2 + 1;
  }
  return 0;
}

/* finish_head walks the checked field lines once the empty line arrived. */
static int finish_head(http_parser *p) {
  http_request *r = &p->req;
  const char *l, *end;
  int conn = 0, te = 0;

  /* The field lines only: the request line is decoded in place below,
     and a decoded %0A must not look like the start of a line. */
  l = (const char *)memchr(p->buf + p->reqline_start, '\n',
                           p->len - p->reqline_start) + 1;
  r->head = l;
  r->headlen = (size_t)(p->buf + p->len - l);
  end = p->buf + p->len - 2; /* the final empty line */
  while (l < end) {
    const char *eol = memchr(l, '\n', (size_t)(end - l));
    const char *colon = memchr(l, ':', (size_t)(eol - l));
    size_t nlen = (size_t)(colon - l);
    http_slice v = trim(colon + 1, (size_t)(eol - 1 - colon - 1));
    int rc = 0;

    switch (lower((unsigned char)l[0])) {
    case 'a':
      if (name_is(l, nlen, "authorization")) {
        rc = once(p, &r->authorization, v, "duplicate Authorization");
      } else if (name_is(l, nlen, "accept") && r->accept.p == NULL) {
        r->accept = v;
      }
      break;
    case 'c':
      if (name_is(l, nlen, "content-length")) {
        rc = content_length(p, v);
      } else if (name_is(l, nlen, "connection")) {
        conn |= connection_options(p, v);
      } else if (name_is(l, nlen, "content-type")) {
        rc = once(p, &r->content_type, v, "duplicate Content-Type");
      }
      break;
    case 'e':
      if (name_is(l, nlen, "expect")) {
        if (r->expect_continue) {
          rc = fail(p, 400, "duplicate Expect");
        } else if (v.len != 12 || !name_is(v.p, v.len, "100-continue")) {
          rc = fail(p, 417, "unsupported expectation");
        } else {
          r->expect_continue = 1;
        }
      }
      break;
    case 'h':
      if (name_is(l, nlen, "host")) {
        rc = once(p, &r->host, v, "duplicate Host");
        if (rc == 0) {
          rc = check_host(p, v);
        }
      }
      break;
    case 'l':
      if (name_is(l, nlen, "last-event-id")) {
        rc = once(p, &r->last_event_id, v, "duplicate Last-Event-ID");
      }
      break;
    case 's':
      if (name_is(l, nlen, "sec-websocket-key")) {
        rc = once(p, &r->ws_key, v, "duplicate Sec-WebSocket-Key");
      } else if (name_is(l, nlen, "sec-websocket-version")) {
        rc = once(p, &r->ws_version, v, "duplicate Sec-WebSocket-Version");
      } else if (name_is(l, nlen, "sec-websocket-protocol") &&
                 r->ws_protocol.p == NULL) {
        r->ws_protocol = v;
      }
      break;
    case 't':
      if (name_is(l, nlen, "transfer-encoding")) {
        te = 1;
      }
      break;
    case 'u':
      if (name_is(l, nlen, "upgrade")) {
        rc = once(p, &r->upgrade, v, "duplicate Upgrade");
      }
      break;
    default:
      break;
    }
    if (rc < 0) {
      return HTTP_PARSE_ERROR;
    }
    l = eol + 1;
  }
  if (r->minor == 1 && r->host.p == NULL) {
    return fail(p, 400, "missing Host");
  }
  if (te) {
    if (r->minor == 0) {
      return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if (r->has_content_length) {
      return fail(p, 400, "both Transfer-Encoding and Content-Length");
    }
    return fail(p, 501, "Transfer-Encoding not supported");
  }
  if (r->minor == 0) {
    r->expect_continue = 0; /* RFC 9110 §10.1.1: ignored from 1.0 */
  }
  if (decode_target(p) < 0) {
    return HTTP_PARSE_ERROR;
  }
  r->keep_alive = r->minor == 1 ? !(conn & CONN_CLOSE)
                                : (conn & CONN_KEEP_ALIVE) && !(conn & CONN_CLOSE);
  p->headlen = p->len;
  if (r->content_length == 0) {
    p->state = HTTP_S_DONE;
    return HTTP_PARSE_DONE;
  }
  if (r->content_length <= p->cap - p->len) {
    r->body = (const uint8_t *)p->buf + p->len;
  } else {
    p->bodybuf = mem_realloc(p, NULL, (size_t)r->content_length);
    if (p->bodybuf == NULL) {
      return fail(p, 503, "out of memory");
    }
    r->body = p->bodybuf;
  }
  p->body_got = 0;
  p->continue_pending = r->expect_continue;
  p->state = HTTP_S_BODY;
  return HTTP_PARSE_MORE;
}

/* ---- feeding ------------------------------------------------------------- */

static int grow(http_parser *p, size_t need) {
  size_t cap = p->cap ? p->cap : HEAD_BUF_MIN;
  char *b;
  if (need <= p->cap) {
    return 0;
  }
  while (cap < need) {
    cap *= 2;
  }
  if (cap > p->lim.max_head) {
    cap = p->lim.max_head;
  }
  b = mem_realloc(p, p->buf, cap);
  if (b == NULL) {
    return -1;
  }
  p->buf = b;
  p->cap = cap;
  return 0;
}

/* line: one complete line (LF included) at buf[line_start, len). */
static int line(http_parser *p) {
  size_t start = p->line_start, n = p->len - start;
  const char *l = p->buf + start;
  p->line_start = p->len;
  if (n < 2 || l[n - 2] != '\r') {
    return fail(p, 400, "bare LF");
  }
  n -= 2;
  if (memchr(l, '\r', n) != NULL) {
    return fail(p, 400, "bare CR");
  }
  if (!p->have_request_line) {
    return n == 0 ? HTTP_PARSE_MORE : request_line(p, start, n);
  }
  if (n == 0) {
    return finish_head(p);
  }
  return header_line(p, l, n);
}

static int feed_head(http_parser *p, const uint8_t *in, size_t len,
                     size_t *off) {
  while (*off < len) {
    size_t room = p->lim.max_head - p->len, avail = len - *off, n;
    const uint8_t *nl;
    int in_request_line = !p->have_request_line, rc;
    if (in_request_line) {
      size_t rl_max = p->lim.max_target + REQUEST_LINE_OVERHEAD;
      size_t rl_room = p->len - p->line_start >= rl_max
                           ? 0
                           : rl_max - (p->len - p->line_start);
      if (rl_room == 0) {
        return fail(p, 414, "request line too long");
      }
      if (rl_room < room) {
        room = rl_room;
      }
    }
    if (room == 0) {
      return fail(p, 431, "request head too large");
    }
    n = avail < room ? avail : room;
    nl = memchr(in + *off, '\n', n);
    if (nl != NULL) {
      n = (size_t)(nl - (in + *off)) + 1;
    }
    if (grow(p, p->len + n) < 0) {
      return fail(p, 503, "out of memory");
    }
    memcpy(p->buf + p->len, in + *off, n);
    p->len += n;
    *off += n;
    if (nl != NULL) {
      rc = line(p);
      if (rc != HTTP_PARSE_MORE) {
        return rc;
      }
      if (p->state == HTTP_S_BODY) {
        return HTTP_PARSE_MORE;
      }
    }
  }
  return HTTP_PARSE_MORE;
}

int http_parse(http_parser *p, const uint8_t *in, size_t len, size_t *used) {
  size_t off = 0;
  int rc = HTTP_PARSE_MORE;

  *used = 0;
  switch (p->state) {
  case HTTP_S_DONE:
    return HTTP_PARSE_DONE;
  case HTTP_S_ERROR:
    return HTTP_PARSE_ERROR;
  case HTTP_S_HEAD:
    rc = feed_head(p, in, len, &off);
    if (rc != HTTP_PARSE_MORE || p->state != HTTP_S_BODY) {
      break;
    }
    /* fall through */
  case HTTP_S_BODY: {
    size_t want = (size_t)p->req.content_length - p->body_got;
    size_t n = len - off < want ? len - off : want;
    if (n > 0) {
      uint8_t *body = p->bodybuf != NULL ? p->bodybuf
                                         : (uint8_t *)p->buf + p->headlen;
      memcpy(body + p->body_got, in + off, n);
      p->body_got += n;
      off += n;
    }
    if (p->body_got == (size_t)p->req.content_length) {
      p->continue_pending = 0;
      p->state = HTTP_S_DONE;
      rc = HTTP_PARSE_DONE;
    }
    break;
  }
  }
  *used = off;
  return rc;
}
