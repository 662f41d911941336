/*
 * executor_impl.h - what an executor implementation sees of futures and of
 * the generic executor handle; never installed.
 *
 * An executor is a struct whose first member is `struct rlab_executor`, a
 * pointer to its operations.  executor.c dispatches the public calls through
 * it and builds map and map_chunked on submit and futures alone, so a
 * process pool only has to provide the four operations.
 *
 * A future made for a task carries the task (fn, arg) and a link, so a pool
 * can queue the future itself: one allocation per submitted task.
 */
#ifndef RLAB_EXECUTOR_IMPL_H
#define RLAB_EXECUTOR_IMPL_H

#include "internal.h"
#include "racelab/futures.h"

typedef struct rlab_executor_ops {
    /* fn and out are not NULL.  0 and *out (a new reference), or the
     * executor's code; a failing submit changes nothing. */
    int (*submit)(rlab_executor *ex, rlab_task_fn fn, void *arg,
                  rlab_future **out);
    int (*shutdown)(rlab_executor *ex, bool wait, bool cancel_futures);
    /* Frees the executor; called after shutdown(wait=true). */
    void (*destroy)(rlab_executor *ex);
    int (*max_workers)(rlab_executor *ex);
    /* Optional: map_chunked for executors whose tasks cannot take
     * executor.c's in-memory chunks (a process pool).  chunksize > 1,
     * n > 0, arguments checked. */
    int (*map_chunked)(rlab_executor *ex, rlab_task_fn fn, void **args,
                       size_t n, size_t chunksize, void **results, int *codes,
                       const rlab_deadline *d);
} rlab_executor_ops;

struct rlab_executor {
    const rlab_executor_ops *ops;
};

/* ---- futures, as an executor uses them (future.c) ---- */

/* The state word of a future: a state in the low bits, and flags telling
 * the thread that completes it what else to do. */
enum {
    RLAB__F_PENDING = 0,
    RLAB__F_RUNNING = 1,
    RLAB__F_CANCELLED = 2,
    RLAB__F_FINISHED = 3,
    RLAB__F_COMPLETING = 4, /* claimed by set_result, not done yet */
    RLAB__F_STATE = 7,
    RLAB__F_LISTENERS = 8, /* callbacks or wait/as_completed watchers */
    RLAB__F_SLEEPERS = 16  /* threads parked on the word in result() */
};

typedef struct rlab__callback {
    struct rlab__callback *next;
    void (*fn)(rlab_future *, void *);
    void *arg;
} rlab__callback;

struct rlab__wnode;

struct rlab_future {
    atomic_uint word; /* state and flags */
    atomic_uint mu;   /* word lock over the callback and watcher lists */
    atomic_int refs;
    int code; /* written once by the completer, before the state says so */
    void *result;
    /* The task, for executors (NULL for rlab_future_new). */
    rlab_task_fn fn;
    void *arg;
    rlab_future *next;    /* the executor's queue link */
    /* Frees the result with the last reference (a process pool's bytes);
     * NULL: the result is the caller's business. */
    void (*result_free)(void *);
    rlab__callback first; /* inline slot: the first callback needs no malloc */
    rlab__callback *cb_head, *cb_tail;
    struct rlab__wnode *watchers;
};

/* A pending future for fn(arg) holding two references: the caller's and
 * the executor's.  NULL when out of memory. */
rlab_future *rlab__future_task(rlab_task_fn fn, void *arg, int refs);

/* set_running_or_notify_cancel() in one CAS: true if the future is now
 * running, false if it was cancelled. */
static inline bool rlab__future_start(rlab_future *f)
{
    unsigned w = atomic_load_explicit(&f->word, memory_order_relaxed);
    while ((w & RLAB__F_STATE) == RLAB__F_PENDING)
        if (atomic_compare_exchange_weak_explicit(
                &f->word, &w, (w & ~RLAB__F_STATE) | RLAB__F_RUNNING,
                memory_order_acquire, memory_order_relaxed))
            return true;
    return false;
}

/* Completes a running task future with its task's code and result
 * (callbacks run here). */
void rlab__future_complete(rlab_future *f, int code, void *result);

/* Parks until f is done or the deadline passes: 0 or ETIMEDOUT. */
int rlab__future_wait(rlab_future *f, const rlab_deadline *d);

/* Takes a done future's result away from it (so the last reference does
 * not free it): map hands results to its caller this way. */
void *rlab__future_take_result(rlab_future *f);

/* ---- map, as executor.c builds it (for executors with their own chunks) */

/* The outcome of item i (results and codes may be NULL). */
void rlab__map_store(void **results, int *codes, size_t i, int code,
                     void *res);
/* Waits for f until the deadline (once it has passed, gives up on the rest
 * without waiting: cancels what has not started) and returns its
 * outcome, with *res set when res is not NULL. */
int rlab__map_collect(rlab_future *f, const rlab_deadline *d, bool *expired,
                      void **res);

#endif
