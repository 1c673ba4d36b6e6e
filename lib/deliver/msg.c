/*
 * Messages: allocating and freeing, the hub's pool of message slabs (its
 * rules are in hub.h), and the circular lists messages live on.  Building
 * one (msg_new) is in session.c, next to its only caller, so that it
 * inlines into publish.
 */
#include <string.h>

#include "base/mem.h"
#include "deliver/hub.h"

/* Four classes per doubling; a message with a 64-byte payload and a
   generated id is about 210 bytes. */
const uint16_t msg_class_size[MSG_CLASSES] = {128, 160, 192, 224, 256,
                                              320, 384, 448, 512, 640,
                                              768, 896, 1024};
const uint8_t msg_class_of[MSG_POOL_MAX_BLOCK / 32] = {
    0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8,
    9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12};

static void avail_push(tern_hub *hub, slab *s) {
  slab **head = &hub->pool_avail[s->cls];
  s->prev = NULL;
  s->next = *head == &hub->pool_none ? NULL : *head;
  if (s->next) {
    s->next->prev = s;
  }
  *head = s;
}

static void avail_remove(tern_hub *hub, slab *s) {
  if (s->prev) {
    s->prev->next = s->next;
  } else {
    hub->pool_avail[s->cls] = s->next ? s->next : &hub->pool_none;
  }
  if (s->next) {
    s->next->prev = s->prev;
  }
}

void msg_pool_init(tern_hub *hub) {
  for (int c = 0; c < MSG_CLASSES; ++c) {
    hub->pool_avail[c] = &hub->pool_none;
  }
  hub->pool_limit = hub->set.max_pool_bytes ? MSG_POOL_MAX_BLOCK : 0;
}

/* cut hands out the next block of |s| never handed out before. */
static msg *cut(slab *s) {
  msg *m = (msg *)(void *)((uint8_t *)s + s->fresh);
  m->slab_off = s->fresh;
  s->fresh = (uint16_t)(s->fresh + msg_class_size[s->cls]);
  ++s->used;
  return m;
}

msg *msg_alloc_slow(tern_hub *hub, size_t size) {
  if (size > hub->pool_limit) {
    slab *s = mem_malloc(&hub->mem, sizeof(slab) + size);
    if (!s) {
      return NULL;
    }
    s->cls = MSG_CLASS_SOLO;
    s->used = 1;
    s->free = NULL;
    msg *m = (msg *)(void *)(s + 1);
    m->slab_off = sizeof(slab);
    return m;
  }
  uint8_t cls = msg_class_of[(size - 1) >> 5];
  size_t last = MSG_SLAB_BYTES - msg_class_size[cls];
  slab *s;
  while ((s = hub->pool_avail[cls]) != &hub->pool_none) {
    if (s->free) {
      return msg_alloc(hub, size);
    }
    if (s->fresh <= last) {
      return cut(s);
    }
    avail_remove(hub, s); /* full (only the head can be) */
    s->used -= SLAB_UNLISTED;
  }
  /* No slab of this class has a free block: a kept one of this class
     (its blocks are cut), of another class, or a new one. */
  s = hub->pool_kept[cls];
  if (s) {
    hub->pool_kept[cls] = s->next;
    hub->pool_kept_bytes -= MSG_SLAB_BYTES;
    avail_push(hub, s);
    return msg_alloc(hub, size);
  }
  for (int c = 0; c < MSG_CLASSES && !s; ++c) {
    s = hub->pool_kept[c];
  }
  if (s) {
    hub->pool_kept[s->cls] = s->next;
    hub->pool_kept_bytes -= MSG_SLAB_BYTES;
  } else {
    s = mem_malloc(&hub->mem, MSG_SLAB_BYTES);
    if (!s) {
      return NULL;
    }
    ++hub->pool_slabs;
  }
  s->cls = cls;
  s->used = 0;
  s->free = NULL;
  s->fresh = sizeof(slab);
  avail_push(hub, s);
  return cut(s);
}

void msg_slab_settle(tern_hub *hub, slab *s) {
  if (s->cls == MSG_CLASS_SOLO) {
    mem_free(&hub->mem, s);
    return;
  }
  if (s->used < 0) { /* it was full: it has a free block now */
    s->used += SLAB_UNLISTED;
    avail_push(hub, s);
  }
  if (s->used != 0) {
    return;
  }
  slab **spare = &hub->pool_spare[s->cls];
  if (!*spare) {
    *spare = s; /* stays on the avail list, and never empties again */
    s->used = 1;
    return;
  }
  avail_remove(hub, s);
  if (hub->pool_kept_bytes + MSG_SLAB_BYTES <= hub->set.max_pool_bytes) {
    s->next = hub->pool_kept[s->cls];
    hub->pool_kept[s->cls] = s;
    hub->pool_kept_bytes += MSG_SLAB_BYTES;
    return;
  }
  mem_free(&hub->mem, s);
  --hub->pool_slabs;
}

void msg_pool_free(tern_hub *hub) {
  /* Every message is gone, so every slab is empty (or the spare): on an
     avail list or a kept list. */
  for (int c = 0; c < MSG_CLASSES; ++c) {
    slab *s = hub->pool_avail[c];
    while (s && s != &hub->pool_none) {
      slab *next = s->next;
      mem_free(&hub->mem, s);
      s = next;
    }
    hub->pool_avail[c] = &hub->pool_none;
    hub->pool_spare[c] = NULL;
    while (hub->pool_kept[c]) {
      s = hub->pool_kept[c];
      hub->pool_kept[c] = s->next;
      mem_free(&hub->mem, s);
    }
  }
  hub->pool_kept_bytes = 0;
  hub->pool_slabs = 0;
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
