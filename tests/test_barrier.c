/*
 * test_barrier.c - rlab_barrier, threading.Barrier.
 *
 * The behaviours of CPython's lock_tests.BarrierTests (lockstep passes,
 * wait's return value, action, abort, reset, abort and reset, timeout,
 * default timeout, single thread) plus racelab's C conventions: EINVAL for
 * bad arguments, RLAB_EBROKEN for BrokenBarrierError.
 *
 * The barrier's own n_waiting() tells when threads are inside wait(): a
 * test polls it (yielding, under an RLAB_GUARD deadline) instead of
 * sleeping.  Worker threads never call ck_assert: they record what they saw
 * and the main thread asserts after joining them.
 */
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "rlab_test.h"

#define EARLY 1e-3
#define LATE 1.0
#define N 5
#define CYCLES 10

/* Yields until n_waiting(b) == n; false if RLAB_GUARD passes first. */
static bool await_n_waiting(rlab_barrier *b, long n)
{
    double end = rlab_test_now() + RLAB_GUARD;
    while (rlab_barrier_n_waiting(b) != n) {
        if (rlab_test_now() > end)
            return false;
        sched_yield();
    }
    return true;
}

/* Each of `idx` is one of 0..n-1, each exactly once. */
static void assert_permutation(const long *idx, int n)
{
    int seen[N] = {0};
    for (int i = 0; i < n; i++) {
        ck_assert_int_ge(idx[i], 0);
        ck_assert_int_lt(idx[i], n);
        seen[idx[i]]++;
    }
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(seen[i], 1);
}

typedef struct {
    rlab_barrier *b;
    double timeout;
    int rc;
    long idx;
    double dt;
} one_wait;

static void *wait_once(void *arg)
{
    one_wait *w = arg;
    w->idx = -1;
    double t0 = rlab_test_now();
    w->rc = rlab_barrier_wait(w->b, w->timeout, &w->idx);
    w->dt = rlab_test_now() - t0;
    return NULL;
}

/* Runs `n` threads through one wait each and joins them. */
static void run_waits(one_wait *w, int n, rlab_barrier *b, double timeout)
{
    rlab_thread *t[N];
    for (int i = 0; i < n; i++) {
        w[i] = (one_wait){.b = b, .timeout = timeout};
        t[i] = rlab_test_spawn(wait_once, &w[i]);
    }
    for (int i = 0; i < n; i++)
        rlab_test_join(t[i]);
}

/* All N parties pass one cycle: rc 0 and indices 0..N-1. */
static void assert_cycle_passes(rlab_barrier *b)
{
    one_wait w[N];
    run_waits(w, N, b, RLAB_GUARD);
    long idx[N];
    for (int i = 0; i < N; i++) {
        ck_assert_rc(w[i].rc, 0);
        idx[i] = w[i].idx;
    }
    assert_permutation(idx, N);
}

/* ------------------------------------------------------- construction --- */

START_TEST(parties_below_one_or_a_bad_timeout_is_einval)
{
    const long bad_parties[] = {0, -1, LONG_MIN};
    for (size_t i = 0; i < sizeof bad_parties / sizeof *bad_parties; i++) {
        errno = 0;
        ck_assert_ptr_null(
            rlab_barrier_new(bad_parties[i], NULL, NULL, RLAB_FOREVER));
        ck_assert_int_eq(errno, EINVAL);
    }
    const double bad_timeouts[] = {NAN, -2.0, -INFINITY};
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
        errno = 0;
        ck_assert_ptr_null(rlab_barrier_new(2, NULL, NULL, bad_timeouts[i]));
        ck_assert_int_eq(errno, EINVAL);
    }
    rlab_barrier *b = rlab_barrier_new(3, NULL, NULL, INFINITY);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(rlab_barrier_parties(b), 3);
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 0);
    ck_assert(!rlab_barrier_broken(b));
    rlab_barrier_free(b);
}
END_TEST

