/*
 * Web hooks: the hooks of a hub (registration, removal, enabling, the
 * challenge's restart, listing and description) and their queues of
 * entries, coalesced by object key when asked.  send.c forms the batches
 * and settles them; store.c writes the records.
 */
#include <string.h>

#include "base/mem.h"
#include "deliver/hub.h"
#include "hooks/hooks.h"
#include "web/json.h"
#include "web/utf8.h"

#define END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

static size_t layout_hook_opts(uint32_t version) {
  return version == TERN_HOOK_OPTS_V1 ? END(tern_hook_opts, max_queued) : 0;
}

static size_t layout_hook_entry(uint32_t version) {
  return version == TERN_HOOK_ENTRY_V1 ? END(tern_hook_entry, payloadlen)
                                       : 0;
}

static void opts_all(tern_hook_opts *o) {
  memset(o, 0, sizeof(*o));
  o->max_items = 1000;
  o->max_attempts = 10;
  o->max_bytes = 1024 * 1024;
  o->max_delay = 5 * TERN_SECONDS;
  o->retry_base = TERN_SECONDS;
  o->retry_cap = 3600 * TERN_SECONDS;
  o->disable_after = 5;
  o->max_inflight = 1;
  o->max_queued = 100000;
}

void tern_hook_opts_default_versioned(uint32_t version, tern_hook_opts *o) {
  if (!o) {
    return;
  }
  size_t len = layout_hook_opts(version);
  if (len == 0) {
    o->version = 0;
    return;
  }
  tern_hook_opts all;
  opts_all(&all);
  all.version = version;
  memcpy(o, &all, len);
}

/* ---- the set of hooks --------------------------------------------------- */

hooks *hooks_get(tern_hub *hub) {
  if (!hub->hooks) {
    hooks *hs = mem_calloc(&hub->mem, 1, sizeof(*hs));
    if (!hs) {
      return NULL;
    }
    hs->next_id = 1;
    hs->next_serial = 1;
    hub->hooks = hs;
  }
  return hub->hooks;
}

size_t hooks_count(const tern_hub *hub) {
  return hub->hooks ? hub->hooks->n : 0;
}

