/*
 * --topics: what the scenario (topics.c) and the checks of topic messages
 * (tcheck.c) share: the fixed names, the model's records and a few
 * functions.  topics.c's header says what the scenario does and what the
 * model checks.
 */
#ifndef TERN_SIM_TOPICS_H
#define TERN_SIM_TOPICS_H

#include <stdlib.h>
#include <string.h>

#include "deliver/hub.h"
#include "deliver/topic.h"
#include "sim.h"

/* ---- the fixed names, patterns and filters ----------------------------- */

#define NTOPICS 6
#define NSUBS 3 /* subscriptions per client at most */

extern const char *const topic_names[NTOPICS];

#define NPATTERNS 12
extern const char *const patterns[NPATTERNS];

/* Attributes of topic messages: status, price, region, each maybe absent. */
extern const char *const statuses[];
extern const char *const regions[];

enum { A_STATUS = 0, A_PRICE, A_REGION };
enum { P_CMP = 0, P_IN, P_NOTIN, P_EXISTS };
enum { OP_EQ = 0, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

typedef struct spred {
  uint8_t neg, kind, attr, op;
  int v;        /* CMP: the value (index, or price)                       */
  unsigned set; /* IN, NOTIN: bit per value index                         */
} spred;

typedef struct sfilter {
  int np;       /* 0: no filter                                           */
  int any;      /* 1: or, 0: and                                          */
  spred p[2];
  char text[160];
} sfilter;

#define NFILTERS 8

/* ---- model records ------------------------------------------------------ */

enum {
  C_NONE = 0, /* not expected                                            */
  C_PEND,     /* expected, never sent                                    */
  C_OUT,      /* sent, neither acked nor dropped                         */
  C_ACKED,
  C_RETAINED, /* retention took it before its first send                 */
  C_EXPIRED,  /* EXPIRED event, or its TTL passed unsent                 */
  C_LEFT,     /* its member left before it was acked                     */
  C_GONE,     /* its session expired                                     */
  C_DEAD,
  C_EVICTED
};

static inline const char *cstate_name(int st) {
  static const char *const n[] = {"not expected", "pending", "out", "acked",
                                  "retained away", "expired", "left",
                                  "session gone", "dead", "evicted"};
  return st >= 0 && st <= C_EVICTED ? n[st] : "?";
}

typedef struct tcopy {
  uint8_t state;
  uint8_t mat;        /* C_PEND: the hub made its per-send message (seen in
                         the session; it will not be lost to retention)  */
  uint8_t quiet;      /* C_EXPIRED, C_RETAINED: lost unsent with no event
                         (counted by the member when it passes it)     */
  uint8_t sub;        /* the subscription (slot) it came through            */
  uint16_t sends;
  uint16_t deliveries;
  uint32_t last_inc;  /* client incarnation its last send went to           */
  uint32_t inst;      /* session instance at publish                        */
  uint32_t sub_gen;   /* the subscription's generation                      */
} tcopy;

typedef struct tpmsg {
  int topic;
  uint64_t offset;
  uint64_t serial;
  int prio;
  tern_tstamp published, expiry;
  uint32_t paylen;
  int8_t status, region; /* index, -1 absent                               */
  int16_t price;         /* -1 absent                                      */
  uint8_t nattrs;
  uint8_t id[16];
  uint8_t idlen;
  uint8_t retained;      /* the model's log holds it                       */
  uint32_t members;      /* expected copies at publish                     */
  uint32_t sent, acked;  /* copies sent at least once, acked               */
  tcopy c[SIM_MAX_CLIENTS];
} tpmsg;

typedef struct stopic {
  const char *name;
  tern_topic *t;         /* NULL until created                             */
  uint32_t max_count;
  uint64_t max_bytes;
  tern_duration max_age;
  uint32_t rate, burst;  /* pacing                                         */
  int32_t *log;          /* tpmsg indices by offset - 1                    */
  size_t n, cap;
  uint64_t first;        /* first retained offset (model)                  */
  uint64_t bytes;        /* retained payload bytes (model)                 */
} stopic;

typedef struct ssub {
  int active;
  int pat;
  int filt;              /* index into filters; 0: none                    */
  uint32_t gen;
} ssub;

typedef struct topics {
  prng rng;
  stopic tp[NTOPICS];
  int ntopics;
  sfilter filters[NFILTERS];
  ssub subs[SIM_MAX_CLIENTS][NSUBS];
  uint32_t gen;
  tpmsg *m;
  size_t nm, mcap;
  kmap ids;              /* id -> tpmsg index                              */
  unsigned pct_topic, pct_many, pct_midcast;
  tern_duration change_gap;
  tern_tstamp next_change;
  /* per client: copies the hub holds as per-send messages (C_OUT, and
     C_PEND with mat), and their payload bytes */
  uint32_t held[SIM_MAX_CLIENTS];
  uint64_t held_bytes[SIM_MAX_CLIENTS];
  /* topic messages with a TTL, a min-heap by expiry: one that expires in
     the middle of its log stays there, but members pass it as a loss */
  struct ttl_ent {
    tern_tstamp at;
    int32_t idx;
  } *ttl;
  size_t nttl, ttlcap;
} topics;


static inline void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    abort();
  }
  return q;
}

static inline double secs(tern_tstamp t) {
  return (double)(int64_t)(t - SIM_T0) / 1e9;
}

/* A copy the hub holds as a per-send message. */
static inline int is_held(const tcopy *cp) {
  return cp->state == C_OUT || (cp->state == C_PEND && cp->mat);
}


/* ---- shared by topics.c (the scenario) and tcheck.c (the checks) -------- */

int tp_pmatch(const char *pat, const char *name);
const session *tp_session(sim *s, const client_slot *c);
/* tp_cset moves a copy to state |st| (and |mat|), keeping the counts of
   held copies. */
void tp_cset(sim *s, tpmsg *m, int ci, int st, int mat);
/* tp_held_walk calls |fn| for every per-send topic message the session of
   |client| holds: pending, or in flight on one of its connections. */
typedef void (*held_fn)(sim *s, int client, int32_t tidx, int inflight,
                        void *arg);
void tp_held_walk(sim *s, int client, held_fn fn, void *arg);
/* tp_held_mark (a held_fn): per step, marks the copies the hub made. */
void tp_held_mark(sim *s, int client, int32_t tidx, int inflight, void *arg);
void tp_trim(sim *s, stopic *t);  /* retention by count, bytes, age       */
void tp_ttl_due(sim *s);          /* TTLs passed inside the logs          */
/* tp_payload: the payload of topic message |tidx|, tagged with it. */
void tp_payload(const sim *s, int32_t tidx, uint8_t *out, size_t len);
/* tp_attrs: the attrs of |m| (pbuf holds the price's text). */
size_t tp_attrs(const tpmsg *m, tern_attr *a, char *pbuf);
void tp_check_some_receipt(sim *s);

#endif
