/* stress_threading.c - the classic lost-update counter race, fixed with each
 * threading primitive, plus a notify/wait storm and barrier cycling.
 *
 * Every count is exact.  Every wait has a RLAB_GUARD deadline: a lost
 * wake-up ends the worker with a recorded error instead of hanging, and the
 * test asserts on the records after joining.  A primitive's last check at
 * its deadline may still succeed after a lost wake-up, so a wait that ran
 * into its guard is a failure too (in_time).  RLAB_STRESS_SCALE scales the
 * iteration counts. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rlab_test.h"

enum { WORKERS = 4 };

/* rc of a wait begun at t0 with the RLAB_GUARD deadline; ETIME if it
 * succeeded only at the guard: nothing here legitimately waits that long,
 * only a wake-up that never came. */
static int in_time(double t0, int rc)
{
    if (rc == 0 && rlab_test_now() - t0 >= RLAB_GUARD * 0.9)
        return ETIME;
    return rc;
}

/* Shared by the workers of one test.  `counter` is a plain long on purpose:
 * only the primitive under test keeps the increments from being lost. */
typedef struct shared shared;
struct shared {
    long iterations; /* per worker */
    long counter;
    rlab_lock *lock;
    rlab_rlock *rlock;
    rlab_semaphore *sem;
    rlab_condition *cond;
    int turn;
    rlab_event *ev[WORKERS];
    rlab_event *go;   /* set once every worker exists */
    atomic_bool stop; /* a worker failed: the others give up too */
    int (*enter)(shared *), (*leave)(shared *); /* for count_guarded */
};

typedef struct {
    shared *sh;
    int id;
    int rc; /* first failing status, 0 if none */
} worker;

static void worker_fail(worker *w, int rc)
{
    if (!w->rc)
        w->rc = rc;
    atomic_store(&w->sh->stop, true);
}

/* Every worker waits here first, so that none is done before the last one
 * has started: the increments of all four overlap.  false on failure. */
static bool start_together(worker *w)
{
    double t0 = rlab_test_now();
    int rc = in_time(t0, rlab_event_wait(w->sh->go, RLAB_GUARD));
    if (rc)
        worker_fail(w, rc);
    return rc == 0;
}

/* Starts WORKERS threads on fn, joins them and checks every record. */
static void run_workers(shared *sh, void *(*fn)(void *))
{
    worker w[WORKERS];
    rlab_thread *t[WORKERS];
    sh->go = rlab_event_new();
    ck_assert_ptr_nonnull(sh->go);
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (worker){.sh = sh, .id = i};
        t[i] = rlab_test_spawn(fn, &w[i]);
    }
    rlab_event_set(sh->go);
    for (int i = 0; i < WORKERS; i++)
        rlab_test_join(t[i]);
    rlab_event_free(sh->go);
    for (int i = 0; i < WORKERS; i++)
        ck_assert_msg(w[i].rc == 0, "worker %d failed: %d (%s)", i, w[i].rc,
                      rlab_strerror(w[i].rc));
}

/* ------------------------------------------------------- mutual exclusion ---
 */

/* The enter/leave pairs of the non-reentrant guards. */
static int lock_enter(shared *sh)
{
    return rlab_lock_acquire(sh->lock, RLAB_GUARD);
}

static int lock_leave(shared *sh)
{
    return rlab_lock_release(sh->lock);
}

static int semaphore_enter(shared *sh)
{
    return rlab_semaphore_acquire(sh->sem, RLAB_GUARD);
}

static int semaphore_leave(shared *sh)
{
    return rlab_semaphore_release(sh->sem, 1);
}

/* Increments the counter `iterations` times, each inside sh->enter and
 * sh->leave. */
static void *count_guarded(void *p)
{
    worker *w = p;
    shared *sh = w->sh;
    if (!start_together(w))
        return NULL;
    for (long k = 0; k < sh->iterations && !atomic_load(&sh->stop); k++) {
        double t0 = rlab_test_now();
        int rc = in_time(t0, sh->enter(sh));
        if (rc) {
            worker_fail(w, rc);
            break;
        }
        sh->counter++;
        if ((rc = sh->leave(sh))) {
            worker_fail(w, rc);
            break;
        }
    }
    return NULL;
}

