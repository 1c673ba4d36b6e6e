#define _DEFAULT_SOURCE /* usleep */
/*
 * libtern-posix: tern_shard_of stability, the epoll loop (timers, a wake
 * from another thread, readiness), and the driver end to end on 127.0.0.1
 * with tern_client as the peer: messages published from another thread
 * through tern_inbox all arrive once and are acked.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern_posix.h>

#include "base/layout.h"
#include "tap.h"

static void test_shard(void) {
  /* Pinned: the function is a contract across versions. */
  static const struct { const char *key; uint32_t n, want; } v[] = {
#include "posix_shard_vectors.h"
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); ++i) {
    CHECK_EQ(tern_shard_of((const uint8_t *)v[i].key, strlen(v[i].key), v[i].n),
             v[i].want, "tern_shard_of(%s, %u)", v[i].key, v[i].n);
  }
  int moved_wrong = 0, out_of_range = 0;
  for (int k = 0; k < 2000; ++k) {
    char key[16];
    snprintf(key, sizeof(key), "s%d", k);
    for (uint32_t n = 1; n < 40; ++n) {
      uint32_t a = tern_shard_of((const uint8_t *)key, strlen(key), n);
      uint32_t b = tern_shard_of((const uint8_t *)key, strlen(key), n + 1);
      out_of_range += a >= n;
      moved_wrong += a != b && b != n;
    }
  }
  CHECK_EQ(out_of_range, 0, "every shard is below nshards");
  CHECK_EQ(moved_wrong, 0, "growing by one moves keys only to the new shard");
  CHECK_EQ(tern_shard_of(NULL, 3, 8), 0, "NULL key with a length is 0");
}

static int fired;
static void on_timer(void *arg) { ++*(int *)arg; }
static void on_wake(void *arg) { ++*(int *)arg; }
static void on_io(void *arg, unsigned ev) { *(unsigned *)arg |= ev; }

typedef struct { const tern_loop_methods *m; tern_epoll *ep; void *waker; } wake_arg;
static void *waker_thread(void *arg) {
  wake_arg *a = arg;
  usleep(20000);
  a->m->wake(a->ep, a->waker);
  return NULL;
}

static void test_loop(void) {
  tern_epoll *ep;
  CHECK_EQ(tern_epoll_new(&ep), 0, "tern_epoll_new");
  const tern_loop_methods *m = tern_epoll_methods();
  void *t;
  CHECK_EQ(m->timer_add(ep, &t, on_timer, &fired), 0, "timer_add");
  tern_tstamp start = tern_posix_now();
  m->timer_set(ep, t, start + 30 * TERN_MILLISECONDS);
  while (!fired && tern_posix_now() - start < TERN_SECONDS) {
    tern_epoll_run_once(ep, TERN_TSTAMP_NONE);
  }
  CHECK(fired == 1 && tern_posix_now() - start >= 30 * TERN_MILLISECONDS,
        "a timer fires once, not before its deadline");
  m->timer_del(ep, t);

  int woken = 0;
  wake_arg a = {m, ep, NULL};
  CHECK_EQ(m->waker_add(ep, &a.waker, on_wake, &woken), 0, "waker_add");
  pthread_t th;
  pthread_create(&th, NULL, waker_thread, &a);
  start = tern_posix_now();
  while (!woken && tern_posix_now() - start < 2 * TERN_SECONDS) {
    tern_epoll_run_once(ep, TERN_TSTAMP_NONE);
  }
  pthread_join(th, NULL);
  CHECK_EQ(woken, 1, "a wake from another thread runs the waker once");
  m->waker_del(ep, a.waker);

  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  unsigned got = 0;
  void *io;
  CHECK_EQ(m->io_add(ep, &io, sv[0], TERN_IO_WRITE, on_io, &got), 0, "io_add");
  tern_epoll_run_once(ep, 0);
  CHECK(got == TERN_IO_WRITE, "a socket is writable");
  got = 0;
  m->io_set(ep, io, TERN_IO_READ);
  tern_epoll_run_once(ep, 0);
  CHECK_EQ(got, 0, "nothing to read yet");
  CHECK_EQ(write(sv[1], "x", 1), 1, "write");
  tern_epoll_run_once(ep, TERN_SECONDS);
  CHECK(got & TERN_IO_READ, "readable after the peer wrote");
  m->io_del(ep, io);
  close(sv[0]);
  close(sv[1]);
  tern_epoll_del(ep);
}

