/*
 * test_flagserver.c - src/flagserver, the HTTP fixture server of the flag
 * downloads (label io).
 *
 * Every test starts its own flagserver (fork + exec, the port read from
 * the listening line on a pipe) with the options it tests, and stops it
 * with SIGTERM or SIGINT, asserting that it exited 0, printed nothing
 * after its listening line and left nothing listening on its port.  So
 * the suite needs no ports or files shared between ctest tests and runs
 * under ctest -j; the server runs under the same sanitizer as the suite
 * (it inherits the environment), and a sanitizer report makes it exit
 * non-zero, which fails the test that stopped it.  A test that fails
 * half-way leaves its server to the tcase's teardown (SIGKILL), or, when
 * the test process itself dies, to PR_SET_PDEATHSIG.
 *
 * Requests go over plain sockets, so the bytes on the wire are exactly
 * the test's (libcurl would normalize "/flags/../x" and hide a short
 * body behind an error code), and through libcurl where what a
 * downloader sees matters: a reset is CURLE_PARTIAL_FILE, a truncation is
 * CURLE_OK with the wrong SHA-256.  Worker threads never call ck_assert:
 * they record what they saw and the main thread asserts after joining.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "rlab_test.h"

#define NFLAGS 21
#define LOOPBACK 0x7f000001u   /* 127.0.0.1 */
#define LOOPBACK_2 0x7f000002u /* 127.0.0.2: loopback too, but not bound */

static const char *const codes[NFLAGS] = {
    "cn", "in", "us", "id", "br", "pk", "ng", "bd", "ru", "jp", "kr",
    "mx", "ph", "vn", "et", "eg", "de", "ir", "tr", "cd", "fr"};

/* The fixture files and their SHA256SUMS entries, loaded once in main. */
static struct {
    unsigned char *data;
    size_t size;
    char sum[65]; /* from SHA256SUMS */
} fx[NFLAGS];
static int fx_manifest_lines;

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32) {
        strcpy(out, "EVP_Digest failed");
        return;
    }
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}


static int code_index(const char *cc)
{
    for (int i = 0; i < NFLAGS; i++)
        if (strcmp(cc, codes[i]) == 0)
            return i;
    return -1;
}

static bool load_fixtures(void)
{
    char path[4096];
    for (int i = 0; i < NFLAGS; i++) {
        snprintf(path, sizeof path, "%s/%s.gif", RLAB_FLAGS_DIR, codes[i]);
        if (!(fx[i].data = rlab_test_read_file(path, &fx[i].size))) {
            fprintf(stderr, "test_flagserver: cannot read %s\n", path);
            return false;
        }
    }
    snprintf(path, sizeof path, "%s/SHA256SUMS", RLAB_FLAGS_DIR);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "test_flagserver: cannot read %s\n", path);
        return false;
    }
    char line[256], sum[65], name[64], cc[3];
    while (fgets(line, sizeof line, f)) {
        fx_manifest_lines++;
        int n = 0;
        if (sscanf(line, "%64[0-9a-f]  %63s%n", sum, name, &n) == 2 &&
            strlen(sum) == 64 && line[n] == '\n' && strlen(name) == 6 &&
            strcmp(name + 2, ".gif") == 0) {
            memcpy(cc, name, 2);
            cc[2] = '\0';
            int i = code_index(cc);
            if (i >= 0)
                memcpy(fx[i].sum, sum, 65);
        }
    }
    fclose(f);
    return true;
}

static void free_fixtures(void)
{
    for (int i = 0; i < NFLAGS; i++)
        free(fx[i].data);
}

/* ---- running the server ------------------------------------------------ */

struct server {
    pid_t pid;
    int out;   /* its stdout, read end */
    int err;   /* its stderr, read end */
    int pidfd; /* -1 where pidfd_open is missing */
    unsigned port;
    char line[128]; /* its first line */
};

/* Servers a test started and has not stopped: the tcase teardown kills
 * them when a failed assertion cut the test short. */
#define MAX_LIVE 8
static struct server *live[MAX_LIVE];

static void track(struct server *s, bool on)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        if (on ? live[i] == NULL : live[i] == s) {
            live[i] = on ? s : NULL;
            return;
        }
    }
    ck_abort_msg("more than %d servers at once", MAX_LIVE);
}

/* fork + exec FLAGSERVER_BIN with args (NULL-terminated); its stdout goes
 * to *out, its stderr to *err (or the suite's stderr when err is NULL). */
