/*
 * --topics: the hub's events about topic messages, the apps' side, and the
 * checks of the model of topic messages (topics.c's header says what they
 * are).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topics.h"
#include "wire/frame.h"

/* ---- the hub's events --------------------------------------------------------- */

static tpmsg *by_id(sim *s, const uint8_t *id, size_t idlen, int32_t *idx) {
  topics *T = s->tp;
  int32_t *v = kmap_find(&T->ids, id, idlen);
  if (!v) {
    return NULL;
  }
  *idx = *v;
  return &T->m[*v];
}

int topics_hub_event(sim *s, const tern_event *ev, int client) {
  topics *T = s->tp;
  int32_t idx;
  if (!T || client < 0 || !ev->msg_idlen ||
      ev->type == TERN_EV_ACCEPTED || ev->type == TERN_EV_PERSISTED) {
    return 0;
  }
  tpmsg *m = by_id(s, ev->msg_id, ev->msg_idlen, &idx);
  if (!m) {
    return 0;
  }
  tcopy *cp = &m->c[client];
  const char *key = s->cl[client].key;
  switch (ev->type) {
  case TERN_EV_SENT: {
    if (cp->state != C_PEND && cp->state != C_OUT) {
      sim_fail(s, 1, "topic message t%d (%s offset %llu) sent to %s, whose "
                     "copy is %s",
               (int)idx, topic_names[m->topic],
               (unsigned long long)m->offset, key, cstate_name(cp->state));
      return 1;
    }
    if (s->now >= m->expiry) {
      sim_fail(s, 3, "t%d sent to %s at %.6f, at or after its expiry %.6f",
               (int)idx, key, secs(s->now), secs(m->expiry));
    }
    sim_link *l = ev->conn ? tern_conn_get_user_data(ev->conn) : NULL;
    if (!l || l->client != client) {
      sim_fail(s, 0, "SENT of t%d without its connection", (int)idx);
      return 1;
    }
    if (ev->seq <= l->last_seq) {
      sim_fail(s, 0, "seq %llu after %llu on one connection",
               (unsigned long long)ev->seq, (unsigned long long)l->last_seq);
    }
    l->last_seq = ev->seq;
    if (cp->state == C_PEND) {
      ++m->sent;
    }
    tp_cset(s, m, client, C_OUT, 0);
    ++cp->sends;
    cp->last_inc = l->incarnation;
    if (l->nsent == l->sentcap) {
      l->sentcap = l->sentcap ? l->sentcap * 2 : 32;
      l->sent = xrealloc(l->sent, l->sentcap * sizeof(*l->sent));
    }
    sent_rec *sr = &l->sent[l->nsent++];
    sr->seq = ev->seq;
    sr->msg = -1 - idx;
    sr->at = s->now;
    sr->ttl_ms = UINT64_MAX;
    break;
  }
  case TERN_EV_ACKED: {
    if (cp->state != C_OUT) {
      sim_fail(s, 0, "ACKED for t%d of %s, whose copy is %s", (int)idx, key,
               cstate_name(cp->state));
      return 1;
    }
    uint8_t k[TERN_MAX_ID + 8];
    memcpy(k, &cp->last_inc, 4);
    memcpy(k + 4, m->id, m->idlen);
    if (!kmap_find(&s->cl[client].everseen, k, 4 + (size_t)m->idlen)) {
      sim_fail(s, 1, "t%d of %s acked but its app (#%u) never got it",
               (int)idx, key, cp->last_inc);
    }
    tp_cset(s, m, client, C_ACKED, 0);
    /* the receipt counts acks of members (not of ones that left) */
    const ssub *u = &T->subs[client][cp->sub];
    if (u->active && u->gen == cp->sub_gen) {
      ++m->acked;
    }
    ++s->res->topic_acked;
    s->last_progress = s->now;
    break;
  }
  case TERN_EV_EXPIRED:
  case TERN_EV_DEAD:
  case TERN_EV_EVICTED:
    if (cp->state != C_OUT && cp->state != C_PEND && cp->state != C_LEFT) {
      sim_fail(s, 0, "%s event for t%d of %s, whose copy is %s",
               ev->type == TERN_EV_EXPIRED ? "EXPIRED"
               : ev->type == TERN_EV_DEAD  ? "DEAD"
                                           : "EVICTED",
               (int)idx, key, cstate_name(cp->state));
      return 1;
    }
    if (ev->type == TERN_EV_EXPIRED && s->now < m->expiry) {
      sim_fail(s, 0, "t%d expired at %.6f, before its expiry %.6f", (int)idx,
               secs(s->now), secs(m->expiry));
    }
    if (cp->state != C_LEFT) {
      ++s->insts[s->cl[client].inst].discards[ev->reason - 1];
    }
    if (ev->type == TERN_EV_EVICTED) {
      ++s->publish_evicted;
    }
    tp_cset(s, m, client,
         ev->type == TERN_EV_EXPIRED ? C_EXPIRED
         : ev->type == TERN_EV_DEAD  ? C_DEAD
                                     : C_EVICTED,
         0);
    s->last_progress = s->now;
    break;
  case TERN_EV_COLLAPSED:
    sim_fail(s, 0, "topic message t%d collapsed: it has no collapse key",
             (int)idx);
    break;
  default:
    break;
  }
  return 1;
}

