/* test_lock.c - threading.Lock (CPython's lock_tests.LockTests, in C). */
#include <float.h>
#include <math.h>
#include <stdatomic.h>

#include "rlab_test.h"

/* Slack for comparing two rlab_test_now() readings with a timeout: the
 * doubles round at about 1e-10 s, far below anything scheduling does. */
#define CLOCK_SLACK 1e-6
/* An expired wait must end well before this (it would mean a lost deadline). */
#define LATE 2.0

/* ------------------------------------------------------------ helpers --- */

/* One worker's job: optionally signal `ready`, then one acquire or release,
 * timed, with the outcome left for the main thread to check (Check's
 * assertions must run on the test's own thread). */
typedef struct {
    rlab_lock *lock;
    rlab_event *ready; /* set just before the call, may be NULL */
    double timeout;
    atomic_int done; /* 1 once the call returned */
    int rc;
    double elapsed;
} job;

static void job_init(job *j, rlab_lock *lock, double timeout, bool ready)
{
    j->lock = lock;
    j->ready = NULL;
    if (ready) {
        j->ready = rlab_event_new();
        ck_assert_ptr_nonnull(j->ready);
    }
    j->timeout = timeout;
    atomic_init(&j->done, 0);
    j->rc = -1;
    j->elapsed = -1;
}

static void job_fini(job *j)
{
    rlab_event_free(j->ready);
}

static void *acquire_fn(void *arg)
{
    job *j = arg;
    if (j->ready)
        rlab_event_set(j->ready);
    double t0 = rlab_test_now();
    j->rc = rlab_lock_acquire(j->lock, j->timeout);
    j->elapsed = rlab_test_now() - t0;
    atomic_store(&j->done, 1);
    return NULL;
}

static void *release_fn(void *arg)
{
    job *j = arg;
    j->rc = rlab_lock_release(j->lock);
    atomic_store(&j->done, 1);
    return NULL;
}

/* Runs one job on its own thread to the end. */
static void run_in_thread(void *(*fn)(void *), job *j)
{
    rlab_test_join(rlab_test_spawn(fn, j));
    ck_assert_int_eq(atomic_load(&j->done), 1);
}

/* The main thread holds `lock`; a worker blocks in acquire(timeout) and
 * must get through only once the main thread releases. */
static void check_blocks_until_release(rlab_lock *lock, double timeout)
{
    job j;
    job_init(&j, lock, timeout, true);
    ck_assert_rc(rlab_lock_acquire(lock, 0), 0);
    rlab_thread *t = rlab_test_spawn(acquire_fn, &j);
    ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
    /* Best effort: the worker is about to block or blocked; it must not
     * have got through a held lock. */
    ck_assert_int_eq(atomic_load(&j.done), 0);
    ck_assert_rc(rlab_lock_release(lock), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    /* The worker now holds it; any thread may release a Lock. */
    ck_assert(rlab_lock_locked(lock));
    ck_assert_rc(rlab_lock_release(lock), 0);
    ck_assert(!rlab_lock_locked(lock));
    job_fini(&j);
}

/* -------------------------------------------------------------- basics --- */

START_TEST(new_lock_is_unlocked)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_ptr_nonnull(l);
    ck_assert(!rlab_lock_locked(l));
    rlab_lock_free(l);
}
END_TEST

START_TEST(acquire_locks_and_release_unlocks)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    ck_assert(!rlab_lock_locked(l));
    /* and again, so release left a reusable lock */
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    ck_assert(!rlab_lock_locked(l));
    rlab_lock_free(l);
}
END_TEST

START_TEST(freeing_a_held_lock_is_allowed)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    rlab_lock_free(l);
}
END_TEST

START_TEST(free_null_is_a_noop)
{
    rlab_lock_free(NULL);
}
END_TEST

START_TEST(timed_acquire_of_free_lock_returns_at_once)
{
    rlab_lock *l = rlab_lock_new();
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_lock_acquire(l, 5.0), 0);
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_lock_free(l);
}
END_TEST

/* --------------------------------------------------------- try-acquire --- */

START_TEST(try_acquire_takes_a_free_lock)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, 0), 0);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_lock_free(l);
}
END_TEST

START_TEST(try_acquire_of_held_lock_is_eagain_even_for_the_holder)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, 0), 0);
    /* A Lock is not reentrant. */
    ck_assert_rc(rlab_lock_acquire(l, 0), EAGAIN);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    ck_assert(!rlab_lock_locked(l));
    /* one release undid the one successful acquire, not the failed one */
    ck_assert_rc(rlab_lock_release(l), EPERM);
    rlab_lock_free(l);
}
END_TEST

