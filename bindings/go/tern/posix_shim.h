/*
 * The C side of the Go binding's libtern-posix part (Linux only): the
 * workers' callbacks into Go and publishing from offsets into Go buffers.
 */
#ifndef TERN_GO_POSIX_SHIM_H
#define TERN_GO_POSIX_SHIM_H

#include "shim.h"

#include <tern_posix.h>

/* go_workers_cb is what the workers' callbacks reach: the cgo.Handle of
   the Go side, the worker count, which callbacks are on. */
typedef struct go_workers_cb go_workers_cb;

/* go_workers_new makes workers with |o| (its settings as given) whose
   callbacks call the Go side with the cgo.Handle |handle|: on_done when
   |done| is nonzero, and CONN_HELLO answered by the Go authorizer when
   |authorize| is nonzero (the settings must then have hello_accept), or
   accepted (several workers).  |*pcb| gets what go_workers_del frees. */
int go_workers_new(tern_workers **pw, go_workers_cb **pcb,
                   tern_workers_options *o, uintptr_t handle, int authorize,
                   int done);

/* go_workers_del deletes the workers, then their callbacks' data. */
void go_workers_del(tern_workers *w, go_workers_cb *cb);

/* go_workers_publish publishes the message |m| (offsets into |buf|, the
   payload into |pbuf|) through tern_workers_publish. */
int go_workers_publish(tern_workers *w, const go_msg *m, const uint8_t *buf,
                       const uint8_t *pbuf);

/* go_http_set is one tern_http per worker, all calling the Go handler
   behind |handle| (goTernHTTP) with their worker number. */
typedef struct go_http_set go_http_set;

/* go_http_new makes the servers (reuseport) on every worker of |w|, which
   must not run.  0 or a tern_error. */
int go_http_new(go_http_set **pset, tern_workers *w, uintptr_t handle);

/* go_http_listen listens on every server; the port bound goes to
   |*pport|. */
int go_http_listen(go_http_set *set, const char *host, uint16_t port,
                   uint16_t *pport);

/* go_http_del deletes the servers (the workers stopped).  NULL does
   nothing. */
void go_http_del(go_http_set *set);

/* go_http_stream answers |r|, which arrived on worker |here|, with a
   stream (|ws| 0: tern_http_respond_stream) or a WebSocket (|ws| 1) of
   the session |key|: at once when |here| owns the session, else by
   forwarding the request to the owner's server, which answers it there
   (503 when it cannot).  Everything is copied.  |headers|: NULL or
   NUL-terminated header lines.  poll_hold UINT64_MAX takes the default.
   Returns 0 (answered, or on its way) or a tern_error (|r| unanswered). */
int go_http_stream(go_http_set *set, uint32_t here, tern_http_request *r,
                   int ws, int framing, const uint8_t *key, size_t keylen,
                   uint64_t resume_epoch, uint64_t resume_seq,
                   uint64_t heartbeat, uint64_t retry, uint64_t poll_hold,
                   const char *headers);

#endif
