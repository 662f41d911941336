/*
 * flagserver - the HTTP fixture server of the flag-download workloads.
 *
 * The source material downloads 20 country flags from a web server as
 * BASE_URL/{cc}/{cc}.gif with a lower-case country code.  flagserver plays
 * that server on this machine: it serves fixtures/flags/<cc>.gif at
 * /flags/<cc>/<cc>.gif for the 21 codes below, on 127.0.0.1 only, and can
 * be told to misbehave so that a downloader's retries and checks are
 * tested against real sockets.
 *
 *   flagserver [--port N] [--dir DIR] [--latency-ms MS] [--jitter-ms MS]
 *              [--fail-rate P] [--reset-rate P] [--truncate-rate P]
 *              [--seed S] [--max-connections N]
 *
 * When it is ready it prints exactly one line, `listening on
 * http://127.0.0.1:PORT`, and flushes it; with the default --port 0 the
 * kernel picks the port, so read it from that line.  SIGTERM or SIGINT
 * stops it: requests waiting out their latency are woken and closed,
 * and it exits 0.  Usage errors exit 2, start-up failures 1.
 *
 * The 21 files are read into memory at start-up; a request is served only
 * when its path, as sent (no percent-decoding), equals one of the 21
 * known paths exactly, so no part of a URL ever reaches the filesystem.
 * Anything else is 404 (405 for a method other than GET and HEAD), and
 * is never delayed or faulted.
 *
 * Faults, per flag request: a request waits --latency-ms plus a uniform
 * 0..--jitter-ms extra, then one uniform draw picks its fate in the
 * intervals [0, fail) [fail, fail+reset) [.., +truncate), else it is
 * served whole (so the three rates are exact and must sum to at most 1):
 *   fail      HTTP 500.
 *   reset     200 with the full Content-Length, but the connection is
 *             closed after half of the body: a short read (curl:
 *             CURLE_PARTIAL_FILE).
 *   truncate  200 with a correct Content-Length for a body that is the
 *             first half of the file: a well-formed HTTP reply that only
 *             a size or SHA-256 check (SHA256SUMS) can catch.
 * The draws are deterministic: flag request number n (0, 1, 2 ... in
 * arrival order) takes outputs 2n+1 and 2n+2 of SplitMix64 seeded with
 * --seed (default 0), so one client issuing the same requests in the same
 * order sees the same faults and delays.  Each flag reply carries the
 * headers X-Flagserver-Seq (n) and X-Flagserver-Delay-Ms.
 *
 * Threads: libmicrohttpd's thread-per-connection mode, one listening
 * thread plus one thread per open connection, at most --max-connections
 * (default 128).  The latency wait happens on the connection's own
 * thread and holds no lock (a condition-variable wait, which releases its
 * mutex), so concurrent clients' latencies overlap completely: 21
 * downloads with 100 ms latency take about 100 ms, not 2.1 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#ifndef RLAB_FLAGS_DIR
#define RLAB_FLAGS_DIR "fixtures/flags"
#endif

#define FS_NFLAGS 21
#define FS_MAX_FILE (1 << 20)
#define FS_MAX_MS 600000u /* ten minutes: longer is a typo */
#define FS_DEFAULT_MAX_CONNECTIONS 128u

/* The source material's order: the 20 most populous countries, plus FR. */
static const char *const fs_codes[FS_NFLAGS] = {
    "cn", "in", "us", "id", "br", "pk", "ng", "bd", "ru", "jp", "kr",
    "mx", "ph", "vn", "et", "eg", "de", "ir", "tr", "cd", "fr"};

struct fs_flag {
    char url[sizeof "/flags/xx/xx.gif"];
    unsigned char *data;
    size_t size;
};

struct fs_config {
    unsigned port;
    const char *dir;
    unsigned latency_ms, jitter_ms;
    double fail_rate, reset_rate, truncate_rate;
    uint64_t seed;
    unsigned max_connections;
};

enum fs_fate { FS_SERVE, FS_FAIL, FS_RESET, FS_TRUNCATE };

struct fs_server {
    struct fs_config cfg;            /* read-only once the daemon runs */
    struct fs_flag flags[FS_NFLAGS]; /* likewise */
    atomic_uint_least64_t next_seq;
    /* Shutdown: latency waits sleep on stop_cv and end early when
     * stopping turns true. */
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
};

static const char fs_body_404[] = "not found\n";
static const char fs_body_405[] = "method not allowed\n";
static const char fs_body_500[] = "injected failure\n";

static int fs_marker; /* *req_cls after the first call for a request */

/* ---- options ---------------------------------------------------------- */

