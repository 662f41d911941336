/* stress_executor.c - ThreadPoolExecutor and futures under contention:
 * every task runs exactly once, every callback fires once, shutdown racing
 * with submit loses no accepted future, cancel racing with start leaves
 * each future consistent, and wait/as_completed see every completion.
 * Sizes scale with RLAB_STRESS_SCALE. */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "rlab_test.h"

/* Per-task counters, indexed by the task's argument. */
static atomic_int *runs;
static atomic_int *callbacks;

static int count_run(void *arg, void **result)
{
    atomic_fetch_add_explicit(&runs[(intptr_t)arg], 1, memory_order_relaxed);
    *result = arg;
    return 0;
}

static void count_callback(rlab_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add_explicit(&callbacks[(intptr_t)arg], 1,
                              memory_order_relaxed);
}

static void counters_new(long n)
{
    runs = calloc((size_t)n, sizeof *runs);
    callbacks = calloc((size_t)n, sizeof *callbacks);
    ck_assert(runs && callbacks);
}

static void counters_free(void)
{
    free(runs);
    free(callbacks);
    runs = callbacks = NULL;
}

/* Checks future i of a finished run: cancelled and never run, or run once
 * with its own index as the result. */
static void check_outcome(rlab_future *f, intptr_t i)
{
    ck_assert_msg(rlab_future_done(f), "future %ld not done", (long)i);
    void *res = NULL;
    int rc = rlab_future_result(f, 0, &res);
    int ran = atomic_load(&runs[i]);
    if (rlab_future_cancelled(f)) {
        ck_assert_rc(rc, RLAB_ECANCELLED);
        ck_assert_msg(ran == 0, "cancelled task %ld ran %d times", (long)i,
                      ran);
    } else {
        ck_assert_rc(rc, 0);
        ck_assert_msg(ran == 1, "task %ld ran %d times", (long)i, ran);
        ck_assert_ptr_eq(res, (void *)i);
    }
}

/* ------------------------------------------- exactly once, callbacks --- */

typedef struct {
    rlab_executor *ex;
    rlab_future **fs;
    long first, n;
    rlab_barrier *start;
    int rc; /* first failure, 0 if none */
} producer;

/* Submits tasks first..first+n, adds a callback to each (racing with its
 * completion) and cancels every fifth (racing with its start). */
static void *produce(void *arg)
{
    producer *p = arg;
    p->rc = 0;
    rlab_barrier_wait(p->start, RLAB_GUARD, NULL);
    for (long i = p->first; i < p->first + p->n && p->rc == 0; i++) {
        p->rc = rlab_executor_submit(p->ex, count_run, (void *)i, &p->fs[i]);
        if (p->rc == 0)
            p->rc = rlab_future_add_done_callback(p->fs[i], count_callback,
                                                  (void *)i);
        if (p->rc == 0 && i % 5 == 0)
            rlab_future_cancel(p->fs[i]);
    }
    return NULL;
}

