/*
 * Fuzz target for the web hooks' decoders and state machine (lib/hooks).
 *
 * The first input byte picks a mode:
 *   0  a Retry-After value: an accepted one of digits only equals its
 *      decimal value (saturated); anything else must be an IMF-fixdate.
 *   1  a challenge query for tern_hook_check_challenge, with the token
 *      cut from the input: every return is documented, outputs stay
 *      untouched on error, an accepted challenge lies in the query and is
 *      1..128 letters and digits.
 *   2  signature headers and a body for tern_hook_check_signature: every
 *      return is documented; the body signed with the real HMAC verifies.
 *   3  a JSON payload: when hook_json_value_ok accepts it, an entry with
 *      it is queued, and the body of its batch is itself one JSON value.
 *   4  a script of hook operations on one hub (enqueue, take a request,
 *      answer it with a status from the input, enable, verify, remove,
 *      let time pass): every call returns a documented code, the counts
 *      add up, and everything is freed (the sanitizers see the rest).
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hooks.h"
#include "tern.h"
#include "web/sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "hooks_fuzz: %s:%d: %s\n", __FILE__, __LINE__,       \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

static void retry_after(const uint8_t *p, size_t n) {
  uint64_t d = 12345;
  int rv = hook_parse_retry_after((const char *)p, n, 1700000000, &d);
  REQUIRE(rv == 0 || rv == -1);
  if (rv != 0) {
    REQUIRE(d == 12345);
    return;
  }
  if (n && p[0] >= '0' && p[0] <= '9') {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(p[i] >= '0' && p[i] <= '9');
      v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (p[i] - '0');
    }
    REQUIRE(d == v);
  } else {
    REQUIRE(n == 29 && memcmp(p + 25, " GMT", 4) == 0);
  }
}

static void challenge(const uint8_t *p, size_t n) {
  size_t tl = n ? p[0] % 16 : 0;
  if (tl + 1 > n) {
    tl = 0;
  }
  const uint8_t *token = n ? p + 1 : NULL;
  const char *q = n > tl + 1 ? (const char *)p + 1 + tl : "";
  size_t ql = n > tl + 1 ? n - 1 - tl : 0;
  const char *c = (const char *)0x1;
  size_t cl = 7;
  int rv = tern_hook_check_challenge(q, ql, token, tl, &c, &cl);
  REQUIRE(rv == 0 || rv == TERN_ERR_INVALID || rv == TERN_ERR_PROTO);
  if (rv != 0) {
    REQUIRE(c == (const char *)0x1 && cl == 7);
    return;
  }
  REQUIRE(cl >= 1 && cl <= 128 && c >= q && c + cl <= q + ql);
  for (size_t i = 0; i < cl; ++i) {
    REQUIRE((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'z') ||
            (c[i] >= 'A' && c[i] <= 'Z'));
  }
}

static void signature(const uint8_t *p, size_t n) {
  if (n < 3) {
    return;
  }
  size_t sl = p[0] % 32, tl = p[1] % 24;
  p += 2;
  n -= 2;
  if (sl + tl > n) {
    return;
  }
  const uint8_t *secret = p;
  const char *ts = (const char *)p + sl;
  const uint8_t *body = p + sl + tl;
  size_t bl = n - sl - tl;
  /* arbitrary headers: the body as the signature */
  int rv = tern_hook_check_signature(secret, sl, ts, tl, (const char *)body,
                                     bl, body, bl, 1700000000, 300);
  REQUIRE(rv == TERN_ERR_INVALID || rv == TERN_ERR_PROTO ||
          rv == TERN_ERR_STATE || rv == 0);
  /* the real signature of a well-formed timestamp verifies */
  char sig[8 + 64];
  uint8_t mac[32];
  web_hmac_sha256 c;
  web_hmac_sha256_init(&c, secret, sl);
  web_hmac_sha256_update(&c, "1700000000.", 11);
  web_hmac_sha256_update(&c, body, bl);
  web_hmac_sha256_final(&c, mac);
  memcpy(sig, "sha256=", 7);
  web_hex_lower(sig + 7, mac, 32);
  REQUIRE(tern_hook_check_signature(secret, sl, "1700000000", 10, sig, 71,
                                    body, bl, 1700000100, 300) == 0);
  REQUIRE(tern_hook_check_signature(secret, sl, "1700000000", 10, sig, 71,
                                    body, bl, 1700000301, 300) ==
          TERN_ERR_STATE);
}

static tern_hub *new_hub(void) {
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 7;
  tern_hub *hub = NULL;
  REQUIRE(tern_hub_new(&hub, &s, NULL) == 0);
  return hub;
}

static uint64_t new_hook(tern_hub *hub, uint32_t flags, uint32_t inflight) {
  tern_hook_opts o;
  tern_hook_opts_default(&o);
  o.flags = flags;
  o.target = (const uint8_t *)"t";
  o.targetlen = 1;
  o.secret = (const uint8_t *)"s";
  o.secretlen = 1;
  o.max_items = 3;
  o.max_attempts = 3;
  o.disable_after = 2;
  o.max_inflight = inflight;
  o.max_queued = 8;
  o.max_bytes = 4096;
  uint64_t id = 0;
  REQUIRE(tern_hub_add_hook(hub, &o, 0, &id) == 0 && id != 0);
  return id;
}

