/*
 * future.c - concurrent.futures.Future, wait() and as_completed().
 *
 * A future is one atomic word: its state (pending, running, cancelled,
 * finished, or completing while set_result writes the code) and two flags.
 * SLEEPERS says a thread is parked on the word in result(); LISTENERS says
 * callbacks or wait/as_completed watchers are listed under the future's
 * word lock.  Completing is a CAS to claim the future, the writes, and an
 * exchange that publishes the final state and hands back the flags: with
 * no flag set that is all (no lock, no wake-up), which keeps the executor's
 * per-task cost down.  A listener is added under the lock after setting
 * LISTENERS; the completer, seeing the flag, takes the lock, so it either
 * finds the listener in the list or the adder finds the future done.
 *
 * wait() and as_completed() install a node on each unfinished future (as
 * CPython's _Waiter); the completer bumps the watcher's counter, for
 * as_completed pushes the node on the watcher's finished stack, and wakes
 * it if it sleeps.  Watchers are removed under each future's lock before
 * the waiting call returns, so no completer touches them afterwards.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor_impl.h"

#define STATE(w) ((w)&RLAB__F_STATE)

static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};

static bool is_done(unsigned w)
{
    return STATE(w) == RLAB__F_FINISHED || STATE(w) == RLAB__F_CANCELLED;
}

static void lock(rlab_future *f)
{
    rlab__word_lock(&f->mu, &forever);
}

static void unlock(rlab_future *f)
{
    rlab__word_unlock(&f->mu);
}

/* ------------------------------------------------------------ watchers --- */

/* A thread waiting on several futures (wait, as_completed). */
typedef struct watcher {
    atomic_uint word;   /* 2 x completions seen, | 1 once the owner sleeps */
    atomic_uint failed; /* a watched future finished with code != 0 */
    _Atomic(struct rlab__wnode *) stack; /* finished nodes (as_completed) */
    bool collect;
} watcher;

typedef struct rlab__wnode {
    struct rlab__wnode *next, *prev; /* the future's list, under its lock */
    struct rlab__wnode *done_next;   /* the watcher's finished stack */
    watcher *w;
    rlab_future *f;
    bool linked;
} wnode;

/* Called with f->mu held, once f is done: tells every watcher and empties
 * the list.  A node is not touched after it is pushed or counted, except
 * through the lock its owner takes before freeing it. */
static void notify_watchers_locked(rlab_future *f, bool failed)
{
    wnode *n = f->watchers;
    f->watchers = NULL;
    while (n) {
        wnode *next = n->next;
        watcher *w = n->w;
        n->linked = false;
        n->next = n->prev = NULL;
        if (failed)
            atomic_store_explicit(&w->failed, 1, memory_order_relaxed);
        if (w->collect) {
            wnode *top = atomic_load_explicit(&w->stack, memory_order_relaxed);
            do
                n->done_next = top;
            while (!atomic_compare_exchange_weak_explicit(
                &w->stack, &top, n, memory_order_release,
                memory_order_relaxed));
        }
        if (atomic_fetch_add_explicit(&w->word, 2, memory_order_acq_rel) & 1)
            rlab__futex_wake(&w->word, 1);
        n = next;
    }
}

/* Links n on f unless f is done: true if linked. */
static bool watch(rlab_future *f, wnode *n, watcher *w)
{
    n->w = w;
    n->f = f;
    lock(f);
    unsigned old = atomic_fetch_or_explicit(&f->word, RLAB__F_LISTENERS,
                                            memory_order_acquire);
    if (is_done(old)) {
        unlock(f);
        return false;
    }
    n->prev = NULL;
    n->next = f->watchers;
    if (f->watchers)
        f->watchers->prev = n;
    f->watchers = n;
    n->linked = true;
    unlock(f);
    return true;
}

static void unwatch(wnode *n)
{
    rlab_future *f = n->f;
    lock(f);
    if (n->linked) {
        if (n->prev)
            n->prev->next = n->next;
        else
            f->watchers = n->next;
        if (n->next)
            n->next->prev = n->prev;
        n->linked = false;
    }
    unlock(f);
}

/* ---------------------------------------------------------- completion --- */

/* Acts on the flags the final exchange returned: wakes sleepers, tells
 * watchers, runs the callbacks in the order they were added. */
