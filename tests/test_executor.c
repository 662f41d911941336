/* test_executor.c - concurrent.futures.ThreadPoolExecutor and Executor.map
 * (CPython's test_concurrent_futures ExecutorTest, ThreadPoolExecutorTest,
 * ThreadPoolShutdownTest, InitializerMixin and FailingInitializerMixin, in
 * C).  Tasks that must stay running block on events the test sets; thread
 * counts are observed through the native ids the tasks record. */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rlab_test.h"

#define CLOCK_SLACK 1e-3
#define LATE 2.0
/* Long enough for a helper thread to be parked in the call under test. */
#define SETTLE 0.05

/* ------------------------------------------------------------- tasks --- */

/* Doubles the integer behind arg. */
static int twice(void *arg, void **result)
{
    *result = (void *)(2 * (intptr_t)arg);
    return 0;
}

/* Fails with the code behind arg (0: succeeds with arg). */
static int fail_with(void *arg, void **result)
{
    *result = arg;
    return (int)(intptr_t)arg;
}

/* A task that records where it ran and can be held until released. */
typedef struct {
    rlab_event *started;      /* set when it starts (may be NULL) */
    rlab_event *release;      /* waited on before returning (may be NULL) */
    rlab_barrier *rendezvous; /* waited on first (may be NULL) */
    long tid;
    char name[64];
    atomic_int runs;
    int code;
    void *result;
} job;

static int run_job(void *arg, void **result)
{
    job *j = arg;
    atomic_fetch_add(&j->runs, 1);
    j->tid = rlab_get_native_id();
    snprintf(j->name, sizeof j->name, "%s", rlab_current_thread_name());
    if (j->started)
        rlab_event_set(j->started);
    if (j->rendezvous)
        rlab_barrier_wait(j->rendezvous, RLAB_GUARD, NULL);
    if (j->release)
        rlab_event_wait(j->release, RLAB_GUARD);
    *result = j->result;
    return j->code;
}

/* Counts the worker threads a pool starts (its initializer runs once in
 * each). */
static atomic_int threads_started;

static int count_start(void *arg)
{
    (void)arg;
    atomic_fetch_add(&threads_started, 1);
    return 0;
}

static int started(void)
{
    return atomic_load(&threads_started);
}

static rlab_executor *counted_pool_new(int workers)
{
    atomic_store(&threads_started, 0);
    rlab_executor *ex = rlab_thread_pool_new(workers, NULL, count_start, NULL);
    ck_assert_ptr_nonnull(ex);
    return ex;
}

static rlab_executor *pool_new(int workers)
{
    rlab_executor *ex = rlab_thread_pool_new(workers, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    return ex;
}

static rlab_future *submit(rlab_executor *ex, rlab_task_fn fn, void *arg)
{
    rlab_future *f = NULL;
    ck_assert_rc(rlab_executor_submit(ex, fn, arg, &f), 0);
    ck_assert_ptr_nonnull(f);
    return f;
}

static rlab_event *event_new(void)
{
    rlab_event *e = rlab_event_new();
    ck_assert_ptr_nonnull(e);
    return e;
}

/* How many distinct thread ids jobs[0..n) ran on. */
static int distinct_threads(job *jobs, int n)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int k = 0; k < i && !seen; k++)
            seen = jobs[k].tid == jobs[i].tid;
        count += !seen;
    }
    return count;
}

/* ------------------------------------------------------------- submit --- */

START_TEST(submit_runs_the_task_and_its_future_gives_the_result)
{
    rlab_executor *ex = pool_new(2);
    rlab_future *f = submit(ex, twice, (void *)21);
    void *res = NULL;
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
    ck_assert_int_eq((intptr_t)res, 42);
    ck_assert(rlab_future_done(f));
    rlab_future_free(f);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(a_failing_task_is_the_futures_exception)
{
    rlab_executor *ex = pool_new(2);
    rlab_future *f = submit(ex, fail_with, (void *)(intptr_t)EDOM);
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, NULL), EDOM);
    ck_assert(rlab_future_done(f) && !rlab_future_cancelled(f));
    bool done;
    ck_assert_rc(rlab_wait(&f, 1, RLAB_GUARD, RLAB_FIRST_EXCEPTION, &done), 0);
    rlab_future_free(f);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(running_task_future_is_running_and_cannot_be_cancelled)
{
    rlab_executor *ex = pool_new(1);
    job j = {.started = event_new(), .release = event_new()};
    rlab_future *f = submit(ex, run_job, &j);
    ck_assert_rc(rlab_event_wait(j.started, RLAB_GUARD), 0);
    ck_assert(rlab_future_running(f));
    ck_assert(!rlab_future_cancel(f));
    ck_assert(!rlab_future_done(f));
    rlab_event_set(j.release);
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, NULL), 0);
    ck_assert_int_eq(atomic_load(&j.runs), 1);
    rlab_future_free(f);
    rlab_executor_free(ex);
    rlab_event_free(j.started);
    rlab_event_free(j.release);
}
END_TEST