static pid_t spawn(const char *const args[], int *out, int *err)
{
    const char *argv[32] = {FLAGSERVER_BIN};
    int argc = 1;
    for (; args && args[argc - 1]; argc++) {
        ck_assert_int_lt(argc, 31);
        argv[argc] = args[argc - 1];
    }
    argv[argc] = NULL;
    int po[2], pe[2] = {-1, -1};
    ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
    if (err)
        ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) { /* async-signal-safe calls only, up to exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        dup2(po[1], STDOUT_FILENO);
        if (err)
            dup2(pe[1], STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    *out = po[0];
    if (err) {
        close(pe[1]);
        *err = pe[0];
    }
    return pid;
}

/* Waits for pid to exit within the guard; returns its wait status. */
static int wait_exit(pid_t pid, int pidfd)
{
    double t0 = rlab_test_now();
    int st = 0;
    if (pidfd >= 0) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int n;
        while ((n = poll(&p, 1, (int)(RLAB_GUARD * 1000))) < 0 &&
               errno == EINTR)
            ;
        ck_assert_msg(n == 1, "pid %d did not exit within the guard", pid);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        return st;
    }
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        ck_assert_msg(rlab_test_now() - t0 < RLAB_GUARD,
                      "pid %d did not exit within the guard", pid);
        rlab_test_sleep(0.001);
    }
    ck_assert_int_eq(r, pid);
    return st;
}

/* Runs the server to its exit (for start-up failures): its status, and
 * what it printed on stdout and stderr. */
static int run_to_exit(const char *const args[], char *out, size_t outlen,
                       char *err, size_t errlen)
{
    int ofd, efd;
    pid_t pid = spawn(args, &ofd, &efd);
    rlab_test_read_all(ofd, out, outlen); /* EOF: it exited (or closed stdout) */
    rlab_test_read_all(efd, err, errlen);
    close(ofd);
    close(efd);
    return wait_exit(pid, -1);
}

/* Starts a server; false (with its stderr in err) if it exited instead of
 * printing a listening line.  Its stderr stays a pipe that stop() reads:
 * the server must not write much there while it runs (it writes
 * nothing). */
static bool try_start(struct server *s, const char *const args[], char *err,
                      size_t errlen)
{
    *s = (struct server){.pidfd = -1};
    s->pid = spawn(args, &s->out, &s->err);
    s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
    track(s, true);
    /* The line, byte by byte so that nothing after it is consumed. */
    size_t n = 0;
    double t0 = rlab_test_now();
    while (n < sizeof s->line - 1) {
        int left = (int)((RLAB_GUARD - (rlab_test_now() - t0)) * 1000);
        ck_assert_msg(left > 0, "no listening line within the guard");
        struct pollfd p = {.fd = s->out, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t r = read(s->out, s->line + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || s->line[n++] == '\n')
            break;
    }
    s->line[n] = '\0';
    if (n == 0) { /* EOF at once: it failed to start */
        rlab_test_read_all(s->err, err, errlen);
        close(s->err);
        int st = wait_exit(s->pid, s->pidfd);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1,
                      "a failed start exits 1, not with status %#x", st);
        close(s->out);
        if (s->pidfd >= 0)
            close(s->pidfd);
        track(s, false);
        return false;
    }
    int end = 0;
    ck_assert_msg(sscanf(s->line, "listening on http://127.0.0.1:%u%n",
                         &s->port, &end) == 1 &&
                      strcmp(s->line + end, "\n") == 0 && s->port > 0 &&
                      s->port < 65536,
                  "not the listening line: '%s'", s->line);
    return true;
}

static void start(struct server *s, const char *const args[])
{
    char err[1024];
    ck_assert_msg(try_start(s, args, err, sizeof err),
                  "flagserver did not start: %s", err);
}

static void start_with(struct server *s, ...)
{
    const char *args[24];
    int n = 0;
    va_list ap;
    va_start(ap, s);
    while ((args[n] = va_arg(ap, const char *)) != NULL)
        ck_assert_int_lt(++n, 23);
    va_end(ap);
    start(s, args);
}

/* Is anything in this network namespace listening on TCP port `port`?
 * Counts LISTEN entries in /proc/net/tcp (or tcp6) and, in *other, those
 * whose address is not 127.0.0.1. */
static int listeners(const char *table, unsigned port, int *other)
{
    FILE *f = fopen(table, "r");
    if (!f)
        return 0; /* no IPv6 here */
    char line[512];
    int found = 0;
    if (other)
        *other = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* the header */
    while (fgets(line, sizeof line, f)) {
        char addr[40];
        unsigned p, state;
        if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", addr,
                   &p, &state) != 3 ||
            p != port || state != 0x0A)
            continue;
        found++;
        if (other && strcmp(addr, "0100007F") != 0)
            ++*other;
    }
    fclose(f);
    return found;
}

/* connect() to addr:port; 0 or the errno. */
static int try_connect(uint32_t addr, unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(addr)};
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

static void assert_not_listening(unsigned port)
{
    ck_assert_msg(try_connect(LOOPBACK, port) == ECONNREFUSED,
                  "port %u still accepts connections", port);
    ck_assert_int_eq(listeners("/proc/net/tcp", port, NULL), 0);
    ck_assert_int_eq(listeners("/proc/net/tcp6", port, NULL), 0);
}

/* Stops the server with sig and checks that it exited 0, printed nothing
 * after its listening line and nothing at all on stderr (a sanitizer
 * report, a libmicrohttpd complaint), and left nothing listening. */
