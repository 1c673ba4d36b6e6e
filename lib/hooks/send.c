/*
 * Web hooks: what goes out and what comes back.  Batches are formed from
 * a hook's queue when they are due (count, bytes or age), signed afresh
 * for every attempt, and settled by the answers the host reports: the
 * status classes of tern.h, exponential backoff with full jitter, 429's
 * Retry-After, giving up, disabling after consecutive losses, and the
 * challenge that verifies an endpoint.
 */
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/persist.h"
#include "hooks/hooks.h"
#include "web/json.h"
#include "web/sha256.h"

#define DAY_S 86400u

/* The hub's wall clock in Unix seconds at |now| (its |now| without one). */
static uint64_t wall_seconds(const tern_hub *hub, tern_tstamp now) {
  return persist_to_wall(hub, now) / TERN_SECONDS;
}

/* ---- when things are due ------------------------------------------------ */

/* When the hook's queue makes a new batch: TERN_TSTAMP_NONE if it cannot
   (empty, unverified, disabled, max_inflight outstanding). */
static tern_tstamp queue_due(const hook *h) {
  if (!h->queue || !(h->state & TERN_HOOK_STATE_VERIFIED) ||
      (h->state & TERN_HOOK_STATE_DISABLED) ||
      h->nbatches >= h->o.max_inflight) {
    return TERN_TSTAMP_NONE;
  }
  if (h->nqueued >= h->o.max_items ||
      h->qbytes + h->nqueued + hook_envelope(h, UINT64_MAX) >
          h->o.max_bytes) {
    return 0;
  }
  tern_tstamp at = h->queue->queued_at;
  return at > TERN_TSTAMP_NONE - 1 - h->o.max_delay ? TERN_TSTAMP_NONE - 1
                                                    : at + h->o.max_delay;
}

static tern_tstamp hook_due(const hook *h) {
  if (h->state & TERN_HOOK_STATE_DISABLED) {
    return TERN_TSTAMP_NONE;
  }
  tern_tstamp t = queue_due(h);
  for (const hbatch *b = h->batches; b; b = b->next) {
    if (!b->taken && b->due < t) {
      t = b->due;
    }
  }
  return t;
}

tern_tstamp hooks_expiry(const tern_hub *hub) {
  const hooks *hs = hub->hooks;
  tern_tstamp t = TERN_TSTAMP_NONE;
  for (size_t i = 0; hs && i < hs->n; ++i) {
    tern_tstamp d = hook_due(hs->v[i]);
    if (d < t) {
      t = d;
    }
  }
  return t;
}

/* ---- bodies ------------------------------------------------------------- */

static uint8_t *put_str(uint8_t *o, const char *s) {
  size_t n = strlen(s);
  memcpy(o, s, n);
  return o + n;
}

static uint8_t *put_u64(uint8_t *o, uint64_t v) {
  uint8_t d[20];
  size_t n = 0;
  do {
    d[n++] = (uint8_t)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) {
    *o++ = d[--n];
  }
  return o;
}

uint8_t *hook_write_entry(uint8_t *o, const hentry *e) {
  o = put_str(o, "{\"id\":");
  o += web_json_str_write(o, e->data, e->keylen);
  o = put_str(o, ",\"changed_fields\":[");
  const uint8_t *f = entry_fields(e);
  for (size_t i = 0; i < e->nfields; ++i) {
    if (i) {
      *o++ = ',';
    }
    o += web_json_str_write(o, f + 1, f[0]);
    f += 1 + f[0];
  }
  o = put_str(o, "],\"time\":");
  o = put_u64(o, e->time);
  if (e->payloadlen) {
    o = put_str(o, ",\"data\":");
    memcpy(o, entry_payload(e), e->payloadlen);
    o += e->payloadlen;
  }
  *o++ = '}';
  return o;
}

/* Takes a batch from the head of |h|'s queue.  0 or TERN_ERR_NOMEM
   (nothing changed). */