START_TEST(queued_task_cancelled_before_it_starts_never_runs)
{
    rlab_executor *ex = pool_new(1);
    job blocker = {.started = event_new(), .release = event_new()};
    job queued = {.runs = 0};
    rlab_future *b = submit(ex, run_job, &blocker);
    ck_assert_rc(rlab_event_wait(blocker.started, RLAB_GUARD), 0);
    rlab_future *q = submit(ex, run_job, &queued);
    ck_assert(!rlab_future_running(q) && !rlab_future_done(q));
    ck_assert(rlab_future_cancel(q));
    ck_assert_rc(rlab_future_result(q, 0, NULL), RLAB_ECANCELLED);
    rlab_event_set(blocker.release);
    rlab_executor_free(ex); /* waits for everything */
    ck_assert_int_eq(atomic_load(&queued.runs), 0);
    ck_assert_int_eq(atomic_load(&blocker.runs), 1);
    ck_assert_rc(rlab_future_result(b, 0, NULL), 0);
    rlab_future_free(b);
    rlab_future_free(q);
    rlab_event_free(blocker.started);
    rlab_event_free(blocker.release);
}
END_TEST

static void count_cb(rlab_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

START_TEST(callbacks_fire_once_for_finished_failed_and_cancelled_tasks)
{
    rlab_executor *ex = pool_new(1);
    job blocker = {.started = event_new(), .release = event_new()};
    atomic_int calls[3] = {0, 0, 0};
    rlab_future *fs[3];
    fs[0] = submit(ex, run_job, &blocker);
    ck_assert_rc(rlab_event_wait(blocker.started, RLAB_GUARD), 0);
    fs[1] = submit(ex, fail_with, (void *)(intptr_t)EIO);
    fs[2] = submit(ex, twice, (void *)1);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(rlab_future_add_done_callback(fs[i], count_cb, &calls[i]),
                     0);
    ck_assert(rlab_future_cancel(fs[2]));
    ck_assert_int_eq(atomic_load(&calls[2]), 1);
    rlab_event_set(blocker.release);
    ck_assert_rc(rlab_wait(fs, 3, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL), 0);
    rlab_executor_free(ex); /* the last callback has returned */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&calls[i]), 1);
        rlab_future_free(fs[i]);
    }
    rlab_event_free(blocker.started);
    rlab_event_free(blocker.release);
}
END_TEST

/* A callback that submits more work to the pool: no pool lock is held
 * while callbacks run. */
typedef struct {
    rlab_executor *ex;
    rlab_future *next;
    int rc;
    rlab_event *submitted;
} chain;

static void submit_in_cb(rlab_future *f, void *arg)
{
    (void)f;
    chain *c = arg;
    c->rc = rlab_executor_submit(c->ex, twice, (void *)5, &c->next);
    rlab_event_set(c->submitted);
}

START_TEST(a_done_callback_may_submit_to_the_same_pool)
{
    rlab_executor *ex = pool_new(1);
    chain c = {.ex = ex, .rc = -1, .submitted = event_new()};
    job j = {.release = event_new()};
    rlab_future *f = submit(ex, run_job, &j);
    ck_assert_rc(rlab_future_add_done_callback(f, submit_in_cb, &c), 0);
    rlab_event_set(j.release);
    ck_assert_rc(rlab_event_wait(c.submitted, RLAB_GUARD), 0);
    ck_assert_rc(c.rc, 0);
    void *res;
    ck_assert_rc(rlab_future_result(c.next, RLAB_GUARD, &res), 0);
    ck_assert_int_eq((intptr_t)res, 10);
    rlab_future_free(c.next);
    rlab_future_free(f);
    rlab_executor_free(ex);
    rlab_event_free(j.release);
    rlab_event_free(c.submitted);
}
END_TEST

START_TEST(futures_stay_valid_after_the_executor_is_freed)
{
    rlab_executor *ex = pool_new(3);
    rlab_future *fs[10];
    for (intptr_t i = 0; i < 10; i++)
        fs[i] = submit(ex, twice, (void *)i);
    rlab_executor_free(ex);
    for (intptr_t i = 0; i < 10; i++) {
        void *res;
        ck_assert(rlab_future_done(fs[i]));
        ck_assert_rc(rlab_future_result(fs[i], 0, &res), 0);
        ck_assert_int_eq((intptr_t)res, 2 * i);
        rlab_future_free(fs[i]);
    }
}
END_TEST

