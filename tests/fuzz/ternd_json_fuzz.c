/*
 * Fuzz target for ternd's reader of the POST /webhooks body
 * (examples/ternd/params.c, built into this target alone).
 *
 * The whole input is the body.  A reference reader written here from
 * RFC 8259 decides what the body is: a flat object whose values are
 * strings, whole numbers without sign, fraction or exponent (kept as
 * written), true ("1") or false ("0"), or anything else.  Then:
 *   - what ternd accepts, the reference accepts, with the same names and
 *     values in the same order;
 *   - what the reference accepts, ternd accepts too, unless it has more
 *     than TERND_MAX_FIELDS fields or more bytes than TERND_VALUES_CAP;
 *   - what ternd accepts lies inside its buffer, and written back as JSON
 *     (every value a string) it reads back the same.
 * The subset is narrower than JSON on purpose: null, nested values, other
 * numbers, \u0000 and surrogate escapes are refused (no parameter is
 * nullable, structured or fractional; the values are short).  Bytes of
 * 0x80 and above pass through unchecked, in both readers.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/ternd/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "ternd_json_fuzz: %s:%d: %s\n", __FILE__, __LINE__,  \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

/* ---- the reference reader ------------------------------------------------ */

#define REF_MAX 64

typedef struct ref_field {
  size_t name_at, namelen, value_at, valuelen; /* offsets into ref.out */
} ref_field;

typedef struct ref {
  const uint8_t *p, *end;
  ref_field f[REF_MAX];
  size_t n;
  uint8_t out[1 << 16]; /* decoded bytes; an input is smaller than this */
  size_t used;
} ref;

static void ref_ws(ref *r) {
  while (r->p < r->end &&
         (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
    r->p++;
  }
}

static int ref_put(ref *r, uint8_t c) {
  if (r->used == sizeof(r->out)) {
    return 0;
  }
  r->out[r->used++] = c;
  return 1;
}

/* Four hex digits at p into *v: 1, or 0. */
static int ref_hex4(const uint8_t *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned d;
    if (p[i] >= '0' && p[i] <= '9') {
      d = (unsigned)(p[i] - '0');
    } else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') {
      d = (unsigned)((p[i] | 0x20) - 'a' + 10);
    } else {
      return 0;
    }
    *v = *v << 4 | d;
  }
  return 1;
}

/* A string at r->p (its quote), decoded to the end of r->out: 1, or 0. */
static int ref_string(ref *r) {
  if (r->p == r->end || *r->p != '"') {
    return 0;
  }
  r->p++;
  for (;;) {
    if (r->p == r->end) {
      return 0;
    }
    uint8_t c = *r->p++;
    if (c == '"') {
      return 1;
    }
    if (c < 0x20) {
      return 0; /* RFC 8259: control characters are escaped */
    }
    if (c != '\\') {
      if (!ref_put(r, c)) {
        return 0;
      }
      continue;
    }
    if (r->p == r->end) {
      return 0;
    }
    c = *r->p++;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e = c ? strchr(from, c) : NULL;
    if (e) {
      if (!ref_put(r, (uint8_t)to[e - from])) {
        return 0;
      }
      continue;
    }
    unsigned u;
    if (c != 'u' || r->end - r->p < 4 || !ref_hex4(r->p, &u)) {
      return 0;
    }
    r->p += 4;
    if (u == 0 || (u >= 0xd800 && u <= 0xdfff)) {
      return 0; /* outside the subset */
    }
    int ok = u < 0x80 ? ref_put(r, (uint8_t)u)
             : u < 0x800
                 ? ref_put(r, (uint8_t)(0xc0 | u >> 6)) &&
                       ref_put(r, (uint8_t)(0x80 | (u & 0x3f)))
                 : ref_put(r, (uint8_t)(0xe0 | u >> 12)) &&
                       ref_put(r, (uint8_t)(0x80 | (u >> 6 & 0x3f))) &&
                       ref_put(r, (uint8_t)(0x80 | (u & 0x3f)));
    if (!ok) {
      return 0;
    }
  }
}

/* Whether the input goes on with the word |w|. */
static int ref_literal(ref *r, const char *w) {
  size_t n = strlen(w);
  return (size_t)(r->end - r->p) >= n && memcmp(r->p, w, n) == 0;
}

/* A value of the subset at r->p, decoded to the end of r->out: 1, or 0. */
static int ref_value(ref *r) {
  if (r->p < r->end && *r->p == '"') {
    return ref_string(r);
  }
  if (ref_literal(r, "true")) {
    r->p += 4;
    return ref_put(r, '1');
  }
  if (ref_literal(r, "false")) {
    r->p += 5;
    return ref_put(r, '0');
  }
  /* RFC 8259 int: 0, or a digit 1-9 then digits.  A '.', 'e' or 'E' after
     it makes a number outside the subset; anything else the caller sees. */
  if (r->p == r->end || *r->p < '0' || *r->p > '9') {
    return 0;
  }
  if (*r->p == '0') {
    r->p++;
    if (!ref_put(r, '0')) {
      return 0;
    }
  } else {
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
      if (!ref_put(r, *r->p++)) {
        return 0;
      }
    }
  }
  return r->p == r->end || (*r->p != '.' && *r->p != 'e' && *r->p != 'E');
}

