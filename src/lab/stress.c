/*
 * stress.c - the stress harness behind racelab/stress.h (part of librlab).
 *
 * One run = one context shared by the actor threads:
 *
 *   start rendezvous   the last thread to arrive (the leader) stamps the
 *                      batch; everyone reads the batch size n (0: stop)
 *   actor phase        thread i calls actor[i] on states 0 .. n-1
 *   end rendezvous     the leader times the batch, adapts the stride and
 *                      decides the next batch size
 *   bookkeeping        thread i takes its contiguous share of the states:
 *                      arbiter, outcome, tally, fini, then zero + init for
 *                      the next batch
 *
 * The rendezvous spin briefly and then sleep on a futex, so they cost a
 * cache-line transfer when every actor has a CPU and do not starve anyone
 * when actors outnumber CPUs.  They are acquire/release, which is all the
 * ordering the harness promises (and all ThreadSanitizer needs to see).
 *
 * The calling thread only watches: it sleeps on a futex with a timeout,
 * prints the progress line and declares the run STALE when no rendezvous
 * completed for stale_after seconds.  A stale run abandons its context:
 * stuck threads keep it (and the states they hold) alive; threads that
 * still move notice the abandon flag at their next rendezvous and leave,
 * the last one out freeing the context.
 */
#include "racelab/stress.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define STATE_ALIGN 16
#define DEFAULT_MAX_STRIDE 1024u
#define STATES_BYTES_MAX ((size_t)64 << 20) /* cap on the state array */
#define BATCH_TARGET_S 0.002                /* a batch's actor phase */
#define WATCH_PERIOD_S 0.05                 /* the watcher's wake-ups */

/* ---- outcome tallies: a small open-addressing map key -> count ---- */

typedef struct {
    char *key;
    uint64_t hash;
    unsigned long long n;
} tally_slot;

typedef struct {
    tally_slot *slot;
    size_t cap, used; /* cap is 0 or a power of two */
} tally;

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int tally_grow(tally *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    tally_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slot[i].key)
            continue;
        size_t j = t->slot[i].hash & (cap - 1);
        while (s[j].key)
            j = (j + 1) & (cap - 1);
        s[j] = t->slot[i];
    }
    free(t->slot);
    t->slot = s;
    t->cap = cap;
    return 0;
}

/* Adds n samples of key; ENOMEM leaves the tally as it was. */
static int tally_add(tally *t, const char *key, uint64_t h,
                     unsigned long long n)
{
    if ((t->used + 1) * 2 > t->cap && tally_grow(t))
        return ENOMEM;
    size_t j = h & (t->cap - 1);
    for (; t->slot[j].key; j = (j + 1) & (t->cap - 1))
        if (t->slot[j].hash == h && !strcmp(t->slot[j].key, key)) {
            t->slot[j].n += n;
            return 0;
        }
    char *k = strdup(key);
    if (!k)
        return ENOMEM;
    t->slot[j] = (tally_slot){k, h, n};
    t->used++;
    return 0;
}

static void tally_free(tally *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slot[i].key);
    free(t->slot);
    *t = (tally){0};
}

/* ---- the shared context ---- */

typedef struct {
    pthread_t thread;
    unsigned index;
    struct ctx *ctx;
    pthread_mutex_t mu; /* guards tally; never held across user code */
    tally tally;
    bool nomem;
} worker;

typedef struct ctx {
    rlab_stress_test test; /* a copy: the caller's may go away on STALE */
    unsigned nactors;
    size_t slot;        /* bytes per state, aligned */
    unsigned max_stride;
    unsigned char *states;

    /* The rendezvous: arrivals count up to nactors; the leader bumps gen. */
    _Alignas(64) atomic_uint arrived;
    _Alignas(64) atomic_uint gen;
    atomic_uint sleepers;
    unsigned spin;

    /* Written by a leader before it bumps gen, read after the rendezvous. */
    unsigned n;          /* states in the current batch; 0: stop */
    unsigned next_n;     /* states in the next batch */
    unsigned stride;
    unsigned long long scheduled; /* states handed out so far */
    unsigned long long trials;    /* 0: time bound */
    double t_end, batch_start;
    double target;       /* wanted actor-phase length */

    _Alignas(64) atomic_uint progress; /* rendezvous completed */
    atomic_uint exited;                 /* workers gone */
    atomic_bool abandoned;
    atomic_int refs;
    worker w[RLAB_STRESS_MAX_ACTORS];
} ctx;

