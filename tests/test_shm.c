/*
 * test_shm.c - the process-shared objects of multiprocessing.h (Lock,
 * RLock, Semaphore, Event, Condition, Value) and the shared arena they live
 * in (src/lib/shm.c).
 *
 * Every behaviour is checked across a process boundary: the other side is a
 * plain fork() child that stays single-threaded, does its part, and reports
 * through its exit status (it never calls ck_assert and always leaves with
 * _exit).  Parent and child synchronize through pipes, events and waitpid,
 * never through sleeps; every wait on either side has a guard (RLAB_GUARD),
 * so a bug fails the test instead of hanging it.  After each test no child
 * is left (not even a zombie) and the open descriptor count is what it was
 * (the fixture checks both; it makes the arena first, since the arena's
 * memfd lives as long as the process).
 *
 * The robustness tests let a child die holding a lock (by _exit or
 * SIGKILL) and check that the next acquirer gets RLAB_EOWNERDEAD with the
 * lock held, and that the lock then works as before; the fault loop does
 * that 100 times.
 *
 * The arena's export/import seam is checked in this process (importing over
 * the arena's own address is ENOMEM) and end to end by re-executing the
 * test binary, which imports the arena from an inherited descriptor at the
 * parent's address and updates the parent's Value (what a spawn child
 * does, without depending on process.c).
 *
 * Under tsan the suite runs whole: the test process is single-threaded
 * whenever it forks (the one test with threads runs last), which
 * ThreadSanitizer supports.  It sees each process's half of the story only,
 * so the cross-process tests check results, and the threads test lets it
 * judge the happens-before edges of every primitive inside one process.
 */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/lib/mp_internal.h"
#include "racelab/multiprocessing.h"
#include "rlab_test.h"

#define EARLY 2e-3
#define N_INCREMENTS 100000
#define FAULT_LOOPS 100
#define ARENA_BYTES ((size_t)64 << 20)



/* ------------------------------------------------------------ hygiene --- */

static int fds_at_start;

static void setup(void)
{
    /* The arena (and its memfd) is made by the first shared object and
     * kept for the life of the process: make it before counting. */
    rlab_plock_free(rlab_plock_new(false));
    fds_at_start = rlab_test_fd_count();
}

static void teardown(void)
{
    rlab_test_kids_end(); /* a failed test may leave children behind */
    rlab_test_assert_no_children();
    ck_assert_int_eq(rlab_test_fd_count(), fds_at_start);
}

/* rlab_test_reap_any, and the child is no longer the teardown's. */
static pid_t kid_reap_any(const pid_t *pids, int n, int *status)
{
    pid_t got = rlab_test_reap_any(pids, n, status);
    rlab_test_kid_forget(got);
    return got;
}

static int kid_reap(pid_t pid)
{
    int st;
    kid_reap_any(&pid, 1, &st);
    return st;
}

/* Reaps pid and fails unless it exited with `code`. */
static void kid_expect_exit(pid_t pid, int code)
{
    rlab_test_expect_exit(pid, code);
    rlab_test_kid_forget(pid);
}

static void open_pipe(int p[2])
{
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

static void close_pipe(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/* One byte through a pipe, waiting at most RLAB_GUARD: the byte, or -1. */
static int read_byte(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, (int)(RLAB_GUARD * 1000));
    while (r < 0 && errno == EINTR);
    unsigned char c;
    if (r != 1 || read(fd, &c, 1) != 1)
        return -1;
    return c;
}

static void put_byte(int fd, char c)
{
    ck_assert_int_eq(write(fd, &c, 1), 1);
}

static void expect_byte(int fd, char c)
{
    int got = read_byte(fd);
    ck_assert_msg(got == (unsigned char)c,
                  "expected '%c' from the child, got %d", c, got);
}

/* In a child: tell the parent, or wait for it (guarded). */
static void child_put(int fd, char c)
{
    CHILD_CHECK(write(fd, &c, 1) == 1, CHILD_GUARD);
}

static void child_await(int fd, char c)
{
    CHILD_CHECK(read_byte(fd) == (unsigned char)c, CHILD_GUARD);
}

/* --------------------------------------------------- lock and value --- */

static int add_loop_child(rlab_value *v, int go, bool raw_locked)
{
    child_await(go, 'g');
    rlab_plock *l = rlab_value_lock(v);
    long *p = rlab_value_ptr(v);
    for (int i = 0; i < N_INCREMENTS; i++) {
        if (raw_locked) {
            CHILD_CHECK(rlab_plock_acquire(l, RLAB_GUARD) == 0, 1);
            (*p)++;
            CHILD_CHECK(rlab_plock_release(l) == 0, 2);
        } else {
            CHILD_CHECK(rlab_value_add_long(v, 1, NULL) == 0, 3);
        }
    }
    return CHILD_OK;
}

static void guarded_increments(bool raw_locked)
{
    rlab_value *v = rlab_value_new(sizeof(long));
    ck_assert_ptr_nonnull(v);
    int go[2];
    open_pipe(go);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0)
        _exit(add_loop_child(v, go[0], raw_locked));
    put_byte(go[1], 'g');
    rlab_plock *l = rlab_value_lock(v);
    long *p = rlab_value_ptr(v);
    int bad = 0;
    for (int i = 0; i < N_INCREMENTS; i++) {
        if (raw_locked) {
            bad += rlab_plock_acquire(l, RLAB_GUARD) != 0;
            (*p)++;
            bad += rlab_plock_release(l) != 0;
        } else {
            bad += rlab_value_add_long(v, 1, NULL) != 0;
        }
    }
    ck_assert_int_eq(bad, 0);
    kid_expect_exit(pid, CHILD_OK);
    long total = 0;
    ck_assert_rc(rlab_value_get_long(v, &total), 0);
    ck_assert_int_eq(total, 2L * N_INCREMENTS);
    close_pipe(go);
    rlab_value_free(v);
}

START_TEST(value_add_long_by_two_processes_is_exact)
{
    guarded_increments(false);
}
END_TEST

START_TEST(raw_increments_under_the_value_lock_by_two_processes_are_exact)
{
    guarded_increments(true);
}
END_TEST

/* Both processes spin on a shared counter until both have arrived, so the
 * loops that follow really overlap.  false if the other never came. */
static bool start_together(atomic_int *arrived)
{
    atomic_fetch_add(arrived, 1);
    double end = rlab_test_now() + RLAB_GUARD;
    while (atomic_load(arrived) < 2)
        if (rlab_test_now() > end)
            return false;
    return true;
}

/* The racy half of the counter lesson, for show: without the lock the two
 * processes usually lose updates, but nothing guarantees it, so the count
 * is printed and not asserted. */
