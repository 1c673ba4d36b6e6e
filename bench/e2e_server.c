/*
 * e2e_server: the small server bench/e2e spawns when it is given no other,
 * so that the end-to-end numbers of the binary framing can be measured
 * before ternd exists.  One thread: a tern_epoll loop, one tern_driver, one
 * hub, no store.
 *
 *   --bin-listen ADDR:PORT  the binary framing of tern-protocol(7).  A
 *                           connection whose HELLO token is the publish
 *                           token may publish (PUBLISH/PUBACK); the others
 *                           are receivers (the producer state costs 64 KiB,
 *                           so only producers get it).
 *   --listen ADDR:PORT      a subset of ternd's HTTP API, enough for the
 *                           generator's SSE and HTTP rows: POST /publish
 *                           (?session= or ?topic=, body = payload, 202),
 *                           GET /stream?session= (SSE, Last-Event-ID or
 *                           ?seq= resume), POST /ack?session=&seq= (204),
 *                           POST /subscribe?session=&topic= (204),
 *                           GET /ws?session= (WebSocket, subprotocol
 *                           tern.bin only: the binary framing inside
 *                           binary messages).
 *   --publish-token T       the producers' HELLO token ("e2e").
 *   --max-pending N         the hub's max_pending (10000): a small one
 *                           makes the hub evict, which the suite uses to
 *                           see bench/e2e fail a row that lost messages.
 *
 * Topic "e2e" exists from the start (the generator's fan-out rows).  The
 * server runs until SIGTERM or SIGINT.  It is a benchmark fixture, not a
 * reference: ternd (examples/ternd) is that.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "tern.h"
#include "tern_posix.h"
#include "web/ws.h"

typedef struct server {
  tern_epoll *ep;
  tern_driver *d;
  tern_hub *hub;
  const char *token;
} server;

/* One HTTP socket: requests until it becomes an SSE stream, then the
   stream's connection alone (the parser and the answer buffer are freed:
   an idle subscriber holds only this struct, the driver's socket, the
   hub's connection and its session). */
typedef struct hsock {
  server *srv;
  http_parser *p;    /* NULL once streaming                               */
  char *out;         /* answers not yet pulled                            */
  size_t outlen, outoff, outcap;
  tern_conn *stream; /* the SSE connection, or the binary connection
                        inside a WebSocket                               */
  web_ws_decoder *ws; /* a WebSocket's decoder                            */
  int closing;       /* answer, then end                                  */
} hsock;

static volatile sig_atomic_t stop_asked;
static tern_epoll *stop_ep;

static void on_signal(int sig) {
  (void)sig;
  stop_asked = 1;
  if (stop_ep) {
    tern_epoll_stop(stop_ep); /* any thread; an eventfd write */
  }
}

static int put(hsock *h, const char *b, size_t n) {
  if (h->outlen + n > h->outcap) {
    size_t cap = h->outcap ? h->outcap * 2 : 512;
    while (cap < h->outlen + n) {
      cap *= 2;
    }
    char *nb = realloc(h->out, cap);
    if (!nb) {
      return -1;
    }
    h->out = nb;
    h->outcap = cap;
  }
  memcpy(h->out + h->outlen, b, n);
  h->outlen += n;
  return 0;
}

static int answer(hsock *h, int status, const char *body) {
  http_response r;
  http_response_init(&r, status);
  size_t blen = body ? strlen(body) : 0;
  r.content_length = blen;
  r.content_type = body ? "application/json" : NULL;
  if (h->closing) {
    r.flags |= HTTP_RESP_CLOSE;
  }
  char head[512];
  size_t n = http_response_write(&r, head, sizeof(head));
  if (n == 0 || put(h, head, n) != 0 || (blen && put(h, body, blen) != 0)) {
    return -1;
  }
  return 0;
}

static int answer_error(hsock *h, int status, const char *reason) {
  char b[512];
  size_t n = http_write_error(b, sizeof(b), status, reason,
                              h->closing ? HTTP_RESP_CLOSE : 0, -1, 0);
  return n ? put(h, b, n) : -1;
}

static int key_param(const http_request *r, const char *name, http_slice *v) {
  return http_param_get(r, name, v) == 1 && v->len > 0;
}

