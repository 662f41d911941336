/*
 * selfcheck.c - racelab selfcheck: every threading primitive on real
 * threads, each against an exact expected result, one line per primitive.
 *
 * Every wait that must succeed is a timed wait with GUARD as its deadline,
 * so a broken primitive fails its line instead of hanging.  A worker still
 * running after its join timed out may be touching the check's state, so
 * the run then stops at once (_exit) rather than returning; and a watchdog
 * alarm ends a check that is stuck anyway.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "racelab.h"

#define GUARD 10.0   /* seconds, deadline of waits that must succeed */
#define WATCHDOG 120 /* seconds a single check may take */
#define SETTLE 0.05  /* seconds to wait for a wake-up that must not come */
#define N_THREADS 4
#define LOCK_ITERS 100000L
#define SEM_ITERS 20000L
#define BARRIER_CYCLES 100

typedef bool (*check_fn)(char *msg, size_t len);

/* ------------------------------------------------------------- helpers --- */

static bool stuck; /* a worker outlived its join's guard */

/* A crew of racelab threads named PREFIX-0 .. PREFIX-(n-1); thread i runs
 * fn(args + i * size).  Daemon threads, so a stuck one cannot hold up exit. */
typedef struct {
    rlab_thread *t[N_THREADS + 1];
    int n;
} crew;

static bool crew_start(crew *c, int n, const char *prefix, void *(*fn)(void *),
                       void *args, size_t size)
{
    c->n = 0;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s-%d", prefix, i);
        if (rlab_thread_start(&c->t[i], name, fn, (char *)args + i * size,
                              true))
            return false;
        c->n++;
    }
    return true;
}

/* Joins and frees every started thread; false (and `stuck`) if one is
 * still running after GUARD. */
static bool crew_join(crew *c)
{
    bool ok = true;
    for (int i = 0; i < c->n; i++) {
        if (rlab_thread_join(c->t[i], GUARD, NULL)) {
            ok = false;
            stuck = true;
        }
        rlab_thread_free(c->t[i]);
    }
    c->n = 0;
    return ok;
}

/* A status code by name, for the failure messages. */
static const char *code(int rc)
{
    static _Thread_local char buf[16];
    switch (rc) {
    case 0:
        return "0";
    case EAGAIN:
        return "EAGAIN";
    case EPERM:
        return "EPERM";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EOVERFLOW:
        return "EOVERFLOW";
    case EDEADLK:
        return "EDEADLK";
    case EINVAL:
        return "EINVAL";
    case RLAB_EBROKEN:
        return "RLAB_EBROKEN";
    default:
        snprintf(buf, sizeof buf, "%d", rc);
        return buf;
    }
}

#define FAIL(...)                                                              \
    do {                                                                       \
        snprintf(msg, len, __VA_ARGS__);                                       \
        return false;                                                          \
    } while (0)

/* Starts a crew and joins it; fails the check (returns false from the
 * calling check) if a thread could not start or did not finish. */
#define RUN_CREW(n, prefix, fn, args)                                          \
    do {                                                                       \
        crew c_;                                                               \
        bool started_ =                                                        \
            crew_start(&c_, (n), (prefix), (fn), (args), sizeof(args)[0]);     \
        if (!crew_join(&c_))                                                   \
            FAIL("a %s thread did not finish within %.0f s", (prefix), GUARD); \
        if (!started_)                                                         \
            FAIL("could not start %d threads", (n));                           \
    } while (0)

/* ---------------------------------------------------------------- Lock --- */

typedef struct {
    rlab_lock *lock;
    long *counter;
    int errors;
} lock_arg;

static void *lock_worker(void *p)
{
    lock_arg *a = p;
    for (long i = 0; i < LOCK_ITERS; i++) {
        if (rlab_lock_acquire(a->lock, GUARD)) {
            a->errors++;
            continue;
        }
        ++*a->counter;
        a->errors += rlab_lock_release(a->lock) != 0;
    }
    return NULL;
}

static void *release_other(void *p)
{
    lock_arg *a = p;
    a->errors = rlab_lock_release(a->lock);
    return NULL;
}

