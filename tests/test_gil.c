/*
 * test_gil.c - rlab_gil, the simulated GIL of CPython's ceval_gil.c.
 *
 * The invariants the workloads rely on: never two holders, a waiter gets
 * the GIL after about one switch interval (never before one), a drop on
 * request hands the GIL to a waiter before the dropper runs again (forced
 * switching), blocking sections let other threads in, and the `n += 1`
 * model loses updates exactly when a check point sits inside the
 * increment.  Timing is asserted only as a lower bound (which the protocol
 * guarantees) or with a tolerance far beyond scheduling noise; throughput
 * comparisons belong to `racelab bench`, not here.  Worker threads never
 * call ck_assert: they record what they saw and the main thread asserts.
 */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "rlab_test.h"

/* Two readings of CLOCK_MONOTONIC, as doubles, round at about 1e-10 s. */
#define CLOCK_SLACK 1e-6

static rlab_gil *new_gil(double interval)
{
    rlab_gil *g = rlab_gil_new(interval);
    ck_assert_ptr_nonnull(g);
    return g;
}

static rlab_gil_stats stats_of(rlab_gil *g)
{
    rlab_gil_stats st;
    ck_assert_rc(rlab_gil_get_stats(g, &st), 0);
    return st;
}

/* Burns a little CPU, as a stretch of bytecode would. */
static void spin(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
}

/* Waits until *flag reaches `want`, yielding; fails after RLAB_GUARD. */
static void await_count(atomic_long *flag, long want)
{
    double end = rlab_test_now() + RLAB_GUARD;
    while (atomic_load(flag) < want) {
        ck_assert_msg(rlab_test_now() < end, "state never reached");
        sched_yield();
    }
}

/* --------------------------------------------------------- settings --- */

START_TEST(new_gil_is_free_with_the_given_interval_and_310_placement)
{
    rlab_gil *g = new_gil(RLAB_GIL_DEFAULT_INTERVAL);
    ck_assert(!rlab_gil_held(g));
    ck_assert_double_eq(rlab_gil_switch_interval(g), 0.005);
    ck_assert_int_eq(rlab_gil_check_placement(g),
                     RLAB_GIL_CHECK_BACKEDGE_AND_CALL);
    rlab_gil_stats st = stats_of(g);
    ck_assert_uint_eq(st.acquisitions, 0);
    ck_assert_uint_eq(st.switches, 0);
    ck_assert_int_eq(st.waiters, 0);
    rlab_gil_free(g);
    rlab_gil_free(NULL);
}
END_TEST

START_TEST(new_rejects_an_interval_that_is_not_strictly_positive)
{
    const double bad[] = {0.0, -0.0, -1.0, RLAB_FOREVER, NAN, INFINITY, 2e9};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        ck_assert_ptr_null(rlab_gil_new(bad[i]));
        ck_assert_int_eq(errno, EINVAL);
    }
}
END_TEST

START_TEST(set_switch_interval_validates_and_changes_nothing_on_error)
{
    rlab_gil *g = new_gil(0.005);
    ck_assert_rc(rlab_gil_set_switch_interval(g, 0.001), 0);
    ck_assert_double_eq(rlab_gil_switch_interval(g), 0.001);
    ck_assert_rc(rlab_gil_set_switch_interval(g, 1e-9), 0); /* tiny is fine */
    ck_assert_double_eq(rlab_gil_switch_interval(g), 1e-9);
    ck_assert_rc(rlab_gil_set_switch_interval(g, 0.25), 0);
    const double bad[] = {0.0, -0.001, NAN, INFINITY, -INFINITY, 1e10};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_rc(rlab_gil_set_switch_interval(g, bad[i]), EINVAL);
        ck_assert_double_eq(rlab_gil_switch_interval(g), 0.25);
    }
    ck_assert_rc(rlab_gil_set_switch_interval(NULL, 0.005), EINVAL);
    ck_assert_double_eq(rlab_gil_switch_interval(NULL), 0);
    rlab_gil_free(g);
}
END_TEST