void topics_session_expired(sim *s, int client) {
  topics *T = s->tp;
  if (!T) {
    return;
  }
  for (int k = 0; k < NSUBS; ++k) {
    T->subs[client][k].active = 0;
  }
  for (size_t i = 0; i < T->nm; ++i) {
    tcopy *cp = &T->m[i].c[client];
    if (cp->state == C_PEND || cp->state == C_OUT) {
      tp_cset(s, &T->m[i], client, C_GONE, 0);
    }
  }
}

uint32_t topics_held(const sim *s, int client, uint64_t *bytes) {
  const topics *T = s->tp;
  if (!T) {
    *bytes = 0;
    return 0;
  }
  *bytes = T->held_bytes[client];
  return T->held[client];
}

/* ---- the app's side ------------------------------------------------------------ */

static int topic_intact(const sim *s, const tpmsg *m, int32_t idx,
                        const tern_client_event *ev) {
  if (ev->idlen != m->idlen || memcmp(ev->id, m->id, m->idlen) != 0 ||
      ev->priority != m->prio || ev->payloadlen != m->paylen ||
      ev->collapse_keylen || ev->content_typelen) {
    return 0;
  }
  tern_attr a[3];
  char pbuf[8];
  size_t na = tp_attrs(m, a, pbuf);
  if (ev->nattrs != na) {
    return 0;
  }
  for (size_t i = 0; i < na; ++i) {
    size_t kl = strlen(a[i].key), vl = strlen(a[i].value);
    if (ev->attrs[i].keylen != kl || memcmp(ev->attrs[i].key, a[i].key, kl) ||
        ev->attrs[i].valuelen != vl ||
        memcmp(ev->attrs[i].value, a[i].value, vl)) {
      return 0;
    }
  }
  uint8_t want[8192];
  tp_payload(s, idx, want, m->paylen);
  return memcmp(ev->payload, want, m->paylen) == 0;
}

