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
    atomic_uint waiters;
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
    if (rlab__genword_set(&e->word) && atomic_load(&e->waiters) > 0)
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
    return e ? rlab__genword_wait(&e->word, &e->waiters, timeout, false)
             : EINVAL;
}
