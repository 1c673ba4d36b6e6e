/*
 * Tests of the binary framing (lib/wire/frame.c) against tern-protocol(7):
 * varints, the byte layout of every frame type, round trips at the limits,
 * every class of malformed input, and MSG head+tail encoding.
 *
 * Malformed frames are built with a small encoder of this file's own, so
 * the decoder is not only checked against the encoder it ships with.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/frame_eq.h"
#include "tap.h"
#include "wire/frame.h"

#define BIG_BODY ((size_t)1 << 20)

static uint8_t pattern[70000];

/* ---- a test-side frame builder ----------------------------------------- */

typedef struct bld {
  uint8_t body[4096];
  size_t n;
} bld;

static void b_byte(bld *b, unsigned v) {
  b->body[b->n++] = (uint8_t)v;
}

static void b_raw(bld *b, const void *p, size_t n) {
  memcpy(b->body + b->n, p, n);
  b->n += n;
}

/* b_varint writes |v| with exactly |width| bytes (1, 2, 4, 8), shortest or
   not. */
static void b_varint_w(bld *b, uint64_t v, unsigned width) {
  static const unsigned prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
  unsigned i;
  for (i = 0; i < width; ++i) {
    unsigned byte = (unsigned)(v >> (8 * (width - 1 - i))) & 0xff;
    b_byte(b, i == 0 ? (byte & 0x3f) | prefix[width] : byte);
  }
}

static void b_varint(bld *b, uint64_t v) {
  b_varint_w(b, v, v < 64 ? 1 : v < 16384 ? 2 : v < (1u << 30) ? 4 : 8);
}

static void b_u64(bld *b, uint64_t v) {
  int i;
  for (i = 56; i >= 0; i -= 8) {
    b_byte(b, (unsigned)(v >> i) & 0xff);
  }
}

static void b_bytes(bld *b, const void *p, size_t n) {
  b_varint(b, n);
  b_raw(b, p, n);
}

/* b_frame wraps the body in a frame header; returns the frame size. */
static size_t b_frame(uint8_t *out, unsigned type, const bld *b) {
  bld h;
  h.n = 0;
  b_byte(&h, type);
  b_varint(&h, b->n);
  memcpy(out, h.body, h.n);
  memcpy(out + h.n, b->body, b->n);
  return h.n + b->n;
}

/* decode_exact decodes from a heap copy of exactly |len| bytes, so that a
   read past the end is caught by ASan and valgrind.  When |untouched| is
   given, it is set to whether |f| kept its previous contents.  The copy is
   freed: pointers in |f| must not be used afterwards. */
static tern_ssize decode_exact(wire_frame *f, const uint8_t *buf, size_t len,
                               size_t max_body, int *untouched) {
  uint8_t *copy = malloc(len ? len : 1);
  wire_frame before;
  tern_ssize r;
  if (copy == NULL) {
    abort();
  }
  if (len) {
    memcpy(copy, buf, len);
  }
  memset(f, 0xa5, sizeof *f);
  memcpy(&before, f, sizeof before);
  r = wire_frame_decode(f, copy, len, max_body);
  if (untouched) {
    *untouched = memcmp(&before, f, sizeof *f) == 0;
  }
  free(copy);
  return r;
}

/* ---- varints ----------------------------------------------------------- */

