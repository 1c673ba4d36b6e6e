/*
 * The deterministic simulator: one hub, K receivers (tern_client) over
 * simulated links, producers, faults and an invariant checker, all driven
 * by virtual time from one 64-bit seed.
 *
 * Files, by concern:
 *   net.c     links: two byte pipes with latency, bandwidth, a window,
 *             partial reads and writes, silent death, resets, FIN/RST.
 *   driver.c  the scenario: settings drawn from the seed, the hub's and the
 *             clients' host loops, producers, faults, the virtual clock.
 *   check.c   the model of every published message and the invariants.
 *   durable.c --hub-restart: the store under the hub (tests/memstore.h),
 *             followed batch by batch, and what a restarted hub must
 *             restore.
 *   topics.c  --topics: topics, members joining and leaving, topic
 *             publishes and tern_hub_publish_many, and the model of topic
 *             messages; tcheck.c its checks, topics.h what they share
 *             (topic_regress.c: the topic bugs it found).
 *   util.c    the counting allocator, a small map, printable ids.
 *   main.c    the command line (tests/sim/sim); bench/sim_soak.c is the
 *             other front end.
 *
 * Nothing here reads a real clock or draws real randomness: a run is a
 * pure function of its seed and options.
 */
#ifndef TERN_SIM_H
#define TERN_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

#define SIM_MS(n) ((tern_duration)(n) * TERN_MILLISECONDS)
#define SIM_SEC(n) ((tern_duration)(n) * TERN_SECONDS)
/* Virtual time starts far from 0 so that "now - x" never wraps. */
#define SIM_T0 ((tern_tstamp)1000 * TERN_SECONDS)
#define SIM_MAX_CLIENTS 8
#define SIM_NCK 4 /* collapse keys per session */

/* ---- the public face: options and results ------------------------------ */

typedef struct sim_opts {
  uint64_t seed;
  int verbose;        /* narrate every step on stdout                      */
  int hub_restart;    /* --hub-restart: the hub runs over a store and
                         crashes now and then (durable.c)                */
  int strict_dropped; /* --strict-dropped: a DROPPED notice the network
                         lost fails invariant 6 (see check.c)             */
  int ack_livelock;   /* --ack-livelock: also draw max_deliver 0 with an
                         ack_timeout (a known livelock, see regress.c)    */
  int topics;         /* --topics: topics, members joining and leaving,
                         topic publishes and tern_hub_publish_many
                         (topics.c)                                      */
  int policies;       /* --policies: quiet hours and frequency caps on the
                         sessions, fallback deadlines on messages, an
                         accept rate against reconnect storms (driver.c,
                         check.c)                                        */
} sim_opts;

