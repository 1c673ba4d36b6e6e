/*
 * The client's resume state as a blob the app keeps across its own
 * restarts: the epoch, the highest seq the app processed, and the ids of
 * the messages it processed that the dedup set still remembers.  A
 * restarted receiver restores it before its first connection, so that its
 * HELLO resumes the old stream and what the server sends again is caught
 * by dedup.
 *
 * Format 1, all integers big-endian (tern_client_new(3) documents it; it
 * never changes, a new format gets a new version byte):
 *
 *   magic "TRNC" | version 1 | flags 0 | keylen:u8 | key | epoch:u64 |
 *   last_seq:u64 | nids:u32 | nids x (idlen:u8 | id | age_ms:u32) |
 *   crc32c:u32 of every byte before it
 *
 * Ids come oldest first, so ages never increase.  Restoring validates the
 * whole blob and allocates every entry before it changes anything.
 */
#include <string.h>

#include "base/crc32c.h"
#include "base/mem.h"
#include "client/client.h"

#define STATE_VERSION 1
#define STATE_HEAD 7   /* magic, version, flags, keylen */
#define STATE_FIXED 20 /* epoch, last_seq, nids, after the key */
#define STATE_CRC 4

static const uint8_t magic[4] = {'T', 'R', 'N', 'C'};

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)(v >> 32));
  put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* The seq a restarted receiver resumes from: everything the app processed,
   and the duplicates of it that were ackable. */
static uint64_t processed_seq(const tern_client *c) {
  return c->processed > c->ready_max ? c->processed : c->ready_max;
}

/* Whether the id of |e| goes into the state: the app processed its
   message (a message taken but not yet processed must come again after a
   crash), and the dedup window still holds it. */
static int id_saved(const tern_client *c, const idset_entry *e,
                    uint64_t last_seq) {
  if (e->seq > last_seq) {
    return 0;
  }
  return !c->set.dedup_window || c->now < c->set.dedup_window ||
         e->at > c->now - c->set.dedup_window;
}

tern_ssize tern_client_save_state(const tern_client *c, uint8_t *buf,
                                  size_t cap) {
  if (!c || (!buf && cap)) {
    return TERN_ERR_INVALID;
  }
  uint64_t epoch = c->epoch;
  uint64_t last_seq = epoch ? processed_seq(c) : 0;
  size_t size = STATE_HEAD + c->keylen + STATE_FIXED + STATE_CRC;
  uint32_t nids = 0;
  for (const idset_entry *e = c->dd.oldest; epoch && e; e = e->newer) {
    if (id_saved(c, e, last_seq)) {
      size += 1 + (size_t)e->idlen + 4;
      ++nids;
    }
  }
  if (size > cap) {
    return (tern_ssize)size;
  }
  uint8_t *p = buf;
  memcpy(p, magic, 4);
  p[4] = STATE_VERSION;
  p[5] = 0;
  p[6] = (uint8_t)c->keylen;
  memcpy(p + STATE_HEAD, c->key, c->keylen);
  p += STATE_HEAD + c->keylen;
  put64(p, epoch);
  put64(p + 8, last_seq);
  put32(p + 16, nids);
  p += STATE_FIXED;
  for (const idset_entry *e = c->dd.oldest; nids && e; e = e->newer) {
    if (!id_saved(c, e, last_seq)) {
      continue;
    }
    *p++ = e->idlen;
    memcpy(p, e->id, e->idlen);
    p += e->idlen;
    uint64_t age = c->now > e->at ? (c->now - e->at) / TERN_MILLISECONDS : 0;
    put32(p, age > UINT32_MAX ? UINT32_MAX : (uint32_t)age);
    p += 4;
  }
  put32(p, crc32c(0, buf, (size_t)(p - buf)));
  return (tern_ssize)size;
}

/* The fields of a blob that passed check_state. */
typedef struct saved {
  uint64_t epoch, last_seq;
  uint32_t nids;
  const uint8_t *ids; /* the first id record */
} saved;

/* Checks everything that can be checked without allocating: framing,
   checksum, version, the key, and each id record.  0, TERN_ERR_PROTO or
   TERN_ERR_INVALID (another session's state). */
