/*
 * Sessions: lookup by key, the pending queues (priority, collapse, dedup,
 * overflow rules), what happens to a message when it leaves (acked, expired,
 * collapsed, evicted, dead), attaching connections and resuming a stream.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/topic.h"

#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define ALWAYS_INLINE inline
#endif

/* ---- lookup ------------------------------------------------------------- */

uint64_t session_hash(const tern_hub *hub, const uint8_t *key, size_t keylen) {
  return hash_bytes(hub->hash_key, 0, key, keylen);
}

session *session_find(tern_hub *hub, const uint8_t *key, size_t keylen,
                      uint64_t hash) {
  for (hnode *n = hmap_bucket(&hub->sessions, hash); n; n = n->next) {
    session *s = (session *)n;
    if (n->hash == hash && s->keylen == keylen &&
        key_eq(s->key, key, keylen)) {
      return s;
    }
  }
  return NULL;
}

tern_session *tern_hub_find_session(tern_hub *hub, const uint8_t *key,
                                    size_t keylen) {
  if (!hub || !key || keylen == 0 || keylen > TERN_MAX_SESSION_KEY) {
    return NULL;
  }
  return (tern_session *)session_find(hub, key, keylen,
                                      session_hash(hub, key, keylen));
}

void tern_session_get_info(const tern_session *ts, tern_session_info *info,
                           size_t size) {
  const session *s = (const session *)ts;
  tern_session_info i;
  memset(&i, 0, sizeof(i));
  if (s) {
    i.key = s->key;
    i.keylen = s->keylen;
    i.pending = s->npending;
    i.inflight = (uint32_t)(session_nmsgs(s) - s->npending);
    i.pending_bytes = s->bytes;
    i.nconns = s->nconns;
    i.next_seq = s->next_seq;
    i.dropped = s->dropped_total;
    i.expires = session_ttl_at(s);
    i.user_data = s->user_data;
  }
  if (info) {
    layout_copy_out(info, size, &i, sizeof(i));
  }
}

int session_new(tern_hub *hub, session **ps, const uint8_t *key,
                size_t keylen, uint64_t hash, tern_tstamp now) {
  if (hub->set.max_sessions && !hub->loading &&
      hub->sessions.len >= hub->set.max_sessions) {
    return TERN_ERR_LIMIT;
  }
  session *s = mem_malloc(&hub->mem, sizeof(session) + keylen);
  if (!s) {
    return TERN_ERR_NOMEM;
  }
  if (hub_reserve_timer(hub) != 0) {
    mem_free(&hub->mem, s);
    return TERN_ERR_NOMEM;
  }
  memset(s, 0, sizeof(*s));
  s->link.hash = hash;
  s->uid = ++hub->next_uid;
  s->next_seq = hub->seq_floor + 1;
  s->keylen = (uint8_t)keylen;
  memcpy(s->key, key, keylen);
  s->timer.kind = TIMER_SESSION;
  s->u.ttl_at = now + hub->set.session_ttl;
  s->msg_due = TERN_TSTAMP_NONE;
  if (hub->persist && !hub->loading &&
      persist_session(hub, s, s->next_seq + 2 * SEQ_BLOCK) != 0) {
    hub_release_timer(hub);
    --hub->next_uid;
    mem_free(&hub->mem, s);
    return TERN_ERR_NOMEM;
  }
  hmap_insert(&hub->sessions, &hub->mem, &s->link);
  heap_arm(&hub->timers, &s->timer, s->u.ttl_at);
  ++hub->stats.sessions_created;
  ++hub->stats.sessions;
  *ps = s;
  return 0;
}

/* session_arm puts the session's timer at its earliest deadline. */
void session_arm(tern_hub *hub, session *s) {
  tern_tstamp d = session_ttl_at(s);
  d = d < s->msg_due ? d : s->msg_due;
  if (session_policy(s)) {
    tern_tstamp pd = policy_due(s);
    d = pd < d ? pd : d;
  }
  if (d == TERN_TSTAMP_NONE) {
    heap_disarm(&hub->timers, &s->timer);
  } else if (!timer_armed(&s->timer) || d != s->timer.deadline) {
    heap_arm(&hub->timers, &s->timer, d);
  }
}

/* ---- leaving ------------------------------------------------------------ */

/* Unlinks |m| from wherever it is in its session, without freeing it. */
static void unlink_msg(tern_hub *hub, msg *m) {
  session *s = m->session;
  if (m->conn) {
    mlist_remove(&m->conn->inflight, m);
    --m->conn->ninflight;
    --hub->stats.inflight;
    m->conn = NULL;
  } else {
    mlist_remove(&s->queue[m->priority], m);
    --s->npending;
  }
  collapse_unindex(hub, m);
  if (m->flags & MSG_FALLBACK) {
    policy_fallback_gone(hub, m, 0);
  }
  if ((m->flags & MSG_STORED) && hub->persist) {
    persist_message_gone(hub, m);
  }
  if (m->flags & MSG_TOPIC) {
    topic_msg_leave(hub, m);
  }
  s->bytes -= m->payloadlen;
  --hub->stats.messages;
  hub->stats.message_bytes -= m->payloadlen;
  m->session = NULL;
  m->flags |= MSG_GONE;
}

