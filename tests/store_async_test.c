/*
 * The file store's sync thread (option sync_thread) under a real hub: SYNC
 * publishes are confirmed only after the background fdatasync, batches that
 * arrive while one runs share the next (group commit), a failed fdatasync
 * fails every batch waiting on it, close with batches waiting, and a power
 * loss keeps every confirmed message.
 *
 * The store's fdatasync goes through a gate (a store_sys table): calls from
 * the store's own thread can be held and let through one at a time, and
 * the Nth call can fail.  Every successful call records the size its file
 * had, which is what a power loss keeps.  The real fdatasync is not made:
 * the recorded sizes are the model of the disk.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "store_util.h"
#include "tap.h"
#include "testutil.h"

/* ---- the gate ----------------------------------------------------------- */

#define MAX_FILES 256

typedef struct gate {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t owner;  /* the test's thread: its calls are never held */
  int holding;      /* the store thread's calls wait ... */
  int permits;      /* ... unless a permit lets one through */
  int inside;       /* store-thread calls waiting in the gate */
  int calls;        /* every fdatasync call */
  int thread_calls; /* those made on the store's thread */
  int fail_at;      /* this call (by calls) fails with EIO; 0 none */
  ino_t ino[MAX_FILES];
  off_t durable[MAX_FILES]; /* per file: its size at the last good sync */
  int nfiles;
} gate;

static gate g;
static store_sys gated;

static void record_durable(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return;
  }
  for (int i = 0; i < g.nfiles; ++i) {
    if (g.ino[i] == st.st_ino) {
      if (st.st_size > g.durable[i]) {
        g.durable[i] = st.st_size;
      }
      return;
    }
  }
  if (g.nfiles < MAX_FILES) {
    g.ino[g.nfiles] = st.st_ino;
    g.durable[g.nfiles++] = st.st_size;
  }
}

static int gate_sync(int fd) {
  int fail;
  pthread_mutex_lock(&g.lock);
  int call = ++g.calls;
  if (!pthread_equal(pthread_self(), g.owner)) {
    ++g.thread_calls;
    ++g.inside;
    pthread_cond_broadcast(&g.cond);
    while (g.holding && g.permits == 0) {
      pthread_cond_wait(&g.cond, &g.lock);
    }
    if (g.holding) {
      --g.permits;
    }
    --g.inside;
  }
  fail = call == g.fail_at;
  if (!fail) {
    record_durable(fd); /* what was written before the call is durable */
  }
  pthread_mutex_unlock(&g.lock);
  sched_yield(); /* let the two threads interleave */
  if (fail) {
    errno = EIO;
    return -1;
  }
  return 0;
}

static void gate_reset(void) {
  static int initialized;
  if (!initialized) {
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    initialized = 1;
  }
  pthread_mutex_lock(&g.lock);
  g.owner = pthread_self();
  g.holding = 0;
  g.permits = 0;
  g.inside = 0;
  g.calls = 0;
  g.thread_calls = 0;
  g.fail_at = 0;
  g.nfiles = 0;
  pthread_mutex_unlock(&g.lock);
  gated = *store_sys_default();
  gated.fdatasync = gate_sync;
  gated.fsync = gate_sync;
}

static void gate_hold(void) {
  pthread_mutex_lock(&g.lock);
  g.holding = 1;
  g.permits = 0;
  pthread_mutex_unlock(&g.lock);
}

/* gate_let lets |n| held calls through (those waiting or to come). */
static void gate_let(int n) {
  pthread_mutex_lock(&g.lock);
  g.permits += n;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
}

static void gate_open(void) {
  pthread_mutex_lock(&g.lock);
  g.holding = 0;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
}

/* gate_wait_inside waits until the store's thread waits in the gate; at
   most 30 s, a guard against a hang, not a timing check. */
static int gate_wait_inside(void) {
  struct timespec until;
  int rv = 0;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  pthread_mutex_lock(&g.lock);
  while (g.inside == 0 && rv == 0) {
    rv = pthread_cond_timedwait(&g.cond, &g.lock, &until);
  }
  int inside = g.inside > 0;
  pthread_mutex_unlock(&g.lock);
  return inside;
}

