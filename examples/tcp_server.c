/*
 * tcp_server: a push server over TCP in one file.
 *
 *   tcp_server --dir DIR [--port PORT] [--count N] [--rate N] [--sessions N]
 *
 * An epoll loop on one thread embeds a hub with the shipped file store in
 * DIR.  Receivers connect to 127.0.0.1:PORT (7400) and speak the binary
 * framing of tern-protocol(7); tcp_receiver is one.
 *
 * A built-in generator stands for the producers: it publishes N messages
 * (--count, default 1000) with the ids m1, m2, ..., at most --rate per
 * second (0: as fast as the hub takes them), round-robin to the sessions
 * r0 .. r<S-1> (--sessions, default 1), each with TERN_MSG_SYNC: the hub
 * confirms it (TERN_EV_PERSISTED) only once the store has made it durable,
 * and only then does the server print "confirmed <id>".  Started again on
 * the same DIR, after a crash say, the generator walks from m1 again: the
 * hub restored its dedup ids from the store and refuses what it already
 * has as a duplicate, which is how a producer retries safely.
 *
 * What a host does, and where to find it here:
 *   - the clocks: every tern_tstamp comes from CLOCK_MONOTONIC (mono_now);
 *     the hub is told once what the wall clock reads at such a |now|
 *     (tern_hub_set_wallclock), so the store keeps expiries and dedup
 *     windows that stay right across restarts;
 *   - the store's sync thread: fdatasync runs off the loop (the option
 *     sync_thread), and the loop waits for the store's descriptor
 *     beside its sockets, handing finished batches back to the hub with
 *     tern_store_file_complete;
 *   - timers: epoll_wait sleeps until tern_hub_get_expiry, then
 *     tern_hub_handle_expiry runs what is due, which also hands the waiting
 *     batch to the store (main loop);
 *   - backpressure both ways: a connection's bytes are pulled from the hub
 *     only while its socket takes them (peer_flush, EPOLLOUT), and the
 *     generator waits when the hub rejects a publish for a full queue or
 *     when too many publishes wait for their confirmation (generate);
 *   - the end of a connection: EOF or an error on the socket deletes it at
 *     once; every other end (a bad frame, liveness, the client's goodbye,
 *     a newer stream of the same receiver) comes as exactly one
 *     TERN_EV_CONN_DEAD or TERN_EV_CONN_CLOSED event, after which the host
 *     writes out what tern_conn_write still gives until TERN_ERR_CLOSED,
 *     then deletes it (handle_events, peer_flush);
 *   - SIGTERM or SIGINT: GOAWAY to every receiver, the last batch flushed,
 *     the store closed (which fsyncs), exit status 0 (shutdown).
 *
 * Events and errors are printed one a line on stdout.
 */
#define _GNU_SOURCE /* accept4, SOCK_NONBLOCK, signalfd */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tern.h>

/* Bytes taken from the hub per connection at a time.  While they wait for
   the socket, the hub keeps the rest queued (bounded by max_pending). */
#define OUT_CAP 65536
/* At most this many publishes wait for their PERSISTED at once. */
#define MAX_UNCONFIRMED 4096

/* One receiver's TCP connection and its tern_conn. */
typedef struct peer {
  int fd;
  tern_conn *conn;
  int epollout;          /* EPOLLOUT armed: the socket was full */
  size_t off, len;       /* out[off..len) still to send */
  struct peer *prev, *next;
  uint8_t out[OUT_CAP];
} peer;

static tern_hub *hub;
static int epfd;
static peer *peers; /* every open connection, for the shutdown */

/* What epoll_event.data.ptr points to besides peers. */
static char listener_tag, signal_tag, store_tag;

/* The generator (the producer side of this example). */
static struct {
  uint64_t next;        /* the next id number to publish */
  uint64_t count;       /* the last id number */
  uint64_t rate;        /* per second; 0 unlimited */
  uint32_t sessions;
  tern_tstamp next_at;  /* when the next publish is allowed */
  uint64_t unconfirmed; /* published, PERSISTED not yet seen */
  int done_told;
} gen;

