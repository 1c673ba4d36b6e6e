/*
 * Fuzz target for the JSON of the web framings (lib/web/json.c) and the
 * strict base64 decoder (lib/web/base64.c).
 *
 * The first input byte picks a mode:
 *   0  envelope: seq, priority, id, content type and payload are cut from
 *      the input; the envelope is encoded (size first, then write: exactly
 *      that many bytes, head + tail equal to the whole) and parsed back by a
 *      small reference JSON reader written here, which must find the same
 *      fields: the payload as a string when it is UTF-8, as base64 with
 *      "enc":"base64" otherwise; id and ct with invalid bytes read as
 *      Latin-1.
 *   1  the {"ack":N} parser on the rest of the input, checked against a
 *      reference grammar here; an accepted ack re-encodes and parses to the
 *      same value.
 *   2  dropped and heartbeat objects parse back.
 *   3  base64: the strict decoder on the input; whatever it accepts
 *      re-encodes to exactly the input (one encoding per byte string).
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/base64.h"
#include "web/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "json_fuzz: %s:%d: %s\n", __FILE__, __LINE__,        \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  REQUIRE(p != NULL);
  return p;
}

/* ---- reference UTF-8 (by code point) ------------------------------------- */

/* ref_cp decodes one code point at p (RFC 3629 table, written out);
   returns its length or 0. */
static size_t ref_cp(const uint8_t *p, size_t n, uint32_t *cp) {
  uint32_t c;
  size_t len, i;
  if (p[0] < 0x80) {
    *cp = p[0];
    return 1;
  }
  if ((p[0] & 0xe0) == 0xc0) {
    len = 2, c = p[0] & 0x1fu;
  } else if ((p[0] & 0xf0) == 0xe0) {
    len = 3, c = p[0] & 0x0fu;
  } else if ((p[0] & 0xf8) == 0xf0) {
    len = 4, c = p[0] & 0x07u;
  } else {
    return 0;
  }
  if (len > n) {
    return 0;
  }
  for (i = 1; i < len; ++i) {
    if ((p[i] & 0xc0) != 0x80) {
      return 0;
    }
    c = c << 6 | (p[i] & 0x3fu);
  }
  if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) ||
      (len == 4 && c < 0x10000) || c > 0x10ffff ||
      (c >= 0xd800 && c <= 0xdfff)) {
    return 0;
  }
  *cp = c;
  return len;
}

static int ref_utf8(const uint8_t *p, size_t n) {
  uint32_t cp;
  for (size_t i = 0; i < n;) {
    size_t k = ref_cp(p + i, n - i, &cp);
    if (k == 0) {
      return 0;
    }
    i += k;
  }
  return 1;
}

static size_t put_utf8(uint8_t *o, uint32_t c) {
  if (c < 0x80) {
    o[0] = (uint8_t)c;
    return 1;
  }
  if (c < 0x800) {
    o[0] = (uint8_t)(0xc0 | c >> 6);
    o[1] = (uint8_t)(0x80 | (c & 0x3f));
    return 2;
  }
  if (c < 0x10000) {
    o[0] = (uint8_t)(0xe0 | c >> 12);
    o[1] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
    o[2] = (uint8_t)(0x80 | (c & 0x3f));
    return 3;
  }
  o[0] = (uint8_t)(0xf0 | c >> 18);
  o[1] = (uint8_t)(0x80 | (c >> 12 & 0x3f));
  o[2] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
  o[3] = (uint8_t)(0x80 | (c & 0x3f));
  return 4;
}

/* latin1_fallback: what a JSON reader gets for a byte string written with
   invalid bytes as \u00XX: valid characters as they are, other bytes as
   U+0080..U+00FF. */
static size_t latin1_fallback(uint8_t *o, const uint8_t *p, size_t n) {
  size_t w = 0;
  uint32_t cp;
  for (size_t i = 0; i < n;) {
    size_t k = ref_cp(p + i, n - i, &cp);
    if (k == 0) {
      w += put_utf8(o + w, p[i]);
      ++i;
    } else {
      memcpy(o + w, p + i, k);
      w += k;
      i += k;
    }
  }
  return w;
}

/* ---- reference JSON reader ----------------------------------------------- */

typedef struct rd {
  const uint8_t *p;
  size_t n, i;
} rd;

