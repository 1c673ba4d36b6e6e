/*
 * A program built against libtern 0.1's header (tern_v1.h, frozen) and run
 * against today's shared library: the binary compatibility test.  Every
 * struct the program hands the library sits in front of guard bytes; the
 * library must write nothing past the 0.1 size of a struct (a library that
 * clears or fills its own, larger, struct would), and behave as 0.1 did:
 * settings defaults, a hub with a store of the program's own (0.1 methods
 * table) and with the file store, SYNC publishes confirmed by PERSISTED,
 * a tern_client receiving the message over the hub's wire, ACKED, and the
 * statistics and descriptions.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "tern_v1.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

/* GUARDED(T): a T followed by guard bytes; clear() fills both with the
   guard pattern, intact() checks the guard. */
#define GUARDED(T)                                                          \
  struct {                                                                  \
    T s;                                                                    \
    uint8_t guard[GUARD];                                                   \
  }

static void fill(void *p, size_t n) { memset(p, GUARD_BYTE, n); }

static int intact(const uint8_t *guard) {
  for (size_t i = 0; i < GUARD; ++i) {
    if (guard[i] != GUARD_BYTE) {
      printf("#   guard byte %zu after the struct was overwritten\n", i);
      return 0;
    }
  }
  return 1;
}

/* ---- a store of the program's own, with the 0.1 methods table ----------- */

typedef struct rec {
  int op;
  uint8_t key[TERN_STORE_MAX_KEY];
  size_t keylen;
  uint8_t *value;
  size_t valuelen;
} rec;

typedef struct mystore {
  rec *recs;
  size_t n, cap;
  int appends, syncs;
} mystore;

static int my_append(void *store, uint64_t batch, const tern_store_record *r,
                     size_t n, int sync) {
  mystore *st = store;
  (void)batch;
  for (size_t i = 0; i < n; ++i) {
    if (st->n == st->cap) {
      st->cap = st->cap ? st->cap * 2 : 64;
      st->recs = realloc(st->recs, st->cap * sizeof(rec));
      if (!st->recs) {
        return TERN_ERR_NOMEM;
      }
    }
    rec *d = &st->recs[st->n++];
    d->op = r[i].op;
    memcpy(d->key, r[i].key, r[i].keylen);
    d->keylen = r[i].keylen;
    d->valuelen = r[i].valuelen;
    d->value = malloc(r[i].valuelen + 1);
    if (r[i].valuelen) {
      memcpy(d->value, r[i].value, r[i].valuelen);
    }
  }
  ++st->appends;
  st->syncs += sync != 0;
  return 0;
}

/* Replays the last SET of every key not deleted after it. */
static int my_load(void *store, tern_store_visit visit, void *ctx) {
  mystore *st = store;
  for (size_t i = 0; i < st->n; ++i) {
    const rec *r = &st->recs[i];
    int last = 1;
    for (size_t j = i + 1; j < st->n && last; ++j) {
      last = !(st->recs[j].keylen == r->keylen &&
               memcmp(st->recs[j].key, r->key, r->keylen) == 0);
    }
    if (last && r->op == TERN_STORE_SET) {
      int rv = visit(ctx, r->key, r->keylen, r->value, r->valuelen);
      if (rv != 0) {
        return rv;
      }
    }
  }
  return 0;
}

static void my_free(mystore *st) {
  for (size_t i = 0; i < st->n; ++i) {
    free(st->recs[i].value);
  }
  free(st->recs);
}

/* ---- helpers ------------------------------------------------------------- */

static const tern_tstamp T0 = 1700000000ull * TERN_SECONDS;

/* next_event: one hub event through a guarded 0.1 tern_event. */
static int next_event(tern_hub *hub, tern_event *out, int *guard_ok) {
  GUARDED(tern_event) g;
  fill(&g, sizeof(g));
  int rv = tern_hub_next_event(hub, &g.s);
  if (!intact(g.guard)) {
    *guard_ok = 0;
  }
  if (rv == 1) {
    *out = g.s;
  }
  return rv;
}

/* find_event: drains the hub's events, returns 1 when one of |type| came
   (copied to |out|); every event's guard is checked. */