START_TEST(raw_increments_without_the_lock_are_only_reported)
{
    rlab_value *v = rlab_value_new(sizeof(long));
    rlab_value *gate = rlab_value_new(sizeof(atomic_int));
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_nonnull(gate);
    volatile long *p = rlab_value_ptr(v);
    atomic_int *arrived = rlab_value_ptr(gate);
    atomic_init(arrived, 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(start_together(arrived), CHILD_GUARD);
        for (int i = 0; i < N_INCREMENTS; i++)
            (*p)++;
        _exit(CHILD_OK);
    }
    ck_assert(start_together(arrived));
    for (int i = 0; i < N_INCREMENTS; i++)
        (*p)++;
    kid_expect_exit(pid, CHILD_OK);
    printf("test_shm: unguarded: %ld of %ld increments survived\n", *p,
           2L * N_INCREMENTS);
    ck_assert_int_le(*p, 2L * N_INCREMENTS);
    rlab_value_free(gate);
    rlab_value_free(v);
}
END_TEST

START_TEST(value_starts_zeroed_and_gets_sets_and_adds)
{
    rlab_value *v = rlab_value_new(64);
    ck_assert_ptr_nonnull(v);
    unsigned char *p = rlab_value_ptr(v);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(p[i], 0);
    ck_assert_uint_eq((uintptr_t)p % 16, 0);
    long x = -1, r = 0;
    ck_assert_rc(rlab_value_get_long(v, &x), 0);
    ck_assert_int_eq(x, 0);
    ck_assert_rc(rlab_value_set_long(v, LONG_MAX), 0);
    ck_assert_rc(rlab_value_add_long(v, 1, &r), 0);
    ck_assert_int_eq(r, LONG_MIN); /* wraps like a C long */
    ck_assert_rc(rlab_value_add_long(v, -5, NULL), 0);
    ck_assert_rc(rlab_value_get_long(v, &x), 0);
    ck_assert_int_eq(x, LONG_MAX - 4); /* LONG_MIN - 5, wrapped */
    ck_assert_rc(rlab_value_set_long(v, 7), 0);
    /* The lock is an RLock: the value is usable while it is held. */
    rlab_plock *l = rlab_value_lock(v);
    ck_assert_rc(rlab_plock_acquire(l, 0), 0);
    ck_assert_rc(rlab_value_add_long(v, 1, &r), 0);
    ck_assert_int_eq(r, 8);
    ck_assert_rc(rlab_plock_release(l), 0);
    ck_assert_rc(rlab_plock_release(l), EPERM);

    /* A child sees and changes the same memory. */
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        long y = 0;
        CHILD_CHECK(rlab_value_get_long(v, &y) == 0 && y == 8, 1);
        CHILD_CHECK(rlab_value_add_long(v, 100, NULL) == 0, 2);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_value_get_long(v, &x), 0);
    ck_assert_int_eq(x, 108);
    rlab_value_free(v);
}
END_TEST

START_TEST(value_rejects_bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null(rlab_value_new(0));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_value_new(ARENA_BYTES + 1));
    ck_assert_int_eq(errno, ENOMEM);
    rlab_value *small = rlab_value_new(4);
    ck_assert_ptr_nonnull(small);
    long x;
    ck_assert_rc(rlab_value_get_long(small, &x), EINVAL);
    ck_assert_rc(rlab_value_set_long(small, 1), EINVAL);
    ck_assert_rc(rlab_value_add_long(small, 1, NULL), EINVAL);
    ck_assert_rc(rlab_value_get_long(NULL, &x), EINVAL);
    ck_assert_rc(rlab_value_get_long(small, NULL), EINVAL);
    ck_assert_rc(rlab_value_set_long(NULL, 1), EINVAL);
    ck_assert_rc(rlab_value_add_long(NULL, 1, NULL), EINVAL);
    ck_assert_ptr_null(rlab_value_ptr(NULL));
    ck_assert_ptr_null(rlab_value_lock(NULL));
    rlab_value_free(small);
    rlab_value_free(NULL);
}
END_TEST

START_TEST(rlock_recurses_and_release_by_another_process_is_eperm)
{
    rlab_plock *r = rlab_plock_new(true);
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(rlab_plock_acquire(r, i == 0 ? 0 : RLAB_GUARD), 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_plock_release(r) == EPERM, 1);
        CHILD_CHECK(rlab_plock_acquire(r, 0) == EAGAIN, 2);
        CHILD_CHECK(rlab_plock_acquire(r, 0.05) == ETIMEDOUT, 3);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(rlab_plock_release(r), 0);
    ck_assert_rc(rlab_plock_release(r), EPERM);
    pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_plock_acquire(r, RLAB_GUARD) == 0, 1);
        CHILD_CHECK(rlab_plock_acquire(r, 0) == 0, 2);
        CHILD_CHECK(rlab_plock_release(r) == 0, 3);
        CHILD_CHECK(rlab_plock_release(r) == 0, 4);
        CHILD_CHECK(rlab_plock_release(r) == EPERM, 5);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_plock_acquire(r, 0), 0);
    ck_assert_rc(rlab_plock_release(r), 0);
    rlab_plock_free(r);
}
END_TEST

START_TEST(lock_release_by_another_process_or_unheld_is_eperm)
{
    rlab_plock *l = rlab_plock_new(false);
    ck_assert_ptr_nonnull(l);
    ck_assert_rc(rlab_plock_release(l), EPERM);
    ck_assert_rc(rlab_plock_acquire(l, 0), 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_plock_release(l) == EPERM, 1);
        CHILD_CHECK(rlab_plock_acquire(l, 0) == EAGAIN, 2);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_plock_release(l), 0); /* still the parent's */
    ck_assert_rc(rlab_plock_release(l), EPERM);
    rlab_plock_free(l);
}
END_TEST

START_TEST(lock_reacquire_by_its_holder_is_edeadlk_not_a_hang)
{
    rlab_plock *l = rlab_plock_new(false);
    ck_assert_ptr_nonnull(l);
    ck_assert_rc(rlab_plock_acquire(l, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_plock_acquire(l, RLAB_FOREVER), EDEADLK);
    ck_assert_rc(rlab_plock_acquire(l, 0), EDEADLK);
    ck_assert_rc(rlab_plock_acquire(l, 0.05), EDEADLK);
    ck_assert_rc(rlab_plock_release(l), 0); /* held once, released once */
    ck_assert_rc(rlab_plock_release(l), EPERM);
    rlab_plock_free(l);
}
END_TEST

START_TEST(lock_rejects_bad_arguments_and_free_null_is_a_noop)
{
    rlab_plock *l = rlab_plock_new(false);
    ck_assert_ptr_nonnull(l);
    ck_assert_rc(rlab_plock_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_plock_acquire(l, -2.0), EINVAL);
    ck_assert_rc(rlab_plock_acquire(l, NAN), EINVAL);
    ck_assert_rc(rlab_plock_release(NULL), EINVAL);
    ck_assert_rc(rlab_plock_release(l), EPERM); /* nothing changed */
    rlab_plock_free(l);
    rlab_plock_free(NULL);
    rlab_psemaphore_free(NULL);
    rlab_pevent_free(NULL);
    rlab_pcondition_free(NULL);
}
END_TEST

/* A held lock may be freed, as in Python. */
START_TEST(freeing_a_held_lock_is_allowed)
{
    rlab_plock *l = rlab_plock_new(false);
    rlab_plock *r = rlab_plock_new(true);
    ck_assert_rc(rlab_plock_acquire(l, 0), 0);
    ck_assert_rc(rlab_plock_acquire(r, 0), 0);
    ck_assert_rc(rlab_plock_acquire(r, 0), 0);
    rlab_plock_free(l);
    rlab_plock_free(r);
}
END_TEST

static void timed_acquire_against_a_holding_child(bool recursive)
{
    rlab_plock *l = rlab_plock_new(recursive);
    ck_assert_ptr_nonnull(l);
    int up[2], down[2];
    open_pipe(up);
    open_pipe(down);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_plock_acquire(l, RLAB_GUARD) == 0, 1);
        child_put(up[1], 'h');
        child_await(down[0], 'g');
        CHILD_CHECK(rlab_plock_release(l) == 0, 2);
        _exit(CHILD_OK);
    }
    expect_byte(up[0], 'h');
    ck_assert_rc(rlab_plock_acquire(l, 0), EAGAIN);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_plock_acquire(l, 0.1), ETIMEDOUT);
    double dt = rlab_test_now() - t0;
    ck_assert_double_ge(dt, 0.1 - EARLY);
    ck_assert_double_lt(dt, 0.1 + 1.0);
    ck_assert_rc(rlab_plock_release(l), EPERM); /* a timeout took nothing */
    put_byte(down[1], 'g');
    /* The child releases, then exits: this acquire gets through. */
    ck_assert_rc(rlab_plock_acquire(l, RLAB_GUARD), 0);
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_plock_release(l), 0);
    close_pipe(up);
    close_pipe(down);
    rlab_plock_free(l);
}