static int gate_get(const int *field) {
  pthread_mutex_lock(&g.lock);
  int v = *field;
  pthread_mutex_unlock(&g.lock);
  return v;
}

/* ---- a hub on an async file store --------------------------------------- */

typedef struct rig {
  char *dir;
  tern_store_file *store;
  tern_hub *hub;
  tu_events ev;
} rig;

static tern_store_file *open_store(const char *dir, int sync_thread,
                                   size_t segment_size) {
  tern_store_file_options o;
  tern_store_file *s = NULL;
  tern_store_file_options_default(&o);
  o.sync_thread = (uint32_t)sync_thread;
  if (segment_size) {
    o.segment_size = segment_size;
  }
  int rv = store_file_open_sys(&s, dir, &o, NULL, &gated);
  if (rv != 0) {
    fprintf(stderr, "store_async_test: open: %s\n",
            tern_store_file_error(NULL));
    abort();
  }
  return s;
}

/* wait_fd waits (at most 30 s: a hang guard, not a timing check) until
   the completion descriptor is readable. */
static int wait_fd(tern_store_file *s) {
  struct pollfd p;
  p.fd = tern_store_file_fd(s);
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 30000) == 1 && (p.revents & POLLIN) != 0;
}

static int fd_ready(tern_store_file *s) {
  struct pollfd p;
  p.fd = tern_store_file_fd(s);
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) == 1;
}

/* settle makes everything durable inline and reports it. */
static void settle(rig *r) {
  tern_hub_flush(r->hub);
  tern_store_file_methods()->sync(r->store);
  tern_store_file_complete(r->store, r->hub);
  tu_events_take(&r->ev, r->hub);
}

static void rig_up(rig *r, const char *tag, int sync_thread,
                   size_t segment_size) {
  memset(r, 0, sizeof(*r));
  gate_reset();
  r->dir = su_tmpdir(tag);
  r->store = open_store(r->dir, sync_thread, segment_size);
  tern_settings st = tu_settings();
  r->hub = tu_hub(&st);
  int rv = tern_hub_set_store(r->hub, tern_store_file_methods(), r->store, T0);
  if (rv != 0) {
    fprintf(stderr, "store_async_test: set_store: %s\n", tern_strerror(rv));
    abort();
  }
  settle(r);
  r->ev.n = 0;
  /* The thread is idle now (the inline sync paused it): count from here. */
  pthread_mutex_lock(&g.lock);
  g.calls = 0;
  g.thread_calls = 0;
  pthread_mutex_unlock(&g.lock);
}

static void rig_down(rig *r) {
  tern_hub_del(r->hub);
  tern_store_file_close(r->store);
  tu_events_free(&r->ev);
  su_rmtree(r->dir);
  free(r->dir);
}

static int pub(tern_hub *hub, const char *key, const char *id, int sync,
               tern_duration ttl, tern_tstamp now) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)id;
  d.idlen = strlen(id);
  d.payload = (const uint8_t *)id;
  d.payloadlen = strlen(id);
  d.ttl = ttl;
  d.flags = sync ? TERN_MSG_SYNC : 0;
  return tern_hub_publish(hub, (const uint8_t *)key, strlen(key), &d, now,
                          NULL);
}

/* persisted says whether a PERSISTED event for |id| with |reason| came. */
static int persisted(const tu_events *e, const char *id, int reason) {
  for (size_t i = 0; i < e->n; ++i) {
    if (e->ev[i].type == TERN_EV_PERSISTED && tu_event_id_is(&e->ev[i], id) &&
        e->ev[i].reason == reason) {
      return 1;
    }
  }
  return 0;
}

static uint64_t store_fsyncs(tern_store_file *s) {
  tern_store_file_stats st;
  tern_store_file_get_stats(s, &st, sizeof(st));
  return st.fsyncs;
}

/* ---- tests -------------------------------------------------------------- */

