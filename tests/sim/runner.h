/*
 * Running batches of seeds over forked workers (runner.c), shared by
 * tests/sim/sim and bench/sim_soak.
 */
#ifndef TERN_SIM_RUNNER_H
#define TERN_SIM_RUNNER_H

#include "sim.h"

/* A seed that runs longer than this (wall seconds) counts as hung. */
#define SIM_SEED_TIMEOUT 60

typedef struct sim_batch {
  const char *name;        /* prefix of printed lines                     */
  uint64_t start;          /* first seed                                  */
  uint64_t count;          /* seeds to run; 0: until |seconds| passed     */
  double seconds;          /* wall-clock budget; 0: none                  */
  int jobs;                /* worker processes                            */
  sim_opts opts;           /* options of every run (seed replaced)        */
  const char *replay_prog; /* the simulator binary, for replay lines      */
  int max_reports;         /* failures printed in full                    */
  double progress;         /* print progress this often (s); 0: never     */
} sim_batch;

typedef struct sim_batch_result {
  uint64_t seeds, failures, first_failed;
  int crashed;             /* a worker did not finish                     */
  double elapsed;
  sim_result totals;       /* summed figures of every run                 */
} sim_batch_result;

/* sim_run_batch runs the batch; returns 0, or -1 when it could not start. */
int sim_run_batch(const sim_batch *b, sim_batch_result *out);
void sim_print_totals(const char *name, const sim_batch_result *r, int jobs);
/* sim_print_durability prints the --hub-restart figures of |t|. */
void sim_print_durability(const char *name, const sim_result *t);
/* sim_print_topics prints the --topics figures of |t|. */
void sim_print_topics(const char *name, const sim_result *t);
/* sim_default_jobs: the processors online, at least 1, at most 8. */
int sim_default_jobs(void);

#endif
