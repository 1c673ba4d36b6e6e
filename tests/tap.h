/*
 * A small TAP (Test Anything Protocol) harness shared by every test file.
 * Each check prints "ok N - what" or "not ok N - what" with the location; a
 * test program ends with tap_done(), which prints the plan and returns the
 * exit status.  Header-only so that each test is one .c file.
 */
#ifndef TERN_TESTS_TAP_H
#define TERN_TESTS_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static void tap_report(int pass, const char *file, int line, const char *fmt,
                       ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void tap_report(int pass, const char *file, int line, const char *fmt,
                       ...) {
  va_list ap;
  ++tap_count;
  if (!pass) {
    ++tap_failed;
  }
  printf("%sok %d - ", pass ? "" : "not ", tap_count);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  if (!pass) {
    printf("#   at %s:%d\n", file, line);
  }
  fflush(stdout);
}

/* CHECK(cond, what...): one assertion. */
#define CHECK(cond, ...) tap_report(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* CHECK_INT(got, want, what): integers, printing both on failure. */
#define CHECK_INT(got, want, what)                                          \
  do {                                                                      \
    long long tap_g_ = (long long)(got), tap_w_ = (long long)(want);        \
    tap_report(tap_g_ == tap_w_, __FILE__, __LINE__, "%s", what);          \
    if (tap_g_ != tap_w_) {                                                 \
      printf("#   got %lld, want %lld\n", tap_g_, tap_w_);                  \
    }                                                                       \
  } while (0)

/* CHECK_EQ(got, want, what...): CHECK_INT with a formatted description. */
#define CHECK_EQ(got, want, ...)                                            \
  do {                                                                      \
    long long tap_g_ = (long long)(got), tap_w_ = (long long)(want);        \
    CHECK(tap_g_ == tap_w_, __VA_ARGS__);                                   \
    if (tap_g_ != tap_w_) {                                                 \
      printf("#   got %lld, want %lld\n", tap_g_, tap_w_);                  \
    }                                                                       \
  } while (0)

/* BAILOUT(what): stop the whole test program (TAP "Bail out!"). */
#define BAILOUT(what)                                                       \
  do {                                                                      \
    printf("Bail out! %s\n", what);                                         \
    exit(1);                                                                \
  } while (0)

/* CHECK_MEM(got, gotlen, want, wantlen, what): byte strings. */
#define CHECK_MEM(got, gotlen, want, wantlen, what)                         \
  tap_report((size_t)(gotlen) == (size_t)(wantlen) &&                       \
                 ((size_t)(wantlen) == 0 ||                                 \
                  memcmp((got), (want), (size_t)(wantlen)) == 0),           \
             __FILE__, __LINE__, "%s", what)

/* tap_diag prints a comment line. */
#define tap_diag(...)                                                       \
  do {                                                                      \
    printf("# ");                                                           \
    printf(__VA_ARGS__);                                                    \
    printf("\n");                                                           \
  } while (0)

/* tap_done prints the plan and returns the process exit status. */
static inline int tap_done(void) {
  printf("1..%d\n", tap_count);
  return tap_failed ? 1 : 0;
}

#endif