typedef struct sim_result {
  int failed;
  int invariant;      /* 1..7, or 0 for a broken API contract            */
  char why[1024];
  tern_tstamp fail_time;
  /* figures of the run */
  uint64_t publishes, accepted, delivered, acked, expired, collapsed,
      evicted, dead, gaps, lost_notices, faults, restarts, links, steps;
  uint64_t lossy_sessions; /* session instances that discarded messages  */
  uint64_t blind_sessions; /* ... of which the apps were never told       */
  /* --hub-restart (durable.c) */
  uint64_t hub_crashes;    /* hub processes that died (unsynced writes lost) */
  uint64_t hub_shutdowns;  /* ... that stopped cleanly (everything synced)  */
  uint64_t sync_accepted;  /* TERN_MSG_SYNC publishes accepted              */
  uint64_t confirmed;      /* ... confirmed by PERSISTED (reason 0)         */
  uint64_t volatile_accepted;
  uint64_t restored;       /* messages new hubs restored (live or revived)  */
  uint64_t revived;        /* ... that had left the old hub (acked,
                              collapsed, expired...) but whose deletion was
                              not durable                                 */
  uint64_t crash_lost;     /* held messages a crash lost (not durable)      */
  uint64_t lost_arrived;   /* deliveries of such messages (sent in time)    */
  uint64_t expired_down;   /* durable messages that expired while the hub
                              was down (dropped at load and told: EXPIRED
                              events, DROPPED notices)                    */
  uint64_t redelivered;    /* apps that got a message again after a hub
                              restart (their dedup window had let it go)  */
  uint64_t unannounced;    /* losses a crash took before their count was
                              durable (of messages the store never held:
                              volatile, refused)                         */
  uint64_t carried;        /* losses a restarted hub had to tell again
                              (its store's session records)               */
  uint64_t order_lost;     /* an older message (same priority or collapse
                              key) a restarted hub brought back, after a
                              newer one: the older one had left (evicted,
                              collapsed...) but its deletion was not
                              durable (priority), or the crash forgot the
                              newer one (collapse key)                   */
  uint64_t dedup_adopted;  /* restored dedup ids of an expired session that
                              a newer session of the key took over        */
  /* --topics (topics.c) */
  uint64_t topic_publishes;  /* accepted topic publishes                    */
  uint64_t topic_copies;     /* (message, member) pairs the model expects   */
  uint64_t topic_delivered;  /* MESSAGE events of topic messages            */
  uint64_t topic_acked;      /* copies acked                                */
  uint64_t topic_retention;  /* copies lost to retention before their send  */
  uint64_t topic_left;       /* copies a member left before they were sent  */
  uint64_t joins, leaves;    /* subscribe and unsubscribe calls that worked */
  uint64_t many_publishes;   /* tern_hub_publish_many calls that queued     */
  uint64_t receipts_checked;
  uint64_t late_wakeups;     /* paced connections wanting to write
                                before a refill's turn came to them    */
  /* --policies */
  uint64_t policy_holds;     /* holds the hub started (tern_stats)          */
  uint64_t fallbacks;        /* FALLBACK events, each checked               */
  uint64_t fallback_acked;   /* ... of messages acked later                */
  uint64_t deferred;         /* HELLOs deferred by the accept rate          */
  tern_duration virtual_time;
} sim_result;

/* sim_run plays the scenario of |o->seed| and checks it.  Returns 0 when
   every invariant held, 1 otherwise (|r| says which and why). */
int sim_run(const sim_opts *o, sim_result *r);

/* sim_replay_command writes the command line that replays |o| with the
   simulator binary |prog| into |buf|. */
void sim_replay_command(char *buf, size_t cap, const char *prog,
                        const sim_opts *o);

/* ---- everything below is shared by the simulator's own files ----------- */

/* splitmix64: small, fast, and good enough to schedule faults. */
typedef struct prng {
  uint64_t s;
} prng;

static inline uint64_t prng_next(prng *r) {
  uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}
/* prng_below: uniform in [0, n); n 0 gives 0. */
static inline uint64_t prng_below(prng *r, uint64_t n) {
  return n ? prng_next(r) % n : 0;
}
/* prng_range: uniform in [lo, hi]. */
static inline uint64_t prng_range(prng *r, uint64_t lo, uint64_t hi) {
  return lo + prng_below(r, hi - lo + 1);
}
static inline int prng_pct(prng *r, unsigned pct) {
  return prng_below(r, 100) < pct;
}

/* A counting allocator (tern_mem): live blocks and bytes, poison on free. */
typedef struct sim_alloc {
  long blocks;
  size_t bytes;
  long bad_frees;
  void *live;             /* the live blocks, linked through their headers */
} sim_alloc;
tern_mem sim_alloc_mem(sim_alloc *a);
/* sim_alloc_size: the size of live block |p| of |a|, or SIZE_MAX when |p|
   is not one (a walk of every live block: for final checks only). */
size_t sim_alloc_size(const sim_alloc *a, const void *p);

/* ---- links (net.c) ------------------------------------------------------ */

enum { SEG_DATA = 0, SEG_FIN = 1, SEG_RST = 2 };

