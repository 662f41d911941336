/*
 * fork_with_lock.c - the last lesson: fork() in a multi-threaded program
 * while another thread holds a lock.  The child is a copy of the parent's
 * memory, lock word included, but has only the forking thread: the lock
 * stays held in the child with nobody left to release it, and the child's
 * first `with lock:` waits forever.  spawn and forkserver start the child
 * from a fresh program, which makes its own, free lock.
 *
 * Two actors per trial.  holder (a logging thread, say) takes the
 * module's Lock and keeps it until the child exists; forker starts a
 * Process with the variant's start method, and the child does
 * `with lock: pass`.  The child tells the parent through a process-shared
 * Event when it reaches the lock, and gets FWL_DEADLOCK_AFTER seconds from
 * there: a child that has not finished by then is deadlocked, and the
 * forker kills and reaps it (nothing outlives the trial).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "lab.h"
#include "racelab/multiprocessing.h"
#include "racelab/threading.h"

/* An uncontended acquire takes nanoseconds: a child still waiting after a
 * second waits for a holder that does not exist in its process. */
#define FWL_DEADLOCK_AFTER 1.0
/* Guards against a broken run, never reached by a working one: the child
 * reaching the lock (spawn re-executes the program, slow under the
 * sanitizers), the holder waiting for the fork. */
#define FWL_GUARD 60.0

/* The module's lock, as `lock = threading.Lock()` at the top of a Python
 * module: made on first use in each process that has none.  A fork child
 * has the parent's (and its state); a spawn or forkserver child, a fresh
 * program, makes its own. */
static rlab_lock *module_lock;
static pthread_once_t module_once = PTHREAD_ONCE_INIT;

static void make_module_lock(void)
{
    module_lock = rlab_lock_new();
}

static rlab_lock *the_lock(void)
{
    pthread_once(&module_once, make_module_lock);
    return module_lock;
}

enum { R_NONE, R_GOT, R_DEADLOCKED, R_CHILD_FAILED, R_CALL_FAILED };

typedef struct {
    rlab_event *held;     /* holder -> forker: the lock is taken */
    rlab_event *forked;   /* forker -> holder: the child exists */
    rlab_pevent *at_lock; /* child -> forker: about to take the lock */
    atomic_int result;    /* R_* */
    atomic_int failed;    /* a racelab call failed */
} fwl_state;

/* What the forker hands its child (copied into it as bytes). */
typedef struct {
    rlab_pevent *at_lock; /* in the shared arena: valid in the child */
} fwl_job;

static rlab_start_method method; /* the run's variant */

/* The child's task: `with lock: pass`.  Exit code 0 once it had the lock;
 * under fork it never returns from the acquire. */
static int fwl_child_task(void *arg, void **result)
{
    (void)result;
    const rlab_bytes *b = arg;
    fwl_job job;
    if (!b || b->len != sizeof job)
        return 2;
    memcpy(&job, b->data, sizeof job);
    rlab_lock *l = the_lock();
    if (!l || rlab_pevent_set(job.at_lock))
        return 3;
    if (rlab_lock_acquire(l, RLAB_FOREVER))
        return 4;
    rlab_lock_release(l);
    return 0;
}

static int fwl_register_tasks(void)
{
    return rlab_task_register("lab.fork_with_lock.child", fwl_child_task);
}

static void fail(fwl_state *s)
{
    atomic_store(&s->failed, 1);
}

/* Another thread of the program, busy under the lock when the fork
 * happens.  It holds the lock until the child exists, so every trial
 * forks inside the window (in a real program the window is short, and
 * the child deadlocks only now and then). */
static void holder(void *p)
{
    fwl_state *s = p;
    rlab_lock *l = the_lock();
    bool have = l && rlab_lock_acquire(l, RLAB_FOREVER) == 0;
    if (!have)
        fail(s);
    rlab_event_set(s->held); /* the forker goes on either way */
    if (rlab_event_wait(s->forked, FWL_GUARD))
        fail(s);
    if (have)
        rlab_lock_release(l);
}

