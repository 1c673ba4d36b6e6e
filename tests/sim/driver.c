/*
 * The scenario and the host loops.
 *
 * A run draws everything from its seed: hub and client settings, the
 * number of clients, how often producers publish and faults strike, and
 * every link's latency, bandwidth, window and chunk sizes.  It then plays
 * three phases on one virtual clock:
 *
 *   chaos     producers publish; links die silently, reset, or the network
 *             of a client goes away for a while; apps restart (abruptly or
 *             saying goodbye); the host kicks connections (GOAWAY); with
 *             --hub-restart the hub process crashes too (see below);
 *   quiet     no more publishes or faults, every new link is healthy; the
 *             phase ends once every client is connected and the hub holds
 *             nothing, or fails invariant 1 when that takes too long;
 *   teardown  every app exits; time runs past session_ttl and the dedup
 *             window until the hub has no deadline left; then its memory
 *             must be back to its baseline (invariant 7).
 *
 * Each step advances the clock to the earliest of the hub's and clients'
 * expiries, link arrivals and scenario actions, serves what is due, then
 * runs the host loops until nothing moves, then checks (check.c).
 *
 * The host loops are what a real server and app would do: the hub side
 * writes the connections tern_hub_next_ready returns (and remembers those
 * it could not finish because the socket was full), deletes a connection
 * on CONN_DEAD, on EOF or once tern_conn_write says CLOSED; the app side
 * opens a transport on CONNECT after a connect delay, closes it on
 * DISCONNECTED and reports breaks with tern_client_conn_lost.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* The smallest write a host makes: every control frame but GOAWAY fits in
   it, so DROPPED frames are never split (the tap counts them whole). */
#define MIN_WRITE 16
#define IOBUF 65536

static uint8_t iobuf[IOBUF];

static tern_tstamp tmin(tern_tstamp a, tern_tstamp b) { return a < b ? a : b; }

static double now_s(const sim *s) {
  return (double)(int64_t)(s->now - SIM_T0) / 1e9;
}

void sim_log(sim *s, const char *fmt, ...) {
  if (!s->opt.verbose) {
    return;
  }
  va_list ap;
  printf("%11.6f  ", now_s(s));
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

void sim_fail(sim *s, int invariant, const char *fmt, ...) {
  char buf[sizeof(s->res->why)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (s->opt.verbose) {
    printf("%11.6f  FAIL (invariant %d): %s\n", now_s(s), invariant, buf);
  }
  if (s->failed) {
    return;
  }
  s->failed = 1;
  s->res->failed = 1;
  s->res->invariant = invariant;
  s->res->fail_time = s->now - SIM_T0;
  memcpy(s->res->why, buf, sizeof(buf));
}

/* ---- settings ------------------------------------------------------------- */

static void draw_hub_settings(sim *s) {
  prng *r = &s->rng;
  tern_settings *h = &s->hs;
  tern_settings_default(h);
  h->seed = prng_next(r) | 1;
  h->trace = 1;
  h->max_conns = prng_pct(r, 30) ? (uint32_t)prng_range(r, 1, 3) : 10;
  switch (prng_below(r, 3)) {
  case 0:
    h->inflight_window = (uint32_t)prng_range(r, 1, 4);
    break;
  case 1:
    h->inflight_window = (uint32_t)prng_range(r, 5, 32);
    break;
  default:
    h->inflight_window = 256;
    break;
  }
  if (prng_pct(r, 50)) {
    h->max_pending = (uint32_t)prng_range(r, 4, 60);
  }
  if (prng_pct(r, 40)) {
    h->max_pending_bytes = (size_t)prng_range(r, 8192, 256 * 1024);
  }
  for (int p = 0; p < 3; ++p) {
    unsigned k = (unsigned)prng_below(r, 10);
    h->overflow[p] = k < 6 ? TERN_OVERFLOW_EVICT
                           : k < 8 ? TERN_OVERFLOW_REFUSE : TERN_OVERFLOW_REJECT;
  }
  if (prng_pct(r, 15)) {
    h->default_ttl = SIM_SEC(prng_range(r, 5, 120));
  }
  uint64_t hb = prng_range(r, 1000, 4000);
  h->heartbeat_interval = SIM_MS(hb);
  h->liveness_timeout = SIM_MS(hb + prng_range(r, 1000, 3000));
  h->max_heartbeat = h->heartbeat_interval + SIM_MS(prng_range(r, 0, 12000));
  h->session_ttl = prng_pct(r, 30) ? SIM_SEC(prng_range(r, 10, 60))
                                   : SIM_SEC(3600);
  h->dedup_window = prng_pct(r, 15) ? 0 : SIM_SEC(prng_range(r, 2, 120));
  if (prng_pct(r, 25)) {
    h->ack_timeout = SIM_MS(prng_range(r, 300, 5000));
    /* max_deliver 0 (unlimited) livelocks on links whose ACK round trip
       exceeds ack_timeout (regress.c, known issue); --ack-livelock draws
       it anyway. */
    h->max_deliver = (uint32_t)prng_range(r, s->opt.ack_livelock ? 0 : 1, 6);
  }
  h->hello_accept = prng_pct(r, 25) ? 1u : 0u;
  if (s->opt.policies && prng_pct(r, 40)) {
    /* Reconnect storms: past the rate, HELLOs are welcomed and sent
       away with a jittered hint. */
    h->accept_rate = (uint32_t)prng_range(r, 2, 20);
    h->accept_burst = (uint32_t)prng_range(r, 0, 5);
    h->accept_max_retry = SIM_MS(prng_range(r, 200, 3000));
  }
}

/* --policies: the wall clock the hub is given at SIM_T0, and each
   session's policy: quiet hours of a few seconds to a minute somewhere in
   the chaos (in the session's own UTC offset), a frequency cap, or both. */
#define SIM_DAY 86400u

static void draw_policies(sim *s) {
  prng *r = &s->rng;
  s->wall0 = (uint64_t)1764892800 + prng_below(r, 365 * 86400ull);
  uint64_t chaos_s = (s->chaos_end - SIM_T0) / TERN_SECONDS + 1;
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    c->has_policy = prng_pct(r, 70);
    tern_policy_default(&c->policy);
    if (!c->has_policy) {
      continue;
    }
    int32_t off = (int32_t)prng_range(r, 0, 26) * 3600 - 12 * 3600;
    uint64_t local0 = (s->wall0 + (uint64_t)(int64_t)off) % SIM_DAY;
    if (prng_pct(r, 70)) {
      uint32_t start = (uint32_t)((local0 + prng_below(r, chaos_s)) % SIM_DAY);
      uint32_t len = (uint32_t)prng_range(r, 3, 60);
      c->policy.quiet_start = start;
      c->policy.quiet_end = (start + len) % SIM_DAY;
      c->policy.utc_offset = off;
    }
    if (prng_pct(r, 60)) {
      c->policy.cap_count = (uint32_t)prng_range(r, 1, 6);
      c->policy.cap_window = SIM_MS(prng_range(r, 200, 10000));
    }
  }
}

/* Sets the client's policy on its current session instance, once. */
static void apply_policy(sim *s, client_slot *c) {
  if (!c->has_policy || (c->policy_set && c->policy_inst == c->inst &&
                         c->policy_restarts == s->nrestarts)) {
    return;
  }
  int rv = tern_hub_set_policy(s->hub, (const uint8_t *)c->key, c->keylen,
                               &c->policy, s->now);
  if (rv != 0) {
    sim_fail(s, 0, "tern_hub_set_policy: %s", tern_strerror(rv));
    return;
  }
  c->policy_set = 1;
  c->policy_inst = c->inst;
  c->policy_restarts = s->nrestarts;
  sim_log(s, "policy of %s: quiet %u-%u (UTC%+d h), cap %u per %.1f s",
          c->key, c->policy.quiet_start, c->policy.quiet_end,
          c->policy.utc_offset / 3600, c->policy.cap_count,
          (double)c->policy.cap_window / 1e9);
}

/* The quiet phase: the host lifts the policies, so that the hub drains. */
static void lift_policies(sim *s) {
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    if (c->has_policy) {
      tern_hub_set_policy(s->hub, (const uint8_t *)c->key, c->keylen, NULL,
                          s->now);
      c->has_policy = 0;
    }
  }
  tern_stats st;
  tern_hub_get_stats(s->hub, &st, sizeof(st));
  s->res->policy_holds = st.policy_holds;
}