/* ---------------------------------------------------------- map --- */

/* Task i waits until task i+1 has finished, so they finish in reverse. */
typedef struct {
    rlab_event *after; /* wait for this first (NULL for the last item) */
    rlab_event *done;
    intptr_t value;
} ordered;

static int run_ordered(void *arg, void **result)
{
    ordered *o = arg;
    if (o->after)
        rlab_event_wait(o->after, RLAB_GUARD);
    *result = (void *)(o->value * o->value);
    rlab_event_set(o->done);
    return o->value == 3 ? ERANGE : 0;
}

START_TEST(map_gives_results_in_input_order_though_tasks_finish_reversed)
{
    enum { N = 5 };
    rlab_executor *ex = pool_new(N);
    ordered items[N];
    void *args[N];
    for (int i = 0; i < N; i++) {
        items[i].done = event_new();
        items[i].value = i;
        args[i] = &items[i];
    }
    for (int i = 0; i < N; i++)
        items[i].after = i + 1 < N ? items[i + 1].done : NULL;
    void *results[N];
    int codes[N];
    ck_assert_rc(
        rlab_executor_map(ex, run_ordered, args, N, results, codes, RLAB_GUARD),
        0);
    for (int i = 0; i < N; i++) {
        if (i == 3) {
            ck_assert_rc(codes[i], ERANGE); /* the failure shows per item */
            ck_assert_ptr_null(results[i]);
        } else {
            ck_assert_rc(codes[i], 0);
            ck_assert_int_eq((intptr_t)results[i], i * i);
        }
    }
    rlab_executor_free(ex);
    for (int i = 0; i < N; i++)
        rlab_event_free(items[i].done);
}
END_TEST

