/*
 * embed_poll [PORT [COUNT [INTERVAL_MS]]]: a hub in a plain poll() loop,
 * without libtern-posix.  The host owns the sockets, the clock and the
 * sleep; the hub sees bytes and times only.  It listens on 127.0.0.1:PORT
 * (0, the default: a free one; printed) and publishes "m<n> for r0", id
 * m<n>, to session r0 every INTERVAL_MS (1000), COUNT times (0: forever);
 * tcp_receiver receives.  SIGINT, SIGTERM: GOAWAY to every receiver, "bye".
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tern.h>

#define MAX_PEERS 64

/* A receiver (conn NULL: a free slot), and what its socket has not taken
   yet of the last tern_conn_write: out[off, len). */
typedef struct peer {
  int fd;
  tern_conn *conn;
  size_t off, len;
  uint8_t out[16384];
} peer;

static tern_hub *hub;
static peer peers[MAX_PEERS];
static volatile sig_atomic_t stop;

static void on_signal(int sig) { stop = sig; }

static tern_tstamp mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (tern_tstamp)ts.tv_sec * TERN_SECONDS + (tern_tstamp)ts.tv_nsec;
}

static void drop(peer *p) {
  close(p->fd);
  tern_conn_del(p->conn); /* in-flight messages go back to the session */
  p->conn = NULL;
}

/* Sends what the hub has for |p| while the socket takes it.  When the
   socket is full, out waits for POLLOUT and the messages behind it wait
   in the hub: a slow receiver costs the host this one buffer. */
static void flush(peer *p, tern_tstamp now) {
  while (p->conn != NULL) {
    if (p->off == p->len) {
      tern_ssize n = tern_conn_write(p->conn, p->out, sizeof(p->out), now);
      if (n == TERN_ERR_CLOSED) { /* closed by the hub, and all of it sent */
        drop(p);
      }
      if (n <= 0) { /* 0: nothing now; NOMEM: tried again next turn */
        return;
      }
      p->off = 0;
      p->len = (size_t)n;
    }
    ssize_t n = send(p->fd, p->out + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      drop(p);
    }
    if (n < 0) {
      return;
    }
    p->off += (size_t)n;
  }
}

/* Takes every event, then gives every receiver what the hub has for it,
   which also serves the end events (CONN_DEAD, CONN_CLOSED): flush sends
   the last bytes, then tern_conn_write says CLOSED and flush deletes the
   connection.  (With many, tern_hub_next_ready names those to write.) */
static void service(tern_tstamp now) {
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (ev.type == TERN_EV_ACKED) { /* the receiver confirmed it */
      printf("acked %.*s\n", (int)ev.msg_idlen, (const char *)ev.msg_id);
    } else if (ev.type == TERN_EV_CONN_HELLO) { /* hello_accept 0: accepted */
      printf("hello %.*s\n", (int)ev.session_keylen,
             (const char *)ev.session_key);
    }
  }
  for (int i = 0; i < MAX_PEERS; ++i) {
    flush(&peers[i], now);
  }
}

static void receive(peer *p, tern_tstamp now) {
  uint8_t in[16384];
  ssize_t n = recv(p->fd, in, sizeof(in), 0);
  if (n > 0) { /* a bad frame closes the conn: its end event follows */
    (void)tern_conn_read(p->conn, in, (size_t)n, now);
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
    drop(p); /* EOF or reset: tern_conn_del ends it without an event */
  }
}

/* A new receiver in a free slot, or refused (no slot, no memory). */
static void accept_one(int lfd, tern_tstamp now) {
  int fd = accept(lfd, NULL, NULL), i = 0;
  while (i < MAX_PEERS && peers[i].conn != NULL) {
    ++i;
  }
  if (fd >= 0 && (i == MAX_PEERS || tern_conn_new(&peers[i].conn, hub, now))) {
    close(fd);
  } else if (fd >= 0) {
    fcntl(fd, F_SETFL, O_NONBLOCK); /* reads and writes never block */
    peers[i].fd = fd;
    peers[i].off = peers[i].len = 0;
  }
}

int main(int argc, char **argv) {
  unsigned long port = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
  unsigned long count = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
  unsigned long interval = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t slen = sizeof(sin);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  fcntl(lfd, F_SETFL, O_NONBLOCK); /* a client gone before accept() */
  if (port > 65535 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
      listen(lfd, 16) || getsockname(lfd, (struct sockaddr *)&sin, &slen) ||
      tern_hub_new(&hub, NULL, NULL) != 0) {
    perror("embed_poll");
    return 1;
  }
  printf("listening on 127.0.0.1:%u\n", ntohs(sin.sin_port));
  unsigned long published = 0;
  tern_tstamp next_publish = mono_now();
  while (!stop) {
    tern_tstamp now = mono_now();
    int more = count == 0 || published < count;
    if (more && now >= next_publish) {
      char id[24], payload[48];
      snprintf(id, sizeof(id), "m%lu", ++published);
      tern_msg_desc d = {.id = (const uint8_t *)id, .idlen = strlen(id),
                         .priority = TERN_PRIO_NORMAL,
                         .flags = TERN_MSG_TRACE, /* for its ACKED event */
                         .payload = (const uint8_t *)payload};
      d.payloadlen =
          (size_t)snprintf(payload, sizeof(payload), "%s for r0", id);
      int rc = tern_hub_publish(hub, (const uint8_t *)"r0", 2, &d, now, NULL);
      printf("published %s: %s\n", id, rc ? tern_strerror(rc) : "ok");
      next_publish += interval * TERN_MILLISECONDS;
    }
    tern_hub_handle_expiry(hub, now); /* heartbeats, liveness, TTLs due */
    service(now);
    struct pollfd pfd[MAX_PEERS + 1] = {{.fd = lfd, .events = POLLIN}};
    for (int i = 0; i < MAX_PEERS; ++i) {
      pfd[i + 1].fd = peers[i].conn ? peers[i].fd : -1; /* poll skips -1 */
      pfd[i + 1].events =
          (short)(POLLIN | (peers[i].off < peers[i].len ? POLLOUT : 0));
    }
    /* Sleep until a socket is ready, the hub's next deadline or the next
       publish: at most a second (a signal just before poll() is seen
       soon), rounded up (waking early would spin). */
    tern_tstamp wake = tern_hub_get_expiry(hub);
    wake = more && next_publish < wake ? next_publish : wake;
    tern_duration left = wake > now ? wake - now : 0;
    left = left < TERN_SECONDS ? left : TERN_SECONDS;
    if (poll(pfd, MAX_PEERS + 1,
             (int)((left + TERN_MILLISECONDS - 1) / TERN_MILLISECONDS)) < 0) {
      continue; /* EINTR: a signal */
    }
    now = mono_now();
    for (int i = 0; i < MAX_PEERS; ++i) {
      if (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) {
        receive(&peers[i], now); /* POLLOUT: service() writes next turn */
      }
    }
    if (pfd[0].revents & POLLIN) {
      accept_one(lfd, now);
    }
  }
  /* Every receiver is told to come back within 5 s, and each socket takes
     what it can of that now; tern_hub_del frees the connections left. */
  tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, 5 * TERN_SECONDS, mono_now());
  service(mono_now());
  tern_hub_del(hub);
  printf("bye\n");
  return 0;
}
