/*
 * Sending topic messages: picking a session's next topic message among its
 * members (merged with its direct messages by priority, then publish
 * serial), the per-send message made for it, members' cursors and
 * retention losses, and pacing (a token bucket per hub and per topic).
 *
 * Nothing here runs per member per message while the member is offline:
 * a member looks at its topic's log only when its session can write.
 */
#include "deliver/topic.h"

/* ---- pacing --------------------------------------------------------------- */

/* Refills a bucket of |rate| tokens a second, |burst| at most. */
static void refill(uint32_t *tokens, tern_tstamp *at, uint32_t rate,
                   uint32_t burst, tern_tstamp now) {
  if (now <= *at) {
    return;
  }
  uint64_t cap = burst ? burst : rate;
  uint64_t n = (now - *at) / (TERN_SECONDS / rate);
  if (n == 0) {
    return;
  }
  if (*tokens + n >= cap) {
    *tokens = (uint32_t)cap;
    *at = now;
  } else {
    *tokens += (uint32_t)n;
    *at += n * (TERN_SECONDS / rate);
  }
}

static void pace_wake(tern_hub *hub, tern_tstamp now);

/* 1 when topic |t| may send one message now; else notes when it may. */
static int pace_ok(tern_hub *hub, topic *t, tern_tstamp now) {
  tern_tstamp wait = TERN_TSTAMP_NONE;
  if (hub->set.topic_rate) {
    uint32_t had = hub->topic_tokens;
    refill(&hub->topic_tokens, &hub->topic_tokens_at, hub->set.topic_rate,
           hub->set.topic_burst, now);
    if (had == 0 && hub->topic_tokens && hub->topic_refill != TERN_TSTAMP_NONE) {
      /* This write found the hub's bucket refilled before its deadline:
         the sessions waiting for it may write now too, and paced_out no
         longer says otherwise, so they go back on the ready list now. */
      pace_wake(hub, now);
    }
    if (hub->topic_tokens == 0) {
      wait = hub->topic_tokens_at + TERN_SECONDS / hub->set.topic_rate;
    }
  }
  if (t->opt.rate) {
    uint32_t had = t->tokens;
    refill(&t->tokens, &t->tokens_at, t->opt.rate, t->opt.burst, now);
    if (had == 0 && t->tokens && hub->topic_refill != TERN_TSTAMP_NONE) {
      pace_wake(hub, now); /* likewise for the topic's bucket */
    }
    if (t->tokens == 0) {
      tern_tstamp w = t->tokens_at + TERN_SECONDS / t->opt.rate;
      wait = w < wait ? w : wait;
    }
  }
  if (wait == TERN_TSTAMP_NONE) {
    return 1;
  }
  if (wait < hub->topic_refill) {
    hub->topic_refill = wait;
  }
  return 0;
}

/* Takes a token from each bucket; an empty one notes its refill time,
   when the hub's expiry puts the waiting connections back on the ready
   list (they leave it meanwhile: topic_has_output says no). */
static void pace_take(tern_hub *hub, topic *t) {
  tern_tstamp wait = TERN_TSTAMP_NONE;
  if (hub->set.topic_rate && --hub->topic_tokens == 0) {
    wait = hub->topic_tokens_at + TERN_SECONDS / hub->set.topic_rate;
  }
  if (t->opt.rate && --t->tokens == 0) {
    tern_tstamp w = t->tokens_at + TERN_SECONDS / t->opt.rate;
    wait = w < wait ? w : wait;
  }
  if (wait < hub->topic_refill) {
    hub->topic_refill = wait;
  }
}

/* 1 when a bucket is known empty (no clock here: the refill deadline puts
   the connections back on the ready list). */
static int paced_out(const tern_hub *hub, const topic *t) {
  return (hub->set.topic_rate && hub->topic_tokens == 0) ||
         (t->opt.rate && t->tokens == 0);
}

void topic_pace_expiry(tern_hub *hub, tern_tstamp now) {
  if (hub->topic_refill <= now) {
    pace_wake(hub, now);
  }
}

/* Buckets refilled: as many waiting members' connections as there are
   tokens get back on the ready list. */
