/*
 * test_condition.c - rlab_condition, threading.Condition.
 *
 * The behaviours of CPython's lock_tests.ConditionTests, checked over a
 * plain Lock, over an RLock and with the condition's own RLock (most tests
 * loop over the three kinds), plus racelab's C conventions: EPERM without
 * the lock, EINVAL for bad arguments, ETIMEDOUT with the lock held again.
 *
 * No sleep is used to know that a thread is inside wait(): a waiter reports
 * its arrival while it holds the condition's lock, and only wait() releases
 * that lock, so once the main thread has seen the report and acquired the
 * lock itself, the waiter is parked in wait().  Reports go through a plain
 * pthread monitor (a "tally"), so the harness does not depend on the code
 * under test.  Worker threads never call ck_assert: they record what they
 * saw and the main thread asserts after joining them.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "rlab_test.h"

/* A timed wait must never end early, and may end late by scheduling noise
 * (sanitizers, a loaded host): at most LATE seconds. */
#define EARLY 1e-3
#define LATE 1.0

/* A wait with an RLAB_GUARD deadline that a notify released ends long
 * before that deadline.  wait_for() re-checks its predicate at the
 * deadline, so a lost notify can still end in 0, but only after RLAB_GUARD:
 * its duration tells. */
#define PROMPT (RLAB_GUARD / 2)

/* ------------------------------------------------------------- tally --- */

/* A counter under a pthread mutex that a thread can wait on. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long count;
} tally;

static void tally_init(tally *t)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    t->count = 0;
}

static void tally_destroy(tally *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

static void tally_add(tally *t)
{
    pthread_mutex_lock(&t->mu);
    t->count++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Waits until the count reaches `want` or `timeout` seconds pass; returns
 * the count then. */
static long tally_await(tally *t, long want, double timeout)
{
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    double whole = floor(timeout);
    at.tv_sec += (time_t)whole;
    at.tv_nsec += (long)((timeout - whole) * 1e9);
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->mu);
    while (t->count < want)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &at) == ETIMEDOUT)
            break;
    long c = t->count;
    pthread_mutex_unlock(&t->mu);
    return c;
}

/* ----------------------------------------------------------- fixture --- */

enum { OVER_LOCK, OVER_RLOCK, OWN_RLOCK, N_KINDS };

static const char *const kind_name[N_KINDS] = {"over a Lock", "over an RLock",
                                               "with its own RLock"};

typedef struct {
    int kind;
    rlab_lock *lock;
    rlab_rlock *rlock;
    rlab_condition *cond;
} fixture;

static void fixture_init(fixture *f, int kind)
{
    *f = (fixture){.kind = kind};
    switch (kind) {
    case OVER_LOCK:
        f->lock = rlab_lock_new();
        ck_assert_ptr_nonnull(f->lock);
        f->cond = rlab_condition_new(f->lock);
        break;
    case OVER_RLOCK:
        f->rlock = rlab_rlock_new();
        ck_assert_ptr_nonnull(f->rlock);
        f->cond = rlab_condition_new_rlock(f->rlock);
        break;
    default:
        f->cond = rlab_condition_new(NULL);
    }
    ck_assert_ptr_nonnull(f->cond);
}

static void fixture_fini(fixture *f)
{
    rlab_condition_free(f->cond);
    rlab_lock_free(f->lock);
    rlab_rlock_free(f->rlock);
}

/* Whether the calling thread holds the condition's lock, without changing
 * it: a Lock only knows it is locked; an RLock knows its owner, and only
 * the owner re-enters it at once. */
static bool holds(fixture *f)
{
    switch (f->kind) {
    case OVER_LOCK:
        return rlab_lock_locked(f->lock);
    case OVER_RLOCK:
        return rlab_rlock_is_owned(f->rlock);
    default:
        if (rlab_condition_acquire(f->cond, 0) != 0)
            return false;
        rlab_condition_release(f->cond);
        return true;
    }
}

/* Main thread only, with no other thread using the lock: the caller holds
 * the lock exactly `levels` times.  Releases it completely. */
static void release_exactly(fixture *f, long levels)
{
    if (f->kind == OVER_RLOCK)
        ck_assert_int_eq(rlab_rlock_count(f->rlock), levels);
    for (long i = 0; i < levels; i++)
        ck_assert_rc(rlab_condition_release(f->cond), 0);
    ck_assert_rc(rlab_condition_release(f->cond), EPERM);
}

