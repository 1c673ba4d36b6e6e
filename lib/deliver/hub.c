/*
 * The hub: settings, creation and teardown, the deadline loop
 * (get_expiry/handle_expiry), the ready list of writable connections,
 * restart GOAWAYs and statistics.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"
#include "hooks/hooks.h"
#include "deliver/topic.h"

/* The defaults of every field this library knows. */
static void settings_defaults(tern_settings *s) {
  memset(s, 0, sizeof(*s));
  s->version = TERN_SETTINGS_VERSION;
  s->max_payload = 1024 * 1024;
  s->max_sessions = 0;
  s->max_conns = 10;
  s->inflight_window = 256;
  s->max_pending = 10000;
  s->max_pending_bytes = 64u * 1024 * 1024;
  s->overflow[0] = s->overflow[1] = s->overflow[2] = TERN_OVERFLOW_EVICT;
  s->retry_after = 1 * TERN_SECONDS;
  s->default_ttl = 0;
  s->heartbeat_interval = 4 * TERN_SECONDS;
  s->liveness_timeout = 7 * TERN_SECONDS;
  s->max_heartbeat = 300 * TERN_SECONDS;
  s->session_ttl = 24 * 3600 * TERN_SECONDS;
  s->dedup_window = 120 * TERN_SECONDS;
  s->ack_timeout = 0;
  s->max_deliver = 5;
  s->max_events = 65536;
  s->seed = 0;
  s->trace = 0;
  s->hello_accept = 0;
  s->max_pool_bytes = 1024 * 1024;
  s->topic_rate = 0;
  s->topic_burst = 0;
  s->accept_rate = 0;
  s->accept_burst = 0;
  s->accept_max_retry = 30 * TERN_SECONDS;
}

void tern_settings_default_versioned(uint32_t version, tern_settings *s) {
  tern_settings all;
  settings_defaults(&all);
  all.version = version;
  layout_fill_defaults(s, layout_settings(version), &all);
}

/* The 0.1 entry point, for programs built against its header. */
#undef tern_settings_default
void tern_settings_default(tern_settings *s) {
  tern_settings_default_versioned(TERN_SETTINGS_V1, s);
}

/* The accept bucket's size in token-nanoseconds (one token is
   TERN_SECONDS of them, so that refilling needs no division). */
static uint64_t accept_capacity(const tern_settings *s) {
  uint64_t burst = s->accept_burst ? s->accept_burst : s->accept_rate;
  return burst * TERN_SECONDS;
}

/* 1 when a HELLO of |s| is to be deferred; *retry_ms is then its hint. */
int hub_accept_defer(tern_hub *hub, const session *s, tern_tstamp now,
                     uint32_t *retry_ms) {
  const uint64_t rate = hub->set.accept_rate;
  const uint64_t cap = accept_capacity(&hub->set);
  if (hub->accept_at == TERN_TSTAMP_NONE) {
    hub->accept_at = now;
  } else if (now > hub->accept_at) {
    uint64_t elapsed = now - hub->accept_at;
    uint64_t room = cap - hub->accept_tokens;
    hub->accept_tokens =
        elapsed >= room / rate + 1 ? cap : hub->accept_tokens + elapsed * rate;
    hub->accept_tokens = hub->accept_tokens > cap ? cap : hub->accept_tokens;
    hub->accept_at = now;
  }
  int urgent = s && s->queue[TERN_PRIO_HIGH] != NULL;
  /* The last quarter of the bucket is kept for sessions with HIGH
     backlog, so that they are admitted first. */
  uint64_t need = TERN_SECONDS + (urgent ? 0 : (cap / TERN_SECONDS / 4) *
                                                   TERN_SECONDS);
  if (hub->accept_tokens >= need) {
    hub->accept_tokens -= TERN_SECONDS;
    return 0;
  }
  uint64_t max_ms = hub->set.accept_max_retry / TERN_MILLISECONDS;
  uint64_t bound = urgent ? max_ms / 4 : max_ms;
  *retry_ms = 1 + (uint32_t)rng_below(&hub->rand, bound ? bound : 1);
  ++hub->stats.accepts_deferred;
  return 1;
}