static bool check_lock(char *msg, size_t len)
{
    rlab_lock *lock = rlab_lock_new();
    if (!lock)
        FAIL("rlab_lock_new failed");
    long counter = 0;
    lock_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (lock_arg){lock, &counter, 0};
    RUN_CREW(N_THREADS, "lock", lock_worker, args);
    int errors = 0;
    for (int i = 0; i < N_THREADS; i++)
        errors += args[i].errors;
    /* Python lets any thread release a Lock. */
    int try_held = -1;
    lock_arg other[1] = {{lock, NULL, -1}};
    if (rlab_lock_acquire(lock, GUARD) == 0) {
        try_held = rlab_lock_acquire(lock, 0);
        RUN_CREW(1, "release", release_other, other);
    }
    int again = rlab_lock_release(lock);
    bool locked = rlab_lock_locked(lock);
    rlab_lock_free(lock);
    if (errors)
        FAIL("%d acquire/release calls failed", errors);
    if (counter != N_THREADS * LOCK_ITERS)
        FAIL("%d threads x %ld increments = %ld, want %ld", N_THREADS,
             LOCK_ITERS, counter, N_THREADS * LOCK_ITERS);
    if (try_held != EAGAIN)
        FAIL("acquire(0) of a held lock gave %s, want EAGAIN", code(try_held));
    if (other[0].errors != 0)
        FAIL("release from another thread gave %s, want 0",
             code(other[0].errors));
    if (again != EPERM || locked)
        FAIL("release of an unlocked lock gave %s, want EPERM", code(again));
    snprintf(msg, len,
             "%d threads x %ld increments = %ld, released by another thread",
             N_THREADS, LOCK_ITERS, counter);
    return true;
}

/* --------------------------------------------------------------- RLock --- */

typedef struct {
    rlab_rlock *rlock;
    long *counter;
    int errors;
} rlock_arg;

static void *rlock_worker(void *p)
{
    rlock_arg *a = p;
    for (long i = 0; i < LOCK_ITERS; i++) {
        if (rlab_rlock_acquire(a->rlock, GUARD)) {
            a->errors++;
            continue;
        }
        if (rlab_rlock_acquire(a->rlock, 0) == 0) {
            a->errors += rlab_rlock_count(a->rlock) != 2;
            ++*a->counter;
            a->errors += rlab_rlock_release(a->rlock) != 0;
        } else {
            a->errors++;
        }
        a->errors += rlab_rlock_release(a->rlock) != 0;
    }
    return NULL;
}

static void *rlock_intruder(void *p)
{
    rlock_arg *a = p;
    /* Another thread holds it: neither release nor a try may succeed. */
    a->errors = rlab_rlock_release(a->rlock) == EPERM &&
                        rlab_rlock_acquire(a->rlock, 0) == EAGAIN &&
                        !rlab_rlock_is_owned(a->rlock)
                    ? 0
                    : 1;
    return NULL;
}

static bool check_rlock(char *msg, size_t len)
{
    rlab_rlock *r = rlab_rlock_new();
    if (!r)
        FAIL("rlab_rlock_new failed");
    long counter = 0;
    rlock_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (rlock_arg){r, &counter, 0};
    RUN_CREW(N_THREADS, "rlock", rlock_worker, args);
    int errors = 0;
    for (int i = 0; i < N_THREADS; i++)
        errors += args[i].errors;
    rlock_arg intruder[1] = {{r, NULL, -1}};
    if (rlab_rlock_acquire(r, GUARD) == 0) {
        RUN_CREW(1, "intruder", rlock_intruder, intruder);
        rlab_rlock_release(r);
    }
    int unowned = rlab_rlock_release(r);
    rlab_rlock_free(r);
    if (errors)
        FAIL("%d nested acquire/release calls misbehaved", errors);
    if (counter != N_THREADS * LOCK_ITERS)
        FAIL("%d threads x %ld nested increments = %ld, want %ld", N_THREADS,
             LOCK_ITERS, counter, N_THREADS * LOCK_ITERS);
    if (intruder[0].errors)
        FAIL("a non-owner could release or take a held RLock");
    if (unowned != EPERM)
        FAIL("release of an unowned RLock gave %s, want EPERM", code(unowned));
    snprintf(msg, len,
             "%d threads x %ld nested increments = %ld, non-owner release "
             "EPERM",
             N_THREADS, LOCK_ITERS, counter);
    return true;
}

/* ------------------------------------------- Semaphore, BoundedSemaphore ---
 */

#define SEM_VALUE 2

typedef struct {
    rlab_semaphore *sem;
    atomic_long *inside, *max_inside, *taken;
    int errors;
} sem_arg;

