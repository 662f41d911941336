/*
 * simple_queue.c - queue.SimpleQueue.
 *
 * An unbounded FIFO with two locks, after Michael and Scott's two-lock
 * queue: producers take the tail lock, consumers the head lock, so a
 * producer and a consumer never wait for each other.  Items sit in a list
 * of fixed-size chunks; item number n lives in slot n % CHUNK of its chunk.
 * A producer publishes item n by storing put_count = n + 1 with release
 * order after writing the slot (and linking a new chunk first when n starts
 * one); a consumer reads put_count with acquire order, and caches it, so a
 * batch of items costs it one read of the producers' cache line.  The chunk
 * a consumer leaves becomes the single spare a producer takes before it
 * calls malloc, so a steady stream allocates nothing.
 *
 * Sleeping consumers count themselves in `sleepers` and park on the `seq`
 * word.  put_count and sleepers are sequentially consistent: a producer
 * either sees the sleeper and wakes it, or the sleeper sees the item before
 * it parks (a seq bump makes a park on a stale value return at once).  So a
 * put pays for a futex wake only when a consumer may be asleep, and a
 * consumer first spins briefly, since an item in flight on another core is
 * usually far closer than a futex round trip.
 */
#include <sched.h>
#include <stdlib.h>

#include "internal.h"
#include "racelab/queue.h"

enum { CHUNK = 1022 }; /* slots per chunk: a chunk is 8 KiB with its link */
/* Before it parks, a consumer polls put_count SPIN times, pausing twice as
 * long after each poll up to SPIN_PAUSE pauses, then YIELDS times with a
 * sched_yield between (see queue.c). */
enum { SPIN = 16, SPIN_PAUSE = 32, YIELDS = 8 };

typedef struct chunk {
    struct chunk *next;
    void *slot[CHUNK];
} chunk;

struct rlab_simple_queue {
    /* producers: under put_mu */
    _Alignas(64) atomic_uint put_mu;
    chunk *tail;
    size_t put_n;
    /* published by producers, read by consumers */
    _Alignas(64) atomic_size_t put_count;
    /* consumers: under get_mu */
    _Alignas(64) atomic_uint get_mu;
    chunk *head;
    size_t get_n;
    size_t limit; /* put_count as a consumer last read it */
    atomic_size_t get_count;
    /* sleeping consumers */
    _Alignas(64) atomic_int sleepers;
    atomic_uint seq;
    _Atomic(chunk *) spare;
};

static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};

rlab_simple_queue *rlab_simple_queue_new(void)
{
    rlab_simple_queue *q = aligned_alloc(64, sizeof *q);
    chunk *c = malloc(sizeof *c);
    if (!q || !c) {
        free(q);
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->next = NULL;
    atomic_init(&q->put_mu, 0);
    q->tail = c;
    q->put_n = 0;
    atomic_init(&q->put_count, 0);
    atomic_init(&q->get_mu, 0);
    q->head = c;
    q->get_n = 0;
    q->limit = 0;
    atomic_init(&q->get_count, 0);
    atomic_init(&q->sleepers, 0);
    atomic_init(&q->seq, 0);
    atomic_init(&q->spare, NULL);
    return q;
}

void rlab_simple_queue_free(rlab_simple_queue *q, void (*free_item)(void *))
{
    if (!q)
        return;
    /* head holds item get_n - 1 (or item 0): walk as a consumer would. */
    chunk *c = q->head;
    for (size_t n = q->get_n; free_item && n < q->put_n; n++) {
        if (n % CHUNK == 0 && n != 0)
            c = c->next;
        free_item(c->slot[n % CHUNK]);
    }
    for (c = q->head; c;) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(atomic_load_explicit(&q->spare, memory_order_relaxed));
    free(q);
}

int rlab_simple_queue_put(rlab_simple_queue *q, void *item)
{
    if (!q)
        return EINVAL;
    rlab__word_lock(&q->put_mu, &forever);
    size_t n = q->put_n, i = n % CHUNK;
    if (i == 0 && n != 0) {
        /* acq_rel: the consumer that parked this chunk is done with it. */
        chunk *c =
            atomic_exchange_explicit(&q->spare, NULL, memory_order_acq_rel);
        if (!c && !(c = malloc(sizeof *c))) {
            rlab__word_unlock(&q->put_mu);
            return ENOMEM;
        }
        c->next = NULL;
        q->tail->next = c;
        q->tail = c;
    }
    q->tail->slot[i] = item;
    q->put_n = n + 1;
    atomic_store(&q->put_count, n + 1); /* seq_cst: pairs with sleepers */
    rlab__word_unlock(&q->put_mu);
    if (atomic_load(&q->sleepers) > 0) {
        atomic_fetch_add(&q->seq, 1);
        rlab__futex_wake(&q->seq, 1);
    }
    return 0;
}

/* Takes the oldest item if there is one. */
static bool try_take(rlab_simple_queue *q, void **item)
{
    rlab__word_lock(&q->get_mu, &forever);
    size_t n = q->get_n;
    if (n == q->limit) {
        q->limit = atomic_load_explicit(&q->put_count, memory_order_acquire);
        if (n == q->limit) {
            rlab__word_unlock(&q->get_mu);
            return false;
        }
    }
    size_t i = n % CHUNK;
    chunk *done = NULL;
    if (i == 0 && n != 0) {
        done = q->head;
        q->head = done->next;
    }
    *item = q->head->slot[i];
    q->get_n = n + 1;
    atomic_store_explicit(&q->get_count, n + 1, memory_order_relaxed);
    rlab__word_unlock(&q->get_mu);
    if (done)
        free(atomic_exchange_explicit(&q->spare, done, memory_order_acq_rel));
    return true;
}

/* May hold an item: put_count read sequentially consistent (see above). */
static bool maybe_nonempty(rlab_simple_queue *q)
{
    return atomic_load(&q->put_count) !=
           atomic_load_explicit(&q->get_count, memory_order_relaxed);
}

/* Polls for an item a little before parking (see SPIN); true if one may
 * have come. */
static bool spin(rlab_simple_queue *q)
{
    for (int i = 0, pause = 1; i < SPIN; i++) {
        if (maybe_nonempty(q))
            return true;
        for (int k = 0; k < pause; k++)
            rlab__cpu_relax();
        if (pause < SPIN_PAUSE)
            pause *= 2;
    }
    for (int i = 0; i < YIELDS; i++) {
        sched_yield();
        if (maybe_nonempty(q))
            return true;
    }
    return false;
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
    if (spin(q) && try_take(q, item))
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
    /* get_count first: it never passes put_count, which only grows. */
    size_t got = atomic_load(&q->get_count);
    return (long)(atomic_load(&q->put_count) - got);
}

bool rlab_simple_queue_empty(rlab_simple_queue *q)
{
    return rlab_simple_queue_qsize(q) == 0;
}
