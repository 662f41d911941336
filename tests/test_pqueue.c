/*
 * test_pqueue.c - multiprocessing.Queue (rlab_pqueue, src/lib/pqueue.c).
 *
 * The behaviours of CPython's _test_multiprocessing.py queue tests
 * (_TestQueue: test_put, test_get with block and timeout, test_fork,
 * test_qsize, test_timeout, the closed-queue errors) checked across a
 * process boundary, plus what a C queue in shared memory adds: items of
 * any size copied through a byte ring that wraps, EMSGSIZE for an item
 * that can never fit, and a queue that stays consistent when a process is
 * killed inside a put or get while it holds the queue's lock.
 *
 * The other side of each test is a plain fork() child that stays
 * single-threaded, does its part and reports through its exit status (it
 * never calls ck_assert and always leaves with _exit).  Parent and child
 * synchronize through process-shared events, waits on the queue and
 * waitpid, never through sleeps; a "blocks until" test first waits until
 * the child sleeps in the kernel (/proc/PID/syscall), so that the wake-up
 * really wakes a sleeper.  Every wait has a guard (RLAB_GUARD).  After each
 * test no child is left, not even a zombie, and the descriptor count is
 * what it was (the fixture makes the arena first: its memfd lives as long
 * as the process).
 *
 * The start-method tests run a registered task under fork, spawn and
 * forkserver (main() registers it and calls rlab_mp_main() first, so this
 * binary is also every spawn child and the forkserver).  The one test with
 * threads runs last, so that every fork happens while the process is
 * single-threaded; it lets ThreadSanitizer judge the queue's
 * happens-before edges inside one process.
 */
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/lib/mp_internal.h"
#include "racelab/multiprocessing.h"
#include "rlab_test.h"

#define EARLY 2e-3


/* ------------------------------------------------------------ hygiene --- */

static int fds_at_start;

static void setup(void)
{
    /* The arena (and its memfd) is made by the first shared object and
     * kept for the life of the process: make it before counting. */
    rlab_pqueue_free(rlab_pqueue_new(0, 64));
    fds_at_start = rlab_test_fd_count();
}

static void teardown(void)
{
    rlab_test_kids_end(); /* a failed test may leave children behind */
    rlab_test_assert_no_children();
    ck_assert_int_eq(rlab_test_fd_count(), fds_at_start);
}

static void kid_expect_exit(pid_t pid, int code)
{
    rlab_test_expect_exit(pid, code);
    rlab_test_kid_forget(pid);
}

/* SIGKILLs pid, reaps it and checks that the signal is what ended it. */
static void kid_kill(pid_t pid)
{
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int st = rlab_test_reap(pid);
    rlab_test_kid_forget(pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "the child was not killed (status %#x)", st);
}

static rlab_pqueue *new_queue(long maxsize, size_t capacity)
{
    rlab_pqueue *q = rlab_pqueue_new(maxsize, capacity);
    ck_assert_msg(q != NULL, "rlab_pqueue_new: %s", rlab_strerror(errno));
    return q;
}

static rlab_pevent *new_event(void)
{
    rlab_pevent *e = rlab_pevent_new();
    ck_assert_ptr_nonnull(e);
    return e;
}

/* --------------------------------------------------------------- items --- */

static void put_str(rlab_pqueue *q, const char *s)
{
    ck_assert_rc(rlab_pqueue_put(q, s, strlen(s), RLAB_GUARD), 0);
}

static void get_expect(rlab_pqueue *q, const char *want)
{
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_pqueue_get(q, RLAB_GUARD, &data, &len), 0);
    ck_assert_ptr_nonnull(data);
    ck_assert_msg(len == strlen(want) && memcmp(data, want, len) == 0,
                  "got \"%.*s\", want \"%s\"", (int)len, (char *)data, want);
    free(data);
}

static bool get_long(rlab_pqueue *q, double timeout, long *x, int *rc)
{
    void *data;
    size_t len;
    *rc = rlab_pqueue_get(q, timeout, &data, &len);
    if (*rc)
        return false;
    bool ok = len == sizeof *x;
    if (ok)
        memcpy(x, data, sizeof *x);
    free(data);
    return ok;
}

/* A patterned item: its size and every byte follow from its seed, so a
 * torn or misplaced copy shows. */
static size_t pattern_len(unsigned seed, size_t max)
{
    return (size_t)(seed * 37u) % (max + 1);
}

static void pattern_fill(unsigned char *p, size_t len, unsigned seed)
{
    for (size_t j = 0; j < len; j++)
        p[j] = (unsigned char)(seed * 131u + j * 7u + (j >> 8));
}

/* An item of the form seed (4 bytes), then the pattern: true if intact. */
static bool seeded_ok(const unsigned char *p, size_t len, unsigned *seed)
{
    if (len < sizeof *seed)
        return false;
    memcpy(seed, p, sizeof *seed);
    for (size_t j = sizeof *seed; j < len; j++)
        if (p[j] != (unsigned char)(*seed * 131u + j * 7u + (j >> 8)))
            return false;
    return true;
}

static size_t seeded_make(unsigned char *buf, size_t max, unsigned seed)
{
    size_t len = sizeof seed + pattern_len(seed, max - sizeof seed);
    pattern_fill(buf, len, seed);
    memcpy(buf, &seed, sizeof seed);
    return len;
}

