/*
 * hello: a tour of libtern in one file.
 *
 * The program embeds a hub and plays a receiver, "alice", against it in
 * memory: no socket, no thread, no clock.  Time is a variable moved forward
 * by hand, the link is a byte buffer, and alice encodes and decodes frames
 * with the codec of lib/wire/frame.h (libtern's receiver state machine will
 * take over that part).
 *
 * The story: three messages are published for alice (a fourth replaces one
 * by its collapse key); alice connects, the hub sends them highest priority
 * first, alice handles and acks the first, and her link drops while the
 * other two are still on their way.  One of them expires while she is away,
 * so when she resumes the hub first says what was dropped, then sends the
 * other one again with a new seq.  Tracing is on: every step also prints
 * the hub's lifecycle events.  Anything unexpected exits with status 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"
#include "wire/frame.h"

#define MS TERN_MILLISECONDS
#define KEY ((const uint8_t *)"alice")
#define KEYLEN ((size_t)5)

static const char *const prio_names[] = {"LOW", "NORMAL", "HIGH"};

static tern_hub *hub;
static tern_tstamp now; /* the injected clock: the host's monotonic time */

/* The hub -> alice direction of the link: frames written, not yet read. */
static uint8_t link_buf[4096];
static size_t link_off, link_len;

/* What alice keeps: the hub's epoch and the last seq she received. */
static uint64_t alice_epoch, alice_last_seq, alice_flags, alice_dropped;
static char alice_log[256]; /* "seq:id " per MSG she read, for the checks */

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "hello: unexpected: %s\n", what);
    exit(1);
  }
}

static void check_rc(tern_ssize rc, const char *call) {
  if (rc < 0) {
    fprintf(stderr, "hello: %s: %s\n", call, tern_strerror((int)rc));
    exit(1);
  }
}

static void step(const char *title) {
  printf("\n[t=%2" PRIu64 ".%03" PRIu64 "s] %s\n", now / TERN_SECONDS,
         now % TERN_SECONDS / MS, title);
}

/* Prints the hub's queued events; |expect| lists their types, ending in 0. */
static void events(const int *expect) {
  static const char *const names[] = {
      "?", "ACCEPTED", "SENT", "ACKED", "EXPIRED", "COLLAPSED", "EVICTED",
      "DEAD", "CONN_HELLO", "CONN_DEAD", "CONN_CLOSED", "SESSION_EXPIRED"};
  tern_event ev;
  int rc;
  while ((rc = tern_hub_next_event(hub, &ev)) == 1) {
    check(ev.type == *expect++, "event type");
    const uint8_t *what = ev.msg_id ? ev.msg_id : ev.session_key;
    int whatlen = (int)(ev.msg_id ? ev.msg_idlen : ev.session_keylen);
    printf("    event  %-10s %.*s", names[ev.type], whatlen,
           what ? (const char *)what : "");
    if (ev.type == TERN_EV_COLLAPSED) {
      printf(", replaced by %.*s", (int)ev.auxlen, (const char *)ev.aux);
    } else if (ev.type == TERN_EV_CONN_HELLO) {
      printf(", last_seq %" PRIu64, ev.seq);
    } else if (ev.seq) {
      printf(", seq %" PRIu64, ev.seq);
    }
    printf("\n");
  }
  check(rc == 0 && *expect == 0, "events missing");
}

