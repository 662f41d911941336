/*
 * racelab/stress.h - write your own race tests, in the spirit of OpenJDK's
 * jcstress.
 *
 * A stress test declares a small state, 2 to 8 actors that each run once
 * per state on their own thread, an optional arbiter that looks at the
 * state after every actor finished, and an outcome function that names
 * what happened ("1, 0", "lost=3" ...).  A grading table says which
 * outcomes are ACCEPTABLE, INTERESTING (acceptable, but worth showing) or
 * FORBIDDEN.  rlab_stress_run() makes the actors collide on many states
 * and tallies the outcomes:
 *
 *   - the actor threads live for the whole run; states are processed in
 *     batches ("strides") between two cheap spinning rendezvous, so the
 *     actors start each batch together and run side by side on the same
 *     states;
 *   - the stride grows while batches stay short (a few milliseconds), so
 *     slow actors are not mistaken for stuck ones;
 *   - with stale_after set, actors that do not finish a batch within that
 *     time (a deadlock, a lost wake-up, a spin on a flag nobody sets) end
 *     the run with the outcome "STALE".
 *
 * Example (store buffering):
 *
 *   typedef struct { atomic_int x, y; int r1, r2; } sb;
 *   static void a1(void *p) { sb *s = p; atomic_store_explicit(&s->x, 1,
 *       memory_order_relaxed); s->r1 = atomic_load_explicit(&s->y,
 *       memory_order_relaxed); }
 *   static void a2(void *p) { ... the mirror image ... }
 *   static void out(const void *p, char *key, size_t len) {
 *       const sb *s = p; snprintf(key, len, "%d, %d", s->r1, s->r2); }
 *   static const rlab_outcome grades[] = {
 *       {"0, 0", RLAB_INTERESTING, "both loads ran before both stores"},
 *       {"*", RLAB_ACCEPTABLE, "some interleaving"}, {NULL}};
 *   static const rlab_stress_test t = {.name = "sb", .state_size =
 *       sizeof(sb), .actor = {a1, a2}, .outcome = out, .outcomes = grades};
 *   rlab_stress_report *r;
 *   rlab_stress_opts o = {.seconds = 1.0};
 *   if (rlab_stress_run(&t, &o, &r) == 0) {
 *       rlab_stress_print(r, stdout, false);
 *       int failed = rlab_stress_verdict(r);
 *       rlab_stress_report_free(r);
 *   }
 *
 * Rules the harness keeps and tests may rely on:
 *   - every state starts zeroed, then init runs on it (if given) before
 *     any actor touches it; fini (if given) runs after its outcome was
 *     taken, so a state may own handles (locks, queues) made by init;
 *   - init, arbiter, outcome and fini may run on different states at the
 *     same time, on any thread: they must touch only their own state;
 *   - everything init did happens before the actors run, and everything
 *     the actors did happens before the arbiter and outcome run (the
 *     rendezvous are acquire/release, so ThreadSanitizer sees it too);
 *     between actors of the same state there is no such edge: that is
 *     what is being tested;
 *   - outcome keys are at most RLAB_STRESS_KEY_MAX - 1 characters;
 *   - "*" matches every key not listed, except "STALE"; a key matched by
 *     no entry is FORBIDDEN;
 *   - STALE is one extra sample, not a trial; the run still returns 0 with
 *     the tallies of the batches that finished.  Stuck actor threads (and
 *     the states they hold) are left behind detached: they never delay
 *     exit();
 *   - when both trials and seconds are set, trials wins; time is measured
 *     on CLOCK_MONOTONIC.
 */
#ifndef RACELAB_STRESS_H
#define RACELAB_STRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most actors one test may declare. */
#define RLAB_STRESS_MAX_ACTORS 8
/* Outcome keys are at most RLAB_STRESS_KEY_MAX - 1 characters. */
#define RLAB_STRESS_KEY_MAX 128

typedef enum { RLAB_ACCEPTABLE, RLAB_INTERESTING, RLAB_FORBIDDEN } rlab_expect;

/* One row of the grading table.  outcome "*" matches every key not
 * listed (but never "STALE"). */
typedef struct {
    const char *outcome;
    rlab_expect expect;
    const char *description;
} rlab_outcome;

typedef struct {
    const char *name, *description;
    size_t state_size;           /* bytes of one state; states start zeroed */
    void (*init)(void *state);   /* optional, before the actors touch it */
    /* 2 to RLAB_STRESS_MAX_ACTORS actors, the first unused slot NULL; each
     * runs once per state, each on its own thread. */
    void (*actor[RLAB_STRESS_MAX_ACTORS])(void *state);
    void (*arbiter)(void *state);   /* optional, after every actor finished */
    /* Names the result, e.g. "1, 0"; len is RLAB_STRESS_KEY_MAX. */
    void (*outcome)(const void *state, char *key, size_t len);
    const rlab_outcome *outcomes;   /* grading table, ends with {NULL} */
    void (*fini)(void *state);      /* optional, after the outcome was taken */
} rlab_stress_test;

typedef struct {
    unsigned long long trials; /* stop after this many states; 0: run for
                                  `seconds` */
    double seconds;            /* time bound when trials is 0; 0 means 1.0 */
    double stale_after;        /* > 0: actors still running this long after
                                  their batch began end the run with the
                                  outcome "STALE" (a failure) */
    /* Additions to API.md: */
    bool pin;                  /* pin actor i to CPU i mod (CPUs we may use) */
    unsigned max_stride;       /* most states per batch; 0: 1024 */
    FILE *progress;            /* a terminal: a progress line, updated a few
                                  times a second, for runs past 1 s; NULL or
                                  not a TTY: nothing */
} rlab_stress_opts;

typedef struct rlab_stress_report rlab_stress_report;

/* Runs the test.  opts may be NULL (all defaults: a 1 s run, no stale
 * detection).  0 and *out set; EINVAL for a test without a name, state
 * size, outcome function or table, with fewer than 2 actors or a gap in
 * actor[], or bad opts (negative, NaN or infinite times); ENOMEM (also for
 * a state larger than 64 MiB); EAGAIN when actor threads could not be
 * started.  On error *out is NULL and no callback has run. */
int rlab_stress_run(const rlab_stress_test *test, const rlab_stress_opts *opts,
                    rlab_stress_report **out);
/* 0 pass; 1 a FORBIDDEN or STALE outcome was seen. */
int rlab_stress_verdict(const rlab_stress_report *r);
/* Samples of one outcome key ("STALE" included); 0 for an unseen key. */
unsigned long long rlab_stress_samples(const rlab_stress_report *r,
                                       const char *outcome);
/* Samples graded FORBIDDEN, plus the STALE sample if any. */
unsigned long long rlab_stress_forbidden(const rlab_stress_report *r);
/* True when the run ended STALE. */
bool rlab_stress_stale(const rlab_stress_report *r);
/* Trials (states whose outcome was taken) and wall time of the run. */
unsigned long long rlab_stress_trials(const rlab_stress_report *r);
double rlab_stress_seconds(const rlab_stress_report *r);
/* The table (outcome, samples, frequency, expectation, description, then
 * trials and trials/s and the verdict), or one JSON object:
 * {"test", "trials", "seconds", "trials_per_second", "verdict": "PASS" |
 *  "FAIL", "stale", "outcomes": [{"outcome", "samples", "frequency",
 *  "expect", "description"}]}.  Outcomes are listed most frequent first,
 * then every table entry never seen (samples 0). */
void rlab_stress_print(const rlab_stress_report *r, FILE *f, bool json);
void rlab_stress_report_free(rlab_stress_report *r);

#ifdef __cplusplus
}
#endif

#endif
