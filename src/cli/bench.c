/*
 * bench.c - racelab bench primitives: librlab against raw pthread, POSIX
 * sem_t and GLib, measured in one process run.
 *
 * Each measurement pairs a subject (a racelab primitive) with a reference
 * doing the same job.  Both run through the same loop macro, so their loops
 * have the same shape: the timed work differs only in the calls under test.
 * Trials alternate subject and reference (ABAB...) so that frequency drift
 * or a noisy neighbour hits both, and the median of the trials is reported.
 * The calls are opaque library calls and a compiler barrier sits between
 * acquire and release, so no loop can be optimised away; every status is
 * or-ed into an error flag that is checked afterwards.
 *
 * GLib is only a reference here: librlab does not depend on it.
 */
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "racelab.h"

#if defined(__SANITIZE_THREAD__)
#define BENCH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BENCH_TSAN 1
#endif
#endif
#ifdef BENCH_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define DEFAULT_TRIALS 7
#define DEFAULT_ITERS 1000000L
#define QUICK_TRIALS 3
#define QUICK_ITERS 20000L
#define MAX_TRIALS 1000
#define CACHE_LINE 64

#define COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

static double now_ns(void)
{
    return cli_now() * 1e9;
}

/* The timed loop of every uncontended measurement: `iters` pairs of
 * ACQ and REL, each an int status expression. */
#define TIMED_PAIRS(iters, ns, err, ACQ, REL)                                  \
    do {                                                                       \
        double t0_ = now_ns();                                                 \
        for (long i_ = 0; i_ < (iters); i_++) {                                \
            (err) |= (ACQ);                                                    \
            COMPILER_BARRIER();                                                \
            (err) |= (REL);                                                    \
        }                                                                      \
        (ns) = (now_ns() - t0_) / (double)(iters);                             \
    } while (0)

/* Allocates a zeroed object on its own cache lines, so no measurement
 * shares a line with another's data. */
static void *line_alloc(size_t size)
{
    size_t rounded = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    void *p = aligned_alloc(CACHE_LINE, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

/* ------------------------------------------------ the primitives' ops --- */

/* GLib's lock calls return void; these give them an int status like the
 * others.  GLib is not built with ThreadSanitizer, so under TSan its
 * hand-offs are annotated (the contended run would otherwise be reported). */
static inline int gm_lock(GMutex *m)
{
    g_mutex_lock(m);
#ifdef BENCH_TSAN
    __tsan_acquire(m);
#endif
    return 0;
}

static inline int gm_unlock(GMutex *m)
{
#ifdef BENCH_TSAN
    __tsan_release(m);
#endif
    g_mutex_unlock(m);
    return 0;
}

static inline int grm_lock(GRecMutex *m)
{
    g_rec_mutex_lock(m);
    return 0;
}

static inline int grm_unlock(GRecMutex *m)
{
    g_rec_mutex_unlock(m);
    return 0;
}

static inline int ev_set(rlab_event *e)
{
    rlab_event_set(e);
    return 0;
}

static inline int ev_clear(rlab_event *e)
{
    rlab_event_clear(e);
    return 0;
}

/* The reference Event: CPython's own, a flag under a mutex and a condition
 * variable; set() broadcasts, clear() only drops the flag. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int flag;
} cond_event;

static inline int ce_set(cond_event *e)
{
    int err = pthread_mutex_lock(&e->mu);
    e->flag = 1;
    err |= pthread_cond_broadcast(&e->cv);
    return err | pthread_mutex_unlock(&e->mu);
}

static inline int ce_clear(cond_event *e)
{
    int err = pthread_mutex_lock(&e->mu);
    e->flag = 0;
    return err | pthread_mutex_unlock(&e->mu);
}

/* ------------------------------------------------ uncontended: subjects --- */

/* Each returns ns per acquire+release pair, or -1 if a call failed. */

static double u_rlab_lock(long iters)
{
    rlab_lock *l = rlab_lock_new();
    if (!l)
        return -1;
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, rlab_lock_acquire(l, RLAB_FOREVER),
                rlab_lock_release(l));
    rlab_lock_free(l);
    return err ? -1 : ns;
}

static double u_rlab_rlock(long iters)
{
    rlab_rlock *r = rlab_rlock_new();
    if (!r)
        return -1;
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, rlab_rlock_acquire(r, RLAB_FOREVER),
                rlab_rlock_release(r));
    rlab_rlock_free(r);
    return err ? -1 : ns;
}

