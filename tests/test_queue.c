/* test_queue.c - queue.Queue, queue.LifoQueue and queue.PriorityQueue
 * (CPython's test_queue.py BaseQueueTestMixin, in C).
 *
 * Most tests run once per kind (tcase loop tests, _i = FIFO, LIFO, PRIO).
 * Items are small integers cast to pointers; the priority queue orders them
 * by value.  A call expected to block runs on its own thread, and the main
 * thread waits until that thread sleeps in the kernel (its state in
 * /proc/self/task/TID/stat is 'S') before it checks that the call has not
 * returned and triggers the release: no sleeps are used for that. */
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

enum { FIFO, LIFO, PRIO, KINDS };
static const char *const kind_name[KINDS] = {"Queue", "LifoQueue",
                                             "PriorityQueue"};

#define ITEM(v) ((void *)(uintptr_t)(v))
#define VAL(p) ((long)(uintptr_t)(p))

static int cmp_val(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

static rlab_queue *make_queue(int kind, long maxsize)
{
    rlab_queue *q = kind == FIFO   ? rlab_queue_new(maxsize)
                    : kind == LIFO ? rlab_lifo_queue_new(maxsize)
                                   : rlab_priority_queue_new(maxsize, cmp_val);
    ck_assert_ptr_nonnull(q);
    return q;
}

static void put_ok(rlab_queue *q, long v)
{
    ck_assert_rc(rlab_queue_put(q, ITEM(v), RLAB_GUARD), 0);
}

static long get_ok(rlab_queue *q)
{
    void *item = ITEM(-1);
    ck_assert_rc(rlab_queue_get(q, &item, RLAB_GUARD), 0);
    return VAL(item);
}

/* ------------------------------------------------------- blocking calls --- */

typedef enum { PUT, GET, JOIN } op_kind;

/* One queue call on its own thread; the main thread reads the results
 * after joining it. */
typedef struct {
    rlab_queue *q;
    op_kind op;
    void *item; /* PUT: the item; GET: what came out */
    double timeout;
    rlab_event *started;
    rlab_thread *thread;
    long tid;
    atomic_bool done;
    int rc;
    double elapsed;
} call;

static void *call_main(void *p)
{
    call *c = p;
    c->tid = rlab_get_native_id();
    rlab_event_set(c->started);
    double t0 = rlab_test_now();
    switch (c->op) {
    case PUT:
        c->rc = rlab_queue_put(c->q, c->item, c->timeout);
        break;
    case GET:
        c->rc = rlab_queue_get(c->q, &c->item, c->timeout);
        break;
    case JOIN:
        c->rc = rlab_queue_join(c->q, c->timeout);
        break;
    }
    c->elapsed = rlab_test_now() - t0;
    atomic_store(&c->done, true);
    return NULL;
}

/* Starts the call and returns once its thread is about to make it. */
static void call_start(call *c, rlab_queue *q, op_kind op, void *item,
                       double timeout)
{
    *c = (call){.q = q,
                .op = op,
                .item = item,
                .timeout = timeout,
                .rc = -1,
                .elapsed = -1};
    atomic_init(&c->done, false);
    c->started = rlab_event_new();
    ck_assert_ptr_nonnull(c->started);
    c->thread = rlab_test_spawn(call_main, c);
    ck_assert_rc(rlab_event_wait(c->started, RLAB_GUARD), 0);
}

/* Joins the call's thread; its results are then safe to read. */
static void call_finish(call *c)
{
    rlab_test_join(c->thread);
    rlab_event_free(c->started);
    rlab_test_assert_not_at_guard(c->elapsed);
}

/* Waits until the call sleeps in the kernel or has returned; asserts that
 * it is still blocked. */
static void wait_blocked(call *c)
{
    rlab_test_wait_blocked(c->tid, &c->done, &c->rc);
}

/* ---------------------------------------------------------- construct --- */

START_TEST(new_queue_is_empty_not_full_and_not_shut_down)
{
    const long sizes[] = {0, 1, 5};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        rlab_queue *q = make_queue(_i, sizes[k]);
        ck_assert_int_eq(rlab_queue_qsize(q), 0);
        ck_assert(rlab_queue_empty(q));
        ck_assert(!rlab_queue_full(q));
        ck_assert_int_eq(rlab_queue_maxsize(q), sizes[k]);
        ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 0);
        ck_assert(!rlab_queue_is_shutdown(q));
        rlab_queue_free(q, NULL);
    }
}
END_TEST

START_TEST(maxsize_zero_or_negative_means_unbounded)
{
    const long sizes[] = {0, -1, -100};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        rlab_queue *q = make_queue(_i, sizes[k]);
        ck_assert_int_eq(rlab_queue_maxsize(q), 0);
        for (long v = 0; v < 3000; v++) {
            ck_assert_rc(rlab_queue_put(q, ITEM(v), 0), 0);
            ck_assert(!rlab_queue_full(q));
        }
        ck_assert_int_eq(rlab_queue_qsize(q), 3000);
        rlab_queue_free(q, NULL);
    }
}
END_TEST

START_TEST(priority_queue_without_comparator_is_einval)
{
    errno = 0;
    ck_assert_ptr_null(rlab_priority_queue_new(0, NULL));
    ck_assert_rc(errno, EINVAL);
}
END_TEST

