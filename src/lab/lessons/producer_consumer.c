/*
 * producer_consumer.c - lesson 6: a bounded buffer between producers and
 * consumers (the source material's queue section).
 *
 * Producers put numbered items into a bounded FIFO buffer, consumers take
 * them out; the outcome checks that every item was taken exactly once.
 * Each consumer keeps its own tally of the items it took (seen[c][item]),
 * so the bookkeeping cannot race even when the buffer does.
 *
 * Actors: --threads T (default 4) splits into T/2 producers (actors 0 ..
 * P-1) and the rest consumers; each producer puts --iterations items
 * (default 200) into a buffer of PC_CAP slots.
 *
 * Variants:
 *   racy       a ring buffer with plain (volatile) head, tail and count and
 *              no synchronization at all: items are lost and duplicated;
 *   queue      rlab_queue(PC_CAP): put/get, task_done, and the producers
 *              join() before they send each consumer a stop sentinel (the
 *              pattern of Python's queue documentation);
 *   condition  the same ring as racy, guarded by one lock and two
 *              conditions (not_empty, not_full) waited on in while loops:
 *              what a Queue does inside.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lab.h"
#include "racelab/queue.h"
#include "racelab/threading.h"

#define PC_CAP 32 /* slots in the bounded buffer */
#define PC_DEFAULT_ACTORS 4
#define PC_DEFAULT_ITEMS 200
#define PC_MAX RLAB_STRESS_MAX_ACTORS
/* racy only: a spinning wait (on a full or an empty buffer) that lasted
 * this long starts yielding the CPU. */
#define PC_YIELD_NS 20000LL /* 20 us */
#define PC_EMPTY (-1)       /* a slot never written; the stop sentinel */

typedef struct {
    /* the ring: racy and condition (under the lock) */
    volatile int head, tail, count;
    volatile int buf[PC_CAP];
    /* racy: producer p finished (one writer each, so a flag is never lost
     * the way a shared counter's increment is) */
    volatile unsigned char done[PC_MAX];
    /* queue */
    rlab_queue *q;
    /* condition */
    rlab_lock *lock;
    rlab_condition *not_empty, *not_full;
    /* bookkeeping, each slot written by one actor only */
    unsigned phantom[PC_MAX];    /* consumer c took an empty slot */
    unsigned errors[PC_MAX];     /* a racelab call failed */
    unsigned early_join[PC_MAX]; /* producer p's join returned with its
                                    items not all taken */
    unsigned char seen[];        /* [consumer][item]: times taken */
} pc_state;

static lab_params params;
static unsigned producers, consumers, items; /* items per producer */

static unsigned total(void)
{
    return producers * items;
}

static unsigned char *seen_row(pc_state *s, unsigned c)
{
    return s->seen + (size_t)c * total();
}

/* Consumer c took `item`: count it (saturating, so 256 takes never wrap to
 * "taken once"). */
static void take(pc_state *s, unsigned c, int item)
{
    if (item < 0 || (unsigned)item >= total()) {
        s->phantom[c]++;
        return;
    }
    unsigned char *n = &seen_row(s, c)[item];
    if (*n < UINT8_MAX)
        (*n)++;
}

static void pc_init(void *p)
{
    pc_state *s = p;
    for (unsigned i = 0; i < PC_CAP; i++)
        s->buf[i] = PC_EMPTY;
}

/* ---------------------------------------------------------------- racy --- */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A spinning wait: spin, read the clock every 256 spins, and once the
 * wait has lasted PC_YIELD_NS give the CPU away at every check: on a busy
 * machine (or with more actors than CPUs) the thread we wait for may be
 * queued behind us on our own CPU.  The yield only ends a wait that is
 * already long; it opens no race window (the races are in the updates
 * below, not in the waits). */
typedef struct {
    unsigned spins;
    long long start;
} spin_wait;

static void keep_waiting(spin_wait *w)
{
    if (++w->spins % 256)
        return;
    long long t = now_ns();
    if (!w->start)
        w->start = t;
    else if (t - w->start > PC_YIELD_NS)
        sched_yield();
}

