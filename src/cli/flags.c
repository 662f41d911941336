/*
 * flags.c - racelab flags: the source material's flag downloader with
 * libcurl, sequential, on threads (optionally under a simulated GIL), on
 * processes and with libcurl's multi interface.  The contract is in
 * flags.h; this file has the download of one flag (an "attempt": temporary
 * file, streaming SHA-256, verdict, rename or unlink), the retry loop, the
 * four drivers and the command.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "flags.h"
#include "racelab.h"

#ifndef RLAB_FLAGS_SUMS
#define RLAB_FLAGS_SUMS "fixtures/flags/SHA256SUMS"
#endif

#define FLAGS_TASK_NAME "flags.download"
#define FLAGS_BACKOFF_BASE 0.010
#define FLAGS_BACKOFF_CAP 0.250
#define FLAGS_DEFAULT_TIMEOUT 10.0
#define FLAGS_MAX_WORKERS 1024
#define FLAGS_SOURCE_MAX_WORKERS 20

const char *const flags_default_codes[FLAGS_NDEFAULT] = {
    "cn", "in", "us", "id", "br", "pk", "ng", "bd", "ru", "jp", "kr",
    "mx", "ph", "vn", "et", "eg", "de", "ir", "tr", "cd", "fr"};

static const char *const mode_names[FLAGS_NMODES] = {"sequential", "threads",
                                                     "processes", "multi"};
static const char *const status_names[FLAG_NSTATUS] = {
    "ok", "http", "curl", "truncated", "checksum", "nosum", "io", "cancelled"};

/* flags_cancel(): sticky, read by every attempt and transfer callback. */
static atomic_bool flags_cancelled;

const char *flags_mode_name(flags_mode m)
{
    return (unsigned)m < FLAGS_NMODES ? mode_names[m] : NULL;
}

int flags_mode_parse(const char *name, flags_mode *out)
{
    for (int m = 0; name && m < FLAGS_NMODES; m++) {
        if (strcmp(name, mode_names[m]) == 0) {
            *out = (flags_mode)m;
            return 0;
        }
    }
    return EINVAL;
}

const char *flags_status_name(flags_status s)
{
    return (unsigned)s < FLAG_NSTATUS ? status_names[s] : "?";
}

bool flags_valid_code(const char *cc)
{
    /* Not isalpha(): the locale must not widen what reaches a URL or a
     * file name. */
    for (int i = 0; cc && i < 2; i++)
        if (!((cc[i] >= 'a' && cc[i] <= 'z') || (cc[i] >= 'A' && cc[i] <= 'Z')))
            return false;
    return cc && cc[2] == '\0';
}

const char *flags_default_sums(void)
{
    return RLAB_FLAGS_SUMS;
}

int flags_default_workers(flags_mode m, size_t n)
{
    long w;
    switch (m) {
    case FLAGS_SEQUENTIAL:
        return 1;
    case FLAGS_PROCESSES:
        w = sysconf(_SC_NPROCESSORS_ONLN);
        break;
    default:
        w = FLAGS_SOURCE_MAX_WORKERS;
        break;
    }
    if (w > (long)n)
        w = (long)n;
    return w < 1 ? 1 : (int)w;
}

void flags_cancel(void)
{
    atomic_store(&flags_cancelled, true);
}

static bool cancelled(void)
{
    return atomic_load_explicit(&flags_cancelled, memory_order_relaxed);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_for(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !cancelled())
        ;
}

/* Backoff before attempt `next` (2, 3 ...): 10 ms, 20 ms ... at most
 * 250 ms. */
static double backoff(int next)
{
    double d = FLAGS_BACKOFF_BASE * ldexp(1.0, next - 2);
    return d < FLAGS_BACKOFF_CAP ? d : FLAGS_BACKOFF_CAP;
}

/* ---- the run's shared state ------------------------------------------ */

typedef struct flags_ctx flags_ctx;

/* One flag of the run. */
typedef struct {
    flags_ctx *ctx;
    bool has_sum;
    unsigned char sum[32];
    double t0;         /* its first request */
    double not_before; /* multi: when its next attempt may start */
    flags_result res;
} flags_job;

struct flags_ctx {
    const char *base; /* without a trailing '/' */
    size_t base_len;
    const char *dest;
    int retries;
    long timeout_ms;
    rlab_gil *gil; /* threads under the GIL, else NULL */
    CURLSH *share; /* threads: the DNS cache */
    rlab_lock *share_locks[CURL_LOCK_DATA_LAST];
    /* threads: idle easy handles, at most one per worker */
    rlab_lock *idle_lock;
    CURL **idle;
    size_t nidle, idle_cap;
};