static int form_batch(tern_hub *hub, hook *h, tern_tstamp now, hbatch **out) {
  uint64_t delivery = h->queue->serial;
  size_t env = hook_envelope(h, delivery);
  size_t len = env, n = 0;
  hentry *e = h->queue;
  do {
    size_t add = e->size + (n ? 1 : 0);
    if (n && (n >= h->o.max_items || len + add > h->o.max_bytes)) {
      break;
    }
    len += add;
    ++n;
    e = e->next;
  } while (e != h->queue);
  hbatch *b = mem_calloc(&hub->mem, 1, sizeof(*b));
  uint8_t *body = mem_malloc(&hub->mem, len);
  if (!b || !body) {
    mem_free(&hub->mem, b);
    mem_free(&hub->mem, body);
    return TERN_ERR_NOMEM;
  }
  uint8_t *o = put_str(body, "{\"object\":\"");
  o = put_str(o, h->object);
  o = put_str(o, "\",\"delivery\":\"");
  o = put_u64(o, delivery);
  o = put_str(o, "\",\"entry\":[");
  for (size_t i = 0; i < n; ++i) {
    e = h->queue;
    elist_remove(&h->queue, e);
    if (e->indexed) {
      hmap_remove(&h->index, &e->link);
      e->indexed = 0;
    }
    --h->nqueued;
    h->qbytes -= e->size;
    if (i) {
      *o++ = ',';
    }
    o = hook_write_entry(o, e);
    elist_push(&b->entries, e);
  }
  *o++ = ']';
  *o++ = '}';
  b->kind = TERN_HOOK_DELIVERY;
  b->delivery = delivery;
  b->nentries = (uint32_t)n;
  b->body = body;
  b->bodylen = (size_t)(o - body);
  b->due = now;
  *out = b;
  return 0;
}

static void link_batch(hook *h, hbatch *b) {
  b->next = NULL;
  if (h->last) {
    h->last->next = b;
  } else {
    h->batches = b;
  }
  h->last = b;
  ++h->nbatches;
}

static size_t pct_encode(char *out, const uint8_t *p, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (size_t i = 0; i < len; ++i) {
    uint8_t c = p[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      if (out) {
        out[n] = (char)c;
      }
      ++n;
    } else {
      if (out) {
        out[n] = '%';
        out[n + 1] = hex[c >> 4];
        out[n + 2] = hex[c & 15];
      }
      n += 3;
    }
  }
  return n;
}

#define Q_MODE "hub.mode=subscribe&hub.challenge="
#define Q_TOKEN "&hub.verify_token="

int hook_challenge_new(tern_hub *hub, hook *h, tern_tstamp now) {
  hbatch *b = mem_calloc(&hub->mem, 1, sizeof(*b));
  size_t qlen = sizeof(Q_MODE) - 1 + 32 + sizeof(Q_TOKEN) - 1 +
                pct_encode(NULL, h->token, h->tokenlen);
  uint8_t *q = mem_malloc(&hub->mem, qlen + 1);
  hooks *hs = hooks_get(hub);
  if (!b || !q || !hs) {
    mem_free(&hub->mem, b);
    mem_free(&hub->mem, q);
    return TERN_ERR_NOMEM;
  }
  uint8_t rnd[16];
  for (int i = 0; i < 2; ++i) {
    uint64_t r = rng_next(&hub->rand);
    memcpy(rnd + 8 * i, &r, 8);
  }
  *web_hex_lower(b->challenge, rnd, 16) = '\0';
  char *o = (char *)q;
  memcpy(o, Q_MODE, sizeof(Q_MODE) - 1);
  o += sizeof(Q_MODE) - 1;
  memcpy(o, b->challenge, 32);
  o += 32;
  memcpy(o, Q_TOKEN, sizeof(Q_TOKEN) - 1);
  o += sizeof(Q_TOKEN) - 1;
  o += pct_encode(o, h->token, h->tokenlen);
  *o = '\0';
  b->kind = TERN_HOOK_CHALLENGE;
  b->delivery = hs->next_serial++;
  b->body = q;
  b->bodylen = qlen;
  b->due = now;
  link_batch(h, b);
  return 0;
}

/* ---- requests ----------------------------------------------------------- */

static size_t layout_request(uint32_t version) {
  return version == TERN_HOOK_REQUEST_V1
             ? offsetof(tern_hook_request, timestamp) + sizeof(uint64_t)
             : 0;
}

/* The headers of |b|'s next attempt, signed at |wall_s|. */
static void sign(hook *h, hbatch *b, uint64_t wall_s) {
  snprintf(b->ts, sizeof(b->ts), "%llu", (unsigned long long)wall_s);
  snprintf(b->id, sizeof(b->id), "%llu", (unsigned long long)b->delivery);
  snprintf(b->att, sizeof(b->att), "%u", b->attempt);
  size_t n = 0;
  if (b->kind == TERN_HOOK_DELIVERY) {
    uint8_t mac[WEB_SHA256_LEN];
    web_hmac_sha256 c;
    web_hmac_sha256_init(&c, h->secret, h->secretlen);
    web_hmac_sha256_update(&c, b->ts, strlen(b->ts));
    web_hmac_sha256_update(&c, ".", 1);
    web_hmac_sha256_update(&c, b->body, b->bodylen);
    web_hmac_sha256_final(&c, mac);
    memcpy(b->sig, "sha256=", 7);
    *web_hex_lower(b->sig + 7, mac, sizeof(mac)) = '\0';
    b->headers[n++] = (tern_hook_header){"Content-Type", "application/json"};
    b->headers[n++] = (tern_hook_header){"X-Tern-Signature", b->sig};
  }
  b->headers[n++] = (tern_hook_header){"X-Tern-Timestamp", b->ts};
  b->headers[n++] = (tern_hook_header){"X-Tern-Delivery", b->id};
  b->headers[n++] = (tern_hook_header){"X-Tern-Attempt", b->att};
  b->nheaders = n;
}

