/*
 * --hub-restart: the store under the hub, and what the model expects of it
 * across hub crashes.
 *
 * The hub runs over a memstore (tests/memstore.h) through a thin table of
 * methods that watches every batch: which message each record sets or
 * deletes (read from the record: the payload carries the model index),
 * which session records come and go, and when what was appended becomes
 * durable (an append with sync, or the OS writing its cache back at random
 * moments: durable_os_sync).  So the model knows for each message whether
 * the store holds it durably (mmsg.rec), and whether its publish ever was
 * durable (mmsg.pub_dur), which its dedup record follows: that record
 * lives, whatever happens to the message, until its window passes.
 *
 * A crash (durable_stop, clean 0) loses what was appended but not yet
 * durable, as memstore_crash does; the new hub must then restore exactly:
 *   - every message the store holds durably whose expiry has not passed,
 *     except the older of two with one collapse key: held ones stay live;
 *     ended ones (acked, collapsed, evicted, expired by TTL... whose
 *     deletion was not durable yet) come back to life ("revived");
 *   - nothing else: a held message whose record was not durable is lost
 *     (M_LOST, out of the expected set; a frame already on its way may
 *     still bring it to the app, which is counted);
 *   - the dedup ids of every message whose publish was durable, within
 *     their window, for every session it restores (whichever earlier
 *     instance of the session they came from);
 *   - the epoch, which is durable from the first batch on.
 * A message confirmed by PERSISTED (reason 0) must be durable at that
 * moment, so no crash can lose it; PERSISTED events come in publish order;
 * a batch holding a SYNC message is appended with sync; a VOLATILE message
 * is never written; every record the hub deletes is of a message the model
 * saw leave (or one a newer message of its collapse key superseded while it
 * was in flight: it will never be sent again); every other accepted
 * message is written by the next flush.
 * After the last hub stopped cleanly, the store holds only its epoch.
 *
 * DROPPED accounting (invariant 6) carries over a restart: every session
 * record the hub writes must count at least the losses its instance has
 * not told its app (discards + carried - GAP events; the hub may count
 * more: it only forgets a loss once an ACK confirmed the notice), and a
 * restored session starts a new model instance that carries the counts the
 * store held durably, which must cover every discard whose message record
 * deletion was durable and that the app was not told.  Messages that
 * expired while the hub was down must come out as EXPIRED events at load
 * (the sim traces every message) and count as losses of the new instance.
 * Losses of messages the store never held (volatile, refused) whose count
 * was not durable yet die with the crash, as those messages do (counted as
 * unannounced).  The memory baseline (invariant 7) starts again with each
 * hub.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../memstore.h"
#include "deliver/hub.h"
#include "sim.h"
#include "wire/frame.h"

/* What an appended record did, until it is durable. */
enum { U_SET_M = 1, U_DEL_M, U_SET_S, U_DEL_S, U_EPOCH };

typedef struct urec {
  int32_t who; /* model index, or client slot */
  uint8_t kind;
  uint32_t cnt[3]; /* U_SET_S: the losses the record counts */
} urec;

typedef struct ivec {
  int32_t *v;
  size_t n, cap;
} ivec;

typedef struct durable {
  memstore ms;
  urec *uns;              /* appended, not yet durable, in order          */
  size_t nuns, capuns;
  int32_t *by_serial;     /* hub serial -> model index of its last SET    */
  size_t nserial;
  ivec touched;           /* messages the last batches wrote              */
  ivec unwritten;         /* accepted, stored, record not appended yet    */
  ivec syncq;             /* SYNC publishes waiting for PERSISTED         */
  size_t sqhead;
  uint64_t ck_newest[SIM_MAX_CLIENTS][SIM_NCK]; /* serial of the newest
                             accepted message of each collapse key       */
  uint8_t sess_dur[SIM_MAX_CLIENTS]; /* the store holds the session       */
  uint32_t cnt_dur[SIM_MAX_CLIENTS][3]; /* ... and its record's loss counts */
  uint64_t untold_stop[SIM_MAX_CLIENTS][3]; /* the stopped hub's counts    */
  int attaching;          /* inside tern_hub_set_store                     */
  int epoch_dur;          /* the store holds the epoch                     */
  uint64_t epoch;
  int attached;           /* a hub was attached before                     */
} durable;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    abort();
  }
  return q;
}

static void ivec_push(ivec *a, int32_t x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
  }
  a->v[a->n++] = x;
}

