/*
 * The sans-I/O codecs of the web framings (lib/web): SHA-1, SHA-256 and
 * HMAC-SHA256 against the FIPS 180 / RFC 3174 / RFC 4231 vectors, the
 * subscriber tokens, strict base64 (RFC 4648), the WebSocket handshake,
 * frame decoder and encoder (RFC 6455, its examples and many bad inputs,
 * each with its close code; byte-by-byte decoding equals all-at-once), and
 * the JSON envelope encoders and {"ack":N} parser.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rand.h"
#include "tap.h"
#include "web/base64.h"
#include "web/json.h"
#include "web/sha1.h"
#include "web/sha256.h"
#include "web/utf8.h"
#include "web/ws.h"

static void hex_of(char *out, const uint8_t *p, size_t n) {
  *web_hex_lower(out, p, n) = '\0';
}

/* ---- SHA-1 --------------------------------------------------------------- */

static void sha1_hex(char out[41], const void *p, size_t n) {
  web_sha1 c;
  uint8_t d[WEB_SHA1_LEN];
  web_sha1_init(&c);
  web_sha1_update(&c, p, n);
  web_sha1_final(&c, d);
  hex_of(out, d, sizeof d);
}

static void test_sha1(void) {
  static const struct {
    const char *msg;
    size_t repeat;
    const char *digest;
  } v[] = {
      {"abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {"", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
       "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
      {"a", 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
      {"0123456701234567012345670123456701234567012345670123456701234567",
       10, "dea356a2cddd90c7a7ecedc5ebb563934f460452"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; ++i) {
    web_sha1 c;
    uint8_t d[WEB_SHA1_LEN];
    char hex[41];
    size_t n = strlen(v[i].msg);
    web_sha1_init(&c);
    for (size_t r = 0; r < v[i].repeat; ++r) {
      web_sha1_update(&c, v[i].msg, n);
    }
    web_sha1_final(&c, d);
    hex_of(hex, d, sizeof d);
    CHECK(strcmp(hex, v[i].digest) == 0, "sha1 vector %zu (%s)", i, hex);
  }
  /* Fed one byte at a time, and in uneven pieces, across block edges. */
  {
    uint8_t buf[300];
    int ok = 1;
    for (size_t i = 0; i < sizeof buf; ++i) {
      buf[i] = (uint8_t)(i * 7 + 3);
    }
    for (size_t len = 0; len <= sizeof buf; ++len) {
      web_sha1 c;
      uint8_t d[WEB_SHA1_LEN];
      char a[41], b[41];
      sha1_hex(a, buf, len);
      web_sha1_init(&c);
      for (size_t k = 0; k < len; ++k) {
        web_sha1_update(&c, buf + k, 1);
      }
      web_sha1_final(&c, d);
      hex_of(b, d, sizeof d);
      ok &= strcmp(a, b) == 0;
    }
    CHECK(ok, "sha1 byte-at-a-time equals one call for lengths 0..300");
  }
}

/* ---- SHA-256, HMAC ------------------------------------------------------- */

static void test_sha256(void) {
  static const struct {
    const char *msg;
    size_t repeat;
    const char *digest;
  } v[] = {
      {"abc", 1,
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"", 1,
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklm"
       "nopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
       1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
      {"a", 1000000,
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; ++i) {
    web_sha256 c;
    uint8_t d[WEB_SHA256_LEN];
    char hex[65];
    size_t n = strlen(v[i].msg);
    web_sha256_init(&c);
    for (size_t r = 0; r < v[i].repeat; ++r) {
      web_sha256_update(&c, v[i].msg, n);
    }
    web_sha256_final(&c, d);
    hex_of(hex, d, sizeof d);
    CHECK(strcmp(hex, v[i].digest) == 0, "sha256 vector %zu (%s)", i, hex);
  }
  {
    uint8_t buf[300], a[WEB_SHA256_LEN], b[WEB_SHA256_LEN];
    int ok = 1;
    for (size_t i = 0; i < sizeof buf; ++i) {
      buf[i] = (uint8_t)(i * 13 + 1);
    }
    for (size_t len = 0; len <= sizeof buf; ++len) {
      web_sha256 c;
      web_sha256_buf(buf, len, a);
      web_sha256_init(&c);
      for (size_t k = 0; k < len; k += 5) {
        web_sha256_update(&c, buf + k, len - k < 5 ? len - k : 5);
      }
      web_sha256_final(&c, b);
      ok &= memcmp(a, b, sizeof a) == 0;
    }
    CHECK(ok, "sha256 in 5-byte pieces equals one call for lengths 0..300");
  }
}

static void test_hmac(void) {
  uint8_t k20[20], kaa20[20], dd50[50], k25[25], cd50[50], k0c[20],
      kaa131[131];
  struct {
    const uint8_t *key;
    size_t keylen;
    const char *data;
    size_t datalen;
    const char *mac;
  } v[7];
  memset(k20, 0x0b, sizeof k20);
  memset(kaa20, 0xaa, sizeof kaa20);
  memset(dd50, 0xdd, sizeof dd50);
  for (size_t i = 0; i < sizeof k25; ++i) {
    k25[i] = (uint8_t)(i + 1);
  }
  memset(cd50, 0xcd, sizeof cd50);
  memset(k0c, 0x0c, sizeof k0c);
  memset(kaa131, 0xaa, sizeof kaa131);
  /* RFC 4231, test cases 1 to 7 (case 5 is truncated to 128 bits). */
  v[0].key = k20, v[0].keylen = 20, v[0].data = "Hi There", v[0].datalen = 8;
  v[0].mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  v[1].key = (const uint8_t *)"Jefe", v[1].keylen = 4;
  v[1].data = "what do ya want for nothing?", v[1].datalen = 28;
  v[1].mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  v[2].key = kaa20, v[2].keylen = 20, v[2].data = (const char *)dd50;
  v[2].datalen = 50;
  v[2].mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
  v[3].key = k25, v[3].keylen = 25, v[3].data = (const char *)cd50;
  v[3].datalen = 50;
  v[3].mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
  v[4].key = k0c, v[4].keylen = 20, v[4].data = "Test With Truncation";
  v[4].datalen = 20, v[4].mac = "a3b6167473100ee06e0c796c2955552b";
  v[5].key = kaa131, v[5].keylen = 131;
  v[5].data = "Test Using Larger Than Block-Size Key - Hash Key First";
  v[5].datalen = strlen(v[5].data);
  v[5].mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
  v[6].key = kaa131, v[6].keylen = 131;
  v[6].data = "This is a test using a larger than block-size key and a larger "
              "than block-size data. The key needs to be hashed before being "
              "used by the HMAC algorithm.";
  v[6].datalen = strlen(v[6].data);
  v[6].mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
  for (size_t i = 0; i < 7; ++i) {
    uint8_t mac[WEB_SHA256_LEN];
    char hex[65];
    web_hmac_sha256_buf(v[i].key, v[i].keylen, v[i].data, v[i].datalen, mac);
    hex_of(hex, mac, sizeof mac);
    CHECK(strncmp(hex, v[i].mac, strlen(v[i].mac)) == 0,
          "RFC 4231 test case %zu", i + 1);
  }
  /* Incremental HMAC equals one call. */
  {
    web_hmac_sha256 c;
    uint8_t a[WEB_SHA256_LEN], b[WEB_SHA256_LEN];
    web_hmac_sha256_buf(kaa131, 131, v[6].data, v[6].datalen, a);
    web_hmac_sha256_init(&c, kaa131, 131);
    for (size_t k = 0; k < v[6].datalen; ++k) {
      web_hmac_sha256_update(&c, v[6].data + k, 1);
    }
    web_hmac_sha256_final(&c, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "hmac byte by byte equals one call");
  }
  CHECK(web_consttime_eq("abcd", "abcd", 4) == 1, "consttime_eq: equal");
  CHECK(web_consttime_eq("abcd", "abce", 4) == 0, "consttime_eq: last differs");
  CHECK(web_consttime_eq("\x80", "\x00", 1) == 0, "consttime_eq: high bit");
  CHECK(web_consttime_eq("", "x", 0) == 1, "consttime_eq: empty");
}

static void test_token(void) {
  char tok[WEB_TOKEN_MAX + 1], bad[WEB_TOKEN_MAX + 2];
  const char *secret = "s3cret", *key = "alice";
  size_t n = web_token_make(tok, secret, 6, key, 5, 1700000000);
  tok[n] = '\0';
  /* python3: hmac.new(b"s3cret", b"alice.1700000000", "sha256") */
  CHECK(strcmp(tok, "1700000000.2af2d7666435e0bf0237b9cfd3fd83dbc5c8ea811b27"
                    "56ec45538a5bb56b3dd7") == 0,
        "token is E.hex(HMAC(secret, KEY.E)) (%s)", tok);
  CHECK_INT(web_token_check(tok, n, secret, 6, key, 5, 1699999999),
            WEB_TOKEN_OK, "token valid before expiry");
  CHECK_INT(web_token_check(tok, n, secret, 6, key, 5, 1700000000),
            WEB_TOKEN_EXPIRED, "token expired at E");
  CHECK_INT(web_token_check(tok, n, "s3creT", 6, key, 5, 1),
            WEB_TOKEN_BAD, "token: other secret");
  CHECK_INT(web_token_check(tok, n, secret, 6, "alicf", 5, 1), WEB_TOKEN_BAD,
            "token: other session");
  memcpy(bad, tok, n);
  bad[n - 1] = bad[n - 1] == '0' ? '1' : '0';
  CHECK_INT(web_token_check(bad, n, secret, 6, key, 5, 1), WEB_TOKEN_BAD,
            "token: last hex digit changed");
  memcpy(bad, tok, n);
  bad[n - 1] = 'A';
  CHECK_INT(web_token_check(bad, n, secret, 6, key, 5, 1),
            WEB_TOKEN_MALFORMED, "token: uppercase hex");
  CHECK_INT(web_token_check(tok, n - 1, secret, 6, key, 5, 1),
            WEB_TOKEN_MALFORMED, "token: 63 hex digits");
  bad[0] = '0';
  memcpy(bad + 1, tok, n);
  CHECK_INT(web_token_check(bad, n + 1, secret, 6, key, 5, 1),
            WEB_TOKEN_MALFORMED, "token: leading zero");
  CHECK_INT(web_token_check(tok + 10, n - 10, secret, 6, key, 5, 1),
            WEB_TOKEN_MALFORMED, "token: no expiry");
  CHECK_INT(web_token_check("", 0, secret, 6, key, 5, 1),
            WEB_TOKEN_MALFORMED, "token: empty");
  n = web_token_make(tok, secret, 6, key, 5, UINT64_MAX);
  CHECK_INT(n, WEB_TOKEN_MAX, "token with a 20-digit expiry is the longest");
  CHECK_INT(web_token_check(tok, n, secret, 6, key, 5, UINT64_MAX - 1),
            WEB_TOKEN_OK, "token: expiry 2^64-1");
  memcpy(bad, "18446744073709551616", 20); /* 2^64 */
  memcpy(bad + 20, tok + 20, n - 20);
  CHECK_INT(web_token_check(bad, n, secret, 6, key, 5, 1),
            WEB_TOKEN_MALFORMED, "token: expiry over 64 bits");
}

/* ---- base64 -------------------------------------------------------------- */

static void test_base64(void) {
  static const char *vec[][2] = {{"", ""},         {"f", "Zg=="},
                                 {"fo", "Zm8="},   {"foo", "Zm9v"},
                                 {"foob", "Zm9vYg=="},
                                 {"fooba", "Zm9vYmE="},
                                 {"foobar", "Zm9vYmFy"}};
  static const char *bad[] = {
      "Zg=",      "Zg",       "Z",        "Zh==",     "Zm9=",    "Z===",
      "====",     "Zg==Zg==", "Zm 9v",    "Zm9v\n",   "Zm-v",    "Zm_v",
      "Zm9v=",    "=Zm9",     "Zm=v",     "Zg=a",     "\x80xyz", "Zm9v\0AAA"};
  char enc[512];
  uint8_t dec[512];
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; ++i) {
    size_t n = web_base64_encode(enc, (const uint8_t *)vec[i][0],
                                 strlen(vec[i][0]));
    tern_ssize m;
    CHECK_MEM(enc, n, vec[i][1], strlen(vec[i][1]), "base64 encodes a vector");
    CHECK_INT(n, web_base64_encoded_len(strlen(vec[i][0])), "encoded_len");
    m = web_base64_decode(dec, sizeof dec, vec[i][1], strlen(vec[i][1]));
    CHECK_MEM(dec, m, vec[i][0], strlen(vec[i][0]), "base64 decodes a vector");
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    size_t len = i == sizeof bad / sizeof bad[0] - 1 ? 8 : strlen(bad[i]);
    CHECK_INT(web_base64_decode(dec, sizeof dec, bad[i], len), TERN_ERR_PROTO,
              "base64 refuses a bad input");
  }
  CHECK_INT(web_base64_decode(dec, 5, "Zm9vYmFy", 8), TERN_ERR_TOO_LARGE,
            "base64: output too small");
  CHECK_INT(web_base64_decode(dec, 5, "Zm9vYmE=", 8), 5,
            "base64: output exactly large enough");
  {
    rng r;
    uint8_t src[300];
    int ok = 1;
    rng_seed(&r, 42);
    for (size_t len = 0; len <= sizeof src; ++len) {
      size_t n;
      for (size_t k = 0; k < len; ++k) {
        src[k] = (uint8_t)rng_next(&r);
      }
      n = web_base64_encode(enc, src, len);
      ok &= web_base64_decode(dec, sizeof dec, enc, n) == (tern_ssize)len &&
            memcmp(dec, src, len) == 0;
    }
    CHECK(ok, "base64 round trip for lengths 0..300");
  }
}

/* ---- WebSocket handshake ------------------------------------------------- */

static int hs(const char *key, const char *version, const char *protos,
              unsigned allowed, unsigned *proto, char accept[29]) {
  int rc;
  accept[WEB_WS_ACCEPT_LEN] = '\0';
  rc = web_ws_handshake(key, key ? strlen(key) : 0, version,
                        version ? strlen(version) : 0, protos,
                        protos ? strlen(protos) : 0, allowed, proto, accept);
  return rc;
}

static void test_handshake(void) {
  char accept[29];
  unsigned proto = 99;
  const unsigned both = WEB_WS_PROTO_BIN | WEB_WS_PROTO_JSON;
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  static const struct {
    const char *protos;
    unsigned allowed;
    int rc;
    unsigned proto;
  } pv[] = {
      {NULL, 3, 0, WEB_WS_PROTO_NONE},
      {"", 3, 0, WEB_WS_PROTO_NONE},
      {"tern.json", 3, 0, WEB_WS_PROTO_JSON},
      {"chat, tern.bin", 3, 0, WEB_WS_PROTO_BIN},
      {"tern.json, tern.bin", 3, 0, WEB_WS_PROTO_JSON},
      {"tern.json, tern.bin", WEB_WS_PROTO_BIN, 0, WEB_WS_PROTO_BIN},
      {" , ,tern.bin ,", 3, 0, WEB_WS_PROTO_BIN},
      {"chat", 3, WEB_WS_HS_NO_PROTOCOL, 0},
      {"Tern.bin", 3, WEB_WS_HS_NO_PROTOCOL, 0},
      {"tern.json", WEB_WS_PROTO_BIN, WEB_WS_HS_NO_PROTOCOL, 0},
      {"tern json", 3, WEB_WS_HS_BAD_PROTOCOL, 0},
      {"tern.bin; q=1", 3, WEB_WS_HS_BAD_PROTOCOL, 0},
      {"tern.bin, \"x\"", 3, WEB_WS_HS_BAD_PROTOCOL, 0},
  };
  CHECK_INT(hs(key, "13", NULL, both, &proto, accept), WEB_WS_HS_OK,
            "handshake: RFC 6455 example key");
  CHECK(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
        "handshake: the RFC's Sec-WebSocket-Accept (%s)", accept);
  CHECK_INT(proto, WEB_WS_PROTO_NONE, "handshake: no protocol asked");
  CHECK_INT(hs(" \tdGhlIHNhbXBsZSBub25jZQ== ", " 13\t", NULL, both, &proto,
               accept),
            WEB_WS_HS_OK, "handshake: spaces around values");
  CHECK(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
        "handshake: accept computed from the trimmed key");
  for (size_t i = 0; i < sizeof pv / sizeof pv[0]; ++i) {
    proto = 99;
    CHECK_INT(hs(key, "13", pv[i].protos, pv[i].allowed, &proto, accept),
              pv[i].rc, pv[i].protos ? pv[i].protos : "(no protocol)");
    CHECK_INT(proto, pv[i].rc == 0 ? pv[i].proto : 99u,
              "handshake: chosen protocol (untouched on error)");
  }
  {
    /* Empty, unpadded, non-canonical, 15 bytes, 21 bytes, a space
       inside, 19 bytes (a valid key and more). */
    static const char *badkeys[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZR==",
        "AAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "dGhlIHNhbXBsZSBub25j ZQ=",
        "dGhlIHNhbXBsZSBub25jZQ==AAAA",
    };
    for (size_t i = 0; i < sizeof badkeys / sizeof badkeys[0]; ++i) {
      proto = 99;
      CHECK_INT(hs(badkeys[i], "13", NULL, both, &proto, accept),
                WEB_WS_HS_BAD_KEY, "handshake: bad key refused");
    }
    CHECK_INT(hs(NULL, "13", NULL, both, &proto, accept), WEB_WS_HS_BAD_KEY,
              "handshake: no key");
    CHECK_INT(proto, 99, "handshake: proto untouched on error");
  }
  CHECK_INT(hs(key, "8", NULL, both, &proto, accept), WEB_WS_HS_BAD_VERSION,
            "handshake: version 8");
  CHECK_INT(hs(key, "130", NULL, both, &proto, accept),
            WEB_WS_HS_BAD_VERSION, "handshake: version 130");
  CHECK_INT(hs(key, NULL, NULL, both, &proto, accept), WEB_WS_HS_BAD_VERSION,
            "handshake: no version");
  CHECK(strcmp(web_ws_proto_name(WEB_WS_PROTO_BIN), "tern.bin") == 0 &&
            strcmp(web_ws_proto_name(WEB_WS_PROTO_JSON), "tern.json") == 0 &&
            web_ws_proto_name(0) == NULL,
        "protocol names");
  CHECK(web_http_has_token("keep-alive, Upgrade", 19, "upgrade"),
        "has_token: Connection: keep-alive, Upgrade");
  CHECK(web_http_has_token("websocket", 9, "websocket"), "has_token: alone");
  CHECK(!web_http_has_token("Upgrader", 8, "upgrade"), "has_token: prefix");
  CHECK(!web_http_has_token("", 0, "upgrade"), "has_token: empty");
  CHECK(web_http_has_token(" ,WebSocket ", 12, "websocket"),
        "has_token: case and spaces");
}

/* ---- WebSocket frames ---------------------------------------------------- */

/*
 * A decoding run, recorded as a transcript of whole messages and control
 * frames so that runs with different chunking compare equal:
 * "T<hex>" / "B<hex>" messages, "P<hex>" ping, "O<hex>" pong,
 * "C<code>:<hex>" close, then "E<err>:<code>" when decoding failed.
 */
typedef struct ws_run {
  char log[16384];
  size_t loglen;
  uint8_t msg[70000];
  size_t msglen;
  tern_ssize err;
  unsigned close_code;
  int chunk_over_cap;
} ws_run;

static void logf_(ws_run *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void logf_(ws_run *r, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(r->log + r->loglen, sizeof r->log - r->loglen, fmt, ap);
  va_end(ap);
  if (n > 0) {
    r->loglen += (size_t)n;
    if (r->loglen >= sizeof r->log) {
      r->loglen = sizeof r->log - 1;
    }
  }
}

static void log_hex(ws_run *r, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n && i < 64; ++i) {
    logf_(r, "%02x", p[i]);
  }
  if (n > 64) {
    logf_(r, "..(%zu)", n);
  }
}

static void ws_decode_all(int role, uint64_t max_frame, uint64_t max_message,
                          const uint8_t *in, size_t len, size_t chunk,
                          size_t outcap, ws_run *r) {
  web_ws_decoder d;
  uint8_t out[4096];
  size_t pos = 0;
  memset(r, 0, sizeof *r);
  web_ws_decoder_init(&d, role, max_frame, max_message);
  if (outcap > sizeof out) {
    outcap = sizeof out;
  }
  while (pos < len) {
    size_t piece = chunk && len - pos > chunk ? chunk : len - pos, off = 0;
    while (off < piece) {
      web_ws_event ev;
      tern_ssize n = web_ws_decode(&d, in + pos + off, piece - off, out,
                                   outcap, &ev);
      if (n < 0) {
        r->err = n;
        r->close_code = d.close_code;
        logf_(r, "E%td:%u", n, (unsigned)d.close_code);
        return;
      }
      off += (size_t)n;
      switch (ev.type) {
      case WEB_WS_EV_NONE:
        if (off != piece) {
          logf_(r, "STUCK");
          return;
        }
        break;
      case WEB_WS_EV_DATA:
        if (ev.len > outcap) {
          r->chunk_over_cap = 1;
        }
        if (r->msglen + ev.len <= sizeof r->msg) {
          memcpy(r->msg + r->msglen, ev.data, ev.len);
        }
        r->msglen += ev.len;
        if (ev.fin) {
          logf_(r, "%c", ev.opcode == WEB_WS_TEXT ? 'T' : 'B');
          log_hex(r, r->msg, r->msglen);
          logf_(r, "|");
          r->msglen = 0;
        }
        break;
      case WEB_WS_EV_PING:
      case WEB_WS_EV_PONG:
        logf_(r, "%c", ev.type == WEB_WS_EV_PING ? 'P' : 'O');
        log_hex(r, ev.data, ev.len);
        logf_(r, "|");
        break;
      case WEB_WS_EV_CLOSE:
        logf_(r, "C%u:", ev.close_code);
        log_hex(r, ev.data, ev.len);
        logf_(r, "|");
        break;
      }
    }
    pos += piece;
  }
}

/* ws_expect decodes |in| whole, byte by byte, in 3-byte pieces and with a
   small output buffer, checks all give |want|, and returns the run. */
static void ws_expect(int role, uint64_t max_frame, uint64_t max_message,
                      const uint8_t *in, size_t len, const char *want,
                      const char *what) {
  static ws_run a, b;
  ws_decode_all(role, max_frame, max_message, in, len, 0, 4096, &a);
  CHECK(strcmp(a.log, want) == 0, "%s: %s", what, a.log);
  if (strcmp(a.log, want) != 0) {
    tap_diag("want %s", want);
  }
  ws_decode_all(role, max_frame, max_message, in, len, 1, 4096, &b);
  CHECK(strcmp(a.log, b.log) == 0, "%s: byte by byte the same", what);
  ws_decode_all(role, max_frame, max_message, in, len, 3, 2, &b);
  CHECK(strcmp(a.log, b.log) == 0 && !b.chunk_over_cap,
        "%s: 3-byte pieces, 2-byte output the same", what);
}

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__})
#define NB(...) sizeof((const uint8_t[]){__VA_ARGS__})
#define EXPECT(role, fmax, mmax, want, what, ...)                           \
  ws_expect(role, fmax, mmax, BYTES(__VA_ARGS__), NB(__VA_ARGS__), want, what)

#define M 0x80 /* the MASK bit */
#define K4 0x37, 0xfa, 0x21, 0x3d /* the RFC's masking key */

static void test_ws_rfc_examples(void) {
  const int S = WEB_WS_SERVER, C = WEB_WS_CLIENT;
  /* RFC 6455, 5.7. */
  EXPECT(C, 1000, 1000, "T48656c6c6f|", "unmasked Hello", 0x81, 0x05, 'H',
         'e', 'l', 'l', 'o');
  EXPECT(S, 1000, 1000, "T48656c6c6f|", "masked Hello", 0x81, 0x85, K4,
         0x7f, 0x9f, 0x4d, 0x51, 0x58);
  EXPECT(C, 1000, 1000, "T48656c6c6f|", "fragmented Hello", 0x01, 0x03, 'H',
         'e', 'l', 0x80, 0x02, 'l', 'o');
  EXPECT(C, 1000, 1000, "P48656c6c6f|", "unmasked ping", 0x89, 0x05, 'H',
         'e', 'l', 'l', 'o');
  EXPECT(S, 1000, 1000, "O48656c6c6f|", "masked pong", 0x8a, 0x85, K4, 0x7f,
         0x9f, 0x4d, 0x51, 0x58);
  {
    static uint8_t f[10 + 65536];
    char want[256];
    memset(f, 0xab, sizeof f);
    f[0] = 0x82, f[1] = 0x7e, f[2] = 0x01, f[3] = 0x00;
    snprintf(want, sizeof want, "B%s..(256)|",
             "abababababababababababababababababababababababababababababababab"
             "abababababababababababababababababababababababababababababababab");
    ws_expect(C, 1 << 20, 1 << 20, f, 4 + 256, want, "256-byte binary");
    f[0] = 0x82, f[1] = 0x7f;
    memset(f + 2, 0, 8);
    f[7] = 0x01;
    snprintf(want, sizeof want, "B%s..(65536)|",
             "abababababababababababababababababababababababababababababababab"
             "abababababababababababababababababababababababababababababababab");
    memset(f + 10, 0xab, 65536);
    ws_expect(C, 1 << 20, 1 << 20, f, 10 + 65536, want, "64 KiB binary");
  }
}

static void test_ws_sequences(void) {
  const int S = WEB_WS_SERVER;
  /* Masked with key 00000000 so that payload bytes read as they are. */
#define Z 0, 0, 0, 0
  EXPECT(S, 100, 100, "P7a|T6162|T|O|B00|", "ping between fragments",
         0x01, M | 1, Z, 'a', 0x89, M | 1, Z, 'z', 0x80, M | 1, Z, 'b',
         0x81, M | 0, Z, 0x8a, M | 0, Z, 0x82, M | 1, Z, 0);
  EXPECT(S, 100, 100, "B0102|", "empty first and middle fragments", 0x02,
         M, Z, 0x00, M | 1, Z, 1, 0x00, M, Z, 0x80, M | 1, Z, 2);
  EXPECT(S, 100, 100, "C1000:6279|", "close with code and reason", 0x88,
         M | 4, Z, 0x03, 0xe8, 'b', 'y');
  EXPECT(S, 100, 100, "C1005:|", "close without a code", 0x88, M, Z);
  EXPECT(S, 100, 100, "C4999:|", "close 4999", 0x88, M | 2, Z, 0x13, 0x87);
  EXPECT(S, 100, 100, "C3000:|", "close 3000", 0x88, M | 2, Z, 0x0b, 0xb8);
  EXPECT(S, 100, 100, "Te282ac|", "euro sign split across fragments", 0x01,
         M | 2, Z, 0xe2, 0x82, 0x80, M | 1, Z, 0xac);
  EXPECT(S, 100, 100, "Bff|", "binary need not be UTF-8", 0x82, M | 1, Z,
         0xff);
  EXPECT(S, 3, 5, "B0102030405|B0405|", "frames at max_frame, message at max",
         0x02, M | 3, Z, 1, 2, 3, 0x80, M | 2, Z, 4, 5, 0x82, M | 2, Z, 4, 5);
  EXPECT(S, 100, 100, "C1000:|E-508:0", "nothing is decoded after a close",
         0x88, M | 2, Z, 0x03, 0xe8, 0x81, M, Z);
  EXPECT(S, 100, 100, "P|", "an incomplete frame waits", 0x89, M, Z, 0x81,
         M | 5, Z, 'a');
  /* The mask is applied by position across pieces. */
  EXPECT(S, 100, 100, "T61626364656667|", "mask rotates over the payload",
         0x81, M | 7, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2, 'c' ^ 3, 'd' ^ 4,
         'e' ^ 1, 'f' ^ 2, 'g' ^ 3);
#undef Z
}

static void test_ws_errors(void) {
  const int S = WEB_WS_SERVER, C = WEB_WS_CLIENT;
#define Z 0, 0, 0, 0
  EXPECT(S, 100, 100, "E-507:1002", "unmasked frame to a server", 0x81, 0x01,
         'a');
  EXPECT(C, 100, 100, "E-507:1002", "masked frame to a client", 0x81,
         M | 1, Z, 'a');
  EXPECT(S, 100, 100, "E-507:1002", "RSV1", 0xc1, M | 1, Z, 'a');
  EXPECT(S, 100, 100, "E-507:1002", "RSV2", 0xa1, M | 1, Z, 'a');
  EXPECT(S, 100, 100, "E-507:1002", "RSV3", 0x91, M | 1, Z, 'a');
  EXPECT(S, 100, 100, "E-507:1002", "opcode 3", 0x83, M, Z);
  EXPECT(S, 100, 100, "E-507:1002", "opcode 0xB", 0x8b, M, Z);
  EXPECT(S, 100, 100, "E-507:1002", "continuation with nothing open", 0x80,
         M | 1, Z, 'a');
  EXPECT(S, 100, 100, "E-507:1002", "text while a message is open", 0x01,
         M | 1, Z, 'a', 0x81, M | 1, Z, 'b');
  EXPECT(S, 100, 100, "E-507:1002", "fragmented ping", 0x09, M | 1, Z, 'a');
  EXPECT(S, 1000, 1000, "E-507:1002", "ping of 126 bytes", 0x89, M | 126, 0,
         126, Z);
  EXPECT(S, 100, 100, "E-507:1002", "close with a 1-byte body", 0x88, M | 1,
         Z, 3);
  {
    static const unsigned bad[] = {0,    999,  1004, 1005, 1006, 1015,
                                   1016, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
      uint8_t f[8] = {0x88, M | 2, 0, 0, 0, 0, (uint8_t)(bad[i] >> 8),
                      (uint8_t)bad[i]};
      char what[64];
      snprintf(what, sizeof what, "close code %u", bad[i]);
      ws_expect(S, 100, 100, f, sizeof f, "E-507:1002", what);
    }
  }
  EXPECT(S, 100, 100, "E-507:1007", "close reason not UTF-8", 0x88, M | 3, Z,
         0x03, 0xe8, 0xff);
  EXPECT(S, 100, 100, "E-507:1007", "text 0xff", 0x81, M | 1, Z, 0xff);
  EXPECT(S, 100, 100, "E-507:1007", "overlong C0 80", 0x81, M | 2, Z, 0xc0,
         0x80);
  EXPECT(S, 100, 100, "E-507:1007", "overlong E0 80 80", 0x81, M | 3, Z, 0xe0,
         0x80, 0x80);
  EXPECT(S, 100, 100, "E-507:1007", "surrogate ED A0 80", 0x81, M | 3, Z,
         0xed, 0xa0, 0x80);
  EXPECT(S, 100, 100, "E-507:1007", "above U+10FFFF", 0x81, M | 4, Z, 0xf4,
         0x90, 0x80, 0x80);
  EXPECT(S, 100, 100, "E-507:1007", "text ends inside a character", 0x81,
         M | 2, Z, 0xe2, 0x82);
  EXPECT(S, 100, 100, "E-507:1007", "bad continuation in the next fragment",
         0x01, M | 2, Z, 0xe2, 0x82, 0x80, M | 1, Z, 0x41);
  EXPECT(S, 100, 100, "E-507:1002", "16-bit length below 126", 0x82,
         M | 126, 0, 125, Z);
  EXPECT(S, 100, 100, "E-507:1002", "64-bit length below 65536", 0x82,
         M | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff, Z);
  EXPECT(S, UINT64_MAX, UINT64_MAX, "E-507:1002", "64-bit length, top bit",
         0x82, M | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, Z);
  EXPECT(S, 3, 100, "E-503:1009", "frame over max_frame", 0x82, M | 4, Z, 1,
         2, 3, 4);
  EXPECT(S, 3, 5, "E-503:1009", "message over max_message", 0x02, M | 3, Z, 1,
         2, 3, 0x80, M | 3, Z, 4, 5, 6);
  EXPECT(S, 100, 100, "E-503:1009", "huge 64-bit length", 0x82, M | 127, 0,
         0, 0, 1, 0, 0, 0, 0, Z);
  EXPECT(S, 100, 100, "T61|E-507:1002", "good frame then bad frame", 0x81,
         M | 1, Z, 'a', 0x83, M, Z);
#undef Z
  {
    web_ws_decoder d;
    web_ws_event ev;
    uint8_t out[4];
    web_ws_decoder_init(&d, WEB_WS_SERVER, 10, 10);
    CHECK_INT(web_ws_decode(&d, BYTES(0x81), 1, out, 0, &ev),
              TERN_ERR_INVALID, "decode: outcap 0");
    CHECK_INT(web_ws_decode(&d, BYTES(0x81), 1, NULL, 4, &ev),
              TERN_ERR_INVALID, "decode: out NULL");
    CHECK_INT(web_ws_decode(&d, BYTES(0x81, 0x01), 2, out, 4, &ev),
              TERN_ERR_PROTO, "decode: error");
    CHECK_INT(web_ws_decode(&d, BYTES(0x81), 1, out, 4, &ev),
              TERN_ERR_CLOSED, "decode: finished after an error");
  }
}

/* In place: the unmasked payload overwrites the input it came from. */
static void test_ws_in_place(void) {
  uint8_t buf[] = {0x81, 0x85, K4, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  web_ws_decoder d;
  web_ws_event ev;
  tern_ssize n;
  web_ws_decoder_init(&d, WEB_WS_SERVER, 100, 100);
  n = web_ws_decode(&d, buf, sizeof buf, buf, sizeof buf, &ev);
  CHECK_INT(n, sizeof buf, "in place: consumed all");
  CHECK(ev.type == WEB_WS_EV_DATA && ev.fin && ev.opcode == WEB_WS_TEXT,
        "in place: one final text chunk");
  CHECK_MEM(ev.data, ev.len, "Hello", 5, "in place: unmasked");
  n = web_ws_decode(&d, buf, 0, buf, sizeof buf, &ev);
  CHECK(n == 0 && ev.type == WEB_WS_EV_NONE, "decode of nothing: NONE");
  {
    /* Unmasked (client side), two frames, out at the start of the input:
       the second frame's payload moves over the first frame's bytes. */
    uint8_t two[] = {0x82, 0x02, 'a', 'b', 0x81, 0x03, 'c', 'd', 'e'};
    tern_ssize used;
    web_ws_decoder_init(&d, WEB_WS_CLIENT, 100, 100);
    used = web_ws_decode(&d, two, sizeof two, two, sizeof two, &ev);
    CHECK(used == 4 && ev.type == WEB_WS_EV_DATA && ev.opcode == WEB_WS_BINARY,
          "in place, unmasked: first frame");
    CHECK_MEM(ev.data, ev.len, "ab", 2, "in place, unmasked: first payload");
    n = web_ws_decode(&d, two + used, sizeof two - (size_t)used, two,
                      sizeof two, &ev);
    CHECK(n == 5 && ev.type == WEB_WS_EV_DATA && ev.opcode == WEB_WS_TEXT,
          "in place, unmasked: second frame");
    CHECK_MEM(ev.data, ev.len, "cde", 3, "in place, unmasked: second payload");
  }
}

static void test_ws_encoder(void) {
  static const struct {
    uint64_t len;
    size_t hlen;
    uint8_t b1;
  } hv[] = {{0, 2, 0},       {125, 2, 125},     {126, 4, 126},
            {65535, 4, 126}, {65536, 10, 127},  {UINT64_C(1) << 40, 10, 127}};
  uint8_t h[WEB_WS_HEADER_MAX], mask[4] = {9, 8, 7, 6};
  for (size_t i = 0; i < sizeof hv / sizeof hv[0]; ++i) {
    size_t n = web_ws_header_write(h, 1, WEB_WS_BINARY, hv[i].len, NULL);
    CHECK(n == hv[i].hlen && n == web_ws_header_len(hv[i].len, 0) &&
              h[0] == 0x82 && h[1] == hv[i].b1,
          "header for %llu bytes is %zu bytes", (unsigned long long)hv[i].len,
          hv[i].hlen);
    n = web_ws_header_write(h, 0, WEB_WS_TEXT, hv[i].len, mask);
    CHECK(n == hv[i].hlen + 4 && n == web_ws_header_len(hv[i].len, 1) &&
              h[0] == 0x01 && h[1] == (hv[i].b1 | 0x80) &&
              memcmp(h + n - 4, mask, 4) == 0,
          "masked header for %llu bytes", (unsigned long long)hv[i].len);
  }
  /* Server frames (unmasked) decode on the client side, client frames
     (masked) on the server side. */
  {
    static uint8_t stream[250000];
    static uint8_t payload[70000];
    static const size_t lens[] = {0, 1, 125, 126, 65535, 65536, 69999};
    static ws_run r;
    char want[4096];
    size_t at = 0, wl = 0;
    for (size_t i = 0; i < sizeof payload; ++i) {
      payload[i] = (uint8_t)('a' + i % 26);
    }
    for (int masked = 0; masked < 2; ++masked) {
      at = 0;
      wl = 0;
      for (size_t i = 0; i < sizeof lens / sizeof lens[0]; ++i) {
        at += web_ws_header_write(stream + at, 1, WEB_WS_TEXT, lens[i],
                                  masked ? mask : NULL);
        memcpy(stream + at, payload, lens[i]);
        if (masked) {
          web_ws_mask(stream + at, lens[i], mask, 0);
        }
        at += lens[i];
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "T");
        for (size_t k = 0; k < lens[i] && k < 64; ++k) {
          wl += (size_t)snprintf(want + wl, sizeof want - wl, "%02x",
                                 payload[k]);
        }
        if (lens[i] > 64) {
          wl += (size_t)snprintf(want + wl, sizeof want - wl, "..(%zu)",
                                 lens[i]);
        }
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "|");
      }
      ws_decode_all(masked ? WEB_WS_SERVER : WEB_WS_CLIENT, 1 << 20, 1 << 20,
                    stream, at, 0, 4096, &r);
      if (strcmp(r.log, want) != 0) tap_diag("got %s\n# want %s", r.log, want);
      CHECK(strcmp(r.log, want) == 0, "%s frames of 0..69999 bytes decode",
            masked ? "masked" : "unmasked");
      ws_decode_all(masked ? WEB_WS_SERVER : WEB_WS_CLIENT, 1 << 20, 1 << 20,
                    stream, at, 7, 3, &r);
      CHECK(strcmp(r.log, want) == 0, "...and in 7-byte pieces");
    }
  }
  {
    uint8_t f[200];
    tern_ssize n;
    n = web_ws_control_write(f, sizeof f, WEB_WS_PING, (const uint8_t *)"hi",
                             2, NULL);
    CHECK_MEM(f, n, "\x89\x02hi", 4, "ping frame");
    n = web_ws_control_write(f, sizeof f, WEB_WS_PONG, NULL, 0, NULL);
    CHECK_MEM(f, n, "\x8a\x00", 2, "empty pong frame");
    n = web_ws_close_write(f, sizeof f, 1001, "bye", 3, NULL);
    CHECK_MEM(f, n, "\x88\x05\x03\xe9" "bye", 7, "close frame");
    n = web_ws_close_write(f, sizeof f, 0, NULL, 0, NULL);
    CHECK_MEM(f, n, "\x88\x00", 2, "close frame without a code");
    CHECK_INT(web_ws_control_write(f, sizeof f, WEB_WS_TEXT, NULL, 0, NULL),
              TERN_ERR_INVALID, "control_write: text opcode");
    CHECK_INT(web_ws_control_write(f, sizeof f, WEB_WS_PING, f, 126, NULL),
              TERN_ERR_INVALID, "control_write: 126 bytes");
    CHECK_INT(web_ws_control_write(f, 3, WEB_WS_PING, f, 2, NULL),
              TERN_ERR_TOO_LARGE, "control_write: short buffer");
    CHECK_INT(web_ws_control_write(f, 8, WEB_WS_PING, f, 2, mask),
              8, "control_write: masked fits exactly");
    CHECK_INT(web_ws_close_write(f, sizeof f, 1005, NULL, 0, NULL),
              TERN_ERR_INVALID, "close_write: 1005");
    CHECK_INT(web_ws_close_write(f, sizeof f, 1000, "\xff", 1, NULL),
              TERN_ERR_INVALID, "close_write: reason not UTF-8");
    CHECK_INT(web_ws_close_write(f, sizeof f, 0, "x", 1, NULL),
              TERN_ERR_INVALID, "close_write: reason without code");
    {
      char reason[124];
      memset(reason, 'x', sizeof reason);
      CHECK_INT(web_ws_close_write(f, sizeof f, 1000, reason, 124, NULL),
                TERN_ERR_INVALID, "close_write: reason of 124 bytes");
      CHECK_INT(web_ws_close_write(f, sizeof f, 1000, reason, 123, NULL),
                127, "close_write: reason of 123 bytes");
    }
  }
}

/* ---- UTF-8 --------------------------------------------------------------- */

static void test_utf8(void) {
  static const char *good[] = {"", "abc", "\xc2\x80", "\xdf\xbf",
                               "\xe0\xa0\x80", "\xed\x9f\xbf",
                               "\xee\x80\x80", "\xef\xbf\xbf",
                               "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
                               "0123456789abcdef\xe2\x82\xac"};
  static const char *bad[] = {"\x80",         "\xc1\xbf",     "\xc2",
                              "\xe0\x9f\xbf", "\xed\xa0\x80", "\xf0\x8f\xbf\xbf",
                              "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                              "\xfe",         "abcdefgh\xff"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; ++i) {
    CHECK(web_utf8_valid((const uint8_t *)good[i], strlen(good[i])),
          "utf8 valid %zu", i);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    CHECK(!web_utf8_valid((const uint8_t *)bad[i], strlen(bad[i])),
          "utf8 invalid %zu", i);
  }
}

/* ---- JSON ---------------------------------------------------------------- */

/* json_msg encodes |m| whole and as head + tail, checks the sizes, and
   returns the envelope (static buffer, NUL-terminated). */
static const char *json_msg(const web_json_msg *m) {
  static uint8_t buf[8192], split[8192];
  web_json_plan plan;
  tern_ssize len = web_json_msg_len(m, &plan);
  size_t n, h;
  if (len < 0 || (size_t)len >= sizeof buf) {
    return "(error)";
  }
  memset(buf, 0xee, sizeof buf);
  n = web_json_msg_write(buf, m, &plan);
  CHECK(n == (size_t)len && buf[n] == 0xee,
        "envelope writes exactly its size (%zu)", n);
  h = web_json_head_write(split, m->seq);
  CHECK_INT(h, web_json_head_len(m->seq), "head size");
  n = h + web_json_tail_write(split + h, m, &plan);
  CHECK_MEM(split, n, buf, (size_t)len, "head + tail equals the envelope");
  buf[len] = '\0';
  return (const char *)buf;
}

static web_json_msg mk(uint64_t seq, const char *id, int prio, const char *ct,
                       const void *data, size_t datalen) {
  web_json_msg m;
  memset(&m, 0, sizeof m);
  m.seq = seq;
  m.id = (const uint8_t *)id;
  m.idlen = strlen(id);
  m.priority = prio;
  m.content_type = (const uint8_t *)ct;
  m.content_typelen = ct ? strlen(ct) : 0;
  m.payload = data;
  m.payloadlen = datalen;
  return m;
}

static void test_json_encode(void) {
  web_json_msg m;
  const char *s;
  m = mk(7, "order-1", TERN_PRIO_HIGH, "application/json", "{\"a\":1}", 7);
  s = json_msg(&m);
  CHECK(strcmp(s, "{\"seq\":7,\"id\":\"order-1\",\"prio\":\"high\","
                  "\"ct\":\"application/json\",\"data\":\"{\\\"a\\\":1}\"}") == 0,
        "envelope: %s", s);
  m = mk(0, "x", TERN_PRIO_NORMAL, NULL, "", 0);
  s = json_msg(&m);
  CHECK(strcmp(s, "{\"seq\":0,\"id\":\"x\",\"prio\":\"normal\",\"data\":\"\"}") == 0,
        "envelope without ct, empty data: %s", s);
  m = mk(UINT64_MAX, "", TERN_PRIO_LOW, NULL, "a\"b\\c\n\x01\x1f\x7f\xc3\xa9/",
         12);
  s = json_msg(&m);
  CHECK(strcmp(s, "{\"seq\":18446744073709551615,\"id\":\"\",\"prio\":\"low\","
                  "\"data\":\"a\\\"b\\\\c\\u000a\\u0001\\u001f\x7f\xc3\xa9/\"}") == 0,
        "envelope escapes: %s", s);
  CHECK_INT(web_json_head_len(UINT64_MAX), WEB_JSON_HEAD_MAX,
            "longest head fits WEB_JSON_HEAD_MAX");
  m = mk(3, "i", TERN_PRIO_NORMAL, "application/octet-stream",
         "\x00\xff\xfe", 3);
  s = json_msg(&m);
  CHECK(strcmp(s, "{\"seq\":3,\"id\":\"i\",\"prio\":\"normal\","
                  "\"ct\":\"application/octet-stream\",\"enc\":\"base64\","
                  "\"data\":\"AP/+\"}") == 0,
        "envelope, payload not UTF-8: %s", s);
  m = mk(3, "\xff\x41\xe2\x82", TERN_PRIO_NORMAL, "t\xc0", "\xed\xa0\x80", 3);
  s = json_msg(&m);
  CHECK(strcmp(s, "{\"seq\":3,\"id\":\"\\u00ffA\\u00e2\\u0082\",\"prio\":"
                  "\"normal\",\"ct\":\"t\\u00c0\",\"enc\":\"base64\","
                  "\"data\":\"7aCA\"}") == 0,
        "envelope, id and ct with invalid bytes, surrogate payload: %s", s);
  m = mk(1, "x", 3, NULL, "", 0);
  {
    web_json_plan plan;
    CHECK_INT(web_json_msg_len(&m, &plan), TERN_ERR_INVALID,
              "envelope: priority 3");
    m = mk(1, "x", TERN_PRIO_LOW, NULL, NULL, 5);
    CHECK_INT(web_json_msg_len(&m, &plan), TERN_ERR_INVALID,
              "envelope: NULL payload with a length");
  }
  {
    static const struct {
      uint64_t count;
      int reason;
      const char *want;
    } dv[] = {
        {1, TERN_DROP_EXPIRED, "{\"count\":1,\"reason\":\"expired\"}"},
        {0, TERN_DROP_OVERFLOW, "{\"count\":0,\"reason\":\"overflow\"}"},
        {42, TERN_DROP_DEAD, "{\"count\":42,\"reason\":\"dead\"}"},
        {UINT64_MAX, WEB_JSON_DROP_RETENTION,
         "{\"count\":18446744073709551615,\"reason\":\"retention\"}"},
    };
    uint8_t buf[128];
    for (size_t i = 0; i < sizeof dv / sizeof dv[0]; ++i) {
      tern_ssize len = web_json_dropped_len(dv[i].count, dv[i].reason);
      size_t n = web_json_dropped_write(buf, dv[i].count, dv[i].reason);
      CHECK(len == (tern_ssize)n && n <= WEB_JSON_DROPPED_MAX,
            "dropped size %zu", n);
      CHECK_MEM(buf, n, dv[i].want, strlen(dv[i].want), dv[i].want);
    }
    CHECK_INT(web_json_dropped_len(1, 0), TERN_ERR_INVALID,
              "dropped: reason 0");
    CHECK_INT(web_json_dropped_len(1, 5), TERN_ERR_INVALID,
              "dropped: reason 5");
    CHECK_INT(web_json_hb_len(25000), 12, "hb size");
    CHECK_MEM(buf, web_json_hb_write(buf, 25000), "{\"hb\":25000}", 12,
              "hb");
    CHECK(web_json_hb_len(UINT64_MAX) <= WEB_JSON_HB_MAX, "longest hb fits");
    CHECK_INT(web_json_str_len((const uint8_t *)"a\"", 2), 5, "str_len");
    CHECK_MEM(buf, web_json_str_write(buf, (const uint8_t *)"a\"", 2),
              "\"a\\\"\"", 5, "str_write");
  }
}

static void test_json_ack(void) {
  static const struct {
    const char *in;
    uint64_t seq;
  } good[] = {
      {"{\"ack\":5}", 5},
      {"{\"ack\":0}", 0},
      {" \t\r\n{ \"ack\" : 12345 }\n", 12345},
      {"{\"ack\":4611686018427387903}", UINT64_C(4611686018427387903)},
  };
  static const char *bad[] = {
      "",
      " ",
      "{}",
      "[5]",
      "{\"ack\":-1}",
      "{\"ack\":01}",
      "{\"ack\":00}",
      "{\"ack\":1.0}",
      "{\"ack\":1e3}",
      "{\"ack\":1E3}",
      "{\"ack\":\"1\"}",
      "{\"ack\":null}",
      "{\"ack\":}",
      "{\"ack\":1,\"x\":2}",
      "{\"x\":2,\"ack\":1}",
      "{\"ACK\":1}",
      "{\"ack \":1}",
      "{\"a\\u0063k\":1}",
      "{\"ack\":4611686018427387904}",
      "{\"ack\":18446744073709551616}",
      "{\"ack\":99999999999999999999999}",
      "{\"ack\":1}x",
      "{\"ack\":1}{\"ack\":2}",
      "{\"ack\":1",
      "{\"ack\" 1}",
      "{\"ack\":1,}",
      "{\"ack\"",
      "{'ack':1}",
      "{\"ack\":+1}",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; ++i) {
    uint64_t seq = 99;
    const char *why = NULL;
    int rc = web_json_ack_parse((const uint8_t *)good[i].in,
                                strlen(good[i].in), &seq, &why);
    CHECK(rc == 0 && seq == good[i].seq && why == NULL, "ack parses: #%zu",
          i);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    uint64_t seq = 99;
    const char *why = NULL;
    int rc = web_json_ack_parse((const uint8_t *)bad[i], strlen(bad[i]), &seq,
                                &why);
    CHECK(rc == TERN_ERR_PROTO && seq == 99 && why != NULL,
          "ack refused: %s (%s)", bad[i], why ? why : "no reason");
  }
  {
    uint64_t seq = 99;
    CHECK(web_json_ack_parse((const uint8_t *)"{\"ack\":1}\0", 10, &seq,
                             NULL) == TERN_ERR_PROTO && seq == 99,
          "ack refused: trailing NUL, why NULL");
  }
}

int main(void) {
  test_sha1();
  test_sha256();
  test_hmac();
  test_token();
  test_base64();
  test_utf8();
  test_handshake();
  test_ws_rfc_examples();
  test_ws_sequences();
  test_ws_errors();
  test_ws_in_place();
  test_ws_encoder();
  test_json_encode();
  test_json_ack();
  return tap_done();
}
