/*
 * executor.c - concurrent.futures.Executor: the generic calls, and map()
 * built on submit and futures alone, so every executor gets it.
 *
 * map() follows Executor.map: the deadline is set before anything is
 * submitted, every item is submitted first, then the results are collected
 * in input order; when the deadline passes, the futures not yet collected
 * are cancelled (those that already started keep running).
 *
 * map_chunked() sends `chunksize` items per task.  A chunk owns a copy of
 * its arguments and its own result slots, so a chunk still running after a
 * timed-out map returned touches only memory it shares, by a reference
 * count, with map; the reference the task side holds is dropped by a done
 * callback, which runs exactly once however the future ends (finished,
 * cancelled, broken).
 */
#include <stdlib.h>
#include <string.h>

#include "executor_impl.h"

int rlab_executor_submit(rlab_executor *ex, rlab_task_fn fn, void *arg,
                         rlab_future **out)
{
    if (!ex || !fn || !out)
        return EINVAL;
    return ex->ops->submit(ex, fn, arg, out);
}

int rlab_executor_shutdown(rlab_executor *ex, bool wait, bool cancel_futures)
{
    if (!ex)
        return EINVAL;
    return ex->ops->shutdown(ex, wait, cancel_futures);
}

void rlab_executor_free(rlab_executor *ex)
{
    if (!ex)
        return;
    ex->ops->shutdown(ex, true, false);
    ex->ops->destroy(ex);
}

int rlab_executor_max_workers(rlab_executor *ex)
{
    return ex ? ex->ops->max_workers(ex) : 0;
}

/* ----------------------------------------------------------------- map --- */

/* The outcome of item i from its done future (or from the deadline). */
void rlab__map_store(void **results, int *codes, size_t i, int code,
                     void *res)
{
    if (results)
        results[i] = code == 0 ? res : NULL;
    if (codes)
        codes[i] = code;
}

/* After the deadline: cancels what has not started; a future still running
 * reports ETIMEDOUT, a done one its own code. */
static int give_up(rlab_future *f, void **res)
{
    if (rlab_future_cancel(f))
        return RLAB_ECANCELLED;
    if (!rlab_future_done(f))
        return ETIMEDOUT;
    return rlab_future_result(f, 0, res);
}

static int check_map_args(rlab_executor *ex, rlab_task_fn fn, void **args,
                          size_t n, double timeout, rlab_deadline *d)
{
    if (!ex || !fn || (n > 0 && !args) || rlab__deadline(timeout, d))
        return EINVAL;
    return 0;
}

/* Waits for fs[i] until the deadline (once it has passed, gives up on the
 * rest without waiting) and returns its outcome. */
int rlab__map_collect(rlab_future *f, const rlab_deadline *d, bool *expired,
                      void **res)
{
    if (!*expired && rlab__future_wait(f, d) == ETIMEDOUT)
        *expired = true;
    int code = *expired ? give_up(f, res) : rlab_future_result(f, 0, res);
    if (code == 0 && res)
        rlab__future_take_result(f); /* the caller's now */
    return code;
}

int rlab_executor_map(rlab_executor *ex, rlab_task_fn fn, void **args, size_t n,
                      void **results, int *codes, double timeout)
{
    rlab_deadline d;
    if (check_map_args(ex, fn, args, n, timeout, &d))
        return EINVAL;
    if (n == 0)
        return 0;
    rlab_future **fs = malloc(n * sizeof *fs);
    if (!fs)
        return ENOMEM;
    int rc = 0;
    size_t submitted = 0;
    while (submitted < n && rc == 0) {
        rc = ex->ops->submit(ex, fn, args[submitted], &fs[submitted]);
        submitted += rc == 0;
    }
    if (submitted == 0) {
        free(fs);
        return rc;
    }
    /* A later submit failed (a shutdown or a break raced with map): those
     * items report it, and the submitted ones are still collected. */
    for (size_t i = submitted; i < n; i++)
        rlab__map_store(results, codes, i, rc, NULL);
    bool expired = false;
    for (size_t i = 0; i < submitted; i++) {
        void *res = NULL;
        int code = rlab__map_collect(fs[i], &d, &expired, &res);
        rlab__map_store(results, codes, i, code, res);
        rlab_future_free(fs[i]);
    }
    free(fs);
    return expired ? ETIMEDOUT : rc;
}