/* Waits for the child; a deadlocked one is killed and reaped. */
static int await_child(fwl_state *s, rlab_process *c)
{
    if (rlab_pevent_wait(s->at_lock, FWL_GUARD) == 0 &&
        rlab_process_join(c, FWL_DEADLOCK_AFTER) == ETIMEDOUT) {
        rlab_process_kill(c);
        rlab_process_join(c, RLAB_FOREVER);
        return R_DEADLOCKED;
    }
    int code = -1;
    if (rlab_process_join(c, FWL_GUARD) == ETIMEDOUT) {
        /* It never reached the lock: broken, not deadlocked. */
        rlab_process_kill(c);
        rlab_process_join(c, RLAB_FOREVER);
    }
    if (rlab_process_exitcode(c, &code) == 0 && code == 0)
        return R_GOT;
    return R_CHILD_FAILED;
}

/* The thread that starts a Process while holder has the lock. */
static void forker(void *p)
{
    fwl_state *s = p;
    if (rlab_event_wait(s->held, FWL_GUARD))
        fail(s);
    fwl_job job = {s->at_lock};
    /* daemon: should the run end STALE with a child still stuck, exit
     * terminates it instead of joining it forever. */
    rlab_process_opts o = {
        .name = "fork_with_lock", .daemon = true, .method = method};
    rlab_process *c =
        s->at_lock ? rlab_process_new(fwl_child_task, &job, sizeof job, &o)
                   : NULL;
    int rc = c ? rlab_process_start(c) : (errno ? errno : EINVAL);
    rlab_event_set(s->forked);
    atomic_store(&s->result, rc ? R_CALL_FAILED : await_child(s, c));
    rlab_process_free(c);
}

static void init(void *p)
{
    fwl_state *s = p;
    s->held = rlab_event_new();
    s->forked = rlab_event_new();
    s->at_lock = rlab_pevent_new();
    if (!s->held || !s->forked || !s->at_lock || !the_lock())
        fail(s);
}

static void fini(void *p)
{
    fwl_state *s = p;
    rlab_event_free(s->held);
    rlab_event_free(s->forked);
    rlab_pevent_free(s->at_lock);
}

static void outcome(const void *p, char *key, size_t len)
{
    fwl_state *s = (fwl_state *)p;
    const char *k;
    if (atomic_load(&s->failed))
        k = "racelab call failed";
    else
        switch (atomic_load(&s->result)) {
        case R_GOT:
            k = "child got the lock";
            break;
        case R_DEADLOCKED:
            k = "child deadlocked";
            break;
        case R_CHILD_FAILED:
            k = "child failed";
            break;
        default:
            k = "racelab call failed";
        }
    snprintf(key, len, "%s", k);
}

