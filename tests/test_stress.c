/*
 * test_stress.c - the stress harness, racelab/stress.h.
 *
 * What a test author relies on: argument checks; exactly `trials` states
 * when a count is asked for, each with every actor run exactly once on its
 * own thread, after init and before the arbiter, outcome and fini; states
 * that start zeroed even when the harness reuses their memory; grading
 * ("*", FORBIDDEN for keys nobody listed, INTERESTING still passing);
 * STALE for actors that never finish, in bounded time, without harming
 * the rest of the process; the table and JSON reports.
 *
 * Harness callbacks run on the harness's threads, so they never call
 * ck_assert: they count in atomics or write their own state, and the
 * outcome key shows what went wrong ("1 1 noinit" instead of "1 1").
 * Every grading table lists only the keys a correct harness produces, so
 * anything else is FORBIDDEN and the report is printed before the test
 * fails.
 *
 * The STALE tests leave actor threads blocked forever on an event that is
 * never set and never freed; under a sanitizer (CK_FORK=no) they stay in
 * the process while the later tests run, which is part of what is tested.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "racelab/stress.h"
#include "rlab_test.h"

#define MAXA RLAB_STRESS_MAX_ACTORS
#define EARLY 1e-3
#define LATE 2.0 /* a run bounded by time ends within this of its bound */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* Never set, never freed: STALE actors block on it for good. */
static rlab_event *never_set;

/* ------------------------------------------------------------ helpers --- */

/* Appends to an outcome key without overflowing it. */
static void keyf(char *key, size_t len, size_t *o, const char *fmt, ...)
{
    if (*o >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(key + *o, len - *o, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o = *o + (size_t)n < len ? *o + (size_t)n : len - 1;
}

/* What rlab_stress_print wrote, as a malloc'd string. */
static char *print_to_string(const rlab_stress_report *r, bool json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    rlab_stress_print(r, f, json);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

/* True if one line of text holds both a and b. */
static bool has_line(const char *text, const char *a, const char *b)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        ck_assert_ptr_nonnull(copy);
        bool both = strstr(copy, a) && strstr(copy, b);
        free(copy);
        if (both)
            return true;
        line += len + (end != NULL);
    }
    return false;
}

static rlab_stress_report *run_ok(const rlab_stress_test *t,
                                  const rlab_stress_opts *o)
{
    rlab_stress_report *r = NULL;
    ck_assert_rc(rlab_stress_run(t, o, &r), 0);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Fails the test with the report on stderr. */
#define ck_assert_report(r, cond)                                              \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "test_stress: %s fails on this report:\n", #cond); \
            rlab_stress_print((r), stderr, false);                             \
        }                                                                      \
        ck_assert_msg((cond), "%s", #cond);                                    \
    } while (0)

/* Asserts an atomic counter's value, naming the counter on failure. */
#define ck_assert_count(counter, want)                                         \
    do {                                                                       \
        unsigned long long rlab_c_ = atomic_load(&(counter));                  \
        unsigned long long rlab_w_ = (want);                                   \
        ck_assert_msg(rlab_c_ == rlab_w_, "%s is %llu, want %llu", #counter,   \
                      rlab_c_, rlab_w_);                                       \
    } while (0)

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fails if the process burns more than half a CPU while the test sleeps:
 * a harness thread still spinning after its run returned. */
static void assert_idle(double seconds)
{
    double c0 = cpu_now();
    rlab_test_sleep(seconds);
    double used = cpu_now() - c0;
    ck_assert_msg(used < seconds / 2,
                  "the process used %.3f s of CPU in %.3f s of idling", used,
                  seconds);
}

/* ------------------------------------------------------- a tiny JSON --- */

/* Enough JSON (RFC 8259) to check the report: a strict parser that builds
 * a tree, so a report that is not valid JSON fails to parse. */
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype type;
    bool b;
    double num;
    char *str;
    size_t n;
    struct jval *items;
    char **keys;
} jval;

typedef struct {
    char *s;
    size_t n, cap;
} jbuf;

static void jput(jbuf *b, char c)
{
    if (b->n + 1 >= b->cap) {
        b->cap = b->cap ? 2 * b->cap : 32;
        b->s = realloc(b->s, b->cap);
        ck_assert_ptr_nonnull(b->s);
    }
    b->s[b->n++] = c;
    b->s[b->n] = '\0';
}

static void jskip(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

static bool jhex4(const char **p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *(*p)++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return false;
    }
    *out = v;
    return true;
}

static void jutf8(jbuf *b, unsigned cp)
{
    if (cp < 0x80) {
        jput(b, (char)cp);
    } else if (cp < 0x800) {
        jput(b, (char)(0xC0 | cp >> 6));
        jput(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        jput(b, (char)(0xE0 | cp >> 12));
        jput(b, (char)(0x80 | (cp >> 6 & 0x3F)));
        jput(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        jput(b, (char)(0xF0 | cp >> 18));
        jput(b, (char)(0x80 | (cp >> 12 & 0x3F)));
        jput(b, (char)(0x80 | (cp >> 6 & 0x3F)));
        jput(b, (char)(0x80 | (cp & 0x3F)));
    }
}

static bool jstring(const char **p, char **out)
{
    if (**p != '"')
        return false;
    (*p)++;
    jbuf b = {0};
    jput(&b, 'x'); /* allocate; reset below */
    b.n = 0;
    b.s[0] = '\0';
    for (;;) {
        unsigned char c = (unsigned char)*(*p)++;
        if (c == '"')
            break;
        if (c < 0x20) /* a raw control character, or the end of text */
            goto bad;
        if (c != '\\') {
            jput(&b, (char)c);
            continue;
        }
        /* Escape letter, then the character it stands for. */
        static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
        char e = *(*p)++;
        const char *m = simple;
        while (*m && *m != e)
            m += 2;
        if (*m) {
            jput(&b, m[1]);
            continue;
        }
        unsigned cp;
        if (e != 'u' || !jhex4(p, &cp) || cp == 0 ||
            (cp >= 0xDC00 && cp < 0xE000))
            goto bad;
        if (cp >= 0xD800 && cp < 0xDC00) {
            unsigned lo;
            if ((*p)[0] != '\\' || (*p)[1] != 'u')
                goto bad;
            *p += 2;
            if (!jhex4(p, &lo) || lo < 0xDC00 || lo >= 0xE000)
                goto bad;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        jutf8(&b, cp);
    }
    *out = b.s;
    return true;
bad:
    free(b.s);
    return false;
}

static bool jnumber(const char **p, double *out)
{
    const char *s = *p, *q = s;
    if (*q == '-')
        q++;
    if (*q == '0')
        q++;
    else if (*q >= '1' && *q <= '9')
        while (*q >= '0' && *q <= '9')
            q++;
    else
        return false;
    if (*q == '.') {
        q++;
        if (!(*q >= '0' && *q <= '9'))
            return false;
        while (*q >= '0' && *q <= '9')
            q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!(*q >= '0' && *q <= '9'))
            return false;
        while (*q >= '0' && *q <= '9')
            q++;
    }
    *out = strtod(s, NULL);
    *p = q;
    return true;
}

static void jfree(jval *v);

static bool jvalue(const char **p, jval *v, int depth)
{
    memset(v, 0, sizeof *v);
    if (depth > 32)
        return false;
    jskip(p);
    if (**p == '{' || **p == '[') {
        bool obj = **p == '{';
        char close = obj ? '}' : ']';
        v->type = obj ? J_OBJ : J_ARR;
        (*p)++;
        jskip(p);
        if (**p == close) {
            (*p)++;
            return true;
        }
        for (;;) {
            v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
            v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
            ck_assert(v->items && v->keys);
            v->keys[v->n] = NULL;
            memset(&v->items[v->n], 0, sizeof *v->items);
            v->n++;
            if (obj) {
                jskip(p);
                if (!jstring(p, &v->keys[v->n - 1]))
                    return false;
                jskip(p);
                if (*(*p)++ != ':')
                    return false;
            }
            if (!jvalue(p, &v->items[v->n - 1], depth + 1))
                return false;
            jskip(p);
            char c = *(*p)++;
            if (c == close)
                return true;
            if (c != ',')
                return false;
        }
    }
    if (**p == '"') {
        v->type = J_STR;
        return jstring(p, &v->str);
    }
    if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "false", 5) == 0) {
        v->type = J_BOOL;
        v->b = **p == 't';
        *p += v->b ? 4 : 5;
        return true;
    }
    if (strncmp(*p, "null", 4) == 0) {
        v->type = J_NULL;
        *p += 4;
        return true;
    }
    v->type = J_NUM;
    return jnumber(p, &v->num);
}

