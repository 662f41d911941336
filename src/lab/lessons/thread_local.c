/*
 * thread_local.c - lesson 7: per-thread data kept in a shared global.
 *
 * A request handler stores "the current request" in a global so that a
 * nested call deep inside (here: process(), which audits the request it
 * works for) can find it without passing it down.  With one thread that is
 * fine; with several, each handler overwrites the others' request and the
 * nested call audits someone else's.
 *
 * Every actor is one handler thread.  Per state it handles --iterations
 * requests of its own (request id = actor number + 1): it stores its
 * request as the current one, calls process(), and process() reads the
 * current request back and checks that it is the handler's own.  The
 * outcome counts the mismatches.
 *
 * Variants:
 *   racy   the current request is one shared `volatile` int per state
 *          (the global): overwritten by the other handlers;
 *   local  an rlab_local (threading.local): each thread has its own slot;
 *   param  no global at all: the request is passed to process() as an
 *          argument;
 *   tls    C11's own thread-local storage, a `_Thread_local` global.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lab.h"
#include "racelab/threading.h"

#define TL_MAX RLAB_STRESS_MAX_ACTORS
#define TL_DEFAULT_ACTORS 2
#define TL_DEFAULT_ROUNDS 64
/* Loop steps of "work" between storing the request and reading it back
 * (what a real handler would do: parse, look things up, format a log
 * line); --amplify makes it longer. */
#define TL_WORK 16
#define TL_WORK_AMPLIFIED 256

typedef struct {
    int id; /* the request this handler works for */
} request;

typedef struct {
    /* racy: the "global" current request (one per state, so every trial
     * starts afresh). */
    volatile int current;
    /* local: the threading.local that keeps each thread's request. */
    rlab_local *local;
    request req[TL_MAX];     /* actor i's request; written by actor i only */
    unsigned wrong[TL_MAX];  /* requests actor i saw replaced by another */
    unsigned errors[TL_MAX]; /* a racelab call failed (ENOMEM ...) */
} tl_state;

static lab_params params;
static unsigned actors, rounds, work;

/* One rlab_local for every state of every run: a local is a pthread key,
 * and a batch of up to 1024 states each making its own would exhaust
 * PTHREAD_KEYS_MAX.  It lives as long as the process (it is small, and a
 * static keeps it reachable); each actor thread's slot is freed when the
 * thread exits. */
static rlab_local *shared_local;

/* The handler's work between storing the request and using it again: a
 * loop the compiler must keep (volatile), no sleep, no yield. */
static void busy(unsigned n, int seed)
{
    volatile unsigned h = (unsigned)seed;
    for (unsigned i = 0; i < n; i++)
        h = h * 31u + i;
}

/* Checks the request the nested call found against the handler's own. */
static void audit(tl_state *s, unsigned me, int found)
{
    if (found != s->req[me].id)
        s->wrong[me]++;
}

static void tl_init(void *p)
{
    tl_state *s = p;
    for (unsigned i = 0; i < TL_MAX; i++)
        s->req[i].id = (int)i + 1;
    s->local = shared_local;
}

/* ---------------------------------------------------------------- racy --- */

/* The nested call: it finds "the current request" in the global. */
static void racy_process(tl_state *s, unsigned me)
{
    busy(work, (int)me);
    audit(s, me, s->current);
}

static void racy_handler(tl_state *s, unsigned me)
{
    for (unsigned r = 0; r < rounds; r++) {
        s->current = s->req[me].id; /* current_request = req */
        racy_process(s, me);
    }
}

/* --------------------------------------------------------------- local --- */

static void local_process(tl_state *s, unsigned me)
{
    busy(work, (int)me);
    const request *cur = rlab_local_get(s->local);
    audit(s, me, cur ? cur->id : 0);
}

static void local_handler(tl_state *s, unsigned me)
{
    for (unsigned r = 0; r < rounds; r++) {
        /* data.request = req: this thread's slot, nobody else's */
        if (rlab_local_set(s->local, &s->req[me])) {
            s->errors[me]++;
            return;
        }
        local_process(s, me);
    }
}

/* --------------------------------------------------------------- param --- */

