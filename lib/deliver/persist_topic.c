/*
 * Store hooks of topics, subscriptions, cursors and shared payloads.  Empty
 * for now: the store records for them are h-tpersist's part (issue 9);
 * topic.c and fanout.c call these at the points the records must be
 * written, so filling them in needs no change there.
 */
#include "deliver/topic.h"

void persist_topic(tern_hub *hub, const topic *t) {
  (void)hub;
  (void)t;
}

void persist_topic_gone(tern_hub *hub, const topic *t) {
  (void)hub;
  (void)t;
}

void persist_topic_msg(tern_hub *hub, const topic *t, uint64_t offset) {
  (void)hub;
  (void)t;
  (void)offset;
}

void persist_topic_msg_gone(tern_hub *hub, const topic *t, uint64_t offset) {
  (void)hub;
  (void)t;
  (void)offset;
}

void persist_payload(tern_hub *hub, const spayload *p) {
  (void)hub;
  (void)p;
}

void persist_sub(tern_hub *hub, const member *mb) {
  (void)hub;
  (void)mb;
}

void persist_sub_gone(tern_hub *hub, const member *mb) {
  (void)hub;
  (void)mb;
}

void persist_sub_cursor(tern_hub *hub, const member *mb) {
  (void)hub;
  (void)mb;
}

void persist_psub(tern_hub *hub, const psub *p) {
  (void)hub;
  (void)p;
}

void persist_psub_gone(tern_hub *hub, const psub *p) {
  (void)hub;
  (void)p;
}