START_TEST(null_queue_is_einval_and_queries_are_zero)
{
    void *item = ITEM(7);
    ck_assert_rc(rlab_queue_put(NULL, item, 0), EINVAL);
    ck_assert_rc(rlab_queue_get(NULL, &item, 0), EINVAL);
    ck_assert_ptr_eq(item, ITEM(7));
    ck_assert_rc(rlab_queue_task_done(NULL), EINVAL);
    ck_assert_rc(rlab_queue_join(NULL, 0), EINVAL);
    ck_assert_rc(rlab_queue_shutdown(NULL, false), EINVAL);
    ck_assert_rc(rlab_queue_shutdown(NULL, true), EINVAL);
    ck_assert_int_eq(rlab_queue_qsize(NULL), 0);
    ck_assert(!rlab_queue_full(NULL));
    ck_assert_int_eq(rlab_queue_maxsize(NULL), 0);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(NULL), 0);
    ck_assert(!rlab_queue_is_shutdown(NULL));
    rlab_queue_free(NULL, free);
}
END_TEST

START_TEST(bad_timeout_or_null_item_is_einval_and_changes_nothing)
{
    const double bad[] = {NAN, -0.5, -2.0, -INFINITY, -1e-9};
    rlab_queue *q = make_queue(_i, 2);
    put_ok(q, 1);
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        void *item = ITEM(99);
        ck_assert_rc(rlab_queue_put(q, ITEM(2), bad[k]), EINVAL);
        ck_assert_rc(rlab_queue_get(q, &item, bad[k]), EINVAL);
        ck_assert_ptr_eq(item, ITEM(99));
        ck_assert_rc(rlab_queue_join(q, bad[k]), EINVAL);
        ck_assert_int_eq(rlab_queue_qsize(q), 1);
        ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
    }
    ck_assert_rc(rlab_queue_get(q, NULL, 0), EINVAL);
    ck_assert_int_eq(rlab_queue_qsize(q), 1);
    ck_assert_int_eq(get_ok(q), 1);
    ck_assert(rlab_queue_empty(q));
    rlab_queue_free(q, NULL);
}
END_TEST

/* -------------------------------------------------------------- order --- */

/* CPython's basic_queue_test: 111, 333, 222 come out per kind. */
START_TEST(each_kind_returns_items_in_its_order)
{
    static const long want[KINDS][3] = {
        {111, 333, 222}, {222, 333, 111}, {111, 222, 333}};
    rlab_queue *q = make_queue(_i, 5);
    for (int round = 0; round < 2; round++) { /* the same queue reused */
        put_ok(q, 111);
        put_ok(q, 333);
        put_ok(q, 222);
        for (int k = 0; k < 3; k++)
            ck_assert_msg(get_ok(q) == want[_i][k], "%s: item %d wrong",
                          kind_name[_i], k);
        ck_assert(rlab_queue_empty(q));
    }
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(null_items_are_queued_like_any_other)
{
    rlab_queue *q = make_queue(_i, 0);
    ck_assert_rc(rlab_queue_put(q, NULL, 0), 0);
    ck_assert_int_eq(rlab_queue_qsize(q), 1);
    void *item = ITEM(5);
    ck_assert_rc(rlab_queue_get(q, &item, 0), 0);
    ck_assert_ptr_null(item);
    rlab_queue_free(q, NULL);
}
END_TEST

/* Batches of varying size, so that the queue empties and refills at and
 * around every chunk boundary of the FIFO and every growth of the arrays. */
START_TEST(order_holds_across_growth_and_chunk_boundaries)
{
    rlab_queue *q = make_queue(_i, 0);
    long next = 0;
    const long batches[] = {1, 1021, 1, 1022, 1023, 2044, 7, 3000, 1022, 64};
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        long first = next;
        for (long k = 0; k < batches[b]; k++)
            put_ok(q, next++);
        ck_assert_int_eq(rlab_queue_qsize(q), batches[b]);
        for (long k = 0; k < batches[b]; k++) {
            long want = _i == LIFO ? next - 1 - k : first + k;
            ck_assert_int_eq(get_ok(q), want);
        }
        ck_assert(rlab_queue_empty(q));
    }
    /* FIFO also with the queue never empty: put two, take one. */
    if (_i != LIFO) {
        long first = next, out = first;
        for (long k = 0; k < 2500; k++) {
            put_ok(q, next++);
            put_ok(q, next++);
            ck_assert_int_eq(get_ok(q), out++);
        }
        while (out < next)
            ck_assert_int_eq(get_ok(q), out++);
    }
    ck_assert(rlab_queue_empty(q));
    rlab_queue_free(q, NULL);
}
END_TEST

/* Items with a key the comparator sees and an id it does not. */
typedef struct {
    int key;
    int id;
} keyed;

static int cmp_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

START_TEST(priority_queue_is_fifo_among_equal_items)
{
    keyed items[] = {{3, 0}, {1, 1}, {3, 2}, {2, 3}, {1, 4},
                     {3, 5}, {2, 6}, {1, 7}, {3, 8}};
    const int want[] = {1, 4, 7, 3, 6, 0, 2, 5, 8};
    rlab_queue *q = rlab_priority_queue_new(0, cmp_key);
    ck_assert_ptr_nonnull(q);
    for (size_t k = 0; k < sizeof items / sizeof *items; k++)
        ck_assert_rc(rlab_queue_put(q, &items[k], 0), 0);
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        void *item = NULL;
        ck_assert_rc(rlab_queue_get(q, &item, 0), 0);
        ck_assert_int_eq(((keyed *)item)->id, want[k]);
    }
    rlab_queue_free(q, NULL);
}
END_TEST

/* Random puts and gets against a model: every get must return the
 * smallest key, the earliest put among equal keys. */
