/*
 * test_flags.c - racelab flags, the libcurl flag downloader (src/cli/flags.c;
 * label io).
 *
 * Each test starts its own flagserver (posix_spawn, the port read from its
 * listening line) and downloads into its own mkdtemp directory, through
 * flags_run in this process (so ThreadSanitizer watches the threads and
 * multi drivers) or through the racelab program (the command line, the
 * exit status, --json, SIGINT).  After every run the destination is
 * checked against the report: each flag reported ok is there and
 * byte-identical to its fixture, each failed one is absent and has a
 * reason, and nothing else is in the directory (no temporary file).
 * Invalid country codes are checked against a listening socket of the
 * test's own that must see no connection at all.
 *
 * main() registers the processes mode's task and calls rlab_mp_main()
 * first, as racelab's main() does, so the pool's workers find it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flags.h"
#include "rlab_test.h"

extern char **environ;

#define NFLAGS FLAGS_NDEFAULT

/* The fixtures, to compare downloads with byte for byte. */
static struct {
    unsigned char *data;
    size_t size;
} fx[NFLAGS];


static int fixture_index(const char *cc)
{
    for (int i = 0; i < NFLAGS; i++)
        if (strcmp(cc, flags_default_codes[i]) == 0)
            return i;
    return -1;
}

/* ---- processes: the server and the racelab program ---------------------- */

/* Starts argv with stdout (and stderr, if err is not NULL) on pipes. */
static pid_t spawn(const char *const argv[], int *out, int *err)
{
    int po[2], pe[2];
    ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
    if (err)
        ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], STDOUT_FILENO);
    if (err)
        posix_spawn_file_actions_adddup2(&fa, pe[1], STDERR_FILENO);
    pid_t pid;
    int rc =
        posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "posix_spawn %s: %s", argv[0], strerror(rc));
    close(po[1]);
    *out = po[0];
    if (err) {
        close(pe[1]);
        *err = pe[0];
    }
    return pid;
}

/* Waits for pid within the guard; its wait status. */
static int wait_exit(pid_t pid)
{
    double t0 = rlab_test_now();
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        ck_assert_msg(rlab_test_now() - t0 < RLAB_GUARD,
                      "pid %d did not exit within the guard", (int)pid);
        rlab_test_sleep(0.001);
    }
    ck_assert_int_eq(r, pid);
    return st;
}

typedef struct {
    pid_t pid;
    unsigned port;
    char base[64];
} server;

static server *live_server; /* for the teardown, if a test stops early */

