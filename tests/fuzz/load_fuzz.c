/*
 * Fuzz target for the hub's loader (tern_hub_set_store): whatever records a
 * store hands back — damaged, forged, contradictory — the hub either loads
 * or refuses with an error, never crashes or leaks, and what it loaded can
 * be delivered.  Input: records as [keylen][key][valuelen (2)][value]...;
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
  /* Deliver whatever was loaded, to every session found in the records. */
  uint8_t out[4096];
  for (size_t k = 0; k < ms.nkv; ++k) {
    const memrec *mr = &ms.kv[k];
    if (mr->keylen < 2 || mr->key[0] != 'S' ||
        mr->keylen - 1 > TERN_MAX_SESSION_KEY) {
      continue;
    }
    if (!tern_hub_find_session(hub, mr->key + 1, mr->keylen - 1)) {
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
    f.u.hello.key = mr->key + 1;
    f.u.hello.keylen = mr->keylen - 1;
    uint8_t hello[WIRE_HEADER_MAX + WIRE_CLIENT_BODY_MAX];
    size_t n = wire_frame_encode(hello, sizeof(hello), &f);
    tern_conn_read(c, hello, n, now);
    while (tern_conn_write(c, out, sizeof(out), now) > 0) {
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
