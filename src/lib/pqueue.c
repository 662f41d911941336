/*
 * pqueue.c - multiprocessing.Queue (rlab_pqueue): a FIFO of byte strings
 * in the shared arena of shm.c, for every process of the family.
 *
 * Layout.  One arena block holds the header below and the ring after it.
 * An item is a record: its length in 8 bytes, then its bytes, padded to a
 * multiple of 8.  The ring's size is a multiple of 8 and every record
 * starts at one, so a length never straddles the end of the ring; the
 * bytes after it may, and are copied in two pieces.  head and tail count
 * bytes since the queue was made (64 bits: they never wrap), so the bytes
 * in use are tail - head and a position in the ring is a count modulo its
 * size.
 *
 * Robustness.  One robust process-shared mutex guards everything.  The
 * state that says what is queued, {head, tail, count}, is kept twice: a
 * put or get writes the new state into the copy not in use and switches
 * to it with one release store of `cur`, made after the item's bytes are
 * copied into the ring (put) or out of it (get).  A process that dies
 * anywhere in a call, even killed holding the mutex, leaves either the
 * old state or the new one, whole: a half-written item is never seen, and
 * an item whose reader died before the switch stays at the front.  The
 * next locker gets EOWNERDEAD, marks the mutex consistent and carries on;
 * nothing needs repair.  (`closed` is a single byte, set once.)
 *
 * Waiting.  A getter that finds the queue empty counts itself in
 * `getters` and reads `put_seq` under the mutex, unlocks and parks on
 * put_seq, a futex word shared between processes.  A put bumps put_seq and
 * wakes every parked getter while it still holds the mutex, before it
 * switches the state: the woken getters then queue on the robust mutex,
 * so if the putter dies before it unlocks they take the mutex over rather
 * than sleep through a wake that was never sent.  Waking all of them (not
 * one) means a woken getter that times out or dies cannot swallow the
 * wake another one needed.  Putters wait for room on get_seq in the same
 * way.  A waiter killed while parked leaves its count behind: later calls
 * then make a needless wake system call, nothing worse.
 */
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mp_internal.h"

#define PQ_DEFAULT_CAPACITY ((size_t)1 << 20)
#define PQ_MAX_CAPACITY ((size_t)1 << 40) /* beyond any arena: ENOMEM */
#define REC_HDR 8                          /* the length before each item */

struct pq_state {
    uint64_t head, tail; /* bytes ever taken out / put in */
    long count;          /* items queued */
};

struct rlab_pqueue {
    pthread_mutex_t mu;     /* robust; guards everything but the futex words */
    atomic_uint put_seq;    /* bumped by every put and the close */
    atomic_uint get_seq;    /* bumped by every get and the close */
    atomic_uint getters;    /* parked (or about to park) on put_seq */
    atomic_uint putters;    /* parked (or about to park) on get_seq */
    long maxsize;           /* 0: no bound on the count */
    size_t size;            /* bytes in the ring, a multiple of 8 */
    bool closed;
    atomic_uint cur;        /* which st[] is the state */
    struct pq_state st[2];
    alignas(16) unsigned char ring[];
};

/* ------------------------------------------------------------ the ring --- */

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* The bytes a record of len takes, or 0 when it cannot fit in the ring
 * (whose size, a multiple of 8, is at least 8). */
static size_t record_size(const struct rlab_pqueue *q, size_t len)
{
    if (len > q->size - REC_HDR)
        return 0;
    return REC_HDR + round8(len);
}

static void ring_write(struct rlab_pqueue *q, uint64_t pos, const void *src,
                       size_t n)
{
    size_t at = (size_t)(pos % q->size);
    size_t first = n < q->size - at ? n : q->size - at;
    if (first)
        memcpy(q->ring + at, src, first);
    if (n > first)
        memcpy(q->ring, (const unsigned char *)src + first, n - first);
}

static void ring_read(const struct rlab_pqueue *q, uint64_t pos, void *dst,
                      size_t n)
{
    size_t at = (size_t)(pos % q->size);
    size_t first = n < q->size - at ? n : q->size - at;
    if (first)
        memcpy(dst, q->ring + at, first);
    if (n > first)
        memcpy((unsigned char *)dst + first, q->ring, n - first);
}

/* ----------------------------------------------------------- the state --- */

static const struct pq_state *state(const struct rlab_pqueue *q)
{
    return &q->st[atomic_load_explicit(&q->cur, memory_order_relaxed) & 1];
}

/* The one store that makes a put or get happen (see the top of the file):
 * the release keeps the copies and the new state before it, for the
 * compiler too, so a process killed at any instruction leaves one whole
 * state. */
