/*
 * UTF-8 validation as a tiny state machine: the lead byte sets how many
 * continuation bytes follow and the range of the first one (this is where
 * overlong forms, surrogates and code points above U+10FFFF are refused).
 */
#include "web/utf8.h"

#include <string.h>

/* lead sets |u| for lead byte |b|; returns -1 when |b| cannot lead. */
static int lead(web_utf8 *u, uint8_t b) {
  u->lo = 0x80;
  u->hi = 0xbf;
  if (b < 0x80) {
    u->need = 0;
  } else if (b < 0xc2) {
    return -1; /* continuation byte, or overlong C0/C1 */
  } else if (b < 0xe0) {
    u->need = 1;
  } else if (b < 0xf0) {
    u->need = 2;
    if (b == 0xe0) {
      u->lo = 0xa0; /* overlong below U+0800 */
    } else if (b == 0xed) {
      u->hi = 0x9f; /* surrogates D800..DFFF */
    }
  } else if (b < 0xf5) {
    u->need = 3;
    if (b == 0xf0) {
      u->lo = 0x90; /* overlong below U+10000 */
    } else if (b == 0xf4) {
      u->hi = 0x8f; /* above U+10FFFF */
    }
  } else {
    return -1;
  }
  return 0;
}

int web_utf8_feed(web_utf8 *u, const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t b = p[i];
    if (u->need == 0) {
      /* Fast path over ASCII, 8 bytes at a time. */
      while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & UINT64_C(0x8080808080808080)) {
          break;
        }
        i += 8;
      }
      if (i == len) {
        break;
      }
      b = p[i];
      if (lead(u, b) < 0) {
        return -1;
      }
    } else {
      if (b < u->lo || b > u->hi) {
        return -1;
      }
      --u->need;
      u->lo = 0x80;
      u->hi = 0xbf;
    }
    ++i;
  }
  return 0;
}

size_t web_utf8_seq(const uint8_t *p, size_t len) {
  web_utf8 u;
  size_t n;
  if (lead(&u, p[0]) < 0) {
    return 0;
  }
  n = (size_t)u.need + 1;
  if (n > len) {
    return 0;
  }
  for (size_t i = 1; i < n; ++i) {
    if (p[i] < u.lo || p[i] > u.hi) {
      return 0;
    }
    u.lo = 0x80;
    u.hi = 0xbf;
  }
  return n;
}

int web_utf8_valid(const uint8_t *p, size_t len) {
  web_utf8 u;
  web_utf8_init(&u);
  return web_utf8_feed(&u, p, len) == 0 && web_utf8_complete(&u);
}
