/* test_rlock.c - threading.RLock (CPython's lock_tests.RLockTests, in C). */
#include <float.h>
#include <math.h>
#include <stdatomic.h>

#include "rlab_test.h"

/* Slack for comparing two rlab_test_now() readings with a timeout. */
#define CLOCK_SLACK 1e-6
/* An expired wait must end well before this. */
#define LATE 2.0

/* ------------------------------------------------------------ helpers --- */

/* What a worker thread does with the RLock, step by step; results are
 * checked on the main thread (Check's assertions belong there). */
typedef enum {
    OP_ACQUIRE, /* acquire(timeout) */
    OP_RELEASE, /* release() */
    OP_HOLD,    /* acquire twice, report, wait for `go`, release twice */
    OP_KEEP,    /* acquire and exit while holding it */
    OP_OBSERVE, /* only look: is_owned and count */
} op;

typedef struct {
    rlab_rlock *rlock;
    op op;
    double timeout;
    rlab_event *ready; /* set when the worker reached its point of interest */
    rlab_event *go;    /* OP_HOLD: when to let go */
    atomic_int done;
    int rc, rc2;
    bool owned;
    long count;
    double elapsed;
} job;

static void job_init(job *j, rlab_rlock *r, op o, double timeout)
{
    j->rlock = r;
    j->op = o;
    j->timeout = timeout;
    j->ready = rlab_event_new();
    j->go = rlab_event_new();
    ck_assert_ptr_nonnull(j->ready);
    ck_assert_ptr_nonnull(j->go);
    atomic_init(&j->done, 0);
    j->rc = j->rc2 = -1;
    j->owned = false;
    j->count = -1;
    j->elapsed = -1;
}

static void job_fini(job *j)
{
    rlab_event_free(j->ready);
    rlab_event_free(j->go);
}

static void *worker(void *arg)
{
    job *j = arg;
    rlab_rlock *r = j->rlock;
    double t0;
    switch (j->op) {
    case OP_ACQUIRE:
        rlab_event_set(j->ready);
        t0 = rlab_test_now();
        j->rc = rlab_rlock_acquire(r, j->timeout);
        j->elapsed = rlab_test_now() - t0;
        j->owned = rlab_rlock_is_owned(r);
        j->count = rlab_rlock_count(r);
        if (j->rc == 0)
            j->rc2 = rlab_rlock_release(r);
        break;
    case OP_RELEASE:
        j->rc = rlab_rlock_release(r);
        j->owned = rlab_rlock_is_owned(r);
        j->count = rlab_rlock_count(r);
        break;
    case OP_HOLD:
        j->rc = rlab_rlock_acquire(r, RLAB_GUARD);
        if (j->rc == 0)
            j->rc = rlab_rlock_acquire(r, RLAB_GUARD);
        j->owned = rlab_rlock_is_owned(r);
        j->count = rlab_rlock_count(r);
        rlab_event_set(j->ready);
        j->rc2 = rlab_event_wait(j->go, RLAB_GUARD);
        if (rlab_rlock_release(r) != 0 || rlab_rlock_release(r) != 0 ||
            rlab_rlock_release(r) != EPERM)
            j->rc2 = -3;
        break;
    case OP_KEEP:
        j->rc = rlab_rlock_acquire(r, RLAB_GUARD);
        j->count = rlab_rlock_count(r);
        break;
    case OP_OBSERVE:
        j->owned = rlab_rlock_is_owned(r);
        j->count = rlab_rlock_count(r);
        break;
    }
    atomic_store(&j->done, 1);
    return NULL;
}

static void run_in_thread(job *j)
{
    rlab_test_join(rlab_test_spawn(worker, j));
    ck_assert_int_eq(atomic_load(&j->done), 1);
}

/* Runs `o` on a worker thread to the end; returns its job for checking. */
#define RUN(j, r, o, timeout)                                                  \
    do {                                                                       \
        job_init(&(j), (r), (o), (timeout));                                   \
        run_in_thread(&(j));                                                   \
    } while (0)

