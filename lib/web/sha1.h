/*
 * SHA-1 (FIPS 180-4), incremental.  Used only for the WebSocket handshake's
 * Sec-WebSocket-Accept (RFC 6455, 4.2.2), where it is a fingerprint, not a
 * security function.  No allocation; the context is plain data.
 */
#ifndef TERN_WEB_SHA1_H
#define TERN_WEB_SHA1_H

#include <stddef.h>
#include <stdint.h>

#include "web/md.h"

#define WEB_SHA1_LEN 20

typedef struct web_sha1 {
  uint32_t h[5];
  web_md md;          /* the partial block and the length */
} web_sha1;

void web_sha1_init(web_sha1 *c);
/* web_sha1_update hashes |len| bytes at |p| (NULL when 0). */
void web_sha1_update(web_sha1 *c, const void *p, size_t len);
/* web_sha1_final writes the digest; |c| must be initialised again before
   it is reused. */
void web_sha1_final(web_sha1 *c, uint8_t out[WEB_SHA1_LEN]);

#endif
