/*
 * --topics: topics, members joining and leaving, topic publishes and
 * tern_hub_publish_many, and the model of topic messages.
 *
 * The scenario.  A run creates a few topics from a fixed set of names
 * (retention limits by count, bytes and age drawn from the seed).  Now and
 * then a client's session subscribes with a pattern (an exact name or a
 * wildcard one: "trade.*", "order.#", "#.error", "#") and sometimes a
 * filter over the message attrs (status, price, region), or drops one of
 * its subscriptions; such changes also come right after a publish, before
 * the host writes anything (a member joining or leaving mid-broadcast).
 * Producers publish to topics (any priority, with or without a TTL)
 * besides their direct messages, and publish one payload to a random set
 * of sessions with tern_hub_publish_many (booked as direct messages, one
 * model record per recipient sharing the payload's tag).
 *
 * The model.  A topic message is one record (tpmsg) with one copy per
 * client; a copy is expected when, at publish, the client's session had a
 * subscription whose pattern matches the topic and whose filter passes the
 * message (the model has its own matcher and evaluator, written from
 * tern-filter(7)).  A session holds at most one subscription matching any
 * topic name of the run, so "member of topic T" is one subscription.
 * Each step the model walks what the hub's sessions hold (deliver/hub.h):
 * a per-send message the hub made for a copy (made when a write picks it,
 * left pending when the write had no room) keeps its payload, so that copy
 * is no longer lost to retention.  The invariants then read, for copies:
 *  1  an expected copy reaches its app (acked at the end), or is lost
 *     unsent to retention (count, bytes) or to its time (TTL, max_age),
 *     or expires or is evicted or dies after it was made (events), or its
 *     member left before it was sent (or while it waited to be sent
 *     again: the hub discards it then, without an event), or its session
 *     expired; nothing else.  A copy that is not expected is never sent
 *     nor made: a member joining gets nothing published before it joined,
 *     one leaving gets nothing sent after it left but what was in flight,
 *     a filter that fails keeps the message away.  The hub holds exactly
 *     the per-send messages of the copies the model has sent or made;
 *  2  dedup as for direct messages (ids are unique per topic message);
 *  3  no send at or after the expiry, honest ttl_ms;
 *  4  per client, topic and priority, copies sent once reach the app in
 *     offset order;
 *  6  what retention and time took unsent from a session instance is told
 *     in DROPPED (reason 4; reason 1 counted with it), at least once and
 *     every notice written either told or lost with its connection, once
 *     the quiet phase drained;
 *  7  memory: the topics are deleted in the teardown, then the hub is back
 *     to its baseline (the member pool keeps its blocks);
 *  receipts: at the end of the quiet phase, for every retained message,
 *     tern_topic_get_receipt's counts equal the model's (members whose
 *     filter matched at publish, copies sent at least once, copies acked
 *     while a member).
 * Pacing (topic_rate, a topic's rate) wakes as many waiting connections
 * at a refill as it brings tokens: one wanting to write before its turn
 * is tolerated and counted (late wakeups), and the quiet phase checks
 * that everything arrives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topics.h"

/* ---- the fixed names ------------------------------------------------------- */

const char *const topic_names[NTOPICS] = {
    "news", "trade.usd", "trade.eur", "order.new.eu", "order.paid",
    "db.error"};

const char *const patterns[] = {
    "news", "trade.usd", "trade.eur", "order.new.eu", "order.paid",
    "db.error", "trade.*", "order.#", "#.error", "#", "*.usd", "order.*.eu"};

const char *const statuses[] = {"Add", "Update", "Del"};

const char *const regions[] = {"eu", "us", "ap"};

/* ---- small helpers -------------------------------------------------------- */

/* The model's own pattern matcher (tern-filter(7)): '*' one segment, '#'
   zero or more. */
static int seg_len(const char *p) {
  int n = 0;
  while (p[n] && p[n] != '.') {
    ++n;
  }
  return n;
}

int tp_pmatch(const char *pat, const char *name) {
  if (!*pat) {
    return !*name;
  }
  int pl = seg_len(pat);
  const char *pn = pat[pl] ? pat + pl + 1 : pat + pl;
  if (pl == 1 && pat[0] == '#') {
    /* zero segments, or one and stay on '#' */
    if (tp_pmatch(pn, name)) {
      return 1;
    }
    if (!*name) {
      return 0;
    }
    int nl = seg_len(name);
    return tp_pmatch(pat, name[nl] ? name + nl + 1 : name + nl) ||
           (!name[nl] && !*pn);
  }
  if (!*name) {
    return 0;
  }
  int nl = seg_len(name);
  const char *nn = name[nl] ? name + nl + 1 : name + nl;
  if (!(pl == 1 && pat[0] == '*') &&
      (pl != nl || memcmp(pat, name, (size_t)pl) != 0)) {
    return 0;
  }
  if (!pat[pl] && !name[nl]) {
    return 1;
  }
  if (!pat[pl] || !name[nl]) {
    /* one ended: the rest of the pattern may still be "#" */
    return !name[nl] && pat[pl] && strcmp(pn, "#") == 0;
  }
  return tp_pmatch(pn, nn);
}

