/*
 * Shared payloads and topics: creating and deleting topics, their logs and
 * retention, members (one session's subscription to one topic) and their
 * pool, filter slots and interned filters, subscribe and unsubscribe,
 * receipts.  Sending topic messages is in fanout.c.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/persist.h"
#include "deliver/topic.h"
#include "filter/filter.h"

/* ---- shared payloads ------------------------------------------------------ */

int payload_new(tern_hub *hub, spayload **pp, const tern_msg_desc *d,
                const uint8_t *id, size_t idlen) {
  size_t taillen = session_desc_tail(NULL, d, id, idlen);
  spayload *p = mem_malloc(&hub->mem, sizeof(spayload) + taillen);
  if (!p) {
    return TERN_ERR_NOMEM;
  }
  session_desc_tail(p->tail, d, id, idlen);
  size_t cklen = d->collapse_key ? d->collapse_keylen : 0;
  p->refs = 1;
  p->taillen = (uint32_t)taillen;
  p->payloadlen = (uint32_t)d->payloadlen;
  p->idlen = (uint8_t)idlen;
  p->id_off = (uint8_t)(1 + wire_varint_len(idlen));
  p->cklen = (uint8_t)cklen;
  p->ck_off =
      cklen ? (uint8_t)(p->id_off + idlen + wire_varint_len(cklen)) : 0;
  p->serial = 0;
  p->stored = 0;
  *pp = p;
  return 0;
}

void payload_unref(tern_hub *hub, spayload *p) {
  if (--p->refs == 0) {
    if (p->stored && hub->persist && !hub->loading) {
      persist_payload_gone(hub, p); /* h-tpersist: after its messages' */
    }
    mem_free(&hub->mem, p);
  }
}

msg *msg_new_shared(tern_hub *hub, spayload *p, int priority,
                    tern_tstamp expiry, uint64_t cookie) {
  size_t size = sizeof(msg) + MSG_REF_OFF + sizeof(msg_ref) +
                (cookie ? sizeof(cookie) : 0);
  msg *m = msg_alloc(hub, size);
  if (!m) {
    return NULL;
  }
  m->prev = m->next = NULL;
  m->session = NULL;
  m->conn = NULL;
  m->expiry = expiry;
  m->collapse.next = NULL;
  m->collapse.hash = 0;
  m->serial = 0;
  m->seq = 0;
  m->sent_at = 0;
  m->stream = 0;
  m->taillen = p->taillen;
  m->payloadlen = p->payloadlen;
  m->refs = 1;
  m->deliveries = 0;
  m->priority = (uint8_t)priority;
  m->flags = MSG_SHARED;
  m->idlen = p->idlen;
  m->id_off = p->id_off;
  m->cklen = p->cklen;
  m->ck_off = p->ck_off;
  msg_ref *r = msg_ref_of(m);
  r->pl = p;
  r->mb = NULL;
  r->offset = 0;
  r->mprev = r->mnext = NULL;
  ++p->refs;
  if (cookie) {
    memcpy(r + 1, &cookie, sizeof(cookie));
    m->flags |= MSG_COOKIE;
  }
  return m;
}

void msg_release_shared(tern_hub *hub, msg *m) {
  payload_unref(hub, msg_ref_of(m)->pl);
}

/* ---- the member pool ------------------------------------------------------ */

/* A block of the pool: its first slot links the blocks, the rest are
   members, each 64-byte aligned in the block.  Blocks grow from 16 KiB
   to 1 MiB as the pool does, so a small hub takes little and a large one
   pays almost nothing for the links. */
#define MEMBER_BLOCK_MIN 16384
#define MEMBER_BLOCK_MAX (1024 * 1024)

/* member_reserve makes sure |n| members can be had without failing. */
static int member_reserve(tern_hub *hub, size_t n) {
  size_t have = 0;
  for (member *m = hub->member_free; m && have < n; m = m->s_next) {
    ++have;
  }
  while (have < n) {
    unsigned shift = hub->member_blocks < 6 ? hub->member_blocks : 6;
    size_t bytes = (size_t)MEMBER_BLOCK_MIN << shift;
    bytes = bytes > MEMBER_BLOCK_MAX ? MEMBER_BLOCK_MAX : bytes;
    member *b = mem_malloc(&hub->mem, bytes);
    if (!b) {
      return TERN_ERR_NOMEM;
    }
    *(void **)b = hub->member_chunks;
    hub->member_chunks = b;
    ++hub->member_blocks;
    size_t count = bytes / sizeof(member) - 1;
    for (size_t i = count; i >= 1; --i) {
      b[i].s_next = hub->member_free;
      hub->member_free = &b[i];
    }
    have += count;
  }
  return 0;
}

static void member_put(tern_hub *hub, member *mb) {
  mb->s_next = hub->member_free;
  hub->member_free = mb;
}

