/*
 * Web hooks in the hub's store (see tern_hub_set_store(3), "Records and
 * keys"):
 *   "G"                       counters: next hook id (8), next serial (8)
 *   "H" 8-byte hook id        a hook: its options, state and failures, its
 *                             target, secret, verify token and object
 *   "Q" hook id, serial       an entry waiting or in a batch: see put_entry
 * Batches are not stored: after a restart their entries wait again and
 * are sent in new batches (at least once; a receiver dedups by entry).
 * A hook found unverified gets a new challenge.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "deliver/hub.h"
#include "deliver/persist.h"
#include "hooks/hooks.h"

#define HOOK_FIXED 73u
#define ENTRY_FIXED 24u
#define HOOK_FORMAT 1

static size_t hook_value_size(const hook *h) {
  return HOOK_FIXED + h->targetlen + h->secretlen + h->tokenlen +
         h->objectlen;
}

static size_t entry_value_size(const hentry *e) {
  return ENTRY_FIXED + e->keylen + e->fieldslen + e->payloadlen;
}

int hstore_reserve_hook(tern_hub *hub, const hook *h) {
  return hub->persist ? prec_reserve(hub, 1, 9 + hook_value_size(h)) : 0;
}

int hstore_reserve_counters(tern_hub *hub) {
  return hub->persist ? prec_reserve(hub, 1, 1 + 16) : 0;
}

int hstore_reserve_entry(tern_hub *hub, const hentry *e) {
  return hub->persist ? prec_reserve(hub, 1, 17 + entry_value_size(e)) : 0;
}

void hstore_counters(tern_hub *hub) {
  if (!hub->persist) {
    return;
  }
  uint8_t *v = prec_set(hub, 'G', NULL, 0, 16, NULL);
  put_be64(v, hub->hooks->next_id);
  put_be64(v + 8, hub->hooks->next_serial);
  persist_sync(hub);
  prec_maybe_flush(hub);
}

void hstore_hook(tern_hub *hub, const hook *h, int sync) {
  if (!hub->persist) {
    return;
  }
  uint8_t id[8];
  put_be64(id, h->id);
  uint8_t *v = prec_set(hub, 'H', id, 8, hook_value_size(h), NULL);
  v[0] = HOOK_FORMAT;
  put_be32(v + 1, h->o.flags);
  v[5] = (uint8_t)h->state;
  put_be32(v + 6, h->failures);
  put_be32(v + 10, h->o.max_items);
  put_be32(v + 14, h->o.max_attempts);
  put_be64(v + 18, h->o.max_bytes);
  put_be64(v + 26, h->o.max_delay);
  put_be64(v + 34, h->o.retry_base);
  put_be64(v + 42, h->o.retry_cap);
  put_be32(v + 50, h->o.disable_after);
  put_be32(v + 54, h->o.max_inflight);
  put_be64(v + 58, h->o.max_queued);
  v[66] = (uint8_t)(h->targetlen >> 8);
  v[67] = (uint8_t)h->targetlen;
  v[68] = (uint8_t)(h->secretlen >> 8);
  v[69] = (uint8_t)h->secretlen;
  v[70] = (uint8_t)(h->tokenlen >> 8);
  v[71] = (uint8_t)h->tokenlen;
  v[72] = (uint8_t)h->objectlen;
  uint8_t *o = v + HOOK_FIXED;
  memcpy(o, h->target, h->targetlen);
  o += h->targetlen;
  memcpy(o, h->secret, h->secretlen);
  o += h->secretlen;
  if (h->tokenlen) {
    memcpy(o, h->token, h->tokenlen);
  }
  o += h->tokenlen;
  memcpy(o, h->object, h->objectlen);
  if (sync) {
    persist_sync(hub);
  }
  prec_maybe_flush(hub);
}

void hstore_hook_gone(tern_hub *hub, const hook *h) {
  if (!hub->persist) {
    return;
  }
  uint8_t id[8];
  put_be64(id, h->id);
  prec_del(hub, 'H', id, 8);
}

static void entry_key(uint8_t k[16], uint64_t hook_id, uint64_t serial) {
  put_be64(k, hook_id);
  put_be64(k + 8, serial);
}

/* queued_at on the wall clock (8), time (8), key length (1), fields (1),
   fields' bytes (2), payload length (4), then key, fields, payload. */
