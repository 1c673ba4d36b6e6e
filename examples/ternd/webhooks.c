/*
 * ternd's web hooks (ternd(8), "WEB HOOKS"): the /webhooks routes over
 * the hub's hooks (tern_hub_add_hook and friends), and the sender that
 * makes their requests (tern_hook_sender, libtern-posix's HTTP client).
 *
 * Hooks live on the hub of thread 0, whatever thread a request arrives
 * on (it is forwarded there), and persist through that hub's store:
 * registrations and queued entries survive a restart on the same --data
 * and --threads.  Entries come in by POST /webhooks/ID/entries: a hook's
 * entries are notices that an object changed (a key, the changed fields,
 * a time, optional JSON data), not session messages, so they are
 * published to the hook itself rather than mapped from a session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "params.h"
#include "ternd.h"

static const char json_type[] = "application/json";

static void error(tern_http_request *req, int status, const char *msg) {
  (void)tern_http_respond_error(req, status, NULL, msg);
}

static void json(tern_http_request *req, int status, const char *body,
                 size_t len) {
  (void)tern_http_respond(req, status, json_type,
                          "Cache-Control: no-store\r\n", body, len);
}

static int method_is(const tern_http_request *req, const char *m) {
  return strcmp(tern_http_request_method(req), m) == 0;
}

static void method_not_allowed(tern_http_request *req, const char *allow) {
  char h[64];
  snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
  (void)tern_http_respond_error(req, 405, h, "method not allowed");
}

/* Answers a hub error; |what| names the thing a NOT_FOUND is about. */
static void hub_error(tern_http_request *req, int rc) {
  switch (rc) {
  case TERN_ERR_NOT_FOUND:
    error(req, 404, "no such web hook");
    break;
  case TERN_ERR_TOO_LARGE:
    error(req, 413, tern_strerror(rc));
    break;
  case TERN_ERR_FULL:
    (void)tern_http_respond_error(req, 429, "Retry-After: 1\r\n",
                                  "the hook's queue is full");
    break;
  case TERN_ERR_NOMEM:
  case TERN_ERR_STORE:
    (void)tern_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                  tern_strerror(rc));
    break;
  default:
    error(req, 400, tern_strerror(rc));
    break;
  }
}

/* ---- parameters: the query, or a flat JSON object in the body (params.c) - */

/* The value of |name| (query first, then the body's object): 1, 0 when
   absent. */
static int param(const ternd_params *ps, tern_http_request *req,
                 const char *name, const char **v, size_t *len) {
  if (tern_http_request_param(req, name, v, len) == 1) {
    return 1;
  }
  for (size_t i = 0; i < ps->n; i++) {
    if (ps->namelen[i] == strlen(name) &&
        memcmp(ps->name[i], name, ps->namelen[i]) == 0) {
      *v = ps->value[i];
      *len = ps->valuelen[i];
      return 1;
    }
  }
  return 0;
}

/* A whole number in [min, max]: 1 when present (*out set), 0 absent, -1
   after answering 400. */
static int number(const ternd_params *ps, tern_http_request *req,
                  const char *name, uint64_t min, uint64_t max,
                  uint64_t *out) {
  const char *v;
  size_t len;
  if (!param(ps, req, name, &v, &len)) {
    return 0;
  }
  uint64_t x = 0;
  int ok = len > 0 && len <= 19;
  for (size_t i = 0; ok && i < len; i++) {
    ok = v[i] >= '0' && v[i] <= '9';
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  if (!ok || x < min || x > max) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s must be a whole number from %llu to %llu",
             name, (unsigned long long)min, (unsigned long long)max);
    error(req, 400, msg);
    return -1;
  }
  *out = x;
  return 1;
}

/* Refuses names it does not know, in the query and in the body. */
static int known_only(const ternd_params *ps, tern_http_request *req,
                      const char *const *known) {
  const char *name;
  size_t nlen;
  for (size_t i = 0;; i++) {
    if (i < ps->n) {
      name = ps->name[i];
      nlen = ps->namelen[i];
    } else if (!tern_http_request_param_at(req, i - ps->n, &name, &nlen, NULL,
                                           NULL)) {
      break;
    }
    if (!ternd_param_known(req, known, name, nlen)) {
      return 0;
    }
  }
  return ternd_params_once(req, known);
}

/* ---- the routes ---------------------------------------------------------------- */

static tern_tstamp now(void) { return tern_posix_now(); }

