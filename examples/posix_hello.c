/*
 * posix_hello: the smallest server on libtern-posix, with its receiver in
 * the same process to show that it works.
 *
 * A thread runs the epoll loop, where a driver serves one hub on
 * 127.0.0.1 (a free port).  The main thread publishes three messages for
 * "alice" through an inbox, as any producer thread would, then plays alice:
 * a tern_client over a real TCP socket, which receives them and acks them.
 * The loop's thread counts the acks (TERN_EV_ACKED) and stops the loop after
 * the third.  Exit status 0, or 1 when anything went wrong.
 *
 *   cc posix_hello.c $(pkg-config --cflags --libs libtern-posix)
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern_posix.h>

static tern_epoll *ep;
static atomic_int acked;

static void on_event(void *user_data, tern_driver *d, const tern_event *ev) {
  (void)user_data;
  (void)d;
  if (ev->type == TERN_EV_ACKED) {
    printf("server: %.*s acked\n", (int)ev->msg_idlen, (const char *)ev->msg_id);
    if (atomic_fetch_add(&acked, 1) + 1 == 3) {
      tern_epoll_stop(ep);
    }
  }
}

static void *loop_thread(void *arg) {
  (void)arg;
  tern_epoll_run(ep);
  return NULL;
}

static int fail(const char *what) {
  fprintf(stderr, "posix_hello: %s\n", what);
  return 1;
}

int main(void) {
  tern_hub *hub;
  tern_driver *d;
  tern_inbox *in;
  uint16_t port;
  tern_driver_options o;
  tern_driver_options_default(&o);
  o.on_event = on_event;
  if (tern_epoll_new(&ep) != 0 || tern_hub_new(&hub, NULL, NULL) != 0 ||
      tern_driver_new(&d, hub, tern_epoll_methods(), ep, &o) != 0 ||
      tern_driver_listen(d, "127.0.0.1", 0, NULL, NULL, &port) != 0 ||
      tern_inbox_new(&in, d, NULL, NULL) != 0) {
    return fail("cannot start the server");
  }
  pthread_t th;
  if (pthread_create(&th, NULL, loop_thread, NULL) != 0) {
    return fail("pthread_create");
  }
  /* Producers copy their messages into the inbox and go on. */
  const char *ids[3] = {"order-1 placed", "order-1 paid", "order-1 shipped"};
  for (int i = 0; i < 3; ++i) {
    tern_msg_desc desc;
    memset(&desc, 0, sizeof(desc));
    desc.id = (const uint8_t *)ids[i];
    desc.idlen = strlen(ids[i]);
    desc.payload = desc.id;
    desc.payloadlen = desc.idlen;
    desc.flags = TERN_MSG_TRACE; /* ACKED comes back as an event */
    if (tern_inbox_publish(in, (const uint8_t *)"alice", 5, &desc) != 0) {
      return fail("tern_inbox_publish");
    }
  }
  /* alice: a receiver over TCP. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    return fail("connect");
  }
  tern_client *alice;
  tern_tstamp now = tern_posix_now(), end = now + 10 * TERN_SECONDS;
  if (tern_client_new(&alice, (const uint8_t *)"alice", 5, NULL, 0, NULL, NULL,
                      now) != 0) {
    return fail("tern_client_new");
  }
  tern_client_connect(alice, now); /* the socket is up: HELLO */
  int got = 0;
  while (atomic_load(&acked) < 3 && (now = tern_posix_now()) < end) {
    uint8_t buf[4096];
    tern_ssize n;
    while ((n = tern_client_write(alice, buf, sizeof(buf), now)) > 0) {
      if (write(fd, buf, (size_t)n) != n) {
        return fail("write");
      }
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10) > 0) {
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r <= 0) {
        return fail("the server went away");
      }
      tern_client_read(alice, buf, (size_t)r, now);
    }
    if (tern_client_get_expiry(alice) <= now) {
      tern_client_handle_expiry(alice, now); /* sends the batched acks */
    }
    tern_client_event ev;
    while (tern_client_next_event(alice, &ev) == 1) {
      if (ev.type == TERN_CLIENT_EV_MESSAGE) {
        printf("alice: got \"%.*s\"\n", (int)ev.payloadlen,
               (const char *)ev.payload);
        ++got;
      }
    }
  }
  if (atomic_load(&acked) < 3) {
    tern_epoll_stop(ep);
  }
  pthread_join(th, NULL);
  tern_client_del(alice);
  close(fd);
  tern_inbox_del(in);
  tern_driver_del(d);
  tern_hub_del(hub);
  tern_epoll_del(ep);
  if (got != 3 || atomic_load(&acked) != 3) {
    return fail("not every message arrived and was acked");
  }
  printf("every message arrived and was acked\n");
  return 0;
}