START_TEST(timed_acquire_is_etimedout_while_another_process_holds_the_lock)
{
    timed_acquire_against_a_holding_child(false);
}
END_TEST

START_TEST(timed_acquire_is_etimedout_while_another_process_holds_the_rlock)
{
    timed_acquire_against_a_holding_child(true);
}
END_TEST

/* ------------------------------------------------------- robustness --- */

enum death { DIE_EXIT, DIE_SIGKILL };

/* A child takes l, says 'h', and dies holding it. */
static pid_t child_dies_holding(rlab_plock *l, enum death how, int up[2])
{
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        int rc = rlab_plock_acquire(l, RLAB_GUARD);
        CHILD_CHECK(rc == 0 || rc == RLAB_EOWNERDEAD, 1);
        child_put(up[1], 'h');
        if (how == DIE_EXIT)
            _exit(CHILD_OK); /* holding the lock */
        rlab_test_child_linger();      /* killed in here */
        _exit(CHILD_GUARD);
    }
    expect_byte(up[0], 'h');
    if (how == DIE_SIGKILL)
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int st = kid_reap(pid);
    if (how == DIE_SIGKILL)
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "the child was not killed (status %#x)", st);
    else
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == CHILD_OK,
                      "the child failed (status %#x)", st);
    return pid;
}

static void recovers_after_holder_death(bool recursive, enum death how)
{
    rlab_plock *l = rlab_plock_new(recursive);
    ck_assert_ptr_nonnull(l);
    int up[2];
    open_pipe(up);
    child_dies_holding(l, how, up);
    ck_assert_rc(rlab_plock_acquire(l, RLAB_GUARD), RLAB_EOWNERDEAD);
    if (recursive) {
        ck_assert_rc(rlab_plock_acquire(l, 0), 0);
        ck_assert_rc(rlab_plock_release(l), 0);
    } else {
        ck_assert_rc(rlab_plock_acquire(l, 0), EDEADLK);
    }
    ck_assert_rc(rlab_plock_release(l), 0);
    ck_assert_rc(rlab_plock_release(l), EPERM);
    /* And the lock works as before, here and in another child. */
    ck_assert_rc(rlab_plock_acquire(l, 0), 0);
    ck_assert_rc(rlab_plock_release(l), 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_plock_acquire(l, RLAB_GUARD) == 0, 1);
        CHILD_CHECK(rlab_plock_release(l) == 0, 2);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    close_pipe(up);
    rlab_plock_free(l);
}

START_TEST(lock_of_a_child_that_exited_holding_it_is_recovered)
{
    recovers_after_holder_death(false, DIE_EXIT);
}
END_TEST

START_TEST(lock_of_a_child_killed_holding_it_is_recovered)
{
    recovers_after_holder_death(false, DIE_SIGKILL);
}
END_TEST

START_TEST(rlock_of_a_child_that_exited_holding_it_is_recovered)
{
    recovers_after_holder_death(true, DIE_EXIT);
}
END_TEST

START_TEST(rlock_of_a_child_killed_holding_it_is_recovered)
{
    recovers_after_holder_death(true, DIE_SIGKILL);
}
END_TEST