static int pred_eval(const spred *p, const tpmsg *m) {
  int have, v;
  switch (p->attr) {
  case A_STATUS:
    have = m->status >= 0;
    v = m->status;
    break;
  case A_PRICE:
    have = m->price >= 0;
    v = m->price;
    break;
  default:
    have = m->region >= 0;
    v = m->region;
    break;
  }
  int r;
  if (p->kind == P_EXISTS) {
    r = have;
  } else if (!have) {
    r = 0;
  } else if (p->kind == P_IN) {
    r = (p->set >> v) & 1;
  } else if (p->kind == P_NOTIN) {
    r = !((p->set >> v) & 1);
  } else {
    switch (p->op) {
    case OP_EQ: r = v == p->v; break;
    case OP_NE: r = v != p->v; break;
    case OP_LT: r = v < p->v; break;
    case OP_LE: r = v <= p->v; break;
    case OP_GT: r = v > p->v; break;
    default: r = v >= p->v; break;
    }
  }
  return p->neg ? !r : r;
}

static int filter_eval(const sfilter *f, const tpmsg *m) {
  if (!f->np) {
    return 1;
  }
  int r = pred_eval(&f->p[0], m);
  if (f->np == 2) {
    int r2 = pred_eval(&f->p[1], m);
    r = f->any ? (r || r2) : (r && r2);
  }
  return r;
}

static const char *const attr_names[] = {"status", "price", "region"};
static const char *const op_text[] = {"=", "!=", "<", "<=", ">", ">="};

static const char *attr_value(int attr, int v, char *buf, size_t cap,
                              prng *r) {
  if (attr == A_STATUS) {
    return statuses[v];
  }
  if (attr == A_REGION) {
    return regions[v];
  }
  /* numbers, sometimes written unusually: equal as decimals */
  switch (prng_below(r, 4)) {
  case 0:
    snprintf(buf, cap, "%d.00", v);
    break;
  case 1:
    snprintf(buf, cap, "0%d", v);
    break;
  default:
    snprintf(buf, cap, "%d", v);
    break;
  }
  return buf;
}

static void pred_draw(prng *r, spred *p) {
  memset(p, 0, sizeof(*p));
  p->neg = prng_pct(r, 15) ? 1 : 0;
  p->attr = (uint8_t)prng_below(r, 3);
  unsigned k = (unsigned)prng_below(r, 10);
  int nv = p->attr == A_PRICE ? 0 : 3;
  if (k == 0) {
    p->kind = P_EXISTS;
  } else if (nv && k < 4) {
    p->kind = prng_pct(r, 70) ? P_IN : P_NOTIN;
    p->set = (unsigned)prng_range(r, 1, 6);
  } else {
    p->kind = P_CMP;
    if (p->attr == A_PRICE) {
      p->op = (uint8_t)prng_below(r, 6);
      p->v = (int)prng_range(r, 0, 200);
    } else {
      p->op = (uint8_t)prng_below(r, 2);
      p->v = (int)prng_below(r, 3);
    }
  }
}

static size_t pred_text(prng *r, const spred *p, char *out, size_t cap) {
  char nb[16];
  size_t n = 0;
  if (p->neg) {
    n += (size_t)snprintf(out + n, cap - n, "not ");
  }
  const char *an = attr_names[p->attr];
  if (p->kind == P_EXISTS) {
    n += (size_t)snprintf(out + n, cap - n, "exists %s", an);
  } else if (p->kind == P_CMP) {
    n += (size_t)snprintf(out + n, cap - n, "%s %s %s", an, op_text[p->op],
                          attr_value(p->attr, p->v, nb, sizeof(nb), r));
  } else {
    n += (size_t)snprintf(out + n, cap - n, "%s %sin (", an,
                          p->kind == P_NOTIN ? "not " : "");
    int first = 1;
    for (int v = 0; v < 3; ++v) {
      if ((p->set >> v) & 1) {
        n += (size_t)snprintf(out + n, cap - n, "%s%s", first ? "" : ", ",
                              attr_value(p->attr, v, nb, sizeof(nb), r));
        first = 0;
      }
    }
    n += (size_t)snprintf(out + n, cap - n, ")");
  }
  return n;
}

