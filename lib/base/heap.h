/*
 * The hub's one min-heap of deadlines.  Objects embed a `timer`; the heap
 * holds pointers to them, and each timer knows its slot so that removal and
 * re-keying are O(log n) with no search and no allocation.  Capacity is
 * reserved when objects that may be armed are created (heap_reserve), so
 * arming a timer later can never fail.
 */
#ifndef TERN_BASE_HEAP_H
#define TERN_BASE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

typedef struct timer {
  tern_tstamp deadline;
  uint32_t slot; /* index + 1 in the heap; 0 when not armed */
  uint8_t kind;  /* what the timer is embedded in (owner's choice) */
} timer;

typedef struct heap {
  timer **items;
  uint32_t len;
  uint32_t cap;
} heap;

/* heap_reserve makes room for |n| timers.  0 or TERN_ERR_NOMEM. */
int heap_reserve(heap *h, const tern_mem *mem, size_t n);
/* heap_free releases the array (armed timers are simply forgotten). */
void heap_free(heap *h, const tern_mem *mem);
/* heap_arm sets t's deadline and (re)positions it; capacity must be there. */
void heap_arm(heap *h, timer *t, tern_tstamp deadline);
/* heap_disarm removes t if it is armed. */
void heap_disarm(heap *h, timer *t);
/* heap_set arms t at |deadline|, or disarms it when that is
   TERN_TSTAMP_NONE (no deadline). */
void heap_set(heap *h, timer *t, tern_tstamp deadline);

static inline timer *heap_top(const heap *h) {
  return h->len ? h->items[0] : NULL;
}
static inline int timer_armed(const timer *t) { return t->slot != 0; }

#endif
