/*
 * Messages: freeing, the hub's pool of small message blocks, and the
 * circular lists messages live on.  Building one (msg_new) is in session.c,
 * next to its only caller, so that it inlines into publish.
 */
#include <string.h>

#include "base/mem.h"
#include "deliver/hub.h"

void msg_free(tern_hub *hub, msg *m) { mem_free(&hub->mem, m); }

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
