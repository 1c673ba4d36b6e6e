/*
 * Bad input and bad luck: malformed client frames (whole and split at every
 * byte), NULL arguments to every public function, and an allocation-failure
 * sweep over a full scenario.  The promise under test (design.md section
 * 8): a bad frame, a NULL or a failed allocation gets a clear error code
 * and changes nothing else; nothing aborts, leaks or loses a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

/* ---- a raw frame builder (malformed frames on purpose) ------------------ */

typedef struct raw {
  uint8_t b[8192];
  size_t n;
} raw;

static void r_byte(raw *r, unsigned v) { r->b[r->n++] = (uint8_t)v; }

static void r_bytes(raw *r, const void *p, size_t n) {
  memcpy(r->b + r->n, p, n);
  r->n += n;
}

static void r_varint(raw *r, uint64_t v) {
  r->n = (size_t)(wire_put_varint(r->b + r->n, v) - r->b);
}

/* r_varint_w writes |v| in exactly |width| bytes, shortest or not. */
static void r_varint_w(raw *r, uint64_t v, unsigned width) {
  static const unsigned prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
  for (unsigned i = 0; i < width; ++i) {
    unsigned byte = (unsigned)(v >> (8 * (width - 1 - i))) & 0xff;
    r_byte(r, i == 0 ? (byte & 0x3f) | prefix[width] : byte);
  }
}

/* r_frame appends type, shortest length and |body|. */
static void r_frame(raw *r, unsigned type, const raw *body) {
  r_byte(r, type);
  r_varint(r, body->n);
  r_bytes(r, body->b, body->n);
}

static void r_hello(raw *r, const char *key) {
  r->n +=
      tu_hello_bytes(r->b + r->n, sizeof(r->b) - r->n, key, 0, 0, 0, "token");
}

/* ---- one client byte stream against a fresh hub ------------------------- */

typedef struct outcome {
  tern_ssize first_error; /* first negative tern_conn_read result, or 0 */
  int closed;
  int conn_error;
  tern_stats st; /* bytes_in zeroed: it counts refused reads too */
  tern_session_info info;
  uint8_t out[4096];
  size_t outlen;
  int out_bad;
} outcome;

/*
 * run_stream feeds |len| bytes to a new connection in pieces cut at
 * |cuts| (ascending offsets), then drains its output.  The hub holds a
 * session "k" with two pending messages before.
 */
static void run_stream(const uint8_t *p, size_t len, const size_t *cuts,
                       size_t ncuts, outcome *res, tern_stats *before,
                       tern_session_info *ibefore) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "m1", "one", T0);
  tu_pub(hub, "k", TERN_PRIO_LOW, "m2", "two", T0);
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0);
  if (before) {
    *before = tu_stats(hub);
    *ibefore = tu_info(hub, "k");
  }
  memset(res, 0, sizeof(*res));
  size_t at = 0;
  for (size_t i = 0; i <= ncuts; ++i) {
    size_t end = i < ncuts ? cuts[i] : len;
    tern_ssize rv = tern_conn_read(c, p + at, end - at, T0);
    if (rv < 0 && res->first_error == 0) {
      res->first_error = rv;
    }
    if (rv >= 0 && (size_t)rv != end - at) {
      res->first_error = -9999; /* not all bytes consumed */
    }
    at = end;
  }
  tu_out o;
  tu_out_init(&o);
  tu_drain(&o, c, T0);
  res->closed = tern_conn_is_closed(c);
  res->conn_error = tu_conn_info(c).error;
  res->outlen = o.len < sizeof(res->out) ? o.len : sizeof(res->out);
  memcpy(res->out, o.stream, res->outlen);
  res->out_bad = o.bad;
  tu_out_free(&o);
  res->st = tu_stats(hub);
  res->st.bytes_in = 0;
  res->info = tu_info(hub, "k");
  tern_conn_del(c);
  tern_hub_del(hub);
}

static int same_outcome(const outcome *a, const outcome *b) {
  return a->first_error == b->first_error && a->closed == b->closed &&
         a->conn_error == b->conn_error &&
         memcmp(&a->st, &b->st, sizeof(a->st)) == 0 &&
         tu_info_equal(&a->info, &b->info) && a->outlen == b->outlen &&
         memcmp(a->out, b->out, a->outlen) == 0;
}

/* The GOAWAY reason in an outcome's output, or -1. */
static int goaway_reason(const outcome *r) {
  size_t at = 0;
  int reason = -1;
  while (at < r->outlen) {
    wire_frame f;
    tern_ssize n = wire_frame_decode(&f, r->out + at, r->outlen - at, 1 << 20);
    if (n <= 0) {
      return -2;
    }
    if (f.type == WIRE_GOAWAY) {
      reason = (int)f.u.goaway.reason;
    }
    at += (size_t)n;
  }
  return reason;
}

/* split_same: every single split point, and byte-at-a-time, give |ref|. */
static void split_same(const uint8_t *p, size_t len, const outcome *ref,
                       const char *what) {
  int same = 1;
  size_t bad_at = 0;
  for (size_t k = 1; k < len; ++k) {
    outcome r;
    run_stream(p, len, &k, 1, &r, NULL, NULL);
    if (!same_outcome(&r, ref)) {
      if (same) {
        bad_at = k;
      }
      same = 0;
    }
  }
  size_t *cuts = tu_xmalloc((len + 1) * sizeof(size_t));
  memset(cuts, 0, (len + 1) * sizeof(size_t));
  for (size_t k = 1; k < len; ++k) {
    cuts[k - 1] = k;
  }
  outcome r;
  run_stream(p, len, cuts, len ? len - 1 : 0, &r, NULL, NULL);
  free(cuts);
  int bytewise = same_outcome(&r, ref);
  CHECK(same && bytewise,
        "%s: split at every point and byte by byte, same result", what);
  if (!same) {
    tap_diag("first differing split: %zu of %zu", bad_at, len);
  }
  if (!bytewise) {
    tap_diag("byte by byte differs: first error %td", (ptrdiff_t)r.first_error);
  }
}