static void describe(const hook *h, const hbatch *b, uint64_t wall_s,
                     tern_hook_request *r) {
  memset(r, 0, sizeof(*r));
  r->kind = b->kind;
  r->hook = h->id;
  r->delivery = b->delivery;
  r->attempt = b->attempt;
  r->entries = b->nentries;
  r->target = h->target;
  r->targetlen = h->targetlen;
  if (b->kind == TERN_HOOK_DELIVERY) {
    r->method = "POST";
    r->query = "";
    r->body = b->body;
    r->bodylen = b->bodylen;
  } else {
    r->method = "GET";
    r->query = (const char *)b->body;
    r->querylen = b->bodylen;
  }
  r->headers = b->headers;
  r->nheaders = b->nheaders;
  r->timestamp = wall_s;
}

/* The hook's next request due at |now|, or NULL; *|err| on no memory. */
static hbatch *take(tern_hub *hub, hook *h, tern_tstamp now, int *err) {
  if (h->state & TERN_HOOK_STATE_DISABLED) {
    return NULL;
  }
  for (hbatch *b = h->batches; b; b = b->next) {
    if (!b->taken && b->due <= now) {
      return b;
    }
  }
  if (queue_due(h) > now) {
    return NULL;
  }
  hbatch *b;
  if (form_batch(hub, h, now, &b) != 0) {
    *err = TERN_ERR_NOMEM;
    return NULL;
  }
  link_batch(h, b);
  return b;
}

int tern_hub_next_hook_request_versioned(tern_hub *hub, uint32_t version,
                                         tern_tstamp now,
                                         tern_hook_request *req) {
  size_t len = layout_request(version);
  if (!hub || !req || len == 0) {
    return TERN_ERR_INVALID;
  }
  hooks *hs = hub->hooks;
  if (!hs || hs->n == 0) {
    return 0;
  }
  for (size_t k = 0; k < hs->n; ++k) {
    size_t i = (hs->turn + k) % hs->n;
    hook *h = hs->v[i];
    int err = 0;
    hbatch *b = take(hub, h, now, &err);
    if (err) {
      return err;
    }
    if (!b) {
      continue;
    }
    hs->turn = (i + 1) % hs->n;
    b->taken = 1;
    ++b->attempt;
    uint64_t wall_s = wall_seconds(hub, now);
    sign(h, b, wall_s);
    tern_hook_request r;
    describe(h, b, wall_s, &r);
    memcpy(req, &r, len);
    return 1;
  }
  return 0;
}

/* ---- answers ------------------------------------------------------------ */

enum { ANSWER_OK, ANSWER_RETRY, ANSWER_GIVE_UP };

static int classify(int status) {
  switch (status) {
  case 200:
  case 201:
  case 202:
  case 204:
  case 102:
    return ANSWER_OK;
  case TERN_HOOK_NO_ANSWER:
  case 429:
  case 500:
  case 502:
  case 503:
  case 504:
    return ANSWER_RETRY;
  default:
    return ANSWER_GIVE_UP;
  }
}

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static tern_duration backoff(tern_hub *hub, const hook *h, uint32_t attempt) {
  tern_duration ceil = h->o.retry_base;
  for (uint32_t i = 1; i < attempt && ceil < h->o.retry_cap; ++i) {
    ceil = ceil > h->o.retry_cap / 2 ? h->o.retry_cap : ceil * 2;
  }
  if (ceil > h->o.retry_cap) {
    ceil = h->o.retry_cap;
  }
  return rng_below(&hub->rand, ceil + 1);
}

static hbatch *find_taken(hook *h, uint64_t delivery) {
  for (hbatch *b = h->batches; b; b = b->next) {
    if (b->delivery == delivery && b->taken) {
      return b;
    }
  }
  return NULL;
}

/* Does the body answer the challenge?  Trailing whitespace is allowed. */
static int answers(const hbatch *b, const uint8_t *body, size_t len) {
  while (len && (body[len - 1] == '\n' || body[len - 1] == '\r' ||
                 body[len - 1] == ' ' || body[len - 1] == '\t')) {
    --len;
  }
  return body && len == 32 && web_consttime_eq(body, b->challenge, 32);
}

