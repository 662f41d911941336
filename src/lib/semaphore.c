/*
 * semaphore.c - threading.Semaphore and threading.BoundedSemaphore.
 *
 * The count lives in an atomic long: acquire is a CAS that takes one unit
 * when there is one.  Sleepers park on a separate 32-bit sequence word, and
 * announce themselves in `sleepers` so release only pays for a futex wake
 * when someone may be parked.  The sleeper count and the value are both
 * sequentially consistent: a release either sees the sleeper, or the sleeper
 * sees the released unit before it parks (and the sequence bump makes a
 * park on a stale word return at once).
 */
#include <limits.h>
#include <stdlib.h>

#include "internal.h"
#include "racelab/threading.h"

struct rlab_semaphore {
    atomic_long value;
    atomic_uint seq;
    atomic_int sleepers;
    long bound; /* initial value of a BoundedSemaphore, -1 if unbounded */
};

static rlab_semaphore *make(long value, bool bounded)
{
    if (value < 0) {
        errno = EINVAL;
        return NULL;
    }
    rlab_semaphore *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    atomic_init(&s->value, value);
    atomic_init(&s->seq, 0);
    atomic_init(&s->sleepers, 0);
    s->bound = bounded ? value : -1;
    return s;
}

rlab_semaphore *rlab_semaphore_new(long value)
{
    return make(value, false);
}

rlab_semaphore *rlab_bounded_semaphore_new(long value)
{
    return make(value, true);
}

void rlab_semaphore_free(rlab_semaphore *s)
{
    free(s);
}

static bool try_take(rlab_semaphore *s)
{
    /* seq_cst: this load pairs with the sleeper count (see above). */
    long v = atomic_load(&s->value);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

int rlab_semaphore_acquire(rlab_semaphore *s, double timeout)
{
    if (!s || !rlab__timeout_ok(timeout))
        return EINVAL;
    if (try_take(s))
        return 0;
    rlab_deadline d;
    rlab__deadline(timeout, &d);
    if (d.kind == RLAB_WAIT_TRY)
        return EAGAIN;
    atomic_fetch_add(&s->sleepers, 1);
    int rc = 0;
    for (;;) {
        unsigned seq = atomic_load(&s->seq);
        if (try_take(s))
            break;
        if (rlab__futex_wait(&s->seq, seq, &d) == ETIMEDOUT) {
            rc = try_take(s) ? 0 : ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&s->sleepers, 1);
    return rc;
}

int rlab_semaphore_release(rlab_semaphore *s, long n)
{
    if (!s || n < 1)
        return EINVAL;
    long v = atomic_load_explicit(&s->value, memory_order_relaxed);
    do {
        if (v > LONG_MAX - n || (s->bound >= 0 && v + n > s->bound))
            return EOVERFLOW;
    } while (!atomic_compare_exchange_weak_explicit(
        &s->value, &v, v + n, memory_order_seq_cst, memory_order_relaxed));
    if (atomic_load(&s->sleepers) > 0) {
        atomic_fetch_add(&s->seq, 1);
        rlab__futex_wake(&s->seq, n > INT32_MAX ? INT32_MAX : (int)n);
    }
    return 0;
}

long rlab_semaphore_value(rlab_semaphore *s)
{
    return s ? atomic_load_explicit(&s->value, memory_order_relaxed) : 0;
}
