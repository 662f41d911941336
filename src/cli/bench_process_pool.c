/*
 * bench_process_pool.c - racelab bench process-pool: the process pools
 * against the thread executor, and the source material's CPU-bound
 * factorization with two processes against the sequential loop.
 *
 * Throughput entries (tasks/s, higher is better): M trivial tasks, each
 * returning its argument (a long), through a 2-worker ProcessPoolExecutor
 * one submit at a time (process_executor.submit), through its map with
 * chunksize 100 (process_executor.map100) and through Pool.map with
 * Python's default chunksize (pool.map); the reference does the same with
 * a 2-worker ThreadPoolExecutor.  Every run checks that the results sum
 * to 1 + ... + M.  Pools start before the timed region.
 *
 * pool.startup: ms from rlab_pool_new(2) to its first result, then the
 * pool's shutdown, against the same for a thread pool.
 *
 * factorize.processes2: ms for the 16 numbers of the factorize workload
 * ([2139079, 1214759, 1516637, 1852285] * 4) through a 2-worker process
 * pool (made before the timed region), against running them in order on
 * one thread; both are checked (the factors multiply back and are prime).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "racelab.h"
#include "workloads.h"

#define WORKERS 2

/* ------------------------------------------------------------- tasks --- */

/* The process side: the argument's long, back as bytes. */
static int echo_long(void *arg, void **result)
{
    rlab_bytes *b = arg;
    *result = rlab_bytes_new(b->data, b->len);
    return *result ? 0 : ENOMEM;
}

/* The thread side: the argument itself. */
static int identity(void *arg, void **result)
{
    *result = arg;
    return 0;
}

int bench_register_tasks(void)
{
    int rc = rlab_task_register("bench.echo_long", echo_long);
    return rc ? rc : rlab_wl_register_tasks();
}

static long long_of(const rlab_bytes *b)
{
    long v = 0;
    if (b && b->len == sizeof v)
        memcpy(&v, b->data, sizeof v);
    return v;
}

/* args[i] = i + 1 as bytes; NULL on ENOMEM. */
static rlab_bytes **make_args(long n)
{
    rlab_bytes **a = calloc((size_t)n, sizeof *a);
    for (long i = 0; a && i < n; i++) {
        long v = i + 1;
        if (!(a[i] = rlab_bytes_new(&v, sizeof v))) {
            for (long j = 0; j < i; j++)
                rlab_bytes_free(a[j]);
            free(a);
            return NULL;
        }
    }
    return a;
}

static void free_args(rlab_bytes **a, long n)
{
    for (long i = 0; a && i < n; i++)
        rlab_bytes_free(a[i]);
    free(a);
}

static double per_second(double t0, long n)
{
    return (double)n / ((bench_now_ns() - t0) / 1e9);
}

static rlab_executor *process_pool(void)
{
    rlab_executor *ex = rlab_process_pool_new(WORKERS, NULL);
    if (!ex)
        fprintf(stderr, "racelab: bench: process pool: %s\n",
                rlab_strerror(errno));
    return ex;
}

/* Sums results (bytes or, for the thread pool, the pointers themselves)
 * and frees the bytes. */
static double finish(const char *what, double t0, long n, int rc,
                     void **res, bool bytes, rlab_executor *ex)
{
    double rate = per_second(t0, n);
    unsigned long long sum = 0;
    for (long i = 0; i < n; i++) {
        sum += bytes ? (unsigned long long)long_of(res[i]) : (uintptr_t)res[i];
        if (bytes)
            rlab_bytes_free(res[i]);
    }
    rlab_executor_free(ex);
    if (rc) {
        fprintf(stderr, "racelab: bench: %s: %s\n", what, rlab_strerror(rc));
        return -1;
    }
    return bench_check_sum(what, sum, n) ? -1 : rate;
}

/* ---------------------------------------------------- one at a time --- */