static uint64_t be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = v << 8 | p[i];
  }
  return v;
}

static int client_of(const sim *s, const uint8_t *key, size_t keylen) {
  for (int i = 0; i < s->nclients; ++i) {
    if (s->cl[i].keylen == keylen && memcmp(s->cl[i].key, key, keylen) == 0) {
      return i;
    }
  }
  return -1;
}

/* ---- watching the batches ----------------------------------------------- */

static urec *unsynced(durable *d, int32_t who, uint8_t kind) {
  if (d->nuns == d->capuns) {
    d->capuns = d->capuns ? d->capuns * 2 : 256;
    d->uns = xrealloc(d->uns, d->capuns * sizeof(*d->uns));
  }
  urec *u = &d->uns[d->nuns++];
  u->who = who;
  u->kind = kind;
  u->cnt[0] = u->cnt[1] = u->cnt[2] = 0;
  return u;
}

/* Everything appended so far is durable now. */
static void mirror_sync(sim *s) {
  durable *d = s->dur;
  for (size_t i = 0; i < d->nuns; ++i) {
    const urec *u = &d->uns[i];
    switch (u->kind) {
    case U_SET_M:
      s->msgs[u->who].rec |= REC_SET_DUR;
      s->msgs[u->who].pub_dur = 1;
      break;
    case U_DEL_M:
      s->msgs[u->who].rec |= REC_DEL_DUR;
      break;
    case U_SET_S:
      d->sess_dur[u->who] = 1;
      memcpy(d->cnt_dur[u->who], u->cnt, sizeof(u->cnt));
      break;
    case U_DEL_S:
      d->sess_dur[u->who] = 0;
      memset(d->cnt_dur[u->who], 0, sizeof(d->cnt_dur[u->who]));
      break;
    case U_EPOCH:
      d->epoch_dur = 1;
      break;
    default:
      break;
    }
  }
  d->nuns = 0;
}

/* A crash: what was not durable is gone. */
static void mirror_crash(sim *s) {
  durable *d = s->dur;
  for (size_t i = 0; i < d->nuns; ++i) {
    const urec *u = &d->uns[i];
    if (u->kind == U_SET_M) {
      s->msgs[u->who].rec &= (uint8_t)~REC_SET_APP;
    } else if (u->kind == U_DEL_M) {
      s->msgs[u->who].rec &= (uint8_t)~REC_DEL_APP;
    }
  }
  d->nuns = 0;
}

/* The model index of the message a SET "M" record holds, or -1.  The value
   is the session key, 12 bytes of the hub's, and the MSG tail as it goes
   on the wire (persist.c), decoded here with the wire codec. */
static int32_t record_msg(sim *s, const uint8_t *v, size_t len) {
  if (len < 1 || v[0] == 0 || len < 1u + v[0] + 12u + 1u) {
    return -1;
  }
  size_t keylen = v[0];
  int client = client_of(s, v + 1, keylen);
  const uint8_t *tail = v + 1 + keylen + 12;
  size_t taillen = len - 1 - keylen - 12;
  uint8_t *buf = xrealloc(NULL, WIRE_MSG_HEAD_MAX + taillen);
  size_t head = wire_msg_head_encode(buf, 1, 0, taillen);
  memcpy(buf + head, tail, taillen);
  wire_frame f;
  tern_ssize n = wire_frame_decode(&f, buf, head + taillen, (size_t)1 << 30);
  int32_t idx = -1;
  if (n == (tern_ssize)(head + taillen) && f.type == WIRE_MSG &&
      f.u.msg.payloadlen >= 4 && client >= 0) {
    const uint8_t *pl = f.u.msg.payload;
    uint32_t tag = (uint32_t)pl[0] | (uint32_t)pl[1] << 8 |
                   (uint32_t)pl[2] << 16 | (uint32_t)pl[3] << 24;
    if (tag < s->nmsgs) {
      const mmsg *m = &s->msgs[tag];
      /* A generated id is known once the publish returned. */
      int id_known = m->idnum >= 0 || (int32_t)tag != s->publishing;
      if (m->client == client &&
          (!id_known || (f.u.msg.idlen == m->idlen &&
                         memcmp(f.u.msg.id, m->id, m->idlen) == 0))) {
        idx = (int32_t)tag;
      }
    }
  }
  free(buf);
  return idx;
}

