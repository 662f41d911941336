/* wl_internal.h - what the workload sources share: the hook's ticker.
 *
 * Inner loops run in spans: wl_span says how many iterations may run
 * before the next tick, the loop runs them with nothing else in its body,
 * and wl_advance counts them and ticks when due.  Without a tick function
 * a span is the whole loop, so the plain loop pays nothing for the hook. */
#ifndef RLAB_WL_INTERNAL_H
#define RLAB_WL_INTERNAL_H

#include <stdint.h>

#include "workloads.h"

typedef struct {
    void (*tick)(void *);
    void *ctx;
    uint64_t every;
    uint64_t left; /* iterations until the next tick */
} wl_ticker;

static inline void wl_ticker_init(wl_ticker *t, const rlab_wl_hook *h)
{
    t->tick = h ? h->tick : NULL;
    t->ctx = h ? h->ctx : NULL;
    t->every = h && h->every ? h->every : RLAB_WL_TICK_EVERY;
    t->left = t->every;
}

/* Iterations that may run before the next tick, at most want. */
static inline uint64_t wl_span(const wl_ticker *t, uint64_t want)
{
    return t->tick && want > t->left ? t->left : want;
}

/* done (<= the last span) iterations ran; ticks if one is due. */
static inline void wl_advance(wl_ticker *t, uint64_t done)
{
    if (!t->tick)
        return;
    t->left -= done;
    if (t->left == 0) {
        t->left = t->every;
        t->tick(t->ctx);
    }
}

#endif
