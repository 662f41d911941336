/*
 * simple_queue.c - queue.SimpleQueue.
 *
 * An unbounded FIFO with two locks: the chunked two-lock queue of
 * chunkq.h, whose producers publish item n by storing put_count = n + 1
 * after writing the slot and whose consumers read put_count with acquire
 * order and cache it.
 *
 * Sleeping consumers count themselves in `sleepers` and park on the `seq`
 * word.  put_count and sleepers are sequentially consistent: a producer
 * either sees the sleeper and wakes it, or the sleeper sees the item before
 * it parks (a seq bump makes a park on a stale value return at once).  So a
 * put pays for a futex wake only when a consumer may be asleep, and a
 * consumer first spins briefly, since an item in flight on another core is
 * usually far closer than a futex round trip.
 */
#include <stdlib.h>

#include "chunkq.h"
#include "internal.h"
#include "racelab/queue.h"

struct rlab_simple_queue {
    rlab__chunkq f; /* unbounded: got_seen unused */
    /* sleeping consumers */
    _Alignas(64) atomic_int sleepers;
    atomic_uint seq;
};

static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};

rlab_simple_queue *rlab_simple_queue_new(void)
{
    rlab_simple_queue *q = aligned_alloc(64, sizeof *q);
    if (!q || rlab__chunkq_init(&q->f)) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&q->sleepers, 0);
    atomic_init(&q->seq, 0);
    return q;
}

void rlab_simple_queue_free(rlab_simple_queue *q, void (*free_item)(void *))
{
    if (!q)
        return;
    rlab__chunkq_free(&q->f, q->f.get_n, free_item);
    free(q);
}

int rlab_simple_queue_put(rlab_simple_queue *q, void *item)
{
    if (!q)
        return EINVAL;
    rlab__word_lock(&q->f.put_mu, &forever);
    size_t count;
    if (!rlab__chunkq_append(&q->f, item, &count)) {
        rlab__word_unlock(&q->f.put_mu);
        return ENOMEM;
    }
    rlab__chunkq_publish(&q->f, count); /* seq_cst: pairs with sleepers */
    rlab__word_unlock(&q->f.put_mu);
    if (atomic_load(&q->sleepers) > 0) {
        atomic_fetch_add(&q->seq, 1);
        rlab__futex_wake(&q->seq, 1);
    }
    return 0;
}

/* Takes the oldest item if there is one. */
static bool try_take(rlab_simple_queue *q, void **item)
{
    rlab__chunk *done;
    /* get_count relaxed: no producer waits for it. */
    if (!rlab__chunkq_try_take(&q->f, item, false, &done))
        return false;
    rlab__chunkq_recycle(&q->f, done);
    return true;
}

/* May hold an item: put_count read sequentially consistent (see above). */
static bool maybe_nonempty(rlab_simple_queue *q)
{
    return atomic_load(&q->f.put_count) !=
           atomic_load_explicit(&q->f.get_count, memory_order_relaxed);
}

/* Before it parks, a consumer polls put_count a little (see RLAB__SPIN in
 * chunkq.h); true if an item may have come. */
static bool spin_ready(void *q)
{
    return maybe_nonempty(q);
}

int rlab_simple_queue_get(rlab_simple_queue *q, void **item, double timeout)
{
    if (!q || !item || !rlab__timeout_ok(timeout))
        return EINVAL;
    if (try_take(q, item))
        return 0;
    rlab_deadline d;
    rlab__deadline(timeout, &d);
    if (d.kind == RLAB_WAIT_TRY)
        return EAGAIN;
    if (rlab__spin(spin_ready, q) && try_take(q, item))
        return 0;
    for (;;) {
        atomic_fetch_add(&q->sleepers, 1);
        unsigned seen = atomic_load(&q->seq);
        int rc = maybe_nonempty(q) ? 0 : rlab__futex_wait(&q->seq, seen, &d);
        atomic_fetch_sub(&q->sleepers, 1);
        if (try_take(q, item))
            return 0;
        if (rc == ETIMEDOUT)
            return ETIMEDOUT;
    }
}

long rlab_simple_queue_qsize(rlab_simple_queue *q)
{
    if (!q)
        return 0;
    return (long)rlab__chunkq_size(&q->f);
}

bool rlab_simple_queue_empty(rlab_simple_queue *q)
{
    return rlab_simple_queue_qsize(q) == 0;
}