START_TEST(lock_keeps_every_increment_of_4_threads)
{
    shared sh = {.iterations = rlab_test_scaled(100000)};
    sh.lock = rlab_lock_new();
    sh.enter = lock_enter;
    sh.leave = lock_leave;
    run_workers(&sh, count_guarded);
    ck_assert_int_eq(sh.counter, WORKERS * sh.iterations);
    ck_assert(!rlab_lock_locked(sh.lock));
    rlab_lock_free(sh.lock);
}
END_TEST

static void *count_with_rlock(void *p)
{
    worker *w = p;
    shared *sh = w->sh;
    if (!start_together(w))
        return NULL;
    for (long k = 0; k < sh->iterations && !atomic_load(&sh->stop); k++) {
        /* Every other round re-enters, so the count goes through depth 2. */
        int depth = 1 + (int)(k & 1), rc = 0;
        double t0 = rlab_test_now();
        for (int d = 0; d < depth && !rc; d++)
            rc = in_time(t0, rlab_rlock_acquire(sh->rlock, RLAB_GUARD));
        if (rc) {
            worker_fail(w, rc);
            break;
        }
        if (rlab_rlock_count(sh->rlock) != depth) {
            worker_fail(w, EPROTO);
            break;
        }
        sh->counter++;
        for (int d = 0; d < depth && !rc; d++)
            rc = rlab_rlock_release(sh->rlock);
        if (rc) {
            worker_fail(w, rc);
            break;
        }
    }
    return NULL;
}

START_TEST(rlock_keeps_every_increment_of_4_threads)
{
    shared sh = {.iterations = rlab_test_scaled(100000)};
    sh.rlock = rlab_rlock_new();
    run_workers(&sh, count_with_rlock);
    ck_assert_int_eq(sh.counter, WORKERS * sh.iterations);
    ck_assert_rc(rlab_rlock_acquire(sh.rlock, 0), 0); /* left unowned */
    ck_assert_rc(rlab_rlock_release(sh.rlock), 0);
    rlab_rlock_free(sh.rlock);
}
END_TEST

START_TEST(semaphore_of_1_keeps_every_increment_of_4_threads)
{
    shared sh = {.iterations = rlab_test_scaled(100000)};
    sh.sem = rlab_semaphore_new(1);
    sh.enter = semaphore_enter;
    sh.leave = semaphore_leave;
    run_workers(&sh, count_guarded);
    ck_assert_int_eq(sh.counter, WORKERS * sh.iterations);
    ck_assert_int_eq(rlab_semaphore_value(sh.sem), 1);
    rlab_semaphore_free(sh.sem);
}
END_TEST

/* ------------------------------------------------------------ turn-taking ---
 */

/* Each increment hands the turn to the next thread: a context switch per
 * increment, so these share 100,000 increments among the 4 threads. */
static long turn_iterations(void)
{
    return rlab_test_scaled(100000) / WORKERS;
}

static void *take_turns_on_condition(void *p)
{
    worker *w = p;
    shared *sh = w->sh;
    if (!start_together(w))
        return NULL;
    int rc = rlab_condition_acquire(sh->cond, RLAB_GUARD);
    if (rc) {
        worker_fail(w, rc);
        return NULL;
    }
    for (long k = 0; k < sh->iterations && !rc; k++) {
        while (sh->turn != w->id && !rc) {
            double t0 = rlab_test_now();
            if (atomic_load(&sh->stop))
                rc = ECANCELED;
            else
                rc = in_time(t0, rlab_condition_wait(sh->cond, RLAB_GUARD));
        }
        if (rc)
            break;
        sh->counter++;
        sh->turn = (w->id + 1) % WORKERS;
        rc = rlab_condition_notify_all(sh->cond);
    }
    if (rc) {
        worker_fail(w, rc);
        rlab_condition_notify_all(sh->cond); /* let the others see stop */
    }
    int rel = rlab_condition_release(sh->cond);
    if (rel)
        worker_fail(w, rel);
    return NULL;
}

