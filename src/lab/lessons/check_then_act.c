/*
 * check_then_act.c - lesson 8: lazy initialization.
 *
 *     if (!s->obj) {            check
 *         build(p);             act ...
 *         s->obj = p;           ... and publish
 *     }
 *     use(s->obj);
 *
 * Every actor of a state needs the state's one object and builds it on
 * first use.  Without synchronization two threads can both find the slot
 * empty and both build (the object is initialized twice and the threads
 * end up using different "singletons"), and a thread can find the pointer
 * before the fields it points to (a half-built object).  Each actor builds
 * into its own slot of the state, so every build is counted and no object
 * is ever freed while another thread may be reading it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "lab.h"
#include "racelab/threading.h"

#define OBJ_ENTRIES 8

/* The lazily built object: a small lookup table, whole when entry i holds
 * i + 1 for every i. */
typedef struct {
    int entry[OBJ_ENTRIES];
} obj;

typedef struct {
    obj *volatile racy_obj; /* racy: a plain pointer, volatile accesses */
    obj *obj;               /* lock, once: guarded by the lock / the once */
    _Atomic(obj *) aobj;    /* acqrel: published with a release store */
    rlab_lock *lock;        /* lock, acqrel */
    pthread_once_t once;    /* once */
    obj slot[RLAB_STRESS_MAX_ACTORS];  /* actor i builds into slot[i] */
    int built[RLAB_STRESS_MAX_ACTORS]; /* actor i built the object */
    int half[RLAB_STRESS_MAX_ACTORS];  /* actor i saw it half-built */
} cta;

static unsigned n_actors = 2; /* set by build() from --threads */

/* ------------------------------------------------------ the object --- */

static void build_obj(obj *p)
{
    for (int i = 0; i < OBJ_ENTRIES; i++)
        p->entry[i] = i + 1;
}

static bool obj_whole(const obj *p)
{
    bool ok = true;
    for (int i = 0; i < OBJ_ENTRIES; i++)
        ok &= p->entry[i] == i + 1;
    return ok;
}

/* The racy variant's copies: volatile, so the compiler performs every
 * access, in program order; nothing makes them atomic or ordered for the
 * other thread. */
static void build_obj_v(volatile obj *p)
{
    for (int i = 0; i < OBJ_ENTRIES; i++)
        p->entry[i] = i + 1;
}

static bool obj_whole_v(const volatile obj *p)
{
    bool ok = true;
    for (int i = 0; i < OBJ_ENTRIES; i++)
        ok &= p->entry[i] == i + 1;
    return ok;
}

/* ------------------------------------------------------------ racy --- */

static obj *racy_get(cta *s, unsigned me)
{
    obj *p = s->racy_obj; /* check */
    if (!p) {
        p = &s->slot[me];
        build_obj_v(p);  /* act */
        s->racy_obj = p; /* publish */
        s->built[me] = 1;
    }
    return p;
}

static void racy_actor(cta *s, unsigned me)
{
    s->half[me] = !obj_whole_v(racy_get(s, me));
}

/* ------------------------------------------------------------ lock --- */

/* The check and the act form one critical section: the second thread
 * checks only after the first has published, and the lock's release and
 * acquire carry the fields along with the pointer. */
static obj *lock_get(cta *s, unsigned me)
{
    rlab_lock_acquire(s->lock, RLAB_FOREVER);
    obj *p = s->obj;
    if (!p) {
        p = &s->slot[me];
        build_obj(p);
        s->obj = p;
        s->built[me] = 1;
    }
    rlab_lock_release(s->lock);
    return p;
}

static void lock_actor(cta *s, unsigned me)
{
    s->half[me] = !obj_whole(lock_get(s, me));
}

/* ------------------------------------------------------------ once --- */

/* pthread_once runs its routine exactly once per pthread_once_t, makes
 * every other caller wait until it returned, and orders the routine before
 * their return.  The routine takes no argument; the state travels in a
 * thread-local variable, which is safe because pthread_once runs the
 * routine on the calling thread. */
static _Thread_local struct {
    cta *s;
    unsigned me;
} once_arg;

static void once_build(void)
{
    cta *s = once_arg.s;
    obj *p = &s->slot[once_arg.me];
    build_obj(p);
    s->obj = p;
    s->built[once_arg.me] = 1;
}

static obj *once_get(cta *s, unsigned me)
{
    once_arg.s = s;
    once_arg.me = me;
    pthread_once(&s->once, once_build);
    return s->obj;
}

static void once_actor(cta *s, unsigned me)
{
    s->half[me] = !obj_whole(once_get(s, me));
}

/* ---------------------------------------------------------- acqrel --- */

/* Double-checked locking: the fast path is one acquire load; only a
 * thread that finds the slot empty takes the lock and checks again, so two
 * threads cannot both build.  The release store publishes the fields with
 * the pointer, for readers that never touch the lock. */
