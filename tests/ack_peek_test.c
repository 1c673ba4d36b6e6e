/*
 * wire_ack_peek (lib/wire/frame.h), the hub's fast path for ACK frames,
 * against the full decoder wire_frame_decode, over every short input and
 * over random and mutated ones.
 *
 * For every input the two must agree:
 *   - peek takes a frame only when the decoder decodes an ACK of that very
 *     size with the same seq (never a frame the decoder refuses, wants more
 *     bytes for, or reads otherwise);
 *   - a complete ACK whose seq takes 1, 2 or 4 bytes is always taken by
 *     peek (the fast path is not silently bypassed);
 *   - when peek declines it leaves the seq alone, and it never reads past
 *     the input (each input sits in a buffer of its exact size, for ASan).
 */
#include <stdlib.h>
#include <string.h>

#include "base/rand.h"
#include "tap.h"
#include "testutil.h"
#include "wire/frame.h"

static long inputs, taken, declined_ack, mismatches;
static char first_bad[160];

static void note_bad(const uint8_t *p, size_t len, const char *why) {
  if (mismatches++ == 0) {
    int n = snprintf(first_bad, sizeof(first_bad), "%s:", why);
    for (size_t i = 0; i < len && n > 0 && (size_t)n < sizeof(first_bad) - 4;
         ++i) {
      n += snprintf(first_bad + n, sizeof(first_bad) - (size_t)n, " %02x",
                    p[i]);
    }
  }
}

static void compare(const uint8_t *in, size_t len) {
  uint8_t *p = tu_xmalloc(len);
  if (len) {
    memcpy(p, in, len);
  }
  ++inputs;
  const uint64_t untouched = UINT64_C(0x5eed5eed5eed5eed);
  uint64_t seq = untouched;
  tern_ssize n = wire_ack_peek(&seq, p, len);
  wire_frame f;
  memset(&f, 0, sizeof(f));
  tern_ssize d = wire_frame_decode(&f, p, len, WIRE_CLIENT_BODY_MAX);
  if (n != 0 && n != 3 && n != 4 && n != 6) {
    note_bad(p, len, "peek returned a size it never should");
  } else if (n > 0) {
    ++taken;
    if (d != n || f.type != WIRE_ACK || f.u.ack_seq != seq) {
      note_bad(p, len, "peek took what the decoder reads otherwise");
    }
  } else {
    if (seq != untouched) {
      note_bad(p, len, "peek declined but wrote the seq");
    }
    if (d > 0 && f.type == WIRE_ACK) {
      ++declined_ack;
      if (d == 3 || d == 4 || d == 6) {
        note_bad(p, len, "peek declined an ACK with a 1, 2 or 4-byte seq");
      }
    }
  }
  free(p);
}

/* A well-formed ACK of |seq|; returns its size. */
static size_t ack_bytes(uint8_t *out, uint64_t seq) {
  wire_frame f;
  memset(&f, 0, sizeof(f));
  f.type = WIRE_ACK;
  f.u.ack_seq = seq;
  return wire_frame_encode(out, 16, &f);
}

static uint64_t random_seq(rng *r) {
  /* Every varint size, and the values at the edges of each. */
  static const uint64_t edges[] = {0,          1,          0x3f,
                                   0x40,       0x3fff,     0x4000,
                                   0x3fffffff, 0x40000000, WIRE_VARINT_MAX};
  switch (rng_below(r, 4)) {
  case 0:
    return edges[rng_below(r, sizeof(edges) / sizeof(edges[0]))];
  case 1:
    return rng_below(r, 0x4000);
  case 2:
    return rng_below(r, 0x40000000);
  default:
    return rng_next(r) & WIRE_VARINT_MAX;
  }
}

int main(void) {
  uint8_t buf[32];

  /* Exhaustive where peek decides: every input of up to 2 bytes, every
     3-byte input that starts with ACK, every 4-byte ACK whose length byte
     says 2; other 4-byte ACKs with the varint prefixes' edge values.  (A
     first byte other than ACK is refused at once: the random inputs below
     cover it.) */
  memset(buf, 0, sizeof(buf));
  compare(buf, 0);
  for (unsigned a = 0; a < 256; ++a) {
    buf[0] = (uint8_t)a;
    compare(buf, 1);
    for (unsigned b = 0; b < 256; ++b) {
      buf[1] = (uint8_t)b;
      compare(buf, 2);
    }
  }
  static const uint8_t edges[] = {0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xff};
  buf[0] = WIRE_ACK;
  for (unsigned b = 0; b < 256; ++b) {
    buf[1] = (uint8_t)b;
    for (unsigned c = 0; c < 256; ++c) {
      buf[2] = (uint8_t)c;
      compare(buf, 3);
      for (unsigned k = 0; k < (b == 2 ? 256u : sizeof(edges)); ++k) {
        buf[3] = b == 2 ? (uint8_t)k : edges[k];
        compare(buf, 4);
      }
    }
  }
  long exhaustive = inputs;
  CHECK(mismatches == 0, "%ld inputs of 0..4 bytes: peek agrees with the "
                         "decoder (%s)",
        exhaustive, mismatches ? first_bad : "ok");

  /* Random: well-formed ACKs of every varint size, whole, cut short, with
     bytes after them, and mutated (bit flips, byte changes, a length byte
     rewritten), plus plain noise. */
  rng r;
  rng_seed(&r, 0xacc);
  for (int i = 0; i < 200000; ++i) {
    size_t len = ack_bytes(buf, random_seq(&r));
    switch (rng_below(&r, 6)) {
    case 0:
      break;
    case 1:
      len = (size_t)rng_below(&r, len); /* truncated */
      break;
    case 2: { /* followed by more bytes */
      size_t more = (size_t)rng_below(&r, 8);
      for (size_t k = 0; k < more; ++k) {
        buf[len + k] = (uint8_t)rng_next(&r);
      }
      len += more;
      break;
    }
    case 3: /* a bit flipped */
      buf[rng_below(&r, len)] ^= (uint8_t)(1u << rng_below(&r, 8));
      break;
    case 4: /* a byte replaced, often the length or the varint prefix */
      buf[rng_below(&r, len < 3 ? len : 3)] = (uint8_t)rng_next(&r);
      break;
    default: /* noise that starts like an ACK */
      len = (size_t)rng_below(&r, 12);
      for (size_t k = 0; k < len; ++k) {
        buf[k] = (uint8_t)rng_next(&r);
      }
      if (len) {
        buf[0] = WIRE_ACK;
      }
      break;
    }
    compare(buf, len);
  }
  CHECK(mismatches == 0, "%ld random and mutated inputs: peek agrees with "
                         "the decoder (%s)",
        inputs - exhaustive, mismatches ? first_bad : "ok");
  CHECK(taken > 50000 && declined_ack > 1000,
        "both sides were reached: %ld taken by peek, %ld ACKs left to the "
        "decoder (8-byte seqs)",
        taken, declined_ack);
  return tap_done();
}
