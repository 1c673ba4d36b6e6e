/*
 * WebSocket (RFC 6455) without I/O: the opening handshake's header checks
 * and Sec-WebSocket-Accept, an incremental frame decoder, and a frame
 * encoder.  No allocation: the decoder is a plain struct the caller embeds
 * in its connection.
 *
 * How the hub uses it (issue 10): after the HTTP upgrade (web_ws_handshake)
 * a WebSocket connection pushes every byte it reads through
 * web_ws_decode.  DATA events carry unmasked message bytes: for tern.bin
 * they go straight into the binary framing's decoder (tern-protocol(7)),
 * for tern.json they are gathered (a few bytes: {"ack":N}) and parsed at
 * fin.  PING is answered with a PONG carrying its payload, CLOSE with a
 * CLOSE echoing the code; a decode error is answered with a CLOSE carrying
 * web_ws_decoder's close_code, and the connection ends.  Going the other
 * way, each MSG, DROPPED, heartbeat or GOAWAY becomes one message: the
 * caller writes web_ws_header_write's 2, 4 or 10 bytes into its output
 * buffer and then the payload bytes from wherever they live (a message's
 * encoded tail is written as is: server frames are not masked).
 */
#ifndef TERN_WEB_WS_H
#define TERN_WEB_WS_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"
#include "web/utf8.h"

/* ---- opening handshake --------------------------------------------------- */

/* The subprotocols libtern speaks (bits, so that a caller can allow a set). */
#define WEB_WS_PROTO_NONE 0u /* the client asked for none               */
#define WEB_WS_PROTO_BIN 1u  /* "tern.bin": tern-protocol(7) frames      */
#define WEB_WS_PROTO_JSON 2u /* "tern.json": JSON envelopes, {"ack":N}   */

/* Sec-WebSocket-Accept is 28 characters (base64 of a SHA-1). */
#define WEB_WS_ACCEPT_LEN 28

enum web_ws_handshake_result {
  WEB_WS_HS_OK = 0,
  WEB_WS_HS_BAD_KEY = -1,      /* key missing or not base64 of 16 bytes:
                                  answer 400                              */
  WEB_WS_HS_BAD_VERSION = -2,  /* version not "13": answer 426 with
                                  Sec-WebSocket-Version: 13               */
  WEB_WS_HS_BAD_PROTOCOL = -3, /* Sec-WebSocket-Protocol is not a list of
                                  tokens: answer 400                      */
  WEB_WS_HS_NO_PROTOCOL = -4   /* protocols offered, none of them allowed:
                                  answer 400                              */
};

/*
 * web_ws_handshake checks a client's upgrade request from three header
 * values (|key|, |version|: the header's value with surrounding spaces and
 * tabs allowed; |protocols|: the Sec-WebSocket-Protocol values, several
 * header lines joined with ",", NULL or empty when absent), and on success
 * writes the accept value (WEB_WS_ACCEPT_LEN characters, no NUL) and the
 * chosen subprotocol: the first one the client lists whose bit is in
 * |allowed|, WEB_WS_PROTO_NONE when the client lists none (the caller
 * picks its default).  The answer's Sec-WebSocket-Protocol header carries
 * web_ws_proto_name(*proto).  Returns a web_ws_handshake_result; on error
 * the outputs are untouched.  Connection and Upgrade are checked by the
 * caller with web_http_has_token.
 */
int web_ws_handshake(const char *key, size_t keylen, const char *version,
                     size_t versionlen, const char *protocols,
                     size_t protocolslen, unsigned allowed, unsigned *proto,
                     char accept[WEB_WS_ACCEPT_LEN]);

/* web_ws_accept computes Sec-WebSocket-Accept for |key| as sent (no check). */
void web_ws_accept(const char *key, size_t keylen,
                   char accept[WEB_WS_ACCEPT_LEN]);

/* web_ws_proto_name: "tern.bin", "tern.json", or NULL for anything else. */
const char *web_ws_proto_name(unsigned proto);

/* web_http_has_token: 1 when the comma-separated header value |value|
   contains |token| (compared without regard to ASCII case), as for
   "Connection: keep-alive, Upgrade" and "Upgrade: websocket". */
int web_http_has_token(const char *value, size_t len, const char *token);