/* The whole input as an object of the subset: 1 with r->f, or 0. */
static int ref_object(ref *r) {
  ref_ws(r);
  if (r->p == r->end || *r->p != '{') {
    return 0;
  }
  r->p++;
  ref_ws(r);
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    ref_ws(r);
    return r->p == r->end;
  }
  for (;;) {
    if (r->n == REF_MAX) {
      return 0;
    }
    ref_field *f = &r->f[r->n++];
    f->name_at = r->used;
    if (!ref_string(r)) {
      return 0;
    }
    f->namelen = r->used - f->name_at;
    ref_ws(r);
    if (r->p == r->end || *r->p != ':') {
      return 0;
    }
    r->p++;
    ref_ws(r);
    f->value_at = r->used;
    if (!ref_value(r)) {
      return 0;
    }
    f->valuelen = r->used - f->value_at;
    ref_ws(r);
    if (r->p == r->end) {
      return 0;
    }
    uint8_t c = *r->p++;
    if (c == '}') {
      ref_ws(r);
      return r->p == r->end;
    }
    if (c != ',') {
      return 0;
    }
    ref_ws(r);
  }
}

/* ---- the checks ---------------------------------------------------------- */

static int inside(const ternd_params *ps, const char *s, size_t len) {
  return s >= ps->buf && len <= TERND_VALUES_CAP &&
         (size_t)(s - ps->buf) <= TERND_VALUES_CAP - len;
}

static void same(const ternd_params *ps, const ref *r) {
  REQUIRE(ps->n == r->n);
  for (size_t i = 0; i < r->n; i++) {
    const ref_field *f = &r->f[i];
    REQUIRE(ps->namelen[i] == f->namelen);
    REQUIRE(memcmp(ps->name[i], r->out + f->name_at, f->namelen) == 0);
    REQUIRE(ps->valuelen[i] == f->valuelen);
    REQUIRE(memcmp(ps->value[i], r->out + f->value_at, f->valuelen) == 0);
  }
}

/* Writes |s| as a JSON string at |o|; returns the length (at most 6 per
   byte plus 2). */
static size_t quote(char *o, const char *s, size_t len) {
  size_t n = 0;
  o[n++] = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == '"' || c == '\\') {
      n += (size_t)sprintf(o + n, "\\u%04x", c);
    } else {
      o[n++] = (char)c;
    }
  }
  o[n++] = '"';
  return n;
}

/* What |ps| holds, written as JSON with string values, reads back the
   same. */
static void round_trip(const ternd_params *ps) {
  char *json = malloc(2 * (TERND_VALUES_CAP * 6 + 4 * TERND_MAX_FIELDS) + 2);
  ternd_params *again = calloc(1, sizeof(*again));
  REQUIRE(json && again);
  size_t n = 0;
  json[n++] = '{';
  for (size_t i = 0; i < ps->n; i++) {
    if (i > 0) {
      json[n++] = ',';
    }
    n += quote(json + n, ps->name[i], ps->namelen[i]);
    json[n++] = ':';
    n += quote(json + n, ps->value[i], ps->valuelen[i]);
  }
  json[n++] = '}';
  REQUIRE(ternd_params_parse(again, json, n) == 0);
  REQUIRE(again->n == ps->n);
  for (size_t i = 0; i < ps->n; i++) {
    REQUIRE(again->namelen[i] == ps->namelen[i] &&
            memcmp(again->name[i], ps->name[i], ps->namelen[i]) == 0);
    REQUIRE(again->valuelen[i] == ps->valuelen[i] &&
            memcmp(again->value[i], ps->value[i], ps->valuelen[i]) == 0);
  }
  free(again);
  free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ref *r = calloc(1, sizeof(*r));
  ternd_params *ps = calloc(1, sizeof(*ps));
  REQUIRE(r && ps);
  if (size >= sizeof(r->out)) {
    free(ps);
    free(r);
    return 0; /* the decoded form is never longer: keep the bound simple */
  }
  r->p = data;
  r->end = data + size;
  int ref_ok = ref_object(r);
  int ok = ternd_params_parse(ps, (const char *)data, size) == 0;
  if (ok) {
    REQUIRE(ref_ok);
    REQUIRE(ps->n <= TERND_MAX_FIELDS && ps->used <= TERND_VALUES_CAP);
    for (size_t i = 0; i < ps->n; i++) {
      REQUIRE(inside(ps, ps->name[i], ps->namelen[i]));
      REQUIRE(inside(ps, ps->value[i], ps->valuelen[i]));
    }
    same(ps, r);
    round_trip(ps);
  } else if (ref_ok) {
    /* Refused only for room: too many fields, or too many bytes. */
    REQUIRE(r->n > TERND_MAX_FIELDS || r->used > TERND_VALUES_CAP);
  }
  free(ps);
  free(r);
  return 0;
}
