/*
 * Delivery policies of a session: quiet hours and frequency caps, which
 * hold NORMAL and LOW messages back (never drop them), and channel
 * fallback, which hands a message not acked in time to the host.
 *
 * The state lives in the session's side block (s->tp->pol), made when a
 * policy is set or a message with a fallback deadline is published, so a
 * session that uses none of this pays nothing.  Held messages stay in the
 * pending queues, where expiry, collapse, eviction and cancel already find
 * them; only the choice of the next message to send changes
 * (policy_peek), and the write paths reach it on the branch they take for
 * sessions with a side block.  A hold is computed when a message is about
 * to go; its end (the quiet hours over, the cap's window slid) is a
 * deadline of the session's timer, so tern_hub_get_expiry wakes the host
 * and the session's connections are marked ready again.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/topic.h"

#define DAY 86400
#define MAX_OFFSET 64800 /* 18 h, either way */
/* With a zone callback a hold is checked again at least this often: the
   offset may change (daylight saving time) before the computed end. */
#define ZONE_RECHECK (15 * 60 * TERN_SECONDS)

/* One message with a fallback deadline, in publish order. */
typedef struct fbrec {
  struct fbrec *next;
  msg *m;
  tern_tstamp due;       /* TERN_TSTAMP_NONE once its event was queued      */
} fbrec;

struct spolicy {
  /* the rules (tern_policy); active: quiet hours or a cap is set */
  uint32_t quiet_start, quiet_end;
  int32_t utc_offset;
  uint32_t zone;
  uint32_t cap_count;
  uint32_t cap_len, cap_head;  /* the ring of the last first-sends' times */
  tern_duration cap_window;
  tern_tstamp *sends;          /* cap_count entries; NULL without a cap    */
  uint8_t active;
  uint8_t held;                /* NORMAL and LOW wait, as of the last look */
  tern_tstamp release_at;      /* when the hold may end; NONE unless held  */
  tern_tstamp close_at;        /* not held: when the quiet hours begin (or
                                  are to be checked again); NONE          */
  /* fallback */
  fbrec *fb, *fb_tail;
  fbrec *fb_spare;             /* reserved by a publish in progress        */
  tern_tstamp fb_due;          /* lower bound of the records' deadlines    */
};

static tern_tstamp add_sat(tern_tstamp t, tern_duration d) {
  return d > TERN_TSTAMP_NONE - 1 - t ? TERN_TSTAMP_NONE - 1 : t + d;
}

/* ---- the rules ------------------------------------------------------------ */

/* The wall clock at |now| (tern_hub_set_wallclock; without it |now| is). */
static uint64_t wall_at(const tern_hub *hub, tern_tstamp now) {
  if (!hub->wall_set) {
    return now;
  }
  if (now >= hub->wall_mono) {
    return hub->wall_real + (now - hub->wall_mono);
  }
  uint64_t back = hub->wall_mono - now;
  return back < hub->wall_real ? hub->wall_real - back : 0;
}

/* How long the quiet hours still last at |now|; 0 outside them, and then
   *to_start says how long until they begin.  *zoned is set when the
   offset came from the zone callback. */
static tern_duration quiet_left(const tern_hub *hub, const spolicy *p,
                                tern_tstamp now, int *zoned,
                                tern_duration *to_start) {
  *to_start = 0;
  if (p->quiet_start == p->quiet_end) {
    return 0;
  }
  uint64_t wall = wall_at(hub, now);
  int64_t secs = (int64_t)(wall / TERN_SECONDS);
  uint64_t frac = wall % TERN_SECONDS;
  int32_t off = p->utc_offset;
  if (p->zone && hub->zone_fn) {
    off = hub->zone_fn(p->zone, secs, hub->zone_data);
    if (off < -MAX_OFFSET || off > MAX_OFFSET) {
      off = 0;
    }
    *zoned = 1;
  }
  int64_t local = secs + off;
  uint32_t sod = (uint32_t)(((local % DAY) + DAY) % DAY);
  int quiet = p->quiet_start < p->quiet_end
                  ? sod >= p->quiet_start && sod < p->quiet_end
                  : sod >= p->quiet_start || sod < p->quiet_end;
  if (!quiet) {
    uint32_t until = (p->quiet_start + DAY - sod) % DAY; /* >= 1 */
    *to_start = (tern_duration)until * TERN_SECONDS - frac;
    return 0;
  }
  uint32_t left = (p->quiet_end + DAY - sod) % DAY; /* >= 1: sod != end */
  return (tern_duration)left * TERN_SECONDS - frac;
}

