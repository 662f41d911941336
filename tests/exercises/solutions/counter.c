/*
 * Exercise: counter  (the lesson: racelab explain counter)
 *
 * Two threads each add 1 to a shared counter 100000 times.  The counter
 * should end at 200000; it ends short, because updates get lost.
 *
 * Goal: make the count come out exact, every time.
 *
 * Run:   ctest --preset exercises -R counter --output-on-failure
 * Stuck: tests/exercises/counter.hint.md
 * Done:  diff your file with tests/exercises/solutions/counter.c
 */
#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

#define N 100000

typedef struct {
    volatile long n; /* volatile: every n += 1 really loads and stores n */
    rlab_lock *lock; /* guards n */
} counter;

static void setup(void *state) /* before the threads */
{
    counter *c = state;
    c->lock = rlab_lock_new();
}

static void teardown(void *state) /* after they finished */
{
    counter *c = state;
    rlab_lock_free(c->lock);
}

static void add_many(void *state)
{
    counter *c = state;
    for (int i = 0; i < N; i++) {
        rlab_lock_acquire(c->lock, RLAB_FOREVER);
        c->n += 1; /* one thread at a time: load, add, store */
        rlab_lock_release(c->lock);
    }
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const counter *c = state;
    snprintf(key, len, "%s", c->n == 2 * N ? "n = 200000" : "n < 200000");
}

static const rlab_outcome grades[] = {
    {"n = 200000", RLAB_ACCEPTABLE, "every update counted"},
    {"n < 200000", RLAB_FORBIDDEN,
     "updates lost: both threads loaded the same n, one store overwrote the "
     "other"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.counter",
        .description = "2 threads x 100000 n += 1 on one counter",
        .state_size = sizeof(counter),
        .init = setup,
        .actor = {add_many, add_many},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "counter",
        .problem = "Two threads do n += 1 on the same counter without a lock: "
                   "both load n, both add 1,\nboth store, and one of the two "
                   "updates is lost.",
    };
    return exercise_main(&test, &e);
}
