/*
 * Shared payloads, topics and their members: the types and the functions
 * the files of lib/deliver call across each other for fan-out.
 *
 * Ownership in one paragraph: a payload (the encoded wire tail of a
 * message) is reference-counted: one reference per topic log entry and
 * one per message (struct msg with MSG_SHARED) that points to it.  The hub
 * owns topics (hash map by name); a topic owns its log (a ring of tmsg by
 * offset) and its members.  A member is one session's subscription to one
 * topic: its cursor (next offset to send) and the per-send messages it
 * has outstanding (pending or in flight, in offset order); members come
 * from a fixed-size pool, not one allocation each.  A session lists its
 * members (session->members) and its wildcard pattern subscriptions
 * (session->psubs), which the hub also lists so that a topic created
 * later gets the members they ask for.
 */
#ifndef TERN_DELIVER_TOPIC_H
#define TERN_DELIVER_TOPIC_H

#include <stdint.h>

#include "deliver/hub.h"

typedef struct filter filter;

/*
 * A compiled filter, interned per hub by its canonical text (filter_text):
 * equal filters given by many subscriptions are compiled and stored once,
 * and filter slots compare them by pointer.
 */
typedef struct ifilter {
  struct ifilter *next;    /* hub->filters                                 */
  filter *f;
  uint32_t refs;           /* filter slots and pattern subscriptions       */
} ifilter;

/* payload_unref drops a reference and frees the payload at zero. */
void payload_unref(tern_hub *hub, spayload *p);
/* payload_new encodes |d| (validated) once: refs 1. */
int payload_new(tern_hub *hub, spayload **pp, const tern_msg_desc *d,
                const uint8_t *id, size_t idlen);
/* msg_new_shared builds a message that refers to |p| (taking a
   reference), with room for a cookie when |cookie| is nonzero. */
msg *msg_new_shared(tern_hub *hub, spayload *p, int priority,
                    tern_tstamp expiry, uint64_t cookie);

/* One entry of a topic's log. */
typedef struct tmsg {
  spayload *pl;
  uint64_t serial;         /* hub publish serial: merge order              */
  tern_tstamp expiry;      /* its own TTL; TERN_TSTAMP_NONE: none          */
  tern_tstamp published;   /* for max_age                                  */
  uint64_t match;          /* bit i: filter slot i matched (bit 0: the
                              unfiltered slot, always)                   */
  uint32_t subscribed;     /* receipt counters                             */
  uint32_t sent;
  uint32_t acked;
  uint8_t priority;
} tmsg;

#define TOPIC_SLOTS 64

/*
 * A filter slot: the members of a topic that share one filter (slot 0:
 * those without one).  A filter is compiled and evaluated once per slot,
 * so cost and receipts scale with distinct filters, not members.
 */
typedef struct fslot {
  topic *topic;
  ifilter *flt;            /* NULL for slot 0 and for free slots           */
  uint32_t nmembers;       /* a filtered slot with none is free            */
  uint32_t matched;        /* messages matched since the slot was taken    */
  uint32_t evicted;        /* of those, discarded by retention             */
  uint32_t unused_;
  uint64_t tail;           /* filtered: offset after the last message it
                              matched (slot 0 uses the topic's end)      */
} fslot;

/*
 * A member: one session's subscription to one topic.  64 bytes, from the
 * hub's member pool.  Its acked cursor is the offset of its first
 * outstanding message, or next_off when none is (member_cursor).
 */
struct member {
  session *session;
  fslot *slot;             /* its filter slot; slot->topic its topic       */
  member *s_next;          /* session->members; the pool's free list       */
  member *t_prev, *t_next; /* its topic's online or offline list           */
  msg *out;                /* outstanding per-send messages, offset order  */
  uint64_t next_off;       /* next offset to consider sending              */
  uint32_t lost;           /* retention losses not yet written in DROPPED  */
  uint32_t consumed;       /* filtered: slot matches below next_off, counted
                              from the slot's start (retention losses are
                              slot->evicted - consumed)                  */
};