START_TEST(null_handle_and_bad_wait_timeouts_are_einval)
{
    long idx = -7;
    ck_assert_rc(rlab_barrier_wait(NULL, RLAB_GUARD, &idx), EINVAL);
    rlab_barrier *b = rlab_barrier_new(2, NULL, NULL, RLAB_FOREVER);
    ck_assert_rc(rlab_barrier_wait(b, NAN, &idx), EINVAL);
    ck_assert_rc(rlab_barrier_wait(b, -2.0, &idx), EINVAL);
    ck_assert_rc(rlab_barrier_wait(b, -INFINITY, &idx), EINVAL);
    ck_assert_int_eq(idx, -7);
    /* The failed calls changed nothing. */
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 0);
    ck_assert(!rlab_barrier_broken(b));
    rlab_barrier_abort(NULL);
    rlab_barrier_reset(NULL);
    ck_assert(!rlab_barrier_broken(NULL));
    ck_assert_int_eq(rlab_barrier_n_waiting(NULL), 0);
    ck_assert_int_eq(rlab_barrier_parties(NULL), 0);
    rlab_barrier_free(NULL);
    rlab_barrier_free(b);
}
END_TEST

/* ------------------------------------------------------------- passing --- */

static int count_action(void *arg)
{
    (*(long *)arg)++;
    return 0;
}

START_TEST(single_party_barrier_passes_at_once_with_index_zero)
{
    long runs = 0;
    rlab_barrier *b = rlab_barrier_new(1, count_action, &runs, RLAB_FOREVER);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 3; i++) {
        long idx = -1;
        ck_assert_rc(rlab_barrier_wait(b, i == 2 ? 0 : RLAB_GUARD, &idx), 0);
        ck_assert_int_eq(idx, 0);
    }
    ck_assert_rc(rlab_barrier_wait(b, RLAB_GUARD, NULL),
                 0); /* index may be NULL */
    ck_assert_int_eq(runs, 4);
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 0);
    ck_assert(!rlab_barrier_broken(b));
    rlab_barrier_free(b);
}
END_TEST

START_TEST(n_waiting_counts_arrivals_and_the_last_gets_the_top_index)
{
    rlab_barrier *b = rlab_barrier_new(3, NULL, NULL, RLAB_FOREVER);
    ck_assert_int_eq(rlab_barrier_parties(b), 3);
    one_wait w[2];
    rlab_thread *t[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (one_wait){.b = b, .timeout = RLAB_GUARD};
        t[i] = rlab_test_spawn(wait_once, &w[i]);
        ck_assert(await_n_waiting(b, i + 1));
    }
    long idx = -1;
    ck_assert_rc(rlab_barrier_wait(b, RLAB_GUARD, &idx), 0);
    ck_assert_int_eq(idx, 2);
    for (int i = 0; i < 2; i++)
        rlab_test_join(t[i]);
    /* Arrival order gives the index: the first to wait got 0. */
    ck_assert_rc(w[0].rc, 0);
    ck_assert_int_eq(w[0].idx, 0);
    ck_assert_rc(w[1].rc, 0);
    ck_assert_int_eq(w[1].idx, 1);
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 0);
    ck_assert(!rlab_barrier_broken(b));
    rlab_barrier_free(b);
}
END_TEST

typedef struct {
    rlab_barrier *b;
    atomic_long *before, *after; /* CPython's results[0] and results[1] */
    long idx[CYCLES][2];
    int rc_bad, order_bad;
} lockstep_arg;

static void *lockstep_party(void *arg)
{
    lockstep_arg *a = arg;
    for (long i = 0; i < CYCLES; i++) {
        atomic_fetch_add(a->before, 1);
        if (atomic_load(a->after) != i * N)
            a->order_bad++;
        if (rlab_barrier_wait(a->b, RLAB_GUARD, &a->idx[i][0]) != 0)
            a->rc_bad++;
        atomic_fetch_add(a->after, 1);
        if (atomic_load(a->before) != (i + 1) * N)
            a->order_bad++;
        if (rlab_barrier_wait(a->b, RLAB_GUARD, &a->idx[i][1]) != 0)
            a->rc_bad++;
    }
    return NULL;
}