/* ---- the driver end to end ---- */

#define NMSG 2000
static tern_epoll *srv_ep;
static void *server_thread(void *arg) {
  (void)arg;
  tern_epoll_run(srv_ep);
  return NULL;
}

static void test_driver(void) {
  tern_hub *hub;
  tern_driver *d;
  tern_inbox *in;
  uint16_t port = 0;
  CHECK_EQ(tern_epoll_new(&srv_ep), 0, "server loop");
  CHECK_EQ(tern_hub_new(&hub, NULL, NULL), 0, "hub");
  CHECK_EQ(tern_driver_new(&d, hub, tern_epoll_methods(), srv_ep, NULL), 0,
           "tern_driver_new");
  CHECK_EQ(tern_driver_listen(d, "127.0.0.1", 0, NULL, NULL, &port), 0,
           "tern_driver_listen");
  CHECK_EQ(tern_inbox_new(&in, d, NULL, NULL), 0, "tern_inbox_new");
  pthread_t th;
  pthread_create(&th, NULL, server_thread, NULL);
  for (int i = 0; i < NMSG; ++i) {
    char id[16];
    snprintf(id, sizeof(id), "m%d", i);
    tern_msg_desc desc;
    memset(&desc, 0, sizeof(desc));
    desc.id = (const uint8_t *)id;
    desc.idlen = strlen(id);
    desc.payload = (const uint8_t *)id;
    desc.payloadlen = strlen(id);
    desc.priority = TERN_PRIO_NORMAL;
    if (tern_inbox_publish(in, (const uint8_t *)"r1", 2, &desc) != 0) {
      BAILOUT("tern_inbox_publish");
    }
  }
  /* The client: a real socket, tern_client on this thread. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect");
  tern_client *c;
  tern_tstamp now = tern_posix_now();
  tern_client_new(&c, (const uint8_t *)"r1", 2, NULL, 0, NULL, NULL, now);
  tern_client_connect(c, now);
  static uint8_t seen[NMSG];
  int got = 0, dups = 0;
  tern_tstamp end = now + 20 * TERN_SECONDS;
  while (got < NMSG && (now = tern_posix_now()) < end) {
    uint8_t buf[65536];
    tern_ssize n;
    while ((n = tern_client_write(c, buf, sizeof(buf), now)) > 0) {
      if (write(fd, buf, (size_t)n) != n) {
        BAILOUT("client write");
      }
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 50) > 0) {
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r <= 0) {
        break;
      }
      tern_client_read(c, buf, (size_t)r, now);
    }
    if (tern_client_get_expiry(c) <= now) {
      tern_client_handle_expiry(c, now);
    }
    tern_client_event ev;
    while (tern_client_next_event(c, &ev) == 1) {
      if (ev.type == TERN_CLIENT_EV_MESSAGE) {
        int i = atoi((const char *)ev.id + 1);
        if (i >= 0 && i < NMSG) {
          dups += seen[i]++;
          ++got;
        }
      }
    }
  }
  CHECK_EQ(got, NMSG, "every message published through the inbox arrived");
  CHECK_EQ(dups, 0, "none twice");
  /* Ack everything: the client acks on its own after ack_delay. */
  end = tern_posix_now() + 3 * TERN_SECONDS;
  while ((now = tern_posix_now()) < end) {
    uint8_t buf[4096];
    tern_ssize n;
    if (tern_client_get_expiry(c) <= now) {
      tern_client_handle_expiry(c, now);
    }
    while ((n = tern_client_write(c, buf, sizeof(buf), now)) > 0) {
      if (write(fd, buf, (size_t)n) != n) {
        BAILOUT("client write");
      }
    }
    usleep(20000);
    if (now > end - TERN_SECONDS) {
      break;
    }
  }
  usleep(200000);
  tern_epoll_stop(srv_ep);
  pthread_join(th, NULL);
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  CHECK_EQ(st.messages, 0, "the hub holds nothing once all is acked");
  tern_driver_stats ds;
  tern_driver_get_stats(d, &ds, sizeof(ds));
  CHECK(ds.writes < (uint64_t)NMSG, "frames were batched: %llu writes for %d messages",
        (unsigned long long)ds.writes, NMSG);
  tern_client_del(c);
  close(fd);
  tern_inbox_del(in);
  tern_driver_del(d);
  tern_hub_del(hub);
  tern_epoll_del(srv_ep);
}

/* Backpressure: a receiver that says HELLO and never reads.  The hub keeps
   the messages; the driver holds at most out_cap bytes for the socket. */
