/* test_future.c - concurrent.futures.Future, wait() and as_completed()
 * (CPython's test_concurrent_futures FutureTests, WaitTests and
 * AsCompletedTests, in C).  Futures are driven by hand here, through
 * rlab_future_new and the set_* calls an executor uses; test_executor.c
 * drives them through a pool. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "rlab_test.h"

/* Slack for comparing two rlab_test_now() readings with a timeout. */
#define CLOCK_SLACK 1e-3
/* An expired wait must end well before this. */
#define LATE 2.0
/* Long enough for a helper thread to be parked in the call under test. */
#define SETTLE 0.05

static int value_42 = 42;

/* ------------------------------------------------------------ helpers --- */

static rlab_future *pending_future(void)
{
    rlab_future *f = rlab_future_new();
    ck_assert_ptr_nonnull(f);
    return f;
}

static rlab_future *running_future(void)
{
    rlab_future *f = pending_future();
    ck_assert(rlab_future_set_running_or_notify_cancel(f));
    return f;
}

static rlab_future *cancelled_future(void)
{
    rlab_future *f = pending_future();
    ck_assert(rlab_future_cancel(f));
    return f;
}

static rlab_future *failed_future(int code)
{
    rlab_future *f = running_future();
    ck_assert_rc(rlab_future_set_result(f, code, NULL), 0);
    return f;
}

static rlab_future *successful_future(void)
{
    rlab_future *f = running_future();
    ck_assert_rc(rlab_future_set_result(f, 0, &value_42), 0);
    return f;
}

/* A callback that counts its calls and records the thread and order. */
typedef struct {
    atomic_int calls;
    rlab_future *seen;
    unsigned long thread;
    int order;
    atomic_int *clock; /* shared sequence, for ordering checks */
} cb_rec;

static void record_cb(rlab_future *f, void *arg)
{
    cb_rec *r = arg;
    r->seen = f;
    r->thread = rlab_get_ident();
    r->order = r->clock ? atomic_fetch_add(r->clock, 1) : 0;
    atomic_fetch_add(&r->calls, 1);
}

/* A helper thread that waits on `start` (if set), then completes or
 * cancels a future. */
typedef struct {
    rlab_future *f;
    rlab_event *start;
    bool cancel;
    int code;
    void *result;
    int rc; /* set_result's return, or cancel's (1 true) */
} completer;

static void *complete_later(void *arg)
{
    completer *c = arg;
    if (c->start)
        rlab_event_wait(c->start, RLAB_GUARD);
    if (c->cancel)
        c->rc = rlab_future_cancel(c->f);
    else
        c->rc = rlab_future_set_result(c->f, c->code, c->result);
    return NULL;
}

/* A helper thread that blocks in result(). */
typedef struct {
    rlab_future *f;
    double timeout;
    int rc;
    void *result;
    double elapsed;
} result_waiter;

static void *wait_result(void *arg)
{
    result_waiter *w = arg;
    double t0 = rlab_test_now();
    w->rc = rlab_future_result(w->f, w->timeout, &w->result);
    w->elapsed = rlab_test_now() - t0;
    return NULL;
}

/* Asserts the thread is still blocked after SETTLE seconds. */
static void assert_blocked(rlab_thread *t)
{
    ck_assert_rc(rlab_thread_join(t, SETTLE, NULL), ETIMEDOUT);
}

/* ------------------------------------------------------------- states --- */

START_TEST(pending_future_is_not_done_running_or_cancelled)
{
    rlab_future *f = pending_future();
    ck_assert(!rlab_future_done(f));
    ck_assert(!rlab_future_running(f));
    ck_assert(!rlab_future_cancelled(f));
    ck_assert_rc(rlab_future_result(f, 0, NULL), ETIMEDOUT);
    rlab_future_free(f);
}
END_TEST

START_TEST(running_future_is_running_and_not_done)
{
    rlab_future *f = running_future();
    ck_assert(rlab_future_running(f));
    ck_assert(!rlab_future_done(f));
    ck_assert(!rlab_future_cancelled(f));
    ck_assert_rc(rlab_future_result(f, 0, NULL), ETIMEDOUT);
    rlab_future_free(f);
}
END_TEST

START_TEST(cancelled_future_is_done_and_cancelled)
{
    rlab_future *f = cancelled_future();
    ck_assert(rlab_future_done(f));
    ck_assert(rlab_future_cancelled(f));
    ck_assert(!rlab_future_running(f));
    void *res = &value_42;
    ck_assert_rc(rlab_future_result(f, 0, &res), RLAB_ECANCELLED);
    ck_assert_ptr_eq(res, &value_42); /* untouched */
    rlab_future_free(f);
}
END_TEST

