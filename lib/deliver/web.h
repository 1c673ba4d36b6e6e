/*
 * The state of the web framings' connections, which follows their struct
 * conn in the same block: a webconn for every one (framing.c), then, for
 * the two WebSocket framings, a wsconn (wsconn.c).  And the functions
 * framing.c, wsconn.c and conn.c call across each other for them.
 */
#ifndef TERN_DELIVER_WEB_H
#define TERN_DELIVER_WEB_H

#include <stdint.h>

#include "deliver/hub.h"
#include "web/ws.h"

/* An item that did not fit the host's buffer, written on later. */
typedef struct web_spill {
  size_t len, off;         /* bytes[off..len) are still to be written      */
  uint8_t bytes[];
} web_spill;

/* The state of a web connection, allocated right after its conn (a
   one-way one's ends at CONN_ONEWAY_SIZE): one pointer, so an idle SSE
   subscriber's block is 152 bytes.  Its flags are the conn's web_flags,
   SSE's hint its retry_ms; a poll's block has hold_until[0] too. */
typedef struct webconn {
  web_spill *spill;        /* an item that did not fit; NULL: none         */
  tern_tstamp hold_until[]; /* POLL: an empty answer at this time          */
} webconn;

/* conn.web_flags */
enum {
  WEB_RETRY_DUE = 0x1,     /* SSE: "retry:" not written yet                */
  WEB_ARRAY_OPEN = 0x2     /* POLL: "[" written, "]" not yet               */
};

/* The largest message a tern.json peer may send ({"ack":N} and spaces),
   and a tern.bin peer (its payload streams through: any number of
   binary frames). */
#define WS_JSON_IN_MAX 128
#define WS_BIN_IN_MAX (1u << 20)

/* wsconn.close: where the closing handshake stands. */
enum {
  WS_OPEN = 0,      /* no CLOSE yet                                       */
  WS_CLOSE_DUE,     /* the connection ended: our CLOSE is to be written   */
  WS_CLOSE_SENT     /* written (or started, in ctl)                       */
};

/* wsconn.ctl: the control frame being written. */
enum {
  WS_CTL_NONE = 0,
  WS_CTL_PING,             /* ours: ping_stamp                             */
  WS_CTL_PONG,             /* side->out                                    */
  WS_CTL_CLOSE             /* from the close fields and the goaway reason  */
};

/* What a WebSocket connection holds only while it needs it, so that an
   idle one keeps none: the decoder in the middle of a frame or message
   (between them a fresh one continues it), the PING of the peer to
   answer, the PONG being written, a tern.json message that came in
   pieces.  The hub keeps one spare. */
typedef struct ws_side {
  web_ws_decoder dec;      /* the peer's frames (masked)                    */
  uint8_t pong_len, out_len, jlen;
  uint8_t pong[WEB_WS_CONTROL_MAX]; /* the PING to answer (pong_due)       */
  uint8_t out[WEB_WS_CONTROL_MAX];  /* the PONG being written              */
  uint8_t jbuf[WS_JSON_IN_MAX];     /* the open text message               */
} ws_side;

/* The state of a WebSocket connection, after its webconn.  A control
   frame being written is not kept as bytes: it is encoded again from
   what it was made of (ctl) for each write, |ctl_off| bytes in. */
typedef struct wsconn {
  ws_side *side;           /* NULL while nothing needs it                   */
  tern_tstamp ping_stamp;  /* our PING being written: its payload           */
  const char *close_why;   /* its reason (static); NULL: the goaway name    */
  uint16_t close_code;     /* the CLOSE to send: 0: from the goaway reason  */
  uint8_t close;           /* WS_OPEN, WS_CLOSE_DUE, WS_CLOSE_SENT          */
  uint8_t close_empty;     /* the peer's CLOSE had no code: echo none       */
  uint8_t pong_due;        /* a PING of the peer to answer (side->pong)     */
  uint8_t ctl, ctl_off;    /* the control frame being written (WS_CTL_*)    */
} wsconn;

static inline webconn *web_of(const conn *c) {
  return (webconn *)(void *)((uint8_t *)(uintptr_t)c +
                             (conn_is_oneway(c) ? CONN_ONEWAY_SIZE
                                                : sizeof(conn)));
}

static inline wsconn *ws_of(const conn *c) {
  return (wsconn *)(void *)((uint8_t *)(uintptr_t)c + sizeof(conn) +
                            sizeof(webconn));
}

static inline int is_ws(const conn *c) {
  return c->framing == TERN_FRAMING_WS_BIN ||
         c->framing == TERN_FRAMING_WS_JSON;
}

/* ---- conn.c: the binary framing's reader and writer, for tern.bin ------ */
/* conn_new_binary: tern_conn_new's connection in a block of |size| bytes
   (>= sizeof(conn), zeroed past the conn); 0, TERN_ERR_NOMEM. */
int conn_new_binary(tern_hub *hub, size_t size, tern_tstamp now, conn **pc);
/* The bodies of tern_conn_read, tern_conn_write and tern_conn_want_write
   for the binary framing's bytes, whatever carries them. */
tern_ssize conn_read_binary(conn *c, const uint8_t *in, size_t len,
                            tern_tstamp now);
tern_ssize conn_write_binary(conn *c, uint8_t *buf, size_t cap,
                             tern_tstamp now);
int conn_binary_wants_write(const conn *c);

/* ---- framing.c ---------------------------------------------------------- */
/* framing_goaway_name: "restart", "proto", ... as in the goodbye object. */
const char *framing_goaway_name(int reason);

/* ---- wsconn.c ----------------------------------------------------------- */
/* ws_init readies the wsconn of a new connection. */
void ws_init(conn *c);
/* framing_read: tern_conn_read of any web connection (open, not closing):
   the WebSocket ones decode, the others refuse (TERN_ERR_STATE). */
tern_ssize framing_read(conn *c, const uint8_t *in, size_t len,
                        tern_tstamp now);
/* ws_on_close: conn_close ended a WebSocket connection: a CLOSE is due,
   so it stays CLOSING until that is written. */
void ws_on_close(conn *c);
/* tern.bin's write and wants_write. */
tern_ssize ws_bin_write(conn *c, uint8_t *buf, size_t cap, tern_tstamp now);
int ws_bin_wants_write(const conn *c);
/* For tern.json (framing.c): the control frames.  Each continues the
   frame in progress first and returns 1 when nothing of its own waits
   (all of it is in [*p, end)), 0 when it must wait for the next write. */
int ws_flush_ctl(conn *c, uint8_t **p, uint8_t *end);
int ws_put_pong(conn *c, uint8_t **p, uint8_t *end);
int ws_put_ping(conn *c, uint8_t **p, uint8_t *end, tern_tstamp now);
int ws_put_close(conn *c, uint8_t **p, uint8_t *end);
/* ws_ctl_waits: a control frame is due or in progress. */
static inline int ws_ctl_waits(const wsconn *ws) {
  return ws->ctl != WS_CTL_NONE || ws->pong_due || ws->close == WS_CLOSE_DUE;
}
/* ws_release frees what the connection holds (tern_conn_del). */
void ws_release(tern_hub *hub, conn *c);

#endif