static uint64_t read_clock(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * TERN_SECONDS + (uint64_t)ts.tv_nsec;
}

/* The |now| of every call: it never jumps when the wall clock is set. */
static tern_tstamp mono_now(void) { return read_clock(CLOCK_MONOTONIC); }

static void die(const char *what, int code) {
  fprintf(stderr, "tcp_server: %s: %s\n", what,
          code ? tern_strerror(code) : strerror(errno));
  exit(1);
}

/* ---- connections ---------------------------------------------------------- */

static void watch(int fd, uint32_t events, void *ptr, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(epfd, op, fd, &ev) != 0) {
    die("epoll_ctl", 0);
  }
}

static void peer_del(peer *p) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, p->fd, NULL);
  close(p->fd);
  /* In-flight messages go back to their session, to be sent again when
     the receiver resumes. */
  tern_conn_del(p->conn);
  if (p->prev) {
    p->prev->next = p->next;
  } else {
    peers = p->next;
  }
  if (p->next) {
    p->next->prev = p->prev;
  }
  free(p);
}

/* Sends what the hub has for |p| while the socket takes it.  Returns 0, or
   -1 when |p| was deleted. */
static int peer_flush(peer *p, tern_tstamp now) {
  for (;;) {
    if (p->off < p->len) {
      ssize_t n = send(p->fd, p->out + p->off, p->len - p->off, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!p->epollout) { /* full: wait until it drains */
          watch(p->fd, EPOLLIN | EPOLLOUT, p, EPOLL_CTL_MOD);
          p->epollout = 1;
        }
        return 0;
      }
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        peer_del(p); /* the peer is gone */
        return -1;
      }
      p->off += (size_t)n;
      continue;
    }
    /* Everything sent: take more from the hub, and only now, so that a
       slow receiver's messages wait in the hub rather than here. */
    tern_ssize n = tern_conn_write(p->conn, p->out, OUT_CAP, now);
    if (n > 0) {
      p->off = 0;
      p->len = (size_t)n;
      continue;
    }
    if (n == TERN_ERR_CLOSED) { /* closed by the hub, everything written */
      peer_del(p);
      return -1;
    }
    if (n < 0) { /* TERN_ERR_NOMEM: nothing written; the hub hands the
                    connection back through tern_hub_next_ready after its
                    next tern_hub_handle_expiry */
      printf("write error: %s\n", tern_strerror((int)n));
    }
    if (p->epollout) {
      watch(p->fd, EPOLLIN, p, EPOLL_CTL_MOD);
      p->epollout = 0;
    }
    return 0;
  }
}

static void peer_read(peer *p, tern_tstamp now) {
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = read(p->fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    if (n <= 0) { /* EOF or a reset: the receiver is gone */
      peer_del(p);
      return;
    }
    tern_ssize rc = tern_conn_read(p->conn, buf, (size_t)n, now);
    if (rc < 0) {
      /* A bad frame, a limit, no memory: the hub closed the connection,
         queued a GOAWAY and its end event, which handle_events acts on. */
      printf("connection closed: %s\n", tern_strerror((int)rc));
      return;
    }
  }
}

static void accept_all(int lfd, tern_tstamp now) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        perror("tcp_server: accept4");
      }
      return;
    }
    peer *p = calloc(1, sizeof(*p));
    int rc = p ? tern_conn_new(&p->conn, hub, now) : TERN_ERR_NOMEM;
    if (rc != 0) {
      printf("refused a connection: %s\n", tern_strerror(rc));
      free(p);
      close(fd);
      continue;
    }
    p->fd = fd;
    tern_conn_set_user_data(p->conn, p);
    p->next = peers;
    if (peers) {
      peers->prev = p;
    }
    peers = p;
    watch(fd, EPOLLIN, p, EPOLL_CTL_ADD);
  }
}

