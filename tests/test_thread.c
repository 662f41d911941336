/* test_thread.c - threading.Thread: start, join, names, ids, exit joining. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlab_test.h"

/* A worker that blocks on `go` (if any), records what it sees of itself,
 * and returns `result`.  Fields written by the worker are read by the test
 * only after it joined the worker. */
typedef struct {
    rlab_event *go;
    rlab_thread *self; /* published by the test before go is set */
    void *result;
    int wait_rc;
    int self_join_rc, self_join_try_rc;
    char name[64];
    unsigned long ident;
    long native_id;
} worker;

static void *work(void *p)
{
    worker *w = p;
    if (w->go)
        w->wait_rc = rlab_event_wait(w->go, RLAB_GUARD);
    snprintf(w->name, sizeof w->name, "%s", rlab_current_thread_name());
    w->ident = rlab_get_ident();
    w->native_id = rlab_get_native_id();
    return w->result;
}

/* Returns N if s is exactly prefix followed by a decimal N >= 1, else -1. */
static long numbered(const char *s, const char *prefix)
{
    size_t len = strlen(prefix);
    if (strncmp(s, prefix, len) != 0 || !isdigit((unsigned char)s[len]))
        return -1;
    char *end;
    long n = strtol(s + len, &end, 10);
    if (*end != '\0' || n < 1)
        return -1;
    return n;
}

/* --------------------------------------------------------- start, join --- */

static void *double_it(void *p)
{
    long *x = p;
    *x *= 2;
    return (void *)((intptr_t)*x + 1);
}

START_TEST(start_runs_fn_with_arg_and_join_returns_its_result)
{
    long x = 21;
    rlab_thread *t = NULL;
    ck_assert_rc(rlab_thread_start(&t, NULL, double_it, &x, false), 0);
    ck_assert_ptr_nonnull(t);
    void *result = NULL;
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, &result), 0);
    ck_assert_int_eq(x, 42);
    ck_assert_int_eq((intptr_t)result, 43);
    rlab_thread_free(t);
}
END_TEST

START_TEST(join_accepts_a_null_result_pointer)
{
    worker w = {.result = &w};
    rlab_thread *t = rlab_test_spawn(work, &w);
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, NULL), 0);
    rlab_thread_free(t);
}
END_TEST

START_TEST(join_twice_returns_0_and_the_same_result_both_times)
{
    worker w = {.result = &w};
    rlab_thread *t = rlab_test_spawn(work, &w);
    void *r1 = NULL, *r2 = NULL;
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, &r1), 0);
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, &r2), 0);
    ck_assert_rc(rlab_thread_join(t, 0, NULL), 0);
    ck_assert_ptr_eq(r1, &w);
    ck_assert_ptr_eq(r2, &w);
    rlab_thread_free(t);
}
END_TEST

START_TEST(join_with_a_timeout_times_out_while_the_thread_runs)
{
    rlab_event *go = rlab_event_new();
    worker w = {.go = go, .result = &w};
    rlab_thread *t = rlab_test_spawn(work, &w);

    void *result = NULL;
    ck_assert_rc(rlab_thread_join(t, 0, &result), ETIMEDOUT);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_thread_join(t, 0.1, &result), ETIMEDOUT);
    double waited = rlab_test_now() - t0;
    ck_assert_msg(waited >= 0.09, "join(0.1) returned after %.3f s", waited);
    ck_assert_msg(waited < 5.0, "join(0.1) returned after %.3f s", waited);
    ck_assert_ptr_null(result);
    ck_assert(rlab_thread_is_alive(t));

    rlab_event_set(go);
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, &result), 0);
    ck_assert_ptr_eq(result, &w);
    ck_assert_rc(w.wait_rc, 0);
    rlab_thread_free(t);
    rlab_event_free(go);
}
END_TEST