static void bad_case(const raw *r, int want, int reason, const char *what) {
  outcome ref;
  tern_stats before;
  tern_session_info ib;
  run_stream(r->b, r->n, NULL, 0, &ref, &before, &ib);
  char buf[200];
  snprintf(buf, sizeof(buf), "%s -> %s", what, tern_strerror(want));
  CHECK_INT(ref.first_error, want, buf);
  CHECK(ref.closed && ref.conn_error == want && goaway_reason(&ref) == reason &&
            !ref.out_bad,
        "%s: closed with GOAWAY reason %d", what, reason);
  tern_stats a = ref.st;
  CHECK(tu_gauges_equal(&before, &a) && a.published == before.published &&
            a.acked == 0 && a.sent == 0 &&
            a.proto_errors ==
                before.proto_errors +
                    (want == TERN_ERR_PROTO || want == TERN_ERR_TOO_LARGE) &&
            tu_info_equal(&ib, &ref.info),
        "%s: the hub is otherwise unchanged", what);
  split_same(r->b, r->n, &ref, what);
}

static void test_bad_frames(void) {
  raw r, body;

  /* A good stream first: the split property holds for it too. */
  r.n = 0;
  r.n += tu_hello_bytes(r.b, sizeof(r.b), "k", 0, 0, 0,
                        "a-token-long-enough-to-need-a-two-byte-length-"
                        "varint-in-the-frame-header-of-this-hello");
  r.n += tu_ping_bytes(r.b + r.n, sizeof(r.b) - r.n, WIRE_PING, 1);
  r.n += tu_ack_bytes(r.b + r.n, sizeof(r.b) - r.n, 0);
  r.n += tu_ping_bytes(r.b + r.n, sizeof(r.b) - r.n, WIRE_PONG, 5);
  r.n += tu_ping_bytes(r.b + r.n, sizeof(r.b) - r.n, WIRE_PING, 7);
  outcome good;
  run_stream(r.b, r.n, NULL, 0, &good, NULL, NULL);
  CHECK(good.first_error == 0 && !good.closed && good.outlen > 0 &&
            good.info.nconns == 1 && good.st.sent == 2,
        "good stream: accepted, WELCOME, PONG and 2 MSG written");
  split_same(r.b, r.n, &good, "good stream");

  /* Unknown frame type after a HELLO. */
  r.n = 0;
  r_hello(&r, "k");
  body.n = 0;
  r_byte(&body, 0);
  r_frame(&r, 0x0b, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "unknown type 0x0b");
  /* PUBLISH on a connection its host did not let publish; PUBACK, a
     server's frame. */
  r.n = 0;
  r_hello(&r, "k");
  r_frame(&r, 0x09, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_REJECTED, "PUBLISH not allowed");
  r.n = 0;
  r_hello(&r, "k");
  r_frame(&r, 0x0a, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "PUBACK from a client");
  r.n = 0;
  r_hello(&r, "k");
  r_frame(&r, 0x00, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "type 0x00");
  r.n = 0;
  r_hello(&r, "k");
  r_frame(&r, 0xff, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "type 0xff");

  /* Oversized body: refused from the header alone. */
  r.n = 0;
  r_hello(&r, "k");
  r_byte(&r, WIRE_ACK);
  r_varint(&r, WIRE_CLIENT_BODY_MAX + 1);
  r_byte(&r, 1);
  bad_case(&r, TERN_ERR_TOO_LARGE, TERN_GOAWAY_TOO_LARGE,
           "body over the client limit");
  r.n = 0;
  r_hello(&r, "k");
  r_byte(&r, WIRE_PING);
  r_varint(&r, WIRE_VARINT_MAX);
  bad_case(&r, TERN_ERR_TOO_LARGE, TERN_GOAWAY_TOO_LARGE, "body length 2^62-1");

  /* Non-shortest varints: in the frame length and inside a body. */
  r.n = 0;
  r_hello(&r, "k");
  r_byte(&r, WIRE_ACK);
  r_varint_w(&r, 1, 2);
  r_byte(&r, 0);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO,
           "frame length in a 2-byte varint");
  r.n = 0;
  r_hello(&r, "k");
  body.n = 0;
  r_varint_w(&body, 0, 4);
  r_frame(&r, WIRE_ACK, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "ACK seq in a 4-byte varint");
  r.n = 0;
  r_hello(&r, "k");
  body.n = 0;
  r_varint_w(&body, 5, 8);
  r_frame(&r, WIRE_ACK, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO,
           "ACK seq in an 8-byte varint");

  /* Lengths that lie. */
  r.n = 0;
  r_hello(&r, "k");
  body.n = 0;
  r_byte(&body, 0);
  r_byte(&body, 0);
  r_frame(&r, WIRE_ACK, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "ACK with a byte left over");
  r.n = 0;
  r_hello(&r, "k");
  body.n = 0;
  r_bytes(&body, "1234567", 7);
  r_frame(&r, WIRE_PING, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "PING of 7 bytes");
  r.n = 0;
  body.n = 0;
  r_varint(&body, WIRE_VERSION);
  r_varint(&body, 0);
  r_bytes(&body, "\0\0\0\0\0\0\0\0", 8);
  r_varint(&body, 0);
  r_varint(&body, 100); /* key length 100, but 1 byte follows */
  r_byte(&body, 'k');
  r_frame(&r, WIRE_HELLO, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO,
           "HELLO whose key length runs past the body");
  r.n = 0;
  body.n = 0;
  r_varint(&body, WIRE_VERSION);
  r_varint(&body, 0);
  r_bytes(&body, "\0\0\0\0\0\0\0\0", 8);
  r_varint(&body, 0);
  r_varint(&body, 0); /* empty key */
  r_varint(&body, 0);
  r_frame(&r, WIRE_HELLO, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "HELLO with an empty key");
  r.n = 0;
  body.n = 0;
  r_varint(&body, WIRE_VERSION);
  r_varint(&body, 0);
  r_bytes(&body, "\0\0\0\0\0\0\0\0", 8);
  r_varint(&body, 0);
  r_varint(&body, TERN_MAX_SESSION_KEY + 1);
  for (int i = 0; i <= TERN_MAX_SESSION_KEY; ++i) {
    r_byte(&body, 'k');
  }
  r_varint(&body, 0);
  r_frame(&r, WIRE_HELLO, &body);
  bad_case(&r, TERN_ERR_TOO_LARGE, TERN_GOAWAY_TOO_LARGE,
           "HELLO with a 129-byte key");
  r.n = 0;
  body.n = 0;
  r_varint(&body, WIRE_VERSION);
  r_varint(&body, 0);
  r_bytes(&body, "\0\0\0\0\0\0\0\0", 8);
  r_varint(&body, 0);
  r_varint(&body, 1);
  r_byte(&body, 'k');
  r_varint(&body, TERN_MAX_TOKEN + 1);
  for (int i = 0; i <= TERN_MAX_TOKEN; ++i) {
    r_byte(&body, 't');
  }
  r_frame(&r, WIRE_HELLO, &body);
  bad_case(&r, TERN_ERR_TOO_LARGE, TERN_GOAWAY_TOO_LARGE,
           "HELLO with a 1025-byte token");
  r.n = 0;
  body.n = 0;
  r_varint(&body, WIRE_VERSION + 1);
  r_varint(&body, 0);
  r_bytes(&body, "\0\0\0\0\0\0\0\0", 8);
  r_varint(&body, 0);
  r_varint(&body, 1);
  r_byte(&body, 'k');
  r_varint(&body, 0);
  r_frame(&r, WIRE_HELLO, &body);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "HELLO of version 2");

  /* Server frames sent by a client. */
  static const struct {
    uint8_t type;
    const char *what;
  } server[] = {{WIRE_MSG, "MSG from a client"},
                {WIRE_WELCOME, "WELCOME from a client"},
                {WIRE_DROPPED, "DROPPED from a client"}};
  for (size_t k = 0; k < 3; ++k) {
    wire_frame f;
    memset(&f, 0, sizeof(f));
    f.type = server[k].type;
    if (f.type == WIRE_MSG) {
      f.u.msg.seq = 1;
      f.u.msg.id = (const uint8_t *)"x";
      f.u.msg.idlen = 1;
      f.u.msg.payload = (const uint8_t *)"p";
      f.u.msg.payloadlen = 1;
    } else if (f.type == WIRE_WELCOME) {
      f.u.welcome.version = WIRE_VERSION;
      f.u.welcome.epoch = 1;
    } else {
      f.u.dropped.count = 1;
      f.u.dropped.reason = TERN_DROP_EXPIRED;
    }
    r.n = 0;
    r_hello(&r, "k");
    r.n += tu_encode(r.b + r.n, sizeof(r.b) - r.n, &f);
    bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, server[k].what);
  }

  /* Frames in the wrong state. */
  r.n = 0;
  r.n += tu_ack_bytes(r.b, sizeof(r.b), 0);
  r_hello(&r, "k");
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "ACK before HELLO");
  r.n = 0;
  r.n += tu_ping_bytes(r.b, sizeof(r.b), WIRE_PING, 1);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "PING before HELLO");
  r.n = 0;
  r_hello(&r, "k");
  r_hello(&r, "k");
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "second HELLO");
  r.n = 0;
  r_hello(&r, "k");
  r.n += tu_ack_bytes(r.b + r.n, sizeof(r.b) - r.n, 1);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO, "ACK of a seq never sent");
  /* Garbage after the bad frame is never looked at. */
  r.n = 0;
  r_hello(&r, "k");
  r_byte(&r, 0x42);
  r_byte(&r, 0);
  r.n += tu_ping_bytes(r.b + r.n, sizeof(r.b) - r.n, WIRE_PING, 9);
  bad_case(&r, TERN_ERR_PROTO, TERN_GOAWAY_PROTO,
           "a bad frame followed by a good one");
}