START_TEST(parties_pass_in_lockstep_with_distinct_indices_every_cycle)
{
    rlab_barrier *b = rlab_barrier_new(N, NULL, NULL, RLAB_FOREVER);
    atomic_long before = 0, after = 0;
    lockstep_arg a[N];
    rlab_thread *t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (lockstep_arg){.b = b, .before = &before, .after = &after};
        t[i] = rlab_test_spawn(lockstep_party, &a[i]);
    }
    for (int i = 0; i < N; i++)
        rlab_test_join(t[i]);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(a[i].rc_bad, 0);
        ck_assert_int_eq(a[i].order_bad, 0);
    }
    for (int c = 0; c < CYCLES; c++)
        for (int k = 0; k < 2; k++) {
            long idx[N];
            for (int i = 0; i < N; i++)
                idx[i] = a[i].idx[c][k];
            assert_permutation(idx, N);
        }
    ck_assert_int_eq(atomic_load(&before), CYCLES * N);
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 0);
    ck_assert(!rlab_barrier_broken(b));
    rlab_barrier_free(b);
}
END_TEST

/* -------------------------------------------------------------- action --- */

typedef struct {
    long runs;            /* written by the action, under the barrier */
    unsigned long runner; /* rlab_get_ident() of the thread running it */
    int fail_from;        /* the action fails from this run on (0: never) */
} action_state;

static int recording_action(void *arg)
{
    action_state *s = arg;
    s->runs++;
    s->runner = rlab_get_ident();
    return s->fail_from && s->runs >= s->fail_from ? -1 : 0;
}

typedef struct {
    rlab_barrier *b;
    action_state *s;
    int rc_bad, runs_bad, runner_bad;
} action_arg;

static void *action_party(void *arg)
{
    action_arg *a = arg;
    for (long i = 0; i < CYCLES; i++) {
        long idx;
        if (rlab_barrier_wait(a->b, RLAB_GUARD, &idx) != 0) {
            a->rc_bad++;
            continue;
        }
        /* The action of this cycle has run, the next one cannot have. */
        if (a->s->runs != i + 1)
            a->runs_bad++;
        if (idx == N - 1 && a->s->runner != rlab_get_ident())
            a->runner_bad++;
    }
    return NULL;
}

START_TEST(action_runs_once_per_cycle_on_the_last_party_before_any_leaves)
{
    action_state s = {0};
    rlab_barrier *b = rlab_barrier_new(N, recording_action, &s, RLAB_FOREVER);
    action_arg a[N];
    rlab_thread *t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (action_arg){.b = b, .s = &s};
        t[i] = rlab_test_spawn(action_party, &a[i]);
    }
    for (int i = 0; i < N; i++)
        rlab_test_join(t[i]);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(a[i].rc_bad, 0);
        ck_assert_int_eq(a[i].runs_bad, 0);
        ck_assert_int_eq(a[i].runner_bad, 0);
    }
    ck_assert_int_eq(s.runs, CYCLES);
    rlab_barrier_free(b);
}
END_TEST

START_TEST(failing_action_breaks_the_barrier_for_every_party)
{
    action_state s = {.fail_from = 1};
    rlab_barrier *b = rlab_barrier_new(N, recording_action, &s, RLAB_FOREVER);
    one_wait w[N];
    run_waits(w, N, b, RLAB_GUARD);
    for (int i = 0; i < N; i++)
        ck_assert_rc(w[i].rc, RLAB_EBROKEN);
    ck_assert_int_eq(s.runs, 1);
    ck_assert(rlab_barrier_broken(b));
    ck_assert_rc(rlab_barrier_wait(b, RLAB_GUARD, NULL), RLAB_EBROKEN);
    ck_assert_int_eq(s.runs, 1);

    /* reset() repairs it, and a succeeding action lets everyone pass. */
    s.fail_from = 0;
    rlab_barrier_reset(b);
    ck_assert(!rlab_barrier_broken(b));
    assert_cycle_passes(b);
    ck_assert_int_eq(s.runs, 2);
    rlab_barrier_free(b);
}
END_TEST

/* -------------------------------------------------------- abort, reset --- */

