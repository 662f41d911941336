/*
 * bench_seeds.c - racelab bench seeds: the source material's tables.
 *
 * Every workload in every mode, with 1, 2 and 4 workers: the CPU-bound
 * ones (factorize, count_prime, rc4, sha256) sequentially, on a
 * ThreadPoolExecutor, on threads under the simulated GIL and on a
 * ProcessPoolExecutor; the I/O-bound flag download (21 flags from a local
 * flagserver with 100 ms of latency) in the same modes plus libcurl's
 * multi interface, and with 21 workers as the source material runs it.
 * Each figure is the median wall time of several runs, from the first
 * task to the last result (pools and jobs are made before, so the figure
 * is the work, not the start-up), and every run is checked (factors,
 * prime counts, round trips, digests, verified flag files).  speedup is
 * the sequential time over the mode's.
 *
 * Under the GIL a task holds the simulated GIL while it computes and the
 * workload's inner loops call rlab_gil_check at their back-edges; sha256
 * releases it around OpenSSL, as hashlib does for data above 2 KiB, and a
 * download releases it around the transfer, as any blocking call does.
 *
 * --plot DIR writes seeds.csv and, per workload, a gnuplot script and the
 * SVG chart it draws (speedup against workers, one line per mode).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "flags.h"
#include "racelab.h"
#include "workloads.h"

#define MAX_ROWS 128

typedef enum { M_SEQ, M_THREADS, M_GIL, M_PROCS, M_MULTI, M_COUNT } mode;

static const char *const mode_names[M_COUNT] = {
    "sequential", "threads", "gil_threads", "processes", "multi"};

typedef struct {
    const char *workload;
    mode m;
    int workers;
    double seconds, speedup;
} row;

typedef struct {
    bool json, quick;
    const char *plot;
    const char *base; /* a flagserver to use; NULL: start one */
    long trials;
    double scale;
    row rows[MAX_ROWS];
    int nrows;
} seeds;

static double now_s(void)
{
    return cli_now();
}

/* ------------------------------------------------------ CPU workloads --- */

/* The GIL every gil_threads run shares, and its hook. */
static rlab_gil *the_gil;

static void gil_tick(void *ctx)
{
    rlab_gil_check(ctx);
}

static void gil_release(void *ctx)
{
    rlab_gil_begin_blocking(ctx);
}

static void gil_reacquire(void *ctx)
{
    rlab_gil_end_blocking(ctx);
}

static int gil_unit_task(void *unit, void **result)
{
    int rc = rlab_gil_acquire(the_gil, BENCH_GUARD);
    if (rc)
        return rc;
    rc = rlab_wl_unit_task(unit, result);
    int rel = rlab_gil_release(the_gil);
    return rc ? rc : rel;
}

/* One run of job in mode m on ex (NULL for sequential): its wall seconds,
 * or -1 (said why) when a call failed or the check did not hold. */
static double cpu_run(rlab_wl_job *job, mode m, rlab_executor *ex,
                      const char *what)
{
    rlab_wl_job_reset(job);
    size_t n = rlab_wl_job_units(job);
    void **args = calloc(n, sizeof *args);
    void **res = calloc(n, sizeof *res);
    int *codes = calloc(n, sizeof *codes);
    int rc = args && res && codes ? 0 : ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        args[i] = m == M_PROCS ? (void *)rlab_wl_unit_pack(job, i)
                               : (void *)rlab_wl_job_unit(job, i);
        rc = args[i] ? 0 : ENOMEM;
    }
    double t0 = now_s();
    if (rc == 0 && m == M_SEQ)
        rc = rlab_wl_job_run(job);
    else if (rc == 0)
        rc = rlab_executor_map(ex,
                               m == M_PROCS ? rlab_wl_bytes_task
                               : m == M_GIL ? gil_unit_task
                                            : rlab_wl_unit_task,
                               args, n, m == M_PROCS ? res : NULL, codes,
                               BENCH_GUARD);
    for (size_t i = 0; rc == 0 && m != M_SEQ && i < n; i++)
        rc = codes[i] ? codes[i]
             : m == M_PROCS ? rlab_wl_job_store(job, i, res[i])
                            : 0;
    double secs = now_s() - t0;
    if (rc == 0)
        rc = rlab_wl_job_check(job, NULL);
    for (size_t i = 0; m == M_PROCS && args && i < n; i++) {
        rlab_bytes_free(args[i]);
        rlab_bytes_free(res[i]);
    }
    free(args);
    free(res);
    free(codes);
    if (rc) {
        fprintf(stderr, "racelab: bench seeds: %s: %s\n", what,
                rlab_strerror(rc));
        return -1;
    }
    return secs;
}

