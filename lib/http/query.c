/*
 * Lookups on a parsed request: query parameters (already decoded by the
 * parser), header lines by name, tokens in comma-separated header lists,
 * and the percent-decoder the parser uses.
 */
#include "http/http.h"

#include <string.h>

static int hexval(unsigned c) {
  if (c >= '0' && c <= '9') {
    return (int)(c - '0');
  }
  if (c >= 'a' && c <= 'f') {
    return (int)(c - 'a' + 10);
  }
  if (c >= 'A' && c <= 'F') {
    return (int)(c - 'A' + 10);
  }
  return -1;
}

ptrdiff_t http_pct_decode(char *dst, const char *src, size_t len, int plus) {
  size_t i, o = 0;
  for (i = 0; i < len; i++) {
    char c = src[i];
    if (c == '%') {
      int hi, lo;
      if (i + 2 >= len) {
        return -1;
      }
      hi = hexval((unsigned char)src[i + 1]);
      lo = hexval((unsigned char)src[i + 2]);
      if (hi < 0 || lo < 0) {
        return -1;
      }
      dst[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else if (c == '+' && plus) {
      dst[o++] = ' ';
    } else {
      dst[o++] = c;
    }
  }
  return (ptrdiff_t)o;
}

static int slice_is(http_slice s, const char *z) {
  size_t n = strlen(z);
  return s.len == n && (n == 0 || memcmp(s.p, z, n) == 0);
}

int http_param_get(const http_request *r, const char *name,
                   http_slice *value) {
  size_t i;
  int found = 0;
  for (i = 0; i < r->nparams; i++) {
    if (slice_is(r->params[i].name, name)) {
      if (found++ == 0 && value != NULL) {
        *value = r->params[i].value;
      }
    }
  }
  return found > 1 ? 2 : found;
}

int http_param_u64(const http_request *r, const char *name, uint64_t *out) {
  http_slice v;
  uint64_t n = 0;
  size_t i;
  int found = http_param_get(r, name, &v);
  if (found == 0) {
    return 0;
  }
  if (found > 1 || v.len == 0 || v.len > 20) {
    return -1;
  }
  for (i = 0; i < v.len; i++) {
    unsigned d = (unsigned char)v.p[i] - '0';
    if (d > 9 || n > (UINT64_MAX - d) / 10) {
      return -1;
    }
    n = n * 10 + d;
  }
  *out = n;
  return 1;
}

static unsigned lower(unsigned c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int same_ci(const char *a, size_t n, const char *z) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (z[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)z[i])) {
      return 0;
    }
  }
  return z[n] == '\0';
}

int http_header_next(const http_request *r, const char *name, size_t *pos,
                     http_slice *value) {
  const char *end, *l;
  if (r->head == NULL) {
    return 0;
  }
  end = r->head + r->headlen;
  l = r->head + *pos;
  while (l + 2 < end) { /* the head ends with the empty line */
    const char *eol = memchr(l, '\n', (size_t)(end - l));
    const char *colon = memchr(l, ':', (size_t)(eol - l));
    *pos = (size_t)(eol + 1 - r->head);
    if (same_ci(l, (size_t)(colon - l), name)) {
      const char *v = colon + 1, *ve = eol - 1;
      while (v < ve && (*v == ' ' || *v == '\t')) {
        v++;
      }
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
        ve--;
      }
      value->p = v;
      value->len = (size_t)(ve - v);
      return 1;
    }
    l = eol + 1;
  }
  *pos = r->headlen;
  return 0;
}

int http_list_has(http_slice value, const char *token) {
  const char *s = value.p, *end = value.p + value.len;
  if (s == NULL) {
    return 0;
  }
  while (s < end) {
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *e = comma != NULL ? comma : end;
    const char *b = s;
    while (b < e && (*b == ' ' || *b == '\t')) {
      b++;
    }
    while (e > b && (e[-1] == ' ' || e[-1] == '\t')) {
      e--;
    }
    if (same_ci(b, (size_t)(e - b), token)) {
      return 1;
    }
    if (comma == NULL) {
      break;
    }
    s = comma + 1;
  }
  return 0;
}
