/*
 * The layout of libtern 0.1's public structs, compiled against the frozen
 * 0.1 header: offsets and sizes for version_test.c to compare with today's
 * header and with the library's layout table (lib/base/layout.c).
 */
#include <stddef.h>

#include "tern_v1.h"
#include "v1_layout.h"

#define STRUCT(type) {#type, NULL, 0, sizeof(type)},
#define FIELD(type, field)                                                   \
  {#type, #field, offsetof(type, field), sizeof(((type *)0)->field)},
static const v1_item items[] = {
#include "v1_fields.h"
};
#undef STRUCT
#undef FIELD

const v1_item *v1_layout(size_t *n) {
  *n = sizeof(items) / sizeof(items[0]);
  return items;
}