static void fs_usage(FILE *to)
{
    fprintf(to,
            "usage: flagserver [--port N] [--dir DIR] [--latency-ms MS]\n"
            "                  [--jitter-ms MS] [--fail-rate P] "
            "[--reset-rate P]\n"
            "                  [--truncate-rate P] [--seed S] "
            "[--max-connections N]\n"
            "Serves DIR/<cc>.gif at /flags/<cc>/<cc>.gif on 127.0.0.1 "
            "(default DIR:\n%s).\n",
            RLAB_FLAGS_DIR);
}

static bool fs_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false; /* no sign, no blanks */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static bool fs_parse_uint(const char *s, unsigned min, unsigned max,
                          unsigned *out)
{
    uint64_t v;
    if (!fs_parse_u64(s, max, &v) || v < min)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool fs_parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
        return false;
    *out = v;
    return true;
}

/* Returns -1 to go on, else the exit status. */
static int fs_parse_args(int argc, char **argv, struct fs_config *cfg)
{
    enum {
        OPT_PORT = 256,
        OPT_DIR,
        OPT_LAT,
        OPT_JIT,
        OPT_FAIL,
        OPT_RESET,
        OPT_TRUNC,
        OPT_SEED,
        OPT_MAXC,
        OPT_HELP
    };
    static const struct option opts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"dir", required_argument, NULL, OPT_DIR},
        {"latency-ms", required_argument, NULL, OPT_LAT},
        {"jitter-ms", required_argument, NULL, OPT_JIT},
        {"fail-rate", required_argument, NULL, OPT_FAIL},
        {"reset-rate", required_argument, NULL, OPT_RESET},
        {"truncate-rate", required_argument, NULL, OPT_TRUNC},
        {"seed", required_argument, NULL, OPT_SEED},
        {"max-connections", required_argument, NULL, OPT_MAXC},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    *cfg = (struct fs_config){.dir = RLAB_FLAGS_DIR,
                              .max_connections = FS_DEFAULT_MAX_CONNECTIONS};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        bool ok = true;
        const char *what = NULL;
        switch (c) {
        case OPT_PORT:
            ok = fs_parse_uint(optarg, 0, 65535, &cfg->port);
            what = "--port needs 0 .. 65535";
            break;
        case OPT_DIR:
            cfg->dir = optarg;
            ok = *optarg != '\0';
            what = "--dir needs a directory";
            break;
        case OPT_LAT:
            ok = fs_parse_uint(optarg, 0, FS_MAX_MS, &cfg->latency_ms);
            what = "--latency-ms needs 0 .. 600000";
            break;
        case OPT_JIT:
            ok = fs_parse_uint(optarg, 0, FS_MAX_MS, &cfg->jitter_ms);
            what = "--jitter-ms needs 0 .. 600000";
            break;
        case OPT_FAIL:
            ok = fs_parse_rate(optarg, &cfg->fail_rate);
            what = "--fail-rate needs 0 .. 1";
            break;
        case OPT_RESET:
            ok = fs_parse_rate(optarg, &cfg->reset_rate);
            what = "--reset-rate needs 0 .. 1";
            break;
        case OPT_TRUNC:
            ok = fs_parse_rate(optarg, &cfg->truncate_rate);
            what = "--truncate-rate needs 0 .. 1";
            break;
        case OPT_SEED:
            ok = fs_parse_u64(optarg, UINT64_MAX, &cfg->seed);
            what = "--seed needs an unsigned 64-bit integer";
            break;
        case OPT_MAXC:
            ok = fs_parse_uint(optarg, 1, 10000, &cfg->max_connections);
            what = "--max-connections needs 1 .. 10000";
            break;
        case OPT_HELP:
            fs_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "flagserver: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            fs_usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "flagserver: %s, not '%s'\n", what, optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "flagserver: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    /* A little slack: 0.1 + 0.2 + 0.7 is not exactly 1 in binary. */
    if (cfg->fail_rate + cfg->reset_rate + cfg->truncate_rate > 1.0 + 1e-9) {
        fprintf(stderr, "flagserver: --fail-rate + --reset-rate + "
                        "--truncate-rate must not exceed 1\n");
        return 2;
    }
    return -1;
}

/* ---- the flag table --------------------------------------------------- */

static int fs_read_file(const char *path, unsigned char **data, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int rc = 0;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        rc = errno;
    } else if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
               st.st_size > FS_MAX_FILE) {
        rc = EINVAL;
    } else if (!(buf = malloc((size_t)st.st_size))) {
        rc = ENOMEM;
    } else {
        size_t got = 0, want = (size_t)st.st_size;
        while (got < want) {
            ssize_t n = read(fd, buf + got, want - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = n < 0 ? errno : EIO; /* shrank while we read it */
                break;
            }
            got += (size_t)n;
        }
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *size = (size_t)st.st_size;
    return 0;
}

