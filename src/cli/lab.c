/*
 * lab.c - the lab's commands: list, run, explain, check, and the whole
 * lab (racelab with no command).
 *
 * run   prints each variant's report (or JSON) and exits 1 when any run
 *       saw a FORBIDDEN or STALE outcome: the harness' verdict, nothing
 *       more.
 * check grades variants against what they are declared to do (lab.h):
 *       a racy variant must be caught by the harness and, in a TSan
 *       build, by ThreadSanitizer (retried a few times: races depend on
 *       scheduling); a fixed variant must be caught by neither.  The ctest
 *       `lesson` tests are `racelab check LESSON.VARIANT`.
 * lab   runs every variant of every lesson and ends with the summary:
 *       exit 0 when every racy variant failed and every fix passed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lab.h"
#include "racelab/error.h"

typedef struct {
    lab_params p;
    unsigned long long trials;
    double seconds, stale_after; /* < 0: the variant's default */
    bool json, pin, quiet;
    unsigned tries;              /* check: attempts for a racy variant */
    unsigned stride;             /* --stride: most states per batch */
} run_opts;

typedef struct {
    const lab_lesson *lesson;
    const lab_variant *variant;
    int verdict;                 /* the harness': 0 pass, 1 fail */
    unsigned long long forbidden, trials;
    bool stale;
    double seconds;
    lab_tsan_counts tsan;        /* reports during this run */
    bool ok;                     /* check / lab: behaved as declared */
} run_result;

static bool parse_ull(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s || *s == '-' || !*s)
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Parses the options after the spec; returns CLI_OK or CLI_USAGE. */
static int parse_opts(int argc, char **argv, run_opts *o)
{
    /* Actors are pinned by default: on a busy machine the scheduler may
     * otherwise stack them on one CPU, where some races (a producer and a
     * consumer handing off) never interleave inside the racy window. */
    *o = (run_opts){.seconds = -1, .stale_after = -1, .tries = 5, .pin = true};
    o->p.seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long v;
        bool has = i + 1 < argc;
        if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--amplify")) {
            o->p.amplify = true;
        } else if (!strcmp(a, "--pin")) {
            o->pin = true;
        } else if (!strcmp(a, "--no-pin")) {
            o->pin = false;
        } else if (!strcmp(a, "--trials")) {
            if (!has || !parse_ull(argv[++i], &v) || !v)
                return cli_usage_error("--trials needs a positive count");
            o->trials = v;
        } else if (!strcmp(a, "--time")) {
            if (!has || !parse_ull(argv[++i], &v) || !v || v > 86400000)
                return cli_usage_error("--time needs milliseconds (1 .. 86400000)");
            o->seconds = (double)v / 1000.0;
        } else if (!strcmp(a, "--stale")) {
            if (!has || !parse_ull(argv[++i], &v) || !v || v > 86400000)
                return cli_usage_error("--stale needs milliseconds (1 .. 86400000)");
            o->stale_after = (double)v / 1000.0;
        } else if (!strcmp(a, "--threads")) {
            if (!has || !parse_ull(argv[++i], &v) || v < 2 ||
                v > RLAB_STRESS_MAX_ACTORS)
                return cli_usage_error("--threads needs 2 .. %d",
                                       RLAB_STRESS_MAX_ACTORS);
            o->p.threads = (unsigned)v;
        } else if (!strcmp(a, "--iterations")) {
            if (!has || !parse_ull(argv[++i], &v) || !v || v > 1000000000)
                return cli_usage_error("--iterations needs 1 .. 1000000000");
            o->p.iterations = (unsigned long)v;
        } else if (!strcmp(a, "--seed")) {
            if (!has || !parse_ull(argv[++i], &v))
                return cli_usage_error("--seed needs a number");
            o->p.seed = v;
        } else if (!strcmp(a, "--stride")) {
            if (!has || !parse_ull(argv[++i], &v) || !v || v > 65536)
                return cli_usage_error("--stride needs 1 .. 65536");
            o->stride = (unsigned)v;
        } else if (!strcmp(a, "--tries")) {
            if (!has || !parse_ull(argv[++i], &v) || !v || v > 1000)
                return cli_usage_error("--tries needs 1 .. 1000");
            o->tries = (unsigned)v;
        } else {
            return cli_usage_error("unknown option '%s'", a);
        }
    }
    if (o->trials && o->seconds >= 0)
        return cli_usage_error("give --trials or --time, not both");
    return CLI_OK;
}

