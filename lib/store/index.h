/*
 * The file store's in-memory index: every live key and where its latest
 * SET record is (segment number, offset, record size).  It is the store's
 * main memory cost, so it is laid out for size:
 *
 *  - one cell per key in an arena of 64 KiB chunks: 14 bytes of location
 *    and key length, then the key, rounded up to 4 bytes (a 16-byte key
 *    takes 32 bytes).  Freed cells go to a free list per cell size and are
 *    reused; the end of a chunk too short for the next cell is filed there
 *    as well.
 *  - an open-addressing table (linear probing, backward-shift deletion, at
 *    most 80% full) of 8-byte slots: a 32-bit cell reference and 32 bits of
 *    the key's hash, so that a probe rarely touches a cell that is not the
 *    one sought.
 *
 * About 32 + 8 / 0.4..0.8 bytes per 16-byte key; kindex_bytes() says
 * exactly.  The hash is keyed with a random key per store, so keys cannot
 * be chosen to collide.
 */
#ifndef TERN_STORE_INDEX_H
#define TERN_STORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

/* Offsets in a segment are below 2^40. */
#define KINDEX_MAX_OFFSET ((UINT64_C(1) << 40) - 1)

typedef struct kloc {
  uint32_t seg;  /* segment number */
  uint32_t size; /* record size in bytes */
  uint64_t off;  /* record offset in the segment */
} kloc;

typedef struct kslot {
  uint32_t ref; /* 0: empty */
  uint32_t tag; /* the low 32 bits of the key's hash */
} kslot;

#define KINDEX_CLASSES 69 /* cell sizes in 4-byte units, up to 68 */

typedef struct kindex {
  const tern_mem *mem;
  uint64_t hash_key[2];
  kslot *slots;
  size_t mask; /* slot count - 1 */
  size_t count;
  uint8_t **chunks; /* chunks[0] is unused, so that no reference is 0 */
  size_t nchunks;   /* allocated, including spares past bump_chunk */
  size_t chunkcap;
  size_t bump_chunk; /* the chunk cells are carved from; 0: none yet */
  uint32_t bump_unit;
  uint32_t free_head[KINDEX_CLASSES];
} kindex;

int kindex_init(kindex *ix, const tern_mem *mem, const uint64_t hash_key[2]);
void kindex_free(kindex *ix);

uint64_t kindex_hash(const kindex *ix, const uint8_t *key, size_t keylen);

/* kindex_prefetch starts loading the slot where a lookup of |hash| begins
   (a hint: batches of lookups overlap their cache misses). */
static inline void kindex_prefetch(const kindex *ix, uint64_t hash) {
#if defined(__GNUC__)
  __builtin_prefetch(&ix->slots[(uint32_t)hash & ix->mask]);
#else
  (void)ix;
  (void)hash;
#endif
}

/* kindex_find returns the key's cell reference, or 0. */
uint32_t kindex_find(const kindex *ix, uint64_t hash, const uint8_t *key,
                     size_t keylen);
void kindex_get(const kindex *ix, uint32_t ref, kloc *loc);
void kindex_set(kindex *ix, uint32_t ref, const kloc *loc);

/* kindex_cell_units is what a key of |keylen| bytes takes in the arena,
   in 4-byte units (for kindex_reserve). */
static inline size_t kindex_cell_units(size_t keylen) {
  return (14 + keylen + 3) / 4;
}

/*
 * kindex_reserve makes room so that the next kindex_put calls adding up to
 * |nkeys| new keys of |units| cell units in all cannot fail.  Returns 0 or
 * TERN_ERR_NOMEM.
 */
int kindex_reserve(kindex *ix, size_t nkeys, size_t units);

/*
 * kindex_put sets the key's location.  |*old| gets the previous one and
 * the result is 1 when the key was there, 0 when it was added; or
 * TERN_ERR_NOMEM (nothing changed).
 */
int kindex_put(kindex *ix, uint64_t hash, const uint8_t *key, size_t keylen,
               const kloc *loc, kloc *old);

/* kindex_del removes the key: 1 (|*old| gets its location) or 0 (absent). */
int kindex_del(kindex *ix, uint64_t hash, const uint8_t *key, size_t keylen,
               kloc *old);

static inline size_t kindex_count(const kindex *ix) { return ix->count; }

/* kindex_bytes is the memory the index holds. */
size_t kindex_bytes(const kindex *ix);

#endif
