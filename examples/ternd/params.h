/*
 * ternd's reader of the flat JSON object that POST /webhooks takes as its
 * body (ternd(8), "WEB HOOKS").  Apart from the rest of ternd so that
 * tests/fuzz/ternd_json_fuzz.c can build it alone: it needs no library.
 */
#ifndef TERND_PARAMS_H
#define TERND_PARAMS_H

#include <stddef.h>

#define TERND_MAX_FIELDS 16
#define TERND_VALUES_CAP 8192

/* The parameters of a registration that came in the body: names and values
   decoded into |buf| (not NUL-terminated). */
typedef struct ternd_params {
  const char *name[TERND_MAX_FIELDS];
  size_t namelen[TERND_MAX_FIELDS];
  char *value[TERND_MAX_FIELDS];
  size_t valuelen[TERND_MAX_FIELDS];
  size_t n;
  char buf[TERND_VALUES_CAP]; /* decoded JSON strings and numbers */
  size_t used;
} ternd_params;

/* Reads |len| bytes at |p|, a JSON object {"name": value, ...} whose
   values are strings, whole numbers (kept as written), true ("1") or false
   ("0"), into |ps|, which starts zeroed (n and used 0).  Returns 0, or -1
   for anything else (null, nested values, signs, fractions and exponents
   too: no parameter takes them); |ps| is then garbage. */
int ternd_params_parse(ternd_params *ps, const char *p, size_t len);

#endif
