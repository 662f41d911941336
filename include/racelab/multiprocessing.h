/*
 * racelab/multiprocessing.h - Python's `multiprocessing` in C: processes,
 * start methods, pipes, process-shared locks and values, and Queue.
 *
 * Tasks.  A child process runs a *registered* task: the C counterpart of
 * pickling a function by its qualified name, so that every start method
 * (including spawn, which re-executes the program) can find it.  A task has
 * the futures.h shape, `int fn(void *arg, void **result)`; across a process
 * boundary `arg` is an `rlab_bytes *` (a copy of the bytes the parent gave)
 * and `*result`, if set, must be an `rlab_bytes *` made with
 * rlab_bytes_new (the callee's to free when it is not sent back).
 *
 * Start methods, as in Python:
 *   fork        the child is a copy of the parent at the moment of start;
 *               fast, but only async-signal-safe work is safe in a child of
 *               a multi-threaded parent (a lock held by another thread
 *               stays held forever in the child: the fork_with_lock lesson);
 *   spawn       the child re-executes the program (/proc/self/exe) and runs
 *               the task by name: nothing is inherited but what is passed;
 *   forkserver  a server process, started by re-executing the program while
 *               the parent is still single-threaded, forks the children;
 *               children start fast and never inherit the parent's threads.
 * spawn and forkserver need the program's main() to call rlab_mp_main()
 * first, after registering its tasks (Python's `if __name__ ==
 * '__main__'` guard, made explicit).  The default method is forkserver, as
 * in Python 3.14 on Linux.
 *
 * Errors follow racelab/error.h.  A child's exit code is the task's return
 * value when it is 0..255, 1 for any other code, and -N when a signal N
 * ended it, as Python reports it.
 */
#ifndef RACELAB_MULTIPROCESSING_H
#define RACELAB_MULTIPROCESSING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "racelab/error.h"
#include "racelab/futures.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- Bytes --- */

/* A length and the bytes after it, in one allocation. */
typedef struct {
    size_t len;
    unsigned char data[];
} rlab_bytes;

/* A copy of len bytes (data may be NULL when len is 0); NULL on ENOMEM. */
rlab_bytes *rlab_bytes_new(const void *data, size_t len);
void rlab_bytes_free(rlab_bytes *b);

/* -------------------------------------------------------------- Tasks --- */

/* Registers fn under name (at most 63 characters).  0; EEXIST when name is
 * taken by another function or fn is registered under another name;
 * EINVAL; ENOMEM.  Register the same tasks in the same order in every run
 * of the program, before rlab_mp_main(). */
int rlab_task_register(const char *name, rlab_task_fn fn);
/* The registered name of fn, or NULL. */
const char *rlab_task_name(rlab_task_fn fn);
/* The function registered as name, or NULL. */
rlab_task_fn rlab_task_lookup(const char *name);

/* Call at the top of main(), after registering tasks.  In a process that
 * racelab started (spawn child, forkserver, pool worker) it does that
 * process's job and exits, never returning; in any other process it returns
 * at once. */
void rlab_mp_main(int argc, char **argv);

typedef enum {
    RLAB_START_DEFAULT = 0, /* the process-wide default (forkserver) */
    RLAB_START_FORK,
    RLAB_START_SPAWN,
    RLAB_START_FORKSERVER,
} rlab_start_method;

/* set_start_method / get_start_method: the default for new processes and
 * pools.  EINVAL for an unknown method. */
int rlab_set_start_method(rlab_start_method m);
rlab_start_method rlab_get_start_method(void);
/* "fork", "spawn" or "forkserver". */
const char *rlab_start_method_name(rlab_start_method m);

/* ------------------------------------------------------------ Process --- */

typedef struct rlab_process rlab_process;
typedef struct rlab_conn rlab_conn;

typedef struct {
    const char *name;          /* NULL: "Process-N" */
    bool daemon;               /* terminated when the parent exits normally */
    rlab_start_method method;  /* RLAB_START_DEFAULT: the default */
    /* Connections the child receives (rlab_process_conn(i) in the child);
     * the parent keeps its own handles.  At most 64. */
    rlab_conn *const *conns;
    size_t nconns;
} rlab_process_opts;