START_TEST(try_acquire_from_other_thread_is_eagain_while_held)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    job j;
    job_init(&j, l, 0, false);
    run_in_thread(acquire_fn, &j);
    ck_assert_rc(j.rc, EAGAIN);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    /* once released the other thread gets it */
    job_init(&j, l, 0, false);
    run_in_thread(acquire_fn, &j);
    ck_assert_rc(j.rc, 0);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_lock_free(l);
}
END_TEST

/* ------------------------------------------------------------ timeouts --- */

START_TEST(timed_acquire_of_held_lock_expires_with_etimedout)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    job j;
    job_init(&j, l, 0.1, false);
    run_in_thread(acquire_fn, &j);
    ck_assert_rc(j.rc, ETIMEDOUT);
    ck_assert_double_ge(j.elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(j.elapsed, LATE);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_lock_free(l);
}
END_TEST

START_TEST(timed_acquire_by_holder_expires_with_etimedout)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_lock_acquire(l, 0.1), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_lock_free(l);
}
END_TEST

/* CPython issue #11618: the lock is in a proper state after a timeout. */
START_TEST(lock_is_usable_after_a_timed_out_acquire)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_lock_acquire(l, 0.01), ETIMEDOUT);
    ck_assert_rc(rlab_lock_release(l), 0);
    ck_assert(!rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_acquire(l, 0), 0);
    ck_assert_rc(rlab_lock_release(l), 0);
    /* a waiter left behind by the timeout must not eat the next hand-off */
    check_blocks_until_release(l, RLAB_GUARD);
    rlab_lock_free(l);
}
END_TEST

START_TEST(infinite_and_huge_timeouts_on_free_lock_succeed_at_once)
{
    const double forever[] = {RLAB_FOREVER, INFINITY, DBL_MAX,
                              1e300,        1e18,     1e9};
    rlab_lock *l = rlab_lock_new();
    for (size_t i = 0; i < sizeof forever / sizeof *forever; i++) {
        double t0 = rlab_test_now();
        ck_assert_rc(rlab_lock_acquire(l, forever[i]), 0);
        ck_assert_double_lt(rlab_test_now() - t0, LATE);
        ck_assert_rc(rlab_lock_release(l), 0);
    }
    rlab_lock_free(l);
}
END_TEST

START_TEST(infinite_and_huge_timeouts_wait_until_released)
{
    /* Each must block (not fail at once as an overflowed deadline in the
     * past would) and succeed when another thread releases. */
    const double forever[] = {RLAB_FOREVER, INFINITY, DBL_MAX, 1e300,
                              1e18,         1e9,      1e8};
    rlab_lock *l = rlab_lock_new();
    for (size_t i = 0; i < sizeof forever / sizeof *forever; i++)
        check_blocks_until_release(l, forever[i]);
    rlab_lock_free(l);
}
END_TEST

/* ------------------------------------------------------- contention --- */

enum { N_CONTENDERS = 5 };

typedef struct {
    rlab_lock *lock;
    rlab_barrier *start; /* N_CONTENDERS + 1: all workers are about to block */
    atomic_int finished;
    atomic_int failures;
} contended;

static void *contender_fn(void *arg)
{
    contended *c = arg;
    if (rlab_barrier_wait(c->start, RLAB_GUARD, NULL) != 0 ||
        rlab_lock_acquire(c->lock, RLAB_GUARD) != 0 ||
        rlab_lock_release(c->lock) != 0)
        atomic_fetch_add(&c->failures, 1);
    atomic_fetch_add(&c->finished, 1);
    return NULL;
}

START_TEST(contended_acquires_block_until_release_then_all_get_through)
{
    contended c;
    c.lock = rlab_lock_new();
    c.start = rlab_barrier_new(N_CONTENDERS + 1, NULL, NULL, RLAB_FOREVER);
    ck_assert_ptr_nonnull(c.start);
    atomic_init(&c.finished, 0);
    atomic_init(&c.failures, 0);
    ck_assert_rc(rlab_lock_acquire(c.lock, RLAB_FOREVER), 0);

    rlab_thread *t[N_CONTENDERS];
    for (int i = 0; i < N_CONTENDERS; i++)
        t[i] = rlab_test_spawn(contender_fn, &c);
    ck_assert_rc(rlab_barrier_wait(c.start, RLAB_GUARD, NULL), 0);
    ck_assert_int_eq(atomic_load(&c.finished), 0); /* best effort */
    ck_assert_rc(rlab_lock_release(c.lock), 0);
    for (int i = 0; i < N_CONTENDERS; i++)
        rlab_test_join(t[i]);
    ck_assert_int_eq(atomic_load(&c.finished), N_CONTENDERS);
    ck_assert_int_eq(atomic_load(&c.failures), 0);
    ck_assert(!rlab_lock_locked(c.lock));
    rlab_barrier_free(c.start);
    rlab_lock_free(c.lock);
}
END_TEST

