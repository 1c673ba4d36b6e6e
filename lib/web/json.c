/*
 * JSON for the web framings: envelope, dropped and heartbeat encoders with
 * exact sizes computed first, and the strict {"ack":N} parser.
 */
#include "web/json.h"

#include <string.h>

#include "web/base64.h"
#include "web/utf8.h"

static const char hexdig[] = "0123456789abcdef";

size_t web_u64_len(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

uint8_t *web_put_u64(uint8_t *out, uint64_t v) {
  size_t n = web_u64_len(v);
  for (size_t i = n; i-- > 0;) {
    out[i] = (uint8_t)('0' + v % 10);
    v /= 10;
  }
  return out + n;
}

static uint8_t *put_lit(uint8_t *out, const char *s) {
  size_t n = strlen(s);
  memcpy(out, s, n);
  return out + n;
}

const char *web_json_prio_name(int priority) {
  switch (priority) {
  case TERN_PRIO_LOW:
    return "low";
  case TERN_PRIO_NORMAL:
    return "normal";
  case TERN_PRIO_HIGH:
    return "high";
  default:
    return NULL;
  }
}

const char *web_json_drop_name(int reason) {
  switch (reason) {
  case TERN_DROP_EXPIRED:
    return "expired";
  case TERN_DROP_OVERFLOW:
    return "overflow";
  case TERN_DROP_DEAD:
    return "dead";
  case WEB_JSON_DROP_RETENTION:
    return "retention";
  default:
    return NULL;
  }
}

/* ---- strings ------------------------------------------------------------- */

/* str_scan returns the escaped length of |p| without quotes; with
   |strict|, SIZE_MAX when |p| is not UTF-8 (the payload then goes as
   base64), else invalid bytes count as \u00XX. */
static size_t str_scan(const uint8_t *p, size_t len, int strict) {
  size_t n = 0, i = 0;
  while (i < len) {
    uint8_t b = p[i];
    if (b >= 0x20 && b < 0x80) {
      n += b == '"' || b == '\\' ? 2 : 1;
      ++i;
    } else if (b < 0x20) {
      n += 6;
      ++i;
    } else {
      size_t k = web_utf8_seq(p + i, len - i);
      if (k == 0) {
        if (strict) {
          return SIZE_MAX;
        }
        n += 6;
        ++i;
      } else {
        n += k;
        i += k;
      }
    }
  }
  return n;
}

static uint8_t *put_u00(uint8_t *out, uint8_t b) {
  out[0] = '\\';
  out[1] = 'u';
  out[2] = '0';
  out[3] = '0';
  out[4] = (uint8_t)hexdig[b >> 4];
  out[5] = (uint8_t)hexdig[b & 15];
  return out + 6;
}

/* str_put writes |p| escaped, without quotes (invalid bytes as \u00XX). */
static uint8_t *str_put(uint8_t *out, const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    /* Copy the longest run that needs no escaping at once. */
    size_t run = i;
    while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
           p[run] != '\\') {
      ++run;
    }
    if (run > i) {
      memcpy(out, p + i, run - i);
      out += run - i;
      i = run;
      continue;
    }
    if (p[i] == '"' || p[i] == '\\') {
      *out++ = '\\';
      *out++ = p[i++];
    } else if (p[i] < 0x20) {
      out = put_u00(out, p[i++]);
    } else {
      size_t k = web_utf8_seq(p + i, len - i);
      if (k == 0) {
        out = put_u00(out, p[i++]);
      } else {
        memcpy(out, p + i, k);
        out += k;
        i += k;
      }
    }
  }
  return out;
}

size_t web_json_str_len(const uint8_t *p, size_t len) {
  return str_scan(p, len, 0) + 2;
}

size_t web_json_str_write(uint8_t *out, const uint8_t *p, size_t len) {
  uint8_t *o = out;
  *o++ = '"';
  o = str_put(o, p, len);
  *o++ = '"';
  return (size_t)(o - out);
}

