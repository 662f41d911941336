/*
 * rlock.c - threading.RLock.
 *
 * The futex word lock of lock.c plus an owner and a recursion count.  Only
 * the owner touches the count; other threads read the owner only to compare
 * it with themselves, so a relaxed atomic suffices.  Because only the owner
 * may release, the RLock is annotated as a reentrant mutex for
 * ThreadSanitizer, which then also checks lock order through it.
 */
#include <limits.h>
#include <stdlib.h>

#include "internal.h"
#include "racelab/threading.h"

struct rlab_rlock {
    atomic_uint word;
    atomic_uintptr_t owner;
    long count;
};

#ifdef RLAB_TSAN
#define TSAN_FLAGS __tsan_mutex_write_reentrant
#endif

rlab_rlock *rlab_rlock_new(void)
{
    rlab_rlock *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->word, 0);
    atomic_init(&r->owner, 0);
    r->count = 0;
#ifdef RLAB_TSAN
    __tsan_mutex_create(r, TSAN_FLAGS);
#endif
    return r;
}

static bool owned(rlab_rlock *r)
{
    return atomic_load_explicit(&r->owner, memory_order_relaxed) ==
           rlab__self_id();
}

void rlab_rlock_free(rlab_rlock *r)
{
    if (!r)
        return;
#ifdef RLAB_TSAN
    /* Python lets a held RLock be dropped (lock_tests' test_acquire_destroy),
     * which ThreadSanitizer would report as the destroy of a locked mutex.
     * The owner's levels are released in its view first; a lock left held
     * by an exited thread is dropped without a destroy (free() clears
     * ThreadSanitizer's state for the block). */
    unsigned flags = TSAN_FLAGS;
    if (owned(r)) {
        __tsan_mutex_pre_unlock(r, TSAN_FLAGS | __tsan_mutex_recursive_unlock);
        __tsan_mutex_post_unlock(r, TSAN_FLAGS | __tsan_mutex_recursive_unlock);
    } else if (atomic_load_explicit(&r->word, memory_order_relaxed) != 0) {
        flags |= __tsan_mutex_linker_init;
    }
    __tsan_mutex_destroy(r, flags);
#endif
    free(r);
}

/* Takes the word for the calling thread `self`: 0, EAGAIN or ETIMEDOUT.
 * The deadline is computed only when the first CAS fails. */
static int take(rlab_rlock *r, uintptr_t self, double timeout)
{
    int rc = 0;
    if (!rlab__word_try(&r->word)) {
        rlab_deadline d;
        rlab__deadline(timeout, &d);
        rc = d.kind == RLAB_WAIT_TRY ? EAGAIN
                                     : rlab__word_lock_slow(&r->word, &d);
    }
    if (rc == 0) {
        atomic_store_explicit(&r->owner, self, memory_order_relaxed);
        r->count = 1;
    }
    return rc;
}

int rlab_rlock_acquire(rlab_rlock *r, double timeout)
{
    if (!r || !rlab__timeout_ok(timeout))
        return EINVAL;
    uintptr_t self = rlab__self_id();
    if (atomic_load_explicit(&r->owner, memory_order_relaxed) == self) {
        if (r->count == LONG_MAX)
            return EOVERFLOW;
#ifdef RLAB_TSAN
        __tsan_mutex_pre_lock(r, TSAN_FLAGS);
        __tsan_mutex_post_lock(r, TSAN_FLAGS, 0);
#endif
        r->count++;
        return 0;
    }
#ifdef RLAB_TSAN
    /* A bounded wait cannot deadlock: tell TSan it is a try-lock, so it
     * does not report lock-order cycles that cannot hang. */
    unsigned try = timeout == RLAB_FOREVER || timeout >= RLAB_TIMEOUT_MAX
                       ? 0
                       : __tsan_mutex_try_lock;
    __tsan_mutex_pre_lock(r, TSAN_FLAGS | try);
    int rc = take(r, self, timeout);
    __tsan_mutex_post_lock(
        r, TSAN_FLAGS | try | (rc ? __tsan_mutex_try_lock_failed : 0), 0);
    return rc;
#else
    return take(r, self, timeout);
#endif
}

int rlab_rlock_release(rlab_rlock *r)
{
    if (!r)
        return EINVAL;
    if (!owned(r))
        return EPERM;
#ifdef RLAB_TSAN
    __tsan_mutex_pre_unlock(r, TSAN_FLAGS);
#endif
    if (--r->count == 0) {
        atomic_store_explicit(&r->owner, 0, memory_order_relaxed);
        rlab__word_unlock(&r->word);
    }
#ifdef RLAB_TSAN
    __tsan_mutex_post_unlock(r, TSAN_FLAGS);
#endif
    return 0;
}

bool rlab_rlock_is_owned(rlab_rlock *r)
{
    return r && owned(r);
}

long rlab_rlock_count(rlab_rlock *r)
{
    return r && owned(r) ? r->count : 0;
}

long rlab__rlock_release_save(rlab_rlock *r)
{
    long count = r->count;
#ifdef RLAB_TSAN
    __tsan_mutex_pre_unlock(r, TSAN_FLAGS | __tsan_mutex_recursive_unlock);
#endif
    r->count = 0;
    atomic_store_explicit(&r->owner, 0, memory_order_relaxed);
    rlab__word_unlock(&r->word);
#ifdef RLAB_TSAN
    __tsan_mutex_post_unlock(r, TSAN_FLAGS | __tsan_mutex_recursive_unlock);
#endif
    return count;
}

void rlab__rlock_acquire_restore(rlab_rlock *r, long count)
{
    rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
#ifdef RLAB_TSAN
    __tsan_mutex_pre_lock(r, TSAN_FLAGS);
#endif
    rlab__word_lock(&r->word, &forever);
    atomic_store_explicit(&r->owner, rlab__self_id(), memory_order_relaxed);
    r->count = count;
#ifdef RLAB_TSAN
    __tsan_mutex_post_lock(r, TSAN_FLAGS | __tsan_mutex_recursive_lock,
                           (int)(count > 0x7fffffff ? 0x7fffffff : count));
#endif
}
