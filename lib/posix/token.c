/*
 * Subscriber tokens (token=E.H) for hosts of libtern-posix: the public face
 * of lib/web's SHA-256, HMAC and token code, which libtern keeps internal.
 */
#include "posix/posix.h"
#include "web/sha256.h"

size_t tern_token_make(char *out, size_t cap, const void *secret,
                       size_t secretlen, const uint8_t *key, size_t keylen,
                       uint64_t expiry) {
  char tmp[WEB_TOKEN_MAX];
  if (!out || (!secret && secretlen) || (!key && keylen) || expiry == 0) {
    return 0;
  }
  size_t n = web_token_make(tmp, secret ? secret : "", secretlen,
                            key ? (const void *)key : "", keylen, expiry);
  if (n > cap) {
    return 0;
  }
  for (size_t i = 0; i < n; ++i) {
    out[i] = tmp[i];
  }
  return n;
}

int tern_token_check(const char *token, size_t tokenlen, const void *secret,
                     size_t secretlen, const uint8_t *key, size_t keylen,
                     uint64_t now) {
  if (!token || (!secret && secretlen) || (!key && keylen)) {
    return TERN_ERR_INVALID;
  }
  switch (web_token_check(token, tokenlen, secret ? secret : "", secretlen,
                          key ? (const void *)key : "", keylen, now)) {
  case WEB_TOKEN_OK:
    return 0;
  case WEB_TOKEN_EXPIRED:
    return TERN_ERR_STATE;
  default:
    return TERN_ERR_INVALID;
  }
}