START_TEST(map_of_many_items_keeps_order_and_accepts_null_outputs)
{
    enum { N = 1000 };
    rlab_executor *ex = pool_new(4);
    void *args[N], *results[N];
    int codes[N];
    for (intptr_t i = 0; i < N; i++)
        args[i] = (void *)i;
    ck_assert_rc(
        rlab_executor_map(ex, twice, args, N, results, codes, RLAB_GUARD), 0);
    for (intptr_t i = 0; i < N; i++) {
        ck_assert_rc(codes[i], 0);
        ck_assert_int_eq((intptr_t)results[i], 2 * i);
    }
    ck_assert_rc(rlab_executor_map(ex, twice, args, N, NULL, NULL, RLAB_GUARD),
                 0);
    ck_assert_rc(rlab_executor_map(ex, twice, NULL, 0, NULL, NULL, 0), 0);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(map_timeout_cancels_what_has_not_started)
{
    /* One worker: items 0 and 1 finish, 2 blocks, 3 never starts. */
    rlab_executor *ex = pool_new(1);
    job blocker = {.started = event_new(), .release = event_new()};
    job never = {.runs = 0};
    job quick[2] = {{.result = (void *)1}, {.result = (void *)2}};
    void *args[4] = {&quick[0], &quick[1], &blocker, &never};
    void *results[4];
    int codes[4];
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_executor_map(ex, run_job, args, 4, results, codes, 0.2),
                 ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, 0.2 - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert_rc(codes[0], 0);
    ck_assert_ptr_eq(results[0], (void *)1);
    ck_assert_rc(codes[1], 0);
    ck_assert_ptr_eq(results[1], (void *)2);
    ck_assert_rc(codes[2], ETIMEDOUT); /* still running */
    ck_assert_ptr_null(results[2]);
    ck_assert_rc(codes[3], RLAB_ECANCELLED);
    rlab_event_set(blocker.release);
    rlab_executor_free(ex);
    ck_assert_int_eq(atomic_load(&never.runs), 0);
    ck_assert_int_eq(atomic_load(&blocker.runs), 1);
    rlab_event_free(blocker.started);
    rlab_event_free(blocker.release);
}
END_TEST

START_TEST(map_chunked_gives_results_in_order_for_every_chunk_size)
{
    enum { N = 23 };
    rlab_executor *ex = pool_new(3);
    void *args[N], *results[N];
    int codes[N];
    for (intptr_t i = 0; i < N; i++)
        args[i] = (void *)(i % 7 == 3 ? (intptr_t)EIO : 0);
    const size_t sizes[] = {1, 2, 3, 5, 22, 23, 100};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        memset(codes, -1, sizeof codes);
        ck_assert_rc(rlab_executor_map_chunked(ex, fail_with, args, N, sizes[s],
                                               results, codes, RLAB_GUARD),
                     0);
        for (int i = 0; i < N; i++)
            ck_assert_rc(codes[i], i % 7 == 3 ? EIO : 0);
    }
    for (intptr_t i = 0; i < N; i++)
        args[i] = (void *)i;
    ck_assert_rc(rlab_executor_map_chunked(ex, twice, args, N, 4, results,
                                           codes, RLAB_GUARD),
                 0);
    for (intptr_t i = 0; i < N; i++)
        ck_assert_int_eq((intptr_t)results[i], 2 * i);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(map_chunked_timeout_cancels_chunks_not_started)
{
    /* One worker, chunks of 2: chunk 0 blocks on its second item, chunk 1
     * never starts. */
    rlab_executor *ex = pool_new(1);
    job first = {.result = (void *)7};
    job blocker = {.started = event_new(), .release = event_new()};
    job later[2] = {{.runs = 0}, {.runs = 0}};
    void *args[4] = {&first, &blocker, &later[0], &later[1]};
    int codes[4];
    ck_assert_rc(
        rlab_executor_map_chunked(ex, run_job, args, 4, 2, NULL, codes, 0.1),
        ETIMEDOUT);
    ck_assert_rc(codes[0], ETIMEDOUT); /* its chunk is still running */
    ck_assert_rc(codes[1], ETIMEDOUT);
    ck_assert_rc(codes[2], RLAB_ECANCELLED);
    ck_assert_rc(codes[3], RLAB_ECANCELLED);
    rlab_event_set(blocker.release);
    rlab_executor_free(ex); /* the running chunk ends on memory it owns */
    ck_assert_int_eq(atomic_load(&later[0].runs), 0);
    ck_assert_int_eq(atomic_load(&later[1].runs), 0);
    ck_assert_int_eq(atomic_load(&first.runs), 1);
    rlab_event_free(blocker.started);
    rlab_event_free(blocker.release);
}
END_TEST

START_TEST(map_bad_arguments_are_einval_and_after_shutdown_eshutdown)
{
    rlab_executor *ex = pool_new(1);
    void *args[2] = {0, 0};
    int codes[2] = {-1, -1};
    ck_assert_rc(rlab_executor_map(NULL, twice, args, 2, NULL, codes, 0),
                 EINVAL);
    ck_assert_rc(rlab_executor_map(ex, NULL, args, 2, NULL, codes, 0), EINVAL);
    ck_assert_rc(rlab_executor_map(ex, twice, NULL, 2, NULL, codes, 0), EINVAL);
    ck_assert_rc(rlab_executor_map(ex, twice, args, 2, NULL, codes, NAN),
                 EINVAL);
    ck_assert_rc(
        rlab_executor_map_chunked(ex, twice, args, 2, 0, NULL, codes, 1.0),
        EINVAL);
    ck_assert_int_eq(codes[0], -1);
    ck_assert_rc(rlab_executor_shutdown(ex, true, false), 0);
    ck_assert_rc(rlab_executor_map(ex, twice, args, 2, NULL, codes, 1.0),
                 RLAB_ESHUTDOWN);
    ck_assert_rc(
        rlab_executor_map_chunked(ex, twice, args, 2, 2, NULL, codes, 1.0),
        RLAB_ESHUTDOWN);
    ck_assert_int_eq(codes[0], -1);
    rlab_executor_free(ex);
}
END_TEST

/* ----------------------------------------------------------- workers --- */

START_TEST(default_max_workers_is_min_32_cpus_plus_4)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int want = CPU_COUNT(&set) + 4;
    if (want > 32)
        want = 32;
    rlab_executor *ex = rlab_thread_pool_new(0, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    ck_assert_int_eq(rlab_executor_max_workers(ex), want);
    rlab_executor_free(ex);
    ex = pool_new(7);
    ck_assert_int_eq(rlab_executor_max_workers(ex), 7);
    rlab_executor_free(ex);
    ck_assert_int_eq(rlab_executor_max_workers(NULL), 0);
}
END_TEST

START_TEST(negative_max_workers_is_einval)
{
    errno = 0;
    ck_assert_ptr_null(rlab_thread_pool_new(-1, NULL, NULL, NULL));
    ck_assert_rc(errno, EINVAL);
}
END_TEST

START_TEST(saturation_uses_exactly_max_workers_threads)
{
    enum { W = 4, N = 15 * W };
    rlab_executor *ex = counted_pool_new(W);
    rlab_barrier *all_running = rlab_barrier_new(W + 1, NULL, NULL, RLAB_GUARD);
    rlab_event *release = event_new();
    job *jobs = calloc(N, sizeof *jobs);
    rlab_future *fs[N];
    for (int i = 0; i < N; i++) {
        jobs[i].release = release;
        jobs[i].rendezvous = i < W ? all_running : NULL;
        fs[i] = submit(ex, run_job, &jobs[i]);
    }
    /* The first W run at once, on W threads ... */
    ck_assert_rc(rlab_barrier_wait(all_running, RLAB_GUARD, NULL), 0);
    rlab_event_set(release);
    ck_assert_rc(rlab_wait(fs, N, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL), 0);
    /* ... and no more threads ever started for the rest. */
    ck_assert_int_eq(distinct_threads(jobs, N), W);
    ck_assert_int_eq(started(), W);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&jobs[i].runs), 1);
        rlab_future_free(fs[i]);
    }
    rlab_executor_free(ex);
    rlab_barrier_free(all_running);
    rlab_event_free(release);
    free(jobs);
}
END_TEST

