/*
 * exercise.h - the part of every exercise you do not need to change.
 *
 * exercise_main() runs the exercise's stress test (racelab/stress.h) in a
 * few short runs, stops at the first run that shows a FORBIDDEN or STALE
 * outcome, prints the harness's report and says PASS or FAIL.  Exit
 * status: 0 pass, 1 fail (the race showed), 2 the harness could not run.
 */
#ifndef RLAB_EXERCISE_H
#define RLAB_EXERCISE_H

#include <stdio.h>

#include "racelab.h"

typedef struct {
    const char *name;     /* "counter": names the hint file */
    const char *problem;  /* what went wrong, printed on a FAIL */
    double seconds;       /* the whole budget, split into EXERCISE_RUNS
                             runs; 0: EXERCISE_SECONDS */
    double stale_after;   /* > 0: actors stuck this long end the run STALE */
    unsigned max_stride;  /* most states per batch; 0: EXERCISE_STRIDE */
} exercise;

#define EXERCISE_RUNS 8
#define EXERCISE_SECONDS 1.6
/* Small batches: the actors meet at a rendezvous every few states, so
 * they keep running side by side even when other programs take a CPU
 * from one of them now and then. */
#define EXERCISE_STRIDE 16

static inline int exercise_main(const rlab_stress_test *test,
                                const exercise *e)
{
    rlab_stress_opts opts = {
        .seconds = (e->seconds > 0 ? e->seconds : EXERCISE_SECONDS) /
                   EXERCISE_RUNS,
        .stale_after = e->stale_after,
        .max_stride = e->max_stride ? e->max_stride : EXERCISE_STRIDE,
    };
    unsigned long long trials = 0;
    for (int run = 1; run <= EXERCISE_RUNS; run++) {
        rlab_stress_report *r;
        int rc = rlab_stress_run(test, &opts, &r);
        if (rc) {
            fprintf(stderr, "%s: the harness could not run: %s\n", e->name,
                    rlab_strerror(rc));
            return 2;
        }
        trials += rlab_stress_trials(r);
        bool failed = rlab_stress_verdict(r) != 0;
        if (failed || run == EXERCISE_RUNS)
            rlab_stress_print(r, stdout, false);
        if (failed) {
            if (rlab_stress_stale(r))
                printf("\nFAIL %s: threads got stuck (STALE: no progress for "
                       "%.1f s) in run %d.\n",
                       e->name, e->stale_after, run);
            else
                printf("\nFAIL %s: %llu of %llu trials ended FORBIDDEN in "
                       "run %d.\n",
                       e->name, rlab_stress_forbidden(r),
                       rlab_stress_trials(r), run);
            printf("%s\nHint: tests/exercises/%s.hint.md\n", e->problem,
                   e->name);
            fflush(stdout);
            rlab_stress_report_free(r);
            return 1;
        }
        rlab_stress_report_free(r);
    }
    printf("\nPASS %s: %d runs, %llu trials, no FORBIDDEN or STALE "
           "outcome.\n",
           e->name, EXERCISE_RUNS, trials);
    return 0;
}

#endif
