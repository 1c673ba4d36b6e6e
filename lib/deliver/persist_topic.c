/*
 * The store records of topics, their messages, members' cursors, pattern
 * subscriptions and shared payloads: writing them (the hooks topic.c,
 * fanout.c and session.c call) and loading them (tload, for persist.c).
 *
 * Records (keys are a type byte and an identity; numbers big-endian; every
 * value starts with a version byte, 1, so that the formats can evolve):
 *   "T" sid (8)              topic: version, max_messages (4), max_bytes
 *                            (8), max_age (8), rate (4), burst (4), the
 *                            offset the next message gets (8), name length
 *                            (1), name
 *   "U" sid (8) offset (8)   topic message: version, flags (1, 0), expiry
 *                            (8) and publish time (8) on the wall clock,
 *                            serial (8), format (1, 0), the MSG tail
 *   "C" sid (8) session key  member: version, acked cursor (8), losses not
 *                            known to have reached the receiver (4),
 *                            filter length (2), canonical filter text
 *   "W" session key          the session's wildcard pattern subscriptions:
 *                            version, count (2), then per subscription the
 *                            pattern length (1), pattern, filter length
 *                            (2), canonical filter text
 *   "P" serial (8)           shared payload of tern_hub_publish_many:
 *                            version, the MSG tail; the messages' "M"
 *                            records refer to it (format 1, persist.c)
 * A topic's sid is a hub serial drawn when its first record is written, so
 * the records of a topic deleted and created again under its name never
 * mix.  A "P" record is written before the first message that refers to
 * it and deleted when the payload is freed, after the last of them.
 *
 * Cursors: a member's record is written when it joins and whenever its
 * acked cursor or its untold losses change; the records of one batch are
 * coalesced (a small table from member to its record in the batch, so the
 * 64-byte member carries nothing for it): a burst of acks costs one record
 * per member per batch.  The cursor is the lowest offset not acked, so a
 * restart sends again what was sent and not acked, never skips what was
 * not.  The retention losses of a session that were told in a DROPPED
 * frame but not yet confirmed are counted in the record of its first
 * member, so a restart tells them again.
 *
 * Loading: the store hands records in any order; tload keeps them and
 * builds, once every session is in, payloads, topics, topic logs, the
 * messages of shared payloads, members and pattern subscriptions, in this
 * order.  Records of a topic or session that is gone (a crash between
 * their deletions) are deleted; a message whose payload record is missing
 * fails the load (TERN_ERR_STORE), as does a record that cannot be read.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "deliver/persist.h"
#include "deliver/topic.h"
#include "filter/filter.h"

#define RECORD_VERSION 1
#define TOPIC_FIXED 46       /* the "T" value less the name             */
#define TMSG_FIXED 27        /* the "U" value less the tail             */
#define CURSOR_FIXED 15      /* the "C" value less the filter           */

/* ---- cursor records of the batch being built --------------------------- */

#define CTAB_SIZE 4096 /* > the records of a batch (BATCH_RECORDS 1024) */

typedef struct centry {
  const member *mb;
  uint64_t batch;        /* valid while this is the batch being built     */
  uint32_t rec;          /* the record's number in it                     */
} centry;

typedef struct ptopic {
  centry tab[CTAB_SIZE];
} ptopic;

void ptopic_free(tern_hub *hub) {
  ptopic **pp = persist_ptopic(hub);
  mem_free(&hub->mem, *pp);
  *pp = NULL;
}

static size_t ctab_slot(const member *mb) {
  uintptr_t v = (uintptr_t)mb / sizeof(member);
  return (size_t)((v * 0x9e3779b97f4a7c15ull) >> 40) & (CTAB_SIZE - 1);
}

/* ---- writing ------------------------------------------------------------ */

static int writing(const tern_hub *hub) {
  return hub->persist && !hub->loading;
}

/* Reserves room for one record, flushing the batch when memory is short
   (as add_del does): 0 or TERN_ERR_NOMEM. */
static int room(tern_hub *hub, size_t bytes) {
  if (prec_reserve(hub, 1, bytes) == 0) {
    return 0;
  }
  tern_hub_flush(hub);
  return prec_reserve(hub, 1, bytes);
}

static void put_topic(tern_hub *hub, const topic *t) {
  uint8_t id[8];
  put_be64(id, t->sid);
  size_t len = TOPIC_FIXED + t->namelen;
  if (room(hub, 9 + len) != 0) {
    return; /* the topic is not stored: a restart loses it */
  }
  uint8_t *v = prec_set(hub, 'T', id, 8, len, NULL);
  v[0] = RECORD_VERSION;
  put_be32(v + 1, t->opt.max_messages);
  put_be64(v + 5, t->opt.max_bytes);
  put_be64(v + 13, t->opt.max_age);
  put_be32(v + 21, t->opt.rate);
  put_be32(v + 25, t->opt.burst);
  put_be64(v + 29, t->end);
  v[37] = (uint8_t)t->namelen;
  memset(v + 38, 0, 8); /* reserved */
  memcpy(v + TOPIC_FIXED, t->name, t->namelen);
}