static void watch_record(sim *s, const tern_store_record *r, int sync) {
  durable *d = s->dur;
  if (r->keylen == 0) {
    sim_fail(s, 0, "the hub wrote a record with an empty key");
    return;
  }
  int set = r->op == TERN_STORE_SET;
  switch (r->key[0]) {
  case 'M': {
    if (r->keylen != 9) {
      sim_fail(s, 0, "a message record with a %zu-byte key", r->keylen);
      return;
    }
    uint64_t serial = be64(r->key + 1);
    if (set) {
      int32_t idx = record_msg(s, r->value, r->valuelen);
      if (idx < 0) {
        sim_fail(s, 0, "the hub stored a message record (serial %llu) "
                       "that names no published message",
                 (unsigned long long)serial);
        return;
      }
      mmsg *m = &s->msgs[idx];
      if (m->pflags & TERN_MSG_VOLATILE) {
        sim_fail(s, 0, "the hub stored %s, published TERN_MSG_VOLATILE",
                 sim_idstr(m));
      }
      if ((m->pflags & TERN_MSG_SYNC) && !sync) {
        sim_fail(s, 0, "the batch holding %s, published TERN_MSG_SYNC, was "
                       "appended without sync",
                 sim_idstr(m));
      }
      if (m->rec & REC_SET_APP) {
        sim_fail(s, 0, "the hub stored %s twice (serial %llu)", sim_idstr(m),
                 (unsigned long long)serial);
      }
      if (serial >= d->nserial) {
        size_t n = d->nserial ? d->nserial : 1024;
        while (n <= serial) {
          n *= 2;
        }
        d->by_serial = xrealloc(d->by_serial, n * sizeof(*d->by_serial));
        for (size_t i = d->nserial; i < n; ++i) {
          d->by_serial[i] = -1;
        }
        d->nserial = n;
      }
      d->by_serial[serial] = idx;
      m->rec |= REC_SET_APP;
      unsynced(d, idx, U_SET_M);
      ivec_push(&d->touched, idx);
    } else {
      int32_t idx = serial < d->nserial ? d->by_serial[serial] : -1;
      if (idx < 0) {
        sim_fail(s, 0, "the hub deleted message record %llu, which it never "
                       "wrote",
                 (unsigned long long)serial);
        return;
      }
      s->msgs[idx].rec |= REC_DEL_APP;
      unsynced(d, idx, U_DEL_M);
      ivec_push(&d->touched, idx);
    }
    break;
  }
  case 'S': {
    int client = client_of(s, r->key + 1, r->keylen - 1);
    if (client < 0) {
      sim_fail(s, 0, "the hub wrote a session record for an unknown key");
      return;
    }
    urec *u = unsynced(d, client, set ? U_SET_S : U_DEL_S);
    if (!set) {
      break;
    }
    if (r->valuelen != 24) {
      sim_fail(s, 6, "a session record of %zu bytes: not 24 (reservation and four loss counts)",
               r->valuelen);
      break;
    }
    for (int k = 0; k < 3; ++k) {
      const uint8_t *c = r->value + 8 + 4 * k;
      u->cnt[k] = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 |
                  (uint32_t)c[2] << 8 | c[3];
    }
    break;
  }
  case 'E':
    if (!set || r->valuelen < 8 ||
        be64(r->value) != tern_hub_get_epoch(s->hub)) {
      sim_fail(s, 0, "the hub wrote an epoch record that is not its epoch");
      return;
    }
    unsynced(d, -1, U_EPOCH);
    break;
  default:
    break; /* dedup records: the model follows pub_dur instead */
  }
}

static int w_append(void *store, uint64_t batch, const tern_store_record *recs,
                    size_t n, int sync) {
  sim *s = store;
  durable *d = s->dur;
  if (d->ms.frozen) {
    return 0; /* the dead process's last flush: it never happens */
  }
  size_t first = d->nuns;
  for (size_t i = 0; i < n && !s->failed; ++i) {
    watch_record(s, &recs[i], sync);
  }
  /* The last session record of each client in the batch counts at least
     the losses its instance has not told its app yet (the model hears of
     a discard after the call that made it, so it may count fewer). */
  int seen[SIM_MAX_CLIENTS] = {0};
  for (size_t i = d->nuns; i > first && !d->attaching && !s->failed; --i) {
    const urec *u = &d->uns[i - 1];
    if (u->kind != U_SET_S || seen[u->who]) {
      continue;
    }
    seen[u->who] = 1;
    const inst_rec *ir = &s->insts[s->cl[u->who].inst];
    for (int k = 0; k < 3; ++k) {
      uint64_t owed = ir->discards[k] + ir->carried[k];
      owed = owed > ir->told[k] ? owed - ir->told[k] : 0;
      if (u->cnt[k] < owed) {
        sim_fail(s, 6, "%s: its session record counts %u losses (reason "
                       "%d), but %llu were not told to its app",
                 s->cl[u->who].key, u->cnt[k], k + 1,
                 (unsigned long long)owed);
      }
    }
  }
  int rv = memstore_append(&d->ms, batch, recs, n, sync);
  if (sync) {
    mirror_sync(s);
  }
  return rv;
}

