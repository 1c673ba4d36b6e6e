/*
 * GET /stats (one JSON object) and GET /metrics (Prometheus text format
 * 0.0.4): the hub's counters and gauges, the HTTP server's, the driver's,
 * the web hooks' sender's and the file store's, from one table so that both agree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ternd.h"

typedef struct metric {
  const char *group; /* JSON object; Prometheus prefix ternd_<group>_ */
  const char *name;
  int gauge;
  const char *help;
  uint64_t value;
} metric;

#define MAX_METRICS TERND_MAX_METRICS

/* This shard's metrics, in the same order every time. */
static size_t collect(ternd_shard *sh, metric *m) {
  tern_stats hs;
  tern_http_stats ws;
  tern_driver_stats ds;
  tern_store_file_stats fs;
  tern_hook_sender_stats ks;
  memset(&ks, 0, sizeof(ks));
  if (sh->index == 0 && sh->t->hook_sender) {
    tern_hook_sender_get_stats(sh->t->hook_sender, &ks, sizeof(ks));
  }
  tern_hub_get_stats(sh->hub, &hs, sizeof(hs));
  tern_http_get_stats(sh->http, &ws, sizeof(ws));
  tern_driver_get_stats(sh->d, &ds, sizeof(ds));
  memset(&fs, 0, sizeof(fs));
  if (sh->store) {
    tern_store_file_get_stats(sh->store, &fs, sizeof(fs));
  }
  size_t n = 0;
#define M(g, nm, gauge, help, v) \
  m[n++] = (metric){g, nm, gauge, help, (uint64_t)(v)}
  M("hub", "published", 0, "Messages accepted for sessions.", hs.published);
  M("hub", "duplicates", 0, "Publishes refused as duplicates.", hs.duplicates);
  M("hub", "collapsed", 0, "Pending messages replaced by a newer one.",
    hs.collapsed);
  M("hub", "evicted", 0, "Messages evicted by an overflow rule.", hs.evicted);
  M("hub", "refused", 0, "Publishes refused by an overflow rule.", hs.refused);
  M("hub", "rejected", 0, "Publishes rejected with a retry hint.",
    hs.rejected);
  M("hub", "expired", 0, "Messages discarded at their expiry.", hs.expired);
  M("hub", "sent", 0, "Messages written to receivers (re-sends too).",
    hs.sent);
  M("hub", "resent", 0, "Messages written again.", hs.resent);
  M("hub", "acked", 0, "Messages acknowledged.", hs.acked);
  M("hub", "dropped_notices", 0, "Loss notices written.", hs.dropped_notices);
  M("hub", "sessions_created", 0, "Sessions created.", hs.sessions_created);
  M("hub", "sessions_expired", 0, "Sessions expired.", hs.sessions_expired);
  M("hub", "conns_opened", 0, "Connections opened.", hs.conns_opened);
  M("hub", "bytes_out", 0, "Bytes the hub wrote.", hs.bytes_out);
  M("hub", "sessions", 1, "Sessions held.", hs.sessions);
  M("hub", "conns", 1, "Connections attached.", hs.conns);
  M("hub", "messages", 1, "Messages held, pending and in flight.",
    hs.messages);
  M("hub", "message_bytes", 1, "Payload bytes held.", hs.message_bytes);
  M("hub", "inflight", 1, "Messages sent and not acked.", hs.inflight);
  M("hub", "topics", 1, "Topics.", hs.topics);
  M("hub", "members", 1, "Topic subscriptions.", hs.members);
  M("hub", "topic_messages", 1, "Messages retained in topic logs.",
    hs.topic_messages);
  M("http", "accepted", 0, "HTTP connections accepted.", ws.accepted);
  M("http", "requests", 0, "HTTP requests served.", ws.requests);
  M("http", "bad_requests", 0, "HTTP requests refused as malformed.",
    ws.bad_requests);
  M("http", "timeouts", 0, "HTTP connections timed out.", ws.timeouts);
  M("http", "streams_opened", 0, "Streams opened (SSE, NDJSON, polls).",
    ws.streams_opened);
  M("http", "forwarded", 0, "HTTP requests passed to another thread.",
    ws.forwarded);
  M("http", "connections", 1, "HTTP connections open.", ws.connections);
  M("http", "streams", 1, "Streams open.", ws.streams);
  M("api", "publishes", 0, "Publish requests that passed their checks.",
    sh->publishes);
  M("api", "publish_errors", 0, "Publish requests the hub refused.",
    sh->publish_errors);
  M("api", "unauthorized", 0, "Requests answered 401.", sh->unauthorized);
  M("api", "acks", 0, "Messages acked through POST /ack.", sh->acks);
  M("api", "not_found", 0, "Requests for no route.", sh->not_found);
  M("driver", "bytes_in", 0, "Bytes read from sockets.", ds.bytes_in);
  M("driver", "bytes_out", 0, "Bytes written to sockets.", ds.bytes_out);
  M("driver", "writes", 0, "write and writev calls.", ds.writes);
  M("driver", "blocked", 0, "Times a socket was full.", ds.blocked);
  M("driver", "sockets", 1, "Sockets open.", ds.sockets);
  M("driver", "buffered", 1, "Bytes held for full sockets.", ds.buffered);
  M("hooks", "requests", 0, "Web hook requests made.", ks.requests);
  M("hooks", "answered", 0, "Web hook requests answered with a status.",
    ks.answered);
  M("hooks", "no_answer", 0, "Web hook requests without an answer.",
    ks.no_answer);
  M("hooks", "refused", 0, "Web hook requests the client refused.",
    ks.refused);
  M("hooks", "outstanding", 1, "Web hook requests on the wire.",
    ks.outstanding);
  M("store", "records", 1, "Records in the store's log.", fs.records);
  M("store", "live", 1, "Live keys in the store.", fs.live);
#undef M
  return n;
}

