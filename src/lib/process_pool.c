/*
 * process_pool.c - concurrent.futures.ProcessPoolExecutor, and the engine
 * under multiprocessing.Pool (pool.c).
 *
 * Each worker process has a duplex connection of its own and a thread of
 * its own in the parent, which takes queued futures in batches, sends a
 * batch as one message and completes each future as its result comes back
 * (the worker answers job by job).  A batch is about queued / workers jobs
 * (at most BATCH_MAX), so one-by-one submissions of cheap tasks cost a
 * fraction of a round trip each, and a few slow tasks still spread over
 * every worker.
 *
 * Own connections make failures exact: the thread of a worker that dies
 * sees end of file (or, while the worker is idle or its socket was
 * inherited by some other child, finds the process gone), and breaks the
 * pool: every queued and running future fails with RLAB_EBROKEN, the other
 * workers are killed, each thread reaps its own.  The parent never blocks
 * on a worker that might be dead for longer than POLL_S.
 *
 * Wire format (native byte order: both ends are this program):
 *   job      u8 namelen, name, u8 chunk, u32 nitems, {u64 len, bytes}...
 *   batch    u32 njobs, job... (njobs 0: exit)
 *   answer   u32 nitems, {i32 code, u64 len, bytes}...   one per job
 * A chunk future's result is its answer as it came; a single job's is the
 * item's bytes, with the item's code as the future's.
 *
 * Workers are started under one process-wide lock, with the child's end of
 * the connection closed before the lock is released, so a worker started
 * by fork never inherits another worker's end (which would hide that
 * worker's end of file).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "executor_impl.h"
#include "mp_internal.h"

#define MAX_WORKERS 1024
#define MAX_JOB ((size_t)1 << 30)
#define CONN_MAX (MAX_JOB + ((size_t)1 << 16))
#define BATCH_MAX 64
#define BATCH_BYTES ((size_t)4 << 20)
#define POLL_S 0.25          /* how often a waiting thread checks its worker */
#define EXIT_GRACE_S 5.0     /* a worker asked to exit, before it is killed */

typedef struct ppool ppool;

typedef struct {
    ppool *pool;
    pthread_t thread;
    bool started, joined;
    rlab_process *proc; /* swapped on respawn under pool->mu */
    rlab_conn *conn;    /* the thread's own */
    long tasks;         /* jobs the current process took */
} worker;

struct ppool {
    struct rlab_executor base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rlab_future *head, *tail;
    size_t queued;
    bool shutdown, broken, terminated;
    int nworkers;
    long max_tasks;
    rlab_start_method method;
    rlab_bytes *boot; /* the worker's argument: initializer name and arg */
    pthread_mutex_t join_mu;
    worker w[];
};

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;

static void bytes_free(void *b)
{
    rlab_bytes_free(b);
}

/* ----------------------------------------------------------------- jobs --- */

/* An uninitialized buffer of len bytes (rlab_bytes_new copies). */
static rlab_bytes *bytes_alloc(size_t len)
{
    rlab_bytes *b = malloc(sizeof *b + len);
    if (b)
        b->len = len;
    else
        errno = ENOMEM;
    return b;
}

static void put32(unsigned char **at, uint32_t v)
{
    memcpy(*at, &v, 4);
    *at += 4;
}

static void put64(unsigned char **at, uint64_t v)
{
    memcpy(*at, &v, 8);
    *at += 8;
}

/* Reads n bytes at *at if they are there before end. */
static bool take(const unsigned char **at, const unsigned char *end, void *out,
                 size_t n)
{
    if ((size_t)(end - *at) < n)
        return false;
    memcpy(out, *at, n);
    *at += n;
    return true;
}

/* A job buffer for fn's name and n items (NULL items are empty); NULL with
 * errno ENOMEM or EMSGSIZE. */