static void finish_flags(rlab_future *f, unsigned old, bool failed)
{
    if (old & RLAB__F_SLEEPERS)
        rlab__futex_wake(&f->word, INT_MAX);
    if (!(old & RLAB__F_LISTENERS))
        return;
    /* A callback may drop the last reference the caller holds. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    lock(f);
    rlab__callback *cb = f->cb_head;
    f->cb_head = f->cb_tail = NULL;
    notify_watchers_locked(f, failed);
    unlock(f);
    while (cb) {
        rlab__callback *next = cb->next;
        cb->fn(f, cb->arg);
        if (cb != &f->first)
            free(cb);
        cb = next;
    }
    rlab_future_free(f);
}

/* Claims a pending or running future for set_result: true if this thread
 * now owns it (state COMPLETING). */
static bool claim(rlab_future *f)
{
    unsigned w = atomic_load_explicit(&f->word, memory_order_relaxed);
    for (;;) {
        unsigned s = STATE(w);
        if (s != RLAB__F_PENDING && s != RLAB__F_RUNNING)
            return false;
        if (atomic_compare_exchange_weak_explicit(
                &f->word, &w, (w & ~RLAB__F_STATE) | RLAB__F_COMPLETING,
                memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

static void publish(rlab_future *f, int code, void *result)
{
    f->code = code;
    f->result = result;
    unsigned old = atomic_exchange_explicit(&f->word, RLAB__F_FINISHED,
                                            memory_order_acq_rel);
    finish_flags(f, old, code != 0);
}

int rlab_future_set_result(rlab_future *f, int code, void *result)
{
    if (!f || !claim(f))
        return EINVAL;
    publish(f, code, result);
    return 0;
}

void rlab__future_complete(rlab_future *f, int code, void *result)
{
    /* Only the worker completes a running task future, unless the caller
     * misused set_result on it; then the worker's outcome is dropped. */
    if (claim(f))
        publish(f, code, result);
}

bool rlab_future_cancel(rlab_future *f)
{
    if (!f)
        return false;
    unsigned w = atomic_load_explicit(&f->word, memory_order_acquire);
    for (;;) {
        if (STATE(w) == RLAB__F_CANCELLED)
            return true;
        if (STATE(w) != RLAB__F_PENDING)
            return false;
        if (atomic_compare_exchange_weak_explicit(
                &f->word, &w, RLAB__F_CANCELLED, memory_order_acq_rel,
                memory_order_acquire))
            break;
    }
    finish_flags(f, w, false);
    return true;
}

bool rlab_future_set_running_or_notify_cancel(rlab_future *f)
{
    return f && rlab__future_start(f);
}

/* -------------------------------------------------------------- queries --- */

static unsigned state_of(rlab_future *f)
{
    return STATE(atomic_load_explicit(&f->word, memory_order_acquire));
}

bool rlab_future_done(rlab_future *f)
{
    return f && is_done(state_of(f));
}

bool rlab_future_cancelled(rlab_future *f)
{
    return f && state_of(f) == RLAB__F_CANCELLED;
}

bool rlab_future_running(rlab_future *f)
{
    /* A future whose code is being written still reads as running. */
    unsigned s = f ? state_of(f) : RLAB__F_PENDING;
    return s == RLAB__F_RUNNING || s == RLAB__F_COMPLETING;
}

int rlab__future_wait(rlab_future *f, const rlab_deadline *d)
{
    unsigned w = atomic_load_explicit(&f->word, memory_order_acquire);
    while (!is_done(w)) {
        if (d->kind == RLAB_WAIT_TRY)
            return ETIMEDOUT;
        if (!(w & RLAB__F_SLEEPERS)) {
            if (!atomic_compare_exchange_weak_explicit(
                    &f->word, &w, w | RLAB__F_SLEEPERS, memory_order_acquire,
                    memory_order_acquire))
                continue;
            w |= RLAB__F_SLEEPERS;
        }
        int rc = rlab__futex_wait(&f->word, w, d);
        w = atomic_load_explicit(&f->word, memory_order_acquire);
        if (rc == ETIMEDOUT && !is_done(w))
            return ETIMEDOUT;
    }
    return 0;
}

int rlab_future_result(rlab_future *f, double timeout, void **result)
{
    if (!f || !rlab__timeout_ok(timeout))
        return EINVAL;
    unsigned w = atomic_load_explicit(&f->word, memory_order_acquire);
    if (!is_done(w)) {
        rlab_deadline d;
        if (rlab__deadline(timeout, &d))
            return EINVAL;
        if (rlab__future_wait(f, &d))
            return ETIMEDOUT;
        w = atomic_load_explicit(&f->word, memory_order_acquire);
    }
    if (STATE(w) == RLAB__F_CANCELLED)
        return RLAB_ECANCELLED;
    if (f->code == 0 && result)
        *result = f->result;
    return f->code;
}

/* ----------------------------------------------------------- callbacks --- */

int rlab_future_add_done_callback(rlab_future *f,
                                  void (*cb)(rlab_future *, void *), void *arg)
{
    if (!f || !cb)
        return EINVAL;
    if (is_done(state_of(f))) {
        cb(f, arg);
        return 0;
    }
    lock(f);
    rlab__callback *node = &f->first;
    if (f->first.fn) {
        node = malloc(sizeof *node);
        if (!node) {
            unlock(f);
            return ENOMEM;
        }
    }
    unsigned old = atomic_fetch_or_explicit(&f->word, RLAB__F_LISTENERS,
                                            memory_order_acquire);
    if (is_done(old)) {
        unlock(f);
        if (node != &f->first)
            free(node);
        cb(f, arg);
        return 0;
    }
    node->fn = cb;
    node->arg = arg;
    node->next = NULL;
    if (f->cb_tail)
        f->cb_tail->next = node;
    else
        f->cb_head = node;
    f->cb_tail = node;
    unlock(f);
    return 0;
}

/* ------------------------------------------------------------ lifetime --- */

/* Future memory.  An executor's futures are allocated by the submitting
 * thread and often released last by a worker; glibc's malloc handles that
 * flow through its slow paths.  So released futures go to a small cache of
 * the releasing thread, which hands them in batches to a global stack that
 * allocating threads take whole (a push by CAS and a take by exchange are
 * free of ABA).  The global stack is capped, and a thread's cache is freed
 * when the thread exits.  Under AddressSanitizer plain malloc and free are
 * kept, so a use after free is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define RLAB_NO_FUTURE_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RLAB_NO_FUTURE_CACHE 1
#endif
#endif

#ifdef RLAB_NO_FUTURE_CACHE
static rlab_future *future_alloc(void)
{
    return malloc(sizeof(rlab_future));
}

static void future_release(rlab_future *f)
{
    free(f);
}
#else
enum { BATCH = 64, SPILL_MAX = 1 << 16 };

typedef struct {
    rlab_future *freed, *freed_tail; /* released here, newest first */
    unsigned nfreed;
    rlab_future *taken; /* taken from the global stack */
    bool keyed;
    bool gone; /* the thread is exiting: release straight to free() */
} future_cache;

static _Thread_local future_cache cache
    __attribute__((tls_model("initial-exec")));
static _Atomic(rlab_future *) spill;
static atomic_size_t spill_count; /* roughly how many futures spill holds */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;

static void free_chain(rlab_future *f)
{
    while (f) {
        rlab_future *next = f->next;
        free(f);
        f = next;
    }
}

static void cache_exit(void *p)
{
    future_cache *c = p;
    free_chain(c->freed);
    free_chain(c->taken);
    c->freed = c->freed_tail = c->taken = NULL;
    c->nfreed = 0;
    c->gone = true; /* later thread-exit destructors may release futures */
}

static void cache_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_exit) == 0;
}

static rlab_future *future_alloc(void)
{
    future_cache *c = &cache;
    rlab_future *f = c->freed;
    if (f) {
        c->freed = f->next;
        if (!c->freed)
            c->freed_tail = NULL;
        c->nfreed--;
        return f;
    }
    if (!c->taken && atomic_load_explicit(&spill, memory_order_relaxed)) {
        c->taken = atomic_exchange_explicit(&spill, NULL, memory_order_acquire);
        atomic_store_explicit(&spill_count, 0, memory_order_relaxed);
    }
    if ((f = c->taken)) {
        c->taken = f->next;
        return f;
    }
    return malloc(sizeof *f);
}

/* Hands a full batch to the global stack, or frees it when that is full. */
static void spill_batch(future_cache *c)
{
    rlab_future *head = c->freed, *tail = c->freed_tail;
    c->freed = c->freed_tail = NULL;
    c->nfreed = 0;
    if (atomic_fetch_add_explicit(&spill_count, BATCH, memory_order_relaxed) >
        SPILL_MAX) {
        atomic_fetch_sub_explicit(&spill_count, BATCH, memory_order_relaxed);
        free_chain(head);
        return;
    }
    rlab_future *top = atomic_load_explicit(&spill, memory_order_relaxed);
    do
        tail->next = top;
    while (!atomic_compare_exchange_weak_explicit(
        &spill, &top, head, memory_order_release, memory_order_relaxed));
}

static void future_release(rlab_future *f)
{
    future_cache *c = &cache;
    if (c->gone) {
        free(f);
        return;
    }
    if (!c->keyed) {
        pthread_once(&cache_once, cache_init);
        if (!cache_key_ok || pthread_setspecific(cache_key, c) != 0) {
            free(f);
            return;
        }
        c->keyed = true;
    }
    f->next = c->freed;
    c->freed = f;
    if (!c->freed_tail)
        c->freed_tail = f;
    if (++c->nfreed == BATCH)
        spill_batch(c);
}
#endif

rlab_future *rlab__future_task(rlab_task_fn fn, void *arg, int refs)
{
    rlab_future *f = future_alloc();
    if (!f)
        return NULL;
    atomic_init(&f->word, RLAB__F_PENDING);
    atomic_init(&f->mu, 0);
    atomic_init(&f->refs, refs);
    f->code = 0;
    f->result = NULL;
    f->fn = fn;
    f->arg = arg;
    f->next = NULL;
    f->result_free = NULL;
    f->first.fn = NULL;
    f->first.next = NULL;
    f->cb_head = f->cb_tail = NULL;
    f->watchers = NULL;
    return f;
}

void *rlab__future_take_result(rlab_future *f)
{
    void *r = f->result;
    if (f->result_free)
        f->result = NULL;
    return r;
}

rlab_future *rlab_future_new(void)
{
    return rlab__future_task(NULL, NULL, 1);
}

rlab_future *rlab_future_ref(rlab_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void rlab_future_free(rlab_future *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (f->result_free && f->result)
        f->result_free(f->result);
    /* Callbacks of a future that never completed never run. */
    rlab__callback *cb = f->cb_head;
    while (cb) {
        rlab__callback *next = cb->next;
        if (cb != &f->first)
            free(cb);
        cb = next;
    }
    future_release(f);
}

/* ---------------------------------------------------------------- wait --- */

typedef struct {
    size_t n, done;
    bool failed;
} tally;

static bool condition_met(const tally *t, int return_when)
{
    switch (return_when) {
    case RLAB_FIRST_COMPLETED:
        return t->done > 0 || t->n == 0;
    case RLAB_FIRST_EXCEPTION:
        return t->failed || t->done == t->n;
    default:
        return t->done == t->n;
    }
}

static bool failed_done(rlab_future *f)
{
    return state_of(f) == RLAB__F_FINISHED && f->code != 0;
}

static void fill_done(rlab_future **fs, size_t n, bool *done)
{
    if (done)
        for (size_t i = 0; i < n; i++)
            done[i] = rlab_future_done(fs[i]);
}

int rlab_wait(rlab_future **fs, size_t n, double timeout, int return_when,
              bool *done)
{
    rlab_deadline d;
    if ((n > 0 && !fs) || rlab__deadline(timeout, &d))
        return EINVAL;
    if (return_when != RLAB_FIRST_COMPLETED &&
        return_when != RLAB_FIRST_EXCEPTION &&
        return_when != RLAB_ALL_COMPLETED)
        return EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return EINVAL;

    tally t = {.n = n};
    for (size_t i = 0; i < n; i++) {
        if (rlab_future_done(fs[i])) {
            t.done++;
            t.failed |= failed_done(fs[i]);
        }
    }
    if (condition_met(&t, return_when) || d.kind == RLAB_WAIT_TRY) {
        fill_done(fs, n, done);
        return condition_met(&t, return_when) ? 0 : ETIMEDOUT;
    }

    wnode *nodes = calloc(n, sizeof *nodes);
    if (!nodes)
        return ENOMEM;
    watcher w = {.collect = false};
    atomic_init(&w.word, 0);
    atomic_init(&w.failed, 0);
    atomic_init(&w.stack, NULL);
    /* Count again as the nodes go in: a future that finished since the
     * scan is seen either here or by its notification, never both. */
    t.done = 0;
    t.failed = false;
    size_t base = 0;
    for (size_t i = 0; i < n; i++) {
        if (!watch(fs[i], &nodes[i], &w)) {
            nodes[i].f = NULL;
            base++;
            t.failed |= failed_done(fs[i]);
        }
    }

    int rc = 0;
    unsigned v = atomic_load_explicit(&w.word, memory_order_acquire);
    for (;;) {
        t.done = base + (v >> 1);
        t.failed |= atomic_load_explicit(&w.failed, memory_order_relaxed);
        if (condition_met(&t, return_when))
            break;
        if (rc == ETIMEDOUT)
            break;
        if (!(v & 1)) {
            v = atomic_fetch_or_explicit(&w.word, 1, memory_order_acquire) | 1;
            continue;
        }
        rc = rlab__futex_wait(&w.word, v, &d);
        v = atomic_load_explicit(&w.word, memory_order_acquire);
    }
    for (size_t i = 0; i < n; i++)
        if (nodes[i].f)
            unwatch(&nodes[i]);
    free(nodes);
    fill_done(fs, n, done);
    return condition_met(&t, return_when) ? 0 : ETIMEDOUT;
}

/* -------------------------------------------------------- as_completed --- */

struct rlab_as_completed {
    rlab_deadline d;
    size_t n;            /* distinct futures */
    rlab_future **fs;    /* with a reference each */
    wnode *nodes;        /* nodes[i].f is fs[i] while it may be linked */
    rlab_future **ready; /* finished, not yet yielded: a FIFO of size n */
    size_t head, tail;
    size_t pending; /* not yet yielded */
    watcher w;
};

/* Distinct pointers of fs, in input order, with an open-addressing set. */
static rlab_future **distinct(rlab_future **fs, size_t n, size_t *out_n)
{
    rlab_future **out = malloc((n ? n : 1) * sizeof *out);
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    rlab_future **set = calloc(cap, sizeof *set);
    if (!out || !set) {
        free(out);
        free(set);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (uintptr_t)fs[i];
        x = (x ^ (x >> 31)) * 0x9E3779B97F4A7C15ull;
        size_t h = (size_t)(x ^ (x >> 29)) & (cap - 1);
        while (set[h] && set[h] != fs[i])
            h = (h + 1) & (cap - 1);
        if (!set[h]) {
            set[h] = fs[i];
            out[k++] = fs[i];
        }
    }
    free(set);
    *out_n = k;
    return out;
}

rlab_as_completed *rlab_as_completed_new(rlab_future **fs, size_t n,
                                         double timeout)
{
    rlab_deadline d;
    if ((n > 0 && !fs) || rlab__deadline(timeout, &d)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!fs[i]) {
            errno = EINVAL;
            return NULL;
        }
    }
    rlab_as_completed *it = calloc(1, sizeof *it);
    if (!it) {
        errno = ENOMEM;
        return NULL;
    }
    it->d = d;
    it->fs = distinct(fs, n, &it->n);
    it->nodes = calloc(it->n ? it->n : 1, sizeof *it->nodes);
    it->ready = malloc((it->n ? it->n : 1) * sizeof *it->ready);
    if (!it->fs || !it->nodes || !it->ready) {
        free(it->fs);
        free(it->nodes);
        free(it->ready);
        free(it);
        errno = ENOMEM;
        return NULL;
    }
    it->w.collect = true;
    atomic_init(&it->w.word, 0);
    atomic_init(&it->w.failed, 0);
    atomic_init(&it->w.stack, NULL);
    it->pending = it->n;
    for (size_t i = 0; i < it->n; i++) {
        rlab_future_ref(it->fs[i]);
        if (!watch(it->fs[i], &it->nodes[i], &it->w)) {
            it->nodes[i].f = NULL;
            it->ready[it->tail++] = it->fs[i];
        }
    }
    return it;
}

/* Moves the futures finished since the last call onto the ready FIFO, in
 * the order they finished. */
static void drain(rlab_as_completed *it)
{
    wnode *n =
        atomic_exchange_explicit(&it->w.stack, NULL, memory_order_acquire);
    wnode *rev = NULL;
    while (n) {
        wnode *next = n->done_next;
        n->done_next = rev;
        rev = n;
        n = next;
    }
    for (; rev; rev = rev->done_next)
        it->ready[it->tail++] = rev->f;
}

int rlab_as_completed_next(rlab_as_completed *it, rlab_future **out)
{
    if (!it || !out)
        return EINVAL;
    if (it->head == it->tail && it->pending > 0) {
        unsigned v = atomic_load_explicit(&it->w.word, memory_order_acquire);
        int rc = 0;
        for (;;) {
            drain(it);
            if (it->head != it->tail || rc == ETIMEDOUT)
                break;
            if (it->d.kind == RLAB_WAIT_TRY)
                return ETIMEDOUT;
            if (!(v & 1)) {
                v = atomic_fetch_or_explicit(&it->w.word, 1,
                                             memory_order_acquire) |
                    1;
                continue;
            }
            rc = rlab__futex_wait(&it->w.word, v, &it->d);
            v = atomic_load_explicit(&it->w.word, memory_order_acquire);
        }
        if (it->head == it->tail)
            return ETIMEDOUT;
    }
    if (it->head == it->tail)
        return RLAB_EEOF;
    *out = it->ready[it->head++];
    it->pending--;
    return 0;
}

size_t rlab_as_completed_pending(rlab_as_completed *it)
{
    return it ? it->pending : 0;
}

void rlab_as_completed_free(rlab_as_completed *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        if (it->nodes[i].f)
            unwatch(&it->nodes[i]);
        rlab_future_free(it->fs[i]);
    }
    free(it->fs);
    free(it->nodes);
    free(it->ready);
    free(it);
}
