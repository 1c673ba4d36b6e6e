/*
 * A line-oriented driver of the web codecs for tests/web_oracle_test.py,
 * which checks them against Python's hashlib, hmac, base64 and json and an
 * RFC 6455 frame codec of its own.  One command per input line, arguments
 * in hex ("-" for empty), one answer line each:
 *   sha1 D | sha256 D        -> hex digest
 *   hmac KEY D               -> hex HMAC-SHA256
 *   b64e D                   -> base64 text
 *   b64d TEXT                -> hex, or ERR code
 *   accept KEY               -> Sec-WebSocket-Accept
 *   token SECRET KEY E       -> the token text
 *   env SEQ PRIO ID CT D     -> the envelope's text in hex, or ERR code
 *   ack TEXT                 -> OK seq, or ERR
 *   ws STREAM                -> the server decoder's events, ';'-separated
 *   wsenc OPCODE D           -> an unmasked server frame in hex
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/base64.h"
#include "web/json.h"
#include "web/sha1.h"
#include "web/sha256.h"
#include "web/ws.h"

static size_t unhex(uint8_t *out, const char *s) {
  size_t n = 0;
  if (strcmp(s, "-") == 0) {
    return 0;
  }
  for (; s[0] && s[1]; s += 2) {
    unsigned v;
    sscanf(s, "%2x", &v);
    out[n++] = (uint8_t)v;
  }
  return n;
}

static void put_hex(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    printf("%02x", p[i]);
  }
  if (n == 0) {
    printf("-");
  }
}

#define BIG (1 << 20)

int main(void) {
  static char line[4 * BIG];
  static uint8_t a[BIG], b[BIG], out[4 * BIG];
  while (fgets(line, sizeof line, stdin) != NULL) {
    char *cmd = strtok(line, " \n"), *x = strtok(NULL, " \n"),
         *y = strtok(NULL, " \n"), *z = strtok(NULL, " \n"),
         *u = strtok(NULL, " \n"), *v = strtok(NULL, " \n");
    if (cmd == NULL || x == NULL) {
      printf("ERR usage\n");
    } else if (strcmp(cmd, "sha1") == 0) {
      web_sha1 c;
      size_t n = unhex(a, x);
      web_sha1_init(&c);
      web_sha1_update(&c, a, n);
      web_sha1_final(&c, out);
      put_hex(out, WEB_SHA1_LEN);
      printf("\n");
    } else if (strcmp(cmd, "sha256") == 0) {
      web_sha256_buf(a, unhex(a, x), out);
      put_hex(out, WEB_SHA256_LEN);
      printf("\n");
    } else if (strcmp(cmd, "hmac") == 0 && y) {
      size_t k = unhex(a, x), n = unhex(b, y);
      web_hmac_sha256_buf(a, k, b, n, out);
      put_hex(out, WEB_SHA256_LEN);
      printf("\n");
    } else if (strcmp(cmd, "b64e") == 0) {
      size_t n = web_base64_encode((char *)out, a, unhex(a, x));
      printf("%.*s\n", (int)n, (char *)out);
    } else if (strcmp(cmd, "b64d") == 0) {
      size_t n = unhex(a, x);
      tern_ssize r = web_base64_decode(out, sizeof out, (char *)a, n);
      if (r < 0) {
        printf("ERR %td\n", r);
      } else {
        put_hex(out, (size_t)r);
        printf("\n");
      }
    } else if (strcmp(cmd, "accept") == 0) {
      char acc[WEB_WS_ACCEPT_LEN];
      size_t n = unhex(a, x);
      web_ws_accept((char *)a, n, acc);
      printf("%.*s\n", WEB_WS_ACCEPT_LEN, acc);
    } else if (strcmp(cmd, "token") == 0 && y && z) {
      char tok[WEB_TOKEN_MAX];
      size_t s = unhex(a, x), k = unhex(b, y);
      size_t n = web_token_make(tok, a, s, b, k, strtoull(z, NULL, 10));
      printf("%.*s\n", (int)n, tok);
    } else if (strcmp(cmd, "env") == 0 && y && z && u && v) {
      static uint8_t id[BIG], ct[BIG];
      web_json_msg m;
      web_json_plan plan;
      tern_ssize len;
      memset(&m, 0, sizeof m);
      m.seq = strtoull(x, NULL, 10);
      m.priority = atoi(y);
      m.id = id, m.idlen = unhex(id, z);
      m.content_type = ct, m.content_typelen = unhex(ct, u);
      m.payload = a, m.payloadlen = unhex(a, v);
      len = web_json_msg_len(&m, &plan);
      if (len < 0) {
        printf("ERR %td\n", len);
      } else {
        size_t n = web_json_msg_write(out, &m, &plan);
        if (n != (size_t)len) {
          printf("ERR size\n");
        } else {
          put_hex(out, n);
          printf("\n");
        }
      }
    } else if (strcmp(cmd, "ack") == 0) {
      uint64_t seq;
      if (web_json_ack_parse(a, unhex(a, x), &seq, NULL) == 0) {
        printf("OK %llu\n", (unsigned long long)seq);
      } else {
        printf("ERR\n");
      }
    } else if (strcmp(cmd, "ws") == 0) {
      web_ws_decoder d;
      size_t n = unhex(a, x), at = 0, msglen = 0;
      web_ws_decoder_init(&d, WEB_WS_SERVER, BIG, BIG);
      for (;;) {
        web_ws_event ev;
        tern_ssize r = web_ws_decode(&d, a + at, n - at, b, sizeof b, &ev);
        if (r < 0) {
          printf("E %u;", (unsigned)d.close_code);
          break;
        }
        at += (size_t)r;
        if (ev.type == WEB_WS_EV_NONE) {
          break;
        }
        if (ev.type == WEB_WS_EV_DATA) {
          memcpy(out + msglen, ev.data, ev.len);
          msglen += ev.len;
          if (ev.fin) {
            printf("%c ", ev.opcode == WEB_WS_TEXT ? 'T' : 'B');
            put_hex(out, msglen);
            printf(";");
            msglen = 0;
          }
        } else if (ev.type == WEB_WS_EV_CLOSE) {
          printf("C %u ", ev.close_code);
          put_hex(ev.data, ev.len);
          printf(";");
        } else {
          printf("%c ", ev.type == WEB_WS_EV_PING ? 'P' : 'O');
          put_hex(ev.data, ev.len);
          printf(";");
        }
      }
      printf("\n");
    } else if (strcmp(cmd, "wsenc") == 0 && y) {
      size_t n = unhex(a, y);
      size_t h = web_ws_header_write(out, 1, atoi(x), n, NULL);
      memcpy(out + h, a, n);
      put_hex(out, h + n);
      printf("\n");
    } else {
      printf("ERR usage\n");
    }
    fflush(stdout);
  }
  return 0;
}
