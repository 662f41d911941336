/*
 * racelab/threading.h - Python's `threading` module in C.
 *
 * Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier,
 * Thread and local, with the semantics of CPython's threading module and
 * C conventions (see racelab/error.h): every call that can fail returns 0 or
 * a positive code, timeouts are double seconds with RLAB_FOREVER, deadlines
 * are kept on CLOCK_MONOTONIC, and no EINTR or spurious wake-up ever reaches
 * the caller.  Unlike CPython there is no GIL: racelab threads run in
 * parallel.
 *
 * Handles are opaque, made by *_new (NULL and errno set on failure) and
 * released by *_free (NULL is a no-op).  A handle must not be freed while
 * another thread still uses it.  A NULL handle passed to any other call is
 * EINVAL (or false / 0 / NULL for the calls that return a value).
 */
#ifndef RACELAB_THREADING_H
#define RACELAB_THREADING_H

#include <stdbool.h>

#include "racelab/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- Lock --- */

/* threading.Lock: a non-recursive lock that any thread may release. */
typedef struct rlab_lock rlab_lock;

rlab_lock *rlab_lock_new(void);
void rlab_lock_free(rlab_lock *lock);
/* acquire(timeout=): 0; EAGAIN if timeout is 0 and the lock is held;
 * ETIMEDOUT when the deadline passed; EINVAL for a bad timeout. */
int rlab_lock_acquire(rlab_lock *lock, double timeout);
/* release() from any thread (as in Python): 0; EPERM if it was not locked
 * (RuntimeError: release unlocked lock). */
int rlab_lock_release(rlab_lock *lock);
/* locked() */
bool rlab_lock_locked(rlab_lock *lock);

/* --------------------------------------------------------------- RLock --- */

/* threading.RLock: a reentrant lock owned by one thread at a time.  A thread
 * that exits while holding it leaves it locked, as in Python. */
typedef struct rlab_rlock rlab_rlock;

rlab_rlock *rlab_rlock_new(void);
void rlab_rlock_free(rlab_rlock *rlock);
/* acquire(timeout=): 0 (the owner re-enters at once); EAGAIN, ETIMEDOUT,
 * EINVAL as for rlab_lock_acquire.  EOVERFLOW if the recursion count would
 * overflow a long. */
int rlab_rlock_acquire(rlab_rlock *rlock, double timeout);
/* release(): 0; EPERM when the caller does not own it (RuntimeError: cannot
 * release un-acquired lock). */
int rlab_rlock_release(rlab_rlock *rlock);
/* _is_owned(): true when the calling thread owns it. */
bool rlab_rlock_is_owned(rlab_rlock *rlock);
/* _recursion_count(): the calling thread's recursion level (0 if it does
 * not own the lock). */
long rlab_rlock_count(rlab_rlock *rlock);

/* ------------------------------------------ Semaphore, BoundedSemaphore --- */

/* threading.Semaphore and threading.BoundedSemaphore share one type. */
typedef struct rlab_semaphore rlab_semaphore;

/* Semaphore(value): NULL with errno EINVAL if value < 0. */
rlab_semaphore *rlab_semaphore_new(long value);
/* BoundedSemaphore(value): releases beyond the initial value fail. */
rlab_semaphore *rlab_bounded_semaphore_new(long value);
void rlab_semaphore_free(rlab_semaphore *sem);
/* acquire(timeout=): 0; EAGAIN, ETIMEDOUT, EINVAL as for a Lock. */
int rlab_semaphore_acquire(rlab_semaphore *sem, double timeout);
/* release(n): 0; EINVAL if n < 1; EOVERFLOW (ValueError: Semaphore released
 * too many times) if bounded and the value would pass the initial value, or
 * if it would overflow a long; on error the value is unchanged. */
int rlab_semaphore_release(rlab_semaphore *sem, long n);
/* _value: the current count (a snapshot). */
long rlab_semaphore_value(rlab_semaphore *sem);

/* ----------------------------------------------------------- Condition --- */

/* threading.Condition over a Lock or an RLock. */
typedef struct rlab_condition rlab_condition;

/* Condition(lock): the condition does not own `lock` (free it after the
 * condition).  A NULL lock gives the condition its own RLock, as Python's
 * Condition() does. */
rlab_condition *rlab_condition_new(rlab_lock *lock);
/* Condition(rlock) */
rlab_condition *rlab_condition_new_rlock(rlab_rlock *rlock);
void rlab_condition_free(rlab_condition *cond);
/* `with cond:` - acquire and release the underlying lock. */
int rlab_condition_acquire(rlab_condition *cond, double timeout);
int rlab_condition_release(rlab_condition *cond);
/* wait(timeout): releases the lock (every recursion level of an RLock),
 * waits for a notify, reacquires it at the same level.  0 when notified,
 * ETIMEDOUT when the deadline passed first (the lock is held again either
 * way), EPERM if the caller does not hold the lock (over a plain Lock: if it
 * is not locked at all, as in Python), EINVAL for a bad timeout.
 * A notify that raced with the timeout counts: 0 is returned. */
int rlab_condition_wait(rlab_condition *cond, double timeout);
/* wait_for(predicate, timeout): 0 once pred(arg) is true (pred is evaluated
 * with the lock held, first before any wait); ETIMEDOUT if it is still false
 * at the deadline; EPERM, EINVAL as for wait. */
int rlab_condition_wait_for(rlab_condition *cond, bool (*pred)(void *),
                            void *arg, double timeout);
