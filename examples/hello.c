/*
 * hello: a tour of libtern in one file.
 *
 * The program embeds a hub and, on the other end of the wire, a tern_client
 * for the receiver "alice", in one process: no socket, no thread, no clock.
 * Time is a variable the program moves forward, and the link between the two
 * is a pair of byte buffers.  Only the public header is used, as in any
 * program built against the installed library.
 *
 * The story: three messages are published for alice (a fourth replaces one
 * by its collapse key).  Her client connects, the hub sends highest priority
 * first, but the link is slow: only the first message arrives before her
 * train enters a tunnel and the link drops.  While she is away the replaced
 * score expires, and her client's reconnect attempts fail, each waiting a
 * little longer (backoff with jitter).  When the network comes back she
 * resumes: the hub first tells her what was lost, then sends the other
 * message again.  Her client acks in batches, and finally says goodbye.
 *
 * Every step prints what the hub and the client report; anything unexpected
 * exits with status 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern.h>

#define MS TERN_MILLISECONDS
#define KEY ((const uint8_t *)"alice")
#define KEYLEN ((size_t)5)

static const char *const prio_names[] = {"LOW", "NORMAL", "HIGH"};

static tern_hub *hub;
static tern_client *alice;
static tern_conn *conn;    /* the hub's end of alice's link, or NULL */
static tern_tstamp now;    /* the injected clock: the host's monotonic time */
static int network_up = 1; /* the tunnel turns it off */

/* The link: bytes written by one end, not yet read by the other. */
typedef struct byte_queue {
  uint8_t data[8192];
  size_t len;
} byte_queue;
static byte_queue to_alice, to_hub;

/* What alice's app saw, for the checks at the end. */
static char alice_log[256]; /* the ids of her messages, in order */
static uint64_t alice_gaps;

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

/* ---- the hub's side ------------------------------------------------------ */

/* Prints the hub's queued events.  Tracing is on, so every message's
   lifecycle shows up too.  A real host acts on the CONN_* ones; this one
   only has to notice the end of a connection. */
static void hub_events(void) {
  static const char *const names[] = {
      "?", "ACCEPTED", "SENT", "ACKED", "EXPIRED", "COLLAPSED", "EVICTED",
      "DEAD", "CONN_HELLO", "CONN_DEAD", "CONN_CLOSED", "SESSION_EXPIRED",
      "PERSISTED", "STORE_FAILED"};
  tern_event ev;
  int rc;
  while ((rc = tern_hub_next_event(hub, &ev)) == 1) {
    int known = ev.type > 0 && ev.type < (int)(sizeof(names) / sizeof(*names));
    const uint8_t *what = ev.msg_id ? ev.msg_id : ev.session_key;
    int whatlen = (int)(ev.msg_id ? ev.msg_idlen : ev.session_keylen);
    printf("    hub:   %-11s %.*s", known ? names[ev.type] : "(new kind)",
           whatlen, what ? (const char *)what : "");
    if (ev.type == TERN_EV_COLLAPSED) {
      printf(", replaced by %.*s", (int)ev.auxlen, (const char *)ev.aux);
    } else if (ev.type == TERN_EV_CONN_HELLO) {
      printf(", last_seq %" PRIu64, ev.seq);
    } else if (ev.seq) {
      printf(", seq %" PRIu64, ev.seq);
    }
    printf("\n");
  }
  check_rc(rc, "tern_hub_next_event");
}

static void publish(const char *id, int prio, const char *collapse_key,
                    tern_duration ttl, const char *payload) {
  /* Everything the descriptor points to is copied by the hub.  A ttl of 0
     means settings.default_ttl: "never" by default. */
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)id;
  d.idlen = strlen(id);
  d.collapse_key = (const uint8_t *)collapse_key;
  d.collapse_keylen = collapse_key ? strlen(collapse_key) : 0;
  d.priority = prio;
  d.ttl = ttl;
  d.payload = (const uint8_t *)payload;
  d.payloadlen = strlen(payload);
  tern_publish_result res;
  check_rc(tern_hub_publish(hub, KEY, KEYLEN, &d, now, &res), "publish");
  printf("  publish %-7s %-6s collapse key %-5s ttl %-4s -> %s%s\n", id,
         prio_names[prio], collapse_key ? collapse_key : "-",
         ttl ? "20 s" : "-", res.outcome & TERN_PUBLISH_QUEUED ? "QUEUED" : "?",
         res.outcome & TERN_PUBLISH_REPLACED ? ", REPLACED an older one" : "");
  hub_events();
}