static const rlab_outcome outcomes[] = {
    {"child got the lock", RLAB_ACCEPTABLE,
     "the child's lock was free: its own, not a copy of a held one"},
    {"child deadlocked", RLAB_FORBIDDEN,
     "the child waited for a lock held by a thread it does not have "
     "(killed and reaped)"},
    {"child failed", RLAB_FORBIDDEN,
     "the child exited with an error or never reached the lock"},
    {"racelab call failed", RLAB_FORBIDDEN,
     "a Lock, Event or Process call failed"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static char description[160];

static void build(rlab_start_method m, rlab_stress_test *t)
{
    method = m;
    snprintf(description, sizeof description,
             "a thread holds a Lock while another starts a Process (%s) "
             "that takes it",
             rlab_start_method_name(m));
    t->name = "fork_with_lock";
    t->description = description;
    t->state_size = sizeof(fwl_state);
    t->init = init;
    t->actor[0] = holder;
    t->actor[1] = forker;
    t->outcome = outcome;
    t->outcomes = outcomes;
    t->fini = fini;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    build(RLAB_START_FORK, t);
}

static void build_spawn(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    build(RLAB_START_SPAWN, t);
}

static void build_forkserver(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    build(RLAB_START_FORKSERVER, t);
}

/* A few trials each: a racy one costs FWL_DEADLOCK_AFTER, a spawn one
 * re-executes racelab. */
static const lab_variant variants[] = {
    {"racy",
     "fork while another thread holds a Lock: the child waits forever "
     "for it",
     true, LAB_TSAN_BLIND, build_racy, 0, 2, 20.0, 1},
    {"spawn", "spawn: the child is a fresh program with its own free Lock",
     false, LAB_TSAN_CLEAN, build_spawn, 0, 4, 20.0, 1},
    {"forkserver",
     "forkserver (Python 3.14's default): forked from a clean "
     "single-threaded server",
     false, LAB_TSAN_CLEAN, build_forkserver, 0, 4, 20.0, 1},
};

static const char *const explain[] = {
    "The bug: fork() copies the whole memory of a process but only the\n"
    "thread that called it.  If another thread holds a lock at that moment,\n"
    "the child gets the lock's memory in the \"held\" state, and the thread\n"
    "that would release it does not exist in the child.  The child's first\n"
    "`with lock:` waits forever.  Nothing is wrong in the parent, and nothing\n"
    "is wrong in the child's code: it is the combination of threads and\n"
    "fork that breaks.  POSIX says as much: in the child of a multi-threaded\n"
    "process only async-signal-safe calls are safe until exec.\n"
    "\n"
    "In this lesson one actor thread, holder (think of a logging thread,\n"
    "or malloc's arena lock, or a DNS lookup), takes the module's Lock; the\n"
    "other, forker, starts a Process whose task does `with lock: pass`.\n"
    "holder keeps the lock until the child exists, so every trial forks\n"
    "inside the window; in a real program the window is a few instructions\n"
    "wide and the child hangs once in a thousand runs, which is much worse.\n"
    "The child sets a process-shared Event when it reaches the lock, and\n"
    "then has one second: a child still waiting is deadlocked.  The forker\n"
    "kills it (SIGKILL) and joins it, so no zombie or orphan survives the\n"
    "trial, and the outcome is \"child deadlocked\", FORBIDDEN.  (Children\n"
    "are daemon processes as well, so even a run that ended STALE leaves\n"
    "nothing behind at exit.)  See holder, forker, await_child and\n"
    "fwl_child_task in src/lab/lessons/fork_with_lock.c.",
    "The fixes: do not fork a multi-threaded program; start the child from\n"
    "a program that has no other threads.\n"
    "\n"
    "spawn (build_spawn): the child re-executes racelab (/proc/self/exe)\n"
    "and runs the task by its registered name.  It inherits no memory, so\n"
    "the module's lock is made fresh in the child (the_lock(), like a\n"
    "module-level `threading.Lock()` made again when the child imports the\n"
    "module) and is free.  The price: a whole program start per child, and\n"
    "everything the child needs must be passed to it; that is why racelab's\n"
    "main() registers the lessons' tasks and calls rlab_mp_main() before\n"
    "anything else (Python's `if __name__ == '__main__':` guard).\n"
    "\n"
    "forkserver (build_forkserver): a server process, itself spawned and\n"
    "kept single-threaded, forks every child on request.  A fork of a\n"
    "single-threaded process is safe: no other thread can hold anything.\n"
    "Children start nearly as fast as with fork and inherit nothing of the\n"
    "parent's threads or locks.  Python 3.14 made forkserver the default\n"
    "start method on Linux (it had been fork) for this very reason, and\n"
    "3.12 already warns (DeprecationWarning) when os.fork() is called in a\n"
    "process with several threads.\n"
    "\n"
    "Other defences, not shown: take every lock in a pthread_atfork prepare\n"
    "handler and release it in both parent and child (racelab's own\n"
    "process.c and shm.c do that for their internal mutexes, as CPython\n"
    "does for its own locks with os.register_at_fork); or fork before\n"
    "starting any thread.",
    "ThreadSanitizer cannot judge this bug (LAB_TSAN_BLIND): nothing races.\n"
    "The deadlock is in the child, a different process with a single thread,\n"
    "waiting on a lock word that no thread will ever write; TSan's deadlock\n"
    "detector looks for lock-order cycles between threads, and there is no\n"
    "cycle, only a missing thread.  The harness grades the variant alone.\n"
    "Under the tsan preset the fork child stays single-threaded and only\n"
    "sets an Event and waits on a futex, which TSan allows after a fork.",
    NULL,
};

const lab_lesson lab_lesson_fork_with_lock = {
    .name = "fork_with_lock",
    .summary = "fork while another thread holds a Lock deadlocks the child",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0],
    .register_tasks = fwl_register_tasks,
};
