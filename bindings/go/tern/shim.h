/*
 * The C side of the Go binding: small helpers that let Go pass messages,
 * keys and results as offsets into Go byte buffers (memory without Go
 * pointers, so cgo's pointer rules hold) and build the descriptors and
 * arrays the library takes on the C stack or heap.
 */
#ifndef TERN_GO_SHIM_H
#define TERN_GO_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <tern.h>

/* GO_NONE marks an absent optional field (content type). */
#define GO_NONE UINT64_MAX

/* go_msg is one message to publish, every field an offset into the Go
   buffer |buf| of the call (the payload into |pbuf|).  Attributes are
   nattrs pairs of NUL-terminated strings, "key\0value\0...", at
   attrs_off. */
typedef struct go_msg {
  uint64_t key_off, key_len;
  uint64_t id_off, id_len;
  uint64_t ck_off, ck_len;
  uint64_t payload_off, payload_len;
  uint64_t ct_off;
  uint64_t attrs_off;
  uint64_t ttl;
  uint64_t cookie;
  uint64_t fallback;
  uint32_t nattrs;
  uint32_t flags;
  int32_t priority;
  int32_t pad;
} go_msg;

/* go_result is one message's outcome in a batch. */
typedef struct go_result {
  int32_t error;
  uint32_t outcome;
  uint32_t nevicted;
  uint32_t pad;
} go_result;

/* go_scratch holds what one hub or client call reads or writes besides
   byte buffers, in C memory, so that no Go object with Go pointers in it
   is ever handed to C. */
typedef struct go_scratch {
  go_msg msg;
  tern_publish_result res;
  tern_event ev;
  tern_client_event cev;
  tern_conn *ready[64];
} go_scratch;

go_scratch *go_scratch_new(void);
void go_scratch_del(go_scratch *sc);

/* go_fill_desc fills |d| from |m| (offsets into |buf|, the payload into
   |pbuf|); |attrs| has room for TERN_MAX_ATTRS. */
void go_fill_desc(tern_msg_desc *d, tern_attr *attrs, const go_msg *m,
                  const uint8_t *buf, const uint8_t *pbuf);

int go_publish(tern_hub *hub, const go_msg *m, const uint8_t *buf,
               const uint8_t *pbuf, tern_tstamp now,
               tern_publish_result *result);
tern_ssize go_publish_batch(tern_hub *hub, const go_msg *msgs, size_t n,
                            const uint8_t *buf, tern_tstamp now,
                            go_result *results);
tern_ssize go_publish_many(tern_hub *hub, const uint64_t *keys, size_t nkeys,
                           const go_msg *m, const uint8_t *buf,
                           const uint8_t *pbuf, tern_tstamp now,
                           tern_key_result *results,
                           tern_publish_result *result);
int go_topic_publish(tern_topic *topic, const go_msg *m, const uint8_t *buf,
                     const uint8_t *pbuf, tern_tstamp now, uint64_t *offset);
int go_client_publish(tern_client *client, uint32_t flags, const go_msg *m,
                      const uint8_t *buf, const uint8_t *pbuf, uint64_t *req,
                      tern_tstamp now);

/* go_new_stream creates the stream |o| describes, with the session key
   |key| (o->key is ignored). */
int go_new_stream(tern_conn **pconn, tern_hub *hub, const tern_stream_opts *o,
                  const uint8_t *key, tern_tstamp now);

/* go_next_ready moves up to |cap| ready connections into |out|. */
size_t go_next_ready(tern_hub *hub, tern_conn **out, size_t cap);

/* User data as integers: the binding keeps handles, never Go pointers. */
void go_session_set_value(tern_session *s, uint64_t handle);
uint64_t go_session_value(const tern_session *s);

/* go_store_sync and go_store_compact call the file store's methods. */
int go_store_sync(tern_store_file *store);
int go_store_compact(tern_store_file *store);

/* go_hook_opts describes a hook for go_add_hook: the bytes are offsets
   into the Go buffer of the call (the object name NUL-terminated there,
   or GO_NONE), the rest as tern_hook_opts has them. */
typedef struct go_hook_opts {
  uint64_t target_off, target_len;
  uint64_t secret_off, secret_len;
  uint64_t token_off, token_len;
  uint64_t object_off;
  uint64_t max_bytes;
  uint64_t max_delay;
  uint64_t retry_base;
  uint64_t retry_cap;
  uint64_t max_queued;
  uint32_t flags;
  uint32_t max_items;
  uint32_t max_attempts;
  uint32_t disable_after;
  uint32_t max_inflight;
  uint32_t pad;
} go_hook_opts;

int go_add_hook(tern_hub *hub, const go_hook_opts *o, const uint8_t *buf,
                tern_tstamp now, uint64_t *id);

/* go_hook_enqueue queues an entry for hook |id|: its key is the first
   |keylen| bytes of |buf|, then |nfields| NUL-terminated field names,
   then |datalen| bytes of JSON (none when 0). */
int go_hook_enqueue(tern_hub *hub, uint64_t id, const uint8_t *buf,
                    uint64_t keylen, uint32_t nfields, uint64_t datalen,
                    uint64_t time, tern_tstamp now);

/* go_hook_check_challenge is tern_hook_check_challenge with the challenge
   given as an offset into |query|. */
int go_hook_check_challenge(const uint8_t *query, size_t querylen,
                            const uint8_t *token, size_t tokenlen,
                            size_t *off, size_t *len);

/* go_hub_set_zone sets the hub's zone callback to the Go function
   goTernZone with the cgo.Handle |handle| (0: none). */
int go_hub_set_zone(tern_hub *hub, uintptr_t handle);

#endif
