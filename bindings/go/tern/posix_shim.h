/*
 * The C side of the Go binding's libtern-posix part (Linux only): the
 * workers' callbacks into Go and publishing from offsets into Go buffers.
 */
#ifndef TERN_GO_POSIX_SHIM_H
#define TERN_GO_POSIX_SHIM_H

#include "shim.h"

#include <tern_posix.h>

/* go_workers_new makes workers with |o| (its settings as given) whose
   callbacks call the Go side with the cgo.Handle |handle|: on_done when
   |done| is nonzero, and CONN_HELLO answered by the Go authorizer when
   |authorize| is nonzero (the settings must then have hello_accept). */
int go_workers_new(tern_workers **pw, tern_workers_options *o,
                   uintptr_t handle, int authorize, int done);

/* go_workers_publish publishes the message |m| (offsets into |buf|, the
   payload into |pbuf|) through tern_workers_publish. */
int go_workers_publish(tern_workers *w, const go_msg *m, const uint8_t *buf,
                       const uint8_t *pbuf);

#endif
