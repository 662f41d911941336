/*
 * rlab_test.h - shared helpers of racelab's Check suites.
 *
 * Every blocking call in a test goes through a timed form with RLAB_GUARD as
 * its deadline, so a deadlock fails the test instead of hanging ctest.
 */
#ifndef RLAB_TEST_H
#define RLAB_TEST_H

#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "racelab.h"

/* Deadlock guard for waits that must succeed (seconds). */
#define RLAB_GUARD 20.0

/* Asserts that an int status expression equals the expected code, and
 * prints both as names on failure. */
#define ck_assert_rc(expr, want)                                              \
    do {                                                                      \
        int rlab_rc_ = (expr);                                                \
        int rlab_want_ = (want);                                              \
        ck_assert_msg(rlab_rc_ == rlab_want_, "%s returned %d (%s), want %d (%s)", \
                      #expr, rlab_rc_, rlab_strerror(rlab_rc_), rlab_want_,   \
                      rlab_strerror(rlab_want_));                             \
    } while (0)

/* RLAB_STRESS_SCALE (default 1; fractions allowed) times n, at least 1. */
long rlab_test_scaled(long n);

/* Seconds on CLOCK_MONOTONIC. */
double rlab_test_now(void);

/* Starts fn(arg) on a racelab thread; fails the test if it cannot. */
rlab_thread *rlab_test_spawn(void *(*fn)(void *), void *arg);
/* Joins within RLAB_GUARD (fails the test on timeout), frees the handle and
 * returns the thread's result. */
void *rlab_test_join(rlab_thread *t);

/* Waits until the thread `tid` (a native id) sleeps in the kernel, or
 * *done turns true; fails the test if it did not block (then *rc is the
 * status it returned) or neither happened within RLAB_GUARD. */
void rlab_test_wait_blocked(long tid, const atomic_bool *done, const int *rc);

/* Fails the test if a blocking call took most of RLAB_GUARD: nothing in
 * the tests legitimately waits that long, only a lost wake-up that the
 * call's last check at its deadline would hide. */
void rlab_test_assert_not_at_guard(double elapsed);

/* A test case with a checked fixture (setup, teardown: either may be NULL)
 * and, if timeout > 0, that timeout in seconds instead of Check's. */
TCase *rlab_test_tcase(const char *name, void (*setup)(void),
                       void (*teardown)(void), double timeout);

/* Runs one suite with Check and returns the process exit status. */
int rlab_test_main(Suite *s);

/* The contents of a file of 1 to 1 MiB bytes (malloc'd) and its size, or
 * NULL (missing, empty or unreadable). */
unsigned char *rlab_test_read_file(const char *path, size_t *size);

/* Reads fd until EOF (failing the test if none comes within RLAB_GUARD),
 * keeping at most len - 1 bytes in buf, NUL-terminated; returns how many
 * were kept. */
size_t rlab_test_read_all(int fd, char *buf, size_t len);

/* Sleeps; only for tests where the passing of time is what is tested. */
void rlab_test_sleep(double seconds);

/* ---- processes: the hygiene every process test checks, and fork children.
 * A child never calls ck_assert: it reports through its exit status. */

/* The number of open descriptors of this process (/proc/self/fd, not
 * counting the one that reads it). */
int rlab_test_fd_count(void);

/* Fails the test if this process has a child at all, running or a zombie
 * (a zombie found is reaped on the way). */
void rlab_test_assert_no_children(void);

/* Fails the test if a child exited and was not reaped; running children
 * (such as a forkserver that lives until exit) are allowed, and nothing is
 * reaped. */
void rlab_test_assert_no_zombies(void);

/* The scheduler state ('R', 'S' ...) of a process or thread id, or '?'. */
char rlab_test_task_state(long id);

/* fflush(NULL), then fork(); fails the test if fork fails.  The child gets
 * an alarm(60), so a hung child dies instead of hanging the test. */
pid_t rlab_test_fork(void);

/* Waits (within RLAB_GUARD) until one of the n children in pids exits,
 * reaps it, stores its wait status and returns its pid; fails the test if
 * none exits in time. */
pid_t rlab_test_reap_any(const pid_t *pids, int n, int *status);

/* rlab_test_reap_any for one child: returns its wait status. */
int rlab_test_reap(pid_t pid);

/* Reaps pid (within RLAB_GUARD) and fails unless it exited with `code`. */
void rlab_test_expect_exit(pid_t pid, int code);

/* Exit codes of fork children: 0 is success, the others say which check
 * of the child failed (the parent's message names it). */
#define CHILD_OK 0
#define CHILD_GUARD 90 /* a wait of the child hit its guard */
#define CHILD_CHECK(expr, code)                                                \
    do {                                                                       \
        if (!(expr))                                                           \
            _exit(code);                                                       \
    } while (0)

/* Children a test forked and has not reaped yet (at most 8), so that a
 * teardown can end them after a failed test: rlab_test_kid_fork forks and
 * remembers (rlab_test_kid_add remembers one started otherwise), rlab_test_kid_forget forgets (once reaped), and
 * rlab_test_kids_end SIGKILLs and reaps every one still remembered. */
pid_t rlab_test_kid_fork(void);
void rlab_test_kid_add(pid_t pid); /* a child started otherwise */
void rlab_test_kid_forget(pid_t pid);
void rlab_test_kids_end(void);

/* Polls until child `pid` sleeps in futex() (parked in a wait), so that a
 * wake-up test really wakes a sleeper; where /proc cannot tell, returns at
 * once.  Fails the test if the child never parks within RLAB_GUARD. */
void rlab_test_await_parked(pid_t pid);
/* In a child about to be killed: blocks (at most RLAB_GUARD). */
void rlab_test_child_linger(void);

#endif
