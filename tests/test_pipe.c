/*
 * test_pipe.c - rlab_pipe, rlab_conn_* and rlab_fifo_open:
 * multiprocessing.Pipe, Connection and named pipes.
 *
 * The behaviours of CPython's _test_multiprocessing.py _TestConnection
 * (send_bytes / recv_bytes round trips of empty, small and large messages,
 * poll, EOFError once the peer closed, duplex=False directions) plus what C
 * adds: messages far larger than the pipe buffer, SIGPIPE that must not
 * kill, timed recv that keeps a half-read message, a maximum size on both
 * sides, FIFOs between unrelated processes, and the racelab conventions
 * (EINVAL without side effects, no descriptor or child left behind).
 *
 * Every test starts and ends with the same open descriptor count
 * (/proc/self/fd) and with no child process, reaped or not.  A second
 * process is a plain fork() whose child stays single-threaded and ends in
 * _exit: it reports a failed check as its exit status (the source line),
 * never with ck_assert, and an alarm() guards it against hanging.  Large
 * messages that both ends of one process exchange go through a second
 * thread, so neither end waits for itself.  The only sleeps pace a writer
 * in the test where time is what is tested (one deadline for a message
 * arriving in pieces).
 */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/lib/mp_internal.h"
#include "racelab/multiprocessing.h"
#include "rlab_test.h"

#define EARLY 1e-3
#define LATE 1.0
#define BIG ((size_t)8 << 20) /* far beyond any pipe or socket buffer */
#define DEFAULT_MAX ((size_t)64 << 20)

/* ------------------------------------------------------------ hygiene --- */

/* The fixture of every test case: the descriptor count at the start, and
 * at the end the same count and no child left. */
static int hygiene_fds;

static void hygiene_begin(void)
{
    hygiene_fds = rlab_test_fd_count();
}

static void hygiene_end(void)
{
    ck_assert_int_eq(rlab_test_fd_count(), hygiene_fds);
    rlab_test_assert_no_children();
}

/* ------------------------------------------------------------ helpers --- */

/* Bytes that differ per position and per seed. */
static void pattern(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 24);
    }
}

static bool pattern_ok(const unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        if (p[i] != (unsigned char)(x >> 24))
            return false;
    }
    return true;
}

static unsigned char *pattern_new(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    pattern(p, n, seed);
    return p;
}

/* Receives one message within RLAB_GUARD and checks it is want[0, wlen). */
static void recv_is(rlab_conn *c, const void *want, size_t wlen)
{
    void *data = NULL;
    size_t len = 12345;
    ck_assert_rc(rlab_conn_recv(c, RLAB_GUARD, &data, &len), 0);
    ck_assert_ptr_nonnull(data); /* even for an empty message */
    ck_assert_uint_eq(len, wlen);
    ck_assert(wlen == 0 || memcmp(data, want, wlen) == 0);
    free(data);
}

static void recv_pattern(rlab_conn *c, size_t n, unsigned seed)
{
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(c, RLAB_GUARD, &data, &len), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(pattern_ok(data, n, seed));
    free(data);
}

static void send_str(rlab_conn *c, const char *s)
{
    ck_assert_rc(rlab_conn_send(c, s, strlen(s)), 0);
}

static void recv_str(rlab_conn *c, const char *s)
{
    recv_is(c, s, strlen(s));
}

/* The wire format (pipe.c): an 8-byte little-endian length, then the
 * bytes.  Tests that cut a message into pieces write it raw. */
static void header(unsigned char h[8], uint64_t len)
{
    for (int i = 0; i < 8; i++)
        h[i] = (unsigned char)(len >> (8 * i));
}

static void raw_write(rlab_conn *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(rlab_conn_fileno(c), s, n);
        ck_assert_int_gt(w, 0);
        s += w;
        n -= (size_t)w;
    }
}

static bool sigpipe_pending(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigpending(&s);
    return sigismember(&s, SIGPIPE) == 1;
}

static bool sigpipe_blocked(void)
{
    sigset_t s;
    pthread_sigmask(SIG_BLOCK, NULL, &s);
    return sigismember(&s, SIGPIPE) == 1;
}

/* ---- threads: large messages one end of this process sends to another */

typedef struct {
    rlab_conn *c;
    size_t len;
    unsigned seed;
    int rc;
} big_arg;

static void *big_sender(void *p)
{
    big_arg *a = p;
    unsigned char *buf = malloc(a->len ? a->len : 1);
    if (!buf) {
        a->rc = ENOMEM;
        return NULL;
    }
    pattern(buf, a->len, a->seed);
    a->rc = rlab_conn_send(a->c, buf, a->len);
    free(buf);
    return NULL;
}

static void *big_receiver(void *p)
{
    big_arg *a = p;
    void *data = NULL;
    size_t len = 0;
    a->rc = rlab_conn_recv(a->c, RLAB_GUARD, &data, &len);
    if (a->rc == 0 && (len != a->len || !pattern_ok(data, len, a->seed)))
        a->rc = -1; /* wrong bytes */
    free(data);
    return NULL;
}

/* Another thread sends BIG bytes of pattern `seed` on `from` while this
 * one receives them on `to`. */
static void big_to_this_thread(rlab_conn *from, rlab_conn *to, unsigned seed)
{
    big_arg s = {.c = from, .len = BIG, .seed = seed};
    rlab_thread *t = rlab_test_spawn(big_sender, &s);
    recv_pattern(to, BIG, seed);
    rlab_test_join(t);
    ck_assert_rc(s.rc, 0);
}

/* This thread sends BIG bytes of pattern `seed` on `from` while another
 * receives them on `to`. */
static void big_from_this_thread(rlab_conn *from, rlab_conn *to,
                                 unsigned seed)
{
    big_arg r = {.c = to, .len = BIG, .seed = seed};
    rlab_thread *t = rlab_test_spawn(big_receiver, &r);
    unsigned char *buf = pattern_new(BIG, seed);
    ck_assert_rc(rlab_conn_send(from, buf, BIG), 0);
    free(buf);
    rlab_test_join(t);
    ck_assert_rc(r.rc, 0);
}

/* ---- processes */

/* A failed check in a child: the exit status names the source line. */
#define CHILD_CHECK_LINE(cond)                                                 \
    do {                                                                       \
        if (!(cond))                                                           \
            _exit(1 + __LINE__ % 254);                                         \
    } while (0)

/* Waits (up to RLAB_GUARD) until the child sleeps in the kernel, so the
 * call it announced is waiting.  An observation, not a timing guess: if it
 * cannot be made the test still checks every result. */
static void await_sleeping(pid_t pid)
{
    double end = rlab_test_now() + RLAB_GUARD;
    while (rlab_test_task_state(pid) != 'S' && rlab_test_now() < end)
        sched_yield();
}

typedef struct {
    char dir[64];
    char path[96];
} fifo_place;

static void fifo_place_make(fifo_place *f)
{
    strcpy(f->dir, "/tmp/rlab_pipe_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/fifo", f->dir);
}

static void fifo_place_remove(fifo_place *f)
{
    unlink(f->path);
    ck_assert_int_eq(rmdir(f->dir), 0);
}

/* ---- the two kinds of pipe */

/* One pipe of each kind in turn: its receiving end r and sending end w (on
 * a duplex pipe either end does both), and what the body passes on. */