static void stop(struct server *s, int sig)
{
    ck_assert_int_eq(kill(s->pid, sig), 0);
    int st = wait_exit(s->pid, s->pidfd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "flagserver ended with wait status %#x after signal %d", st,
                  sig);
    char rest[256], err[8192];
    size_t n = rlab_test_read_all(s->out, rest, sizeof rest);
    size_t n_err = rlab_test_read_all(s->err, err, sizeof err);
    if (n_err)
        fprintf(stderr, "flagserver's stderr:\n%s", err);
    ck_assert_msg(n == 0, "flagserver printed more than one line: '%s'", rest);
    ck_assert_msg(n_err == 0, "flagserver wrote to stderr: %.300s", err);
    close(s->out);
    close(s->err);
    if (s->pidfd >= 0)
        close(s->pidfd);
    track(s, false);
    assert_not_listening(s->port);
}

static void kill_leftovers(void)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        struct server *s = live[i];
        if (!s)
            continue;
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        char err[8192]; /* a sanitizer's report, say, for the log */
        if (rlab_test_read_all(s->err, err, sizeof err))
            fprintf(stderr,
                    "stderr of the flagserver killed after a "
                    "failure:\n%s",
                    err);
        close(s->out);
        close(s->err);
        if (s->pidfd >= 0)
            close(s->pidfd);
        live[i] = NULL;
    }
}

/* ---- a raw HTTP client ------------------------------------------------- */

struct reply {
    int err;            /* 0, or the errno that ended the exchange */
    int status;         /* -1 without a status line */
    long length;        /* Content-Length, -1 without one */
    long seq, delay_ms; /* X-Flagserver-Seq, -Delay-Ms, -1 without */
    char type[64];      /* Content-Type */
    bool peer_reset;    /* ECONNRESET while reading */
    unsigned char body[4096];
    size_t body_len;
    double elapsed; /* from connect to the end of the reply */
};

static long header_long(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':')
            return strtol(p + 3 + nl, NULL, 10);
    return -1;
}

/* Sends "METHOD path" to addr:port on a new connection (closed after the
 * reply) and reads to EOF within the guard.  Safe on any thread: it never
 * asserts, it reports. */
static void http_request(uint32_t addr, unsigned port, const char *method,
                         const char *path, struct reply *r)
{
    *r = (struct reply){.status = -1, .length = -1, .seq = -1, .delay_ms = -1};
    char raw[8192];
    size_t got = 0;
    double t0 = rlab_test_now();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r->err = errno;
        return;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(addr)};
    char req[512];
    int len = snprintf(req, sizeof req,
                       "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Connection: close\r\n\r\n",
                       method, path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        r->err = errno;
        close(fd);
        return;
    }
    for (;;) {
        int left = (int)((RLAB_GUARD - (rlab_test_now() - t0)) * 1000);
        if (left <= 0) {
            r->err = ETIMEDOUT;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t n = recv(fd, raw + got, sizeof raw - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ECONNRESET)
            r->peer_reset = true;
        else if (n < 0)
            r->err = errno;
        if (n <= 0 || (got += (size_t)n) == sizeof raw - 1)
            break;
    }
    r->elapsed = rlab_test_now() - t0;
    close(fd);
    raw[got] = '\0';
    char *end = strstr(raw, "\r\n\r\n");
    if (!end || sscanf(raw, "HTTP/1.1 %d ", &r->status) != 1)
        return;
    end[2] = '\0'; /* the head, its last line's CRLF kept */
    r->length = header_long(raw, "Content-Length");
    r->seq = header_long(raw, "X-Flagserver-Seq");
    r->delay_ms = header_long(raw, "X-Flagserver-Delay-Ms");
    const char *ct = strcasestr(raw, "\r\nContent-Type: ");
    if (ct)
        sscanf(ct + 16, "%63[^\r]", r->type);
    r->body_len = got - (size_t)(end + 4 - raw);
    if (r->body_len > sizeof r->body)
        r->body_len = sizeof r->body;
    memcpy(r->body, end + 4, r->body_len);
}

static void get(const struct server *s, const char *path, struct reply *r)
{
    http_request(LOOPBACK, s->port, "GET", path, r);
    ck_assert_msg(r->err == 0, "GET %s: %s", path, strerror(r->err));
}

static void flag_path(int i, char *path, size_t len)
{
    snprintf(path, len, "/flags/%s/%s.gif", codes[i], codes[i]);
}

/* What a client makes of a flag reply. */
enum outcome {
    OK = '.',        /* 200, the whole file */
    FAILED = 'F',    /* 500 */
    RESET = 'R',     /* 200, closed short of Content-Length */
    TRUNCATED = 'T', /* 200, complete per Content-Length, wrong digest */
    ODD = '?'
};

static enum outcome classify(const struct reply *r, int i)
{
    if (r->err)
        return ODD;
    if (r->status == 500)
        return FAILED;
    if (r->status != 200 || r->length < 0)
        return ODD;
    if ((size_t)r->length == fx[i].size && r->body_len < fx[i].size &&
        memcmp(r->body, fx[i].data, r->body_len) == 0)
        return RESET;
    if ((size_t)r->length != r->body_len)
        return ODD;
    char sum[65];
    sha256_hex(r->body, r->body_len, sum);
    if (strcmp(sum, fx[i].sum) == 0)
        return OK;
    return r->body_len < fx[i].size &&
                   memcmp(r->body, fx[i].data, r->body_len) == 0
               ? TRUNCATED
               : ODD;
}