/* ----------------------------------------------------------------- FIFO --- */

#define FIFO_ITEMS 10000

/* CPython's test_fork / test_put: a producer process puts numbered items
 * and the parent gets them in order.  maxsize 16 makes the producer block
 * on the count. */
START_TEST(a_producer_process_10000_items_arrive_in_order)
{
    rlab_pqueue *q = new_queue(16, 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        for (long i = 0; i < FIFO_ITEMS; i++)
            CHILD_CHECK(rlab_pqueue_put(q, &i, sizeof i, RLAB_GUARD) == 0, 1);
        _exit(CHILD_OK);
    }
    for (long i = 0; i < FIFO_ITEMS; i++) {
        long x = -1;
        int rc;
        ck_assert_msg(get_long(q, RLAB_GUARD, &x, &rc) && x == i,
                      "item %ld: got %ld (rc %s)", i, x, rlab_strerror(rc));
    }
    kid_expect_exit(pid, CHILD_OK);
    long x;
    int rc;
    ck_assert(!get_long(q, 0, &x, &rc));
    ck_assert_rc(rc, EAGAIN);
    ck_assert(rlab_pqueue_empty(q));
    rlab_pqueue_free(q);
}
END_TEST

/* The other way round: the parent puts, a consumer process checks the
 * order (its exit code says where it broke).  A 256-byte ring holds 16 of
 * these items, so the parent blocks on bytes and the ring wraps many
 * times. */
START_TEST(a_consumer_process_gets_10000_items_in_order)
{
    rlab_pqueue *q = new_queue(0, 256);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        for (long i = 0; i < FIFO_ITEMS; i++) {
            long x;
            int rc;
            CHILD_CHECK(get_long(q, RLAB_GUARD, &x, &rc), 1);
            CHILD_CHECK(x == i, 2);
        }
        _exit(CHILD_OK);
    }
    for (long i = 0; i < FIFO_ITEMS; i++)
        ck_assert_rc(rlab_pqueue_put(q, &i, sizeof i, RLAB_GUARD), 0);
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_int_eq(rlab_pqueue_qsize(q), 0);
    rlab_pqueue_free(q);
}
END_TEST

#define NPROD 3
#define NCONS 3
#define PER_PRODUCER 1000000L

/* Producers put producer * PER_PRODUCER + i; consumers, until the queue
 * is closed and drained, check that each producer's items reach them in
 * increasing order (FIFO), and add up how many they got and their sum. */
static int consumer_child(rlab_pqueue *q, rlab_value *count, rlab_value *sum)
{
    long last[NPROD] = {-1, -1, -1};
    long n = 0, s = 0;
    for (;;) {
        long x;
        int rc;
        if (!get_long(q, RLAB_GUARD, &x, &rc)) {
            CHILD_CHECK(rc == RLAB_ESHUTDOWN, 1);
            break;
        }
        long prod = x / PER_PRODUCER;
        CHILD_CHECK(prod >= 0 && prod < NPROD, 2);
        CHILD_CHECK(x > last[prod], 3);
        last[prod] = x;
        n++;
        s += x;
    }
    CHILD_CHECK(rlab_value_add_long(count, n, NULL) == 0, 4);
    CHILD_CHECK(rlab_value_add_long(sum, s, NULL) == 0, 5);
    return CHILD_OK;
}

START_TEST(producers_and_consumers_in_many_processes_get_every_item_once)
{
    const long per = rlab_test_scaled(3000);
    rlab_pqueue *q = new_queue(32, 512);
    rlab_value *count = rlab_value_new(sizeof(long));
    rlab_value *sum = rlab_value_new(sizeof(long));
    ck_assert(count && sum);
    pid_t cons[NCONS], prod[NPROD];
    for (int c = 0; c < NCONS; c++)
        if ((cons[c] = rlab_test_kid_fork()) == 0)
            _exit(consumer_child(q, count, sum));
    for (int p = 0; p < NPROD; p++)
        if ((prod[p] = rlab_test_kid_fork()) == 0) {
            for (long i = 0; i < per; i++) {
                long x = p * PER_PRODUCER + i;
                CHILD_CHECK(rlab_pqueue_put(q, &x, sizeof x, RLAB_GUARD) == 0,
                            1);
            }
            _exit(CHILD_OK);
        }
    for (int p = 0; p < NPROD; p++)
        kid_expect_exit(prod[p], CHILD_OK);
    /* Every item is in or through the queue; the close lets the consumers
     * drain what is left and then stop. */
    ck_assert_rc(rlab_pqueue_close(q), 0);
    for (int c = 0; c < NCONS; c++)
        kid_expect_exit(cons[c], CHILD_OK);
    long n = 0, s = 0, want = 0;
    for (int p = 0; p < NPROD; p++)
        want += p * PER_PRODUCER * per + per * (per - 1) / 2;
    ck_assert_rc(rlab_value_get_long(count, &n), 0);
    ck_assert_rc(rlab_value_get_long(sum, &s), 0);
    ck_assert_int_eq(n, NPROD * per);
    ck_assert_int_eq(s, want);
    ck_assert_int_eq(rlab_pqueue_qsize(q), 0);
    rlab_value_free(count);
    rlab_value_free(sum);
    rlab_pqueue_free(q);
}
END_TEST

/* ------------------------------------------------------------ blocking --- */