/* notify(n): wakes up to n waiters, longest-waiting first; exactly n when
 * at least n are waiting.  0; EINVAL if n < 0; EPERM without the lock. */
int rlab_condition_notify(rlab_condition *cond, long n);
/* notify_all(): 0; EPERM without the lock. */
int rlab_condition_notify_all(rlab_condition *cond);

/* --------------------------------------------------------------- Event --- */

/* threading.Event */
typedef struct rlab_event rlab_event;

rlab_event *rlab_event_new(void);
void rlab_event_free(rlab_event *ev);
/* set(): wakes every waiter; a clear() right after still lets every thread
 * that was waiting return 0. */
void rlab_event_set(rlab_event *ev);
void rlab_event_clear(rlab_event *ev);
bool rlab_event_is_set(rlab_event *ev);
/* wait(timeout): 0 once set, ETIMEDOUT if not set by the deadline (also for
 * a timeout of 0 on an unset event), EINVAL for a bad timeout. */
int rlab_event_wait(rlab_event *ev, double timeout);

/* ------------------------------------------------------------- Barrier --- */

/* threading.Barrier */
typedef struct rlab_barrier rlab_barrier;

/* Barrier(parties, action, timeout): NULL with errno EINVAL if parties < 1
 * or the timeout is bad.  `action(arg)`, if given, runs once per cycle on
 * the last arriving thread before any waiter leaves; a non-zero return
 * breaks the barrier.  `timeout` is the default for rlab_barrier_wait
 * (RLAB_FOREVER: none). */
rlab_barrier *rlab_barrier_new(long parties, int (*action)(void *), void *arg,
                               double timeout);
void rlab_barrier_free(rlab_barrier *b);
/* wait(timeout): 0 and *index (may be NULL) set to the arrival index,
 * distinct in 0..parties-1 within a cycle; RLAB_EBROKEN
 * (BrokenBarrierError) if the barrier is or becomes broken: a timeout, an
 * abort, a reset during the wait or a failing action.  RLAB_FOREVER means
 * the barrier's default timeout, +INFINITY waits forever.  EINVAL for a bad
 * timeout.  A timeout breaks the barrier, as in Python. */
int rlab_barrier_wait(rlab_barrier *b, double timeout, long *index);
/* abort(): breaks the barrier; current and later waits fail until reset. */
void rlab_barrier_abort(rlab_barrier *b);
/* reset(): back to the empty state; threads waiting now get RLAB_EBROKEN. */
void rlab_barrier_reset(rlab_barrier *b);
bool rlab_barrier_broken(rlab_barrier *b);
long rlab_barrier_n_waiting(rlab_barrier *b);
long rlab_barrier_parties(rlab_barrier *b);

/* -------------------------------------------------------------- Thread --- */

/* threading.Thread */
typedef struct rlab_thread rlab_thread;

/* Thread(target=fn, args=(arg,), name=name, daemon=daemon).start():
 * 0 and *out set; EINVAL if out or fn is NULL; EAGAIN or ENOMEM if the
 * thread could not be created.  A NULL name gives "Thread-N".  When this
 * returns the thread is running (its ident and native id are known).
 * Non-daemon threads still running when exit() runs are joined first, as
 * Python joins them at interpreter exit. */
int rlab_thread_start(rlab_thread **out, const char *name, void *(*fn)(void *),
                      void *arg, bool daemon);
/* join(timeout): 0 once the thread has ended (*result, if not NULL, gets
 * fn's return value; NULL if fn left through pthread_exit); ETIMEDOUT;
 * EDEADLK if a thread joins itself; EINVAL.  When it returns 0 the
 * thread's rlab_local destructors have run.  May be called again, from any
 * thread, after it succeeded. */
int rlab_thread_join(rlab_thread *t, double timeout, void **result);
bool rlab_thread_is_alive(rlab_thread *t);
bool rlab_thread_daemon(rlab_thread *t);
const char *rlab_thread_name(rlab_thread *t);
/* ident: pthread_self() of the thread, as threading.get_ident(). */
unsigned long rlab_thread_ident(rlab_thread *t);
/* native_id: the kernel's thread id (gettid). */
long rlab_thread_native_id(rlab_thread *t);
/* Frees a joined thread, or detaches a running one (it then frees itself
 * when it ends; a non-daemon one is still joined at exit). */
void rlab_thread_free(rlab_thread *t);

/* current_thread().name: "MainThread" on the main thread, the thread's name
 * on a racelab thread, "Dummy-N" on any other thread. */
const char *rlab_current_thread_name(void);
/* threading.get_ident() and threading.get_native_id() */
unsigned long rlab_get_ident(void);
long rlab_get_native_id(void);

/* --------------------------------------------------------------- local --- */

/* threading.local: one void * slot per thread. */
typedef struct rlab_local rlab_local;

/* local(): `destructor` (may be NULL) is called on a thread's non-NULL
 * value when that thread exits, when the value is replaced by set, and for
 * every value still set when the local is freed.  At most about 1000 locals
 * can exist at once (PTHREAD_KEYS_MAX). */
rlab_local *rlab_local_new(void (*destructor)(void *));
/* Frees the local, running the destructor on each thread's value.  No other
 * thread may use the local, or be exiting, while it is freed. */
void rlab_local_free(rlab_local *local);
/* The calling thread's value: NULL until it sets one. */
void *rlab_local_get(rlab_local *local);
/* Sets the calling thread's value (the destructor runs on the value it
 * replaces): 0, EINVAL, ENOMEM (nothing changed). */
int rlab_local_set(rlab_local *local, void *value);

#ifdef __cplusplus
}
#endif

#endif
