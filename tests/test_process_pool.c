/*
 * test_process_pool.c - ProcessPoolExecutor and multiprocessing.Pool.
 *
 * The behaviours of CPython's test_concurrent_futures (process side:
 * results and exceptions through futures, map order and chunks, shutdown
 * with and without cancel_futures, initializer, max_tasks_per_child, a
 * killed worker breaking the pool) and _test_multiprocessing.py's
 * _TestPool (apply, apply_async, map and map_async with chunksize, imap
 * laziness, imap_unordered, close/terminate/join), for each start method
 * where the method matters.
 *
 * Fault loops: a random worker killed mid-task 100 times breaks the pool
 * every time, every pending future fails with RLAB_EBROKEN within 2 s.
 *
 * Hygiene after every test (the fixture): no zombie child, the open fd
 * count back where it started (the forkserver and the shared arena are
 * made before the count).  Workers are single-threaded, so every test runs
 * under ThreadSanitizer too: spawn and forkserver workers are fresh
 * programs, and a fork worker never starts a thread.
 *
 * This binary is also every spawn child and the forkserver: main()
 * registers the tasks and calls rlab_mp_main() first.
 */
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "racelab/multiprocessing.h"
#include "rlab_test.h"

static const rlab_start_method methods[] = {RLAB_START_FORK, RLAB_START_SPAWN,
                                            RLAB_START_FORKSERVER};
#define NMETHODS 3

/* -------------------------------------------------------------- tasks --- */

static long arg_long(void *arg)
{
    rlab_bytes *b = arg;
    long v = 0;
    if (b->len >= sizeof v)
        memcpy(&v, b->data, sizeof v);
    return v;
}

static int give_long(void **result, long v)
{
    *result = rlab_bytes_new(&v, sizeof v);
    return *result ? 0 : ENOMEM;
}

static int square(void *arg, void **result)
{
    long v = arg_long(arg);
    return give_long(result, v * v);
}

/* Fails with the code its argument names when it is negative. */
static int fail_negative(void *arg, void **result)
{
    long v = arg_long(arg);
    return v < 0 ? (int)-v : give_long(result, v);
}

static int whoami(void *arg, void **result)
{
    (void)arg;
    return give_long(result, (long)getpid());
}

static int echo(void *arg, void **result)
{
    rlab_bytes *b = arg;
    *result = rlab_bytes_new(b->data, b->len);
    return *result ? 0 : ENOMEM;
}

static long init_seen; /* set by the initializer, in the worker */

static int init_ok(void *arg, void **result)
{
    (void)result;
    init_seen = arg_long(arg);
    return 0;
}

static int init_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 7;
}

static int read_init(void *arg, void **result)
{
    (void)arg;
    return give_long(result, init_seen);
}

/* The shared state of blocking tasks: made before the pool, so every
 * worker (any start method) has it. */
typedef struct {
    rlab_pevent *go;      /* released by the test */
    rlab_pevent *die;     /* tells the dying tasks to die */
    rlab_psemaphore *in;  /* one post per task that started */
    rlab_value *pids;     /* the pid of each task that started, by slot */
} gate;

static gate *g; /* the parent's; tasks get its fields through their arg */

typedef struct {
    gate gt;
    long slot;
    int wait; /* 0: return at once */
} gate_arg;

/* Records its pid; if it is to wait, says it started and waits for go (at
 * most the guard).  Returns its slot. */
static int wait_gate(void *arg, void **result)
{
    gate_arg a;
    memcpy(&a, ((rlab_bytes *)arg)->data, sizeof a);
    long *pids = rlab_value_ptr(a.gt.pids);
    pids[a.slot] = (long)getpid();
    if (a.wait) {
        rlab_psemaphore_release(a.gt.in);
        if (rlab_pevent_wait(a.gt.go, RLAB_GUARD) != 0)
            return ETIMEDOUT;
    }
    return give_long(result, a.slot);
}

/* A dying task: says it started, then waits for the word to die. */
static void await_die(void *arg)
{
    gate_arg a;
    if (((rlab_bytes *)arg)->len != sizeof a)
        return; /* no gate: die at once */
    memcpy(&a, ((rlab_bytes *)arg)->data, sizeof a);
    rlab_psemaphore_release(a.gt.in);
    rlab_pevent_wait(a.gt.die, RLAB_GUARD);
}

static int die_by_sigkill(void *arg, void **result)
{
    (void)result;
    await_die(arg);
    raise(SIGKILL);
    return 0;
}

static int die_by_segv(void *arg, void **result)
{
    (void)result;
    await_die(arg);
    raise(SIGSEGV);
    return 0;
}

static int die_by_exit(void *arg, void **result)
{
    (void)result;
    await_die(arg);
    _exit(3);
}

/* Writes half a message on the worker's connection, then dies: a crash
 * while sending a result. */