void topics_on_message(sim *s, client_slot *c, sim_link *l,
                       const tern_client_event *ev, int32_t idx) {
  topics *T = s->tp;
  if (!T || (size_t)idx >= T->nm) {
    sim_fail(s, 0, "MESSAGE with a topic payload the producers never made");
    return;
  }
  tpmsg *m = &T->m[idx];
  tcopy *cp = &m->c[c->idx];
  sim_log(s, "app %s#%u: MESSAGE t%d (%s offset %llu) seq %llu", c->key,
          c->incarnation, (int)idx, topic_names[m->topic],
          (unsigned long long)m->offset, (unsigned long long)ev->seq);
  if (!cp->sends) {
    sim_fail(s, 1, "t%d reached app %s, which it was never sent to (copy "
                   "%s)",
             (int)idx, c->key, cstate_name(cp->state));
    return;
  }
  if (!topic_intact(s, m, idx, ev)) {
    sim_fail(s, 0, "t%d reached app %s altered", (int)idx, c->key);
    return;
  }
  const sent_rec *r = model_find_sent(l, ev->seq);
  if (!r || r->msg != -1 - idx) {
    sim_fail(s, 0, "t%d reached the app with seq %llu, which the hub did "
                   "not send it with on this connection",
             (int)idx, (unsigned long long)ev->seq);
    return;
  }
  if (m->expiry == TERN_TSTAMP_NONE) {
    if (ev->ttl != 0) {
      sim_fail(s, 3, "t%d never expires, but the app got ttl %llu ns",
               (int)idx, (unsigned long long)ev->ttl);
    }
  } else if (ev->ttl == 0 || (r->ttl_ms != UINT64_MAX &&
                              ev->ttl > r->ttl_ms * TERN_MILLISECONDS)) {
    sim_fail(s, 3, "t%d: the app got ttl %llu ns, the frame carried %llu ms",
             (int)idx, (unsigned long long)ev->ttl,
             (unsigned long long)r->ttl_ms);
  }
  model_app_saw(s, c, -1 - idx, m->id, m->idlen);
  ++cp->deliveries;
  ++s->res->topic_delivered;
}

void topics_tap_msg(sim *s, sim_link *l, const sent_rec *r, const void *fp) {
  const wire_frame *f = fp;
  tpmsg *m = &s->tp->m[-1 - r->msg];
  if (f->u.msg.idlen != m->idlen ||
      memcmp(f->u.msg.id, m->id, m->idlen) != 0) {
    sim_fail(s, 0, "link %u: MSG seq %llu carries another id than its SENT "
                   "event",
             l->id, (unsigned long long)f->u.msg.seq);
  }
  if (m->expiry == TERN_TSTAMP_NONE) {
    if (f->u.msg.ttl_ms != 0) {
      sim_fail(s, 3, "t%d never expires but went out with ttl_ms %llu",
               -1 - r->msg, (unsigned long long)f->u.msg.ttl_ms);
    }
  } else {
    tern_duration left = m->expiry - r->at;
    tern_duration said = f->u.msg.ttl_ms * TERN_MILLISECONDS;
    if (said < left || said >= left + TERN_MILLISECONDS) {
      sim_fail(s, 3, "t%d sent with %.6f s to live, its frame says %llu ms",
               -1 - r->msg, (double)left / 1e9,
               (unsigned long long)f->u.msg.ttl_ms);
    }
  }
}

/* ---- checks ----------------------------------------------------------------- */

void topics_check_step(sim *s) {
  topics *T = s->tp;
  if (!T) {
    return;
  }
  if (s->hub) {
    for (int ci = 0; ci < s->nclients && !s->failed; ++ci) {
      uint32_t n = 0;
      tp_held_walk(s, ci, tp_held_mark, &n);
      if (n != T->held[ci]) {
        sim_fail(s, 0, "%s: the hub holds %u per-send topic messages, the "
                       "model %u",
                 s->cl[ci].key, n, T->held[ci]);
      }
    }
  }
  /* retention by age and TTL passes with time */
  tp_ttl_due(s);
  for (int i = 0; i < NTOPICS; ++i) {
    tp_trim(s, &T->tp[i]);
  }
}

int topics_drained(sim *s) {
  topics *T = s->tp;
  if (!T) {
    return 1;
  }
  for (size_t i = 0; i < T->nm; ++i) {
    for (int ci = 0; ci < s->nclients; ++ci) {
      int st = T->m[i].c[ci].state;
      if (st == C_PEND || st == C_OUT) {
        return 0;
      }
    }
  }
  for (int ci = 0; ci < s->nclients; ++ci) {
    const session *ss = tp_session(s, &s->cl[ci]);
    if (ss && topic_lost_total(ss)) {
      return 0;
    }
  }
  return 1;
}

int topics_paced(const sim *s) {
  const topics *T = s->tp;
  if (s->hs.topic_rate) {
    return 1;
  }
  for (int i = 0; i < T->ntopics; ++i) {
    if (T->tp[i].t && T->tp[i].rate) {
      return 1;
    }
  }
  return 0;
}