static void filter_draw(prng *r, sfilter *f) {
  memset(f, 0, sizeof(*f));
  f->np = prng_pct(r, 60) ? 1 : 2;
  f->any = prng_pct(r, 50);
  size_t n = 0;
  for (int i = 0; i < f->np; ++i) {
    pred_draw(r, &f->p[i]);
    if (i) {
      n += (size_t)snprintf(f->text + n, sizeof(f->text) - n, " %s ",
                            f->any ? (prng_pct(r, 50) ? "or" : "OR")
                                   : (prng_pct(r, 50) ? "and" : "AND"));
    }
    n += pred_text(r, &f->p[i], f->text + n, sizeof(f->text) - n);
  }
}

/* Two patterns that match one topic name of the run overlap. */
static int overlaps(int a, int b) {
  for (int t = 0; t < NTOPICS; ++t) {
    if (tp_pmatch(patterns[a], topic_names[t]) &&
        tp_pmatch(patterns[b], topic_names[t])) {
      return 1;
    }
  }
  return 0;
}

/* The client's subscription whose pattern matches topic |t|, or -1. */
static int member_sub(const topics *T, int client, int t) {
  for (int k = 0; k < NSUBS; ++k) {
    const ssub *u = &T->subs[client][k];
    if (u->active && tp_pmatch(patterns[u->pat], topic_names[t])) {
      return k;
    }
  }
  return -1;
}

const session *tp_session(sim *s, const client_slot *c) {
  return (const session *)tern_hub_find_session(
      s->hub, (const uint8_t *)c->key, c->keylen);
}

/* tp_cset moves a copy to state |st| (and |mat|), keeping the counts of
   held copies. */
void tp_cset(sim *s, tpmsg *m, int ci, int st, int mat) {
  topics *T = s->tp;
  tcopy *cp = &m->c[ci];
  int was = is_held(cp);
  cp->state = (uint8_t)st;
  cp->mat = (uint8_t)(st == C_PEND && mat);
  int now = is_held(cp);
  if (was && !now) {
    --T->held[ci];
    T->held_bytes[ci] -= m->paylen;
  } else if (now && !was) {
    ++T->held[ci];
    T->held_bytes[ci] += m->paylen;
  }
}

/* ---- setup ------------------------------------------------------------------ */

/* Before the hub is created: draws the topic scenario and the hub's
   pacing settings. */
void topics_init(sim *s) {
  topics *T = calloc(1, sizeof(*T));
  if (!T) {
    abort();
  }
  s->tp = T;
  /* A stream of its own, so the topic draws do not shift each other. */
  T->rng.s = s->opt.seed ^ UINT64_C(0x746f70696373);
  prng *r = &T->rng;
  T->ntopics = (int)prng_range(r, 2, NTOPICS);
  for (int i = 0; i < NTOPICS; ++i) {
    stopic *t = &T->tp[i];
    t->name = topic_names[i];
    if (prng_pct(r, 60)) {
      t->max_count = (uint32_t)prng_range(r, 1, 40);
    }
    if (prng_pct(r, 30)) {
      t->max_bytes = prng_range(r, 2000, 40000);
    }
    if (prng_pct(r, 30)) {
      t->max_age = SIM_SEC(prng_range(r, 2, 60));
    }
    if (prng_pct(r, 15)) {
      t->rate = (uint32_t)prng_range(r, 1, 100);
      t->burst = prng_pct(r, 50) ? (uint32_t)prng_range(r, 1, 20) : 0;
    }
  }
  for (int i = 1; i < NFILTERS; ++i) {
    filter_draw(r, &T->filters[i]);
  }
  T->pct_topic = (unsigned)prng_range(r, 20, 60);
  T->pct_many = (unsigned)prng_range(r, 0, 20);
  T->pct_midcast = (unsigned)prng_range(r, 0, 30);
  T->change_gap = SIM_MS(prng_range(r, 200, 5000));
  if (prng_pct(r, 30)) {
    /* paced fan-out over the hub */
    s->hs.topic_rate = (uint32_t)prng_range(r, 2, 200);
    s->hs.topic_burst = prng_pct(r, 50) ? (uint32_t)prng_range(r, 1, 30) : 0;
  }
  sim_log(s, "topics: %d, hub pacing %u/s burst %u; %u%% topic publishes, "
             "%u%% publish_many, %u%% joins or leaves mid-broadcast",
          T->ntopics, s->hs.topic_rate, s->hs.topic_burst, T->pct_topic,
          T->pct_many, T->pct_midcast);
  T->next_change = SIM_T0 + SIM_MS(prng_range(r, 0, 3000));
  kmap_init(&T->ids, 1024);
}

void topics_free(sim *s) {
  topics *T = s->tp;
  if (!T) {
    return;
  }
  for (int i = 0; i < NTOPICS; ++i) {
    free(T->tp[i].log);
  }
  kmap_free(&T->ids);
  free(T->ttl);
  free(T->m);
  free(T);
  s->tp = NULL;
}

