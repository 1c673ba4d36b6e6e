/*
 * Topic names and topic patterns: validation and matching.  A pattern is a
 * name in which a whole segment may be "*" (one segment) or "#" (any
 * number of segments, zero included), as in AMQP topic exchanges.
 */
#include <string.h>

#include "filter/filter.h"

/* A segment as [start, end); the segment after it starts at end + 1.
   Positions past len mean "no more segments". */
static size_t seg_end(const uint8_t *s, size_t len, size_t pos) {
  const uint8_t *dot = memchr(s + pos, '.', len - pos);
  return dot ? (size_t)(dot - s) : len;
}

static int is_wild(const uint8_t *s, size_t pos, size_t end, uint8_t w) {
  return end - pos == 1 && s[pos] == w;
}

int pattern_check(const uint8_t *pat, size_t len, size_t *errpos) {
  size_t bad;
  if (len > TERN_MAX_TOPIC) {
    bad = TERN_MAX_TOPIC;
    goto fail;
  }
  if (len == 0 || pat == NULL) {
    bad = 0;
    goto fail;
  }
  size_t start = 0;
  for (size_t i = 0; i <= len; ++i) {
    if (i == len || pat[i] == '.') {
      if (i == start) {
        bad = start; /* an empty segment */
        goto fail;
      }
      start = i + 1;
      continue;
    }
    uint8_t c = pat[i];
    if (c < 0x21 || c > 0x7e) {
      bad = i;
      goto fail;
    }
    if ((c == '*' || c == '#') &&
        !(i == start && (i + 1 == len || pat[i + 1] == '.'))) {
      /* A wildcard that is not a whole segment. */
      bad = i;
      goto fail;
    }
  }
  return 0;
fail:
  if (errpos) {
    *errpos = bad;
  }
  return TERN_ERR_INVALID;
}

int topic_name_check(const uint8_t *name, size_t len) {
  if (pattern_check(name, len, NULL) != 0 || !pattern_is_exact(name, len)) {
    return TERN_ERR_INVALID;
  }
  return 0;
}

int pattern_is_exact(const uint8_t *pat, size_t len) {
  for (size_t pos = 0; pos < len;) {
    size_t end = seg_end(pat, len, pos);
    if (is_wild(pat, pos, end, '*') || is_wild(pat, pos, end, '#')) {
      return 0;
    }
    pos = end + 1;
  }
  return 1;
}

/*
 * Glob matching over segments: '*' is '?', '#' is '*'.  On a mismatch the
 * most recent '#' takes one more name segment and matching resumes after
 * it; earlier '#'s never need to be revisited (the usual argument for
 * single-star backtracking), so the work is at most P x N segment
 * comparisons for P pattern and N name segments.
 */
int pattern_match(const uint8_t *pat, size_t patlen, const uint8_t *name,
                  size_t namelen) {
  size_t p = 0, n = 0;
  size_t star_p = SIZE_MAX, star_n = 0;

  while (n <= namelen) {
    size_t nend = seg_end(name, namelen, n);
    if (p <= patlen) {
      size_t pend = seg_end(pat, patlen, p);
      if (is_wild(pat, p, pend, '#')) {
        star_p = pend + 1;
        star_n = n;
        p = pend + 1;
        continue;
      }
      if (is_wild(pat, p, pend, '*') ||
          (pend - p == nend - n && memcmp(pat + p, name + n, nend - n) == 0)) {
        p = pend + 1;
        n = nend + 1;
        continue;
      }
    }
    if (star_p == SIZE_MAX) {
      return 0;
    }
    /* The last '#' absorbs one more segment. */
    star_n = seg_end(name, namelen, star_n) + 1;
    n = star_n;
    p = star_p;
  }
  /* The name is used up: what is left of the pattern must be '#'s. */
  while (p <= patlen) {
    size_t pend = seg_end(pat, patlen, p);
    if (!is_wild(pat, p, pend, '#')) {
      return 0;
    }
    p = pend + 1;
  }
  return 1;
}

int tern_topic_pattern_check(const char *pattern, size_t len,
                             size_t *errpos) {
  return pattern_check((const uint8_t *)pattern, len, errpos);
}
