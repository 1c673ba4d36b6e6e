/*
 * Fuzz target for the resume positions of the web framings
 * (tern_stream_parse_resume) and the one-way connections that use them
 * (lib/deliver/framing.c).
 *
 * The first input byte picks a mode:
 *   0  the rest is a Last-Event-ID or ?seq= value: the parser must agree
 *      with a reference written here (digits, at most one '.', each part
 *      1..20 digits and at most UINT64_MAX); an accepted value printed
 *      back canonically parses to the same numbers; a refused one leaves
 *      the outputs untouched.
 *   1  the rest is a script of operations on one hub: publish, open an
 *      SSE, NDJSON or poll connection with a resume value cut from the
 *      input, write with a small buffer, ack out of band, delete, let
 *      time pass.  Checks: every call returns a documented code, the
 *      hub's gauges stay consistent (messages = pending + in flight over
 *      the session), and everything is freed (the sanitizers see the rest).
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "resume_fuzz: %s:%d: %s\n", __FILE__, __LINE__,      \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

/* The reference: one part of 1..20 digits not above UINT64_MAX. */
static int ref_part(const uint8_t *p, size_t n, uint64_t *v) {
  static const char max[] = "18446744073709551615";
  if (n == 0 || n > 20) {
    return 0;
  }
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < '0' || p[i] > '9') {
      return 0;
    }
  }
  if (n == 20 && memcmp(p, max, 20) > 0) {
    return 0;
  }
  uint64_t x = 0;
  for (size_t i = 0; i < n; ++i) {
    x = x * 10 + (uint64_t)(p[i] - '0');
  }
  *v = x;
  return 1;
}

static void parse_mode(const uint8_t *p, size_t n) {
  const uint8_t *dot = memchr(p, '.', n);
  uint64_t re = 0, rs = 0;
  int ok;
  if (dot) {
    size_t a = (size_t)(dot - p);
    ok = ref_part(p, a, &re) && ref_part(dot + 1, n - a - 1, &rs);
  } else {
    ok = ref_part(p, n, &rs);
  }
  uint64_t e = 7, s = 9;
  int rv = tern_stream_parse_resume((const char *)p, n, &e, &s);
  if (!ok) {
    REQUIRE(rv == TERN_ERR_INVALID && e == 7 && s == 9);
    return;
  }
  REQUIRE(rv == 0 && e == re && s == rs);
  char buf[64];
  int len = dot ? snprintf(buf, sizeof buf, "%llu.%llu", (unsigned long long)e,
                           (unsigned long long)s)
                : snprintf(buf, sizeof buf, "%llu", (unsigned long long)s);
  uint64_t e2, s2;
  REQUIRE(tern_stream_parse_resume(buf, (size_t)len, &e2, &s2) == 0);
  REQUIRE(e2 == e && s2 == s);
}

#define NCONNS 4
static const char *const keys[] = {"a", "b"};

static void check_gauges(tern_hub *hub) {
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof st);
  uint64_t held = 0, inflight = 0;
  for (int k = 0; k < 2; ++k) {
    tern_session *s = tern_hub_find_session(hub, (const uint8_t *)keys[k], 1);
    if (s) {
      tern_session_info i;
      tern_session_get_info(s, &i, sizeof i);
      held += (uint64_t)i.pending + i.inflight;
      inflight += i.inflight;
    }
  }
  REQUIRE(st.messages == held);
  REQUIRE(st.inflight == inflight);
}

static void script_mode(const uint8_t *p, size_t n) {
  if (n == 0) {
    return;
  }
  tern_settings set;
  tern_settings_default(&set);
  set.seed = 1;
  set.max_pending = 6;
  set.inflight_window = 4;
  set.ack_timeout = (p[0] & 1) ? 2 * TERN_SECONDS : 0;
  tern_hub *hub = NULL;
  REQUIRE(tern_hub_new(&hub, &set, NULL) == 0);
  tern_conn *conns[NCONNS] = {0};
  tern_tstamp now = 1000 * TERN_SECONDS;
  uint8_t out[4096];
  size_t i = 0;
  while (i + 2 <= n) {
    uint8_t op = p[i], arg = p[i + 1];
    i += 2;
    const char *key = keys[arg & 1];
    int slot = (arg >> 1) % NCONNS;
    switch (op % 7) {
    case 0: { /* publish: payload bytes from the input */
      size_t len = arg >> 2;
      len = len < n - i ? len : n - i;
      tern_msg_desc d;
      memset(&d, 0, sizeof d);
      d.priority = arg % 3;
      d.payload = p + i;
      d.payloadlen = len;
      d.ttl = (arg & 8) ? TERN_SECONDS : 0;
      i += len;
      int rv = tern_hub_publish(hub, (const uint8_t *)key, 1, &d, now, NULL);
      REQUIRE(rv == 0 || rv == TERN_ERR_FULL);
      break;
    }
    case 1: { /* open: a resume value of up to 15 bytes from the input */
      if (conns[slot]) {
        break;
      }
      tern_stream_opts o;
      tern_stream_opts_default(&o);
      o.framing = 1 + (arg >> 3) % 3;
      o.key = (const uint8_t *)key;
      o.keylen = 1;
      o.poll_hold = (arg & 0x80) ? 0 : 3 * TERN_SECONDS;
      o.retry = (arg & 0x40) ? TERN_SECONDS : 0;
      size_t len = i < n ? p[i++] % 16 : 0;
      len = len < n - i ? len : n - i;
      if (tern_stream_parse_resume((const char *)p + i, len, &o.resume_epoch,
                                   &o.resume_seq) == 0 &&
          (arg & 0x20)) {
        o.resume_epoch = tern_hub_get_epoch(hub);
      }
      i += len;
      int rv = tern_conn_new_stream(&conns[slot], hub, &o, now);
      REQUIRE(rv == 0 || rv == TERN_ERR_LIMIT);
      break;
    }
    case 2: { /* write with a small buffer */
      if (!conns[slot]) {
        break;
      }
      size_t cap = 1 + arg % 97;
      tern_ssize w = tern_conn_write(conns[slot], out, cap, now);
      REQUIRE((w >= 0 && (size_t)w <= cap) || w == TERN_ERR_CLOSED);
      break;
    }
    case 3: { /* ack out of band */
      tern_ssize rv = tern_hub_ack(hub, (const uint8_t *)key, 1, arg >> 1, now);
      REQUIRE(rv >= 0 || rv == TERN_ERR_NOT_FOUND || rv == TERN_ERR_INVALID);
      break;
    }
    case 4: /* the socket closes */
      tern_conn_del(conns[slot]);
      conns[slot] = NULL;
      break;
    case 5: /* time passes */
      now += (tern_tstamp)arg * 50 * TERN_MILLISECONDS;
      REQUIRE(tern_hub_handle_expiry(hub, now) == 0);
      break;
    default: { /* events, and the reading that one-way connections refuse */
      tern_event ev;
      while (tern_hub_next_event(hub, &ev) == 1) {
      }
      if (conns[slot] && !tern_conn_is_closed(conns[slot])) {
        REQUIRE(tern_conn_read(conns[slot], &arg, 1, now) == TERN_ERR_STATE);
      }
      break;
    }
    }
    check_gauges(hub);
  }
  for (int k = 0; k < NCONNS; ++k) {
    tern_conn_del(conns[k]);
  }
  tern_hub_del(hub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  if (data[0] % 2 == 0) {
    parse_mode(data + 1, size - 1);
  } else {
    script_mode(data + 1, size - 1);
  }
  return 0;
}