static void test_backpressure(void) {
  tern_hub *hub;
  tern_driver *d;
  tern_inbox *in;
  uint16_t port = 0;
  tern_settings set;
  tern_settings_default(&set);
  set.inflight_window = 100000;
  set.max_pending = 100000;
  set.max_pending_bytes = (size_t)1 << 30;
  tern_epoll_new(&srv_ep);
  tern_hub_new(&hub, &set, NULL);
  tern_driver_new(&d, hub, tern_epoll_methods(), srv_ep, NULL);
  tern_driver_listen(d, "127.0.0.1", 0, NULL, NULL, &port);
  tern_inbox_new(&in, d, NULL, NULL);
  pthread_t th;
  pthread_create(&th, NULL, server_thread, NULL);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect");
  tern_client *c;
  tern_tstamp now = tern_posix_now();
  tern_client_new(&c, (const uint8_t *)"slow", 4, NULL, 0, NULL, NULL, now);
  tern_client_connect(c, now);
  uint8_t buf[4096];
  tern_ssize n = tern_client_write(c, buf, sizeof(buf), now);
  CHECK(n > 0 && write(fd, buf, (size_t)n) == n, "HELLO sent");
  static uint8_t payload[4096];
  memset(payload, 'p', sizeof(payload));
  for (int i = 0; i < 4000; ++i) {
    tern_msg_desc desc;
    memset(&desc, 0, sizeof(desc));
    desc.payload = payload;
    desc.payloadlen = sizeof(payload);
    tern_inbox_publish(in, (const uint8_t *)"slow", 4, &desc);
  }
  usleep(500000);
  tern_epoll_stop(srv_ep);
  pthread_join(th, NULL);
  tern_driver_stats ds;
  tern_driver_get_stats(d, &ds, sizeof(ds));
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  CHECK(ds.blocked > 0, "the socket filled up");
  CHECK(ds.buffered_max <= 65536 && ds.buffered <= 65536,
        "the driver held at most out_cap bytes (%llu)",
        (unsigned long long)ds.buffered_max);
  CHECK(ds.pulled < (uint64_t)4000 * 4096 / 2,
        "the hub was not drained into memory (%llu bytes pulled)",
        (unsigned long long)ds.pulled);
  CHECK_EQ(st.messages, 4000, "the hub still holds every message");
  tern_client_del(c);
  close(fd);
  tern_inbox_del(in);
  tern_driver_del(d);
  tern_hub_del(hub);
  tern_epoll_del(srv_ep);
}

/* Workers: 3 hubs on 3 threads; 6 receivers connect wherever the kernel
   puts them and are handed to their session's worker; 3 producer threads
   publish through tern_workers_publish; every message arrives once. */
#define WSESS 6
#define WPER 200
static tern_workers *wk;
static void *producer(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < WPER; ++i) {
    for (int k = 0; k < WSESS; ++k) {
      if (k % 3 != t) {
        continue;
      }
      char key[8], id[16];
      snprintf(key, sizeof(key), "w%d", k);
      snprintf(id, sizeof(id), "m%d", i);
      tern_msg_desc desc;
      memset(&desc, 0, sizeof(desc));
      desc.id = (const uint8_t *)id;
      desc.idlen = strlen(id);
      desc.payload = (const uint8_t *)id;
      desc.payloadlen = strlen(id);
      tern_workers_publish(wk, (const uint8_t *)key, strlen(key), &desc);
    }
  }
  return NULL;
}