/* POST /webhooks */
static void route_add(ternd_shard *sh, tern_http_request *req) {
  static const char *const known[] = {
      "url", "secret", "verify_token", "object", "coalesce", "max_items",
      "max_delay", "max_bytes", "max_attempts", "retry_base", "retry_cap",
      "disable_after", "max_queued", NULL};
  ternd_params *ps = calloc(1, sizeof(*ps));
  if (!ps) {
    error(req, 503, "out of memory");
    return;
  }
  size_t blen;
  const uint8_t *body = tern_http_request_body(req, &blen);
  if (blen && ternd_params_parse(ps, (const char *)body, blen) != 0) {
    error(req, 400, "the body must be a flat JSON object");
    free(ps);
    return;
  }
  if (!known_only(ps, req, known)) {
    free(ps);
    return;
  }
  tern_hook_opts o;
  tern_hook_opts_default(&o);
  const char *url, *secret, *token, *object;
  size_t urllen, secretlen, tokenlen, objectlen;
  char objname[TERN_MAX_HOOK_OBJECT + 1];
  if (!param(ps, req, "url", &url, &urllen) || urllen == 0 ||
      !param(ps, req, "secret", &secret, &secretlen) || secretlen == 0) {
    error(req, 400, "url and secret are required");
    free(ps);
    return;
  }
  if (urllen < 8 || strncasecmp(url, "http://", 7) != 0) {
    /* The sender speaks plain HTTP only (tern_http_client_new(3)). */
    error(req, 400, "url must be http://HOST:PORT/PATH");
    free(ps);
    return;
  }
  o.target = (const uint8_t *)url;
  o.targetlen = urllen;
  o.secret = (const uint8_t *)secret;
  o.secretlen = secretlen;
  o.flags = TERN_HOOK_VERIFIED;
  if (param(ps, req, "verify_token", &token, &tokenlen)) {
    /* The endpoint proves it wants the deliveries: the challenge first. */
    o.flags = 0;
    o.verify_token = (const uint8_t *)token;
    o.verify_tokenlen = tokenlen;
  }
  if (param(ps, req, "object", &object, &objectlen)) {
    if (objectlen > TERN_MAX_HOOK_OBJECT) {
      error(req, 413, "object is too long");
      free(ps);
      return;
    }
    memcpy(objname, object, objectlen);
    objname[objectlen] = '\0';
    o.object = objname;
  }
  uint64_t v, ms = TERN_MILLISECONDS;
  int r;
  if ((r = number(ps, req, "coalesce", 0, 1, &v)) < 0) goto out;
  if (r && v) o.flags |= TERN_HOOK_COALESCE;
  if ((r = number(ps, req, "max_items", 1, 1000000, &v)) < 0) goto out;
  if (r) o.max_items = (uint32_t)v;
  if ((r = number(ps, req, "max_delay", 0, 86400000, &v)) < 0) goto out;
  if (r) o.max_delay = v * ms;
  if ((r = number(ps, req, "max_bytes", 256, (uint64_t)64 << 20, &v)) < 0) goto out;
  if (r) o.max_bytes = v;
  if ((r = number(ps, req, "max_attempts", 0, 1000000, &v)) < 0) goto out;
  if (r) o.max_attempts = (uint32_t)v;
  if ((r = number(ps, req, "retry_base", 1, 86400000, &v)) < 0) goto out;
  if (r) o.retry_base = v * ms;
  if ((r = number(ps, req, "retry_cap", 1, 86400000, &v)) < 0) goto out;
  if (r) o.retry_cap = v * ms;
  else if (o.retry_cap < o.retry_base) o.retry_cap = o.retry_base;
  if ((r = number(ps, req, "disable_after", 0, 1000000, &v)) < 0) goto out;
  if (r) o.disable_after = (uint32_t)v;
  if ((r = number(ps, req, "max_queued", 0, 100000000, &v)) < 0) goto out;
  if (r) o.max_queued = v;
  {
    uint64_t id = 0;
    int rc = tern_hub_add_hook(sh->hub, &o, now(), &id);
    if (rc != 0) {
      hub_error(req, rc);
    } else {
      char out[64];
      int n = snprintf(out, sizeof(out), "{\"id\":%llu}",
                       (unsigned long long)id);
      json(req, 201, out, (size_t)n);
    }
  }
out:
  free(ps);
}