static bool always_true(void *arg)
{
    (void)arg;
    return true;
}

static bool always_false(void *arg)
{
    (void)arg;
    return false;
}

/* ------------------------------------------------------ the lock kinds --- */

static void *try_acquire_once(void *arg)
{
    rlab_condition *c = arg;
    int rc = rlab_condition_acquire(c, 0);
    if (rc == 0)
        rlab_condition_release(c);
    return (void *)(intptr_t)rc;
}

START_TEST(default_condition_has_its_own_reentrant_rlock)
{
    rlab_condition *c = rlab_condition_new(NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_rc(rlab_condition_acquire(c, 0), 0);
    ck_assert_rc(rlab_condition_acquire(c, RLAB_GUARD), 0);
    int other =
        (int)(intptr_t)rlab_test_join(rlab_test_spawn(try_acquire_once, c));
    ck_assert_rc(other, EAGAIN);
    ck_assert_rc(rlab_condition_release(c), 0);
    ck_assert_rc(rlab_condition_release(c), 0);
    ck_assert_rc(rlab_condition_release(c), EPERM);
    other = (int)(intptr_t)rlab_test_join(rlab_test_spawn(try_acquire_once, c));
    ck_assert_rc(other, 0);
    rlab_condition_free(c);
}
END_TEST

START_TEST(condition_over_a_lock_takes_that_lock_and_does_not_reenter)
{
    rlab_lock *lock = rlab_lock_new();
    rlab_condition *c = rlab_condition_new(lock);
    ck_assert_ptr_nonnull(c);
    ck_assert_rc(rlab_condition_acquire(c, RLAB_GUARD), 0);
    ck_assert(rlab_lock_locked(lock));
    ck_assert_rc(rlab_lock_acquire(lock, 0), EAGAIN);
    ck_assert_rc(rlab_condition_acquire(c, 0), EAGAIN);
    ck_assert_rc(rlab_condition_release(c), 0);
    ck_assert(!rlab_lock_locked(lock));
    ck_assert_rc(rlab_lock_acquire(lock, 0), 0);
    ck_assert_rc(rlab_condition_acquire(c, 0), EAGAIN);
    ck_assert_rc(rlab_lock_release(lock), 0);
    ck_assert_rc(rlab_condition_release(c), EPERM);
    rlab_condition_free(c);
    rlab_lock_free(lock);
}
END_TEST

START_TEST(condition_over_an_rlock_shares_its_owner_and_count)
{
    rlab_rlock *r = rlab_rlock_new();
    rlab_condition *c = rlab_condition_new_rlock(r);
    ck_assert_ptr_nonnull(c);
    ck_assert_rc(rlab_condition_acquire(c, RLAB_GUARD), 0);
    ck_assert(rlab_rlock_is_owned(r));
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    ck_assert_rc(rlab_rlock_acquire(r, 0), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 2);
    ck_assert_rc(rlab_condition_release(c), 0);
    ck_assert_int_eq(rlab_rlock_count(r), 1);
    ck_assert_rc(rlab_rlock_release(r), 0);
    ck_assert(!rlab_rlock_is_owned(r));
    ck_assert_rc(rlab_condition_release(c), EPERM);
    rlab_condition_free(c);
    rlab_rlock_free(r);
}
END_TEST

/* ---------------------------------------------------------------- EPERM --- */

static void assert_all_eperm(rlab_condition *c)
{
    ck_assert_rc(rlab_condition_wait(c, 0), EPERM);
    ck_assert_rc(rlab_condition_wait(c, 0.2), EPERM);
    ck_assert_rc(rlab_condition_wait_for(c, always_false, NULL, 0.2), EPERM);
    ck_assert_rc(rlab_condition_notify(c, 1), EPERM);
    ck_assert_rc(rlab_condition_notify(c, 0), EPERM);
    ck_assert_rc(rlab_condition_notify_all(c), EPERM);
}

START_TEST(wait_and_notify_without_the_lock_are_eperm)
{
    fixture f;
    fixture_init(&f, _i);
    assert_all_eperm(f.cond);
    ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
    ck_assert_rc(rlab_condition_release(f.cond), 0);
    assert_all_eperm(f.cond);
    /* The failed calls changed nothing: the lock is still free. */
    ck_assert_rc(rlab_condition_acquire(f.cond, 0), 0);
    release_exactly(&f, 1);
    fixture_fini(&f);
}
END_TEST

typedef struct {
    fixture *f;
    rlab_event *held, *let_go;
    int rc_acquire, rc_let_go, rc_release;
} holder_arg;

static void *hold_until_let_go(void *arg)
{
    holder_arg *h = arg;
    h->rc_acquire = rlab_condition_acquire(h->f->cond, RLAB_GUARD);
    rlab_event_set(h->held);
    h->rc_let_go = rlab_event_wait(h->let_go, RLAB_GUARD);
    h->rc_release = rlab_condition_release(h->f->cond);
    return NULL;
}

/* Loops over OVER_RLOCK and OWN_RLOCK. */
START_TEST(wait_and_notify_by_a_thread_not_owning_the_rlock_are_eperm)
{
    fixture f;
    fixture_init(&f, _i);
    holder_arg h = {
        .f = &f, .held = rlab_event_new(), .let_go = rlab_event_new()};
    rlab_thread *t = rlab_test_spawn(hold_until_let_go, &h);
    ck_assert_rc(rlab_event_wait(h.held, RLAB_GUARD), 0);
    assert_all_eperm(f.cond);
    rlab_event_set(h.let_go);
    rlab_test_join(t);
    ck_assert_rc(h.rc_acquire, 0);
    ck_assert_rc(h.rc_let_go, 0);
    ck_assert_rc(h.rc_release, 0);
    rlab_event_free(h.held);
    rlab_event_free(h.let_go);
    fixture_fini(&f);
}
END_TEST

static void *lock_and_exit(void *arg)
{
    return (void *)(intptr_t)rlab_lock_acquire(arg, RLAB_GUARD);
}

START_TEST(condition_over_a_lock_needs_it_locked_not_owned)
{
    /* Python's Condition(Lock()) can only ask whether the lock is locked. */
    rlab_lock *lock = rlab_lock_new();
    rlab_condition *c = rlab_condition_new(lock);
    ck_assert_ptr_nonnull(c);
    int rc =
        (int)(intptr_t)rlab_test_join(rlab_test_spawn(lock_and_exit, lock));
    ck_assert_rc(rc, 0);
    ck_assert_rc(rlab_condition_notify(c, 1), 0);
    ck_assert_rc(rlab_condition_notify_all(c), 0);
    ck_assert_rc(rlab_condition_wait_for(c, always_true, NULL, 0), 0);
    ck_assert_rc(rlab_condition_release(c), 0); /* any thread may release */
    ck_assert_rc(rlab_condition_notify(c, 1), EPERM);
    rlab_condition_free(c);
    rlab_lock_free(lock);
}
END_TEST

/* ------------------------------------------------------------ timeouts --- */

START_TEST(wait_times_out_and_holds_the_lock_again)
{
    fixture f;
    fixture_init(&f, _i);
    ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);

    double t0 = rlab_test_now();
    ck_assert_rc(rlab_condition_wait(f.cond, 0), ETIMEDOUT);
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
    ck_assert(holds(&f));

    t0 = rlab_test_now();
    ck_assert_rc(rlab_condition_wait(f.cond, 0.1), ETIMEDOUT);
    double dt = rlab_test_now() - t0;
    ck_assert_double_ge(dt, 0.1 - EARLY);
    ck_assert_double_lt(dt, 0.1 + LATE);
    ck_assert(holds(&f));
    release_exactly(&f, 1);
    fixture_fini(&f);
}
END_TEST

