/* test_simple_queue.c - queue.SimpleQueue (CPython's test_queue.py
 * BaseSimpleQueueTest, in C).
 *
 * Items are small integers cast to pointers.  A get expected to block runs
 * on its own thread, and the main thread waits until that thread sleeps in
 * the kernel (its state in /proc/self/task/TID/stat is 'S') before it checks
 * that the get has not returned and puts: no sleeps are used for that. */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rlab_test.h"

/* Slack for comparing two rlab_test_now() readings with a timeout. */
#define CLOCK_SLACK 1e-6
/* An expired wait must end well before this. */
#define LATE 2.0
/* A short timeout for the tests of expiry. */
#define SHORT 0.05
/* Items per chunk inside the queue; the tests cross its boundaries. */
#define CHUNK 1022

#define ITEM(v) ((void *)(uintptr_t)(v))
#define VAL(p) ((long)(uintptr_t)(p))

static rlab_simple_queue *make_queue(void)
{
    rlab_simple_queue *q = rlab_simple_queue_new();
    ck_assert_ptr_nonnull(q);
    return q;
}

static void put_ok(rlab_simple_queue *q, long v)
{
    ck_assert_rc(rlab_simple_queue_put(q, ITEM(v)), 0);
}

static long get_ok(rlab_simple_queue *q)
{
    void *item = ITEM(-1);
    ck_assert_rc(rlab_simple_queue_get(q, &item, RLAB_GUARD), 0);
    return VAL(item);
}

/* ---------------------------------------------------------- blocking get ---
 */

/* One get on its own thread; the main thread reads the results after
 * joining it. */
typedef struct {
    rlab_simple_queue *q;
    double timeout;
    rlab_event *started;
    rlab_thread *thread;
    long tid;
    atomic_bool done;
    void *item;
    int rc;
    double elapsed;
} call;

static void *call_main(void *p)
{
    call *c = p;
    c->tid = rlab_get_native_id();
    rlab_event_set(c->started);
    double t0 = rlab_test_now();
    c->rc = rlab_simple_queue_get(c->q, &c->item, c->timeout);
    c->elapsed = rlab_test_now() - t0;
    atomic_store(&c->done, true);
    return NULL;
}

static void call_start(call *c, rlab_simple_queue *q, double timeout)
{
    *c = (call){.q = q, .timeout = timeout, .rc = -1, .elapsed = -1};
    atomic_init(&c->done, false);
    c->started = rlab_event_new();
    ck_assert_ptr_nonnull(c->started);
    c->thread = rlab_test_spawn(call_main, c);
    ck_assert_rc(rlab_event_wait(c->started, RLAB_GUARD), 0);
}

static void call_finish(call *c)
{
    rlab_test_join(c->thread);
    rlab_event_free(c->started);
    rlab_test_assert_not_at_guard(c->elapsed);
}

/* Waits until the get sleeps in the kernel or has returned; asserts that
 * it is still blocked. */
static void wait_blocked(call *c)
{
    rlab_test_wait_blocked(c->tid, &c->done, &c->rc);
}

/* -------------------------------------------------------------- basics --- */

START_TEST(new_simple_queue_is_empty)
{
    rlab_simple_queue *q = make_queue();
    ck_assert(rlab_simple_queue_empty(q));
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 0);
    rlab_simple_queue_free(q, NULL);
}
END_TEST

START_TEST(null_queue_is_einval_and_queries_are_zero)
{
    void *item = ITEM(7);
    ck_assert_rc(rlab_simple_queue_put(NULL, item), EINVAL);
    ck_assert_rc(rlab_simple_queue_get(NULL, &item, 0), EINVAL);
    ck_assert_ptr_eq(item, ITEM(7));
    ck_assert_int_eq(rlab_simple_queue_qsize(NULL), 0);
    rlab_simple_queue_free(NULL, free);
}
END_TEST

