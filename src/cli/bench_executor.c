/*
 * bench_executor.c - racelab bench executor: rlab's ThreadPoolExecutor
 * against GLib's GThreadPool, with 2 and with 4 workers, in one process run
 * through the shared harness.
 *
 * A trial submits M trivial tasks with the arguments 1..M and collects
 * every result; the figure is wall time per task from the first submit to
 * the last result.  Both pools are made before the timed region and shut
 * down after it, once per trial.  On the rlab side each task returns its
 * argument and the caller takes every future's result; on the GLib side
 * each task stores its argument and counts itself done on an atomic, and
 * the last one wakes the caller through a GMutex and a GCond.  Either way
 * the run fails unless the results sum to 1 + ... + M.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "racelab.h"

/* ------------------------------------------------------------ racelab --- */

static int identity_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static double e_rlab(long tasks, int workers)
{
    rlab_future **fs = malloc(sizeof *fs * (size_t)tasks);
    rlab_executor *ex = rlab_thread_pool_new(workers, "bench", NULL, NULL);
    if (!fs || !ex) {
        free(fs);
        rlab_executor_free(ex);
        return -1;
    }
    int err = 0;
    long submitted = 0;
    unsigned long long sum = 0;
    double t0 = bench_now_ns();
    for (; submitted < tasks && !err; submitted++)
        err = rlab_executor_submit(ex, identity_task,
                                   (void *)(uintptr_t)(submitted + 1),
                                   &fs[submitted]);
    submitted -= err != 0;
    for (long i = 0; i < submitted; i++) {
        void *r = NULL;
        if (!err)
            err = rlab_future_result(fs[i], BENCH_GUARD, &r);
        sum += (uintptr_t)r;
        rlab_future_free(fs[i]);
    }
    double ns = (bench_now_ns() - t0) / (double)tasks;
    free(fs);
    if (err) {
        /* A pool that lost a task may never finish shutting down: leave it
         * to the exit, which this failed run is heading for. */
        rlab_executor_shutdown(ex, false, true);
        fprintf(stderr, "racelab: bench: executor: a task failed: %s\n",
                rlab_strerror(err));
        return -1;
    }
    rlab_executor_free(ex);
    return bench_check_sum("executor", sum, tasks) ? -1 : ns;
}

/* --------------------------------------------------------------- GLib --- */

typedef struct {
    _Alignas(CACHE_LINE) atomic_long done; /* tasks finished */
    _Alignas(CACHE_LINE) long tasks;
    uintptr_t *results; /* results[i]: task i+1's result */
    GMutex mu;
    GCond cv;
    bool finished; /* under mu */
} gpool_run;

static void gpool_task(gpointer data, gpointer user)
{
    gpool_run *r = user;
    uintptr_t v = (uintptr_t)data;
    BENCH_TSAN_ACQUIRE(r); /* the push: GLib's queue is not instrumented */
    long tasks = r->tasks;
    r->results[v - 1] = v;
    if (atomic_fetch_add(&r->done, 1) + 1 == tasks) {
        gm_lock(&r->mu);
        r->finished = true;
        g_cond_signal(&r->cv);
        gm_unlock(&r->mu);
    }
    /* g_thread_pool_free waits for this task before the caller frees r. */
    BENCH_TSAN_RELEASE(&r->results);
}

/* Waits until the last task signalled: true, or false at `deadline`. */
static bool gpool_wait(gpool_run *r, gint64 deadline)
{
    bool ok = true;
    gm_lock(&r->mu);
    while (!r->finished && ok) {
        BENCH_TSAN_RELEASE(&r->mu);
        ok = g_cond_wait_until(&r->cv, &r->mu, deadline);
        BENCH_TSAN_ACQUIRE(&r->mu);
    }
    ok = r->finished;
    gm_unlock(&r->mu);
    return ok;
}

static double e_gthreadpool(long tasks, int workers)
{
    gpool_run *r = bench_line_alloc(sizeof *r);
    uintptr_t *results = calloc((size_t)tasks, sizeof *results);
    GThreadPool *pool = NULL;
    double ns = -1;
    if (!r || !results)
        goto out;
    r->tasks = tasks;
    r->results = results;
    g_mutex_init(&r->mu);
    g_cond_init(&r->cv);
    pool = g_thread_pool_new(gpool_task, r, workers, FALSE, NULL);
    if (!pool)
        goto out;
    double t0 = bench_now_ns();
    bool ok = true;
    for (long i = 0; i < tasks && ok; i++) {
        BENCH_TSAN_RELEASE(r);
        ok = g_thread_pool_push(pool, (gpointer)(uintptr_t)(i + 1), NULL);
    }
    ok = ok && gpool_wait(r, g_get_monotonic_time() +
                                 (gint64)BENCH_GUARD * G_TIME_SPAN_SECOND);
    unsigned long long sum = 0;
    for (long i = 0; i < tasks; i++)
        sum += results[i];
    ns = (bench_now_ns() - t0) / (double)tasks;
    g_thread_pool_free(pool, FALSE, TRUE); /* after every pushed task */
    BENCH_TSAN_ACQUIRE(&r->results);
    if (!ok) {
        fprintf(stderr, "racelab: bench: GThreadPool did not finish\n");
        ns = -1;
    } else if (bench_check_sum("GThreadPool", sum, tasks)) {
        ns = -1;
    }
out:
    if (r) {
        g_mutex_clear(&r->mu);
        g_cond_clear(&r->cv);
    }
    free(results);
    free(r);
    return ns;
}

/* -------------------------------------------------------- the catalogue --- */

BENCH_VARIANT(e_rlab, 2)
BENCH_VARIANT(e_rlab, 4)
BENCH_VARIANT(e_gthreadpool, 2)
BENCH_VARIANT(e_gthreadpool, 4)

static const bench_pair executors[] = {
    {"executor.2workers", "rlab_thread_pool", "GThreadPool", "ns/op", e_rlab_2,
     e_gthreadpool_2},
    {"executor.4workers", "rlab_thread_pool", "GThreadPool", "ns/op", e_rlab_4,
     e_gthreadpool_4},
};

BENCH_SUITE(bench_executor_suite, "executor", "tasks",
            "value = wall time per task, from the first submit to the last "
            "result;\nthe pools start before and shut down after the timed "
            "region.",
            executors, 100000L, 2000L);