static void member_pool_free(tern_hub *hub) {
  while (hub->member_chunks) {
    void *b = hub->member_chunks;
    hub->member_chunks = *(void **)b;
    mem_free(&hub->mem, b);
  }
  hub->member_free = NULL;
  hub->member_blocks = 0;
}

/* ---- interned filters ----------------------------------------------------- */

/* filter_intern compiles |text| or finds it compiled: a new reference. */
static int filter_intern(tern_hub *hub, const char *text, size_t len,
                         ifilter **pi, size_t *errpos) {
  filter *f;
  int rv = filter_compile(&hub->mem, text, len, &f, errpos, NULL);
  if (rv != 0) {
    return rv;
  }
  size_t flen;
  const char *ftext = filter_text(f, &flen);
  for (ifilter *i = hub->filters; i; i = i->next) {
    size_t ilen;
    const char *itext = filter_text(i->f, &ilen);
    if (ilen == flen && memcmp(itext, ftext, flen) == 0) {
      filter_free(&hub->mem, f);
      ++i->refs;
      *pi = i;
      return 0;
    }
  }
  ifilter *i = mem_malloc(&hub->mem, sizeof(*i));
  if (!i) {
    filter_free(&hub->mem, f);
    return TERN_ERR_NOMEM;
  }
  i->f = f;
  i->refs = 1;
  i->next = hub->filters;
  hub->filters = i;
  *pi = i;
  return 0;
}

static void filter_release(tern_hub *hub, ifilter *i) {
  if (!i || --i->refs != 0) {
    return;
  }
  ifilter **pp = &hub->filters;
  while (*pp != i) {
    pp = &(*pp)->next;
  }
  *pp = i->next;
  filter_free(&hub->mem, i->f);
  mem_free(&hub->mem, i);
}

/* ---- topics --------------------------------------------------------------- */

static size_t name_len(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n]) {
    ++n;
  }
  return n;
}

static uint64_t topic_hash(const tern_hub *hub, const char *name,
                           size_t len) {
  return hash_bytes(hub->hash_key, 0x746f706963ull, name, len);
}

static topic *topic_find(const tern_hub *hub, const char *name, size_t len) {
  uint64_t h = topic_hash(hub, name, len);
  for (hnode *n = hmap_bucket(&hub->topics, h); n; n = n->next) {
    topic *t = (topic *)n;
    if (n->hash == h && t->namelen == len && memcmp(t->name, name, len) == 0) {
      return t;
    }
  }
  return NULL;
}

static void topic_options_all(tern_topic_options *o) {
  memset(o, 0, sizeof(*o));
  o->version = TERN_TOPIC_OPTIONS_VERSION;
  o->max_messages = 10000;
  o->max_bytes = 64u * 1024 * 1024;
  o->max_age = 0;
  o->rate = 0;
  o->burst = 0;
}

void tern_topic_options_default_versioned(uint32_t version,
                                          tern_topic_options *o) {
  tern_topic_options all;
  topic_options_all(&all);
  all.version = version;
  layout_fill_defaults(o, layout_topic_options(version), &all);
}

/* Makes room in the ring for one more entry. */
static int log_grow(tern_hub *hub, topic *t) {
  uint64_t n = t->end - t->first;
  if (n < t->cap) {
    return 0;
  }
  uint32_t cap = t->cap ? t->cap * 2 : 8;
  if (cap <= t->cap) {
    return TERN_ERR_NOMEM;
  }
  tmsg *log = mem_malloc(&hub->mem, (size_t)cap * sizeof(tmsg));
  if (!log) {
    return TERN_ERR_NOMEM;
  }
  for (uint64_t o = t->first; o < t->end; ++o) {
    log[o & (cap - 1)] = *log_at(t, o);
  }
  mem_free(&hub->mem, t->log);
  t->log = log;
  t->cap = cap;
  return 0;
}

/* Discards the oldest message of the log.  Members behind it find out
   when they next look (member_catch_up): nothing per member here. */
static void evict_head(tern_hub *hub, topic *t) {
  tmsg *tm = log_at(t, t->first);
  for (uint32_t i = 1; i < t->nslots; ++i) {
    if ((tm->match >> i) & 1) {
      ++t->slots[i].evicted;
    }
  }
  t->bytes -= tm->pl->payloadlen;
  hub->stats.topic_bytes -= tm->pl->payloadlen;
  --hub->stats.topic_messages;
  payload_unref(hub, tm->pl);
  tm->pl = NULL;
  if (hub->persist && !hub->loading) {
    persist_topic_msg_gone(hub, t, t->first);
  }
  ++t->first;
}

void topic_evict_due(tern_hub *hub, topic *t, tern_tstamp now) {
  while (t->first < t->end) {
    const tmsg *tm = log_at(t, t->first);
    if (tm->expiry > now &&
        !(t->opt.max_age && tm->published + t->opt.max_age <= now)) {
      break;
    }
    evict_head(hub, t);
  }
}