START_TEST(condition_turn_taking_keeps_every_increment)
{
    shared sh = {.iterations = turn_iterations()};
    sh.cond = rlab_condition_new(NULL); /* its own RLock */
    run_workers(&sh, take_turns_on_condition);
    ck_assert_int_eq(sh.counter, WORKERS * sh.iterations);
    ck_assert_int_eq(sh.turn, 0);
    rlab_condition_free(sh.cond);
}
END_TEST

static void *take_turns_on_events(void *p)
{
    worker *w = p;
    shared *sh = w->sh;
    if (!start_together(w))
        return NULL;
    rlab_event *mine = sh->ev[w->id], *next = sh->ev[(w->id + 1) % WORKERS];
    for (long k = 0; k < sh->iterations; k++) {
        double t0 = rlab_test_now();
        int rc = in_time(t0, rlab_event_wait(mine, RLAB_GUARD));
        if (rc) {
            worker_fail(w, rc);
            break;
        }
        if (atomic_load(&sh->stop))
            break;
        rlab_event_clear(mine);
        sh->counter++;
        rlab_event_set(next);
    }
    if (w->rc)
        for (int i = 0; i < WORKERS; i++)
            rlab_event_set(sh->ev[i]); /* let the others see stop */
    return NULL;
}

START_TEST(event_turn_taking_keeps_every_increment)
{
    shared sh = {.iterations = turn_iterations()};
    for (int i = 0; i < WORKERS; i++)
        sh.ev[i] = rlab_event_new();
    rlab_event_set(sh.ev[0]);
    run_workers(&sh, take_turns_on_events);
    ck_assert_int_eq(sh.counter, WORKERS * sh.iterations);
    /* The last increment handed the turn back to thread 0. */
    ck_assert(rlab_event_is_set(sh.ev[0]));
    for (int i = 1; i < WORKERS; i++)
        ck_assert(!rlab_event_is_set(sh.ev[i]));
    for (int i = 0; i < WORKERS; i++)
        rlab_event_free(sh.ev[i]);
}
END_TEST

/* --------------------------------------------------- bounded buffer storm ---
 */

enum { CAPACITY = 8, PRODUCERS = 2, CONSUMERS = 2 };

typedef struct {
    rlab_lock *lock;
    rlab_condition *cond;                 /* one_condition: everything */
    rlab_condition *not_full, *not_empty; /* two_conditions, on `lock` */
    long items_per_producer;
    long buf[CAPACITY];
    int head, len;
    long removed, total;
    atomic_bool stop;
} buffer;

typedef struct {
    buffer *b;
    long sum, taken;
    int rc;
} party;

static void party_fail(party *p, int rc)
{
    if (!p->rc)
        p->rc = rc;
    atomic_store(&p->b->stop, true);
}

/* The condition a producer waits on and the one it notifies, and how. */
static rlab_condition *producer_waits(buffer *b)
{
    return b->cond ? b->cond : b->not_full;
}
static rlab_condition *consumer_waits(buffer *b)
{
    return b->cond ? b->cond : b->not_empty;
}
/* With one condition a notify might wake a thread of the same kind, so
 * everyone is woken; with two, exactly one waiter of the other kind. */
static int wake(buffer *b, rlab_condition *c)
{
    return b->cond ? rlab_condition_notify_all(c) : rlab_condition_notify(c, 1);
}

static int storm_wait(buffer *b, rlab_condition *c)
{
    if (atomic_load(&b->stop))
        return ECANCELED;
    double t0 = rlab_test_now();
    return in_time(t0, rlab_condition_wait(c, RLAB_GUARD));
}

/* On failure: record it and wake everyone (the lock is held) so the other
 * parties see `stop` at once. */
