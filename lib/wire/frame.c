/*
 * The binary framing of tern-protocol(7): QUIC-style varints and the eight
 * frame types, decoded from and encoded to caller buffers.  No allocation,
 * no state beyond the call.  The decoder runs on every byte a client sends,
 * so ACK, PING and PONG are decoded inline, without a call or a stack
 * frame; the other frame types have decoders of their own.
 */
#include "wire/frame.h"

#include <string.h>

/* ---- varints ----------------------------------------------------------- */

#define VARINT_1_MAX UINT64_C(0x3f)
#define VARINT_2_MAX UINT64_C(0x3fff)
#define VARINT_4_MAX UINT64_C(0x3fffffff)

static inline uint64_t get_be32(const uint8_t *p) {
  return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 |
         (uint64_t)p[3];
}

static inline uint64_t get_be64(const uint8_t *p) {
  return get_be32(p) << 32 | get_be32(p + 4);
}

static inline uint8_t *put_be32(uint8_t *p, uint64_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}

static inline uint8_t *put_be64(uint8_t *p, uint64_t v) {
  return put_be32(put_be32(p, v >> 32), v);
}

/*
 * varint_at is the one varint reader: bytes taken, 0 when |avail| bytes do
 * not hold the whole varint, TERN_ERR_PROTO when a shorter encoding of the
 * same value exists.  |*v| is written only on success.
 */
static inline tern_ssize varint_at(uint64_t *v, const uint8_t *p,
                                   size_t avail) {
  uint64_t x;
  if (avail == 0) {
    return 0;
  }
  switch (p[0] >> 6) {
  case 0:
    *v = p[0];
    return 1;
  case 1:
    if (avail < 2) {
      return 0;
    }
    x = (uint64_t)(p[0] & 0x3f) << 8 | p[1];
    if (x <= VARINT_1_MAX) {
      return TERN_ERR_PROTO;
    }
    *v = x;
    return 2;
  case 2:
    if (avail < 4) {
      return 0;
    }
    x = get_be32(p) & VARINT_4_MAX;
    if (x <= VARINT_2_MAX) {
      return TERN_ERR_PROTO;
    }
    *v = x;
    return 4;
  default:
    if (avail < 8) {
      return 0;
    }
    x = get_be64(p) & WIRE_VARINT_MAX;
    if (x <= VARINT_4_MAX) {
      return TERN_ERR_PROTO;
    }
    *v = x;
    return 8;
  }
}

tern_ssize wire_get_varint(uint64_t *v, const uint8_t *p, const uint8_t *end) {
  if (p >= end) {
    return 0;
  }
  return varint_at(v, p, (size_t)(end - p));
}

/* ---- body reader ------------------------------------------------------- */

/*
 * A reader over one complete body.  Running out of body inside a field is
 * a protocol error (the length said the body was complete), never "need
 * more bytes".  Each helper returns 0 or a negative tern_error.
 */
typedef struct reader {
  const uint8_t *p;
  const uint8_t *end;
} reader;

static inline int rd_varint(reader *r, uint64_t *v) {
  tern_ssize n;
  if (r->p < r->end && r->p[0] <= VARINT_1_MAX) {
    *v = *r->p++;
    return 0;
  }
  n = varint_at(v, r->p, (size_t)(r->end - r->p));
  if (n <= 0) {
    return TERN_ERR_PROTO;
  }
  r->p += n;
  return 0;
}

static inline int rd_fixed64(reader *r, uint64_t *v) {
  if (r->end - r->p < 8) {
    return TERN_ERR_PROTO;
  }
  *v = get_be64(r->p);
  r->p += 8;
  return 0;
}

/*
 * rd_bytes reads a length-prefixed field of |min|..|max| bytes.  The limit
 * is checked before the body is: a field over its limit is TOO_LARGE even
 * when the body could not have held it either.
 */