START_TEST(abort_breaks_the_waiters_and_later_waits_until_reset)
{
    rlab_barrier *b = rlab_barrier_new(N, NULL, NULL, RLAB_FOREVER);
    one_wait w[N - 1];
    rlab_thread *t[N - 1];
    for (int i = 0; i < N - 1; i++) {
        w[i] = (one_wait){.b = b, .timeout = RLAB_GUARD};
        t[i] = rlab_test_spawn(wait_once, &w[i]);
    }
    ck_assert(await_n_waiting(b, N - 1));
    rlab_barrier_abort(b);
    for (int i = 0; i < N - 1; i++)
        rlab_test_join(t[i]);
    for (int i = 0; i < N - 1; i++) {
        ck_assert_rc(w[i].rc, RLAB_EBROKEN);
        ck_assert_int_eq(w[i].idx, -1); /* no index on failure */
    }
    ck_assert(rlab_barrier_broken(b));
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 0);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_barrier_wait(b, RLAB_GUARD, NULL), RLAB_EBROKEN);
    ck_assert_rc(rlab_barrier_wait(b, 0, NULL), RLAB_EBROKEN);
    ck_assert_double_lt(rlab_test_now() - t0, LATE); /* at once */
    ck_assert(rlab_barrier_broken(b));

    rlab_barrier_reset(b);
    ck_assert(!rlab_barrier_broken(b));
    assert_cycle_passes(b);
    rlab_barrier_free(b);
}
END_TEST

/* CPython's test_abort and test_abort_and_reset: after a first pass, the
 * party with index N/2 aborts instead of waiting again. */
typedef struct {
    rlab_barrier *b, *b2; /* b2: NULL for test_abort */
    int rc1, rc2, rc3;
    bool aborted;
} abort_arg;

static void *abort_party(void *arg)
{
    abort_arg *a = arg;
    long i = -1;
    a->rc1 = rlab_barrier_wait(a->b, RLAB_GUARD, &i);
    if (a->rc1 == 0 && i == N / 2) {
        rlab_barrier_abort(a->b);
        a->aborted = true;
    } else {
        a->rc2 = rlab_barrier_wait(a->b, RLAB_GUARD, NULL);
    }
    if (!a->b2)
        return NULL;
    /* Everyone has left b before the reset, and nobody enters it again
     * before the reset is done. */
    long j = -1;
    if (rlab_barrier_wait(a->b2, RLAB_GUARD, &j) == 0 && j == N / 2)
        rlab_barrier_reset(a->b);
    if (rlab_barrier_wait(a->b2, RLAB_GUARD, NULL) != 0)
        a->rc3 = -1;
    else
        a->rc3 = rlab_barrier_wait(a->b, RLAB_GUARD, NULL);
    return NULL;
}

static void run_abort(bool and_reset)
{
    rlab_barrier *b = rlab_barrier_new(N, NULL, NULL, RLAB_FOREVER);
    rlab_barrier *b2 =
        and_reset ? rlab_barrier_new(N, NULL, NULL, RLAB_FOREVER) : NULL;
    abort_arg a[N];
    rlab_thread *t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (abort_arg){.b = b, .b2 = b2};
        t[i] = rlab_test_spawn(abort_party, &a[i]);
    }
    for (int i = 0; i < N; i++)
        rlab_test_join(t[i]);
    int aborted = 0, broken = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_rc(a[i].rc1, 0);
        if (a[i].aborted)
            aborted++;
        else if (a[i].rc2 == RLAB_EBROKEN)
            broken++;
        if (and_reset)
            ck_assert_rc(a[i].rc3, 0);
    }
    ck_assert_int_eq(aborted, 1);
    ck_assert_int_eq(broken, N - 1);
    ck_assert(rlab_barrier_broken(b) == !and_reset);
    rlab_barrier_free(b);
    rlab_barrier_free(b2);
}

START_TEST(abort_by_one_party_breaks_the_wait_of_the_others)
{
    run_abort(false);
}
END_TEST

START_TEST(reset_after_abort_lets_every_party_pass_again)
{
    run_abort(true);
}
END_TEST

START_TEST(abort_after_a_cycle_completed_does_not_fail_its_waiters)
{
    /* The last party passes and aborts at once, mostly before the other
     * party has woken: that party's cycle completed, so it passed too. */
    rlab_barrier *b = rlab_barrier_new(2, NULL, NULL, RLAB_FOREVER);
    for (int i = 0; i < 100; i++) {
        one_wait w = {.b = b, .timeout = RLAB_GUARD};
        rlab_thread *t = rlab_test_spawn(wait_once, &w);
        ck_assert(await_n_waiting(b, 1));
        ck_assert_rc(rlab_barrier_wait(b, RLAB_GUARD, NULL), 0);
        rlab_barrier_abort(b);
        rlab_test_join(t);
        ck_assert_rc(w.rc, 0);
        ck_assert_int_eq(w.idx, 0);
        ck_assert(rlab_barrier_broken(b));
        rlab_barrier_reset(b);
    }
    rlab_barrier_free(b);
}
END_TEST