static void test_options(void) {
  char *dir = su_tmpdir("async-opt");
  tern_store_file *s;
  tern_store_file_options o;

  gate_reset();
  s = open_store(dir, 0, 0);
  CHECK_INT(tern_store_file_fd(s), -1, "options: no sync thread, no fd");
  CHECK_INT(tern_store_file_complete(s, NULL), TERN_ERR_INVALID,
            "options: complete wants a hub");
  tern_store_file_close(s);
  CHECK_INT(tern_store_file_fd(NULL), -1, "options: fd of NULL is -1");

  /* A caller built against version 1 of the options knows no sync_thread:
     what follows its struct is not read. */
  tern_store_file_options_default(&o);
  CHECK_INT(o.version, 2, "options: version 2");
  CHECK_INT(o.sync_thread, 0, "options: no sync thread by default");
  o.version = 1;
  o.sync_thread = 1;
  s = NULL;
  CHECK_INT(store_file_open_sys(&s, dir, &o, NULL, &gated), 0,
            "options: version 1 opens");
  CHECK_INT(tern_store_file_fd(s), -1,
            "options: version 1 has no sync thread");
  tern_store_file_close(s);

  o.version = 2;
  o.fsync = TERN_FSYNC_NEVER;
  s = NULL;
  CHECK_INT(store_file_open_sys(&s, dir, &o, NULL, &gated), 0,
            "options: NEVER with a sync thread opens");
  CHECK_INT(tern_store_file_fd(s), -1, "options: NEVER needs no thread");
  tern_store_file_close(s);

  s = open_store(dir, 1, 0);
  CHECK(tern_store_file_fd(s) >= 0, "options: a sync thread has an fd");
  CHECK(!fd_ready(s), "options: not readable with nothing done");
  tern_store_file_close(s);
  su_rmtree(dir);
  free(dir);
}

static void test_persisted_after_sync(void) {
  rig r;
  rig_up(&r, "async-persist", 1, 0);
  gate_hold();
  int owner_calls = gate_get(&g.calls) - gate_get(&g.thread_calls);
  CHECK_INT(pub(r.hub, "k", "a", 1, 0, T0), 0, "persist: publish SYNC");
  tern_hub_handle_expiry(r.hub, T0); /* flushes: append returns LATER */
  tu_events_take(&r.ev, r.hub);
  CHECK_INT(tu_events_count(&r.ev, TERN_EV_PERSISTED), 0,
            "persist: no PERSISTED when the flush returns");
  CHECK(gate_wait_inside(), "persist: the store's thread syncs");
  CHECK_INT(gate_get(&g.calls) - gate_get(&g.thread_calls), owner_calls,
            "persist: the loop's thread made no fdatasync");
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 0,
            "persist: nothing completes while the sync runs");
  tu_events_take(&r.ev, r.hub);
  CHECK_INT(tu_events_count(&r.ev, TERN_EV_PERSISTED), 0,
            "persist: no PERSISTED before the sync ends");
  gate_let(1);
  CHECK(wait_fd(r.store), "persist: the fd becomes readable");
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 1,
            "persist: one batch completes");
  CHECK(!fd_ready(r.store), "persist: complete clears the fd");
  tu_events_take(&r.ev, r.hub);
  CHECK(persisted(&r.ev, "a", 0), "persist: PERSISTED(a) after the sync");
  CHECK_INT(tu_events_count(&r.ev, TERN_EV_STORE_FAILED), 0,
            "persist: no failure");

  /* A batch without SYNC and nothing waiting completes at once. */
  tu_events_free(&r.ev);
  uint64_t fsyncs = store_fsyncs(r.store);
  CHECK_INT(pub(r.hub, "k", "b", 0, 0, T0), 0, "persist: publish ASYNC");
  CHECK_INT(tern_hub_flush(r.hub), 0, "persist: flush");
  CHECK(!fd_ready(r.store), "persist: an ASYNC batch completes inside append");
  CHECK(store_fsyncs(r.store) == fsyncs, "persist: and is not synced");
  gate_open();
  rig_down(&r);
}