static void pace_wake(tern_hub *hub, tern_tstamp now) {
  hub->topic_refill = TERN_TSTAMP_NONE;
  uint64_t hub_budget = UINT64_MAX;
  if (hub->set.topic_rate) {
    refill(&hub->topic_tokens, &hub->topic_tokens_at, hub->set.topic_rate,
           hub->set.topic_burst, now);
    hub_budget = hub->topic_tokens;
  }
  /* Only as many connections as there are tokens get back on the ready
     list: waiting members are at the head of the online lists (those that
     caught up moved to the tail), so this walk is short. */
  for (topic *t = hub->topic_list; t && hub_budget; t = t->all_next) {
    if (!hub->set.topic_rate && !t->opt.rate) {
      continue; /* never waits */
    }
    uint64_t budget = hub_budget;
    if (t->opt.rate) {
      refill(&t->tokens, &t->tokens_at, t->opt.rate, t->opt.burst, now);
      budget = t->tokens < budget ? t->tokens : budget;
    }
    member *mb = t->online;
    for (; mb && budget; mb = mb->t_next) {
      if (member_behind(mb)) {
        session_notify(hub, mb->session);
        --budget;
        --hub_budget;
      } else if (mb->slot == &t->slots[0]) {
        mb = NULL; /* the rest caught up (a filtered member may be caught
                      up among members still waiting) */
        break;
      }
    }
    if (mb) {
      /* Members still wait; those notified may not take their tokens (a
         full window), so look again a token's time from now. */
      uint32_t rate = hub->set.topic_rate ? hub->set.topic_rate : t->opt.rate;
      if (t->opt.rate && t->opt.rate < rate) {
        rate = t->opt.rate;
      }
      tern_tstamp again = now + TERN_SECONDS / rate;
      hub->topic_refill = again < hub->topic_refill ? again : hub->topic_refill;
    }
  }
}

/* ---- members -------------------------------------------------------------- */

void member_catch_up(member *mb) {
  topic *t = mb->slot->topic;
  if (mb->next_off >= t->first) {
    return;
  }
  uint64_t n;
  if (mb->slot == &t->slots[0]) {
    n = t->first - mb->next_off;
  } else {
    n = (uint32_t)(mb->slot->evicted - mb->consumed);
    mb->consumed = mb->slot->evicted;
  }
  n += mb->lost;
  mb->lost = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
  mb->next_off = t->first;
  tern_hub *hub = t->hub;
  if (hub->persist && !hub->loading) {
    persist_sub_cursor(hub, mb);
  }
}

static int expired(const topic *t, const tmsg *tm, tern_tstamp now) {
  return tm->expiry <= now ||
         (t->opt.max_age && tm->published + t->opt.max_age <= now);
}

/* The log's head is past its time (an empty log has no head: its slot at
   t->first may be stale, or the log not allocated at all after a load). */
static int head_expired(const topic *t, tern_tstamp now) {
  return t->first < t->end && expired(t, log_at(t, t->first), now);
}

