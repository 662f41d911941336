/* rlab_test.c - see rlab_test.h. */

#include "rlab_test.h"

#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long rlab_test_scaled(long n)
{
    const char *env = getenv("RLAB_STRESS_SCALE");
    double scale = env ? strtod(env, NULL) : 1.0;
    if (!(scale > 0))
        scale = 1.0;
    long v = (long)((double)n * scale);
    return v < 1 ? 1 : v;
}

double rlab_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

rlab_thread *rlab_test_spawn(void *(*fn)(void *), void *arg)
{
    rlab_thread *t = NULL;
    ck_assert_rc(rlab_thread_start(&t, NULL, fn, arg, false), 0);
    return t;
}

void *rlab_test_join(rlab_thread *t)
{
    void *result = NULL;
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, &result), 0);
    rlab_thread_free(t);
    return result;
}

TCase *rlab_test_tcase(const char *name, void (*setup)(void),
                       void (*teardown)(void), double timeout)
{
    TCase *tc = tcase_create(name);
    if (setup || teardown)
        tcase_add_checked_fixture(tc, setup, teardown);
    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    return tc;
}

int rlab_test_main(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void rlab_test_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds,
                          (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

char rlab_test_task_state(long id)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", id);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    return p && p[1] == ' ' ? p[2] : '?';
}

void rlab_test_wait_blocked(long tid, const atomic_bool *done, const int *rc)
{
    double t0 = rlab_test_now();
    while (!atomic_load(done) && rlab_test_task_state(tid) != 'S') {
        ck_assert_msg(rlab_test_now() - t0 < RLAB_GUARD,
                      "the call neither returned nor slept");
        sched_yield();
    }
    ck_assert_msg(!atomic_load(done),
                  "the call returned %d (%s) instead of blocking", *rc,
                  rlab_strerror(*rc));
}

void rlab_test_assert_not_at_guard(double elapsed)
{
    ck_assert_msg(elapsed < RLAB_GUARD * 0.9,
                  "the call returned only at its guard: a lost wake-up");
}

int rlab_test_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void rlab_test_assert_no_children(void)
{
    int st;
    errno = 0;
    pid_t p = waitpid(-1, &st, WNOHANG);
    ck_assert_msg(p == -1 && errno == ECHILD,
                  "a child process is left after the test (waitpid gave %d)",
                  (int)p);
}

void rlab_test_assert_no_zombies(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
    ck_assert_msg((r < 0 && errno == ECHILD) || (r == 0 && si.si_pid == 0),
                  "child %d was left a zombie", (int)si.si_pid);
}

pid_t rlab_test_fork(void)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        alarm(60); /* a hung child dies instead of hanging the test */
    return pid;
}

pid_t rlab_test_reap_any(const pid_t *pids, int n, int *status)
{
    enum { MAX = 64 };
    ck_assert_int_le(n, MAX);
    struct pollfd p[MAX];
    for (int i = 0; i < n; i++) {
        int fd = (int)syscall(SYS_pidfd_open, pids[i], 0);
        ck_assert_msg(fd >= 0, "pidfd_open: %s", strerror(errno));
        p[i] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    int r;
    do
        r = poll(p, (nfds_t)n, (int)(RLAB_GUARD * 1000));
    while (r < 0 && errno == EINTR);
    pid_t got = -1;
    for (int i = 0; i < n; i++) {
        if (got < 0 && r > 0 && (p[i].revents & POLLIN))
            got = pids[i];
        close(p[i].fd);
    }
    ck_assert_msg(got > 0, "no child exited within the guard");
    ck_assert_int_eq(waitpid(got, status, 0), got);
    return got;
}

int rlab_test_reap(pid_t pid)
{
    int st = 0;
    rlab_test_reap_any(&pid, 1, &st);
    return st;
}

void rlab_test_expect_exit(pid_t pid, int code)
{
    int st = rlab_test_reap(pid);
    ck_assert_msg(WIFEXITED(st), "child %d was killed by signal %d", (int)pid,
                  WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    ck_assert_msg(WEXITSTATUS(st) == code, "child %d exited with %d, want %d",
                  (int)pid, WEXITSTATUS(st), code);
}

unsigned char *rlab_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    if (!buf || n == 0) {
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

#define MAX_KIDS 8
static pid_t kids[MAX_KIDS];
static int nkids;

void rlab_test_kid_add(pid_t pid)
{
    ck_assert_int_lt(nkids, MAX_KIDS);
    kids[nkids++] = pid;
}

pid_t rlab_test_kid_fork(void)
{
    ck_assert_int_lt(nkids, MAX_KIDS);
    pid_t pid = rlab_test_fork();
    if (pid > 0)
        rlab_test_kid_add(pid);
    return pid;
}

void rlab_test_kid_forget(pid_t pid)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i] == pid) {
            kids[i] = kids[--nkids];
            return;
        }
}

void rlab_test_kids_end(void)
{
    while (nkids > 0) {
        pid_t pid = kids[--nkids];
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* Polls until child `pid` sleeps in futex() (parked in a wait), so that a
 * wake-up test really wakes a sleeper.  Where /proc cannot tell, it returns
 * at once: the checks still hold, they just cannot insist on the park. */
void rlab_test_await_parked(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
    double end = rlab_test_now() + RLAB_GUARD;
    for (;;) {
        FILE *f = fopen(path, "r");
        if (!f)
            return;
        char word[32] = "";
        int n = fscanf(f, "%31s", word); /* a number, or "running" */
        fclose(f);
        if (n != 1)
            return; /* not readable here */
        if (strtol(word, NULL, 10) == SYS_futex)
            return;
        ck_assert_msg(rlab_test_now() < end, "the child never parked");
        sched_yield();
    }
}

void rlab_test_child_linger(void)
{
    poll(NULL, 0, (int)(RLAB_GUARD * 1000));
}

/* Reads from fd until EOF, at most len - 1 bytes kept, within the guard;
 * returns the count and NUL-terminates. */
size_t rlab_test_read_all(int fd, char *buf, size_t len)
{
    size_t got = 0;
    double t0 = rlab_test_now();
    for (;;) {
        int left = (int)((RLAB_GUARD - (rlab_test_now() - t0)) * 1000);
        ck_assert_msg(left > 0, "no EOF within the guard");
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) < 0) {
            ck_assert_int_eq(errno, EINTR);
            continue;
        }
        char tmp[1024];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_int_ge(n, 0);
        if (n == 0)
            break;
        size_t keep = (size_t)n < len - 1 - got ? (size_t)n : len - 1 - got;
        memcpy(buf + got, tmp, keep);
        got += keep;
    }
    buf[got] = '\0';
    return got;
}