static void jfree(jval *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

/* Parses a whole document; fails the test (showing it) if it is not one
 * JSON object. */
static void jparse(const char *text, jval *root)
{
    const char *p = text;
    bool ok = jvalue(&p, root, 0);
    if (ok) {
        jskip(&p);
        ok = *p == '\0' && root->type == J_OBJ;
    }
    if (!ok)
        fprintf(stderr, "test_stress: not a JSON object (at offset %td):\n%s\n",
                p - text, text);
    ck_assert_msg(ok, "the JSON report does not parse");
}

/* Member `key` of an object, of type `type`; fails the test if missing. */
static const jval *jget(const jval *obj, const char *key, jtype type)
{
    ck_assert_int_eq(obj->type, J_OBJ);
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) {
            ck_assert_msg(obj->items[i].type == type,
                          "JSON member \"%s\" has type %d, want %d", key,
                          obj->items[i].type, type);
            return &obj->items[i];
        }
    ck_abort_msg("JSON member \"%s\" is missing", key);
    return NULL;
}

/* The entry of "outcomes" whose "outcome" is `key`, or NULL. */
static const jval *joutcome(const jval *root, const char *key)
{
    const jval *a = jget(root, "outcomes", J_ARR);
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(jget(&a->items[i], "outcome", J_STR)->str, key) == 0)
            return &a->items[i];
    return NULL;
}

/* ------------------------------------------------- the probe test --- */

/* A state that records everything the harness did to it. */
#define INIT_MARK 0x5eed

typedef struct {
    int *handle;         /* made by init, set to 1 by outcome, freed by
                            fini */
    int mark;            /* INIT_MARK once init ran */
    bool dirty;          /* init found a byte that was not zero */
    int calls[MAXA];     /* runs of actor i on this state */
    bool noinit[MAXA];   /* actor i ran before init */
    pthread_t tid[MAXA]; /* the thread of actor i */
    int cpu[MAXA];       /* where actor i ran */
    int arb_calls;
    bool arb_early; /* the arbiter ran before every actor did */
    char pad[37];   /* an odd size */
} probe;

static const probe probe_zero;
static int p_n;           /* actors of the current run */
static bool p_arbiter;    /* the current run has an arbiter */
static const int *p_cpus; /* with pin: actor i must run on p_cpus[i % p_ncpu] */
static int p_ncpu;
static atomic_ulong p_inits, p_finis, p_outcomes, p_arbiters, p_calls;
static atomic_ulong p_fini_early, p_bad_len;

static void probe_init(void *p)
{
    probe *s = p;
    s->dirty = memcmp(s, &probe_zero, sizeof *s) != 0;
    s->mark = INIT_MARK;
    s->handle = malloc(sizeof *s->handle);
    if (!s->handle)
        abort();
    *s->handle = 0;
    atomic_fetch_add(&p_inits, 1);
}

static void probe_actor(probe *s, int i)
{
    if (s->mark != INIT_MARK)
        s->noinit[i] = true;
    s->calls[i]++;
    s->tid[i] = pthread_self();
    s->cpu[i] = sched_getcpu();
    atomic_fetch_add_explicit(&p_calls, 1, memory_order_relaxed);
}

#define PROBE_ACTOR(i)                                                         \
    static void probe_actor##i(void *p)                                        \
    {                                                                          \
        probe_actor(p, i);                                                     \
    }
PROBE_ACTOR(0)
PROBE_ACTOR(1)
PROBE_ACTOR(2)
PROBE_ACTOR(3)
PROBE_ACTOR(4)
PROBE_ACTOR(5)
PROBE_ACTOR(6)
PROBE_ACTOR(7)
static void (*const probe_actors[MAXA])(void *) = {
    probe_actor0, probe_actor1, probe_actor2, probe_actor3,
    probe_actor4, probe_actor5, probe_actor6, probe_actor7};

static void probe_arbiter(void *p)
{
    probe *s = p;
    s->arb_calls++;
    for (int i = 0; i < p_n; i++)
        if (s->calls[i] != 1)
            s->arb_early = true;
    atomic_fetch_add(&p_arbiters, 1);
}

/* "1 1 ... 1": each actor ran once, on threads of their own, after init;
 * anything else is appended as a word. */
static void probe_outcome(const void *p, char *key, size_t len)
{
    const probe *s = p;
    if (len != RLAB_STRESS_KEY_MAX)
        atomic_fetch_add(&p_bad_len, 1);
    size_t o = 0;
    key[0] = '\0';
    for (int i = 0; i < p_n; i++)
        keyf(key, len, &o, "%s%d", i ? " " : "", s->calls[i]);
    for (int i = p_n; i < MAXA; i++)
        if (s->calls[i])
            keyf(key, len, &o, " extra-actor");
    if (s->dirty)
        keyf(key, len, &o, " dirty");
    for (int i = 0; i < p_n; i++)
        if (s->noinit[i])
            keyf(key, len, &o, " noinit");
    for (int i = 0; i < p_n; i++)
        for (int j = i + 1; j < p_n; j++)
            if (pthread_equal(s->tid[i], s->tid[j]))
                keyf(key, len, &o, " shared-thread");
    if (p_arbiter && s->arb_calls != 1)
        keyf(key, len, &o, " arbiter-ran-%d", s->arb_calls);
    if (!p_arbiter && s->arb_calls)
        keyf(key, len, &o, " arbiter-unasked");
    if (s->arb_early)
        keyf(key, len, &o, " arbiter-early");
    for (int i = 0; p_cpus && i < p_n; i++)
        if (s->cpu[i] != p_cpus[i % p_ncpu])
            keyf(key, len, &o, " actor%d-on-cpu%d", i, s->cpu[i]);
    *s->handle = 1; /* the pointee is ours to mark */
    atomic_fetch_add(&p_outcomes, 1);
}

static void probe_fini(void *p)
{
    probe *s = p;
    if (*s->handle != 1)
        atomic_fetch_add(&p_fini_early, 1);
    free(s->handle);
    memset(s, 0xA5, sizeof *s); /* a reused state must be zeroed again */
    atomic_fetch_add(&p_finis, 1);
}

/* "1 1 ... 1" for n actors. */
static void ones(char *key, int n)
{
    size_t o = 0;
    for (int i = 0; i < n; i++)
        keyf(key, RLAB_STRESS_KEY_MAX, &o, "%s1", i ? " " : "");
}

