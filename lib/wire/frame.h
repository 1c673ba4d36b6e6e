/*
 * The binary framing of tern-protocol(7): pure codecs, bytes in and structs
 * out, and back.  No state beyond the call, no allocation.  Used by the hub
 * (lib/deliver) and by the receiver state machine (lib/client).
 *
 * A frame is: type (1 byte), body length (varint), body.  Varints are the
 * QUIC encoding: the two high bits of the first byte give the length (1, 2,
 * 4 or 8 bytes), the rest is the value, big-endian; a value must use the
 * shortest encoding.  Fixed 64-bit fields are big-endian.
 */
#ifndef TERN_WIRE_FRAME_H
#define TERN_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tern.h"

/* Frame types. */
enum {
  WIRE_HELLO = 0x01,
  WIRE_WELCOME = 0x02,
  WIRE_MSG = 0x03,
  WIRE_ACK = 0x04,
  WIRE_PING = 0x05,
  WIRE_PONG = 0x06,
  WIRE_DROPPED = 0x07,
  WIRE_GOAWAY = 0x08
};

/* The protocol version spoken by this library (HELLO and WELCOME). */
#define WIRE_VERSION 1
/* The largest value a varint holds. */
#define WIRE_VARINT_MAX ((UINT64_C(1) << 62) - 1)
/* The largest frame header: type byte and an 8-byte varint. */
#define WIRE_HEADER_MAX 9
/* The largest body a client may send (HELLO is the largest such frame). */
#define WIRE_CLIENT_BODY_MAX 2048
/* The longest GOAWAY text. */
#define WIRE_MAX_GOAWAY_TEXT 256

/* MSG flags (the flags varint of a MSG body). */
#define WIRE_MSG_PRIO_MASK 0x3u          /* bits 0-1: tern_priority        */
#define WIRE_MSG_HAS_COLLAPSE_KEY 0x4u
#define WIRE_MSG_HAS_CONTENT_TYPE 0x8u
#define WIRE_MSG_FLAGS_KNOWN 0xfu

/* WELCOME flags. */
#define WIRE_WELCOME_RESUMED 0x1u  /* last_seq was applied (epoch matched)  */
#define WIRE_WELCOME_EXISTED 0x2u  /* the session existed before the HELLO  */

typedef struct wire_hello {
  uint64_t version;
  uint64_t last_seq;
  uint64_t epoch;          /* fixed 8 bytes; 0: the client knows no epoch */
  uint64_t heartbeat_ms;   /* asked-for heartbeat; 0: server default       */
  const uint8_t *key;      /* 1..TERN_MAX_SESSION_KEY bytes                */
  size_t keylen;
  const uint8_t *token;    /* 0..TERN_MAX_TOKEN bytes                      */
  size_t tokenlen;
} wire_hello;

typedef struct wire_welcome {
  uint64_t version;
  uint64_t epoch;          /* fixed 8 bytes                                */
  uint64_t flags;          /* WIRE_WELCOME_*                               */
  uint64_t heartbeat_ms;
  uint64_t liveness_ms;
  uint64_t window;         /* in-flight window                             */
  uint64_t retry_ms;       /* reconnect hint for the next time; 0: none    */
} wire_welcome;

typedef struct wire_attr {
  const uint8_t *key;      /* 1..TERN_MAX_ATTR_KEY bytes                   */
  size_t keylen;
  const uint8_t *value;    /* 0..TERN_MAX_ATTR_VALUE bytes                 */
  size_t valuelen;
} wire_attr;

/*
 * A MSG body is seq, ttl_ms, then the "tail": everything that does not
 * change between sends of one message, so the hub encodes it once at
 * publish time (wire_msg_tail_encode).
 */
typedef struct wire_msg {
  uint64_t seq;
  uint64_t ttl_ms;         /* remaining lifetime; 0: never expires         */
  int priority;            /* tern_priority                                */
  const uint8_t *id;       /* 1..TERN_MAX_ID bytes                         */
  size_t idlen;
  const uint8_t *collapse_key; /* 0..TERN_MAX_COLLAPSE_KEY bytes (0: none) */
  size_t collapse_keylen;
  const uint8_t *content_type; /* 0..TERN_MAX_CONTENT_TYPE bytes (0: none) */
  size_t content_typelen;
  size_t nattrs;           /* 0..TERN_MAX_ATTRS                            */
  wire_attr attrs[TERN_MAX_ATTRS];
  const uint8_t *payload;  /* the rest of the body                         */
  size_t payloadlen;
} wire_msg;