START_TEST(priority_queue_matches_a_sorted_model_under_random_operations)
{
    enum { OPS = 6000 };
    static keyed items[OPS];
    static int model[OPS]; /* indices into items, in put order */
    int n_model = 0, n_items = 0;
    unsigned seed = 12345;
    rlab_queue *q = rlab_priority_queue_new(0, cmp_key);
    ck_assert_ptr_nonnull(q);
    for (int op = 0; op < OPS; op++) {
        seed = seed * 1103515245u + 12345u;
        bool put = n_model == 0 || (seed >> 16) % 3 != 0;
        if (put) {
            items[n_items] = (keyed){(int)((seed >> 8) % 40), n_items};
            ck_assert_rc(rlab_queue_put(q, &items[n_items], 0), 0);
            model[n_model++] = n_items++;
            continue;
        }
        int best = 0;
        for (int k = 1; k < n_model; k++)
            if (items[model[k]].key < items[model[best]].key)
                best = k;
        void *item = NULL;
        ck_assert_rc(rlab_queue_get(q, &item, 0), 0);
        ck_assert_ptr_eq(item, &items[model[best]]);
        memmove(&model[best], &model[best + 1],
                (size_t)(n_model - best - 1) * sizeof *model);
        n_model--;
        ck_assert_int_eq(rlab_queue_qsize(q), n_model);
    }
    rlab_queue_free(q, NULL);
}
END_TEST

/* --------------------------------------------------------- full/empty --- */