static int do_publish(hsock *h, const http_request *r, tern_tstamp now) {
  http_slice key, topic;
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.payload = r->body;
  d.payloadlen = (size_t)r->content_length;
  int rc;
  if (key_param(r, "session", &key)) {
    rc = tern_hub_publish(h->srv->hub, (const uint8_t *)key.p, key.len, &d,
                          now, NULL);
  } else if (key_param(r, "topic", &topic)) {
    char name[TERN_MAX_TOPIC + 1];
    if (topic.len > TERN_MAX_TOPIC) {
      return answer_error(h, 400, "bad topic");
    }
    memcpy(name, topic.p, topic.len);
    name[topic.len] = 0;
    tern_topic *t = tern_hub_find_topic(h->srv->hub, name);
    if (!t) {
      return answer_error(h, 404, "no such topic");
    }
    rc = tern_topic_publish(t, &d, now, NULL);
  } else {
    return answer_error(h, 400, "session or topic required");
  }
  if (rc == TERN_ERR_FULL) {
    return answer_error(h, 429, "full");
  }
  if (rc != 0) {
    return answer_error(h, 400, tern_strerror(rc));
  }
  return answer(h, 202, "{}");
}

static int do_ack(hsock *h, const http_request *r, tern_tstamp now) {
  http_slice key;
  uint64_t seq;
  if (!key_param(r, "session", &key) || http_param_u64(r, "seq", &seq) != 1) {
    return answer_error(h, 400, "session and seq required");
  }
  tern_ssize n =
      tern_hub_ack(h->srv->hub, (const uint8_t *)key.p, key.len, seq, now);
  if (n < 0) {
    return answer_error(h, n == TERN_ERR_NOT_FOUND ? 404 : 400,
                        tern_strerror((int)n));
  }
  return answer(h, 204, NULL);
}

static int do_subscribe(hsock *h, const http_request *r, tern_tstamp now) {
  http_slice key, topic;
  char name[TERN_MAX_TOPIC + 1];
  if (!key_param(r, "session", &key) || !key_param(r, "topic", &topic) ||
      topic.len > TERN_MAX_TOPIC) {
    return answer_error(h, 400, "session and topic required");
  }
  memcpy(name, topic.p, topic.len);
  name[topic.len] = 0;
  tern_ssize n = tern_hub_subscribe(h->srv->hub, (const uint8_t *)key.p,
                                    key.len, name, NULL, now, NULL);
  if (n < 0) {
    return answer_error(h, n == TERN_ERR_NOT_FOUND ? 404 : 400,
                        tern_strerror((int)n));
  }
  return answer(h, 204, NULL);
}

/* GET /stream: the SSE head goes out first, then what the connection
   writes.  The connection's user data is the socket, so the driver puts
   the socket on its dirty list when the hub makes the connection ready,
   and ends it on the connection's end event. */
static int do_stream(hsock *h, tern_socket *s, const http_request *r,
                     tern_tstamp now) {
  http_slice key;
  if (!key_param(r, "session", &key)) {
    return answer_error(h, 400, "session required");
  }
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = TERN_FRAMING_SSE;
  o.key = (const uint8_t *)key.p;
  o.keylen = key.len;
  uint64_t seq = 0;
  if (r->last_event_id.p) {
    if (tern_stream_parse_resume(r->last_event_id.p, r->last_event_id.len,
                                 &o.resume_epoch, &o.resume_seq) != 0) {
      return answer_error(h, 400, "bad Last-Event-ID");
    }
  } else if (http_param_u64(r, "seq", &seq) == 1) {
    o.resume_seq = seq;
  }
  int rc = tern_conn_new_stream(&h->stream, h->srv->hub, &o, now);
  if (rc != 0) {
    return answer_error(h, rc == TERN_ERR_LIMIT ? 429 : 400,
                        tern_strerror(rc));
  }
  tern_conn_set_user_data(h->stream, s);
  http_response resp;
  http_response_init(&resp, 200);
  resp.flags = HTTP_RESP_SSE | HTTP_RESP_NO_LENGTH | HTTP_RESP_CLOSE;
  char head[512];
  size_t n = http_response_write(&resp, head, sizeof(head));
  return n ? put(h, head, n) : -1;
}