static void fail(flags_result *r, flags_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(flags_result *r, flags_status st, const char *fmt, ...)
{
    r->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* ---- one attempt ------------------------------------------------------ */

/* An attempt's transfer: the temporary file it streams into and the
 * digest it keeps on the way. */
typedef struct {
    flags_job *job;
    int fd;
    char tmp[PATH_MAX];
    EVP_MD_CTX *md;
    size_t bytes;
    unsigned char head[4];
    unsigned char last;
    int werr;      /* errno of a failed write, or EIO for the digest */
    rlab_gil *gil; /* held by the thread outside the transfer's waits */
    char errbuf[CURL_ERROR_SIZE];
} flags_xfer;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    flags_xfer *x = arg;
    size_t len = size * n;
    /* Under the GIL the thread "runs Python" for each chunk (hash and
     * bookkeeping) and lets go again around the write, as file.write()
     * does. */
    if (x->gil)
        rlab_gil_end_blocking(x->gil);
    for (size_t i = 0; i < len && x->bytes + i < sizeof x->head; i++)
        x->head[x->bytes + i] = (unsigned char)p[i];
    if (len > 0)
        x->last = (unsigned char)p[len - 1];
    x->bytes += len;
    if (EVP_DigestUpdate(x->md, p, len) != 1)
        x->werr = EIO;
    if (x->gil)
        rlab_gil_begin_blocking(x->gil);
    for (size_t done = 0; !x->werr && done < len;) {
        ssize_t w = write(x->fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            x->werr = w < 0 ? errno : EIO;
        else
            done += (size_t)w;
    }
    return x->werr ? 0 : len; /* 0 aborts: CURLE_WRITE_ERROR */
}

static int on_progress(void *arg, curl_off_t dlt, curl_off_t dln,
                       curl_off_t ult, curl_off_t uln)
{
    (void)arg, (void)dlt, (void)dln, (void)ult, (void)uln;
    return cancelled(); /* non-zero: CURLE_ABORTED_BY_CALLBACK */
}

/* Options every handle of a run carries. */
static int setup_handle(const flags_ctx *c, CURL *h)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
    if (rc == CURLE_OK)                                                        \
    rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for time-outs */
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "racelab-flags/" RLAB_VERSION_STRING);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_NOPROGRESS, 0L);
    if (c->share)
        SET(CURLOPT_SHARE, c->share);
#undef SET
    return rc == CURLE_OK ? 0 : EINVAL;
}

/* Prepares an attempt of x->job on h: the temporary file, the digest and
 * the per-transfer options.  false when it could not (job->res says why;
 * nothing is left behind). */