/* ---- alice's side --------------------------------------------------------- */

/* Handles alice's client events; returns how many messages her app got. */
static int alice_events(void) {
  static const char *const drop_reasons[] = {"?", "expired", "overflow",
                                             "dead"};
  tern_client_event ev;
  int rc, messages = 0;
  while ((rc = tern_client_next_event(alice, &ev)) == 1) {
    switch (ev.type) {
    case TERN_CLIENT_EV_CONNECT:
      /* The client wants a transport.  A real app opens a socket and calls
         tern_client_connect once it is up (tcp_receiver.c does). */
      if (!network_up) {
        printf("    alice: CONNECT: no network, the attempt fails\n");
        check_rc(tern_client_conn_lost(alice, now), "tern_client_conn_lost");
        break;
      }
      printf("    alice: CONNECT: the link is up\n");
      check_rc(tern_conn_new(&conn, hub, now), "tern_conn_new");
      check_rc(tern_client_connect(alice, now), "tern_client_connect");
      break;
    case TERN_CLIENT_EV_CONNECTED:
      printf("    alice: CONNECTED%s\n",
             ev.count ? ", her stream RESUMED where it was" : "");
      break;
    case TERN_CLIENT_EV_MESSAGE:
      printf("    alice: MESSAGE seq %" PRIu64 " %-6s %-7.*s \"%.*s\"\n",
             ev.seq, prio_names[ev.priority], (int)ev.idlen,
             (const char *)ev.id, (int)ev.payloadlen,
             (const char *)ev.payload);
      size_t used = strlen(alice_log);
      snprintf(alice_log + used, sizeof(alice_log) - used, "%.*s ",
               (int)ev.idlen, (const char *)ev.id);
      ++messages;
      break;
    case TERN_CLIENT_EV_GAP:
      printf("    alice: GAP: %" PRIu64 " message(s) lost (%s): time to "
             "re-sync with the app's server\n", ev.count,
             ev.reason >= 1 && ev.reason <= 3 ? drop_reasons[ev.reason] : "?");
      alice_gaps += ev.count;
      break;
    case TERN_CLIENT_EV_RESYNC:
      printf("    alice: RESYNC: the hub lost its state\n");
      break;
    case TERN_CLIENT_EV_DISCONNECTED:
      printf("    alice: DISCONNECTED\n");
      break;
    case TERN_CLIENT_EV_GIVE_UP:
      printf("    alice: GIVE_UP after %" PRIu64 " attempts: the app waits "
             "for the network to come back\n", ev.count);
      break;
    default:
      break;
    }
  }
  check_rc(rc, "tern_client_next_event");
  return messages;
}

/* ---- the link ------------------------------------------------------------- */

/* alice -> hub: what her client has to say goes onto the link and, as this
   direction is fast, straight into the hub's connection.  Returns 0 once
   her client is closed and the link with it.  |closing|: her client says
   goodbye, and the host writes until tern_client_write says it is done. */
static int alice_send(int closing) {
  if (!closing && !tern_client_want_write(alice)) {
    return 1;
  }
  tern_ssize n = tern_client_write(alice, to_hub.data, sizeof(to_hub.data),
                                   now);
  if (n == TERN_ERR_CLOSED) {
    /* The goodbye is out: close the transport.  The hub heard the GOAWAY
       and reported CONN_CLOSED; its host deletes its end. */
    printf("  alice's client is closed: the link is closed\n");
    tern_conn_del(conn);
    conn = NULL;
    return 0;
  }
  check_rc(n, "tern_client_write");
  if (n > 0) {
    printf("  alice -> hub: %td bytes\n", n);
    check_rc(tern_conn_read(conn, to_hub.data, (size_t)n, now),
             "tern_conn_read");
    hub_events();
  }
  return 1;
}