static void schedule(tern_hub *hub, hook *h, hbatch *b, int status,
                     const char *ra, size_t ralen, tern_tstamp now) {
  tern_duration wait = backoff(hub, h, b->attempt);
  uint64_t secs;
  if (status == 429 && ra &&
      hook_parse_retry_after(ra, ralen, wall_seconds(hub, now), &secs) == 0) {
    wait = (secs > DAY_S ? DAY_S : secs) * TERN_SECONDS;
  }
  b->taken = 0;
  b->due = now + wait;
}

static int challenge_done(tern_hub *hub, hook *h, hbatch *b, int status,
                          const uint8_t *body, size_t bodylen,
                          tern_tstamp now) {
  int cls = classify(status);
  int ok = status == 200 && answers(b, body, bodylen);
  int last = cls == ANSWER_RETRY && h->o.max_attempts &&
             b->attempt >= h->o.max_attempts;
  if (cls == ANSWER_RETRY && !last) {
    schedule(hub, h, b, status, NULL, 0, now);
    return 0;
  }
  if (event_reserve(hub, 1, 0) != 0) {
    return TERN_ERR_NOMEM;
  }
  if (ok && hstore_reserve_hook(hub, h) != 0) {
    event_unreserve(hub, 1, 0);
    return TERN_ERR_NOMEM;
  }
  int reason = ok ? 0 : last ? TERN_ERR_LIMIT : TERN_ERR_PROTO;
  hook_unlink_batch(h, b);
  uint64_t delivery = b->delivery;
  batch_free(hub, h, b, 0);
  if (ok) {
    h->state |= TERN_HOOK_STATE_VERIFIED;
    hstore_hook(hub, h, 0);
  }
  evrec *ev = event_duty(hub, TERN_EV_HOOK_VERIFIED, reason, NULL, NULL, 0,
                         NULL, 0, NULL, 0, h->id, 0);
  ev->cookie = delivery;
  return 0;
}

int tern_hub_hook_done(tern_hub *hub, uint64_t hookid, uint64_t delivery,
                       int status, const char *retry_after,
                       size_t retry_afterlen, const uint8_t *body,
                       size_t bodylen, tern_tstamp now) {
  if (!hub || (status != TERN_HOOK_NO_ANSWER && (status < 100 ||
                                                 status > 599))) {
    return TERN_ERR_INVALID;
  }
  hook *h = hooks_find(hub, hookid);
  hbatch *b = h ? find_taken(h, delivery) : NULL;
  if (!b) {
    return TERN_ERR_NOT_FOUND;
  }
  if (b->kind == TERN_HOOK_CHALLENGE) {
    int rv = challenge_done(hub, h, b, status, body, bodylen, now);
    if (rv == 0) {
      ++h->attempts;
    }
    return rv;
  }
  int cls = classify(status);
  if (cls == ANSWER_RETRY &&
      (!h->o.max_attempts || b->attempt < h->o.max_attempts)) {
    ++h->attempts;
    schedule(hub, h, b, status, retry_after, retry_afterlen, now);
    return 0;
  }
  /* Settled: delivered or lost.  Room first, so nothing changes on
     failure: the hook's record (failures, state) and two events. */
  int lost = cls != ANSWER_OK;
  int disable = lost && h->o.disable_after &&
                h->failures + 1 >= h->o.disable_after &&
                !(h->state & TERN_HOOK_STATE_DISABLED);
  size_t nev = lost ? 1u + (size_t)disable : 0u;
  if (nev && event_reserve(hub, nev, 0) != 0) {
    return TERN_ERR_NOMEM;
  }
  if ((lost || h->failures) && hstore_reserve_hook(hub, h) != 0) {
    event_unreserve(hub, nev, 0);
    return TERN_ERR_NOMEM;
  }
  /* The hook's record goes into the room reserved above before the
     batch's entries are freed: their DEL records reserve room of their
     own as they go, and would take what was reserved for it. */
  ++h->attempts;
  uint32_t n = b->nentries;
  hook_unlink_batch(h, b);
  if (!lost) {
    h->delivered += n;
    if (h->failures) {
      h->failures = 0;
      hstore_hook(hub, h, 0);
    }
    batch_free(hub, h, b, 1);
    return 0;
  }
  h->dropped += n;
  ++h->failures;
  evrec *ev = event_duty(hub, TERN_EV_HOOK_DROPPED, status, NULL, NULL, 0,
                         NULL, 0, NULL, 0, h->id, n);
  ev->cookie = delivery;
  if (disable) {
    h->state |= TERN_HOOK_STATE_DISABLED;
    event_duty(hub, TERN_EV_HOOK_DISABLED, 0, NULL, NULL, 0, NULL, 0, NULL,
               0, h->id, h->failures);
  }
  hstore_hook(hub, h, 0);
  batch_free(hub, h, b, 1);
  return 0;
}
