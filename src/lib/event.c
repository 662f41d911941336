/*
 * event.c - threading.Event.
 *
 * One futex word holds the flag (bit 0) and a generation that every set()
 * advances.  A waiter parks on the word it saw; it returns 0 when the flag
 * is set or the generation moved, so a set() followed at once by a clear()
 * still releases every thread that was waiting, as in CPython.  The waiter
 * count and the word are sequentially consistent, so set() skips the futex
 * wake only when nobody can be parked.
 */
#include <limits.h>
#include <stdlib.h>

#include "internal.h"
#include "racelab/threading.h"

struct rlab_event {
    atomic_uint word;
    atomic_int waiters;
};

rlab_event *rlab_event_new(void)
{
    rlab_event *e = malloc(sizeof *e);
    if (!e)
        return NULL;
    atomic_init(&e->word, 0);
    atomic_init(&e->waiters, 0);
    return e;
}

void rlab_event_free(rlab_event *e)
{
    free(e);
}

void rlab_event_set(rlab_event *e)
{
    if (!e)
        return;
    unsigned w = atomic_load(&e->word);
    do {
        if (w & 1)
            return;
    } while (!atomic_compare_exchange_weak(&e->word, &w, (w + 2) | 1));
    if (atomic_load(&e->waiters) > 0)
        rlab__futex_wake(&e->word, INT_MAX);
}

void rlab_event_clear(rlab_event *e)
{
    if (e)
        atomic_fetch_and(&e->word, ~1u);
}

bool rlab_event_is_set(rlab_event *e)
{
    return e && (atomic_load_explicit(&e->word, memory_order_acquire) & 1);
}

int rlab_event_wait(rlab_event *e, double timeout)
{
    rlab_deadline d;
    if (!e || rlab__deadline(timeout, &d))
        return EINVAL;
    unsigned seen = atomic_load_explicit(&e->word, memory_order_acquire);
    if (seen & 1)
        return 0;
    if (d.kind == RLAB_WAIT_TRY)
        return ETIMEDOUT;
    atomic_fetch_add(&e->waiters, 1);
    seen = atomic_load(&e->word);
    int rc = 0;
    /* Only a set() changes the generation bits; a clear() of a clear event
     * changes nothing, so any change of the word means "was set". */
    while (!(seen & 1) && atomic_load(&e->word) == seen) {
        if (rlab__futex_wait(&e->word, seen, &d) == ETIMEDOUT) {
            unsigned now = atomic_load(&e->word);
            rc = (now & 1) || now != seen ? 0 : ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&e->waiters, 1);
    return rc;
}
