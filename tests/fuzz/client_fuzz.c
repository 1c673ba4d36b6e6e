/*
 * Fuzz target for tern_client_read and the receiver state machine around
 * it.  The input is a script: a header of settings, then steps, each an
 * opcode byte and its arguments.  Steps feed raw server bytes (split at
 * arbitrary points), well-formed server frames (WELCOME, MSG, PING, PONG,
 * DROPPED, GOAWAY, so that the fuzzer reaches deep states quickly), time,
 * writes with arbitrary buffer sizes, peeks consumed in part, publishes,
 * the app taking events and acking, transport loss, reconnects and close,
 * and saving the resume state.  The host answers CONNECT events by
 * connecting at once.
 *
 * Checked after every step: read returns |len| or one of its documented
 * errors; want_write and write agree; every event's pointers are readable
 * (ASan) and within their limits; the counters add up; no transport ends
 * twice.  At the end, after the transport is lost, every transport handed
 * over with tern_client_connect has ended with exactly one DISCONNECTED
 * event, and every allocation must have been returned.  One header byte makes the Nth
 * allocation fail, to reach the out-of-memory paths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"
#include "fuzz_util.h"
#include "wire/frame.h"

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "client_fuzz: %s:%d: %s\n", __FILE__, __LINE__,      \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

static volatile uint8_t sink;

static void touch(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    sink = (uint8_t)(sink ^ p[i]);
  }
}

typedef struct state {
  tern_client *c;
  tern_tstamp now;
  int manual;
  uint64_t last_seq;   /* seq of the last MESSAGE taken */
  int connect_asked;
  int no_connect;      /* the end: CONNECT events are not answered */
  uint64_t handed;     /* tern_client_connect calls that succeeded */
  uint64_t ended;      /* DISCONNECTED events */
  uint64_t last_req;   /* the request number of the last publish taken */
} state;

static void take_events(state *st, int max) {
  tern_client_event ev;
  for (int i = 0; i < max && tern_client_next_event(st->c, &ev) == 1; ++i) {
    REQUIRE(ev.type >= TERN_CLIENT_EV_CONNECT &&
            ev.type <= TERN_CLIENT_EV_PUBACK);
    switch (ev.type) {
    case TERN_CLIENT_EV_CONNECT:
      st->connect_asked = 1;
      if (!st->no_connect && tern_client_connect(st->c, st->now) == 0) {
        st->connect_asked = 0;
        ++st->handed;
      }
      break;
    case TERN_CLIENT_EV_DISCONNECTED:
      ++st->ended;
      REQUIRE(st->ended <= st->handed);
      break;
    case TERN_CLIENT_EV_MESSAGE:
      REQUIRE(ev.idlen >= 1 && ev.idlen <= TERN_MAX_ID);
      REQUIRE(ev.collapse_keylen <= TERN_MAX_COLLAPSE_KEY);
      REQUIRE(ev.content_typelen <= TERN_MAX_CONTENT_TYPE);
      REQUIRE(ev.nattrs <= TERN_MAX_ATTRS);
      REQUIRE(ev.priority >= TERN_PRIO_LOW && ev.priority <= TERN_PRIO_HIGH);
      REQUIRE(ev.seq != 0);
      touch(ev.id, ev.idlen);
      touch(ev.collapse_key, ev.collapse_keylen);
      touch(ev.content_type, ev.content_typelen);
      touch(ev.payload, ev.payloadlen);
      for (size_t k = 0; k < ev.nattrs; ++k) {
        touch(ev.attrs[k].key, ev.attrs[k].keylen);
        touch(ev.attrs[k].value, ev.attrs[k].valuelen);
      }
      st->last_seq = ev.seq;
      break;
    case TERN_CLIENT_EV_PUBACK: /* only for a request written */
      REQUIRE(ev.seq >= 1 && ev.seq <= st->last_req);
      REQUIRE(ev.idlen <= TERN_MAX_ID);
      touch(ev.id, ev.idlen);
      break;
    default:
      break;
    }
  }
}