typedef struct {
    rlab_conn *r, *w;
    bool duplex;
    void *arg;
} kind_pair;

/* Closes an end of the pair before the body returns (the end is then not
 * closed again). */
static void close_end(rlab_conn **end)
{
    rlab_conn_close(*end);
    *end = NULL;
}

/* Runs body on a new one-way pipe, then on a new duplex one (a socket
 * pair), and closes the ends the body left open. */
static void with_each_kind(void (*body)(kind_pair *p, rlab_conn *r,
                                        rlab_conn *w),
                           void *arg)
{
    for (int duplex = 0; duplex < 2; duplex++) {
        kind_pair p = {.duplex = duplex, .arg = arg};
        ck_assert_rc(rlab_pipe(duplex, &p.r, &p.w), 0);
        ck_assert_ptr_nonnull(p.r);
        ck_assert_ptr_nonnull(p.w);
        body(&p, p.r, p.w);
        rlab_conn_close(p.r);
        rlab_conn_close(p.w);
    }
}

/* Defines the test `name`, whose body (the block after it) runs once per
 * kind of pipe. */
#define EACH_KIND_TEST(name)                                                   \
    static void name##_on(kind_pair *p, rlab_conn *r, rlab_conn *w);           \
    START_TEST(name)                                                           \
    {                                                                          \
        with_each_kind(name##_on, NULL);                                       \
    }                                                                          \
    END_TEST                                                                   \
    static void name##_on(kind_pair *p CK_ATTRIBUTE_UNUSED,                    \
                          rlab_conn *r CK_ATTRIBUTE_UNUSED,                    \
                          rlab_conn *w CK_ATTRIBUTE_UNUSED)

/* ----------------------------------------------------------- messages --- */

START_TEST(duplex_round_trip_of_small_empty_and_binary_messages_both_ways)
{
    rlab_conn *a = NULL, *b = NULL;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    const unsigned char bin[] = {0, 1, 0, 0xff, 0, '\n', 0};
    send_str(a, "hello");
    ck_assert_rc(rlab_conn_send(a, "", 0), 0);
    ck_assert_rc(rlab_conn_send(a, NULL, 0), 0);
    ck_assert_rc(rlab_conn_send(a, bin, sizeof bin), 0);
    send_str(b, "world");
    ck_assert_rc(rlab_conn_send(b, NULL, 0), 0);
    recv_str(b, "hello");
    recv_is(b, "", 0);
    recv_is(b, "", 0);
    recv_is(b, bin, sizeof bin);
    recv_str(a, "world");
    recv_is(a, "", 0);
    ck_assert_rc(rlab_conn_poll(a, 0), ETIMEDOUT);
    ck_assert_rc(rlab_conn_poll(b, 0), ETIMEDOUT);
    rlab_conn_close(a);
    rlab_conn_close(b);
}
END_TEST

typedef struct {
    rlab_conn *c;
    int n;
    int rc;
} many_arg;

static size_t many_len(int i)
{
    return (size_t)(i * 7919) % 700; /* 0 included; headers split often */
}

static void *many_sender(void *p)
{
    many_arg *a = p;
    unsigned char buf[700];
    for (int i = 0; i < a->n && a->rc == 0; i++) {
        pattern(buf, many_len(i), (unsigned)i);
        a->rc = rlab_conn_send(a->c, buf, many_len(i));
    }
    return NULL;
}

EACH_KIND_TEST(many_messages_keep_their_order_and_boundaries)
{
    many_arg a = {.c = w, .n = (int)rlab_test_scaled(5000)};
    rlab_thread *t = rlab_test_spawn(many_sender, &a);
    for (int i = 0; i < a.n; i++)
        recv_pattern(r, many_len(i), (unsigned)i);
    rlab_test_join(t);
    ck_assert_rc(a.rc, 0);
    ck_assert_rc(rlab_conn_poll(r, 0), ETIMEDOUT);
}

START_TEST(message_of_8_mib_crosses_a_duplex_pipe_both_ways)
{
    rlab_conn *a, *b;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    big_to_this_thread(a, b, 1);   /* a -> b */
    big_from_this_thread(b, a, 2); /* b -> a */
    rlab_conn_close(a);
    rlab_conn_close(b);
}
END_TEST

START_TEST(message_of_8_mib_crosses_a_one_way_pipe)
{
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    big_to_this_thread(w, r, 3);
    rlab_conn_close(r);
    rlab_conn_close(w);
}
END_TEST

START_TEST(one_way_pipe_has_a_receiving_end_and_a_sending_end)
{
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_send(r, "x", 1), EBADF);
    ck_assert_rc(rlab_conn_send(r, NULL, 0), EBADF);
    ck_assert_rc(rlab_conn_recv(w, 0, &data, &len), EBADF);
    ck_assert_rc(rlab_conn_recv(w, RLAB_GUARD, &data, &len), EBADF);
    ck_assert_ptr_null(data);
    ck_assert_rc(rlab_conn_poll(w, RLAB_GUARD), EBADF);
    ck_assert(rlab__conn_can_read(r) && !rlab__conn_can_write(r));
    ck_assert(!rlab__conn_can_read(w) && rlab__conn_can_write(w));
    /* The failed calls wrote nothing: the stream holds one message. */
    send_str(w, "one way");
    recv_str(r, "one way");
    ck_assert_rc(rlab_conn_poll(r, 0), ETIMEDOUT);
    rlab_conn_close(r);
    rlab_conn_close(w);
}
END_TEST

