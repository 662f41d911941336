/*
 * gil.c - a simulated GIL, after CPython's Python/ceval_gil.c.
 *
 * The GIL is a holder word guarded by a mutex, with two condition
 * variables: `cond` is signalled when the GIL is dropped, `switch_cond` when
 * it is taken (or when a waiter gives up).  A waiter sleeps on `cond` for
 * one switch interval at a time; when an interval passes with the GIL held
 * and no switch in between, it sets the drop request, the eval breaker that
 * the holder polls at its check points with one relaxed load.  A holder
 * that drops on request then sleeps on `switch_cond` until the last holder
 * is somebody else (FORCE_SWITCHING), so the waiter really runs before the
 * dropper can take the GIL back.  CPython keeps a second mutex for the
 * switch; one mutex does here, and it lets a waiter that times out (racelab
 * waits have deadlines, CPython's take_gil has none) release a dropper that
 * would otherwise wait for a switch that never comes.
 *
 * Everything but the holder word, the drop request and the placement is
 * touched under the mutex only.  The holder word is atomic because its
 * owner reads it without the mutex (rlab_gil_held, the check slow path): it
 * is stable for the thread that holds the GIL, and no other thread's view
 * of it is trusted.  The pthread mutex gives ThreadSanitizer the
 * happens-before edge of every hand-off, so data guarded by the GIL is
 * race-free in TSan's eyes, as it is in the model.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"
#include "racelab/gil.h"
#include "racelab/threading.h"

struct rlab_gil {
    pthread_mutex_t mutex;
    pthread_cond_t cond;        /* the GIL was dropped */
    pthread_cond_t switch_cond; /* taken, or the waiters changed */
    atomic_uintptr_t holder;    /* the holder's identity, 0 when free */
    atomic_int drop_request;    /* gil_drop_request: the eval breaker */
    atomic_int placement;       /* rlab_gil_placement */
    uintptr_t last_holder;      /* mutex */
    double interval;            /* mutex; seconds */
    rlab_gil_stats st;          /* mutex; st.waiters counts the waiters */
};

/* CPython waits at least one microsecond per interval. */
#define MIN_WAIT 1e-6
#define MAX_INTERVAL 1e9

static bool interval_ok(double s)
{
    return s > 0 && s <= MAX_INTERVAL; /* false for NaN */
}

rlab_gil *rlab_gil_new(double switch_interval)
{
    if (!interval_ok(switch_interval)) {
        errno = EINVAL;
        return NULL;
    }
    rlab_gil *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (rc == 0 && (rc = pthread_mutex_init(&g->mutex, NULL)) == 0) {
            if ((rc = pthread_cond_init(&g->cond, &ca)) == 0) {
                if ((rc = pthread_cond_init(&g->switch_cond, &ca)) != 0)
                    pthread_cond_destroy(&g->cond);
            }
            if (rc)
                pthread_mutex_destroy(&g->mutex);
        }
        pthread_condattr_destroy(&ca);
    }
    if (rc) {
        free(g);
        errno = rc;
        return NULL;
    }
    atomic_init(&g->holder, 0);
    atomic_init(&g->drop_request, 0);
    atomic_init(&g->placement, RLAB_GIL_CHECK_BACKEDGE_AND_CALL);
    g->interval = switch_interval;
    return g;
}

void rlab_gil_free(rlab_gil *g)
{
    if (!g)
        return;
    pthread_cond_destroy(&g->switch_cond);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mutex);
    free(g);
}

int rlab_gil_set_switch_interval(rlab_gil *g, double seconds)
{
    if (!g || !interval_ok(seconds))
        return EINVAL;
    pthread_mutex_lock(&g->mutex);
    g->interval = seconds;
    pthread_mutex_unlock(&g->mutex);
    return 0;
}

double rlab_gil_switch_interval(rlab_gil *g)
{
    if (!g)
        return 0;
    pthread_mutex_lock(&g->mutex);
    double s = g->interval;
    pthread_mutex_unlock(&g->mutex);
    return s;
}

int rlab_gil_set_check_placement(rlab_gil *g, rlab_gil_placement p)
{
    if (!g || (p != RLAB_GIL_CHECK_BACKEDGE_AND_CALL &&
               p != RLAB_GIL_CHECK_EVERY_INSTRUCTION))
        return EINVAL;
    atomic_store_explicit(&g->placement, (int)p, memory_order_relaxed);
    return 0;
}

rlab_gil_placement rlab_gil_check_placement(rlab_gil *g)
{
    if (!g)
        return RLAB_GIL_CHECK_BACKEDGE_AND_CALL;
    return (rlab_gil_placement)atomic_load_explicit(&g->placement,
                                                    memory_order_relaxed);
}

