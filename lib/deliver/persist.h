/*
 * What persist.c shares with persist_topic.c: the batch being built, the
 * clock conversion of stored expiries, the tail decoder, and the loader's
 * entry points for the records of topics, subscriptions, cursors and
 * shared payloads.
 */
#ifndef TERN_DELIVER_PERSIST_H
#define TERN_DELIVER_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "deliver/hub.h"

static inline void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static inline uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = v << 8 | p[i];
  }
  return v;
}

static inline void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* ---- the batch (persist.c) ---------------------------------------------- */
/* prec_reserve makes room for |n| more records of |bytes| in all (keys and
   values).  0 or TERN_ERR_NOMEM. */
int prec_reserve(tern_hub *hub, size_t n, size_t bytes);
/* prec_set appends a SET of key |type| + |id|, whose |valuelen| bytes the
   caller writes at the returned pointer (valid until the next record).
   Room must be reserved.  *|index| (when not NULL) gets the record's
   number in the batch, for prec_value. */
uint8_t *prec_set(tern_hub *hub, uint8_t type, const uint8_t *id,
                  size_t idlen, size_t valuelen, uint32_t *index);
/* prec_value returns the value of record |index| of the batch being built
   when it is still there, a SET of |keylen| key bytes |key| with a value
   of |valuelen| bytes; else NULL (a batch was handed over since). */
uint8_t *prec_value(tern_hub *hub, uint32_t index, const uint8_t *key,
                    size_t keylen, size_t valuelen);
/* prec_del appends a DEL that cannot fail (see add_del). */
void prec_del(tern_hub *hub, uint8_t type, const uint8_t *id, size_t idlen);
/* prec_maybe_flush hands the batch over when it grew large. */
void prec_maybe_flush(tern_hub *hub);
/* persist_sync: the batch being built must be durable. */
void persist_sync(tern_hub *hub);
/* persist_batch_number: the number the batch being built will get. */
uint64_t persist_batch_number(const tern_hub *hub);

/* The wall clock's time for the hub's |t|, and back. */
uint64_t persist_to_wall(const tern_hub *hub, tern_tstamp t);
tern_tstamp persist_from_wall(const tern_hub *hub, uint64_t w);
/* persist_decode_tail decodes a stored MSG tail with the wire codec (the
   pointers of |out| point into |tail|): 0, -1 (damaged) or -2 (no
   memory). */
int persist_decode_tail(tern_hub *hub, const uint8_t *tail, size_t taillen,
                        wire_msg *out);

/* ---- loading (persist_topic.c) ------------------------------------------ */
typedef struct tload tload;
/* tload_record takes a record of a topic ('T'), topic message ('U'),
   member cursor ('C'), pattern subscription ('W'), shared payload ('P') or
   a message that refers to a shared payload ('M', |serial|): it is kept
   until tload_finish, which builds them in an order the store's need not
   follow.  0, TERN_ERR_STORE (a record of these kinds that cannot be
   read) or TERN_ERR_NOMEM.  *|tl| is created on the first call. */
int tload_record(tern_hub *hub, tload **tl, const uint8_t *key,
                 size_t keylen, const uint8_t *value, size_t valuelen);
/* tload_finish builds what the records describe (sessions are loaded);
   the messages of shared payloads go back to persist.c through |shared|
   (0 or an error).  0, TERN_ERR_STORE (a reference to a record that is
   not there) or TERN_ERR_NOMEM. */
typedef int (*tload_shared_fn)(void *ctx, uint64_t serial, const uint8_t *v,
                               size_t len, spayload *pl);
int tload_finish(tern_hub *hub, tload *tl, tern_tstamp now,
                 tload_shared_fn shared, void *ctx);
/* tload_after runs once the load is done (hub->loading 0) and frees |tl|
   (NULL: none): topic messages that expired while the hub was down go,
   their records too, and so do payloads no record refers to. */
void tload_after(tern_hub *hub, tload *tl, tern_tstamp now);
/* tload_free frees |tl| after a failed load (NULL: nothing). */
void tload_free(tern_hub *hub, tload *tl);
/* tload_unload frees the topics a failed load built. */
void tload_unload(tern_hub *hub);
/* The cursor coalescing state of persist_topic.c, hung on the persist
   struct (persist_ptopic) and freed with it (ptopic_free). */
struct ptopic **persist_ptopic(tern_hub *hub);
void ptopic_free(tern_hub *hub);
/* persist_topic_drops: the session's unconfirmed losses changed; its
   members' cursor records count their own untold ones. */
void persist_topic_drops(tern_hub *hub, const session *s);

#endif
