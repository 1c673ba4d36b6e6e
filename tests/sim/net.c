/*
 * Simulated links.  A link is two byte pipes (client -> hub, hub -> client)
 * that behave like one TCP connection over a bad network:
 *
 *  - latency per direction, a bandwidth (bytes leave the sender one after
 *    another), and a window: the sender may have at most |window| bytes in
 *    transit, so a slow reader pushes back on the writer (partial writes);
 *  - reads and writes in random chunk sizes, so frames arrive and leave in
 *    pieces;
 *  - silent death: from the moment a path dies every byte on it vanishes
 *    and neither end is told (only liveness timers can notice);
 *  - FIN (an orderly close that arrives after the data before it) and RST
 *    (a reset that overtakes it).
 *
 * The tap decodes what the hub wrote into frames, so that the checker knows
 * the wire truth (MSG ttl, DROPPED counts and where they sit in the stream)
 * independently of the client.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "wire/frame.h"

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    abort();
  }
  return p;
}

static void pipe_init(sim *s, sim_pipe *p, tern_duration latency) {
  memset(p, 0, sizeof(*p));
  p->latency = latency;
  switch (prng_below(&s->rng, 3)) {
  case 0:
    p->bytes_per_sec = prng_range(&s->rng, 50, 500) * 1000;
    break;
  case 1:
    p->bytes_per_sec = prng_range(&s->rng, 1, 10) * 1000 * 1000;
    break;
  default:
    p->bytes_per_sec = 100u * 1000 * 1000;
    break;
  }
  p->window = prng_pct(&s->rng, 30) ? (size_t)prng_range(&s->rng, 512, 4096)
                                     : (size_t)prng_range(&s->rng, 8192, 65536);
}

sim_link *link_new(sim *s, int client) {
  sim_link *l = xmalloc(sizeof(*l));
  memset(l, 0, sizeof(*l));
  l->id = ++s->next_link;
  l->client = client;
  l->client_side = 1;
  l->accept_at = TERN_TSTAMP_NONE;
  tern_duration base;
  switch (prng_below(&s->rng, 4)) {
  case 0:
    base = prng_range(&s->rng, 50, 500) * 1000; /* 50-500 us: a LAN */
    break;
  case 1:
  case 2:
    base = SIM_MS(prng_range(&s->rng, 5, 60));
    break;
  default:
    base = SIM_MS(prng_range(&s->rng, 100, 400)); /* a mobile network */
    break;
  }
  pipe_init(s, &l->up, base + prng_below(&s->rng, base / 4 + 1));
  pipe_init(s, &l->down, base + prng_below(&s->rng, base / 4 + 1));
  l->min_chunk = 16; /* every control frame but GOAWAY fits whole */
  switch (prng_below(&s->rng, 4)) {
  case 0:
    l->max_chunk = (size_t)prng_range(&s->rng, 16, 64);
    break;
  case 1:
    l->max_chunk = (size_t)prng_range(&s->rng, 100, 1500);
    break;
  default:
    l->max_chunk = 65536;
    break;
  }
  l->next = s->links;
  s->links = l;
  ++s->res->links;
  return l;
}

static void pipe_clear(sim_pipe *p) {
  while (p->head) {
    seg *g = p->head;
    p->head = g->next;
    free(g);
  }
  p->tail = NULL;
  p->in_transit = 0;
}

void link_free(sim_link *l) {
  pipe_clear(&l->up);
  pipe_clear(&l->down);
  free(l->tap);
  free(l->notices);
  free(l->sent);
  free(l);
}

size_t link_room(const sim_pipe *p) {
  if (p->shut) {
    return 0;
  }
  return p->in_transit >= p->window ? 0 : p->window - p->in_transit;
}

static void push(sim_pipe *p, seg *g) {
  g->next = NULL;
  if (p->tail) {
    p->tail->next = g;
  } else {
    p->head = g;
  }
  p->tail = g;
}