/* ---- the hub's events and the generator ---------------------------------- */

static uint64_t id_number(const uint8_t *id, size_t idlen) {
  uint64_t n = 0;
  for (size_t i = 1; i < idlen; ++i) {
    n = n * 10 + (uint64_t)(id[i] - '0');
  }
  return n;
}

static void handle_events(tern_tstamp now) {
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
    peer *p = ev.conn ? tern_conn_get_user_data(ev.conn) : NULL;
    switch (ev.type) {
    case TERN_EV_PERSISTED:
      --gen.unconfirmed;
      if (ev.reason == 0) {
        printf("confirmed %.*s\n", (int)ev.msg_idlen,
               (const char *)ev.msg_id);
      } else {
        /* The batch failed and the id left the dedup window: publish it
           again (the generator walks back; what follows it is refused as
           a duplicate). */
        printf("not stored %.*s: %s\n", (int)ev.msg_idlen,
               (const char *)ev.msg_id, tern_strerror(ev.reason));
        uint64_t n = id_number(ev.msg_id, ev.msg_idlen);
        if (n < gen.next) {
          gen.next = n;
        }
      }
      break;
    case TERN_EV_STORE_FAILED:
      printf("store batch %" PRIu64 " failed: %s\n", ev.seq,
             tern_strerror(ev.reason));
      break;
    case TERN_EV_CONN_HELLO:
      printf("hello from %.*s, resuming after seq %" PRIu64 "\n",
             (int)ev.session_keylen, (const char *)ev.session_key, ev.seq);
      break;
    case TERN_EV_CONN_DEAD:
    case TERN_EV_CONN_CLOSED:
      printf("connection %s (reason %d)\n",
             ev.type == TERN_EV_CONN_DEAD ? "dead" : "closed", ev.reason);
      if (p) {
        peer_flush(p, now); /* writes its GOAWAY, then deletes it */
      }
      break;
    case TERN_EV_SESSION_EXPIRED:
      printf("session %.*s expired with %" PRIu64 " messages\n",
             (int)ev.session_keylen, (const char *)ev.session_key, ev.count);
      break;
    default:
      break;
    }
  }
}

static void generate(tern_tstamp now) {
  while (gen.next <= gen.count && now >= gen.next_at &&
         gen.unconfirmed < MAX_UNCONFIRMED) {
    char id[24], key[16], payload[48];
    snprintf(id, sizeof(id), "m%" PRIu64, gen.next);
    snprintf(key, sizeof(key), "r%" PRIu64, gen.next % gen.sessions);
    /* The payload names its id and session so receivers can check it. */
    int len = snprintf(payload, sizeof(payload), "%s for %s", id, key);
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.id = (const uint8_t *)id;
    d.idlen = strlen(id);
    d.priority = TERN_PRIO_NORMAL;
    d.payload = (const uint8_t *)payload;
    d.payloadlen = (size_t)len;
    d.flags = TERN_MSG_SYNC;
    tern_publish_result res;
    int rc = tern_hub_publish(hub, (const uint8_t *)key, strlen(key), &d, now,
                              &res);
    if (rc == TERN_ERR_FULL) {
      /* The session holds max_pending messages: its receiver is slow or
         away.  Wait as the hub suggests (the rule is TERN_OVERFLOW_REJECT,
         so nothing was lost). */
      gen.next_at = now + res.retry_after;
      return;
    }
    ++gen.next;
    if (rc == TERN_ERR_DUPLICATE) {
      continue; /* stored before a restart: nothing to do, no rate used */
    }
    if (rc != 0) {
      printf("publish %s: %s\n", id, tern_strerror(rc));
      continue;
    }
    ++gen.unconfirmed;
    if (gen.rate) {
      gen.next_at = (gen.next_at > now - TERN_SECONDS ? gen.next_at : now) +
                    TERN_SECONDS / gen.rate;
    }
  }
  if (gen.next > gen.count && gen.unconfirmed == 0 && !gen.done_told) {
    printf("generator done: m1..m%" PRIu64 " stored\n", gen.count);
    gen.done_told = 1;
  }
}