static void create_topic(sim *s, int i) {
  topics *T = s->tp;
  stopic *t = &T->tp[i];
  tern_topic_options o;
  tern_topic_options_default(&o);
  o.max_messages = t->max_count;
  o.max_bytes = t->max_bytes;
  o.max_age = t->max_age;
  o.rate = t->rate;
  o.burst = t->burst;
  int rv = tern_hub_create_topic(s->hub, t->name, &o, s->now, &t->t);
  sim_log(s, "topic %s created (retention %u messages, %llu bytes, %.0f s; "
             "pacing %u/s burst %u): %s",
          t->name, t->max_count, (unsigned long long)t->max_bytes,
          (double)t->max_age / 1e9, t->rate, t->burst,
          rv ? tern_strerror(rv) : "ok");
  if (rv != 0) {
    sim_fail(s, 0, "tern_topic_create(%s): %s", t->name, tern_strerror(rv));
    t->t = NULL;
  }
}

void topics_start(sim *s) {
  topics *T = s->tp;
  /* Most topics exist from the start; the others come later (a pattern
     subscribed before must then give their members). */
  for (int i = 0; i < T->ntopics; ++i) {
    if (i < 2 || prng_pct(&T->rng, 70)) {
      create_topic(s, i);
    }
  }
}

/* ---- what the hub holds ------------------------------------------------------ */

void tp_held_walk(sim *s, int client, held_fn fn, void *arg) {
  topics *T = s->tp;
  const session *ss = tp_session(s, &s->cl[client]);
  if (!ss) {
    return;
  }
  const msg *lists[3 + 64];
  int nl = 0, first_conn;
  for (int p = 0; p < 3; ++p) {
    lists[nl++] = ss->queue[p];
  }
  first_conn = nl;
  for (const conn *c = session_conns(ss); c && nl < 3 + 64; c = c->session_next) {
    lists[nl++] = c->inflight;
  }
  for (int i = 0; i < nl; ++i) {
    const msg *h = lists[i];
    if (!h) {
      continue;
    }
    const msg *m = h;
    do {
      if (m->flags & MSG_TOPIC) {
        int32_t *v = kmap_find(&T->ids, msg_tail(m) + m->id_off, m->idlen);
        if (!v) {
          sim_fail(s, 0, "%s holds a topic message with id %.*s, which was "
                         "never published",
                   s->cl[client].key, (int)m->idlen,
                   (const char *)msg_tail(m) + m->id_off);
          return;
        }
        fn(s, client, *v, i >= first_conn, arg);
      }
      m = m->next;
    } while (m != h);
  }
}

/* Per step: per-send messages the hub made are copies it no longer loses
   to retention; each must be of a copy the model expects. */
void tp_held_mark(sim *s, int client, int32_t tidx, int inflight,
                      void *arg) {
  (void)inflight;
  uint32_t *n = arg;
  tpmsg *m = &s->tp->m[tidx];
  tcopy *cp = &m->c[client];
  ++*n;
  if (cp->state == C_PEND && !cp->mat) {
    tp_cset(s, m, client, C_PEND, 1);
  } else if (cp->state != C_PEND && cp->state != C_OUT) {
    sim_fail(s, 1, "%s holds t%d (%s offset %llu) to send, whose copy is %s",
             s->cl[client].key, (int)tidx, topic_names[m->topic],
             (unsigned long long)m->offset, cstate_name(cp->state));
  }
}

/* After a leave: which copies out the hub still holds. */
typedef struct held_set {
  int32_t *v;
  size_t n, cap;
} held_set;

static void held_collect(sim *s, int client, int32_t tidx, int inflight,
                         void *arg) {
  (void)s;
  (void)client;
  (void)inflight;
  held_set *h = arg;
  if (h->n == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 16;
    h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
  }
  h->v[h->n++] = tidx;
}

/* ---- joining and leaving ---------------------------------------------------- */

/*
 * A member that leaves takes what it lost and did not tell (what it
 * counted, what retention discarded behind it, and what passed its time
 * before it came to it) to its session (tern_hub_unsubscribe's |now|),
 * which tells it: invariant 6 holds for every session instance.
 */