static void publish(const char *id, int prio, const char *collapse_key,
                    tern_duration ttl, const char *payload, uint32_t want) {
  /* Everything the descriptor points to is copied by the hub.  A ttl of 0
     means settings.default_ttl: "never" by default. */
  tern_msg_desc d = {.id = (const uint8_t *)id, .idlen = strlen(id),
                     .collapse_key = (const uint8_t *)collapse_key,
                     .collapse_keylen = collapse_key ? strlen(collapse_key) : 0,
                     .priority = prio, .ttl = ttl,
                     .payload = (const uint8_t *)payload,
                     .payloadlen = strlen(payload)};
  tern_publish_result res;
  check_rc(tern_hub_publish(hub, KEY, KEYLEN, &d, now, &res), "publish");
  char ttl_text[24] = "-";
  if (ttl) {
    snprintf(ttl_text, sizeof(ttl_text), "%" PRIu64 " s", ttl / TERN_SECONDS);
  }
  printf("  publish %-7s %-6s collapse key %-5s ttl %-4s -> %s%s\n", id,
         prio_names[prio], collapse_key ? collapse_key : "-", ttl_text,
         res.outcome & TERN_PUBLISH_QUEUED ? "QUEUED" : "",
         res.outcome & TERN_PUBLISH_REPLACED ? ", REPLACED an older one" : "");
  check(res.outcome == want, "publish outcome");
}

/* alice -> hub: encode a frame and hand its bytes to the connection. */
static void alice_send(tern_conn *conn, wire_frame *f) {
  uint8_t buf[256];
  size_t n = wire_frame_encode(buf, sizeof(buf), f);
  check(n > 0, "frame encode");
  tern_ssize rc = tern_conn_read(conn, buf, n, now);
  check_rc(rc, "tern_conn_read");
  check(rc == (tern_ssize)n, "tern_conn_read consumed everything");
}

static void alice_hello(tern_conn *conn) {
  /* last_seq acks everything up to it; epoch 0: she knows none yet. */
  wire_frame f = {.type = WIRE_HELLO,
                  .u.hello = {.version = WIRE_VERSION,
                              .last_seq = alice_last_seq,
                              .epoch = alice_epoch, .key = KEY,
                              .keylen = KEYLEN}};
  printf("  alice -> hub: HELLO key alice, last_seq %" PRIu64
         ", epoch %016" PRIx64 "\n", alice_last_seq, alice_epoch);
  alice_send(conn, &f);
}

static void alice_ack(tern_conn *conn, uint64_t seq) {
  wire_frame f = {.type = WIRE_ACK, .u.ack_seq = seq}; /* cumulative */
  printf("  alice -> hub: ACK %" PRIu64 "\n", seq);
  alice_send(conn, &f);
}

/* The host's write loop: each connection the hub marks ready writes what
   it has onto its link (alice's, the only one here). */
static void flush(void) {
  tern_conn *conn;
  while ((conn = tern_hub_next_ready(hub)) != NULL) {
    tern_ssize n;
    while ((n = tern_conn_write(conn, link_buf + link_len,
                                sizeof(link_buf) - link_len, now)) > 0) {
      printf("  tern_conn_write: %td bytes onto alice's link\n", n);
      link_len += (size_t)n;
    }
    check_rc(n, "tern_conn_write");
  }
}

/* Takes the next frame off the link; 0 when it is empty.  |f| points into
   link_buf until then. */
static int link_next(wire_frame *f) {
  if (link_off == link_len) {
    link_off = link_len = 0;
    return 0;
  }
  tern_ssize n = wire_frame_decode(f, link_buf + link_off, link_len - link_off,
                                   sizeof(link_buf));
  check_rc(n, "wire_frame_decode");
  check(n > 0, "whole frames on the link");
  link_off += (size_t)n;
  return 1;
}

static void print_msg(const char *who, const wire_msg *m) {
  printf("  %s: MSG seq %" PRIu64 " %-6s id %-7.*s \"%.*s\"", who, m->seq,
         prio_names[m->priority], (int)m->idlen, (const char *)m->id,
         (int)m->payloadlen, (const char *)m->payload);
  if (m->ttl_ms) {
    printf(", expires in %" PRIu64 " ms", m->ttl_ms);
  }
  printf("\n");
}

/* alice reads frames until she has read |max_msgs| MSGs or the link is
   empty. */
