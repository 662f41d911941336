/* test_semaphore.c - threading.Semaphore and threading.BoundedSemaphore
 * (CPython's lock_tests.SemaphoreTests and BoundedSemaphoreTests, in C). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "rlab_test.h"

/* Slack for comparing two rlab_test_now() readings with a timeout. */
#define CLOCK_SLACK 1e-6
/* An expired wait must end well before this. */
#define LATE 2.0

/* ------------------------------------------------------------ helpers --- */

/* A completion tally the main thread can wait on, built on pthreads so a
 * semaphore bug cannot hide behind the counting.  Each grant records the
 * phase it happened in. */
enum { MAX_PHASES = 4 };

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long total;
    long per_phase[MAX_PHASES];
    int phase; /* current phase, set by the main thread */
} tally;

static void tally_init(tally *t)
{
    pthread_condattr_t a;
    ck_assert_int_eq(pthread_condattr_init(&a), 0);
    ck_assert_int_eq(pthread_condattr_setclock(&a, CLOCK_MONOTONIC), 0);
    ck_assert_int_eq(pthread_cond_init(&t->cv, &a), 0);
    pthread_condattr_destroy(&a);
    ck_assert_int_eq(pthread_mutex_init(&t->mu, NULL), 0);
    t->total = 0;
    for (int i = 0; i < MAX_PHASES; i++)
        t->per_phase[i] = 0;
    t->phase = 0;
}

static void tally_fini(tally *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

static void tally_add(tally *t)
{
    pthread_mutex_lock(&t->mu);
    t->total++;
    t->per_phase[t->phase]++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void tally_set_phase(tally *t, int phase)
{
    pthread_mutex_lock(&t->mu);
    t->phase = phase;
    pthread_mutex_unlock(&t->mu);
}

static long tally_total(tally *t)
{
    pthread_mutex_lock(&t->mu);
    long n = t->total;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static long tally_in_phase(tally *t, int phase)
{
    pthread_mutex_lock(&t->mu);
    long n = t->per_phase[phase];
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* Waits (within RLAB_GUARD) until at least n completions were counted;
 * returns the total seen then. */
static long tally_wait(tally *t, long n)
{
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_sec += (time_t)RLAB_GUARD;
    pthread_mutex_lock(&t->mu);
    while (t->total < n)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &at) != 0)
            break;
    long total = t->total;
    pthread_mutex_unlock(&t->mu);
    ck_assert_msg(total >= n, "only %ld of %ld completions within the guard",
                  total, n);
    return total;
}

/* A worker: signal `ready`, then `acquires` timed acquires, each counted in
 * the tally when it succeeds. */
typedef struct {
    rlab_semaphore *sem;
    tally *tally;
    rlab_event *ready;
    double timeout;
    int acquires;
    atomic_int done;
    int rc;
    double elapsed;
} job;

static void job_init(job *j, rlab_semaphore *s, tally *t, double timeout,
                     int acquires)
{
    j->sem = s;
    j->tally = t;
    j->ready = rlab_event_new();
    ck_assert_ptr_nonnull(j->ready);
    j->timeout = timeout;
    j->acquires = acquires;
    atomic_init(&j->done, 0);
    j->rc = -1;
    j->elapsed = -1;
}

static void job_fini(job *j)
{
    rlab_event_free(j->ready);
}

static void *acquirer(void *arg)
{
    job *j = arg;
    rlab_event_set(j->ready);
    double t0 = rlab_test_now();
    j->rc = 0;
    for (int i = 0; i < j->acquires && j->rc == 0; i++) {
        j->rc = rlab_semaphore_acquire(j->sem, j->timeout);
        if (j->rc == 0 && j->tally)
            tally_add(j->tally);
    }
    j->elapsed = rlab_test_now() - t0;
    atomic_store(&j->done, 1);
    return NULL;
}

static rlab_semaphore *sem_new(long value)
{
    rlab_semaphore *s = rlab_semaphore_new(value);
    ck_assert_ptr_nonnull(s);
    return s;
}

static rlab_semaphore *bounded_new(long value)
{
    rlab_semaphore *s = rlab_bounded_semaphore_new(value);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---------------------------------------------------------- construct --- */

START_TEST(negative_initial_value_is_einval)
{
    const long bad[] = {-1, -2, -1000, LONG_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        ck_assert_ptr_null(rlab_semaphore_new(bad[i]));
        ck_assert_rc(errno, EINVAL);
        errno = 0;
        ck_assert_ptr_null(rlab_bounded_semaphore_new(bad[i]));
        ck_assert_rc(errno, EINVAL);
    }
}
END_TEST

START_TEST(new_semaphore_has_its_initial_value)
{
    const long good[] = {0, 1, 7, LONG_MAX};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        rlab_semaphore *s = sem_new(good[i]);
        ck_assert_int_eq(rlab_semaphore_value(s), good[i]);
        rlab_semaphore_free(s);
        s = bounded_new(good[i]);
        ck_assert_int_eq(rlab_semaphore_value(s), good[i]);
        rlab_semaphore_free(s);
    }
}
END_TEST

START_TEST(free_null_is_a_noop)
{
    rlab_semaphore_free(NULL);
}
END_TEST

START_TEST(freeing_an_exhausted_semaphore_is_allowed)
{
    rlab_semaphore *s = sem_new(1);
    ck_assert_rc(rlab_semaphore_acquire(s, RLAB_FOREVER), 0);
    rlab_semaphore_free(s);
}
END_TEST

/* ------------------------------------------------------------ acquire --- */

START_TEST(acquire_decrements_and_release_increments)
{
    rlab_semaphore *s = sem_new(2);
    ck_assert_rc(rlab_semaphore_acquire(s, RLAB_FOREVER), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 1);
    ck_assert_rc(rlab_semaphore_acquire(s, RLAB_FOREVER), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 1);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 2);
    rlab_semaphore_free(s);
}
END_TEST

START_TEST(try_acquire_at_zero_is_eagain_and_changes_nothing)
{
    rlab_semaphore *s = sem_new(2);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    rlab_semaphore_free(s);

    s = sem_new(0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    rlab_semaphore_free(s);
}
END_TEST

/* CPython's test_acquire_timeout. */
START_TEST(timed_acquire_at_zero_expires_with_etimedout)
{
    rlab_semaphore *s = sem_new(2);
    ck_assert_rc(rlab_semaphore_acquire(s, 0.005), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0.005), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0.005), ETIMEDOUT);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0.005), 0);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_semaphore_acquire(s, 0.1), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    /* a unit released after the timeout is still there to take */
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    rlab_semaphore_free(s);
}
END_TEST