void persist_topic(tern_hub *hub, const topic *t) {
  if (!writing(hub)) {
    return;
  }
  /* The sid is ours to set; the topic is not const to its owner. */
  ((topic *)(uintptr_t)t)->sid = ++hub->next_serial;
  put_topic(hub, t);
  persist_sync(hub); /* a topic the host created must not vanish */
  prec_maybe_flush(hub);
}

static void del_msg(tern_hub *hub, const topic *t, uint64_t offset) {
  uint8_t id[16];
  put_be64(id, t->sid);
  put_be64(id + 8, offset);
  prec_del(hub, 'U', id, 16);
}

static void del_cursor(tern_hub *hub, const topic *t, const session *s) {
  uint8_t id[8 + TERN_MAX_SESSION_KEY];
  put_be64(id, t->sid);
  memcpy(id + 8, s->key, s->keylen);
  prec_del(hub, 'C', id, 8u + s->keylen);
}


void persist_topic_gone(tern_hub *hub, const topic *t) {
  if (!writing(hub) || !t->sid) {
    return;
  }
  /* The members leave without a hook of their own (topic_free): their
     untold losses go to their sessions' "S" records (persist_drops). */
  for (int online = 0; online < 2; ++online) {
    for (const member *mb = online ? t->online : t->offline; mb;
         mb = mb->t_next) {
      del_cursor(hub, t, mb->session);
    }
  }
  for (uint64_t o = t->first; o < t->end; ++o) {
    del_msg(hub, t, o);
  }
  uint8_t id[8];
  put_be64(id, t->sid);
  prec_del(hub, 'T', id, 8);
}

void persist_topic_msg(tern_hub *hub, const topic *t, uint64_t offset) {
  if (!writing(hub) || !t->sid) {
    return;
  }
  const tmsg *tm = log_at(t, offset);
  size_t len = TMSG_FIXED + tm->pl->taillen;
  if (room(hub, 17 + len) != 0) {
    return; /* not stored: a restart loses it (as a volatile one) */
  }
  uint8_t id[16];
  put_be64(id, t->sid);
  put_be64(id + 8, offset);
  uint8_t *v = prec_set(hub, 'U', id, 16, len, NULL);
  v[0] = RECORD_VERSION;
  v[1] = 0;
  put_be64(v + 2, persist_to_wall(hub, tm->expiry));
  put_be64(v + 10, persist_to_wall(hub, tm->published));
  put_be64(v + 18, tm->serial);
  v[26] = 0; /* format: the tail follows */
  memcpy(v + TMSG_FIXED, tm->pl->tail, tm->pl->taillen);
  prec_maybe_flush(hub);
}

void persist_topic_msg_gone(tern_hub *hub, const topic *t, uint64_t offset) {
  if (!writing(hub) || !t->sid) {
    return;
  }
  if (offset + 1 == t->end) {
    /* The log empties: the next offset must survive without a message
       record to tell it (cursors rely on offsets never going back). */
    put_topic(hub, t);
  }
  del_msg(hub, t, offset);
}

void persist_payload(tern_hub *hub, const spayload *p) {
  if (!writing(hub)) {
    return;
  }
  size_t len = 1u + p->taillen;
  if (room(hub, 9 + len) != 0) {
    return; /* not stored: its messages store the tail themselves */
  }
  uint8_t id[8];
  put_be64(id, p->serial);
  uint8_t *v = prec_set(hub, 'P', id, 8, len, NULL);
  v[0] = RECORD_VERSION;
  memcpy(v + 1, p->tail, p->taillen);
  ((spayload *)(uintptr_t)p)->stored = 1;
  prec_maybe_flush(hub);
}

void persist_payload_gone(tern_hub *hub, const spayload *p) {
  uint8_t id[8];
  put_be64(id, p->serial);
  prec_del(hub, 'P', id, 8);
}

static const char *member_filter(const member *mb, size_t *len) {
  if (!mb->slot->flt) {
    *len = 0;
    return NULL;
  }
  return filter_text(mb->slot->flt->f, len);
}

/* Writes |mb|'s record with its untold losses (those of its session,
   told and not, are in the session's "S" record), in place when the
   batch holds one already. */