/* ---- envelope ------------------------------------------------------------ */

#define HEAD_PREFIX "{\"seq\":"

size_t web_json_head_len(uint64_t seq) {
  return sizeof HEAD_PREFIX - 1 + web_u64_len(seq) + 1;
}

size_t web_json_head_write(uint8_t *out, uint64_t seq) {
  uint8_t *o = put_lit(out, HEAD_PREFIX);
  o = web_put_u64(o, seq);
  *o++ = ',';
  return (size_t)(o - out);
}

/* The fixed parts of the tail: "id":"…","prio":"…"[,"ct":"…"]
   [,"enc":"base64"],"data":"…"} */
#define T_ID "\"id\":"
#define T_PRIO ",\"prio\":\""
#define T_CT ",\"ct\":"
#define T_ENC ",\"enc\":\"base64\""
#define T_DATA ",\"data\":"

tern_ssize web_json_tail_plan(const web_json_msg *m, web_json_plan *plan) {
  const char *prio = web_json_prio_name(m->priority);
  size_t n, data;
  int base64 = 0;
  if (prio == NULL || (m->id == NULL && m->idlen) ||
      (m->content_type == NULL && m->content_typelen) ||
      (m->payload == NULL && m->payloadlen)) {
    return TERN_ERR_INVALID;
  }
  /* Every byte of any field grows to at most 6: keep the sums below
     PTRDIFF_MAX. */
  if (m->payloadlen > (size_t)PTRDIFF_MAX / 8 ||
      m->idlen > (size_t)PTRDIFF_MAX / 64 ||
      m->content_typelen > (size_t)PTRDIFF_MAX / 64) {
    return TERN_ERR_TOO_LARGE;
  }
  data = str_scan(m->payload, m->payloadlen, 1);
  if (data == SIZE_MAX) {
    base64 = 1;
    data = web_base64_encoded_len(m->payloadlen);
  }
  data += 2;
  n = sizeof T_ID - 1 + str_scan(m->id, m->idlen, 0) + 2;
  n += sizeof T_PRIO - 1 + strlen(prio) + 1;
  if (m->content_typelen) {
    n += sizeof T_CT - 1 + str_scan(m->content_type, m->content_typelen, 0) +
         2;
  }
  if (base64) {
    n += sizeof T_ENC - 1;
  }
  n += sizeof T_DATA - 1 + data + 1;
  plan->tail_len = n;
  plan->data_len = data;
  plan->base64 = base64;
  return (tern_ssize)n;
}

size_t web_json_tail_write(uint8_t *out, const web_json_msg *m,
                           const web_json_plan *plan) {
  uint8_t *o = put_lit(out, T_ID);
  o += web_json_str_write(o, m->id, m->idlen);
  o = put_lit(o, T_PRIO);
  o = put_lit(o, web_json_prio_name(m->priority));
  *o++ = '"';
  if (m->content_typelen) {
    o = put_lit(o, T_CT);
    o += web_json_str_write(o, m->content_type, m->content_typelen);
  }
  if (plan->base64) {
    o = put_lit(o, T_ENC);
  }
  o = put_lit(o, T_DATA);
  if (plan->base64) {
    *o++ = '"';
    o += web_base64_encode((char *)o, m->payload, m->payloadlen);
    *o++ = '"';
  } else {
    /* The payload is UTF-8 (the plan checked), so str_put escapes only. */
    o += web_json_str_write(o, m->payload, m->payloadlen);
  }
  *o++ = '}';
  return (size_t)(o - out);
}

tern_ssize web_json_msg_len(const web_json_msg *m, web_json_plan *plan) {
  tern_ssize tail = web_json_tail_plan(m, plan);
  if (tail < 0) {
    return tail;
  }
  return (tern_ssize)web_json_head_len(m->seq) + tail;
}

size_t web_json_msg_write(uint8_t *out, const web_json_msg *m,
                          const web_json_plan *plan) {
  size_t n = web_json_head_write(out, m->seq);
  return n + web_json_tail_write(out + n, m, plan);
}