enum { N_WORKERS = 4 };

typedef struct {
    rlab_lock *lock;
    long iterations;
    long counter;      /* guarded by lock, deliberately not atomic */
    atomic_int inside; /* holders right now */
    atomic_int overlaps;
    atomic_int failures;
} exclusion;

static void *exclusion_fn(void *arg)
{
    exclusion *x = arg;
    for (long i = 0; i < x->iterations; i++) {
        if (rlab_lock_acquire(x->lock, RLAB_GUARD) != 0) {
            atomic_fetch_add(&x->failures, 1);
            return NULL;
        }
        if (atomic_fetch_add(&x->inside, 1) != 0)
            atomic_fetch_add(&x->overlaps, 1);
        x->counter++;
        atomic_fetch_sub(&x->inside, 1);
        if (rlab_lock_release(x->lock) != 0)
            atomic_fetch_add(&x->failures, 1);
    }
    return NULL;
}

START_TEST(lock_admits_one_holder_at_a_time)
{
    exclusion x;
    x.lock = rlab_lock_new();
    x.iterations = rlab_test_scaled(20000);
    x.counter = 0;
    atomic_init(&x.inside, 0);
    atomic_init(&x.overlaps, 0);
    atomic_init(&x.failures, 0);
    rlab_thread *t[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++)
        t[i] = rlab_test_spawn(exclusion_fn, &x);
    for (int i = 0; i < N_WORKERS; i++)
        rlab_test_join(t[i]);
    ck_assert_int_eq(atomic_load(&x.failures), 0);
    ck_assert_int_eq(atomic_load(&x.overlaps), 0);
    ck_assert_int_eq(x.counter, N_WORKERS * x.iterations);
    ck_assert(!rlab_lock_locked(x.lock));
    rlab_lock_free(x.lock);
}
END_TEST

/* CPython's LockTests.test_reacquire: the holder's second acquire blocks
 * until another thread releases. */
static void *reacquire_fn(void *arg)
{
    job *j = arg;
    if (rlab_lock_acquire(j->lock, RLAB_GUARD) != 0) {
        j->rc = -2;
        atomic_store(&j->done, 1);
        return NULL;
    }
    return acquire_fn(j); /* signals ready, then blocks on its own lock */
}

START_TEST(holders_second_acquire_blocks_until_another_thread_releases)
{
    rlab_lock *l = rlab_lock_new();
    job j;
    job_init(&j, l, RLAB_GUARD, true);
    rlab_thread *t = rlab_test_spawn(reacquire_fn, &j);
    ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
    ck_assert(rlab_lock_locked(l));
    ck_assert_int_eq(atomic_load(&j.done), 0); /* best effort */
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    job_fini(&j);
    rlab_lock_free(l);
}
END_TEST

/* ------------------------------------------------------------- release --- */

START_TEST(release_from_other_thread_unlocks)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    job j;
    job_init(&j, l, 0, false);
    run_in_thread(release_fn, &j);
    ck_assert_rc(j.rc, 0);
    ck_assert(!rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_acquire(l, 0), 0);
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_lock_free(l);
}
END_TEST

START_TEST(release_from_other_thread_wakes_a_blocked_acquirer)
{
    /* main holds, worker A blocks, worker B releases: A gets through */
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    job a, b;
    job_init(&a, l, RLAB_GUARD, true);
    job_init(&b, l, 0, false);
    rlab_thread *ta = rlab_test_spawn(acquire_fn, &a);
    ck_assert_rc(rlab_event_wait(a.ready, RLAB_GUARD), 0);
    ck_assert_int_eq(atomic_load(&a.done), 0); /* best effort */
    run_in_thread(release_fn, &b);
    ck_assert_rc(b.rc, 0);
    rlab_test_join(ta);
    ck_assert_rc(a.rc, 0);
    ck_assert(rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), 0);
    job_fini(&a);
    rlab_lock_free(l);
}
END_TEST

START_TEST(release_of_unlocked_lock_is_eperm_and_changes_nothing)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_release(l), EPERM);
    ck_assert(!rlab_lock_locked(l));
    /* the failed release did not leave it "over-released" or locked */
    ck_assert_rc(rlab_lock_acquire(l, 0), 0);
    ck_assert_rc(rlab_lock_acquire(l, 0), EAGAIN);
    ck_assert_rc(rlab_lock_release(l), 0);
    ck_assert_rc(rlab_lock_release(l), EPERM);
    ck_assert(!rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_acquire(l, 0), 0);
    ck_assert_rc(rlab_lock_release(l), 0);
    rlab_lock_free(l);
}
END_TEST