static rlab_stress_test probe_test(int n, bool arbiter,
                                   const rlab_outcome *grades)
{
    p_n = n;
    p_arbiter = arbiter;
    p_cpus = NULL;
    p_ncpu = 0;
    atomic_store(&p_inits, 0);
    atomic_store(&p_finis, 0);
    atomic_store(&p_outcomes, 0);
    atomic_store(&p_arbiters, 0);
    atomic_store(&p_calls, 0);
    atomic_store(&p_fini_early, 0);
    atomic_store(&p_bad_len, 0);
    rlab_stress_test t = {.name = "probe",
                          .description = "records what the harness did",
                          .state_size = sizeof(probe),
                          .init = probe_init,
                          .arbiter = arbiter ? probe_arbiter : NULL,
                          .outcome = probe_outcome,
                          .outcomes = grades,
                          .fini = probe_fini};
    for (int i = 0; i < n; i++)
        t.actor[i] = probe_actors[i];
    return t;
}

/* Checks a finished probe run of n actors over exactly `trials` states. */
static void probe_check(const rlab_stress_report *r, int n,
                        unsigned long long trials)
{
    char want[RLAB_STRESS_KEY_MAX];
    ones(want, n);
    ck_assert_report(r, rlab_stress_trials(r) == trials);
    ck_assert_report(r, rlab_stress_samples(r, want) == trials);
    ck_assert_report(r, rlab_stress_verdict(r) == 0);
    ck_assert_report(r, rlab_stress_forbidden(r) == 0);
    ck_assert(!rlab_stress_stale(r));
    ck_assert_uint_eq(rlab_stress_samples(r, "STALE"), 0);
    ck_assert_count(p_inits, trials);
    ck_assert_count(p_outcomes, trials);
    ck_assert_count(p_finis, trials);
    ck_assert_count(p_calls, trials * (unsigned)n);
    ck_assert_count(p_arbiters, p_arbiter ? trials : 0);
    ck_assert_count(p_fini_early, 0);
    ck_assert_count(p_bad_len, 0);
}

/* Runs the probe with n actors for exactly `trials` states and checks. */
static void probe_trials(int n, bool arbiter, unsigned long long trials,
                         unsigned max_stride)
{
    char want[RLAB_STRESS_KEY_MAX];
    ones(want, n);
    const rlab_outcome grades[] = {
        {want, RLAB_ACCEPTABLE, "every actor ran once"}, {NULL, 0, NULL}};
    rlab_stress_test t = probe_test(n, arbiter, grades);
    rlab_stress_opts o = {.trials = trials, .max_stride = max_stride};
    rlab_stress_report *r = run_ok(&t, &o);
    probe_check(r, n, trials);
    rlab_stress_report_free(r);
}

/* -------------------------------------------------------- arguments --- */

static atomic_int arg_calls;

static void arg_init(void *p)
{
    (void)p;
    atomic_fetch_add(&arg_calls, 1);
}

static void arg_actor(void *p)
{
    (void)p;
    atomic_fetch_add(&arg_calls, 1);
}

static void arg_outcome(const void *p, char *key, size_t len)
{
    (void)p;
    atomic_fetch_add(&arg_calls, 1);
    snprintf(key, len, "ok");
}

static const rlab_outcome ok_grades[] = {{"ok", RLAB_ACCEPTABLE, "fine"},
                                         {NULL, 0, NULL}};

static const rlab_stress_test arg_test = {.name = "args",
                                          .state_size = sizeof(int),
                                          .init = arg_init,
                                          .actor = {arg_actor, arg_actor},
                                          .outcome = arg_outcome,
                                          .outcomes = ok_grades};

/* Expects EINVAL, *out NULL and no callback run. */
static void assert_einval(const rlab_stress_test *t, const rlab_stress_opts *o,
                          const char *what)
{
    static int sentinel;
    rlab_stress_report *r = (rlab_stress_report *)&sentinel;
    atomic_store(&arg_calls, 0);
    int rc = rlab_stress_run(t, o, &r);
    ck_assert_msg(rc == EINVAL, "%s: returned %d (%s), want EINVAL", what, rc,
                  rlab_strerror(rc));
    ck_assert_msg(r == NULL, "%s: *out was not set to NULL", what);
    ck_assert_msg(atomic_load(&arg_calls) == 0, "%s: a callback ran", what);
}

START_TEST(bad_tests_are_einval_with_out_null_and_nothing_run)
{
    const rlab_stress_opts o = {.trials = 10};
    rlab_stress_test t;

    assert_einval(NULL, &o, "NULL test");
    atomic_store(&arg_calls, 0);
    ck_assert_rc(rlab_stress_run(&arg_test, &o, NULL), EINVAL);
    ck_assert_count(arg_calls, 0);

    t = arg_test;
    t.name = NULL;
    assert_einval(&t, &o, "no name");
    t = arg_test;
    t.state_size = 0;
    assert_einval(&t, &o, "state_size 0");
    t = arg_test;
    t.outcome = NULL;
    assert_einval(&t, &o, "no outcome function");
    t = arg_test;
    t.outcomes = NULL;
    assert_einval(&t, &o, "no grading table");
    t = arg_test;
    t.actor[1] = NULL;
    assert_einval(&t, &o, "one actor");
    t = arg_test;
    t.actor[0] = t.actor[1] = NULL;
    assert_einval(&t, &o, "no actor");
    t = arg_test;
    t.actor[0] = NULL;
    t.actor[2] = arg_actor;
    assert_einval(&t, &o, "actor[0] NULL, actor[1] and [2] set");
    t = arg_test;
    t.actor[1] = NULL;
    t.actor[2] = arg_actor;
    assert_einval(&t, &o, "actor[1] NULL between two actors");

    /* The same test with valid opts runs: the checks above were about the
     * field each one cleared. */
    rlab_stress_report *r = run_ok(&arg_test, &o);
    ck_assert_uint_eq(rlab_stress_trials(r), 10);
    rlab_stress_report_free(r);
}
END_TEST

START_TEST(bad_opts_are_einval)
{
    rlab_stress_opts o = {.seconds = -1.0};
    assert_einval(&arg_test, &o, "seconds -1");
    o = (rlab_stress_opts){.seconds = NAN};
    assert_einval(&arg_test, &o, "seconds NaN");
    o = (rlab_stress_opts){.seconds = -INFINITY};
    assert_einval(&arg_test, &o, "seconds -inf");
    o = (rlab_stress_opts){.trials = 5, .seconds = NAN};
    assert_einval(&arg_test, &o, "seconds NaN beside trials");
    o = (rlab_stress_opts){.trials = 5, .stale_after = -0.5};
    assert_einval(&arg_test, &o, "stale_after -0.5");
    o = (rlab_stress_opts){.trials = 5, .stale_after = NAN};
    assert_einval(&arg_test, &o, "stale_after NaN");
}
END_TEST

START_TEST(an_impossible_state_size_fails_cleanly)
{
    /* A state size whose batch would not fit in memory, or whose size
     * times the stride overflows, is ENOMEM (or EINVAL), never a short
     * allocation.  Sanitizers abort on failed allocations by default, so
     * only plain builds can run this. */
    if (UNDER_SANITIZER)
        return;
    static const size_t sizes[] = {SIZE_MAX / 2, SIZE_MAX - 5, SIZE_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        rlab_stress_test t = arg_test;
        t.state_size = sizes[i];
        rlab_stress_opts o = {.trials = 10};
        static int sentinel;
        rlab_stress_report *r = (rlab_stress_report *)&sentinel;
        atomic_store(&arg_calls, 0);
        int rc = rlab_stress_run(&t, &o, &r);
        ck_assert_msg(rc == ENOMEM || rc == EINVAL,
                      "state_size %zu: returned %d (%s)", sizes[i], rc,
                      rlab_strerror(rc));
        ck_assert_ptr_null(r);
        ck_assert_count(arg_calls, 0);
    }
}
END_TEST

