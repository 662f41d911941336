/*
 * Exercise: condition  (the lesson: racelab explain condition)
 *
 * A receiver waits on a Condition for the message a sender puts in a
 * mailbox; the sender stores the message and notifies.  Most of the time
 * the receiver gets it; sometimes it waits forever.
 *
 * Goal: the receiver always gets the message, whichever thread runs first.
 *
 * Run:   ctest --preset exercises -R condition --output-on-failure
 * Stuck: tests/exercises/condition.hint.md
 * Done:  diff your file with tests/exercises/solutions/condition.c
 */
#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

typedef struct {
    rlab_condition *cond; /* its lock guards message */
    int message;          /* 0: nothing sent yet */
    int received;
} mailbox;

static void setup(void *state) /* before the threads */
{
    mailbox *m = state;
    m->cond = rlab_condition_new(NULL);
}

static void teardown(void *state) /* after they finished */
{
    mailbox *m = state;
    rlab_condition_free(m->cond);
}

static bool has_message(void *state)
{
    const mailbox *m = state;
    return m->message != 0;
}

static void receiver(void *state)
{
    mailbox *m = state;
    rlab_condition_acquire(m->cond, RLAB_FOREVER);
    /* Checks the mailbox first (under the lock), waits only while empty. */
    rlab_condition_wait_for(m->cond, has_message, m, RLAB_FOREVER);
    m->received = m->message;
    rlab_condition_release(m->cond);
}

static void sender(void *state)
{
    mailbox *m = state;
    rlab_condition_acquire(m->cond, RLAB_FOREVER);
    m->message = 42;
    rlab_condition_notify(m->cond, 1);
    rlab_condition_release(m->cond);
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const mailbox *m = state;
    snprintf(key, len, "received %d", m->received);
}

static const rlab_outcome grades[] = {
    {"received 42", RLAB_ACCEPTABLE, "the receiver got the message"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.condition",
        .description = "a receiver waits on a Condition, a sender notifies",
        .state_size = sizeof(mailbox),
        .init = setup,
        .actor = {receiver, sender},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "condition",
        .problem = "When the sender runs first, its notify() wakes nobody: "
                   "the receiver was not waiting\nyet.  A notify is not "
                   "remembered, so the receiver then waits forever for a "
                   "message\nthat is already in the mailbox (a lost "
                   "wake-up).",
        .stale_after = 0.5,
    };
    return exercise_main(&test, &e);
}