static int find_event(tern_hub *hub, int type, tern_event *out,
                      int *guard_ok) {
  tern_event ev;
  int found = 0;
  while (next_event(hub, &ev, guard_ok) == 1) {
    if (ev.type == type && !found) {
      *out = ev;
      found = 1;
    }
  }
  return found;
}

static int client_event(tern_client *cl, tern_client_event *out,
                        int *guard_ok) {
  GUARDED(tern_client_event) g;
  fill(&g, sizeof(g));
  int rv = tern_client_next_event(cl, &g.s);
  if (!intact(g.guard)) {
    *guard_ok = 0;
  }
  if (rv == 1) {
    *out = g.s;
  }
  return rv;
}

/* pump moves bytes both ways until neither side has any. */
static void pump(tern_conn *c, tern_client *cl,
                 tern_tstamp now) {
  uint8_t buf[65536];
  for (int round = 0; round < 100; ++round) {
    int moved = 0;
    tern_ssize n = tern_client_write(cl, buf, sizeof(buf), now);
    if (n > 0) {
      tern_conn_read(c, buf, (size_t)n, now);
      moved = 1;
    }
    n = tern_conn_write(c, buf, sizeof(buf), now);
    if (n > 0) {
      tern_client_read(cl, buf, (size_t)n, now);
      moved = 1;
    }
    if (!moved) {
      return;
    }
  }
}

static void rmdir_all(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    return;
  }
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      unlink(path);
    }
  }
  closedir(d);
  rmdir(dir);
}

/* ---- the tests ----------------------------------------------------------- */

static void test_settings(void) {
  GUARDED(tern_settings) g;
  fill(&g, sizeof(g));
  tern_settings_default(&g.s);
  CHECK(intact(g.guard), "tern_settings_default writes no byte past a 0.1 "
                         "tern_settings");
  CHECK_INT(g.s.version, TERN_SETTINGS_VERSION, "version is 0.1's");
  CHECK_INT(g.s.max_conns, 10, "defaults are filled (max_conns)");
  CHECK_INT(g.s.hello_accept, 0, "... up to the last 0.1 field");

  GUARDED(tern_client_settings) c;
  fill(&c, sizeof(c));
  tern_client_settings_default(&c.s);
  CHECK(intact(c.guard), "tern_client_settings_default writes no byte past "
                         "a 0.1 tern_client_settings");
  CHECK_INT(c.s.version, TERN_CLIENT_SETTINGS_VERSION, "client version");
  CHECK_INT(c.s.max_payload, 1024 * 1024, "client defaults are filled");

  GUARDED(tern_store_file_options) o;
  fill(&o, sizeof(o));
  tern_store_file_options_default(&o.s);
  CHECK(intact(o.guard), "tern_store_file_options_default writes no byte "
                         "past a 0.1 tern_store_file_options");
  CHECK_INT(o.s.version, TERN_STORE_FILE_OPTIONS_VERSION, "options version");
  CHECK_INT(o.s.compact_garbage, 50, "options defaults are filled");

  const tern_store_methods *m = tern_store_file_methods();
  CHECK(m && m->version == TERN_STORE_METHODS_VERSION && m->append &&
            m->load,
        "tern_store_file_methods returns a 0.1 table");
  CHECK(tern_version() && tern_version()[0] != '\0', "tern_version");
}

/* A hub with the program's store: SYNC publish, PERSISTED, a receiver
   gets the message, ACKED; stats and infos; restart restores it. */