/* The index of the first hook whose id is >= |id|. */
static size_t lower(const hooks *hs, uint64_t id) {
  size_t lo = 0, hi = hs->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (hs->v[mid]->id < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

hook *hooks_find(const tern_hub *hub, uint64_t id) {
  const hooks *hs = hub ? hub->hooks : NULL;
  if (!hs) {
    return NULL;
  }
  size_t i = lower(hs, id);
  return i < hs->n && hs->v[i]->id == id ? hs->v[i] : NULL;
}

uint64_t tern_hub_next_hook(const tern_hub *hub, uint64_t after) {
  const hooks *hs = hub ? hub->hooks : NULL;
  if (!hs || after == UINT64_MAX) {
    return 0;
  }
  size_t i = lower(hs, after + 1);
  return i < hs->n ? hs->v[i]->id : 0;
}

/* Room for one more hook in the array. */
static int reserve_slot(tern_hub *hub, hooks *hs) {
  if (hs->n < hs->cap) {
    return 0;
  }
  size_t cap = hs->cap ? hs->cap * 2 : 8;
  hook **v = mem_realloc(&hub->mem, hs->v, cap * sizeof(*v));
  if (!v) {
    return TERN_ERR_NOMEM;
  }
  hs->v = v;
  hs->cap = cap;
  return 0;
}

int hook_reserve_slot(tern_hub *hub) {
  hooks *hs = hooks_get(hub);
  return hs ? reserve_slot(hub, hs) : TERN_ERR_NOMEM;
}

void hook_insert(tern_hub *hub, hook *h) {
  hooks *hs = hub->hooks;
  size_t i = lower(hs, h->id);
  memmove(hs->v + i + 1, hs->v + i, (hs->n - i) * sizeof(*hs->v));
  hs->v[i] = h;
  ++hs->n;
}

void entry_free(tern_hub *hub, hook *h, hentry *e, int del_record) {
  if (del_record && e->stored) {
    hstore_entry_gone(hub, h, e);
  }
  mem_free(&hub->mem, e);
}

void hook_unlink_batch(hook *h, hbatch *b) {
  hbatch **pp = &h->batches;
  hbatch *prev = NULL;
  while (*pp && *pp != b) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (*pp) {
    *pp = b->next;
    if (h->last == b) {
      h->last = prev;
    }
    --h->nbatches;
  }
}

void batch_free(tern_hub *hub, hook *h, hbatch *b, int del_records) {
  while (b->entries) {
    hentry *e = b->entries;
    elist_remove(&b->entries, e);
    entry_free(hub, h, e, del_records);
  }
  mem_free(&hub->mem, b->body);
  mem_free(&hub->mem, b);
}

static void hook_free(tern_hub *hub, hook *h, int del_records) {
  while (h->batches) {
    hbatch *b = h->batches;
    h->batches = b->next;
    batch_free(hub, h, b, del_records);
  }
  while (h->queue) {
    hentry *e = h->queue;
    elist_remove(&h->queue, e);
    entry_free(hub, h, e, del_records);
  }
  hmap_free(&h->index, &hub->mem);
  mem_free(&hub->mem, h->target);
  mem_free(&hub->mem, h->secret);
  mem_free(&hub->mem, h->token);
  mem_free(&hub->mem, h);
}

void hooks_free(tern_hub *hub) {
  hooks *hs = hub->hooks;
  if (!hs) {
    return;
  }
  hooks_unload(hub);
  mem_free(&hub->mem, hs->v);
  mem_free(&hub->mem, hs);
  hub->hooks = NULL;
}

void hooks_unload(tern_hub *hub) {
  hooks *hs = hub->hooks;
  if (!hs) {
    return;
  }
  for (size_t i = 0; i < hs->n; ++i) {
    hook_free(hub, hs->v[i], 0);
  }
  hs->n = 0;
  for (size_t i = 0; i < hs->nstash; ++i) {
    mem_free(&hub->mem, hs->stash[i]);
  }
  mem_free(&hub->mem, hs->stash);
  hs->stash = NULL;
  hs->nstash = hs->capstash = 0;
}

/* ---- registration ------------------------------------------------------- */

static int object_ok(const char *s, size_t *len) {
  size_t n = 0;
  for (; s[n]; ++n) {
    if (n >= TERN_MAX_HOOK_OBJECT) {
      return TERN_ERR_TOO_LARGE;
    }
    unsigned char c = (unsigned char)s[n];
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      return TERN_ERR_INVALID;
    }
  }
  *len = n;
  return n ? 0 : TERN_ERR_INVALID;
}

static uint8_t *dup_bytes(tern_hub *hub, const uint8_t *p, size_t len,
                          int *fail) {
  if (!len) {
    return NULL;
  }
  uint8_t *d = mem_malloc(&hub->mem, len);
  if (!d) {
    *fail = 1;
    return NULL;
  }
  memcpy(d, p, len);
  return d;
}

hook *hook_new(tern_hub *hub, const tern_hook_opts *o, const char *object,
               size_t objectlen) {
  hook *h = mem_calloc(&hub->mem, 1, sizeof(*h));
  if (!h) {
    return NULL;
  }
  int fail = 0;
  h->o = *o;
  h->o.target = h->o.secret = h->o.verify_token = NULL;
  h->o.object = NULL;
  h->target = dup_bytes(hub, o->target, o->targetlen, &fail);
  h->secret = dup_bytes(hub, o->secret, o->secretlen, &fail);
  h->token = dup_bytes(hub, o->verify_token, o->verify_tokenlen, &fail);
  h->targetlen = o->targetlen;
  h->secretlen = o->secretlen;
  h->tokenlen = o->verify_tokenlen;
  memcpy(h->object, object, objectlen);
  h->object[objectlen] = '\0';
  h->objectlen = objectlen;
  if (!fail && (o->flags & TERN_HOOK_COALESCE) &&
      hmap_init(&h->index, &hub->mem, 16) != 0) {
    fail = 1;
  }
  if (fail) {
    hook_free(hub, h, 0);
    return NULL;
  }
  if (o->flags & TERN_HOOK_VERIFIED) {
    h->state |= TERN_HOOK_STATE_VERIFIED;
  }
  return h;
}

int hook_opts_check(const tern_hook_opts *o) {
  if (!o->targetlen || !o->target || !o->secretlen || !o->secret ||
      (o->verify_tokenlen && !o->verify_token) ||
      (o->flags & ~(TERN_HOOK_VERIFIED | TERN_HOOK_COALESCE)) ||
      o->max_items < 1 || o->max_items > 1000000 || o->max_bytes < 256 ||
      o->max_bytes > 64u * 1024 * 1024 || o->retry_base < TERN_MILLISECONDS ||
      o->retry_cap < o->retry_base || o->max_inflight < 1 ||
      o->max_inflight > 1024 || o->max_delay >= TERN_TSTAMP_NONE / 2) {
    return TERN_ERR_INVALID;
  }
  if (o->targetlen > TERN_MAX_HOOK_TARGET ||
      o->secretlen > TERN_MAX_HOOK_SECRET ||
      o->verify_tokenlen > TERN_MAX_HOOK_SECRET) {
    return TERN_ERR_TOO_LARGE;
  }
  return 0;
}

int tern_hub_add_hook(tern_hub *hub, const tern_hook_opts *opts,
                      tern_tstamp now, uint64_t *id) {
  if (!hub || !opts || layout_hook_opts(opts->version) == 0) {
    return TERN_ERR_INVALID;
  }
  tern_hook_opts o;
  opts_all(&o);
  memcpy(&o, opts, layout_hook_opts(opts->version));
  int rv = hook_opts_check(&o);
  size_t objectlen = 6;
  const char *object = "object";
  if (rv == 0 && o.object) {
    object = o.object;
    rv = object_ok(o.object, &objectlen);
  }
  if (rv != 0) {
    return rv;
  }
  hooks *hs = hooks_get(hub);
  if (!hs || reserve_slot(hub, hs) != 0) {
    return TERN_ERR_NOMEM;
  }
  hook *h = hook_new(hub, &o, object, objectlen);
  if (!h) {
    return TERN_ERR_NOMEM;
  }
  h->id = hs->next_id;
  if (hstore_reserve_hook(hub, h) != 0 || hstore_reserve_counters(hub) != 0 ||
      (!(h->state & TERN_HOOK_STATE_VERIFIED) &&
       hook_challenge_new(hub, h, now) != 0)) {
    hook_free(hub, h, 0);
    return TERN_ERR_NOMEM;
  }
  ++hs->next_id;
  hook_insert(hub, h);
  hstore_counters(hub);
  hstore_hook(hub, h, 1);
  if (id) {
    *id = h->id;
  }
  return 0;
}

int tern_hub_remove_hook(tern_hub *hub, uint64_t id) {
  if (!hub) {
    return TERN_ERR_INVALID;
  }
  hook *h = hooks_find(hub, id);
  if (!h) {
    return TERN_ERR_NOT_FOUND;
  }
  hooks *hs = hub->hooks;
  size_t i = lower(hs, id);
  memmove(hs->v + i, hs->v + i + 1, (hs->n - i - 1) * sizeof(*hs->v));
  --hs->n;
  hstore_hook_gone(hub, h);
  hook_free(hub, h, 1);
  return 0;
}

int tern_hub_enable_hook(tern_hub *hub, uint64_t id, tern_tstamp now) {
  if (!hub) {
    return TERN_ERR_INVALID;
  }
  hook *h = hooks_find(hub, id);
  if (!h) {
    return TERN_ERR_NOT_FOUND;
  }
  if (!(h->state & TERN_HOOK_STATE_DISABLED)) {
    return 0;
  }
  if (hstore_reserve_hook(hub, h) != 0) {
    return TERN_ERR_NOMEM;
  }
  h->state &= ~TERN_HOOK_STATE_DISABLED;
  h->failures = 0;
  /* Batches that waited out the disabled time go at once. */
  for (hbatch *b = h->batches; b; b = b->next) {
    if (!b->taken && b->due > now) {
      b->due = now;
    }
  }
  hstore_hook(hub, h, 0);
  return 0;
}

int tern_hub_verify_hook(tern_hub *hub, uint64_t id, tern_tstamp now) {
  if (!hub) {
    return TERN_ERR_INVALID;
  }
  hook *h = hooks_find(hub, id);
  if (!h) {
    return TERN_ERR_NOT_FOUND;
  }
  hbatch *old = NULL;
  for (hbatch *b = h->batches; b; b = b->next) {
    if (b->kind == TERN_HOOK_DELIVERY) {
      return TERN_ERR_STATE;
    }
    old = b;
  }
  if (hstore_reserve_hook(hub, h) != 0) {
    return TERN_ERR_NOMEM;
  }
  if (old) {
    hook_unlink_batch(h, old);
  }
  if (hook_challenge_new(hub, h, now) != 0) {
    if (old) { /* put it back as it was */
      old->next = NULL;
      h->batches = h->last = old;
      h->nbatches = 1;
    }
    return TERN_ERR_NOMEM;
  }
  if (old) {
    batch_free(hub, h, old, 0);
  }
  h->state &= ~TERN_HOOK_STATE_VERIFIED;
  hstore_hook(hub, h, 0);
  return 0;
}

int tern_hub_get_hook_info(const tern_hub *hub, uint64_t id,
                           tern_hook_info *info, size_t size) {
  if (!hub || !info) {
    return TERN_ERR_INVALID;
  }
  const hook *h = hooks_find(hub, id);
  if (!h) {
    return TERN_ERR_NOT_FOUND;
  }
  tern_hook_info in;
  memset(&in, 0, sizeof(in));
  in.id = h->id;
  in.state = h->state;
  in.failures = h->failures;
  in.target = h->target;
  in.targetlen = h->targetlen;
  in.queued = h->nqueued;
  in.queued_bytes = h->qbytes;
  in.outstanding = h->nbatches;
  in.delivered = h->delivered;
  in.dropped = h->dropped;
  in.attempts = h->attempts;
  memcpy(info, &in, size < sizeof(in) ? size : sizeof(in));
  if (size > sizeof(in)) {
    memset((uint8_t *)info + sizeof(in), 0, size - sizeof(in));
  }
  return 0;
}

/* ---- entries ------------------------------------------------------------ */

static size_t u64_digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

/* {"id":K,"changed_fields":[F,...],"time":T[,"data":P]} */
size_t entry_size(const uint8_t *key, size_t keylen, const uint8_t *fields,
                  size_t nfields, uint64_t time, size_t payloadlen) {
  size_t n = sizeof("{\"id\":,\"changed_fields\":[],\"time\":}") - 1;
  n += web_json_str_len(key, keylen) + u64_digits(time);
  for (size_t i = 0; i < nfields; ++i) {
    n += web_json_str_len(fields + 1, fields[0]) + (i ? 1 : 0);
    fields += 1 + fields[0];
  }
  if (payloadlen) {
    n += sizeof(",\"data\":") - 1 + payloadlen;
  }
  return n;
}

/* {"object":"O","delivery":"D","entry":[...]} */
size_t hook_envelope(const hook *h, uint64_t delivery) {
  /* UINT64_MAX: the bound for any delivery id, asked on every enqueue */
  return sizeof("{\"object\":\"\",\"delivery\":\"\",\"entry\":[]}") - 1 +
         h->objectlen + (delivery == UINT64_MAX ? 20 : u64_digits(delivery));
}

static uint64_t key_hash(const tern_hub *hub, const uint8_t *key,
                         size_t keylen) {
  return hash_bytes(hub->hash_key, 0x686f6f6b, key, keylen);
}

static hentry *find_queued(const tern_hub *hub, const hook *h,
                           const uint8_t *key, size_t keylen, uint64_t hash) {
  for (hnode *n = hmap_bucket(&h->index, hash); n; n = n->next) {
    hentry *e = (hentry *)(void *)((uint8_t *)n - offsetof(hentry, link));
    if (n->hash == hash && e->keylen == keylen &&
        memcmp(e->data, key, keylen) == 0) {
      return e;
    }
  }
  (void)hub;
  return NULL;
}

/* Whether field |f| (|len| bytes) is among the |n| encoded |fields|. */
static int has_field(const uint8_t *fields, size_t n, const char *f,
                     size_t len) {
  for (size_t i = 0; i < n; ++i) {
    if (fields[0] == len && memcmp(fields + 1, f, len) == 0) {
      return 1;
    }
    fields += 1 + fields[0];
  }
  return 0;
}

/* Builds an entry from |old|'s fields (if any) and |e|'s. */
static int build_entry(tern_hub *hub, hentry **out, const hentry *old,
                       const tern_hook_entry *e) {
  uint8_t fbuf[TERN_MAX_HOOK_FIELDS * (1 + TERN_MAX_HOOK_FIELD)];
  size_t flen = 0, nf = 0;
  if (old) {
    flen = old->fieldslen;
    nf = old->nfields;
    memcpy(fbuf, entry_fields(old), flen);
  }
  for (size_t i = 0; i < e->nfields; ++i) {
    size_t len = strlen(e->fields[i]);
    if (has_field(fbuf, nf, e->fields[i], len)) {
      continue;
    }
    if (nf == TERN_MAX_HOOK_FIELDS) {
      return TERN_ERR_TOO_LARGE;
    }
    fbuf[flen] = (uint8_t)len;
    memcpy(fbuf + flen + 1, e->fields[i], len);
    flen += 1 + len;
    ++nf;
  }
  const uint8_t *payload = e->payload;
  size_t payloadlen = e->payloadlen;
  if (!payloadlen && old) { /* the latest payload wins; none keeps one */
    payload = entry_payload(old);
    payloadlen = old->payloadlen;
  }
  uint64_t time = old && old->time > e->time ? old->time : e->time;
  size_t size = entry_size(e->key, e->keylen, fbuf, nf, time, payloadlen);
  if (size > UINT32_MAX) {
    return TERN_ERR_TOO_LARGE;
  }
  hentry *n = mem_malloc(&hub->mem,
                         sizeof(*n) + e->keylen + flen + payloadlen);
  if (!n) {
    return TERN_ERR_NOMEM;
  }
  memset(n, 0, sizeof(*n));
  n->time = time;
  n->size = (uint32_t)size;
  n->payloadlen = (uint32_t)payloadlen;
  n->fieldslen = (uint16_t)flen;
  n->keylen = (uint8_t)e->keylen;
  n->nfields = (uint8_t)nf;
  memcpy(n->data, e->key, e->keylen);
  memcpy(n->data + e->keylen, fbuf, flen);
  if (payloadlen) {
    memcpy(n->data + e->keylen + flen, payload, payloadlen);
  }
  *out = n;
  return 0;
}

static int entry_check(const tern_hook_entry *e) {
  if (!e->key || !e->keylen || (e->nfields && !e->fields) ||
      (e->payloadlen && !e->payload)) {
    return TERN_ERR_INVALID;
  }
  if (e->keylen > TERN_MAX_HOOK_KEY || e->nfields > TERN_MAX_HOOK_FIELDS) {
    return TERN_ERR_TOO_LARGE;
  }
  if (!web_utf8_valid(e->key, e->keylen)) {
    return TERN_ERR_INVALID;
  }
  for (size_t i = 0; i < e->nfields; ++i) {
    if (!e->fields[i]) {
      return TERN_ERR_INVALID;
    }
    size_t len = strnlen(e->fields[i], TERN_MAX_HOOK_FIELD + 1);
    if (len > TERN_MAX_HOOK_FIELD) {
      return TERN_ERR_TOO_LARGE;
    }
    if (!len || !web_utf8_valid((const uint8_t *)e->fields[i], len)) {
      return TERN_ERR_INVALID;
    }
  }
  if (e->payloadlen && !hook_json_value_ok(e->payload, e->payloadlen)) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

int tern_hub_hook_enqueue_versioned(tern_hub *hub, uint64_t id,
                                    uint32_t version,
                                    const tern_hook_entry *entry,
                                    tern_tstamp now) {
  size_t len = layout_hook_entry(version);
  if (!hub || !entry || len == 0) {
    return TERN_ERR_INVALID;
  }
  tern_hook_entry e;
  memset(&e, 0, sizeof(e));
  memcpy(&e, entry, len);
  int rv = entry_check(&e);
  if (rv != 0) {
    return rv;
  }
  hook *h = hooks_find(hub, id);
  if (!h) {
    return TERN_ERR_NOT_FOUND;
  }
  hentry *old = NULL;
  uint64_t hash = 0;
  if (h->o.flags & TERN_HOOK_COALESCE) {
    hash = key_hash(hub, e.key, e.keylen);
    old = find_queued(hub, h, e.key, e.keylen, hash);
  }
  if (!old && h->o.max_queued && h->nqueued >= h->o.max_queued) {
    return TERN_ERR_FULL;
  }
  hentry *n;
  rv = build_entry(hub, &n, old, &e);
  if (rv != 0) {
    return rv;
  }
  /* A batch of it alone must fit max_bytes (the delivery id is at most
     20 digits). */
  if (n->size + hook_envelope(h, UINT64_MAX) > h->o.max_bytes) {
    mem_free(&hub->mem, n);
    return TERN_ERR_TOO_LARGE;
  }
  if (hstore_reserve_entry(hub, n) != 0) {
    mem_free(&hub->mem, n);
    return TERN_ERR_NOMEM;
  }
  if (old) {
    /* It takes the old one's place, serial and age: a busy object is
       told no later than its first change asked. */
    n->serial = old->serial;
    n->queued_at = old->queued_at;
    n->stored = old->stored;
    n->link.hash = hash;
    hentry *at = old->next == old ? NULL : old->next;
    int head = h->queue == old;
    elist_remove(&h->queue, old);
    if (!at) {
      elist_push(&h->queue, n);
    } else {
      /* insert before |at| */
      n->next = at;
      n->prev = at->prev;
      at->prev->next = n;
      at->prev = n;
      if (head) {
        h->queue = n;
      }
    }
    hmap_remove(&h->index, &old->link);
    hmap_insert(&h->index, &hub->mem, &n->link);
    n->indexed = 1;
    h->qbytes = h->qbytes - old->size + n->size;
    mem_free(&hub->mem, old);
  } else {
    n->serial = hub->hooks->next_serial++;
    n->queued_at = now;
    elist_push(&h->queue, n);
    if (h->o.flags & TERN_HOOK_COALESCE) {
      n->link.hash = hash;
      hmap_insert(&h->index, &hub->mem, &n->link);
      n->indexed = 1;
    }
    ++h->nqueued;
    h->qbytes += n->size;
  }
  hstore_entry(hub, h, n);
  return 0;
}
