/*
 * chunkq.h - the chunked two-lock FIFO under queue.Queue and
 * queue.SimpleQueue, and the spin before their waiters park; never
 * installed.
 *
 * A two-lock queue after Michael and Scott: producers take put_mu,
 * consumers get_mu, so a producer and a consumer never wait for each
 * other.  Items sit in a list of fixed-size chunks; item number n lives in
 * slot n % RLAB__CHUNK of its chunk.  A producer publishes item n by storing
 * put_count = n + 1 after writing the slot (and linking a new chunk first
 * when n starts one); a consumer reads put_count with acquire order and
 * caches it (limit), so a batch of items costs it one read of the
 * producers' cache line.  A bounded queue's producer likewise caches the
 * consumers' get_count (got_seen).  The chunk a consumer leaves becomes the
 * single spare a producer takes before it calls malloc, so a steady stream
 * allocates nothing.
 *
 * put_count is stored sequentially consistent, so that a producer either
 * sees a parked consumer or the consumer sees the item before it parks;
 * get_count is stored relaxed unless the caller has producers that park on
 * it (a bounded Queue), then sequentially consistent.
 *
 * The hot paths are static inline so that each queue compiles them into its
 * own put and get; the owner embeds an rlab__chunkq and adds its waiting.
 */
#ifndef RLAB_CHUNKQ_H
#define RLAB_CHUNKQ_H

#include <sched.h>
#include <stdlib.h>

#include "internal.h"

/* Slots per chunk: a chunk is 8 KiB with its link. */
enum { RLAB__CHUNK = 1022 };

typedef struct rlab__chunk {
    struct rlab__chunk *next;
    void *slot[RLAB__CHUNK];
} rlab__chunk;

typedef struct {
    /* producers, under put_mu */
    _Alignas(64) atomic_uint put_mu;
    rlab__chunk *tail;
    size_t put_n;
    size_t got_seen; /* get_count as a producer last read it */
    /* items published so far */
    _Alignas(64) atomic_size_t put_count;
    /* consumers, under get_mu */
    _Alignas(64) atomic_uint get_mu;
    rlab__chunk *head; /* holds item get_n - 1, or item 0 */
    size_t get_n;
    size_t limit; /* put_count as a consumer last read it */
    atomic_size_t get_count;
    _Atomic(rlab__chunk *) spare;
} rlab__chunkq;

static const rlab_deadline rlab__chunkq_forever = {.kind = RLAB_WAIT_FOREVER};

/* Sets up an empty queue with its first chunk: 0 or ENOMEM. */
int rlab__chunkq_init(rlab__chunkq *cq);

/* Hands items first .. put_n - 1 to free_item (if not NULL), then frees
 * the chunks and the spare.  first is get_n, or an earlier item number
 * whose chunk head still holds (items dropped but not handed out). */
void rlab__chunkq_free(rlab__chunkq *cq, size_t first,
                       void (*free_item)(void *));

/* Items published and not yet taken.  get_count first: it never passes
 * put_count, which only grows. */
static inline size_t rlab__chunkq_size(rlab__chunkq *cq)
{
    size_t got = atomic_load(&cq->get_count);
    return atomic_load(&cq->put_count) - got;
}

/* Under put_mu: stores item as number put_n, linking the spare (or a new
 * chunk) when it starts one, and sets *count to the new put_n.  false if
 * out of memory (nothing changed).  The item is not visible to consumers
 * until rlab__chunkq_publish. */
static inline bool rlab__chunkq_append(rlab__chunkq *cq, void *item,
                                       size_t *count)
{
    size_t n = cq->put_n, i = n % RLAB__CHUNK;
    if (i == 0 && n != 0) {
        /* acq_rel: the consumer that left this chunk is done with it. */
        rlab__chunk *c =
            atomic_exchange_explicit(&cq->spare, NULL, memory_order_acq_rel);
        if (!c && !(c = malloc(sizeof *c)))
            return false;
        c->next = NULL;
        cq->tail->next = c;
        cq->tail = c;
    }
    cq->tail->slot[i] = item;
    cq->put_n = *count = n + 1;
    return true;
}

/* Under put_mu: publishes the items appended so far, given the count
 * rlab__chunkq_append set.  seq_cst: pairs with the owner's count of
 * parked consumers. */
static inline void rlab__chunkq_publish(rlab__chunkq *cq, size_t put_n)
{
    atomic_store(&cq->put_count, put_n);
}

/* Takes the oldest item if there is one (locks get_mu itself).  get_count
 * is stored seq_cst if seq_cst_get, else relaxed.  On success *left is the
 * chunk the consumers have just finished with, or NULL: pass it to
 * rlab__chunkq_recycle. */
static inline bool rlab__chunkq_try_take(rlab__chunkq *cq, void **item,
                                         bool seq_cst_get, rlab__chunk **left)
{
    rlab__word_lock(&cq->get_mu, &rlab__chunkq_forever);
    size_t n = cq->get_n;
    if (n == cq->limit) {
        cq->limit = atomic_load_explicit(&cq->put_count, memory_order_acquire);
        if (n == cq->limit) {
            rlab__word_unlock(&cq->get_mu);
            return false;
        }
    }
    size_t i = n % RLAB__CHUNK;
    rlab__chunk *done = NULL;
    if (i == 0 && n != 0) {
        done = cq->head;
        cq->head = done->next;
    }
    *item = cq->head->slot[i];
    cq->get_n = n + 1;
    if (seq_cst_get)
        atomic_store(&cq->get_count, n + 1);
    else
        atomic_store_explicit(&cq->get_count, n + 1, memory_order_relaxed);
    rlab__word_unlock(&cq->get_mu);
    *left = done;
    return true;
}

/* Makes a chunk left by rlab__chunkq_try_take the spare (freeing the one
 * before, if a producer did not take it).  Call without get_mu. */
static inline void rlab__chunkq_recycle(rlab__chunkq *cq, rlab__chunk *left)
{
    if (left)
        free(atomic_exchange_explicit(&cq->spare, left, memory_order_acq_rel));
}

/* ---- waiting, shared by Queue and SimpleQueue ---- */

/* Before it parks, a waiter checks its condition RLAB__SPIN times, pausing
 * twice as long after each check up to RLAB__SPIN_PAUSE pauses (polling the
 * other side's cache line less often lets it work on, and a consumer that
 * waits a little finds a batch, not one item), then RLAB__YIELDS times with
 * a sched_yield between: when threads outnumber cores, the thread it waits
 * for may need this core. */
enum { RLAB__SPIN = 16, RLAB__SPIN_PAUSE = 32, RLAB__YIELDS = 8 };

/* Polls ready(arg) a little (see RLAB__SPIN); true if it came to hold. */
static inline bool rlab__spin(bool (*ready)(void *), void *arg)
{
    for (int i = 0, pause = 1; i < RLAB__SPIN; i++) {
        if (ready(arg))
            return true;
        for (int k = 0; k < pause; k++)
            rlab__cpu_relax();
        if (pause < RLAB__SPIN_PAUSE)
            pause *= 2;
    }
    for (int i = 0; i < RLAB__YIELDS; i++) {
        sched_yield();
        if (ready(arg))
            return true;
    }
    return false;
}

#endif