static void start_server(server *s, ...)
{
    const char *argv[24] = {FLAGSERVER_BIN};
    int argc = 1;
    va_list ap;
    va_start(ap, s);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 23)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    int out;
    s->pid = spawn(argv, &out, NULL);
    live_server = s;
    char line[128];
    size_t n = 0;
    double t0 = rlab_test_now();
    while (n < sizeof line - 1) {
        int left = (int)((RLAB_GUARD - (rlab_test_now() - t0)) * 1000);
        ck_assert_msg(left > 0, "no listening line within the guard");
        struct pollfd p = {.fd = out, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t r = read(out, line + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    close(out);
    ck_assert_msg(sscanf(line, "listening on http://127.0.0.1:%u", &s->port) ==
                      1,
                  "flagserver said '%s'", line);
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%u", s->port);
}

static void stop_server(server *s)
{
    ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
    int st = wait_exit(s->pid);
    live_server = NULL;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "flagserver ended with status %#x", st);
}

static void kill_leftovers(void)
{
    if (live_server) {
        kill(live_server->pid, SIGKILL);
        waitpid(live_server->pid, NULL, 0);
        live_server = NULL;
    }
}

/* Runs `racelab flags ARGS...` to its end: its exit status (-1 if a
 * signal ended it), with its stdout and stderr. */
static int run_racelab(char *out, size_t outlen, char *err, size_t errlen, ...)
{
    const char *argv[32] = {RACELAB_BIN, "flags"};
    int argc = 2;
    va_list ap;
    va_start(ap, errlen);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    int ofd, efd;
    pid_t pid = spawn(argv, &ofd, &efd);
    /* stderr stays small (a usage text at most): drain stdout first. */
    rlab_test_read_all(ofd, out, outlen);
    rlab_test_read_all(efd, err, errlen);
    close(ofd);
    close(efd);
    int st = wait_exit(pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- destinations ---------------------------------------------------------
 */

static void make_dest(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/test_flags.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dest(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* Entries of dir (without . and ..), the names joined by spaces into
 * names. */
static int list_dest(const char *dir, char *names, size_t len)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    names[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        size_t used = strlen(names);
        snprintf(names + used, len - used, "%s%s", used ? " " : "", e->d_name);
    }
    closedir(d);
    return n;
}

/* The report agrees with the directory: ok flags there and identical to
 * their fixtures, failed ones absent with a reason, nothing else. */
static void assert_dest_matches(const char *dir, const flags_report *r)
{
    size_t ok = 0;
    for (size_t i = 0; i < r->n; i++) {
        const flags_result *x = &r->results[i];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gif", dir, x->cc);
        size_t size = 0;
        unsigned char *data = rlab_test_read_file(path, &size);
        if (x->status == FLAG_OK) {
            ok++;
            int k = fixture_index(x->cc);
            ck_assert_msg(data != NULL, "%s reported ok, but no %s", x->cc,
                          path);
            ck_assert_int_ge(k, 0);
            ck_assert_uint_eq(size, fx[k].size);
            ck_assert_uint_eq(x->bytes, fx[k].size);
            ck_assert_mem_eq(data, fx[k].data, size);
            ck_assert_str_eq(x->reason, "");
            ck_assert_int_ge(x->attempts, 1);
        } else {
            ck_assert_msg(data == NULL, "%s failed (%s), yet %s exists", x->cc,
                          x->reason, path);
            ck_assert_msg(x->reason[0] != '\0', "%s failed without a reason",
                          x->cc);
        }
        free(data);
    }
    ck_assert_uint_eq(ok, r->ok);
    ck_assert_uint_eq(r->ok + r->failed, r->n);
    char names[8192];
    int n = list_dest(dir, names, sizeof names);
    ck_assert_msg((size_t)n == ok, "%zu flags ok, but %s holds: %s", ok, dir,
                  names);
}

/* ---- the modes --------------------------------------------------------------
 */

static const struct {
    flags_mode mode;
    bool gil;
    const char *name;
} modes[] = {
    {FLAGS_SEQUENTIAL, false, "sequential"}, {FLAGS_THREADS, false, "threads"},
    {FLAGS_PROCESSES, false, "processes"},   {FLAGS_MULTI, false, "multi"},
    {FLAGS_THREADS, true, "threads --gil"},
};
#define NMODES ((int)(sizeof modes / sizeof modes[0]))

static flags_opts opts_for(int m, const server *s, const char *dest)
{
    return (flags_opts){.base = s->base,
                        .dest = dest,
                        .mode = modes[m].mode,
                        .gil = modes[m].gil,
                        .retries = 2,
                        .timeout = 10};
}

START_TEST(every_mode_downloads_the_21_flags_verified)
{
    server s;
    /* Some latency, so that the concurrent modes really overlap. */
    start_server(&s, "--latency-ms", "30", "--jitter-ms", "10", NULL);
    char dir[64];
    make_dest(dir, sizeof dir);
    flags_opts o = opts_for(_i, &s, dir);
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), 0);
    printf("%s: 21 flags in %.3f s\n", modes[_i].name, r.wall);
    ck_assert_uint_eq(r.n, NFLAGS);
    ck_assert_uint_eq(r.ok, NFLAGS);
    ck_assert_uint_eq(r.failed, 0);
    ck_assert_int_eq(r.requests, NFLAGS);
    for (size_t i = 0; i < r.n; i++) {
        ck_assert_str_eq(r.results[i].cc, flags_default_codes[i]);
        ck_assert_int_eq(r.results[i].attempts, 1);
        ck_assert_int_eq(r.results[i].http, 200);
    }
    ck_assert_int_eq(r.workers,
                     modes[_i].mode == FLAGS_SEQUENTIAL
                         ? 1
                         : flags_default_workers(modes[_i].mode, 21));
    if (modes[_i].gil) /* it let go around every transfer */
        ck_assert_uint_ge(r.gil_blocking, NFLAGS);
    else
        ck_assert_uint_eq(r.gil_blocking, 0);
    /* 21 x 30 ms one after another is 630 ms; overlapping, far less. */
    if (modes[_i].mode != FLAGS_SEQUENTIAL && modes[_i].mode != FLAGS_PROCESSES)
        ck_assert_msg(r.wall < 0.630, "%s took %.3f s", modes[_i].name, r.wall);
    assert_dest_matches(dir, &r);
    flags_report_free(&r);
    /* A second run replaces the files in place. */
    ck_assert_rc(flags_run(&o, &r), 0);
    ck_assert_uint_eq(r.ok, NFLAGS);
    assert_dest_matches(dir, &r);
    flags_report_free(&r);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

/* 30% faults: 10% 500s, 10% resets, 10% truncations. */
#define FAULTS                                                                 \
    "--fail-rate", "0.1", "--reset-rate", "0.1", "--truncate-rate", "0.1"

START_TEST(with_retries_every_flag_ends_verified_despite_30_percent_faults)
{
    server s;
    start_server(&s, FAULTS, "--seed", "1", NULL);
    char dir[64];
    make_dest(dir, sizeof dir);
    flags_opts o = opts_for(_i, &s, dir);
    o.retries = 10; /* a flag fails only if 11 draws in a row are faults */
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), 0);
    assert_dest_matches(dir, &r);
    ck_assert_uint_eq(r.ok, NFLAGS);
    /* Seed 1 faults some of the first 21 requests: there were retries. */
    ck_assert_int_gt(r.requests, NFLAGS);
    int retried = 0;
    for (size_t i = 0; i < r.n; i++)
        retried += r.results[i].attempts > 1;
    ck_assert_int_gt(retried, 0);
    flags_report_free(&r);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

START_TEST(without_retries_faults_are_reported_and_leave_no_partial_file)
{
    server s;
    start_server(&s, FAULTS, "--seed", "1", NULL);
    char dir[64];
    make_dest(dir, sizeof dir);
    flags_opts o = opts_for(_i, &s, dir);
    o.retries = 0;
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), 0);
    assert_dest_matches(dir, &r);
    /* One request per flag: requests 0 .. 20 of the seed, whatever their
     * order, so the same number of faults in every mode. */
    ck_assert_int_eq(r.requests, NFLAGS);
    ck_assert_uint_gt(r.failed, 0);
    int kinds[FLAG_NSTATUS] = {0};
    for (size_t i = 0; i < r.n; i++) {
        const flags_result *x = &r.results[i];
        kinds[x->status]++;
        if (x->status == FLAG_HTTP)
            ck_assert_int_eq(x->http, 500);
        else
            ck_assert_msg(x->status == FLAG_OK || x->status == FLAG_TRUNCATED,
                          "%s: %s (%s)", x->cc, flags_status_name(x->status),
                          x->reason);
    }
    printf("%s, seed 1, no retries: %d ok, %d HTTP 500, %d truncated\n",
           modes[_i].name, kinds[FLAG_OK], kinds[FLAG_HTTP],
           kinds[FLAG_TRUNCATED]);
    ck_assert_int_gt(kinds[FLAG_TRUNCATED], 0); /* resets or truncations */
    flags_report_free(&r);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

/* Copies the manifest with cc's digest replaced by `digest`, or its line
 * left out when digest is NULL; extra lines appended. */
static void write_sums(const char *path, const char *cc, const char *digest,
                       const char *extra)
{
    FILE *in = fopen(RLAB_FLAGS_DIR "/SHA256SUMS", "r");
    ck_assert_ptr_nonnull(in);
    FILE *out = fopen(path, "w");
    ck_assert_ptr_nonnull(out);
    char line[256], name[16];
    snprintf(name, sizeof name, "  %s.gif\n", cc);
    while (fgets(line, sizeof line, in)) {
        if (strlen(line) > 64 && strcmp(line + 64, name) == 0) {
            if (digest)
                fprintf(out, "%s%s", digest, name);
        } else {
            fputs(line, out);
        }
    }
    if (extra)
        fputs(extra, out);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

#define WRONG_DIGEST                                                           \
    "0000000000000000000000000000000000000000000000000000000000000000"

START_TEST(a_checksum_mismatch_is_reported_failed_and_leaves_no_file)
{
    server s;
    start_server(&s, NULL);
    char dir[64], sums[96];
    make_dest(dir, sizeof dir);
    snprintf(sums, sizeof sums, "%s.sums", dir);
    write_sums(sums, "de", WRONG_DIGEST, NULL);
    flags_opts o = opts_for(_i, &s, dir);
    o.sums = sums;
    o.retries = 1;
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), 0);
    assert_dest_matches(dir, &r);
    ck_assert_uint_eq(r.ok, NFLAGS - 1);
    ck_assert_uint_eq(r.failed, 1);
    const flags_result *de = &r.results[fixture_index("de")];
    ck_assert_int_eq(de->status, FLAG_CHECKSUM);
    ck_assert_int_eq(de->attempts, 2); /* it may have been a truncation */
    ck_assert_int_eq(de->http, 200);
    ck_assert_ptr_nonnull(strstr(de->reason, "checksum mismatch"));
    flags_report_free(&r);
    unlink(sums);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

START_TEST(a_flag_missing_from_the_manifest_fails_without_a_request)
{
    server s;
    start_server(&s, NULL);
    char dir[64], sums[96];
    make_dest(dir, sizeof dir);
    snprintf(sums, sizeof sums, "%s.sums", dir);
    write_sums(sums, "fr", NULL, NULL);
    flags_opts o = opts_for(FLAGS_THREADS, &s, dir);
    o.sums = sums;
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), 0);
    assert_dest_matches(dir, &r);
    const flags_result *fr = &r.results[fixture_index("fr")];
    ck_assert_int_eq(fr->status, FLAG_NOSUM);
    ck_assert_int_eq(fr->attempts, 0);
    ck_assert_int_eq(r.requests, NFLAGS - 1);
    flags_report_free(&r);
    unlink(sums);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