static void write_cursor(tern_hub *hub, const member *mb) {
  const topic *t = mb->slot->topic;
  const session *s = mb->session;
  if (!t->sid) {
    return;
  }
  size_t flen;
  const char *ftext = member_filter(mb, &flen);
  uint64_t lost = mb->lost;
  uint8_t id[8 + TERN_MAX_SESSION_KEY];
  put_be64(id, t->sid);
  memcpy(id + 8, s->key, s->keylen);
  size_t idlen = 8u + s->keylen;
  size_t len = CURSOR_FIXED + flen;
  ptopic **pp = persist_ptopic(hub);
  uint64_t batch = persist_batch_number(hub);
  uint8_t *v = NULL;
  centry *e = NULL;
  if (*pp) {
    /* Linear probing; entries of earlier batches count as empty (a
       batch's entries never go, so a chain has no hole). */
    for (size_t i = ctab_slot(mb), n = 0; n < CTAB_SIZE;
         i = (i + 1) & (CTAB_SIZE - 1), ++n) {
      centry *c = &(*pp)->tab[i];
      if (c->batch != batch || !c->mb) {
        e = c;
        break;
      }
      if (c->mb == mb) {
        uint8_t key[1 + 8 + TERN_MAX_SESSION_KEY];
        key[0] = 'C';
        memcpy(key + 1, id, idlen);
        v = prec_value(hub, c->rec, key, 1 + idlen, len);
        e = c;
        break;
      }
    }
  } else {
    *pp = mem_calloc(&hub->mem, 1, sizeof(ptopic));
    if (*pp) {
      e = &(*pp)->tab[ctab_slot(mb)];
    }
  }
  if (!v) {
    if (room(hub, 1 + idlen + len) != 0) {
      return; /* the store keeps the last cursor written: sent again */
    }
    uint32_t rec;
    v = prec_set(hub, 'C', id, idlen, len, &rec);
    batch = persist_batch_number(hub); /* room() may have flushed */
    if (e) {
      e->mb = mb;
      e->batch = batch;
      e->rec = rec;
    }
  }
  v[0] = RECORD_VERSION;
  put_be64(v + 1, member_cursor(mb));
  put_be32(v + 9, lost > UINT32_MAX ? UINT32_MAX : (uint32_t)lost);
  v[13] = (uint8_t)(flen >> 8);
  v[14] = (uint8_t)flen;
  if (flen) {
    memcpy(v + CURSOR_FIXED, ftext, flen);
  }
  prec_maybe_flush(hub);
}

void persist_sub(tern_hub *hub, const member *mb) {
  if (writing(hub)) {
    write_cursor(hub, mb);
  }
}

void persist_sub_cursor(tern_hub *hub, const member *mb) {
  if (writing(hub)) {
    write_cursor(hub, mb);
  }
}

/* The session's losses not confirmed changed (persist_drops): its
   members' records say what each still has to tell. */
void persist_topic_drops(tern_hub *hub, const session *s) {
  if (writing(hub)) {
    for (const member *mb = session_members(s); mb; mb = mb->s_next) {
      write_cursor(hub, mb);
    }
  }
}

void persist_sub_gone(tern_hub *hub, const member *mb) {
  if (!writing(hub)) {
    return;
  }
  if (mb->slot->topic->sid) {
    del_cursor(hub, mb->slot->topic, mb->session);
  }
}

/* Writes the "W" record of |s|: every wildcard pattern it subscribed. */
static void put_psubs(tern_hub *hub, const session *s) {
  size_t len = 3, n = 0;
  for (const psub *p = session_psubs(s); p; p = p->s_next) {
    size_t flen = 0;
    if (p->flt) {
      filter_text(p->flt->f, &flen);
    }
    len += 1u + p->patlen + 2u + flen;
    ++n;
  }
  if (n == 0) {
    prec_del(hub, 'W', s->key, s->keylen);
    return;
  }
  if (room(hub, 1 + s->keylen + len) != 0) {
    return;
  }
  uint8_t *v = prec_set(hub, 'W', s->key, s->keylen, len, NULL);
  v[0] = RECORD_VERSION;
  v[1] = (uint8_t)(n >> 8);
  v[2] = (uint8_t)n;
  v += 3;
  for (const psub *p = session_psubs(s); p; p = p->s_next) {
    size_t flen = 0;
    const char *ftext = p->flt ? filter_text(p->flt->f, &flen) : NULL;
    *v++ = (uint8_t)p->patlen;
    memcpy(v, p->pattern, p->patlen);
    v += p->patlen;
    *v++ = (uint8_t)(flen >> 8);
    *v++ = (uint8_t)flen;
    if (flen) {
      memcpy(v, ftext, flen);
    }
    v += flen;
  }
  persist_sync(hub); /* a subscription the host made must not vanish */
  prec_maybe_flush(hub);
}

void persist_psub(tern_hub *hub, const psub *p) {
  if (writing(hub)) {
    put_psubs(hub, p->session);
  }
}