static double u_rlab_semaphore(long iters)
{
    rlab_semaphore *s = rlab_semaphore_new(1);
    if (!s)
        return -1;
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, rlab_semaphore_acquire(s, RLAB_FOREVER),
                rlab_semaphore_release(s, 1));
    rlab_semaphore_free(s);
    return err ? -1 : ns;
}

static double u_rlab_event(long iters)
{
    rlab_event *e = rlab_event_new();
    if (!e)
        return -1;
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, ev_set(e), ev_clear(e));
    rlab_event_free(e);
    return err ? -1 : ns;
}

/* ---------------------------------------------- uncontended: references --- */

static double u_pthread_mutex(long iters)
{
    pthread_mutex_t *m = line_alloc(sizeof *m);
    if (!m || pthread_mutex_init(m, NULL)) {
        free(m);
        return -1;
    }
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, pthread_mutex_lock(m), pthread_mutex_unlock(m));
    pthread_mutex_destroy(m);
    free(m);
    return err ? -1 : ns;
}

static double u_pthread_mutex_recursive(long iters)
{
    pthread_mutex_t *m = line_alloc(sizeof *m);
    pthread_mutexattr_t a;
    if (!m)
        return -1;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    if (rc) {
        free(m);
        return -1;
    }
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, pthread_mutex_lock(m), pthread_mutex_unlock(m));
    pthread_mutex_destroy(m);
    free(m);
    return err ? -1 : ns;
}

static double u_gmutex(long iters)
{
    GMutex *m = line_alloc(sizeof *m);
    if (!m)
        return -1;
    g_mutex_init(m);
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, gm_lock(m), gm_unlock(m));
    g_mutex_clear(m);
    free(m);
    return err ? -1 : ns;
}

static double u_grecmutex(long iters)
{
    GRecMutex *m = line_alloc(sizeof *m);
    if (!m)
        return -1;
    g_rec_mutex_init(m);
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, grm_lock(m), grm_unlock(m));
    g_rec_mutex_clear(m);
    free(m);
    return err ? -1 : ns;
}

static double u_sem_t(long iters)
{
    sem_t *s = line_alloc(sizeof *s);
    if (!s || sem_init(s, 0, 1)) {
        free(s);
        return -1;
    }
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, sem_wait(s), sem_post(s));
    sem_destroy(s);
    free(s);
    return err ? -1 : ns;
}

static double u_cond_event(long iters)
{
    cond_event *e = line_alloc(sizeof *e);
    if (!e)
        return -1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    int err = 0;
    double ns;
    TIMED_PAIRS(iters, ns, err, ce_set(e), ce_clear(e));
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
    return err ? -1 : ns;
}

/* ------------------------------------------------------------ contended --- */

/* Two threads take turns incrementing one counter under the lock; the
 * measure is wall time per increment, from a common start to a common
 * finish (both on barriers, so thread creation and exit are not timed). */
typedef struct {
    _Alignas(CACHE_LINE) volatile long counter;
    _Alignas(CACHE_LINE) void *lock;
    long per_thread;
    pthread_barrier_t start, stop;
} contended;

#define CONTENDED_WORKER(fname, T, ACQ, REL)                                   \
    static void *fname(void *p)                                                \
    {                                                                          \
        contended *c = p;                                                      \
        T *lk = c->lock;                                                       \
        long n = c->per_thread;                                                \
        int err = 0;                                                           \
        pthread_barrier_wait(&c->start);                                       \
        for (long i = 0; i < n; i++) {                                         \
            err |= (ACQ);                                                      \
            c->counter++;                                                      \
            err |= (REL);                                                      \
        }                                                                      \
        pthread_barrier_wait(&c->stop);                                        \
        return err ? p : NULL;                                                 \
    }

CONTENDED_WORKER(w_rlab_lock, rlab_lock, rlab_lock_acquire(lk, RLAB_FOREVER),
                 rlab_lock_release(lk))
CONTENDED_WORKER(w_pthread_mutex, pthread_mutex_t, pthread_mutex_lock(lk),
                 pthread_mutex_unlock(lk))
CONTENDED_WORKER(w_gmutex, GMutex, gm_lock(lk), gm_unlock(lk))

#define CONTENDERS 2

/* Runs `worker` on CONTENDERS threads over `lock`: ns per increment, or
 * -1 if a call failed or the count came out wrong (a broken lock). */
