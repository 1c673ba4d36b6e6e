/* Block buffering and padding shared by SHA-1 and SHA-256 (md.h). */
#include "web/md.h"

#include <string.h>

void web_md_update(web_md *m, uint32_t *h, web_md_compress f,
                   const void *data, size_t len) {
  const uint8_t *p = data;
  m->total += len;
  if (m->blocklen) {
    size_t take = 64 - m->blocklen < len ? 64 - m->blocklen : len;
    memcpy(m->block + m->blocklen, p, take);
    m->blocklen += take;
    p += take;
    len -= take;
    if (m->blocklen < 64) {
      return;
    }
    f(h, m->block);
    m->blocklen = 0;
  }
  for (; len >= 64; p += 64, len -= 64) {
    f(h, p);
  }
  if (len) {
    memcpy(m->block, p, len);
    m->blocklen = len;
  }
}

void web_md_final(web_md *m, uint32_t *h, web_md_compress f, size_t nwords,
                  uint8_t *out) {
  uint64_t bits = m->total * 8;
  uint8_t pad[72];
  size_t padlen = (m->blocklen < 56 ? 56 : 120) - m->blocklen;
  memset(pad, 0, sizeof pad);
  pad[0] = 0x80;
  for (unsigned i = 0; i < 8; ++i) {
    pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
  }
  web_md_update(m, h, f, pad, padlen + 8);
  for (size_t i = 0; i < nwords; ++i) {
    out[4 * i] = (uint8_t)(h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(h[i] >> 8);
    out[4 * i + 3] = (uint8_t)h[i];
  }
}