START_TEST(release_of_unlocked_lock_from_other_thread_is_eperm)
{
    rlab_lock *l = rlab_lock_new();
    job j;
    job_init(&j, l, 0, false);
    run_in_thread(release_fn, &j);
    ck_assert_rc(j.rc, EPERM);
    ck_assert(!rlab_lock_locked(l));
    rlab_lock_free(l);
}
END_TEST

/* ---------------------------------------------------------- bad input --- */

START_TEST(null_handle_is_einval)
{
    ck_assert_rc(rlab_lock_acquire(NULL, RLAB_FOREVER), EINVAL);
    ck_assert_rc(rlab_lock_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_lock_acquire(NULL, 1.0), EINVAL);
    ck_assert_rc(rlab_lock_release(NULL), EINVAL);
    ck_assert(!rlab_lock_locked(NULL));
}
END_TEST

static const double bad_timeouts[] = {NAN,   -NAN, -0.5,      -2.0,
                                      -1e-9, -1.5, -INFINITY, -DBL_MAX};

START_TEST(bad_timeout_is_einval_and_leaves_a_free_lock_free)
{
    rlab_lock *l = rlab_lock_new();
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
        ck_assert_rc(rlab_lock_acquire(l, bad_timeouts[i]), EINVAL);
        ck_assert_msg(!rlab_lock_locked(l), "timeout %g took the lock",
                      bad_timeouts[i]);
    }
    ck_assert_rc(rlab_lock_release(l), EPERM);
    rlab_lock_free(l);
}
END_TEST

START_TEST(bad_timeout_is_einval_at_once_on_a_held_lock)
{
    rlab_lock *l = rlab_lock_new();
    ck_assert_rc(rlab_lock_acquire(l, RLAB_FOREVER), 0);
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
        double t0 = rlab_test_now();
        ck_assert_rc(rlab_lock_acquire(l, bad_timeouts[i]), EINVAL);
        ck_assert_double_lt(rlab_test_now() - t0, LATE);
        ck_assert(rlab_lock_locked(l));
    }
    /* still held exactly once */
    ck_assert_rc(rlab_lock_release(l), 0);
    ck_assert(!rlab_lock_locked(l));
    ck_assert_rc(rlab_lock_release(l), EPERM);
    rlab_lock_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lock");

    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, new_lock_is_unlocked);
    tcase_add_test(tc, acquire_locks_and_release_unlocks);
    tcase_add_test(tc, freeing_a_held_lock_is_allowed);
    tcase_add_test(tc, free_null_is_a_noop);
    tcase_add_test(tc, timed_acquire_of_free_lock_returns_at_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("try_acquire");
    tcase_add_test(tc, try_acquire_takes_a_free_lock);
    tcase_add_test(tc, try_acquire_of_held_lock_is_eagain_even_for_the_holder);
    tcase_add_test(tc, try_acquire_from_other_thread_is_eagain_while_held);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeouts");
    tcase_add_test(tc, timed_acquire_of_held_lock_expires_with_etimedout);
    tcase_add_test(tc, timed_acquire_by_holder_expires_with_etimedout);
    tcase_add_test(tc, lock_is_usable_after_a_timed_out_acquire);
    tcase_add_test(tc, infinite_and_huge_timeouts_on_free_lock_succeed_at_once);
    tcase_add_test(tc, infinite_and_huge_timeouts_wait_until_released);
    suite_add_tcase(s, tc);

    tc = tcase_create("contention");
    tcase_add_test(tc,
                   contended_acquires_block_until_release_then_all_get_through);
    tcase_add_test(tc, lock_admits_one_holder_at_a_time);
    tcase_add_test(tc,
                   holders_second_acquire_blocks_until_another_thread_releases);
    suite_add_tcase(s, tc);

    tc = tcase_create("release");
    tcase_add_test(tc, release_from_other_thread_unlocks);
    tcase_add_test(tc, release_from_other_thread_wakes_a_blocked_acquirer);
    tcase_add_test(tc, release_of_unlocked_lock_is_eperm_and_changes_nothing);
    tcase_add_test(tc, release_of_unlocked_lock_from_other_thread_is_eperm);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_test(tc, null_handle_is_einval);
    tcase_add_test(tc, bad_timeout_is_einval_and_leaves_a_free_lock_free);
    tcase_add_test(tc, bad_timeout_is_einval_at_once_on_a_held_lock);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
