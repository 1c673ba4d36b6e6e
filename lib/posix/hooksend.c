/*
 * tern_hook_sender: the web hooks of a driver's hub made with a
 * tern_http_client.  It takes due requests inside the driver's process()
 * (a turn hook, see posix.h), so the driver's timer, armed at the hub's
 * expiry, always finds them taken; each answer is reported to the hub and
 * the driver runs again, for the events and the next requests.
 */
#include <string.h>

#include "posix/posix.h"

typedef struct inflight inflight;
struct inflight {
  tern_hook_sender *s;
  inflight *prev, *next;
  uint64_t hook, delivery;
};

struct tern_hook_sender {
  tern_driver *d;
  tern_hub *hub;
  tern_http_client *client;
  inflight *list;
  tern_hook_sender_stats st;
};

static void unlink_inflight(tern_hook_sender *s, inflight *f) {
  if (f->prev) {
    f->prev->next = f->next;
  } else {
    s->list = f->next;
  }
  if (f->next) {
    f->next->prev = f->prev;
  }
  s->st.outstanding--;
}

static void on_answer(void *arg, const tern_http_client_answer *a) {
  inflight *f = arg;
  tern_hook_sender *s = f->s;
  unlink_inflight(s, f);
  void *loop;
  const tern_loop_methods *m = posix_driver_methods(s->d, &loop);
  tern_tstamp now = m->now(loop);
  int status = TERN_HOOK_NO_ANSWER;
  if (a->error == 0) {
    status = a->status;
    s->st.answered++;
  } else {
    s->st.no_answer++;
  }
  /* NOT_FOUND: the hook was removed meanwhile; nothing to do. */
  (void)tern_hub_hook_done(s->hub, f->hook, f->delivery, status,
                           a->retry_after, a->retry_afterlen, a->body,
                           a->bodylen, now);
  posix_free(s->d, f);
  tern_driver_process(s->d);
}

static void turn(void *arg, tern_tstamp now) {
  tern_hook_sender *s = arg;
  tern_hook_request req;
  while (tern_hub_next_hook_request(s->hub, now, &req) == 1) {
    s->st.requests++;
    inflight *f = posix_malloc(s->d, sizeof(*f));
    int rc = TERN_ERR_NOMEM;
    if (f) {
      memset(f, 0, sizeof(*f));
      f->s = s;
      f->hook = req.hook;
      f->delivery = req.delivery;
      tern_http_client_request q;
      memset(&q, 0, sizeof(q));
      q.method = req.method;
      q.url = (const char *)req.target;
      q.urllen = req.targetlen;
      q.query = req.query;
      q.querylen = req.querylen;
      q.headers = req.headers;
      q.nheaders = req.nheaders;
      q.body = req.body;
      q.bodylen = req.bodylen;
      rc = tern_http_client_send(s->client, &q, on_answer, f);
    }
    if (rc == 0) {
      f->next = s->list;
      if (s->list) {
        s->list->prev = f;
      }
      s->list = f;
      s->st.outstanding++;
      continue;
    }
    posix_free(s->d, f);
    /* Refused (no URL the client can reach, or no room): the attempt is
       lost as if the endpoint did not answer, and retried with backoff. */
    s->st.refused++;
    (void)tern_hub_hook_done(s->hub, req.hook, req.delivery,
                             TERN_HOOK_NO_ANSWER, NULL, 0, NULL, 0, now);
  }
}

int tern_hook_sender_new(tern_hook_sender **ps, tern_driver *d,
                         const tern_http_client_options *o) {
  if (!ps || !d) {
    return TERN_ERR_INVALID;
  }
  tern_hook_sender *s = posix_calloc(d, 1, sizeof(*s));
  if (!s) {
    return TERN_ERR_NOMEM;
  }
  s->d = d;
  s->hub = tern_driver_get_hub(d);
  int rc = tern_http_client_new(&s->client, d, o);
  if (rc == 0) {
    rc = posix_driver_set_turn_hook(d, turn, s);
    if (rc != 0) {
      tern_http_client_del(s->client);
    }
  }
  if (rc != 0) {
    posix_free(d, s);
    return rc;
  }
  *ps = s;
  /* Hooks restored from a store may be due already. */
  tern_driver_process(d);
  return 0;
}

void tern_hook_sender_get_stats(const tern_hook_sender *s,
                                tern_hook_sender_stats *st, size_t size) {
  if (!s || !st) {
    return;
  }
  if (size > sizeof(s->st)) {
    memset((char *)st + sizeof(s->st), 0, size - sizeof(s->st));
    size = sizeof(s->st);
  }
  memcpy(st, &s->st, size);
}

void tern_hook_sender_del(tern_hook_sender *s) {
  if (!s) {
    return;
  }
  (void)posix_driver_set_turn_hook(s->d, NULL, NULL);
  tern_http_client_del(s->client);
  while (s->list) {
    inflight *f = s->list;
    unlink_inflight(s, f);
    posix_free(s->d, f);
  }
  posix_free(s->d, s);
}
