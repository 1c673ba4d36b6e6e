/*
 * Base64 of RFC 4648 with a strict decoder (one accepted encoding per byte
 * string): the WebSocket handshake key, and JSON envelopes whose payload is
 * not UTF-8.
 */
#include "web/base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t web_base64_encode(char *out, const uint8_t *in, size_t len) {
  char *o = out;
  size_t i = 0;
  for (; len - i >= 3; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    o[0] = alphabet[v >> 18];
    o[1] = alphabet[v >> 12 & 63];
    o[2] = alphabet[v >> 6 & 63];
    o[3] = alphabet[v & 63];
    o += 4;
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    o[0] = alphabet[v >> 18];
    o[1] = alphabet[v >> 12 & 63];
    o[2] = '=';
    o[3] = '=';
    o += 4;
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    o[0] = alphabet[v >> 18];
    o[1] = alphabet[v >> 12 & 63];
    o[2] = alphabet[v >> 6 & 63];
    o[3] = '=';
    o += 4;
  }
  return (size_t)(o - out);
}

/* sextet returns the value of base64 character |c|, or -1. */
static inline int sextet(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

tern_ssize web_base64_decode(uint8_t *out, size_t cap, const char *in,
                             size_t len) {
  size_t pad = 0, outlen, o = 0;
  if (len % 4 != 0) {
    return TERN_ERR_PROTO;
  }
  if (len && in[len - 1] == '=') {
    pad = in[len - 2] == '=' ? 2 : 1;
  }
  outlen = len / 4 * 3 - pad;
  if (outlen > cap) {
    return TERN_ERR_TOO_LARGE;
  }
  for (size_t i = 0; i < len; i += 4) {
    int s[4];
    int last = i + 4 == len;
    uint32_t v;
    for (unsigned j = 0; j < 4; ++j) {
      /* '=' is a character only where the padding was counted. */
      s[j] = last && j >= 4 - pad ? 0 : sextet(in[i + j]);
      if (s[j] < 0) {
        return TERN_ERR_PROTO;
      }
    }
    v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 |
        (uint32_t)s[3];
    if (last && pad) {
      /* The bits past the last byte must be zero (canonical form). */
      if ((pad == 2 && (v & 0xffff)) || (pad == 1 && (v & 0xff))) {
        return TERN_ERR_PROTO;
      }
    }
    out[o++] = (uint8_t)(v >> 16);
    if (!(last && pad == 2)) {
      out[o++] = (uint8_t)(v >> 8);
    }
    if (!(last && pad)) {
      out[o++] = (uint8_t)v;
    }
  }
  return (tern_ssize)o;
}