/* ---- libcurl ----------------------------------------------------------- */

struct sink {
    unsigned char buf[8192];
    size_t len;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    if (len > sizeof s->buf - s->len)
        return 0;
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    return len;
}

static CURL *curl_new(void)
{
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(RLAB_GUARD * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(RLAB_GUARD * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    return h;
}

static CURLcode curl_get(CURL *h, const struct server *s, const char *path,
                         long *status, struct sink *out)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", s->port, path);
    out->len = 0;
    *status = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* ---- serving ----------------------------------------------------------- */

START_TEST(fixtures_match_their_sha256sums_manifest)
{
    ck_assert_int_eq(fx_manifest_lines, NFLAGS);
    for (int i = 0; i < NFLAGS; i++) {
        char sum[65];
        sha256_hex(fx[i].data, fx[i].size, sum);
        ck_assert_msg(strcmp(sum, fx[i].sum) == 0,
                      "%s.gif: SHA-256 %s, SHA256SUMS says '%s'", codes[i], sum,
                      fx[i].sum);
    }
}
END_TEST

START_TEST(listening_line_is_exact_and_the_default_port_ephemeral)
{
    struct server s, t;
    start(&s, NULL);
    start(&t, NULL);
    /* Two servers with --port 0 got two ports from the kernel. */
    ck_assert_uint_ne(s.port, t.port);
    ck_assert_int_eq(listeners("/proc/net/tcp", s.port, NULL), 1);
    stop(&s, SIGTERM);
    stop(&t, SIGTERM);
}
END_TEST

START_TEST(every_flag_is_served_byte_identical_to_its_fixture)
{
    struct server s;
    start(&s, NULL);
    for (int i = 0; i < NFLAGS; i++) {
        char path[64];
        flag_path(i, path, sizeof path);
        struct reply r;
        get(&s, path, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.type, "image/gif");
        ck_assert_int_eq(r.length, (long)fx[i].size);
        ck_assert_uint_eq(r.body_len, fx[i].size);
        ck_assert_mem_eq(r.body, fx[i].data, fx[i].size);
        char sum[65];
        sha256_hex(r.body, r.body_len, sum);
        ck_assert_str_eq(sum, fx[i].sum);
        ck_assert_int_eq(r.seq, 2 * i); /* flag requests are numbered */
        ck_assert_int_eq(r.delay_ms, 0);
        /* HEAD: the same head, no body. */
        http_request(LOOPBACK, s.port, "HEAD", path, &r);
        ck_assert_int_eq(r.err, 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(r.length, (long)fx[i].size);
        ck_assert_uint_eq(r.body_len, 0);
        ck_assert_int_eq(r.seq, 2 * i + 1);
    }
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(curl_gets_every_flag_over_one_kept_alive_connection)
{
    struct server s;
    start(&s, NULL);
    CURL *h = curl_new();
    long connects = 0;
    for (int i = 0; i < NFLAGS; i++) {
        char path[64], sum[65];
        flag_path(i, path, sizeof path);
        struct sink body;
        long status, n = 0;
        ck_assert_int_eq(curl_get(h, &s, path, &status, &body), CURLE_OK);
        ck_assert_int_eq(status, 200);
        sha256_hex(body.buf, body.len, sum);
        ck_assert_str_eq(sum, fx[i].sum);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n);
        connects += n;
    }
    ck_assert_int_eq(connects, 1);
    curl_easy_cleanup(h);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(unknown_codes_and_traversal_attempts_are_404)
{
    static const char *const paths[] = {"/flags/xx/xx.gif",
                                        "/flags/cn/us.gif",
                                        "/flags/CN/CN.gif",
                                        "/flags/Cn/cn.gif",
                                        "/flags/../etc/passwd",
                                        "/flags/../../etc/passwd",
                                        "/../../../../etc/passwd",
                                        "/flags/%2e%2e/%2e%2e/etc/passwd",
                                        "/flags/cn/../cn/cn.gif",
                                        "/flags/cn/./cn.gif",
                                        "/flags//cn/cn.gif",
                                        "/flags/cn%2fcn.gif",
                                        "/flags/cn/cn.gif/",
                                        "/flags/cn/cn.gifx",
                                        "/flags/cn/cn.gif%00",
                                        "/flags/cn/cn.png",
                                        "/flags/cn/",
                                        "/flags/",
                                        "/",
                                        "/cn.gif",
                                        "/fixtures/flags/cn.gif",
                                        "/flags/cn/SHA256SUMS",
                                        "/flags/cn/README.md",
                                        "/etc/passwd",
                                        "flags/cn/cn.gif"};
    struct server s;
    start(&s, NULL);
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        struct reply r;
        get(&s, paths[i], &r);
        ck_assert_msg(r.status == 404, "%s: %d, want 404", paths[i], r.status);
        ck_assert_msg(r.seq == -1, "%s was counted as a flag request",
                      paths[i]);
        ck_assert(memmem(r.body, r.body_len, "root:", 5) == NULL);
    }
    /* The same through libcurl, told not to squash the dots. */
    CURL *h = curl_new();
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    struct sink body;
    long status;
    ck_assert_int_eq(curl_get(h, &s, "/flags/../etc/passwd", &status, &body),
                     CURLE_OK);
    ck_assert_int_eq(status, 404);
    curl_easy_cleanup(h);
    /* GET and HEAD only. */
    struct reply r;
    http_request(LOOPBACK, s.port, "POST", "/flags/cn/cn.gif", &r);
    ck_assert_int_eq(r.status, 405);
    http_request(LOOPBACK, s.port, "DELETE", "/flags/cn/cn.gif", &r);
    ck_assert_int_eq(r.status, 405);
    /* Still serving the real thing, as request 0: none of the above was a
     * flag request. */
    get(&s, "/flags/cn/cn.gif", &r);
    ck_assert_int_eq(classify(&r, 0), OK);
    ck_assert_int_eq(r.seq, 0);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(it_binds_127_0_0_1_only)
{
    struct server s;
    start(&s, NULL);
    int other = -1;
    ck_assert_int_eq(listeners("/proc/net/tcp", s.port, &other), 1);
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(listeners("/proc/net/tcp6", s.port, NULL), 0);
    ck_assert_int_eq(try_connect(LOOPBACK, s.port), 0);
    /* 127.0.0.2 reaches this host too, so a wildcard (0.0.0.0) listener
     * would accept it; one bound to 127.0.0.1 refuses. */
    ck_assert_int_eq(try_connect(LOOPBACK_2, s.port), ECONNREFUSED);
    int fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd6 >= 0) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                                 .sin6_port = htons((uint16_t)s.port),
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        ck_assert_int_ne(connect(fd6, (struct sockaddr *)&a, sizeof a), 0);
        close(fd6);
    }
    stop(&s, SIGTERM);
}
END_TEST

/* A port that was free a moment ago (another process may take it). */
static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

START_TEST(port_option_binds_that_port)
{
    struct server s;
    unsigned port = 0;
    bool up = false;
    char err[1024] = "";
    for (int tries = 0; tries < 5 && !up; tries++) {
        char p[16];
        port = free_port();
        snprintf(p, sizeof p, "%u", port);
        const char *args[] = {"--port", p, NULL};
        up = try_start(&s, args, err, sizeof err);
        ck_assert_msg(up || strstr(err, "Address already in use"),
                      "--port %u: %s", port, err);
    }
    ck_assert_msg(up, "five free ports were all taken again: %s", err);
    ck_assert_uint_eq(s.port, port);
    struct reply r;
    get(&s, "/flags/fr/fr.gif", &r);
    ck_assert_int_eq(classify(&r, 20), OK);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(a_busy_port_fails_at_startup_with_exit_1)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char p[16], out[256], err[1024];
    snprintf(p, sizeof p, "%u", ntohs(a.sin_port));
    const char *args[] = {"--port", p, NULL};
    int st = run_to_exit(args, out, sizeof out, err, sizeof err);
    close(fd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x", st);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, "cannot listen on 127.0.0.1:") &&
                      strstr(err, "Address already in use"),
                  "stderr: %s", err);
}
END_TEST

START_TEST(usage_errors_exit_2_and_start_nothing)
{
    static const char *const cases[][5] = {
        {"--fail-rate", "1.5"},
        {"--fail-rate", "-0.1"},
        {"--reset-rate", "nan"},
        {"--truncate-rate", "0.5x"},
        {"--fail-rate", "0.5", "--reset-rate", "0.6"},
        {"--port", "65536"},
        {"--port", "-1"},
        {"--latency-ms", "abc"},
        {"--latency-ms", "600001"},
        {"--jitter-ms", ""},
        {"--seed", "18446744073709551616"},
        {"--max-connections", "0"},
        {"--dir", ""},
        {"--bogus"},
        {"--port"},
        {"extra"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256], err[1024];
        int st = run_to_exit(cases[i], out, sizeof out, err, sizeof err);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
                      "%s %s: status %#x", cases[i][0],
                      cases[i][1] ? cases[i][1] : "", st);
        ck_assert_str_eq(out, "");
        ck_assert_msg(strncmp(err, "flagserver: ", 12) == 0,
                      "%s: no reason given: '%s'", cases[i][0], err);
    }
    /* The rates may add up to exactly 1. */
    struct server s;
    start_with(&s, "--fail-rate", "0.1", "--reset-rate", "0.2",
               "--truncate-rate", "0.7", NULL);
    stop(&s, SIGTERM);
}
END_TEST

/* A fresh directory holding copies of the fixtures. */
static void copy_fixtures(char dir[64])
{
    strcpy(dir, "/tmp/test_flagserver.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int i = 0; i < NFLAGS; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s.gif", dir, codes[i]);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(fx[i].data, 1, fx[i].size, f), fx[i].size);
        ck_assert_int_eq(fclose(f), 0);
    }
}

