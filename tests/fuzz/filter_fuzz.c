/*
 * Fuzz target for topic patterns and attribute filters (lib/filter).
 *
 * Input: byte 0 picks the allocation to fail (low 2 bits; 0 none), bytes
 * 1-2 the length L of the text (little-endian, modulo 1100), then L bytes
 * of text, then attributes as records separated by NUL, each "key=value"
 * (no '=': the record is a key with an empty value), at most 8.
 *
 * Checks:
 *  - compiling never crashes, and agrees with filter_check (code, offset,
 *    message); an error has a message and an offset within the text (or
 *    TERN_MAX_FILTER); a failed allocation gives NOMEM and leaks nothing;
 *  - a compiled filter's text is canonical: it compiles to the same text,
 *    and that filter matches the attributes exactly as the first one;
 *  - the text as a topic pattern: pattern_check's offset is in range; for
 *    every attribute key and value that is a valid topic name,
 *    pattern_match agrees with a plain recursive reference matcher (short
 *    inputs only), and an exact pattern matches only the equal name.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/filter.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "filter_fuzz: %s:%d: %s\n", __FILE__, __LINE__,      \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

/* ---- reference pattern matcher ------------------------------------------ */

#define REF_MAX_SEGS 12

typedef struct segs {
  const uint8_t *s[REF_MAX_SEGS];
  size_t n[REF_MAX_SEGS];
  size_t count;
} segs;

/* split: 0 when there are too many segments for the reference. */
static int split(const uint8_t *p, size_t len, segs *out) {
  size_t start = 0;
  out->count = 0;
  for (size_t i = 0; i <= len; ++i) {
    if (i == len || p[i] == '.') {
      if (out->count == REF_MAX_SEGS) {
        return 0;
      }
      out->s[out->count] = p + start;
      out->n[out->count] = i - start;
      ++out->count;
      start = i + 1;
    }
  }
  return 1;
}

static int seg_is(const segs *a, size_t i, char c) {
  return a->n[i] == 1 && a->s[i][0] == (uint8_t)c;
}

/* The definition, literally: '*' eats one segment, '#' any number. */
static int ref_match(const segs *pat, size_t pi, const segs *name,
                     size_t ni) {
  if (pi == pat->count) {
    return ni == name->count;
  }
  if (seg_is(pat, pi, '#')) {
    for (size_t k = ni; k <= name->count; ++k) {
      if (ref_match(pat, pi + 1, name, k)) {
        return 1;
      }
    }
    return 0;
  }
  if (ni == name->count) {
    return 0;
  }
  if (!seg_is(pat, pi, '*') &&
      (pat->n[pi] != name->n[ni] ||
       memcmp(pat->s[pi], name->s[ni], pat->n[pi]) != 0)) {
    return 0;
  }
  return ref_match(pat, pi + 1, name, ni + 1);
}

static void check_pattern(const uint8_t *pat, size_t len,
                          const filter_attr *attrs, size_t nattrs) {
  size_t pos = SIZE_MAX;
  int rv = pattern_check(pat, len, &pos);
  if (rv != 0) {
    REQUIRE(rv == TERN_ERR_INVALID);
    REQUIRE(pos <= len || pos == TERN_MAX_TOPIC);
    REQUIRE(topic_name_check(pat, len) == TERN_ERR_INVALID);
    return;
  }
  REQUIRE(pos == SIZE_MAX);
  int exact = pattern_is_exact(pat, len);
  REQUIRE((topic_name_check(pat, len) == 0) == exact);
  if (exact) {
    REQUIRE(pattern_match(pat, len, pat, len) == 1);
  }
  segs ps, ns;
  int pshort = split(pat, len, &ps);
  for (size_t i = 0; i < 2 * nattrs; ++i) {
    const uint8_t *name = i & 1 ? attrs[i / 2].value : attrs[i / 2].key;
    size_t nlen = i & 1 ? attrs[i / 2].valuelen : attrs[i / 2].keylen;
    if (topic_name_check(name, nlen) != 0) {
      continue;
    }
    int m = pattern_match(pat, len, name, nlen);
    REQUIRE(m == 0 || m == 1);
    if (exact) {
      REQUIRE(m == (nlen == len && memcmp(pat, name, len) == 0));
    }
    if (pshort && split(name, nlen, &ns)) {
      REQUIRE(m == ref_match(&ps, 0, &ns, 0));
    }
  }
}