static int w_load(void *store, tern_store_visit visit, void *ctx) {
  sim *s = store;
  return memstore_load(&s->dur->ms, visit, ctx);
}

static int w_sync(void *store) {
  durable_os_sync(store);
  return 0;
}

static const tern_store_methods w_methods = {
    TERN_STORE_METHODS_VERSION, w_append, w_load, w_sync, NULL, NULL};

/* ---- the life of the store ---------------------------------------------- */

void durable_init(sim *s) {
  s->dur = calloc(1, sizeof(*s->dur));
  if (!s->dur) {
    abort();
  }
}

void durable_free(sim *s) {
  durable *d = s->dur;
  if (!d) {
    return;
  }
  memstore_free(&d->ms);
  free(d->uns);
  free(d->by_serial);
  free(d->touched.v);
  free(d->unwritten.v);
  free(d->syncq.v);
  free(d);
  s->dur = NULL;
}

void durable_os_sync(sim *s) {
  memstore_sync(&s->dur->ms);
  mirror_sync(s);
}

/* A newer message with its collapse key was accepted: |m| will never be
   sent again, so the hub may forget it (as a crash may). */
static int superseded(const sim *s, const mmsg *m) {
  return m->ck >= 0 && s->dur->ck_newest[m->client][m->ck] > m->serial;
}

void durable_published(sim *s, int32_t idx) {
  durable *d = s->dur;
  const mmsg *m = &s->msgs[idx];
  if (m->ck >= 0) {
    d->ck_newest[m->client][m->ck] = m->serial;
  }
  if (m->pflags & TERN_MSG_VOLATILE) {
    ++s->res->volatile_accepted;
    return;
  }
  ivec_push(&d->unwritten, idx);
  if (m->pflags & TERN_MSG_SYNC) {
    ++s->res->sync_accepted;
    ivec_push(&d->syncq, idx);
  }
}

void durable_persisted(sim *s, int client, const tern_event *ev) {
  durable *d = s->dur;
  if (d->sqhead == d->syncq.n) {
    sim_fail(s, 0, "PERSISTED for %.*s of %s, but no SYNC publish waits",
             (int)ev->msg_idlen, (const char *)ev->msg_id,
             s->cl[client].key);
    return;
  }
  int32_t idx = d->syncq.v[d->sqhead++];
  if (d->sqhead == d->syncq.n) {
    d->sqhead = d->syncq.n = 0;
  }
  mmsg *m = &s->msgs[idx];
  if (m->client != client || ev->msg_idlen != m->idlen ||
      memcmp(ev->msg_id, m->id, m->idlen) != 0) {
    sim_fail(s, 0, "PERSISTED for %.*s of %s, but the oldest SYNC publish "
                   "waiting is %s of %s (publish order)",
             (int)ev->msg_idlen, (const char *)ev->msg_id, s->cl[client].key,
             sim_idstr(m), s->cl[m->client].key);
    return;
  }
  if (ev->reason != 0) {
    sim_fail(s, 0, "PERSISTED for %s with %s, but the store never fails",
             sim_idstr(m), tern_strerror(ev->reason));
    return;
  }
  if (!(m->rec & REC_SET_DUR)) {
    sim_fail(s, 1, "%s of %s confirmed by PERSISTED before its record was "
                   "durable",
             sim_idstr(m), s->cl[client].key);
  }
  m->confirmed = 1;
  ++s->res->confirmed;
}