static void leave(sim *s, int ci, int k) {
  topics *T = s->tp;
  ssub *u = &T->subs[ci][k];
  client_slot *c = &s->cl[ci];
  const char *pat = patterns[u->pat];
  int nmem = 0;
  for (int t = 0; t < T->ntopics; ++t) {
    nmem += T->tp[t].t && tp_pmatch(pat, topic_names[t]);
  }
  tern_ssize rv = tern_hub_unsubscribe(s->hub, (const uint8_t *)c->key,
                                       c->keylen, pat, s->now);
  sim_log(s, "%s leaves %s: %s (%d members)", c->key, pat,
          rv < 0 ? tern_strerror((int)rv) : "ok", (int)rv);
  if (rv != nmem) {
    sim_fail(s, 0, "tern_hub_unsubscribe(%s, %s) gave %td, the model counts "
                   "%d members",
             c->key, pat, rv, nmem);
    return;
  }
  ++s->res->leaves;
  if (rv > 0) {
    s->insts[c->inst].tleft = 1;
  }
  u->active = 0;
  /* Copies not yet sent stay away from now on; those in flight are still
     delivered (and may be sent again) and acked.  Those sent whose
     connection went away before an ack wait in the session again: the
     hub discards them with the member (no event; the model learns it
     from what the session still holds). */
  held_set h = {NULL, 0, 0};
  tp_held_walk(s, ci, held_collect, &h);
  for (size_t i = 0; i < T->nm; ++i) {
    tcopy *cp = &T->m[i].c[ci];
    if (cp->sub != k || cp->sub_gen != u->gen) {
      continue;
    }
    int still = 0;
    if (cp->state == C_OUT) {
      for (size_t j = 0; j < h.n && !still; ++j) {
        still = h.v[j] == (int32_t)i;
      }
    }
    if (cp->state == C_PEND || (cp->state == C_OUT && !still)) {
      if (cp->state == C_PEND) {
        ++s->res->topic_left;
      }
      tp_cset(s, &T->m[i], ci, C_LEFT, 0);
    }
  }
  free(h.v);
}

static void join(sim *s, int ci) {
  topics *T = s->tp;
  client_slot *c = &s->cl[ci];
  int k = -1;
  for (int j = 0; j < NSUBS; ++j) {
    if (!T->subs[ci][j].active) {
      k = j;
      break;
    }
  }
  if (k < 0) {
    return;
  }
  int pat = (int)prng_below(&T->rng, NPATTERNS);
  for (int j = 0; j < NSUBS; ++j) {
    if (T->subs[ci][j].active && overlaps(T->subs[ci][j].pat, pat)) {
      return; /* one subscription per topic: see the header */
    }
  }
  int filt = prng_pct(&T->rng, 40) ? (int)prng_range(&T->rng, 1, NFILTERS - 1)
                                   : 0;
  const char *ftext = filt ? T->filters[filt].text : NULL;
  const char *p = patterns[pat];
  int nmem = 0;
  for (int t = 0; t < T->ntopics; ++t) {
    nmem += T->tp[t].t && tp_pmatch(p, topic_names[t]);
  }
  int exact = !strchr(p, '*') && !strchr(p, '#');
  size_t errpos = 0;
  tern_ssize rv = tern_hub_subscribe(s->hub, (const uint8_t *)c->key,
                                     c->keylen, p, ftext, s->now, &errpos);
  sim_log(s, "%s joins %s%s%s%s: %s (%d members)", c->key, p,
          ftext ? " where \"" : "", ftext ? ftext : "", ftext ? "\"" : "",
          rv < 0 ? tern_strerror((int)rv) : "ok", (int)rv);
  if (exact && !nmem) {
    if (rv != TERN_ERR_NOT_FOUND) {
      sim_fail(s, 0, "tern_hub_subscribe(%s, %s) to no topic gave %td",
               c->key, p, rv);
    }
    return;
  }
  if (rv != nmem) {
    sim_fail(s, 0, "tern_hub_subscribe(%s, %s, \"%s\") gave %td (%s at "
                   "%zu), the model counts %d topics",
             c->key, p, ftext ? ftext : "", rv,
             rv < 0 ? tern_strerror((int)rv) : "", errpos, nmem);
    return;
  }
  ++s->res->joins;
  ssub *u = &T->subs[ci][k];
  u->active = 1;
  u->pat = pat;
  u->filt = filt;
  u->gen = ++T->gen;
}

static void change(sim *s) {
  topics *T = s->tp;
  int ci = (int)prng_below(&T->rng, (uint64_t)s->nclients);
  int nact = 0;
  for (int k = 0; k < NSUBS; ++k) {
    nact += T->subs[ci][k].active;
  }
  if (nact && prng_pct(&T->rng, 45)) {
    int pick = (int)prng_below(&T->rng, (uint64_t)nact);
    for (int k = 0; k < NSUBS; ++k) {
      if (T->subs[ci][k].active && pick-- == 0) {
        leave(s, ci, k);
        break;
      }
    }
  } else {
    join(s, ci);
  }
}

tern_tstamp topics_next(const sim *s) {
  return s->tp && s->phase == PH_CHAOS ? s->tp->next_change
                                       : TERN_TSTAMP_NONE;
}