START_TEST(bounded_queue_is_full_at_maxsize)
{
    rlab_queue *q = make_queue(_i, 5);
    for (long v = 0; v < 4; v++) {
        put_ok(q, v);
        ck_assert(!rlab_queue_full(q));
        ck_assert(!rlab_queue_empty(q));
    }
    put_ok(q, 4);
    ck_assert(rlab_queue_full(q));
    ck_assert_int_eq(rlab_queue_qsize(q), 5);
    get_ok(q);
    ck_assert(!rlab_queue_full(q));
    ck_assert_int_eq(rlab_queue_qsize(q), 4);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(put_nowait_on_full_queue_is_eagain_and_changes_nothing)
{
    rlab_queue *q = make_queue(_i, 3);
    put_ok(q, 10);
    put_ok(q, 30);
    put_ok(q, 20);
    ck_assert_rc(rlab_queue_put(q, ITEM(5), 0), EAGAIN);
    ck_assert_rc(rlab_queue_put(q, ITEM(5), 0), EAGAIN);
    ck_assert_int_eq(rlab_queue_qsize(q), 3);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 3);
    static const long want[KINDS][3] = {
        {10, 30, 20}, {20, 30, 10}, {10, 20, 30}};
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(get_ok(q), want[_i][k]);
    ck_assert(rlab_queue_empty(q));
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(get_nowait_on_empty_queue_is_eagain_and_changes_nothing)
{
    rlab_queue *q = make_queue(_i, 0);
    void *item = ITEM(42);
    ck_assert_rc(rlab_queue_get(q, &item, 0), EAGAIN);
    ck_assert_ptr_eq(item, ITEM(42));
    put_ok(q, 1);
    ck_assert_int_eq(get_ok(q), 1);
    ck_assert_rc(rlab_queue_get(q, &item, 0), EAGAIN);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(timed_put_on_full_queue_expires_with_etimedout)
{
    rlab_queue *q = make_queue(_i, 1);
    put_ok(q, 1);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_queue_put(q, ITEM(2), SHORT), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, SHORT - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert_int_eq(rlab_queue_qsize(q), 1);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
    ck_assert_int_eq(get_ok(q), 1);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(timed_get_on_empty_queue_expires_with_etimedout)
{
    rlab_queue *q = make_queue(_i, 0);
    void *item = ITEM(42);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_queue_get(q, &item, SHORT), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, SHORT - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert_ptr_eq(item, ITEM(42));
    rlab_queue_free(q, NULL);
}
END_TEST

/* --------------------------------------------------- blocking hand-off --- */

START_TEST(put_on_full_queue_blocks_until_a_get_makes_room)
{
    const double timeouts[] = {RLAB_FOREVER, RLAB_GUARD};
    rlab_queue *q = make_queue(_i, 2);
    put_ok(q, 1);
    put_ok(q, 2);
    for (int k = 0; k < 2; k++) {
        call c;
        call_start(&c, q, PUT, ITEM(3 + k), timeouts[k]);
        wait_blocked(&c);
        long got = get_ok(q);
        call_finish(&c);
        ck_assert_rc(c.rc, 0);
        ck_assert_int_eq(rlab_queue_qsize(q), 2);
        ck_assert(got >= 1 && got <= 3);
    }
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(get_on_empty_queue_blocks_until_a_put)
{
    const double timeouts[] = {RLAB_FOREVER, RLAB_GUARD};
    rlab_queue *q = make_queue(_i, 0);
    for (int k = 0; k < 2; k++) {
        call c;
        call_start(&c, q, GET, NULL, timeouts[k]);
        wait_blocked(&c);
        put_ok(q, 77 + k);
        call_finish(&c);
        ck_assert_rc(c.rc, 0);
        ck_assert_int_eq(VAL(c.item), 77 + k);
        ck_assert(rlab_queue_empty(q));
    }
    rlab_queue_free(q, NULL);
}
END_TEST

/* One put wakes one getter; a lost wake-up leaves a getter behind. */
START_TEST(each_blocked_getter_receives_one_of_the_items_put)
{
    enum { N = 4 };
    rlab_queue *q = make_queue(_i, 0);
    call c[N];
    for (int k = 0; k < N; k++)
        call_start(&c[k], q, GET, NULL, RLAB_GUARD);
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
    ck_assert(rlab_queue_empty(q));
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(each_blocked_putter_gets_in_as_gets_make_room)
{
    enum { N = 4 };
    rlab_queue *q = make_queue(_i, 1);
    put_ok(q, 0);
    call c[N];
    for (int k = 0; k < N; k++)
        call_start(&c[k], q, PUT, ITEM(1 + k), RLAB_GUARD);
    for (int k = 0; k < N; k++)
        wait_blocked(&c[k]);
    bool seen[N + 1] = {false};
    for (int k = 0; k <= N; k++) {
        long v = get_ok(q);
        ck_assert(v >= 0 && v <= N && !seen[v]);
        seen[v] = true;
    }
    for (int k = 0; k < N; k++) {
        call_finish(&c[k]);
        ck_assert_rc(c[k].rc, 0);
    }
    ck_assert(rlab_queue_empty(q));
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), N + 1);
    rlab_queue_free(q, NULL);
}
END_TEST

/* A getter woken by a put whose item another thread took first must keep
 * waiting for the rest of its timeout, not report ETIMEDOUT early. */
START_TEST(getter_that_loses_the_item_still_waits_out_its_timeout)
{
    rlab_queue *q = make_queue(_i, 0);
    for (int round = 0; round < 3; round++) {
        call c;
        call_start(&c, q, GET, NULL, 0.2);
        wait_blocked(&c);
        void *item = NULL;
        ck_assert_rc(rlab_queue_put(q, ITEM(1), 0), 0);
        int rc = rlab_queue_get(q, &item, 0); /* usually first */
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
    rlab_queue_free(q, NULL);
}
END_TEST

/* The same for a putter woken by a get whose room another put filled. */
START_TEST(putter_that_loses_the_room_still_waits_out_its_timeout)
{
    rlab_queue *q = make_queue(_i, 1);
    put_ok(q, 1);
    for (int round = 0; round < 3; round++) {
        call c;
        call_start(&c, q, PUT, ITEM(2), 0.2);
        wait_blocked(&c);
        get_ok(q);
        int rc = rlab_queue_put(q, ITEM(3), 0); /* usually first */
        call_finish(&c);
        if (rc == 0) {
            ck_assert_rc(c.rc, ETIMEDOUT);
            ck_assert_double_ge(c.elapsed, 0.2 - CLOCK_SLACK);
            ck_assert_double_lt(c.elapsed, LATE);
        } else {
            ck_assert_rc(rc, EAGAIN);
            ck_assert_rc(c.rc, 0);
        }
        ck_assert_int_eq(rlab_queue_qsize(q), 1);
    }
    rlab_queue_free(q, NULL);
}
END_TEST

/* ------------------------------------------------------ task_done/join --- */

START_TEST(task_done_on_fresh_queue_is_einval)
{
    rlab_queue *q = make_queue(_i, 0);
    ck_assert_rc(rlab_queue_task_done(q), EINVAL);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 0);
    ck_assert_rc(rlab_queue_join(q, 0), 0);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(task_done_more_times_than_puts_is_einval_and_changes_nothing)
{
    rlab_queue *q = make_queue(_i, 0);
    put_ok(q, 1);
    put_ok(q, 2);
    ck_assert_rc(rlab_queue_task_done(q), 0);
    ck_assert_rc(rlab_queue_task_done(q), 0);
    ck_assert_rc(rlab_queue_task_done(q), EINVAL);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 0);
    ck_assert_int_eq(rlab_queue_qsize(q), 2); /* items stay queued */
    put_ok(q, 3);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
    ck_assert_rc(rlab_queue_task_done(q), 0);
    ck_assert_rc(rlab_queue_task_done(q), EINVAL);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 0);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(only_task_done_finishes_a_task_not_get)
{
    rlab_queue *q = make_queue(_i, 0);
    for (long v = 0; v < 3; v++)
        put_ok(q, v);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 3);
    for (long v = 0; v < 3; v++)
        get_ok(q);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 3);
    ck_assert_rc(rlab_queue_join(q, 0), ETIMEDOUT);
    for (long v = 3; v > 0; v--) {
        ck_assert_rc(rlab_queue_task_done(q), 0);
        ck_assert_int_eq(rlab_queue_unfinished_tasks(q), v - 1);
    }
    ck_assert_rc(rlab_queue_join(q, 0), 0);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(timed_join_expires_while_a_task_is_unfinished)
{
    rlab_queue *q = make_queue(_i, 0);
    put_ok(q, 1);
    ck_assert_rc(rlab_queue_join(q, 0), ETIMEDOUT);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_queue_join(q, SHORT), ETIMEDOUT);
    double elapsed = rlab_test_now() - t0;
    ck_assert_double_ge(elapsed, SHORT - CLOCK_SLACK);
    ck_assert_double_lt(elapsed, LATE);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
    rlab_queue_free(q, NULL);
}
END_TEST

/* CPython's queue_join_test: two workers sum 100 items, calling task_done
 * after each; join must not return before the sum is complete. */
typedef struct {
    rlab_queue *q;
    atomic_long sum;
    atomic_int errors;
} join_job;

static void *summing_worker(void *p)
{
    join_job *j = p;
    for (;;) {
        void *item = NULL;
        int rc = rlab_queue_get(j->q, &item, RLAB_GUARD);
        if (rc) {
            atomic_fetch_add(&j->errors, 1);
            return NULL;
        }
        long v = VAL(item) - 1; /* 0 is the stop sentinel */
        if (v >= 0)
            atomic_fetch_add(&j->sum, v);
        if (rlab_queue_task_done(j->q))
            atomic_fetch_add(&j->errors, 1);
        if (v < 0)
            return NULL;
    }
}

START_TEST(join_returns_only_after_every_task_is_done)
{
    rlab_queue *q = make_queue(_i, 0);
    for (int round = 0; round < 2; round++) { /* the same queue reused */
        join_job j = {.q = q};
        atomic_init(&j.sum, 0);
        atomic_init(&j.errors, 0);
        rlab_thread *t[2];
        for (int k = 0; k < 2; k++)
            t[k] = rlab_test_spawn(summing_worker, &j);
        for (long v = 0; v < 100; v++)
            put_ok(q, v + 1);
        ck_assert_rc(rlab_queue_join(q, RLAB_GUARD), 0);
        ck_assert_int_eq(atomic_load(&j.sum), 99 * 100 / 2);
        put_ok(q, 0);
        put_ok(q, 0);
        ck_assert_rc(rlab_queue_join(q, RLAB_GUARD), 0); /* join twice */
        for (int k = 0; k < 2; k++)
            rlab_test_join(t[k]);
        ck_assert_int_eq(atomic_load(&j.errors), 0);
    }
    ck_assert_rc(rlab_queue_task_done(q), EINVAL);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(every_blocked_joiner_wakes_when_the_last_task_is_done)
{
    enum { N = 3 };
    rlab_queue *q = make_queue(_i, 0);
    put_ok(q, 1);
    put_ok(q, 2);
    call c[N];
    for (int k = 0; k < N; k++)
        call_start(&c[k], q, JOIN, NULL, RLAB_GUARD);
    for (int k = 0; k < N; k++)
        wait_blocked(&c[k]);
    ck_assert_rc(rlab_queue_task_done(q), 0);
    for (int k = 0; k < N; k++)
        wait_blocked(&c[k]); /* one task left: still waiting */
    ck_assert_rc(rlab_queue_task_done(q), 0);
    for (int k = 0; k < N; k++) {
        call_finish(&c[k]);
        ck_assert_rc(c[k].rc, 0);
    }
    rlab_queue_free(q, NULL);
}
END_TEST

/* ----------------------------------------------------------- shutdown --- */

START_TEST(shutdown_of_empty_queue_fails_put_and_get)
{
    rlab_queue *q = make_queue(_i, 0);
    ck_assert_rc(rlab_queue_shutdown(q, false), 0);
    ck_assert(rlab_queue_is_shutdown(q));
    void *item = ITEM(9);
    ck_assert_rc(rlab_queue_put(q, ITEM(1), RLAB_GUARD), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_put(q, ITEM(1), 0), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_get(q, &item, RLAB_FOREVER), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_get(q, &item, 0), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_get(q, &item, 1.0), RLAB_ESHUTDOWN);
    ck_assert_ptr_eq(item, ITEM(9));
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 0);
    ck_assert_rc(rlab_queue_join(q, 0), 0);
    rlab_queue_free(q, NULL);
}
END_TEST

/* CPython's _shutdown_all_methods_in_one_thread(False). */
START_TEST(shutdown_lets_get_drain_the_items_then_fails)
{
    static const long want[KINDS][3] = {
        {10, 30, 20}, {20, 30, 10}, {10, 20, 30}};
    rlab_queue *q = make_queue(_i, 3);
    put_ok(q, 10);
    put_ok(q, 30);
    ck_assert_rc(rlab_queue_put(q, ITEM(20), 0), 0);
    ck_assert_rc(rlab_queue_shutdown(q, false), 0);
    ck_assert_rc(rlab_queue_put(q, ITEM(40), RLAB_GUARD), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_put(q, ITEM(40), 0), RLAB_ESHUTDOWN);
    ck_assert_int_eq(rlab_queue_qsize(q), 3);
    ck_assert(rlab_queue_full(q));
    void *item = NULL;
    ck_assert_rc(rlab_queue_get(q, &item, 0), 0);
    ck_assert_int_eq(VAL(item), want[_i][0]);
    ck_assert_int_eq(get_ok(q), want[_i][1]);
    ck_assert_int_eq(get_ok(q), want[_i][2]);
    for (int k = 0; k < 3; k++)
        ck_assert_rc(rlab_queue_task_done(q), 0);
    ck_assert_rc(rlab_queue_join(q, 0), 0);
    item = ITEM(9);
    ck_assert_rc(rlab_queue_get(q, &item, RLAB_FOREVER), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_get(q, &item, 0), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_get(q, &item, 1.0), RLAB_ESHUTDOWN);
    ck_assert_ptr_eq(item, ITEM(9));
    rlab_queue_free(q, NULL);
}
END_TEST

/* CPython's _shutdown_all_methods_in_one_thread(True). */
START_TEST(immediate_shutdown_drops_the_items_and_fails_get)
{
    rlab_queue *q = make_queue(_i, 2);
    put_ok(q, 1);
    ck_assert_rc(rlab_queue_put(q, ITEM(2), 0), 0);
    ck_assert_rc(rlab_queue_shutdown(q, true), 0);
    ck_assert(rlab_queue_is_shutdown(q));
    ck_assert_int_eq(rlab_queue_qsize(q), 0);
    ck_assert(rlab_queue_empty(q));
    ck_assert(!rlab_queue_full(q));
    ck_assert_rc(rlab_queue_put(q, ITEM(3), RLAB_GUARD), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_put(q, ITEM(3), 0), RLAB_ESHUTDOWN);
    void *item = ITEM(9);
    ck_assert_rc(rlab_queue_get(q, &item, RLAB_GUARD), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_queue_get(q, &item, 0), RLAB_ESHUTDOWN);
    ck_assert_ptr_eq(item, ITEM(9));
    /* The dropped items count as done. */
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 0);
    ck_assert_rc(rlab_queue_task_done(q), EINVAL);
    ck_assert_rc(rlab_queue_join(q, 0), 0);
    rlab_queue_free(q, NULL);
}
END_TEST