static lab_tsan_counts tsan_since(lab_tsan_counts before)
{
    lab_tsan_counts now = lab_tsan_counts_now();
    return (lab_tsan_counts){now.races - before.races,
                             now.lock_order - before.lock_order,
                             now.other - before.other};
}

/* Runs one variant once.  Returns CLI_OK, or CLI_FAIL if the harness
 * could not run it (the reason is on stderr). */
static int run_variant(const lab_lesson *l, const lab_variant *v,
                       const run_opts *o, bool print, run_result *res)
{
    rlab_stress_test t = {0};
    v->build(&o->p, &t);
    rlab_stress_opts so = {
        .trials = o->trials ? o->trials : (o->seconds >= 0 ? 0 : v->trials),
        .seconds = o->seconds >= 0 ? o->seconds : (v->seconds > 0 ? v->seconds : 1.0),
        .stale_after = o->stale_after >= 0 ? o->stale_after
                       : v->stale_after > 0 ? v->stale_after : 2.0,
        .pin = o->pin,
        .max_stride = o->stride ? o->stride : v->max_stride,
        .progress = o->json ? NULL : stderr,
    };
    char name[128];
    snprintf(name, sizeof name, "%s.%s", l->name, v->name);
    t.name = name;
    lab_tsan_counts before = lab_tsan_counts_now();
    rlab_stress_report *r;
    int rc = rlab_stress_run(&t, &so, &r);
    if (rc) {
        fprintf(stderr, "racelab: %s: %s\n", name, rlab_strerror(rc));
        return CLI_FAIL;
    }
    *res = (run_result){l, v, rlab_stress_verdict(r), rlab_stress_forbidden(r),
                        rlab_stress_trials(r), rlab_stress_stale(r),
                        rlab_stress_seconds(r), tsan_since(before), false};
    if (print) {
        rlab_stress_print(r, stdout, o->json);
        if (!o->json) {
            if (o->p.amplify)
                puts("  (amplified: --amplify widened the race window)");
            printf("  seed %llu (--seed %llu repeats a lesson's random "
                   "choices)\n", o->p.seed, o->p.seed);
            if (lab_tsan_active())
                printf("  ThreadSanitizer: %lu data race, %lu lock-order "
                       "inversion, %lu other reports during this run\n",
                       res->tsan.races, res->tsan.lock_order, res->tsan.other);
            putchar('\n');
        }
    }
    fflush(stdout);
    rlab_stress_report_free(r);
    return CLI_OK;
}

static const char *verdict_word(const run_result *r)
{
    return r->stale ? "STALE" : r->verdict ? "FAIL" : "PASS";
}

static void print_summary(const run_result *rs, size_t n, bool graded)
{
    printf("%-32s %-5s %12s %10s %8s%s\n", "variant", "", "forbidden",
           "trials", "time", graded ? "  expected" : "");
    for (size_t i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.%s", rs[i].lesson->name,
                 rs[i].variant->name);
        printf("%-32s %-5s %12llu %10llu %7.2fs", name, verdict_word(&rs[i]),
               rs[i].forbidden, rs[i].trials, rs[i].seconds);
        if (graded)
            printf("  %s %s", rs[i].variant->racy ? "fail" : "pass",
                   rs[i].ok ? "(as expected)" : "(UNEXPECTED)");
        putchar('\n');
    }
}