static bool attempt_begin(flags_ctx *c, CURL *h, flags_xfer *x)
{
    flags_job *j = x->job;
    flags_result *r = &j->res;
    x->fd = -1;
    x->md = NULL;
    x->bytes = 0;
    x->werr = 0;
    x->last = 0;
    x->errbuf[0] = '\0';
    memset(x->head, 0, sizeof x->head);
    r->attempts++;
    r->http = 0;
    r->curl_code = 0;
    r->bytes = 0;
    int n =
        snprintf(x->tmp, sizeof x->tmp, "%s/.%s.gif.XXXXXX", c->dest, r->cc);
    if (n < 0 || (size_t)n >= sizeof x->tmp) {
        fail(r, FLAG_IO, "destination path too long");
        return false;
    }
    x->fd = mkostemp(x->tmp, O_CLOEXEC);
    if (x->fd < 0) {
        fail(r, FLAG_IO, "mkstemp in %s: %s", c->dest, strerror(errno));
        return false;
    }
    x->md = EVP_MD_CTX_new();
    if (!x->md || EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1) {
        fail(r, FLAG_IO, "OpenSSL: SHA-256 unavailable");
        EVP_MD_CTX_free(x->md);
        x->md = NULL;
        close(x->fd);
        unlink(x->tmp);
        return false;
    }
    char url[sizeof r->cc * 2 + 16 + 4096];
    n = snprintf(url, sizeof url, "%s/flags/%s/%s.gif", c->base, r->cc, r->cc);
    CURLcode rc = (n < 0 || (size_t)n >= sizeof url)
                      ? CURLE_URL_MALFORMAT
                      : curl_easy_setopt(h, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    if (rc != CURLE_OK) {
        r->curl_code = (int)rc;
        fail(r, FLAG_CURL, "%s", curl_easy_strerror(rc));
        EVP_MD_CTX_free(x->md);
        x->md = NULL;
        close(x->fd);
        unlink(x->tmp);
        return false;
    }
    return true;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The verdict on a finished transfer: renames the file into place when
 * everything checks out, else unlinks it.  Returns true when another
 * attempt may help (5xx, a reset, a time-out, a bad digest). */
static bool attempt_end(flags_ctx *c, CURL *h, flags_xfer *x, CURLcode rc)
{
    flags_job *j = x->job;
    flags_result *r = &j->res;
    bool retry = false, keep = false;
    long http = 0;
    curl_off_t clen = -1;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
    r->http = http;
    r->curl_code = (int)rc;
    r->bytes = x->bytes;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_DigestFinal_ex(x->md, md, &mdlen) != 1 || mdlen != 32)
        x->werr = x->werr ? x->werr : EIO;
    EVP_MD_CTX_free(x->md);
    x->md = NULL;
    int cerr = close(x->fd) != 0 ? errno : 0;
    x->fd = -1;

    if (x->werr) {
        fail(r, FLAG_IO, "writing %s: %s", x->tmp, strerror(x->werr));
    } else if (rc == CURLE_ABORTED_BY_CALLBACK && cancelled()) {
        fail(r, FLAG_CANCELLED, "cancelled");
    } else if (rc == CURLE_PARTIAL_FILE ||
               (rc == CURLE_RECV_ERROR && x->bytes > 0)) {
        retry = true;
        if (clen >= 0)
            fail(r, FLAG_TRUNCATED,
                 "truncated: connection closed after %zu of %lld bytes",
                 x->bytes, (long long)clen);
        else
            fail(r, FLAG_TRUNCATED,
                 "truncated: connection closed after %zu bytes", x->bytes);
    } else if (rc != CURLE_OK) {
        retry = rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR ||
                rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING;
        fail(r, FLAG_CURL, "curl: %s",
             x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    } else if (http != 200) {
        retry = http >= 500 || http == 429;
        fail(r, FLAG_HTTP, "HTTP %ld", http);
    } else if (cerr) {
        fail(r, FLAG_IO, "closing %s: %s", x->tmp, strerror(cerr));
    } else if (memcmp(md, j->sum, 32) != 0) {
        /* A truncated GIF lacks the trailer byte (0x3b) at its end. */
        bool gif =
            x->bytes >= 6 && memcmp(x->head, "GIF8", 4) == 0 && x->last == 0x3b;
        char got[65], want[65];
        hex(md, 32, got);
        hex(j->sum, 32, want);
        retry = true;
        if (gif)
            fail(r, FLAG_CHECKSUM,
                 "checksum mismatch: SHA-256 %.16s..., "
                 "SHA256SUMS says %.16s...",
                 got, want);
        else
            fail(r, FLAG_TRUNCATED,
                 "truncated: %zu-byte body is no complete "
                 "GIF (SHA-256 %.16s..., want %.16s...)",
                 x->bytes, got, want);
    } else {
        char final[PATH_MAX];
        int n = snprintf(final, sizeof final, "%s/%s.gif", c->dest, r->cc);
        if (n < 0 || (size_t)n >= sizeof final)
            fail(r, FLAG_IO, "destination path too long");
        else if (rename(x->tmp, final) != 0)
            fail(r, FLAG_IO, "rename to %s: %s", final, strerror(errno));
        else
            keep = true;
    }
    if (keep) {
        r->status = FLAG_OK;
        r->reason[0] = '\0';
    } else {
        unlink(x->tmp);
    }
    return retry;
}

/* The easy interface's attempt: one blocking transfer (the GIL, if any,
 * released while it waits). */
static bool attempt(flags_ctx *c, CURL *h, flags_job *j)
{
    flags_xfer x = {.job = j, .gil = c->gil};
    if (!attempt_begin(c, h, &x))
        return false;
    if (c->gil)
        rlab_gil_begin_blocking(c->gil);
    CURLcode rc = curl_easy_perform(h);
    if (c->gil)
        rlab_gil_end_blocking(c->gil);
    return attempt_end(c, h, &x, rc);
}

/* Up to 1 + retries attempts of j with backoff in between; j->res then
 * holds the outcome. */
static void fetch(flags_ctx *c, CURL *h, flags_job *j)
{
    j->t0 = now();
    for (;;) {
        if (cancelled()) {
            fail(&j->res, FLAG_CANCELLED, "cancelled");
            break;
        }
        bool again = attempt(c, h, j);
        if (j->res.status == FLAG_OK || !again || j->res.attempts > c->retries)
            break;
        if (c->gil)
            rlab_gil_begin_blocking(c->gil); /* time.sleep() lets go */
        sleep_for(backoff(j->res.attempts + 1));
        if (c->gil)
            rlab_gil_end_blocking(c->gil);
    }
    j->res.ms = (now() - j->t0) * 1e3;
}

/* ---- sequential --------------------------------------------------------- */

static void report_progress(const flags_opts *o, size_t done, size_t total)
{
    if (o->progress)
        o->progress(done, total, o->progress_arg);
}

static int run_sequential(const flags_opts *o, flags_ctx *c, flags_job *jobs,
                          size_t n)
{
    CURL *h = curl_easy_init();
    if (!h)
        return ENOMEM;
    int rc = setup_handle(c, h);
    for (size_t i = 0; !rc && i < n; i++) {
        if (jobs[i].res.status != FLAG_NOSUM)
            fetch(c, h, &jobs[i]);
        report_progress(o, i + 1, n);
    }
    curl_easy_cleanup(h);
    return rc;
}

/* ---- threads ------------------------------------------------------------ */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
                       void *arg)
{
    (void)h, (void)access; /* shared or single: one lock either way */
    flags_ctx *c = arg;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        rlab_lock_acquire(c->share_locks[data], RLAB_FOREVER);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    (void)h;
    flags_ctx *c = arg;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        rlab_lock_release(c->share_locks[data]);
}

static void threads_teardown(flags_ctx *c)
{
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    free(c->idle);
    c->idle = NULL;
    c->nidle = 0;
    rlab_lock_free(c->idle_lock);
    c->idle_lock = NULL;
    if (c->share)
        curl_share_cleanup(c->share); /* after every handle using it */
    c->share = NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        rlab_lock_free(c->share_locks[i]);
        c->share_locks[i] = NULL;
    }
    rlab_gil_free(c->gil);
    c->gil = NULL;
}

static int threads_setup(flags_ctx *c, int workers, bool gil)
{
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        if (!(c->share_locks[i] = rlab_lock_new()))
            return ENOMEM;
    if (!(c->idle_lock = rlab_lock_new()) ||
        !(c->idle = calloc((size_t)workers, sizeof *c->idle)) ||
        !(c->share = curl_share_init()))
        return ENOMEM;
    c->idle_cap = (size_t)workers;
    /* DNS only: libcurl's shared connection cache is not thread-safe
     * (flags.h); each handle keeps its own connections instead. */
    if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) ||
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS))
        return EINVAL;
    if (gil && !(c->gil = rlab_gil_new(RLAB_GIL_DEFAULT_INTERVAL)))
        return errno ? errno : ENOMEM;
    return 0;
}

