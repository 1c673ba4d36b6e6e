/*
 * Tests of the versioning rules (tern.h, "Versioned structs"):
 *  - every field of libtern 0.1's structs is where 0.1 programs put it
 *    (tests/abi/v1_layout.c compiles the frozen 0.1 header);
 *  - the library's layout table (lib/base/layout.c) says 0.1's length for
 *    V1 and covers today's whole struct for the newest version, so a field
 *    appended without a new version is caught here;
 *  - the *_versioned functions write no byte past the caller's layout and
 *    read none past it, refuse unknown versions, and the 0.1 names are
 *    still functions with the V1 meaning;
 *  - statistics zero what the library does not know;
 *  - tern_version_info and TERN_VERSION_CHECK.
 */
#include <stdalign.h>
#include <stdlib.h>

#include "abi/v1_layout.h"
#include "base/layout.h"
#include "memstore.h"
#include "tap.h"
#include "testutil.h"

/* Today's offsets of the 0.1 fields, from the same list. */
#define STRUCT(type) {#type, NULL, 0, sizeof(type)},
#define FIELD(type, field)                                                   \
  {#type, #field, offsetof(type, field), sizeof(((type *)0)->field)},
static const v1_item today[] = {
#include "abi/v1_fields.h"
};
#undef STRUCT
#undef FIELD

/* Structs whose stride or layout callers rely on: they never change. */
static int frozen(const char *type) {
  return strcmp(type, "tern_attr") == 0 ||
         strcmp(type, "tern_store_record") == 0 ||
         strcmp(type, "tern_client_attr") == 0 ||
         strcmp(type, "tern_mem") == 0;
}

static void test_v1_fields_in_place(void) {
  size_t n;
  const v1_item *old = v1_layout(&n);
  CHECK_INT(n, sizeof(today) / sizeof(today[0]), "one list, both headers");
  int moved = 0, shrunk = 0, grew_frozen = 0;
  for (size_t i = 0; i < n && i < sizeof(today) / sizeof(today[0]); ++i) {
    const v1_item *a = &old[i], *b = &today[i];
    if (!a->field) {
      if (b->size < a->size) {
        printf("#   %s shrank: %zu -> %zu\n", a->type, a->size, b->size);
        ++shrunk;
      }
      if (frozen(a->type) && b->size != a->size) {
        printf("#   frozen %s changed size\n", a->type);
        ++grew_frozen;
      }
    } else if (a->offset != b->offset || a->size != b->size) {
      printf("#   %s.%s moved: offset %zu size %zu -> offset %zu size %zu\n",
             a->type, a->field, a->offset, a->size, b->offset, b->size);
      ++moved;
    }
  }
  CHECK_INT(moved, 0, "every 0.1 field keeps its offset and size");
  CHECK_INT(shrunk, 0, "no struct shrank");
  CHECK_INT(grew_frozen, 0, "frozen structs keep their size");
}

/* The end of the last 0.1 field of |type| and its 0.1 sizeof. */
static size_t v1_end(const char *type, size_t *v1_size) {
  size_t n, end = 0;
  const v1_item *old = v1_layout(&n);
  for (size_t i = 0; i < n; ++i) {
    if (strcmp(old[i].type, type) != 0) {
      continue;
    }
    if (!old[i].field) {
      *v1_size = old[i].size;
    } else if (old[i].offset + old[i].size > end) {
      end = old[i].offset + old[i].size;
    }
  }
  return end;
}

#define CHECK_LAYOUT(type, fn, v1, latest)                                    \
  do {                                                                        \
    size_t v1_size = 0;                                                       \
    size_t end = v1_end(#type, &v1_size);                                     \
    CHECK(end > 0 && fn(v1) == end && end <= v1_size,                         \
          #type ": layout V1 is 0.1's (%zu bytes of %zu)", fn(v1), v1_size);  \
    CHECK(fn(latest) <= sizeof(type) &&                                       \
              sizeof(type) - fn(latest) < alignof(type),                      \
          #type ": the newest layout covers the struct (%zu of %zu: a field " \
                "appended without a new version?)",                           \
          fn(latest), sizeof(type));                                          \
    CHECK(fn(0) == 0 && fn((latest) + 1) == 0,                                \
          #type ": versions 0 and newest + 1 are unknown");                   \
  } while (0)

static void test_layout_table(void) {
  CHECK_LAYOUT(tern_settings, layout_settings, TERN_SETTINGS_V1,
               TERN_SETTINGS_VERSION);
  CHECK_LAYOUT(tern_client_settings, layout_client_settings,
               TERN_CLIENT_SETTINGS_V1, TERN_CLIENT_SETTINGS_VERSION);
  CHECK_LAYOUT(tern_msg_desc, layout_msg_desc, TERN_MSG_DESC_V1,
               TERN_MSG_DESC_VERSION);
  CHECK_LAYOUT(tern_publish_result, layout_publish_result,
               TERN_PUBLISH_RESULT_V1, TERN_PUBLISH_RESULT_VERSION);
  CHECK_LAYOUT(tern_event, layout_event, TERN_EVENT_V1, TERN_EVENT_VERSION);
  CHECK_LAYOUT(tern_client_event, layout_client_event, TERN_CLIENT_EVENT_V1,
               TERN_CLIENT_EVENT_VERSION);
  CHECK_LAYOUT(tern_store_methods, layout_store_methods,
               TERN_STORE_METHODS_V1, TERN_STORE_METHODS_VERSION);
  CHECK_LAYOUT(tern_store_file_options, layout_store_file_options,
               TERN_STORE_FILE_OPTIONS_V1, TERN_STORE_FILE_OPTIONS_VERSION);
  CHECK(layout_policy(TERN_POLICY_VERSION) == sizeof(tern_policy),
        "tern_policy: the newest layout covers the struct");
  CHECK(layout_msg_desc(TERN_MSG_DESC_V3) > layout_msg_desc(TERN_MSG_DESC_V2),
        "tern_msg_desc: V3 appends |fallback|");
  /* Every version between V1 and the newest is known and grows. */
  CHECK(layout_msg_desc(TERN_MSG_DESC_V2) > layout_msg_desc(TERN_MSG_DESC_V1),
        "tern_msg_desc V2 appends to V1");
  CHECK(layout_event(TERN_EVENT_V2) > layout_event(TERN_EVENT_V1),
        "tern_event V2 appends to V1");
}

/* ---- the defaults functions ---------------------------------------------- */

#define PAD 0xA5

/* written_past: bytes of |p| from |from| to |to| that are no longer PAD. */
static size_t written_past(const void *p, size_t from, size_t to) {
  const uint8_t *b = p;
  size_t n = 0;
  for (size_t i = from; i < to; ++i) {
    n += b[i] != PAD;
  }
  return n;
}

static void test_defaults(void) {
  /* A V1 caller's struct is the V1 prefix of ours: bytes past it stay. */
  struct {
    tern_settings s;
    uint8_t guard[32];
  } g;
  memset(&g, PAD, sizeof(g));
  tern_settings_default_versioned(TERN_SETTINGS_V1, &g.s);
  size_t v1 = layout_settings(TERN_SETTINGS_V1);
  CHECK_INT(written_past(&g, v1, sizeof(g)), 0,
            "tern_settings_default_versioned(V1) writes V1's bytes only");
  CHECK(g.s.version == TERN_SETTINGS_V1 && g.s.max_conns == 10,
        "... and fills them");
  memset(&g, PAD, sizeof(g));
  tern_settings_default_versioned(TERN_SETTINGS_VERSION + 1, &g.s);
  CHECK(g.s.version == 0 &&
            written_past(&g, sizeof(g.s.version), sizeof(g)) == 0,
        "an unknown version sets version 0 only");
  tern_hub *hub = NULL;
  CHECK_INT(tern_hub_new(&hub, &g.s, NULL), TERN_ERR_INVALID,
            "tern_hub_new refuses version 0");
  g.s.version = TERN_SETTINGS_VERSION + 1;
  CHECK_INT(tern_hub_new(&hub, &g.s, NULL), TERN_ERR_INVALID,
            "tern_hub_new refuses a newer version");

  /* The 0.1 name, called as a function, is the V1 entry point. */
  memset(&g, PAD, sizeof(g));
  (tern_settings_default)(&g.s);
  CHECK(g.s.version == TERN_SETTINGS_V1 &&
            written_past(&g, v1, sizeof(g)) == 0,
        "the function tern_settings_default is V1");
  memset(&g, PAD, sizeof(g));
  tern_settings_default(&g.s);
  CHECK(g.s.version == TERN_SETTINGS_VERSION && g.s.max_events == 65536,
        "the macro tern_settings_default is this header's version");
  g.s.seed = 1;
  CHECK_INT(tern_hub_new(&hub, &g.s, NULL), 0, "tern_hub_new takes it");
  tern_hub_del(hub);

  struct {
    tern_client_settings s;
    uint8_t guard[32];
  } c;
  memset(&c, PAD, sizeof(c));
  (tern_client_settings_default)(&c.s);
  CHECK(c.s.version == TERN_CLIENT_SETTINGS_V1 &&
            written_past(&c, layout_client_settings(TERN_CLIENT_SETTINGS_V1),
                         sizeof(c)) == 0,
        "tern_client_settings_default (the function) is V1");
  tern_client_settings_default_versioned(0, &c.s);
  CHECK_INT(c.s.version, 0, "client: an unknown version sets version 0");
  tern_client *cl = NULL;
  CHECK_INT(tern_client_new(&cl, (const uint8_t *)"k", 1, NULL, 0, &c.s, NULL,
                            T0),
            TERN_ERR_INVALID, "tern_client_new refuses it");
  tern_client_settings_default(&c.s);
  CHECK_INT(tern_client_new(&cl, (const uint8_t *)"k", 1, NULL, 0, &c.s, NULL,
                            T0),
            0, "... and takes the header's version");
  tern_client_del(cl);

  struct {
    tern_store_file_options s;
    uint8_t guard[32];
  } o;
  memset(&o, PAD, sizeof(o));
  (tern_store_file_options_default)(&o.s);
  CHECK(o.s.version == TERN_STORE_FILE_OPTIONS_V1 &&
            written_past(&o,
                         layout_store_file_options(TERN_STORE_FILE_OPTIONS_V1),
                         sizeof(o)) == 0,
        "tern_store_file_options_default (the function) is V1");
  tern_store_file_options_default_versioned(99, &o.s);
  tern_store_file *fs = NULL;
  CHECK_INT(tern_store_file_open(&fs, "/nonexistent-tern-dir", &o.s, NULL),
            TERN_ERR_INVALID, "tern_store_file_open refuses version 0");
  tern_store_file_options_default_versioned(1, NULL); /* no crash */

  const tern_store_methods *m = tern_store_file_methods();
  CHECK(m && m->version == TERN_STORE_METHODS_VERSION,
        "tern_store_file_methods() is this header's layout");
  m = (tern_store_file_methods)();
  CHECK(m && m->version == TERN_STORE_METHODS_V1,
        "the function tern_store_file_methods is V1");
  CHECK(tern_store_file_methods_versioned(0) == NULL &&
            tern_store_file_methods_versioned(TERN_STORE_METHODS_VERSION + 1) ==
                NULL,
        "unknown methods versions get NULL");
}

/* ---- publish and events -------------------------------------------------- */

static void test_publish_and_events(void) {
  tern_settings s = tu_settings();
  s.trace = 1;
  tern_hub *hub = tu_hub(&s);
  /* A V1 descriptor followed by bytes that would be a cookie in V2: the
     library must not read them. */
  struct {
    tern_msg_desc d;
    uint8_t guard[32];
  } d;
  memset(&d, PAD, sizeof(d));
  memset(&d.d, 0, layout_msg_desc(TERN_MSG_DESC_V1));
  d.d.payload = (const uint8_t *)"p";
  d.d.payloadlen = 1;
  struct {
    tern_publish_result r;
    uint8_t guard[32];
  } r;
  memset(&r, PAD, sizeof(r));
  CHECK_INT(tern_hub_publish_versioned(hub, (const uint8_t *)"k", 1,
                                       TERN_MSG_DESC_V1, &d.d, T0,
                                       TERN_PUBLISH_RESULT_V1, &r.r),
            0, "publish with a V1 descriptor");
  CHECK_INT(written_past(&r, layout_publish_result(TERN_PUBLISH_RESULT_V1),
                         sizeof(r)),
            0, "the V1 result gets V1's bytes only");
  CHECK(r.r.outcome == TERN_PUBLISH_QUEUED && r.r.idlen > 0,
        "the result is filled");
  tern_event ev;
  memset(&ev, PAD, sizeof(ev));
  CHECK(tern_hub_next_event(hub, &ev) == 1 && ev.type == TERN_EV_ACCEPTED,
        "ACCEPTED");
  CHECK(ev.cookie == 0, "a V1 descriptor means cookie 0 (the bytes past it "
                        "are not read)");

  CHECK_INT(tern_hub_publish_versioned(hub, (const uint8_t *)"k", 1, 0, &d.d,
                                       T0, TERN_PUBLISH_RESULT_VERSION, NULL),
            TERN_ERR_INVALID, "an unknown descriptor version is refused");
  CHECK_INT(tern_hub_publish_versioned(hub, (const uint8_t *)"k", 1,
                                       TERN_MSG_DESC_VERSION + 1, &d.d, T0,
                                       TERN_PUBLISH_RESULT_VERSION, NULL),
            TERN_ERR_INVALID, "so is a newer one");
  CHECK_INT(tern_hub_publish_versioned(hub, (const uint8_t *)"k", 1,
                                       TERN_MSG_DESC_V1, &d.d, T0, 7, NULL),
            TERN_ERR_INVALID, "and an unknown result version");
  CHECK_INT(tu_stats(hub).published, 1, "refused calls publish nothing");

  /* The 0.1 entry point reads V1 descriptors too. */
  d.d.flags = TERN_MSG_TRACE;
  CHECK_INT((tern_hub_publish)(hub, (const uint8_t *)"k", 1, &d.d, T0, NULL), 0,
            "the function tern_hub_publish");
  struct {
    tern_event e;
    uint8_t guard[32];
  } g;
  memset(&g, PAD, sizeof(g));
  CHECK(tern_hub_next_event_versioned(hub, TERN_EVENT_V1, &g.e) == 1 &&
            g.e.type == TERN_EV_ACCEPTED,
        "a V1 event");
  CHECK_INT(written_past(&g, layout_event(TERN_EVENT_V1), sizeof(g)), 0,
            "tern_hub_next_event_versioned(V1) writes V1's bytes only");
  CHECK_INT(tern_hub_next_event_versioned(hub, 0, &g.e), TERN_ERR_INVALID,
            "an unknown event version is refused");
  CHECK_INT(tern_hub_next_event_versioned(hub, TERN_EVENT_VERSION + 1, &g.e),
            TERN_ERR_INVALID, "so is a newer one");
  CHECK_INT((tern_hub_next_event)(hub, &g.e), 0,
            "the function tern_hub_next_event: queue empty");

  /* statistics: bytes past what the library knows are zeroed */
  struct {
    tern_stats st;
    uint8_t more[24];
  } st;
  memset(&st, PAD, sizeof(st));
  tern_hub_get_stats(hub, &st.st, sizeof(st));
  CHECK(st.st.published == 2 && st.more[0] == 0 && st.more[23] == 0,
        "tern_hub_get_stats zeroes past the statistics it knows");
  memset(&st, PAD, sizeof(st));
  tern_hub_get_stats(hub, &st.st, 8);
  CHECK_INT(written_past(&st, 8, sizeof(st)), 0,
            "and writes exactly |size| bytes");
  tern_hub_del(hub);
}

static void test_client_event(void) {
  tern_client *cl = NULL;
  if (tern_client_new(&cl, (const uint8_t *)"k", 1, NULL, 0, NULL, NULL,
                      T0) != 0) {
    CHECK(0, "client");
    return;
  }
  struct {
    tern_client_event e;
    uint8_t guard[32];
  } g;
  memset(&g, PAD, sizeof(g));
  CHECK_INT(tern_client_next_event_versioned(cl, 0, &g.e), TERN_ERR_INVALID,
            "an unknown client event version is refused");
  CHECK(tern_client_next_event_versioned(cl, TERN_CLIENT_EVENT_V1, &g.e) == 1 &&
            g.e.type == TERN_CLIENT_EV_CONNECT,
        "a V1 client event");
  CHECK_INT(written_past(&g, layout_client_event(TERN_CLIENT_EVENT_V1),
                         sizeof(g)),
            0, "V1's bytes only");
  CHECK_INT((tern_client_next_event)(cl, &g.e), 0,
            "the function tern_client_next_event: none left");
  struct {
    tern_client_stats st;
    uint8_t more[16];
  } st;
  memset(&st, PAD, sizeof(st));
  tern_client_get_stats(cl, &st.st, sizeof(st));
  CHECK(st.more[0] == 0 && st.more[15] == 0,
        "tern_client_get_stats zeroes past what it knows");
  tern_client_del(cl);
}

static void test_store_methods(void) {
  tern_hub *hub = tu_hub(NULL);
  memstore ms;
  memset(&ms, 0, sizeof(ms));
  tern_store_methods m = memstore_methods;
  m.version = 0;
  CHECK_INT(tern_hub_set_store(hub, &m, &ms, T0), TERN_ERR_INVALID,
            "tern_hub_set_store refuses methods version 0");
  m.version = TERN_STORE_METHODS_VERSION + 1;
  CHECK_INT(tern_hub_set_store(hub, &m, &ms, T0), TERN_ERR_INVALID,
            "and a newer version");
  m.version = TERN_STORE_METHODS_V1;
  CHECK_INT(tern_hub_set_store(hub, &m, &ms, T0), 0, "and takes V1");
  tern_hub_del(hub);
  memstore_free(&ms);
}

static void test_version(void) {
  CHECK_INT(tern_version_info(0), TERN_VERSION_NUM,
            "tern_version_info(0) is the library's version");
  CHECK_INT(tern_version_info(TERN_VERSION_NUM), TERN_VERSION_NUM,
            "at least this header's version");
  CHECK_INT(tern_version_info(TERN_VERSION_NUM + 1), 0,
            "0 when asked for a newer one");
  CHECK_INT(tern_version_info(0x010000), 0, "0 for 1.0.0");
  char num[32];
  snprintf(num, sizeof(num), "%u.%u.%u", (unsigned)(TERN_VERSION_NUM >> 16),
           (unsigned)(TERN_VERSION_NUM >> 8 & 0xff),
           (unsigned)(TERN_VERSION_NUM & 0xff));
  CHECK(strcmp(tern_version(), TERN_VERSION) == 0 &&
            strcmp(num, TERN_VERSION) == 0,
        "TERN_VERSION, TERN_VERSION_NUM and tern_version agree");
  /* The macro in #if, on this header's version (0.3.0). */
#if TERN_VERSION_CHECK(0, 3, 0) && !TERN_VERSION_CHECK(0, 3, 1) &&         \
    !TERN_VERSION_CHECK(1, 0, 0) && TERN_VERSION_CHECK(0, 1, 9)
  int in_if = 1;
#else
  int in_if = 0;
#endif
  CHECK(in_if, "TERN_VERSION_CHECK compares in #if");
}

int main(void) {
  test_v1_fields_in_place();
  test_layout_table();
  test_defaults();
  test_publish_and_events();
  test_client_event();
  test_store_methods();
  test_version();
  return tap_done();
}