void topics_describe(sim *s) {
  topics *T = s->tp;
  if (!T) {
    return;
  }
  int shown = 0;
  for (size_t i = 0; i < T->nm && shown < 8; ++i) {
    for (int ci = 0; ci < s->nclients; ++ci) {
      const tcopy *cp = &T->m[i].c[ci];
      if (cp->state == C_PEND || cp->state == C_OUT) {
        ++shown;
        sim_log(s, "left: t%d (%s offset %llu) for %s: %s%s, sent %u",
                (int)i, topic_names[T->m[i].topic],
                (unsigned long long)T->m[i].offset, s->cl[ci].key,
                cstate_name(cp->state), cp->mat ? " (made)" : "", cp->sends);
      }
    }
  }
  for (int ci = 0; ci < s->nclients; ++ci) {
    const session *ss = tp_session(s, &s->cl[ci]);
    if (ss && topic_lost_total(ss)) {
      sim_log(s, "%s: %u retention losses not told", s->cl[ci].key,
              topic_lost_total(ss));
    }
    for (const member *mb = ss ? session_members(ss) : NULL; mb; mb = mb->s_next) {
      sim_log(s, "%s: member of %s: next_off %llu, lost %u, topic [%llu, "
                 "%llu)",
              s->cl[ci].key, mb->slot->topic->name,
              (unsigned long long)mb->next_off, mb->lost,
              (unsigned long long)mb->slot->topic->first,
              (unsigned long long)mb->slot->topic->end);
    }
  }
}

/* The receipt of the message at |off| of topic |i| against the model. */
static int check_receipt(sim *s, int i, uint64_t off) {
  topics *T = s->tp;
  stopic *t = &T->tp[i];
  const tpmsg *m = &T->m[t->log[off - 1]];
  tern_receipt rc;
  memset(&rc, 0, sizeof(rc));
  int rv = tern_topic_get_receipt(t->t, off, &rc, sizeof(rc));
  if (rv != 0) {
    sim_fail(s, 0, "tern_topic_get_receipt(%s, %llu): %s", t->name,
             (unsigned long long)off, tern_strerror(rv));
    return -1;
  }
  ++s->res->receipts_checked;
  if (rc.offset != off || rc.subscribed != m->members || rc.sent != m->sent ||
      rc.acked != m->acked) {
    sim_fail(s, 0, "receipt of t%d (%s offset %llu): %llu subscribed, %llu "
                   "sent, %llu acked; the model saw %u, %u, %u",
             t->log[off - 1], t->name, (unsigned long long)off,
             (unsigned long long)rc.subscribed, (unsigned long long)rc.sent,
             (unsigned long long)rc.acked, m->members, m->sent, m->acked);
    return -1;
  }
  return 0;
}

static void check_receipts(sim *s) {
  topics *T = s->tp;
  for (int i = 0; i < NTOPICS; ++i) {
    stopic *t = &T->tp[i];
    if (!t->t) {
      continue;
    }
    for (uint64_t off = t->first + 1; off <= t->n; ++off) {
      if (check_receipt(s, i, off) != 0) {
        return;
      }
    }
  }
}

/* Now and then during the chaos: one receipt, mid-broadcast too.  (What
   the hub made since the last walk would be missing: the host loops have
   not run yet in this step.) */
void tp_check_some_receipt(sim *s) {
  topics *T = s->tp;
  int i = (int)prng_below(&T->rng, (uint64_t)T->ntopics);
  stopic *t = &T->tp[i];
  if (t->t && t->n > t->first) {
    check_receipt(s, i, t->first + 1 + prng_below(&T->rng, t->n - t->first));
  }
}

