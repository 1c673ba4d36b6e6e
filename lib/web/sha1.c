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

static void compress(uint32_t h[5], const uint8_t *block) {
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
  c->total = 0;
  c->blocklen = 0;
}

void web_sha1_update(web_sha1 *c, const void *data, size_t len) {
  const uint8_t *p = data;
  c->total += len;
  if (c->blocklen) {
    size_t take = 64 - c->blocklen < len ? 64 - c->blocklen : len;
    memcpy(c->block + c->blocklen, p, take);
    c->blocklen += take;
    p += take;
    len -= take;
    if (c->blocklen < 64) {
      return;
    }
    compress(c->h, c->block);
    c->blocklen = 0;
  }
  for (; len >= 64; p += 64, len -= 64) {
    compress(c->h, p);
  }
  if (len) {
    memcpy(c->block, p, len);
    c->blocklen = len;
  }
}

void web_sha1_final(web_sha1 *c, uint8_t out[WEB_SHA1_LEN]) {
  uint64_t bits = c->total * 8;
  uint8_t pad[72];
  size_t padlen = (c->blocklen < 56 ? 56 : 120) - c->blocklen;
  memset(pad, 0, sizeof pad);
  pad[0] = 0x80;
  for (unsigned i = 0; i < 8; ++i) {
    pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
  }
  web_sha1_update(c, pad, padlen + 8);
  for (unsigned i = 0; i < 5; ++i) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
}
