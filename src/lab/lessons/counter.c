/*
 * counter.c - lesson 1, the shared counter: threads x `n += 1` on one
 * variable end short of threads x iterations, and eight ways to fix it;
 * then the same with processes and a shared Value (proc_racy, proc_lock).
 *
 * Every variant runs the same increment, increment(): a volatile load of
 * the state's n, then a volatile store of that value plus one.  The racy
 * variant runs it bare; each fix changes only what surrounds it (a lock,
 * a turn, an owner thread) or, for the executor and the atomic, what is
 * counted.  The outcome buckets the loss: "all counted" is the only
 * acceptable key.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lab.h"
#include "racelab/futures.h"
#include "racelab/multiprocessing.h"
#include "racelab/queue.h"
#include "racelab/threading.h"

#define COUNTER_THREADS 2
#define COUNTER_MAX_THREADS 4
#define COUNTER_ITERATIONS 100000UL
/* Turn-taking wakes a sleeping thread at every increment: fewer of them. */
#define COUNTER_EVENT_ITERATIONS 2000UL
#define COUNTER_QUEUE_ITERATIONS 20000UL
/* The executor splits each actor's count into this many tasks. */
#define COUNTER_CHUNKS 4
#define COUNTER_POOL_WORKERS 4
/* --amplify: pause instructions between the load and the store. */
#define COUNTER_AMPLIFY_PAUSES 4
/* Process variants: how long a child waits at the start gate for the
 * others, and how long an actor waits for its child before killing it.
 * Both are guards against a broken run, never reached by a working one. */
#define COUNTER_GATE_SECONDS 10.0
#define COUNTER_CHILD_GUARD 60.0

/* The run's parameters (one variant runs at a time; set by build()). */
static unsigned nthreads = COUNTER_THREADS;
static unsigned long iterations = COUNTER_ITERATIONS;
static bool amplify;

typedef struct {
    /* The counter.  volatile: every increment really loads and really
     * stores it (see increment()); volatile makes nothing atomic. */
    volatile long n;
    atomic_long atomic_n;           /* the atomic variant's counter */
    long part[COUNTER_MAX_THREADS]; /* the executor's partial counts */
    atomic_int failed;              /* a racelab call failed */
    rlab_lock *lock;
    rlab_rlock *rlock;
    rlab_semaphore *sem;
    rlab_condition *cond;
    rlab_event *turn[COUNTER_MAX_THREADS];
    rlab_queue *queue;
    rlab_value *shared; /* the process variants' proc_shared */
} counter_state;

/* What the process variants share, in one multiprocessing Value: the
 * counter first (the Value's long), then the children's start gate. */
typedef struct {
    volatile long n;
    atomic_uint arrived;
} proc_shared;

/* What an actor hands its child (copied into the child as bytes). */
typedef struct {
    rlab_value *value; /* valid in every process of the family */
    unsigned long iterations;
    unsigned nprocs;
    bool locked; /* proc_lock: each increment under the lock */
    bool amplify;
} proc_job;

/* A spin hint for --amplify: keeps the core busy a few dozen cycles, and
 * is neither a sleep nor a yield (the thread keeps its CPU). */
