/*
 * Web hooks (tern.h, "web hooks"): what the files of lib/hooks share, and
 * the few calls lib/deliver makes into them (hub teardown, the hub's
 * expiry, the store's load).
 *
 * A hook owns its waiting entries (a FIFO, indexed by object key when it
 * coalesces) and its outstanding batches (in the order they were formed).
 * A batch owns the entries it took from the queue, its body and the header
 * strings of its current attempt.  A challenge is a batch of no entries.
 */
#ifndef TERN_HOOKS_HOOKS_H
#define TERN_HOOKS_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "base/hashmap.h"
#include "tern.h"

typedef struct hentry hentry;
typedef struct hbatch hbatch;
typedef struct hook hook;

/* One change to tell: key, fields and payload in |data|. */
struct hentry {
  hentry *prev, *next;    /* the hook's queue, or its batch's list         */
  hnode link;             /* the hook's coalescing index while queued      */
  uint64_t serial;        /* queue order, hub-wide; its store key          */
  uint64_t hook_id;       /* loading only: the hook it belongs to          */
  tern_tstamp queued_at;  /* of the oldest change it holds                 */
  uint64_t time;
  uint32_t size;          /* bytes in the body                             */
  uint32_t payloadlen;
  uint16_t fieldslen;     /* bytes of the fields in |data|                 */
  uint8_t keylen, nfields;
  uint8_t indexed;        /* in the coalescing index                       */
  uint8_t stored;         /* a store record holds it                       */
  uint8_t data[];         /* key, fields (length byte, bytes), payload     */
};

/* An outstanding request: a batch of entries or a challenge. */
#define HOOK_NHEADERS 5
struct hbatch {
  hbatch *next;
  int kind;               /* TERN_HOOK_DELIVERY or TERN_HOOK_CHALLENGE     */
  uint64_t delivery;
  uint32_t attempt;       /* attempts made so far                          */
  uint32_t nentries;
  int taken;              /* a request is outstanding                      */
  tern_tstamp due;        /* when not taken: when it may be tried          */
  hentry *entries;        /* circular list                                 */
  uint8_t *body;          /* DELIVERY: the JSON; CHALLENGE: the query      */
  size_t bodylen;
  char challenge[33];
  char ts[24], sig[8 + 64], id[24], att[12];
  tern_hook_header headers[HOOK_NHEADERS];
  size_t nheaders;
};

struct hook {
  uint64_t id;
  tern_hook_opts o;       /* numbers; the pointers are not used           */
  uint8_t *target, *secret, *token; /* owned                              */
  size_t targetlen, secretlen, tokenlen;
  char object[TERN_MAX_HOOK_OBJECT + 1];
  size_t objectlen;
  uint32_t state;         /* TERN_HOOK_STATE_*                             */
  uint32_t failures;
  hentry *queue;          /* circular, oldest first                        */
  uint64_t nqueued, qbytes;
  hmap index;             /* TERN_HOOK_COALESCE: queued entries by key     */
  hbatch *batches, *last; /* outstanding, oldest first                     */
  uint32_t nbatches;
  uint64_t delivered, dropped, attempts;
};

typedef struct hooks {
  hook **v;               /* by id, ascending                              */
  size_t n, cap;
  size_t turn;            /* where the next request search starts          */
  uint64_t next_id;
  uint64_t next_serial;
  hentry **stash;         /* loading: entries before their hooks are known */
  size_t nstash, capstash;
} hooks;

/* ---- hooks.c ------------------------------------------------------------- */
hook *hooks_find(const tern_hub *hub, uint64_t id);
/* hooks_get: the hub's hooks, created on first use; NULL: no memory. */
hooks *hooks_get(tern_hub *hub);
void entry_free(tern_hub *hub, hook *h, hentry *e, int del_record);
void batch_free(tern_hub *hub, hook *h, hbatch *b, int del_records);
void hook_unlink_batch(hook *h, hbatch *b);
/* hook_opts_check: 0 or the error tern_hub_add_hook gives |o|.  hook_new
   builds a hook of checked options, not yet listed (NULL: no memory). */
int hook_opts_check(const tern_hook_opts *o);
hook *hook_new(tern_hub *hub, const tern_hook_opts *o, const char *object,
               size_t objectlen);