static inline int rd_bytes(reader *r, const uint8_t **data, size_t *len,
                           size_t min, size_t max) {
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
  *data = r->p;
  *len = (size_t)n;
  r->p += n;
  return 0;
}

/* ---- frame decoders ---------------------------------------------------- */

/*
 * Each decoder below reads a whole body into locals and copies them to |f|
 * only when every field was valid, so |f| is untouched on failure.  It
 * returns |size|, the frame's total size, or an error.  They stay out of
 * line and are tail-called, so that wire_frame_decode needs no stack frame
 * of its own for the ACK, PING and PONG that make up most of what a hub
 * reads.
 */
#if defined(__GNUC__)
#define COLD_PATH __attribute__((noinline))
#else
#define COLD_PATH
#endif

COLD_PATH static tern_ssize dec_hello(wire_frame *f, reader *r,
                                      tern_ssize size) {
  wire_hello h;
  int rc;
  if ((rc = rd_varint(r, &h.version)) != 0) {
    return rc;
  }
  if (h.version != WIRE_VERSION) {
    return TERN_ERR_PROTO;
  }
  if ((rc = rd_varint(r, &h.last_seq)) != 0 ||
      (rc = rd_fixed64(r, &h.epoch)) != 0 ||
      (rc = rd_varint(r, &h.heartbeat_ms)) != 0 ||
      (rc = rd_bytes(r, &h.key, &h.keylen, 1, TERN_MAX_SESSION_KEY)) != 0 ||
      (rc = rd_bytes(r, &h.token, &h.tokenlen, 0, TERN_MAX_TOKEN)) != 0) {
    return rc;
  }
  if (r->p != r->end) {
    return TERN_ERR_PROTO;
  }
  f->type = WIRE_HELLO;
  f->u.hello = h;
  return size;
}

COLD_PATH static tern_ssize dec_welcome(wire_frame *f, reader *r,
                                        tern_ssize size) {
  wire_welcome w;
  int rc;
  if ((rc = rd_varint(r, &w.version)) != 0) {
    return rc;
  }
  if (w.version != WIRE_VERSION) {
    return TERN_ERR_PROTO;
  }
  if ((rc = rd_fixed64(r, &w.epoch)) != 0 ||
      (rc = rd_varint(r, &w.flags)) != 0 ||
      (rc = rd_varint(r, &w.heartbeat_ms)) != 0 ||
      (rc = rd_varint(r, &w.liveness_ms)) != 0 ||
      (rc = rd_varint(r, &w.window)) != 0 ||
      (rc = rd_varint(r, &w.retry_ms)) != 0) {
    return rc;
  }
  if (r->p != r->end) {
    return TERN_ERR_PROTO;
  }
  f->type = WIRE_WELCOME;
  f->u.welcome = w;
  return size;
}