typedef struct wire_goaway {
  uint64_t reason;         /* tern_goaway_reason                           */
  uint64_t retry_ms;
  const uint8_t *text;     /* 0..WIRE_MAX_GOAWAY_TEXT bytes                */
  size_t textlen;
} wire_goaway;

typedef struct wire_frame {
  uint8_t type;
  union {
    wire_hello hello;
    wire_welcome welcome;
    wire_msg msg;
    uint64_t ack_seq;              /* ACK                                  */
    uint64_t ping;                 /* PING and PONG: fixed 8 bytes         */
    struct {
      uint64_t count;
      uint64_t reason;             /* tern_drop_reason                     */
    } dropped;
    wire_goaway goaway;
  } u;
} wire_frame;

/* ---- varints ----------------------------------------------------------- */

/* wire_varint_len returns the bytes |v| (<= WIRE_VARINT_MAX) takes.  Inline:
   every MSG frame the hub writes encodes several varints. */
static inline size_t wire_varint_len(uint64_t v) {
  return v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;
}

/* wire_put_varint writes |v| at |p| and returns the byte after it. */
static inline uint8_t *wire_put_varint(uint8_t *p, uint64_t v) {
  if (v < 0x40) {
    p[0] = (uint8_t)v;
    return p + 1;
  }
  if (v < 0x4000) {
    p[0] = (uint8_t)(0x40 | v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
  }
  if (v < 0x40000000) {
    /* Built big-endian in a register and stored at once: compilers turn
       this into a byte swap and one store. */
    uint32_t x = (uint32_t)v | 0x80000000u;
    uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8),
                    (uint8_t)x};
    memcpy(p, b, 4);
    return p + 4;
  }
  uint64_t x = v | UINT64_C(0xc000000000000000);
  uint8_t b[8] = {(uint8_t)(x >> 56), (uint8_t)(x >> 48), (uint8_t)(x >> 40),
                  (uint8_t)(x >> 32), (uint8_t)(x >> 24), (uint8_t)(x >> 16),
                  (uint8_t)(x >> 8),  (uint8_t)x};
  memcpy(p, b, 8);
  return p + 8;
}

/*
 * wire_get_varint reads a varint from [p, end).  Returns the bytes it took,
 * 0 if [p, end) is too short, or TERN_ERR_PROTO for a non-shortest encoding.
 */
tern_ssize wire_get_varint(uint64_t *v, const uint8_t *p, const uint8_t *end);

/* ---- frames ------------------------------------------------------------ */

/*
 * wire_frame_decode decodes the frame at the start of [buf, buf+len).
 * Bodies longer than |max_body| are refused before they are read.
 *
 * Returns the frame's total size when a whole frame was decoded into |f|
 * (pointers in |f| point into |buf|), 0 when more bytes are needed, or:
 * TERN_ERR_TOO_LARGE (body longer than max_body, or a field over its
 * limit), TERN_ERR_PROTO (unknown type, bad varint, a length that runs past
 * the body, bytes left over in the body, a value out of range).
 */
tern_ssize wire_frame_decode(wire_frame *f, const uint8_t *buf, size_t len,
                             size_t max_body);

/*
 * wire_ack_peek is the receiving hot path: when [p, p+len) starts with a
 * complete, well-formed ACK whose seq takes 1, 2 or 4 bytes, it stores the
 * seq and returns the frame's size; otherwise it returns 0 and the caller
 * uses wire_frame_decode, which also reports every error.
 */
