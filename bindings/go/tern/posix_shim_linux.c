/*
 * Go binding helpers for libtern-posix (see posix_shim.h).  Built on Linux
 * only, as libtern-posix is.
 */
#include "posix_shim.h"

#include <string.h>

/* Exported by workers_linux.go; |handle| is the workers' cgo.Handle. */
extern int goTernAuthorize(uintptr_t handle, uint32_t worker, uint8_t *key,
                           size_t keylen, uint8_t *token, size_t tokenlen);
extern void goTernDone(uintptr_t handle, uint32_t worker, uint64_t cookie,
                       int rc);

/* Answers each HELLO with the Go authorizer's verdict, on the worker that
   owns the session. */
static void on_event(void *user_data, uint32_t worker, tern_driver *d,
                     const tern_event *ev) {
  (void)d;
  if (ev->type != TERN_EV_CONN_HELLO) {
    return;
  }
  tern_tstamp now = tern_posix_now();
  if (goTernAuthorize((uintptr_t)user_data, worker,
                      (uint8_t *)ev->session_key, ev->session_keylen,
                      (uint8_t *)ev->aux, ev->auxlen)) {
    tern_conn_accept(ev->conn, now); /* LIMIT closes it, with its event */
  } else {
    tern_conn_goaway(ev->conn, TERN_GOAWAY_REJECTED, 0, now);
  }
}

static void on_done(void *user_data, uint32_t worker, uint64_t cookie,
                    int rc) {
  goTernDone((uintptr_t)user_data, worker, cookie, rc);
}

int go_workers_new(tern_workers **pw, tern_workers_options *o,
                   uintptr_t handle, int authorize, int done) {
  o->user_data = (void *)handle;
  o->on_event = authorize ? on_event : NULL;
  o->on_done = done ? on_done : NULL;
  return tern_workers_new(pw, o);
}

int go_workers_publish(tern_workers *w, const go_msg *m, const uint8_t *buf,
                       const uint8_t *pbuf) {
  tern_msg_desc d;
  tern_attr attrs[TERN_MAX_ATTRS];
  go_fill_desc(&d, attrs, m, buf, pbuf);
  return tern_workers_publish(w, buf + m->key_off, (size_t)m->key_len, &d);
}
