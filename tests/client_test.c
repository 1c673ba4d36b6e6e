/*
 * Tests of the receiver state machine (tern_client), with injected time
 * only.  Most tests drive a client against a real hub over an in-memory
 * network (struct net below: byte pipes with latency, an optional NAT that
 * forgets idle links, and the two host loops); malformed input and exact
 * frame timing use hand-built server frames.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

#include "base/crc32c.h"
#include "tern.h"
#include "wire/frame.h"

/* ==== the in-memory network =============================================== */

typedef struct chunk {
  struct chunk *next;
  tern_tstamp at; /* delivery time */
  int eof;        /* the sender closed its end */
  size_t len;
  uint8_t data[];
} chunk;

typedef struct pipe {
  chunk *head, *tail;
} pipe;

/* One transport: a TCP connection through a NAT mapping of its own. */
typedef struct link {
  tern_conn *conn;     /* the server's end; NULL once the server closed it */
  int client_open;     /* the client's end is open                          */
  pipe up, down;       /* client to server, server to client                */
  tern_tstamp nat_last;
  int nat_dead;
  int blackhole;       /* drops everything (a test cuts the path)           */
} link;

#define NET_MAX_LINKS 64
#define NET_MAX_MSGS 4096
#define NET_MAX_EVENTS 4096

typedef struct app_msg {
  char id[TERN_MAX_ID + 1];
  char payload[64];
  uint64_t seq;
} app_msg;

typedef struct app_event {
  int type, reason;
  uint64_t seq, count;
  tern_duration retry_after;
  tern_tstamp at;
} app_event;

typedef struct net {
  tern_hub *hub;
  tern_client *cl;
  const char *key;
  tern_tstamp now;
  tern_duration latency;
  tern_duration nat_idle; /* 0: no NAT */
  link *links[NET_MAX_LINKS];
  size_t nlinks;
  link *cur;              /* the client's transport */
  int refuse;             /* opening a transport fails */
  int app_ack;            /* the app acks every message it takes */
  int hold_events;        /* the app does not take events */
  size_t wcap;            /* the client's write buffer */
  /* what the app saw */
  app_msg msgs[NET_MAX_MSGS];
  size_t nmsgs;
  app_event evs[NET_MAX_EVENTS];
  size_t nevs;
  int read_errors;
  /* what the hub saw */
  uint64_t hello_last_seq[NET_MAX_EVENTS];
  uint64_t nhellos;
  uint64_t hub_dead;      /* TERN_EV_CONN_DEAD */
  uint64_t hub_client_goaways;
} net;

static void pipe_push(link *l, pipe *p, const uint8_t *data, size_t len,
                      int eof, tern_tstamp now, tern_duration latency,
                      tern_duration nat_idle) {
  if (l->blackhole || l->nat_dead) {
    return;
  }
  if (nat_idle) {
    if (now - l->nat_last > nat_idle) {
      l->nat_dead = 1; /* the mapping is gone: silence both ways, forever */
      return;
    }
    l->nat_last = now;
  }
  chunk *c = tu_xmalloc(sizeof(chunk) + len);
  c->next = NULL;
  c->at = now + latency;
  c->eof = eof;
  c->len = len;
  if (len) {
    memcpy(c->data, data, len);
  }
  if (p->tail) {
    p->tail->next = c;
  } else {
    p->head = c;
  }
  p->tail = c;
}

static chunk *pipe_pop(pipe *p, tern_tstamp now) {
  chunk *c = p->head;
  if (!c || c->at > now) {
    return NULL;
  }
  p->head = c->next;
  if (!p->head) {
    p->tail = NULL;
  }
  return c;
}

static void pipe_clear(pipe *p) {
  chunk *c;
  while ((c = pipe_pop(p, TERN_TSTAMP_NONE))) {
    free(c);
  }
}

static void net_send_up(net *n, link *l, const uint8_t *d, size_t len,
                        int eof) {
  pipe_push(l, &l->up, d, len, eof, n->now, n->latency, n->nat_idle);
}

static void net_send_down(net *n, link *l, const uint8_t *d, size_t len,
                          int eof) {
  pipe_push(l, &l->down, d, len, eof, n->now, n->latency, n->nat_idle);
}

static void net_init(net *n, tern_hub *hub, const char *key,
                     const tern_client_settings *cs, const tern_mem *mem) {
  memset(n, 0, sizeof(*n));
  n->hub = hub;
  n->key = key;
  n->now = T0;
  n->latency = MS(20);
  n->wcap = 4096;
  int rv = tern_client_new(&n->cl, (const uint8_t *)key, strlen(key),
                           (const uint8_t *)"tok", 3, cs, mem, n->now);
  if (rv != 0) {
    fprintf(stderr, "net_init: tern_client_new: %s\n", tern_strerror(rv));
    abort();
  }
}

static void net_free_links(net *n) {
  for (size_t i = 0; i < n->nlinks; ++i) {
    link *l = n->links[i];
    if (l->conn) {
      tern_conn_del(l->conn);
    }
    pipe_clear(&l->up);
    pipe_clear(&l->down);
    free(l);
  }
  n->nlinks = 0;
  n->cur = NULL;
}

static void net_free(net *n) {
  net_free_links(n);
  tern_client_del(n->cl);
  n->cl = NULL;
  if (n->hub) {
    tern_hub_del(n->hub);
    n->hub = NULL;
  }
}

/* The client's host closes its end of the current transport. */
static void net_client_close(net *n) {
  link *l = n->cur;
  if (!l) {
    return;
  }
  l->client_open = 0;
  net_send_up(n, l, NULL, 0, 1);
  n->cur = NULL;
}

static void net_open(net *n) {
  if (n->refuse || !n->hub) {
    tern_client_conn_lost(n->cl, n->now);
    return;
  }
  if (n->nlinks == NET_MAX_LINKS) {
    /* Reuse the slot of a finished link. */
    for (size_t i = 0; i < n->nlinks; ++i) {
      link *l = n->links[i];
      if (!l->conn && !l->client_open && !l->up.head && !l->down.head) {
        free(l);
        n->links[i] = n->links[--n->nlinks];
        break;
      }
    }
    if (n->nlinks == NET_MAX_LINKS) {
      fprintf(stderr, "net: too many links\n");
      abort();
    }
  }
  link *l = calloc(1, sizeof(link));
  if (!l || tern_conn_new(&l->conn, n->hub, n->now) != 0) {
    abort();
  }
  l->client_open = 1;
  l->nat_last = n->now;
  n->links[n->nlinks++] = l;
  n->cur = l;
  int rv = tern_client_connect(n->cl, n->now);
  if (rv != 0) {
    fprintf(stderr, "net: tern_client_connect: %s\n", tern_strerror(rv));
    abort();
  }
}

static int net_deliver(net *n) {
  int progress = 0;
  for (size_t i = 0; i < n->nlinks; ++i) {
    link *l = n->links[i];
    chunk *c;
    while ((c = pipe_pop(&l->up, n->now))) {
      progress = 1;
      if (l->conn) {
        if (c->eof) {
          tern_conn_del(l->conn);
          l->conn = NULL;
        } else {
          tern_conn_read(l->conn, c->data, c->len, n->now);
        }
      }
      free(c);
    }
    while ((c = pipe_pop(&l->down, n->now))) {
      progress = 1;
      if (l == n->cur && l->client_open) {
        if (c->eof) {
          l->client_open = 0;
          n->cur = NULL;
          tern_client_conn_lost(n->cl, n->now);
        } else if (tern_client_read(n->cl, c->data, c->len, n->now) < 0) {
          ++n->read_errors;
          net_client_close(n);
        }
      }
      free(c);
    }
  }
  return progress;
}

static void net_record(net *n, const tern_client_event *ev) {
  if (n->nevs < NET_MAX_EVENTS) {
    app_event *e = &n->evs[n->nevs++];
    e->type = ev->type;
    e->reason = ev->reason;
    e->seq = ev->seq;
    e->count = ev->count;
    e->retry_after = ev->retry_after;
    e->at = n->now;
  }
  if (ev->type == TERN_CLIENT_EV_MESSAGE && n->nmsgs < NET_MAX_MSGS) {
    app_msg *m = &n->msgs[n->nmsgs++];
    memcpy(m->id, ev->id, ev->idlen);
    m->id[ev->idlen] = 0;
    size_t pl = ev->payloadlen < sizeof(m->payload) - 1
                    ? ev->payloadlen
                    : sizeof(m->payload) - 1;
    memcpy(m->payload, ev->payload, pl);
    m->payload[pl] = 0;
    m->seq = ev->seq;
  }
}

static int net_client_events(net *n) {
  int progress = 0;
  tern_client_event ev;
  while (!n->hold_events && tern_client_next_event(n->cl, &ev) == 1) {
    progress = 1;
    net_record(n, &ev);
    switch (ev.type) {
    case TERN_CLIENT_EV_CONNECT:
      net_open(n);
      break;
    case TERN_CLIENT_EV_DISCONNECTED:
      net_client_close(n);
      /* Harmless after DISCONNECTED: the reconnect is already planned. */
      tern_client_conn_lost(n->cl, n->now);
      break;
    case TERN_CLIENT_EV_MESSAGE:
      if (n->app_ack) {
        tern_client_ack(n->cl, ev.seq, n->now);
      }
      break;
    default:
      break;
    }
  }
  return progress;
}

static int net_client_output(net *n) {
  int progress = 0;
  uint8_t buf[4096];
  size_t cap = n->wcap < sizeof(buf) ? n->wcap : sizeof(buf);
  while (n->cur && n->cur->client_open) {
    tern_ssize r = tern_client_write(n->cl, buf, cap, n->now);
    if (r > 0) {
      net_send_up(n, n->cur, buf, (size_t)r, 0);
      progress = 1;
      continue;
    }
    if (r == TERN_ERR_CLOSED) {
      net_client_close(n);
      progress = 1;
    }
    break;
  }
  return progress;
}

static int net_hub_output(net *n) {
  int progress = 0;
  static uint8_t buf[1 << 16];
  for (size_t i = 0; i < n->nlinks; ++i) {
    link *l = n->links[i];
    while (l->conn) {
      tern_ssize r = tern_conn_write(l->conn, buf, sizeof(buf), n->now);
      if (r > 0) {
        net_send_down(n, l, buf, (size_t)r, 0);
        progress = 1;
        continue;
      }
      if (r == TERN_ERR_CLOSED) {
        /* The server's host closes the socket. */
        net_send_down(n, l, NULL, 0, 1);
        tern_conn_del(l->conn);
        l->conn = NULL;
        progress = 1;
      }
      break;
    }
  }
  return progress;
}

static void net_hub_events(net *n) {
  if (!n->hub) {
    return;
  }
  tern_event ev;
  while (tern_hub_next_event(n->hub, &ev) == 1) {
    if (ev.type == TERN_EV_CONN_HELLO && n->nhellos < NET_MAX_EVENTS) {
      n->hello_last_seq[n->nhellos++] = ev.seq;
    } else if (ev.type == TERN_EV_CONN_DEAD) {
      ++n->hub_dead;
    } else if (ev.type == TERN_EV_CONN_CLOSED &&
               ev.reason == TERN_GOAWAY_CLIENT) {
      ++n->hub_client_goaways;
    }
  }
}

static void net_settle(net *n) {
  for (int i = 0; i < 100000; ++i) {
    int progress = net_deliver(n);
    progress |= net_client_events(n);
    progress |= net_client_output(n);
    if (n->hub) {
      progress |= net_hub_output(n);
    }
    net_hub_events(n);
    if (!progress) {
      return;
    }
  }
  fprintf(stderr, "net: no quiescence\n");
  abort();
}

static tern_tstamp net_next_chunk(const net *n) {
  tern_tstamp t = TERN_TSTAMP_NONE;
  for (size_t i = 0; i < n->nlinks; ++i) {
    const link *l = n->links[i];
    if (l->up.head && l->up.head->at < t) {
      t = l->up.head->at;
    }
    if (l->down.head && l->down.head->at < t) {
      t = l->down.head->at;
    }
  }
  return t;
}

/* net_run runs both host loops until |until|. */
static void net_run(net *n, tern_tstamp until) {
  for (long i = 0; i < 50000000; ++i) {
    net_settle(n);
    tern_tstamp next = net_next_chunk(n);
    tern_tstamp ce = tern_client_get_expiry(n->cl);
    next = ce < next ? ce : next;
    if (n->hub) {
      tern_tstamp he = tern_hub_get_expiry(n->hub);
      next = he < next ? he : next;
    }
    if (next > until) {
      break;
    }
    if (next > n->now) {
      n->now = next;
    }
    if (n->hub) {
      tern_hub_handle_expiry(n->hub, n->now);
    }
    tern_client_handle_expiry(n->cl, n->now);
  }
  if (until > n->now) {
    n->now = until;
  }
  net_settle(n);
}

static void net_advance(net *n, tern_duration d) { net_run(n, n->now + d); }

static size_t net_count(const net *n, int type) {
  size_t k = 0;
  for (size_t i = 0; i < n->nevs; ++i) {
    k += n->evs[i].type == type;
  }
  return k;
}

static const app_event *net_last(const net *n, int type) {
  for (size_t i = n->nevs; i > 0; --i) {
    if (n->evs[i - 1].type == type) {
      return &n->evs[i - 1];
    }
  }
  return NULL;
}

