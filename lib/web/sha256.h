/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), incremental, and the
 * subscriber tokens of ternd built on them (token=E.H, where E is an expiry
 * in Unix seconds and H the lowercase hex HMAC-SHA256 under the token
 * secret of KEY "." E).  No allocation; contexts are plain data.
 */
#ifndef TERN_WEB_SHA256_H
#define TERN_WEB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "web/md.h"

#define WEB_SHA256_LEN 32
#define WEB_SHA256_BLOCK 64

typedef struct web_sha256 {
  uint32_t h[8];
  web_md md;          /* the partial block and the length */
} web_sha256;

void web_sha256_init(web_sha256 *c);
/* web_sha256_update hashes |len| bytes at |p| (NULL when 0). */
void web_sha256_update(web_sha256 *c, const void *p, size_t len);
/* web_sha256_final writes the digest; |c| must be initialised again before
   it is reused. */
void web_sha256_final(web_sha256 *c, uint8_t out[WEB_SHA256_LEN]);
void web_sha256_buf(const void *p, size_t len, uint8_t out[WEB_SHA256_LEN]);

/* HMAC-SHA256: init with the key (any length; longer than a block is
   hashed first), update with the message, final. */
typedef struct web_hmac_sha256 {
  web_sha256 inner;
  web_sha256 outer;   /* already fed the outer padded key  */
} web_hmac_sha256;

void web_hmac_sha256_init(web_hmac_sha256 *c, const void *key, size_t keylen);
void web_hmac_sha256_update(web_hmac_sha256 *c, const void *p, size_t len);
void web_hmac_sha256_final(web_hmac_sha256 *c, uint8_t out[WEB_SHA256_LEN]);
void web_hmac_sha256_buf(const void *key, size_t keylen, const void *msg,
                         size_t msglen, uint8_t out[WEB_SHA256_LEN]);

/* web_consttime_eq returns 1 when the |len| bytes at |a| and |b| are equal,
   0 otherwise, in a time that depends on |len| only. */
int web_consttime_eq(const void *a, const void *b, size_t len);

/* web_hex_lower writes 2*|len| lowercase hex digits (no NUL) and returns
   the byte after them. */
char *web_hex_lower(char *out, const uint8_t *p, size_t len);

/* ---- subscriber tokens -------------------------------------------------- */

/* The longest token: 20 digits of expiry, '.', 64 hex digits. */
#define WEB_TOKEN_MAX (20 + 1 + 2 * WEB_SHA256_LEN)

enum web_token_result {
  WEB_TOKEN_OK = 0,
  WEB_TOKEN_MALFORMED = -1, /* not E.H with E decimal, H 64 lowercase hex */
  WEB_TOKEN_BAD = -2,       /* the HMAC does not match                    */
  WEB_TOKEN_EXPIRED = -3    /* E <= now                                   */
};

/* web_token_make writes the token for session |key| expiring at |expiry|
   (Unix seconds) into |out| (at least WEB_TOKEN_MAX bytes, no NUL) and
   returns its length. */
size_t web_token_make(char *out, const void *secret, size_t secretlen,
                      const void *key, size_t keylen, uint64_t expiry);

/* web_token_check checks |token| (|tokenlen| bytes, not NUL-terminated) for
   session |key| at time |now| (Unix seconds) and returns a
   web_token_result.  E must be 1..20 digits without a leading zero and fit
   in 64 bits.  The HMAC is compared in constant time; a malformed token is
   refused before any HMAC is computed. */
int web_token_check(const void *token, size_t tokenlen, const void *secret,
                    size_t secretlen, const void *key, size_t keylen,
                    uint64_t now);

#endif