void link_send(sim *s, sim_link *l, sim_pipe *p, const uint8_t *data,
               size_t len) {
  p->written += len;
  if (l->dead || len == 0) {
    return; /* the bytes vanish */
  }
  tern_tstamp start = p->busy_until > s->now ? p->busy_until : s->now;
  tern_duration tx = (tern_duration)len * TERN_SECONDS / p->bytes_per_sec;
  p->busy_until = start + tx;
  seg *g = xmalloc(sizeof(seg) + len);
  g->at = p->busy_until + p->latency;
  if (p->tail && p->tail->at > g->at) {
    g->at = p->tail->at; /* the latency never reorders a stream */
  }
  g->len = (uint32_t)len;
  g->kind = SEG_DATA;
  memcpy(g->data, data, len);
  p->in_transit += len;
  push(p, g);
}

void link_shut(sim *s, sim_link *l, sim_pipe *p, int kind) {
  if (p->shut) {
    return;
  }
  p->shut = 1;
  if (l->dead) {
    return;
  }
  if (kind == SEG_RST) {
    pipe_clear(p); /* a reset overtakes what was in flight */
  }
  seg *g = xmalloc(sizeof(seg));
  tern_tstamp start = s->now;
  if (kind == SEG_FIN && p->busy_until > start) {
    start = p->busy_until;
  }
  g->at = start + p->latency;
  if (p->tail && p->tail->at > g->at) {
    g->at = p->tail->at;
  }
  g->len = 0;
  g->kind = (uint8_t)kind;
  push(p, g);
}

void link_kill(sim *s, sim_link *l) {
  (void)s;
  l->dead = 1;
  pipe_clear(&l->up);
  pipe_clear(&l->down);
}

tern_tstamp links_next_arrival(const sim *s) {
  tern_tstamp t = TERN_TSTAMP_NONE;
  for (const sim_link *l = s->links; l; l = l->next) {
    if (l->up.head && l->up.head->at < t) {
      t = l->up.head->at;
    }
    if (l->down.head && l->down.head->at < t) {
      t = l->down.head->at;
    }
  }
  return t;
}

seg *link_take(sim_pipe *p, tern_tstamp now) {
  seg *g = p->head;
  if (!g || g->at > now) {
    return NULL;
  }
  p->head = g->next;
  if (!p->head) {
    p->tail = NULL;
  }
  p->in_transit -= g->len;
  return g;
}

size_t link_chunk(sim *s, const sim_link *l, size_t max) {
  if (max <= l->min_chunk) {
    return max;
  }
  size_t hi = l->max_chunk < max ? l->max_chunk : max;
  if (hi <= l->min_chunk) {
    return hi;
  }
  /* Mostly large pieces, sometimes a short one. */
  if (prng_pct(&s->rng, 70)) {
    return hi;
  }
  return (size_t)prng_range(&s->rng, l->min_chunk, hi);
}

int link_idle(const sim_link *l) { return !l->up.head && !l->down.head; }

/* ---- the tap -------------------------------------------------------------- */

void link_tap(sim *s, sim_link *l, const uint8_t *data, size_t len) {
  if (l->taplen + len > l->tapcap) {
    size_t cap = l->tapcap ? l->tapcap : 1024;
    while (cap < l->taplen + len) {
      cap *= 2;
    }
    uint8_t *t = realloc(l->tap, cap);
    if (!t) {
      abort();
    }
    l->tap = t;
    l->tapcap = cap;
  }
  memcpy(l->tap + l->taplen, data, len);
  l->taplen += len;
  size_t used = 0;
  while (l->taplen - used >= 2) {
    uint64_t body;
    const uint8_t *p = l->tap + used;
    tern_ssize n = wire_get_varint(&body, p + 1, l->tap + l->taplen);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      sim_fail(s, 0, "link %u: the hub wrote a malformed frame header",
               l->id);
      l->taplen = 0;
      return;
    }
    size_t total = 1 + (size_t)n + (size_t)body;
    if (l->taplen - used < total) {
      break;
    }
    used += total;
    model_tap_frame(s, l, p, total, l->tapoff + used);
  }
  if (used) {
    memmove(l->tap, l->tap + used, l->taplen - used);
    l->taplen -= used;
    l->tapoff += used;
  }
}