static void *sem_worker(void *p)
{
    sem_arg *a = p;
    for (long i = 0; i < SEM_ITERS; i++) {
        if (rlab_semaphore_acquire(a->sem, GUARD)) {
            a->errors++;
            continue;
        }
        long in = atomic_fetch_add(a->inside, 1) + 1;
        long max = atomic_load(a->max_inside);
        while (in > max &&
               !atomic_compare_exchange_weak(a->max_inside, &max, in))
            ;
        atomic_fetch_add(a->taken, 1);
        atomic_fetch_sub(a->inside, 1);
        a->errors += rlab_semaphore_release(a->sem, 1) != 0;
    }
    return NULL;
}

/* Runs the semaphore workers; fills the message and returns false on a
 * mismatch. */
static bool sem_exercise(rlab_semaphore *s, char *msg, size_t len)
{
    atomic_long inside = 0, max_inside = 0, taken = 0;
    sem_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (sem_arg){s, &inside, &max_inside, &taken, 0};
    RUN_CREW(N_THREADS, "sem", sem_worker, args);
    int errors = 0;
    for (int i = 0; i < N_THREADS; i++)
        errors += args[i].errors;
    if (errors)
        FAIL("%d acquire/release calls failed", errors);
    if (atomic_load(&taken) != N_THREADS * SEM_ITERS)
        FAIL("%d threads x %ld acquires = %ld, want %ld", N_THREADS, SEM_ITERS,
             atomic_load(&taken), N_THREADS * SEM_ITERS);
    if (atomic_load(&max_inside) > SEM_VALUE)
        FAIL("%ld threads inside a Semaphore(%d)", atomic_load(&max_inside),
             SEM_VALUE);
    if (rlab_semaphore_value(s) != SEM_VALUE)
        FAIL("value %ld after the run, want %d", rlab_semaphore_value(s),
             SEM_VALUE);
    return true;
}

static bool check_semaphore(char *msg, size_t len)
{
    rlab_semaphore *s = rlab_semaphore_new(SEM_VALUE);
    if (!s)
        FAIL("rlab_semaphore_new failed");
    bool ok = sem_exercise(s, msg, len);
    int over = ok ? rlab_semaphore_release(s, 3) : 0; /* unbounded: fine */
    long value = rlab_semaphore_value(s);
    rlab_semaphore_free(s);
    if (!ok)
        return false;
    if (over || value != SEM_VALUE + 3)
        FAIL("release(3) gave %s and value %ld, want 0 and %d", code(over),
             value, SEM_VALUE + 3);
    snprintf(msg, len,
             "value %d: %d threads x %ld acquires = %ld, never more than %d "
             "inside",
             SEM_VALUE, N_THREADS, SEM_ITERS, N_THREADS * SEM_ITERS, SEM_VALUE);
    return true;
}

typedef struct {
    rlab_semaphore *sem;
    rlab_barrier *gate;
    int rc;
} release_arg;

static void *racing_release(void *p)
{
    release_arg *a = p;
    a->rc = rlab_barrier_wait(a->gate, GUARD, NULL);
    if (a->rc == 0)
        a->rc = rlab_semaphore_release(a->sem, 1);
    return NULL;
}

static bool check_bounded(char *msg, size_t len)
{
    rlab_semaphore *s = rlab_bounded_semaphore_new(SEM_VALUE);
    rlab_barrier *gate = rlab_barrier_new(N_THREADS, NULL, NULL, GUARD);
    if (!s || !gate) {
        rlab_semaphore_free(s);
        rlab_barrier_free(gate);
        FAIL("cannot create the semaphore or the barrier");
    }
    bool ok = sem_exercise(s, msg, len);
    int full = ok ? rlab_semaphore_release(s, 1) : 0;
    /* Take both units, then let 4 threads race to give back one each:
     * exactly 2 may succeed. */
    int take1 = rlab_semaphore_acquire(s, 0),
        take2 = rlab_semaphore_acquire(s, 0);
    int take3 = rlab_semaphore_acquire(s, 0);
    release_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (release_arg){s, gate, -1};
    if (ok)
        RUN_CREW(N_THREADS, "release", racing_release, args);
    int n_ok = 0, n_over = 0;
    for (int i = 0; i < N_THREADS; i++) {
        n_ok += args[i].rc == 0;
        n_over += args[i].rc == EOVERFLOW;
    }
    long value = rlab_semaphore_value(s);
    rlab_semaphore_free(s);
    rlab_barrier_free(gate);
    if (!ok)
        return false;
    if (full != EOVERFLOW)
        FAIL("over-release of a full BoundedSemaphore gave %s, want "
             "EOVERFLOW",
             code(full));
    if (take1 || take2 || take3 != EAGAIN)
        FAIL("acquire(0) x 3 gave %d %d %d, want 0 0 EAGAIN", take1, take2,
             take3);
    if (n_ok != SEM_VALUE || n_over != N_THREADS - SEM_VALUE ||
        value != SEM_VALUE)
        FAIL("%d racing releases: %d ok, %d EOVERFLOW, value %ld; want %d, "
             "%d, %d",
             N_THREADS, n_ok, n_over, value, SEM_VALUE, N_THREADS - SEM_VALUE,
             SEM_VALUE);
    snprintf(msg, len,
             "value %d: %ld acquires ok; over-release EOVERFLOW, %d racing "
             "releases: %d ok",
             SEM_VALUE, N_THREADS * SEM_ITERS, N_THREADS, n_ok);
    return true;
}