/* One hook as JSON into |out| (room for TERN_MAX_HOOK_TARGET * 6 + 512). */
static size_t describe(const tern_hook_info *in, char *out) {
  const char *state = (in->state & TERN_HOOK_STATE_DISABLED) ? "disabled"
                      : (in->state & TERN_HOOK_STATE_VERIFIED)
                          ? "active"
                          : "unverified";
  size_t n = (size_t)sprintf(out, "{\"id\":%llu,\"url\":\"",
                             (unsigned long long)in->id);
  n += ternd_json_escape(out + n, in->target, in->targetlen);
  n += (size_t)sprintf(
      out + n,
      "\",\"state\":\"%s\",\"failures\":%u,\"queued\":%llu,"
      "\"outstanding\":%u,\"delivered\":%llu,\"dropped\":%llu,"
      "\"attempts\":%llu}",
      state, (unsigned)in->failures, (unsigned long long)in->queued,
      (unsigned)in->outstanding, (unsigned long long)in->delivered,
      (unsigned long long)in->dropped, (unsigned long long)in->attempts);
  return n;
}

#define DESCRIBE_CAP (TERN_MAX_HOOK_TARGET * 6 + 512)

/* GET /webhooks */
static void route_list(ternd_shard *sh, tern_http_request *req) {
  size_t cap = 4096, len = 0;
  char *out = malloc(cap);
  if (!out) {
    error(req, 503, "out of memory");
    return;
  }
  out[len++] = '[';
  for (uint64_t id = tern_hub_next_hook(sh->hub, 0); id;
       id = tern_hub_next_hook(sh->hub, id)) {
    tern_hook_info in;
    if (tern_hub_get_hook_info(sh->hub, id, &in, sizeof(in)) != 0) {
      continue;
    }
    if (cap - len < DESCRIBE_CAP + 2) {
      char *grown = realloc(out, cap * 2 + DESCRIBE_CAP);
      if (!grown) {
        free(out);
        error(req, 503, "out of memory");
        return;
      }
      out = grown;
      cap = cap * 2 + DESCRIBE_CAP;
    }
    if (len > 1) {
      out[len++] = ',';
    }
    len += describe(&in, out + len);
  }
  out[len++] = ']';
  json(req, 200, out, len);
  free(out);
}

/* POST /webhooks/ID/entries?key=K[&fields=a,b][&time=T], the body the
   entry's JSON data (optional). */
static void route_entry(ternd_shard *sh, tern_http_request *req,
                        uint64_t id) {
  static const char *const known[] = {"key", "fields", "time", NULL};
  ternd_params none;
  none.n = 0;
  if (!known_only(&none, req, known)) {
    return;
  }
  const char *key, *fl;
  size_t keylen, fllen;
  if (tern_http_request_param(req, "key", &key, &keylen) != 1 ||
      keylen == 0) {
    error(req, 400, "key is required");
    return;
  }
  /* Field names, NUL-terminated, from the comma list. */
  char names[TERN_MAX_HOOK_FIELDS * (TERN_MAX_HOOK_FIELD + 1)];
  const char *fields[TERN_MAX_HOOK_FIELDS];
  size_t nfields = 0, at = 0;
  if (tern_http_request_param(req, "fields", &fl, &fllen) == 1) {
    size_t i = 0;
    while (i < fllen) {
      size_t s = i;
      while (i < fllen && fl[i] != ',') {
        i++;
      }
      size_t n = i - s;
      if (n == 0 || n > TERN_MAX_HOOK_FIELD ||
          nfields == TERN_MAX_HOOK_FIELDS) {
        error(req, 400, "fields: 1 to 32 names of 1 to 64 bytes");
        return;
      }
      memcpy(names + at, fl + s, n);
      names[at + n] = '\0';
      fields[nfields++] = names + at;
      at += n + 1;
      i++; /* the comma */
    }
  }
  uint64_t t = ternd_wall_seconds();
  if (number(&none, req, "time", 0, UINT64_MAX / 2, &t) < 0) {
    return;
  }
  size_t blen;
  const uint8_t *body = tern_http_request_body(req, &blen);
  tern_hook_entry e;
  memset(&e, 0, sizeof(e));
  e.key = (const uint8_t *)key;
  e.keylen = keylen;
  e.fields = fields;
  e.nfields = nfields;
  e.time = t;
  e.payload = blen ? body : NULL;
  e.payloadlen = blen;
  int rc = tern_hub_hook_enqueue(sh->hub, id, &e, now());
  if (rc != 0) {
    hub_error(req, rc);
    return;
  }
  tern_hook_info in;
  char out[64];
  int n = snprintf(out, sizeof(out), "{\"queued\":%llu}",
                   tern_hub_get_hook_info(sh->hub, id, &in, sizeof(in)) == 0
                       ? (unsigned long long)in.queued
                       : 0ull);
  json(req, 202, out, (size_t)n);
}