static void draw_client_settings(sim *s, client_slot *c) {
  prng *r = &s->rng;
  tern_client_settings *cs = &c->cs;
  tern_client_settings_default(cs);
  if (prng_pct(r, 30)) {
    cs->heartbeat_interval = SIM_MS(prng_range(r, 1000, 10000));
  }
  cs->ack_every = (uint32_t)prng_range(r, 1, 20);
  cs->ack_delay = SIM_MS(prng_range(r, 10, 1000));
  if (prng_pct(r, 20)) {
    cs->dedup_max = (uint32_t)prng_range(r, 16, 200);
  }
  if (prng_pct(r, 20)) {
    cs->dedup_window = SIM_SEC(prng_range(r, 20, 120));
  }
  cs->backoff_base = SIM_MS(prng_range(r, 100, 1000));
  cs->backoff_cap = SIM_SEC(prng_range(r, 2, 15));
  cs->max_attempts = (uint32_t)prng_range(r, 3, 8);
  cs->adaptive_heartbeat = prng_pct(r, 20) ? 1u : 0u;
  cs->manual_ack = prng_pct(r, 20) ? 1u : 0u;
  cs->heartbeat_cap = SIM_SEC(prng_range(r, 5, 30));
}

/* ---- the hub's host ------------------------------------------------------- */

static void hub_drop_conn(sim *s, sim_link *l, int kind) {
  if (!l->conn) {
    return;
  }
  sim_log(s, "link %u: hub host deletes its connection (%s)", l->id,
          kind == SEG_RST ? "reset" : "close");
  tern_conn_del(l->conn);
  l->conn = NULL;
  l->hub_want = 0;
  link_shut(s, l, &l->down, kind);
}

static void hub_events(sim *s) {
  tern_event ev;
  int rv;
  if (!s->hub) {
    return; /* --hub-restart: the hub is down */
  }
  while ((rv = tern_hub_next_event(s->hub, &ev)) == 1) {
    model_hub_event(s, &ev);
    tern_conn *conn = ev.conn;
    sim_link *l = conn ? tern_conn_get_user_data(conn) : NULL;
    switch (ev.type) {
    case TERN_EV_CONN_HELLO:
      if (s->hs.hello_accept && l) {
        /* The host checks the token, which takes a moment; during the
           chaos it sometimes says no. */
        l->accept_at = s->now + SIM_MS(prng_range(&s->rng, 0, 300));
        l->reject = s->phase == PH_CHAOS && prng_pct(&s->rng, 5);
      }
      break;
    case TERN_EV_CONN_DEAD:
      if (l) {
        hub_drop_conn(s, l, SEG_RST);
      }
      break;
    case TERN_EV_CONN_CLOSED:
      if (l) {
        l->hub_want = 1; /* flush what is left, then delete */
      }
      break;
    default:
      break;
    }
  }
  if (rv < 0) {
    sim_fail(s, 0, "tern_hub_next_event: %s", tern_strerror(rv));
  }
}

void sim_hub_events(sim *s) { hub_events(s); }

/* settings.hello_accept: the host's verdict on a waiting HELLO. */
static void hub_decide(sim *s, sim_link *l) {
  l->accept_at = TERN_TSTAMP_NONE;
  if (!l->conn) {
    return;
  }
  int rv;
  if (l->reject) {
    sim_log(s, "link %u: the hub host rejects the HELLO", l->id);
    rv = tern_conn_goaway(l->conn, TERN_GOAWAY_REJECTED,
                          SIM_MS(prng_range(&s->rng, 0, 2000)), s->now);
  } else {
    rv = tern_conn_accept(l->conn, s->now);
    if (rv == TERN_ERR_LIMIT) {
      rv = 0; /* max_conns: the hub closed it with GOAWAY LIMIT */
    }
  }
  if (rv != 0 && !(tern_conn_is_closed(l->conn) &&
                   (rv == TERN_ERR_STATE || rv == TERN_ERR_CLOSED))) {
    sim_fail(s, 0, "link %u: %s: %s", l->id,
             l->reject ? "tern_conn_goaway" : "tern_conn_accept",
             tern_strerror(rv));
  }
  l->hub_want = 1;
  hub_events(s);
}

/* Writes what the connection has while the link takes it.  Returns 1 when
   something happened. */
static int hub_write_link(sim *s, sim_link *l) {
  int moved = 0;
  int probe = l->probe;
  while (l->conn && !s->failed) {
    size_t room = link_room(&l->down);
    if (room < MIN_WRITE) {
      return moved; /* the socket is full: hub_want stays */
    }
    size_t cap = link_chunk(s, l, room < IOBUF ? room : IOBUF);
    tern_ssize n = tern_conn_write(l->conn, iobuf, cap, s->now);
    hub_events(s); /* SENT before the tap sees the frame */
    if (n > 0 && l->probe && s->tp && topics_paced(s)) {
      /* A paced send waiting for its turn at a refill (tern.h,
         topic_rate): tolerated, counted. */
      ++s->res->late_wakeups;
    } else if (n > 0 && l->probe) {
      sim_fail(s, 0, "link %u: the connection had %td bytes to write but "
                     "tern_hub_next_ready never returned it",
               l->id, n);
    }
    l->probe = 0;
    if (n > 0) {
      probe = 0; /* what a later pass of this loop finds is not the probe's */
      link_send(s, l, &l->down, iobuf, (size_t)n);
      link_tap(s, l, iobuf, (size_t)n);
      moved = 1;
      continue;
    }
    if (n == TERN_ERR_CLOSED) {
      hub_drop_conn(s, l, SEG_FIN);
      return 1;
    }
    if (n < 0) {
      sim_fail(s, 0, "tern_conn_write: %s", tern_strerror((int)n));
      return moved;
    }
    if (n == 0 && probe && s->tp && topics_paced(s)) {
      /* another connection's write took the token it wanted (the want
         was read before both wrote) */
    } else if (n == 0 && probe) {
      sim_fail(s, 0, "link %u: tern_conn_want_write said yes, tern_conn_write "
                     "wrote nothing",
               l->id);
    }
    if (l->conn && tern_conn_want_write(l->conn)) {
      sim_fail(s, 0, "link %u: tern_conn_write wrote nothing with %zu bytes "
                     "of room although tern_conn_want_write said yes",
               l->id, cap);
    }
    break;
  }
  if (l->conn && !tern_conn_is_closed(l->conn)) {
    l->hub_want = 0;
  }
  return moved;
}

