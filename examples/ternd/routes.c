/*
 * The HTTP API of ternd(8): one function per route, each checking its
 * method, its parameters and its caller before it touches the hub, so
 * that a refused request changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ternd.h"

/* SSE's retry hint and the streams' heartbeat. */
#define STREAM_RETRY (2 * TERN_SECONDS)
#define STREAM_HEARTBEAT (15 * TERN_SECONDS)
/* The longest poll hold a client may ask for, in seconds. */
#define MAX_POLL_HOLD 300
/* The longest ttl, in seconds (ten years). */
#define MAX_TTL_SECONDS (10ull * 365 * 86400)

static const char json_type[] = "application/json";

size_t ternd_json_escape(char *out, const uint8_t *p, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (size_t i = 0; i < len; ++i) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      /* Control bytes, and every byte past ASCII read as Latin-1: ids and
         keys are bytes, and this keeps the answer valid JSON whatever
         they hold. */
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[c >> 4];
      out[n + 5] = hex[c & 15];
      n += 6;
    } else {
      out[n++] = (char)c;
    }
  }
  return n;
}

static void json(tern_http_request *req, int status, const char *body) {
  (void)tern_http_respond(req, status, json_type,
                          "Cache-Control: no-store\r\n", body, strlen(body));
}

static void error(tern_http_request *req, int status, const char *msg) {
  (void)tern_http_respond_error(req, status, NULL, msg);
}

static void method_not_allowed(tern_http_request *req, const char *allow) {
  char h[64];
  snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
  (void)tern_http_respond_error(req, 405, h, "method not allowed");
}

static int method_is(const tern_http_request *req, const char *m) {
  return strcmp(tern_http_request_method(req), m) == 0;
}

static tern_tstamp now(void) { return tern_posix_now(); }

/* ---- parameters ------------------------------------------------------------- */

/* Refuses parameters a route does not know (a typo would otherwise pass
   silently) and repeated ones.  |known| is a NULL-ended list; "_" (the
   cache buster some libraries add) is allowed everywhere.  Returns 1 when
   the query is fine, or answers 400 and returns 0. */
static int params_known(tern_http_request *req, const char *const *known) {
  const char *name;
  size_t nlen;
  for (size_t i = 0;
       tern_http_request_param_at(req, i, &name, &nlen, NULL, NULL); ++i) {
    int ok = nlen == 1 && name[0] == '_';
    for (const char *const *k = known; *k && !ok; ++k) {
      ok = strlen(*k) == nlen && memcmp(*k, name, nlen) == 0;
    }
    char msg[96];
    if (!ok) {
      snprintf(msg, sizeof(msg), "unknown parameter %.*s",
               (int)(nlen > 40 ? 40 : nlen), name);
      error(req, 400, msg);
      return 0;
    }
  }
  for (const char *const *k = known; *k; ++k) {
    if (tern_http_request_param(req, *k, NULL, NULL) > 1) {
      char msg[80];
      snprintf(msg, sizeof(msg), "parameter %s given twice", *k);
      error(req, 400, msg);
      return 0;
    }
  }
  return 1;
}

/* A decimal parameter in [0, max]: 1 and *out when present, 0 absent,
   -1 after answering 400. */
static int param_u64(tern_http_request *req, const char *name, uint64_t max,
                     uint64_t *out) {
  const char *v;
  size_t len;
  if (tern_http_request_param(req, name, &v, &len) != 1) {
    return 0;
  }
  uint64_t x = 0;
  int ok = len > 0 && len <= 20;
  for (size_t i = 0; ok && i < len; ++i) {
    if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10) {
      ok = 0;
    } else {
      x = x * 10 + (uint64_t)(v[i] - '0');
    }
  }
  if (!ok || x > max) {
    char msg[96];
    snprintf(msg, sizeof(msg), "%s must be a whole number from 0 to %llu",
             name, (unsigned long long)max);
    error(req, 400, msg);
    return -1;
  }
  *out = x;
  return 1;
}