START_TEST(timed_acquire_in_other_thread_expires_with_etimedout)
{
    rlab_semaphore *s = sem_new(0);
    job j;
    job_init(&j, s, NULL, 0.1, 1);
    rlab_test_join(rlab_test_spawn(acquirer, &j));
    ck_assert_rc(j.rc, ETIMEDOUT);
    ck_assert_double_ge(j.elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(j.elapsed, LATE);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    job_fini(&j);
    rlab_semaphore_free(s);
}
END_TEST

/* CPython's test_default_value: one blocked acquirer passes on release. */
START_TEST(blocked_acquire_gets_through_on_release)
{
    rlab_semaphore *s = sem_new(1);
    ck_assert_rc(rlab_semaphore_acquire(s, RLAB_FOREVER), 0);
    job j;
    job_init(&j, s, NULL, RLAB_GUARD, 1);
    rlab_thread *t = rlab_test_spawn(acquirer, &j);
    ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
    ck_assert_int_eq(atomic_load(&j.done), 0); /* best effort */
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    job_fini(&j);
    rlab_semaphore_free(s);
}
END_TEST

START_TEST(infinite_and_huge_timeouts_wait_for_a_release)
{
    const double forever[] = {RLAB_FOREVER, INFINITY, DBL_MAX, 1e300,
                              1e18,         1e9,      1e8};
    rlab_semaphore *s = sem_new(0);
    for (size_t i = 0; i < sizeof forever / sizeof *forever; i++) {
        job j;
        job_init(&j, s, NULL, forever[i], 1);
        rlab_thread *t = rlab_test_spawn(acquirer, &j);
        ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
        ck_assert_int_eq(atomic_load(&j.done), 0); /* best effort */
        ck_assert_rc(rlab_semaphore_release(s, 1), 0);
        rlab_test_join(t);
        ck_assert_msg(j.rc == 0, "timeout %g: rc %d", forever[i], j.rc);
        ck_assert_int_eq(rlab_semaphore_value(s), 0);
        job_fini(&j);
    }
    /* and with a unit available they return at once */
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, INFINITY), 0);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, DBL_MAX), 0);
    rlab_semaphore_free(s);
}
END_TEST