START_TEST(failed_future_is_done_and_reports_the_task_code)
{
    rlab_future *f = failed_future(EIO);
    ck_assert(rlab_future_done(f));
    ck_assert(!rlab_future_cancelled(f));
    ck_assert(!rlab_future_running(f));
    ck_assert_rc(rlab_future_result(f, 0, NULL), EIO);
    ck_assert_rc(rlab_future_result(f, RLAB_FOREVER, NULL), EIO);
    rlab_future_free(f);
}
END_TEST

START_TEST(successful_future_is_done_and_gives_its_result)
{
    rlab_future *f = successful_future();
    ck_assert(rlab_future_done(f));
    ck_assert(!rlab_future_cancelled(f));
    ck_assert(!rlab_future_running(f));
    void *res = NULL;
    ck_assert_rc(rlab_future_result(f, 0, &res), 0);
    ck_assert_ptr_eq(res, &value_42);
    ck_assert_rc(rlab_future_result(f, 0, NULL), 0); /* result may be NULL */
    rlab_future_free(f);
}
END_TEST

START_TEST(a_task_may_fail_with_etimedout_and_done_tells_it_apart)
{
    rlab_future *f = failed_future(ETIMEDOUT);
    ck_assert_rc(rlab_future_result(f, 0, NULL), ETIMEDOUT);
    ck_assert(rlab_future_done(f));
    rlab_future_free(f);
}
END_TEST

START_TEST(set_running_on_a_cancelled_future_is_false)
{
    rlab_future *f = cancelled_future();
    ck_assert(!rlab_future_set_running_or_notify_cancel(f));
    ck_assert(rlab_future_cancelled(f));
    rlab_future_free(f);
}
END_TEST

START_TEST(set_running_twice_or_after_finishing_is_false)
{
    rlab_future *f = running_future();
    ck_assert(!rlab_future_set_running_or_notify_cancel(f));
    ck_assert(rlab_future_running(f));
    rlab_future_free(f);
    f = successful_future();
    ck_assert(!rlab_future_set_running_or_notify_cancel(f));
    ck_assert(rlab_future_done(f));
    rlab_future_free(f);
}
END_TEST

START_TEST(pending_future_may_be_finished_without_running)
{
    rlab_future *f = pending_future();
    ck_assert_rc(rlab_future_set_result(f, 0, &value_42), 0);
    void *res = NULL;
    ck_assert_rc(rlab_future_result(f, 0, &res), 0);
    ck_assert_ptr_eq(res, &value_42);
    rlab_future_free(f);
}
END_TEST

START_TEST(second_set_result_is_einval_and_keeps_the_first)
{
    int other = 7;
    rlab_future *f = successful_future();
    ck_assert_rc(rlab_future_set_result(f, 0, &other), EINVAL);
    ck_assert_rc(rlab_future_set_result(f, EIO, NULL), EINVAL);
    void *res = NULL;
    ck_assert_rc(rlab_future_result(f, 0, &res), 0);
    ck_assert_ptr_eq(res, &value_42);
    rlab_future_free(f);

    f = failed_future(EIO);
    ck_assert_rc(rlab_future_set_result(f, 0, &other), EINVAL);
    ck_assert_rc(rlab_future_result(f, 0, NULL), EIO);
    rlab_future_free(f);
}
END_TEST

START_TEST(set_result_on_a_cancelled_future_is_einval)
{
    rlab_future *f = cancelled_future();
    ck_assert_rc(rlab_future_set_result(f, 0, &value_42), EINVAL);
    ck_assert(rlab_future_cancelled(f));
    ck_assert_rc(rlab_future_result(f, 0, NULL), RLAB_ECANCELLED);
    rlab_future_free(f);
}
END_TEST

START_TEST(extra_references_keep_the_future_alive)
{
    rlab_future *f = successful_future();
    ck_assert_ptr_eq(rlab_future_ref(f), f);
    rlab_future_free(f);
    ck_assert_rc(rlab_future_result(f, 0, NULL), 0); /* one ref left */
    rlab_future_free(f);
    rlab_future_free(NULL);
    ck_assert_ptr_null(rlab_future_ref(NULL));
}
END_TEST

/* ------------------------------------------------------------- cancel --- */

START_TEST(cancel_truth_table)
{
    /* pending: true, and it becomes cancelled */
    rlab_future *f = pending_future();
    ck_assert(rlab_future_cancel(f));
    ck_assert(rlab_future_cancelled(f));
    /* already cancelled: true again */
    ck_assert(rlab_future_cancel(f));
    rlab_future_free(f);
    /* running: false, still running */
    f = running_future();
    ck_assert(!rlab_future_cancel(f));
    ck_assert(rlab_future_running(f));
    ck_assert(!rlab_future_cancelled(f));
    rlab_future_free(f);
    /* failed or successful: false, result unchanged */
    f = failed_future(EIO);
    ck_assert(!rlab_future_cancel(f));
    ck_assert_rc(rlab_future_result(f, 0, NULL), EIO);
    rlab_future_free(f);
    f = successful_future();
    ck_assert(!rlab_future_cancel(f));
    ck_assert_rc(rlab_future_result(f, 0, NULL), 0);
    rlab_future_free(f);
}
END_TEST

