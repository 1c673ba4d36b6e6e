/*
 * The layouts of the versioned public structs (see "Versioned structs" in
 * tern.h): how many bytes of a caller's struct of a given version the
 * library may read or write.  Adding a field to one of these structs means
 * a new TERN_<STRUCT>_V<n> in tern.h, TERN_<STRUCT>_VERSION set to it, and
 * a case here ending at the new last field; tests/version_test.c checks
 * that the newest layout covers the whole struct and that V1 is 0.1's.
 */
#ifndef TERN_BASE_LAYOUT_H
#define TERN_BASE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tern.h"

/* Each returns the length of layout |version|, or 0 for a version this
   library does not know. */
size_t layout_settings(uint32_t version);
size_t layout_client_settings(uint32_t version);
size_t layout_msg_desc(uint32_t version);
size_t layout_publish_result(uint32_t version);
size_t layout_event(uint32_t version);
size_t layout_client_event(uint32_t version);
size_t layout_store_methods(uint32_t version);
size_t layout_store_file_options(uint32_t version);
size_t layout_topic_options(uint32_t version);
size_t layout_stream_opts(uint32_t version);
size_t layout_policy(uint32_t version);

/* LAYOUT_OLD marks the code that serves older layouts: out of line, so
   that the current layout's path stays short (often a tail call). */
#if defined(__GNUC__)
#define LAYOUT_OLD __attribute__((noinline, cold))
#else
#define LAYOUT_OLD
#endif

/* layout_fill_defaults gives a caller's struct whose layout is |len| bytes
   long the library's defaults |all|; every struct filled so starts with
   uint32_t version, set in |all| already.  |len| 0, a layout the library
   does not know, sets only the version, to 0, which the constructors
   refuse. */
static inline void layout_fill_defaults(void *dst, size_t len,
                                        const void *all) {
  if (len == 0) {
    memset(dst, 0, sizeof(uint32_t));
    return;
  }
  memcpy(dst, all, len);
}

/* layout_copy_out gives a caller's |size|-byte struct the library's |len|
   bytes at |src|: the common prefix, zeros past what the library knows. */
static inline void layout_copy_out(void *dst, size_t size, const void *src,
                                   size_t len) {
  memcpy(dst, src, size < len ? size : len);
  if (size > len) {
    memset((uint8_t *)dst + len, 0, size - len);
  }
}

#endif
