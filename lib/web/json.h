/*
 * The JSON of the web framings (issue 10): the message envelope
 *   {"seq":N,"id":"…","prio":"high|normal|low","ct":"…","data":"…"}
 * (with "enc":"base64" before "data" when the payload is not UTF-8), the
 * dropped object {"count":N,"reason":"…"}, the heartbeat {"hb":MS}, and a
 * strict parser for what a tern.json client sends: {"ack":N}.
 *
 * Encoders work in two steps so that the caller can reserve room: a _len
 * (or _plan) call gives the exact size, a _write call writes exactly that
 * many bytes (no NUL).  The envelope is split like a MSG frame: the head
 * {"seq":N, changes with every send, the tail (everything after it) is the
 * same for every recipient, so a hub can encode it once per message and
 * write it after each connection's head.
 *
 * Strings: valid UTF-8 passes through; '"' and '\' are escaped; control
 * characters (below 0x20) become \u00XX.  In id and ct (which are byte
 * strings in libtern) a byte that is not part of a valid UTF-8 character
 * is written as \u00XX too, that is read as Latin-1: the envelope stays
 * valid JSON, and ids that are UTF-8 (the usual case) come through as is.
 * ct is left out when empty.
 */
#ifndef TERN_WEB_JSON_H
#define TERN_WEB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

/* The longest head: {"seq": + 20 digits + ','. */
#define WEB_JSON_HEAD_MAX 28
/* The longest dropped object and heartbeat. */
#define WEB_JSON_DROPPED_MAX 51
#define WEB_JSON_HB_MAX 27

/* Drop reasons: tern_drop_reason's values, and retention (issue 9's topic
   cursors), which is 4 until tern.h gives it a name. */
#define WEB_JSON_DROP_RETENTION 4

typedef struct web_json_msg {
  uint64_t seq;
  const uint8_t *id;            /* 0..TERN_MAX_ID bytes                   */
  size_t idlen;
  int priority;                 /* tern_priority                          */
  const uint8_t *content_type;  /* 0 bytes: "ct" left out                 */
  size_t content_typelen;
  const uint8_t *payload;
  size_t payloadlen;
} web_json_msg;

/* What web_json_tail_plan found, for web_json_tail_write. */
typedef struct web_json_plan {
  size_t tail_len;    /* bytes of the tail                              */
  size_t data_len;    /* bytes of the "data" value, quotes included     */
  int base64;         /* the payload is not UTF-8: "enc":"base64"      */
} web_json_plan;

/* web_u64_len is the number of decimal digits of |v|; web_put_u64 writes
   them at |out| (no NUL) and returns the byte after. */
size_t web_u64_len(uint64_t v);
uint8_t *web_put_u64(uint8_t *out, uint64_t v);

/* web_json_head_len and web_json_head_write: {"seq":N, */
size_t web_json_head_len(uint64_t seq);
size_t web_json_head_write(uint8_t *out, uint64_t seq);

/* web_json_tail_plan scans |m| (all but seq) and fills |plan|; returns the
   tail's length, or TERN_ERR_INVALID (priority unknown, a NULL pointer
   with a nonzero length) or TERN_ERR_TOO_LARGE (the size would not fit in
   a size_t).  web_json_tail_write then writes plan->tail_len bytes. */
tern_ssize web_json_tail_plan(const web_json_msg *m, web_json_plan *plan);
size_t web_json_tail_write(uint8_t *out, const web_json_msg *m,
                           const web_json_plan *plan);

/* The whole envelope in one go: web_json_msg_len (errors as
   web_json_tail_plan) then web_json_msg_write with the same |plan|. */
tern_ssize web_json_msg_len(const web_json_msg *m, web_json_plan *plan);
size_t web_json_msg_write(uint8_t *out, const web_json_msg *m,
                          const web_json_plan *plan);

/* web_json_dropped_len: {"count":N,"reason":"expired|overflow|dead|
   retention"}'s length, or TERN_ERR_INVALID for an unknown reason. */
tern_ssize web_json_dropped_len(uint64_t count, int reason);
size_t web_json_dropped_write(uint8_t *out, uint64_t count, int reason);

/* web_json_hb_len and web_json_hb_write: {"hb":MS} */
size_t web_json_hb_len(uint64_t ms);
size_t web_json_hb_write(uint8_t *out, uint64_t ms);

/* web_json_str_len and web_json_str_write: |p| as a JSON string, quotes
   included, escaped as above (for error bodies and the like). */
size_t web_json_str_len(const uint8_t *p, size_t len);
size_t web_json_str_write(uint8_t *out, const uint8_t *p, size_t len);

/* web_json_prio_name: "low", "normal", "high", NULL otherwise;
   web_json_drop_name likewise for drop reasons. */
const char *web_json_prio_name(int priority);
const char *web_json_drop_name(int reason);

/*
 * web_json_ack_parse parses a tern.json client message, which must be
 * exactly one object with one member "ack" (spelled without escapes) whose
 * value is an integer in 0..2^62-1 written as JSON writes it (no sign,
 * fraction, exponent or leading zero); JSON whitespace is allowed between
 * tokens.  Returns 0 with *seq set, or TERN_ERR_PROTO with *why (when not
 * NULL) set to a static English sentence saying what was wrong (for a
 * CLOSE reason; the hub closes with 1008).  *seq is untouched on error.
 */
int web_json_ack_parse(const uint8_t *p, size_t len, uint64_t *seq,
                       const char **why);

#endif