static obj *acqrel_get(cta *s, unsigned me)
{
    obj *p = atomic_load_explicit(&s->aobj, memory_order_acquire);
    if (p)
        return p;
    rlab_lock_acquire(s->lock, RLAB_FOREVER);
    p = atomic_load_explicit(&s->aobj, memory_order_relaxed);
    if (!p) {
        p = &s->slot[me];
        build_obj(p);
        atomic_store_explicit(&s->aobj, p, memory_order_release);
        s->built[me] = 1;
    }
    rlab_lock_release(s->lock);
    return p;
}

static void acqrel_actor(cta *s, unsigned me)
{
    s->half[me] = !obj_whole(acqrel_get(s, me));
}

/* ---------------------------------------------- actors, init, grading --- */

/* The harness calls actors with the state only; one entry point per actor
 * index, dispatching to the variant chosen by build(). */
static void (*variant_actor)(cta *, unsigned);

#define ACTOR(i)                                                               \
    static void actor##i(void *p)                                              \
    {                                                                          \
        variant_actor(p, i);                                                   \
    }
ACTOR(0)
ACTOR(1)
ACTOR(2)
ACTOR(3)
ACTOR(4)
ACTOR(5)
ACTOR(6)
ACTOR(7)
static void (*const actors[RLAB_STRESS_MAX_ACTORS])(void *) = {
    actor0, actor1, actor2, actor3, actor4, actor5, actor6, actor7};

static void init_lock(void *p)
{
    cta *s = p;
    s->lock = rlab_lock_new();
    if (!s->lock) {
        perror("check_then_act: rlab_lock_new");
        abort();
    }
}

static void init_once(void *p)
{
    cta *s = p;
    pthread_once_t fresh = PTHREAD_ONCE_INIT;
    s->once = fresh;
}

static void fini_lock(void *p)
{
    cta *s = p;
    rlab_lock_free(s->lock);
}

static void outcome(const void *p, char *key, size_t len)
{
    const cta *s = p;
    int inits = 0, half = 0;
    for (unsigned i = 0; i < n_actors; i++) {
        inits += s->built[i];
        half |= s->half[i];
    }
    snprintf(key, len, "inits=%d%s", inits, half ? ", half-built" : "");
}