void session_discard(tern_hub *hub, msg *m, int reason, int ev) {
  session *s = m->session;
  if (ev == TERN_EV_DEAD) {
    /* a duty event: its caller reserved the room */
    event_duty(hub, ev, reason, NULL, s->key, s->keylen, msg_id(m), m->idlen,
               NULL, 0, m->seq, 0);
  } else if (ev && msg_traced(hub, m)) {
    event_msg(hub, ev, reason, m, NULL, NULL, 0);
  }
  if (ev == TERN_EV_ACKED && (m->flags & MSG_TOPIC)) {
    topic_msg_acked(hub, m);
  }
  if (ev == TERN_EV_ACKED && (m->flags & MSG_FALLBACK)) {
    policy_fallback_gone(hub, m, 1);
  }
  if (reason) {
    ++s->dropped[reason - 1];
    s->dropped_total += s->dropped_total != UINT32_MAX;
    if (hub->persist) {
      /* Before the message's DEL: a store that keeps the DEL keeps the
         count, so a restart tells the loss. */
      persist_drops(hub, s);
    }
  }
  unlink_msg(hub, m);
  msg_unref(hub, m);
  if (reason) {
    session_notify(hub, s);
  }
}

void collapse_unindex(tern_hub *hub, msg *m) {
  if (m->cklen == 0) {
    return;
  }
  /* Only the newest message with a key is indexed; older ones point
     nowhere (collapse.next is the map's chain, so test membership by
     walking its bucket). */
  for (hnode *n = hmap_bucket(&hub->collapse_index, m->collapse.hash); n;
       n = n->next) {
    if (n == &m->collapse) {
      hmap_remove(&hub->collapse_index, n);
      return;
    }
  }
}

static msg *collapse_find(tern_hub *hub, const session *s, const uint8_t *ck,
                          size_t cklen, uint64_t hash);

void collapse_restore(tern_hub *hub, msg *m) {
  msg *other = collapse_find(hub, m->session, msg_ck(m), m->cklen,
                             m->collapse.hash);
  if (other && other->serial > m->serial) {
    /* m had been superseded before the restart */
    unlink_msg(hub, m);
    msg_unref(hub, m);
    return;
  }
  if (other) {
    collapse_unindex(hub, other);
    unlink_msg(hub, other);
    msg_unref(hub, other);
  }
  hmap_insert(&hub->collapse_index, &hub->mem, &m->collapse);
}

static msg *collapse_find(tern_hub *hub, const session *s, const uint8_t *ck,
                          size_t cklen, uint64_t hash) {
  for (hnode *n = hmap_bucket(&hub->collapse_index, hash); n; n = n->next) {
    msg *m = (msg *)((char *)n - offsetof(msg, collapse));
    if (n->hash == hash && m->session == s && m->cklen == cklen &&
        memcmp(msg_ck(m), ck, cklen) == 0) {
      return m;
    }
  }
  return NULL;
}

/* ---- dedup -------------------------------------------------------------- */

/* Entries past their window may linger until dedup_expire runs; they no
   longer count. */
static dedup *dedup_find(tern_hub *hub, uint64_t uid, const uint8_t *id,
                         size_t idlen, uint64_t hash, tern_tstamp now) {
  for (hnode *n = hmap_bucket(&hub->dedup_index, hash); n; n = n->next) {
    dedup *e = (dedup *)n;
    if (n->hash == hash && e->uid == uid && e->idlen == idlen &&
        e->expires > now && memcmp(e->id, id, idlen) == 0) {
      return e;
    }
  }
  return NULL;
}

void dedup_expire(tern_hub *hub, tern_tstamp now) {
  while (hub->dedup_head && hub->dedup_head->expires <= now) {
    dedup *e = hub->dedup_head;
    hub->dedup_head = e->fifo_next;
    if (!hub->dedup_head) {
      hub->dedup_tail = NULL;
    }
    hmap_remove(&hub->dedup_index, &e->link);
    if (e->stored && hub->persist) {
      persist_dedup_gone(hub, e->serial);
    }
    mem_free(&hub->mem, e);
  }
}

void dedup_forget(tern_hub *hub, const uint8_t *key, size_t keylen,
                  const uint8_t *id, size_t idlen) {
  session *s = session_find(hub, key, keylen, session_hash(hub, key, keylen));
  if (!s) {
    return;
  }
  dedup *e = dedup_find(hub, s->uid, id, idlen,
                        hash_bytes(hub->hash_key, s->uid, id, idlen), 0);
  if (!e) {
    return;
  }
  /* A rare path (a failed SYNC batch): a walk of the FIFO is fine. */
  dedup **pp = &hub->dedup_head;
  dedup *prev = NULL;
  while (*pp != e) {
    prev = *pp;
    pp = &(*pp)->fifo_next;
  }
  *pp = e->fifo_next;
  if (hub->dedup_tail == e) {
    hub->dedup_tail = prev;
  }
  hmap_remove(&hub->dedup_index, &e->link);
  if (e->stored && hub->persist) {
    persist_dedup_gone(hub, e->serial);
  }
  mem_free(&hub->mem, e);
}

