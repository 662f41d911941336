/*
 * Exercise: event_coordinator  (the lesson: racelab explain
 * event_coordinator)
 *
 * A coordinator runs 4 cycles with 2 workers.  Each cycle it publishes
 * the cycle number and raises a start flag; each worker waits for the
 * flag, does the cycle's work and raises its own "done" flag; the
 * coordinator waits for both done flags, lowers every flag and goes on
 * to the next cycle.  Workers run a cycle twice, skip one, or everybody
 * waits forever.
 *
 * Goal: every worker runs every cycle exactly once, and nobody waits
 * forever.
 *
 * Run:   ctest --preset exercises -R event_coordinator --output-on-failure
 * Stuck: tests/exercises/event_coordinator.hint.md
 * Done:  diff your file with tests/exercises/solutions/event_coordinator.c
 */
#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

#define CYCLES 4

typedef struct {
    rlab_event *go[2];   /* start the cycle: one per worker, which lowers it */
    rlab_event *done[2]; /* worker i finished the cycle */
    volatile int cycle;  /* the cycle being run */
    int runs[2][CYCLES]; /* how often worker i ran cycle c */
} crew;

static void setup(void *state) /* before the threads */
{
    crew *s = state;
    for (int w = 0; w < 2; w++) {
        s->go[w] = rlab_event_new();
        s->done[w] = rlab_event_new();
    }
}

static void teardown(void *state) /* after they finished */
{
    crew *s = state;
    for (int w = 0; w < 2; w++) {
        rlab_event_free(s->go[w]);
        rlab_event_free(s->done[w]);
    }
}

static void coordinator(void *state)
{
    crew *s = state;
    for (int c = 0; c < CYCLES; c++) {
        s->cycle = c;
        rlab_event_set(s->go[0]); /* start the cycle */
        rlab_event_set(s->go[1]);
        rlab_event_wait(s->done[0], RLAB_FOREVER); /* wait for both workers */
        rlab_event_wait(s->done[1], RLAB_FOREVER);
        rlab_event_clear(s->done[0]); /* reset for the next cycle */
        rlab_event_clear(s->done[1]);
    }
}

static void work(crew *s, int w)
{
    for (int k = 0; k < CYCLES; k++) {
        rlab_event_wait(s->go[w], RLAB_FOREVER); /* wait for the start */
        rlab_event_clear(s->go[w]); /* taken: the next start is a new set */
        s->runs[w][s->cycle] += 1;  /* the cycle's work */
        rlab_event_set(s->done[w]); /* tell the coordinator */
    }
}

static void worker0(void *state) { work(state, 0); }
static void worker1(void *state) { work(state, 1); }

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const crew *s = state;
    bool once = true;
    for (int w = 0; w < 2; w++)
        for (int c = 0; c < CYCLES; c++)
            once &= s->runs[w][c] == 1;
    snprintf(key, len, "%s",
             once ? "every cycle ran once" : "a cycle ran twice or never");
}

static const rlab_outcome grades[] = {
    {"every cycle ran once", RLAB_ACCEPTABLE, "each worker ran cycles 0 .. 3"},
    {"a cycle ran twice or never", RLAB_FORBIDDEN,
     "a worker found the start flag still up and ran the cycle again"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.event_coordinator",
        .description = "a coordinator and 2 workers, 4 cycles",
        .state_size = sizeof(crew),
        .init = setup,
        .actor = {coordinator, worker0, worker1},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "event_coordinator",
        .problem = "A worker that finished a cycle goes back to waiting for "
                   "the start flag, which is still\nup until the coordinator "
                   "lowers it: it runs the same cycle again, and its second "
                   "done\nflag can be wiped by the coordinator's reset or "
                   "count for a cycle it never ran.",
        .stale_after = 0.5,
    };
    return exercise_main(&test, &e);
}
