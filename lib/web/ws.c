/*
 * RFC 6455 without I/O: the handshake's checks and accept value, the
 * incremental frame decoder (one event per call, bytes in any pieces) and
 * the frame encoder.  The decoder keeps at most a frame header (14 bytes)
 * and a control payload (125 bytes); data payloads stream through to the
 * caller's buffer, unmasked, as they arrive.
 */
#include "web/ws.h"

#include <string.h>

#include "web/base64.h"
#include "web/sha1.h"

/* ---- handshake ----------------------------------------------------------- */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* trim drops spaces and tabs around [*p, *p + *len). */
static void trim(const char **p, size_t *len) {
  while (*len && is_ows(**p)) {
    ++*p;
    --*len;
  }
  while (*len && is_ows((*p)[*len - 1])) {
    --*len;
  }
}

/* is_tchar: the characters of an HTTP token (RFC 9110, 5.6.2). */
static int is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z')) {
    return 1;
  }
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static char lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

void web_ws_accept(const char *key, size_t keylen,
                   char accept[WEB_WS_ACCEPT_LEN]) {
  web_sha1 c;
  uint8_t digest[WEB_SHA1_LEN];
  web_sha1_init(&c);
  web_sha1_update(&c, key, keylen);
  web_sha1_update(&c, ws_guid, sizeof ws_guid - 1);
  web_sha1_final(&c, digest);
  web_base64_encode(accept, digest, sizeof digest);
}

const char *web_ws_proto_name(unsigned proto) {
  switch (proto) {
  case WEB_WS_PROTO_BIN:
    return "tern.bin";
  case WEB_WS_PROTO_JSON:
    return "tern.json";
  default:
    return NULL;
  }
}

/* proto_of maps a subprotocol token to its bit (0: not ours); names are
   compared exactly (RFC 6455 subprotocol names are case-sensitive). */
static unsigned proto_of(const char *p, size_t len) {
  if (len == 8 && memcmp(p, "tern.bin", 8) == 0) {
    return WEB_WS_PROTO_BIN;
  }
  if (len == 9 && memcmp(p, "tern.json", 9) == 0) {
    return WEB_WS_PROTO_JSON;
  }
  return 0;
}

/* pick_protocol walks the list: returns 0 with *chosen set, or an error.
   Empty elements (",,") are allowed and skipped (RFC 9110, 5.6.1). */
static int pick_protocol(const char *list, size_t len, unsigned allowed,
                         unsigned *chosen) {
  size_t i = 0;
  int offered = 0;
  unsigned pick = WEB_WS_PROTO_NONE;
  while (i <= len) {
    size_t start = i, n;
    const char *item;
    while (i < len && list[i] != ',') {
      ++i;
    }
    item = list + start;
    n = i - start;
    trim(&item, &n);
    ++i; /* past the comma (or the end) */
    if (n == 0) {
      continue;
    }
    for (size_t k = 0; k < n; ++k) {
      if (!is_tchar(item[k])) {
        return WEB_WS_HS_BAD_PROTOCOL;
      }
    }
    offered = 1;
    if (pick == WEB_WS_PROTO_NONE && (proto_of(item, n) & allowed)) {
      pick = proto_of(item, n);
    }
  }
  if (offered && pick == WEB_WS_PROTO_NONE) {
    return WEB_WS_HS_NO_PROTOCOL;
  }
  *chosen = pick;
  return 0;
}

int web_ws_handshake(const char *key, size_t keylen, const char *version,
                     size_t versionlen, const char *protocols,
                     size_t protocolslen, unsigned allowed, unsigned *proto,
                     char accept[WEB_WS_ACCEPT_LEN]) {
  uint8_t nonce[16];
  unsigned chosen = WEB_WS_PROTO_NONE;
  int rc;
  if (key == NULL) {
    return WEB_WS_HS_BAD_KEY;
  }
  trim(&key, &keylen);
  /* 16 bytes encode to 24 characters; the strict decoder refuses
     anything but the one encoding. */
  if (keylen != 24 || web_base64_decode(nonce, sizeof nonce, key, keylen) !=
                          (tern_ssize)sizeof nonce) {
    return WEB_WS_HS_BAD_KEY;
  }
  if (version == NULL) {
    return WEB_WS_HS_BAD_VERSION;
  }
  trim(&version, &versionlen);
  if (versionlen != 2 || memcmp(version, "13", 2) != 0) {
    return WEB_WS_HS_BAD_VERSION;
  }
  if (protocols != NULL && protocolslen) {
    rc = pick_protocol(protocols, protocolslen, allowed, &chosen);
    if (rc != 0) {
      return rc;
    }
  }
  web_ws_accept(key, keylen, accept);
  *proto = chosen;
  return WEB_WS_HS_OK;
}

