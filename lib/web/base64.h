/*
 * Standard base64 (RFC 4648, section 4: alphabet A-Z a-z 0-9 + /, padded
 * with '=').  The decoder is strict: length a multiple of 4, '=' only as
 * the last one or two characters, no whitespace or other characters, and
 * the unused bits of the last group zero, so that every byte string has
 * exactly one accepted encoding.
 */
#ifndef TERN_WEB_BASE64_H
#define TERN_WEB_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

/* web_base64_encoded_len is the encoding's length for |len| bytes
   (4 * ceil(len / 3)); |len| at most SIZE_MAX / 4 * 3. */
static inline size_t web_base64_encoded_len(size_t len) {
  return (len / 3 + (len % 3 != 0)) * 4;
}

/* web_base64_decoded_max is the most bytes |len| characters decode to. */
static inline size_t web_base64_decoded_max(size_t len) {
  return len / 4 * 3;
}

/* web_base64_encode writes web_base64_encoded_len(|len|) characters (no NUL)
   at |out| and returns their count. */
size_t web_base64_encode(char *out, const uint8_t *in, size_t len);

/* web_base64_decode decodes the |len| characters at |in| into |out|
   (|cap| bytes) and returns the bytes written: TERN_ERR_PROTO when the
   input is not strict base64, TERN_ERR_TOO_LARGE when the result does not
   fit in |cap| (checked before anything is written).  On error nothing
   useful is in |out|. */
tern_ssize web_base64_decode(uint8_t *out, size_t cap, const char *in,
                             size_t len);

#endif
