/*
 * The hub's event queue.  Records are fixed-size; the strings they carry
 * (session key, message id, token or newer id) are copied into one arena,
 * so an event stays readable after its message or session is gone.  Both
 * arrays are reset whenever the queue runs empty, which a host draining
 * events every loop makes the common case.
 *
 * Duty events use room reserved for them beforehand (hub.h says who
 * reserves what): the free room past ev_len always covers ev_reserved
 * records and arena_reserved bytes.  Trace events use only what is left
 * beyond that; past max_events, or when growing fails, a trace event is
 * counted in stats.events_lost and dropped.
 */
#include <string.h>

#include "base/layout.h"
#include "base/mem.h"
#include "deliver/hub.h"

/* Makes room for |n| records and |strings| bytes beyond the reservations. */
static int grow(tern_hub *hub, size_t n, size_t strings) {
  size_t need = hub->ev_len + hub->ev_reserved + n;
  if (need > hub->ev_cap) {
    size_t cap = hub->ev_cap ? hub->ev_cap * 2 : 64;
    while (cap < need) {
      cap *= 2;
    }
    evrec *ev = mem_realloc(&hub->mem, hub->ev, cap * sizeof(*ev));
    if (!ev) {
      return -1;
    }
    hub->ev = ev;
    hub->ev_cap = cap;
  }
  need = hub->arena_len + hub->arena_reserved + strings;
  if (need > hub->arena_cap) {
    size_t cap = hub->arena_cap ? hub->arena_cap : 4096;
    while (cap < need) {
      cap *= 2;
    }
    uint8_t *a = mem_realloc(&hub->mem, hub->arena, cap);
    if (!a) {
      return -1;
    }
    hub->arena = a;
    hub->arena_cap = cap;
  }
  return 0;
}

static uint32_t save(tern_hub *hub, const uint8_t *p, size_t len) {
  uint32_t off = (uint32_t)hub->arena_len;
  if (len) {
    memcpy(hub->arena + off, p, len);
  }
  hub->arena_len += len;
  return off;
}

static void reset_if_empty(tern_hub *hub) {
  if (hub->ev_head == hub->ev_len) {
    hub->ev_head = hub->ev_len = 0;
    hub->arena_len = 0;
  }
}

int event_reserve(tern_hub *hub, size_t n, size_t strings) {
  reset_if_empty(hub);
  if (grow(hub, n, strings) != 0) {
    return TERN_ERR_NOMEM;
  }
  hub->ev_reserved += n;
  hub->arena_reserved += strings;
  return 0;
}

void event_unreserve(tern_hub *hub, size_t n, size_t strings) {
  hub->ev_reserved -= n;
  hub->arena_reserved -= strings;
}

static evrec *put(tern_hub *hub, int type, int reason, tern_conn *c,
                  const uint8_t *key, size_t keylen, const uint8_t *id,
                  size_t idlen, const uint8_t *aux, size_t auxlen,
                  uint64_t seq, uint64_t count) {
  evrec *e = &hub->ev[hub->ev_len++];
  e->type = (uint8_t)type;
  e->reason = (int16_t)reason;
  e->conn = c;
  if (c) {
    ++((conn *)c)->nevents;
  }
  e->seq = seq;
  e->count = count;
  e->cookie = 0;
  e->keylen = (uint8_t)keylen;
  e->key_off = save(hub, key, keylen);
  e->idlen = (uint8_t)idlen;
  e->id_off = save(hub, id, idlen);
  e->auxlen = (uint32_t)auxlen;
  e->aux_off = save(hub, aux, auxlen);
  return e;
}

evrec *event_duty(tern_hub *hub, int type, int reason, tern_conn *c,
                  const uint8_t *key, size_t keylen, const uint8_t *id,
                  size_t idlen, const uint8_t *aux, size_t auxlen,
                  uint64_t seq, uint64_t count) {
  /* The reservation covers it; the reset only frees room. */
  reset_if_empty(hub);
  event_unreserve(hub, 1, keylen + idlen + auxlen);
  return put(hub, type, reason, c, key, keylen, id, idlen, aux, auxlen, seq,
             count);
}

evrec *event_push(tern_hub *hub, int type, int reason, tern_conn *c,
                  const uint8_t *key, size_t keylen, const uint8_t *id,
                  size_t idlen, const uint8_t *aux, size_t auxlen,
                  uint64_t seq, uint64_t count) {
  reset_if_empty(hub);
  if (hub->ev_len - hub->ev_head >= hub->set.max_events ||
      grow(hub, 1, keylen + idlen + auxlen) != 0) {
    ++hub->stats.events_lost;
    return NULL;
  }
  return put(hub, type, reason, c, key, keylen, id, idlen, aux, auxlen, seq,
             count);
}

void event_msg(tern_hub *hub, int type, int reason, const msg *m,
               tern_conn *c, const uint8_t *aux, size_t auxlen) {
  evrec *e = event_push(hub, type, reason, c, m->session->key,
                        m->session->keylen, msg_id(m), m->idlen, aux, auxlen,
                        m->seq, 0);
  if (e) {
    e->cookie = msg_cookie(m);
  }
}

void event_free(tern_hub *hub) {
  mem_free(&hub->mem, hub->ev);
  mem_free(&hub->mem, hub->arena);
  hub->ev = NULL;
  hub->arena = NULL;
}

static int next_event(tern_hub *hub, tern_event *ev) {
  if (hub->ev_head == hub->ev_len) {
    hub->ev_head = hub->ev_len = 0;
    hub->arena_len = 0;
    return 0;
  }
  const evrec *e = &hub->ev[hub->ev_head++];
  memset(ev, 0, sizeof(*ev));
  ev->type = e->type;
  ev->reason = e->reason;
  conn *c = (conn *)e->conn;
  if (c && --c->nevents == 0 && c->state == CONN_DELETED) {
    conn_free(hub, c); /* the host deleted it; do not hand it out */
    c = NULL;
  } else if (c && c->state == CONN_DELETED) {
    c = NULL;
  }
  ev->conn = (tern_conn *)c;
  ev->seq = e->seq;
  ev->count = e->count;
  ev->cookie = e->cookie;
  if (e->keylen) {
    ev->session_key = hub->arena + e->key_off;
    ev->session_keylen = e->keylen;
  }
  if (e->idlen) {
    ev->msg_id = hub->arena + e->id_off;
    ev->msg_idlen = e->idlen;
  }
  if (e->auxlen) {
    ev->aux = hub->arena + e->aux_off;
    ev->auxlen = e->auxlen;
  }
  return 1;
}

/* An older caller's layout: no byte past it. */
LAYOUT_OLD static int next_event_old(tern_hub *hub, uint32_t version,
                                     tern_event *ev) {
  size_t len = layout_event(version);
  if (!hub || !ev || len == 0) {
    return TERN_ERR_INVALID;
  }
  tern_event all;
  int rv = next_event(hub, &all);
  if (rv == 1) {
    memcpy(ev, &all, len);
  }
  return rv;
}

int tern_hub_next_event_versioned(tern_hub *hub, uint32_t version,
                                  tern_event *ev) {
  if (version != TERN_EVENT_VERSION) {
    return next_event_old(hub, version, ev);
  }
  if (!hub || !ev) {
    return TERN_ERR_INVALID;
  }
  return next_event(hub, ev);
}

/* The 0.1 entry point, for programs built against its header. */
#undef tern_hub_next_event
int tern_hub_next_event(tern_hub *hub, tern_event *ev) {
  return tern_hub_next_event_versioned(hub, TERN_EVENT_V1, ev);
}
