/*
 * Exercise: fork_with_lock  (the lesson: racelab explain fork_with_lock)
 *
 * A program logs under a lock: log_lock, made in main() like a
 * module-level `threading.Lock()`.  One thread is busy writing to the log
 * (it holds log_lock) just when another thread starts a worker process,
 * and the worker's first job is to write to the log too.  The worker
 * never gets the lock: it hangs until it is killed.
 *
 * Goal: the worker always gets the log lock, even when another thread of
 * the parent holds it at the moment the worker starts.  Keep the logging
 * thread as it is: the parent really is multi-threaded.
 *
 * Run:   ctest --preset exercises -R fork_with_lock --output-on-failure
 * Stuck: tests/exercises/fork_with_lock.hint.md
 * Done:  diff your file with tests/exercises/solutions/fork_with_lock.c
 */
#include <errno.h>
#include <string.h>

#include "exercise.h"

/* Provided below: the parent's side of starting and watching a worker. */
typedef struct trial trial;
static void logging_started(trial *t);
static void wait_until_logging(trial *t);
static void wait_until_worker_started(trial *t);
static void run_worker(trial *t, const rlab_process_opts *opts);
static void worker_at_the_lock(const void *arg);

/* ---- the code under test: fix it here -------------------------------- */

static rlab_lock *log_lock; /* guards the log; made in main() */
static int log_lines;

/* The worker process: writes one line to the log, exit code 0. */
static int worker(void *arg, void **result)
{
    (void)result;
    worker_at_the_lock(arg);
    rlab_lock_acquire(log_lock, RLAB_FOREVER);
    log_lines++;
    rlab_lock_release(log_lock);
    return 0;
}

/* A thread of the parent, busy logging while the worker starts. */
static void logging_thread(void *state)
{
    rlab_lock_acquire(log_lock, RLAB_FOREVER);
    logging_started(state);
    log_lines++;
    wait_until_worker_started(state);
    rlab_lock_release(log_lock);
}

/* Another thread of the parent: starts the worker process. */
static void starter_thread(void *state)
{
    wait_until_logging(state);
    rlab_process_opts opts = {.method = RLAB_START_FORK};
    run_worker(state, &opts);
}

/* ---- the stress test: no need to change anything below --------------- */

/* A worker still waiting this long after it reached the lock is stuck. */
#define STUCK_AFTER 1.0
#define GUARD 60.0

struct trial {
    rlab_event *logging, *started;
    rlab_pevent *at_lock; /* process-shared: the worker reached the lock */
    int result;           /* 0 not run, 1 done, 2 stuck, 3 failed */
};

static void logging_started(trial *t)
{
    rlab_event_set(t->logging);
}

static void wait_until_logging(trial *t)
{
    rlab_event_wait(t->logging, GUARD);
}

static void wait_until_worker_started(trial *t)
{
    rlab_event_wait(t->started, GUARD);
}

static void worker_at_the_lock(const void *arg)
{
    const rlab_bytes *b = arg;
    rlab_pevent *e;
    if (b && b->len == sizeof e) {
        memcpy(&e, b->data, sizeof e);
        rlab_pevent_set(e);
    }
}

/* Starts the worker and waits for it; a stuck one is killed and reaped.
 * daemon: a worker left behind would be terminated at exit. */
static void run_worker(trial *t, const rlab_process_opts *opts)
{
    rlab_process_opts o = *opts;
    o.daemon = true;
    rlab_process *p =
        rlab_process_new(worker, &t->at_lock, sizeof t->at_lock, &o);
    int rc = p ? rlab_process_start(p) : errno;
    rlab_event_set(t->started);
    if (rc) {
        fprintf(stderr, "fork_with_lock: starting the worker: %s\n",
                rlab_strerror(rc));
        t->result = 3;
    } else if (rlab_pevent_wait(t->at_lock, GUARD) == 0 &&
               rlab_process_join(p, STUCK_AFTER) == ETIMEDOUT) {
        rlab_process_kill(p);
        rlab_process_join(p, RLAB_FOREVER);
        t->result = 2;
    } else {
        int code = -1;
        if (rlab_process_join(p, GUARD)) {
            rlab_process_kill(p);
            rlab_process_join(p, RLAB_FOREVER);
        }
        t->result = rlab_process_exitcode(p, &code) == 0 && code == 0 ? 1 : 3;
    }
    rlab_process_free(p);
}

static void setup(void *state)
{
    trial *t = state;
    t->logging = rlab_event_new();
    t->started = rlab_event_new();
    t->at_lock = rlab_pevent_new();
}

static void teardown(void *state)
{
    trial *t = state;
    rlab_event_free(t->logging);
    rlab_event_free(t->started);
    rlab_pevent_free(t->at_lock);
}

static void outcome(const void *state, char *key, size_t len)
{
    const trial *t = state;
    static const char *const names[] = {"not run", "worker logged",
                                        "worker stuck at the lock",
                                        "worker failed"};
    snprintf(key, len, "%s",
             names[t->result >= 0 && t->result < 4 ? t->result : 3]);
}

static const rlab_outcome grades[] = {
    {"worker logged", RLAB_ACCEPTABLE, "the worker got the log lock"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(int argc, char **argv)
{
    /* What every run of this program does first, in the parent and in
     * any child that re-executes it: make the module's lock, register the
     * worker, and let rlab_mp_main run the worker if this is one. */
    log_lock = rlab_lock_new();
    if (!log_lock || rlab_task_register("exercise.fork_with_lock", worker))
        return 2;
    rlab_mp_main(argc, argv);

    const rlab_stress_test test = {
        .name = "exercise.fork_with_lock",
        .description = "a thread holds the log lock while another starts a "
                       "worker process that logs",
        .state_size = sizeof(trial),
        .init = setup,
        .actor = {logging_thread, starter_thread},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "fork_with_lock",
        .problem = "The worker was forked while the logging thread held "
                   "log_lock.  fork() copies the\nlock in its held state "
                   "but not the thread that would release it: in the worker "
                   "it\nis held forever.",
        .stale_after = 20.0,
        .max_stride = 1,
    };
    return exercise_main(&test, &e);
}