static void check(const state *st) {
  tern_client_stats s;
  tern_client_get_stats(st->c, &s, sizeof(s));
  REQUIRE(s.delivered + s.duplicates <= s.received);
  tern_tstamp e = tern_client_get_expiry(st->c);
  (void)e;
}

static void feed(state *st, const wire_frame *f) {
  uint8_t buf[4096];
  size_t n = wire_frame_encode(buf, sizeof(buf), f);
  REQUIRE(n > 0);
  tern_ssize r = tern_client_read(st->c, buf, n, st->now);
  REQUIRE(r == (tern_ssize)n || r == TERN_ERR_PROTO ||
          r == TERN_ERR_TOO_LARGE || r == TERN_ERR_NOMEM ||
          r == TERN_ERR_STATE || r == TERN_ERR_CLOSED);
}

/* Saves the state, restores it into a second client and saves that: the
   same bytes (unless an allocation failed). */
static void save_restore(const state *st, const tern_client_settings *s,
                         tern_mem *mem) {
  static uint8_t a[1024], b[1024];
  tern_ssize n = tern_client_save_state(st->c, a, sizeof(a));
  REQUIRE(n > 0 && (size_t)n <= sizeof(a)); /* dedup_max is at most 7 */
  tern_client *c2 = NULL;
  if (tern_client_new(&c2, (const uint8_t *)"fz", 2, NULL, 0, s, mem,
                      st->now) != 0) {
    return;
  }
  int rv = tern_client_restore_state(c2, a, (size_t)n, st->now);
  REQUIRE(rv == 0 || rv == TERN_ERR_NOMEM);
  if (rv == 0) {
    REQUIRE(tern_client_save_state(c2, b, sizeof(b)) == n);
    REQUIRE(memcmp(a, b, (size_t)n) == 0);
  }
  tern_client_del(c2);
}

