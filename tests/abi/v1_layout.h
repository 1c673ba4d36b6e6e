/* v1_layout: the 0.1 struct layouts as compiled from tests/abi/tern_v1.h. */
#ifndef TERN_TESTS_V1_LAYOUT_H
#define TERN_TESTS_V1_LAYOUT_H

#include <stddef.h>

/* One struct (field NULL, size its sizeof) or one of its fields. */
typedef struct v1_item {
  const char *type;
  const char *field;
  size_t offset;
  size_t size;
} v1_item;

const v1_item *v1_layout(size_t *n);

#endif