/* Did the variant behave as declared?  `why` gets the reason if not. */
static bool as_declared(const run_result *r, bool harness_caught,
                        bool tsan_caught, char *why, size_t len)
{
    const lab_variant *v = r->variant;
    bool tsan = lab_tsan_active();
    if (v->racy) {
        if (!harness_caught) {
            snprintf(why, len, "the harness saw no FORBIDDEN or STALE outcome");
            return false;
        }
        if (tsan && (v->tsan == LAB_TSAN_RACE || v->tsan == LAB_TSAN_LOCK_ORDER) &&
            !tsan_caught) {
            snprintf(why, len, "ThreadSanitizer reported no %s",
                     v->tsan == LAB_TSAN_RACE ? "data race" : "lock-order inversion");
            return false;
        }
        return true;
    }
    if (harness_caught) {
        snprintf(why, len, "the harness saw a FORBIDDEN or STALE outcome");
        return false;
    }
    return true;
}

static bool tsan_kind_seen(const lab_variant *v, lab_tsan_counts c)
{
    return v->tsan == LAB_TSAN_RACE ? c.races > 0
           : v->tsan == LAB_TSAN_LOCK_ORDER ? c.lock_order > 0
                                             : false;
}

/* check: runs a racy variant until both judges caught it (at most
 * o->tries times), a fixed one once. */
static int check_variant(const lab_lesson *l, const lab_variant *v,
                         const run_opts *o, run_result *res)
{
    bool harness = false, tsan = false;
    lab_tsan_counts total = {0};
    unsigned tries = v->racy ? o->tries : 1;
    for (unsigned i = 0; i < tries; i++) {
        if (run_variant(l, v, o, !o->quiet, res))
            return CLI_FAIL;
        harness = harness || res->verdict;
        total.races += res->tsan.races;
        total.lock_order += res->tsan.lock_order;
        total.other += res->tsan.other;
        tsan = tsan || tsan_kind_seen(v, total);
        bool tsan_needed = lab_tsan_active() &&
                           (v->tsan == LAB_TSAN_RACE || v->tsan == LAB_TSAN_LOCK_ORDER);
        if (harness && (tsan || !tsan_needed))
            break;
    }
    char why[160] = "";
    res->ok = as_declared(res, harness, tsan, why, sizeof why);
    unsigned long reports = total.races + total.lock_order + total.other;
    if (res->ok && lab_tsan_active() &&
        (!v->racy || v->tsan == LAB_TSAN_BLIND) && reports) {
        snprintf(why, sizeof why, "ThreadSanitizer reported %lu problem(s)",
                 reports);
        res->ok = false;
    }
    printf("check %s.%s (%s): %s%s%s\n", l->name, v->name,
           v->racy ? "racy: must be caught" : "fixed: must pass",
           res->ok ? "ok" : "NOT OK: ", why,
           lab_tsan_active() ? " [harness + ThreadSanitizer]" : " [harness]");
    fflush(stdout);
    return res->ok ? CLI_OK : CLI_FAIL;
}

/* Resolves SPEC into a list of (lesson, variant); NULL spec: all. */
static size_t select_variants(const char *spec, const lab_lesson **ls,
                              const lab_variant **vs, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < lab_lessons_count; i++) {
        const lab_lesson *l = lab_lessons[i];
        const lab_variant *only = NULL;
        if (spec && lab_find(spec, &only) != l)
            continue;
        for (size_t v = 0; v < l->nvariants && n < cap; v++) {
            if (only && only != &l->variants[v])
                continue;
            ls[n] = l;
            vs[n++] = &l->variants[v];
        }
    }
    return n;
}

#define MAX_RUNS 256

