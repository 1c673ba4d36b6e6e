/*
 * Producers on the binary framing (produce.c): a connection the host let
 * publish (tern_conn_allow_publish) sends PUBLISH frames and gets PUBACK
 * frames back.  These are the hooks between conn.c, persist.c and
 * produce.c.
 */
#ifndef TERN_DELIVER_PRODUCE_H
#define TERN_DELIVER_PRODUCE_H

#include "deliver/hub.h"

/* The PUBACK buffer of one producer connection.  Every PUBACK the
   connection may owe fits in it: the immediate ones of the PUBLISHes read
   so far plus one for each SYNC publish still waiting for its store. */
#define PRODUCE_ACK_BYTES 65536
/* The most SYNC publishes of one connection waiting for their store. */
#define PRODUCE_SYNC_MAX 256

/* ---- produce.c, called by conn.c ---------------------------------------- */

/* produce_read takes over tern_conn_read for a producer connection.  Bytes
   consumed (fewer than |len| only while the connection is blocked), or an
   error that closes the connection (conn.c does the closing). */
tern_ssize produce_read(conn *c, const uint8_t *in, size_t len,
                        tern_tstamp now);
/* produce_write copies PUBACKs to [*p, end).  1 when none is left. */
int produce_write(conn *c, uint8_t **p, uint8_t *end);
/* produce_cut_pending: a PUBACK was written in part; its rest goes first. */
int produce_cut_pending(const conn *c);
/* produce_want_write: PUBACKs to write. */
int produce_want_write(const conn *c);
/* produce_closed: the connection closed (no more PUBACKs will be
   queued); produce_free: it is deleted. */
void produce_closed(tern_hub *hub, conn *c);
void produce_free(tern_hub *hub, conn *c);

/* ---- produce.c, called by persist.c ------------------------------------- */

/* produce_persisted queues the PUBACK of request |req| of |c|, a SYNC
   publish whose batch completed with |status| (0 or a tern_error). */
void produce_persisted(tern_hub *hub, conn *c, uint64_t req,
                       const uint8_t *id, size_t idlen, int status);

/* ---- conn.c, called by produce.c ---------------------------------------- */

/* conn_frames handles the frames in [p, p+len) up to the first PUBLISH or
   incomplete frame, as tern_conn_read does.  Bytes used or an error; len
   once the connection closed. */
tern_ssize conn_frames(conn *c, const uint8_t *p, size_t len,
                       tern_tstamp now);

/* ---- persist.c, called by produce.c ------------------------------------- */

/* persist_set_producer: the SYNC publishes made until it is set back to
   NULL come from |c|; their completion goes to produce_persisted instead
   of a TERN_EV_PERSISTED event.  persist_forget_producer: |c| ends; its
   waiting publishes complete without a word. */
void persist_set_producer(tern_hub *hub, conn *c);
void persist_forget_producer(tern_hub *hub, const conn *c);

#endif /* TERN_DELIVER_PRODUCE_H */
