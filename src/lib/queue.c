/*
 * queue.c - queue.Queue, queue.LifoQueue and queue.PriorityQueue.
 *
 * Queue (FIFO) is the chunked two-lock queue of chunkq.h (shared with
 * SimpleQueue): producers take put_mu, consumers get_mu, so a producer and
 * a consumer never wait for each other; a producer publishes item n by
 * storing put_count = n + 1 after writing the slot, and a consumer reads
 * put_count with acquire order and caches it (limit).  A bounded queue's
 * producer likewise caches the consumers' get_count (got_seen), which its
 * consumers store sequentially consistent for parked putters.
 *
 * LifoQueue and PriorityQueue keep their items in one array under one word
 * lock, as CPython does: a stack, or a binary heap of (item, insertion
 * number) pairs so that equal items leave in the order they came.  The
 * array doubles when full.
 *
 * Both shapes share the rest.  Python's three conditions (not_empty,
 * not_full, all_tasks_done) are wait queues: a sequence word to park on
 * and a count of the threads that may be parked.  A waiter counts itself
 * in, reads the word, checks its condition on atomics and parks on the
 * value it read; a notifier makes the condition true with a sequentially
 * consistent store and then reads the count.  So either the notifier sees
 * the waiter and bumps the word (a park on the old value returns at once)
 * or the waiter sees the condition and does not park, and a hand-off
 * between threads that keep up with each other costs no system call.
 * Before parking a waiter spins briefly on the same check: on another core
 * the item is usually far closer than a futex round trip.  unfinished is
 * an atomic counter, so task_done and join take no lock.
 *
 * shutdown sets `shut` while holding every lock, so no put slips past it
 * and the items a getter may still drain are exactly those put before.
 * Items an immediate shutdown drops stay where they are (the FIFO's chunks
 * or the moved-aside array): no allocation, so shutdown cannot fail, and
 * rlab_queue_free hands them to free_item.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunkq.h"
#include "internal.h"
#include "racelab/queue.h"

enum kind { FIFO, LIFO, PRIO };

/* First capacity of a LIFO or PRIO array. */
enum { MIN_CAP = 32 };

typedef struct {
    void *item;
    unsigned long long seq; /* insertion number: FIFO among equals */
} entry;

/* A LIFO stack (void *[cap]) or a PRIO heap (entry[cap]). */
typedef struct {
    void *data;
    size_t cap, count;
} store;

typedef struct {
    atomic_uint seq;
    atomic_int waiters;
} waitq;

struct rlab_queue {
    enum kind kind;
    long maxsize; /* 0: unbounded */
    int (*cmp)(const void *, const void *);
    atomic_bool shut; /* set with every lock held; seq_cst */
    /* FIFO, under both put_mu and get_mu. */
    size_t drop_from; /* first item an immediate shutdown dropped */
    bool dropped_any;

    rlab__chunkq f; /* FIFO */

    /* LIFO and PRIO, under mu. */
    _Alignas(64) atomic_uint mu;
    store s;
    store dropped; /* what an immediate shutdown discarded */
    unsigned long long next_seq;
    atomic_long size; /* s.count; seq_cst */

    _Alignas(64) atomic_long unfinished;
    waitq all_done;
    _Alignas(64) waitq not_empty;
    _Alignas(64) waitq not_full;
};

static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};

static void lock(atomic_uint *mu)
{
    rlab__word_lock(mu, &forever);
}

static void unlock(atomic_uint *mu)
{
    rlab__word_unlock(mu);
}

/* --------------------------------------------------------- wait queues --- */

typedef bool (*cond_fn)(rlab_queue *);

/* Parks until notified or the deadline, unless ready(q) holds once the
 * caller is counted in.  0 or ETIMEDOUT; the caller re-checks either way. */
static int park(rlab_queue *q, waitq *w, cond_fn ready, const rlab_deadline *d)
{
    atomic_fetch_add(&w->waiters, 1);
    unsigned seen = atomic_load(&w->seq);
    int rc = ready(q) ? 0 : rlab__futex_wait(&w->seq, seen, d);
    atomic_fetch_sub(&w->waiters, 1);
    return rc;
}

/* Wakes up to n parked threads; call after the seq_cst store that made
 * their condition true. */
static void notify(waitq *w, int n)
{
    if (atomic_load(&w->waiters) > 0) {
        atomic_fetch_add(&w->seq, 1);
        rlab__futex_wake(&w->seq, n);
    }
}

typedef struct {
    rlab_queue *q;
    cond_fn ready;
} spin_arg;

static bool spin_ready(void *arg)
{
    spin_arg *a = arg;
    return a->ready(a->q);
}

