/*
 * thread_pool.c - concurrent.futures.ThreadPoolExecutor.
 *
 * The queue is a FIFO of futures linked through the future itself (one
 * allocation per task) under one word lock.  As CPython's
 * _adjust_thread_count, submit starts a worker only when the queued tasks
 * outnumber the free workers (those not running a task), up to max_workers.
 * A worker counts itself free again before it completes its future, so a
 * caller that waits for a result, or a done callback, that submits again
 * finds it free and no new thread starts.
 *
 * Hand-off without system calls: a free worker that finds the queue empty
 * first watches it for a few microseconds (one such spinner at a time),
 * then parks on a private futex word on an idle stack.  Submit wakes a
 * parked worker only when the queued tasks outnumber the awake free
 * workers and no spinner is there to take them; a spinner that takes a
 * task wakes a parked worker itself if more are queued than the awake ones
 * can take.  While workers are busy, a submit is a lock, a link and an
 * unlock.
 *
 * Shutdown marks the pool, optionally cancels the queued futures, and wakes
 * every parked worker; workers drain the queue and exit when it is empty.
 * A failing initializer breaks the pool: the queued futures fail with
 * RLAB_EBROKEN and later submits are refused.  Workers are non-daemon
 * racelab threads; an exit handler shuts down every pool still alive so
 * that the exit-time join of non-daemon threads does not wait forever on a
 * pool the program never freed (CPython's _python_exit).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor_impl.h"
#include "racelab/threading.h"

/* A parked worker, on its own stack while it sleeps. */
typedef struct parked {
    atomic_uint asleep; /* 1 until a waker takes it off the idle stack */
    struct parked *next;
} parked;

typedef struct pool {
    rlab_executor base;
    atomic_uint mu; /* a word lock: short sections, spins before parking */
    rlab_future *head, *tail; /* queued futures, FIFO */
    size_t nqueued;
    atomic_size_t queued_hint; /* nqueued, readable without the lock */
    int max_workers;
    int nthreads; /* started */
    int nfree;    /* started and not running a task */
    int nidle;    /* parked on the idle stack */
    parked *idle;
    bool spinning; /* a free worker watches the queue before parking */
    bool shutdown, broken;
    rlab_thread **threads; /* max_workers slots */
    char *prefix;
    int (*init)(void *);
    void *init_arg;
    struct pool *next_live, *prev_live; /* for the exit handler */
} pool;

static const rlab_executor_ops thread_pool_ops;
/* How many times a free worker looks at the queue before it parks, and
 * how often it yields the CPU meanwhile (tens of microseconds in all). */
enum { POOL_SPIN = 300, POOL_YIELD = 8 };
static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};

static void lock(pool *p)
{
    rlab__word_lock(&p->mu, &forever);
}

static void unlock(pool *p)
{
    rlab__word_unlock(&p->mu);
}

/* ---------------------------------------------------- pools at exit --- */

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pool *live;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static atomic_uint pool_counter;

static int pool_shutdown(rlab_executor *ex, bool wait, bool cancel_futures);

static void shutdown_live_pools(void)
{
    pthread_mutex_lock(&live_mu);
    for (pool *p = live; p; p = p->next_live)
        pool_shutdown(&p->base, false, false);
    pthread_mutex_unlock(&live_mu);
}

static void live_fork_child(void)
{
    pthread_mutex_init(&live_mu, NULL);
}

/* Registered after the first worker started, hence after thread.c's own
 * exit handler, so it runs before the join of non-daemon threads. */
static void register_exit(void)
{
    atexit(shutdown_live_pools);
    pthread_atfork(NULL, NULL, live_fork_child);
}

static void live_add(pool *p)
{
    pthread_mutex_lock(&live_mu);
    p->prev_live = NULL;
    p->next_live = live;
    if (live)
        live->prev_live = p;
    live = p;
    pthread_mutex_unlock(&live_mu);
}

static void live_remove(pool *p)
{
    pthread_mutex_lock(&live_mu);
    if (p->prev_live)
        p->prev_live->next_live = p->next_live;
    else
        live = p->next_live;
    if (p->next_live)
        p->next_live->prev_live = p->prev_live;
    pthread_mutex_unlock(&live_mu);
}

/* -------------------------------------------------------------- queue --- */

static void push_locked(pool *p, rlab_future *f)
{
    f->next = NULL;
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
    p->nqueued++;
    atomic_store_explicit(&p->queued_hint, p->nqueued, memory_order_relaxed);
}

/* Pops the next future that is not cancelled and marks it running; the
 * cancelled ones on the way are dropped.  NULL if none. */