static void test_bad_frame_effects(void) {
  /* Frames before the bad one take effect; a second connection of the
     session does not notice. */
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o1, o2;
  tu_out_init(&o1);
  tu_out_init(&o2);
  tern_conn *c1 = tu_connect(hub, "k", T0, &o1);
  tern_conn *c2 = tu_connect(hub, "k", T0, &o2);
  for (int i = 0; i < 4; ++i) {
    char id[8];
    snprintf(id, sizeof(id), "m%d", i);
    tu_pub(hub, "k", TERN_PRIO_NORMAL, id, id, T0);
  }
  tu_drain(&o1, c1, T0);
  CHECK_INT(tu_count(&o1, WIRE_MSG, 0), 4, "4 in flight on c1");
  raw r;
  r.n = tu_ack_bytes(r.b, sizeof(r.b), 2);
  r_byte(&r, 0x0e); /* bad type */
  r_byte(&r, 0);
  tern_stats before = tu_stats(hub);
  CHECK_INT(tern_conn_read(c1, r.b, r.n, T0), TERN_ERR_PROTO,
            "ACK then garbage -> PROTO");
  tern_stats after = tu_stats(hub);
  CHECK_INT(after.acked, 2, "the ACK before the bad frame took effect");
  CHECK(after.messages == before.messages - 2 && after.inflight == 0,
        "the rest of c1's in-flight messages went back");
  CHECK_INT(tu_info(hub, "k").nconns, 1, "c2 stays attached");
  CHECK(!tern_conn_is_closed(c2), "c2 is not closed");
  tu_drain(&o2, c2, T0);
  CHECK(tu_count(&o2, WIRE_MSG, 0) == 2 && !tu_count(&o2, WIRE_GOAWAY, 0),
        "c2 receives the 2 returned messages");
  CHECK_INT(tern_conn_read(c1, r.b, 1, T0), TERN_ERR_CLOSED,
            "reading a closed connection -> CLOSED");
  CHECK(tern_err_is_fatal(TERN_ERR_PROTO), "PROTO is fatal for the conn");
  tern_conn_del(c1);
  tern_conn_del(c2);
  tu_out_free(&o1);
  tu_out_free(&o2);

  /* Bytes after a client GOAWAY in the same read are ignored. */
  tern_conn *c = NULL;
  tern_conn_new(&c, hub, T0);
  r.n = tu_hello_bytes(r.b, sizeof(r.b), "k", 0, 0, 0, NULL);
  r.n +=
      tu_goaway_bytes(r.b + r.n, sizeof(r.b) - r.n, TERN_GOAWAY_CLIENT, "bye");
  r_byte(&r, 0xff);
  r_byte(&r, 0xff);
  CHECK_INT(tern_conn_read(c, r.b, r.n, T0), (tern_ssize)r.n,
            "garbage after a client GOAWAY is not an error");
  CHECK(tern_conn_is_closed(c) && tu_stats(hub).proto_errors == 1,
        "closed quietly, no protocol error counted");
  tern_conn_del(c);

  /* A bad frame while a HELLO waits for the host. */
  tern_hub_del(hub);
  s.hello_accept = 1;
  hub = tu_hub(&s);
  c = NULL;
  tern_conn_new(&c, hub, T0);
  r.n = tu_hello_bytes(r.b, sizeof(r.b), "w", 0, 0, 0, NULL);
  r_byte(&r, WIRE_MSG);
  r_byte(&r, 0);
  CHECK_INT(tern_conn_read(c, r.b, r.n, T0), TERN_ERR_PROTO,
            "bad frame while HELLO waits -> PROTO");
  CHECK(tern_conn_is_closed(c), "closed");
  CHECK_INT(tern_conn_accept(c, T0), TERN_ERR_STATE,
            "the waiting HELLO is gone (accept -> STATE)");
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"w", 1) == NULL,
        "no session created");
  tern_conn_del(c);
  tern_hub_del(hub);
}

