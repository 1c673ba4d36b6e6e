/*
 * framing_tool: writes the body of one one-way connection to stdout, for
 * framing_oracle_test.py (real parsers check it).
 *
 *   framing_tool sse|ndjson|poll CAP < messages
 *
 * Each input line is "PRIO ID_HEX CT_HEX PAYLOAD_HEX" ("-" for empty).
 * The tool publishes them all to one session, opens the connection (SSE
 * with a retry hint of 1500 ms; heartbeats every 1 s), writes with a
 * buffer of CAP bytes, then lets a heartbeat fall due and writes again,
 * then (but for polls, which end by themselves) says goodbye with a retry
 * hint of 2500 ms and writes until the connection is closed.  The first
 * line of stderr is the hub's epoch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

#define T0 ((tern_tstamp)1000 * TERN_SECONDS)

static size_t unhex(const char *h, uint8_t *out) {
  if (strcmp(h, "-") == 0) {
    return 0;
  }
  size_t n = strlen(h) / 2;
  for (size_t i = 0; i < n; ++i) {
    unsigned v;
    sscanf(h + 2 * i, "%2x", &v);
    out[i] = (uint8_t)v;
  }
  return n;
}

static void drain(tern_conn *c, size_t cap, tern_tstamp now) {
  static uint8_t buf[1 << 20];
  tern_ssize n;
  while ((n = tern_conn_write(c, buf, cap, now)) > 0) {
    fwrite(buf, 1, (size_t)n, stdout);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: framing_tool sse|ndjson|poll CAP\n");
    return 2;
  }
  int framing = strcmp(argv[1], "sse") == 0      ? TERN_FRAMING_SSE
                : strcmp(argv[1], "ndjson") == 0 ? TERN_FRAMING_NDJSON
                                                 : TERN_FRAMING_POLL;
  size_t cap = (size_t)atol(argv[2]);
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 42;
  s.inflight_window = 100000;
  s.max_pending = 100000;
  tern_hub *hub;
  if (tern_hub_new(&hub, &s, NULL) != 0) {
    return 1;
  }
  fprintf(stderr, "%llu\n", (unsigned long long)tern_hub_get_epoch(hub));
  static char line[1 << 18];
  static uint8_t id[256], ct[256], payload[1 << 17];
  static char ct_str[257];
  while (fgets(line, sizeof line, stdin)) {
    int prio;
    static char idh[600], cth[600], ph[1 << 18];
    if (sscanf(line, "%d %599s %599s %262143s", &prio, idh, cth, ph) != 4) {
      continue;
    }
    tern_msg_desc d;
    memset(&d, 0, sizeof d);
    d.priority = prio;
    d.id = id;
    d.idlen = unhex(idh, id);
    size_t ctlen = unhex(cth, ct);
    memcpy(ct_str, ct, ctlen);
    ct_str[ctlen] = 0;
    d.content_type = ctlen ? ct_str : NULL;
    d.payload = payload;
    d.payloadlen = unhex(ph, payload);
    int rv = tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL);
    if (rv != 0) {
      fprintf(stderr, "publish: %s\n", tern_strerror(rv));
      return 1;
    }
  }
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = framing;
  o.key = (const uint8_t *)"k";
  o.keylen = 1;
  o.retry = 1500 * TERN_MILLISECONDS;
  o.heartbeat_interval = TERN_SECONDS;
  tern_conn *c;
  if (tern_conn_new_stream(&c, hub, &o, T0) != 0) {
    return 1;
  }
  drain(c, cap, T0);
  if (framing != TERN_FRAMING_POLL) {
    tern_hub_handle_expiry(hub, T0 + 2 * TERN_SECONDS);
    drain(c, cap, T0 + 2 * TERN_SECONDS);
    tern_conn_goaway(c, TERN_GOAWAY_RESTART, 2500 * TERN_MILLISECONDS,
                     T0 + 2 * TERN_SECONDS);
    drain(c, cap, T0 + 2 * TERN_SECONDS);
  }
  tern_conn_del(c);
  tern_hub_del(hub);
  return 0;
}