/* ----------------------------------------------------------- Condition --- */

typedef struct {
    rlab_condition *cv;   /* the waiters wait here */
    rlab_condition *done; /* the main thread waits here, same lock */
    int waiting, woken, bad;
    int want;
} cond_shared;

static void *cond_waiter(void *p)
{
    cond_shared *s = *(cond_shared **)p;
    if (rlab_condition_acquire(s->cv, GUARD)) {
        s->bad++; /* unguarded, but this run fails anyway */
        return NULL;
    }
    s->waiting++;
    rlab_condition_notify_all(s->done);
    if (rlab_condition_wait(s->cv, GUARD))
        s->bad++;
    s->woken++;
    rlab_condition_notify_all(s->done);
    rlab_condition_release(s->cv);
    return NULL;
}

static bool all_waiting(void *p)
{
    cond_shared *s = p;
    return s->waiting == N_THREADS;
}

static bool woken_enough(void *p)
{
    cond_shared *s = p;
    return s->woken >= s->want;
}

static bool check_condition(char *msg, size_t len)
{
    rlab_lock *lock = rlab_lock_new();
    cond_shared sh = {
        rlab_condition_new(lock), rlab_condition_new(lock), 0, 0, 0, 0};
    if (!lock || !sh.cv || !sh.done) {
        rlab_condition_free(sh.cv);
        rlab_condition_free(sh.done);
        rlab_lock_free(lock);
        FAIL("cannot create the lock or the conditions");
    }
    cond_shared *args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = &sh;
    crew c;
    bool started =
        crew_start(&c, N_THREADS, "cond", cond_waiter, args, sizeof args[0]);
    int rc_wait = -1, rc_one = -1, rc_settle = -1, rc_all = -1;
    int after_one = -1;
    if (started && rlab_condition_acquire(sh.cv, GUARD) == 0) {
        rc_wait = rlab_condition_wait_for(sh.done, all_waiting, &sh, GUARD);
        rlab_condition_notify(sh.cv, 1);
        sh.want = 1;
        rc_one = rlab_condition_wait_for(sh.done, woken_enough, &sh, GUARD);
        /* A second wake-up must not come: wait a little for it. */
        sh.want = 2;
        rc_settle = rlab_condition_wait_for(sh.done, woken_enough, &sh, SETTLE);
        after_one = sh.woken;
        rlab_condition_notify_all(sh.cv);
        sh.want = N_THREADS;
        rc_all = rlab_condition_wait_for(sh.done, woken_enough, &sh, GUARD);
        rlab_condition_release(sh.cv);
    }
    if (!crew_join(&c))
        FAIL("a cond thread did not finish within %.0f s", GUARD);
    rlab_condition_free(sh.cv);
    rlab_condition_free(sh.done);
    rlab_lock_free(lock);
    if (!started)
        FAIL("could not start %d threads", N_THREADS);
    if (rc_wait)
        FAIL("%d of %d waiters reached wait()", sh.waiting, N_THREADS);
    if (rc_one)
        FAIL("notify(1) woke no waiter");
    if (rc_settle != ETIMEDOUT || after_one != 1)
        FAIL("notify(1) woke %d waiters, want 1", after_one);
    if (rc_all || sh.woken != N_THREADS)
        FAIL("notify_all() left %d of %d waiting", N_THREADS - sh.woken,
             N_THREADS - 1);
    if (sh.bad)
        FAIL("%d waits did not return 0", sh.bad);
    snprintf(msg, len,
             "%d waiters: notify(1) woke exactly 1, notify_all() the other %d",
             N_THREADS, N_THREADS - 1);
    return true;
}