struct topic {
  hnode link;              /* hub->topics, hash of the name                */
  topic *all_prev, *all_next; /* hub->topic_list                           */
  tern_hub *hub;
  tern_topic_options opt;
  tmsg *log;               /* ring by offset: log[offset & (cap - 1)]      */
  uint32_t cap;            /* a power of two, or 0                         */
  uint32_t nslots;         /* slots in use, up to TOPIC_SLOTS              */
  uint64_t first, end;     /* retained offsets: [first, end)               */
  uint64_t bytes;          /* payload bytes retained                       */
  member *online;          /* members whose session has a connection      */
  member *online_tail;
  member *offline;
  uint32_t nmembers;
  /* pacing (opt.rate): tokens at tokens_at */
  uint32_t tokens;
  tern_tstamp tokens_at;
  fslot slots[TOPIC_SLOTS];
  uint64_t sid;            /* h-tpersist: its store records' key (a hub
                              serial), 0 until it has some               */
  uint16_t namelen;
  char name[];             /* NUL-terminated                               */
};

/* A wildcard pattern subscription: a topic created later that matches it
   gets a member.  Exact names need no record. */
struct psub {
  psub *s_next;            /* session->psubs                               */
  psub *h_prev, *h_next;   /* hub->psubs                                   */
  session *session;
  ifilter *flt;            /* NULL: no filter                              */
  uint16_t patlen;
  char pattern[];          /* NUL-terminated                               */
};

/* A member is on its topic's online list while its session has a
   connection (session->nconns > 0), else on the offline list. */
static inline void tlist_unlink(topic *t, member *mb, int online) {
  if (mb->t_prev) {
    mb->t_prev->t_next = mb->t_next;
  } else if (online) {
    t->online = mb->t_next;
  } else {
    t->offline = mb->t_next;
  }
  if (mb->t_next) {
    mb->t_next->t_prev = mb->t_prev;
  } else if (online) {
    t->online_tail = mb->t_prev;
  }
  mb->t_prev = mb->t_next = NULL;
}

static inline void tlist_push(topic *t, member *mb, int online, int tail) {
  member **head = online ? &t->online : &t->offline;
  if (online && tail && t->online_tail) {
    mb->t_prev = t->online_tail;
    mb->t_next = NULL;
    t->online_tail->t_next = mb;
    t->online_tail = mb;
    return;
  }
  mb->t_prev = NULL;
  mb->t_next = *head;
  if (*head) {
    (*head)->t_prev = mb;
  } else if (online) {
    t->online_tail = mb;
  }
  *head = mb;
}

/* ---- topic.c -------------------------------------------------------------- */
/* topic_hub_free frees every topic, member and pattern (tern_hub_del). */
void topic_hub_free(tern_hub *hub);
/* topic_session_gone removes the members and patterns of a session being
   destroyed (session_destroy). */
void topic_session_gone(tern_hub *hub, session *s);
/* topic_session_online / _offline move a session's members between its
   topics' online and offline lists (first connection attached, last one
   detached). */
void topic_session_online(tern_hub *hub, session *s);
void topic_session_offline(tern_hub *hub, session *s);
/* member_cursor: the member's acked cursor (lowest offset not acked). */
uint64_t member_cursor(const member *mb);
/* topic_evict_due discards the log's head messages past their TTL or the
   topic's max_age. */
void topic_evict_due(tern_hub *hub, topic *t, tern_tstamp now);
/* topic_msg_leave: |m| (MSG_TOPIC) leaves its session: off its member's
   list; the member's cursor may move. */
void topic_msg_leave(tern_hub *hub, msg *m);
static inline tmsg *log_at(const topic *t, uint64_t offset) {
  return &t->log[offset & (t->cap - 1)];
}
/* member_behind: the log holds a message for |mb| (matching its filter)
   at or after its cursor, sent or lost yet. */
static inline int member_behind(const member *mb) {
  const topic *t = mb->slot->topic;
  return mb->next_off < (mb->slot == &t->slots[0] ? t->end : mb->slot->tail);
}

/* ---- fanout.c ------------------------------------------------------------- */
/*
 * topic_next picks, among |s|'s members, the topic message that goes
 * before |direct| (the session's next pending message, or NULL) by
 * priority, then publish serial, makes a per-send message for it and
 * queues it at the head of its priority queue, and returns it; else
 * returns |direct|.  Members behind retention get their losses counted
 * on the way (TOPIC_NEXT_LOST).  NULL with TOPIC_NEXT_NOMEM when the
 * message could not be made.
 */
msg *topic_next(tern_hub *hub, session *s, msg *direct, tern_tstamp now,
                int *found);
