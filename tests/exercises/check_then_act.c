/*
 * Exercise: check_then_act  (the lesson: racelab explain check_then_act)
 *
 * An application builds its configuration lazily, on first use:
 * get_config() checks whether it exists yet and builds it if not.  Two
 * threads call get_config() at once, and sometimes the configuration is
 * built twice: the two threads then work with two different "single"
 * configurations.
 *
 * Goal: the configuration is built exactly once, and both threads get
 * that one.
 *
 * Run:   ctest --preset exercises -R check_then_act --output-on-failure
 * Stuck: tests/exercises/check_then_act.hint.md
 * Done:  diff your file with tests/exercises/solutions/check_then_act.c
 */
#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

typedef struct {
    int table[16];
} config;

typedef struct {
    config *volatile config; /* NULL until built; volatile: really read */
    config storage[2];       /* thread i builds into storage[i] */
    int built[2];            /* thread i built one */
    config *got[2];          /* what each thread got */
} app;

static void setup(void *state) { (void)state; }    /* before the threads */
static void teardown(void *state) { (void)state; } /* after they finished */

static config *build_config(app *a, int me)
{
    config *c = &a->storage[me];
    for (int i = 0; i < 16; i++)
        c->table[i] = i * i; /* stands for reading a file, parsing ... */
    a->built[me] = 1;
    return c;
}

static config *get_config(app *a, int me)
{
    if (a->config == NULL)               /* check ... */
        a->config = build_config(a, me); /* ... then act */
    return a->config;
}

static void thread0(void *state)
{
    app *a = state;
    a->got[0] = get_config(a, 0);
}

static void thread1(void *state)
{
    app *a = state;
    a->got[1] = get_config(a, 1);
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const app *a = state;
    int builds = a->built[0] + a->built[1];
    snprintf(key, len, "built %d time%s, %s", builds, builds == 1 ? "" : "s",
             a->got[0] == a->got[1] ? "same config" : "different configs");
}

static const rlab_outcome grades[] = {
    {"built 1 time, same config", RLAB_ACCEPTABLE,
     "one thread built it, the other found it"},
    {"*", RLAB_FORBIDDEN,
     "both threads saw NULL and both built a configuration"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.check_then_act",
        .description = "two threads call get_config() on a fresh app",
        .state_size = sizeof(app),
        .init = setup,
        .actor = {thread0, thread1},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "check_then_act",
        .problem = "Both threads checked a->config, both found NULL before "
                   "either had stored its config,\nand both built one: "
                   "between the check and the act the other thread can do "
                   "the same.",
    };
    return exercise_main(&test, &e);
}