START_TEST(try_acquire_also_recovers_a_dead_holders_lock)
{
    rlab_plock *l = rlab_plock_new(false);
    int up[2];
    open_pipe(up);
    child_dies_holding(l, DIE_SIGKILL, up);
    ck_assert_rc(rlab_plock_acquire(l, 0), RLAB_EOWNERDEAD);
    ck_assert_rc(rlab_plock_release(l), 0);
    ck_assert_rc(rlab_plock_acquire(l, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_plock_release(l), 0);
    child_dies_holding(l, DIE_EXIT, up);
    ck_assert_rc(rlab_plock_acquire(l, RLAB_FOREVER), RLAB_EOWNERDEAD);
    ck_assert_rc(rlab_plock_release(l), 0);
    close_pipe(up);
    rlab_plock_free(l);
}
END_TEST

START_TEST(value_of_a_child_killed_holding_its_lock_still_adds)
{
    rlab_value *v = rlab_value_new(sizeof(long));
    ck_assert_rc(rlab_value_set_long(v, 41), 0);
    int up[2];
    open_pipe(up);
    child_dies_holding(rlab_value_lock(v), DIE_SIGKILL, up);
    long r = 0;
    ck_assert_rc(rlab_value_add_long(v, 1, &r), RLAB_EOWNERDEAD);
    ck_assert_int_eq(r, 42);
    ck_assert_rc(rlab_value_add_long(v, 1, &r), 0);
    ck_assert_int_eq(r, 43);
    close_pipe(up);
    rlab_value_free(v);
}
END_TEST

/* A waiter already blocked in acquire is woken by the holder's death. */
START_TEST(a_blocked_acquirer_gets_eownerdead_when_the_holder_is_killed)
{
    rlab_plock *l = rlab_plock_new(false);
    int up[2], up2[2];
    open_pipe(up);
    open_pipe(up2);
    pid_t holder = rlab_test_kid_fork();
    if (holder == 0) {
        CHILD_CHECK(rlab_plock_acquire(l, RLAB_GUARD) == 0, 1);
        child_put(up[1], 'h');
        rlab_test_child_linger(); /* killed in here */
        _exit(CHILD_GUARD);
    }
    expect_byte(up[0], 'h');
    pid_t waiter = rlab_test_kid_fork();
    if (waiter == 0) {
        child_put(up2[1], 'w');
        CHILD_CHECK(rlab_plock_acquire(l, RLAB_GUARD) == RLAB_EOWNERDEAD, 1);
        CHILD_CHECK(rlab_plock_release(l) == 0, 2);
        _exit(CHILD_OK);
    }
    expect_byte(up2[0], 'w');
    rlab_test_await_parked(waiter);
    ck_assert_int_eq(kill(holder, SIGKILL), 0);
    int st = kid_reap(holder);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    kid_expect_exit(waiter, CHILD_OK);
    ck_assert_rc(rlab_plock_acquire(l, 0), 0);
    ck_assert_rc(rlab_plock_release(l), 0);
    close_pipe(up);
    close_pipe(up2);
    rlab_plock_free(l);
}
END_TEST

/* The fault loop: a holder SIGKILLed 100 times, the lock recovered
 * every time (a Lock and an RLock in turn). */
START_TEST(fault_loop_a_holder_killed_100_times_is_recovered_every_time)
{
    rlab_plock *locks[2] = {rlab_plock_new(false), rlab_plock_new(true)};
    ck_assert_ptr_nonnull(locks[0]);
    ck_assert_ptr_nonnull(locks[1]);
    int up[2];
    open_pipe(up);
    int recovered = 0;
    for (int i = 0; i < FAULT_LOOPS; i++) {
        rlab_plock *l = locks[i % 2];
        child_dies_holding(l, DIE_SIGKILL, up);
        int rc = rlab_plock_acquire(l, RLAB_GUARD);
        ck_assert_msg(rc == RLAB_EOWNERDEAD, "round %d: acquire gave %d (%s)",
                      i, rc, rlab_strerror(rc));
        ck_assert_rc(rlab_plock_release(l), 0);
        recovered++;
    }
    ck_assert_int_eq(recovered, FAULT_LOOPS);
    for (int i = 0; i < 2; i++) {
        ck_assert_rc(rlab_plock_acquire(locks[i], 0), 0);
        ck_assert_rc(rlab_plock_release(locks[i]), 0);
        rlab_plock_free(locks[i]);
    }
    close_pipe(up);
}
END_TEST

/* -------------------------------------------------------- semaphore --- */

START_TEST(semaphore_counts_across_processes)
{
    enum { N = 1000 };
    rlab_psemaphore *s = rlab_psemaphore_new(0, 0);
    ck_assert_ptr_nonnull(s);
    /* One child releases N times; the parent takes N. */
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        for (int i = 0; i < N; i++)
            CHILD_CHECK(rlab_psemaphore_release(s) == 0, 1);
        _exit(CHILD_OK);
    }
    for (int i = 0; i < N; i++)
        ck_assert_rc(rlab_psemaphore_acquire(s, RLAB_GUARD), 0);
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_psemaphore_acquire(s, 0), EAGAIN);
    ck_assert_int_eq(rlab_psemaphore_value(s), 0);

    /* Two children take N each; the parent releases 2N. */
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = rlab_test_kid_fork();
        if (pids[k] == 0) {
            for (int i = 0; i < N; i++)
                CHILD_CHECK(rlab_psemaphore_acquire(s, RLAB_GUARD) == 0, 1);
            _exit(CHILD_OK);
        }
    }
    for (int i = 0; i < 2 * N; i++)
        ck_assert_rc(rlab_psemaphore_release(s), 0);
    kid_expect_exit(pids[0], CHILD_OK);
    kid_expect_exit(pids[1], CHILD_OK);
    ck_assert_int_eq(rlab_psemaphore_value(s), 0);
    rlab_psemaphore_free(s);
}
END_TEST

START_TEST(semaphore_release_wakes_a_child_blocked_in_acquire)
{
    rlab_psemaphore *s = rlab_psemaphore_new(0, 0);
    int up[2];
    open_pipe(up);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        child_put(up[1], 'w');
        double t0 = rlab_test_now();
        CHILD_CHECK(rlab_psemaphore_acquire(s, RLAB_GUARD) == 0, 1);
        CHILD_CHECK(rlab_test_now() - t0 < RLAB_GUARD * 0.9, 2);
        _exit(CHILD_OK);
    }
    expect_byte(up[0], 'w');
    rlab_test_await_parked(pid);
    ck_assert_rc(rlab_psemaphore_release(s), 0);
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_int_eq(rlab_psemaphore_value(s), 0);
    close_pipe(up);
    rlab_psemaphore_free(s);
}
END_TEST

START_TEST(bounded_semaphore_release_past_its_bound_is_eoverflow)
{
    rlab_psemaphore *s = rlab_psemaphore_new(1, 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_rc(rlab_psemaphore_release(s), EOVERFLOW);
    ck_assert_int_eq(rlab_psemaphore_value(s), 1); /* unchanged */
    ck_assert_rc(rlab_psemaphore_acquire(s, 0), 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_psemaphore_release(s) == 0, 1);
        CHILD_CHECK(rlab_psemaphore_release(s) == EOVERFLOW, 2);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_int_eq(rlab_psemaphore_value(s), 1);
    rlab_psemaphore_free(s);
}
END_TEST

START_TEST(semaphore_times_out_and_rejects_bad_arguments)
{
    rlab_psemaphore *s = rlab_psemaphore_new(0, 0);
    ck_assert_rc(rlab_psemaphore_acquire(s, 0), EAGAIN);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_psemaphore_acquire(s, 0.05), ETIMEDOUT);
    ck_assert_double_ge(rlab_test_now() - t0, 0.05 - EARLY);
    ck_assert_rc(rlab_psemaphore_acquire(s, NAN), EINVAL);
    ck_assert_rc(rlab_psemaphore_acquire(s, -3), EINVAL);
    ck_assert_rc(rlab_psemaphore_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_psemaphore_release(NULL), EINVAL);
    ck_assert_int_eq(rlab_psemaphore_value(s), 0);
    rlab_psemaphore_free(s);
    long bad[][2] = {{-1, 0}, {2, 1}, {0, -1}, {(long)INT_MAX + 1, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        ck_assert_ptr_null(rlab_psemaphore_new(bad[i][0], bad[i][1]));
        ck_assert_int_eq(errno, EINVAL);
    }
    s = rlab_psemaphore_new(INT_MAX, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_rc(rlab_psemaphore_release(s), EOVERFLOW);
    rlab_psemaphore_free(s);
}
END_TEST

/* ------------------------------------------------------------ event --- */

START_TEST(event_set_wakes_a_waiting_child)
{
    rlab_pevent *e = rlab_pevent_new();
    ck_assert_ptr_nonnull(e);
    int up[2];
    open_pipe(up);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        child_put(up[1], 'w');
        double t0 = rlab_test_now();
        CHILD_CHECK(rlab_pevent_wait(e, RLAB_GUARD) == 0, 1);
        CHILD_CHECK(rlab_test_now() - t0 < RLAB_GUARD * 0.9, 2);
        CHILD_CHECK(rlab_pevent_is_set(e), 3);
        _exit(CHILD_OK);
    }
    expect_byte(up[0], 'w');
    rlab_test_await_parked(pid);
    ck_assert_rc(rlab_pevent_set(e), 0);
    kid_expect_exit(pid, CHILD_OK);
    close_pipe(up);
    rlab_pevent_free(e);
}
END_TEST

/* set() then clear() at once still releases a waiter already parked. */
START_TEST(event_set_then_clear_still_releases_a_parked_child)
{
    rlab_pevent *e = rlab_pevent_new();
    int up[2];
    open_pipe(up);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        child_put(up[1], 'w');
        CHILD_CHECK(rlab_pevent_wait(e, RLAB_GUARD) == 0, 1);
        _exit(CHILD_OK);
    }
    expect_byte(up[0], 'w');
    rlab_test_await_parked(pid);
    ck_assert_rc(rlab_pevent_set(e), 0);
    ck_assert_rc(rlab_pevent_clear(e), 0);
    kid_expect_exit(pid, CHILD_OK);
    ck_assert(!rlab_pevent_is_set(e));
    close_pipe(up);
    rlab_pevent_free(e);
}
END_TEST