static rlab_future *pop_runnable_locked(pool *p)
{
    rlab_future *f;
    while ((f = p->head)) {
        p->head = f->next;
        if (!p->head)
            p->tail = NULL;
        p->nqueued--;
        atomic_store_explicit(&p->queued_hint, p->nqueued,
                              memory_order_relaxed);
        if (rlab__future_start(f))
            return f;
        rlab_future_free(f); /* cancelled while queued */
    }
    return NULL;
}

/* Takes the whole queue (the caller completes or cancels it unlocked). */
static rlab_future *take_all_locked(pool *p)
{
    rlab_future *f = p->head;
    p->head = p->tail = NULL;
    p->nqueued = 0;
    atomic_store_explicit(&p->queued_hint, 0, memory_order_relaxed);
    return f;
}

/* ------------------------------------------------------------- worker --- */

/* The initializer failed: refuse new work and fail what is queued. */
static void break_pool(pool *p)
{
    lock(p);
    p->broken = true;
    p->nfree--;
    rlab_future *f = take_all_locked(p);
    unlock(p);
    while (f) {
        rlab_future *next = f->next;
        rlab_future_set_result(f, RLAB_EBROKEN, NULL);
        rlab_future_free(f);
        f = next;
    }
}

/* Takes the most recently parked worker off the idle stack (p->mu held);
 * the caller wakes it with unpark() once it has dropped the lock. */
static parked *unpark_locked(pool *p)
{
    parked *w = p->idle;
    p->idle = w->next;
    p->nidle--;
    return w;
}

static void unpark(parked *w)
{
    /* The worker may leave as soon as it sees 0, and its stack with it; a
     * wake that lands on a reused word is a spurious one, which every futex
     * waiter tolerates. */
    atomic_store_explicit(&w->asleep, 0, memory_order_release);
    rlab__futex_wake(&w->asleep, 1);
}

/* Whether a parked worker should be woken for the queue: the tasks queued
 * outnumber the free workers that are awake and will look at the queue
 * anyway.  A spinning worker takes it on itself: it wakes another, if need
 * be, when it takes a task (p->mu held). */
static parked *wake_needed_locked(pool *p)
{
    if (p->nidle == 0 || p->spinning ||
        p->nqueued <= (size_t)(p->nfree - p->nidle))
        return NULL;
    return unpark_locked(p);
}

/* Runs f and every task queued behind it, one lock round trip per task.
 * The worker counts itself free again (or has taken the next task) before
 * the future it ran completes, so a caller that waits on that future and
 * then submits sees a free worker.  Called and returns with p->mu held. */
static void run_tasks_locked(pool *p, rlab_future *f)
{
    p->nfree--;
    parked *w = wake_needed_locked(p);
    unlock(p);
    if (w)
        unpark(w);
    while (f) {
        void *result = NULL;
        int code = f->fn(f->arg, &result);
        lock(p);
        rlab_future *next = pop_runnable_locked(p);
        if (!next)
            p->nfree++;
        unlock(p);
        rlab__future_complete(f, code, result);
        rlab_future_free(f);
        f = next;
    }
    lock(p);
}

/* Before parking, one worker at a time watches the queue for a while: a
 * submitter that keeps up a stream of tasks then makes no system call to
 * wake workers.  The spinner yields its CPU now and then, so that with
 * more threads than CPUs it does not burn the time slice the submitter (or
 * the holder of the pool's lock) needs.  Called and returns with p->mu
 * held; the caller looks at the queue again before it parks. */
static void spin_locked(pool *p)
{
    p->spinning = true;
    unlock(p);
    for (int i = 1; i <= POOL_SPIN; i++) {
        rlab__cpu_relax();
        if (atomic_load_explicit(&p->queued_hint, memory_order_relaxed))
            break;
        if (i % POOL_YIELD == 0)
            sched_yield();
    }
    lock(p);
    p->spinning = false;
}

/* Sleeps until a submit or shutdown takes this worker off the idle stack
 * (a private futex word: one wake wakes exactly this worker).  Called and
 * returns with p->mu held. */
static void park_locked(pool *p)
{
    parked me;
    atomic_init(&me.asleep, 1);
    me.next = p->idle;
    p->idle = &me;
    p->nidle++;
    unlock(p);
    while (atomic_load_explicit(&me.asleep, memory_order_acquire))
        rlab__futex_wait(&me.asleep, 1, &forever);
    lock(p);
}

static void *worker(void *arg)
{
    pool *p = arg;
    if (p->init && p->init(p->init_arg) != 0) {
        break_pool(p);
        return NULL;
    }
    lock(p);
    bool spun = false;
    for (;;) {
        rlab_future *f = pop_runnable_locked(p);
        if (f) {
            run_tasks_locked(p, f);
            spun = false;
        } else if (p->shutdown || p->broken) {
            break;
        } else if (!spun && !p->spinning) {
            spin_locked(p);
            spun = true;
        } else {
            park_locked(p);
            spun = false;
        }
    }
    unlock(p);
    return NULL;
}