uint32_t member_losses(const member *mb, tern_tstamp now) {
  const topic *t = mb->slot->topic;
  uint64_t n = mb->lost;
  uint64_t o = mb->next_off;
  if (o < t->first) { /* as member_catch_up counts */
    n += mb->slot == &t->slots[0] ? t->first - o
                                  : mb->slot->evicted - mb->consumed;
    o = t->first;
  }
  uint64_t bit = (uint64_t)1 << (mb->slot - t->slots);
  uint64_t end = mb->slot == &t->slots[0] ? t->end : mb->slot->tail;
  for (; o < end; ++o) {
    const tmsg *tm = log_at(t, o);
    n += (tm->match & bit) && expired(t, tm, now);
  }
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* The member's next message to send, skipping those its filter does not
   match and counting those past their time as lost; NULL when none. */
static tmsg *member_advance(tern_hub *hub, member *mb, tern_tstamp now,
                            int *found) {
  topic *t = mb->slot->topic;
  if (!member_behind(mb) && mb->next_off >= t->first) {
    return NULL; /* caught up: the common case of a second look */
  }
  if (head_expired(t, now)) {
    topic_evict_due(hub, t, now);
  }
  uint32_t lost = mb->lost;
  member_catch_up(mb);
  uint32_t i = (uint32_t)(mb->slot - t->slots);
  uint64_t bit = (uint64_t)1 << i;
  while (mb->next_off < t->end) {
    tmsg *tm = log_at(t, mb->next_off);
    if (!(tm->match & bit)) {
      ++mb->next_off;
      continue;
    }
    if (!expired(t, tm, now)) {
      break;
    }
    mb->lost += mb->lost != UINT32_MAX;
    mb->consumed += i != 0;
    ++mb->next_off;
  }
  if (mb->lost != lost) {
    *found |= TOPIC_NEXT_LOST;
  }
  return mb->next_off < t->end ? log_at(t, mb->next_off) : NULL;
}

msg *topic_next(tern_hub *hub, session *s, msg *direct, tern_tstamp now,
                int *found) {
  member *best = NULL;
  tmsg *btm = NULL;
  for (member *mb = session_members(s); mb; mb = mb->s_next) {
    tmsg *tm = member_advance(hub, mb, now, found);
    if (!tm) {
      continue;
    }
    if (btm && (tm->priority < btm->priority ||
                (tm->priority == btm->priority && tm->serial > btm->serial))) {
      continue;
    }
    if (!pace_ok(hub, mb->slot->topic, now)) {
      continue;
    }
    best = mb;
    btm = tm;
  }
  if (!best || (direct && (direct->priority > btm->priority ||
                           (direct->priority == btm->priority &&
                            direct->serial < btm->serial)))) {
    return direct;
  }
  topic *t = best->slot->topic;
  msg *m = msg_new_shared(hub, btm->pl, btm->priority, btm->expiry, 0);
  if (!m) {
    *found |= TOPIC_NEXT_NOMEM;
    return NULL;
  }
  pace_take(hub, t);
  uint64_t off = best->next_off++;
  if (!member_behind(best) && best->t_next &&
      (hub->set.topic_rate || t->opt.rate)) {
    /* caught up: to the tail, so that paced refills find the waiting
       members first */
    tlist_unlink(t, best, 1);
    tlist_push(t, best, 1, 1);
  }
  best->consumed += best->slot != &t->slots[0];
  m->flags |= MSG_TOPIC;
  m->cklen = 0; /* topic messages do not collapse */
  m->serial = btm->serial;
  msg_ref *r = msg_ref_of(m);
  r->mb = best;
  r->offset = off;
  /* Offsets only grow: the new one goes last. */
  if (best->out) {
    msg *first = best->out;
    msg *last = msg_ref_of(first)->mprev;
    r->mprev = last;
    r->mnext = first;
    msg_ref_of(last)->mnext = m;
    msg_ref_of(first)->mprev = m;
  } else {
    r->mprev = r->mnext = m;
    best->out = m;
  }
  /* Pending in its session like any message, at the head of its queue
     (it goes before the direct message there). */
  session_enqueue(s, m);
  s->queue[m->priority] = m;
  ++hub->stats.messages;
  hub->stats.message_bytes += m->payloadlen;
  if (m->expiry < s->msg_due) {
    s->msg_due = m->expiry;
    session_arm(hub, s);
  }
  return m;
}

int topic_has_output(const tern_hub *hub, const session *s) {
  if (s->tp && s->tp->lost) {
    return 1; /* losses of members that left, to tell */
  }
  for (const member *mb = session_members(s); mb; mb = mb->s_next) {
    const topic *t = mb->slot->topic;
    /* Losses counted, to tell; or a message to send or pass (a loss not
       counted yet lies behind one the filter matched, so this covers
       it), unless the bucket is empty: then the refill wakes it
       (pace_wake), and only then may it look, or the want would change
       without the connection being put back on the ready list. */
    if (mb->lost || (member_behind(mb) && !paced_out(hub, t))) {
      return 1;
    }
  }
  return 0;
}

uint32_t topic_lost_total(const session *s) {
  uint64_t n = s->tp ? s->tp->lost : 0;
  for (const member *mb = session_members(s); mb; mb = mb->s_next) {
    n += mb->lost;
  }
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

void topic_lost_told(session *s) {
  if (!s->tp) {
    return;
  }
  s->tp->lost = 0;
  for (member *mb = s->tp->members; mb; mb = mb->s_next) {
    mb->lost = 0;
  }
}

void topic_lost_return(session *s, uint32_t n) {
  /* s->tp stays while a connection holds told losses (topic_session_trim) */
  uint64_t v = (uint64_t)s->tp->lost + n;
  s->tp->lost = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

uint32_t topic_refresh(tern_hub *hub, session *s, tern_tstamp now) {
  uint64_t n = s->tp ? s->tp->lost : 0;
  for (member *mb = session_members(s); mb; mb = mb->s_next) {
    topic *t = mb->slot->topic;
    if (mb->next_off < t->end && head_expired(t, now)) {
      topic_evict_due(hub, t, now);
    }
    if (mb->next_off < t->first) {
      member_catch_up(mb);
    }
    n += mb->lost;
  }
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}