static int die_mid_answer(void *arg, void **result)
{
    (void)result;
    await_die(arg);
    int fd = rlab_conn_fileno(rlab_process_conn(0));
    uint64_t len = 1000;
    unsigned char half[8 + 100] = {0};
    memcpy(half, &len, sizeof len);
    if (write(fd, half, sizeof half) < 0)
        _exit(4);
    _exit(0);
}

/* Shuts the reading side of the worker's connection and answers: the
 * parent's next send fails, as if the worker died receiving it. */
static int stop_reading(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return shutdown(rlab_conn_fileno(rlab_process_conn(0)), SHUT_RD) ? errno
                                                                       : 0;
}

/* Sends a whole message that is not an answer: a confused worker. */
static int garbage_answer(void *arg, void **result)
{
    (void)result;
    await_die(arg);
    rlab_conn_send(rlab_process_conn(0), "garbage", 7);
    return 0;
}

/* ------------------------------------------------------------ helpers --- */

static int fd_base;

static void setup(void)
{
    /* Started once per process and kept: the forkserver and the arena. */
    rlab_executor *ex = rlab_process_pool_new(
        1, &(rlab_process_pool_opts){.method = RLAB_START_FORKSERVER});
    ck_assert_ptr_nonnull(ex);
    rlab_executor_free(ex);
    g = calloc(1, sizeof *g);
    g->go = rlab_pevent_new();
    g->die = rlab_pevent_new();
    g->in = rlab_psemaphore_new(0, 0);
    g->pids = rlab_value_new(64 * sizeof(long));
    ck_assert(g->go && g->die && g->in && g->pids);
    fd_base = rlab_test_fd_count();
}

static void teardown(void)
{
    rlab_test_assert_no_zombies();
    ck_assert_int_eq(rlab_test_fd_count(), fd_base);
    rlab_pevent_free(g->go);
    rlab_pevent_free(g->die);
    rlab_psemaphore_free(g->in);
    rlab_value_free(g->pids);
    free(g);
}

static rlab_executor *pool(int n, rlab_start_method m, int max_tasks)
{
    rlab_process_pool_opts o = {.method = m, .max_tasks_per_child = max_tasks};
    rlab_executor *ex = rlab_process_pool_new(n, &o);
    ck_assert_msg(ex != NULL, "rlab_process_pool_new: %s", rlab_strerror(errno));
    return ex;
}

static rlab_bytes *lbytes(long v)
{
    rlab_bytes *b = rlab_bytes_new(&v, sizeof v);
    ck_assert_ptr_nonnull(b);
    return b;
}

static long blong(const void *res)
{
    const rlab_bytes *b = res;
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->len, sizeof(long));
    long v;
    memcpy(&v, b->data, sizeof v);
    return v;
}

static rlab_future *submit_long(rlab_executor *ex, rlab_task_fn fn, long v)
{
    rlab_bytes *b = lbytes(v);
    rlab_future *f = NULL;
    ck_assert_rc(rlab_executor_submit(ex, fn, b, &f), 0);
    rlab_bytes_free(b); /* copied at submit */
    return f;
}

static rlab_future *submit_gate(rlab_executor *ex, long slot)
{
    gate_arg a = {*g, slot, 1};
    rlab_bytes *b = rlab_bytes_new(&a, sizeof a);
    rlab_future *f = NULL;
    ck_assert_rc(rlab_executor_submit(ex, wait_gate, b, &f), 0);
    rlab_bytes_free(b);
    return f;
}

static void wait_started(int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_rc(rlab_psemaphore_acquire(g->in, RLAB_GUARD), 0);
}

/* -------------------------------------------------------- the executor --- */

START_TEST(submit_returns_the_tasks_result_bytes)
{
    rlab_executor *ex = pool(2, methods[_i], 0);
    ck_assert_int_eq(rlab_executor_max_workers(ex), 2);
    rlab_future *f[10];
    for (long i = 0; i < 10; i++)
        f[i] = submit_long(ex, square, i);
    for (long i = 0; i < 10; i++) {
        void *res = NULL;
        ck_assert_rc(rlab_future_result(f[i], RLAB_GUARD, &res), 0);
        ck_assert_int_eq(blong(res), i * i);
        /* result() again gives the same bytes: the future owns them */
        void *again = NULL;
        ck_assert_rc(rlab_future_result(f[i], 0, &again), 0);
        ck_assert_ptr_eq(again, res);
        rlab_future_free(f[i]);
    }
    rlab_executor_free(ex);
}
END_TEST