/* Process(target=fn, args=arg): fn must be registered (EINVAL otherwise);
 * arg (may be NULL: an empty buffer) is copied.  opts may be NULL.  NULL on
 * error, errno set. */
rlab_process *rlab_process_new(rlab_task_fn fn, const void *arg, size_t len,
                               const rlab_process_opts *opts);
/* start(): 0; EPERM if already started (Python's AssertionError), or for
 * spawn and forkserver when main() never called rlab_mp_main() (the child
 * would run main() instead of the task); EAGAIN when the child could not
 * be created. */
int rlab_process_start(rlab_process *p);
/* join(timeout): 0 once the child has exited (it is reaped); ETIMEDOUT;
 * EPERM if not started; EINVAL. */
int rlab_process_join(rlab_process *p, double timeout);
bool rlab_process_is_alive(rlab_process *p);
/* terminate() sends SIGTERM, kill() SIGKILL; 0 also when the child has
 * already exited; EPERM if not started. */
int rlab_process_terminate(rlab_process *p);
int rlab_process_kill(rlab_process *p);
/* exitcode: 0 and *code once the child exited (reaping it if needed);
 * EAGAIN while it runs or before start (Python's None). */
int rlab_process_exitcode(rlab_process *p, int *code);
pid_t rlab_process_pid(const rlab_process *p);   /* 0 before start */
const char *rlab_process_name(const rlab_process *p);
bool rlab_process_daemon(const rlab_process *p);
/* Frees the handle.  A child still running is not killed: a non-daemon one
 * is joined at exit, as Python does; a daemon one is terminated then. */
void rlab_process_free(rlab_process *p);

/* current_process().name ("MainProcess" in the parent), os.getpid(),
 * parent_process().pid (0 in a process racelab did not start). */
const char *rlab_current_process_name(void);
pid_t rlab_current_pid(void);
pid_t rlab_parent_pid(void);
/* In a child: the i-th connection passed in rlab_process_opts.conns, or
 * NULL.  The child owns it. */
rlab_conn *rlab_process_conn(size_t i);

/* ------------------------------------------------------------- Pipes --- */

/* Pipe(duplex): two connected ends carrying whole messages (a length
 * prefix, then the bytes).  duplex: both ends send and receive; otherwise
 * *a only receives and *b only sends.  Messages larger than the pipe
 * buffer are fine; SIGPIPE never kills the process.  0, EMFILE, ENFILE,
 * ENOMEM; EINVAL for NULL.  A connection is not for concurrent use, except
 * that on a duplex end one thread may send while another receives. */
int rlab_pipe(bool duplex, rlab_conn **a, rlab_conn **b);
/* send_bytes: 0 once the whole message is written; RLAB_EEOF when the
 * peer has closed; EMSGSIZE beyond the maximum message size (nothing is
 * sent); EBADF on a receive-only end or a closed descriptor; EINVAL. */
int rlab_conn_send(rlab_conn *c, const void *data, size_t len);
/* recv_bytes: 0 and a malloc'd *data (free() it; not NULL even when *len
 * is 0) of *len bytes; RLAB_EEOF when the peer closed and nothing is left;
 * ETIMEDOUT (also for timeout 0); EMSGSIZE when the incoming message is
 * larger than the maximum (the message is discarded whole and the next one
 * arrives intact); EBADF on a send-only end or a closed descriptor; EINVAL.
 * One deadline covers the whole message; when it passes mid-message, what
 * was read is kept and the next recv continues it: no byte is lost. */
int rlab_conn_recv(rlab_conn *c, double timeout, void **data, size_t *len);
/* poll(timeout): 0 when a message's header (or EOF) has arrived, so recv
 * has a message to read (its body may still be on its way); ETIMEDOUT;
 * EBADF; EINVAL.  It may read ahead into the connection's buffer. */