EACH_KIND_TEST(
    descriptors_are_close_on_exec_sockets_when_duplex_pipes_otherwise)
{
    rlab_conn *ends[2] = {r, w};
    for (int i = 0; i < 2; i++) {
        int fd = rlab_conn_fileno(ends[i]);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(rlab__conn_fd(ends[i]), fd);
        ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        ck_assert(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert(p->duplex ? S_ISSOCK(st.st_mode) : S_ISFIFO(st.st_mode));
        ck_assert(rlab__conn_can_read(ends[i]) == (p->duplex || i == 0));
        ck_assert(rlab__conn_can_write(ends[i]) == (p->duplex || i == 1));
    }
}

/* One thread sends on end a while another receives on it; this thread
 * echoes everything back through end b. */
typedef struct {
    rlab_conn *c;
    int n;
    int rc;
} echo_arg;

static void *echo_receiver(void *p)
{
    echo_arg *a = p;
    for (int i = 0; i < a->n && a->rc == 0; i++) {
        void *data = NULL;
        size_t len = 0;
        a->rc = rlab_conn_recv(a->c, RLAB_GUARD, &data, &len);
        if (a->rc == 0 &&
            (len != many_len(i) || !pattern_ok(data, len, (unsigned)i)))
            a->rc = -1;
        free(data);
    }
    return NULL;
}

START_TEST(one_thread_sends_while_another_receives_on_one_duplex_end)
{
    rlab_conn *a, *b;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    int n = (int)rlab_test_scaled(3000);
    many_arg s = {.c = a, .n = n};
    echo_arg r = {.c = a, .n = n};
    rlab_thread *ts = rlab_test_spawn(many_sender, &s);
    rlab_thread *tr = rlab_test_spawn(echo_receiver, &r);
    for (int i = 0; i < n; i++) {
        void *data = NULL;
        size_t len = 0;
        ck_assert_rc(rlab_conn_recv(b, RLAB_GUARD, &data, &len), 0);
        ck_assert_rc(rlab_conn_send(b, data, len), 0);
        free(data);
    }
    rlab_test_join(ts);
    rlab_test_join(tr);
    ck_assert_rc(s.rc, 0);
    ck_assert_rc(r.rc, 0);
    rlab_conn_close(a);
    rlab_conn_close(b);
}
END_TEST

static bool fd_readable(rlab_conn *c)
{
    struct pollfd p = {.fd = rlab_conn_fileno(c), .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

EACH_KIND_TEST(read_ahead_shows_in_conn_buffered_not_on_the_descriptor)
{
    ck_assert(!rlab__conn_buffered(r));
    ck_assert(!rlab__conn_buffered(w));
    send_str(w, "one");
    send_str(w, "two");
    ck_assert(fd_readable(r));
    ck_assert(!rlab__conn_buffered(r)); /* nothing read yet */
    recv_str(r, "one");
    /* One read took both: "two" waits in the connection's buffer,
     * invisible to poll() on the descriptor. */
    ck_assert(!fd_readable(r));
    ck_assert(rlab__conn_buffered(r));
    recv_str(r, "two");
    ck_assert(!rlab__conn_buffered(r));
    /* A message half read counts as buffered. */
    unsigned char h[8];
    header(h, 4);
    raw_write(w, h, 8);
    raw_write(w, "ab", 2);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, 0.01, &data, &len), ETIMEDOUT);
    ck_assert(rlab__conn_buffered(r));
    raw_write(w, "cd", 2);
    recv_str(r, "abcd");
    ck_assert(!rlab__conn_buffered(r));
    /* So does end of file, once seen. */
    close_end(&p->w);
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), RLAB_EEOF);
    ck_assert(rlab__conn_buffered(r));
    ck_assert(!rlab__conn_buffered(NULL));
}

/* A signal handled without SA_RESTART ends a blocked write early with a
 * partial count and a blocked read or poll with EINTR: a storm of them on
 * the sender and the receiver must not lose or repeat a byte. */
static atomic_long usr1_count;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add_explicit(&usr1_count, 1, memory_order_relaxed);
}

typedef struct {
    rlab_conn *c;
    size_t len;
    int count;
    pthread_t self;
    atomic_bool started, done;
    int rc;
} storm_arg;

static void *storm_sender(void *p)
{
    storm_arg *a = p;
    a->self = pthread_self();
    atomic_store(&a->started, true);
    unsigned char *buf = malloc(a->len);
    for (int i = 0; i < a->count && a->rc == 0; i++) {
        pattern(buf, a->len, 40 + (unsigned)i);
        a->rc = rlab_conn_send(a->c, buf, a->len);
    }
    free(buf);
    atomic_store(&a->done, true);
    return NULL;
}

typedef struct {
    storm_arg *sender;
    pthread_t receiver;
} storm_targets;

static void *storm_signaller(void *p)
{
    storm_targets *t = p;
    while (!atomic_load(&t->sender->started))
        sched_yield();
    while (!atomic_load(&t->sender->done)) {
        pthread_kill(t->sender->self, SIGUSR1);
        pthread_kill(t->receiver, SIGUSR1);
        sched_yield();
    }
    return NULL;
}

static void signals_interrupting_send_and_recv_lose_no_byte_on(kind_pair *p,
                                                               rlab_conn *r,
                                                               rlab_conn *w)
{
    (void)p;
    atomic_store(&usr1_count, 0);
    storm_arg s = {.c = w, .len = (size_t)2 << 20, .count = 4};
    storm_targets tg = {.sender = &s, .receiver = pthread_self()};
    rlab_thread *ts = rlab_test_spawn(storm_sender, &s);
    rlab_thread *tk = rlab_test_spawn(storm_signaller, &tg);
    for (int i = 0; i < s.count; i++) {
        double timeout = i % 2 ? RLAB_FOREVER : RLAB_GUARD;
        void *data = NULL;
        size_t len = 0;
        ck_assert_rc(rlab_conn_recv(r, timeout, &data, &len), 0);
        ck_assert_uint_eq(len, s.len);
        ck_assert(pattern_ok(data, len, 40 + (unsigned)i));
        free(data);
    }
    rlab_test_join(ts);
    rlab_test_join(tk);
    ck_assert_rc(s.rc, 0);
    ck_assert_int_gt(atomic_load(&usr1_count), 0);
}

START_TEST(signals_interrupting_send_and_recv_lose_no_byte)
{
    struct sigaction sa = {.sa_handler = on_usr1}, old;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART */
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    with_each_kind(signals_interrupting_send_and_recv_lose_no_byte_on, NULL);
    ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
}
END_TEST

/* ----------------------------------------------------------- timeouts --- */

EACH_KIND_TEST(poll_times_out_then_sees_a_message_without_consuming_it)
{
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_conn_poll(r, 0), ETIMEDOUT);
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
    t0 = rlab_test_now();
    ck_assert_rc(rlab_conn_poll(r, 0.2), ETIMEDOUT);
    double dt = rlab_test_now() - t0;
    ck_assert_double_ge(dt, 0.2 - EARLY);
    ck_assert_double_lt(dt, 0.2 + LATE);
    send_str(w, "ready");
    t0 = rlab_test_now();
    ck_assert_rc(rlab_conn_poll(r, 0), 0);
    ck_assert_rc(rlab_conn_poll(r, RLAB_GUARD), 0);
    ck_assert_rc(rlab_conn_poll(r, RLAB_FOREVER), 0); /* safe: ready */
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
    recv_str(r, "ready");
    ck_assert_rc(rlab_conn_poll(r, 0), ETIMEDOUT);
    /* An empty message is a message too. */
    ck_assert_rc(rlab_conn_send(w, NULL, 0), 0);
    ck_assert_rc(rlab_conn_poll(r, RLAB_GUARD), 0);
    recv_is(r, "", 0);
}

EACH_KIND_TEST(poll_is_ready_only_once_a_whole_header_is_there)
{
    unsigned char h[8];
    header(h, 3);
    raw_write(w, h, 5);
    ck_assert_rc(rlab_conn_poll(r, 0), ETIMEDOUT);
    ck_assert_rc(rlab_conn_poll(r, 0.05), ETIMEDOUT);
    raw_write(w, h + 5, 3);
    /* Ready at the header: the body may still be on its way. */
    ck_assert_rc(rlab_conn_poll(r, RLAB_GUARD), 0);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, 0.05, &data, &len), ETIMEDOUT);
    ck_assert_rc(rlab_conn_poll(r, 0), 0); /* still mid-message */
    raw_write(w, "abc", 3);
    recv_str(r, "abc");
}

typedef struct {
    rlab_conn *c;
    atomic_bool done;
    int rc;
    double dt;
} poll_arg;

static void *poller(void *p)
{
    poll_arg *a = p;
    double t0 = rlab_test_now();
    a->rc = rlab_conn_poll(a->c, RLAB_GUARD);
    a->dt = rlab_test_now() - t0;
    atomic_store(&a->done, true);
    return NULL;
}