static rlab_bytes *job_new(const char *name, rlab_bytes *const *args, size_t n,
                           bool chunk)
{
    size_t nlen = strlen(name);
    size_t total = 1 + nlen + 1 + 4;
    for (size_t i = 0; i < n; i++) {
        size_t l = args[i] ? args[i]->len : 0;
        if (l > MAX_JOB || total + 8 + l > MAX_JOB) {
            errno = EMSGSIZE;
            return NULL;
        }
        total += 8 + l;
    }
    if (n > UINT32_MAX) {
        errno = EMSGSIZE;
        return NULL;
    }
    rlab_bytes *job = bytes_alloc(total);
    if (!job)
        return NULL;
    unsigned char *at = job->data;
    *at++ = (unsigned char)nlen;
    memcpy(at, name, nlen);
    at += nlen;
    *at++ = chunk;
    put32(&at, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t l = args[i] ? args[i]->len : 0;
        put64(&at, l);
        if (l)
            memcpy(at, args[i]->data, l);
        at += l;
    }
    return job;
}

static void job_info(const rlab_bytes *job, bool *chunk, uint32_t *nitems)
{
    const unsigned char *at = job->data + 1 + job->data[0];
    *chunk = *at++;
    memcpy(nitems, at, 4);
}

/* Checks an answer of nitems items. */
static bool answer_ok(const unsigned char *data, size_t len, uint32_t nitems)
{
    const unsigned char *at = data, *end = data + len;
    uint32_t n;
    if (!take(&at, end, &n, 4) || n != nitems)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        int32_t code;
        uint64_t l;
        if (!take(&at, end, &code, 4) || !take(&at, end, &l, 8) ||
            (uint64_t)(end - at) < l)
            return false;
        at += l;
    }
    return at == end;
}

bool rlab__chunk_next(const rlab_bytes *packed, size_t *at, int *code,
                      const unsigned char **data, size_t *len)
{
    const unsigned char *p = packed->data + (*at ? *at : 4);
    const unsigned char *end = packed->data + packed->len;
    int32_t c;
    uint64_t l;
    if (!take(&p, end, &c, 4) || !take(&p, end, &l, 8))
        return false;
    *code = c;
    *data = p;
    *len = (size_t)l;
    *at = (size_t)(p + l - packed->data);
    return true;
}

/* Drops the pool's hold on a future taken from the queue. */
static void drop(rlab_future *f)
{
    rlab_bytes_free(f->arg);
    f->arg = NULL;
    rlab_future_free(f);
}

static void fail(rlab_future *f, int code)
{
    rlab__future_complete(f, code, NULL);
    drop(f);
}

/* Fails (or cancels) a list of queued futures. */
static void fail_queued(rlab_future *f, int code)
{
    while (f) {
        rlab_future *next = f->next;
        if (code == RLAB_ECANCELLED)
            rlab_future_cancel(f);
        else if (rlab__future_start(f))
            rlab__future_complete(f, code, NULL);
        drop(f);
        f = next;
    }
}

/* -------------------------------------------------------- the workers --- */

static int worker_start(worker *w)
{
    ppool *pp = w->pool;
    rlab_conn *mine = NULL, *theirs = NULL;
    pthread_mutex_lock(&start_mu);
    int rc = rlab_pipe(true, &mine, &theirs);
    rlab_process *p = NULL;
    if (rc == 0) {
        rlab_process_opts o = {.daemon = true,
                               .method = pp->method,
                               .conns = &theirs,
                               .nconns = 1};
        p = rlab_process_new(rlab__pool_worker, pp->boot->data, pp->boot->len,
                             &o);
        rc = p ? rlab_process_start(p) : errno;
        rlab_conn_close(theirs);
    }
    pthread_mutex_unlock(&start_mu);
    if (rc) {
        rlab_process_free(p);
        rlab_conn_close(mine);
        return rc;
    }
    rlab_conn_set_max_message(mine, CONN_MAX);
    w->conn = mine;
    w->tasks = 0;
    pthread_mutex_lock(&pp->mu);
    w->proc = p;
    bool doomed = pp->broken || pp->terminated;
    pthread_mutex_unlock(&pp->mu);
    if (doomed)
        rlab_process_kill(p);
    return 0;
}

