/*
 * lib/base/hashmap: the intrusive chained map and the keyed hash.
 *
 * The map runs random inserts and removes against a model (which keys are
 * in); after every step each key is found exactly when the model has it,
 * and the length agrees.  Growth doubles the buckets and keeps every node;
 * a failing allocator only makes chains longer.  The hash reads exactly
 * its bytes, depends on every bit of them, on the key and on the salt, and
 * spreads keys over the buckets.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "base/mem.h"
#include "base/rand.h"
#include "tap.h"
#include "testutil.h"

#define NKEYS 2000

typedef struct item {
  hnode link;
  int in;     /* the model: inserted and not removed */
  size_t len;
  uint8_t key[24];
} item;

static const uint64_t hkey[2] = {UINT64_C(0x0123456789abcdef),
                                 UINT64_C(0xfedcba9876543210)};

static uint64_t item_hash(const uint8_t *key, size_t len) {
  return hash_bytes(hkey, 0, key, len);
}

/* Looks |key| up the way the library does: walk one bucket, compare the
   stored hash first. */
static item *find(const hmap *m, const uint8_t *key, size_t len) {
  uint64_t h = item_hash(key, len);
  for (hnode *n = hmap_bucket(m, h); n; n = n->next) {
    item *it = (item *)n;
    if (n->hash == h && it->len == len && memcmp(it->key, key, len) == 0) {
      return it;
    }
  }
  return NULL;
}

/* Counts every node in every bucket and checks each is in its own. */
static size_t walk(const hmap *m, int *misplaced) {
  size_t n = 0;
  for (size_t b = 0; b <= m->mask; ++b) {
    for (hnode *x = m->buckets[b]; x; x = x->next) {
      *misplaced |= (x->hash & m->mask) != b;
      ++n;
    }
  }
  return n;
}

static void test_model(void) {
  static item items[NKEYS];
  rng r;
  rng_seed(&r, 7);
  for (int i = 0; i < NKEYS; ++i) {
    /* Lengths 0..24, many short ones, some sharing prefixes. */
    items[i].len = (size_t)rng_below(&r, 25);
    for (size_t j = 0; j < items[i].len; ++j) {
      items[i].key[j] = (uint8_t)(j < 4 ? 'a' + rng_below(&r, 3)
                                        : rng_below(&r, 256));
    }
  }
  /* Drop duplicate keys, so that each key is one item. */
  for (int i = 0; i < NKEYS; ++i) {
    for (int j = 0; j < i; ++j) {
      if (items[j].len == items[i].len &&
          memcmp(items[j].key, items[i].key, items[i].len) == 0) {
        items[i].len = 24;
        memcpy(items[i].key, &i, sizeof(i));
        memset(items[i].key + sizeof(i), 'u', 24 - sizeof(i));
        break;
      }
    }
  }

  hmap m;
  CHECK_INT(hmap_init(&m, mem_default(), 4), 0, "init with 4 buckets");
  const char *bad = NULL;
  size_t len = 0, max_buckets = 0;
  long ops = 0;
  for (int step = 0; step < 40000 && !bad; ++step, ++ops) {
    /* Phases: mostly inserts, then mostly removes, and so on. */
    int insert_bias = (step / 5000) % 2 == 0 ? 3 : 1;
    item *it = &items[rng_below(&r, NKEYS)];
    int do_insert = rng_below(&r, 4) < (uint64_t)insert_bias;
    if (do_insert && !it->in) {
      it->link.hash = item_hash(it->key, it->len);
      hmap_insert(&m, mem_default(), &it->link);
      it->in = 1;
      ++len;
    } else if (!do_insert && it->in) {
      hmap_remove(&m, &it->link);
      it->in = 0;
      --len;
    } else if (!do_insert) {
      /* Removing a node that is not in the map changes nothing. */
      it->link.hash = item_hash(it->key, it->len);
      it->link.next = NULL;
      hmap_remove(&m, &it->link);
    }
    if (m.len != len) {
      bad = "length";
    }
    if (m.mask + 1 > max_buckets) {
      max_buckets = m.mask + 1;
    }
    /* A full look-up sweep now and then (every step would be slow). */
    if (step % 97 == 0 || step > 39900) {
      for (int i = 0; i < NKEYS && !bad; ++i) {
        item *f = find(&m, items[i].key, items[i].len);
        if (items[i].in ? f != &items[i] : f != NULL) {
          bad = "find";
        }
      }
      int misplaced = 0;
      if (!bad && (walk(&m, &misplaced) != len || misplaced)) {
        bad = "buckets";
      }
    }
  }
  CHECK(bad == NULL, "%ld random inserts and removes: every key found "
                     "exactly when the model has it (%s)",
        ops, bad ? bad : "ok");
  CHECK(max_buckets >= 1024 && (max_buckets & (max_buckets - 1)) == 0,
        "the buckets grew by doubling (to %zu)", max_buckets);
  hmap_free(&m, mem_default());
  CHECK(m.buckets == NULL && m.len == 0, "hmap_free resets");
}

