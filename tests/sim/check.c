/*
 * The invariant checker: a model of every published message, fed by the
 * hub's trace events (settings.trace = 1), the wire tap of each link and
 * the clients' events, and the checks run on it.
 *
 * The seven invariants (numbers as in the failure messages):
 *  1  every message the hub accepted and did not expire, collapse, evict or
 *     kill reaches its client app: an ACK is only right once the app
 *     incarnation the message last went to saw its id; a message may not
 *     expire unsent while its client's connection had room in its window
 *     and socket; and after the chaos, with healthy links, the hub drains:
 *     everything is delivered and acked (the quiet phase fails when nothing
 *     moves for a settle time, or the backlog takes far too long);
 *  2  the app sees each id at most once within the client's dedup window
 *     and dedup_max (per client incarnation, and per RESYNC: both forget);
 *  3  nothing is delivered after its expiry: the hub starts every MSG frame
 *     before the message's expiry, with an honest ttl_ms, and the client
 *     never reports more lifetime than the frame carried.  (A frame started
 *     in time may arrive after the expiry by its transit time: the app
 *     cannot know the transit, the hub cannot prevent it.);
 *  4  within one priority, messages that were sent only once reach the app
 *     in publish order;
 *  5  of messages sharing a collapse key, the app never gets an older one
 *     after a newer one;
 *  6  every discard is counted in a DROPPED notice and the counts add up:
 *     per session instance, discards = notices written + still pending, and
 *     each notice written either became exactly one GAP event or was lost
 *     with its connection (counted; fatal with --strict-dropped);
 *  7  once every session expired, the hub's memory is back to its baseline
 *     (and a deleted tern_client holds nothing).
 * With --hub-restart (durable.c) the hub crashes now and then over a store
 * that loses unsynced writes, and the invariants read: 1 holds for every
 * message the store held durably at the crash (a PERSISTED confirmation
 * must come only once it is; such a message is never lost), while a held
 * message that was not durable leaves the expected set (M_LOST; if it
 * still arrives, that is counted); a message whose deletion was not
 * durable comes back and must be delivered again (the client's dedup
 * hides most repeats: invariant 2 stays per incarnation, repeats it let
 * through are counted); 4 and 5 allow a message that came back to follow
 * newer ones the app got while it was gone, or newer ones the crash
 * forgot; 6 carries over a restart (the store keeps each session's losses
 * not yet told; messages that expired while the hub was down are losses
 * of the new hub: see durable.c), 7 starts again with each hub, and after
 * the last clean shutdown the store must hold nothing but the epoch.
 * Failures with number 0 are broken API contracts found on the way: the
 * trace disagreeing with what the hub holds (checked every step), a
 * writable connection tern_hub_next_ready never returned, a write that
 * gives nothing although want_write said yes, publisher dedup, a frame
 * the tap cannot decode, a message reaching the app altered or on a seq
 * the hub did not send it with, RESYNC without cause, and the like.
 *
 * The model reads a few hub internals (deliver/hub.h): the per-session
 * DROPPED counts not yet written, and the caches that legitimately outlive
 * the sessions (message pool, event arrays, grown tables) for invariant 7.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/hub.h"
#include "deliver/web.h"
#include "sim.h"
#include "wire/frame.h"

/* ---- the model's storage -------------------------------------------------- */

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    abort();
  }
  return q;
}

/* The live map's key: the client slot, then the id. */
static size_t live_key(uint8_t *out, int client, const uint8_t *id,
                       size_t idlen) {
  out[0] = (uint8_t)client;
  memcpy(out + 1, id, idlen);
  return idlen + 1;
}

/* The everseen map's key: the client incarnation, then the id. */
static size_t seen_key(uint8_t *out, uint32_t incarnation, const uint8_t *id,
                       size_t idlen) {
  memcpy(out, &incarnation, 4);
  memcpy(out + 4, id, idlen);
  return idlen + 4;
}

/* ---- the model ------------------------------------------------------------ */

static const char *state_name(int st) {
  static const char *const names[] = {
      "?",        "live",    "acked", "expired",  "collapsed",
      "evicted",  "dead",    "session expired",    "refused",
      "rejected", "duplicate", "lost by a crash"};
  return st >= 0 && st <= M_LOST ? names[st] : "?";
}

static double secs(tern_tstamp t) {
  return (double)(int64_t)(t - SIM_T0) / 1e9;
}

void model_init(sim *s) {
  kmap_init(&s->live, 1024);
  s->publishing = -1;
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    kmap_init(&c->seen, 256);
    kmap_init(&c->everseen, 256);
    for (int k = 0; k < SIM_NCK; ++k) {
      c->ck_last[k] = -1;
    }
    c->inst = model_new_inst(s, i);
  }
}

void model_free(sim *s) {
  kmap_free(&s->live);
  for (int i = 0; i < s->nclients; ++i) {
    kmap_free(&s->cl[i].seen);
    kmap_free(&s->cl[i].everseen);
  }
  free(s->msgs);
  free(s->idrec);
  free(s->idowner);
  free(s->insts);
  free(s->log);
}

uint32_t model_new_inst(sim *s, int client) {
  if (s->ninsts == s->instcap) {
    s->instcap = s->instcap ? s->instcap * 2 : 16;
    s->insts = xrealloc(s->insts, s->instcap * sizeof(*s->insts));
  }
  inst_rec *r = &s->insts[s->ninsts];
  memset(r, 0, sizeof(*r));
  r->client = client;
  return (uint32_t)s->ninsts++;
}

int32_t model_add(sim *s, const mmsg *m) {
  if (s->nmsgs == s->msgcap) {
    s->msgcap = s->msgcap ? s->msgcap * 2 : 256;
    s->msgs = xrealloc(s->msgs, s->msgcap * sizeof(*s->msgs));
  }
  s->msgs[s->nmsgs] = *m;
  return (int32_t)s->nmsgs++;
}

int32_t model_find_live(sim *s, int client, const uint8_t *id,
                        size_t idlen) {
  uint8_t key[TERN_MAX_ID + 8];
  if (idlen > TERN_MAX_ID) {
    return -1;
  }
  int32_t *v = kmap_find(&s->live, key, live_key(key, client, id, idlen));
  return v ? *v : -1;
}

void model_payload(const sim *s, int32_t idx, uint8_t *out, size_t len) {
  prng r = {s->opt.seed ^ ((uint64_t)(uint32_t)idx << 20)};
  uint32_t tag = (uint32_t)idx;
  for (size_t i = 0; i < len; ++i) {
    uint64_t v = i < 4 ? tag >> (8 * i) : prng_next(&r);
    out[i] = (uint8_t)v;
  }
}

static void end_msg(sim *s, int32_t idx, int state);

void model_end_msg(sim *s, int32_t idx, int state) { end_msg(s, idx, state); }

int model_revive_msg(sim *s, int32_t idx) {
  mmsg *m = &s->msgs[idx];
  uint8_t key[TERN_MAX_ID + 8];
  size_t klen = live_key(key, m->client, m->id, m->idlen);
  if (kmap_find(&s->live, key, klen)) {
    return -1;
  }
  kmap_put(&s->live, key, klen, idx);
  m->state = M_LIVE;
  ++s->live_n[m->client];
  s->live_bytes[m->client] += m->paylen;
  ++s->total_live;
  return 0;
}