static void ctx_free(ctx *c)
{
    for (unsigned i = 0; i < c->nactors; i++) {
        tally_free(&c->w[i].tally);
        pthread_mutex_destroy(&c->w[i].mu);
    }
    free(c->states);
    free(c);
}

static void ctx_unref(ctx *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        ctx_free(c);
}

static unsigned char *state_at(ctx *c, unsigned j)
{
    return c->states + (size_t)j * c->slot;
}

/* Leader work at the end rendezvous: time the batch, adapt the stride,
 * size the next batch (0 stops the run). */
static void plan_next(ctx *c)
{
    double now = rlab__now();
    double took = now - c->batch_start;
    if (took < c->target && c->stride < c->max_stride)
        c->stride = c->stride > c->max_stride / 2 ? c->max_stride
                                                  : c->stride * 2;
    else if (took > 4 * c->target && c->stride > 1)
        c->stride /= 2;
    unsigned long long n = c->stride;
    if (c->trials) {
        unsigned long long left = c->trials - c->scheduled;
        n = left < n ? left : n;
    } else if (now >= c->t_end) {
        n = 0;
    }
    c->next_n = (unsigned)n;
    c->scheduled += n;
}

/* Leader work at the start rendezvous. */
static void start_batch(ctx *c)
{
    c->n = c->next_n;
    c->batch_start = rlab__now();
}

/* Waits for every actor thread; the last to arrive runs lead(c) first.
 * Returns false when the run was abandoned: the caller must leave without
 * touching the states. */
static bool rendezvous(ctx *c, void (*lead)(ctx *))
{
    /* An actor that comes back after the run was abandoned would wait
     * for a rendezvous that can never complete. */
    if (atomic_load(&c->abandoned))
        return false;
    unsigned g = atomic_load_explicit(&c->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&c->arrived, 1, memory_order_acq_rel) + 1 ==
        c->nactors) {
        atomic_store_explicit(&c->arrived, 0, memory_order_relaxed);
        if (lead)
            lead(c);
        atomic_fetch_add_explicit(&c->progress, 1, memory_order_relaxed);
        atomic_fetch_add(&c->gen, 1); /* seq_cst: pairs with sleepers */
        if (atomic_load(&c->sleepers))
            rlab__futex_wake(&c->gen, INT32_MAX);
    } else {
        unsigned i = 0;
        while (atomic_load_explicit(&c->gen, memory_order_acquire) == g &&
               i++ < c->spin)
            rlab__cpu_relax();
        if (atomic_load_explicit(&c->gen, memory_order_acquire) == g) {
            rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
            atomic_fetch_add(&c->sleepers, 1);
            while (atomic_load(&c->gen) == g && !atomic_load(&c->abandoned))
                rlab__futex_wait(&c->gen, g, &forever);
            atomic_fetch_sub(&c->sleepers, 1);
        }
    }
    return !atomic_load(&c->abandoned);
}

static void prepare(ctx *c, unsigned j)
{
    unsigned char *s = state_at(c, j);
    memset(s, 0, c->slot);
    if (c->test.init)
        c->test.init(s);
}

/* Outcome of state j into the worker's tally, then fini. */
static void take_outcome(ctx *c, worker *w, unsigned j)
{
    unsigned char *s = state_at(c, j);
    char key[RLAB_STRESS_KEY_MAX];
    key[0] = '\0';
    if (c->test.arbiter)
        c->test.arbiter(s);
    c->test.outcome(s, key, sizeof key);
    key[sizeof key - 1] = '\0';
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&w->mu);
    if (tally_add(&w->tally, key, h, 1))
        w->nomem = true;
    pthread_mutex_unlock(&w->mu);
    if (c->test.fini)
        c->test.fini(s);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ctx *c = w->ctx;
    void (*actor)(void *) = c->test.actor[w->index];
    for (;;) {
        if (!rendezvous(c, start_batch) || c->n == 0)
            break;
        unsigned n = c->n;
        for (unsigned j = 0; j < n; j++)
            actor(state_at(c, j));
        if (!rendezvous(c, plan_next))
            break;
        /* This thread's contiguous share of [0, max(n, next_n)). */
        unsigned next = c->next_n, m = n > next ? n : next;
        unsigned lo = (unsigned)((unsigned long long)m * w->index / c->nactors);
        unsigned hi =
            (unsigned)((unsigned long long)m * (w->index + 1) / c->nactors);
        for (unsigned j = lo; j < hi; j++) {
            if (j < n)
                take_outcome(c, w, j);
            if (j < next)
                prepare(c, j);
        }
    }
    atomic_fetch_add(&c->exited, 1);
    rlab__futex_wake(&c->exited, 1);
    ctx_unref(c);
    return NULL;
}