static int hub_writes(sim *s) {
  tern_conn *c;
  if (!s->hub) {
    return 0;
  }
  while ((c = tern_hub_next_ready(s->hub))) {
    sim_link *l = tern_conn_get_user_data(c);
    if (!l) {
      sim_fail(s, 0, "tern_hub_next_ready returned a connection without "
                     "its user data");
      return 0;
    }
    l->hub_want = 1;
    l->probe = 0; /* returned after all */
  }
  int moved = 0;
  for (sim_link *l = s->links; l; l = l->next) {
    if (l->conn && (l->hub_want || tern_conn_is_closed(l->conn))) {
      moved |= hub_write_link(s, l);
    }
  }
  return moved;
}

static void hub_read(sim *s, sim_link *l, const uint8_t *p, size_t len) {
  while (len && l->conn) {
    size_t n = link_chunk(s, l, len);
    tern_ssize r = tern_conn_read(l->conn, p, n, s->now);
    hub_events(s);
    if (r == TERN_ERR_CLOSED) {
      return; /* closed: the host ignores what follows */
    }
    if (r < 0) {
      if (r != TERN_ERR_LIMIT) {
        sim_fail(s, 0, "link %u: tern_conn_read refused the client's "
                       "bytes: %s",
                 l->id, tern_strerror((int)r));
      }
      if (l->conn) {
        l->hub_want = 1;
      }
      return;
    }
    if ((size_t)r != n) {
      sim_fail(s, 0, "tern_conn_read took %td of %zu bytes", r, n);
    }
    p += n;
    len -= n;
  }
  if (l->conn && tern_conn_is_closed(l->conn)) {
    l->hub_want = 1;
  }
}

/* ---- the apps' host ------------------------------------------------------- */

/* The app stops using its transport: an orderly close toward the hub. */
static void client_close_link(sim *s, client_slot *c) {
  sim_link *l = c->cur;
  if (!l) {
    return;
  }
  c->cur = NULL;
  l->client_side = 0;
  model_link_closed(s, l);
  link_shut(s, l, &l->up, SEG_FIN);
}

static void client_stop(sim *s, client_slot *c, int graceful);
static void client_events(sim *s, client_slot *c);

/* The host opens a transport without being asked (the network came back):
   allowed while the client backs off or after it gave up. */
static void host_connect(sim *s, client_slot *c, tern_duration delay) {
  c->connecting = 1;
  c->connect_at = s->now + delay;
}

/* The app acknowledges what it processed (manual_ack), or nudges the
   automatic ACK along. */
static void app_ack(sim *s, client_slot *c) {
  c->app_ack_at = TERN_TSTAMP_NONE;
  int rv = tern_client_ack(c->c, c->app_ack_seq, s->now);
  sim_log(s, "app %s#%u: ack %llu: %s", c->key, c->incarnation,
          (unsigned long long)c->app_ack_seq,
          rv ? tern_strerror(rv) : "ok");
  if (rv != 0) {
    sim_fail(s, 0, "app %s: tern_client_ack(%llu): %s", c->key,
             (unsigned long long)c->app_ack_seq, tern_strerror(rv));
  }
  client_events(s, c);
}

static void app_took(sim *s, client_slot *c, const tern_client_event *ev) {
  if (!c->cs.manual_ack && !prng_pct(&s->rng, 5)) {
    return;
  }
  c->app_ack_seq = ev->seq;
  if (c->app_ack_at == TERN_TSTAMP_NONE) {
    c->app_ack_at = s->now + SIM_MS(prng_range(&s->rng, 0, 400));
  }
}

static void client_events(sim *s, client_slot *c) {
  tern_client_event ev;
  while (c->c && !s->failed) {
    int rv = tern_client_next_event(c->c, &ev);
    if (rv == 0) {
      return;
    }
    if (rv < 0) {
      sim_fail(s, 0, "tern_client_next_event: %s", tern_strerror(rv));
      return;
    }
    model_client_event(s, c, c->cur, &ev);
    switch (ev.type) {
    case TERN_CLIENT_EV_MESSAGE:
      app_took(s, c, &ev);
      break;
    case TERN_CLIENT_EV_RESYNC:
      c->app_ack_at = TERN_TSTAMP_NONE; /* acks of the old stream: moot */
      break;
    case TERN_CLIENT_EV_CONNECT:
      sim_log(s, "app %s#%u: CONNECT", c->key, c->incarnation);
      if (c->cur) {
        sim_fail(s, 0, "app %s: CONNECT while it has a transport", c->key);
        break;
      }
      if (c->connecting) {
        break; /* the host is opening one already */
      }
      c->connecting = 1;
      c->connect_at = s->now + SIM_MS(prng_range(&s->rng, 1, 500));
      break;
    case TERN_CLIENT_EV_CONNECTED:
      sim_log(s, "app %s#%u: CONNECTED%s", c->key, c->incarnation,
              ev.count ? " (resumed)" : "");
      if (!c->cur) {
        sim_fail(s, 0, "app %s: CONNECTED without a transport", c->key);
        break;
      }
      c->cur->connected = 1;
      c->welcomed_inst = c->inst;
      break;
    case TERN_CLIENT_EV_DISCONNECTED:
      sim_log(s, "app %s#%u: DISCONNECTED reason %d retry %.3f", c->key,
              c->incarnation, ev.reason, (double)ev.retry_after / 1e9);
      if (c->cur) {
        client_close_link(s, c);
        int r = tern_client_conn_lost(c->c, s->now);
        if (r != 0) {
          sim_fail(s, 0, "tern_client_conn_lost: %s", tern_strerror(r));
        }
      }
      break;
    case TERN_CLIENT_EV_GIVE_UP:
      if (prng_pct(&s->rng, 50)) {
        /* The app waits for the network to come back, then connects. */
        sim_log(s, "app %s#%u: GIVE_UP; the host connects again later",
                c->key, c->incarnation);
        c->gave_up = 1;
        host_connect(s, c, SIM_MS(prng_range(&s->rng, 100, 5000)));
        break;
      }
      sim_log(s, "app %s#%u: GIVE_UP; the app starts over later", c->key,
              c->incarnation);
      client_stop(s, c, 0);
      c->restart_at = s->now + SIM_MS(prng_range(&s->rng, 100, 5000));
      return;
    default:
      break;
    }
  }
}

/* The transport broke under the app. */
static void client_lost(sim *s, client_slot *c) {
  client_close_link(s, c);
  int r = tern_client_conn_lost(c->c, s->now);
  if (r != 0) {
    sim_fail(s, 0, "tern_client_conn_lost: %s", tern_strerror(r));
  }
  client_events(s, c);
}