static void test_group_commit(void) {
  rig r;
  rig_up(&r, "async-group", 1, 0);
  uint64_t fsyncs = store_fsyncs(r.store);
  uint64_t batches = tu_stats(r.hub).store_batches;
  gate_hold();
  pub(r.hub, "k", "a", 1, 0, T0);
  tern_hub_flush(r.hub);
  CHECK(gate_wait_inside(), "group: a's sync runs");
  pub(r.hub, "k", "b", 1, 0, T0);
  tern_hub_flush(r.hub);
  pub(r.hub, "k", "x", 0, 0, T0); /* no SYNC, but behind b */
  tern_hub_flush(r.hub);
  pub(r.hub, "k", "c", 1, 0, T0);
  tern_hub_flush(r.hub);
  pub(r.hub, "k", "d", 1, 0, T0);
  tern_hub_flush(r.hub);
  CHECK_INT(tu_stats(r.hub).store_batches - batches, 5,
            "group: five batches");
  gate_let(1);
  CHECK(wait_fd(r.store), "group: the first sync ends");
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 1,
            "group: it covers the first batch only");
  tu_events_take(&r.ev, r.hub);
  CHECK(persisted(&r.ev, "a", 0) && !persisted(&r.ev, "b", 0),
        "group: PERSISTED(a), not b");
  CHECK(gate_wait_inside(), "group: one sync for the four others");
  gate_let(1);
  CHECK(wait_fd(r.store), "group: the second sync ends");
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 4,
            "group: it covers the four batches that came meanwhile");
  tu_events_take(&r.ev, r.hub);
  CHECK(persisted(&r.ev, "b", 0) && persisted(&r.ev, "c", 0) &&
            persisted(&r.ev, "d", 0),
        "group: PERSISTED(b, c, d)");
  CHECK_INT(tu_events_count(&r.ev, TERN_EV_PERSISTED), 4,
            "group: four PERSISTED");
  CHECK_INT(gate_get(&g.thread_calls), 2, "group: two fdatasyncs, thread");
  CHECK_INT(store_fsyncs(r.store) - fsyncs, 2,
            "group: two fsyncs in the stats");
  gate_open();
  rig_down(&r);
}

static void test_sync_failure(void) {
  rig r;
  rig_up(&r, "async-fail", 1, 0);
  gate_hold();
  pub(r.hub, "k", "a", 1, 0, T0);
  tern_hub_flush(r.hub);
  CHECK(gate_wait_inside(), "fail: a's sync runs");
  pub(r.hub, "k", "x", 0, 0, T0);
  tern_hub_flush(r.hub);
  pub(r.hub, "k", "b", 1, 0, T0);
  tern_hub_flush(r.hub);
  pthread_mutex_lock(&g.lock);
  g.fail_at = g.calls; /* the call waiting in the gate fails */
  pthread_mutex_unlock(&g.lock);
  gate_let(1);
  CHECK(wait_fd(r.store), "fail: the fd becomes readable");
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 3,
            "fail: every waiting batch completes");
  tu_events_take(&r.ev, r.hub);
  CHECK(persisted(&r.ev, "a", TERN_ERR_STORE) &&
            persisted(&r.ev, "b", TERN_ERR_STORE),
        "fail: PERSISTED carries the error for a and b");
  CHECK_INT(tu_events_count(&r.ev, TERN_EV_PERSISTED), 2,
            "fail: no PERSISTED without the error");
  CHECK(tu_events_count(&r.ev, TERN_EV_STORE_FAILED) >= 1,
        "fail: STORE_FAILED");
  const char *err = tern_store_file_error(r.store);
  CHECK(strstr(err, "fdatasync") != NULL && strstr(err, "reopened") != NULL,
        "fail: the error says fdatasync and broken (%s)", err);
  CHECK_INT(gate_get(&g.thread_calls), 1, "fail: no sync after the failure");

  /* The store is broken: the next batch fails at once. */
  tu_events_free(&r.ev);
  pub(r.hub, "k", "c", 1, 0, T0);
  CHECK_INT(tern_hub_flush(r.hub), TERN_ERR_STORE,
            "fail: the next flush fails");
  tu_events_take(&r.ev, r.hub);
  CHECK(persisted(&r.ev, "c", TERN_ERR_STORE), "fail: PERSISTED(c) error");
  /* Ids of failed publishes leave the dedup window: they can be retried. */
  CHECK(pub(r.hub, "k", "a", 0, 0, T0) != TERN_ERR_DUPLICATE,
        "fail: a can be published again");
  gate_open();
  rig_down(&r);
}

