/*
 * racelab/queue.h - Python's `queue` module in C.
 *
 * Queue (FIFO), LifoQueue and PriorityQueue share one type, rlab_queue, with
 * Python 3.13's semantics: bounded or unbounded, put/get with timeouts,
 * task_done/join, and shutdown(immediate).  SimpleQueue is a separate,
 * lighter type: unbounded FIFO, no task tracking, no shutdown.
 *
 * Items are void pointers owned by the caller; the queue never looks inside
 * them.  Status codes and timeouts follow racelab/error.h: a put or get that
 * would block with timeout 0 is EAGAIN (queue.Full / queue.Empty from
 * put_nowait / get_nowait), one whose deadline passed is ETIMEDOUT, and a
 * queue that is shut down answers RLAB_ESHUTDOWN (queue.ShutDown).  A call
 * that fails changes nothing: no item is lost or duplicated.  A wait never
 * ends early on a spurious wake-up: a getter woken for an item another
 * thread took first (or a putter for room another put filled) keeps
 * waiting until its deadline.
 *
 * Every function but *_free may be called from any number of threads at
 * once.  On a NULL queue the calls that return a status return EINVAL and
 * the queries answer as for an empty, unbounded queue that is not shut
 * down.
 *
 * Queue is a two-lock queue (producers and consumers do not contend with
 * each other) over chunks of slots; LifoQueue and PriorityQueue keep an
 * array (a stack, a binary heap) under one lock.  A hand-off wakes a
 * sleeping thread only when one is sleeping, so a stream of items between
 * threads that keep up with each other makes no system call.
 */
#ifndef RACELAB_QUEUE_H
#define RACELAB_QUEUE_H

#include <stdbool.h>

#include "racelab/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlab_queue rlab_queue;

/* Queue(maxsize): FIFO; maxsize <= 0 means unbounded, as in Python. */
rlab_queue *rlab_queue_new(long maxsize);
/* LifoQueue(maxsize): last in, first out. */
rlab_queue *rlab_lifo_queue_new(long maxsize);
/* PriorityQueue(maxsize): get returns the smallest item by cmp (negative,
 * zero, positive as for qsort, but called with the two items themselves,
 * not pointers to them), first in first out among equal items.  cmp runs
 * under the queue's lock and must not call the queue.  NULL with errno
 * EINVAL if cmp is NULL.  Each *_new returns NULL with errno ENOMEM when
 * out of memory. */
rlab_queue *rlab_priority_queue_new(long maxsize,
                                    int (*cmp)(const void *, const void *));

/* put(item, timeout): 0; EAGAIN if full and timeout is 0 (queue.Full);
 * ETIMEDOUT if still full at the deadline; RLAB_ESHUTDOWN if the queue is
 * (also with timeout 0) or becomes shut down while waiting; ENOMEM if the
 * queue could not grow; EINVAL for a NULL queue or a bad timeout (checked
 * even when the put would not block).  Any item may be put, NULL too.
 * Each successful put adds one unfinished task. */
int rlab_queue_put(rlab_queue *q, void *item, double timeout);
/* get(timeout): 0 and *item; EAGAIN if empty and timeout is 0
 * (queue.Empty); ETIMEDOUT; RLAB_ESHUTDOWN once the queue is shut down and
 * empty, also with timeout 0 (at once after an immediate shutdown, which
 * empties it); EINVAL for a NULL queue or item pointer or a bad timeout.
 * *item is written only on success.  A get does not finish the item's
 * task: call rlab_queue_task_done. */
int rlab_queue_get(rlab_queue *q, void **item, double timeout);

/* qsize(), empty(), full(): snapshots, as in Python.  full() is false for
 * an unbounded queue. */
long rlab_queue_qsize(rlab_queue *q);
bool rlab_queue_empty(rlab_queue *q);
bool rlab_queue_full(rlab_queue *q);
/* maxsize as given to *_new, or 0 for an unbounded queue (any maxsize
 * <= 0). */
long rlab_queue_maxsize(rlab_queue *q);

/* task_done(): 0; EINVAL if called more times than items were put
 * (ValueError), and nothing changes.  Wakes every joiner when the count of
 * unfinished tasks reaches zero. */
int rlab_queue_task_done(rlab_queue *q);
/* join(timeout): 0 once every item put has had its task_done (or was
 * dropped by an immediate shutdown); ETIMEDOUT if tasks are still
 * unfinished at the deadline (at once for timeout 0, as Event.wait);
 * EINVAL.  A plain shutdown does not release joiners. */
int rlab_queue_join(rlab_queue *q, double timeout);
/* The number of items put and not yet marked done (unfinished_tasks). */
long rlab_queue_unfinished_tasks(rlab_queue *q);

/* shutdown(immediate) (Python 3.13): afterwards put fails with
 * RLAB_ESHUTDOWN and blocked putters wake with it.  Without immediate, get
 * drains the remaining items, then fails with RLAB_ESHUTDOWN.  With
 * immediate, the remaining items are dropped, each counted as task_done
 * (so join returns once the items already handed out are done), and every
 * blocked getter wakes at once with RLAB_ESHUTDOWN.  Dropped items are kept
 * for rlab_queue_free's free_item, so nothing leaks.  Calling it again is
 * allowed (an immediate call after a plain one drops what is left).
 * 0, or EINVAL for a NULL queue. */
int rlab_queue_shutdown(rlab_queue *q, bool immediate);
bool rlab_queue_is_shutdown(rlab_queue *q);

/* Frees the queue; free_item (may be NULL) gets every item still inside and
 * every item an immediate shutdown dropped, each once.  No thread may be
 * using the queue or still be inside one of its calls.  NULL is a no-op. */
void rlab_queue_free(rlab_queue *q, void (*free_item)(void *));

/* ---------------------------------------------------------- SimpleQueue --- */

typedef struct rlab_simple_queue rlab_simple_queue;

/* SimpleQueue(): NULL with errno ENOMEM when out of memory.  Producers
 * and consumers take separate locks, and a put makes a system call only
 * when a getter sleeps. */
rlab_simple_queue *rlab_simple_queue_new(void);
/* put(item): never blocks; 0, ENOMEM (nothing changed), EINVAL. */
int rlab_simple_queue_put(rlab_simple_queue *q, void *item);
/* get(timeout): 0 and *item; EAGAIN if empty and timeout is 0; ETIMEDOUT;
 * EINVAL for a NULL queue or item pointer or a bad timeout.  *item is
 * written only on success. */
int rlab_simple_queue_get(rlab_simple_queue *q, void **item, double timeout);
long rlab_simple_queue_qsize(rlab_simple_queue *q);
bool rlab_simple_queue_empty(rlab_simple_queue *q);
/* Frees the queue; free_item (may be NULL) gets every item still inside. */
void rlab_simple_queue_free(rlab_simple_queue *q, void (*free_item)(void *));

#ifdef __cplusplus
}
#endif

#endif