/* ------------------------------------------------------------- result --- */

START_TEST(result_with_timeout_expires_with_etimedout)
{
    rlab_future *f = running_future();
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_future_result(f, 0.1, NULL), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert(!rlab_future_done(f));
    rlab_future_free(f);
}
END_TEST

START_TEST(blocked_result_returns_when_another_thread_sets_it)
{
    rlab_future *f = running_future();
    result_waiter w = {.f = f, .timeout = RLAB_GUARD, .rc = -1};
    rlab_thread *t = rlab_test_spawn(wait_result, &w);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(f, 0, &value_42), 0);
    rlab_test_join(t);
    ck_assert_rc(w.rc, 0);
    ck_assert_ptr_eq(w.result, &value_42);
    rlab_future_free(f);
}
END_TEST

START_TEST(blocked_result_reports_the_failure_set_by_another_thread)
{
    rlab_future *f = running_future();
    result_waiter w = {.f = f, .timeout = RLAB_FOREVER, .rc = -1};
    rlab_thread *t = rlab_test_spawn(wait_result, &w);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(f, EPIPE, NULL), 0);
    rlab_test_join(t);
    ck_assert_rc(w.rc, EPIPE);
    rlab_future_free(f);
}
END_TEST

START_TEST(blocked_result_is_ecancelled_when_another_thread_cancels)
{
    rlab_future *f = pending_future();
    result_waiter w = {.f = f, .timeout = RLAB_GUARD, .rc = -1};
    rlab_thread *t = rlab_test_spawn(wait_result, &w);
    assert_blocked(t);
    ck_assert(rlab_future_cancel(f));
    rlab_test_join(t);
    ck_assert_rc(w.rc, RLAB_ECANCELLED);
    rlab_future_free(f);
}
END_TEST

START_TEST(every_blocked_result_wakes_on_one_completion)
{
    enum { N = 4 };
    rlab_future *f = running_future();
    result_waiter w[N];
    rlab_thread *t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (result_waiter){.f = f, .timeout = INFINITY, .rc = -1};
        t[i] = rlab_test_spawn(wait_result, &w[i]);
    }
    for (int i = 0; i < N; i++)
        assert_blocked(t[i]);
    ck_assert_rc(rlab_future_set_result(f, 0, &value_42), 0);
    for (int i = 0; i < N; i++) {
        rlab_test_join(t[i]);
        ck_assert_rc(w[i].rc, 0);
        ck_assert_ptr_eq(w[i].result, &value_42);
    }
    rlab_future_free(f);
}
END_TEST

START_TEST(result_set_by_another_thread_is_seen_within_the_timeout)
{
    rlab_future *f = running_future();
    rlab_event *go = rlab_event_new();
    completer c = {.f = f, .start = go, .code = 0, .result = &value_42};
    rlab_thread *t = rlab_test_spawn(complete_later, &c);
    rlab_event_set(go);
    void *res = NULL;
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
    ck_assert_ptr_eq(res, &value_42);
    rlab_test_join(t);
    ck_assert_rc(c.rc, 0);
    rlab_event_free(go);
    rlab_future_free(f);
}
END_TEST

/* ---------------------------------------------------------- callbacks --- */

START_TEST(callback_runs_once_on_the_completing_thread)
{
    rlab_future *f = running_future();
    cb_rec r = {.calls = 0};
    ck_assert_rc(rlab_future_add_done_callback(f, record_cb, &r), 0);
    ck_assert_int_eq(atomic_load(&r.calls), 0);
    completer c = {.f = f, .code = 0, .result = &value_42};
    rlab_thread *t = rlab_test_spawn(complete_later, &c);
    unsigned long helper = rlab_thread_ident(t);
    rlab_test_join(t);
    ck_assert_rc(c.rc, 0);
    ck_assert_int_eq(atomic_load(&r.calls), 1);
    ck_assert_ptr_eq(r.seen, f);
    ck_assert(r.thread == helper);
    /* a second completion attempt fires nothing */
    ck_assert_rc(rlab_future_set_result(f, 0, NULL), EINVAL);
    ck_assert(!rlab_future_cancel(f));
    ck_assert_int_eq(atomic_load(&r.calls), 1);
    rlab_future_free(f);
}
END_TEST

START_TEST(callbacks_run_with_a_failure_in_the_order_added)
{
    enum { N = 5 };
    atomic_int clock = 0;
    cb_rec r[N];
    rlab_future *f = running_future();
    for (int i = 0; i < N; i++) {
        r[i] = (cb_rec){.calls = 0, .clock = &clock};
        ck_assert_rc(rlab_future_add_done_callback(f, record_cb, &r[i]), 0);
    }
    ck_assert_rc(rlab_future_set_result(f, EIO, NULL), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&r[i].calls), 1);
        ck_assert_int_eq(r[i].order, i);
    }
    rlab_future_free(f);
}
END_TEST

