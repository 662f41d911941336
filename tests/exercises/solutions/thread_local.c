/*
 * Exercise: thread_local  (the lesson: racelab explain thread_local)
 *
 * A server keeps "the user whose request is being handled" in a global,
 * so that code deep inside the handler (here: log_line()) can name the
 * user without it being passed down.  With one handler thread that works.
 * With two, the log sometimes names the wrong user.
 *
 * Goal: every log line names the user of its own request.  Keep
 * log_line() without parameters: the point is per-thread data.
 *
 * Run:   ctest --preset exercises -R thread_local --output-on-failure
 * Stuck: tests/exercises/thread_local.hint.md
 * Done:  diff your file with tests/exercises/solutions/thread_local.c
 */
#include <stdint.h>

#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

#define REQUESTS 4 /* requests per handler thread and trial */

static rlab_local *current_user; /* whose request this is: one value per
                                   thread (threading.local) */

typedef struct {
    int wrong[2]; /* log lines of handler i that named another user */
} server;

static void start(void) /* once, first of all */
{
    current_user = rlab_local_new(NULL);
}

static void setup(void *state) { (void)state; }    /* before the threads */
static void teardown(void *state) { (void)state; } /* after they finished */

/* Deep inside the handler: names the user whose request this is. */
static int log_line(void)
{
    return (int)(intptr_t)rlab_local_get(current_user);
}

static void handle(server *s, int user)
{
    rlab_local_set(current_user, (void *)(intptr_t)user);
    volatile unsigned reply = 0; /* the work: parse, look up, format ... */
    for (int i = 0; i < 16; i++)
        reply = reply * 31u + (unsigned)i;
    if (log_line() != user)
        s->wrong[user - 1] += 1;
}

static void handler1(void *state)
{
    for (int i = 0; i < REQUESTS; i++)
        handle(state, 1);
}

static void handler2(void *state)
{
    for (int i = 0; i < REQUESTS; i++)
        handle(state, 2);
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const server *s = state;
    snprintf(key, len, "%s", s->wrong[0] + s->wrong[1] == 0
                                 ? "every log named its own user"
                                 : "a log named the other user");
}

static const rlab_outcome grades[] = {
    {"every log named its own user", RLAB_ACCEPTABLE, "as it should"},
    {"a log named the other user", RLAB_FORBIDDEN,
     "the other thread overwrote current_user in between"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.thread_local",
        .description = "two handler threads, one current_user global",
        .state_size = sizeof(server),
        .init = setup,
        .actor = {handler1, handler2},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "thread_local",
        .problem = "Both handler threads store their user in the same global "
                   "current_user: the other\nthread overwrites it between "
                   "handle() storing it and log_line() reading it.",
    };
    start();
    return exercise_main(&test, &e);
}
