/*
 * test_process.c - multiprocessing.Process and the start methods.
 *
 * The behaviours of CPython's _test_multiprocessing.py (_TestProcess:
 * test_process, test_terminate, test_kill, test_exitcode, test_child_fd,
 * the daemon cleanup at exit, current_process and parent_process) for each
 * start method, plus the task registry and racelab's C conventions.
 *
 * This binary is also every spawn child and the forkserver: main()
 * registers the tasks and calls rlab_mp_main() before anything else.
 *
 * Hygiene, checked after every test by the fixture: no zombie child is
 * left (waitid with WNOWAIT finds none) and the number of open fds is back
 * where it was.  The fixture starts the forkserver before it counts, so
 * the server's socket is part of the baseline.
 *
 * Children never call ck_assert: they report through their exit code or a
 * connection, and the test asserts.  A child that must be inside its task
 * before the test goes on says "ready" over a connection first.
 *
 * Under ThreadSanitizer every test runs.  Spawn children and the
 * forkserver are fresh programs, and the forkserver stays single-threaded.
 * A fork child of a multi-threaded parent is what TSan cannot follow when
 * the child goes on to start threads; these fork children never do (they
 * run a short task and _exit), so even the test that forks while another
 * thread runs is kept under tsan.
 */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "racelab/multiprocessing.h"
#include "rlab_test.h"

static const rlab_start_method methods[] = {RLAB_START_FORK, RLAB_START_SPAWN,
                                            RLAB_START_FORKSERVER};
#define NMETHODS 3

/* ------------------------------------------------------------- helpers --- */

static int fd_base;

static int exit_with(void *arg, void **result);

static rlab_process *make(rlab_task_fn fn, const void *arg, size_t len,
                          rlab_start_method m, rlab_conn *const *conns,
                          size_t nconns)
{
    rlab_process_opts o = {.method = m, .conns = conns, .nconns = nconns};
    rlab_process *p = rlab_process_new(fn, arg, len, &o);
    ck_assert_msg(p != NULL, "rlab_process_new: %s", rlab_strerror(errno));
    return p;
}

/* Starts fn(arg) with method m, joins it and returns its exit code. */
static int run(rlab_task_fn fn, const void *arg, size_t len,
               rlab_start_method m, rlab_conn *const *conns, size_t nconns)
{
    rlab_process *p = make(fn, arg, len, m, conns, nconns);
    ck_assert_rc(rlab_process_start(p), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    int code = -1000;
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    rlab_process_free(p);
    return code;
}

static void setup(void)
{
    /* The forkserver's socket and the server itself live from the first
     * forkserver start to exit: start it before the baseline. */
    int zero = 0;
    ck_assert_int_eq(
        run(exit_with, &zero, sizeof zero, RLAB_START_FORKSERVER, NULL, 0), 0);
    fd_base = rlab_test_fd_count();
}

static void teardown(void)
{
    rlab_test_assert_no_zombies();
    ck_assert_int_eq(rlab_test_fd_count(), fd_base);
}

static void recv_expect(rlab_conn *c, const char *want)
{
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(c, RLAB_GUARD, &data, &len), 0);
    ck_assert_msg(len == strlen(want) && memcmp(data, want, len) == 0,
                  "got \"%.*s\", want \"%s\"", (int)len, (char *)data, want);
    free(data);
}

static void say(rlab_conn *c, const char *s)
{
    rlab_conn_send(c, s, strlen(s));
}

/* --------------------------------------------------------------- tasks --- */

/* Returns the int in arg. */
static int exit_with(void *arg, void **result)
{
    (void)result;
    rlab_bytes *b = arg;
    int code;
    if (b->len != sizeof code)
        return 99;
    memcpy(&code, b->data, sizeof code);
    return code;
}

/* A fork child inherits the test process's signal handlers, and Check's
 * SIGTERM handler forwards the signal to the whole process group: the
 * tasks that are meant to die by SIGTERM restore the default first (spawn
 * and forkserver children start with it). */
static void default_sigterm(void)
{
    signal(SIGTERM, SIG_DFL);
}

/* Says "ready" on conn 0 (if any), then blocks until a signal ends it. */
static int block(void *arg, void **result)
{
    (void)arg;
    (void)result;
    default_sigterm();
    if (rlab_process_conn(0))
        say(rlab_process_conn(0), "ready");
    for (;;)
        pause();
    return 0;
}

/* Sends its parent's pid (for a forkserver child: the server's) on conn 0,
 * then blocks. */
static int block_report_ppid(void *arg, void **result)
{
    (void)arg;
    (void)result;
    default_sigterm();
    char buf[32];
    snprintf(buf, sizeof buf, "%d", (int)getppid());
    say(rlab_process_conn(0), buf);
    for (;;)
        pause();
    return 0;
}

