/*
 * frame_eq compares two decoded frames field by field, byte strings by
 * content (not by pointer).  Shared by tests/frame_test.c and the frame
 * fuzz target.
 */
#ifndef TERN_TESTS_FRAME_EQ_H
#define TERN_TESTS_FRAME_EQ_H

#include <string.h>

#include "wire/frame.h"

static inline int frame_bytes_eq(const uint8_t *a, size_t alen,
                                 const uint8_t *b, size_t blen) {
  return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static inline int frame_msg_eq(const wire_msg *a, const wire_msg *b) {
  size_t i;
  if (a->seq != b->seq || a->ttl_ms != b->ttl_ms ||
      a->priority != b->priority || a->nattrs != b->nattrs ||
      !frame_bytes_eq(a->id, a->idlen, b->id, b->idlen) ||
      !frame_bytes_eq(a->collapse_key, a->collapse_keylen, b->collapse_key,
                      b->collapse_keylen) ||
      !frame_bytes_eq(a->content_type, a->content_typelen, b->content_type,
                      b->content_typelen) ||
      !frame_bytes_eq(a->payload, a->payloadlen, b->payload, b->payloadlen)) {
    return 0;
  }
  for (i = 0; i < a->nattrs && i < TERN_MAX_ATTRS; ++i) {
    const wire_attr *x = &a->attrs[i], *y = &b->attrs[i];
    if (!frame_bytes_eq(x->key, x->keylen, y->key, y->keylen) ||
        !frame_bytes_eq(x->value, x->valuelen, y->value, y->valuelen)) {
      return 0;
    }
  }
  return 1;
}

static inline int frame_eq(const wire_frame *a, const wire_frame *b) {
  if (a->type != b->type) {
    return 0;
  }
  switch (a->type) {
  case WIRE_HELLO:
    return a->u.hello.version == b->u.hello.version &&
           a->u.hello.last_seq == b->u.hello.last_seq &&
           a->u.hello.epoch == b->u.hello.epoch &&
           a->u.hello.heartbeat_ms == b->u.hello.heartbeat_ms &&
           frame_bytes_eq(a->u.hello.key, a->u.hello.keylen, b->u.hello.key,
                          b->u.hello.keylen) &&
           frame_bytes_eq(a->u.hello.token, a->u.hello.tokenlen,
                          b->u.hello.token, b->u.hello.tokenlen);
  case WIRE_WELCOME:
    return a->u.welcome.version == b->u.welcome.version &&
           a->u.welcome.epoch == b->u.welcome.epoch &&
           a->u.welcome.flags == b->u.welcome.flags &&
           a->u.welcome.heartbeat_ms == b->u.welcome.heartbeat_ms &&
           a->u.welcome.liveness_ms == b->u.welcome.liveness_ms &&
           a->u.welcome.window == b->u.welcome.window &&
           a->u.welcome.retry_ms == b->u.welcome.retry_ms;
  case WIRE_MSG:
    return frame_msg_eq(&a->u.msg, &b->u.msg);
  case WIRE_ACK:
    return a->u.ack_seq == b->u.ack_seq;
  case WIRE_PING:
  case WIRE_PONG:
    return a->u.ping == b->u.ping;
  case WIRE_DROPPED:
    return a->u.dropped.count == b->u.dropped.count &&
           a->u.dropped.reason == b->u.dropped.reason;
  case WIRE_GOAWAY:
    return a->u.goaway.reason == b->u.goaway.reason &&
           a->u.goaway.retry_ms == b->u.goaway.retry_ms &&
           frame_bytes_eq(a->u.goaway.text, a->u.goaway.textlen,
                          b->u.goaway.text, b->u.goaway.textlen);
  default:
    return 0;
  }
}

#endif