static void publish(struct rlab_pqueue *q, const struct pq_state *next)
{
    unsigned c = atomic_load_explicit(&q->cur, memory_order_relaxed) & 1;
    q->st[c ^ 1] = *next;
    atomic_store_explicit(&q->cur, c ^ 1, memory_order_release);
}

static bool has_room(const struct rlab_pqueue *q, const struct pq_state *s,
                     size_t need)
{
    return (q->maxsize == 0 || s->count < q->maxsize) &&
           q->size - (size_t)(s->tail - s->head) >= need;
}

/* ------------------------------------------------------ lock and wait --- */

/* A timed call waits for the mutex until its deadline; a try or an
 * untimed one just takes it: it is held only for one copy, and a try that
 * failed on a mere holder would be a spurious queue.Empty / queue.Full. */
static int pq_lock(struct rlab_pqueue *q, const rlab_deadline *d)
{
    static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    int rc = rlab__shm_mutex_lock(&q->mu,
                                  d->kind == RLAB_WAIT_DEADLINE ? d : &forever);
    return rc == RLAB_EOWNERDEAD ? 0 : rc;
}

static void pq_unlock(struct rlab_pqueue *q)
{
    pthread_mutex_unlock(&q->mu);
}

/* Under the mutex: tells every waiter parked on seq to look again. */
static void wake_all(atomic_uint *seq, atomic_uint *waiters)
{
    atomic_fetch_add(seq, 1);
    if (atomic_load(waiters) > 0)
        rlab__futex_wake_shared(seq, INT_MAX);
}

/* Waits until a put of `need` bytes fits (for_put) or an item is queued,
 * and returns 0 with the mutex held; or, unlocked, RLAB_ESHUTDOWN, EAGAIN
 * (a try), ETIMEDOUT. */
static int pq_wait(struct rlab_pqueue *q, const rlab_deadline *d,
                   bool for_put, size_t need)
{
    atomic_uint *seq = for_put ? &q->get_seq : &q->put_seq;
    atomic_uint *waiters = for_put ? &q->putters : &q->getters;
    for (;;) {
        int rc = pq_lock(q, d);
        if (rc)
            return rc;
        const struct pq_state *s = state(q);
        if (for_put && q->closed)
            rc = RLAB_ESHUTDOWN;
        else if (for_put ? has_room(q, s, need) : s->count > 0)
            return 0;
        else if (q->closed)
            rc = RLAB_ESHUTDOWN;
        else if (d->kind == RLAB_WAIT_TRY)
            rc = EAGAIN;
        else if (rlab__expired(d))
            rc = ETIMEDOUT;
        if (rc) {
            pq_unlock(q);
            return rc;
        }
        /* Counted and read under the mutex: a put or get after the unlock
         * sees the count and changes the word, so the park cannot miss it. */
        atomic_fetch_add(waiters, 1);
        unsigned seen = atomic_load(seq);
        pq_unlock(q);
        rlab__futex_wait_shared(seq, seen, d);
        atomic_fetch_sub(waiters, 1);
    }
}

/* ----------------------------------------------------------------- put --- */

static int put_args(struct rlab_pqueue *q, const void *data, size_t len,
                    double timeout, rlab_deadline *d, size_t *need)
{
    if (!q || (!data && len > 0) || rlab__deadline(timeout, d))
        return EINVAL;
    *need = record_size(q, len);
    return *need ? 0 : EMSGSIZE;
}

/* With the mutex held and room for it: writes the record at the tail,
 * where no reader looks until publish. */
static void put_write(struct rlab_pqueue *q, const void *data, size_t len)
{
    uint64_t tail = state(q)->tail;
    uint64_t n = len;
    ring_write(q, tail, &n, REC_HDR);
    if (len)
        ring_write(q, tail + REC_HDR, data, len);
}

/* The first half of a put, which the test seam stops after: 0 with the
 * mutex held and the record written, not yet visible. */
static int put_begin(struct rlab_pqueue *q, const void *data, size_t len,
                     double timeout, size_t *need)
{
    rlab_deadline d;
    int rc = put_args(q, data, len, timeout, &d, need);
    if (rc || (rc = pq_wait(q, &d, true, *need)))
        return rc;
    put_write(q, data, len);
    return 0;
}

int rlab_pqueue_put(rlab_pqueue *q, const void *data, size_t len,
                    double timeout)
{
    size_t need;
    int rc = put_begin(q, data, len, timeout, &need);
    if (rc)
        return rc;
    struct pq_state next = *state(q);
    next.tail += need;
    next.count++;
    wake_all(&q->put_seq, &q->getters); /* before publish: see the top */
    publish(q, &next);
    pq_unlock(q);
    return 0;
}