START_TEST(a_tasks_failure_code_is_the_futures_code)
{
    rlab_executor *ex = pool(1, RLAB_START_FORK, 0);
    rlab_future *bad = submit_long(ex, fail_negative, -42);
    rlab_future *good = submit_long(ex, fail_negative, 5);
    void *res = &res;
    ck_assert_rc(rlab_future_result(bad, RLAB_GUARD, &res), 42);
    ck_assert_rc(rlab_future_result(good, RLAB_GUARD, &res), 0);
    ck_assert_int_eq(blong(res), 5);
    rlab_future_free(bad);
    rlab_future_free(good);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(bytes_of_every_size_cross_both_ways_intact)
{
    rlab_executor *ex = pool(2, methods[_i], 0);
    size_t sizes[] = {0, 1, 4096, 3u << 20};
    for (size_t k = 0; k < 4; k++) {
        unsigned char *buf = malloc(sizes[k] + 1);
        for (size_t i = 0; i < sizes[k]; i++)
            buf[i] = (unsigned char)(i * 31 + k);
        rlab_bytes *b = rlab_bytes_new(buf, sizes[k]);
        rlab_future *f;
        ck_assert_rc(rlab_executor_submit(ex, echo, b, &f), 0);
        void *res;
        ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
        rlab_bytes *r = res;
        ck_assert_uint_eq(r->len, sizes[k]);
        ck_assert(sizes[k] == 0 || memcmp(r->data, buf, sizes[k]) == 0);
        rlab_future_free(f);
        rlab_bytes_free(b);
        free(buf);
    }
    /* NULL is an empty argument */
    rlab_future *f;
    ck_assert_rc(rlab_executor_submit(ex, echo, NULL, &f), 0);
    void *res;
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
    ck_assert_uint_eq(((rlab_bytes *)res)->len, 0);
    rlab_future_free(f);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(map_keeps_input_order_with_and_without_chunks)
{
    rlab_executor *ex = pool(2, RLAB_START_FORK, 0);
    enum { N = 203 };
    rlab_bytes *args[N];
    void *res[N];
    int codes[N];
    for (long i = 0; i < N; i++)
        args[i] = lbytes(i % 17 == 3 ? -9 : i);
    size_t chunks[] = {1, 7, 64, 500};
    for (size_t c = 0; c < 4; c++) {
        ck_assert_rc(rlab_executor_map_chunked(ex, fail_negative, (void **)args,
                                               N, chunks[c], res, codes,
                                               RLAB_GUARD),
                     0);
        for (long i = 0; i < N; i++) {
            if (i % 17 == 3) {
                ck_assert_int_eq(codes[i], 9);
                ck_assert_ptr_null(res[i]);
            } else {
                ck_assert_int_eq(codes[i], 0);
                ck_assert_int_eq(blong(res[i]), i);
                rlab_bytes_free(res[i]); /* map's results are the caller's */
            }
        }
    }
    for (int i = 0; i < N; i++)
        rlab_bytes_free(args[i]);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(bad_arguments_are_einval_and_start_nothing)
{
    errno = 0;
    ck_assert_ptr_null(rlab_process_pool_new(-1, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(rlab_process_pool_new(1025, NULL));
    ck_assert_ptr_null(rlab_process_pool_new(
        1, &(rlab_process_pool_opts){.max_tasks_per_child = -1}));
    ck_assert_ptr_null(rlab_process_pool_new(
        1, &(rlab_process_pool_opts){.method = (rlab_start_method)9}));
    ck_assert_ptr_null(rlab_process_pool_new(
        1, &(rlab_process_pool_opts){.initializer = (rlab_task_fn)abort}));
    ck_assert_ptr_null(rlab_process_pool_new(
        1, &(rlab_process_pool_opts){.initializer = init_ok, .initarg_len = 3}));
    rlab_test_assert_no_zombies();

    rlab_executor *ex = pool(1, RLAB_START_FORK, 0);
    rlab_future *f = NULL;
    /* fn must be registered: a process cannot find it otherwise */
    ck_assert_rc(rlab_executor_submit(ex, (rlab_task_fn)abort, NULL, &f),
                 EINVAL);
    ck_assert_ptr_null(f);
    ck_assert_rc(rlab_executor_submit(ex, NULL, NULL, &f), EINVAL);
    ck_assert_rc(rlab_executor_map_chunked(ex, square, NULL, 3, 2, NULL, NULL,
                                           1.0),
                 EINVAL);
    /* the pool still works */
    f = submit_long(ex, square, 3);
    void *res;
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
    ck_assert_int_eq(blong(res), 9);
    rlab_future_free(f);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(the_default_worker_count_is_the_cpu_count)
{
    rlab_executor *ex = rlab_process_pool_new(
        0, &(rlab_process_pool_opts){.method = RLAB_START_FORK});
    ck_assert_ptr_nonnull(ex);
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    ck_assert_int_eq(rlab_executor_max_workers(ex), CPU_COUNT(&set));
    rlab_executor_free(ex);
}
END_TEST

START_TEST(shutdown_waits_for_pending_tasks_and_refuses_new_ones)
{
    rlab_executor *ex = pool(2, methods[_i], 0);
    rlab_future *f[20];
    for (long i = 0; i < 20; i++)
        f[i] = submit_long(ex, square, i);
    ck_assert_rc(rlab_executor_shutdown(ex, true, false), 0);
    for (long i = 0; i < 20; i++) {
        ck_assert(rlab_future_done(f[i]));
        void *res;
        ck_assert_rc(rlab_future_result(f[i], 0, &res), 0);
        ck_assert_int_eq(blong(res), i * i);
        rlab_future_free(f[i]);
    }
    rlab_future *late = NULL;
    rlab_bytes *b = lbytes(1);
    ck_assert_rc(rlab_executor_submit(ex, square, b, &late), RLAB_ESHUTDOWN);
    ck_assert_ptr_null(late);
    rlab_bytes_free(b);
    /* the workers are gone already: nothing but the forkserver remains */
    rlab_test_assert_no_zombies();
    rlab_executor_free(ex);
}
END_TEST

START_TEST(shutdown_with_cancel_futures_cancels_what_has_not_started)
{
    rlab_executor *ex = pool(1, RLAB_START_FORK, 0);
    rlab_future *running = submit_gate(ex, 0);
    wait_started(1);
    rlab_future *queued[5];
    for (long i = 0; i < 5; i++)
        queued[i] = submit_long(ex, square, i);
    ck_assert_rc(rlab_executor_shutdown(ex, false, true), 0);
    for (int i = 0; i < 5; i++) {
        ck_assert(rlab_future_cancelled(queued[i]));
        ck_assert_rc(rlab_future_result(queued[i], 0, NULL), RLAB_ECANCELLED);
        rlab_future_free(queued[i]);
    }
    ck_assert(rlab_future_running(running));
    rlab_pevent_set(g->go);
    void *res;
    ck_assert_rc(rlab_future_result(running, RLAB_GUARD, &res), 0);
    ck_assert_int_eq(blong(res), 0);
    rlab_future_free(running);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(the_initializer_runs_in_every_worker_before_tasks)
{
    long token = 4242;
    rlab_process_pool_opts o = {.method = methods[_i],
                                .initializer = init_ok,
                                .initarg = &token,
                                .initarg_len = sizeof token};
    rlab_executor *ex = rlab_process_pool_new(2, &o);
    ck_assert_ptr_nonnull(ex);
    rlab_future *f[6];
    for (int i = 0; i < 6; i++)
        f[i] = submit_long(ex, read_init, 0);
    for (int i = 0; i < 6; i++) {
        void *res;
        ck_assert_rc(rlab_future_result(f[i], RLAB_GUARD, &res), 0);
        ck_assert_int_eq(blong(res), token);
        rlab_future_free(f[i]);
    }
    rlab_executor_free(ex);
}
END_TEST

START_TEST(a_failing_initializer_breaks_the_pool)
{
    rlab_process_pool_opts o = {.method = RLAB_START_FORK,
                                .initializer = init_fails};
    rlab_executor *ex = rlab_process_pool_new(2, &o);
    ck_assert_ptr_nonnull(ex);
    rlab_future *f = submit_long(ex, square, 2);
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, NULL), RLAB_EBROKEN);
    rlab_future_free(f);
    rlab_future *late = NULL;
    rlab_bytes *b = lbytes(1);
    ck_assert_rc(rlab_executor_submit(ex, square, b, &late), RLAB_EBROKEN);
    rlab_bytes_free(b);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(max_tasks_per_child_replaces_workers)
{
    rlab_executor *ex = pool(1, methods[_i], 2);
    enum { N = 7 };
    long pids[N];
    for (int i = 0; i < N; i++) {
        /* one at a time, so the count is exact */
        rlab_future *f = submit_long(ex, whoami, 0);
        void *res;
        ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
        pids[i] = blong(res);
        rlab_future_free(f);
    }
    for (int i = 0; i < N; i++) {
        /* tasks 2k and 2k+1 share a process, the next pair has a new one */
        if (i % 2 == 1)
            ck_assert_int_eq(pids[i], pids[i - 1]);
        if (i >= 2 && i % 2 == 0)
            ck_assert_int_ne(pids[i], pids[i - 1]);
    }
    rlab_executor_free(ex);
}
END_TEST

/* ------------------------------------------------------ broken pools --- */

/* A worker lost while n gated tasks are in the pool: every future fails
 * with RLAB_EBROKEN, as does the next submit. */
static void expect_broken(rlab_executor *ex, rlab_future **fs, int n)
{
    double t0 = rlab_test_now();
    for (int i = 0; i < n; i++) {
        ck_assert_rc(rlab_future_result(fs[i], RLAB_GUARD, NULL), RLAB_EBROKEN);
        rlab_future_free(fs[i]);
    }
    ck_assert_double_lt(rlab_test_now() - t0, 2.0);
    rlab_future *late = NULL;
    ck_assert_rc(rlab_executor_submit(ex, square, NULL, &late), RLAB_EBROKEN);
    rlab_executor_free(ex);
    rlab_test_assert_no_zombies();
}

static rlab_task_fn const deaths[] = {die_by_sigkill, die_by_segv, die_by_exit,
                                      die_mid_answer, garbage_answer};

START_TEST(a_dying_worker_breaks_the_pool_and_fails_every_pending_future)
{
    rlab_executor *ex = pool(2, methods[_i % NMETHODS], 0);
    rlab_future *fs[8];
    fs[0] = submit_gate(ex, 0); /* runs in one worker until the end */
    gate_arg a = {*g, 1, 0};
    rlab_bytes *b = rlab_bytes_new(&a, sizeof a);
    ck_assert_rc(rlab_executor_submit(ex, deaths[_i / NMETHODS], b, &fs[1]), 0);
    rlab_bytes_free(b);
    wait_started(2); /* both workers busy */
    for (int i = 2; i < 8; i++)
        fs[i] = submit_long(ex, square, i); /* queued behind both */
    rlab_pevent_set(g->die);
    expect_broken(ex, fs, 8);
}
END_TEST

START_TEST(a_connection_lost_while_sending_a_task_breaks_the_pool)
{
    rlab_executor *ex = pool(1, methods[_i], 0);
    rlab_future *f;
    ck_assert_rc(rlab_executor_submit(ex, stop_reading, NULL, &f), 0);
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, NULL), 0);
    rlab_future_free(f);
    /* the next batch cannot be sent: a 4 MiB one, so the send is long */
    size_t big = 4u << 20;
    void *buf = calloc(1, big);
    rlab_bytes *b = rlab_bytes_new(buf, big);
    free(buf);
    rlab_future *fs[1];
    ck_assert_rc(rlab_executor_submit(ex, echo, b, &fs[0]), 0);
    rlab_bytes_free(b);
    expect_broken(ex, fs, 1);
}
END_TEST

START_TEST(an_idle_worker_killed_from_outside_breaks_the_pool)
{
    rlab_executor *ex = pool(2, RLAB_START_FORK, 0);
    rlab_future *f = submit_long(ex, whoami, 0);
    void *res;
    ck_assert_rc(rlab_future_result(f, RLAB_GUARD, &res), 0);
    pid_t pid = (pid_t)blong(res);
    rlab_future_free(f);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    /* noticed while idle: submits fail within a bounded time */
    double t0 = rlab_test_now();
    int rc = 0;
    while (rc != RLAB_EBROKEN && rlab_test_now() - t0 < RLAB_GUARD) {
        rlab_future *probe = NULL;
        rc = rlab_executor_submit(ex, square, NULL, &probe);
        if (rc == 0) {
            int code = rlab_future_result(probe, RLAB_GUARD, NULL);
            ck_assert_msg(code == 0 || code == RLAB_EBROKEN, "code %d", code);
            rlab_future_free(probe);
        }
    }
    ck_assert_rc(rc, RLAB_EBROKEN);
    ck_assert_double_lt(rlab_test_now() - t0, 2.0);
    rlab_executor_free(ex);
}
END_TEST

START_TEST(fault_loop_a_random_worker_killed_mid_task_100_times)
{
    unsigned seed = (unsigned)getpid();
    long rounds = rlab_test_scaled(100);
    double worst = 0;
    for (long r = 0; r < rounds; r++) {
        rlab_executor *ex = pool(2, r % 10 == 9 ? RLAB_START_FORKSERVER
                                                : RLAB_START_FORK, 0);
        rlab_future *fs[5];
        fs[0] = submit_gate(ex, 0);
        fs[1] = submit_gate(ex, 1);
        wait_started(2);
        for (int i = 2; i < 5; i++)
            fs[i] = submit_long(ex, square, i);
        long *pids = rlab_value_ptr(g->pids);
        pid_t victim = (pid_t)pids[rand_r(&seed) % 2];
        double t0 = rlab_test_now();
        ck_assert_int_eq(kill(victim, SIGKILL), 0);
        for (int i = 0; i < 5; i++) {
            ck_assert_rc(rlab_future_result(fs[i], RLAB_GUARD, NULL),
                         RLAB_EBROKEN);
            rlab_future_free(fs[i]);
        }
        double took = rlab_test_now() - t0;
        worst = took > worst ? took : worst;
        ck_assert_msg(took < 2.0, "round %ld: broken after %.3f s", r, took);
        rlab_executor_free(ex);
    }
    rlab_test_assert_no_zombies();
    fprintf(stderr, "fault loop: %ld rounds, slowest break %.1f ms\n", rounds,
            worst * 1e3);
}
END_TEST

/* --------------------------------------------------------------- Pool --- */

static rlab_pool *mpool(int n, rlab_start_method m)
{
    rlab_pool *p =
        rlab_pool_new(n, &(rlab_process_pool_opts){.method = m});
    ck_assert_msg(p != NULL, "rlab_pool_new: %s", rlab_strerror(errno));
    return p;
}

START_TEST(pool_apply_and_apply_async_return_results)
{
    rlab_pool *p = mpool(2, methods[_i]);
    long v = 12;
    rlab_bytes *res = NULL;
    ck_assert_rc(rlab_pool_apply(p, square, &v, sizeof v, &res), 0);
    ck_assert_int_eq(blong(res), 144);
    rlab_bytes_free(res);
    v = -5;
    ck_assert_rc(rlab_pool_apply(p, fail_negative, &v, sizeof v, &res), 5);
    ck_assert_ptr_null(res);

    rlab_async_result *r[10];
    for (long i = 0; i < 10; i++)
        ck_assert_rc(rlab_pool_apply_async(p, square, &i, sizeof i, &r[i]), 0);
    for (long i = 0; i < 10; i++) {
        const rlab_bytes *out;
        ck_assert_rc(rlab_async_result_get(r[i], RLAB_GUARD, &out), 0);
        ck_assert_int_eq(blong(out), i * i);
        ck_assert(rlab_async_result_ready(r[i]));
        bool ok = false;
        ck_assert_rc(rlab_async_result_successful(r[i], &ok), 0);
        ck_assert(ok);
        rlab_async_result_free(r[i]);
    }
    rlab_pool_close(p);
    ck_assert_rc(rlab_pool_join(p, RLAB_GUARD), 0);
    rlab_pool_free(p);
}
END_TEST

START_TEST(pool_async_result_wait_ready_and_successful_follow_the_task)
{
    rlab_pool *p = mpool(1, RLAB_START_FORK);
    gate_arg a = {*g, 0, 1};
    rlab_async_result *r;
    ck_assert_rc(rlab_pool_apply_async(p, wait_gate, &a, sizeof a, &r), 0);
    wait_started(1);
    ck_assert(!rlab_async_result_ready(r));
    bool ok;
    ck_assert_rc(rlab_async_result_successful(r, &ok), EAGAIN);
    ck_assert_rc(rlab_async_result_wait(r, 0.05), ETIMEDOUT);
    const rlab_bytes *out = NULL;
    ck_assert_rc(rlab_async_result_get(r, 0, &out), ETIMEDOUT);
    ck_assert_rc(rlab_async_result_get_map(r, 0, NULL, NULL), EINVAL);
    rlab_pevent_set(g->go);
    ck_assert_rc(rlab_async_result_wait(r, RLAB_GUARD), 0);
    ck_assert(rlab_async_result_ready(r));
    rlab_async_result_free(r);

    long v = -3;
    ck_assert_rc(rlab_pool_apply_async(p, fail_negative, &v, sizeof v, &r), 0);
    ck_assert_rc(rlab_async_result_get(r, RLAB_GUARD, &out), 3);
    ck_assert_rc(rlab_async_result_successful(r, &ok), 0);
    ck_assert(!ok);
    rlab_async_result_free(r);
    rlab_pool_free(p);
}
END_TEST

START_TEST(pool_map_keeps_order_for_every_chunksize)
{
    rlab_pool *p = mpool(2, methods[_i]);
    enum { N = 150 };
    rlab_bytes *args[N], *res[N];
    int codes[N];
    for (long i = 0; i < N; i++)
        args[i] = lbytes(i == 77 ? -8 : i);
    size_t chunks[] = {0, 1, 10, 1000};
    for (size_t c = 0; c < 4; c++) {
        ck_assert_rc(rlab_pool_map(p, fail_negative, args, N, chunks[c], res,
                                   codes),
                     8); /* the first failure, as Python raises it */
        for (long i = 0; i < N; i++) {
            ck_assert_int_eq(codes[i], i == 77 ? 8 : 0);
            if (i != 77)
                ck_assert_int_eq(blong(res[i]), i);
            rlab_bytes_free(res[i]);
        }
        rlab_async_result *r;
        ck_assert_rc(rlab_pool_map_async(p, square, args, 50, chunks[c], &r), 0);
        const rlab_bytes *out[50];
        ck_assert_rc(rlab_async_result_get_map(r, RLAB_GUARD, out, codes), 0);
        for (long i = 0; i < 50; i++)
            ck_assert_int_eq(blong(out[i]), i * i);
        bool ok;
        ck_assert_rc(rlab_async_result_successful(r, &ok), 0);
        ck_assert(ok);
        ck_assert_rc(rlab_async_result_get(r, 0, NULL), EINVAL);
        rlab_async_result_free(r);
    }
    ck_assert_rc(rlab_pool_map(p, square, args, 0, 0, res, codes), 0);
    for (int i = 0; i < N; i++)
        rlab_bytes_free(args[i]);
    rlab_pool_free(p);
}
END_TEST

START_TEST(pool_imap_yields_in_order_lazily)
{
    /* Item 2 waits for the gate.  Items 0 and 1 come while it runs (the
     * map is not done: imap is lazy), nothing comes past it until it is
     * released (in order), then the rest, in input order. */
    rlab_pool *p = mpool(2, RLAB_START_FORK);
    size_t chunks[] = {1, 2};
    for (size_t c = 0; c < 2; c++) {
        enum { N = 7 };
        rlab_bytes *args[N];
        for (long i = 0; i < N; i++)
            args[i] = rlab_bytes_new(&(gate_arg){*g, i, i == 2}, sizeof(gate_arg));
        rlab_imap *it;
        ck_assert_rc(rlab_pool_imap(p, wait_gate, args, N, chunks[c], true, &it),
                     0);
        size_t idx;
        int code;
        rlab_bytes *res;
        wait_started(1);
        size_t before = 2; /* items 0 and 1: chunks before item 2 */
        for (size_t i = 0; i < before; i++) {
            ck_assert_rc(rlab_imap_next(it, RLAB_GUARD, &idx, &code, &res), 0);
            ck_assert_uint_eq(idx, i);
            ck_assert_int_eq(blong(res), (long)i);
            rlab_bytes_free(res);
        }
        ck_assert_rc(rlab_imap_next(it, 0.05, &idx, &code, &res), ETIMEDOUT);
        rlab_pevent_set(g->go);
        for (size_t i = before; i < N; i++) {
            ck_assert_rc(rlab_imap_next(it, RLAB_GUARD, &idx, &code, &res), 0);
            ck_assert_uint_eq(idx, i);
            ck_assert_int_eq(code, 0);
            ck_assert_int_eq(blong(res), (long)i);
            rlab_bytes_free(res);
        }
        ck_assert_rc(rlab_imap_next(it, 0, &idx, &code, &res), RLAB_EEOF);
        rlab_imap_free(it);
        rlab_pevent_clear(g->go);
        for (int i = 0; i < N; i++)
            rlab_bytes_free(args[i]);
    }
    /* Freed before the end: the rest still runs, nothing leaks. */
    rlab_bytes *one = lbytes(4);
    rlab_bytes *many[3] = {one, one, one};
    rlab_imap *it;
    ck_assert_rc(rlab_pool_imap(p, square, many, 3, 1, true, &it), 0);
    rlab_imap_free(it);
    rlab_bytes_free(one);
    rlab_pool_free(p);
}
END_TEST

START_TEST(pool_imap_unordered_yields_each_item_once_as_it_finishes)
{
    rlab_pool *p = mpool(2, methods[_i]);
    /* Item 0 blocks until released: the others come first. */
    enum { N = 9 };
    gate_arg a = {*g, 0, 1};
    rlab_bytes *args[N];
    args[0] = rlab_bytes_new(&a, sizeof a);
    for (long i = 1; i < N; i++)
        args[i] = rlab_bytes_new(&(gate_arg){*g, i, 0}, sizeof a);
    rlab_imap *it;
    ck_assert_rc(rlab_pool_imap(p, wait_gate, args, 1, 1, false, &it), 0);
    wait_started(1);
    rlab_imap *rest;
    ck_assert_rc(rlab_pool_imap(p, echo, args + 1, N - 1, 2, false, &rest), 0);
    bool seen[N] = {false};
    size_t idx;
    int code;
    rlab_bytes *res;
    for (int i = 1; i < N; i++) {
        ck_assert_rc(rlab_imap_next(rest, RLAB_GUARD, &idx, &code, &res), 0);
        ck_assert_int_eq(code, 0);
        ck_assert_uint_lt(idx, N - 1);
        ck_assert(!seen[idx]);
        seen[idx] = true;
        ck_assert_mem_eq(res->data, args[idx + 1]->data, sizeof a);
        rlab_bytes_free(res);
    }
    ck_assert_rc(rlab_imap_next(rest, RLAB_GUARD, &idx, &code, &res), RLAB_EEOF);
    /* the blocked one is still not there */
    ck_assert_rc(rlab_imap_next(it, 0, &idx, &code, &res), ETIMEDOUT);
    rlab_pevent_set(g->go);
    ck_assert_rc(rlab_imap_next(it, RLAB_GUARD, &idx, &code, &res), 0);
    rlab_bytes_free(res);
    rlab_imap_free(it);
    rlab_imap_free(rest);
    for (int i = 0; i < N; i++)
        rlab_bytes_free(args[i]);
    rlab_pool_free(p);
}
END_TEST

START_TEST(pool_close_join_and_terminate)
{
    rlab_pool *p = mpool(2, RLAB_START_FORK);
    ck_assert_rc(rlab_pool_join(p, 0), EPERM); /* still running */
    long v = 3;
    rlab_async_result *r;
    ck_assert_rc(rlab_pool_apply_async(p, square, &v, sizeof v, &r), 0);
    ck_assert_rc(rlab_pool_close(p), 0);
    rlab_async_result *late;
    ck_assert_rc(rlab_pool_apply_async(p, square, &v, sizeof v, &late),
                 RLAB_ESHUTDOWN);
    ck_assert_rc(rlab_pool_join(p, RLAB_GUARD), 0);
    const rlab_bytes *out;
    ck_assert_rc(rlab_async_result_get(r, 0, &out), 0); /* ran before join */
    ck_assert_int_eq(blong(out), 9);
    rlab_async_result_free(r);
    rlab_test_assert_no_zombies();
    rlab_pool_free(p);

    /* terminate: a running task and those queued end cancelled */
    p = mpool(1, RLAB_START_FORK);
    gate_arg a = {*g, 0, 1};
    ck_assert_rc(rlab_pool_apply_async(p, wait_gate, &a, sizeof a, &r), 0);
    wait_started(1);
    ck_assert_rc(rlab_pool_apply_async(p, square, &v, sizeof v, &late), 0);
    ck_assert_rc(rlab_pool_terminate(p), 0);
    ck_assert_rc(rlab_pool_join(p, RLAB_GUARD), 0);
    ck_assert_rc(rlab_async_result_get(r, RLAB_GUARD, &out), RLAB_ECANCELLED);
    ck_assert_rc(rlab_async_result_get(late, RLAB_GUARD, &out), RLAB_ECANCELLED);
    rlab_async_result_free(r);
    rlab_async_result_free(late);
    rlab_pool_free(p);

    /* free without close: terminated, every child reaped */
    p = mpool(2, RLAB_START_FORK);
    rlab_pool_free(p);
}
END_TEST

START_TEST(pool_a_killed_worker_breaks_it)
{
    rlab_pool *p = mpool(2, methods[_i]);
    rlab_async_result *r;
    ck_assert_rc(rlab_pool_apply_async(p, die_by_sigkill, NULL, 0, &r), 0);
    ck_assert_rc(rlab_async_result_get(r, RLAB_GUARD, NULL), RLAB_EBROKEN);
    rlab_async_result_free(r);
    long v = 1;
    rlab_bytes *res;
    ck_assert_rc(rlab_pool_apply(p, square, &v, sizeof v, &res), RLAB_EBROKEN);
    rlab_pool_free(p);
}
END_TEST

int main(int argc, char **argv)
{
    struct {
        const char *name;
        rlab_task_fn fn;
    } tasks[] = {
        {"pp.square", square},
        {"pp.fail_negative", fail_negative},
        {"pp.whoami", whoami},
        {"pp.echo", echo},
        {"pp.init_ok", init_ok},
        {"pp.init_fails", init_fails},
        {"pp.read_init", read_init},
        {"pp.wait_gate", wait_gate},
        {"pp.die_by_sigkill", die_by_sigkill},
        {"pp.die_by_segv", die_by_segv},
        {"pp.die_by_exit", die_by_exit},
        {"pp.die_mid_answer", die_mid_answer},
        {"pp.garbage_answer", garbage_answer},
        {"pp.stop_reading", stop_reading},
    };
    for (size_t i = 0; i < sizeof tasks / sizeof *tasks; i++)
        if (rlab_task_register(tasks[i].name, tasks[i].fn) != 0)
            return 2;
    rlab_mp_main(argc, argv);

    Suite *s = suite_create("process_pool");
    TCase *tc = rlab_test_tcase("executor", setup, teardown, 120);
    tcase_add_loop_test(tc, submit_returns_the_tasks_result_bytes, 0, NMETHODS);
    tcase_add_test(tc, a_tasks_failure_code_is_the_futures_code);
    tcase_add_loop_test(tc, bytes_of_every_size_cross_both_ways_intact, 0,
                        NMETHODS);
    tcase_add_test(tc, map_keeps_input_order_with_and_without_chunks);
    tcase_add_test(tc, bad_arguments_are_einval_and_start_nothing);
    tcase_add_test(tc, the_default_worker_count_is_the_cpu_count);
    tcase_add_loop_test(tc, shutdown_waits_for_pending_tasks_and_refuses_new_ones,
                        0, NMETHODS);
    tcase_add_test(tc, shutdown_with_cancel_futures_cancels_what_has_not_started);
    tcase_add_loop_test(tc, the_initializer_runs_in_every_worker_before_tasks, 0,
                        NMETHODS);
    tcase_add_test(tc, a_failing_initializer_breaks_the_pool);
    tcase_add_loop_test(tc, max_tasks_per_child_replaces_workers, 0, NMETHODS);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("broken", setup, teardown, 120);
    tcase_add_loop_test(
        tc, a_dying_worker_breaks_the_pool_and_fails_every_pending_future, 0,
        NMETHODS * (int)(sizeof deaths / sizeof *deaths));
    tcase_add_loop_test(tc, a_connection_lost_while_sending_a_task_breaks_the_pool,
                        0, NMETHODS);
    tcase_add_test(tc, an_idle_worker_killed_from_outside_breaks_the_pool);
    tcase_add_test(tc, fault_loop_a_random_worker_killed_mid_task_100_times);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("pool", setup, teardown, 120);
    tcase_add_loop_test(tc, pool_apply_and_apply_async_return_results, 0,
                        NMETHODS);
    tcase_add_test(tc,
                   pool_async_result_wait_ready_and_successful_follow_the_task);
    tcase_add_loop_test(tc, pool_map_keeps_order_for_every_chunksize, 0,
                        NMETHODS);
    tcase_add_test(tc, pool_imap_yields_in_order_lazily);
    tcase_add_loop_test(tc,
                        pool_imap_unordered_yields_each_item_once_as_it_finishes,
                        0, NMETHODS);
    tcase_add_test(tc, pool_close_join_and_terminate);
    tcase_add_loop_test(tc, pool_a_killed_worker_breaks_it, 0, NMETHODS);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