/* The session key: required, 1..TERN_MAX_SESSION_KEY bytes. */
static int session_key(tern_http_request *req, const uint8_t **key,
                       size_t *keylen) {
  const char *v;
  size_t len;
  if (tern_http_request_param(req, "session", &v, &len) != 1 || len == 0) {
    error(req, 400, "session is required");
    return 0;
  }
  if (len > TERN_MAX_SESSION_KEY) {
    error(req, 400, "session is longer than 128 bytes");
    return 0;
  }
  *key = (const uint8_t *)v;
  *keylen = len;
  return 1;
}

/* A topic name or pattern into |out| (NUL-terminated). */
static int topic_name(tern_http_request *req, char out[TERN_MAX_TOPIC + 1],
                      int required) {
  const char *v;
  size_t len;
  if (tern_http_request_param(req, "topic", &v, &len) != 1) {
    if (required) {
      error(req, 400, "topic is required");
    }
    return 0;
  }
  if (len == 0 || len > TERN_MAX_TOPIC || memchr(v, '\0', len)) {
    error(req, 400, "topic must be 1 to 255 bytes");
    return -1;
  }
  memcpy(out, v, len);
  out[len] = '\0';
  return 1;
}

static int subscriber(ternd_shard *sh, tern_http_request *req, const uint8_t *key,
                      size_t keylen) {
  if (ternd_subscriber_ok(sh->t, req, key, keylen)) {
    return 1;
  }
  sh->unauthorized++;
  (void)tern_http_respond_error(req, 401, NULL,
                                "a valid token for this session is required");
  return 0;
}

static int publisher(ternd_shard *sh, tern_http_request *req) {
  if (ternd_publisher_ok(sh->t, req)) {
    return 1;
  }
  sh->unauthorized++;
  (void)tern_http_respond_error(req, 401, "WWW-Authenticate: Bearer\r\n",
                                "the publisher secret is required");
  return 0;
}

/* ---- shards -------------------------------------------------------------------- */

ternd_shard *ternd_owner(ternd *t, const uint8_t *key, size_t keylen) {
  return &t->shards[tern_shard_of(key, keylen, t->n)];
}

/* With --threads N, a session lives on the hub of the thread tern_shard_of
   names: a request for it that arrived on another thread goes there.
   Returns 1 when the request went (or was answered), 0 to serve it here. */
static int elsewhere(ternd_shard *sh, tern_http_request *req,
                     const uint8_t *key, size_t keylen) {
  ternd_shard *owner = ternd_owner(sh->t, key, keylen);
  if (owner == sh) {
    return 0;
  }
  if (tern_http_request_forward(req, owner->http, NULL) != 0) {
    (void)tern_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                  "busy: try again");
  }
  return 1;
}

/* Passes |req| along every shard: |step| adds each shard's part to the
   chain, and the last shard answers with |finish|.  Returns the chain
   while steps remain to be done here (the caller does its step and calls
   chain_next), or NULL after answering a failure. */
static ternd_chain *chain_get(ternd_shard *sh, tern_http_request *req) {
  ternd_chain *c = tern_http_request_forwarded(req);
  if (!c) {
    c = calloc(1, sizeof(*c) + sh->t->n * sizeof(uint64_t));
    if (!c) {
      error(req, 503, "out of memory");
    }
  }
  return c;
}

/* After this shard's step: on to the next shard (1), or this was the
   last one and the caller answers and frees |c| (0). */
static int chain_next(ternd_shard *sh, tern_http_request *req,
                      ternd_chain *c) {
  if (++c->hops >= sh->t->n) {
    return 0;
  }
  ternd_shard *next = &sh->t->shards[(sh->index + 1) % sh->t->n];
  if (tern_http_request_forward(req, next->http, c) != 0) {
    free(c);
    (void)tern_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                  "busy: try again");
  }
  return 1;
}

