/*
 * racelab/gil.h - a simulated global interpreter lock, modeled on CPython's.
 *
 * racelab's own threads run in parallel.  To reproduce what Python programs
 * see, a workload can run "under the GIL": each thread holds an rlab_gil
 * while it runs its "bytecode", calls rlab_gil_check at its check points
 * (the eval breaker of CPython's eval loop) and brackets blocking calls with
 * rlab_gil_begin_blocking / rlab_gil_end_blocking (Py_BEGIN_ALLOW_THREADS /
 * Py_END_ALLOW_THREADS).  The protocol is the one of CPython's
 * Python/ceval_gil.c (the "new GIL" of Python 3.2):
 *
 *  - A thread that wants the GIL waits one switch interval
 *    (sys.getswitchinterval(), 5 ms by default).  If no switch happened
 *    meanwhile, it sets a drop request (gil_drop_request) and waits again.
 *  - The holder sees the request at its next check point, drops the GIL and
 *    then waits until another thread has taken it (FORCE_SWITCHING), so the
 *    dropper cannot win the GIL straight back; it then queues for it like
 *    anybody else.  A holder that never reaches a check point keeps it.
 *  - Releasing around a blocking call lets the others run meanwhile.
 *
 * Where the check points sit decides what "atomic" means under a GIL.
 * CPython 3.10 and later check the eval breaker only on loop back-edges and
 * at calls, so `n += 1` on a global (LOAD, ADD, STORE) is never split and
 * two threads lose no increments; CPython 3.9 and earlier checked between
 * most instructions, and the same program lost updates.  rlab_gil_check_at
 * takes the kind of point it stands for and the GIL's check placement
 * decides which kinds really check; rlab_gil_counter_demo runs that model.
 *
 * Conventions are racelab's (racelab/error.h): 0 or a positive code,
 * double seconds with RLAB_FOREVER.  A handle is made by rlab_gil_new
 * (NULL and errno set on failure) and released by rlab_gil_free (NULL is a
 * no-op) when no thread holds or waits for it.  A NULL handle is EINVAL
 * (false or 0 for the calls that return a value).  Threads are told apart
 * by racelab's thread identity, so any pthread may take part.
 */
#ifndef RACELAB_GIL_H
#define RACELAB_GIL_H

#include <stdbool.h>

#include "racelab/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CPython's default switch interval, in seconds. */
#define RLAB_GIL_DEFAULT_INTERVAL 0.005

typedef struct rlab_gil rlab_gil;

/* Which kinds of point are check points (settable per GIL). */
typedef enum {
    /* CPython 3.10+: loop back-edges and calls only (the default). */
    RLAB_GIL_CHECK_BACKEDGE_AND_CALL = 0,
    /* CPython <= 3.9: between instructions as well. */
    RLAB_GIL_CHECK_EVERY_INSTRUCTION = 1,
} rlab_gil_placement;

/* The kind of point a check stands for in the simulated bytecode. */
typedef enum {
    RLAB_GIL_AT_INSTRUCTION = 0, /* between two ordinary instructions */
    RLAB_GIL_AT_BACKEDGE = 1,    /* a loop's jump back */
    RLAB_GIL_AT_CALL = 2,        /* entering a function */
} rlab_gil_point;

/* A snapshot of a GIL's counters since rlab_gil_new. */
typedef struct {
    /* Times any thread took the GIL. */
    unsigned long acquisitions;
    /* Times it was taken by another thread than its last holder (the first
     * acquisition counts): CPython's switch_number. */
    unsigned long switches;
    /* Drop requests set by waiters after a whole interval without a switch. */
    unsigned long drop_requests;
    /* Times a check point dropped the GIL on a (maybe stale) request. */
    unsigned long check_drops;
    /* Drops that waited until a waiter had taken the GIL (FORCE_SWITCHING). */
    unsigned long forced_switches;
    /* rlab_gil_begin_blocking calls that released the GIL. */
    unsigned long blocking;
    /* Threads waiting for the GIL now. */
    long waiters;
} rlab_gil_stats;

/* A new, free GIL with the given switch interval (seconds, as
 * sys.setswitchinterval takes it) and the 3.10+ check placement.  NULL with
 * errno EINVAL for an interval rlab_gil_set_switch_interval refuses, ENOMEM
 * or the pthread error otherwise. */
rlab_gil *rlab_gil_new(double switch_interval);
/* Frees a GIL nobody holds or waits for (NULL is a no-op). */
void rlab_gil_free(rlab_gil *gil);