static void alice_read(int max_msgs) {
  static const char *const reasons[] = {"?", "expired", "overflow", "dead"};
  wire_frame f;
  while (max_msgs > 0 && link_next(&f)) {
    if (f.type == WIRE_WELCOME) {
      alice_epoch = f.u.welcome.epoch; /* a new epoch would mean: re-sync */
      alice_flags = f.u.welcome.flags;
      printf("  hub -> alice: WELCOME epoch %016" PRIx64 "%s%s, heartbeat %"
             PRIu64 " ms, window %" PRIu64 "\n", alice_epoch,
             alice_flags & WIRE_WELCOME_RESUMED ? ", RESUMED" : "",
             alice_flags & WIRE_WELCOME_EXISTED ? ", EXISTED" : "",
             f.u.welcome.heartbeat_ms, f.u.welcome.window);
    } else if (f.type == WIRE_DROPPED) {
      check(f.u.dropped.reason >= 1 && f.u.dropped.reason <= 3, "reason");
      alice_dropped += f.u.dropped.count;
      printf("  hub -> alice: DROPPED %" PRIu64 " (%s): time to re-sync\n",
             f.u.dropped.count, reasons[f.u.dropped.reason]);
    } else {
      check(f.type == WIRE_MSG, "frame type");
      check(f.u.msg.seq > alice_last_seq, "seq goes up");
      alice_last_seq = f.u.msg.seq;
      print_msg("hub -> alice", &f.u.msg);
      size_t used = strlen(alice_log);
      snprintf(alice_log + used, sizeof(alice_log) - used, "%" PRIu64 ":%.*s ",
               f.u.msg.seq, (int)f.u.msg.idlen, (const char *)f.u.msg.id);
      --max_msgs;
    }
  }
}

static tern_session_info session_info(void) {
  tern_session_info info;
  tern_session_get_info(tern_hub_find_session(hub, KEY, KEYLEN), &info,
                        sizeof(info));
  return info;
}

static tern_stats print_stats(void) {
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  printf("  stats: published %" PRIu64 ", collapsed %" PRIu64 ", sent %"
         PRIu64 " (resent %" PRIu64 "), acked %" PRIu64 ", expired %" PRIu64
         ", DROPPED notices %" PRIu64 "; holding %" PRIu64 " (%" PRIu64
         " in flight)\n", st.published, st.collapsed, st.sent, st.resent,
         st.acked, st.expired, st.dropped_notices, st.messages, st.inflight);
  return st;
}