#define N_TIMED 5

typedef struct {
    fixture *f;
    int rc_acquire, rc_wait, rc_release;
    bool held;
    double dt;
} timed_arg;

static void *timed_waiter(void *arg)
{
    timed_arg *a = arg;
    a->rc_acquire = rlab_condition_acquire(a->f->cond, RLAB_GUARD);
    double t0 = rlab_test_now();
    a->rc_wait = rlab_condition_wait(a->f->cond, 0.2);
    a->dt = rlab_test_now() - t0;
    a->held = holds(a->f);
    a->rc_release = rlab_condition_release(a->f->cond);
    return NULL;
}

START_TEST(every_timed_waiter_times_out_by_itself)
{
    fixture f;
    fixture_init(&f, _i);
    timed_arg a[N_TIMED];
    rlab_thread *t[N_TIMED];
    for (int i = 0; i < N_TIMED; i++) {
        a[i] = (timed_arg){.f = &f};
        t[i] = rlab_test_spawn(timed_waiter, &a[i]);
    }
    for (int i = 0; i < N_TIMED; i++)
        rlab_test_join(t[i]);
    for (int i = 0; i < N_TIMED; i++) {
        ck_assert_rc(a[i].rc_acquire, 0);
        ck_assert_rc(a[i].rc_wait, ETIMEDOUT);
        ck_assert_double_ge(a[i].dt, 0.2 - EARLY);
        ck_assert_double_lt(a[i].dt, 0.2 + LATE);
        ck_assert(a[i].held);
        ck_assert_rc(a[i].rc_release, 0);
    }
    fixture_fini(&f);
}
END_TEST