START_TEST(is_alive_while_running_and_not_after_join)
{
    rlab_event *go = rlab_event_new();
    worker w = {.go = go};
    rlab_thread *t = rlab_test_spawn(work, &w);
    ck_assert(rlab_thread_is_alive(t));
    rlab_event_set(go);
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, NULL), 0);
    ck_assert(!rlab_thread_is_alive(t));
    rlab_thread_free(t);
    rlab_event_free(go);
}
END_TEST

/* ------------------------------------------------ concurrent and self --- */

typedef struct {
    rlab_thread *target;
    rlab_barrier *ready;
    int barrier_rc, try_rc, rc;
    void *result;
} joiner;

static void *join_target(void *p)
{
    joiner *j = p;
    j->try_rc = rlab_thread_join(j->target, 0, NULL);
    j->barrier_rc = rlab_barrier_wait(j->ready, RLAB_GUARD, NULL);
    j->rc = rlab_thread_join(j->target, RLAB_GUARD, &j->result);
    return NULL;
}

START_TEST(two_threads_can_join_the_same_thread_at_once)
{
    rlab_event *go = rlab_event_new();
    rlab_barrier *ready = rlab_barrier_new(3, NULL, NULL, RLAB_FOREVER);
    worker w = {.go = go, .result = &w};
    rlab_thread *target = rlab_test_spawn(work, &w);
    joiner j[2];
    rlab_thread *jt[2];
    for (int i = 0; i < 2; i++) {
        j[i] = (joiner){.target = target, .ready = ready};
        jt[i] = rlab_test_spawn(join_target, &j[i]);
    }
    /* Both joiners found the target running and are about to join it. */
    ck_assert_rc(rlab_barrier_wait(ready, RLAB_GUARD, NULL), 0);
    rlab_event_set(go);
    for (int i = 0; i < 2; i++) {
        rlab_test_join(jt[i]);
        ck_assert_rc(j[i].barrier_rc, 0);
        ck_assert_rc(j[i].try_rc, ETIMEDOUT);
        ck_assert_rc(j[i].rc, 0);
        ck_assert_ptr_eq(j[i].result, &w);
    }
    ck_assert(!rlab_thread_is_alive(target));
    ck_assert_ptr_eq(rlab_test_join(target), &w);
    rlab_barrier_free(ready);
    rlab_event_free(go);
}
END_TEST

static void *join_self(void *p)
{
    worker *w = p;
    w->wait_rc = rlab_event_wait(w->go, RLAB_GUARD);
    /* A broken check would wait on itself: keep that failure short. */
    w->self_join_try_rc = rlab_thread_join(w->self, 0, NULL);
    w->self_join_rc = rlab_thread_join(w->self, 1.0, NULL);
    return NULL;
}

START_TEST(a_thread_joining_itself_gets_edeadlk)
{
    rlab_event *go = rlab_event_new();
    worker w = {.go = go};
    rlab_thread *t = rlab_test_spawn(join_self, &w);
    w.self = t;
    rlab_event_set(go); /* publishes w.self */
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, NULL), 0);
    ck_assert_rc(w.wait_rc, 0);
    ck_assert_rc(w.self_join_try_rc, EDEADLK);
    ck_assert_rc(w.self_join_rc, EDEADLK);
    rlab_thread_free(t);
    rlab_event_free(go);
}
END_TEST

/* -------------------------------------------------------------- names --- */

START_TEST(unnamed_threads_get_distinct_thread_n_names)
{
    enum { N = 4 };
    worker w[N];
    rlab_thread *t[N];
    long n[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){0};
        ck_assert_rc(rlab_thread_start(&t[i], NULL, work, &w[i], false), 0);
        n[i] = numbered(rlab_thread_name(t[i]), "Thread-");
        ck_assert_msg(n[i] > 0, "unnamed thread is called \"%s\"",
                      rlab_thread_name(t[i]));
        for (int k = 0; k < i; k++)
            ck_assert_int_ne(n[i], n[k]);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_rc(rlab_thread_join(t[i], RLAB_GUARD, NULL), 0);
        /* The name is the one the thread sees as its own. */
        ck_assert_str_eq(w[i].name, rlab_thread_name(t[i]));
        rlab_thread_free(t[i]);
    }
}
END_TEST