/* Waits for one message on conn 0; 0 if it came. */
static int wait_msg(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *data = NULL;
    size_t len;
    if (rlab_process_conn(1))
        say(rlab_process_conn(1), "ready");
    int rc = rlab_conn_recv(rlab_process_conn(0), RLAB_GUARD, &data, &len);
    free(data);
    return rc == 0 ? 0 : 5;
}

/* The pattern a large argument carries: its length, then bytes derived
 * from their offset. */
static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 131u + (i >> 8) * 7u + 3u) & 0xff);
}

static rlab_bytes *make_pattern(size_t n)
{
    unsigned char *buf = malloc(n + sizeof(uint64_t));
    ck_assert_ptr_nonnull(buf);
    uint64_t len = n;
    memcpy(buf, &len, sizeof len);
    for (size_t i = 0; i < n; i++)
        buf[sizeof len + i] = pattern(i);
    rlab_bytes *b = rlab_bytes_new(buf, n + sizeof len);
    free(buf);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* 0 if arg is exactly the pattern, 3 if not. */
static int check_arg(void *arg, void **result)
{
    (void)result;
    rlab_bytes *b = arg;
    uint64_t n;
    if (b->len < sizeof n)
        return 3;
    memcpy(&n, b->data, sizeof n);
    if (n != b->len - sizeof n)
        return 3;
    for (size_t i = 0; i < n; i++)
        if (b->data[sizeof n + i] != pattern(i))
            return 3;
    /* The result, if set, is the child's to drop. */
    *result = rlab_bytes_new("ignored", 7);
    return 0;
}

/* Reports "name|pid|parent pid|grandchild's default name" on conn 0. */
static int whoami(void *arg, void **result)
{
    (void)arg;
    (void)result;
    rlab_process *g = rlab_process_new(exit_with, NULL, 0, NULL);
    char buf[512];
    snprintf(buf, sizeof buf, "%s|%d|%d|%s", rlab_current_process_name(),
             (int)rlab_current_pid(), (int)rlab_parent_pid(),
             g ? rlab_process_name(g) : "?");
    rlab_process_free(g);
    say(rlab_process_conn(0), buf);
    return rlab_process_conn(1) == NULL ? 0 : 4;
}

/* Echoes each message on conn 0 back with a "re:" prefix until "bye" (a
 * fork child holds a copy of the parent's end too, so it would never see
 * EOF). */
static int echo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    rlab_conn *c = rlab_process_conn(0);
    for (;;) {
        void *data = NULL;
        size_t len;
        int rc = rlab_conn_recv(c, RLAB_GUARD, &data, &len);
        if (rc)
            return 6;
        if (len == 3 && memcmp(data, "bye", 3) == 0) {
            free(data);
            return 0;
        }
        char *out = malloc(len + 3);
        memcpy(out, "re:", 3);
        memcpy(out + 3, data, len);
        rc = rlab_conn_send(c, out, len + 3);
        free(out);
        free(data);
        if (rc)
            return 7;
    }
}

/* The start method a task got as its arg. */
static rlab_start_method method_arg(void *arg)
{
    rlab_start_method m;
    memcpy(&m, ((rlab_bytes *)arg)->data, sizeof m);
    return m;
}

/* The exit-time scenario: the arg is the start method.  Conn 0 is a
 * write-only end the test reads; two daemon children inherit it, one
 * whose handle this process keeps and one whose handle it frees, and both
 * block.  Then this task returns: the exit handler must terminate both,
 * which closes the test's last writers. */
static int leave_daemons(void *arg, void **result)
{
    (void)result;
    rlab_start_method m = method_arg(arg);
    rlab_conn *w = rlab_process_conn(0);
    default_sigterm(); /* before the daemons inherit it */
    rlab_process_opts o = {
        .method = m, .daemon = true, .conns = &w, .nconns = 1};
    rlab_process *kept = rlab_process_new(block, NULL, 0, &o);
    rlab_process *freed = rlab_process_new(block, NULL, 0, &o);
    if (!kept || !freed || rlab_process_start(kept) ||
        rlab_process_start(freed))
        return 20;
    rlab_process_free(freed);
    rlab_conn_close(w);
    return 0;
}

/* Conn 0 is the test's message channel, conn 1 a readiness channel; a
 * non-daemon child gets both, this task frees its handle and returns: the
 * exit handler must wait for that child. */
static int leave_non_daemon(void *arg, void **result)
{
    (void)result;
    rlab_start_method m = method_arg(arg);
    rlab_conn *c[2] = {rlab_process_conn(0), rlab_process_conn(1)};
    rlab_process_opts o = {.method = m, .conns = c, .nconns = 2};
    rlab_process *p = rlab_process_new(wait_msg, NULL, 0, &o);
    if (!p || rlab_process_start(p))
        return 20;
    rlab_process_free(p);
    rlab_conn_close(c[0]);
    rlab_conn_close(c[1]);
    return 0;
}