/* ---- the report ---- */

typedef struct {
    char *key;
    unsigned long long samples;
    rlab_expect expect;
    char *description;
} entry;

struct rlab_stress_report {
    char *name, *description;
    unsigned long long trials, forbidden;
    double seconds, stale_after;
    bool stale;
    size_t n;
    entry *e;
};

static const rlab_outcome *grade(const rlab_outcome *table, const char *key)
{
    const rlab_outcome *star = NULL;
    for (const rlab_outcome *o = table; o->outcome; o++) {
        if (!strcmp(o->outcome, key))
            return o;
        if (!strcmp(o->outcome, "*"))
            star = o;
    }
    return strcmp(key, "STALE") ? star : NULL;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return strcmp(x->key, y->key);
}

void rlab_stress_report_free(rlab_stress_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].key);
        free(r->e[i].description);
    }
    free(r->e);
    free(r->name);
    free(r->description);
    free(r);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static int report_add(rlab_stress_report *r, const char *key,
                      unsigned long long samples, rlab_expect expect,
                      const char *description)
{
    entry *e = realloc(r->e, (r->n + 1) * sizeof *e);
    if (!e)
        return ENOMEM;
    r->e = e;
    e[r->n] = (entry){strdup(key), samples, expect, dup_or_empty(description)};
    if (!e[r->n].key || !e[r->n].description) {
        free(e[r->n].key);
        free(e[r->n].description);
        return ENOMEM;
    }
    r->n++;
    if (expect == RLAB_FORBIDDEN)
        r->forbidden += samples;
    return 0;
}

/* Builds the report from the workers' tallies (merged into `all`). */
static int make_report(const rlab_stress_test *t, tally *all, double seconds,
                       bool stale, double stale_after,
                       rlab_stress_report **out)
{
    rlab_stress_report *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    r->name = dup_or_empty(t->name);
    r->description = dup_or_empty(t->description);
    r->seconds = seconds;
    r->stale = stale;
    r->stale_after = stale_after;
    int rc = r->name && r->description ? 0 : ENOMEM;
    for (size_t i = 0; !rc && i < all->cap; i++) {
        const tally_slot *s = &all->slot[i];
        if (!s->key)
            continue;
        r->trials += s->n;
        const rlab_outcome *g = grade(t->outcomes, s->key);
        rc = g ? report_add(r, s->key, s->n, g->expect, g->description)
               : report_add(r, s->key, s->n, RLAB_FORBIDDEN,
                            "not in the grading table");
    }
    if (!rc && stale) {
        char why[96];
        snprintf(why, sizeof why, "actors did not finish within %.3g s",
                 stale_after);
        rc = report_add(r, "STALE", 1, RLAB_FORBIDDEN, why);
    }
    for (const rlab_outcome *o = t->outcomes; !rc && o->outcome; o++) {
        bool seen = !strcmp(o->outcome, "*");
        for (size_t i = 0; !seen && i < r->n; i++)
            seen = !strcmp(r->e[i].key, o->outcome);
        if (!seen)
            rc = report_add(r, o->outcome, 0, o->expect, o->description);
    }
    if (rc) {
        rlab_stress_report_free(r);
        return rc;
    }
    qsort(r->e, r->n, sizeof *r->e, cmp_entry);
    *out = r;
    return 0;
}

/* Merges the workers' tallies.  On a stale run a worker may still be
 * tallying: its mutex is held only for one tally_add, never across user
 * code, so this does not wait long. */
