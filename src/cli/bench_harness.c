/*
 * bench_harness.c - what every `racelab bench NAME` shares: the options,
 * the trial loop (warm-up, then subject and reference interleaved, median
 * of each), the table and the JSON, thread teams with a hang guard, and the
 * dispatch from NAME to its suite.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define DEFAULT_TRIALS 7
#define QUICK_TRIALS 3
#define MAX_TRIALS 1000
#define MAX_ITERS 1000000000L
#define MAX_TEAM 16

static const bench_suite *const suites[] = {
    &bench_primitives_suite,
    &bench_queue_suite,
    &bench_executor_suite,
    &bench_stress_suite,
    &bench_process_pool_suite,
};
#define N_SUITES (sizeof suites / sizeof suites[0])

/* ------------------------------------------------------------- helpers --- */

double bench_now_ns(void)
{
    return cli_now() * 1e9;
}

void *bench_line_alloc(size_t size)
{
    size_t rounded = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    void *p = aligned_alloc(CACHE_LINE, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

int bench_check_sum(const char *what, unsigned long long sum, long n)
{
    unsigned long long want =
        (unsigned long long)n * ((unsigned long long)n + 1) / 2;
    if (sum == want)
        return 0;
    fprintf(stderr,
            "racelab: bench: %s: the items taken sum to %llu, want %llu "
            "(items lost or repeated)\n",
            what, sum, want);
    return -1;
}

/* ------------------------------------------------------ thread teams --- */

typedef struct {
    _Alignas(CACHE_LINE) const bench_job *job;
    pthread_barrier_t *start;
    double t_start, t_end;
    void *ret;
} team_member;

static void *team_thread(void *p)
{
    team_member *m = p;
    pthread_barrier_wait(m->start);
    m->t_start = bench_now_ns();
    m->ret = m->job->fn(m->job->arg);
    m->t_end = bench_now_ns();
    return NULL;
}

static _Noreturn void team_abort(const char *what, const char *why)
{
    fprintf(stderr, "racelab: bench: %s: %s\n", what, why);
    fflush(NULL);
    _exit(CLI_FAIL); /* its threads may still be using the trial's state */
}

double bench_run_threads(const bench_job *jobs, int n, const char *what)
{
    if (n < 1 || n > MAX_TEAM)
        return -1;
    team_member *m = bench_line_alloc(sizeof *m * (size_t)n);
    pthread_barrier_t *start = bench_line_alloc(sizeof *start);
    pthread_t tid[MAX_TEAM];
    if (!m || !start || pthread_barrier_init(start, NULL, (unsigned)n))
        team_abort(what, "out of memory");
    for (int i = 0; i < n; i++) {
        m[i].job = &jobs[i];
        m[i].start = start;
        if (pthread_create(&tid[i], NULL, team_thread, &m[i]))
            team_abort(what, "cannot start a thread");
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)BENCH_GUARD;
    for (int i = 0; i < n; i++)
        if (pthread_timedjoin_np(tid[i], NULL, &deadline))
            team_abort(what, "threads still running after the guard time "
                             "(a lost item or wake-up)");
    double first = m[0].t_start, last = m[0].t_end, ns = 0;
    for (int i = 0; i < n; i++) {
        first = m[i].t_start < first ? m[i].t_start : first;
        last = m[i].t_end > last ? m[i].t_end : last;
        if (m[i].ret)
            ns = -1;
    }
    pthread_barrier_destroy(start);
    free(start);
    free(m);
    return ns < 0 ? -1 : last - first;
}

/* --------------------------------------------------------- measurement --- */

typedef struct {
    double value, reference_value;
} bench_result;

typedef struct {
    bool json;
    long trials, iters;
} bench_opts;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Warms both sides up, then alternates subject and reference trials. */
static int measure(const bench_pair *p, int trials, long iters,
                   bench_result *out)
{
    double subj[MAX_TRIALS], ref[MAX_TRIALS];
    long warm = iters / 10 > 0 ? iters / 10 : 1;
    if (p->run_subject(warm) < 0 || p->run_reference(warm) < 0)
        goto failed;
    for (int t = 0; t < trials; t++) {
        subj[t] = p->run_subject(iters);
        ref[t] = p->run_reference(iters);
        if (subj[t] < 0 || ref[t] < 0)
            goto failed;
    }
    out->value = bench_median(subj, trials);
    out->reference_value = bench_median(ref, trials);
    return 0;
failed:
    fprintf(stderr, "racelab: bench: %s (%s vs %s) failed\n", p->name,
            p->subject, p->reference);
    return -1;
}

/* ------------------------------------------------------------- output --- */

/* A JSON number; JSON has no inf or nan. */
static void json_number(FILE *out, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(out, fmt, v);
    else
        fputs("null", out);
}

static double speedup(const bench_pair *p, const bench_result *r)
{
    size_t n = strlen(p->unit);
    bool rate = n > 2 && strcmp(p->unit + n - 2, "/s") == 0;
    return rate ? r->value / r->reference_value : r->reference_value / r->value;
}

static void print_json(FILE *out, const bench_suite *s, const bench_result *res)
{
    fprintf(out, "{\"bench\": \"%s\", \"results\": [", s->name);
    for (size_t i = 0; i < s->n_pairs; i++) {
        const bench_pair *p = &s->pairs[i];
        fprintf(out,
                "%s\n  {\"name\": \"%s\", \"subject\": \"%s\", "
                "\"reference\": \"%s\", \"value\": ",
                i ? "," : "", p->name, p->subject, p->reference);
        json_number(out, "%.3f", res[i].value);
        fputs(", \"reference_value\": ", out);
        json_number(out, "%.3f", res[i].reference_value);
        fprintf(out, ", \"unit\": \"%s\", \"speedup\": ", p->unit);
        json_number(out, "%.3f", speedup(p, &res[i]));
        fputs("}", out);
    }
    fputs("]}\n", out);
}

static int width(int w, const char *s)
{
    int len = (int)strlen(s);
    return len > w ? len : w;
}

static void print_table(FILE *out, const bench_suite *s,
                        const bench_result *res, const bench_opts *o)
{
    int wn = 22, ws = 15, wr = 24; /* at least the primitives' widths */
    for (size_t i = 0; i < s->n_pairs; i++) {
        wn = width(wn, s->pairs[i].name);
        ws = width(ws, s->pairs[i].subject);
        wr = width(wr, s->pairs[i].reference);
    }
    fprintf(out,
            "racelab bench %s: median of %ld trials (subject and "
            "reference\ninterleaved), %ld %s per trial, %ld CPUs, "
            "process multi-threaded\n\n",
            s->name, o->trials, o->iters, s->per_trial,
            sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(out, "%-*s %-*s %-*s %10s %10s  %-6s %8s\n", wn, "name", ws,
            "subject", wr, "reference", "subject", "reference", "unit",
            "speedup");
    for (size_t i = 0; i < s->n_pairs; i++) {
        const bench_pair *p = &s->pairs[i];
        fprintf(out, "%-*s %-*s %-*s %10.2f %10.2f  %-6s %7.2fx\n", wn, p->name,
                ws, p->subject, wr, p->reference, res[i].value,
                res[i].reference_value, p->unit, speedup(p, &res[i]));
    }
    fputs("\nspeedup = reference / subject (subject / reference for a rate): "
          "above 1,\nthe subject is faster.\n",
          out);
    if (s->note)
        fprintf(out, "%s\n", s->note);
}

/* ------------------------------------------------------------ options --- */

/* Parses a positive count for option `opt`; 0 on success. */
static int parse_count(const char *opt, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < 1 || v > max)
        return cli_usage_error("%s wants a whole number from 1 to %ld%s%s%s",
                               opt, max, s ? ", not '" : "", s ? s : "",
                               s ? "'" : "");
    *out = v;
    return 0;
}

/* --json, --quick, --trials N, --iters M (also --trials=N); 0 or
 * CLI_USAGE (reported). */
static int parse_opts(const bench_suite *s, int argc, char **argv,
                      bench_opts *o)
{
    bool quick = false;
    *o = (bench_opts){0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--quick")) {
            quick = true;
        } else if (len == 8 && !strncmp(a, "--trials", len)) {
            if (parse_count("--trials", val, MAX_TRIALS, &o->trials))
                return CLI_USAGE;
            i += !eq;
        } else if (len == 7 && !strncmp(a, "--iters", len)) {
            if (parse_count("--iters", val, MAX_ITERS, &o->iters))
                return CLI_USAGE;
            i += !eq;
        } else {
            return cli_usage_error("bench %s: unknown option '%s'", s->name, a);
        }
    }
    if (!o->trials)
        o->trials = quick ? QUICK_TRIALS : DEFAULT_TRIALS;
    if (!o->iters)
        o->iters = quick ? s->quick_iters : s->default_iters;
    return 0;
}

static void *idle(void *p)
{
    return p;
}

/* glibc runs its mutexes without atomic instructions while a process has
 * never had a second thread (__libc_single_threaded); locks matter only in
 * threaded programs, so every measurement runs after one thread existed. */
static int go_multithreaded(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle, NULL))
        return -1;
    return pthread_join(t, NULL) ? -1 : 0;
}