/* Adds 10 to the shared Value whose address is the arg: the address is
 * valid in every process of the family. */
static int add_ten(void *arg, void **result)
{
    (void)result;
    rlab_bytes *b = arg;
    rlab_value *v;
    if (b->len != sizeof v)
        return 30;
    memcpy(&v, b->data, sizeof v);
    return rlab_value_add_long(v, 10, NULL) == 0 ? 0 : 31;
}

static int unregistered(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

/* ---------------------------------------------------------- exit codes --- */

START_TEST(exitcode_is_the_tasks_return_value)
{
    rlab_start_method m = methods[_i];
    const int codes[][2] = {{0, 0},   {7, 7},    {42, 42}, {255, 255},
                            {256, 1}, {1000, 1}, {-3, 1}};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        int got = run(exit_with, &codes[i][0], sizeof(int), m, NULL, 0);
        ck_assert_msg(got == codes[i][1], "%s: task returned %d, exitcode %d",
                      rlab_start_method_name(m), codes[i][0], got);
    }
}
END_TEST

/* Starts `block` with a readiness connection and waits for "ready". */
static rlab_process *start_blocked(rlab_start_method m, bool daemon)
{
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    rlab_process_opts o = {
        .method = m, .daemon = daemon, .conns = &w, .nconns = 1};
    rlab_process *p = rlab_process_new(block, NULL, 0, &o);
    ck_assert_ptr_nonnull(p);
    ck_assert_rc(rlab_process_start(p), 0);
    rlab_conn_close(w);
    recv_expect(r, "ready");
    rlab_conn_close(r);
    return p;
}

START_TEST(terminate_ends_a_blocked_child_with_minus_sigterm)
{
    rlab_process *p = start_blocked(methods[_i], false);
    ck_assert(rlab_process_is_alive(p));
    int code;
    ck_assert_rc(rlab_process_exitcode(p, &code), EAGAIN);
    ck_assert_rc(rlab_process_terminate(p), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    ck_assert(!rlab_process_is_alive(p));
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    ck_assert_int_eq(code, -SIGTERM);
    /* Signalling an ended child is fine and changes nothing. */
    ck_assert_rc(rlab_process_terminate(p), 0);
    ck_assert_rc(rlab_process_kill(p), 0);
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    ck_assert_int_eq(code, -SIGTERM);
    rlab_process_free(p);
}
END_TEST

START_TEST(kill_ends_a_blocked_child_with_minus_sigkill)
{
    rlab_process *p = start_blocked(methods[_i], false);
    ck_assert_rc(rlab_process_kill(p), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    int code;
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    ck_assert_int_eq(code, -SIGKILL);
    rlab_process_free(p);
}
END_TEST

START_TEST(join_with_a_timeout_times_out_while_the_child_runs)
{
    rlab_process *p = start_blocked(methods[_i], false);
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_process_join(p, 0.2), ETIMEDOUT);
    double took = rlab_test_now() - t0;
    ck_assert_msg(took >= 0.19 && took < RLAB_GUARD / 2, "took %.3f s", took);
    ck_assert_rc(rlab_process_join(p, 0), ETIMEDOUT);
    ck_assert(rlab_process_is_alive(p));
    ck_assert_rc(rlab_process_kill(p), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    /* join after the end returns at once, any number of times. */
    ck_assert_rc(rlab_process_join(p, 0), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_FOREVER), 0);
    rlab_process_free(p);
}
END_TEST

/* _TestProcess.test_many_processes: many children alive at once, some
 * ending by themselves and some terminated, each with its own code. */
START_TEST(many_children_at_once_each_get_their_own_exit_code)
{
    enum { N = 24 };
    rlab_process *p[N];
    int want[N];
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            p[i] = start_blocked(methods[_i], false);
            want[i] = i % 4 == 1 ? -SIGTERM : -SIGKILL;
        } else {
            int code = i;
            p[i] = make(exit_with, &code, sizeof code, methods[_i], NULL, 0);
            ck_assert_rc(rlab_process_start(p[i]), 0);
            want[i] = i;
        }
    }
    for (int i = 1; i < N; i += 2)
        ck_assert_rc(want[i] == -SIGTERM ? rlab_process_terminate(p[i])
                                         : rlab_process_kill(p[i]),
                     0);
    for (int i = N - 1; i >= 0; i--) {
        ck_assert_rc(rlab_process_join(p[i], RLAB_GUARD), 0);
        int code;
        ck_assert_rc(rlab_process_exitcode(p[i], &code), 0);
        ck_assert_int_eq(code, want[i]);
        rlab_process_free(p[i]);
    }
}
END_TEST

