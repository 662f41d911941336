/*
 * racelab/futures.h - Python's `concurrent.futures` in C.
 *
 * A task is a function `int fn(void *arg, void **result)`: it returns 0 and
 * sets *result on success, or a non-zero status code, which plays the part
 * of the exception a Python callable raises.  Executors run tasks and hand
 * back futures; an executor is a generic handle (ThreadPoolExecutor here,
 * ProcessPoolExecutor in racelab/multiprocessing.h) behind one interface.
 *
 * Futures are reference counted: submit hands the caller one reference,
 * released with rlab_future_free; the executor keeps its own until the task
 * is done.  Status codes and timeouts follow racelab/error.h; a wait whose
 * deadline passed (a timeout of 0 included) is ETIMEDOUT.
 */
#ifndef RACELAB_FUTURES_H
#define RACELAB_FUTURES_H

#include <stdbool.h>
#include <stddef.h>

#include "racelab/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A callable: 0 and *result on success, else the task's failure code. */
typedef int (*rlab_task_fn)(void *arg, void **result);

typedef struct rlab_future rlab_future;
typedef struct rlab_executor rlab_executor;

/* ------------------------------------------------------------- Future --- */

/* Future(): pending, then running, then finished (with the task's code and
 * result); or cancelled while it was still pending.  done() is true for
 * finished and cancelled futures.
 *
 * result(timeout): waits until the future is done.  Returns the task's own
 * code (0: success, *result set if result is not NULL), RLAB_ECANCELLED
 * (CancelledError), RLAB_EBROKEN (the pool broke before the task ran),
 * ETIMEDOUT (not done by the deadline), or EINVAL.  Note a task may itself
 * return any code, ETIMEDOUT included; rlab_future_done tells them apart. */
int rlab_future_result(rlab_future *f, double timeout, void **result);
/* cancel(): true if the future is cancelled now, that is if it was still
 * pending (or already cancelled); false once it runs or is finished.  A
 * cancel that succeeds wakes the waiters and runs the callbacks on the
 * calling thread. */
bool rlab_future_cancel(rlab_future *f);
bool rlab_future_done(rlab_future *f);
bool rlab_future_cancelled(rlab_future *f);
bool rlab_future_running(rlab_future *f);
/* add_done_callback(fn): cb(f, arg) runs exactly once when the future is
 * done (finished, failed or cancelled), on the thread that completes it, or
 * at once on the calling thread if it is already done.  Callbacks run in
 * the order they were added.  0, ENOMEM (not added), EINVAL. */
int rlab_future_add_done_callback(rlab_future *f,
                                  void (*cb)(rlab_future *, void *), void *arg);
/* Drops the caller's reference (NULL is a no-op). */
void rlab_future_free(rlab_future *f);

/* For executor implementers and tests (Python's Future() and its
 * set_running_or_notify_cancel / set_result / set_exception). */
rlab_future *rlab_future_new(void);
/* Another reference to f (released with rlab_future_free). */
rlab_future *rlab_future_ref(rlab_future *f);
/* true: the future is now running; false: it was cancelled (its callbacks
 * have run).  EINVAL-like misuse (not pending) returns false. */
bool rlab_future_set_running_or_notify_cancel(rlab_future *f);
/* Completes a pending or running future with the task's code and result:
 * 0; EINVAL if it is already done (InvalidStateError), nothing changes. */
int rlab_future_set_result(rlab_future *f, int code, void *result);

/* --------------------------------------------------- wait, as_completed --- */

enum {
    RLAB_FIRST_COMPLETED = 1, /* any future done */
    RLAB_FIRST_EXCEPTION = 2, /* any future failed (code != 0), or all done;
                                 a cancelled future does not count */
    RLAB_ALL_COMPLETED = 3
};

/* wait(fs, timeout, return_when): 0 when the condition holds, ETIMEDOUT if
 * it did not by the deadline; either way done[i] (may be NULL) tells
 * whether fs[i] is done.  A future may appear more than once.  EINVAL for
 * a NULL array with n > 0, a NULL entry or a bad return_when. */
int rlab_wait(rlab_future **fs, size_t n, double timeout, int return_when,
              bool *done);

