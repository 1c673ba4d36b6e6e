/*
 * Producers on the binary framing: PUBLISH in, PUBACK out.
 *
 * A connection the host let publish (tern_conn_allow_publish) gets a
 * producer block.  From then on tern_conn_read comes here: PUBLISH frames
 * are decoded and published (tern_hub_publish or tern_topic_publish), the
 * other frames go to conn.c's reader unchanged.  The block has its own
 * receive buffer, because a PUBLISH may be as large as max_payload allows
 * while the connection's buffer (conn_aux) holds WIRE_CLIENT_BODY_MAX.
 *
 * PUBACKs are encoded at once into a fixed buffer that tern_conn_write
 * copies out after the control frames and before any message.  The buffer
 * always has room for every PUBACK the connection owes, so queueing one
 * never fails: before a PUBLISH is read, there must be room for its own
 * PUBACK and for those of the SYNC publishes still waiting for the store.
 * When there is not, the connection is blocked: tern_conn_read stops and
 * returns the bytes it took, and the host passes the rest again after it
 * wrote to the connection (tern-protocol(7), tern_conn_allow_publish(3)).
 *
 * A SYNC publish to a session with a store is answered when its batch
 * completes: persist.c, which would queue the TERN_EV_PERSISTED event,
 * calls produce_persisted instead, with the request number the message
 * carries as its cookie.  Completions come in batch order, so they reach a
 * producer in the order of its SYNC publishes.
 */
#include <string.h>

#include "base/mem.h"
#include "deliver/produce.h"
#include "wire/publish.h"

struct producer {
  int allowed;             /* the host's last tern_conn_allow_publish      */
  uint32_t nsync;          /* SYNC publishes waiting for the store         */
  /* an incomplete incoming frame (any type) */
  uint8_t *rbuf;
  size_t rlen, rcap;
  /* PUBACK frames to write: bytes [ackoff, acklen) of ack */
  size_t ackoff, acklen;
  size_t cut;              /* bytes left of a frame written in part        */
  uint8_t ack[PRODUCE_ACK_BYTES];
};

/* A receive buffer larger than this is freed once it is empty again. */
#define RBUF_KEEP 65536

static size_t max_publish_body(const tern_hub *hub) {
  return hub->set.max_payload + WIRE_PUBLISH_OVERHEAD;
}

/* Whether reading another PUBLISH could leave a PUBACK without room. */
static int blocked(const producer *pr) {
  return pr->nsync >= PRODUCE_SYNC_MAX ||
         (pr->acklen - pr->ackoff) + (size_t)(pr->nsync + 1) * WIRE_PUBACK_MAX >
             PRODUCE_ACK_BYTES;
}

static void queue_ack(conn *c, uint64_t req, int status, uint64_t retry_ms,
                      const uint8_t *id, size_t idlen) {
  producer *pr = c->aux->prod;
  wire_puback a = {req, (uint64_t)status, retry_ms, id, idlen};
  if (pr->acklen + WIRE_PUBACK_MAX > PRODUCE_ACK_BYTES) {
    memmove(pr->ack, pr->ack + pr->ackoff, pr->acklen - pr->ackoff);
    pr->acklen -= pr->ackoff;
    pr->ackoff = 0;
  }
  /* blocked() kept the room: this cannot fail */
  pr->acklen += wire_puback_encode(pr->ack + pr->acklen,
                                   PRODUCE_ACK_BYTES - pr->acklen, &a);
  hub_mark_ready(c->hub, c);
}

static int status_of(int err) {
  switch (err) {
  case 0:
    return TERN_PUBACK_ACCEPTED;
  case TERN_ERR_DUPLICATE:
    return TERN_PUBACK_DUPLICATE;
  case TERN_ERR_FULL:
    return TERN_PUBACK_FULL;
  case TERN_ERR_TOO_LARGE:
    return TERN_PUBACK_TOO_LARGE;
  case TERN_ERR_NOT_FOUND:
    return TERN_PUBACK_NOT_FOUND;
  case TERN_ERR_LIMIT:
    return TERN_PUBACK_LIMIT;
  case TERN_ERR_NOMEM:
    return TERN_PUBACK_INTERNAL;
  case TERN_ERR_STORE:
    return TERN_PUBACK_STORE;
  default:
    return TERN_PUBACK_INVALID;
  }
}

/* Copies |len| wire bytes to a NUL-terminated string; 0, or
   TERN_ERR_INVALID when they hold a NUL (tern_msg_desc takes C strings). */