/* Fills q so that the put of `item` does not fit: by count (_i 0, maxsize
 * 2) or by bytes (_i 1: a 40-byte item takes 48 of 64 bytes, leaving 16,
 * and "c..." needs 24). */
static rlab_pqueue *full_queue(int how, const char *first[2])
{
    rlab_pqueue *q;
    if (how == 0) {
        q = new_queue(2, 0);
        first[0] = "a";
        first[1] = "b";
        put_str(q, first[0]);
        put_str(q, first[1]);
    } else {
        q = new_queue(0, 64);
        first[0] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 40 */
        first[1] = NULL;
        put_str(q, first[0]);
    }
    return q;
}

static const char ITEM_C[] = "ccccccccccccc"; /* 13 bytes: 24 in the ring */

START_TEST(put_blocks_while_full_until_a_get_in_another_process)
{
    const char *first[2];
    rlab_pqueue *q = full_queue(_i, first);
    long before = rlab_pqueue_qsize(q);
    ck_assert(rlab_pqueue_full(q) == (_i == 0)); /* 16 bytes: "" fits */
    ck_assert_rc(rlab_pqueue_put(q, ITEM_C, strlen(ITEM_C), 0), EAGAIN);
    ck_assert_int_eq(rlab_pqueue_qsize(q), before);
    rlab_pevent *done = new_event();
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        int rc = rlab_pqueue_put(q, ITEM_C, strlen(ITEM_C), RLAB_GUARD);
        rlab_pevent_set(done);
        _exit(rc == 0 ? CHILD_OK : 1);
    }
    rlab_test_await_parked(pid);
    ck_assert_msg(!rlab_pevent_is_set(done), "put did not block");
    ck_assert_int_eq(rlab_pqueue_qsize(q), before);
    double t0 = rlab_test_now();
    get_expect(q, first[0]);
    ck_assert_rc(rlab_pevent_wait(done, RLAB_GUARD), 0);
    rlab_test_assert_not_at_guard(rlab_test_now() - t0);
    kid_expect_exit(pid, CHILD_OK);
    if (first[1])
        get_expect(q, first[1]);
    get_expect(q, ITEM_C);
    ck_assert(rlab_pqueue_empty(q));
    rlab_pevent_free(done);
    rlab_pqueue_free(q);
}
END_TEST

START_TEST(get_blocks_while_empty_until_a_put_in_another_process)
{
    rlab_pqueue *q = new_queue(0, 0);
    rlab_pevent *done = new_event();
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        void *data;
        size_t len;
        int rc = rlab_pqueue_get(q, RLAB_GUARD, &data, &len);
        rlab_pevent_set(done);
        CHILD_CHECK(rc == 0, 1);
        CHILD_CHECK(len == 5 && memcmp(data, "hello", 5) == 0, 2);
        free(data);
        _exit(CHILD_OK);
    }
    rlab_test_await_parked(pid);
    ck_assert_msg(!rlab_pevent_is_set(done), "get did not block");
    double t0 = rlab_test_now();
    put_str(q, "hello");
    ck_assert_rc(rlab_pevent_wait(done, RLAB_GUARD), 0);
    rlab_test_assert_not_at_guard(rlab_test_now() - t0);
    kid_expect_exit(pid, CHILD_OK);
    ck_assert(rlab_pqueue_empty(q));
    rlab_pevent_free(done);
    rlab_pqueue_free(q);
}
END_TEST

/* ------------------------------------------------------------ timeouts --- */

START_TEST(get_on_an_empty_queue_times_out_after_about_the_timeout)
{
    rlab_pqueue *q = new_queue(0, 0);
    void *data = (void *)&data;
    size_t len = 77;
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_pqueue_get(q, 0.2, &data, &len), ETIMEDOUT);
    double took = rlab_test_now() - t0;
    ck_assert_msg(took >= 0.2 - EARLY, "returned early: %.3f s", took);
    ck_assert_msg(took < 0.2 + 1.5, "returned late: %.3f s", took);
    ck_assert_ptr_eq(data, (void *)&data); /* left alone */
    ck_assert_uint_eq(len, 77);
    rlab_pqueue_free(q);
}
END_TEST

START_TEST(put_on_a_full_queue_times_out_after_about_the_timeout)
{
    const char *first[2];
    rlab_pqueue *q = full_queue(_i, first);
    long before = rlab_pqueue_qsize(q);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_pqueue_put(q, ITEM_C, strlen(ITEM_C), 0.2), ETIMEDOUT);
    double took = rlab_test_now() - t0;
    ck_assert_msg(took >= 0.2 - EARLY, "returned early: %.3f s", took);
    ck_assert_msg(took < 0.2 + 1.5, "returned late: %.3f s", took);
    ck_assert_int_eq(rlab_pqueue_qsize(q), before);
    get_expect(q, first[0]);
    if (first[1])
        get_expect(q, first[1]);
    ck_assert(rlab_pqueue_empty(q));
    rlab_pqueue_free(q);
}
END_TEST

/* A timed get that another process satisfies in time returns the item
 * (the deadline bounds the wait, it does not cut a wake short). */