/* ---- dropped, heartbeat -------------------------------------------------- */

#define D_COUNT "{\"count\":"
#define D_REASON ",\"reason\":\""

tern_ssize web_json_dropped_len(uint64_t count, int reason) {
  const char *name = web_json_drop_name(reason);
  if (name == NULL) {
    return TERN_ERR_INVALID;
  }
  return (tern_ssize)(sizeof D_COUNT - 1 + web_u64_len(count) +
                      sizeof D_REASON - 1 + strlen(name) + 2);
}

size_t web_json_dropped_write(uint8_t *out, uint64_t count, int reason) {
  uint8_t *o = put_lit(out, D_COUNT);
  o = web_put_u64(o, count);
  o = put_lit(o, D_REASON);
  o = put_lit(o, web_json_drop_name(reason));
  *o++ = '"';
  *o++ = '}';
  return (size_t)(o - out);
}

#define HB_PREFIX "{\"hb\":"

size_t web_json_hb_len(uint64_t ms) {
  return sizeof HB_PREFIX - 1 + web_u64_len(ms) + 1;
}

size_t web_json_hb_write(uint8_t *out, uint64_t ms) {
  uint8_t *o = put_lit(out, HB_PREFIX);
  o = web_put_u64(o, ms);
  *o++ = '}';
  return (size_t)(o - out);
}

/* ---- the ack parser ------------------------------------------------------ */

/* The largest seq (the wire's varint limit). */
#define ACK_MAX ((UINT64_C(1) << 62) - 1)

static size_t skip_ws(const uint8_t *p, size_t len, size_t i) {
  while (i < len &&
         (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
    ++i;
  }
  return i;
}

static int refuse(const char **why, const char *what) {
  if (why != NULL) {
    *why = what;
  }
  return TERN_ERR_PROTO;
}

int web_json_ack_parse(const uint8_t *p, size_t len, uint64_t *seq,
                       const char **why) {
  size_t i;
  uint64_t v = 0;
  if (p == NULL && len) {
    return refuse(why, "no message");
  }
  i = skip_ws(p, len, 0);
  if (i == len || p[i] != '{') {
    return refuse(why, "expected an object {\"ack\":N}");
  }
  i = skip_ws(p, len, i + 1);
  if (i == len || p[i] != '"') {
    return refuse(why, "expected the member \"ack\"");
  }
  if (len - i < 5 || memcmp(p + i, "\"ack\"", 5) != 0) {
    return refuse(why, "unknown member: only \"ack\" is accepted");
  }
  i = skip_ws(p, len, i + 5);
  if (i == len || p[i] != ':') {
    return refuse(why, "expected ':' after \"ack\"");
  }
  i = skip_ws(p, len, i + 1);
  if (i == len || p[i] < '0' || p[i] > '9') {
    return refuse(why, "the ack must be a non-negative integer");
  }
  if (p[i] == '0' && i + 1 < len && p[i + 1] >= '0' && p[i + 1] <= '9') {
    return refuse(why, "the ack has a leading zero");
  }
  while (i < len && p[i] >= '0' && p[i] <= '9') {
    uint64_t digit = (uint64_t)(p[i] - '0');
    if (v > (ACK_MAX - digit) / 10) {
      return refuse(why, "the ack is out of range");
    }
    v = v * 10 + digit;
    ++i;
  }
  if (i < len && (p[i] == '.' || p[i] == 'e' || p[i] == 'E')) {
    return refuse(why, "the ack must be an integer");
  }
  i = skip_ws(p, len, i);
  if (i == len) {
    return refuse(why, "the object is not closed");
  }
  if (p[i] == ',') {
    return refuse(why, "only one member is accepted");
  }
  if (p[i] != '}') {
    return refuse(why, "expected '}' after the ack");
  }
  i = skip_ws(p, len, i + 1);
  if (i != len) {
    return refuse(why, "text after the object");
  }
  *seq = v;
  return 0;
}
