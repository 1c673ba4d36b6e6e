/*
 * Fuzz target for the producer frames (lib/wire/publish.c).  The input is
 * a byte stream; PUBLISH and PUBACK frames are decoded one after another
 * (the first byte picks the decoder) until one is incomplete or bad.  A
 * decoded frame must re-encode to exactly its bytes (shortest varints,
 * flags derived from the fields), and a failed decode must leave the
 * output untouched.  Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/publish.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "publish_fuzz: %s:%d: %s\n", __FILE__, __LINE__,     \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  /* a heap copy of exactly the input, so that ASan sees reads past it */
  uint8_t *in = malloc(size ? size : 1);
  REQUIRE(in != NULL);
  if (size) {
    memcpy(in, data, size);
  }
  uint8_t *re = malloc(size + 16);
  REQUIRE(re != NULL);
  while (off < size) {
    const uint8_t *p = in + off;
    size_t len = size - off;
    tern_ssize n;
    if (p[0] & 1) {
      wire_publish w, before;
      memset(&w, 0x5c, sizeof(w));
      memcpy(&before, &w, sizeof(w));
      n = wire_publish_decode(&w, p, len, 1 << 16);
      if (n <= 0) {
        REQUIRE(memcmp(&w, &before, sizeof(w)) == 0);
        break;
      }
      REQUIRE(p[0] == WIRE_PUBLISH);
      REQUIRE(wire_publish_size(&w) == (size_t)n);
      REQUIRE(wire_publish_encode(re, size + 16, &w) == (size_t)n);
      REQUIRE(memcmp(re, p, (size_t)n) == 0);
    } else {
      wire_puback a, before;
      memset(&a, 0x5c, sizeof(a));
      memcpy(&before, &a, sizeof(a));
      n = wire_puback_decode(&a, p, len);
      if (n <= 0) {
        REQUIRE(memcmp(&a, &before, sizeof(a)) == 0);
        break;
      }
      REQUIRE(p[0] == WIRE_PUBACK);
      REQUIRE(wire_puback_size(&a) == (size_t)n);
      REQUIRE(wire_puback_encode(re, size + 16, &a) == (size_t)n);
      REQUIRE(memcmp(re, p, (size_t)n) == 0);
    }
    off += (size_t)n;
  }
  free(re);
  free(in);
  return 0;
}
