/*
 * condition.c - threading.Condition over a Lock or an RLock.
 *
 * As in CPython, each waiter parks on a private word and sits in a FIFO
 * list; notify(n) hands the first n waiters a wake-up, so exactly n wake
 * when n or more wait.  The list is touched only by threads holding the
 * condition's lock.  A waiter's node lives on its own stack: it cannot leave
 * wait() before it holds the lock again, and the notifier holds the lock
 * while it signals, so the node is alive when signalled.
 */
#include <stdlib.h>

#include "internal.h"
#include "racelab/threading.h"

typedef struct waiter {
    struct waiter *next, *prev;
    atomic_uint signalled;
} waiter;

struct rlab_condition {
    rlab_lock *lock;   /* exactly one of lock and rlock is set */
    rlab_rlock *rlock;
    bool own_rlock;
    waiter *head, *tail;
};

static rlab_condition *make(rlab_lock *lock, rlab_rlock *rlock, bool own)
{
    rlab_condition *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lock = lock;
    c->rlock = rlock;
    c->own_rlock = own;
    return c;
}

rlab_condition *rlab_condition_new(rlab_lock *lock)
{
    if (lock)
        return make(lock, NULL, false);
    rlab_rlock *r = rlab_rlock_new();
    if (!r)
        return NULL;
    rlab_condition *c = make(NULL, r, true);
    if (!c)
        rlab_rlock_free(r);
    return c;
}

rlab_condition *rlab_condition_new_rlock(rlab_rlock *rlock)
{
    if (!rlock) {
        errno = EINVAL;
        return NULL;
    }
    return make(NULL, rlock, false);
}

void rlab_condition_free(rlab_condition *c)
{
    if (!c)
        return;
    if (c->own_rlock)
        rlab_rlock_free(c->rlock);
    free(c);
}

int rlab_condition_acquire(rlab_condition *c, double timeout)
{
    if (!c)
        return EINVAL;
    return c->lock ? rlab_lock_acquire(c->lock, timeout)
                   : rlab_rlock_acquire(c->rlock, timeout);
}

int rlab_condition_release(rlab_condition *c)
{
    if (!c)
        return EINVAL;
    return c->lock ? rlab_lock_release(c->lock)
                   : rlab_rlock_release(c->rlock);
}

/* Python's _is_owned(): an RLock knows its owner; a plain Lock only knows
 * whether it is locked. */
static bool held(rlab_condition *c)
{
    return c->lock ? rlab_lock_locked(c->lock)
                   : rlab_rlock_is_owned(c->rlock);
}

static void unlink_waiter(rlab_condition *c, waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        c->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        c->tail = w->prev;
    w->next = w->prev = NULL;
}

static int wait_until(rlab_condition *c, const rlab_deadline *d)
{
    waiter w = {.next = NULL, .prev = c->tail};
    atomic_init(&w.signalled, 0);
    if (c->tail)
        c->tail->next = &w;
    else
        c->head = &w;
    c->tail = &w;

    long saved = 0;
    if (c->lock)
        rlab_lock_release(c->lock);
    else
        saved = rlab__rlock_release_save(c->rlock);

    while (!atomic_load_explicit(&w.signalled, memory_order_acquire))
        if (rlab__futex_wait(&w.signalled, 0, d) == ETIMEDOUT)
            break;

    if (c->lock)
        rlab_lock_acquire(c->lock, RLAB_FOREVER);
    else
        rlab__rlock_acquire_restore(c->rlock, saved);

    /* With the lock back, the node's fate is settled: a notifier either
     * took it off the list (and set the flag) or it is still listed. */
    if (atomic_load_explicit(&w.signalled, memory_order_acquire))
        return 0;
    unlink_waiter(c, &w);
    return ETIMEDOUT;
}

int rlab_condition_wait(rlab_condition *c, double timeout)
{
    rlab_deadline d;
    if (!c || rlab__deadline(timeout, &d))
        return EINVAL;
    if (!held(c))
        return EPERM;
    return wait_until(c, &d);
}

int rlab_condition_wait_for(rlab_condition *c, bool (*pred)(void *),
                            void *arg, double timeout)
{
    rlab_deadline d;
    if (!c || !pred || rlab__deadline(timeout, &d))
        return EINVAL;
    if (!held(c))
        return EPERM;
    /* As CPython: the predicate is checked after every wake-up, including
     * the one at the deadline, before the timeout is reported. */
    while (!pred(arg)) {
        if (d.kind == RLAB_WAIT_TRY)
            return ETIMEDOUT;
        if (wait_until(c, &d) == ETIMEDOUT)
            return pred(arg) ? 0 : ETIMEDOUT;
    }
    return 0;
}

int rlab_condition_notify(rlab_condition *c, long n)
{
    if (!c || n < 0)
        return EINVAL;
    if (!held(c))
        return EPERM;
    while (n-- > 0 && c->head) {
        waiter *w = c->head;
        unlink_waiter(c, w);
        atomic_store_explicit(&w->signalled, 1, memory_order_release);
        rlab__futex_wake(&w->signalled, 1);
    }
    return 0;
}

int rlab_condition_notify_all(rlab_condition *c)
{
    return rlab_condition_notify(c, c ? (long)((~0UL) >> 1) : 0);
}