void durable_check_step(sim *s) {
  durable *d = s->dur;
  for (size_t i = 0; i < d->touched.n; ++i) {
    const mmsg *m = &s->msgs[d->touched.v[i]];
    if ((m->rec & REC_DEL_APP) && m->state == M_LIVE && !superseded(s, m)) {
      sim_fail(s, 0, "the hub deleted the store record of %s of %s, which "
                     "it still holds",
               sim_idstr(m), s->cl[m->client].key);
    }
    if (m->state == 0 || m->state == M_REFUSED || m->state == M_REJECTED ||
        m->state == M_DUPLICATE) {
      sim_fail(s, 0, "the hub stored %s of %s, which it did not accept",
               sim_idstr(m), s->cl[m->client].key);
    }
  }
  d->touched.n = 0;
  /* Once no batch waits (tern_hub_get_expiry is 0 while one does), every
     accepted message went to the store. */
  if (s->hub && tern_hub_get_expiry(s->hub) != 0) {
    for (size_t i = 0; i < d->unwritten.n; ++i) {
      const mmsg *m = &s->msgs[d->unwritten.v[i]];
      if (!(m->rec & REC_SET_APP)) {
        sim_fail(s, 0, "%s of %s was accepted, but no batch handed to the "
                       "store holds it",
                 sim_idstr(m), s->cl[m->client].key);
        break;
      }
    }
    d->unwritten.n = 0;
  }
}

void durable_stop(sim *s, int clean) {
  durable *d = s->dur;
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    const session *ss = (const session *)tern_hub_find_session(
        s->hub, (const uint8_t *)c->key, c->keylen);
    for (int r = 0; r < 3; ++r) {
      d->untold_stop[i][r] = ss ? session_untold(ss, r) : 0;
    }
    s->insts[c->inst].ended = 1;
  }
  d->sqhead = d->syncq.n = 0; /* unconfirmed: their events die with it */
  if (!clean) {
    memstore_crash(&d->ms);
    mirror_crash(s);
    d->unwritten.n = 0;
  }
}

void durable_stopped(sim *s, int clean) {
  durable *d = s->dur;
  if (clean) {
    /* tern_hub_del handed over the last batch; closing syncs. */
    durable_os_sync(s);
    for (size_t i = 0; i < d->unwritten.n; ++i) {
      const mmsg *m = &s->msgs[d->unwritten.v[i]];
      if (!(m->rec & REC_SET_APP)) {
        sim_fail(s, 0, "%s of %s was accepted, but the hub stopped without "
                       "handing it to the store",
                 sim_idstr(m), s->cl[m->client].key);
        break;
      }
    }
    d->unwritten.n = 0;
  } else {
    memstore_restart(&d->ms);
  }
  d->touched.n = 0;
}

/* ---- what a new hub restores -------------------------------------------- */

static const session *hub_session(sim *s, int client) {
  return (const session *)tern_hub_find_session(
      s->hub, (const uint8_t *)s->cl[client].key, s->cl[client].keylen);
}

/* Marks in |held| the model index of every message the new hub holds. */
static void find_held(sim *s, uint8_t *held) {
  durable *d = s->dur;
  for (int i = 0; i < s->nclients && !s->failed; ++i) {
    const session *ss = hub_session(s, i);
    for (int p = 0; ss && p < 3 && !s->failed; ++p) {
      const msg *m = ss->queue[p];
      if (!m) {
        continue;
      }
      do {
        int32_t idx = m->serial < d->nserial ? d->by_serial[m->serial] : -1;
        const mmsg *mm = idx >= 0 ? &s->msgs[idx] : NULL;
        if (!mm || mm->client != i || mm->idlen != m->idlen ||
            memcmp(mm->id, msg_id(m), m->idlen) != 0) {
          sim_fail(s, 0, "the restarted hub holds message %.*s (serial %llu) "
                         "of %s, which is no record the store was given",
                   (int)m->idlen, (const char *)msg_id(m),
                   (unsigned long long)m->serial, s->cl[i].key);
          return;
        }
        if (held[idx]) {
          sim_fail(s, 0, "the restarted hub holds %s twice", sim_idstr(mm));
          return;
        }
        held[idx] = 1;
        m = m->next;
      } while (m != ss->queue[p]);
    }
  }
}

/* Compares what the new hub restored with what the store held durably
   before it loaded (|dur|: the store held the message's record; |cnt|: its
   session records' loss counts) and brings the model up to date. */
