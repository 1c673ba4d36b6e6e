/*
 * Fuzz target for tern_conn_read and the hub around it.  The input is a
 * script: each step takes an opcode byte and its arguments from the input.
 * Steps feed raw peer bytes (split at arbitrary points), valid HELLO/ACK
 * frames (so the fuzzer reaches deep states quickly), publishes, writes with
 * arbitrary buffer sizes, time steps, connection loss and GOAWAYs, over two
 * connections and a few sessions.  After every step the hub's gauges must
 * add up; at the end every allocation must have been returned.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"
#include "fuzz_util.h"
#include "wire/frame.h"

#define NCONN 2

static const char *keys[] = {"alice", "bob", "carol"};

/* The hub's gauges must equal what its sessions and connections hold. */
static void check(tern_hub *hub, tern_conn *const *conns, uint32_t window) {
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  uint64_t msgs = 0, bytes = 0, inflight = 0, sessions = 0;
  for (int i = 0; i < 3; ++i) {
    tern_session *ss = tern_hub_find_session(
        hub, (const uint8_t *)keys[i], strlen(keys[i]));
    if (ss) {
      tern_session_info si;
      tern_session_get_info(ss, &si, sizeof(si));
      msgs += si.pending + si.inflight;
      bytes += si.pending_bytes;
      inflight += si.inflight;
      ++sessions;
    }
  }
  uint64_t conn_inflight = 0;
  for (int i = 0; i < NCONN; ++i) {
    if (conns[i]) {
      tern_conn_info ci;
      tern_conn_get_info(conns[i], &ci, sizeof(ci));
      if (ci.inflight > window) {
        fprintf(stderr, "conn_fuzz: window exceeded\n");
        abort();
      }
      conn_inflight += ci.inflight;
    }
  }
  if (st.messages != msgs || st.message_bytes != bytes ||
      st.inflight != inflight || st.inflight != conn_inflight ||
      st.sessions != sessions) {
    fprintf(stderr, "conn_fuzz: gauges disagree with sessions\n");
    abort();
  }
}

static void drain(tern_hub *hub) {
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (ev.session_keylen > TERN_MAX_SESSION_KEY || ev.msg_idlen > TERN_MAX_ID) {
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, data + size};
  tern_mem mem = fuzz_mem();
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 7;
  s.max_pending = 8;
  s.max_pending_bytes = 512;
  s.inflight_window = 4;
  s.max_conns = 2;
  s.trace = take(&in) & 1;
  s.ack_timeout = (take(&in) & 1) ? TERN_SECONDS : 0;
  s.hello_accept = take(&in) & 1;
  s.overflow[0] = (uint8_t)(take(&in) % 3);
  s.max_events = 64;
  tern_hub *hub;
  outstanding = calls = fail_at = 0;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    abort();
  }
  tern_conn *conns[NCONN] = {NULL, NULL};
  tern_tstamp now = 1000;
  uint8_t buf[4096];
  while (in.p < in.end) {
    uint8_t op = take(&in);
    tern_conn **pc = &conns[op >> 7];
    switch (op & 0x7) {
    case 0: { /* raw peer bytes */
      size_t n = take(&in);
      if (n > (size_t)(in.end - in.p)) {
        n = (size_t)(in.end - in.p);
      }
      if (*pc) {
        tern_ssize r = tern_conn_read(*pc, in.p, n, now);
        if (r >= 0 && (size_t)r != n) {
          abort();
        }
      }
      in.p += n;
      break;
    }
    case 1: { /* a well-formed HELLO or ACK */
      if (!*pc && tern_conn_new(pc, hub, now) != 0) {
        break;
      }
      wire_frame f;
      memset(&f, 0, sizeof(f));
      uint8_t a = take(&in);
      if (a & 1) {
        f.type = WIRE_ACK;
        f.u.ack_seq = take(&in);
      } else {
        f.type = WIRE_HELLO;
        f.u.hello.version = WIRE_VERSION;
        f.u.hello.key = (const uint8_t *)keys[(a >> 1) % 3];
        f.u.hello.keylen = strlen(keys[(a >> 1) % 3]);
        f.u.hello.last_seq = take(&in);
        f.u.hello.epoch = (a & 2) ? tern_hub_get_epoch(hub) : 0;
        f.u.hello.heartbeat_ms = (uint64_t)take(&in) * 100;
      }
      size_t n = wire_frame_encode(buf, sizeof(buf), &f);
      tern_conn_read(*pc, buf, n, now);
      break;
    }
    case 2: { /* publish */
      uint8_t a = take(&in), b = take(&in);
      tern_msg_desc d;
      memset(&d, 0, sizeof(d));
      uint8_t id[2] = {'i', (uint8_t)(b & 7)};
      uint8_t ck[2] = {'c', (uint8_t)(b >> 6)};
      if (a & 4) {
        d.id = id;
        d.idlen = 2;
      }
      if (a & 8) {
        d.collapse_key = ck;
        d.collapse_keylen = 2;
      }
      d.priority = (a & 3) % 3;
      d.ttl = (a & 16) ? (tern_duration)(b & 15) * TERN_SECONDS : 0;
      d.payload = buf;
      d.payloadlen = (size_t)(a >> 5) * 40;
      tern_publish_result r;
      tern_hub_publish(hub, (const uint8_t *)keys[b % 3], strlen(keys[b % 3]),
                       &d, now, &r);
      break;
    }
    case 3: /* write */
      if (*pc) {
        size_t cap = (size_t)take(&in) * 8 + 1;
        tern_conn_write(*pc, buf, cap < sizeof(buf) ? cap : sizeof(buf), now);
      }
      break;
    case 4: /* time */
      now += (tern_duration)take(&in) * 100 * TERN_MILLISECONDS;
      tern_hub_handle_expiry(hub, now);
      break;
    case 5: /* connection lost */
      tern_conn_del(*pc);
      *pc = NULL;
      break;
    case 6: /* host decisions */
      if (*pc) {
        if (take(&in) & 1) {
          tern_conn_accept(*pc, now);
        } else {
          tern_conn_goaway(*pc, TERN_GOAWAY_REJECTED, TERN_SECONDS, now);
        }
      }
      break;
    default:
      tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, 10 * TERN_SECONDS, now);
      while (tern_hub_next_ready(hub)) {
      }
      break;
    }
    drain(hub);
    check(hub, conns, s.inflight_window);
  }
  for (int i = 0; i < NCONN; ++i) {
    tern_conn_del(conns[i]);
  }
  tern_hub_del(hub);
  if (outstanding != 0) {
    fprintf(stderr, "conn_fuzz: %ld allocations leaked\n", outstanding);
    abort();
  }
  return 0;
}
