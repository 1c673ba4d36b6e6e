/*
 * An in-memory store for tests: a tern_store_methods table over a key/value
 * map that keeps, besides the durable state, the batches appended without
 * sync.  memstore_crash() models a process crash on a machine that loses
 * what was never synced: unsynced batches vanish.  Optionally appends
 * complete later (TERN_STORE_LATER) or fail.
 */
#ifndef TERN_TESTS_MEMSTORE_H
#define TERN_TESTS_MEMSTORE_H

#include <stdlib.h>
#include <string.h>

#include "tern.h"

typedef struct memrec {
  uint8_t *key, *value;
  size_t keylen, valuelen;
  int op;
} memrec;

typedef struct memstore {
  /* durable map: last record per key, as an array (tests are small) */
  memrec *kv;
  size_t nkv, capkv;
  /* appended but not durable yet, in order */
  memrec *pending;
  size_t npending, cappending;
  int later;       /* answer TERN_STORE_LATER and wait for memstore_done */
  int fail;        /* make the next append fail                          */
  int frozen;      /* crashed: ignore every append                       */
  uint64_t last_batch;
  size_t appends, syncs, records;
} memstore;

static inline void memrec_free(memrec *r) {
  free(r->key);
  free(r->value);
}

static inline void memstore_apply(memstore *s, const memrec *r) {
  for (size_t i = 0; i < s->nkv; ++i) {
    if (s->kv[i].keylen == r->keylen &&
        memcmp(s->kv[i].key, r->key, r->keylen) == 0) {
      memrec_free(&s->kv[i]);
      if (r->op == TERN_STORE_DEL) {
        s->kv[i] = s->kv[--s->nkv];
      } else {
        s->kv[i] = *r;
        return;
      }
      memrec_free((memrec *)r);
      return;
    }
  }
  if (r->op == TERN_STORE_DEL) {
    memrec_free((memrec *)r);
    return;
  }
  if (s->nkv == s->capkv) {
    s->capkv = s->capkv ? 2 * s->capkv : 64;
    s->kv = realloc(s->kv, s->capkv * sizeof(*s->kv));
  }
  s->kv[s->nkv++] = *r;
}

/* memstore_sync makes every pending record durable. */
static inline void memstore_sync(memstore *s) {
  for (size_t i = 0; i < s->npending; ++i) {
    memstore_apply(s, &s->pending[i]);
  }
  s->npending = 0;
  ++s->syncs;
}

static inline uint8_t *memdup(const uint8_t *p, size_t n) {
  uint8_t *q = malloc(n ? n : 1);
  if (n) {
    memcpy(q, p, n);
  }
  return q;
}

static inline int memstore_append(void *store, uint64_t batch,
                                  const tern_store_record *recs, size_t n,
                                  int sync) {
  memstore *s = store;
  if (s->frozen) {
    return 0;
  }
  if (s->fail) {
    s->fail = 0;
    return TERN_ERR_STORE;
  }
  ++s->appends;
  s->last_batch = batch;
  for (size_t i = 0; i < n; ++i) {
    if (s->npending == s->cappending) {
      s->cappending = s->cappending ? 2 * s->cappending : 64;
      s->pending = realloc(s->pending, s->cappending * sizeof(*s->pending));
    }
    memrec *r = &s->pending[s->npending++];
    r->op = recs[i].op;
    r->key = memdup(recs[i].key, recs[i].keylen);
    r->keylen = recs[i].keylen;
    r->value = memdup(recs[i].value, recs[i].valuelen);
    r->valuelen = recs[i].valuelen;
    ++s->records;
  }
  if (sync) {
    memstore_sync(s);
  }
  return s->later ? TERN_STORE_LATER : 0;
}

static inline int memstore_load(void *store, tern_store_visit visit,
                                void *ctx) {
  memstore *s = store;
  for (size_t i = 0; i < s->nkv; ++i) {
    int rv = visit(ctx, s->kv[i].key, s->kv[i].keylen, s->kv[i].value,
                   s->kv[i].valuelen);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

static inline int memstore_sync_method(void *store) {
  memstore_sync(store);
  return 0;
}

static const tern_store_methods memstore_methods = {
    TERN_STORE_METHODS_VERSION, memstore_append, memstore_load,
    memstore_sync_method, NULL, NULL};

/* memstore_crash: the process dies and unsynced records are lost; appends
   are ignored until memstore_restart. */
static inline void memstore_crash(memstore *s) {
  for (size_t i = 0; i < s->npending; ++i) {
    memrec_free(&s->pending[i]);
  }
  s->npending = 0;
  s->frozen = 1;
}

static inline void memstore_restart(memstore *s) { s->frozen = 0; }

/* memstore_count_prefix counts durable keys starting with |c|. */
static inline size_t memstore_count(const memstore *s, uint8_t c) {
  size_t n = 0;
  for (size_t i = 0; i < s->nkv; ++i) {
    n += s->kv[i].keylen && s->kv[i].key[0] == c;
  }
  return n;
}

static inline void memstore_free(memstore *s) {
  memstore_crash(s);
  for (size_t i = 0; i < s->nkv; ++i) {
    memrec_free(&s->kv[i]);
  }
  free(s->kv);
  free(s->pending);
  memset(s, 0, sizeof(*s));
}

#endif