int rlab_conn_poll(rlab_conn *c, double timeout);
/* Largest message send and recv accept (default 64 MiB); EINVAL for 0. */
int rlab_conn_set_max_message(rlab_conn *c, size_t max);
int rlab_conn_fileno(const rlab_conn *c);
/* close(): closes the descriptor and frees the handle; the peer sees EOF
 * (once no other process holds a copy).  NULL is a no-op. */
void rlab_conn_close(rlab_conn *c);

/* A named pipe (FIFO) for unrelated processes: created (mode 0600) if
 * missing, and left in place (remove it with unlink()).  for_write false
 * opens the reading end.  Opening waits for the other side until timeout
 * (ETIMEDOUT): a writer for a reader to open; a reader for a writer, which
 * a racelab writer announces as it opens (a writer of other origin is seen
 * at its first byte).  0; EINVAL; EEXIST when path is not a FIFO; errno
 * codes of open and mkfifo. */
int rlab_fifo_open(const char *path, bool for_write, double timeout,
                   rlab_conn **out);

/* ---------------------------------------------- Process-shared state --- */

/* Objects in shared memory, usable from every process started after they
 * were made (fork children inherit the mapping; spawn and forkserver
 * children receive it with the process).  Locks are robust: when a holder
 * dies, the next acquirer gets the lock and the code RLAB_EOWNERDEAD
 * (the lock is held; the data it guards may be half-updated). */
typedef struct rlab_plock rlab_plock;       /* Lock / RLock */
typedef struct rlab_psemaphore rlab_psemaphore;
typedef struct rlab_pevent rlab_pevent;
typedef struct rlab_pcondition rlab_pcondition;
typedef struct rlab_value rlab_value;

rlab_plock *rlab_plock_new(bool recursive);
int rlab_plock_acquire(rlab_plock *l, double timeout);   /* 0, EAGAIN,
    ETIMEDOUT, RLAB_EOWNERDEAD (acquired), EDEADLK (non-recursive, held by
    the caller) */
int rlab_plock_release(rlab_plock *l);   /* EPERM if not the owner */
void rlab_plock_free(rlab_plock *l);

rlab_psemaphore *rlab_psemaphore_new(long value, long bound); /* bound 0:
    none; NULL with errno EINVAL (value or bound negative or above INT_MAX,
    value above bound) or ENOMEM */
int rlab_psemaphore_acquire(rlab_psemaphore *s, double timeout); /* 0,
    EAGAIN (timeout 0), ETIMEDOUT */
int rlab_psemaphore_release(rlab_psemaphore *s);   /* EOVERFLOW past bound
    (BoundedSemaphore's ValueError) or past INT_MAX */
long rlab_psemaphore_value(rlab_psemaphore *s);
void rlab_psemaphore_free(rlab_psemaphore *s);

rlab_pevent *rlab_pevent_new(void);
int rlab_pevent_set(rlab_pevent *e);     /* 0; EINVAL for NULL */
int rlab_pevent_clear(rlab_pevent *e);
bool rlab_pevent_is_set(rlab_pevent *e);
int rlab_pevent_wait(rlab_pevent *e, double timeout);   /* 0, ETIMEDOUT */
void rlab_pevent_free(rlab_pevent *e);

/* lock NULL: its own RLock, as Python's Condition(); a lock passed in
 * stays the caller's (free it after the condition). */
rlab_pcondition *rlab_pcondition_new(rlab_plock *lock);
int rlab_pcondition_acquire(rlab_pcondition *c, double timeout);
int rlab_pcondition_release(rlab_pcondition *c);
/* wait: releases the lock (every level of an RLock), waits for a notify
 * and reacquires it (without a timeout, as Python does).  0 when
 * notified; ETIMEDOUT (Python's False); RLAB_EOWNERDEAD when the lock was
 * recovered from a dead holder on the way back; EPERM without the lock
 * (Python's RuntimeError); ENOMEM.  notify(n) wakes the n longest waiting
 * (a waiter whose process died and was reaped is skipped), notify_all
 * every one: 0; EPERM without the lock; EINVAL for n < 0. */
