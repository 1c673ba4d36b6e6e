/*
 * CRC-32C (lib/base/crc32c.c): published check values, and the portable
 * slicing-by-8 code, the SSE4.2 code (when the CPU has it) and the
 * dispatching crc32c() against a bit-at-a-time reference written here, on
 * every length and alignment that reaches each code path.
 */
#include <stdint.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/rand.h"
#include "tap.h"

/* The definition: reflected, polynomial 0x82F63B78, one bit at a time. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t len) {
  uint32_t c = ~crc;
  for (size_t i = 0; i < len; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) {
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
  }
  return ~c;
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* check_vectors: the CRC-32C check value and the iSCSI test patterns of
   RFC 3720, appendix B.4. */
static void check_vectors(crc_fn f, const char *name) {
  uint8_t buf[32];
  CHECK_INT(f(0, "123456789", 9), 0xe3069283u, name);
  memset(buf, 0, sizeof(buf));
  CHECK_INT(f(0, buf, 32), 0x8a9136aau, "32 zero bytes");
  memset(buf, 0xff, sizeof(buf));
  CHECK_INT(f(0, buf, 32), 0x62a8ab43u, "32 0xff bytes");
  for (int i = 0; i < 32; ++i) {
    buf[i] = (uint8_t)i;
  }
  CHECK_INT(f(0, buf, 32), 0x46dd794eu, "ascending bytes");
  for (int i = 0; i < 32; ++i) {
    buf[i] = (uint8_t)(31 - i);
  }
  CHECK_INT(f(0, buf, 32), 0x113fdb5cu, "descending bytes");
  CHECK_INT(f(0, buf, 0), 0, "empty input");
}

/* check_random compares |f| with the reference over lengths 0..300 at
   every alignment 0..7, with random seeds, and over a long buffer: every
   byte of each of the eight tables is looked up many times. */
static void check_random(crc_fn f, const char *name) {
  static uint8_t data[70000];
  rng r;
  int bad = 0;
  rng_seed(&r, 42);
  for (size_t i = 0; i < sizeof(data); ++i) {
    data[i] = (uint8_t)rng_next(&r);
  }
  for (size_t len = 0; len <= 300; ++len) {
    for (size_t align = 0; align < 8; ++align) {
      uint32_t seed = (uint32_t)rng_next(&r);
      if (f(seed, data + align, len) != crc_bitwise(seed, data + align, len)) {
        ++bad;
      }
    }
  }
  if (f(7, data + 3, sizeof(data) - 3) !=
      crc_bitwise(7, data + 3, sizeof(data) - 3)) {
    ++bad;
  }
  CHECK_INT(bad, 0, name);
}

/* Extending a CRC equals the CRC of the concatenation. */
static void check_extend(crc_fn f, const char *name) {
  const char *a = "tern records ", *b = "are checksummed";
  char ab[64];
  size_t na = strlen(a), nb = strlen(b);
  memcpy(ab, a, na);
  memcpy(ab + na, b, nb);
  CHECK_INT(f(f(0, a, na), b, nb), f(0, ab, na + nb), name);
}

int main(void) {
  check_vectors(crc32c_portable, "portable: check value");
  check_random(crc32c_portable, "portable equals the bitwise reference");
  check_extend(crc32c_portable, "portable: extending");
  check_vectors(crc32c, "crc32c: check value");
  check_random(crc32c, "crc32c equals the bitwise reference");
  check_extend(crc32c, "crc32c: extending");
  if (crc32c_hw_available()) {
    check_vectors(crc32c_hw, "hardware: check value");
    check_random(crc32c_hw, "hardware equals the bitwise reference");
    check_extend(crc32c_hw, "hardware: extending");
  } else {
    tap_diag("no SSE4.2 crc32 instruction: hardware path not tested");
  }
  return tap_done();
}