static bool producers_done(const pc_state *s)
{
    for (unsigned p = 0; p < producers; p++)
        if (!s->done[p])
            return false;
    return true;
}

/* The textbook ring buffer with no lock: two producers can both write the
 * same slot (one item lost), two consumers can both read the same slot
 * (one item taken twice), and `count = count + 1` racing with
 * `count = count - 1` loses one of them, after which the count no longer
 * matches what the buffer holds. */
static void racy_put(pc_state *s, int item)
{
    spin_wait w = {0, 0};
    while (s->count >= PC_CAP) /* full: wait for a consumer */
        keep_waiting(&w);
    int t = s->tail;
    s->buf[t] = item;
    s->tail = (t + 1) % PC_CAP;
    s->count = s->count + 1;
}

static bool racy_get(pc_state *s, int *item)
{
    spin_wait w = {0, 0};
    while (s->count <= 0) { /* empty: wait for a producer */
        /* done flags first, then the count: once the producers are done,
         * an empty buffer stays empty */
        if (producers_done(s) && s->count <= 0)
            return false;
        keep_waiting(&w);
    }
    int h = s->head;
    *item = s->buf[h];
    s->head = (h + 1) % PC_CAP;
    s->count = s->count - 1;
    return true;
}

static void racy_producer(pc_state *s, unsigned p)
{
    for (unsigned k = 0; k < items; k++)
        racy_put(s, (int)(p * items + k));
    s->done[p] = 1;
}

static void racy_consumer(pc_state *s, unsigned c)
{
    int item;
    while (racy_get(s, &item))
        take(s, c, item);
}

/* --------------------------------------------------------------- queue --- */

/* Items travel as void *: item k is (void *)(k + 1), and NULL is the
 * sentinel that tells a consumer to stop. */
static void *to_ptr(unsigned k)
{
    return (void *)(uintptr_t)(k + 1);
}

/* The consumers producer p sends a sentinel to: c with c % P == p, so
 * every consumer gets exactly one. */
static unsigned sentinels_of(unsigned p)
{
    unsigned n = 0;
    for (unsigned c = 0; c < consumers; c++)
        n += c % producers == p;
    return n;
}

/* Every item of producer p taken exactly once so far?  Read after join:
 * each consumer's tally was written before its task_done. */
static bool all_taken(pc_state *s, unsigned p)
{
    for (unsigned k = p * items; k < (p + 1) * items; k++) {
        unsigned n = 0;
        for (unsigned c = 0; c < consumers; c++)
            n += seen_row(s, c)[k];
        if (n != 1)
            return false;
    }
    return true;
}

static void queue_producer(pc_state *s, unsigned p)
{
    for (unsigned k = 0; k < items; k++)
        if (rlab_queue_put(s->q, to_ptr(p * items + k), RLAB_FOREVER)) {
            s->errors[p]++;
            break;
        }
    /* q.join(): every item put so far has been taken and marked done */
    if (rlab_queue_join(s->q, RLAB_FOREVER))
        s->errors[p]++;
    else if (!all_taken(s, p))
        s->early_join[p]++;
    for (unsigned n = sentinels_of(p); n; n--)
        if (rlab_queue_put(s->q, NULL, RLAB_FOREVER))
            s->errors[p]++;
}

static void queue_consumer(pc_state *s, unsigned c)
{
    for (;;) {
        void *item;
        if (rlab_queue_get(s->q, &item, RLAB_FOREVER)) {
            s->errors[producers + c]++;
            return;
        }
        if (item)
            take(s, c, (int)((uintptr_t)item - 1));
        rlab_queue_task_done(s->q); /* the sentinel's task too */
        if (!item)
            return;
    }
}

static void queue_init(void *p)
{
    pc_state *s = p;
    pc_init(s);
    s->q = rlab_queue_new(PC_CAP); /* NULL: the actors count errors */
}

static void queue_fini(void *p)
{
    pc_state *s = p;
    rlab_queue_free(s->q, NULL);
}

/* ----------------------------------------------------------- condition --- */