int rlab_pcondition_wait(rlab_pcondition *c, double timeout);
int rlab_pcondition_notify(rlab_pcondition *c, int n);
int rlab_pcondition_notify_all(rlab_pcondition *c);
void rlab_pcondition_free(rlab_pcondition *c);

/* Value(typecode, lock=True): size bytes of zeroed shared memory with its
 * own robust RLock (as Python's).  NULL with errno EINVAL (size 0) or
 * ENOMEM.  rlab_value_get_long/set_long/add_long treat the first 8 bytes
 * as a long and take the lock: 0; EINVAL (size below a long);
 * RLAB_EOWNERDEAD when the lock was recovered from a dead holder (the
 * operation was still done).  rlab_value_ptr gives raw access
 * (rlab_value_lock guards it; never free that lock). */
rlab_value *rlab_value_new(size_t size);
void *rlab_value_ptr(rlab_value *v);
rlab_plock *rlab_value_lock(rlab_value *v);
int rlab_value_get_long(rlab_value *v, long *out);
int rlab_value_set_long(rlab_value *v, long x);
int rlab_value_add_long(rlab_value *v, long delta, long *result);
void rlab_value_free(rlab_value *v);

/* ------------------------------------------------------------- Queue --- */

/* multiprocessing.Queue(maxsize): a FIFO of byte strings in shared memory,
 * usable (like the objects above) by every process started after it was
 * made, and by any number of threads in each.  put copies the item into a
 * ring buffer in the shared arena and get copies it out: there is no
 * feeder thread, so an item is in the queue as soon as put returns, and
 * qsize is exact.  maxsize bounds the number of items (0: no bound);
 * capacity is the ring's size in bytes (0: 1 MiB; rounded up to a multiple
 * of 8), in which an item takes 8 bytes plus its length rounded up to 8.
 * NULL with errno EINVAL (maxsize negative) or ENOMEM (no room in the
 * arena, whose 64 MiB every shared object shares).
 *
 * A process that dies inside a call, even one killed holding the queue's
 * internal (robust) lock, leaves the queue as it was before that call or
 * as it is after it, never in between: an item becomes visible, or leaves,
 * by one store made after its bytes are copied in (or out), so a
 * half-written item is never seen and an item whose reader died before
 * that store stays at the front.  The next caller takes the lock over
 * without any sign (no RLAB_EOWNERDEAD: nothing needs repair), and
 * processes blocked in put or get wake up as usual.  Wake-ups are not
 * ordered: a blocked put of a large item may wait while smaller ones fit. */
typedef struct rlab_pqueue rlab_pqueue;

rlab_pqueue *rlab_pqueue_new(long maxsize, size_t capacity);
/* put(obj, timeout): copies len bytes (data may be NULL when len is 0) to
 * the back.  0; EAGAIN (full, timeout 0: queue.Full); ETIMEDOUT (still
 * full at the deadline); EMSGSIZE (the item could never fit in the ring,
 * checked first); RLAB_ESHUTDOWN after rlab_pqueue_close (blocked putters
 * wake with it); EINVAL (NULL queue, NULL data with len > 0, bad timeout).
 * "Full" is maxsize items, or too few free bytes for this item. */
int rlab_pqueue_put(rlab_pqueue *q, const void *data, size_t len,
                    double timeout);
/* get(timeout): removes the front item; 0 with *data (malloc'd, free() it;
 * never NULL, even when *len is 0) and *len.  EAGAIN (empty, timeout 0:
 * queue.Empty); ETIMEDOUT; RLAB_ESHUTDOWN once closed and empty (items put
 * before the close are still handed out; blocked getters wake with it);
 * EINVAL (NULL queue, data or len, bad timeout); ENOMEM (the item stays at
 * the front).  On failure *data and *len are left alone. */
int rlab_pqueue_get(rlab_pqueue *q, double timeout, void **data,
                    size_t *len);
/* qsize(), empty(), full(): exact at the moment of the call (0 / false
 * for NULL).  full: maxsize items, or no room left even for an empty
 * item. */