static int check_settings(const tern_settings *s) {
  if (s->max_payload == 0 || s->max_payload > UINT32_MAX / 2 ||
      s->max_conns == 0 || s->max_conns > UINT16_MAX ||
      s->inflight_window == 0 || s->max_pending == 0 ||
      s->max_pending_bytes == 0 || s->max_events == 0) {
    return TERN_ERR_INVALID;
  }
  for (int i = 0; i < 3; ++i) {
    if (s->overflow[i] > TERN_OVERFLOW_REJECT) {
      return TERN_ERR_INVALID;
    }
  }
  if (s->heartbeat_interval < TERN_SECONDS ||
      s->liveness_timeout <= s->heartbeat_interval ||
      s->max_heartbeat < s->heartbeat_interval ||
      s->liveness_timeout / TERN_MILLISECONDS > UINT32_MAX / 4 ||
      s->max_heartbeat / TERN_MILLISECONDS > UINT32_MAX / 4 ||
      s->session_ttl == 0) {
    return TERN_ERR_INVALID;
  }
  if (s->accept_max_retry > 24 * 3600 * TERN_SECONDS) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

int tern_hub_new(tern_hub **phub, const tern_settings *s, const tern_mem *mem) {
  tern_settings all;
  if (!phub) {
    return TERN_ERR_INVALID;
  }
  /* The caller's layout, the fields it lacks at their defaults. */
  settings_defaults(&all);
  if (s) {
    size_t len = layout_settings(s->version);
    if (len == 0) {
      return TERN_ERR_INVALID;
    }
    memcpy(&all, s, len);
    all.version = TERN_SETTINGS_VERSION;
  }
  s = &all;
  if (check_settings(s) != 0) {
    return TERN_ERR_INVALID;
  }
  if (mem && (!mem->malloc || !mem->free || !mem->calloc || !mem->realloc)) {
    return TERN_ERR_INVALID;
  }
  if (!mem) {
    mem = mem_default();
  }
  tern_hub *hub = mem_calloc(mem, 1, sizeof(*hub));
  if (!hub) {
    return TERN_ERR_NOMEM;
  }
  hub->mem = *mem;
  hub->set = *s;
  msg_pool_init(hub);
  if (hmap_init(&hub->sessions, mem, 1024) != 0 ||
      hmap_init(&hub->collapse_index, mem, 64) != 0 ||
      hmap_init(&hub->dedup_index, mem, 64) != 0 ||
      hmap_init(&hub->topics, mem, 16) != 0 ||
      heap_reserve(&hub->timers, mem, 64) != 0) {
    tern_hub_del(hub);
    return TERN_ERR_NOMEM;
  }
  hub->topic_tokens = s->topic_burst ? s->topic_burst : s->topic_rate;
  hub->topic_refill = TERN_TSTAMP_NONE;
  hub->accept_tokens = accept_capacity(s);
  hub->accept_at = TERN_TSTAMP_NONE; /* full until the first HELLO */
  uint64_t seed = s->seed ? s->seed : (uint64_t)(uintptr_t)hub;
  rng_seed(&hub->rand, seed);
  hub->hash_key[0] = rng_next(&hub->rand);
  hub->hash_key[1] = rng_next(&hub->rand);
  do {
    hub->epoch = rng_next(&hub->rand);
  } while (hub->epoch == 0);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    hub->genid[i] = (uint8_t)hex[(hub->epoch >> (60 - 4 * i)) & 0xf];
    hub->genid[16 + i] = '0';
  }
  *phub = hub;
  return 0;
}

