/*
 * Web hooks: the decoders.  The receiving side's checks of a signature
 * and of a challenge, the Retry-After of a 429, and the check that an
 * entry's payload is one JSON value (it goes into the body as is).  All
 * are strict, allocate nothing, and are fuzzed (tests/fuzz/hooks_fuzz.c).
 */
#include <string.h>

#include "hooks/hooks.h"
#include "web/sha256.h"
#include "web/utf8.h"

/* ---- JSON values -------------------------------------------------------- */

#define JSON_DEPTH 64

typedef struct jscan {
  const uint8_t *p, *end;
} jscan;

static void ws(jscan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' ||
                           *s->p == '\r')) {
    ++s->p;
  }
}

static int lit(jscan *s, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) {
    return -1;
  }
  s->p += n;
  return 0;
}

static int is_hex(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

static int string(jscan *s) {
  ++s->p; /* '"' */
  while (s->p < s->end) {
    uint8_t c = *s->p;
    if (c == '"') {
      ++s->p;
      return 0;
    }
    if (c < 0x20) {
      return -1;
    }
    if (c == '\\') {
      if (s->end - s->p < 2) {
        return -1;
      }
      uint8_t e = s->p[1];
      if (e == 'u') {
        if (s->end - s->p < 6 || !is_hex(s->p[2]) || !is_hex(s->p[3]) ||
            !is_hex(s->p[4]) || !is_hex(s->p[5])) {
          return -1;
        }
        s->p += 6;
        continue;
      }
      if (!strchr("\"\\/bfnrt", e) || e == 0) {
        return -1;
      }
      s->p += 2;
      continue;
    }
    if (c < 0x80) {
      ++s->p;
      continue;
    }
    size_t n = web_utf8_seq(s->p, (size_t)(s->end - s->p));
    if (n == 0) {
      return -1;
    }
    s->p += n;
  }
  return -1;
}

static int digits(jscan *s) {
  const uint8_t *start = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
    ++s->p;
  }
  return s->p > start ? 0 : -1;
}

static int number(jscan *s) {
  if (*s->p == '-') {
    ++s->p;
  }
  if (s->p < s->end && *s->p == '0') {
    ++s->p;
  } else if (digits(s) != 0) {
    return -1;
  }
  if (s->p < s->end && *s->p == '.') {
    ++s->p;
    if (digits(s) != 0) {
      return -1;
    }
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    ++s->p;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
      ++s->p;
    }
    if (digits(s) != 0) {
      return -1;
    }
  }
  return 0;
}

static int value(jscan *s, int depth) {
  ws(s);
  if (s->p >= s->end) {
    return -1;
  }
  switch (*s->p) {
  case '"':
    return string(s);
  case 't':
    return lit(s, "true");
  case 'f':
    return lit(s, "false");
  case 'n':
    return lit(s, "null");
  case '[':
  case '{': {
    uint8_t close = *s->p == '[' ? ']' : '}';
    int obj = close == '}';
    if (depth >= JSON_DEPTH) {
      return -1;
    }
    ++s->p;
    ws(s);
    if (s->p < s->end && *s->p == close) {
      ++s->p;
      return 0;
    }
    for (;;) {
      if (obj) {
        ws(s);
        if (s->p >= s->end || *s->p != '"' || string(s) != 0) {
          return -1;
        }
        ws(s);
        if (s->p >= s->end || *s->p != ':') {
          return -1;
        }
        ++s->p;
      }
      if (value(s, depth + 1) != 0) {
        return -1;
      }
      ws(s);
      if (s->p >= s->end) {
        return -1;
      }
      if (*s->p == close) {
        ++s->p;
        return 0;
      }
      if (*s->p != ',') {
        return -1;
      }
      ++s->p;
    }
  }
  default:
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
      return number(s);
    }
    return -1;
  }
}

int hook_json_value_ok(const uint8_t *p, size_t len) {
  if (!p) {
    return 0;
  }
  jscan s = {p, p + len};
  if (value(&s, 0) != 0) {
    return 0;
  }
  ws(&s);
  return s.p == s.end;
}

/* ---- Retry-After -------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char *p, size_t n, unsigned *out) {
  unsigned v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < '0' || p[i] > '9') {
      return -1;
    }
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  *out = v;
  return 0;
}

/* IMF-fixdate (RFC 9110): "Sun, 06 Nov 1994 08:49:37 GMT". */
static int imf_fixdate(const char *p, size_t len, uint64_t *unix_s) {
  static const char days[] = "MonTueWedThuFriSatSun";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (len != 29 || p[3] != ',' || p[4] != ' ' || p[7] != ' ' ||
      p[11] != ' ' || p[16] != ' ' || p[19] != ':' || p[22] != ':' ||
      memcmp(p + 25, " GMT", 4) != 0) {
    return -1;
  }
  int dayok = 0;
  for (int i = 0; i < 7; ++i) {
    dayok |= memcmp(p, days + 3 * i, 3) == 0;
  }
  unsigned mon = 0;
  for (unsigned i = 0; i < 12; ++i) {
    if (memcmp(p + 8, months + 3 * i, 3) == 0) {
      mon = i + 1;
    }
  }
  unsigned d, y, hh, mm, ss;
  if (!dayok || !mon || num(p + 5, 2, &d) || num(p + 12, 4, &y) ||
      num(p + 17, 2, &hh) || num(p + 20, 2, &mm) || num(p + 23, 2, &ss) ||
      d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970) {
    return -1;
  }
  int64_t t = days_from_civil(y, mon, d) * 86400 + hh * 3600 + mm * 60 + ss;
  *unix_s = (uint64_t)t;
  return 0;
}