/* queue.Queue's own design: one lock, a not_full condition producers wait
 * on and a not_empty condition consumers wait on, both over that lock.
 * The waits are while loops: a woken thread re-checks, because another
 * thread may have taken the item (or the room) first. */
static int cond_put(pc_state *s, int item)
{
    int rc = rlab_lock_acquire(s->lock, RLAB_FOREVER);
    if (rc)
        return rc;
    while (s->count == PC_CAP && !rc)
        rc = rlab_condition_wait(s->not_full, RLAB_FOREVER);
    if (!rc) {
        s->buf[s->tail] = item;
        s->tail = (s->tail + 1) % PC_CAP;
        s->count++;
        rc = rlab_condition_notify(s->not_empty, 1);
    }
    rlab_lock_release(s->lock);
    return rc;
}

static int cond_get(pc_state *s, int *item)
{
    int rc = rlab_lock_acquire(s->lock, RLAB_FOREVER);
    if (rc)
        return rc;
    while (s->count == 0 && !rc)
        rc = rlab_condition_wait(s->not_empty, RLAB_FOREVER);
    if (!rc) {
        *item = s->buf[s->head];
        s->head = (s->head + 1) % PC_CAP;
        s->count--;
        rc = rlab_condition_notify(s->not_full, 1);
    }
    rlab_lock_release(s->lock);
    return rc;
}

/* No task tracking here: each producer puts its items, then its
 * sentinels.  The buffer is FIFO, so every item is ahead of the last
 * sentinel, and a consumer is still running to take it. */
static void cond_producer(pc_state *s, unsigned p)
{
    for (unsigned k = 0; k < items; k++)
        if (cond_put(s, (int)(p * items + k))) {
            s->errors[p]++;
            break;
        }
    for (unsigned n = sentinels_of(p); n; n--)
        if (cond_put(s, PC_EMPTY))
            s->errors[p]++;
}

static void cond_consumer(pc_state *s, unsigned c)
{
    for (;;) {
        int item;
        if (cond_get(s, &item)) {
            s->errors[producers + c]++;
            return;
        }
        if (item == PC_EMPTY)
            return;
        take(s, c, item);
    }
}

static void cond_init(void *p)
{
    pc_state *s = p;
    pc_init(s);
    s->lock = rlab_lock_new();
    s->not_empty = rlab_condition_new(s->lock);
    s->not_full = rlab_condition_new(s->lock);
}

static void cond_fini(void *p)
{
    pc_state *s = p;
    rlab_condition_free(s->not_empty);
    rlab_condition_free(s->not_full);
    rlab_lock_free(s->lock);
}

/* -------------------------------------------------------------- actors --- */

/* Actor i is producer i (i < P) or consumer i - P. */
#define PC_ACTOR(kind, i)                                                      \
    static void kind##_##i(void *p)                                            \
    {                                                                          \
        if (i < producers)                                                     \
            kind##_producer(p, i);                                             \
        else                                                                   \
            kind##_consumer(p, i - producers);                                 \
    }