/* ---- NULL arguments ------------------------------------------------------ */

static void test_null_args(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tern_conn *c = tu_connect(hub, "k", T0, NULL);
  tern_session *sess = tern_hub_find_session(hub, (const uint8_t *)"k", 1);
  uint8_t buf[64];
  tern_stats st;
  tern_session_info si;
  tern_conn_info ci;
  tern_event ev;
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));

  CHECK_INT(tern_hub_new(NULL, NULL, NULL), TERN_ERR_INVALID,
            "tern_hub_new(NULL)");
  tern_hub_del(NULL);
  CHECK(tern_hub_get_epoch(NULL) == 0, "tern_hub_get_epoch(NULL) is 0");
  CHECK(tern_hub_get_expiry(NULL) == TERN_TSTAMP_NONE,
        "tern_hub_get_expiry(NULL) is NONE");
  CHECK_INT(tern_hub_handle_expiry(NULL, T0), TERN_ERR_INVALID,
            "tern_hub_handle_expiry(NULL)");
  CHECK(tern_hub_next_ready(NULL) == NULL, "tern_hub_next_ready(NULL)");
  CHECK_INT(tern_hub_goaway_all(NULL, 0, 0, T0), TERN_ERR_INVALID,
            "tern_hub_goaway_all(NULL)");
  memset(&st, 0x5a, sizeof(st));
  tern_stats st0 = st;
  tern_hub_get_stats(NULL, &st, sizeof(st));
  CHECK(memcmp(&st, &st0, sizeof(st)) == 0,
        "tern_hub_get_stats(NULL hub) leaves st alone");
  tern_hub_get_stats(hub, NULL, sizeof(st));
  CHECK_INT(tern_hub_publish(NULL, (const uint8_t *)"k", 1, &d, T0, NULL),
            TERN_ERR_INVALID, "tern_hub_publish(NULL hub)");
  CHECK_INT(tern_hub_publish(hub, NULL, 1, &d, T0, NULL), TERN_ERR_INVALID,
            "tern_hub_publish(NULL key)");
  CHECK_INT(tern_hub_publish(hub, (const uint8_t *)"k", 1, NULL, T0, NULL),
            TERN_ERR_INVALID, "tern_hub_publish(NULL desc)");
  CHECK(tern_hub_find_session(NULL, (const uint8_t *)"k", 1) == NULL,
        "tern_hub_find_session(NULL hub)");
  CHECK(tern_hub_find_session(hub, NULL, 1) == NULL,
        "tern_hub_find_session(NULL key)");
  CHECK(tern_hub_find_session(hub, (const uint8_t *)"k", 0) == NULL,
        "tern_hub_find_session(empty key)");
  memset(&si, 0x5a, sizeof(si));
  tern_session_get_info(NULL, &si, sizeof(si));
  CHECK(si.key == NULL && si.pending == 0 && si.nconns == 0,
        "tern_session_get_info(NULL) gives an empty description");
  tern_session_get_info(sess, NULL, sizeof(si));
  memset(&si, 0x5a, sizeof(si));
  tern_session_get_info(sess, &si, 0);
  CHECK(si.pending == 0x5a5a5a5au,
        "tern_session_get_info size 0 copies nothing");

  tern_conn *nc = (tern_conn *)buf;
  CHECK_INT(tern_conn_new(NULL, hub, T0), TERN_ERR_INVALID,
            "tern_conn_new(NULL pconn)");
  CHECK_INT(tern_conn_new(&nc, NULL, T0), TERN_ERR_INVALID,
            "tern_conn_new(NULL hub)");
  CHECK(nc == (tern_conn *)buf, "tern_conn_new INVALID leaves *pconn");
  tern_conn_del(NULL);
  CHECK_INT(tern_conn_read(NULL, buf, 1, T0), TERN_ERR_INVALID,
            "tern_conn_read(NULL conn)");
  CHECK_INT(tern_conn_read(c, NULL, 1, T0), TERN_ERR_INVALID,
            "tern_conn_read(NULL bytes, len 1)");
  CHECK_INT(tern_conn_read(c, NULL, 0, T0), 0,
            "tern_conn_read(NULL bytes, len 0) is 0");
  CHECK_INT(tern_conn_write(NULL, buf, sizeof(buf), T0), TERN_ERR_INVALID,
            "tern_conn_write(NULL conn)");
  CHECK_INT(tern_conn_write(c, NULL, 10, T0), TERN_ERR_INVALID,
            "tern_conn_write(NULL buf, cap 10)");
  CHECK_INT(tern_conn_write(c, NULL, 0, T0), 0,
            "tern_conn_write(NULL buf, cap 0) is 0");
  CHECK(!tern_conn_want_write(NULL), "tern_conn_want_write(NULL) is 0");
  CHECK(tern_conn_is_closed(NULL), "tern_conn_is_closed(NULL) is nonzero");
  CHECK_INT(tern_conn_accept(NULL, T0), TERN_ERR_INVALID,
            "tern_conn_accept(NULL)");
  CHECK_INT(tern_conn_goaway(NULL, 0, 0, T0), TERN_ERR_INVALID,
            "tern_conn_goaway(NULL)");
  CHECK_INT(tern_conn_goaway(c, 256, 0, T0), TERN_ERR_INVALID,
            "tern_conn_goaway(reason 256)");
  CHECK(!tern_conn_is_closed(c), "an INVALID goaway does not close");
  tern_conn_set_user_data(NULL, buf);
  CHECK(tern_conn_get_user_data(NULL) == NULL, "tern_conn_get_user_data(NULL)");
  CHECK(tern_conn_get_user_data(c) == NULL, "user data NULL at first");
  tern_conn_set_user_data(c, buf);
  CHECK(tern_conn_get_user_data(c) == buf, "user data set and got");
  CHECK(tern_conn_get_session(NULL) == NULL, "tern_conn_get_session(NULL)");
  CHECK(tern_conn_get_session(c) == sess, "tern_conn_get_session");
  memset(&ci, 0x5a, sizeof(ci));
  tern_conn_get_info(NULL, &ci, sizeof(ci));
  CHECK(ci.inflight == 0 && ci.rtt == 0 && ci.error == 0,
        "tern_conn_get_info(NULL) gives an empty description");
  tern_conn_get_info(c, NULL, sizeof(ci));
  CHECK_INT(tern_hub_next_event(NULL, &ev), TERN_ERR_INVALID,
            "tern_hub_next_event(NULL hub)");
  CHECK_INT(tern_hub_next_event(hub, NULL), TERN_ERR_INVALID,
            "tern_hub_next_event(NULL ev)");
  /* After all that the hub still works. */
  tu_pub(hub, "k", TERN_PRIO_NORMAL, "x", "x", T0);
  tu_out o;
  tu_out_init(&o);
  tu_drain(&o, c, T0);
  CHECK(tu_count(&o, WIRE_MSG, 0) == 1, "the hub still delivers");
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