/* ------------------------------------------------------------ release --- */

START_TEST(release_n_below_one_is_einval_and_changes_nothing)
{
    const long bad[] = {0, -1, -5, LONG_MIN};
    rlab_semaphore *s = sem_new(3);
    rlab_semaphore *b = bounded_new(3);
    ck_assert_rc(rlab_semaphore_acquire(b, 0), 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_rc(rlab_semaphore_release(s, bad[i]), EINVAL);
        ck_assert_int_eq(rlab_semaphore_value(s), 3);
        ck_assert_rc(rlab_semaphore_release(b, bad[i]), EINVAL);
        ck_assert_int_eq(rlab_semaphore_value(b), 2);
    }
    rlab_semaphore_free(s);
    rlab_semaphore_free(b);
}
END_TEST

/* CPython's SemaphoreTests.test_release_unacquired. */
START_TEST(unbounded_release_may_pass_the_initial_value)
{
    rlab_semaphore *s = sem_new(1);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 2);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    rlab_semaphore_free(s);
}
END_TEST

START_TEST(release_n_adds_n_units)
{
    rlab_semaphore *s = sem_new(0);
    ck_assert_rc(rlab_semaphore_release(s, 3), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 3);
    ck_assert_rc(rlab_semaphore_release(s, 1000), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 1003);
    for (int i = 0; i < 1003; i++)
        ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    rlab_semaphore_free(s);
}
END_TEST

START_TEST(release_that_would_overflow_a_long_is_eoverflow)
{
    rlab_semaphore *s = sem_new(LONG_MAX - 1);
    ck_assert_rc(rlab_semaphore_release(s, 2), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), LONG_MAX - 1);
    ck_assert_rc(rlab_semaphore_release(s, LONG_MAX), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), LONG_MAX - 1);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), LONG_MAX);
    ck_assert_rc(rlab_semaphore_release(s, 1), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), LONG_MAX);
    rlab_semaphore_free(s);
}
END_TEST

enum { N_WAITERS = 5, N_WOKEN = 3 };

/* release(n) lets exactly n of the blocked acquirers through. */
START_TEST(release_n_wakes_exactly_n_blocked_acquirers)
{
    rlab_semaphore *s = sem_new(0);
    tally tl;
    tally_init(&tl);
    job j[N_WAITERS];
    rlab_thread *t[N_WAITERS];
    for (int i = 0; i < N_WAITERS; i++) {
        job_init(&j[i], s, &tl, RLAB_GUARD, 1);
        t[i] = rlab_test_spawn(acquirer, &j[i]);
    }
    for (int i = 0; i < N_WAITERS; i++)
        ck_assert_rc(rlab_event_wait(j[i].ready, RLAB_GUARD), 0);
    ck_assert_int_eq(tally_total(&tl), 0); /* best effort */

    ck_assert_rc(rlab_semaphore_release(s, N_WOKEN), 0);
    ck_assert_int_eq(tally_wait(&tl, N_WOKEN), N_WOKEN);
    /* the units are all taken, and the rest are still waiting */
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    int passed = 0;
    for (int i = 0; i < N_WAITERS; i++)
        passed += atomic_load(&j[i].done) && j[i].rc == 0;
    ck_assert_int_le(passed, N_WOKEN);
    ck_assert_int_eq(tally_total(&tl), N_WOKEN); /* best effort */

    ck_assert_rc(rlab_semaphore_release(s, N_WAITERS - N_WOKEN), 0);
    for (int i = 0; i < N_WAITERS; i++) {
        rlab_test_join(t[i]);
        ck_assert_rc(j[i].rc, 0);
        job_fini(&j[i]);
    }
    ck_assert_int_eq(tally_total(&tl), N_WAITERS);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    tally_fini(&tl);
    rlab_semaphore_free(s);
}
END_TEST