START_TEST(idle_worker_is_reused_before_a_new_thread_starts)
{
    enum { N = 20 };
    rlab_executor *ex = counted_pool_new(8);
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        rlab_future *f = submit(ex, run_job, &jobs[i]);
        /* Watch for completion without sleeping, so the next submit comes
         * as soon after it as possible; the result is then at hand. */
        for (long k = 0; k < 100000000 && !rlab_future_done(f); k++)
            ;
        ck_assert_rc(rlab_future_result(f, RLAB_GUARD, NULL), 0);
        rlab_future_free(f);
    }
    rlab_executor_free(ex);
    ck_assert_int_eq(distinct_threads(jobs, N), 1);
    ck_assert_int_eq(started(), 1);
}
END_TEST

/* Each task's done callback submits the next one: the worker that ran a
 * task counts itself free before its future completes, so the chain stays
 * on that one worker. */
enum { CHAIN = 10 };

typedef struct {
    rlab_executor *ex;
    job jobs[CHAIN];
    rlab_future *fs[CHAIN];
    int next, rc;
    rlab_event *finished;
} relay;

static void submit_next(rlab_future *f, void *arg)
{
    (void)f;
    relay *r = arg;
    if (r->next == CHAIN) {
        rlab_event_set(r->finished);
        return;
    }
    int i = r->next++;
    /* Once the callback is added, the next step may run on the worker:
     * this step writes to r only when the chain ends here. */
    int rc = rlab_executor_submit(r->ex, run_job, &r->jobs[i], &r->fs[i]);
    if (rc == 0)
        rc = rlab_future_add_done_callback(r->fs[i], submit_next, r);
    if (rc != 0) {
        r->rc = rc;
        rlab_event_set(r->finished);
    }
}

START_TEST(submit_from_a_done_callback_reuses_the_completing_worker)
{
    relay *r = calloc(1, sizeof *r);
    r->ex = counted_pool_new(8);
    r->finished = event_new();
    submit_next(NULL, r);
    ck_assert_rc(rlab_event_wait(r->finished, RLAB_GUARD), 0);
    ck_assert_rc(r->rc, 0);
    ck_assert_int_eq(r->next, CHAIN);
    rlab_executor_free(r->ex);
    ck_assert_int_eq(distinct_threads(r->jobs, CHAIN), 1);
    ck_assert_int_eq(started(), 1);
    for (int i = 0; i < CHAIN; i++)
        rlab_future_free(r->fs[i]);
    rlab_event_free(r->finished);
    free(r);
}
END_TEST

START_TEST(workers_start_lazily_one_per_submit_while_none_is_free)
{
    enum { W = 6 };
    rlab_executor *ex = counted_pool_new(W);
    rlab_event *release = event_new();
    job jobs[3];
    memset(jobs, 0, sizeof jobs);
    rlab_future *fs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i].release = release;
        jobs[i].started = event_new();
        fs[i] = submit(ex, run_job, &jobs[i]);
        ck_assert_rc(rlab_event_wait(jobs[i].started, RLAB_GUARD), 0);
    }
    rlab_event_set(release);
    ck_assert_rc(rlab_wait(fs, 3, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL), 0);
    ck_assert_int_eq(distinct_threads(jobs, 3), 3); /* not 1, not W */
    ck_assert_int_eq(started(), 3);
    ck_assert_str_eq(jobs[0].name + strlen(jobs[0].name) - 2, "_0");
    for (int i = 0; i < 3; i++) {
        rlab_future_free(fs[i]);
        rlab_event_free(jobs[i].started);
    }
    rlab_executor_free(ex);
    rlab_event_free(release);
}
END_TEST