START_TEST(set_check_placement_validates_and_changes_nothing_on_error)
{
    rlab_gil *g = new_gil(0.005);
    ck_assert_rc(
        rlab_gil_set_check_placement(g, RLAB_GIL_CHECK_EVERY_INSTRUCTION), 0);
    ck_assert_int_eq(rlab_gil_check_placement(g),
                     RLAB_GIL_CHECK_EVERY_INSTRUCTION);
    ck_assert_rc(rlab_gil_set_check_placement(g, (rlab_gil_placement)2),
                 EINVAL);
    ck_assert_rc(rlab_gil_set_check_placement(g, (rlab_gil_placement)-1),
                 EINVAL);
    ck_assert_int_eq(rlab_gil_check_placement(g),
                     RLAB_GIL_CHECK_EVERY_INSTRUCTION);
    ck_assert_rc(
        rlab_gil_set_check_placement(NULL, RLAB_GIL_CHECK_EVERY_INSTRUCTION),
        EINVAL);
    rlab_gil_free(g);
}
END_TEST

START_TEST(null_handles_are_einval_or_false)
{
    rlab_gil_stats st;
    ck_assert_rc(rlab_gil_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_gil_release(NULL), EINVAL);
    ck_assert_rc(rlab_gil_begin_blocking(NULL), EINVAL);
    ck_assert_rc(rlab_gil_end_blocking(NULL), EINVAL);
    ck_assert_rc(rlab_gil_get_stats(NULL, &st), EINVAL);
    ck_assert(!rlab_gil_held(NULL));
    ck_assert(!rlab_gil_check(NULL));
    ck_assert(!rlab_gil_check_at(NULL, RLAB_GIL_AT_BACKEDGE));
    rlab_gil *g = new_gil(0.005);
    ck_assert_rc(rlab_gil_get_stats(g, NULL), EINVAL);
    rlab_gil_free(g);
}
END_TEST

/* -------------------------------------------------------- ownership --- */

typedef struct {
    rlab_gil *g;
    double timeout;
    int acquire_rc, release_rc, begin_rc;
    bool held;
    double elapsed;
} other_job;

/* From a thread that does not hold the GIL: release, begin_blocking and a
 * timed acquire. */
static void *other_fn(void *arg)
{
    other_job *j = arg;
    j->held = rlab_gil_held(j->g);
    j->release_rc = rlab_gil_release(j->g);
    j->begin_rc = rlab_gil_begin_blocking(j->g);
    double t0 = rlab_test_now();
    j->acquire_rc = rlab_gil_acquire(j->g, j->timeout);
    j->elapsed = rlab_test_now() - t0;
    if (j->acquire_rc == 0)
        rlab_gil_release(j->g);
    return NULL;
}

START_TEST(acquire_makes_the_caller_the_only_holder)
{
    rlab_gil *g = new_gil(0.001);
    ck_assert_rc(rlab_gil_acquire(g, 0), 0);
    ck_assert(rlab_gil_held(g));
    ck_assert_rc(rlab_gil_acquire(g, 0), EDEADLK);
    ck_assert_rc(rlab_gil_acquire(g, RLAB_GUARD), EDEADLK);
    ck_assert_rc(rlab_gil_end_blocking(g), EDEADLK);

    other_job j = {.g = g, .timeout = 0};
    rlab_test_join(rlab_test_spawn(other_fn, &j));
    ck_assert(!j.held);
    ck_assert_rc(j.release_rc, EPERM);
    ck_assert_rc(j.begin_rc, EPERM);
    ck_assert_rc(j.acquire_rc, EAGAIN);
    ck_assert(rlab_gil_held(g)); /* the failures changed nothing */

    ck_assert_rc(rlab_gil_release(g), 0);
    ck_assert(!rlab_gil_held(g));
    ck_assert_rc(rlab_gil_release(g), EPERM);
    ck_assert_rc(rlab_gil_begin_blocking(g), EPERM);
    rlab_gil_free(g);
}
END_TEST

