/*
 * Exercise: deadlock  (the lesson: racelab explain deadlock)
 *
 * Two bank accounts, each with its own lock.  transfer() locks both
 * accounts, moves the money and unlocks them.  One thread transfers 10
 * from x to y eight times while another transfers 20 from y to x eight
 * times, and sometimes both threads stop forever.
 *
 * Goal: transfers never get stuck, in whichever direction they go.
 *
 * Run:   ctest --preset exercises -R deadlock --output-on-failure
 * Stuck: tests/exercises/deadlock.hint.md
 * Done:  diff your file with tests/exercises/solutions/deadlock.c
 */
#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

typedef struct {
    int id;          /* 1 for x, 2 for y */
    rlab_lock *lock; /* guards balance */
    int balance;
} account;

typedef struct {
    account x, y;
} bank;

static void setup(void *state) /* before the threads */
{
    bank *b = state;
    b->x = (account){.id = 1, .lock = rlab_lock_new(), .balance = 100};
    b->y = (account){.id = 2, .lock = rlab_lock_new(), .balance = 100};
}

static void teardown(void *state) /* after they finished */
{
    bank *b = state;
    rlab_lock_free(b->x.lock);
    rlab_lock_free(b->y.lock);
}

static void transfer(account *from, account *to, int amount)
{
    /* Every thread takes the locks in the same order: lower id first. */
    account *first = from->id < to->id ? from : to;
    account *second = from->id < to->id ? to : from;
    rlab_lock_acquire(first->lock, RLAB_FOREVER);
    rlab_lock_acquire(second->lock, RLAB_FOREVER);
    from->balance -= amount;
    to->balance += amount;
    rlab_lock_release(second->lock);
    rlab_lock_release(first->lock);
}

#define ROUNDS 8

static void x_to_y(void *state)
{
    bank *b = state;
    for (int i = 0; i < ROUNDS; i++)
        transfer(&b->x, &b->y, 10);
}

static void y_to_x(void *state)
{
    bank *b = state;
    for (int i = 0; i < ROUNDS; i++)
        transfer(&b->y, &b->x, 20);
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const bank *b = state;
    snprintf(key, len, "x = %d, y = %d", b->x.balance, b->y.balance);
}

static const rlab_outcome grades[] = {
    {"x = 180, y = 20", RLAB_ACCEPTABLE, "every transfer done"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.deadlock",
        .description = "8 x transfer(x, y, 10) against 8 x transfer(y, x, 20)",
        .state_size = sizeof(bank),
        .init = setup,
        .actor = {x_to_y, y_to_x},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "deadlock",
        .problem = "transfer(x, y) locks x then y; transfer(y, x) locks y "
                   "then x.  When each thread holds\nits first lock, each "
                   "waits for the lock the other holds: neither can go on "
                   "(ABBA).",
        .stale_after = 0.5,
    };
    return exercise_main(&test, &e);
}
