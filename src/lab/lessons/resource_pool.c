/*
 * resource_pool.c - lesson 3, a pool of 5 connections and 7 users: a
 * Semaphore(5) keeps the sixth and seventh waiting; without it they walk
 * in and share a connection someone else is using.
 *
 * Each actor is a user that uses the pool a few times per state: it takes
 * a free connection, serves one request on it (about a millisecond of its
 * own CPU time, touching the connection's fields), and gives it back.
 * Two atomics count the users inside and the most ever inside at once;
 * the outcome is that maximum.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "lab.h"
#include "racelab/threading.h"

#define POOL_SIZE 5
#define POOL_USERS 7
/* Uses of the pool per user per state (--iterations). */
#define POOL_USES 4UL
/* CPU time one request takes, and how many connection updates are made
 * between two looks at the clock. */
#define POOL_REQUEST_NS 1000000L
#define POOL_REQUEST_STEP 256

static unsigned nusers = POOL_USERS;
static unsigned long uses = POOL_USES;
static bool guarded; /* users go through the semaphore */
static bool bounded; /* ... a BoundedSemaphore; the arbiter checks */

/* One connection.  `busy` is how the pool hands it out; `requests` is the
 * connection's own data, plain (volatile: every access happens), touched
 * only by the user holding it - as long as no more users than
 * connections are inside. */
typedef struct {
    atomic_int busy;
    volatile long requests;
} connection;

typedef struct {
    connection conn[POOL_SIZE];
    atomic_int inside, max_inside;
    rlab_semaphore *sem;
    int over_release;  /* bounded: what a release past 5 returned */
    long value_after;  /* bounded: the value after it */
    atomic_int failed; /* a racelab call failed */
} pool_state;

static void fail(pool_state *s)
{
    atomic_store(&s->failed, 1);
}