static void remove_dir(const char *dir)
{
    for (int i = 0; i < NFLAGS; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s.gif", dir, codes[i]);
        unlink(path);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}

START_TEST(a_missing_fixture_fails_at_startup_naming_it)
{
    char dir[64], path[128], out[256], err[1024];
    copy_fixtures(dir);
    snprintf(path, sizeof path, "%s/et.gif", dir);
    ck_assert_int_eq(unlink(path), 0);
    const char *args[] = {"--dir", dir, NULL};
    int st = run_to_exit(args, out, sizeof out, err, sizeof err);
    remove_dir(dir);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x", st);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, "/et.gif: No such file or directory"),
                  "stderr: %s", err);
}
END_TEST

START_TEST(dir_option_serves_that_directory_from_memory)
{
    char dir[64], path[128];
    copy_fixtures(dir);
    static const char other[] = "GIF89a, but not Germany's";
    snprintf(path, sizeof path, "%s/de.gif", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(other, f);
    ck_assert_int_eq(fclose(f), 0);
    struct server s;
    start_with(&s, "--dir", dir, NULL);
    /* Loaded at start-up: gone from disk, still served. */
    remove_dir(dir);
    struct reply r;
    get(&s, "/flags/de/de.gif", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, strlen(other));
    ck_assert_mem_eq(r.body, other, strlen(other));
    get(&s, "/flags/jp/jp.gif", &r);
    ck_assert_int_eq(classify(&r, 9), OK);
    stop(&s, SIGTERM);
}
END_TEST

/* Thread ids of process pid; returns how many (at most max). */
static int task_ids(pid_t pid, long *ids, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max)
        if (e->d_name[0] != '.')
            ids[n++] = strtol(e->d_name, NULL, 10);
    closedir(d);
    return n;
}