/* How many times the app got message |id|. */
static size_t net_got(const net *n, const char *id) {
  size_t k = 0;
  for (size_t i = 0; i < n->nmsgs; ++i) {
    k += strcmp(n->msgs[i].id, id) == 0;
  }
  return k;
}

/* Every id the app got, at most once. */
static int net_no_dups(const net *n) {
  for (size_t i = 0; i < n->nmsgs; ++i) {
    for (size_t j = i + 1; j < n->nmsgs; ++j) {
      if (strcmp(n->msgs[i].id, n->msgs[j].id) == 0) {
        return 0;
      }
    }
  }
  return 1;
}

/* The server end of the client's transport is cut without either end
   noticing (a cable pulled, a NAT reboot). */
static void net_cut(net *n) {
  if (n->cur) {
    n->cur->blackhole = 1;
  }
}

static tern_client_stats cstats(const tern_client *c) {
  tern_client_stats st;
  memset(&st, 0, sizeof(st));
  tern_client_get_stats(c, &st, sizeof(st));
  return st;
}

static tern_client_settings csettings(void) {
  tern_client_settings s;
  tern_client_settings_default(&s);
  s.seed = 42;
  return s;
}

static void pub(net *n, const char *id, const char *payload) {
  if (tu_pub(n->hub, n->key, TERN_PRIO_NORMAL, id, payload, n->now) != 0) {
    fprintf(stderr, "pub %s failed\n", id);
    abort();
  }
}

/* ==== hand-built server frames ============================================ */

/* A client that was asked for a transport and got one: HELLO is queued. */
static tern_client *hello_client(const tern_client_settings *s,
                                 const tern_mem *mem, tern_tstamp now) {
  tern_client *c = NULL;
  if (tern_client_new(&c, (const uint8_t *)"dev1", 4, NULL, 0, s, mem, now) !=
      0) {
    abort();
  }
  tern_client_event ev;
  if (tern_client_next_event(c, &ev) != 1 ||
      ev.type != TERN_CLIENT_EV_CONNECT ||
      tern_client_connect(c, now) != 0) {
    abort();
  }
  return c;
}

/* The same, with the HELLO written out (to nowhere). */
static tern_client *bare_client(const tern_client_settings *s,
                                const tern_mem *mem, tern_tstamp now) {
  tern_client *c = hello_client(s, mem, now);
  uint8_t buf[2048];
  if (tern_client_write(c, buf, sizeof(buf), now) <= 0) {
    abort();
  }
  return c;
}

/* Collects what the client writes, decoded. */
static void cl_drain(tu_out *o, tern_client *c, size_t cap, tern_tstamp now) {
  uint8_t buf[4096];
  o->first_new = o->nframes;
  for (int i = 0; i < 1000; ++i) {
    tern_ssize r = tern_client_write(c, buf, cap, now);
    if (r <= 0) {
      if (r == TERN_ERR_CLOSED) {
        o->closed = 1;
      }
      return;
    }
    tu_out_append(o, buf, (size_t)r);
    tu_out_decode(o);
  }
}

static tern_ssize feed_frame(tern_client *c, const wire_frame *f,
                             tern_tstamp now) {
  uint8_t buf[8192];
  size_t n = wire_frame_encode(buf, sizeof(buf), f);
  if (n == 0) {
    abort();
  }
  return tern_client_read(c, buf, n, now);
}

static tern_ssize feed_welcome(tern_client *c, uint64_t epoch, uint64_t flags,
                               uint64_t hb_ms, uint64_t live_ms,
                               uint64_t window, uint64_t retry_ms,
                               tern_tstamp now) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_WELCOME;
  f.u.welcome.version = WIRE_VERSION;
  f.u.welcome.epoch = epoch;
  f.u.welcome.flags = flags;
  f.u.welcome.heartbeat_ms = hb_ms;
  f.u.welcome.liveness_ms = live_ms;
  f.u.welcome.window = window;
  f.u.welcome.retry_ms = retry_ms;
  return feed_frame(c, &f, now);
}

static size_t msg_bytes(uint8_t *buf, size_t cap, uint64_t seq,
                        const char *id, const char *payload) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_MSG;
  f.u.msg.seq = seq;
  f.u.msg.priority = TERN_PRIO_NORMAL;
  f.u.msg.id = (const uint8_t *)id;
  f.u.msg.idlen = strlen(id);
  f.u.msg.payload = (const uint8_t *)payload;
  f.u.msg.payloadlen = strlen(payload);
  return wire_frame_encode(buf, cap, &f);
}

static tern_ssize feed_msg(tern_client *c, uint64_t seq, const char *id,
                           const char *payload, tern_tstamp now) {
  uint8_t buf[4096];
  size_t n = msg_bytes(buf, sizeof(buf), seq, id, payload);
  return tern_client_read(c, buf, n, now);
}

/* Takes every event; returns how many MESSAGE events there were. */
static size_t take_all(tern_client *c, int *types, size_t cap, size_t *ntypes) {
  tern_client_event ev;
  size_t msgs = 0, k = 0;
  while (tern_client_next_event(c, &ev) == 1) {
    msgs += ev.type == TERN_CLIENT_EV_MESSAGE;
    if (types && k < cap) {
      types[k] = ev.type;
    }
    ++k;
  }
  if (ntypes) {
    *ntypes = k;
  }
  return msgs;
}

/* ==== tests =============================================================== */

static void test_new_and_settings(void) {
  tern_client_settings s;
  tern_client_settings_default(&s);
  CHECK_INT(s.version, TERN_CLIENT_SETTINGS_VERSION, "settings: version");
  CHECK(s.liveness_timeout == SEC(7) && s.ack_every == 10 &&
            s.ack_delay == SEC(1) && s.dedup_max == 10000 &&
            s.dedup_window == SEC(600) && s.backoff_base == SEC(1) &&
            s.backoff_cap == SEC(15) && s.max_attempts == 6 &&
            s.heartbeat_cap == SEC(300) && s.max_payload == 1024 * 1024,
        "settings: documented defaults");

  tern_client *c = NULL;
  const uint8_t *k = (const uint8_t *)"k";
  uint8_t big[TERN_MAX_TOKEN + 1];
  memset(big, 'x', sizeof(big));
  CHECK_INT(tern_client_new(NULL, k, 1, NULL, 0, NULL, NULL, T0),
            TERN_ERR_INVALID, "new: NULL out-pointer");
  CHECK_INT(tern_client_new(&c, k, 0, NULL, 0, NULL, NULL, T0),
            TERN_ERR_INVALID, "new: empty key");
  CHECK_INT(tern_client_new(&c, big, TERN_MAX_SESSION_KEY + 1, NULL, 0, NULL,
                            NULL, T0),
            TERN_ERR_TOO_LARGE, "new: key too long");
  CHECK_INT(tern_client_new(&c, k, 1, big, sizeof(big), NULL, NULL, T0),
            TERN_ERR_TOO_LARGE, "new: token too long");
  CHECK_INT(tern_client_new(&c, k, 1, NULL, 3, NULL, NULL, T0),
            TERN_ERR_INVALID, "new: NULL token with a length");
  tern_client_settings bad = s;
  bad.version = 0;
  CHECK_INT(tern_client_new(&c, k, 1, NULL, 0, &bad, NULL, T0),
            TERN_ERR_INVALID, "new: settings version 0");
  bad = s;
  bad.backoff_cap = bad.backoff_base - 1;
  CHECK_INT(tern_client_new(&c, k, 1, NULL, 0, &bad, NULL, T0),
            TERN_ERR_INVALID, "new: backoff cap below base");
  bad = s;
  bad.ack_every = 0;
  CHECK_INT(tern_client_new(&c, k, 1, NULL, 0, &bad, NULL, T0),
            TERN_ERR_INVALID, "new: ack_every 0");
  tern_mem half = {NULL, tu_malloc, NULL, tu_calloc, tu_realloc};
  CHECK_INT(tern_client_new(&c, k, 1, NULL, 0, NULL, &half, T0),
            TERN_ERR_INVALID, "new: incomplete tern_mem");
  CHECK(c == NULL, "new: out-pointer untouched on failure");

  CHECK_INT(tern_client_new(&c, k, 1, NULL, 0, NULL, NULL, T0), 0,
            "new: defaults");
  uint8_t buf[64];
  CHECK_INT(tern_client_read(c, buf, 1, T0), TERN_ERR_STATE,
            "read before connect: STATE");
  CHECK_INT(tern_client_write(c, buf, sizeof(buf), T0), TERN_ERR_STATE,
            "write before connect: STATE");
  CHECK(!tern_client_want_write(c), "nothing to write before connect");
  CHECK(tern_client_get_expiry(c) == TERN_TSTAMP_NONE,
        "no deadline while waiting for the host's transport");
  tern_client_event ev;
  CHECK_INT(tern_client_next_event(c, &ev), 1, "first event");
  CHECK_INT(ev.type, TERN_CLIENT_EV_CONNECT, "first event is CONNECT");
  CHECK_INT(tern_client_next_event(c, &ev), 0, "then nothing");
  CHECK_INT(tern_client_connect(c, T0), 0, "connect");
  CHECK_INT(tern_client_connect(c, T0), TERN_ERR_STATE, "connect twice");
  CHECK_INT(tern_client_ack(c, 1, T0), TERN_ERR_INVALID,
            "ack of a seq never delivered");
  CHECK_INT(tern_client_close(c, T0), 0, "close before the HELLO went out");
  CHECK_INT(tern_client_write(c, buf, sizeof(buf), T0), TERN_ERR_CLOSED,
            "write after close: CLOSED");
  CHECK_INT(tern_client_connect(c, T0), TERN_ERR_CLOSED,
            "connect after close: CLOSED");
  CHECK_INT(tern_client_next_event(c, NULL), TERN_ERR_INVALID,
            "next_event NULL");
  tern_client_del(c);
  tern_client_del(NULL);
  CHECK_INT(tern_client_connect(NULL, T0), TERN_ERR_INVALID, "NULL client");
  CHECK(tern_client_get_expiry(NULL) == TERN_TSTAMP_NONE, "NULL expiry");
}

static void test_handshake(void) {
  tern_client_settings s = csettings();
  s.heartbeat_interval = SEC(10);
  tern_client *c = hello_client(&s, NULL, T0);
  tu_out o;
  tu_out_init(&o);
  cl_drain(&o, c, 3, T0); /* three bytes per write */
  const wire_frame *h = tu_nth(&o, WIRE_HELLO, 0, 0);
  CHECK(o.nframes == 1 && h, "HELLO is the first and only frame");
  CHECK(h && h->u.hello.version == WIRE_VERSION &&
            h->u.hello.last_seq == 0 && h->u.hello.epoch == 0 &&
            h->u.hello.heartbeat_ms == 10000 && h->u.hello.keylen == 4 &&
            memcmp(h->u.hello.key, "dev1", 4) == 0 &&
            h->u.hello.tokenlen == 0,
        "HELLO: version, last_seq 0, epoch 0, heartbeat, key");
  CHECK(tern_client_get_expiry(c) == T0 + SEC(7),
        "waits liveness_timeout for WELCOME");
  tu_out_free(&o);
  tern_client_del(c);

  /* Against a real hub. */
  tern_settings hs = tu_settings();
  net n;
  net_init(&n, tu_hub(&hs), "alice", &s, NULL);
  net_advance(&n, MS(100));
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_CONNECTED), 1,
            "hub: CONNECTED after WELCOME");
  CHECK_INT(net_last(&n, TERN_CLIENT_EV_CONNECTED)->count, 0,
            "first connection: not resumed");
  CHECK_INT(n.nhellos, 1, "hub saw one HELLO");
  CHECK(tu_info(n.hub, "alice").nconns == 1, "hub: session has the conn");
  tern_client_stats st = cstats(n.cl);
  CHECK(st.rtt == MS(40), "RTT from the PING after WELCOME: 2 x 20 ms");
  CHECK(st.heartbeat_interval == SEC(10), "heartbeat as negotiated");
  CHECK_INT(st.reconnects, 0, "no reconnect yet");
  /* An idle minute: the hub's PINGs keep it alive, the client answers. */
  net_advance(&n, SEC(60));
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_DISCONNECTED), 0,
            "idle minute: still connected");
  CHECK_INT(tu_stats(n.hub).conns_dead, 0, "hub hears the client's PONGs");
  net_free(&n);
}

