/*
 * Topic names, topic patterns and attribute filters: the checks and the
 * matchers that topic subscriptions use (pattern.c, filter.c).  The
 * language is specified in man/tern-filter.7; this header states the
 * internal contract.  Nothing here knows about hubs or sessions.
 */
#ifndef TERN_FILTER_FILTER_H
#define TERN_FILTER_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

/* ---- topic names and patterns (pattern.c) ------------------------------- */

/* Topic names: 1..TERN_MAX_TOPIC bytes, segments separated by '.', every
   segment non-empty, bytes printable ASCII 0x21..0x7e except '*', '#'.
   0 or TERN_ERR_INVALID. */
int topic_name_check(const uint8_t *name, size_t len);

/* Patterns: like names, but a segment may be exactly "*" (one segment) or
   "#" (zero or more segments, anywhere).  0 or TERN_ERR_INVALID with
   *errpos (when errpos is not NULL) the byte offset of the first bad
   byte: the offset where an empty segment starts (|len| for a trailing
   '.', 0 for an empty pattern), the '*' or '#' that is not a whole
   segment, the byte outside 0x21..0x7e, or TERN_MAX_TOPIC when the
   pattern is longer than that. */
int pattern_check(const uint8_t *pat, size_t len, size_t *errpos);

/* pattern_is_exact: 1 when checked pattern |pat| has no wildcard segment
   (it is a topic name), else 0. */
int pattern_is_exact(const uint8_t *pat, size_t len);

/* pattern_match: 1 when checked pattern |pat| matches checked name |name|,
   else 0.  No allocation, no recursion: segment by segment with
   backtracking to the last '#', at most (segments of pat) x (segments of
   name) segment comparisons. */
int pattern_match(const uint8_t *pat, size_t patlen, const uint8_t *name,
                  size_t namelen);

/* ---- filters (filter.c) ------------------------------------------------- */

/* Limits of the language besides TERN_MAX_FILTER (tern-filter(7)). */
/* Open parentheses and 'not's around any point of the text. */
#define FILTER_MAX_DEPTH 32
/* Predicates (comparisons, in-lists, exists). */
#define FILTER_MAX_TERMS 64
/* Values in one in-list. */
#define FILTER_MAX_LIST 64
/* An attribute name and a value, in bytes (after unescaping). */
#define FILTER_MAX_NAME TERN_MAX_ATTR_KEY
#define FILTER_MAX_VALUE TERN_MAX_ATTR_VALUE

typedef struct filter filter;

/* One attribute of a message, as the matcher sees it. */
typedef struct filter_attr {
  const uint8_t *key;
  size_t keylen;
  const uint8_t *value;
  size_t valuelen;
} filter_attr;

/* filter_compile parses |text| (|len| bytes, need not be NUL-terminated;
   at most TERN_MAX_FILTER bytes) into a compiled filter allocated through
   |mem| (one block).  Returns 0 and *pf, TERN_ERR_INVALID (syntax, or NULL
   |text| with |len| > 0), TERN_ERR_TOO_LARGE (a limit) -- both with
   *errpos = byte offset of the error and *msg = a static English message
   such as "expected ')'", each when not NULL --, or TERN_ERR_NOMEM.
   *pf is untouched on failure. */
int filter_compile(const tern_mem *mem, const char *text, size_t len,
                   filter **pf, size_t *errpos, const char **msg);

/* filter_check is filter_compile without the result: it allocates
   nothing and never returns TERN_ERR_NOMEM. */
int filter_check(const char *text, size_t len, size_t *errpos,
                 const char **msg);

/* filter_free releases |f| (NULL does nothing) to |mem|, the allocator it
   was compiled with. */
void filter_free(const tern_mem *mem, filter *f);

/* filter_match: 1 when the message with these attrs passes, else 0.  The
   first attr with a given key is the one compared.  Never allocates, no
   recursion: a loop over the compiled code. */
int filter_match(const filter *f, const filter_attr *attrs, size_t nattrs);

/* filter_text: the canonical text (keywords lower case, single spaces,
   only the parentheses precedence needs, values quoted only when they
   must be), NUL-terminated, *len (when len is not NULL) its length.
   Equal filters have equal texts, and compiling the text gives the same
   text back.  Valid while |f| is. */
const char *filter_text(const filter *f, size_t *len);

#endif