START_TEST(acquire_rejects_bad_timeouts)
{
    rlab_gil *g = new_gil(0.001);
    ck_assert_rc(rlab_gil_acquire(g, -2.0), EINVAL);
    ck_assert_rc(rlab_gil_acquire(g, NAN), EINVAL);
    ck_assert(!rlab_gil_held(g));
    ck_assert_rc(rlab_gil_acquire(g, INFINITY), 0);
    ck_assert_rc(rlab_gil_release(g), 0);
    rlab_gil_free(g);
}
END_TEST

START_TEST(timed_acquire_expires_and_its_drop_request_strands_nobody)
{
    const double interval = 0.002, timeout = 0.05;
    rlab_gil *g = new_gil(interval);
    ck_assert_rc(rlab_gil_acquire(g, 0), 0);
    /* The holder never reaches a check point while the other thread
     * waits, so that thread asks for a drop and then gives up. */
    other_job j = {.g = g, .timeout = timeout};
    rlab_test_join(rlab_test_spawn(other_fn, &j));
    ck_assert_rc(j.acquire_rc, ETIMEDOUT);
    ck_assert_double_ge(j.elapsed, timeout - CLOCK_SLACK);
    ck_assert_double_lt(j.elapsed, RLAB_GUARD / 2);
    rlab_gil_stats st = stats_of(g);
    ck_assert_uint_ge(st.drop_requests, 1);
    ck_assert_int_eq(st.waiters, 0);
    /* The request is stale: the check drops and re-takes at once instead
     * of waiting for a switch that cannot come. */
    ck_assert(!rlab_gil_check(g));
    ck_assert(rlab_gil_held(g));
    st = stats_of(g);
    ck_assert_uint_eq(st.check_drops, 1);
    ck_assert_uint_eq(st.forced_switches, 0);
    ck_assert(!rlab_gil_check(g)); /* and it is gone */
    ck_assert_uint_eq(stats_of(g).check_drops, 1);
    ck_assert_rc(rlab_gil_release(g), 0);
    rlab_gil_free(g);
}
END_TEST

START_TEST(a_lone_holder_is_never_asked_to_drop)
{
    const double interval = 0.001;
    rlab_gil *g = new_gil(interval);
    ck_assert_rc(rlab_gil_acquire(g, 0), 0);
    rlab_gil_set_check_placement(g, RLAB_GIL_CHECK_EVERY_INSTRUCTION);
    long switched = 0;
    double end = rlab_test_now() + 5 * interval;
    while (rlab_test_now() < end) {
        switched += rlab_gil_check(g);
        switched += rlab_gil_check_at(g, RLAB_GIL_AT_INSTRUCTION);
        switched += rlab_gil_check_at(g, RLAB_GIL_AT_CALL);
    }
    ck_assert_int_eq(switched, 0);
    rlab_gil_stats st = stats_of(g);
    ck_assert_uint_eq(st.drop_requests, 0);
    ck_assert_uint_eq(st.check_drops, 0);
    ck_assert_uint_eq(st.acquisitions, 1);
    ck_assert_rc(rlab_gil_release(g), 0);
    rlab_gil_free(g);
}
END_TEST

/* ---------------------------------------------------------- hand-off --- */

/* A CPU-bound holder: takes the GIL and runs check points until told to
 * stop, counting the times it got the GIL back from another thread. */
typedef struct {
    rlab_gil *g;
    atomic_bool stop;
    atomic_long back; /* times the holder has the GIL (again) */
    int rc;
} holder_job;

