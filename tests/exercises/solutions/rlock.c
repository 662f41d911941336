/*
 * Exercise: rlock  (the lesson: racelab explain rlock)
 *
 * A sequence of two numbers is guarded by a lock.  set() takes the lock to
 * write both numbers; reverse() takes it too, so that reading the pair and
 * writing it back swapped is one step, and calls set() while holding it.
 * One thread sets the pair while another reverses it, and the threads get
 * stuck.
 *
 * Goal: make reverse() work, keeping it one atomic step (no gap in which
 * another thread could slip in between the read and the write).
 *
 * Run:   ctest --preset exercises -R rlock --output-on-failure
 * Stuck: tests/exercises/rlock.hint.md
 * Done:  diff your file with tests/exercises/solutions/rlock.c
 */
#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

typedef struct {
    rlab_rlock *lock; /* guards first and last; re-entrant */
    int first, last;
} sequence;

static void setup(void *state) /* before the threads */
{
    sequence *s = state;
    s->lock = rlab_rlock_new();
}

static void teardown(void *state) /* after they finished */
{
    sequence *s = state;
    rlab_rlock_free(s->lock);
}

static void set(sequence *s, int first, int last)
{
    rlab_rlock_acquire(s->lock, RLAB_FOREVER);
    s->first = first;
    s->last = last;
    rlab_rlock_release(s->lock);
}

static void reverse(sequence *s)
{
    rlab_rlock_acquire(s->lock, RLAB_FOREVER);
    set(s, s->last, s->first);
    rlab_rlock_release(s->lock);
}

static void setter(void *state) { set(state, 1, 2); }
static void reverser(void *state) { reverse(state); }

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const sequence *s = state;
    snprintf(key, len, "%d, %d", s->first, s->last);
}

static const rlab_outcome grades[] = {
    {"1, 2", RLAB_ACCEPTABLE, "reverse() ran first (on 0, 0), then set()"},
    {"2, 1", RLAB_ACCEPTABLE, "set() ran first, then reverse() swapped it"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.rlock",
        .description = "set(1, 2) and reverse() on one lock-guarded pair",
        .state_size = sizeof(sequence),
        .init = setup,
        .actor = {setter, reverser},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "rlock",
        .problem = "reverse() holds the lock and calls set(), which acquires "
                   "the same lock again: a Lock\ncannot be re-entered, so the "
                   "thread waits for itself forever.",
        .stale_after = 0.5,
    };
    return exercise_main(&test, &e);
}
