/*
 * The client's two queues, both rings that grow by doubling through the
 * client's allocator: the event queue the app drains, and the FIFO of MSG
 * frames not yet covered by an ACK.
 */
#include <string.h>

#include "base/mem.h"
#include "client/client.h"

#define EVQ_INITIAL 16u

/* Doubles a ring of |size|-byte records, unrolling it to start at 0. */
static void *grow_ring(const tern_mem *mem, void *ring, uint32_t head,
                       uint32_t len, uint32_t cap, uint32_t newcap,
                       size_t size) {
  uint8_t *n = mem_malloc(mem, (size_t)newcap * size);
  if (!n) {
    return NULL;
  }
  const uint8_t *old = ring;
  uint32_t first = cap - head < len ? cap - head : len;
  if (first) {
    memcpy(n, old + (size_t)head * size, (size_t)first * size);
  }
  if (len > first) {
    memcpy(n + (size_t)first * size, old, (size_t)(len - first) * size);
  }
  return n;
}

int evq_init(evq *q, const tern_mem *mem) {
  q->ring = mem_malloc(mem, EVQ_INITIAL * sizeof(cevent));
  if (!q->ring) {
    return TERN_ERR_NOMEM;
  }
  q->head = q->len = 0;
  q->cap = EVQ_INITIAL;
  return 0;
}

void evq_free(evq *q, const tern_mem *mem) {
  cevent e;
  while (evq_pop(q, &e)) {
    mem_free(mem, e.msg);
  }
  mem_free(mem, q->ring);
  q->ring = NULL;
  q->cap = 0;
}

static int evq_grow(evq *q, const tern_mem *mem) {
  if (q->cap > UINT32_MAX / 2) {
    return TERN_ERR_NOMEM;
  }
  cevent *n = grow_ring(mem, q->ring, q->head, q->len, q->cap, q->cap * 2,
                        sizeof(cevent));
  if (!n) {
    return TERN_ERR_NOMEM;
  }
  mem_free(mem, q->ring);
  q->ring = n;
  q->head = 0;
  q->cap *= 2;
  return 0;
}

int evq_reserve(evq *q, const tern_mem *mem, uint32_t n) {
  while ((uint64_t)q->len + n + 1 > q->cap) {
    int rv = evq_grow(q, mem);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

cevent *evq_push(evq *q) {
  cevent *e = &q->ring[(q->head + q->len) & (q->cap - 1)];
  ++q->len;
  memset(e, 0, sizeof(*e));
  return e;
}

cevent *evq_push_spare(evq *q, const tern_mem *mem) {
  if (q->len == q->cap && evq_grow(q, mem) != 0) {
    return NULL;
  }
  return evq_push(q);
}

int evq_pop(evq *q, cevent *e) {
  if (!q->len) {
    return 0;
  }
  *e = q->ring[q->head];
  q->head = (q->head + 1) & (q->cap - 1);
  --q->len;
  return 1;
}

int ackq_reserve(ackq *q, const tern_mem *mem) {
  if (q->len < q->cap) {
    return 0;
  }
  if (q->cap >= CLIENT_ACKQ_MAX) {
    /* The server ignores its in-flight window by far. */
    return TERN_ERR_PROTO;
  }
  uint32_t cap = q->cap ? q->cap * 2 : 16;
  ack_item *n = grow_ring(mem, q->ring, q->head, q->len, q->cap, cap,
                          sizeof(ack_item));
  if (!n) {
    return TERN_ERR_NOMEM;
  }
  mem_free(mem, q->ring);
  q->ring = n;
  q->head = 0;
  q->cap = cap;
  return 0;
}

void ackq_push(ackq *q, uint64_t seq, uint64_t need) {
  ack_item *it = &q->ring[(q->head + q->len) & (q->cap - 1)];
  it->seq = seq;
  it->need = need;
  ++q->len;
}

void ackq_free(ackq *q, const tern_mem *mem) {
  mem_free(mem, q->ring);
  memset(q, 0, sizeof(*q));
}
