/*
 * mp_internal.h - what the multiprocessing sources (process.c, pipe.c,
 * shm.c, pqueue.c) need from each other.  Not installed.
 */
#ifndef RLAB_MP_INTERNAL_H
#define RLAB_MP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "internal.h"
#include "racelab/multiprocessing.h"

/* ---- pipe.c ---- */

/* The descriptor behind a connection, and which way it may be used, so a
 * connection can be handed to a child (inherited across fork, or passed
 * with SCM_RIGHTS / kept open across exec). */
int rlab__conn_fd(const rlab_conn *c);
bool rlab__conn_can_read(const rlab_conn *c);
bool rlab__conn_can_write(const rlab_conn *c);
/* Adopts fd (the child's copy) as a connection; NULL on ENOMEM.  The
 * connection owns fd.  (Also NULL, errno EBADF, for fd < 0, and EINVAL
 * for neither direction; on failure fd stays the caller's.)  The kind
 * (socket or pipe) is read from fd. */
rlab_conn *rlab__conn_adopt(int fd, bool can_read, bool can_write);
/* True when a recv on c can go on without the descriptor becoming
 * readable: a whole header is already buffered, a message is half read,
 * or end of file was seen.  A connection reads ahead into its own buffer,
 * so whoever waits on several connections' descriptors with poll()
 * (connection.wait, a pool's result loop) must check this first: data
 * already buffered no longer shows on the descriptor. */
bool rlab__conn_buffered(const rlab_conn *c);

/* send_bytes of the concatenation of n (at most RLAB__SENDV_MAX) pieces:
 * one message, codes as rlab_conn_send. */
#define RLAB__SENDV_MAX 256
struct iovec;
int rlab__conn_sendv(rlab_conn *c, const struct iovec *iov, int n);

/* ---- shm.c ---- */

/* The shared arena every process-shared object lives in: one memfd,
 * mapped at the same address in every process so pointers stay valid.
 * Export: 0 and its fd, address and size; ENOENT when no shared object
 * was ever made (nothing to pass).  The fd stays the arena's (close-on-exec;
 * do not close it).  Import (in a spawn or forkserver child, before any
 * task code runs): maps fd at addr; 0, or ENOMEM when that address range
 * is taken in the child; EINVAL when fd is not an arena of that size
 * (EBADF and the like when fd is not open); EBUSY when this process
 * already made or imported an arena elsewhere.  Import
 * keeps a close-on-exec duplicate: the caller still owns fd (and may close
 * it).  Fork children inherit the mapping and need neither. */
int rlab__shm_export(int *fd, void **addr, size_t *size);
int rlab__shm_import(int fd, void *addr, size_t size);

/* The arena's allocator, for shared objects made in other files: n bytes,
 * 16-aligned, not zeroed, NULL with errno (ENOMEM); free ignores NULL and
 * pointers that are not live arena blocks. */
void *rlab__shm_alloc(size_t n);
void rlab__shm_free(void *p);
/* A robust, process-shared PTHREAD_MUTEX_NORMAL mutex (to live in the
 * arena): 0 or a pthread error code. */
int rlab__shm_mutex_init(pthread_mutex_t *mu);
/* Locks it by deadline: 0; EAGAIN (a try found it held); ETIMEDOUT;
 * RLAB_EOWNERDEAD (held, its dead holder's state recovered: already
 * marked consistent).  ThreadSanitizer-aware, like the plock's. */
int rlab__shm_mutex_lock(pthread_mutex_t *mu, const rlab_deadline *d);

/* ---- pqueue.c: test seams ---- */

/* The first half of a put (or a get): waits for room (or an item) as
 * rlab_pqueue_put (get) does, copies the item into the ring (or out, into
 * *data / *len), and returns 0 with the queue's lock still held, before the
 * item is made visible (removed).  Only for a test whose calling process
 * then dies holding the lock; the codes are those of put and get. */
int rlab__pqueue_put_unpublished(rlab_pqueue *q, const void *data,
                                 size_t len, double timeout);
int rlab__pqueue_get_unpublished(rlab_pqueue *q, double timeout, void **data,
                                 size_t *len);

/* ---- process.c ---- */

/* True in a process racelab started (spawn, forkserver, fork child). */
bool rlab__mp_is_child(void);

/* ---- process_pool.c ---- */

/* The pool worker's task, registered by process.c's one-time init under
 * this name, so every child finds it. */
#define RLAB__POOL_WORKER "rlab.pool_worker"
int rlab__pool_worker(void *arg, void **result);

/* A job of n items for the pool's workers: the future's result is, when
 * chunk is true, the packed outcomes of every item (read them with
 * rlab__chunk_next), else item 0's bytes with its code as the future's.
 * Codes as rlab_executor_submit. */
int rlab__ppool_submit(rlab_executor *ex, rlab_task_fn fn,
                       rlab_bytes *const *args, size_t n, bool chunk,
                       rlab_future **out);
/* Submits n items as chunk jobs of chunksize: *fs (malloc'd, NULL only
 * on ENOMEM) holds *submitted futures; the code of the submit that failed,
 * if one did (those after it were not tried). */
int rlab__ppool_submit_chunks(rlab_executor *ex, rlab_task_fn fn,
                              rlab_bytes *const *args, size_t n,
                              size_t chunksize, rlab_future ***fs,
                              size_t *submitted);
/* The next item of a packed chunk result: its code and bytes (borrowed),
 * advancing *at; false at the end. */
bool rlab__chunk_next(const rlab_bytes *packed, size_t *at, int *code,
                      const unsigned char **data, size_t *len);
/* Pool.terminate(): no more submits, the workers are killed, unfinished
 * futures end with RLAB_ECANCELLED. */
void rlab__ppool_terminate(rlab_executor *ex);
/* Waits for the pool's threads and workers to finish after a shutdown or
 * terminate: 0 or ETIMEDOUT. */
int rlab__ppool_join(rlab_executor *ex, double timeout);

#endif