static void end_msg(sim *s, int32_t idx, int state) {
  mmsg *m = &s->msgs[idx];
  if (m->fallback_at && !m->fell_back && s->now > m->fallback_at &&
      !s->dur) {
    /* A duty event: a message still held past its fallback deadline got
       one, before anything else could end it. */
    sim_fail(s, 0, "%s of %s left at %.6f (state %d) without the FALLBACK "
                   "due at %.6f",
             sim_idstr(m), s->cl[m->client].key, secs(s->now), state,
             secs(m->fallback_at));
  }
  if (state == M_ACKED && m->fell_back) {
    ++s->res->fallback_acked;
  }
  uint8_t key[TERN_MAX_ID + 8];
  kmap_del(&s->live, key, live_key(key, m->client, m->id, m->idlen));
  m->state = state;
  m->ended = s->now;
  if (state == M_EXPIRED || state == M_EVICTED || state == M_DEAD) {
    m->drop_inst = s->cl[m->client].inst;
  }
  s->last_progress = s->now;
  --s->live_n[m->client];
  s->live_bytes[m->client] -= m->paylen;
  --s->total_live;
  switch (state) {
  case M_ACKED:
    ++s->res->acked;
    break;
  case M_EXPIRED:
    ++s->res->expired;
    break;
  case M_COLLAPSED:
    ++s->res->collapsed;
    break;
  case M_EVICTED:
    ++s->res->evicted;
    break;
  case M_DEAD:
    ++s->res->dead;
    break;
  default:
    break;
  }
}

int model_dedup_active(const sim *s, const mmsg *p) {
  return p->dd_inst == s->cl[p->client].inst && s->now < p->dd_until;
}

/* The hub keeps a dedup entry for an id accepted into this session
   instance less than dedup_window ago (or restored into it by a restarted
   hub: see durable.c). */
static int expect_duplicate(sim *s, const mmsg *m) {
  if (m->idnum < 0 || !s->hs.dedup_window || (size_t)m->idnum >= s->nids) {
    return 0;
  }
  /* Newest first; entries expire in that order too. */
  for (int32_t i = s->idrec[m->idnum]; i >= 0; i = s->msgs[i].prev_same_id) {
    const mmsg *p = &s->msgs[i];
    if (s->now >= p->dd_until) {
      break;
    }
    if (p->client == m->client && model_dedup_active(s, p)) {
      return 1;
    }
  }
  return 0;
}

void model_publish_result(sim *s, int32_t idx, int rv,
                          const tern_publish_result *pr) {
  mmsg *m = &s->msgs[idx];
  client_slot *c = &s->cl[m->client];
  int dup = expect_duplicate(s, m);
  ++s->res->publishes;
  if (m->idnum < 0 && pr->idlen && pr->idlen <= TERN_MAX_ID) {
    memcpy(m->id, pr->id, pr->idlen); /* the hub's generated id */
    m->idlen = (uint8_t)pr->idlen;
  }
  if (rv == TERN_ERR_DUPLICATE) {
    if (!dup) {
      sim_fail(s, 0, "publisher dedup: %s to %s refused as a duplicate, but "
                     "no copy was accepted within dedup_window",
               sim_idstr(m), c->key);
    }
    m->state = M_DUPLICATE;
    return;
  }
  if (dup) {
    sim_fail(s, 0, "publisher dedup: a retry of %s to %s within "
                   "dedup_window was not refused (publish returned %d)",
             sim_idstr(m), c->key, rv);
  }
  if (rv == 0) {
    if (!(pr->outcome & TERN_PUBLISH_QUEUED)) {
      sim_fail(s, 0, "publish returned 0 without TERN_PUBLISH_QUEUED");
    }
    if (model_find_live(s, m->client, m->id, m->idlen) >= 0) {
      sim_fail(s, 0, "model: two live messages with id %s", sim_idstr(m));
    }
    m->state = M_LIVE;
    m->serial = ++s->next_serial;
    uint8_t key[TERN_MAX_ID + 8];
    kmap_put(&s->live, key, live_key(key, m->client, m->id, m->idlen), idx);
    ++s->live_n[m->client];
    s->live_bytes[m->client] += m->paylen;
    ++s->total_live;
    m->dd_inst = UINT32_MAX;
    m->dd_until = 0;
    if (m->idnum >= 0) {
      m->prev_same_id = s->idrec[m->idnum];
      s->idrec[m->idnum] = idx;
      if (s->hs.dedup_window) {
        m->dd_inst = m->inst;
        m->dd_until = s->now + s->hs.dedup_window;
      }
    }
    ++s->res->accepted;
    if (s->dur) {
      durable_published(s, idx);
    }
    return;
  }
  if (rv == TERN_ERR_FULL) {
    int rule = s->hs.overflow[m->prio];
    if (pr->outcome & TERN_PUBLISH_REJECTED) {
      m->state = M_REJECTED;
      if (rule != TERN_OVERFLOW_REJECT) {
        sim_fail(s, 0, "publish rejected under a rule that is not REJECT");
      }
    } else if (pr->outcome & TERN_PUBLISH_REFUSED) {
      m->state = M_REFUSED;
      if (rule == TERN_OVERFLOW_REJECT) {
        sim_fail(s, 0, "publish refused under the REJECT rule");
      }
    } else {
      sim_fail(s, 0, "TERN_ERR_FULL with outcome 0x%x", pr->outcome);
    }
    /* Full means full: held messages (less one the publish would have
       collapsed) plus this one pass a limit. */
    uint64_t tbytes;
    uint64_t n = s->live_n[m->client] + 1 + topics_held(s, m->client, &tbytes);
    uint64_t bytes = s->live_bytes[m->client] + tbytes;
    bytes += m->paylen;
    if (m->ck >= 0) {
      n -= 1; /* a pending message with the key would make room */
    }
    if (n <= s->hs.max_pending && bytes <= s->hs.max_pending_bytes &&
        m->ck < 0) {
      sim_fail(s, 0, "publish to %s refused as full with %u messages, %llu "
                     "bytes held",
               c->key, s->live_n[m->client],
               (unsigned long long)s->live_bytes[m->client]);
    }
    return;
  }
  sim_fail(s, 0, "tern_hub_publish: %s", tern_strerror(rv));
}

void model_publish_end(sim *s, int32_t idx, int rv,
                       const tern_publish_result *pr) {
  (void)idx;
  if (rv == 0 && (pr->outcome & TERN_PUBLISH_EVICTED) &&
      pr->nevicted != s->publish_evicted) {
    sim_fail(s, 0, "publish says %u evicted, %u EVICTED events came",
             pr->nevicted, s->publish_evicted);
  }
  if (rv == 0 && !(pr->outcome & TERN_PUBLISH_EVICTED) &&
      s->publish_evicted) {
    sim_fail(s, 0, "EVICTED events from a publish without EVICTED outcome");
  }
}

static int client_of_key(const sim *s, const uint8_t *key, size_t keylen) {
  for (int i = 0; i < s->nclients; ++i) {
    if (s->cl[i].keylen == keylen && memcmp(s->cl[i].key, key, keylen) == 0) {
      return i;
    }
  }
  return -1;
}

static const char *ev_name(int type) {
  static const char *const names[] = {
      "?",         "ACCEPTED",  "SENT",        "ACKED",
      "EXPIRED",   "COLLAPSED", "EVICTED",     "DEAD",
      "CONN_HELLO", "CONN_DEAD", "CONN_CLOSED", "SESSION_EXPIRED",
      "PERSISTED", "STORE_FAILED"};
  return type > 0 && type <= TERN_EV_STORE_FAILED ? names[type] : "?";
}