/* topic_next's |*found| bits: no memory for the message (NULL returned);
   losses counted on the way, to be told before the message returned. */
#define TOPIC_NEXT_NOMEM 1
#define TOPIC_NEXT_LOST 2
/* member_catch_up: a member behind its topic's retention counts what it
   lost and moves to the log's first offset. */
void member_catch_up(member *mb);
/* member_losses: what |mb| lost and has not told: its count, what
   retention discarded behind it, and the messages for it past their time
   at |now| that it had not come to.  The losses it takes along when it
   leaves (into session->tp->lost). */
uint32_t member_losses(const member *mb, tern_tstamp now);
/* topic_session_trim frees s->tp once it holds nothing: no member, no
   pattern, no loss to tell, none told and unconfirmed. */
void topic_session_trim(tern_hub *hub, session *s);
/* topic_session_tp allocates s->tp when absent: 0 or TERN_ERR_NOMEM. */
int topic_session_tp(tern_hub *hub, session *s);
/* topic_told_retention: the losses of |s| told in DROPPED frames and not
   yet confirmed (its connections' told_retention). */
uint32_t topic_told_retention(const session *s);
/* topic_has_output: a member of |s| may have a message to send (not
   paced out), or losses to tell. */
int topic_has_output(const tern_hub *hub, const session *s);
/* topic_refresh applies the time-based retention of the topics of |s|
   and catches up the members it passed, so that their losses are told
   before the messages after them; returns topic_lost_total(s). */
uint32_t topic_refresh(tern_hub *hub, session *s, tern_tstamp now);
/* topic_pace_expiry: the pacing refill time passed: connections of
   members with messages waiting get back on the ready list. */
void topic_pace_expiry(tern_hub *hub, tern_tstamp now);
/* topic_lost_total sums the untold retention losses of |s|: its members'
   and those of members that left. */
uint32_t topic_lost_total(const session *s);
/* topic_lost_told: the losses were written in a DROPPED frame. */
void topic_lost_told(session *s);
/* topic_lost_return: a connection died before its DROPPED(retention)
   notice was confirmed: tell |n| again. */
void topic_lost_return(session *s, uint32_t n);
/* topic_msg_sent: |m| (MSG_TOPIC) is written for the first time: count
   the receipt. */
void topic_msg_sent(msg *m);
/* topic_msg_acked: |m| (MSG_TOPIC) was acked: count the receipt and move
   its member's cursor. */
void topic_msg_acked(tern_hub *hub, msg *m);

/* ---- persist_topic.c: hooks for the store (h-tpersist fills them) ------- */
/*
 * Called after the change they record, never while loading.  They may not
 * fail: a hook that needs memory reserves it in a variant called before
 * the change (none yet).
 */
void persist_topic(tern_hub *hub, const topic *t);        /* created        */
void persist_topic_gone(tern_hub *hub, const topic *t);   /* deleted        */
void persist_topic_msg(tern_hub *hub, const topic *t, uint64_t offset);
void persist_topic_msg_gone(tern_hub *hub, const topic *t, uint64_t offset);
/* A shared payload (tern_hub_publish_many) before its messages' records. */
void persist_payload(tern_hub *hub, const spayload *p);
void persist_sub(tern_hub *hub, const member *mb);        /* joined         */
void persist_sub_gone(tern_hub *hub, const member *mb);   /* left           */
/* The member's cursor (member_cursor) or untold losses changed. */
void persist_sub_cursor(tern_hub *hub, const member *mb);
void persist_psub(tern_hub *hub, const psub *p);
void persist_psub_gone(tern_hub *hub, const psub *p);
/* h-tpersist: a payload with a "P" record (stored) is freed. */
void persist_payload_gone(tern_hub *hub, const spayload *p);
/* topic_member_restore (loading, persist_topic.c): |s| becomes a member
   of |t| again, with filter text |ftext| (|flen| bytes, NULL: none), the
   acked cursor |cursor| and |lost| losses not yet confirmed.  Retained
   messages get the match bit of a filter slot taken here.  0,
   TERN_ERR_STORE (a filter that does not compile, a member twice),
   TERN_ERR_LIMIT (no filter slot left) or TERN_ERR_NOMEM. */
int topic_member_restore(tern_hub *hub, topic *t, session *s,
                         const char *ftext, size_t flen, uint64_t cursor,
                         uint32_t lost);

#endif