typedef struct seg {
  struct seg *next;
  tern_tstamp at;   /* arrival time                                      */
  uint32_t len;
  uint8_t kind;
  uint8_t data[];
} seg;

/* One direction of a link. */
typedef struct sim_pipe {
  seg *head, *tail;
  size_t in_transit;      /* bytes written, not yet arrived               */
  size_t window;          /* most bytes in transit (socket buffers)       */
  tern_tstamp busy_until; /* the sender's side of the wire is busy until  */
  uint64_t bytes_per_sec;
  tern_duration latency;
  uint64_t written;       /* stream offset of the next byte written       */
  uint64_t delivered;     /* bytes handed to the reader                   */
  int shut;               /* FIN or RST queued: nothing more is written   */
} sim_pipe;

/* A MSG frame the hub wrote on a link. */
typedef struct sent_rec {
  uint64_t seq;
  int32_t msg;            /* model index                                  */
  tern_tstamp at;         /* when the frame started (the SENT event)      */
  uint64_t ttl_ms;        /* from the frame (tap); UINT64_MAX until seen  */
} sent_rec;

typedef struct notice {
  uint64_t end_off;       /* stream offset just past the frame            */
  uint64_t count;
  uint32_t inst;          /* session instance index                       */
  uint8_t reason;
} notice;

typedef struct sim_link {
  struct sim_link *next;
  uint32_t id;
  int client;             /* client slot                                  */
  uint32_t incarnation;
  tern_conn *conn;        /* hub side; NULL once the hub host deleted it  */
  int client_side;        /* the client still reads and writes it        */
  int dead;               /* the path died: every byte vanishes           */
  int hub_want;           /* the hub host owes it a tern_conn_write       */
  int connected;          /* CONNECTED seen on it                         */
  tern_tstamp accept_at;  /* hello_accept: the host decides then; NONE    */
  int probe;              /* written although
                             tern_hub_next_ready did not return it      */
  int could_send;         /* before the last tern_hub_handle_expiry: open,
                             bound, room in the window and the socket     */
  int reject;             /* ... and refuses the HELLO                    */
  sim_pipe up, down;      /* client -> hub, hub -> client                 */
  size_t min_chunk, max_chunk; /* write caps and read chunk sizes        */
  /* the tap: the hub's output, decoded frame by frame */
  uint8_t *tap;
  size_t taplen, tapcap;
  uint64_t tapoff;        /* stream offset of tap[0]                      */
  notice *notices;
  size_t nnotices, noticecap, nmatched;
  uint64_t gap_pending[3];/* GAP counts not yet matched to notices        */
  sent_rec *sent;
  size_t nsent, sentcap;
  uint64_t last_seq;
} sim_link;

/* ---- the model (check.c) ------------------------------------------------ */

enum mstate {
  M_LIVE = 1,     /* accepted, held by the hub                          */
  M_ACKED,
  M_EXPIRED,
  M_COLLAPSED,
  M_EVICTED,
  M_DEAD,
  M_SESSION_GONE, /* its session expired with it                        */
  M_REFUSED,      /* never accepted: overflow refused it (dropped)      */
  M_REJECTED,     /* never accepted: the producer keeps it              */
  M_DUPLICATE,    /* never accepted: publisher dedup                    */
  M_LOST          /* a hub crash lost it: its record was not durable    */
};

/* mmsg.rec: what the store holds of a message (durable.c mirrors every
   batch).  The record is in the store when SET_DUR and not DEL_DUR. */
enum {
  REC_SET_APP = 0x1, /* its record was appended                          */
  REC_SET_DUR = 0x2, /* ... and made durable                              */
  REC_DEL_APP = 0x4, /* its deletion was appended                        */
  REC_DEL_DUR = 0x8  /* ... and made durable                              */
};

