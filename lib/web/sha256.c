/*
 * SHA-256 (FIPS 180-4, section 6.2), HMAC-SHA256 (RFC 2104), and the
 * subscriber tokens of ternd: the hashes its HTTP API needs, with no
 * dependency beyond libc.
 */
#include "web/sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu,
    0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u,
    0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u,
    0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
    0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u,
    0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u,
    0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u, 0x1e376c08u,
    0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu,
    0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u};

static inline uint32_t ror(uint32_t x, unsigned n) {
  return x >> n | x << (32 - n);
}

static void compress(uint32_t *h, const uint8_t *block) {
  uint32_t w[64];
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5],
           g = h[6], k = h[7];
  for (unsigned i = 0; i < 16; ++i) {
    const uint8_t *p = block + 4 * i;
    w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
  }
  for (unsigned i = 16; i < 64; ++i) {
    uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  for (unsigned i = 0; i < 64; ++i) {
    uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) +
                  ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) +
                  ((a & b) ^ (a & c) ^ (b & c));
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += k;
}

void web_sha256_init(web_sha256 *c) {
  static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u,
                                 0xa54ff53au, 0x510e527fu, 0x9b05688cu,
                                 0x1f83d9abu, 0x5be0cd19u};
  memcpy(c->h, iv, sizeof iv);
  c->md.total = 0;
  c->md.blocklen = 0;
}

void web_sha256_update(web_sha256 *c, const void *data, size_t len) {
  web_md_update(&c->md, c->h, compress, data, len);
}

void web_sha256_final(web_sha256 *c, uint8_t out[WEB_SHA256_LEN]) {
  web_md_final(&c->md, c->h, compress, 8, out);
}

void web_sha256_buf(const void *p, size_t len, uint8_t out[WEB_SHA256_LEN]) {
  web_sha256 c;
  web_sha256_init(&c);
  web_sha256_update(&c, p, len);
  web_sha256_final(&c, out);
}

/* ---- HMAC --------------------------------------------------------------- */

void web_hmac_sha256_init(web_hmac_sha256 *c, const void *key,
                          size_t keylen) {
  uint8_t k[WEB_SHA256_BLOCK], pad[WEB_SHA256_BLOCK];
  memset(k, 0, sizeof k);
  if (keylen > WEB_SHA256_BLOCK) {
    web_sha256_buf(key, keylen, k);
  } else if (keylen) {
    memcpy(k, key, keylen);
  }
  for (unsigned i = 0; i < WEB_SHA256_BLOCK; ++i) {
    pad[i] = (uint8_t)(k[i] ^ 0x36);
  }
  web_sha256_init(&c->inner);
  web_sha256_update(&c->inner, pad, sizeof pad);
  for (unsigned i = 0; i < WEB_SHA256_BLOCK; ++i) {
    pad[i] = (uint8_t)(k[i] ^ 0x5c);
  }
  web_sha256_init(&c->outer);
  web_sha256_update(&c->outer, pad, sizeof pad);
}

void web_hmac_sha256_update(web_hmac_sha256 *c, const void *p, size_t len) {
  web_sha256_update(&c->inner, p, len);
}

void web_hmac_sha256_final(web_hmac_sha256 *c, uint8_t out[WEB_SHA256_LEN]) {
  uint8_t inner[WEB_SHA256_LEN];
  web_sha256_final(&c->inner, inner);
  web_sha256_update(&c->outer, inner, sizeof inner);
  web_sha256_final(&c->outer, out);
}

void web_hmac_sha256_buf(const void *key, size_t keylen, const void *msg,
                     size_t msglen, uint8_t out[WEB_SHA256_LEN]) {
  web_hmac_sha256 c;
  web_hmac_sha256_init(&c, key, keylen);
  web_hmac_sha256_update(&c, msg, msglen);
  web_hmac_sha256_final(&c, out);
}

int web_consttime_eq(const void *a, const void *b, size_t len) {
  const volatile uint8_t *x = a, *y = b;
  uint8_t diff = 0;
  for (size_t i = 0; i < len; ++i) {
    diff = (uint8_t)(diff | (x[i] ^ y[i]));
  }
  /* 1 when diff is 0, without a branch on the secret-dependent value. */
  return (int)(1 & ((unsigned)(diff - 1) >> 8));
}

char *web_hex_lower(char *out, const uint8_t *p, size_t len) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; ++i) {
    *out++ = digits[p[i] >> 4];
    *out++ = digits[p[i] & 15];
  }
  return out;
}

/* ---- tokens ------------------------------------------------------------- */

/* token_mac computes the hex HMAC of KEY "." E, E given as its digits. */
static void token_mac(char hex[2 * WEB_SHA256_LEN], const void *secret,
                      size_t secretlen, const void *key, size_t keylen,
                      const char *digits, size_t ndigits) {
  web_hmac_sha256 c;
  uint8_t mac[WEB_SHA256_LEN];
  web_hmac_sha256_init(&c, secret, secretlen);
  web_hmac_sha256_update(&c, key, keylen);
  web_hmac_sha256_update(&c, ".", 1);
  web_hmac_sha256_update(&c, digits, ndigits);
  web_hmac_sha256_final(&c, mac);
  web_hex_lower(hex, mac, sizeof mac);
}

size_t web_token_make(char *out, const void *secret, size_t secretlen,
                      const void *key, size_t keylen, uint64_t expiry) {
  char digits[20];
  size_t n = 0;
  do {
    digits[sizeof digits - ++n] = (char)('0' + expiry % 10);
    expiry /= 10;
  } while (expiry);
  memcpy(out, digits + sizeof digits - n, n);
  out[n] = '.';
  token_mac(out + n + 1, secret, secretlen, key, keylen, out, n);
  return n + 1 + 2 * WEB_SHA256_LEN;
}

int web_token_check(const void *token, size_t tokenlen, const void *secret,
                    size_t secretlen, const void *key, size_t keylen,
                    uint64_t now) {
  const char *t = token;
  char want[2 * WEB_SHA256_LEN];
  uint64_t expiry = 0;
  size_t n = 0;
  while (n < tokenlen && t[n] >= '0' && t[n] <= '9') {
    unsigned digit = (unsigned)(t[n] - '0');
    if (n == 20 || (n == 1 && t[0] == '0') ||
        expiry > (UINT64_MAX - digit) / 10) {
      return WEB_TOKEN_MALFORMED;
    }
    expiry = expiry * 10 + digit;
    ++n;
  }
  if (n == 0 || tokenlen != n + 1 + 2 * WEB_SHA256_LEN || t[n] != '.') {
    return WEB_TOKEN_MALFORMED;
  }
  for (size_t i = n + 1; i < tokenlen; ++i) {
    if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) {
      return WEB_TOKEN_MALFORMED;
    }
  }
  token_mac(want, secret, secretlen, key, keylen, t, n);
  if (!web_consttime_eq(want, t + n + 1, sizeof want)) {
    return WEB_TOKEN_BAD;
  }
  return expiry > now ? WEB_TOKEN_OK : WEB_TOKEN_EXPIRED;
}