/* Ends the current worker process: asked to exit (polite), or killed. */
static void worker_stop(worker *w, bool polite)
{
    ppool *pp = w->pool;
    if (!w->proc)
        return;
    if (polite) {
        uint32_t zero = 0;
        rlab_conn_send(w->conn, &zero, sizeof zero);
    }
    rlab_conn_close(w->conn);
    w->conn = NULL;
    if (!polite || rlab_process_join(w->proc, EXIT_GRACE_S) != 0) {
        rlab_process_kill(w->proc);
        rlab_process_join(w->proc, RLAB_FOREVER);
    }
    pthread_mutex_lock(&pp->mu);
    rlab_process *p = w->proc;
    w->proc = NULL;
    pthread_mutex_unlock(&pp->mu);
    rlab_process_free(p);
}

/* Under pp->mu: empties the queue (returning what was in it), kills every
 * worker and wakes every thread. */
static rlab_future *stop_all_locked(ppool *pp)
{
    rlab_future *q = pp->head;
    pp->head = pp->tail = NULL;
    pp->queued = 0;
    for (int i = 0; i < pp->nworkers; i++)
        if (pp->w[i].proc)
            rlab_process_kill(pp->w[i].proc);
    pthread_cond_broadcast(&pp->cv);
    return q;
}

/* BrokenProcessPool: fails everything queued, kills every worker (their
 * threads see it and fail what they were running).  Nothing to do once
 * the pool is terminated: that was asked for. */
static void pool_break(ppool *pp)
{
    pthread_mutex_lock(&pp->mu);
    if (pp->broken || pp->terminated) {
        pthread_mutex_unlock(&pp->mu);
        return;
    }
    pp->broken = true;
    rlab_future *q = stop_all_locked(pp);
    pthread_mutex_unlock(&pp->mu);
    fail_queued(q, RLAB_EBROKEN);
}

/* What the futures a lost worker was running end with. */
static int lost_code(ppool *pp)
{
    pthread_mutex_lock(&pp->mu);
    int code = pp->terminated ? RLAB_ECANCELLED : RLAB_EBROKEN;
    pthread_mutex_unlock(&pp->mu);
    return code;
}

enum { TAKE_EXIT, TAKE_BATCH, TAKE_DIED };

/* Waits for work: TAKE_BATCH with up to BATCH_MAX running futures in
 * batch (*nb may be 0 when all were cancelled), TAKE_EXIT when the pool is
 * shut down and empty or broken, TAKE_DIED when the idle worker died. */
static int take_batch(worker *w, rlab_future **batch, int *nb)
{
    ppool *pp = w->pool;
    *nb = 0;
    pthread_mutex_lock(&pp->mu);
    while (!pp->head && !pp->shutdown && !pp->broken) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(POLL_S * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&pp->cv, &pp->mu, &ts) == ETIMEDOUT &&
            !pp->head && !rlab_process_is_alive(w->proc)) {
            pthread_mutex_unlock(&pp->mu);
            return TAKE_DIED;
        }
    }
    if (pp->broken || !pp->head) {
        pthread_mutex_unlock(&pp->mu);
        return TAKE_EXIT;
    }
    size_t k = (pp->queued + (size_t)pp->nworkers - 1) / (size_t)pp->nworkers;
    if (k > BATCH_MAX)
        k = BATCH_MAX;
    if (pp->max_tasks && k > (size_t)(pp->max_tasks - w->tasks))
        k = (size_t)(pp->max_tasks - w->tasks);
    size_t bytes = 0;
    while (pp->head && (size_t)*nb < k && (*nb == 0 || bytes < BATCH_BYTES)) {
        rlab_future *f = pp->head;
        pp->head = f->next;
        if (!pp->head)
            pp->tail = NULL;
        pp->queued--;
        f->next = NULL;
        if (!rlab__future_start(f)) { /* cancelled while queued */
            drop(f);
            continue;
        }
        bytes += ((rlab_bytes *)f->arg)->len;
        batch[(*nb)++] = f;
    }
    pthread_mutex_unlock(&pp->mu);
    return TAKE_BATCH;
}

/* Receives one answer, checking now and then that the worker still
 * lives: 0 and the message, or a code (the worker is lost). */
static int recv_answer(worker *w, void **data, size_t *len)
{
    for (;;) {
        int rc = rlab_conn_recv(w->conn, POLL_S, data, len);
        if (rc != ETIMEDOUT)
            return rc;
        if (!rlab_process_is_alive(w->proc))
            return RLAB_EBROKEN;
    }
}