/* ---- setup, loop, shutdown ------------------------------------------------ */

static int listen_on(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
      bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128)) {
    die("listen", 0);
  }
  return fd;
}

static int signals_fd(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL); /* delivered through the fd instead */
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    die("signalfd", 0);
  }
  return fd;
}

/* Milliseconds epoll_wait may sleep before |deadline|. */
static int sleep_ms(tern_tstamp deadline, tern_tstamp now) {
  if (deadline <= now) {
    return 0;
  }
  tern_duration d = deadline - now;
  if (d > TERN_SECONDS) {
    return 1000;
  }
  return (int)((d + TERN_MILLISECONDS - 1) / TERN_MILLISECONDS);
}

static void shutdown_all(tern_store_file *store) {
  tern_tstamp now = mono_now();
  /* Every receiver is told to come back within 5 s; ones with HIGH
     messages pending get the earliest hints. */
  tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, 5 * TERN_SECONDS, now);
  for (peer *p = peers, *next; p; p = next) {
    next = p->next;
    peer_flush(p, now);
  }
  /* Give full sockets one second to take their GOAWAY. */
  tern_tstamp give_up = now + TERN_SECONDS;
  while (peers && (now = mono_now()) < give_up) {
    struct epoll_event evs[64];
    int n = epoll_wait(epfd, evs, 64, sleep_ms(give_up, now));
    for (int i = 0; i < n; ++i) {
      void *ptr = evs[i].data.ptr;
      if (ptr != &listener_tag && ptr != &signal_tag && ptr != &store_tag) {
        peer_flush(ptr, now);
      }
    }
  }
  while (peers) {
    peer_del(peers);
  }
  /* The last batch goes to the store; wait for the sync thread to make it
     durable, and print its confirmations. */
  int rc = tern_hub_flush(hub);
  if (rc != 0) {
    printf("last flush: %s\n", tern_strerror(rc));
  }
  while (gen.unconfirmed > 0 && rc == 0) {
    struct pollfd pfd = {.fd = tern_store_file_fd(store), .events = POLLIN};
    if (poll(&pfd, 1, 1000) <= 0) {
      break;
    }
    tern_store_file_complete(store, hub);
    handle_events(now);
  }
  handle_events(now);
  tern_hub_del(hub);
  tern_store_file_close(store); /* fsyncs what was appended */
  printf("bye\n");
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  unsigned long port = 7400;
  gen.count = 1000;
  gen.sessions = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    unsigned long long v = strtoull(argv[i + 1], NULL, 10);
    if (strcmp(argv[i], "--dir") == 0) {
      dir = argv[i + 1];
    } else if (strcmp(argv[i], "--port") == 0 && v > 0 && v < 65536) {
      port = (unsigned long)v;
    } else if (strcmp(argv[i], "--count") == 0) {
      gen.count = v;
    } else if (strcmp(argv[i], "--rate") == 0) {
      gen.rate = v;
    } else if (strcmp(argv[i], "--sessions") == 0 && v > 0 && v < 1000) {
      gen.sessions = (uint32_t)v;
    } else {
      dir = NULL;
      break;
    }
  }
  if (!dir || argc % 2 == 0) {
    fprintf(stderr, "usage: tcp_server --dir DIR [--port PORT] [--count N] "
                    "[--rate N] [--sessions N]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, for pipes too */

  tern_store_file *store;
  tern_store_file_options opt;
  tern_store_file_options_default(&opt);
  opt.sync_thread = 1; /* fdatasync off the loop; see store_tag below */
  int rc = tern_store_file_open(&store, dir, &opt, NULL);
  if (rc != 0) {
    fprintf(stderr, "tcp_server: %s: %s (%s)\n", dir, tern_strerror(rc),
            tern_store_file_error(NULL));
    return 1;
  }
  tern_settings set;
  tern_settings_default(&set);
  /* fresh per process */
  set.seed = read_clock(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
  /* A full session makes the producer wait instead of losing messages. */
  for (int prio = 0; prio < 3; ++prio) {
    set.overflow[prio] = TERN_OVERFLOW_REJECT;
  }
  /* Long enough for a producer to retry across a restart. */
  set.dedup_window = 3600 * TERN_SECONDS;
  if ((rc = tern_hub_new(&hub, &set, NULL)) != 0) {
    die("tern_hub_new", rc);
  }
  tern_tstamp now = mono_now();
  /* What is stored (expiries, dedup windows) goes by the wall clock. */
  tern_hub_set_wallclock(hub, now, read_clock(CLOCK_REALTIME));
  /* Restores sessions, pending messages, dedup ids and the epoch. */
  if ((rc = tern_hub_set_store(hub, tern_store_file_methods(), store, now))) {
    fprintf(stderr, "tcp_server: loading %s: %s (%s)\n", dir,
            tern_strerror(rc), tern_store_file_error(store));
    return 1;
  }
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  printf("restored %" PRIu64 " sessions holding %" PRIu64 " messages\n",
         st.sessions, st.messages);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    die("epoll_create1", 0);
  }
  int lfd = listen_on((uint16_t)port);
  int sfd = signals_fd();
  watch(lfd, EPOLLIN, &listener_tag, EPOLL_CTL_ADD);
  watch(sfd, EPOLLIN, &signal_tag, EPOLL_CTL_ADD);
  /* Readable when the sync thread finished batches. */
  watch(tern_store_file_fd(store), EPOLLIN, &store_tag, EPOLL_CTL_ADD);
  gen.next = 1;
  printf("listening on 127.0.0.1:%lu\n", port);

  for (;;) {
    now = mono_now();
    tern_tstamp wake = tern_hub_get_expiry(hub);
    if (gen.next <= gen.count && gen.unconfirmed < MAX_UNCONFIRMED &&
        gen.next_at < wake) {
      wake = gen.next_at;
    }
    struct epoll_event evs[64];
    int n = epoll_wait(epfd, evs, 64, sleep_ms(wake, now));
    if (n < 0 && errno != EINTR) {
      die("epoll_wait", 0);
    }
    now = mono_now();
    for (int i = 0; i < n; ++i) {
      void *ptr = evs[i].data.ptr;
      if (ptr == &signal_tag) {
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
          printf("signal %u: shutting down\n", si.ssi_signo);
        }
        shutdown_all(store);
        return 0;
      }
      if (ptr == &listener_tag) {
        accept_all(lfd, now);
        continue;
      }
      if (ptr == &store_tag) { /* PERSISTED events follow */
        tern_store_file_complete(store, hub);
        continue;
      }
      peer *p = ptr;
      /* |p| is still there: in this loop a peer is only deleted while its
         own event is handled, and epoll reports each fd once per round
         (hub events, which may delete any peer, come after the loop). */
      if ((evs[i].events & EPOLLOUT) && peer_flush(p, now) < 0) {
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        peer_read(p, now);
      }
    }
    generate(now);
    /* Timers: heartbeats, liveness, the dedup window; and the batch of
       store records, which waits while tern_hub_get_expiry returns 0. */
    if (tern_hub_get_expiry(hub) <= now) {
      tern_hub_handle_expiry(hub, now);
    }
    handle_events(now);
    /* Write to every connection that has something new to send. */
    tern_conn *conn;
    while ((conn = tern_hub_next_ready(hub)) != NULL) {
      peer_flush(tern_conn_get_user_data(conn), now);
    }
  }
}