/* as_completed(fs, timeout): an iterator yielding each distinct future of
 * fs once, in the order they finish (those already done first, in input
 * order).  The timeout is for the whole iteration, counted from
 * rlab_as_completed_new.  The iterator holds a reference to each future
 * until it is freed; one thread at a time may use it.  NULL with errno
 * EINVAL or ENOMEM. */
typedef struct rlab_as_completed rlab_as_completed;
rlab_as_completed *rlab_as_completed_new(rlab_future **fs, size_t n,
                                         double timeout);
/* 0 and *out (a borrowed pointer, valid until rlab_as_completed_free);
 * RLAB_EEOF when every future was yielded; ETIMEDOUT when the deadline
 * passed and no finished future is left to yield
 * (rlab_as_completed_pending says how many are unfinished); EINVAL. */
int rlab_as_completed_next(rlab_as_completed *it, rlab_future **out);
size_t rlab_as_completed_pending(rlab_as_completed *it);
void rlab_as_completed_free(rlab_as_completed *it);

/* ----------------------------------------------------------- Executor --- */

/* ThreadPoolExecutor(max_workers, thread_name_prefix, initializer,
 * initargs): max_workers 0 means min(32, cpus + 4); < 0 is NULL with errno
 * EINVAL.  Workers start lazily, one per submit while none is idle, up to
 * max_workers; their names are "<prefix>_N" (prefix NULL: a per-pool
 * "ThreadPoolExecutor-K").  init(init_arg), if given, runs once in each new
 * worker; a non-zero return breaks the pool: pending futures fail with
 * RLAB_EBROKEN and later submits return it.  Workers are non-daemon
 * threads; a pool never freed is shut down (without waiting) at exit, and
 * its queued tasks still run, as in CPython.  A pool is not usable in the
 * child of a fork. */
rlab_executor *rlab_thread_pool_new(int max_workers, const char *prefix,
                                    int (*init)(void *), void *init_arg);

/* submit(fn, arg): 0 and *out (a new future reference); RLAB_ESHUTDOWN after
 * shutdown; RLAB_EBROKEN if the pool is broken; EINVAL; ENOMEM. */
int rlab_executor_submit(rlab_executor *ex, rlab_task_fn fn, void *arg,
                         rlab_future **out);

/* map(fn, args, timeout): runs fn(args[i]) for i < n and stores results[i]
 * and codes[i] (either array may be NULL) in input order.  Returns 0 when
 * every task completed (a task's failure shows in codes[i]); ETIMEDOUT if
 * the deadline passed first: the tasks not yet started are cancelled and
 * their codes[i] are RLAB_ECANCELLED, those still running report
 * ETIMEDOUT; RLAB_ESHUTDOWN or RLAB_EBROKEN if nothing could be submitted.
 * If a submit fails part way (a concurrent shutdown, say), the items not
 * submitted report that code in codes[i], the others are collected, and it
 * is returned (ETIMEDOUT takes precedence).  results[i] is NULL for an item
 * whose code is not 0.  The deadline is set before the first submit.
 * rlab_executor_map_chunked sends chunksize items per task (>= 1; EINVAL
 * for 0), which cuts the per-task cost for cheap functions; a chunk's code
 * (cancelled, still running) applies to each of its items.  args is read
 * only during the call. */
int rlab_executor_map(rlab_executor *ex, rlab_task_fn fn, void **args, size_t n,
                      void **results, int *codes, double timeout);
int rlab_executor_map_chunked(rlab_executor *ex, rlab_task_fn fn, void **args,
                              size_t n, size_t chunksize, void **results,
                              int *codes, double timeout);

/* shutdown(wait, cancel_futures): no more submits; with cancel_futures the
 * pending futures are cancelled; with wait, returns after every running and
 * pending task is done and the workers exited.  0 or EINVAL; may be called
 * again. */
int rlab_executor_shutdown(rlab_executor *ex, bool wait, bool cancel_futures);
/* shutdown(wait=True), then frees the executor (NULL is a no-op).  Futures
 * the caller still holds stay valid.  Not from one of its own tasks or
 * callbacks (a shutdown with wait called there skips joining the calling
 * worker). */
void rlab_executor_free(rlab_executor *ex);
/* The pool size (max_workers after the default is applied). */
int rlab_executor_max_workers(rlab_executor *ex);

#ifdef __cplusplus
}
#endif

#endif