/* -------------------------------------------------------------- notify --- */

#define N_WAITERS 5

typedef struct {
    fixture *f;
    tally arrived, woken;
    int woken_ids[N_WAITERS]; /* written under the condition's lock */
    int n_woken;
} notify_ctx;

typedef struct {
    notify_ctx *x;
    int id;
    int rc_acquire, rc_wait, rc_release;
    bool held;
} notify_arg;

static void *notified_waiter(void *arg)
{
    notify_arg *a = arg;
    notify_ctx *x = a->x;
    a->rc_acquire = rlab_condition_acquire(x->f->cond, RLAB_GUARD);
    tally_add(&x->arrived); /* still holding the lock */
    a->rc_wait = rlab_condition_wait(x->f->cond, RLAB_GUARD);
    a->held = holds(x->f);
    x->woken_ids[x->n_woken++] = a->id;
    tally_add(&x->woken);
    a->rc_release = rlab_condition_release(x->f->cond);
    return NULL;
}

static void notify_under_lock(fixture *f, long n)
{
    ck_assert_rc(rlab_condition_acquire(f->cond, RLAB_GUARD), 0);
    if (n < 0)
        ck_assert_rc(rlab_condition_notify_all(f->cond), 0);
    else
        ck_assert_rc(rlab_condition_notify(f->cond, n), 0);
    ck_assert_rc(rlab_condition_release(f->cond), 0);
}

static void notify_round(fixture *f, int round)
{
    notify_ctx x = {.f = f};
    tally_init(&x.arrived);
    tally_init(&x.woken);
    notify_arg a[N_WAITERS];
    rlab_thread *t[N_WAITERS];
    /* The waiters enter wait() one after another, so that "longest waiting
     * first" names who must wake. */
    for (int i = 0; i < N_WAITERS; i++) {
        a[i] = (notify_arg){.x = &x, .id = i};
        t[i] = rlab_test_spawn(notified_waiter, &a[i]);
        ck_assert_int_eq(tally_await(&x.arrived, i + 1, RLAB_GUARD), i + 1);
        ck_assert_rc(rlab_condition_acquire(f->cond, RLAB_GUARD), 0);
        ck_assert_rc(rlab_condition_release(f->cond), 0);
    }

    /* notify(2) and notify(0): exactly two wake, the two oldest. */
    ck_assert_rc(rlab_condition_acquire(f->cond, RLAB_GUARD), 0);
    ck_assert_rc(rlab_condition_notify(f->cond, 2), 0);
    ck_assert_rc(rlab_condition_notify(f->cond, 0), 0);
    ck_assert_rc(rlab_condition_release(f->cond), 0);
    ck_assert_int_eq(tally_await(&x.woken, 2, RLAB_GUARD), 2);
    /* Time passing is what is tested here: nobody else wakes. */
    ck_assert_msg(tally_await(&x.woken, 3, 0.1) == 2,
                  "%s: notify(2) woke more than two waiters",
                  kind_name[f->kind]);
    ck_assert_int_eq(x.woken_ids[0] + x.woken_ids[1], 0 + 1);
    ck_assert_int_ne(x.woken_ids[0], x.woken_ids[1]);

    notify_under_lock(f, 1);
    ck_assert_int_eq(tally_await(&x.woken, 3, RLAB_GUARD), 3);
    ck_assert_int_eq(x.woken_ids[2], 2);

    /* The rest: notify_all, or a notify(n) larger than the crowd. */
    notify_under_lock(f, round == 0 ? -1 : 100);
    ck_assert_int_eq(tally_await(&x.woken, N_WAITERS, RLAB_GUARD), N_WAITERS);
    for (int i = 0; i < N_WAITERS; i++)
        rlab_test_join(t[i]);
    for (int i = 0; i < N_WAITERS; i++) {
        ck_assert_rc(a[i].rc_acquire, 0);
        ck_assert_rc(a[i].rc_wait, 0);
        ck_assert(a[i].held);
        ck_assert_rc(a[i].rc_release, 0);
    }
    tally_destroy(&x.arrived);
    tally_destroy(&x.woken);
}

