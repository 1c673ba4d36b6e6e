/* Error strings, the version, and the fatal-error rule. */
#include "tern.h"

const char *tern_version(void) { return TERN_VERSION; }

uint32_t tern_version_info(uint32_t least) {
  return TERN_VERSION_NUM >= least ? TERN_VERSION_NUM : 0;
}

const char *tern_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
  case TERN_ERR_INVALID:
    return "invalid argument";
  case TERN_ERR_NOMEM:
    return "out of memory";
  case TERN_ERR_TOO_LARGE:
    return "value exceeds its size limit";
  case TERN_ERR_DUPLICATE:
    return "duplicate message id within the dedup window";
  case TERN_ERR_FULL:
    return "session queue is full";
  case TERN_ERR_NOT_FOUND:
    return "not found";
  case TERN_ERR_PROTO:
    return "protocol error";
  case TERN_ERR_CLOSED:
    return "connection closed";
  case TERN_ERR_STORE:
    return "store failure";
  case TERN_ERR_LIMIT:
    return "count limit reached";
  case TERN_ERR_STATE:
    return "call not valid in the current state";
  default:
    return "unknown error";
  }
}

int tern_err_is_fatal(int code) {
  return code == TERN_ERR_PROTO || code == TERN_ERR_CLOSED;
}