/* The record of the message being published to |client|: for
   tern_hub_publish_many, the group member of that client. */
static int32_t publishing_for(const sim *s, int client) {
  int32_t p = s->publishing;
  if (p < 0 || !s->msgs[p].group) {
    return p;
  }
  for (int32_t j = p; (size_t)j < s->nmsgs && s->msgs[j].group == p + 1;
       ++j) {
    if (s->msgs[j].client == client) {
      return j;
    }
  }
  return p;
}

/* The live message an event names, or -1 after reporting. */
static int32_t event_msg_idx(sim *s, const tern_event *ev, int client) {
  int32_t idx = model_find_live(s, client, ev->msg_id, ev->msg_idlen);
  if (idx < 0) {
    sim_fail(s, 0, "%s for id %.*s of %.*s, which the hub does not hold "
                   "per its trace",
             ev_name(ev->type), (int)ev->msg_idlen, (const char *)ev->msg_id,
             (int)ev->session_keylen, (const char *)ev->session_key);
  }
  return idx;
}


static void session_expired(sim *s, int client, uint64_t count) {
  client_slot *c = &s->cl[client];
  uint64_t tbytes;
  uint32_t theld = topics_held(s, client, &tbytes);
  if (count != s->live_n[client] + theld) {
    sim_fail(s, 0, "SESSION_EXPIRED for %s says %llu messages lost, the "
                   "trace says %u were held (%u of topics)",
             c->key, (unsigned long long)count, s->live_n[client] + theld,
             theld);
  }
  topics_session_expired(s, client);
  for (size_t i = 0; i < s->nmsgs && s->live_n[client]; ++i) {
    if (s->msgs[i].client == client && s->msgs[i].state == M_LIVE) {
      end_msg(s, (int32_t)i, M_SESSION_GONE);
    }
  }
  s->insts[c->inst].ended = 1;
  if (c->welcomed_inst == c->inst) {
    c->session_lost = 1;
  }
  c->inst = model_new_inst(s, client);
}

/*
 * A message expired without ever being sent.  That is right when its
 * client had no usable connection, or the connection's window or socket
 * was full; but if at the end of the last step the client's connection was
 * open with room in both, the host loop would have written whatever
 * tern_conn_want_write offered, so the hub must have failed to offer it.
 */
static void expired_unsent(sim *s, int client, const mmsg *m) {
  const sim_link *l = s->cl[client].cur;
  if (l && l->could_send) {
    sim_fail(s, 1, "%s of %s expired unsent although link %u had room in "
                   "its window and its socket",
             sim_idstr(m), s->cl[client].key, l->id);
  }
}

void model_before_expiry(sim *s) {
  for (sim_link *l = s->links; l; l = l->next) {
    l->could_send = 0;
    if (!l->connected || l->dead || !l->conn ||
        tern_conn_is_closed(l->conn) || !tern_conn_get_session(l->conn) ||
        link_room(&l->down) < l->min_chunk) {
      continue;
    }
    tern_conn_info info;
    tern_conn_get_info(l->conn, &info, sizeof(info));
    /* A session's policy may hold its NORMAL and LOW messages (they may
       expire held: counted and told as any expiry). */
    l->could_send =
        info.inflight < s->hs.inflight_window &&
        !policy_holds_back((const session *)tern_conn_get_session(l->conn));
  }
}