int hook_parse_retry_after(const char *p, size_t len, uint64_t wall_s,
                           uint64_t *delay_s) {
  if (!p || len == 0) {
    return -1;
  }
  if (p[0] >= '0' && p[0] <= '9') {
    uint64_t v = 0;
    for (size_t i = 0; i < len; ++i) {
      if (p[i] < '0' || p[i] > '9') {
        return -1;
      }
      if (v > (UINT64_MAX - 9) / 10) {
        v = UINT64_MAX; /* saturate: the caller caps it */
        continue;
      }
      v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *delay_s = v;
    return 0;
  }
  uint64_t at;
  if (imf_fixdate(p, len, &at) != 0) {
    return -1;
  }
  *delay_s = at > wall_s ? at - wall_s : 0;
  return 0;
}

/* ---- the receiving side ------------------------------------------------- */

int tern_hook_check_signature(const uint8_t *secret, size_t secretlen,
                              const char *timestamp, size_t timestamplen,
                              const char *signature, size_t signaturelen,
                              const uint8_t *body, size_t bodylen,
                              uint64_t now_s, uint64_t tolerance_s) {
  if (!secret || !timestamp || !signature || (bodylen && !body) ||
      timestamplen == 0 || timestamplen > 20 ||
      signaturelen != 7 + 2 * WEB_SHA256_LEN ||
      memcmp(signature, "sha256=", 7) != 0) {
    return TERN_ERR_INVALID;
  }
  uint64_t ts = 0;
  for (size_t i = 0; i < timestamplen; ++i) {
    char c = timestamp[i];
    if (c < '0' || c > '9' || (i == 0 && c == '0' && timestamplen > 1) ||
        ts > (UINT64_MAX - 9) / 10) {
      return TERN_ERR_INVALID;
    }
    ts = ts * 10 + (uint64_t)(c - '0');
  }
  for (size_t i = 7; i < signaturelen; ++i) {
    char c = signature[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return TERN_ERR_INVALID;
    }
  }
  uint8_t mac[WEB_SHA256_LEN];
  web_hmac_sha256 c;
  web_hmac_sha256_init(&c, secret, secretlen);
  web_hmac_sha256_update(&c, timestamp, timestamplen);
  web_hmac_sha256_update(&c, ".", 1);
  web_hmac_sha256_update(&c, body, bodylen);
  web_hmac_sha256_final(&c, mac);
  char hex[2 * WEB_SHA256_LEN];
  web_hex_lower(hex, mac, sizeof(mac));
  if (!web_consttime_eq(hex, signature + 7, sizeof(hex))) {
    return TERN_ERR_PROTO;
  }
  uint64_t skew = ts > now_s ? ts - now_s : now_s - ts;
  return skew > tolerance_s ? TERN_ERR_STATE : 0;
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

/* Compares the percent-encoded |p| (|len| bytes; '+' is a space) with the
   raw |want|, in a time that depends on the lengths only.  1 equal, 0
   not, -1 malformed. */
static int pct_equal(const char *p, size_t len, const uint8_t *want,
                     size_t wantlen) {
  size_t n = 0;
  unsigned diff = 0;
  for (size_t i = 0; i < len; ++n) {
    unsigned c;
    if (p[i] == '%') {
      if (len - i < 3 || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0) {
        return -1;
      }
      c = (unsigned)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
      i += 3;
    } else {
      c = p[i] == '+' ? ' ' : (unsigned char)p[i];
      ++i;
    }
    diff |= n < wantlen ? c ^ want[n] : 1u;
  }
  return diff == 0 && n == wantlen;
}

int tern_hook_check_challenge(const char *query, size_t querylen,
                              const uint8_t *token, size_t tokenlen,
                              const char **challenge, size_t *challengelen) {
  if (!query || (tokenlen && !token) || !challenge || !challengelen) {
    return TERN_ERR_INVALID;
  }
  const char *mode = NULL, *chal = NULL, *tok = NULL;
  size_t model = 0, chall = 0, tokl = 0;
  size_t i = 0;
  while (i < querylen) {
    size_t j = i;
    while (j < querylen && query[j] != '&') {
      ++j;
    }
    const char *kv = query + i;
    size_t kvlen = j - i;
    const char *eq = memchr(kv, '=', kvlen);
    if (eq) {
      size_t kl = (size_t)(eq - kv), vl = kvlen - kl - 1;
      const char *val = eq + 1;
      if (kl == 8 && memcmp(kv, "hub.mode", 8) == 0) {
        if (mode) {
          return TERN_ERR_INVALID;
        }
        mode = val;
        model = vl;
      } else if (kl == 13 && memcmp(kv, "hub.challenge", 13) == 0) {
        if (chal) {
          return TERN_ERR_INVALID;
        }
        chal = val;
        chall = vl;
      } else if (kl == 16 && memcmp(kv, "hub.verify_token", 16) == 0) {
        if (tok) {
          return TERN_ERR_INVALID;
        }
        tok = val;
        tokl = vl;
      }
    }
    i = j + 1;
  }
  if (!mode || !chal || !tok || chall == 0 || chall > 128) {
    return TERN_ERR_INVALID;
  }
  for (size_t k = 0; k < chall; ++k) {
    char c = chal[k];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z'))) {
      return TERN_ERR_INVALID;
    }
  }
  int m = pct_equal(mode, model, (const uint8_t *)"subscribe", 9);
  int t = pct_equal(tok, tokl, token, tokenlen);
  if (m < 0 || t < 0) {
    return TERN_ERR_INVALID;
  }
  if (!m || !t) {
    return TERN_ERR_PROTO;
  }
  *challenge = chal;
  *challengelen = chall;
  return 0;
}