/* ------------------------------------------------------------ lifecycle --- */

START_TEST(is_alive_is_false_before_start_and_after_join)
{
    int seven = 7;
    rlab_process *p =
        make(exit_with, &seven, sizeof seven, methods[_i], NULL, 0);
    ck_assert(!rlab_process_is_alive(p));
    ck_assert_int_eq(rlab_process_pid(p), 0);
    ck_assert_rc(rlab_process_start(p), 0);
    ck_assert_int_gt(rlab_process_pid(p), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    ck_assert(!rlab_process_is_alive(p));
    int code;
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    ck_assert_int_eq(code, 7);
    rlab_process_free(p);
}
END_TEST

START_TEST(calls_before_start_are_eperm_or_eagain)
{
    rlab_process *p = make(exit_with, NULL, 0, methods[_i], NULL, 0);
    int code = 12345;
    ck_assert_rc(rlab_process_exitcode(p, &code), EAGAIN);
    ck_assert_int_eq(code, 12345);
    ck_assert_rc(rlab_process_join(p, 0), EPERM);
    ck_assert_rc(rlab_process_terminate(p), EPERM);
    ck_assert_rc(rlab_process_kill(p), EPERM);
    ck_assert_rc(rlab_process_join(p, -2.0), EINVAL);
    ck_assert_rc(rlab_process_join(p, NAN), EINVAL);
    rlab_process_free(p); /* never started: nothing to reap */
}
END_TEST

START_TEST(starting_twice_is_eperm)
{
    int zero = 0;
    rlab_process *p = make(exit_with, &zero, sizeof zero, methods[_i], NULL, 0);
    ck_assert_rc(rlab_process_start(p), 0);
    ck_assert_rc(rlab_process_start(p), EPERM);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    ck_assert_rc(rlab_process_start(p), EPERM);
    rlab_process_free(p);
}
END_TEST

START_TEST(bad_arguments_are_einval)
{
    errno = 0;
    ck_assert_ptr_null(rlab_process_new(unregistered, NULL, 0, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_process_new(NULL, NULL, 0, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(rlab_process_new(exit_with, NULL, 4, NULL));
    ck_assert_int_eq(errno, EINVAL);
    rlab_process_opts o = {.method = (rlab_start_method)42};
    errno = 0;
    ck_assert_ptr_null(rlab_process_new(exit_with, NULL, 0, &o));
    ck_assert_int_eq(errno, EINVAL);
    o = (rlab_process_opts){.nconns = 1};
    errno = 0;
    ck_assert_ptr_null(rlab_process_new(exit_with, NULL, 0, &o));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_rc(rlab_process_start(NULL), EINVAL);
    ck_assert_rc(rlab_process_join(NULL, 1), EINVAL);
    ck_assert_rc(rlab_process_terminate(NULL), EINVAL);
    int code;
    ck_assert_rc(rlab_process_exitcode(NULL, &code), EINVAL);
    ck_assert(!rlab_process_is_alive(NULL));
    rlab_process_free(NULL);
}
END_TEST

START_TEST(names_default_to_process_n_and_daemon_is_kept)
{
    rlab_process *a = make(exit_with, NULL, 0, RLAB_START_DEFAULT, NULL, 0);
    rlab_process *b = make(exit_with, NULL, 0, RLAB_START_DEFAULT, NULL, 0);
    const char *na = rlab_process_name(a), *nb = rlab_process_name(b);
    ck_assert_msg(strncmp(na, "Process-", 8) == 0, "%s", na);
    ck_assert_int_eq(atoi(nb + 8), atoi(na + 8) + 1);
    ck_assert(!rlab_process_daemon(a));
    rlab_process_free(a);
    rlab_process_free(b);
    char name[100];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    rlab_process_opts o = {.name = name, .daemon = true};
    rlab_process *c = rlab_process_new(exit_with, NULL, 0, &o);
    ck_assert_ptr_nonnull(c);
    name[0] = 'y'; /* copied */
    ck_assert_str_eq(rlab_process_name(c) + 1, name + 1);
    ck_assert_int_eq(rlab_process_name(c)[0], 'x');
    ck_assert(rlab_process_daemon(c));
    rlab_process_free(c);
}
END_TEST

/* ------------------------------------------------------ what the child sees */

START_TEST(each_method_runs_the_task)
{
    int code = 42;
    ck_assert_int_eq(run(exit_with, &code, sizeof code, methods[_i], NULL, 0),
                     42);
}
END_TEST

START_TEST(arg_bytes_arrive_intact_small_empty_and_one_mib)
{
    const size_t sizes[] = {0, 1, 1000, 65536 + 17, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        rlab_bytes *b = make_pattern(sizes[i]);
        int got = run(check_arg, b->data, b->len, methods[_i], NULL, 0);
        ck_assert_msg(got == 0, "%s: %zu bytes: exit code %d",
                      rlab_start_method_name(methods[_i]), sizes[i], got);
        rlab_bytes_free(b);
    }
}
END_TEST

START_TEST(the_child_knows_its_name_pid_and_parent)
{
    ck_assert_str_eq(rlab_current_process_name(), "MainProcess");
    ck_assert_int_eq(rlab_parent_pid(), 0);
    ck_assert_int_eq(rlab_current_pid(), getpid());
    ck_assert_ptr_null(rlab_process_conn(0));
    for (int named = 0; named < 2; named++) {
        rlab_conn *r, *w;
        ck_assert_rc(rlab_pipe(false, &r, &w), 0);
        rlab_process_opts o = {.method = methods[_i],
                               .conns = &w,
                               .nconns = 1,
                               .name = named ? "worker" : NULL};
        rlab_process *p = rlab_process_new(whoami, NULL, 0, &o);
        ck_assert_ptr_nonnull(p);
        ck_assert_rc(rlab_process_start(p), 0);
        rlab_conn_close(w);
        char want[512];
        /* A child's children are numbered under its own identity, as
         * Python's Process-1:1, whatever the child's name. */
        const char *ident = strchr(rlab_process_name(p), '-');
        snprintf(want, sizeof want, "%s|%d|%d|Process-%s:1",
                 rlab_process_name(p), (int)rlab_process_pid(p), (int)getpid(),
                 named ? "?" : ident + 1);
        void *data = NULL;
        size_t len;
        ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), 0);
        char *got = malloc(len + 1);
        memcpy(got, data, len);
        got[len] = '\0';
        free(data);
        if (named) {
            /* the identity is not in the name: compare up to it */
            char *bar = strrchr(got, '|');
            ck_assert_ptr_nonnull(bar);
            ck_assert_msg(strncmp(bar + 1, "Process-", 8) == 0, "%s", got);
            strcpy(bar + 1, "Process-?:1");
        }
        ck_assert_str_eq(got, want);
        free(got);
        ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
        int code;
        ck_assert_rc(rlab_process_exitcode(p, &code), 0);
        ck_assert_int_eq(code, 0);
        rlab_process_free(p);
        rlab_conn_close(r);
    }
}
END_TEST

START_TEST(a_conn_passed_to_the_child_carries_messages_both_ways)
{
    rlab_conn *a, *b;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    rlab_process *p = make(echo, NULL, 0, methods[_i], &b, 1);
    ck_assert_rc(rlab_process_start(p), 0);
    /* The parent keeps its handle; closing it lets the child see EOF. */
    rlab_conn_close(b);
    for (int i = 0; i < 3; i++) {
        char msg[32], want[40];
        snprintf(msg, sizeof msg, "hello %d", i);
        snprintf(want, sizeof want, "re:%s", msg);
        ck_assert_rc(rlab_conn_send(a, msg, strlen(msg)), 0);
        recv_expect(a, want);
    }
    say(a, "bye");
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    rlab_conn_close(a);
    int code;
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    ck_assert_int_eq(code, 0);
    rlab_process_free(p);
}
END_TEST

static void *wait_for_event(void *arg)
{
    rlab_event_wait(arg, RLAB_GUARD);
    return NULL;
}

START_TEST(a_child_starts_while_another_thread_runs)
{
    rlab_event *go = rlab_event_new();
    ck_assert_ptr_nonnull(go);
    rlab_thread *t = rlab_test_spawn(wait_for_event, go);
    int code = 9;
    ck_assert_int_eq(run(exit_with, &code, sizeof code, methods[_i], NULL, 0),
                     9);
    rlab_event_set(go);
    rlab_test_join(t);
    rlab_event_free(go);
}
END_TEST

START_TEST(a_shared_value_made_before_start_is_shared_with_the_child)
{
    rlab_value *v = rlab_value_new(sizeof(long));
    ck_assert_ptr_nonnull(v);
    /* The arena's fd lives until exit: count it in the baseline. */
    fd_base = rlab_test_fd_count();
    ck_assert_rc(rlab_value_set_long(v, 5), 0);
    ck_assert_int_eq(run(add_ten, &v, sizeof v, methods[_i], NULL, 0), 0);
    ck_assert_int_eq(run(add_ten, &v, sizeof v, methods[_i], NULL, 0), 0);
    long x = 0;
    ck_assert_rc(rlab_value_get_long(v, &x), 0);
    ck_assert_int_eq(x, 25);
    rlab_value_free(v);
}
END_TEST

/* -------------------------------------------------------- exit handling --- */

START_TEST(daemon_children_are_terminated_when_the_parent_exits)
{
    rlab_start_method m = methods[_i];
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    int rc = run(leave_daemons, &m, sizeof m, m, &w, 1);
    ck_assert_int_eq(rc, 0);
    rlab_conn_close(w);
    /* The helper has exited, so its exit handler has run: both daemons are
     * gone and with them the last writers.  Each may have said "ready"
     * before it was terminated; then comes EOF, at once. */
    for (int i = 0;; i++) {
        void *data;
        size_t len;
        int rc = rlab_conn_recv(r, 0, &data, &len);
        if (rc == RLAB_EEOF)
            break;
        ck_assert_rc(rc, 0);
        ck_assert_int_lt(i, 2);
        free(data);
    }
    rlab_conn_close(r);
}
END_TEST

START_TEST(non_daemon_children_are_joined_when_the_parent_exits)
{
    rlab_start_method m = methods[_i];
    rlab_conn *mr, *mw, *rr, *rw;
    ck_assert_rc(rlab_pipe(false, &mr, &mw), 0);
    ck_assert_rc(rlab_pipe(false, &rr, &rw), 0);
    rlab_conn *c[2] = {mr, rw};
    rlab_process *h = make(leave_non_daemon, &m, sizeof m, m, c, 2);
    ck_assert_rc(rlab_process_start(h), 0);
    rlab_conn_close(mr);
    rlab_conn_close(rw);
    /* The grandchild runs; the helper's task returns at once but its exit
     * handler waits for the grandchild, which waits for us. */
    recv_expect(rr, "ready");
    ck_assert_rc(rlab_process_join(h, 0.5), ETIMEDOUT);
    ck_assert(rlab_process_is_alive(h));
    say(mw, "go");
    ck_assert_rc(rlab_process_join(h, RLAB_GUARD), 0);
    int code;
    ck_assert_rc(rlab_process_exitcode(h, &code), 0);
    ck_assert_int_eq(code, 0);
    /* The grandchild was reaped before the helper ended. */
    void *data;
    size_t len;
    ck_assert_rc(rlab_conn_recv(rr, 0, &data, &len), RLAB_EEOF);
    rlab_process_free(h);
    rlab_conn_close(mw);
    rlab_conn_close(rr);
}
END_TEST

START_TEST(a_freed_child_that_exited_is_reaped_by_the_next_start)
{
    rlab_start_method m = methods[_i];
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    rlab_process *p = make(wait_msg, NULL, 0, m, &r, 1);
    ck_assert_rc(rlab_process_start(p), 0);
    rlab_conn_close(r);
    pid_t pid = rlab_process_pid(p);
    rlab_process_free(p); /* running: handed to the exit-time registry */
    say(w, "go");
    rlab_conn_close(w);
    /* Wait until it is a zombie, without reaping it. */
    siginfo_t si;
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    int zero = 0;
    ck_assert_int_eq(run(exit_with, &zero, sizeof zero, m, NULL, 0), 0);
    /* the fixture checks that no zombie and no fd is left */
}
END_TEST

START_TEST(a_forkserver_child_outlives_a_killed_server)
{
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    rlab_process *p =
        make(block_report_ppid, NULL, 0, RLAB_START_FORKSERVER, &w, 1);
    ck_assert_rc(rlab_process_start(p), 0);
    rlab_conn_close(w);
    void *data;
    size_t len;
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), 0);
    char buf[32] = {0};
    memcpy(buf, data, len < sizeof buf - 1 ? len : sizeof buf - 1);
    free(data);
    rlab_conn_close(r);
    pid_t server = (pid_t)atoi(buf);
    ck_assert_int_gt(server, 1);
    ck_assert_int_ne(server, getpid());
    ck_assert_int_eq(kill(server, SIGKILL), 0);
    /* The child runs on without its reaper, and can still be signalled and
     * joined; its real exit status died with the server: 1. */
    ck_assert(rlab_process_is_alive(p));
    ck_assert_rc(rlab_process_kill(p), 0);
    ck_assert_rc(rlab_process_join(p, RLAB_GUARD), 0);
    int code;
    ck_assert_rc(rlab_process_exitcode(p, &code), 0);
    ck_assert_int_eq(code, 1);
    rlab_process_free(p);
    /* The next start finds the server gone, reaps it and starts another. */
    int zero = 0;
    ck_assert_int_eq(
        run(exit_with, &zero, sizeof zero, RLAB_START_FORKSERVER, NULL, 0), 0);
}
END_TEST