static const char *const ids[] = {"a", "b", "c", "d", "e", "f", "g", "h"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, data + size};
  tern_mem mem = fuzz_mem();
  tern_client_settings s;
  tern_client_settings_default(&s);
  uint8_t h0 = take(&in), h1 = take(&in), h2 = take(&in);
  s.seed = 7;
  s.manual_ack = h0 & 1;
  s.adaptive_heartbeat = (h0 >> 1) & 1;
  s.ack_every = (uint32_t)(h0 >> 2 & 7) + 1;
  s.dedup_max = h1 & 7;
  s.dedup_window = (h1 & 8) ? 5 * TERN_SECONDS : 0;
  s.max_attempts = (uint32_t)(h1 >> 4 & 3);
  s.max_payload = 256;
  s.heartbeat_interval = (tern_duration)(h1 >> 6) * TERN_SECONDS;
  outstanding = 0;
  calls = 0;
  fail_at = h2;
  state st;
  memset(&st, 0, sizeof(st));
  st.now = 1000 * TERN_SECONDS;
  st.manual = (int)s.manual_ack;
  if (tern_client_new(&st.c, (const uint8_t *)"fz", 2, (const uint8_t *)"t", 1,
                      &s, &mem, st.now) != 0) {
    REQUIRE(outstanding == 0);
    return 0;
  }
  take_events(&st, 4);
  uint8_t buf[2048];
  uint64_t seq = 0;
  while (in.p < in.end) {
    uint8_t op = take(&in);
    switch (op & 0xf) {
    case 0: { /* raw server bytes */
      size_t n = take(&in);
      if (n > (size_t)(in.end - in.p)) {
        n = (size_t)(in.end - in.p);
      }
      tern_ssize r = tern_client_read(st.c, in.p, n, st.now);
      REQUIRE(r == (tern_ssize)n || r == TERN_ERR_PROTO ||
              r == TERN_ERR_TOO_LARGE || r == TERN_ERR_NOMEM ||
              r == TERN_ERR_STATE || r == TERN_ERR_CLOSED);
      in.p += n;
      break;
    }
    case 1: { /* WELCOME, after the server read what the client wrote */
      while (tern_client_write(st.c, buf, sizeof(buf), st.now) > 0) {
      }
      wire_frame f;
      memset(&f, 0, sizeof(f));
      uint8_t a = take(&in);
      f.type = WIRE_WELCOME;
      f.u.welcome.version = WIRE_VERSION;
      f.u.welcome.epoch = (uint64_t)(a & 3);
      f.u.welcome.flags = (uint64_t)(a >> 2 & 3);
      f.u.welcome.heartbeat_ms = (uint64_t)take(&in) * 1000;
      f.u.welcome.liveness_ms = f.u.welcome.heartbeat_ms + 3000;
      f.u.welcome.window = take(&in);
      f.u.welcome.retry_ms = (a & 0x80) ? (uint64_t)take(&in) * 100 : 0;
      feed(&st, &f);
      seq = 0;
      break;
    }
    case 2: { /* MSG */
      uint8_t a = take(&in), b = take(&in);
      wire_frame f;
      memset(&f, 0, sizeof(f));
      f.type = WIRE_MSG;
      seq = (a & 0x80) ? (uint64_t)(a & 0x7f) : seq + 1 + (a & 3);
      f.u.msg.seq = seq;
      f.u.msg.ttl_ms = (uint64_t)(b & 0xf) * 1000;
      f.u.msg.priority = (a >> 2) % 3;
      f.u.msg.id = (const uint8_t *)ids[b >> 5];
      f.u.msg.idlen = 1;
      if (b & 0x10) {
        f.u.msg.collapse_key = (const uint8_t *)"ck";
        f.u.msg.collapse_keylen = 2;
        f.u.msg.content_type = (const uint8_t *)"text/plain";
        f.u.msg.content_typelen = 10;
        f.u.msg.nattrs = 1;
        f.u.msg.attrs[0].key = (const uint8_t *)"k";
        f.u.msg.attrs[0].keylen = 1;
        f.u.msg.attrs[0].value = (const uint8_t *)"v";
        f.u.msg.attrs[0].valuelen = 1;
      }
      memset(buf, 'p', 300);
      f.u.msg.payload = buf;
      f.u.msg.payloadlen = (size_t)(a >> 4 & 3) * 100;
      feed(&st, &f);
      break;
    }
    case 3: { /* control frames */
      uint8_t a = take(&in), b = take(&in);
      wire_frame f;
      memset(&f, 0, sizeof(f));
      switch (a & 3) {
      case 0:
        f.type = WIRE_PING;
        f.u.ping = b;
        break;
      case 1:
        f.type = WIRE_PONG;
        f.u.ping = (b & 1) ? st.now : b; /* often the value we sent */
        break;
      case 2:
        f.type = WIRE_DROPPED;
        f.u.dropped.count = b;
        f.u.dropped.reason = a >> 2;
        break;
      default:
        f.type = WIRE_GOAWAY;
        f.u.goaway.reason = a >> 2;
        f.u.goaway.retry_ms = (uint64_t)b * 100;
        f.u.goaway.text = (const uint8_t *)"bye";
        f.u.goaway.textlen = 3;
        break;
      }
      feed(&st, &f);
      break;
    }
    case 4: /* time */
      st.now += (tern_duration)take(&in) * 250 * TERN_MILLISECONDS;
      tern_client_handle_expiry(st.c, st.now);
      break;
    case 5: { /* run to the next deadline */
      tern_tstamp e = tern_client_get_expiry(st.c);
      if (e != TERN_TSTAMP_NONE && e < st.now + 3600 * TERN_SECONDS) {
        if (e > st.now) {
          st.now = e;
        }
        tern_client_handle_expiry(st.c, st.now);
      }
      break;
    }
    case 6: { /* write */
      size_t cap = (size_t)take(&in) % 64 + 1;
      int want = tern_client_want_write(st.c);
      tern_ssize r = tern_client_write(st.c, buf, cap, st.now);
      REQUIRE(r <= (tern_ssize)cap);
      if (want && r == TERN_ERR_STATE) {
        /* refused only while peeked bytes wait */
        const uint8_t *p;
        REQUIRE(tern_client_peek_output(st.c, &p, st.now) > 0);
      } else if (want) {
        REQUIRE(r > 0);
      }
      if (r > 0) {
        touch(buf, (size_t)r);
      }
      break;
    }
    case 7: /* the app takes events */
      take_events(&st, take(&in) % 8 + 1);
      break;
    case 8: /* the app acks */
      if (take(&in) & 1) {
        tern_client_ack(st.c, st.last_seq, st.now);
      } else {
        tern_client_ack(st.c, take(&in), st.now);
      }
      break;
    case 9: /* the transport broke */
      tern_client_conn_lost(st.c, st.now);
      break;
    case 10: /* the host connects */
      if (tern_client_connect(st.c, st.now) == 0) {
        ++st.handed;
      }
      break;
    case 11:
      if (take(&in) == 0x5a) {
        tern_client_close(st.c, st.now);
      }
      break;
    case 14: { /* a peek, of which the socket takes part */
      const uint8_t *p, *p2;
      int want = tern_client_want_write(st.c);
      tern_ssize r = tern_client_peek_output(st.c, &p, st.now);
      REQUIRE(r <= 16384);
      if (want) {
        REQUIRE(r > 0);
      }
      if (r <= 0) {
        REQUIRE(p == NULL && tern_client_consume(st.c, 1) == TERN_ERR_INVALID);
        break;
      }
      touch(p, (size_t)r);
      REQUIRE(tern_client_peek_output(st.c, &p2, st.now) == r && p2 == p);
      REQUIRE(tern_client_consume(st.c, (size_t)r + 1) == TERN_ERR_INVALID);
      uint8_t k = take(&in);
      REQUIRE(tern_client_consume(st.c, k & 0x80 ? (size_t)r
                                                 : (size_t)k % ((size_t)r + 1)) == 0);
      break;
    }
    case 15: { /* the app publishes */
      tern_msg_desc d;
      memset(&d, 0, sizeof(d));
      uint8_t a = take(&in);
      d.id = (const uint8_t *)ids[a & 7];
      d.idlen = a & 8 ? 1 : 0;
      d.flags = a & 0x10 ? TERN_MSG_SYNC : 0;
      memset(buf, 'q', 1000);
      d.payload = buf;
      d.payloadlen = (size_t)(a >> 5) * 140;
      uint64_t req = 0;
      int rv = tern_client_publish(st.c, 0, (const uint8_t *)"to", 2, &d, &req,
                                   st.now);
      REQUIRE(rv == 0 || rv == TERN_ERR_STATE || rv == TERN_ERR_CLOSED ||
              rv == TERN_ERR_FULL || rv == TERN_ERR_NOMEM ||
              (rv == TERN_ERR_TOO_LARGE && d.payloadlen > 256));
      REQUIRE(rv != 0 || req == st.last_req + 1);
      if (rv == 0) {
        st.last_req = req;
      }
      break;
    }
    case 13: /* the app saves the state; a new process restores it */
      save_restore(&st, &s, &mem);
      break;
    default:
      take_events(&st, 64);
      break;
    }
    check(&st);
  }
  st.no_connect = 1;
  take_events(&st, 1 << 20);
  tern_client_conn_lost(st.c, st.now);
  take_events(&st, 1 << 20);
  REQUIRE(st.ended == st.handed);
  tern_client_del(st.c);
  REQUIRE(outstanding == 0);
  return 0;
}