static double run_contended(void *(*worker)(void *), void *lock, long iters)
{
    contended *c = line_alloc(sizeof *c);
    if (!c)
        return -1;
    c->lock = lock;
    c->per_thread = iters / CONTENDERS > 0 ? iters / CONTENDERS : 1;
    pthread_barrier_init(&c->start, NULL, CONTENDERS + 1);
    pthread_barrier_init(&c->stop, NULL, CONTENDERS + 1);
    pthread_t tid[CONTENDERS];
    int started = 0;
    for (; started < CONTENDERS; started++)
        if (pthread_create(&tid[started], NULL, worker, c))
            break;
    double ns = -1;
    if (started == CONTENDERS) {
        pthread_barrier_wait(&c->start);
        double t0 = now_ns();
        pthread_barrier_wait(&c->stop);
        ns = (now_ns() - t0) / (double)(c->per_thread * CONTENDERS);
    } else {
        fprintf(stderr, "racelab: bench: cannot start a thread\n");
        exit(CLI_FAIL); /* the started ones wait on a barrier forever */
    }
    for (int i = 0; i < started; i++) {
        void *res = NULL;
        pthread_join(tid[i], &res);
        if (res)
            ns = -1;
    }
    if (c->counter != c->per_thread * CONTENDERS) {
        fprintf(stderr, "racelab: bench: contended count %ld, want %ld\n",
                c->counter, c->per_thread * CONTENDERS);
        ns = -1;
    }
    pthread_barrier_destroy(&c->start);
    pthread_barrier_destroy(&c->stop);
    free(c);
    return ns;
}

static double c_rlab_lock(long iters)
{
    rlab_lock *l = rlab_lock_new();
    if (!l)
        return -1;
    double ns = run_contended(w_rlab_lock, l, iters);
    rlab_lock_free(l);
    return ns;
}

static double c_pthread_mutex(long iters)
{
    pthread_mutex_t *m = line_alloc(sizeof *m);
    if (!m || pthread_mutex_init(m, NULL)) {
        free(m);
        return -1;
    }
    double ns = run_contended(w_pthread_mutex, m, iters);
    pthread_mutex_destroy(m);
    free(m);
    return ns;
}

static double c_gmutex(long iters)
{
    GMutex *m = line_alloc(sizeof *m);
    if (!m)
        return -1;
    g_mutex_init(m);
    double ns = run_contended(w_gmutex, m, iters);
    g_mutex_clear(m);
    free(m);
    return ns;
}

/* -------------------------------------------------------- the catalogue --- */

typedef double (*bench_fn)(long iters);

typedef struct {
    const char *name, *subject, *reference, *unit;
    bench_fn run_subject, run_reference;
} bench_pair;

static const bench_pair primitives[] = {
    {"lock.uncontended", "rlab_lock", "pthread_mutex", "ns/op", u_rlab_lock,
     u_pthread_mutex},
    {"lock.uncontended", "rlab_lock", "GMutex", "ns/op", u_rlab_lock, u_gmutex},
    {"rlock.uncontended", "rlab_rlock", "GRecMutex", "ns/op", u_rlab_rlock,
     u_grecmutex},
    {"rlock.uncontended", "rlab_rlock", "pthread_mutex_recursive", "ns/op",
     u_rlab_rlock, u_pthread_mutex_recursive},
    {"semaphore.uncontended", "rlab_semaphore", "sem_t", "ns/op",
     u_rlab_semaphore, u_sem_t},
    {"event.set_clear", "rlab_event", "pthread_cond", "ns/op", u_rlab_event,
     u_cond_event},
    {"lock.contended", "rlab_lock", "pthread_mutex", "ns/op", c_rlab_lock,
     c_pthread_mutex},
    {"lock.contended", "rlab_lock", "GMutex", "ns/op", c_rlab_lock, c_gmutex},
};
#define N_PRIMITIVES (sizeof primitives / sizeof primitives[0])

typedef struct {
    double value, reference_value;
} bench_result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Warms both sides up, then alternates subject and reference trials. */
static int measure(const bench_pair *p, int trials, long iters,
                   bench_result *out)
{
    double subj[MAX_TRIALS], ref[MAX_TRIALS];
    long warm = iters / 10 > 0 ? iters / 10 : 1;
    if (p->run_subject(warm) < 0 || p->run_reference(warm) < 0)
        goto failed;
    for (int t = 0; t < trials; t++) {
        subj[t] = p->run_subject(iters);
        ref[t] = p->run_reference(iters);
        if (subj[t] < 0 || ref[t] < 0)
            goto failed;
    }
    out->value = median(subj, trials);
    out->reference_value = median(ref, trials);
    return 0;
failed:
    fprintf(stderr, "racelab: bench: %s (%s vs %s) failed\n", p->name,
            p->subject, p->reference);
    return -1;
}

