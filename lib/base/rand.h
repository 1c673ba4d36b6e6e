/*
 * A small deterministic random generator (xoshiro256**, seeded through
 * splitmix64).  The hub draws epochs, generated ids and jitter from it, so
 * the same seed replays the same run.
 */
#ifndef TERN_BASE_RAND_H
#define TERN_BASE_RAND_H

#include <stdint.h>

typedef struct rng {
  uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
/* rng_below returns a uniform value in [0, bound); bound 0 gives 0. */
uint64_t rng_below(rng *r, uint64_t bound);

#endif
