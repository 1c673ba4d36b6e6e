/*
 * Crash test of the file store: a child process appends batches with
 * sync = 1 and reports each batch that returned 0 to the parent over a
 * pipe; it is killed with SIGKILL, and the parent reopens the directory
 * and checks that it holds exactly the state before the round plus every
 * confirmed batch, plus some prefix of the batch that was being written
 * (whole records: a torn one is truncated).  So nothing confirmed is lost,
 * DELs stay honored, nothing reappears and no record is damaged.  The
 * loaded state is the next round's starting point.
 *
 * Three kinds of rounds:
 *  - timed: the parent kills the child at a random moment (it compacts
 *    now and then as well);
 *  - compaction: the child kills itself at a random system call inside
 *    compaction (every step: temporary file, copy, fsync, rename, directory
 *    fsync, read-back, deletes);
 *  - system call: the child kills itself before a random system call of
 *    its whole life (open and recovery included).
 *
 * The seed is printed; TERN_CRASH_SEED=<n> replays a run.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/rand.h"
#include "store_util.h"
#include "tap.h"

#define KEYS 2000
#define MAX_RECS 40
#define MAX_BATCHES 400

enum { TIMED, COMPACTION, SYSCALL };

typedef struct gen_batch {
  tern_store_record recs[MAX_RECS];
  size_t n;
  char keys[MAX_RECS][16];
  uint8_t *values[MAX_RECS];
} gen_batch;

/* make_batch generates batch |j| of round |seed|: the child and the parent
   get the same one. */
static void make_batch(gen_batch *b, uint64_t seed, int j) {
  rng r;
  rng_seed(&r, seed * 1000003u + (uint64_t)j);
  b->n = 1 + (size_t)rng_below(&r, MAX_RECS);
  for (size_t i = 0; i < b->n; ++i) {
    tern_store_record *x = &b->recs[i];
    snprintf(b->keys[i], sizeof(b->keys[i]), "k%04u",
             (unsigned)rng_below(&r, KEYS));
    x->key = (const uint8_t *)b->keys[i];
    x->keylen = strlen(b->keys[i]);
    b->values[i] = NULL;
    if (rng_below(&r, 4) == 0) {
      x->op = TERN_STORE_DEL;
      x->value = NULL;
      x->valuelen = 0;
    } else {
      size_t len = rng_below(&r, 16) == 0 ? 5000 : (size_t)rng_below(&r, 200);
      b->values[i] = malloc(len ? len : 1);
      for (size_t k = 0; k < len; ++k) {
        b->values[i][k] = (uint8_t)rng_next(&r);
      }
      x->op = TERN_STORE_SET;
      x->value = b->values[i];
      x->valuelen = len;
    }
  }
}

static void free_batch(gen_batch *b) {
  for (size_t i = 0; i < b->n; ++i) {
    free(b->values[i]);
  }
}

static tern_store_file_options crash_options(void) {
  tern_store_file_options o;
  tern_store_file_options_default(&o);
  o.segment_size = 16384;
  o.compact_garbage = 40;
  o.fsync = TERN_FSYNC_BATCH;
  return o;
}

/* ---- the child ---------------------------------------------------------- */

static void child(const char *dir, uint64_t seed, int kind, long kill_at,
                  int report) {
  tern_store_file_options o = crash_options();
  const tern_store_methods *m = tern_store_file_methods();
  tern_store_file *s;

  su_faults_reset(1);
  su_f.kind = SU_FAIL_KILL;
  su_f.fail_at = kind == TIMED ? 0 : kill_at;
  su_f.armed = kind == SYSCALL;
  if (store_file_open_sys(&s, dir, &o, NULL, &su_sys) != 0) {
    _exit(3);
  }
  for (int j = 0; j < MAX_BATCHES; ++j) {
    gen_batch b;
    int32_t done = j;
    make_batch(&b, seed, j);
    if (m->append(s, (uint64_t)j, b.recs, b.n, 1) != 0) {
      _exit(4);
    }
    free_batch(&b);
    if (write(report, &done, sizeof(done)) != (ssize_t)sizeof(done)) {
      _exit(5);
    }
    if ((kind == COMPACTION && j % 5 == 4) || (kind == TIMED && j % 20 == 19)) {
      int rv;
      su_f.armed = kind != TIMED;
      rv = m->compact(s);
      su_f.armed = kind == SYSCALL;
      if (rv != 0) {
        _exit(6);
      }
    }
  }
  tern_store_file_close(s);
  _exit(0);
}

/* ---- the parent --------------------------------------------------------- */

static void apply_batch(su_model *m, const gen_batch *b, size_t upto) {
  for (size_t i = 0; i < upto; ++i) {
    su_apply(m, &b->recs[i]);
  }
}

typedef struct round_result {
  int died_by_kill;
  int exit_code;
  int confirmed; /* batches reported */
  int ok;
  size_t prefix; /* records of the unconfirmed batch that survived */
  char why[240];
} round_result;

static void sleep_us(long us) {
  struct timespec ts;
  ts.tv_sec = us / 1000000;
  ts.tv_nsec = (us % 1000000) * 1000;
  nanosleep(&ts, NULL);
}

