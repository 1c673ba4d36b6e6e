/*
 * Fuzz target for the binary frame codec (lib/wire/frame.c).
 *
 * The input is a byte stream as a peer would send it.  Frames are decoded
 * one after another until the stream ends or a frame is incomplete or bad.
 * Every decoded frame must be canonical and stable: it re-encodes to the
 * very bytes it came from (the decoder accepts only shortest varints and
 * derives MSG flags from the fields), and those bytes decode to an equal
 * frame.  Failed decodes must leave the output frame untouched.  Any
 * violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame_eq.h"
#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger than any input libFuzzer makes by default, so bodies are limited
   by the input, not by max_body. */
#define FUZZ_MAX_BODY ((size_t)1 << 24)

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "frame_fuzz: %s:%d: %s\n", __FILE__, __LINE__,       \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

static uint8_t *copy_of(const uint8_t *p, size_t n) {
  uint8_t *c = malloc(n ? n : 1);
  REQUIRE(c != NULL);
  if (n) {
    memcpy(c, p, n);
  }
  return c;
}

/* decode_copy decodes from a heap copy of exactly |len| bytes (so that a
   read past the end is caught by ASan) and checks that a call that did
   not decode a frame left |f| alone.  Pointers into the copy are not
   kept. */
static tern_ssize decode_copy(const uint8_t *p, size_t len, size_t max_body) {
  wire_frame f, before;
  uint8_t *c = copy_of(p, len);
  tern_ssize r;
  memset(&f, 0x5c, sizeof f);
  memcpy(&before, &f, sizeof f);
  r = wire_frame_decode(&f, c, len, max_body);
  if (r <= 0) {
    REQUIRE(memcmp(&before, &f, sizeof f) == 0);
  }
  free(c);
  return r;
}

static int within(const uint8_t *p, size_t n, const uint8_t *lo,
                  const uint8_t *hi) {
  return n == 0 || (p >= lo && p <= hi && n <= (size_t)(hi - p));
}

/* check_fields: every field the decoder produced is within its limits and
   points into the frame it came from. */
static void check_fields(const wire_frame *f, const uint8_t *lo,
                         const uint8_t *hi) {
  size_t i;
  REQUIRE(f->type >= WIRE_HELLO && f->type <= WIRE_GOAWAY);
  switch (f->type) {
  case WIRE_HELLO:
    REQUIRE(f->u.hello.version == WIRE_VERSION);
    REQUIRE(f->u.hello.keylen >= 1 &&
            f->u.hello.keylen <= TERN_MAX_SESSION_KEY);
    REQUIRE(f->u.hello.tokenlen <= TERN_MAX_TOKEN);
    REQUIRE(within(f->u.hello.key, f->u.hello.keylen, lo, hi));
    REQUIRE(within(f->u.hello.token, f->u.hello.tokenlen, lo, hi));
    break;
  case WIRE_WELCOME:
    REQUIRE(f->u.welcome.version == WIRE_VERSION);
    break;
  case WIRE_MSG: {
    const wire_msg *m = &f->u.msg;
    REQUIRE(m->priority >= TERN_PRIO_LOW && m->priority <= TERN_PRIO_HIGH);
    REQUIRE(m->idlen >= 1 && m->idlen <= TERN_MAX_ID);
    REQUIRE(m->collapse_keylen <= TERN_MAX_COLLAPSE_KEY);
    REQUIRE(m->content_typelen <= TERN_MAX_CONTENT_TYPE);
    REQUIRE(m->nattrs <= TERN_MAX_ATTRS);
    REQUIRE(within(m->id, m->idlen, lo, hi));
    REQUIRE(within(m->collapse_key, m->collapse_keylen, lo, hi));
    REQUIRE(within(m->content_type, m->content_typelen, lo, hi));
    REQUIRE(within(m->payload, m->payloadlen, lo, hi));
    for (i = 0; i < m->nattrs; ++i) {
      REQUIRE(m->attrs[i].keylen >= 1 &&
              m->attrs[i].keylen <= TERN_MAX_ATTR_KEY);
      REQUIRE(m->attrs[i].valuelen <= TERN_MAX_ATTR_VALUE);
      REQUIRE(within(m->attrs[i].key, m->attrs[i].keylen, lo, hi));
      REQUIRE(within(m->attrs[i].value, m->attrs[i].valuelen, lo, hi));
    }
    break;
  }
  case WIRE_GOAWAY:
    REQUIRE(f->u.goaway.textlen <= WIRE_MAX_GOAWAY_TEXT);
    REQUIRE(within(f->u.goaway.text, f->u.goaway.textlen, lo, hi));
    break;
  default:
    break;
  }
}

