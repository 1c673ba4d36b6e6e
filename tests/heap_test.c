/*
 * lib/base/heap: the min-heap of timers, against a reference model.
 *
 * Random runs of arm (new deadlines, earlier, later, equal), disarm and
 * drain; after every operation the heap must hold exactly the armed timers
 * of the model, keep the heap order, know each timer's slot, and put the
 * earliest deadline on top.  Plus reserve: growth, its limit, and a failing
 * allocator that leaves the heap as it was.
 */
#include <stdlib.h>
#include <string.h>

#include "base/heap.h"
#include "base/mem.h"
#include "base/rand.h"
#include "tap.h"
#include "testutil.h"

#define NTIMERS 300

/* The model: which timers are armed, and their deadlines. */
typedef struct model {
  int armed[NTIMERS];
  tern_tstamp deadline[NTIMERS];
  uint32_t len;
} model;

/* Returns NULL when the heap agrees with the model, else what is wrong. */
static const char *verify(const heap *h, const timer *t, const model *m) {
  if (h->len != m->len || h->len > h->cap) {
    return "length";
  }
  for (uint32_t i = 0; i < h->len; ++i) {
    const timer *x = h->items[i];
    if (x->slot != i + 1) {
      return "slot of an item";
    }
    if (i > 0 && h->items[(i - 1) / 2]->deadline > x->deadline) {
      return "heap order";
    }
  }
  tern_tstamp min = TERN_TSTAMP_NONE;
  for (int k = 0; k < NTIMERS; ++k) {
    if (timer_armed(&t[k]) != m->armed[k]) {
      return "armed flag";
    }
    if (m->armed[k]) {
      if (h->items[t[k].slot - 1] != &t[k]) {
        return "slot of a timer";
      }
      if (t[k].deadline != m->deadline[k]) {
        return "deadline";
      }
      if (m->deadline[k] < min) {
        min = m->deadline[k];
      }
    }
  }
  const timer *top = heap_top(h);
  if (m->len == 0 ? top != NULL : (top == NULL || top->deadline != min)) {
    return "top";
  }
  return NULL;
}

static tern_tstamp random_deadline(rng *r, const timer *t) {
  /* Few distinct values, so that equal deadlines are common; re-arming
     often moves a timer by a little, either way, or not at all. */
  if (timer_armed(t) && rng_below(r, 2)) {
    uint64_t d = t->deadline;
    switch (rng_below(r, 3)) {
    case 0:
      return d > 0 ? d - 1 : 0;
    case 1:
      return d + 1;
    default:
      return d;
    }
  }
  return rng_below(r, 64) * 1000;
}

static void test_model(void) {
  heap h;
  memset(&h, 0, sizeof(h));
  CHECK_INT(heap_reserve(&h, mem_default(), NTIMERS), 0,
            "reserve room for every timer");
  static timer t[NTIMERS];
  model m;
  memset(t, 0, sizeof(t));
  memset(&m, 0, sizeof(m));
  rng r;
  rng_seed(&r, 42);
  const char *bad = NULL;
  long ops = 0, drains = 0;
  for (int round = 0; round < 200 && !bad; ++round) {
    for (int i = 0; i < 500 && !bad; ++i, ++ops) {
      int k = (int)rng_below(&r, NTIMERS);
      if (rng_below(&r, 4) == 0) {
        heap_disarm(&h, &t[k]); /* armed or not: both are allowed */
        if (m.armed[k]) {
          m.armed[k] = 0;
          --m.len;
        }
      } else {
        tern_tstamp d = random_deadline(&r, &t[k]);
        heap_arm(&h, &t[k], d);
        if (!m.armed[k]) {
          m.armed[k] = 1;
          ++m.len;
        }
        m.deadline[k] = d;
      }
      bad = verify(&h, t, &m);
    }
    /* Now and then drain some from the top, as expiry handling does: the
       deadlines come out in order. */
    if (round % 3 == 0) {
      tern_tstamp last = 0;
      for (int n = (int)rng_below(&r, 100); n > 0 && heap_top(&h) && !bad;
           --n) {
        timer *top = heap_top(&h);
        if (top->deadline < last) {
          bad = "drain order";
        }
        last = top->deadline;
        int k = (int)(top - t);
        heap_disarm(&h, top);
        m.armed[k] = 0;
        --m.len;
        ++drains;
        bad = bad ? bad : verify(&h, t, &m);
      }
    }
  }
  CHECK(bad == NULL, "%ld random arms and disarms, %ld pops: the heap agrees "
                     "with the model after each (%s)",
        ops, drains, bad ? bad : "ok");

  /* Drain what is left: every armed timer comes out once, in order. */
  tern_tstamp last = 0;
  uint32_t left = m.len, out = 0;
  int order = 1;
  timer *top;
  while ((top = heap_top(&h)) != NULL && out <= left) {
    order &= top->deadline >= last && m.armed[top - t];
    m.armed[top - t] = 0;
    last = top->deadline;
    heap_disarm(&h, top);
    ++out;
  }
  CHECK(order && out == left && h.len == 0,
        "draining gives each of the %u armed timers once, earliest first",
        left);
  heap_free(&h, mem_default());
  CHECK(h.items == NULL && h.len == 0 && h.cap == 0, "heap_free resets");
}

static void test_reserve(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  heap h;
  memset(&h, 0, sizeof(h));
  CHECK_INT(heap_reserve(&h, &mem, 0), 0, "reserve 0 allocates nothing");
  CHECK(h.cap == 0 && a.calls == 0, "reserve 0: no array");
  CHECK_INT(heap_reserve(&h, &mem, 1), 0, "reserve 1");
  uint32_t cap = h.cap;
  CHECK(cap >= 1 && h.items != NULL, "reserve 1 gives an array (cap %u)",
        cap);
  long calls = a.calls;
  CHECK_INT(heap_reserve(&h, &mem, cap), 0, "reserve within cap");
  CHECK(a.calls == calls && h.cap == cap, "reserve within cap allocates "
                                          "nothing");
  CHECK_INT(heap_reserve(&h, &mem, (size_t)UINT32_MAX / 2 + 1),
            TERN_ERR_NOMEM, "reserve past UINT32_MAX / 2 timers: NOMEM");
  CHECK(h.cap == cap, "and the heap keeps its array");

  /* Arm what fits, then fail a growth: the armed timers are untouched. */
  static timer t[600];
  memset(t, 0, sizeof(t));
  for (uint32_t k = 0; k < cap; ++k) {
    heap_arm(&h, &t[k], (tern_tstamp)(cap - k));
  }
  timer **items = h.items;
  a.fail_at = a.calls + 1;
  CHECK_INT(heap_reserve(&h, &mem, 600), TERN_ERR_NOMEM,
            "a failing allocator: reserve returns NOMEM");
  CHECK(h.items == items && h.cap == cap && h.len == cap &&
            heap_top(&h) == &t[cap - 1],
        "and the heap is as it was");
  a.fail_at = 0;
  CHECK_INT(heap_reserve(&h, &mem, 600), 0, "a retry grows it");
  int kept = h.cap >= 600 && h.len == cap && heap_top(&h) == &t[cap - 1];
  for (uint32_t k = cap; k < 600; ++k) {
    heap_arm(&h, &t[k], 0);
  }
  kept &= h.len == 600 && heap_top(&h)->deadline == 0;
  CHECK(kept, "growing keeps the timers, and the new room is usable");
  heap_free(&h, &mem);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "heap_free releases everything");
}

int main(void) {
  test_model();
  test_reserve();
  return tap_done();
}