EACH_KIND_TEST(poll_wakes_when_a_message_arrives)
{
    poll_arg a = {.c = r};
    rlab_thread *t = rlab_test_spawn(poller, &a);
    rlab_test_wait_blocked(rlab_thread_native_id(t), &a.done, &a.rc);
    send_str(w, "wake");
    rlab_test_join(t);
    ck_assert_rc(a.rc, 0);
    rlab_test_assert_not_at_guard(a.dt);
    recv_str(r, "wake");
}

EACH_KIND_TEST(recv_times_out_and_loses_nothing)
{
    void *data = NULL;
    size_t len = 7;
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_conn_recv(r, 0, &data, &len), ETIMEDOUT);
    ck_assert_double_lt(rlab_test_now() - t0, LATE);
    t0 = rlab_test_now();
    ck_assert_rc(rlab_conn_recv(r, 0.2, &data, &len), ETIMEDOUT);
    double dt = rlab_test_now() - t0;
    ck_assert_double_ge(dt, 0.2 - EARLY);
    ck_assert_double_lt(dt, 0.2 + LATE);
    ck_assert_ptr_null(data); /* untouched on failure */
    ck_assert_uint_eq(len, 7);
    send_str(w, "first");
    send_str(w, "second");
    recv_str(r, "first");
    ck_assert_rc(rlab_conn_recv(r, 0, &data, &len), 0); /* buffered */
    ck_assert_uint_eq(len, 6);
    ck_assert(memcmp(data, "second", 6) == 0);
    free(data);
    data = NULL;
    ck_assert_rc(rlab_conn_recv(r, 0.05, &data, &len), ETIMEDOUT);
}

EACH_KIND_TEST(recv_timing_out_mid_message_keeps_it_for_the_next_recv)
{
    size_t n = 100000; /* beyond the receiver's 64 KiB buffer */
    unsigned char *msg = pattern_new(8 + n, 4);
    header(msg, n);
    void *data = NULL;
    size_t len = 0;
    /* Stop inside the header, then twice inside the body (each piece
     * fits in a pipe's 64 KiB, as this thread writes them all). */
    size_t cuts[] = {3, 8 + 10, 8 + 50000, 8 + n};
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        raw_write(w, msg + at, cuts[i] - at);
        at = cuts[i];
        double t0 = rlab_test_now();
        ck_assert_rc(rlab_conn_recv(r, 0.05, &data, &len), ETIMEDOUT);
        ck_assert_double_ge(rlab_test_now() - t0, 0.05 - EARLY);
        ck_assert_rc(rlab_conn_recv(r, 0, &data, &len), ETIMEDOUT);
    }
    ck_assert_ptr_null(data);
    raw_write(w, msg + at, cuts[3] - at);
    send_str(w, "next");
    recv_is(r, msg + 8, n);
    recv_str(r, "next");
    free(msg);
}

typedef struct {
    rlab_conn *c;
    size_t n, slow; /* the first `slow` body bytes come one by one */
} dribble_arg;

static void *dribbler(void *p)
{
    dribble_arg *a = p;
    unsigned char *msg = malloc(8 + a->n);
    pattern(msg + 8, a->n, 5);
    header(msg, a->n);
    int fd = rlab_conn_fileno(a->c);
    size_t at = 0;
    for (; at < 8 + a->slow; at++) {
        if (write(fd, msg + at, 1) != 1)
            break;
        rlab_test_sleep(0.02); /* pacing: time is what is tested */
    }
    while (at < 8 + a->n) {
        ssize_t k = write(fd, msg + at, 8 + a->n - at);
        if (k <= 0)
            break;
        at += (size_t)k;
    }
    free(msg);
    return NULL;
}

EACH_KIND_TEST(one_deadline_covers_a_message_arriving_in_pieces)
{
    /* Bytes keep coming every 20 ms for about a second; a recv of
     * 0.2 s must still end at its deadline, not wait per piece. */
    dribble_arg a = {.c = w, .n = 1000, .slow = 40};
    rlab_thread *t = rlab_test_spawn(dribbler, &a);
    void *data = NULL;
    size_t len = 0;
    double t0 = rlab_test_now();
    ck_assert_rc(rlab_conn_recv(r, 0.2, &data, &len), ETIMEDOUT);
    double dt = rlab_test_now() - t0;
    ck_assert_double_ge(dt, 0.2 - EARLY);
    ck_assert_double_lt(dt, 0.2 + LATE);
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), 0);
    ck_assert_uint_eq(len, a.n);
    ck_assert(pattern_ok(data, len, 5));
    free(data);
    rlab_test_join(t);
}

/* ---------------------------------------------------------------- EOF --- */

EACH_KIND_TEST(eof_comes_after_every_buffered_message_and_stays)
{
    send_str(w, "one");
    ck_assert_rc(rlab_conn_send(w, NULL, 0), 0);
    send_str(w, "three");
    close_end(&p->w);
    ck_assert_rc(rlab_conn_poll(r, 0), 0);
    recv_str(r, "one");
    recv_is(r, "", 0);
    recv_str(r, "three");
    ck_assert_rc(rlab_conn_poll(r, 0), 0); /* EOF is "ready" */
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), RLAB_EEOF);
    ck_assert_rc(rlab_conn_recv(r, 0, &data, &len), RLAB_EEOF);
    ck_assert_rc(rlab_conn_recv(r, RLAB_FOREVER, &data, &len),
                 RLAB_EEOF); /* safe: the stream has ended */
    ck_assert_rc(rlab_conn_poll(r, RLAB_GUARD), 0);
    ck_assert_ptr_null(data);
}

/* The peer closes in the header of a message (p->arg non-NULL) or in its
 * body. */
static void a_message_cut_short_by_the_peers_close_is_eof_on(kind_pair *p,
                                                             rlab_conn *r,
                                                             rlab_conn *w)
{
    bool in_header = p->arg != NULL;
    send_str(w, "whole");
    unsigned char msg[8 + 10];
    header(msg, 10);
    memset(msg + 8, 'x', 10);
    raw_write(w, msg, in_header ? 5 : 8 + 4);
    close_end(&p->w);
    recv_str(r, "whole");
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), RLAB_EEOF);
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), RLAB_EEOF);
    ck_assert_ptr_null(data);
}

START_TEST(a_message_cut_short_by_the_peers_close_is_eof)
{
    static char in_header;
    with_each_kind(a_message_cut_short_by_the_peers_close_is_eof_on, NULL);
    with_each_kind(a_message_cut_short_by_the_peers_close_is_eof_on,
                   &in_header);
}
END_TEST

START_TEST(a_peer_closing_with_data_unread_still_reads_as_eof)
{
    /* An AF_UNIX socket closed with unread data resets its peer
     * (ECONNRESET): the peer still gets what was sent to it, then EOF. */
    rlab_conn *a, *b;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    send_str(a, "never read");
    send_str(b, "for a");
    send_str(b, "also for a");
    rlab_conn_close(b);
    recv_str(a, "for a");
    recv_str(a, "also for a");
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(a, RLAB_GUARD, &data, &len), RLAB_EEOF);
    ck_assert_rc(rlab_conn_recv(a, RLAB_GUARD, &data, &len), RLAB_EEOF);
    ck_assert_rc(rlab_conn_send(a, "late", 4), RLAB_EEOF);
    rlab_conn_close(a);
}
END_TEST