/* Completes f from its answer: 0, or EPROTO for a malformed one. */
static int complete(rlab_future *f, void *data, size_t len)
{
    bool chunk;
    uint32_t nitems;
    job_info(f->arg, &chunk, &nitems);
    if (!answer_ok(data, len, nitems))
        return EPROTO;
    int code = 0;
    rlab_bytes *res;
    if (chunk) {
        res = rlab_bytes_new(data, len);
    } else { /* item 0, as answer_ok found it */
        int32_t c;
        uint64_t l;
        memcpy(&c, (unsigned char *)data + 4, 4);
        memcpy(&l, (unsigned char *)data + 8, 8);
        code = c;
        res = code == 0 ? rlab_bytes_new((unsigned char *)data + 16, (size_t)l)
                        : NULL;
    }
    if (!res && (chunk || code == 0))
        code = ENOMEM;
    f->result_free = bytes_free;
    rlab__future_complete(f, code, res);
    drop(f);
    return 0;
}

/* Sends a batch and completes its futures as answers come: 0, or a code
 * when the worker was lost (the futures not completed failed). */
static int run_batch(worker *w, rlab_future **batch, int nb)
{
    uint32_t nj = (uint32_t)nb;
    struct iovec iov[BATCH_MAX + 1];
    iov[0] = (struct iovec){&nj, sizeof nj};
    for (int i = 0; i < nb; i++) {
        rlab_bytes *job = batch[i]->arg;
        iov[i + 1] = (struct iovec){job->data, job->len};
    }
    w->tasks += nb;
    int rc = rlab__conn_sendv(w->conn, iov, nb + 1);
    int done = 0;
    while (rc == 0 && done < nb) {
        void *data;
        size_t len;
        rc = recv_answer(w, &data, &len);
        if (rc == 0) {
            rc = complete(batch[done], data, len);
            free(data);
            done += rc == 0;
        }
    }
    if (rc) {
        /* Broken first, so nobody who sees these futures fail can still
         * submit to a pool that looks whole. */
        pool_break(w->pool);
        int code = lost_code(w->pool);
        while (done < nb)
            fail(batch[done++], code);
    }
    return rc;
}

int rlab__ppool_submit_chunks(rlab_executor *ex, rlab_task_fn fn,
                              rlab_bytes *const *args, size_t n,
                              size_t chunksize, rlab_future ***fs,
                              size_t *submitted)
{
    size_t nchunks = n / chunksize + (n % chunksize != 0);
    *submitted = 0;
    *fs = calloc(nchunks ? nchunks : 1, sizeof **fs);
    if (!*fs)
        return ENOMEM;
    int rc = 0;
    while (*submitted < nchunks && rc == 0) {
        size_t first = *submitted * chunksize;
        size_t len = n - first < chunksize ? n - first : chunksize;
        rc = rlab__ppool_submit(ex, fn, args + first, len, true,
                                &(*fs)[*submitted]);
        *submitted += rc == 0;
    }
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ppool *pp = w->pool;
    rlab_future *batch[BATCH_MAX];
    int nb, took;
    bool healthy = true;
    while (healthy && (took = take_batch(w, batch, &nb)) != TAKE_EXIT) {
        if (took == TAKE_DIED || (nb > 0 && run_batch(w, batch, nb) != 0)) {
            healthy = false;
        } else if (pp->max_tasks && w->tasks >= pp->max_tasks) {
            /* maxtasksperchild: a fresh process takes over. */
            worker_stop(w, true);
            healthy = worker_start(w) == 0;
        }
    }
    if (!healthy)
        pool_break(pp);
    pthread_mutex_lock(&pp->mu);
    bool polite = !pp->broken && !pp->terminated;
    pthread_mutex_unlock(&pp->mu);
    worker_stop(w, polite);
    return NULL;
}

/* ------------------------------------------------------ the executor --- */