static void member_leave(tern_hub *hub, member *mb, int store,
                         tern_tstamp now);

/* A member joins |t| with filter slot |slot|: taken from the reserved
   pool, so it cannot fail. */
static member *member_join(tern_hub *hub, topic *t, session *s,
                           fslot *slot) {
  member *mb = hub->member_free;
  hub->member_free = mb->s_next;
  mb->session = s;
  mb->slot = slot;
  mb->out = NULL;
  mb->next_off = t->end;
  mb->lost = 0;
  mb->consumed = slot->matched;
  mb->s_next = s->tp->members; /* the caller made s->tp */
  s->tp->members = mb;
  tlist_push(t, mb, s->nconns != 0, 0);
  ++slot->nmembers;
  ++t->nmembers;
  ++hub->stats.members;
  return mb;
}

static member *member_of(const session *s, const topic *t) {
  for (member *mb = session_members(s); mb; mb = mb->s_next) {
    if (mb->slot->topic == t) {
      return mb;
    }
  }
  return NULL;
}

/* The slot of |t| for filter |flt| (NULL: slot 0), taking a free one for
   a new filter; NULL when all are taken.  Does not change the topic. */
static fslot *slot_find(topic *t, const ifilter *flt) {
  if (!flt) {
    return &t->slots[0];
  }
  fslot *free_slot = NULL;
  for (uint32_t i = 1; i < TOPIC_SLOTS; ++i) {
    fslot *sl = &t->slots[i];
    if (sl->flt == flt) {
      return sl;
    }
    if (!sl->flt && !free_slot) {
      free_slot = sl;
    }
  }
  return free_slot;
}

static void slot_take(tern_hub *hub, topic *t, fslot *sl, ifilter *flt) {
  if (!flt || sl->flt == flt) {
    return;
  }
  uint32_t i = (uint32_t)(sl - t->slots);
  sl->flt = flt;
  ++flt->refs;
  sl->matched = sl->evicted = 0;
  sl->tail = 0;
  /* Retained messages matched the slot's previous filter. */
  for (uint64_t o = t->first; o < t->end; ++o) {
    log_at(t, o)->match &= ~((uint64_t)1 << i);
  }
  if (i + 1 > t->nslots) {
    t->nslots = i + 1;
  }
  (void)hub;
}

static void slot_drop(tern_hub *hub, fslot *sl) {
  if (--sl->nmembers == 0 && sl != &sl->topic->slots[0]) {
    filter_release(hub, sl->flt);
    sl->flt = NULL;
  }
}

/* Puts |mb| (which exists) into the slot for |flt|; the slot must be
   available (slot_find). */
static void member_reslot(tern_hub *hub, member *mb, ifilter *flt) {
  topic *t = mb->slot->topic;
  fslot *sl = slot_find(t, flt);
  if (sl == mb->slot) {
    return;
  }
  /* Losses under the old filter are counted first; from here on it is
     counted against the new one, whose matches below next_off are those
     of its slot less those at or after next_off. */
  member_catch_up(mb);
  slot_take(hub, t, sl, flt);
  slot_drop(hub, mb->slot);
  mb->slot = sl;
  ++sl->nmembers;
  uint32_t i = (uint32_t)(sl - t->slots);
  uint32_t ahead = 0;
  for (uint64_t o = mb->next_off; o < t->end; ++o) {
    ahead += (uint32_t)((log_at(t, o)->match >> i) & 1);
  }
  mb->consumed = sl->matched - ahead;
}

