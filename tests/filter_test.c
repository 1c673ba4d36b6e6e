/*
 * Topic patterns and attribute filters (lib/filter): which patterns and
 * names are valid and where the first bad byte is, what matches what,
 * filter semantics (precedence, numbers against strings, quoting, missing
 * attributes, in-lists), the canonical text and its round trip, the error
 * offset of many bad inputs, the limits, and allocation failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/filter.h"
#include "tap.h"
#include "testutil.h"

#define U8(s) ((const uint8_t *)(s))

/* ---- patterns ----------------------------------------------------------- */

static void test_pattern_check(void) {
  static const char *const good[] = {
      "a", "a.b", "trade.usd.nyse", "*", "#", "a.*", "*.a", "a.#", "#.a",
      "a.#.b", "#.#", "*.*", "#.*.#", "!", "~.a-b_c.$%&", "A.B.C",
  };
  static const struct {
    const char *pat;
    size_t errpos;
  } bad[] = {
      {"", 0},       {".", 0},      {".a", 0},     {"a.", 2},
      {"a..b", 2},   {"a.b.", 4},   {"a*", 1},     {"*a", 0},
      {"a.b*", 3},   {"a.*b", 2},   {"**", 0},     {"##", 0},
      {"a#", 1},     {"#a", 0},     {"*#", 0},     {"a b", 1},
      {"a.\tb", 2},  {"a\x7f", 1},  {"\x80", 0},   {"a.b.\xff.c", 4},
      {"a.\x01", 2}, {"a..", 2},    {"..", 0},     {"a.#.", 4},
      {"#.", 2},     {"a.*.", 4},   {"x\0y", 1},
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); ++i) {
    size_t pos = 12345;
    CHECK_INT(pattern_check(U8(good[i]), strlen(good[i]), &pos), 0,
              good[i]);
    CHECK_INT(pos, 12345, "errpos untouched on success");
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    size_t pos = 12345;
    const char *p = bad[i].pat;
    size_t len = strlen(p) + (strcmp(p, "x") == 0 ? 2 : 0);
    int rv = pattern_check(U8(p), len, &pos);
    char what[64];
    snprintf(what, sizeof(what), "pattern #%zu is bad", i);
    CHECK_INT(rv, TERN_ERR_INVALID, what);
    snprintf(what, sizeof(what), "pattern #%zu: error at %zu", i,
             bad[i].errpos);
    CHECK_INT(pos, bad[i].errpos, what);
  }

  /* Length: TERN_MAX_TOPIC bytes pass, one more fails at the limit. */
  char longest[TERN_MAX_TOPIC + 2];
  memset(longest, 'a', sizeof(longest));
  size_t pos = 0;
  CHECK_INT(pattern_check(U8(longest), TERN_MAX_TOPIC, &pos), 0,
            "a pattern of TERN_MAX_TOPIC bytes");
  CHECK_INT(pattern_check(U8(longest), TERN_MAX_TOPIC + 1, &pos),
            TERN_ERR_INVALID, "one byte longer");
  CHECK_INT(pos, TERN_MAX_TOPIC, "error at TERN_MAX_TOPIC");
  CHECK_INT(pattern_check(NULL, 3, &pos), TERN_ERR_INVALID, "NULL pattern");
  CHECK_INT(pattern_check(U8("a."), 2, NULL), TERN_ERR_INVALID,
            "errpos may be NULL");

  /* The public entry point is the same check. */
  CHECK_INT(tern_topic_pattern_check("order.#", 7, NULL), 0,
            "tern_topic_pattern_check: order.#");
  pos = 0;
  CHECK_INT(tern_topic_pattern_check("order.#x", 8, &pos), TERN_ERR_INVALID,
            "tern_topic_pattern_check: order.#x");
  CHECK_INT(pos, 6, "tern_topic_pattern_check: error at the '#'");
  CHECK_INT(tern_topic_pattern_check("trade.*.usd", 7, NULL), 0,
            "tern_topic_pattern_check reads |len| bytes only");
}

static void test_topic_name(void) {
  static const char *const good[] = {"a", "a.b", "trade.usd.nyse", "!.~",
                                     "x-y_z.0"};
  static const char *const bad[] = {"", "*", "#", "a.*", "#.a", "a..b",
                                    "a.", ".a", "a b", "a*", "a#"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); ++i) {
    CHECK_INT(topic_name_check(U8(good[i]), strlen(good[i])), 0, good[i]);
    CHECK_INT(pattern_is_exact(U8(good[i]), strlen(good[i])), 1,
              "a name is an exact pattern");
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    char what[64];
    snprintf(what, sizeof(what), "'%s' is not a topic name", bad[i]);
    CHECK_INT(topic_name_check(U8(bad[i]), strlen(bad[i])), TERN_ERR_INVALID,
              what);
  }
  char longest[TERN_MAX_TOPIC + 1];
  memset(longest, 'n', sizeof(longest));
  CHECK_INT(topic_name_check(U8(longest), TERN_MAX_TOPIC), 0,
            "a name of TERN_MAX_TOPIC bytes");
  CHECK_INT(topic_name_check(U8(longest), TERN_MAX_TOPIC + 1),
            TERN_ERR_INVALID, "a name one byte longer");
  static const char *const wild[] = {"*", "#", "a.*", "#.b", "a.#.c"};
  for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); ++i) {
    CHECK_INT(pattern_is_exact(U8(wild[i]), strlen(wild[i])), 0,
              "a wildcard pattern is not exact");
  }
}