START_TEST(report_free_null_is_harmless)
{
    rlab_stress_report_free(NULL);
}
END_TEST

/* ---------------------------------------------------------- trials --- */

static const unsigned long long trial_counts[] = {
    1, 2, 63, 64, 65, 1000, 1023, 1024, 1025, 4097, 100000};

START_TEST(exactly_the_trials_asked_for_each_actor_once_per_state)
{
    probe_trials(2, false, trial_counts[_i], 0);
}
END_TEST

START_TEST(exact_trials_hold_for_any_max_stride)
{
    static const unsigned strides[] = {1, 2, 7, 64};
    for (size_t i = 0; i < sizeof strides / sizeof *strides; i++) {
        probe_trials(2, false, 1, strides[i]);
        probe_trials(3, true, 100, strides[i]);
        probe_trials(2, false, 300, strides[i]);
    }
}
END_TEST

START_TEST(trials_win_over_seconds)
{
    char want[RLAB_STRESS_KEY_MAX];
    ones(want, 2);
    const rlab_outcome grades[] = {{want, RLAB_ACCEPTABLE, "fine"},
                                   {NULL, 0, NULL}};
    rlab_stress_test t = probe_test(2, false, grades);

    /* Many more trials than a 1 ms run would hold. */
    rlab_stress_opts o = {.trials = 30000, .seconds = 0.001};
    rlab_stress_report *r = run_ok(&t, &o);
    probe_check(r, 2, 30000);
    rlab_stress_report_free(r);

    /* A few trials end the run long before its seconds. */
    t = probe_test(2, false, grades);
    o = (rlab_stress_opts){.trials = 3, .seconds = 60};
    double t0 = rlab_test_now();
    r = run_ok(&t, &o);
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
    probe_check(r, 2, 3);
    rlab_stress_report_free(r);
}
END_TEST

/* Sizes that are not a multiple of anything: states must not overlap and
 * must each start zeroed. */
static size_t odd_size;
static atomic_ulong odd_dirty;

static void odd_init(void *p)
{
    static const unsigned char zero[4096];
    unsigned char *s = p;
    for (size_t i = 0; i < odd_size; i += sizeof zero) {
        size_t n = odd_size - i < sizeof zero ? odd_size - i : sizeof zero;
        if (memcmp(s + i, zero, n))
            atomic_fetch_add(&odd_dirty, 1);
    }
    s[odd_size - 1] = 7;
}

static void odd_actor0(void *p)
{
    ((unsigned char *)p)[0] += 1;
}
static void odd_actor1(void *p)
{
    ((unsigned char *)p)[1] += 1;
}

static void odd_outcome(const void *p, char *key, size_t len)
{
    const unsigned char *s = p;
    snprintf(key, len, "%d %d %d", s[0], s[1], s[odd_size - 1]);
}

static void odd_fini(void *p)
{
    memset(p, 0xFF, odd_size);
}

START_TEST(states_of_odd_sizes_are_zeroed_and_apart)
{
    /* 1 MiB + 1: few such states fit in any sane batch, so the stride
     * must stop growing at a cap that need not be a power of two. */
    static const size_t sizes[] = {3, 13, 4097, ((size_t)1 << 20) + 1};
    static const unsigned long long trials[] = {3000, 3000, 3000, 300};
    static const rlab_outcome grades[] = {
        {"1 1 7", RLAB_ACCEPTABLE, "own bytes, zeroed, init first"},
        {NULL, 0, NULL}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        odd_size = sizes[i];
        atomic_store(&odd_dirty, 0);
        rlab_stress_test t = {.name = "odd",
                              .state_size = odd_size,
                              .init = odd_init,
                              .actor = {odd_actor0, odd_actor1},
                              .outcome = odd_outcome,
                              .outcomes = grades,
                              .fini = odd_fini};
        rlab_stress_opts o = {.trials = trials[i]};
        rlab_stress_report *r = run_ok(&t, &o);
        ck_assert_report(r, rlab_stress_samples(r, "1 1 7") == trials[i]);
        ck_assert_report(r, rlab_stress_verdict(r) == 0);
        ck_assert_count(odd_dirty, 0);
        rlab_stress_report_free(r);
    }
}
END_TEST

/* ---------------------------------------------------------- actors --- */

static const int actor_counts[] = {2, 3, 4, 8};

START_TEST(every_actor_runs_on_its_own_thread)
{
    probe_trials(actor_counts[_i], false, 2000, 0);
}
END_TEST

START_TEST(the_arbiter_runs_once_after_every_actor)
{
    probe_trials(2, true, 5000, 0);
    probe_trials(8, true, 500, 0);
}
END_TEST

/* Actor i waits for actor i+1 on the same state, so the run finishes only
 * if the actors of a state really run side by side; the wait gives up
 * after RLAB_GUARD, which shows as "gave up". */
typedef struct {
    atomic_int done[MAXA];
} chain;

static int chain_n;

static void chain_actor(chain *s, int i)
{
    if (i + 1 < chain_n) {
        double t0 = 0;
        for (unsigned spins = 0;
             !atomic_load_explicit(&s->done[i + 1], memory_order_acquire);
             spins++) {
            if (spins % 1024 == 1023) {
                if (t0 == 0)
                    t0 = rlab_test_now();
                else if (rlab_test_now() - t0 > RLAB_GUARD)
                    return; /* done[i] stays 0 */
            }
            sched_yield();
        }
    }
    atomic_store_explicit(&s->done[i], 1, memory_order_release);
}

#define CHAIN_ACTOR(i)                                                         \
    static void chain_actor##i(void *p)                                        \
    {                                                                          \
        chain_actor(p, i);                                                     \
    }
CHAIN_ACTOR(0)
CHAIN_ACTOR(1)
CHAIN_ACTOR(2)
CHAIN_ACTOR(3)
CHAIN_ACTOR(4)
CHAIN_ACTOR(5)
CHAIN_ACTOR(6)
CHAIN_ACTOR(7)
static void (*const chain_actors[MAXA])(void *) = {
    chain_actor0, chain_actor1, chain_actor2, chain_actor3,
    chain_actor4, chain_actor5, chain_actor6, chain_actor7};

static void chain_outcome(const void *p, char *key, size_t len)
{
    const chain *s = p;
    int done = 0;
    for (int i = 0; i < chain_n; i++)
        done += atomic_load_explicit(&s->done[i], memory_order_relaxed);
    snprintf(key, len, done == chain_n ? "ok" : "gave up");
}

START_TEST(the_actors_of_a_state_run_side_by_side)
{
    static const rlab_outcome grades[] = {
        {"ok", RLAB_ACCEPTABLE, "every actor saw its neighbour"},
        {NULL, 0, NULL}};
    for (size_t k = 0; k < sizeof actor_counts / sizeof *actor_counts; k++) {
        chain_n = actor_counts[k];
        rlab_stress_test t = {.name = "chain",
                              .state_size = sizeof(chain),
                              .outcome = chain_outcome,
                              .outcomes = grades};
        for (int i = 0; i < chain_n; i++)
            t.actor[i] = chain_actors[i];
        rlab_stress_opts o = {.trials = 300, .stale_after = 5.0};
        rlab_stress_report *r = run_ok(&t, &o);
        ck_assert_report(r, rlab_stress_samples(r, "ok") == 300);
        ck_assert_report(r, rlab_stress_verdict(r) == 0);
        rlab_stress_report_free(r);
    }
}
END_TEST