static void test_message_fields(void) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  net n;
  net_init(&n, tu_hub(&hs), "bob", &s, NULL);
  net_advance(&n, MS(100));
  n.hold_events = 1;
  tern_attr attrs[2] = {{"lang", "en"}, {"k", ""}};
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)"m-1";
  d.idlen = 3;
  d.collapse_key = (const uint8_t *)"score";
  d.collapse_keylen = 5;
  d.priority = TERN_PRIO_HIGH;
  d.ttl = SEC(60);
  d.payload = (const uint8_t *)"\0bin";
  d.payloadlen = 4;
  d.content_type = "application/x";
  d.attrs = attrs;
  d.nattrs = 2;
  CHECK_INT(tern_hub_publish(n.hub, (const uint8_t *)"bob", 3, &d, n.now,
                             NULL),
            0, "publish with every field");
  net_advance(&n, MS(100));
  tern_client_event ev;
  int got = 0;
  while (tern_client_next_event(n.cl, &ev) == 1) {
    if (ev.type != TERN_CLIENT_EV_MESSAGE) {
      continue;
    }
    got = 1;
    CHECK(ev.idlen == 3 && memcmp(ev.id, "m-1", 3) == 0, "MESSAGE: id");
    CHECK(ev.collapse_keylen == 5 && memcmp(ev.collapse_key, "score", 5) == 0,
          "MESSAGE: collapse key");
    CHECK_INT(ev.priority, TERN_PRIO_HIGH, "MESSAGE: priority");
    CHECK(ev.ttl > SEC(59) && ev.ttl <= SEC(60), "MESSAGE: remaining ttl");
    CHECK(ev.payloadlen == 4 && memcmp(ev.payload, "\0bin", 4) == 0,
          "MESSAGE: binary payload");
    CHECK(ev.content_typelen == 13 &&
              memcmp(ev.content_type, "application/x", 13) == 0,
          "MESSAGE: content type");
    CHECK(ev.nattrs == 2 && ev.attrs[0].keylen == 4 &&
              memcmp(ev.attrs[0].key, "lang", 4) == 0 &&
              ev.attrs[0].valuelen == 2 && ev.attrs[1].valuelen == 0,
          "MESSAGE: attributes");
    CHECK_INT(ev.seq, 1, "MESSAGE: seq");
  }
  CHECK(got, "the message arrived");
  n.hold_events = 0;
  net_free(&n);
}

static void test_dedup(void) {
  /* A hub that sends again what was not acked within 2 s, and a client
     that acks late: the copy arrives on the same connection. */
  tern_settings hs = tu_settings();
  hs.ack_timeout = SEC(2);
  tern_client_settings s = csettings();
  s.ack_every = 100;
  s.ack_delay = SEC(5);
  net n;
  net_init(&n, tu_hub(&hs), "carol", &s, NULL);
  net_advance(&n, MS(100));
  pub(&n, "x1", "one");
  net_advance(&n, SEC(3));
  tern_client_stats st = cstats(n.cl);
  CHECK_INT(st.received, 2, "dedup: the hub sent the message twice");
  CHECK_INT(st.duplicates, 1, "dedup: one duplicate counted");
  CHECK_INT(net_got(&n, "x1"), 1, "dedup: the app got it once");
  net_advance(&n, SEC(5));
  CHECK_INT(tu_info(n.hub, "carol").inflight, 0,
            "dedup: the ACK covered the copy too");
  CHECK_INT(tu_stats(n.hub).acked, 1, "dedup: the hub counts one ack");
  net_free(&n);

  /* By hand: the count bound and the age bound. */
  s = csettings();
  s.dedup_max = 2;
  s.dedup_window = SEC(10);
  tern_client *c = bare_client(&s, NULL, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
  feed_msg(c, 1, "a", "", T0);
  feed_msg(c, 2, "a", "", T0);
  CHECK_INT(take_all(c, NULL, 0, NULL), 1, "same id twice: one MESSAGE");
  feed_msg(c, 3, "b", "", T0);
  feed_msg(c, 4, "c", "", T0);
  feed_msg(c, 5, "a", "", T0);
  CHECK_INT(take_all(c, NULL, 0, NULL), 3,
            "past dedup_max the oldest id is forgotten");
  feed_msg(c, 6, "c", "", T0 + SEC(3));
  CHECK_INT(take_all(c, NULL, 0, NULL), 0, "within the window: dup");
  feed_msg(c, 7, "c", "", T0 + SEC(11));
  CHECK_INT(take_all(c, NULL, 0, NULL), 1,
            "after dedup_window the id is forgotten");
  CHECK_INT(cstats(c).duplicates, 2, "two duplicates counted");
  tern_client_del(c);
}

static void test_ack_timing(void) {
  tern_client_settings s = csettings();
  s.ack_every = 3;
  s.ack_delay = MS(500);
  tern_client *c = bare_client(&s, NULL, T0);
  tu_out o;
  tu_out_init(&o);
  cl_drain(&o, c, 4096, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
  cl_drain(&o, c, 4096, T0); /* the RTT PING */
  feed_msg(c, 1, "a", "", T0);
  feed_msg(c, 2, "b", "", T0);
  CHECK(!tern_client_want_write(c), "received but not taken: no ACK");
  take_all(c, NULL, 0, NULL);
  CHECK(!tern_client_want_write(c), "two taken: below ack_every");
  CHECK(tern_client_get_expiry(c) == T0 + MS(500),
        "ack_delay deadline from the first unacked message");
  feed_msg(c, 3, "c", "", T0 + MS(100));
  take_all(c, NULL, 0, NULL);
  CHECK(tern_client_want_write(c), "third taken: ACK due");
  cl_drain(&o, c, 4096, T0 + MS(100));
  const wire_frame *a = tu_last(&o, WIRE_ACK);
  CHECK(a && a->u.ack_seq == 3, "ACK 3 after ack_every messages");
  feed_msg(c, 4, "d", "", T0 + SEC(1));
  take_all(c, NULL, 0, NULL);
  CHECK(tern_client_get_expiry(c) == T0 + SEC(1) + MS(500),
        "a lone message: ACK deadline at ack_delay");
  tern_client_handle_expiry(c, T0 + SEC(1) + MS(499));
  CHECK(!tern_client_want_write(c), "not before ack_delay");
  tern_client_handle_expiry(c, T0 + SEC(1) + MS(500));
  cl_drain(&o, c, 4096, T0 + SEC(1) + MS(500));
  a = tu_last(&o, WIRE_ACK);
  CHECK(a && a->u.ack_seq == 4, "ACK 4 at ack_delay");
  CHECK_INT(cstats(c).acks_sent, 2, "two ACKs sent");
  /* tern_client_ack speeds the next ACK in automatic mode. */
  feed_msg(c, 5, "e", "", T0 + SEC(2));
  take_all(c, NULL, 0, NULL);
  CHECK_INT(tern_client_ack(c, 5, T0 + SEC(2)), 0, "ack in automatic mode");
  cl_drain(&o, c, 4096, T0 + SEC(2));
  a = tu_last(&o, WIRE_ACK);
  CHECK(a && a->u.ack_seq == 5, "tern_client_ack flushes the ACK");
  tu_out_free(&o);
  tern_client_del(c);

  /* A window of 4 caps the batch at 2, so the stream never stalls. */
  s.ack_every = 100;
  c = bare_client(&s, NULL, T0);
  tu_out_init(&o);
  cl_drain(&o, c, 4096, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 4, 0, T0);
  feed_msg(c, 1, "a", "", T0);
  feed_msg(c, 2, "b", "", T0);
  take_all(c, NULL, 0, NULL);
  cl_drain(&o, c, 4096, T0);
  a = tu_last(&o, WIRE_ACK);
  CHECK(a && a->u.ack_seq == 2, "ACK after half the server's window");
  tu_out_free(&o);
  tern_client_del(c);

  /* Against the hub: a stream of 50 with a window of 8 flows through. */
  tern_settings hs = tu_settings();
  hs.inflight_window = 8;
  s = csettings();
  net n;
  net_init(&n, tu_hub(&hs), "dave", &s, NULL);
  net_advance(&n, MS(100));
  char id[16];
  for (int i = 0; i < 50; ++i) {
    snprintf(id, sizeof(id), "s%d", i);
    pub(&n, id, "p");
  }
  net_advance(&n, MS(500));
  CHECK_INT(n.nmsgs, 50, "hub stream: all 50 delivered within 0.5 s");
  net_advance(&n, SEC(2));
  CHECK_INT(tu_stats(n.hub).acked, 50, "hub stream: all acked");
  CHECK(cstats(n.cl).acks_sent < 50, "hub stream: acks are batched");
  net_free(&n);
}

static void test_manual_ack(void) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  s.manual_ack = 1;
  s.ack_every = 1;
  net n;
  net_init(&n, tu_hub(&hs), "erin", &s, NULL);
  net_advance(&n, MS(100));
  char id[8];
  for (int i = 1; i <= 5; ++i) {
    snprintf(id, sizeof(id), "m%d", i);
    pub(&n, id, "p");
  }
  net_advance(&n, MS(200));
  CHECK_INT(n.nmsgs, 5, "manual: five taken");
  CHECK_INT(tu_info(n.hub, "erin").inflight, 5,
            "manual: nothing acked before the app acks");
  CHECK_INT(tern_client_ack(n.cl, n.msgs[2].seq, n.now), 0, "manual: ack 3");
  CHECK_INT(tern_client_ack(n.cl, 99, n.now), TERN_ERR_INVALID,
            "manual: ack of a seq never delivered");
  net_advance(&n, MS(100));
  CHECK_INT(tu_info(n.hub, "erin").inflight, 2, "manual: 3 acked, 2 left");
  /* The transport breaks; the server notices later. */
  net_cut(&n);
  tern_client_conn_lost(n.cl, n.now);
  n.cur->client_open = 0;
  n.cur = NULL;
  net_advance(&n, SEC(20));
  CHECK_INT(n.nhellos, 2, "manual: reconnected");
  CHECK_INT(n.hello_last_seq[1], n.msgs[2].seq,
            "manual: HELLO resumes from what the app acked");
  CHECK_INT(n.nmsgs, 5, "manual: re-sent messages are not delivered again");
  CHECK_INT(cstats(n.cl).duplicates, 2, "manual: two duplicates");
  CHECK_INT(tu_info(n.hub, "erin").inflight, 2,
            "manual: duplicates wait for the app's ack");
  CHECK_INT(tern_client_ack(n.cl, n.msgs[4].seq, n.now), 0, "manual: ack 5");
  net_advance(&n, MS(100));
  tern_session_info si = tu_info(n.hub, "erin");
  CHECK(si.inflight == 0 && si.pending == 0,
        "manual: the app's ack frees the re-sent copies");
  tern_hub *hub = n.hub;
  n.hub = NULL;
  net_free(&n);

  /* An app that crashes before it acks gets the messages again. */
  net_init(&n, hub, "erin", &s, NULL);
  net_advance(&n, MS(100));
  pub(&n, "c1", "p");
  pub(&n, "c2", "p");
  net_advance(&n, MS(100));
  CHECK_INT(n.nmsgs, 2, "crash: first process got two");
  net_cut(&n);
  net_free_links(&n);
  tern_client_del(n.cl);
  n.cl = NULL;
  n.hub = NULL;
  net n2;
  net_init(&n2, hub, "erin", &s, NULL);
  n2.app_ack = 1;
  net_advance(&n2, SEC(1));
  CHECK(net_got(&n2, "c1") == 1 && net_got(&n2, "c2") == 1,
        "crash: the new process gets the unacked messages again");
  net_advance(&n2, SEC(1));
  CHECK_INT(tu_info(hub, "erin").inflight, 0, "crash: then they are acked");
  net_free(&n2);
  net_free(&n);
}

static void test_resume(void) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  s.ack_every = 100;
  s.ack_delay = SEC(30);
  net n;
  net_init(&n, tu_hub(&hs), "frank", &s, NULL);
  net_advance(&n, MS(100));
  char id[8];
  for (int i = 1; i <= 5; ++i) {
    snprintf(id, sizeof(id), "r%d", i);
    pub(&n, id, "p");
  }
  net_advance(&n, MS(100));
  CHECK_INT(n.nmsgs, 5, "resume: five delivered");
  CHECK_INT(cstats(n.cl).acks_sent, 0, "resume: none acked yet");
  /* The path dies silently; the client notices by its liveness timeout. */
  net_cut(&n);
  for (int i = 6; i <= 8; ++i) {
    snprintf(id, sizeof(id), "r%d", i);
    pub(&n, id, "p");
  }
  net_advance(&n, SEC(30));
  const app_event *d = net_last(&n, TERN_CLIENT_EV_DISCONNECTED);
  CHECK(d && d->reason == TERN_GOAWAY_TIMEOUT, "resume: liveness death");
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_CONNECTED), 2, "resume: reconnected");
  CHECK_INT(net_last(&n, TERN_CLIENT_EV_CONNECTED)->count, 1,
            "resume: WELCOME says RESUMED");
  CHECK_INT(n.hello_last_seq[1], 5, "resume: HELLO last_seq 5");
  CHECK_INT(n.nmsgs, 8, "resume: the three new ones arrived");
  CHECK(net_no_dups(&n), "resume: no id delivered twice");
  CHECK_INT(cstats(n.cl).duplicates, 0, "resume: nothing was even re-sent");
  CHECK_INT(cstats(n.cl).reconnects, 1, "resume: one reconnect counted");
  net_free(&n);
}