static void route_stats(ternd_shard *sh, tern_http_request *req,
                        int metrics) {
  if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
    method_not_allowed(req, "GET, HEAD");
    return;
  }
  ternd_chain *c = chain_get(sh, req);
  if (!c) {
    return;
  }
  ternd_stats_add(sh, c);
  if (chain_next(sh, req, c)) {
    return;
  }
  if (metrics) {
    ternd_metrics_answer(sh, req, c);
  } else {
    ternd_stats_answer(sh, req, c);
  }
  free(c);
}

/* ---- POST /publish ------------------------------------------------------------ */

static void answer_id(tern_http_request *req, int status, const uint8_t *id,
                      size_t idlen, const char *more) {
  char body[TERN_MAX_ID * 6 + 96];
  size_t n = (size_t)snprintf(body, sizeof(body), "{\"id\":\"");
  n += ternd_json_escape(body + n, id, idlen);
  snprintf(body + n, sizeof(body) - n, "\"%s}", more ? more : "");
  json(req, status, body);
}

static void publish_failed(ternd_shard *sh, tern_http_request *req, int rc,
                           const tern_publish_result *res) {
  sh->publish_errors++;
  if (rc == TERN_ERR_FULL) {
    uint64_t secs = (res->retry_after + TERN_SECONDS - 1) / TERN_SECONDS;
    char h[48];
    snprintf(h, sizeof(h), "Retry-After: %llu\r\n",
             (unsigned long long)(secs ? secs : 1));
    (void)tern_http_respond_error(req, 429, h, "the session's queue is full");
  } else if (rc == TERN_ERR_INVALID || rc == TERN_ERR_TOO_LARGE) {
    error(req, rc == TERN_ERR_TOO_LARGE ? 413 : 400, tern_strerror(rc));
  } else {
    (void)tern_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                  tern_strerror(rc));
  }
}

/* A topic has a log on every hub, each with the members of its shard's
   sessions: the publish goes round every shard, with one id. */
static void publish_topic(ternd_shard *sh, tern_http_request *req,
                          const char *topic, tern_msg_desc *desc) {
  ternd_chain *c = chain_get(sh, req);
  if (!c) {
    return;
  }
  if (c->hops == 0) {
    if (desc->id) {
      memcpy(c->id, desc->id, desc->idlen);
      c->idlen = desc->idlen;
    } else {
      c->idlen = (size_t)snprintf(c->id, sizeof(c->id), "t%llx-%u-%llu",
                                  (unsigned long long)ternd_wall_seconds(),
                                  (unsigned)sh->index,
                                  (unsigned long long)++sh->topic_ids);
    }
  }
  desc->id = (const uint8_t *)c->id;
  desc->idlen = c->idlen;
  sh->publishes++;
  tern_topic *tp = tern_hub_find_topic(sh->hub, topic);
  int rc = tp ? 0 : tern_hub_create_topic(sh->hub, topic, NULL, now(), &tp);
  if (rc == 0) {
    rc = tern_topic_publish(tp, desc, now(), NULL);
  }
  if (rc != 0 && c->rc == 0) {
    c->rc = rc;
  }
  if (chain_next(sh, req, c)) {
    return;
  }
  if (c->rc != 0) {
    tern_publish_result none;
    memset(&none, 0, sizeof(none));
    publish_failed(sh, req, c->rc, &none);
  } else {
    answer_id(req, 202, (const uint8_t *)c->id, c->idlen, NULL);
  }
  free(c);
}