/* check_frame runs the invariants on frame |f|, decoded from the |n| bytes
   at |src|. */
static void check_frame(const wire_frame *f, const uint8_t *src, size_t n) {
  size_t size = wire_frame_size(f), k, head_len;
  uint8_t *enc, *split;
  wire_frame g;
  uint64_t bodylen = 0;
  tern_ssize hdr;

  check_fields(f, src, src + n);

  /* Canonical: re-encoding gives back the same bytes. */
  REQUIRE(size == n);
  enc = malloc(size);
  REQUIRE(enc != NULL);
  REQUIRE(wire_frame_encode(enc, size, f) == size);
  REQUIRE(memcmp(enc, src, n) == 0);
  REQUIRE(wire_frame_encode(enc, size - 1, f) == 0);

  /* Stable: the re-encoded bytes decode to an equal frame. */
  REQUIRE(wire_frame_decode(&g, enc, size, FUZZ_MAX_BODY) ==
          (tern_ssize)size);
  REQUIRE(frame_eq(f, &g));

  /* A MSG's head and tail, encoded apart, make the same frame. */
  if (f->type == WIRE_MSG) {
    size_t tail = wire_msg_tail_size(&f->u.msg);
    split = malloc(WIRE_MSG_HEAD_MAX + tail);
    REQUIRE(split != NULL);
    head_len = wire_msg_head_encode(split, f->u.msg.seq, f->u.msg.ttl_ms, tail);
    REQUIRE(head_len <= WIRE_MSG_HEAD_MAX);
    REQUIRE(wire_msg_tail_encode(split + head_len, &f->u.msg) == tail);
    REQUIRE(head_len + tail == size);
    REQUIRE(memcmp(split, enc, size) == 0);
    free(split);
  }

  /* Every truncation needs more bytes (checked in full for small frames;
     the decoder reads nothing past the header of a short frame). */
  for (k = 0; k < n; ++k) {
    if (k > 32 && k + 32 < n) {
      k = n - 32;
    }
    REQUIRE(decode_copy(src, k, FUZZ_MAX_BODY) == 0);
  }

  /* max_body: the body length itself is enough, one less is TOO_LARGE. */
  hdr = wire_get_varint(&bodylen, src + 1, src + n);
  REQUIRE(hdr > 0 && 1 + (size_t)hdr + bodylen == n);
  REQUIRE(decode_copy(src, n, (size_t)bodylen) == (tern_ssize)n);
  REQUIRE(decode_copy(src, n, (size_t)bodylen - 1) == TERN_ERR_TOO_LARGE);
  REQUIRE(decode_copy(src, 1 + (size_t)hdr, (size_t)bodylen - 1) ==
          TERN_ERR_TOO_LARGE);
  free(enc);
}

/* check_varint: the varint at the start of the input round-trips. */
static void check_varint(const uint8_t *data, size_t size) {
  uint64_t v = 0;
  uint8_t out[8];
  tern_ssize r = wire_get_varint(&v, data, data + size);
  REQUIRE(r == 0 || r == 1 || r == 2 || r == 4 || r == 8 ||
          r == TERN_ERR_PROTO);
  if (r > 0) {
    REQUIRE(v <= WIRE_VARINT_MAX);
    REQUIRE(wire_varint_len(v) == (size_t)r);
    REQUIRE(wire_put_varint(out, v) == out + r);
    REQUIRE(memcmp(out, data, (size_t)r) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  uint8_t *buf;

  check_varint(data, size);
  /* The stream gets its own exact-size copy so that the last frame sits
     against the end of an allocation. */
  buf = copy_of(data, size);
  while (off < size) {
    wire_frame f, before, g;
    tern_ssize r, small;
    memset(&f, 0xa5, sizeof f);
    memcpy(&before, &f, sizeof f);
    r = wire_frame_decode(&f, buf + off, size - off, FUZZ_MAX_BODY);
    /* A client-side limit only adds TOO_LARGE for bodies over it. */
    small = wire_frame_decode(&g, buf + off, size - off, WIRE_CLIENT_BODY_MAX);
    REQUIRE(small == r || small == TERN_ERR_TOO_LARGE);
    if (r <= 0) {
      REQUIRE(r == 0 || r == TERN_ERR_PROTO || r == TERN_ERR_TOO_LARGE);
      REQUIRE(memcmp(&before, &f, sizeof f) == 0);
      break;
    }
    REQUIRE((size_t)r <= size - off);
    check_frame(&f, buf + off, (size_t)r);
    off += (size_t)r;
  }
  free(buf);
  return 0;
}
