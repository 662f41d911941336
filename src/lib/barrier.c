/*
 * barrier.c - threading.Barrier.
 *
 * CPython's state machine on a pthread mutex and condition variable (clock:
 * CLOCK_MONOTONIC): FILLING while threads arrive, DRAINING while the cycle's
 * waiters leave, RESETTING while waiters leave a reset, BROKEN after a
 * timeout, an abort or a failing action.  A new cycle cannot begin until the
 * previous one has drained, so arrival indices never mix between cycles.
 * Each completed cycle bumps `cycle`, and a waiter whose cycle completed
 * returns 0 even if an abort lands before it wakes: a cycle's outcome is
 * fixed when its last party arrives, not when each waiter gets to run.
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"
#include "racelab/threading.h"

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

struct rlab_barrier {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long parties, count;
    unsigned long cycle; /* completed cycles */
    int state;
    int (*action)(void *);
    void *arg;
    double timeout;
};

rlab_barrier *rlab_barrier_new(long parties, int (*action)(void *), void *arg,
                               double timeout)
{
    rlab_deadline probe;
    if (parties < 1 || rlab__deadline(timeout, &probe)) {
        errno = EINVAL;
        return NULL;
    }
    rlab_barrier *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->mu, NULL);
    b->parties = parties;
    b->action = action;
    b->arg = arg;
    b->timeout = timeout;
    return b;
}

void rlab_barrier_free(rlab_barrier *b)
{
    if (!b)
        return;
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void break_it(rlab_barrier *b)
{
    b->state = BROKEN;
    pthread_cond_broadcast(&b->cv);
}

/* Waits on the condition until `done(b)` or the deadline; true if done. */
static bool wait_state(rlab_barrier *b, bool (*done)(rlab_barrier *),
                       const rlab_deadline *d)
{
    while (!done(b)) {
        if (d->kind == RLAB_WAIT_TRY)
            return false;
        if (d->kind == RLAB_WAIT_FOREVER)
            pthread_cond_wait(&b->cv, &b->mu);
        else if (pthread_cond_timedwait(&b->cv, &b->mu, &d->at) == ETIMEDOUT)
            return done(b);
    }
    return true;
}

static bool may_enter(rlab_barrier *b)
{
    return b->state != DRAINING && b->state != RESETTING;
}

static bool cycle_over(rlab_barrier *b)
{
    return b->state != FILLING;
}

int rlab_barrier_wait(rlab_barrier *b, double timeout, long *index)
{
    if (!b)
        return EINVAL;
    rlab_deadline d, forever = {.kind = RLAB_WAIT_FOREVER};
    if (rlab__deadline(timeout == RLAB_FOREVER ? b->timeout : timeout, &d))
        return EINVAL;
    pthread_mutex_lock(&b->mu);
    wait_state(b, may_enter, &forever); /* the previous cycle drains */
    if (b->state == BROKEN) {
        pthread_mutex_unlock(&b->mu);
        return RLAB_EBROKEN;
    }
    long me = b->count++;
    unsigned long my_cycle = b->cycle;
    int rc = 0;
    if (me + 1 == b->parties) {
        if (b->action && b->action(b->arg) != 0) {
            break_it(b);
            rc = RLAB_EBROKEN;
        } else {
            b->cycle++;
            b->state = DRAINING;
            pthread_cond_broadcast(&b->cv);
        }
    } else if (!wait_state(b, cycle_over, &d)) {
        break_it(b); /* a timeout breaks the barrier, as in Python */
        rc = RLAB_EBROKEN;
    } else if (b->cycle == my_cycle) {
        rc = RLAB_EBROKEN; /* broken or reset while waiting */
    }
    if (--b->count == 0 && (b->state == DRAINING || b->state == RESETTING)) {
        b->state = FILLING;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (rc == 0 && index)
        *index = me;
    return rc;
}

void rlab_barrier_abort(rlab_barrier *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    break_it(b);
    pthread_mutex_unlock(&b->mu);
}

void rlab_barrier_reset(rlab_barrier *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    if (b->count > 0) {
        if (b->state == FILLING || b->state == BROKEN)
            b->state = RESETTING;
    } else {
        b->state = FILLING;
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

bool rlab_barrier_broken(rlab_barrier *b)
{
    if (!b)
        return false;
    pthread_mutex_lock(&b->mu);
    bool broken = b->state == BROKEN;
    pthread_mutex_unlock(&b->mu);
    return broken;
}

long rlab_barrier_n_waiting(rlab_barrier *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->mu);
    long n = b->state == FILLING ? b->count : 0;
    pthread_mutex_unlock(&b->mu);
    return n;
}

long rlab_barrier_parties(rlab_barrier *b)
{
    return b ? b->parties : 0;
}