void persist_psub_gone(tern_hub *hub, const psub *p) {
  /* |p| is off its session's list already */
  if (writing(hub)) {
    put_psubs(hub, p->session);
  }
}

/* ---- loading ------------------------------------------------------------ */

/* A record kept until tload_finish. */
typedef struct trec {
  uint8_t *key, *value;
  size_t keylen, valuelen;
} trec;

typedef struct pref {
  uint64_t serial;
  spayload *pl;
} pref;

typedef struct tref {
  uint64_t sid;
  topic *t;
  uint64_t end;          /* at least the offset after every record        */
} tref;

struct tload {
  trec *recs;
  size_t nrecs, caprecs;
  pref *payloads;        /* sorted by serial once built                   */
  size_t npayloads;
  tref *topics;          /* sorted by sid once built                      */
  size_t ntopics;
  spayload *hole;        /* the payload of offsets without a record       */
};

int tload_record(tern_hub *hub, tload **ptl, const uint8_t *key,
                 size_t keylen, const uint8_t *value, size_t valuelen) {
  tload *tl = *ptl;
  if (!tl) {
    tl = mem_calloc(&hub->mem, 1, sizeof(*tl));
    if (!tl) {
      return TERN_ERR_NOMEM;
    }
    *ptl = tl;
  }
  if (tl->nrecs == tl->caprecs) {
    size_t cap = tl->caprecs ? 2 * tl->caprecs : 64;
    trec *r = mem_realloc(&hub->mem, tl->recs, cap * sizeof(*r));
    if (!r) {
      return TERN_ERR_NOMEM;
    }
    tl->recs = r;
    tl->caprecs = cap;
  }
  uint8_t *k = mem_malloc(&hub->mem, keylen + valuelen + 1);
  if (!k) {
    return TERN_ERR_NOMEM;
  }
  memcpy(k, key, keylen);
  if (valuelen) {
    memcpy(k + keylen, value, valuelen);
  }
  trec *r = &tl->recs[tl->nrecs++];
  r->key = k;
  r->keylen = keylen;
  r->value = k + keylen;
  r->valuelen = valuelen;
  return 0;
}

static void note_serial(tern_hub *hub, uint64_t serial) {
  /* The serial names a record: the next hub must not hand it out again
     (a guard keeps a forged one from wrapping the counter). */
  if (serial >= hub->next_serial && serial < UINT64_MAX / 2) {
    hub->next_serial = serial;
  }
}

static int cmp_pref(const void *a, const void *b) {
  uint64_t x = ((const pref *)a)->serial, y = ((const pref *)b)->serial;
  return x < y ? -1 : x > y;
}

static int cmp_tref(const void *a, const void *b) {
  uint64_t x = ((const tref *)a)->sid, y = ((const tref *)b)->sid;
  return x < y ? -1 : x > y;
}

static spayload *find_payload(const tload *tl, uint64_t serial) {
  pref k = {serial, NULL};
  if (tl->npayloads == 0) {
    return NULL; /* bsearch's base may not be NULL, even with no element */
  }
  pref *p = bsearch(&k, tl->payloads, tl->npayloads, sizeof(pref), cmp_pref);
  return p ? p->pl : NULL;
}

static tref *find_topic(const tload *tl, uint64_t sid) {
  tref k = {sid, NULL, 0};
  if (tl->ntopics == 0) {
    return NULL;
  }
  return bsearch(&k, tl->topics, tl->ntopics, sizeof(tref), cmp_tref);
}

/* A payload from a stored tail, checked with the wire codec: 0,
   TERN_ERR_STORE or TERN_ERR_NOMEM. */
static int payload_of_tail(tern_hub *hub, const uint8_t *tail, size_t taillen,
                           spayload **pp) {
  wire_msg w;
  int rv = persist_decode_tail(hub, tail, taillen, &w);
  if (rv == -2) {
    return TERN_ERR_NOMEM;
  }
  if (rv != 0 || w.payloadlen > hub->set.max_payload) {
    return TERN_ERR_STORE;
  }
  spayload *p = mem_malloc(&hub->mem, sizeof(spayload) + taillen);
  if (!p) {
    return TERN_ERR_NOMEM;
  }
  memcpy(p->tail, tail, taillen);
  p->refs = 1;
  p->taillen = (uint32_t)taillen;
  p->payloadlen = (uint32_t)w.payloadlen;
  p->idlen = (uint8_t)w.idlen;
  p->id_off = (uint8_t)(w.id - tail);
  p->cklen = (uint8_t)w.collapse_keylen;
  p->ck_off = (uint8_t)(w.collapse_keylen ? w.collapse_key - tail : 0);
  p->serial = 0;
  p->stored = 0;
  *pp = p;
  return 0;
}