void model_hub_event(sim *s, const tern_event *ev) {
  int client = -1;
  if (ev->session_keylen) {
    client = client_of_key(s, ev->session_key, ev->session_keylen);
    if (client < 0) {
      sim_fail(s, 0, "%s event for an unknown session", ev_name(ev->type));
      return;
    }
  }
  if (s->opt.verbose && ev->type != TERN_EV_ACCEPTED) {
    const sim_link *el = ev->conn ? tern_conn_get_user_data(ev->conn) : NULL;
    sim_log(s, "hub: %s %.*s%s%.*s seq %llu reason %d count %llu link %u",
            ev_name(ev->type), (int)ev->session_keylen,
            (const char *)ev->session_key, ev->msg_idlen ? " id " : "",
            (int)ev->msg_idlen, (const char *)ev->msg_id,
            (unsigned long long)ev->seq, ev->reason,
            (unsigned long long)ev->count, el ? el->id : 0);
  }
  int32_t idx;
  mmsg *m;
  if (s->tp && topics_hub_event(s, ev, client)) {
    return;
  }
  switch (ev->type) {
  case TERN_EV_ACCEPTED:
    idx = publishing_for(s, client);
    if (idx < 0 || s->msgs[idx].state != M_LIVE ||
        s->msgs[idx].idlen != ev->msg_idlen ||
        memcmp(s->msgs[idx].id, ev->msg_id, ev->msg_idlen) != 0) {
      sim_fail(s, 0, "ACCEPTED does not name the message just published");
    }
    break;
  case TERN_EV_SENT: {
    if ((idx = event_msg_idx(s, ev, client)) < 0) {
      break;
    }
    m = &s->msgs[idx];
    ++m->sends;
    if (s->now >= m->expiry) {
      sim_fail(s, 3, "%s of %s sent at %.6f, at or after its expiry %.6f",
               sim_idstr(m), s->cl[client].key, secs(s->now), secs(m->expiry));
    }
    sim_link *l = ev->conn ? tern_conn_get_user_data(ev->conn) : NULL;
    if (!l) {
      sim_fail(s, 0, "SENT without its connection");
      break;
    }
    if (l->client != client) {
      sim_fail(s, 0, "%s sent on a connection of another session",
               sim_idstr(m));
    }
    if (ev->seq <= l->last_seq) {
      sim_fail(s, 0, "seq %llu after %llu on one connection",
               (unsigned long long)ev->seq, (unsigned long long)l->last_seq);
    }
    l->last_seq = ev->seq;
    m->last_inc = l->incarnation;
    m->send_restart = s->nrestarts;
    if (l->nsent == l->sentcap) {
      l->sentcap = l->sentcap ? l->sentcap * 2 : 32;
      l->sent = xrealloc(l->sent, l->sentcap * sizeof(*l->sent));
    }
    sent_rec *r = &l->sent[l->nsent++];
    r->seq = ev->seq;
    r->msg = idx;
    r->at = s->now;
    r->ttl_ms = UINT64_MAX;
    break;
  }
  case TERN_EV_ACKED:
    if ((idx = event_msg_idx(s, ev, client)) < 0) {
      break;
    }
    m = &s->msgs[idx];
    {
      /* The app incarnation its last copy went to must have seen its id:
         this message, or an earlier one its dedup took it for. */
      uint8_t key[TERN_MAX_ID + 8];
      if (!kmap_find(&s->cl[client].everseen, key,
                     seen_key(key, m->last_inc, m->id, m->idlen))) {
        sim_fail(s, 1, "%s of %s acked (seq %llu) but its app (#%u) never "
                       "got it (nor an earlier message with its id)",
                 sim_idstr(m), s->cl[client].key, (unsigned long long)ev->seq,
                 m->last_inc);
      }
    }
    end_msg(s, idx, M_ACKED);
    break;
  case TERN_EV_EXPIRED:
    if ((idx = event_msg_idx(s, ev, client)) < 0) {
      break;
    }
    m = &s->msgs[idx];
    if (s->now < m->expiry) {
      sim_fail(s, 0, "%s expired at %.6f, before its expiry %.6f", sim_idstr(m),
               secs(s->now), secs(m->expiry));
    }
    if (ev->reason != TERN_DROP_EXPIRED) {
      sim_fail(s, 0, "EXPIRED with reason %d", ev->reason);
    }
    if (s->in_expiry && m->sends == 0) {
      expired_unsent(s, client, m);
    }
    ++s->insts[s->cl[client].inst].discards[TERN_DROP_EXPIRED - 1];
    end_msg(s, idx, M_EXPIRED);
    break;
  case TERN_EV_COLLAPSED:
    if ((idx = event_msg_idx(s, ev, client)) < 0) {
      break;
    }
    m = &s->msgs[idx];
    if (m->ck < 0) {
      sim_fail(s, 0, "%s collapsed without a collapse key", sim_idstr(m));
    }
    if (ev->auxlen) {
      int32_t j = model_find_live(s, client, ev->aux, ev->auxlen);
      if (j < 0 && s->publishing >= 0 &&
          s->msgs[s->publishing].idlen == ev->auxlen &&
          memcmp(s->msgs[s->publishing].id, ev->aux, ev->auxlen) == 0) {
        j = s->publishing;
      }
      if (j >= 0 && (s->msgs[j].ck != m->ck ||
                     s->msgs[j].serial <= m->serial)) {
        sim_fail(s, 5, "%s collapsed by %.*s, which is not a newer message "
                       "with its key",
                 sim_idstr(m), (int)ev->auxlen, (const char *)ev->aux);
      }
    }
    end_msg(s, idx, M_COLLAPSED);
    break;
  case TERN_EV_EVICTED:
    if (ev->reason != TERN_DROP_OVERFLOW) {
      sim_fail(s, 0, "EVICTED with reason %d", ev->reason);
    }
    idx = model_find_live(s, client, ev->msg_id, ev->msg_idlen);
    if (s->publishing < 0) {
      sim_fail(s, 0, "EVICTED outside a publish");
      break;
    }
    if (idx < 0) {
      const mmsg *p = &s->msgs[publishing_for(s, client)];
      if (p->state != M_REFUSED || p->idlen != ev->msg_idlen ||
          memcmp(p->id, ev->msg_id, p->idlen) != 0) {
        sim_fail(s, 0, "EVICTED for id %.*s, neither held nor refused",
                 (int)ev->msg_idlen, (const char *)ev->msg_id);
        break;
      }
      ++s->insts[s->cl[client].inst].discards[TERN_DROP_OVERFLOW - 1];
      break;
    }
    m = &s->msgs[idx];
    if (idx == publishing_for(s, client)) {
      sim_fail(s, 0, "a publish evicted its own message");
    }
    if (m->prio > s->msgs[s->publishing].prio) {
      sim_fail(s, 0, "a priority %d publish evicted priority %d", 
               s->msgs[s->publishing].prio, m->prio);
    }
    ++s->publish_evicted;
    ++s->insts[s->cl[client].inst].discards[TERN_DROP_OVERFLOW - 1];
    end_msg(s, idx, M_EVICTED);
    break;
  case TERN_EV_DEAD:
    if ((idx = event_msg_idx(s, ev, client)) < 0) {
      break;
    }
    if (!s->hs.ack_timeout || !s->hs.max_deliver) {
      sim_fail(s, 0, "DEAD without ack_timeout and max_deliver");
    } else if (s->msgs[idx].sends < s->hs.max_deliver) {
      sim_fail(s, 0, "DEAD after %u sends, max_deliver is %u",
               s->msgs[idx].sends, s->hs.max_deliver);
    }
    ++s->insts[s->cl[client].inst].discards[TERN_DROP_DEAD - 1];
    end_msg(s, idx, M_DEAD);
    break;
  case TERN_EV_SESSION_EXPIRED:
    session_expired(s, client, ev->count);
    break;
  case TERN_EV_FALLBACK:
    if ((idx = event_msg_idx(s, ev, client)) < 0) {
      break;
    }
    m = &s->msgs[idx];
    if (!m->fallback_at || s->now < m->fallback_at || m->fell_back ||
        ev->auxlen != m->paylen || ev->count != m->sends) {
      sim_fail(s, 0, "FALLBACK for %s of %s at %.6f (deadline %.6f, "
                     "before: %d, %zu of %u payload bytes, %llu sends of %u)",
               sim_idstr(m), s->cl[client].key, secs(s->now),
               secs(m->fallback_at), m->fell_back, ev->auxlen, m->paylen,
               (unsigned long long)ev->count, m->sends);
    }
    m->fell_back = 1;
    ++s->res->fallbacks;
    break;
  case TERN_EV_PERSISTED:
    if (!s->dur) {
      sim_fail(s, 0, "PERSISTED from a hub without a store");
    } else if (client >= 0) {
      durable_persisted(s, client, ev);
    }
    break;
  case TERN_EV_STORE_FAILED:
    sim_fail(s, 0, "store batch %llu failed (%s), but the store never "
                   "fails",
             (unsigned long long)ev->seq, tern_strerror(ev->reason));
    break;
  default:
    break;
  }
}

/* ---- the receiving side --------------------------------------------------- */

const sent_rec *model_find_sent(const sim_link *l, uint64_t seq) {
  for (size_t i = l->nsent; i > 0; --i) {
    if (l->sent[i - 1].seq == seq) {
      return &l->sent[i - 1];
    }
    if (l->sent[i - 1].seq < seq) {
      break;
    }
  }
  return NULL;
}

/* The index that tags |idx|'s payload. */
static int32_t model_tag(const sim *s, int32_t idx) {
  return s->msgs[idx].group ? s->msgs[idx].group - 1 : idx;
}

/* Compares what the app got with what was published. */
static int intact(const sim *s, const mmsg *m, int32_t idx,
                  const tern_client_event *ev) {
  static const char *const ctypes[] = {"", "text/plain", "application/json"};
  if (ev->idlen != m->idlen || memcmp(ev->id, m->id, m->idlen) != 0 ||
      ev->priority != m->prio || ev->payloadlen != m->paylen) {
    return 0;
  }
  char ck[8];
  int cklen = 0;
  if (m->ck >= 0) {
    cklen = snprintf(ck, sizeof(ck), "ck%d", m->ck);
  }
  if (ev->collapse_keylen != (size_t)cklen ||
      (cklen && memcmp(ev->collapse_key, ck, (size_t)cklen) != 0)) {
    return 0;
  }
  size_t ctlen = strlen(ctypes[m->ctype]);
  if (ev->content_typelen != ctlen ||
      (ctlen && memcmp(ev->content_type, ctypes[m->ctype], ctlen) != 0)) {
    return 0;
  }
  if (ev->nattrs != m->nattrs) {
    return 0;
  }
  for (size_t i = 0; i < ev->nattrs; ++i) {
    char v[16];
    int vl = snprintf(v, sizeof(v), "%d.%zu", (int)model_tag(s, idx), i);
    if (ev->attrs[i].keylen != 1 || ev->attrs[i].key[0] != 'a' + (int)i ||
        ev->attrs[i].valuelen != (size_t)vl ||
        memcmp(ev->attrs[i].value, v, (size_t)vl) != 0) {
      return 0;
    }
  }
  uint8_t want[8192];
  if (m->paylen > sizeof(want)) {
    return 0;
  }
  model_payload(s, model_tag(s, idx), want, m->paylen);
  return memcmp(ev->payload, want, m->paylen) == 0;
}