static void *holder_fn(void *arg)
{
    holder_job *j = arg;
    j->rc = rlab_gil_acquire(j->g, RLAB_GUARD);
    if (j->rc)
        return NULL;
    atomic_fetch_add(&j->back, 1);
    while (!atomic_load_explicit(&j->stop, memory_order_relaxed)) {
        if (rlab_gil_check(j->g))
            atomic_fetch_add(&j->back, 1);
    }
    rlab_gil_release(j->g);
    return NULL;
}

#define HANDOFFS 5

/* The main thread takes the GIL from a spinning holder HANDOFFS times and
 * returns the median wait; every single wait must last a full interval. */
static double handoff_median(rlab_gil *g, double interval)
{
    holder_job j = {.g = g};
    rlab_thread *t = rlab_test_spawn(holder_fn, &j);
    double lat[HANDOFFS];
    for (int i = 0; i < HANDOFFS; i++) {
        await_count(&j.back, i + 1); /* the holder runs again */
        double t0 = rlab_test_now();
        ck_assert_rc(rlab_gil_acquire(g, RLAB_GUARD), 0);
        lat[i] = rlab_test_now() - t0;
        if (i == HANDOFFS - 1)
            atomic_store(&j.stop, true);
        ck_assert_rc(rlab_gil_release(g), 0);
    }
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    fprintf(stderr,
            "test_gil: interval %.1f ms, hand-offs (ms):", interval * 1e3);
    for (int i = 0; i < HANDOFFS; i++) {
        fprintf(stderr, " %.2f", lat[i] * 1e3);
        /* No drop before a waiter has waited one whole interval. */
        ck_assert_msg(lat[i] >= interval - CLOCK_SLACK,
                      "hand-off %d after %.3f ms, before the %.1f ms interval",
                      i, lat[i] * 1e3, interval * 1e3);
    }
    fprintf(stderr, "\n");
    /* Each hand-off was one forced switch: the holder dropped on request
     * and waited until the main thread had the GIL. */
    rlab_gil_stats st = stats_of(g);
    ck_assert_uint_eq(st.forced_switches, HANDOFFS);
    ck_assert_uint_eq(st.check_drops, HANDOFFS);
    for (int a = 1; a < HANDOFFS; a++) /* insertion sort */
        for (int b = a; b > 0 && lat[b] < lat[b - 1]; b--) {
            double x = lat[b];
            lat[b] = lat[b - 1];
            lat[b - 1] = x;
        }
    return lat[HANDOFFS / 2];
}

START_TEST(a_waiter_gets_the_gil_after_about_one_switch_interval)
{
    rlab_gil *g = new_gil(RLAB_GIL_DEFAULT_INTERVAL);
    double med = handoff_median(g, RLAB_GIL_DEFAULT_INTERVAL);
    ck_assert_msg(med < 5 * RLAB_GIL_DEFAULT_INTERVAL + 0.05,
                  "median hand-off %.3f ms", med * 1e3);
    rlab_gil_free(g);
}
END_TEST

START_TEST(a_longer_switch_interval_delays_the_hand_off)
{
    rlab_gil *g = new_gil(RLAB_GIL_DEFAULT_INTERVAL);
    const double interval = 0.03;
    ck_assert_rc(rlab_gil_set_switch_interval(g, interval), 0);
    double med = handoff_median(g, interval);
    ck_assert_msg(med < 5 * interval + 0.05, "median hand-off %.3f ms",
                  med * 1e3);
    rlab_gil_free(g);
}
END_TEST

/* Two CPU-bound threads take turns: after every check that reports a
 * switch, the other thread must have run (written `last`) in between.
 * Each thread writes `last` first thing whenever it has the GIL. */
#define FORCED_TARGET 40

typedef struct {
    rlab_gil *g;
    int last;          /* who ran bytecode last; under the GIL */
    long switches;     /* check points that reported a switch; under GIL */
    long not_switched; /* ... after which nobody else had run */
    bool timed_out;
} turns;

typedef struct {
    turns *s;
    int me;
    int rc;
} turn_job;

