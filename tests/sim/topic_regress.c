/*
 * Topic bugs found by the simulator (--topics), each cut down to the few
 * API calls that show it (TAP, suite 'sim').  Every case names the seed
 * that found it; `build/tests/sim/sim --seed N --verbose --topics`
 * replays the original.
 */
#include <stdio.h>
#include <string.h>

#include "../tap.h"
#include "../testutil.h"

static tern_msg_desc tdesc(const char *id, const char *payload,
                           tern_attr *attrs, size_t nattrs) {
  tern_msg_desc d;
  memset(&d, 0, sizeof(d));
  d.id = (const uint8_t *)id;
  d.idlen = strlen(id);
  d.priority = TERN_PRIO_NORMAL;
  d.payload = (const uint8_t *)payload;
  d.payloadlen = strlen(payload);
  d.attrs = attrs;
  d.nattrs = nattrs;
  return d;
}

/* Every connection whose tern_conn_want_write says yes is one
   tern_hub_next_ready returns (the host writes only those). */
static int ready_covers(tern_hub *hub, tern_conn *c) {
  int want = tern_conn_want_write(c), seen = 0;
  tern_conn *r;
  while ((r = tern_hub_next_ready(hub))) {
    seen |= r == c;
  }
  return !want || seen;
}

/*
 * Seed 1 (--topics): a topic message its filter keeps from a member left
 * the member's connection wanting to write, but tern_hub_next_ready never
 * returned it.
 */
static void test_filtered_ready(void) {
  tern_settings s = tu_settings();
  tern_hub *hub = tu_hub(&s);
  tu_out o;
  tu_out_init(&o);
  tern_topic *t = NULL;
  CHECK_INT(tern_hub_create_topic(hub, "trade.usd", NULL, T0, &t), 0,
            "topic created");
  tern_conn *c = tu_connect(hub, "k", T0, &o);
  while (tern_hub_next_ready(hub)) {
  }
  CHECK_INT(tern_hub_subscribe(hub, (const uint8_t *)"k", 1, "trade.*",
                               "price > 152", T0, NULL),
            1, "subscribed with a filter");
  tern_attr a = {"price", "10"};
  tern_msg_desc d = tdesc("t1", "x", &a, 1);
  CHECK_INT(tern_topic_publish(t, &d, T0, NULL), 0, "published");
  CHECK(ready_covers(hub, c),
        "a connection that wants to write is returned by next_ready");
  tap_diag("want_write %d", tern_conn_want_write(c));
  tern_conn_del(c);
  tern_hub_del(hub);
  tu_out_free(&o);
}

int main(void) {
  test_filtered_ready();
  return tap_done();
}