START_TEST(a_given_name_is_kept_in_full_and_copied)
{
    char name[] = "a-thread-name-longer-than-fifteen-chars";
    worker w = {0};
    rlab_thread *t = NULL;
    ck_assert_rc(rlab_thread_start(&t, name, work, &w, false), 0);
    memset(name, 'x', sizeof name - 1); /* the caller's buffer may change */
    ck_assert_str_eq(rlab_thread_name(t),
                     "a-thread-name-longer-than-fifteen-chars");
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, NULL), 0);
    ck_assert_str_eq(w.name, "a-thread-name-longer-than-fifteen-chars");
    ck_assert_str_eq(rlab_thread_name(t),
                     "a-thread-name-longer-than-fifteen-chars");
    rlab_thread_free(t);
}
END_TEST

START_TEST(current_thread_name_inside_a_thread_is_its_name)
{
    worker w = {0};
    rlab_thread *t = NULL;
    ck_assert_rc(rlab_thread_start(&t, "worker-7", work, &w, false), 0);
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, NULL), 0);
    ck_assert_str_eq(w.name, "worker-7");
    rlab_thread_free(t);
}
END_TEST

START_TEST(current_thread_name_is_mainthread_on_the_main_thread)
{
    ck_assert_str_eq(rlab_current_thread_name(), "MainThread");
}
END_TEST

static void *plain_pthread(void *p)
{
    char *out = p;
    snprintf(out, 64, "%s", rlab_current_thread_name());
    /* Stable for the life of the thread. */
    if (strcmp(out, rlab_current_thread_name()) != 0)
        out[0] = '\0';
    return NULL;
}

START_TEST(a_plain_pthread_is_named_dummy_n)
{
    char name[2][64] = {{0}};
    for (int i = 0; i < 2; i++) {
        pthread_t pt;
        ck_assert_int_eq(pthread_create(&pt, NULL, plain_pthread, name[i]), 0);
        ck_assert_int_eq(pthread_join(pt, NULL), 0);
        ck_assert_msg(numbered(name[i], "Dummy-") > 0,
                      "a plain pthread is called \"%s\"", name[i]);
    }
    ck_assert_str_ne(name[0], name[1]);
    ck_assert_str_eq(rlab_current_thread_name(), "MainThread");
}
END_TEST

/* ---------------------------------------------------------------- ids --- */

START_TEST(ident_and_native_id_are_the_threads_own)
{
    rlab_event *go = rlab_event_new();
    worker w = {.go = go};
    rlab_thread *t = rlab_test_spawn(work, &w);
    /* Known as soon as start returns. */
    unsigned long ident = rlab_thread_ident(t);
    long native = rlab_thread_native_id(t);
    ck_assert_int_gt(native, 0);
    rlab_event_set(go);
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, NULL), 0);
    ck_assert_uint_eq(ident, w.ident);
    ck_assert_int_eq(native, w.native_id);
    ck_assert_uint_eq(rlab_thread_ident(t), w.ident);
    ck_assert_int_eq(rlab_thread_native_id(t), w.native_id);
    ck_assert_uint_ne(w.ident, rlab_get_ident());
    ck_assert_int_ne(w.native_id, rlab_get_native_id());
    ck_assert_uint_eq(rlab_get_ident(), (unsigned long)pthread_self());
    ck_assert_int_eq(rlab_get_native_id(), (long)gettid());
    rlab_thread_free(t);
    rlab_event_free(go);
}
END_TEST

/* ------------------------------------------------------ daemon, free --- */

START_TEST(the_daemon_flag_is_reported)
{
    worker w[2] = {{0}, {0}};
    rlab_thread *d = NULL, *nd = NULL;
    ck_assert_rc(rlab_thread_start(&d, NULL, work, &w[0], true), 0);
    ck_assert_rc(rlab_thread_start(&nd, NULL, work, &w[1], false), 0);
    ck_assert(rlab_thread_daemon(d));
    ck_assert(!rlab_thread_daemon(nd));
    rlab_test_join(d);
    rlab_test_join(nd);
}
END_TEST