/* hub -> alice: the host's write loop over the connections the hub marks
   ready (alice's is the only one here) puts bytes onto her link. */
static void hub_send(void) {
  tern_conn *ready;
  while ((ready = tern_hub_next_ready(hub)) != NULL) {
    tern_ssize n;
    while ((n = tern_conn_write(ready, to_alice.data + to_alice.len,
                                sizeof(to_alice.data) - to_alice.len,
                                now)) > 0) {
      printf("  hub -> alice: %td bytes\n", n);
      to_alice.len += (size_t)n;
    }
    check_rc(n, "tern_conn_write");
  }
  hub_events();
}

/* alice's client reads what arrived on her link.  |slow|: one byte at a
   time, stopping at her first message, as if the rest were still on its
   way (tern_client_read keeps a partial frame for the next call, so TCP may
   split frames anywhere).  Returns the number of bytes read. */
static size_t alice_receive(int slow) {
  size_t off = 0;
  while (off < to_alice.len) {
    size_t n = slow ? 1 : to_alice.len - off;
    check_rc(tern_client_read(alice, to_alice.data + off, n, now),
             "tern_client_read");
    off += n;
    if (alice_events() > 0 && slow) {
      break;
    }
  }
  memmove(to_alice.data, to_alice.data + off, to_alice.len - off);
  to_alice.len -= off;
  alice_events();
  return off;
}

/* Moves bytes both ways until neither end has anything to say. */
static void pump(void) {
  while (alice_send(0)) {
    hub_send();
    if (alice_receive(0) == 0 && !tern_client_want_write(alice)) {
      break;
    }
  }
}

/* The host's timer loop: sleep until the hub's or the client's next
   deadline (here: jump there), handle it, act on the events. */
static void run_until(tern_tstamp until) {
  for (int rounds = 0;; ++rounds) {
    check(rounds < 100, "timers settle");
    tern_tstamp next = tern_hub_get_expiry(hub);
    tern_tstamp client_next = tern_client_get_expiry(alice);
    if (client_next < next) {
      next = client_next;
    }
    if (next > until) {
      break;
    }
    if (next > now) {
      now = next;
    }
    check_rc(tern_hub_handle_expiry(hub, now), "tern_hub_handle_expiry");
    check_rc(tern_client_handle_expiry(alice, now),
             "tern_client_handle_expiry");
    printf("  [t=%2" PRIu64 ".%03" PRIu64 "s] a deadline passed\n",
           now / TERN_SECONDS, now % TERN_SECONDS / MS);
    hub_events();
    alice_events();
    if (conn) {
      pump();
    }
  }
  now = until;
}

static tern_stats print_stats(void) {
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  printf("  hub: published %" PRIu64 ", collapsed %" PRIu64 ", sent %" PRIu64
         " (resent %" PRIu64 "), acked %" PRIu64 ", expired %" PRIu64
         ", DROPPED notices %" PRIu64 "; holding %" PRIu64 "\n",
         st.published, st.collapsed, st.sent, st.resent, st.acked, st.expired,
         st.dropped_notices, st.messages);
  return st;
}