void topics_step(sim *s) {
  topics *T = s->tp;
  if (!T || s->phase != PH_CHAOS || !s->hub) {
    return;
  }
  while (T->next_change <= s->now && !s->failed) {
    tp_check_some_receipt(s);
    change(s);
    if (prng_pct(&T->rng, 3)) {
      /* a topic that did not exist comes now */
      for (int i = 0; i < T->ntopics; ++i) {
        if (!T->tp[i].t) {
          create_topic(s, i);
          break;
        }
      }
    }
    T->next_change += prng_range(&T->rng, 0, 2 * T->change_gap);
  }
}

/* ---- retention (the model's log) ------------------------------------------ */

/* A copy that retention takes before its first send is a loss of its
   session instance. */
static void lose_unsent(sim *s, int32_t idx, int by_age) {
  topics *T = s->tp;
  tpmsg *m = &T->m[idx];
  for (int ci = 0; ci < s->nclients; ++ci) {
    tcopy *cp = &m->c[ci];
    if (cp->state != C_PEND || cp->mat) {
      continue; /* a per-send message made before keeps its payload */
    }
    cp->quiet = 1;
    if (by_age) {
      tp_cset(s, m, ci, C_EXPIRED, 0);
    } else {
      tp_cset(s, m, ci, C_RETAINED, 0);
      ++s->res->topic_retention;
    }
    sim_log(s, "t%d (%s offset %llu) lost for %s unsent (%s)", (int)idx,
            topic_names[m->topic], (unsigned long long)m->offset,
            s->cl[ci].key, by_age ? "its time passed" : "retention");
    if (cp->inst == s->cl[ci].inst) {
      ++s->insts[cp->inst].tdiscards[by_age ? 0 : 1];
    }
  }
}

static void ttl_push(topics *T, tern_tstamp at, int32_t idx) {
  if (T->nttl == T->ttlcap) {
    T->ttlcap = T->ttlcap ? T->ttlcap * 2 : 64;
    T->ttl = xrealloc(T->ttl, T->ttlcap * sizeof(*T->ttl));
  }
  size_t i = T->nttl++;
  while (i > 0 && T->ttl[(i - 1) / 2].at > at) {
    T->ttl[i] = T->ttl[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  T->ttl[i].at = at;
  T->ttl[i].idx = idx;
}

static void ttl_pop(topics *T) {
  struct ttl_ent last = T->ttl[--T->nttl];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= T->nttl) {
      break;
    }
    if (c + 1 < T->nttl && T->ttl[c + 1].at < T->ttl[c].at) {
      ++c;
    }
    if (T->ttl[c].at >= last.at) {
      break;
    }
    T->ttl[i] = T->ttl[c];
    i = c;
  }
  if (T->nttl) {
    T->ttl[i] = last;
  }
}

/* Messages whose TTL passed: copies not sent (nor made) are losses. */
void tp_ttl_due(sim *s) {
  topics *T = s->tp;
  while (T->nttl && T->ttl[0].at <= s->now) {
    int32_t idx = T->ttl[0].idx;
    ttl_pop(T);
    lose_unsent(s, idx, 1);
  }
}

static void retire(sim *s, int32_t idx, int by_age) {
  s->tp->m[idx].retained = 0;
  lose_unsent(s, idx, by_age);
}

void tp_trim(sim *s, stopic *t) {
  topics *T = s->tp;
  for (;;) {
    uint64_t n = t->n - t->first;
    if (!n) {
      return;
    }
    tpmsg *m = &T->m[t->log[t->first]];
    int over = (t->max_count && n > t->max_count) ||
               (t->max_bytes && t->bytes > t->max_bytes);
    int aged = (t->max_age && s->now >= m->published + t->max_age) ||
               (m->expiry != TERN_TSTAMP_NONE && s->now >= m->expiry);
    if (!over && !aged) {
      return;
    }
    t->bytes -= m->paylen;
    ++t->first;
    retire(s, t->log[t->first - 1], aged && !over);
  }
}

/* ---- publishing --------------------------------------------------------------- */

void tp_payload(const sim *s, int32_t tidx, uint8_t *out,
                          size_t len) {
  prng r = {s->opt.seed ^ ((uint64_t)(uint32_t)tidx << 24) ^ 0x7470};
  uint32_t tag = (uint32_t)tidx | UINT32_C(0x80000000);
  for (size_t i = 0; i < len; ++i) {
    uint64_t v = i < 4 ? tag >> (8 * i) : prng_next(&r);
    out[i] = (uint8_t)v;
  }
}

size_t tp_attrs(const tpmsg *m, tern_attr *a, char *pbuf) {
  size_t n = 0;
  if (m->status >= 0) {
    a[n].key = "status";
    a[n++].value = statuses[m->status];
  }
  if (m->price >= 0) {
    snprintf(pbuf, 8, "%d", m->price);
    a[n].key = "price";
    a[n++].value = pbuf;
  }
  if (m->region >= 0) {
    a[n].key = "region";
    a[n++].value = regions[m->region];
  }
  return n;
}