void hstore_entry(tern_hub *hub, const hook *h, hentry *e) {
  if (!hub->persist) {
    return;
  }
  uint8_t k[16];
  entry_key(k, h->id, e->serial);
  uint8_t *v = prec_set(hub, 'Q', k, 16, entry_value_size(e), NULL);
  put_be64(v, persist_to_wall(hub, e->queued_at));
  put_be64(v + 8, e->time);
  v[16] = e->keylen;
  v[17] = e->nfields;
  v[18] = (uint8_t)(e->fieldslen >> 8);
  v[19] = (uint8_t)e->fieldslen;
  put_be32(v + 20, e->payloadlen);
  memcpy(v + ENTRY_FIXED, e->data, e->keylen + e->fieldslen + e->payloadlen);
  e->stored = 1;
  prec_maybe_flush(hub);
}

void hstore_entry_gone(tern_hub *hub, const hook *h, const hentry *e) {
  if (!hub->persist) {
    return;
  }
  uint8_t k[16];
  entry_key(k, h->id, e->serial);
  prec_del(hub, 'Q', k, 16);
}

/* ---- loading ------------------------------------------------------------ */

static int load_hook(tern_hub *hub, uint64_t id, const uint8_t *v,
                     size_t len) {
  if (id == 0 || len < HOOK_FIXED || v[0] != HOOK_FORMAT) {
    return TERN_ERR_STORE;
  }
  tern_hook_opts o;
  tern_hook_opts_default(&o);
  o.flags = get_be32(v + 1);
  o.max_items = get_be32(v + 10);
  o.max_attempts = get_be32(v + 14);
  o.max_bytes = get_be64(v + 18);
  o.max_delay = get_be64(v + 26);
  o.retry_base = get_be64(v + 34);
  o.retry_cap = get_be64(v + 42);
  o.disable_after = get_be32(v + 50);
  o.max_inflight = get_be32(v + 54);
  o.max_queued = get_be64(v + 58);
  o.targetlen = (size_t)v[66] << 8 | v[67];
  o.secretlen = (size_t)v[68] << 8 | v[69];
  o.verify_tokenlen = (size_t)v[70] << 8 | v[71];
  size_t objectlen = v[72];
  if (len != HOOK_FIXED + o.targetlen + o.secretlen + o.verify_tokenlen +
                 objectlen ||
      objectlen == 0 || objectlen > TERN_MAX_HOOK_OBJECT) {
    return TERN_ERR_STORE;
  }
  o.target = v + HOOK_FIXED;
  o.secret = o.target + o.targetlen;
  o.verify_token = o.secret + o.secretlen;
  const char *object = (const char *)(o.verify_token + o.verify_tokenlen);
  if (hook_opts_check(&o) != 0 || hooks_find(hub, id)) {
    return TERN_ERR_STORE;
  }
  for (size_t i = 0; i < objectlen; ++i) {
    unsigned char c = (unsigned char)object[i];
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      return TERN_ERR_STORE;
    }
  }
  if (hook_reserve_slot(hub) != 0) {
    return TERN_ERR_NOMEM;
  }
  hook *h = hook_new(hub, &o, object, objectlen);
  if (!h) {
    return TERN_ERR_NOMEM;
  }
  h->id = id;
  h->state = v[5] & (TERN_HOOK_STATE_VERIFIED | TERN_HOOK_STATE_DISABLED);
  h->failures = get_be32(v + 6);
  hook_insert(hub, h);
  if (id >= hub->hooks->next_id) {
    hub->hooks->next_id = id + 1;
  }
  return 0;
}

