/* stress_queue.c - producers and consumers hammer the queues, and the
 * multiset of items that came out must equal the multiset that went in.
 *
 * 4 producers and 4 consumers pass ITEMS items (scaled by
 * RLAB_STRESS_SCALE) through a Queue, a SimpleQueue and a bounded Queue of
 * maxsize 4, where putters block all the time; LifoQueue and PriorityQueue
 * get a smaller count.  Each item is numbered by its producer; a consumer
 * checks that it sees each producer's items of a FIFO in increasing order
 * and marks every item in a shared tally, which must end with every item
 * marked exactly once.  Once the producers are done, a plain shutdown ends
 * the consumers after they drained the queue (SimpleQueue, which has no
 * shutdown, gets one stop item per consumer).  Consumers call task_done,
 * and the main thread's join must then return.  Shutdown under load: producers
 * put until ShutDown, consumers get until ShutDown, and every item put is
 * either received once or (immediate shutdown) handed to free_item once.
 *
 * Every blocking call has a RLAB_GUARD deadline; a call that only succeeds
 * near that deadline is reported as a lost wake-up.  Workers record
 * failures; the main thread asserts after joining them, and its joins fail
 * only when no item moved for RLAB_GUARD, so a slow sanitizer run at a
 * large RLAB_STRESS_SCALE is not mistaken for a hang. */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rlab_test.h"

enum { PRODUCERS = 4, CONSUMERS = 4 };
#define ITEMS 1000000L

#define ITEM(v) ((void *)(uintptr_t)(v))
#define VAL(p) ((long)(uintptr_t)(p))

typedef enum { Q_FIFO, Q_LIFO, Q_PRIO, Q_SIMPLE } qkind;

