/*
 * event_coordinator.c - lesson 5: a coordinator and its workers, cycle
 * after cycle (the AllEvents coordinator of the source material).
 *
 * Each cycle the coordinator publishes the cycle number and opens a start
 * gate; every worker runs the cycle once and signals "done" on its own
 * signal; the coordinator waits for all of them, resets them, and starts
 * the next cycle.  The racy variant uses plain flags and resets the start
 * flag only after every worker reported: workers run a cycle twice, or
 * not at all.  The fixes use Events with a reset discipline that has no
 * such window (two start gates, alternating), or one Barrier.
 */
#include <stddef.h>
#include <stdio.h>

#include "lab.h"
#include "racelab/threading.h"

#define MAX_WORKERS 3
#define DEFAULT_CYCLES 4
#define MAX_CYCLES 64

typedef struct {
    /* events variant */
    rlab_event *start[2];          /* start gate of even / odd cycles */
    rlab_event *done[MAX_WORKERS]; /* worker i finished this cycle */
    /* barrier variant */
    rlab_barrier *barrier;
    /* racy variant: plain flags, every access real (volatile), none
     * atomic */
    volatile int go;
    volatile int done_flag[MAX_WORKERS];
    /* published by the coordinator, read by the workers */
    volatile int cycle;
    volatile int stop;
    /* runs[w * cycles + c]: how often worker w ran cycle c (only worker w
     * writes its row) */
    unsigned runs[];
} coord;

static lab_params params;
static unsigned workers = 2, cycles = DEFAULT_CYCLES;

static void fini(void *p)
{
    coord *s = p;
    for (int k = 0; k < 2; k++)
        rlab_event_free(s->start[k]);
    for (unsigned i = 0; i < MAX_WORKERS; i++)
        rlab_event_free(s->done[i]);
    rlab_barrier_free(s->barrier);
}

static void record_run(coord *s, unsigned w)
{
    unsigned c = (unsigned)s->cycle;
    s->runs[w * cycles + c]++;
}

/* ---------------------------------------------------------------- racy --- */

/* The AllEvents loop with plain flags:
 *
 *   coordinator, each cycle:          worker w:
 *     cycle = c; go = 1                 loop:
 *     wait until every done[w]            wait until go
 *     done[w] = 0 for each w              if stop: return
 *     go = 0                              run cycle `cycle`; done[w] = 1
 *
 * Waiting on a flag means spinning on it.  Between a worker's done[w] = 1
 * and the coordinator's go = 0 the worker is back at "wait until go",
 * finds it still 1 and runs the same cycle again; its second done[w] = 1
 * may land after the coordinator cleared done[w], so the next cycle looks
 * finished before the worker ran it. */
static void coordinator_racy(void *p)
{
    coord *s = p;
    for (unsigned c = 0; c < cycles; c++) {
        s->cycle = (int)c;
        s->go = 1;
        for (unsigned w = 0; w < workers; w++)
            while (!s->done_flag[w])
                ;
        for (unsigned w = 0; w < workers; w++)
            s->done_flag[w] = 0;
        s->go = 0;
    }
    s->stop = 1;
    s->go = 1;
}

static void worker_racy(coord *s, unsigned w)
{
    for (;;) {
        while (!s->go)
            ;
        if (s->stop)
            return;
        record_run(s, w);
        s->done_flag[w] = 1;
    }
}

static void worker_racy_0(void *p)
{
    worker_racy(p, 0);
}
static void worker_racy_1(void *p)
{
    worker_racy(p, 1);
}
static void worker_racy_2(void *p)
{
    worker_racy(p, 2);
}

/* -------------------------------------------------------------- events --- */

static void init_events(void *p)
{
    coord *s = p;
    for (int k = 0; k < 2; k++)
        s->start[k] = rlab_event_new();
    for (unsigned w = 0; w < workers; w++)
        s->done[w] = rlab_event_new();
}

/* Opens the start gate of cycle c.  The other gate belongs to cycles c - 1
 * and c + 1: every worker went through it in cycle c - 1 (the coordinator
 * saw all their done events), and none can reach it for cycle c + 1
 * before this gate opens, so clearing it here is safe. */
static void open_gate(coord *s, unsigned c)
{
    rlab_event_clear(s->start[(c + 1) & 1]);
    rlab_event_set(s->start[c & 1]);
}

static void coordinator_events(void *p)
{
    coord *s = p;
    for (unsigned c = 0; c < cycles; c++) {
        s->cycle = (int)c;
        open_gate(s, c);
        for (unsigned w = 0; w < workers; w++) {
            rlab_event_wait(s->done[w], RLAB_FOREVER);
            /* Only this thread clears done[w], and worker w cannot set it
             * again before the next gate opens. */
            rlab_event_clear(s->done[w]);
        }
    }
    s->stop = 1;
    open_gate(s, cycles);
}

