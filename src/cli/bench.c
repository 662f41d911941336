/*
 * bench.c - racelab bench primitives: librlab's threading primitives
 * against raw pthread, POSIX sem_t and GLib, measured in one process run
 * through the shared harness (bench_harness.c).
 *
 * Subject and reference run through the same loop macro, so their loops
 * have the same shape: the timed work differs only in the calls under test.
 * The calls are opaque library calls and a compiler barrier sits between
 * acquire and release, so no loop can be optimised away; every status is
 * or-ed into an error flag that is checked afterwards.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "racelab.h"

/* The timed loop of every uncontended measurement: `iters` pairs of
 * ACQ and REL, each an int status expression. */
#define TIMED_PAIRS(iters, ns, err, ACQ, REL)                                  \
    do {                                                                       \
        double t0_ = bench_now_ns();                                           \
        for (long i_ = 0; i_ < (iters); i_++) {                                \
            (err) |= (ACQ);                                                    \
            COMPILER_BARRIER();                                                \
            (err) |= (REL);                                                    \
        }                                                                      \
        (ns) = (bench_now_ns() - t0_) / (double)(iters);                       \
    } while (0)

/* ------------------------------------------------ the primitives' ops --- */

/* GLib's lock calls return void; these give them an int status like the
 * others. */
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
    pthread_mutex_t *m = bench_line_alloc(sizeof *m);
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
    pthread_mutex_t *m = bench_line_alloc(sizeof *m);
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
    GMutex *m = bench_line_alloc(sizeof *m);
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
    GRecMutex *m = bench_line_alloc(sizeof *m);
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
    sem_t *s = bench_line_alloc(sizeof *s);
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
    cond_event *e = bench_line_alloc(sizeof *e);
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
 * measure is wall time per increment, from the first thread's start to the
 * last one's finish (thread creation and exit are not timed). */
typedef struct {
    _Alignas(CACHE_LINE) volatile long counter;
    _Alignas(CACHE_LINE) void *lock;
    long per_thread;
} contended;

#define CONTENDED_WORKER(fname, T, ACQ, REL)                                   \
    static void *fname(void *p)                                                \
    {                                                                          \
        contended *c = p;                                                      \
        T *lk = c->lock;                                                       \
        long n = c->per_thread;                                                \
        int err = 0;                                                           \
        for (long i = 0; i < n; i++) {                                         \
            err |= (ACQ);                                                      \
            c->counter++;                                                      \
            err |= (REL);                                                      \
        }                                                                      \
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
    contended *c = bench_line_alloc(sizeof *c);
    if (!c)
        return -1;
    c->lock = lock;
    c->per_thread = iters / CONTENDERS > 0 ? iters / CONTENDERS : 1;
    bench_job jobs[CONTENDERS];
    for (int i = 0; i < CONTENDERS; i++)
        jobs[i] = (bench_job){worker, c};
    double ns = bench_run_threads(jobs, CONTENDERS, "lock.contended");
    if (ns >= 0)
        ns /= (double)(c->per_thread * CONTENDERS);
    if (c->counter != c->per_thread * CONTENDERS) {
        fprintf(stderr, "racelab: bench: contended count %ld, want %ld\n",
                c->counter, c->per_thread * CONTENDERS);
        ns = -1;
    }
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
    pthread_mutex_t *m = bench_line_alloc(sizeof *m);
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
    GMutex *m = bench_line_alloc(sizeof *m);
    if (!m)
        return -1;
    g_mutex_init(m);
    double ns = run_contended(w_gmutex, m, iters);
    g_mutex_clear(m);
    free(m);
    return ns;
}

/* -------------------------------------------------------- the catalogue --- */

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

BENCH_SUITE(bench_primitives_suite, "primitives", "iterations", NULL,
            primitives, 1000000L, 20000L);