static void storm_fail(party *p, int rc)
{
    party_fail(p, rc);
    rlab_condition_notify_all(producer_waits(p->b));
    rlab_condition_notify_all(consumer_waits(p->b));
}

static void *produce(void *arg)
{
    party *p = arg;
    buffer *b = p->b;
    int rc = rlab_lock_acquire(b->lock, RLAB_GUARD);
    if (rc) {
        party_fail(p, rc);
        return NULL;
    }
    /* wait() holds the lock again when it returns, even on a timeout. */
    for (long item = 1; item <= b->items_per_producer && !rc; item++) {
        while (b->len == CAPACITY && !rc)
            rc = storm_wait(b, producer_waits(b));
        if (rc)
            break;
        b->buf[(b->head + b->len) % CAPACITY] = item;
        b->len++;
        p->sum += item;
        rc = wake(b, consumer_waits(b));
    }
    if (rc)
        storm_fail(p, rc);
    rlab_lock_release(b->lock);
    return NULL;
}

static void *consume(void *arg)
{
    party *p = arg;
    buffer *b = p->b;
    int rc = rlab_lock_acquire(b->lock, RLAB_GUARD);
    if (rc) {
        party_fail(p, rc);
        return NULL;
    }
    while (!rc) {
        while (b->len == 0 && b->removed < b->total && !rc)
            rc = storm_wait(b, consumer_waits(b));
        if (rc || b->len == 0)
            break;
        long item = b->buf[b->head];
        b->head = (b->head + 1) % CAPACITY;
        b->len--;
        b->removed++;
        p->sum += item;
        p->taken++;
        rc = wake(b, producer_waits(b));
        /* After the last item, release the consumers still waiting. */
        if (!rc && b->removed == b->total)
            rc = rlab_condition_notify_all(consumer_waits(b));
    }
    if (rc)
        storm_fail(p, rc);
    rlab_lock_release(b->lock);
    return NULL;
}