START_TEST(event_state_is_shared_and_waits_time_out)
{
    rlab_pevent *e = rlab_pevent_new();
    ck_assert(!rlab_pevent_is_set(e));
    ck_assert_rc(rlab_pevent_wait(e, 0), ETIMEDOUT);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_pevent_wait(e, 0.05), ETIMEDOUT);
    ck_assert_double_ge(rlab_test_now() - t0, 0.05 - EARLY);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_pevent_set(e) == 0, 1);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert(rlab_pevent_is_set(e));
    ck_assert_rc(rlab_pevent_wait(e, 0), 0);
    ck_assert_rc(rlab_pevent_wait(e, RLAB_FOREVER), 0);
    ck_assert_rc(rlab_pevent_set(e), 0); /* again: harmless */
    ck_assert_rc(rlab_pevent_clear(e), 0);
    ck_assert(!rlab_pevent_is_set(e));
    ck_assert_rc(rlab_pevent_wait(e, NAN), EINVAL);
    ck_assert_rc(rlab_pevent_wait(NULL, 0), EINVAL);
    ck_assert_rc(rlab_pevent_set(NULL), EINVAL);
    ck_assert_rc(rlab_pevent_clear(NULL), EINVAL);
    ck_assert(!rlab_pevent_is_set(NULL));
    rlab_pevent_free(e);
}
END_TEST

/* -------------------------------------------------------- condition --- */

/* Forks a child that takes c, says 'w' on up[1], waits on c (until *until
 * is nonzero, or once if until is NULL), counts itself in *woken (if not
 * NULL, under c), releases c and exits CHILD_OK.  Returns once the child
 * said 'w': then it holds c or waits on it, and the parent gets c only
 * once the child waits. */
static pid_t fork_cond_waiter(rlab_pcondition *c, int up[2], const long *until,
                              long *woken)
{
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_pcondition_acquire(c, RLAB_GUARD) == 0, 1);
        child_put(up[1], 'w'); /* holding the lock */
        double t0 = rlab_test_now();
        do
            CHILD_CHECK(rlab_pcondition_wait(c, RLAB_GUARD) == 0, 2);
        while (until && !*until);
        CHILD_CHECK(rlab_test_now() - t0 < RLAB_GUARD * 0.9, 3);
        if (woken)
            ++*woken;
        CHILD_CHECK(rlab_pcondition_release(c) == 0, 4);
        _exit(CHILD_OK);
    }
    expect_byte(up[0], 'w');
    return pid;
}

START_TEST(condition_notify_wakes_a_waiting_child)
{
    rlab_pcondition *c = rlab_pcondition_new(NULL);
    ck_assert_ptr_nonnull(c);
    rlab_value *flag = rlab_value_new(sizeof(long)); /* guarded by c */
    long *ready = rlab_value_ptr(flag);
    int up[2];
    open_pipe(up);
    pid_t pid = fork_cond_waiter(c, up, ready, NULL);
    /* The child held the lock when it wrote: the parent gets it only once
     * the child waits. */
    ck_assert_rc(rlab_pcondition_acquire(c, RLAB_GUARD), 0);
    *ready = 1;
    ck_assert_rc(rlab_pcondition_notify(c, 1), 0);
    ck_assert_rc(rlab_pcondition_release(c), 0);
    kid_expect_exit(pid, CHILD_OK);
    close_pipe(up);
    rlab_value_free(flag);
    rlab_pcondition_free(c);
}
END_TEST

START_TEST(condition_notify_n_wakes_exactly_n_children)
{
    enum { K = 3 };
    rlab_plock *l = rlab_plock_new(false);
    rlab_pcondition *c = rlab_pcondition_new(l);
    ck_assert_ptr_nonnull(c);
    rlab_value *count = rlab_value_new(sizeof(long)); /* guarded by c */
    long *woken = rlab_value_ptr(count);
    int up[2];
    open_pipe(up);
    pid_t pids[K];
    for (int k = 0; k < K; k++)
        pids[k] = fork_cond_waiter(c, up, NULL, woken);
    ck_assert_rc(rlab_pcondition_acquire(c, RLAB_GUARD), 0); /* all wait */
    ck_assert_rc(rlab_pcondition_notify(c, 2), 0);
    ck_assert_rc(rlab_pcondition_release(c), 0);
    pid_t left[K];
    memcpy(left, pids, sizeof left);
    int nleft = K;
    for (int n = 0; n < 2; n++) {
        int st;
        pid_t got = kid_reap_any(left, nleft, &st);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == CHILD_OK);
        for (int i = 0; i < nleft; i++)
            if (left[i] == got)
                left[i] = left[--nleft];
    }
    ck_assert_rc(rlab_pcondition_acquire(c, RLAB_GUARD), 0);
    ck_assert_int_eq(*woken, 2);
    ck_assert_rc(rlab_pcondition_notify_all(c), 0);
    ck_assert_rc(rlab_pcondition_release(c), 0);
    kid_expect_exit(left[0], CHILD_OK);
    ck_assert_int_eq(*woken, 3);
    close_pipe(up);
    rlab_value_free(count);
    rlab_pcondition_free(c);
    rlab_plock_free(l);
}
END_TEST

/* wait releases every level of the RLock (a child gets it meanwhile) and
 * restores them all. */
START_TEST(condition_wait_releases_every_level_and_restores_them)
{
    rlab_pcondition *c = rlab_pcondition_new(NULL);
    rlab_value *flag = rlab_value_new(sizeof(long));
    long *done = rlab_value_ptr(flag);
    ck_assert_rc(rlab_pcondition_acquire(c, 0), 0);
    ck_assert_rc(rlab_pcondition_acquire(c, 0), 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_pcondition_acquire(c, RLAB_GUARD) == 0, 1);
        *done = 1;
        CHILD_CHECK(rlab_pcondition_notify(c, 1) == 0, 2);
        CHILD_CHECK(rlab_pcondition_release(c) == 0, 3);
        _exit(CHILD_OK);
    }
    while (!*done)
        ck_assert_rc(rlab_pcondition_wait(c, RLAB_GUARD), 0);
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_pcondition_release(c), 0);
    ck_assert_rc(rlab_pcondition_release(c), 0);
    ck_assert_rc(rlab_pcondition_release(c), EPERM);
    rlab_value_free(flag);
    rlab_pcondition_free(c);
}
END_TEST