static void send_to_a_closed_peer_is_eeof_and_sigpipe_does_not_kill_on(
    kind_pair *p, rlab_conn *r, rlab_conn *w)
{
    const unsigned char *big = p->arg;
    send_str(w, "before");
    recv_str(r, "before");
    close_end(&p->r);
    ck_assert_rc(rlab_conn_send(w, "x", 1), RLAB_EEOF);
    ck_assert_rc(rlab_conn_send(w, NULL, 0), RLAB_EEOF);
    ck_assert_rc(rlab_conn_send(w, big, 1 << 20), RLAB_EEOF);
    ck_assert(!sigpipe_pending());
    ck_assert(!sigpipe_blocked()); /* the mask is restored */
}

START_TEST(send_to_a_closed_peer_is_eeof_and_sigpipe_does_not_kill)
{
    /* The default action of SIGPIPE is to end the process: make sure that
     * is what a stray one would do here. */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigemptyset(&dfl.sa_mask);
    ck_assert_int_eq(sigaction(SIGPIPE, &dfl, &old), 0);
    ck_assert(!sigpipe_blocked());
    unsigned char *big = pattern_new(1 << 20, 6);
    with_each_kind(send_to_a_closed_peer_is_eeof_and_sigpipe_does_not_kill_on,
                   big);
    free(big);
    ck_assert_int_eq(sigaction(SIGPIPE, &old, NULL), 0);
}
END_TEST

START_TEST(a_sigpipe_the_caller_has_pending_stays_pending)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &pipe_set, &old), 0);
    const struct timespec zero = {0, 0};
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    rlab_conn_close(r);
    /* Blocked by the caller, nothing pending: send takes only its own. */
    ck_assert_rc(rlab_conn_send(w, "x", 1), RLAB_EEOF);
    ck_assert(!sigpipe_pending());
    ck_assert(sigpipe_blocked());
    /* One pending already: it is the caller's and stays. */
    ck_assert_int_eq(pthread_kill(pthread_self(), SIGPIPE), 0);
    ck_assert(sigpipe_pending());
    ck_assert_rc(rlab_conn_send(w, "x", 1), RLAB_EEOF);
    ck_assert(sigpipe_pending());
    ck_assert(sigpipe_blocked());
    ck_assert_int_eq(sigtimedwait(&pipe_set, NULL, &zero), SIGPIPE);
    ck_assert(!sigpipe_pending());
    rlab_conn_close(w);
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}
END_TEST

static void a_peer_closing_during_a_large_send_ends_it_with_eeof_on(
    kind_pair *p, rlab_conn *r, rlab_conn *w)
{
    big_arg s = {.c = w, .len = BIG, .seed = 7};
    rlab_thread *t = rlab_test_spawn(big_sender, &s);
    /* Part of the message, then the receiver goes away: the sender
     * is blocked on a full buffer or finds the peer gone. */
    ck_assert_rc(rlab_conn_poll(r, RLAB_GUARD), 0);
    close_end(&p->r);
    rlab_test_join(t);
    ck_assert_rc(s.rc, RLAB_EEOF);
}

START_TEST(a_peer_closing_during_a_large_send_ends_it_with_eeof)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigemptyset(&dfl.sa_mask);
    ck_assert_int_eq(sigaction(SIGPIPE, &dfl, &old), 0);
    with_each_kind(a_peer_closing_during_a_large_send_ends_it_with_eeof_on,
                   NULL);
    ck_assert_int_eq(sigaction(SIGPIPE, &old, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------- limits --- */

EACH_KIND_TEST(send_beyond_the_maximum_is_emsgsize_and_writes_nothing)
{
    unsigned char buf[101];
    pattern(buf, sizeof buf, 8);
    ck_assert_rc(rlab_conn_set_max_message(w, 100), 0);
    ck_assert_rc(rlab_conn_send(w, buf, 101), EMSGSIZE);
    ck_assert_rc(rlab_conn_poll(r, 0), ETIMEDOUT); /* nothing sent */
    ck_assert_rc(rlab_conn_send(w, buf, 100), 0);
    recv_pattern(r, 100, 8);
    /* The default maximum is 64 MiB (checked before any byte of the
     * message is read). */
    rlab_conn *r2, *w2;
    ck_assert_rc(rlab_pipe(p->duplex, &r2, &w2), 0);
    ck_assert_rc(rlab_conn_send(w2, buf, DEFAULT_MAX + 1), EMSGSIZE);
    ck_assert_rc(rlab_conn_poll(r2, 0), ETIMEDOUT);
    rlab_conn_close(r2);
    rlab_conn_close(w2);
}

EACH_KIND_TEST(recv_drops_an_oversized_message_and_the_next_arrives_intact)
{
    ck_assert_rc(rlab_conn_set_max_message(r, 100), 0);
    unsigned char buf[1000];
    pattern(buf, sizeof buf, 9);
    ck_assert_rc(rlab_conn_send(w, buf, 1000), 0);
    ck_assert_rc(rlab_conn_send(w, buf, 100), 0);
    ck_assert_rc(rlab_conn_send(w, buf, 101), 0);
    send_str(w, "after");
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), EMSGSIZE);
    ck_assert_ptr_null(data);
    recv_pattern(r, 100, 9);
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), EMSGSIZE);
    recv_str(r, "after");
    /* One larger than any pipe buffer, from another thread. */
    big_arg s = {.c = w, .len = BIG, .seed = 10};
    rlab_thread *t = rlab_test_spawn(big_sender, &s);
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), EMSGSIZE);
    rlab_test_join(t);
    ck_assert_rc(s.rc, 0);
    send_str(w, "in step");
    recv_str(r, "in step");
    ck_assert_ptr_null(data);
}

EACH_KIND_TEST(an_oversized_message_cut_by_a_timeout_is_still_dropped_whole)
{
    ck_assert_rc(rlab_conn_set_max_message(r, 100), 0);
    unsigned char msg[8 + 1000];
    header(msg, 1000);
    pattern(msg + 8, 1000, 11);
    raw_write(w, msg, 8 + 500);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, 0.05, &data, &len), ETIMEDOUT);
    ck_assert_rc(rlab_conn_poll(r, 0), 0); /* its header is in hand */
    raw_write(w, msg + 8 + 500, 500);
    send_str(w, "next");
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), EMSGSIZE);
    recv_str(r, "next");
    ck_assert_rc(rlab_conn_poll(r, 0), ETIMEDOUT);
}

START_TEST(set_max_message_rejects_zero_and_null_and_changes_nothing)
{
    rlab_conn *a, *b;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    ck_assert_rc(rlab_conn_set_max_message(a, 10), 0);
    ck_assert_rc(rlab_conn_set_max_message(a, 0), EINVAL);
    ck_assert_rc(rlab_conn_set_max_message(NULL, 10), EINVAL);
    ck_assert_rc(rlab_conn_send(a, "0123456789", 10), 0);
    ck_assert_rc(rlab_conn_send(a, "0123456789a", 11), EMSGSIZE);
    recv_str(b, "0123456789");
    ck_assert_rc(rlab_conn_set_max_message(a, SIZE_MAX), 0);
    send_str(a, "any size");
    recv_str(b, "any size");
    rlab_conn_close(a);
    rlab_conn_close(b);
}
END_TEST

/* ---------------------------------------------------------- arguments --- */