int dedup_restore(tern_hub *hub, session *s, const uint8_t *id, size_t idlen,
                  tern_tstamp expires, uint64_t serial) {
  dedup *e = mem_malloc(&hub->mem, sizeof(dedup) + idlen);
  if (!e) {
    return TERN_ERR_NOMEM;
  }
  e->link.hash = hash_bytes(hub->hash_key, s->uid, id, idlen);
  e->uid = s->uid;
  e->stored = 1;
  e->serial = serial;
  e->expires = expires;
  e->idlen = (uint8_t)idlen;
  memcpy(e->id, id, idlen);
  hmap_insert(&hub->dedup_index, &hub->mem, &e->link);
  /* Keep the FIFO in expiry order; records mostly come in log order, so
     the place is usually at the tail. */
  dedup **pp = &hub->dedup_head;
  if (hub->dedup_tail && hub->dedup_tail->expires <= expires) {
    pp = &hub->dedup_tail->fifo_next;
  } else {
    while (*pp && (*pp)->expires <= expires) {
      pp = &(*pp)->fifo_next;
    }
  }
  e->fifo_next = *pp;
  *pp = e;
  if (!e->fifo_next) {
    hub->dedup_tail = e;
  }
  return 0;
}

/* ---- messages ----------------------------------------------------------- */

/* A message with a content type or attributes: its tail goes through a
   wire_msg.  Out of line, so that the plain path keeps a small frame. */
static void fill_wire(wire_msg *w, const tern_msg_desc *d, const uint8_t *id,
                      size_t idlen) {
  w->seq = 0;
  w->ttl_ms = 0;
  w->content_type = NULL;
  w->content_typelen = 0;
  w->priority = d->priority;
  w->id = id;
  w->idlen = idlen;
  w->collapse_key = d->collapse_key;
  w->collapse_keylen = d->collapse_key ? d->collapse_keylen : 0;
  if (d->content_type) {
    w->content_type = (const uint8_t *)d->content_type;
    w->content_typelen = strlen(d->content_type);
  }
  w->nattrs = d->nattrs;
  for (size_t i = 0; i < d->nattrs; ++i) {
    w->attrs[i].key = (const uint8_t *)d->attrs[i].key;
    w->attrs[i].keylen = strlen(d->attrs[i].key);
    w->attrs[i].value = (const uint8_t *)d->attrs[i].value;
    w->attrs[i].valuelen = strlen(d->attrs[i].value);
  }
  w->payload = d->payload;
  w->payloadlen = d->payloadlen;
}

static size_t rich_tail(uint8_t *out, const tern_msg_desc *d,
                        const uint8_t *id, size_t idlen) {
  wire_msg w;
  fill_wire(&w, d, id, idlen);
  return out ? wire_msg_tail_encode(out, &w) : wire_msg_tail_size(&w);
}

/* msg_new builds a message from a validated descriptor: its wire tail
   (flags, id, collapse key, content type, attrs, payload) is encoded once
   here, so each send only writes the frame head.  No side effects. */
static ALWAYS_INLINE int msg_new(tern_hub *hub, msg **pm,
                                 const tern_msg_desc *d,
            const uint8_t *id, size_t idlen, tern_tstamp expiry) {
  size_t cklen = d->collapse_key ? d->collapse_keylen : 0;
  int plain = !d->content_type && d->nattrs == 0;
  size_t taillen = plain ? wire_plain_tail_size(idlen, cklen, d->payloadlen)
                         : rich_tail(NULL, d, id, idlen);
  size_t size = sizeof(msg) + taillen + (d->cookie ? sizeof(d->cookie) : 0);
  msg *m = msg_alloc(hub, size);
  if (!m) {
    return TERN_ERR_NOMEM;
  }
  if (plain) {
    wire_plain_tail_encode(m->tail, d->priority, id, idlen, d->collapse_key,
                           cklen, d->payload, d->payloadlen);
  } else {
    rich_tail(m->tail, d, id, idlen);
  }
  /* Every field, one by one: cheaper than clearing the block first. */
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
  m->taillen = (uint32_t)taillen;
  m->payloadlen = (uint32_t)d->payloadlen;
  m->refs = 1;
  m->deliveries = 0;
  m->priority = (uint8_t)d->priority;
  m->flags = (d->flags & TERN_MSG_TRACE) ? MSG_TRACE : 0;
  if (d->cookie) {
    memcpy(m->tail + taillen, &d->cookie, sizeof(d->cookie));
    m->flags |= MSG_COOKIE;
  }
  m->idlen = (uint8_t)idlen;
  /* The id follows the flags byte and its own length varint. */
  m->id_off = (uint8_t)(1 + wire_varint_len(idlen));
  m->cklen = (uint8_t)cklen;
  m->ck_off = cklen ? (uint8_t)(m->id_off + idlen + wire_varint_len(cklen))
                    : 0;
  *pm = m;
  return 0;
}


/* ---- queues ------------------------------------------------------------- */

msg *session_pop_pending(session *s) {
  for (int p = TERN_PRIO_HIGH; p >= TERN_PRIO_LOW; --p) {
    msg *m = s->queue[p];
    if (m) {
      mlist_remove(&s->queue[p], m);
      --s->npending;
      return m;
    }
  }
  return NULL;
}