int tern_hub_create_topic(tern_hub *hub, const char *name,
                          const tern_topic_options *opts, tern_tstamp now,
                          tern_topic **ptopic) {
  (void)now;
  if (!hub || !name) {
    return TERN_ERR_INVALID;
  }
  size_t len = name_len(name, TERN_MAX_TOPIC + 1);
  if (topic_name_check((const uint8_t *)name, len) != 0) {
    return TERN_ERR_INVALID;
  }
  tern_topic_options o;
  topic_options_all(&o);
  if (opts) {
    size_t olen = layout_topic_options(opts->version);
    if (olen == 0) {
      return TERN_ERR_INVALID;
    }
    memcpy(&o, opts, olen);
  }
  topic *old = topic_find(hub, name, len);
  if (old) {
    if (ptopic) {
      *ptopic = (tern_topic *)old;
    }
    return TERN_ERR_DUPLICATE;
  }
  size_t want = 0;
  for (psub *p = hub->psubs; p; p = p->h_next) {
    want += pattern_match((const uint8_t *)p->pattern, p->patlen,
                          (const uint8_t *)name, len) != 0;
  }
  if (member_reserve(hub, want) != 0) {
    return TERN_ERR_NOMEM;
  }
  topic *t = mem_calloc(&hub->mem, 1, sizeof(topic) + len + 1);
  if (!t) {
    return TERN_ERR_NOMEM;
  }
  t->hub = hub;
  t->opt = o;
  t->first = t->end = 1;
  t->nslots = 1;
  for (uint32_t i = 0; i < TOPIC_SLOTS; ++i) {
    t->slots[i].topic = t;
  }
  t->tokens = o.burst ? o.burst : o.rate;
  t->tokens_at = now;
  t->namelen = (uint16_t)len;
  memcpy(t->name, name, len);
  t->link.hash = topic_hash(hub, name, len);
  hmap_insert(&hub->topics, &hub->mem, &t->link);
  t->all_next = hub->topic_list;
  if (hub->topic_list) {
    hub->topic_list->all_prev = t;
  }
  hub->topic_list = t;
  ++hub->stats.topics;
  if (hub->persist && !hub->loading) {
    persist_topic(hub, t);
  }
  for (psub *p = hub->psubs; p; p = p->h_next) {
    if (!pattern_match((const uint8_t *)p->pattern, p->patlen,
                       (const uint8_t *)name, len)) {
      continue;
    }
    fslot *sl = slot_find(t, p->flt);
    if (!sl) {
      continue; /* more than TOPIC_SLOTS - 1 distinct filters */
    }
    member *mb = member_of(p->session, t);
    if (mb) {
      member_reslot(hub, mb, p->flt);
    } else {
      slot_take(hub, t, sl, p->flt);
      mb = member_join(hub, t, p->session, sl);
    }
    if (hub->persist && !hub->loading) {
      persist_sub(hub, mb);
    }
  }
  if (ptopic) {
    *ptopic = (tern_topic *)t;
  }
  return 0;
}

tern_topic *tern_hub_find_topic(tern_hub *hub, const char *name) {
  if (!hub || !name) {
    return NULL;
  }
  return (tern_topic *)topic_find(hub, name, name_len(name, TERN_MAX_TOPIC + 1));
}

static void topic_free(tern_hub *hub, topic *t, int store,
                       tern_tstamp now) {
  while (t->online) {
    member_leave(hub, t->online, store, now);
  }
  while (t->offline) {
    member_leave(hub, t->offline, store, now);
  }
  while (t->first < t->end) {
    tmsg *tm = log_at(t, t->first);
    t->bytes -= tm->pl->payloadlen;
    hub->stats.topic_bytes -= tm->pl->payloadlen;
    --hub->stats.topic_messages;
    payload_unref(hub, tm->pl);
    ++t->first;
  }
  mem_free(&hub->mem, t->log);
  if (t->all_prev) {
    t->all_prev->all_next = t->all_next;
  } else {
    hub->topic_list = t->all_next;
  }
  if (t->all_next) {
    t->all_next->all_prev = t->all_prev;
  }
  hmap_remove(&hub->topics, &t->link);
  --hub->stats.topics;
  mem_free(&hub->mem, t);
}

void tern_topic_del(tern_topic *tt, tern_tstamp now) {
  topic *t = (topic *)tt;
  if (!t) {
    return;
  }
  tern_hub *hub = t->hub;
  if (hub->persist && !hub->loading) {
    persist_topic_gone(hub, t);
  }
  topic_free(hub, t, 0, now);
}

/* ---- members -------------------------------------------------------------- */

uint64_t member_cursor(const member *mb) {
  return mb->out ? msg_ref_of(mb->out)->offset : mb->next_off;
}

void topic_msg_leave(tern_hub *hub, msg *m) {
  msg_ref *r = msg_ref_of(m);
  member *mb = r->mb;
  if (!mb) {
    return;
  }
  int was_head = mb->out == m;
  if (r->mnext == m) {
    mb->out = NULL;
  } else {
    msg_ref_of(r->mprev)->mnext = r->mnext;
    msg_ref_of(r->mnext)->mprev = r->mprev;
    if (was_head) {
      mb->out = r->mnext;
    }
  }
  r->mb = NULL;
  r->mprev = r->mnext = NULL;
  if (was_head && hub->persist && !hub->loading) {
    persist_sub_cursor(hub, mb);
  }
}

void topic_msg_sent(msg *m) {
  msg_ref *r = msg_ref_of(m);
  if (!r->mb) {
    return;
  }
  topic *t = r->mb->slot->topic;
  if (r->offset >= t->first && r->offset < t->end) {
    ++log_at(t, r->offset)->sent;
  }
}

void topic_msg_acked(tern_hub *hub, msg *m) {
  (void)hub;
  msg_ref *r = msg_ref_of(m);
  if (!r->mb) {
    return;
  }
  topic *t = r->mb->slot->topic;
  if (r->offset >= t->first && r->offset < t->end) {
    ++log_at(t, r->offset)->acked;
  }
}

/* Removes |mb|: its pending per-send messages are discarded, those in
   flight go on without it.  What it lost and did not tell, as of |now|,
   stays with its session (s->tp->lost), to be told; TERN_TSTAMP_NONE when
   the session goes too. */