/* ---------------------------------------------------------- start methods */

START_TEST(the_default_start_method_is_forkserver_and_can_be_set)
{
    ck_assert_int_eq(rlab_get_start_method(), RLAB_START_FORKSERVER);
    ck_assert_str_eq(rlab_start_method_name(RLAB_START_FORK), "fork");
    ck_assert_str_eq(rlab_start_method_name(RLAB_START_SPAWN), "spawn");
    ck_assert_str_eq(rlab_start_method_name(RLAB_START_FORKSERVER),
                     "forkserver");
    ck_assert_str_eq(rlab_start_method_name(RLAB_START_DEFAULT), "forkserver");
    ck_assert_rc(rlab_set_start_method((rlab_start_method)9), EINVAL);
    ck_assert_rc(rlab_set_start_method(RLAB_START_SPAWN), 0);
    ck_assert_int_eq(rlab_get_start_method(), RLAB_START_SPAWN);
    int code = 3;
    ck_assert_int_eq(
        run(exit_with, &code, sizeof code, RLAB_START_DEFAULT, NULL, 0), 3);
    ck_assert_rc(rlab_set_start_method(RLAB_START_DEFAULT), 0);
    ck_assert_int_eq(rlab_get_start_method(), RLAB_START_FORKSERVER);
}
END_TEST

