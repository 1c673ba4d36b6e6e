/*
 * The producer side of the client: tern_client_publish encodes PUBLISH
 * frames into a queue that tern_client_write copies out between the
 * client's own frames, and PUBACK frames from the server become
 * TERN_CLIENT_EV_PUBACK events.
 *
 * The queue is one byte buffer of whole frames.  Control frames (HELLO,
 * ACK, PING, PONG, GOAWAY) go first, but only between two PUBLISH frames:
 * a PUBLISH cut by the end of the host's buffer is finished before
 * anything else (|cut|), and only it: then a control frame due goes.
 */
#include <limits.h>
#include <string.h>

#include "base/mem.h"
#include "client/client.h"
#include "wire/publish.h"

/* Queued and not yet written, past which tern_client_publish refuses. */
#define PUB_QUEUE_BYTES (1024u * 1024u)
/* Written or queued without a PUBACK, past which it refuses. */
#define PUB_OUTSTANDING_MAX 65536u

struct client_pub {
  uint8_t *buf;            /* frames [off, len) still to write            */
  size_t off, len, cap;
  size_t cut;              /* bytes left of a frame written in part       */
  uint64_t next_req;       /* the last request number given               */
  uint32_t outstanding;    /* requests without a PUBACK yet               */
};

static int pub_get(tern_client *c) {
  if (!c->pub) {
    c->pub = mem_malloc(&c->mem, sizeof(*c->pub));
    if (!c->pub) {
      return TERN_ERR_NOMEM;
    }
    memset(c->pub, 0, sizeof(*c->pub));
  }
  return 0;
}

/* Checks |desc| and fills |p| from it.  0 or the error to return. */
static int build(const tern_client *c, uint32_t flags, const uint8_t *target,
                 size_t targetlen, const tern_msg_desc *d, wire_publish *p) {
  int topic = (flags & TERN_CLIENT_PUBLISH_TOPIC) != 0;
  if ((flags & ~TERN_CLIENT_PUBLISH_TOPIC) || !target || targetlen == 0 ||
      d->priority < TERN_PRIO_LOW || d->priority > TERN_PRIO_HIGH ||
      (d->idlen && !d->id) || (d->collapse_keylen && !d->collapse_key) ||
      (d->payloadlen && !d->payload) || (d->nattrs && !d->attrs)) {
    return TERN_ERR_INVALID;
  }
  int sync = (d->flags & TERN_MSG_SYNC) != 0;
  int vol = (d->flags & TERN_MSG_VOLATILE) != 0;
  if ((sync && vol) || (sync && topic)) {
    return TERN_ERR_INVALID;
  }
  if (targetlen > (topic ? TERN_MAX_TOPIC : TERN_MAX_SESSION_KEY) ||
      d->idlen > TERN_MAX_ID || d->collapse_keylen > TERN_MAX_COLLAPSE_KEY ||
      d->nattrs > TERN_MAX_ATTRS || d->payloadlen > c->set.max_payload) {
    return TERN_ERR_TOO_LARGE;
  }
  memset(p, 0, offsetof(wire_publish, attrs));
  p->flags = (topic ? WIRE_PUB_TOPIC : 0) | (sync ? WIRE_PUB_SYNC : 0) |
             (vol ? WIRE_PUB_VOLATILE : 0);
  p->priority = d->priority;
  p->target = target;
  p->targetlen = targetlen;
  /* whole milliseconds, rounded up: a short ttl must not become 0 (the
     hub's default) */
  uint64_t ms = d->ttl / TERN_MILLISECONDS +
                (d->ttl % TERN_MILLISECONDS != 0);
  p->ttl_ms = ms > WIRE_PUB_TTL_MAX ? WIRE_PUB_TTL_MAX : ms;
  p->id = d->id;
  p->idlen = d->idlen;
  p->collapse_key = d->collapse_key;
  p->collapse_keylen = d->collapse_keylen;
  if (d->content_type) {
    size_t n = strnlen(d->content_type, TERN_MAX_CONTENT_TYPE + 1);
    if (n > TERN_MAX_CONTENT_TYPE) {
      return TERN_ERR_TOO_LARGE;
    }
    p->content_type = (const uint8_t *)d->content_type;
    p->content_typelen = n;
  }
  p->nattrs = d->nattrs;
  for (size_t i = 0; i < d->nattrs; ++i) {
    const tern_attr *a = &d->attrs[i];
    if (!a->key || !a->value || !a->key[0]) {
      return TERN_ERR_INVALID;
    }
    size_t kl = strnlen(a->key, TERN_MAX_ATTR_KEY + 1);
    size_t vl = strnlen(a->value, TERN_MAX_ATTR_VALUE + 1);
    if (kl > TERN_MAX_ATTR_KEY || vl > TERN_MAX_ATTR_VALUE) {
      return TERN_ERR_TOO_LARGE;
    }
    p->attrs[i].key = (const uint8_t *)a->key;
    p->attrs[i].keylen = kl;
    p->attrs[i].value = (const uint8_t *)a->value;
    p->attrs[i].valuelen = vl;
  }
  p->payload = d->payload;
  p->payloadlen = d->payloadlen;
  return 0;
}

