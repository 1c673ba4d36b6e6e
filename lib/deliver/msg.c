/*
 * Messages: building the stored form (the wire tail, encoded once at
 * publish), reference counting, the hub's pool of small message blocks, and
 * the circular lists messages live on.
 */
#include <string.h>

#include "base/mem.h"
#include "deliver/hub.h"

static void fill_wire(wire_msg *w, const tern_msg_desc *d, const uint8_t *id,
                      size_t idlen) {
  /* Field by field: wire_msg holds room for every attribute, and clearing
     it all is a measurable share of a publish. */
  w->seq = 0;
  w->ttl_ms = 0;
  w->content_type = NULL;
  w->content_typelen = 0;
  w->priority = d->priority;
  w->id = id;
  w->idlen = idlen;
  w->collapse_key = d->collapse_key;
  w->collapse_keylen = d->collapse_key ? d->collapse_keylen : 0;
  if (d->content_type) {
    w->content_type = (const uint8_t *)d->content_type;
    w->content_typelen = strlen(d->content_type);
  }
  w->nattrs = d->nattrs;
  for (size_t i = 0; i < d->nattrs; ++i) {
    w->attrs[i].key = (const uint8_t *)d->attrs[i].key;
    w->attrs[i].keylen = strlen(d->attrs[i].key);
    w->attrs[i].value = (const uint8_t *)d->attrs[i].value;
    w->attrs[i].valuelen = strlen(d->attrs[i].value);
  }
  w->payload = d->payload;
  w->payloadlen = d->payloadlen;
}


int msg_new(tern_hub *hub, msg **pm, const tern_msg_desc *d,
            const uint8_t *id, size_t idlen, tern_tstamp expiry) {
  wire_msg w;
  fill_wire(&w, d, id, idlen);
  size_t taillen = wire_msg_tail_size(&w);
  size_t size = sizeof(msg) + taillen;
  msg *m;
  uint8_t pooled = 0;
  if (size <= MSG_POOL_BLOCK && hub->pool) {
    m = hub->pool;
    hub->pool = *(void **)hub->pool;
    --hub->pool_len;
    pooled = 1;
  } else {
    if (size <= MSG_POOL_BLOCK) {
      size = MSG_POOL_BLOCK;
      pooled = 1;
    }
    m = mem_malloc(&hub->mem, size);
    if (!m) {
      return TERN_ERR_NOMEM;
    }
  }
  memset(m, 0, sizeof(*m));
  m->pooled = pooled;
  m->taillen = (uint32_t)taillen;
  wire_msg_tail_encode(m->tail, &w);
  m->payloadlen = (uint32_t)d->payloadlen;
  m->priority = (uint8_t)d->priority;
  m->flags = (d->flags & TERN_MSG_TRACE) ? MSG_TRACE : 0;
  m->refs = 1;
  m->idlen = (uint8_t)idlen;
  /* The id follows the flags byte and its own length varint. */
  m->id_off = (uint8_t)(1 + wire_varint_len(idlen));
  if (w.collapse_keylen) {
    m->cklen = (uint8_t)w.collapse_keylen;
    m->ck_off = (uint8_t)(m->id_off + idlen + wire_varint_len(m->cklen));
  }
  m->expiry = expiry;
  *pm = m;
  return 0;
}


void msg_free(tern_hub *hub, msg *m) {
  if (m->pooled && hub->pool_len < MSG_POOL_MAX) {
    *(void **)m = hub->pool;
    hub->pool = m;
    ++hub->pool_len;
    return;
  }
  mem_free(&hub->mem, m);
}

void msg_pool_free(tern_hub *hub) {
  while (hub->pool) {
    void *next = *(void **)hub->pool;
    mem_free(&hub->mem, hub->pool);
    hub->pool = next;
  }
  hub->pool_len = 0;
}



void mlist_insert_sorted(msg **head, msg *m) {
  msg *h = *head;
  if (!h || h->prev->serial < m->serial) {
    mlist_push(head, m);
    return;
  }
  /* Returning messages are old, so the spot is near the front. */
  msg *at = h;
  while (at->serial < m->serial) {
    at = at->next;
  }
  m->next = at;
  m->prev = at->prev;
  at->prev->next = m;
  at->prev = m;
  if (at == h) {
    *head = m;
  }
}
