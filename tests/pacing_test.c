/*
 * Paced fan-out: a broadcast to 100,000 members goes out at topic_rate,
 * the hub's expiry reports the refill, and a HIGH direct message reaches
 * a member within one write while the broadcast waits.
 */
#include "tap.h"
#include "testutil.h"

#define MEMBERS 100000

/* Writes every ready connection once; returns the MSG frames written. */
static uint64_t pump(tern_hub *hub, tern_tstamp now) {
  static uint8_t buf[65536];
  uint64_t before = tu_stats(hub).sent;
  for (tern_conn *c; (c = tern_hub_next_ready(hub));) {
    while (tern_conn_write(c, buf, sizeof(buf), now) > 0) {
    }
  }
  return tu_stats(hub).sent - before;
}

/* The MSG frames in |p|, by payload: 1 when |payload| is first. */
static int first_msg_is(const uint8_t *p, size_t len, const char *payload,
                        int *nmsgs) {
  int first = -1;
  *nmsgs = 0;
  while (len > 0) {
    wire_frame f;
    tern_ssize n = wire_frame_decode(&f, p, len, (size_t)1 << 30);
    if (n <= 0) {
      break;
    }
    if (f.type == WIRE_MSG) {
      if (first < 0) {
        first = f.u.msg.payloadlen == strlen(payload) &&
                memcmp(f.u.msg.payload, payload, f.u.msg.payloadlen) == 0;
      }
      ++*nmsgs;
    }
    p += n;
    len -= (size_t)n;
  }
  return first == 1;
}

int main(void) {
  tern_settings s = tu_settings();
  s.topic_rate = 1000;
  s.topic_burst = 100;
  s.session_ttl = SEC(3600);
  s.liveness_timeout = SEC(3600);
  s.heartbeat_interval = SEC(1000);
  s.max_heartbeat = SEC(1000);
  tern_hub *hub = tu_hub(&s);
  tern_topic *t = NULL;
  CHECK_INT(tern_hub_create_topic(hub, "all", NULL, T0, &t), 0, "topic");
  static tern_conn *conns[MEMBERS];
  char key[16];
  for (int i = 0; i < MEMBERS; ++i) {
    snprintf(key, sizeof(key), "m%06d", i);
    conns[i] = tu_connect(hub, key, T0, NULL);
    tern_hub_subscribe(hub, (const uint8_t *)key, strlen(key), "all", NULL,
                       T0, NULL);
  }
  pump(hub, T0); /* the WELCOMEs */
  CHECK_INT((int)tu_stats(hub).members, MEMBERS, "100,000 members");
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"broadcast";
  d.payloadlen = 9;
  tern_topic_publish(t, &d, T0, NULL);
  CHECK_INT((int)pump(hub, T0), 100, "the burst goes out, then it waits");
  tern_tstamp exp = tern_hub_get_expiry(hub);
  CHECK(exp > T0 && exp <= T0 + MS(1),
        "the hub's expiry is the refill (%" PRIu64 " ns)", exp - T0);
  /* A member still waiting for the broadcast gets a HIGH direct message
     in one write. */
  int waiting = MEMBERS - 1;
  snprintf(key, sizeof(key), "m%06d", waiting);
  tu_pub(hub, key, TERN_PRIO_HIGH, NULL, "urgent", T0);
  tern_conn *next = tern_hub_next_ready(hub);
  int found = 0;
  while (next) {
    if (next == conns[waiting]) {
      found = 1;
    }
    next = tern_hub_next_ready(hub);
  }
  CHECK(found, "its connection is ready though the broadcast waits");
  uint8_t buf[4096];
  tern_ssize n = tern_conn_write(conns[waiting], buf, sizeof(buf), T0);
  int nmsgs = 0;
  CHECK(n > 0 && first_msg_is(buf, (size_t)n, "urgent", &nmsgs) &&
            nmsgs == 1,
        "the HIGH message in one write, the paced one not with it");
  /* A second later the bucket allows 1000 more (burst 100 at a time). */
  tern_tstamp now = T0;
  uint64_t sent = 0;
  for (int i = 0; i < 1000 && sent < 1000; ++i) {
    now += MS(1);
    tern_hub_handle_expiry(hub, now);
    sent += pump(hub, now);
  }
  CHECK(sent >= 900 && sent <= 1100 && now <= T0 + SEC(1) + MS(1),
        "about topic_rate a second (%" PRIu64 " by +%" PRIu64 " ms)", sent,
        (now - T0) / TERN_MILLISECONDS);
  /* The rest, 100 (the burst) a tick. */
  for (int i = 0; i < 2000 && tu_stats(hub).sent < MEMBERS + 1; ++i) {
    now += MS(100);
    tern_hub_handle_expiry(hub, now);
    pump(hub, now);
  }
  CHECK(tu_stats(hub).sent == MEMBERS + 1, "every member got it in the end");
  for (int i = 0; i < MEMBERS; ++i) {
    tern_conn_del(conns[i]);
  }
  tu_events_drain(hub);
  tern_hub_del(hub);
  return tap_done();
}