/* CPython's test_shutdown_allowed_transitions, plus what each step does. */
START_TEST(shutdown_may_be_repeated_and_made_immediate_later)
{
    rlab_queue *q = make_queue(_i, 0);
    put_ok(q, 1);
    put_ok(q, 2);
    ck_assert(!rlab_queue_is_shutdown(q));
    ck_assert_rc(rlab_queue_shutdown(q, false), 0);
    ck_assert(rlab_queue_is_shutdown(q));
    ck_assert_rc(rlab_queue_shutdown(q, false), 0);
    ck_assert_int_eq(rlab_queue_qsize(q), 2); /* still there to drain */
    get_ok(q);
    ck_assert_rc(rlab_queue_shutdown(q, true), 0); /* drops the other */
    ck_assert(rlab_queue_is_shutdown(q));
    ck_assert_int_eq(rlab_queue_qsize(q), 0);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1); /* the one got */
    ck_assert_rc(rlab_queue_shutdown(q, true), 0);
    ck_assert_rc(rlab_queue_shutdown(q, false), 0);
    ck_assert(rlab_queue_is_shutdown(q));
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
    void *item = NULL;
    ck_assert_rc(rlab_queue_get(q, &item, 0), RLAB_ESHUTDOWN);
    rlab_queue_free(q, NULL);
}
END_TEST

