/*
 * Publishes per second over one producer connection, in process: PUBLISH
 * frames encoded, handed to tern_conn_read (decode, publish), PUBACKs
 * written, and the messages delivered to one subscriber connection and
 * acked.  The same run measures tern_hub_publish called directly (with
 * the same delivery and acks) for comparison, and a tern_client producer
 * whose bytes reach the connection through tern_client_write into the
 * host's buffer, or in place through tern_client_peek_output and
 * tern_client_consume.  Median of 5 runs of N publishes, 64-byte
 * payloads.
 *
 *   bench/produce [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tern.h"
#include "wire/frame.h"
#include "wire/publish.h"

#define RUNS 5
#define BATCH 512

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t out[1 << 20];

/* Delivers what the subscriber has and acks the last seq. */
static void deliver(tern_conn *sub, tern_tstamp t) {
  for (;;) {
    tern_ssize n = tern_conn_write(sub, out, sizeof(out), t);
    if (n <= 0) {
      return;
    }
    uint64_t last = 0;
    size_t off = 0;
    while (off < (size_t)n) {
      wire_frame f;
      tern_ssize k = wire_frame_decode(&f, out + off, (size_t)n - off, 1 << 24);
      if (k <= 0) {
        break;
      }
      if (f.type == WIRE_MSG) {
        last = f.u.msg.seq;
      }
      off += (size_t)k;
    }
    if (last) {
      uint8_t a[16];
      wire_frame f;
      f.type = WIRE_ACK;
      f.u.ack_seq = last;
      size_t al = wire_frame_encode(a, sizeof(a), &f);
      tern_conn_read(sub, a, al, t);
    }
  }
}

static tern_conn *open_conn(tern_hub *hub, const char *key, tern_tstamp t) {
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, t);
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_HELLO;
  f.u.hello.version = WIRE_VERSION;
  f.u.hello.key = (const uint8_t *)key;
  f.u.hello.keylen = strlen(key);
  uint8_t b[256];
  size_t n = wire_frame_encode(b, sizeof(b), &f);
  tern_conn_read(c, b, n, t);
  tern_conn_write(c, out, sizeof(out), t);
  return c;
}

/* How the publishes reach the hub. */
enum { DIRECT, WIRE, CLIENT_WRITE, CLIENT_PEEK };

/* Moves a client's bytes into the producer connection, and the PUBACKs
   back; the client's events are taken. */
static void client_turn(tern_client *cl, tern_conn *prod, int how,
                        tern_tstamp t) {
  static uint8_t buf[1 << 16];
  for (;;) {
    const uint8_t *p = buf;
    tern_ssize k = how == CLIENT_PEEK
                       ? tern_client_peek_output(cl, &p, t)
                       : tern_client_write(cl, buf, sizeof(buf), t);
    if (k <= 0) {
      break;
    }
    size_t off = 0;
    while (off < (size_t)k) {
      tern_ssize r = tern_conn_read(prod, p + off, (size_t)k - off, t);
      if (r < 0) {
        fprintf(stderr, "read: %s\n", tern_strerror((int)r));
        exit(1);
      }
      off += (size_t)r;
      tern_ssize w;
      while ((w = tern_conn_write(prod, out, sizeof(out), t)) > 0) {
        tern_client_read(cl, out, (size_t)w, t);
      }
    }
    if (how == CLIENT_PEEK) {
      tern_client_consume(cl, (size_t)k);
    }
  }
  tern_client_event ev;
  while (tern_client_next_event(cl, &ev) == 1) {
  }
}

/* A tern_client producer on the connection |prod|, past its WELCOME. */
static tern_client *open_client(tern_conn *prod, tern_tstamp t) {
  tern_client *cl = NULL;
  tern_client_event ev;
  if (tern_client_new(&cl, (const uint8_t *)"prod", 4, NULL, 0, NULL, NULL,
                      t) != 0 ||
      tern_client_next_event(cl, &ev) != 1 || tern_client_connect(cl, t) != 0) {
    fprintf(stderr, "client: setup\n");
    exit(1);
  }
  tern_ssize k;
  while ((k = tern_client_write(cl, out, sizeof(out), t)) > 0) {
    tern_conn_read(prod, out, (size_t)k, t);
  }
  while ((k = tern_conn_write(prod, out, sizeof(out), t)) > 0) {
    tern_client_read(cl, out, (size_t)k, t);
  }
  if (tern_client_next_event(cl, &ev) != 1 ||
      ev.type != TERN_CLIENT_EV_CONNECTED) {
    fprintf(stderr, "client: no WELCOME\n");
    exit(1);
  }
  return cl;
}

