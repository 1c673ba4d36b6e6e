/*
 * Fuzz target for the WebSocket frame decoder (lib/web/ws.c).
 *
 * Input: 4 bytes of settings (role; max_frame and max_message picked from
 * small and large values; a seed for chunk sizes and the output buffer's
 * size), then the byte stream a peer sends.  The stream is decoded twice,
 * all at once and in random pieces with a random output capacity, and both
 * runs must produce the same transcript: the complete messages, control
 * frames, close, and the final error with its close code.  Every event is
 * checked against the limits (DATA within the output capacity, text
 * messages valid UTF-8, control payloads <= 125 bytes, close codes valid).
 * Then what was accepted is encoded again (masked for a server, with
 * different fragmentation and the control frames in between) and must
 * decode to the same transcript, without the error.  Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/utf8.h"
#include "web/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "ws_fuzz: %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
      abort();                                                              \
    }                                                                       \
  } while (0)

/* A transcript: items of (kind, opcode/code, length, bytes). */
typedef struct item {
  int kind; /* 'T', 'B', 'P', 'O', 'C' */
  unsigned code;
  uint8_t *bytes;
  size_t len;
} item;

typedef struct transcript {
  item *items;
  size_t n, cap;
  uint8_t *partial; /* the open message's bytes so far */
  size_t partial_len;
  tern_ssize err;
  unsigned close_code;
} transcript;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  REQUIRE(q != NULL);
  return q;
}

static void add_item(transcript *t, int kind, unsigned code,
                     const uint8_t *p, size_t len) {
  item *it;
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 16;
    t->items = xrealloc(t->items, t->cap * sizeof *t->items);
  }
  it = &t->items[t->n++];
  it->kind = kind;
  it->code = code;
  it->len = len;
  it->bytes = xrealloc(NULL, len);
  if (len) {
    memcpy(it->bytes, p, len);
  }
}

static void free_transcript(transcript *t) {
  for (size_t i = 0; i < t->n; ++i) {
    free(t->items[i].bytes);
  }
  free(t->items);
  free(t->partial);
  memset(t, 0, sizeof *t);
}

