/*
 * The receiver side the benchmarks share: a connection bound to a session
 * by a HELLO, its WELCOME flushed, and ACKs through the wire codec.  The
 * hub's cost is what they measure, so these stay as plain as possible.
 */
#ifndef TERN_BENCH_CONN_H
#define TERN_BENCH_CONN_H

#include <stdint.h>
#include <string.h>

#include "tern.h"
#include "wire/frame.h"

/* bench_connect opens a connection bound to |key| and writes out its
   WELCOME.  0 with *|pc| set, or the failing call's error (TERN_ERR_STATE
   when no WELCOME came); nothing is left open on error. */
static inline int bench_connect(tern_hub *hub, const char *key,
                                tern_tstamp now, tern_conn **pc) {
  tern_conn *c;
  int rv = tern_conn_new(&c, hub, now);
  if (rv != 0) {
    return rv;
  }
  uint8_t buf[64 + TERN_MAX_SESSION_KEY];
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_HELLO;
  f.u.hello.version = WIRE_VERSION;
  f.u.hello.key = (const uint8_t *)key;
  f.u.hello.keylen = strlen(key);
  size_t n = wire_frame_encode(buf, sizeof(buf), &f);
  tern_ssize r = n ? tern_conn_read(c, buf, n, now) : TERN_ERR_INVALID;
  if (r >= 0) {
    r = tern_conn_write(c, buf, sizeof(buf), now);
    r = r > 0 ? 0 : TERN_ERR_STATE;
  }
  if (r != 0) {
    tern_conn_del(c);
    return (int)r;
  }
  *pc = c;
  return 0;
}

/* bench_ack acknowledges everything up to |seq| on |c|: 0 or an error. */
static inline int bench_ack(tern_conn *c, uint64_t seq, tern_tstamp now) {
  uint8_t buf[32];
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_ACK;
  f.u.ack_seq = seq;
  size_t n = wire_frame_encode(buf, sizeof(buf), &f);
  tern_ssize r = n ? tern_conn_read(c, buf, n, now) : TERN_ERR_INVALID;
  return r < 0 ? (int)r : 0;
}

#endif