static inline void pause_hint(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("isb" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* n += 1, spelled out: the read-modify-write every variant makes.  Two
 * threads can both load the same value and both store value + 1: one
 * increment is lost.  Plain code would let the compiler keep n in a
 * register for the whole loop, or fold the loop into one n += iterations,
 * and the window would all but vanish; volatile forces one load and one
 * store per call, as the Python bytecode does. */
static inline void bump(volatile long *n, bool amplified)
{
    long v = *n;
    if (amplified)
        for (int i = 0; i < COUNTER_AMPLIFY_PAUSES; i++)
            pause_hint();
    *n = v + 1;
}

static inline void increment(counter_state *s)
{
    bump(&s->n, amplify);
}

static void fail(counter_state *s)
{
    atomic_store(&s->failed, 1);
}

/* ------------------------------------------------------------- racy --- */

static void racy_actor(void *p)
{
    counter_state *s = p;
    for (unsigned long i = 0; i < iterations; i++)
        increment(s);
}

/* ------------------------------- lock, rlock, semaphore, condition --- */

/* `with lock: n += 1` */
static void lock_actor(void *p)
{
    counter_state *s = p;
    for (unsigned long i = 0; i < iterations; i++) {
        if (rlab_lock_acquire(s->lock, RLAB_FOREVER)) {
            fail(s);
            return;
        }
        increment(s);
        rlab_lock_release(s->lock);
    }
}

/* `with rlock: n += 1` */
static void rlock_actor(void *p)
{
    counter_state *s = p;
    for (unsigned long i = 0; i < iterations; i++) {
        if (rlab_rlock_acquire(s->rlock, RLAB_FOREVER)) {
            fail(s);
            return;
        }
        increment(s);
        rlab_rlock_release(s->rlock);
    }
}

/* `with sem: n += 1`, sem = Semaphore(1) */
static void semaphore_actor(void *p)
{
    counter_state *s = p;
    for (unsigned long i = 0; i < iterations; i++) {
        if (rlab_semaphore_acquire(s->sem, RLAB_FOREVER)) {
            fail(s);
            return;
        }
        increment(s);
        rlab_semaphore_release(s->sem, 1);
    }
}

/* `with cond: n += 1`: the Condition's own lock (an RLock, as
 * Condition() makes one). */
static void condition_actor(void *p)
{
    counter_state *s = p;
    for (unsigned long i = 0; i < iterations; i++) {
        if (rlab_condition_acquire(s->cond, RLAB_FOREVER)) {
            fail(s);
            return;
        }
        increment(s);
        rlab_condition_release(s->cond);
    }
}

/* ------------------------------------------------------------ event --- */

/* Turn-taking: actor `me` waits for its own Event, clears it, increments,
 * and sets the next actor's Event.  Only one Event is set at a time, so
 * only one actor is ever between its wait and its set. */
static void event_turns(counter_state *s, unsigned me)
{
    rlab_event *mine = s->turn[me], *next = s->turn[(me + 1) % nthreads];
    for (unsigned long i = 0; i < iterations; i++) {
        if (rlab_event_wait(mine, RLAB_FOREVER)) {
            fail(s);
            return;
        }
        rlab_event_clear(mine);
        increment(s);
        rlab_event_set(next);
    }
}

/* ------------------------------------------------------------ queue --- */

/* Any non-NULL pointer means "+1"; NULL means "this producer is done". */
static char plus_one;

static void queue_producer(void *p)
{
    counter_state *s = p;
    for (unsigned long i = 0; i < iterations; i++)
        if (rlab_queue_put(s->queue, &plus_one, RLAB_FOREVER)) {
            fail(s);
            break;
        }
    if (rlab_queue_put(s->queue, NULL, RLAB_FOREVER))
        fail(s);
}

/* The one thread that ever touches n. */
static void queue_owner(void *p)
{
    counter_state *s = p;
    for (unsigned done = 0; done < nthreads;) {
        void *item;
        if (rlab_queue_get(s->queue, &item, RLAB_FOREVER)) {
            fail(s);
            return;
        }
        if (item)
            increment(s);
        else
            done++;
    }
}

/* --------------------------------------------------------- executor --- */

/* One ThreadPoolExecutor for the whole run, shared by every state. */
static rlab_executor *pool;

static void free_pool(void)
{
    rlab_executor_free(pool);
    pool = NULL;
}

/* A task: counts to `arg` in a counter nobody else sees, and returns the
 * count as its result. */
static int count_task(void *arg, void **result)
{
    uintptr_t todo = (uintptr_t)arg;
    volatile uintptr_t mine = 0;
    for (uintptr_t i = 0; i < todo; i++)
        mine = mine + 1;
    *result = (void *)mine;
    return 0;
}

/* Map: the actor's share, in COUNTER_CHUNKS tasks; reduce: their sum, in
 * the actor's own slot.  The arbiter adds the slots. */
static void executor_map_reduce(counter_state *s, unsigned me)
{
    void *args[COUNTER_CHUNKS], *results[COUNTER_CHUNKS];
    int codes[COUNTER_CHUNKS];
    for (unsigned c = 0; c < COUNTER_CHUNKS; c++)
        args[c] = (void *)(uintptr_t)(iterations / COUNTER_CHUNKS +
                                      (c < iterations % COUNTER_CHUNKS));
    if (rlab_executor_map(pool, count_task, args, COUNTER_CHUNKS, results,
                          codes, RLAB_FOREVER)) {
        fail(s);
        return;
    }
    long sum = 0;
    for (unsigned c = 0; c < COUNTER_CHUNKS; c++)
        sum += (long)(uintptr_t)results[c];
    s->part[me] = sum;
}

static void executor_arbiter(void *p)
{
    counter_state *s = p;
    long sum = 0;
    for (unsigned i = 0; i < nthreads; i++)
        sum += s->part[i];
    s->n = sum;
}

/* ----------------------------------------------------------- atomic --- */

/* One indivisible read-modify-write (lock add on x86).  Relaxed: a
 * counter needs no ordering with other memory, only no lost update. */
static void atomic_actor(void *p)
{
    counter_state *s = p;
    for (unsigned long i = 0; i < iterations; i++)
        atomic_fetch_add_explicit(&s->atomic_n, 1, memory_order_relaxed);
}

static void atomic_arbiter(void *p)
{
    counter_state *s = p;
    s->n = atomic_load(&s->atomic_n);
}

/* -------------------------------------------------------- processes --- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The start gate: every child spins until all have arrived, so their
 * loops really overlap (a child starts a few milliseconds after its
 * sibling, and 100,000 increments take a fraction of a millisecond).
 * false if the others never came. */
static bool start_together(proc_shared *sh, unsigned nprocs)
{
    atomic_fetch_add(&sh->arrived, 1);
    double end = mono_now() + COUNTER_GATE_SECONDS;
    for (unsigned spins = 0; atomic_load(&sh->arrived) < nprocs; spins++) {
        pause_hint();
        if (spins % 4096 == 0 && mono_now() > end)
            return false;
    }
    return true;
}

/* The child's task: `for _ in range(M): v.value += 1`, raw (proc_racy)
 * or `with v.get_lock():` (proc_lock).  The same bump() as the threads,
 * on the Value's memory.  Exit code 0, or 2..4 for a broken run. */
static int counter_proc_task(void *arg, void **result)
{
    (void)result;
    const rlab_bytes *b = arg;
    proc_job job;
    if (!b || b->len != sizeof job)
        return 2;
    memcpy(&job, b->data, sizeof job);
    proc_shared *sh = rlab_value_ptr(job.value);
    rlab_plock *lock = rlab_value_lock(job.value);
    if (!start_together(sh, job.nprocs))
        return 3;
    for (unsigned long i = 0; i < job.iterations; i++) {
        if (job.locked) {
            int rc = rlab_plock_acquire(lock, RLAB_FOREVER);
            if (rc && rc != RLAB_EOWNERDEAD)
                return 4;
        }
        bump(&sh->n, job.amplify);
        if (job.locked)
            rlab_plock_release(lock);
    }
    return 0;
}

static int counter_register_tasks(void)
{
    return rlab_task_register("lab.counter.proc", counter_proc_task);
}

static bool proc_locked; /* the run's variant: proc_lock */

/* Each actor thread is one parent: it forks a child that does the
 * increments, and waits for it.  fork keeps the harness' pinning (the
 * child inherits its actor's CPU), so the children run side by side. */
static void proc_actor(void *p)
{
    counter_state *s = p;
    proc_job job = {s->shared, iterations, nthreads, proc_locked, amplify};
    /* daemon: should the run end STALE with a child still running, exit
     * terminates it instead of joining it forever. */
    rlab_process_opts o = {
        .name = "counter", .daemon = true, .method = RLAB_START_FORK};
    rlab_process *c =
        s->shared ? rlab_process_new(counter_proc_task, &job, sizeof job, &o)
                  : NULL;
    if (!c || rlab_process_start(c)) {
        fail(s);
        rlab_process_free(c);
        return;
    }
    if (rlab_process_join(c, COUNTER_CHILD_GUARD)) {
        rlab_process_kill(c);
        rlab_process_join(c, RLAB_FOREVER);
        fail(s);
    }
    int code = -1;
    if (rlab_process_exitcode(c, &code) || code != 0)
        fail(s);
    rlab_process_free(c);
}

static void proc_arbiter(void *p)
{
    counter_state *s = p;
    if (s->shared)
        s->n = ((proc_shared *)rlab_value_ptr(s->shared))->n;
}

/* Actors that need their index. */
#define INDEXED(i)                                                             \
    static void event_actor##i(void *p)                                        \
    {                                                                          \
        event_turns(p, i);                                                     \
    }                                                                          \
    static void executor_actor##i(void *p)                                     \
    {                                                                          \
        executor_map_reduce(p, i);                                             \
    }
INDEXED(0)
INDEXED(1)
INDEXED(2)
INDEXED(3)
static void (*const event_actors[COUNTER_MAX_THREADS])(void *) = {
    event_actor0, event_actor1, event_actor2, event_actor3};
static void (*const executor_actors[COUNTER_MAX_THREADS])(void *) = {
    executor_actor0, executor_actor1, executor_actor2, executor_actor3};

/* ------------------------------------------------ state and outcomes --- */

static void init_lock(void *p)
{
    counter_state *s = p;
    if (!(s->lock = rlab_lock_new()))
        fail(s);
}

static void init_rlock(void *p)
{
    counter_state *s = p;
    if (!(s->rlock = rlab_rlock_new()))
        fail(s);
}

static void init_semaphore(void *p)
{
    counter_state *s = p;
    if (!(s->sem = rlab_semaphore_new(1)))
        fail(s);
}

static void init_condition(void *p)
{
    counter_state *s = p;
    if (!(s->cond = rlab_condition_new(NULL)))
        fail(s);
}

static void init_event(void *p)
{
    counter_state *s = p;
    for (unsigned i = 0; i < nthreads; i++)
        if (!(s->turn[i] = rlab_event_new()))
            fail(s);
    rlab_event_set(s->turn[0]); /* actor 0 goes first */
}

static void init_queue(void *p)
{
    counter_state *s = p;
    if (!(s->queue = rlab_queue_new(0)))
        fail(s);
}

static void init_proc(void *p)
{
    counter_state *s = p;
    if (!(s->shared = rlab_value_new(sizeof(proc_shared))))
        fail(s);
}

static void fini(void *p)
{
    counter_state *s = p;
    rlab_value_free(s->shared);
    rlab_lock_free(s->lock);
    rlab_rlock_free(s->rlock);
    rlab_semaphore_free(s->sem);
    rlab_condition_free(s->cond);
    for (unsigned i = 0; i < COUNTER_MAX_THREADS; i++)
        rlab_event_free(s->turn[i]);
    rlab_queue_free(s->queue, NULL);
}

static void outcome(const void *p, char *key, size_t len)
{
    const counter_state *s = p;
    long want = (long)nthreads * (long)iterations, got = s->n;
    long lost = want - got;
    const char *k;
    if (atomic_load(&((counter_state *)p)->failed))
        k = "racelab call failed";
    else if (lost == 0)
        k = "all counted";
    else if (lost < 0)
        k = "counted too many";
    else if (lost * 100 < want)
        k = "lost <1%";
    else if (lost * 10 < want)
        k = "lost 1-10%";
    else if (lost * 2 < want)
        k = "lost 10-50%";
    else
        k = "lost >50%";
    snprintf(key, len, "%s", k);
}

static const rlab_outcome outcomes[] = {
    {"all counted", RLAB_ACCEPTABLE, "n == threads x iterations"},
    {"lost <1%", RLAB_FORBIDDEN, "some increments overwritten"},
    {"lost 1-10%", RLAB_FORBIDDEN, "many increments overwritten"},
    {"lost 10-50%", RLAB_FORBIDDEN, "most collisions lost an increment"},
    {"lost >50%", RLAB_FORBIDDEN,
     "more lost than counted: stale values stored over many updates"},
    {"counted too many", RLAB_FORBIDDEN, "more increments than were made"},
    {"racelab call failed", RLAB_FORBIDDEN, "a lock, queue or map failed"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

/* ----------------------------------------------------------- build --- */

static char name[64], description[160];

static void common(const lab_params *p, const char *variant,
                   unsigned long default_iterations, const char *how,
                   rlab_stress_test *t)
{
    nthreads = p->threads ? p->threads : COUNTER_THREADS;
    if (nthreads < 2)
        nthreads = 2;
    if (nthreads > COUNTER_MAX_THREADS)
        nthreads = COUNTER_MAX_THREADS;
    iterations = p->iterations ? p->iterations : default_iterations;
    amplify = p->amplify;
    snprintf(name, sizeof name, "counter.%s", variant);
    snprintf(description, sizeof description, "%u threads x %lu n += 1, %s%s",
             nthreads, iterations, how,
             amplify ? " (amplified: pauses between load and store)" : "");
    t->name = name;
    t->description = description;
    t->state_size = sizeof(counter_state);
    t->outcome = outcome;
    t->outcomes = outcomes;
    t->fini = fini;
}

static void same_actor(rlab_stress_test *t, void (*actor)(void *))
{
    for (unsigned i = 0; i < nthreads; i++)
        t->actor[i] = actor;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    common(p, "racy", COUNTER_ITERATIONS, "unsynchronized", t);
    same_actor(t, racy_actor);
}

static void build_lock(const lab_params *p, rlab_stress_test *t)
{
    common(p, "lock", COUNTER_ITERATIONS, "each under a Lock", t);
    t->init = init_lock;
    same_actor(t, lock_actor);
}

static void build_rlock(const lab_params *p, rlab_stress_test *t)
{
    common(p, "rlock", COUNTER_ITERATIONS, "each under an RLock", t);
    t->init = init_rlock;
    same_actor(t, rlock_actor);
}

static void build_semaphore(const lab_params *p, rlab_stress_test *t)
{
    common(p, "semaphore", COUNTER_ITERATIONS, "each under Semaphore(1)", t);
    t->init = init_semaphore;
    same_actor(t, semaphore_actor);
}

static void build_condition(const lab_params *p, rlab_stress_test *t)
{
    common(p, "condition", COUNTER_ITERATIONS, "each under a Condition's lock",
           t);
    t->init = init_condition;
    same_actor(t, condition_actor);
}

static void build_event(const lab_params *p, rlab_stress_test *t)
{
    common(p, "event", COUNTER_EVENT_ITERATIONS,
           "taking turns on one Event per thread", t);
    t->init = init_event;
    for (unsigned i = 0; i < nthreads; i++)
        t->actor[i] = event_actors[i];
}

static void build_queue(const lab_params *p, rlab_stress_test *t)
{
    common(p, "queue", COUNTER_QUEUE_ITERATIONS,
           "sent through a Queue to one owner thread", t);
    t->init = init_queue;
    same_actor(t, queue_producer);
    t->actor[nthreads] = queue_owner;
}

static void build_executor(const lab_params *p, rlab_stress_test *t)
{
    common(p, "executor", COUNTER_ITERATIONS,
           "as partial counts mapped on a ThreadPoolExecutor, then summed", t);
    if (!pool) {
        pool =
            rlab_thread_pool_new(COUNTER_POOL_WORKERS, "counter", NULL, NULL);
        if (pool)
            atexit(free_pool);
    }
    for (unsigned i = 0; i < nthreads; i++)
        t->actor[i] = executor_actors[i];
    t->arbiter = executor_arbiter;
}

static void build_atomic(const lab_params *p, rlab_stress_test *t)
{
    common(p, "atomic", COUNTER_ITERATIONS, "as C11 atomic_fetch_add", t);
    same_actor(t, atomic_actor);
    t->arbiter = atomic_arbiter;
}

static void build_proc(const lab_params *p, bool locked, rlab_stress_test *t)
{
    common(p, locked ? "proc_lock" : "proc_racy", COUNTER_ITERATIONS,
           locked ? "each under the Value's lock" : "unsynchronized", t);
    snprintf(description, sizeof description,
             "%u processes (fork) x %lu v.value += 1 on a shared Value, %s%s",
             nthreads, iterations,
             locked ? "each under the Value's lock" : "unsynchronized",
             amplify ? " (amplified: pauses between load and store)" : "");
    proc_locked = locked;
    t->init = init_proc;
    same_actor(t, proc_actor);
    t->arbiter = proc_arbiter;
}

static void build_proc_racy(const lab_params *p, rlab_stress_test *t)
{
    build_proc(p, false, t);
}

static void build_proc_lock(const lab_params *p, rlab_stress_test *t)
{
    build_proc(p, true, t);
}

static const lab_variant variants[] = {
    {"racy", "2 threads x 100,000 unsynchronized n += 1 lose updates", true,
     LAB_TSAN_RACE, build_racy, 1.0, 0, 0, 1},
    {"lock", "each increment under a Lock", false, LAB_TSAN_CLEAN, build_lock,
     0.5, 0, 0, 0},
    {"rlock", "each increment under an RLock", false, LAB_TSAN_CLEAN,
     build_rlock, 0.5, 0, 0, 0},
    {"semaphore", "each increment under Semaphore(1)", false, LAB_TSAN_CLEAN,
     build_semaphore, 0.5, 0, 0, 0},
    {"condition", "each increment under a Condition's lock", false,
     LAB_TSAN_CLEAN, build_condition, 0.5, 0, 0, 0},
    {"event", "threads take turns on Events (default 2,000 iterations)", false,
     LAB_TSAN_CLEAN, build_event, 0.5, 0, 0, 0},
    {"queue",
     "one owner thread does every increment, fed by a Queue (default "
     "20,000 iterations)",
     false, LAB_TSAN_CLEAN, build_queue, 0.5, 0, 0, 0},
    {"executor", "ThreadPoolExecutor map-reduce of private partial counts",
     false, LAB_TSAN_CLEAN, build_executor, 0.5, 0, 0, 0},
    {"atomic", "C11 atomic_fetch_add, no lock", false, LAB_TSAN_CLEAN,
     build_atomic, 0.5, 0, 0, 0},
    /* Processes: a few trials (each forks a child per actor); TSan sees
     * one process only, so it cannot judge the racy one. */
    {"proc_racy",
     "2 processes x 100,000 unsynchronized v.value += 1 on a shared Value "
     "lose updates",
     true, LAB_TSAN_BLIND, build_proc_racy, 0, 10, 20.0, 1},
    {"proc_lock", "each increment under the Value's own lock", false,
     LAB_TSAN_CLEAN, build_proc_lock, 0, 6, 20.0, 1},
};

static const char *const explain[] = {
    "The race: a lost update.  Two threads each run `n += 1` 100,000 times on\n"
    "one shared counter, with nothing to keep them apart.  `n += 1` is three\n"
    "steps: load n, add one, store n.  When both threads load the same value,\n"
    "both store that value plus one, and one of the two increments is gone.\n"
    "Nothing in C (or in Python) makes the three steps one.  On two cores the\n"
    "loads and stores of the two threads interleave all the time, and the\n"
    "count ends short of 200,000, often far short: a thread that loaded n and\n"
    "then lost its CPU, or waited for the cache line, stores a value that is\n"
    "hundreds or thousands of updates old, wiping them all out.\n"
    "\n"
    "`racelab run counter.racy` buckets each trial by how much was lost\n"
    "(\"lost <1%\", \"lost 1-10%\", \"lost 10-50%\", \"lost >50%\"); only\n"
    "\"all counted\" is acceptable.  Some trials still come out whole: when\n"
    "one thread runs its whole loop while the other has no CPU, nothing\n"
    "collides.  That is the nature of a race: the code is wrong every time,\n"
    "the result only some of the time.  --threads 2..4 and --iterations M\n"
    "change the shape; ThreadSanitizer (the tsan preset) reports the data\n"
    "race in increment() as well.",
    "Keeping the race honest.  Written the obvious way\n"
    "(`long n; for (...) n += 1;`) the compiler may keep n in a register for\n"
    "the whole loop and store it once, or fold the loop into a single\n"
    "`n += 100000`: the race shrinks to one store per thread and almost never\n"
    "shows, at -O2 it would look \"fixed\".  So the counter is declared\n"
    "`volatile long n` (counter_state in src/lab/lessons/counter.c) and the\n"
    "increment is spelled out in increment():\n"
    "\n"
    "    long v = s->n;      /* one real load  */\n"
    "    s->n = v + 1;       /* one real store */\n"
    "\n"
    "volatile forces one load and one store per iteration at every\n"
    "optimization level, exactly what the Python bytecode does.  gcc -Og and\n"
    "-O2 emit mov, add, mov; clang may emit a single `addq $1, (mem)`, which\n"
    "without a lock prefix is still a separate read and write as far as the\n"
    "other core is concerned.  volatile adds no atomicity and no ordering, so\n"
    "the race is untouched, and ThreadSanitizer instruments volatile accesses\n"
    "like plain ones and reports it.  There is no sleep and no yield in the\n"
    "racy actor (racy_actor): the two threads just run.  --amplify puts a few\n"
    "pause instructions between the load and the store, which widens the\n"
    "window, and the report's description says \"amplified\".",
    "The fixes, one per primitive; each runs the same increment().\n"
    "\n"
    "lock (lock_actor): `with lock: n += 1`.  Only the holder runs\n"
    "increment(), so no two loads and stores interleave; and because acquire\n"
    "is an acquire and release a release, each holder's load sees the\n"
    "previous holder's store.  rlock (rlock_actor): the same with an RLock;\n"
    "it also counts the owner's recursion, which is not needed here.\n"
    "semaphore (semaphore_actor): Semaphore(1), one permit, so one thread\n"
    "inside; unlike a lock, any thread may release it, so it is the right\n"
    "tool for counting resources (see the resource_pool lesson) more than for\n"
    "mutual exclusion.  condition (condition_actor): `with cond:` takes the\n"
    "Condition's underlying lock (an RLock, since Condition() makes its own).\n"
    "Nobody needs to wait for anything here, so the Condition is only a lock;\n"
    "it earns its keep when a thread must wait for a state change (the event\n"
    "variant below, and the condition lesson).",
    "event (event_turns): turn-taking.  Each thread owns an Event; thread i\n"
    "waits on its own, clears it, increments, and sets the Event of thread\n"
    "i+1.  Exactly one Event is set at a time, so exactly one thread is\n"
    "between its wait and its set, and set() -> wait() orders every increment\n"
    "after the one before.  Every turn wakes a sleeping thread, which makes\n"
    "this by far the slowest fix: its default is 2,000 iterations per thread.\n"
    "\n"
    "queue (queue_producer, queue_owner): confinement.  The counter has one\n"
    "owner, an extra actor, and only the owner ever touches n.  The other\n"
    "threads put one message per increment on a Queue, then NULL for\n"
    "\"done\"; the owner gets them and applies them.  The Queue hands each\n"
    "message over with a happens-before edge; n needs no lock at all.\n"
    "Default 20,000 iterations per thread.\n"
    "\n"
    "executor (executor_map_reduce, count_task): no shared counter at all.\n"
    "Each actor maps 4 tasks on a ThreadPoolExecutor (one pool for the whole\n"
    "run, freed at exit); each task counts in a private variable and returns\n"
    "its count; the actor sums its results into its own slot and\n"
    "executor_arbiter adds the slots.  Map-reduce avoids the race by sharing\n"
    "nothing until the end.\n"
    "\n"
    "atomic (atomic_actor): atomic_fetch_add is one indivisible\n"
    "read-modify-write (a `lock add` on x86, a load/store-exclusive loop or\n"
    "an LSE `ldadd` on ARM).  memory_order_relaxed is enough: only the final\n"
    "count matters, and the harness's end-of-batch rendezvous publishes it to\n"
    "atomic_arbiter.",
    "Processes: proc_racy and proc_lock (proc_actor, counter_proc_task).\n"
    "The same lost update happens between processes that share memory.\n"
    "multiprocessing.Value lives in shared memory (the shared arena, mapped\n"
    "at one address in every process of the family), and `v.value += 1` is\n"
    "still a load and a store.  Each actor thread forks one child; each\n"
    "child waits at a start gate (start_together: 100,000 increments take\n"
    "about a millisecond, no longer than starting a child, so without the\n"
    "gate the children could run one after the other) and then\n"
    "runs the very bump() the threads run, on the Value.  proc_racy loses\n"
    "updates on two cores like the racy threads do.  proc_lock wraps each\n"
    "increment in the Value's own lock (Python's `with v.get_lock():\n"
    "v.value += 1`), a robust process-shared RLock; rlab_value_add_long does\n"
    "the same in one call.  Note that Python's `v.value += 1` is NOT safe\n"
    "even though Value(lock=True) has a lock: the getter and the setter each\n"
    "take it, but not the two together.\n"
    "\n"
    "ThreadSanitizer cannot judge proc_racy: it watches the threads of one\n"
    "process, and the two racing stores come from two different processes\n"
    "(the parent does no racy access at all), so its verdict is \"blind\"\n"
    "and only the harness' count grades the variant.  Under the tsan preset\n"
    "the children stay single-threaded and do only plain memory work and a\n"
    "pthread mutex, which TSan follows after a fork.",
    "And in Python?  The same program, two threading.Thread()s each running\n"
    "`for _ in range(100000): n += 1` on a global, usually prints exactly\n"
    "200,000 on CPython 3.10 and later.  `n += 1` compiles to LOAD_GLOBAL n,\n"
    "LOAD_CONST 1, BINARY_OP (+=), STORE_GLOBAL n.  A thread that wants the\n"
    "GIL asks for it after the switch interval (5 ms); the holder gives it up\n"
    "only where the interpreter checks its \"eval breaker\", and since 3.10\n"
    "that happens only on backward jumps (the top of the for loop) and on\n"
    "function calls, never between the LOAD_GLOBAL and the STORE_GLOBAL.  So\n"
    "every hand-over falls between two whole increments.  (Before 3.10 the\n"
    "check came after most instructions, and the same program lost updates.)\n"
    "\n"
    "That is luck, not safety.  The language promises nothing of the kind:\n"
    "it is an accident of where one interpreter version looks at a flag.  Put\n"
    "a call anywhere inside the read-modify-write (`n = add_one(n)`, an\n"
    "`__add__` or a property written in Python, a logging call) and the GIL\n"
    "can change hands between the load and the store: the other thread then\n"
    "runs for a whole switch interval, and the store that follows throws its\n"
    "work away.  With a call in there, a run loses about a third of the\n"
    "updates.  The free-threaded build (3.13t, PEP 703) has no GIL at all and\n"
    "behaves like this lesson.  Guard the counter with a Lock, or give it one\n"
    "owner.",
    NULL,
};

const lab_lesson lab_lesson_counter = {
    .name = "counter",
    .summary = "threads x n += 1 on a shared counter lose updates",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0],
    .register_tasks = counter_register_tasks,
};
