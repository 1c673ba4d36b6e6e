/*
 * tern_shard_of: which of N hubs owns a session key.  A pure function of
 * its arguments, the same on every platform and in every version, so that
 * producers, receivers' routers and hubs in other processes (or written in
 * other languages) agree: FNV-1a (64 bit) of the key, then the jump
 * consistent hash of Lamping and Veach over that.  When nshards grows by
 * one, a key either stays on its shard or moves to the new one.
 */
#include <tern.h>

static uint64_t fnv1a64(const uint8_t *p, size_t len) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

TERN_EXTERN uint32_t tern_shard_of(const uint8_t *key, size_t keylen,
                                   uint32_t nshards) {
  if (nshards <= 1 || (!key && keylen > 0)) {
    return 0;
  }
  uint64_t h = fnv1a64(key, keylen);
  /* The jump hash in integers: j = floor((b + 1) * 2^31 / ((h >> 33) + 1))
     is exact (b + 1 <= 2^32, so the product fits in 64 bits), where the
     paper's doubles would depend on the platform's rounding. */
  uint64_t b = 0, j = 0;
  while (j < nshards) {
    b = j;
    h = h * 2862933555777941757ULL + 1;
    j = ((b + 1) << 31) / ((h >> 33) + 1);
  }
  return (uint32_t)b;
}
