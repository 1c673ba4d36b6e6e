/*
 * PUBLISH and PUBACK, the producer frames of tern-protocol(7).  Same rules
 * as frame.c: shortest varints only, every field within its limits (a
 * length over its limit is TOO_LARGE even when the body is too short for
 * it too), no byte left over (PUBLISH's payload is the rest of its body),
 * and the output struct untouched unless a whole frame decoded.
 */
#include "wire/publish.h"

#include <string.h>

/* A reader over one complete body: running out inside a field is a
   protocol error, never "need more bytes". */
typedef struct rd {
  const uint8_t *p, *end;
} rd;

static int rd_varint(rd *r, uint64_t *v) {
  tern_ssize n = wire_get_varint(v, r->p, r->end);
  if (n <= 0) {
    return TERN_ERR_PROTO;
  }
  r->p += n;
  return 0;
}

static int rd_bytes(rd *r, const uint8_t **data, size_t *len, size_t min,
                    size_t max) {
  uint64_t n;
  int rc = rd_varint(r, &n);
  if (rc != 0) {
    return rc;
  }
  if (n > max) {
    return TERN_ERR_TOO_LARGE;
  }
  if (n < min || n > (uint64_t)(r->end - r->p)) {
    return TERN_ERR_PROTO;
  }
  *data = n ? r->p : NULL;
  *len = (size_t)n;
  r->p += n;
  return 0;
}

tern_ssize wire_frame_head(const uint8_t *p, size_t len, uint8_t *type,
                           uint64_t *bodylen) {
  if (len == 0) {
    return 0;
  }
  tern_ssize n = wire_get_varint(bodylen, p + 1, p + len);
  if (n <= 0) {
    return n;
  }
  *type = p[0];
  return 1 + n;
}

/* The body of the frame of type |type| at [buf, buf+len): its bounds in
   |r| and the frame size, 0 (incomplete) or an error. */
static tern_ssize body_of(rd *r, const uint8_t *buf, size_t len,
                          size_t max_body) {
  uint8_t type;
  uint64_t bodylen;
  tern_ssize h = wire_frame_head(buf, len, &type, &bodylen);
  if (h <= 0) {
    return h;
  }
  if (bodylen > max_body) {
    return TERN_ERR_TOO_LARGE;
  }
  if (bodylen > len - (size_t)h) {
    return 0;
  }
  r->p = buf + h;
  r->end = r->p + bodylen;
  return h + (tern_ssize)bodylen;
}

tern_ssize wire_publish_decode(wire_publish *out, const uint8_t *buf,
                               size_t len, size_t max_body) {
  rd r;
  tern_ssize size = body_of(&r, buf, len, max_body);
  if (size <= 0) {
    return size;
  }
  if (buf[0] != WIRE_PUBLISH) {
    return TERN_ERR_PROTO;
  }
  wire_publish p;
  uint64_t flags, nattrs;
  int rc;
  if ((rc = rd_varint(&r, &p.req)) != 0 || (rc = rd_varint(&r, &flags)) != 0) {
    return rc;
  }
  if ((flags & ~(uint64_t)WIRE_PUB_FLAGS_KNOWN) != 0 ||
      (flags & WIRE_PUB_PRIO_MASK) > TERN_PRIO_HIGH ||
      ((flags & WIRE_PUB_SYNC) && (flags & WIRE_PUB_VOLATILE)) ||
      ((flags & WIRE_PUB_SYNC) && (flags & WIRE_PUB_TOPIC))) {
    return TERN_ERR_PROTO;
  }
  p.priority = (int)(flags & WIRE_PUB_PRIO_MASK);
  p.flags = (unsigned)flags & (WIRE_PUB_TOPIC | WIRE_PUB_SYNC |
                               WIRE_PUB_VOLATILE);
  size_t target_max =
      (flags & WIRE_PUB_TOPIC) ? TERN_MAX_TOPIC : TERN_MAX_SESSION_KEY;
  if ((rc = rd_bytes(&r, &p.target, &p.targetlen, 1, target_max)) != 0 ||
      (rc = rd_varint(&r, &p.ttl_ms)) != 0) {
    return rc;
  }
  if (p.ttl_ms > WIRE_PUB_TTL_MAX) {
    return TERN_ERR_PROTO;
  }
  if ((rc = rd_bytes(&r, &p.id, &p.idlen, 0, TERN_MAX_ID)) != 0) {
    return rc;
  }
  p.collapse_key = p.content_type = NULL;
  p.collapse_keylen = p.content_typelen = 0;
  if ((flags & WIRE_PUB_HAS_COLLAPSE_KEY) &&
      (rc = rd_bytes(&r, &p.collapse_key, &p.collapse_keylen, 1,
                     TERN_MAX_COLLAPSE_KEY)) != 0) {
    return rc;
  }
  if ((flags & WIRE_PUB_HAS_CONTENT_TYPE) &&
      (rc = rd_bytes(&r, &p.content_type, &p.content_typelen, 1,
                     TERN_MAX_CONTENT_TYPE)) != 0) {
    return rc;
  }
  if ((rc = rd_varint(&r, &nattrs)) != 0) {
    return rc;
  }
  if (nattrs > TERN_MAX_ATTRS) {
    return TERN_ERR_TOO_LARGE;
  }
  p.nattrs = (size_t)nattrs;
  for (size_t i = 0; i < p.nattrs; ++i) {
    wire_attr *a = &p.attrs[i];
    if ((rc = rd_bytes(&r, &a->key, &a->keylen, 1, TERN_MAX_ATTR_KEY)) != 0 ||
        (rc = rd_bytes(&r, &a->value, &a->valuelen, 0,
                       TERN_MAX_ATTR_VALUE)) != 0) {
      return rc;
    }
  }
  p.payload = r.p < r.end ? r.p : NULL;
  p.payloadlen = (size_t)(r.end - r.p);
  /* Only the attrs read are copied: the rest of p.attrs is unset. */
  size_t head = offsetof(wire_publish, attrs);
  memcpy(out, &p, head);
  memcpy(out->attrs, p.attrs, p.nattrs * sizeof(wire_attr));
  out->payload = p.payload;
  out->payloadlen = p.payloadlen;
  return size;
}