void session_return(tern_hub *hub, session *s, msg *m) {
  if (m->flags & MSG_SUPERSEDED) {
    /* A newer message with the same key was published while this one was
       in flight: sending this one again could reach the app after it. */
    ++hub->stats.collapsed;
    ++s->npending; /* session_discard undoes a pending message */
    m->conn = NULL;
    mlist_push(&s->queue[m->priority], m);
    if (msg_traced(hub, m)) {
      /* The newest with the key, unless it is gone already. */
      const msg *newer =
          collapse_find(hub, s, msg_ck(m), m->cklen, m->collapse.hash);
      event_msg(hub, TERN_EV_COLLAPSED, 0, m, NULL,
                newer ? msg_id(newer) : NULL, newer ? newer->idlen : 0);
    }
    session_discard(hub, m, 0, 0);
    return;
  }
  m->conn = NULL;
  mlist_insert_sorted(&s->queue[m->priority], m);
  ++s->npending;
}

int session_has_output(const session *s) {
  return s->npending || session_has_drops(s);
}

/* ---- connections -------------------------------------------------------- */

void session_attach(tern_hub *hub, session *s, conn *c) {
  c->session = s;
  c->stream = ++s->stream_serial;
  c->session_next = session_conns(s);
  s->u.conns = c;
  if (++s->nconns == 1 && s->tp) {
    topic_session_online(hub, s);
  }
  session_arm(hub, s);
}

void session_detach(tern_hub *hub, session *s, conn *c, tern_tstamp now) {
  conn **pp = &s->u.conns;
  while (*pp != c) {
    pp = &(*pp)->session_next;
  }
  *pp = c->session_next;
  c->session_next = NULL;
  c->session = NULL;
  if (--s->nconns == 0) {
    s->u.ttl_at = now + hub->set.session_ttl; /* the union's other half */
  }
  if (c->aux && (c->aux->told[0] | c->aux->told[1] | c->aux->told[2])) {
    /* Notices that may have died with the connection are told again. */
    for (int r = 0; r < 3; ++r) {
      s->dropped[r] += c->aux->told[r];
      c->aux->told[r] = 0;
    }
    session_notify(hub, s);
  }
  if (c->aux && c->aux->told_retention) {
    topic_lost_return(s, c->aux->told_retention);
    c->aux->told_retention = 0;
    session_notify(hub, s);
  }
  while (c->inflight) {
    msg *m = c->inflight;
    mlist_remove(&c->inflight, m);
    --c->ninflight;
    --hub->stats.inflight;
    session_return(hub, s, m);
  }
  if (s->nconns == 0) {
    session_arm(hub, s);
    if (s->tp) {
      topic_session_offline(hub, s);
    }
  }
  if (s->npending || (s->tp && topic_has_output(hub, s))) {
    session_notify(hub, s);
  }
}

/*
 * Finds the stream (the receiver's earlier connection) that a HELLO's
 * last_seq refers to.  The message sent with that seq names it when it is
 * still held (in flight or returned).  When it is gone (acked, expired,
 * evicted, or sent again with a new seq), the unacked messages with seq <=
 * last_seq name it only if the session never had another stream: that some
 * one stream holds all of them does not mean it sent last_seq (the
 * receiver's own stream may hold nothing any more, while a stale one still
 * holds what never arrived).  Otherwise nothing is acked (a re-send is
 * safe, a loss is not).
 */
static void note(uint64_t seq, uint64_t last_seq, uint32_t stream,
                 uint32_t *exact, uint32_t *only, int *streams) {
  if (seq == 0 || seq > last_seq) {
    return;
  }
  if (seq == last_seq) {
    *exact = stream;
  }
  if (*streams == 0 || (*streams == 1 && *only != stream)) {
    *only = stream;
    ++*streams;
  }
}

static int find_stream(const session *s, uint64_t last_seq, uint32_t *stream) {
  uint32_t exact = 0, only = 0;
  int streams = 0;
  for (const conn *c = session_conns(s); c; c = c->session_next) {
    const msg *m = c->inflight;
    if (m && m->seq <= last_seq) {
      do {
        note(m->seq, last_seq, c->stream, &exact, &only, &streams);
        m = m->next;
      } while (m != c->inflight);
    }
  }
  for (int p = 0; p < 3; ++p) {
    const msg *m = s->queue[p];
    if (!m) {
      continue;
    }
    do {
      note(m->seq, last_seq, m->stream, &exact, &only, &streams);
      m = m->next;
    } while (m != s->queue[p]);
  }
  if (exact) {
    *stream = exact;
    return 1;
  }
  if (streams == 1 && s->stream_serial == 1) {
    *stream = only;
    return 1;
  }
  return 0;
}

int session_find_stream(const session *s, uint64_t seq, uint32_t *stream) {
  return find_stream(s, seq, stream);
}

void session_resume(tern_hub *hub, session *s, uint64_t last_seq,
                    tern_tstamp now) {
  uint32_t stream;
  if (last_seq == 0 || last_seq >= s->next_seq ||
      !find_stream(s, last_seq, &stream)) {
    /* Nothing of the receiver's earlier stream up to last_seq is held, or
       it cannot be told apart from another receiver's. */
    return;
  }
  /* The receiver's previous connection, if still attached, is stale: ack
     what it received and close it so the rest is sent again at once. */
  for (conn *c = session_conns(s); c; c = c->session_next) {
    if (c->stream == stream) {
      conn_ack(hub, c, last_seq);
      conn_close(c, TERN_GOAWAY_REPLACED, 0, 0, 0, now);
      break;
    }
  }
  for (int p = 0; p < 3; ++p) {
    msg *m = s->queue[p];
    while (m) {
      msg *next = m->next == s->queue[p] ? NULL : m->next;
      if (m->seq && m->seq <= last_seq && m->stream == stream) {
        ++hub->stats.acked;
        session_discard(hub, m, 0, TERN_EV_ACKED);
      }
      m = next;
    }
  }
}