/* hook_insert lists |h| (hooks_get and room: hook_reserve_slot). */
int hook_reserve_slot(tern_hub *hub);
void hook_insert(tern_hub *hub, hook *h);
/* hooks_free (tern_hub_del): frees every hook, writes nothing. */
void hooks_free(tern_hub *hub);
/* hooks_count: hooks registered (tern_hub_set_store wants none). */
size_t hooks_count(const tern_hub *hub);
static inline void elist_push(hentry **head, hentry *e) {
  if (!*head) {
    e->prev = e->next = e;
    *head = e;
    return;
  }
  e->next = *head;
  e->prev = (*head)->prev;
  (*head)->prev->next = e;
  (*head)->prev = e;
}
static inline void elist_remove(hentry **head, hentry *e) {
  if (e->next == e) {
    *head = NULL;
  } else {
    e->prev->next = e->next;
    e->next->prev = e->prev;
    if (*head == e) {
      *head = e->next;
    }
  }
  e->prev = e->next = NULL;
}
/* entry_key etc.: the parts of |data|. */
static inline const uint8_t *entry_fields(const hentry *e) {
  return e->data + e->keylen;
}
static inline const uint8_t *entry_payload(const hentry *e) {
  return e->data + e->keylen + e->fieldslen;
}
/* entry_size: its bytes in the body. */
size_t entry_size(const uint8_t *key, size_t keylen, const uint8_t *fields,
                  size_t nfields, uint64_t time, size_t payloadlen);
/* hook_envelope: the bytes of a body around its entries, and between
   them (one comma each). */
size_t hook_envelope(const hook *h, uint64_t delivery);

/* ---- send.c -------------------------------------------------------------- */
/* hooks_expiry: the earliest time a request is due (tern_hub_get_expiry). */
tern_tstamp hooks_expiry(const tern_hub *hub);
/* hook_challenge_new queues a new challenge due at |now|: 0 or
   TERN_ERR_NOMEM (nothing changed). */
int hook_challenge_new(tern_hub *hub, hook *h, tern_tstamp now);
/* hook_write_entry writes |e| as the body has it; returns the end. */
uint8_t *hook_write_entry(uint8_t *o, const hentry *e);

/* ---- store.c ------------------------------------------------------------- */
/* The records, written when a store is attached (no-ops otherwise).
   hstore_reserve_hook: room for the hook record (0 or TERN_ERR_NOMEM). */
int hstore_reserve_hook(tern_hub *hub, const hook *h);
void hstore_hook(tern_hub *hub, const hook *h, int sync);
void hstore_hook_gone(tern_hub *hub, const hook *h);
int hstore_reserve_entry(tern_hub *hub, const hentry *e);
void hstore_entry(tern_hub *hub, const hook *h, hentry *e);
void hstore_entry_gone(tern_hub *hub, const hook *h, const hentry *e);
int hstore_reserve_counters(tern_hub *hub);
void hstore_counters(tern_hub *hub);
/* Loading, from persist.c: hooks_load_record takes a "G", "H" or "Q"
   record (0, TERN_ERR_NOMEM, TERN_ERR_STORE for one that cannot be read);
   hooks_load_finish gives the entries to their hooks; hooks_unload frees
   what a failed load built. */
int hooks_load_record(tern_hub *hub, const uint8_t *key, size_t keylen,
                      const uint8_t *value, size_t valuelen, tern_tstamp now);
int hooks_load_finish(tern_hub *hub, tern_tstamp now);
void hooks_unload(tern_hub *hub);

/* ---- check.c ------------------------------------------------------------- */
/* hook_json_value_ok: 1 when the |len| bytes at |p| are exactly one JSON
   value (whitespace around it allowed), UTF-8, nested at most 64 deep. */
int hook_json_value_ok(const uint8_t *p, size_t len);
/* hook_parse_retry_after reads a Retry-After value: delay-seconds or an
   IMF-fixdate (then less |wall_s|, the wall clock's Unix seconds, and 0
   if past).  0 with *|delay_s| set, or -1. */
int hook_parse_retry_after(const char *p, size_t len, uint64_t wall_s,
                           uint64_t *delay_s);

#endif