static void route_publish(ternd_shard *sh, tern_http_request *req) {
  static const char *const known[] = {"session", "topic", "id", "prio",
                                      "ttl", "collapse", "durable", NULL};
  if (!method_is(req, "POST")) {
    method_not_allowed(req, "POST");
    return;
  }
  if (!publisher(sh, req) || !params_known(req, known)) {
    return;
  }
  tern_msg_desc desc;
  memset(&desc, 0, sizeof(desc));
  desc.priority = TERN_PRIO_NORMAL;
  const char *v;
  size_t len;
  if (tern_http_request_param(req, "prio", &v, &len) == 1) {
    if (len == 4 && memcmp(v, "high", 4) == 0) {
      desc.priority = TERN_PRIO_HIGH;
    } else if (len == 3 && memcmp(v, "low", 3) == 0) {
      desc.priority = TERN_PRIO_LOW;
    } else if (!(len == 6 && memcmp(v, "normal", 6) == 0)) {
      error(req, 400, "prio must be high, normal or low");
      return;
    }
  }
  uint64_t ttl = 0;
  if (param_u64(req, "ttl", MAX_TTL_SECONDS, &ttl) < 0) {
    return;
  }
  desc.ttl = ttl * TERN_SECONDS;
  if (tern_http_request_param(req, "id", &v, &len) == 1) {
    if (len == 0 || len > TERN_MAX_ID) {
      error(req, 400, "id must be 1 to 64 bytes");
      return;
    }
    desc.id = (const uint8_t *)v;
    desc.idlen = len;
  }
  if (tern_http_request_param(req, "collapse", &v, &len) == 1) {
    if (len == 0 || len > TERN_MAX_COLLAPSE_KEY) {
      error(req, 400, "collapse must be 1 to 64 bytes");
      return;
    }
    desc.collapse_key = (const uint8_t *)v;
    desc.collapse_keylen = len;
  }
  int sync = 0;
  if (tern_http_request_param(req, "durable", &v, &len) == 1) {
    if (len == 4 && memcmp(v, "sync", 4) == 0) {
      sync = 1;
    } else if (!(len == 5 && memcmp(v, "async", 5) == 0)) {
      error(req, 400, "durable must be sync or async");
      return;
    }
  }
  char ct[TERN_MAX_CONTENT_TYPE + 1];
  if (tern_http_request_header(req, "Content-Type", &v, &len)) {
    if (len > TERN_MAX_CONTENT_TYPE) {
      error(req, 400, "Content-Type is longer than 128 bytes");
      return;
    }
    memcpy(ct, v, len);
    ct[len] = '\0';
    desc.content_type = ct;
  }
  desc.payload = tern_http_request_body(req, &desc.payloadlen);
  char topic[TERN_MAX_TOPIC + 1];
  int has_topic = topic_name(req, topic, 0);
  int has_session = tern_http_request_param(req, "session", NULL, NULL) > 0;
  if (has_topic < 0) {
    return;
  }
  if (has_topic == has_session) {
    error(req, 400, "give either session or topic");
    return;
  }
  if (has_topic) {
    if (sync) {
      error(req, 400, "durable=sync is for session publishes");
      return;
    }
    publish_topic(sh, req, topic, &desc);
    return;
  }
  const uint8_t *key;
  size_t keylen;
  if (!session_key(req, &key, &keylen) || elsewhere(sh, req, key, keylen)) {
    return;
  }
  sh->publishes++;
  ternd_pending *p = NULL;
  if (sync && sh->store) {
    p = calloc(1, sizeof(*p));
    if (!p) {
      error(req, 503, "out of memory");
      return;
    }
    desc.flags |= TERN_MSG_SYNC;
    desc.cookie = (uint64_t)(uintptr_t)p;
  }
  tern_publish_result res;
  memset(&res, 0, sizeof(res));
  int rc = tern_hub_publish(sh->hub, key, keylen, &desc, now(), &res);
  if (rc == TERN_ERR_DUPLICATE) {
    free(p);
    answer_id(req, 200, res.id, res.idlen, ",\"duplicate\":true");
    return;
  }
  if (rc != 0) {
    free(p);
    publish_failed(sh, req, rc, &res);
    return;
  }
  if (!p) {
    answer_id(req, 202, res.id, res.idlen, NULL);
    return;
  }
  /* The answer waits for TERN_EV_PERSISTED (ternd_on_event). */
  p->req = req;
  memcpy(p->id, res.id, res.idlen);
  p->idlen = res.idlen;
  p->next = sh->pending;
  if (sh->pending) {
    sh->pending->prev = p;
  }
  sh->pending = p;
  tern_http_request_set_user_data(req, p);
}