static void test_gap(void) {
  tern_settings hs = tu_settings();
  hs.max_pending = 2;
  tern_client_settings s = csettings();
  net n;
  net_init(&n, tu_hub(&hs), "gina", &s, NULL);
  n.refuse = 1; /* offline at first */
  pub(&n, "g1", "p");
  pub(&n, "g2", "p");
  pub(&n, "g3", "p");
  pub(&n, "g4", "p");
  tu_pub_full(n.hub, "gina", TERN_PRIO_NORMAL, "g5", NULL, MS(5), "p",
              n.now, NULL);
  net_advance(&n, MS(10)); /* the first attempt fails */
  n.refuse = 0;
  net_advance(&n, SEC(5));
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_GAP), 2, "gap: two GAP events");
  int overflow = 0, expired = 0;
  for (size_t i = 0; i < n.nevs; ++i) {
    if (n.evs[i].type == TERN_CLIENT_EV_GAP) {
      overflow += n.evs[i].reason == TERN_DROP_OVERFLOW ? (int)n.evs[i].count
                                                        : 0;
      expired += n.evs[i].reason == TERN_DROP_EXPIRED ? (int)n.evs[i].count : 0;
    }
  }
  CHECK_INT(overflow, 3, "gap: three evicted by the full queue");
  CHECK_INT(expired, 1, "gap: one expired");
  CHECK_INT(cstats(n.cl).gaps, 4, "gap: counted in stats");
  CHECK_INT(n.nmsgs, 1, "gap: the survivor was delivered");
  net_free(&n);
}

static void test_resync(void) {
  tern_settings hs = tu_settings();
  hs.seed = 1;
  tern_client_settings s = csettings();
  net n;
  net_init(&n, tu_hub(&hs), "hank", &s, NULL);
  net_advance(&n, MS(100));
  pub(&n, "same", "old");
  net_advance(&n, SEC(2));
  uint64_t old_epoch = tern_hub_get_epoch(n.hub);
  /* The hub restarts without its state: connections drop. */
  net_free_links(&n);
  tern_hub_del(n.hub);
  tern_client_conn_lost(n.cl, n.now);
  hs.seed = 2;
  n.hub = tu_hub(&hs);
  CHECK(tern_hub_get_epoch(n.hub) != old_epoch, "resync: a new epoch");
  pub(&n, "same", "new");
  net_advance(&n, SEC(5));
  CHECK_INT(n.hello_last_seq[n.nhellos - 1], 1,
            "resync: HELLO named the old position");
  const app_event *r = net_last(&n, TERN_CLIENT_EV_RESYNC);
  CHECK(r && r->reason == TERN_CLIENT_RESYNC_EPOCH, "resync: RESYNC(EPOCH)");
  CHECK_INT(cstats(n.cl).resyncs, 1, "resync: counted");
  CHECK(n.nmsgs == 2 && strcmp(n.msgs[1].payload, "new") == 0,
        "resync: dedup state cleared, the new stream's message arrives");
  CHECK_INT(n.msgs[1].seq, 1, "resync: seqs start again");
  net_free(&n);

  /* The session expires on the server while the client is away. */
  hs = tu_settings();
  hs.session_ttl = SEC(60);
  net_init(&n, tu_hub(&hs), "ivan", &s, NULL);
  net_advance(&n, MS(100));
  pub(&n, "i1", "p");
  net_advance(&n, SEC(2));
  n.refuse = 1;
  net_client_close(&n);
  tern_client_conn_lost(n.cl, n.now);
  net_advance(&n, SEC(90));
  n.refuse = 0;
  net_open(&n); /* the host retries on its own */
  net_advance(&n, SEC(1));
  r = net_last(&n, TERN_CLIENT_EV_RESYNC);
  CHECK(r && r->reason == TERN_CLIENT_RESYNC_SESSION,
        "resync: RESYNC(SESSION) when the session expired");
  net_free(&n);
}

/* The session was deleted and created again under the same key while the
   client was away, so WELCOME says it existed: the seqs start over. */
static void test_session_reset(void) {
  tern_client_settings s = csettings();
  s.manual_ack = 1;
  tern_client *c = bare_client(&s, NULL, T0);
  feed_welcome(c, 7, WIRE_WELCOME_EXISTED, 4000, 7000, 256, 0, T0);
  feed_msg(c, 40, "old", "", T0);
  take_all(c, NULL, 0, NULL);
  tern_client_ack(c, 40, T0);
  tern_client_conn_lost(c, T0);
  tern_client_handle_expiry(c, tern_client_get_expiry(c));
  take_all(c, NULL, 0, NULL);
  tern_client_connect(c, T0 + SEC(2));
  tu_out o;
  tu_out_init(&o);
  cl_drain(&o, c, 4096, T0 + SEC(2));
  const wire_frame *h = tu_last(&o, WIRE_HELLO);
  CHECK(h && h->u.hello.last_seq == 40, "reset: HELLO resumes from 40");
  feed_welcome(c, 7, WIRE_WELCOME_EXISTED, 4000, 7000, 256, 0, T0 + SEC(2));
  feed_msg(c, 1, "old", "", T0 + SEC(2));
  feed_msg(c, 2, "new", "", T0 + SEC(2));
  tern_client_event ev;
  int resync = 0, msgs = 0;
  while (tern_client_next_event(c, &ev) == 1) {
    resync |= ev.type == TERN_CLIENT_EV_RESYNC &&
              ev.reason == TERN_CLIENT_RESYNC_SESSION && msgs == 0;
    msgs += ev.type == TERN_CLIENT_EV_MESSAGE;
  }
  CHECK(resync && msgs == 2,
        "reset: seq 1 after 40 means a new session: RESYNC, then both");
  tern_client_handle_expiry(c, T0 + SEC(4));
  cl_drain(&o, c, 4096, T0 + SEC(4));
  CHECK(tu_last(&o, WIRE_ACK) == NULL,
        "reset: nothing of the new stream is acked before the app acks");
  CHECK_INT(tern_client_ack(c, 2, T0 + SEC(2)), 0, "reset: ack 2");
  tern_client_handle_expiry(c, T0 + SEC(4));
  cl_drain(&o, c, 4096, T0 + SEC(4));
  const wire_frame *a = tu_last(&o, WIRE_ACK);
  CHECK(a && a->u.ack_seq == 2, "reset: ACK 2 after the app's ack");
  tu_out_free(&o);
  tern_client_del(c);
}

static void test_liveness(void) {
  tern_client_settings s = csettings();
  tern_client *c = bare_client(&s, NULL, T0);
  tu_out o;
  tu_out_init(&o);
  cl_drain(&o, c, 4096, T0);
  feed_welcome(c, 7, 0, 2000, 5000, 256, 0, T0);
  CHECK(tern_client_get_expiry(c) <= T0 + SEC(5),
        "liveness from WELCOME (5 s) overrides the local 7 s");
  cl_drain(&o, c, 4096, T0);
  feed_msg(c, 1, "a", "", T0 + SEC(3)); /* any bytes are a sign of life */
  take_all(c, NULL, 0, NULL);
  tern_client_handle_expiry(c, T0 + SEC(5));
  cl_drain(&o, c, 4096, T0 + SEC(5));
  int types[8];
  size_t nt = 0;
  take_all(c, types, 8, &nt);
  CHECK_INT(nt, 0, "no death while bytes arrive");
  tern_client_handle_expiry(c, T0 + SEC(8) - 1);
  take_all(c, types, 8, &nt);
  CHECK_INT(nt, 0, "alive until last_rx + liveness");
  tern_client_handle_expiry(c, T0 + SEC(8));
  tern_client_event ev;
  CHECK(tern_client_next_event(c, &ev) == 1 &&
            ev.type == TERN_CLIENT_EV_DISCONNECTED &&
            ev.reason == TERN_GOAWAY_TIMEOUT,
        "DISCONNECTED(TIMEOUT) at last_rx + liveness");
  uint8_t b[4];
  CHECK_INT(tern_client_read(c, b, 1, T0 + SEC(8)), TERN_ERR_STATE,
            "no transport after the death");
  tern_tstamp e = tern_client_get_expiry(c);
  CHECK(e >= T0 + SEC(8) && e < T0 + SEC(9),
        "first reconnect within backoff_base after a connected death");
  tu_out_free(&o);
  tern_client_del(c);

  /* No WELCOME within liveness_timeout. */
  c = bare_client(&s, NULL, T0);
  tern_client_handle_expiry(c, T0 + SEC(7));
  CHECK(tern_client_next_event(c, &ev) == 1 &&
            ev.type == TERN_CLIENT_EV_DISCONNECTED,
        "handshake timeout");
  tern_client_del(c);
}

static void test_backoff(void) {
  int seeds_ok = 1; /* seeds 2..20 */
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    tern_client_settings s = csettings();
    s.seed = seed;
    tern_settings hs = tu_settings();
    net n;
    net_init(&n, tu_hub(&hs), "jill", &s, NULL);
    n.refuse = 1;
    net_advance(&n, SEC(3600));
    size_t nconnect = net_count(&n, TERN_CLIENT_EV_CONNECT);
    const app_event *g = net_last(&n, TERN_CLIENT_EV_GIVE_UP);
    int ok = nconnect == 6 && g && g->count == 6 &&
             n.evs[n.nevs - 1].type == TERN_CLIENT_EV_GIVE_UP;
    tern_tstamp prev = T0;
    int k = 0, bounds = 1, nonzero = 0;
    for (size_t i = 0; i < n.nevs; ++i) {
      if (n.evs[i].type != TERN_CLIENT_EV_CONNECT) {
        continue;
      }
      if (k > 0) {
        tern_duration w = n.evs[i].at - prev;
        tern_duration bound = SEC(1) << (k - 1);
        bound = bound > SEC(15) ? SEC(15) : bound;
        bounds &= w < bound;
        nonzero += w > 0;
      }
      prev = n.evs[i].at;
      ++k;
    }
    if (seed == 1) {
      CHECK(ok, "backoff: 6 attempts, then GIVE_UP(6), then silence");
      CHECK(bounds, "backoff: wait n is below min(15 s, 1 s * 2^n)");
      CHECK(tern_client_get_expiry(n.cl) == TERN_TSTAMP_NONE,
            "backoff: no deadline after GIVE_UP");
      /* The network is back: the host connects on its own. */
      n.refuse = 0;
      net_open(&n);
      net_advance(&n, SEC(1));
      CHECK_INT(net_count(&n, TERN_CLIENT_EV_CONNECTED), 1,
                "backoff: connect after GIVE_UP works");
    } else if (!ok || !bounds || nonzero < 4) {
      tap_diag("backoff: seed %llu: attempts or waits out of bounds",
               (unsigned long long)seed);
      seeds_ok = 0;
    }
    net_free(&n);
  }
  CHECK(seeds_ok, "backoff: seeds 2..20 give 6 attempts, GIVE_UP, waits "
                  "within bounds, at most one of them 0");

  /* The same seed replays the same waits. */
  tern_tstamp at[2][8];
  memset(at, 0, sizeof(at));
  for (int r = 0; r < 2; ++r) {
    tern_client_settings s = csettings();
    s.seed = 99;
    net n;
    tern_settings hs = tu_settings();
    net_init(&n, tu_hub(&hs), "kim", &s, NULL);
    n.refuse = 1;
    net_advance(&n, SEC(600));
    int k = 0;
    for (size_t i = 0; i < n.nevs && k < 8; ++i) {
      if (n.evs[i].type == TERN_CLIENT_EV_CONNECT) {
        at[r][k++] = n.evs[i].at;
      }
    }
    net_free(&n);
  }
  CHECK(memcmp(at[0], at[1], sizeof(at[0])) == 0,
        "backoff: same seed, same schedule");
}

static void test_goaway_hint(void) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  net n;
  net_init(&n, tu_hub(&hs), "lee", &s, NULL);
  net_advance(&n, MS(100));
  tern_conn_goaway(n.cur->conn, TERN_GOAWAY_RESTART, SEC(40), n.now);
  tern_tstamp sent = n.now;
  net_advance(&n, SEC(60));
  const app_event *d = net_last(&n, TERN_CLIENT_EV_DISCONNECTED);
  CHECK(d && d->reason == TERN_GOAWAY_RESTART && d->retry_after == SEC(40),
        "goaway: DISCONNECTED with the reason and the hint");
  const app_event *c = net_last(&n, TERN_CLIENT_EV_CONNECT);
  CHECK(c && c->at == sent + MS(20) + SEC(40),
        "goaway: the reconnect waits exactly the hint, past backoff_cap");
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_CONNECTED), 2,
            "goaway: back after the hint");

  /* A restart spreads its clients with jittered hints. */
  int told = tern_hub_goaway_all(n.hub, TERN_GOAWAY_RESTART, SEC(10), n.now);
  CHECK_INT(told, 1, "goaway_all told one connection");
  net_advance(&n, SEC(30));
  d = net_last(&n, TERN_CLIENT_EV_DISCONNECTED);
  c = net_last(&n, TERN_CLIENT_EV_CONNECT);
  CHECK(d && c && d->retry_after <= SEC(10) &&
            (d->retry_after ? c->at == d->at + d->retry_after
                            : c->at - d->at < SEC(1)),
        "goaway_all: the reconnect follows the hint");
  net_free(&n);
}

