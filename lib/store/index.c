/* The key index: an arena of key cells and an open-addressing table. */
#include "store/index.h"

#include <string.h>

#include "base/hashmap.h"
#include "base/mem.h"

#define CHUNK_SHIFT 14
#define CHUNK_UNITS ((uint32_t)1 << CHUNK_SHIFT)
#define CHUNK_BYTES ((size_t)CHUNK_UNITS * 4)
#define MAX_CHUNKS ((size_t)1 << (32 - CHUNK_SHIFT))
#define MIN_UNITS 4  /* kindex_cell_units(1) */
#define MAX_UNITS 68 /* kindex_cell_units(TERN_STORE_MAX_KEY) */
#define MIN_SLOTS 64

/*
 * A cell, 4-byte aligned:
 *   0  u32 segment   4  u32 record size   8  u32 offset bits 0..31
 *   12 u8 offset bits 32..39   13 u8 keylen - 1   14 key
 * A free cell holds the reference of the next free cell of its size in
 * its first word.
 */
static inline uint8_t *cell(const kindex *ix, uint32_t ref) {
  return ix->chunks[ref >> CHUNK_SHIFT] +
         (size_t)(ref & (CHUNK_UNITS - 1)) * 4;
}

static inline uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static inline size_t cell_keylen(const uint8_t *c) { return (size_t)c[13] + 1; }

int kindex_init(kindex *ix, const tern_mem *mem, const uint64_t hash_key[2]) {
  memset(ix, 0, sizeof(*ix));
  ix->mem = mem;
  ix->hash_key[0] = hash_key[0];
  ix->hash_key[1] = hash_key[1];
  ix->slots = mem_calloc(mem, MIN_SLOTS, sizeof(kslot));
  if (ix->slots == NULL) {
    return TERN_ERR_NOMEM;
  }
  ix->mask = MIN_SLOTS - 1;
  return 0;
}

void kindex_free(kindex *ix) {
  if (ix->mem == NULL) {
    return; /* never initialised */
  }
  for (size_t i = 1; i < ix->nchunks; ++i) {
    mem_free(ix->mem, ix->chunks[i]);
  }
  mem_free(ix->mem, ix->chunks);
  mem_free(ix->mem, ix->slots);
  memset(ix, 0, sizeof(*ix));
}

uint64_t kindex_hash(const kindex *ix, const uint8_t *key, size_t keylen) {
  return hash_bytes(ix->hash_key, 0, key, keylen);
}

/* probe returns the key's slot, or the empty slot that ends its run (where
   it would be added) with |*found| 0. */
static size_t probe(const kindex *ix, uint64_t hash, const uint8_t *key,
                    size_t keylen, int *found) {
  uint32_t tag = (uint32_t)hash;
  size_t i = tag & ix->mask;
  while (ix->slots[i].ref != 0) {
    if (ix->slots[i].tag == tag) {
      const uint8_t *c = cell(ix, ix->slots[i].ref);
      if (cell_keylen(c) == keylen && memcmp(c + 14, key, keylen) == 0) {
        *found = 1;
        return i;
      }
    }
    i = (i + 1) & ix->mask;
  }
  *found = 0;
  return i;
}

uint32_t kindex_find(const kindex *ix, uint64_t hash, const uint8_t *key,
                     size_t keylen) {
  int found;
  size_t i = probe(ix, hash, key, keylen, &found);
  return found ? ix->slots[i].ref : 0;
}

void kindex_get(const kindex *ix, uint32_t ref, kloc *loc) {
  const uint8_t *c = cell(ix, ref);
  loc->seg = rd32(c);
  loc->size = rd32(c + 4);
  loc->off = (uint64_t)rd32(c + 8) | (uint64_t)c[12] << 32;
}

void kindex_set(kindex *ix, uint32_t ref, const kloc *loc) {
  uint8_t *c = cell(ix, ref);
  wr32(c, loc->seg);
  wr32(c + 4, loc->size);
  wr32(c + 8, (uint32_t)loc->off);
  c[12] = (uint8_t)(loc->off >> 32);
}

/* ---- table -------------------------------------------------------------- */

static int over_limit(size_t count, size_t mask) {
  size_t cap = mask + 1;
  return count > cap - cap / 5;
}

static int grow_table(kindex *ix, size_t want) {
  size_t cap = ix->mask + 1, nmask;
  kslot *slots;
  while (over_limit(want, cap - 1)) {
    if (cap > SIZE_MAX / 2 / sizeof(kslot)) {
      return TERN_ERR_NOMEM;
    }
    cap *= 2;
  }
  if (cap == ix->mask + 1) {
    return 0;
  }
  slots = mem_calloc(ix->mem, cap, sizeof(kslot));
  if (slots == NULL) {
    return TERN_ERR_NOMEM;
  }
  nmask = cap - 1;
  for (size_t i = 0; i <= ix->mask; ++i) {
    if (ix->slots[i].ref != 0) {
      size_t j = ix->slots[i].tag & nmask;
      while (slots[j].ref != 0) {
        j = (j + 1) & nmask;
      }
      slots[j] = ix->slots[i];
    }
  }
  mem_free(ix->mem, ix->slots);
  ix->slots = slots;
  ix->mask = nmask;
  return 0;
}

/* ---- arena -------------------------------------------------------------- */

