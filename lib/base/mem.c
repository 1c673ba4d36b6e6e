/* The libc allocator behind a NULL tern_mem. */
#include "base/mem.h"

#include <stdlib.h>

static void *libc_malloc(size_t size, void *user_data) {
  (void)user_data;
  return malloc(size);
}
static void libc_free(void *ptr, void *user_data) {
  (void)user_data;
  free(ptr);
}
static void *libc_calloc(size_t n, size_t size, void *user_data) {
  (void)user_data;
  return calloc(n, size);
}
static void *libc_realloc(void *ptr, size_t size, void *user_data) {
  (void)user_data;
  return realloc(ptr, size);
}

static const tern_mem libc_mem = {NULL, libc_malloc, libc_free, libc_calloc,
                                  libc_realloc};

const tern_mem *mem_default(void) { return &libc_mem; }
