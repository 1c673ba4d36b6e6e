/*
 * embed_poll: a hub in a plain poll() loop, without libtern-posix.
 *
 *   embed_poll [--port PORT] [--key KEY] [--count N] [--interval MS]
 *
 * The host owns everything that touches the system: the listening socket
 * on 127.0.0.1:PORT (0, the default: a free one; printed), accept, read,
 * write, the clock and the sleep.  The hub sees bytes and times only.
 * Every MS milliseconds (1000) it publishes "m<n> for KEY" with id m<n> to
 * session KEY (r0), N messages (0, the default: forever), and prints
 * "acked m<n>" when the receiver acknowledges one.  tcp_receiver receives.
 * SIGINT or SIGTERM: GOAWAY to every receiver, "bye", status 0.
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

/* One receiver: its socket (-1: a free slot), its tern_conn, and the bytes
   of the last tern_conn_write the socket has not taken yet. */
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

static void peer_del(peer *p) {
  close(p->fd);
  tern_conn_del(p->conn); /* in-flight messages go back to the session */
  p->fd = -1;
}

/* Sends what the hub has for |p| while the socket takes it; a slow
   receiver's messages wait in the hub, not here. */
static void peer_flush(peer *p, tern_tstamp now) {
  while (p->fd >= 0) {
    if (p->off < p->len) {
      ssize_t n = send(p->fd, p->out + p->off, p->len - p->off, MSG_NOSIGNAL);
      if (n < 0 && errno != EINTR) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          peer_del(p);
        }
        return; /* full: poll asks for POLLOUT while off < len */
      }
      p->off += n > 0 ? (size_t)n : 0;
      continue;
    }
    tern_ssize n = tern_conn_write(p->conn, p->out, sizeof(p->out), now);
    if (n == TERN_ERR_CLOSED) { /* the hub closed it and it all went out */
      peer_del(p);
    }
    if (n <= 0) {
      return; /* nothing now (or NOMEM: it comes back through next_ready) */
    }
    p->off = 0;
    p->len = (size_t)n;
  }
}

static void peer_read(peer *p, tern_tstamp now) {
  uint8_t buf[16384];
  ssize_t n = recv(p->fd, buf, sizeof(buf), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    peer_del(p); /* EOF or reset: no event follows, the host knows */
  } else if (n > 0) { /* a bad frame closes it: an end event says so */
    (void)tern_conn_read(p->conn, buf, (size_t)n, now);
  }
}

static void accept_one(int lfd, tern_tstamp now) {
  int fd = accept(lfd, NULL, NULL), i = 0;
  while (i < MAX_PEERS && peers[i].fd >= 0) {
    ++i;
  }
  if (fd < 0 || i == MAX_PEERS || tern_conn_new(&peers[i].conn, hub, now)) {
    if (fd >= 0) {
      close(fd); /* full, or no memory */
    }
    return;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK); /* reads and writes never block */
  peers[i].fd = fd;
  peers[i].off = peers[i].len = 0;
  tern_conn_set_user_data(peers[i].conn, &peers[i]);
}

/* Takes the hub's events and the connections that have bytes to send. */
static void service(tern_tstamp now) {
  tern_event ev;
  tern_conn *c;
  while (tern_hub_next_event(hub, &ev) == 1) {
    if (ev.type == TERN_EV_ACKED) {
      printf("acked %.*s\n", (int)ev.msg_idlen, (const char *)ev.msg_id);
    } else if (ev.type == TERN_EV_CONN_HELLO) {
      printf("hello %.*s\n", (int)ev.session_keylen,
             (const char *)ev.session_key);
    } else if (ev.type == TERN_EV_CONN_DEAD || ev.type == TERN_EV_CONN_CLOSED) {
      peer_flush(tern_conn_get_user_data(ev.conn), now); /* then deleted */
    }
  }
  while ((c = tern_hub_next_ready(hub)) != NULL) {
    peer_flush(tern_conn_get_user_data(c), now);
  }
}

int main(int argc, char **argv) {
  unsigned long port = 0, count = 0, interval = 1000, published = 0;
  const char *key = "r0";
  for (int i = 1; i < argc; i += 2) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long *n = !strcmp(f, "--port")       ? &port
                       : !strcmp(f, "--count")    ? &count
                       : !strcmp(f, "--interval") ? &interval
                                                  : NULL;
    if (v && !strcmp(f, "--key")) {
      key = v;
    } else if (!v || !n || (*n = strtoul(v, NULL, 10), port > 65535)) {
      fprintf(stderr, "usage: embed_poll [--port PORT] [--key KEY] "
                      "[--count N] [--interval MS]\n");
      return 2;
    }
  }
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
  if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 16) ||
      getsockname(lfd, (struct sockaddr *)&sin, &slen) ||
      tern_hub_new(&hub, NULL, NULL) != 0) {
    perror("embed_poll");
    return 1;
  }
  for (int i = 0; i < MAX_PEERS; ++i) {
    peers[i].fd = -1;
  }
  printf("listening on 127.0.0.1:%u\n", ntohs(sin.sin_port));
  tern_tstamp next_publish = mono_now() + interval * TERN_MILLISECONDS;
  while (!stop) {
    tern_tstamp now = mono_now();
    int more = count == 0 || published < count;
    if (more && now >= next_publish) {
      char id[24], payload[96];
      snprintf(id, sizeof(id), "m%lu", ++published);
      tern_msg_desc d = {.id = (const uint8_t *)id, .idlen = strlen(id),
                         .priority = TERN_PRIO_NORMAL,
                         .flags = TERN_MSG_TRACE, /* SENT, ACKED events */
                         .payload = (const uint8_t *)payload};
      d.payloadlen = (size_t)snprintf(payload, sizeof(payload),
                                      "%s for %.60s", id, key);
      int rc = tern_hub_publish(hub, (const uint8_t *)key, strlen(key), &d,
                                now, NULL);
      printf("published %s: %s\n", id, rc ? tern_strerror(rc) : "ok");
      next_publish += interval * TERN_MILLISECONDS;
    }
    if (tern_hub_get_expiry(hub) <= now) { /* heartbeats, liveness, TTLs */
      tern_hub_handle_expiry(hub, now);
    }
    service(now);
    /* Sleep until a socket is ready, the hub's next deadline or the next
       publish, whichever comes first (at most a second). */
    struct pollfd pfd[MAX_PEERS + 1] = {{.fd = lfd, .events = POLLIN}};
    for (int i = 0; i < MAX_PEERS; ++i) {
      pfd[i + 1].fd = peers[i].fd; /* -1 is ignored by poll */
      pfd[i + 1].events =
          (short)(POLLIN | (peers[i].off < peers[i].len ? POLLOUT : 0));
    }
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
      if (peers[i].fd >= 0 && (pfd[i + 1].revents & POLLOUT)) {
        peer_flush(&peers[i], now);
      }
      if (peers[i].fd >= 0 && (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
        peer_read(&peers[i], now);
      }
    }
    if (pfd[0].revents & POLLIN) {
      accept_one(lfd, now);
    }
  }
  /* Tell every receiver to come back in up to 5 s, give each socket what
     it takes of that at once, and leave. */
  tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, 5 * TERN_SECONDS, mono_now());
  service(mono_now());
  for (int i = 0; i < MAX_PEERS; ++i) {
    if (peers[i].fd >= 0) {
      peer_del(&peers[i]);
    }
  }
  tern_hub_del(hub);
  close(lfd);
  printf("bye\n");
  return 0;
}