/* ---- expiry ------------------------------------------------------------- */

void session_destroy(tern_hub *hub, session *s) {
  policy_free(hub, s);
  if (s->tp) {
    topic_session_gone(hub, s);
  }
  for (int p = 0; p < 3; ++p) {
    while (s->queue[p]) {
      msg *m = s->queue[p];
      unlink_msg(hub, m);
      msg_unref(hub, m);
    }
  }
  heap_disarm(&hub->timers, &s->timer);
  hub_release_timer(hub);
  if (s->next_seq - 1 > hub->seq_floor) {
    hub->seq_floor = s->next_seq - 1;
    if (hub->persist && !hub->loading) {
      persist_epoch(hub);
    }
  }
  if (hub->persist && !hub->loading) {
    persist_session_gone(hub, s);
  }
  hmap_remove(&hub->sessions, &s->link);
  if (hub->last_session == s) {
    hub->last_session = NULL;
  }
  --hub->stats.sessions;
  mem_free(&hub->mem, s);
}

static int session_expire(tern_hub *hub, session *s) {
  /* Never shed: without room the session lives on, still due. */
  if (event_reserve(hub, 1, s->keylen) != 0) {
    return TERN_ERR_NOMEM;
  }
  evrec *e = event_duty(hub, TERN_EV_SESSION_EXPIRED, 0, NULL, s->key,
                        s->keylen, NULL, 0, NULL, 0, 0, session_nmsgs(s));
  e->cookie = (uint64_t)(uintptr_t)s->user_data; /* for the host to free */
  ++hub->stats.sessions_expired;
  session_destroy(hub, s);
  return 0;
}

/* Expires |m| if it is due; otherwise lowers |*next| to its expiry. */
static void check_expiry(tern_hub *hub, msg *m, tern_tstamp now,
                         tern_tstamp *next) {
  if (m->expiry <= now) {
    ++hub->stats.expired;
    session_discard(hub, m, TERN_DROP_EXPIRED, TERN_EV_EXPIRED);
  } else if (m->expiry < *next) {
    *next = m->expiry;
  }
}

static void expire_list(tern_hub *hub, msg **head, tern_tstamp now,
                        tern_tstamp *next) {
  msg *m = *head;
  while (m) {
    msg *after = m->next;
    int last = after == *head;
    check_expiry(hub, m, now, next);
    if (!*head) {
      return;
    }
    m = last ? NULL : after;
  }
}

int session_on_timer(tern_hub *hub, session *s, tern_tstamp now) {
  if (s->msg_due <= now) {
    /* One pass over what the session holds: expire what is due and find
       the next message deadline. */
    tern_tstamp next = TERN_TSTAMP_NONE;
    for (int p = 0; p < 3; ++p) {
      expire_list(hub, &s->queue[p], now, &next);
    }
    for (conn *c = session_conns(s); c; c = c->session_next) {
      expire_list(hub, &c->inflight, now, &next);
    }
    s->msg_due = next;
  }
  int rv = 0;
  if (session_policy(s) && policy_due(s) <= now) {
    rv = policy_on_timer(hub, s, now);
  }
  if (session_ttl_at(s) <= now && session_expire(hub, s) == 0) {
    return 0;
  }
  session_arm(hub, s);
  return session_ttl_at(s) <= now ? TERN_ERR_NOMEM : rv;
}

uint32_t session_untold(const session *s, int r) {
  uint64_t n = s->dropped[r];
  for (const conn *c = session_conns(s); c; c = c->session_next) {
    n += c->aux ? c->aux->told[r] : 0;
  }
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* ---- publish ------------------------------------------------------------ */

/* strnlen is POSIX, not C11: the core keeps to C11. */
static size_t bounded_len(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n]) {
    ++n;
  }
  return n;
}

static ALWAYS_INLINE int check_desc(const tern_hub *hub,
                                    const tern_msg_desc *d) {
  if (((size_t)d->idlen | d->collapse_keylen | d->nattrs) == 0 &&
      !d->content_type) {
    /* A plain message (most are): only the priority and the payload. */
    if ((unsigned)d->priority > TERN_PRIO_HIGH ||
        (d->payloadlen && !d->payload)) {
      return TERN_ERR_INVALID;
    }
    return d->payloadlen > hub->set.max_payload ||
                   d->payloadlen > hub->set.max_pending_bytes
               ? TERN_ERR_TOO_LARGE
               : 0;
  }
  if (d->priority < TERN_PRIO_LOW || d->priority > TERN_PRIO_HIGH ||
      (d->payloadlen && !d->payload) || (d->idlen && !d->id) ||
      (d->collapse_keylen && !d->collapse_key) || (d->nattrs && !d->attrs)) {
    return TERN_ERR_INVALID;
  }
  if (d->idlen > TERN_MAX_ID || d->collapse_keylen > TERN_MAX_COLLAPSE_KEY ||
      d->payloadlen > hub->set.max_payload ||
      d->payloadlen > hub->set.max_pending_bytes ||
      d->nattrs > TERN_MAX_ATTRS) {
    return TERN_ERR_TOO_LARGE;
  }
  if (d->content_type &&
      bounded_len(d->content_type, TERN_MAX_CONTENT_TYPE + 1) >
          TERN_MAX_CONTENT_TYPE) {
    return TERN_ERR_TOO_LARGE;
  }
  for (size_t i = 0; i < d->nattrs; ++i) {
    const tern_attr *a = &d->attrs[i];
    if (!a->key || !a->value || !a->key[0]) {
      return TERN_ERR_INVALID;
    }
    if (bounded_len(a->key, TERN_MAX_ATTR_KEY + 1) > TERN_MAX_ATTR_KEY ||
        bounded_len(a->value, TERN_MAX_ATTR_VALUE + 1) > TERN_MAX_ATTR_VALUE) {
      return TERN_ERR_TOO_LARGE;
    }
  }
  return 0;
}