static void publish_topic(sim *s) {
  topics *T = s->tp;
  prng *r = &s->rng;
  int live[NTOPICS], nl = 0;
  for (int i = 0; i < T->ntopics; ++i) {
    if (T->tp[i].t) {
      live[nl++] = i;
    }
  }
  if (!nl) {
    return;
  }
  int ti = live[prng_below(r, (uint64_t)nl)];
  stopic *t = &T->tp[ti];
  tpmsg m;
  memset(&m, 0, sizeof(m));
  m.topic = ti;
  m.prio = (int)prng_below(r, 3);
  m.status = prng_pct(r, 80) ? (int8_t)prng_below(r, 3) : -1;
  m.price = prng_pct(r, 80) ? (int16_t)prng_range(r, 0, 200) : -1;
  m.region = prng_pct(r, 60) ? (int8_t)prng_below(r, 3) : -1;
  tern_duration ttl = 0;
  if (prng_pct(r, s->pct_ttl)) {
    ttl = prng_pct(r, 40) ? SIM_MS(prng_range(r, 200, s->ttl_short))
                          : SIM_MS(prng_range(r, s->ttl_short, s->ttl_long));
  }
  tern_duration life = ttl ? ttl : s->hs.default_ttl;
  m.published = s->now;
  m.expiry = life ? s->now + life : TERN_TSTAMP_NONE;
  m.paylen = (uint32_t)(prng_pct(r, s->pct_big)
                            ? prng_range(r, 1000, s->max_payload_big)
                            : prng_range(r, 8, s->max_payload_small));
  if (T->nm == T->mcap) {
    T->mcap = T->mcap ? T->mcap * 2 : 256;
    T->m = xrealloc(T->m, T->mcap * sizeof(*T->m));
  }
  int32_t idx = (int32_t)T->nm;
  m.idlen = (uint8_t)snprintf((char *)m.id, sizeof(m.id), "t%d", (int)idx);

  uint8_t payload[8192];
  tp_payload(s, idx, payload, m.paylen);
  tern_attr attrs[3];
  char pbuf[8];
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = m.id;
  d.idlen = m.idlen;
  d.priority = m.prio;
  d.ttl = ttl;
  d.payload = payload;
  d.payloadlen = m.paylen;
  d.nattrs = tp_attrs(&m, attrs, pbuf);
  d.attrs = d.nattrs ? attrs : NULL;
  m.nattrs = (uint8_t)d.nattrs;
  uint64_t offset = 0;
  int rv = tern_topic_publish(t->t, &d, s->now, &offset);
  if (t->max_bytes && m.paylen > t->max_bytes) {
    if (rv != TERN_ERR_TOO_LARGE) {
      sim_fail(s, 0, "tern_topic_publish of %u bytes to %s (max_bytes "
                     "%llu) gave %d",
               m.paylen, t->name, (unsigned long long)t->max_bytes, rv);
    }
    return;
  }
  sim_log(s, "topic publish t%d to %s prio %d ttl %.3f len %u status %d "
             "price %d region %d: %s offset %llu",
          (int)idx, t->name, m.prio, (double)ttl / 1e9, m.paylen, m.status,
          m.price, m.region, rv ? tern_strerror(rv) : "ok",
          (unsigned long long)offset);
  ++s->res->publishes;
  if (rv != 0) {
    sim_fail(s, 0, "tern_topic_publish(%s): %s", t->name, tern_strerror(rv));
    return;
  }
  if (offset != t->n + 1) {
    sim_fail(s, 0, "topic %s: publish gave offset %llu, the model counts "
                   "%zu published",
             t->name, (unsigned long long)offset, t->n);
  }
  m.offset = offset;
  m.serial = ++s->next_serial;
  m.retained = 1;
  for (int ci = 0; ci < s->nclients; ++ci) {
    int k = member_sub(T, ci, ti);
    tcopy *cp = &m.c[ci];
    if (k < 0 || !filter_eval(&T->filters[T->subs[ci][k].filt], &m)) {
      continue;
    }
    cp->state = C_PEND;
    cp->sub = (uint8_t)k;
    cp->sub_gen = T->subs[ci][k].gen;
    cp->inst = s->cl[ci].inst;
    ++m.members;
    ++s->res->topic_copies;
  }
  T->m[T->nm++] = m;
  kmap_put(&T->ids, m.id, m.idlen, idx);
  ++s->res->topic_publishes;
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 64;
    t->log = xrealloc(t->log, t->cap * sizeof(*t->log));
  }
  t->log[t->n++] = idx;
  t->bytes += m.paylen;
  if (m.expiry != TERN_TSTAMP_NONE) {
    ttl_push(T, m.expiry, idx);
  }
  tp_trim(s, t);
}

