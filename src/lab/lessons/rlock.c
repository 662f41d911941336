/*
 * rlock.c - lesson 2, re-entering a lock: a method that holds the
 * object's Lock calls another method that takes the same Lock, and the
 * thread waits for itself forever.
 *
 * The object is a small list with two methods, as a Python class would
 * have them:
 *
 *     def set(self, items):
 *         with self.lock:
 *             self.items = list(items)
 *     def set_reverse(self, items):
 *         with self.lock:
 *             self.set(items[::-1])
 *
 * Two actors call set() and set_reverse() on the same object, each with
 * its own items.  racy: lock is a Lock (lock_set_reverse): the nested
 * acquire blocks forever, STALE.  rlock: an RLock (rlock_set_reverse).
 * split: a Lock again, but the public methods take it once and share an
 * unlocked helper (split_set_reverse, set_locked).
 */
#include <stdatomic.h>
#include <stdio.h>

#include "lab.h"
#include "racelab/threading.h"

#define SEQ_LEN 8
/* set() + set_reverse() calls per actor per state. */
#define RLOCK_ITERATIONS 50UL

/* Atomic, though only build() writes it: the racy variant's actors stay
 * blocked after their run (they read it before blocking), and a later
 * build() in the same process must not race with those reads. */
static atomic_ulong iterations = RLOCK_ITERATIONS;

typedef struct {
    int items[SEQ_LEN]; /* guarded by lock (racy, split) or rlock */
    rlab_lock *lock;
    rlab_rlock *rlock;
    atomic_int failed; /* a racelab call failed */
} seq;

static void fail(seq *s)
{
    atomic_store(&s->failed, 1);
}

static void copy(int *dst, const int *src)
{
    for (int i = 0; i < SEQ_LEN; i++)
        dst[i] = src[i];
}

static void reverse(int *dst, const int *src)
{
    for (int i = 0; i < SEQ_LEN; i++)
        dst[i] = src[SEQ_LEN - 1 - i];
}

/* ------------------------------------------------------ racy: a Lock --- */

static void lock_set(seq *s, const int *items)
{
    if (rlab_lock_acquire(s->lock, RLAB_FOREVER)) {
        fail(s);
        return;
    }
    copy(s->items, items);
    rlab_lock_release(s->lock);
}

static void lock_set_reverse(seq *s, const int *items)
{
    int r[SEQ_LEN];
    if (rlab_lock_acquire(s->lock, RLAB_FOREVER)) {
        fail(s);
        return;
    }
    reverse(r, items);
    lock_set(s, r); /* takes s->lock again: this thread already holds it */
    rlab_lock_release(s->lock);
}

/* ----------------------------------------------------- rlock: an RLock --- */

static void rlock_set(seq *s, const int *items)
{
    if (rlab_rlock_acquire(s->rlock, RLAB_FOREVER)) {
        fail(s);
        return;
    }
    copy(s->items, items);
    rlab_rlock_release(s->rlock);
}

static void rlock_set_reverse(seq *s, const int *items)
{
    int r[SEQ_LEN];
    if (rlab_rlock_acquire(s->rlock, RLAB_FOREVER)) {
        fail(s);
        return;
    }
    reverse(r, items);
    rlock_set(s, r); /* the owner re-enters: recursion level 2, then 1 */
    rlab_rlock_release(s->rlock);
}

/* ------------------------------------- split: a Lock, taken only once --- */

/* The caller holds s->lock (Python's convention: a _set_locked helper). */
static void set_locked(seq *s, const int *items)
{
    copy(s->items, items);
}

static void split_set(seq *s, const int *items)
{
    if (rlab_lock_acquire(s->lock, RLAB_FOREVER)) {
        fail(s);
        return;
    }
    set_locked(s, items);
    rlab_lock_release(s->lock);
}

static void split_set_reverse(seq *s, const int *items)
{
    int r[SEQ_LEN];
    if (rlab_lock_acquire(s->lock, RLAB_FOREVER)) {
        fail(s);
        return;
    }
    reverse(r, items);
    set_locked(s, r);
    rlab_lock_release(s->lock);
}