/* sys.setswitchinterval(seconds): 0; EINVAL (ValueError: switch interval
 * must be strictly positive) unless 0 < seconds <= 1e9; on error nothing
 * changes.  Waits that already started keep the interval they began with.
 * As in CPython, the waits use at least one microsecond. */
int rlab_gil_set_switch_interval(rlab_gil *gil, double seconds);
/* sys.getswitchinterval(): the interval in seconds (0 for NULL). */
double rlab_gil_switch_interval(rlab_gil *gil);

/* Where the check points sit: 0; EINVAL for a value outside the enum. */
int rlab_gil_set_check_placement(rlab_gil *gil, rlab_gil_placement placement);
rlab_gil_placement rlab_gil_check_placement(rlab_gil *gil);

/* Attaches the calling thread (take_gil, PyEval_RestoreThread): waits until
 * the GIL is free, asking the holder to drop it after each switch interval.
 * 0 when held; EAGAIN if timeout is 0 and another thread holds it;
 * ETIMEDOUT when the deadline passed; EDEADLK if the caller holds it
 * already; EINVAL for a bad timeout.  A waiter that gives up may leave a
 * drop request behind: the holder then drops and re-takes the GIL at its
 * next check point, without waiting for anybody. */
int rlab_gil_acquire(rlab_gil *gil, double timeout);
/* Detaches the calling thread (drop_gil, as a thread that finishes): 0;
 * EPERM if the caller does not hold it. */
int rlab_gil_release(rlab_gil *gil);
/* PyGILState_Check(): true when the calling thread holds the GIL. */
bool rlab_gil_held(rlab_gil *gil);

/* The eval-breaker check at a loop back-edge: one relaxed atomic load when
 * nobody asked for the GIL.  If a waiter asked, the holder drops it, waits
 * until a waiter has taken it (forced switching) and queues to take it back
 * (without a deadline, as CPython does).  Returns true if another thread
 * held the GIL in between; false otherwise, and always for a caller that
 * does not hold it. */
bool rlab_gil_check(rlab_gil *gil);
/* The same at a point of the given kind: a check point under the GIL's
 * placement, or nothing (false). */
bool rlab_gil_check_at(rlab_gil *gil, rlab_gil_point point);

/* Py_BEGIN_ALLOW_THREADS (PyEval_SaveThread) before a blocking call: drops
 * the GIL (with forced switching if a drop was requested).  0; EPERM if
 * the caller does not hold it. */
int rlab_gil_begin_blocking(rlab_gil *gil);
/* Py_END_ALLOW_THREADS: takes the GIL back, waiting as long as it takes.
 * 0; EDEADLK if the caller holds it already. */
int rlab_gil_end_blocking(rlab_gil *gil);

/* A snapshot of the counters: 0; EINVAL if an argument is NULL. */
int rlab_gil_get_stats(rlab_gil *gil, rlab_gil_stats *out);

/* ------------------------------------------------- the `n += 1` model --- */

/* Options of rlab_gil_counter_demo. */
typedef struct {
    long threads;    /* 1..64 threads (0: 2) */
    long iterations; /* `n += 1` per thread, >= 0 (0: 100000) */
    /* The increment calls a function between its load and its store, as
     * `n = n + f()` or an `__iadd__` written in Python: a CALL point. */
    bool call_in_increment;
} rlab_gil_counter_opts;

/* What rlab_gil_counter_demo saw. */
typedef struct {
    long expected;          /* threads x iterations */
    long final;             /* n at the end */
    long lost;              /* expected - final */
    long crossed;           /* increments with another thread's store
                             * between their load and their store */
    unsigned long switches; /* GIL switches during the run */
    double seconds;         /* wall time of the run */
} rlab_gil_counter_result;

/* Runs the source material's unsynchronized counter under `gil`: each
 * thread takes the GIL and runs `for _ in range(iterations): n += 1`, one
 * step per instruction (LOAD n, ADD 1 or CALL, STORE n, jump back), with a
 * check point of the matching kind after each step, so the GIL's switch
 * interval and check placement decide the outcome.  All threads are
 * waiting for the GIL before the first one starts.  Every access to n is
 * made under the GIL, so there is no data race; updates are lost exactly
 * when some increment is crossed (lost > 0 if and only if crossed > 0).
 * The caller waits for the GIL first, and must not hold it.  opts NULL
 * means the defaults.  0 and *out filled; EINVAL for a NULL gil or out,
 * out-of-range options or threads x iterations beyond a long; EDEADLK if
 * the caller holds the GIL; the thread start's code otherwise. */
int rlab_gil_counter_demo(rlab_gil *gil, const rlab_gil_counter_opts *opts,
                          rlab_gil_counter_result *out);

#ifdef __cplusplus
}
#endif

#endif