static void run_storm(bool one_condition)
{
    buffer b = {.items_per_producer = rlab_test_scaled(50000)};
    b.total = PRODUCERS * b.items_per_producer;
    b.lock = rlab_lock_new();
    if (one_condition) {
        b.cond = rlab_condition_new(b.lock);
    } else {
        b.not_full = rlab_condition_new(b.lock);
        b.not_empty = rlab_condition_new(b.lock);
    }
    party pp[PRODUCERS], pc[CONSUMERS];
    rlab_thread *tp[PRODUCERS], *tc[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        pc[i] = (party){.b = &b};
        tc[i] = rlab_test_spawn(consume, &pc[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pp[i] = (party){.b = &b};
        tp[i] = rlab_test_spawn(produce, &pp[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        rlab_test_join(tp[i]);
    for (int i = 0; i < CONSUMERS; i++)
        rlab_test_join(tc[i]);

    long n = b.items_per_producer, produced = 0, consumed = 0, taken = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        ck_assert_msg(pp[i].rc == 0, "producer %d failed: %s", i,
                      rlab_strerror(pp[i].rc));
        ck_assert_int_eq(pp[i].sum, n * (n + 1) / 2);
        produced += pp[i].sum;
    }
    for (int i = 0; i < CONSUMERS; i++) {
        ck_assert_msg(pc[i].rc == 0, "consumer %d failed: %s", i,
                      rlab_strerror(pc[i].rc));
        consumed += pc[i].sum;
        taken += pc[i].taken;
    }
    ck_assert_int_eq(taken, b.total);
    ck_assert_int_eq(consumed, produced);
    ck_assert_int_eq(b.len, 0);
    rlab_condition_free(b.cond);
    rlab_condition_free(b.not_full);
    rlab_condition_free(b.not_empty);
    rlab_lock_free(b.lock);
}

START_TEST(bounded_buffer_on_one_condition_loses_no_wakeup)
{
    run_storm(true);
}
END_TEST

START_TEST(bounded_buffer_on_two_conditions_with_notify_1_loses_no_wakeup)
{
    run_storm(false);
}
END_TEST

/* ---------------------------------------------------------------- barrier ---
 */

typedef struct {
    rlab_barrier *b;
    long cycles;
    long actions; /* written only by the action, inside the barrier */
    long *index;  /* [cycle * WORKERS + worker] */
    long *actions_seen;
} cycling;

typedef struct {
    cycling *c;
    int id;
    int rc;
} cycler;

static int count_cycle(void *arg)
{
    cycling *c = arg;
    c->actions++;
    return 0;
}

static void *cycle(void *arg)
{
    cycler *w = arg;
    cycling *c = w->c;
    for (long k = 0; k < c->cycles; k++) {
        long idx = -1;
        double t0 = rlab_test_now();
        int rc = in_time(t0, rlab_barrier_wait(c->b, RLAB_GUARD, &idx));
        if (rc) {
            w->rc = rc;
            rlab_barrier_abort(c->b); /* the others fail fast */
            break;
        }
        c->index[k * WORKERS + w->id] = idx;
        /* The action ran before anyone left, and the next cycle's action
         * cannot run until this thread arrives again. */
        c->actions_seen[k * WORKERS + w->id] = c->actions;
    }
    return NULL;
}

START_TEST(barrier_cycles_with_a_full_set_of_indices_every_time)
{
    cycling c = {.cycles = rlab_test_scaled(10000)};
    c.b = rlab_barrier_new(WORKERS, count_cycle, &c, RLAB_FOREVER);
    c.index = calloc((size_t)(c.cycles * WORKERS), sizeof *c.index);
    c.actions_seen = calloc((size_t)(c.cycles * WORKERS), sizeof *c.index);
    ck_assert_ptr_nonnull(c.index);
    ck_assert_ptr_nonnull(c.actions_seen);
    cycler w[WORKERS];
    rlab_thread *t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (cycler){.c = &c, .id = i};
        t[i] = rlab_test_spawn(cycle, &w[i]);
    }
    for (int i = 0; i < WORKERS; i++)
        rlab_test_join(t[i]);
    for (int i = 0; i < WORKERS; i++)
        ck_assert_msg(w[i].rc == 0, "worker %d failed: %s", i,
                      rlab_strerror(w[i].rc));
    ck_assert_int_eq(c.actions, c.cycles);
    for (long k = 0; k < c.cycles; k++) {
        bool seen[WORKERS] = {false};
        for (int i = 0; i < WORKERS; i++) {
            long idx = c.index[k * WORKERS + i];
            ck_assert_msg(idx >= 0 && idx < WORKERS && !seen[idx],
                          "cycle %ld: worker %d got index %ld twice or out "
                          "of range",
                          k, i, idx);
            seen[idx] = true;
            ck_assert_msg(c.actions_seen[k * WORKERS + i] == k + 1,
                          "cycle %ld: worker %d saw %ld actions", k, i,
                          c.actions_seen[k * WORKERS + i]);
        }
    }
    ck_assert(!rlab_barrier_broken(c.b));
    ck_assert_int_eq(rlab_barrier_n_waiting(c.b), 0);
    free(c.index);
    free(c.actions_seen);
    rlab_barrier_free(c.b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_threading");
    TCase *tc = tcase_create("counter");
    tcase_add_test(tc, lock_keeps_every_increment_of_4_threads);
    tcase_add_test(tc, rlock_keeps_every_increment_of_4_threads);
    tcase_add_test(tc, semaphore_of_1_keeps_every_increment_of_4_threads);
    tcase_add_test(tc, condition_turn_taking_keeps_every_increment);
    tcase_add_test(tc, event_turn_taking_keeps_every_increment);
    suite_add_tcase(s, tc);

    tc = tcase_create("storm");
    tcase_add_test(tc, bounded_buffer_on_one_condition_loses_no_wakeup);
    tcase_add_test(
        tc, bounded_buffer_on_two_conditions_with_notify_1_loses_no_wakeup);
    tcase_add_test(tc, barrier_cycles_with_a_full_set_of_indices_every_time);
    suite_add_tcase(s, tc);
    return rlab_test_main(s);
}
