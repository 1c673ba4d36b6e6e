/*
 * lib/client/backoff: the reconnect backoff and the adaptive heartbeat.
 *
 * Backoff: the n-th wait since the last WELCOME is uniform in
 * [0, min(cap, base * 2^n)) (tern_client_settings), checked over many
 * seeds for its bound, its spread and its mean, including bases and caps
 * where base * 2^n overflows 64 bits; the same seed replays the same waits.
 *
 * Adaptive heartbeat (the algorithm in backoff.c's header comment): random
 * runs of probe results keep the interval within [1 s, heartbeat_cap] and a
 * locked interval fixed until it fails twice in a row; scenarios check
 * growth by half, stepping back to the longest good interval, halving with
 * nothing known good, and the server's heartbeat as a ceiling.
 */
#include <stdlib.h>
#include <string.h>

#include "base/rand.h"
#include "client/client.h"
#include "tap.h"
#include "testutil.h"

static tern_client *new_client(tern_duration base, tern_duration cap,
                               uint64_t seed) {
  tern_client_settings s;
  tern_client_settings_default(&s);
  s.backoff_base = base;
  s.backoff_cap = cap;
  s.seed = seed;
  s.adaptive_heartbeat = 1;
  tern_client *c = NULL;
  if (tern_client_new(&c, (const uint8_t *)"k", 1, NULL, 0, &s, NULL, T0) !=
      0) {
    fprintf(stderr, "backoff_test: tern_client_new failed\n");
    abort();
  }
  return c;
}

/* min(cap, base * 2^n) without overflow. */
static tern_duration bound_of(tern_duration base, tern_duration cap,
                              unsigned n) {
  tern_duration b = base;
  for (unsigned i = 0; i < n; ++i) {
    if (b > cap / 2) {
      return cap;
    }
    b *= 2;
  }
  return b < cap ? b : cap;
}

/* Draws |nwaits| waits for each of |nseeds| seeds; checks every wait is
   below its bound, and that per n the largest comes near the bound and the
   mean near half of it. */
static void check_waits(const char *what, tern_duration base,
                        tern_duration cap, unsigned nwaits, int nseeds) {
  enum { MAXN = 100 };
  double sum[MAXN];
  tern_duration max[MAXN];
  memset(sum, 0, sizeof(sum));
  memset(max, 0, sizeof(max));
  int below = 1, counted = 1;
  for (int seed = 1; seed <= nseeds; ++seed) {
    tern_client *c = new_client(base, cap, (uint64_t)seed);
    for (unsigned n = 0; n < nwaits; ++n) {
      tern_duration w = client_backoff_wait(c);
      below &= w < bound_of(base, cap, n);
      max[n] = w > max[n] ? w : max[n];
      sum[n] += (double)w;
    }
    counted &= c->waits == nwaits;
    tern_client_del(c);
  }
  int spread = 1, mean = 1;
  /* The mean of nseeds uniform draws has a standard deviation of
     bound / sqrt(12 * nseeds); allow 6 of them. */
  for (unsigned n = 0; n < nwaits; ++n) {
    double b = (double)bound_of(base, cap, n);
    double m = sum[n] / nseeds;
    if (b < 1000) {
      continue; /* a few integers: no meaningful spread */
    }
    spread &= (double)max[n] >= 0.95 * b;
    double off = m / b - 0.5;
    int near = off * off * 12.0 * nseeds <= 36.0;
    mean &= near;
    if ((double)max[n] < 0.95 * b || !near) {
      tap_diag("%s: wait %u: max %.3g, mean %.3g, bound %.3g", what, n,
               (double)max[n], m, b);
    }
  }
  CHECK(below && counted, "%s: each of %u waits is below min(cap, base * "
                          "2^n), and counted",
        what, nwaits);
  CHECK(spread && mean, "%s: over %d seeds each wait spans its range, mean "
                        "about half the bound",
        what, nseeds);
}

static void test_backoff(void) {
  check_waits("defaults 1 s, 15 s", TERN_SECONDS, 15 * TERN_SECONDS, 8, 2000);
  check_waits("base = cap", 5 * TERN_SECONDS, 5 * TERN_SECONDS, 4, 2000);
  check_waits("cap not a power of two of base", 3 * TERN_SECONDS,
              10 * TERN_SECONDS, 5, 2000);
  /* base * 2^n passes 2^64 at n = 24 and the shift count 63 at n = 63:
     the bound must saturate at cap, never wrap to something small. */
  check_waits("base 2^40 ns, cap UINT64_MAX", (tern_duration)1 << 40,
              UINT64_MAX, 80, 300);
  check_waits("base 1 ns, cap UINT64_MAX", 1, UINT64_MAX, 100, 300);

  /* The same seed replays the same waits; another seed does not. */
  tern_client *a = new_client(TERN_SECONDS, 15 * TERN_SECONDS, 77);
  tern_client *b = new_client(TERN_SECONDS, 15 * TERN_SECONDS, 77);
  tern_client *o = new_client(TERN_SECONDS, 15 * TERN_SECONDS, 78);
  int same = 1, differ = 0;
  for (int n = 0; n < 10; ++n) {
    tern_duration wa = client_backoff_wait(a);
    same &= wa == client_backoff_wait(b);
    differ |= wa != client_backoff_wait(o);
  }
  CHECK(same && differ, "the same seed replays the same waits, another "
                        "seed gives others");
  tern_client_del(a);
  tern_client_del(b);
  tern_client_del(o);
}

/* ---- adaptive heartbeat ---------------------------------------------------- */