/* Polls ready(q) a little (see RLAB__SPIN); true if it came to hold. */
static bool spin(rlab_queue *q, cond_fn ready)
{
    spin_arg a = {q, ready};
    return rlab__spin(spin_ready, &a);
}

static bool is_shut(rlab_queue *q)
{
    return atomic_load(&q->shut);
}

/* -------------------------------------------------------- FIFO: chunks --- */

static size_t fifo_size(rlab_queue *q)
{
    return rlab__chunkq_size(&q->f);
}

static bool fifo_can_get(rlab_queue *q)
{
    return fifo_size(q) > 0 || is_shut(q);
}

static bool fifo_can_put(rlab_queue *q)
{
    return fifo_size(q) < (size_t)q->maxsize || is_shut(q);
}

/* Under put_mu: true if item put_n fits under maxsize. */
static bool fifo_room(rlab_queue *q)
{
    rlab__chunkq *f = &q->f;
    if (q->maxsize == 0 || f->put_n - f->got_seen < (size_t)q->maxsize)
        return true;
    f->got_seen = atomic_load_explicit(&f->get_count, memory_order_acquire);
    return f->put_n - f->got_seen < (size_t)q->maxsize;
}

/* One try: 0, RLAB_ESHUTDOWN, EAGAIN (full) or ENOMEM. */
static int fifo_try_put(rlab_queue *q, void *item)
{
    lock(&q->f.put_mu);
    if (is_shut(q)) {
        unlock(&q->f.put_mu);
        return RLAB_ESHUTDOWN;
    }
    if (!fifo_room(q)) {
        unlock(&q->f.put_mu);
        return EAGAIN;
    }
    size_t count;
    if (!rlab__chunkq_append(&q->f, item, &count)) {
        unlock(&q->f.put_mu);
        return ENOMEM;
    }
    /* Counted before it is published: its task_done may come at once. */
    atomic_fetch_add_explicit(&q->unfinished, 1, memory_order_relaxed);
    rlab__chunkq_publish(&q->f, count);
    unlock(&q->f.put_mu);
    notify(&q->not_empty, 1);
    return 0;
}

/* Takes the oldest item if there is one. */
static bool fifo_try_get(rlab_queue *q, void **item)
{
    rlab__chunk *left;
    /* Bounded: get_count seq_cst, to pair with parked putters. */
    if (!rlab__chunkq_try_take(&q->f, item, q->maxsize != 0, &left))
        return false;
    if (q->maxsize)
        notify(&q->not_full, 1);
    rlab__chunkq_recycle(&q->f, left);
    return true;
}

static void fifo_drop(rlab_queue *q)
{
    rlab__chunkq *f = &q->f;
    size_t n = f->put_n - f->get_n;
    if (n == 0)
        return;
    /* Only the first immediate shutdown can find items.  head stays, so
     * rlab_queue_free walks them from drop_from. */
    q->drop_from = f->get_n;
    q->dropped_any = true;
    f->get_n = f->limit = f->put_n;
    atomic_store(&f->get_count, f->put_n);
}

static void fifo_free(rlab_queue *q, void (*free_item)(void *))
{
    size_t first = q->dropped_any ? q->drop_from : q->f.get_n;
    rlab__chunkq_free(&q->f, first, free_item);
}

/* ------------------------------------------- LIFO and PRIO: one array --- */

static size_t elem_size(const rlab_queue *q)
{
    return q->kind == PRIO ? sizeof(entry) : sizeof(void *);
}

static bool arr_can_get(rlab_queue *q)
{
    return atomic_load(&q->size) > 0 || is_shut(q);
}

static bool arr_can_put(rlab_queue *q)
{
    return atomic_load(&q->size) < q->maxsize || is_shut(q);
}

/* Doubles the array (or allocates the first); ENOMEM changes nothing. */
static int arr_grow(rlab_queue *q)
{
    size_t es = elem_size(q);
    size_t cap = q->s.cap ? q->s.cap * 2 : MIN_CAP;
    if (cap > SIZE_MAX / es)
        return ENOMEM;
    void *data = realloc(q->s.data, cap * es);
    if (!data)
        return ENOMEM;
    q->s.data = data;
    q->s.cap = cap;
    return 0;
}

