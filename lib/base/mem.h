/*
 * Allocation through the hub's tern_mem table.  Every allocation in the
 * library goes through these four calls so that tests can fail the Nth one.
 */
#ifndef TERN_BASE_MEM_H
#define TERN_BASE_MEM_H

#include <stddef.h>

#include "tern.h"

/* mem_default returns the table that routes to libc. */
const tern_mem *mem_default(void);

static inline void *mem_malloc(const tern_mem *m, size_t size) {
  return m->malloc(size, m->user_data);
}
static inline void *mem_calloc(const tern_mem *m, size_t n, size_t size) {
  return m->calloc(n, size, m->user_data);
}
static inline void *mem_realloc(const tern_mem *m, void *p, size_t size) {
  return m->realloc(p, size, m->user_data);
}
static inline void mem_free(const tern_mem *m, void *p) {
  m->free(p, m->user_data);
}

#endif