/* ------------------------------------------------------------- chunks --- */

typedef struct chunk {
    atomic_int refs; /* map's, and the task side's (a done callback) */
    rlab_task_fn fn;
    size_t n;
    void **args, **results;
    int *codes;
} chunk;

static chunk *chunk_new(rlab_task_fn fn, void **args, size_t n)
{
    chunk *c = malloc(sizeof *c + n * (2 * sizeof(void *) + sizeof(int)));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 2);
    c->fn = fn;
    c->n = n;
    c->args = (void **)(c + 1);
    c->results = c->args + n;
    c->codes = (int *)(c->results + n);
    memcpy(c->args, args, n * sizeof *args);
    return c;
}

static void chunk_unref(chunk *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        free(c);
}

static void chunk_released(rlab_future *f, void *c)
{
    (void)f;
    chunk_unref(c);
}

static int run_chunk(void *arg, void **result)
{
    chunk *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        c->results[i] = NULL;
        c->codes[i] = c->fn(c->args[i], &c->results[i]);
    }
    *result = NULL;
    return 0;
}

/* Submits one chunk: 0 and *out, or the submit's code (nothing kept). */
static int submit_chunk(rlab_executor *ex, chunk *c, rlab_future **out)
{
    int rc = ex->ops->submit(ex, run_chunk, c, out);
    if (rc)
        return rc;
    /* A fresh future's first callback takes its inline slot, so this does
     * not fail; if it ever did, wait for the task before letting go. */
    if (rlab_future_add_done_callback(*out, chunk_released, c)) {
        static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
        rlab__future_wait(*out, &forever);
        chunk_unref(c);
    }
    return 0;
}

/* Stores the outcome of a collected chunk: the items' own results when it
 * ran, else the chunk's code for every item. */
static void store_chunk(chunk *c, size_t first, int code, void **results,
                        int *codes)
{
    for (size_t i = 0; i < c->n; i++) {
        if (code == 0)
            rlab__map_store(results, codes, first + i, c->codes[i], c->results[i]);
        else
            rlab__map_store(results, codes, first + i, code, NULL);
    }
}

int rlab_executor_map_chunked(rlab_executor *ex, rlab_task_fn fn, void **args,
                              size_t n, size_t chunksize, void **results,
                              int *codes, double timeout)
{
    rlab_deadline d;
    if (chunksize == 0 || check_map_args(ex, fn, args, n, timeout, &d))
        return EINVAL;
    if (chunksize == 1)
        return rlab_executor_map(ex, fn, args, n, results, codes, timeout);
    if (n == 0)
        return 0;
    if (ex->ops->map_chunked)
        return ex->ops->map_chunked(ex, fn, args, n, chunksize, results, codes,
                                    &d);
    size_t nchunks = n / chunksize + (n % chunksize != 0);
    rlab_future **fs = malloc(nchunks * sizeof *fs);
    chunk **cs = malloc(nchunks * sizeof *cs);
    if (!fs || !cs) {
        free(fs);
        free(cs);
        return ENOMEM;
    }
    int rc = 0;
    size_t submitted = 0;
    while (submitted < nchunks && rc == 0) {
        size_t first = submitted * chunksize;
        size_t len = n - first < chunksize ? n - first : chunksize;
        cs[submitted] = chunk_new(fn, args + first, len);
        rc = cs[submitted] ? submit_chunk(ex, cs[submitted], &fs[submitted])
                           : ENOMEM;
        if (rc)
            free(cs[submitted]);
        submitted += rc == 0;
    }
    if (submitted == 0) {
        free(fs);
        free(cs);
        return rc;
    }
    for (size_t i = submitted * chunksize; i < n; i++)
        rlab__map_store(results, codes, i, rc, NULL);
    bool expired = false;
    for (size_t k = 0; k < submitted; k++) {
        int code = rlab__map_collect(fs[k], &d, &expired, NULL);
        store_chunk(cs[k], k * chunksize, code, results, codes);
        chunk_unref(cs[k]);
        rlab_future_free(fs[k]);
    }
    free(fs);
    free(cs);
    return expired ? ETIMEDOUT : rc;
}