START_TEST(every_task_runs_exactly_once_and_every_callback_fires_once)
{
    enum { P = 2 };
    long n = rlab_test_scaled(100000);
    counters_new(n);
    rlab_future **fs = calloc((size_t)n, sizeof *fs);
    rlab_executor *ex = rlab_thread_pool_new(4, "stress", NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    rlab_barrier *start = rlab_barrier_new(P, NULL, NULL, RLAB_GUARD);
    producer p[P];
    rlab_thread *t[P];
    for (int k = 0; k < P; k++) {
        p[k] = (producer){.ex = ex,
                          .fs = fs,
                          .start = start,
                          .first = k * (n / P),
                          .n = k == P - 1 ? n - k * (n / P) : n / P};
        t[k] = rlab_test_spawn(produce, &p[k]);
    }
    for (int k = 0; k < P; k++) {
        rlab_test_join(t[k]);
        ck_assert_rc(p[k].rc, 0);
    }
    ck_assert_rc(rlab_wait(fs, (size_t)n, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL),
                 0);
    rlab_executor_free(ex); /* every callback has returned */
    for (long i = 0; i < n; i++) {
        check_outcome(fs[i], i);
        ck_assert_msg(atomic_load(&callbacks[i]) == 1,
                      "callback of task %ld fired %d times", i,
                      atomic_load(&callbacks[i]));
        rlab_future_free(fs[i]);
    }
    rlab_barrier_free(start);
    free(fs);
    counters_free();
}
END_TEST

/* ------------------------------------------- shutdown racing submit --- */

typedef struct {
    rlab_executor *ex;
    rlab_future **fs; /* this producer's slots */
    long cap, accepted;
    atomic_long *total;
    rlab_barrier *start;
    intptr_t base;
    int stop_rc;
} racer;

static void *submit_until_refused(void *arg)
{
    racer *r = arg;
    rlab_barrier_wait(r->start, RLAB_GUARD, NULL);
    r->stop_rc = 0;
    for (r->accepted = 0; r->accepted < r->cap; r->accepted++) {
        int rc = rlab_executor_submit(r->ex, count_run,
                                      (void *)(r->base + r->accepted),
                                      &r->fs[r->accepted]);
        if (rc) {
            r->stop_rc = rc;
            break;
        }
        atomic_fetch_add(r->total, 1);
    }
    return NULL;
}

START_TEST(shutdown_racing_with_submit_never_loses_an_accepted_future)
{
    enum { P = 3, CAP = 3000 };
    long rounds = rlab_test_scaled(40);
    counters_new(P * CAP);
    rlab_future **fs = calloc(P * CAP, sizeof *fs);
    for (long round = 0; round < rounds; round++) {
        for (long i = 0; i < P * CAP; i++)
            atomic_store(&runs[i], 0);
        rlab_executor *ex = rlab_thread_pool_new(3, NULL, NULL, NULL);
        ck_assert_ptr_nonnull(ex);
        rlab_barrier *start = rlab_barrier_new(P + 1, NULL, NULL, RLAB_GUARD);
        atomic_long total = 0;
        racer r[P];
        rlab_thread *t[P];
        for (int k = 0; k < P; k++) {
            r[k] = (racer){.ex = ex,
                           .fs = fs + k * CAP,
                           .cap = CAP,
                           .total = &total,
                           .start = start,
                           .base = k * CAP};
            t[k] = rlab_test_spawn(submit_until_refused, &r[k]);
        }
        rlab_barrier_wait(start, RLAB_GUARD, NULL);
        /* Shut down after a varying number of accepted submits. */
        long after = (round * 211) % (P * CAP / 2);
        while (atomic_load(&total) < after)
            sched_yield();
        bool cancel = round % 2 == 1;
        ck_assert_rc(rlab_executor_shutdown(ex, true, cancel), 0);
        for (int k = 0; k < P; k++)
            rlab_test_join(t[k]);
        /* shutdown(wait) returned: every accepted future is done now. */
        for (int k = 0; k < P; k++) {
            if (r[k].accepted < CAP)
                ck_assert_rc(r[k].stop_rc, RLAB_ESHUTDOWN);
            for (long i = 0; i < r[k].accepted; i++) {
                check_outcome(r[k].fs[i], r[k].base + i);
                if (!cancel)
                    ck_assert(!rlab_future_cancelled(r[k].fs[i]));
                rlab_future_free(r[k].fs[i]);
            }
        }
        rlab_executor_free(ex);
        rlab_barrier_free(start);
    }
    free(fs);
    counters_free();
}
END_TEST

/* --------------------------------------------- cancel racing start --- */

typedef struct {
    rlab_future **fs;
    atomic_long *published;
    long n;
    bool *cancelled;
} canceller;

static void *cancel_as_published(void *arg)
{
    canceller *c = arg;
    for (long i = 0; i < c->n; i++) {
        while (atomic_load_explicit(c->published, memory_order_acquire) <= i)
            sched_yield();
        c->cancelled[i] = rlab_future_cancel(c->fs[i]);
    }
    return NULL;
}

START_TEST(cancel_racing_with_start_leaves_each_future_consistent)
{
    long n = rlab_test_scaled(30000);
    counters_new(n);
    rlab_future **fs = calloc((size_t)n, sizeof *fs);
    bool *cancelled = calloc((size_t)n, sizeof *cancelled);
    atomic_long published = 0;
    rlab_executor *ex = rlab_thread_pool_new(2, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    canceller c = {
        .fs = fs, .published = &published, .n = n, .cancelled = cancelled};
    rlab_thread *t = rlab_test_spawn(cancel_as_published, &c);
    for (long i = 0; i < n; i++) {
        ck_assert_rc(rlab_executor_submit(ex, count_run, (void *)i, &fs[i]), 0);
        atomic_store_explicit(&published, i + 1, memory_order_release);
    }
    rlab_test_join(t);
    ck_assert_rc(rlab_wait(fs, (size_t)n, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL),
                 0);
    rlab_executor_free(ex);
    long n_cancelled = 0;
    for (long i = 0; i < n; i++) {
        /* cancel() was true exactly when the task never ran */
        ck_assert_msg(cancelled[i] == rlab_future_cancelled(fs[i]),
                      "task %ld: cancel() said %d", i, cancelled[i]);
        check_outcome(fs[i], i);
        n_cancelled += cancelled[i];
        rlab_future_free(fs[i]);
    }
    (void)n_cancelled; /* either way is fine; the split varies per run */
    free(fs);
    free(cancelled);
    counters_free();
}
END_TEST

/* ------------------------------------------ wait and as_completed --- */

typedef struct {
    rlab_future **fs;
    long n;
    int rc;
} all_waiter;

static void *wait_all(void *arg)
{
    all_waiter *w = arg;
    w->rc =
        rlab_wait(w->fs, (size_t)w->n, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL);
    return NULL;
}

START_TEST(as_completed_and_waiters_see_every_completion_once)
{
    enum { W = 3 };
    long n = rlab_test_scaled(20000);
    counters_new(n);
    rlab_future **fs = calloc(2 * (size_t)n, sizeof *fs);
    char *yielded = calloc((size_t)n, 1);
    rlab_executor *ex = rlab_thread_pool_new(3, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    for (long i = 0; i < n; i++) {
        ck_assert_rc(rlab_executor_submit(ex, count_run, (void *)i, &fs[i]), 0);
        fs[n + i] = fs[i]; /* every future twice */
    }
    rlab_as_completed *it =
        rlab_as_completed_new(fs, 2 * (size_t)n, RLAB_GUARD);
    ck_assert_ptr_nonnull(it);
    all_waiter w[W];
    rlab_thread *t[W];
    for (int k = 0; k < W; k++) {
        w[k] = (all_waiter){.fs = fs, .n = 2 * n, .rc = -1};
        t[k] = rlab_test_spawn(wait_all, &w[k]);
    }
    rlab_future *f;
    long count = 0;
    int rc;
    while ((rc = rlab_as_completed_next(it, &f)) == 0) {
        void *res;
        ck_assert_rc(rlab_future_result(f, 0, &res), 0);
        intptr_t i = (intptr_t)res;
        ck_assert_msg(!yielded[i], "future %ld yielded twice", (long)i);
        yielded[i] = 1;
        count++;
    }
    ck_assert_rc(rc, RLAB_EEOF);
    ck_assert_int_eq(count, n);
    for (int k = 0; k < W; k++) {
        rlab_test_join(t[k]);
        ck_assert_rc(w[k].rc, 0);
    }
    rlab_as_completed_free(it);
    rlab_executor_free(ex);
    for (long i = 0; i < n; i++) {
        check_outcome(fs[i], i);
        rlab_future_free(fs[i]);
    }
    free(yielded);
    free(fs);
    counters_free();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_executor");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc,
                   every_task_runs_exactly_once_and_every_callback_fires_once);
    tcase_add_test(tc,
                   shutdown_racing_with_submit_never_loses_an_accepted_future);
    tcase_add_test(tc, cancel_racing_with_start_leaves_each_future_consistent);
    tcase_add_test(tc, as_completed_and_waiters_see_every_completion_once);
    suite_add_tcase(s, tc);
    return rlab_test_main(s);
}
