/*
 * Exercise: resource_pool  (the lesson: racelab explain resource_pool)
 *
 * A pool has 5 connections and 7 users.  Each user takes a connection,
 * serves a request on it and gives it back, 4 times.  The pool can only
 * ever hand out 5 connections at once, but more users than that get in.
 *
 * Goal: never more than 5 users inside the pool at once; the others wait
 * their turn.
 *
 * Run:   ctest --preset exercises -R resource_pool --output-on-failure
 * Stuck: tests/exercises/resource_pool.hint.md
 * Done:  diff your file with tests/exercises/solutions/resource_pool.c
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <stdatomic.h>
#include <time.h>

#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

#define CONNECTIONS 5
#define USERS 7
#define USES 4

typedef struct {
    atomic_int in_use; /* connections handed out right now */
    atomic_int most;   /* the most ever handed out at once */
    rlab_semaphore *room; /* one unit per connection */
} pool;

static void setup(void *state) /* before the threads */
{
    pool *p = state;
    p->room = rlab_semaphore_new(CONNECTIONS);
}

static void teardown(void *state) /* after they finished */
{
    pool *p = state;
    rlab_semaphore_free(p->room);
}

static void take(pool *p)
{
    int now = atomic_fetch_add(&p->in_use, 1) + 1;
    int most = atomic_load(&p->most);
    while (now > most && !atomic_compare_exchange_weak(&p->most, &most, now))
        ;
}

static void give_back(pool *p)
{
    atomic_fetch_sub(&p->in_use, 1);
}

/* Serves one request: about 0.5 ms of this thread's CPU time.  A user
 * that loses its CPU meanwhile keeps its connection, as one waiting for
 * the network would. */
static void serve(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    long end = t.tv_sec * 1000000000L + t.tv_nsec + 500000;
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    while (t.tv_sec * 1000000000L + t.tv_nsec < end);
}

static void user(void *state)
{
    pool *p = state;
    for (int i = 0; i < USES; i++) {
        rlab_semaphore_acquire(p->room, RLAB_FOREVER); /* wait for room */
        take(p);
        serve();
        give_back(p);
        rlab_semaphore_release(p->room, 1);
    }
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const pool *p = state;
    snprintf(key, len, "%d at once", atomic_load(&p->most));
}

static const rlab_outcome grades[] = {
    {"6 at once", RLAB_FORBIDDEN, "one user more than connections"},
    {"7 at once", RLAB_FORBIDDEN, "two users more than connections"},
    {"*", RLAB_ACCEPTABLE, "5 or fewer at once"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.resource_pool",
        .description = "7 users, a pool of 5 connections",
        .state_size = sizeof(pool),
        .init = setup,
        .actor = {user, user, user, user, user, user, user},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "resource_pool",
        .problem = "Nothing stops a sixth or seventh user from taking a "
                   "connection while 5 are in use:\nthe pool has no limit "
                   "on how many threads are inside at once.",
    };
    return exercise_main(&test, &e);
}