START_TEST(condition_wait_times_out_with_the_lock_held_again)
{
    rlab_pcondition *c = rlab_pcondition_new(NULL);
    ck_assert_rc(rlab_pcondition_acquire(c, 0), 0);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_pcondition_wait(c, 0.05), ETIMEDOUT);
    ck_assert_double_ge(rlab_test_now() - t0, 0.05 - EARLY);
    ck_assert_rc(rlab_pcondition_wait(c, 0), ETIMEDOUT);
    /* A child cannot take the lock: the parent holds it again. */
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_pcondition_acquire(c, 0) == EAGAIN, 1);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_pcondition_notify(c, 1), 0); /* nobody waits: fine */
    ck_assert_rc(rlab_pcondition_release(c), 0);
    rlab_pcondition_free(c);
}
END_TEST

START_TEST(condition_wait_and_notify_without_the_lock_are_eperm)
{
    rlab_pcondition *c = rlab_pcondition_new(NULL);
    ck_assert_rc(rlab_pcondition_wait(c, 0), EPERM);
    ck_assert_rc(rlab_pcondition_notify(c, 1), EPERM);
    ck_assert_rc(rlab_pcondition_notify_all(c), EPERM);
    ck_assert_rc(rlab_pcondition_release(c), EPERM);
    /* Held by another process is not held by this one. */
    ck_assert_rc(rlab_pcondition_acquire(c, 0), 0);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        CHILD_CHECK(rlab_pcondition_wait(c, 0) == EPERM, 1);
        CHILD_CHECK(rlab_pcondition_notify(c, 1) == EPERM, 2);
        _exit(CHILD_OK);
    }
    kid_expect_exit(pid, CHILD_OK);
    ck_assert_rc(rlab_pcondition_notify(c, -1), EINVAL);
    ck_assert_rc(rlab_pcondition_wait(c, NAN), EINVAL);
    ck_assert_rc(rlab_pcondition_notify(c, 0), 0);
    ck_assert_rc(rlab_pcondition_release(c), 0);
    ck_assert_rc(rlab_pcondition_wait(NULL, 0), EINVAL);
    ck_assert_rc(rlab_pcondition_notify(NULL, 1), EINVAL);
    ck_assert_rc(rlab_pcondition_acquire(NULL, 0), EINVAL);
    ck_assert_rc(rlab_pcondition_release(NULL), EINVAL);
    rlab_pcondition_free(c);
}
END_TEST

/* A waiter whose process died does not swallow a notify. */
START_TEST(condition_notify_skips_a_waiter_that_died)
{
    rlab_pcondition *c = rlab_pcondition_new(NULL);
    int up[2];
    open_pipe(up);
    pid_t dead = rlab_test_kid_fork();
    if (dead == 0) {
        CHILD_CHECK(rlab_pcondition_acquire(c, RLAB_GUARD) == 0, 1);
        child_put(up[1], 'w');
        rlab_pcondition_wait(c, RLAB_GUARD); /* killed in here */
        _exit(CHILD_GUARD);
    }
    expect_byte(up[0], 'w');
    ck_assert_rc(rlab_pcondition_acquire(c, RLAB_GUARD), 0); /* it waits */
    ck_assert_rc(rlab_pcondition_release(c), 0);
    ck_assert_int_eq(kill(dead, SIGKILL), 0);
    kid_reap(dead);
    pid_t live = fork_cond_waiter(c, up, NULL, NULL);
    ck_assert_rc(rlab_pcondition_acquire(c, RLAB_GUARD), 0);
    ck_assert_rc(rlab_pcondition_notify(c, 1), 0);
    ck_assert_rc(rlab_pcondition_release(c), 0);
    kid_expect_exit(live, CHILD_OK);
    close_pipe(up);
    rlab_pcondition_free(c);
}
END_TEST

/* -------------------------------------------------------- allocator --- */

START_TEST(allocator_survives_10000_new_free_cycles)
{
    for (int i = 0; i < 10000; i++) {
        rlab_plock *l = rlab_plock_new(i % 2);
        rlab_psemaphore *s = rlab_psemaphore_new(1, 0);
        rlab_pevent *e = rlab_pevent_new();
        rlab_pcondition *c = rlab_pcondition_new(NULL);
        rlab_value *v = rlab_value_new(64);
        rlab_value *big = rlab_value_new(256 << 10); /* 256 leaked: full */
        ck_assert_msg(l && s && e && c && v && big, "cycle %d: %s", i,
                      strerror(errno));
        rlab_value_free(big);
        rlab_value_free(v);
        rlab_pcondition_free(c);
        rlab_pevent_free(e);
        rlab_psemaphore_free(s);
        rlab_plock_free(l);
    }
}
END_TEST

/* Fill the arena with 1 MiB blocks until ENOMEM, drain it, and again: the
 * same number fits every round. */
START_TEST(allocator_fills_and_drains_the_arena_without_leaking)
{
    enum { MAXV = 128 };
    static rlab_value *v[MAXV];
    size_t sz = ((size_t)1 << 20) - 256;
    int first = -1;
    for (int round = 0; round < 3; round++) {
        int n = 0;
        while (n < MAXV && (v[n] = rlab_value_new(sz)) != NULL)
            n++;
        ck_assert_int_lt(n, MAXV);
        ck_assert_int_eq(errno, ENOMEM);
        ck_assert_int_ge(n, 32);
        if (first < 0)
            first = n;
        ck_assert_int_eq(n, first);
        /* Failing allocations of every kind change nothing. */
        errno = 0;
        ck_assert_ptr_null(rlab_value_new(sz));
        ck_assert_int_eq(errno, ENOMEM);
        for (int i = 0; i < n; i++)
            rlab_value_free(v[i]);
    }
    /* Many small objects at once, then gone. */
    enum { SMALL = 20000 };
    static rlab_plock *ls[SMALL];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < SMALL; i++) {
            ls[i] = rlab_plock_new(false);
            ck_assert_ptr_nonnull(ls[i]);
        }
        for (int i = 0; i < SMALL; i++)
            rlab_plock_free(ls[i]);
    }
}
END_TEST

/* Children allocate from the same arena; their objects work in the parent
 * (same address everywhere) and the parent frees them. */
START_TEST(objects_made_by_a_child_work_in_the_parent)
{
    int up[2];
    open_pipe(up);
    pid_t pid = rlab_test_kid_fork();
    if (pid == 0) {
        rlab_value *v = rlab_value_new(sizeof(long));
        rlab_plock *l = rlab_plock_new(false);
        CHILD_CHECK(v && l, 1);
        CHILD_CHECK(rlab_value_set_long(v, 42) == 0, 2);
        CHILD_CHECK(rlab_plock_acquire(l, 0) == 0, 3);
        void *ptrs[2] = {v, l};
        CHILD_CHECK(write(up[1], ptrs, sizeof ptrs) == sizeof ptrs, 4);
        _exit(CHILD_OK); /* holding l */
    }
    kid_expect_exit(pid, CHILD_OK);
    void *ptrs[2];
    ck_assert_int_eq(read(up[0], ptrs, sizeof ptrs), sizeof ptrs);
    rlab_value *v = ptrs[0];
    rlab_plock *l = ptrs[1];
    long x = 0;
    ck_assert_rc(rlab_value_add_long(v, 1, &x), 0);
    ck_assert_int_eq(x, 43);
    ck_assert_rc(rlab_plock_acquire(l, RLAB_GUARD), RLAB_EOWNERDEAD);
    ck_assert_rc(rlab_plock_release(l), 0);
    rlab_plock_free(l);
    rlab_value_free(v);
    close_pipe(up);
}
END_TEST

