/*
 * Timing policy: the reconnect backoff (exponential with full jitter) and
 * the adaptive heartbeat, which probes longer keepalive intervals while the
 * network path survives them.
 *
 * The adaptive heartbeat exists for NAT gateways and firewalls that forget
 * an idle connection after some minutes without telling either end.  The
 * keepalive interval H starts at heartbeat_interval (30 s when 0).  A PING
 * sent after the link was idle, both ways, for H is a probe of H: its PONG
 * proves that the path survives H idle, and H grows by half (up to
 * heartbeat_cap).  A connection that dies while a probe is unanswered shows
 * that H was too long: H steps back to the longest interval that survived
 * and stays there (locked).  With nothing known to survive, H halves
 * instead.  A locked interval that fails twice in a row (the network
 * changed) is halved and probing starts again from there.
 */
#include "client/client.h"

tern_duration client_backoff_wait(tern_client *c) {
  tern_duration base = c->set.backoff_base, cap = c->set.backoff_cap;
  tern_duration bound = cap;
  /* base << waits without overflow: past 63 doublings any base exceeds
     any cap. */
  if (c->waits < 64 && base <= (cap >> c->waits)) {
    bound = base << c->waits;
  }
  ++c->waits;
  return bound ? rng_below(&c->rand, bound) : 0;
}

void client_hb_init(tern_client *c) {
  tern_duration h = c->set.heartbeat_interval;
  if (h == 0) {
    h = CLIENT_HB_START;
  }
  if (h > c->set.heartbeat_cap) {
    h = c->set.heartbeat_cap;
  }
  if (h < CLIENT_HB_MIN) {
    h = CLIENT_HB_MIN;
  }
  c->hb_cur = h;
  c->hb_good = 0;
  c->hb_locked = 0;
  c->hb_lock_failures = 0;
}

tern_duration client_hb_interval(const tern_client *c) {
  /* Never longer than the server's heartbeat: past it, plus its margin,
     the server declares a silent client dead. */
  tern_duration h = c->hb_cur;
  tern_duration srv = (tern_duration)c->hb_ms * TERN_MILLISECONDS;
  if (srv && srv < h) {
    h = srv;
  }
  return h;
}

void client_hb_probe_ok(tern_client *c, tern_duration probe) {
  c->hb_lock_failures = 0;
  if (probe <= c->hb_good) {
    return;
  }
  c->hb_good = probe;
  if (!c->hb_locked && probe >= c->hb_cur) {
    tern_duration next = probe + probe / 2;
    c->hb_cur = next > c->set.heartbeat_cap ? c->set.heartbeat_cap : next;
  }
}

static tern_duration half(tern_duration h) {
  return h / 2 < CLIENT_HB_MIN ? CLIENT_HB_MIN : h / 2;
}

void client_hb_probe_failed(tern_client *c, tern_duration probe) {
  if (probe > c->hb_good) {
    if (c->hb_good) {
      c->hb_cur = c->hb_good;
      c->hb_locked = 1;
    } else {
      c->hb_cur = half(probe);
    }
    return;
  }
  if (++c->hb_lock_failures >= CLIENT_HB_LOCK_FAILURES) {
    c->hb_cur = half(probe);
    c->hb_good = 0;
    c->hb_locked = 0;
    c->hb_lock_failures = 0;
  }
}