/* CPython's BaseSimpleQueueTest.test_basic. */
START_TEST(items_come_out_in_put_order_and_qsize_follows)
{
    rlab_simple_queue *q = make_queue();
    put_ok(q, 1);
    ck_assert(!rlab_simple_queue_empty(q));
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 1);
    put_ok(q, 2);
    put_ok(q, 3);
    put_ok(q, 4);
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 4);
    ck_assert_int_eq(get_ok(q), 1);
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 3);
    void *item = NULL;
    ck_assert_rc(rlab_simple_queue_get(q, &item, 0), 0);
    ck_assert_int_eq(VAL(item), 2);
    ck_assert_rc(rlab_simple_queue_get(q, &item, 0.1), 0);
    ck_assert_int_eq(VAL(item), 3);
    ck_assert_rc(rlab_simple_queue_get(q, &item, RLAB_FOREVER), 0);
    ck_assert_int_eq(VAL(item), 4);
    ck_assert(rlab_simple_queue_empty(q));
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 0);
    rlab_simple_queue_free(q, NULL);
}
END_TEST

START_TEST(null_items_are_queued_like_any_other)
{
    rlab_simple_queue *q = make_queue();
    ck_assert_rc(rlab_simple_queue_put(q, NULL), 0);
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 1);
    void *item = ITEM(5);
    ck_assert_rc(rlab_simple_queue_get(q, &item, 0), 0);
    ck_assert_ptr_null(item);
    rlab_simple_queue_free(q, NULL);
}
END_TEST

START_TEST(get_nowait_on_empty_queue_is_eagain_and_changes_nothing)
{
    rlab_simple_queue *q = make_queue();
    void *item = ITEM(42);
    ck_assert_rc(rlab_simple_queue_get(q, &item, 0), EAGAIN);
    ck_assert_ptr_eq(item, ITEM(42));
    put_ok(q, 1);
    ck_assert_int_eq(get_ok(q), 1);
    ck_assert_rc(rlab_simple_queue_get(q, &item, 0), EAGAIN);
    ck_assert_ptr_eq(item, ITEM(42));
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 0);
    rlab_simple_queue_free(q, NULL);
}
END_TEST

START_TEST(timed_get_on_empty_queue_expires_with_etimedout)
{
    const double timeouts[] = {1e-3, SHORT};
    rlab_simple_queue *q = make_queue();
    for (int k = 0; k < 2; k++) {
        void *item = ITEM(42);
        double t0 = rlab_test_now();
        ck_assert_rc(rlab_simple_queue_get(q, &item, timeouts[k]), ETIMEDOUT);
        double elapsed = rlab_test_now() - t0;
        ck_assert_double_ge(elapsed, timeouts[k] - CLOCK_SLACK);
        ck_assert_double_lt(elapsed, LATE);
        ck_assert_ptr_eq(item, ITEM(42));
    }
    rlab_simple_queue_free(q, NULL);
}
END_TEST

START_TEST(bad_timeout_or_null_item_is_einval_and_changes_nothing)
{
    const double bad[] = {NAN, -0.5, -2.0, -INFINITY, -1e-9};
    rlab_simple_queue *q = make_queue();
    put_ok(q, 1);
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        void *item = ITEM(99);
        ck_assert_rc(rlab_simple_queue_get(q, &item, bad[k]), EINVAL);
        ck_assert_ptr_eq(item, ITEM(99));
        ck_assert_int_eq(rlab_simple_queue_qsize(q), 1);
    }
    ck_assert_rc(rlab_simple_queue_get(q, NULL, 0), EINVAL);
    ck_assert_int_eq(rlab_simple_queue_qsize(q), 1);
    ck_assert_int_eq(get_ok(q), 1);
    rlab_simple_queue_free(q, NULL);
}
END_TEST

/* Batches that empty and refill the queue at, before and after chunk
 * boundaries, then a stretch where it never empties. */
