/*
 * Fuzz target for the hub's loader (tern_hub_set_store): whatever records a
 * store hands back — damaged, forged, contradictory — the hub either loads
 * or refuses with an error, never crashes or leaks, and what it loaded can
 * be delivered: topics published to, members' messages sent and acked.  Input: records as [keylen][key][valuelen (2)][value]...;
 * the first byte picks the load time.  Records are loaded through the
 * in-memory store of the unit tests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../memstore.h"
#include "tern.h"
#include "fuzz_util.h"
#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  tern_tstamp now = (tern_tstamp)data[0] * 1000000000u;
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  size_t i = 1;
  tern_store_record r;
  while (i < size) {
    size_t keylen = data[i++];
    if (keylen == 0 || i + keylen + 2 > size) {
      break;
    }
    r.op = TERN_STORE_SET;
    r.key = data + i;
    r.keylen = keylen;
    i += keylen;
    size_t valuelen = (size_t)data[i] << 8 | data[i + 1];
    i += 2;
    if (valuelen > size - i) {
      valuelen = size - i;
    }
    r.value = data + i;
    r.valuelen = valuelen;
    i += valuelen;
    memstore_append(&ms, 0, &r, 1, 1);
  }
  tern_mem mem = fuzz_mem();
  outstanding = calls = fail_at = 0;
  tern_settings s;
  tern_settings_default(&s);
  s.seed = 3;
  tern_hub *hub;
  if (tern_hub_new(&hub, &s, &mem) != 0) {
    abort();
  }
  int rv = tern_hub_set_store(hub, &memstore_methods, &ms, now);
  if (rv != 0 && rv != TERN_ERR_STORE && rv != TERN_ERR_NOMEM) {
    abort();
  }
  tern_stats st;
  tern_hub_get_stats(hub, &st, sizeof(st));
  if (rv != 0 && (st.sessions != 0 || st.messages != 0)) {
    abort(); /* a refused load leaves the hub empty */
  }
  /* Publish to every topic loaded (the log, its retention and members
     must be consistent), then deliver whatever was loaded, to every
     session found in the records. */
  for (size_t k = 0; rv == 0 && k < ms.nkv; ++k) {
    const memrec *mr = &ms.kv[k];
    if (mr->keylen != 9 || mr->key[0] != 'T' || mr->valuelen < 47 ||
        mr->valuelen != 46u + mr->value[37]) {
      continue;
    }
    char name[256];
    memcpy(name, mr->value + 46, mr->value[37]);
    name[mr->value[37]] = 0;
    tern_topic *t = tern_hub_find_topic(hub, name);
    if (t) {
      tern_msg_desc d;
      memset(&d, 0, sizeof(d));
      d.payload = (const uint8_t *)"fuzz";
      d.payloadlen = 4;
      tern_topic_publish(t, &d, now, NULL);
      tern_receipt rc;
      tern_topic_get_receipt(t, 1, &rc, sizeof(rc));
    }
  }
  uint8_t out[4096];
  for (size_t k = 0; k < ms.nkv; ++k) {
    const memrec *mr = &ms.kv[k];
    const uint8_t *key = NULL;
    size_t keylen = 0;
    if (mr->keylen >= 2 && (mr->key[0] == 'S' || mr->key[0] == 'W')) {
      key = mr->key + 1;
      keylen = mr->keylen - 1;
    } else if (mr->keylen >= 10 && mr->key[0] == 'C') {
      key = mr->key + 9;
      keylen = mr->keylen - 9;
    }
    if (!key || keylen > TERN_MAX_SESSION_KEY) {
      continue;
    }
    if (!tern_hub_find_session(hub, key, keylen)) {
      continue;
    }
    tern_conn *c;
    if (tern_conn_new(&c, hub, now) != 0) {
      abort();
    }
    wire_frame f;
    memset(&f, 0, sizeof(f));
    f.type = WIRE_HELLO;
    f.u.hello.version = WIRE_VERSION;
    f.u.hello.epoch = tern_hub_get_epoch(hub);
    f.u.hello.key = key;
    f.u.hello.keylen = keylen;
    uint8_t hello[WIRE_HEADER_MAX + WIRE_CLIENT_BODY_MAX];
    size_t n = wire_frame_encode(hello, sizeof(hello), &f);
    tern_conn_read(c, hello, n, now);
    uint64_t last = 0;
    tern_ssize w;
    while ((w = tern_conn_write(c, out, sizeof(out), now)) > 0) {
      /* ack what was written, so that cursors move and are written */
      for (size_t off = 0; off < (size_t)w;) {
        wire_frame m;
        tern_ssize n2 = wire_frame_decode(&m, out + off, (size_t)w - off,
                                          1u << 24);
        if (n2 <= 0) {
          break;
        }
        if (m.type == WIRE_MSG) {
          last = m.u.msg.seq;
        }
        off += (size_t)n2;
      }
      if (last) {
        wire_frame a;
        memset(&a, 0, sizeof(a));
        a.type = WIRE_ACK;
        a.u.ack_seq = last;
        uint8_t ack[32];
        size_t an = wire_frame_encode(ack, sizeof(ack), &a);
        tern_conn_read(c, ack, an, now);
      }
    }
    tern_conn_del(c);
  }
  tern_event ev;
  while (tern_hub_next_event(hub, &ev) == 1) {
  }
  tern_hub_del(hub);
  memstore_free(&ms);
  if (outstanding != 0) {
    fprintf(stderr, "load_fuzz: %ld allocations leaked\n", outstanding);
    abort();
  }
  return 0;
}
