/*
 * tcp_receiver: a tern_client over TCP in one file.
 *
 *   tcp_receiver --key KEY [--port PORT] [--expect N] [--manual-ack]
 *
 * Connects to a server on 127.0.0.1:PORT (7400) as the receiver of session
 * KEY, prints every message ("got <id> seq <seq>") and checks it: the
 * payload must be "<id> for <KEY>", as tcp_server's generator writes it, and
 * no id may arrive twice.  When the server goes away the client reconnects
 * with its backoff (full jitter, never giving up) and resumes where it
 * was.  It stops after N distinct messages (--expect), or at SIGTERM or
 * SIGINT, says goodbye to the server, prints a summary and exits with
 * status 0, or 1 if a message was duplicated or damaged.
 *
 * The host's part, as in any tern_client program: open a transport when the
 * client asks (TERN_CLIENT_EV_CONNECT), call tern_client_connect once it is
 * up, move bytes with tern_client_read and tern_client_peek_output (the
 * client keeps what the socket did not take until tern_client_consume),
 * report a broken transport with tern_client_conn_lost, and sleep until
 * tern_client_get_expiry.  The client owns the rest: HELLO with the last
 * seq, dedup by message id, batched acks, liveness, backoff.
 *
 * Acks: by default a message counts as processed once
 * tern_client_next_event returned it (auto ack).  With --manual-ack the app
 * acks each message with tern_client_ack after handling it, the pattern for
 * receivers that must not lose a message they crashed while handling: an
 * unacked message is sent again after a reconnect.
 */
#define _GNU_SOURCE /* ppoll */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tern.h>

static tern_client *client;
static int fd = -1;         /* the TCP socket, or -1 */
static int connecting;      /* connect() in progress */
static volatile sig_atomic_t stop;

/* The app's own view, to check what the client promises. */
static const char *key;
static uint64_t received, duplicates, damaged, lost;
static unsigned char *seen; /* seen[n]: message m<n> arrived */
static size_t seen_cap;
static int manual_ack;

static tern_tstamp mono_now(void) {
  /* No store on this side, so any monotonic clock will do. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (tern_tstamp)ts.tv_sec * TERN_SECONDS + (tern_tstamp)ts.tv_nsec;
}

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

/* ---- the transport -------------------------------------------------------- */

static void transport_close(void) {
  if (fd >= 0) {
    close(fd);
  }
  fd = -1;
  connecting = 0;
}

/* The transport broke or could not be opened: tell the client, which
   schedules the next attempt with its backoff. */
static void transport_lost(tern_tstamp now) {
  transport_close();
  tern_client_conn_lost(client, now);
}

static void transport_open(uint16_t port, tern_tstamp now) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    transport_lost(now);
    return;
  }
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
    tern_client_connect(client, now); /* queues HELLO */
  } else if (errno == EINPROGRESS) {
    connecting = 1; /* writable once it is up: see connect_done */
  } else {
    printf("connect: %s\n", strerror(errno));
    transport_lost(now);
  }
}

static void connect_done(tern_tstamp now) {
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    printf("connect: %s\n", strerror(err));
    transport_lost(now);
    return;
  }
  connecting = 0;
  tern_client_connect(client, now);
}

/* Sends what the client has to say while the socket takes it; the client
   keeps the rest.  A peek of TERN_ERR_CLOSED means the goodbye is out, and
   the DISCONNECTED event closes the socket. */
static void transport_write(tern_tstamp now) {
  const uint8_t *data;
  tern_ssize n;
  while (fd >= 0 && !connecting &&
         (n = tern_client_peek_output(client, &data, now)) > 0) {
    ssize_t sent = send(fd, data, (size_t)n, MSG_NOSIGNAL);
    if (sent < 0 &&
        (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return; /* POLLOUT tells when to go on */
    }
    if (sent < 0) {
      transport_lost(now);
      return;
    }
    tern_client_consume(client, (size_t)sent);
  }
}

static void transport_read(tern_tstamp now) {
  uint8_t buf[65536];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return;
  }
  if (n <= 0) {
    printf("connection lost\n");
    transport_lost(now);
    return;
  }
  /* A bad frame ends the connection: the client queues its one
     DISCONNECTED event, which closes the socket (handle_events). */
  tern_client_read(client, buf, (size_t)n, now);
}

/* ---- the app ----------------------------------------------------------- */

/* Checks a message against what tcp_server's generator sends. */
static void take_message(const tern_client_event *ev) {
  char want[160];
  uint64_t n = 0;
  int ok = ev->idlen > 1 && ev->idlen < 21 && ev->id[0] == 'm';
  for (size_t i = 1; ok && i < ev->idlen; ++i) {
    ok = ev->id[i] >= '0' && ev->id[i] <= '9';
    n = n * 10 + (uint64_t)(ev->id[i] - '0');
  }
  int wantlen = snprintf(want, sizeof(want), "%.*s for %s", (int)ev->idlen,
                         (const char *)ev->id, key);
  if (!ok || ev->payloadlen != (size_t)wantlen ||
      memcmp(ev->payload, want, ev->payloadlen) != 0 || n > 100000000) {
    printf("DAMAGED %.*s seq %" PRIu64 "\n", (int)ev->idlen,
           (const char *)ev->id, ev->seq);
    ++damaged;
    return;
  }
  if (n >= seen_cap) {
    size_t cap = seen_cap ? seen_cap : 1024;
    while (cap <= n) {
      cap *= 2;
    }
    unsigned char *grown = realloc(seen, cap);
    if (!grown) {
      perror("tcp_receiver");
      exit(1);
    }
    memset(grown + seen_cap, 0, cap - seen_cap);
    seen = grown;
    seen_cap = cap;
  }
  if (seen[n]) {
    printf("DUPLICATE m%" PRIu64 " seq %" PRIu64 "\n", n, ev->seq);
    ++duplicates;
    return;
  }
  seen[n] = 1;
  ++received;
  printf("got m%" PRIu64 " seq %" PRIu64 "\n", n, ev->seq);
}