/* CPython's test_acquire_contended (units released one at a time) and
 * test_multirelease (release(n)): 10 threads take two units each from a
 * semaphore of 7 with one already taken; each phase must let exactly as
 * many acquires through as units were released. */
enum { N_THREADS = 10 };

static void check_phased_acquires(bool multirelease)
{
    rlab_semaphore *s = sem_new(7);
    ck_assert_rc(rlab_semaphore_acquire(s, RLAB_FOREVER), 0);
    tally tl;
    tally_init(&tl);
    job j[N_THREADS];
    rlab_thread *t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        job_init(&j[i], s, &tl, RLAB_GUARD, 2);
        t[i] = rlab_test_spawn(acquirer, &j[i]);
    }
    for (int i = 0; i < N_THREADS; i++)
        ck_assert_rc(rlab_event_wait(j[i].ready, RLAB_GUARD), 0);

    /* phase 0: the 6 units left */
    tally_wait(&tl, 6);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    ck_assert_int_eq(tally_total(&tl), 6);

    /* phase 1: 7 units */
    tally_set_phase(&tl, 1);
    if (multirelease) {
        ck_assert_rc(rlab_semaphore_release(s, 7), 0);
    } else {
        for (int i = 0; i < 7; i++)
            ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    }
    tally_wait(&tl, 13);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);

    /* phase 2: 6 units */
    tally_set_phase(&tl, 2);
    if (multirelease) {
        ck_assert_rc(rlab_semaphore_release(s, 6), 0);
    } else {
        for (int i = 0; i < 6; i++)
            ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    }
    tally_wait(&tl, 19);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    /* the semaphore is still exhausted: one acquirer is left waiting */
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);

    /* phase 3: the last unit lets the last thread finish */
    tally_set_phase(&tl, 3);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    for (int i = 0; i < N_THREADS; i++) {
        rlab_test_join(t[i]);
        ck_assert_rc(j[i].rc, 0);
        job_fini(&j[i]);
    }
    ck_assert_int_eq(tally_in_phase(&tl, 0), 6);
    ck_assert_int_eq(tally_in_phase(&tl, 1), 7);
    ck_assert_int_eq(tally_in_phase(&tl, 2), 6);
    ck_assert_int_eq(tally_in_phase(&tl, 3), 1);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    tally_fini(&tl);
    rlab_semaphore_free(s);
}

START_TEST(contended_acquires_pass_one_per_released_unit)
{
    check_phased_acquires(false);
}
END_TEST

START_TEST(multirelease_lets_exactly_n_contended_acquires_pass)
{
    check_phased_acquires(true);
}
END_TEST

/* CPython's test_try_acquire_contended: 5 threads try twice each on a
 * semaphore with 3 units left; exactly 3 of the 10 tries succeed. */
typedef struct {
    rlab_semaphore *sem;
    int rc[2];
} trier;

static void *try_twice(void *arg)
{
    trier *tr = arg;
    tr->rc[0] = rlab_semaphore_acquire(tr->sem, 0);
    tr->rc[1] = rlab_semaphore_acquire(tr->sem, 0);
    return NULL;
}

START_TEST(contended_try_acquires_take_exactly_the_units_left)
{
    enum { TRIERS = 5 };
    rlab_semaphore *s = sem_new(4);
    ck_assert_rc(rlab_semaphore_acquire(s, RLAB_FOREVER), 0);
    trier tr[TRIERS];
    rlab_thread *t[TRIERS];
    for (int i = 0; i < TRIERS; i++) {
        tr[i].sem = s;
        tr[i].rc[0] = tr[i].rc[1] = -1;
        t[i] = rlab_test_spawn(try_twice, &tr[i]);
    }
    int ok = 0, eagain = 0;
    for (int i = 0; i < TRIERS; i++) {
        rlab_test_join(t[i]);
        for (int k = 0; k < 2; k++) {
            ok += tr[i].rc[k] == 0;
            eagain += tr[i].rc[k] == EAGAIN;
        }
    }
    ck_assert_int_eq(ok, 3);
    ck_assert_int_eq(eagain, 7);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    rlab_semaphore_free(s);
}
END_TEST

