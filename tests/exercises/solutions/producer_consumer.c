/*
 * Exercise: producer_consumer  (the lesson: racelab explain
 * producer_consumer)
 *
 * A producer thread puts the items 1, 2, ... 1000 into a bounded buffer of
 * 8 slots; a consumer thread takes them out and checks that they arrive
 * in order, each exactly once.  The buffer is a plain ring with a count of
 * the items in it.  Items get lost, duplicated, or the consumer waits
 * forever for an item the buffer has lost track of.
 *
 * Goal: every item arrives once, in order.
 *
 * Run:   ctest --preset exercises -R producer_consumer --output-on-failure
 * Stuck: tests/exercises/producer_consumer.hint.md
 * Done:  diff your file with tests/exercises/solutions/producer_consumer.c
 */
#include <stdint.h>

#include "exercise.h"

/* ---- the code under test: fix it here -------------------------------- */

#define SIZE 8     /* slots in the buffer */
#define ITEMS 1000 /* items per trial */

typedef struct {
    rlab_queue *queue; /* the buffer: a Queue(SIZE), safe between threads */
    /* the consumer's check */
    int wrong; /* items that came out lost, twice or out of order */
} buffer;

static void setup(void *state) /* before the threads */
{
    buffer *b = state;
    b->queue = rlab_queue_new(SIZE);
}

static void teardown(void *state) /* after they finished */
{
    buffer *b = state;
    rlab_queue_free(b->queue, NULL);
}

static void put(buffer *b, int item)
{
    /* waits while full */
    rlab_queue_put(b->queue, (void *)(intptr_t)item, RLAB_FOREVER);
}

static int get(buffer *b)
{
    void *item;
    rlab_queue_get(b->queue, &item, RLAB_FOREVER); /* waits while empty */
    return (int)(intptr_t)item;
}

static void producer(void *state)
{
    buffer *b = state;
    for (int i = 1; i <= ITEMS; i++)
        put(b, i);
    rlab_queue_join(b->queue, RLAB_FOREVER); /* until every item was handled */
}

static void consumer(void *state)
{
    buffer *b = state;
    for (int i = 1; i <= ITEMS; i++) {
        if (get(b) != i)
            b->wrong += 1;
        rlab_queue_task_done(b->queue); /* this item is handled */
    }
}

/* ---- the stress test: no need to change anything below --------------- */

static void outcome(const void *state, char *key, size_t len)
{
    const buffer *b = state;
    snprintf(key, len, "%s",
             b->wrong ? "items lost or duplicated" : "all items, in order");
}

static const rlab_outcome grades[] = {
    {"all items, in order", RLAB_ACCEPTABLE, "1 .. 1000, each once"},
    {"items lost or duplicated", RLAB_FORBIDDEN,
     "the consumer got an item other than the next one"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

int main(void)
{
    const rlab_stress_test test = {
        .name = "exercise.producer_consumer",
        .description = "1000 items through an 8-slot ring buffer",
        .state_size = sizeof(buffer),
        .init = setup,
        .actor = {producer, consumer},
        .outcome = outcome,
        .outcomes = grades,
        .fini = teardown,
    };
    const exercise e = {
        .name = "producer_consumer",
        .problem = "The producer's count += 1 and the consumer's count -= 1 "
                   "race (a lost update, as in\nthe counter exercise): the "
                   "count drifts from the real number of items, so the\n"
                   "consumer reads slots that were never filled, or waits "
                   "for an item forever.",
        .stale_after = 0.5,
    };
    return exercise_main(&test, &e);
}