static void test_hub_and_client(void) {
  int guard_ok = 1;
  GUARDED(tern_settings) set;
  fill(&set, sizeof(set));
  tern_settings_default(&set.s);
  set.s.seed = 42;
  set.s.trace = 1;
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &set.s, NULL), 0, "tern_hub_new with 0.1 "
                                                 "settings");
  if (!hub) {
    return;
  }
  mystore st = {0};
  GUARDED(tern_store_methods) m;
  fill(&m, sizeof(m));
  m.s.version = TERN_STORE_METHODS_VERSION;
  m.s.append = my_append;
  m.s.load = my_load;
  m.s.sync = NULL;
  m.s.compact = NULL;
  m.s.close = NULL;
  CHECK_INT(tern_hub_set_store(hub, &m.s, &st, T0), 0,
            "tern_hub_set_store with a 0.1 methods table");

  static const uint8_t key[] = "device-1";
  static const uint8_t payload[] = "hello from 0.1";
  GUARDED(tern_msg_desc) d;
  fill(&d, sizeof(d));
  memset(&d.s, 0, sizeof(d.s));
  d.s.id = (const uint8_t *)"m-1";
  d.s.idlen = 3;
  d.s.priority = TERN_PRIO_HIGH;
  d.s.payload = payload;
  d.s.payloadlen = sizeof(payload) - 1;
  d.s.flags = TERN_MSG_SYNC;
  GUARDED(tern_publish_result) r;
  fill(&r, sizeof(r));
  CHECK_INT(tern_hub_publish(hub, key, sizeof(key) - 1, &d.s, T0, &r.s), 0,
            "tern_hub_publish with a 0.1 descriptor");
  CHECK(intact(r.guard), "the publish writes no byte past a 0.1 "
                         "tern_publish_result");
  CHECK_MEM(r.s.id, r.s.idlen, "m-1", 3, "the result names the id");
  CHECK_INT(r.s.outcome, TERN_PUBLISH_QUEUED, "the result says queued");

  tern_event ev;
  CHECK_INT(tern_hub_flush(hub), 0, "flush");
  CHECK(find_event(hub, TERN_EV_PERSISTED, &ev, &guard_ok),
        "PERSISTED comes for the SYNC publish");
  CHECK(guard_ok, "tern_hub_next_event writes no byte past a 0.1 "
                  "tern_event");
  CHECK(ev.reason == 0 && ev.msg_idlen == 3 &&
            memcmp(ev.msg_id, "m-1", 3) == 0,
        "PERSISTED names the message");
  CHECK(st.syncs >= 1, "the store was asked to sync");

  /* a receiver */
  GUARDED(tern_client_settings) cs;
  fill(&cs, sizeof(cs));
  tern_client_settings_default(&cs.s);
  cs.s.seed = 7;
  cs.s.ack_every = 1;
  tern_client *cl = NULL;
  CHECK_INT(tern_client_new(&cl, key, sizeof(key) - 1, NULL, 0, &cs.s, NULL,
                            T0),
            0, "tern_client_new with 0.1 settings");
  tern_conn *c = NULL;
  CHECK_INT(tern_conn_new(&c, hub, T0), 0, "tern_conn_new");
  if (!cl || !c) {
    tern_client_del(cl);
    tern_hub_del(hub);
    my_free(&st);
    return;
  }
  int cguard = 1;
  tern_client_event cev;
  CHECK(client_event(cl, &cev, &cguard) == 1 &&
            cev.type == TERN_CLIENT_EV_CONNECT,
        "the client asks for a transport");
  CHECK_INT(tern_client_connect(cl, T0), 0, "connect");
  pump(c, cl, T0);
  int connected = 0, got = 0;
  while (client_event(cl, &cev, &cguard) == 1) {
    connected |= cev.type == TERN_CLIENT_EV_CONNECTED;
    if (cev.type == TERN_CLIENT_EV_MESSAGE && cev.idlen == 3 &&
        memcmp(cev.id, "m-1", 3) == 0 &&
        cev.payloadlen == sizeof(payload) - 1 &&
        memcmp(cev.payload, payload, cev.payloadlen) == 0 &&
        cev.priority == TERN_PRIO_HIGH) {
      got = 1;
    }
  }
  CHECK(connected, "the client connects");
  CHECK(got, "the client gets the message, id, payload and priority");
  CHECK(cguard, "tern_client_next_event writes no byte past a 0.1 "
                "tern_client_event");
  pump(c, cl, T0);
  CHECK(find_event(hub, TERN_EV_ACKED, &ev, &guard_ok),
        "ACKED comes once the client acks");
  CHECK(ev.msg_idlen == 3 && memcmp(ev.msg_id, "m-1", 3) == 0,
        "ACKED names the message");
  CHECK(guard_ok, "no event wrote past a 0.1 tern_event");

  /* statistics and descriptions, each with the 0.1 sizeof */
  GUARDED(tern_stats) hs;
  fill(&hs, sizeof(hs));
  tern_hub_get_stats(hub, &hs.s, sizeof(hs.s));
  CHECK(intact(hs.guard), "tern_hub_get_stats writes sizeof(0.1 struct)");
  CHECK(hs.s.published == 1 && hs.s.acked == 1 && hs.s.conns == 1,
        "hub stats count the publish, the ack, the connection");
  GUARDED(tern_client_stats) cst;
  fill(&cst, sizeof(cst));
  tern_client_get_stats(cl, &cst.s, sizeof(cst.s));
  CHECK(intact(cst.guard), "tern_client_get_stats writes sizeof(0.1 struct)");
  CHECK(cst.s.received == 1 && cst.s.delivered == 1,
        "client stats count the message");
  GUARDED(tern_session_info) si;
  fill(&si, sizeof(si));
  tern_session_get_info(tern_hub_find_session(hub, key, sizeof(key) - 1),
                        &si.s, sizeof(si.s));
  CHECK(intact(si.guard), "tern_session_get_info writes sizeof(0.1 struct)");
  CHECK(si.s.nconns == 1 && si.s.pending == 0 && si.s.inflight == 0,
        "session info");
  GUARDED(tern_conn_info) ci;
  fill(&ci, sizeof(ci));
  tern_conn_get_info(c, &ci.s, sizeof(ci.s));
  CHECK(intact(ci.guard), "tern_conn_get_info writes sizeof(0.1 struct)");
  CHECK(ci.s.closed == 0 && ci.s.inflight == 0, "conn info");

  tern_conn_del(c);
  tern_client_del(cl);
  tern_hub_del(hub);

  /* Restart: a second publish, unsent, comes back from the store. */
  hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &set.s, NULL), 0, "a second hub");
  if (hub) {
    CHECK_INT(tern_hub_set_store(hub, &m.s, &st, T0), 0, "restores");
    CHECK_INT(tern_hub_publish(hub, key, sizeof(key) - 1, &d.s, T0, &r.s),
              TERN_ERR_DUPLICATE, "the restored dedup window refuses m-1");
    CHECK(intact(r.guard), "no byte past the result on DUPLICATE");
    tern_hub_del(hub);
  }
  my_free(&st);
}