static rlab_executor *pool_for(mode m, int workers)
{
    if (m == M_SEQ)
        return NULL;
    rlab_executor *ex = m == M_PROCS
                            ? rlab_process_pool_new(workers, NULL)
                            : rlab_thread_pool_new(workers, "seeds", NULL, NULL);
    if (!ex)
        fprintf(stderr, "racelab: bench seeds: a pool of %d: %s\n", workers,
                rlab_strerror(errno));
    return ex;
}

static int add_row(seeds *s, const char *workload, mode m, int workers,
                   double secs)
{
    if (s->nrows == MAX_ROWS)
        return -1;
    s->rows[s->nrows++] = (row){workload, m, workers, secs, 0};
    return 0;
}

/* The median of s->trials runs of a mode: 0, or -1 on failure. */
static int cpu_mode(seeds *s, const char *name, rlab_wl_job *job, mode m,
                    int workers)
{
    rlab_executor *ex = pool_for(m, workers);
    if (m != M_SEQ && !ex)
        return -1;
    rlab_wl_hook h = {.tick = gil_tick, .ctx = the_gil};
    if (rlab_wl_job_kind(job) == RLAB_WL_SHA256) {
        h.release = gil_release;
        h.reacquire = gil_reacquire;
    }
    rlab_wl_job_set_hook(job, m == M_GIL ? &h : NULL);
    double v[64];
    int rc = 0;
    char what[64];
    snprintf(what, sizeof what, "%s.%s%d", name, mode_names[m], workers);
    for (long t = 0; t < s->trials && rc == 0; t++)
        rc = (v[t] = cpu_run(job, m, ex, what)) < 0 ? -1 : 0;
    rlab_executor_free(ex);
    rlab_wl_job_set_hook(job, NULL);
    return rc ? rc : add_row(s, name, m, workers, bench_median(v, (int)s->trials));
}

static const int worker_counts[] = {1, 2, 4};

static int cpu_workload(seeds *s, rlab_wl_kind kind)
{
    const char *name = rlab_wl_kind_name(kind);
    rlab_wl_params p = {.scale = s->scale};
    rlab_wl_job *job = rlab_wl_job_new(kind, &p);
    if (!job) {
        fprintf(stderr, "racelab: bench seeds: %s: %s\n", name,
                rlab_strerror(errno));
        return -1;
    }
    int rc = cpu_mode(s, name, job, M_SEQ, 1);
    for (mode m = M_THREADS; rc == 0 && m <= M_PROCS; m++)
        for (size_t w = 0; rc == 0 && w < 3; w++)
            rc = cpu_mode(s, name, job, m, worker_counts[w]);
    rlab_wl_job_free(job);
    return rc;
}

/* ------------------------------------------------------------ flags --- */

/* A flagserver of our own: the binary beside racelab, on port 0, its URL
 * read from its first line. */
typedef struct {
    pid_t pid;
    char url[128];
} server;

static int server_start(int latency_ms, server *srv)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 32);
    if (n < 0)
        return errno;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    strcpy(slash ? slash + 1 : self, "flagserver");
    char lat[32];
    snprintf(lat, sizeof lat, "%d", latency_ms);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))
        return errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return e;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        execl(self, "flagserver", "--latency-ms", lat, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[256] = "";
    bool ok = out && fgets(line, sizeof line, out) &&
              sscanf(line, "listening on %127s", srv->url) == 1;
    if (out)
        fclose(out);
    else
        close(fds[0]);
    srv->pid = pid;
    if (!ok) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return ENOENT;
    }
    return 0;
}

static void server_stop(server *srv)
{
    if (srv->pid <= 0)
        return;
    kill(srv->pid, SIGTERM);
    waitpid(srv->pid, NULL, 0);
    srv->pid = 0;
}

/* Removes the flags a run wrote, so the next one starts from nothing. */
static void clean_dest(const char *dest, const flags_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gif", dest, r->results[i].cc);
        unlink(path);
    }
}