static int cstr(char *dst, const uint8_t *src, size_t len) {
  if (len && memchr(src, 0, len)) {
    return TERN_ERR_INVALID;
  }
  if (len) {
    memcpy(dst, src, len);
  }
  dst[len] = 0;
  return 0;
}

/* Publishes one decoded PUBLISH and queues its PUBACK, or for a SYNC
   publish that waits for the store, counts it.  Errors of the publish
   itself are PUBACK statuses; nothing here fails. */
static void publish(conn *c, const wire_publish *wp, tern_tstamp now) {
  tern_hub *hub = c->hub;
  producer *pr = c->aux->prod;
  char ct[TERN_MAX_CONTENT_TYPE + 1];
  char keys[TERN_MAX_ATTRS][TERN_MAX_ATTR_KEY + 1];
  char values[TERN_MAX_ATTRS][TERN_MAX_ATTR_VALUE + 1];
  tern_attr attrs[TERN_MAX_ATTRS];
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  int rv = 0;
  if (wp->content_typelen) {
    rv = cstr(ct, wp->content_type, wp->content_typelen);
    d.content_type = ct;
  }
  for (size_t i = 0; i < wp->nattrs && rv == 0; ++i) {
    rv = cstr(keys[i], wp->attrs[i].key, wp->attrs[i].keylen);
    if (rv == 0) {
      rv = cstr(values[i], wp->attrs[i].value, wp->attrs[i].valuelen);
    }
    attrs[i].key = keys[i];
    attrs[i].value = values[i];
  }
  d.id = wp->id;
  d.idlen = wp->idlen;
  d.collapse_key = wp->collapse_key;
  d.collapse_keylen = wp->collapse_keylen;
  d.priority = wp->priority;
  d.ttl = wp->ttl_ms * TERN_MILLISECONDS;
  d.payload = wp->payload;
  d.payloadlen = wp->payloadlen;
  d.attrs = wp->nattrs ? attrs : NULL;
  d.nattrs = wp->nattrs;
  d.flags = ((wp->flags & WIRE_PUB_SYNC) ? TERN_MSG_SYNC : 0) |
            ((wp->flags & WIRE_PUB_VOLATILE) ? TERN_MSG_VOLATILE : 0);
  const uint8_t *id = wp->id;
  size_t idlen = wp->idlen;
  uint64_t retry_ms = 0;
  tern_publish_result res;
  if (rv != 0) {
    /* a NUL in a content type or an attribute */
  } else if (wp->flags & WIRE_PUB_TOPIC) {
    char name[TERN_MAX_TOPIC + 1];
    rv = cstr(name, wp->target, wp->targetlen);
    tern_topic *t = rv == 0 ? tern_hub_find_topic(hub, name) : NULL;
    if (rv == 0) {
      rv = t ? tern_topic_publish(t, &d, now, NULL) : TERN_ERR_NOT_FOUND;
    }
  } else {
    int waits = (wp->flags & WIRE_PUB_SYNC) && hub->persist;
    if (waits) {
      /* Its completion comes back with the request number. */
      d.cookie = wp->req;
      persist_set_producer(hub, c);
    }
    rv = tern_hub_publish(hub, wp->target, wp->targetlen, &d, now, &res);
    if (waits) {
      persist_set_producer(hub, NULL);
    }
    if (rv == 0 || rv == TERN_ERR_DUPLICATE || rv == TERN_ERR_FULL) {
      id = res.id;
      idlen = res.idlen;
    }
    if (rv == TERN_ERR_FULL && (res.outcome & TERN_PUBLISH_REJECTED)) {
      uint64_t ms = (res.retry_after + TERN_MILLISECONDS - 1) /
                    TERN_MILLISECONDS;
      retry_ms = ms ? ms : 1;
    }
    if (rv == 0 && waits) {
      ++pr->nsync;
      return;
    }
  }
  queue_ack(c, wp->req, status_of(rv), retry_ms, id, idlen);
}

static int rbuf_reserve(tern_hub *hub, producer *pr, size_t n) {
  if (n <= pr->rcap) {
    return 0;
  }
  uint8_t *b = mem_realloc(&hub->mem, pr->rbuf, n);
  if (!b) {
    return TERN_ERR_NOMEM;
  }
  pr->rbuf = b;
  pr->rcap = n;
  return 0;
}