START_TEST(callback_runs_on_cancel)
{
    rlab_future *f = pending_future();
    cb_rec r = {.calls = 0};
    ck_assert_rc(rlab_future_add_done_callback(f, record_cb, &r), 0);
    ck_assert(rlab_future_cancel(f));
    ck_assert_int_eq(atomic_load(&r.calls), 1);
    ck_assert(r.thread == rlab_get_ident());
    ck_assert(rlab_future_cancel(f)); /* again: no second call */
    ck_assert(!rlab_future_set_running_or_notify_cancel(f));
    ck_assert_int_eq(atomic_load(&r.calls), 1);
    rlab_future_free(f);
}
END_TEST

START_TEST(callback_added_after_completion_runs_at_once_on_the_caller)
{
    rlab_future *done[3] = {successful_future(), failed_future(EIO),
                            cancelled_future()};
    for (int i = 0; i < 3; i++) {
        cb_rec r = {.calls = 0};
        ck_assert_rc(rlab_future_add_done_callback(done[i], record_cb, &r), 0);
        ck_assert_int_eq(atomic_load(&r.calls), 1);
        ck_assert(r.thread == rlab_get_ident());
        ck_assert_ptr_eq(r.seen, done[i]);
        rlab_future_free(done[i]);
    }
}
END_TEST

START_TEST(callbacks_never_run_for_a_future_freed_unfinished)
{
    cb_rec r = {.calls = 0};
    rlab_future *f = pending_future();
    for (int i = 0; i < 3; i++) /* the inline slot and two allocated */
        ck_assert_rc(rlab_future_add_done_callback(f, record_cb, &r), 0);
    rlab_future_free(f);
    ck_assert_int_eq(atomic_load(&r.calls), 0);
}
END_TEST

/* A callback may drop the last reference, and may add another callback
 * (none of the future's locks is held while it runs). */
static void free_in_cb(rlab_future *f, void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    rlab_future_free(f);
}

static int add_in_cb_rc = -1;

static void add_in_cb(rlab_future *f, void *arg)
{
    add_in_cb_rc = rlab_future_add_done_callback(f, record_cb, arg);
}

START_TEST(callback_may_free_the_future_or_add_another_callback)
{
    atomic_int freed = 0;
    cb_rec r = {.calls = 0};
    rlab_future *f = running_future();
    ck_assert_rc(rlab_future_add_done_callback(f, add_in_cb, &r), 0);
    ck_assert_rc(rlab_future_add_done_callback(f, free_in_cb, &freed), 0);
    ck_assert_rc(rlab_future_set_result(f, 0, NULL), 0);
    /* f is gone: the callback dropped the only reference */
    ck_assert_int_eq(atomic_load(&freed), 1);
    ck_assert_rc(add_in_cb_rc, 0);
    ck_assert_int_eq(atomic_load(&r.calls), 1);
}
END_TEST

START_TEST(callback_added_while_another_thread_completes_runs_once)
{
    enum { ROUNDS = 200 };
    for (int i = 0; i < ROUNDS; i++) {
        rlab_future *f = running_future();
        rlab_event *go = rlab_event_new();
        completer c = {.f = f, .start = go, .code = 0};
        rlab_thread *t = rlab_test_spawn(complete_later, &c);
        cb_rec r = {.calls = 0};
        rlab_event_set(go);
        ck_assert_rc(rlab_future_add_done_callback(f, record_cb, &r), 0);
        rlab_test_join(t);
        ck_assert_int_eq(atomic_load(&r.calls), 1);
        rlab_event_free(go);
        rlab_future_free(f);
    }
}
END_TEST

/* --------------------------------------------------------------- wait --- */

