/*
 * tern_inbox: publishes from any thread into a driver's hub.  A producer
 * copies the message into one allocation and links it to a queue under a
 * mutex (held for the link only), then wakes the loop; the loop thread
 * takes the whole queue at once and publishes it into the hub.  The same
 * queue carries tern_workers' hand-over of connections.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/layout.h"
#include "posix/posix.h"

typedef struct item {
  struct item *next;
  int kind; /* 0 publish, 1 hand-over */
  /* publish */
  uint8_t *key;
  size_t keylen;
  tern_msg_desc desc;
  /* hand-over */
  int fd;
  uint8_t *hello;
  size_t hello_len;
  /* the copies: key, id, collapse key, payload, content type, attrs */
  tern_attr attrs[TERN_MAX_ATTRS];
} item;

struct tern_inbox {
  tern_driver *d;
  const tern_loop_methods *m;
  void *loop;
  void *waker;
  tern_inbox_done done;
  void *user_data;
  pthread_mutex_t lock;
  item *head, **tail;
};

static void item_free(const tern_inbox *in, item *it) {
  if (it->kind == 1) {
    if (it->fd >= 0) {
      close(it->fd);
    }
    posix_free(in->d, it->hello);
  }
  posix_free(in->d, it);
}

static void drain(void *arg) {
  tern_inbox *in = arg;
  pthread_mutex_lock(&in->lock);
  item *list = in->head;
  in->head = NULL;
  in->tail = &in->head;
  pthread_mutex_unlock(&in->lock);
  tern_hub *hub = tern_driver_get_hub(in->d);
  tern_tstamp now = in->m->now(in->loop);
  while (list) {
    item *it = list;
    list = it->next;
    if (it->kind == 1) {
      (void)posix_driver_adopt_replay(in->d, it->fd, it->hello, it->hello_len);
      it->fd = -1;
    } else {
      int rc = tern_hub_publish(hub, it->key, it->keylen, &it->desc, now, NULL);
      if (in->done) {
        in->done(in->user_data, it->desc.cookie, rc);
      }
    }
    item_free(in, it);
  }
  tern_driver_process(in->d);
}

int tern_inbox_new(tern_inbox **pin, tern_driver *d, tern_inbox_done done,
                   void *user_data) {
  if (!pin || !d) {
    return TERN_ERR_INVALID;
  }
  tern_inbox *in = posix_calloc(d, 1, sizeof(*in));
  if (!in) {
    return TERN_ERR_NOMEM;
  }
  in->d = d;
  in->m = posix_driver_methods(d, &in->loop);
  in->done = done;
  in->user_data = user_data;
  in->tail = &in->head;
  if (pthread_mutex_init(&in->lock, NULL) != 0) {
    posix_free(d, in);
    return TERN_ERR_NOMEM;
  }
  int rc = in->m->waker_add(in->loop, &in->waker, drain, in);
  if (rc != 0) {
    pthread_mutex_destroy(&in->lock);
    posix_free(d, in);
    return rc;
  }
  *pin = in;
  return 0;
}

static void enqueue(tern_inbox *in, item *it) {
  pthread_mutex_lock(&in->lock);
  *in->tail = it;
  in->tail = &it->next;
  pthread_mutex_unlock(&in->lock);
  in->m->wake(in->loop, in->waker);
}

/* Appends |len| bytes at |*p|; returns where they went. */
static uint8_t *put(uint8_t **p, const void *src, size_t len) {
  uint8_t *at = *p;
  if (len) {
    memcpy(at, src, len);
  }
  *p += len;
  return at;
}

int tern_inbox_publish_versioned(tern_inbox *in, const uint8_t *key,
                                 size_t keylen, uint32_t desc_version,
                                 const tern_msg_desc *caller) {
  /* The caller's layout, the fields it lacks zero (their defaults). */
  size_t dlen = layout_msg_desc(desc_version);
  if (!caller || dlen == 0) {
    return TERN_ERR_INVALID;
  }
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  memcpy(&d, caller, dlen);
  const tern_msg_desc *desc = &d;
  if (!in || !key || keylen == 0 ||
      (!desc->payload && desc->payloadlen) || (!desc->id && desc->idlen) ||
      (!desc->collapse_key && desc->collapse_keylen) ||
      (!desc->attrs && desc->nattrs)) {
    return TERN_ERR_INVALID;
  }
  if (keylen > TERN_MAX_SESSION_KEY || desc->idlen > TERN_MAX_ID ||
      desc->collapse_keylen > TERN_MAX_COLLAPSE_KEY ||
      desc->nattrs > TERN_MAX_ATTRS) {
    return TERN_ERR_TOO_LARGE;
  }
  size_t ctlen = 0;
  if (desc->content_type) {
    ctlen = strnlen(desc->content_type, TERN_MAX_CONTENT_TYPE + 1);
    if (ctlen > TERN_MAX_CONTENT_TYPE) {
      return TERN_ERR_TOO_LARGE;
    }
  }
  size_t size = sizeof(item) + keylen + desc->idlen + desc->collapse_keylen +
                desc->payloadlen + (desc->content_type ? ctlen + 1 : 0);
  for (size_t i = 0; i < desc->nattrs; ++i) {
    if (!desc->attrs[i].key || !desc->attrs[i].value) {
      return TERN_ERR_INVALID;
    }
    size += strlen(desc->attrs[i].key) + strlen(desc->attrs[i].value) + 2;
  }
  if (size < desc->payloadlen) {
    return TERN_ERR_TOO_LARGE; /* overflowed */
  }
  item *it = posix_malloc(in->d, size);
  if (!it) {
    return TERN_ERR_NOMEM;
  }
  memset(it, 0, sizeof(*it));
  uint8_t *p = (uint8_t *)(it + 1);
  it->key = put(&p, key, keylen);
  it->keylen = keylen;
  it->desc = *desc;
  it->desc.id = desc->idlen ? put(&p, desc->id, desc->idlen) : NULL;
  it->desc.collapse_key =
      desc->collapse_keylen
          ? put(&p, desc->collapse_key, desc->collapse_keylen)
          : NULL;
  it->desc.payload = put(&p, desc->payload, desc->payloadlen);
  if (desc->content_type) {
    it->desc.content_type = (const char *)put(&p, desc->content_type, ctlen);
    *p++ = 0;
  }
  for (size_t i = 0; i < desc->nattrs; ++i) {
    size_t kl = strlen(desc->attrs[i].key) + 1;
    size_t vl = strlen(desc->attrs[i].value) + 1;
    it->attrs[i].key = (const char *)put(&p, desc->attrs[i].key, kl);
    it->attrs[i].value = (const char *)put(&p, desc->attrs[i].value, vl);
  }
  it->desc.attrs = desc->nattrs ? it->attrs : NULL;
  enqueue(in, it);
  return 0;
}

int posix_inbox_handover(tern_inbox *in, int fd, uint8_t *hello,
                         size_t hello_len) {
  item *it = posix_calloc(in->d, 1, sizeof(*it));
  if (!it) {
    close(fd);
    posix_free(in->d, hello);
    return TERN_ERR_NOMEM;
  }
  it->kind = 1;
  it->fd = fd;
  it->hello = hello;
  it->hello_len = hello_len;
  enqueue(in, it);
  return 0;
}

void tern_inbox_del(tern_inbox *in) {
  if (!in) {
    return;
  }
  in->m->waker_del(in->loop, in->waker);
  while (in->head) {
    item *it = in->head;
    in->head = it->next;
    item_free(in, it);
  }
  pthread_mutex_destroy(&in->lock);
  posix_free(in->d, in);
}