START_TEST(notify_n_wakes_exactly_n_longest_waiting_first)
{
    fixture f;
    fixture_init(&f, _i);
    notify_round(&f, 0);
    notify_round(&f, 1); /* again: the internal state is still sound */
    fixture_fini(&f);
}
END_TEST

START_TEST(notify_without_waiters_is_harmless_and_not_remembered)
{
    fixture f;
    fixture_init(&f, _i);
    ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
    ck_assert_rc(rlab_condition_notify(f.cond, 1), 0);
    ck_assert_rc(rlab_condition_notify(f.cond, 5), 0);
    ck_assert_rc(rlab_condition_notify_all(f.cond), 0);
    ck_assert_rc(rlab_condition_wait(f.cond, 0.05), ETIMEDOUT);
    release_exactly(&f, 1);
    fixture_fini(&f);
}
END_TEST

/* ------------------------------------------------------------ wait_for --- */

typedef struct {
    fixture *f;
    bool value;
    int calls;
    bool held_each_time;
} pred_ctx;

static bool counted_pred(void *arg)
{
    pred_ctx *p = arg;
    p->calls++;
    if (!holds(p->f))
        p->held_each_time = false;
    return p->value;
}

START_TEST(wait_for_a_true_predicate_returns_at_once_with_the_lock_held)
{
    fixture f;
    fixture_init(&f, _i);
    pred_ctx p = {.f = &f, .value = true, .held_each_time = true};
    ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
    ck_assert_rc(rlab_condition_wait_for(f.cond, counted_pred, &p, 0), 0);
    ck_assert_int_eq(p.calls, 1);
    ck_assert_rc(rlab_condition_wait_for(f.cond, counted_pred, &p, RLAB_GUARD),
                 0);
    ck_assert_int_eq(p.calls, 2);
    /* Safe without a deadline: the predicate is checked before any wait. */
    ck_assert_rc(
        rlab_condition_wait_for(f.cond, counted_pred, &p, RLAB_FOREVER), 0);
    ck_assert_int_eq(p.calls, 3);

    p.value = false;
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_condition_wait_for(f.cond, counted_pred, &p, 0),
                 ETIMEDOUT);
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
    ck_assert_int_ge(p.calls, 4);
    ck_assert(p.held_each_time);
    release_exactly(&f, 1);
    fixture_fini(&f);
}
END_TEST

typedef struct {
    fixture *f;
    tally arrived;
    int state;  /* under the condition's lock */
    int calls;  /* evaluations of the predicate */
    int target; /* the predicate is state == target */
    double timeout;
    int rc_acquire, rc_wait, rc_release, seen_state;
    bool held;
    double dt;
} waitfor_ctx;

static bool state_reached(void *arg)
{
    waitfor_ctx *w = arg;
    w->calls++;
    return w->state == w->target;
}

static void *waitfor_waiter(void *arg)
{
    waitfor_ctx *w = arg;
    w->rc_acquire = rlab_condition_acquire(w->f->cond, RLAB_GUARD);
    tally_add(&w->arrived);
    double t0 = rlab_test_now();
    w->rc_wait =
        rlab_condition_wait_for(w->f->cond, state_reached, w, w->timeout);
    w->dt = rlab_test_now() - t0;
    w->seen_state = w->state;
    w->held = holds(w->f);
    w->rc_release = rlab_condition_release(w->f->cond);
    return NULL;
}

/* The waiter waits for state == 4; the main thread bumps the state `bumps`
 * times, notifying once per bump, once the waiter is inside wait_for. */
static void run_waitfor(waitfor_ctx *w, int bumps)
{
    tally_init(&w->arrived);
    rlab_thread *t = rlab_test_spawn(waitfor_waiter, w);
    ck_assert_int_eq(tally_await(&w->arrived, 1, RLAB_GUARD), 1);
    for (int i = 0; i < bumps; i++) {
        ck_assert_rc(rlab_condition_acquire(w->f->cond, RLAB_GUARD), 0);
        w->state++;
        ck_assert_rc(rlab_condition_notify(w->f->cond, 1), 0);
        ck_assert_rc(rlab_condition_release(w->f->cond), 0);
    }
    rlab_test_join(t);
    tally_destroy(&w->arrived);
    ck_assert_rc(w->rc_acquire, 0);
    ck_assert(w->held);
    ck_assert_rc(w->rc_release, 0);
    /* The first evaluation found 0 and the first notify found it waiting. */
    ck_assert_int_ge(w->calls, 2);
}