COLD_PATH static tern_ssize dec_msg(wire_frame *f, reader *r,
                                    tern_ssize size) {
  wire_msg m;
  uint64_t flags, nattrs;
  size_t i;
  int rc;
  if ((rc = rd_varint(r, &m.seq)) != 0 ||
      (rc = rd_varint(r, &m.ttl_ms)) != 0 ||
      (rc = rd_varint(r, &flags)) != 0) {
    return rc;
  }
  if ((flags & ~(uint64_t)WIRE_MSG_FLAGS_KNOWN) != 0 ||
      (flags & WIRE_MSG_PRIO_MASK) > TERN_PRIO_HIGH) {
    return TERN_ERR_PROTO;
  }
  m.priority = (int)(flags & WIRE_MSG_PRIO_MASK);
  if ((rc = rd_bytes(r, &m.id, &m.idlen, 1, TERN_MAX_ID)) != 0) {
    return rc;
  }
  m.collapse_key = NULL;
  m.collapse_keylen = 0;
  if ((flags & WIRE_MSG_HAS_COLLAPSE_KEY) != 0 &&
      (rc = rd_bytes(r, &m.collapse_key, &m.collapse_keylen, 1,
                     TERN_MAX_COLLAPSE_KEY)) != 0) {
    return rc;
  }
  m.content_type = NULL;
  m.content_typelen = 0;
  if ((flags & WIRE_MSG_HAS_CONTENT_TYPE) != 0 &&
      (rc = rd_bytes(r, &m.content_type, &m.content_typelen, 1,
                     TERN_MAX_CONTENT_TYPE)) != 0) {
    return rc;
  }
  if ((rc = rd_varint(r, &nattrs)) != 0) {
    return rc;
  }
  if (nattrs > TERN_MAX_ATTRS) {
    return TERN_ERR_TOO_LARGE;
  }
  m.nattrs = (size_t)nattrs;
  for (i = 0; i < m.nattrs; ++i) {
    wire_attr *a = &m.attrs[i];
    if ((rc = rd_bytes(r, &a->key, &a->keylen, 1, TERN_MAX_ATTR_KEY)) != 0 ||
        (rc = rd_bytes(r, &a->value, &a->valuelen, 0,
                       TERN_MAX_ATTR_VALUE)) != 0) {
      return rc;
    }
  }
  m.payload = r->p;
  m.payloadlen = (size_t)(r->end - r->p);
  /* Only the attrs that were read are copied: the rest of m.attrs is
     uninitialised. */
  f->type = WIRE_MSG;
  f->u.msg.seq = m.seq;
  f->u.msg.ttl_ms = m.ttl_ms;
  f->u.msg.priority = m.priority;
  f->u.msg.id = m.id;
  f->u.msg.idlen = m.idlen;
  f->u.msg.collapse_key = m.collapse_key;
  f->u.msg.collapse_keylen = m.collapse_keylen;
  f->u.msg.content_type = m.content_type;
  f->u.msg.content_typelen = m.content_typelen;
  f->u.msg.nattrs = m.nattrs;
  for (i = 0; i < m.nattrs; ++i) {
    f->u.msg.attrs[i] = m.attrs[i];
  }
  f->u.msg.payload = m.payload;
  f->u.msg.payloadlen = m.payloadlen;
  return size;
}

COLD_PATH static tern_ssize dec_dropped(wire_frame *f, reader *r,
                                        tern_ssize size) {
  uint64_t count, reason;
  int rc;
  if ((rc = rd_varint(r, &count)) != 0 || (rc = rd_varint(r, &reason)) != 0) {
    return rc;
  }
  if (r->p != r->end) {
    return TERN_ERR_PROTO;
  }
  f->type = WIRE_DROPPED;
  f->u.dropped.count = count;
  f->u.dropped.reason = reason;
  return size;
}

COLD_PATH static tern_ssize dec_goaway(wire_frame *f, reader *r,
                                       tern_ssize size) {
  wire_goaway g;
  int rc;
  if ((rc = rd_varint(r, &g.reason)) != 0 ||
      (rc = rd_varint(r, &g.retry_ms)) != 0 ||
      (rc = rd_bytes(r, &g.text, &g.textlen, 0, WIRE_MAX_GOAWAY_TEXT)) != 0) {
    return rc;
  }
  if (r->p != r->end) {
    return TERN_ERR_PROTO;
  }
  f->type = WIRE_GOAWAY;
  f->u.goaway = g;
  return size;
}