long rlab_pqueue_qsize(rlab_pqueue *q);
bool rlab_pqueue_empty(rlab_pqueue *q);
bool rlab_pqueue_full(rlab_pqueue *q);
/* close() for every process, as Python 3.13's Queue.shutdown() for
 * threads: later puts fail with RLAB_ESHUTDOWN, gets drain what is left
 * and then fail with it; every blocked putter and getter, in any process,
 * wakes.  0 (also when closed already); EINVAL for NULL. */
int rlab_pqueue_close(rlab_pqueue *q);
bool rlab_pqueue_is_closed(rlab_pqueue *q);
/* Frees the shared memory (with any items left): call it once, in one
 * process, after every process is done with the queue.  NULL is a
 * no-op. */
void rlab_pqueue_free(rlab_pqueue *q);

/* -------------------------------------------------- Process pools --- */

/* Both pools run registered tasks in worker processes that live as long as
 * the pool (or max_tasks_per_child tasks).  Arguments and results cross the
 * process boundary as bytes: a task gets an `rlab_bytes *` and, on
 * success, may set *result to an rlab_bytes_new buffer, which is sent back
 * and freed in the worker (on failure the task frees what it made; only
 * its code comes back).
 *
 * Broken pools (Python's BrokenProcessPool): a worker that dies without
 * being asked to (a crash, a signal, exit() in a task, a failing
 * initializer, a connection that breaks mid-message) breaks the pool at
 * once: every task queued or running fails with RLAB_EBROKEN, the other
 * workers are killed, every child is reaped, and later submits return
 * RLAB_EBROKEN. */
typedef struct {
    rlab_start_method method;  /* RLAB_START_DEFAULT: the default */
    /* A worker exits after this many tasks and a fresh one replaces it
     * (Python's max_tasks_per_child / maxtasksperchild); 0: never. */
    int max_tasks_per_child;
    /* initializer(initarg) runs once in each new worker, before any task;
     * it must be registered.  A non-zero return breaks the pool. */
    rlab_task_fn initializer;
    const void *initarg;
    size_t initarg_len;
} rlab_process_pool_opts;

/* ProcessPoolExecutor(max_workers, mp_context, initializer, initargs,
 * max_tasks_per_child): the executor of racelab/futures.h, so every
 * rlab_executor_* call and every future call works on it as on a thread
 * pool.  max_workers 0: the number of CPUs; negative or above 1024: NULL,
 * errno EINVAL (also for an unregistered initializer).  opts may be NULL.
 * The workers start here: NULL with errno EAGAIN when one could not be
 * started, EPERM for spawn and forkserver without rlab_mp_main().
 *
 * On this executor, rlab_executor_submit's fn must be registered (EINVAL
 * otherwise) and arg is an `rlab_bytes *` (NULL: empty), copied at submit
 * (EMSGSIZE above 1 GiB).  A future's result is an `rlab_bytes *` that
 * belongs to the future: valid until the last reference to it is dropped.
 * rlab_executor_map and map_chunked hand results[i] to the caller (free
 * them with rlab_bytes_free); chunks cross the boundary as one message
 * each.  Workers are daemon processes: a pool never freed has them
 * terminated at exit. */
rlab_executor *rlab_process_pool_new(int max_workers,
                                     const rlab_process_pool_opts *opts);

/* multiprocessing.Pool.  Pool(processes, initializer, initargs,
 * maxtasksperchild) takes the same options; processes 0: the number of
 * CPUs.  NULL on error, errno as for rlab_process_pool_new. */
typedef struct rlab_pool rlab_pool;
typedef struct rlab_async_result rlab_async_result;
typedef struct rlab_imap rlab_imap;

rlab_pool *rlab_pool_new(int processes, const rlab_process_pool_opts *opts);

/* apply(fn, args): runs fn(arg) in a worker and waits.  Returns the task's
 * code, with *result (the caller's, rlab_bytes_free; NULL if the task set
 * none) when it is 0; RLAB_ESHUTDOWN after close or terminate;
 * RLAB_EBROKEN; EINVAL (fn not registered); ENOMEM. */
int rlab_pool_apply(rlab_pool *p, rlab_task_fn fn, const void *arg, size_t len,
                    rlab_bytes **result);
