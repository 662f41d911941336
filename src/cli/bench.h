/*
 * bench.h - the measurement harness every `racelab bench NAME` shares
 * (bench_harness.c), and the suites built on it: primitives (bench.c),
 * queue (bench_queue.c), executor (bench_executor.c) and stress
 * (bench_stress.c).
 *
 * A suite is a table of pairs: a subject (a racelab type) and a reference
 * doing the same job, each a function that runs one trial and returns its
 * figure (ns per operation), or -1 if a call failed or a check on the
 * outcome did not hold.  The harness parses the options, warms both sides
 * up, alternates subject and reference trials (ABAB...) so that frequency
 * drift or a noisy neighbour hits both, takes the median of each side and
 * prints the table or the JSON of API.md.
 *
 * GLib is only a reference here: librlab does not depend on it.
 */
#ifndef RLAB_CLI_BENCH_H
#define RLAB_CLI_BENCH_H

#include <glib.h>
#include <stddef.h>

#if defined(__SANITIZE_THREAD__)
#define BENCH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BENCH_TSAN 1
#endif
#endif

/* GLib is not built with ThreadSanitizer, so TSan cannot see the
 * happens-before edges of its locks and queues; the benchmarks annotate
 * each GLib hand-off with these (no-ops in other builds). */
#ifdef BENCH_TSAN
#include <sanitizer/tsan_interface.h>
#define BENCH_TSAN_RELEASE(addr) __tsan_release(addr)
#define BENCH_TSAN_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define BENCH_TSAN_RELEASE(addr) ((void)(addr))
#define BENCH_TSAN_ACQUIRE(addr) ((void)(addr))
#endif

/* GMutex with an int status like the other lock calls, its hand-offs
 * annotated for TSan. */
static inline int gm_lock(GMutex *m)
{
    g_mutex_lock(m);
    BENCH_TSAN_ACQUIRE(m);
    return 0;
}

static inline int gm_unlock(GMutex *m)
{
    BENCH_TSAN_RELEASE(m);
    g_mutex_unlock(m);
    return 0;
}

#define CACHE_LINE 64
/* Seconds a benchmark thread or result may take before the run is
 * declared stuck (a lost item, a lost wake-up) and fails. */
#define BENCH_GUARD 120.0

#define COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

/* One trial of `iters` operations: ns per operation, or -1 on failure
 * (after saying why on stderr, for a failed check). */
typedef double (*bench_fn)(long iters);

/* fn_N(iters): fn(iters, N), a bench_fn for one thread count of a
 * double fn(long iters, int threads). */
#define BENCH_VARIANT(fn, n)                                                   \
    static double fn##_##n(long iters)                                         \
    {                                                                          \
        return fn(iters, n);                                                   \
    }

/* A unit ending in "/s" (tasks/s) is a rate, higher is better: its
 * speedup is subject / reference; for times it is reference / subject. */
typedef struct {
    const char *name, *subject, *reference, *unit;
    bench_fn run_subject, run_reference;
} bench_pair;

typedef struct {
    const char *name;      /* racelab bench NAME, and "bench" in the JSON */
    const char *per_trial; /* what --iters counts: "iterations", "items" */
    const char *note;      /* printed under the table, or NULL */
    const bench_pair *pairs;
    size_t n_pairs;
    long default_iters, quick_iters;
} bench_suite;

/* Defines the suite `var` over the array `pairs`. */
#define BENCH_SUITE(var, name_, per_trial_, note_, pairs_, iters, quick)       \
    const bench_suite var = {                                                  \
        name_, per_trial_, note_, pairs_, sizeof pairs_ / sizeof pairs_[0],    \
        iters, quick}

extern const bench_suite bench_primitives_suite;
extern const bench_suite bench_queue_suite;
extern const bench_suite bench_executor_suite;
extern const bench_suite bench_stress_suite;
extern const bench_suite bench_process_pool_suite;

/* Registers the process-pool benchmark's tasks: main() calls it before
 * rlab_mp_main().  0 or rlab_task_register's code. */
int bench_register_tasks(void);

/* The median of v[0..n-1] (sorts v), n >= 1. */
double bench_median(double *v, int n);

/* Nanoseconds on CLOCK_MONOTONIC. */
double bench_now_ns(void);

/* A zeroed object on its own cache lines, so no measurement shares a line
 * with another's data; free() it.  NULL if out of memory. */
void *bench_line_alloc(size_t size);

/* A thread's work in a bench_run_threads team: fn(arg) returns NULL on
 * success, anything else marks the trial failed. */
typedef struct {
    void *(*fn)(void *);
    void *arg;
} bench_job;

/* Runs each job on its own thread, all released together from a barrier,
 * and joins them: the wall time in ns from the first job's start to the
 * last one's end (thread creation and exit are not timed), or -1 if a job
 * failed.  A team still running after BENCH_GUARD seconds, or one that
 * cannot be started, ends the process with status 1 (`what` names it). */
double bench_run_threads(const bench_job *jobs, int n, const char *what);

/* 0 if `sum` is 1 + 2 + ... + n, the sum of the items 1..n handed out;
 * otherwise says on stderr that `what` lost or repeated some, and -1. */
int bench_check_sum(const char *what, unsigned long long sum, long n);

#endif