/* --------------------------------------------------------------- Event --- */

typedef struct {
    rlab_event *ev;
    rlab_semaphore *ready;
    int rc;
} event_arg;

static void *event_waiter(void *p)
{
    event_arg *a = p;
    rlab_semaphore_release(a->ready, 1);
    a->rc = rlab_event_wait(a->ev, GUARD);
    return NULL;
}

static bool check_event(char *msg, size_t len)
{
    rlab_event *ev = rlab_event_new();
    rlab_semaphore *ready = rlab_semaphore_new(0);
    if (!ev || !ready) {
        rlab_event_free(ev);
        rlab_semaphore_free(ready);
        FAIL("cannot create the event or the semaphore");
    }
    event_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (event_arg){ev, ready, -1};
    crew c;
    bool started =
        crew_start(&c, N_THREADS, "event", event_waiter, args, sizeof args[0]);
    int before = rlab_event_wait(ev, 0);
    int n_ready = 0;
    while (started && n_ready < N_THREADS &&
           rlab_semaphore_acquire(ready, GUARD) == 0)
        n_ready++;
    rlab_event_set(ev);
    if (!crew_join(&c))
        FAIL("an event thread did not finish within %.0f s", GUARD);
    bool was_set = rlab_event_is_set(ev);
    rlab_event_clear(ev);
    bool still_set = rlab_event_is_set(ev);
    int after = rlab_event_wait(ev, 0.01);
    rlab_event_free(ev);
    rlab_semaphore_free(ready);
    if (!started)
        FAIL("could not start %d threads", N_THREADS);
    int woken = 0;
    for (int i = 0; i < N_THREADS; i++)
        woken += args[i].rc == 0;
    if (before != ETIMEDOUT)
        FAIL("wait(0) on an unset event gave %s, want ETIMEDOUT", code(before));
    if (woken != N_THREADS)
        FAIL("set() woke %d of %d waiters", woken, N_THREADS);
    if (!was_set || still_set)
        FAIL("is_set() wrong after set() or clear()");
    if (after != ETIMEDOUT)
        FAIL("wait(0.01) after clear() gave %s, want ETIMEDOUT", code(after));
    snprintf(msg, len,
             "set() woke %d waiters; after clear(), wait(0.01) timed out",
             woken);
    return true;
}

/* ------------------------------------------------------------- Barrier --- */

typedef struct {
    rlab_barrier *b;
    atomic_uint *masks; /* per cycle, one bit per arrival index */
    int errors;
} barrier_arg;

static int count_cycle(void *p)
{
    ++*(int *)p; /* runs under the barrier's lock */
    return 0;
}

static void *barrier_worker(void *p)
{
    barrier_arg *a = p;
    for (int cycle = 0; cycle < BARRIER_CYCLES; cycle++) {
        long index = -1;
        if (rlab_barrier_wait(a->b, RLAB_FOREVER, &index) || index < 0 ||
            index >= N_THREADS) {
            a->errors++;
            break; /* the barrier is broken now; every wait fails fast */
        }
        atomic_fetch_or(&a->masks[cycle], 1u << index);
    }
    return NULL;
}

static bool check_barrier(char *msg, size_t len)
{
    int cycles = 0;
    rlab_barrier *b = rlab_barrier_new(N_THREADS, count_cycle, &cycles, GUARD);
    if (!b)
        FAIL("rlab_barrier_new failed");
    static atomic_uint masks[BARRIER_CYCLES];
    for (int i = 0; i < BARRIER_CYCLES; i++)
        atomic_store(&masks[i], 0);
    barrier_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (barrier_arg){b, masks, 0};
    RUN_CREW(N_THREADS, "barrier", barrier_worker, args);
    bool broken = rlab_barrier_broken(b);
    long waiting = rlab_barrier_n_waiting(b);
    rlab_barrier_free(b);
    int errors = 0, bad_cycles = 0;
    for (int i = 0; i < N_THREADS; i++)
        errors += args[i].errors;
    for (int i = 0; i < BARRIER_CYCLES; i++)
        bad_cycles += atomic_load(&masks[i]) != (1u << N_THREADS) - 1;
    if (errors || broken)
        FAIL("%d waits failed (broken: %s)", errors, broken ? "yes" : "no");
    if (bad_cycles)
        FAIL("%d of %d cycles had repeated arrival indices", bad_cycles,
             BARRIER_CYCLES);
    if (cycles != BARRIER_CYCLES || waiting)
        FAIL("action ran %d times, want %d", cycles, BARRIER_CYCLES);
    snprintf(msg, len,
             "%d threads x %d cycles: indices 0..%d each cycle, action ran "
             "%d times",
             N_THREADS, BARRIER_CYCLES, N_THREADS - 1, cycles);
    return true;
}

