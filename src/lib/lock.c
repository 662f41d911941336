/*
 * lock.c - threading.Lock.
 *
 * A three-state futex word (0 free, 1 held, 2 held with possible sleepers).
 * Python lets any thread release a Lock, which a pthread mutex forbids and
 * which ThreadSanitizer's mutex model (__tsan_mutex_*) would report as an
 * unlock by the wrong thread; so the Lock is not annotated as a mutex.  The
 * acquire CAS and the release exchange are C11 acquire/release atomics, and
 * ThreadSanitizer derives the happens-before edge of every hand-off from
 * them: data guarded by a Lock is not reported, unguarded data still is.
 */
#include <stdlib.h>

#include "internal.h"
#include "racelab/threading.h"

struct rlab_lock {
    atomic_uint word;
};

/* Spins before sleeping: a holder on another core usually releases within
 * a few hundred cycles, far cheaper than a futex round trip. */
#define RLAB_SPIN 100

int rlab__word_lock_slow(atomic_uint *word, const rlab_deadline *d)
{
    unsigned c;
    for (int i = 0; i < RLAB_SPIN; i++) {
        rlab__cpu_relax();
        c = atomic_load_explicit(word, memory_order_relaxed);
        if (c == 0 && atomic_compare_exchange_weak_explicit(
                          word, &c, 1, memory_order_acquire,
                          memory_order_relaxed))
            return 0;
        if (c == 2)
            break;
    }
    for (;;) {
        if (atomic_exchange_explicit(word, 2, memory_order_acquire) == 0)
            return 0;
        if (rlab__futex_wait(word, 2, d) == ETIMEDOUT) {
            c = 0; /* a last try, so a release at the deadline is not lost */
            return atomic_compare_exchange_strong_explicit(
                       word, &c, 2, memory_order_acquire, memory_order_relaxed)
                       ? 0
                       : ETIMEDOUT;
        }
    }
}

rlab_lock *rlab_lock_new(void)
{
    rlab_lock *l = malloc(sizeof *l);
    if (!l)
        return NULL;
    atomic_init(&l->word, 0);
    return l;
}

void rlab_lock_free(rlab_lock *l)
{
    free(l);
}

int rlab_lock_acquire(rlab_lock *l, double timeout)
{
    if (!l || !rlab__timeout_ok(timeout))
        return EINVAL;
    /* Uncontended: one CAS, no clock reading. */
    if (rlab__word_try(&l->word))
        return 0;
    rlab_deadline d;
    rlab__deadline(timeout, &d);
    return d.kind == RLAB_WAIT_TRY ? EAGAIN : rlab__word_lock_slow(&l->word, &d);
}

int rlab_lock_release(rlab_lock *l)
{
    return l ? rlab__word_unlock(&l->word) : EINVAL;
}

bool rlab_lock_locked(rlab_lock *l)
{
    return l && atomic_load_explicit(&l->word, memory_order_acquire) != 0;
}