/* A small deterministic generator for chunk sizes. */
static uint32_t next_rand(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

/*
 * decode runs a decoder over |in|; |seed| 0 feeds it whole with a large
 * output buffer, otherwise in pieces of 1..(seed-derived) bytes with an
 * output capacity of 1..64.
 */
static void decode(int role, uint64_t max_frame, uint64_t max_message,
                   const uint8_t *in, size_t len, uint32_t seed,
                   transcript *t) {
  web_ws_decoder d;
  uint8_t *out;
  size_t outcap = seed ? 1 + seed % 64 : len + 1, pos = 0;
  uint32_t rs = seed;
  int open_opcode = 0;
  memset(t, 0, sizeof *t);
  out = xrealloc(NULL, outcap);
  web_ws_decoder_init(&d, role, max_frame, max_message);
  while (pos < len) {
    size_t piece = len - pos, off = 0;
    if (seed) {
      size_t want = 1 + next_rand(&rs) % 17;
      piece = want < piece ? want : piece;
    }
    while (off < piece) {
      web_ws_event ev;
      tern_ssize n;
      memset(&ev, 0xa5, sizeof ev);
      n = web_ws_decode(&d, in + pos + off, piece - off, out, outcap, &ev);
      if (n < 0) {
        REQUIRE(n == TERN_ERR_PROTO || n == TERN_ERR_TOO_LARGE ||
                n == TERN_ERR_CLOSED);
        if (n == TERN_ERR_PROTO) {
          REQUIRE(d.close_code == 1002 || d.close_code == 1007);
        } else if (n == TERN_ERR_TOO_LARGE) {
          REQUIRE(d.close_code == 1009);
        }
        t->err = n;
        t->close_code = d.close_code;
        /* Finished: every later call fails the same way. */
        REQUIRE(web_ws_decode(&d, in, len, out, outcap, &ev) ==
                TERN_ERR_CLOSED);
        free(out);
        return;
      }
      REQUIRE((size_t)n <= piece - off);
      off += (size_t)n;
      switch (ev.type) {
      case WEB_WS_EV_NONE:
        REQUIRE(off == piece);
        break;
      case WEB_WS_EV_DATA:
        REQUIRE(ev.len <= outcap);
        REQUIRE(ev.len > 0 || ev.fin);
        REQUIRE(ev.len == 0 || ev.data == out);
        REQUIRE(ev.opcode == WEB_WS_TEXT || ev.opcode == WEB_WS_BINARY);
        REQUIRE(open_opcode == 0 || open_opcode == ev.opcode);
        open_opcode = ev.opcode;
        t->partial = xrealloc(t->partial, t->partial_len + ev.len);
        if (ev.len) {
          memcpy(t->partial + t->partial_len, ev.data, ev.len);
        }
        t->partial_len += ev.len;
        REQUIRE(t->partial_len <= max_message);
        if (ev.fin) {
          if (ev.opcode == WEB_WS_TEXT) {
            REQUIRE(web_utf8_valid(t->partial, t->partial_len));
          }
          add_item(t, ev.opcode == WEB_WS_TEXT ? 'T' : 'B', 0, t->partial,
                   t->partial_len);
          t->partial_len = 0;
          open_opcode = 0;
        }
        break;
      case WEB_WS_EV_PING:
      case WEB_WS_EV_PONG:
        REQUIRE(ev.len <= WEB_WS_CONTROL_MAX);
        add_item(t, ev.type == WEB_WS_EV_PING ? 'P' : 'O', 0, ev.data,
                 ev.len);
        break;
      case WEB_WS_EV_CLOSE:
        REQUIRE(ev.len <= WEB_WS_CONTROL_MAX - 2);
        REQUIRE(ev.close_code == WEB_WS_CLOSE_NO_STATUS ||
                web_ws_close_code_valid(ev.close_code));
        REQUIRE(ev.close_code != WEB_WS_CLOSE_NO_STATUS || ev.len == 0);
        REQUIRE(web_utf8_valid(ev.data, ev.len));
        add_item(t, 'C', ev.close_code, ev.data, ev.len);
        break;
      default:
        REQUIRE(0);
      }
    }
    pos += piece;
  }
  free(out);
}

static void same(const transcript *a, const transcript *b, int with_end) {
  REQUIRE(a->n == b->n);
  for (size_t i = 0; i < a->n; ++i) {
    REQUIRE(a->items[i].kind == b->items[i].kind);
    REQUIRE(a->items[i].code == b->items[i].code);
    REQUIRE(a->items[i].len == b->items[i].len);
    REQUIRE(a->items[i].len == 0 ||
            memcmp(a->items[i].bytes, b->items[i].bytes, a->items[i].len) ==
                0);
  }
  if (with_end) {
    REQUIRE(a->err == b->err);
    REQUIRE(a->close_code == b->close_code);
    /* The open message's bytes so far: equal, except that a chunk that
       fails the UTF-8 check is not delivered, and chunks differ between
       runs, so after an error one is a prefix of the other. */
    {
      size_t common = a->partial_len < b->partial_len ? a->partial_len
                                                      : b->partial_len;
      REQUIRE(a->err != 0 || a->partial_len == b->partial_len);
      REQUIRE(common == 0 || memcmp(a->partial, b->partial, common) == 0);
    }
  }
}

/* Output buffer for the re-encoding. */
typedef struct obuf {
  uint8_t *p;
  size_t len, cap;
} obuf;

static uint8_t *room(obuf *o, size_t n) {
  if (o->cap - o->len < n) {
    o->cap = (o->cap + n) * 2;
    o->p = xrealloc(o->p, o->cap);
  }
  o->len += n;
  return o->p + o->len - n;
}

static void put_frame(obuf *o, int fin, int opcode, const uint8_t *p,
                      size_t len, const uint8_t *mask) {
  size_t h = web_ws_header_len(len, mask != NULL);
  uint8_t *at = room(o, h + len);
  REQUIRE(web_ws_header_write(at, fin, opcode, len, mask) == h);
  if (len) {
    memcpy(at + h, p, len);
    if (mask) {
      web_ws_mask(at + h, len, mask, 0);
    }
  }
}

static void put_control(obuf *o, const item *it, const uint8_t *mask) {
  uint8_t f[WEB_WS_HEADER_MAX + WEB_WS_CONTROL_MAX];
  tern_ssize n;
  if (it->kind == 'C') {
    n = web_ws_close_write(f, sizeof f,
                           it->code == WEB_WS_CLOSE_NO_STATUS ? 0 : it->code,
                           (const char *)it->bytes, it->len, mask);
  } else {
    n = web_ws_control_write(f, sizeof f,
                             it->kind == 'P' ? WEB_WS_PING : WEB_WS_PONG,
                             it->bytes, it->len, mask);
  }
  REQUIRE(n > 0);
  memcpy(room(o, (size_t)n), f, (size_t)n);
}

/* put_message writes a data message in fragments of at most |max_frame|
   bytes; |ctl| (when not NULL) goes after the first fragment, where the
   decoder reports it before the message, as in the transcript. */
static void put_message(obuf *o, const item *it, const item *ctl,
                        uint64_t max_frame, const uint8_t *mask,
                        uint32_t *rs) {
  size_t at = 0;
  int opcode = it->kind == 'T' ? WEB_WS_TEXT : WEB_WS_BINARY;
  REQUIRE(max_frame > 0 || it->len == 0);
  do {
    size_t frag = it->len - at, limit = 1 + next_rand(rs) % 40;
    if (frag > limit) {
      frag = limit;
    }
    if (frag > max_frame) {
      frag = (size_t)max_frame;
    }
    if (ctl != NULL && frag == it->len) {
      frag = it->len - 1; /* leave a rest to put |ctl| before */
    }
    put_frame(o, at + frag == it->len, opcode, it->bytes + at, frag, mask);
    opcode = WEB_WS_CONT;
    at += frag;
    if (ctl != NULL) {
      REQUIRE(at < it->len);
      put_control(o, ctl, mask);
      ctl = NULL;
    }
  } while (at < it->len);
}

/* reencode writes |t|'s items as frames, masked for a server, with other
   fragment sizes, and a ping or pong that came just before a message of
   two bytes or more moved inside it. */
static void reencode(const transcript *t, int role, uint64_t max_frame,
                     uint32_t seed, obuf *o) {
  uint8_t mask[4];
  const uint8_t *m = role == WEB_WS_SERVER ? mask : NULL;
  uint32_t rs = seed | 1;
  for (size_t i = 0; i < t->n; ++i) {
    const item *it = &t->items[i];
    uint32_t r = next_rand(&rs);
    mask[0] = (uint8_t)r, mask[1] = (uint8_t)(r >> 8);
    mask[2] = (uint8_t)(r >> 16), mask[3] = (uint8_t)(r * 7);
    if (it->kind == 'T' || it->kind == 'B') {
      put_message(o, it, NULL, max_frame, m, &rs);
    } else if ((it->kind == 'P' || it->kind == 'O') && i + 1 < t->n &&
               (t->items[i + 1].kind == 'T' || t->items[i + 1].kind == 'B') &&
               t->items[i + 1].len >= 2 && max_frame >= 1 && (r & 256)) {
      put_message(o, &t->items[i + 1], it, max_frame, m, &rs);
      ++i;
    } else {
      put_control(o, it, m);
    }
  }
}

static const uint64_t limits[8] = {0, 1, 5, 125, 126, 1000, 65536,
                                   UINT64_MAX};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  transcript whole, pieces, again;
  obuf o = {NULL, 0, 0};
  int role;
  uint64_t max_frame, max_message;
  uint32_t seed;
  if (size < 4) {
    return 0;
  }
  role = data[0] & 1 ? WEB_WS_CLIENT : WEB_WS_SERVER;
  max_frame = limits[data[0] >> 1 & 7];
  max_message = limits[data[0] >> 4 & 7];
  seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
  seed |= 1;
  data += 4;
  size -= 4;

  decode(role, max_frame, max_message, data, size, 0, &whole);
  decode(role, max_frame, max_message, data, size, seed, &pieces);
  same(&whole, &pieces, 1);

  reencode(&whole, role, max_frame, seed, &o);
  decode(role, max_frame, max_message, o.p, o.len, seed * 3 + 1, &again);
  same(&whole, &again, 0);
  REQUIRE(again.err == 0 || again.err == TERN_ERR_CLOSED);
  REQUIRE(again.partial_len == 0);

  free(o.p);
  free_transcript(&whole);
  free_transcript(&pieces);
  free_transcript(&again);
  return 0;
}
