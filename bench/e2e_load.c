/*
 * One row of bench/e2e: K subscribers and the publishers, all driven by
 * one epoll thread of the generator, against a server in another process.
 *
 *   subscribers  binary (a tern_client per socket), SSE (GET /stream and a
 *                line parser; acks batched over one keep-alive connection
 *                with POST /ack) or WebSocket (GET /ws, subprotocol
 *                tern.bin: the binary frames inside binary messages, a
 *                tern_client again).
 *   publishers   binary (a tern_client with the publish token, PUBLISH
 *                frames pipelined, PUBACKs counted) or HTTP (POST /publish
 *                pipelined on a keep-alive connection, 202s counted).
 *
 * Publishing is bounded by |window|: at most that many messages (times k
 * for fan-out) published and not yet delivered, so that the server's
 * queues never overflow and every message is owed to a subscriber.  The
 * run then waits until everything owed arrived, or until nothing moved
 * for a while, which fails the row.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e.h"
#include "tern.h"

enum ptype { SUB_BIN, SUB_SSE, SUB_WS, PUB_BIN, PUB_HTTP, ACKER };
enum pstate { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_READY, S_DEAD };

/* Connections opening at once (the server's backlog is 511). */
#define MAX_CONNECTING 256
/* Requests one HTTP publisher has on the wire at once. */
#define HTTP_PIPELINE 256
/* PUBLISH frames one binary publisher has on the wire at once. */
#define BIN_PIPELINE 4096
/* An SSE subscriber acks after this many messages (the server's window
   per connection is 256 by default), or at the next sweep. */
#define SSE_ACK_EVERY 64
#define READ_CHUNK 65536
/* A run fails when nothing moved for this long while messages are owed. */
#define STALL_NS (3 * 1000000000ull)

typedef struct peer {
  int fd;
  int type;  /* enum ptype  */
  int state; /* enum pstate */
  uint32_t idx;
  char key[48];
  size_t keylen;
  tern_client *cl;
  e2e_buf in, out;
  uint32_t watching;     /* epoll events registered                 */
  uint64_t count;        /* deliveries to this subscriber           */
  uint64_t last_index;   /* fan-out: the last message number        */
  uint64_t last_seq;     /* SSE: the last seq received ...          */
  uint64_t acked_seq;    /* ... and acked                           */
  int sse_msg;           /* SSE: the current event is "msg"         */
  int upgraded;          /* WebSocket: 101 came                     */
  uint32_t outstanding;  /* publishers: requests not answered       */
} peer;

typedef struct load {
  const e2e_cfg *cfg;
  e2e_result *res;
  int ep;
  peer *subs;
  peer *pubs;
  peer acker;
  uint32_t npubs;
  uint32_t ready, connecting, opened;
  uint64_t issued, accepted, refused;
  uint64_t delivered, dups, gaps, bad;
  uint64_t ack_errors;
  uint8_t *seen; /* 1to1: a bit per message number */
  size_t seen_bytes;
  uint64_t t_first, t_last, t_progress;
  uint64_t next_sweep, sweep_every;
  int failed, na;
  int publishing;
  e2e_hist hist;
  uint8_t rbuf[READ_CHUNK];
  uint8_t wsbuf[READ_CHUNK];
} load;

static void fail(load *L, int na, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(load *L, int na, const char *fmt, ...) {
  if (L->failed) {
    return; /* the first cause is the one to report */
  }
  L->failed = 1;
  L->na = na;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->res->note, sizeof(L->res->note), fmt, ap);
  va_end(ap);
}