static void test_close(void) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  s.ack_every = 100;
  net n;
  net_init(&n, tu_hub(&hs), "mia", &s, NULL);
  net_advance(&n, MS(100));
  pub(&n, "z1", "p");
  net_advance(&n, MS(100));
  CHECK_INT(tern_client_close(n.cl, n.now), 0, "close");
  net_advance(&n, SEC(60));
  CHECK_INT(n.hub_client_goaways, 1, "close: the hub got GOAWAY(CLIENT)");
  CHECK_INT(tu_stats(n.hub).acked, 1, "close: the pending ACK went first");
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_CONNECT), 1,
            "close: no reconnect follows");
  CHECK_INT(tern_client_close(n.cl, n.now), 0, "close twice");
  net_free(&n);

  /* Closing right after the HELLO went out: GOAWAY follows it, and what
     the server sends meanwhile is ignored. */
  tern_client *c = bare_client(&s, NULL, T0);
  CHECK_INT(tern_client_close(c, T0), 0, "close after HELLO");
  uint8_t buf[64];
  CHECK_INT(tern_client_read(c, buf, 3, T0), 3,
            "closing: server bytes are ignored");
  tu_out o;
  tu_out_init(&o);
  cl_drain(&o, c, sizeof(buf), T0);
  const wire_frame *g = tu_nth(&o, WIRE_GOAWAY, 0, 0);
  CHECK(o.nframes == 1 && g && g->u.goaway.reason == TERN_GOAWAY_CLIENT,
        "closing: GOAWAY(CLIENT) is the only frame after the HELLO");
  CHECK(o.closed, "closing: then write says CLOSED");
  CHECK_INT(tern_client_read(c, buf, 3, T0), TERN_ERR_CLOSED,
            "closed: read says CLOSED");
  tu_out_free(&o);
  tern_client_del(c);
  c = bare_client(&s, NULL, T0);
  tern_client_close(c, T0);
  tern_client_conn_lost(c, T0); /* the host gave up on the goodbye */
  CHECK_INT(tern_client_write(c, buf, sizeof(buf), T0), TERN_ERR_CLOSED,
            "closing, transport lost: closed");
  tern_client_del(c);
}

static size_t frame_into(uint8_t *buf, uint8_t type, const uint8_t *body,
                         size_t len) {
  buf[0] = type;
  buf[1] = (uint8_t)len; /* small bodies only */
  memcpy(buf + 2, body, len);
  return len + 2;
}

static void test_malformed(void) {
  tern_client_settings s = csettings();
  s.max_payload = 100;
  uint8_t buf[512];
  struct {
    const char *what;
    int welcomed;
    uint8_t bytes[32];
    size_t len;
    int err;
  } cases[] = {
      {"unknown frame type", 1, {0x09, 0x00}, 2, TERN_ERR_PROTO},
      {"type 0", 0, {0x00, 0x00}, 2, TERN_ERR_PROTO},
      {"MSG before WELCOME", 0, {0x03, 0x06, 0x01, 0x00, 0x01, 0x01, 'a', 0x00},
       8, TERN_ERR_PROTO},
      {"HELLO from the server", 1,
       {0x01, 0x0e, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 'k', 0x00},
       16, TERN_ERR_PROTO},
      {"ACK from the server", 1, {0x04, 0x01, 0x01}, 3, TERN_ERR_PROTO},
      {"PING before WELCOME", 0, {0x05, 0x08, 0, 0, 0, 0, 0, 0, 0, 1}, 10,
       TERN_ERR_PROTO},
      {"PING body of 7 bytes", 1, {0x05, 0x07, 0, 0, 0, 0, 0, 0, 1}, 9,
       TERN_ERR_PROTO},
      {"non-shortest varint", 1, {0x04, 0x02, 0x40, 0x05}, 4, TERN_ERR_PROTO},
      {"bytes left over in DROPPED", 1, {0x07, 0x03, 0x01, 0x01, 0x00}, 5,
       TERN_ERR_PROTO},
      {"MSG with priority 3", 1,
       {0x03, 0x06, 0x01, 0x00, 0x03, 0x01, 'a', 0x00}, 8, TERN_ERR_PROTO},
      {"MSG with an empty id", 1, {0x03, 0x05, 0x01, 0x00, 0x01, 0x00, 0x00},
       7, TERN_ERR_PROTO},
      {"MSG seq 0", 1, {0x03, 0x06, 0x00, 0x00, 0x01, 0x01, 'a', 0x00}, 8,
       TERN_ERR_PROTO},
      {"a body over max_payload", 1, {0x03, 0x80, 0x00, 0x40, 0x00}, 5,
       TERN_ERR_TOO_LARGE},
      {"too many attributes", 1,
       {0x03, 0x06, 0x01, 0x00, 0x01, 0x01, 'a', 0x09}, 8, TERN_ERR_TOO_LARGE},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    tern_client *c = bare_client(&s, NULL, T0);
    tu_out o;
    tu_out_init(&o);
    cl_drain(&o, c, 4096, T0);
    if (cases[i].welcomed) {
      feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
    }
    take_all(c, NULL, 0, NULL);
    tern_ssize r = tern_client_read(c, cases[i].bytes, cases[i].len, T0);
    tern_client_event ev;
    int disc = tern_client_next_event(c, &ev) == 1 &&
               ev.type == TERN_CLIENT_EV_DISCONNECTED;
    CHECK(r == cases[i].err && disc &&
              tern_client_read(c, buf, 1, T0) == TERN_ERR_STATE &&
              tern_client_get_expiry(c) < T0 + SEC(2),
          "malformed: %s -> %s, DISCONNECTED, reconnect scheduled",
          cases[i].what, tern_strerror((int)cases[i].err));
    tu_out_free(&o);
    tern_client_del(c);
  }

  /* Frames that break the rules of the stream. */
  tern_client *c = bare_client(&s, NULL, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
  feed_msg(c, 5, "a", "", T0);
  CHECK_INT(feed_msg(c, 5, "b", "", T0), TERN_ERR_PROTO,
            "a seq that does not increase");
  tern_client_del(c);
  c = bare_client(&s, NULL, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
  CHECK_INT(feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0), TERN_ERR_PROTO,
            "a second WELCOME");
  tern_client_del(c);
  c = hello_client(&s, NULL, T0);
  CHECK_INT(feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0), TERN_ERR_PROTO,
            "WELCOME before the HELLO went out");
  tern_client_del(c);
  c = bare_client(&s, NULL, T0);
  CHECK_INT(feed_welcome(c, 0, 0, 4000, 7000, 256, 0, T0), TERN_ERR_PROTO,
            "WELCOME with epoch 0");
  tern_client_del(c);

  /* A valid stream fed one byte at a time, and frames split anywhere. */
  c = bare_client(&s, NULL, T0);
  tu_out o;
  tu_out_init(&o);
  cl_drain(&o, c, 4096, T0);
  size_t len = 0;
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_WELCOME;
  f.u.welcome.version = 1;
  f.u.welcome.epoch = 9;
  f.u.welcome.heartbeat_ms = 20000;
  f.u.welcome.liveness_ms = 23000;
  f.u.welcome.window = 100;
  len += wire_frame_encode(buf + len, sizeof(buf) - len, &f);
  len += msg_bytes(buf + len, sizeof(buf) - len, 1, "a", "payload one");
  uint8_t ping[8] = {0, 0, 0, 0, 0, 0, 0, 42};
  len += frame_into(buf + len, WIRE_PING, ping, 8);
  len += msg_bytes(buf + len, sizeof(buf) - len, 70, "b", "two");
  uint8_t dropped[2] = {0x03, 0x01};
  len += frame_into(buf + len, WIRE_DROPPED, dropped, 2);
  int all_ok = 1;
  for (size_t i = 0; i < len; ++i) {
    all_ok &= tern_client_read(c, buf + i, 1, T0) == 1;
  }
  int types[16];
  size_t nt;
  size_t msgs = take_all(c, types, 16, &nt);
  CHECK(all_ok && msgs == 2 && nt == 4 && types[3] == TERN_CLIENT_EV_GAP,
        "one byte at a time: CONNECTED, 2 MESSAGE, GAP");
  cl_drain(&o, c, 4096, T0);
  const wire_frame *pong = tu_nth(&o, WIRE_PONG, 0, 0);
  CHECK(pong && pong->u.ping == 42, "PING answered with PONG(42)");
  tu_out_free(&o);
  tern_client_del(c);

  /* A GOAWAY ends the connection; what follows in the same read is
     ignored. */
  c = bare_client(&s, NULL, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
  uint8_t ga[] = {0x08, 0x04, 0x05, 0x00, 0x01, 'x', 0xff, 0xff};
  CHECK_INT(tern_client_read(c, ga, sizeof(ga), T0), (tern_ssize)sizeof(ga),
            "GOAWAY then garbage: read takes everything");
  tern_client_event ev;
  int seen = 0;
  while (tern_client_next_event(c, &ev) == 1) {
    seen |= ev.type == TERN_CLIENT_EV_DISCONNECTED &&
            ev.reason == TERN_GOAWAY_LIMIT;
  }
  CHECK(seen, "GOAWAY(LIMIT) -> DISCONNECTED(LIMIT)");
  tern_client_del(c);

  /* Against a hub: a malformed frame, then the client reconnects. */
  tern_settings hs = tu_settings();
  net n;
  tern_client_settings ns = csettings();
  net_init(&n, tu_hub(&hs), "nia", &ns, NULL);
  net_advance(&n, MS(100));
  uint8_t junk[] = {0x0f, 0x00};
  net_send_down(&n, n.cur, junk, sizeof(junk), 0);
  net_advance(&n, SEC(5));
  CHECK_INT(n.read_errors, 1, "hub: the junk was refused");
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_CONNECTED), 2,
            "hub: reconnected after the protocol error");
  net_free(&n);
}

/* One run of the allocation-failure scenario: a client whose allocator
   fails its |fail_at|-th call.  Returns 1 when the app got every message
   exactly once and nothing leaked. */
static int nomem_run(long fail_at, long *calls, int *created) {
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  a.fail_at = fail_at;
  tern_mem mem = tu_alloc_mem(&a);
  tern_settings hs = tu_settings();
  hs.ack_timeout = SEC(3);
  tern_client_settings s = csettings();
  s.ack_every = 100;
  s.ack_delay = SEC(5); /* past the hub's ack_timeout: copies come */
  s.dedup_max = 64;
  tern_client *probe = NULL;
  int rv = tern_client_new(&probe, (const uint8_t *)"pat", 3,
                           (const uint8_t *)"tok", 3, &s, &mem, T0);
  *created = rv == 0;
  if (rv != 0) {
    int ok = rv == TERN_ERR_NOMEM && a.outstanding == 0;
    *calls = a.calls;
    tu_alloc_finish(&a);
    return ok;
  }
  tern_client_del(probe);
  a.calls = 0; /* count the run proper from here */
  net n;
  net_init(&n, tu_hub(&hs), "pat", &s, &mem);
  net_advance(&n, MS(100));
  char id[16];
  for (int i = 0; i < 12; ++i) {
    snprintf(id, sizeof(id), "n%d", i);
    pub(&n, id, i % 3 ? "short" : "a somewhat longer payload here");
    net_advance(&n, MS(300));
  }
  /* One message larger than a write of the hub: it arrives in pieces. */
  static uint8_t big[100 * 1024];
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)"n16";
  d.idlen = 3;
  d.payload = big;
  d.payloadlen = sizeof(big);
  tern_hub_publish(n.hub, (const uint8_t *)"pat", 3, &d, n.now, NULL);
  net_advance(&n, SEC(6));
  net_cut(&n);
  net_advance(&n, SEC(30));
  for (int i = 12; i < 16; ++i) {
    snprintf(id, sizeof(id), "n%d", i);
    pub(&n, id, "late");
  }
  net_advance(&n, SEC(30));
  int ok = 1;
  for (int i = 0; i < 17; ++i) {
    snprintf(id, sizeof(id), "n%d", i);
    if (net_got(&n, id) != 1) {
      ok = 0;
    }
  }
  *calls = a.calls;
  if (fail_at == 0) {
    tern_client_stats st = cstats(n.cl);
    ok &= st.duplicates > 0; /* the scenario does reach dedup */
  }
  net_free(&n);
  ok &= a.outstanding == 0 && a.bad_frees == 0;
  ok &= tu_alloc_finish(&a) == 0;
  return ok;
}