/* CPython's test_reset: the party with index N/2 resets the barrier once
 * the others wait in it for the second time. */
typedef struct {
    rlab_barrier *b;
    int rc1, rc2, rc3;
    bool resetter, saw_waiters;
} reset_arg;

static void *reset_party(void *arg)
{
    reset_arg *a = arg;
    long i = -1;
    a->rc1 = rlab_barrier_wait(a->b, RLAB_GUARD, &i);
    if (a->rc1 == 0 && i == N / 2) {
        a->resetter = true;
        a->saw_waiters = await_n_waiting(a->b, N - 1);
        rlab_barrier_reset(a->b);
    } else {
        a->rc2 = rlab_barrier_wait(a->b, RLAB_GUARD, NULL);
    }
    a->rc3 = rlab_barrier_wait(a->b, RLAB_GUARD, NULL); /* usable again */
    return NULL;
}

START_TEST(reset_breaks_current_waiters_and_the_barrier_stays_usable)
{
    rlab_barrier *b = rlab_barrier_new(N, NULL, NULL, RLAB_FOREVER);
    reset_arg a[N];
    rlab_thread *t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (reset_arg){.b = b};
        t[i] = rlab_test_spawn(reset_party, &a[i]);
    }
    for (int i = 0; i < N; i++)
        rlab_test_join(t[i]);
    int resetters = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_rc(a[i].rc1, 0);
        if (a[i].resetter) {
            resetters++;
            ck_assert(a[i].saw_waiters);
        } else {
            ck_assert_rc(a[i].rc2, RLAB_EBROKEN);
        }
        ck_assert_rc(a[i].rc3, 0);
    }
    ck_assert_int_eq(resetters, 1);
    ck_assert(!rlab_barrier_broken(b));
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 0);
    rlab_barrier_free(b);
}
END_TEST

START_TEST(reset_of_an_idle_or_broken_barrier_makes_it_usable)
{
    rlab_barrier *b = rlab_barrier_new(N, NULL, NULL, RLAB_FOREVER);
    rlab_barrier_reset(b);
    ck_assert(!rlab_barrier_broken(b));
    assert_cycle_passes(b);
    rlab_barrier_abort(b);
    rlab_barrier_abort(b);
    ck_assert(rlab_barrier_broken(b));
    rlab_barrier_reset(b);
    ck_assert(!rlab_barrier_broken(b));
    assert_cycle_passes(b);
    rlab_barrier_free(b);
}
END_TEST

/* ------------------------------------------------------------ timeouts --- */

/* N-1 parties wait with `timeout`; the last never comes.  All are broken,
 * the one that timed out no earlier than `expect` seconds. */
static void assert_timeout_breaks(rlab_barrier *b, double timeout,
                                  double expect)
{
    one_wait w[N - 1];
    run_waits(w, N - 1, b, timeout);
    double longest = 0;
    for (int i = 0; i < N - 1; i++) {
        ck_assert_rc(w[i].rc, RLAB_EBROKEN);
        ck_assert_double_lt(w[i].dt, expect + LATE);
        if (w[i].dt > longest)
            longest = w[i].dt;
    }
    ck_assert_double_ge(longest, expect - EARLY);
    ck_assert(rlab_barrier_broken(b));
    /* The late party finds it broken. */
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_barrier_wait(b, RLAB_GUARD, NULL), RLAB_EBROKEN);
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
}

START_TEST(wait_timeout_breaks_the_barrier_for_every_party)
{
    /* The wait's own timeout wins over a long default. */
    rlab_barrier *b = rlab_barrier_new(N, NULL, NULL, RLAB_GUARD);
    assert_timeout_breaks(b, 0.2, 0.2);
    rlab_barrier_free(b);
}
END_TEST