/* A JSON number; JSON has no inf or nan. */
static void json_number(FILE *out, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(out, fmt, v);
    else
        fputs("null", out);
}

static double speedup(const bench_result *r)
{
    return r->reference_value / r->value;
}

static void print_json(FILE *out, const bench_result *res)
{
    fputs("{\"bench\": \"primitives\", \"results\": [", out);
    for (size_t i = 0; i < N_PRIMITIVES; i++) {
        const bench_pair *p = &primitives[i];
        fprintf(out,
                "%s\n  {\"name\": \"%s\", \"subject\": \"%s\", "
                "\"reference\": \"%s\", \"value\": ",
                i ? "," : "", p->name, p->subject, p->reference);
        json_number(out, "%.3f", res[i].value);
        fputs(", \"reference_value\": ", out);
        json_number(out, "%.3f", res[i].reference_value);
        fprintf(out, ", \"unit\": \"%s\", \"speedup\": ", p->unit);
        json_number(out, "%.3f", speedup(&res[i]));
        fputs("}", out);
    }
    fputs("]}\n", out);
}

static void print_table(FILE *out, const bench_result *res, int trials,
                        long iters)
{
    fprintf(out,
            "racelab bench primitives: median of %d trials (subject and "
            "reference\ninterleaved), %ld iterations per trial, %ld CPUs, "
            "process multi-threaded\n\n",
            trials, iters, sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(out, "%-22s %-15s %-24s %10s %10s  %-6s %8s\n", "name", "subject",
            "reference", "subject", "reference", "unit", "speedup");
    for (size_t i = 0; i < N_PRIMITIVES; i++) {
        const bench_pair *p = &primitives[i];
        fprintf(out, "%-22s %-15s %-24s %10.2f %10.2f  %-6s %7.2fx\n", p->name,
                p->subject, p->reference, res[i].value, res[i].reference_value,
                p->unit, speedup(&res[i]));
    }
    fputs("\nspeedup = reference / subject: above 1, racelab is faster.\n",
          out);
}

/* Parses a positive count for option `opt`; 0 on success. */
static int parse_count(const char *opt, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < 1 || v > max)
        return cli_usage_error("%s wants a whole number from 1 to %ld%s%s%s",
                               opt, max, s ? ", not '" : "", s ? s : "",
                               s ? "'" : "");
    *out = v;
    return 0;
}

static void *idle(void *p)
{
    return p;
}

/* glibc runs its mutexes without atomic instructions while a process has
 * never had a second thread (__libc_single_threaded); locks matter only in
 * threaded programs, so every measurement runs after one thread existed. */
static int go_multithreaded(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle, NULL))
        return -1;
    return pthread_join(t, NULL) ? -1 : 0;
}

static int bench_primitives(int argc, char **argv)
{
    bool json = false, quick = false;
    long trials = 0, iters = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--quick")) {
            quick = true;
        } else if (len == 8 && !strncmp(a, "--trials", len)) {
            if (parse_count("--trials", val, MAX_TRIALS, &trials))
                return CLI_USAGE;
            i += !eq;
        } else if (len == 7 && !strncmp(a, "--iters", len)) {
            if (parse_count("--iters", val, 1000000000L, &iters))
                return CLI_USAGE;
            i += !eq;
        } else {
            return cli_usage_error("bench primitives: unknown option '%s'", a);
        }
    }
    if (!trials)
        trials = quick ? QUICK_TRIALS : DEFAULT_TRIALS;
    if (!iters)
        iters = quick ? QUICK_ITERS : DEFAULT_ITERS;

    if (go_multithreaded()) {
        fprintf(stderr, "racelab: bench: cannot start a thread\n");
        return CLI_FAIL;
    }
    bench_result res[N_PRIMITIVES];
    for (size_t i = 0; i < N_PRIMITIVES; i++)
        if (measure(&primitives[i], (int)trials, iters, &res[i]))
            return CLI_FAIL;
    if (json)
        print_json(stdout, res);
    else
        print_table(stdout, res, (int)trials, iters);
    return fflush(stdout) ? CLI_FAIL : CLI_OK;
}

int cli_bench(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("bench: which benchmark? (primitives)");
    if (!strcmp(argv[1], "primitives"))
        return bench_primitives(argc - 1, argv + 1);
    return cli_usage_error("bench: unknown benchmark '%s' (known: primitives)",
                           argv[1]);
}