void ternd_stats_add(ternd_shard *sh, ternd_chain *c) {
  metric m[MAX_METRICS];
  size_t n = collect(sh, m);
  for (size_t i = 0; i < n; ++i) {
    c->values[i] += m[i].value;
  }
  c->epochs[sh->index] = tern_hub_get_epoch(sh->hub);
}

/* The table with the chain's sums in place of this shard's values. */
static size_t summed(ternd_shard *sh, const ternd_chain *c, metric *m) {
  size_t n = collect(sh, m);
  for (size_t i = 0; i < n; ++i) {
    m[i].value = c->values[i];
  }
  return n;
}

void ternd_stats_answer(ternd_shard *sh, tern_http_request *req,
                        const ternd_chain *c) {
  metric m[MAX_METRICS];
  size_t n = summed(sh, c, m);
  uint32_t shards = sh->t->n;
  char *out = malloc(n * 64 + shards * 24 + 256);
  if (!out) {
    (void)tern_http_respond_error(req, 503, NULL, "out of memory");
    return;
  }
  /* "epoch" is the first hub's (all of them with --threads 1); a
     session's SSE ids carry its own hub's, listed in "epochs". */
  size_t len = (size_t)sprintf(out,
                               "{\"epoch\":%llu,\"threads\":%u,"
                               "\"durable\":%s,\"epochs\":[",
                               (unsigned long long)c->epochs[0],
                               (unsigned)shards,
                               sh->store ? "true" : "false");
  for (uint32_t i = 0; i < shards; ++i) {
    len += (size_t)sprintf(out + len, "%s%llu", i ? "," : "",
                           (unsigned long long)c->epochs[i]);
  }
  out[len++] = ']';
  const char *group = NULL;
  for (size_t i = 0; i < n; ++i) {
    if (!group || strcmp(group, m[i].group) != 0) {
      len += (size_t)sprintf(out + len, "%s,\"%s\":{", group ? "}" : "",
                             m[i].group);
      group = m[i].group;
    } else {
      out[len++] = ',';
    }
    len += (size_t)sprintf(out + len, "\"%s\":%llu", m[i].name,
                           (unsigned long long)m[i].value);
  }
  len += (size_t)sprintf(out + len, "}}");
  (void)tern_http_respond(req, 200, "application/json",
                          "Cache-Control: no-store\r\n", out, len);
  free(out);
}

void ternd_metrics_answer(ternd_shard *sh, tern_http_request *req,
                          const ternd_chain *c) {
  metric m[MAX_METRICS];
  size_t n = summed(sh, c, m);
  size_t cap = n * 256 + 64;
  char *out = malloc(cap);
  if (!out) {
    (void)tern_http_respond_error(req, 503, NULL, "out of memory");
    return;
  }
  size_t len = 0;
  for (size_t i = 0; i < n; ++i) {
    const char *suffix = m[i].gauge ? "" : "_total";
    len += (size_t)snprintf(out + len, cap - len,
                            "# HELP ternd_%s_%s%s %s\n"
                            "# TYPE ternd_%s_%s%s %s\n"
                            "ternd_%s_%s%s %llu\n",
                            m[i].group, m[i].name, suffix, m[i].help,
                            m[i].group, m[i].name, suffix,
                            m[i].gauge ? "gauge" : "counter", m[i].group,
                            m[i].name, suffix,
                            (unsigned long long)m[i].value);
  }
  (void)tern_http_respond(req, 200, "text/plain; version=0.0.4",
                          "Cache-Control: no-store\r\n", out, len);
  free(out);
}