int main(void) {
  tern_settings set;
  tern_settings_default(&set);
  set.trace = 1;     /* lifecycle events for every message */
  set.seed = 0x7e12; /* a real server seeds randomly; fixed, a run replays */
  check_rc(tern_hub_new(&hub, &set, NULL), "tern_hub_new");
  printf("libtern %s: one hub, one receiver, all in memory\n", tern_version());

  step("1. publish for alice (her session is created on the way)");
  publish("alert-1", TERN_PRIO_HIGH, NULL, 0, "Maintenance at 02:00 UTC",
          TERN_PUBLISH_QUEUED);
  publish("chat-1", TERN_PRIO_NORMAL, NULL, 0, "bob: lunch at noon?",
          TERN_PUBLISH_QUEUED);
  publish("score-1", TERN_PRIO_LOW, "score", 0, "Terns 0 - 0 Gulls",
          TERN_PUBLISH_QUEUED);
  /* Same collapse key, and score-1 is not sent yet: it is replaced.  A
     score is worthless after a while, so this one has a TTL too. */
  publish("score-2", TERN_PRIO_LOW, "score", 30 * TERN_SECONDS,
          "Terns 1 - 0 Gulls", TERN_PUBLISH_QUEUED | TERN_PUBLISH_REPLACED);
  events((const int[]){TERN_EV_ACCEPTED, TERN_EV_ACCEPTED, TERN_EV_ACCEPTED,
                       TERN_EV_ACCEPTED, TERN_EV_COLLAPSED, 0});

  now = 10 * MS;
  step("2. alice connects; the hub sends highest priority first");
  tern_conn *conn;
  check_rc(tern_conn_new(&conn, hub, now), "tern_conn_new");
  alice_hello(conn);
  flush();
  events((const int[]){TERN_EV_CONN_HELLO, TERN_EV_SENT, TERN_EV_SENT,
                       TERN_EV_SENT, 0});
  alice_read(1); /* the link is slow: only the WELCOME and seq 1 arrive */
  printf("  (seq 2 and 3 are still on their way)\n");
  check(alice_epoch == tern_hub_get_epoch(hub), "epoch");
  check(alice_flags == WIRE_WELCOME_EXISTED, "WELCOME flags");
  check(strcmp(alice_log, "1:alert-1 ") == 0, "first delivery");

  now = 50 * MS;
  step("3. alice handles seq 1 and acks it");
  alice_ack(conn, 1);
  events((const int[]){TERN_EV_ACKED, 0});
  check(print_stats().acked == 1, "acked");

  now = 1 * TERN_SECONDS;
  step("4. the link drops: seq 2 and 3 are lost on the way");
  wire_frame f;
  int lost = 0;
  for (; link_next(&f); ++lost) {
    check(f.type == WIRE_MSG, "only MSG frames left");
    print_msg("lost", &f.u.msg);
  }
  check(lost == 2, "two frames lost");
  /* The host noticed (had it not, the liveness timeout would have told it
     with TERN_EV_CONN_DEAD).  Deleting the connection puts its in-flight
     messages back in alice's queue, keeping their priority. */
  tern_conn_del(conn);
  tern_session_info info = session_info();
  printf("  tern_conn_del: alice's session holds %" PRIu32 " pending, %" PRIu32
         " in flight\n", info.pending, info.inflight);
  check(info.pending == 2 && info.inflight == 0, "messages returned");
  events((const int[]){0});

  now = tern_hub_get_expiry(hub); /* the host sleeps until the next deadline */
  step("5. tern_hub_get_expiry says: handle score-2's TTL now");
  check(now == 30 * TERN_SECONDS, "next deadline");
  check_rc(tern_hub_handle_expiry(hub, now), "tern_hub_handle_expiry");
  events((const int[]){TERN_EV_EXPIRED, 0});
  info = session_info();
  printf("  alice's session: %" PRIu32 " pending, %" PRIu64 " dropped\n",
         info.pending, info.dropped);
  check(info.pending == 1 && info.dropped == 1, "one expired");

  now = 45 * TERN_SECONDS;
  step("6. alice resumes with her last seq and the epoch she knows");
  check_rc(tern_conn_new(&conn, hub, now), "tern_conn_new");
  alice_hello(conn);
  flush();
  events((const int[]){TERN_EV_CONN_HELLO, TERN_EV_SENT, 0});
  alice_read(INT32_MAX);
  check(alice_flags == (WIRE_WELCOME_RESUMED | WIRE_WELCOME_EXISTED),
        "WELCOME RESUMED");
  check(alice_dropped == 1, "DROPPED notice");
  check(strcmp(alice_log, "1:alert-1 4:chat-1 ") == 0, "redelivery");

  now += 50 * MS;
  step("7. alice acks everything");
  alice_ack(conn, alice_last_seq);
  events((const int[]){TERN_EV_ACKED, 0});
  tern_stats st = print_stats();
  check(st.published == 4 && st.collapsed == 1 && st.sent == 4 &&
            st.resent == 1 && st.acked == 2 && st.expired == 1 &&
            st.dropped_notices == 1 && st.messages == 0 && st.inflight == 0,
        "final stats");

  tern_conn_del(conn);
  tern_hub_del(hub);
  printf("\ndone: each message was delivered, replaced or reported dropped\n");
  return 0;
}