START_TEST(bad_arguments_are_einval_without_side_effects)
{
    rlab_conn *a = NULL, *b = NULL;
    ck_assert_rc(rlab_pipe(true, NULL, &b), EINVAL);
    ck_assert_rc(rlab_pipe(false, &a, NULL), EINVAL);
    ck_assert_rc(rlab_pipe(true, &a, &a), EINVAL);
    ck_assert_ptr_null(a);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(rlab_test_fd_count(), hygiene_fds);

    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    ck_assert_rc(rlab_conn_send(NULL, "x", 1), EINVAL);
    ck_assert_rc(rlab_conn_send(a, NULL, 1), EINVAL);
    ck_assert_rc(rlab_conn_poll(b, 0), ETIMEDOUT); /* nothing was sent */
    send_str(a, "kept");
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(NULL, RLAB_GUARD, &data, &len), EINVAL);
    ck_assert_rc(rlab_conn_recv(b, RLAB_GUARD, NULL, &len), EINVAL);
    ck_assert_rc(rlab_conn_recv(b, RLAB_GUARD, &data, NULL), EINVAL);
    ck_assert_rc(rlab_conn_recv(b, NAN, &data, &len), EINVAL);
    ck_assert_rc(rlab_conn_recv(b, -2.0, &data, &len), EINVAL);
    ck_assert_rc(rlab_conn_recv(b, -INFINITY, &data, &len), EINVAL);
    ck_assert_rc(rlab_conn_poll(NULL, 0), EINVAL);
    ck_assert_rc(rlab_conn_poll(b, NAN), EINVAL);
    ck_assert_rc(rlab_conn_poll(b, -0.5), EINVAL);
    ck_assert_ptr_null(data);
    recv_str(b, "kept"); /* the rejected calls took nothing */
    ck_assert_int_eq(rlab_conn_fileno(NULL), -1);
    ck_assert_int_eq(rlab__conn_fd(NULL), -1);
    ck_assert(!rlab__conn_can_read(NULL) && !rlab__conn_can_write(NULL));
    rlab_conn_close(NULL);
    rlab_conn_close(a);
    rlab_conn_close(b);
}
END_TEST

EACH_KIND_TEST(an_end_whose_descriptor_was_closed_is_ebadf)
{
    int rfd = rlab_conn_fileno(r), wfd = rlab_conn_fileno(w);
    int rsave = fcntl(rfd, F_DUPFD_CLOEXEC, 0);
    int wsave = fcntl(wfd, F_DUPFD_CLOEXEC, 0);
    ck_assert_int_ge(rsave, 0);
    ck_assert_int_ge(wsave, 0);
    close(rfd);
    close(wfd);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_send(w, "x", 1), EBADF);
    ck_assert_rc(rlab_conn_recv(r, 0, &data, &len), EBADF);
    ck_assert_rc(rlab_conn_recv(r, 0.05, &data, &len), EBADF);
    ck_assert_rc(rlab_conn_recv(r, RLAB_FOREVER, &data, &len), EBADF);
    ck_assert_rc(rlab_conn_poll(r, 0.05), EBADF);
    ck_assert_ptr_null(data);
    /* Put the descriptors back so close() has its own to close. */
    ck_assert_int_eq(dup3(rsave, rfd, O_CLOEXEC), rfd);
    ck_assert_int_eq(dup3(wsave, wfd, O_CLOEXEC), wfd);
    close(rsave);
    close(wsave);
    send_str(w, "again");
    recv_str(r, "again");
}

START_TEST(an_adopted_descriptor_is_a_working_connection)
{
    /* A pipe's write end: adopted, it must be recognised as a pipe (its
     * SIGPIPE guarded) and not taken for a socket. */
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    int fd = fcntl(rlab_conn_fileno(w), F_DUPFD_CLOEXEC, 0);
    rlab_conn *w2 = rlab__conn_adopt(fd, false, true);
    ck_assert_ptr_nonnull(w2);
    ck_assert_int_eq(rlab__conn_fd(w2), fd);
    ck_assert(!rlab__conn_can_read(w2) && rlab__conn_can_write(w2));
    rlab_conn_close(w);
    send_str(w2, "adopted");
    recv_str(r, "adopted");
    rlab_conn_close(r);
    ck_assert_rc(rlab_conn_send(w2, "gone", 4), RLAB_EEOF);
    ck_assert(!sigpipe_pending());
    rlab_conn_close(w2);

    /* A socket end, both ways. */
    rlab_conn *a, *b;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    fd = fcntl(rlab_conn_fileno(b), F_DUPFD_CLOEXEC, 0);
    rlab_conn *b2 = rlab__conn_adopt(fd, true, true);
    ck_assert_ptr_nonnull(b2);
    rlab_conn_close(b);
    send_str(a, "to b2");
    recv_str(b2, "to b2");
    send_str(b2, "to a");
    recv_str(a, "to a");
    rlab_conn_close(b2);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(a, RLAB_GUARD, &data, &len), RLAB_EEOF);
    rlab_conn_close(a);

    errno = 0;
    ck_assert_ptr_null(rlab__conn_adopt(-1, true, false));
    ck_assert_int_eq(errno, EBADF);
    ck_assert_ptr_null(rlab__conn_adopt(0, false, false));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ---------------------------------------------------------- processes --- */

START_TEST(messages_cross_to_a_fork_child_and_back)
{
    rlab_conn *a, *b;
    ck_assert_rc(rlab_pipe(true, &a, &b), 0);
    pid_t pid = rlab_test_fork();
    if (pid == 0) {
        /* Echoes every message with its bytes inverted, until EOF. */
        rlab_conn_close(a);
        for (;;) {
            void *m = NULL;
            size_t n = 0;
            int rc = rlab_conn_recv(b, RLAB_GUARD, &m, &n);
            if (rc == RLAB_EEOF)
                break;
            CHILD_CHECK_LINE(rc == 0);
            for (size_t i = 0; i < n; i++)
                ((unsigned char *)m)[i] ^= 0xff;
            CHILD_CHECK_LINE(rlab_conn_send(b, m, n) == 0);
            free(m);
        }
        rlab_conn_close(b);
        _exit(0);
    }
    rlab_conn_close(b);
    size_t sizes[] = {0, 1, 100, 65536, 300000, BIG};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        unsigned char *msg = pattern_new(n, 12 + (unsigned)k);
        /* The child reads a whole message before it answers. */
        ck_assert_rc(rlab_conn_send(a, msg, n), 0);
        for (size_t i = 0; i < n; i++)
            msg[i] ^= 0xff;
        recv_is(a, msg, n);
        free(msg);
    }
    rlab_conn_close(a); /* the child sees EOF and exits */
    rlab_test_expect_exit(pid, 0);
}
END_TEST