/* Many batches behind one sync: the queue grows, one more sync covers
   them all, and they complete in order. */
static void test_many_waiting(void) {
  rig r;
  char id[16];
  rig_up(&r, "async-many", 1, 0);
  gate_hold();
  pub(r.hub, "k", "first", 1, 0, T0);
  tern_hub_flush(r.hub);
  CHECK(gate_wait_inside(), "many: the first sync runs");
  for (int i = 0; i < 100; ++i) {
    snprintf(id, sizeof(id), "m%03d", i);
    pub(r.hub, "k", id, i % 3 != 0, 0, T0);
    tern_hub_flush(r.hub);
  }
  gate_let(1);
  CHECK(wait_fd(r.store), "many: the first sync ends");
  /* m000 has no SYNC: it completes with the batch before it. */
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 2,
            "many: it covers one batch, and the next needs no sync");
  CHECK(gate_wait_inside(), "many: one sync for the rest");
  gate_let(1);
  CHECK(wait_fd(r.store), "many: it ends");
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 99,
            "many: the 99 others complete together");
  tu_events_take(&r.ev, r.hub);
  int in_order = tu_events_count(&r.ev, TERN_EV_PERSISTED) == 67;
  int next = 1;
  for (size_t i = 0; i < r.ev.n && in_order; ++i) {
    if (r.ev.ev[i].type != TERN_EV_PERSISTED ||
        tu_event_id_is(&r.ev.ev[i], "first")) {
      continue;
    }
    while (next % 3 == 0) {
      ++next;
    }
    snprintf(id, sizeof(id), "m%03d", next++);
    in_order = tu_event_id_is(&r.ev.ev[i], id) && r.ev.ev[i].reason == 0;
  }
  CHECK(in_order, "many: 67 PERSISTED, in publish order");
  CHECK_INT(gate_get(&g.thread_calls), 2, "many: two fdatasyncs");
  gate_open();
  rig_down(&r);
}

/* TERN_FSYNC_ALWAYS syncs every batch, SYNC or not: on the thread. */
static void test_always(void) {
  rig r;
  memset(&r, 0, sizeof(r));
  gate_reset();
  r.dir = su_tmpdir("async-always");
  tern_store_file_options o;
  tern_store_file_options_default(&o);
  o.fsync = TERN_FSYNC_ALWAYS;
  o.sync_thread = 1;
  CHECK_INT(store_file_open_sys(&r.store, r.dir, &o, NULL, &gated), 0,
            "always: opens");
  tern_settings st = tu_settings();
  r.hub = tu_hub(&st);
  tern_hub_set_store(r.hub, tern_store_file_methods(), r.store, T0);
  settle(&r);
  pthread_mutex_lock(&g.lock);
  g.thread_calls = 0;
  pthread_mutex_unlock(&g.lock);
  uint64_t batches = tu_stats(r.hub).store_batches;
  pub(r.hub, "k", "a", 0, 0, T0);
  CHECK_INT(tern_hub_flush(r.hub), 0, "always: flush");
  CHECK(wait_fd(r.store), "always: an ASYNC batch is synced too");
  CHECK_INT(tern_store_file_complete(r.store, r.hub), 1,
            "always: and completes after its sync");
  CHECK_INT(tu_stats(r.hub).store_batches - batches, 1, "always: one batch");
  CHECK_INT(gate_get(&g.thread_calls), 1, "always: on the thread");
  rig_down(&r);
}

/* Every allocation of an open with a sync thread can fail: the open then
   fails cleanly and frees everything. */