int rlab__ppool_submit(rlab_executor *ex, rlab_task_fn fn,
                       rlab_bytes *const *args, size_t n, bool chunk,
                       rlab_future **out)
{
    ppool *pp = (ppool *)ex;
    const char *name = fn ? rlab_task_name(fn) : NULL;
    if (!name || !out || (n > 0 && !args))
        return EINVAL;
    rlab_bytes *job = job_new(name, args, n, chunk);
    if (!job)
        return errno;
    rlab_future *f = rlab__future_task(fn, job, 2);
    if (!f) {
        rlab_bytes_free(job);
        return ENOMEM;
    }
    pthread_mutex_lock(&pp->mu);
    int rc = pp->broken ? RLAB_EBROKEN : pp->shutdown ? RLAB_ESHUTDOWN : 0;
    if (rc == 0) {
        if (pp->tail)
            pp->tail->next = f;
        else
            pp->head = f;
        pp->tail = f;
        pp->queued++;
        pthread_cond_signal(&pp->cv);
    }
    pthread_mutex_unlock(&pp->mu);
    if (rc) {
        rlab_future_free(f);
        drop(f);
        return rc;
    }
    *out = f;
    return 0;
}

static int pp_submit(rlab_executor *ex, rlab_task_fn fn, void *arg,
                     rlab_future **out)
{
    rlab_bytes *a = arg;
    return rlab__ppool_submit(ex, fn, &a, 1, false, out);
}

/* Joins the threads (until d): 0 or ETIMEDOUT.  The calling thread, if it
 * is one of them (a callback), is skipped. */
static int join_threads(ppool *pp, const rlab_deadline *d)
{
    int rc = 0;
    pthread_mutex_lock(&pp->join_mu);
    for (int i = 0; i < pp->nworkers && rc == 0; i++) {
        worker *w = &pp->w[i];
        if (!w->started || w->joined || pthread_equal(w->thread, pthread_self()))
            continue;
        if (d->kind == RLAB_WAIT_FOREVER) {
            rc = pthread_join(w->thread, NULL);
        } else {
            double left = d->kind == RLAB_WAIT_TRY
                              ? 0
                              : (double)d->at.tv_sec +
                                    (double)d->at.tv_nsec / 1e9 - rlab__now();
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (left > 0) {
                double t = (double)ts.tv_nsec / 1e9 + left;
                ts.tv_sec += (time_t)t;
                ts.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
            }
            rc = pthread_timedjoin_np(w->thread, NULL, &ts);
            if (rc == EBUSY)
                rc = ETIMEDOUT;
        }
        w->joined = rc == 0;
    }
    pthread_mutex_unlock(&pp->join_mu);
    return rc ? ETIMEDOUT : 0;
}

static int pp_shutdown(rlab_executor *ex, bool wait, bool cancel_futures)
{
    ppool *pp = (ppool *)ex;
    pthread_mutex_lock(&pp->mu);
    pp->shutdown = true;
    rlab_future *q = NULL;
    if (cancel_futures) {
        q = pp->head;
        pp->head = pp->tail = NULL;
        pp->queued = 0;
    }
    pthread_cond_broadcast(&pp->cv);
    pthread_mutex_unlock(&pp->mu);
    fail_queued(q, RLAB_ECANCELLED);
    if (wait) {
        static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
        join_threads(pp, &forever);
    }
    return 0;
}

void rlab__ppool_terminate(rlab_executor *ex)
{
    ppool *pp = (ppool *)ex;
    pthread_mutex_lock(&pp->mu);
    pp->shutdown = pp->terminated = true;
    rlab_future *q = stop_all_locked(pp);
    pthread_mutex_unlock(&pp->mu);
    fail_queued(q, RLAB_ECANCELLED);
}

int rlab__ppool_join(rlab_executor *ex, double timeout)
{
    rlab_deadline d;
    if (rlab__deadline(timeout, &d))
        return EINVAL;
    return join_threads((ppool *)ex, &d);
}

static void pp_destroy(rlab_executor *ex)
{
    ppool *pp = (ppool *)ex;
    static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    join_threads(pp, &forever);
    rlab_bytes_free(pp->boot);
    pthread_mutex_destroy(&pp->mu);
    pthread_mutex_destroy(&pp->join_mu);
    pthread_cond_destroy(&pp->cv);
    free(pp);
}

static int pp_max_workers(rlab_executor *ex)
{
    return ((ppool *)ex)->nworkers;
}

/* map with chunks: each chunk is one job whose answer carries every
 * item's outcome; results are copied out for the caller. */