START_TEST(a_404_is_final_and_codes_are_lowercased)
{
    server s;
    start_server(&s, NULL);
    char dir[64], sums[96];
    make_dest(dir, sizeof dir);
    snprintf(sums, sizeof sums, "%s.sums", dir);
    write_sums(sums, "xx", NULL, WRONG_DIGEST "  zz.gif\n");
    const char *codes[] = {"ZZ", "Jp", "us"};
    flags_opts o = opts_for(_i, &s, dir);
    o.sums = sums;
    o.codes = codes;
    o.ncodes = 3;
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), 0);
    assert_dest_matches(dir, &r);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_str_eq(r.results[0].cc, "zz");
    ck_assert_int_eq(r.results[0].status, FLAG_HTTP);
    ck_assert_int_eq(r.results[0].http, 404);
    ck_assert_int_eq(r.results[0].attempts, 1); /* not retried */
    ck_assert_str_eq(r.results[1].cc, "jp");
    ck_assert_int_eq(r.results[1].status, FLAG_OK);
    ck_assert_int_eq(r.results[2].status, FLAG_OK);
    flags_report_free(&r);
    unlink(sums);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

/* A socket listening on 127.0.0.1 that nobody answers: connections show
 * up in its accept queue. */
static int listener(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void assert_no_connection(int lfd)
{
    int c = accept(lfd, NULL, NULL);
    if (c >= 0)
        close(c);
    ck_assert_msg(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                  "someone connected");
}

START_TEST(invalid_country_codes_are_rejected_before_any_request)
{
    unsigned port;
    int lfd = listener(&port);
    char base[64], dir[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", port);
    make_dest(dir, sizeof dir);
    static const char *const bad[] = {"../x", "c1",  "usa",      "",    "u",
                                      "u s",  "us/", "\xc3\xa9", "%2e", "u\n"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        ck_assert(!flags_valid_code(bad[k]));
        for (int m = 0; m < NMODES; m++) {
            const char *codes[] = {"us", bad[k]};
            flags_opts o = {.base = base,
                            .dest = dir,
                            .mode = modes[m].mode,
                            .gil = modes[m].gil,
                            .codes = codes,
                            .ncodes = 2};
            flags_report r;
            ck_assert_rc(flags_run(&o, &r), EINVAL);
            ck_assert_uint_eq(r.n, 0);
            flags_report_free(&r);
        }
    }
    const char *dup[] = {"us", "US"};
    flags_opts o = {.base = base, .dest = dir, .codes = dup, .ncodes = 2};
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), EINVAL);
    /* The command says so and exits 2. */
    static const char *const cli_bad[] = {"CN,../x", "c1", "usa", "US,,CN",
                                          "us,US"};
    for (size_t k = 0; k < sizeof cli_bad / sizeof *cli_bad; k++) {
        char out[4096], err[8192];
        int st = run_racelab(out, sizeof out, err, sizeof err, "--base", base,
                             "--dest", dir, "--mode", "threads", "--cc",
                             cli_bad[k], NULL);
        ck_assert_msg(st == 2, "--cc %s: exit %d, %s", cli_bad[k], st, err);
        ck_assert_msg(strstr(err, "invalid country code") ||
                          strstr(err, "given twice"),
                      "--cc %s: %s", cli_bad[k], err);
        ck_assert_str_eq(out, "");
    }
    char names[256];
    ck_assert_int_eq(list_dest(dir, names, sizeof names), 0);
    assert_no_connection(lfd);
    close(lfd);
    remove_dest(dir);
}
END_TEST