static void test_open_nomem(void) {
  char *dir = su_tmpdir("async-nomem");
  int ok = 1, opened = 0;
  gate_reset();
  for (long n = 1; n < 200 && !opened; ++n) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    a.fail_at = n;
    tern_mem mem = tu_alloc_mem(&a);
    tern_store_file_options o;
    tern_store_file *s = NULL;
    tern_store_file_options_default(&o);
    o.sync_thread = 1;
    int rv = store_file_open_sys(&s, dir, &o, &mem, &gated);
    if (rv == 0) {
      opened = a.failed == 0;
      tern_store_file_close(s);
    } else if (rv != TERN_ERR_NOMEM) {
      ok = 0;
    }
    if (a.outstanding != 0 || tu_alloc_finish(&a) != 0) {
      ok = 0;
    }
  }
  CHECK(ok && opened, "nomem: every failed allocation fails the open "
                      "cleanly, and it opens in the end");
  su_rmtree(dir);
  free(dir);
}

/* Close while a sync runs and a batch waits behind it: close lets the sync
   end, joins the thread and makes the rest durable. */
static void test_close_pending(void) {
  rig r;
  rig_up(&r, "async-close", 1, 0);
  gate_hold();
  pub(r.hub, "k", "a", 1, 0, T0);
  tern_hub_flush(r.hub);
  CHECK(gate_wait_inside(), "close: a's sync runs");
  pub(r.hub, "k", "b", 1, 0, T0);
  pub(r.hub, "k", "c", 0, 0, T0);
  tern_hub_del(r.hub); /* flushes b and c: LATER */
  r.hub = NULL;
  gate_open();
  tern_store_file_close(r.store);
  off_t size = su_file_size(su_path(r.dir, "000001.log"));
  pthread_mutex_lock(&g.lock);
  off_t durable = g.nfiles > 0 ? g.durable[g.nfiles - 1] : -1;
  int inode_ok = 0;
  struct stat st;
  if (stat(su_path(r.dir, "000001.log"), &st) == 0) {
    for (int i = 0; i < g.nfiles; ++i) {
      if (g.ino[i] == st.st_ino) {
        inode_ok = 1;
        durable = g.durable[i];
      }
    }
  }
  pthread_mutex_unlock(&g.lock);
  CHECK(inode_ok && durable == size,
        "close: everything written was synced (%lld of %lld bytes)",
        (long long)durable, (long long)size);

  gate_reset();
  r.store = open_store(r.dir, 1, 0);
  tern_settings s = tu_settings();
  r.hub = tu_hub(&s);
  CHECK_INT(tern_hub_set_store(r.hub, tern_store_file_methods(), r.store,
                               T0 + SEC(1)),
            0, "close: reopens");
  CHECK_INT(tu_info(r.hub, "k").pending, 3, "close: a, b and c are there");
  rig_down(&r);
}

/* ---- power loss --------------------------------------------------------- */

/* snapshot copies the segment files of |from| into |to|, each cut to the
   size the gate saw durable: what a power loss would leave. */
static void snapshot(const char *from, const char *to) {
  DIR *d = opendir(from);
  struct dirent *e;
  if (d == NULL || mkdir(to, 0777) != 0) {
    su_die("snapshot");
  }
  pthread_mutex_lock(&g.lock);
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    struct stat st;
    off_t keep = 0;
    if (len < 4 || strcmp(e->d_name + len - 4, ".log") != 0) {
      continue;
    }
    const char *src = su_path(from, e->d_name);
    if (stat(src, &st) != 0) {
      continue;
    }
    for (int i = 0; i < g.nfiles; ++i) {
      if (g.ino[i] == st.st_ino) {
        keep = g.durable[i];
      }
    }
    size_t n;
    uint8_t *p = su_read_file(src, &n);
    if (p == NULL) {
      continue;
    }
    su_write_file(su_path(to, e->d_name), p,
                  (size_t)keep < n ? (size_t)keep : n);
    free(p);
  }
  pthread_mutex_unlock(&g.lock);
  closedir(d);
}