START_TEST(order_holds_across_chunk_boundaries)
{
    rlab_simple_queue *q = make_queue();
    const long batches[] = {1,         CHUNK - 2, 1,    CHUNK, CHUNK + 1,
                            2 * CHUNK, 7,         3000, CHUNK, 64};
    long next = 0, out = 0;
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        for (long k = 0; k < batches[b]; k++)
            put_ok(q, next++);
        ck_assert_int_eq(rlab_simple_queue_qsize(q), batches[b]);
        while (out < next)
            ck_assert_int_eq(get_ok(q), out++);
        ck_assert(rlab_simple_queue_empty(q));
    }
    for (long k = 0; k < 3 * CHUNK; k++) {
        put_ok(q, next++);
        put_ok(q, next++);
        ck_assert_int_eq(get_ok(q), out++);
        ck_assert_int_eq(rlab_simple_queue_qsize(q), next - out);
    }
    while (out < next)
        ck_assert_int_eq(get_ok(q), out++);
    ck_assert(rlab_simple_queue_empty(q));
    rlab_simple_queue_free(q, NULL);
}
END_TEST

/* ------------------------------------------------------------ blocking --- */

START_TEST(get_on_empty_queue_blocks_until_a_put)
{
    const double timeouts[] = {RLAB_FOREVER, RLAB_GUARD};
    rlab_simple_queue *q = make_queue();
    for (int k = 0; k < 2; k++) {
        call c;
        call_start(&c, q, timeouts[k]);
        wait_blocked(&c);
        put_ok(q, 77 + k);
        call_finish(&c);
        ck_assert_rc(c.rc, 0);
        ck_assert_int_eq(VAL(c.item), 77 + k);
        ck_assert(rlab_simple_queue_empty(q));
    }
    rlab_simple_queue_free(q, NULL);
}
END_TEST

/* One put wakes one getter; a lost wake-up leaves a getter behind. */
START_TEST(each_blocked_getter_receives_one_of_the_items_put)
{
    enum { N = 4 };
    rlab_simple_queue *q = make_queue();
    call c[N];
    for (int k = 0; k < N; k++)
        call_start(&c[k], q, RLAB_GUARD);
    for (int k = 0; k < N; k++)
        wait_blocked(&c[k]);
    for (int k = 0; k < N; k++)
        put_ok(q, 100 + k);
    bool seen[N] = {false};
    for (int k = 0; k < N; k++) {
        call_finish(&c[k]);
        ck_assert_rc(c[k].rc, 0);
        long v = VAL(c[k].item) - 100;
        ck_assert(v >= 0 && v < N && !seen[v]);
        seen[v] = true;
    }
    ck_assert(rlab_simple_queue_empty(q));
    rlab_simple_queue_free(q, NULL);
}
END_TEST

/* A getter woken by a put whose item the main thread took first must keep
 * waiting for the rest of its timeout, not report ETIMEDOUT early. */
START_TEST(getter_that_loses_the_item_still_waits_out_its_timeout)
{
    rlab_simple_queue *q = make_queue();
    for (int round = 0; round < 3; round++) {
        call c;
        call_start(&c, q, 0.2);
        wait_blocked(&c);
        void *item = NULL;
        put_ok(q, 1);
        int rc = rlab_simple_queue_get(q, &item, 0); /* usually first */
        call_finish(&c);
        if (rc == 0) {
            ck_assert_rc(c.rc, ETIMEDOUT);
            ck_assert_double_ge(c.elapsed, 0.2 - CLOCK_SLACK);
            ck_assert_double_lt(c.elapsed, LATE);
        } else {
            ck_assert_rc(c.rc, 0);
            ck_assert_int_eq(VAL(c.item), 1);
        }
    }
    rlab_simple_queue_free(q, NULL);
}
END_TEST

/* ---------------------------------------------------- many threads ------ */

/* CPython's run_threads: N feeders share one input sequence, N consumers
 * collect until they see a sentinel (0; items are 1..count). */
typedef enum { CONSUME_BLOCKING, CONSUME_NOWAIT, CONSUME_TIMEOUT } consume_mode;

typedef struct {
    rlab_simple_queue *q;
    long count;
    atomic_long next; /* feeders take input numbers from here */
    consume_mode mode;
    atomic_long errors;
    rlab_event *go;
} feed_job;