static void param_process(tl_state *s, unsigned me, const request *req)
{
    busy(work, (int)me);
    audit(s, me, req->id);
}

static void param_handler(tl_state *s, unsigned me)
{
    for (unsigned r = 0; r < rounds; r++)
        param_process(s, me, &s->req[me]);
}

/* ----------------------------------------------------------------- tls --- */

/* The C11 answer: one variable per thread, as cheap as a global. */
static _Thread_local const request *tls_current;

static void tls_process(tl_state *s, unsigned me)
{
    busy(work, (int)me);
    audit(s, me, tls_current ? tls_current->id : 0);
}

static void tls_handler(tl_state *s, unsigned me)
{
    for (unsigned r = 0; r < rounds; r++) {
        tls_current = &s->req[me];
        tls_process(s, me);
    }
}

/* -------------------------------------------------------------- actors --- */

/* The harness calls actor i without telling it i: one small function per
 * slot and per variant. */
#define TL_ACTOR(handler, i)                                                   \
    static void handler##_##i(void *p)                                         \
    {                                                                          \
        handler(p, i);                                                         \
    }
#define TL_ACTORS(handler)                                                     \
    TL_ACTOR(handler, 0)                                                       \
    TL_ACTOR(handler, 1)                                                       \
    TL_ACTOR(handler, 2)                                                       \
    TL_ACTOR(handler, 3)                                                       \
    TL_ACTOR(handler, 4)                                                       \
    TL_ACTOR(handler, 5)                                                       \
    TL_ACTOR(handler, 6)                                                       \
    TL_ACTOR(handler, 7)                                                       \
    static void (*const handler##_actors[TL_MAX])(void *) = {                  \
        handler##_0, handler##_1, handler##_2, handler##_3,                    \
        handler##_4, handler##_5, handler##_6, handler##_7};

TL_ACTORS(racy_handler)
TL_ACTORS(local_handler)
TL_ACTORS(param_handler)
TL_ACTORS(tls_handler)

/* ------------------------------------------------------------- outcome --- */

static void tl_outcome(const void *p, char *key, size_t len)
{
    const tl_state *s = p;
    unsigned wrong = 0, errors = 0;
    for (unsigned i = 0; i < actors; i++) {
        wrong += s->wrong[i];
        errors += s->errors[i];
    }
    if (errors)
        snprintf(key, len, "error");
    else if (wrong)
        snprintf(key, len, "overwritten");
    else
        snprintf(key, len, "ok");
}

static const rlab_outcome tl_grades[] = {
    {"ok", RLAB_ACCEPTABLE, "every handler found its own request"},
    {"overwritten", RLAB_FORBIDDEN,
     "a handler found another thread's request in the global"},
    {"error", RLAB_FORBIDDEN, "a racelab call failed (out of memory?)"},
    {NULL, RLAB_ACCEPTABLE, NULL}};

static void build(const lab_params *p, rlab_stress_test *t,
                  void (*const acts[TL_MAX])(void *))
{
    params = *p;
    actors = p->threads ? p->threads : TL_DEFAULT_ACTORS;
    if (actors < 2)
        actors = 2;
    if (actors > TL_MAX)
        actors = TL_MAX;
    rounds = p->iterations ? (unsigned)p->iterations : TL_DEFAULT_ROUNDS;
    work = p->amplify ? TL_WORK_AMPLIFIED : TL_WORK;
    t->state_size = sizeof(tl_state);
    t->init = tl_init;
    for (unsigned i = 0; i < actors; i++)
        t->actor[i] = acts[i];
    t->outcome = tl_outcome;
    t->outcomes = tl_grades;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    t->name = "thread_local.racy";
    t->description = "the current request in a shared global";
    build(p, t, racy_handler_actors);
}

static void build_local(const lab_params *p, rlab_stress_test *t)
{
    t->name = "thread_local.local";
    t->description = "the current request in an rlab_local";
    if (!shared_local)
        shared_local = rlab_local_new(NULL); /* NULL: "error" outcomes */
    build(p, t, local_handler_actors);
}

static void build_param(const lab_params *p, rlab_stress_test *t)
{
    t->name = "thread_local.param";
    t->description = "the request passed down as an argument";
    build(p, t, param_handler_actors);
}

static void build_tls(const lab_params *p, rlab_stress_test *t)
{
    t->name = "thread_local.tls";
    t->description = "the current request in a C11 _Thread_local global";
    build(p, t, tls_handler_actors);
}

static const lab_variant variants[] = {
    {.name = "racy",
     .summary = "handlers keep the current request in a shared global",
     .racy = true,
     .tsan = LAB_TSAN_RACE,
     .build = build_racy,
     .seconds = 0.5},
    {.name = "local",
     .summary = "rlab_local (threading.local): one slot per thread",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_local,
     .seconds = 0.5},
    {.name = "param",
     .summary = "no global: the request is passed as an argument",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_param,
     .seconds = 0.5},
    {.name = "tls",
     .summary = "a C11 _Thread_local global",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_tls,
     .seconds = 0.5},
};

static const char *const explain[] = {
    "THE RACE\n"
    "\n"
    "A web handler stores the request it is working on in a global,\n"
    "current_request, so that code deep inside (logging, auditing, access\n"
    "checks) can find it without every function passing it down:\n"
    "\n"
    "    current_request = None\n"
    "    def handle(req):\n"
    "        global current_request\n"
    "        current_request = req\n"
    "        process()              # reads current_request\n"
    "\n"
    "With one thread this works.  With several, there is still only one\n"
    "global: handler A stores its request, handler B stores its own over\n"
    "it, and A's process() now works for B's request.  Nothing crashes; A\n"
    "just audits, logs or authorizes the wrong request.  The data is not\n"
    "shared by nature, it is per-thread data put in a shared place.",

    "THE TEST\n"
    "\n"
    "Each actor is a handler thread (2 by default, --threads up to 8).\n"
    "Per state it handles --iterations requests (default 64), each time\n"
    "storing its own request id as the current one, doing a little work\n"
    "(a short loop; --amplify makes it longer) and reading the current\n"
    "request back in a nested call.  The outcome is \"ok\" when every\n"
    "handler always found its own request, \"overwritten\" (FORBIDDEN)\n"
    "when one found another's.  ThreadSanitizer reports the unordered\n"
    "writes and reads of the global as a data race.\n"
    "\n"
    "Why so many requests per state: the harness gives every trial its own\n"
    "state, so the handlers only collide while both work on the same state\n"
    "at the same moment.  A state that takes a microsecond or more keeps\n"
    "them together even when one thread starts a batch a little late.",

    "THE FIXES\n"
    "\n"
    "local: rlab_local is Python's threading.local.  rlab_local_set stores\n"
    "a value in the calling thread's own slot and rlab_local_get reads that\n"
    "slot back, so the one variable has a separate value per thread and no\n"
    "thread can see, let alone overwrite, another's.  (The lesson makes one\n"
    "local for the whole run rather than one per state: a local is a\n"
    "pthread key, and a process has only about 1000 of them.)\n"
    "\n"
    "param: the plainest fix needs no library at all: pass the request\n"
    "down as an argument.  Each thread's request then lives in its own\n"
    "stack frames, and the nested call can only see the one it was given.\n"
    "Prefer it when the call chain is yours to change.\n"
    "\n"
    "tls: C has thread-local globals in the language itself.  A global\n"
    "declared `static _Thread_local const request *current;` (C11;\n"
    "`thread_local` in C23, `__thread` in GCC) has one instance per thread,\n"
    "as cheap to reach as any global.  rlab_local is still useful when the\n"
    "number of variables is only known at run time, when a value needs a\n"
    "destructor at thread exit, or to mirror Python's API.",

    "WHERE TO LOOK\n"
    "\n"
    "src/lab/lessons/thread_local.c: racy_handler and racy_process (the\n"
    "global), local_handler and local_process (rlab_local_set/get),\n"
    "param_handler and param_process (the argument), tls_handler and\n"
    "tls_process (_Thread_local).  src/lib/local.c shows how rlab_local\n"
    "keeps one slot per thread on a pthread key and frees the slots when\n"
    "threads exit or the local is freed.",
    NULL};

const lab_lesson lab_lesson_thread_local = {
    .name = "thread_local",
    .summary = "per-thread data in a shared global is overwritten",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0]};