static long thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Hands out a free connection.  The pool relies on its callers never
 * outnumbering its connections (that is the semaphore's job): when every
 * connection is busy it has no better answer than one already in use. */
static connection *take_connection(pool_state *s, unsigned me, bool *claimed)
{
    for (int i = 0; i < POOL_SIZE; i++) {
        int free_ = 0;
        if (atomic_compare_exchange_strong_explicit(&s->conn[i].busy, &free_, 1,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            *claimed = true;
            return &s->conn[i];
        }
    }
    *claimed = false;
    return &s->conn[me % POOL_SIZE];
}

static void give_back(connection *c, bool claimed)
{
    if (claimed)
        atomic_store_explicit(&c->busy, 0, memory_order_release);
}

/* One request: about POOL_REQUEST_NS of this thread's CPU time spent
 * updating the connection.  CPU time, not wall time: a user that loses
 * its CPU keeps its connection, as a real one waiting on I/O would. */
static void serve(connection *c)
{
    long end = thread_cpu_ns() + POOL_REQUEST_NS;
    do {
        for (int i = 0; i < POOL_REQUEST_STEP; i++)
            c->requests = c->requests + 1;
    } while (thread_cpu_ns() < end);
}

static void enter(pool_state *s)
{
    int now = atomic_fetch_add(&s->inside, 1) + 1;
    int max = atomic_load(&s->max_inside);
    while (now > max &&
           !atomic_compare_exchange_weak(&s->max_inside, &max, now))
        ;
}

static void leave(pool_state *s)
{
    atomic_fetch_sub(&s->inside, 1);
}

/* The user: `with sem: conn = pool.take(); conn.serve(); pool.give(conn)`
 * - or, racy, the same without `with sem`. */
static void use_pool(pool_state *s, unsigned me)
{
    for (unsigned long u = 0; u < uses; u++) {
        if (guarded && rlab_semaphore_acquire(s->sem, RLAB_FOREVER)) {
            fail(s);
            return;
        }
        enter(s);
        bool claimed;
        connection *c = take_connection(s, me, &claimed);
        serve(c);
        give_back(c, claimed);
        leave(s);
        if (guarded && rlab_semaphore_release(s->sem, 1))
            fail(s);
    }
}

#define USER(i)                                                                \
    static void user##i(void *p)                                               \
    {                                                                          \
        use_pool(p, i);                                                        \
    }
USER(0)
USER(1)
USER(2)
USER(3)
USER(4)
USER(5)
USER(6)
USER(7)
static void (*const users[RLAB_STRESS_MAX_ACTORS])(void *) = {
    user0, user1, user2, user3, user4, user5, user6, user7};

static void init(void *p)
{
    pool_state *s = p;
    if (!guarded)
        return;
    s->sem = bounded ? rlab_bounded_semaphore_new(POOL_SIZE)
                     : rlab_semaphore_new(POOL_SIZE);
    if (!s->sem)
        fail(s);
}

/* Every user is out: one release too many must be refused by a
 * BoundedSemaphore (ValueError: EOVERFLOW), leaving the value at 5. */
static void bounded_arbiter(void *p)
{
    pool_state *s = p;
    s->over_release = rlab_semaphore_release(s->sem, 1);
    s->value_after = rlab_semaphore_value(s->sem);
}

static void fini(void *p)
{
    pool_state *s = p;
    rlab_semaphore_free(s->sem);
}

static void outcome(const void *p, char *key, size_t len)
{
    const pool_state *s = p;
    if (atomic_load(&((pool_state *)p)->failed))
        snprintf(key, len, "racelab call failed");
    else if (bounded &&
             (s->over_release != EOVERFLOW || s->value_after != POOL_SIZE))
        snprintf(key, len, "over-release accepted");
    else
        snprintf(key, len, "max %d inside",
                 atomic_load(&((pool_state *)p)->max_inside));
}

static const rlab_outcome outcomes[] = {
    {"max 5 inside", RLAB_ACCEPTABLE, "the pool was full, never over"},
    {"max 4 inside", RLAB_ACCEPTABLE, "never full"},
    {"max 3 inside", RLAB_ACCEPTABLE, "never full"},
    {"max 2 inside", RLAB_ACCEPTABLE, "never full"},
    {"max 1 inside", RLAB_ACCEPTABLE, "the users never overlapped"},
    {"max 6 inside", RLAB_FORBIDDEN, "6 users, 5 connections: one shared"},
    {"max 7 inside", RLAB_FORBIDDEN, "7 users, 5 connections: two shared"},
    {"max 8 inside", RLAB_FORBIDDEN, "8 users, 5 connections: three shared"},
    {"over-release accepted", RLAB_FORBIDDEN,
     "a release past the bound did not fail with EOVERFLOW"},
    {"racelab call failed", RLAB_FORBIDDEN, "an acquire or release failed"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static char description[160];

static void common(const lab_params *p, const char *name, const char *how,
                   rlab_stress_test *t)
{
    nusers = p->threads ? p->threads : POOL_USERS;
    if (nusers < 2)
        nusers = 2;
    if (nusers > RLAB_STRESS_MAX_ACTORS)
        nusers = RLAB_STRESS_MAX_ACTORS;
    uses = p->iterations ? p->iterations : POOL_USES;
    snprintf(description, sizeof description,
             "%u users x %lu uses of a pool of %d connections, %s", nusers,
             uses, POOL_SIZE, how);
    t->name = name;
    t->description = description;
    t->state_size = sizeof(pool_state);
    t->init = init;
    t->outcome = outcome;
    t->outcomes = outcomes;
    t->fini = fini;
    for (unsigned i = 0; i < nusers; i++)
        t->actor[i] = users[i];
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    guarded = bounded = false;
    common(p, "resource_pool.racy", "no semaphore", t);
}

static void build_semaphore(const lab_params *p, rlab_stress_test *t)
{
    guarded = true;
    bounded = false;
    common(p, "resource_pool.semaphore", "each use under Semaphore(5)", t);
}

static void build_bounded(const lab_params *p, rlab_stress_test *t)
{
    guarded = bounded = true;
    common(p, "resource_pool.bounded",
           "each use under BoundedSemaphore(5); a 6th release must fail", t);
    t->arbiter = bounded_arbiter;
}

static const lab_variant variants[] = {
    {"racy", "7 users, 5 connections, no semaphore: up to 7 inside", true,
     LAB_TSAN_RACE, build_racy, 1.0, 0, 0, 0},
    {"semaphore", "Semaphore(5) around each use: never more than 5 inside",
     false, LAB_TSAN_CLEAN, build_semaphore, 1.0, 0, 0, 0},
    {"bounded",
     "BoundedSemaphore(5): the same, and a release past 5 is EOVERFLOW", false,
     LAB_TSAN_CLEAN, build_bounded, 1.0, 0, 0, 0},
};

static const char *const explain[] = {
    "The race: more users than resources.  The pool has 5 connections\n"
    "(pool_state in src/lab/lessons/resource_pool.c) and 7 users, one per\n"
    "actor.  A connection serves one user at a time: its data\n"
    "(connection.requests) is plain, and take_connection() claims a free\n"
    "connection with an atomic compare-and-swap.  The pool counts on never\n"
    "having more callers than connections (that is the semaphore's job), so\n"
    "when all 5 are busy it has no good answer and hands out one already in\n"
    "use.  The racy variant leaves the semaphore out and every user just\n"
    "walks in.  The sixth and seventh users share a connection with someone\n"
    "else; its data races (ThreadSanitizer reports it in serve()), and the\n"
    "outcome, the most users ever inside at once, reads \"max 6 inside\" or\n"
    "\"max 7 inside\": FORBIDDEN, anything past 5 is.",
    "How seven get in on two cores.  use_pool() counts the users inside with\n"
    "two atomics (enter() and leave(): the count, and the largest value it\n"
    "ever reached).  Each user uses the pool 4 times per state (--iterations)\n"
    "and each request takes about 1 ms of its own CPU time (serve() watches\n"
    "CLOCK_THREAD_CPUTIME_ID while it updates the connection).  Seven busy\n"
    "threads on two cores need many time slices, so the scheduler preempts\n"
    "users in the middle of a request, connection in hand, as a real user\n"
    "waiting for a reply would be, and the others walk in past them.  No\n"
    "sleep and no yield: the overlap comes from the scheduler alone.  With\n"
    "more cores than users it comes from plain parallelism.",
    "semaphore: `with sem:` around each use, sem = Semaphore(5).  acquire\n"
    "takes one of 5 permits or waits until a user releases one, so at most 5\n"
    "users are ever between acquire and release, each with a connection of\n"
    "its own.  The outcome stays at \"max 5 inside\" (fewer when the users\n"
    "happen not to overlap) and TSan is quiet: the compare-and-swap that\n"
    "claims a connection (an acquire) and the store that gives it back (a\n"
    "release) put each connection's users one after the other.  A semaphore\n"
    "is a counter, not a lock: any thread may release it, and it admits as\n"
    "many holders as it has permits.  It protects the connections by counting\n"
    "them; data the 5 holders share would still need a lock.",
    "bounded: BoundedSemaphore(5).  The same, plus a guard against a bug the\n"
    "plain Semaphore accepts in silence: releasing more often than acquiring\n"
    "(an error path that releases twice, say).  Semaphore(5) released a sixth\n"
    "time simply has 6 permits, and from then on 6 users get in.\n"
    "BoundedSemaphore refuses: the release fails with EOVERFLOW (Python\n"
    "raises ValueError: Semaphore released too many times) and the value\n"
    "stays 5.  bounded_arbiter() checks it after every state, when all users\n"
    "are out: one release too many must return EOVERFLOW and leave the value\n"
    "at 5, else the outcome is \"over-release accepted\" (FORBIDDEN).",
    NULL,
};

const lab_lesson lab_lesson_resource_pool = {
    .name = "resource_pool",
    .summary = "7 users share 5 connections: Semaphore(5) keeps 2 waiting",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0],
};
