/* rlab_test.c - see rlab_test.h. */

#include "rlab_test.h"

#include <stdlib.h>
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