static int client_writes(sim *s, client_slot *c) {
  int moved = 0;
  while (c->c && c->cur && !s->failed && tern_client_want_write(c->c)) {
    sim_link *l = c->cur;
    size_t room = link_room(&l->up);
    if (room < MIN_WRITE) {
      break;
    }
    size_t cap = link_chunk(s, l, room < IOBUF ? room : IOBUF);
    tern_ssize n = tern_client_write(c->c, iobuf, cap, s->now);
    if (n > 0) {
      link_send(s, l, &l->up, iobuf, (size_t)n);
      moved = 1;
      continue;
    }
    if (n == TERN_ERR_CLOSED) {
      /* The goodbye is written: close the transport. */
      client_close_link(s, c);
      int rv = tern_client_conn_lost(c->c, s->now);
      if (rv != 0) {
        sim_fail(s, 0, "tern_client_conn_lost after close: %s",
                 tern_strerror(rv));
      }
      return 1;
    }
    if (n == 0) {
      sim_fail(s, 0, "app %s: tern_client_write wrote nothing although "
                     "tern_client_want_write said yes",
               c->key);
    } else {
      sim_fail(s, 0, "app %s: tern_client_write: %s", c->key,
               tern_strerror((int)n));
    }
    break;
  }
  return moved;
}

static void client_read(sim *s, client_slot *c, sim_link *l, const uint8_t *p,
                        size_t len) {
  while (len && c->c && c->cur == l && !s->failed) {
    size_t n = link_chunk(s, l, len);
    tern_ssize r = tern_client_read(c->c, p, n, s->now);
    l->down.delivered += n;
    if (r < 0) {
      sim_fail(s, 0, "app %s: tern_client_read refused the hub's bytes: %s",
               c->key, tern_strerror((int)r));
      return;
    }
    if ((size_t)r != n) {
      sim_fail(s, 0, "tern_client_read took %td of %zu bytes", r, n);
    }
    client_events(s, c);
    model_after_read(s, l);
    p += n;
    len -= n;
  }
}

static void client_start(sim *s, client_slot *c) {
  ++c->incarnation;
  memset(&c->mem, 0, sizeof(c->mem));
  c->tmem = sim_alloc_mem(&c->mem);
  c->cs.seed = prng_next(&s->rng);
  c->restart_at = TERN_TSTAMP_NONE;
  c->welcomed_inst = UINT32_MAX;
  c->session_lost = 0;
  c->app_ack_at = TERN_TSTAMP_NONE;
  c->gave_up = 0;
  static const uint8_t token[] = "sim-token";
  size_t tokenlen = prng_pct(&s->rng, 50) ? sizeof(token) - 1 : 0;
  int rv = tern_client_new(&c->c, (const uint8_t *)c->key, c->keylen,
                           tokenlen ? token : NULL, tokenlen, &c->cs,
                           &c->tmem, s->now);
  if (rv != 0) {
    sim_fail(s, 0, "tern_client_new: %s", tern_strerror(rv));
    c->c = NULL;
    return;
  }
  sim_log(s, "app %s#%u starts", c->key, c->incarnation);
  client_events(s, c);
}

static void client_stop(sim *s, client_slot *c, int graceful) {
  if (!c->c) {
    return;
  }
  sim_log(s, "app %s#%u exits%s", c->key, c->incarnation,
          graceful ? " saying goodbye" : "");
  if (graceful && c->cur && c->cur->connected) {
    int rv = tern_client_close(c->c, s->now);
    if (rv != 0) {
      sim_fail(s, 0, "tern_client_close: %s", tern_strerror(rv));
    }
    client_events(s, c);
    if (!c->c) {
      return;
    }
    client_writes(s, c);
  }
  client_close_link(s, c);
  c->connecting = 0;
  c->app_ack_at = TERN_TSTAMP_NONE; /* what it did not ack comes again */
  model_incarnation_end(s, c);
  tern_client_del(c->c);
  c->c = NULL;
  if (c->mem.blocks || c->mem.bad_frees) {
    sim_fail(s, 7, "tern_client_del left %ld blocks (%zu bytes), %ld bad "
                   "frees",
             c->mem.blocks, c->mem.bytes, c->mem.bad_frees);
  }
}

static void client_connect_done(sim *s, client_slot *c) {
  c->connecting = 0;
  if (s->now < c->outage_until || !s->hub) {
    sim_log(s, "app %s#%u: connect fails (%s)", c->key, c->incarnation,
            s->hub ? "no network" : "the hub is down");
    int rv = tern_client_conn_lost(c->c, s->now);
    if (rv != 0) {
      sim_fail(s, 0, "tern_client_conn_lost after a failed connect: %s",
               tern_strerror(rv));
    }
    client_events(s, c);
    if (c->gave_up && c->c && !c->connecting) {
      /* The client gave up; the app keeps trying until the network is
         back. */
      host_connect(s, c, SIM_MS(prng_range(&s->rng, 500, 5000)));
    }
    return;
  }
  c->gave_up = 0;
  sim_link *l = link_new(s, c->idx);
  l->incarnation = c->incarnation;
  c->cur = l;
  int rv = tern_conn_new(&l->conn, s->hub, s->now);
  if (rv != 0) {
    sim_fail(s, 0, "tern_conn_new: %s", tern_strerror(rv));
    l->conn = NULL;
    return;
  }
  tern_conn_set_user_data(l->conn, l);
  hub_events(s);
  sim_log(s, "link %u up for %s#%u: latency %.1f/%.1f ms, %llu/%llu B/s, "
             "window %zu/%zu, chunks %zu..%zu",
          l->id, c->key, c->incarnation, (double)l->up.latency / 1e6,
          (double)l->down.latency / 1e6,
          (unsigned long long)l->up.bytes_per_sec,
          (unsigned long long)l->down.bytes_per_sec, l->up.window,
          l->down.window, l->min_chunk, l->max_chunk);
  rv = tern_client_connect(c->c, s->now);
  if (rv != 0) {
    sim_fail(s, 0, "tern_client_connect: %s", tern_strerror(rv));
  }
  client_events(s, c);
}

/* ---- the network ---------------------------------------------------------- */

static void deliver_arrivals(sim *s) {
  for (sim_link *l = s->links; l && !s->failed; l = l->next) {
    seg *g;
    while ((g = link_take(&l->up, s->now))) {
      if (l->conn) {
        if (g->kind == SEG_DATA) {
          hub_read(s, l, g->data, g->len);
        } else {
          sim_log(s, "link %u: the hub host reads %s", l->id,
                  g->kind == SEG_FIN ? "EOF" : "a reset");
          hub_drop_conn(s, l, SEG_FIN);
          hub_events(s);
        }
      }
      free(g);
    }
    while ((g = link_take(&l->down, s->now))) {
      client_slot *c = &s->cl[l->client];
      if (l->client_side && c->cur == l && c->c) {
        if (g->kind == SEG_DATA) {
          client_read(s, c, l, g->data, g->len);
        } else {
          sim_log(s, "link %u: app %s reads %s", l->id, c->key,
                  g->kind == SEG_FIN ? "EOF" : "a reset");
          client_lost(s, c);
        }
      }
      free(g);
    }
  }
}