static int check_state(const tern_client *c, const uint8_t *p, size_t len,
                       saved *out) {
  if (len < STATE_HEAD + STATE_FIXED + STATE_CRC ||
      memcmp(p, magic, 4) != 0 || p[4] != STATE_VERSION || p[5] != 0 ||
      p[6] == 0 || p[6] > TERN_MAX_SESSION_KEY ||
      len - (STATE_HEAD + STATE_FIXED + STATE_CRC) < p[6]) {
    return TERN_ERR_PROTO;
  }
  if (get32(p + len - STATE_CRC) != crc32c(0, p, len - STATE_CRC)) {
    return TERN_ERR_PROTO;
  }
  size_t keylen = p[6];
  const uint8_t *q = p + STATE_HEAD + keylen;
  const uint8_t *end = p + len - STATE_CRC;
  out->epoch = get64(q);
  out->last_seq = get64(q + 8);
  out->nids = get32(q + 16);
  out->ids = q + STATE_FIXED;
  /* No stream without an epoch, and no ids without a stream. */
  if (out->epoch == 0 && (out->last_seq || out->nids)) {
    return TERN_ERR_PROTO;
  }
  q = out->ids;
  uint32_t prev_age = UINT32_MAX;
  for (uint32_t i = 0; i < out->nids; ++i) {
    if (end - q < 1 || q[0] == 0 || q[0] > TERN_MAX_ID ||
        (size_t)(end - q) < 1 + (size_t)q[0] + 4) {
      return TERN_ERR_PROTO;
    }
    uint32_t age = get32(q + 1 + q[0]);
    if (age > prev_age) {
      return TERN_ERR_PROTO; /* not oldest first */
    }
    prev_age = age;
    q += 1 + q[0] + 4;
  }
  if (q != end) {
    return TERN_ERR_PROTO;
  }
  /* A well-formed state of another session: the caller's mistake. */
  if (keylen != c->keylen || memcmp(p + STATE_HEAD, c->key, keylen) != 0) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

static void free_entries(const tern_mem *mem, idset_entry *list) {
  while (list) {
    idset_entry *next = list->newer;
    mem_free(mem, list);
    list = next;
  }
}

int tern_client_restore_state(tern_client *c, const uint8_t *state,
                              size_t len, tern_tstamp now) {
  if (!c || (!state && len)) {
    return TERN_ERR_INVALID;
  }
  if (!state) {
    return TERN_ERR_PROTO;
  }
  saved sv;
  int rv = check_state(c, state, len, &sv);
  if (rv != 0) {
    return rv;
  }
  if (c->connects != 0 || c->state == CL_CLOSING || c->state == CL_CLOSED) {
    return TERN_ERR_STATE; /* only before the first HELLO */
  }
  /* The ids to remember: those still within dedup_window, at most the
     newest dedup_max.  Ages count from |now|: the time the app was down is
     not known, so ids are kept that much longer, never shorter. */
  uint32_t skip = 0, keep = 0;
  const uint8_t *q = sv.ids;
  for (uint32_t i = 0; i < sv.nids; ++i) {
    tern_duration age = (tern_duration)get32(q + 1 + q[0]) * TERN_MILLISECONDS;
    if (c->set.dedup_window && age >= c->set.dedup_window) {
      ++skip;
    } else {
      ++keep;
    }
    q += 1 + q[0] + 4;
  }
  if (keep > c->set.dedup_max) {
    skip += keep - c->set.dedup_max;
    keep = c->set.dedup_max;
  }
  /* Allocate the new set in full before anything changes. */
  idset fresh;
  memset(&fresh, 0, sizeof(fresh));
  memcpy(fresh.key, c->dd.key, sizeof(fresh.key));
  if (hmap_init(&fresh.map, &c->mem, 16) != 0) {
    return TERN_ERR_NOMEM;
  }
  idset_entry *list = NULL, *tail = NULL;
  q = sv.ids;
  for (uint32_t i = 0; i < sv.nids; ++i) {
    const uint8_t *rec = q;
    q += 1 + rec[0] + 4;
    if (i < skip) {
      continue;
    }
    idset_entry *e = idset_entry_new(&c->mem, rec + 1, rec[0]);
    if (!e) {
      free_entries(&c->mem, list);
      hmap_free(&fresh.map, &c->mem);
      return TERN_ERR_NOMEM;
    }
    tern_duration age =
        (tern_duration)get32(rec + 1 + rec[0]) * TERN_MILLISECONDS;
    e->at = now > age ? now - age : 0;
    e->newer = NULL;
    if (tail) {
      tail->newer = e;
    } else {
      list = e;
    }
    tail = e;
  }
  /* Entries with the same id would break the set's invariant: such a
     blob was not written by tern_client_save_state. */
  for (idset_entry *e = list; e;) {
    idset_entry *next = e->newer;
    if (idset_find(&fresh, e->id, e->idlen)) {
      /* |fresh| holds the entries before |e|; free them with the rest. */
      idset_entry *held = fresh.oldest;
      fresh.oldest = fresh.newest = NULL;
      hmap_free(&fresh.map, &c->mem);
      free_entries(&c->mem, held);
      free_entries(&c->mem, e);
      return TERN_ERR_PROTO;
    }
    /* The app processed these: a copy that comes again is ackable at
       once. */
    idset_add(&fresh, &c->mem, e, sv.last_seq, e->at, UINT32_MAX);
    e = next;
  }
  idset_free(&c->dd, &c->mem);
  c->dd = fresh;
  c->epoch = sv.epoch;
  c->have_session = sv.epoch != 0;
  c->rx_max = c->ready_max = c->delivered_max = c->processed = sv.last_seq;
  if (now > c->now) {
    c->now = now;
  }
  return 0;
}