START_TEST(wait_for_returns_once_notifies_make_the_predicate_true)
{
    fixture f;
    fixture_init(&f, _i);
    waitfor_ctx w = {.f = &f, .target = 4, .timeout = RLAB_GUARD};
    run_waitfor(&w, 4);
    ck_assert_rc(w.rc_wait, 0);
    ck_assert_double_lt(w.dt, PROMPT);
    ck_assert_int_eq(w.seen_state, 4);
    fixture_fini(&f);
}
END_TEST

START_TEST(wait_for_times_out_when_the_predicate_stays_false)
{
    fixture f;
    fixture_init(&f, _i);
    waitfor_ctx w = {.f = &f, .target = 4, .timeout = 0.3};
    run_waitfor(&w, 3);
    ck_assert_rc(w.rc_wait, ETIMEDOUT);
    ck_assert_int_eq(w.seen_state, 3);
    ck_assert_double_ge(w.dt, 0.3 - EARLY);
    ck_assert_double_lt(w.dt, 0.3 + LATE);
    fixture_fini(&f);
}
END_TEST

/* ----------------------------------------------------- recursive RLock --- */

typedef struct {
    fixture *f;
    int rc_acquire, rc_notify, rc_release;
    long count_seen;
} intruder_arg;

static void *acquire_during_wait(void *arg)
{
    intruder_arg *a = arg;
    /* Only possible while the main thread's wait() has released every
     * level of the recursive lock. */
    a->rc_acquire = rlab_condition_acquire(a->f->cond, RLAB_GUARD);
    a->count_seen = a->f->rlock ? rlab_rlock_count(a->f->rlock) : 1;
    a->rc_notify = rlab_condition_notify(a->f->cond, 1);
    a->rc_release = rlab_condition_release(a->f->cond);
    return NULL;
}

/* Loops over OVER_RLOCK and OWN_RLOCK. */
START_TEST(wait_releases_every_level_of_the_rlock_and_restores_them)
{
    fixture f;
    fixture_init(&f, _i);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
    intruder_arg a = {.f = &f};
    rlab_thread *t = rlab_test_spawn(acquire_during_wait, &a);
    ck_assert_rc(rlab_condition_wait(f.cond, RLAB_GUARD), 0);
    if (f.rlock)
        ck_assert_int_eq(rlab_rlock_count(f.rlock), 3);
    rlab_test_join(t);
    ck_assert_rc(a.rc_acquire, 0);
    ck_assert_int_eq(a.count_seen, 1);
    ck_assert_rc(a.rc_notify, 0);
    ck_assert_rc(a.rc_release, 0);

    /* A timed-out wait restores every level too. */
    ck_assert_rc(rlab_condition_wait(f.cond, 0.05), ETIMEDOUT);
    release_exactly(&f, 3);
    fixture_fini(&f);
}
END_TEST

/* ------------------------------------------------------------ arguments --- */

START_TEST(bad_arguments_are_einval_and_change_nothing)
{
    fixture f;
    fixture_init(&f, _i);
    ck_assert_rc(rlab_condition_acquire(f.cond, NAN), EINVAL);
    ck_assert_rc(rlab_condition_acquire(f.cond, -2.0), EINVAL);
    ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
    ck_assert_rc(rlab_condition_notify(f.cond, -1), EINVAL);
    ck_assert_rc(rlab_condition_notify(f.cond, LONG_MIN), EINVAL);
    ck_assert_rc(rlab_condition_wait(f.cond, NAN), EINVAL);
    ck_assert_rc(rlab_condition_wait(f.cond, -2.0), EINVAL);
    ck_assert_rc(rlab_condition_wait(f.cond, -INFINITY), EINVAL);
    ck_assert_rc(rlab_condition_wait_for(f.cond, NULL, NULL, 0), EINVAL);
    ck_assert_rc(rlab_condition_wait_for(f.cond, always_true, NULL, NAN),
                 EINVAL);
    ck_assert_rc(rlab_condition_wait_for(f.cond, always_true, NULL, -0.5),
                 EINVAL);
    release_exactly(&f, 1);
    fixture_fini(&f);
}
END_TEST