typedef struct {
    rlab_event *go;
    int wait_rc;
    int done_fd;
} detached;

static void *run_detached(void *p)
{
    detached *d = p;
    d->wait_rc = rlab_event_wait(d->go, RLAB_GUARD);
    /* The pipe write is the thread's last touch of shared memory. */
    char c = d->wait_rc == 0 ? 'k' : 't';
    ssize_t n = write(d->done_fd, &c, 1);
    (void)n;
    return NULL;
}

START_TEST(freeing_a_running_thread_detaches_it_and_it_runs_to_the_end)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    rlab_event *go = rlab_event_new();
    detached d = {.go = go, .done_fd = fds[1]};
    for (int daemon = 0; daemon < 2; daemon++) {
        rlab_thread *t = NULL;
        ck_assert_rc(rlab_thread_start(&t, NULL, run_detached, &d, daemon), 0);
        rlab_thread_free(t); /* still blocked on go */
        rlab_event_set(go);
        char c = 0;
        ck_assert_int_eq(read(fds[0], &c, 1), 1);
        ck_assert_int_eq(c, 'k');
        rlab_event_clear(go);
    }
    close(fds[0]);
    close(fds[1]);
    rlab_event_free(go);
}
END_TEST

static void *exits_early(void *p)
{
    (void)p;
    pthread_exit((void *)0x1);
    return (void *)0x2;
}

START_TEST(a_thread_that_calls_pthread_exit_still_ends_and_can_be_joined)
{
    rlab_thread *t = rlab_test_spawn(exits_early, NULL);
    void *result = (void *)0x3;
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, &result), 0);
    ck_assert_ptr_null(result); /* unwound: the function returned nothing */
    ck_assert(!rlab_thread_is_alive(t));
    rlab_thread_free(t);
}
END_TEST

START_TEST(bad_arguments_are_einval)
{
    rlab_thread *t = NULL;
    worker w = {0};
    ck_assert_rc(rlab_thread_start(NULL, NULL, work, &w, false), EINVAL);
    ck_assert_rc(rlab_thread_start(&t, NULL, NULL, &w, false), EINVAL);
    ck_assert_rc(rlab_thread_join(NULL, RLAB_GUARD, NULL), EINVAL);
    ck_assert_rc(rlab_thread_start(&t, "ok", work, &w, false), 0);
    ck_assert_rc(rlab_thread_join(t, NAN, NULL), EINVAL);
    ck_assert_rc(rlab_thread_join(t, -0.5, NULL), EINVAL);
    ck_assert_rc(rlab_thread_join(t, -INFINITY, NULL), EINVAL);
    ck_assert_rc(rlab_thread_join(t, INFINITY, NULL), 0);
    rlab_thread_free(t);
    ck_assert(!rlab_thread_is_alive(NULL));
    ck_assert(!rlab_thread_daemon(NULL));
    ck_assert_ptr_null(rlab_thread_name(NULL));
    ck_assert_uint_eq(rlab_thread_ident(NULL), 0);
    ck_assert_int_eq(rlab_thread_native_id(NULL), 0);
    rlab_thread_free(NULL);
}
END_TEST

/* ----------------------------------------------------- exit() joining --- */

/* The child keeps its handle and event in globals: reachable at exit, so
 * LeakSanitizer in the child has nothing to report. */
static rlab_thread *child_thread;
static rlab_event *child_never;
static int child_fd;
static double child_delay;

static void *late_writer(void *p)
{
    (void)p;
    /* Time passing is the point: the thread is still running at exit(). */
    if (rlab_event_wait(child_never, child_delay) == ETIMEDOUT) {
        ssize_t n = write(child_fd, "done", 4);
        (void)n;
    }
    return NULL;
}

typedef struct {
    char out[16];
    size_t len;
    int status;
    double seconds; /* from fork to EOF on the pipe */
} child_run;