/* When the cap lets the next message go; 0: now. */
static tern_tstamp cap_until(const spolicy *p, tern_tstamp now) {
  if (!p->cap_count || p->cap_len < p->cap_count) {
    return 0;
  }
  /* Full: the oldest of the last cap_count sends leaves the window at
     its time + cap_window. */
  tern_tstamp until = add_sat(p->sends[p->cap_head], p->cap_window);
  return until > now ? until : 0;
}

static int low_pending(const session *s) {
  return s->queue[TERN_PRIO_NORMAL] || s->queue[TERN_PRIO_LOW];
}

/*
 * Decides at |now| whether NORMAL and LOW messages wait (both rules must
 * let them go), and sets the deadline at which that may change: the end
 * of the hold, or, while nothing is held, the start of the quiet hours.
 * Closing at the start too, rather than at the next send, keeps
 * tern_conn_want_write exact for a host that serves its deadlines.  With
 * a zone the deadline is at most ZONE_RECHECK away (its offset may
 * change).
 */
static void evaluate(tern_hub *hub, session *s, spolicy *p, tern_tstamp now) {
  tern_tstamp until = 0, close_at = TERN_TSTAMP_NONE;
  if (p->active) {
    int zoned = 0;
    tern_duration to_start;
    tern_duration q = quiet_left(hub, p, now, &zoned, &to_start);
    tern_duration d = q ? q : to_start;
    if (zoned && d > ZONE_RECHECK) {
      d = ZONE_RECHECK;
    }
    if (q) {
      until = add_sat(now, d);
    } else if (to_start) {
      close_at = add_sat(now, d);
    }
    tern_tstamp c = cap_until(p, now);
    if (c > until) {
      until = c;
    }
  }
  tern_tstamp old = policy_due(s);
  if (until) {
    if (!p->held) {
      p->held = 1;
      ++hub->stats.policy_holds;
    }
    p->release_at = until;
    p->close_at = TERN_TSTAMP_NONE;
  } else {
    if (p->held) {
      p->held = 0;
      ++hub->stats.policy_releases;
      if (low_pending(s)) {
        session_notify(hub, s);
      }
    }
    p->release_at = TERN_TSTAMP_NONE;
    p->close_at = close_at;
  }
  if (policy_due(s) != old) {
    session_arm(hub, s);
  }
}

/*
 * Topic messages are not held (their members' cursors would let newer
 * ones pass), but one sent before and returned by a lost connection waits
 * in a pending queue among held messages: the first such one goes.  The
 * walk runs only while a hold keeps messages pending.
 */
static msg *first_topic_msg(const session *s) {
  for (int p = TERN_PRIO_NORMAL; p >= TERN_PRIO_LOW; --p) {
    msg *h = s->queue[p], *m = h;
    while (m) {
      if (m->flags & MSG_TOPIC) {
        return m;
      }
      m = m->next == h ? NULL : m->next;
    }
  }
  return NULL;
}

msg *policy_peek(tern_hub *hub, session *s, tern_tstamp now) {
  if (s->queue[TERN_PRIO_HIGH]) {
    return s->queue[TERN_PRIO_HIGH];
  }
  msg *m = s->queue[TERN_PRIO_NORMAL] ? s->queue[TERN_PRIO_NORMAL]
                                      : s->queue[TERN_PRIO_LOW];
  spolicy *p = s->tp->pol;
  if (!m || !p->active) {
    return m;
  }
  /* Deadlines not served yet count as served now. */
  if (p->held ? p->release_at <= now : p->close_at <= now) {
    evaluate(hub, s, p, now);
  }
  return p->held ? first_topic_msg(s) : m;
}

void policy_sent(tern_hub *hub, session *s, const msg *m, tern_tstamp now) {
  spolicy *p = s->tp->pol;
  /* A message sent again (its connection was lost) counted once. */
  if (!p->cap_count || m->priority == TERN_PRIO_HIGH || m->deliveries ||
      (m->flags & MSG_TOPIC)) {
    return;
  }
  if (p->cap_len < p->cap_count) {
    p->sends[(p->cap_head + p->cap_len++) % p->cap_count] = now;
  } else {
    p->sends[p->cap_head] = now;
    p->cap_head = (p->cap_head + 1) % p->cap_count;
  }
  if (p->cap_len == p->cap_count) {
    evaluate(hub, s, p, now); /* the send that fills the cap closes it */
  }
}

int policy_has_pending(const session *s) {
  const spolicy *p = s->tp->pol;
  if (s->queue[TERN_PRIO_HIGH] || (s->npending && !p->held)) {
    return 1;
  }
  return s->npending && first_topic_msg(s) != NULL;
}

int policy_holds_back(const session *s) {
  const spolicy *p = session_policy(s);
  return p && p->held;
}

tern_tstamp policy_due(const session *s) {
  const spolicy *p = s->tp->pol;
  tern_tstamp t = p->held ? p->release_at : p->close_at;
  return p->fb_due < t ? p->fb_due : t;
}