typedef struct mmsg {
  int client;
  uint32_t inst;          /* session instance at publish                   */
  uint8_t id[TERN_MAX_ID];
  uint8_t idlen;
  int32_t idnum;          /* explicit id "m<idnum>", -1 generated          */
  int prio;
  int ck;                 /* collapse key index, -1 none                   */
  uint8_t nattrs;
  uint8_t ctype;          /* content type index, 0 none                    */
  tern_tstamp published, expiry; /* expiry TERN_TSTAMP_NONE: never         */
  uint64_t serial;        /* publish order among accepted messages        */
  uint32_t paylen;
  int state;
  tern_tstamp ended;
  uint32_t sends;
  uint32_t deliveries;
  uint32_t last_inc;      /* client incarnation its last send went to      */
  /* --hub-restart */
  uint8_t pflags;         /* TERN_MSG_SYNC, TERN_MSG_VOLATILE as published */
  uint8_t rec;            /* REC_* bits                                     */
  uint8_t confirmed;      /* PERSISTED with reason 0 came                   */
  uint8_t pub_dur;        /* its publish batch became durable: its dedup
                             record lives until dd_until                  */
  uint32_t forgot_at;     /* the restart (1...) whose crash came before its
                             record was durable; 0 none                   */
  uint32_t restored_at;   /* the last restart that restored it (held, or
                             back after it had left); 0 none              */
  uint32_t revived_at;    /* the last restart that brought it back after it
                             had left (its deletion was not durable)      */
  uint32_t send_restart;  /* hub restarts before its last send             */
  int32_t prev_same_id;   /* the message accepted before it with its id    */
  int32_t group;          /* tern_hub_publish_many: 1 + the index of the
                             first recipient's record, whose index tags
                             the shared payload (the others follow it);
                             0: the message's own index tags it         */
  uint32_t dd_inst;       /* its hub dedup entry counts for this session
                             instance (UINT32_MAX: none) ...               */
  tern_tstamp dd_until;   /* ... until then                                */
  uint32_t deliv_inc;     /* client incarnation of its last delivery       */
  uint32_t deliv_restart; /* hub restarts before its last delivery         */
  tern_tstamp fallback_at; /* --policies: its fallback deadline; 0 none    */
  uint8_t fell_back;      /* its FALLBACK event came                        */
  uint32_t drop_inst;     /* EXPIRED, EVICTED, DEAD: the session instance
                             that discarded it                            */
} mmsg;

/* A small map from a byte key (<= 72 bytes) to an int. */
typedef struct kmap_ent {
  uint64_t h;
  int32_t next, val;
  uint8_t klen;
  uint8_t key[TERN_MAX_ID + 8];
} kmap_ent;

typedef struct kmap {
  int32_t *buckets;
  size_t nb;
  kmap_ent *ent;
  size_t n, cap;
  int32_t free_head;
} kmap;

/* Everything the hub told about one session instance (invariant 6). */
typedef struct inst_rec {
  int client;
  /* by tern_drop_reason - 1; [3], RETENTION, only with --topics */
  uint64_t discards[4];   /* EXPIRED, EVICTED (and refused), DEAD events;
                             --topics: copies retention took unsent      */
  uint64_t written[4];    /* DROPPED frames the hub wrote (tap)           */
  uint64_t told[4];       /* GAP events the apps got                      */
  uint64_t lost[4];       /* DROPPED frames the network lost              */
  uint64_t carried[4];    /* --hub-restart: losses of earlier instances
                             the store held for it to tell (its session
                             record's counts when the hub restarted)     */
  int tleft;              /* --topics: a member of this instance left     */
  uint64_t tdiscards[2];  /* --topics: copies that left their topic's log
                             unsent: [0] by age or TTL, [1] by count or
                             bytes (the hub counts them lazily, as its
                             members move on; reasons 1 and 4)          */
  int ended;
} inst_rec;

/* One MESSAGE event: the app saw a message. */
typedef struct delivery {
  int32_t msg;            /* model index; -1 - index of a topic message   */
  int client;
  uint32_t incarnation;
  uint64_t inc_index;     /* its place among this incarnation's MESSAGEs  */
  tern_tstamp at;
} delivery;