static void fs_free_flags(struct fs_server *s)
{
    for (int i = 0; i < FS_NFLAGS; i++) {
        free(s->flags[i].data);
        s->flags[i].data = NULL;
    }
}

static bool fs_load_flags(struct fs_server *s)
{
    for (int i = 0; i < FS_NFLAGS; i++) {
        struct fs_flag *f = &s->flags[i];
        const char *cc = fs_codes[i];
        char path[PATH_MAX];
        snprintf(f->url, sizeof f->url, "/flags/%s/%s.gif", cc, cc);
        int n = snprintf(path, sizeof path, "%s/%s.gif", s->cfg.dir, cc);
        int rc = n < 0 || (size_t)n >= sizeof path
                     ? ENAMETOOLONG
                     : fs_read_file(path, &f->data, &f->size);
        if (rc) {
            fprintf(stderr, "flagserver: %s/%s.gif: %s\n", s->cfg.dir, cc,
                    rc == EINVAL ? "not a regular file of 1 byte .. 1 MiB"
                                 : strerror(rc));
            fs_free_flags(s);
            return false;
        }
    }
    return true;
}

/* Exact match on the whole path, or NULL. */
static const struct fs_flag *fs_lookup(const struct fs_server *s,
                                       const char *url)
{
    for (int i = 0; i < FS_NFLAGS; i++)
        if (strcmp(url, s->flags[i].url) == 0)
            return &s->flags[i];
    return NULL;
}

/* ---- faults ----------------------------------------------------------- */

/* Output k (1, 2 ...) of SplitMix64 seeded with seed, as a double in
 * [0, 1). */
static double fs_draw(uint64_t seed, uint64_t k)
{
    uint64_t z = seed + k * UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static enum fs_fate fs_plan(const struct fs_config *cfg, uint64_t seq,
                            unsigned *delay_ms)
{
    double u_delay = fs_draw(cfg->seed, 2 * seq + 1);
    double u_fate = fs_draw(cfg->seed, 2 * seq + 2);
    *delay_ms =
        cfg->latency_ms + (unsigned)(u_delay * ((double)cfg->jitter_ms + 1.0));
    double edge = cfg->fail_rate;
    if (u_fate < edge)
        return FS_FAIL;
    if (u_fate < (edge += cfg->reset_rate))
        return FS_RESET;
    if (u_fate < edge + cfg->truncate_rate)
        return FS_TRUNCATE;
    return FS_SERVE;
}

/* Waits ms milliseconds on this connection's thread without holding any
 * lock (pthread_cond_timedwait releases stop_mu while it waits), or less
 * if the server is stopping.  Returns false when it is. */
static bool fs_delay(struct fs_server *s, unsigned ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->stop_mu);
    int rc = 0;
    while (!s->stopping && rc != ETIMEDOUT && ms > 0)
        rc = pthread_cond_timedwait(&s->stop_cv, &s->stop_mu, &deadline);
    bool go_on = !s->stopping;
    pthread_mutex_unlock(&s->stop_mu);
    return go_on;
}

/* The reset fault's body: the first half of the file, then an error,
 * on which libmicrohttpd closes the connection short of Content-Length. */
static ssize_t fs_reset_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    const struct fs_flag *f = cls;
    size_t half = f->size / 2;
    if (pos >= half)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = half - (size_t)pos < max ? half - (size_t)pos : max;
    memcpy(buf, f->data + pos, n);
    return (ssize_t)n;
}

/* ---- requests --------------------------------------------------------- */

static enum MHD_Result fs_reply(struct MHD_Connection *conn, unsigned status,
                                struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO; /* out of memory: drop the connection */
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static struct MHD_Response *fs_text(const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                     "text/plain") != MHD_YES) {
        MHD_destroy_response(r);
        r = NULL;
    }
    return r;
}