#define PC_ACTORS(kind)                                                        \
    PC_ACTOR(kind, 0)                                                          \
    PC_ACTOR(kind, 1)                                                          \
    PC_ACTOR(kind, 2)                                                          \
    PC_ACTOR(kind, 3)                                                          \
    PC_ACTOR(kind, 4)                                                          \
    PC_ACTOR(kind, 5)                                                          \
    PC_ACTOR(kind, 6)                                                          \
    PC_ACTOR(kind, 7)                                                          \
    static void (*const kind##_actors[PC_MAX])(void *) = {                     \
        kind##_0, kind##_1, kind##_2, kind##_3,                                \
        kind##_4, kind##_5, kind##_6, kind##_7};

PC_ACTORS(racy)
PC_ACTORS(queue)
PC_ACTORS(cond)

/* ------------------------------------------------------------- outcome --- */

static void pc_outcome(const void *p, char *key, size_t len)
{
    pc_state *s = (pc_state *)p;
    unsigned lost = 0, dup = 0, errors = 0, early = 0;
    for (unsigned k = 0; k < total(); k++) {
        unsigned n = 0;
        for (unsigned c = 0; c < consumers; c++)
            n += seen_row(s, c)[k];
        if (n == 0)
            lost++;
        else
            dup += n - 1;
    }
    for (unsigned i = 0; i < PC_MAX; i++) {
        dup += s->phantom[i];
        errors += s->errors[i];
        early += s->early_join[i];
    }
    if (errors)
        snprintf(key, len, "error");
    else if (early)
        snprintf(key, len, "join returned early");
    else if (lost && dup)
        snprintf(key, len, "lost+duplicated");
    else if (lost)
        snprintf(key, len, "lost");
    else if (dup)
        snprintf(key, len, "duplicated");
    else
        snprintf(key, len, "ok");
}

static const rlab_outcome pc_grades[] = {
    {"ok", RLAB_ACCEPTABLE, "every item was taken exactly once"},
    {"lost", RLAB_FORBIDDEN, "some items were never taken"},
    {"duplicated", RLAB_FORBIDDEN,
     "an item was taken twice, or an empty slot taken as an item"},
    {"lost+duplicated", RLAB_FORBIDDEN, "items lost and others taken twice"},
    {"join returned early", RLAB_FORBIDDEN,
     "a producer's join() returned before its items were all taken"},
    {"error", RLAB_FORBIDDEN, "a racelab call failed (out of memory?)"},
    {NULL, RLAB_ACCEPTABLE, NULL}};

static void build(const lab_params *p, rlab_stress_test *t,
                  void (*const acts[PC_MAX])(void *))
{
    params = *p;
    unsigned n = p->threads ? p->threads : PC_DEFAULT_ACTORS;
    if (n < 2)
        n = 2;
    if (n > PC_MAX)
        n = PC_MAX;
    producers = n / 2;
    consumers = n - producers;
    items = p->iterations ? (unsigned)p->iterations : PC_DEFAULT_ITEMS;
    if (items > INT32_MAX / PC_MAX - 1)
        items = INT32_MAX / PC_MAX - 1;
    t->state_size = sizeof(pc_state) + (size_t)consumers * total();
    t->init = pc_init;
    for (unsigned i = 0; i < n; i++)
        t->actor[i] = acts[i];
    t->outcome = pc_outcome;
    t->outcomes = pc_grades;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    build(p, t, racy_actors);
    t->name = "producer_consumer.racy";
    t->description = "a ring buffer with no synchronization";
}

static void build_queue(const lab_params *p, rlab_stress_test *t)
{
    build(p, t, queue_actors);
    t->name = "producer_consumer.queue";
    t->description = "rlab_queue with task_done and join";
    t->init = queue_init;
    t->fini = queue_fini;
}

static void build_condition(const lab_params *p, rlab_stress_test *t)
{
    build(p, t, cond_actors);
    t->name = "producer_consumer.condition";
    t->description = "a ring buffer under a lock and two conditions";
    t->init = cond_init;
    t->fini = cond_fini;
}

static const lab_variant variants[] = {
    {.name = "racy",
     .summary = "a bounded ring buffer with no synchronization",
     .racy = true,
     .tsan = LAB_TSAN_RACE,
     .build = build_racy,
     .seconds = 0.5},
    {.name = "queue",
     .summary = "rlab_queue: put/get, task_done and join",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_queue,
     .seconds = 0.5},
    {.name = "condition",
     .summary = "a lock and two conditions, as Queue does inside",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_condition,
     .seconds = 0.5},
};

static const char *const explain[] = {
    "THE RACE\n"
    "\n"
    "Producers put work into a bounded buffer and consumers take it out:\n"
    "the shape of every pipeline, thread pool and download crawler.  The\n"
    "textbook buffer is a ring of slots with three shared numbers: head\n"
    "(next slot to read), tail (next slot to write) and count:\n"
    "\n"
    "    put:  wait while count == N; buf[tail] = item;\n"
    "          tail = (tail + 1) % N; count = count + 1\n"
    "    get:  wait while count == 0; item = buf[head];\n"
    "          head = (head + 1) % N; count = count - 1\n"
    "\n"
    "Correct for one producer and one consumer taking turns, wrong for\n"
    "threads running at once.  Two producers read the same tail, both\n"
    "write the same slot and the first item is overwritten: LOST.  Two\n"
    "consumers read the same head and take the same item: DUPLICATED.  And\n"
    "`count = count + 1` racing with `count = count - 1` is the counter\n"
    "lesson's lost update: afterwards count no longer says how many items\n"
    "the buffer holds, so consumers stop while items remain (lost) or read\n"
    "slots whose item was already taken (duplicated).  The waits are no\n"
    "better: \"count < N\" may be false again by the time the slot is\n"
    "written.",

    "THE TEST\n"
    "\n"
    "--threads (default 4) actors: half are producers, the rest consumers.\n"
    "Each producer puts --iterations numbered items (default 200) into an\n"
    "32-slot buffer; each consumer tallies every item it takes in its own\n"
    "row of a per-state table.  The outcome sums the rows: \"ok\" when\n"
    "every item was taken exactly once, else \"lost\", \"duplicated\" or\n"
    "\"lost+duplicated\" (FORBIDDEN).  In the racy variant a consumer stops\n"
    "once every producer has raised its own done flag (one writer per\n"
    "flag, so no flag is lost) and the buffer looks empty: however the\n"
    "race corrupts the count, no actor waits forever, and lost items show\n"
    "up as \"lost\" rather than as a hang (STALE).  The waits spin, and\n"
    "after 20 us of waiting they yield the CPU, since with 4 actors on 2\n"
    "CPUs the thread being waited for may be queued behind the waiter; the\n"
    "races themselves are in the plain updates, not in the waits.\n"
    "ThreadSanitizer reports the unordered accesses to head, tail, count\n"
    "and the slots as data races.",

    "THE FIXES\n"
    "\n"
    "queue: rlab_queue is Python's queue.Queue.  put and get are atomic\n"
    "with respect to each other, block while the queue is full or empty,\n"
    "and hand each item to exactly one getter.  The variant follows the\n"
    "pattern of Python's queue documentation: consumers call task_done()\n"
    "after each item; a producer that has put its items calls join(),\n"
    "which returns once every item put so far has been marked done (the\n"
    "test checks that all of the producer's items were indeed taken by\n"
    "then), and then puts one sentinel (NULL) per consumer it is\n"
    "responsible for; a consumer that gets a sentinel stops.  No flags,\n"
    "no counting, no spinning: the queue carries both the data and the\n"
    "happens-before edges, which is why ThreadSanitizer stays silent.\n"
    "\n"
    "condition: what a Queue does inside.  The same ring buffer as racy,\n"
    "but every access to head, tail, count and the slots happens under one\n"
    "lock, so put and get are atomic.  Waiting uses two conditions over\n"
    "that lock: producers wait on not_full, consumers on not_empty; a put\n"
    "notifies not_empty, a get notifies not_full.  Each wait is a while\n"
    "loop, not an if: when a waiter wakes up, another thread may already\n"
    "have taken the item (or the free slot), and it must check again.\n"
    "Python's queue.Queue is exactly this: a deque, a mutex and the\n"
    "conditions not_empty, not_full and all_tasks_done.",

    "WHERE TO LOOK\n"
    "\n"
    "src/lab/lessons/producer_consumer.c: racy_put and racy_get (the\n"
    "unsynchronized ring), racy_producer and racy_consumer; queue_producer\n"
    "and queue_consumer (put, get, task_done, join, sentinels); cond_put\n"
    "and cond_get (the lock and the two conditions), cond_producer and\n"
    "cond_consumer; pc_outcome (lost and duplicated items).  The library's\n"
    "Queue is include/racelab/queue.h and src/lib/queue.c; Condition is\n"
    "src/lib/condition.c.",
    NULL};

const lab_lesson lab_lesson_producer_consumer = {
    .name = "producer_consumer",
    .summary = "an unsynchronized bounded buffer loses and duplicates items",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0]};