START_TEST(a_one_way_pipe_from_a_fork_child_ends_in_eof_when_it_exits)
{
    rlab_conn *r, *w;
    ck_assert_rc(rlab_pipe(false, &r, &w), 0);
    pid_t pid = rlab_test_fork();
    if (pid == 0) {
        rlab_conn_close(r);
        unsigned char *big = malloc(BIG);
        CHILD_CHECK_LINE(big);
        pattern(big, BIG, 20);
        CHILD_CHECK_LINE(rlab_conn_send(w, "from the child", 14) == 0);
        CHILD_CHECK_LINE(rlab_conn_send(w, big, BIG) == 0);
        CHILD_CHECK_LINE(rlab_conn_send(w, NULL, 0) == 0);
        free(big);
        _exit(0); /* the write end closes with the process */
    }
    rlab_conn_close(w); /* else this process keeps the pipe open */
    recv_str(r, "from the child");
    recv_pattern(r, BIG, 20);
    recv_is(r, "", 0);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), RLAB_EEOF);
    rlab_test_expect_exit(pid, 0);
    rlab_conn_close(r);
}
END_TEST

/* The child's side of the FIFO tests: writes three messages (one larger
 * than the pipe buffer) or reads and checks them. */
static void fifo_child_write(const char *path, rlab_conn *ready)
{
    if (ready)
        CHILD_CHECK_LINE(rlab_conn_send(ready, "go", 2) == 0);
    rlab_conn *w = NULL;
    CHILD_CHECK_LINE(rlab_fifo_open(path, true, RLAB_GUARD, &w) == 0);
    unsigned char *big = malloc(1 << 20);
    CHILD_CHECK_LINE(big);
    pattern(big, 1 << 20, 30);
    CHILD_CHECK_LINE(rlab_conn_send(w, "first", 5) == 0);
    CHILD_CHECK_LINE(rlab_conn_send(w, big, 1 << 20) == 0);
    CHILD_CHECK_LINE(rlab_conn_send(w, NULL, 0) == 0);
    free(big);
    rlab_conn_close(w);
}

static void fifo_child_read(const char *path, rlab_conn *ready)
{
    if (ready)
        CHILD_CHECK_LINE(rlab_conn_send(ready, "go", 2) == 0);
    rlab_conn *r = NULL;
    CHILD_CHECK_LINE(rlab_fifo_open(path, false, RLAB_GUARD, &r) == 0);
    void *m = NULL;
    size_t n = 0;
    CHILD_CHECK_LINE(rlab_conn_recv(r, RLAB_GUARD, &m, &n) == 0);
    CHILD_CHECK_LINE(n == 5 && memcmp(m, "first", 5) == 0);
    free(m);
    CHILD_CHECK_LINE(rlab_conn_recv(r, RLAB_GUARD, &m, &n) == 0);
    CHILD_CHECK_LINE(n == 1 << 20 && pattern_ok(m, n, 30));
    free(m);
    CHILD_CHECK_LINE(rlab_conn_recv(r, RLAB_GUARD, &m, &n) == 0);
    CHILD_CHECK_LINE(n == 0);
    free(m);
    CHILD_CHECK_LINE(rlab_conn_recv(r, RLAB_GUARD, &m, &n) == RLAB_EEOF);
    rlab_conn_close(r);
}

static void fifo_parent_read(const char *path)
{
    rlab_conn *r = NULL;
    ck_assert_rc(rlab_fifo_open(path, false, RLAB_GUARD, &r), 0);
    ck_assert(rlab__conn_can_read(r) && !rlab__conn_can_write(r));
    ck_assert(fcntl(rlab_conn_fileno(r), F_GETFD) & FD_CLOEXEC);
    ck_assert(!(fcntl(rlab_conn_fileno(r), F_GETFL) & O_NONBLOCK));
    ck_assert_rc(rlab_conn_send(r, "x", 1), EBADF);
    recv_str(r, "first");
    recv_pattern(r, 1 << 20, 30);
    recv_is(r, "", 0);
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(r, RLAB_GUARD, &data, &len), RLAB_EEOF);
    rlab_conn_close(r);
}

static void fifo_parent_write(const char *path)
{
    rlab_conn *w = NULL;
    ck_assert_rc(rlab_fifo_open(path, true, RLAB_GUARD, &w), 0);
    ck_assert(!rlab__conn_can_read(w) && rlab__conn_can_write(w));
    ck_assert(fcntl(rlab_conn_fileno(w), F_GETFD) & FD_CLOEXEC);
    ck_assert(!(fcntl(rlab_conn_fileno(w), F_GETFL) & O_NONBLOCK));
    void *data = NULL;
    size_t len = 0;
    ck_assert_rc(rlab_conn_recv(w, 0, &data, &len), EBADF);
    unsigned char *big = pattern_new(1 << 20, 30);
    send_str(w, "first");
    ck_assert_rc(rlab_conn_send(w, big, 1 << 20), 0);
    ck_assert_rc(rlab_conn_send(w, NULL, 0), 0);
    free(big);
    rlab_conn_close(w);
}