/* 2: at most once per incarnation within the client's dedup window;
   then the app's log and its maps of ids seen. */
void model_app_saw(sim *s, client_slot *c, int32_t logmsg, const uint8_t *id,
                   size_t idlen) {
  uint8_t key[TERN_MAX_ID + 8];
  size_t klen = live_key(key, 0, id, idlen);
  int32_t *prev = kmap_find(&c->seen, key, klen);
  if (prev) {
    const delivery *d = &s->log[*prev];
    tern_duration age = s->now - d->at;
    uint64_t between = c->inc_deliveries - d->inc_index - 1;
    if ((c->cs.dedup_window == 0 ||
         age + TERN_MILLISECONDS < c->cs.dedup_window) &&
        between + 2 < c->cs.dedup_max) {
      sim_fail(s, 2, "app %s#%u saw id %.*s twice, %.3f s apart with %llu "
                     "other ids between (dedup window %.0f s, %u ids)",
               c->key, c->incarnation, (int)idlen, (const char *)id,
               (double)age / 1e9, (unsigned long long)between,
               (double)c->cs.dedup_window / 1e9, c->cs.dedup_max);
    }
  }
  if (s->nlog == s->logcap) {
    s->logcap = s->logcap ? s->logcap * 2 : 256;
    s->log = xrealloc(s->log, s->logcap * sizeof(*s->log));
  }
  delivery *d = &s->log[s->nlog];
  d->msg = logmsg;
  d->client = c->idx;
  d->incarnation = c->incarnation;
  d->inc_index = c->inc_deliveries++;
  d->at = s->now;
  kmap_put(&c->seen, key, klen, (int32_t)s->nlog);
  uint8_t ekey[TERN_MAX_ID + 8];
  kmap_put(&c->everseen, ekey, seen_key(ekey, c->incarnation, id, idlen),
           logmsg);
  ++s->nlog;
}

static void on_message(sim *s, client_slot *c, sim_link *l,
                       const tern_client_event *ev) {
  if (!l) {
    sim_fail(s, 0, "MESSAGE for %s without a transport", c->key);
    return;
  }
  if (ev->payloadlen < 4) {
    sim_fail(s, 0, "MESSAGE with a %zu-byte payload (all are tagged)",
             ev->payloadlen);
    return;
  }
  int32_t idx = (int32_t)((uint32_t)ev->payload[0] |
                          (uint32_t)ev->payload[1] << 8 |
                          (uint32_t)ev->payload[2] << 16 |
                          (uint32_t)ev->payload[3] << 24);
  if (idx < 0 && s->tp) {
    topics_on_message(s, c, l, ev, idx & INT32_MAX);
    return;
  }
  if (idx < 0 || (size_t)idx >= s->nmsgs) {
    sim_fail(s, 0, "MESSAGE with a payload the producers never made");
    return;
  }
  /* tern_hub_publish_many: the payload's tag is the first recipient's
     record; this app's follows it. */
  for (int32_t j = idx; (size_t)j < s->nmsgs && s->msgs[j].group == idx + 1;
       ++j) {
    if (s->msgs[j].client == c->idx) {
      idx = j;
      break;
    }
  }
  mmsg *m = &s->msgs[idx];
  sim_log(s, "app %s#%u: MESSAGE %s seq %llu prio %d", c->key,
          c->incarnation, sim_idstr(m), (unsigned long long)ev->seq, ev->priority);
  if (m->client != c->idx) {
    sim_fail(s, 0, "%s of %s delivered to %s", sim_idstr(m),
             s->cl[m->client].key, c->key);
    return;
  }
  if (m->state == M_REFUSED || m->state == M_REJECTED ||
      m->state == M_DUPLICATE || m->state == 0) {
    sim_fail(s, 0, "%s delivered, but the hub never accepted it (%s)",
             sim_idstr(m), state_name(m->state));
    return;
  }
  if (!intact(s, m, idx, ev)) {
    sim_fail(s, 0, "%s reached the app altered (id, priority, collapse "
                   "key, content type, attrs or payload differ)",
             sim_idstr(m));
    return;
  }
  const sent_rec *r = model_find_sent(l, ev->seq);
  if (!r || r->msg != idx) {
    sim_fail(s, 0, "%s reached the app with seq %llu, which the hub did "
                   "not send it with on this connection",
             sim_idstr(m), (unsigned long long)ev->seq);
    return;
  }
  /* 3: the client never reports more lifetime than the frame carried. */
  if (m->expiry == TERN_TSTAMP_NONE) {
    if (ev->ttl != 0) {
      sim_fail(s, 3, "%s never expires, but the app got ttl %llu ns",
               sim_idstr(m), (unsigned long long)ev->ttl);
    }
  } else if (ev->ttl == 0 ||
             (r->ttl_ms != UINT64_MAX && ev->ttl > r->ttl_ms * TERN_MILLISECONDS)) {
    sim_fail(s, 3, "%s: the app got ttl %llu ns, the frame (sent %.6f) "
                   "carried %llu ms, the hub's expiry is %.6f",
             sim_idstr(m), (unsigned long long)ev->ttl, secs(r->at),
             (unsigned long long)r->ttl_ms, secs(m->expiry));
  }
  /* 2 */
  model_app_saw(s, c, idx, m->id, m->idlen);
  /* 5: never an older message of a collapse key after a newer one.  The
     one exception: a hub crash forgot the newer one (its record was not
     durable yet), and the restarted hub restored the older one, whose
     deletion (or supersession) came after it in the store's log. */
  if (m->ck >= 0) {
    int32_t last = c->ck_last[m->ck];
    if (last >= 0 && s->msgs[last].serial > m->serial &&
        s->msgs[last].forgot_at &&
        m->restored_at >= s->msgs[last].forgot_at) {
      ++s->res->order_lost;
      sim_log(s, "app %s got %s (key ck%d) after the newer %s, which a "
                 "crash forgot",
              c->key, sim_idstr(m), m->ck, sim_idstr(&s->msgs[last]));
    } else if (last >= 0 && s->msgs[last].serial > m->serial) {
      sim_fail(s, 5, "app %s got %s (key ck%d) after the newer %s",
               c->key, sim_idstr(m), m->ck, sim_idstr(&s->msgs[last]));
    }
    if (last < 0 || s->msgs[last].serial < m->serial) {
      c->ck_last[m->ck] = idx;
    }
  }
  if (m->state == M_LOST) {
    ++s->res->lost_arrived;
  }
  if (m->deliveries && m->deliv_inc == c->incarnation &&
      m->deliv_restart < s->nrestarts) {
    /* Again, to the same app, after a hub restart: its ack was not durable
       (or never came) and the client's dedup window had let its id go. */
    ++s->res->redelivered;
  }
  m->deliv_inc = c->incarnation;
  m->deliv_restart = s->nrestarts;
  ++m->deliveries;
  s->last_progress = s->now;
  ++s->res->delivered;
}