static int pp_map_chunked(rlab_executor *ex, rlab_task_fn fn, void **args,
                          size_t n, size_t chunksize, void **results,
                          int *codes, const rlab_deadline *d)
{
    rlab_future **fs;
    size_t submitted;
    int rc = rlab__ppool_submit_chunks(ex, fn, (rlab_bytes *const *)args, n,
                                       chunksize, &fs, &submitted);
    if (rc == ENOMEM && !fs)
        return ENOMEM;
    for (size_t i = submitted * chunksize; i < n; i++)
        rlab__map_store(results, codes, i, rc, NULL);
    bool expired = false;
    for (size_t k = 0; k < submitted; k++) {
        void *packed = NULL;
        int code = rlab__map_collect(fs[k], d, &expired, &packed);
        size_t first = k * chunksize, at = 0, i = first;
        const unsigned char *data;
        size_t len;
        int icode;
        while (code == 0 && rlab__chunk_next(packed, &at, &icode, &data, &len)) {
            void *copy = NULL;
            if (icode == 0 && results && !(copy = rlab_bytes_new(data, len)))
                icode = ENOMEM;
            rlab__map_store(results, codes, i++, icode, copy);
        }
        size_t end = first + chunksize < n ? first + chunksize : n;
        while (i < end)
            rlab__map_store(results, codes, i++, code, NULL);
        rlab_bytes_free(packed);
        rlab_future_free(fs[k]);
    }
    free(fs);
    return expired ? ETIMEDOUT : rc;
}

static const rlab_executor_ops process_pool_ops = {
    .submit = pp_submit,
    .shutdown = pp_shutdown,
    .destroy = pp_destroy,
    .max_workers = pp_max_workers,
    .map_chunked = pp_map_chunked,
};

static rlab_bytes *boot_new(const char *init, const void *arg, size_t len)
{
    size_t nlen = init ? strlen(init) : 0;
    rlab_bytes *b = bytes_alloc(1 + nlen + len);
    if (!b)
        return NULL;
    b->data[0] = (unsigned char)nlen;
    if (nlen)
        memcpy(b->data + 1, init, nlen);
    if (len)
        memcpy(b->data + 1 + nlen, arg, len);
    return b;
}