/* No more than `value` holders at once, and every unit comes back. */
enum { LIMIT = 3, N_HOLDERS = 8 };

typedef struct {
    rlab_semaphore *sem;
    long iterations;
    atomic_int inside;
    atomic_int max_inside;
    atomic_int failures;
} admission;

static void *holder_fn(void *arg)
{
    admission *a = arg;
    for (long i = 0; i < a->iterations; i++) {
        if (rlab_semaphore_acquire(a->sem, RLAB_GUARD) != 0) {
            atomic_fetch_add(&a->failures, 1);
            return NULL;
        }
        int now = atomic_fetch_add(&a->inside, 1) + 1;
        int max = atomic_load(&a->max_inside);
        while (now > max &&
               !atomic_compare_exchange_weak(&a->max_inside, &max, now))
            ;
        atomic_fetch_sub(&a->inside, 1);
        if (rlab_semaphore_release(a->sem, 1) != 0)
            atomic_fetch_add(&a->failures, 1);
    }
    return NULL;
}

START_TEST(semaphore_admits_at_most_value_holders_at_once)
{
    admission a;
    a.sem = sem_new(LIMIT);
    a.iterations = rlab_test_scaled(10000);
    atomic_init(&a.inside, 0);
    atomic_init(&a.max_inside, 0);
    atomic_init(&a.failures, 0);
    rlab_thread *t[N_HOLDERS];
    for (int i = 0; i < N_HOLDERS; i++)
        t[i] = rlab_test_spawn(holder_fn, &a);
    for (int i = 0; i < N_HOLDERS; i++)
        rlab_test_join(t[i]);
    ck_assert_int_eq(atomic_load(&a.failures), 0);
    ck_assert_int_le(atomic_load(&a.max_inside), LIMIT);
    ck_assert_int_ge(atomic_load(&a.max_inside), 1);
    ck_assert_int_eq(rlab_semaphore_value(a.sem), LIMIT);
    rlab_semaphore_free(a.sem);
}
END_TEST

/* -------------------------------------------------------------- bounded --- */

/* CPython's BoundedSemaphoreTests.test_release_unacquired. */
START_TEST(bounded_release_above_initial_value_is_eoverflow)
{
    rlab_semaphore *s = bounded_new(1);
    ck_assert_rc(rlab_semaphore_release(s, 1), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), 1);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 1);
    ck_assert_rc(rlab_semaphore_release(s, 1), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), 1);
    /* exactly one unit to take */
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    rlab_semaphore_free(s);

    s = bounded_new(0);
    ck_assert_rc(rlab_semaphore_release(s, 1), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    rlab_semaphore_free(s);
}
END_TEST

START_TEST(bounded_release_n_crossing_the_bound_is_eoverflow_and_adds_nothing)
{
    rlab_semaphore *s = bounded_new(5);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 2);
    /* 2 + 4 > 5: nothing is added, not even the 3 that would fit */
    ck_assert_rc(rlab_semaphore_release(s, 4), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), 2);
    ck_assert_rc(rlab_semaphore_release(s, LONG_MAX), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), 2);
    /* up to the bound is fine */
    ck_assert_rc(rlab_semaphore_release(s, 3), 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 5);
    ck_assert_rc(rlab_semaphore_release(s, 1), EOVERFLOW);
    ck_assert_int_eq(rlab_semaphore_value(s), 5);
    rlab_semaphore_free(s);
}
END_TEST

START_TEST(bounded_semaphore_blocks_and_wakes_like_a_semaphore)
{
    rlab_semaphore *s = bounded_new(1);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), 0);
    ck_assert_rc(rlab_semaphore_acquire(s, 0), EAGAIN);
    job j;
    job_init(&j, s, NULL, RLAB_GUARD, 1);
    rlab_thread *t = rlab_test_spawn(acquirer, &j);
    ck_assert_rc(rlab_event_wait(j.ready, RLAB_GUARD), 0);
    ck_assert_int_eq(atomic_load(&j.done), 0); /* best effort */
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert_int_eq(rlab_semaphore_value(s), 0);
    /* the unit the worker took can come back, once */
    ck_assert_rc(rlab_semaphore_release(s, 1), 0);
    ck_assert_rc(rlab_semaphore_release(s, 1), EOVERFLOW);
    job_fini(&j);
    rlab_semaphore_free(s);
}
END_TEST