/* ---------------------------------------------------- export/import --- */

START_TEST(export_gives_the_arena_and_importing_it_again_is_enomem)
{
    int fd = -1;
    void *addr = NULL;
    size_t size = 0;
    ck_assert_rc(rlab__shm_export(&fd, &addr, &size), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(addr);
    ck_assert_uint_eq(size, ARENA_BYTES);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    ck_assert_rc(rlab__shm_export(NULL, &addr, &size), EINVAL);
    printf("test_shm: arena at %p, %zu MiB\n", addr, size >> 20);
#if defined(__x86_64__)
    /* Placed low, away from the top-down mmap area where a re-executed
     * child's libraries and stacks land (see ARENA_HINT in shm.c). */
    ck_assert_msg((uintptr_t)addr < UINT64_C(0x700000000000),
                  "the arena fell back to a kernel-chosen address %p", addr);
#endif

    /* Objects live inside it. */
    rlab_plock *l = rlab_plock_new(false);
    ck_assert((char *)l > (char *)addr && (char *)l < (char *)addr + size);
    rlab_plock_free(l);

    /* The address is taken here (by the arena itself). */
    ck_assert_rc(rlab__shm_import(fd, addr, size), ENOMEM);
    /* Bad arguments. */
    ck_assert_rc(rlab__shm_import(-1, addr, size), EINVAL);
    ck_assert_rc(rlab__shm_import(fd, NULL, size), EINVAL);
    ck_assert_rc(rlab__shm_import(fd, (char *)addr + 1, size), EINVAL);
    ck_assert_rc(rlab__shm_import(fd, addr, size / 2), EINVAL);
    /* A free address, but this process has its arena already: EBUSY, and
     * the trial mapping is undone. */
    void *spot =
        mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(spot, MAP_FAILED);
    munmap(spot, size);
    ck_assert_rc(rlab__shm_import(fd, spot, size), EBUSY);
    void *again =
        mmap(spot, size, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ck_assert_ptr_eq(again, spot);
    munmap(again, size);
    /* A descriptor that is not an arena of that size. */
    int other = memfd_create("not-an-arena", MFD_CLOEXEC);
    ck_assert_int_ge(other, 0);
    ck_assert_int_eq(ftruncate(other, (off_t)size), 0);
    ck_assert_rc(rlab__shm_import(other, spot, size), EINVAL);
    close(other);
    /* The export still stands. */
    int fd2;
    void *addr2;
    size_t size2;
    ck_assert_rc(rlab__shm_export(&fd2, &addr2, &size2), 0);
    ck_assert_int_eq(fd2, fd);
    ck_assert_ptr_eq(addr2, addr);
}
END_TEST

/* ---------------------------------------------------------- threads --- */

/* The same objects between threads of one process, where ThreadSanitizer
 * judges them: data handed over through each primitive is plain memory,
 * so a missing happens-before edge would be reported as a race. */
enum { THREAD_ROUNDS = 20000 };

typedef struct {
    rlab_plock *lock;
    long *counter;
    rlab_psemaphore *sem;
    rlab_pevent *ev;
    rlab_pcondition *cond;
    long *sem_data, *ev_data, *cond_data; /* plain, handed over */
    long *cond_ready;
} thread_shared;

static void *count_under_lock(void *arg)
{
    thread_shared *t = arg;
    long bad = 0;
    for (int i = 0; i < THREAD_ROUNDS; i++) {
        bad += rlab_plock_acquire(t->lock, RLAB_GUARD) != 0;
        ++*t->counter;
        bad += rlab_plock_release(t->lock) != 0;
    }
    return (void *)(intptr_t)bad;
}

static void *hand_over(void *arg)
{
    thread_shared *t = arg;
    long bad = 0;
    *t->sem_data = 1;
    bad += rlab_psemaphore_release(t->sem) != 0;
    *t->ev_data = 2;
    bad += rlab_pevent_set(t->ev) != 0;
    bad += rlab_pcondition_acquire(t->cond, RLAB_GUARD) != 0;
    *t->cond_data = 3;
    *t->cond_ready = 1;
    bad += rlab_pcondition_notify(t->cond, 1) != 0;
    bad += rlab_pcondition_release(t->cond) != 0;
    return (void *)(intptr_t)bad;
}

START_TEST(objects_also_work_between_threads_of_one_process)
{
    rlab_value *mem = rlab_value_new(8 * sizeof(long));
    ck_assert_ptr_nonnull(mem);
    long *m = rlab_value_ptr(mem);
    thread_shared t = {
        .lock = rlab_plock_new(false),
        .counter = &m[0],
        .sem = rlab_psemaphore_new(0, 0),
        .ev = rlab_pevent_new(),
        .cond = rlab_pcondition_new(NULL),
        .sem_data = &m[1],
        .ev_data = &m[2],
        .cond_data = &m[3],
        .cond_ready = &m[4],
    };
    ck_assert(t.lock && t.sem && t.ev && t.cond);
    rlab_thread *a = rlab_test_spawn(count_under_lock, &t);
    rlab_thread *b = rlab_test_spawn(count_under_lock, &t);
    ck_assert_int_eq((intptr_t)rlab_test_join(a), 0);
    ck_assert_int_eq((intptr_t)rlab_test_join(b), 0);
    ck_assert_int_eq(*t.counter, 2L * THREAD_ROUNDS);

    rlab_thread *h = rlab_test_spawn(hand_over, &t);
    ck_assert_rc(rlab_psemaphore_acquire(t.sem, RLAB_GUARD), 0);
    ck_assert_int_eq(*t.sem_data, 1);
    ck_assert_rc(rlab_pevent_wait(t.ev, RLAB_GUARD), 0);
    ck_assert_int_eq(*t.ev_data, 2);
    ck_assert_rc(rlab_pcondition_acquire(t.cond, RLAB_GUARD), 0);
    while (!*t.cond_ready)
        ck_assert_rc(rlab_pcondition_wait(t.cond, RLAB_GUARD), 0);
    ck_assert_int_eq(*t.cond_data, 3);
    ck_assert_rc(rlab_pcondition_release(t.cond), 0);
    ck_assert_int_eq((intptr_t)rlab_test_join(h), 0);

    rlab_pcondition_free(t.cond);
    rlab_pevent_free(t.ev);
    rlab_psemaphore_free(t.sem);
    rlab_plock_free(t.lock);
    rlab_value_free(mem);
}
END_TEST

/* The spawn path end to end: the test binary re-executes itself (a fresh
 * address space, as a spawn child has), imports the arena from an
 * inherited descriptor, and updates a Value the parent made. */
#define IMPORT_CHILD_ARG "--test-shm-import-child"
#define IMPORT_FD 200

/* The re-executed child: argv = IMPORT_CHILD_ARG addr size value. */
static int import_child_main(char **argv)
{
    void *addr = (void *)(uintptr_t)strtoull(argv[2], NULL, 16);
    size_t size = (size_t)strtoull(argv[3], NULL, 10);
    rlab_value *v = (rlab_value *)(uintptr_t)strtoull(argv[4], NULL, 16);
    if (rlab__shm_import(IMPORT_FD, addr, size) != 0)
        return 1;
    close(IMPORT_FD); /* import keeps its own copy */
    if (rlab__shm_import(IMPORT_FD, addr, size) != EBADF) /* closed fd */
        return 2;
    int fd;
    void *a;
    size_t sz;
    if (rlab__shm_export(&fd, &a, &sz) != 0 || a != addr || sz != size ||
        !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
        return 3;
    if (rlab__shm_import(fd, addr, size) != ENOMEM) /* taken now */
        return 4;
    long r = 0;
    if (rlab_value_add_long(v, 1, &r) != 0 || r != 42)
        return 5;
    /* The child can allocate too, and its lock protects across exec. */
    rlab_plock *l = rlab_plock_new(true);
    if (!l || rlab_plock_acquire(l, 0) != 0 || rlab_plock_release(l) != 0)
        return 6;
    rlab_plock_free(l);
    return 0;
}

START_TEST(a_reexecuted_child_imports_the_arena_at_the_same_address)
{
    rlab_value *v = rlab_value_new(sizeof(long));
    ck_assert_ptr_nonnull(v);
    ck_assert_rc(rlab_value_set_long(v, 41), 0);
    int fd;
    void *addr;
    size_t size;
    ck_assert_rc(rlab__shm_export(&fd, &addr, &size), 0);
    char a_addr[32], a_size[32], a_val[32];
    snprintf(a_addr, sizeof a_addr, "%jx", (uintmax_t)(uintptr_t)addr);
    snprintf(a_size, sizeof a_size, "%zu", size);
    snprintf(a_val, sizeof a_val, "%jx", (uintmax_t)(uintptr_t)v);
    char *argv[] = {"test_shm", IMPORT_CHILD_ARG, a_addr, a_size, a_val, NULL};
    posix_spawn_file_actions_t fa;
    ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
    ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, fd, IMPORT_FD), 0);
    extern char **environ;
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "posix_spawn: %s", strerror(rc));
    rlab_test_kid_add(pid);
    kid_expect_exit(pid, 0);
    long x = 0;
    ck_assert_rc(rlab_value_get_long(v, &x), 0);
    ck_assert_int_eq(x, 42);
    rlab_value_free(v);
}
END_TEST