/* ---- clients (driver.c) ------------------------------------------------- */

typedef struct client_slot {
  int idx;
  char key[16];
  size_t keylen;
  tern_client *c;            /* NULL while the app process is down        */
  sim_alloc mem;
  tern_mem tmem;
  uint32_t incarnation;
  tern_client_settings cs;
  sim_link *cur;                 /* its transport                              */
  int connecting;            /* CONNECT asked; transport comes at connect_at */
  int gave_up;               /* GIVE_UP came: the host retries by itself   */
  tern_tstamp connect_at;
  tern_tstamp restart_at;    /* when the app comes back; NONE while up     */
  tern_tstamp next_fault;
  tern_tstamp outage_until;  /* the network is down until then             */
  uint32_t inst;             /* current session instance (index into insts) */
  uint32_t welcomed_inst;    /* session instance of its last WELCOME       */
  int session_lost;          /* that instance expired since: RESYNC is due */
  /* app view, this incarnation */
  uint64_t inc_deliveries;
  kmap seen;                 /* id -> index in |log| of its last delivery  */
  kmap everseen;             /* incarnation|id of every delivery           */
  int32_t ck_last[SIM_NCK];  /* last delivered message per collapse key    */
  uint64_t gaps;
  /* manual_ack: the app acks what it processed, a little later */
  uint64_t app_ack_seq;
  tern_tstamp app_ack_at;    /* NONE: nothing to ack                       */
  int epoch_lost;            /* a restarted hub came up with a new epoch   */
  /* --policies: the session's policy, set again for each new session
     instance and after each hub restart (policies are not stored) */
  int has_policy;
  tern_policy policy;
  uint32_t policy_inst, policy_restarts;
  int policy_set;
} client_slot;

/* ---- the whole run ------------------------------------------------------ */

enum { PH_CHAOS = 0, PH_QUIET, PH_TEARDOWN };

typedef struct sim {
  sim_opts opt;
  sim_result *res;
  prng rng;
  tern_tstamp now;
  int phase;
  /* hub */
  tern_hub *hub;
  tern_settings hs;
  uint64_t wall0;            /* --policies: the wall clock at SIM_T0, s    */
  sim_alloc hubmem;
  tern_mem hubtmem;
  /* baseline for invariant 7 */
  long base_blocks;
  size_t base_bytes;
  size_t base_hmap[4], base_heap;
  /* clients and links */
  int nclients;
  client_slot cl[SIM_MAX_CLIENTS];
  sim_link *links;
  uint32_t next_link;
  /* scenario knobs drawn from the seed */
  tern_tstamp chaos_end, quiet_start, quiet_end, settle;
  tern_tstamp last_progress;     /* a message delivered or gone            */
  int in_expiry;                 /* inside tern_hub_handle_expiry          */
  tern_duration publish_gap;     /* mean time between publishes           */
  tern_tstamp next_publish;
  unsigned fault_mean_s;         /* mean seconds between a client's faults */
  unsigned pct_explicit_id, pct_reuse_id, pct_ck, pct_ttl, pct_big;
  tern_duration ttl_short, ttl_long;
  uint32_t max_payload_small, max_payload_big;
  /* model */
  mmsg *msgs;
  size_t nmsgs, msgcap;
  kmap live;                     /* client|id -> live message             */
  int32_t *idrec;                /* explicit id number -> last accepted msg */
  uint8_t *idowner;              /* explicit id number -> client slot      */
  size_t nids, idcap;
  inst_rec *insts;
  size_t ninsts, instcap;
  delivery *log;
  size_t nlog, logcap;
  uint32_t live_n[SIM_MAX_CLIENTS];   /* live messages per session       */
  uint64_t live_bytes[SIM_MAX_CLIENTS];
  uint64_t total_live;
  uint64_t next_serial;
  int32_t publishing;            /* message being published, -1 none      */
  uint32_t publish_evicted;      /* EVICTED events seen for it            */
  /* --hub-restart: the store and the durability model (durable.c) */
  struct durable *dur;
  tern_tstamp next_crash;        /* chaos: the hub process dies then       */
  tern_tstamp hub_up_at;         /* the new hub starts then; NONE: up      */
  tern_tstamp next_os_sync;      /* the OS writes the store's cache back   */
  tern_duration crash_gap, os_sync_gap, max_downtime;
  unsigned pct_sync, pct_volatile;
  int crash_late;                /* the next crash comes after the step's
                                    publishes, before their batch is
                                    flushed                               */
  uint32_t nrestarts;            /* hub restarts so far                    */
  /* --topics: topics, members and topic messages (topics.c) */
  struct topics *tp;
  /* failure */
  int failed;
  uint64_t same_time;            /* steps in a row without time moving    */
} sim;