START_TEST(wait_first_completed_returns_at_once_if_one_is_done)
{
    rlab_future *fs[3] = {pending_future(), successful_future(),
                          running_future()};
    bool done[3];
    ck_assert_rc(rlab_wait(fs, 3, RLAB_GUARD, RLAB_FIRST_COMPLETED, done), 0);
    ck_assert(!done[0] && done[1] && !done[2]);
    for (int i = 0; i < 3; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(wait_first_completed_counts_a_cancelled_future)
{
    rlab_future *fs[2] = {cancelled_future(), running_future()};
    bool done[2];
    ck_assert_rc(rlab_wait(fs, 2, 0, RLAB_FIRST_COMPLETED, done), 0);
    ck_assert(done[0] && !done[1]);
    for (int i = 0; i < 2; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(wait_first_completed_times_out_when_none_finishes)
{
    rlab_future *fs[2] = {pending_future(), running_future()};
    bool done[2] = {true, true};
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_wait(fs, 2, 0.1, RLAB_FIRST_COMPLETED, done), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert(!done[0] && !done[1]);
    ck_assert_rc(rlab_wait(fs, 2, 0, RLAB_FIRST_COMPLETED, NULL), ETIMEDOUT);
    for (int i = 0; i < 2; i++)
        rlab_future_free(fs[i]);
}
END_TEST

typedef struct {
    rlab_future **fs;
    size_t n;
    int return_when;
    double timeout;
    bool done[8];
    int rc;
} waiter_job;

static void *wait_job(void *arg)
{
    waiter_job *j = arg;
    j->rc = rlab_wait(j->fs, j->n, j->timeout, j->return_when, j->done);
    return NULL;
}

START_TEST(blocked_wait_first_completed_wakes_on_the_first_completion)
{
    rlab_future *fs[3] = {running_future(), running_future(), pending_future()};
    waiter_job j = {.fs = fs,
                    .n = 3,
                    .return_when = RLAB_FIRST_COMPLETED,
                    .timeout = RLAB_GUARD,
                    .rc = -1};
    rlab_thread *t = rlab_test_spawn(wait_job, &j);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(fs[1], 0, NULL), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert(!j.done[0] && j.done[1] && !j.done[2]);
    for (int i = 0; i < 3; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(wait_first_exception_returns_at_once_if_one_failed)
{
    rlab_future *fs[3] = {successful_future(), failed_future(EIO),
                          running_future()};
    bool done[3];
    ck_assert_rc(rlab_wait(fs, 3, RLAB_GUARD, RLAB_FIRST_EXCEPTION, done), 0);
    ck_assert(done[0] && done[1] && !done[2]);
    for (int i = 0; i < 3; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(wait_first_exception_ignores_success_and_cancellation)
{
    rlab_future *fs[3] = {successful_future(), cancelled_future(),
                          running_future()};
    bool done[3];
    ck_assert_rc(rlab_wait(fs, 3, 0.05, RLAB_FIRST_EXCEPTION, done), ETIMEDOUT);
    ck_assert(done[0] && done[1] && !done[2]);
    /* all done without a failure also satisfies FIRST_EXCEPTION */
    ck_assert_rc(rlab_future_set_result(fs[2], 0, NULL), 0);
    ck_assert_rc(rlab_wait(fs, 3, 0, RLAB_FIRST_EXCEPTION, done), 0);
    ck_assert(done[0] && done[1] && done[2]);
    for (int i = 0; i < 3; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(blocked_wait_first_exception_wakes_on_a_failure_not_a_success)
{
    rlab_future *fs[3] = {running_future(), running_future(), running_future()};
    waiter_job j = {.fs = fs,
                    .n = 3,
                    .return_when = RLAB_FIRST_EXCEPTION,
                    .timeout = RLAB_GUARD,
                    .rc = -1};
    rlab_thread *t = rlab_test_spawn(wait_job, &j);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(fs[0], 0, NULL), 0);
    assert_blocked(t);
    ck_assert(rlab_future_set_result(fs[2], EPIPE, NULL) == 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert(j.done[0] && !j.done[1] && j.done[2]);
    for (int i = 0; i < 3; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(wait_all_completed_returns_when_every_future_is_done)
{
    rlab_future *fs[4] = {successful_future(), cancelled_future(),
                          failed_future(EIO), running_future()};
    waiter_job j = {.fs = fs,
                    .n = 4,
                    .return_when = RLAB_ALL_COMPLETED,
                    .timeout = RLAB_FOREVER,
                    .rc = -1};
    rlab_thread *t = rlab_test_spawn(wait_job, &j);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(fs[3], 0, NULL), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    for (int i = 0; i < 4; i++) {
        ck_assert(j.done[i]);
        rlab_future_free(fs[i]);
    }
}
END_TEST

START_TEST(wait_all_completed_timeout_gives_the_done_and_not_done_sets)
{
    rlab_future *fs[5] = {cancelled_future(), failed_future(EIO),
                          successful_future(), successful_future(),
                          running_future()};
    bool done[5];
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_wait(fs, 5, 0.1, RLAB_ALL_COMPLETED, done), ETIMEDOUT);
    ck_assert_double_ge(rlab_test_now() - t0, 0.1 - CLOCK_SLACK);
    ck_assert(done[0] && done[1] && done[2] && done[3] && !done[4]);
    for (int i = 0; i < 5; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(wait_accepts_duplicates)
{
    rlab_future *f = running_future();
    rlab_future *fs[3] = {f, f, f};
    waiter_job j = {.fs = fs,
                    .n = 3,
                    .return_when = RLAB_ALL_COMPLETED,
                    .timeout = RLAB_GUARD,
                    .rc = -1};
    rlab_thread *t = rlab_test_spawn(wait_job, &j);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(f, 0, NULL), 0);
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert(j.done[0] && j.done[1] && j.done[2]);
    bool done[3];
    ck_assert_rc(rlab_wait(fs, 3, 0, RLAB_FIRST_COMPLETED, done), 0);
    rlab_future_free(f);
}
END_TEST

START_TEST(wait_on_no_futures_is_satisfied)
{
    ck_assert_rc(rlab_wait(NULL, 0, 0, RLAB_FIRST_COMPLETED, NULL), 0);
    ck_assert_rc(rlab_wait(NULL, 0, 0, RLAB_FIRST_EXCEPTION, NULL), 0);
    ck_assert_rc(rlab_wait(NULL, 0, 0, RLAB_ALL_COMPLETED, NULL), 0);
}
END_TEST

START_TEST(wait_bad_arguments_are_einval)
{
    rlab_future *f = running_future();
    rlab_future *fs[2] = {f, NULL};
    bool done[2] = {true, true};
    ck_assert_rc(rlab_wait(NULL, 1, 0, RLAB_ALL_COMPLETED, done), EINVAL);
    ck_assert_rc(rlab_wait(fs, 2, 0, RLAB_ALL_COMPLETED, done), EINVAL);
    ck_assert_rc(rlab_wait(fs, 1, 0, 0, done), EINVAL);
    ck_assert_rc(rlab_wait(fs, 1, 0, 4, done), EINVAL);
    ck_assert_rc(rlab_wait(fs, 1, -2.0, RLAB_ALL_COMPLETED, done), EINVAL);
    ck_assert_rc(rlab_wait(fs, 1, NAN, RLAB_ALL_COMPLETED, done), EINVAL);
    ck_assert(done[0] && done[1]); /* untouched */
    rlab_future_free(f);
}
END_TEST

/* ------------------------------------------------------- as_completed --- */

START_TEST(as_completed_yields_done_futures_first_then_in_finishing_order)
{
    rlab_future *a = running_future(), *b = successful_future(),
                *c = pending_future(), *d = cancelled_future();
    rlab_future *fs[4] = {a, b, c, d};
    rlab_as_completed *it = rlab_as_completed_new(fs, 4, RLAB_GUARD);
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(rlab_as_completed_pending(it), 4);
    rlab_future *out = NULL;
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, b);
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, d);
    ck_assert_rc(rlab_future_set_result(a, EIO, NULL), 0);
    ck_assert(rlab_future_cancel(c));
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, a);
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, c);
    ck_assert_uint_eq(rlab_as_completed_pending(it), 0);
    out = NULL;
    ck_assert_rc(rlab_as_completed_next(it, &out), RLAB_EEOF);
    ck_assert_ptr_null(out);
    ck_assert_rc(rlab_as_completed_next(it, &out), RLAB_EEOF);
    rlab_as_completed_free(it);
    for (int i = 0; i < 4; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(as_completed_yields_a_duplicated_future_once)
{
    rlab_future *f = successful_future(), *g = running_future();
    rlab_future *fs[5] = {f, g, f, g, f};
    rlab_as_completed *it = rlab_as_completed_new(fs, 5, RLAB_GUARD);
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(rlab_as_completed_pending(it), 2);
    rlab_future *out;
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, f);
    ck_assert_rc(rlab_future_set_result(g, 0, NULL), 0);
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, g);
    ck_assert_rc(rlab_as_completed_next(it, &out), RLAB_EEOF);
    rlab_as_completed_free(it);
    rlab_future_free(f);
    rlab_future_free(g);
}
END_TEST

START_TEST(as_completed_times_out_and_says_how_many_are_unfinished)
{
    rlab_future *fs[4] = {successful_future(), running_future(),
                          failed_future(EIO), pending_future()};
    rlab_as_completed *it = rlab_as_completed_new(fs, 4, 0.1);
    ck_assert_ptr_nonnull(it);
    rlab_future *out;
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, fs[0]);
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, fs[2]);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_as_completed_next(it, &out), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_lt(elapsed, LATE);
    ck_assert_uint_eq(rlab_as_completed_pending(it), 2); /* "2 (of 4)" */
    /* the deadline is for the whole iteration: it stays passed */
    t0 = rlab_test_now();
    ck_assert_rc(rlab_as_completed_next(it, &out), ETIMEDOUT);
    ck_assert_double_lt(rlab_test_now() - t0, 0.05);
    rlab_as_completed_free(it);
    for (int i = 0; i < 4; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(as_completed_timeout_counts_from_creation)
{
    rlab_future *f = running_future();
    double t0 = rlab_test_now();
    rlab_as_completed *it = rlab_as_completed_new(&f, 1, 0.1);
    ck_assert_ptr_nonnull(it);
    rlab_future *out;
    ck_assert_rc(rlab_as_completed_next(it, &out), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, 0.1 - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert_uint_eq(rlab_as_completed_pending(it), 1);
    rlab_as_completed_free(it);
    rlab_future_free(f);
}
END_TEST

START_TEST(as_completed_with_timeout_zero_yields_only_the_done_ones)
{
    rlab_future *fs[3] = {running_future(), cancelled_future(),
                          successful_future()};
    rlab_as_completed *it = rlab_as_completed_new(fs, 3, 0);
    ck_assert_ptr_nonnull(it);
    rlab_future *out;
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, fs[1]);
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, fs[2]);
    ck_assert_rc(rlab_as_completed_next(it, &out), ETIMEDOUT);
    ck_assert_uint_eq(rlab_as_completed_pending(it), 1);
    rlab_as_completed_free(it);
    for (int i = 0; i < 3; i++)
        rlab_future_free(fs[i]);
}
END_TEST

typedef struct {
    rlab_as_completed *it;
    rlab_future *got[4];
    int rcs[4];
    int n;
} iter_job;

static void *iterate(void *arg)
{
    iter_job *j = arg;
    for (j->n = 0; j->n < 4; j->n++) {
        j->rcs[j->n] = rlab_as_completed_next(j->it, &j->got[j->n]);
        if (j->rcs[j->n] != 0)
            break;
    }
    return NULL;
}

START_TEST(blocked_as_completed_wakes_for_each_completion)
{
    rlab_future *fs[3] = {running_future(), running_future(), pending_future()};
    rlab_as_completed *it = rlab_as_completed_new(fs, 3, RLAB_GUARD);
    ck_assert_ptr_nonnull(it);
    iter_job j = {.it = it};
    rlab_thread *t = rlab_test_spawn(iterate, &j);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(fs[2], 0, NULL), 0);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(fs[0], EIO, NULL), 0);
    assert_blocked(t);
    ck_assert_rc(rlab_future_set_result(fs[1], 0, NULL), 0);
    rlab_test_join(t);
    ck_assert_int_eq(j.n, 3);
    ck_assert_rc(j.rcs[3], RLAB_EEOF);
    ck_assert_ptr_eq(j.got[0], fs[2]);
    ck_assert_ptr_eq(j.got[1], fs[0]);
    ck_assert_ptr_eq(j.got[2], fs[1]);
    rlab_as_completed_free(it);
    for (int i = 0; i < 3; i++)
        rlab_future_free(fs[i]);
}
END_TEST

START_TEST(futures_freed_by_the_caller_stay_valid_until_the_iterator_is_freed)
{
    rlab_future *fs[2] = {running_future(), running_future()};
    rlab_as_completed *it = rlab_as_completed_new(fs, 2, RLAB_GUARD);
    ck_assert_ptr_nonnull(it);
    ck_assert_rc(rlab_future_set_result(fs[1], 0, NULL), 0);
    rlab_future *out;
    ck_assert_rc(rlab_as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, fs[1]);
    rlab_future_free(fs[1]); /* the iterator still holds one */
    ck_assert(rlab_future_done(out));
    rlab_future_free(fs[0]); /* unfinished, still watched */
    rlab_as_completed_free(it);
}
END_TEST

START_TEST(as_completed_of_nothing_is_at_its_end)
{
    rlab_as_completed *it = rlab_as_completed_new(NULL, 0, 0);
    ck_assert_ptr_nonnull(it);
    rlab_future *out;
    ck_assert_rc(rlab_as_completed_next(it, &out), RLAB_EEOF);
    ck_assert_uint_eq(rlab_as_completed_pending(it), 0);
    rlab_as_completed_free(it);
    rlab_as_completed_free(NULL);
}
END_TEST

START_TEST(as_completed_bad_arguments_are_einval)
{
    rlab_future *f = running_future();
    rlab_future *fs[2] = {f, NULL};
    errno = 0;
    ck_assert_ptr_null(rlab_as_completed_new(NULL, 1, 0));
    ck_assert_rc(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_as_completed_new(fs, 2, 0));
    ck_assert_rc(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_as_completed_new(fs, 1, NAN));
    ck_assert_rc(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_as_completed_new(fs, 1, -3));
    ck_assert_rc(errno, EINVAL);
    rlab_future *out;
    ck_assert_rc(rlab_as_completed_next(NULL, &out), EINVAL);
    rlab_as_completed *it = rlab_as_completed_new(fs, 1, 0);
    ck_assert_rc(rlab_as_completed_next(it, NULL), EINVAL);
    ck_assert_uint_eq(rlab_as_completed_pending(NULL), 0);
    rlab_as_completed_free(it);
    rlab_future_free(f);
}
END_TEST

/* ---------------------------------------------------------- bad input --- */

START_TEST(null_future_is_einval_or_false)
{
    ck_assert_rc(rlab_future_result(NULL, 0, NULL), EINVAL);
    ck_assert(!rlab_future_cancel(NULL));
    ck_assert(!rlab_future_done(NULL));
    ck_assert(!rlab_future_cancelled(NULL));
    ck_assert(!rlab_future_running(NULL));
    ck_assert(!rlab_future_set_running_or_notify_cancel(NULL));
    ck_assert_rc(rlab_future_set_result(NULL, 0, NULL), EINVAL);
    cb_rec r = {.calls = 0};
    ck_assert_rc(rlab_future_add_done_callback(NULL, record_cb, &r), EINVAL);
    rlab_future *f = pending_future();
    ck_assert_rc(rlab_future_add_done_callback(f, NULL, NULL), EINVAL);
    rlab_future_free(f);
}
END_TEST

START_TEST(bad_result_timeout_is_einval_even_when_done)
{
    rlab_future *f = successful_future();
    rlab_future *g = running_future();
    const double bad[] = {-0.5, -2.0, NAN, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *res = NULL;
        ck_assert_rc(rlab_future_result(f, bad[i], &res), EINVAL);
        ck_assert_ptr_null(res);
        ck_assert_rc(rlab_future_result(g, bad[i], &res), EINVAL);
    }
    rlab_future_free(f);
    rlab_future_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("future");

    TCase *tc = tcase_create("states");
    tcase_add_test(tc, pending_future_is_not_done_running_or_cancelled);
    tcase_add_test(tc, running_future_is_running_and_not_done);
    tcase_add_test(tc, cancelled_future_is_done_and_cancelled);
    tcase_add_test(tc, failed_future_is_done_and_reports_the_task_code);
    tcase_add_test(tc, successful_future_is_done_and_gives_its_result);
    tcase_add_test(tc, a_task_may_fail_with_etimedout_and_done_tells_it_apart);
    tcase_add_test(tc, set_running_on_a_cancelled_future_is_false);
    tcase_add_test(tc, set_running_twice_or_after_finishing_is_false);
    tcase_add_test(tc, pending_future_may_be_finished_without_running);
    tcase_add_test(tc, second_set_result_is_einval_and_keeps_the_first);
    tcase_add_test(tc, set_result_on_a_cancelled_future_is_einval);
    tcase_add_test(tc, extra_references_keep_the_future_alive);
    tcase_add_test(tc, cancel_truth_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("result");
    tcase_add_test(tc, result_with_timeout_expires_with_etimedout);
    tcase_add_test(tc, blocked_result_returns_when_another_thread_sets_it);
    tcase_add_test(tc,
                   blocked_result_reports_the_failure_set_by_another_thread);
    tcase_add_test(tc,
                   blocked_result_is_ecancelled_when_another_thread_cancels);
    tcase_add_test(tc, every_blocked_result_wakes_on_one_completion);
    tcase_add_test(tc, result_set_by_another_thread_is_seen_within_the_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("callbacks");
    tcase_add_test(tc, callback_runs_once_on_the_completing_thread);
    tcase_add_test(tc, callbacks_run_with_a_failure_in_the_order_added);
    tcase_add_test(tc, callback_runs_on_cancel);
    tcase_add_test(tc,
                   callback_added_after_completion_runs_at_once_on_the_caller);
    tcase_add_test(tc, callbacks_never_run_for_a_future_freed_unfinished);
    tcase_add_test(tc, callback_may_free_the_future_or_add_another_callback);
    tcase_add_test(tc, callback_added_while_another_thread_completes_runs_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_add_test(tc, wait_first_completed_returns_at_once_if_one_is_done);
    tcase_add_test(tc, wait_first_completed_counts_a_cancelled_future);
    tcase_add_test(tc, wait_first_completed_times_out_when_none_finishes);
    tcase_add_test(tc,
                   blocked_wait_first_completed_wakes_on_the_first_completion);
    tcase_add_test(tc, wait_first_exception_returns_at_once_if_one_failed);
    tcase_add_test(tc, wait_first_exception_ignores_success_and_cancellation);
    tcase_add_test(
        tc, blocked_wait_first_exception_wakes_on_a_failure_not_a_success);
    tcase_add_test(tc, wait_all_completed_returns_when_every_future_is_done);
    tcase_add_test(tc,
                   wait_all_completed_timeout_gives_the_done_and_not_done_sets);
    tcase_add_test(tc, wait_accepts_duplicates);
    tcase_add_test(tc, wait_on_no_futures_is_satisfied);
    tcase_add_test(tc, wait_bad_arguments_are_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("as_completed");
    tcase_add_test(
        tc, as_completed_yields_done_futures_first_then_in_finishing_order);
    tcase_add_test(tc, as_completed_yields_a_duplicated_future_once);
    tcase_add_test(tc, as_completed_times_out_and_says_how_many_are_unfinished);
    tcase_add_test(tc, as_completed_timeout_counts_from_creation);
    tcase_add_test(tc,
                   as_completed_with_timeout_zero_yields_only_the_done_ones);
    tcase_add_test(tc, blocked_as_completed_wakes_for_each_completion);
    tcase_add_test(
        tc, futures_freed_by_the_caller_stay_valid_until_the_iterator_is_freed);
    tcase_add_test(tc, as_completed_of_nothing_is_at_its_end);
    tcase_add_test(tc, as_completed_bad_arguments_are_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_test(tc, null_future_is_einval_or_false);
    tcase_add_test(tc, bad_result_timeout_is_einval_even_when_done);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