START_TEST(no_server_is_a_curl_failure_for_every_flag)
{
    unsigned port;
    int lfd = listener(&port);
    close(lfd); /* nothing listens there now */
    char base[64], dir[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u/", port);
    make_dest(dir, sizeof dir);
    flags_opts o = {.base = base,
                    .dest = dir,
                    .mode = modes[_i].mode,
                    .gil = modes[_i].gil,
                    .retries = 3,
                    .timeout = 5};
    flags_report r;
    ck_assert_rc(flags_run(&o, &r), 0);
    assert_dest_matches(dir, &r);
    ck_assert_uint_eq(r.failed, NFLAGS);
    for (size_t i = 0; i < r.n; i++) {
        ck_assert_int_eq(r.results[i].status, FLAG_CURL);
        ck_assert_int_eq(r.results[i].attempts, 1); /* refused: final */
        ck_assert_int_eq(r.results[i].http, 0);
    }
    flags_report_free(&r);
    remove_dest(dir);
}
END_TEST

START_TEST(bad_options_are_einval_and_bad_places_their_codes)
{
    char dir[64];
    make_dest(dir, sizeof dir);
    const char *base = "http://127.0.0.1:9";
    flags_report r;
    flags_opts o = {
        .base = base, .dest = dir, .mode = FLAGS_MULTI, .gil = true};
    ck_assert_rc(flags_run(&o, &r), EINVAL); /* the GIL is for threads */
    o = (flags_opts){.base = base, .dest = dir, .retries = 101};
    ck_assert_rc(flags_run(&o, &r), EINVAL);
    o = (flags_opts){.base = base, .dest = dir, .workers = -1};
    ck_assert_rc(flags_run(&o, &r), EINVAL);
    o = (flags_opts){.base = base, .dest = dir, .timeout = -1};
    ck_assert_rc(flags_run(&o, &r), EINVAL);
    o = (flags_opts){.base = "", .dest = dir};
    ck_assert_rc(flags_run(&o, &r), EINVAL);
    o = (flags_opts){.base = base, .dest = RLAB_FLAGS_DIR "/SHA256SUMS"};
    ck_assert_rc(flags_run(&o, &r), ENOTDIR);
    o = (flags_opts){.base = base, .dest = dir, .sums = "/nonexistent/sums"};
    ck_assert_rc(flags_run(&o, &r), ENOENT);
    ck_assert_uint_eq(r.n, 0);
    flags_mode m;
    ck_assert_rc(flags_mode_parse("multi", &m), 0);
    ck_assert_int_eq(m, FLAGS_MULTI);
    ck_assert_rc(flags_mode_parse("gil", &m), EINVAL);
    remove_dest(dir);
}
END_TEST

/* ---- the command ------------------------------------------------------------
 */

START_TEST(the_command_prints_json_and_exits_0_when_all_are_verified)
{
    static const char *const cli_modes[] = {"processes", "threads", "gil",
                                            "multi", "sequential"};
    server s;
    start_server(&s, "--latency-ms", "5", NULL);
    char dir[64];
    make_dest(dir, sizeof dir);
    char out[65536], err[8192];
    int st =
        run_racelab(out, sizeof out, err, sizeof err, "--base", s.base,
                    "--dest", dir, "--mode", cli_modes[_i], "--json", NULL);
    ck_assert_msg(st == 0, "exit %d: %s%s", st, out, err);
    ck_assert_ptr_nonnull(strstr(out, "\"command\": \"flags\""));
    ck_assert_ptr_nonnull(strstr(out, "\"ok\": 21, \"failed\": 0"));
    ck_assert_ptr_nonnull(strstr(out, "\"wall_seconds\": "));
    ck_assert_ptr_nonnull(
        strstr(out, "{\"cc\": \"cn\", \"status\": \"ok\", \"http\": 200"));
    ck_assert_str_eq(err, ""); /* not a TTY: no progress bar */
    char names[1024];
    ck_assert_int_eq(list_dest(dir, names, sizeof names), NFLAGS);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

START_TEST(the_command_exits_1_and_names_the_reason_when_one_fails)
{
    server s;
    start_server(&s, NULL);
    char dir[64], sums[96];
    make_dest(dir, sizeof dir);
    snprintf(sums, sizeof sums, "%s.sums", dir);
    write_sums(sums, "br", WRONG_DIGEST, NULL);
    char out[65536], err[8192];
    int st = run_racelab(out, sizeof out, err, sizeof err, "--base", s.base,
                         "--dest", dir, "--mode", "multi", "--sums", sums,
                         "--retries", "0", "--cc", "BR,CN", NULL);
    ck_assert_msg(st == 1, "exit %d: %s%s", st, out, err);
    ck_assert_ptr_nonnull(strstr(out, "cc  status"));
    ck_assert_ptr_nonnull(strstr(out, "br  checksum"));
    ck_assert_ptr_nonnull(strstr(out, "checksum mismatch"));
    ck_assert_ptr_nonnull(strstr(out, "cn  ok"));
    ck_assert_ptr_nonnull(strstr(out, "2 flags: 1 ok, 1 failed"));
    char names[256];
    ck_assert_int_eq(list_dest(dir, names, sizeof names), 1);
    ck_assert_str_eq(names, "cn.gif");
    unlink(sums);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

START_TEST(sigint_mid_download_exits_130_and_leaves_no_temporary_file)
{
    static const char *const cli_modes[] = {"threads", "multi", "sequential"};
    server s;
    start_server(&s, "--latency-ms", "60000", NULL);
    char dir[64];
    make_dest(dir, sizeof dir);
    const char *argv[] = {RACELAB_BIN, "flags", "--base", s.base,
                          "--dest",    dir,     "--mode", cli_modes[_i],
                          "--timeout", "120",   NULL};
    int ofd, efd;
    pid_t pid = spawn(argv, &ofd, &efd);
    /* Wait until a transfer has its temporary file, then interrupt. */
    char names[4096];
    double t0 = rlab_test_now();
    while (list_dest(dir, names, sizeof names) == 0) {
        ck_assert_msg(rlab_test_now() - t0 < RLAB_GUARD,
                      "no temporary file appeared");
        rlab_test_sleep(0.001);
    }
    ck_assert_msg(names[0] == '.', "not a temporary name: %s", names);
    double t1 = rlab_test_now();
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    char out[65536], err[8192];
    rlab_test_read_all(ofd, out, sizeof out);
    rlab_test_read_all(efd, err, sizeof err);
    close(ofd);
    close(efd);
    int st = wait_exit(pid);
    double took = rlab_test_now() - t1;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %#x: %s%s",
                  st, out, err);
    ck_assert_msg(took < 5.0, "took %.2f s to stop", took);
    ck_assert_ptr_nonnull(strstr(out, "cancelled"));
    ck_assert_int_eq(list_dest(dir, names, sizeof names), 0);
    remove_dest(dir);
    stop_server(&s);
}
END_TEST

int main(int argc, char **argv)
{
    int rc = flags_register_tasks();
    if (rc) {
        fprintf(stderr, "test_flags: flags_register_tasks: %s\n",
                rlab_strerror(rc));
        return EXIT_FAILURE;
    }
    rlab_mp_main(argc, argv);
    for (int i = 0; i < NFLAGS; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gif", RLAB_FLAGS_DIR,
                 flags_default_codes[i]);
        if (!(fx[i].data = rlab_test_read_file(path, &fx[i].size))) {
            fprintf(stderr, "test_flags: cannot read %s\n", path);
            return EXIT_FAILURE;
        }
    }
    Suite *s = suite_create("flags");
    TCase *tc = tcase_create("download");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, kill_leftovers);
    tcase_add_loop_test(tc, every_mode_downloads_the_21_flags_verified, 0,
                        NMODES);
    tcase_add_loop_test(
        tc, with_retries_every_flag_ends_verified_despite_30_percent_faults, 0,
        NMODES);
    tcase_add_loop_test(
        tc, without_retries_faults_are_reported_and_leave_no_partial_file, 0,
        NMODES);
    tcase_add_loop_test(
        tc, a_checksum_mismatch_is_reported_failed_and_leaves_no_file, 0,
        NMODES);
    tcase_add_test(tc,
                   a_flag_missing_from_the_manifest_fails_without_a_request);
    tcase_add_loop_test(tc, a_404_is_final_and_codes_are_lowercased, 0, NMODES);
    tcase_add_test(tc, invalid_country_codes_are_rejected_before_any_request);
    tcase_add_loop_test(tc, no_server_is_a_curl_failure_for_every_flag, 0,
                        NMODES);
    tcase_add_test(tc, bad_options_are_einval_and_bad_places_their_codes);
    suite_add_tcase(s, tc);

    tc = tcase_create("command");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, kill_leftovers);
    tcase_add_loop_test(
        tc, the_command_prints_json_and_exits_0_when_all_are_verified, 0, 5);
    tcase_add_test(tc, the_command_exits_1_and_names_the_reason_when_one_fails);
    tcase_add_loop_test(
        tc, sigint_mid_download_exits_130_and_leaves_no_temporary_file, 0, 3);
    suite_add_tcase(s, tc);

    rc = rlab_test_main(s);
    for (int i = 0; i < NFLAGS; i++)
        free(fx[i].data);
    return rc;
}