START_TEST(null_handles_are_einval)
{
    ck_assert_rc(rlab_condition_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_condition_release(NULL), EINVAL);
    ck_assert_rc(rlab_condition_wait(NULL, 0), EINVAL);
    ck_assert_rc(rlab_condition_wait_for(NULL, always_true, NULL, 0), EINVAL);
    ck_assert_rc(rlab_condition_notify(NULL, 1), EINVAL);
    ck_assert_rc(rlab_condition_notify_all(NULL), EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_condition_new_rlock(NULL));
    ck_assert_int_eq(errno, EINVAL);
    rlab_condition_free(NULL);
}
END_TEST

/* --------------------------------------------------------------- storms --- */

#define N_CONSUMERS 4

typedef struct {
    fixture *f;
    long items, consumed, total; /* under the condition's lock */
    bool closed;
    int failures;
    double longest_wait;
    tally all_consumed;
} storm_ctx;

static bool item_or_closed(void *arg)
{
    storm_ctx *s = arg;
    return s->items > 0 || s->closed;
}

static void *storm_consumer(void *arg)
{
    storm_ctx *s = arg;
    rlab_condition *c = s->f->cond;
    for (;;) {
        if (rlab_condition_acquire(c, RLAB_GUARD) != 0)
            return (void *)1;
        double t0 = rlab_test_now();
        int rc = rlab_condition_wait_for(c, item_or_closed, s, RLAB_GUARD);
        double dt = rlab_test_now() - t0;
        if (dt > s->longest_wait)
            s->longest_wait = dt;
        if (rc != 0) {
            s->failures++;
            rlab_condition_release(c);
            return NULL;
        }
        if (s->items == 0) { /* closed and drained */
            rlab_condition_release(c);
            return NULL;
        }
        s->items--;
        if (++s->consumed == s->total)
            tally_add(&s->all_consumed);
        rlab_condition_release(c); /* one item per turn */
    }
}

START_TEST(notify_per_item_loses_no_wake_up_among_consumers)
{
    fixture f;
    fixture_init(&f, _i);
    storm_ctx s = {.f = &f, .total = rlab_test_scaled(5000)};
    tally_init(&s.all_consumed);
    rlab_thread *t[N_CONSUMERS];
    for (int i = 0; i < N_CONSUMERS; i++)
        t[i] = rlab_test_spawn(storm_consumer, &s);
    for (long i = 0; i < s.total; i++) {
        ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
        s.items++;
        ck_assert_rc(rlab_condition_notify(f.cond, 1), 0);
        ck_assert_rc(rlab_condition_release(f.cond), 0);
    }
    /* Not closed yet: a lost wake-up leaves an item behind and fails here. */
    ck_assert_msg(tally_await(&s.all_consumed, 1, RLAB_GUARD) == 1,
                  "%s: items left unconsumed (a wake-up was lost)",
                  kind_name[_i]);
    ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
    s.closed = true;
    ck_assert_rc(rlab_condition_notify_all(f.cond), 0);
    ck_assert_rc(rlab_condition_release(f.cond), 0);
    for (int i = 0; i < N_CONSUMERS; i++)
        ck_assert_ptr_null(rlab_test_join(t[i]));
    ck_assert_int_eq(s.consumed, s.total);
    ck_assert_int_eq(s.items, 0);
    ck_assert_int_eq(s.failures, 0);
    ck_assert_double_lt(s.longest_wait, PROMPT);
    tally_destroy(&s.all_consumed);
    fixture_fini(&f);
}
END_TEST

typedef struct {
    fixture *f;
    tally parked;       /* one per entry into wait(), reported under the lock */
    long tokens, taken; /* under the condition's lock */
    bool closed;
    int empty_wakes, failed_waits;
} lockstep_ctx;

static void *lockstep_consumer(void *arg)
{
    lockstep_ctx *x = arg;
    rlab_condition *c = x->f->cond;
    if (rlab_condition_acquire(c, RLAB_GUARD) != 0)
        return (void *)1;
    for (;;) {
        tally_add(&x->parked);
        if (rlab_condition_wait(c, RLAB_GUARD) != 0) {
            x->failed_waits++;
            break;
        }
        if (x->closed)
            break;
        if (x->tokens == 0) { /* woken by nobody's notify */
            x->empty_wakes++;
            continue;
        }
        x->tokens--;
        x->taken++;
    }
    rlab_condition_release(c);
    return NULL;
}