static void member_leave(tern_hub *hub, member *mb, int store,
                         tern_tstamp now) {
  session *s = mb->session;
  topic *t = mb->slot->topic;
  uint32_t lost = now != TERN_TSTAMP_NONE ? member_losses(mb, now) : 0;
  while (mb->out) {
    msg *m = mb->out;
    if (!m->conn && m->session) {
      session_discard(hub, m, 0, 0); /* leaves mb->out on the way */
    } else {
      topic_msg_leave(hub, m);
    }
  }
  member **pp = &s->tp->members;
  while (*pp != mb) {
    pp = &(*pp)->s_next;
  }
  *pp = mb->s_next;
  tlist_unlink(t, mb, s->nconns != 0);
  if (store && hub->persist && !hub->loading) {
    persist_sub_gone(hub, mb);
  }
  slot_drop(hub, mb->slot);
  --t->nmembers;
  --hub->stats.members;
  member_put(hub, mb);
  if (lost) {
    uint64_t v = (uint64_t)s->tp->lost + lost;
    s->tp->lost = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    if (hub->persist && !hub->loading) {
      persist_drops(hub, s); /* its "S" record carries them now */
    }
  } else if (now != TERN_TSTAMP_NONE) {
    topic_session_trim(hub, s);
  }
}

int topic_session_tp(tern_hub *hub, session *s) {
  if (!s->tp) {
    s->tp = mem_malloc(&hub->mem, sizeof(stopics));
    if (!s->tp) {
      return TERN_ERR_NOMEM;
    }
    memset(s->tp, 0, sizeof(stopics));
  }
  return 0;
}