START_TEST(immediate_shutdown_counts_only_dropped_items_as_done)
{
    rlab_queue *q = make_queue(_i, 0);
    for (long v = 0; v < 4; v++)
        put_ok(q, v);
    get_ok(q); /* handed out, its task_done still to come */
    ck_assert_rc(rlab_queue_shutdown(q, true), 0);
    ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
    ck_assert_rc(rlab_queue_join(q, 0), ETIMEDOUT);
    ck_assert_rc(rlab_queue_task_done(q), 0);
    ck_assert_rc(rlab_queue_join(q, 0), 0);
    ck_assert_rc(rlab_queue_task_done(q), EINVAL);
    rlab_queue_free(q, NULL);
}
END_TEST

/* CPython's _shutdown_put: putters blocked on a full queue wake with
 * ShutDown; a plain shutdown keeps the items for draining. */
START_TEST(shutdown_wakes_blocked_putters_with_eshutdown)
{
    for (int immediate = 0; immediate < 2; immediate++) {
        rlab_queue *q = make_queue(_i, 2);
        put_ok(q, 1);
        put_ok(q, 2);
        call c[2];
        for (int k = 0; k < 2; k++)
            call_start(&c[k], q, PUT, ITEM(3 + k), RLAB_GUARD);
        for (int k = 0; k < 2; k++)
            wait_blocked(&c[k]);
        ck_assert_rc(rlab_queue_shutdown(q, immediate), 0);
        for (int k = 0; k < 2; k++) {
            call_finish(&c[k]);
            ck_assert_rc(c[k].rc, RLAB_ESHUTDOWN);
            ck_assert_double_lt(c[k].elapsed, LATE);
        }
        ck_assert_int_eq(rlab_queue_qsize(q), immediate ? 0 : 2);
        ck_assert_int_eq(rlab_queue_unfinished_tasks(q), immediate ? 0 : 2);
        rlab_queue_free(q, NULL);
    }
}
END_TEST

/* CPython's test_shutdown_pending_get: getters blocked on an empty queue
 * wake with ShutDown, for either kind of shutdown. */
START_TEST(shutdown_wakes_blocked_getters_with_eshutdown)
{
    enum { N = 3 };
    for (int immediate = 0; immediate < 2; immediate++) {
        rlab_queue *q = make_queue(_i, 0);
        call c[N];
        for (int k = 0; k < N; k++)
            call_start(&c[k], q, GET, ITEM(5), RLAB_GUARD);
        for (int k = 0; k < N; k++)
            wait_blocked(&c[k]);
        ck_assert_rc(rlab_queue_shutdown(q, immediate), 0);
        for (int k = 0; k < N; k++) {
            call_finish(&c[k]);
            ck_assert_rc(c[k].rc, RLAB_ESHUTDOWN);
            ck_assert_double_lt(c[k].elapsed, LATE);
            ck_assert_ptr_eq(c[k].item, ITEM(5));
        }
        rlab_queue_free(q, NULL);
    }
}
END_TEST

/* CPython's _shutdown_get: after a plain shutdown three getters share the
 * two items left and the third gets ShutDown; after an immediate one all
 * get ShutDown. */
START_TEST(getters_after_shutdown_share_the_items_left_then_fail)
{
    enum { N = 3 };
    for (int immediate = 0; immediate < 2; immediate++) {
        rlab_queue *q = make_queue(_i, 2);
        put_ok(q, 1);
        put_ok(q, 2);
        ck_assert_rc(rlab_queue_shutdown(q, immediate), 0);
        call c[N];
        for (int k = 0; k < N; k++)
            call_start(&c[k], q, GET, NULL, RLAB_GUARD);
        int got = 0, shut = 0;
        long sum = 0;
        for (int k = 0; k < N; k++) {
            call_finish(&c[k]);
            if (c[k].rc == 0) {
                got++;
                sum += VAL(c[k].item);
            } else {
                ck_assert_rc(c[k].rc, RLAB_ESHUTDOWN);
                shut++;
            }
        }
        ck_assert_int_eq(got, immediate ? 0 : 2);
        ck_assert_int_eq(sum, immediate ? 0 : 3);
        ck_assert_int_eq(shut, immediate ? N : 1);
        rlab_queue_free(q, NULL);
    }
}
END_TEST

/* CPython's _shutdown_join(True): joiners wake once the drop finishes the
 * last tasks. */
START_TEST(immediate_shutdown_releases_blocked_joiners)
{
    rlab_queue *q = make_queue(_i, 0);
    put_ok(q, 1);
    call c[2];
    for (int k = 0; k < 2; k++)
        call_start(&c[k], q, JOIN, NULL, RLAB_GUARD);
    for (int k = 0; k < 2; k++)
        wait_blocked(&c[k]);
    ck_assert_rc(rlab_queue_shutdown(q, true), 0);
    for (int k = 0; k < 2; k++) {
        call_finish(&c[k]);
        ck_assert_rc(c[k].rc, 0);
        ck_assert_double_lt(c[k].elapsed, LATE);
    }
    rlab_queue_free(q, NULL);
}
END_TEST

