/*
 * What the fuzz targets share: reading a script from the input, and a
 * counting allocator (every block must come back; the Nth call can fail).
 */
#ifndef TERN_TESTS_FUZZ_UTIL_H
#define TERN_TESTS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdlib.h>

#include "tern.h"

typedef struct {
  const uint8_t *p, *end;
} input;

/* take returns the next input byte, 0 past the end. */
static inline uint8_t take(input *in) {
  return in->p < in->end ? *in->p++ : 0;
}

/* Blocks allocated and not freed; allocation calls; the call to fail (1-based,
   0 never).  Reset all three at the start of each input. */
static long outstanding, calls, fail_at;

static inline int should_fail(void) { return ++calls == fail_at; }

static inline void *f_malloc(size_t n, void *u) {
  (void)u;
  if (should_fail()) {
    return NULL;
  }
  void *p = malloc(n ? n : 1);
  outstanding += p != NULL;
  return p;
}
static inline void f_free(void *p, void *u) {
  (void)u;
  outstanding -= p != NULL;
  free(p);
}
static inline void *f_calloc(size_t n, size_t s, void *u) {
  (void)u;
  if (should_fail()) {
    return NULL;
  }
  void *p = calloc(n ? n : 1, s ? s : 1);
  outstanding += p != NULL;
  return p;
}
static inline void *f_realloc(void *p, size_t n, void *u) {
  (void)u;
  if (should_fail()) {
    return NULL;
  }
  void *q = realloc(p, n ? n : 1);
  if (q && !p) {
    ++outstanding;
  }
  return q;
}

/* fuzz_mem is the tern_mem over the functions above. */
static inline tern_mem fuzz_mem(void) {
  tern_mem m = {NULL, f_malloc, f_free, f_calloc, f_realloc};
  return m;
}

#endif
