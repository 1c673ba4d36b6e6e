/* Chained hash map and the keyed hash function. */
#include "base/hashmap.h"

#include <string.h>

#include "base/mem.h"

int hmap_init(hmap *m, const tern_mem *mem, size_t nbuckets) {
  m->buckets = mem_calloc(mem, nbuckets, sizeof(*m->buckets));
  if (!m->buckets) {
    return TERN_ERR_NOMEM;
  }
  m->mask = nbuckets - 1;
  m->len = 0;
  return 0;
}

void hmap_free(hmap *m, const tern_mem *mem) {
  mem_free(mem, m->buckets);
  m->buckets = NULL;
  m->mask = 0;
  m->len = 0;
}

static void grow(hmap *m, const tern_mem *mem) {
  size_t nb = (m->mask + 1) * 2;
  hnode **b = mem_calloc(mem, nb, sizeof(*b));
  if (!b) {
    return; /* keep the old array; chains get longer */
  }
  for (size_t i = 0; i <= m->mask; ++i) {
    hnode *n = m->buckets[i];
    while (n) {
      hnode *next = n->next;
      size_t j = n->hash & (nb - 1);
      n->next = b[j];
      b[j] = n;
      n = next;
    }
  }
  mem_free(mem, m->buckets);
  m->buckets = b;
  m->mask = nb - 1;
}

void hmap_insert(hmap *m, const tern_mem *mem, hnode *n) {
  if (m->len > m->mask) {
    grow(m, mem);
  }
  hnode **b = &m->buckets[n->hash & m->mask];
  n->next = *b;
  *b = n;
  ++m->len;
}

void hmap_remove(hmap *m, hnode *n) {
  hnode **pp = &m->buckets[n->hash & m->mask];
  while (*pp && *pp != n) {
    pp = &(*pp)->next;
  }
  if (*pp) {
    *pp = n->next;
    --m->len;
  }
}

static inline uint64_t read64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* 64x64->128 multiply folded to 64 bits: the mixing step. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b) {
#if defined(__SIZEOF_INT128__)
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
  uint64_t ah = a >> 32, al = a & 0xffffffffu, bh = b >> 32,
           bl = b & 0xffffffffu;
  uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
  uint64_t lo = (ll & 0xffffffffu) | (mid << 32);
  uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
  return lo ^ hi;
#endif
}

uint64_t hash_bytes(const uint64_t key[2], uint64_t salt, const void *data,
                    size_t len) {
  const uint8_t *p = data;
  uint64_t h = key[0] ^ salt ^ (len * UINT64_C(0x9e3779b97f4a7c15));
  while (len >= 16) {
    h = fold_mul(read64(p) ^ key[0] ^ h, read64(p + 8) ^ key[1]);
    p += 16;
    len -= 16;
  }
  uint64_t a = 0, b = 0;
  if (len >= 8) {
    a = read64(p);
    if (len > 8) {
      b = read64(p + len - 8) >> (8 * (16 - len));
    }
  } else if (len > 0) {
    for (size_t i = 0; i < len; ++i) {
      a |= (uint64_t)p[i] << (8 * i);
    }
  }
  h = fold_mul(a ^ key[1] ^ h, b ^ key[0] ^ UINT64_C(0xa0761d6478bd642f));
  return fold_mul(h ^ key[1], UINT64_C(0xe7037ed1a0b428db) ^ key[0]);
}
