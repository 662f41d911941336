/*
 * Exercise: litmus  (the lesson: racelab explain litmus)
 *
 * Dekker's entry protocol, without a lock: each of two threads raises its
 * own flag, then looks at the other's, and enters the critical section
 * only if the other's flag is still down.  In program order at least one
 * thread must see the other's flag up, so at most one enters.  On a real
 * CPU both sometimes enter.
 *
 * Goal: never let both threads in.  Keep the protocol (no lock): change
 * how the flags are stored and loaded.
 *
 * Run:   ctest --preset exercises -R litmus --output-on-failure
 * Stuck: tests/exercises/litmus.hint.md
 * Done:  diff your file with tests/exercises/solutions/litmus.c
 */
#include <stdatomic.h>

#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

typedef struct {
    atomic_int flag0, flag1; /* seq_cst loads and stores: one total order */
    int entered0, entered1;
} dekker;

static void setup(void *state) { (void)state; }    /* before the threads */
static void teardown(void *state) { (void)state; } /* after they finished */

static void thread0(void *state)
{
    dekker *d = state;
    d->flag0 = 1;        /* I want to enter */
    if (d->flag1 == 0)   /* and the other one does not */
        d->entered0 = 1; /* so I enter */
}

static void thread1(void *state)
{
    dekker *d = state;
    d->flag1 = 1;
    if (d->flag0 == 0)
        d->entered1 = 1;
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const dekker *d = state;
    static const char *const names[] = {"nobody entered", "thread 0 entered",
                                        "thread 1 entered", "both entered"};
    snprintf(key, len, "%s", names[d->entered0 + 2 * d->entered1]);
}

static const rlab_outcome grades[] = {
    {"thread 0 entered", RLAB_ACCEPTABLE, "thread 1 saw flag0 up"},
    {"thread 1 entered", RLAB_ACCEPTABLE, "thread 0 saw flag1 up"},
    {"nobody entered", RLAB_ACCEPTABLE,
     "each saw the other's flag up (Dekker would then back off and retry)"},
    {"both entered", RLAB_FORBIDDEN,
     "each saw the other's flag down: mutual exclusion broken"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.litmus",
        .description = "Dekker's entry: raise my flag, then look at yours",
        .state_size = sizeof(dekker),
        .init = setup,
        .actor = {thread0, thread1},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "litmus",
        .problem = "Each thread's load of the other's flag ran before its own "
                   "store was visible to the\nother thread (store buffering): "
                   "both saw a 0 and both entered.  volatile orders\nnothing "
                   "in the CPU, and two threads touch the flags without "
                   "synchronization.",
    };
    return exercise_main(&test, &e);
}