static void test_pattern_match(void) {
  static const struct {
    const char *pat, *name;
    int want;
  } t[] = {
      {"a", "a", 1},
      {"a", "b", 0},
      {"a", "a.b", 0},
      {"a.b", "a", 0},
      {"a.b", "a.b", 1},
      {"a.b", "a.bc", 0},
      {"a.bc", "a.b", 0},
      {"ab", "a.b", 0},
      {"*", "a", 1},
      {"*", "a.b", 0},
      {"*.*", "a.b", 1},
      {"*.*", "a", 0},
      {"a.*", "a.b", 1},
      {"a.*", "a", 0},
      {"a.*", "a.b.c", 0},
      {"*.b", "a.b", 1},
      {"*.b", "b", 0},
      {"#", "a", 1},
      {"#", "a.b.c.d", 1},
      {"#.#", "a", 1},
      {"#.#", "a.b.c", 1},
      {"#.#.#", "z", 1},
      {"a.#", "a", 1},
      {"a.#", "a.b", 1},
      {"a.#", "a.b.c", 1},
      {"a.#", "b.a", 0},
      {"a.#", "ab", 0},
      {"#.a", "a", 1},
      {"#.a", "x.y.a", 1},
      {"#.a", "x.y.a.b", 0},
      {"#.a", "xa", 0},
      {"a.#.b", "a.b", 1},
      {"a.#.b", "a.x.b", 1},
      {"a.#.b", "a.x.y.z.b", 1},
      {"a.#.b", "a.b.b", 1},
      {"a.#.b", "a.b.c", 0},
      {"a.#.b", "a", 0},
      {"a.#.b", "b", 0},
      {"a.#.b", "a.x.b.c", 0},
      {"#.*", "a", 1},
      {"#.*", "a.b", 1},
      {"*.#", "a", 1},
      {"*.#.*", "a", 0},
      {"*.#.*", "a.b", 1},
      {"*.#.*", "a.b.c.d", 1},
      {"#.a.#.b.#", "a.b", 1},
      {"#.a.#.b.#", "x.a.y.b.z", 1},
      {"#.a.#.b.#", "x.b.y.a.z", 0},
      {"#.a.*.b", "a.a.x.b", 1},
      {"#.a.*.b", "a.x.a.b", 0},
      {"a.#.a.#.a", "a.a.a", 1},
      {"a.#.a.#.a", "a.a", 0},
      {"a.#.a.#.a", "a.b.a.b.b.a", 1},
      {"#.b.#", "a.a.a.a.a.a.a", 0},
      {"order.#", "order", 1},
      {"trade.*", "trade.usd", 1},
      {"trade.*", "trade", 0},
      {"A", "a", 0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
    char what[96];
    snprintf(what, sizeof(what), "'%s' %s '%s'", t[i].pat,
             t[i].want ? "matches" : "does not match", t[i].name);
    CHECK_INT(pattern_match(U8(t[i].pat), strlen(t[i].pat), U8(t[i].name),
                            strlen(t[i].name)),
              t[i].want, what);
  }

  /* The worst case for backtracking stays correct: many '#'s against a
     long name that fails at the end. */
  char pat[TERN_MAX_TOPIC + 1], name[TERN_MAX_TOPIC + 1];
  size_t pl = 0, nl = 0;
  while (pl + 4 <= 250) {
    memcpy(pat + pl, "#.a.", 4);
    pl += 4;
  }
  memcpy(pat + pl, "b", 1);
  ++pl;
  while (nl + 2 <= 250) {
    memcpy(name + nl, "a.", 2);
    nl += 2;
  }
  name[nl++] = 'c';
  CHECK_INT(pattern_check(U8(pat), pl, NULL), 0, "the long pattern is valid");
  CHECK_INT(pattern_match(U8(pat), pl, U8(name), nl), 0,
            "a long '#' pattern fails at the last segment");
  name[nl - 1] = 'b';
  CHECK_INT(pattern_match(U8(pat), pl, U8(name), nl), 1,
            "and matches when the last segment fits");
}

/* ---- filters ------------------------------------------------------------ */

/* attrs_of parses "k=v;k=v" (no '=' or ';' in keys and values) into |a|. */
static size_t attrs_of(const char *spec, filter_attr *a, size_t cap) {
  size_t n = 0;
  const char *p = spec;
  while (*p && n < cap) {
    const char *eq = strchr(p, '=');
    const char *end = strchr(p, ';');
    if (!end) {
      end = p + strlen(p);
    }
    a[n].key = U8(p);
    a[n].keylen = (size_t)(eq - p);
    a[n].value = U8(eq + 1);
    a[n].valuelen = (size_t)(end - eq - 1);
    ++n;
    p = *end ? end + 1 : end;
  }
  return n;
}

static filter *compile_ok(const char *text) {
  filter *f = NULL;
  size_t pos = 0;
  const char *msg = NULL;
  int rv = filter_compile(NULL, text, strlen(text), &f, &pos, &msg);
  if (rv != 0) {
    tap_diag("'%s': %s at %zu: %s", text, tern_strerror(rv), pos,
             msg ? msg : "");
    return NULL;
  }
  return f;
}

static void test_filter_match(void) {
  static const struct {
    const char *filter, *attrs;
    int want;
  } t[] = {
      /* The issue's example. */
      {"status in (ItemAdd, ItemUpdate) and price > 100",
       "status=ItemAdd;price=150", 1},
      {"status in (ItemAdd, ItemUpdate) and price > 100",
       "status=ItemUpdate;price=100.01", 1},
      {"status in (ItemAdd, ItemUpdate) and price > 100",
       "status=ItemAdd;price=100", 0},
      {"status in (ItemAdd, ItemUpdate) and price > 100",
       "status=ItemDelete;price=150", 0},
      {"status in (ItemAdd, ItemUpdate) and price > 100", "status=ItemAdd", 0},
      /* Comparisons on strings: byte-wise, case-sensitive. */
      {"a = x", "a=x", 1},
      {"a = x", "a=X", 0},
      {"a != x", "a=y", 1},
      {"a != x", "a=x", 0},
      {"a < b", "a=a", 1},
      {"a < b", "a=b", 0},
      {"a <= b", "a=b", 1},
      {"a > b", "a=ba", 1},
      {"a > ba", "a=b", 0},
      {"a >= b", "a=b", 1},
      {"a < b", "a=", 1},
      {"a = \"\"", "a=", 1},
      {"a != \"\"", "a=", 0},
      {"d >= 2024-01-01 and d < 2024-02-01", "d=2024-01-15", 1},
      {"d >= 2024-01-01 and d < 2024-02-01", "d=2024-02-01", 0},
      /* Numbers: numeric when both sides are decimal numbers. */
      {"n = 100", "n=100.00", 1},
      {"n = 100", "n=0100", 1},
      {"n = 100", "n=100.", 0},
      {"n < 9", "n=10", 0},
      {"n > 9", "n=10", 1},
      {"n > 9.5", "n=10", 1},
      {"n > -1", "n=-0.5", 1},
      {"n < -1", "n=-1.5", 1},
      {"n < -1", "n=-0.5", 0},
      {"n = 0", "n=-0", 1},
      {"n = -0.0", "n=0", 1},
      {"n > 0", "n=-0", 0},
      {"n < 0.1", "n=0.09999", 1},
      {"n > 12345678901234567890123",
       "n=12345678901234567890122.99999999999999999999", 0},
      {"n < 12345678901234567890123",
       "n=12345678901234567890122.99999999999999999999", 1},
      {"n = 1.50", "n=1.5", 1},
      {"n > 1.5", "n=1.50001", 1},
      {"n < -10", "n=-9", 0},
      {"n < -9", "n=-10", 1},
      /* A value that is not a number: byte-wise ("10" < "9"). */
      {"n < 9", "n=10x", 1},
      {"n < 9", "n=+10", 1},
      {"n = 100", "n=1e2", 0},
      {"n > .5", "n=0.4", 1}, /* ".5" is a string: "0.4" > ".5" */
      {"v > 1.2.3", "v=1.10.0", 0},
      /* Quoted values are strings, even when they look like numbers. */
      {"n = \"100\"", "n=100.0", 0},
      {"n = \"100\"", "n=100", 1},
      {"n < \"9\"", "n=10", 1},
      /* Missing attributes: every comparison is false, != and not in too;
         'not' negates. */
      {"a = 1", "b=1", 0},
      {"a != 1", "b=1", 0},
      {"a < 1", "", 0},
      {"a in (1, 2)", "", 0},
      {"a not in (1, 2)", "", 0},
      {"not a = 1", "", 1},
      {"not a != 1", "", 1},
      {"exists a", "a=", 1},
      {"exists a", "b=1", 0},
      {"not exists a", "b=1", 1},
      {"not exists a or a = 1", "a=1", 1},
      {"not exists a or a = 1", "a=2", 0},
      /* in, not in */
      {"a in (x)", "a=x", 1},
      {"a in (x, y, z)", "a=z", 1},
      {"a in (x, y, z)", "a=w", 0},
      {"a in (1, 2)", "a=2.0", 1},
      {"a in (\"1\", 2)", "a=1.0", 0},
      {"a not in (x, y)", "a=z", 1},
      {"a not in (x, y)", "a=y", 0},
      {"a NOT IN (1)", "a=1.000", 0},
      /* The first attribute with the key counts. */
      {"a = 1", "a=1;a=2", 1},
      {"a = 2", "a=1;a=2", 0},
      /* Keys are exact bytes. */
      {"A = 1", "a=1", 0},
      {"\"a b\" = 1", "a b=1", 1},
      {"\"and\" = \"or\"", "and=or", 1},
      /* Precedence: not > and > or, left to right. */
      {"a = 1 or b = 1 and c = 1", "a=1", 1},
      {"a = 1 or b = 1 and c = 1", "b=1", 0},
      {"(a = 1 or b = 1) and c = 1", "a=1", 0},
      {"(a = 1 or b = 1) and c = 1", "b=1;c=1", 1},
      {"not a = 1 and b = 1", "b=1", 1},
      {"not (a = 1 and b = 1)", "b=1", 1},
      {"not (a = 1 and b = 1)", "a=1;b=1", 0},
      {"not not a = 1", "a=1", 1},
      {"not not not a = 1", "a=1", 0},
      {"a = 1 and not (b = 1 or c = 1)", "a=1;c=1", 0},
      {"a = 1 and not (b = 1 or c = 1)", "a=1;c=2", 1},
      {"(a = 1 and b = 1) or (c = 1 and d = 1) or e = 1", "c=1;d=1", 1},
      {"(a = 1 and b = 1) or (c = 1 and d = 1) or e = 1", "a=1;d=1", 0},
      {"(a = 1 and b = 1) or (c = 1 and d = 1) or e = 1", "e=1", 1},
      {"a = 1 and (b = 1 or (c = 1 and (d = 1 or e = 1)))", "a=1;c=1;e=1", 1},
      {"a = 1 and (b = 1 or (c = 1 and (d = 1 or e = 1)))", "a=1;c=1", 0},
      {"not (a = 1 or not (b = 1 and not c = 1))", "b=1", 1},
      {"not (a = 1 or not (b = 1 and not c = 1))", "b=1;c=1", 0},
      /* Keywords in any case. */
      {"a = 1 AND b = 2 Or c = 3", "c=3", 1},
      {"EXISTS a", "a=1", 1},
      /* Quoting and escapes. */
      {"a = \"x y\"", "a=x y", 1},
      {"a = \"say \\\"hi\\\"\"", "a=say \"hi\"", 1},
      {"a = \"back\\\\slash\"", "a=back\\slash", 1},
      {"a = \"\\x41\\x62\"", "a=Ab", 1},
      {"a = \"caf\xc3\xa9\"", "a=caf\xc3\xa9", 1},
      {"a = \"\\xff\"", "a=\xff", 1},
      {"a = \"\\xFf\"", "a=\xff", 1},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
    filter_attr a[8];
    size_t n = attrs_of(t[i].attrs, a, 8);
    filter *f = compile_ok(t[i].filter);
    char what[160];
    snprintf(what, sizeof(what), "'%s' on {%s}: %d", t[i].filter,
             t[i].attrs, t[i].want);
    if (f == NULL) {
      CHECK(0, "%s (does not compile)", what);
      continue;
    }
    CHECK_INT(filter_match(f, a, n), t[i].want, what);
    filter_free(NULL, f);
  }
}

/* Canonical text: what filter_text gives for an input. */
static void test_filter_text(void) {
  static const struct {
    const char *in, *want;
  } t[] = {
      {"a=1", "a = 1"},
      {"  a\t=\r\n1  ", "a = 1"},
      {"a!=1", "a != 1"},
      {"a<1 AND b>=2", "a < 1 and b >= 2"},
      {"a<=1 OR b>2", "a <= 1 or b > 2"},
      {"status IN(ItemAdd,ItemUpdate)", "status in (ItemAdd, ItemUpdate)"},
      {"x Not In ( 1 , 2 )", "x not in (1, 2)"},
      {"EXISTS price", "exists price"},
      {"(a = 1)", "a = 1"},
      {"((((a = 1))))", "a = 1"},
      {"(a = 1 and b = 1) and c = 1", "a = 1 and b = 1 and c = 1"},
      {"a = 1 and (b = 1 and c = 1)", "a = 1 and b = 1 and c = 1"},
      {"a = 1 or (b = 1 or c = 1)", "a = 1 or b = 1 or c = 1"},
      {"(a = 1 or b = 1) or (c = 1 or d = 1)",
       "a = 1 or b = 1 or c = 1 or d = 1"},
      {"a = 1 or (b = 1 and c = 1)", "a = 1 or b = 1 and c = 1"},
      {"(a = 1 or b = 1) and c = 1", "(a = 1 or b = 1) and c = 1"},
      {"not (a = 1)", "not a = 1"},
      {"not (exists a)", "not exists a"},
      {"not (a = 1 and b = 1)", "not (a = 1 and b = 1)"},
      {"not(not(a=1))", "not not a = 1"},
      {"(not a = 1) and b = 2", "not a = 1 and b = 2"},
      {"a = 1 and ((b = 1 or c = 1))", "a = 1 and (b = 1 or c = 1)"},
      {"a = \"abc\"", "a = abc"},
      {"a = \"100\"", "a = \"100\""},
      {"a = 100", "a = 100"},
      {"a = -1.50", "a = -1.50"},
      {"a = \"-1.50\"", "a = \"-1.50\""},
      {"a = \"1.2.3\"", "a = 1.2.3"},
      {"a = \"and\"", "a = \"and\""},
      {"a = \"AND\"", "a = \"AND\""},
      {"a = \"\"", "a = \"\""},
      {"a = \"a b\"", "a = \"a b\""},
      {"a = \"\\x41\"", "a = A"},
      {"a = \"\\x22\\x5c\"", "a = \"\\\"\\\\\""},
      {"a = \"\\x7f\\x01\\xff\"", "a = \"\\x7f\\x01\\xff\""},
      {"a = \"\xc3\xa9\"", "a = \"\xc3\xa9\""},
      {"a = \"\\xc3\\xa9\"", "a = \"\xc3\xa9\""},
      {"a = \"\\xc3\"", "a = \"\\xc3\""},
      {"\"a\" = 1", "a = 1"},
      {"\"100\" = 1", "100 = 1"},
      {"\"in\" = 1", "\"in\" = 1"},
      {"\"a.b-c_d\" = 1", "a.b-c_d = 1"},
      {"exists \"x y\"", "exists \"x y\""},
      {"a in (\"x\", \"1\", 1, \"not\")", "a in (x, \"1\", 1, \"not\")"},
      /* The example of tern-filter(7). */
      {"(STATUS IN(\"ItemAdd\",ItemUpdate)) AND (price>100)",
       "STATUS in (ItemAdd, ItemUpdate) and price > 100"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
    filter *f = compile_ok(t[i].in);
    if (f == NULL) {
      CHECK(0, "'%s' compiles", t[i].in);
      continue;
    }
    size_t len = 0;
    const char *text = filter_text(f, &len);
    CHECK_MEM(text, len, t[i].want, strlen(t[i].want), t[i].in);
    if (len != strlen(t[i].want) || memcmp(text, t[i].want, len) != 0) {
      tap_diag("got '%s', want '%s'", text, t[i].want);
    }
    CHECK_INT(text[len], 0, "the text is NUL-terminated");
    /* Round trip: the canonical text compiles to itself. */
    filter *g = compile_ok(text);
    if (g == NULL) {
      CHECK(0, "the text of '%s' compiles", t[i].in);
    } else {
      size_t glen = 0;
      const char *gtext = filter_text(g, &glen);
      CHECK_MEM(gtext, glen, text, len, "the text compiles to itself");
      filter_free(NULL, g);
    }
    filter_free(NULL, f);
  }
}

/* Bad inputs: the error, its offset, and for a few the message. */
static void test_filter_errors(void) {
  static const struct {
    const char *in;
    int rv;
    size_t pos;
    const char *msg; /* NULL: not checked */
  } t[] = {
      {"", TERN_ERR_INVALID, 0, "empty filter"},
      {"   ", TERN_ERR_INVALID, 3, "empty filter"},
      {"a", TERN_ERR_INVALID, 1, NULL},
      {"a =", TERN_ERR_INVALID, 3, "expected a value"},
      {"= 1", TERN_ERR_INVALID, 0, "expected a condition"},
      {"a = 1 and", TERN_ERR_INVALID, 9, "expected a condition"},
      {"a = 1 or or b = 1", TERN_ERR_INVALID, 9, "expected a condition"},
      {"and a = 1", TERN_ERR_INVALID, 0, NULL},
      {"a = 1 b = 2", TERN_ERR_INVALID, 6, "expected 'and', 'or' or the end"},
      {"(a = 1", TERN_ERR_INVALID, 6, "expected ')'"},
      {"(a = 1 b", TERN_ERR_INVALID, 7, "expected 'and', 'or' or ')'"},
      {"a = 1)", TERN_ERR_INVALID, 5, "unbalanced ')'"},
      {"()", TERN_ERR_INVALID, 1, "expected a condition"},
      {"a == 1", TERN_ERR_INVALID, 2, NULL},
      {"a <> 1", TERN_ERR_INVALID, 2, NULL},
      {"a ! 1", TERN_ERR_INVALID, 2, "expected '!='"},
      {"a =< 1", TERN_ERR_INVALID, 3, "expected a value"},
      {"a => 1", TERN_ERR_INVALID, 3, "expected a value"},
      {"a = 1 2", TERN_ERR_INVALID, 6, NULL},
      {"a = 'x'", TERN_ERR_INVALID, 4, NULL},
      {"a = \"x", TERN_ERR_INVALID, 4, "unterminated string"},
      {"a = \"x\\", TERN_ERR_INVALID, 4, "unterminated string"},
      {"a = \"x\\n\"", TERN_ERR_INVALID, 6, NULL},
      {"a = \"\\x4\"", TERN_ERR_INVALID, 5, NULL},
      {"a = \"\\xg0\"", TERN_ERR_INVALID, 5, NULL},
      {"a = \"\\x00\"", TERN_ERR_INVALID, 5, "\\x00 in a string"},
      {"a = \"x\ty\"", TERN_ERR_INVALID, 6, NULL},
      {"a = \"\xc3\"", TERN_ERR_INVALID, 5, "invalid UTF-8 in a string"},
      {"a = \"\xc0\xaf\"", TERN_ERR_INVALID, 5, "invalid UTF-8 in a string"},
      {"a = \"\xed\xa0\x80\"", TERN_ERR_INVALID, 5, NULL},
      {"a = \"\xf4\x90\x80\x80\"", TERN_ERR_INVALID, 5, NULL},
      {"a = \"\xe2\x82\"", TERN_ERR_INVALID, 5, NULL},
      {"a = caf\xc3\xa9", TERN_ERR_INVALID, 7, "unexpected character"},
      {"a = x$y", TERN_ERR_INVALID, 5, NULL},
      {"a$ = 1", TERN_ERR_INVALID, 1, "unexpected character"},
      {"a = +1", TERN_ERR_INVALID, 4, "unexpected character"},
      {"a = 1;", TERN_ERR_INVALID, 5, NULL},
      {"a = and", TERN_ERR_INVALID, 4, "expected a value (quote a keyword)"},
      {"a = In", TERN_ERR_INVALID, 4, NULL},
      {"a = (1)", TERN_ERR_INVALID, 4, "expected a value"},
      {"and = 1", TERN_ERR_INVALID, 0, NULL},
      {"exists", TERN_ERR_INVALID, 6, "expected an attribute name"},
      {"exists or", TERN_ERR_INVALID, 7, NULL},
      {"exists a = 1", TERN_ERR_INVALID, 9, NULL},
      {"a exists", TERN_ERR_INVALID, 2, NULL},
      {"\"\" = 1", TERN_ERR_INVALID, 0, "empty attribute name"},
      {"exists \"\"", TERN_ERR_INVALID, 7, "empty attribute name"},
      {"a in 1", TERN_ERR_INVALID, 5, "expected '(' after 'in'"},
      {"a in ()", TERN_ERR_INVALID, 6, "expected a value"},
      {"a in (1,)", TERN_ERR_INVALID, 8, "expected a value"},
      {"a in (1 2)", TERN_ERR_INVALID, 8, "expected ',' or ')'"},
      {"a in (1", TERN_ERR_INVALID, 7, "expected ',' or ')'"},
      {"a in (1, and)", TERN_ERR_INVALID, 9, NULL},
      {"a not (1)", TERN_ERR_INVALID, 6, "expected 'in' after 'not'"},
      {"a not", TERN_ERR_INVALID, 5, NULL},
      {"not", TERN_ERR_INVALID, 3, NULL},
      {"not not", TERN_ERR_INVALID, 7, NULL},
      {"a in (1) and", TERN_ERR_INVALID, 12, NULL},
      {"a = 1 and (b = 2 or)", TERN_ERR_INVALID, 19, NULL},
      {"a = 1 and (b = 2))", TERN_ERR_INVALID, 17, NULL},
      {"a = 1 ,", TERN_ERR_INVALID, 6, NULL},
      {"a\x01 = 1", TERN_ERR_INVALID, 1, NULL},
      {"a = 1\x0b", TERN_ERR_INVALID, 5, NULL},
      {"a < 1 < 2", TERN_ERR_INVALID, 6, NULL},
      {"a = 1 and not", TERN_ERR_INVALID, 13, NULL},
      {"a in (x) y", TERN_ERR_INVALID, 9, NULL},
      {"(", TERN_ERR_INVALID, 1, NULL},
      {")", TERN_ERR_INVALID, 0, NULL},
      {",", TERN_ERR_INVALID, 0, NULL},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
    size_t pos = 12345;
    const char *msg = NULL;
    filter *f = (filter *)&pos; /* must stay untouched */
    int rv = filter_compile(NULL, t[i].in, strlen(t[i].in), &f, &pos, &msg);
    char what[160];
    snprintf(what, sizeof(what), "bad #%zu '%s': %s at %zu", i, t[i].in,
             tern_strerror(t[i].rv), t[i].pos);
    CHECK(rv == t[i].rv && pos == t[i].pos, "%s", what);
    if (rv != t[i].rv || pos != t[i].pos) {
      tap_diag("got %s at %zu: %s", tern_strerror(rv), pos,
               msg ? msg : "(null)");
    }
    CHECK(f == (filter *)&pos, "bad #%zu: *pf untouched", i);
    CHECK(msg != NULL && msg[0] != '\0', "bad #%zu: a message", i);
    if (t[i].msg) {
      CHECK(msg && strcmp(msg, t[i].msg) == 0, "bad #%zu: message '%s'", i,
            t[i].msg);
    }
    /* The check agrees with the compiler. */
    size_t pos2 = 0;
    const char *msg2 = NULL;
    CHECK(tern_filter_check(t[i].in, strlen(t[i].in), &pos2, &msg2) == rv &&
              pos2 == pos && msg2 == msg,
          "bad #%zu: tern_filter_check agrees", i);
  }
  /* NULL out-pointers are fine; NULL text only with len 0. */
  CHECK_INT(tern_filter_check("a=", 2, NULL, NULL), TERN_ERR_INVALID,
            "NULL errpos and msg");
  CHECK_INT(tern_filter_check(NULL, 1, NULL, NULL), TERN_ERR_INVALID,
            "NULL text");
  CHECK_INT(tern_filter_check(NULL, 0, NULL, NULL), TERN_ERR_INVALID,
            "NULL empty text");
  CHECK_INT(tern_filter_check("a = 1 and junk", 5, NULL, NULL), 0,
            "only |len| bytes are read");
  CHECK_INT(tern_filter_check("a = \"\0\"", 7, NULL, NULL), TERN_ERR_INVALID,
            "a NUL byte in a string");
  CHECK_INT(tern_filter_check("a = 1\0", 6, NULL, NULL), TERN_ERR_INVALID,
            "a NUL byte after the filter");
  filter *f = NULL;
  CHECK_INT(filter_compile(NULL, "a = 1", 5, NULL, NULL, NULL),
            TERN_ERR_INVALID, "filter_compile: NULL pf");
  CHECK_INT(filter_compile(NULL, "a = 1", 5, &f, NULL, NULL), 0,
            "filter_compile: NULL errpos and msg");
  filter_free(NULL, f);
  filter_free(NULL, NULL);
}

/* Long texts are built here. */
static char big[4 * TERN_MAX_FILTER];

static int check_len(const char *text, size_t len, int want_rv,
                     size_t want_pos, const char *what) {
  size_t pos = 12345;
  const char *msg = NULL;
  int rv = tern_filter_check(text, len, &pos, &msg);
  CHECK(rv == want_rv && (rv == 0 || pos == want_pos), "%s", what);
  if (rv != want_rv || (rv != 0 && pos != want_pos)) {
    tap_diag("got %s at %zu: %s", tern_strerror(rv), pos,
             msg ? msg : "(null)");
  }
  return rv;
}

static int check(const char *text, int want_rv, size_t want_pos,
                 const char *what) {
  return check_len(text, strlen(text), want_rv, want_pos, what);
}

static void test_filter_limits(void) {
  size_t n;

  /* Nesting: 32 parentheses or 'not's, not 33. */
  n = 0;
  for (int i = 0; i < FILTER_MAX_DEPTH; ++i) {
    big[n++] = '(';
  }
  n += (size_t)sprintf(big + n, "a = 1");
  for (int i = 0; i < FILTER_MAX_DEPTH; ++i) {
    big[n++] = ')';
  }
  big[n] = 0;
  check(big, 0, 0, "32 nested parentheses");
  memmove(big + 1, big, n + 1);
  big[0] = '(';
  strcat(big, ")");
  check(big, TERN_ERR_TOO_LARGE, FILTER_MAX_DEPTH,
        "33 nested parentheses: error at the 33rd");
  n = 0;
  for (int i = 0; i < FILTER_MAX_DEPTH; ++i) {
    n += (size_t)sprintf(big + n, "not ");
  }
  sprintf(big + n, "a = 1");
  check(big, 0, 0, "32 nots");
  memmove(big + 4, big, strlen(big) + 1);
  memcpy(big, "not ", 4);
  check(big, TERN_ERR_TOO_LARGE, 4 * FILTER_MAX_DEPTH, "33 nots");
  n = 0;
  for (int i = 0; i < FILTER_MAX_DEPTH / 2; ++i) {
    n += (size_t)sprintf(big + n, "not (");
  }
  n += (size_t)sprintf(big + n, "not a = 1");
  for (int i = 0; i < FILTER_MAX_DEPTH / 2; ++i) {
    big[n++] = ')';
  }
  big[n] = 0;
  check(big, TERN_ERR_TOO_LARGE, 5 * (FILTER_MAX_DEPTH / 2),
        "16 'not ('s and one more 'not'");
  /* Depth counts what is open, not what was: 40 parenthesised terms in a
     row are fine. */
  n = 0;
  for (int i = 0; i < 40; ++i) {
    n += (size_t)sprintf(big + n, "%s(a = 1)", i ? " or " : "");
  }
  check(big, 0, 0, "40 parenthesised terms side by side");

  /* Terms: 64, not 65. */
  size_t at65;
  n = 0;
  for (int i = 0; i < FILTER_MAX_TERMS; ++i) {
    n += (size_t)sprintf(big + n, "%sa=%d", i ? " or " : "", i);
  }
  check(big, 0, 0, "64 terms");
  at65 = n + 4;
  sprintf(big + n, " or exists b");
  check(big, TERN_ERR_TOO_LARGE, at65, "65 terms: error at the 65th");

  /* A list of 64 values, not 65. */
  n = (size_t)sprintf(big, "a in (");
  for (int i = 0; i < FILTER_MAX_LIST; ++i) {
    n += (size_t)sprintf(big + n, "%s%d", i ? "," : "", i);
  }
  size_t at = n + 1;
  sprintf(big + n, ")");
  check(big, 0, 0, "64 values in a list");
  sprintf(big + n, ",x)");
  check(big, TERN_ERR_TOO_LARGE, at, "65 values: error at the 65th");

  /* Names up to 64 bytes, values up to 256, after unescaping. */
  memset(big, 'k', FILTER_MAX_NAME);
  strcpy(big + FILTER_MAX_NAME, " = 1");
  check(big, 0, 0, "a name of 64 bytes");
  memset(big, 'k', FILTER_MAX_NAME + 1);
  strcpy(big + FILTER_MAX_NAME + 1, " = 1");
  check(big, TERN_ERR_TOO_LARGE, 0, "a name of 65 bytes");
  n = (size_t)sprintf(big, "a = ");
  memset(big + n, 'v', FILTER_MAX_VALUE);
  strcpy(big + n + FILTER_MAX_VALUE, " or b = 1");
  check(big, 0, 0, "a value of 256 bytes");
  memset(big + n, 'v', FILTER_MAX_VALUE + 1);
  strcpy(big + n + FILTER_MAX_VALUE + 1, " or b = 1");
  check(big, TERN_ERR_TOO_LARGE, n, "a value of 257 bytes");
  n = (size_t)sprintf(big, "a = \"");
  for (int i = 0; i < FILTER_MAX_VALUE; ++i) {
    n += (size_t)sprintf(big + n, "\\\"");
  }
  strcpy(big + n, "\"");
  check(big, 0, 0, "a value of 256 escaped bytes");
  strcpy(big + n, "\\\"\"");
  check(big, TERN_ERR_TOO_LARGE, 4, "257 escaped bytes: error at the value");

  /* Text: TERN_MAX_FILTER bytes as given and as canonical. */
  memset(big, ' ', TERN_MAX_FILTER);
  memcpy(big, "a=1", 3);
  check_len(big, TERN_MAX_FILTER, 0, 0, "1024 bytes, mostly spaces");
  check_len(big, TERN_MAX_FILTER + 1, TERN_ERR_TOO_LARGE, TERN_MAX_FILTER,
            "1025 bytes");
  /* 956 bytes whose canonical form, with spaces around '=', is longer. */
  n = 0;
  for (int i = 0; i < 60; ++i) {
    n += (size_t)sprintf(big + n, "%sa=vvvvvvvvvv", i ? " or " : "");
  }
  check_len(big, n, TERN_ERR_TOO_LARGE, n,
            "a canonical form over TERN_MAX_FILTER: error at the end");
}

/* Every allocation failure returns NOMEM and leaks nothing; the filter
   takes one block. */
static void test_filter_nomem(void) {
  const char *text = "status in (ItemAdd, ItemUpdate) and price > 100";
  for (long k = 1;; ++k) {
    tu_alloc a;
    memset(&a, 0, sizeof(a));
    a.fail_at = k;
    tern_mem mem = tu_alloc_mem(&a);
    filter *f = NULL;
    int rv = filter_compile(&mem, text, strlen(text), &f, NULL, NULL);
    if (rv == 0) {
      CHECK_INT(a.calls, 1, "a filter is one allocation");
      CHECK_INT(a.outstanding, 1, "one live block");
      filter_attr at[2];
      size_t n = attrs_of("status=ItemAdd;price=101", at, 2);
      CHECK_INT(filter_match(f, at, n), 1, "the compiled filter matches");
      filter_free(&mem, f);
      CHECK_INT(a.outstanding, 0, "filter_free returns the block");
      CHECK_INT(tu_alloc_finish(&a), 0, "no write after free");
      CHECK(k == 2, "the sweep reached success after %ld failure(s)", k - 1);
      break;
    }
    CHECK_INT(rv, TERN_ERR_NOMEM, "allocation failure: NOMEM");
    CHECK(f == NULL, "*pf untouched");
    CHECK_INT(a.outstanding, 0, "nothing leaked");
    tu_alloc_finish(&a);
    if (k > 10) {
      CHECK(0, "the sweep ends");
      break;
    }
  }
}

/* Equal filters written differently get one text, so subscriptions can
   share one compiled filter. */
static void test_filter_equal(void) {
  static const char *const forms[] = {
      "status IN (ItemAdd,ItemUpdate) AND price>100",
      "(status in (\"ItemAdd\", ItemUpdate)) and (price > 100)",
      "  status   in(ItemAdd ,\"Item\\x55pdate\")and price >100",
  };
  const char *want = "status in (ItemAdd, ItemUpdate) and price > 100";
  for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); ++i) {
    filter *f = compile_ok(forms[i]);
    if (!f) {
      CHECK(0, "'%s' compiles", forms[i]);
      continue;
    }
    size_t len;
    const char *t = filter_text(f, &len);
    CHECK_MEM(t, len, want, strlen(want), forms[i]);
    filter_free(NULL, f);
  }
}

int main(void) {
  test_pattern_check();
  test_topic_name();
  test_pattern_match();
  test_filter_match();
  test_filter_text();
  test_filter_errors();
  test_filter_limits();
  test_filter_nomem();
  test_filter_equal();
  return tap_done();
}