/* An idle handle, or a new one. */
static CURL *handle_borrow(flags_ctx *c)
{
    CURL *h = NULL;
    rlab_lock_acquire(c->idle_lock, RLAB_FOREVER);
    if (c->nidle > 0)
        h = c->idle[--c->nidle];
    rlab_lock_release(c->idle_lock);
    if (!h && (h = curl_easy_init()) && setup_handle(c, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

static void handle_return(flags_ctx *c, CURL *h)
{
    rlab_lock_acquire(c->idle_lock, RLAB_FOREVER);
    bool kept = c->nidle < c->idle_cap;
    if (kept)
        c->idle[c->nidle++] = h;
    rlab_lock_release(c->idle_lock);
    if (!kept) /* cannot happen with one task per worker; be safe */
        curl_easy_cleanup(h);
}

static int thread_task(void *arg, void **result)
{
    flags_job *j = arg;
    flags_ctx *c = j->ctx;
    *result = NULL;
    CURL *h = handle_borrow(c);
    if (!h) {
        fail(&j->res, FLAG_CURL, "curl_easy_init failed");
        return 0;
    }
    if (c->gil)
        rlab_gil_acquire(c->gil, RLAB_FOREVER);
    fetch(c, h, j);
    if (c->gil)
        rlab_gil_release(c->gil);
    handle_return(c, h);
    return 0;
}

/* Submits fn(args[i]) for every job that needs a request and waits for
 * them as they complete.  NULL args are skipped (counted done). */
static int run_pool(const flags_opts *o, rlab_executor *ex, rlab_task_fn fn,
                    void **args, size_t n, rlab_future **fs, int *submit_rc)
{
    rlab_future **live = malloc((n ? n : 1) * sizeof *live);
    if (!live)
        return ENOMEM;
    int rc = 0;
    size_t nf = 0, done = 0;
    for (size_t i = 0; i < n; i++) {
        fs[i] = NULL;
        submit_rc[i] = 0;
        if (args[i])
            submit_rc[i] = rlab_executor_submit(ex, fn, args[i], &fs[i]);
        if (args[i] && !submit_rc[i]) {
            live[nf++] = fs[i];
            continue;
        }
        fs[i] = NULL;
        rc = rc ? rc : submit_rc[i];
        report_progress(o, ++done, n);
    }
    rlab_as_completed *it = rlab_as_completed_new(live, nf, RLAB_FOREVER);
    rlab_future *f;
    while (it && rlab_as_completed_next(it, &f) == 0)
        report_progress(o, ++done, n);
    rlab_as_completed_free(it);
    free(live);
    return rc;
}

static int run_threads(const flags_opts *o, flags_ctx *c, flags_job *jobs,
                       size_t n, int workers, double *t0)
{
    int rc = threads_setup(c, workers, o->gil);
    rlab_executor *ex = NULL;
    void **args = calloc(n, sizeof *args);
    rlab_future **fs = calloc(n, sizeof *fs);
    int *src = calloc(n, sizeof *src);
    if (!rc && (!args || !fs || !src))
        rc = ENOMEM;
    if (!rc && !(ex = rlab_thread_pool_new(workers, "flags", NULL, NULL)))
        rc = errno ? errno : ENOMEM;
    if (!rc) {
        for (size_t i = 0; i < n; i++)
            args[i] = jobs[i].res.status == FLAG_NOSUM ? NULL : &jobs[i];
        *t0 = now();
        rc = run_pool(o, ex, thread_task, args, n, fs, src);
        for (size_t i = 0; i < n; i++) {
            int code =
                fs[i] ? rlab_future_result(fs[i], RLAB_FOREVER, NULL) : src[i];
            if (args[i] && code != 0 && jobs[i].res.attempts == 0)
                fail(&jobs[i].res, FLAG_CANCELLED, "not run: %s",
                     rlab_strerror(code));
            rlab_future_free(fs[i]);
        }
    }
    rlab_executor_free(ex); /* joins the workers: their handles are idle */
    free(args);
    free(fs);
    free(src);
    return rc;
}

/* ---- processes ---------------------------------------------------------- */

/* The task's argument: this header, then base and dest, each with its
 * NUL.  Its result: a flags_result (the parent is the same program). */
typedef struct {
    char cc[3];
    bool has_sum;
    unsigned char sum[32];
    int retries;
    long timeout_ms;
    size_t base_len, dest_len;
} flags_wire;

static pthread_once_t worker_once = PTHREAD_ONCE_INIT;
static CURLcode worker_init_rc = CURLE_FAILED_INIT;

static void worker_init(void)
{
    /* Ctrl-C reaches the whole process group: the parent handles it
     * (flags_cancel), a worker finishes its flag so that no temporary
     * file is left behind. */
    signal(SIGINT, SIG_IGN);
    worker_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int process_task(void *arg, void **result)
{
    const rlab_bytes *in = arg;
    flags_wire w;
    if (!in || in->len < sizeof w)
        return EINVAL;
    memcpy(&w, in->data, sizeof w);
    const char *base = (const char *)in->data + sizeof w;
    if (w.base_len > in->len || w.dest_len > in->len ||
        in->len != sizeof w + w.base_len + 1 + w.dest_len + 1 ||
        base[w.base_len] != '\0' || base[w.base_len + 1 + w.dest_len] != '\0' ||
        w.cc[2] != '\0' || !flags_valid_code(w.cc))
        return EINVAL;
    flags_ctx c = {.base = base,
                   .base_len = w.base_len,
                   .dest = base + w.base_len + 1,
                   .retries = w.retries,
                   .timeout_ms = w.timeout_ms};
    flags_job j = {.ctx = &c, .has_sum = w.has_sum};
    memcpy(j.sum, w.sum, sizeof j.sum);
    memcpy(j.res.cc, w.cc, sizeof j.res.cc);
    pthread_once(&worker_once, worker_init);
    CURL *h = worker_init_rc == CURLE_OK ? curl_easy_init() : NULL;
    if (!h || setup_handle(&c, h) != 0)
        fail(&j.res, FLAG_CURL, "curl initialization failed in the worker");
    else
        fetch(&c, h, &j);
    curl_easy_cleanup(h);
    rlab_bytes *out = rlab_bytes_new(&j.res, sizeof j.res);
    if (!out)
        return ENOMEM;
    *result = out;
    return 0;
}

int flags_register_tasks(void)
{
    return rlab_task_register(FLAGS_TASK_NAME, process_task);
}

static rlab_bytes *pack(const flags_ctx *c, const flags_job *j)
{
    size_t dl = strlen(c->dest);
    size_t len = sizeof(flags_wire) + c->base_len + 1 + dl + 1;
    unsigned char *buf = calloc(1, len);
    if (!buf)
        return NULL;
    flags_wire w;
    memset(&w, 0, sizeof w); /* the padding too: it crosses a pipe */
    w.has_sum = j->has_sum;
    w.retries = c->retries;
    w.timeout_ms = c->timeout_ms;
    w.base_len = c->base_len;
    w.dest_len = dl;
    memcpy(w.cc, j->res.cc, sizeof w.cc);
    memcpy(w.sum, j->sum, sizeof w.sum);
    memcpy(buf, &w, sizeof w);
    memcpy(buf + sizeof w, c->base, c->base_len);
    memcpy(buf + sizeof w + c->base_len + 1, c->dest, dl);
    rlab_bytes *b = rlab_bytes_new(buf, len);
    free(buf);
    return b;
}

static int run_processes(const flags_opts *o, flags_ctx *c, flags_job *jobs,
                         size_t n, int workers, double *t0)
{
    int rc = 0;
    void **args = calloc(n, sizeof *args);
    rlab_future **fs = calloc(n, sizeof *fs);
    int *src = calloc(n, sizeof *src);
    rlab_executor *ex = NULL;
    if (!args || !fs || !src)
        rc = ENOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        if (jobs[i].res.status != FLAG_NOSUM && !(args[i] = pack(c, &jobs[i])))
            rc = ENOMEM;
    if (!rc && !(ex = rlab_process_pool_new(workers, NULL)))
        rc = errno == EPERM || errno == EINVAL ? errno : RLAB_EBROKEN;
    if (!rc) {
        *t0 = now();
        rc = run_pool(o, ex, process_task, args, n, fs, src);
        for (size_t i = 0; i < n; i++) {
            if (!args[i])
                continue;
            void *res = NULL;
            int code =
                fs[i] ? rlab_future_result(fs[i], RLAB_FOREVER, &res) : src[i];
            const rlab_bytes *b = res;
            if (code == 0 && b && b->len == sizeof(flags_result)) {
                memcpy(&jobs[i].res, b->data, sizeof(flags_result));
            } else {
                fail(&jobs[i].res, FLAG_CANCELLED, "not run: %s",
                     rlab_strerror(code ? code : EIO));
                if (code == RLAB_EBROKEN && !rc)
                    rc = RLAB_EBROKEN;
            }
            rlab_future_free(fs[i]);
        }
    }
    rlab_executor_free(ex);
    for (size_t i = 0; args && i < n; i++)
        rlab_bytes_free(args[i]);
    free(args);
    free(fs);
    free(src);
    return rc;
}

/* ---- multi -------------------------------------------------------------- */

typedef struct {
    CURL *h;
    flags_xfer x;
    bool busy;
} flags_slot;

/* The queue position of a job whose not_before has passed, or -1. */
static long next_ready(flags_job *jobs, const size_t *queue, size_t nq,
                       double t)
{
    for (size_t k = 0; k < nq; k++)
        if (jobs[queue[k]].not_before <= t)
            return (long)k;
    return -1;
}

static int run_multi(const flags_opts *o, flags_ctx *c, flags_job *jobs,
                     size_t n, int workers, double *t0)
{
    CURLM *m = curl_multi_init();
    flags_slot *slots = calloc((size_t)workers, sizeof *slots);
    size_t *queue = malloc((n ? n : 1) * sizeof *queue);
    int rc = m && slots && queue ? 0 : ENOMEM;
    for (int s = 0; !rc && s < workers; s++) {
        if (!(slots[s].h = curl_easy_init()))
            rc = ENOMEM;
        else if (setup_handle(c, slots[s].h) != 0)
            rc = EINVAL;
        else
            curl_easy_setopt(slots[s].h, CURLOPT_PRIVATE, &slots[s]);
    }
    size_t nq = 0, done = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (jobs[i].res.status == FLAG_NOSUM)
            report_progress(o, ++done, n);
        else
            queue[nq++] = i;
    }
    *t0 = now();
    int busy = 0;
    while (!rc && (nq > 0 || busy > 0)) {
        double t = now();
        /* Start what may start: free slots, ready jobs. */
        for (int s = 0; s < workers && nq > 0; s++) {
            if (slots[s].busy)
                continue;
            long k = next_ready(jobs, queue, nq, t);
            if (k < 0)
                break;
            flags_job *j = &jobs[queue[k]];
            queue[k] = queue[--nq];
            if (j->res.attempts == 0)
                j->t0 = t;
            if (cancelled()) {
                fail(&j->res, FLAG_CANCELLED, "cancelled");
            } else {
                slots[s].x = (flags_xfer){.job = j};
                if (attempt_begin(c, slots[s].h, &slots[s].x)) {
                    if (curl_multi_add_handle(m, slots[s].h) == CURLM_OK) {
                        slots[s].busy = true;
                        busy++;
                        continue;
                    }
                    attempt_end(c, slots[s].h, &slots[s].x, CURLE_FAILED_INIT);
                }
            }
            j->res.ms = (now() - j->t0) * 1e3;
            report_progress(o, ++done, n);
        }
        int running = 0;
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = EIO;
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            flags_slot *sl = (flags_slot *)(void *)priv;
            CURLcode res = msg->data.result;
            curl_multi_remove_handle(m, sl->h);
            sl->busy = false;
            busy--;
            flags_job *j = sl->x.job;
            bool again = attempt_end(c, sl->h, &sl->x, res);
            if (j->res.status != FLAG_OK && again &&
                j->res.attempts <= c->retries && !cancelled()) {
                j->not_before = now() + backoff(j->res.attempts + 1);
                queue[nq++] = (size_t)(j - jobs);
            } else {
                j->res.ms = (now() - j->t0) * 1e3;
                report_progress(o, ++done, n);
            }
        }
        if (nq == 0 && busy == 0)
            break;
        /* Sleep on the transfers until the next retry falls due (with a
         * free slot to run it), at most 100 ms so that a cancel is seen
         * soon even with nothing in flight. */
        double wait = 0.1, tn = now();
        for (size_t k = 0; busy < workers && k < nq; k++)
            if (jobs[queue[k]].not_before - tn < wait)
                wait = jobs[queue[k]].not_before - tn;
        if (wait > 0)
            curl_multi_poll(m, NULL, 0, (int)ceil(wait * 1e3), NULL);
    }
    for (int s = 0; slots && s < workers; s++) {
        if (slots[s].busy) { /* only after an error above */
            curl_multi_remove_handle(m, slots[s].h);
            attempt_end(c, slots[s].h, &slots[s].x, CURLE_FAILED_INIT);
        }
        curl_easy_cleanup(slots[s].h);
    }
    curl_multi_cleanup(m);
    free(slots);
    free(queue);
    return rc;
}

/* ---- the run ------------------------------------------------------------ */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower((unsigned char)ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Reads the manifest and gives each job its digest, if listed. */
static int load_sums(const char *path, flags_job *jobs, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? ENOENT : EIO;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* "<64 hex>  <cc>.gif" (sha256sum's format; '*' marks binary) */
        unsigned char sum[32];
        bool ok = strlen(line) > 64 + 2 + 6;
        for (int i = 0; ok && i < 32; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            sum[i] = (unsigned char)(hi * 16 + lo);
        }
        if (!ok || line[64] != ' ' || (line[65] != ' ' && line[65] != '*'))
            continue;
        const char *name = line + 66;
        size_t len = strcspn(name, "\r\n");
        if (len != 6 || strncmp(name + 2, ".gif", 4) != 0)
            continue;
        char cc[3] = {(char)tolower((unsigned char)name[0]),
                      (char)tolower((unsigned char)name[1]), '\0'};
        for (size_t i = 0; i < n; i++) {
            if (strcmp(jobs[i].res.cc, cc) == 0) {
                memcpy(jobs[i].sum, sum, sizeof sum);
                jobs[i].has_sum = true;
            }
        }
    }
    int rc = ferror(f) ? EIO : 0;
    fclose(f);
    return rc;
}

/* The option checks, made before anything else. */
static int check_opts(const flags_opts *o, const char *const **codes, size_t *n)
{
    if (!o || !o->base || !*o->base || !o->dest || !*o->dest ||
        (unsigned)o->mode >= FLAGS_NMODES || o->workers < 0 ||
        o->workers > FLAGS_MAX_WORKERS || o->retries < 0 || o->retries > 100 ||
        !(o->timeout >= 0) || o->timeout > 86400 ||
        (o->gil && o->mode != FLAGS_THREADS))
        return EINVAL;
    *codes = o->codes && o->ncodes ? o->codes : flags_default_codes;
    *n = o->codes && o->ncodes ? o->ncodes : FLAGS_NDEFAULT;
    if (*n > FLAGS_MAX_CODES)
        return EINVAL;
    for (size_t i = 0; i < *n; i++) {
        if (!flags_valid_code((*codes)[i]))
            return EINVAL;
        for (size_t k = 0; k < i; k++)
            if (strcasecmp((*codes)[i], (*codes)[k]) == 0)
                return EINVAL;
    }
    return 0;
}

int flags_run(const flags_opts *o, flags_report *out)
{
    if (!out)
        return EINVAL;
    *out = (flags_report){0};
    const char *const *codes;
    size_t n;
    int rc = check_opts(o, &codes, &n);
    if (rc)
        return rc;
    struct stat st;
    if (stat(o->dest, &st) != 0)
        return errno == ENOENT ? ENOENT : EIO;
    if (!S_ISDIR(st.st_mode))
        return ENOTDIR;

    flags_ctx c = {.base = o->base, .dest = o->dest, .retries = o->retries};
    c.base_len = strlen(o->base);
    while (c.base_len > 0 && o->base[c.base_len - 1] == '/')
        c.base_len--;
    char *base = strndup(o->base, c.base_len);
    flags_job *jobs = calloc(n, sizeof *jobs);
    out->results = calloc(n, sizeof *out->results);
    if (!base || !jobs || !out->results) {
        free(base);
        free(jobs);
        flags_report_free(out);
        return ENOMEM;
    }
    c.base = base;
    double timeout = o->timeout > 0 ? o->timeout : FLAGS_DEFAULT_TIMEOUT;
    c.timeout_ms = (long)ceil(timeout * 1e3);
    for (size_t i = 0; i < n; i++) {
        jobs[i].ctx = &c;
        jobs[i].res.cc[0] = (char)tolower((unsigned char)codes[i][0]);
        jobs[i].res.cc[1] = (char)tolower((unsigned char)codes[i][1]);
    }
    rc = load_sums(o->sums ? o->sums : flags_default_sums(), jobs, n);
    if (rc) {
        free(jobs);
        free(base);
        flags_report_free(out);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (!jobs[i].has_sum)
            fail(&jobs[i].res, FLAG_NOSUM,
                 "no SHA-256 for %s.gif in the "
                 "manifest: not requested",
                 jobs[i].res.cc);

    out->n = n;
    out->mode = o->mode;
    out->gil = o->gil;
    out->workers = o->mode == FLAGS_SEQUENTIAL ? 1
                   : o->workers                ? o->workers
                                : flags_default_workers(o->mode, n);
    double t0 = now();
    if (!rc && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = EIO;
    else if (!rc) {
        switch (o->mode) {
        case FLAGS_SEQUENTIAL:
            t0 = now();
            rc = run_sequential(o, &c, jobs, n);
            break;
        case FLAGS_THREADS:
            rc = run_threads(o, &c, jobs, n, out->workers, &t0);
            break;
        case FLAGS_PROCESSES:
            rc = run_processes(o, &c, jobs, n, out->workers, &t0);
            break;
        default:
            rc = run_multi(o, &c, jobs, n, out->workers, &t0);
            break;
        }
        out->wall = now() - t0;
        if (c.gil) {
            rlab_gil_stats gs;
            if (rlab_gil_get_stats(c.gil, &gs) == 0) {
                out->gil_switches = gs.switches;
                out->gil_blocking = gs.blocking;
            }
        }
        threads_teardown(&c);
        curl_global_cleanup();
    }
    for (size_t i = 0; i < n; i++) {
        flags_result *r = &out->results[i];
        *r = jobs[i].res;
        if (r->status == FLAG_OK && r->attempts == 0) /* never ran */
            fail(r, FLAG_CANCELLED, "not run: %s",
                 rlab_strerror(rc ? rc : RLAB_ECANCELLED));
        if (r->status == FLAG_OK) {
            out->ok++;
            out->bytes += r->bytes;
        } else {
            out->failed++;
        }
        out->requests += r->attempts;
    }
    if (!rc && cancelled())
        rc = RLAB_ECANCELLED;
    free(jobs);
    free(base);
    return rc;
}

void flags_report_free(flags_report *out)
{
    if (!out)
        return;
    free(out->results);
    out->results = NULL;
    out->n = 0;
}

/* ---- the command -------------------------------------------------------- */

static const char flags_usage[] =
    "usage: racelab flags --base URL --dest DIR [--mode MODE] [--workers N]\n"
    "                     [--retries R] [--timeout S] [--gil] [--json]\n"
    "                     [--cc CN,IN,...] [--sums FILE]\n"
    "  --base URL      the server: flags are BASE/flags/<cc>/<cc>.gif\n"
    "  --dest DIR      where <cc>.gif goes (made if missing)\n"
    "  --mode MODE     sequential (default), threads, processes, multi;\n"
    "                  gil is short for threads --gil\n"
    "  --workers N     threads, processes or transfers in flight (default:\n"
    "                  min(flags, 20); processes: the CPUs)\n"
    "  --retries R     extra attempts on 5xx, resets, time-outs and bad\n"
    "                  digests, 0 .. 100 (default 2)\n"
    "  --timeout S     seconds per attempt, connect included (default 10)\n"
    "  --gil           threads under a simulated GIL, released around the\n"
    "                  blocking calls as CPython does\n"
    "  --json          one JSON object: every flag and a summary\n"
    "  --cc LIST       comma-separated country codes (default: the 21 of\n"
    "                  the source material)\n"
    "  --sums FILE     the SHA256SUMS manifest (default: %s)\n"
    "exit status: 0 every flag verified, 1 some failed, 2 usage error,\n"
    "130 interrupted\n";

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("racelab: flags: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    fprintf(stderr, flags_usage, flags_default_sums());
    return 2;
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || errno || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void print_json(FILE *f, const flags_opts *o, const flags_report *r,
                       double timeout)
{
    fprintf(f,
            "{\"command\": \"flags\", \"mode\": \"%s\", \"workers\": %d, "
            "\"gil\": %s, \"base\": ",
            flags_mode_name(r->mode), r->workers, r->gil ? "true" : "false");
    json_str(f, o->base);
    fputs(", \"dest\": ", f);
    json_str(f, o->dest);
    fprintf(f, ", \"retries\": %d, \"timeout\": %g,\n \"flags\": [", o->retries,
            timeout);
    for (size_t i = 0; i < r->n; i++) {
        const flags_result *x = &r->results[i];
        fprintf(f,
                "%s\n  {\"cc\": \"%s\", \"status\": \"%s\", \"http\": %ld, "
                "\"bytes\": %zu, \"attempts\": %d, \"ms\": %.3f, \"reason\": ",
                i ? "," : "", x->cc, flags_status_name(x->status), x->http,
                x->bytes, x->attempts, x->ms);
        json_str(f, x->reason);
        fputc('}', f);
    }
    fprintf(f,
            "],\n \"summary\": {\"flags\": %zu, \"ok\": %zu, "
            "\"failed\": %zu, \"bytes\": %zu, \"requests\": %d, "
            "\"wall_seconds\": %.6f, \"gil_switches\": %lu, "
            "\"gil_blocking\": %lu}}\n",
            r->n, r->ok, r->failed, r->bytes, r->requests, r->wall,
            r->gil_switches, r->gil_blocking);
}

static void print_table(FILE *f, const flags_report *r)
{
    fprintf(f, "cc  %-9s %7s %8s %9s  %s\n", "status", "bytes", "attempts",
            "ms", "reason");
    for (size_t i = 0; i < r->n; i++) {
        const flags_result *x = &r->results[i];
        fprintf(f, "%s  %-9s %7zu %8d %9.1f  %s\n", x->cc,
                flags_status_name(x->status), x->bytes, x->attempts, x->ms,
                x->reason);
    }
    fprintf(f,
            "%zu flags: %zu ok, %zu failed, %zu bytes, %d requests in "
            "%.3f s (%s%s, %d worker%s)\n",
            r->n, r->ok, r->failed, r->bytes, r->requests, r->wall,
            flags_mode_name(r->mode), r->gil ? " under the GIL" : "",
            r->workers, r->workers == 1 ? "" : "s");
}

static void progress_bar(size_t done, size_t total, void *arg)
{
    (void)arg;
    enum { WIDTH = 30 };
    size_t fill = total ? done * WIDTH / total : WIDTH;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %zu/%zu", bar, done, total);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static void on_signal(int sig)
{
    (void)sig;
    flags_cancel();
}

int cli_flags(int argc, char **argv)
{
    flags_opts o = {.mode = FLAGS_SEQUENTIAL, .retries = 2};
    bool json = false;
    char *list = NULL;
    const char *codes[FLAGS_MAX_CODES];
    double timeout = FLAGS_DEFAULT_TIMEOUT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        const char *v = has ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!strcmp(a, "--gil")) {
            o.gil = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf(flags_usage, flags_default_sums());
            free(list);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            free(list);
            return usage_error("unexpected argument '%s'", a);
        }
        static const char *const valued[] = {
            "--base",    "--dest",    "--mode", "--workers",
            "--retries", "--timeout", "--cc",   "--sums"};
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
            known = known || !strcmp(a, valued[k]);
        if (!known) {
            free(list);
            return usage_error("unknown option '%s'", a);
        }
        if (!has) {
            free(list);
            return usage_error("%s needs a value", a);
        }
        i++;
        bool ok = true;
        if (!strcmp(a, "--base")) {
            o.base = v;
            ok = *v != '\0';
        } else if (!strcmp(a, "--dest")) {
            o.dest = v;
            ok = *v != '\0';
        } else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "gil") || !strcmp(v, "gil_threads")) {
                o.mode = FLAGS_THREADS;
                o.gil = true;
            } else {
                ok = flags_mode_parse(v, &o.mode) == 0;
            }
        } else if (!strcmp(a, "--workers")) {
            ok = parse_int(v, 1, FLAGS_MAX_WORKERS, &o.workers);
        } else if (!strcmp(a, "--retries")) {
            ok = parse_int(v, 0, 100, &o.retries);
        } else if (!strcmp(a, "--timeout")) {
            char *end;
            errno = 0;
            timeout = strtod(v, &end);
            ok = !errno && end != v && !*end && timeout > 0 && timeout <= 86400;
        } else if (!strcmp(a, "--cc")) {
            free(list);
            ok = (list = strdup(v)) != NULL;
        } else {
            o.sums = v;
        }
        if (!ok) {
            free(list);
            return usage_error("bad value '%s' for %s", v, a);
        }
    }
    if (list) {
        size_t n = 0;
        for (char *p = list;; p++) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            if (!flags_valid_code(p)) {
                int r = usage_error("invalid country code '%s': two ASCII "
                                    "letters, like CN",
                                    p);
                free(list);
                return r;
            }
            for (size_t k = 0; k < n; k++) {
                if (!strcasecmp(codes[k], p)) {
                    int r = usage_error("country code '%s' given twice", p);
                    free(list);
                    return r;
                }
            }
            if (n == FLAGS_MAX_CODES) {
                free(list);
                return usage_error("more than %d country codes",
                                   FLAGS_MAX_CODES);
            }
            codes[n++] = p;
            if (!comma)
                break;
            p = comma;
        }
        o.codes = codes;
        o.ncodes = n;
    }
    int rc = 0;
    if (!o.base)
        rc = usage_error("--base URL is required");
    else if (!o.dest)
        rc = usage_error("--dest DIR is required");
    else if (o.gil && o.mode != FLAGS_THREADS)
        rc = usage_error("--gil needs --mode threads");
    else if (strncmp(o.base, "http://", 7) && strncmp(o.base, "https://", 8))
        rc = usage_error("--base must be an http:// or https:// URL");
    if (rc) {
        free(list);
        return rc;
    }
    o.timeout = timeout;
    if (mkdir(o.dest, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "racelab: flags: cannot make %s: %s\n", o.dest,
                strerror(errno));
        free(list);
        return 1;
    }
    if (isatty(STDERR_FILENO))
        o.progress = progress_bar;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    flags_report r;
    rc = flags_run(&o, &r);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    int status;
    if (rc && rc != RLAB_ECANCELLED && r.n == 0) {
        fprintf(stderr, "racelab: flags: %s%s%s\n", rlab_strerror(rc),
                rc == ENOENT || rc == EIO ? ": the manifest " : "",
                rc == ENOENT || rc == EIO
                    ? (o.sums ? o.sums : flags_default_sums())
                    : "");
        status = rc == EINVAL ? 2 : 1;
    } else {
        if (json)
            print_json(stdout, &o, &r, timeout);
        else
            print_table(stdout, &r);
        if (rc && rc != RLAB_ECANCELLED)
            fprintf(stderr, "racelab: flags: %s\n", rlab_strerror(rc));
        status = rc == RLAB_ECANCELLED ? 130 : r.failed || rc ? 1 : 0;
    }
    flags_report_free(&r);
    free(list);
    return status;
}