/* 1 if a thread of pid not in old[] is asleep in futex() or nanosleep (a
 * connection thread in its latency wait), 0 if none is, -1 if /proc
 * cannot tell. */
static int new_thread_asleep(pid_t pid, const long *old, int n_old)
{
    long ids[512];
    int n = task_ids(pid, ids, 512);
    for (int i = 0; i < n; i++) {
        bool known = false;
        for (int j = 0; j < n_old && !known; j++)
            known = ids[i] == old[j];
        if (known)
            continue;
        char path[96];
        snprintf(path, sizeof path, "/proc/%d/task/%ld/syscall", (int)pid,
                 ids[i]);
        FILE *fp = fopen(path, "r");
        if (!fp)
            return -1;
        long nr = -1;
        int got = fscanf(fp, "%ld", &nr);
        fclose(fp);
        if (got == 1 && (nr == SYS_futex || nr == SYS_nanosleep ||
                         nr == SYS_clock_nanosleep))
            return 1;
    }
    return 0;
}

struct pending {
    unsigned port;
    struct reply r;
};

static void *pending_get(void *arg)
{
    struct pending *p = arg;
    http_request(LOOPBACK, p->port, "GET", "/flags/ng/ng.gif", &p->r);
    return NULL;
}

START_TEST(sigterm_and_sigint_stop_it_cleanly_even_mid_request)
{
    static const int sigs[] = {SIGTERM, SIGINT};
    for (int k = 0; k < 2; k++) {
        struct server s;
        start_with(&s, "--latency-ms", "60000", NULL);
        long old[512];
        int n_old = task_ids(s.pid, old, 512);
        /* static: should an assertion cut the test short, the thread
         * may still write it when the teardown kills the server. */
        static struct pending p;
        p = (struct pending){.port = s.port};
        rlab_thread *t = rlab_test_spawn(pending_get, &p);
        /* Wait until its connection thread sleeps out the latency. */
        double t0 = rlab_test_now();
        while (new_thread_asleep(s.pid, old, n_old) == 0) {
            ck_assert_msg(rlab_test_now() - t0 < RLAB_GUARD,
                          "no connection thread waited out its latency");
            rlab_test_sleep(0.001);
        }
        double t1 = rlab_test_now();
        stop(&s, sigs[k]); /* asserts exit 0 and nothing listening */
        double took = rlab_test_now() - t1;
        rlab_test_join(t);
        ck_assert_msg(took < 5.0, "took %.2f s to stop", took);
        /* The client got no flag: the connection was closed unanswered. */
        ck_assert_int_eq(p.r.err, 0);
        ck_assert_int_eq(p.r.status, -1);
        ck_assert_double_lt(p.r.elapsed, 30.0);
    }
}
END_TEST

/* ---- faults ------------------------------------------------------------ */

