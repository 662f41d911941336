/* rlab_test.c - see rlab_test.h. */

#include "rlab_test.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* The scheduler state of one of our threads: 'R', 'S' ... or '?'. */
static char thread_state(long tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
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
    while (!atomic_load(done) && thread_state(tid) != 'S') {
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