typedef struct {
    feed_job *j;
    long *got; /* this consumer's items, in the order received */
    long n_got;
} consumer;

static void *feeder(void *p)
{
    feed_job *j = p;
    if (rlab_event_wait(j->go, RLAB_GUARD)) {
        atomic_fetch_add(&j->errors, 1);
        return NULL;
    }
    for (;;) {
        long v = atomic_fetch_add(&j->next, 1) + 1;
        if (rlab_simple_queue_put(j->q, ITEM(v > j->count ? 0 : v)))
            atomic_fetch_add(&j->errors, 1);
        if (v > j->count)
            return NULL;
    }
}

static void *consume(void *p)
{
    consumer *c = p;
    feed_job *j = c->j;
    double t0 = rlab_test_now();
    for (;;) {
        void *item = NULL;
        int rc;
        switch (j->mode) {
        case CONSUME_BLOCKING:
            rc = rlab_simple_queue_get(j->q, &item, RLAB_GUARD);
            break;
        case CONSUME_NOWAIT:
            while ((rc = rlab_simple_queue_get(j->q, &item, 0)) == EAGAIN &&
                   rlab_test_now() - t0 < RLAB_GUARD)
                sched_yield();
            break;
        default:
            while ((rc = rlab_simple_queue_get(j->q, &item, 1e-5)) ==
                       ETIMEDOUT &&
                   rlab_test_now() - t0 < RLAB_GUARD)
                ;
            break;
        }
        if (rc) {
            atomic_fetch_add(&j->errors, 1);
            return NULL;
        }
        if (VAL(item) == 0)
            return NULL;
        if (c->n_got == j->count) { /* more items than were put */
            atomic_fetch_add(&j->errors, 1);
            return NULL;
        }
        c->got[c->n_got++] = VAL(item);
    }
}

/* Runs n feeders and n consumers over items 1..count; returns the
 * consumers (freed by the caller) after checking every item came out once. */
static consumer *run_threads(int n, long count, consume_mode mode)
{
    feed_job j = {.q = make_queue(), .count = count, .mode = mode};
    atomic_init(&j.next, 0);
    atomic_init(&j.errors, 0);
    j.go = rlab_event_new();
    ck_assert_ptr_nonnull(j.go);
    consumer *c = calloc((size_t)n, sizeof *c);
    rlab_thread **t = calloc(2 * (size_t)n, sizeof *t);
    ck_assert(c && t);
    for (int k = 0; k < n; k++) {
        c[k].j = &j;
        c[k].got = malloc((size_t)count * sizeof(long));
        ck_assert_ptr_nonnull(c[k].got);
        t[k] = rlab_test_spawn(consume, &c[k]);
        t[n + k] = rlab_test_spawn(feeder, &j);
    }
    rlab_event_set(j.go);
    for (int k = 0; k < 2 * n; k++)
        rlab_test_join(t[k]);
    ck_assert_int_eq(atomic_load(&j.errors), 0);
    unsigned char *seen = calloc((size_t)count + 1, 1);
    ck_assert_ptr_nonnull(seen);
    long total = 0;
    for (int k = 0; k < n; k++)
        for (long i = 0; i < c[k].n_got; i++) {
            long v = c[k].got[i];
            ck_assert(v >= 1 && v <= count);
            ck_assert_msg(!seen[v], "item %ld came out twice", v);
            seen[v] = 1;
            total++;
        }
    ck_assert_int_eq(total, count);
    /* n feeders put n sentinels; the n consumers took one each. */
    ck_assert(rlab_simple_queue_empty(j.q));
    free(seen);
    free(t);
    rlab_event_free(j.go);
    rlab_simple_queue_free(j.q, NULL);
    return c;
}

static void free_consumers(consumer *c, int n)
{
    for (int k = 0; k < n; k++)
        free(c[k].got);
    free(c);
}