static enum MHD_Result fs_serve_flag(struct fs_server *s,
                                     struct MHD_Connection *conn,
                                     const struct fs_flag *f)
{
    uint64_t seq = atomic_fetch_add(&s->next_seq, 1);
    unsigned delay_ms;
    enum fs_fate fate = fs_plan(&s->cfg, seq, &delay_ms);
    if (!fs_delay(s, delay_ms))
        return MHD_NO; /* shutting down: close the connection */

    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    switch (fate) {
    case FS_FAIL:
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        resp = fs_text(fs_body_500, sizeof fs_body_500 - 1);
        break;
    case FS_RESET:
        resp = MHD_create_response_from_callback(f->size, 4096, fs_reset_reader,
                                                 (void *)f, NULL);
        break;
    case FS_TRUNCATE:
        resp = MHD_create_response_from_buffer(f->size / 2, f->data,
                                               MHD_RESPMEM_PERSISTENT);
        break;
    default:
        resp = MHD_create_response_from_buffer(f->size, f->data,
                                               MHD_RESPMEM_PERSISTENT);
        break;
    }
    if (!resp)
        return MHD_NO;
    char seq_s[24], delay_s[16];
    snprintf(seq_s, sizeof seq_s, "%" PRIu64, seq);
    snprintf(delay_s, sizeof delay_s, "%u", delay_ms);
    if ((status == MHD_HTTP_OK &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                 "image/gif") != MHD_YES) ||
        MHD_add_response_header(resp, "X-Flagserver-Seq", seq_s) != MHD_YES ||
        MHD_add_response_header(resp, "X-Flagserver-Delay-Ms", delay_s) !=
            MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return fs_reply(conn, status, resp);
}

static enum MHD_Result fs_handle(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls)
{
    (void)version;
    (void)upload;
    if (*req_cls == NULL) { /* headers only; the body, if any, follows */
        *req_cls = &fs_marker;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* a request body: discard it */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        struct MHD_Response *r = fs_text(fs_body_405, sizeof fs_body_405 - 1);
        if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                         "GET, HEAD") != MHD_YES) {
            MHD_destroy_response(r);
            r = NULL;
        }
        return fs_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    }
    struct fs_server *s = cls;
    const struct fs_flag *f = fs_lookup(s, url);
    if (!f)
        return fs_reply(conn, MHD_HTTP_NOT_FOUND,
                        fs_text(fs_body_404, sizeof fs_body_404 - 1));
    return fs_serve_flag(s, conn, f);
}

/* libmicrohttpd's complaints, on stderr, but not about what we did on
 * purpose: the injected resets, and the connections closed unanswered
 * when we stop. */
static void fs_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct fs_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (strstr(msg, "application reported error generating data"))
        return;
    pthread_mutex_lock(&s->stop_mu);
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->stop_mu);
    if (stopping && strstr(msg, "Application reported internal error"))
        return;
    fprintf(stderr, "flagserver: libmicrohttpd: %s%s", msg,
            strchr(msg, '\n') ? "" : "\n");
}

/* The URL as it came, percent signs and all: a request matches a flag
 * only when its path is spelled exactly /flags/<cc>/<cc>.gif, so no
 * decoding trick ("%2e%2e", "%2f", "%00") can even reach the lookup. */
static size_t fs_no_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* ---- start and stop --------------------------------------------------- */

/* A listening TCP socket on 127.0.0.1:port; its port in *bound. */
static int fs_listen(unsigned port, unsigned *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

static int fs_run(struct fs_server *s)
{
    if (!fs_load_flags(s))
        return 1;
    unsigned port;
    int lfd = fs_listen(s->cfg.port, &port);
    if (lfd < 0) {
        fprintf(stderr, "flagserver: cannot listen on 127.0.0.1:%u: %s\n",
                s->cfg.port, strerror(errno));
        fs_free_flags(s);
        return 1;
    }

    /* Every thread libmicrohttpd starts inherits this mask, so the
     * signals reach only sigwait() below. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO_INTERNAL_THREAD |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, fs_handle, s, MHD_OPTION_EXTERNAL_LOGGER, fs_mhd_log, s,
        MHD_OPTION_UNESCAPE_CALLBACK, fs_no_unescape, NULL,
        MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_CONNECTION_LIMIT,
        s->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "flagserver: libmicrohttpd did not start\n");
        close(lfd);
        fs_free_flags(s);
        return 1;
    }
    printf("listening on http://127.0.0.1:%u\n", port);
    fflush(stdout);

    int sig;
    while (sigwait(&stop_set, &sig) != 0)
        ;
    pthread_mutex_lock(&s->stop_mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->stop_cv);
    pthread_mutex_unlock(&s->stop_mu);
    MHD_stop_daemon(d); /* joins every connection thread, closes lfd */
    fs_free_flags(s);
    return 0;
}

int main(int argc, char **argv)
{
    static struct fs_server server;
    int rc = fs_parse_args(argc, argv, &server.cfg);
    if (rc >= 0)
        return rc;
    atomic_init(&server.next_seq, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&server.stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&server.stop_mu, NULL);
    rc = fs_run(&server);
    pthread_cond_destroy(&server.stop_cv);
    pthread_mutex_destroy(&server.stop_mu);
    return rc;
}