/* ---- fallback ------------------------------------------------------------- */

/* Queues the FALLBACK events that are due; 0 or TERN_ERR_NOMEM. */
static int fire_fallbacks(tern_hub *hub, session *s, spolicy *p,
                          tern_tstamp now) {
  tern_tstamp next = TERN_TSTAMP_NONE;
  for (fbrec *r = p->fb; r; r = r->next) {
    if (r->due == TERN_TSTAMP_NONE) {
      continue;
    }
    if (r->due > now) {
      next = r->due < next ? r->due : next;
      continue;
    }
    const msg *m = r->m;
    const uint8_t *payload = msg_tail(m) + (m->taillen - m->payloadlen);
    if (event_reserve(hub, 1, (size_t)s->keylen + m->idlen + m->payloadlen) !=
        0) {
      p->fb_due = r->due; /* still due: tried again */
      return TERN_ERR_NOMEM;
    }
    evrec *e = event_duty(hub, TERN_EV_FALLBACK, 0, NULL, s->key, s->keylen,
                          msg_id(m), m->idlen, payload, m->payloadlen, m->seq,
                          m->deliveries);
    e->cookie = msg_cookie(m);
    r->due = TERN_TSTAMP_NONE;
    ++hub->stats.fallbacks;
  }
  p->fb_due = next;
  return 0;
}

int policy_on_timer(tern_hub *hub, session *s, tern_tstamp now) {
  spolicy *p = s->tp->pol;
  if (p->held ? p->release_at <= now : p->close_at <= now) {
    evaluate(hub, s, p, now);
  }
  int rv = 0;
  if (p->fb_due <= now) {
    rv = fire_fallbacks(hub, s, p, now);
  }
  if (rv == 0) {
    policy_trim(hub, s);
  }
  return rv;
}

static spolicy *policy_get(tern_hub *hub, session *s) {
  if (topic_session_tp(hub, s) != 0) {
    return NULL;
  }
  if (!s->tp->pol) {
    spolicy *p = mem_malloc(&hub->mem, sizeof(*p));
    if (!p) {
      topic_session_trim(hub, s);
      return NULL;
    }
    memset(p, 0, sizeof(*p));
    p->release_at = TERN_TSTAMP_NONE;
    p->close_at = TERN_TSTAMP_NONE;
    p->fb_due = TERN_TSTAMP_NONE;
    s->tp->pol = p;
  }
  return s->tp->pol;
}

int policy_fallback_reserve(tern_hub *hub, session *s) {
  spolicy *p = policy_get(hub, s);
  if (!p) {
    return TERN_ERR_NOMEM;
  }
  if (!p->fb_spare) {
    p->fb_spare = mem_malloc(&hub->mem, sizeof(fbrec));
    if (!p->fb_spare) {
      policy_trim(hub, s);
      return TERN_ERR_NOMEM;
    }
  }
  return 0;
}

void policy_fallback_add(tern_hub *hub, session *s, msg *m, tern_tstamp due) {
  spolicy *p = s->tp->pol;
  fbrec *r = p->fb_spare;
  p->fb_spare = NULL;
  r->next = NULL;
  r->m = m;
  r->due = due;
  if (p->fb_tail) {
    p->fb_tail->next = r;
  } else {
    p->fb = r;
  }
  p->fb_tail = r;
  m->flags |= MSG_FALLBACK;
  if (due < p->fb_due) {
    p->fb_due = due;
    session_arm(hub, s);
  }
}

void policy_fallback_gone(tern_hub *hub, msg *m, int acked) {
  spolicy *p = m->session->tp->pol;
  /* Acks come in publish order, mostly: the record is near the head. */
  fbrec **pp = &p->fb, *prev = NULL;
  while (*pp && (*pp)->m != m) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  fbrec *r = *pp;
  m->flags &= (uint8_t)~MSG_FALLBACK;
  if (!r) {
    return;
  }
  *pp = r->next;
  if (p->fb_tail == r) {
    p->fb_tail = prev;
  }
  if (acked && r->due == TERN_TSTAMP_NONE) {
    ++hub->stats.fallback_acked; /* delivered both ways */
  }
  mem_free(&hub->mem, r);
  /* fb_due stays a lower bound: a firing with nothing due recomputes. */
}

/* ---- the block ------------------------------------------------------------ */

static void drop_block(tern_hub *hub, session *s) {
  spolicy *p = s->tp->pol;
  while (p->fb) {
    fbrec *r = p->fb;
    p->fb = r->next;
    r->m->flags &= (uint8_t)~MSG_FALLBACK;
    mem_free(&hub->mem, r);
  }
  mem_free(&hub->mem, p->fb_spare);
  mem_free(&hub->mem, p->sends);
  mem_free(&hub->mem, p);
  s->tp->pol = NULL;
}