static void worker_events(coord *s, unsigned w)
{
    for (unsigned k = 0;; k++) {
        rlab_event_wait(s->start[k & 1], RLAB_FOREVER);
        if (s->stop)
            return;
        record_run(s, w);
        rlab_event_set(s->done[w]);
    }
}

static void worker_events_0(void *p)
{
    worker_events(p, 0);
}
static void worker_events_1(void *p)
{
    worker_events(p, 1);
}
static void worker_events_2(void *p)
{
    worker_events(p, 2);
}

/* ------------------------------------------------------------- barrier --- */

static void init_barrier(void *p)
{
    coord *s = p;
    s->barrier = rlab_barrier_new((long)workers + 1, NULL, NULL, RLAB_FOREVER);
}

/* Each cycle is two barrier waits: "start" and "done".  A Barrier resets
 * itself when the last party arrives, so there is no reset to race with. */
static void coordinator_barrier(void *p)
{
    coord *s = p;
    for (unsigned c = 0; c < cycles; c++) {
        s->cycle = (int)c;
        rlab_barrier_wait(s->barrier, RLAB_FOREVER, NULL);
        rlab_barrier_wait(s->barrier, RLAB_FOREVER, NULL);
    }
    s->stop = 1;
    rlab_barrier_wait(s->barrier, RLAB_FOREVER, NULL);
}

static void worker_barrier(coord *s, unsigned w)
{
    for (;;) {
        rlab_barrier_wait(s->barrier, RLAB_FOREVER, NULL);
        if (s->stop)
            return;
        record_run(s, w);
        rlab_barrier_wait(s->barrier, RLAB_FOREVER, NULL);
    }
}

static void worker_barrier_0(void *p)
{
    worker_barrier(p, 0);
}
static void worker_barrier_1(void *p)
{
    worker_barrier(p, 1);
}
static void worker_barrier_2(void *p)
{
    worker_barrier(p, 2);
}

/* ------------------------------------------------------------ outcome --- */

static void outcome(const void *p, char *key, size_t len)
{
    const coord *s = p;
    unsigned dup = 0, skip = 0;
    for (unsigned i = 0; i < workers * cycles; i++) {
        dup += s->runs[i] > 1;
        skip += s->runs[i] == 0;
    }
    if (dup && skip)
        snprintf(key, len, "duplicated+skipped");
    else if (dup)
        snprintf(key, len, "duplicated");
    else if (skip)
        snprintf(key, len, "skipped");
    else
        snprintf(key, len, "exact");
}

static const rlab_outcome grades[] = {
    {"exact", RLAB_ACCEPTABLE, "every worker ran every cycle exactly once"},
    {"duplicated", RLAB_FORBIDDEN,
     "a worker ran a cycle twice (start was still set)"},
    {"skipped", RLAB_FORBIDDEN,
     "a cycle ended without a worker running it (stale done signal)"},
    {"duplicated+skipped", RLAB_FORBIDDEN,
     "both: runs repeated and cycles missed"},
    {"STALE", RLAB_FORBIDDEN, "the coordinator or a worker never returned"},
    {NULL, RLAB_ACCEPTABLE, NULL}};

typedef void (*actor_fn)(void *);

static void build_common(const lab_params *p, rlab_stress_test *t,
                         const char *name, const char *description,
                         void (*init)(void *), actor_fn coordinator,
                         const actor_fn worker[MAX_WORKERS])
{
    params = *p;
    /* --threads counts every actor: the coordinator and 2 or 3 workers. */
    workers = p->threads ? p->threads - 1 : 2;
    if (workers < 2)
        workers = 2;
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    cycles = p->iterations ? (unsigned)p->iterations : DEFAULT_CYCLES;
    if (cycles > MAX_CYCLES)
        cycles = MAX_CYCLES;

    t->name = name;
    t->description = description;
    t->state_size = offsetof(coord, runs) + workers * cycles * sizeof(unsigned);
    t->init = init;
    t->actor[0] = coordinator;
    for (unsigned w = 0; w < workers; w++)
        t->actor[1 + w] = worker[w];
    t->outcome = outcome;
    t->outcomes = grades;
    t->fini = fini;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    static const actor_fn w[] = {worker_racy_0, worker_racy_1, worker_racy_2};
    build_common(p, t, "event_coordinator.racy",
                 "plain flags for start and done, reset after the cycle", NULL,
                 coordinator_racy, w);
}

static void build_events(const lab_params *p, rlab_stress_test *t)
{
    static const actor_fn w[] = {worker_events_0, worker_events_1,
                                 worker_events_2};
    build_common(p, t, "event_coordinator.events",
                 "Events: two alternating start gates, one done per worker",
                 init_events, coordinator_events, w);
}

static void build_barrier(const lab_params *p, rlab_stress_test *t)
{
    static const actor_fn w[] = {worker_barrier_0, worker_barrier_1,
                                 worker_barrier_2};
    build_common(p, t, "event_coordinator.barrier",
                 "one Barrier(workers + 1), two waits per cycle", init_barrier,
                 coordinator_barrier, w);
}

