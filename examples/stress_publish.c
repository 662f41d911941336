/*
 * stress_publish.c - a race test of your own, written against
 * <racelab/stress.h> (the README's "Write your own race test" example).
 *
 * Question: when one thread fills a record and then sets an Event, does a
 * thread that waited on the Event always see the whole record?  Two
 * actors run side by side on millions of fresh states; the outcome names
 * what the reader saw; the table grades it.  Build and run:
 *
 *   cc -std=c17 stress_publish.c $(pkg-config --cflags --libs racelab)
 *   ./a.out            # exit 0: no FORBIDDEN outcome was seen
 *   ./a.out --broken   # the reader skips the wait: watch it fail
 */
#include <racelab.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    rlab_event *ready;       /* made by init, freed by fini */
    int a, b;                /* the record */
    int seen_a, seen_b;      /* what the reader saw */
} state;

static int broken;           /* --broken: read without waiting */

static void init(void *p)
{
    state *s = p;
    s->ready = rlab_event_new();
}

static void writer(void *p)
{
    state *s = p;
    s->a = 1;
    s->b = 2;
    rlab_event_set(s->ready);
}

static void reader(void *p)
{
    state *s = p;
    if (!broken && rlab_event_wait(s->ready, 5.0) != 0)
        return; /* a timeout leaves seen_* at 0: graded FORBIDDEN */
    s->seen_a = *(volatile int *)&s->a;
    s->seen_b = *(volatile int *)&s->b;
}

static void outcome(const void *p, char *key, size_t len)
{
    const state *s = p;
    snprintf(key, len, "%d, %d", s->seen_a, s->seen_b);
}

static void fini(void *p)
{
    state *s = p;
    rlab_event_free(s->ready);
}

static const rlab_outcome grades[] = {
    {"1, 2", RLAB_ACCEPTABLE, "the reader saw the whole record"},
    {"*", RLAB_FORBIDDEN, "the reader saw a missing or half-written record"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(int argc, char **argv)
{
    broken = argc > 1 && !strcmp(argv[1], "--broken");
    rlab_stress_test t = {
        .name = "publish",
        .description = "fill a record, then set an Event",
        .state_size = sizeof(state),
        .init = init,
        .actor = {writer, reader},
        .outcome = outcome,
        .outcomes = grades,
        .fini = fini,
    };
    rlab_stress_opts o = {.seconds = 0.5, .stale_after = 5.0};
    rlab_stress_report *r;
    int rc = rlab_stress_run(&t, &o, &r);
    if (rc) {
        fprintf(stderr, "stress run failed: %s\n", rlab_strerror(rc));
        return 2;
    }
    rlab_stress_print(r, stdout, false);
    int verdict = rlab_stress_verdict(r);
    rlab_stress_report_free(r);
    return verdict;
}