static int cmp_val(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

/* ETIME for a wait that succeeded only near its RLAB_GUARD deadline:
 * nothing here legitimately waits that long, only a lost wake-up. */
static int in_time(double t0, int rc)
{
    if (rc == 0 && rlab_test_now() - t0 >= RLAB_GUARD * 0.9)
        return ETIME;
    return rc;
}

typedef struct {
    qkind kind;
    rlab_queue *q;
    rlab_simple_queue *sq;
    long per_producer;
    bool check_order;    /* FIFO: each producer's items in order */
    bool task_done;      /* consumers call task_done */
    atomic_uchar *tally; /* per item number: times received or freed */
    rlab_event *go;
    atomic_int failed;    /* first failing status */
    atomic_long progress; /* items received, in steps of PROGRESS */
} job;

enum { PROGRESS = 256 };

typedef struct {
    job *j;
    int id;
    int rc;
    long received;
    long out_of_order;
} worker;

static void worker_fail(worker *w, int rc)
{
    if (!rc)
        return;
    if (!w->rc)
        w->rc = rc;
    int none = 0;
    atomic_compare_exchange_strong(&w->j->failed, &none, rc);
}

static int put(job *j, long v)
{
    double t0 = rlab_test_now();
    if (j->kind == Q_SIMPLE)
        return rlab_simple_queue_put(j->sq, ITEM(v));
    return in_time(t0, rlab_queue_put(j->q, ITEM(v), RLAB_GUARD));
}

static int get(job *j, long *v)
{
    void *item = NULL;
    double t0 = rlab_test_now();
    int rc = j->kind == Q_SIMPLE
                 ? rlab_simple_queue_get(j->sq, &item, RLAB_GUARD)
                 : rlab_queue_get(j->q, &item, RLAB_GUARD);
    *v = VAL(item);
    return in_time(t0, rc);
}

/* Item numbers start at 1; 0 tells a consumer to stop. */
static long item_number(long producer, long i, long per)
{
    return producer * per + i + 1;
}

static void *producer(void *p)
{
    worker *w = p;
    job *j = w->j;
    int rc = rlab_event_wait(j->go, RLAB_GUARD);
    for (long i = 0; i < j->per_producer && !rc; i++) {
        if (atomic_load_explicit(&j->failed, memory_order_relaxed))
            return NULL;
        rc = put(j, item_number(w->id, i, j->per_producer));
    }
    if (rc)
        worker_fail(w, rc);
    return NULL;
}

/* Consumers stop at ShutDown (the queues) or at item 0 (SimpleQueue,
 * which has no shutdown; it is FIFO, so the stop items come last). */
static void *consumer(void *p)
{
    worker *w = p;
    job *j = w->j;
    long last[PRODUCERS];
    for (int k = 0; k < PRODUCERS; k++)
        last[k] = -1;
    int rc = rlab_event_wait(j->go, RLAB_GUARD);
    while (!rc) {
        long v;
        if ((rc = get(j, &v)))
            break;
        if (j->task_done && (rc = rlab_queue_task_done(j->q)))
            break;
        if (v == 0)
            return NULL;
        long k = (v - 1) / j->per_producer, i = (v - 1) % j->per_producer;
        if (k >= PRODUCERS) {
            rc = ERANGE;
            break;
        }
        if (j->check_order && i <= last[k])
            w->out_of_order++;
        last[k] = i;
        atomic_fetch_add_explicit(&j->tally[v], 1, memory_order_relaxed);
        if (++w->received % PROGRESS == 0)
            atomic_fetch_add_explicit(&j->progress, 1, memory_order_relaxed);
    }
    if (rc != RLAB_ESHUTDOWN || j->kind == Q_SIMPLE)
        worker_fail(w, rc);
    return NULL;
}

static job *current; /* for tally_free */

/* free_item for the shutdown tests: dropped items count as received. */
static void tally_free(void *item)
{
    atomic_fetch_add_explicit(&current->tally[VAL(item)], 1,
                              memory_order_relaxed);
}

static void job_init(job *j, qkind kind, long maxsize, long items)
{
    *j = (job){.kind = kind, .per_producer = items / PRODUCERS};
    switch (kind) {
    case Q_FIFO:
        j->q = rlab_queue_new(maxsize);
        break;
    case Q_LIFO:
        j->q = rlab_lifo_queue_new(maxsize);
        break;
    case Q_PRIO:
        j->q = rlab_priority_queue_new(maxsize, cmp_val);
        break;
    case Q_SIMPLE:
        j->sq = rlab_simple_queue_new();
        ck_assert_ptr_nonnull(j->sq);
        break;
    }
    if (kind != Q_SIMPLE)
        ck_assert_ptr_nonnull(j->q);
    j->check_order = kind == Q_FIFO || kind == Q_SIMPLE;
    j->task_done = kind != Q_SIMPLE;
    long n = j->per_producer * PRODUCERS + 1;
    j->tally = calloc((size_t)n, sizeof *j->tally);
    ck_assert_ptr_nonnull(j->tally);
    j->go = rlab_event_new();
    ck_assert_ptr_nonnull(j->go);
    atomic_init(&j->failed, 0);
    atomic_init(&j->progress, 0);
}

static void job_fini(job *j)
{
    if (j->kind == Q_SIMPLE)
        rlab_simple_queue_free(j->sq, NULL);
    else
        rlab_queue_free(j->q, NULL);
    free(j->tally);
    rlab_event_free(j->go);
}

/* Every item 1..n received (or freed) exactly once. */
static void check_tally(job *j)
{
    long n = j->per_producer * PRODUCERS;
    long missing = 0, extra = 0, first_bad = 0;
    for (long v = 1; v <= n; v++) {
        unsigned c = atomic_load_explicit(&j->tally[v], memory_order_relaxed);
        if (c != 1 && !first_bad)
            first_bad = v;
        missing += c == 0;
        extra += c > 1 ? c - 1 : 0;
    }
    ck_assert_msg(missing == 0 && extra == 0,
                  "%ld items missing, %ld extra (first: item %ld)", missing,
                  extra, first_bad);
}

/* Joins n threads and frees their handles.  Sanitizers and a busy machine
 * stretch a run, so this fails only when the job stopped making progress
 * for RLAB_GUARD (a hang), not when it is merely slow.  On a hang it
 * releases the workers (an immediate shutdown; producers also watch
 * `failed`) and fails the test; the job and the workers' records live on
 * the heap and are left to the threads still running. */
static void join_all(job *j, rlab_thread **t, int n)
{
    long seen = atomic_load(&j->progress);
    double changed = rlab_test_now();
    for (int k = 0; k < n; k++) {
        int rc;
        while ((rc = rlab_thread_join(t[k], 0.25, NULL)) == ETIMEDOUT) {
            long now = atomic_load(&j->progress);
            if (now != seen) {
                seen = now;
                changed = rlab_test_now();
            } else if (rlab_test_now() - changed >= RLAB_GUARD) {
                break;
            }
        }
        if (rc == 0) {
            rlab_thread_free(t[k]);
            continue;
        }
        atomic_store(&j->failed, ETIMEDOUT);
        if (j->q)
            rlab_queue_shutdown(j->q, true);
        ck_abort_msg("no progress for %.0f s: a worker hangs (%d)", RLAB_GUARD,
                     rc);
    }
}

/* What the threads of one run share, on the heap (see join_all). */
typedef struct {
    job j;
    worker p[PRODUCERS], c[CONSUMERS];
    rlab_thread *tp[PRODUCERS], *tc[CONSUMERS];
} pass_run;

/* Runs the producers, then stops the consumers (a plain shutdown, or one
 * stop item each), and checks. */
static void pass_items(qkind kind, long maxsize, long items)
{
    pass_run *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    job *j = &r->j;
    job_init(j, kind, maxsize, items);
    worker *p = r->p, *c = r->c;
    for (int k = 0; k < CONSUMERS; k++) {
        c[k] = (worker){.j = j, .id = k};
        r->tc[k] = rlab_test_spawn(consumer, &c[k]);
    }
    for (int k = 0; k < PRODUCERS; k++) {
        p[k] = (worker){.j = j, .id = k};
        r->tp[k] = rlab_test_spawn(producer, &p[k]);
    }
    rlab_event_set(j->go);
    join_all(j, r->tp, PRODUCERS);
    if (kind != Q_SIMPLE) /* immediate on failure: release everyone */
        ck_assert_rc(rlab_queue_shutdown(j->q, atomic_load(&j->failed)), 0);
    else
        for (int k = 0; k < CONSUMERS && !atomic_load(&j->failed); k++)
            ck_assert_rc(put(j, 0), 0);
    join_all(j, r->tc, CONSUMERS);
    for (int k = 0; k < PRODUCERS; k++)
        ck_assert_msg(p[k].rc == 0, "producer %d failed: %d (%s)", k, p[k].rc,
                      rlab_strerror(p[k].rc));
    long received = 0;
    for (int k = 0; k < CONSUMERS; k++) {
        ck_assert_msg(c[k].rc == 0, "consumer %d failed: %d (%s)", k, c[k].rc,
                      rlab_strerror(c[k].rc));
        ck_assert_msg(c[k].out_of_order == 0,
                      "consumer %d saw %ld items out of producer order", k,
                      c[k].out_of_order);
        received += c[k].received;
    }
    ck_assert_int_eq(received, j->per_producer * PRODUCERS);
    check_tally(j);
    if (kind != Q_SIMPLE) {
        ck_assert_rc(rlab_queue_join(j->q, RLAB_GUARD), 0);
        ck_assert_int_eq(rlab_queue_unfinished_tasks(j->q), 0);
        ck_assert(rlab_queue_empty(j->q));
    } else {
        ck_assert(rlab_simple_queue_empty(j->sq));
    }
    job_fini(j);
    free(r);
}

START_TEST(queue_passes_every_item_once_between_4_producers_and_4_consumers)
{
    pass_items(Q_FIFO, 0, rlab_test_scaled(ITEMS));
}
END_TEST

START_TEST(simple_queue_passes_every_item_once_between_4_and_4_threads)
{
    pass_items(Q_SIMPLE, 0, rlab_test_scaled(ITEMS));
}
END_TEST

START_TEST(bounded_queue_of_4_passes_every_item_once_with_blocking_putters)
{
    pass_items(Q_FIFO, 4, rlab_test_scaled(ITEMS));
}
END_TEST

START_TEST(lifo_queue_passes_every_item_once_between_4_and_4_threads)
{
    pass_items(Q_LIFO, 0, rlab_test_scaled(ITEMS / 5));
    pass_items(Q_LIFO, 4, rlab_test_scaled(ITEMS / 5));
}
END_TEST

START_TEST(priority_queue_passes_every_item_once_between_4_and_4_threads)
{
    pass_items(Q_PRIO, 0, rlab_test_scaled(ITEMS / 5));
    pass_items(Q_PRIO, 4, rlab_test_scaled(ITEMS / 5));
}
END_TEST

/* ------------------------------------------------- shutdown under load --- */

/* CPython's _shutdown_all_methods_in_many_threads: producers put until
 * ShutDown; half the consumers block in get, half poll with get_nowait,
 * until ShutDown; one producer shuts the queue down halfway.  Every item a
 * put accepted is then received once, or (immediate) dropped and handed to
 * free_item once; with immediate, joiners return too. */
typedef struct {
    job *j;
    int id;
    bool immediate;
    rlab_event *shut_now; /* set by producer 0 halfway */
    int rc;
    long accepted, received;
} sworker;

static void sworker_fail(sworker *w, int rc)
{
    if (!w->rc)
        w->rc = rc;
    int none = 0;
    atomic_compare_exchange_strong(&w->j->failed, &none, rc);
}

static void *shut_producer(void *p)
{
    sworker *w = p;
    job *j = w->j;
    int rc = rlab_event_wait(j->go, RLAB_GUARD);
    for (long i = 0; i < j->per_producer && !rc; i++) {
        if (atomic_load_explicit(&j->failed, memory_order_relaxed))
            return NULL;
        double t0 = rlab_test_now();
        rc = in_time(t0, rlab_queue_put(
                             j->q, ITEM(item_number(w->id, i, j->per_producer)),
                             RLAB_GUARD));
        if (rc == 0)
            w->accepted++;
        if (w->id == 0 && i == j->per_producer / 2)
            rlab_event_set(w->shut_now);
    }
    if (rc && rc != RLAB_ESHUTDOWN) /* done, or stopped by the shutdown */
        sworker_fail(w, rc);
    return NULL;
}

static void *shut_consumer(void *p)
{
    sworker *w = p;
    job *j = w->j;
    bool poll = w->id % 2;
    int rc = rlab_event_wait(j->go, RLAB_GUARD);
    double start = rlab_test_now();
    while (!rc) {
        void *item = NULL;
        double t0 = rlab_test_now();
        if (poll) {
            rc = rlab_queue_get(j->q, &item, 0);
            if (rc == EAGAIN) {
                rc = rlab_test_now() - start < RLAB_GUARD ? 0 : ETIMEDOUT;
                sched_yield();
                continue;
            }
        } else {
            rc = in_time(t0, rlab_queue_get(j->q, &item, RLAB_GUARD));
        }
        if (rc)
            break;
        if ((rc = rlab_queue_task_done(j->q)))
            break;
        atomic_fetch_add_explicit(&j->tally[VAL(item)], 1,
                                  memory_order_relaxed);
        if (++w->received % PROGRESS == 0)
            atomic_fetch_add_explicit(&j->progress, 1, memory_order_relaxed);
    }
    if (rc != RLAB_ESHUTDOWN)
        sworker_fail(w, rc);
    return NULL;
}

static void *shut_joiner(void *p)
{
    sworker *w = p;
    job *j = w->j;
    int rc = rlab_event_wait(j->go, RLAB_GUARD);
    if (!rc)
        rc = in_time(rlab_test_now(), rlab_queue_join(j->q, RLAB_GUARD));
    if (rc)
        sworker_fail(w, rc);
    return NULL;
}

enum { READERS = 6, JOINERS = 2 };

/* What the threads of one run share, on the heap (see join_all). */
typedef struct {
    job j;
    sworker p[PRODUCERS], c[READERS], jn[JOINERS];
    rlab_thread *tp[PRODUCERS], *tc[READERS], *tj[JOINERS];
} shut_run;

static void shutdown_under_load(bool immediate)
{
    shut_run *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    job *j = &r->j;
    job_init(j, Q_FIFO, 0, rlab_test_scaled(ITEMS / 10));
    current = j;
    rlab_event *shut_now = rlab_event_new();
    ck_assert_ptr_nonnull(shut_now);
    sworker *p = r->p, *c = r->c, *jn = r->jn;
    for (int k = 0; k < PRODUCERS; k++) {
        p[k] = (sworker){.j = j, .id = k, .shut_now = shut_now};
        r->tp[k] = rlab_test_spawn(shut_producer, &p[k]);
    }
    for (int k = 0; k < READERS; k++) {
        c[k] = (sworker){.j = j, .id = k};
        r->tc[k] = rlab_test_spawn(shut_consumer, &c[k]);
    }
    int joiners = immediate ? JOINERS : 0;
    for (int k = 0; k < joiners; k++) {
        jn[k] = (sworker){.j = j, .id = k};
        r->tj[k] = rlab_test_spawn(shut_joiner, &jn[k]);
    }
    rlab_event_set(j->go);
    ck_assert_rc(rlab_event_wait(shut_now, RLAB_GUARD), 0);
    ck_assert_rc(rlab_queue_shutdown(j->q, immediate), 0);
    if (immediate)
        ck_assert(rlab_queue_empty(j->q));
    join_all(j, r->tp, PRODUCERS);
    join_all(j, r->tc, READERS);
    join_all(j, r->tj, joiners);
    rlab_event_free(shut_now);

    long accepted = 0, received = 0;
    for (int k = 0; k < PRODUCERS; k++) {
        ck_assert_msg(p[k].rc == 0, "producer %d failed: %d (%s)", k, p[k].rc,
                      rlab_strerror(p[k].rc));
        accepted += p[k].accepted;
    }
    for (int k = 0; k < READERS; k++) {
        ck_assert_msg(c[k].rc == 0, "consumer %d failed: %d (%s)", k, c[k].rc,
                      rlab_strerror(c[k].rc));
        received += c[k].received;
    }
    for (int k = 0; k < joiners; k++)
        ck_assert_msg(jn[k].rc == 0, "joiner %d failed: %d (%s)", k, jn[k].rc,
                      rlab_strerror(jn[k].rc));
    ck_assert(rlab_queue_empty(j->q));
    ck_assert_rc(rlab_queue_join(j->q, 0), 0);
    if (!immediate)
        ck_assert_int_eq(received, accepted);
    ck_assert_int_le(received, accepted);

    /* Received items plus (immediate) the dropped ones, handed to
     * free_item now: each accepted item exactly once, no other. */
    rlab_queue_free(j->q, tally_free);
    j->q = NULL;
    long n = j->per_producer * PRODUCERS, marked = 0;
    for (long v = 1; v <= n; v++) {
        unsigned cnt = atomic_load_explicit(&j->tally[v], memory_order_relaxed);
        ck_assert_msg(cnt <= 1, "item %ld came out %u times", v, cnt);
        marked += cnt;
    }
    ck_assert_int_eq(marked, accepted);
    free(j->tally);
    rlab_event_free(j->go);
    current = NULL;
    free(r);
}

START_TEST(shutdown_under_load_ends_every_call_and_loses_no_item)
{
    shutdown_under_load(false);
}
END_TEST

START_TEST(immediate_shutdown_under_load_drops_items_into_free_item_only)
{
    shutdown_under_load(true);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_queue");
    TCase *tc = tcase_create("pass_items");
    tcase_add_test(
        tc, queue_passes_every_item_once_between_4_producers_and_4_consumers);
    tcase_add_test(tc,
                   simple_queue_passes_every_item_once_between_4_and_4_threads);
    tcase_add_test(
        tc, bounded_queue_of_4_passes_every_item_once_with_blocking_putters);
    tcase_add_test(tc,
                   lifo_queue_passes_every_item_once_between_4_and_4_threads);
    tcase_add_test(
        tc, priority_queue_passes_every_item_once_between_4_and_4_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_add_test(tc, shutdown_under_load_ends_every_call_and_loses_no_item);
    tcase_add_test(
        tc, immediate_shutdown_under_load_drops_items_into_free_item_only);
    suite_add_tcase(s, tc);
    return rlab_test_main(s);
}