static void reap_links(sim *s) {
  sim_link **pp = &s->links;
  while (*pp) {
    sim_link *l = *pp;
    if (!l->conn && !l->client_side && link_idle(l)) {
      *pp = l->next;
      link_free(l);
    } else {
      pp = &l->next;
    }
  }
}

/* ---- producers ------------------------------------------------------------ */

/* An explicit id for a publish to client |ci|: usually new; sometimes an
   old one (a producer's retry, or an id reused later).  An old id is only
   reused when the model can name every message by id: the id is not held
   by the hub, or the hub must refuse it as a duplicate. */
static int32_t pick_id(sim *s, int ci) {
  if (s->nids && prng_pct(&s->rng, s->pct_reuse_id)) {
    for (int tries = 0; tries < 4; ++tries) {
      size_t n = (size_t)prng_below(&s->rng, s->nids);
      if (s->idowner[n] != ci) {
        continue;
      }
      /* With hub restarts an older message with the id may be held
         again (revived), so look at every one. */
      int live = 0, dup = 0;
      for (int32_t i = s->idrec[n]; i >= 0; i = s->msgs[i].prev_same_id) {
        const mmsg *p = &s->msgs[i];
        live |= p->state == M_LIVE;
        dup |= s->hs.dedup_window && model_dedup_active(s, p);
      }
      if (!live || dup) {
        return (int32_t)n;
      }
    }
  }
  if (s->nids == s->idcap) {
    s->idcap = s->idcap ? s->idcap * 2 : 256;
    s->idrec = realloc(s->idrec, s->idcap * sizeof(*s->idrec));
    s->idowner = realloc(s->idowner, s->idcap);
    if (!s->idrec || !s->idowner) {
      abort();
    }
  }
  s->idrec[s->nids] = -1;
  s->idowner[s->nids] = (uint8_t)ci;
  return (int32_t)s->nids++;
}

static void publish_one(sim *s) {
  static const char *const ctypes[] = {NULL, "text/plain",
                                       "application/json"};
  static const char *const akeys[] = {"a", "b", "c"};
  prng *r = &s->rng;
  int ci = (int)prng_below(r, (uint64_t)s->nclients);
  client_slot *c = &s->cl[ci];
  mmsg m;
  memset(&m, 0, sizeof(m));
  m.client = ci;
  m.inst = c->inst;
  m.prio = (int)prng_below(r, 3);
  m.ck = prng_pct(r, s->pct_ck) ? (int)prng_below(r, SIM_NCK) : -1;
  m.idnum = prng_pct(r, s->pct_explicit_id) ? pick_id(s, ci) : -1;
  if (m.idnum >= 0) {
    m.idlen = (uint8_t)snprintf((char *)m.id, sizeof(m.id), "m%d",
                                (int)m.idnum);
  }
  tern_duration ttl = 0;
  if (prng_pct(r, s->pct_ttl)) {
    ttl = prng_pct(r, 40) ? SIM_MS(prng_range(r, 200, s->ttl_short))
                          : SIM_MS(prng_range(r, s->ttl_short, s->ttl_long));
  }
  tern_duration fallback = 0;
  if (s->opt.policies) {
    apply_policy(s, c);
    if (prng_pct(r, 30)) {
      fallback = SIM_MS(prng_range(r, 50, 5000));
      m.fallback_at = s->now + fallback;
    }
  }
  tern_duration life = ttl ? ttl : s->hs.default_ttl;
  m.published = s->now;
  m.expiry = life ? s->now + life : TERN_TSTAMP_NONE;
  m.paylen = (uint32_t)(prng_pct(r, s->pct_big)
                            ? prng_range(r, 1000, s->max_payload_big)
                            : prng_range(r, 8, s->max_payload_small));
  m.ctype = prng_pct(r, 30) ? (uint8_t)prng_range(r, 1, 2) : 0;
  m.nattrs = prng_pct(r, 20) ? (uint8_t)prng_range(r, 1, 3) : 0;
  if (s->dur) {
    /* Durability: SYNC, VOLATILE (sometimes with SYNC, which it
       overrides) or the default ASYNC. */
    if (prng_pct(r, s->pct_volatile)) {
      m.pflags = (uint8_t)(TERN_MSG_VOLATILE |
                           (prng_pct(r, 30) ? TERN_MSG_SYNC : 0));
    } else if (prng_pct(r, s->pct_sync)) {
      m.pflags = TERN_MSG_SYNC;
    }
  }
  int32_t idx = model_add(s, &m);

  uint8_t payload[8192];
  model_payload(s, idx, payload, m.paylen);
  char ck[8];
  char avals[3][16];
  tern_attr attrs[3];
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  if (m.idnum >= 0) {
    d.id = s->msgs[idx].id;
    d.idlen = m.idlen;
  }
  if (m.ck >= 0) {
    d.collapse_keylen = (size_t)snprintf(ck, sizeof(ck), "ck%d", m.ck);
    d.collapse_key = (const uint8_t *)ck;
  }
  d.priority = m.prio;
  d.ttl = ttl;
  d.payload = payload;
  d.payloadlen = m.paylen;
  d.content_type = ctypes[m.ctype];
  for (size_t i = 0; i < m.nattrs; ++i) {
    snprintf(avals[i], sizeof(avals[i]), "%d.%zu", (int)idx, i);
    attrs[i].key = akeys[i];
    attrs[i].value = avals[i];
  }
  d.attrs = m.nattrs ? attrs : NULL;
  d.nattrs = m.nattrs;
  d.flags = m.pflags;
  d.fallback = fallback;

  tern_publish_result pr;
  memset(&pr, 0, sizeof(pr));
  s->publishing = idx;
  s->publish_evicted = 0;
  int rv = tern_hub_publish(s->hub, (const uint8_t *)c->key, c->keylen, &d,
                            s->now, &pr);
  sim_log(s, "publish #%d to %s id %.*s prio %d ck %d ttl %.3f len %u%s%s: "
             "%s outcome 0x%x",
          (int)idx, c->key, (int)pr.idlen, (const char *)pr.id, m.prio, m.ck,
          (double)ttl / 1e9, m.paylen,
          m.pflags & TERN_MSG_SYNC ? " SYNC" : "",
          m.pflags & TERN_MSG_VOLATILE ? " VOLATILE" : "",
          rv ? tern_strerror(rv) : "ok", pr.outcome);
  model_publish_result(s, idx, rv, &pr);
  hub_events(s);
  model_publish_end(s, idx, rv, &pr);
  s->publishing = -1;
}

/* ---- faults ----------------------------------------------------------------- */

static void reset_link(sim *s, client_slot *c) {
  sim_link *l = c->cur;
  sim_log(s, "link %u: connection reset (both ends told)", l->id);
  if (l->conn) {
    tern_conn_del(l->conn);
    l->conn = NULL;
    l->hub_want = 0;
    hub_events(s);
  }
  link_kill(s, l);
  client_lost(s, c);
}

static void restart(sim *s, client_slot *c, int graceful) {
  client_stop(s, c, graceful);
  ++s->res->restarts;
  c->restart_at = s->now + SIM_MS(prng_range(&s->rng, 50, 10000));
}

