/*
 * internal.h - helpers shared by librlab's sources; never installed.
 *
 * Time: a timeout in seconds becomes an absolute CLOCK_MONOTONIC deadline
 * once, at the start of a call, so retries after EINTR or a spurious wake-up
 * never stretch the wait.
 *
 * Futexes: the blocking primitives park on a 32-bit word with FUTEX_WAIT and
 * keep every happens-before edge in C11 atomics, which ThreadSanitizer
 * understands; the kernel call itself carries no ordering we rely on.
 */
#ifndef RLAB_INTERNAL_H
#define RLAB_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "racelab/error.h"

#if defined(__SANITIZE_THREAD__)
#define RLAB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RLAB_TSAN 1
#endif
#endif

/* Timeouts beyond this many seconds (about 31 years) are treated as
 * forever: they cannot end within the life of a process, and the sum with
 * the clock's reading must not overflow time_t. */
#define RLAB_TIMEOUT_MAX 1e9

/* How a call should wait, decided once from the caller's timeout. */
typedef enum {
    RLAB_WAIT_TRY,      /* timeout 0: do not block */
    RLAB_WAIT_FOREVER,  /* RLAB_FOREVER, +inf or too large to represent */
    RLAB_WAIT_DEADLINE, /* block until `at` on CLOCK_MONOTONIC */
} rlab_wait_kind;

typedef struct {
    rlab_wait_kind kind;
    struct timespec at;
} rlab_deadline;

/* Validates `timeout` and fills `d`: 0, or EINVAL for NaN and negative
 * values other than RLAB_FOREVER. */
int rlab__deadline(double timeout, rlab_deadline *d);

/* The cheap half of rlab__deadline, for fast paths that try before they
 * compute a deadline: false for NaN and negatives other than RLAB_FOREVER. */
static inline bool rlab__timeout_ok(double timeout)
{
    return timeout >= 0 || timeout == RLAB_FOREVER;
}

/* True once the deadline (of kind RLAB_WAIT_DEADLINE) has passed. */
bool rlab__expired(const rlab_deadline *d);

/* Seconds on CLOCK_MONOTONIC. */
double rlab__now(void);

/* os.process_cpu_count(): the CPUs this process may run on (>= 1). */
int rlab__cpu_count(void);

/* Parks while *word == expected, until woken, the deadline passes or a
 * signal arrives.  Returns 0 (woken, value changed or interrupted: the caller
 * re-checks its condition) or ETIMEDOUT.  A RLAB_WAIT_TRY deadline returns
 * ETIMEDOUT at once. */
int rlab__futex_wait(atomic_uint *word, unsigned expected,
                     const rlab_deadline *d);
/* Wakes up to n threads parked on word (INT32_MAX: all). */
void rlab__futex_wake(atomic_uint *word, int n);
/* The same pair for a word that other processes share (in the arena of
 * shm.c): no FUTEX_PRIVATE_FLAG, so the kernel keys the wait by the page. */
int rlab__futex_wait_shared(atomic_uint *word, unsigned expected,
                            const rlab_deadline *d);
void rlab__futex_wake_shared(atomic_uint *word, int n);

/* ---- the generation word of Event and the process-shared Event: bit 0 is
 * the flag, and every set() advances the generation in the other bits, so
 * a set() followed at once by a clear() still releases every waiter. ---- */

/* Sets the flag; true if it was clear (the caller wakes any waiters). */
static inline bool rlab__genword_set(atomic_uint *word)
{
    unsigned w = atomic_load(word);
    do {
        if (w & 1)
            return false;
    } while (!atomic_compare_exchange_weak(word, &w, (w + 2) | 1));
    return true;
}

/* The blocking half of a wait, for a caller that saw the flag clear and
 * may block: counts itself in *waiters (sequentially consistent with the
 * word, so set() skips the wake only when nobody can be parked) and parks
 * until the word changes (0) or the deadline passes (ETIMEDOUT).  `shared`
 * picks the futex kind; it is a constant at each call site. */
int rlab__genword_park(atomic_uint *word, atomic_uint *waiters,
                       const rlab_deadline *d, bool shared);

/* Event.wait on a generation word: 0 once the flag is set (or was set while
 * waiting), ETIMEDOUT, or EINVAL for a bad timeout.  Inline so that the
 * fast path (flag already set) costs no call and `shared` no branch. */
static inline int rlab__genword_wait(atomic_uint *word, atomic_uint *waiters,
                                     double timeout, bool shared)
{
    rlab_deadline d;
    if (rlab__deadline(timeout, &d))
        return EINVAL;
    if (atomic_load_explicit(word, memory_order_acquire) & 1)
        return 0;
    if (d.kind == RLAB_WAIT_TRY)
        return ETIMEDOUT;
    return rlab__genword_park(word, waiters, &d, shared);
}

/* Short busy-wait hint for spin loops. */
static inline void rlab__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The calling thread's identity for ownership checks (RLock, Condition):
 * drawn from a counter on first use and never reused, so an RLock left held
 * by a thread that exited cannot pass to a new thread that happens to get
 * the same stack (and so the same TLS addresses).  initial-exec keeps the
 * lookup a single load instead of a __tls_get_addr call in librlab.so. */
extern _Thread_local uintptr_t rlab__self
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
uintptr_t rlab__self_id_init(void);

static inline uintptr_t rlab__self_id(void)
{
    uintptr_t id = rlab__self;
    return __builtin_expect(id != 0, 1) ? id : rlab__self_id_init();
}


/* ---- the futex word lock shared by Lock, RLock and the process-local
 * primitives: 0 unlocked, 1 locked, 2 locked and maybe contended. ---- */

/* One CAS: true if the word was free and is now held. */
static inline bool rlab__word_try(atomic_uint *word)
{
    unsigned c = 0;
    return atomic_compare_exchange_strong_explicit(
        word, &c, 1, memory_order_acquire, memory_order_relaxed);
}

/* Spins, then parks until the word is taken (0) or the deadline passes
 * (ETIMEDOUT).  Call after rlab__word_try failed and blocking is allowed. */
int rlab__word_lock_slow(atomic_uint *word, const rlab_deadline *d);

/* 0, EAGAIN (d is a try and the word is held) or ETIMEDOUT. */
static inline int rlab__word_lock(atomic_uint *word, const rlab_deadline *d)
{
    if (rlab__word_try(word))
        return 0;
    return d->kind == RLAB_WAIT_TRY ? EAGAIN : rlab__word_lock_slow(word, d);
}

/* 0, or EPERM if the word was not locked (nothing changes).  Exchanging 0
 * into a free word changes nothing, so one atomic op both releases and
 * detects the EPERM case. */
static inline int rlab__word_unlock(atomic_uint *word)
{
    unsigned c = atomic_exchange_explicit(word, 0, memory_order_release);
    if (c == 0)
        return EPERM;
    if (c == 2)
        rlab__futex_wake(word, 1);
    return 0;
}

/* ---- RLock internals used by Condition ---- */
struct rlab_rlock;
/* Releases every recursion level held by the caller; returns the count. */
long rlab__rlock_release_save(struct rlab_rlock *r);
/* Reacquires (forever) and restores the recursion count. */
void rlab__rlock_acquire_restore(struct rlab_rlock *r, long count);

#ifdef RLAB_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#endif