START_TEST(pin_puts_actor_i_on_cpu_i_mod_the_cpus_we_may_use)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int cpus[CPU_SETSIZE], ncpu = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            cpus[ncpu++] = c;
    ck_assert_int_gt(ncpu, 0);

    for (int n = 2; n <= 3; n++) {
        char want[RLAB_STRESS_KEY_MAX];
        ones(want, n);
        const rlab_outcome grades[] = {{want, RLAB_ACCEPTABLE, "fine"},
                                       {NULL, 0, NULL}};
        rlab_stress_test t = probe_test(n, false, grades);
        p_cpus = cpus;
        p_ncpu = ncpu;
        rlab_stress_opts o = {.trials = 500, .pin = true};
        rlab_stress_report *r = run_ok(&t, &o);
        probe_check(r, n, 500);
        rlab_stress_report_free(r);
    }
    p_cpus = NULL;
}
END_TEST

/* ------------------------------------------------------------ time --- */

START_TEST(seconds_bound_the_run)
{
    char want[RLAB_STRESS_KEY_MAX];
    ones(want, 2);
    const rlab_outcome grades[] = {{want, RLAB_ACCEPTABLE, "fine"},
                                   {NULL, 0, NULL}};
    rlab_stress_test t = probe_test(2, false, grades);
    rlab_stress_opts o = {.seconds = 0.2};
    double t0 = rlab_test_now();
    rlab_stress_report *r = run_ok(&t, &o);
    double dt = rlab_test_now() - t0;
    ck_assert_double_ge(dt, 0.2 - EARLY);
    ck_assert_double_lt(dt, 0.2 + LATE);
    ck_assert_double_ge(rlab_stress_seconds(r), 0.2 - EARLY);
    ck_assert_double_le(rlab_stress_seconds(r), dt);
    ck_assert_uint_gt(rlab_stress_trials(r), 0);
    probe_check(r, 2, rlab_stress_trials(r));
    rlab_stress_report_free(r);
}
END_TEST

START_TEST(seconds_zero_means_one_and_progress_is_quiet_off_a_terminal)
{
    char want[RLAB_STRESS_KEY_MAX];
    ones(want, 2);
    const rlab_outcome grades[] = {{want, RLAB_ACCEPTABLE, "fine"},
                                   {NULL, 0, NULL}};
    rlab_stress_test t = probe_test(2, false, grades);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    rlab_stress_opts o = {.progress = f};
    double t0 = rlab_test_now();
    rlab_stress_report *r = run_ok(&t, &o);
    double dt = rlab_test_now() - t0;
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(len == 0, "progress written to a non-terminal: \"%s\"", buf);
    free(buf);
    ck_assert_double_ge(dt, 1.0 - EARLY);
    ck_assert_double_lt(dt, 1.0 + LATE);
    ck_assert_double_ge(rlab_stress_seconds(r), 1.0 - EARLY);
    probe_check(r, 2, rlab_stress_trials(r));
    rlab_stress_report_free(r);
}
END_TEST

/* Actors that take 50 ms a state: slow, not stuck.  The stride must start
 * small enough that a batch stays well below stale_after. */
static void slow_actor(void *p)
{
    (void)p;
    rlab_test_sleep(0.05);
}

static void quick_actor(void *p)
{
    (void)p;
}

static void ok_outcome(const void *p, char *key, size_t len)
{
    (void)p;
    snprintf(key, len, "ok");
}

START_TEST(slow_actors_are_not_stale)
{
    rlab_stress_test t = {.name = "slow",
                          .state_size = 1,
                          .actor = {slow_actor, quick_actor},
                          .outcome = ok_outcome,
                          .outcomes = ok_grades};
    rlab_stress_opts o = {.seconds = 0.3, .stale_after = 0.3};
    double t0 = rlab_test_now();
    rlab_stress_report *r = run_ok(&t, &o);
    ck_assert_double_lt(rlab_test_now() - t0, 0.3 + LATE);
    ck_assert_report(r, !rlab_stress_stale(r));
    ck_assert_report(r, rlab_stress_verdict(r) == 0);
    ck_assert_report(r, rlab_stress_trials(r) > 0);
    ck_assert_report(r, rlab_stress_samples(r, "ok") == rlab_stress_trials(r));
    rlab_stress_report_free(r);

    /* By count: 8 states of 50 ms would be stale as one batch. */
    o = (rlab_stress_opts){.trials = 8, .stale_after = 0.3};
    r = run_ok(&t, &o);
    ck_assert_report(r, !rlab_stress_stale(r));
    ck_assert_report(r, rlab_stress_samples(r, "ok") == 8);
    ck_assert_report(r, rlab_stress_verdict(r) == 0);
    rlab_stress_report_free(r);
}
END_TEST

/* --------------------------------------------------------- grading --- */

/* A state numbered by init; the outcome names it by its number, so the
 * tally of each key is known exactly. */
typedef struct {
    unsigned long seq;
} dealt;

static atomic_ulong deal_seq;
static const char *(*deal_name)(unsigned long seq);

static void deal_init(void *p)
{
    ((dealt *)p)->seq = atomic_fetch_add(&deal_seq, 1);
}

static void deal_outcome(const void *p, char *key, size_t len)
{
    snprintf(key, len, "%s", deal_name(((const dealt *)p)->seq));
}

/* a, b, c, d in turn: 250 each of 1000. */
static const char *abcd(unsigned long seq)
{
    static const char *const names[] = {"a", "b", "c", "d"};
    return names[seq % 4];
}

/* most 60%, some 30%, few 10%: alphabetical order is not frequency order. */
static const char *most_some_few(unsigned long seq)
{
    return seq % 10 < 6 ? "most" : seq % 10 < 9 ? "some" : "few";
}

static rlab_stress_report *deal(const char *(*name)(unsigned long),
                                const rlab_outcome *grades, const char *tname,
                                unsigned long long trials)
{
    atomic_store(&deal_seq, 0);
    deal_name = name;
    rlab_stress_test t = {.name = tname,
                          .description = "outcomes dealt by state number",
                          .state_size = sizeof(dealt),
                          .init = deal_init,
                          .actor = {quick_actor, quick_actor},
                          .outcome = deal_outcome,
                          .outcomes = grades};
    rlab_stress_opts o = {.trials = trials};
    rlab_stress_report *r = run_ok(&t, &o);
    ck_assert_report(r, rlab_stress_trials(r) == trials);
    return r;
}

START_TEST(star_grades_every_unlisted_key)
{
    static const rlab_outcome grades[] = {
        {"a", RLAB_ACCEPTABLE, "listed"},
        {"b", RLAB_INTERESTING, "listed, worth showing"},
        {"e", RLAB_FORBIDDEN, "listed, never seen"},
        {"*", RLAB_ACCEPTABLE, "anything else"},
        {NULL, 0, NULL}};
    rlab_stress_report *r = deal(abcd, grades, "star", 1000);
    ck_assert_report(r, rlab_stress_verdict(r) == 0);
    ck_assert_report(r, rlab_stress_forbidden(r) == 0);
    ck_assert_report(r, !rlab_stress_stale(r));
    static const char *const keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        ck_assert_report(r, rlab_stress_samples(r, keys[i]) == 250);
    ck_assert_uint_eq(rlab_stress_samples(r, "e"), 0);
    ck_assert_uint_eq(rlab_stress_samples(r, "zz"), 0);
    ck_assert_uint_eq(rlab_stress_samples(r, ""), 0);
    ck_assert_uint_eq(rlab_stress_samples(r, "STALE"), 0);
    rlab_stress_report_free(r);

    /* "*" as FORBIDDEN: only the unlisted c and d count. */
    static const rlab_outcome star_forbidden[] = {
        {"a", RLAB_ACCEPTABLE, NULL},
        {"b", RLAB_INTERESTING, NULL},
        {"*", RLAB_FORBIDDEN, "nothing else"},
        {NULL, 0, NULL}};
    r = deal(abcd, star_forbidden, "star-forbidden", 1000);
    ck_assert_report(r, rlab_stress_verdict(r) == 1);
    ck_assert_report(r, rlab_stress_forbidden(r) == 500);
    rlab_stress_report_free(r);
}
END_TEST