static void payload(const uint8_t *p, size_t n) {
  if (!hook_json_value_ok(p, n)) {
    return;
  }
  tern_hub *hub = new_hub();
  uint64_t id = new_hook(hub, TERN_HOOK_VERIFIED, 1);
  const char *f[1] = {"f"};
  tern_hook_entry e = {(const uint8_t *)"k", 1, f, 1, 1, p, n};
  int rv = tern_hub_hook_enqueue(hub, id, &e, 0);
  REQUIRE(rv == 0 || rv == TERN_ERR_TOO_LARGE || (rv == TERN_ERR_INVALID &&
                                                   n == 0));
  if (rv == 0) {
    tern_hook_request r;
    REQUIRE(tern_hub_next_hook_request(hub, 10 * TERN_SECONDS, &r) == 1);
    REQUIRE(hook_json_value_ok(r.body, r.bodylen));
  }
  tern_hub_del(hub);
}

static void script(const uint8_t *p, size_t n) {
  tern_hub *hub = new_hub();
  uint64_t ids[2];
  ids[0] = new_hook(hub, TERN_HOOK_COALESCE, 1);
  ids[1] = new_hook(hub, TERN_HOOK_VERIFIED, 3);
  int removed[2] = {0, 0};
  tern_tstamp now = 0;
  tern_hook_request out[8];
  size_t nout = 0;
  static const int statuses[] = {200, 204, 102, 500, 503, 429, 0, 404, 301};
  for (size_t i = 0; i + 1 < n; i += 2) {
    uint8_t op = p[i], arg = p[i + 1];
    uint64_t id = ids[arg & 1];
    int rv;
    switch (op % 7) {
    case 0: {
      char key[2] = {(char)('a' + arg % 4), 0};
      const char *f[2] = {"x", (arg & 8) ? "y" : "x"};
      tern_hook_entry e = {(const uint8_t *)key, 1, f, 2, arg, NULL, 0};
      rv = tern_hub_hook_enqueue(hub, id, &e, now);
      REQUIRE(rv == 0 || rv == TERN_ERR_FULL ||
              (rv == TERN_ERR_NOT_FOUND && removed[arg & 1]));
      break;
    }
    case 1:
      if (nout < 8) {
        rv = tern_hub_next_hook_request(hub, now, &out[nout]);
        REQUIRE(rv == 0 || rv == 1);
        if (rv == 1) {
          REQUIRE(out[nout].kind == TERN_HOOK_CHALLENGE ||
                  hook_json_value_ok(out[nout].body, out[nout].bodylen));
          ++nout;
        }
      }
      break;
    case 2:
      if (nout) {
        size_t k = arg % nout;
        tern_hook_request r = out[k];
        out[k] = out[--nout];
        int st = statuses[arg % 9];
        const char *ra = (arg & 16) ? "1" : NULL;
        rv = tern_hub_hook_done(hub, r.hook, r.delivery, st, ra, ra ? 1 : 0,
                                NULL, 0, now);
        REQUIRE(rv == 0 || rv == TERN_ERR_NOT_FOUND);
      }
      break;
    case 3:
      rv = tern_hub_enable_hook(hub, id, now);
      REQUIRE(rv == 0 || (rv == TERN_ERR_NOT_FOUND && removed[arg & 1]));
      break;
    case 4:
      rv = tern_hub_verify_hook(hub, id, now);
      REQUIRE(rv == 0 || rv == TERN_ERR_STATE ||
              (rv == TERN_ERR_NOT_FOUND && removed[arg & 1]));
      if (rv == 0) { /* its taken challenge is forgotten */
        for (size_t k = 0; k < nout; ++k) {
          if (out[k].hook == id && out[k].kind == TERN_HOOK_CHALLENGE) {
            out[k--] = out[--nout];
          }
        }
      }
      break;
    case 5:
      if (arg == 0xff) {
        rv = tern_hub_remove_hook(hub, id);
        REQUIRE(rv == 0 || (rv == TERN_ERR_NOT_FOUND && removed[arg & 1]));
        removed[arg & 1] = 1;
        for (size_t k = 0; k < nout; ++k) {
          if (out[k].hook == id) {
            out[k--] = out[--nout];
          }
        }
      }
      break;
    default:
      now += (tern_duration)arg * 100 * TERN_MILLISECONDS;
      break;
    }
    for (int h = 0; h < 2; ++h) {
      tern_hook_info in;
      if (tern_hub_get_hook_info(hub, ids[h], &in, sizeof(in)) == 0) {
        REQUIRE(in.queued <= 8 && in.outstanding <= 3);
      }
    }
    tern_event ev;
    while (tern_hub_next_event(hub, &ev) == 1) {
      REQUIRE(ev.type == TERN_EV_HOOK_DROPPED ||
              ev.type == TERN_EV_HOOK_DISABLED ||
              ev.type == TERN_EV_HOOK_VERIFIED);
    }
  }
  tern_hub_del(hub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  switch (data[0] % 5) {
  case 0:
    retry_after(p, n);
    break;
  case 1:
    challenge(p, n);
    break;
  case 2:
    signature(p, n);
    break;
  case 3:
    payload(p, n);
    break;
  default:
    script(p, n > 4096 ? 4096 : n);
    break;
  }
  return 0;
}