static void test_varints(void) {
  static const struct {
    uint64_t v;
    size_t len;
    uint8_t enc[8];
  } vec[] = {
      {0, 1, {0x00}},
      {37, 1, {0x25}},
      {63, 1, {0x3f}},
      {64, 2, {0x40, 0x40}},
      {15293, 2, {0x7b, 0xbd}},
      {16383, 2, {0x7f, 0xff}},
      {16384, 4, {0x80, 0x00, 0x40, 0x00}},
      {494878333, 4, {0x9d, 0x7f, 0x3e, 0x7d}},
      {(UINT64_C(1) << 30) - 1, 4, {0xbf, 0xff, 0xff, 0xff}},
      {UINT64_C(1) << 30, 8, {0xc0, 0, 0, 0, 0x40, 0, 0, 0}},
      {UINT64_C(151288809941952652), 8,
       {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}},
      {WIRE_VARINT_MAX, 8, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
  };
  static const struct {
    size_t len;
    uint8_t enc[8];
  } longer[] = {
      {2, {0x40, 0x00}},
      {2, {0x40, 0x3f}},
      {4, {0x80, 0x00, 0x00, 0x00}},
      {4, {0x80, 0x00, 0x3f, 0xff}},
      {8, {0xc0, 0, 0, 0, 0, 0, 0, 0}},
      {8, {0xc0, 0, 0, 0, 0x3f, 0xff, 0xff, 0xff}},
  };
  size_t i, k;
  char what[96];

  for (i = 0; i < sizeof vec / sizeof vec[0]; ++i) {
    uint8_t buf[16];
    uint64_t v = 12345;
    uint8_t *end;
    int short_ok = 1;
    snprintf(what, sizeof what, "varint %" PRIu64, vec[i].v);
    CHECK_INT(wire_varint_len(vec[i].v), vec[i].len, what);
    memset(buf, 0xee, sizeof buf);
    end = wire_put_varint(buf, vec[i].v);
    CHECK_INT(end - buf, vec[i].len, "put returns the byte after it");
    CHECK_MEM(buf, vec[i].len, vec[i].enc, vec[i].len, "put writes RFC 9000");
    CHECK(buf[vec[i].len] == 0xee, "put writes nothing past the varint");
    buf[vec[i].len] = 0x01; /* a following byte must be left alone */
    CHECK_INT(wire_get_varint(&v, buf, buf + vec[i].len + 1), vec[i].len,
              "get takes the varint's bytes");
    CHECK(v == vec[i].v, "get reads %" PRIu64, vec[i].v);
    for (k = 0; k < vec[i].len; ++k) {
      uint64_t w = 777;
      if (wire_get_varint(&w, buf, buf + k) != 0 || w != 777) {
        short_ok = 0;
      }
    }
    CHECK(short_ok, "every truncation of varint %" PRIu64 " needs more",
          vec[i].v);
  }

  for (i = 0; i < sizeof longer / sizeof longer[0]; ++i) {
    uint64_t v = 777;
    snprintf(what, sizeof what, "non-shortest %zu-byte varint is PROTO",
             longer[i].len);
    CHECK_INT(wire_get_varint(&v, longer[i].enc, longer[i].enc + longer[i].len),
              TERN_ERR_PROTO, what);
    CHECK(v == 777, "a refused varint leaves the value alone");
  }
  {
    uint8_t one = 0x05;
    uint64_t v = 1;
    CHECK_INT(wire_get_varint(&v, &one, &one), 0, "empty range needs more");
  }
}

/* ---- sample frames ----------------------------------------------------- */

static wire_frame hello(const char *key, const char *token) {
  wire_frame f;
  memset(&f, 0, sizeof f);
  f.type = WIRE_HELLO;
  f.u.hello.version = WIRE_VERSION;
  f.u.hello.last_seq = 300;
  f.u.hello.epoch = UINT64_C(0x0102030405060708);
  f.u.hello.heartbeat_ms = 4000;
  f.u.hello.key = (const uint8_t *)key;
  f.u.hello.keylen = strlen(key);
  f.u.hello.token = (const uint8_t *)token;
  f.u.hello.tokenlen = strlen(token);
  return f;
}

static wire_frame welcome(void) {
  wire_frame f;
  memset(&f, 0, sizeof f);
  f.type = WIRE_WELCOME;
  f.u.welcome.version = WIRE_VERSION;
  f.u.welcome.epoch = UINT64_C(0xfedcba9876543210);
  f.u.welcome.flags = WIRE_WELCOME_RESUMED | WIRE_WELCOME_EXISTED;
  f.u.welcome.heartbeat_ms = 4000;
  f.u.welcome.liveness_ms = 7000;
  f.u.welcome.window = 256;
  f.u.welcome.retry_ms = 0;
  return f;
}

static wire_frame msg_full(void) {
  wire_frame f;
  memset(&f, 0, sizeof f);
  f.type = WIRE_MSG;
  f.u.msg.seq = 1;
  f.u.msg.ttl_ms = 60000;
  f.u.msg.priority = TERN_PRIO_HIGH;
  f.u.msg.id = (const uint8_t *)"m1";
  f.u.msg.idlen = 2;
  f.u.msg.collapse_key = (const uint8_t *)"score";
  f.u.msg.collapse_keylen = 5;
  f.u.msg.content_type = (const uint8_t *)"text/plain";
  f.u.msg.content_typelen = 10;
  f.u.msg.nattrs = 1;
  f.u.msg.attrs[0].key = (const uint8_t *)"lang";
  f.u.msg.attrs[0].keylen = 4;
  f.u.msg.attrs[0].value = (const uint8_t *)"en";
  f.u.msg.attrs[0].valuelen = 2;
  f.u.msg.payload = (const uint8_t *)"hi";
  f.u.msg.payloadlen = 2;
  return f;
}

static wire_frame msg_min(uint64_t seq, size_t payloadlen) {
  wire_frame f;
  memset(&f, 0, sizeof f);
  f.type = WIRE_MSG;
  f.u.msg.seq = seq;
  f.u.msg.priority = TERN_PRIO_LOW;
  f.u.msg.id = pattern;
  f.u.msg.idlen = 1;
  f.u.msg.payload = pattern;
  f.u.msg.payloadlen = payloadlen;
  return f;
}

static wire_frame simple(uint8_t type, uint64_t a, uint64_t b) {
  wire_frame f;
  memset(&f, 0, sizeof f);
  f.type = type;
  switch (type) {
  case WIRE_ACK:
    f.u.ack_seq = a;
    break;
  case WIRE_PING:
  case WIRE_PONG:
    f.u.ping = a;
    break;
  case WIRE_DROPPED:
    f.u.dropped.count = a;
    f.u.dropped.reason = b;
    break;
  default:
    break;
  }
  return f;
}

static wire_frame goaway(uint64_t reason, uint64_t retry_ms, size_t textlen) {
  wire_frame f;
  memset(&f, 0, sizeof f);
  f.type = WIRE_GOAWAY;
  f.u.goaway.reason = reason;
  f.u.goaway.retry_ms = retry_ms;
  f.u.goaway.text = pattern;
  f.u.goaway.textlen = textlen;
  return f;
}

/* ---- round trips ------------------------------------------------------- */

/*
 * roundtrip encodes |f|, decodes it back, and checks: sizes agree, the
 * frame is equal, re-encoding gives the same bytes, every truncation needs
 * more bytes and leaves the output alone, a max_body one short is
 * TOO_LARGE, and encoding into one byte too few writes nothing.
 */
static void roundtrip(const wire_frame *f, const char *what) {
  size_t size = wire_frame_size(f);
  uint8_t *buf = malloc(size), *again = malloc(size + 1);
  wire_frame g, h;
  size_t n, k, body;
  uint64_t bodylen = 0;
  int ok = 1, untouched;
  tern_ssize hdr;

  if (buf == NULL || again == NULL) {
    abort();
  }
  n = wire_frame_encode(buf, size, f);
  CHECK(n == size && n > 0, "%s: encode gives wire_frame_size (%zu)", what,
        size);
  /* buf holds exactly the frame: a read past it is caught by ASan. */
  CHECK_INT(wire_frame_decode(&g, buf, n, BIG_BODY), n, what);
  CHECK(frame_eq(f, &g), "%s: decodes to the same frame", what);
  memset(again, 0, size + 1);
  CHECK(wire_frame_encode(again, size + 1, &g) == n &&
            memcmp(again, buf, n) == 0,
        "%s: re-encodes to the same bytes", what);

  for (k = 0; k < n; ++k) {
    if (k > 64 && k < n - 64) {
      k = n - 64; /* the middle of big bodies is never read when short */
    }
    if (decode_exact(&h, buf, k, BIG_BODY, &untouched) != 0 || !untouched) {
      ok = 0;
    }
  }
  CHECK(ok, "%s: every truncation needs more and leaves the frame alone",
        what);

  hdr = wire_get_varint(&bodylen, buf + 1, buf + n);
  body = (size_t)bodylen;
  CHECK(hdr > 0 && 1 + (size_t)hdr + body == n, "%s: header is shortest",
        what);
  CHECK_INT(decode_exact(&h, buf, n, body, NULL), n,
            "max_body equal to the body is enough");
  CHECK_INT(decode_exact(&h, buf, n, body - 1, &untouched), TERN_ERR_TOO_LARGE,
            "max_body one short is TOO_LARGE");
  CHECK(untouched, "TOO_LARGE leaves the frame alone");
  CHECK_INT(decode_exact(&h, buf, 1 + (size_t)hdr, body - 1, NULL),
            TERN_ERR_TOO_LARGE, "TOO_LARGE is known from the header alone");

  memset(again, 0x5a, size + 1);
  CHECK_INT(wire_frame_encode(again, n - 1, f), 0,
            "encode into one byte too few fails");
  for (k = 0; k < n && again[k] == 0x5a; ++k) {
  }
  CHECK(k == n, "a failed encode writes nothing");
  free(buf);
  free(again);
}

/* known checks the exact bytes of |f| against the layout in the spec. */
static void known(const wire_frame *f, const uint8_t *want, size_t wantlen,
                  const char *what) {
  uint8_t buf[256];
  wire_frame g;
  size_t n = wire_frame_encode(buf, sizeof buf, f);
  CHECK_MEM(buf, n, want, wantlen, what);
  CHECK_INT(wire_frame_decode(&g, want, wantlen, BIG_BODY), wantlen,
            "the spec's bytes decode");
  CHECK(frame_eq(f, &g), "%s decodes to its frame", what);
  roundtrip(f, what);
}

static void test_known_frames(void) {
  static const uint8_t hello_bytes[] = {
      0x01, 0x13, 0x01, 0x41, 0x2c, 1, 2, 3, 4, 5, 6, 7, 8,
      0x4f, 0xa0, 0x04, 'd', 'e', 'v', '1', 0x00};
  static const uint8_t welcome_bytes[] = {
      0x02, 0x11, 0x01, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
      0x03, 0x4f, 0xa0, 0x5b, 0x58, 0x41, 0x00, 0x00};
  static const uint8_t msg_bytes[] = {
      0x03, 0x25, 0x01, 0x80, 0x00, 0xea, 0x60, 0x0e, 0x02, 'm', '1',
      0x05, 's', 'c', 'o', 'r', 'e', 0x0a, 't', 'e', 'x', 't', '/',
      'p', 'l', 'a', 'i', 'n', 0x01, 0x04, 'l', 'a', 'n', 'g', 0x02,
      'e', 'n', 'h', 'i'};
  static const uint8_t ack_bytes[] = {0x04, 0x02, 0x40, 0x40};
  static const uint8_t ping_bytes[] = {0x05, 0x08, 0, 0, 0, 0,
                                       0, 0, 0x12, 0x34};
  static const uint8_t pong_bytes[] = {0x06, 0x08, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff};
  static const uint8_t dropped_bytes[] = {0x07, 0x02, 0x03, 0x02};
  static const uint8_t goaway_bytes[] = {0x08, 0x06, 0x01, 0x45,
                                         0xdc, 0x02, 'o', 'k'};
  uint8_t stream[512];
  size_t n = 0, off = 0, count = 0;
  wire_frame f, g;
  uint8_t types[8];

  f = hello("dev1", "");
  known(&f, hello_bytes, sizeof hello_bytes, "HELLO layout");
  f = welcome();
  known(&f, welcome_bytes, sizeof welcome_bytes, "WELCOME layout");
  f = msg_full();
  known(&f, msg_bytes, sizeof msg_bytes, "MSG layout");
  f = simple(WIRE_ACK, 64, 0);
  known(&f, ack_bytes, sizeof ack_bytes, "ACK layout");
  f = simple(WIRE_PING, 0x1234, 0);
  known(&f, ping_bytes, sizeof ping_bytes, "PING layout");
  f = simple(WIRE_PONG, UINT64_MAX, 0);
  known(&f, pong_bytes, sizeof pong_bytes, "PONG layout");
  f = simple(WIRE_DROPPED, 3, TERN_DROP_OVERFLOW);
  known(&f, dropped_bytes, sizeof dropped_bytes, "DROPPED layout");
  f = goaway(TERN_GOAWAY_PROTO, 1500, 0);
  f.u.goaway.text = (const uint8_t *)"ok";
  f.u.goaway.textlen = 2;
  known(&f, goaway_bytes, sizeof goaway_bytes, "GOAWAY layout");

  /* Decoded fields point into the buffer, they are not copied. */
  CHECK_INT(wire_frame_decode(&g, msg_bytes, sizeof msg_bytes, BIG_BODY),
            sizeof msg_bytes, "MSG decodes");
  CHECK(g.u.msg.id == msg_bytes + 9 && g.u.msg.payload == msg_bytes + 37,
        "decoded fields point into the input");

  /* A stream of frames decodes one frame per call. */
#define APPEND(b)                                                           \
  do {                                                                      \
    memcpy(stream + n, b, sizeof b);                                        \
    n += sizeof b;                                                          \
  } while (0)
  APPEND(hello_bytes);
  APPEND(welcome_bytes);
  APPEND(msg_bytes);
  APPEND(ack_bytes);
  APPEND(ping_bytes);
  APPEND(pong_bytes);
  APPEND(dropped_bytes);
  APPEND(goaway_bytes);
#undef APPEND
  while (off < n && count < 8) {
    tern_ssize r = wire_frame_decode(&g, stream + off, n - off, BIG_BODY);
    if (r <= 0) {
      break;
    }
    types[count++] = g.type;
    off += (size_t)r;
  }
  CHECK(off == n && count == 8 && types[0] == WIRE_HELLO &&
            types[2] == WIRE_MSG && types[7] == WIRE_GOAWAY,
        "a stream of eight frames decodes frame by frame");
}

static void test_boundaries(void) {
  static const uint64_t nums[] = {0,
                                  1,
                                  63,
                                  64,
                                  16383,
                                  16384,
                                  (UINT64_C(1) << 30) - 1,
                                  UINT64_C(1) << 30,
                                  WIRE_VARINT_MAX};
  static const size_t payloads[] = {0, 1, 40, 41, 16300, 16400, 65536};
  size_t i, j;
  char what[128];
  wire_frame f;

  for (i = 0; i < sizeof nums / sizeof nums[0]; ++i) {
    uint64_t v = nums[i];
    snprintf(what, sizeof what, "HELLO numbers %" PRIu64, v);
    f = hello("k", "t");
    f.u.hello.last_seq = v;
    f.u.hello.heartbeat_ms = v;
    f.u.hello.epoch = v;
    roundtrip(&f, what);
    snprintf(what, sizeof what, "WELCOME numbers %" PRIu64, v);
    f = welcome();
    f.u.welcome.flags = v;
    f.u.welcome.heartbeat_ms = v;
    f.u.welcome.liveness_ms = v;
    f.u.welcome.window = v;
    f.u.welcome.retry_ms = v;
    roundtrip(&f, what);
    snprintf(what, sizeof what, "MSG seq/ttl %" PRIu64, v);
    f = msg_full();
    f.u.msg.seq = v;
    f.u.msg.ttl_ms = v;
    roundtrip(&f, what);
    snprintf(what, sizeof what, "ACK %" PRIu64, v);
    f = simple(WIRE_ACK, v, 0);
    roundtrip(&f, what);
    snprintf(what, sizeof what, "PING %" PRIu64, v);
    f = simple(WIRE_PING, v, 0);
    roundtrip(&f, what);
    snprintf(what, sizeof what, "DROPPED %" PRIu64, v);
    f = simple(WIRE_DROPPED, v, v);
    roundtrip(&f, what);
    snprintf(what, sizeof what, "GOAWAY %" PRIu64, v);
    f = goaway(v, v, 3);
    roundtrip(&f, what);
  }

  /* Field lengths at their limits; a 1024-byte token needs a 2-byte
     length, and the HELLO body then a 2-byte length too. */
  f = hello("k", "");
  f.u.hello.key = pattern;
  f.u.hello.keylen = TERN_MAX_SESSION_KEY;
  f.u.hello.token = pattern;
  f.u.hello.tokenlen = TERN_MAX_TOKEN;
  roundtrip(&f, "HELLO with the longest key and token");
  CHECK(wire_frame_size(&f) <= 1 + 2 + WIRE_CLIENT_BODY_MAX,
        "the largest HELLO fits WIRE_CLIENT_BODY_MAX");
  {
    static const size_t lens[] = {0, 1, 63, 64};
    for (i = 0; i < 4; ++i) {
      f.u.hello.tokenlen = lens[i];
      f.u.hello.keylen = lens[i] + 1;
      snprintf(what, sizeof what, "HELLO token %zu, key %zu", lens[i],
               lens[i] + 1);
      roundtrip(&f, what);
    }
  }

  f = msg_full();
  f.u.msg.id = pattern;
  f.u.msg.idlen = TERN_MAX_ID;
  f.u.msg.collapse_key = pattern;
  f.u.msg.collapse_keylen = TERN_MAX_COLLAPSE_KEY;
  f.u.msg.content_type = pattern;
  f.u.msg.content_typelen = TERN_MAX_CONTENT_TYPE;
  f.u.msg.nattrs = TERN_MAX_ATTRS;
  for (i = 0; i < TERN_MAX_ATTRS; ++i) {
    f.u.msg.attrs[i].key = pattern + i;
    f.u.msg.attrs[i].keylen = i == 0 ? 1 : TERN_MAX_ATTR_KEY;
    f.u.msg.attrs[i].value = pattern + 100 + i;
    f.u.msg.attrs[i].valuelen = i == 0 ? 0 : TERN_MAX_ATTR_VALUE;
  }
  f.u.msg.payload = pattern;
  f.u.msg.payloadlen = 1000;
  roundtrip(&f, "MSG with every field at its limit");

  for (i = 0; i < 3; ++i) {
    for (j = 0; j < 4; ++j) {
      f = msg_full();
      f.u.msg.priority = (int)i;
      f.u.msg.collapse_keylen = (j & 1) ? 5 : 0;
      f.u.msg.content_typelen = (j & 2) ? 10 : 0;
      f.u.msg.nattrs = j;
      f.u.msg.attrs[1] = f.u.msg.attrs[0];
      f.u.msg.attrs[2] = f.u.msg.attrs[0];
      snprintf(what, sizeof what, "MSG priority %zu, optional fields %zu", i,
               j);
      roundtrip(&f, what);
    }
  }
  for (i = 0; i < sizeof payloads / sizeof payloads[0]; ++i) {
    f = msg_min(7, payloads[i]);
    snprintf(what, sizeof what, "MSG payload %zu (body %zu)", payloads[i],
             wire_frame_size(&f));
    roundtrip(&f, what);
  }
  /* Bodies of exactly 63, 64, 16383 and 16384 bytes. */
  {
    static const size_t bodies[] = {63, 64, 16383, 16384};
    for (i = 0; i < 4; ++i) {
      f = msg_min(1, 0);
      f.u.msg.payloadlen = bodies[i] - (wire_frame_size(&f) - 2);
      snprintf(what, sizeof what, "MSG body of %zu bytes", bodies[i]);
      CHECK_INT(wire_frame_size(&f) - 1 - wire_varint_len(bodies[i]),
                bodies[i], what);
      roundtrip(&f, what);
    }
  }

  f = goaway(TERN_GOAWAY_RESTART, 0, WIRE_MAX_GOAWAY_TEXT);
  roundtrip(&f, "GOAWAY with the longest text");
  f = goaway(TERN_GOAWAY_RESTART, 0, 0);
  roundtrip(&f, "GOAWAY without text");

  memset(&f, 0, sizeof f);
  f.type = 0x09;
  CHECK_INT(wire_frame_size(&f), 0, "size of an unknown type is 0");
  CHECK_INT(wire_frame_encode(pattern, sizeof pattern, &f), 0,
            "an unknown type is not encoded");
}

/* ---- malformed input --------------------------------------------------- */

/* bad decodes a frame and expects |want|; when that is not a whole frame,
   the output must be left alone. */
static void bad(const uint8_t *buf, size_t len, size_t max_body,
                tern_ssize want, const char *what) {
  wire_frame f;
  int untouched = 0;
  CHECK_INT(decode_exact(&f, buf, len, max_body, &untouched), want, what);
  if (want <= 0) {
    CHECK(untouched, "%s: the frame is left alone", what);
  }
}

/* badb frames the builder's body as |type| and expects |want|. */
static void badb(unsigned type, const bld *b, tern_ssize want,
                 const char *what) {
  uint8_t buf[4200];
  size_t n = b_frame(buf, type, b);
  bad(buf, n, BIG_BODY, want, what);
}

/* Bodies of valid frames, for the builder. */
static void hello_body(bld *b, size_t keylen, size_t tokenlen) {
  b->n = 0;
  b_varint(b, WIRE_VERSION);
  b_varint(b, 5);
  b_u64(b, 9);
  b_varint(b, 0);
  b_bytes(b, pattern, keylen);
  b_bytes(b, pattern, tokenlen);
}

static void welcome_body(bld *b, uint64_t version) {
  b->n = 0;
  b_varint(b, version);
  b_u64(b, 42);
  b_varint(b, 0);
  b_varint(b, 4000);
  b_varint(b, 7000);
  b_varint(b, 256);
  b_varint(b, 0);
}

static void test_malformed_header(void) {
  static const uint8_t unknown[] = {0x00, 0x09, 0x7f, 0x80, 0xff};
  uint8_t buf[16] = {0};
  size_t i;
  char what[64];

  bad(buf, 0, BIG_BODY, 0, "empty input needs more");
  for (i = 0; i < sizeof unknown; ++i) {
    buf[0] = unknown[i];
    buf[1] = 0x01;
    buf[2] = 0x00;
    snprintf(what, sizeof what, "type 0x%02x is PROTO", unknown[i]);
    bad(buf, 3, BIG_BODY, TERN_ERR_PROTO, what);
    bad(buf, 1, BIG_BODY, TERN_ERR_PROTO,
        "an unknown type is PROTO from its first byte");
  }

  /* Body length: non-shortest, truncated, over max_body. */
  memcpy(buf, "\x04\x40\x01\x05", 4);
  bad(buf, 4, BIG_BODY, TERN_ERR_PROTO, "non-shortest body length is PROTO");
  bad(buf, 2, BIG_BODY, 0, "a truncated body length needs more");
  memcpy(buf, "\x04\x80\x00\x00\x01\x05", 6);
  bad(buf, 6, BIG_BODY, TERN_ERR_PROTO, "4-byte length of 1 is PROTO");
  bad(buf, 4, BIG_BODY, 0, "a 4-byte length cut short needs more");

  memcpy(buf, "\x01\x48\x01", 3); /* HELLO, body 2049 */
  bad(buf, 3, WIRE_CLIENT_BODY_MAX, TERN_ERR_TOO_LARGE,
      "a body over max_body is TOO_LARGE before it arrives");
  memcpy(buf, "\x01\x48\x00", 3); /* HELLO, body 2048 */
  bad(buf, 3, WIRE_CLIENT_BODY_MAX, 0, "a body at max_body needs more");
  memcpy(buf, "\x04\x01\x05", 3);
  bad(buf, 3, 0, TERN_ERR_TOO_LARGE, "max_body 0 refuses any body");
  memcpy(buf, "\x03\xff\xff\xff\xff\xff\xff\xff\xff", 9);
  bad(buf, 9, BIG_BODY, TERN_ERR_TOO_LARGE, "the largest body length");
  bad(buf, 9, SIZE_MAX, 0, "the largest body length, unlimited: needs more");
  bad(buf, 5, BIG_BODY, 0, "8-byte length cut short needs more");
}

static void test_malformed_bodies(void) {
  bld b;
  uint8_t buf[64];

  /* Empty and short bodies: a field runs past the body. */
  b.n = 0;
  badb(WIRE_ACK, &b, TERN_ERR_PROTO, "empty ACK body is PROTO");
  badb(WIRE_PING, &b, TERN_ERR_PROTO, "empty PING body is PROTO");
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "empty HELLO body is PROTO");
  badb(WIRE_WELCOME, &b, TERN_ERR_PROTO, "empty WELCOME body is PROTO");
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "empty MSG body is PROTO");
  badb(WIRE_DROPPED, &b, TERN_ERR_PROTO, "empty DROPPED body is PROTO");
  badb(WIRE_GOAWAY, &b, TERN_ERR_PROTO, "empty GOAWAY body is PROTO");
  b_varint(&b, 3);
  badb(WIRE_DROPPED, &b, TERN_ERR_PROTO, "DROPPED without reason is PROTO");
  b_varint(&b, 0);
  badb(WIRE_GOAWAY, &b, TERN_ERR_PROTO, "GOAWAY without text is PROTO");
  b.n = 0;
  b_raw(&b, "\x01\x02\x03\x04\x05\x06\x07", 7);
  badb(WIRE_PING, &b, TERN_ERR_PROTO, "PING with 7 bytes is PROTO");
  b_raw(&b, "\x08\x09", 2);
  badb(WIRE_PONG, &b, TERN_ERR_PROTO, "PONG with 9 bytes is PROTO");

  /* A varint that would run past the body, though the bytes are there. */
  memcpy(buf, "\x04\x01\x40\x40", 4);
  bad(buf, 4, BIG_BODY, TERN_ERR_PROTO,
      "a varint running past its body is PROTO");
  memcpy(buf, "\x04\x02\x40\x05", 4);
  bad(buf, 4, BIG_BODY, TERN_ERR_PROTO, "non-shortest ACK seq is PROTO");

  /* Leftover bytes after the last field. */
  b.n = 0;
  b_varint(&b, 5);
  b_byte(&b, 0);
  badb(WIRE_ACK, &b, TERN_ERR_PROTO, "ACK with a byte left over is PROTO");
  b_byte(&b, 0);
  badb(WIRE_DROPPED, &b, TERN_ERR_PROTO, "DROPPED with leftover is PROTO");
  b.n = 0;
  b_varint(&b, 1);
  b_varint(&b, 0);
  b_bytes(&b, "x", 1);
  b_byte(&b, 0);
  badb(WIRE_GOAWAY, &b, TERN_ERR_PROTO, "GOAWAY with leftover is PROTO");
  hello_body(&b, 3, 3);
  badb(WIRE_HELLO, &b, (tern_ssize)(2 + b.n), "the HELLO body is valid");
  b_byte(&b, 0);
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO with leftover is PROTO");
  welcome_body(&b, WIRE_VERSION);
  b_byte(&b, 0);
  badb(WIRE_WELCOME, &b, TERN_ERR_PROTO, "WELCOME with leftover is PROTO");

  /* Lengths that lie: the field runs past the body. */
  hello_body(&b, 3, 0);
  b.n -= 1; /* drop the token length */
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO without token is PROTO");
  hello_body(&b, 3, 10);
  b.n -= 1;
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO token past the body is PROTO");
  hello_body(&b, 10, 0);
  b.n -= 5;
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO key past the body is PROTO");
  b.n = 0;
  b_varint(&b, 1);
  b_varint(&b, 0);
  b_varint(&b, 5);
  b_raw(&b, "abcd", 4);
  badb(WIRE_GOAWAY, &b, TERN_ERR_PROTO, "GOAWAY text past the body is PROTO");
  welcome_body(&b, WIRE_VERSION);
  b.n -= 1;
  badb(WIRE_WELCOME, &b, TERN_ERR_PROTO, "WELCOME cut short is PROTO");
  b.n = 0;
  b_varint(&b, WIRE_VERSION);
  b_varint(&b, 0);
  b_raw(&b, "\1\2\3\4\5\6\7", 7);
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO epoch past the body is PROTO");
  b.n = 0;
  b_varint(&b, WIRE_VERSION);
  b_raw(&b, "\1\2\3\4\5\6\7", 7);
  badb(WIRE_WELCOME, &b, TERN_ERR_PROTO,
       "WELCOME epoch past the body is PROTO");

  /* Values out of range. */
  welcome_body(&b, 2);
  badb(WIRE_WELCOME, &b, TERN_ERR_PROTO, "WELCOME version 2 is PROTO");
  hello_body(&b, 3, 0);
  b.body[0] = 0;
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO version 0 is PROTO");
  b.body[0] = 2;
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO version 2 is PROTO");
  hello_body(&b, 0, 0);
  badb(WIRE_HELLO, &b, TERN_ERR_PROTO, "HELLO with an empty key is PROTO");

  /* Fields over their limits. */
  hello_body(&b, TERN_MAX_SESSION_KEY + 1, 0);
  badb(WIRE_HELLO, &b, TERN_ERR_TOO_LARGE, "HELLO key over limit");
  hello_body(&b, 1, TERN_MAX_TOKEN + 1);
  badb(WIRE_HELLO, &b, TERN_ERR_TOO_LARGE, "HELLO token over limit");
  hello_body(&b, TERN_MAX_SESSION_KEY + 1, 0);
  b.n = 13; /* the key's length is read, not its bytes */
  badb(WIRE_HELLO, &b, TERN_ERR_TOO_LARGE,
       "a field over its limit is TOO_LARGE even past the body");
  b.n = 0;
  b_varint(&b, 1);
  b_varint(&b, 0);
  b_bytes(&b, pattern, WIRE_MAX_GOAWAY_TEXT + 1);
  badb(WIRE_GOAWAY, &b, TERN_ERR_TOO_LARGE, "GOAWAY text over limit");
}