static int merge(ctx *c, tally *all)
{
    int rc = 0;
    for (unsigned i = 0; i < c->nactors; i++) {
        worker *w = &c->w[i];
        pthread_mutex_lock(&w->mu);
        if (w->nomem)
            rc = ENOMEM;
        for (size_t k = 0; !rc && k < w->tally.cap; k++)
            if (w->tally.slot[k].key)
                rc = tally_add(all, w->tally.slot[k].key,
                               w->tally.slot[k].hash, w->tally.slot[k].n);
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

static unsigned long long trials_so_far(ctx *c)
{
    unsigned long long n = 0;
    for (unsigned i = 0; i < c->nactors; i++) {
        pthread_mutex_lock(&c->w[i].mu);
        for (size_t k = 0; k < c->w[i].tally.cap; k++)
            n += c->w[i].tally.slot[k].n;
        pthread_mutex_unlock(&c->w[i].mu);
    }
    return n;
}

/* ---- running ---- */

static int validate(const rlab_stress_test *t, const rlab_stress_opts *o,
                    unsigned *nactors)
{
    if (!t || !t->name || !t->state_size || !t->outcome || !t->outcomes)
        return EINVAL;
    unsigned n = 0;
    while (n < RLAB_STRESS_MAX_ACTORS && t->actor[n])
        n++;
    for (unsigned i = n; i < RLAB_STRESS_MAX_ACTORS; i++)
        if (t->actor[i])
            return EINVAL;
    if (n < 2)
        return EINVAL;
    if (o && (!(o->seconds >= 0) || !(o->stale_after >= 0) ||
              isinf(o->seconds) || isinf(o->stale_after)))
        return EINVAL;
    *nactors = n;
    return 0;
}

/* Sets attr's affinity to the CPU of actor i (before the thread runs). */
static void pin_attr(pthread_attr_t *attr, unsigned i)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed))
        return;
    int cpus[CPU_SETSIZE], ncpu = 0;
    for (int k = 0; k < CPU_SETSIZE; k++)
        if (CPU_ISSET(k, &allowed))
            cpus[ncpu++] = k;
    if (!ncpu)
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus[i % (unsigned)ncpu], &one);
    pthread_attr_setaffinity_np(attr, sizeof one, &one);
}

