/*
 * bench_queue.c - racelab bench queue: rlab Queue (unbounded) and
 * SimpleQueue against GLib's GAsyncQueue, with 1 producer and 1 consumer
 * and with 2 and 2, in one process run through the shared harness.
 *
 * A trial hands M pointer items 1..M (never NULL: GAsyncQueue refuses NULL)
 * from the producers to the consumers.  The producers split the items
 * between them, each consumer takes its own count of them, and the run
 * fails unless the consumers' items sum to 1 + ... + M: a lost item leaves
 * a consumer waiting, which the team guard turns into a failure.  The
 * figure is wall time per item, from the first thread's start to the last
 * one's end; the queue is made and freed outside it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "bench.h"
#include "racelab.h"

#define MAX_PAIRS 2

/* One producer or consumer; each on its own cache lines. */
typedef struct {
    _Alignas(CACHE_LINE) void *q;
    long first, count;      /* producer: puts first+1 .. first+count;
                               consumer: takes count items */
    unsigned long long sum; /* consumer: the sum of the items it took */
} queue_job;

/* For queue type T made by NEW (a T * expression, NULL on failure) and
 * freed by FREE(q): a producer putting with PUT(q, item), a consumer taking
 * with GET(q, &item) (int status expressions), and tag(items, pairs), one
 * trial of `pairs` producer/consumer pairs. */
#define QUEUE_KIND(tag, T, NEW, FREE, PUT, GET)                                \
    static void *tag##_produce(void *p)                                        \
    {                                                                          \
        queue_job *j = p;                                                      \
        T *q = j->q;                                                           \
        int err = 0;                                                           \
        for (long i = j->first; i < j->first + j->count; i++)                  \
            err |= PUT(q, (void *)(uintptr_t)(i + 1));                         \
        return err ? p : NULL;                                                 \
    }                                                                          \
    static void *tag##_consume(void *p)                                        \
    {                                                                          \
        queue_job *j = p;                                                      \
        T *q = j->q;                                                           \
        int err = 0;                                                           \
        unsigned long long sum = 0;                                            \
        for (long i = 0; i < j->count; i++) {                                  \
            void *item = NULL;                                                 \
            err |= GET(q, &item);                                              \
            sum += (uintptr_t)item;                                            \
        }                                                                      \
        j->sum = sum;                                                          \
        return err ? p : NULL;                                                 \
    }                                                                          \
    static double tag(long items, int pairs)                                   \
    {                                                                          \
        T *q = NEW;                                                            \
        if (!q)                                                                \
            return -1;                                                         \
        double ns = run_queue(q, tag##_produce, tag##_consume, pairs, items);  \
        FREE(q);                                                               \
        return ns;                                                             \
    }

static inline int rq_put(rlab_queue *q, void *item)
{
    return rlab_queue_put(q, item, RLAB_FOREVER);
}

static inline int rq_get(rlab_queue *q, void **item)
{
    return rlab_queue_get(q, item, RLAB_FOREVER);
}

static inline int sq_get(rlab_simple_queue *q, void **item)
{
    return rlab_simple_queue_get(q, item, RLAB_FOREVER);
}

/* GAsyncQueue's calls, with an int status like the others. */
static inline int gq_push(GAsyncQueue *q, void *item)
{
    BENCH_TSAN_RELEASE(q);
    g_async_queue_push(q, item);
    return 0;
}

static inline int gq_pop(GAsyncQueue *q, void **item)
{
    *item = g_async_queue_pop(q);
    BENCH_TSAN_ACQUIRE(q);
    return *item ? 0 : -1;
}

/* Items first+1 .. first+count of 1..n are share k of `parts`. */
static void share(long n, int parts, int k, long *first, long *count)
{
    long base = n / parts, extra = n % parts;
    *first = k * base + (k < extra ? k : extra);
    *count = base + (k < extra);
}

/* Passes `items` items through q with `pairs` producers and as many
 * consumers: ns per item, or -1. */
static double run_queue(void *q, void *(*produce)(void *),
                        void *(*consume)(void *), int pairs, long items)
{
    queue_job *j = bench_line_alloc(sizeof *j * 2 * MAX_PAIRS);
    bench_job team[2 * MAX_PAIRS];
    if (!j)
        return -1;
    for (int k = 0; k < pairs; k++) {
        queue_job *prod = &j[k], *cons = &j[pairs + k];
        prod->q = cons->q = q;
        share(items, pairs, k, &prod->first, &prod->count);
        share(items, pairs, k, &cons->first, &cons->count);
        team[k] = (bench_job){produce, prod};
        team[pairs + k] = (bench_job){consume, cons};
    }
    double ns = bench_run_threads(team, 2 * pairs, "queue");
    unsigned long long sum = 0;
    for (int k = 0; k < pairs; k++)
        sum += j[pairs + k].sum;
    free(j);
    if (ns < 0 || bench_check_sum("queue", sum, items))
        return -1;
    return ns / (double)items;
}

static void rq_free(rlab_queue *q)
{
    rlab_queue_free(q, NULL);
}

static void sq_free(rlab_simple_queue *q)
{
    rlab_simple_queue_free(q, NULL);
}

QUEUE_KIND(q_rlab, rlab_queue, rlab_queue_new(0), rq_free, rq_put, rq_get)
QUEUE_KIND(q_simple, rlab_simple_queue, rlab_simple_queue_new(), sq_free,
           rlab_simple_queue_put, sq_get)
QUEUE_KIND(q_gasync, GAsyncQueue, g_async_queue_new(), g_async_queue_unref,
           gq_push, gq_pop)

BENCH_VARIANT(q_rlab, 1)
BENCH_VARIANT(q_rlab, 2)
BENCH_VARIANT(q_simple, 1)
BENCH_VARIANT(q_simple, 2)
BENCH_VARIANT(q_gasync, 1)
BENCH_VARIANT(q_gasync, 2)

static const bench_pair queues[] = {
    {"queue.1p1c", "rlab_queue", "GAsyncQueue", "ns/op", q_rlab_1, q_gasync_1},
    {"simple_queue.1p1c", "rlab_simple_queue", "GAsyncQueue", "ns/op",
     q_simple_1, q_gasync_1},
    {"queue.2p2c", "rlab_queue", "GAsyncQueue", "ns/op", q_rlab_2, q_gasync_2},
    {"simple_queue.2p2c", "rlab_simple_queue", "GAsyncQueue", "ns/op",
     q_simple_2, q_gasync_2},
};

BENCH_SUITE(bench_queue_suite, "queue", "items",
            "value = wall time per item, all producers and consumers "
            "together\n(NpNc: N producer and N consumer threads; Queue "
            "unbounded).",
            queues, 1000000L, 20000L);
