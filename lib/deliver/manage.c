/*
 * Session management for the host: its user data, deleting a session,
 * purging its messages, canceling one by id, and walking every session.
 *
 * Removals by the host are not losses: the receiver is not told (no
 * DROPPED), and traced messages end with TERN_EV_CANCELED.  Each removal
 * first makes room in the store's batch for its DELs, so that a canceled
 * message or a deleted session cannot come back after a restart; that
 * reservation is the only thing that can fail, before anything changed.
 */
#include <string.h>

#include "deliver/hub.h"

void tern_session_set_user_data(tern_session *ts, void *user_data) {
  if (ts) {
    ((session *)ts)->user_data = user_data;
  }
}

void *tern_session_get_user_data(const tern_session *ts) {
  return ts ? ((const session *)ts)->user_data : NULL;
}

static int check_key(const tern_hub *hub, const uint8_t *key, size_t keylen) {
  return !hub || !key || keylen == 0 || keylen > TERN_MAX_SESSION_KEY
             ? TERN_ERR_INVALID
             : 0;
}

static session *lookup(tern_hub *hub, const uint8_t *key, size_t keylen) {
  return session_find(hub, key, keylen, session_hash(hub, key, keylen));
}

/* ---- removing messages ------------------------------------------------ */

/* Which of a session's messages a removal takes. */
typedef struct pick {
  int unsent_only;        /* only messages never sent (seq 0)             */
  const uint8_t *id;      /* only messages with this id, when not NULL    */
  size_t idlen;
} pick;

static int picked(const pick *p, const msg *m) {
  if (p->unsent_only && m->seq != 0) {
    return 0;
  }
  return !p->id ||
         (m->idlen == p->idlen && memcmp(msg_id(m), p->id, p->idlen) == 0);
}

static void count_list(const msg *head, const pick *p, size_t *n,
                       size_t *nstored) {
  const msg *m = head;
  if (!m) {
    return;
  }
  do {
    if (picked(p, m)) {
      ++*n;
      *nstored += (m->flags & MSG_STORED) != 0;
    }
    m = m->next;
  } while (m != head);
}

/* Counts the messages |p| takes, and those of them with a store record. */
static size_t count_picked(const session *s, const pick *p,
                           size_t *nstored) {
  size_t n = 0;
  *nstored = 0;
  for (int q = 0; q < 3; ++q) {
    count_list(s->queue[q], p, &n, nstored);
  }
  for (const conn *c = session_conns(s); c; c = c->session_next) {
    count_list(c->inflight, p, &n, nstored);
  }
  return n;
}

/* Removes what |p| takes from the list at |head|; the list may empty or
   change its head on the way (session_discard unlinks). */
static void remove_list(tern_hub *hub, msg **head, const pick *p, size_t *n,
                        int *sent) {
  msg *m = *head;
  while (m) {
    msg *after = m->next;
    int last = after == *head;
    if (picked(p, m)) {
      *sent |= m->seq != 0;
      ++*n;
      ++hub->stats.canceled;
      session_discard(hub, m, 0, TERN_EV_CANCELED);
      if (!*head) {
        return;
      }
    }
    m = last ? NULL : after;
  }
}

static size_t remove_picked(tern_hub *hub, session *s, const pick *p,
                            int *sent) {
  size_t n = 0;
  int inflight = 0;
  *sent = 0;
  for (int q = 0; q < 3; ++q) {
    remove_list(hub, &s->queue[q], p, &n, sent);
  }
  for (conn *c = session_conns(s); c; c = c->session_next) {
    uint32_t before = c->ninflight;
    remove_list(hub, &c->inflight, p, &n, sent);
    inflight |= c->ninflight != before;
  }
  if (inflight) {
    /* Their window has room again. */
    session_notify(hub, s);
  }
  return n;
}

/* Room for the DELs of |nstored| messages and |extra| records of
   |extra_bytes| more. */
static int reserve_dels(tern_hub *hub, size_t nstored, size_t extra,
                        size_t extra_bytes) {
  return persist_reserve_dels(hub, nstored + extra,
                              nstored * PERSIST_MSG_DEL_BYTES + extra_bytes);
}

tern_ssize tern_hub_purge_session(tern_hub *hub, const uint8_t *key,
                                  size_t keylen, uint32_t flags,
                                  tern_tstamp now) {
  (void)now;
  if (check_key(hub, key, keylen) != 0 || (flags & ~TERN_PURGE_UNSENT)) {
    return TERN_ERR_INVALID;
  }
  session *s = lookup(hub, key, keylen);
  if (!s) {
    return TERN_ERR_NOT_FOUND;
  }
  pick p = {(flags & TERN_PURGE_UNSENT) != 0, NULL, 0};
  size_t nstored;
  if (count_picked(s, &p, &nstored) == 0) {
    return 0;
  }
  if (reserve_dels(hub, nstored, 0, 0) != 0) {
    return TERN_ERR_NOMEM;
  }
  int sent;
  return (tern_ssize)remove_picked(hub, s, &p, &sent);
}

int tern_hub_cancel(tern_hub *hub, const uint8_t *key, size_t keylen,
                    const uint8_t *id, size_t idlen, tern_tstamp now) {
  (void)now;
  if (check_key(hub, key, keylen) != 0 || !id || idlen == 0 ||
      idlen > TERN_MAX_ID) {
    return TERN_ERR_INVALID;
  }
  session *s = lookup(hub, key, keylen);
  if (!s) {
    return TERN_ERR_NOT_FOUND;
  }
  pick p = {0, id, idlen};
  size_t nstored;
  if (count_picked(s, &p, &nstored) == 0) {
    return TERN_ERR_NOT_FOUND;
  }
  if (reserve_dels(hub, nstored, 0, 0) != 0) {
    return TERN_ERR_NOMEM;
  }
  int sent;
  remove_picked(hub, s, &p, &sent);
  return sent ? 1 : 0;
}