START_TEST(worker_threads_are_named_after_the_prefix)
{
    enum { W = 3 };
    rlab_executor *ex = rlab_thread_pool_new(W, "SpecialPool", NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    rlab_barrier *all_running = rlab_barrier_new(W, NULL, NULL, RLAB_GUARD);
    job jobs[W];
    memset(jobs, 0, sizeof jobs);
    rlab_future *fs[W];
    for (int i = 0; i < W; i++) {
        jobs[i].rendezvous = all_running;
        fs[i] = submit(ex, run_job, &jobs[i]);
    }
    ck_assert_rc(rlab_wait(fs, W, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL), 0);
    bool seen[W] = {false};
    for (int i = 0; i < W; i++) {
        ck_assert_int_eq(strncmp(jobs[i].name, "SpecialPool_", 12), 0);
        int k = atoi(jobs[i].name + 12);
        ck_assert(k >= 0 && k < W && !seen[k]);
        seen[k] = true;
        rlab_future_free(fs[i]);
    }
    rlab_executor_free(ex);
    rlab_barrier_free(all_running);
}
END_TEST

START_TEST(default_thread_names_are_threadpoolexecutor_k_n)
{
    rlab_executor *ex[2] = {pool_new(2), pool_new(2)};
    job jobs[2];
    memset(jobs, 0, sizeof jobs);
    for (int p = 0; p < 2; p++) {
        rlab_future *f = submit(ex[p], run_job, &jobs[p]);
        ck_assert_rc(rlab_future_result(f, RLAB_GUARD, NULL), 0);
        rlab_future_free(f);
        const char *name = jobs[p].name;
        ck_assert_int_eq(strncmp(name, "ThreadPoolExecutor-", 19), 0);
        char *end;
        strtoul(name + 19, &end, 10);
        ck_assert_ptr_ne(end, name + 19);
        ck_assert_str_eq(end, "_0");
    }
    ck_assert_str_ne(jobs[0].name, jobs[1].name); /* one K per pool */
    rlab_executor_free(ex[0]);
    rlab_executor_free(ex[1]);
}
END_TEST

/* ---------------------------------------------------------- shutdown --- */

START_TEST(submit_after_shutdown_is_eshutdown_and_changes_nothing)
{
    rlab_executor *ex = pool_new(2);
    rlab_future *f = submit(ex, twice, (void *)1);
    ck_assert_rc(rlab_executor_shutdown(ex, false, false), 0);
    rlab_future *out = (rlab_future *)&out;
    ck_assert_rc(rlab_executor_submit(ex, twice, (void *)1, &out),
                 RLAB_ESHUTDOWN);
    ck_assert_ptr_eq(out, (rlab_future *)&out);
    ck_assert_rc(rlab_executor_shutdown(ex, true, false), 0); /* again */
    ck_assert_rc(rlab_future_result(f, 0, NULL), 0);
    rlab_future_free(f);
    rlab_executor_free(ex);
}
END_TEST

typedef struct {
    rlab_executor *ex;
    rlab_future **fs;
    int n;
    bool all_done_after; /* every future was done when shutdown returned */
    int rc;
} shutdown_job;

static void *shutdown_and_check(void *arg)
{
    shutdown_job *s = arg;
    s->rc = rlab_executor_shutdown(s->ex, true, false);
    s->all_done_after = true;
    for (int i = 0; i < s->n; i++)
        s->all_done_after &= rlab_future_done(s->fs[i]);
    return NULL;
}

START_TEST(shutdown_wait_returns_after_every_pending_task_is_done)
{
    enum { N = 6 };
    rlab_executor *ex = pool_new(2);
    rlab_event *release = event_new();
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    rlab_future *fs[N];
    for (int i = 0; i < N; i++) {
        jobs[i].release = release;
        fs[i] = submit(ex, run_job, &jobs[i]);
    }
    shutdown_job s = {.ex = ex, .fs = fs, .n = N, .rc = -1};
    rlab_thread *t = rlab_test_spawn(shutdown_and_check, &s);
    ck_assert_rc(rlab_thread_join(t, SETTLE, NULL), ETIMEDOUT);
    rlab_event_set(release);
    rlab_test_join(t);
    ck_assert_rc(s.rc, 0);
    ck_assert(s.all_done_after);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&jobs[i].runs), 1);
        ck_assert_rc(rlab_future_result(fs[i], 0, NULL), 0);
        rlab_future_free(fs[i]);
    }
    rlab_executor_free(ex);
    rlab_event_free(release);
}
END_TEST