START_TEST(a_timed_get_returns_an_item_put_by_another_process_in_time)
{
    rlab_pqueue *q = new_queue(0, 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        void *data;
        size_t len;
        CHILD_CHECK(rlab_pqueue_get(q, RLAB_GUARD, &data, &len) == 0, 1);
        CHILD_CHECK(len == 2 && memcmp(data, "ok", 2) == 0, 2);
        free(data);
        _exit(CHILD_OK);
    }
    rlab_test_await_parked(pid);
    double t0 = rlab_test_now();
    put_str(q, "ok");
    kid_expect_exit(pid, CHILD_OK);
    rlab_test_assert_not_at_guard(rlab_test_now() - t0);
    rlab_pqueue_free(q);
}
END_TEST

START_TEST(timeout_zero_is_eagain_and_changes_nothing)
{
    rlab_pqueue *q = new_queue(1, 0);
    void *data = (void *)&data;
    size_t len = 77;
    ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), EAGAIN);
    ck_assert_ptr_eq(data, (void *)&data);
    ck_assert_uint_eq(len, 77);
    ck_assert_rc(rlab_pqueue_put(q, "x", 1, 0), 0);
    ck_assert_rc(rlab_pqueue_put(q, "y", 1, 0), EAGAIN);
    ck_assert_int_eq(rlab_pqueue_qsize(q), 1);
    ck_assert(rlab_pqueue_full(q));
    ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), 0);
    ck_assert(len == 1 && memcmp(data, "x", 1) == 0);
    free(data);
    ck_assert(rlab_pqueue_empty(q));
    ck_assert(!rlab_pqueue_full(q));
    rlab_pqueue_free(q);
}
END_TEST

/* -------------------------------------------------------- bad arguments --- */

START_TEST(bad_arguments_are_einval_and_change_nothing)
{
    errno = 0;
    ck_assert_ptr_null(rlab_pqueue_new(-1, 0));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_pqueue_new(0, SIZE_MAX));
    ck_assert_int_eq(errno, ENOMEM);

    rlab_pqueue *q = new_queue(4, 0);
    put_str(q, "keep");
    void *data = (void *)&data;
    size_t len = 77;
    const double bad[] = {-0.5, -2.0, NAN, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_rc(rlab_pqueue_put(q, "x", 1, bad[i]), EINVAL);
        ck_assert_rc(rlab_pqueue_get(q, bad[i], &data, &len), EINVAL);
    }
    ck_assert_rc(rlab_pqueue_put(NULL, "x", 1, 0), EINVAL);
    ck_assert_rc(rlab_pqueue_put(q, NULL, 1, 0), EINVAL);
    ck_assert_rc(rlab_pqueue_get(NULL, 0, &data, &len), EINVAL);
    ck_assert_rc(rlab_pqueue_get(q, 0, NULL, &len), EINVAL);
    ck_assert_rc(rlab_pqueue_get(q, 0, &data, NULL), EINVAL);
    ck_assert_ptr_eq(data, (void *)&data);
    ck_assert_uint_eq(len, 77);
    ck_assert_rc(rlab_pqueue_close(NULL), EINVAL);
    ck_assert_int_eq(rlab_pqueue_qsize(NULL), 0);
    ck_assert(rlab_pqueue_empty(NULL));
    ck_assert(!rlab_pqueue_full(NULL));
    ck_assert(!rlab_pqueue_is_closed(NULL));
    rlab_pqueue_free(NULL);

    /* Nothing changed; an empty item with NULL data is fine, and forever
     * is a valid timeout. */
    ck_assert_int_eq(rlab_pqueue_qsize(q), 1);
    ck_assert_rc(rlab_pqueue_put(q, NULL, 0, RLAB_FOREVER), 0);
    get_expect(q, "keep");
    ck_assert_rc(rlab_pqueue_get(q, RLAB_FOREVER, &data, &len), 0);
    ck_assert_ptr_nonnull(data); /* never NULL, even for an empty item */
    ck_assert_uint_eq(len, 0);
    free(data);
    ck_assert(rlab_pqueue_empty(q));
    rlab_pqueue_free(q);
}
END_TEST

START_TEST(an_item_that_can_never_fit_is_emsgsize_and_changes_nothing)
{
    /* 60 rounds up to 64 bytes: an item of 56 bytes fits an empty ring,
     * 57 never does. */
    rlab_pqueue *q = new_queue(0, 60);
    unsigned char big[64];
    memset(big, 'z', sizeof big);
    ck_assert_rc(rlab_pqueue_put(q, big, 57, RLAB_FOREVER), EMSGSIZE);
    ck_assert_rc(rlab_pqueue_put(q, big, SIZE_MAX, 0), EMSGSIZE);
    ck_assert(rlab_pqueue_empty(q));
    ck_assert_rc(rlab_pqueue_put(q, big, 56, 0), 0);
    ck_assert(rlab_pqueue_full(q));
    /* With the ring full, still EMSGSIZE at once, not a wait. */
    ck_assert_rc(rlab_pqueue_put(q, big, 57, RLAB_FOREVER), EMSGSIZE);
    ck_assert_int_eq(rlab_pqueue_qsize(q), 1);
    void *data;
    size_t len;
    ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), 0);
    ck_assert_uint_eq(len, 56);
    ck_assert(memcmp(data, big, 56) == 0);
    free(data);
    ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), EAGAIN);
    rlab_pqueue_free(q);
}
END_TEST

/* ------------------------------------------------------- wrap-around --- */

/* In one process: 13-byte items take 24 bytes of a 64-byte ring, so every
 * third one straddles the end; sizes, contents and the count stay right
 * through many laps. */
