/*
 * The producer frames of tern-protocol(7), PUBLISH (0x09, client to server)
 * and PUBACK (0x0a, server to client): pure codecs like frame.h, bytes in
 * and structs out, and back.  No state beyond the call, no allocation.
 *
 * They live beside wire_frame_decode rather than in it: a PUBLISH body is
 * as large as the hub's max_payload allows, while every other client frame
 * fits WIRE_CLIENT_BODY_MAX, and the hub reads them on different paths
 * (lib/deliver/produce.c).
 */
#ifndef TERN_WIRE_PUBLISH_H
#define TERN_WIRE_PUBLISH_H

#include "wire/frame.h"

enum { WIRE_PUBLISH = 0x09, WIRE_PUBACK = 0x0a };

/* PUBLISH flags (the flags varint of a PUBLISH body). */
#define WIRE_PUB_PRIO_MASK 0x3u        /* bits 0-1: tern_priority         */
#define WIRE_PUB_HAS_COLLAPSE_KEY 0x4u
#define WIRE_PUB_HAS_CONTENT_TYPE 0x8u
#define WIRE_PUB_TOPIC 0x10u           /* target is a topic name          */
#define WIRE_PUB_SYNC 0x20u            /* durable: PUBACK once stored     */
#define WIRE_PUB_VOLATILE 0x40u        /* never stored                    */
#define WIRE_PUB_FLAGS_KNOWN 0x7fu

/* The largest ttl_ms a PUBLISH may carry (about 34 years): its lifetime in
   nanoseconds fits a tern_duration with room to spare. */
#define WIRE_PUB_TTL_MAX ((UINT64_C(1) << 40) - 1)

/* The most bytes of a PUBLISH body other than the payload: req (8), flags
   (1), target (2+255), ttl (8), id (1+64), collapse key (1+64), content
   type (2+128), nattrs (1), 8 attributes of (1+64)+(2+256). */
#define WIRE_PUBLISH_OVERHEAD 3119

/* The largest PUBACK frame: header (2), req (8), status (8), retry (8),
   id (1+64). */
#define WIRE_PUBACK_MAX 91

typedef struct wire_publish {
  uint64_t req;            /* the producer's request number, echoed      */
  unsigned flags;          /* WIRE_PUB_TOPIC, _SYNC, _VOLATILE            */
  int priority;            /* tern_priority                               */
  const uint8_t *target;   /* session key 1..TERN_MAX_SESSION_KEY, or
                              topic name 1..TERN_MAX_TOPIC bytes          */
  size_t targetlen;
  uint64_t ttl_ms;         /* 0: the hub's default_ttl                    */
  const uint8_t *id;       /* 0..TERN_MAX_ID bytes (0: the hub makes one) */
  size_t idlen;
  const uint8_t *collapse_key; /* 0..TERN_MAX_COLLAPSE_KEY (0: none)      */
  size_t collapse_keylen;
  const uint8_t *content_type; /* 0..TERN_MAX_CONTENT_TYPE (0: none)      */
  size_t content_typelen;
  size_t nattrs;
  wire_attr attrs[TERN_MAX_ATTRS];
  const uint8_t *payload;  /* the rest of the body                        */
  size_t payloadlen;
} wire_publish;

typedef struct wire_puback {
  uint64_t req;
  uint64_t status;         /* tern_puback_status; receivers accept others */
  uint64_t retry_ms;       /* FULL: when to try again; 0 otherwise        */
  const uint8_t *id;       /* 0..TERN_MAX_ID bytes                        */
  size_t idlen;
} wire_puback;

/*
 * wire_frame_head reads the type and body length of the frame at [p,
 * p+len).  Returns the header's size, 0 when more bytes are needed, or
 * TERN_ERR_PROTO (a body length not in its shortest encoding).  The type
 * is not checked.
 */
tern_ssize wire_frame_head(const uint8_t *p, size_t len, uint8_t *type,
                           uint64_t *bodylen);

/*
 * wire_publish_decode and wire_puback_decode decode the frame at the start
 * of [buf, buf+len), which must have their type.  Same contract as
 * wire_frame_decode: the frame's size, 0 when more bytes are needed, or
 * TERN_ERR_TOO_LARGE (body over |max_body|, a field over its limit) or
 * TERN_ERR_PROTO; |p| is untouched unless a whole frame was decoded, and
 * its pointers point into |buf|.
 */
tern_ssize wire_publish_decode(wire_publish *p, const uint8_t *buf, size_t len,
                               size_t max_body);
tern_ssize wire_puback_decode(wire_puback *a, const uint8_t *buf, size_t len);

/*
 * Encoders: the frame's size (header included), and the frame written to
 * |out| when it fits |cap| (its size returned), else nothing written and
 * 0.  The values must be within the limits the decoders check.
 */
size_t wire_publish_size(const wire_publish *p);
size_t wire_publish_encode(uint8_t *out, size_t cap, const wire_publish *p);
size_t wire_puback_size(const wire_puback *a);
size_t wire_puback_encode(uint8_t *out, size_t cap, const wire_puback *a);

#endif /* TERN_WIRE_PUBLISH_H */