static tern_client *hb_client(tern_duration start, tern_duration cap) {
  tern_client *c = new_client(TERN_SECONDS, 15 * TERN_SECONDS, 1);
  c->set.heartbeat_interval = start;
  c->set.heartbeat_cap = cap;
  client_hb_init(c);
  return c;
}

static void test_hb_scenarios(void) {
  const tern_duration S = TERN_SECONDS;
  tern_client *c = hb_client(0, 300 * S);
  CHECK(c->hb_cur == 30 * S && !c->hb_locked && c->hb_good == 0,
        "heartbeat_interval 0 starts at 30 s, unlocked, nothing known good");
  client_hb_probe_ok(c, 30 * S);
  CHECK(c->hb_cur == 45 * S && c->hb_good == 30 * S,
        "a probe of 30 s survives: 45 s next (grows by half)");
  client_hb_probe_ok(c, 20 * S);
  CHECK(c->hb_cur == 45 * S && c->hb_good == 30 * S,
        "a shorter probe surviving teaches nothing");
  client_hb_probe_failed(c, 45 * S);
  CHECK(c->hb_locked && c->hb_cur == 30 * S,
        "a probe of 45 s fails: back to the longest good one, 30 s, locked");
  client_hb_probe_ok(c, 30 * S);
  CHECK(c->hb_cur == 30 * S && c->hb_locked, "locked: a success changes "
                                             "nothing");
  client_hb_probe_failed(c, 30 * S);
  CHECK(c->hb_cur == 30 * S && c->hb_locked, "one failure of the locked "
                                             "interval is forgiven");
  client_hb_probe_ok(c, 30 * S);
  client_hb_probe_failed(c, 30 * S);
  CHECK(c->hb_cur == 30 * S && c->hb_locked, "a success in between resets "
                                             "the count");
  client_hb_probe_failed(c, 30 * S);
  CHECK(c->hb_cur == 15 * S && !c->hb_locked && c->hb_good == 0,
        "two failures in a row: halved, unlocked, probing again");
  tern_client_del(c);

  c = hb_client(0, 300 * S);
  for (int i = 0; i < 10; ++i) {
    client_hb_probe_ok(c, c->hb_cur);
  }
  CHECK(c->hb_cur == 300 * S && !c->hb_locked,
        "growth stops at heartbeat_cap");
  tern_client_del(c);

  c = hb_client(4 * S, 300 * S);
  client_hb_probe_failed(c, 4 * S);
  CHECK(c->hb_cur == 2 * S, "nothing known good: a failure halves");
  client_hb_probe_failed(c, 2 * S);
  client_hb_probe_failed(c, 1 * S);
  CHECK(c->hb_cur == CLIENT_HB_MIN, "never below 1 s");
  tern_client_del(c);

  c = hb_client(0, 10 * S);
  CHECK(c->hb_cur == 10 * S, "a start above heartbeat_cap starts at the cap");
  tern_client_del(c);
  c = hb_client(TERN_MILLISECONDS, 10 * S);
  CHECK(c->hb_cur == CLIENT_HB_MIN, "a start below 1 s starts at 1 s");
  c->hb_cur = 60 * S;
  c->hb_ms = 20000;
  CHECK(client_hb_interval(c) == 20 * S,
        "the server's heartbeat caps the keepalive interval");
  c->hb_ms = 0;
  CHECK(client_hb_interval(c) == 60 * S, "without one, the interval holds");
  tern_client_del(c);
}

/* Random probe results: whatever happens, the interval stays within
   [1 s, cap] and a locked interval moves only on its second failure in a
   row. */
static void test_hb_random(void) {
  const tern_duration S = TERN_SECONDS;
  rng r;
  rng_seed(&r, 2024);
  int in_range = 1, locked_stable = 1, grows = 0, locks = 0, unlocks = 0;
  for (int run = 0; run < 200; ++run) {
    tern_duration cap = (1 + rng_below(&r, 600)) * S;
    tern_client *c = hb_client(rng_below(&r, 120) * S, cap);
    for (int i = 0; i < 200; ++i) {
      tern_duration before = c->hb_cur;
      int was_locked = c->hb_locked;
      /* Mostly probes of the interval in use, sometimes stale ones (a
         probe is a keepalive interval, so never above the cap). */
      tern_duration probe = rng_below(&r, 4) ? c->hb_cur
                                             : (1 + rng_below(&r, cap / S)) * S;
      int ok = rng_below(&r, 3) != 0;
      if (ok) {
        client_hb_probe_ok(c, probe);
        grows += c->hb_cur > before;
      } else {
        client_hb_probe_failed(c, probe);
      }
      locks += !was_locked && c->hb_locked;
      unlocks += was_locked && !c->hb_locked;
      in_range &= c->hb_cur >= CLIENT_HB_MIN &&
                  c->hb_cur <= (cap > CLIENT_HB_MIN ? cap : CLIENT_HB_MIN);
      if (was_locked && c->hb_cur != before) {
        /* Only failures move a locked interval: the second in a row, or
           a longer stale probe failing, which steps back to the good
           one. */
        locked_stable &= !ok;
      }
    }
    tern_client_del(c);
  }
  CHECK(in_range, "200 random runs: the interval stays within [1 s, cap]");
  CHECK(locked_stable, "a locked interval never moves on a success");
  CHECK(grows > 100 && locks > 50 && unlocks > 10,
        "the runs grew (%d), locked (%d) and unlocked (%d) intervals", grows,
        locks, unlocks);
}

int main(void) {
  test_backoff();
  test_hb_scenarios();
  test_hb_random();
  return tap_done();
}
