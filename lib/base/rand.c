/* xoshiro256** seeded by splitmix64 (both public-domain algorithms). */
#include "base/rand.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

void rng_seed(rng *r, uint64_t seed) {
  for (int i = 0; i < 4; ++i) {
    r->s[i] = splitmix64(&seed);
  }
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t rng_below(rng *r, uint64_t bound) {
  if (bound == 0) {
    return 0;
  }
  /* Rejection sampling keeps the draw uniform. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t v;
  do {
    v = rng_next(r);
  } while (v >= limit);
  return v % bound;
}