void topics_check_end(sim *s) {
  topics *T = s->tp;
  if (!T) {
    return;
  }
  /* 1: nothing is left pending or out. */
  for (size_t i = 0; i < T->nm; ++i) {
    for (int ci = 0; ci < s->nclients; ++ci) {
      const tcopy *cp = &T->m[i].c[ci];
      if (cp->state == C_PEND || cp->state == C_OUT) {
        sim_fail(s, 1, "after the quiet phase t%d (%s offset %llu) is still "
                       "%s for %s (sent %u times)",
                 (int)i, topic_names[T->m[i].topic],
                 (unsigned long long)T->m[i].offset, cstate_name(cp->state),
                 s->cl[ci].key, cp->sends);
        return;
      }
    }
  }
  /* 4, topic form: per client, topic and priority, copies sent once come
     in offset order.  (Across priorities a member's cursor mostly keeps
     offset order, a HIGH message waiting behind an older LOW one of its
     topic; but a per-send message made and left pending when the write
     had no room lets a newer one of higher priority pass it.) */
  for (int ci = 0; ci < s->nclients; ++ci) {
    int32_t last[NTOPICS][3];
    for (int i = 0; i < NTOPICS; ++i) {
      last[i][0] = last[i][1] = last[i][2] = -1;
    }
    for (size_t k = 0; k < s->nlog; ++k) {
      int32_t lm = s->log[k].msg;
      if (lm >= 0 || s->log[k].client != ci) {
        continue;
      }
      const tpmsg *m = &T->m[-1 - lm];
      if (m->c[ci].sends != 1) {
        continue;
      }
      int32_t p = last[m->topic][m->prio];
      if (p >= 0 && T->m[p].offset > m->offset) {
        sim_fail(s, 4, "app %s got t%d (%s offset %llu) after t%d (offset "
                       "%llu), both sent once, of one priority",
                 s->cl[ci].key, (int)(-1 - lm), topic_names[m->topic],
                 (unsigned long long)m->offset, (int)p,
                 (unsigned long long)T->m[p].offset);
        return;
      }
      last[m->topic][m->prio] = -1 - lm;
    }
  }
  /* 6: what retention (by count or bytes: reason 4) and age took unsent
     reached the apps, with what expired (reason 1; the hub may tell a
     topic message that aged away either way). */
  for (size_t k = 0; k < s->ninsts && !s->failed; ++k) {
    const inst_rec *ir = &s->insts[k];
    const session *ss = ir->ended ? NULL : tp_session(s, &s->cl[ir->client]);
    if (ir->written[3] != ir->told[3] + ir->lost[3]) {
      sim_fail(s, 6, "%s (session %zu): %llu retention losses written in "
                     "DROPPED, %llu told as GAP, %llu lost",
               s->cl[ir->client].key, k, (unsigned long long)ir->written[3],
               (unsigned long long)ir->told[3],
               (unsigned long long)ir->lost[3]);
      return;
    }
    if (!ss) {
      continue;
    }
    uint64_t held = ss->dropped[0] + topic_lost_total(ss);
    for (const conn *cc = session_conns(ss); cc; cc = cc->session_next) {
      held += cc->aux ? cc->aux->told[0] + cc->aux->told_retention : 0;
    }
    uint64_t want = ir->discards[0] + ir->discards[3] + ir->tdiscards[0] +
                    ir->tdiscards[1] + ir->carried[0] + ir->carried[3];
    if (ir->told[0] + ir->told[3] + held < want) {
      sim_fail(s, 6, "%s (session %zu): %llu expired, %llu aged and %llu "
                     "retention losses of topic messages, but only %llu "
                     "told as GAP (reasons 1 and 4) and %llu still to tell",
               s->cl[ir->client].key, k, (unsigned long long)ir->discards[0],
               (unsigned long long)ir->tdiscards[0],
               (unsigned long long)ir->tdiscards[1],
               (unsigned long long)(ir->told[0] + ir->told[3]),
               (unsigned long long)held);
      return;
    }
  }
  if (!s->failed) {
    check_receipts(s);
  }
}

void topics_teardown(sim *s) {
  topics *T = s->tp;
  if (!T || !s->hub) {
    return;
  }
  for (int i = 0; i < NTOPICS; ++i) {
    stopic *t = &T->tp[i];
    if (t->t) {
      tern_topic_del(t->t, s->now);
      t->t = NULL;
    }
  }
}