/* The next generated id: 16 hex digits of the epoch and a 16-digit hex
   counter, incremented in place (a carry is rare, so this is a few
   instructions). */
static const uint8_t *next_id(tern_hub *hub) {
  uint8_t *d = hub->genid;
  int i = 31;
  while (i > 16 && d[i] == 'f') {
    d[i--] = '0';
  }
  d[i] = d[i] == '9' ? 'a' : d[i] == 'f' ? '0' : (uint8_t)(d[i] + 1);
  return d;
}

/*
 * Plans room for a message of |bytes| at priority |prio| under the overflow
 * rules.  Returns how many messages must be evicted (>= 0), or -1 when the
 * message must be refused.  |replaced| is a pending message the publish
 * collapses, whose room counts as free.
 */
static int plan_room(const tern_hub *hub, const session *s, int prio,
                     size_t bytes, const msg *replaced) {
  uint64_t need_msgs = session_nmsgs(s) + 1;
  uint64_t need_bytes = s->bytes + bytes;
  if (replaced) {
    --need_msgs;
    need_bytes -= replaced->payloadlen;
  }
  if (need_msgs <= hub->set.max_pending &&
      need_bytes <= hub->set.max_pending_bytes) {
    return 0;
  }
  if (hub->set.overflow[prio] != TERN_OVERFLOW_EVICT) {
    return -1;
  }
  int n = 0;
  for (int p = TERN_PRIO_LOW; p <= prio; ++p) {
    msg *m = s->queue[p];
    if (!m) {
      continue;
    }
    do {
      if (m != replaced) {
        --need_msgs;
        need_bytes -= m->payloadlen;
        ++n;
        if (need_msgs <= hub->set.max_pending &&
            need_bytes <= hub->set.max_pending_bytes) {
          return n;
        }
      }
      m = m->next;
    } while (m != s->queue[p]);
  }
  return -1;
}

static void evict(tern_hub *hub, session *s, int n, const msg *keep) {
  for (int p = TERN_PRIO_LOW; n > 0 && p <= TERN_PRIO_HIGH; ++p) {
    while (n > 0 && s->queue[p]) {
      msg *m = s->queue[p];
      if (m == keep) {
        m = m->next;
        if (m == keep) {
          break;
        }
      }
      ++hub->stats.evicted;
      session_discard(hub, m, TERN_DROP_OVERFLOW, TERN_EV_EVICTED);
      --n;
    }
  }
}

static void fill_result(tern_publish_result *res, const uint8_t *id,
                        size_t idlen) {
  if (!res) {
    return;
  }
  memset(res, 0, sizeof(*res));
  memcpy(res->id, id, idlen);
  res->idlen = idlen;
}

/* One publish to one session.  |many| (a constant in each copy) says it
   is one of a tern_hub_publish_many: the message refers to the payload
   |shared|, with its id |sid| (given or generated once), and |d| is
   checked already. */
static tern_tstamp add_time(tern_tstamp now, tern_duration d) {
  return d > TERN_TSTAMP_NONE - 1 - now ? TERN_TSTAMP_NONE - 1 : now + d;
}

