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

/* The park and wake of both kinds of word; `flags` is FUTEX_PRIVATE_FLAG
 * or 0, a constant at each call site below. */
static inline int futex_wait_flags(atomic_uint *word, unsigned expected,
                                   const rlab_deadline *d, int flags)
{
    if (d->kind == RLAB_WAIT_TRY)
        return ETIMEDOUT;
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a retry
     * after EINTR keeps the original deadline. */
    const struct timespec *at = d->kind == RLAB_WAIT_DEADLINE ? &d->at : NULL;
    long rc = syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_BITSET | flags,
                      expected, at, NULL, FUTEX_BITSET_MATCH_ANY);
    if (rc == -1 && errno == ETIMEDOUT)
        return ETIMEDOUT;
    return 0; /* woken, EAGAIN (value changed) or EINTR: caller re-checks */
}

static inline void futex_wake_flags(atomic_uint *word, int n, int flags)
{
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE | flags, n, NULL, NULL, 0);
}

int rlab__futex_wait(atomic_uint *word, unsigned expected,
                     const rlab_deadline *d)
{
    return futex_wait_flags(word, expected, d, FUTEX_PRIVATE_FLAG);
}

void rlab__futex_wake(atomic_uint *word, int n)
{
    futex_wake_flags(word, n, FUTEX_PRIVATE_FLAG);
}

int rlab__futex_wait_shared(atomic_uint *word, unsigned expected,
                            const rlab_deadline *d)
{
    return futex_wait_flags(word, expected, d, 0);
}

void rlab__futex_wake_shared(atomic_uint *word, int n)
{
    futex_wake_flags(word, n, 0);
}

int rlab__genword_park(atomic_uint *word, atomic_uint *waiters,
                       const rlab_deadline *d, bool shared)
{
    atomic_fetch_add(waiters, 1);
    unsigned seen = atomic_load(word);
    int rc = 0;
    /* Only a set() changes the generation bits; a clear() of a clear word
     * changes nothing, so any change of the word means "was set". */
    while (!(seen & 1) && atomic_load(word) == seen) {
        int w = shared ? rlab__futex_wait_shared(word, seen, d)
                       : rlab__futex_wait(word, seen, d);
        if (w == ETIMEDOUT) {
            unsigned now = atomic_load(word);
            rc = (now & 1) || now != seen ? 0 : ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(waiters, 1);
    return rc;
}

_Thread_local uintptr_t rlab__self;
static atomic_uintptr_t rlab__next_id;

uintptr_t rlab__self_id_init(void)
{
    rlab__self =
        atomic_fetch_add_explicit(&rlab__next_id, 1, memory_order_relaxed) + 1;
    return rlab__self;
}