/* ------------------------------------------------------ bytes and tasks --- */

START_TEST(bytes_are_copied_and_may_be_empty)
{
    rlab_bytes *e = rlab_bytes_new(NULL, 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->len, 0);
    rlab_bytes_free(e);
    char src[] = "abc";
    rlab_bytes *b = rlab_bytes_new(src, 3);
    src[0] = 'x';
    ck_assert_uint_eq(b->len, 3);
    ck_assert_int_eq(memcmp(b->data, "abc", 3), 0);
    rlab_bytes_free(b);
    rlab_bytes_free(NULL);
    errno = 0;
    ck_assert_ptr_null(rlab_bytes_new(NULL, 1));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static int task_a(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 1;
}

static int task_b(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 2;
}

START_TEST(the_registry_finds_tasks_both_ways_and_refuses_clashes)
{
    ck_assert_rc(rlab_task_register("test.a", task_a), 0);
    ck_assert_rc(rlab_task_register("test.a", task_a), 0); /* idempotent */
    ck_assert_rc(rlab_task_register("test.a", task_b), EEXIST);
    ck_assert_rc(rlab_task_register("test.a2", task_a), EEXIST);
    ck_assert(rlab_task_lookup("test.a") == task_a);
    ck_assert_str_eq(rlab_task_name(task_a), "test.a");
    ck_assert(rlab_task_lookup("test.a2") == NULL);
    ck_assert(rlab_task_lookup("nope") == NULL);
    ck_assert(rlab_task_lookup(NULL) == NULL);
    ck_assert_ptr_null(rlab_task_name(task_b));
    ck_assert_ptr_null(rlab_task_name(NULL));
    char name[80];
    memset(name, 'n', sizeof name);
    name[64] = '\0';
    ck_assert_rc(rlab_task_register(name, task_b), EINVAL); /* 64 chars */
    name[63] = '\0';
    ck_assert_rc(rlab_task_register(name, task_b), 0); /* 63 */
    ck_assert_str_eq(rlab_task_name(task_b), name);
    ck_assert_rc(rlab_task_register("", task_a), EINVAL);
    ck_assert_rc(rlab_task_register(NULL, task_a), EINVAL);
    ck_assert_rc(rlab_task_register("x", NULL), EINVAL);
}
END_TEST

/* Distinct functions to register from many threads: the registry refuses
 * one function under two names, so each name needs its own. */
#define DEF_T(n)                                                               \
    static int reg_##n(void *a, void **r)                                      \
    {                                                                          \
        (void)a;                                                               \
        (void)r;                                                               \
        return n;                                                              \
    }
/* clang-format off */
DEF_T(0) DEF_T(1) DEF_T(2) DEF_T(3) DEF_T(4) DEF_T(5) DEF_T(6) DEF_T(7)
DEF_T(8) DEF_T(9) DEF_T(10) DEF_T(11) DEF_T(12) DEF_T(13) DEF_T(14) DEF_T(15)
static rlab_task_fn const reg_fns[] = {
    reg_0, reg_1, reg_2,  reg_3,  reg_4,  reg_5,  reg_6,  reg_7,
    reg_8, reg_9, reg_10, reg_11, reg_12, reg_13, reg_14, reg_15};
/* clang-format on */
#define NREG 16
#define REG_THREADS 4

typedef struct {
    int id;
    int fails;
} reg_worker;

/* Every thread registers every task (the same name and function: 0 each
 * time) and looks every one up while others add to the list. */
static void *register_all(void *arg)
{
    reg_worker *w = arg;
    for (int round = 0; round < 50; round++) {
        for (int k = 0; k < NREG; k++) {
            int i = (k + w->id * 5) % NREG;
            char name[32];
            snprintf(name, sizeof name, "test.reg.%d", i);
            if (rlab_task_register(name, reg_fns[i]) != 0 ||
                rlab_task_lookup(name) != reg_fns[i] ||
                strcmp(rlab_task_name(reg_fns[i]), name) != 0)
                w->fails++;
        }
    }
    return NULL;
}

START_TEST(the_registry_is_thread_safe)
{
    rlab_thread *t[REG_THREADS];
    reg_worker w[REG_THREADS];
    for (int i = 0; i < REG_THREADS; i++) {
        w[i] = (reg_worker){.id = i};
        t[i] = rlab_test_spawn(register_all, &w[i]);
    }
    for (int i = 0; i < REG_THREADS; i++) {
        rlab_test_join(t[i]);
        ck_assert_int_eq(w[i].fails, 0);
    }
}
END_TEST

/* ----------------------------------------------------------------- main --- */

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        rlab_task_fn fn;
    } tasks[] = {
        {"test.exit_with", exit_with},
        {"test.block", block},
        {"test.wait_msg", wait_msg},
        {"test.check_arg", check_arg},
        {"test.whoami", whoami},
        {"test.echo", echo},
        {"test.leave_daemons", leave_daemons},
        {"test.leave_non_daemon", leave_non_daemon},
        {"test.add_ten", add_ten},
        {"test.block_report_ppid", block_report_ppid},
    };
    for (size_t i = 0; i < sizeof tasks / sizeof *tasks; i++)
        if (rlab_task_register(tasks[i].name, tasks[i].fn) != 0)
            return 2;
    rlab_mp_main(argc, argv);

    Suite *s = suite_create("process");
    TCase *tc = rlab_test_tcase("exitcode", setup, teardown, 0);
    tcase_add_loop_test(tc, exitcode_is_the_tasks_return_value, 0, NMETHODS);
    tcase_add_loop_test(tc, terminate_ends_a_blocked_child_with_minus_sigterm,
                        0, NMETHODS);
    tcase_add_loop_test(tc, kill_ends_a_blocked_child_with_minus_sigkill, 0,
                        NMETHODS);
    tcase_add_loop_test(tc, join_with_a_timeout_times_out_while_the_child_runs,
                        0, NMETHODS);
    tcase_add_loop_test(tc, many_children_at_once_each_get_their_own_exit_code,
                        0, NMETHODS);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("lifecycle", setup, teardown, 0);
    tcase_add_loop_test(tc, is_alive_is_false_before_start_and_after_join, 0,
                        NMETHODS);
    tcase_add_loop_test(tc, calls_before_start_are_eperm_or_eagain, 0,
                        NMETHODS);
    tcase_add_loop_test(tc, starting_twice_is_eperm, 0, NMETHODS);
    tcase_add_test(tc, bad_arguments_are_einval);
    tcase_add_test(tc, names_default_to_process_n_and_daemon_is_kept);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("child", setup, teardown, 0);
    tcase_add_loop_test(tc, each_method_runs_the_task, 0, NMETHODS);
    tcase_add_loop_test(tc, arg_bytes_arrive_intact_small_empty_and_one_mib, 0,
                        NMETHODS);
    tcase_add_loop_test(tc, the_child_knows_its_name_pid_and_parent, 0,
                        NMETHODS);
    tcase_add_loop_test(
        tc, a_conn_passed_to_the_child_carries_messages_both_ways, 0, NMETHODS);
    tcase_add_loop_test(tc, a_child_starts_while_another_thread_runs, 0,
                        NMETHODS);
    tcase_add_loop_test(
        tc, a_shared_value_made_before_start_is_shared_with_the_child, 0,
        NMETHODS);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("exit", setup, teardown, 0);
    tcase_add_loop_test(
        tc, daemon_children_are_terminated_when_the_parent_exits, 0, NMETHODS);
    tcase_add_loop_test(
        tc, non_daemon_children_are_joined_when_the_parent_exits, 0, NMETHODS);
    /* forkserver children are not ours to find as zombies: fork, spawn */
    tcase_add_loop_test(
        tc, a_freed_child_that_exited_is_reaped_by_the_next_start, 0, 2);
    tcase_add_test(tc, a_forkserver_child_outlives_a_killed_server);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("registry", setup, teardown, 0);
    tcase_add_test(tc, the_default_start_method_is_forkserver_and_can_be_set);
    tcase_add_test(tc, bytes_are_copied_and_may_be_empty);
    tcase_add_test(tc, the_registry_finds_tasks_both_ways_and_refuses_clashes);
    tcase_add_test(tc, the_registry_is_thread_safe);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