static int load_payloads(tern_hub *hub, tload *tl) {
  size_t n = 0;
  for (size_t i = 0; i < tl->nrecs; ++i) {
    n += tl->recs[i].key[0] == 'P';
  }
  if (n == 0) {
    return 0;
  }
  tl->payloads = mem_malloc(&hub->mem, n * sizeof(pref));
  if (!tl->payloads) {
    return TERN_ERR_NOMEM;
  }
  for (size_t i = 0; i < tl->nrecs; ++i) {
    const trec *r = &tl->recs[i];
    if (r->key[0] != 'P') {
      continue;
    }
    if (r->keylen != 9 || r->valuelen < 2 || r->value[0] != RECORD_VERSION) {
      return TERN_ERR_STORE;
    }
    spayload *p;
    int rv = payload_of_tail(hub, r->value + 1, r->valuelen - 1, &p);
    if (rv != 0) {
      return rv;
    }
    p->serial = get_be64(r->key + 1);
    p->stored = 1;
    note_serial(hub, p->serial);
    tl->payloads[tl->npayloads].serial = p->serial;
    tl->payloads[tl->npayloads++].pl = p;
  }
  if (tl->npayloads > 1) { /* qsort's base may not be NULL */
    qsort(tl->payloads, tl->npayloads, sizeof(pref), cmp_pref);
  }
  for (size_t i = 1; i < tl->npayloads; ++i) {
    if (tl->payloads[i].serial == tl->payloads[i - 1].serial) {
      return TERN_ERR_STORE;
    }
  }
  return 0;
}

static int load_topics(tern_hub *hub, tload *tl, tern_tstamp now) {
  size_t n = 0;
  for (size_t i = 0; i < tl->nrecs; ++i) {
    n += tl->recs[i].key[0] == 'T';
  }
  if (n == 0) {
    return 0;
  }
  tl->topics = mem_malloc(&hub->mem, n * sizeof(tref));
  if (!tl->topics) {
    return TERN_ERR_NOMEM;
  }
  for (size_t i = 0; i < tl->nrecs; ++i) {
    const trec *r = &tl->recs[i];
    if (r->key[0] != 'T') {
      continue;
    }
    const uint8_t *v = r->value;
    if (r->keylen != 9 || r->valuelen < TOPIC_FIXED + 1 ||
        v[0] != RECORD_VERSION || r->valuelen != TOPIC_FIXED + (size_t)v[37]) {
      return TERN_ERR_STORE;
    }
    char name[TERN_MAX_TOPIC + 1];
    memcpy(name, v + TOPIC_FIXED, v[37]);
    name[v[37]] = '\0';
    tern_topic_options o;
    tern_topic_options_default(&o);
    o.max_messages = get_be32(v + 1);
    o.max_bytes = get_be64(v + 5);
    o.max_age = get_be64(v + 13);
    o.rate = get_be32(v + 21);
    o.burst = get_be32(v + 25);
    uint64_t end = get_be64(v + 29);
    uint64_t sid = get_be64(r->key + 1);
    if (end == 0 || end >= UINT64_MAX / 2 || sid == 0 ||
        memchr(name, 0, v[37])) {
      return TERN_ERR_STORE;
    }
    tern_topic *tt;
    int rv = tern_hub_create_topic(hub, name, &o, now, &tt);
    if (rv != 0) {
      /* a bad name, or two records of one name */
      return rv == TERN_ERR_NOMEM ? rv : TERN_ERR_STORE;
    }
    topic *t = (topic *)tt;
    t->sid = sid;
    t->first = t->end = end;
    note_serial(hub, sid);
    tl->topics[tl->ntopics].sid = sid;
    tl->topics[tl->ntopics].t = t;
    tl->topics[tl->ntopics++].end = end;
  }
  if (tl->ntopics > 1) {
    qsort(tl->topics, tl->ntopics, sizeof(tref), cmp_tref);
  }
  for (size_t i = 1; i < tl->ntopics; ++i) {
    if (tl->topics[i].sid == tl->topics[i - 1].sid) {
      return TERN_ERR_STORE;
    }
  }
  return 0;
}

/* A "U" or "C" record of a topic that is no more: deleted. */
static void drop_orphan(tern_hub *hub, const trec *r) {
  prec_del(hub, r->key[0], r->key + 1, r->keylen - 1);
}

static int cmp_umsg(const void *a, const void *b) {
  const trec *x = *(const trec *const *)a, *y = *(const trec *const *)b;
  return memcmp(x->key + 1, y->key + 1, 16); /* sid, offset: big-endian */
}

/* The cursors of the "C" records raise their topic's end: a volatile
   message acked before the restart had an offset no record tells. */