static void test_nomem(void) {
  long calls = 0;
  int created;
  int ok = nomem_run(0, &calls, &created);
  CHECK(ok && created, "nomem: the scenario passes without failures");
  long total = calls;
  CHECK(total > 10, "nomem: the scenario allocates (%ld calls)", total);
  int all = 1, failed_new = 0;
  for (long k = 1; k <= total + 5; ++k) {
    long c2;
    if (!nomem_run(k, &c2, &created)) {
      all = 0;
      tap_diag("allocation %ld failing breaks the scenario", k);
    }
    failed_new += !created;
  }
  CHECK(all, "nomem: every allocation failing in turn: each message once, "
             "no leak (%ld runs)", total + 5);
  CHECK(failed_new >= 3, "nomem: tern_client_new fails cleanly too");

  /* By hand: handle_expiry and read report NOMEM without losing state. */
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  tern_client_settings s = csettings();
  s.max_attempts = 0;
  tern_client *c = bare_client(&s, &mem, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
  a.fail_at = a.calls + 1;
  a.fail_rest = 1;
  tern_ssize r = feed_msg(c, 1, "a", "x", T0);
  CHECK_INT(r, TERN_ERR_NOMEM, "read: NOMEM");
  a.fail_rest = 0;
  a.fail_at = 0;
  int types[8];
  size_t nt;
  CHECK_INT(take_all(c, types, 8, &nt), 0, "read: the message was not taken");
  CHECK(nt == 2 && types[1] == TERN_CLIENT_EV_DISCONNECTED,
        "read: DISCONNECTED(INTERNAL) queued without memory");
  /* Without memory the event ring cannot grow: the deadline stays due and
     nothing changes until memory comes back. */
  a.fail_at = a.calls + 1;
  a.fail_rest = 1;
  int got_nomem = 0, unchanged = 0;
  tern_tstamp e = 0;
  for (int i = 0; i < 100 && !got_nomem; ++i) {
    e = tern_client_get_expiry(c);
    if (tern_client_handle_expiry(c, e) == TERN_ERR_NOMEM) {
      got_nomem = 1;
      unchanged = tern_client_get_expiry(c) == e;
    } else {
      tern_client_conn_lost(c, e); /* the transport cannot be opened */
    }
  }
  a.fail_rest = 0;
  a.fail_at = 0;
  CHECK(got_nomem && unchanged, "handle_expiry: NOMEM, deadline still due");
  CHECK_INT(tern_client_handle_expiry(c, e), 0,
            "handle_expiry succeeds once memory is back");
  tern_client_event last;
  memset(&last, 0, sizeof(last));
  tern_client_event ev2;
  while (tern_client_next_event(c, &ev2) == 1) {
    last = ev2;
  }
  CHECK_INT(last.type, TERN_CLIENT_EV_CONNECT, "and CONNECT is queued");
  tern_client_del(c);
  CHECK(a.outstanding == 0, "by hand: no leak");
  tu_alloc_finish(&a);
}

/* Runs the adaptive client through a NAT that forgets links idle for
   longer than |nat|. */
static void test_adaptive(void) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  s.adaptive_heartbeat = 1;
  s.ack_every = 1;
  net n;
  net_init(&n, tu_hub(&hs), "quinn", &s, NULL);
  n.nat_idle = SEC(100);
  tern_duration seen[64];
  size_t nseen = 0;
  tern_tstamp converged_at = 0;
  size_t deaths_at_convergence = 0;
  for (int sec = 0; sec < 6 * 3600; sec += sec < 1800 ? 1 : 60) {
    net_advance(&n, sec < 1800 ? SEC(1) : SEC(60));
    int minute = sec / 60;
    tern_duration h = cstats(n.cl).heartbeat_interval;
    if (nseen == 0 || seen[nseen - 1] != h) {
      if (nseen < 64) {
        seen[nseen++] = h;
      }
      converged_at = n.now;
      deaths_at_convergence = net_count(&n, TERN_CLIENT_EV_DISCONNECTED);
    }
    if (sec % 1800 == 1740) {
      char id[16];
      snprintf(id, sizeof(id), "q%d", minute);
      pub(&n, id, "tick");
    }
  }
  net_advance(&n, SEC(1));
  for (size_t i = 0; i < nseen; ++i) {
    tap_diag("adaptive: H = %.2f s", (double)seen[i] / 1e9);
  }
  tern_duration final = seen[nseen - 1];
  size_t deaths = net_count(&n, TERN_CLIENT_EV_DISCONNECTED);
  CHECK(seen[0] == SEC(30), "adaptive: starts at 30 s");
  CHECK(nseen >= 3, "adaptive: probes longer intervals");
  CHECK(final < SEC(100) && final >= SEC(50),
        "adaptive: converges below the NAT timeout (%.1f s < 100 s)",
        (double)final / 1e9);
  CHECK(converged_at < T0 + SEC(3600), "adaptive: converged within an hour");
  CHECK(deaths >= 1 && deaths == deaths_at_convergence,
        "adaptive: %zu death(s) while probing, none after convergence",
        deaths);
  CHECK(n.nmsgs == 12 && net_no_dups(&n),
        "adaptive: every message of the 6 hours arrived once (%zu)",
        n.nmsgs);
  CHECK(tu_stats(n.hub).conns_dead <= deaths,
        "adaptive: the hub never declared a live client dead");
  const app_event *d = net_last(&n, TERN_CLIENT_EV_DISCONNECTED);
  CHECK(d && d->reason == TERN_GOAWAY_TIMEOUT,
        "adaptive: the failed probe shows as a liveness death");
  net_free(&n);

  /* Without a NAT the interval climbs to the cap and stays there. */
  s.heartbeat_cap = SEC(120);
  net_init(&n, tu_hub(&hs), "rita", &s, NULL);
  net_advance(&n, SEC(3 * 3600));
  CHECK(cstats(n.cl).heartbeat_interval == SEC(120),
        "adaptive: no NAT, the interval reaches heartbeat_cap");
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_DISCONNECTED), 0,
            "adaptive: no NAT, no death");
  CHECK_INT(tu_stats(n.hub).conns_dead, 0,
            "adaptive: the hub hears the keepalives");
  net_free(&n);

  /* A NAT shorter than the first interval: halve until one survives,
     then probe upwards again and lock.  Then the network changes (a
     stricter NAT): the locked interval fails twice and is relearnt. */
  s.heartbeat_cap = SEC(300);
  net_init(&n, tu_hub(&hs), "pia", &s, NULL);
  n.nat_idle = SEC(20);
  net_advance(&n, SEC(3600));
  tern_duration h1 = cstats(n.cl).heartbeat_interval;
  size_t d1 = net_count(&n, TERN_CLIENT_EV_DISCONNECTED);
  net_advance(&n, SEC(3600));
  CHECK(h1 == SEC(15) && net_count(&n, TERN_CLIENT_EV_DISCONNECTED) == d1,
        "adaptive: NAT 20 s below the start: locks at 15 s, then quiet "
        "(%.2f s, %zu deaths)", (double)h1 / 1e9, d1);
  n.nat_idle = SEC(12);
  net_advance(&n, SEC(3600));
  tern_duration h2 = cstats(n.cl).heartbeat_interval;
  size_t d2 = net_count(&n, TERN_CLIENT_EV_DISCONNECTED);
  net_advance(&n, SEC(3600));
  CHECK(h2 < SEC(12) && net_count(&n, TERN_CLIENT_EV_DISCONNECTED) == d2,
        "adaptive: NAT drops to 12 s: relearns %.2f s, then quiet",
        (double)h2 / 1e9);
  net_free(&n);

  /* A hub with a lower max_heartbeat caps the interval. */
  hs.max_heartbeat = SEC(45);
  s.heartbeat_cap = SEC(300);
  net_init(&n, tu_hub(&hs), "sam", &s, NULL);
  net_advance(&n, SEC(3600));
  CHECK(cstats(n.cl).heartbeat_interval <= SEC(45),
        "adaptive: never above the server's heartbeat");
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_DISCONNECTED), 0,
            "adaptive: capped by the server, no death");
  net_free(&n);
}

static void test_partial_io(void) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  net n;
  net_init(&n, tu_hub(&hs), "tom", &s, NULL);
  n.wcap = 1; /* the client writes one byte at a time */
  net_advance(&n, MS(100));
  CHECK_INT(net_count(&n, TERN_CLIENT_EV_CONNECTED), 1,
            "one-byte writes: the HELLO still arrives whole");
  pub(&n, "u1", "p");
  net_advance(&n, SEC(2));
  CHECK_INT(tu_stats(n.hub).acked, 1, "one-byte writes: the ACK arrives");
  /* A message larger than the hub's writes: it arrives in pieces. */
  size_t big = 300 * 1024;
  uint8_t *payload = tu_xmalloc(big);
  for (size_t i = 0; i < big; ++i) {
    payload[i] = (uint8_t)(i * 7);
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)"big";
  d.idlen = 3;
  d.payload = payload;
  d.payloadlen = big;
  n.hold_events = 1;
  CHECK_INT(tern_hub_publish(n.hub, (const uint8_t *)"tom", 3, &d, n.now,
                             NULL),
            0, "publish 300 KiB");
  pub(&n, "small", "after");
  net_advance(&n, MS(200));
  tern_client_event ev;
  int whole = 0, after = 0;
  while (tern_client_next_event(n.cl, &ev) == 1) {
    if (ev.type == TERN_CLIENT_EV_MESSAGE && ev.idlen == 3 &&
        memcmp(ev.id, "big", 3) == 0) {
      whole = ev.payloadlen == big && memcmp(ev.payload, payload, big) == 0;
    } else if (ev.type == TERN_CLIENT_EV_MESSAGE) {
      after = ev.payloadlen == 5;
    }
  }
  CHECK(whole && after, "300 KiB in pieces: reassembled, then the next");
  n.hold_events = 0;
  free(payload);
  net_free(&n);

  /* Over the client's max_payload by one byte: refused. */
  tern_settings hs2 = tu_settings();
  tern_client_settings s2 = csettings();
  s2.max_payload = 1000;
  net_init(&n, tu_hub(&hs2), "ulf", &s2, NULL);
  net_advance(&n, MS(100));
  char pl[1002];
  memset(pl, 'x', 1001);
  pl[1001] = 0;
  pub(&n, "huge", pl);
  net_advance(&n, MS(100));
  CHECK_INT(n.read_errors, 1, "over max_payload: refused");
  const app_event *dd = net_last(&n, TERN_CLIENT_EV_DISCONNECTED);
  CHECK(dd && dd->reason == TERN_GOAWAY_TOO_LARGE,
        "over max_payload: DISCONNECTED(TOO_LARGE)");
  net_free(&n);
}

/* ==== the resume state ===================================================== */

/* What the app stores next to its data: the client's state. */
typedef struct saved_state {
  uint8_t buf[8192];
  size_t len;
} saved_state;

static void save_state(tern_client *c, saved_state *st) {
  tern_ssize need = tern_client_save_state(c, NULL, 0);
  tern_ssize r = tern_client_save_state(c, st->buf, sizeof(st->buf));
  if (need <= 0 || r != need || (size_t)r > sizeof(st->buf)) {
    fprintf(stderr, "save_state: %td, %td\n", need, r);
    abort();
  }
  st->len = (size_t)r;
}

/* The receiver's process dies and starts again: the OS closes its socket,
   its client and queued events are gone; the new process creates a client
   and, given |st|, restores the state the old one saved.  The hub lives
   on; what the app got stays recorded in |n|. */
static void restart(net *n, const tern_client_settings *s,
                    const saved_state *st) {
  net_client_close(n);
  tern_client_del(n->cl);
  n->cl = NULL;
  int rv = tern_client_new(&n->cl, (const uint8_t *)n->key, strlen(n->key),
                           (const uint8_t *)"tok", 3, s, NULL, n->now);
  if (rv == 0 && st) {
    rv = tern_client_restore_state(n->cl, st->buf, st->len, n->now);
  }
  if (rv != 0) {
    fprintf(stderr, "restart: %s\n", tern_strerror(rv));
    abort();
  }
}

/* How many ids of |prefix|0 .. |prefix|(count-1) the app got more than
   once, over both processes. */
static size_t dup_ids(const net *n, const char *prefix, int count) {
  size_t dups = 0;
  char id[16];
  for (int i = 0; i < count; ++i) {
    snprintf(id, sizeof(id), "%s%d", prefix, i);
    size_t got = net_got(n, id);
    dups += got > 1 ? got - 1 : 0;
  }
  return dups;
}

/* Auto-ack receiver restarted mid-stream: 10 messages taken, none acked
   yet (batching), then the process dies.  Returns the duplicates the app
   got; with |use_state| the new process restores what the old one saved
   after the last message. */
static size_t restart_stream(int use_state, uint64_t *hello_seq,
                             tern_client_stats *after) {
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  s.ack_every = 100;
  s.ack_delay = SEC(30);
  net n;
  net_init(&n, tu_hub(&hs), "rex", &s, NULL);
  net_advance(&n, MS(100));
  char id[16];
  saved_state st;
  for (int i = 0; i < 10; ++i) {
    snprintf(id, sizeof(id), "x%d", i);
    pub(&n, id, "p");
    net_advance(&n, MS(50));
    save_state(n.cl, &st); /* after processing the message */
  }
  if (n.nmsgs != 10 || cstats(n.cl).acks_sent != 0) {
    fprintf(stderr, "restart_stream: setup\n");
    abort();
  }
  restart(&n, &s, use_state ? &st : NULL);
  net_advance(&n, SEC(2));
  for (int i = 10; i < 15; ++i) {
    snprintf(id, sizeof(id), "x%d", i);
    pub(&n, id, "p");
  }
  net_advance(&n, SEC(40));
  *hello_seq = n.hello_last_seq[n.nhellos - 1];
  *after = cstats(n.cl);
  size_t dups = dup_ids(&n, "x", 15);
  int all = 1;
  for (int i = 0; i < 15; ++i) {
    snprintf(id, sizeof(id), "x%d", i);
    all &= net_got(&n, id) >= 1;
  }
  tern_session_info si = tu_info(n.hub, "rex");
  if (!all || si.inflight || si.pending) {
    dups += 1000; /* lost or stuck: fail loudly */
  }
  net_free(&n);
  return dups;
}

/* The hub sent a message again (ack_timeout) while the old process was
   dying: its new seq names no stream the HELLO can resume, so only the
   restored dedup ids keep the app from getting it twice. */