static const lab_variant variants[] = {
    {.name = "racy",
     .summary = "plain flags: cycles rerun or missed",
     .racy = true,
     .tsan = LAB_TSAN_RACE,
     .build = build_racy,
     .seconds = 0.5},
    {.name = "events",
     .summary = "Events, two alternating start gates",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_events,
     .seconds = 0.5},
    {.name = "barrier",
     .summary = "one Barrier, two waits per cycle",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_barrier,
     .seconds = 0.5},
};

static const char *const explain[] = {
    "The pattern: a coordinator runs work in cycles.  Each cycle it\n"
    "releases its workers through one start signal, each worker does its\n"
    "part and says \"done\" on a signal of its own, and the coordinator\n"
    "waits for all of them, resets the signals and starts the next cycle\n"
    "(the AllEvents coordinator of the source material: one Event to\n"
    "start, one per worker for done, a helper that waits for and clears\n"
    "them all).  Written the obvious way:\n"
    "\n"
    "    coordinator:                    worker i:\n"
    "        for cycle in range(n):          while True:\n"
    "            start.set()                     start.wait()\n"
    "            all_done.wait()                 work(cycle)\n"
    "            all_done.clear()                done[i].set()\n"
    "            start.clear()\n"
    "\n"
    "The outcome checks every cycle: \"exact\" when each worker ran each\n"
    "cycle exactly once (--iterations cycles per state, 4 by default;\n"
    "--threads 3 or 4 actors: the coordinator and 2 or 3 workers).",

    "The race (event_coordinator.racy) uses plain flags where the Events\n"
    "were: `go` and done[i] are ints, waiting means spinning on them.  Two\n"
    "things go wrong.  First, a data race: the flags and the cycle number\n"
    "are written and read by different threads with no lock or atomic in\n"
    "common, so in the C memory model nothing orders a worker's work\n"
    "before its done flag as another thread sees them (volatile only\n"
    "makes each access happen), and ThreadSanitizer reports it.  Second,\n"
    "and what the harness sees in nearly every state, the reset race: a\n"
    "worker that set done[i] loops back to \"wait for go\" at once, long\n"
    "before the coordinator has noticed all the done flags and cleared\n"
    "go; it finds go still set and runs the same cycle again\n"
    "(\"duplicated\").  Its second done[i] = 1 can land after the\n"
    "coordinator cleared done[i], and the coordinator then takes it for\n"
    "the next cycle's signal and moves on before the worker ran that\n"
    "cycle (\"skipped\").  The obvious Event code above has the same\n"
    "reset race: swapping flags for Events is not enough, the reset needs\n"
    "a discipline too.  (The spinning is also why this variant manages\n"
    "only tens of states per second: three spinning threads share two\n"
    "cores, and each hand-off waits for the scheduler to run the thread\n"
    "that is not spinning.)",

    "Fix 1, events (event_coordinator.events): Events for every signal,\n"
    "reset so that no thread can be on the wrong side of a clear:\n"
    "- done[i] has one setter (worker i) and one clearer (the\n"
    "  coordinator, right after waiting on it).  Worker i cannot set it\n"
    "  again before the next cycle starts, and that start comes after the\n"
    "  clear.\n"
    "- the start signal is two Events used alternately, start[c % 2] for\n"
    "  cycle c (the sense reversal of a barrier).  A worker that finished\n"
    "  cycle c waits on the other gate, which is closed.  The coordinator\n"
    "  clears that other gate just before it opens start[c % 2]: every\n"
    "  worker went through it in cycle c - 1 (the coordinator saw all\n"
    "  their done events) and none can reach it again before the gate it\n"
    "  is opening now.\n"
    "Event.set() and wait() also order memory: the cycle number written\n"
    "before set() is what the woken worker reads, and the worker's work\n"
    "is visible to the coordinator once done[i].wait() returns, so the\n"
    "data race is gone too.",

    "Fix 2, barrier (event_coordinator.barrier): the tool made for this.\n"
    "One Barrier(workers + 1); each cycle every thread, coordinator\n"
    "included, calls wait() twice: once to start, once when done.  The\n"
    "barrier resets itself the instant the last party arrives (Python's\n"
    "Barrier is cyclic), so there is no clear() to race with, and each\n"
    "wait() orders everything before it in every thread before everything\n"
    "after it.",

    "Where to look: src/lab/lessons/event_coordinator.c.  coordinator_racy\n"
    "and worker_racy are the flag version; coordinator_events, open_gate\n"
    "and worker_events the Event fix; coordinator_barrier and\n"
    "worker_barrier the Barrier fix.  The outcome function counts, per\n"
    "worker and cycle, the runs recorded by record_run.  The library side\n"
    "is src/lib/event.c and src/lib/barrier.c.",
    NULL};

const lab_lesson lab_lesson_event_coordinator = {
    .name = "event_coordinator",
    .summary = "coordinator and workers in cycles: plain flags vs Events",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0]};