static void on_gap(sim *s, client_slot *c, sim_link *l,
                   const tern_client_event *ev) {
  sim_log(s, "app %s#%u: GAP %llu reason %d", c->key, c->incarnation,
          (unsigned long long)ev->count, ev->reason);
  if (!l) {
    sim_fail(s, 6, "GAP for %s without a transport", c->key);
    return;
  }
  if (l->nmatched >= l->nnotices) {
    sim_fail(s, 6, "app %s got GAP %llu (reason %d) but no DROPPED came",
             c->key, (unsigned long long)ev->count, ev->reason);
    return;
  }
  notice *n = &l->notices[l->nmatched];
  if (n->end_off > l->down.delivered) {
    sim_fail(s, 6, "app %s got GAP before its DROPPED arrived", c->key);
    return;
  }
  if (n->count != ev->count || n->reason != ev->reason) {
    sim_fail(s, 6, "app %s got GAP %llu reason %d for DROPPED %llu reason %d",
             c->key, (unsigned long long)ev->count, ev->reason,
             (unsigned long long)n->count, n->reason);
    return;
  }
  ++l->nmatched;
  s->insts[n->inst].told[n->reason - 1] += n->count;
  c->gaps += n->count;
  s->res->gaps += n->count;
}

void model_client_event(sim *s, client_slot *c, sim_link *l,
                        const tern_client_event *ev) {
  switch (ev->type) {
  case TERN_CLIENT_EV_MESSAGE:
    on_message(s, c, l, ev);
    break;
  case TERN_CLIENT_EV_GAP:
    on_gap(s, c, l, ev);
    break;
  case TERN_CLIENT_EV_RESYNC:
    sim_log(s, "app %s#%u: RESYNC reason %d", c->key, c->incarnation,
            ev->reason);
    if (ev->reason == TERN_CLIENT_RESYNC_SESSION) {
      /* Right only when the session it last saw expired since. */
      if (!c->session_lost) {
        sim_fail(s, 0, "app %s got RESYNC (session), but its session "
                       "never expired",
                 c->key);
      }
    } else if (!c->epoch_lost) {
      sim_fail(s, 0, "app %s got RESYNC (reason %d), but the hub never "
                     "lost its state",
               c->key, ev->reason);
    }
    c->epoch_lost = 0;
    c->session_lost = 0;
    /* The client forgot the ids it saw: the app may see them again. */
    kmap_clear(&c->seen);
    c->inc_deliveries = 0;
    break;
  default:
    break;
  }
}

void model_after_read(sim *s, sim_link *l) {
  if (l->nmatched < l->nnotices &&
      l->notices[l->nmatched].end_off <= l->down.delivered) {
    const notice *n = &l->notices[l->nmatched];
    sim_fail(s, 6, "DROPPED %llu (reason %d) reached client %s, no GAP "
                   "event followed",
             (unsigned long long)n->count, n->reason, s->cl[l->client].key);
    ++l->nmatched; /* report once */
  }
}

static void lose_notice(sim *s, sim_link *l, const notice *n) {
  s->insts[n->inst].lost[n->reason - 1] += n->count;
  s->res->lost_notices += n->count;
  sim_log(s, "link %u: DROPPED %llu (reason %d) lost with the connection",
          l->id, (unsigned long long)n->count, n->reason);
  if (s->opt.strict_dropped) {
    sim_fail(s, 6, "DROPPED %llu (reason %d) for %s was written on link %u "
                   "and lost with it; the app never learns of the loss",
             (unsigned long long)n->count, n->reason, s->cl[l->client].key,
             l->id);
  }
}

void model_link_closed(sim *s, sim_link *l) {
  model_after_read(s, l);
  for (; l->nmatched < l->nnotices; ++l->nmatched) {
    lose_notice(s, l, &l->notices[l->nmatched]);
  }
}

void model_incarnation_end(sim *s, client_slot *c) {
  (void)s;
  kmap_clear(&c->seen);
  c->inc_deliveries = 0;
}

/* ---- the tap --------------------------------------------------------------- */

void model_tap_frame(sim *s, sim_link *l, const uint8_t *frame, size_t len,
                     uint64_t end_off) {
  wire_frame f;
  tern_ssize n = wire_frame_decode(&f, frame, len, (size_t)1 << 30);
  if (n != (tern_ssize)len) {
    sim_fail(s, 0, "link %u: the hub wrote a frame the codec refuses (%s)",
             l->id, n < 0 ? tern_strerror((int)n) : "short");
    return;
  }
  if (f.type == WIRE_MSG) {
    sent_rec *r = NULL;
    for (size_t i = l->nsent; i > 0; --i) {
      if (l->sent[i - 1].seq == f.u.msg.seq) {
        r = &l->sent[i - 1];
        break;
      }
    }
    if (!r) {
      sim_fail(s, 0, "link %u: MSG seq %llu on the wire without a SENT event",
               l->id, (unsigned long long)f.u.msg.seq);
      return;
    }
    r->ttl_ms = f.u.msg.ttl_ms;
    if (r->msg < 0) {
      topics_tap_msg(s, l, r, &f);
      return;
    }
    const mmsg *m = &s->msgs[r->msg];
    if (f.u.msg.idlen != m->idlen ||
        memcmp(f.u.msg.id, m->id, m->idlen) != 0) {
      sim_fail(s, 0, "link %u: MSG seq %llu carries another id than its "
                     "SENT event",
               l->id, (unsigned long long)f.u.msg.seq);
    }
    if (m->expiry == TERN_TSTAMP_NONE) {
      if (f.u.msg.ttl_ms != 0) {
        sim_fail(s, 3, "%s never expires but went out with ttl_ms %llu",
                 sim_idstr(m), (unsigned long long)f.u.msg.ttl_ms);
      }
    } else {
      tern_duration left = m->expiry - r->at;
      tern_duration said = f.u.msg.ttl_ms * TERN_MILLISECONDS;
      if (said < left || said >= left + TERN_MILLISECONDS) {
        sim_fail(s, 3, "%s sent with %.6f s to live, its frame says %llu ms",
                 sim_idstr(m), (double)left / 1e9,
                 (unsigned long long)f.u.msg.ttl_ms);
      }
    }
    return;
  }
  if (f.type != WIRE_DROPPED) {
    return;
  }
  if (f.u.dropped.count == 0 || f.u.dropped.reason < 1 ||
      f.u.dropped.reason > (s->tp ? TERN_DROP_RETENTION : 3)) {
    sim_fail(s, 6, "DROPPED with count %llu reason %llu",
             (unsigned long long)f.u.dropped.count,
             (unsigned long long)f.u.dropped.reason);
    return;
  }
  if (l->nnotices == l->noticecap) {
    l->noticecap = l->noticecap ? l->noticecap * 2 : 8;
    l->notices = xrealloc(l->notices, l->noticecap * sizeof(*l->notices));
  }
  notice *nt = &l->notices[l->nnotices++];
  nt->end_off = end_off;
  nt->count = f.u.dropped.count;
  nt->reason = (uint8_t)f.u.dropped.reason;
  nt->inst = s->cl[l->client].inst;
  s->insts[nt->inst].written[nt->reason - 1] += nt->count;
  sim_log(s, "link %u: hub wrote DROPPED %llu reason %d", l->id,
          (unsigned long long)nt->count, nt->reason);
  if (!l->client_side) {
    /* Nobody reads this connection any more. */
    lose_notice(s, l, nt);
    ++l->nmatched;
  }
}

/* ---- per-step and final checks -------------------------------------------- */

/* The hub's session for a client, with its internals. */
static const session *hub_session(sim *s, const client_slot *c) {
  return (const session *)tern_hub_find_session(
      s->hub, (const uint8_t *)c->key, c->keylen);
}

