/*
 * Fuzz target for tern_client_restore_state, the decoder of the resume
 * state blob.  The input is a header byte, then the blob.  Header bits:
 * 0 recomputes the blob's checksum (so that the fuzzer gets past it to the
 * structure checks), 1-2 pick dedup_max (0, 1, 3 or 10000), 3 a dedup
 * window of 10 s, 4-7 the allocation to fail (0 none).  The client's key
 * is "fz", the key of the seeds.
 *
 * Checked: the result is 0 or a documented error; on error the client
 * saves exactly the empty state it saved before; on success what it saves
 * restores into a second client and saves again byte for byte the same,
 * within the settings' bounds; every allocation is returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "fuzz_util.h"
#include "tern.h"

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "state_fuzz: %s:%d: %s\n", __FILE__, __LINE__,       \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

#define NOW ((tern_tstamp)1000 * TERN_SECONDS)

static tern_client *client(const tern_client_settings *s, tern_mem *mem) {
  tern_client *c = NULL;
  fail_at = 0;
  int rv = tern_client_new(&c, (const uint8_t *)"fz", 2, NULL, 0, s, mem,
                           NOW);
  REQUIRE(rv == 0);
  return c;
}

/* Saves |c|'s state into a new buffer. */
static uint8_t *save(const tern_client *c, size_t *len) {
  tern_ssize need = tern_client_save_state(c, NULL, 0);
  REQUIRE(need > 0);
  uint8_t *buf = malloc((size_t)need);
  REQUIRE(buf);
  REQUIRE(tern_client_save_state(c, buf, (size_t)need) == need);
  *len = (size_t)need;
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  uint8_t h = data[0];
  size_t len = size - 1;
  uint8_t *blob = malloc(len ? len : 1);
  REQUIRE(blob);
  memcpy(blob, data + 1, len);
  if ((h & 1) && len >= 4) {
    uint32_t crc = crc32c(0, blob, len - 4);
    blob[len - 4] = (uint8_t)(crc >> 24);
    blob[len - 3] = (uint8_t)(crc >> 16);
    blob[len - 2] = (uint8_t)(crc >> 8);
    blob[len - 1] = (uint8_t)crc;
  }
  static const uint32_t maxes[4] = {0, 1, 3, 10000};
  tern_client_settings s;
  tern_client_settings_default(&s);
  s.seed = 1;
  s.dedup_max = maxes[h >> 1 & 3];
  s.dedup_window = (h & 8) ? 10 * TERN_SECONDS : 0;
  tern_mem mem = fuzz_mem();
  outstanding = 0;
  calls = 0;

  tern_client *c = client(&s, &mem);
  size_t elen;
  uint8_t *empty = save(c, &elen);
  fail_at = (h >> 4) ? calls + (h >> 4) : 0;
  int rv = tern_client_restore_state(c, blob, len, NOW);
  fail_at = 0;
  REQUIRE(rv == 0 || rv == TERN_ERR_PROTO || rv == TERN_ERR_INVALID ||
          rv == TERN_ERR_NOMEM);
  size_t slen;
  uint8_t *saved = save(c, &slen);
  if (rv != 0) {
    REQUIRE(slen == elen && memcmp(saved, empty, elen) == 0);
  } else {
    /* No more ids than the settings allow: 31 + 2 bytes and 5 + idlen (at
       least 6) per id. */
    REQUIRE(slen <= 33 + (size_t)s.dedup_max * (5 + TERN_MAX_ID));
    REQUIRE(slen <= len);
    tern_client *c2 = client(&s, &mem);
    REQUIRE(tern_client_restore_state(c2, saved, slen, NOW) == 0);
    size_t len2;
    uint8_t *again = save(c2, &len2);
    REQUIRE(len2 == slen && memcmp(again, saved, slen) == 0);
    free(again);
    tern_client_del(c2);
  }
  free(saved);
  free(empty);
  free(blob);
  tern_client_del(c);
  REQUIRE(outstanding == 0);
  return 0;
}