static void *turn_fn(void *arg)
{
    turn_job *j = arg;
    turns *s = j->s;
    j->rc = rlab_gil_acquire(s->g, RLAB_GUARD);
    if (j->rc)
        return NULL;
    double end = rlab_test_now() + RLAB_GUARD / 2;
    s->last = j->me;
    while (s->switches < FORCED_TARGET) {
        spin(200);
        if (rlab_gil_check(s->g)) {
            s->switches++;
            if (s->last == j->me)
                s->not_switched++;
        }
        s->last = j->me; /* first thing after having the GIL (again) */
        if (rlab_test_now() > end) {
            s->timed_out = true;
            break;
        }
    }
    rlab_gil_release(s->g);
    return NULL;
}

START_TEST(forced_switching_lets_the_waiter_run_before_the_dropper)
{
    turns s = {.g = new_gil(2e-4)};
    turn_job a = {.s = &s, .me = 1}, b = {.s = &s, .me = 2};
    rlab_thread *ta = rlab_test_spawn(turn_fn, &a);
    rlab_thread *tb = rlab_test_spawn(turn_fn, &b);
    rlab_test_join(ta);
    rlab_test_join(tb);
    ck_assert_rc(a.rc, 0);
    ck_assert_rc(b.rc, 0);
    ck_assert(!s.timed_out);
    ck_assert_int_ge(s.switches, FORCED_TARGET);
    ck_assert_int_eq(s.not_switched, 0);
    /* Every drop at a check point handed the GIL over: a dropper that won
     * it straight back would show a drop without a reported switch. */
    rlab_gil_stats st = stats_of(s.g);
    ck_assert_uint_eq(st.check_drops, (unsigned long)s.switches);
    ck_assert_uint_eq(st.forced_switches, (unsigned long)s.switches);
    ck_assert_int_eq(st.waiters, 0);
    rlab_gil_free(s.g);
}
END_TEST

/* ---------------------------------------------------- never two in --- */

#define HOLD_THREADS 4

typedef struct {
    rlab_gil *g;
    rlab_barrier *start; /* so that every thread contends from the start */
    long rounds, steps;
    atomic_int inside; /* threads running "bytecode" now */
    atomic_int max_inside;
    atomic_long not_held; /* bytecode run without holding the GIL */
    atomic_long failed;   /* acquires or releases that did not return 0 */
    long count;           /* plain, incremented under the GIL only */
} crowd;

static void enter(crowd *c)
{
    int now = atomic_fetch_add(&c->inside, 1) + 1;
    int max = atomic_load(&c->max_inside);
    while (now > max &&
           !atomic_compare_exchange_weak(&c->max_inside, &max, now))
        ;
    if (!rlab_gil_held(c->g))
        atomic_fetch_add(&c->not_held, 1);
}

static void *crowd_fn(void *arg)
{
    crowd *c = arg;
    if (rlab_barrier_wait(c->start, RLAB_GUARD, NULL))
        atomic_fetch_add(&c->failed, 1);
    for (long r = 0; r < c->rounds; r++) {
        if (rlab_gil_acquire(c->g, RLAB_GUARD)) {
            atomic_fetch_add(&c->failed, 1);
            continue;
        }
        for (long k = 0; k < c->steps; k++) {
            enter(c);
            c->count++;
            spin(100);
            atomic_fetch_sub(&c->inside, 1);
            rlab_gil_check(c->g);
            if (k == c->steps / 2) { /* a blocking call */
                if (rlab_gil_begin_blocking(c->g))
                    atomic_fetch_add(&c->failed, 1);
                sched_yield();
                if (rlab_gil_end_blocking(c->g))
                    atomic_fetch_add(&c->failed, 1);
            }
        }
        if (rlab_gil_release(c->g))
            atomic_fetch_add(&c->failed, 1);
    }
    return NULL;
}