static void fault(sim *s, client_slot *c) {
  sim_link *l = c->cur;
  unsigned k = (unsigned)prng_below(&s->rng, 100);
  if (!c->c) {
    return;
  }
  ++s->res->faults;
  if (k < 30) {
    if (l && !l->dead) {
      sim_log(s, "link %u: the path dies silently", l->id);
      link_kill(s, l);
    }
  } else if (k < 48) {
    if (l) {
      reset_link(s, c);
    }
  } else if (k < 60) {
    restart(s, c, 0);
  } else if (k < 66) {
    restart(s, c, 1);
  } else if (k < 76) {
    c->outage_until = s->now + SIM_SEC(prng_range(&s->rng, 1, 15));
    sim_log(s, "app %s: the network is down for %.0f s", c->key,
            (double)(c->outage_until - s->now) / 1e9);
    if (l && !l->dead) {
      link_kill(s, l);
    }
  } else if (k < 90) {
    if (l && l->conn && !tern_conn_is_closed(l->conn)) {
      sim_log(s, "link %u: the hub host sends GOAWAY", l->id);
      int rv = tern_conn_goaway(l->conn, TERN_GOAWAY_REPLACED,
                                SIM_MS(prng_range(&s->rng, 0, 3000)), s->now);
      if (rv != 0) {
        sim_fail(s, 0, "tern_conn_goaway: %s", tern_strerror(rv));
      }
      l->hub_want = 1;
      hub_events(s);
    }
  } else if (k < 96) {
    if (!l && !c->connecting) {
      sim_log(s, "app %s#%u: the network changed; the host connects now",
              c->key, c->incarnation);
      host_connect(s, c, SIM_MS(prng_range(&s->rng, 1, 200)));
    }
  } else if (k < 98 && s->hub) {
    sim_log(s, "hub host: GOAWAY to every connection");
    int rv = tern_hub_goaway_all(s->hub, TERN_GOAWAY_RESTART,
                                 SIM_SEC(prng_range(&s->rng, 1, 10)), s->now);
    if (rv < 0) {
      sim_fail(s, 0, "tern_hub_goaway_all: %s", tern_strerror(rv));
    }
    hub_events(s);
  }
}

static tern_duration fault_gap(sim *s) {
  return SIM_MS(prng_range(&s->rng, 200, 2000 * (uint64_t)s->fault_mean_s));
}

static tern_duration publish_gap(sim *s) {
  if (prng_pct(&s->rng, 5)) {
    return 0; /* a burst */
  }
  return prng_range(&s->rng, 0, 2 * s->publish_gap);
}

/*
 * --hub-restart: the hub process dies at random moments of the chaos and a
 * new one takes over the same store.
 *
 * The hub runs over a memstore (durable.c wraps it to follow every batch);
 * producers publish a share of SYNC and of VOLATILE messages, and the OS
 * writes the store's cache back now and then (durable_os_sync).  A crash:
 * the store loses what was not synced (memstore_crash), the old hub is
 * deleted (its last flush is ignored), and every connection it had is gone:
 * the clients see the path fall silent, a FIN (the kernel closed the
 * dead process's sockets) or a reset.  One stop in five is a clean
 * shutdown instead: the last batch is flushed and synced, the sockets
 * closed.  After a downtime in which connects are refused and producers
 * cannot publish, a new hub with the same settings and a fresh seed is
 * created over the store at the current virtual time, and the clients come
 * back through their own backoff.  durable.c checks what it restored.
 */
/* A random span around |mean|, at least |min_ms|. */
static tern_duration around(sim *s, tern_duration mean, uint64_t min_ms) {
  return SIM_MS(prng_range(&s->rng, min_ms, 2 * mean / TERN_MILLISECONDS));
}

static void hub_start(sim *s) {
  s->hub_up_at = TERN_TSTAMP_NONE;
  memset(&s->hubmem, 0, sizeof(s->hubmem));
  s->hubtmem = sim_alloc_mem(&s->hubmem);
  s->hs.seed = prng_next(&s->rng) | 1;
  int rv = tern_hub_new(&s->hub, &s->hs, &s->hubtmem);
  if (rv != 0) {
    sim_fail(s, 0, "tern_hub_new: %s", tern_strerror(rv));
    s->hub = NULL;
    return;
  }
  model_baseline(s); /* invariant 7 applies per hub instance */
  sim_log(s, "hub: a new hub starts over the store");
  durable_attach(s);
  hub_events(s);
  s->next_crash = s->now + around(s, s->crash_gap, 1000);
  s->crash_late = prng_pct(&s->rng, 50);
}

static void hub_crash(sim *s) {
  int clean = prng_pct(&s->rng, 20);
  /* How the clients learn of it: 0 silence (the machine died), 1 FIN (the
     kernel closed the dead process's sockets), 2 reset, 3 a mix. */
  unsigned how = clean ? 1 : (unsigned)prng_below(&s->rng, 4);
  tern_duration down = 0;
  if (s->max_downtime && prng_pct(&s->rng, 80)) {
    down = around(s, s->max_downtime / 2, 0);
  }
  sim_log(s, "hub: %s; back in %.3f s",
          clean ? "the hub shuts down cleanly" : "the hub process crashes",
          (double)down / 1e9);
  if (clean) {
    ++s->res->hub_shutdowns;
  } else {
    ++s->res->hub_crashes;
  }
  durable_stop(s, clean);
  for (sim_link *l = s->links; l; l = l->next) {
    if (!l->conn) {
      continue;
    }
    l->conn = NULL; /* tern_hub_del frees it */
    l->hub_want = 0;
    l->accept_at = TERN_TSTAMP_NONE;
    l->could_send = 0;
    unsigned k = how == 3 ? (unsigned)prng_below(&s->rng, 3) : how;
    if (k == 0) {
      link_kill(s, l);
    } else {
      link_shut(s, l, &l->down, k == 1 ? SEG_FIN : SEG_RST);
    }
  }
  tern_hub_del(s->hub);
  s->hub = NULL;
  if (s->hubmem.blocks || s->hubmem.bad_frees) {
    sim_fail(s, 7, "tern_hub_del of the %s hub left %ld blocks (%zu bytes), "
                   "%ld bad frees",
             clean ? "stopped" : "crashed", s->hubmem.blocks,
             s->hubmem.bytes, s->hubmem.bad_frees);
  }
  durable_stopped(s, clean);
  s->next_crash = TERN_TSTAMP_NONE;
  s->hub_up_at = s->now + down;
  if (!down && !s->failed) {
    hub_start(s);
  }
}

/* The scenario's own moments: the new hub starts, the OS syncs, the hub
   crashes (at the start of a step, or with |late| after its publishes,
   before their batch is flushed). */
static void restart_step(sim *s, int late) {
  if (!late) {
    if (!s->hub && s->hub_up_at <= s->now) {
      hub_start(s);
    }
    if (s->next_os_sync <= s->now) {
      durable_os_sync(s);
      s->next_os_sync = s->now + around(s, s->os_sync_gap, 1);
    }
  }
  if (s->phase == PH_CHAOS && s->hub && s->next_crash <= s->now &&
      s->crash_late == late && !s->failed) {
    hub_crash(s);
  }
}