/* ------------------------------------------------------------- submit --- */

/* Starts worker number p->nthreads; called with p->mu held. */
static int start_worker_locked(pool *p)
{
    size_t len = strlen(p->prefix) + 16;
    char *name = malloc(len);
    if (!name)
        return ENOMEM;
    snprintf(name, len, "%s_%d", p->prefix, p->nthreads);
    rlab_thread *t;
    int rc = rlab_thread_start(&t, name, worker, p, false);
    free(name);
    if (rc)
        return rc;
    pthread_once(&exit_once, register_exit);
    p->threads[p->nthreads++] = t;
    p->nfree++;
    return 0;
}

static int pool_submit(rlab_executor *ex, rlab_task_fn fn, void *arg,
                       rlab_future **out)
{
    pool *p = (pool *)ex;
    rlab_future *f = rlab__future_task(fn, arg, 2); /* caller's, pool's */
    if (!f)
        return ENOMEM;
    lock(p);
    int rc = p->broken ? RLAB_EBROKEN : p->shutdown ? RLAB_ESHUTDOWN : 0;
    if (rc == 0 && p->nqueued + 1 > (size_t)p->nfree &&
        p->nthreads < p->max_workers) {
        rc = start_worker_locked(p);
        if (rc && p->nthreads > 0)
            rc = 0; /* the workers there are will run it */
    }
    if (rc) {
        unlock(p);
        atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
        rlab_future_free(f); /* never seen by anyone */
        return rc;
    }
    push_locked(p, f);
    parked *w = wake_needed_locked(p);
    unlock(p);
    if (w)
        unpark(w);
    *out = f;
    return 0;
}

/* ----------------------------------------------------------- shutdown --- */

static int pool_shutdown(rlab_executor *ex, bool wait, bool cancel_futures)
{
    pool *p = (pool *)ex;
    lock(p);
    p->shutdown = true;
    rlab_future *cancelled = cancel_futures ? take_all_locked(p) : NULL;
    int n = p->nthreads;
    parked *idle = p->idle;
    p->idle = NULL;
    p->nidle = 0;
    unlock(p);
    while (idle) {
        parked *next = idle->next;
        unpark(idle);
        idle = next;
    }
    while (cancelled) {
        rlab_future *next = cancelled->next;
        rlab_future_cancel(cancelled);
        rlab_future_free(cancelled);
        cancelled = next;
    }
    /* No worker starts after shutdown, so threads[0..n) is settled. */
    for (int i = 0; wait && i < n; i++)
        rlab_thread_join(p->threads[i], RLAB_FOREVER, NULL); /* EDEADLK:
                                                   a task shut its own pool */
    return 0;
}

static void pool_destroy(rlab_executor *ex)
{
    pool *p = (pool *)ex;
    live_remove(p);
    for (int i = 0; i < p->nthreads; i++)
        rlab_thread_free(p->threads[i]);
    free(p->threads);
    free(p->prefix);
    free(p);
}

static int pool_max_workers(rlab_executor *ex)
{
    return ((pool *)ex)->max_workers;
}

static const rlab_executor_ops thread_pool_ops = {
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .destroy = pool_destroy,
    .max_workers = pool_max_workers,
};

/* ---------------------------------------------------------------- new --- */

/* os.process_cpu_count(): the CPUs this process may run on. */
int rlab__cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

rlab_executor *rlab_thread_pool_new(int max_workers, const char *prefix,
                                    int (*init)(void *), void *init_arg)
{
    if (max_workers < 0) {
        errno = EINVAL;
        return NULL;
    }
    if (max_workers == 0) {
        max_workers = rlab__cpu_count() + 4;
        if (max_workers > 32)
            max_workers = 32;
    }
    pool *p = calloc(1, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    p->base.ops = &thread_pool_ops;
    p->max_workers = max_workers;
    p->init = init;
    p->init_arg = init_arg;
    p->threads = calloc((size_t)max_workers, sizeof *p->threads);
    if (prefix) {
        p->prefix = strdup(prefix);
    } else {
        char buf[48];
        snprintf(buf, sizeof buf, "ThreadPoolExecutor-%u",
                 atomic_fetch_add(&pool_counter, 1));
        p->prefix = strdup(buf);
    }
    if (!p->threads || !p->prefix) {
        free(p->threads);
        free(p->prefix);
        free(p);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&p->mu, 0);
    live_add(p);
    return &p->base;
}