static ctx *ctx_new(const rlab_stress_test *t, const rlab_stress_opts *o,
                    unsigned nactors)
{
    /* aligned_alloc, not calloc: the rendezvous words sit on their own
     * cache lines. */
    size_t bytes = (sizeof(ctx) + 63) / 64 * 64;
    ctx *c = aligned_alloc(64, bytes);
    if (!c)
        return NULL;
    memset(c, 0, bytes);
    if (t->state_size > STATES_BYTES_MAX) {
        free(c);
        return NULL;
    }
    c->test = *t;
    c->nactors = nactors;
    c->slot = (t->state_size + STATE_ALIGN - 1) / STATE_ALIGN * STATE_ALIGN;
    unsigned max = o->max_stride ? o->max_stride : DEFAULT_MAX_STRIDE;
    if (max > STATES_BYTES_MAX / c->slot)
        max = STATES_BYTES_MAX / c->slot ? (unsigned)(STATES_BYTES_MAX / c->slot) : 1;
    c->max_stride = max;
    c->states = aligned_alloc(64, ((size_t)max * c->slot + 63) / 64 * 64);
    if (!c->states) {
        free(c);
        return NULL;
    }
    for (unsigned i = 0; i < nactors; i++) {
        pthread_mutex_init(&c->w[i].mu, NULL);
        c->w[i].index = i;
        c->w[i].ctx = c;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->spin = ncpu >= (long)nactors ? 20000 : 100;
    c->stride = 1;
    c->trials = o->trials;
    /* Short batches next to stale_after, so slow actors are not stale. */
    c->target = BATCH_TARGET_S;
    if (o->stale_after > 0 && o->stale_after / 20 < c->target)
        c->target = o->stale_after / 20;
    return c;
}

/* The watcher: waits for the workers to leave, prints progress, and
 * returns true if the run went stale. */
static bool watch(ctx *c, const rlab_stress_opts *o, const char *name,
                  double t0)
{
    bool tty = o->progress && isatty(fileno(o->progress));
    bool printed = false;
    unsigned seen = atomic_load(&c->progress);
    double last_move = rlab__now(), last_print = t0;
    for (;;) {
        unsigned exited = atomic_load(&c->exited);
        if (exited == c->nactors)
            break;
        rlab_deadline d;
        rlab__deadline(WATCH_PERIOD_S, &d);
        rlab__futex_wait(&c->exited, exited, &d);
        double now = rlab__now();
        unsigned p = atomic_load(&c->progress);
        if (p != seen) {
            seen = p;
            last_move = now;
        } else if (o->stale_after > 0 && now - last_move > o->stale_after) {
            if (printed)
                fputs("\r\033[K", o->progress);
            return true;
        }
        if (tty && now - t0 > 1.0 && now - last_print > 0.25) {
            unsigned long long n = trials_so_far(c);
            fprintf(o->progress, "\r\033[K%s: %llu trials, %.0f trials/s ...",
                    name, n, n / (now - t0));
            fflush(o->progress);
            last_print = now;
            printed = true;
        }
    }
    if (printed)
        fputs("\r\033[K", o->progress);
    return false;
}

int rlab_stress_run(const rlab_stress_test *test, const rlab_stress_opts *opts,
                    rlab_stress_report **out)
{
    if (!out)
        return EINVAL;
    *out = NULL;
    unsigned nactors;
    int rc = validate(test, opts, &nactors);
    if (rc)
        return rc;
    rlab_stress_opts o = opts ? *opts : (rlab_stress_opts){0};
    if (!o.trials && !o.seconds)
        o.seconds = 1.0;
    ctx *c = ctx_new(test, &o, nactors);
    if (!c)
        return ENOMEM;

    double t0 = rlab__now();
    c->t_end = t0 + o.seconds;
    c->next_n = 1;
    c->scheduled = 1;
    prepare(c, 0);
    atomic_store(&c->refs, 1);
    unsigned started = 0;
    for (; started < nactors; started++) {
        atomic_fetch_add(&c->refs, 1);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (o.pin)
            pin_attr(&attr, started);
        int prc = pthread_create(&c->w[started].thread, &attr, worker_main,
                                 &c->w[started]);
        pthread_attr_destroy(&attr);
        if (prc) {
            atomic_fetch_sub(&c->refs, 1);
            break;
        }
    }
    if (started < nactors) {
        /* Release the ones that started: they wait at the first
         * rendezvous, which can never complete. */
        atomic_store(&c->abandoned, true);
        atomic_fetch_add(&c->gen, 1);
        rlab__futex_wake(&c->gen, INT32_MAX);
        for (unsigned i = 0; i < started; i++)
            pthread_join(c->w[i].thread, NULL);
        if (c->test.fini)
            c->test.fini(state_at(c, 0));
        ctx_unref(c);
        return EAGAIN;
    }

    bool stale = watch(c, &o, test->name, t0);
    double seconds = rlab__now() - t0;
    if (stale) {
        atomic_store(&c->abandoned, true);
        atomic_fetch_add(&c->gen, 1);
        rlab__futex_wake(&c->gen, INT32_MAX);
        for (unsigned i = 0; i < nactors; i++)
            pthread_detach(c->w[i].thread);
    } else {
        for (unsigned i = 0; i < nactors; i++)
            pthread_join(c->w[i].thread, NULL);
    }
    tally all = {0};
    rc = merge(c, &all);
    if (!rc)
        rc = make_report(test, &all, seconds, stale, o.stale_after, out);
    tally_free(&all);
    ctx_unref(c);
    return rc;
}

/* ---- reading and printing ---- */

int rlab_stress_verdict(const rlab_stress_report *r)
{
    return r && (r->forbidden || r->stale) ? 1 : 0;
}

unsigned long long rlab_stress_samples(const rlab_stress_report *r,
                                       const char *outcome)
{
    if (!r || !outcome)
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->e[i].key, outcome))
            return r->e[i].samples;
    return 0;
}

unsigned long long rlab_stress_forbidden(const rlab_stress_report *r)
{
    return r ? r->forbidden : 0;
}

bool rlab_stress_stale(const rlab_stress_report *r)
{
    return r && r->stale;
}