/* ---- deleting a session ----------------------------------------------- */

/*
 * One end for a session, shared with expiry: session_destroy (seq floor,
 * store records, timer, map).  What expiry never meets is done first here:
 * connections are closed (their in-flight messages return to the queues,
 * their end events were reserved when they were created), then every
 * message is canceled with its trace event.
 */
int tern_hub_delete_session(tern_hub *hub, const uint8_t *key, size_t keylen,
                            tern_tstamp now) {
  int rv = check_key(hub, key, keylen);
  if (rv != 0) {
    return rv;
  }
  session *s = lookup(hub, key, keylen);
  if (!s) {
    return TERN_ERR_NOT_FOUND;
  }
  pick all = {0, NULL, 0};
  size_t nstored;
  count_picked(s, &all, &nstored);
  /* the messages', the session's DEL and the epoch record (seq floor) */
  if (reserve_dels(hub, nstored, 2,
                   1u + s->keylen + PERSIST_EPOCH_BYTES) != 0) {
    return TERN_ERR_NOMEM;
  }
  while (s->nconns) {
    conn_close(session_conns(s), TERN_GOAWAY_REPLACED, 0, 0, 0, now);
  }
  int sent;
  remove_picked(hub, s, &all, &sent);
  ++hub->stats.sessions_deleted;
  session_destroy(hub, s);
  return 0;
}

/* ---- walking the sessions --------------------------------------------- */

/*
 * The order is that of the bit-reversed hash, then the uid (unique among
 * live sessions): a session's place in it never changes, whatever the
 * table's size.  A bucket of a table with 2^k buckets holds the sessions
 * whose reversed hash has the bucket's index, reversed, as its top k bits,
 * so buckets taken in reversed-index order list the sessions in that order
 * (the order of SCAN in Redis, here with an exact position).  The iterator
 * keeps the last position returned, so growth, insertions and removals
 * between steps neither repeat nor skip a session that stays.
 *
 * it->opaque[0]: the reversed hash of the last session returned, or a
 * lower bound; it->opaque[1]: its uid + 1, or 0 when opaque[0] is an
 * inclusive bound (at the start), or ITER_END.
 */
#define ITER_END UINT64_MAX

static uint64_t bit_reverse(uint64_t x) {
  x = (x >> 1 & UINT64_C(0x5555555555555555)) |
      (x & UINT64_C(0x5555555555555555)) << 1;
  x = (x >> 2 & UINT64_C(0x3333333333333333)) |
      (x & UINT64_C(0x3333333333333333)) << 2;
  x = (x >> 4 & UINT64_C(0x0f0f0f0f0f0f0f0f)) |
      (x & UINT64_C(0x0f0f0f0f0f0f0f0f)) << 4;
  x = (x >> 8 & UINT64_C(0x00ff00ff00ff00ff)) |
      (x & UINT64_C(0x00ff00ff00ff00ff)) << 8;
  x = (x >> 16 & UINT64_C(0x0000ffff0000ffff)) |
      (x & UINT64_C(0x0000ffff0000ffff)) << 16;
  return x >> 32 | x << 32;
}

/* The bucket holding the sessions whose reversed hash starts with the
   |bits| bits of |top|. */
static size_t bucket_of(const hmap *map, uint64_t top, int bits) {
  return (size_t)(bit_reverse(top << (64 - bits)) & map->mask);
}

/*
 * A walk is a chain of dependent cache misses (a bucket slot, then its
 * sessions, then the next slot, whose index comes from the last position)
 * that the host's loop cannot overlap.  Fetch ahead instead: the chain of
 * the next bucket (whose slot the previous step fetched) and the slot of
 * the one after.
 */
static void fetch_ahead(const hmap *map, uint64_t top, int bits) {
  if (top + 1 <= map->mask) {
    const hnode *next = map->buckets[bucket_of(map, top + 1, bits)];
    if (next) {
      __builtin_prefetch(next);
    }
  }
  if (top + 2 <= map->mask) {
    __builtin_prefetch(&map->buckets[bucket_of(map, top + 2, bits)]);
  }
}

tern_session *tern_hub_next_session(tern_hub *hub, tern_session_iter *it) {
  if (!hub || !it || it->opaque[1] == ITER_END || !hub->sessions.buckets) {
    return NULL;
  }
  const hmap *map = &hub->sessions;
  int bits = 0;
  while (bits < 64 && (map->mask >> bits) != 0) {
    ++bits;
  }
  uint64_t pos = it->opaque[0], after = it->opaque[1];
  for (;;) {
    session *best = NULL;
    uint64_t best_pos = 0;
    for (hnode *n = map->buckets[bit_reverse(pos) & map->mask]; n;
         n = n->next) {
      session *s = (session *)n;
      uint64_t p = bit_reverse(n->hash);
      if (p < pos || (p == pos && (uint64_t)s->uid + 1 <= after)) {
        continue; /* at or before the last one returned */
      }
      if (!best || p < best_pos || (p == best_pos && s->uid < best->uid)) {
        best = s;
        best_pos = p;
      }
    }
    uint64_t top = bits ? pos >> (64 - bits) : 0;
    if (best) {
      it->opaque[0] = best_pos;
      it->opaque[1] = (uint64_t)best->uid + 1;
      if (bits) {
        fetch_ahead(map, top, bits);
      }
      return (tern_session *)best;
    }
    /* The next bucket: the top |bits| bits of pos, plus one. */
    if (top == map->mask) {
      it->opaque[1] = ITER_END;
      return NULL;
    }
    pos = (top + 1) << (64 - bits);
    after = 0;
  }
}
