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
    /* the signals; volatile: every access really happens */
    volatile int go;      /* start the cycle */
    volatile int done[2]; /* worker i finished the cycle */
    volatile int cycle;   /* the cycle being run */
    int runs[2][CYCLES];  /* how often worker i ran cycle c */
} crew;

static void setup(void *state) { (void)state; }    /* before the threads */
static void teardown(void *state) { (void)state; } /* after they finished */

static void coordinator(void *state)
{
    crew *s = state;
    for (int c = 0; c < CYCLES; c++) {
        s->cycle = c;
        s->go = 1;                         /* start the cycle */
        while (!s->done[0] || !s->done[1]) /* wait for both workers */
            ;
        s->done[0] = s->done[1] = 0;       /* reset for the next cycle */
        s->go = 0;
    }
}

static void work(crew *s, int w)
{
    for (int k = 0; k < CYCLES; k++) {
        while (!s->go) /* wait for the start */
            ;
        s->runs[w][s->cycle] += 1; /* the cycle's work */
        s->done[w] = 1;            /* tell the coordinator */
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