static double submit_each(rlab_executor *ex, long n, bool bytes,
                          const char *what)
{
    rlab_bytes **args = bytes ? make_args(n) : NULL;
    rlab_future **fs = calloc((size_t)n, sizeof *fs);
    void **res = calloc((size_t)n, sizeof *res);
    int rc = ex && fs && res && (args || !bytes) ? 0 : ENOMEM;
    double t0 = bench_now_ns();
    long submitted = 0;
    for (; submitted < n && rc == 0; submitted++)
        rc = rlab_executor_submit(
            ex, bytes ? echo_long : identity,
            bytes ? (void *)args[submitted] : (void *)(uintptr_t)(submitted + 1),
            &fs[submitted]);
    submitted -= rc != 0;
    for (long i = 0; i < submitted; i++) {
        void *r = NULL;
        int code = rlab_future_result(fs[i], BENCH_GUARD, &r);
        rc = rc ? rc : code;
        /* a process pool's result belongs to its future: copy it out */
        res[i] = bytes && code == 0 ? rlab_bytes_new(((rlab_bytes *)r)->data,
                                                     ((rlab_bytes *)r)->len)
                                    : r;
        rlab_future_free(fs[i]);
    }
    double v = finish(what, t0, n, rc, res, bytes, ex);
    free(fs);
    free(res);
    free_args(args, n);
    return v;
}

static double s_submit(long n)
{
    return submit_each(process_pool(), n, true, "process_executor.submit");
}

static double r_submit(long n)
{
    return submit_each(rlab_thread_pool_new(WORKERS, "bench", NULL, NULL), n,
                       false, "thread_executor.submit");
}

/* --------------------------------------------------------------- map --- */

static double map_chunked(rlab_executor *ex, long n, size_t chunk, bool bytes,
                          const char *what)
{
    rlab_bytes **args = bytes ? make_args(n) : NULL;
    void **targs = calloc((size_t)n, sizeof *targs);
    void **res = calloc((size_t)n, sizeof *res);
    int rc = ex && targs && res && (args || !bytes) ? 0 : ENOMEM;
    for (long i = 0; rc == 0 && i < n; i++)
        targs[i] = bytes ? (void *)args[i] : (void *)(uintptr_t)(i + 1);
    double t0 = bench_now_ns();
    if (rc == 0)
        rc = rlab_executor_map_chunked(ex, bytes ? echo_long : identity, targs,
                                       (size_t)n, chunk, res, NULL,
                                       BENCH_GUARD);
    double v = finish(what, t0, n, rc, res, bytes, ex);
    free(targs);
    free(res);
    free_args(args, n);
    return v;
}

static double s_map100(long n)
{
    return map_chunked(process_pool(), n, 100, true, "process_executor.map100");
}

static double r_map100(long n)
{
    return map_chunked(rlab_thread_pool_new(WORKERS, "bench", NULL, NULL), n,
                       100, false, "thread_executor.map100");
}

/* Python's Pool.map chunksize for n items on WORKERS processes. */
static size_t pool_chunksize(long n)
{
    size_t per = 4 * WORKERS;
    size_t c = (size_t)n / per + ((size_t)n % per != 0);
    return c ? c : 1;
}

static double s_pool_map(long n)
{
    rlab_pool *p = rlab_pool_new(WORKERS, NULL);
    rlab_bytes **args = make_args(n);
    rlab_bytes **res = calloc((size_t)n, sizeof *res);
    int rc = p && args && res ? 0 : ENOMEM;
    double t0 = bench_now_ns();
    if (rc == 0)
        rc = rlab_pool_map(p, echo_long, args, (size_t)n, 0, res, NULL);
    double rate = per_second(t0, n);
    unsigned long long sum = 0;
    for (long i = 0; res && i < n; i++) {
        sum += (unsigned long long)long_of(res[i]);
        rlab_bytes_free(res[i]);
    }
    rlab_pool_free(p);
    free(res);
    free_args(args, n);
    if (rc) {
        fprintf(stderr, "racelab: bench: pool.map: %s\n", rlab_strerror(rc));
        return -1;
    }
    return bench_check_sum("pool.map", sum, n) ? -1 : rate;
}

static double r_pool_map(long n)
{
    return map_chunked(rlab_thread_pool_new(WORKERS, "bench", NULL, NULL), n,
                       pool_chunksize(n), false, "thread_executor.map");
}

/* ----------------------------------------------------------- startup --- */

static double s_startup(long n)
{
    (void)n;
    double t0 = bench_now_ns();
    rlab_pool *p = rlab_pool_new(WORKERS, NULL);
    long v = 1;
    rlab_bytes *r = NULL;
    int rc = p ? rlab_pool_apply(p, echo_long, &v, sizeof v, &r) : errno;
    if (p) {
        rlab_pool_close(p);
        rlab_pool_join(p, BENCH_GUARD);
    }
    rlab_pool_free(p);
    double ms = (bench_now_ns() - t0) / 1e6;
    bool ok = rc == 0 && long_of(r) == 1;
    rlab_bytes_free(r);
    if (!ok)
        fprintf(stderr, "racelab: bench: pool.startup: %s\n",
                rlab_strerror(rc));
    return ok ? ms : -1;
}