static void test_workers(void) {
  tern_workers_options o;
  tern_workers_options_default(&o);
  o.nthreads = 3;
  uint16_t port = 0;
  CHECK_EQ(tern_workers_new(&wk, &o), 0, "tern_workers_new");
  CHECK_EQ(tern_workers_listen(wk, "127.0.0.1", 0, &port), 0,
           "tern_workers_listen");
  CHECK_EQ(tern_workers_start(wk), 0, "tern_workers_start");
  int fds[WSESS];
  tern_client *cl[WSESS];
  static uint8_t seen[WSESS][WPER];
  tern_tstamp now = tern_posix_now();
  for (int k = 0; k < WSESS; ++k) {
    char key[8];
    snprintf(key, sizeof(key), "w%d", k);
    fds[k] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fds[k], (struct sockaddr *)&sa, sizeof(sa)) != 0) {
      BAILOUT("connect");
    }
    tern_client_new(&cl[k], (const uint8_t *)key, strlen(key), NULL, 0, NULL,
                    NULL, now);
    tern_client_connect(cl[k], now);
  }
  pthread_t prod[3];
  for (int t = 0; t < 3; ++t) {
    pthread_create(&prod[t], NULL, producer, (void *)(intptr_t)t);
  }
  int got = 0, dups = 0, wrong = 0;
  tern_tstamp end = now + 20 * TERN_SECONDS;
  while (got < WSESS * WPER && (now = tern_posix_now()) < end) {
    struct pollfd p[WSESS];
    for (int k = 0; k < WSESS; ++k) {
      uint8_t buf[8192];
      tern_ssize n;
      while ((n = tern_client_write(cl[k], buf, sizeof(buf), now)) > 0) {
        if (write(fds[k], buf, (size_t)n) != n) {
          BAILOUT("write");
        }
      }
      p[k].fd = fds[k];
      p[k].events = POLLIN;
    }
    poll(p, WSESS, 20);
    for (int k = 0; k < WSESS; ++k) {
      uint8_t buf[65536];
      if (p[k].revents & POLLIN) {
        ssize_t r = read(fds[k], buf, sizeof(buf));
        if (r > 0) {
          tern_client_read(cl[k], buf, (size_t)r, now);
        }
      }
      if (tern_client_get_expiry(cl[k]) <= now) {
        tern_client_handle_expiry(cl[k], now);
      }
      tern_client_event ev;
      while (tern_client_next_event(cl[k], &ev) == 1) {
        if (ev.type == TERN_CLIENT_EV_MESSAGE) {
          int i = atoi((const char *)ev.id + 1);
          if (i < 0 || i >= WPER) {
            ++wrong;
            continue;
          }
          dups += seen[k][i]++;
          ++got;
        }
      }
    }
  }
  for (int t = 0; t < 3; ++t) {
    pthread_join(prod[t], NULL);
  }
  CHECK_EQ(got, WSESS * WPER, "every message reached its receiver");
  CHECK_EQ(dups + wrong, 0, "once each, none foreign");
  tern_workers_stop(wk);
  uint64_t sockets = 0;
  for (uint32_t i = 0; i < tern_workers_count(wk); ++i) {
    tern_driver_stats ds;
    tern_driver_get_stats(tern_workers_get_driver(wk, i), &ds, sizeof(ds));
    sockets += ds.sockets;
  }
  CHECK_EQ(sockets, WSESS, "each receiver has one socket, on one worker");
  for (int k = 0; k < WSESS; ++k) {
    tern_client_del(cl[k]);
    close(fds[k]);
  }
  tern_workers_del(wk);
}

/* A caller built against 0.1's header has a V1-long tern_settings and
   tern_msg_desc: the workers read that much of them and no further (ASan
   and valgrind see an over-read). */
static void test_workers_layouts(void) {
  tern_settings *s = malloc(layout_settings(TERN_SETTINGS_V1));
  if (!s) {
    BAILOUT("malloc");
  }
  (tern_settings_default)(s);
  tern_workers_options o;
  tern_workers_options_default(&o);
  o.nthreads = 2;
  o.settings = s;
  tern_workers *w = NULL;
  CHECK_EQ(tern_workers_new(&w, &o), 0, "workers take V1 settings");
  tern_msg_desc *d = calloc(1, layout_msg_desc(TERN_MSG_DESC_V1));
  if (!d) {
    BAILOUT("calloc");
  }
  d->payload = (const uint8_t *)"hi";
  d->payloadlen = 2;
  CHECK_EQ(tern_workers_publish_versioned(w, (const uint8_t *)"v1", 2,
                                          TERN_MSG_DESC_V1, d),
           0, "a V1 message desc is queued");
  CHECK_EQ(tern_workers_publish_versioned(w, (const uint8_t *)"v1", 2,
                                          TERN_MSG_DESC_VERSION + 1, d),
           TERN_ERR_INVALID, "an unknown desc layout is refused");
  free(d);
  tern_workers_del(w);
  s->version = TERN_SETTINGS_VERSION + 1;
  w = NULL;
  CHECK_EQ(tern_workers_new(&w, &o), TERN_ERR_INVALID,
           "... and refuse a version this library does not know");
  CHECK(w == NULL, "... creating nothing");
  free(s);
}

int main(void) {
  test_shard();
  test_workers_layouts();
  test_loop();
  test_driver();
  test_backpressure();
  test_workers();
  return tap_done();
}