static void expect_lit(rd *r, const char *s) {
  size_t k = strlen(s);
  REQUIRE(r->n - r->i >= k && memcmp(r->p + r->i, s, k) == 0);
  r->i += k;
}

static int hexval(uint8_t c) {
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

/* read_string reads a JSON string (RFC 8259, 7) into a fresh buffer. */
static uint8_t *read_string(rd *r, size_t *len) {
  uint8_t *o = xmalloc(r->n * 4 + 4);
  size_t w = 0;
  expect_lit(r, "\"");
  for (;;) {
    uint8_t c;
    REQUIRE(r->i < r->n);
    c = r->p[r->i++];
    if (c == '"') {
      break;
    }
    REQUIRE(c >= 0x20); /* raw control characters are not JSON */
    if (c != '\\') {
      o[w++] = c;
      continue;
    }
    REQUIRE(r->i < r->n);
    c = r->p[r->i++];
    switch (c) {
    case '"':
    case '\\':
    case '/':
      o[w++] = c;
      break;
    case 'b':
      o[w++] = '\b';
      break;
    case 'f':
      o[w++] = '\f';
      break;
    case 'n':
      o[w++] = '\n';
      break;
    case 'r':
      o[w++] = '\r';
      break;
    case 't':
      o[w++] = '\t';
      break;
    case 'u': {
      uint32_t cp = 0;
      REQUIRE(r->n - r->i >= 4);
      for (int k = 0; k < 4; ++k) {
        int h = hexval(r->p[r->i++]);
        REQUIRE(h >= 0);
        cp = cp << 4 | (uint32_t)h;
      }
      REQUIRE(cp < 0xd800 || cp > 0xdfff); /* the encoder writes none */
      w += put_utf8(o + w, cp);
      break;
    }
    default:
      REQUIRE(0);
    }
  }
  /* The text of a JSON document is UTF-8. */
  REQUIRE(ref_utf8(o, w));
  *len = w;
  return o;
}

static uint64_t read_u64(rd *r) {
  uint64_t v = 0;
  size_t start = r->i;
  while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9') {
    REQUIRE(v <= (UINT64_MAX - (uint64_t)(r->p[r->i] - '0')) / 10);
    v = v * 10 + (uint64_t)(r->p[r->i] - '0');
    ++r->i;
  }
  REQUIRE(r->i > start);
  REQUIRE(r->p[start] != '0' || r->i == start + 1);
  return v;
}

static int next_is(rd *r, const char *s) {
  size_t k = strlen(s);
  return r->n - r->i >= k && memcmp(r->p + r->i, s, k) == 0;
}

/* ref_base64 decodes standard padded base64 (independent of the library). */
static uint8_t *ref_base64(const uint8_t *s, size_t n, size_t *len) {
  static const char *al =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t *o = xmalloc(n);
  uint32_t acc = 0;
  int bits = 0;
  size_t w = 0;
  REQUIRE(n % 4 == 0);
  for (size_t i = 0; i < n; ++i) {
    const char *at;
    if (s[i] == '=') {
      REQUIRE(i + 2 >= n);
      continue;
    }
    at = s[i] ? strchr(al, s[i]) : NULL;
    REQUIRE(at != NULL);
    acc = acc << 6 | (uint32_t)(at - al);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[w++] = (uint8_t)(acc >> bits);
    }
  }
  *len = w;
  return o;
}

/* ---- modes --------------------------------------------------------------- */

static uint64_t get_u64(const uint8_t **p, size_t *n) {
  uint64_t v = 0;
  for (int i = 0; i < 8 && *n; ++i, ++*p, --*n) {
    v = v << 8 | **p;
  }
  return v;
}

static void check_str_field(rd *r, const char *key, const uint8_t *want,
                            size_t wantlen) {
  uint8_t *exp = xmalloc(wantlen * 2);
  size_t explen = latin1_fallback(exp, want, wantlen), got;
  uint8_t *s;
  expect_lit(r, key);
  s = read_string(r, &got);
  REQUIRE(got == explen && (got == 0 || memcmp(s, exp, got) == 0));
  free(s);
  free(exp);
}