/* ---- allocation-failure sweep ------------------------------------------- */

typedef struct sweep {
  tu_alloc a;
  tern_mem mem;
  tern_hub *hub;
  tern_conn *c;
  tu_out out;
  int errors;
  long nomem;    /* NOMEM results seen and recovered from           */
  long internal; /* connections closed with GOAWAY INTERNAL         */
  char ids[64][TERN_MAX_ID + 1];
  int nids;
  uint64_t published, messages;
} sweep;

static int sweep_verbose = 8;

static void bad(sweep *w, const char *what, long detail) {
  ++w->errors;
  if (sweep_verbose > 0) {
    --sweep_verbose;
    tap_diag("sweep (fail_at %ld%s): %s (%ld)", w->a.fail_at,
             w->a.fail_rest ? ", rest" : "", what, detail);
  }
}

/* recover: once an error surfaced, the allocator works again. */
static void recover(sweep *w) { w->a.fail_at = 0; }

static void harvest(sweep *w) {
  for (size_t k = 0; k < w->out.nframes; ++k) {
    const wire_frame *f = &w->out.frames[k].f;
    if (f->type != WIRE_MSG) {
      continue;
    }
    char id[TERN_MAX_ID + 1];
    memcpy(id, f->u.msg.id, f->u.msg.idlen);
    id[f->u.msg.idlen] = 0;
    if (f->u.msg.idlen > 2) {
      strcpy(id, "generated"); /* its counter may move on a failed publish */
    }
    int seen = 0;
    for (int i = 0; i < w->nids; ++i) {
      seen |= strcmp(w->ids[i], id) == 0;
    }
    if (!seen && w->nids < 64) {
      strcpy(w->ids[w->nids++], id);
    }
  }
}

static void drop_conn(sweep *w) {
  if (w->c) {
    harvest(w);
    tern_conn_del(w->c);
    w->c = NULL;
  }
  tu_out_free(&w->out);
  tu_out_init(&w->out);
}

/* A read that failed must be NOMEM with the connection closed by GOAWAY
   INTERNAL. */