static inline tern_ssize wire_ack_peek(uint64_t *seq, const uint8_t *p,
                                       size_t len) {
  if (len < 3 || p[0] != WIRE_ACK) {
    return 0;
  }
  uint64_t v;
  switch (p[1]) {
  case 1:
    if (p[2] >= 0x40) {
      return 0;
    }
    *seq = p[2];
    return 3;
  case 2:
    if (len < 4 || (p[2] >> 6) != 1) {
      return 0;
    }
    v = (uint64_t)(p[2] & 0x3f) << 8 | p[3];
    if (v < 0x40) {
      return 0;
    }
    *seq = v;
    return 4;
  case 4:
    if (len < 6 || (p[2] >> 6) != 2) {
      return 0;
    }
    v = (uint64_t)(p[2] & 0x3f) << 24 | (uint64_t)p[3] << 16 |
        (uint64_t)p[4] << 8 | p[5];
    if (v < 0x4000) {
      return 0;
    }
    *seq = v;
    return 6;
  default:
    return 0;
  }
}

/*
 * wire_frame_size returns the encoded size of |f| (header included).
 * wire_frame_encode writes |f| to |out| when it fits in |cap| and returns
 * its size; otherwise it writes nothing and returns 0.  |f| must hold valid
 * values (within the limits the decoder checks).
 */
size_t wire_frame_size(const wire_frame *f);
size_t wire_frame_encode(uint8_t *out, size_t cap, const wire_frame *f);

/*
 * wire_msg_tail_size / wire_msg_tail_encode give and write the tail of a
 * MSG body (flags, id, collapse key, content type, attrs, payload) from the
 * fields of |m| other than seq and ttl_ms.  encode returns bytes written and
 * needs tail_size bytes of room.
 */
size_t wire_msg_tail_size(const wire_msg *m);
size_t wire_msg_tail_encode(uint8_t *out, const wire_msg *m);

/*
 * The tail of a plain message, one with no content type and no attributes
 * (most are): the same bytes wire_msg_tail_encode writes for it, without
 * building a wire_msg.  Inline because every publish runs them.
 */
static inline size_t wire_plain_tail_size(size_t idlen, size_t cklen,
                                          size_t payloadlen) {
  size_t n = 1 /* flags */ + wire_varint_len(idlen) + idlen +
             1 /* nattrs */ + payloadlen;
  return cklen ? n + wire_varint_len(cklen) + cklen : n;
}
static inline size_t wire_plain_tail_encode(uint8_t *out, int priority,
                                            const uint8_t *id, size_t idlen,
                                            const uint8_t *ck, size_t cklen,
                                            const uint8_t *payload,
                                            size_t payloadlen) {
  uint8_t *p = out;
  *p++ = (uint8_t)(((unsigned)priority & WIRE_MSG_PRIO_MASK) |
                   (cklen ? WIRE_MSG_HAS_COLLAPSE_KEY : 0));
  p = wire_put_varint(p, idlen);
  memcpy(p, id, idlen);
  p += idlen;
  if (cklen) {
    p = wire_put_varint(p, cklen);
    memcpy(p, ck, cklen);
    p += cklen;
  }
  *p++ = 0; /* no attributes */
  if (payloadlen) {
    memcpy(p, payload, payloadlen);
    p += payloadlen;
  }
  return (size_t)(p - out);
}

/*
 * wire_msg_head_encode writes the frame header and the varying start of a
 * MSG body (type, length, seq, ttl_ms) for a tail of |taillen| bytes into
 * |out| (room for WIRE_MSG_HEAD_MAX bytes) and returns its size.
 */
#define WIRE_MSG_HEAD_MAX (WIRE_HEADER_MAX + 8 + 8)
#if defined(__GNUC__)
/* Every send runs it: inline even where the write loop has two copies. */
__attribute__((always_inline))
#endif
static inline size_t wire_msg_head_encode(uint8_t *out, uint64_t seq,
                                          uint64_t ttl_ms, size_t taillen) {
  uint8_t *p = out;
  *p++ = WIRE_MSG;
  p = wire_put_varint(p, wire_varint_len(seq) + wire_varint_len(ttl_ms) +
                             taillen);
  p = wire_put_varint(p, seq);
  p = wire_put_varint(p, ttl_ms);
  return (size_t)(p - out);
}

#endif /* TERN_WIRE_FRAME_H */