static void envelope(const uint8_t *p, size_t n) {
  web_json_msg m;
  web_json_plan plan;
  tern_ssize len;
  uint8_t *buf, *split;
  size_t w, h, idlen, ctlen;
  rd r;
  memset(&m, 0, sizeof m);
  m.seq = get_u64(&p, &n);
  m.priority = n ? *p % 4 : 0; /* 3 is invalid */
  idlen = n ? p[0] >> 2 & 63 : 0;
  if (n) {
    ++p, --n;
  }
  ctlen = n ? *p & 31 : 0;
  if (n) {
    ++p, --n;
  }
  idlen = idlen < n ? idlen : n;
  m.id = p, m.idlen = idlen;
  p += idlen, n -= idlen;
  ctlen = ctlen < n ? ctlen : n;
  m.content_type = p, m.content_typelen = ctlen;
  p += ctlen, n -= ctlen;
  m.payload = p, m.payloadlen = n;

  len = web_json_msg_len(&m, &plan);
  if (m.priority == 3) {
    REQUIRE(len == TERN_ERR_INVALID);
    return;
  }
  REQUIRE(len > 0);
  buf = xmalloc((size_t)len + 1);
  split = xmalloc((size_t)len);
  buf[len] = 0x5a;
  w = web_json_msg_write(buf, &m, &plan);
  REQUIRE(w == (size_t)len && buf[len] == 0x5a);
  h = web_json_head_write(split, m.seq);
  REQUIRE(h == web_json_head_len(m.seq) && h <= WEB_JSON_HEAD_MAX);
  REQUIRE(web_json_tail_write(split + h, &m, &plan) == (size_t)len - h);
  REQUIRE(memcmp(buf, split, (size_t)len) == 0);

  r.p = buf, r.n = (size_t)len, r.i = 0;
  expect_lit(&r, "{\"seq\":");
  REQUIRE(read_u64(&r) == m.seq);
  check_str_field(&r, ",\"id\":", m.id, m.idlen);
  expect_lit(&r, ",\"prio\":");
  {
    size_t got;
    uint8_t *s = read_string(&r, &got);
    const char *name = m.priority == 0 ? "low" : m.priority == 1 ? "normal"
                                                                 : "high";
    REQUIRE(got == strlen(name) && memcmp(s, name, got) == 0);
    free(s);
  }
  if (m.content_typelen) {
    check_str_field(&r, ",\"ct\":", m.content_type, m.content_typelen);
  }
  if (next_is(&r, ",\"enc\":")) {
    size_t got, declen;
    uint8_t *s, *dec;
    REQUIRE(!ref_utf8(m.payload, m.payloadlen));
    expect_lit(&r, ",\"enc\":\"base64\",\"data\":");
    s = read_string(&r, &got);
    dec = ref_base64(s, got, &declen);
    REQUIRE(declen == m.payloadlen &&
            (declen == 0 || memcmp(dec, m.payload, declen) == 0));
    free(dec);
    free(s);
  } else {
    size_t got;
    uint8_t *s;
    REQUIRE(ref_utf8(m.payload, m.payloadlen));
    expect_lit(&r, ",\"data\":");
    s = read_string(&r, &got);
    REQUIRE(got == m.payloadlen &&
            (got == 0 || memcmp(s, m.payload, got) == 0));
    free(s);
  }
  expect_lit(&r, "}");
  REQUIRE(r.i == r.n);
  free(buf);
  free(split);
}