rlab_executor *rlab_process_pool_new(int max_workers,
                                     const rlab_process_pool_opts *opts)
{
    rlab_process_pool_opts o = opts ? *opts : (rlab_process_pool_opts){0};
    const char *init = o.initializer ? rlab_task_name(o.initializer) : NULL;
    if (max_workers < 0 || max_workers > MAX_WORKERS ||
        o.max_tasks_per_child < 0 || (o.initializer && !init) ||
        (o.initarg_len && !o.initarg) || o.method < RLAB_START_DEFAULT ||
        o.method > RLAB_START_FORKSERVER) {
        errno = EINVAL;
        return NULL;
    }
    /* Also the first use of the library's process layer: its init. */
    rlab_task_register(RLAB__POOL_WORKER, rlab__pool_worker);
    if (max_workers == 0)
        max_workers = rlab__cpu_count();
    ppool *pp = calloc(1, sizeof *pp + (size_t)max_workers * sizeof(worker));
    if (!pp || !(pp->boot = boot_new(init, o.initarg, o.initarg_len))) {
        free(pp);
        errno = ENOMEM;
        return NULL;
    }
    pp->base.ops = &process_pool_ops;
    pp->nworkers = max_workers;
    pp->max_tasks = o.max_tasks_per_child;
    pp->method = o.method;
    pthread_mutex_init(&pp->mu, NULL);
    pthread_mutex_init(&pp->join_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pp->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = 0;
    for (int i = 0; i < max_workers && rc == 0; i++) {
        pp->w[i].pool = pp;
        rc = worker_start(&pp->w[i]);
    }
    for (int i = 0; i < max_workers && rc == 0; i++) {
        rc = pthread_create(&pp->w[i].thread, NULL, worker_main, &pp->w[i]);
        pp->w[i].started = rc == 0;
    }
    if (rc) {
        rlab__ppool_terminate(&pp->base);
        for (int i = 0; i < max_workers; i++)
            if (!pp->w[i].started)
                worker_stop(&pp->w[i], false);
        pp_destroy(&pp->base);
        errno = rc == ENOMEM || rc == EPERM || rc == EAGAIN ? rc : EAGAIN;
        return NULL;
    }
    return &pp->base;
}

/* ------------------------------------------------------ the worker side --- */

/* Runs one job from *at and sends its answer: 0, or a code that ends the
 * worker (the connection is gone). */
static int serve_job(rlab_conn *c, const unsigned char **at,
                     const unsigned char *end)
{
    unsigned char nlen, chunk;
    char name[256];
    uint32_t n;
    if (!take(at, end, &nlen, 1) || !take(at, end, name, nlen) ||
        !take(at, end, &chunk, 1) || !take(at, end, &n, 4))
        return EPROTO;
    name[nlen] = '\0';
    rlab_task_fn fn = rlab_task_lookup(name);
    size_t cap = 256, len = 4;
    unsigned char *out = malloc(cap);
    if (!out)
        return ENOMEM;
    memcpy(out, &n, 4);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l;
        if (!take(at, end, &l, 8) || (uint64_t)(end - *at) < l) {
            free(out);
            return EPROTO;
        }
        rlab_bytes *arg = rlab_bytes_new(*at, (size_t)l);
        *at += l;
        void *res = NULL;
        int32_t code = !fn ? EINVAL : !arg ? ENOMEM : fn(arg, &res);
        rlab_bytes_free(arg);
        rlab_bytes *r = code == 0 ? res : NULL;
        uint64_t rl = r ? r->len : 0;
        if (len + 12 + rl > CONN_MAX - 16) {
            code = EMSGSIZE;
            rl = 0;
        }
        if (len + 12 + rl > cap) {
            size_t ncap = cap;
            while (ncap < len + 12 + rl)
                ncap *= 2;
            unsigned char *grown = realloc(out, ncap);
            if (!grown) {
                code = ENOMEM;
                rl = 0;
            } else {
                out = grown;
                cap = ncap;
            }
        }
        unsigned char *p = out + len;
        memcpy(p, &code, 4);
        memcpy(p + 4, &rl, 8);
        if (rl)
            memcpy(p + 12, r->data, rl);
        len += 12 + (size_t)rl;
        if (code == 0)
            rlab_bytes_free(r);
    }
    int rc = rlab_conn_send(c, out, len);
    free(out);
    return rc;
}

int rlab__pool_worker(void *arg, void **result)
{
    (void)result;
    rlab_bytes *boot = arg;
    rlab_conn *c = rlab_process_conn(0);
    if (!c || boot->len < 1u + boot->data[0])
        return 1;
    rlab_conn_set_max_message(c, CONN_MAX);
    pid_t parent = getppid();
    size_t nlen = boot->data[0];
    if (nlen) {
        char name[256];
        memcpy(name, boot->data + 1, nlen);
        name[nlen] = '\0';
        rlab_task_fn init = rlab_task_lookup(name);
        rlab_bytes *iarg =
            rlab_bytes_new(boot->data + 1 + nlen, boot->len - 1 - nlen);
        void *res = NULL;
        int rc = !init ? EINVAL : !iarg ? ENOMEM : init(iarg, &res);
        rlab_bytes_free(iarg);
        if (rc)
            return rc; /* the parent sees the worker go: a broken pool */
        rlab_bytes_free(res);
    }
    for (;;) {
        void *msg;
        size_t len;
        int rc = rlab_conn_recv(c, 1.0, &msg, &len);
        if (rc == ETIMEDOUT) {
            if (getppid() != parent)
                return 0; /* orphaned: nobody will ask for more */
            continue;
        }
        if (rc == RLAB_EEOF)
            return 0;
        if (rc)
            return 1;
        const unsigned char *at = msg, *end = at + len;
        uint32_t njobs;
        if (!take(&at, end, &njobs, 4)) {
            free(msg);
            return 1;
        }
        if (njobs == 0) {
            free(msg);
            return 0;
        }
        for (uint32_t j = 0; j < njobs && rc == 0; j++)
            rc = serve_job(c, &at, end);
        free(msg);
        if (rc)
            return 1;
    }
}