static void read_failed(sweep *w, tern_ssize rv, long f0) {
  if (rv != TERN_ERR_NOMEM || w->a.failed == f0) {
    bad(w, "read failed without an allocation failure", (long)rv);
  }
  recover(w);
  ++w->nomem;
  if (!tern_conn_is_closed(w->c)) {
    bad(w, "NOMEM read left the connection open", 0);
  }
  tu_drain(&w->out, w->c, T0);
  const wire_frame *g = tu_last(&w->out, WIRE_GOAWAY);
  if (!g || g->u.goaway.reason != TERN_GOAWAY_INTERNAL) {
    bad(w, "NOMEM read: no GOAWAY INTERNAL", 0);
  } else {
    ++w->internal;
  }
}

static void s_write(sweep *w, size_t cap, tern_tstamp now);

static void s_connect(sweep *w, const char *key, tern_tstamp now) {
  drop_conn(w);
  for (int attempt = 0; attempt < 4; ++attempt) {
    tern_stats sb = tu_stats(w->hub);
    long f0 = w->a.failed;
    tern_conn *c = NULL;
    int rv = tern_conn_new(&c, w->hub, now);
    if (rv != 0) {
      tern_stats sa = tu_stats(w->hub);
      if (rv != TERN_ERR_NOMEM || w->a.failed == f0 || c != NULL ||
          !tu_gauges_equal(&sb, &sa)) {
        bad(w, "tern_conn_new failure", rv);
      }
      recover(w);
      ++w->nomem;
      continue;
    }
    w->c = c;
    uint8_t hello[256];
    size_t n = tu_hello_bytes(hello, sizeof(hello), key, 0, 0, 0, "tok");
    f0 = w->a.failed;
    tern_ssize r = tern_conn_read(c, hello, n / 2, now);
    if (r >= 0) {
      r = tern_conn_read(c, hello + n / 2, n - n / 2, now);
    }
    if (r < 0) {
      read_failed(w, r, f0);
      drop_conn(w);
      continue;
    }
    s_write(w, 5, now); /* WELCOME in pieces */
    if (!tu_count(&w->out, WIRE_WELCOME, 0)) {
      bad(w, "no WELCOME after HELLO", 0);
    }
    return;
  }
  bad(w, "could not connect", 0);
}

static void s_publish(sweep *w, const char *key, const tern_msg_desc *d,
                      tern_tstamp now) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    tern_stats sb = tu_stats(w->hub);
    tern_session_info ib = tu_info(w->hub, key);
    long f0 = w->a.failed;
    tern_publish_result res;
    int rv = tern_hub_publish(w->hub, (const uint8_t *)key, strlen(key), d, now,
                              &res);
    if (rv == 0) {
      return;
    }
    tern_stats sa = tu_stats(w->hub);
    tern_session_info ia = tu_info(w->hub, key);
    if (rv != TERN_ERR_NOMEM || w->a.failed == f0) {
      bad(w, "publish failed without an allocation failure", rv);
    } else if (!tu_gauges_equal(&sb, &sa) || sa.published != sb.published ||
               sa.sessions_created != sb.sessions_created ||
               !tu_info_equal(&ib, &ia)) {
      bad(w, "publish NOMEM changed the hub", rv);
    }
    recover(w);
    ++w->nomem;
  }
  bad(w, "publish never succeeded", 0);
}

/* s_write drains the connection with |cap|, retrying after NOMEM. */
static void s_write(sweep *w, size_t cap, tern_tstamp now) {
  if (!w->c) {
    return;
  }
  for (int guard = 0; guard < 100000; ++guard) {
    tern_session *ts = tern_conn_get_session(w->c);
    tern_session_info ib, ia;
    memset(&ib, 0, sizeof(ib));
    tern_session_get_info(ts, &ib, sizeof(ib));
    tern_stats sb = tu_stats(w->hub);
    long f0 = w->a.failed;
    tern_ssize n = tu_write_once(&w->out, w->c, cap, now);
    if (n > 0) {
      continue;
    }
    if (n == 0 || n == TERN_ERR_CLOSED) {
      return;
    }
    memset(&ia, 0, sizeof(ia));
    tern_session_get_info(ts, &ia, sizeof(ia));
    tern_stats sa = tu_stats(w->hub);
    if (n != TERN_ERR_NOMEM || w->a.failed == f0) {
      bad(w, "write failed without an allocation failure", (long)n);
      return;
    }
    if (!tu_info_equal(&ib, &ia) || !tu_gauges_equal(&sb, &sa) ||
        sa.sent != sb.sent) {
      bad(w, "write NOMEM changed the hub", 0);
    }
    recover(w);
    ++w->nomem;
  }
  bad(w, "write never finished", 0);
}

/* s_ack acks everything received on the connection, in two reads. */
static void s_ack(sweep *w, tern_tstamp now) {
  if (!w->c || tern_conn_is_closed(w->c)) {
    return;
  }
  uint64_t top = tu_max_seq(&w->out);
  if (!top) {
    return;
  }
  uint8_t b[16];
  size_t n = tu_ack_bytes(b, sizeof(b), top);
  long f0 = w->a.failed;
  tern_ssize r = tern_conn_read(w->c, b, 1, now);
  if (r >= 0) {
    r = tern_conn_read(w->c, b + 1, n - 1, now);
  }
  if (r < 0) {
    /* The connection is gone with its acks: the receiver reconnects, gets
       the messages again and acks them. */
    read_failed(w, r, f0);
    s_connect(w, "dev", now);
    s_write(w, 1 << 16, now);
    s_ack(w, now);
  }
}