START_TEST(items_that_straddle_the_end_of_the_ring_come_back_whole)
{
    rlab_pqueue *q = new_queue(0, 64);
    ck_assert_rc(rlab_pqueue_put(q, "x", 1, 0), 0); /* start 16 bytes in */
    get_expect(q, "x");
    unsigned char buf[13], want[13];
    for (unsigned lap = 0; lap < 100; lap++) {
        for (unsigned k = 0; k < 2; k++) {
            pattern_fill(buf, sizeof buf, lap * 2 + k);
            ck_assert_rc(rlab_pqueue_put(q, buf, sizeof buf, 0), 0);
        }
        /* 48 of 64 bytes in use: a third needs 24. */
        ck_assert_rc(rlab_pqueue_put(q, buf, sizeof buf, 0), EAGAIN);
        ck_assert_int_eq(rlab_pqueue_qsize(q), 2);
        for (unsigned k = 0; k < 2; k++) {
            pattern_fill(want, sizeof want, lap * 2 + k);
            void *data;
            size_t len;
            ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), 0);
            ck_assert_uint_eq(len, sizeof want);
            ck_assert_msg(memcmp(data, want, len) == 0, "lap %u item %u torn",
                          lap, k);
            free(data);
        }
        ck_assert(rlab_pqueue_empty(q));
    }
    rlab_pqueue_free(q);
}
END_TEST

#define WRAP_ITEMS 3000
#define WRAP_MAX 300

/* Across processes: items of 0..300 bytes through a 1000-byte ring. */
START_TEST(variable_size_items_wrap_around_across_processes_intact)
{
    rlab_pqueue *q = new_queue(0, 1000);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        unsigned char buf[WRAP_MAX];
        for (unsigned i = 0; i < WRAP_ITEMS; i++) {
            size_t len = pattern_len(i, WRAP_MAX);
            pattern_fill(buf, len, i);
            CHILD_CHECK(rlab_pqueue_put(q, buf, len, RLAB_GUARD) == 0, 1);
        }
        _exit(CHILD_OK);
    }
    unsigned char want[WRAP_MAX];
    for (unsigned i = 0; i < WRAP_ITEMS; i++) {
        void *data;
        size_t len;
        ck_assert_rc(rlab_pqueue_get(q, RLAB_GUARD, &data, &len), 0);
        size_t wlen = pattern_len(i, WRAP_MAX);
        pattern_fill(want, wlen, i);
        ck_assert_msg(len == wlen && memcmp(data, want, len) == 0,
                      "item %u: %zu bytes, want %zu, or torn", i, len, wlen);
        free(data);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert(rlab_pqueue_empty(q));
    rlab_pqueue_free(q);
}
END_TEST

/* ---------------------------------------------------------------- close --- */

/* _i 0: a getter blocked on an empty queue; _i 1: a putter blocked on a
 * full one.  Both wake with RLAB_ESHUTDOWN. */
START_TEST(close_wakes_a_process_blocked_in_get_or_put)
{
    rlab_pqueue *q = new_queue(1, 0);
    if (_i == 1)
        put_str(q, "full");
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        int rc;
        if (_i == 0) {
            void *data;
            size_t len;
            rc = rlab_pqueue_get(q, RLAB_GUARD, &data, &len);
        } else {
            rc = rlab_pqueue_put(q, "x", 1, RLAB_GUARD);
        }
        _exit(rc == RLAB_ESHUTDOWN ? CHILD_OK : rc == ETIMEDOUT ? CHILD_GUARD
                                                                 : 1);
    }
    rlab_test_await_parked(pid);
    double t0 = rlab_test_now();
    ck_assert(!rlab_pqueue_is_closed(q));
    ck_assert_rc(rlab_pqueue_close(q), 0);
    kid_expect_exit(pid, CHILD_OK);
    rlab_test_assert_not_at_guard(rlab_test_now() - t0);
    ck_assert(rlab_pqueue_is_closed(q));
    rlab_pqueue_free(q);
}
END_TEST

START_TEST(a_closed_queue_refuses_puts_and_drains_before_eshutdown)
{
    rlab_pqueue *q = new_queue(0, 0);
    put_str(q, "one");
    put_str(q, "two");
    ck_assert_rc(rlab_pqueue_close(q), 0);
    ck_assert_rc(rlab_pqueue_close(q), 0); /* again: no change */
    ck_assert_rc(rlab_pqueue_put(q, "three", 5, 0), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_pqueue_put(q, "three", 5, RLAB_GUARD), RLAB_ESHUTDOWN);
    ck_assert_int_eq(rlab_pqueue_qsize(q), 2);
    /* Another process sees the close and the items left. */
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        void *data;
        size_t len;
        CHILD_CHECK(rlab_pqueue_is_closed(q), 1);
        CHILD_CHECK(rlab_pqueue_put(q, "x", 1, 0) == RLAB_ESHUTDOWN, 2);
        CHILD_CHECK(rlab_pqueue_get(q, 0, &data, &len) == 0, 3);
        CHILD_CHECK(len == 3 && memcmp(data, "one", 3) == 0, 4);
        free(data);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    get_expect(q, "two");
    void *data = (void *)&data;
    size_t len = 77;
    ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_pqueue_get(q, RLAB_GUARD, &data, &len), RLAB_ESHUTDOWN);
    ck_assert_ptr_eq(data, (void *)&data);
    rlab_pqueue_free(q);
}
END_TEST

