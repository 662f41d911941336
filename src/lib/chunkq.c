/*
 * chunkq.c - the cold half of the chunked FIFO (see chunkq.h): setting a
 * queue up and freeing it with what it still holds.
 */
#include "chunkq.h"

int rlab__chunkq_init(rlab__chunkq *cq)
{
    rlab__chunk *c = malloc(sizeof *c);
    if (!c)
        return ENOMEM;
    c->next = NULL;
    atomic_init(&cq->put_mu, 0);
    cq->tail = c;
    cq->put_n = 0;
    cq->got_seen = 0;
    atomic_init(&cq->put_count, 0);
    atomic_init(&cq->get_mu, 0);
    cq->head = c;
    cq->get_n = 0;
    cq->limit = 0;
    atomic_init(&cq->get_count, 0);
    atomic_init(&cq->spare, NULL);
    return 0;
}

void rlab__chunkq_free(rlab__chunkq *cq, size_t first,
                       void (*free_item)(void *))
{
    /* head holds the item before `first` (or item 0): walk on as a
     * consumer would. */
    rlab__chunk *c = cq->head;
    for (size_t n = first; free_item && n < cq->put_n; n++) {
        if (n % RLAB__CHUNK == 0 && n != 0)
            c = c->next;
        free_item(c->slot[n % RLAB__CHUNK]);
    }
    for (c = cq->head; c;) {
        rlab__chunk *next = c->next;
        free(c);
        c = next;
    }
    free(atomic_load_explicit(&cq->spare, memory_order_relaxed));
}