START_TEST(shutdown_without_wait_returns_while_tasks_run_and_they_finish)
{
    enum { N = 4 };
    rlab_executor *ex = pool_new(2);
    rlab_event *release = event_new();
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    rlab_future *fs[N];
    for (int i = 0; i < N; i++) {
        jobs[i].release = release;
        fs[i] = submit(ex, run_job, &jobs[i]);
    }
    ck_assert_rc(rlab_executor_shutdown(ex, false, false), 0);
    ck_assert(!rlab_future_done(fs[0]) && !rlab_future_cancelled(fs[N - 1]));
    rlab_event_set(release);
    ck_assert_rc(rlab_wait(fs, N, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_rc(rlab_future_result(fs[i], 0, NULL), 0);
        rlab_future_free(fs[i]);
    }
    rlab_executor_free(ex);
    rlab_event_free(release);
}
END_TEST

START_TEST(shutdown_cancel_futures_cancels_the_pending_ones_only)
{
    enum { N = 10 };
    rlab_executor *ex = pool_new(1);
    job blocker = {.started = event_new(), .release = event_new()};
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    atomic_int calls = 0;
    rlab_future *b = submit(ex, run_job, &blocker);
    ck_assert_rc(rlab_event_wait(blocker.started, RLAB_GUARD), 0);
    rlab_future *fs[N];
    for (int i = 0; i < N; i++) {
        fs[i] = submit(ex, run_job, &jobs[i]);
        ck_assert_rc(rlab_future_add_done_callback(fs[i], count_cb, &calls), 0);
    }
    ck_assert_rc(rlab_executor_shutdown(ex, false, true), 0);
    for (int i = 0; i < N; i++) {
        ck_assert(rlab_future_cancelled(fs[i]));
        ck_assert_rc(rlab_future_result(fs[i], 0, NULL), RLAB_ECANCELLED);
    }
    ck_assert_int_eq(atomic_load(&calls), N);
    ck_assert(rlab_future_running(b));
    rlab_event_set(blocker.release);
    ck_assert_rc(rlab_executor_shutdown(ex, true, false), 0);
    ck_assert_rc(rlab_future_result(b, 0, NULL), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&jobs[i].runs), 0);
        rlab_future_free(fs[i]);
    }
    rlab_future_free(b);
    rlab_executor_free(ex);
    rlab_event_free(blocker.started);
    rlab_event_free(blocker.release);
}
END_TEST

START_TEST(free_waits_for_running_and_pending_tasks)
{
    enum { N = 50 };
    rlab_executor *ex = pool_new(3);
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        rlab_future *f = submit(ex, run_job, &jobs[i]);
        rlab_future_free(f); /* the pool keeps its own reference */
    }
    rlab_executor_free(ex);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&jobs[i].runs), 1);
    rlab_executor_free(NULL);
}
END_TEST

/* ------------------------------------------------------- initializer --- */

static _Thread_local int init_marker;
static atomic_int init_calls;

static int init_ok(void *arg)
{
    init_marker = (int)(intptr_t)arg;
    atomic_fetch_add(&init_calls, 1);
    return 0;
}

static int read_marker(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(intptr_t)init_marker;
    return 0;
}

START_TEST(initializer_runs_once_in_each_worker_before_its_tasks)
{
    enum { W = 3 };
    atomic_store(&init_calls, 0);
    rlab_executor *ex = rlab_thread_pool_new(W, NULL, init_ok, (void *)77);
    ck_assert_ptr_nonnull(ex);
    rlab_barrier *all_running = rlab_barrier_new(W, NULL, NULL, RLAB_GUARD);
    job jobs[W];
    memset(jobs, 0, sizeof jobs);
    rlab_future *fs[W];
    for (int i = 0; i < W; i++) {
        jobs[i].rendezvous = all_running;
        fs[i] = submit(ex, run_job, &jobs[i]);
    }
    ck_assert_rc(rlab_wait(fs, W, RLAB_GUARD, RLAB_ALL_COMPLETED, NULL), 0);
    for (int i = 0; i < 20; i++) {
        rlab_future *f = submit(ex, read_marker, NULL);
        void *res;
        ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
        ck_assert_int_eq((intptr_t)res, 77);
        rlab_future_free(f);
    }
    rlab_executor_free(ex);
    ck_assert_int_eq(atomic_load(&init_calls), W);
    for (int i = 0; i < W; i++)
        rlab_future_free(fs[i]);
    rlab_barrier_free(all_running);
}
END_TEST

static int init_fails_when_released(void *arg)
{
    rlab_event_wait(arg, RLAB_GUARD);
    return EIO;
}