/* ----------------------------------------------------------- robustness --- */

/* A child gets as far as a put (or get) goes before the item is made
 * visible (or removed), with the queue's lock held, and is killed there. */
static void child_killed_inside(rlab_pqueue *q, bool in_put)
{
    rlab_pevent *inside = new_event();
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        int rc;
        if (in_put) {
            rc = rlab__pqueue_put_unpublished(q, "half-written", 12,
                                              RLAB_GUARD);
        } else {
            void *data;
            size_t len;
            rc = rlab__pqueue_get_unpublished(q, RLAB_GUARD, &data, &len);
        }
        CHILD_CHECK(rc == 0, 1);
        rlab_pevent_set(inside);
        rlab_test_child_linger(); /* killed in here, holding the lock */
        _exit(CHILD_GUARD);
    }
    ck_assert_rc(rlab_pevent_wait(inside, RLAB_GUARD), 0);
    kid_kill(pid);
    rlab_pevent_free(inside);
}

START_TEST(a_child_killed_mid_put_holding_the_lock_leaves_no_half_item)
{
    rlab_pqueue *q = new_queue(0, 64);
    put_str(q, "one");
    put_str(q, "two");
    child_killed_inside(q, true);
    /* The lock is recovered without a sign, and only whole items are
     * there: the half-written one never became visible. */
    ck_assert_int_eq(rlab_pqueue_qsize(q), 2);
    get_expect(q, "one");
    get_expect(q, "two");
    void *data;
    size_t len;
    ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), EAGAIN);
    /* And the queue works as before, over the bytes the child wrote. */
    put_str(q, "three");
    put_str(q, "four");
    get_expect(q, "three");
    get_expect(q, "four");
    ck_assert(rlab_pqueue_empty(q));
    rlab_pqueue_free(q);
}
END_TEST

START_TEST(a_child_killed_mid_get_holding_the_lock_leaves_the_item_queued)
{
    rlab_pqueue *q = new_queue(0, 0);
    put_str(q, "one");
    put_str(q, "two");
    child_killed_inside(q, false);
    ck_assert_int_eq(rlab_pqueue_qsize(q), 2);
    get_expect(q, "one");
    get_expect(q, "two");
    put_str(q, "three");
    get_expect(q, "three");
    rlab_pqueue_free(q);
}
END_TEST

/* A getter blocked behind a holder that is killed takes the lock over,
 * waits on, and gets the next item put. */
START_TEST(a_getter_blocked_behind_a_killed_holder_still_gets_the_next_item)
{
    rlab_pqueue *q = new_queue(0, 0);
    rlab_pevent *inside = new_event();
    pid_t holder = rlab_test_kid_fork();
    if (holder == 0) {
        CHILD_CHECK(rlab__pqueue_put_unpublished(q, "lost", 4, RLAB_GUARD) ==
                        0,
                    1);
        rlab_pevent_set(inside);
        rlab_test_child_linger();
        _exit(CHILD_GUARD);
    }
    ck_assert_rc(rlab_pevent_wait(inside, RLAB_GUARD), 0);
    pid_t getter = rlab_test_kid_fork();
    if (getter == 0) {
        void *data;
        size_t len;
        CHILD_CHECK(rlab_pqueue_get(q, RLAB_GUARD, &data, &len) == 0, 1);
        CHILD_CHECK(len == 4 && memcmp(data, "next", 4) == 0, 2);
        free(data);
        _exit(CHILD_OK);
    }
    rlab_test_await_parked(getter); /* on the queue's lock */
    kid_kill(holder);
    double t0 = rlab_test_now();
    put_str(q, "next");
    kid_expect_exit(getter, CHILD_OK);
    rlab_test_assert_not_at_guard(rlab_test_now() - t0);
    ck_assert(rlab_pqueue_empty(q));
    rlab_pevent_free(inside);
    rlab_pqueue_free(q);
}
END_TEST

#define FAULT_ROUNDS 20
#define FAULT_PREFILL 3
#define FAULT_MAX 1000

/* A child puts and gets patterned items as fast as it can (checking each
 * one) and is killed at whatever point it has reached, most often inside
 * the lock; every round the queue must hold FAULT_PREFILL whole items, or
 * one more, and keep working. */