void tern_hub_del(tern_hub *hub) {
  if (!hub) {
    return;
  }
  /* What the store has stays: flush what waits, then tear down without
     writing (the hub's end is not the state's end). */
  persist_close(hub);
  /* Connections the host did not delete go first (they hold references
     to partial frames), then sessions with their messages. */
  while (hub->conns) {
    conn *c = hub->conns;
    hub->conns = c->all_next;
    if (c->session) {
      /* in-flight messages go back so the session frees them (and it
         reads the connection's aux block: detach first) */
      session_detach(hub, c->session, c, 0);
    }
    conn_aux_free(hub, c);
    if (c->framing) {
      framing_release(hub, c);
    }
    /* Its timer leaves the heap before it is freed: later arming (the
       session TTL above) compares against every armed timer. */
    heap_disarm(&hub->timers, &c->timer);
    mem_free(&hub->mem, c);
  }
  if (hub->sessions.buckets) {
    for (size_t i = 0; i <= hub->sessions.mask; ++i) {
      while (hub->sessions.buckets[i]) {
        session_destroy(hub, (session *)hub->sessions.buckets[i]);
      }
    }
  }
  topic_hub_free(hub);
  hooks_free(hub);
  while (hub->dedup_head) {
    dedup *e = hub->dedup_head;
    hub->dedup_head = e->fifo_next;
    mem_free(&hub->mem, e);
  }
  hmap_free(&hub->sessions, &hub->mem);
  hmap_free(&hub->collapse_index, &hub->mem);
  hmap_free(&hub->dedup_index, &hub->mem);
  heap_free(&hub->timers, &hub->mem);
  if (hub->peek_spare) {
    mem_free(&hub->mem, hub->peek_spare);
  }
  if (hub->aux_spare) {
    mem_free(&hub->mem, hub->aux_spare);
  }
  if (hub->ws_spare) {
    mem_free(&hub->mem, hub->ws_spare);
  }
  msg_pool_free(hub);
  event_free(hub);
  tern_mem mem = hub->mem;
  mem_free(&mem, hub);
}

uint64_t tern_hub_get_epoch(const tern_hub *hub) { return hub ? hub->epoch : 0; }

int hub_grow_timers(tern_hub *hub) {
  if (heap_reserve(&hub->timers, &hub->mem, hub->timer_objects + 1) != 0) {
    return TERN_ERR_NOMEM;
  }
  ++hub->timer_objects;
  return 0;
}

tern_tstamp tern_hub_get_expiry(const tern_hub *hub) {
  if (!hub) {
    return TERN_TSTAMP_NONE;
  }
  tern_tstamp t = TERN_TSTAMP_NONE;
  const timer *top = heap_top(&hub->timers);
  if (top) {
    t = top->deadline;
  }
  if (hub->dedup_head && hub->dedup_head->expires < t) {
    t = hub->dedup_head->expires;
  }
  if (hub->topic_refill < t) {
    t = hub->topic_refill;
  }
  if (hub->hooks) {
    tern_tstamp h = hooks_expiry(hub);
    t = h < t ? h : t;
  }
  if (persist_pending(hub)) {
    t = 0; /* a batch waits: flush now */
  }
  return t;
}

int tern_hub_handle_expiry(tern_hub *hub, tern_tstamp now) {
  if (!hub) {
    return TERN_ERR_INVALID;
  }
  timer *t;
  int rv = 0;
  while (rv == 0 && (t = heap_top(&hub->timers)) && t->deadline <= now) {
    switch (t->kind) {
    case TIMER_SESSION:
      rv = session_on_timer(
          hub, (session *)((char *)t - offsetof(session, timer)), now);
      break;
    default: {
      conn *c = (conn *)((char *)t - offsetof(conn, timer));
      heap_disarm(&hub->timers, t);
      rv = conn_on_timer(hub, c, now);
      break;
    }
    }
  }
  dedup_expire(hub, now);
  if (hub->topic_refill <= now) {
    topic_pace_expiry(hub, now);
  }
  tern_hub_flush(hub);
  return rv;
}

/* ---- ready list --------------------------------------------------------- */