/* /webhooks/ID[/what] */
static void route_one(ternd_shard *sh, tern_http_request *req,
                      const char *rest, size_t len) {
  uint64_t id = 0;
  size_t i = 0;
  while (i < len && rest[i] >= '0' && rest[i] <= '9' && i < 19) {
    id = id * 10 + (uint64_t)(rest[i] - '0');
    i++;
  }
  if (i == 0 || (i < len && rest[i] != '/')) {
    error(req, 404, "no such resource");
    return;
  }
  const char *what = rest + i;
  size_t wlen = len - i;
  if (wlen == 0) {
    if (method_is(req, "DELETE")) {
      int rc = tern_hub_remove_hook(sh->hub, id);
      if (rc != 0) {
        hub_error(req, rc);
      } else {
        (void)tern_http_respond(req, 204, NULL, NULL, NULL, 0);
      }
    } else if (method_is(req, "GET") || method_is(req, "HEAD")) {
      tern_hook_info in;
      int rc = tern_hub_get_hook_info(sh->hub, id, &in, sizeof(in));
      char *out = rc == 0 ? malloc(DESCRIBE_CAP) : NULL;
      if (rc != 0) {
        hub_error(req, rc);
      } else if (!out) {
        error(req, 503, "out of memory");
      } else {
        json(req, 200, out, describe(&in, out));
      }
      free(out);
    } else {
      method_not_allowed(req, "GET, HEAD, DELETE");
    }
    return;
  }
  if (!method_is(req, "POST")) {
    method_not_allowed(req, "POST");
    return;
  }
  if (wlen == 7 && memcmp(what, "/enable", 7) == 0) {
    int rc = tern_hub_enable_hook(sh->hub, id, now());
    if (rc != 0) {
      hub_error(req, rc);
    } else {
      json(req, 200, "{}", 2);
    }
  } else if (wlen == 7 && memcmp(what, "/verify", 7) == 0) {
    int rc = tern_hub_verify_hook(sh->hub, id, now());
    if (rc != 0) {
      hub_error(req, rc);
    } else {
      json(req, 200, "{}", 2);
    }
  } else if (wlen == 8 && memcmp(what, "/entries", 8) == 0) {
    route_entry(sh, req, id);
  } else {
    error(req, 404, "no such resource");
  }
}

void ternd_webhooks_route(ternd_shard *sh, tern_http_request *req,
                          const char *path, size_t len) {
  if (sh->index != 0) {
    /* Every hook lives on thread 0's hub. */
    if (tern_http_request_forward(req, sh->t->shards[0].http, NULL) != 0) {
      (void)tern_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                    "busy: try again");
    }
    return;
  }
  if (!ternd_publisher_ok(sh->t, req)) {
    sh->unauthorized++;
    (void)tern_http_respond_error(req, 401, "WWW-Authenticate: Bearer\r\n",
                                  "the publisher secret is required");
    return;
  }
  /* |path| starts with "/webhooks". */
  const char *rest = path + 9;
  size_t rlen = len - 9;
  if (rlen == 0 || (rlen == 1 && rest[0] == '/')) {
    if (method_is(req, "POST")) {
      route_add(sh, req);
    } else if (method_is(req, "GET") || method_is(req, "HEAD")) {
      route_list(sh, req);
    } else {
      method_not_allowed(req, "GET, HEAD, POST");
    }
    return;
  }
  route_one(sh, req, rest + 1, rlen - 1);
}

void ternd_webhooks_event(const tern_event *ev) {
  switch (ev->type) {
  case TERN_EV_HOOK_DROPPED:
    fprintf(stderr, "ternd: web hook %llu gave up a batch of %llu entries "
            "(last status %d)\n", (unsigned long long)ev->seq,
            (unsigned long long)ev->count, ev->reason);
    break;
  case TERN_EV_HOOK_DISABLED:
    fprintf(stderr, "ternd: web hook %llu disabled after %llu lost batches; "
            "POST /webhooks/%llu/enable\n", (unsigned long long)ev->seq,
            (unsigned long long)ev->count, (unsigned long long)ev->seq);
    break;
  case TERN_EV_HOOK_VERIFIED:
    if (ev->reason != 0) {
      fprintf(stderr, "ternd: web hook %llu failed its challenge: %s\n",
              (unsigned long long)ev->seq, tern_strerror(ev->reason));
    }
    break;
  default:
    break;
  }
}

int ternd_webhooks_start(ternd *t) {
  tern_http_client_options co;
  tern_http_client_options_default(&co);
  co.timeout = t->cfg.hook_timeout;
  if (co.connect_timeout > co.timeout) {
    co.connect_timeout = co.timeout;
  }
  return tern_hook_sender_new(&t->hook_sender, t->shards[0].d, &co);
}