/* Handles one complete PUBLISH at [p, p+len): its size or an error. */
static tern_ssize on_publish(conn *c, const uint8_t *p, size_t len,
                             tern_tstamp now) {
  if (!c->aux->prod->allowed) {
    /* The host took the right back: refused like on any connection. */
    conn_close(c, TERN_GOAWAY_REJECTED, 0, TERN_ERR_PROTO, 0, now);
    return TERN_ERR_PROTO;
  }
  if (c->state != CONN_OPEN) {
    return TERN_ERR_PROTO; /* before the HELLO was accepted */
  }
  wire_publish wp;
  tern_ssize n = wire_publish_decode(&wp, p, len, max_publish_body(c->hub));
  if (n > 0) {
    publish(c, &wp, now);
  }
  return n;
}

/* Keeps the incomplete frame [p, p+len).  0 or TERN_ERR_NOMEM. */
static int stash(tern_hub *hub, producer *pr, const uint8_t *p, size_t len) {
  uint8_t type;
  uint64_t body;
  size_t want = WIRE_HEADER_MAX;
  /* conn_frames and the PUBLISH decoder checked the body length when the
     header was whole; buffered_frame checks it otherwise. */
  tern_ssize h = wire_frame_head(p, len, &type, &body);
  if (h > 0) {
    want = (size_t)h + (size_t)body;
  }
  int rv = rbuf_reserve(hub, pr, want > len ? want : len);
  if (rv != 0) {
    return rv;
  }
  memcpy(pr->rbuf, p, len);
  pr->rlen = len;
  return 0;
}

/* Completes the frame in the receive buffer from [in, in+len) and handles
   it once whole.  Bytes taken from |in|, or an error. */
static tern_ssize buffered_frame(conn *c, const uint8_t *in, size_t len,
                                 tern_tstamp now) {
  tern_hub *hub = c->hub;
  producer *pr = c->aux->prod;
  size_t taken = 0;
  uint8_t type;
  uint64_t body;
  tern_ssize h;
  /* Until the header is whole, one byte at a time: the header of a short
     frame must not swallow the next frame. */
  while ((h = wire_frame_head(pr->rbuf, pr->rlen, &type, &body)) == 0) {
    if (taken == len) {
      return (tern_ssize)taken;
    }
    pr->rbuf[pr->rlen++] = in[taken++]; /* rcap >= WIRE_HEADER_MAX */
  }
  if (h < 0) {
    return h;
  }
  size_t max = type == WIRE_PUBLISH ? max_publish_body(hub)
                                    : WIRE_CLIENT_BODY_MAX;
  if (body > max) {
    return TERN_ERR_TOO_LARGE;
  }
  size_t total = (size_t)h + (size_t)body;
  int rv = rbuf_reserve(hub, pr, total);
  if (rv != 0) {
    return rv;
  }
  size_t n = total - pr->rlen < len - taken ? total - pr->rlen : len - taken;
  memcpy(pr->rbuf + pr->rlen, in + taken, n);
  pr->rlen += n;
  taken += n;
  if (pr->rlen < total) {
    return (tern_ssize)taken;
  }
  tern_ssize r = type == WIRE_PUBLISH ? on_publish(c, pr->rbuf, total, now)
                                      : conn_frames(c, pr->rbuf, total, now);
  if (r < 0) {
    return r;
  }
  pr->rlen = 0;
  if (pr->rcap > RBUF_KEEP) {
    mem_free(&hub->mem, pr->rbuf);
    pr->rbuf = NULL;
    pr->rcap = 0;
  }
  return (tern_ssize)taken;
}

tern_ssize produce_read(conn *c, const uint8_t *in, size_t len,
                        tern_tstamp now) {
  producer *pr = c->aux->prod;
  size_t used = 0;
  if (pr->rlen) {
    tern_ssize n = buffered_frame(c, in, len, now);
    if (n < 0) {
      return n;
    }
    used = (size_t)n;
  }
  while (used < len && c->state < CONN_CLOSING) {
    const uint8_t *p = in + used;
    size_t avail = len - used;
    if (p[0] != WIRE_PUBLISH) {
      tern_ssize n = conn_frames(c, p, avail, now);
      if (n < 0) {
        return n;
      }
      used += (size_t)n;
      if (used < len && c->state < CONN_CLOSING && in[used] != WIRE_PUBLISH) {
        /* An incomplete frame (its decoder bounded it already). */
        int rv = stash(c->hub, pr, in + used, len - used);
        return rv < 0 ? rv : (tern_ssize)len;
      }
      continue;
    }
    if (blocked(pr)) {
      return (tern_ssize)used; /* the host passes the rest again */
    }
    tern_ssize n = on_publish(c, p, avail, now);
    if (n < 0) {
      return n;
    }
    if (n == 0) {
      int rv = stash(c->hub, pr, p, avail);
      return rv < 0 ? rv : (tern_ssize)len;
    }
    used += (size_t)n;
  }
  return (tern_ssize)len;
}