static void handle_events(uint16_t port, tern_tstamp now) {
  tern_client_event ev;
  while (tern_client_next_event(client, &ev) == 1) {
    switch (ev.type) {
    case TERN_CLIENT_EV_CONNECT:
      transport_open(port, now);
      break;
    case TERN_CLIENT_EV_CONNECTED:
      printf("connected%s\n", ev.count ? ", resumed" : "");
      break;
    case TERN_CLIENT_EV_MESSAGE:
      take_message(&ev);
      if (manual_ack) {
        /* Handled (printed): only now may the server forget it. */
        tern_client_ack(client, ev.seq, now);
      }
      break;
    case TERN_CLIENT_EV_GAP:
      printf("GAP %" PRIu64 " lost (reason %d)\n", ev.count, ev.reason);
      lost += ev.count;
      break;
    case TERN_CLIENT_EV_RESYNC:
      /* The server lost its state: a real app re-syncs from its source of
         truth.  The ids seen so far stay in |seen|. */
      printf("RESYNC (reason %d)\n", ev.reason);
      break;
    case TERN_CLIENT_EV_DISCONNECTED:
      printf("disconnected (reason %d)\n", ev.reason);
      transport_close(); /* the reconnect is already scheduled */
      break;
    case TERN_CLIENT_EV_GIVE_UP: /* not with max_attempts 0 */
      printf("gave up after %" PRIu64 " attempts\n", ev.count);
      break;
    default:
      break;
    }
  }
}

static int poll_timeout(tern_tstamp deadline, tern_tstamp now) {
  if (deadline <= now) {
    return 0;
  }
  tern_duration d = deadline - now;
  return d > TERN_SECONDS
             ? 1000
             : (int)((d + TERN_MILLISECONDS - 1) / TERN_MILLISECONDS);
}

int main(int argc, char **argv) {
  unsigned long port = 7400;
  uint64_t expect = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--manual-ack") == 0) {
      manual_ack = 1;
    } else if (i + 1 < argc && strcmp(argv[i], "--key") == 0) {
      key = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port = strtoul(argv[++i], NULL, 10);
    } else if (i + 1 < argc && strcmp(argv[i], "--expect") == 0) {
      expect = strtoull(argv[++i], NULL, 10);
    } else {
      key = NULL;
      break;
    }
  }
  if (!key || !*key || port == 0 || port > 65535) {
    fprintf(stderr, "usage: tcp_receiver --key KEY [--port PORT] "
                    "[--expect N] [--manual-ack]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* SIGTERM and SIGINT are blocked except inside ppoll, so one that comes
     while the loop works still ends the next wait at once. */
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigset_t block, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &wait_mask);

  tern_client_settings cs;
  tern_client_settings_default(&cs);
  cs.backoff_base = 250 * TERN_MILLISECONDS; /* a server restart is quick */
  cs.backoff_cap = 4 * TERN_SECONDS;
  cs.max_attempts = 0; /* never give up */
  cs.manual_ack = manual_ack ? 1u : 0u;
  tern_tstamp now = mono_now();
  cs.seed = now ^ ((uint64_t)getpid() << 32);
  int rc = tern_client_new(&client, (const uint8_t *)key, strlen(key), NULL, 0,
                           &cs, NULL, now);
  if (rc != 0) {
    fprintf(stderr, "tcp_receiver: %s\n", tern_strerror(rc));
    return 1;
  }

  int closing = 0;
  tern_tstamp close_deadline = 0;
  for (;;) {
    now = mono_now();
    if ((stop || (expect && received >= expect)) && !closing) {
      /* Pending ACKs and a GOAWAY go out; no reconnect follows. */
      tern_client_close(client, now);
      closing = 1;
      close_deadline = now + TERN_SECONDS;
    }
    if (closing && (fd < 0 || now >= close_deadline)) {
      break;
    }
    handle_events((uint16_t)port, now);
    transport_write(now);
    handle_events((uint16_t)port, now); /* what writing ended, if anything */

    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (connecting || tern_client_want_write(client)) {
      pfd.events |= POLLOUT;
    }
    tern_tstamp deadline = tern_client_get_expiry(client);
    if (closing && close_deadline < deadline) {
      deadline = close_deadline;
    }
    int timeout = poll_timeout(deadline, now);
    struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000};
    int n = ppoll(&pfd, 1, &ts, &wait_mask); /* fd -1 is ignored */
    now = mono_now();
    if (n > 0 && fd >= 0) {
      if (connecting && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
        connect_done(now);
      } else if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
        transport_read(now);
      }
    }
    if (tern_client_get_expiry(client) <= now) {
      tern_client_handle_expiry(client, now);
    }
  }

  tern_client_stats st;
  tern_client_get_stats(client, &st, sizeof(st));
  printf("received %" PRIu64 " messages, %" PRIu64 " duplicates, %" PRIu64
         " damaged, %" PRIu64 " reported lost; the client dropped %" PRIu64
         " redeliveries, reconnected %" PRIu64 " times\n",
         received, duplicates, damaged, lost, st.duplicates, st.reconnects);
  transport_close();
  tern_client_del(client);
  free(seen);
  return duplicates || damaged ? 1 : 0;
}