/* tern_hub_publish_many: one payload to a random set of sessions, booked
   as direct messages (check.c) that share the payload's tag. */
static void publish_many(sim *s) {
  prng *r = &s->rng;
  int who[SIM_MAX_CLIENTS], n = 0;
  for (int ci = 0; ci < s->nclients; ++ci) {
    if (prng_pct(r, 60)) {
      who[n++] = ci;
    }
  }
  if (!n) {
    who[n++] = (int)prng_below(r, (uint64_t)s->nclients);
  }
  mmsg m;
  memset(&m, 0, sizeof(m));
  m.prio = (int)prng_below(r, 3);
  m.idnum = -1;
  m.ck = -1;
  tern_duration ttl = 0;
  if (prng_pct(r, s->pct_ttl)) {
    ttl = SIM_MS(prng_range(r, 200, s->ttl_long));
  }
  tern_duration life = ttl ? ttl : s->hs.default_ttl;
  m.published = s->now;
  m.expiry = life ? s->now + life : TERN_TSTAMP_NONE;
  m.paylen = (uint32_t)prng_range(r, 8, s->max_payload_small);
  int32_t first = (int32_t)s->nmsgs;
  /* one explicit id for all: "g<first>" (unique: model indices are) */
  m.idlen = (uint8_t)snprintf((char *)m.id, sizeof(m.id), "g%d", (int)first);
  m.group = first + 1;
  for (int i = 0; i < n; ++i) {
    m.client = who[i];
    m.inst = s->cl[who[i]].inst;
    model_add(s, &m);
  }
  uint8_t payload[8192];
  model_payload(s, first, payload, m.paylen);
  tern_key keys[SIM_MAX_CLIENTS];
  for (int i = 0; i < n; ++i) {
    keys[i].key = (const uint8_t *)s->cl[who[i]].key;
    keys[i].keylen = s->cl[who[i]].keylen;
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = m.id;
  d.idlen = m.idlen;
  d.priority = m.prio;
  d.ttl = ttl;
  d.payload = payload;
  d.payloadlen = m.paylen;
  tern_key_result krs[SIM_MAX_CLIENTS];
  tern_publish_result all;
  memset(krs, 0, sizeof(krs));
  memset(&all, 0, sizeof(all));
  tern_ssize rv = tern_hub_publish_many(s->hub, keys, (size_t)n, &d, s->now,
                                        krs, &all);
  sim_log(s, "publish_many g%d to %d sessions prio %d ttl %.3f len %u: %s "
             "(%td queued)",
          (int)first, n, m.prio, (double)ttl / 1e9, m.paylen,
          rv < 0 ? tern_strerror((int)rv) : "ok", rv);
  if (rv < 0) {
    sim_fail(s, 0, "tern_hub_publish_many: %s", tern_strerror((int)rv));
    return;
  }
  ++s->res->many_publishes;
  tern_ssize queued = 0;
  uint32_t nevicted = 0;
  for (int i = 0; i < n; ++i) {
    tern_publish_result pr;
    memset(&pr, 0, sizeof(pr));
    memcpy(pr.id, m.id, m.idlen);
    pr.idlen = m.idlen;
    pr.outcome = krs[i].outcome;
    pr.nevicted = krs[i].nevicted;
    nevicted += krs[i].nevicted;
    queued += krs[i].error == 0;
    model_publish_result(s, first + i, krs[i].error, &pr);
  }
  if (queued != rv || all.nevicted != nevicted ||
      all.idlen != m.idlen || memcmp(all.id, m.id, m.idlen) != 0) {
    sim_fail(s, 0, "tern_hub_publish_many returned %td with %u evicted, its "
                   "per-key results say %td and %u",
             rv, all.nevicted, queued, nevicted);
  }
  /* The events of every key, in key order: check.c finds each one's
     record in the group. */
  s->publishing = first;
  s->publish_evicted = 0;
  sim_hub_events(s);
  if (s->publish_evicted != nevicted) {
    sim_fail(s, 0, "publish_many says %u evicted, %u EVICTED events came",
             nevicted, s->publish_evicted);
  }
  s->publishing = -1;
}

int topics_publish(sim *s) {
  topics *T = s->tp;
  if (!T) {
    return 0;
  }
  unsigned k = (unsigned)prng_below(&s->rng, 100);
  if (k < T->pct_topic) {
    publish_topic(s);
  } else if (k < T->pct_topic + T->pct_many) {
    publish_many(s);
  } else {
    return 0;
  }
  /* A member joining or leaving mid-broadcast: before the host writes
     anything of this publish. */
  if (prng_pct(&T->rng, T->pct_midcast)) {
    change(s);
  }
  return 1;
}