/* msg_body builds a MSG body field by field; |bad_field| picks the one to
   break, |how| says how. */
enum { F_NONE, F_FLAGS, F_ID, F_CKEY, F_CTYPE, F_NATTRS, F_AKEY, F_AVAL };

static void msg_body(bld *b, int bad_field, uint64_t how) {
  uint64_t flags = TERN_PRIO_NORMAL | WIRE_MSG_HAS_COLLAPSE_KEY |
                   WIRE_MSG_HAS_CONTENT_TYPE;
  b->n = 0;
  b_varint(b, 10);
  b_varint(b, 0);
  b_varint(b, bad_field == F_FLAGS ? how : flags);
  b_bytes(b, pattern, bad_field == F_ID ? how : 4);
  b_bytes(b, pattern, bad_field == F_CKEY ? how : 4);
  b_bytes(b, pattern, bad_field == F_CTYPE ? how : 4);
  b_varint(b, bad_field == F_NATTRS ? how : 1);
  b_bytes(b, pattern, bad_field == F_AKEY ? how : 1);
  b_bytes(b, pattern, bad_field == F_AVAL ? how : 0);
  b_raw(b, "payload", 7);
}

static void test_malformed_msg(void) {
  bld b;
  size_t full;

  msg_body(&b, F_NONE, 0);
  badb(WIRE_MSG, &b, (tern_ssize)(2 + b.n), "the MSG body is valid");
  full = b.n;
  b.n = full - 7;
  badb(WIRE_MSG, &b, (tern_ssize)(2 + b.n),
       "a MSG with an empty payload is valid");
  b.n -= 1;
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "a MSG attr cut short is PROTO");

  msg_body(&b, F_FLAGS, TERN_PRIO_HIGH + 1);
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG priority 3 is PROTO");
  msg_body(&b, F_FLAGS, 0x10);
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG unknown flag 0x10 is PROTO");
  msg_body(&b, F_FLAGS, 64 | 1);
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG unknown flag 0x40 is PROTO");

  msg_body(&b, F_ID, 0);
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG empty id is PROTO");
  msg_body(&b, F_ID, TERN_MAX_ID + 1);
  badb(WIRE_MSG, &b, TERN_ERR_TOO_LARGE, "MSG id over limit");
  msg_body(&b, F_CKEY, 0);
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG empty collapse key is PROTO");
  msg_body(&b, F_CKEY, TERN_MAX_COLLAPSE_KEY + 1);
  badb(WIRE_MSG, &b, TERN_ERR_TOO_LARGE, "MSG collapse key over limit");
  msg_body(&b, F_CTYPE, 0);
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG empty content type is PROTO");
  msg_body(&b, F_CTYPE, TERN_MAX_CONTENT_TYPE + 1);
  badb(WIRE_MSG, &b, TERN_ERR_TOO_LARGE, "MSG content type over limit");
  {
    size_t i, nattrs;
    for (nattrs = TERN_MAX_ATTRS; nattrs <= TERN_MAX_ATTRS + 1; ++nattrs) {
      b.n = 0;
      b_varint(&b, 1);
      b_varint(&b, 0);
      b_varint(&b, TERN_PRIO_LOW);
      b_bytes(&b, "i", 1);
      b_varint(&b, nattrs);
      for (i = 0; i < nattrs; ++i) {
        b_bytes(&b, "k", 1);
        b_bytes(&b, "v", 1);
      }
      badb(WIRE_MSG, &b,
           nattrs > TERN_MAX_ATTRS ? TERN_ERR_TOO_LARGE
                                   : (tern_ssize)(2 + b.n),
           nattrs > TERN_MAX_ATTRS ? "MSG with 9 attrs is TOO_LARGE"
                                   : "MSG with 8 attrs is valid");
    }
  }
  msg_body(&b, F_NATTRS, 2);
  b.n -= 7; /* no payload to take the second attr from */
  badb(WIRE_MSG, &b, TERN_ERR_PROTO,
       "MSG with an attr count that lies is PROTO");
  msg_body(&b, F_AKEY, 0);
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG empty attr key is PROTO");
  msg_body(&b, F_AKEY, TERN_MAX_ATTR_KEY + 1);
  badb(WIRE_MSG, &b, TERN_ERR_TOO_LARGE, "MSG attr key over limit");
  msg_body(&b, F_AVAL, TERN_MAX_ATTR_VALUE);
  badb(WIRE_MSG, &b, (tern_ssize)(3 + b.n), "MSG attr value at its limit");
  msg_body(&b, F_AVAL, TERN_MAX_ATTR_VALUE + 1);
  badb(WIRE_MSG, &b, TERN_ERR_TOO_LARGE, "MSG attr value over limit");
  msg_body(&b, F_ID, 100);
  b.n = 5; /* seq, ttl, flags, the id's 2-byte length: nothing more */
  badb(WIRE_MSG, &b, TERN_ERR_TOO_LARGE,
       "a MSG id over its limit is TOO_LARGE even past the body");
  msg_body(&b, F_ID, 30);
  b.n = 10;
  badb(WIRE_MSG, &b, TERN_ERR_PROTO, "MSG id past the body is PROTO");
}

