/*
 * An intrusive chained hash map.  Objects embed an `hnode`; lookups walk one
 * bucket comparing the stored hash first, so the caller supplies the key
 * comparison.  Inserting never fails: when growing the bucket array fails,
 * chains just get longer until a later insert grows it.
 *
 * hash_bytes is keyed with a per-hub random key so that peers choosing
 * session keys or message ids cannot aim them at one bucket.
 */
#ifndef TERN_BASE_HASHMAP_H
#define TERN_BASE_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

typedef struct hnode {
  struct hnode *next;
  uint64_t hash;
} hnode;

typedef struct hmap {
  hnode **buckets;
  size_t mask; /* bucket count - 1 */
  size_t len;
} hmap;

/* hmap_init allocates |nbuckets| (a power of two) buckets. */
int hmap_init(hmap *m, const tern_mem *mem, size_t nbuckets);
void hmap_free(hmap *m, const tern_mem *mem);
void hmap_insert(hmap *m, const tern_mem *mem, hnode *n);
void hmap_remove(hmap *m, hnode *n);

static inline hnode *hmap_bucket(const hmap *m, uint64_t hash) {
  return m->buckets[hash & m->mask];
}

/* hash_bytes hashes |len| bytes of |p| with |key| and a |salt| word. */
uint64_t hash_bytes(const uint64_t key[2], uint64_t salt, const void *p,
                    size_t len);

#endif