/* ------------------------------------------------ actors and outcomes --- */

/* Actor a's items: a*100 + 0 .. a*100 + SEQ_LEN-1. */
static void own_items(int *items, int a)
{
    for (int i = 0; i < SEQ_LEN; i++)
        items[i] = a * 100 + i;
}

#define ACTOR(variant, a)                                                      \
    static void variant##_actor##a(void *p)                                    \
    {                                                                          \
        int items[SEQ_LEN];                                                    \
        unsigned long n =                                                      \
            atomic_load_explicit(&iterations, memory_order_relaxed);           \
        own_items(items, a);                                                   \
        for (unsigned long i = 0; i < n; i++) {                                \
            variant##_set(p, items);                                           \
            variant##_set_reverse(p, items);                                   \
        }                                                                      \
    }
ACTOR(lock, 0)
ACTOR(lock, 1)
ACTOR(rlock, 0)
ACTOR(rlock, 1)
ACTOR(split, 0)
ACTOR(split, 1)

static void init_lock(void *p)
{
    seq *s = p;
    if (!(s->lock = rlab_lock_new()))
        fail(s);
}

static void init_rlock(void *p)
{
    seq *s = p;
    if (!(s->rlock = rlab_rlock_new()))
        fail(s);
}

static void fini(void *p)
{
    seq *s = p;
    rlab_lock_free(s->lock);
    rlab_rlock_free(s->rlock);
}

/* The last call of each actor is a set_reverse: the list must hold one
 * actor's items, reversed, whole. */
static void outcome(const void *p, char *key, size_t len)
{
    const seq *s = p;
    if (atomic_load(&((seq *)p)->failed)) {
        snprintf(key, len, "racelab call failed");
        return;
    }
    for (int a = 0; a < 2; a++) {
        int want[SEQ_LEN], items[SEQ_LEN];
        own_items(items, a);
        reverse(want, items);
        int i = 0;
        while (i < SEQ_LEN && s->items[i] == want[i])
            i++;
        if (i == SEQ_LEN) {
            snprintf(key, len, "actor %d's items, reversed", a);
            return;
        }
    }
    snprintf(key, len, "torn");
}