static const rlab_outcome grades[] = {
    {"inits=1", RLAB_ACCEPTABLE,
     "built once; every thread used the same, whole object"},
    {"inits=2", RLAB_FORBIDDEN,
     "initialized twice: both passed the check before either published"},
    {"inits=1, half-built", RLAB_FORBIDDEN,
     "saw half-built object: the pointer arrived before the fields"},
    {"inits=2, half-built", RLAB_FORBIDDEN,
     "initialized twice, and a thread saw a half-built object"},
    {"*", RLAB_FORBIDDEN, "initialized more than twice (or never)"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static void build_common(const lab_params *p, rlab_stress_test *t,
                         void (*actor)(cta *, unsigned))
{
    n_actors = p->threads ? p->threads : 2;
    if (n_actors < 2)
        n_actors = 2;
    if (n_actors > RLAB_STRESS_MAX_ACTORS)
        n_actors = RLAB_STRESS_MAX_ACTORS;
    variant_actor = actor;
    t->state_size = sizeof(cta);
    for (unsigned i = 0; i < n_actors; i++)
        t->actor[i] = actors[i];
    t->outcome = outcome;
    t->outcomes = grades;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    build_common(p, t, racy_actor);
    t->name = "check_then_act.racy";
    t->description = "if (!obj) { build; obj = p; } with no synchronization";
}

static void build_lock(const lab_params *p, rlab_stress_test *t)
{
    build_common(p, t, lock_actor);
    t->name = "check_then_act.lock";
    t->description = "check and act inside one Lock";
    t->init = init_lock;
    t->fini = fini_lock;
}

static void build_once(const lab_params *p, rlab_stress_test *t)
{
    build_common(p, t, once_actor);
    t->name = "check_then_act.once";
    t->description = "pthread_once per state";
    t->init = init_once;
}

static void build_acqrel(const lab_params *p, rlab_stress_test *t)
{
    build_common(p, t, acqrel_actor);
    t->name = "check_then_act.acqrel";
    t->description = "double-checked locking with acquire/release atomics";
    t->init = init_lock;
    t->fini = fini_lock;
}

/* ------------------------------------------------------------ lesson --- */

/* Every variant runs 8 states per batch: both threads start each batch
 * together, and a short batch ends before they drift apart (one thread
 * running ahead finds every object built and never races for the first
 * build; under TSan the one behind, slowed by race checks, never catches
 * up).  The fixes are proved under the same collisions. */
#define STRIDE 8

static const lab_variant variants[] = {
    {.name = "racy",
     .summary = "lazy init without synchronization: built twice",
     .racy = true,
     .tsan = LAB_TSAN_RACE,
     .build = build_racy,
     .seconds = 0.5,
     .max_stride = STRIDE},
    {.name = "lock",
     .summary = "check and act under one Lock",
     .tsan = LAB_TSAN_CLEAN,
     .build = build_lock,
     .seconds = 0.5,
     .max_stride = STRIDE},
    {.name = "once",
     .summary = "pthread_once: the C library's once-initialization",
     .tsan = LAB_TSAN_CLEAN,
     .build = build_once,
     .seconds = 0.5,
     .max_stride = STRIDE},
    {.name = "acqrel",
     .summary = "double-checked locking with acquire/release atomics",
     .tsan = LAB_TSAN_CLEAN,
     .build = build_acqrel,
     .seconds = 0.5,
     .max_stride = STRIDE},
};

static const char *const explain[] = {
    "check_then_act: lazy initialization\n"
    "\n"
    "Build a thing the first time somebody needs it, then share it:\n"
    "\n"
    "    if (!s->obj) {             /* check */\n"
    "        build(p);              /* act ... */\n"
    "        s->obj = p;            /* ... and publish */\n"
    "    }\n"
    "    use(s->obj);\n"
    "\n"
    "In Python the same shape is `if self._conn is None: self._conn =\n"
    "connect()`.  Each line is fine on its own; the bug is the gap between\n"
    "them.  The check and the act are two steps, and another thread can run\n"
    "between them.",

    "What goes wrong (check_then_act.racy)\n"
    "\n"
    "Initialized twice: two threads both read NULL, both build, both\n"
    "publish.  The last store wins, but the first builder already returned\n"
    "its own object: two \"singletons\" are in use (two connections, two\n"
    "caches, a leak, a resource opened twice).  The harness counts the\n"
    "builds of each state; \"inits=2\" is FORBIDDEN, and racy shows it in a\n"
    "large share of the trials (a quarter, on an idle two-core machine):\n"
    "the batches are short (8 states, max_stride) and both threads start\n"
    "each one together, so they reach each state at nearly the same time.\n"
    "\n"
    "A half-built object: the object here is a small table (entry i holds\n"
    "i + 1), and a thread that finds the pointer set reads the entries\n"
    "without any ordering against the builder's writes.  Nothing in C says\n"
    "the entries arrive before the pointer: the compiler may move plain\n"
    "stores after the pointer store, and Arm or POWER cores may make stores\n"
    "visible out of order.  Every reader checks the whole table (obj_whole);\n"
    "\"half-built\" is FORBIDDEN.  On x86 with these volatile accesses you\n"
    "will not see it: the compiler keeps volatile accesses in program order\n"
    "and x86 keeps stores in order (see the litmus lesson's mp_relaxed).\n"
    "The code is still wrong: it is a data race, undefined behaviour, and\n"
    "ThreadSanitizer reports it on every run.",

    "The fixes\n"
    "\n"
    "check_then_act.lock: take a Lock around the check and the act\n"
    "(lock_get).  A second thread checks only after the first published,\n"
    "so it finds the object; and the lock's release/acquire pair makes the\n"
    "builder's writes visible to whoever takes the lock next.  The\n"
    "price: every use takes the lock, even long after the object exists.\n"
    "\n"
    "check_then_act.once: pthread_once (C11's call_once is the same idea)\n"
    "runs a routine exactly once per once-control, makes concurrent callers\n"
    "wait until it has returned, and orders everything the routine wrote\n"
    "before every caller's return.  This is the tool to reach for in C.\n"
    "The routine takes no argument, so once_get passes the state in a\n"
    "thread-local variable (once_arg): pthread_once runs the routine on the\n"
    "calling thread, which makes that safe.  (glibc's call_once reaches\n"
    "pthread_once inside libc, where ThreadSanitizer does not intercept\n"
    "it, so TSan reports a false race after call_once; pthread_once is\n"
    "intercepted, and TSan stays quiet.)\n"
    "Python has no once; a module-level import or a Lock plays its part.\n"
    "\n"
    "check_then_act.acqrel: double-checked locking (acqrel_get).  The fast\n"
    "path is one acquire load of an atomic pointer; only a thread that\n"
    "finds it NULL takes the lock, checks again under the lock (another\n"
    "thread may have built it meanwhile) and publishes with a release\n"
    "store.  The lock stops the double build; acquire/release stops the\n"
    "half-built object, because a reader that sees the pointer through an\n"
    "acquire load also sees every write made before the release store.\n"
    "Drop either half and the bug is back: the classic broken version uses\n"
    "a plain pointer for the first check.",

    "Where to look\n"
    "\n"
    "src/lab/lessons/check_then_act.c: racy_get, lock_get, once_get with\n"
    "once_build, acqrel_get.  build_obj fills the object, obj_whole checks\n"
    "it; each actor builds into its own slot of the state and records\n"
    "whether it built (built[]) and whether it saw a half-built object\n"
    "(half[]); outcome() adds them up.  --threads N (2 to 8) lets more\n"
    "threads race for the first build.",
    NULL,
};

const lab_lesson lab_lesson_check_then_act = {
    .name = "check_then_act",
    .summary = "lazy initialization: built twice, or seen half-built",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0],
};