int rlab__pqueue_put_unpublished(rlab_pqueue *q, const void *data,
                                 size_t len, double timeout)
{
    size_t need;
    return put_begin(q, data, len, timeout, &need);
}

/* ----------------------------------------------------------------- get --- */

/* With the mutex held and an item queued: copies the front item out.
 * 0, or ENOMEM (nothing changes).  *need is the record's size. */
static int get_copy(struct rlab_pqueue *q, void **data, size_t *len,
                    size_t *need)
{
    uint64_t head = state(q)->head, n;
    ring_read(q, head, &n, REC_HDR);
    unsigned char *p = malloc(n ? (size_t)n : 1);
    if (!p)
        return ENOMEM;
    if (n)
        ring_read(q, head + REC_HDR, p, (size_t)n);
    *data = p;
    *len = (size_t)n;
    *need = REC_HDR + round8((size_t)n);
    return 0;
}

static int get_begin(struct rlab_pqueue *q, double timeout, void **data,
                     size_t *len, size_t *need)
{
    rlab_deadline d;
    if (!q || !data || !len || rlab__deadline(timeout, &d))
        return EINVAL;
    int rc = pq_wait(q, &d, false, 0);
    if (rc)
        return rc;
    if ((rc = get_copy(q, data, len, need)))
        pq_unlock(q);
    return rc;
}

int rlab_pqueue_get(rlab_pqueue *q, double timeout, void **data, size_t *len)
{
    void *p;
    size_t n, need;
    if (!data || !len)
        return EINVAL;
    int rc = get_begin(q, timeout, &p, &n, &need);
    if (rc)
        return rc;
    struct pq_state next = *state(q);
    next.head += need;
    next.count--;
    wake_all(&q->get_seq, &q->putters); /* before publish: see the top */
    publish(q, &next);
    pq_unlock(q);
    *data = p;
    *len = n;
    return 0;
}

int rlab__pqueue_get_unpublished(rlab_pqueue *q, double timeout, void **data,
                                 size_t *len)
{
    size_t need;
    return get_begin(q, timeout, data, len, &need);
}

/* -------------------------------------------------------------- the rest --- */

rlab_pqueue *rlab_pqueue_new(long maxsize, size_t capacity)
{
    if (maxsize < 0) {
        errno = EINVAL;
        return NULL;
    }
    if (capacity == 0)
        capacity = PQ_DEFAULT_CAPACITY;
    if (capacity > PQ_MAX_CAPACITY) {
        errno = ENOMEM;
        return NULL;
    }
    capacity = round8(capacity);
    struct rlab_pqueue *q = rlab__shm_alloc(sizeof *q + capacity);
    if (!q)
        return NULL;
    int rc = rlab__shm_mutex_init(&q->mu);
    if (rc) {
        rlab__shm_free(q);
        errno = rc;
        return NULL;
    }
    atomic_init(&q->put_seq, 0);
    atomic_init(&q->get_seq, 0);
    atomic_init(&q->getters, 0);
    atomic_init(&q->putters, 0);
    q->maxsize = maxsize;
    q->size = capacity;
    q->closed = false;
    atomic_init(&q->cur, 0);
    q->st[0] = q->st[1] = (struct pq_state){0, 0, 0};
    return q;
}

/* One look at the state under the mutex (untimed: it is held briefly). */
static struct pq_state snapshot(struct rlab_pqueue *q, bool *closed)
{
    rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    pq_lock(q, &forever);
    struct pq_state s = *state(q);
    if (closed)
        *closed = q->closed;
    pq_unlock(q);
    return s;
}

long rlab_pqueue_qsize(rlab_pqueue *q)
{
    return q ? snapshot(q, NULL).count : 0;
}

bool rlab_pqueue_empty(rlab_pqueue *q)
{
    return rlab_pqueue_qsize(q) == 0;
}

bool rlab_pqueue_full(rlab_pqueue *q)
{
    if (!q)
        return false;
    struct pq_state s = snapshot(q, NULL);
    return !has_room(q, &s, REC_HDR);
}

int rlab_pqueue_close(rlab_pqueue *q)
{
    if (!q)
        return EINVAL;
    rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    pq_lock(q, &forever);
    q->closed = true;
    wake_all(&q->put_seq, &q->getters);
    wake_all(&q->get_seq, &q->putters);
    pq_unlock(q);
    return 0;
}

bool rlab_pqueue_is_closed(rlab_pqueue *q)
{
    bool closed = false;
    if (q)
        snapshot(q, &closed);
    return closed;
}

void rlab_pqueue_free(rlab_pqueue *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    rlab__shm_free(q);
}