static double r_startup(long n)
{
    (void)n;
    double t0 = bench_now_ns();
    rlab_executor *ex = rlab_thread_pool_new(WORKERS, "bench", NULL, NULL);
    rlab_future *f = NULL;
    void *r = NULL;
    int rc = ex ? rlab_executor_submit(ex, identity, (void *)1, &f) : ENOMEM;
    if (rc == 0)
        rc = rlab_future_result(f, BENCH_GUARD, &r);
    rlab_future_free(f);
    rlab_executor_free(ex);
    double ms = (bench_now_ns() - t0) / 1e6;
    return rc == 0 && r == (void *)1 ? ms : -1;
}

/* --------------------------------------------------------- factorize --- */

static rlab_wl_job *factorize_job(void)
{
    rlab_wl_job *job = rlab_wl_job_new(RLAB_WL_FACTORIZE, NULL);
    if (!job)
        fprintf(stderr, "racelab: bench: factorize: %s\n",
                rlab_strerror(errno));
    return job;
}

static double checked_ms(rlab_wl_job *job, double t0, int rc)
{
    double ms = (bench_now_ns() - t0) / 1e6;
    if (rc == 0)
        rc = rlab_wl_job_check(job, NULL);
    if (rc)
        fprintf(stderr, "racelab: bench: factorize: %s\n", rlab_strerror(rc));
    rlab_wl_job_free(job);
    return rc ? -1 : ms;
}

static double s_factorize(long n)
{
    (void)n;
    rlab_wl_job *job = factorize_job();
    rlab_executor *ex = job ? process_pool() : NULL;
    size_t units = job ? rlab_wl_job_units(job) : 0;
    void **args = calloc(units ? units : 1, sizeof *args);
    void **res = calloc(units ? units : 1, sizeof *res);
    int *codes = calloc(units ? units : 1, sizeof *codes);
    int rc = ex && args && res && codes ? 0 : ENOMEM;
    for (size_t i = 0; rc == 0 && i < units; i++)
        if (!(args[i] = rlab_wl_unit_pack(job, i)))
            rc = ENOMEM;
    double t0 = bench_now_ns();
    if (rc == 0)
        rc = rlab_executor_map(ex, rlab_wl_bytes_task, args, units, res, codes,
                               BENCH_GUARD);
    for (size_t i = 0; rc == 0 && i < units; i++)
        rc = codes[i] ? codes[i] : rlab_wl_job_store(job, i, res[i]);
    double ms = job ? checked_ms(job, t0, rc) : -1;
    for (size_t i = 0; i < units; i++) {
        rlab_bytes_free(args[i]);
        rlab_bytes_free(res[i]);
    }
    rlab_executor_free(ex);
    free(args);
    free(res);
    free(codes);
    return ms;
}

static double r_factorize(long n)
{
    (void)n;
    rlab_wl_job *job = factorize_job();
    if (!job)
        return -1;
    double t0 = bench_now_ns();
    return checked_ms(job, t0, rlab_wl_job_run(job));
}

/* -------------------------------------------------------- the catalogue --- */

static const bench_pair pairs[] = {
    {"process_executor.submit", "rlab_process_pool", "rlab_thread_pool",
     "tasks/s", s_submit, r_submit},
    {"process_executor.map100", "rlab_process_pool", "rlab_thread_pool",
     "tasks/s", s_map100, r_map100},
    {"pool.map", "rlab_pool", "rlab_thread_pool", "tasks/s", s_pool_map,
     r_pool_map},
    {"pool.startup", "rlab_pool", "rlab_thread_pool", "ms", s_startup,
     r_startup},
    {"factorize.processes2", "rlab_process_pool", "sequential", "ms",
     s_factorize, r_factorize},
};

BENCH_SUITE(bench_process_pool_suite, "process-pool", "tasks",
            "2 workers each side; the process pools use the default start "
            "method (forkserver).\ntasks/s: trivial tasks from the first "
            "submit to the last result, pools made before;\npool.startup: "
            "new pool to its first result and shutdown; factorize: the 16 "
            "numbers,\npool made before (--iters does not apply to these "
            "two).",
            pairs, 20000L, 2000L);