static void pending_unlink(ternd_shard *sh, ternd_pending *p) {
  if (p->prev) {
    p->prev->next = p->next;
  } else {
    sh->pending = p->next;
  }
  if (p->next) {
    p->next->prev = p->prev;
  }
}

void ternd_pending_drop_all(ternd_shard *sh) {
  while (sh->pending) {
    ternd_pending *p = sh->pending;
    pending_unlink(sh, p);
    free(p);
  }
}

void ternd_on_abort(void *user_data, tern_http_request *req) {
  (void)user_data;
  ternd_pending *p = tern_http_request_get_user_data(req);
  if (p) {
    p->req = NULL; /* its PERSISTED comes later and frees it */
  }
  free(tern_http_request_forwarded(req)); /* a chain's, if any */
}

void ternd_on_event(void *user_data, uint32_t worker, tern_driver *d,
                    const tern_event *ev) {
  ternd *t = user_data;
  ternd_shard *sh = &t->shards[worker];
  (void)d;
  if (ev->type == TERN_EV_PERSISTED && ev->cookie) {
    ternd_pending *p = (ternd_pending *)(uintptr_t)ev->cookie;
    pending_unlink(sh, p);
    if (p->req) {
      tern_http_request_set_user_data(p->req, NULL);
      if (ev->reason == 0) {
        answer_id(p->req, 202, (const uint8_t *)p->id, p->idlen, NULL);
      } else {
        (void)tern_http_respond_error(p->req, 503, "Retry-After: 1\r\n",
                                      "the store failed");
      }
    }
    free(p);
  } else if (ev->type >= TERN_EV_HOOK_DROPPED &&
             ev->type <= TERN_EV_HOOK_VERIFIED) {
    ternd_webhooks_event(ev);
  } else if (ev->type == TERN_EV_CONN_HELLO && ev->conn) {
    /* Every binary HELLO (--bin-listen, /ws tern.bin) waits for this
       (settings.hello_accept).  A producer presents the publisher secret
       as its token ("publisher" without --publish-secret) and may then
       publish (PUBLISH/PUBACK), on --bin-listen only; a receiver with
       --token-secret presents its token, checked as a web subscriber's. */
    const char *pub = t->cfg.publish_secret ? t->cfg.publish_secret
                                            : "publisher";
    const char *secret = t->cfg.token_secret;
    if (ev->auxlen == strlen(pub) &&
        memcmp(ev->aux, pub, ev->auxlen) == 0) {
      int rc = tern_conn_allow_publish(ev->conn, 1);
      if (rc != 0) { /* STATE: a WebSocket (a producer must be able to stop
                        reading, which a WebSocket message does not allow) */
        tern_conn_goaway(ev->conn,
                         rc == TERN_ERR_STATE ? TERN_GOAWAY_REJECTED
                                              : TERN_GOAWAY_INTERNAL,
                         rc == TERN_ERR_STATE ? 0 : 1000, now());
        return;
      }
      tern_conn_accept(ev->conn, now());
    } else if (secret &&
               tern_token_check((const char *)ev->aux, ev->auxlen, secret,
                                strlen(secret), ev->session_key,
                                ev->session_keylen,
                                ternd_wall_seconds()) != 0) {
      tern_conn_goaway(ev->conn, TERN_GOAWAY_REJECTED, 0, now());
    } else {
      tern_conn_accept(ev->conn, now());
    }
  }
}

/* ---- the streams ---------------------------------------------------------------- */