static double run(long n, int how) {
  const int wire = how != DIRECT;
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 1;
  tern_hub *hub = NULL;
  tern_hub_new(&hub, &s, NULL);
  tern_tstamp t = 1000000000;
  tern_conn *sub = open_conn(hub, "sub", t);
  tern_conn *prod = NULL;
  tern_client *cl = NULL;
  if (how == WIRE) {
    prod = open_conn(hub, "prod", t);
    tern_conn_allow_publish(prod, 1);
  } else if (wire) {
    tern_conn_new(&prod, hub, t);
    tern_conn_allow_publish(prod, 1);
    cl = open_client(prod, t);
  }
  uint8_t payload[64];
  memset(payload, 'p', sizeof(payload));
  static uint8_t in[BATCH * 128];
  double start = now_s();
  for (long done = 0; done < n; done += BATCH) {
    if (cl) {
      tern_msg_desc d;
      memset(&d, 0, sizeof(d));
      d.priority = TERN_PRIO_NORMAL;
      d.payload = payload;
      d.payloadlen = sizeof(payload);
      for (int i = 0; i < BATCH; ++i) {
        if (tern_client_publish(cl, 0, (const uint8_t *)"sub", 3, &d, NULL,
                                t) != 0) {
          fprintf(stderr, "client publish refused\n");
          exit(1);
        }
      }
      client_turn(cl, prod, how, t);
      deliver(sub, t);
    } else if (wire) {
      size_t len = 0;
      for (int i = 0; i < BATCH; ++i) {
        wire_publish p;
        memset(&p, 0, sizeof(p));
        p.req = (uint64_t)(done + i + 1);
        p.priority = TERN_PRIO_NORMAL;
        p.target = (const uint8_t *)"sub";
        p.targetlen = 3;
        p.payload = payload;
        p.payloadlen = sizeof(payload);
        len += wire_publish_encode(in + len, sizeof(in) - len, &p);
      }
      size_t off = 0;
      while (off < len) {
        tern_ssize r = tern_conn_read(prod, in + off, len - off, t);
        if (r < 0) {
          fprintf(stderr, "read: %s\n", tern_strerror((int)r));
          exit(1);
        }
        off += (size_t)r;
        while (tern_conn_write(prod, out, sizeof(out), t) > 0) {
        }
        deliver(sub, t);
      }
    } else {
      for (int i = 0; i < BATCH; ++i) {
        tern_msg_desc d;
        memset(&d, 0, sizeof(d));
        d.priority = TERN_PRIO_NORMAL;
        d.payload = payload;
        d.payloadlen = sizeof(payload);
        tern_hub_publish(hub, (const uint8_t *)"sub", 3, &d, t, NULL);
      }
      deliver(sub, t);
    }
  }
  double el = now_s() - start;
  tern_client_del(cl);
  tern_conn_del(sub);
  tern_conn_del(prod);
  tern_hub_del(hub);
  return (double)n / el;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  static const char *const names[] = {
      "tern_hub_publish direct:        ",
      "PUBLISH over one producer conn: ",
      "tern_client, write into buffer: ",
      "tern_client, peek + consume:    ",
  };
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  double r[4][RUNS];
  for (int i = 0; i < RUNS; ++i) {
    for (int how = 0; how < 4; ++how) { /* interleaved: the same noise */
      r[how][i] = run(n, how);
    }
  }
  printf("publish->deliver->ack, %ld msgs of 64 B, median of %d runs\n", n,
         RUNS);
  for (int how = 0; how < 4; ++how) {
    qsort(r[how], RUNS, sizeof(double), cmp);
    printf("  %s%10.0f msg/s\n", names[how], r[how][RUNS / 2]);
  }
  return 0;
}