/* ---- MSG head + tail --------------------------------------------------- */

static void test_head_tail(void) {
  static const uint64_t nums[] = {0,     63,         64,
                                  16383, 16384,      (UINT64_C(1) << 30) - 1,
                                  UINT64_C(1) << 30, WIRE_VARINT_MAX};
  static const size_t bodies[] = {10, 63, 64, 16383, 16384, 20000};
  static uint8_t full[21000], split[21000];
  size_t i, j, k;
  int all_equal = 1, sizes_ok = 1, decoded = 1;

  for (i = 0; i < sizeof nums / sizeof nums[0]; ++i) {
    for (j = 0; j < sizeof nums / sizeof nums[0]; ++j) {
      for (k = 0; k < sizeof bodies / sizeof bodies[0]; ++k) {
        wire_frame f = msg_full(), g;
        size_t tail, head, n, fixed;
        f.u.msg.seq = nums[i];
        f.u.msg.ttl_ms = nums[j];
        f.u.msg.payloadlen = 0;
        fixed = wire_varint_len(nums[i]) + wire_varint_len(nums[j]) +
                wire_msg_tail_size(&f.u.msg);
        /* Pick the payload so that the body has the wanted length. */
        f.u.msg.payload = pattern;
        f.u.msg.payloadlen = bodies[k] > fixed ? bodies[k] - fixed : 0;
        tail = wire_msg_tail_size(&f.u.msg);
        n = wire_frame_encode(full, sizeof full, &f);
        memset(split, 0, sizeof split);
        head = wire_msg_head_encode(split, f.u.msg.seq, f.u.msg.ttl_ms, tail);
        if (head > WIRE_MSG_HEAD_MAX ||
            wire_msg_tail_encode(split + head, &f.u.msg) != tail ||
            head + tail != n) {
          sizes_ok = 0;
        }
        if (memcmp(full, split, n) != 0) {
          all_equal = 0;
        }
        if (wire_frame_decode(&g, split, head + tail, BIG_BODY) !=
                (tern_ssize)n ||
            !frame_eq(&f, &g)) {
          decoded = 0;
        }
      }
    }
  }
  CHECK(sizes_ok, "head and tail sizes add up to the frame size");
  CHECK(all_equal, "head + tail equals wire_frame_encode, at every varint "
                   "boundary of seq, ttl_ms and body length");
  CHECK(decoded, "head + tail decodes to the message");
  {
    uint8_t head[WIRE_MSG_HEAD_MAX];
    CHECK_INT(wire_msg_head_encode(head, WIRE_VARINT_MAX, WIRE_VARINT_MAX,
                                   (size_t)1 << 31),
              WIRE_MSG_HEAD_MAX, "the largest head is WIRE_MSG_HEAD_MAX");
  }
}