static void test_growth_failure(void) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  hmap m;
  a.fail_at = 1;
  CHECK_INT(hmap_init(&m, &mem, 8), TERN_ERR_NOMEM,
            "init with a failing allocator: NOMEM");
  a.fail_at = 0;
  CHECK_INT(hmap_init(&m, &mem, 8), 0, "init");
  static item items[200];
  memset(items, 0, sizeof(items));
  a.fail_at = a.calls + 1;
  a.fail_rest = 1;
  for (int i = 0; i < 100; ++i) {
    items[i].len = (size_t)snprintf((char *)items[i].key, 24, "k%d", i);
    items[i].link.hash = item_hash(items[i].key, items[i].len);
    hmap_insert(&m, &mem, &items[i].link);
  }
  int found = 1;
  for (int i = 0; i < 100; ++i) {
    found &= find(&m, items[i].key, items[i].len) == &items[i];
  }
  CHECK(a.failed > 0 && m.mask == 7 && m.len == 100 && found,
        "growth fails: 100 keys in 8 buckets, every one found");
  a.fail_rest = 0;
  a.fail_at = 0;
  for (int i = 100; i < 200; ++i) {
    items[i].len = (size_t)snprintf((char *)items[i].key, 24, "k%d", i);
    items[i].link.hash = item_hash(items[i].key, items[i].len);
    hmap_insert(&m, &mem, &items[i].link);
  }
  found = 1;
  int misplaced = 0;
  for (int i = 0; i < 200; ++i) {
    found &= find(&m, items[i].key, items[i].len) == &items[i];
  }
  CHECK(m.mask > 7 && m.len == 200 && found && walk(&m, &misplaced) == 200 &&
            !misplaced,
        "later inserts grow it again (%zu buckets), every key found",
        m.mask + 1);
  hmap_free(&m, &mem);
  CHECK(a.outstanding == 0 && tu_alloc_finish(&a) == 0,
        "hmap_free releases everything");
}

/* hash_bytes of a copy of |p| in a buffer of exactly |len| bytes, so that
   ASan catches a read past it. */
static uint64_t hash_exact(const uint64_t key[2], uint64_t salt,
                           const uint8_t *p, size_t len) {
  uint8_t *copy = tu_xmalloc(len);
  if (len) {
    memcpy(copy, p, len);
  }
  uint64_t h = hash_bytes(key, salt, copy, len);
  free(copy);
  return h;
}

static void test_hash(void) {
  uint8_t buf[80];
  rng r;
  rng_seed(&r, 3);
  for (size_t i = 0; i < sizeof(buf); ++i) {
    buf[i] = (uint8_t)rng_next(&r);
  }
  /* Every bit of the input matters, at every length, and nothing past
     the length does. */
  int bits = 1, lens = 1, tail = 1;
  uint64_t prev = 0;
  for (size_t len = 0; len <= 64; ++len) {
    uint64_t h = hash_exact(hkey, 0, buf, len);
    lens &= len == 0 || h != prev; /* a longer prefix is another key */
    prev = h;
    for (size_t i = 0; i < len; ++i) {
      for (int b = 0; b < 8; ++b) {
        buf[i] ^= (uint8_t)(1u << b);
        bits &= hash_exact(hkey, 0, buf, len) != h;
        buf[i] ^= (uint8_t)(1u << b);
      }
    }
    uint8_t save = buf[len];
    buf[len] ^= 0xff;
    tail &= hash_bytes(hkey, 0, buf, len) == h;
    buf[len] = save;
  }
  CHECK(bits, "flipping any bit of a 0..64-byte input changes the hash");
  CHECK(lens, "each prefix length hashes differently");
  CHECK(tail, "bytes past the length are not read");
  uint64_t h = hash_bytes(hkey, 0, buf, 20);
  uint64_t other[2] = {hkey[0] ^ 1, hkey[1]};
  uint64_t other2[2] = {hkey[0], hkey[1] ^ 1};
  CHECK(hash_bytes(other, 0, buf, 20) != h &&
            hash_bytes(other2, 0, buf, 20) != h,
        "the hash depends on both key words");
  CHECK(hash_bytes(hkey, 1, buf, 20) != h, "and on the salt");
  CHECK(hash_bytes(hkey, 0, buf, 20) == h, "and on nothing else");

  /* 65536 keys that differ in one counter over 4096 buckets: the longest
     chain stays short (a weak hash lines such keys up). */
  enum { NB = 4096, NK = 65536 };
  static uint32_t count[NB];
  memset(count, 0, sizeof(count));
  uint32_t longest = 0;
  for (uint32_t i = 0; i < NK; ++i) {
    char key[32];
    int n = snprintf(key, sizeof(key), "session-%08u", i);
    uint32_t c = ++count[hash_bytes(hkey, 0, key, (size_t)n) & (NB - 1)];
    longest = c > longest ? c : longest;
  }
  CHECK(longest <= 40, "65536 similar keys in 4096 buckets: longest chain "
                       "%u (16 on average)",
        longest);
}

int main(void) {
  test_model();
  test_growth_failure();
  test_hash();
  return tap_done();
}