static int is_ws(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ref_ack: the grammar of web_json_ack_parse, written another way: strip
   whitespace outside tokens and match {"ack":DIGITS}. */
static int ref_ack(const uint8_t *p, size_t n, uint64_t *seq) {
  static const char *parts[] = {"{", "\"ack\"", ":"};
  size_t i = 0, start;
  uint64_t v = 0;
  for (int k = 0; k < 3; ++k) {
    size_t len = strlen(parts[k]);
    while (i < n && is_ws(p[i])) {
      ++i;
    }
    if (n - i < len || memcmp(p + i, parts[k], len) != 0) {
      return -1;
    }
    i += len;
  }
  while (i < n && is_ws(p[i])) {
    ++i;
  }
  start = i;
  while (i < n && p[i] >= '0' && p[i] <= '9') {
    if (i - start >= 19) {
      return -1; /* 2^62 has 19 digits: checked below */
    }
    v = v * 10 + (uint64_t)(p[i] - '0');
    ++i;
  }
  if (i == start || (p[start] == '0' && i - start > 1) ||
      v > (UINT64_C(1) << 62) - 1) {
    return -1;
  }
  while (i < n && is_ws(p[i])) {
    ++i;
  }
  if (i == n || p[i] != '}') {
    return -1;
  }
  ++i;
  while (i < n && is_ws(p[i])) {
    ++i;
  }
  if (i != n) {
    return -1;
  }
  *seq = v;
  return 0;
}

static void ack(const uint8_t *p, size_t n) {
  uint64_t seq = 12345, ref = 0;
  const char *why = NULL;
  uint8_t *copy = xmalloc(n);
  int rc, rrc;
  if (n) {
    memcpy(copy, p, n);
  }
  rc = web_json_ack_parse(copy, n, &seq, &why);
  rrc = ref_ack(p, n, &ref);
  if (rc == 0) {
    char again[64];
    uint64_t seq2 = 0;
    int k;
    REQUIRE(rrc == 0 && ref == seq);
    k = snprintf(again, sizeof again, "{\"ack\":%llu}",
                 (unsigned long long)seq);
    REQUIRE(web_json_ack_parse((const uint8_t *)again, (size_t)k, &seq2,
                               NULL) == 0 &&
            seq2 == seq);
  } else {
    REQUIRE(rc == TERN_ERR_PROTO && seq == 12345 && why != NULL &&
            strlen(why) > 0);
    REQUIRE(rrc != 0);
  }
  free(copy);
}

static void dropped_hb(const uint8_t *p, size_t n) {
  uint64_t count = get_u64(&p, &n);
  int reason = n ? *p % 6 : 0;
  uint8_t buf[WEB_JSON_DROPPED_MAX + WEB_JSON_HB_MAX];
  tern_ssize len = web_json_dropped_len(count, reason);
  rd r;
  if (reason < 1 || reason > 4) {
    REQUIRE(len == TERN_ERR_INVALID);
  } else {
    static const char *names[] = {"", "expired", "overflow", "dead",
                                  "retention"};
    size_t got;
    uint8_t *s;
    REQUIRE(len > 0 && (size_t)len <= WEB_JSON_DROPPED_MAX);
    REQUIRE(web_json_dropped_write(buf, count, reason) == (size_t)len);
    r.p = buf, r.n = (size_t)len, r.i = 0;
    expect_lit(&r, "{\"count\":");
    REQUIRE(read_u64(&r) == count);
    expect_lit(&r, ",\"reason\":");
    s = read_string(&r, &got);
    REQUIRE(got == strlen(names[reason]) &&
            memcmp(s, names[reason], got) == 0);
    free(s);
    expect_lit(&r, "}");
    REQUIRE(r.i == r.n);
  }
  REQUIRE(web_json_hb_len(count) <= WEB_JSON_HB_MAX);
  REQUIRE(web_json_hb_write(buf, count) == web_json_hb_len(count));
  r.p = buf, r.n = web_json_hb_len(count), r.i = 0;
  expect_lit(&r, "{\"hb\":");
  REQUIRE(read_u64(&r) == count);
  expect_lit(&r, "}");
  REQUIRE(r.i == r.n);
}

static void base64(const uint8_t *p, size_t n) {
  char *in = xmalloc(n);
  size_t cap = web_base64_decoded_max(n);
  uint8_t *out = xmalloc(cap);
  tern_ssize got;
  if (n) {
    memcpy(in, p, n);
  }
  got = web_base64_decode(out, cap, in, n);
  if (got >= 0) {
    char *enc = xmalloc(web_base64_encoded_len((size_t)got));
    size_t k = web_base64_encode(enc, out, (size_t)got);
    REQUIRE(k == n && (n == 0 || memcmp(enc, in, n) == 0));
    free(enc);
    /* One byte less room is refused before anything is written. */
    if (got > 0) {
      REQUIRE(web_base64_decode(out, (size_t)got - 1, in, n) ==
              TERN_ERR_TOO_LARGE);
    }
  } else {
    REQUIRE(got == TERN_ERR_PROTO);
  }
  free(in);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  switch (data[0] & 3) {
  case 0:
    envelope(data + 1, size - 1);
    break;
  case 1:
    ack(data + 1, size - 1);
    break;
  case 2:
    dropped_hb(data + 1, size - 1);
    break;
  default:
    base64(data + 1, size - 1);
    break;
  }
  return 0;
}