static void restored(sim *s, const uint8_t *dur, const uint8_t *sess_dur,
                     uint32_t (*cnt)[3]) {
  tern_tstamp now = s->now;
  uint8_t *held = calloc(s->nmsgs ? s->nmsgs : 1, 1);
  if (!held) {
    abort();
  }
  find_held(s, held);
  /* Of the restorable messages of one collapse key, the newest. */
  int32_t newest[SIM_MAX_CLIENTS][SIM_NCK];
  for (int i = 0; i < SIM_MAX_CLIENTS; ++i) {
    for (int k = 0; k < SIM_NCK; ++k) {
      newest[i][k] = -1;
    }
  }
  for (size_t i = 0; i < s->nmsgs; ++i) {
    const mmsg *m = &s->msgs[i];
    if (dur[i] == 1 && m->expiry > now && m->ck >= 0) {
      int32_t *nw = &newest[m->client][m->ck];
      if (*nw < 0 || s->msgs[*nw].serial < m->serial) {
        *nw = (int32_t)i;
      }
    }
  }
  for (size_t i = 0; i < s->nmsgs && !s->failed; ++i) {
    mmsg *m = &s->msgs[i];
    int32_t idx = (int32_t)i;
    if (!(m->rec & REC_SET_DUR) && m->state && m->state != M_REFUSED &&
        m->state != M_REJECTED && m->state != M_DUPLICATE) {
      if (!m->forgot_at) {
        m->forgot_at = s->nrestarts; /* the store never had it */
      }
    }
    int expect = dur[i] == 1 && m->expiry > now &&
                 (m->ck < 0 || newest[m->client][m->ck] == idx);
    if (expect && !held[i]) {
      /* A loss when the message was held; else a broken contract. */
      sim_fail(s, m->state == M_LIVE ? 1 : 0,
               "%s of %s (%s, %s%s) was in the store, but the restarted hub "
               "did not restore it",
               sim_idstr(m), s->cl[m->client].key,
               m->state == M_LIVE ? "held" : "already gone",
               m->pflags & TERN_MSG_SYNC ? "SYNC" : "ASYNC",
               m->confirmed ? ", confirmed by PERSISTED" : "");
      break;
    }
    if (!expect && held[i]) {
      sim_fail(s, 0, "the restarted hub restored %s of %s, although %s",
               sim_idstr(m), s->cl[m->client].key,
               dur[i] != 1 ? "the store did not hold its record"
               : m->expiry <= now ? "it had expired"
                                  : "a newer message has its collapse key");
      break;
    }
    if (m->state == M_LIVE) {
      if (expect) {
        m->restored_at = s->nrestarts;
        ++s->res->restored;
      } else if (dur[i] != 1 && superseded(s, m)) {
        model_end_msg(s, idx, M_COLLAPSED); /* in flight, replaced */
      } else if (dur[i] != 1) {
        if (m->confirmed) {
          sim_fail(s, 1, "%s of %s, confirmed by PERSISTED, was lost by the "
                         "crash",
                   sim_idstr(m), s->cl[m->client].key);
          break;
        }
        sim_log(s, "%s of %s lost by the crash (%s)", sim_idstr(m),
                s->cl[m->client].key,
                m->pflags & TERN_MSG_VOLATILE ? "volatile" : "not synced");
        model_end_msg(s, idx, M_LOST);
        ++s->res->crash_lost;
      } else if (m->expiry <= now) {
        model_end_msg(s, idx, M_EXPIRED);
        ++s->res->expired_down;
      } else {
        model_end_msg(s, idx, M_COLLAPSED); /* the newer one came back */
      }
    } else if (expect) {
      held[i] = 2; /* back to life, once the lost ones left the model */
    }
  }
  for (size_t i = 0; i < s->nmsgs && !s->failed; ++i) {
    mmsg *m = &s->msgs[i];
    if (held[i] != 2) {
      continue;
    }
    sim_log(s, "%s of %s comes back (it was %s; its deletion was not "
               "durable)",
            sim_idstr(m), s->cl[m->client].key,
            m->state == M_ACKED       ? "acked"
            : m->state == M_EXPIRED   ? "expired"
            : m->state == M_COLLAPSED ? "collapsed"
            : m->state == M_EVICTED   ? "evicted"
            : m->state == M_DEAD      ? "dead"
                                      : "gone with its session");
    if (model_revive_msg(s, (int32_t)i) != 0) {
      sim_fail(s, 0, "the restarted hub holds %s of %s twice (two "
                     "messages with that id)",
               sim_idstr(m), s->cl[m->client].key);
      break;
    }
    m->restored_at = m->revived_at = s->nrestarts;
    ++s->res->revived;
    ++s->res->restored;
  }
  free(held);
  if (s->failed) {
    return;
  }
  /* Every session starts a new model instance (DROPPED accounting); a
     client whose session did not come back may see it start over. */
  uint32_t old_inst[SIM_MAX_CLIENTS];
  int has_session[SIM_MAX_CLIENTS];
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    old_inst[i] = c->inst;
    c->inst = model_new_inst(s, i);
    has_session[i] = hub_session(s, i) != NULL;
    if (has_session[i] != (sess_dur[i] != 0)) {
      sim_fail(s, 0, "the store %s a session record for %s, the restarted "
                     "hub %s it",
               sess_dur[i] ? "held" : "held no", c->key,
               has_session[i] ? "restored" : "did not restore");
    }
    if (has_session[i] && c->welcomed_inst == old_inst[i]) {
      c->welcomed_inst = c->inst;
    } else if (!has_session[i] && c->welcomed_inst != UINT32_MAX) {
      c->session_lost = 1;
    }
    /* Invariant 6 across the restart: the store's counts are carried;
       they must cover what the old instance owed its app for messages
       whose deletion was durable (a loss whose count was not durable yet
       died with the crash only if the message never was in the store). */
    const inst_rec *old = &s->insts[old_inst[i]];
    uint64_t durable_drops[3] = {0, 0, 0};
    for (size_t k = 0; k < s->nmsgs; ++k) {
      const mmsg *m = &s->msgs[k];
      /* (A message a newer one of its collapse key superseded in flight
         had its record deleted then, before its loss was counted.) */
      if (m->client == i && m->drop_inst == old_inst[i] && dur[k] == 2 &&
          !superseded(s, m) &&
          (m->state == M_EXPIRED || m->state == M_EVICTED ||
           m->state == M_DEAD)) {
        ++durable_drops[m->state == M_EXPIRED   ? TERN_DROP_EXPIRED - 1
                        : m->state == M_EVICTED ? TERN_DROP_OVERFLOW - 1
                                                : TERN_DROP_DEAD - 1];
      }
    }
    for (int r = 0; r < 3 && has_session[i]; ++r) {
      inst_rec *ir = &s->insts[c->inst];
      ir->carried[r] = cnt[i][r];
      s->res->carried += cnt[i][r];
      uint64_t need = old->carried[r] + durable_drops[r];
      need = need > old->told[r] ? need - old->told[r] : 0;
      if (cnt[i][r] < need) {
        sim_fail(s, 6, "%s reason %d: the store counts %u losses to tell, "
                       "but %llu durable discards (and carried losses) were "
                       "never told",
                 c->key, r + 1, cnt[i][r], (unsigned long long)need);
      }
      uint64_t gone = s->dur->untold_stop[i][r];
      s->res->unannounced += gone > cnt[i][r] ? gone - cnt[i][r] : 0;
    }
  }
  /* Dedup ids: those of durable publishes, within their window, for the
     sessions that came back. */
  for (size_t i = 0; i < s->nmsgs; ++i) {
    mmsg *m = &s->msgs[i];
    if (m->dd_until == 0) {
      continue; /* no dedup entry */
    }
    if (m->pub_dur && now < m->dd_until && has_session[m->client]) {
      if (m->dd_inst != old_inst[m->client]) {
        ++s->res->dedup_adopted;
      }
      m->dd_inst = s->cl[m->client].inst;
    } else {
      m->dd_inst = UINT32_MAX;
    }
  }
}