/* apply_async: 0 and *out, an AsyncResult; codes as apply. */
int rlab_pool_apply_async(rlab_pool *p, rlab_task_fn fn, const void *arg,
                          size_t len, rlab_async_result **out);
/* map(fn, iterable, chunksize): fn(args[i]) for every i < n, chunksize
 * items per message (0: Python's default, n / (4 * processes) rounded up).
 * results[i] (the caller's; may be NULL as an array) and codes[i] (may be
 * NULL) in input order.  Returns 0 when every task returned 0, else the
 * code of the first failing item in input order (Python raises the first
 * exception); RLAB_EBROKEN, RLAB_ESHUTDOWN as apply.  args[i] NULL is an
 * empty buffer. */
int rlab_pool_map(rlab_pool *p, rlab_task_fn fn, rlab_bytes *const *args,
                  size_t n, size_t chunksize, rlab_bytes **results, int *codes);
/* map_async: 0 and *out; collect with rlab_async_result_get_map. */
int rlab_pool_map_async(rlab_pool *p, rlab_task_fn fn, rlab_bytes *const *args,
                        size_t n, size_t chunksize, rlab_async_result **out);

/* AsyncResult.get(timeout) of an apply_async: the task's code with
 * *result (borrowed: valid until rlab_async_result_free; NULL if none)
 * when it is 0; ETIMEDOUT; RLAB_EBROKEN; RLAB_ECANCELLED (terminated
 * before it ran); EINVAL for a map_async result. */
int rlab_async_result_get(rlab_async_result *r, double timeout,
                          const rlab_bytes **result);
/* get(timeout) of a map_async: as rlab_pool_map, but results[i] are
 * borrowed (valid until rlab_async_result_free); ETIMEDOUT (nothing
 * stored); EINVAL for an apply_async result. */
int rlab_async_result_get_map(rlab_async_result *r, double timeout,
                              const rlab_bytes **results, int *codes);
/* ready(), wait(timeout) (0 or ETIMEDOUT), successful(): 0 and *ok once
 * ready (every task returned 0), EAGAIN before (Python's ValueError). */
bool rlab_async_result_ready(rlab_async_result *r);
int rlab_async_result_wait(rlab_async_result *r, double timeout);
int rlab_async_result_successful(rlab_async_result *r, bool *ok);
/* The tasks go on if the result is freed first; NULL is a no-op. */
void rlab_async_result_free(rlab_async_result *r);

/* imap(fn, iterable, chunksize) (ordered) and imap_unordered: every item
 * is submitted at once, in chunks of chunksize (0: 1, as Python's), and
 * next() hands back results lazily: in input order, each as soon as it and
 * those before it are done; or unordered, in the order they finish.
 * 0 and *out; codes as apply. */
int rlab_pool_imap(rlab_pool *p, rlab_task_fn fn, rlab_bytes *const *args,
                   size_t n, size_t chunksize, bool ordered, rlab_imap **out);
/* next(timeout): 0 with *index (may be NULL), *code (the item's code) and
 * *result (the caller's, NULL unless *code is 0); RLAB_EEOF after the
 * last; ETIMEDOUT (nothing consumed); EINVAL.  One thread at a time. */
int rlab_imap_next(rlab_imap *it, double timeout, size_t *index, int *code,
                   rlab_bytes **result);
void rlab_imap_free(rlab_imap *it);

/* close(): no more tasks; those submitted still run.  terminate(): stops
 * the workers now; tasks not finished fail with RLAB_ECANCELLED.  join():
 * after close or terminate, waits until every worker has exited (EPERM
 * before; ETIMEDOUT).  free: terminate() and join() unless already joined
 * (Python's `with Pool() as p:` terminates on exit).  0 or EINVAL. */
int rlab_pool_close(rlab_pool *p);
int rlab_pool_terminate(rlab_pool *p);
int rlab_pool_join(rlab_pool *p, double timeout);
void rlab_pool_free(rlab_pool *p);

#ifdef __cplusplus
}
#endif

#endif