static int scan_cursors(tern_hub *hub, tload *tl) {
  (void)hub;
  for (size_t i = 0; i < tl->nrecs; ++i) {
    const trec *r = &tl->recs[i];
    if (r->key[0] != 'C') {
      continue;
    }
    if (r->keylen < 10 || r->keylen - 9 > TERN_MAX_SESSION_KEY ||
        r->valuelen < CURSOR_FIXED || r->value[0] != RECORD_VERSION ||
        r->valuelen !=
            CURSOR_FIXED + ((size_t)r->value[13] << 8 | r->value[14])) {
      return TERN_ERR_STORE;
    }
    tref *tr = find_topic(tl, get_be64(r->key + 1));
    uint64_t cursor = get_be64(r->value + 1);
    if (cursor >= UINT64_MAX / 2) {
      return TERN_ERR_STORE;
    }
    if (tr && cursor > tr->end) {
      tr->end = cursor;
    }
  }
  return 0;
}

/* Builds the logs from the "U" records, by topic and offset. */
static int load_logs(tern_hub *hub, tload *tl) {
  size_t n = 0;
  for (size_t i = 0; i < tl->nrecs; ++i) {
    n += tl->recs[i].key[0] == 'U';
  }
  if (n == 0) {
    goto ends;
  }
  trec **u = mem_malloc(&hub->mem, n * sizeof(*u));
  if (!u) {
    return TERN_ERR_NOMEM;
  }
  n = 0;
  int rv = 0;
  for (size_t i = 0; i < tl->nrecs && rv == 0; ++i) {
    trec *r = &tl->recs[i];
    if (r->key[0] != 'U') {
      continue;
    }
    if (r->keylen != 17 || r->valuelen < TMSG_FIXED + 1 ||
        r->value[0] != RECORD_VERSION || r->value[26] != 0 ||
        get_be64(r->key + 9) == 0 || get_be64(r->key + 9) >= UINT64_MAX / 2) {
      rv = TERN_ERR_STORE;
      break;
    }
    if (!find_topic(tl, get_be64(r->key + 1))) {
      drop_orphan(hub, r);
      continue;
    }
    u[n++] = r;
  }
  if (rv == 0 && n > 1) {
    qsort(u, n, sizeof(*u), cmp_umsg);
  }
  /* Per topic: the records from the highest offset down, at most a
     window's worth (its max_messages, and a margin over the number of
     records) so that a forged offset cannot make a huge log; offsets in
     the window without a record (volatile messages) get a placeholder no
     member matches; records below the window are deleted. */
  for (size_t i = 0; i < n && rv == 0;) {
    tref *tr = find_topic(tl, get_be64(u[i]->key + 1));
    topic *t = tr->t;
    size_t j = i;
    while (j < n && get_be64(u[j]->key + 1) == tr->sid) {
      ++j;
    }
    uint64_t top = get_be64(u[j - 1]->key + 9) + 1;
    uint64_t end = tr->end > top ? tr->end : top;
    uint64_t window = 16 * (uint64_t)(j - i) + 1024;
    if (t->opt.max_messages && t->opt.max_messages < window) {
      window = t->opt.max_messages;
    }
    uint64_t first = end - window > end ? 1 : end - window;
    if (first < get_be64(u[i]->key + 9)) {
      first = get_be64(u[i]->key + 9);
    }
    if (first == 0) {
      first = 1;
    }
    uint64_t span = end - first;
    uint32_t cap = 8;
    while (cap < span) {
      cap *= 2;
    }
    tmsg *log = mem_calloc(&hub->mem, cap, sizeof(tmsg));
    if (!log) {
      rv = TERN_ERR_NOMEM;
      break;
    }
    mem_free(&hub->mem, t->log);
    t->log = log;
    t->cap = cap;
    t->first = t->end = first;
    size_t k = i;
    for (uint64_t o = first; o < end && rv == 0; ++o) {
      while (k < j && get_be64(u[k]->key + 9) < o) {
        drop_orphan(hub, u[k++]); /* below the window */
      }
      tmsg *tm = log_at(t, o);
      if (k < j && get_be64(u[k]->key + 9) == o) {
        const uint8_t *v = u[k]->value;
        spayload *p;
        rv = payload_of_tail(hub, v + TMSG_FIXED, u[k]->valuelen - TMSG_FIXED,
                             &p);
        if (rv != 0) {
          break;
        }
        p->serial = get_be64(v + 18);
        note_serial(hub, p->serial);
        tm->pl = p;
        tm->serial = p->serial;
        tm->expiry = persist_from_wall(hub, get_be64(v + 2));
        tm->published = persist_from_wall(hub, get_be64(v + 10));
        tm->priority = (uint8_t)(p->tail[0] & WIRE_MSG_PRIO_MASK);
        tm->match = 1;
        ++k;
      } else {
        if (!tl->hole) {
          tl->hole = mem_calloc(&hub->mem, 1, sizeof(spayload));
          if (!tl->hole) {
            rv = TERN_ERR_NOMEM;
            break;
          }
          tl->hole->refs = 1;
        }
        ++tl->hole->refs;
        tm->pl = tl->hole;
        tm->serial = 0;
        tm->expiry = 0; /* discarded as soon as it is the log's first */
        tm->published = 0;
        tm->priority = 0;
        tm->match = 0; /* no member takes it */
      }
      t->end = o + 1;
      t->bytes += tm->pl->payloadlen;
      hub->stats.topic_bytes += tm->pl->payloadlen;
      ++hub->stats.topic_messages;
    }
    i = j;
  }
  mem_free(&hub->mem, u);
  if (rv != 0) {
    return rv;
  }
ends:
  /* Topics without records keep their stored end, raised by cursors. */
  for (size_t i = 0; i < tl->ntopics; ++i) {
    topic *t = tl->topics[i].t;
    if (t->first == t->end && t->end < tl->topics[i].end) {
      t->first = t->end = tl->topics[i].end;
    }
  }
  return 0;
}