/*
 * The events of the load: an EXPIRED event for every message the store
 * held durably whose expiry passed while the hub was down (held ones, and
 * ones that had left but whose deletion was not durable), each a loss of
 * its session's new instance when the session came back; nothing else.
 */
static void load_events(sim *s, const uint8_t *dur) {
  tern_tstamp now = s->now;
  uint8_t *told = calloc(s->nmsgs ? s->nmsgs : 1, 1);
  if (!told) {
    abort();
  }
  tern_event ev;
  while (!s->failed && tern_hub_next_event(s->hub, &ev) == 1) {
    int client = client_of(s, ev.session_key, ev.session_keylen);
    if (ev.type != TERN_EV_EXPIRED || client < 0) {
      sim_fail(s, 0, "tern_hub_set_store queued event %d", ev.type);
      break;
    }
    size_t i = 0;
    for (; i < s->nmsgs; ++i) {
      const mmsg *m = &s->msgs[i];
      if (dur[i] == 1 && !told[i] && m->expiry <= now &&
          m->client == client && m->idlen == ev.msg_idlen &&
          memcmp(m->id, ev.msg_id, m->idlen) == 0) {
        break;
      }
    }
    if (i == s->nmsgs) {
      sim_fail(s, 0, "EXPIRED at load for %.*s of %s, which the store did "
                     "not hold expired",
               (int)ev.msg_idlen, (const char *)ev.msg_id,
               s->cl[client].key);
      break;
    }
    told[i] = 1;
    if (ev.reason != TERN_DROP_EXPIRED) {
      sim_fail(s, 0, "EXPIRED at load with reason %d", ev.reason);
    }
    if (hub_session(s, client)) {
      ++s->insts[s->cl[client].inst].discards[TERN_DROP_EXPIRED - 1];
    }
  }
  for (size_t i = 0; i < s->nmsgs && !s->failed; ++i) {
    if (dur[i] == 1 && !told[i] && s->msgs[i].expiry <= now) {
      sim_fail(s, 6, "%s of %s expired while the hub was down, but the "
                     "new hub did not report it (EXPIRED)",
               sim_idstr(&s->msgs[i]), s->cl[s->msgs[i].client].key);
    }
  }
  free(told);
}