static uint64_t next_rand(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* One run: random publishes (some SYNC, some expiring so that records die
   and the store compacts), flushes and completions, with small segments so
   the log rolls while syncs run; at a random step the power goes. */
static int power_loss_run(uint64_t seed, char *why, size_t whylen) {
  rig r;
  uint64_t x = seed * 2654435761u + 1;
  char id[32];
  char (*confirmed)[32] = NULL;
  size_t nconfirmed = 0, cap = 0;
  int ok = 1;
  tern_tstamp now = T0;
  int steps = 100 + (int)(next_rand(&x) % 200);
  int cut = (int)(next_rand(&x) % (uint64_t)steps);

  rig_up(&r, "async-power", 1, 4096);
  for (int i = 0; i < cut; ++i) {
    int sync = next_rand(&x) % 3 == 0;
    tern_duration ttl = next_rand(&x) % 2 ? MS(5) : SEC(3600);
    snprintf(id, sizeof(id), "m%d", i);
    pub(r.hub, "k", id, sync, ttl, now);
    if (next_rand(&x) % 2) {
      now += MS(1);
      tern_hub_handle_expiry(r.hub, now);
    }
    if (next_rand(&x) % 2) {
      tern_store_file_complete(r.store, r.hub);
    }
    tu_events_take(&r.ev, r.hub);
  }
  tern_store_file_complete(r.store, r.hub);
  tu_events_take(&r.ev, r.hub);
  for (size_t i = 0; i < r.ev.n; ++i) {
    const tu_event *e = &r.ev.ev[i];
    if (e->type == TERN_EV_PERSISTED && e->reason == 0) {
      if (nconfirmed == cap) {
        cap = cap ? cap * 2 : 64;
        confirmed = realloc(confirmed, cap * sizeof(*confirmed));
      }
      snprintf(confirmed[nconfirmed++], 32, "%.*s", (int)e->idlen,
               (const char *)e->id);
    }
  }
  char *copy = malloc(strlen(r.dir) + 8);
  sprintf(copy, "%s.cut", r.dir);
  snapshot(r.dir, copy); /* the power goes */
  rig_down(&r);

  gate_reset();
  tern_store_file *s = open_store(copy, 0, 4096);
  tern_settings st = tu_settings();
  tern_hub *hub = tu_hub(&st);
  int rv = tern_hub_set_store(hub, tern_store_file_methods(), s, now);
  if (rv != 0) {
    snprintf(why, whylen, "seed %llu: reopen: %s", (unsigned long long)seed,
             tern_strerror(rv));
    ok = 0;
  }
  for (size_t i = 0; ok && i < nconfirmed; ++i) {
    /* A confirmed message's dedup id was stored with it; expired ones
       excepted, it must be known. */
    tern_msg_desc d;
    memset(&d, 0, sizeof(d));
    d.id = (const uint8_t *)confirmed[i];
    d.idlen = strlen(confirmed[i]);
    rv = tern_hub_publish(hub, (const uint8_t *)"k", 1, &d, now, NULL);
    if (rv != TERN_ERR_DUPLICATE) {
      snprintf(why, whylen, "seed %llu: confirmed %s lost (cut at %d)",
               (unsigned long long)seed, confirmed[i], cut);
      ok = 0;
    }
  }
  tern_hub_del(hub);
  tern_store_file_close(s);
  su_rmtree(copy);
  free(copy);
  free(confirmed);
  return ok;
}

static void test_power_loss(void) {
  char why[256] = "";
  int failed = 0;
  for (uint64_t seed = 1; seed <= 40 && !failed; ++seed) {
    if (!power_loss_run(seed, why, sizeof(why))) {
      failed = 1;
    }
  }
  CHECK(!failed, "power: every confirmed message survives (%s)", why);
}

int main(void) {
  test_options();
  test_persisted_after_sync();
  test_group_commit();
  test_sync_failure();
  test_many_waiting();
  test_always();
  test_open_nomem();
  test_close_pending();
  test_power_loss();
  return tap_done();
}