void policy_trim(tern_hub *hub, session *s) {
  spolicy *p = session_policy(s);
  if (p && !p->active && !p->fb && !p->fb_spare) {
    drop_block(hub, s);
    session_arm(hub, s);
    topic_session_trim(hub, s);
  }
}

void policy_free(tern_hub *hub, session *s) {
  if (session_policy(s)) {
    drop_block(hub, s);
  }
}

/* ---- the API -------------------------------------------------------------- */

void tern_policy_default_versioned(uint32_t version, tern_policy *p) {
  if (!p) {
    return;
  }
  tern_policy all;
  memset(&all, 0, sizeof(all)); /* no quiet hours, no cap */
  all.version = version;
  layout_fill_defaults(p, layout_policy(version), &all);
}

static int check_policy(const tern_policy *p) {
  if (p->quiet_start >= DAY ||
      p->quiet_end >= DAY || p->utc_offset < -MAX_OFFSET ||
      p->utc_offset > MAX_OFFSET || p->cap_count > TERN_MAX_CAP ||
      (p->cap_count && p->cap_window == 0)) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

int tern_hub_set_policy(tern_hub *hub, const uint8_t *key, size_t keylen,
                        const tern_policy *tp, tern_tstamp now) {
  if (!hub || !key || keylen == 0) {
    return TERN_ERR_INVALID;
  }
  if (keylen > TERN_MAX_SESSION_KEY) {
    return TERN_ERR_TOO_LARGE;
  }
  tern_policy copy;
  if (tp) {
    /* The caller's layout, the fields it lacks at their defaults. */
    size_t len = layout_policy(tp->version);
    if (len == 0) {
      return TERN_ERR_INVALID;
    }
    memset(&copy, 0, sizeof(copy));
    memcpy(&copy, tp, len);
    tp = &copy;
    if (check_policy(tp) != 0) {
      return TERN_ERR_INVALID;
    }
  }
  int active = tp && (tp->quiet_start != tp->quiet_end || tp->cap_count);
  uint64_t hash = session_hash(hub, key, keylen);
  session *s = session_find(hub, key, keylen, hash);
  if (!s && !active) {
    return 0;
  }
  spolicy *p = s ? session_policy(s) : NULL;
  if (!active) {
    if (p) {
      p->active = 0;
      evaluate(hub, s, p, now); /* releases what it held */
      p->cap_count = 0;
      mem_free(&hub->mem, p->sends);
      p->sends = NULL;
      policy_trim(hub, s);
    }
    return 0;
  }
  /* Allocate everything that can fail first. */
  tern_tstamp *sends = NULL;
  if (tp->cap_count && (!p || p->cap_count != tp->cap_count)) {
    sends = mem_malloc(&hub->mem, tp->cap_count * sizeof(*sends));
    if (!sends) {
      return TERN_ERR_NOMEM;
    }
  }
  int created = 0;
  if (!s) {
    int rv = session_new(hub, &s, key, keylen, hash, now);
    if (rv != 0) {
      mem_free(&hub->mem, sends);
      return rv;
    }
    created = 1;
  }
  p = policy_get(hub, s);
  if (!p) {
    mem_free(&hub->mem, sends);
    if (created) {
      session_destroy(hub, s);
      --hub->stats.sessions_created;
      --hub->next_uid;
    }
    return TERN_ERR_NOMEM;
  }
  if (sends || !tp->cap_count) {
    /* a new ring: the sends it remembers are carried over, newest last */
    uint32_t keep = 0;
    if (sends && p->sends) {
      keep = p->cap_len < tp->cap_count ? p->cap_len : tp->cap_count;
      for (uint32_t i = 0; i < keep; ++i) {
        uint32_t from = (p->cap_head + p->cap_len - keep + i) % p->cap_count;
        sends[i] = p->sends[from];
      }
    }
    mem_free(&hub->mem, p->sends);
    p->sends = sends;
    p->cap_len = keep;
    p->cap_head = 0;
  }
  p->quiet_start = tp->quiet_start;
  p->quiet_end = tp->quiet_end;
  p->utc_offset = tp->utc_offset;
  p->zone = tp->zone;
  p->cap_count = tp->cap_count;
  p->cap_window = tp->cap_window;
  p->active = 1;
  /* The new rules decide at once whether what waits may go. */
  evaluate(hub, s, p, now);
  if (low_pending(s) && !p->held) {
    session_notify(hub, s);
  }
  return 0;
}

int tern_hub_set_zone_callback(tern_hub *hub, tern_zone_fn fn,
                               void *user_data) {
  if (!hub) {
    return TERN_ERR_INVALID;
  }
  hub->zone_fn = fn;
  hub->zone_data = fn ? user_data : NULL;
  return 0;
}