/* CPython's test_order: one feeder, one consumer. */
START_TEST(one_feeder_one_consumer_keep_put_order)
{
    long count = rlab_test_scaled(100000);
    consumer *c = run_threads(1, count, CONSUME_BLOCKING);
    for (long i = 0; i < c[0].n_got; i++)
        ck_assert_int_eq(c[0].got[i], i + 1);
    free_consumers(c, 1);
}
END_TEST

/* CPython's test_many_threads, _nonblock and _timeout. */
START_TEST(many_threads_pass_every_item_exactly_once)
{
    static const consume_mode modes[] = {CONSUME_BLOCKING, CONSUME_NOWAIT,
                                         CONSUME_TIMEOUT};
    static const long counts[] = {10000, 10000, 1000};
    enum { N = 16 };
    consumer *c = run_threads(N, counts[_i], modes[_i]);
    free_consumers(c, N);
}
END_TEST

/* --------------------------------------------------------------- free --- */

static atomic_int freed;

static void count_free(void *p)
{
    atomic_fetch_add(&freed, 1);
    free(p);
}

/* Leftovers that start at, just after and far from a chunk boundary. */
START_TEST(free_hands_every_item_left_to_free_item)
{
    static const long cases[][2] = {/* put, got before the free */
                                    {0, 0},
                                    {5, 0},
                                    {2 * CHUNK, CHUNK},
                                    {CHUNK, CHUNK},
                                    {CHUNK + 1, CHUNK},
                                    {3000, 0},
                                    {2500, CHUNK - 1}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        rlab_simple_queue *q = make_queue();
        for (long v = 0; v < cases[k][0]; v++) {
            long *p = malloc(sizeof *p);
            ck_assert_ptr_nonnull(p);
            *p = v;
            ck_assert_rc(rlab_simple_queue_put(q, p), 0);
        }
        for (long v = 0; v < cases[k][1]; v++) {
            void *item = NULL;
            ck_assert_rc(rlab_simple_queue_get(q, &item, 0), 0);
            ck_assert_int_eq(*(long *)item, v);
            free(item);
        }
        atomic_store(&freed, 0);
        rlab_simple_queue_free(q, count_free);
        ck_assert_int_eq(atomic_load(&freed), cases[k][0] - cases[k][1]);
    }
}
END_TEST

START_TEST(free_without_free_item_releases_only_the_queue)
{
    long items[3] = {1, 2, 3};
    rlab_simple_queue *q = make_queue();
    for (int k = 0; k < 3; k++)
        ck_assert_rc(rlab_simple_queue_put(q, &items[k]), 0);
    rlab_simple_queue_free(q, NULL); /* the items are on our stack */
    ck_assert_int_eq(items[0] + items[1] + items[2], 6);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("simple_queue");

    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, new_simple_queue_is_empty);
    tcase_add_test(tc, null_queue_is_einval_and_queries_are_zero);
    tcase_add_test(tc, items_come_out_in_put_order_and_qsize_follows);
    tcase_add_test(tc, null_items_are_queued_like_any_other);
    tcase_add_test(tc, get_nowait_on_empty_queue_is_eagain_and_changes_nothing);
    tcase_add_test(tc, timed_get_on_empty_queue_expires_with_etimedout);
    tcase_add_test(tc, bad_timeout_or_null_item_is_einval_and_changes_nothing);
    tcase_add_test(tc, order_holds_across_chunk_boundaries);
    suite_add_tcase(s, tc);

    tc = tcase_create("blocking");
    tcase_add_test(tc, get_on_empty_queue_blocks_until_a_put);
    tcase_add_test(tc, each_blocked_getter_receives_one_of_the_items_put);
    tcase_add_test(tc, getter_that_loses_the_item_still_waits_out_its_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, one_feeder_one_consumer_keep_put_order);
    tcase_add_loop_test(tc, many_threads_pass_every_item_exactly_once, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("free");
    tcase_add_test(tc, free_hands_every_item_left_to_free_item);
    tcase_add_test(tc, free_without_free_item_releases_only_the_queue);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