static const rlab_outcome outcomes[] = {
    {"actor 0's items, reversed", RLAB_ACCEPTABLE, "actor 1 finished first"},
    {"actor 1's items, reversed", RLAB_ACCEPTABLE, "actor 0 finished first"},
    {"torn", RLAB_FORBIDDEN, "a mix of both actors' items"},
    {"racelab call failed", RLAB_FORBIDDEN, "an acquire failed"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static char description[160];

static void common(const lab_params *p, const char *name, const char *how,
                   rlab_stress_test *t)
{
    unsigned long n = p->iterations ? p->iterations : RLOCK_ITERATIONS;
    atomic_store_explicit(&iterations, n, memory_order_relaxed);
    snprintf(description, sizeof description,
             "2 threads x %lu set() and set_reverse() on one list, %s", n, how);
    t->name = name;
    t->description = description;
    t->state_size = sizeof(seq);
    t->outcome = outcome;
    t->outcomes = outcomes;
    t->fini = fini;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    common(p, "rlock.racy", "set_reverse() holds a Lock and calls set()", t);
    t->init = init_lock;
    t->actor[0] = lock_actor0;
    t->actor[1] = lock_actor1;
}

static void build_rlock(const lab_params *p, rlab_stress_test *t)
{
    common(p, "rlock.rlock", "the lock is an RLock: set() re-enters it", t);
    t->init = init_rlock;
    t->actor[0] = rlock_actor0;
    t->actor[1] = rlock_actor1;
}

static void build_split(const lab_params *p, rlab_stress_test *t)
{
    common(p, "rlock.split",
           "a Lock taken once; both methods call an unlocked helper", t);
    t->init = init_lock;
    t->actor[0] = split_actor0;
    t->actor[1] = split_actor1;
}

static const lab_variant variants[] = {
    {"racy", "set_reverse() holds a Lock and calls set(), which takes it again",
     true, LAB_TSAN_BLIND, build_racy, 0.5, 0, 0.5, 0},
    {"rlock", "the same methods over an RLock: the owner re-enters", false,
     LAB_TSAN_CLEAN, build_rlock, 0.5, 0, 0.5, 0},
    {"split", "a Lock taken once per public method, an unlocked helper inside",
     false, LAB_TSAN_CLEAN, build_split, 0.5, 0, 0.5, 0},
};

static const char *const explain[] = {
    "The bug: a thread waits for itself.  The list object (seq in\n"
    "src/lab/lessons/rlock.c) has two methods, and each takes the object's\n"
    "lock:\n"
    "\n"
    "    def set(self, items):\n"
    "        with self.lock:\n"
    "            self.items = list(items)\n"
    "\n"
    "    def set_reverse(self, items):\n"
    "        with self.lock:\n"
    "            self.set(items[::-1])\n"
    "\n"
    "set_reverse() takes self.lock, then calls set(), which asks for\n"
    "self.lock again.  A Lock has no owner: to it the second acquire is just\n"
    "one more request for a lock that is taken, so it waits for the holder to\n"
    "release it.  The holder is the waiting thread itself.  It waits forever,\n"
    "and every other thread that needs the object waits behind it.  Nothing\n"
    "is torn and no data races; the program simply stops.\n"
    "`racelab run rlock.racy` reports STALE: the actors did not finish within\n"
    "0.5 s (see lock_set_reverse() and lock_set()).  The harness leaves the\n"
    "two stuck threads behind; Python hangs the same way on the same code.",
    "ThreadSanitizer is blind to it (the variant is declared BLIND).  TSan\n"
    "reports a self-deadlock only for a lock it models as a mutex, such as a\n"
    "pthread_mutex locked twice by its owner.  racelab's Lock, like Python's,\n"
    "may be released by any thread, not only the one that acquired it (a Lock\n"
    "is also a signal: one thread acquires, another releases), and TSan's\n"
    "mutex model would call such a release an error.  So lock.c does not\n"
    "announce its Lock to TSan as a mutex: TSan sees only its acquire/release\n"
    "atomics, which give it the happens-before edges, but no owner.  A thread\n"
    "parked in a futex on a word it set itself then looks like any other\n"
    "waiting thread.  Only the harness's deadline catches the bug.  (The\n"
    "RLock is announced as a reentrant mutex: it has an owner.)",
    "rlock (rlock_set, rlock_set_reverse): the lock is an RLock.  An RLock\n"
    "records its owner and a recursion count: when the owner asks again,\n"
    "acquire returns at once and the count goes to 2; each release takes one\n"
    "off, and only at 0 is the lock free for other threads.  set_reverse()\n"
    "calling set() now just nests.  The price is a little bookkeeping per\n"
    "acquire, and a lock that hides how deep a thread is in it: one release\n"
    "too few leaves it held forever, and a Condition.wait() over an RLock\n"
    "must release every level at once (rlab_condition_wait does).",
    "split (split_set, split_set_reverse, set_locked): keep the plain Lock\n"
    "and take it once per public method.  The work moves into a helper that\n"
    "expects the lock to be held already (Python's convention is a name like\n"
    "_set_locked); both public methods take the lock and call the helper, so\n"
    "no path takes it twice.  queue.Queue is built this way: put() takes the\n"
    "lock and calls _put().  The lock's boundaries stay in plain sight, a\n"
    "Lock is cheaper than an RLock, and a helper called without the lock is\n"
    "easy to spot in review.  An RLock is the better tool when the nesting\n"
    "cannot be seen from one place: callbacks, or methods a subclass may\n"
    "override.\n"
    "\n"
    "In every variant each of the two actors calls set() and set_reverse() 50\n"
    "times per state (--iterations) with its own items; the outcome checks\n"
    "that the list holds one actor's items, whole and reversed (\"torn\", a\n"
    "mix of both, would mean the lock did not keep the two apart).",
    NULL,
};

const lab_lesson lab_lesson_rlock = {
    .name = "rlock",
    .summary = "a method holding a Lock calls one that takes it again",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0],
};
