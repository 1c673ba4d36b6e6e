/*
 * Small tools of the simulator: the counting allocator handed to the hub
 * and the clients (tern_mem), and a map from short byte keys to ints for
 * the model.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- allocation counting -------------------------------------------------- */

typedef union ahdr {
  struct {
    size_t size;
    uint64_t magic;
    union ahdr *prev, *next; /* sim_alloc.live */
  } h;
  max_align_t align;
} ahdr;

#define AMAGIC UINT64_C(0x73696d616c6c6f63)

static void a_link(sim_alloc *a, ahdr *h) {
  h->h.prev = NULL;
  h->h.next = a->live;
  if (h->h.next) {
    h->h.next->h.prev = h;
  }
  a->live = h;
}

static void a_unlink(sim_alloc *a, ahdr *h) {
  if (h->h.prev) {
    h->h.prev->h.next = h->h.next;
  } else {
    a->live = h->h.next;
  }
  if (h->h.next) {
    h->h.next->h.prev = h->h.prev;
  }
}

static void *a_track(sim_alloc *a, ahdr *h, size_t size) {
  if (!h) {
    return NULL;
  }
  h->h.size = size;
  h->h.magic = AMAGIC;
  a_link(a, h);
  ++a->blocks;
  a->bytes += size;
  return h + 1;
}

size_t sim_alloc_size(const sim_alloc *a, const void *p) {
  for (const ahdr *h = a->live; h; h = h->h.next) {
    if ((const void *)(h + 1) == p) {
      return h->h.size;
    }
  }
  return SIZE_MAX;
}

static void *a_malloc(size_t size, void *ud) {
  return a_track(ud, malloc(sizeof(ahdr) + size), size);
}

static void *a_calloc(size_t n, size_t size, void *ud) {
  if (size && n > ((size_t)-1 - sizeof(ahdr)) / size) {
    return NULL;
  }
  return a_track(ud, calloc(1, sizeof(ahdr) + n * size), n * size);
}

static void a_free(void *p, void *ud) {
  sim_alloc *a = ud;
  if (!p) {
    return;
  }
  ahdr *h = (ahdr *)p - 1;
  if (h->h.magic != AMAGIC) {
    ++a->bad_frees;
    return;
  }
  h->h.magic = 0;
  a_unlink(a, h);
  --a->blocks;
  a->bytes -= h->h.size;
  memset(p, 0xdb, h->h.size); /* make a use after free loud */
  free(h);
}

static void *a_realloc(void *p, size_t size, void *ud) {
  sim_alloc *a = ud;
  if (!p) {
    return a_malloc(size, ud);
  }
  ahdr *h = (ahdr *)p - 1;
  if (h->h.magic != AMAGIC) {
    ++a->bad_frees;
    return NULL;
  }
  size_t old = h->h.size;
  a_unlink(a, h);
  ahdr *n = realloc(h, sizeof(ahdr) + size);
  if (!n) {
    a_link(a, h);
    return NULL;
  }
  a_link(a, n);
  a->bytes = a->bytes - old + size;
  n->h.size = size;
  return n + 1;
}

tern_mem sim_alloc_mem(sim_alloc *a) {
  tern_mem m;
  m.user_data = a;
  m.malloc = a_malloc;
  m.free = a_free;
  m.calloc = a_calloc;
  m.realloc = a_realloc;
  return m;
}

/* ---- a small map ---------------------------------------------------------- */

static uint64_t khash(const uint8_t *k, size_t n) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ k[i]) * UINT64_C(0x100000001b3);
  }
  return h ^ (h >> 29);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    abort();
  }
  return q;
}

void kmap_init(kmap *m, size_t nb) {
  memset(m, 0, sizeof(*m));
  m->nb = nb;
  m->buckets = xrealloc(NULL, nb * sizeof(*m->buckets));
  for (size_t i = 0; i < nb; ++i) {
    m->buckets[i] = -1;
  }
  m->free_head = -1;
}

void kmap_free(kmap *m) {
  free(m->buckets);
  free(m->ent);
  memset(m, 0, sizeof(*m));
}

void kmap_clear(kmap *m) {
  for (size_t i = 0; i < m->nb; ++i) {
    m->buckets[i] = -1;
  }
  m->n = 0;
  m->free_head = -1;
}

int32_t *kmap_find(kmap *m, const uint8_t *k, size_t klen) {
  uint64_t h = khash(k, klen);
  for (int32_t i = m->buckets[h & (m->nb - 1)]; i >= 0; i = m->ent[i].next) {
    kmap_ent *e = &m->ent[i];
    if (e->h == h && e->klen == klen && memcmp(e->key, k, klen) == 0) {
      return &e->val;
    }
  }
  return NULL;
}

void kmap_put(kmap *m, const uint8_t *k, size_t klen, int32_t val) {
  int32_t *v = kmap_find(m, k, klen);
  if (v) {
    *v = val;
    return;
  }
  int32_t i;
  if (m->free_head >= 0) {
    i = m->free_head;
    m->free_head = m->ent[i].next;
  } else {
    if (m->n == m->cap) {
      m->cap = m->cap ? m->cap * 2 : 64;
      m->ent = xrealloc(m->ent, m->cap * sizeof(*m->ent));
    }
    i = (int32_t)m->n++;
  }
  kmap_ent *e = &m->ent[i];
  e->h = khash(k, klen);
  e->klen = (uint8_t)klen;
  memcpy(e->key, k, klen);
  e->val = val;
  size_t b = e->h & (m->nb - 1);
  e->next = m->buckets[b];
  m->buckets[b] = i;
}

void kmap_del(kmap *m, const uint8_t *k, size_t klen) {
  uint64_t h = khash(k, klen);
  int32_t *pp = &m->buckets[h & (m->nb - 1)];
  while (*pp >= 0) {
    kmap_ent *e = &m->ent[*pp];
    if (e->h == h && e->klen == klen && memcmp(e->key, k, klen) == 0) {
      int32_t i = *pp;
      *pp = e->next;
      e->next = m->free_head;
      m->free_head = i;
      return;
    }
    pp = &e->next;
  }
}

const char *sim_idstr(const mmsg *m) {
  static char bufs[4][TERN_MAX_ID + 1];
  static unsigned next;
  char *buf = bufs[next++ % 4];
  memcpy(buf, m->id, m->idlen);
  buf[m->idlen] = 0;
  return buf;
}