static int add_chunk(kindex *ix) {
  uint8_t *c;
  if (ix->nchunks == 0) {
    ix->nchunks = 1; /* chunks[0] stays NULL */
  }
  if (ix->nchunks >= MAX_CHUNKS) {
    return TERN_ERR_NOMEM;
  }
  if (ix->nchunks >= ix->chunkcap) {
    size_t cap = ix->chunkcap ? ix->chunkcap * 2 : 16;
    uint8_t **chunks = mem_realloc(ix->mem, ix->chunks, cap * sizeof(*chunks));
    if (chunks == NULL) {
      return TERN_ERR_NOMEM;
    }
    chunks[0] = NULL;
    ix->chunks = chunks;
    ix->chunkcap = cap;
  }
  c = mem_malloc(ix->mem, CHUNK_BYTES);
  if (c == NULL) {
    return TERN_ERR_NOMEM;
  }
  ix->chunks[ix->nchunks++] = c;
  return 0;
}

static void free_cell(kindex *ix, uint32_t ref, size_t units) {
  wr32(cell(ix, ref), ix->free_head[units]);
  ix->free_head[units] = ref;
}

static size_t spare_chunks(const kindex *ix) {
  return ix->nchunks == 0 ? 0 : ix->nchunks - 1 - ix->bump_chunk;
}

/* alloc_cell returns a reference to |units| free units, or 0. */
static uint32_t alloc_cell(kindex *ix, size_t units) {
  uint32_t ref = ix->free_head[units];
  if (ref != 0) {
    ix->free_head[units] = rd32(cell(ix, ref));
    return ref;
  }
  if (ix->bump_chunk == 0 || ix->bump_unit + units > CHUNK_UNITS) {
    if (spare_chunks(ix) == 0 && add_chunk(ix) != 0) {
      return 0;
    }
    if (ix->bump_chunk != 0 && CHUNK_UNITS - ix->bump_unit >= MIN_UNITS) {
      /* File the end of the old chunk as a free cell of its size. */
      uint32_t rest = CHUNK_UNITS - ix->bump_unit;
      free_cell(ix,
                (uint32_t)(ix->bump_chunk << CHUNK_SHIFT) | ix->bump_unit,
                rest < MAX_UNITS ? rest : MAX_UNITS);
      /* a longer rest than MAX_UNITS is never left: MAX_UNITS fits */
    }
    ++ix->bump_chunk;
    ix->bump_unit = 0;
  }
  ref = (uint32_t)(ix->bump_chunk << CHUNK_SHIFT) | ix->bump_unit;
  ix->bump_unit += (uint32_t)units;
  return ref;
}

int kindex_reserve(kindex *ix, size_t nkeys, size_t units) {
  size_t need;
  int rv = grow_table(ix, ix->count + nkeys);
  if (rv != 0) {
    return rv;
  }
  /* Every spare chunk holds at least CHUNK_UNITS - MAX_UNITS of them,
     whatever the cell sizes; the current chunk's rest is not counted. */
  need = (units + (CHUNK_UNITS - MAX_UNITS) - 1) / (CHUNK_UNITS - MAX_UNITS);
  while (spare_chunks(ix) < need) {
    rv = add_chunk(ix);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

int kindex_put(kindex *ix, uint64_t hash, const uint8_t *key, size_t keylen,
               const kloc *loc, kloc *old) {
  int found;
  size_t i = probe(ix, hash, key, keylen, &found), units;
  uint32_t ref;
  uint8_t *c;

  if (found) {
    kindex_get(ix, ix->slots[i].ref, old);
    kindex_set(ix, ix->slots[i].ref, loc);
    return 1;
  }
  if (over_limit(ix->count + 1, ix->mask)) {
    if (grow_table(ix, ix->count + 1) != 0) {
      return TERN_ERR_NOMEM;
    }
    i = probe(ix, hash, key, keylen, &found);
  }
  units = kindex_cell_units(keylen);
  ref = alloc_cell(ix, units);
  if (ref == 0) {
    return TERN_ERR_NOMEM;
  }
  c = cell(ix, ref);
  c[13] = (uint8_t)(keylen - 1);
  memcpy(c + 14, key, keylen);
  kindex_set(ix, ref, loc);
  ix->slots[i].ref = ref;
  ix->slots[i].tag = (uint32_t)hash;
  ++ix->count;
  return 0;
}

int kindex_del(kindex *ix, uint64_t hash, const uint8_t *key, size_t keylen,
               kloc *old) {
  int found;
  size_t i = probe(ix, hash, key, keylen, &found), j;
  uint32_t ref;

  if (!found) {
    return 0;
  }
  ref = ix->slots[i].ref;
  kindex_get(ix, ref, old);
  free_cell(ix, ref, kindex_cell_units(keylen));
  /* Backward shift: move up every later entry of the run that may live in
     the hole, so that lookups never need tombstones. */
  j = i;
  for (;;) {
    size_t home;
    j = (j + 1) & ix->mask;
    if (ix->slots[j].ref == 0) {
      break;
    }
    home = ix->slots[j].tag & ix->mask;
    if (j > i ? (home <= i || home > j) : (home <= i && home > j)) {
      ix->slots[i] = ix->slots[j];
      i = j;
    }
  }
  ix->slots[i].ref = 0;
  ix->slots[i].tag = 0;
  --ix->count;
  return 1;
}

size_t kindex_bytes(const kindex *ix) {
  size_t chunks = ix->nchunks > 0 ? ix->nchunks - 1 : 0;
  return (ix->mask + 1) * sizeof(kslot) + chunks * CHUNK_BYTES +
         ix->chunkcap * sizeof(uint8_t *);
}
