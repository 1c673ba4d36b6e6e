/*
 * The ids a client has seen, for dedup by message id: a hash set for O(1)
 * lookups and a FIFO in arrival order, so that both bounds (count and age)
 * evict from the oldest end in O(1) per id.
 */
#include <string.h>

#include "base/mem.h"
#include "client/client.h"

int idset_init(idset *d, const tern_mem *mem, rng *r) {
  memset(d, 0, sizeof(*d));
  d->key[0] = rng_next(r);
  d->key[1] = rng_next(r);
  return hmap_init(&d->map, mem, 16);
}

static void drop_oldest(idset *d, const tern_mem *mem) {
  idset_entry *e = d->oldest;
  d->oldest = e->newer;
  if (!d->oldest) {
    d->newest = NULL;
  }
  hmap_remove(&d->map, &e->link);
  --d->len;
  mem_free(mem, e);
}

void idset_clear(idset *d, const tern_mem *mem) {
  while (d->oldest) {
    drop_oldest(d, mem);
  }
}

void idset_free(idset *d, const tern_mem *mem) {
  if (d->map.buckets) {
    idset_clear(d, mem);
    hmap_free(&d->map, mem);
  }
}

static uint64_t id_hash(const idset *d, const uint8_t *id, size_t idlen) {
  return hash_bytes(d->key, 0, id, idlen);
}

idset_entry *idset_find(const idset *d, const uint8_t *id, size_t idlen) {
  uint64_t h = id_hash(d, id, idlen);
  for (hnode *n = hmap_bucket(&d->map, h); n; n = n->next) {
    idset_entry *e = (idset_entry *)n;
    if (n->hash == h && e->idlen == idlen && memcmp(e->id, id, idlen) == 0) {
      return e;
    }
  }
  return NULL;
}

idset_entry *idset_entry_new(const tern_mem *mem, const uint8_t *id,
                             size_t idlen) {
  idset_entry *e = mem_malloc(mem, sizeof(idset_entry) + idlen);
  if (e) {
    e->idlen = (uint8_t)idlen;
    memcpy(e->id, id, idlen);
  }
  return e;
}

void idset_add(idset *d, const tern_mem *mem, idset_entry *e, uint64_t seq,
               tern_tstamp now, uint32_t max) {
  uint64_t h = id_hash(d, e->id, e->idlen);
  e->link.hash = h;
  e->at = now;
  e->seq = seq;
  e->newer = NULL;
  if (d->newest) {
    d->newest->newer = e;
  } else {
    d->oldest = e;
  }
  d->newest = e;
  hmap_insert(&d->map, mem, &e->link);
  ++d->len;
  while (d->len > max) {
    drop_oldest(d, mem);
  }
}

void idset_expire(idset *d, const tern_mem *mem, tern_tstamp before) {
  while (d->oldest && d->oldest->at <= before) {
    drop_oldest(d, mem);
  }
}