static void route_stream(ternd_shard *sh, tern_http_request *req, int framing) {
  static const char *const known[] = {"session", "seq", "token", "timeout",
                                      "_", NULL};
  if (!method_is(req, "GET")) {
    method_not_allowed(req, "GET");
    return;
  }
  if (!params_known(req, known)) {
    return;
  }
  const uint8_t *key;
  size_t keylen;
  if (!session_key(req, &key, &keylen) || !subscriber(sh, req, key, keylen) ||
      elsewhere(sh, req, key, keylen)) {
    return;
  }
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = framing;
  o.key = key;
  o.keylen = keylen;
  const char *v;
  size_t len;
  /* EventSource sends Last-Event-ID when it reconnects, to the URL it
     started with: the header is newer than the URL's seq. */
  if (framing == TERN_FRAMING_SSE &&
      tern_http_request_header(req, "Last-Event-ID", &v, &len) && len > 0) {
    if (tern_stream_parse_resume(v, len, &o.resume_epoch, &o.resume_seq) !=
        0) {
      error(req, 400, "Last-Event-ID must be EPOCH.SEQ or SEQ");
      return;
    }
  } else if (tern_http_request_param(req, "seq", &v, &len) == 1) {
    if (tern_stream_parse_resume(v, len, &o.resume_epoch, &o.resume_seq) !=
            0 ||
        o.resume_epoch != 0) {
      error(req, 400, "seq must be a whole number");
      return;
    }
  }
  uint64_t hold = 25;
  if (framing == TERN_FRAMING_POLL) {
    if (param_u64(req, "timeout", MAX_POLL_HOLD, &hold) < 0) {
      return;
    }
    o.poll_hold = hold * TERN_SECONDS;
  } else if (tern_http_request_param(req, "timeout", NULL, NULL)) {
    error(req, 400, "timeout is for /poll");
    return;
  }
  if (framing == TERN_FRAMING_SSE) {
    o.retry = STREAM_RETRY;
  }
  if (framing != TERN_FRAMING_POLL) {
    o.heartbeat_interval = STREAM_HEARTBEAT;
  }
  int rc = tern_http_respond_stream(req, &o, NULL, NULL);
  if (rc == TERN_ERR_LIMIT) {
    (void)tern_http_respond_error(req, 429, "Retry-After: 1\r\n",
                                  "too many connections");
  } else if (rc == TERN_ERR_NOMEM) {
    (void)tern_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                  "out of memory");
  } else if (rc != 0) {
    error(req, 400, tern_strerror(rc));
  }
}

/* ---- POST /ack ------------------------------------------------------------------- */

static void route_ack(ternd_shard *sh, tern_http_request *req) {
  static const char *const known[] = {"session", "seq", "token", NULL};
  if (!method_is(req, "POST")) {
    method_not_allowed(req, "POST");
    return;
  }
  if (!params_known(req, known)) {
    return;
  }
  const uint8_t *key;
  size_t keylen;
  if (!session_key(req, &key, &keylen) || !subscriber(sh, req, key, keylen) ||
      elsewhere(sh, req, key, keylen)) {
    return;
  }
  uint64_t seq;
  int have = param_u64(req, "seq", UINT64_MAX, &seq);
  if (have < 0) {
    return;
  }
  if (have == 0 || seq == 0) {
    error(req, 400, "seq is required (1 or more)");
    return;
  }
  tern_ssize n = tern_hub_ack(sh->hub, key, keylen, seq, now());
  if (n == TERN_ERR_NOT_FOUND) {
    error(req, 404, "no such session");
    return;
  }
  if (n < 0) {
    error(req, 400, "seq names nothing this session sent");
    return;
  }
  sh->acks += (uint64_t)n;
  (void)tern_http_respond(req, 204, NULL, NULL, NULL, 0);
}

/* ---- POST /subscribe, /unsubscribe ----------------------------------------------- */