static int flags_mode_run(seeds *s, const char *base, const char *dest, mode m,
                          int workers)
{
    static const flags_mode fm[M_COUNT] = {FLAGS_SEQUENTIAL, FLAGS_THREADS,
                                           FLAGS_THREADS, FLAGS_PROCESSES,
                                           FLAGS_MULTI};
    double v[64];
    for (long t = 0; t < s->trials; t++) {
        flags_opts o = {.base = base,
                        .dest = dest,
                        .mode = fm[m],
                        .workers = workers,
                        .gil = m == M_GIL};
        flags_report r = {0};
        int rc = flags_run(&o, &r);
        bool ok = rc == 0 && r.failed == 0;
        v[t] = r.wall;
        if (!ok)
            fprintf(stderr, "racelab: bench seeds: flags.%s%d: %s\n",
                    mode_names[m], workers,
                    rc ? rlab_strerror(rc) : "some flags failed");
        clean_dest(dest, &r);
        flags_report_free(&r);
        if (!ok)
            return -1;
    }
    return add_row(s, "flags", m, workers, bench_median(v, (int)s->trials));
}

static int flags_workload(seeds *s)
{
    char dest[] = "/tmp/racelab-seeds-XXXXXX";
    if (!mkdtemp(dest)) {
        fprintf(stderr, "racelab: bench seeds: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    server srv = {0};
    const char *base = s->base;
    int rc = 0;
    if (!base) {
        rc = server_start(s->quick ? 5 : 100, &srv);
        if (rc)
            fprintf(stderr, "racelab: bench seeds: cannot start flagserver: %s\n",
                    rlab_strerror(rc));
        base = srv.url;
    }
    static const int counts[] = {1, 2, 4, 21};
    if (rc == 0)
        rc = flags_mode_run(s, base, dest, M_SEQ, 1);
    for (mode m = M_THREADS; rc == 0 && m <= M_PROCS; m++)
        for (size_t w = 0; rc == 0 && w < 4; w++)
            rc = flags_mode_run(s, base, dest, m, counts[w]);
    if (rc == 0)
        rc = flags_mode_run(s, base, dest, M_MULTI, 21);
    server_stop(&srv);
    rmdir(dest);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------- output --- */

static double seq_seconds(const seeds *s, const char *workload)
{
    for (int i = 0; i < s->nrows; i++)
        if (s->rows[i].m == M_SEQ && !strcmp(s->rows[i].workload, workload))
            return s->rows[i].seconds;
    return 0;
}

/* Entry names: WORKLOAD.MODE with the worker count; flags.multi alone. */
static void entry_name(const row *r, char *out, size_t len)
{
    if (r->m == M_MULTI || r->m == M_SEQ)
        snprintf(out, len, "%s.%s", r->workload, mode_names[r->m]);
    else
        snprintf(out, len, "%s.%s%d", r->workload, mode_names[r->m],
                 r->workers);
}

static void print_json(const seeds *s)
{
    printf("{\"bench\": \"seeds\", \"results\": [");
    int k = 0;
    for (int i = 0; i < s->nrows; i++) {
        const row *r = &s->rows[i];
        if (r->m == M_SEQ)
            continue;
        char name[64];
        entry_name(r, name, sizeof name);
        printf("%s\n  {\"name\": \"%s\", \"subject\": \"%s\", \"reference\": "
               "\"sequential\", \"value\": %.6f, \"reference_value\": %.6f, "
               "\"unit\": \"s\", \"speedup\": %.3f}",
               k++ ? "," : "", name, mode_names[r->m], r->seconds,
               seq_seconds(s, r->workload), r->speedup);
    }
    printf("]}\n");
}

static void print_table(const seeds *s)
{
    printf("racelab bench seeds: median of %ld runs, %ld CPUs; speedup = "
           "sequential / mode\n",
           s->trials, sysconf(_SC_NPROCESSORS_ONLN));
    const char *last = "";
    for (int i = 0; i < s->nrows; i++) {
        const row *r = &s->rows[i];
        if (strcmp(r->workload, last)) {
            printf("\n%-12s %-12s %7s %12s %8s\n", r->workload, "mode",
                   "workers", "seconds", "speedup");
            last = r->workload;
        }
        printf("%-12s %-12s %7d %12.4f %7.2fx\n", "", mode_names[r->m],
               r->workers, r->seconds, r->speedup);
    }
    printf("\npools and jobs are made before each run; under gil_threads, "
           "sha256 releases\nthe GIL around OpenSSL as hashlib does, and a "
           "download around the transfer.\n");
}

/* seeds.csv, and per workload a gnuplot script and its SVG. */
static int write_plots(const seeds *s)
{
    if (mkdir(s->plot, 0777) && errno != EEXIST) {
        fprintf(stderr, "racelab: bench seeds: %s: %s\n", s->plot,
                strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/seeds.csv", s->plot);
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "racelab: bench seeds: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(csv, "workload,mode,workers,seconds,speedup\n");
    for (int i = 0; i < s->nrows; i++)
        fprintf(csv, "%s,%s,%d,%.6f,%.4f\n", s->rows[i].workload,
                mode_names[s->rows[i].m], s->rows[i].workers,
                s->rows[i].seconds, s->rows[i].speedup);
    if (fclose(csv)) {
        fprintf(stderr, "racelab: bench seeds: %s: write failed\n", path);
        return -1;
    }
    bool have_gnuplot = system("command -v gnuplot >/dev/null 2>&1") == 0;
    const char *last = "";
    int rc = 0;
    for (int i = 0; i < s->nrows; i++) {
        const char *w = s->rows[i].workload;
        if (!strcmp(w, last))
            continue;
        last = w;
        snprintf(path, sizeof path, "%s/%s.gp", s->plot, w);
        FILE *gp = fopen(path, "w");
        if (!gp)
            return -1;
        fprintf(gp,
                "set terminal svg size 640,400 dynamic noenhanced\n"
                "set output '%s/%s.svg'\n"
                "set datafile separator ','\n"
                "set title '%s: speedup over sequential (%ld CPUs)'\n"
                "set xlabel 'workers'\nset ylabel 'speedup'\n"
                "set key left top\nset logscale x 2\nset grid\n"
                "set yrange [0:*]\n"
                "plot ",
                s->plot, w, w, sysconf(_SC_NPROCESSORS_ONLN));
        bool first = true;
        for (mode m = M_THREADS; m < M_COUNT; m++) {
            bool any = false;
            for (int j = 0; j < s->nrows; j++)
                any |= s->rows[j].m == m && !strcmp(s->rows[j].workload, w);
            if (!any)
                continue;
            fprintf(gp,
                    "%s'%s/seeds.csv' using (strcol(1) eq '%s' && strcol(2) "
                    "eq '%s' ? $3 : 1/0):5 with linespoints title '%s'",
                    first ? "" : ", \\\n     ", s->plot, w, mode_names[m],
                    mode_names[m]);
            first = false;
        }
        fprintf(gp, ", 1 with lines dashtype 2 title 'sequential'\n");
        if (fclose(gp))
            return -1;
        if (have_gnuplot) {
            char cmd[8300];
            snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", path);
            if (system(cmd) != 0) {
                fprintf(stderr, "racelab: bench seeds: gnuplot failed on %s\n",
                        path);
                rc = -1;
            }
        }
    }
    if (!have_gnuplot)
        fprintf(stderr, "racelab: bench seeds: gnuplot not found: wrote the "
                        "CSV and the .gp scripts, no SVG\n");
    return rc;
}

/* ------------------------------------------------------------ command --- */

static int parse(seeds *s, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            s->json = true;
        } else if (!strcmp(a, "--quick")) {
            s->quick = true;
        } else if (!strcmp(a, "--plot") && i + 1 < argc) {
            s->plot = argv[++i];
        } else if (!strcmp(a, "--base") && i + 1 < argc) {
            s->base = argv[++i];
        } else if (!strcmp(a, "--trials") && i + 1 < argc) {
            char *end;
            s->trials = strtol(argv[++i], &end, 10);
            if (*end || s->trials < 1 || s->trials > 64)
                return cli_usage_error("--trials wants 1 to 64");
        } else {
            return cli_usage_error("bench seeds: unknown option '%s'", a);
        }
    }
    if (!s->trials)
        s->trials = s->quick ? 1 : 5;
    s->scale = s->quick ? 0.05 : 1.0;
    return 0;
}

int cli_bench_seeds(int argc, char **argv)
{
    seeds *s = calloc(1, sizeof *s);
    if (!s)
        return CLI_FAIL;
    if (parse(s, argc, argv)) {
        free(s);
        return CLI_USAGE;
    }
    int rc = 0;
    the_gil = rlab_gil_new(RLAB_GIL_DEFAULT_INTERVAL);
    if (!the_gil)
        rc = -1;
    for (rlab_wl_kind k = 0; rc == 0 && k < RLAB_WL_NKINDS; k++)
        rc = cpu_workload(s, k);
    if (rc == 0)
        rc = flags_workload(s);
    for (int i = 0; i < s->nrows; i++)
        s->rows[i].speedup =
            seq_seconds(s, s->rows[i].workload) / s->rows[i].seconds;
    if (rc == 0) {
        if (s->json)
            print_json(s);
        else
            print_table(s);
        if (s->plot)
            rc = write_plots(s);
    }
    rlab_gil_free(the_gil);
    free(s);
    return rc ? CLI_FAIL : (fflush(stdout) ? CLI_FAIL : CLI_OK);
}
