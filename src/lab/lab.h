/*
 * lab.h - the race lab: lessons built on racelab/stress.h, and the judges
 * that grade them.
 *
 * A lesson is one race (counter, rlock, condition ...) with a `racy`
 * variant that shows it and fixed variants named after what fixes them
 * (counter.lock, counter.atomic ...).  Each variant builds a
 * rlab_stress_test from the run's parameters; `racelab run` runs it,
 * `racelab check` grades it against what the variant is expected to do
 * (racy: the harness sees a FORBIDDEN or STALE outcome and, under TSan,
 * ThreadSanitizer reports it; fixed: neither), and the ctest `lesson`
 * tests call `racelab check` once per variant.
 *
 * Lessons live in src/lab/lessons/NAME.c, each defining one
 * `const lab_lesson lab_lesson_NAME`, listed in src/lab/lessons.c.
 */
#ifndef RLAB_LAB_H
#define RLAB_LAB_H

#include <stdbool.h>
#include <stddef.h>

#include "racelab/stress.h"

/* What `racelab run` was asked for; 0 means "the lesson's default". */
typedef struct {
    unsigned threads;          /* --threads: actors, where a lesson lets it
                                  vary (2 .. RLAB_STRESS_MAX_ACTORS) */
    unsigned long iterations;  /* --iterations: per-actor loop count */
    unsigned long long seed;   /* --seed (always set: the CLI picks one) */
    bool amplify;              /* --amplify: widen the race window (the
                                  report says so) */
} lab_params;

/* What ThreadSanitizer must say about a variant under the tsan preset. */
typedef enum {
    LAB_TSAN_CLEAN,        /* no report at all */
    LAB_TSAN_RACE,         /* at least one data-race report */
    LAB_TSAN_LOCK_ORDER,   /* at least one lock-order-inversion report */
    LAB_TSAN_BLIND,        /* TSan cannot see this bug (the variant's
                              explain text says why); only the harness
                              judges it, and any report still fails */
} lab_tsan_expect;

typedef struct {
    const char *name;        /* "racy", "lock", "atomic" ... */
    const char *summary;     /* one line for `racelab list` */
    bool racy;               /* expected to show FORBIDDEN or STALE */
    lab_tsan_expect tsan;
    /* Fills *t (zeroed by the caller) from the parameters.  Strings and
     * tables it points to must be static.  The lesson may keep the
     * parameters in static storage for its actors: one variant runs at a
     * time. */
    void (*build)(const lab_params *p, rlab_stress_test *t);
    double seconds;          /* default run length; 0: 1.0 */
    unsigned long long trials;   /* default trial count; 0: run by time */
    double stale_after;      /* 0: 2.0 seconds */
    unsigned max_stride;     /* most states per batch; 0: the harness'
                                default.  Long actors (a 100,000-step loop)
                                collide best with 1: both start each state
                                together instead of drifting apart */
} lab_variant;

typedef struct {
    const char *name;        /* "counter" */
    const char *summary;     /* one line for `racelab list` */
    /* `racelab explain`: the race, why each fix works, where to look in
     * the source.  Paragraphs (each under 4000 characters: -Wpedantic
     * limits string literals), NULL-terminated; printed with a blank line
     * between them.  Text is wrapped at 76 columns by its author. */
    const char *const *explain;
    const lab_variant *variants;   /* racy first */
    size_t nvariants;
    /* Optional: registers the tasks the lesson's child processes run
     * (racelab/multiprocessing.h).  Called by lab_register_tasks(), in
     * every run of the program, before rlab_mp_main().  0 or the code of
     * rlab_task_register. */
    int (*register_tasks)(void);
} lab_lesson;

/* Every lesson, in teaching order; lab_lessons_count of them. */
extern const lab_lesson *const lab_lessons[];
extern const size_t lab_lessons_count;

/* Registers every lesson's tasks; main() calls it first, then
 * rlab_mp_main(), so that spawn and forkserver children find them.  0 or
 * the first failing code. */
int lab_register_tasks(void);

/* Finds "LESSON" (variant NULL) or "LESSON.VARIANT".  NULL if unknown. */
const lab_lesson *lab_find(const char *spec, const lab_variant **variant);

/* ThreadSanitizer reports seen so far in this process, by kind; all 0
 * when not built with TSan (lab_tsan_active() false). */
typedef struct {
    unsigned long races, lock_order, other;
} lab_tsan_counts;
bool lab_tsan_active(void);
lab_tsan_counts lab_tsan_counts_now(void);

#endif