static void route_subscribe(ternd_shard *sh, tern_http_request *req, int subscribe) {
  static const char *const known[] = {"session", "topic", "filter", NULL};
  if (!method_is(req, "POST")) {
    method_not_allowed(req, "POST");
    return;
  }
  if (!publisher(sh, req) || !params_known(req, known)) {
    return;
  }
  const uint8_t *key;
  size_t keylen;
  char topic[TERN_MAX_TOPIC + 1];
  if (!session_key(req, &key, &keylen) || topic_name(req, topic, 1) != 1 ||
      elsewhere(sh, req, key, keylen)) {
    return;
  }
  const char *v;
  size_t len;
  char filter[TERN_MAX_FILTER + 1];
  const char *fp = NULL;
  if (tern_http_request_param(req, "filter", &v, &len) == 1) {
    if (!subscribe) {
      error(req, 400, "filter is for /subscribe");
      return;
    }
    if (len == 0 || len > TERN_MAX_FILTER || memchr(v, '\0', len)) {
      error(req, 400, "filter must be 1 to 1024 bytes");
      return;
    }
    memcpy(filter, v, len);
    filter[len] = '\0';
    fp = filter;
  }
  char body[96];
  if (!subscribe) {
    tern_ssize n = tern_hub_unsubscribe(sh->hub, key, keylen, topic,
                                         now());
    if (n == TERN_ERR_NOT_FOUND) {
      error(req, 404, "no such subscription");
    } else if (n < 0) {
      error(req, 400, tern_strerror((int)n));
    } else {
      snprintf(body, sizeof(body), "{\"removed\":%lld}", (long long)n);
      json(req, 200, body);
    }
    return;
  }
  /* An exact name subscribes to a topic that exists: create it first, so
     that subscribers may come before the first publish. */
  size_t errpos = 0;
  if (!strpbrk(topic, "*#") &&
      tern_topic_pattern_check(topic, strlen(topic), &errpos) == 0 &&
      !tern_hub_find_topic(sh->hub, topic)) {
    int rc = tern_hub_create_topic(sh->hub, topic, NULL, now(), NULL);
    if (rc != 0 && rc != TERN_ERR_DUPLICATE) {
      error(req, rc == TERN_ERR_INVALID ? 400 : 503, tern_strerror(rc));
      return;
    }
  }
  tern_ssize n = tern_hub_subscribe(sh->hub, key, keylen, topic, fp, now(),
                                    &errpos);
  if (n == TERN_ERR_INVALID) {
    char msg[96];
    snprintf(msg, sizeof(msg), "bad topic pattern or filter at byte %zu",
             errpos);
    error(req, 400, msg);
  } else if (n == TERN_ERR_LIMIT) {
    error(req, 429, "too many sessions or filters");
  } else if (n < 0) {
    error(req, n == TERN_ERR_NOT_FOUND ? 404 : 503, tern_strerror((int)n));
  } else {
    snprintf(body, sizeof(body), "{\"topics\":%lld}", (long long)n);
    json(req, 200, body);
  }
}

/* ---- GET /ws: WebSocket ----------------------------------------------------------- */

/* The WebSocket framings (tern.bin, tern.json) are connection kinds of
   the core still to come; until they are, /ws says so.  Their upgrade
   goes here. */
/* GET /ws?session=KEY[&seq=N]: WebSocket, tern.json (bound to the session,
   acks as {"ack":N}; the default when the client names no subprotocol) or
   tern.bin (the binary framing: the HELLO names the session, which should
   be KEY, the shard that owns it). */
/* Whether an upgrade would get tern.bin, whose HELLO carries the token
   (checked in ternd_on_event, with the publisher secret of a producer);
   tern.json's token is in the query, as a stream's. */
static int ws_offers_bin(const tern_http_request *req) {
  const char *key = NULL, *ver = NULL, *pro = NULL;
  size_t keyl = 0, verl = 0, prol = 0;
  tern_ws_answer a;
  tern_http_request_header(req, "Sec-WebSocket-Key", &key, &keyl);
  tern_http_request_header(req, "Sec-WebSocket-Version", &ver, &verl);
  tern_http_request_header(req, "Sec-WebSocket-Protocol", &pro, &prol);
  return tern_ws_handshake(key, keyl, ver, verl, pro, prol,
                           TERN_FRAMING_WS_JSON, &a, sizeof(a)) == 0 &&
         a.framing == TERN_FRAMING_WS_BIN;
}