uint32_t topic_told_retention(const session *s) {
  uint64_t n = 0;
  for (const conn *c = session_conns(s); c; c = c->session_next) {
    n += c->aux ? c->aux->told_retention : 0;
  }
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

void topic_session_trim(tern_hub *hub, session *s) {
  stopics *tp = s->tp;
  if (tp && !tp->members && !tp->psubs && !tp->lost && !tp->pol &&
      !topic_told_retention(s)) {
    mem_free(&hub->mem, tp);
    s->tp = NULL;
  }
}

/* ---- restoring (h-tpersist) ------------------------------------------------ */

/* 1 when the message at |tm| passes |f| (its attrs decoded again from the
   stored tail); a placeholder (no tail) or an undecodable tail never
   does. */
static int restored_match(tern_hub *hub, const tmsg *tm, const filter *f) {
  wire_msg w;
  if (tm->pl->taillen == 0 ||
      persist_decode_tail(hub, tm->pl->tail, tm->pl->taillen, &w) != 0) {
    return 0;
  }
  filter_attr attrs[TERN_MAX_ATTRS];
  for (size_t i = 0; i < w.nattrs; ++i) {
    attrs[i].key = w.attrs[i].key;
    attrs[i].keylen = w.attrs[i].keylen;
    attrs[i].value = w.attrs[i].value;
    attrs[i].valuelen = w.attrs[i].valuelen;
  }
  return filter_match(f, attrs, w.nattrs);
}

int topic_member_restore(tern_hub *hub, topic *t, session *s,
                         const char *ftext, size_t flen, uint64_t cursor,
                         uint32_t lost) {
  if (member_of(s, t)) {
    return TERN_ERR_STORE;
  }
  if (topic_session_tp(hub, s) != 0) {
    return TERN_ERR_NOMEM; /* an empty s->tp is freed with the session */
  }
  ifilter *flt = NULL;
  if (ftext) {
    int rv = filter_intern(hub, ftext, flen, &flt, NULL);
    if (rv != 0) {
      return rv == TERN_ERR_NOMEM ? rv : TERN_ERR_STORE;
    }
  }
  fslot *sl = slot_find(t, flt);
  if (!sl) {
    filter_release(hub, flt);
    return TERN_ERR_LIMIT;
  }
  if (member_reserve(hub, 1) != 0) {
    filter_release(hub, flt);
    return TERN_ERR_NOMEM;
  }
  if (flt && sl->flt != flt) {
    slot_take(hub, t, sl, flt);
    uint32_t i = (uint32_t)(sl - t->slots);
    for (uint64_t o = t->first; o < t->end; ++o) {
      tmsg *tm = log_at(t, o);
      if (restored_match(hub, tm, flt->f)) {
        tm->match |= (uint64_t)1 << i;
        ++sl->matched;
        sl->tail = o + 1;
      }
    }
  }
  member *mb = member_join(hub, t, s, sl);
  filter_release(hub, flt); /* the slot holds its own reference */
  if (cursor > t->end) {
    cursor = t->end;
  }
  mb->lost = lost;
  if (cursor < t->first && sl != &t->slots[0]) {
    /* Which of the discarded messages its filter matched is gone with
       them: all count, so that none is missed (man tern_store). */
    uint64_t n = (uint64_t)lost + (t->first - cursor);
    mb->lost = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    cursor = t->first;
  }
  /* Unfiltered, behind retention: member_catch_up counts first - cursor
     when the member next looks, as it would have without the restart. */
  mb->next_off = cursor;
  uint32_t i = (uint32_t)(sl - t->slots);
  uint32_t ahead = 0;
  for (uint64_t o = cursor > t->first ? cursor : t->first; o < t->end; ++o) {
    ahead += (uint32_t)((log_at(t, o)->match >> i) & 1);
  }
  mb->consumed = sl->matched - ahead;
  return 0;
}

static void move_list(topic *t, member *mb, int online) {
  tlist_unlink(t, mb, !online);
  tlist_push(t, mb, online, 0);
}

void topic_session_online(tern_hub *hub, session *s) {
  (void)hub;
  for (member *mb = session_members(s); mb; mb = mb->s_next) {
    move_list(mb->slot->topic, mb, 1);
  }
}

void topic_session_offline(tern_hub *hub, session *s) {
  (void)hub;
  for (member *mb = session_members(s); mb; mb = mb->s_next) {
    move_list(mb->slot->topic, mb, 0);
  }
}

static void psub_free(tern_hub *hub, psub *p) {
  if (p->h_prev) {
    p->h_prev->h_next = p->h_next;
  } else {
    hub->psubs = p->h_next;
  }
  if (p->h_next) {
    p->h_next->h_prev = p->h_prev;
  }
  filter_release(hub, p->flt);
  mem_free(&hub->mem, p);
}

void topic_session_gone(tern_hub *hub, session *s) {
  int store = hub->persist && !hub->loading;
  while (s->tp->members) {
    member_leave(hub, s->tp->members, store, TERN_TSTAMP_NONE);
  }
  while (s->tp->psubs) {
    psub *p = s->tp->psubs;
    s->tp->psubs = p->s_next;
    if (store) {
      persist_psub_gone(hub, p);
    }
    psub_free(hub, p);
  }
  mem_free(&hub->mem, s->tp);
  s->tp = NULL;
}

void topic_hub_free(tern_hub *hub) {
  while (hub->topic_list) {
    topic_free(hub, hub->topic_list, 0, TERN_TSTAMP_NONE);
  }
  while (hub->psubs) {
    psub_free(hub, hub->psubs);
  }
  hmap_free(&hub->topics, &hub->mem);
  member_pool_free(hub);
}

/* ---- publish -------------------------------------------------------------- */

int tern_topic_publish_versioned(tern_topic *tt, uint32_t desc_version,
                                 const tern_msg_desc *desc, tern_tstamp now,
                                 uint64_t *offset) {
  topic *t = (topic *)tt;
  size_t dlen = layout_msg_desc(desc_version);
  if (!t || !desc || dlen == 0) {
    return TERN_ERR_INVALID;
  }
  tern_hub *hub = t->hub;
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  memcpy(&d, desc, dlen);
  int rv = session_check_desc(hub, &d);
  if (rv != 0) {
    return rv;
  }
  if (d.flags & TERN_MSG_SYNC) {
    return TERN_ERR_INVALID;
  }
  if (t->opt.max_bytes && d.payloadlen > t->opt.max_bytes) {
    return TERN_ERR_TOO_LARGE;
  }
  const uint8_t *id = d.id;
  size_t idlen = d.idlen;
  if (!idlen) {
    id = session_next_id(hub);
    idlen = sizeof(hub->genid);
  }
  /* What can fail first: the log's room and the payload. */
  if (log_grow(hub, t) != 0) {
    return TERN_ERR_NOMEM;
  }
  spayload *p;
  if (payload_new(hub, &p, &d, id, idlen) != 0) {
    return TERN_ERR_NOMEM;
  }
  /* Retention, counting the new message in. */
  topic_evict_due(hub, t, now);
  while (t->first < t->end &&
         ((t->opt.max_messages && t->end - t->first >= t->opt.max_messages) ||
          (t->opt.max_bytes && t->bytes + d.payloadlen > t->opt.max_bytes))) {
    evict_head(hub, t);
  }
  tmsg *tm = log_at(t, t->end);
  tm->pl = p;
  p->serial = tm->serial = ++hub->next_serial;
  tern_duration ttl = d.ttl ? d.ttl : hub->set.default_ttl;
  tm->expiry = TERN_TSTAMP_NONE;
  if (ttl) {
    tm->expiry =
        ttl > TERN_TSTAMP_NONE - 1 - now ? TERN_TSTAMP_NONE - 1 : now + ttl;
  }
  tm->published = now;
  tm->priority = (uint8_t)d.priority;
  tm->sent = tm->acked = 0;
  tm->match = 1;
  uint64_t subscribed = t->slots[0].nmembers;
  if (t->nslots > 1) {
    filter_attr attrs[TERN_MAX_ATTRS];
    for (size_t i = 0; i < d.nattrs; ++i) {
      attrs[i].key = (const uint8_t *)d.attrs[i].key;
      attrs[i].keylen = strlen(d.attrs[i].key);
      attrs[i].value = (const uint8_t *)d.attrs[i].value;
      attrs[i].valuelen = strlen(d.attrs[i].value);
    }
    for (uint32_t i = 1; i < t->nslots; ++i) {
      fslot *sl = &t->slots[i];
      if (sl->flt && filter_match(sl->flt->f, attrs, d.nattrs)) {
        tm->match |= (uint64_t)1 << i;
        ++sl->matched;
        sl->tail = t->end + 1;
        subscribed += sl->nmembers;
      }
    }
  }
  tm->subscribed = subscribed > UINT32_MAX ? UINT32_MAX : (uint32_t)subscribed;
  uint64_t off = t->end++;
  t->bytes += d.payloadlen;
  hub->stats.topic_bytes += d.payloadlen;
  ++hub->stats.topic_messages;
  if (hub->persist && !hub->loading && !(d.flags & TERN_MSG_VOLATILE)) {
    persist_topic_msg(hub, t, off);
  }
  /* Fan out: the members with a connection get to write. */
  for (member *mb = t->online; mb; mb = mb->t_next) {
    if ((tm->match >> (mb->slot - t->slots)) & 1) {
      session_notify(hub, mb->session);
    }
  }
  if (offset) {
    *offset = off;
  }
  return 0;
}

/* ---- subscribe ------------------------------------------------------------ */

static int check_key(const uint8_t *key, size_t keylen) {
  if (!key || keylen == 0) {
    return TERN_ERR_INVALID;
  }
  return keylen > TERN_MAX_SESSION_KEY ? TERN_ERR_TOO_LARGE : 0;
}

tern_ssize tern_hub_subscribe(tern_hub *hub, const uint8_t *key,
                              size_t keylen, const char *pattern,
                              const char *ftext, tern_tstamp now,
                              size_t *errpos) {
  if (!hub || !pattern) {
    return TERN_ERR_INVALID;
  }
  int rv = check_key(key, keylen);
  if (rv != 0) {
    return rv;
  }
  size_t patlen = name_len(pattern, TERN_MAX_TOPIC + 1);
  if (pattern_check((const uint8_t *)pattern, patlen, errpos) != 0) {
    return TERN_ERR_INVALID;
  }
  size_t flen = ftext ? name_len(ftext, TERN_MAX_FILTER + 1) : 0;
  if (ftext) {
    rv = filter_check(ftext, flen, errpos, NULL);
    if (rv != 0) {
      return rv;
    }
  }
  int exact = pattern_is_exact((const uint8_t *)pattern, patlen);
  topic *only = NULL;
  if (exact) {
    only = topic_find(hub, pattern, patlen);
    if (!only) {
      return TERN_ERR_NOT_FOUND;
    }
  }
  /* Everything that can fail, before any change. */
  uint64_t hash = session_hash(hub, key, keylen);
  session *s = session_find(hub, key, keylen, hash);
  ifilter *flt = NULL;
  if (ftext) {
    rv = filter_intern(hub, ftext, flen, &flt, errpos);
    if (rv != 0) {
      return rv;
    }
  }
  size_t ntopics = 0;
  for (topic *t = exact ? only : hub->topic_list; t;
       t = exact ? NULL : t->all_next) {
    if (!exact && !pattern_match((const uint8_t *)pattern, patlen,
                                 (const uint8_t *)t->name, t->namelen)) {
      continue;
    }
    if (!slot_find(t, flt)) {
      filter_release(hub, flt);
      return TERN_ERR_LIMIT;
    }
    ++ntopics;
  }
  psub *p = NULL;
  psub *old = NULL;
  if (!exact) {
    for (old = s ? session_psubs(s) : NULL; old; old = old->s_next) {
      if (old->patlen == patlen && memcmp(old->pattern, pattern, patlen) == 0) {
        break;
      }
    }
    if (!old) {
      p = mem_malloc(&hub->mem, sizeof(psub) + patlen + 1);
      if (!p) {
        filter_release(hub, flt);
        return TERN_ERR_NOMEM;
      }
    }
  }
  stopics *tp = NULL; /* the session's, made before anything changes */
  if (!(s && s->tp)) {
    tp = mem_malloc(&hub->mem, sizeof(stopics));
  }
  if ((!tp && !(s && s->tp)) || member_reserve(hub, ntopics) != 0) {
    mem_free(&hub->mem, tp);
    mem_free(&hub->mem, p);
    filter_release(hub, flt);
    return TERN_ERR_NOMEM;
  }
  if (!s) {
    rv = session_new(hub, &s, key, keylen, hash, now);
    if (rv != 0) {
      mem_free(&hub->mem, tp);
      mem_free(&hub->mem, p);
      filter_release(hub, flt);
      return rv;
    }
  }
  if (tp) {
    memset(tp, 0, sizeof(stopics));
    s->tp = tp;
  }
  /* Commit. */
  int store = hub->persist && !hub->loading;
  if (old) {
    filter_release(hub, old->flt);
    old->flt = flt;
    if (flt) {
      ++flt->refs;
    }
    if (store) {
      persist_psub(hub, old);
    }
  } else if (p) {
    p->session = s;
    p->flt = flt;
    if (flt) {
      ++flt->refs;
    }
    p->patlen = (uint16_t)patlen;
    memcpy(p->pattern, pattern, patlen);
    p->pattern[patlen] = '\0';
    p->s_next = s->tp->psubs;
    s->tp->psubs = p;
    p->h_prev = NULL;
    p->h_next = hub->psubs;
    if (hub->psubs) {
      hub->psubs->h_prev = p;
    }
    hub->psubs = p;
    if (store) {
      persist_psub(hub, p);
    }
  }
  for (topic *t = exact ? only : hub->topic_list; t;
       t = exact ? NULL : t->all_next) {
    if (!exact && !pattern_match((const uint8_t *)pattern, patlen,
                                 (const uint8_t *)t->name, t->namelen)) {
      continue;
    }
    member *mb = member_of(s, t);
    if (mb) {
      member_reslot(hub, mb, flt);
    } else {
      fslot *sl = slot_find(t, flt);
      slot_take(hub, t, sl, flt);
      mb = member_join(hub, t, s, sl);
    }
    if (store) {
      persist_sub(hub, mb);
    }
  }
  filter_release(hub, flt); /* the psub and slots hold their own */
  topic_session_trim(hub, s); /* a wildcard matching nothing, no psub */
  return (tern_ssize)ntopics;
}

tern_ssize tern_hub_unsubscribe(tern_hub *hub, const uint8_t *key,
                                size_t keylen, const char *pattern,
                                tern_tstamp now) {
  if (!hub || !pattern || check_key(key, keylen) != 0) {
    return TERN_ERR_INVALID;
  }
  size_t patlen = name_len(pattern, TERN_MAX_TOPIC + 1);
  if (pattern_check((const uint8_t *)pattern, patlen, NULL) != 0) {
    return TERN_ERR_INVALID;
  }
  session *s = session_find(hub, key, keylen, session_hash(hub, key, keylen));
  if (!s || !s->tp) {
    return TERN_ERR_NOT_FOUND;
  }
  int store = hub->persist && !hub->loading;
  int found = 0;
  for (psub **pp = &s->tp->psubs; *pp; pp = &(*pp)->s_next) {
    psub *p = *pp;
    if (p->patlen == patlen && memcmp(p->pattern, pattern, patlen) == 0) {
      *pp = p->s_next;
      if (store) {
        persist_psub_gone(hub, p);
      }
      psub_free(hub, p);
      found = 1;
      break;
    }
  }
  tern_ssize n = 0;
  member *mb = s->tp->members;
  while (mb) {
    member *next = mb->s_next;
    const topic *t = mb->slot->topic;
    if (pattern_match((const uint8_t *)pattern, patlen,
                      (const uint8_t *)t->name, t->namelen)) {
      member_leave(hub, mb, store, now);
      ++n;
    }
    mb = next;
  }
  if (!found && n == 0) {
    return TERN_ERR_NOT_FOUND;
  }
  topic_session_trim(hub, s);
  session_notify(hub, s); /* a connection may have nothing left to write */
  return n;
}

/* ---- receipts and info ---------------------------------------------------- */

int tern_topic_get_receipt(const tern_topic *tt, uint64_t offset,
                           tern_receipt *receipt, size_t size) {
  const topic *t = (const topic *)tt;
  if (!t || !receipt) {
    return TERN_ERR_INVALID;
  }
  if (offset < t->first || offset >= t->end) {
    return TERN_ERR_NOT_FOUND;
  }
  const tmsg *tm = log_at(t, offset);
  tern_receipt r;
  r.offset = offset;
  r.subscribed = tm->subscribed;
  r.sent = tm->sent;
  r.acked = tm->acked;
  layout_copy_out(receipt, size, &r, sizeof(r));
  return 0;
}

void tern_topic_get_info(const tern_topic *tt, tern_topic_info *info,
                         size_t size) {
  const topic *t = (const topic *)tt;
  tern_topic_info i;
  memset(&i, 0, sizeof(i));
  if (t) {
    i.name = t->name;
    i.first_offset = t->first;
    i.end_offset = t->end;
    i.messages = t->end - t->first;
    i.bytes = t->bytes;
    i.members = t->nmembers;
  }
  if (info) {
    layout_copy_out(info, size, &i, sizeof(i));
  }
}