/* driver.c */
void sim_log(sim *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* sim_fail records the first failure; later ones only log. */
void sim_fail(sim *s, int invariant, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* sim_hub_events: the hub host reads every queued event. */
void sim_hub_events(sim *s);

/* net.c */
sim_link *link_new(sim *s, int client);
void link_free(sim_link *l);
/* link_room: bytes the sender may write into |p| now. */
size_t link_room(const sim_pipe *p);
void link_send(sim *s, sim_link *l, sim_pipe *p, const uint8_t *data, size_t len);
void link_shut(sim *s, sim_link *l, sim_pipe *p, int kind);
void link_kill(sim *s, sim_link *l); /* the path dies silently */
/* links_next_arrival: the earliest arrival on any link, or NONE. */
tern_tstamp links_next_arrival(const sim *s);
/* link_take pops the first segment of |p| if it arrived by |now|. */
seg *link_take(sim_pipe *p, tern_tstamp now);
/* link_chunk: a read or write size for this link, at most |max|. */
size_t link_chunk(sim *s, const sim_link *l, size_t max);
/* link_tap feeds what the hub wrote on |l| to the frame tap. */
void link_tap(sim *s, sim_link *l, const uint8_t *data, size_t len);
/* link_idle: no data, FIN or RST in either pipe. */
int link_idle(const sim_link *l);

/* util.c */
/* sim_idstr: a message id as a C string (ids are ASCII here: "m<n>" or
   the hub's hex); four buffers in turn, so a few fit in one message. */
const char *sim_idstr(const mmsg *m);
void kmap_init(kmap *m, size_t nb);
void kmap_free(kmap *m);
int32_t *kmap_find(kmap *m, const uint8_t *k, size_t klen);
void kmap_put(kmap *m, const uint8_t *k, size_t klen, int32_t val);
void kmap_del(kmap *m, const uint8_t *k, size_t klen);
void kmap_clear(kmap *m);

/* check.c */
void model_init(sim *s);
void model_free(sim *s);
uint32_t model_new_inst(sim *s, int client);
int32_t model_add(sim *s, const mmsg *m);
int32_t model_find_live(sim *s, int client, const uint8_t *id, size_t idlen);
/* payloads: tagged with the model index, filled from it */
void model_payload(const sim *s, int32_t idx, uint8_t *out, size_t len);
/* model_publish_result books the outcome of a publish of |idx|. */
void model_publish_result(sim *s, int32_t idx, int rv,
                          const tern_publish_result *pr);
void model_hub_event(sim *s, const tern_event *ev);
void model_client_event(sim *s, client_slot *c, sim_link *l,
                        const tern_client_event *ev);
void model_tap_frame(sim *s, sim_link *l, const uint8_t *frame, size_t len,
                     uint64_t end_off);
/* model_publish_end checks a publish once its events were handled. */
void model_publish_end(sim *s, int32_t idx, int rv,
                       const tern_publish_result *pr);
/* model_after_read: every DROPPED that reached the client became a GAP. */
void model_after_read(sim *s, sim_link *l);
/* model_link_closed: the client stopped reading |l|; what it did not get
   of the hub's DROPPED notices is lost. */
void model_link_closed(sim *s, sim_link *l);
void model_incarnation_end(sim *s, client_slot *c);
void model_check_step(sim *s);
/* model_before_expiry notes which connections could send right now. */
void model_before_expiry(sim *s);
/* model_drained: the quiet phase may end. */
int model_drained(sim *s);
void model_check_end(sim *s);
void model_check_memory(sim *s);
void model_baseline(sim *s);
/* model_end_msg ends a live message (as its trace event would);
   model_revive_msg makes an ended one live again (a restarted hub restored
   it).  model_revive_msg returns -1 when another live message has its id. */
void model_end_msg(sim *s, int32_t idx, int state);
int model_revive_msg(sim *s, int32_t idx);
/* model_dedup_active: the hub refuses |p|'s id as a duplicate now. */
int model_dedup_active(const sim *s, const mmsg *p);

/* check.c, for topics.c: what every MESSAGE event goes through.
   model_app_saw checks invariant 2 for id |id| and books the delivery
   (log entry |logmsg|: a model index, or -1 - topic message index). */
void model_app_saw(sim *s, client_slot *c, int32_t logmsg, const uint8_t *id,
                   size_t idlen);
const sent_rec *model_find_sent(const sim_link *l, uint64_t seq);

/* topics.c: --topics */
void topics_init(sim *s);    /* draws the topic scenario                   */
void topics_start(sim *s);   /* creates the topics on the hub             */
void topics_free(sim *s);
/* topics_next: the next topic action (join, leave...), or NONE. */
tern_tstamp topics_next(const sim *s);
void topics_step(sim *s);    /* does what is due                          */
/* topics_publish: one publish to a topic or with tern_hub_publish_many;
   0 when the draw says a plain publish instead. */
int topics_publish(sim *s);
/* topics_hub_event: 1 when |ev| is about a topic message (booked). */
int topics_hub_event(sim *s, const tern_event *ev, int client);
void topics_on_message(sim *s, client_slot *c, sim_link *l,
                       const tern_client_event *ev, int32_t tidx);
void topics_tap_msg(sim *s, sim_link *l, const sent_rec *r, const void *f);
void topics_session_expired(sim *s, int client);
/* topics_held: topic messages the model says |client|'s session holds
   (per-send messages pending or in flight). */
uint32_t topics_held(const sim *s, int client, uint64_t *bytes);
void topics_check_step(sim *s);
int topics_drained(sim *s);
void topics_check_end(sim *s);
void topics_teardown(sim *s); /* deletes the topics                       */
void topics_describe(sim *s);
int topics_paced(const sim *s); /* the hub or a topic paces sends           */ /* what is left (verbose)                   */

/* durable.c: the store under the hub and the durability model */
void durable_init(sim *s);
void durable_free(sim *s);
/* durable_attach puts the store under the new hub s->hub
   (tern_hub_set_store) and checks what it restored against the model. */
void durable_attach(sim *s);
/* durable_stop: the hub is about to be deleted; |clean| 0 is a crash (the
   store loses what was not synced), 1 a clean shutdown.  Call
   durable_stopped after tern_hub_del. */
void durable_stop(sim *s, int clean);
void durable_stopped(sim *s, int clean);
/* durable_os_sync: the OS writes the store's cache to disk. */
void durable_os_sync(sim *s);
/* durable_persisted books a TERN_EV_PERSISTED event. */
void durable_persisted(sim *s, int client, const tern_event *ev);
/* durable_published books an accepted publish. */
void durable_published(sim *s, int32_t idx);
/* durable_check_step checks the store records appended since the last
   call against the model (every step). */
void durable_check_step(sim *s);
/* durable_check_end: after the last hub was deleted cleanly, the store
   must hold nothing but its epoch. */
void durable_check_end(sim *s);

#endif