/* -------------------------------------------------------------- Thread --- */

typedef struct {
    char seen_name[64];
    unsigned long ident;
    long native_id;
    rlab_thread *self;  /* for the self-join thread: its own handle */
    rlab_event *handed; /* set once `self` is filled in */
    int self_join;
} thread_arg;

static void *thread_body(void *p)
{
    thread_arg *a = p;
    snprintf(a->seen_name, sizeof a->seen_name, "%s",
             rlab_current_thread_name());
    a->ident = rlab_get_ident();
    a->native_id = rlab_get_native_id();
    if (a->handed && rlab_event_wait(a->handed, GUARD) == 0)
        a->self_join = rlab_thread_join(a->self, GUARD, NULL);
    return a;
}

static bool check_thread(char *msg, size_t len)
{
    enum { N = N_THREADS + 1 }; /* the last one has no name */
    thread_arg args[N];
    memset(args, 0, sizeof args);
    rlab_event *handed = rlab_event_new();
    if (!handed)
        FAIL("rlab_event_new failed");
    args[0].handed = handed;
    args[0].self_join = -1;
    rlab_thread *t[N] = {NULL};
    char names[N][32];
    int started = 0;
    for (; started < N; started++) {
        snprintf(names[started], sizeof names[started], "worker-%d", started);
        bool unnamed = started == N - 1;
        if (rlab_thread_start(&t[started], unnamed ? NULL : names[started],
                              thread_body, &args[started], started % 2 == 0))
            break;
        if (unnamed)
            snprintf(names[started], sizeof names[started], "%s",
                     rlab_thread_name(t[started]));
    }
    if (started > 0) {
        args[0].self = t[0];
        rlab_event_set(handed);
    }
    int bad = 0;
    const char *why = "";
    for (int i = 0; i < started; i++) {
        void *result = NULL;
        if (rlab_thread_join(t[i], GUARD, &result)) {
            stuck = true;
            rlab_thread_free(t[i]);
            FAIL("thread %s did not finish within %.0f s", names[i], GUARD);
        }
        if (result != &args[i])
            bad++, why = "join result";
        else if (strcmp(args[i].seen_name, names[i]) ||
                 strcmp(rlab_thread_name(t[i]), names[i]))
            bad++, why = "name";
        else if (rlab_thread_ident(t[i]) != args[i].ident ||
                 rlab_thread_native_id(t[i]) != args[i].native_id)
            bad++, why = "ident or native id";
        else if (rlab_thread_is_alive(t[i]) ||
                 rlab_thread_daemon(t[i]) != (i % 2 == 0))
            bad++, why = "is_alive or daemon";
        rlab_thread_free(t[i]);
    }
    rlab_event_free(handed);
    if (started < N)
        FAIL("could only start %d of %d threads", started, N);
    if (bad)
        FAIL("%d threads: wrong %s", bad, why);
    if (strncmp(names[N - 1], "Thread-", 7))
        FAIL("an unnamed thread is called '%s', want Thread-N", names[N - 1]);
    if (strcmp(rlab_current_thread_name(), "MainThread"))
        FAIL("the main thread is called '%s'", rlab_current_thread_name());
    if (args[0].self_join != EDEADLK)
        FAIL("a thread joining itself got %s, want EDEADLK",
             code(args[0].self_join));
    snprintf(msg, len,
             "%d threads: names (and %s), idents, results; self-join EDEADLK",
             N, names[N - 1]);
    return true;
}

/* --------------------------------------------------------------- local --- */

static atomic_int local_dtor_runs;

static void local_dtor(void *p)
{
    atomic_fetch_add(&local_dtor_runs, 1);
    free(p);
}

typedef struct {
    rlab_local *local;
    rlab_barrier *all_set;
    int id, errors;
} local_arg;

