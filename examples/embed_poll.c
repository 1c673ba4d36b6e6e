/* embed_poll [PORT [COUNT [INTERVAL_MS]]]: a hub in a plain poll() loop, the
   host's own sockets, no libtern-posix.  Listens on 127.0.0.1:PORT (0: any,
   printed); publishes "m<n> for r0", id m<n>, to session r0 every INTERVAL_MS
   (1000), COUNT times (0: no end).  SIGINT, SIGTERM: GOAWAY to all, "bye". */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tern.h>

#define MAX_FDS 256 /* a receiver on a higher descriptor is refused */
static tern_conn *peers[MAX_FDS]; /* by descriptor; NULL: no receiver */
static tern_hub *hub;
static volatile sig_atomic_t stop;

static void on_signal(int sig) { stop = sig; } /* poll(): EINTR */

static tern_tstamp mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (tern_tstamp)ts.tv_sec * TERN_SECONDS + (tern_tstamp)ts.tv_nsec;
}

static void drop(int fd) {
  close(fd);
  tern_conn_del(peers[fd]); /* in flight: back to the session */
  peers[fd] = NULL;
}

/* Sends what the hub has for fd while the socket takes it.  What the socket
   refuses, the connection keeps for POLLOUT (and the messages behind it).
   Returns 0 when fd is done: its socket failed, or the hub ended it. */
static int flush(int fd, tern_tstamp now) {
  const uint8_t *out;
  tern_ssize n;
  while ((n = tern_conn_peek_output(peers[fd], &out, now)) > 0) {
    ssize_t sent = send(fd, out, (size_t)n, MSG_NOSIGNAL);
    if (sent < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK; /* full: POLLOUT */
    }
    tern_conn_consume(peers[fd], (size_t)sent);
  }
  return n != TERN_ERR_CLOSED; /* 0: nothing now; NOMEM: the timer retries */
}

/* Takes every event, flushes every receiver, lists its fd in pfd[1, n).
   Other duty events need a store, hooks, fallbacks or ack_timeout (DEAD). */
static nfds_t service(struct pollfd *pfd, tern_tstamp now) {
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
    const char *key = (const char *)ev.session_key;
    if (ev.type == TERN_EV_ACKED) { /* of a message with TERN_MSG_TRACE */
      printf("acked %.*s\n", (int)ev.msg_idlen, (const char *)ev.msg_id);
    } else if (ev.type == TERN_EV_CONN_HELLO) { /* hello_accept 0: accepted */
      printf("hello %.*s\n", (int)ev.session_keylen, key);
    } else if (ev.type == TERN_EV_CONN_DEAD || ev.type == TERN_EV_CONN_CLOSED) {
      printf("closed, reason %d\n", ev.reason); /* flush() ends it */
    } else if (ev.type == TERN_EV_SESSION_EXPIRED) { /* messages lost */
      printf("expired %.*s: %llu lost\n", (int)ev.session_keylen, key,
             (unsigned long long)ev.count);
    }
  }
  nfds_t n = 1;
  for (int fd = 0; fd < MAX_FDS; ++fd) { /* or: tern_hub_next_ready */
    if (peers[fd] != NULL && !flush(fd, now)) {
      drop(fd);
    } else if (peers[fd] != NULL) {
      short out = tern_conn_want_write(peers[fd]) ? POLLOUT : 0;
      pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN | out};
    }
  }
  return n;
}

int main(int argc, char **argv) {
  uint16_t port = argc > 1 ? (uint16_t)strtoul(argv[1], NULL, 10) : 0;
  unsigned long count = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
  unsigned long interval = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
  setvbuf(stdout, NULL, _IOLBF, 0);
  sigaction(SIGINT, &(struct sigaction){.sa_handler = on_signal}, NULL);
  sigaction(SIGTERM, &(struct sigaction){.sa_handler = on_signal}, NULL);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
  fcntl(lfd, F_SETFL, O_NONBLOCK); /* a client gone before accept() */
  if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 16) ||
      getsockname(lfd, (struct sockaddr *)&sin, &(socklen_t){sizeof(sin)}) ||
      tern_hub_new(&hub, NULL, NULL) != 0) {
    perror("embed_poll");
    return 1;
  }
  printf("listening on 127.0.0.1:%u\n", ntohs(sin.sin_port));
  unsigned long published = 0;
  tern_tstamp now = mono_now(), next_publish = now; /* NONE: all published */
  struct pollfd pfd[1 + MAX_FDS] = {{.fd = lfd, .events = POLLIN}};
  while (!stop) {
    if (now >= next_publish) {
      char id[24], text[48];
      tern_msg_desc d = {.id = (uint8_t *)id, .payload = (uint8_t *)text,
                         .priority = TERN_PRIO_NORMAL, .flags = TERN_MSG_TRACE};
      d.idlen = (size_t)snprintf(id, sizeof(id), "m%lu", ++published);
      d.payloadlen = (size_t)snprintf(text, sizeof(text), "%s for r0", id);
      int rc = tern_hub_publish(hub, (const uint8_t *)"r0", 2, &d, now, NULL);
      printf("published %s: %s\n", id, rc ? tern_strerror(rc) : "ok");
      next_publish = published == count ? TERN_TSTAMP_NONE
                                        : now + interval * TERN_MILLISECONDS;
    }
    tern_hub_handle_expiry(hub, now); /* heartbeats, liveness, TTLs due */
    nfds_t n = service(pfd, now);
    /* Sleep until the next deadline; at most 1 s, for a signal just missed. */
    tern_tstamp wake = tern_hub_get_expiry(hub);
    wake = next_publish < wake ? next_publish : wake;
    tern_duration left = wake > now ? wake - now : 0;
    left = left < TERN_SECONDS ? left + TERN_MILLISECONDS - 1 : TERN_SECONDS;
    int ready = poll(pfd, n, (int)(left / TERN_MILLISECONDS)); /* rounded up */
    now = mono_now();
    for (nfds_t i = 1; i < n && ready > 0; ++i) { /* -1: a signal */
      if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        uint8_t in[16384];
        ssize_t len = recv(pfd[i].fd, in, sizeof(in), 0);
        if (len > 0) { /* a bad frame ends the conn: an end event */
          tern_conn_read(peers[pfd[i].fd], in, (size_t)len, now);
        } else if (len == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
          drop(pfd[i].fd); /* EOF or an error */
        }
      }
    }
    int fd = pfd[0].revents & POLLIN ? accept(lfd, NULL, NULL) : -1;
    if (fd >= 0 && fd < MAX_FDS && !tern_conn_new(&peers[fd], hub, now)) {
      fcntl(fd, F_SETFL, O_NONBLOCK); /* reads and writes never block */
    } else if (fd >= 0) {
      close(fd); /* refused: descriptor too high, or no memory */
    }
  }
  tern_hub_goaway_all(hub, TERN_GOAWAY_RESTART, 5 * TERN_SECONDS, now);
  service(pfd, now); /* each socket takes what it can of the GOAWAY now */
  tern_hub_del(hub); /* frees the connections left */
  printf("bye\n");
  return 0;
}