START_TEST(never_two_threads_run_under_the_gil_at_once)
{
    crowd c = {.g = new_gil(1e-5),
               .rounds = rlab_test_scaled(10),
               .steps = 4000,
               .start =
                   rlab_barrier_new(HOLD_THREADS, NULL, NULL, RLAB_FOREVER)};
    ck_assert_ptr_nonnull(c.start);
    rlab_thread *t[HOLD_THREADS];
    for (int i = 0; i < HOLD_THREADS; i++)
        t[i] = rlab_test_spawn(crowd_fn, &c);
    for (int i = 0; i < HOLD_THREADS; i++)
        rlab_test_join(t[i]);
    int max_inside = atomic_load(&c.max_inside);
    long not_held = atomic_load(&c.not_held), failed = atomic_load(&c.failed);
    ck_assert_int_eq(max_inside, 1);
    ck_assert_int_eq(not_held, 0);
    ck_assert_int_eq(failed, 0);
    ck_assert_int_eq(c.count, HOLD_THREADS * c.rounds * c.steps);
    rlab_gil_stats st = stats_of(c.g);
    ck_assert_uint_ge(st.switches, HOLD_THREADS);
    ck_assert_uint_eq(st.blocking, (unsigned long)(HOLD_THREADS * c.rounds));
    ck_assert_int_eq(st.waiters, 0);
    fprintf(stderr,
            "test_gil: 4 threads: %lu acquisitions, %lu switches, %lu drop "
            "requests, %lu check drops, %lu forced\n",
            st.acquisitions, st.switches, st.drop_requests, st.check_drops,
            st.forced_switches);
    rlab_barrier_free(c.start);
    rlab_gil_free(c.g);
}
END_TEST

/* ---------------------------------------------------------- blocking --- */

typedef struct {
    rlab_gil *g;
    rlab_event *ran;
    int rc;
    bool held;
} blocked_job;

static void *runs_while_blocked_fn(void *arg)
{
    blocked_job *j = arg;
    j->rc = rlab_gil_acquire(j->g, RLAB_GUARD);
    j->held = rlab_gil_held(j->g);
    rlab_event_set(j->ran); /* "bytecode" that the blocked thread awaits */
    if (j->rc == 0)
        rlab_gil_release(j->g);
    return NULL;
}

START_TEST(a_blocking_section_lets_another_thread_run)
{
    rlab_gil *g = new_gil(0.001);
    blocked_job j = {.g = g, .ran = rlab_event_new()};
    ck_assert_ptr_nonnull(j.ran);
    ck_assert_rc(rlab_gil_acquire(g, 0), 0);
    rlab_thread *t = rlab_test_spawn(runs_while_blocked_fn, &j);
    ck_assert_rc(rlab_gil_begin_blocking(g), 0);
    ck_assert(!rlab_gil_held(g));
    ck_assert(!rlab_gil_check(g)); /* no effect outside the GIL */
    /* The blocking call: it returns only once the other thread ran under
     * the GIL, so it cannot return if the GIL was not released. */
    ck_assert_rc(rlab_event_wait(j.ran, RLAB_GUARD), 0);
    ck_assert_rc(rlab_gil_end_blocking(g), 0);
    ck_assert(rlab_gil_held(g));
    rlab_test_join(t);
    ck_assert_rc(j.rc, 0);
    ck_assert(j.held);
    ck_assert_uint_eq(stats_of(g).blocking, 1);
    ck_assert_rc(rlab_gil_release(g), 0);
    rlab_event_free(j.ran);
    rlab_gil_free(g);
}
END_TEST

/* ---------------------------------------------------- `n += 1` model --- */

/* Runs of the model before giving up on seeing an outcome.  The first run
 * is the source material's 2 x 100,000; a run too short for the threads to
 * take turns (an optimized build finishes 100,000 increments in well under
 * a millisecond) is followed by one twice as long. */
#define ATTEMPTS 8