/* CPython's _shutdown_join(False): a plain shutdown leaves joiners waiting
 * until the item is taken and marked done. */
START_TEST(plain_shutdown_leaves_joiners_waiting_for_task_done)
{
    rlab_queue *q = make_queue(_i, 0);
    put_ok(q, 1);
    call c[2];
    for (int k = 0; k < 2; k++)
        call_start(&c[k], q, JOIN, NULL, RLAB_GUARD);
    for (int k = 0; k < 2; k++)
        wait_blocked(&c[k]);
    ck_assert_rc(rlab_queue_shutdown(q, false), 0);
    ck_assert_int_eq(get_ok(q), 1);
    for (int k = 0; k < 2; k++)
        wait_blocked(&c[k]);
    ck_assert_rc(rlab_queue_task_done(q), 0);
    for (int k = 0; k < 2; k++) {
        call_finish(&c[k]);
        ck_assert_rc(c[k].rc, 0);
    }
    rlab_queue_free(q, NULL);
}
END_TEST

/* CPython's _shutdown_put_join: a put after the shutdown fails, and the
 * joiner returns once the item left is done (plain) or dropped
 * (immediate). */
START_TEST(shutdown_fails_later_puts_and_join_follows_the_item_left)
{
    for (int immediate = 0; immediate < 2; immediate++) {
        rlab_queue *q = make_queue(_i, 2);
        put_ok(q, 1);
        call joiner;
        call_start(&joiner, q, JOIN, NULL, RLAB_GUARD);
        wait_blocked(&joiner);
        ck_assert_int_eq(rlab_queue_unfinished_tasks(q), 1);
        ck_assert_rc(rlab_queue_shutdown(q, immediate), 0);
        call putter;
        call_start(&putter, q, PUT, ITEM(2), RLAB_GUARD);
        void *item = NULL;
        if (immediate) {
            ck_assert_rc(rlab_queue_get(q, &item, 0), RLAB_ESHUTDOWN);
        } else {
            ck_assert_rc(rlab_queue_get(q, &item, 0), 0);
            ck_assert_int_eq(VAL(item), 1);
            ck_assert_rc(rlab_queue_task_done(q), 0);
        }
        call_finish(&putter);
        call_finish(&joiner);
        ck_assert_rc(putter.rc, RLAB_ESHUTDOWN);
        ck_assert_rc(joiner.rc, 0);
        rlab_queue_free(q, NULL);
    }
}
END_TEST

/* ------------------------------------------------------- free_item ------ */

static atomic_int freed;

static void count_free(void *p)
{
    atomic_fetch_add(&freed, 1);
    free(p);
}