START_TEST(children_killed_at_random_points_leave_only_whole_items)
{
    rlab_pqueue *q = new_queue(0, 8192); /* room for 5 of the largest */
    unsigned char buf[FAULT_MAX];
    unsigned seed = 0;
    for (int i = 0; i < FAULT_PREFILL; i++) {
        size_t len = seeded_make(buf, FAULT_MAX, seed++);
        ck_assert_rc(rlab_pqueue_put(q, buf, len, 0), 0);
    }
    for (int round = 0; round < FAULT_ROUNDS; round++) {
        rlab_pevent *going = new_event();
        pid_t pid = rlab_test_kid_fork();
        if (pid == 0) {
            unsigned char cbuf[FAULT_MAX];
            for (unsigned i = 0;; i++) {
                size_t len = seeded_make(cbuf, FAULT_MAX, 1000 + i);
                CHILD_CHECK(rlab_pqueue_put(q, cbuf, len, RLAB_GUARD) == 0, 1);
                void *data;
                unsigned got;
                CHILD_CHECK(rlab_pqueue_get(q, RLAB_GUARD, &data, &len) == 0,
                            2);
                CHILD_CHECK(seeded_ok(data, len, &got), 3);
                free(data);
                if (i == 200)
                    rlab_pevent_set(going);
            }
        }
        ck_assert_rc(rlab_pevent_wait(going, RLAB_GUARD), 0);
        kid_kill(pid);
        rlab_pevent_free(going);
        long n = rlab_pqueue_qsize(q);
        ck_assert_msg(n == FAULT_PREFILL || n == FAULT_PREFILL + 1,
                      "round %d: %ld items", round, n);
        /* Drain, check every item, and put FAULT_PREFILL fresh ones. */
        for (long i = 0; i < n; i++) {
            void *data;
            size_t len;
            unsigned got;
            ck_assert_rc(rlab_pqueue_get(q, 0, &data, &len), 0);
            ck_assert_msg(seeded_ok(data, len, &got),
                          "round %d: item %ld is torn", round, i);
            free(data);
        }
        ck_assert(rlab_pqueue_empty(q));
        for (int i = 0; i < FAULT_PREFILL; i++) {
            size_t len = seeded_make(buf, FAULT_MAX, seed++);
            ck_assert_rc(rlab_pqueue_put(q, buf, len, 0), 0);
        }
    }
    rlab_pqueue_free(q);
}
END_TEST

/* ------------------------------------------------------- start methods --- */

static const rlab_start_method methods[] = {RLAB_START_FORK, RLAB_START_SPAWN,
                                            RLAB_START_FORKSERVER};
#define NMETHODS 3
#define RELAY_ITEMS 2000

typedef struct {
    rlab_pqueue *in, *out;
    long n;
} relay_arg;

/* The task: gets n items from `in` and puts each, doubled, on `out`. */
static int relay(void *arg, void **result)
{
    (void)result;
    rlab_bytes *b = arg;
    relay_arg r;
    if (b->len != sizeof r)
        return 20;
    memcpy(&r, b->data, sizeof r);
    for (long i = 0; i < r.n; i++) {
        void *data;
        size_t len;
        if (rlab_pqueue_get(r.in, RLAB_GUARD, &data, &len) != 0)
            return 21;
        long x;
        if (len != sizeof x) {
            free(data);
            return 22;
        }
        memcpy(&x, data, sizeof x);
        free(data);
        x *= 2;
        if (rlab_pqueue_put(r.out, &x, sizeof x, RLAB_GUARD) != 0)
            return 23;
    }
    return 0;
}