static bool before(const rlab_queue *q, const entry *a, const entry *b)
{
    int c = q->cmp(a->item, b->item);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

static void heap_push(rlab_queue *q, void *item)
{
    entry *h = q->s.data;
    entry e = {item, q->next_seq++};
    size_t i = q->s.count;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(q, &e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static void *heap_pop(rlab_queue *q)
{
    entry *h = q->s.data;
    void *top = h[0].item;
    size_t n = q->s.count - 1; /* the count after the pop */
    entry last = h[n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && before(q, &h[child + 1], &h[child]))
            child++;
        if (!before(q, &h[child], &last))
            break;
        h[i] = h[child];
        i = child;
    }
    h[i] = last;
    return top;
}

/* One try: 0, RLAB_ESHUTDOWN, EAGAIN (full) or ENOMEM. */
static int arr_try_put(rlab_queue *q, void *item)
{
    lock(&q->mu);
    int rc = 0;
    if (is_shut(q))
        rc = RLAB_ESHUTDOWN;
    else if (q->maxsize && q->s.count >= (size_t)q->maxsize)
        rc = EAGAIN;
    else if (q->s.count == q->s.cap)
        rc = arr_grow(q);
    if (rc) {
        unlock(&q->mu);
        return rc;
    }
    if (q->kind == PRIO)
        heap_push(q, item);
    else
        ((void **)q->s.data)[q->s.count] = item;
    q->s.count++;
    atomic_fetch_add_explicit(&q->unfinished, 1, memory_order_relaxed);
    atomic_store(&q->size, (long)q->s.count);
    unlock(&q->mu);
    notify(&q->not_empty, 1);
    return 0;
}

static bool arr_try_get(rlab_queue *q, void **item)
{
    lock(&q->mu);
    if (q->s.count == 0) {
        unlock(&q->mu);
        return false;
    }
    if (q->kind == PRIO)
        *item = heap_pop(q);
    else
        *item = ((void **)q->s.data)[q->s.count - 1];
    q->s.count--;
    atomic_store(&q->size, (long)q->s.count);
    unlock(&q->mu);
    if (q->maxsize)
        notify(&q->not_full, 1);
    return true;
}

static void *arr_item(const rlab_queue *q, const store *s, size_t i)
{
    return q->kind == PRIO ? ((entry *)s->data)[i].item : ((void **)s->data)[i];
}

static void arr_drop(rlab_queue *q)
{
    if (q->s.count == 0)
        return;
    /* Only the first immediate shutdown can find items: the array moves
     * aside as it is. */
    q->dropped = q->s;
    q->s = (store){0};
    atomic_store(&q->size, 0);
}

static void arr_free(rlab_queue *q, void (*free_item)(void *))
{
    const store *stores[] = {&q->s, &q->dropped};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; free_item && i < stores[k]->count; i++)
            free_item(arr_item(q, stores[k], i));
        free(stores[k]->data);
    }
}

/* ---------------------------------------------------------- life cycle --- */

static rlab_queue *make(long maxsize, enum kind kind,
                        int (*cmp)(const void *, const void *))
{
    rlab_queue *q = aligned_alloc(64, sizeof *q);
    if (!q)
        return NULL;
    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->maxsize = maxsize > 0 ? maxsize : 0;
    q->cmp = cmp;
    atomic_init(&q->shut, false);
    atomic_init(&q->mu, 0);
    atomic_init(&q->size, 0);
    atomic_init(&q->unfinished, 0);
    waitq *wqs[] = {&q->all_done, &q->not_empty, &q->not_full};
    for (int i = 0; i < 3; i++) {
        atomic_init(&wqs[i]->seq, 0);
        atomic_init(&wqs[i]->waiters, 0);
    }
    /* The first chunk or array up front: most queues never need more. */
    int rc = kind == FIFO ? rlab__chunkq_init(&q->f) : arr_grow(q);
    if (rc) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    return q;
}

rlab_queue *rlab_queue_new(long maxsize)
{
    return make(maxsize, FIFO, NULL);
}

rlab_queue *rlab_lifo_queue_new(long maxsize)
{
    return make(maxsize, LIFO, NULL);
}

rlab_queue *rlab_priority_queue_new(long maxsize,
                                    int (*cmp)(const void *, const void *))
{
    if (!cmp) {
        errno = EINVAL;
        return NULL;
    }
    return make(maxsize, PRIO, cmp);
}

void rlab_queue_free(rlab_queue *q, void (*free_item)(void *))
{
    if (!q)
        return;
    if (q->kind == FIFO)
        fifo_free(q, free_item);
    else
        arr_free(q, free_item);
    free(q);
}

/* ------------------------------------------------------------- put/get --- */

int rlab_queue_put(rlab_queue *q, void *item, double timeout)
{
    if (!q || !rlab__timeout_ok(timeout))
        return EINVAL;
    bool fifo = q->kind == FIFO;
    int rc = fifo ? fifo_try_put(q, item) : arr_try_put(q, item);
    if (rc != EAGAIN)
        return rc;
    rlab_deadline d;
    rlab__deadline(timeout, &d);
    if (d.kind == RLAB_WAIT_TRY)
        return EAGAIN;
    cond_fn ready = fifo ? fifo_can_put : arr_can_put;
    bool spun = false, expired = false;
    for (;;) {
        if (!spun) {
            spun = true;
            spin(q, ready);
        } else {
            expired = park(q, &q->not_full, ready, &d) == ETIMEDOUT;
        }
        rc = fifo ? fifo_try_put(q, item) : arr_try_put(q, item);
        if (rc != EAGAIN)
            return rc;
        if (expired)
            return ETIMEDOUT;
    }
}