static void scenario_hub_restart(sim *s) {
  prng *r = &s->rng;
  durable_init(s);
  s->pct_sync = (unsigned)prng_range(r, 0, 70);
  s->pct_volatile = prng_pct(r, 70) ? (unsigned)prng_range(r, 1, 25) : 0;
  s->crash_gap = SIM_SEC(prng_range(r, 5, 60));
  s->max_downtime = prng_pct(r, 25) ? 0 : SIM_MS(prng_range(r, 100, 5000));
  s->os_sync_gap = prng_pct(r, 25) ? 0 : SIM_MS(prng_range(r, 100, 10000));
  s->next_crash = s->now + around(s, s->crash_gap, 1000);
  s->crash_late = prng_pct(r, 50);
  if (s->os_sync_gap) {
    s->next_os_sync = s->now + around(s, s->os_sync_gap, 1);
  }
  sim_log(s, "hub restarts: every %.0f s or so, down up to %.1f s, OS sync "
             "every %.1f s, %u%% SYNC, %u%% VOLATILE",
          (double)s->crash_gap / 1e9, (double)s->max_downtime / 1e9,
          (double)s->os_sync_gap / 1e9, s->pct_sync, s->pct_volatile);
  durable_attach(s);
  hub_events(s);
}

/* ---- the loop ----------------------------------------------------------------- */

static void pump(sim *s) {
  for (int round = 0; round < 100000 && !s->failed; ++round) {
    int moved = 0;
    hub_events(s);
    for (int i = 0; i < s->nclients; ++i) {
      client_events(s, &s->cl[i]);
      moved |= client_writes(s, &s->cl[i]);
    }
    moved |= hub_writes(s);
    if (!moved) {
      return;
    }
  }
  if (!s->failed) {
    sim_fail(s, 0, "the host loops never settle");
  }
}

static tern_tstamp next_time(sim *s) {
  tern_tstamp t = tern_hub_get_expiry(s->hub);
  t = tmin(t, links_next_arrival(s));
  for (const sim_link *l = s->links; l; l = l->next) {
    t = tmin(t, l->accept_at);
  }
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    if (c->c) {
      t = tmin(t, tern_client_get_expiry(c->c));
      t = tmin(t, c->app_ack_at);
      if (c->connecting) {
        t = tmin(t, c->connect_at);
      }
    } else {
      t = tmin(t, c->restart_at);
    }
    if (s->phase == PH_CHAOS) {
      t = tmin(t, c->next_fault);
    }
  }
  if (s->phase == PH_CHAOS) {
    t = tmin(t, tmin(s->next_publish, s->chaos_end));
    t = tmin(t, s->next_crash);
    if (s->tp) {
      t = tmin(t, topics_next(s));
    }
  }
  t = tmin(t, s->hub_up_at);
  if (s->phase != PH_TEARDOWN) {
    t = tmin(t, s->next_os_sync);
  }
  return t;
}

static void step(sim *s, tern_tstamp limit) {
  tern_tstamp t = next_time(s);
  if (t > limit) {
    t = limit;
  }
  if (t <= s->now) {
    t = s->now;
    if (++s->same_time > 10000) {
      sim_fail(s, 0, "virtual time stopped: a deadline at %.6f is never "
                     "served",
               now_s(s));
      return;
    }
  } else {
    s->same_time = 0;
  }
  s->now = t;
  ++s->res->steps;
  if (s->dur) {
    restart_step(s, 0);
  }
  if (s->hub && tern_hub_get_expiry(s->hub) <= s->now) {
    model_before_expiry(s);
    tern_hub_handle_expiry(s->hub, s->now);
    s->in_expiry = 1;
    hub_events(s);
    s->in_expiry = 0;
  }
  deliver_arrivals(s);
  for (sim_link *l = s->links; l && !s->failed; l = l->next) {
    if (l->accept_at <= s->now) {
      hub_decide(s, l);
    }
  }
  for (int i = 0; i < s->nclients && !s->failed; ++i) {
    client_slot *c = &s->cl[i];
    if (c->c && c->app_ack_at <= s->now) {
      app_ack(s, c);
    }
    if (c->c && tern_client_get_expiry(c->c) <= s->now) {
      int rv = tern_client_handle_expiry(c->c, s->now);
      if (rv != 0) {
        sim_fail(s, 0, "tern_client_handle_expiry: %s", tern_strerror(rv));
      }
      client_events(s, c);
    }
    if (c->c && c->connecting && c->connect_at <= s->now) {
      client_connect_done(s, c);
    }
    if (!c->c && c->restart_at <= s->now) {
      client_start(s, c);
    }
    if (s->phase == PH_CHAOS && c->next_fault <= s->now) {
      fault(s, c);
      c->next_fault = s->now + fault_gap(s);
    }
  }
  if (s->phase == PH_CHAOS) {
    while (s->next_publish <= s->now && !s->failed) {
      if (s->hub && !(s->tp && topics_publish(s))) {
        publish_one(s); /* while the hub is down, producers cannot */
      }
      s->next_publish += publish_gap(s);
    }
    if (s->tp) {
      topics_step(s);
    }
    if (s->dur) {
      restart_step(s, 1);
    }
  }
  pump(s);
  if (!s->failed) {
    if (s->tp) {
      topics_check_step(s);
    }
    model_check_step(s);
  }
  reap_links(s);
}

static void draw_scenario(sim *s) {
  prng *r = &s->rng;
  s->nclients = prng_pct(r, 60) ? (int)prng_range(r, 1, 3)
                                : (int)prng_range(r, 4, SIM_MAX_CLIENTS);
  s->chaos_end = SIM_T0 + SIM_SEC(prng_pct(r, 85) ? prng_range(r, 20, 180)
                                                  : prng_range(r, 180, 900));
  s->publish_gap = SIM_MS(prng_range(r, 20, 300));
  s->next_publish = SIM_T0 + SIM_MS(prng_range(r, 0, 1000));
  s->fault_mean_s = (unsigned)prng_range(r, 2, 15);
  s->pct_explicit_id = (unsigned)prng_range(r, 0, 90);
  s->pct_reuse_id = (unsigned)prng_range(r, 0, 40);
  s->pct_ck = (unsigned)prng_range(r, 0, 50);
  s->pct_ttl = (unsigned)prng_range(r, 10, 80);
  s->pct_big = (unsigned)prng_range(r, 0, 15);
  s->ttl_short = prng_range(r, 1000, 5000);
  s->ttl_long = prng_range(r, 10000, 120000);
  s->max_payload_small = 300;
  s->max_payload_big = 6000;
}

/* The longest a healthy client may need, from the start of the quiet
   phase, to be connected again with the hub's stale connections gone. */
static tern_duration settle_time(const sim *s) {
  tern_duration hub_live = s->hs.max_heartbeat + s->hs.liveness_timeout -
                           s->hs.heartbeat_interval;
  tern_duration client_live = hub_live, backoff = 0;
  for (int i = 0; i < s->nclients; ++i) {
    const tern_client_settings *cs = &s->cl[i].cs;
    if (cs->liveness_timeout > client_live) {
      client_live = cs->liveness_timeout;
    }
    if (cs->backoff_cap > backoff) {
      backoff = cs->backoff_cap;
    }
  }
  return hub_live + client_live + 2 * backoff + SIM_SEC(20);
}

