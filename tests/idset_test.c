/*
 * lib/client/idset: the client's dedup set, against a reference model (a
 * FIFO of ids with their seq and arrival time).
 *
 * Random runs add ids as the client does (expire, find, add if absent),
 * with the count bound changing now and then, expire by age and clear;
 * after every step the set must find exactly the model's ids with their
 * seqs, hold them oldest first, and count them.  Every entry is freed.
 */
#include <stdlib.h>
#include <string.h>

#include "base/rand.h"
#include "client/client.h"
#include "tap.h"
#include "testutil.h"

#define NIDS 600
#define MODEL_MAX 4096

typedef struct pool_id {
  uint8_t id[TERN_MAX_ID];
  size_t len;
} pool_id;

typedef struct model_entry {
  int id; /* index into the pool */
  uint64_t seq;
  tern_tstamp at;
} model_entry;

typedef struct model {
  model_entry e[MODEL_MAX]; /* oldest first */
  size_t len;
} model;

static pool_id pool[NIDS];

static void model_drop_front(model *m, size_t n) {
  memmove(m->e, m->e + n, (m->len - n) * sizeof(m->e[0]));
  m->len -= n;
}

static const model_entry *model_find(const model *m, int id) {
  for (size_t i = 0; i < m->len; ++i) {
    if (m->e[i].id == id) {
      return &m->e[i];
    }
  }
  return NULL;
}

static const char *verify(const idset *d, const model *m) {
  if (d->len != m->len) {
    return "length";
  }
  size_t i = 0;
  for (const idset_entry *e = d->oldest; e; e = e->newer, ++i) {
    const pool_id *p = &pool[m->e[i].id];
    if (i >= m->len || e->idlen != p->len ||
        memcmp(e->id, p->id, p->len) != 0 || e->seq != m->e[i].seq ||
        e->at != m->e[i].at) {
      return "FIFO order";
    }
    if (!e->newer && e != d->newest) {
      return "newest";
    }
  }
  if (i != m->len || (m->len == 0) != (d->newest == NULL)) {
    return "FIFO length";
  }
  for (int k = 0; k < NIDS; ++k) {
    const idset_entry *e = idset_find(d, pool[k].id, pool[k].len);
    const model_entry *me = model_find(m, k);
    if ((e == NULL) != (me == NULL) || (e && e->seq != me->seq)) {
      return "find";
    }
  }
  return NULL;
}

static void test_model(void) {
  rng r;
  rng_seed(&r, 11);
  for (int k = 0; k < NIDS; ++k) {
    /* "id<k>" padded to a random length up to TERN_MAX_ID: many ids share
       their length, so lookups compare bytes. */
    char s[16];
    int n = snprintf(s, sizeof(s), "id%d", k);
    pool[k].len = (size_t)n + (size_t)rng_below(&r, TERN_MAX_ID - 15);
    memset(pool[k].id, '-', pool[k].len);
    memcpy(pool[k].id, s, (size_t)n);
  }

  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  idset d;
  rng hr;
  rng_seed(&hr, 5);
  CHECK_INT(idset_init(&d, &mem, &hr), 0, "init");
  static model m;
  memset(&m, 0, sizeof(m));
  tern_tstamp now = 1000;
  const tern_duration window = 1500;
  uint32_t max = 200;
  uint64_t seq = 0;
  long adds = 0, dups = 0, evicted = 0, expired = 0, clears = 0;
  const char *bad = NULL;
  for (int step = 0; step < 60000 && !bad; ++step) {
    now += rng_below(&r, 20);
    uint64_t what = rng_below(&r, 1000);
    if (what < 3) {
      idset_clear(&d, &mem);
      m.len = 0;
      ++clears;
    } else if (what < 10) {
      /* The bound changes (settings differ between clients; a smaller
         one evicts several at the next add). */
      max = 1 + (uint32_t)rng_below(&r, 400);
    } else {
      /* What the client does for each MSG: forget old ids, look the id
         up, remember it if new. */
      if (now > window) {
        idset_expire(&d, &mem, now - window);
        size_t n = 0;
        while (n < m.len && m.e[n].at <= now - window) {
          ++n;
        }
        model_drop_front(&m, n);
        expired += (long)n;
      }
      int k = (int)rng_below(&r, NIDS);
      if (idset_find(&d, pool[k].id, pool[k].len)) {
        ++dups;
      } else {
        idset_entry *e = idset_entry_new(&mem, pool[k].id, pool[k].len);
        if (!e) {
          bad = "entry_new";
          break;
        }
        idset_add(&d, &mem, e, ++seq, now, max);
        m.e[m.len++] = (model_entry){k, seq, now};
        if (m.len > max) {
          evicted += (long)(m.len - max);
          model_drop_front(&m, m.len - max);
        }
        ++adds;
      }
    }
    if (!bad && (step % 11 == 0 || step > 59900)) {
      bad = verify(&d, &m);
    }
  }
  CHECK(bad == NULL, "%ld adds, %ld ids found again, %ld evicted by count, "
                     "%ld by age, %ld clears: the set agrees with the model "
                     "(%s)",
        adds, dups, evicted, expired, clears, bad ? bad : "ok");
  CHECK(adds > 10000 && dups > 1000 && evicted > 100 && expired > 1000 &&
            clears > 10,
        "the run reached every path");
  CHECK(a.outstanding == (long)d.len + 1,
        "one block per id and the bucket array, nothing else");

  /* A failing allocator: entry_new returns NULL and the set is unchanged. */
  a.fail_at = a.calls + 1;
  uint32_t len = d.len;
  CHECK(idset_entry_new(&mem, pool[0].id, pool[0].len) == NULL &&
            d.len == len,
        "entry_new with a failing allocator: NULL, nothing changed");
  a.fail_at = 0;
  idset_free(&d, &mem);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "idset_free releases every entry and the buckets");
  idset_free(&d, &mem); /* twice: the bucket array is gone, nothing to do */
  CHECK(a.outstanding == 0, "idset_free after idset_free does nothing");
}

int main(void) {
  test_model();
  return tap_done();
}