/* ----------------------------------------------------- take and drop --- */

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec ||
           (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The end of one switch interval from now. */
static struct timespec interval_end(double interval)
{
    if (interval < MIN_WAIT)
        interval = MIN_WAIT;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double whole = floor(interval);
    long nsec = t.tv_nsec + (long)((interval - whole) * 1e9);
    t.tv_sec += (time_t)whole + nsec / 1000000000L;
    t.tv_nsec = nsec % 1000000000L;
    return t;
}

/* take_gil, with g->mutex held.  0, EDEADLK, EAGAIN or ETIMEDOUT; on 0,
 * *switched tells whether another thread held the GIL last. */
static int take_locked(rlab_gil *g, uintptr_t me, const rlab_deadline *d,
                       bool *switched)
{
    uintptr_t h = atomic_load_explicit(&g->holder, memory_order_relaxed);
    if (h == me)
        return EDEADLK;
    if (h != 0) {
        if (d->kind == RLAB_WAIT_TRY)
            return EAGAIN;
        g->st.waiters++;
        pthread_cond_broadcast(&g->switch_cond);
        while (atomic_load_explicit(&g->holder, memory_order_relaxed) != 0) {
            unsigned long seen = g->st.switches;
            struct timespec at = interval_end(g->interval);
            bool capped =
                d->kind == RLAB_WAIT_DEADLINE && ts_before(&d->at, &at);
            int rc = pthread_cond_timedwait(&g->cond, &g->mutex,
                                            capped ? &d->at : &at);
            if (atomic_load_explicit(&g->holder, memory_order_relaxed) == 0)
                break;
            /* A whole interval passed and nobody switched: ask the holder
             * to drop the GIL at its next check point. */
            if (rc == ETIMEDOUT && !capped && g->st.switches == seen &&
                !atomic_exchange(&g->drop_request, 1))
                g->st.drop_requests++;
            if (d->kind == RLAB_WAIT_DEADLINE && rlab__expired(d)) {
                g->st.waiters--;
                pthread_cond_broadcast(&g->switch_cond);
                return ETIMEDOUT;
            }
        }
        g->st.waiters--;
    }
    atomic_store_explicit(&g->holder, me, memory_order_relaxed);
    g->st.acquisitions++;
    *switched = g->last_holder != me;
    if (*switched) {
        g->last_holder = me;
        g->st.switches++;
        pthread_cond_broadcast(&g->switch_cond);
    }
    /* Any request was meant for the previous holder. */
    atomic_store(&g->drop_request, 0);
    return 0;
}

/* drop_gil, with g->mutex held by the holder.  With `forced` and a drop
 * request pending, waits until a waiter has taken the GIL or no waiter is
 * left. */
static void drop_locked(rlab_gil *g, uintptr_t me, bool forced)
{
    atomic_store_explicit(&g->holder, 0, memory_order_relaxed);
    pthread_cond_signal(&g->cond);
    if (!forced || !atomic_load(&g->drop_request))
        return;
    bool waited = false;
    while (g->last_holder == me && g->st.waiters > 0) {
        waited = true;
        pthread_cond_wait(&g->switch_cond, &g->mutex);
    }
    if (waited && g->last_holder != me)
        g->st.forced_switches++;
}

static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};

int rlab_gil_acquire(rlab_gil *g, double timeout)
{
    rlab_deadline d;
    if (!g || rlab__deadline(timeout, &d))
        return EINVAL;
    uintptr_t me = rlab__self_id();
    bool switched;
    pthread_mutex_lock(&g->mutex);
    int rc = take_locked(g, me, &d, &switched);
    pthread_mutex_unlock(&g->mutex);
    return rc;
}

/* Drops the caller's GIL: 0, or EPERM (nothing changes). */
static int drop(rlab_gil *g, bool forced, bool blocking)
{
    if (!g)
        return EINVAL;
    uintptr_t me = rlab__self_id();
    if (atomic_load_explicit(&g->holder, memory_order_relaxed) != me)
        return EPERM;
    pthread_mutex_lock(&g->mutex);
    if (blocking)
        g->st.blocking++;
    drop_locked(g, me, forced);
    pthread_mutex_unlock(&g->mutex);
    return 0;
}

int rlab_gil_release(rlab_gil *g)
{
    return drop(g, false, false);
}

int rlab_gil_begin_blocking(rlab_gil *g)
{
    return drop(g, true, true);
}

int rlab_gil_end_blocking(rlab_gil *g)
{
    return rlab_gil_acquire(g, RLAB_FOREVER);
}

bool rlab_gil_held(rlab_gil *g)
{
    return g && atomic_load_explicit(&g->holder, memory_order_relaxed) ==
                    rlab__self_id();
}

static bool __attribute__((noinline)) check_slow(rlab_gil *g)
{
    uintptr_t me = rlab__self_id();
    if (atomic_load_explicit(&g->holder, memory_order_relaxed) != me)
        return false;
    bool switched = false;
    pthread_mutex_lock(&g->mutex);
    g->st.check_drops++;
    drop_locked(g, me, true);
    take_locked(g, me, &forever, &switched); /* cannot fail */
    pthread_mutex_unlock(&g->mutex);
    return switched;
}