static ALWAYS_INLINE int publish_to(tern_hub *hub, const uint8_t *key,
                                    size_t keylen, const tern_msg_desc *d,
                                    tern_tstamp now, tern_publish_result *res,
                                    const int many, spayload *shared,
                                    const uint8_t *sid, size_t sidlen) {
  if (!key || keylen == 0) {
    return TERN_ERR_INVALID;
  }
  if (keylen > TERN_MAX_SESSION_KEY) {
    return TERN_ERR_TOO_LARGE;
  }
  int rv = many ? 0 : check_desc(hub, d);
  if (rv != 0) {
    return rv;
  }
  const uint8_t *id = d->id;
  size_t idlen = d->idlen;
  int given_id = idlen > 0;
  if (many) {
    id = sid;
    idlen = sidlen;
  } else if (!given_id) {
    id = next_id(hub);
    idlen = sizeof(hub->genid);
  }
  session *s = hub->last_session;
  uint64_t hash = 0;
  if (!s || s->keylen != keylen || !key_eq(s->key, key, keylen)) {
    hash = session_hash(hub, key, keylen);
    s = session_find(hub, key, keylen, hash);
  }
  uint64_t dhash = 0;
  if (given_id && hub->set.dedup_window && s) {
    dhash = hash_bytes(hub->hash_key, s->uid, id, idlen);
    if (dedup_find(hub, s->uid, id, idlen, dhash, now)) {
      fill_result(res, id, idlen);
      ++hub->stats.duplicates;
      return TERN_ERR_DUPLICATE;
    }
  }
  /* Decide before changing anything: collapse, then room. */
  msg *replaced = NULL;
  uint64_t ckhash = 0;
  if (d->collapse_keylen) {
    if (s) {
      ckhash = hash_bytes(hub->hash_key, s->uid, d->collapse_key,
                          d->collapse_keylen);
      replaced = collapse_find(hub, s, d->collapse_key, d->collapse_keylen,
                               ckhash);
    }
  }
  msg *pending_replaced = replaced && !replaced->conn ? replaced : NULL;
  int nevict = 0;
  if (s && (session_nmsgs(s) >= hub->set.max_pending ||
            s->bytes + d->payloadlen > hub->set.max_pending_bytes)) {
    nevict = plan_room(hub, s, d->priority, d->payloadlen, pending_replaced);
    if (nevict < 0) {
      fill_result(res, id, idlen);
      if (hub->set.overflow[d->priority] == TERN_OVERFLOW_REJECT) {
        if (res) {
          res->outcome = TERN_PUBLISH_REJECTED;
          res->retry_after = hub->set.retry_after;
        }
        ++hub->stats.rejected;
        return TERN_ERR_FULL;
      }
      if (res) {
        res->outcome = TERN_PUBLISH_REFUSED;
      }
      ++hub->stats.refused;
      ++s->dropped[TERN_DROP_OVERFLOW - 1];
      s->dropped_total += s->dropped_total != UINT32_MAX;
      if (hub->persist) {
        persist_drops(hub, s);
      }
      if (hub->set.trace || (d->flags & TERN_MSG_TRACE)) {
        evrec *e = event_push(hub, TERN_EV_EVICTED, TERN_DROP_OVERFLOW, NULL,
                              s->key, s->keylen, id, idlen, NULL, 0, 0, 0);
        if (e) {
          e->cookie = d->cookie;
        }
      }
      session_notify(hub, s);
      return TERN_ERR_FULL;
    }
  }
  /* Allocate everything that can fail. */
  int created = 0;
  if (!s) {
    rv = session_new(hub, &s, key, keylen, hash, now);
    if (rv != 0) {
      return rv;
    }
    created = 1;
    if (given_id) {
      dhash = hash_bytes(hub->hash_key, s->uid, id, idlen);
    }
    if (d->collapse_keylen) {
      ckhash = hash_bytes(hub->hash_key, s->uid, d->collapse_key,
                          d->collapse_keylen);
    }
  }
  tern_tstamp expiry = TERN_TSTAMP_NONE;
  tern_duration ttl = d->ttl ? d->ttl : hub->set.default_ttl;
  if (ttl) {
    expiry = ttl > TERN_TSTAMP_NONE - 1 - now ? TERN_TSTAMP_NONE - 1 : now + ttl;
  }
  msg *m;
  if (many) {
    m = msg_new_shared(hub, shared, d->priority, expiry, d->cookie);
    rv = m ? 0 : TERN_ERR_NOMEM;
    if (m && (d->flags & TERN_MSG_TRACE)) {
      m->flags |= MSG_TRACE;
    }
  } else {
    rv = msg_new(hub, &m, d, id, idlen, expiry);
  }
  dedup *de = NULL;
  if (rv == 0 && given_id && hub->set.dedup_window) {
    de = mem_malloc(&hub->mem, sizeof(dedup) + idlen);
    if (!de) {
      msg_unref(hub, m);
      rv = TERN_ERR_NOMEM;
    }
  }
  if (rv == 0 && d->fallback && policy_fallback_reserve(hub, s) != 0) {
    mem_free(&hub->mem, de);
    de = NULL;
    msg_unref(hub, m);
    rv = TERN_ERR_NOMEM;
  }
  int stored = hub->persist && !(d->flags & TERN_MSG_VOLATILE);
  int sync = stored && (d->flags & TERN_MSG_SYNC);
  if (rv == 0 && stored &&
      persist_reserve_publish(hub, s, m->taillen, keylen, idlen, de != NULL,
                              sync) != 0) {
    mem_free(&hub->mem, de);
    de = NULL;
    msg_unref(hub, m);
    rv = TERN_ERR_NOMEM;
  }
  if (rv != 0) {
    if (d->fallback && session_policy(s)) {
      policy_trim(hub, s); /* drops an unused record and an empty block */
    }
    if (created) {
      session_destroy(hub, s);
      --hub->stats.sessions_created;
      --hub->next_uid;
    }
    return rv;
  }
  /* Commit. */
  uint32_t outcome = TERN_PUBLISH_QUEUED;
  hub->last_session = s;
  m->serial = ++hub->next_serial;
  session_enqueue(s, m);
  ++hub->stats.published;
  ++hub->stats.messages;
  hub->stats.message_bytes += m->payloadlen;
  if (msg_traced(hub, m)) {
    event_msg(hub, TERN_EV_ACCEPTED, 0, m, NULL, NULL, 0);
  }
  if (expiry < s->msg_due) {
    s->msg_due = expiry;
    session_arm(hub, s);
  }
  if (d->fallback) {
    policy_fallback_add(hub, s, m, add_time(now, d->fallback));
  }
  if (stored) {
    persist_message(hub, s, m, sync,
                    de ? now + hub->set.dedup_window : 0);
  }
  if (de) {
    de->link.hash = dhash;
    de->uid = s->uid;
    de->stored = (uint32_t)stored;
    de->serial = m->serial;
    de->expires = now + hub->set.dedup_window;
    de->idlen = (uint8_t)idlen;
    de->fifo_next = NULL;
    memcpy(de->id, id, idlen);
    hmap_insert(&hub->dedup_index, &hub->mem, &de->link);
    if (hub->dedup_tail) {
      hub->dedup_tail->fifo_next = de;
    } else {
      hub->dedup_head = de;
    }
    hub->dedup_tail = de;
  }
  if (replaced) {
    collapse_unindex(hub, replaced);
    if (pending_replaced) {
      ++hub->stats.collapsed;
      outcome |= TERN_PUBLISH_REPLACED;
      if (msg_traced(hub, replaced)) {
        event_msg(hub, TERN_EV_COLLAPSED, 0, replaced, NULL, id, idlen);
      }
      session_discard(hub, replaced, 0, 0);
    } else {
      replaced->flags |= MSG_SUPERSEDED;
      if ((replaced->flags & MSG_STORED) && hub->persist) {
        /* It will never be sent again; a restart must not revive it. */
        persist_message_gone(hub, replaced);
        replaced->flags &= (uint8_t)~MSG_STORED;
      }
    }
  }
  if (m->cklen) {
    m->collapse.hash = ckhash;
    hmap_insert(&hub->collapse_index, &hub->mem, &m->collapse);
  }
  if (nevict > 0) {
    evict(hub, s, nevict, m);
    outcome |= TERN_PUBLISH_EVICTED;
  }
  if (res) {
    fill_result(res, id, idlen);
    res->outcome = outcome;
    res->nevicted = (uint32_t)nevict;
  }
  session_notify(hub, s);
  return 0;
}