START_TEST(a_key_nobody_listed_is_forbidden)
{
    static const rlab_outcome grades[] = {{"a", RLAB_ACCEPTABLE, NULL},
                                          {"b", RLAB_INTERESTING, NULL},
                                          {NULL, 0, NULL}};
    rlab_stress_report *r = deal(abcd, grades, "unlisted", 1000);
    ck_assert_report(r, rlab_stress_verdict(r) == 1);
    ck_assert_report(r, rlab_stress_forbidden(r) == 500);
    ck_assert_report(r, rlab_stress_samples(r, "c") == 250);
    ck_assert_report(r, rlab_stress_samples(r, "d") == 250);
    ck_assert(!rlab_stress_stale(r));
    rlab_stress_report_free(r);
}
END_TEST

START_TEST(interesting_passes_and_forbidden_fails)
{
    static const rlab_outcome interesting[] = {{"a", RLAB_INTERESTING, NULL},
                                               {"*", RLAB_INTERESTING, NULL},
                                               {NULL, 0, NULL}};
    rlab_stress_report *r = deal(abcd, interesting, "interesting", 1000);
    ck_assert_report(r, rlab_stress_verdict(r) == 0);
    ck_assert_report(r, rlab_stress_forbidden(r) == 0);
    rlab_stress_report_free(r);

    static const rlab_outcome one_forbidden[] = {
        {"c", RLAB_FORBIDDEN, "the bug"},
        {"*", RLAB_ACCEPTABLE, NULL},
        {NULL, 0, NULL}};
    r = deal(abcd, one_forbidden, "forbidden", 1000);
    ck_assert_report(r, rlab_stress_verdict(r) == 1);
    ck_assert_report(r, rlab_stress_forbidden(r) == 250);
    rlab_stress_report_free(r);

    /* A single forbidden sample is enough. */
    r = deal(abcd, one_forbidden, "forbidden-once", 3);
    ck_assert_report(r, rlab_stress_samples(r, "c") == 1);
    ck_assert_report(r, rlab_stress_verdict(r) == 1);
    ck_assert_report(r, rlab_stress_forbidden(r) == 1);
    rlab_stress_report_free(r);
}
END_TEST

/* ----------------------------------------------------------- print --- */

