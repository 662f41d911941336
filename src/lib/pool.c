/*
 * pool.c - multiprocessing.Pool on the process pool's engine
 * (process_pool.c): apply and apply_async are single jobs, map, map_async
 * and imap send chunk jobs whose answers carry every item's outcome.
 *
 * An AsyncResult holds its futures; a map's outcome is unpacked once, into
 * buffers the result owns.  imap_unordered learns which chunk finished
 * from a done callback that queues its index; the queue lives in a block
 * shared by the iterator and the callbacks still to run, so either may end
 * first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor_impl.h"
#include "mp_internal.h"
#include "racelab/queue.h"

enum { POOL_RUN, POOL_CLOSED, POOL_TERMINATED };

struct rlab_pool {
    rlab_executor *ex;
    int processes;
    pthread_mutex_t mu;
    int state;
    bool joined;
};

rlab_pool *rlab_pool_new(int processes, const rlab_process_pool_opts *opts)
{
    rlab_pool *p = calloc(1, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    p->ex = rlab_process_pool_new(processes, opts);
    if (!p->ex) {
        int e = errno;
        free(p);
        errno = e;
        return NULL;
    }
    p->processes = rlab_executor_max_workers(p->ex);
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

/* ------------------------------------------------------------- chunks --- */

/* Python's map chunksize: n / (4 * processes), rounded up. */
static size_t default_chunksize(const rlab_pool *p, size_t n)
{
    size_t per = 4 * (size_t)p->processes;
    size_t c = n / per + (n % per != 0);
    return c ? c : 1;
}

/* Submits n items as chunk jobs into *fs; on failure nothing is kept
 * (the jobs already queued still run). */
static int submit_chunks(rlab_pool *p, rlab_task_fn fn, rlab_bytes *const *args,
                         size_t n, size_t chunksize, rlab_future ***fs,
                         size_t *nchunks)
{
    if (!p || !fn || (n > 0 && !args))
        return EINVAL;
    int rc = rlab__ppool_submit_chunks(p->ex, fn, args, n, chunksize, fs,
                                       nchunks);
    if (rc) {
        for (size_t j = 0; *fs && j < *nchunks; j++)
            rlab_future_free((*fs)[j]);
        free(*fs);
        *fs = NULL;
    }
    return rc;
}

static size_t chunk_len(size_t n, size_t chunksize, size_t k)
{
    size_t first = k * chunksize;
    return n - first < chunksize ? n - first : chunksize;
}

/* ------------------------------------------------------- AsyncResult --- */

struct rlab_async_result {
    bool map;
    size_t n, chunksize, nchunks;
    rlab_future **fs; /* one (apply) or the chunks */
    pthread_mutex_t mu;
    bool unpacked; /* a map's outcome, made once */
    int first_fail;
    rlab_bytes **results;
    int *codes;
};