tern_ssize wire_frame_decode(wire_frame *f, const uint8_t *buf, size_t len,
                             size_t max_body) {
  uint64_t bodylen, v;
  size_t hdr;
  tern_ssize size;
  unsigned type;
  const uint8_t *body;
  reader r;

  if (len == 0) {
    return 0;
  }
  type = buf[0];
  if (type - WIRE_HELLO > (unsigned)(WIRE_GOAWAY - WIRE_HELLO)) {
    return TERN_ERR_PROTO;
  }
  if (len >= 2 && buf[1] <= VARINT_1_MAX) {
    bodylen = buf[1];
    hdr = 2;
  } else {
    tern_ssize n = varint_at(&bodylen, buf + 1, len - 1);
    if (n <= 0) {
      return n;
    }
    hdr = 1 + (size_t)n;
  }
  if (bodylen > max_body) {
    return TERN_ERR_TOO_LARGE;
  }
  if (bodylen > len - hdr) {
    return 0;
  }
  body = buf + hdr;
  size = (tern_ssize)(hdr + bodylen);

  switch (type) {
  case WIRE_ACK:
    /* The body is one varint, exactly. */
    if (bodylen == 0 || varint_at(&v, body, (size_t)bodylen) !=
                            (tern_ssize)bodylen) {
      return TERN_ERR_PROTO;
    }
    f->type = WIRE_ACK;
    f->u.ack_seq = v;
    return size;
  case WIRE_PING:
  case WIRE_PONG:
    if (bodylen != 8) {
      return TERN_ERR_PROTO;
    }
    f->type = (uint8_t)type;
    f->u.ping = get_be64(body);
    return size;
  default:
    break;
  }
  r.p = body;
  r.end = body + bodylen;
  switch (type) {
  case WIRE_MSG:
    return dec_msg(f, &r, size);
  case WIRE_HELLO:
    return dec_hello(f, &r, size);
  case WIRE_WELCOME:
    return dec_welcome(f, &r, size);
  case WIRE_DROPPED:
    return dec_dropped(f, &r, size);
  default:
    return dec_goaway(f, &r, size);
  }
}

/* ---- encoders ---------------------------------------------------------- */

static inline size_t bytes_size(size_t n) {
  return wire_varint_len(n) + n;
}

static inline uint8_t *put_bytes(uint8_t *p, const uint8_t *data, size_t n) {
  p = wire_put_varint(p, n);
  if (n != 0) {
    memcpy(p, data, n);
  }
  return p + n;
}

size_t wire_msg_tail_size(const wire_msg *m) {
  size_t n, i;
  n = 1 /* flags */ + bytes_size(m->idlen);
  if (m->collapse_keylen != 0) {
    n += bytes_size(m->collapse_keylen);
  }
  if (m->content_typelen != 0) {
    n += bytes_size(m->content_typelen);
  }
  n += wire_varint_len(m->nattrs);
  for (i = 0; i < m->nattrs; ++i) {
    n += bytes_size(m->attrs[i].keylen) + bytes_size(m->attrs[i].valuelen);
  }
  return n + m->payloadlen;
}

size_t wire_msg_tail_encode(uint8_t *out, const wire_msg *m) {
  uint8_t *p = out;
  unsigned flags = (unsigned)m->priority & WIRE_MSG_PRIO_MASK;
  size_t i;
  if (m->collapse_keylen != 0) {
    flags |= WIRE_MSG_HAS_COLLAPSE_KEY;
  }
  if (m->content_typelen != 0) {
    flags |= WIRE_MSG_HAS_CONTENT_TYPE;
  }
  *p++ = (uint8_t)flags; /* below 64: a one-byte varint */
  p = put_bytes(p, m->id, m->idlen);
  if (m->collapse_keylen != 0) {
    p = put_bytes(p, m->collapse_key, m->collapse_keylen);
  }
  if (m->content_typelen != 0) {
    p = put_bytes(p, m->content_type, m->content_typelen);
  }
  p = wire_put_varint(p, m->nattrs);
  for (i = 0; i < m->nattrs; ++i) {
    p = put_bytes(p, m->attrs[i].key, m->attrs[i].keylen);
    p = put_bytes(p, m->attrs[i].value, m->attrs[i].valuelen);
  }
  if (m->payloadlen != 0) {
    memcpy(p, m->payload, m->payloadlen);
    p += m->payloadlen;
  }
  return (size_t)(p - out);
}


/* body_size returns the body length of |f|, or 0 for an unknown type (every
   known type has a body of at least one byte). */