START_TEST(notify_n_in_lockstep_wakes_exactly_n_every_round)
{
    fixture f;
    fixture_init(&f, _i);
    lockstep_ctx x = {.f = &f};
    tally_init(&x.parked);
    rlab_thread *t[N_CONSUMERS];
    for (int i = 0; i < N_CONSUMERS; i++)
        t[i] = rlab_test_spawn(lockstep_consumer, &x);
    long rounds = rlab_test_scaled(300), parked = N_CONSUMERS, sent = 0;
    for (long r = 0; r < rounds; r++) {
        /* Every consumer is back in wait(): all woken ones took a token. */
        ck_assert_msg(tally_await(&x.parked, parked, RLAB_GUARD) >= parked,
                      "%s: round %ld: a notify woke nobody", kind_name[_i], r);
        ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
        ck_assert_int_eq(x.tokens, 0);
        ck_assert_int_eq(x.taken, sent);
        long n = 1 + r % N_CONSUMERS;
        x.tokens = n;
        ck_assert_rc(rlab_condition_notify(f.cond, n), 0);
        ck_assert_rc(rlab_condition_release(f.cond), 0);
        parked += n;
        sent += n;
    }
    ck_assert_int_ge(tally_await(&x.parked, parked, RLAB_GUARD), parked);
    ck_assert_rc(rlab_condition_acquire(f.cond, RLAB_GUARD), 0);
    ck_assert_int_eq(x.tokens, 0);
    ck_assert_int_eq(x.taken, sent);
    x.closed = true;
    ck_assert_rc(rlab_condition_notify_all(f.cond), 0);
    ck_assert_rc(rlab_condition_release(f.cond), 0);
    for (int i = 0; i < N_CONSUMERS; i++)
        ck_assert_ptr_null(rlab_test_join(t[i]));
    ck_assert_int_eq(x.empty_wakes, 0);
    ck_assert_int_eq(x.failed_waits, 0);
    tally_destroy(&x.parked);
    fixture_fini(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("condition");

    TCase *tc = tcase_create("locks");
    tcase_add_test(tc, default_condition_has_its_own_reentrant_rlock);
    tcase_add_test(tc,
                   condition_over_a_lock_takes_that_lock_and_does_not_reenter);
    tcase_add_test(tc, condition_over_an_rlock_shares_its_owner_and_count);
    tcase_add_loop_test(tc, wait_and_notify_without_the_lock_are_eperm, 0,
                        N_KINDS);
    tcase_add_loop_test(
        tc, wait_and_notify_by_a_thread_not_owning_the_rlock_are_eperm,
        OVER_RLOCK, N_KINDS);
    tcase_add_test(tc, condition_over_a_lock_needs_it_locked_not_owned);
    tcase_add_loop_test(tc, bad_arguments_are_einval_and_change_nothing, 0,
                        N_KINDS);
    tcase_add_test(tc, null_handles_are_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_set_timeout(tc, 120); /* beyond RLAB_GUARD: a guard fails first */
    tcase_add_loop_test(tc, wait_times_out_and_holds_the_lock_again, 0,
                        N_KINDS);
    tcase_add_loop_test(tc, every_timed_waiter_times_out_by_itself, 0, N_KINDS);
    tcase_add_loop_test(tc, notify_n_wakes_exactly_n_longest_waiting_first, 0,
                        N_KINDS);
    tcase_add_loop_test(
        tc, notify_without_waiters_is_harmless_and_not_remembered, 0, N_KINDS);
    tcase_add_loop_test(
        tc, wait_for_a_true_predicate_returns_at_once_with_the_lock_held, 0,
        N_KINDS);
    tcase_add_loop_test(
        tc, wait_for_returns_once_notifies_make_the_predicate_true, 0, N_KINDS);
    tcase_add_loop_test(tc, wait_for_times_out_when_the_predicate_stays_false,
                        0, N_KINDS);
    tcase_add_loop_test(
        tc, wait_releases_every_level_of_the_rlock_and_restores_them,
        OVER_RLOCK, N_KINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("storm");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, notify_per_item_loses_no_wake_up_among_consumers, 0,
                        N_KINDS);
    tcase_add_loop_test(tc, notify_n_in_lockstep_wakes_exactly_n_every_round, 0,
                        N_KINDS);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