static void *new_item(long v)
{
    long *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

START_TEST(free_hands_every_item_left_to_free_item)
{
    rlab_queue *q = make_queue(_i, 0); /* PRIO: ordered by address */
    for (long v = 0; v < 2100; v++)
        ck_assert_rc(rlab_queue_put(q, new_item(v), 0), 0);
    for (long v = 0; v < 1100; v++) {
        void *item = NULL;
        ck_assert_rc(rlab_queue_get(q, &item, 0), 0);
        free(item);
    }
    atomic_store(&freed, 0);
    rlab_queue_free(q, count_free);
    ck_assert_int_eq(atomic_load(&freed), 1000);
}
END_TEST

/* The FIFO keeps dropped items in its chunks: cover drops that start at,
 * just after and far from a chunk boundary (a chunk holds 1022). */
START_TEST(free_hands_items_an_immediate_shutdown_dropped_to_free_item)
{
    static const long cases[][2] = {/* put, got before the shutdown */
                                    {5, 0},       {2044, 1022}, {1022, 1022},
                                    {1023, 1022}, {3000, 0},    {2500, 1021},
                                    {1, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        rlab_queue *q = make_queue(_i, 0);
        for (long v = 0; v < cases[k][0]; v++)
            ck_assert_rc(rlab_queue_put(q, new_item(v), 0), 0);
        for (long v = 0; v < cases[k][1]; v++) {
            void *item = NULL;
            ck_assert_rc(rlab_queue_get(q, &item, 0), 0);
            free(item);
        }
        ck_assert_rc(rlab_queue_shutdown(q, true), 0);
        ck_assert_int_eq(rlab_queue_qsize(q), 0);
        atomic_store(&freed, 0);
        rlab_queue_free(q, count_free);
        ck_assert_int_eq(atomic_load(&freed), cases[k][0] - cases[k][1]);
    }
}
END_TEST

START_TEST(free_without_free_item_releases_only_the_queue)
{
    long items[3] = {1, 2, 3};
    rlab_queue *q = make_queue(_i, 0);
    for (int k = 0; k < 3; k++)
        ck_assert_rc(rlab_queue_put(q, &items[k], 0), 0);
    rlab_queue_shutdown(q, true);
    rlab_queue_free(q, NULL); /* the items are on our stack */
    ck_assert_int_eq(items[0] + items[1] + items[2], 6);
}
END_TEST

/* ----------------------------------------------------------- threads --- */

/* One producer, one consumer: the consumer sees the producer's order.
 * With maxsize 3 the producer blocks often, with 0 never. */
typedef struct {
    rlab_queue *q;
    long n;
    int rc;
    long bad; /* first out-of-order index + 1 */
} stream;

static void *stream_producer(void *p)
{
    stream *s = p;
    for (long v = 0; v < s->n && !s->rc; v++)
        s->rc = rlab_queue_put(s->q, ITEM(v), RLAB_GUARD);
    return NULL;
}

START_TEST(fifo_order_holds_between_a_producer_and_a_consumer)
{
    const long sizes[] = {0, 3};
    for (int k = 0; k < 2; k++) {
        stream s = {.q = make_queue(FIFO, sizes[k]),
                    .n = rlab_test_scaled(50000)};
        rlab_thread *t = rlab_test_spawn(stream_producer, &s);
        int rc = 0;
        for (long v = 0; v < s.n && !rc; v++) {
            void *item = NULL;
            rc = rlab_queue_get(s.q, &item, RLAB_GUARD);
            if (!rc && VAL(item) != v && !s.bad)
                s.bad = v + 1;
        }
        rlab_test_join(t);
        ck_assert_rc(rc, 0);
        ck_assert_rc(s.rc, 0);
        ck_assert_msg(s.bad == 0, "item %ld out of order", s.bad - 1);
        ck_assert(rlab_queue_empty(s.q));
        rlab_queue_free(s.q, NULL);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue");

    TCase *tc = tcase_create("construct");
    tcase_add_loop_test(tc, new_queue_is_empty_not_full_and_not_shut_down, 0,
                        KINDS);
    tcase_add_loop_test(tc, maxsize_zero_or_negative_means_unbounded, 0, KINDS);
    tcase_add_test(tc, priority_queue_without_comparator_is_einval);
    tcase_add_test(tc, null_queue_is_einval_and_queries_are_zero);
    tcase_add_loop_test(
        tc, bad_timeout_or_null_item_is_einval_and_changes_nothing, 0, KINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_add_loop_test(tc, each_kind_returns_items_in_its_order, 0, KINDS);
    tcase_add_loop_test(tc, null_items_are_queued_like_any_other, 0, KINDS);
    tcase_add_loop_test(tc, order_holds_across_growth_and_chunk_boundaries, 0,
                        KINDS);
    tcase_add_test(tc, priority_queue_is_fifo_among_equal_items);
    tcase_add_test(
        tc, priority_queue_matches_a_sorted_model_under_random_operations);
    suite_add_tcase(s, tc);

    tc = tcase_create("full_empty");
    tcase_add_loop_test(tc, bounded_queue_is_full_at_maxsize, 0, KINDS);
    tcase_add_loop_test(
        tc, put_nowait_on_full_queue_is_eagain_and_changes_nothing, 0, KINDS);
    tcase_add_loop_test(
        tc, get_nowait_on_empty_queue_is_eagain_and_changes_nothing, 0, KINDS);
    tcase_add_loop_test(tc, timed_put_on_full_queue_expires_with_etimedout, 0,
                        KINDS);
    tcase_add_loop_test(tc, timed_get_on_empty_queue_expires_with_etimedout, 0,
                        KINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("blocking");
    tcase_add_loop_test(tc, put_on_full_queue_blocks_until_a_get_makes_room, 0,
                        KINDS);
    tcase_add_loop_test(tc, get_on_empty_queue_blocks_until_a_put, 0, KINDS);
    tcase_add_loop_test(tc, each_blocked_getter_receives_one_of_the_items_put,
                        0, KINDS);
    tcase_add_loop_test(tc, each_blocked_putter_gets_in_as_gets_make_room, 0,
                        KINDS);
    tcase_add_loop_test(
        tc, getter_that_loses_the_item_still_waits_out_its_timeout, 0, KINDS);
    tcase_add_loop_test(
        tc, putter_that_loses_the_room_still_waits_out_its_timeout, 0, KINDS);
    tcase_add_test(tc, fifo_order_holds_between_a_producer_and_a_consumer);
    suite_add_tcase(s, tc);

    tc = tcase_create("tasks");
    tcase_add_loop_test(tc, task_done_on_fresh_queue_is_einval, 0, KINDS);
    tcase_add_loop_test(
        tc, task_done_more_times_than_puts_is_einval_and_changes_nothing, 0,
        KINDS);
    tcase_add_loop_test(tc, only_task_done_finishes_a_task_not_get, 0, KINDS);
    tcase_add_loop_test(tc, timed_join_expires_while_a_task_is_unfinished, 0,
                        KINDS);
    tcase_add_loop_test(tc, join_returns_only_after_every_task_is_done, 0,
                        KINDS);
    tcase_add_loop_test(
        tc, every_blocked_joiner_wakes_when_the_last_task_is_done, 0, KINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_add_loop_test(tc, shutdown_of_empty_queue_fails_put_and_get, 0,
                        KINDS);
    tcase_add_loop_test(tc, shutdown_lets_get_drain_the_items_then_fails, 0,
                        KINDS);
    tcase_add_loop_test(tc, immediate_shutdown_drops_the_items_and_fails_get, 0,
                        KINDS);
    tcase_add_loop_test(tc, shutdown_may_be_repeated_and_made_immediate_later,
                        0, KINDS);
    tcase_add_loop_test(
        tc, immediate_shutdown_counts_only_dropped_items_as_done, 0, KINDS);
    tcase_add_loop_test(tc, shutdown_wakes_blocked_putters_with_eshutdown, 0,
                        KINDS);
    tcase_add_loop_test(tc, shutdown_wakes_blocked_getters_with_eshutdown, 0,
                        KINDS);
    tcase_add_loop_test(
        tc, getters_after_shutdown_share_the_items_left_then_fail, 0, KINDS);
    tcase_add_loop_test(tc, immediate_shutdown_releases_blocked_joiners, 0,
                        KINDS);
    tcase_add_loop_test(tc, plain_shutdown_leaves_joiners_waiting_for_task_done,
                        0, KINDS);
    tcase_add_loop_test(
        tc, shutdown_fails_later_puts_and_join_follows_the_item_left, 0, KINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("free");
    tcase_add_loop_test(tc, free_hands_every_item_left_to_free_item, 0, KINDS);
    tcase_add_loop_test(
        tc, free_hands_items_an_immediate_shutdown_dropped_to_free_item, 0,
        KINDS);
    tcase_add_loop_test(tc, free_without_free_item_releases_only_the_queue, 0,
                        KINDS);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