/* ---- frames -------------------------------------------------------------- */

enum {
  WEB_WS_CONT = 0x0,
  WEB_WS_TEXT = 0x1,
  WEB_WS_BINARY = 0x2,
  WEB_WS_CLOSE = 0x8,
  WEB_WS_PING = 0x9,
  WEB_WS_PONG = 0xa
};

/* Close codes this library sends (RFC 6455, 7.4.1). */
enum {
  WEB_WS_CLOSE_NORMAL = 1000,
  WEB_WS_CLOSE_GOING_AWAY = 1001,
  WEB_WS_CLOSE_PROTOCOL = 1002,
  WEB_WS_CLOSE_UNSUPPORTED = 1003,
  WEB_WS_CLOSE_NO_STATUS = 1005, /* received: a CLOSE without a code */
  WEB_WS_CLOSE_INVALID_DATA = 1007,
  WEB_WS_CLOSE_POLICY = 1008,
  WEB_WS_CLOSE_TOO_BIG = 1009,
  WEB_WS_CLOSE_INTERNAL = 1011,
  WEB_WS_CLOSE_RESTART = 1012,
  WEB_WS_CLOSE_TRY_LATER = 1013
};

/* The largest control payload and frame headers. */
#define WEB_WS_CONTROL_MAX 125
#define WEB_WS_HEADER_MAX 14        /* with a mask                      */
#define WEB_WS_SERVER_HEADER_MAX 10 /* unmasked                         */

/* web_ws_close_code_valid: 1 when |code| may appear in a CLOSE frame
   (1000-1003, 1007-1014, 3000-4999). */
int web_ws_close_code_valid(unsigned code);

/* ---- decoder ------------------------------------------------------------- */

/* Which side decodes: a server requires masked frames, a client unmasked. */
enum { WEB_WS_SERVER = 0, WEB_WS_CLIENT = 1 };

typedef enum web_ws_event_type {
  WEB_WS_EV_NONE = 0, /* all input consumed, no event: feed more       */
  WEB_WS_EV_DATA,     /* message bytes (may be empty only with fin)    */
  WEB_WS_EV_PING,
  WEB_WS_EV_PONG,
  WEB_WS_EV_CLOSE     /* the peer closed; the decoder is finished       */
} web_ws_event_type;

typedef struct web_ws_event {
  web_ws_event_type type;
  int opcode;          /* DATA: WEB_WS_TEXT or WEB_WS_BINARY           */
  int fin;             /* DATA: the message ends with these bytes      */
  unsigned close_code; /* CLOSE: the code, WEB_WS_CLOSE_NO_STATUS if none */
  /* DATA: unmasked bytes in the caller's |out|; PING, PONG: the payload,
     CLOSE: the reason (UTF-8), both inside the decoder.  Valid until the
     next call. */
  const uint8_t *data;
  size_t len;
} web_ws_event;

typedef struct web_ws_decoder {
  /* limits */
  uint64_t max_frame;     /* largest data frame payload                 */
  uint64_t max_message;   /* largest message (sum of its fragments)     */
  uint8_t role;           /* WEB_WS_SERVER or WEB_WS_CLIENT             */
  /* state */
  uint8_t state;          /* internal: header, payload, finished        */
  uint8_t hdrlen;         /* header bytes gathered                      */
  uint8_t hdrneed;        /* header bytes needed so far                 */
  uint8_t hdr[WEB_WS_HEADER_MAX];
  uint8_t opcode;         /* current frame's opcode                     */
  uint8_t fin;            /* current frame's FIN bit                    */
  uint8_t masked;
  uint8_t mask[4];
  uint8_t msg_opcode;     /* TEXT/BINARY while a message is open, or 0  */
  uint16_t close_code;    /* after an error: the CLOSE code to send     */
  uint64_t remaining;     /* payload bytes left in the current frame    */
  uint64_t offset;        /* payload bytes of the frame already seen    */
  uint64_t msglen;        /* bytes of the open message so far           */
  web_utf8 utf8;          /* the open text message's validation state   */
  uint8_t ctl[WEB_WS_CONTROL_MAX]; /* a control frame's payload          */
} web_ws_decoder;