tern_conn *tern_hub_next_ready(tern_hub *hub) {
  if (!hub) {
    return NULL;
  }
  while (hub->ready_head) {
    conn *c = hub->ready_head;
    hub_unready(hub, c);
    /* A host drains this list in a loop, and with many sessions every
       connection and session is a cache miss.  Fetch ahead: the session of
       the next connection (whose line the previous call fetched) and the
       connection after it. */
    conn *next = hub->ready_head;
    if (next) {
      __builtin_prefetch(next->session);
      if (next->ready_next) {
        __builtin_prefetch(next->ready_next);
      }
    }
    if (tern_conn_want_write((tern_conn *)c)) {
      return (tern_conn *)c;
    }
  }
  return NULL;
}

/* ---- restart ------------------------------------------------------------ */

int tern_hub_goaway_all(tern_hub *hub, uint32_t reason,
                        tern_duration max_retry, tern_tstamp now) {
  if (!hub || reason > 0xff) {
    return TERN_ERR_INVALID;
  }
  uint64_t max_ms = max_retry / TERN_MILLISECONDS;
  if (max_ms > UINT32_MAX) {
    max_ms = UINT32_MAX;
  }
  int told = 0;
  for (conn *c = hub->conns; c; c = c->all_next) {
    if (c->state != CONN_OPEN) {
      continue;
    }
    /* Sessions with urgent backlog are told to come back first. */
    uint64_t bound = c->session->queue[TERN_PRIO_HIGH] ? max_ms / 4 : max_ms;
    uint32_t retry = (uint32_t)rng_below(&hub->rand, bound + 1);
    conn_close(c, (int)reason, retry, 0, 0, now);
    ++told;
  }
  return told;
}

/* ---- stats and publish -------------------------------------------------- */

void tern_hub_get_stats(const tern_hub *hub, tern_stats *st, size_t size) {
  if (!hub || !st) {
    return;
  }
  layout_copy_out(st, size, &hub->stats, sizeof(hub->stats));
}

/* An older caller's structs go through full-size copies (kept out of the
   common path, which is a tail call). */
LAYOUT_OLD static int publish_old(tern_hub *hub, const uint8_t *key, size_t keylen,
                       uint32_t desc_version, const tern_msg_desc *desc,
                       tern_tstamp now, uint32_t result_version,
                       tern_publish_result *result) {
  size_t dlen = layout_msg_desc(desc_version);
  size_t rlen = layout_publish_result(result_version);
  if (!hub || !desc || dlen == 0 || rlen == 0) {
    return TERN_ERR_INVALID;
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  memcpy(&d, desc, dlen);
  if (!result) {
    return session_publish(hub, key, keylen, &d, now, NULL);
  }
  tern_publish_result r;
  int rv = session_publish(hub, key, keylen, &d, now, &r);
  if (rv == 0 || rv == TERN_ERR_FULL || rv == TERN_ERR_DUPLICATE) {
    memcpy(result, &r, rlen); /* the cases that fill it */
  }
  return rv;
}

int tern_hub_publish_versioned(tern_hub *hub, const uint8_t *key,
                               size_t keylen, uint32_t desc_version,
                               const tern_msg_desc *desc, tern_tstamp now,
                               uint32_t result_version,
                               tern_publish_result *result) {
  if (desc_version != TERN_MSG_DESC_VERSION ||
      result_version != TERN_PUBLISH_RESULT_VERSION) {
    return publish_old(hub, key, keylen, desc_version, desc, now,
                       result_version, result);
  }
  if (!hub || !desc) {
    return TERN_ERR_INVALID;
  }
  return session_publish(hub, key, keylen, desc, now, result);
}

/* The 0.1 entry point, for programs built against its header. */
#undef tern_hub_publish
int tern_hub_publish(tern_hub *hub, const uint8_t *key, size_t keylen,
                     const tern_msg_desc *desc, tern_tstamp now,
                     tern_publish_result *result) {
  return tern_hub_publish_versioned(hub, key, keylen, TERN_MSG_DESC_V1, desc,
                                    now, TERN_PUBLISH_RESULT_V1, result);
}
