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
        if (oend - o < 3) {
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
    } else {
      /* A bare word: digits, true, false (copied as written). */
      const char *s = p;
      while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'))) {
        p++;
      }
      vlen = (size_t)(p - s);
      if (vlen == 0 || TERND_VALUES_CAP - ps->used < vlen) {
        return -1;
      }
      v = ps->buf + ps->used;
      memcpy(v, s, vlen);
      ps->used += vlen;
      if (vlen == 4 && memcmp(v, "true", 4) == 0) {
        v[0] = '1';
        vlen = 1;
      } else if (vlen == 5 && memcmp(v, "false", 5) == 0) {
        v[0] = '0';
        vlen = 1;
      }
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