START_TEST(a_fifo_carries_messages_between_two_processes_either_way)
{
    fifo_place f;
    fifo_place_make(&f);
    /* The child writes, this process reads. */
    pid_t pid = rlab_test_fork();
    if (pid == 0) {
        fifo_child_write(f.path, NULL);
        _exit(0);
    }
    fifo_parent_read(f.path);
    rlab_test_expect_exit(pid, 0);
    struct stat st;
    ck_assert_int_eq(stat(f.path, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* The FIFO is reused: this process writes, the child reads. */
    pid = rlab_test_fork();
    if (pid == 0) {
        fifo_child_read(f.path, NULL);
        _exit(0);
    }
    fifo_parent_write(f.path);
    rlab_test_expect_exit(pid, 0);
    fifo_place_remove(&f);
}
END_TEST

START_TEST(fifo_opens_wait_for_the_peer_on_either_side)
{
    fifo_place f;
    fifo_place_make(&f);
    for (int child_writes = 0; child_writes < 2; child_writes++) {
        /* The child announces its open and is seen waiting in it before
         * this process opens the other side. */
        rlab_conn *ready_r, *ready_w;
        ck_assert_rc(rlab_pipe(false, &ready_r, &ready_w), 0);
        pid_t pid = rlab_test_fork();
        if (pid == 0) {
            rlab_conn_close(ready_r);
            if (child_writes)
                fifo_child_write(f.path, ready_w);
            else
                fifo_child_read(f.path, ready_w);
            _exit(0);
        }
        rlab_conn_close(ready_w);
        recv_str(ready_r, "go");
        await_sleeping(pid);
        if (child_writes)
            fifo_parent_read(f.path);
        else
            fifo_parent_write(f.path);
        rlab_test_expect_exit(pid, 0);
        rlab_conn_close(ready_r);
    }
    fifo_place_remove(&f);
}
END_TEST

START_TEST(a_fifo_readers_open_returns_once_a_writer_opened_before_any_message)
{
    fifo_place f;
    fifo_place_make(&f);
    rlab_conn *opened_r, *opened_w;
    ck_assert_rc(rlab_pipe(false, &opened_r, &opened_w), 0);
    pid_t pid = rlab_test_fork();
    if (pid == 0) {
        rlab_conn_close(opened_r);
        rlab_conn *r = NULL;
        CHILD_CHECK_LINE(rlab_fifo_open(f.path, false, RLAB_GUARD, &r) == 0);
        CHILD_CHECK_LINE(rlab_conn_send(opened_w, "opened", 6) == 0);
        void *m = NULL;
        size_t n = 0;
        CHILD_CHECK_LINE(rlab_conn_recv(r, RLAB_GUARD, &m, &n) == 0);
        CHILD_CHECK_LINE(n == 4 && memcmp(m, "late", 4) == 0);
        free(m);
        CHILD_CHECK_LINE(rlab_conn_recv(r, RLAB_GUARD, &m, &n) == RLAB_EEOF);
        rlab_conn_close(r);
        _exit(0);
    }
    rlab_conn_close(opened_w);
    rlab_conn *w = NULL;
    ck_assert_rc(rlab_fifo_open(f.path, true, RLAB_GUARD, &w), 0);
    /* Nothing is sent until the reader's open has returned. */
    recv_str(opened_r, "opened");
    send_str(w, "late");
    rlab_conn_close(w);
    rlab_test_expect_exit(pid, 0);
    rlab_conn_close(opened_r);
    fifo_place_remove(&f);
}
END_TEST

START_TEST(fifo_open_times_out_without_a_peer)
{
    fifo_place f;
    fifo_place_make(&f);
    for (int as_writer = 0; as_writer < 2; as_writer++) {
        rlab_conn *c = NULL;
        double t0 = rlab_test_now();
        ck_assert_rc(rlab_fifo_open(f.path, as_writer, 0.2, &c), ETIMEDOUT);
        double dt = rlab_test_now() - t0;
        ck_assert_double_ge(dt, 0.2 - EARLY);
        ck_assert_double_lt(dt, 0.2 + LATE);
        ck_assert_ptr_null(c);
        t0 = rlab_test_now();
        ck_assert_rc(rlab_fifo_open(f.path, as_writer, 0, &c), ETIMEDOUT);
        ck_assert_double_lt(rlab_test_now() - t0, LATE);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(rlab_test_fd_count(), hygiene_fds);
    }
    /* The FIFO was made (mode 0600) and stays: it is the meeting point. */
    struct stat st;
    ck_assert_int_eq(stat(f.path, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    fifo_place_remove(&f);
}
END_TEST

START_TEST(fifo_open_rejects_bad_arguments_and_paths_that_are_no_fifo)
{
    fifo_place f;
    fifo_place_make(&f);
    rlab_conn *c = NULL;
    struct stat st;
    ck_assert_rc(rlab_fifo_open(NULL, false, 1, &c), EINVAL);
    ck_assert_rc(rlab_fifo_open("", true, 1, &c), EINVAL);
    ck_assert_rc(rlab_fifo_open(f.path, false, 1, NULL), EINVAL);
    ck_assert_rc(rlab_fifo_open(f.path, true, NAN, &c), EINVAL);
    ck_assert_rc(rlab_fifo_open(f.path, false, -2.0, &c), EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(stat(f.path, &st), -1); /* nothing was made */
    ck_assert_int_eq(errno, ENOENT);

    /* A regular file is no FIFO, and is left as it was. */
    int fd = open(f.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "data", 4), 4);
    close(fd);
    ck_assert_rc(rlab_fifo_open(f.path, false, 0.05, &c), EEXIST);
    ck_assert_rc(rlab_fifo_open(f.path, true, 0.05, &c), EEXIST);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(stat(f.path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_size, 4);

    char missing[128];
    snprintf(missing, sizeof missing, "%s/no/such/dir", f.dir);
    ck_assert_rc(rlab_fifo_open(missing, false, 0.05, &c), ENOENT);
    ck_assert_ptr_null(c);
    fifo_place_remove(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipe");

    /* Every case: the hygiene fixture, and a timeout beyond RLAB_GUARD (a
     * guard fails first). */
    TCase *tc = rlab_test_tcase("messages", hygiene_begin, hygiene_end, 120);
    tcase_add_test(
        tc, duplex_round_trip_of_small_empty_and_binary_messages_both_ways);
    tcase_add_test(tc, many_messages_keep_their_order_and_boundaries);
    tcase_add_test(tc, message_of_8_mib_crosses_a_duplex_pipe_both_ways);
    tcase_add_test(tc, message_of_8_mib_crosses_a_one_way_pipe);
    tcase_add_test(tc, one_way_pipe_has_a_receiving_end_and_a_sending_end);
    tcase_add_test(
        tc, descriptors_are_close_on_exec_sockets_when_duplex_pipes_otherwise);
    tcase_add_test(tc,
                   one_thread_sends_while_another_receives_on_one_duplex_end);
    tcase_add_test(tc, signals_interrupting_send_and_recv_lose_no_byte);
    tcase_add_test(tc, read_ahead_shows_in_conn_buffered_not_on_the_descriptor);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("timeouts", hygiene_begin, hygiene_end, 120);
    tcase_add_test(tc, poll_times_out_then_sees_a_message_without_consuming_it);
    tcase_add_test(tc, poll_is_ready_only_once_a_whole_header_is_there);
    tcase_add_test(tc, poll_wakes_when_a_message_arrives);
    tcase_add_test(tc, recv_times_out_and_loses_nothing);
    tcase_add_test(tc, recv_timing_out_mid_message_keeps_it_for_the_next_recv);
    tcase_add_test(tc, one_deadline_covers_a_message_arriving_in_pieces);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("eof", hygiene_begin, hygiene_end, 120);
    tcase_add_test(tc, eof_comes_after_every_buffered_message_and_stays);
    tcase_add_test(tc, a_message_cut_short_by_the_peers_close_is_eof);
    tcase_add_test(tc, a_peer_closing_with_data_unread_still_reads_as_eof);
    tcase_add_test(tc, send_to_a_closed_peer_is_eeof_and_sigpipe_does_not_kill);
    tcase_add_test(tc, a_sigpipe_the_caller_has_pending_stays_pending);
    tcase_add_test(tc, a_peer_closing_during_a_large_send_ends_it_with_eeof);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("limits", hygiene_begin, hygiene_end, 120);
    tcase_add_test(tc, send_beyond_the_maximum_is_emsgsize_and_writes_nothing);
    tcase_add_test(tc,
                   recv_drops_an_oversized_message_and_the_next_arrives_intact);
    tcase_add_test(
        tc, an_oversized_message_cut_by_a_timeout_is_still_dropped_whole);
    tcase_add_test(tc,
                   set_max_message_rejects_zero_and_null_and_changes_nothing);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("arguments", hygiene_begin, hygiene_end, 120);
    tcase_add_test(tc, bad_arguments_are_einval_without_side_effects);
    tcase_add_test(tc, an_end_whose_descriptor_was_closed_is_ebadf);
    tcase_add_test(tc, an_adopted_descriptor_is_a_working_connection);
    suite_add_tcase(s, tc);

    tc = rlab_test_tcase("processes", hygiene_begin, hygiene_end, 120);
    tcase_add_test(tc, messages_cross_to_a_fork_child_and_back);
    tcase_add_test(tc,
                   a_one_way_pipe_from_a_fork_child_ends_in_eof_when_it_exits);
    tcase_add_test(tc,
                   a_fifo_carries_messages_between_two_processes_either_way);
    tcase_add_test(tc, fifo_opens_wait_for_the_peer_on_either_side);
    tcase_add_test(
        tc,
        a_fifo_readers_open_returns_once_a_writer_opened_before_any_message);
    tcase_add_test(tc, fifo_open_times_out_without_a_peer);
    tcase_add_test(tc,
                   fifo_open_rejects_bad_arguments_and_paths_that_are_no_fifo);
    suite_add_tcase(s, tc);

    return rlab_test_main(s);
}