START_TEST(the_table_shows_every_outcome_its_samples_and_the_verdict)
{
    static const rlab_outcome grades[] = {
        {"most", RLAB_ACCEPTABLE, "most of them"},
        {"some", RLAB_INTERESTING, "a reordering"},
        {"never", RLAB_FORBIDDEN, "the impossible one"},
        {"*", RLAB_ACCEPTABLE, "anything else"},
        {NULL, 0, NULL}};
    rlab_stress_report *r = deal(most_some_few, grades, "table-test", 1000);
    char *text = print_to_string(r, false);
    static const char *const rows[][2] = {
        {"most", "600"},          {"some", "300"},
        {"few", "100"},           {"never", "0"},
        {"some", "a reordering"}, {"never", "the impossible one"}};
    static const char *const words[] = {"table-test", "1000", "PASS"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        ck_assert_msg(strstr(text, words[i]), "no \"%s\" in:\n%s", words[i],
                      text);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        ck_assert_msg(has_line(text, rows[i][0], rows[i][1]),
                      "no line with \"%s\" and \"%s\" in:\n%s", rows[i][0],
                      rows[i][1], text);
    ck_assert_msg(!strstr(text, "FAIL"), "FAIL in a passing table:\n%s", text);
    free(text);
    rlab_stress_report_free(r);

    static const rlab_outcome strict[] = {{"most", RLAB_ACCEPTABLE, NULL},
                                          {NULL, 0, NULL}};
    r = deal(most_some_few, strict, "table-fail", 1000);
    text = print_to_string(r, false);
    ck_assert_msg(strstr(text, "FAIL"), "no FAIL in:\n%s", text);
    ck_assert_msg(has_line(text, "some", "300") && has_line(text, "few", "100"),
                  "forbidden keys missing from:\n%s", text);
    free(text);
    rlab_stress_report_free(r);
}
END_TEST

/* Case-insensitive: the grade's word in "expect". */
static void assert_expect(const jval *entry, const char *word)
{
    const char *e = jget(entry, "expect", J_STR)->str;
    ck_assert_msg(strcasestr(e, word), "expect \"%s\", want a \"%s\"", e, word);
}

START_TEST(json_has_every_field_in_order_of_frequency)
{
    static const rlab_outcome grades[] = {
        {"never", RLAB_FORBIDDEN, "the impossible one"},
        {"some", RLAB_INTERESTING, "a reordering"},
        {"most", RLAB_ACCEPTABLE, "most of them"},
        {"*", RLAB_ACCEPTABLE, "anything else"},
        {NULL, 0, NULL}};
    rlab_stress_report *r = deal(most_some_few, grades, "json-test", 1000);
    char *text = print_to_string(r, true);
    jval root;
    jparse(text, &root);

    ck_assert_str_eq(jget(&root, "test", J_STR)->str, "json-test");
    ck_assert_double_eq(jget(&root, "trials", J_NUM)->num, 1000);
    double secs = jget(&root, "seconds", J_NUM)->num;
    ck_assert(secs >= 0 && secs < 60);
    double tps = jget(&root, "trials_per_second", J_NUM)->num;
    ck_assert(tps > 0 && isfinite(tps));
    ck_assert_str_eq(jget(&root, "verdict", J_STR)->str, "PASS");
    ck_assert(!jget(&root, "stale", J_BOOL)->b);

    /* Most frequent first, then the table's unseen entries. */
    const jval *a = jget(&root, "outcomes", J_ARR);
    ck_assert_uint_ge(a->n, 4);
    static const char *const order[] = {"most", "some", "few", "never"};
    static const double samples[] = {600, 300, 100, 0};
    for (int i = 0; i < 4; i++) {
        const jval *e = &a->items[i];
        ck_assert_str_eq(jget(e, "outcome", J_STR)->str, order[i]);
        ck_assert_double_eq(jget(e, "samples", J_NUM)->num, samples[i]);
        jget(e, "frequency", J_NUM);
        jget(e, "description", J_STR);
    }
    const jval *ea = joutcome(&root, "most"), *eb = joutcome(&root, "some"),
               *ec = joutcome(&root, "few"), *en = joutcome(&root, "never");
    double fa = jget(ea, "frequency", J_NUM)->num;
    double fb = jget(eb, "frequency", J_NUM)->num;
    ck_assert(fa > 0 && fabs(fa / fb - 2.0) < 1e-3);
    ck_assert_double_eq(jget(en, "frequency", J_NUM)->num, 0);
    assert_expect(ea, "accept");
    assert_expect(eb, "interest");
    assert_expect(ec, "accept"); /* graded by "*" */
    assert_expect(en, "forbid");
    ck_assert_str_eq(jget(eb, "description", J_STR)->str, "a reordering");
    ck_assert_str_eq(jget(ec, "description", J_STR)->str, "anything else");
    jfree(&root);
    free(text);
    rlab_stress_report_free(r);

    /* A failing run says FAIL and grades the unlisted key FORBIDDEN. */
    static const rlab_outcome strict[] = {
        {"most", RLAB_ACCEPTABLE, "only most"}, {NULL, 0, NULL}};
    r = deal(most_some_few, strict, "json-fail", 100);
    text = print_to_string(r, true);
    jparse(text, &root);
    ck_assert_str_eq(jget(&root, "verdict", J_STR)->str, "FAIL");
    assert_expect(joutcome(&root, "few"), "forbid");
    jfree(&root);
    free(text);
    rlab_stress_report_free(r);
}
END_TEST

/* Keys, names and descriptions with characters JSON must escape. */
static const char *nasty(unsigned long seq)
{
    static const char *const names[] = {"a\"b\\c", "tab\there", "ctl\x01/\x1f",
                                        "nl\nutf8 \xc3\xa9"};
    return names[seq % 4];
}

START_TEST(json_escapes_quotes_backslashes_and_control_characters)
{
    static const rlab_outcome grades[] = {
        {"a\"b\\c", RLAB_ACCEPTABLE, "says \"hi\" \\ bye"},
        {"*", RLAB_ACCEPTABLE, "line\nbreak"},
        {NULL, 0, NULL}};
    rlab_stress_report *r = deal(nasty, grades, "q\"uote\\", 400);
    char *text = print_to_string(r, true);
    ck_assert_msg(strstr(text, "a\\\"b\\\\c"), "key not escaped in:\n%s", text);
    jval root;
    jparse(text, &root);
    ck_assert_str_eq(jget(&root, "test", J_STR)->str, "q\"uote\\");
    for (unsigned long i = 0; i < 4; i++) {
        const jval *e = joutcome(&root, nasty(i));
        ck_assert_msg(e, "outcome %lu lost in:\n%s", i, text);
        ck_assert_double_eq(jget(e, "samples", J_NUM)->num, 100);
    }
    ck_assert_str_eq(
        jget(joutcome(&root, "a\"b\\c"), "description", J_STR)->str,
        "says \"hi\" \\ bye");
    jfree(&root);
    free(text);
    /* The table needs no escaping, but must still hold every key. */
    text = print_to_string(r, false);
    ck_assert_msg(strstr(text, "a\"b\\c"), "key missing from:\n%s", text);
    free(text);
    rlab_stress_report_free(r);
}
END_TEST

/* An outcome that fills its whole buffer, and one that asks for more. */
static void full_outcome(const void *p, char *key, size_t len)
{
    (void)p;
    memset(key, 'k', len - 1);
    key[len - 1] = '\0';
}

static void long_outcome(const void *p, char *key, size_t len)
{
    (void)p;
    char big[3 * RLAB_STRESS_KEY_MAX];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(key, len, "%s", big);
}

START_TEST(keys_are_at_most_key_max_minus_one)
{
    char longest[RLAB_STRESS_KEY_MAX];
    memset(longest, 'k', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    static const rlab_outcome grades[] = {{"*", RLAB_ACCEPTABLE, NULL},
                                          {NULL, 0, NULL}};
    void (*fns[])(const void *, char *, size_t) = {full_outcome, long_outcome};
    for (int i = 0; i < 2; i++) {
        rlab_stress_test t = {.name = "long",
                              .state_size = 1,
                              .actor = {quick_actor, quick_actor},
                              .outcome = fns[i],
                              .outcomes = grades};
        rlab_stress_opts o = {.trials = 200};
        rlab_stress_report *r = run_ok(&t, &o);
        ck_assert_report(r, rlab_stress_samples(r, longest) == 200);
        char *text = print_to_string(r, false);
        ck_assert(strstr(text, longest));
        free(text);
        text = print_to_string(r, true);
        jval root;
        jparse(text, &root);
        ck_assert_ptr_nonnull(joutcome(&root, longest));
        jfree(&root);
        free(text);
        rlab_stress_report_free(r);
    }
}
END_TEST

/* ----------------------------------------------------------- stale --- */

/* Each STALE test has its own context, so threads it leaves behind cannot
 * disturb the counters of a later test. */
#define EVERY ULONG_MAX

typedef struct {
    atomic_ulong seq, inits, calls, outcomes, arbiters, finis;
    atomic_bool touched_stuck; /* arbiter, outcome or fini saw the state */
    unsigned long stuck_seq;   /* the state that blocks, or EVERY */
    int stuck_actor;
    double wake_after; /* 0: never */
    rlab_event *woke;  /* set by an actor that woke and returned */
    atomic_long woke_tid;
} stale_ctx;

typedef struct {
    stale_ctx *ctx;
    unsigned long seq;
    int late_write;
} stale_state;

static stale_ctx *stale_current; /* read by init only */

static void stale_init(void *p)
{
    stale_state *s = p;
    s->ctx = stale_current;
    s->seq = atomic_fetch_add(&s->ctx->seq, 1);
    atomic_fetch_add(&s->ctx->inits, 1);
}

static bool is_stuck(const stale_state *s)
{
    return s->ctx->stuck_seq == EVERY || s->seq == s->ctx->stuck_seq;
}

static void stale_actor(stale_state *s, int i)
{
    stale_ctx *c = s->ctx;
    atomic_fetch_add(&c->calls, 1);
    if (i != c->stuck_actor || !is_stuck(s))
        return;
    if (c->wake_after == 0) {
        rlab_event_wait(never_set, RLAB_FOREVER);
        return;
    }
    atomic_store(&c->woke_tid, (long)syscall(SYS_gettid));
    rlab_event_wait(never_set, c->wake_after);
    s->late_write = 1; /* the harness must have kept the state */
    rlab_event_set(c->woke);
}

static void stale_actor0(void *p)
{
    stale_actor(p, 0);
}
static void stale_actor1(void *p)
{
    stale_actor(p, 1);
}

static void stale_arbiter(void *p)
{
    stale_state *s = p;
    if (is_stuck(s))
        atomic_store(&s->ctx->touched_stuck, true);
    atomic_fetch_add(&s->ctx->arbiters, 1);
}

static void stale_outcome(const void *p, char *key, size_t len)
{
    const stale_state *s = p;
    if (is_stuck(s))
        atomic_store(&s->ctx->touched_stuck, true);
    atomic_fetch_add(&s->ctx->outcomes, 1);
    snprintf(key, len, "ok");
}

static void stale_fini(void *p)
{
    stale_state *s = p;
    if (is_stuck(s))
        atomic_store(&s->ctx->touched_stuck, true);
    atomic_fetch_add(&s->ctx->finis, 1);
}

static const rlab_outcome stale_grades[] = {
    {"ok", RLAB_ACCEPTABLE, "finished"},
    {"*", RLAB_ACCEPTABLE, "never matches STALE"},
    {NULL, 0, NULL}};

/* Runs a test whose actor blocks; checks what every STALE run must show
 * and that the harness left nothing running. */
static rlab_stress_report *run_stale(stale_ctx *c, const rlab_outcome *grades)
{
    stale_current = c;
    rlab_stress_test t = {.name = "stuck",
                          .state_size = sizeof(stale_state),
                          .init = stale_init,
                          .actor = {stale_actor0, stale_actor1},
                          .arbiter = stale_arbiter,
                          .outcome = stale_outcome,
                          .outcomes = grades,
                          .fini = stale_fini};
    rlab_stress_opts o = {.seconds = 60, .stale_after = 0.2};
    double t0 = rlab_test_now();
    rlab_stress_report *r = run_ok(&t, &o);
    double dt = rlab_test_now() - t0;
    ck_assert_msg(dt < 5.0, "a STALE run took %.2f s", dt);
    ck_assert_report(r, rlab_stress_stale(r));
    ck_assert_report(r, rlab_stress_verdict(r) == 1);
    ck_assert_report(r, rlab_stress_samples(r, "STALE") == 1);
    ck_assert_report(r, rlab_stress_forbidden(r) == 1);
    ck_assert_report(r, rlab_stress_samples(r, "ok") == rlab_stress_trials(r));
    ck_assert_double_ge(rlab_stress_seconds(r), 0.2 - EARLY);
    ck_assert_double_le(rlab_stress_seconds(r), dt);
    ck_assert_count(c->outcomes, rlab_stress_trials(r));
    ck_assert_count(c->arbiters, rlab_stress_trials(r));
    unsigned long long inits = atomic_load(&c->inits);
    ck_assert_uint_lt(rlab_stress_trials(r), inits); /* the stuck state */
    ck_assert_msg(!atomic_load(&c->touched_stuck),
                  "arbiter, outcome or fini ran on the stuck state");
    return r;
}

/* Nothing of the run keeps working once it returned. */
static void assert_run_over(stale_ctx *c)
{
    unsigned long inits = atomic_load(&c->inits),
                  calls = atomic_load(&c->calls),
                  outcomes = atomic_load(&c->outcomes),
                  finis = atomic_load(&c->finis);
    assert_idle(0.2);
    ck_assert_count(c->inits, inits);
    ck_assert_count(c->calls, calls);
    ck_assert_count(c->outcomes, outcomes);
    ck_assert_count(c->finis, finis);
}

START_TEST(an_actor_stuck_on_one_state_ends_the_run_stale)
{
    static stale_ctx c = {.stuck_seq = 300, .stuck_actor = 1};
    rlab_stress_report *r = run_stale(&c, stale_grades);
    unsigned long long finis = atomic_load(&c.finis);
    ck_assert_count(c.outcomes, finis); /* fini right after each outcome */
    rlab_stress_report_free(r);
    assert_run_over(&c);
    /* The process goes on: another run works. */
    probe_trials(2, true, 1000, 0);
}
END_TEST

START_TEST(actors_stuck_on_every_state_end_the_run_stale_with_no_trials)
{
    static stale_ctx c = {.stuck_seq = EVERY, .stuck_actor = 0};
    /* STALE is a failure even when the table lists it as acceptable. */
    static const rlab_outcome listed[] = {
        {"STALE", RLAB_ACCEPTABLE, "listed anyway"},
        {"*", RLAB_ACCEPTABLE, NULL},
        {NULL, 0, NULL}};
    rlab_stress_report *r = run_stale(&c, listed);
    ck_assert_report(r, rlab_stress_trials(r) == 0);

    char *text = print_to_string(r, true);
    jval root;
    jparse(text, &root);
    ck_assert_str_eq(jget(&root, "verdict", J_STR)->str, "FAIL");
    ck_assert(jget(&root, "stale", J_BOOL)->b);
    ck_assert_double_eq(jget(&root, "trials", J_NUM)->num, 0);
    const jval *e = joutcome(&root, "STALE");
    ck_assert_msg(e, "no STALE outcome in:\n%s", text);
    ck_assert_double_eq(jget(e, "samples", J_NUM)->num, 1);
    double tps = jget(&root, "trials_per_second", J_NUM)->num;
    ck_assert(isfinite(tps) && tps >= 0);
    jfree(&root);
    free(text);
    text = print_to_string(r, false);
    ck_assert_msg(strstr(text, "STALE") && strstr(text, "FAIL"),
                  "STALE or FAIL missing from:\n%s", text);
    free(text);
    rlab_stress_report_free(r);

    assert_run_over(&c);
    probe_trials(3, true, 1000, 0);
}
END_TEST

/* The scheduler state of one of our threads, or 0 once it is gone. */
static char task_state(long tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

START_TEST(an_actor_that_returns_after_the_run_ended_stale_harms_nothing)
{
    static stale_ctx c = {.stuck_seq = 0, .stuck_actor = 0, .wake_after = 0.6};
    c.woke = rlab_event_new();
    ck_assert_ptr_nonnull(c.woke);
    rlab_stress_report *r = run_stale(&c, stale_grades);
    rlab_stress_report_free(r);

    /* The actor wakes, writes its state and returns into the harness,
     * which must neither crash nor spin. */
    ck_assert_rc(rlab_event_wait(c.woke, RLAB_GUARD), 0);
    long tid = atomic_load(&c.woke_tid);
    double t0 = rlab_test_now();
    char st;
    while ((st = task_state(tid)) != 0 && st != 'S') {
        ck_assert_msg(rlab_test_now() - t0 < RLAB_GUARD,
                      "the late actor's thread neither ended nor slept");
        sched_yield();
    }
    assert_run_over(&c);
    probe_trials(2, false, 1000, 0);
    /* c.woke stays: a slow harness thread might still look at it. */
}
END_TEST

int main(void)
{
    never_set = rlab_event_new();
    if (!never_set)
        return EXIT_FAILURE;
    Suite *s = suite_create("stress");

    TCase *tc = tcase_create("arguments");
    tcase_add_test(tc, bad_tests_are_einval_with_out_null_and_nothing_run);
    tcase_add_test(tc, bad_opts_are_einval);
    tcase_add_test(tc, an_impossible_state_size_fails_cleanly);
    tcase_add_test(tc, report_free_null_is_harmless);
    suite_add_tcase(s, tc);

    /* Early, so that under CK_FORK=no the later tests share the process
     * with the threads these leave behind. */
    tc = tcase_create("stale");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, an_actor_stuck_on_one_state_ends_the_run_stale);
    tcase_add_test(
        tc, actors_stuck_on_every_state_end_the_run_stale_with_no_trials);
    tcase_add_test(
        tc, an_actor_that_returns_after_the_run_ended_stale_harms_nothing);
    tcase_add_test(tc, slow_actors_are_not_stale);
    suite_add_tcase(s, tc);

    tc = tcase_create("trials");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc,
                        exactly_the_trials_asked_for_each_actor_once_per_state,
                        0, sizeof trial_counts / sizeof *trial_counts);
    tcase_add_test(tc, exact_trials_hold_for_any_max_stride);
    tcase_add_test(tc, trials_win_over_seconds);
    tcase_add_test(tc, states_of_odd_sizes_are_zeroed_and_apart);
    suite_add_tcase(s, tc);

    tc = tcase_create("actors");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, every_actor_runs_on_its_own_thread, 0,
                        sizeof actor_counts / sizeof *actor_counts);
    tcase_add_test(tc, the_arbiter_runs_once_after_every_actor);
    tcase_add_test(tc, the_actors_of_a_state_run_side_by_side);
    tcase_add_test(tc, pin_puts_actor_i_on_cpu_i_mod_the_cpus_we_may_use);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, seconds_bound_the_run);
    tcase_add_test(tc,
                   seconds_zero_means_one_and_progress_is_quiet_off_a_terminal);
    suite_add_tcase(s, tc);

    tc = tcase_create("grading");
    tcase_add_test(tc, star_grades_every_unlisted_key);
    tcase_add_test(tc, a_key_nobody_listed_is_forbidden);
    tcase_add_test(tc, interesting_passes_and_forbidden_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("print");
    tcase_add_test(tc,
                   the_table_shows_every_outcome_its_samples_and_the_verdict);
    tcase_add_test(tc, json_has_every_field_in_order_of_frequency);
    tcase_add_test(tc, json_escapes_quotes_backslashes_and_control_characters);
    tcase_add_test(tc, keys_are_at_most_key_max_minus_one);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
