/* The layouts of the versioned public structs, by version (layout.h). */
#include "base/layout.h"

/* END is the length of a layout whose last field is |field|. */
#define END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

size_t layout_settings(uint32_t version) {
  switch (version) {
  case TERN_SETTINGS_V1:
    return END(tern_settings, hello_accept);
  case TERN_SETTINGS_V2:
    return END(tern_settings, max_pool_bytes);
  case TERN_SETTINGS_V3:
    return END(tern_settings, topic_burst);
  case TERN_SETTINGS_V4:
    return END(tern_settings, accept_max_retry);
  default:
    return 0;
  }
}

size_t layout_client_settings(uint32_t version) {
  switch (version) {
  case TERN_CLIENT_SETTINGS_V1:
    return END(tern_client_settings, max_payload);
  default:
    return 0;
  }
}

size_t layout_msg_desc(uint32_t version) {
  switch (version) {
  case TERN_MSG_DESC_V1:
    return END(tern_msg_desc, flags);
  case TERN_MSG_DESC_V2:
    return END(tern_msg_desc, cookie);
  case TERN_MSG_DESC_V3:
    return END(tern_msg_desc, fallback);
  default:
    return 0;
  }
}

size_t layout_publish_result(uint32_t version) {
  switch (version) {
  case TERN_PUBLISH_RESULT_V1:
    return END(tern_publish_result, retry_after);
  default:
    return 0;
  }
}

size_t layout_event(uint32_t version) {
  switch (version) {
  case TERN_EVENT_V1:
    return END(tern_event, count);
  case TERN_EVENT_V2:
    return END(tern_event, cookie);
  default:
    return 0;
  }
}

size_t layout_client_event(uint32_t version) {
  switch (version) {
  case TERN_CLIENT_EVENT_V1:
    return END(tern_client_event, attrs);
  default:
    return 0;
  }
}

size_t layout_store_methods(uint32_t version) {
  switch (version) {
  case TERN_STORE_METHODS_V1:
    return END(tern_store_methods, close);
  default:
    return 0;
  }
}

size_t layout_store_file_options(uint32_t version) {
  switch (version) {
  case TERN_STORE_FILE_OPTIONS_V1:
    return END(tern_store_file_options, compact_garbage);
  case TERN_STORE_FILE_OPTIONS_V2:
    return END(tern_store_file_options, sync_thread);
  default:
    return 0;
  }
}

size_t layout_topic_options(uint32_t version) {
  switch (version) {
  case TERN_TOPIC_OPTIONS_V1:
    return END(tern_topic_options, burst);
  default:
    return 0;
  }
}

size_t layout_stream_opts(uint32_t version) {
  switch (version) {
  case TERN_STREAM_OPTS_V1:
    return END(tern_stream_opts, poll_hold);
  default:
    return 0;
  }
}

size_t layout_policy(uint32_t version) {
  switch (version) {
  case TERN_POLICY_V1:
    return END(tern_policy, cap_window);
  default:
    return 0;
  }
}