static size_t restart_resent(int use_state, tern_client_stats *after) {
  tern_settings hs = tu_settings();
  hs.ack_timeout = SEC(2);
  hs.max_deliver = 0;
  tern_client_settings s = csettings();
  s.ack_every = 100;
  s.ack_delay = SEC(30);
  net n;
  net_init(&n, tu_hub(&hs), "rae", &s, NULL);
  net_advance(&n, MS(100));
  pub(&n, "y0", "p");
  net_advance(&n, MS(50));
  saved_state st;
  save_state(n.cl, &st);
  /* The re-send leaves the hub at 2 s and is still on the wire. */
  net_advance(&n, SEC(2) - MS(40));
  if (n.nmsgs != 1 || tu_stats(n.hub).acked != 0) {
    fprintf(stderr, "restart_resent: setup\n");
    abort();
  }
  tern_client_settings s2 = s;
  s2.ack_delay = MS(500);
  restart(&n, &s2, use_state ? &st : NULL);
  net_advance(&n, SEC(30));
  *after = cstats(n.cl);
  size_t dups = dup_ids(&n, "y", 1);
  tern_session_info si = tu_info(n.hub, "rae");
  if (net_got(&n, "y0") == 0 || si.inflight || si.pending) {
    dups += 1000;
  }
  net_free(&n);
  return dups;
}

static void test_restart(void) {
  uint64_t hello_seq;
  tern_client_stats st;
  size_t without = restart_stream(0, &hello_seq, &st);
  CHECK(without == 10 && hello_seq == 0,
        "restart without state: HELLO from 0, the app gets the 10 unacked "
        "messages again (%zu)", without);
  size_t with = restart_stream(1, &hello_seq, &st);
  CHECK(with == 0 && hello_seq == 10 && st.duplicates == 0,
        "restart with state: HELLO resumes from 10, nothing comes again "
        "(%zu dups, hello %llu)", with, (unsigned long long)hello_seq);

  without = restart_resent(0, &st);
  CHECK(without == 1,
        "restart during a re-send, without state: the app gets it twice");
  with = restart_resent(1, &st);
  CHECK(with == 0 && st.duplicates >= 1,
        "restart during a re-send, with state: the restored id drops the "
        "copy, which is acked (%zu dups, %llu dropped)", with,
        (unsigned long long)st.duplicates);

  /* manual_ack: the app processed and acked 2 of 4, saved, then died
     before the ACK went out.  The new process gets exactly the other 2. */
  tern_settings hs = tu_settings();
  tern_client_settings s = csettings();
  s.manual_ack = 1;
  s.ack_every = 1;
  net n;
  net_init(&n, tu_hub(&hs), "rio", &s, NULL);
  net_advance(&n, MS(100));
  char id[16];
  for (int i = 0; i < 4; ++i) {
    snprintf(id, sizeof(id), "z%d", i);
    pub(&n, id, "p");
  }
  net_advance(&n, MS(100));
  CHECK_INT(n.nmsgs, 4, "manual restart: four taken");
  CHECK_INT(tern_client_ack(n.cl, n.msgs[1].seq, n.now), 0,
            "manual restart: z0, z1 processed and acked");
  saved_state sv;
  save_state(n.cl, &sv);
  restart(&n, &s, &sv); /* before the host wrote the ACK */
  n.app_ack = 1;
  net_advance(&n, SEC(5));
  CHECK(net_got(&n, "z0") == 1 && net_got(&n, "z1") == 1 &&
            net_got(&n, "z2") == 2 && net_got(&n, "z3") == 2,
        "manual restart: z2, z3 (taken, not acked) come again, z0, z1 not");
  CHECK_INT(n.hello_last_seq[n.nhellos - 1], n.msgs[1].seq,
            "manual restart: HELLO resumes from the app's ack");
  tern_session_info si = tu_info(n.hub, "rio");
  CHECK(si.inflight == 0 && si.pending == 0,
        "manual restart: then everything is acked");
  net_free(&n);
}

/* A state blob of format 1, built by the book (tern_client_new(3)). */
typedef struct blob {
  uint8_t b[4096];
  size_t len;
} blob;

static void b_put(blob *b, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    b->b[b->len++] = (uint8_t)(v >> (8 * i));
  }
}

static void b_bytes(blob *b, const char *s) {
  size_t n = strlen(s);
  memcpy(b->b + b->len, s, n);
  b->len += n;
}

static void b_head(blob *b, int version, const char *key, uint64_t epoch,
                   uint64_t last_seq, uint32_t nids) {
  b->len = 0;
  b_bytes(b, "TRNC");
  b_put(b, (uint64_t)version, 1);
  b_put(b, 0, 1);
  b_put(b, strlen(key), 1);
  b_bytes(b, key);
  b_put(b, epoch, 8);
  b_put(b, last_seq, 8);
  b_put(b, nids, 4);
}

static void b_id(blob *b, const char *id, uint32_t age_ms) {
  b_put(b, strlen(id), 1);
  b_bytes(b, id);
  b_put(b, age_ms, 4);
}

static void b_seal(blob *b) { b_put(b, crc32c(0, b->b, b->len), 4); }

static int restore(tern_client *c, const blob *b, tern_tstamp now) {
  return tern_client_restore_state(c, b->b, b->len, now);
}

/* A new client for "dev1", CONNECT taken, not connected. */
static tern_client *fresh_client(const tern_client_settings *s,
                                 const tern_mem *mem) {
  tern_client *c = NULL;
  if (tern_client_new(&c, (const uint8_t *)"dev1", 4, NULL, 0, s, mem, T0) !=
      0) {
    abort();
  }
  take_all(c, NULL, 0, NULL);
  return c;
}

/* Connects |c| and returns the last_seq and epoch of its HELLO. */
static uint64_t hello_of(tern_client *c, uint64_t *epoch) {
  tu_out o;
  tu_out_init(&o);
  tern_client_connect(c, T0);
  cl_drain(&o, c, 4096, T0);
  const wire_frame *h = tu_last(&o, WIRE_HELLO);
  uint64_t seq = h ? h->u.hello.last_seq : UINT64_MAX;
  if (epoch) {
    *epoch = h ? h->u.hello.epoch : 0;
  }
  tu_out_free(&o);
  return seq;
}

static void test_state_blob(void) {
  tern_client_settings s = csettings();
  /* What a client saves, byte for byte: the format is a promise. */
  tern_client *c = bare_client(&s, NULL, T0);
  feed_welcome(c, UINT64_C(0x0102030405060708), 0, 4000, 7000, 256, 0, T0);
  feed_msg(c, 5, "a", "", T0);
  feed_msg(c, 6, "bc", "", T0 + MS(500));
  feed_msg(c, 7, "d", "", T0 + MS(500));
  tern_client_event ev;
  int taken = 0;
  while (taken < 2 && tern_client_next_event(c, &ev) == 1) {
    taken += ev.type == TERN_CLIENT_EV_MESSAGE; /* a, bc: not d */
  }
  tern_client_handle_expiry(c, T0 + MS(1500));
  blob want;
  b_head(&want, 1, "dev1", UINT64_C(0x0102030405060708), 6, 2);
  b_id(&want, "a", 1500);
  b_id(&want, "bc", 1000);
  b_seal(&want);
  saved_state got;
  save_state(c, &got);
  CHECK(got.len == want.len && memcmp(got.buf, want.b, want.len) == 0,
        "save: format 1 exactly (key, epoch, last seq 6, ids a and bc with "
        "their ages; d was not taken)");
  CHECK_INT(tern_client_save_state(c, got.buf, got.len - 1),
            (tern_ssize)got.len, "save: too small a buffer: the size");
  CHECK_INT(tern_client_save_state(NULL, got.buf, 10), TERN_ERR_INVALID,
            "save: NULL client");
  CHECK_INT(tern_client_save_state(c, NULL, 10), TERN_ERR_INVALID,
            "save: NULL buffer with a capacity");
  tern_client_del(c);

  /* A new client before it was ever welcomed saves the empty state. */
  c = fresh_client(&s, NULL);
  saved_state empty;
  save_state(c, &empty);
  blob e;
  b_head(&e, 1, "dev1", 0, 0, 0);
  b_seal(&e);
  CHECK(empty.len == e.len && memcmp(empty.buf, e.b, e.len) == 0,
        "save: a client that knows nothing saves the empty state");

  /* The blob restores: HELLO resumes, the ids are remembered. */
  CHECK_INT(restore(c, &want, T0), 0, "restore");
  saved_state again;
  save_state(c, &again);
  CHECK(again.len == want.len && memcmp(again.buf, want.b, want.len) == 0,
        "restore then save: the same state");
  uint64_t epoch;
  CHECK_INT(hello_of(c, &epoch), 6, "restored: HELLO last_seq 6");
  CHECK(epoch == UINT64_C(0x0102030405060708), "restored: HELLO epoch");
  CHECK_INT(tern_client_restore_state(c, want.b, want.len, T0),
            TERN_ERR_STATE, "restore after connect: STATE");
  feed_welcome(c, UINT64_C(0x0102030405060708), WIRE_WELCOME_EXISTED, 4000,
               7000, 256, 0, T0);
  feed_msg(c, 9, "bc", "", T0);
  feed_msg(c, 10, "e", "", T0);
  size_t nt;
  CHECK(take_all(c, NULL, 0, &nt) == 1 && cstats(c).duplicates == 1,
        "restored: a copy of bc is a duplicate, e is new");
  tern_client_del(c);

  /* The server lost its state meanwhile (a new epoch), or the session
     expired there: RESYNC as after any reconnect, and the restored ids,
     which name messages of the old stream, are forgotten. */
  for (int way = 0; way < 2; ++way) {
    c = fresh_client(&s, NULL);
    restore(c, &want, T0);
    hello_of(c, NULL);
    feed_welcome(c, way ? UINT64_C(0x0102030405060708) : 99,
                 way ? 0 : WIRE_WELCOME_EXISTED, 4000, 7000, 256, 0, T0);
    feed_msg(c, 1, "a", "", T0);
    int resync = 0, msgs = 0;
    while (tern_client_next_event(c, &ev) == 1) {
      if (ev.type == TERN_CLIENT_EV_RESYNC) {
        resync = ev.reason;
      }
      msgs += ev.type == TERN_CLIENT_EV_MESSAGE;
    }
    CHECK(resync == (way ? TERN_CLIENT_RESYNC_SESSION
                         : TERN_CLIENT_RESYNC_EPOCH) &&
              msgs == 1,
          "restored, then %s: RESYNC, and id a of the new stream is new",
          way ? "the session expired" : "a new epoch");
    tern_client_del(c);
  }

  /* Bad input: an error, and the client exactly as before. */
  c = fresh_client(&s, NULL);
  int all_proto = 1;
  for (size_t i = 0; i < want.len; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      blob bad = want;
      bad.b[i] ^= (uint8_t)(1u << bit);
      all_proto &= restore(c, &bad, T0) == TERN_ERR_PROTO;
    }
  }
  CHECK(all_proto, "restore: every bit flip is PROTO");
  int all_short = 1;
  for (size_t len = 0; len < want.len; ++len) {
    all_short &= tern_client_restore_state(c, want.b, len, T0) ==
                 TERN_ERR_PROTO;
  }
  CHECK(all_short, "restore: every truncation is PROTO");
  blob bad = want;
  bad.len -= 4;
  bad.b[bad.len++] = 0;
  b_seal(&bad);
  CHECK_INT(restore(c, &bad, T0), TERN_ERR_PROTO, "restore: trailing byte");
  struct {
    const char *what;
    int version;
    const char *key;
    uint64_t epoch, seq;
    int nids;
    const char *ids[3];
    uint32_t ages[3];
    int err;
  } cases[] = {
      {"format 2", 2, "dev1", 7, 1, 0, {NULL}, {0}, TERN_ERR_PROTO},
      {"format 0", 0, "dev1", 7, 1, 0, {NULL}, {0}, TERN_ERR_PROTO},
      {"another key", 1, "dev2", 7, 1, 0, {NULL}, {0}, TERN_ERR_INVALID},
      {"a longer key", 1, "dev10", 7, 1, 0, {NULL}, {0}, TERN_ERR_INVALID},
      {"a seq without epoch", 1, "dev1", 0, 1, 0, {NULL}, {0},
       TERN_ERR_PROTO},
      {"ids without epoch", 1, "dev1", 0, 0, 1, {"a"}, {0}, TERN_ERR_PROTO},
      {"ids newest first", 1, "dev1", 7, 1, 2, {"a", "b"}, {5, 9},
       TERN_ERR_PROTO},
      {"an id twice", 1, "dev1", 7, 1, 2, {"a", "a"}, {9, 5},
       TERN_ERR_PROTO},
      {"an empty id", 1, "dev1", 7, 1, 1, {""}, {0}, TERN_ERR_PROTO},
      {"an id of 65 bytes", 1, "dev1", 7, 1, 1,
       {"0123456789012345678901234567890123456789012345678901234567890123"
        "4"},
       {0}, TERN_ERR_PROTO},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    b_head(&bad, cases[i].version, cases[i].key, cases[i].epoch,
           cases[i].seq, (uint32_t)cases[i].nids);
    for (int k = 0; k < cases[i].nids; ++k) {
      b_id(&bad, cases[i].ids[k], cases[i].ages[k]);
    }
    b_seal(&bad);
    int rv = restore(c, &bad, T0);
    CHECK(rv == cases[i].err, "restore: %s -> %s (%s)", cases[i].what,
          tern_strerror(cases[i].err), tern_strerror(rv));
  }
  b_head(&bad, 1, "dev1", 7, 1, 3); /* says 3 ids, holds 1 */
  b_id(&bad, "a", 0);
  b_seal(&bad);
  CHECK_INT(restore(c, &bad, T0), TERN_ERR_PROTO, "restore: missing ids");
  CHECK_INT(tern_client_restore_state(NULL, want.b, want.len, T0),
            TERN_ERR_INVALID, "restore: NULL client");
  CHECK_INT(tern_client_restore_state(c, NULL, 5, T0), TERN_ERR_INVALID,
            "restore: NULL state with a length");
  CHECK_INT(tern_client_restore_state(c, NULL, 0, T0), TERN_ERR_PROTO,
            "restore: no state");
  saved_state after;
  save_state(c, &after);
  CHECK(after.len == empty.len && memcmp(after.buf, empty.buf, empty.len) == 0,
        "restore: after all that, the client still knows nothing");
  CHECK_INT(hello_of(c, NULL), 0, "restore: HELLO from 0 after bad input");
  tern_client_del(c);

  /* The bounds of the new settings apply: the newest dedup_max ids, none
     older than dedup_window. */
  blob many;
  b_head(&many, 1, "dev1", 7, 20, 4);
  b_id(&many, "old", 700000);
  b_id(&many, "i1", 3000);
  b_id(&many, "i2", 2000);
  b_id(&many, "i3", 1000);
  b_seal(&many);
  tern_client_settings small = s;
  small.dedup_max = 2;
  c = fresh_client(&small, NULL);
  CHECK_INT(restore(c, &many, T0), 0, "restore into dedup_max 2");
  save_state(c, &after);
  b_head(&bad, 1, "dev1", 7, 20, 2);
  b_id(&bad, "i2", 2000);
  b_id(&bad, "i3", 1000);
  b_seal(&bad);
  CHECK(after.len == bad.len && memcmp(after.buf, bad.b, bad.len) == 0,
        "restore: the newest dedup_max ids are kept");
  tern_client_del(c);
  c = fresh_client(&s, NULL);
  CHECK_INT(restore(c, &many, T0), 0, "restore into dedup_window 10 min");
  save_state(c, &after);
  CHECK_INT(after.len, many.len - (1 + 3 + 4),
            "restore: the id older than dedup_window is dropped");
  tern_client_del(c);

  /* Every allocation failing in turn: NOMEM, nothing changed, no leak. */
  int nomem_ok = 1, nomem_seen = 0;
  for (long k = 1; k < 20; ++k) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    tern_mem mem = tu_alloc_mem(&a);
    c = fresh_client(&s, &mem);
    a.fail_at = a.calls + k;
    int rv = restore(c, &many, T0);
    a.fail_at = 0;
    if (rv == TERN_ERR_NOMEM) {
      ++nomem_seen;
      save_state(c, &after);
      nomem_ok &= after.len == empty.len &&
                  memcmp(after.buf, empty.buf, empty.len) == 0;
    } else {
      nomem_ok &= rv == 0;
    }
    tern_client_del(c);
    nomem_ok &= a.outstanding == 0 && tu_alloc_finish(&a) == 0;
  }
  CHECK(nomem_ok && nomem_seen >= 3,
        "restore: allocation failures give NOMEM and change nothing (%d)",
        nomem_seen);
}