static int exit_zero(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static int fd_base;

static void methods_setup(void)
{
    /* The arena's memfd, the forkserver's socket and the server itself live
     * until exit: make them before the baseline. */
    rlab_pqueue_free(rlab_pqueue_new(0, 64));
    rlab_process_opts o = {.method = RLAB_START_FORKSERVER};
    rlab_process *p = rlab_process_new(exit_zero, NULL, 0, &o);
    ck_assert_ptr_nonnull(p);
    ck_assert_rc(rlab_process_start(p), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    rlab_process_free(p);
    fd_base = rlab_test_fd_count();
}

static void methods_teardown(void)
{
    rlab_test_assert_no_zombies();
    ck_assert_int_eq(rlab_test_fd_count(), fd_base);
}

/* A forkserver (a child until exit) may be running by now. */
static void threads_teardown(void)
{
    rlab_test_assert_no_zombies();
    ck_assert_int_eq(rlab_test_fd_count(), fds_at_start);
}

/* Items go to a child started by each method and come back in order: the
 * queues made in the parent work in a spawn child (which maps the arena
 * afresh) as in a fork child.  Small queues make both sides block. */
START_TEST(queues_work_in_children_of_every_start_method)
{
    rlab_start_method m = methods[_i];
    relay_arg r = {new_queue(8, 0), new_queue(0, 128), RELAY_ITEMS};
    rlab_process_opts o = {.method = m};
    rlab_process *p = rlab_process_new(relay, &r, sizeof r, &o);
    ck_assert_ptr_nonnull(p);
    ck_assert_rc(rlab_process_start(p), 0);
    long next_in = 0, next_out = 0;
    /* Interleave: keep `in` as full as it goes, drain `out` as it fills. */
    while (next_out < RELAY_ITEMS) {
        while (next_in < RELAY_ITEMS &&
               rlab_pqueue_put(r.in, &next_in, sizeof next_in, 0) == 0)
            next_in++;
        long x = -1;
        int rc;
        ck_assert_msg(get_long(r.out, RLAB_GUARD, &x, &rc),
                      "%s: get gave %s", rlab_start_method_name(m),
                      rlab_strerror(rc));
        ck_assert_int_eq(x, 2 * next_out);
        next_out++;
    }
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    int code = -1;
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    ck_assert_msg(code == 0, "%s: relay exited %d", rlab_start_method_name(m),
                  code);
    rlab_process_free(p);
    ck_assert(rlab_pqueue_empty(r.in) && rlab_pqueue_empty(r.out));
    rlab_pqueue_free(r.in);
    rlab_pqueue_free(r.out);
}
END_TEST

/* -------------------------------------------------------------- threads --- */

#define T_PROD 2
#define T_CONS 2

typedef struct {
    rlab_pqueue *q;
    long id, n;
    long got, sum;
    int fails;
} tworker;

static void *t_produce(void *arg)
{
    tworker *w = arg;
    for (long i = 0; i < w->n; i++) {
        long x = w->id * PER_PRODUCER + i;
        if (rlab_pqueue_put(w->q, &x, sizeof x, RLAB_GUARD) != 0)
            w->fails++;
    }
    return NULL;
}

static void *t_consume(void *arg)
{
    tworker *w = arg;
    for (;;) {
        long x;
        int rc;
        if (!get_long(w->q, RLAB_GUARD, &x, &rc)) {
            if (rc != RLAB_ESHUTDOWN)
                w->fails++;
            return NULL;
        }
        w->got++;
        w->sum += x;
    }
}

START_TEST(threads_of_one_process_share_a_queue_exactly)
{
    const long per = rlab_test_scaled(5000);
    rlab_pqueue *q = new_queue(16, 256);
    tworker pw[T_PROD], cw[T_CONS];
    rlab_thread *pt[T_PROD], *ct[T_CONS];
    for (int i = 0; i < T_CONS; i++) {
        cw[i] = (tworker){.q = q};
        ct[i] = rlab_test_spawn(t_consume, &cw[i]);
    }
    for (int i = 0; i < T_PROD; i++) {
        pw[i] = (tworker){.q = q, .id = i, .n = per};
        pt[i] = rlab_test_spawn(t_produce, &pw[i]);
    }
    for (int i = 0; i < T_PROD; i++) {
        rlab_test_join(pt[i]);
        ck_assert_int_eq(pw[i].fails, 0);
    }
    ck_assert_rc(rlab_pqueue_close(q), 0);
    long got = 0, sum = 0, want = 0;
    for (int i = 0; i < T_CONS; i++) {
        rlab_test_join(ct[i]);
        ck_assert_int_eq(cw[i].fails, 0);
        got += cw[i].got;
        sum += cw[i].sum;
    }
    for (int i = 0; i < T_PROD; i++)
        want += i * PER_PRODUCER * per + per * (per - 1) / 2;
    ck_assert_int_eq(got, T_PROD * per);
    ck_assert_int_eq(sum, want);
    rlab_pqueue_free(q);
}
END_TEST

/* ----------------------------------------------------------------- main --- */

int main(int argc, char **argv)
{
    if (rlab_task_register("pqueue.relay", relay) != 0 ||
        rlab_task_register("pqueue.exit_zero", exit_zero) != 0)
        return 2;
    rlab_mp_main(argc, argv);

    Suite *s = suite_create("pqueue");
    TCase *tc = rlab_test_tcase("fifo", setup, teardown, 120);
    tcase_add_test(tc, a_producer_process_10000_items_arrive_in_order);
    tcase_add_test(tc, a_consumer_process_gets_10000_items_in_order);
    tcase_add_test(
        tc, producers_and_consumers_in_many_processes_get_every_item_once);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("blocking", setup, teardown, 120);
    tcase_add_loop_test(tc,
                        put_blocks_while_full_until_a_get_in_another_process,
                        0, 2);
    tcase_add_test(tc, get_blocks_while_empty_until_a_put_in_another_process);
    tcase_add_test(tc, get_on_an_empty_queue_times_out_after_about_the_timeout);
    tcase_add_loop_test(tc,
                        put_on_a_full_queue_times_out_after_about_the_timeout,
                        0, 2);
    tcase_add_test(tc,
                   a_timed_get_returns_an_item_put_by_another_process_in_time);
    tcase_add_test(tc, timeout_zero_is_eagain_and_changes_nothing);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("items", setup, teardown, 120);
    tcase_add_test(tc, bad_arguments_are_einval_and_change_nothing);
    tcase_add_test(tc,
                   an_item_that_can_never_fit_is_emsgsize_and_changes_nothing);
    tcase_add_test(tc,
                   items_that_straddle_the_end_of_the_ring_come_back_whole);
    tcase_add_test(tc,
                   variable_size_items_wrap_around_across_processes_intact);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("close", setup, teardown, 120);
    tcase_add_loop_test(tc, close_wakes_a_process_blocked_in_get_or_put, 0, 2);
    tcase_add_test(tc,
                   a_closed_queue_refuses_puts_and_drains_before_eshutdown);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("robust", setup, teardown, 120);
    tcase_add_test(tc,
                   a_child_killed_mid_put_holding_the_lock_leaves_no_half_item);
    tcase_add_test(
        tc, a_child_killed_mid_get_holding_the_lock_leaves_the_item_queued);
    tcase_add_test(
        tc, a_getter_blocked_behind_a_killed_holder_still_gets_the_next_item);
    tcase_add_test(tc, children_killed_at_random_points_leave_only_whole_items);
    suite_add_tcase(s, tc);

    /* After the fork-only cases: the forkserver is a child that lives until
     * exit, which those cases' no-children check would count. */
    tc = rlab_test_tcase("start_methods", methods_setup, methods_teardown, 120);
    tcase_add_loop_test(tc, queues_work_in_children_of_every_start_method, 0,
                        NMETHODS);
    suite_add_tcase(s, tc);

    /* Last, so that every fork of the suite happens before any thread was
     * ever started. */
    tc = rlab_test_tcase("threads", setup, threads_teardown, 120);
    tcase_add_test(tc, threads_of_one_process_share_a_queue_exactly);
    suite_add_tcase(s, tc);
    return rlab_test_main(s);
}