int session_publish(tern_hub *hub, const uint8_t *key, size_t keylen,
                    const tern_msg_desc *d, tern_tstamp now,
                    tern_publish_result *res) {
  return publish_to(hub, key, keylen, d, now, res, 0, NULL, NULL, 0);
}

tern_ssize tern_hub_publish_many_versioned(
    tern_hub *hub, const tern_key *keys, size_t nkeys, uint32_t desc_version,
    const tern_msg_desc *desc, tern_tstamp now, tern_key_result *results,
    uint32_t result_version, tern_publish_result *result) {
  size_t dlen = layout_msg_desc(desc_version);
  size_t rlen = layout_publish_result(result_version);
  if (!hub || !desc || (!keys && nkeys) || dlen == 0 || rlen == 0) {
    return TERN_ERR_INVALID;
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  memcpy(&d, desc, dlen);
  int rv = check_desc(hub, &d);
  if (rv != 0) {
    return rv;
  }
  uint8_t id[TERN_MAX_ID > sizeof(hub->genid) ? TERN_MAX_ID
                                                : sizeof(hub->genid)];
  size_t idlen = d.idlen;
  if (idlen) {
    memcpy(id, d.id, idlen);
  } else {
    idlen = sizeof(hub->genid);
    memcpy(id, next_id(hub), idlen);
  }
  spayload *p;
  if (payload_new(hub, &p, &d, id, idlen) != 0) {
    return TERN_ERR_NOMEM;
  }
  p->serial = hub->next_serial + 1;
  if (hub->persist) {
    persist_payload(hub, p);
  }
  tern_ssize queued = 0;
  tern_publish_result all;
  memset(&all, 0, sizeof(all));
  for (size_t i = 0; i < nkeys; ++i) {
    tern_publish_result r;
    memset(&r, 0, sizeof(r));
    rv = publish_to(hub, keys[i].key, keys[i].keylen, &d, now, &r, 1, p, id,
                    idlen);
    queued += rv == 0;
    all.outcome |= r.outcome;
    all.nevicted += r.nevicted;
    if (r.outcome & TERN_PUBLISH_REJECTED) {
      all.retry_after = r.retry_after;
    }
    if (results) {
      results[i].error = rv;
      results[i].outcome = r.outcome;
      results[i].nevicted = r.nevicted;
    }
  }
  payload_unref(hub, p); /* the messages hold their own references */
  if (result) {
    memcpy(all.id, id, idlen);
    all.idlen = idlen;
    memcpy(result, &all, rlen);
  }
  return queued;
}

/* ---- for shared payloads (topic.c) --------------------------------------- */

int session_check_desc(const tern_hub *hub, const tern_msg_desc *d) {
  return check_desc(hub, d);
}

const uint8_t *session_next_id(tern_hub *hub) { return next_id(hub); }

size_t session_desc_tail(uint8_t *out, const tern_msg_desc *d,
                         const uint8_t *id, size_t idlen) {
  /* wire_msg_tail_encode writes the plain tail's bytes too; the inline
     plain encoder stays with its one caller, msg_new. */
  return rich_tail(out, d, id, idlen);
}