/* ---- writing ------------------------------------------------------------ */

int produce_want_write(const conn *c) {
  return c->aux->prod->acklen > c->aux->prod->ackoff;
}

int produce_write(conn *c, uint8_t **pp, uint8_t *end) {
  producer *pr = c->aux->prod;
  uint8_t *p = *pp;
  uint8_t *start = p;
  while (pr->ackoff < pr->acklen && p < end) {
    size_t room = (size_t)(end - p);
    size_t n = pr->cut;
    if (n == 0) {
      uint8_t type;
      uint64_t body;
      tern_ssize h = wire_frame_head(pr->ack + pr->ackoff,
                                     pr->acklen - pr->ackoff, &type, &body);
      n = (size_t)h + (size_t)body;
      if (n > room && p != start) {
        break; /* whole frames only, unless the buffer is this small */
      }
    }
    if (n > room) {
      /* Continued by the next write, before anything else. */
      pr->cut = n - room;
      n = room;
    } else {
      pr->cut = 0;
    }
    memcpy(p, pr->ack + pr->ackoff, n);
    p += n;
    pr->ackoff += n;
    if (pr->cut) {
      break;
    }
  }
  if (pr->ackoff == pr->acklen) {
    pr->ackoff = pr->acklen = 0;
  }
  *pp = p;
  return pr->acklen == 0;
}

int produce_cut_pending(const conn *c) { return c->aux->prod->cut != 0; }

/* ---- completions and the end -------------------------------------------- */

void produce_persisted(tern_hub *hub, conn *c, uint64_t req,
                       const uint8_t *id, size_t idlen, int status) {
  (void)hub;
  producer *pr = c->aux->prod;
  --pr->nsync;
  queue_ack(c, req, status == 0 ? TERN_PUBACK_PERSISTED : status_of(status),
            0, id, idlen);
}

void produce_closed(tern_hub *hub, conn *c) {
  producer *pr = c->aux->prod;
  if (pr->nsync) {
    persist_forget_producer(hub, c);
    pr->nsync = 0;
  }
  pr->rlen = 0;
}

void produce_free(tern_hub *hub, conn *c) {
  producer *pr = conn_producer(c);
  if (!pr) {
    return;
  }
  if (pr->nsync) {
    persist_forget_producer(hub, c);
  }
  mem_free(&hub->mem, pr->rbuf);
  mem_free(&hub->mem, pr);
  c->aux->prod = NULL;
}

int tern_conn_allow_publish(tern_conn *tc, int allow) {
  conn *c = (conn *)tc;
  if (!c) {
    return TERN_ERR_INVALID;
  }
  if (c->state >= CONN_CLOSING) {
    return TERN_ERR_CLOSED;
  }
  if (c->framing) {
    return TERN_ERR_STATE; /* a producer may stop reading: not in a
                              WebSocket message, nor on a one-way kind */
  }
  if (!conn_producer(c)) {
    if (!allow) {
      return 0;
    }
    if (conn_aux_get(c->hub, c) != 0) {
      return TERN_ERR_NOMEM; /* nothing changed: an empty block is trimmed
                                by the next read or write */
    }
    producer *pr = mem_malloc(&c->hub->mem, sizeof(producer));
    if (!pr) {
      return TERN_ERR_NOMEM;
    }
    memset(pr, 0, offsetof(producer, ack));
    if (c->aux->rlen) {
      /* An incomplete frame read before: it moves to the new buffer. */
      if (rbuf_reserve(c->hub, pr, sizeof(c->aux->rbuf)) != 0) {
        mem_free(&c->hub->mem, pr);
        return TERN_ERR_NOMEM;
      }
      memcpy(pr->rbuf, c->aux->rbuf, c->aux->rlen);
      pr->rlen = c->aux->rlen;
      c->aux->rlen = 0;
    }
    c->aux->prod = pr;
  }
  c->aux->prod->allowed = allow != 0;
  return 0;
}
