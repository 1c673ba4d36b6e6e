/*
 * The flat JSON object of a POST /webhooks body (params.h): names to
 * strings, whole numbers and booleans, decoded into the caller's struct.
 */
#include <string.h>

#include "params.h"

static void skip_ws(const char **p, const char *end) {
  while (*p < end && (**p == ' ' || **p == '\t' || **p == '\r' ||
                      **p == '\n')) {
    (*p)++;
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* A JSON string at *p (its opening quote) decoded into |ps|'s buffer:
   0 with *out and *outlen, or -1. */
static int json_string(ternd_params *ps, const char **p, const char *end,
                       char **out, size_t *outlen) {
  const char *s = *p + 1;
  char *o = ps->buf + ps->used;
  char *oend = ps->buf + TERND_VALUES_CAP;
  while (s < end && *s != '"') {
    unsigned char c = (unsigned char)*s++;
    if (c < 0x20) {
      return -1;
    }
    if (c == '\\') {
      if (s >= end) {
        return -1;
      }
      char e = *s++;
      unsigned u = 0;
      switch (e) {
      case '"': case '\\': case '/': c = (unsigned char)e; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u':
        if (end - s < 4) {
          return -1;
        }
        for (int i = 0; i < 4; i++) {
          int h = hexval(s[i]);
          if (h < 0) {
            return -1;
          }
          u = u * 16 + (unsigned)h;
        }
        s += 4;
        if (u == 0 || (u >= 0xd800 && u <= 0xdfff)) {
          return -1; /* no NUL, no surrogates in these short values */
        }
        if ((size_t)(oend - o) < (u < 0x80 ? 1u : u < 0x800 ? 2u : 3u)) {
          return -1;
        }
        if (u < 0x80) {
          *o++ = (char)u;
        } else if (u < 0x800) {
          *o++ = (char)(0xc0 | (u >> 6));
          *o++ = (char)(0x80 | (u & 0x3f));
        } else {
          *o++ = (char)(0xe0 | (u >> 12));
          *o++ = (char)(0x80 | ((u >> 6) & 0x3f));
          *o++ = (char)(0x80 | (u & 0x3f));
        }
        continue;
      default:
        return -1;
      }
    }
    if (o == oend) {
      return -1;
    }
    *o++ = (char)c;
  }
  if (s >= end) {
    return -1;
  }
  *out = ps->buf + ps->used;
  *outlen = (size_t)(o - *out);
  ps->used += *outlen;
  *p = s + 1;
  return 0;
}

/* A value other than a string, decoded into |ps|'s buffer: true ("1"),
   false ("0"), or a whole number as RFC 8259 writes it (0, or digits not
   starting with 0), copied as written.  null, a sign, a fraction, an
   exponent, an object or an array: -1, as no parameter takes one; what
   follows a value is the caller's to check (so "truex" and "01" fail
   there). */
static int json_bare(ternd_params *ps, const char **p, const char *end,
                     char **out, size_t *outlen) {
  const char *s = *p, *from = s;
  size_t avail = (size_t)(end - s), n = 0, taken;
  if (avail >= 4 && memcmp(s, "true", 4) == 0) {
    from = "1";
    n = 1;
    taken = 4;
  } else if (avail >= 5 && memcmp(s, "false", 5) == 0) {
    from = "0";
    n = 1;
    taken = 5;
  } else if (avail > 0 && s[0] == '0') {
    n = 1; /* a leading 0 is the whole number */
    taken = 1;
  } else {
    while (n < avail && s[n] >= '0' && s[n] <= '9') {
      n++;
    }
    taken = n;
  }
  if (n == 0 || TERND_VALUES_CAP - ps->used < n) {
    return -1;
  }
  *out = ps->buf + ps->used;
  memcpy(*out, from, n);
  *outlen = n;
  ps->used += n;
  *p = s + taken;
  return 0;
}

int ternd_params_parse(ternd_params *ps, const char *p, size_t len) {
  const char *end = p + len;
  skip_ws(&p, end);
  if (p >= end || *p != '{') {
    return -1;
  }
  p++;
  skip_ws(&p, end);
  if (p < end && *p == '}') {
    p++;
    skip_ws(&p, end);
    return p == end ? 0 : -1;
  }
  for (;;) {
    if (ps->n == TERND_MAX_FIELDS || p >= end || *p != '"') {
      return -1;
    }
    char *name;
    size_t namelen;
    if (json_string(ps, &p, end, &name, &namelen) != 0) {
      return -1;
    }
    skip_ws(&p, end);
    if (p >= end || *p != ':') {
      return -1;
    }
    p++;
    skip_ws(&p, end);
    char *v;
    size_t vlen;
    if (p < end && *p == '"') {
      if (json_string(ps, &p, end, &v, &vlen) != 0) {
        return -1;
      }
    } else if (json_bare(ps, &p, end, &v, &vlen) != 0) {
      return -1;
    }
    ps->name[ps->n] = name;
    ps->namelen[ps->n] = namelen;
    ps->value[ps->n] = v;
    ps->valuelen[ps->n] = vlen;
    ps->n++;
    skip_ws(&p, end);
    if (p < end && *p == ',') {
      p++;
      skip_ws(&p, end);
      continue;
    }
    if (p < end && *p == '}') {
      p++;
      skip_ws(&p, end);
      return p == end ? 0 : -1;
    }
    return -1;
  }
}