static void peer_close(load *L, peer *p) {
  if (p->fd >= 0) {
    epoll_ctl(L->ep, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    p->fd = -1;
  }
  if (p->state == S_CONNECTING || p->state == S_HANDSHAKE) {
    L->connecting--;
  }
  if (p->state == S_READY) {
    L->ready--;
  }
  p->state = S_DEAD;
}

static void peer_free(load *L, peer *p) {
  peer_close(L, p);
  tern_client_del(p->cl);
  p->cl = NULL;
  e2e_buf_free(&p->in);
  e2e_buf_free(&p->out);
}

static void watch(load *L, peer *p, uint32_t events) {
  if (p->fd < 0 || p->watching == events) {
    return;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.ptr = p;
  epoll_ctl(L->ep, EPOLL_CTL_MOD, p->fd, &ev);
  p->watching = events;
}

static void set_ready(load *L, peer *p) {
  if (p->state == S_CONNECTING || p->state == S_HANDSHAKE) {
    L->connecting--;
  }
  p->state = S_READY;
  L->ready++;
}

static const char *host_of(load *L, peer *p) {
  return p->type == SUB_BIN || p->type == PUB_BIN ? L->cfg->bin_host
                                                  : L->cfg->http_host;
}

/* ---- output ----------------------------------------------------------- */

/* WebSocket: |n| bytes of the binary framing as one masked binary
   message (RFC 6455 §5.2; a client masks everything it sends). */
static int ws_wrap(peer *p, const uint8_t *b, size_t n) {
  uint8_t h[14];
  size_t hl = 0;
  h[hl++] = 0x82;
  if (n < 126) {
    h[hl++] = (uint8_t)(0x80 | n);
  } else if (n < 65536) {
    h[hl++] = 0x80 | 126;
    h[hl++] = (uint8_t)(n >> 8);
    h[hl++] = (uint8_t)n;
  } else {
    h[hl++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) {
      h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
  }
  static const uint8_t mask[4] = {0x3a, 0x91, 0x5c, 0xe7};
  memcpy(h + hl, mask, 4);
  hl += 4;
  uint8_t *at = e2e_buf_room(&p->out, hl + n);
  if (!at) {
    return -1;
  }
  memcpy(at, h, hl);
  for (size_t i = 0; i < n; ++i) {
    at[hl + i] = b[i] ^ mask[i & 3];
  }
  p->out.len += hl + n;
  return 0;
}

/* Moves what the client has into |out| (framed for WebSocket), then as
   much of |out| as the socket takes. */
static void flush(load *L, peer *p) {
  if (p->fd < 0) {
    return;
  }
  tern_tstamp now = e2e_now();
  while (p->cl && tern_client_want_write(p->cl)) {
    tern_ssize k;
    if (p->type == SUB_WS) {
      k = tern_client_write(p->cl, L->wsbuf, sizeof(L->wsbuf), now);
      if (k > 0 && ws_wrap(p, L->wsbuf, (size_t)k) != 0) {
        k = -1;
      }
    } else {
      uint8_t *at = e2e_buf_room(&p->out, READ_CHUNK);
      k = at ? tern_client_write(p->cl, at, READ_CHUNK, now) : -1;
      if (k > 0) {
        p->out.len += (size_t)k;
      }
    }
    if (k <= 0) {
      break;
    }
  }
  while (p->out.off < p->out.len) {
    ssize_t w = send(p->fd, p->out.data + p->out.off, p->out.len - p->out.off,
                     MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    if (w < 0) {
      return; /* the read side reports the loss */
    }
    e2e_buf_consume(&p->out, (size_t)w);
  }
  watch(L, p, p->out.off < p->out.len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* ---- deliveries ------------------------------------------------------------ */

static void deliver(load *L, peer *p, const uint8_t *payload, size_t len) {
  uint64_t t, idx;
  if (e2e_payload_read(payload, len, &t, &idx) != 0) {
    L->bad++;
    return;
  }
  uint64_t now = e2e_now();
  e2e_hist_add(&L->hist, now > t ? now - t : 0);
  if (L->cfg->mode == E2E_1TO1) {
    size_t byte = (size_t)(idx >> 3);
    uint8_t bit = (uint8_t)(1u << (idx & 7));
    if (byte >= L->seen_bytes || idx >= L->issued) {
      L->bad++;
      return;
    }
    if (L->seen[byte] & bit) {
      L->dups++;
      return;
    }
    L->seen[byte] |= bit;
  } else if (L->npubs == 1 && p->count > 0 && idx <= p->last_index) {
    L->dups++; /* one publisher: a member gets the topic in order */
    return;
  }
  p->last_index = idx;
  p->count++;
  L->delivered++;
  L->t_last = now;
  L->t_progress = now;
}

/* ---- binary clients (subscribers, producers, WebSocket subscribers) --------- */

static void client_events(load *L, peer *p) {
  tern_client_event ev;
  while (p->cl && tern_client_next_event(p->cl, &ev) == 1) {
    switch (ev.type) {
    case TERN_CLIENT_EV_CONNECTED:
      set_ready(L, p);
      break;
    case TERN_CLIENT_EV_MESSAGE:
      deliver(L, p, ev.payload, ev.payloadlen);
      break;
    case TERN_CLIENT_EV_GAP:
      L->gaps += ev.count;
      break;
    case TERN_CLIENT_EV_PUBACK:
      p->outstanding--;
      L->t_progress = e2e_now();
      if (ev.reason == TERN_PUBACK_ACCEPTED) {
        L->accepted++;
      } else {
        L->refused++;
      }
      break;
    case TERN_CLIENT_EV_DISCONNECTED:
      if (p->type == PUB_BIN && ev.reason == TERN_GOAWAY_REJECTED) {
        fail(L, 1,
             "server refused the binary producer (GOAWAY REJECTED); try "
             "--pub http or --token");
      } else if (p->type == PUB_BIN || p->type == SUB_BIN ||
                 p->type == SUB_WS) {
        fail(L, 0, "a binary connection ended (reason %d)", ev.reason);
      }
      peer_close(L, p);
      return;
    default:
      break; /* CONNECT (the first, or a reconnect after the failure above),
                RESYNC, GIVE_UP */
    }
  }
}

static int client_new(peer *p, const char *token) {
  tern_client_settings s;
  tern_client_settings_default(&s);
  s.dedup_max = 0;        /* ids are unique; the generator checks itself */
  s.ack_every = 128;      /* half the hub's default window               */
  s.ack_delay = 5 * TERN_MILLISECONDS;
  s.seed = (uint64_t)p->idx + 1;
  int rc = tern_client_new(&p->cl, (const uint8_t *)p->key, p->keylen,
                           (const uint8_t *)token, token ? strlen(token) : 0,
                           &s, NULL, e2e_now());
  tern_client_event ev;
  while (rc == 0 && tern_client_next_event(p->cl, &ev) == 1) {
    /* the first CONNECT: the transport is opened by peer_open */
  }
  return rc;
}

/* WebSocket frames from the server (unmasked): binary and continuation
   payloads are the binary framing's byte stream. */
static void ws_input(load *L, peer *p) {
  for (;;) {
    const uint8_t *b = p->in.data + p->in.off;
    size_t n = p->in.len - p->in.off;
    if (n < 2) {
      return;
    }
    unsigned op = b[0] & 0x0f;
    uint64_t len = b[1] & 0x7f;
    size_t hl = 2;
    if (b[1] & 0x80) {
      fail(L, 0, "ws: a masked frame from the server");
      peer_close(L, p);
      return;
    }
    if (len == 126) {
      if (n < 4) {
        return;
      }
      len = (uint64_t)b[2] << 8 | b[3];
      hl = 4;
    } else if (len == 127) {
      if (n < 10) {
        return;
      }
      len = 0;
      for (int i = 0; i < 8; ++i) {
        len = len << 8 | b[2 + i];
      }
      hl = 10;
    }
    if (n - hl < len) {
      return;
    }
    const uint8_t *pl = b + hl;
    if (op == 0x0 || op == 0x2) {
      tern_client_read(p->cl, pl, (size_t)len, e2e_now());
    } else if (op == 0x9) { /* ping: a pong with the same bytes */
      uint8_t pong[2 + 4 + 125];
      size_t m = len <= 125 ? (size_t)len : 125;
      pong[0] = 0x8a;
      pong[1] = (uint8_t)(0x80 | m);
      memset(pong + 2, 0, 4); /* mask 0: the bytes go as they are */
      memcpy(pong + 6, pl, m);
      e2e_buf_put(&p->out, pong, 6 + m);
    } else if (op == 0x8) {
      fail(L, 0, "ws: the server closed the WebSocket");
      peer_close(L, p);
      return;
    } else if (op != 0xa) {
      fail(L, 0, "ws: unexpected opcode %u (tern.bin sends binary)", op);
      peer_close(L, p);
      return;
    }
    e2e_buf_consume(&p->in, hl + (size_t)len);
    client_events(L, p);
    if (p->state == S_DEAD) {
      return;
    }
  }
}

/* ---- SSE ------------------------------------------------------------------- */

static void sse_ack(load *L, peer *p) {
  if (p->last_seq <= p->acked_seq || L->acker.state != S_READY) {
    return;
  }
  char req[256];
  int n = snprintf(req, sizeof(req),
                   "POST /ack?session=%s&seq=%llu HTTP/1.1\r\nHost: %s\r\n"
                   "Content-Length: 0\r\n\r\n",
                   p->key, (unsigned long long)p->last_seq,
                   L->cfg->http_host);
  e2e_buf_put(&L->acker.out, req, (size_t)n);
  L->acker.outstanding++;
  p->acked_seq = p->last_seq;
}

static const uint8_t *find(const uint8_t *p, size_t n, const char *lit) {
  return p && n ? memmem(p, n, lit, strlen(lit)) : NULL;
}

/* One line of the event stream, without its end. */
static void sse_line(load *L, peer *p, const uint8_t *s, size_t n) {
  if (n == 0) {
    p->sse_msg = 0; /* the event is complete */
    return;
  }
  if (n >= 6 && memcmp(s, "event:", 6) == 0) {
    const uint8_t *v = s + 6;
    size_t vl = n - 6;
    if (vl && *v == ' ') {
      v++, vl--;
    }
    p->sse_msg = vl == 3 && memcmp(v, "msg", 3) == 0;
    if (vl == 6 && memcmp(v, "goaway", 6) == 0) {
      fail(L, 0, "sse: the server sent goaway");
    }
    if (vl == 7 && memcmp(v, "dropped", 7) == 0) {
      p->sse_msg = 0;
      L->gaps++; /* counted once per notice: the row fails on any */
    }
    return;
  }
  if (n < 5 || memcmp(s, "data:", 5) != 0 || !p->sse_msg) {
    return; /* id:, retry:, comments (heartbeats) */
  }
  const uint8_t *seq = find(s, n, "\"seq\":");
  const uint8_t *data = find(s, n, "\"data\":\"");
  if (!seq || !data) {
    L->bad++;
    return;
  }
  uint64_t v = 0;
  for (const uint8_t *q = seq + 6; q < s + n && *q >= '0' && *q <= '9'; ++q) {
    v = v * 10 + (uint64_t)(*q - '0');
  }
  p->last_seq = v;
  const uint8_t *pl = data + 8;
  const uint8_t *end = memchr(pl, '"', (size_t)(s + n - pl));
  if (!end) {
    L->bad++;
    return;
  }
  deliver(L, p, pl, (size_t)(end - pl));
}

static void sse_input(load *L, peer *p) {
  if (p->in.off == p->in.len) {
    return;
  }
  const uint8_t *b = p->in.data + p->in.off;
  size_t n = p->in.len - p->in.off, used = 0;
  for (;;) {
    const uint8_t *nl = memchr(b + used, '\n', n - used);
    if (!nl) {
      break;
    }
    size_t end = (size_t)(nl - b);
    size_t len = end - used;
    if (len && b[end - 1] == '\r') {
      len--;
    }
    sse_line(L, p, b + used, len);
    used = end + 1;
  }
  e2e_buf_consume(&p->in, used);
  if (p->last_seq >= p->acked_seq + SSE_ACK_EVERY) {
    sse_ack(L, p);
  }
}

/* ---- HTTP answers: publishers, the acker, the stream heads ------------------ */

static void http_answers(load *L, peer *p) {
  e2e_http_resp r;
  int got;
  while (p->state == S_READY && (got = e2e_http_take(&p->in, &r, 0)) != 0) {
    if (got < 0) {
      fail(L, 0, "an answer that is not HTTP");
      peer_close(L, p);
      return;
    }
    p->outstanding--;
    L->t_progress = e2e_now();
    if (p->type == ACKER) {
      if (r.status != 204 && r.status != 200) {
        if (L->ack_errors++ == 0 && r.status == 404) {
          fail(L, 1, "server has no POST /ack (404)");
        }
      }
    } else if (r.status == 202 || r.status == 200) {
      L->accepted++;
    } else if (r.status == 404 || r.status == 405) {
      L->refused++;
      fail(L, 1, "server has no POST /publish (%d)", r.status);
    } else {
      L->refused++;
    }
  }
}

/* The answer to GET /stream or GET /ws. */
static void stream_head(load *L, peer *p) {
  e2e_http_resp r;
  int got = e2e_http_take(&p->in, &r, 1);
  if (got == 0) {
    return;
  }
  int want = p->type == SUB_WS ? 101 : 200;
  if (got < 0 || r.status != want) {
    if (p->type == SUB_WS) {
      fail(L, 1, "server has no /ws (%d)", got < 0 ? 0 : r.status);
    } else {
      fail(L, got >= 0 && r.status == 404, "GET /stream answered %d",
           got < 0 ? 0 : r.status);
    }
    peer_close(L, p);
    return;
  }
  if (p->type == SUB_WS) {
    p->upgraded = 1; /* now the binary framing's HELLO */
    tern_client_connect(p->cl, e2e_now());
    ws_input(L, p);
    flush(L, p);
  } else {
    set_ready(L, p);
    sse_input(L, p);
  }
}

/* ---- socket events ----------------------------------------------------------- */

static void on_connected(load *L, peer *p) {
  char req[512];
  int n = 0;
  switch (p->type) {
  case SUB_BIN:
  case PUB_BIN:
    p->state = S_HANDSHAKE;
    tern_client_connect(p->cl, e2e_now());
    break;
  case SUB_SSE:
    p->state = S_HANDSHAKE;
    n = snprintf(req, sizeof(req),
                 "GET /stream?session=%s HTTP/1.1\r\nHost: %s\r\n"
                 "Accept: text/event-stream\r\n\r\n",
                 p->key, L->cfg->http_host);
    break;
  case SUB_WS:
    p->state = S_HANDSHAKE;
    n = snprintf(req, sizeof(req),
                 "GET /ws?session=%s HTTP/1.1\r\nHost: %s\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: tern.bin\r\n\r\n",
                 p->key, L->cfg->http_host);
    break;
  default:
    set_ready(L, p);
    break;
  }
  if (n > 0) {
    e2e_buf_put(&p->out, req, (size_t)n);
  }
  flush(L, p);
}

static void on_input(load *L, peer *p) {
  switch (p->type) {
  case SUB_BIN:
  case PUB_BIN:
    break; /* read straight into the client */
  case SUB_SSE:
    if (p->state == S_HANDSHAKE) {
      stream_head(L, p);
    } else {
      sse_input(L, p);
    }
    break;
  case SUB_WS:
    if (!p->upgraded) {
      stream_head(L, p);
    } else {
      ws_input(L, p);
    }
    break;
  default:
    http_answers(L, p);
    break;
  }
}

static void on_io(load *L, peer *p, uint32_t events) {
  if (p->state == S_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(L, 0, "connect %s: %s", host_of(L, p), strerror(err));
      peer_close(L, p);
      return;
    }
    on_connected(L, p);
    return;
  }
  if (events & EPOLLOUT) {
    flush(L, p);
  }
  if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
    return;
  }
  for (int round = 0; round < 4 && p->fd >= 0; ++round) {
    ssize_t n = read(p->fd, L->rbuf, sizeof(L->rbuf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    if (n <= 0) {
      if (p->type == SUB_WS && !p->upgraded) {
        fail(L, 1, "server has no /ws (it closed the connection)");
      } else if (p->type == SUB_SSE && p->state == S_HANDSHAKE) {
        fail(L, 0, "GET /stream: the server closed the connection");
      } else {
        fail(L, 0, "the server closed a connection");
      }
      peer_close(L, p);
      return;
    }
    if ((p->type == SUB_BIN || p->type == PUB_BIN) && p->cl) {
      tern_client_read(p->cl, L->rbuf, (size_t)n, e2e_now());
      client_events(L, p);
    } else {
      e2e_buf_put(&p->in, L->rbuf, (size_t)n);
      on_input(L, p);
    }
    if (n < (ssize_t)sizeof(L->rbuf)) {
      break;
    }
  }
  flush(L, p);
}

static int peer_open(load *L, peer *p) {
  uint16_t port = p->type == SUB_BIN || p->type == PUB_BIN
                      ? L->cfg->bin_port
                      : L->cfg->http_port;
  p->fd = e2e_connect(host_of(L, p), port);
  if (p->fd < 0) {
    fail(L, 0, "socket/connect: %s", strerror(errno));
    return -1;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLOUT | EPOLLIN;
  ev.data.ptr = p;
  p->watching = ev.events;
  p->state = S_CONNECTING;
  L->connecting++;
  L->opened++;
  if (epoll_ctl(L->ep, EPOLL_CTL_ADD, p->fd, &ev) != 0) {
    fail(L, 0, "epoll_ctl: %s", strerror(errno));
    return -1;
  }
  return 0;
}

/* ---- the loop ------------------------------------------------------------------ */

/* Timers of the clients (acks, heartbeats), and the SSE acks not yet
   sent. */
static void sweep(load *L) {
  uint64_t now = e2e_now();
  if (now < L->next_sweep) {
    return;
  }
  L->next_sweep = now + L->sweep_every;
  for (uint32_t i = 0; i < L->cfg->k; ++i) {
    peer *p = &L->subs[i];
    if (p->state == S_DEAD || p->state == S_IDLE) {
      continue;
    }
    if (p->cl && tern_client_get_expiry(p->cl) <= now) {
      tern_client_handle_expiry(p->cl, now);
      client_events(L, p);
      flush(L, p);
    }
    if (p->type == SUB_SSE && p->state == S_READY) {
      sse_ack(L, p);
    }
  }
  for (uint32_t i = 0; i < L->npubs; ++i) {
    peer *p = &L->pubs[i];
    if (p->cl && p->state != S_DEAD && tern_client_get_expiry(p->cl) <= now) {
      tern_client_handle_expiry(p->cl, now);
      client_events(L, p);
      flush(L, p);
    }
  }
  if (L->acker.state == S_READY) {
    flush(L, &L->acker);
  }
}

static void turn(load *L, int timeout_ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(L->ep, evs, 256, timeout_ms);
  for (int i = 0; i < n; ++i) {
    peer *p = evs[i].data.ptr;
    if (p->fd >= 0) {
      on_io(L, p, evs[i].events);
    }
  }
  sweep(L);
  if (L->acker.state == S_READY && L->acker.out.len > L->acker.out.off) {
    flush(L, &L->acker);
  }
}

/* Opens |n| peers of |ps|, at most MAX_CONNECTING at a time, and turns
   the loop until they are all ready, one failed, or |timeout_ns| passed. */
static int open_all(load *L, peer *ps, uint32_t n, uint64_t timeout_ns) {
  uint64_t deadline = e2e_now() + timeout_ns;
  uint32_t next = 0, ready0 = L->ready;
  while (!L->failed && L->ready - ready0 < n) {
    while (next < n && L->connecting < MAX_CONNECTING) {
      if (peer_open(L, &ps[next++]) != 0) {
        return -1;
      }
    }
    turn(L, 5);
    if (e2e_now() > deadline) {
      fail(L, 0, "%u of %u connections ready after %.0f s", L->ready - ready0,
           n, (double)timeout_ns / 1e9);
      return -1;
    }
  }
  return L->failed ? -1 : 0;
}

/* ---- publishing ---------------------------------------------------------------- */

static uint64_t mult(const load *L) {
  return L->cfg->mode == E2E_FANOUT ? L->cfg->k : 1;
}

/* Whether one more message may go now. */
static int may_publish(load *L, uint64_t now) {
  const e2e_cfg *c = L->cfg;
  if (!L->publishing || L->failed) {
    return 0;
  }
  if (c->n ? L->issued >= c->n
           : now >= L->t_first + (uint64_t)(c->seconds * 1e9)) {
    L->publishing = 0;
    return 0;
  }
  if (c->rate > 0 &&
      (double)L->issued >= c->rate * (double)(now - L->t_first) / 1e9 + 1) {
    return 0;
  }
  uint64_t owed = (L->issued - L->refused) * mult(L);
  return owed < L->delivered + L->gaps + (uint64_t)c->window * mult(L);
}

static int grow_seen(load *L) {
  size_t need = (size_t)(L->issued >> 3) + 1;
  if (L->cfg->mode != E2E_1TO1 || need <= L->seen_bytes) {
    return 0;
  }
  size_t cap = L->seen_bytes ? L->seen_bytes * 2 : 1 << 16;
  while (cap < need) {
    cap *= 2;
  }
  uint8_t *s = realloc(L->seen, cap);
  if (!s) {
    return -1;
  }
  memset(s + L->seen_bytes, 0, cap - L->seen_bytes);
  L->seen = s;
  L->seen_bytes = cap;
  return 0;
}

static void publish_one(load *L, peer *p, uint64_t now) {
  uint64_t idx = L->issued;
  const e2e_cfg *c = L->cfg;
  const peer *to = c->mode == E2E_FANOUT ? NULL : &L->subs[idx % c->k];
  uint8_t payload[E2E_PAYLOAD];
  e2e_payload_write(payload, now, idx);
  if (p->type == PUB_BIN) {
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.priority = TERN_PRIO_NORMAL;
    d.payload = payload;
    d.payloadlen = sizeof(payload);
    int rc = to ? tern_client_publish(p->cl, 0, (const uint8_t *)to->key,
                                      to->keylen, &d, NULL, now)
                : tern_client_publish(p->cl, TERN_CLIENT_PUBLISH_TOPIC,
                                      (const uint8_t *)c->topic,
                                      strlen(c->topic), &d, NULL, now);
    if (rc == TERN_ERR_FULL) {
      flush(L, p);
      return;
    }
    if (rc != 0) {
      fail(L, 0, "tern_client_publish: %s", tern_strerror(rc));
      return;
    }
  } else {
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST /publish?%s=%s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Length: %d\r\n\r\n",
                     to ? "session" : "topic", to ? to->key : c->topic,
                     c->http_host, E2E_PAYLOAD);
    e2e_buf_put(&p->out, head, (size_t)n);
    e2e_buf_put(&p->out, payload, sizeof(payload));
  }
  p->outstanding++;
  L->issued++;
}

static void publish_some(load *L) {
  uint64_t now = e2e_now();
  for (uint32_t i = 0; i < L->npubs && may_publish(L, now); ++i) {
    peer *p = &L->pubs[(L->issued + i) % L->npubs];
    if (p->state != S_READY) {
      continue;
    }
    uint32_t cap = p->type == PUB_BIN ? BIN_PIPELINE : HTTP_PIPELINE;
    int burst = 0;
    while (p->outstanding < cap && burst < 512 && may_publish(L, now)) {
      if (grow_seen(L) != 0) {
        fail(L, 0, "out of memory");
        return;
      }
      uint64_t before = L->issued;
      publish_one(L, p, now);
      if (L->issued == before) {
        break;
      }
      burst++;
    }
    if (burst) {
      flush(L, p);
    }
  }
}

/* ---- one row ------------------------------------------------------------------- */

static void name_peers(load *L, peer *ps, uint32_t n, int type,
                       const char *what) {
  for (uint32_t i = 0; i < n; ++i) {
    peer *p = &ps[i];
    p->fd = -1;
    p->type = type;
    p->idx = i;
    snprintf(p->key, sizeof(p->key), "e2e%u.%s%u", L->cfg->run_id, what, i);
    p->keylen = strlen(p->key);
  }
}

static void results(load *L, pid_t server, double cpu0, double gen0) {
  e2e_result *r = L->res;
  r->published = L->accepted;
  r->refused = L->refused;
  r->expected = L->accepted * mult(L);
  r->delivered = L->delivered;
  r->dups = L->dups;
  r->gaps = L->gaps;
  r->elapsed = L->t_last > L->t_first ? (double)(L->t_last - L->t_first) / 1e9
                                      : 0;
  r->msgs_per_s = r->elapsed > 0 ? (double)r->delivered / r->elapsed : 0;
  r->p50_us = (double)e2e_hist_quantile(&L->hist, 0.50) / 1e3;
  r->p99_us = (double)e2e_hist_quantile(&L->hist, 0.99) / 1e3;
  r->p999_us = (double)e2e_hist_quantile(&L->hist, 0.999) / 1e3;
  double cpu1 = server > 0 ? e2e_proc_cpu(server) : -1;
  r->cpu_s = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
  r->gen_cpu_s = e2e_self_cpu() - gen0;
  if (L->failed) {
    return;
  }
  if (L->bad) {
    fail(L, 0, "%llu deliveries not ours or damaged",
         (unsigned long long)L->bad);
  } else if (L->gaps) {
    fail(L, 0, "the server dropped %llu messages", (unsigned long long)L->gaps);
  } else if (L->dups) {
    fail(L, 0, "%llu duplicates", (unsigned long long)L->dups);
  } else if (r->delivered != r->expected || L->refused) {
    fail(L, 0, "incomplete: %llu of %llu delivered, %llu publishes refused",
         (unsigned long long)r->delivered, (unsigned long long)r->expected,
         (unsigned long long)L->refused);
  } else if (r->published == 0) {
    fail(L, 0, "nothing was published");
  }
}

static void run_traffic(load *L, pid_t server) {
  const e2e_cfg *c = L->cfg;
  uint32_t np = c->publishers ? c->publishers : 1;
  L->pubs = calloc(np, sizeof(peer));
  if (!L->pubs) {
    fail(L, 0, "out of memory");
    return;
  }
  L->npubs = np;
  name_peers(L, L->pubs, np, c->pub == E2E_PUB_BIN ? PUB_BIN : PUB_HTTP, "p");
  for (uint32_t i = 0; i < np; ++i) {
    if (c->pub == E2E_PUB_BIN && client_new(&L->pubs[i], c->token) != 0) {
      fail(L, 0, "tern_client_new failed");
      return;
    }
  }
  if (open_all(L, L->pubs, np, 10 * 1000000000ull) != 0) {
    return;
  }
  if (c->kind == E2E_SSE && open_all(L, &L->acker, 1, 10 * 1000000000ull)) {
    return;
  }
  double cpu0 = server > 0 ? e2e_proc_cpu(server) : -1;
  double gen0 = e2e_self_cpu();
  L->t_first = L->t_progress = e2e_now();
  L->publishing = 1;
  for (;;) {
    publish_some(L);
    /* Spin only while there is something to publish: the generator
       shares the machine with the server. */
    turn(L, L->publishing && c->rate == 0 && may_publish(L, e2e_now()) ? 0
                                                                      : 1);
    if (L->failed) {
      break;
    }
    uint64_t now = e2e_now();
    uint32_t waiting = 0;
    for (uint32_t i = 0; i < np; ++i) {
      waiting += L->pubs[i].outstanding;
    }
    if (!L->publishing && waiting == 0 &&
        L->delivered + L->gaps >= L->accepted * mult(L)) {
      break;
    }
    if (now - L->t_progress > STALL_NS) {
      break; /* nothing moves: results() says what is missing */
    }
  }
  results(L, server, cpu0, gen0);
}

static void run_idle(load *L, pid_t server, long rss0) {
  /* Let the server settle what the connections made (heartbeat timers,
     buffers freed after the handshakes), then read its RSS. */
  uint64_t until = e2e_now() + 500 * 1000000ull;
  while (!L->failed && e2e_now() < until) {
    turn(L, 10);
  }
  long rss1 = server > 0 ? e2e_proc_rss(server) : -1;
  L->res->rss_before_kb = rss0;
  L->res->rss_after_kb = rss1;
  if (rss0 >= 0 && rss1 >= 0) {
    L->res->bytes_per_conn = (double)(rss1 - rss0) * 1024.0 / L->cfg->k;
  }
  if (!L->failed && L->ready != L->cfg->k) {
    fail(L, 0, "%u of %u idle subscribers still connected", L->ready,
         L->cfg->k);
  }
}

static int subscribe_all(load *L) {
  const e2e_cfg *c = L->cfg;
  int fd = -1;
  for (uint32_t i = 0; i < c->k; ++i) {
    char target[256];
    snprintf(target, sizeof(target), "/subscribe?session=%s&topic=%s",
             L->subs[i].key, c->topic);
    int st = e2e_http_call(&fd, c->http_host, c->http_port, "POST", target);
    if (st == 404 || st == 405) {
      fail(L, 1, "server has no POST /subscribe or no topic %s (%d)",
           c->topic, st);
    } else if (st / 100 != 2) {
      fail(L, 0, "POST /subscribe answered %d", st);
    }
    if (L->failed) {
      break;
    }
  }
  if (fd >= 0) {
    close(fd);
  }
  return L->failed ? -1 : 0;
}

void e2e_run(const e2e_cfg *cfg, pid_t server, e2e_result *res) {
  memset(res, 0, sizeof(*res));
  res->cpu_s = -1;
  res->rss_before_kb = res->rss_after_kb = -1;
  load *L = calloc(1, sizeof(*L));
  if (!L) {
    res->status = E2E_FAIL;
    snprintf(res->note, sizeof(res->note), "out of memory");
    return;
  }
  L->cfg = cfg;
  L->res = res;
  L->acker.fd = -1;
  L->acker.type = ACKER;
  L->sweep_every = (cfg->k > 1000 ? 100 : 5) * 1000000ull;
  L->ep = epoll_create1(EPOLL_CLOEXEC);
  int need_bin = cfg->kind == E2E_BIN ||
                 (cfg->mode != E2E_IDLE && cfg->pub == E2E_PUB_BIN);
  int need_http = cfg->kind != E2E_BIN || cfg->mode == E2E_FANOUT ||
                  (cfg->mode != E2E_IDLE && cfg->pub == E2E_PUB_HTTP);
  if (need_bin && !cfg->bin_port) {
    fail(L, 1, "no binary listener");
  } else if (need_http && !cfg->http_port) {
    fail(L, 1, "no HTTP listener");
  } else if (L->ep < 0 || !(L->subs = calloc(cfg->k, sizeof(peer)))) {
    fail(L, 0, "out of memory");
  }
  if (!L->failed) {
    int type = cfg->kind == E2E_BIN ? SUB_BIN
               : cfg->kind == E2E_SSE ? SUB_SSE
                                      : SUB_WS;
    name_peers(L, L->subs, cfg->k, type, "s");
    for (uint32_t i = 0; i < cfg->k && !L->failed; ++i) {
      if (type != SUB_SSE && client_new(&L->subs[i], NULL) != 0) {
        fail(L, 0, "tern_client_new failed");
      }
    }
  }
  if (!L->failed && cfg->mode == E2E_FANOUT) {
    subscribe_all(L);
  }
  long rss0 = server > 0 ? e2e_proc_rss(server) : -1;
  if (!L->failed && open_all(L, L->subs, cfg->k, 60 * 1000000000ull) == 0) {
    if (cfg->mode == E2E_IDLE) {
      run_idle(L, server, rss0);
    } else {
      run_traffic(L, server);
    }
  }
  res->status = L->failed ? (L->na ? E2E_NA : E2E_FAIL) : E2E_OK;
  for (uint32_t i = 0; L->subs && i < cfg->k; ++i) {
    peer_free(L, &L->subs[i]);
  }
  for (uint32_t i = 0; i < L->npubs; ++i) {
    peer_free(L, &L->pubs[i]);
  }
  peer_free(L, &L->acker);
  if (L->ep >= 0) {
    close(L->ep);
  }
  free(L->subs);
  free(L->pubs);
  free(L->seen);
  free(L);
}