/* GET /ws: the upgrade, then a binary connection (tern_conn_new) whose
   bytes travel in binary messages.  Its user data is the socket, as for
   SSE; its HELLO goes through on_event like any other. */
static int do_ws(hsock *h, tern_socket *s, const http_request *r,
                 tern_tstamp now) {
  unsigned proto = 0;
  char accept[WEB_WS_ACCEPT_LEN];
  if (!r->upgrade.p || !r->connection_upgrade ||
      !web_http_has_token(r->upgrade.p, r->upgrade.len, "websocket")) {
    return answer_error(h, 400, "not a WebSocket upgrade");
  }
  if (web_ws_handshake(r->ws_key.p, r->ws_key.len, r->ws_version.p,
                       r->ws_version.len, r->ws_protocol.p,
                       r->ws_protocol.len, WEB_WS_PROTO_BIN, &proto,
                       accept) != WEB_WS_HS_OK) {
    return answer_error(h, 400, "bad WebSocket handshake (tern.bin only)");
  }
  h->ws = malloc(sizeof(*h->ws));
  if (!h->ws) {
    return -1;
  }
  web_ws_decoder_init(h->ws, WEB_WS_SERVER, 1 << 20, 1 << 20);
  int rc = tern_conn_new(&h->stream, h->srv->hub, now);
  if (rc != 0) {
    free(h->ws);
    h->ws = NULL;
    return answer_error(h, 503, tern_strerror(rc));
  }
  tern_conn_set_user_data(h->stream, s);
  char head[256];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %.*s\r\n"
                   "Sec-WebSocket-Protocol: tern.bin\r\n\r\n",
                   WEB_WS_ACCEPT_LEN, accept);
  return put(h, head, (size_t)n);
}

/* Bytes from a WebSocket peer: binary messages go to the connection;
   pings are answered.  A CLOSE or a bad frame ends the socket (the
   connection's in-flight messages go back to its session). */
static int ws_feed(hsock *h, const uint8_t *in, size_t len, tern_tstamp now) {
  uint8_t data[16384];
  while (len > 0) {
    web_ws_event ev;
    tern_ssize used = web_ws_decode(h->ws, in, len, data, sizeof(data), &ev);
    if (used < 0) {
      return TERN_ERR_PROTO;
    }
    in += used;
    len -= (size_t)used;
    if (ev.type == WEB_WS_EV_DATA && ev.len > 0) {
      if (ev.opcode != WEB_WS_BINARY) {
        return TERN_ERR_PROTO; /* tern.bin carries binary messages */
      }
      /* A receiver's bytes are always consumed whole (only producers,
         which this bench does not run over WebSocket, push back). */
      (void)tern_conn_read(h->stream, ev.data, ev.len, now);
    } else if (ev.type == WEB_WS_EV_PING) {
      uint8_t pong[2 + WEB_WS_CONTROL_MAX];
      tern_ssize n = web_ws_control_write(pong, sizeof(pong), WEB_WS_PONG,
                                          ev.data, ev.len, NULL);
      if (n < 0 || put(h, (const char *)pong, (size_t)n) != 0) {
        return TERN_ERR_NOMEM;
      }
    } else if (ev.type == WEB_WS_EV_CLOSE) {
      return TERN_ERR_CLOSED;
    }
  }
  return 0;
}

static int route(hsock *h, tern_socket *s, const http_request *r,
                 tern_tstamp now) {
  const char *path = r->path.p;
  size_t len = r->path.len;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(path, lit, len) == 0)
  if (IS("/publish")) {
    return r->method == HTTP_POST ? do_publish(h, r, now)
                                  : answer_error(h, 405, "POST only");
  }
  if (IS("/ack")) {
    return r->method == HTTP_POST ? do_ack(h, r, now)
                                  : answer_error(h, 405, "POST only");
  }
  if (IS("/subscribe")) {
    return r->method == HTTP_POST ? do_subscribe(h, r, now)
                                  : answer_error(h, 405, "POST only");
  }
  if (IS("/stream")) {
    return r->method == HTTP_GET ? do_stream(h, s, r, now)
                                 : answer_error(h, 405, "GET only");
  }
  if (IS("/ws")) {
    return r->method == HTTP_GET ? do_ws(h, s, r, now)
                                 : answer_error(h, 405, "GET only");
  }
#undef IS
  return answer_error(h, 404, "not found");
}