/* The plain-tail fast path the hub publishes with writes exactly what the
   general encoder writes for a message without content type or attrs. */
static void test_plain_tail(void) {
  static const size_t idlens[] = {1, 32, 63, TERN_MAX_ID};
  static const size_t cklens[] = {0, 1, 63, TERN_MAX_COLLAPSE_KEY};
  static const size_t payloads[] = {0, 1, 64, 16384, 65536};
  static uint8_t a[70000 + 256], b[70000 + 256];
  int same = 1, sized = 1;
  for (size_t i = 0; i < sizeof idlens / sizeof idlens[0]; ++i) {
    for (size_t j = 0; j < sizeof cklens / sizeof cklens[0]; ++j) {
      for (size_t k = 0; k < sizeof payloads / sizeof payloads[0]; ++k) {
        for (int prio = TERN_PRIO_LOW; prio <= TERN_PRIO_HIGH; ++prio) {
          wire_msg m;
          memset(&m, 0, sizeof(m));
          m.priority = prio;
          m.id = pattern;
          m.idlen = idlens[i];
          m.collapse_key = cklens[j] ? pattern + 100 : NULL;
          m.collapse_keylen = cklens[j];
          m.payload = payloads[k] ? pattern + 200 : NULL;
          m.payloadlen = payloads[k];
          size_t n = wire_msg_tail_encode(a, &m);
          size_t p = wire_plain_tail_encode(b, prio, m.id, m.idlen,
                                            m.collapse_key, m.collapse_keylen,
                                            m.payload, m.payloadlen);
          if (n != p || memcmp(a, b, n) != 0) {
            same = 0;
          }
          if (wire_plain_tail_size(m.idlen, m.collapse_keylen,
                                   m.payloadlen) != n ||
              wire_msg_tail_size(&m) != n) {
            sized = 0;
          }
        }
      }
    }
  }
  CHECK(same, "plain tail encoding equals the general one byte for byte");
  CHECK(sized, "plain tail size equals the general size");
}

int main(void) {
  size_t i;
  for (i = 0; i < sizeof pattern; ++i) {
    pattern[i] = (uint8_t)('a' + i % 26);
  }
  test_varints();
  test_known_frames();
  test_boundaries();
  test_malformed_header();
  test_malformed_bodies();
  test_malformed_msg();
  test_head_tail();
  test_plain_tail();
  return tap_done();
}
