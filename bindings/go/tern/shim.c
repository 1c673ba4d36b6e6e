/*
 * Go binding helpers (see shim.h): descriptors are rebuilt here from
 * offsets so that Go never hands C a struct holding Go pointers.
 */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

/* Fills |d| from |m|; |attrs| has room for TERN_MAX_ATTRS.  The Go side
   checked the counts and lengths against the buffer. */
void go_fill_desc(tern_msg_desc *d, tern_attr *attrs, const go_msg *m,
                      const uint8_t *buf, const uint8_t *pbuf) {
  memset(d, 0, sizeof(*d));
  if (m->id_len > 0) {
    d->id = buf + m->id_off;
    d->idlen = (size_t)m->id_len;
  }
  if (m->ck_len > 0) {
    d->collapse_key = buf + m->ck_off;
    d->collapse_keylen = (size_t)m->ck_len;
  }
  d->priority = m->priority;
  d->ttl = m->ttl;
  if (m->payload_len > 0) {
    d->payload = pbuf + m->payload_off;
    d->payloadlen = (size_t)m->payload_len;
  }
  if (m->ct_off != GO_NONE) {
    d->content_type = (const char *)buf + m->ct_off;
  }
  size_t n = m->nattrs <= TERN_MAX_ATTRS ? m->nattrs : TERN_MAX_ATTRS;
  const char *p = (const char *)buf + m->attrs_off;
  for (size_t i = 0; i < n; ++i) {
    attrs[i].key = p;
    p += strlen(p) + 1;
    attrs[i].value = p;
    p += strlen(p) + 1;
  }
  d->attrs = n ? attrs : NULL;
  d->nattrs = n;
  d->flags = m->flags;
  d->cookie = m->cookie;
  d->fallback = m->fallback;
}

int go_publish(tern_hub *hub, const go_msg *m, const uint8_t *buf,
               const uint8_t *pbuf, tern_tstamp now,
               tern_publish_result *result) {
  tern_msg_desc d;
  tern_attr attrs[TERN_MAX_ATTRS];
  go_fill_desc(&d, attrs, m, buf, pbuf);
  return tern_hub_publish(hub, buf + m->key_off, (size_t)m->key_len, &d, now,
                          result);
}

tern_ssize go_publish_batch(tern_hub *hub, const go_msg *msgs, size_t n,
                            const uint8_t *buf, tern_tstamp now,
                            go_result *results) {
  tern_msg_desc d;
  tern_attr attrs[TERN_MAX_ATTRS];
  tern_publish_result r;
  tern_ssize queued = 0;
  for (size_t i = 0; i < n; ++i) {
    go_fill_desc(&d, attrs, &msgs[i], buf, buf);
    r.outcome = 0;
    r.nevicted = 0;
    int rv = tern_hub_publish(hub, buf + msgs[i].key_off,
                              (size_t)msgs[i].key_len, &d, now, &r);
    results[i].error = rv;
    results[i].outcome = rv == 0 || rv == TERN_ERR_FULL ? r.outcome : 0;
    results[i].nevicted = rv == 0 || rv == TERN_ERR_FULL ? r.nevicted : 0;
    if (rv == 0) {
      ++queued;
    }
  }
  return queued;
}

tern_ssize go_publish_many(tern_hub *hub, const uint64_t *keys, size_t nkeys,
                           const go_msg *m, const uint8_t *buf,
                           const uint8_t *pbuf, tern_tstamp now,
                           tern_key_result *results,
                           tern_publish_result *result) {
  tern_msg_desc d;
  tern_attr attrs[TERN_MAX_ATTRS];
  go_fill_desc(&d, attrs, m, buf, pbuf);
  tern_key *k = NULL;
  if (nkeys > 0) {
    k = malloc(nkeys * sizeof(*k));
    if (k == NULL) {
      return TERN_ERR_NOMEM;
    }
    for (size_t i = 0; i < nkeys; ++i) {
      k[i].key = buf + keys[2 * i];
      k[i].keylen = (size_t)keys[2 * i + 1];
    }
  }
  tern_ssize rv = tern_hub_publish_many(hub, k, nkeys, &d, now, results,
                                        result);
  free(k);
  return rv;
}

int go_topic_publish(tern_topic *topic, const go_msg *m, const uint8_t *buf,
                     const uint8_t *pbuf, tern_tstamp now, uint64_t *offset) {
  tern_msg_desc d;
  tern_attr attrs[TERN_MAX_ATTRS];
  go_fill_desc(&d, attrs, m, buf, pbuf);
  return tern_topic_publish(topic, &d, now, offset);
}

