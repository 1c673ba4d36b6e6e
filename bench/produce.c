/*
 * Publishes per second over one producer connection, in process: PUBLISH
 * frames encoded, handed to tern_conn_read (decode, publish), PUBACKs
 * written, and the messages delivered to one subscriber connection and
 * acked.  The same run measures tern_hub_publish called directly (with
 * the same delivery and acks) for comparison.  Median of 5 runs of N
 * publishes, 64-byte payloads.
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

static double run(long n, int wire) {
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 1;
  tern_hub *hub = NULL;
  tern_hub_new(&hub, &s, NULL);
  tern_tstamp t = 1000000000;
  tern_conn *sub = open_conn(hub, "sub", t);
  tern_conn *prod = NULL;
  if (wire) {
    prod = open_conn(hub, "prod", t);
    tern_conn_allow_publish(prod, 1);
  }
  uint8_t payload[64];
  memset(payload, 'p', sizeof(payload));
  static uint8_t in[BATCH * 128];
  double start = now_s();
  for (long done = 0; done < n; done += BATCH) {
    if (wire) {
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
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  double w[RUNS], d[RUNS];
  for (int r = 0; r < RUNS; ++r) {
    w[r] = run(n, 1);
    d[r] = run(n, 0);
  }
  qsort(w, RUNS, sizeof(double), cmp);
  qsort(d, RUNS, sizeof(double), cmp);
  printf("publish->deliver->ack, %ld msgs of 64 B, median of %d runs\n", n,
         RUNS);
  printf("  PUBLISH over one producer conn: %10.0f msg/s\n", w[RUNS / 2]);
  printf("  tern_hub_publish direct:        %10.0f msg/s\n", d[RUNS / 2]);
  return 0;
}