static void print_counter(const char *what, const rlab_gil_counter_result *r)
{
    fprintf(stderr,
            "test_gil: %s: n=%ld of %ld, lost %ld, crossed %ld, %lu "
            "switches, %.1f ms\n",
            what, r->final, r->expected, r->lost, r->crossed, r->switches,
            r->seconds * 1e3);
}

/* Runs the model until `enough` holds; every run must show lost > 0
 * exactly when crossed > 0, and `always` must hold for every run. */
static rlab_gil_counter_result
run_counter(rlab_gil *g, rlab_gil_counter_opts o,
            bool (*enough)(const rlab_gil_counter_result *),
            bool (*always)(const rlab_gil_counter_result *), const char *what)
{
    rlab_gil_counter_result r = {0};
    for (int i = 0; i < ATTEMPTS; i++, o.iterations *= 2) {
        ck_assert_rc(rlab_gil_counter_demo(g, &o, &r), 0);
        print_counter(what, &r);
        ck_assert_int_eq(r.expected, o.threads * o.iterations);
        ck_assert_int_eq(r.lost, r.expected - r.final);
        ck_assert_int_ge(r.lost, 0);
        ck_assert_msg((r.lost > 0) == (r.crossed > 0),
                      "lost %ld but crossed %ld", r.lost, r.crossed);
        ck_assert_msg(always(&r), "%s: lost %ld", what, r.lost);
        if (enough(&r))
            return r;
    }
    ck_abort_msg("%s: outcome not seen in %d runs", what, ATTEMPTS);
    return r;
}

static bool any(const rlab_gil_counter_result *r)
{
    (void)r;
    return true;
}

static bool lost_none(const rlab_gil_counter_result *r)
{
    return r->lost == 0 && r->crossed == 0;
}

/* Enough turns that an unguarded increment would have been split. */
static bool switched(const rlab_gil_counter_result *r)
{
    return r->switches >= 3;
}

static bool lost_some(const rlab_gil_counter_result *r)
{
    return r->lost > 0;
}

/* A short interval makes the threads switch often within 100,000
 * increments, as CPython's did within its slower bytecode. */
#define MODEL_INTERVAL 5e-5

START_TEST(counter_with_backedge_checks_loses_no_updates)
{
    rlab_gil *g = new_gil(MODEL_INTERVAL);
    rlab_gil_counter_opts o = {.threads = 2, .iterations = 100000};
    /* The threads did take turns, yet no increment was ever split. */
    rlab_gil_counter_result r =
        run_counter(g, o, switched, lost_none, "3.10+ checks");
    ck_assert_int_eq(r.final, r.expected);
    rlab_gil_free(g);
}
END_TEST

START_TEST(counter_with_a_check_between_load_and_store_loses_updates)
{
    rlab_gil *g = new_gil(MODEL_INTERVAL);
    ck_assert_rc(
        rlab_gil_set_check_placement(g, RLAB_GIL_CHECK_EVERY_INSTRUCTION), 0);
    rlab_gil_counter_opts o = {.threads = 2, .iterations = 100000};
    rlab_gil_counter_result r =
        run_counter(g, o, lost_some, any, "<=3.9 checks");
    ck_assert_int_lt(r.final, r.expected);
    rlab_gil_free(g);
}
END_TEST

START_TEST(counter_calling_a_function_loses_updates_even_with_310_checks)
{
    rlab_gil *g = new_gil(MODEL_INTERVAL);
    rlab_gil_counter_opts o = {
        .threads = 2, .iterations = 100000, .call_in_increment = true};
    rlab_gil_counter_result r =
        run_counter(g, o, lost_some, any, "3.10+ checks, n = n + f()");
    ck_assert_int_lt(r.final, r.expected);
    rlab_gil_free(g);
}
END_TEST