START_TEST(failing_initializer_breaks_the_pool)
{
    enum { N = 5 };
    rlab_event *release = event_new();
    rlab_executor *ex =
        rlab_thread_pool_new(1, NULL, init_fails_when_released, release);
    ck_assert_ptr_nonnull(ex);
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    rlab_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = submit(ex, run_job, &jobs[i]);
    rlab_event_set(release);
    for (int i = 0; i < N; i++)
        ck_assert_rc(rlab_future_result(fs[i], RLAB_GUARD, NULL), RLAB_EBROKEN);
    rlab_future *out = NULL;
    ck_assert_rc(rlab_executor_submit(ex, twice, NULL, &out), RLAB_EBROKEN);
    ck_assert_ptr_null(out);
    void *args[1] = {NULL};
    ck_assert_rc(rlab_executor_map(ex, twice, args, 1, NULL, NULL, 1.0),
                 RLAB_EBROKEN);
    /* broken wins over shut down, as in CPython's submit */
    ck_assert_rc(rlab_executor_shutdown(ex, true, false), 0);
    ck_assert_rc(rlab_executor_submit(ex, twice, NULL, &out), RLAB_EBROKEN);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&jobs[i].runs), 0);
        ck_assert(!rlab_future_cancelled(fs[i]));
        rlab_future_free(fs[i]);
    }
    rlab_executor_free(ex);
    rlab_event_free(release);
}
END_TEST

/* ---------------------------------------------------------- bad input --- */

START_TEST(null_executor_or_task_is_einval)
{
    rlab_future *out = NULL;
    ck_assert_rc(rlab_executor_submit(NULL, twice, NULL, &out), EINVAL);
    rlab_executor *ex = pool_new(1);
    ck_assert_rc(rlab_executor_submit(ex, NULL, NULL, &out), EINVAL);
    ck_assert_rc(rlab_executor_submit(ex, twice, NULL, NULL), EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_rc(rlab_executor_shutdown(NULL, true, false), EINVAL);
    rlab_executor_free(ex);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("executor");

    TCase *tc = tcase_create("submit");
    tcase_add_test(tc, submit_runs_the_task_and_its_future_gives_the_result);
    tcase_add_test(tc, a_failing_task_is_the_futures_exception);
    tcase_add_test(tc, running_task_future_is_running_and_cannot_be_cancelled);
    tcase_add_test(tc, queued_task_cancelled_before_it_starts_never_runs);
    tcase_add_test(tc,
                   callbacks_fire_once_for_finished_failed_and_cancelled_tasks);
    tcase_add_test(tc, a_done_callback_may_submit_to_the_same_pool);
    tcase_add_test(tc, futures_stay_valid_after_the_executor_is_freed);
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_add_test(
        tc, map_gives_results_in_input_order_though_tasks_finish_reversed);
    tcase_add_test(tc, map_of_many_items_keeps_order_and_accepts_null_outputs);
    tcase_add_test(tc, map_timeout_cancels_what_has_not_started);
    tcase_add_test(tc, map_chunked_gives_results_in_order_for_every_chunk_size);
    tcase_add_test(tc, map_chunked_timeout_cancels_chunks_not_started);
    tcase_add_test(tc,
                   map_bad_arguments_are_einval_and_after_shutdown_eshutdown);
    suite_add_tcase(s, tc);

    tc = tcase_create("workers");
    tcase_add_test(tc, default_max_workers_is_min_32_cpus_plus_4);
    tcase_add_test(tc, negative_max_workers_is_einval);
    tcase_add_test(tc, saturation_uses_exactly_max_workers_threads);
    tcase_add_test(tc, idle_worker_is_reused_before_a_new_thread_starts);
    tcase_add_test(tc,
                   submit_from_a_done_callback_reuses_the_completing_worker);
    tcase_add_test(tc, workers_start_lazily_one_per_submit_while_none_is_free);
    tcase_add_test(tc, worker_threads_are_named_after_the_prefix);
    tcase_add_test(tc, default_thread_names_are_threadpoolexecutor_k_n);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_add_test(tc, submit_after_shutdown_is_eshutdown_and_changes_nothing);
    tcase_add_test(tc, shutdown_wait_returns_after_every_pending_task_is_done);
    tcase_add_test(
        tc, shutdown_without_wait_returns_while_tasks_run_and_they_finish);
    tcase_add_test(tc, shutdown_cancel_futures_cancels_the_pending_ones_only);
    tcase_add_test(tc, free_waits_for_running_and_pending_tasks);
    suite_add_tcase(s, tc);

    tc = tcase_create("initializer");
    tcase_add_test(tc, initializer_runs_once_in_each_worker_before_its_tasks);
    tcase_add_test(tc, failing_initializer_breaks_the_pool);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_test(tc, null_executor_or_task_is_einval);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