/* The main thread owns `r` (at some level); a worker blocks in
 * acquire(timeout) and gets through only once the main thread has released
 * every level. */
static void check_blocks_until_fully_released(rlab_rlock *r, double timeout)
{
    ck_assert_rc(rlab_rlock_acquire(r, timeout), 0);
    ck_assert_rc(rlab_rlock_acquire(r, timeout), 0);
    job j;
    job_init(&j, r, OP_ACQUIRE, timeout);
    rlab_thread *t = rlab_test_spawn(worker, &j);
    ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
    ck_assert_int_eq(atomic_load(&j.done), 0); /* best effort */
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    ck_assert_int_eq(atomic_load(&j.done), 0); /* best effort */
    ck_assert_rc(rlab_rlock_release(r), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert(j.owned);
    ck_assert_int_eq(j.count, 1);
    ck_assert_rc(j.rc2, 0);
    ck_assert(!rlab_rlock_is_owned(r));
    ck_assert_rc(rlab_rlock_acquire(r, 0), 0); /* the worker let go */
    ck_assert_rc(rlab_rlock_release(r), 0);
    job_fini(&j);
}

/* -------------------------------------------------------------- basics --- */

START_TEST(new_rlock_is_not_owned)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_ptr_nonnull(r);
    ck_assert(!rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(acquire_makes_caller_owner_and_release_ends_it)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert(rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert(!rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(owner_reenters_and_count_tracks_each_level)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    /* the owner re-enters at once whatever the timeout form */
    ck_assert_rc(rlab_rlock_acquire(r, 0), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 2);
    ck_assert_rc(rlab_rlock_acquire(r, 0.001), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 3);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 2);
    ck_assert(rlab_rlock_is_owned(r));
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 3);
    for (long want = 2; want >= 0; want--) {
        ck_assert_rc(rlab_rlock_release(r), 0);
        ck_assert_int_eq(rlab_rlock_count(r), want);
        ck_assert(rlab_rlock_is_owned(r) == (want > 0));
    }
    rlab_rlock_free(r);
}
END_TEST

START_TEST(many_levels_are_counted_and_unwound)
{
    enum { LEVELS = 10000 };
    rlab_rlock *r = rlab_rlock_new();
    for (long i = 1; i <= LEVELS; i++) {
        ck_assert_rc(rlab_rlock_acquire(r, 0), 0);
        ck_assert_int_eq(rlab_rlock_count(r), i);
    }
    for (long i = LEVELS - 1; i >= 0; i--) {
        ck_assert_rc(rlab_rlock_release(r), 0);
        ck_assert_int_eq(rlab_rlock_count(r), i);
    }
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(freeing_an_owned_rlock_is_allowed)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(free_null_is_a_noop)
{
    rlab_rlock_free(NULL);
}
END_TEST

/* ------------------------------------------------------------- release --- */

START_TEST(release_of_unowned_rlock_is_eperm)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    ck_assert(!rlab_rlock_is_owned(r));
    /* the failed release did not leave a debt: one acquire, one release */
    ck_assert_rc(rlab_rlock_acquire(r, 0), 0);
    ck_assert_rc(rlab_rlock_acquire(r, 0), 0);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_rc(rlab_rlock_acquire(r, 0), 0);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    /* and it is free for another thread */
    job j;
    RUN(j, r, OP_ACQUIRE, 0);
    ck_assert_rc(j.rc, 0);
    ck_assert_rc(j.rc2, 0);
    job_fini(&j);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(release_by_non_owner_is_eperm_and_keeps_count)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    job j;
    RUN(j, r, OP_RELEASE, 0);
    ck_assert_rc(j.rc, EPERM);
    ck_assert(!j.owned);
    ck_assert_int_eq(j.count, 0);
    job_fini(&j);
    /* the owner is unaffected: still two levels */
    ck_assert(rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 2);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    rlab_rlock_free(r);
}
END_TEST

/* CPython's RLockTests.test_different_thread. */
START_TEST(release_of_rlock_held_by_other_thread_is_eperm)
{
    rlab_rlock *r = rlab_rlock_new();
    job j;
    job_init(&j, r, OP_HOLD, 0);
    rlab_thread *t = rlab_test_spawn(worker, &j);
    ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
    ck_assert_rc(j.rc, 0);
    ck_assert(j.owned);
    ck_assert_int_eq(j.count, 2);
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    ck_assert(!rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    ck_assert_rc(rlab_rlock_acquire(r, 0), EAGAIN); /* still the worker's */
    rlab_event_set(j.go);
    rlab_test_join(t);
    /* the worker still had both levels to release, and no third */
    ck_assert_rc(j.rc2, 0);
    ck_assert_rc(rlab_rlock_acquire(r, 0), 0);
    ck_assert_rc(rlab_rlock_release(r), 0);
    job_fini(&j);
    rlab_rlock_free(r);
}
END_TEST

/* ---------------------------------------------------- ownership, count --- */

/* CPython's test__is_owned and test_recursion_count. */
START_TEST(ownership_and_count_are_per_calling_thread)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    job j;
    RUN(j, r, OP_OBSERVE, 0);
    ck_assert(!j.owned);
    ck_assert_int_eq(j.count, 0);
    job_fini(&j);
    ck_assert(rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(rlab_rlock_release(r), 0);

    /* the other way round: a worker owns two levels, main sees 0 */
    job_init(&j, r, OP_HOLD, 0);
    rlab_thread *t = rlab_test_spawn(worker, &j);
    ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
    ck_assert_int_eq(j.count, 2);
    ck_assert(!rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    rlab_event_set(j.go);
    rlab_test_join(t);
    ck_assert_rc(j.rc2, 0);
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    job_fini(&j);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(thread_exiting_while_holding_leaves_it_locked)
{
    rlab_rlock *r = rlab_rlock_new();
    job j;
    RUN(j, r, OP_KEEP, 0);
    ck_assert_rc(j.rc, 0);
    ck_assert_int_eq(j.count, 1);
    job_fini(&j);
    /* nobody alive owns it, and nobody can take or release it */
    ck_assert(!rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 0);
    ck_assert_rc(rlab_rlock_acquire(r, 0), EAGAIN);
    ck_assert_rc(rlab_rlock_acquire(r, 0.01), ETIMEDOUT);
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    ck_assert_rc(rlab_rlock_acquire(r, 0), EAGAIN);
    /* Python too just drops such a lock: free it locked. */
    rlab_rlock_free(r);
}
END_TEST

/* --------------------------------------------------- other threads wait --- */

START_TEST(try_acquire_by_other_thread_is_eagain_while_owned)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    job j;
    RUN(j, r, OP_ACQUIRE, 0);
    ck_assert_rc(j.rc, EAGAIN);
    ck_assert(!j.owned);
    ck_assert_int_eq(j.count, 0);
    job_fini(&j);
    /* one level released: still owned, still EAGAIN */
    ck_assert_rc(rlab_rlock_release(r), 0);
    RUN(j, r, OP_ACQUIRE, 0);
    ck_assert_rc(j.rc, EAGAIN);
    job_fini(&j);
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    /* last level released: the other thread gets it */
    ck_assert_rc(rlab_rlock_release(r), 0);
    RUN(j, r, OP_ACQUIRE, 0);
    ck_assert_rc(j.rc, 0);
    ck_assert(j.owned);
    ck_assert_int_eq(j.count, 1);
    ck_assert_rc(j.rc2, 0);
    job_fini(&j);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(timed_acquire_by_other_thread_expires_with_etimedout)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    job j;
    RUN(j, r, OP_ACQUIRE, 0.1);
    ck_assert_rc(j.rc, ETIMEDOUT);
    ck_assert_double_ge(j.elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(j.elapsed, LATE);
    ck_assert(!j.owned);
    ck_assert_int_eq(j.count, 0);
    job_fini(&j);
    ck_assert(rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    ck_assert_rc(rlab_rlock_release(r), 0);
    /* usable after the timeout */
    check_blocks_until_fully_released(r, RLAB_GUARD);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(other_thread_blocks_until_every_level_is_released)
{
    rlab_rlock *r = rlab_rlock_new();
    check_blocks_until_fully_released(r, RLAB_GUARD);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(infinite_and_huge_timeouts_wait_until_released)
{
    const double forever[] = {RLAB_FOREVER, INFINITY, DBL_MAX, 1e300,
                              1e18,         1e9,      1e8};
    rlab_rlock *r = rlab_rlock_new();
    for (size_t i = 0; i < sizeof forever / sizeof *forever; i++)
        check_blocks_until_fully_released(r, forever[i]);
    rlab_rlock_free(r);
}
END_TEST

enum { N_CONTENDERS = 5 };

typedef struct {
    rlab_rlock *rlock;
    rlab_barrier *start;
    long iterations;
    long counter; /* guarded by the rlock, deliberately not atomic */
    atomic_int inside;
    atomic_int overlaps;
    atomic_int finished;
    atomic_int failures;
} contended;

static void *contender_fn(void *arg)
{
    contended *c = arg;
    if (rlab_barrier_wait(c->start, RLAB_GUARD, NULL) != 0)
        atomic_fetch_add(&c->failures, 1);
    for (long i = 0; i < c->iterations; i++) {
        /* two levels per round, so re-entry is exercised under contention */
        if (rlab_rlock_acquire(c->rlock, RLAB_GUARD) != 0 ||
            rlab_rlock_acquire(c->rlock, 0) != 0) {
            atomic_fetch_add(&c->failures, 1);
            break;
        }
        if (atomic_fetch_add(&c->inside, 1) != 0)
            atomic_fetch_add(&c->overlaps, 1);
        if (rlab_rlock_count(c->rlock) != 2)
            atomic_fetch_add(&c->failures, 1);
        c->counter++;
        atomic_fetch_sub(&c->inside, 1);
        if (rlab_rlock_release(c->rlock) != 0 ||
            rlab_rlock_release(c->rlock) != 0)
            atomic_fetch_add(&c->failures, 1);
    }
    atomic_fetch_add(&c->finished, 1);
    return NULL;
}

START_TEST(contended_acquires_block_until_release_then_take_turns)
{
    contended c;
    c.rlock = rlab_rlock_new();
    c.start = rlab_barrier_new(N_CONTENDERS + 1, NULL, NULL, RLAB_FOREVER);
    ck_assert_ptr_nonnull(c.start);
    c.iterations = rlab_test_scaled(5000);
    c.counter = 0;
    atomic_init(&c.inside, 0);
    atomic_init(&c.overlaps, 0);
    atomic_init(&c.finished, 0);
    atomic_init(&c.failures, 0);
    ck_assert_rc(rlab_rlock_acquire(c.rlock, RLAB_FOREVER), 0);

    rlab_thread *t[N_CONTENDERS];
    for (int i = 0; i < N_CONTENDERS; i++)
        t[i] = rlab_test_spawn(contender_fn, &c);
    ck_assert_rc(rlab_barrier_wait(c.start, RLAB_GUARD, NULL), 0);
    ck_assert_int_eq(atomic_load(&c.finished), 0); /* best effort */
    ck_assert_int_eq(c.counter, 0); /* nobody got in while main owns it */
    ck_assert_rc(rlab_rlock_release(c.rlock), 0);
    for (int i = 0; i < N_CONTENDERS; i++)
        rlab_test_join(t[i]);
    ck_assert_int_eq(atomic_load(&c.failures), 0);
    ck_assert_int_eq(atomic_load(&c.overlaps), 0);
    ck_assert_int_eq(c.counter, N_CONTENDERS * c.iterations);
    ck_assert_rc(rlab_rlock_acquire(c.rlock, 0), 0);
    ck_assert_rc(rlab_rlock_release(c.rlock), 0);
    rlab_barrier_free(c.start);
    rlab_rlock_free(c.rlock);
}
END_TEST

/* ---------------------------------------------------------- bad input --- */

START_TEST(null_handle_is_einval)
{
    ck_assert_rc(rlab_rlock_acquire(NULL, RLAB_FOREVER), EINVAL);
    ck_assert_rc(rlab_rlock_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_rlock_acquire(NULL, 1.0), EINVAL);
    ck_assert_rc(rlab_rlock_release(NULL), EINVAL);
    ck_assert(!rlab_rlock_is_owned(NULL));
    ck_assert_int_eq(rlab_rlock_count(NULL), 0);
}
END_TEST

static const double bad_timeouts[] = {NAN,   -NAN, -0.5,      -2.0,
                                      -1e-9, -1.5, -INFINITY, -DBL_MAX};

START_TEST(bad_timeout_is_einval_and_does_not_take_a_free_rlock)
{
    rlab_rlock *r = rlab_rlock_new();
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
        ck_assert_rc(rlab_rlock_acquire(r, bad_timeouts[i]), EINVAL);
        ck_assert_msg(!rlab_rlock_is_owned(r), "timeout %g took the rlock",
                      bad_timeouts[i]);
        ck_assert_int_eq(rlab_rlock_count(r), 0);
    }
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(bad_timeout_is_einval_and_does_not_reenter)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
        ck_assert_rc(rlab_rlock_acquire(r, bad_timeouts[i]), EINVAL);
        ck_assert_int_eq(rlab_rlock_count(r), 1);
    }
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert_rc(rlab_rlock_release(r), EPERM);
    rlab_rlock_free(r);
}
END_TEST

START_TEST(bad_timeout_is_einval_at_once_for_other_thread)
{
    rlab_rlock *r = rlab_rlock_new();
    ck_assert_rc(rlab_rlock_acquire(r, RLAB_FOREVER), 0);
    job j;
    RUN(j, r, OP_ACQUIRE, NAN);
    ck_assert_rc(j.rc, EINVAL);
    ck_assert_double_lt(j.elapsed, LATE);
    job_fini(&j);
    RUN(j, r, OP_ACQUIRE, -0.25);
    ck_assert_rc(j.rc, EINVAL);
    ck_assert_double_lt(j.elapsed, LATE);
    job_fini(&j);
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    ck_assert_rc(rlab_rlock_release(r), 0);
    rlab_rlock_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rlock");

    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, new_rlock_is_not_owned);
    tcase_add_test(tc, acquire_makes_caller_owner_and_release_ends_it);
    tcase_add_test(tc, owner_reenters_and_count_tracks_each_level);
    tcase_add_test(tc, many_levels_are_counted_and_unwound);
    tcase_add_test(tc, freeing_an_owned_rlock_is_allowed);
    tcase_add_test(tc, free_null_is_a_noop);
    suite_add_tcase(s, tc);

    tc = tcase_create("release");
    tcase_add_test(tc, release_of_unowned_rlock_is_eperm);
    tcase_add_test(tc, release_by_non_owner_is_eperm_and_keeps_count);
    tcase_add_test(tc, release_of_rlock_held_by_other_thread_is_eperm);
    suite_add_tcase(s, tc);

    tc = tcase_create("ownership");
    tcase_add_test(tc, ownership_and_count_are_per_calling_thread);
    tcase_add_test(tc, thread_exiting_while_holding_leaves_it_locked);
    suite_add_tcase(s, tc);

    tc = tcase_create("contention");
    tcase_add_test(tc, try_acquire_by_other_thread_is_eagain_while_owned);
    tcase_add_test(tc, timed_acquire_by_other_thread_expires_with_etimedout);
    tcase_add_test(tc, other_thread_blocks_until_every_level_is_released);
    tcase_add_test(tc, infinite_and_huge_timeouts_wait_until_released);
    tcase_add_test(tc, contended_acquires_block_until_release_then_take_turns);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_test(tc, null_handle_is_einval);
    tcase_add_test(tc, bad_timeout_is_einval_and_does_not_take_a_free_rlock);
    tcase_add_test(tc, bad_timeout_is_einval_and_does_not_reenter);
    tcase_add_test(tc, bad_timeout_is_einval_at_once_for_other_thread);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
