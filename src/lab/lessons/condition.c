/*
 * condition.c - lesson 4: a lost wake-up on a Condition.
 *
 * A receiver waits for one message from a sender (the receiver/sender
 * example of the source material).  The sender is correct: under the
 * condition's lock it builds the message, sets `ready` and notifies.  The
 * racy receiver checks `ready` with `if`, outside the lock, and only then
 * takes the lock and waits; when the sender's notify falls between that
 * check and that wait, it notifies nobody, and the receiver then waits
 * forever (STALE).  The fixes check the flag under the lock, right before
 * waiting and again after every wake-up: wait_for with a predicate, or a
 * `while` loop around wait.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lab.h"
#include "racelab/threading.h"

#define MESSAGE_MAX 32
/* Rounds of the checksum the sender computes while building a message
 * (--iterations); a few microseconds. */
#define DEFAULT_ROUNDS 3000
#define MAX_ROUNDS 10000000ul

typedef struct {
    rlab_condition *cond; /* Condition(): its own RLock, as in Python */
    /* The racy receiver reads `ready` without the lock; volatile makes
     * that load really happen where the code says (it is not atomic). */
    volatile int ready;
    char message[MESSAGE_MAX];
    char got[MESSAGE_MAX]; /* what the receiver read */
} mailbox;

static lab_params params;
static unsigned long rounds = DEFAULT_ROUNDS;
static char expected[MESSAGE_MAX]; /* the message, built once by build() */

static void init(void *p)
{
    mailbox *s = p;
    s->cond = rlab_condition_new(NULL);
}

static void fini(void *p)
{
    mailbox *s = p;
    rlab_condition_free(s->cond);
}

/* The message: a text and a checksum that takes `rounds` steps to
 * compute, the stand-in for real work on the message.  The result is part
 * of the text, so the compiler cannot drop the work. */
static void compose(char *buf, size_t len)
{
    unsigned x = 42;
    for (unsigned long i = 0; i < rounds; i++)
        x = x * 1103515245u + 12345u;
    snprintf(buf, len, "message 42 #%08x", x);
}

/* --amplify: the receiver does a little honest work (no sleep, no yield)
 * between its check and its wait, which widens the window further. */
static void busy_work(void)
{
    for (volatile int i = 0; i < 200; i++)
        ;
}

/* ------------------------------------------------------------ sender --- */

/* The sender does everything right, in every variant:
 *
 *   with cond:
 *       message = compose()     # takes a few microseconds
 *       ready = True
 *       cond.notify()
 *
 * Building the message under the lock is common (and correct); it is also
 * what makes the racy receiver lose its wake-up so often: a receiver that
 * looks at `ready` while the sender is composing sees False, then blocks
 * on the lock until the sender has notified and let go. */
static void sender(void *p)
{
    mailbox *s = p;
    rlab_condition_acquire(s->cond, RLAB_FOREVER);
    compose(s->message, sizeof s->message);
    s->ready = 1;
    rlab_condition_notify(s->cond, 1);
    rlab_condition_release(s->cond);
}

/* ---------------------------------------------------------------- racy --- */

/* if not ready:             # unlocked check, `if` not `while`
 *     with cond:            # may block on the sender's lock...
 *         cond.wait()       # ...and by then its notify is gone
 * got = message */
static void receiver_racy(void *p)
{
    mailbox *s = p;
    if (!s->ready) {
        if (params.amplify)
            busy_work();
        rlab_condition_acquire(s->cond, RLAB_FOREVER);
        rlab_condition_wait(s->cond, RLAB_FOREVER);
        rlab_condition_release(s->cond);
    }
    memcpy(s->got, s->message, sizeof s->got);
}

/* ------------------------------------------------------------- fixed --- */

static bool is_ready(void *p)
{
    const mailbox *s = p;
    return s->ready != 0;
}

/* with cond:
 *     cond.wait_for(lambda: ready)
 *     got = message */
static void receiver_wait_for(void *p)
{
    mailbox *s = p;
    rlab_condition_acquire(s->cond, RLAB_FOREVER);
    rlab_condition_wait_for(s->cond, is_ready, s, RLAB_FOREVER);
    memcpy(s->got, s->message, sizeof s->got);
    rlab_condition_release(s->cond);
}

/* with cond:
 *     while not ready:
 *         cond.wait()
 *     got = message */
static void receiver_while(void *p)
{
    mailbox *s = p;
    rlab_condition_acquire(s->cond, RLAB_FOREVER);
    while (!s->ready)
        rlab_condition_wait(s->cond, RLAB_FOREVER);
    memcpy(s->got, s->message, sizeof s->got);
    rlab_condition_release(s->cond);
}

/* ------------------------------------------------------------ outcome --- */

static void outcome(const void *p, char *key, size_t len)
{
    const mailbox *s = p;
    if (!strncmp(s->got, expected, sizeof s->got))
        snprintf(key, len, "received");
    else if (!s->got[0])
        snprintf(key, len, "empty");
    else
        snprintf(key, len, "garbled");
}

static const rlab_outcome grades[] = {
    {"received", RLAB_ACCEPTABLE, "the receiver woke up and read the message"},
    {"empty", RLAB_FORBIDDEN,
     "the receiver read the message before it was written"},
    {"garbled", RLAB_FORBIDDEN,
     "the receiver read the message while it was being written"},
    {"STALE", RLAB_FORBIDDEN,
     "lost wake-up: notify came before wait, the receiver waits forever"},
    {NULL, RLAB_ACCEPTABLE, NULL}};