START_TEST(counter_with_one_thread_never_loses)
{
    rlab_gil *g = new_gil(MODEL_INTERVAL);
    ck_assert_rc(
        rlab_gil_set_check_placement(g, RLAB_GIL_CHECK_EVERY_INSTRUCTION), 0);
    rlab_gil_counter_opts o = {.threads = 1, .iterations = 50000};
    rlab_gil_counter_result r;
    ck_assert_rc(rlab_gil_counter_demo(g, &o, &r), 0);
    ck_assert_int_eq(r.final, 50000);
    ck_assert_int_eq(r.lost, 0);
    ck_assert_int_eq(r.crossed, 0);
    ck_assert_uint_eq(r.switches, 0);
    rlab_gil_free(g);
}
END_TEST

START_TEST(counter_demo_validates_and_defaults)
{
    rlab_gil *g = new_gil(MODEL_INTERVAL);
    rlab_gil_counter_result r;
    rlab_gil_counter_opts bad[] = {
        {.threads = 65, .iterations = 1},
        {.threads = -1, .iterations = 1},
        {.threads = 2, .iterations = -1},
        {.threads = 64, .iterations = 0x7fffffffffffffffL / 32},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_rc(rlab_gil_counter_demo(g, &bad[i], &r), EINVAL);
    ck_assert_rc(rlab_gil_counter_demo(NULL, NULL, &r), EINVAL);
    ck_assert_rc(rlab_gil_counter_demo(g, NULL, NULL), EINVAL);
    ck_assert_rc(rlab_gil_acquire(g, 0), 0);
    ck_assert_rc(rlab_gil_counter_demo(g, NULL, &r), EDEADLK);
    ck_assert_rc(rlab_gil_release(g), 0);
    /* NULL options: 2 threads x 100,000, under the 3.10+ placement. */
    ck_assert_rc(rlab_gil_counter_demo(g, NULL, &r), 0);
    ck_assert_int_eq(r.expected, 200000);
    ck_assert_int_eq(r.final, 200000);
    ck_assert(!rlab_gil_held(g));
    rlab_gil_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gil");

    TCase *tc = tcase_create("settings");
    tcase_add_test(tc,
                   new_gil_is_free_with_the_given_interval_and_310_placement);
    tcase_add_test(tc, new_rejects_an_interval_that_is_not_strictly_positive);
    tcase_add_test(tc,
                   set_switch_interval_validates_and_changes_nothing_on_error);
    tcase_add_test(tc,
                   set_check_placement_validates_and_changes_nothing_on_error);
    tcase_add_test(tc, null_handles_are_einval_or_false);
    suite_add_tcase(s, tc);

    tc = tcase_create("ownership");
    tcase_add_test(tc, acquire_makes_the_caller_the_only_holder);
    tcase_add_test(tc, acquire_rejects_bad_timeouts);
    tcase_add_test(tc,
                   timed_acquire_expires_and_its_drop_request_strands_nobody);
    tcase_add_test(tc, a_lone_holder_is_never_asked_to_drop);
    suite_add_tcase(s, tc);

    tc = tcase_create("switching");
    tcase_add_test(tc, a_waiter_gets_the_gil_after_about_one_switch_interval);
    tcase_add_test(tc, a_longer_switch_interval_delays_the_hand_off);
    tcase_add_test(tc, forced_switching_lets_the_waiter_run_before_the_dropper);
    tcase_add_test(tc, never_two_threads_run_under_the_gil_at_once);
    tcase_add_test(tc, a_blocking_section_lets_another_thread_run);
    suite_add_tcase(s, tc);

    tc = tcase_create("counter_model");
    tcase_add_test(tc, counter_with_backedge_checks_loses_no_updates);
    tcase_add_test(tc,
                   counter_with_a_check_between_load_and_store_loses_updates);
    tcase_add_test(
        tc, counter_calling_a_function_loses_updates_even_with_310_checks);
    tcase_add_test(tc, counter_with_one_thread_never_loses);
    tcase_add_test(tc, counter_demo_validates_and_defaults);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