/* ==== one way to end a connection ========================================== */

/* Takes every event; counts the DISCONNECTED ones and keeps the reason of
   the last. */
static int disconnects(tern_client *c, int *reason) {
  tern_client_event ev;
  int k = 0;
  while (tern_client_next_event(c, &ev) == 1) {
    if (ev.type == TERN_CLIENT_EV_DISCONNECTED) {
      ++k;
      if (reason) {
        *reason = ev.reason;
      }
    }
  }
  return k;
}

/* After the transport ended: the host's report, time and writes bring no
   second DISCONNECTED. */
static int no_second(tern_client *c, tern_tstamp now) {
  uint8_t buf[256];
  tern_client_conn_lost(c, now);
  tern_client_write(c, buf, sizeof(buf), now);
  tern_client_handle_expiry(c, now + SEC(1));
  tern_client_conn_lost(c, now + SEC(1));
  return disconnects(c, NULL) == 0;
}

/* A connected client fed by hand, its events taken. */
static tern_client *welcomed(const tern_client_settings *s,
                             const tern_mem *mem) {
  tern_client *c = bare_client(s, mem, T0);
  feed_welcome(c, 7, 0, 4000, 7000, 256, 0, T0);
  take_all(c, NULL, 0, NULL);
  return c;
}

static void test_conn_end(void) {
  tern_client_settings s = csettings();
  int reason = -1;
  uint8_t junk[] = {0x0f, 0x00};
  uint8_t buf[256];

  tern_client *c = welcomed(&s, NULL);
  CHECK_INT(tern_client_read(c, junk, sizeof(junk), T0), TERN_ERR_PROTO,
            "end by a bad frame: read says PROTO");
  CHECK(disconnects(c, &reason) == 1 && reason == TERN_GOAWAY_PROTO &&
            no_second(c, T0),
        "end by a bad frame: exactly one DISCONNECTED(PROTO)");
  tern_client_del(c);

  c = welcomed(&s, NULL);
  tern_client_handle_expiry(c, T0 + SEC(7));
  CHECK(disconnects(c, &reason) == 1 && reason == TERN_GOAWAY_TIMEOUT &&
            no_second(c, T0 + SEC(7)),
        "end by silence: exactly one DISCONNECTED(TIMEOUT)");
  tern_client_del(c);

  c = bare_client(&s, NULL, T0);
  tern_client_handle_expiry(c, T0 + SEC(7));
  CHECK(disconnects(c, &reason) == 1 && reason == TERN_GOAWAY_TIMEOUT &&
            no_second(c, T0 + SEC(7)),
        "end by no WELCOME: exactly one DISCONNECTED(TIMEOUT)");
  tern_client_del(c);

  c = welcomed(&s, NULL);
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_GOAWAY;
  f.u.goaway.reason = TERN_GOAWAY_RESTART;
  f.u.goaway.text = (const uint8_t *)"";
  feed_frame(c, &f, T0);
  CHECK(disconnects(c, &reason) == 1 && reason == TERN_GOAWAY_RESTART &&
            no_second(c, T0),
        "end by the server's GOAWAY: exactly one DISCONNECTED(RESTART)");
  tern_client_del(c);

  c = welcomed(&s, NULL);
  CHECK_INT(tern_client_conn_lost(c, T0), 0, "end by the host: conn_lost");
  CHECK(disconnects(c, &reason) == 1 &&
            reason == TERN_CLIENT_TRANSPORT_LOST && no_second(c, T0),
        "end by the host: exactly one DISCONNECTED(TRANSPORT_LOST)");
  tern_client_del(c);

  c = bare_client(&s, NULL, T0);
  tern_client_conn_lost(c, T0);
  CHECK(disconnects(c, &reason) == 1 &&
            reason == TERN_CLIENT_TRANSPORT_LOST && no_second(c, T0),
        "end by the host before WELCOME: exactly one DISCONNECTED");
  tern_client_del(c);

  /* Opening the transport failed: none was handed over, no event. */
  c = fresh_client(&s, NULL);
  tern_client_conn_lost(c, T0);
  CHECK_INT(disconnects(c, NULL), 0, "a failed open: no DISCONNECTED");
  tern_client_del(c);

  /* tern_client_close: once the GOAWAY is written. */
  c = welcomed(&s, NULL);
  tu_out o;
  tu_out_init(&o);
  cl_drain(&o, c, 4096, T0);
  tern_client_close(c, T0);
  CHECK_INT(disconnects(c, NULL), 0,
            "end by close: no event while the GOAWAY is unwritten");
  cl_drain(&o, c, 3, T0);
  CHECK(o.closed && tu_last(&o, WIRE_GOAWAY) &&
            disconnects(c, &reason) == 1 && reason == TERN_GOAWAY_CLIENT &&
            no_second(c, T0),
        "end by close: exactly one DISCONNECTED(CLIENT) after the GOAWAY");
  CHECK_INT(tern_client_write(c, buf, sizeof(buf), T0), TERN_ERR_CLOSED,
            "end by close: then write says CLOSED");
  tu_out_free(&o);
  tern_client_del(c);

  c = welcomed(&s, NULL);
  tern_client_close(c, T0);
  tern_client_conn_lost(c, T0); /* the goodbye never got out */
  CHECK(disconnects(c, &reason) == 1 && reason == TERN_GOAWAY_CLIENT &&
            no_second(c, T0),
        "end by close, transport broke meanwhile: exactly one DISCONNECTED");
  tern_client_del(c);

  c = hello_client(&s, NULL, T0); /* HELLO not written yet */
  tern_client_close(c, T0);
  CHECK(disconnects(c, &reason) == 1 && reason == TERN_GOAWAY_CLIENT &&
            no_second(c, T0),
        "end by close before anything was sent: one DISCONNECTED at once");
  tern_client_del(c);

  c = fresh_client(&s, NULL);
  tern_client_close(c, T0);
  CHECK(disconnects(c, NULL) == 0 &&
            tern_client_connect(c, T0) == TERN_ERR_CLOSED,
        "close without a transport: no event, connect refused");
  tern_client_del(c);

  /* No memory at all: the event still comes, exactly once. */
  tu_alloc a;
  memset(&a, 0, sizeof(a));
  tern_mem mem = tu_alloc_mem(&a);
  int nomem_ok = 1;
  for (int way = 0; way < 4; ++way) {
    c = welcomed(&s, &mem);
    a.fail_at = a.calls + 1;
    a.fail_rest = 1;
    int r = 0;
    switch (way) {
    case 0:
      r = feed_msg(c, 1, "a", "x", T0) == TERN_ERR_NOMEM;
      break;
    case 1:
      r = tern_client_handle_expiry(c, T0 + SEC(7)) == 0;
      break;
    case 2:
      r = tern_client_conn_lost(c, T0) == 0;
      break;
    default:
      tern_client_close(c, T0);
      r = tern_client_write(c, buf, sizeof(buf), T0) > 0;
      break;
    }
    int k = disconnects(c, &reason);
    nomem_ok &= r && k == 1 && no_second(c, T0);
    if (!(r && k == 1)) {
      tap_diag("nomem way %d: %d, %d events", way, r, k);
    }
    a.fail_rest = 0;
    a.fail_at = 0;
    tern_client_del(c);
  }
  CHECK(nomem_ok && a.outstanding == 0,
        "without memory: read NOMEM, silence, conn_lost and close each "
        "end with exactly one DISCONNECTED");
  tu_alloc_finish(&a);

  /* Against a hub, every way in one run: each transport the host handed
     over ends with exactly one DISCONNECTED. */
  tern_settings hs = tu_settings();
  net n;
  net_init(&n, tu_hub(&hs), "vic", &s, NULL);
  net_advance(&n, MS(100));
  tern_conn_goaway(n.cur->conn, TERN_GOAWAY_RESTART, SEC(2), n.now);
  net_advance(&n, SEC(5)); /* server GOAWAY, then back */
  net_send_down(&n, n.cur, junk, sizeof(junk), 0);
  net_advance(&n, SEC(5)); /* bad frame, then back */
  net_cut(&n);
  net_advance(&n, SEC(20)); /* silence, then back */
  tern_conn_del(n.cur->conn); /* the hub's host drops the socket */
  n.cur->conn = NULL;
  net_send_down(&n, n.cur, NULL, 0, 1);
  net_advance(&n, SEC(5)); /* EOF: conn_lost, then back */
  tern_client_close(n.cl, n.now);
  net_advance(&n, SEC(5)); /* goodbye */
  size_t connected = net_count(&n, TERN_CLIENT_EV_CONNECTED);
  size_t disc = net_count(&n, TERN_CLIENT_EV_DISCONNECTED);
  int reasons[5] = {TERN_GOAWAY_RESTART, TERN_GOAWAY_PROTO,
                    TERN_GOAWAY_TIMEOUT, TERN_CLIENT_TRANSPORT_LOST,
                    TERN_GOAWAY_CLIENT};
  int in_order = disc == 5;
  for (size_t i = 0, k = 0; i < n.nevs && in_order; ++i) {
    if (n.evs[i].type == TERN_CLIENT_EV_DISCONNECTED) {
      in_order &= n.evs[i].reason == reasons[k++];
    }
  }
  CHECK(connected == 5 && disc == 5 && in_order && !n.cur,
        "hub: 5 connections, 5 ends (GOAWAY, bad frame, silence, EOF, "
        "close), one DISCONNECTED each (%zu, %zu)", connected, disc);
  net_free(&n);
}

int main(void) {
  test_new_and_settings();
  test_handshake();
  test_message_fields();
  test_dedup();
  test_ack_timing();
  test_manual_ack();
  test_resume();
  test_gap();
  test_resync();
  test_session_reset();
  test_liveness();
  test_backoff();
  test_goaway_hint();
  test_close();
  test_malformed();
  test_partial_io();
  test_adaptive();
  test_nomem();
  test_state_blob();
  test_restart();
  test_conn_end();
  return tap_done();
}
