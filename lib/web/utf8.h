/*
 * UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF), whole-buffer and incremental, for WebSocket text
 * messages (validated across fragments) and the JSON envelope.
 */
#ifndef TERN_WEB_UTF8_H
#define TERN_WEB_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Incremental state: continuation bytes still expected and the range the
   next one must fall in (narrower than 80..BF right after E0, ED, F0, F4). */
typedef struct web_utf8 {
  uint8_t need;
  uint8_t lo, hi;
} web_utf8;

static inline void web_utf8_init(web_utf8 *u) {
  u->need = 0;
  u->lo = 0x80;
  u->hi = 0xbf;
}

/* web_utf8_feed checks |len| more bytes; returns 0, or -1 at the first byte
   that no valid text can contain at that point (|u| is then undefined). */
int web_utf8_feed(web_utf8 *u, const uint8_t *p, size_t len);

/* web_utf8_complete: 1 when the bytes fed so far end on a character
   boundary. */
static inline int web_utf8_complete(const web_utf8 *u) {
  return u->need == 0;
}

/* web_utf8_seq returns the length (1..4) of the valid character that
   starts at |p| (|len| > 0 bytes available), or 0 when the bytes there do
   not start one. */
size_t web_utf8_seq(const uint8_t *p, size_t len);

/* web_utf8_valid: 1 when the |len| bytes at |p| are valid UTF-8. */
int web_utf8_valid(const uint8_t *p, size_t len);

#endif