void model_check_step(sim *s) {
  if (s->dur) {
    durable_check_step(s);
  }
  if (!s->hub) {
    return; /* --hub-restart: down between a crash and its restart */
  }
  tern_stats st;
  tern_hub_get_stats(s->hub, &st, sizeof(st));
  if (st.events_lost) {
    sim_fail(s, 0, "the hub lost %llu events; the model is blind",
             (unsigned long long)st.events_lost);
  }
  uint64_t all_theld = 0;
  for (int i = 0; i < s->nclients; ++i) {
    uint64_t b;
    all_theld += topics_held(s, i, &b);
  }
  if (st.messages != s->total_live + all_theld) {
    sim_fail(s, 0, "the hub holds %llu messages, its trace says %llu (%llu "
                   "of topics)",
             (unsigned long long)st.messages,
             (unsigned long long)(s->total_live + all_theld),
             (unsigned long long)all_theld);
  }
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    const session *ss = hub_session(s, c);
    if (!ss) {
      if (s->live_n[i]) {
        sim_fail(s, 0, "%s has no session on the hub, the trace says it "
                       "holds %u messages",
                 c->key, s->live_n[i]);
      }
      continue;
    }
    tern_session_info info;
    tern_session_get_info((const tern_session *)ss, &info, sizeof(info));
    const inst_rec *ir = &s->insts[c->inst];
    uint64_t tbytes;
    uint32_t theld = topics_held(s, i, &tbytes);
    if (info.pending + info.inflight != s->live_n[i] + theld ||
        info.pending_bytes != s->live_bytes[i] + tbytes) {
      sim_fail(s, 0, "%s: the hub holds %u messages (%llu bytes), the "
                     "trace says %u (%llu)",
               c->key, info.pending + info.inflight,
               (unsigned long long)info.pending_bytes, s->live_n[i] + theld,
               (unsigned long long)(s->live_bytes[i] + tbytes));
    }
    uint64_t discards = ir->discards[0] + ir->discards[1] + ir->discards[2];
    if (info.dropped != discards) {
      sim_fail(s, 6, "%s: session_info.dropped is %llu, the trace has %llu "
                     "discards",
               c->key, (unsigned long long)info.dropped,
               (unsigned long long)discards);
    }
    /* Notices written on a connection that then died before an ACK
       confirmed them are told again, so what was written and what is
       still to tell may exceed the discards; never fall short. */
    for (int r = 0; r < 3; ++r) {
      if (ss->dropped[r] + ir->written[r] < ir->discards[r] + ir->carried[r]) {
        sim_fail(s, 6, "%s reason %d: %llu discards (%llu carried over a "
                       "restart), but only %llu written in DROPPED notices "
                       "and %u still to tell",
                 c->key, r + 1, (unsigned long long)ir->discards[r],
                 (unsigned long long)ir->carried[r],
                 (unsigned long long)ir->written[r], ss->dropped[r]);
      }
    }
  }
  /* A host that only writes what tern_hub_next_ready returns must not
     miss a writable connection. */
  for (sim_link *l = s->links; l; l = l->next) {
    if (l->conn && !l->hub_want && tern_conn_want_write(l->conn) &&
        link_room(&l->down) >= l->min_chunk) {
      /* Paced topic sends: a refill wakes as many waiting connections
         as it brings tokens (tern.h, topic_rate), so a connection may
         want to write before its turn comes; counted as late wakeups
         (driver.c), and the quiet phase checks that all arrive. */
      if (s->tp && topics_paced(s)) {
        l->hub_want = 1; /* the next pump writes it: see driver.c */
        l->probe = 1;
        continue;
      }
      sim_fail(s, 0, "link %u: the connection wants to write but "
                     "tern_hub_next_ready never returned it",
               l->id);
      l->hub_want = 1; /* report once, keep the run going */
    }
  }
}

int model_drained(sim *s) {
  if (s->total_live || !topics_drained(s)) {
    return 0;
  }
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    sim_link *l = c->cur;
    if (!c->c || !l || !l->connected || l->dead ||
        l->nmatched < l->nnotices) {
      return 0;
    }
    const session *ss = hub_session(s, c);
    if (ss && (ss->dropped[0] || ss->dropped[1] || ss->dropped[2])) {
      return 0;
    }
  }
  return 1;
}

static void describe_left(sim *s) {
  int shown = 0;
  topics_describe(s);
  for (size_t i = 0; i < s->nmsgs && shown < 5; ++i) {
    const mmsg *m = &s->msgs[i];
    if (m->state != M_LIVE) {
      continue;
    }
    ++shown;
    sim_log(s, "left: %s of %s prio %d published %.6f expiry %.6f sends %u "
               "deliveries %u",
            sim_idstr(m), s->cl[m->client].key, m->prio, secs(m->published),
            m->expiry == TERN_TSTAMP_NONE ? -1.0 : secs(m->expiry), m->sends,
            m->deliveries);
  }
  for (int i = 0; i < s->nclients; ++i) {
    const client_slot *c = &s->cl[i];
    sim_log(s, "client %s: %s, link %s%s%s, %u held", c->key,
            c->c ? "up" : "down", c->cur ? "yes" : "no",
            c->cur && c->cur->connected ? " connected" : "",
            c->cur && c->cur->dead ? " dead" : "", s->live_n[i]);
  }
}