static int run_suite(const bench_suite *s, int argc, char **argv)
{
    bench_opts o;
    if (parse_opts(s, argc, argv, &o))
        return CLI_USAGE;
    if (go_multithreaded()) {
        fprintf(stderr, "racelab: bench: cannot start a thread\n");
        return CLI_FAIL;
    }
    bench_result *res = calloc(s->n_pairs, sizeof *res);
    if (!res) {
        fprintf(stderr, "racelab: bench: out of memory\n");
        return CLI_FAIL;
    }
    int rc = CLI_OK;
    for (size_t i = 0; i < s->n_pairs && rc == CLI_OK; i++)
        if (measure(&s->pairs[i], (int)o.trials, o.iters, &res[i]))
            rc = CLI_FAIL;
    if (rc == CLI_OK) {
        if (o.json)
            print_json(stdout, s, res);
        else
            print_table(stdout, s, res, &o);
        rc = fflush(stdout) ? CLI_FAIL : CLI_OK;
    }
    free(res);
    return rc;
}

/* ----------------------------------------------------------- dispatch --- */

int cli_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "seeds"))
        return cli_bench_seeds(argc - 1, argv + 1);
    char known[160] = "";
    for (size_t i = 0; i < N_SUITES; i++) {
        if (argc >= 2 && !strcmp(argv[1], suites[i]->name))
            return run_suite(suites[i], argc - 1, argv + 1);
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s, ",
                 suites[i]->name);
    }
    snprintf(known + strlen(known), sizeof known - strlen(known), "seeds");
    if (argc < 2)
        return cli_usage_error("bench: which benchmark? (%s)", known);
    return cli_usage_error("bench: unknown benchmark '%s' (known: %s)", argv[1],
                           known);
}