int go_client_publish(tern_client *client, uint32_t flags, const go_msg *m,
                      const uint8_t *buf, const uint8_t *pbuf, uint64_t *req,
                      tern_tstamp now) {
  tern_msg_desc d;
  tern_attr attrs[TERN_MAX_ATTRS];
  go_fill_desc(&d, attrs, m, buf, pbuf);
  return tern_client_publish(client, flags, buf + m->key_off,
                             (size_t)m->key_len, &d, req, now);
}

size_t go_next_ready(tern_hub *hub, tern_conn **out, size_t cap) {
  size_t n = 0;
  while (n < cap) {
    tern_conn *c = tern_hub_next_ready(hub);
    if (c == NULL) {
      break;
    }
    out[n++] = c;
  }
  return n;
}

void go_session_set_value(tern_session *s, uint64_t handle) {
  tern_session_set_user_data(s, (void *)(uintptr_t)handle);
}

uint64_t go_session_value(const tern_session *s) {
  return (uint64_t)(uintptr_t)tern_session_get_user_data(s);
}

int go_new_stream(tern_conn **pconn, tern_hub *hub, const tern_stream_opts *o,
                  const uint8_t *key, tern_tstamp now) {
  /* A copy on the C stack: the Go pointer is never stored in Go memory. */
  tern_stream_opts local = *o;
  local.key = key;
  return tern_conn_new_stream(pconn, hub, &local, now);
}

int go_store_sync(tern_store_file *store) {
  return tern_store_file_methods()->sync(store);
}

int go_store_compact(tern_store_file *store) {
  return tern_store_file_methods()->compact(store);
}

go_scratch *go_scratch_new(void) { return calloc(1, sizeof(go_scratch)); }

void go_scratch_del(go_scratch *sc) { free(sc); }

int go_add_hook(tern_hub *hub, const go_hook_opts *o, const uint8_t *buf,
                tern_tstamp now, uint64_t *id) {
  tern_hook_opts t;
  tern_hook_opts_default(&t);
  t.flags = o->flags;
  t.target = buf + o->target_off;
  t.targetlen = (size_t)o->target_len;
  t.secret = buf + o->secret_off;
  t.secretlen = (size_t)o->secret_len;
  if (o->token_len > 0) {
    t.verify_token = buf + o->token_off;
    t.verify_tokenlen = (size_t)o->token_len;
  }
  if (o->object_off != GO_NONE) {
    t.object = (const char *)buf + o->object_off;
  }
  t.max_items = o->max_items;
  t.max_attempts = o->max_attempts;
  t.max_bytes = o->max_bytes;
  t.max_delay = o->max_delay;
  t.retry_base = o->retry_base;
  t.retry_cap = o->retry_cap;
  t.disable_after = o->disable_after;
  t.max_inflight = o->max_inflight;
  t.max_queued = o->max_queued;
  return tern_hub_add_hook(hub, &t, now, id);
}

int go_hook_enqueue(tern_hub *hub, uint64_t id, const uint8_t *buf,
                    uint64_t keylen, uint32_t nfields, uint64_t datalen,
                    uint64_t time, tern_tstamp now) {
  const char *fields[TERN_MAX_HOOK_FIELDS];
  if (nfields > TERN_MAX_HOOK_FIELDS) {
    return TERN_ERR_TOO_LARGE;
  }
  const char *p = (const char *)buf + keylen;
  for (uint32_t i = 0; i < nfields; ++i) {
    fields[i] = p;
    p += strlen(p) + 1;
  }
  tern_hook_entry e;
  memset(&e, 0, sizeof(e));
  e.key = buf;
  e.keylen = (size_t)keylen;
  e.fields = fields;
  e.nfields = nfields;
  e.time = time;
  if (datalen > 0) {
    e.payload = (const uint8_t *)p;
    e.payloadlen = (size_t)datalen;
  }
  return tern_hub_hook_enqueue(hub, id, &e, now);
}

int go_hook_check_challenge(const uint8_t *query, size_t querylen,
                            const uint8_t *token, size_t tokenlen,
                            size_t *off, size_t *len) {
  const char *chal = NULL;
  size_t n = 0;
  int rc = tern_hook_check_challenge(
      query ? (const char *)query : "", querylen,
      token ? token : (const uint8_t *)"", tokenlen, &chal, &n);
  if (rc == 0) {
    *off = (size_t)(chal - (const char *)query);
    *len = n;
  }
  return rc;
}

/* The zone callback: the Go side (zone.go) calls the ZoneFunc behind the
   handle. */
extern int32_t goTernZone(uintptr_t handle, uint32_t zone, int64_t wall);

static int32_t zone_bridge(uint32_t zone, int64_t wall_seconds, void *ud) {
  return goTernZone((uintptr_t)ud, zone, wall_seconds);
}

int go_hub_set_zone(tern_hub *hub, uintptr_t handle) {
  return tern_hub_set_zone_callback(hub, handle ? zone_bridge : NULL,
                                    (void *)handle);
}