int main(void) {
  tern_settings set;
  tern_settings_default(&set);
  set.trace = 1;     /* lifecycle events for every message */
  set.seed = 0x7e12; /* a real server seeds randomly; fixed, a run replays */
  check_rc(tern_hub_new(&hub, &set, NULL), "tern_hub_new");
  printf("libtern %s: one hub and one receiver, all in memory\n",
         tern_version());

  step("1. publish for alice (her session is created on the way)");
  publish("alert-1", TERN_PRIO_HIGH, NULL, 0, "Maintenance at 02:00 UTC");
  publish("chat-1", TERN_PRIO_NORMAL, NULL, 0, "bob: lunch at noon?");
  publish("score-1", TERN_PRIO_LOW, "score", 0, "Terns 0 - 0 Gulls");
  /* Same collapse key, and score-1 is not sent yet: it is replaced.  A
     score is worthless after a while, so this one has a TTL too. */
  publish("score-2", TERN_PRIO_LOW, "score", 20 * TERN_SECONDS,
          "Terns 1 - 0 Gulls");

  now = 10 * MS;
  step("2. alice's client starts and asks for a link; the hub sends highest "
       "priority first, but the link is slow");
  tern_client_settings cs;
  tern_client_settings_default(&cs);
  cs.seed = 0xa11ce; /* jitter; fixed, a run replays */
  check_rc(tern_client_new(&alice, KEY, KEYLEN, NULL, 0, &cs, NULL, now),
           "tern_client_new");
  alice_events(); /* CONNECT */
  alice_send(0); /* HELLO */
  hub_send();    /* WELCOME and the messages */
  alice_receive(1);
  printf("  (%zu bytes, the rest of the stream, are still on their way)\n",
         to_alice.len);
  check(strcmp(alice_log, "alert-1 ") == 0, "first delivery");

  now = 50 * MS;
  step("3. alice's app handles alert-1; her client acks it now instead of "
       "waiting for a batch");
  check_rc(tern_client_ack(alice, 1, now), "tern_client_ack");
  alice_send(0);

  now = 1 * TERN_SECONDS;
  step("4. a tunnel: the link drops with the rest of the stream on it");
  printf("  %zu bytes lost\n", to_alice.len);
  to_alice.len = 0;
  network_up = 0;
  /* Both hosts notice: the hub's deletes the connection (its in-flight
     messages go back to alice's queue, keeping their priority), alice's
     tells her client, which schedules a reconnect. */
  tern_conn_del(conn);
  conn = NULL;
  check_rc(tern_client_conn_lost(alice, now), "tern_client_conn_lost");
  tern_session_info info;
  tern_session_get_info(tern_hub_find_session(hub, KEY, KEYLEN), &info,
                        sizeof(info));
  printf("  the hub holds %" PRIu32 " messages for alice\n", info.pending);
  check(info.pending == 2, "messages returned to the queue");

  step("5. in the tunnel: score-2 expires, reconnects fail and back off");
  run_until(25 * TERN_SECONDS);

  step("6. out of the tunnel: the app connects at once, without waiting "
       "for the backoff");
  network_up = 1;
  check_rc(tern_conn_new(&conn, hub, now), "tern_conn_new");
  check_rc(tern_client_connect(alice, now), "tern_client_connect");
  pump();
  check(alice_gaps == 1, "one message reported lost");
  check(strcmp(alice_log, "alert-1 chat-1 ") == 0, "redelivery");

  step("7. no more messages: the client acks after ack_delay (1 s)");
  run_until(now + 1500 * MS);

  step("8. alice says goodbye");
  check_rc(tern_client_close(alice, now), "tern_client_close");
  for (int i = 0; alice_send(1); ++i) {
    check(i < 3, "the goodbye ends");
  }
  hub_events();
  tern_stats st = print_stats();
  check(st.published == 4 && st.collapsed == 1 && st.acked == 2 &&
            st.expired == 1 && st.messages == 0,
        "final stats");
  tern_client_stats cst;
  tern_client_get_stats(alice, &cst, sizeof(cst));
  printf("  alice: %" PRIu64 " delivered, %" PRIu64 " duplicates, %" PRIu64
         " lost, %" PRIu64 " reconnects, %" PRIu64 " ACKs sent\n",
         cst.delivered, cst.duplicates, cst.gaps, cst.reconnects,
         cst.acks_sent);
  check(cst.delivered == 2 && cst.duplicates == 0, "client stats");

  tern_client_del(alice);
  tern_hub_del(hub);
  printf("\ndone: every message was delivered once, replaced, or reported "
         "lost\n");
  return 0;
}