unsigned long long rlab_stress_trials(const rlab_stress_report *r)
{
    return r ? r->trials : 0;
}

double rlab_stress_seconds(const rlab_stress_report *r)
{
    return r ? r->seconds : 0;
}

static const char *expect_name(rlab_expect e)
{
    switch (e) {
    case RLAB_ACCEPTABLE:
        return "ACCEPTABLE";
    case RLAB_INTERESTING:
        return "INTERESTING";
    default:
        return "FORBIDDEN";
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static double rate(const rlab_stress_report *r)
{
    return r->seconds > 0 ? (double)r->trials / r->seconds : 0;
}

/* STALE is one extra sample, not a trial: it has no frequency (0). */
static bool is_stale_row(const rlab_stress_report *r, const entry *e)
{
    return r->stale && !strcmp(e->key, "STALE");
}

static double freq(const rlab_stress_report *r, const entry *e)
{
    if (!r->trials || is_stale_row(r, e))
        return 0;
    return (double)e->samples / (double)r->trials;
}

static void print_json(const rlab_stress_report *r, FILE *f)
{
    fputs("{\"test\": ", f);
    json_string(f, r->name);
    fputs(", \"description\": ", f);
    json_string(f, r->description);
    fprintf(f,
            ", \"trials\": %llu, \"seconds\": %.6f, \"trials_per_second\": "
            "%.1f, \"verdict\": \"%s\", \"stale\": %s, \"forbidden\": %llu, "
            "\"outcomes\": [",
            r->trials, r->seconds, rate(r),
            rlab_stress_verdict(r) ? "FAIL" : "PASS",
            r->stale ? "true" : "false", r->forbidden);
    for (size_t i = 0; i < r->n; i++) {
        fputs(i ? ", {\"outcome\": " : "{\"outcome\": ", f);
        json_string(f, r->e[i].key);
        fprintf(f, ", \"samples\": %llu, \"frequency\": %.6f, \"expect\": \"%s\", "
                   "\"description\": ",
                r->e[i].samples, freq(r, &r->e[i]), expect_name(r->e[i].expect));
        json_string(f, r->e[i].description);
        fputc('}', f);
    }
    fputs("]}\n", f);
}

static void human_rate(double v, char *buf, size_t len)
{
    if (v >= 1e6)
        snprintf(buf, len, "%.2f M", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%.1f k", v / 1e3);
    else
        snprintf(buf, len, "%.0f ", v);
}

void rlab_stress_print(const rlab_stress_report *r, FILE *f, bool json)
{
    if (!r || !f)
        return;
    if (json) {
        print_json(r, f);
        return;
    }
    int kw = 7;
    for (size_t i = 0; i < r->n; i++) {
        int l = (int)strlen(r->e[i].key);
        kw = l > kw ? l : kw;
    }
    fprintf(f, "%s%s%s\n", r->name, *r->description ? ": " : "",
            r->description);
    fprintf(f, "  %-*s  %12s  %9s  %-11s  %s\n", kw, "outcome", "samples",
            "frequency", "expect", "description");
    for (size_t i = 0; i < r->n; i++) {
        const entry *e = &r->e[i];
        const char *mark = e->samples && e->expect == RLAB_FORBIDDEN ? "!"
                           : e->samples && e->expect == RLAB_INTERESTING ? "*"
                                                                         : " ";
        char pct[16];
        if (is_stale_row(r, e))
            snprintf(pct, sizeof pct, "-");
        else
            snprintf(pct, sizeof pct, "%.4f%%", 100.0 * freq(r, e));
        fprintf(f, "%s %-*s  %12llu  %9s  %-11s  %s\n", mark, kw, e->key,
                e->samples, pct, expect_name(e->expect), e->description);
    }
    char rbuf[32];
    human_rate(rate(r), rbuf, sizeof rbuf);
    fprintf(f, "  %llu trials in %.2f s (%strials/s): %s", r->trials,
            r->seconds, rbuf, rlab_stress_verdict(r) ? "FAIL" : "PASS");
    if (r->stale)
        fprintf(f, " (STALE: actors stuck for %.3g s)", r->stale_after);
    else if (r->forbidden)
        fprintf(f, " (%llu forbidden)", r->forbidden);
    fputc('\n', f);
}