static int load_entry(tern_hub *hub, uint64_t hook_id, uint64_t serial,
                      const uint8_t *v, size_t len) {
  if (len < ENTRY_FIXED) {
    return TERN_ERR_STORE;
  }
  size_t keylen = v[16], nfields = v[17];
  size_t fieldslen = (size_t)v[18] << 8 | v[19];
  size_t payloadlen = get_be32(v + 20);
  if (keylen == 0 || nfields > TERN_MAX_HOOK_FIELDS ||
      len != ENTRY_FIXED + keylen + fieldslen + payloadlen) {
    return TERN_ERR_STORE;
  }
  /* the fields must tile their bytes exactly */
  const uint8_t *f = v + ENTRY_FIXED + keylen;
  size_t at = 0;
  for (size_t i = 0; i < nfields; ++i) {
    if (at >= fieldslen || f[at] == 0 || f[at] > TERN_MAX_HOOK_FIELD) {
      return TERN_ERR_STORE;
    }
    at += 1u + f[at];
  }
  if (at != fieldslen) {
    return TERN_ERR_STORE;
  }
  hooks *hs = hooks_get(hub);
  if (!hs) {
    return TERN_ERR_NOMEM;
  }
  if (hs->nstash == hs->capstash) {
    size_t cap = hs->capstash ? hs->capstash * 2 : 64;
    hentry **s = mem_realloc(&hub->mem, hs->stash, cap * sizeof(*s));
    if (!s) {
      return TERN_ERR_NOMEM;
    }
    hs->stash = s;
    hs->capstash = cap;
  }
  hentry *e = mem_malloc(&hub->mem, sizeof(*e) + len - ENTRY_FIXED);
  if (!e) {
    return TERN_ERR_NOMEM;
  }
  memset(e, 0, sizeof(*e));
  e->serial = serial;
  e->hook_id = hook_id;
  e->queued_at = persist_from_wall(hub, get_be64(v));
  e->time = get_be64(v + 8);
  e->keylen = (uint8_t)keylen;
  e->nfields = (uint8_t)nfields;
  e->fieldslen = (uint16_t)fieldslen;
  e->payloadlen = (uint32_t)payloadlen;
  e->stored = 1;
  memcpy(e->data, v + ENTRY_FIXED, len - ENTRY_FIXED);
  size_t size = entry_size(e->data, keylen, entry_fields(e), nfields,
                           e->time, payloadlen);
  e->size = (uint32_t)size;
  hs->stash[hs->nstash++] = e;
  if (serial >= hs->next_serial) {
    hs->next_serial = serial + 1;
  }
  return 0;
}

int hooks_load_record(tern_hub *hub, const uint8_t *key, size_t keylen,
                      const uint8_t *value, size_t valuelen,
                      tern_tstamp now) {
  (void)now;
  switch (key[0]) {
  case 'G': {
    if (keylen != 1 || valuelen != 16) {
      return TERN_ERR_STORE;
    }
    hooks *hs = hooks_get(hub);
    if (!hs) {
      return TERN_ERR_NOMEM;
    }
    if (get_be64(value) > hs->next_id) {
      hs->next_id = get_be64(value);
    }
    if (get_be64(value + 8) > hs->next_serial) {
      hs->next_serial = get_be64(value + 8);
    }
    return 0;
  }
  case 'H':
    return keylen == 9 ? load_hook(hub, get_be64(key + 1), value, valuelen)
                       : TERN_ERR_STORE;
  case 'Q':
    return keylen == 17 ? load_entry(hub, get_be64(key + 1),
                                     get_be64(key + 9), value, valuelen)
                        : TERN_ERR_STORE;
  default:
    return 0;
  }
}

static int by_hook_serial(const void *a, const void *b) {
  const hentry *x = *(const hentry *const *)a, *y = *(const hentry *const *)b;
  if (x->hook_id != y->hook_id) {
    return x->hook_id < y->hook_id ? -1 : 1;
  }
  return x->serial < y->serial ? -1 : x->serial > y->serial;
}

int hooks_load_finish(tern_hub *hub, tern_tstamp now) {
  hooks *hs = hub->hooks;
  if (!hs) {
    return 0;
  }
  /* Challenges first: the only step that can fail for memory. */
  for (size_t i = 0; i < hs->n; ++i) {
    hook *h = hs->v[i];
    if (!(h->state & TERN_HOOK_STATE_VERIFIED) && !h->batches &&
        hook_challenge_new(hub, h, now) != 0) {
      return TERN_ERR_NOMEM;
    }
  }
  if (hs->nstash) {
    qsort(hs->stash, hs->nstash, sizeof(*hs->stash), by_hook_serial);
  }
  for (size_t i = 0; i < hs->nstash; ++i) {
    hentry *e = hs->stash[i];
    hook *h = hooks_find(hub, e->hook_id);
    if (!h) {
      /* its hook was removed and a crash came before the DEL */
      uint8_t k[16];
      put_be64(k, e->hook_id);
      put_be64(k + 8, e->serial);
      prec_del(hub, 'Q', k, 16);
      mem_free(&hub->mem, e);
      continue;
    }
    elist_push(&h->queue, e);
    if (h->o.flags & TERN_HOOK_COALESCE) {
      /* coalescing goes on with the newest entry of each key */
      e->link.hash = hash_bytes(hub->hash_key, 0x686f6f6b, e->data,
                                e->keylen);
      hmap_insert(&h->index, &hub->mem, &e->link);
      e->indexed = 1;
    }
    ++h->nqueued;
    h->qbytes += e->size;
  }
  mem_free(&hub->mem, hs->stash);
  hs->stash = NULL;
  hs->nstash = hs->capstash = 0;
  return 0;
}