static int h_open(void *user, tern_socket *s, tern_tstamp now) {
  (void)now;
  hsock *h = calloc(1, sizeof(*h));
  if (h) {
    h->p = malloc(sizeof(*h->p));
  }
  if (!h || !h->p) {
    free(h);
    return TERN_ERR_NOMEM;
  }
  http_parser_init(h->p, NULL);
  h->srv = user;
  tern_socket_set_user_data(s, h);
  return 0;
}

static int h_read(void *user, tern_socket *s, const uint8_t *in, size_t len,
                  tern_tstamp now) {
  (void)user;
  hsock *h = tern_socket_get_user_data(s);
  if (h->ws && !h->p) {
    return h->closing ? 0 : ws_feed(h, in, len, now);
  }
  if (!h->p || h->closing) {
    return 0; /* a stream's peer says nothing; bytes after an end neither */
  }
  while (len > 0) {
    size_t used = 0;
    int r = http_parse(h->p, in, len, &used);
    in += used;
    len -= used;
    if (r == HTTP_PARSE_MORE) {
      break;
    }
    if (r == HTTP_PARSE_ERROR) {
      const char *reason = NULL;
      int status = http_error(h->p, &reason);
      h->closing = 1;
      answer_error(h, status, reason);
      break;
    }
    const http_request *req = http_parser_request(h->p);
    h->closing = !req->keep_alive;
    if (route(h, s, req, now) != 0) {
      return TERN_ERR_NOMEM;
    }
    if (h->stream || h->closing) {
      break; /* a stream carries no more requests */
    }
    http_parser_next(h->p);
  }
  if (h->stream) {
    http_parser_free(h->p);
    free(h->p);
    h->p = NULL;
    if (h->ws && len > 0) {
      return ws_feed(h, in, len, now); /* frames right behind the upgrade */
    }
  } else if (h->p && http_parser_idle(h->p)) {
    http_parser_trim(h->p);
  }
  return 0;
}

static tern_ssize h_pull(void *user, tern_socket *s, uint8_t *out, size_t cap,
                         tern_tstamp now) {
  (void)user;
  hsock *h = tern_socket_get_user_data(s);
  size_t n = 0;
  if (h->outoff < h->outlen) {
    n = h->outlen - h->outoff;
    if (n > cap) {
      n = cap;
    }
    memcpy(out, h->out + h->outoff, n);
    h->outoff += n;
    if (h->outoff < h->outlen) {
      return (tern_ssize)n;
    }
    h->outoff = h->outlen = 0;
  }
  if (h->out && h->stream && !h->ws) {
    free(h->out); /* the head is out: a stream answers nothing more */
    h->out = NULL;
    h->outcap = 0;
  }
  if (h->ws) {
    /* One binary message per pull: room for the longest header first,
       the header written once the length is known. */
    const size_t room = WEB_WS_SERVER_HEADER_MAX;
    if (cap - n <= room) {
      return (tern_ssize)n;
    }
    tern_ssize w =
        tern_conn_write(h->stream, out + n + room, cap - n - room, now);
    if (w == TERN_ERR_NOMEM) {
      w = 0;
    }
    if (w <= 0) {
      return n || w == 0 ? (tern_ssize)n : w;
    }
    size_t hl = web_ws_header_len((uint64_t)w, 0);
    memmove(out + n + hl, out + n + room, (size_t)w);
    web_ws_header_write(out + n, 1, WEB_WS_BINARY, (uint64_t)w, NULL);
    return (tern_ssize)(n + hl + (size_t)w);
  }
  if (h->stream) {
    tern_ssize w = tern_conn_write(h->stream, out + n, cap - n, now);
    if (w == TERN_ERR_NOMEM) {
      w = 0; /* the hub hands the connection back after its expiry */
    }
    if (w < 0) {
      return n ? (tern_ssize)n : w;
    }
    return (tern_ssize)n + w;
  }
  if (n == 0 && h->closing) {
    return TERN_ERR_CLOSED;
  }
  return (tern_ssize)n;
}

static void h_close(void *user, tern_socket *s) {
  (void)user;
  hsock *h = tern_socket_get_user_data(s);
  if (!h) {
    return;
  }
  tern_conn_del(h->stream); /* in-flight messages go back to the session */
  free(h->ws);
  if (h->p) {
    http_parser_free(h->p);
    free(h->p);
  }
  free(h->out);
  free(h);
}