static rlab_async_result *result_new(bool map, size_t n, size_t chunksize,
                                     rlab_future **fs, size_t nchunks)
{
    rlab_async_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->map = map;
    r->n = n;
    r->chunksize = chunksize;
    r->fs = fs;
    r->nchunks = nchunks;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

int rlab_pool_apply_async(rlab_pool *p, rlab_task_fn fn, const void *arg,
                          size_t len, rlab_async_result **out)
{
    if (!p || !fn || !out || (!arg && len))
        return EINVAL;
    rlab_bytes *b = rlab_bytes_new(arg, len);
    rlab_future **fs = malloc(sizeof *fs);
    int rc = b && fs ? rlab__ppool_submit(p->ex, fn, &b, 1, false, fs) : ENOMEM;
    rlab_bytes_free(b);
    rlab_async_result *r = rc ? NULL : result_new(false, 1, 1, fs, 1);
    if (!rc && !r) {
        rlab_future_free(fs[0]);
        rc = ENOMEM;
    }
    if (rc) {
        free(fs);
        return rc;
    }
    *out = r;
    return 0;
}

int rlab_pool_map_async(rlab_pool *p, rlab_task_fn fn, rlab_bytes *const *args,
                        size_t n, size_t chunksize, rlab_async_result **out)
{
    if (!p || !out)
        return EINVAL;
    if (chunksize == 0)
        chunksize = default_chunksize(p, n);
    rlab_future **fs;
    size_t k;
    int rc = submit_chunks(p, fn, args, n, chunksize, &fs, &k);
    if (rc)
        return rc;
    rlab_async_result *r = result_new(true, n, chunksize, fs, k);
    if (!r) {
        for (size_t i = 0; i < k; i++)
            rlab_future_free(fs[i]);
        free(fs);
        return ENOMEM;
    }
    *out = r;
    return 0;
}

int rlab_async_result_wait(rlab_async_result *r, double timeout)
{
    if (!r)
        return EINVAL;
    if (r->nchunks == 0)
        return rlab__timeout_ok(timeout) ? 0 : EINVAL;
    return rlab_wait(r->fs, r->nchunks, timeout, RLAB_ALL_COMPLETED, NULL);
}

bool rlab_async_result_ready(rlab_async_result *r)
{
    for (size_t i = 0; r && i < r->nchunks; i++)
        if (!rlab_future_done(r->fs[i]))
            return false;
    return r != NULL;
}

/* Under r->mu, once every chunk is done: each item's outcome into r. */
static int unpack_locked(rlab_async_result *r)
{
    if (r->unpacked)
        return 0;
    r->results = calloc(r->n ? r->n : 1, sizeof *r->results);
    r->codes = calloc(r->n ? r->n : 1, sizeof *r->codes);
    if (!r->results || !r->codes) {
        free(r->results);
        free(r->codes);
        r->results = NULL;
        r->codes = NULL;
        return ENOMEM;
    }
    for (size_t k = 0; k < r->nchunks; k++) {
        void *packed = NULL;
        int code = rlab_future_result(r->fs[k], 0, &packed);
        size_t i = k * r->chunksize, end = i + chunk_len(r->n, r->chunksize, k);
        size_t at = 0, len;
        const unsigned char *data;
        int icode;
        while (code == 0 && rlab__chunk_next(packed, &at, &icode, &data, &len)) {
            if (icode == 0 && !(r->results[i] = rlab_bytes_new(data, len)))
                icode = ENOMEM;
            r->codes[i++] = icode;
        }
        while (i < end)
            r->codes[i++] = code;
    }
    for (size_t i = 0; i < r->n && !r->first_fail; i++)
        r->first_fail = r->codes[i];
    r->unpacked = true;
    return 0;
}

int rlab_async_result_get_map(rlab_async_result *r, double timeout,
                              const rlab_bytes **results, int *codes)
{
    if (!r || !r->map)
        return EINVAL;
    int rc = rlab_async_result_wait(r, timeout);
    if (rc)
        return rc;
    pthread_mutex_lock(&r->mu);
    rc = unpack_locked(r);
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        if (results)
            results[i] = r->results[i];
        if (codes)
            codes[i] = r->codes[i];
    }
    if (rc == 0)
        rc = r->first_fail;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int rlab_async_result_get(rlab_async_result *r, double timeout,
                          const rlab_bytes **result)
{
    if (!r || r->map)
        return EINVAL;
    void *res = NULL;
    int rc = rlab_future_result(r->fs[0], timeout, &res);
    if (result)
        *result = rc == 0 ? res : NULL;
    return rc;
}

int rlab_async_result_successful(rlab_async_result *r, bool *ok)
{
    if (!r || !ok)
        return EINVAL;
    if (!rlab_async_result_ready(r))
        return EAGAIN;
    if (!r->map) {
        *ok = rlab_future_result(r->fs[0], 0, NULL) == 0;
        return 0;
    }
    pthread_mutex_lock(&r->mu);
    int rc = unpack_locked(r);
    *ok = r->first_fail == 0;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void rlab_async_result_free(rlab_async_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nchunks; i++)
        rlab_future_free(r->fs[i]);
    if (r->results)
        for (size_t i = 0; i < r->n; i++)
            rlab_bytes_free(r->results[i]);
    free(r->results);
    free(r->codes);
    free(r->fs);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int rlab_pool_apply(rlab_pool *p, rlab_task_fn fn, const void *arg, size_t len,
                    rlab_bytes **result)
{
    if (!result)
        return EINVAL;
    rlab_async_result *r;
    int rc = rlab_pool_apply_async(p, fn, arg, len, &r);
    if (rc)
        return rc;
    rc = rlab_future_result(r->fs[0], RLAB_FOREVER, NULL);
    *result = rc == 0 ? rlab__future_take_result(r->fs[0]) : NULL;
    rlab_async_result_free(r);
    return rc;
}

int rlab_pool_map(rlab_pool *p, rlab_task_fn fn, rlab_bytes *const *args,
                  size_t n, size_t chunksize, rlab_bytes **results, int *codes)
{
    rlab_async_result *r;
    int rc = rlab_pool_map_async(p, fn, args, n, chunksize, &r);
    if (rc)
        return rc;
    rc = rlab_async_result_get_map(r, RLAB_FOREVER, NULL, codes);
    if (rc != ENOMEM && r->unpacked) {
        for (size_t i = 0; i < n; i++) {
            if (results)
                results[i] = r->results[i];
            else
                rlab_bytes_free(r->results[i]);
            r->results[i] = NULL; /* the caller's now */
        }
    }
    rlab_async_result_free(r);
    return rc;
}

/* --------------------------------------------------------------- imap --- */

/* What imap_unordered's done callbacks share with the iterator. */
typedef struct sink sink;
typedef struct {
    sink *s;
    size_t k;
} sink_slot;

struct sink {
    atomic_size_t refs; /* the iterator's and one per callback to come */
    rlab_simple_queue *done; /* chunk index + 1, as each finishes */
    sink_slot slot[];
};

static void sink_unref(sink *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        rlab_simple_queue_free(s->done, NULL);
        free(s);
    }
}

static void sink_done(rlab_future *f, void *arg)
{
    (void)f;
    sink_slot *slot = arg;
    sink *s = slot->s;
    if (rlab_simple_queue_put(s->done, (void *)(uintptr_t)(slot->k + 1)) != 0)
        abort(); /* cannot happen: put only fails on ENOMEM before use */
    sink_unref(s);
}

struct rlab_imap {
    bool ordered;
    size_t n, chunksize, nchunks;
    rlab_future **fs;
    sink *s;
    size_t yielded, next_chunk; /* ordered: the chunk to load next */
    bool loaded;                /* a chunk being handed out */
    size_t k, item, at;         /* which, its next item, offset */
    int code;                   /* its future's code */
    const rlab_bytes *packed;
};

int rlab_pool_imap(rlab_pool *p, rlab_task_fn fn, rlab_bytes *const *args,
                   size_t n, size_t chunksize, bool ordered, rlab_imap **out)
{
    if (!p || !out)
        return EINVAL;
    if (chunksize == 0)
        chunksize = 1;
    rlab_imap *it = calloc(1, sizeof *it);
    if (!it)
        return ENOMEM;
    int rc = submit_chunks(p, fn, args, n, chunksize, &it->fs, &it->nchunks);
    if (rc) {
        free(it);
        return rc;
    }
    it->ordered = ordered;
    it->n = n;
    it->chunksize = chunksize;
    if (!ordered) {
        it->s = malloc(sizeof *it->s + it->nchunks * sizeof(sink_slot));
        if (!it->s || !(it->s->done = rlab_simple_queue_new())) {
            free(it->s);
            it->s = NULL;
            rlab_imap_free(it);
            return ENOMEM;
        }
        atomic_init(&it->s->refs, 1 + it->nchunks);
        for (size_t k = 0; k < it->nchunks; k++) {
            it->s->slot[k] = (sink_slot){it->s, k};
            /* A fresh future's first callback takes its inline slot. */
            if (rlab_future_add_done_callback(it->fs[k], sink_done,
                                              &it->s->slot[k]))
                abort();
        }
    }
    *out = it;
    return 0;
}

/* Loads the next chunk to hand out: 0 or ETIMEDOUT. */
static int imap_load(rlab_imap *it, double timeout)
{
    size_t k;
    if (it->ordered) {
        k = it->next_chunk;
        int rc = rlab_wait(&it->fs[k], 1, timeout, RLAB_ALL_COMPLETED, NULL);
        if (rc)
            return rc;
        it->next_chunk++;
    } else {
        void *v;
        int rc = rlab_simple_queue_get(it->s->done, &v, timeout);
        if (rc)
            return rc == EAGAIN ? ETIMEDOUT : rc;
        k = (size_t)(uintptr_t)v - 1;
    }
    void *packed = NULL;
    it->code = rlab_future_result(it->fs[k], 0, &packed);
    it->packed = packed;
    it->k = k;
    it->item = 0;
    it->at = 0;
    it->loaded = true;
    return 0;
}

int rlab_imap_next(rlab_imap *it, double timeout, size_t *index, int *code,
                   rlab_bytes **result)
{
    if (!it || !code || !result || !rlab__timeout_ok(timeout))
        return EINVAL;
    if (it->yielded == it->n)
        return RLAB_EEOF;
    if (!it->loaded) {
        int rc = imap_load(it, timeout);
        if (rc)
            return rc;
    }
    size_t i = it->k * it->chunksize + it->item;
    int c = it->code;
    rlab_bytes *res = NULL;
    const unsigned char *data;
    size_t len;
    if (c == 0 && rlab__chunk_next(it->packed, &it->at, &c, &data, &len) &&
        c == 0 && !(res = rlab_bytes_new(data, len)))
        c = ENOMEM;
    if (++it->item == chunk_len(it->n, it->chunksize, it->k))
        it->loaded = false;
    it->yielded++;
    if (index)
        *index = i;
    *code = c;
    *result = res;
    return 0;
}

void rlab_imap_free(rlab_imap *it)
{
    if (!it)
        return;
    for (size_t k = 0; k < it->nchunks; k++)
        rlab_future_free(it->fs[k]);
    free(it->fs);
    if (it->s)
        sink_unref(it->s);
    free(it);
}

/* ------------------------------------------------- close, terminate --- */

int rlab_pool_close(rlab_pool *p)
{
    if (!p)
        return EINVAL;
    pthread_mutex_lock(&p->mu);
    if (p->state == POOL_RUN)
        p->state = POOL_CLOSED;
    pthread_mutex_unlock(&p->mu);
    return rlab_executor_shutdown(p->ex, false, false);
}

int rlab_pool_terminate(rlab_pool *p)
{
    if (!p)
        return EINVAL;
    pthread_mutex_lock(&p->mu);
    p->state = POOL_TERMINATED;
    pthread_mutex_unlock(&p->mu);
    rlab__ppool_terminate(p->ex);
    return 0;
}

int rlab_pool_join(rlab_pool *p, double timeout)
{
    if (!p)
        return EINVAL;
    pthread_mutex_lock(&p->mu);
    int state = p->state;
    pthread_mutex_unlock(&p->mu);
    if (state == POOL_RUN)
        return EPERM; /* Python: ValueError("Pool is still running") */
    int rc = rlab__ppool_join(p->ex, timeout);
    if (rc == 0) {
        pthread_mutex_lock(&p->mu);
        p->joined = true;
        pthread_mutex_unlock(&p->mu);
    }
    return rc;
}

void rlab_pool_free(rlab_pool *p)
{
    if (!p)
        return;
    if (!p->joined) {
        rlab_pool_terminate(p);
        rlab_pool_join(p, RLAB_FOREVER);
    }
    rlab_executor_free(p->ex);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