static int run_many(const char *spec, int argc, char **argv, bool check,
                    bool summary_always)
{
    run_opts o;
    if (parse_opts(argc, argv, &o))
        return CLI_USAGE;
    if (spec && !lab_find(spec, NULL))
        return cli_usage_error("unknown lesson or variant '%s' (see racelab list)",
                               spec);
    const lab_lesson *ls[MAX_RUNS];
    const lab_variant *vs[MAX_RUNS];
    size_t n = select_variants(spec, ls, vs, MAX_RUNS);
    run_result *rs = calloc(n, sizeof *rs);
    if (!rs)
        return CLI_FAIL;
    int status = CLI_OK;
    bool json_list = o.json && n > 1;
    if (json_list)
        printf("{\"runs\": [\n");
    for (size_t i = 0; i < n; i++) {
        if (json_list && i)
            printf(",\n");
        int rc = check ? check_variant(ls[i], vs[i], &o, &rs[i])
                       : run_variant(ls[i], vs[i], &o, true, &rs[i]);
        if (!check && rc == CLI_OK)
            rs[i].ok = vs[i]->racy == (rs[i].verdict != 0);
        if (rc != CLI_OK || (!check && !summary_always && rs[i].verdict))
            status = CLI_FAIL;
        if (summary_always && !rs[i].ok)
            status = CLI_FAIL;
    }
    if (json_list)
        printf("]}\n");
    if (!o.json && (n > 1 || summary_always)) {
        print_summary(rs, n, check || summary_always);
        if (summary_always) {
            size_t ok = 0;
            for (size_t i = 0; i < n; i++)
                ok += rs[i].ok;
            printf("\n%zu of %zu variants behaved as expected: every racy "
                   "variant caught, every fix clean%s\n",
                   ok, n, ok == n ? "." : " - NOT SO, see above.");
        }
    }
    free(rs);
    return status;
}

int cli_lab_run(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage_error("run needs LESSON or LESSON.VARIANT (see racelab list)");
    return run_many(argv[1], argc - 2, argv + 2, false, false);
}

int cli_lab_check(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("check needs LESSON, LESSON.VARIANT or all");
    const char *spec = strcmp(argv[1], "all") ? argv[1] : NULL;
    return run_many(spec, argc - 2, argv + 2, true, false);
}

int cli_lab_all(int argc, char **argv)
{
    puts("racelab: the race lab.  Every lesson's racy variant should FAIL "
         "(the harness\nsees a FORBIDDEN or STALE outcome) and every fix "
         "should PASS.\n");
    return run_many(NULL, argc - 1, argv + 1, false, true);
}

/* "  variant     racy  summary", the summary wrapped at 76 columns. */
static void print_variant_line(const lab_variant *v)
{
    enum { INDENT = 21, WIDTH = 76 };
    printf("  %-12s %-5s ", v->name, v->racy ? "racy" : "fix");
    int col = 2 + 12 + 1 + 5 + 1;
    if (col > INDENT) {
        printf("\n%*s", INDENT, "");
        col = INDENT;
    }
    for (const char *p = v->summary; *p;) {
        size_t word = strcspn(p, " ");
        if (col > INDENT && col + 1 + (int)word > WIDTH) {
            printf("\n%*s", INDENT, "");
            col = INDENT;
        } else if (col > INDENT) {
            putchar(' ');
            col++;
        }
        printf("%.*s", (int)word, p);
        col += (int)word;
        p += word;
        p += strspn(p, " ");
    }
    putchar('\n');
}

int cli_lab_list(int argc, char **argv)
{
    bool names = argc == 2 && !strcmp(argv[1], "--names");
    if (argc > 1 && !names)
        return cli_usage_error("list takes no options but --names");
    for (size_t i = 0; i < lab_lessons_count; i++) {
        const lab_lesson *l = lab_lessons[i];
        if (!names)
            printf("%s\n    %s\n", l->name, l->summary);
        for (size_t v = 0; v < l->nvariants; v++) {
            const lab_variant *var = &l->variants[v];
            if (names)
                printf("%s.%s\n", l->name, var->name);
            else
                print_variant_line(var);
        }
    }
    return CLI_OK;
}

int cli_lab_explain(int argc, char **argv)
{
    if (argc != 2)
        return cli_usage_error("explain needs one LESSON (see racelab list)");
    const lab_lesson *l = lab_find(argv[1], NULL);
    if (!l)
        return cli_usage_error("unknown lesson '%s' (see racelab list)", argv[1]);
    printf("%s: %s\n\n", l->name, l->summary);
    for (const char *const *p = l->explain; p && *p; p++) {
        size_t len = strlen(*p);
        printf("%s%s\n", *p, len && (*p)[len - 1] == '\n' ? "" : "\n");
    }
    printf("variants:\n");
    for (size_t v = 0; v < l->nvariants; v++)
        print_variant_line(&l->variants[v]);
    return CLI_OK;
}