tern_ssize wire_puback_decode(wire_puback *out, const uint8_t *buf,
                              size_t len) {
  rd r;
  tern_ssize size = body_of(&r, buf, len, WIRE_PUBACK_MAX);
  if (size <= 0) {
    return size;
  }
  if (buf[0] != WIRE_PUBACK) {
    return TERN_ERR_PROTO;
  }
  wire_puback a;
  int rc;
  if ((rc = rd_varint(&r, &a.req)) != 0 ||
      (rc = rd_varint(&r, &a.status)) != 0 ||
      (rc = rd_varint(&r, &a.retry_ms)) != 0 ||
      (rc = rd_bytes(&r, &a.id, &a.idlen, 0, TERN_MAX_ID)) != 0) {
    return rc;
  }
  if (r.p != r.end) {
    return TERN_ERR_PROTO;
  }
  *out = a;
  return size;
}

/* ---- encoders ---------------------------------------------------------- */

static size_t bytes_size(size_t n) { return wire_varint_len(n) + n; }

static uint8_t *put_bytes(uint8_t *p, const uint8_t *data, size_t n) {
  p = wire_put_varint(p, n);
  if (n) {
    memcpy(p, data, n);
  }
  return p + n;
}

static unsigned publish_flags(const wire_publish *p) {
  unsigned f = ((unsigned)p->priority & WIRE_PUB_PRIO_MASK) |
               (p->flags & (WIRE_PUB_TOPIC | WIRE_PUB_SYNC |
                            WIRE_PUB_VOLATILE));
  if (p->collapse_keylen) {
    f |= WIRE_PUB_HAS_COLLAPSE_KEY;
  }
  if (p->content_typelen) {
    f |= WIRE_PUB_HAS_CONTENT_TYPE;
  }
  return f;
}

static size_t publish_body_size(const wire_publish *p) {
  /* VOLATILE (0x40) makes the flags a two-byte varint */
  size_t n = wire_varint_len(p->req) + wire_varint_len(publish_flags(p)) +
             bytes_size(p->targetlen) + wire_varint_len(p->ttl_ms) +
             bytes_size(p->idlen) + wire_varint_len(p->nattrs) + p->payloadlen;
  if (p->collapse_keylen) {
    n += bytes_size(p->collapse_keylen);
  }
  if (p->content_typelen) {
    n += bytes_size(p->content_typelen);
  }
  for (size_t i = 0; i < p->nattrs; ++i) {
    n += bytes_size(p->attrs[i].keylen) + bytes_size(p->attrs[i].valuelen);
  }
  return n;
}

size_t wire_publish_size(const wire_publish *p) {
  size_t body = publish_body_size(p);
  return 1 + wire_varint_len(body) + body;
}

size_t wire_publish_encode(uint8_t *out, size_t cap, const wire_publish *p) {
  size_t body = publish_body_size(p);
  size_t size = 1 + wire_varint_len(body) + body;
  if (size > cap) {
    return 0;
  }
  uint8_t *w = out;
  *w++ = WIRE_PUBLISH;
  w = wire_put_varint(w, body);
  w = wire_put_varint(w, p->req);
  w = wire_put_varint(w, publish_flags(p));
  w = put_bytes(w, p->target, p->targetlen);
  w = wire_put_varint(w, p->ttl_ms);
  w = put_bytes(w, p->id, p->idlen);
  if (p->collapse_keylen) {
    w = put_bytes(w, p->collapse_key, p->collapse_keylen);
  }
  if (p->content_typelen) {
    w = put_bytes(w, p->content_type, p->content_typelen);
  }
  w = wire_put_varint(w, p->nattrs);
  for (size_t i = 0; i < p->nattrs; ++i) {
    w = put_bytes(w, p->attrs[i].key, p->attrs[i].keylen);
    w = put_bytes(w, p->attrs[i].value, p->attrs[i].valuelen);
  }
  if (p->payloadlen) {
    memcpy(w, p->payload, p->payloadlen);
  }
  return size;
}

static size_t puback_body_size(const wire_puback *a) {
  return wire_varint_len(a->req) + wire_varint_len(a->status) +
         wire_varint_len(a->retry_ms) + bytes_size(a->idlen);
}

size_t wire_puback_size(const wire_puback *a) {
  size_t body = puback_body_size(a);
  return 1 + wire_varint_len(body) + body;
}

size_t wire_puback_encode(uint8_t *out, size_t cap, const wire_puback *a) {
  size_t body = puback_body_size(a);
  size_t size = 1 + wire_varint_len(body) + body;
  if (size > cap) {
    return 0;
  }
  uint8_t *w = out;
  *w++ = WIRE_PUBACK;
  w = wire_put_varint(w, body);
  w = wire_put_varint(w, a->req);
  w = wire_put_varint(w, a->status);
  w = wire_put_varint(w, a->retry_ms);
  put_bytes(w, a->id, a->idlen);
  return size;
}
