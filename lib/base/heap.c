/* Binary min-heap of timer pointers keyed by deadline. */
#include "base/heap.h"

#include "base/mem.h"

int heap_reserve(heap *h, const tern_mem *mem, size_t n) {
  if (n <= h->cap) {
    return 0;
  }
  if (n > UINT32_MAX / 2) {
    return TERN_ERR_NOMEM;
  }
  size_t cap = h->cap ? h->cap : 64;
  while (cap < n) {
    cap *= 2;
  }
  timer **items = mem_realloc(mem, h->items, cap * sizeof(*items));
  if (!items) {
    return TERN_ERR_NOMEM;
  }
  h->items = items;
  h->cap = (uint32_t)cap;
  return 0;
}

void heap_free(heap *h, const tern_mem *mem) {
  mem_free(mem, h->items);
  h->items = NULL;
  h->len = h->cap = 0;
}

static void place(heap *h, uint32_t i, timer *t) {
  h->items[i] = t;
  t->slot = i + 1;
}

static void sift_up(heap *h, uint32_t i) {
  timer *t = h->items[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (h->items[parent]->deadline <= t->deadline) {
      break;
    }
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, t);
}

static void sift_down(heap *h, uint32_t i) {
  timer *t = h->items[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= h->len) {
      break;
    }
    if (child + 1 < h->len &&
        h->items[child + 1]->deadline < h->items[child]->deadline) {
      ++child;
    }
    if (t->deadline <= h->items[child]->deadline) {
      break;
    }
    place(h, i, h->items[child]);
    i = child;
  }
  place(h, i, t);
}

void heap_arm(heap *h, timer *t, tern_tstamp deadline) {
  if (t->slot) {
    tern_tstamp old = t->deadline;
    t->deadline = deadline;
    if (deadline < old) {
      sift_up(h, t->slot - 1);
    } else if (deadline > old) {
      sift_down(h, t->slot - 1);
    }
    return;
  }
  t->deadline = deadline;
  h->items[h->len] = t;
  t->slot = h->len + 1;
  ++h->len;
  sift_up(h, h->len - 1);
}

void heap_disarm(heap *h, timer *t) {
  if (!t->slot) {
    return;
  }
  uint32_t i = t->slot - 1;
  t->slot = 0;
  --h->len;
  if (i == h->len) {
    return;
  }
  timer *last = h->items[h->len];
  place(h, i, last);
  if (i > 0 && h->items[(i - 1) / 2]->deadline > last->deadline) {
    sift_up(h, i);
  } else {
    sift_down(h, i);
  }
}

void heap_set(heap *h, timer *t, tern_tstamp deadline) {
  if (deadline == TERN_TSTAMP_NONE) {
    heap_disarm(h, t);
  } else {
    heap_arm(h, t, deadline);
  }
}