static int load_shared_msgs(tern_hub *hub, tload *tl, tload_shared_fn fn,
                            void *ctx) {
  (void)hub;
  for (size_t i = 0; i < tl->nrecs; ++i) {
    const trec *r = &tl->recs[i];
    if (r->key[0] != 'M') {
      continue;
    }
    const uint8_t *v = r->value;
    size_t keylen = v[0];
    /* persist.c checked the head; the reference is the rest */
    if (r->valuelen != 1 + keylen + 12 + 8) {
      return TERN_ERR_STORE;
    }
    spayload *pl = find_payload(tl, get_be64(v + 1 + keylen + 12));
    if (!pl) {
      return TERN_ERR_STORE; /* its payload's record is missing */
    }
    int rv = fn(ctx, get_be64(r->key + 1), v, r->valuelen, pl);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

static session *restored_session(tern_hub *hub, const uint8_t *key,
                                 size_t keylen) {
  session *s = session_find(hub, key, keylen, session_hash(hub, key, keylen));
  return s && s->restored ? s : NULL;
}

static int load_members(tern_hub *hub, tload *tl) {
  for (size_t i = 0; i < tl->nrecs; ++i) {
    const trec *r = &tl->recs[i];
    if (r->key[0] != 'C') {
      continue;
    }
    tref *tr = find_topic(tl, get_be64(r->key + 1));
    session *s = restored_session(hub, r->key + 9, r->keylen - 9);
    if (!tr || !s) {
      drop_orphan(hub, r); /* its topic or session was deleted */
      continue;
    }
    const uint8_t *v = r->value;
    size_t flen = r->valuelen - CURSOR_FIXED;
    int rv = topic_member_restore(hub, tr->t, s,
                                  flen ? (const char *)v + CURSOR_FIXED : NULL,
                                  flen, get_be64(v + 1), get_be32(v + 9));
    if (rv == TERN_ERR_LIMIT) {
      continue; /* no filter slot: as when subscribing */
    }
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

/* Receipts of the retained messages from the restored cursors: each
   member whose filter matches a message counts as subscribed, and as
   sent and acked when its cursor is past it.  Members that left before
   the restart are not counted.  Approximate by nature; skipped when
   memory is short. */
static void load_receipts(tern_hub *hub, topic *t) {
  uint64_t n = t->end - t->first;
  if (n == 0 || t->nmembers == 0 || n > UINT32_MAX) {
    return;
  }
  size_t width = (size_t)n + 1;
  uint32_t *cnt = mem_calloc(&hub->mem, (size_t)t->nslots * width,
                             sizeof(uint32_t));
  if (!cnt) {
    return;
  }
  for (const member *mb = t->offline; mb; mb = mb->t_next) {
    uint64_t c = mb->next_off < t->first ? t->first : mb->next_off;
    size_t slot = (size_t)(mb->slot - t->slots);
    ++cnt[slot * width + (size_t)(c - t->first)];
  }
  /* suffix sums: cnt[k] becomes the members whose cursor is above k */
  for (size_t s = 0; s < t->nslots; ++s) {
    uint32_t *c = cnt + s * width;
    uint32_t above = 0;
    for (size_t k = width; k-- > 0;) {
      uint32_t here = c[k];
      c[k] = above;
      above += here;
    }
  }
  for (uint64_t o = t->first; o < t->end; ++o) {
    tmsg *tm = log_at(t, o);
    uint64_t sub = 0, acked = 0;
    for (size_t s = 0; s < t->nslots; ++s) {
      if ((tm->match >> s) & 1) {
        sub += t->slots[s].nmembers;
        acked += cnt[s * width + (size_t)(o - t->first)];
      }
    }
    tm->subscribed = sub > UINT32_MAX ? UINT32_MAX : (uint32_t)sub;
    tm->sent = tm->acked = acked > UINT32_MAX ? UINT32_MAX : (uint32_t)acked;
  }
  mem_free(&hub->mem, cnt);
}

static int load_psubs(tern_hub *hub, tload *tl, tern_tstamp now) {
  for (size_t i = 0; i < tl->nrecs; ++i) {
    const trec *r = &tl->recs[i];
    if (r->key[0] != 'W') {
      continue;
    }
    if (r->keylen < 2 || r->keylen - 1 > TERN_MAX_SESSION_KEY ||
        r->valuelen < 3 || r->value[0] != RECORD_VERSION) {
      return TERN_ERR_STORE;
    }
    if (!restored_session(hub, r->key + 1, r->keylen - 1)) {
      drop_orphan(hub, r);
      continue;
    }
    const uint8_t *v = r->value + 3, *e = r->value + r->valuelen;
    size_t count = (size_t)r->value[1] << 8 | r->value[2];
    for (size_t k = 0; k < count; ++k) {
      char pattern[TERN_MAX_TOPIC + 1];
      char ftext[TERN_MAX_FILTER + 1];
      if (v >= e || (size_t)(e - v) < 1u + v[0] + 2u) {
        return TERN_ERR_STORE;
      }
      size_t patlen = v[0];
      memcpy(pattern, v + 1, patlen);
      pattern[patlen] = '\0';
      v += 1 + patlen;
      size_t flen = (size_t)v[0] << 8 | v[1];
      v += 2;
      if ((size_t)(e - v) < flen || flen > TERN_MAX_FILTER ||
          memchr(pattern, 0, patlen) || memchr(v, 0, flen) ||
          pattern_is_exact((const uint8_t *)pattern, patlen)) {
        return TERN_ERR_STORE;
      }
      memcpy(ftext, v, flen);
      ftext[flen] = '\0';
      v += flen;
      /* Members are restored: this joins only topics it matches that
         have none of the session's (as a live subscribe would). */
      tern_ssize rv = tern_hub_subscribe(hub, r->key + 1, r->keylen - 1,
                                         pattern, flen ? ftext : NULL, now,
                                         NULL);
      if (rv == TERN_ERR_NOMEM) {
        return TERN_ERR_NOMEM;
      }
      if (rv < 0 && rv != TERN_ERR_LIMIT) {
        return TERN_ERR_STORE;
      }
    }
    if (v != e) {
      return TERN_ERR_STORE;
    }
  }
  return 0;
}

int tload_finish(tern_hub *hub, tload *tl, tern_tstamp now,
                 tload_shared_fn shared, void *ctx) {
  int rv = load_payloads(hub, tl);
  if (rv == 0) {
    rv = load_topics(hub, tl, now);
  }
  if (rv == 0) {
    rv = scan_cursors(hub, tl);
  }
  if (rv == 0) {
    rv = load_logs(hub, tl);
  }
  if (rv == 0) {
    rv = load_shared_msgs(hub, tl, shared, ctx);
  }
  if (rv == 0) {
    rv = load_members(hub, tl);
  }
  for (size_t i = 0; rv == 0 && i < tl->ntopics; ++i) {
    load_receipts(hub, tl->topics[i].t);
  }
  if (rv == 0) {
    rv = load_psubs(hub, tl, now);
  }
  return rv;
}

static void free_recs(tern_hub *hub, tload *tl) {
  for (size_t i = 0; i < tl->nrecs; ++i) {
    mem_free(&hub->mem, tl->recs[i].key);
  }
  mem_free(&hub->mem, tl->recs);
  tl->recs = NULL;
  tl->nrecs = 0;
}

void tload_free(tern_hub *hub, tload *tl) {
  if (!tl) {
    return;
  }
  free_recs(hub, tl);
  for (size_t i = 0; i < tl->npayloads; ++i) {
    payload_unref(hub, tl->payloads[i].pl);
  }
  if (tl->hole) {
    payload_unref(hub, tl->hole);
  }
  mem_free(&hub->mem, tl->payloads);
  mem_free(&hub->mem, tl->topics);
  mem_free(&hub->mem, tl);
}

void tload_after(tern_hub *hub, tload *tl, tern_tstamp now) {
  if (!tl) {
    return;
  }
  for (size_t i = 0; i < tl->ntopics; ++i) {
    topic_evict_due(hub, tl->topics[i].t, now);
  }
  /* Payloads no message took: their records go as they are freed. */
  tload_free(hub, tl);
}

void tload_unload(tern_hub *hub) {
  while (hub->topic_list) {
    tern_topic_del((tern_topic *)hub->topic_list, TERN_TSTAMP_NONE);
  }
}