void durable_attach(sim *s) {
  durable *d = s->dur;
  /* What the store holds now (1), or held until a durable deletion (2):
     loading deletes some of it. */
  uint8_t *dur = calloc(s->nmsgs ? s->nmsgs : 1, 1);
  if (!dur) {
    abort();
  }
  for (size_t i = 0; i < s->nmsgs; ++i) {
    uint8_t rec = s->msgs[i].rec & (REC_SET_DUR | REC_DEL_DUR);
    dur[i] = rec == REC_SET_DUR ? 1 : (rec & REC_DEL_DUR) ? 2 : 0;
  }
  uint8_t sess_dur[SIM_MAX_CLIENTS];
  memcpy(sess_dur, d->sess_dur, sizeof(sess_dur));
  uint32_t cnt[SIM_MAX_CLIENTS][3];
  memcpy(cnt, d->cnt_dur, sizeof(cnt));
  /* The stored expiries go through a wall clock far from the virtual
     one, as a host's CLOCK_REALTIME is from its CLOCK_MONOTONIC. */
  int rv = tern_hub_set_wallclock(s->hub, s->now,
                                  s->now + (uint64_t)1700000000 * TERN_SECONDS);
  if (rv != 0) {
    sim_fail(s, 0, "tern_hub_set_wallclock: %s", tern_strerror(rv));
  }
  d->attaching = 1;
  rv = tern_hub_set_store(s->hub, &w_methods, s, s->now);
  d->attaching = 0;
  if (rv != 0) {
    sim_fail(s, 0, "tern_hub_set_store: %s", tern_strerror(rv));
    free(dur);
    return;
  }
  uint64_t epoch = tern_hub_get_epoch(s->hub);
  if (!d->attached) {
    d->attached = 1;
    d->epoch = epoch;
    free(dur);
    return;
  }
  ++s->nrestarts;
  if (epoch != d->epoch) {
    if (d->epoch_dur) {
      sim_fail(s, 0, "the restarted hub has epoch %016llx, the store held "
                     "%016llx",
               (unsigned long long)epoch, (unsigned long long)d->epoch);
    }
    for (int i = 0; i < s->nclients; ++i) {
      s->cl[i].epoch_lost = 1;
    }
    d->epoch = epoch;
  }
  restored(s, dur, sess_dur, cnt);
  load_events(s, dur);
  free(dur);
}

void durable_check_end(sim *s) {
  const memstore *ms = &s->dur->ms;
  size_t nm = memstore_count(ms, 'M'), ns = memstore_count(ms, 'S'),
         nd = memstore_count(ms, 'D'), ne = memstore_count(ms, 'E');
  if (nm || ns || nd || ne != 1) {
    sim_fail(s, 7, "every session expired and the last hub stopped, but "
                   "the store holds %zu message, %zu session, %zu dedup and "
                   "%zu epoch records",
             nm, ns, nd, ne);
  }
}