int sim_run(const sim_opts *o, sim_result *r) {
  sim *s = calloc(1, sizeof(*s));
  if (!s) {
    abort();
  }
  memset(r, 0, sizeof(*r));
  s->opt = *o;
  s->res = r;
  s->rng.s = o->seed;
  s->now = SIM_T0;
  s->phase = PH_CHAOS;
  s->publishing = -1;
  s->next_crash = s->hub_up_at = s->next_os_sync = TERN_TSTAMP_NONE;
  draw_scenario(s);
  draw_hub_settings(s);
  if (s->opt.topics) {
    topics_init(s); /* the topic scenario, and the hub's pacing */
  }
  s->hubtmem = sim_alloc_mem(&s->hubmem);
  int rv = tern_hub_new(&s->hub, &s->hs, &s->hubtmem);
  if (rv != 0) {
    sim_fail(s, 0, "tern_hub_new: %s", tern_strerror(rv));
    r->failed = 1;
    free(s);
    return 1;
  }
  model_baseline(s);
  for (int i = 0; i < s->nclients; ++i) {
    client_slot *c = &s->cl[i];
    c->idx = i;
    c->keylen = (size_t)snprintf(c->key, sizeof(c->key), "dev-%d", i);
    draw_client_settings(s, c);
    c->restart_at = SIM_T0 + SIM_MS(prng_range(&s->rng, 0, 2000));
    c->next_fault = SIM_T0 + fault_gap(s);
  }
  model_init(s);
  if (s->opt.policies) {
    draw_policies(s);
    rv = tern_hub_set_wallclock(s->hub, SIM_T0, s->wall0 * TERN_SECONDS);
    if (rv != 0) {
      sim_fail(s, 0, "tern_hub_set_wallclock: %s", tern_strerror(rv));
    }
  }
  if (s->tp) {
    topics_start(s);
    hub_events(s);
  }
  s->settle = settle_time(s);
  if (s->opt.verbose) {
    sim_log(s, "seed %llu: %d clients, chaos %.0f s, window %u, max_pending "
               "%u/%zu B, overflow %d%d%d, heartbeat %.1f s, liveness %.1f "
               "s, max_heartbeat %.1f s, session_ttl %.0f s, dedup %.0f s, "
               "ack_timeout %.1f s x%u, hello_accept %u, max_conns %u",
            (unsigned long long)o->seed, s->nclients,
            (double)(s->chaos_end - SIM_T0) / 1e9, s->hs.inflight_window,
            s->hs.max_pending, s->hs.max_pending_bytes, s->hs.overflow[0],
            s->hs.overflow[1], s->hs.overflow[2],
            (double)s->hs.heartbeat_interval / 1e9,
            (double)s->hs.liveness_timeout / 1e9,
            (double)s->hs.max_heartbeat / 1e9,
            (double)s->hs.session_ttl / 1e9,
            (double)s->hs.dedup_window / 1e9, (double)s->hs.ack_timeout / 1e9,
            s->hs.max_deliver, s->hs.hello_accept, s->hs.max_conns);
  }
  if (s->opt.hub_restart) {
    scenario_hub_restart(s);
  }

  while (!s->failed && s->now < s->chaos_end) {
    step(s, s->chaos_end);
  }

  /* Quiet: run until drained; fail when nothing moves for a settle time
     (a stuck stream), or when the backlog takes far longer than a window
     of one message per slowest round trip would (3 s each). */
  s->phase = PH_QUIET;
  /* A hub that went down late in the chaos comes back first: the quiet
     checks and the teardown need one (seed 240151 of --hub-restart shut
     its hub down 3 ms before the chaos ended). */
  while (!s->failed && !s->hub) {
    step(s, s->hub_up_at);
  }
  s->quiet_start = s->now;
  s->quiet_end = s->now + s->settle + SIM_SEC(600) +
                 s->total_live * SIM_SEC(3);
  for (int i = 0; i < s->nclients; ++i) {
    s->cl[i].outage_until = 0;
  }
  sim_log(s, "quiet: no more faults or publishes");
  if (s->opt.policies) {
    lift_policies(s);
    pump(s); /* the host writes what they held */
  }
  while (!s->failed && !model_drained(s) && s->now < s->quiet_end) {
    tern_tstamp since = s->last_progress > s->quiet_start ? s->last_progress
                                                          : s->quiet_start;
    if (s->now - since > s->settle) {
      break;
    }
    step(s, s->quiet_end);
  }
  if (!s->failed) {
    model_check_end(s);
  }

  s->phase = PH_TEARDOWN;
  sim_log(s, "teardown: every app exits");
  if (s->tp) {
    topics_teardown(s); /* the topics go: their logs would stay */
    hub_events(s);
  }
  for (int i = 0; i < s->nclients; ++i) {
    client_stop(s, &s->cl[i], 0);
    s->cl[i].restart_at = TERN_TSTAMP_NONE;
  }
  tern_tstamp limit = s->now + s->hs.session_ttl + s->hs.dedup_window +
                      s->hs.max_heartbeat + SIM_SEC(600);
  while (!s->failed && s->now < limit &&
         (s->links || tern_hub_get_expiry(s->hub) != TERN_TSTAMP_NONE)) {
    step(s, limit);
  }
  if (!s->failed) {
    if (s->links || tern_hub_get_expiry(s->hub) != TERN_TSTAMP_NONE) {
      sim_fail(s, 7, "teardown: the hub still has deadlines %.0f s after "
                     "every app left",
               (double)(s->now - s->quiet_end) / 1e9);
    } else {
      model_check_memory(s);
    }
  }

  /* Clean up, whatever happened. */
  for (int i = 0; i < s->nclients; ++i) {
    if (s->cl[i].c) {
      tern_client_del(s->cl[i].c);
    }
  }
  while (s->links) {
    sim_link *l = s->links;
    s->links = l->next;
    link_free(l); /* tern_hub_del frees connections the host kept */
  }
  tern_hub_del(s->hub);
  if (!s->failed && (s->hubmem.blocks || s->hubmem.bad_frees)) {
    sim_fail(s, 7, "tern_hub_del left %ld blocks (%zu bytes)",
             s->hubmem.blocks, s->hubmem.bytes);
  }
  if (s->dur) {
    if (s->hub) {
      durable_stopped(s, 1); /* a clean shutdown: flushed, then synced */
      if (!s->failed) {
        durable_check_end(s);
      }
    }
    durable_free(s);
  }
  r->virtual_time = s->now - SIM_T0;
  topics_free(s);
  model_free(s);
  free(s);
  return r->failed;
}

void sim_replay_command(char *buf, size_t cap, const char *prog,
                        const sim_opts *o) {
  snprintf(buf, cap, "%s --seed %llu --verbose%s%s%s%s", prog,
           (unsigned long long)o->seed, o->hub_restart ? " --hub-restart" : "",
           o->strict_dropped ? " --strict-dropped" : "",
           o->ack_livelock ? " --ack-livelock" : "",
           o->topics ? " --topics" : "");
  if (o->policies) {
    size_t n = strlen(buf);
    snprintf(buf + n, cap > n ? cap - n : 0, " --policies");
  }
}