int tern_client_publish(tern_client *c, uint32_t flags, const uint8_t *target,
                        size_t targetlen, const tern_msg_desc *desc,
                        uint64_t *req, tern_tstamp now) {
  if (!c || !desc) {
    return TERN_ERR_INVALID;
  }
  if (now > c->now) {
    c->now = now;
  }
  wire_publish p;
  int rv = build(c, flags, target, targetlen, desc, &p);
  if (rv != 0) {
    return rv;
  }
  if (c->state == CL_CLOSING || c->state == CL_CLOSED) {
    return TERN_ERR_CLOSED;
  }
  if (c->state != CL_CONNECTED) {
    return TERN_ERR_STATE;
  }
  if ((rv = pub_get(c)) != 0) {
    return rv;
  }
  struct client_pub *q = c->pub;
  size_t queued = q->len - q->off;
  if (q->outstanding >= PUB_OUTSTANDING_MAX ||
      (queued && queued >= PUB_QUEUE_BYTES)) {
    return TERN_ERR_FULL;
  }
  p.req = q->next_req + 1;
  size_t size = wire_publish_size(&p);
  if (q->len + size > q->cap && q->off) {
    memmove(q->buf, q->buf + q->off, queued);
    q->len = queued;
    q->off = 0;
  }
  if (q->len + size > q->cap) {
    size_t cap = q->cap ? q->cap : 4096;
    while (cap < q->len + size) {
      cap *= 2;
    }
    uint8_t *b = mem_realloc(&c->mem, q->buf, cap);
    if (!b) {
      return TERN_ERR_NOMEM;
    }
    q->buf = b;
    q->cap = cap;
  }
  q->len += wire_publish_encode(q->buf + q->len, q->cap - q->len, &p);
  ++q->next_req;
  ++q->outstanding;
  if (req) {
    *req = q->next_req;
  }
  return 0;
}

int client_pub_want_write(const tern_client *c) {
  const struct client_pub *q = c->pub;
  if (!q) {
    return 0;
  }
  return q->cut != 0 || (c->state == CL_CONNECTED && q->len > q->off);
}

size_t client_pub_cut(const tern_client *c) { return c->pub ? c->pub->cut : 0; }

size_t client_pub_peek(const tern_client *c, const uint8_t **data,
                       size_t max) {
  const struct client_pub *q = c->pub;
  size_t n = q->len - q->off;
  *data = q->buf + q->off;
  return n < max ? n : max;
}

size_t client_pub_write(tern_client *c, uint8_t *out, size_t cap) {
  const uint8_t *data;
  size_t n = client_pub_peek(c, &data, cap);
  memcpy(out, data, n);
  client_pub_take(c, n);
  return n;
}

void client_pub_take(tern_client *c, size_t n) {
  struct client_pub *q = c->pub;
  while (n) {
    size_t frame = q->cut;
    if (frame == 0) {
      uint8_t type;
      uint64_t body;
      tern_ssize h = wire_frame_head(q->buf + q->off, q->len - q->off, &type,
                                     &body);
      frame = (size_t)h + (size_t)body;
    }
    size_t take = frame < n ? frame : n;
    n -= take;
    q->off += take;
    q->cut = frame - take;
  }
  if (q->off == q->len) {
    q->off = q->len = 0;
    if (q->cap > PUB_QUEUE_BYTES) {
      mem_free(&c->mem, q->buf);
      q->buf = NULL;
      q->cap = 0;
    }
  }
}

void client_pub_reset(tern_client *c) {
  struct client_pub *q = c->pub;
  if (q) {
    q->off = q->len = q->cut = 0;
    q->outstanding = 0;
  }
}

void client_pub_free(tern_client *c) {
  if (c->pub) {
    mem_free(&c->mem, c->pub->buf);
    mem_free(&c->mem, c->pub);
    c->pub = NULL;
  }
}

tern_ssize client_puback(tern_client *c, const uint8_t *in, size_t len) {
  wire_puback a;
  tern_ssize n = wire_puback_decode(&a, in, len);
  if (n <= 0) {
    return n;
  }
  struct client_pub *q = c->pub;
  /* Only an answer to a request written on this connection. */
  if (c->state != CL_CONNECTED || !q || q->outstanding == 0 || a.req == 0 ||
      a.req > q->next_req) {
    return TERN_ERR_PROTO;
  }
  if (evq_reserve(&c->events, &c->mem, 1) != 0) {
    return TERN_ERR_NOMEM;
  }
  msg_copy *id = NULL;
  if (a.idlen) {
    id = mem_malloc(&c->mem, sizeof(msg_copy) + a.idlen);
    if (!id) {
      return TERN_ERR_NOMEM;
    }
    id->len = a.idlen;
    memcpy(id->raw, a.id, a.idlen);
  }
  cevent *e = evq_push(&c->events);
  e->type = TERN_CLIENT_EV_PUBACK;
  e->reason = a.status > INT_MAX ? INT_MAX : (int)a.status;
  e->gen = c->gen;
  e->seq = a.req;
  e->retry_after = a.retry_ms > UINT64_MAX / TERN_MILLISECONDS
                       ? UINT64_MAX
                       : a.retry_ms * TERN_MILLISECONDS;
  e->msg = id;
  --q->outstanding;
  return n;
}