/* web_ws_decoder_idle: nonzero between frames with no message open, where
   the decoder is as web_ws_decoder_init left it (with the same role and
   limits, a fresh one continues it). */
int web_ws_decoder_idle(const web_ws_decoder *d);

/* web_ws_decoder_init: |role| WEB_WS_SERVER or WEB_WS_CLIENT; limits in
   bytes (a data frame's payload, a whole message). */
void web_ws_decoder_init(web_ws_decoder *d, int role, uint64_t max_frame,
                         uint64_t max_message);

/*
 * web_ws_decode consumes bytes from |in| (|len| of them) until it has one
 * event for |ev| or the input is used up, and returns the bytes consumed.
 * DATA bytes are unmasked into |out| (|outcap| > 0 bytes; |out| may be
 * |in| itself, or point into |in| at or before the bytes consumed: the
 * decoder writes each byte only after reading the input up to it), at
 * most |outcap| at a time.  The caller calls again with the rest of the
 * input after each event; ev->type is WEB_WS_EV_NONE when the input was
 * used up without completing an event.  Bytes may arrive in pieces of any
 * size: the events are the same except that DATA comes in more chunks.
 *
 * Text messages are checked to be UTF-8 across their fragments (each DATA
 * chunk is checked before it is returned).  After a CLOSE event the
 * decoder is finished.  Errors (the decoder is then finished;
 * d->close_code is the CLOSE code to send): TERN_ERR_PROTO (1002: bad
 * opcode, RSV bit, masking, fragmentation, control frame, length encoding
 * or close code; 1007: text or close reason not UTF-8), TERN_ERR_TOO_LARGE
 * (1009: over max_frame or max_message), TERN_ERR_CLOSED (called after
 * the decoder finished), TERN_ERR_INVALID (|out| NULL or |outcap| 0).
 */
tern_ssize web_ws_decode(web_ws_decoder *d, const uint8_t *in, size_t len,
                         uint8_t *out, size_t outcap, web_ws_event *ev);

/* ---- encoder ------------------------------------------------------------- */

/* web_ws_header_len: a frame header's size for |payloadlen| bytes (2, 4 or
   10, plus 4 with a mask). */
static inline size_t web_ws_header_len(uint64_t payloadlen, int masked) {
  size_t n = payloadlen < 126 ? 2 : payloadlen <= 0xffff ? 4 : 10;
  return masked ? n + 4 : n;
}

/* web_ws_header_write writes a frame header at |out| (room for
   web_ws_header_len bytes) and returns its length: FIN when |fin|,
   |opcode|, the shortest length encoding of |payloadlen| (< 2^63), and
   the masking key |mask| (NULL: unmasked, as a server sends).  The
   caller then writes the payload, masked with web_ws_mask when |mask|. */
size_t web_ws_header_write(uint8_t *out, int fin, int opcode,
                           uint64_t payloadlen, const uint8_t *mask);

/* web_ws_mask XORs |len| bytes at |p| with the key |mask|, as payload bytes
   starting |offset| bytes into a frame's payload (masking is its own
   inverse). */
void web_ws_mask(uint8_t *p, size_t len, const uint8_t mask[4],
                 uint64_t offset);

/* web_ws_control_write writes a whole PING, PONG or CLOSE frame with the
   |len| (<= 125) bytes at |payload| into |out| (|cap| bytes), masked with
   |mask| when not NULL, and returns its size; TERN_ERR_INVALID for another
   opcode or a longer payload, TERN_ERR_TOO_LARGE when |cap| is short. */
tern_ssize web_ws_control_write(uint8_t *out, size_t cap, int opcode,
                                const uint8_t *payload, size_t len,
                                const uint8_t *mask);

/* web_ws_close_write writes a CLOSE frame: no body when |code| is 0, else
   the code and |reason| (<= 123 bytes of UTF-8).  Returns its size or
   TERN_ERR_INVALID (a code web_ws_close_code_valid refuses, a reason that
   is too long or not UTF-8, a reason without a code), TERN_ERR_TOO_LARGE
   (|cap| short). */
tern_ssize web_ws_close_write(uint8_t *out, size_t cap, unsigned code,
                              const char *reason, size_t reasonlen,
                              const uint8_t *mask);

#endif