static void build_common(const lab_params *p, rlab_stress_test *t,
                         const char *name, const char *description,
                         void (*receiver)(void *))
{
    params = *p;
    rounds = p->iterations ? p->iterations : DEFAULT_ROUNDS;
    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;
    compose(expected, sizeof expected);
    t->name = name;
    t->description = description;
    t->state_size = sizeof(mailbox);
    t->init = init;
    t->actor[0] = receiver;
    t->actor[1] = sender;
    t->outcome = outcome;
    t->outcomes = grades;
    t->fini = fini;
}

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    build_common(p, t, "condition.racy",
                 "`if not ready: wait()` outside the lock: a lost wake-up",
                 receiver_racy);
}

static void build_wait_for(const lab_params *p, rlab_stress_test *t)
{
    build_common(p, t, "condition.wait_for",
                 "wait_for(lambda: ready) with the flag under the lock",
                 receiver_wait_for);
}

static void build_while(const lab_params *p, rlab_stress_test *t)
{
    build_common(p, t, "condition.while",
                 "`while not ready: wait()` with the flag under the lock",
                 receiver_while);
}

static const lab_variant variants[] = {
    {.name = "racy",
     .summary = "unlocked `if not ready` check: lost wake-up",
     .racy = true,
     .tsan = LAB_TSAN_RACE,
     .build = build_racy,
     .seconds = 1.0,
     .stale_after = 0.5},
    {.name = "wait_for",
     .summary = "cond.wait_for(lambda: ready) under the lock",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_wait_for,
     .seconds = 0.5},
    {.name = "while",
     .summary = "`while not ready: wait()` under the lock",
     .racy = false,
     .tsan = LAB_TSAN_CLEAN,
     .build = build_while,
     .seconds = 0.5},
};

static const char *const explain[] = {
    "The race: a lost wake-up.  A Condition has no memory.  notify() wakes\n"
    "the threads that are waiting at that moment and is forgotten at once;\n"
    "a thread that calls wait() afterwards waits for the next notify, and\n"
    "if none comes, it waits forever.  The receiver/sender example:\n"
    "\n"
    "    def sender():                  def receiver():\n"
    "        global message, ready          if not ready:\n"
    "        with cond:                         with cond:\n"
    "            message = compose()                cond.wait()\n"
    "            ready = True                   print(message)\n"
    "            cond.notify()\n"
    "\n"
    "The sender is right.  The receiver looks at `ready` without the lock.\n"
    "If it sees False, and the sender then sets ready and notifies before\n"
    "the receiver is waiting, the notify wakes nobody and the receiver\n"
    "waits forever.  The harness reports STALE (the actors did not finish\n"
    "within 0.5 s) and abandons the stuck thread.  Two mistakes work\n"
    "together: the flag is checked outside the lock, so check and wait are\n"
    "not one step (wait() releases the lock and starts waiting atomically,\n"
    "but only for a thread that checked while holding it); and `if` looks\n"
    "once, so nothing re-checks after a wake-up.  The unlocked read of\n"
    "`ready` (and of the message) is also a data race with the sender's\n"
    "writes, which ThreadSanitizer reports.  Making the sender \"less\n"
    "careful\" is not an option: notify() without the lock is an error\n"
    "(Python raises RuntimeError, rlab_condition_notify returns EPERM).",

    "Why it shows up in nearly every run: the sender composes the message\n"
    "while it holds the lock (a checksum of a few microseconds,\n"
    "--iterations rounds, 3000 by default).  A receiver that reaches the\n"
    "state during that time reads ready == False, then blocks on the lock\n"
    "in `with cond:`, and gets it only after the sender has set the flag,\n"
    "notified nobody and let go: the window is the whole time the sender\n"
    "holds the lock, not just the few instructions between the check and\n"
    "the wait.  The actors work through a batch of states side by side, so\n"
    "the receiver keeps arriving at the state the sender is composing.\n"
    "--amplify adds a short busy loop (no sleep, no yield) between the\n"
    "check and the wait, which widens the window further.",

    "Fix 1, wait_for (condition.wait_for): the receiver takes the lock and\n"
    "calls cond.wait_for(lambda: ready).  wait_for evaluates the predicate\n"
    "with the lock held before it waits at all, so a message that is\n"
    "already there is taken at once; if it is not there, the sender cannot\n"
    "be between setting it and notifying (it needs the lock for both), and\n"
    "wait() releases the lock and starts waiting as one step, so the\n"
    "notify cannot slip in between.  wait_for also re-checks after every\n"
    "wake-up, so a spurious or stale wake-up costs nothing.",

    "Fix 2, while (condition.while): the same thing spelled out, the form\n"
    "every textbook gives:\n"
    "\n"
    "    with cond:\n"
    "        while not ready:\n"
    "            cond.wait()\n"
    "        print(message)\n"
    "\n"
    "The lock held around check and wait closes the window; `while`\n"
    "instead of `if` re-checks the flag after each wake-up.  Both matter:\n"
    "`while` without the lock still loses the wake-up, and `if` under the\n"
    "lock breaks as soon as there are several receivers (one takes the\n"
    "message another was woken for) or a spurious wake-up.",

    "Where to look: src/lab/lessons/condition.c.  sender is shared by all\n"
    "variants (compose() is the work done under the lock); receiver_racy\n"
    "is the bug, receiver_wait_for and receiver_while the fixes.  The\n"
    "outcome is \"received\" when the receiver read the whole message;\n"
    "STALE is the lost wake-up.  The library side is src/lib/condition.c:\n"
    "each waiter parks on its own word and notify() only wakes waiters\n"
    "already on the list, which is why a notify before the wait is lost.",
    NULL};

const lab_lesson lab_lesson_condition = {
    .name = "condition",
    .summary = "lost wake-up: notify before wait, `if` instead of `while`",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0]};