static size_t body_size(const wire_frame *f) {
  switch (f->type) {
  case WIRE_HELLO: {
    const wire_hello *h = &f->u.hello;
    return wire_varint_len(h->version) + wire_varint_len(h->last_seq) + 8 +
           wire_varint_len(h->heartbeat_ms) + bytes_size(h->keylen) +
           bytes_size(h->tokenlen);
  }
  case WIRE_WELCOME: {
    const wire_welcome *w = &f->u.welcome;
    return wire_varint_len(w->version) + 8 + wire_varint_len(w->flags) +
           wire_varint_len(w->heartbeat_ms) + wire_varint_len(w->liveness_ms) +
           wire_varint_len(w->window) + wire_varint_len(w->retry_ms);
  }
  case WIRE_MSG:
    return wire_varint_len(f->u.msg.seq) + wire_varint_len(f->u.msg.ttl_ms) +
           wire_msg_tail_size(&f->u.msg);
  case WIRE_ACK:
    return wire_varint_len(f->u.ack_seq);
  case WIRE_PING:
  case WIRE_PONG:
    return 8;
  case WIRE_DROPPED:
    return wire_varint_len(f->u.dropped.count) +
           wire_varint_len(f->u.dropped.reason);
  case WIRE_GOAWAY:
    return wire_varint_len(f->u.goaway.reason) +
           wire_varint_len(f->u.goaway.retry_ms) +
           bytes_size(f->u.goaway.textlen);
  default:
    return 0;
  }
}

size_t wire_frame_size(const wire_frame *f) {
  size_t body = body_size(f);
  if (body == 0) {
    return 0;
  }
  return 1 + wire_varint_len(body) + body;
}

size_t wire_frame_encode(uint8_t *out, size_t cap, const wire_frame *f) {
  size_t body = body_size(f);
  size_t size;
  uint8_t *p;
  if (body == 0) {
    return 0;
  }
  size = 1 + wire_varint_len(body) + body;
  if (size > cap) {
    return 0;
  }
  if (f->type == WIRE_MSG) {
    size_t head = wire_msg_head_encode(out, f->u.msg.seq, f->u.msg.ttl_ms,
                                       wire_msg_tail_size(&f->u.msg));
    return head + wire_msg_tail_encode(out + head, &f->u.msg);
  }
  p = out;
  *p++ = f->type;
  p = wire_put_varint(p, body);
  switch (f->type) {
  case WIRE_HELLO: {
    const wire_hello *h = &f->u.hello;
    p = wire_put_varint(p, h->version);
    p = wire_put_varint(p, h->last_seq);
    p = put_be64(p, h->epoch);
    p = wire_put_varint(p, h->heartbeat_ms);
    p = put_bytes(p, h->key, h->keylen);
    p = put_bytes(p, h->token, h->tokenlen);
    break;
  }
  case WIRE_WELCOME: {
    const wire_welcome *w = &f->u.welcome;
    p = wire_put_varint(p, w->version);
    p = put_be64(p, w->epoch);
    p = wire_put_varint(p, w->flags);
    p = wire_put_varint(p, w->heartbeat_ms);
    p = wire_put_varint(p, w->liveness_ms);
    p = wire_put_varint(p, w->window);
    p = wire_put_varint(p, w->retry_ms);
    break;
  }
  case WIRE_ACK:
    p = wire_put_varint(p, f->u.ack_seq);
    break;
  case WIRE_PING:
  case WIRE_PONG:
    p = put_be64(p, f->u.ping);
    break;
  case WIRE_DROPPED:
    p = wire_put_varint(p, f->u.dropped.count);
    p = wire_put_varint(p, f->u.dropped.reason);
    break;
  default: /* WIRE_GOAWAY */
    p = wire_put_varint(p, f->u.goaway.reason);
    p = wire_put_varint(p, f->u.goaway.retry_ms);
    p = put_bytes(p, f->u.goaway.text, f->u.goaway.textlen);
    break;
  }
  return (size_t)(p - out);
}