bool rlab_gil_check(rlab_gil *g)
{
    if (!g ||
        __builtin_expect(
            !atomic_load_explicit(&g->drop_request, memory_order_relaxed), 1))
        return false;
    return check_slow(g);
}

bool rlab_gil_check_at(rlab_gil *g, rlab_gil_point point)
{
    switch (point) {
    case RLAB_GIL_AT_INSTRUCTION:
        if (!g || atomic_load_explicit(&g->placement, memory_order_relaxed) !=
                      RLAB_GIL_CHECK_EVERY_INSTRUCTION)
            return false;
        return rlab_gil_check(g);
    case RLAB_GIL_AT_BACKEDGE:
    case RLAB_GIL_AT_CALL:
        return rlab_gil_check(g);
    }
    return false;
}

int rlab_gil_get_stats(rlab_gil *g, rlab_gil_stats *out)
{
    if (!g || !out)
        return EINVAL;
    pthread_mutex_lock(&g->mutex);
    *out = g->st;
    pthread_mutex_unlock(&g->mutex);
    return 0;
}

/* ------------------------------------------------- the `n += 1` model --- */

#define DEMO_MAX_THREADS 64

/* The simulated interpreter's state.  Every field after `call` is touched
 * only by the thread that holds the GIL. */
struct counter_run {
    rlab_gil *gil;
    long iterations;
    bool call;
    long n;        /* the global `n` */
    long stores;   /* STORE_GLOBAL n executed so far */
    long crossed;  /* increments another thread's store crossed */
    long switches; /* check points after which another thread had run */
};

static void step(struct counter_run *r, rlab_gil_point kind)
{
    if (rlab_gil_check_at(r->gil, kind))
        r->switches++;
}

/* The body of a Python function the increment calls (`n = n + one()`):
 * entering it is a CALL point. */
static long call_one(struct counter_run *r)
{
    step(r, RLAB_GIL_AT_CALL);
    return 1;
}

/* for _ in range(iterations): n += 1, one instruction at a time.  `v` is
 * the interpreter's value stack: it survives a switch, `n` may not. */
static void *counter_thread(void *arg)
{
    struct counter_run *r = arg;
    (void)rlab_gil_acquire(r->gil, RLAB_FOREVER); /* cannot fail here */
    for (long i = 0; i < r->iterations; i++) {
        long v = r->n; /* LOAD_GLOBAL n */
        long seen = r->stores;
        step(r, RLAB_GIL_AT_INSTRUCTION);
        long one = 1; /* LOAD_CONST 1, or CALL one() */
        if (r->call) {
            one = call_one(r); /* CALL one(); RETURN_VALUE */
            step(r, RLAB_GIL_AT_INSTRUCTION);
        }
        v += one; /* BINARY_OP += */
        step(r, RLAB_GIL_AT_INSTRUCTION);
        r->n = v; /* STORE_GLOBAL n */
        if (r->stores != seen)
            r->crossed++;
        r->stores++;
        step(r, RLAB_GIL_AT_BACKEDGE); /* JUMP_BACKWARD */
    }
    (void)rlab_gil_release(r->gil);
    return NULL;
}

int rlab_gil_counter_demo(rlab_gil *g, const rlab_gil_counter_opts *opts,
                          rlab_gil_counter_result *out)
{
    rlab_gil_counter_opts o = {.threads = 2, .iterations = 100000};
    if (opts) {
        o = *opts;
        if (o.threads == 0)
            o.threads = 2;
        if (o.iterations == 0)
            o.iterations = 100000;
    }
    if (!g || !out || o.threads < 1 || o.threads > DEMO_MAX_THREADS ||
        o.iterations < 0 || o.iterations > LONG_MAX / o.threads)
        return EINVAL;
    struct counter_run r = {
        .gil = g, .iterations = o.iterations, .call = o.call_in_increment};
    /* Hold the GIL until every thread queues for it, so the first thread
     * cannot finish before the others start. */
    int rc = rlab_gil_acquire(g, RLAB_FOREVER);
    if (rc)
        return rc;
    rlab_thread *t[DEMO_MAX_THREADS];
    long started = 0;
    while (started < o.threads) {
        rc = rlab_thread_start(&t[started], NULL, counter_thread, &r, false);
        if (rc)
            break;
        started++;
    }
    pthread_mutex_lock(&g->mutex);
    while (g->st.waiters < started)
        pthread_cond_wait(&g->switch_cond, &g->mutex);
    pthread_mutex_unlock(&g->mutex);
    double t0 = rlab__now();
    (void)rlab_gil_release(g);
    for (long i = 0; i < started; i++) {
        (void)rlab_thread_join(t[i], RLAB_FOREVER, NULL);
        rlab_thread_free(t[i]);
    }
    if (rc)
        return rc;
    /* The joins order every thread's last write before these reads. */
    out->seconds = rlab__now() - t0;
    out->expected = o.threads * o.iterations;
    out->final = r.n;
    out->lost = out->expected - r.n;
    out->crossed = r.crossed;
    out->switches = (unsigned long)r.switches;
    return 0;
}