/* ---- filters ------------------------------------------------------------ */

static void check_filter(const char *text, size_t len,
                         const filter_attr *attrs, size_t nattrs,
                         long fail) {
  tern_mem mem = fuzz_mem();
  filter *f = NULL;
  size_t pos = SIZE_MAX, cpos = SIZE_MAX;
  const char *msg = NULL, *cmsg = NULL;

  outstanding = calls = 0;
  fail_at = fail;
  int rv = filter_compile(&mem, text, len, &f, &pos, &msg);
  int crv = filter_check(text, len, &cpos, &cmsg);
  if (rv == TERN_ERR_NOMEM) {
    REQUIRE(fail != 0 && crv == 0 && f == NULL && outstanding == 0);
    return;
  }
  REQUIRE(rv == crv);
  if (rv != 0) {
    REQUIRE(rv == TERN_ERR_INVALID || rv == TERN_ERR_TOO_LARGE);
    REQUIRE(f == NULL && outstanding == 0);
    REQUIRE(pos == cpos && msg == cmsg && msg != NULL && msg[0] != '\0');
    REQUIRE(pos <= len || pos == TERN_MAX_FILTER);
    return;
  }
  REQUIRE(f != NULL && outstanding == 1 && pos == SIZE_MAX && msg == NULL);

  size_t tlen = 0;
  const char *t = filter_text(f, &tlen);
  REQUIRE(t[tlen] == '\0' && tlen > 0 && tlen <= TERN_MAX_FILTER);
  REQUIRE(strlen(t) == tlen);
  int m = filter_match(f, attrs, nattrs);
  REQUIRE(m == 0 || m == 1);

  fail_at = 0;
  filter *g = NULL;
  int grv = filter_compile(&mem, t, tlen, &g, &pos, &msg);
  if (grv != 0) {
    fprintf(stderr, "filter_fuzz: canonical text '%s' fails: %s at %zu\n", t,
            msg, pos);
  }
  REQUIRE(grv == 0);
  size_t glen = 0;
  const char *gt = filter_text(g, &glen);
  if (glen != tlen || memcmp(gt, t, tlen) != 0) {
    fprintf(stderr, "filter_fuzz: '%s' recompiles to '%s'\n", t, gt);
  }
  REQUIRE(glen == tlen && memcmp(gt, t, tlen) == 0);
  REQUIRE(filter_match(g, attrs, nattrs) == m);
  filter_free(&mem, g);
  filter_free(&mem, f);
  REQUIRE(outstanding == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) {
    return 0;
  }
  long fail = data[0] & 3;
  size_t len = (size_t)(data[1] | data[2] << 8) % 1100;
  data += 3;
  size -= 3;
  if (len > size) {
    len = size;
  }
  /* A heap copy of exactly the text, so that a read past it is caught. */
  char *text = malloc(len ? len : 1);
  REQUIRE(text != NULL);
  if (len) {
    memcpy(text, data, len);
  }

  filter_attr attrs[8];
  size_t nattrs = 0;
  const uint8_t *p = data + len, *end = data + size;
  while (p < end && nattrs < 8) {
    const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
    const uint8_t *rec_end = nul ? nul : end;
    const uint8_t *eq = memchr(p, '=', (size_t)(rec_end - p));
    attrs[nattrs].key = p;
    attrs[nattrs].keylen = (size_t)((eq ? eq : rec_end) - p);
    attrs[nattrs].value = eq ? eq + 1 : rec_end;
    attrs[nattrs].valuelen = eq ? (size_t)(rec_end - eq - 1) : 0;
    ++nattrs;
    p = nul ? nul + 1 : end;
  }

  check_filter(text, len, attrs, nattrs, fail);
  check_pattern((const uint8_t *)text, len, attrs, nattrs);
  free(text);
  return 0;
}