/* Forks a child that starts late_writer (daemon or not, its handle kept or
 * freed) and calls exit(0) at once; reads the pipe to EOF. */
static child_run run_child(bool daemon, bool free_handle, double delay)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    double t0 = rlab_test_now();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_fd = fds[1];
        child_delay = delay;
        child_never = rlab_event_new();
        if (!child_never || rlab_thread_start(&child_thread, "late",
                                              late_writer, NULL, daemon) != 0)
            _exit(3);
        if (free_handle) {
            rlab_thread_free(child_thread);
            child_thread = NULL;
        }
        exit(0);
    }
    close(fds[1]);
    child_run r = {0};
    for (;;) {
        ssize_t n = read(fds[0], r.out + r.len, sizeof r.out - 1 - r.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r.len += (size_t)n;
    }
    r.seconds = rlab_test_now() - t0;
    close(fds[0]);
    pid_t w;
    do
        w = waitpid(pid, &r.status, 0);
    while (w < 0 && errno == EINTR);
    ck_assert_int_eq(w, pid);
    return r;
}

static void assert_exited_cleanly(const child_run *r)
{
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                  "child status %#x (signal %d)", r->status,
                  WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0);
}

START_TEST(non_daemon_threads_are_joined_before_exit)
{
    child_run r = run_child(false, false, 0.2);
    assert_exited_cleanly(&r);
    ck_assert_str_eq(r.out, "done");
    ck_assert_msg(r.seconds >= 0.15, "child exited after %.3f s", r.seconds);
}
END_TEST

START_TEST(detached_non_daemon_threads_are_joined_before_exit)
{
    child_run r = run_child(false, true, 0.2);
    assert_exited_cleanly(&r);
    ck_assert_str_eq(r.out, "done");
}
END_TEST

START_TEST(daemon_threads_do_not_delay_exit)
{
    child_run r = run_child(true, false, 5.0);
    assert_exited_cleanly(&r);
    ck_assert_str_eq(r.out, "");
    ck_assert_msg(r.seconds < 3.0, "child took %.3f s to exit", r.seconds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("thread");

    /* First, while the process has no other thread: with CK_FORK=no (the
     * sanitizer builds) the forked child is then single-threaded. */
    TCase *tc = tcase_create("exit");
    tcase_add_test(tc, non_daemon_threads_are_joined_before_exit);
    tcase_add_test(tc, detached_non_daemon_threads_are_joined_before_exit);
    tcase_add_test(tc, daemon_threads_do_not_delay_exit);
    suite_add_tcase(s, tc);

    tc = tcase_create("start_join");
    tcase_add_test(tc, start_runs_fn_with_arg_and_join_returns_its_result);
    tcase_add_test(tc, join_accepts_a_null_result_pointer);
    tcase_add_test(tc, join_twice_returns_0_and_the_same_result_both_times);
    tcase_add_test(tc, join_with_a_timeout_times_out_while_the_thread_runs);
    tcase_add_test(tc, is_alive_while_running_and_not_after_join);
    tcase_add_test(tc, two_threads_can_join_the_same_thread_at_once);
    tcase_add_test(tc, a_thread_joining_itself_gets_edeadlk);
    tcase_add_test(tc, a_thread_that_calls_pthread_exit_still_ends_and_can_be_joined);
    tcase_add_test(tc, bad_arguments_are_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("identity");
    tcase_add_test(tc, unnamed_threads_get_distinct_thread_n_names);
    tcase_add_test(tc, a_given_name_is_kept_in_full_and_copied);
    tcase_add_test(tc, current_thread_name_inside_a_thread_is_its_name);
    tcase_add_test(tc, current_thread_name_is_mainthread_on_the_main_thread);
    tcase_add_test(tc, a_plain_pthread_is_named_dummy_n);
    tcase_add_test(tc, ident_and_native_id_are_the_threads_own);
    tcase_add_test(tc, the_daemon_flag_is_reported);
    tcase_add_test(tc,
                   freeing_a_running_thread_detaches_it_and_it_runs_to_the_end);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