static void *local_worker(void *p)
{
    local_arg *a = p;
    int *first = malloc(sizeof *first), *second = malloc(sizeof *second);
    if (!first || !second || rlab_local_get(a->local)) {
        free(first);
        free(second);
        a->errors++;
        return NULL;
    }
    *first = -a->id;
    *second = a->id;
    /* Replacing a value hands the old one to the destructor. */
    a->errors += rlab_local_set(a->local, first) != 0;
    a->errors += rlab_local_set(a->local, second) != 0;
    a->errors += rlab_barrier_wait(a->all_set, GUARD, NULL) != 0;
    int *mine = rlab_local_get(a->local);
    a->errors += mine != second || *mine != a->id;
    return NULL; /* the exit hands `second` to the destructor */
}

static bool check_local(char *msg, size_t len)
{
    atomic_store(&local_dtor_runs, 0);
    rlab_local *local = rlab_local_new(local_dtor);
    rlab_barrier *all_set = rlab_barrier_new(N_THREADS, NULL, NULL, GUARD);
    if (!local || !all_set) {
        rlab_local_free(local);
        rlab_barrier_free(all_set);
        FAIL("cannot create the local or the barrier");
    }
    local_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        args[i] = (local_arg){local, all_set, i + 1, 0};
    RUN_CREW(N_THREADS, "local", local_worker, args);
    int errors = 0;
    for (int i = 0; i < N_THREADS; i++)
        errors += args[i].errors;
    void *main_value = rlab_local_get(local);
    int runs = atomic_load(&local_dtor_runs);
    rlab_local_free(local);
    rlab_barrier_free(all_set);
    if (errors)
        FAIL("%d threads saw a wrong value", errors);
    if (main_value)
        FAIL("the main thread sees a value it never set");
    if (runs != 2 * N_THREADS)
        FAIL("destructor ran %d times, want %d", runs, 2 * N_THREADS);
    snprintf(msg, len,
             "%d threads see their own values; destructor ran %d times "
             "(%d replaced, %d at exit)",
             N_THREADS, runs, N_THREADS, N_THREADS);
    return true;
}

/* -------------------------------------------------------------- runner --- */

static const struct {
    const char *name;
    check_fn fn;
} checks[] = {
    {"Lock", check_lock},           {"RLock", check_rlock},
    {"Semaphore", check_semaphore}, {"BoundedSemaphore", check_bounded},
    {"Condition", check_condition}, {"Event", check_event},
    {"Barrier", check_barrier},     {"Thread", check_thread},
    {"local", check_local},
};
#define N_CHECKS (int)(sizeof checks / sizeof checks[0])

static const char *volatile running_check = "";

static void watchdog(int sig)
{
    (void)sig;
    static const char head[] = "  FAIL ";
    static const char tail[] = "  did not finish (selfcheck watchdog)\n";
    const char *name = running_check;
    (void)!write(STDOUT_FILENO, head, sizeof head - 1);
    (void)!write(STDOUT_FILENO, name, strlen(name));
    (void)!write(STDOUT_FILENO, tail, sizeof tail - 1);
    _exit(CLI_FAIL);
}

int cli_selfcheck(int argc, char **argv)
{
    if (argc > 1)
        return cli_usage_error("selfcheck: unexpected argument '%s'", argv[1]);
    printf("racelab %s selfcheck: each primitive on real threads\n",
           RLAB_VERSION_STRING);
    fflush(stdout);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);

    int failed = 0;
    for (int i = 0; i < N_CHECKS; i++) {
        char msg[256] = "";
        running_check = checks[i].name;
        alarm(WATCHDOG);
        double t0 = cli_now();
        bool ok = checks[i].fn(msg, sizeof msg);
        double ms = (cli_now() - t0) * 1e3;
        alarm(0);
        failed += !ok;
        printf("  %-4s %-17s %s  (%.1f ms)\n", ok ? "ok" : "FAIL",
               checks[i].name, msg, ms);
        fflush(stdout);
        if (stuck) {
            /* A worker may still be using this check's state. */
            fprintf(stderr, "racelab: selfcheck: a thread is stuck; "
                            "stopping here\n");
            _exit(CLI_FAIL);
        }
    }
    sigaction(SIGALRM, &old, NULL);
    if (failed)
        printf("selfcheck: %d of %d checks FAILED\n", failed, N_CHECKS);
    else
        printf("selfcheck: all %d checks passed\n", N_CHECKS);
    return failed ? CLI_FAIL : CLI_OK;
}