int rlab_queue_get(rlab_queue *q, void **item, double timeout)
{
    if (!q || !item || !rlab__timeout_ok(timeout))
        return EINVAL;
    bool fifo = q->kind == FIFO;
    if (fifo ? fifo_try_get(q, item) : arr_try_get(q, item))
        return 0;
    rlab_deadline d;
    rlab__deadline(timeout, &d);
    cond_fn ready = fifo ? fifo_can_get : arr_can_get;
    bool spun = false, expired = false;
    for (;;) {
        if (is_shut(q)) {
            /* Everything put before the shutdown is visible now. */
            return (fifo ? fifo_try_get(q, item) : arr_try_get(q, item))
                       ? 0
                       : RLAB_ESHUTDOWN;
        }
        if (d.kind == RLAB_WAIT_TRY)
            return EAGAIN;
        if (expired)
            return ETIMEDOUT;
        if (!spun) {
            spun = true;
            spin(q, ready);
        } else {
            expired = park(q, &q->not_empty, ready, &d) == ETIMEDOUT;
        }
        if (fifo ? fifo_try_get(q, item) : arr_try_get(q, item))
            return 0;
    }
}

/* ------------------------------------------------------------- queries --- */

long rlab_queue_qsize(rlab_queue *q)
{
    if (!q)
        return 0;
    return q->kind == FIFO ? (long)fifo_size(q) : atomic_load(&q->size);
}

bool rlab_queue_empty(rlab_queue *q)
{
    return rlab_queue_qsize(q) == 0;
}

bool rlab_queue_full(rlab_queue *q)
{
    return q && q->maxsize > 0 && rlab_queue_qsize(q) >= q->maxsize;
}

long rlab_queue_maxsize(rlab_queue *q)
{
    return q ? q->maxsize : 0;
}

long rlab_queue_unfinished_tasks(rlab_queue *q)
{
    return q ? atomic_load(&q->unfinished) : 0;
}

bool rlab_queue_is_shutdown(rlab_queue *q)
{
    return q && is_shut(q);
}

/* ------------------------------------------------------ task_done/join --- */

/* Lowers unfinished by up to n, never below 0; true if it reached 0. */
static bool finish(rlab_queue *q, long n)
{
    long u = atomic_load(&q->unfinished);
    while (u > 0 &&
           !atomic_compare_exchange_weak(&q->unfinished, &u, u > n ? u - n : 0))
        ;
    return u > 0 && u <= n;
}

int rlab_queue_task_done(rlab_queue *q)
{
    if (!q)
        return EINVAL;
    long u = atomic_load(&q->unfinished);
    do {
        if (u == 0)
            return EINVAL;
    } while (!atomic_compare_exchange_weak(&q->unfinished, &u, u - 1));
    if (u == 1)
        notify(&q->all_done, INT_MAX);
    return 0;
}

static bool all_done(rlab_queue *q)
{
    return atomic_load(&q->unfinished) == 0;
}

int rlab_queue_join(rlab_queue *q, double timeout)
{
    rlab_deadline d;
    if (!q || rlab__deadline(timeout, &d))
        return EINVAL;
    bool expired = false;
    while (!all_done(q)) {
        if (d.kind == RLAB_WAIT_TRY || expired)
            return ETIMEDOUT;
        expired = park(q, &q->all_done, all_done, &d) == ETIMEDOUT;
    }
    return 0;
}

/* ------------------------------------------------------------ shutdown --- */

int rlab_queue_shutdown(rlab_queue *q, bool immediate)
{
    if (!q)
        return EINVAL;
    long dropped = 0;
    if (q->kind == FIFO) {
        lock(&q->f.put_mu);
        lock(&q->f.get_mu);
        atomic_store(&q->shut, true);
        if (immediate) {
            dropped = (long)(q->f.put_n - q->f.get_n);
            fifo_drop(q);
        }
        unlock(&q->f.get_mu);
        unlock(&q->f.put_mu);
    } else {
        lock(&q->mu);
        atomic_store(&q->shut, true);
        if (immediate) {
            dropped = (long)q->s.count;
            arr_drop(q);
        }
        unlock(&q->mu);
    }
    if (dropped && finish(q, dropped))
        notify(&q->all_done, INT_MAX);
    notify(&q->not_empty, INT_MAX);
    notify(&q->not_full, INT_MAX);
    return 0;
}