START_TEST(default_timeout_applies_when_wait_gets_forever)
{
    rlab_barrier *b = rlab_barrier_new(N, NULL, NULL, 0.2);
    assert_timeout_breaks(b, RLAB_FOREVER, 0.2);
    rlab_barrier_reset(b);
    ck_assert(!rlab_barrier_broken(b));
    assert_cycle_passes(b); /* a positive timeout overrides the default */
    rlab_barrier_free(b);
}
END_TEST

START_TEST(infinite_timeout_overrides_a_short_default)
{
    rlab_barrier *b = rlab_barrier_new(2, NULL, NULL, 0.05);
    one_wait w = {.b = b, .timeout = INFINITY};
    rlab_thread *t = rlab_test_spawn(wait_once, &w);
    ck_assert(await_n_waiting(b, 1));
    rlab_test_sleep(0.2); /* time passing is what is tested */
    ck_assert(!rlab_barrier_broken(b));
    ck_assert_int_eq(rlab_barrier_n_waiting(b), 1);
    long idx = -1;
    ck_assert_rc(rlab_barrier_wait(b, RLAB_GUARD, &idx), 0);
    ck_assert_int_eq(idx, 1);
    rlab_test_join(t);
    ck_assert_rc(w.rc, 0);
    ck_assert_int_eq(w.idx, 0);
    rlab_barrier_free(b);
}
END_TEST

START_TEST(zero_timeout_breaks_unless_the_caller_is_the_last_party)
{
    rlab_barrier *b = rlab_barrier_new(2, NULL, NULL, RLAB_FOREVER);
    ck_assert_rc(rlab_barrier_wait(b, 0, NULL), RLAB_EBROKEN);
    ck_assert(rlab_barrier_broken(b));
    rlab_barrier_reset(b);

    one_wait w = {.b = b, .timeout = RLAB_GUARD};
    rlab_thread *t = rlab_test_spawn(wait_once, &w);
    ck_assert(await_n_waiting(b, 1));
    long idx = -1;
    ck_assert_rc(rlab_barrier_wait(b, 0, &idx), 0);
    ck_assert_int_eq(idx, 1);
    rlab_test_join(t);
    ck_assert_rc(w.rc, 0);
    ck_assert_int_eq(w.idx, 0);
    ck_assert(!rlab_barrier_broken(b));
    rlab_barrier_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("barrier");

    TCase *tc = tcase_create("state");
    tcase_add_test(tc, parties_below_one_or_a_bad_timeout_is_einval);
    tcase_add_test(tc, null_handle_and_bad_wait_timeouts_are_einval);
    tcase_add_test(tc, single_party_barrier_passes_at_once_with_index_zero);
    suite_add_tcase(s, tc);

    tc = tcase_create("parties");
    tcase_set_timeout(tc, 120); /* beyond RLAB_GUARD: a guard fails first */
    tcase_add_test(tc,
                   n_waiting_counts_arrivals_and_the_last_gets_the_top_index);
    tcase_add_test(tc,
                   parties_pass_in_lockstep_with_distinct_indices_every_cycle);
    tcase_add_test(
        tc, action_runs_once_per_cycle_on_the_last_party_before_any_leaves);
    tcase_add_test(tc, failing_action_breaks_the_barrier_for_every_party);
    tcase_add_test(tc, abort_breaks_the_waiters_and_later_waits_until_reset);
    tcase_add_test(tc, abort_by_one_party_breaks_the_wait_of_the_others);
    tcase_add_test(tc, reset_after_abort_lets_every_party_pass_again);
    tcase_add_test(tc, abort_after_a_cycle_completed_does_not_fail_its_waiters);
    tcase_add_test(tc,
                   reset_breaks_current_waiters_and_the_barrier_stays_usable);
    tcase_add_test(tc, reset_of_an_idle_or_broken_barrier_makes_it_usable);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeouts");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, wait_timeout_breaks_the_barrier_for_every_party);
    tcase_add_test(tc, default_timeout_applies_when_wait_gets_forever);
    tcase_add_test(tc, infinite_timeout_overrides_a_short_default);
    tcase_add_test(tc, zero_timeout_breaks_unless_the_caller_is_the_last_party);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