static void route_ws(ternd_shard *sh, tern_http_request *req) {
  static const char *const known[] = {"session", "seq", "token", NULL};
  if (!method_is(req, "GET")) {
    method_not_allowed(req, "GET");
    return;
  }
  if (!params_known(req, known)) {
    return;
  }
  const uint8_t *key;
  size_t keylen;
  if (!session_key(req, &key, &keylen) ||
      (!ws_offers_bin(req) && !subscriber(sh, req, key, keylen)) ||
      elsewhere(sh, req, key, keylen)) {
    return;
  }
  tern_stream_opts o;
  tern_stream_opts_default(&o);
  o.framing = TERN_FRAMING_WS_JSON;
  o.key = key;
  o.keylen = keylen;
  o.heartbeat_interval = STREAM_HEARTBEAT;
  const char *v;
  size_t len;
  if (tern_http_request_param(req, "seq", &v, &len) == 1 &&
      (tern_stream_parse_resume(v, len, &o.resume_epoch, &o.resume_seq) != 0 ||
       o.resume_epoch != 0)) {
    error(req, 400, "seq must be a whole number");
    return;
  }
  int rc = tern_http_respond_websocket(req, &o, NULL, NULL);
  if (rc == TERN_ERR_LIMIT) {
    (void)tern_http_respond_error(req, 429, "Retry-After: 1\r\n",
                                  "too many connections");
  } else if (rc == TERN_ERR_NOMEM) {
    (void)tern_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                  "out of memory");
  } else if (rc != 0 && rc != TERN_ERR_PROTO) {
    error(req, 400, tern_strerror(rc));
  }
}

/* ---- GET / ------------------------------------------------------------------------- */

static void route_page(ternd_shard *sh, tern_http_request *req) {
  (void)sh;
  if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
    method_not_allowed(req, "GET, HEAD");
    return;
  }
  (void)tern_http_respond(req, 200, "text/html; charset=utf-8",
                          "Cache-Control: no-store\r\n", ternd_page_html,
                          strlen(ternd_page_html));
}

static int path_is(const char *path, size_t len, const char *want) {
  return len == strlen(want) && memcmp(path, want, len) == 0;
}

void ternd_on_request(void *user_data, tern_http_request *req) {
  ternd_shard *sh = user_data;
  size_t len;
  const char *path = tern_http_request_path(req, &len);
  if (path_is(path, len, "/publish")) {
    route_publish(sh, req);
  } else if (path_is(path, len, "/stream")) {
    route_stream(sh, req, TERN_FRAMING_SSE);
  } else if (path_is(path, len, "/ndjson")) {
    route_stream(sh, req, TERN_FRAMING_NDJSON);
  } else if (path_is(path, len, "/poll")) {
    route_stream(sh, req, TERN_FRAMING_POLL);
  } else if (path_is(path, len, "/ack")) {
    route_ack(sh, req);
  } else if (path_is(path, len, "/subscribe")) {
    route_subscribe(sh, req, 1);
  } else if (path_is(path, len, "/unsubscribe")) {
    route_subscribe(sh, req, 0);
  } else if (path_is(path, len, "/stats")) {
    route_stats(sh, req, 0);
  } else if (path_is(path, len, "/metrics")) {
    route_stats(sh, req, 1);
  } else if (path_is(path, len, "/ws")) {
    route_ws(sh, req);
  } else if (path_is(path, len, "/webhooks") ||
             (len > 10 && memcmp(path, "/webhooks/", 10) == 0)) {
    ternd_webhooks_route(sh, req, path, len);
  } else if (path_is(path, len, "/")) {
    route_page(sh, req);
  } else {
    sh->not_found++;
    error(req, 404, "no such resource");
  }
}