int web_http_has_token(const char *value, size_t len, const char *token) {
  size_t tlen = strlen(token), i = 0;
  while (i <= len) {
    size_t start = i, n, k;
    const char *item;
    while (i < len && value[i] != ',') {
      ++i;
    }
    item = value + start;
    n = i - start;
    trim(&item, &n);
    ++i;
    if (n != tlen) {
      continue;
    }
    for (k = 0; k < n && lower(item[k]) == lower(token[k]); ++k) {
    }
    if (k == n) {
      return 1;
    }
  }
  return 0;
}

/* ---- decoder ------------------------------------------------------------- */

enum { ST_HEADER = 0, ST_PAYLOAD, ST_DONE };

int web_ws_close_code_valid(unsigned code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

void web_ws_decoder_init(web_ws_decoder *d, int role, uint64_t max_frame,
                         uint64_t max_message) {
  memset(d, 0, sizeof *d);
  d->role = (uint8_t)role;
  d->max_frame = max_frame;
  d->max_message = max_message;
  d->state = ST_HEADER;
  d->hdrneed = 2;
  web_utf8_init(&d->utf8);
}

int web_ws_decoder_idle(const web_ws_decoder *d) {
  return d->state == ST_HEADER && d->hdrlen == 0 && d->msg_opcode == 0;
}

static tern_ssize fail(web_ws_decoder *d, unsigned code) {
  d->state = ST_DONE;
  d->close_code = (uint16_t)code;
  return code == WEB_WS_CLOSE_TOO_BIG ? TERN_ERR_TOO_LARGE : TERN_ERR_PROTO;
}

static int is_control(unsigned opcode) {
  return opcode >= 0x8;
}

/*
 * header_done checks a complete header and sets up the payload.  Returns 0
 * or the close code of the protocol error.
 */
static unsigned header_done(web_ws_decoder *d) {
  const uint8_t *h = d->hdr;
  unsigned opcode = h[0] & 0x0fu;
  uint64_t plen = h[1] & 0x7fu;
  size_t at = 2;
  if (h[0] & 0x70u) {
    return WEB_WS_CLOSE_PROTOCOL; /* RSV bits: no extension negotiated */
  }
  if (plen == 126) {
    plen = (uint64_t)h[2] << 8 | h[3];
    at = 4;
    if (plen < 126) {
      return WEB_WS_CLOSE_PROTOCOL; /* not the shortest encoding */
    }
  } else if (plen == 127) {
    plen = 0;
    for (unsigned i = 0; i < 8; ++i) {
      plen = plen << 8 | h[2 + i];
    }
    at = 10;
    if (plen >> 63 || plen <= 0xffff) {
      return WEB_WS_CLOSE_PROTOCOL;
    }
  }
  if (d->masked) {
    memcpy(d->mask, h + at, 4);
  }
  switch (opcode) {
  case WEB_WS_CONT:
    if (d->msg_opcode == 0) {
      return WEB_WS_CLOSE_PROTOCOL; /* nothing to continue */
    }
    break;
  case WEB_WS_TEXT:
  case WEB_WS_BINARY:
    if (d->msg_opcode != 0) {
      return WEB_WS_CLOSE_PROTOCOL; /* the open message is not finished */
    }
    break;
  case WEB_WS_CLOSE:
  case WEB_WS_PING:
  case WEB_WS_PONG:
    if (!(h[0] & 0x80u) || plen > WEB_WS_CONTROL_MAX) {
      return WEB_WS_CLOSE_PROTOCOL;
    }
    if (opcode == WEB_WS_CLOSE && plen == 1) {
      return WEB_WS_CLOSE_PROTOCOL;
    }
    break;
  default:
    return WEB_WS_CLOSE_PROTOCOL;
  }
  if (!is_control(opcode)) {
    if (plen > d->max_frame || plen > d->max_message - d->msglen) {
      return WEB_WS_CLOSE_TOO_BIG;
    }
    if (opcode != WEB_WS_CONT) {
      d->msg_opcode = (uint8_t)opcode;
      d->msglen = 0;
      web_utf8_init(&d->utf8);
    }
    d->msglen += plen;
  }
  d->opcode = (uint8_t)opcode;
  d->fin = (uint8_t)(h[0] >> 7);
  d->remaining = plen;
  d->offset = 0;
  return 0;
}

/* header_need: the full header's length once the first two bytes are in. */
static uint8_t header_need(const uint8_t *h) {
  unsigned code = h[1] & 0x7fu;
  uint8_t n = code == 126 ? 4 : code == 127 ? 10 : 2;
  return (uint8_t)(h[1] & 0x80u ? n + 4 : n);
}

/* control_done turns a complete control frame into its event; returns 0
   or a close code. */
static unsigned control_done(web_ws_decoder *d, web_ws_event *ev) {
  size_t n = (size_t)d->offset;
  memset(ev, 0, sizeof *ev);
  if (d->opcode == WEB_WS_CLOSE) {
    unsigned code = WEB_WS_CLOSE_NO_STATUS;
    if (n >= 2) {
      code = (unsigned)d->ctl[0] << 8 | d->ctl[1];
      if (!web_ws_close_code_valid(code)) {
        return WEB_WS_CLOSE_PROTOCOL;
      }
      if (!web_utf8_valid(d->ctl + 2, n - 2)) {
        return WEB_WS_CLOSE_INVALID_DATA;
      }
    }
    ev->type = WEB_WS_EV_CLOSE;
    ev->close_code = code;
    ev->data = n >= 2 ? d->ctl + 2 : d->ctl;
    ev->len = n >= 2 ? n - 2 : 0;
    d->state = ST_DONE;
    d->close_code = 0;
    return 0;
  }
  ev->type = d->opcode == WEB_WS_PING ? WEB_WS_EV_PING : WEB_WS_EV_PONG;
  ev->data = d->ctl;
  ev->len = n;
  return 0;
}

/* unmask copies |n| payload bytes from |src| to |dst|, XORed with |mask|
   (NULL: none) as bytes |offset| on in the frame.  |dst| may be |src| or
   before it: each byte is read before anything at or after it is
   written. */
static void unmask(uint8_t *dst, const uint8_t *src, size_t n,
                   const uint8_t *mask, uint64_t offset) {
  if (n == 0) {
    return;
  }
  if (mask == NULL) {
    memmove(dst, src, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    dst[i] = (uint8_t)(src[i] ^ mask[(offset + i) & 3]);
  }
}

static void next_header(web_ws_decoder *d) {
  d->state = ST_HEADER;
  d->hdrlen = 0;
  d->hdrneed = 2;
}

tern_ssize web_ws_decode(web_ws_decoder *d, const uint8_t *in, size_t len,
                         uint8_t *out, size_t outcap, web_ws_event *ev) {
  size_t used = 0;
  unsigned code;
  if (d->state == ST_DONE) {
    return TERN_ERR_CLOSED;
  }
  if (out == NULL || outcap == 0 || (in == NULL && len)) {
    return TERN_ERR_INVALID;
  }
  for (;;) {
    if (d->state == ST_HEADER) {
      while (d->hdrlen < d->hdrneed && used < len) {
        d->hdr[d->hdrlen++] = in[used++];
        if (d->hdrlen == 2) {
          int masked = (d->hdr[1] & 0x80u) != 0;
          if (masked != (d->role == WEB_WS_SERVER)) {
            return fail(d, WEB_WS_CLOSE_PROTOCOL);
          }
          d->masked = (uint8_t)masked;
          d->hdrneed = header_need(d->hdr);
        }
      }
      if (d->hdrlen < d->hdrneed) {
        break; /* input used up */
      }
      code = header_done(d);
      if (code) {
        return fail(d, code);
      }
      d->state = ST_PAYLOAD;
    }
    if (is_control(d->opcode)) {
      size_t take = (size_t)d->remaining < len - used ? (size_t)d->remaining
                                                       : len - used;
      unmask(d->ctl + d->offset, in + used, take, d->masked ? d->mask : NULL,
             d->offset);
      used += take;
      d->offset += take;
      d->remaining -= take;
      if (d->remaining) {
        break;
      }
      code = control_done(d, ev);
      if (code) {
        return fail(d, code);
      }
      if (d->state != ST_DONE) {
        next_header(d);
      }
      return (tern_ssize)used;
    }
    /* Data frame. */
    {
      size_t take = len - used < outcap ? len - used : outcap;
      int fin;
      if (d->remaining < take) {
        take = (size_t)d->remaining;
      }
      if (take == 0 && d->remaining) {
        break; /* input used up */
      }
      unmask(out, in + used, take, d->masked ? d->mask : NULL, d->offset);
      if (d->msg_opcode == WEB_WS_TEXT &&
          web_utf8_feed(&d->utf8, out, take) != 0) {
        return fail(d, WEB_WS_CLOSE_INVALID_DATA);
      }
      used += take;
      d->offset += take;
      d->remaining -= take;
      fin = d->remaining == 0 && d->fin;
      if (fin && d->msg_opcode == WEB_WS_TEXT &&
          !web_utf8_complete(&d->utf8)) {
        return fail(d, WEB_WS_CLOSE_INVALID_DATA);
      }
      if (take == 0 && !fin) {
        next_header(d); /* an empty fragment: nothing to report */
        continue;
      }
      memset(ev, 0, sizeof *ev);
      ev->type = WEB_WS_EV_DATA;
      ev->opcode = d->msg_opcode;
      ev->fin = fin;
      ev->data = out;
      ev->len = take;
      if (d->remaining == 0) {
        if (fin) {
          d->msg_opcode = 0;
          d->msglen = 0;
        }
        next_header(d);
      }
      return (tern_ssize)used;
    }
  }
  memset(ev, 0, sizeof *ev);
  ev->type = WEB_WS_EV_NONE;
  return (tern_ssize)used;
}

/* ---- encoder ------------------------------------------------------------- */

size_t web_ws_header_write(uint8_t *out, int fin, int opcode,
                           uint64_t payloadlen, const uint8_t *mask) {
  size_t n;
  out[0] = (uint8_t)((fin ? 0x80u : 0u) | ((unsigned)opcode & 0x0fu));
  if (payloadlen < 126) {
    out[1] = (uint8_t)payloadlen;
    n = 2;
  } else if (payloadlen <= 0xffff) {
    out[1] = 126;
    out[2] = (uint8_t)(payloadlen >> 8);
    out[3] = (uint8_t)payloadlen;
    n = 4;
  } else {
    out[1] = 127;
    for (unsigned i = 0; i < 8; ++i) {
      out[2 + i] = (uint8_t)(payloadlen >> (56 - 8 * i));
    }
    n = 10;
  }
  if (mask != NULL) {
    out[1] |= 0x80u;
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

void web_ws_mask(uint8_t *p, size_t len, const uint8_t mask[4],
                 uint64_t offset) {
  for (size_t i = 0; i < len; ++i) {
    p[i] ^= mask[(offset + i) & 3];
  }
}

tern_ssize web_ws_control_write(uint8_t *out, size_t cap, int opcode,
                                const uint8_t *payload, size_t len,
                                const uint8_t *mask) {
  size_t hlen;
  if ((opcode != WEB_WS_PING && opcode != WEB_WS_PONG &&
       opcode != WEB_WS_CLOSE) ||
      len > WEB_WS_CONTROL_MAX || (payload == NULL && len)) {
    return TERN_ERR_INVALID;
  }
  hlen = web_ws_header_len(len, mask != NULL);
  if (cap < hlen + len) {
    return TERN_ERR_TOO_LARGE;
  }
  web_ws_header_write(out, 1, opcode, len, mask);
  if (len) {
    memcpy(out + hlen, payload, len);
    if (mask != NULL) {
      web_ws_mask(out + hlen, len, mask, 0);
    }
  }
  return (tern_ssize)(hlen + len);
}

tern_ssize web_ws_close_write(uint8_t *out, size_t cap, unsigned code,
                              const char *reason, size_t reasonlen,
                              const uint8_t *mask) {
  uint8_t body[WEB_WS_CONTROL_MAX];
  if (code == 0) {
    if (reasonlen) {
      return TERN_ERR_INVALID;
    }
    return web_ws_control_write(out, cap, WEB_WS_CLOSE, NULL, 0, mask);
  }
  if (!web_ws_close_code_valid(code) || reasonlen > WEB_WS_CONTROL_MAX - 2 ||
      (reason == NULL && reasonlen) ||
      !web_utf8_valid((const uint8_t *)reason, reasonlen)) {
    return TERN_ERR_INVALID;
  }
  body[0] = (uint8_t)(code >> 8);
  body[1] = (uint8_t)code;
  if (reasonlen) {
    memcpy(body + 2, reason, reasonlen);
  }
  return web_ws_control_write(out, cap, WEB_WS_CLOSE, body, reasonlen + 2,
                              mask);
}