static void test_file_store(void) {
  char dir[] = "/tmp/tern-abi-XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp");
    return;
  }
  GUARDED(tern_store_file_options) o;
  fill(&o, sizeof(o));
  tern_store_file_options_default(&o.s);
  o.s.segment_size = 1 << 20;
  tern_store_file *fs = NULL;
  CHECK_INT(tern_store_file_open(&fs, dir, &o.s, NULL), 0,
            "tern_store_file_open with 0.1 options");
  tern_hub *hub = NULL;
  if (!fs || tern_hub_new(&hub, NULL, NULL) != 0) {
    CHECK(0, "file store and hub");
    tern_store_file_close(fs);
    rmdir_all(dir);
    return;
  }
  CHECK_INT(tern_hub_set_store(hub, tern_store_file_methods(), fs, T0), 0,
            "the file store's 0.1 table attaches");
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.payload = (const uint8_t *)"x";
  d.payloadlen = 1;
  d.flags = TERN_MSG_SYNC;
  CHECK_INT(tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, T0, NULL), 0,
            "publish");
  tern_hub_flush(hub);
  int guard_ok = 1;
  tern_event ev;
  CHECK(find_event(hub, TERN_EV_PERSISTED, &ev, &guard_ok) && ev.reason == 0,
        "PERSISTED from the file store");
  CHECK(guard_ok, "no event wrote past a 0.1 tern_event");
  GUARDED(tern_store_file_stats) fst;
  fill(&fst, sizeof(fst));
  tern_store_file_get_stats(fs, &fst.s, sizeof(fst.s));
  CHECK(intact(fst.guard), "tern_store_file_get_stats writes sizeof(0.1 "
                           "struct)");
  CHECK(fst.s.records >= 1 && fst.s.fsyncs >= 1, "file store stats");
  tern_hub_del(hub);
  tern_store_file_close(fs);
  rmdir_all(dir);
}

int main(void) {
  test_settings();
  test_hub_and_client();
  test_file_store();
  return tap_done();
}