int main(int argc, char **argv)
{
    /* Before rlab_mp_main: this child mode is the test's own. */
    if (argc == 5 && strcmp(argv[1], IMPORT_CHILD_ARG) == 0)
        _exit(import_child_main(argv));
    rlab_mp_main(argc, argv);
    Suite *s = suite_create("shm");
    TCase *tc = rlab_test_tcase("lock_value", setup, teardown, 120);
    tcase_add_test(tc, value_add_long_by_two_processes_is_exact);
    tcase_add_test(
        tc, raw_increments_under_the_value_lock_by_two_processes_are_exact);
    tcase_add_test(tc, raw_increments_without_the_lock_are_only_reported);
    tcase_add_test(tc, value_starts_zeroed_and_gets_sets_and_adds);
    tcase_add_test(tc, value_rejects_bad_arguments);
    tcase_add_test(tc, rlock_recurses_and_release_by_another_process_is_eperm);
    tcase_add_test(tc, lock_release_by_another_process_or_unheld_is_eperm);
    tcase_add_test(tc, lock_reacquire_by_its_holder_is_edeadlk_not_a_hang);
    tcase_add_test(tc, lock_rejects_bad_arguments_and_free_null_is_a_noop);
    tcase_add_test(tc, freeing_a_held_lock_is_allowed);
    tcase_add_test(
        tc, timed_acquire_is_etimedout_while_another_process_holds_the_lock);
    tcase_add_test(
        tc, timed_acquire_is_etimedout_while_another_process_holds_the_rlock);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("robust", setup, teardown, 120);
    tcase_add_test(tc, lock_of_a_child_that_exited_holding_it_is_recovered);
    tcase_add_test(tc, lock_of_a_child_killed_holding_it_is_recovered);
    tcase_add_test(tc, rlock_of_a_child_that_exited_holding_it_is_recovered);
    tcase_add_test(tc, rlock_of_a_child_killed_holding_it_is_recovered);
    tcase_add_test(tc, try_acquire_also_recovers_a_dead_holders_lock);
    tcase_add_test(tc, value_of_a_child_killed_holding_its_lock_still_adds);
    tcase_add_test(
        tc, a_blocked_acquirer_gets_eownerdead_when_the_holder_is_killed);
    tcase_add_test(
        tc, fault_loop_a_holder_killed_100_times_is_recovered_every_time);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("semaphore_event", setup, teardown, 120);
    tcase_add_test(tc, semaphore_counts_across_processes);
    tcase_add_test(tc, semaphore_release_wakes_a_child_blocked_in_acquire);
    tcase_add_test(tc, bounded_semaphore_release_past_its_bound_is_eoverflow);
    tcase_add_test(tc, semaphore_times_out_and_rejects_bad_arguments);
    tcase_add_test(tc, event_set_wakes_a_waiting_child);
    tcase_add_test(tc, event_set_then_clear_still_releases_a_parked_child);
    tcase_add_test(tc, event_state_is_shared_and_waits_time_out);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("condition", setup, teardown, 120);
    tcase_add_test(tc, condition_notify_wakes_a_waiting_child);
    tcase_add_test(tc, condition_notify_n_wakes_exactly_n_children);
    tcase_add_test(tc, condition_wait_releases_every_level_and_restores_them);
    tcase_add_test(tc, condition_wait_times_out_with_the_lock_held_again);
    tcase_add_test(tc, condition_wait_and_notify_without_the_lock_are_eperm);
    tcase_add_test(tc, condition_notify_skips_a_waiter_that_died);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("arena", setup, teardown, 120);
    tcase_add_test(tc, allocator_survives_10000_new_free_cycles);
    tcase_add_test(tc, allocator_fills_and_drains_the_arena_without_leaking);
    tcase_add_test(tc, objects_made_by_a_child_work_in_the_parent);
    tcase_add_test(tc, export_gives_the_arena_and_importing_it_again_is_enomem);
    tcase_add_test(tc,
                   a_reexecuted_child_imports_the_arena_at_the_same_address);
    suite_add_tcase(s, tc);

    /* Last, so that every fork of the suite happens before any thread was
     * ever started (they are joined, but ThreadSanitizer is happiest so). */
    tc = rlab_test_tcase("threads", setup, teardown, 120);
    tcase_add_test(tc, objects_also_work_between_threads_of_one_process);
    suite_add_tcase(s, tc);
    return rlab_test_main(s);
}