void model_check_end(sim *s) {
  if (s->opt.policies && s->hub) {
    tern_stats st;
    tern_hub_get_stats(s->hub, &st, sizeof(st));
    s->res->deferred = st.accepts_deferred;
    if (!s->dur && (st.fallbacks != s->res->fallbacks ||
                    st.fallback_acked != s->res->fallback_acked)) {
      sim_fail(s, 0, "stats: %llu fallbacks, %llu acked after, the model "
                     "%llu and %llu",
               (unsigned long long)st.fallbacks,
               (unsigned long long)st.fallback_acked,
               (unsigned long long)s->res->fallbacks,
               (unsigned long long)s->res->fallback_acked);
    }
  }
  if (!model_drained(s)) {
    describe_left(s);
    const mmsg *first = NULL;
    for (size_t i = 0; i < s->nmsgs && !first; ++i) {
      if (s->msgs[i].state == M_LIVE) {
        first = &s->msgs[i];
      }
    }
    if (first) {
      sim_fail(s, 1, "after %.0f s of quiet with healthy links (the last "
                     "%.0f s without progress) the hub still holds %llu "
                     "messages, first %s of %s (sent %u times, delivered "
                     "%u)",
               (double)(s->now - s->quiet_start) / 1e9,
               (double)(s->now - (s->last_progress > s->quiet_start
                                      ? s->last_progress
                                      : s->quiet_start)) / 1e9,
               (unsigned long long)s->total_live, sim_idstr(first),
               s->cl[first->client].key, first->sends, first->deliveries);
    } else {
      sim_fail(s, 1, "after %.0f s of quiet with healthy links not every "
                     "client is connected with its DROPPED notices told",
               (double)(s->now - s->quiet_start) / 1e9);
    }
    return;
  }
  /* A session expires only without connections: not once every client
     was back. */
  tern_tstamp healthy = s->quiet_start + s->settle;
  for (size_t i = 0; i < s->nmsgs; ++i) {
    const mmsg *m = &s->msgs[i];
    if (m->state == M_SESSION_GONE && m->ended > healthy) {
      sim_fail(s, 1, "%s of %s %s at %.6f, although its client had healthy "
                     "links from %.6f",
               sim_idstr(m), s->cl[m->client].key, state_name(m->state),
               secs(m->ended), secs(healthy));
      return;
    }
  }
  /* 4: per client and priority, messages sent once arrive in publish
     order.  With hub restarts, a message that had left the hub (evicted,
     collapsed...) without its deletion becoming durable comes back, and
     may then follow newer ones sent while it was gone. */
  for (int i = 0; i < s->nclients; ++i) {
    uint64_t last[3] = {0, 0, 0};
    int32_t lastmsg[3] = {-1, -1, -1};
    for (size_t k = 0; k < s->nlog; ++k) {
      if (s->log[k].msg < 0) {
        continue; /* a topic message: topics.c */
      }
      const mmsg *m = &s->msgs[s->log[k].msg];
      if (m->client != i || m->sends != 1) {
        continue;
      }
      if (m->serial < last[m->prio] &&
          m->revived_at > s->msgs[lastmsg[m->prio]].send_restart) {
        ++s->res->order_lost;
        continue;
      }
      if (m->serial < last[m->prio]) {
        sim_fail(s, 4, "app %s got %s (priority %d) after %s, published "
                       "later, both sent once",
                 s->cl[i].key, sim_idstr(m), m->prio,
                 sim_idstr(&s->msgs[lastmsg[m->prio]]));
        return;
      }
      last[m->prio] = m->serial;
      lastmsg[m->prio] = s->log[k].msg;
    }
  }
  /* 6: the counts add up per session instance. */
  for (size_t k = 0; k < s->ninsts; ++k) {
    const inst_rec *ir = &s->insts[k];
    if (ir->discards[0] + ir->discards[1] + ir->discards[2]) {
      ++s->res->lossy_sessions;
      s->res->blind_sessions += !(ir->told[0] + ir->told[1] + ir->told[2]);
    }
    const session *ss =
        ir->ended ? NULL : hub_session(s, &s->cl[ir->client]);
    for (int r = 0; r < 3; ++r) {
      /* Every loss reaches the app at least once (a notice that may have
         died with its connection is told again); a session that ended
         takes what it had not told yet with it.  Still to tell: the
         session's count, and notices held by connections the hub does not
         know to be dead yet (told again when it does). */
      uint64_t held = 0;
      if (ss) {
        held = ss->dropped[r];
        for (const conn *cc = session_conns(ss); cc; cc = cc->session_next) {
          held += cc->aux ? cc->aux->told[r] : 0;
        }
      }
      if (ir->written[r] != ir->told[r] + ir->lost[r] ||
          (!ir->ended &&
           ir->told[r] + held < ir->discards[r] + ir->carried[r])) {
        sim_fail(s, 6, "%s (session %zu) reason %d: %llu discards, %llu "
                       "written in DROPPED, %llu told as GAP, %llu lost",
                 s->cl[ir->client].key, k, r + 1,
                 (unsigned long long)ir->discards[r],
                 (unsigned long long)ir->written[r],
                 (unsigned long long)ir->told[r],
                 (unsigned long long)ir->lost[r]);
        return;
      }
    }
  }
  if (s->tp) {
    topics_check_end(s);
  }
}

void model_baseline(sim *s) {
  const tern_hub *h = s->hub;
  s->base_blocks = s->hubmem.blocks;
  s->base_bytes = s->hubmem.bytes;
  s->base_hmap[0] = h->sessions.mask + 1;
  s->base_hmap[1] = h->collapse_index.mask + 1;
  s->base_hmap[2] = h->dedup_index.mask + 1;
  s->base_hmap[3] = h->topics.mask + 1;
  s->base_heap = h->timers.cap;
}

void model_check_memory(sim *s) {
  const tern_hub *h = s->hub;
  if (!h) {
    sim_fail(s, 0, "no hub to check at the end (it is down)");
    return;
  }
  tern_stats st;
  tern_hub_get_stats(s->hub, &st, sizeof(st));
  if (st.sessions || st.conns || st.messages || st.message_bytes ||
      st.inflight) {
    sim_fail(s, 7, "after every session expired the hub still has %llu "
                   "sessions, %llu connections, %llu messages",
             (unsigned long long)st.sessions, (unsigned long long)st.conns,
             (unsigned long long)st.messages);
    return;
  }
  /* What legitimately stays: pooled message blocks, the event arrays, the
     spare aux, peek and WebSocket side blocks, and tables that grew (they
     never shrink; growing swaps one block for a larger one). */
  long blocks = s->base_blocks + (long)h->pool_slabs + (h->ev ? 1 : 0) +
                (h->arena ? 1 : 0) + (h->aux_spare ? 1 : 0) +
                (h->peek_spare ? 1 : 0) + (h->ws_spare ? 1 : 0);
  size_t bytes = s->base_bytes + (size_t)h->pool_slabs * MSG_SLAB_BYTES +
                 h->ev_cap * sizeof(evrec) + h->arena_cap +
                 (h->aux_spare ? sizeof(conn_aux) : 0) +
                 (h->peek_spare ? TERN_CONN_PEEK_MAX : 0) +
                 (h->ws_spare ? sizeof(ws_side) : 0) +
                 (h->timers.cap - s->base_heap) * sizeof(timer *) +
                 (h->sessions.mask + 1 - s->base_hmap[0] +
                  h->collapse_index.mask + 1 - s->base_hmap[1] +
                  h->dedup_index.mask + 1 - s->base_hmap[2]) *
                     sizeof(hnode *);
  /* Topics: the member pool keeps its blocks (linked through their
     first word), and the table of topics may have grown. */
  for (void *b = h->member_chunks; b; b = *(void **)b) {
    size_t bsize = sim_alloc_size(&s->hubmem, b);
    if (bsize == SIZE_MAX) {
      sim_fail(s, 7, "a block of the member pool is not one the hub "
                     "allocated");
      return;
    }
    ++blocks;
    bytes += bsize;
  }
  bytes += (h->topics.mask + 1 - s->base_hmap[3]) * sizeof(hnode *);
  if (h->persist) {
    /* With a store: the persistence state and the blocks it points to
       (the batch being built, the SYNC publishes waiting), which keep the
       size the largest batch gave them.  Found by their addresses, as the
       layout is private to persist.c. */
    const void *p = h->persist;
    size_t psize = sim_alloc_size(&s->hubmem, p);
    if (psize == SIZE_MAX) {
      sim_fail(s, 7, "the hub's store state is not a block it allocated");
      return;
    }
    ++blocks;
    bytes += psize;
    const unsigned char *b = p;
    for (size_t off = 0; off + sizeof(void *) <= psize;
         off += sizeof(void *)) {
      const void *q;
      memcpy(&q, b + off, sizeof(q));
      size_t qsize = q && q != p ? sim_alloc_size(&s->hubmem, q) : SIZE_MAX;
      if (qsize != SIZE_MAX) {
        ++blocks;
        bytes += qsize;
      }
    }
  }
  if (s->hubmem.blocks != blocks || s->hubmem.bytes != bytes) {
    sim_fail(s, 7, "after every session expired the hub holds %ld blocks, "
                   "%zu bytes; its baseline and caches account for %ld, %zu",
             s->hubmem.blocks, s->hubmem.bytes, blocks, bytes);
  }
  if (s->hubmem.bad_frees) {
    sim_fail(s, 7, "the hub freed %ld pointers it did not allocate",
             s->hubmem.bad_frees);
  }
}