static void sweep_run(sweep *w) {
  tern_settings s = tu_settings();
  s.trace = 1;
  s.inflight_window = 4;
  s.dedup_window = SEC(60);
  s.max_pending = 6;
  tern_tstamp now = T0;
  w->mem = tu_alloc_mem(&w->a);
  tu_out_init(&w->out);
  for (int attempt = 0;; ++attempt) {
    long f0 = w->a.failed;
    tern_hub *hub = NULL;
    int rv = tern_hub_new(&hub, &s, &w->mem);
    if (rv == 0) {
      w->hub = hub;
      break;
    }
    if (rv != TERN_ERR_NOMEM || w->a.failed == f0 || hub != NULL ||
        w->a.outstanding != 0 || attempt > 2) {
      bad(w, "tern_hub_new failure", rv);
      tu_alloc_finish(&w->a);
      return;
    }
    recover(w);
    ++w->nomem;
  }

  s_connect(w, "dev", now);

  static const tern_attr attrs[2] = {{"region", "eu"}, {"kind", "score"}};
  static char big[1000], mid[500];
  memset(big, 'B', sizeof(big));
  memset(mid, 'M', sizeof(mid));
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)"p1";
  d.idlen = 2;
  d.collapse_key = (const uint8_t *)"score";
  d.collapse_keylen = 5;
  d.content_type = "text/plain";
  d.attrs = attrs;
  d.nattrs = 2;
  d.ttl = SEC(5);
  d.payload = (const uint8_t *)"1-0";
  d.payloadlen = 3;
  s_publish(w, "dev", &d, now);
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)"p2";
  d.idlen = 2;
  d.payload = (const uint8_t *)big;
  d.payloadlen = sizeof(big);
  s_publish(w, "dev", &d, now);
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_LOW;
  d.payload = (const uint8_t *)"low";
  d.payloadlen = 3;
  d.flags = TERN_MSG_TRACE;
  s_publish(w, "dev", &d, now); /* generated id */
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)"p4";
  d.idlen = 2;
  d.collapse_key = (const uint8_t *)"score";
  d.collapse_keylen = 5;
  d.payload = (const uint8_t *)"2-0";
  d.payloadlen = 3;
  s_publish(w, "dev", &d, now); /* replaces p1 */
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_HIGH;
  d.id = (const uint8_t *)"o1";
  d.idlen = 2;
  d.ttl = SEC(5);
  d.payload = (const uint8_t *)"other";
  d.payloadlen = 5;
  s_publish(w, "other", &d, now); /* creates a session, expires later */
  tu_events_drain(w->hub);

  s_write(w, 1 << 16, now);
  /* Enough sessions, messages and events to grow the timer heap, the
     event queue and its arena. */
  for (int i = 0; i < 40; ++i) {
    char key[16], id[16];
    snprintf(key, sizeof(key), "bulk%d", i);
    snprintf(id, sizeof(id), "b%d", i);
    memset(&d, 0, sizeof(d));
    d.priority = i % 3;
    d.id = (const uint8_t *)id;
    d.idlen = strlen(id);
    d.ttl = SEC(3);
    d.payload = (const uint8_t *)mid;
    d.payloadlen = (size_t)(i * 10);
    s_publish(w, key, &d, now);
  }
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)"p6";
  d.idlen = 2;
  d.payload = (const uint8_t *)mid;
  d.payloadlen = sizeof(mid);
  s_publish(w, "dev", &d, now);
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_NORMAL;
  d.id = (const uint8_t *)"p7";
  d.idlen = 2;
  d.collapse_key = (const uint8_t *)"score";
  d.collapse_keylen = 5;
  d.payload = (const uint8_t *)"3-0";
  d.payloadlen = 3;
  s_publish(w, "dev", &d, now); /* p4 is in flight: superseded */
  s_write(w, 7, now);           /* partial frames */
  s_ack(w, now + MS(10));
  s_write(w, 13, now + MS(10));
  s_ack(w, now + MS(20));
  tu_events_drain(w->hub);

  /* Time passes: TTLs, the dead connection, the dedup window. */
  now += SEC(6);
  tern_hub_handle_expiry(w->hub, now);
  now += SEC(100);
  tern_hub_handle_expiry(w->hub, now);
  s_write(w, 64, now); /* the GOAWAY of the dead connection */
  memset(&d, 0, sizeof(d));
  d.priority = TERN_PRIO_HIGH;
  d.id = (const uint8_t *)"p2"; /* outside the dedup window again */
  d.idlen = 2;
  d.payload = (const uint8_t *)"again";
  d.payloadlen = 5;
  s_publish(w, "dev", &d, now);
  s_connect(w, "dev", now);
  s_write(w, 3, now);
  s_ack(w, now);
  s_write(w, 1 << 16, now);
  s_ack(w, now);
  tern_tstamp expiry = tern_hub_get_expiry(w->hub);
  if (expiry == TERN_TSTAMP_NONE) {
    bad(w, "no deadline with an open connection", 0);
  }
  if (tern_hub_goaway_all(w->hub, TERN_GOAWAY_RESTART, SEC(1), now) < 0) {
    bad(w, "goaway_all failed", 0);
  }
  s_write(w, 5, now);
  /* Connections the host never deletes, open and half-open, with armed
     timers: tern_hub_del frees them. */
  for (int k = 0; k < 2; ++k) {
    tern_conn *extra = NULL;
    int rv = tern_conn_new(&extra, w->hub, now);
    if (rv != 0) {
      if (rv != TERN_ERR_NOMEM) {
        bad(w, "tern_conn_new failed", rv);
      }
      recover(w);
      continue;
    }
    if (k == 0) {
      tern_ssize r = tu_hello(extra, "late", 0, 0, 0, NULL, now);
      if (r < 0 && r != TERN_ERR_NOMEM) {
        bad(w, "HELLO failed", (long)r);
      }
      recover(w);
    }
  }
  harvest(w);
  tern_stats st = tu_stats(w->hub);
  w->published = st.published;
  w->messages = st.messages;
  tu_out_free(&w->out);
  tern_hub_del(w->hub); /* with w->c never deleted by the host */
  w->hub = NULL;
  w->c = NULL;
  if (w->a.outstanding != 0 || w->a.bytes != 0) {
    bad(w, "leaked allocations", w->a.outstanding);
  }
  if (w->a.bad_frees) {
    bad(w, "freed foreign pointers", w->a.bad_frees);
  }
  long corrupted = tu_alloc_finish(&w->a);
  if (corrupted) {
    bad(w, "freed blocks written after free", corrupted);
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static void sweep_sort(sweep *w) {
  qsort(w->ids, (size_t)w->nids, sizeof(w->ids[0]), cmp_str);
}

static void test_alloc_sweep(void) {
  static sweep ref, w;
  memset(&ref, 0, sizeof(ref));
  sweep_run(&ref);
  sweep_sort(&ref);
  CHECK(ref.errors == 0 && ref.nomem == 0 && ref.a.calls > 10,
        "sweep scenario runs clean without failures");
  CHECK(ref.nids == 5 && strcmp(ref.ids[0], "generated") == 0 &&
            strcmp(ref.ids[1], "p2") == 0 && strcmp(ref.ids[2], "p4") == 0 &&
            strcmp(ref.ids[3], "p6") == 0 && strcmp(ref.ids[4], "p7") == 0,
        "the scenario delivers its messages (not p1, collapsed; not o1, "
        "never connected)");
  tap_diag("scenario: %ld allocation calls, %d ids delivered, %" PRIu64
           " published",
           ref.a.calls, ref.nids, ref.published);

  for (int rest = 0; rest <= 1; ++rest) {
    long n, errors = 0, nomem = 0, internal = 0, differ = 0, runs = 0;
    for (n = 1; n < 100000; ++n) {
      memset(&w, 0, sizeof(w));
      w.a.fail_at = n;
      w.a.fail_rest = rest;
      sweep_run(&w);
      ++runs;
      errors += w.errors;
      nomem += w.nomem;
      internal += w.internal;
      sweep_sort(&w);
      int same_ids = w.nids == ref.nids;
      for (int i = 0; same_ids && i < w.nids; ++i) {
        same_ids = strcmp(w.ids[i], ref.ids[i]) == 0;
      }
      if (!same_ids || w.published != ref.published ||
          w.messages != ref.messages) {
        ++differ;
        if (differ <= 3) {
          tap_diag("fail_at %ld%s: %d ids (want %d), published %" PRIu64
                   ", held %" PRIu64 " (want %" PRIu64 ")",
                   n, rest ? " rest" : "", w.nids, ref.nids, w.published,
                   w.messages, ref.messages);
        }
      }
      if (w.a.failed == 0) {
        break; /* the scenario needed fewer than n allocations */
      }
    }
    const char *mode =
        rest ? "failing every allocation from N on" : "failing allocation N";
    tap_diag("%s: %ld runs, %ld NOMEM surfaced, %ld GOAWAY INTERNAL", mode,
             runs, nomem, internal);
    CHECK(runs > 10 && n < 100000, "%s: the sweep reaches a clean run", mode);
    CHECK(errors == 0,
          "%s: every failing call returns NOMEM (or closes with GOAWAY "
          "INTERNAL) and changes nothing; nothing leaks",
          mode);
    CHECK(differ == 0,
          "%s: the hub stays usable: the scenario delivers the same messages",
          mode);
    CHECK(nomem > 0, "%s: failures do surface as NOMEM", mode);
  }
}

static void test_accept_nomem(void) {
  /* tern_conn_accept under allocation failure: NOMEM changes nothing, the
     HELLO still waits, and a later accept succeeds. */
  tern_settings s = tu_settings();
  s.hello_accept = 1;
  int ok = 1, saw_nomem = 0;
  for (long n = 1; n < 50; ++n) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    tern_mem mem = tu_alloc_mem(&a);
    tern_hub *hub = NULL;
    tern_conn *c = NULL;
    if (tern_hub_new(&hub, &s, &mem) != 0 || tern_conn_new(&c, hub, T0) != 0 ||
        tu_hello(c, "fresh", 0, 0, 0, "tok", T0) < 0) {
      ok = 0;
      break;
    }
    tern_stats sb = tu_stats(hub);
    a.fail_at = a.calls + n;
    int rv = tern_conn_accept(c, T0);
    int failed = a.failed > 0;
    a.fail_at = 0;
    if (rv == TERN_ERR_NOMEM) {
      saw_nomem = 1;
      tern_stats sa = tu_stats(hub);
      if (!failed || tern_conn_is_closed(c) || tern_conn_get_session(c) ||
          !tu_gauges_equal(&sb, &sa) || tern_conn_want_write(c)) {
        ok = 0;
        tap_diag("accept NOMEM at %ld changed the connection or hub", n);
      }
      rv = tern_conn_accept(c, T0);
    }
    tu_out o;
    tu_out_init(&o);
    tu_drain(&o, c, T0);
    if (rv != 0 || !tern_conn_get_session(c) ||
        tu_count(&o, WIRE_WELCOME, 0) != 1) {
      ok = 0;
      tap_diag("accept after NOMEM at %ld did not bind (rv %d)", n, rv);
    }
    tu_out_free(&o);
    tern_hub_del(hub);
    if (a.outstanding != 0 || tu_alloc_finish(&a) != 0) {
      ok = 0;
    }
    if (!failed) {
      break;
    }
  }
  CHECK(ok && saw_nomem,
        "tern_conn_accept: NOMEM changes nothing and a retry binds");
}

int main(void) {
  test_bad_frames();
  test_bad_frame_effects();
  test_null_args();
  test_alloc_sweep();
  test_accept_nomem();
  return tap_done();
}
