/*
 * SHA-1 as specified in FIPS 180-4, section 6.1: the 80-round compression
 * function with the message schedule kept in a 16-word ring.
 */
#include "web/sha1.h"

#include <string.h>

static inline uint32_t rol(uint32_t x, unsigned n) {
  return x << n | x >> (32 - n);
}

static inline uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static void compress(uint32_t *h, const uint8_t *block) {
  uint32_t w[16];
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (unsigned i = 0; i < 16; ++i) {
    w[i] = be32(block + 4 * i);
  }
  for (unsigned t = 0; t < 80; ++t) {
    uint32_t f, k, tmp;
    if (t >= 16) {
      w[t & 15] = rol(w[(t + 13) & 15] ^ w[(t + 8) & 15] ^ w[(t + 2) & 15] ^
                          w[t & 15],
                      1);
    }
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999u;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1u;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdcu;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6u;
    }
    tmp = rol(a, 5) + f + e + k + w[t & 15];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void web_sha1_init(web_sha1 *c) {
  c->h[0] = 0x67452301u;
  c->h[1] = 0xefcdab89u;
  c->h[2] = 0x98badcfeu;
  c->h[3] = 0x10325476u;
  c->h[4] = 0xc3d2e1f0u;
  c->md.total = 0;
  c->md.blocklen = 0;
}

void web_sha1_update(web_sha1 *c, const void *data, size_t len) {
  web_md_update(&c->md, c->h, compress, data, len);
}

void web_sha1_final(web_sha1 *c, uint8_t out[WEB_SHA1_LEN]) {
  web_md_final(&c->md, c->h, compress, 5, out);
}