static void one_round(const char *dir, su_model *model, uint64_t seed,
                      int kind, long param, round_result *res) {
  int fds[2], status = 0;
  pid_t pid;
  int32_t j;
  int last = -1;
  tern_store_file *s;
  su_loaded l;
  su_model want;

  memset(res, 0, sizeof(*res));
  if (pipe(fds) != 0) {
    su_die("pipe");
  }
  fflush(stdout);
  pid = fork();
  if (pid < 0) {
    su_die("fork");
  }
  if (pid == 0) {
    close(fds[0]);
    child(dir, seed, kind, param, fds[1]);
  }
  close(fds[1]);
  if (kind == TIMED) {
    sleep_us(param);
    kill(pid, SIGKILL);
  } else {
    /* It kills itself; a child that never reaches its point ends alone. */
    for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; ++waited) {
      if (waited > 20000) {
        kill(pid, SIGKILL);
      }
      sleep_us(500);
    }
  }
  if (kind == TIMED) {
    waitpid(pid, &status, 0);
  }
  while (read(fds[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
    last = j;
  }
  close(fds[0]);
  res->died_by_kill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  res->confirmed = last + 1;

  /* What must be there: the model, the confirmed batches, and a prefix of
     the next one. */
  memset(&want, 0, sizeof(want));
  su_copy(&want, model);
  for (int b = 0; b <= last; ++b) {
    gen_batch g;
    make_batch(&g, seed, b);
    apply_batch(&want, &g, g.n);
    free_batch(&g);
  }
  if (tern_store_file_open(&s, dir, NULL, NULL) != 0) {
    snprintf(res->why, sizeof(res->why), "reopen failed: %s",
             tern_store_file_error(NULL));
    su_model_free(&want);
    return;
  }
  memset(&l, 0, sizeof(l));
  if (su_load(s, &l) != 0 || l.duplicates != 0) {
    snprintf(res->why, sizeof(res->why), "load failed: %s",
             tern_store_file_error(s));
  } else {
    gen_batch g;
    su_model trial;
    memset(&trial, 0, sizeof(trial));
    make_batch(&g, seed, last + 1);
    for (size_t k = 0; k <= g.n && !res->ok; ++k) {
      su_copy(&trial, &want);
      apply_batch(&trial, &g, k);
      if (su_equal(&l.m, &trial, NULL, 0)) {
        res->ok = 1;
        res->prefix = k;
      }
    }
    if (!res->ok) {
      char why[160];
      su_equal(&l.m, &want, why, sizeof(why));
      snprintf(res->why, sizeof(res->why),
               "no prefix of batch %d explains the state (%s)", last + 1,
               why);
    }
    free_batch(&g);
    su_model_free(&trial);
    su_copy(model, &l.m);
  }
  tern_store_file_close(s);
  su_model_free(&l.m);
  su_model_free(&want);
}

int main(void) {
  char *dir = su_tmpdir("crash");
  const char *env = getenv("TERN_CRASH_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  static const struct {
    int kind;
    int rounds;
    const char *name;
  } plan[] = {
      {TIMED, 60, "timed kills"},
      {COMPACTION, 40, "kills inside compaction"},
      {SYSCALL, 30, "kills before a random system call"},
  };
  su_model model;
  rng r;
  int kills_total = 0;

  memset(&model, 0, sizeof(model));
  rng_seed(&r, seed);
  tap_diag("seed %llu (TERN_CRASH_SEED replays it)",
           (unsigned long long)seed);
  for (size_t p = 0; p < sizeof(plan) / sizeof(plan[0]); ++p) {
    int kills = 0, ok = 0, confirmed = 0, partial = 0, bad_exit = 0;
    char first[300] = "";
    for (int i = 0; i < plan[p].rounds; ++i) {
      round_result res;
      long param;
      uint64_t round_seed = rng_next(&r);
      switch (plan[p].kind) {
      case TIMED:
        param = 1000 + (long)rng_below(&r, 80000); /* 1..81 ms */
        break;
      case COMPACTION:
        param = 1 + (long)rng_below(&r, 250);
        break;
      default:
        param = 1 + (long)rng_below(&r, 600);
        break;
      }
      one_round(dir, &model, round_seed, plan[p].kind, param, &res);
      kills += res.died_by_kill;
      confirmed += res.confirmed;
      partial += res.prefix > 0;
      if (!res.died_by_kill && res.exit_code != 0) {
        ++bad_exit;
      }
      if (res.ok) {
        ++ok;
      } else if (first[0] == '\0') {
        snprintf(first, sizeof(first), "round %d (param %ld): %s", i, param,
                 res.why);
      }
    }
    kills_total += kills;
    tap_diag("%s: %d rounds, %d killed, %d batches confirmed, %d rounds kept "
             "part of an unconfirmed batch, %zu live keys",
             plan[p].name, plan[p].rounds, kills, confirmed, partial,
             su_live(&model));
    if (first[0] != '\0') {
      tap_diag("first failure: %s", first);
    }
    CHECK_INT(ok, plan[p].rounds, plan[p].name);
    CHECK_INT(bad_exit, 0, "no child failed an append, compaction or open");
  }
  CHECK(kills_total >= 50, "%d kills in all", kills_total);
  su_model_free(&model);
  su_rmtree(dir);
  free(dir);
  return tap_done();
}