START_TEST(latency_delays_every_flag_request_but_not_404s)
{
    struct server s;
    start_with(&s, "--latency-ms", "100", NULL);
    for (int i = 0; i < 3; i++) {
        char path[64];
        flag_path(i, path, sizeof path);
        struct reply r;
        get(&s, path, &r);
        ck_assert_int_eq(classify(&r, i), OK);
        ck_assert_int_eq(r.delay_ms, 100);
        ck_assert_msg(r.elapsed >= 0.100, "%s took %.4f s", path, r.elapsed);
    }
    struct reply r;
    get(&s, "/flags/zz/zz.gif", &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_msg(r.elapsed < 0.100, "a 404 took %.4f s", r.elapsed);
    stop(&s, SIGTERM);
}
END_TEST

struct client {
    unsigned port;
    int flag;
    rlab_event *go;
    int wait_rc;
    struct reply r;
    double done; /* rlab_test_now() at the end */
};

static void *client_get(void *arg)
{
    struct client *c = arg;
    char path[64];
    flag_path(c->flag, path, sizeof path);
    if ((c->wait_rc = rlab_event_wait(c->go, RLAB_GUARD)) == 0)
        http_request(LOOPBACK, c->port, "GET", path, &c->r);
    c->done = rlab_test_now();
    return NULL;
}

START_TEST(concurrent_requests_overlap_their_latency)
{
    const double latency = 0.100;
    struct server s;
    start_with(&s, "--latency-ms", "100", NULL);
    rlab_event *go = rlab_event_new();
    ck_assert_ptr_nonnull(go);
    static struct client c[NFLAGS]; /* see the note on pending above */
    rlab_thread *t[NFLAGS];
    for (int i = 0; i < NFLAGS; i++) {
        c[i] = (struct client){.port = s.port, .flag = i, .go = go};
        t[i] = rlab_test_spawn(client_get, &c[i]);
    }
    double t0 = rlab_test_now();
    rlab_event_set(go);
    double last = t0;
    for (int i = 0; i < NFLAGS; i++) {
        rlab_test_join(t[i]);
        if (c[i].done > last)
            last = c[i].done;
    }
    rlab_event_free(go);
    double wall = last - t0;
    printf("concurrent_requests_overlap_their_latency: %d requests with "
           "%.0f ms latency in %.1f ms (%.1f ms one after another)\n",
           NFLAGS, latency * 1e3, wall * 1e3, NFLAGS * latency * 1e3);
    for (int i = 0; i < NFLAGS; i++) {
        ck_assert_int_eq(c[i].wait_rc, 0);
        ck_assert_int_eq(classify(&c[i].r, i), OK);
        ck_assert_double_ge(c[i].r.elapsed, latency);
    }
    /* Serial service would take NFLAGS x 100 ms = 2.1 s; a quarter of
     * that already needs at least four requests waiting at once. */
    ck_assert_msg(wall < NFLAGS * latency / 4,
                  "%d concurrent requests took %.3f s", NFLAGS, wall);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(jitter_adds_a_uniform_extra_delay)
{
    struct server s;
    start_with(&s, "--latency-ms", "10", "--jitter-ms", "40", "--seed", "7",
               NULL);
    int count[41] = {0}, distinct = 0;
    long lo = 1000, hi = -1;
    for (int k = 0; k < 40; k++) {
        struct reply r;
        get(&s, "/flags/kr/kr.gif", &r);
        ck_assert_int_eq(classify(&r, 10), OK);
        ck_assert_msg(r.delay_ms >= 10 && r.delay_ms <= 50, "delay %ld ms",
                      r.delay_ms);
        ck_assert_msg(r.elapsed >= (double)r.delay_ms / 1e3,
                      "took %.4f s, announced %ld ms", r.elapsed, r.delay_ms);
        distinct += count[r.delay_ms - 10]++ == 0;
        lo = r.delay_ms < lo ? r.delay_ms : lo;
        hi = r.delay_ms > hi ? r.delay_ms : hi;
    }
    /* 40 draws from 41 values spread out (these hold for seed 7; a
     * constant or narrow extra fails them). */
    ck_assert_int_ge(distinct, 15);
    ck_assert_int_le(lo, 20);
    ck_assert_int_ge(hi, 40);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(fail_rate_one_answers_500_to_every_flag)
{
    struct server s;
    start_with(&s, "--fail-rate", "1", NULL);
    for (int i = 0; i < NFLAGS; i++) {
        char path[64];
        flag_path(i, path, sizeof path);
        struct reply r;
        get(&s, path, &r);
        ck_assert_int_eq(r.status, 500);
        ck_assert_int_eq(classify(&r, i), FAILED);
    }
    struct reply r;
    get(&s, "/flags/xx/xx.gif", &r);
    ck_assert_int_eq(r.status, 404); /* unknown stays unknown */
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(reset_is_a_short_read_that_curl_reports)
{
    struct server s;
    start_with(&s, "--reset-rate", "1", NULL);
    for (int i = 0; i < NFLAGS; i++) {
        char path[64];
        flag_path(i, path, sizeof path);
        struct reply r;
        get(&s, path, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(r.length, (long)fx[i].size); /* the full size... */
        ck_assert_uint_gt(r.body_len, 0);             /* ...mid-body... */
        ck_assert_uint_lt(r.body_len, fx[i].size);    /* ...then closed */
        ck_assert_int_eq(classify(&r, i), RESET);
    }
    CURL *h = curl_new();
    struct sink body;
    long status;
    CURLcode rc = curl_get(h, &s, "/flags/mx/mx.gif", &status, &body);
    ck_assert_msg(rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR,
                  "curl: %s", curl_easy_strerror(rc));
    ck_assert_uint_lt(body.len, fx[11].size);
    curl_easy_cleanup(h);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(truncate_is_well_formed_and_only_sha256_catches_it)
{
    struct server s;
    start_with(&s, "--truncate-rate", "1", NULL);
    for (int i = 0; i < NFLAGS; i++) {
        char path[64];
        flag_path(i, path, sizeof path);
        struct reply r;
        get(&s, path, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(r.length, (long)r.body_len); /* all it promised */
        ck_assert_int_eq(classify(&r, i), TRUNCATED);
    }
    CURL *h = curl_new();
    struct sink body;
    long status;
    char sum[65];
    ck_assert_int_eq(curl_get(h, &s, "/flags/ph/ph.gif", &status, &body),
                     CURLE_OK);
    ck_assert_int_eq(status, 200);
    sha256_hex(body.buf, body.len, sum);
    ck_assert_str_ne(sum, fx[12].sum);
    curl_easy_cleanup(h);
    stop(&s, SIGTERM);
}
END_TEST

/* n sequential requests cycling over the flags: outcomes as a string,
 * and the announced delays. */
static void fault_run(const char *seed, int n, char *fates, long *delays)
{
    struct server s;
    start_with(&s, "--seed", seed, "--fail-rate", "0.2", "--reset-rate", "0.2",
               "--truncate-rate", "0.2", "--jitter-ms", "3", NULL);
    for (int k = 0; k < n; k++) {
        char path[64];
        flag_path(k % NFLAGS, path, sizeof path);
        struct reply r;
        get(&s, path, &r);
        ck_assert_int_eq(r.seq, k);
        fates[k] = (char)classify(&r, k % NFLAGS);
        ck_assert_msg(fates[k] != ODD, "request %d: status %d, %zu bytes", k,
                      r.status, r.body_len);
        delays[k] = r.delay_ms;
    }
    fates[n] = '\0';
    stop(&s, SIGTERM);
}

START_TEST(a_seed_reproduces_its_faults_and_delays_and_rates_hold)
{
    enum { N = 200 };
    char a[N + 1], b[N + 1], c[N + 1];
    long da[N], db[N], dc[N];
    fault_run("42", N, a, da);
    fault_run("42", N, b, db);
    fault_run("43", N, c, dc);
    ck_assert_str_eq(a, b);
    ck_assert_mem_eq(da, db, sizeof da);
    ck_assert_str_ne(a, c);
    ck_assert(memcmp(da, dc, sizeof da) != 0);
    /* Each fault near its rate: 0.2 x 200 = 40, sd about 6. */
    static const char kinds[] = {OK, FAILED, RESET, TRUNCATED};
    for (int k = 0; k < 4; k++) {
        int n = 0;
        for (int i = 0; i < N; i++)
            n += a[i] == kinds[k];
        int want = kinds[k] == OK ? 80 : 40;
        ck_assert_msg(n >= want - 20 && n <= want + 20, "'%c' %d times of %d",
                      kinds[k], n, N);
    }
}
END_TEST

int main(void)
{
    if (!load_fixtures())
        return EXIT_FAILURE;
    if (curl_global_init(CURL_GLOBAL_ALL) != 0)
        return EXIT_FAILURE;
    Suite *s = suite_create("flagserver");

    TCase *tc = tcase_create("serve");
    tcase_set_timeout(tc, 120); /* beyond RLAB_GUARD: a guard fails first */
    tcase_add_unchecked_fixture(tc, NULL, kill_leftovers);
    tcase_add_checked_fixture(tc, NULL, kill_leftovers);
    tcase_add_test(tc, fixtures_match_their_sha256sums_manifest);
    tcase_add_test(tc, listening_line_is_exact_and_the_default_port_ephemeral);
    tcase_add_test(tc, every_flag_is_served_byte_identical_to_its_fixture);
    tcase_add_test(tc, curl_gets_every_flag_over_one_kept_alive_connection);
    tcase_add_test(tc, unknown_codes_and_traversal_attempts_are_404);
    tcase_add_test(tc, it_binds_127_0_0_1_only);
    tcase_add_test(tc, port_option_binds_that_port);
    tcase_add_test(tc, a_busy_port_fails_at_startup_with_exit_1);
    tcase_add_test(tc, usage_errors_exit_2_and_start_nothing);
    tcase_add_test(tc, a_missing_fixture_fails_at_startup_naming_it);
    tcase_add_test(tc, dir_option_serves_that_directory_from_memory);
    tcase_add_test(tc, sigterm_and_sigint_stop_it_cleanly_even_mid_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("faults");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, NULL, kill_leftovers);
    tcase_add_checked_fixture(tc, NULL, kill_leftovers);
    tcase_add_test(tc, latency_delays_every_flag_request_but_not_404s);
    tcase_add_test(tc, concurrent_requests_overlap_their_latency);
    tcase_add_test(tc, jitter_adds_a_uniform_extra_delay);
    tcase_add_test(tc, fail_rate_one_answers_500_to_every_flag);
    tcase_add_test(tc, reset_is_a_short_read_that_curl_reports);
    tcase_add_test(tc, truncate_is_well_formed_and_only_sha256_catches_it);
    tcase_add_test(tc, a_seed_reproduces_its_faults_and_delays_and_rates_hold);
    suite_add_tcase(s, tc);

    int rc = rlab_test_main(s);
    curl_global_cleanup();
    free_fixtures();
    return rc;
}