static const tern_socket_handler http_handler = {
    TERN_SOCKET_HANDLER_VERSION, h_open, h_read, h_pull, h_close};

/* Every binary HELLO waits for this (settings.hello_accept): producers
   are told apart by their token. */
static void on_event(void *user, tern_driver *d, const tern_event *ev) {
  server *srv = user;
  if (ev->type != TERN_EV_CONN_HELLO || !ev->conn) {
    return;
  }
  tern_tstamp now = tern_posix_now();
  size_t tl = strlen(srv->token);
  if (ev->auxlen == tl && memcmp(ev->aux, srv->token, tl) == 0 &&
      tern_conn_allow_publish(ev->conn, 1) != 0) {
    tern_conn_goaway(ev->conn, TERN_GOAWAY_INTERNAL, 0, now);
    return;
  }
  if (tern_conn_accept(ev->conn, now) != 0 && !tern_conn_is_closed(ev->conn)) {
    tern_conn_goaway(ev->conn, TERN_GOAWAY_INTERNAL, 0, now);
  }
  (void)d;
}

/* "ADDR:PORT" (the address may be empty: 127.0.0.1). */
static int parse_addr(const char *arg, char *host, size_t hostcap,
                      uint16_t *port) {
  const char *colon = strrchr(arg, ':');
  if (!colon || (size_t)(colon - arg) >= hostcap) {
    return -1;
  }
  memcpy(host, arg, (size_t)(colon - arg));
  host[colon - arg] = 0;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p < 0 || p > 65535) {
    return -1;
  }
  *port = (uint16_t)p;
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: e2e_server [--bin-listen ADDR:PORT] "
                  "[--listen ADDR:PORT] [--publish-token T] "
                  "[--max-pending N]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *bin = NULL, *web = NULL;
  unsigned long max_pending = 10000;
  server srv;
  memset(&srv, 0, sizeof(srv));
  srv.token = "e2e";
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--bin-listen") == 0) {
      bin = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--listen") == 0) {
      web = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--publish-token") == 0) {
      srv.token = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--max-pending") == 0) {
      max_pending = strtoul(argv[++i], NULL, 10);
    } else {
      return usage();
    }
  }
  if (!bin && !web) {
    return usage();
  }
  tern_settings s;
  tern_settings_default(&s);
  s.hello_accept = 1;
  s.max_pending = (uint32_t)max_pending;
  s.seed = (uint64_t)tern_posix_now() | 1;
  int rc = tern_hub_new(&srv.hub, &s, NULL);
  if (rc == 0) {
    rc = tern_hub_create_topic(srv.hub, "e2e", NULL, tern_posix_now(), NULL);
  }
  if (rc == 0) {
    rc = tern_epoll_new(&srv.ep);
  }
  tern_driver_options o;
  tern_driver_options_default(&o);
  o.on_event = on_event;
  o.user_data = &srv;
  if (rc == 0) {
    rc = tern_driver_new(&srv.d, srv.hub, tern_epoll_methods(), srv.ep, &o);
  }
  /* Before the listeners: a SIGTERM sent as soon as a port accepts (the
     generator stops a server whose row cannot run at once) is ours. */
  stop_ep = srv.ep;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  char host[64];
  uint16_t port;
  if (rc == 0 && bin) {
    rc = parse_addr(bin, host, sizeof(host), &port) != 0
             ? TERN_ERR_INVALID
             : tern_driver_listen(srv.d, host, port, NULL, NULL, NULL);
  }
  if (rc == 0 && web) {
    rc = parse_addr(web, host, sizeof(host), &port) != 0
             ? TERN_ERR_INVALID
             : tern_driver_listen(srv.d, host, port, &http_handler, &srv,
                                  NULL);
  }
  if (rc != 0) {
    fprintf(stderr, "e2e_server: %s\n", tern_strerror(rc));
    return 1;
  }
  if (!stop_asked) {
    rc = tern_epoll_run(srv.ep);
  }
  tern_driver_del(srv.d);
  tern_epoll_del(srv.ep);
  tern_hub_del(srv.hub);
  return rc == 0 ? 0 : 1;
}
