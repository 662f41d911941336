/* wait.c - deadlines on CLOCK_MONOTONIC and the futex park/wake pair. */
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"


int rlab__deadline(double timeout, rlab_deadline *d)
{
    if (isnan(timeout))
        return EINVAL;
    if (timeout == RLAB_FOREVER || timeout >= RLAB_TIMEOUT_MAX) {
        d->kind = RLAB_WAIT_FOREVER;
        return 0;
    }
    if (timeout < 0)
        return EINVAL;
    if (timeout == 0) {
        d->kind = RLAB_WAIT_TRY;
        return 0;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double whole = floor(timeout);
    long nsec = now.tv_nsec + (long)((timeout - whole) * 1e9);
    d->kind = RLAB_WAIT_DEADLINE;
    d->at.tv_sec = now.tv_sec + (time_t)whole + nsec / 1000000000L;
    d->at.tv_nsec = nsec % 1000000000L;
    return 0;
}

bool rlab__expired(const rlab_deadline *d)
{
    if (d->kind == RLAB_WAIT_TRY)
        return true;
    if (d->kind == RLAB_WAIT_FOREVER)
        return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > d->at.tv_sec ||
           (now.tv_sec == d->at.tv_sec && now.tv_nsec >= d->at.tv_nsec);
}

double rlab__now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int rlab__futex_wait(atomic_uint *word, unsigned expected,
                     const rlab_deadline *d)
{
    if (d->kind == RLAB_WAIT_TRY)
        return ETIMEDOUT;
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a retry
     * after EINTR keeps the original deadline. */
    const struct timespec *at = d->kind == RLAB_WAIT_DEADLINE ? &d->at : NULL;
    long rc = syscall(SYS_futex, (unsigned *)word,
                      FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, at,
                      NULL, FUTEX_BITSET_MATCH_ANY);
    if (rc == -1 && errno == ETIMEDOUT)
        return ETIMEDOUT;
    return 0; /* woken, EAGAIN (value changed) or EINTR: caller re-checks */
}

void rlab__futex_wake(atomic_uint *word, int n)
{
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n,
            NULL, NULL, 0);
}

_Thread_local uintptr_t rlab__self;
static atomic_uintptr_t rlab__next_id;

uintptr_t rlab__self_id_init(void)
{
    rlab__self =
        atomic_fetch_add_explicit(&rlab__next_id, 1, memory_order_relaxed) + 1;
    return rlab__self;
}