/* ---------------------------------------------------------- bad input --- */

START_TEST(null_handle_is_einval)
{
    ck_assert_rc(rlab_semaphore_acquire(NULL, RLAB_FOREVER), EINVAL);
    ck_assert_rc(rlab_semaphore_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_semaphore_acquire(NULL, 1.0), EINVAL);
    ck_assert_rc(rlab_semaphore_release(NULL, 1), EINVAL);
    ck_assert_int_eq(rlab_semaphore_value(NULL), 0);
}
END_TEST

START_TEST(bad_timeout_is_einval_and_takes_no_unit)
{
    const double bad[] = {NAN,   -NAN, -0.5,      -2.0,
                          -1e-9, -1.5, -INFINITY, -DBL_MAX};
    rlab_semaphore *s = sem_new(2);
    rlab_semaphore *z = sem_new(0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_rc(rlab_semaphore_acquire(s, bad[i]), EINVAL);
        ck_assert_msg(rlab_semaphore_value(s) == 2, "timeout %g took a unit",
                      bad[i]);
        double t0 = rlab_test_now();
        ck_assert_rc(rlab_semaphore_acquire(z, bad[i]), EINVAL);
        ck_assert_double_lt(rlab_test_now() - t0, LATE);
        ck_assert_int_eq(rlab_semaphore_value(z), 0);
    }
    rlab_semaphore_free(s);
    rlab_semaphore_free(z);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("semaphore");

    TCase *tc = tcase_create("construct");
    tcase_add_test(tc, negative_initial_value_is_einval);
    tcase_add_test(tc, new_semaphore_has_its_initial_value);
    tcase_add_test(tc, free_null_is_a_noop);
    tcase_add_test(tc, freeing_an_exhausted_semaphore_is_allowed);
    suite_add_tcase(s, tc);

    tc = tcase_create("acquire");
    tcase_add_test(tc, acquire_decrements_and_release_increments);
    tcase_add_test(tc, try_acquire_at_zero_is_eagain_and_changes_nothing);
    tcase_add_test(tc, timed_acquire_at_zero_expires_with_etimedout);
    tcase_add_test(tc, timed_acquire_in_other_thread_expires_with_etimedout);
    tcase_add_test(tc, blocked_acquire_gets_through_on_release);
    tcase_add_test(tc, infinite_and_huge_timeouts_wait_for_a_release);
    suite_add_tcase(s, tc);

    tc = tcase_create("release");
    tcase_add_test(tc, release_n_below_one_is_einval_and_changes_nothing);
    tcase_add_test(tc, unbounded_release_may_pass_the_initial_value);
    tcase_add_test(tc, release_n_adds_n_units);
    tcase_add_test(tc, release_that_would_overflow_a_long_is_eoverflow);
    tcase_add_test(tc, release_n_wakes_exactly_n_blocked_acquirers);
    suite_add_tcase(s, tc);

    tc = tcase_create("contention");
    tcase_add_test(tc, contended_acquires_pass_one_per_released_unit);
    tcase_add_test(tc, multirelease_lets_exactly_n_contended_acquires_pass);
    tcase_add_test(tc, contended_try_acquires_take_exactly_the_units_left);
    tcase_add_test(tc, semaphore_admits_at_most_value_holders_at_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounded");
    tcase_add_test(tc, bounded_release_above_initial_value_is_eoverflow);
    tcase_add_test(
        tc, bounded_release_n_crossing_the_bound_is_eoverflow_and_adds_nothing);
    tcase_add_test(tc, bounded_semaphore_blocks_and_wakes_like_a_semaphore);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_test(tc, null_handle_is_einval);
    tcase_add_test(tc, bad_timeout_is_einval_and_takes_no_unit);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
