/*
 * pipe.c - multiprocessing.Pipe and Connection, and named pipes (FIFOs).
 *
 * Kinds.  A duplex Pipe is socketpair(AF_UNIX, SOCK_STREAM); a one-way
 * Pipe and a FIFO are kernel pipes.  Every descriptor is O_CLOEXEC, and
 * every descriptor stays in blocking mode: O_NONBLOCK belongs to the open
 * file description, which a fork child (or a program handed the fd)
 * shares, so it is never toggled behind their backs.  Timed waits poll()
 * before they read; socket reads use MSG_DONTWAIT.
 *
 * Wire format.  A message is an 8-byte little-endian unsigned length, then
 * that many bytes.  The length UINT64_MAX is reserved: it is the "hello"
 * frame (no body) a FIFO writer sends as soon as it has opened, and every
 * receiver skips it wherever it appears.  It exists because Linux lets a
 * FIFO reader's poll() see data and hang-ups but never a writer that has
 * merely opened, so without it a reader could not wait for its peer.
 *
 * SIGPIPE never kills the process.  Sockets send with MSG_NOSIGNAL.  Pipes
 * use the standard technique (as libpq does): block SIGPIPE in the calling
 * thread around the write, and if the write failed with EPIPE, consume the
 * SIGPIPE it raised with a zero-timeout sigtimedwait() before restoring the
 * mask, unless one was already pending before the call (then it is the
 * caller's and stays pending).  Only the calling thread's mask changes, and
 * only for the duration of the send.  A peer that is gone is RLAB_EEOF.
 *
 * Receiving.  A connection buffers what it reads (up to 64 KiB at a time;
 * the body of a large message is read straight into its own allocation).
 * The message in progress (part of its header, or its header and part of
 * its body) lives in the connection, so a recv whose deadline passes in the
 * middle of a message returns ETIMEDOUT and keeps what it has read: the
 * next recv continues where it stopped, no byte is lost, and one deadline
 * covers the whole message however many pieces it arrives in.  A message
 * longer than the receiver's maximum is read and thrown away the same way
 * (its bytes never accumulate) and reported once, with EMSGSIZE, when its
 * last byte has gone, so the stream stays in step.  End of file is sticky:
 * every buffered message is delivered first, then each recv returns
 * RLAB_EEOF; a message cut short by the peer's close is dropped.  A reset
 * connection (ECONNRESET: an AF_UNIX peer that closed with data unread)
 * reads as end of file too.
 *
 * Threads.  A connection is not meant for concurrent use, with one
 * exception: on a duplex end one thread may send while another receives
 * or polls.  The sending and receiving halves share only the descriptor,
 * the direction flags (fixed at creation) and the maximum message size (an
 * atomic, so rlab_conn_set_max_message may be called at any time).  Two
 * threads sending, two receiving, or a close concurrent with any other
 * call, need the caller's own lock.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "mp_internal.h"

#define HDR 8
#define HELLO UINT64_MAX
#define DEFAULT_MAX ((size_t)64 << 20)
#define RBUF_CAP ((size_t)64 << 10)
/* A body remainder at least this long is read into the message itself,
 * not through the buffer. */
#define DIRECT_MIN ((size_t)16 << 10)
/* Largest single read: keeps the count well inside ssize_t. */
#define READ_MAX ((size_t)1 << 30)

enum { ST_HEADER, ST_BODY, ST_SKIP };

struct rlab_conn {
    int fd;
    bool can_read, can_write, is_sock;
    atomic_size_t max;
    /* The receiving half. */
    unsigned char *rbuf; /* RBUF_CAP bytes, made on the first read */
    size_t rpos, rend;   /* unread bytes: rbuf[rpos, rend) */
    bool eof;
    int stage;
    unsigned char *body; /* ST_BODY: blen bytes, bgot of them read */
    size_t blen, bgot;
    uint64_t skip; /* ST_SKIP: bytes of an oversized message still to drop */
};

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ------------------------------------------------------------ helpers --- */

static rlab_conn *conn_alloc(void)
{
    rlab_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = -1;
    atomic_init(&c->max, DEFAULT_MAX);
    c->stage = ST_HEADER;
    return c;
}

static void conn_init(rlab_conn *c, int fd, bool can_read, bool can_write)
{
    struct stat st;
    c->fd = fd;
    c->can_read = can_read;
    c->can_write = can_write;
    c->is_sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Waits until fd reports one of events (or an error or hang-up, which the
 * next read or write will report): 0, ETIMEDOUT, EBADF for a closed fd. */
static int wait_fd(int fd, short events, const rlab_deadline *d)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        struct timespec rel = {0, 0}, *tp = &rel;
        if (d->kind == RLAB_WAIT_FOREVER) {
            tp = NULL;
        } else if (d->kind == RLAB_WAIT_DEADLINE) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            rel.tv_sec = d->at.tv_sec - now.tv_sec;
            rel.tv_nsec = d->at.tv_nsec - now.tv_nsec;
            if (rel.tv_nsec < 0) {
                rel.tv_nsec += 1000000000L;
                rel.tv_sec--;
            }
            if (rel.tv_sec < 0)
                rel = (struct timespec){0, 0};
        }
        int n = ppoll(&p, 1, tp, NULL);
        if (n > 0)
            return (p.revents & POLLNVAL) ? EBADF : 0;
        if (n == 0) {
            if (d->kind != RLAB_WAIT_DEADLINE || rlab__expired(d))
                return ETIMEDOUT;
            continue; /* woke a hair early: the deadline decides */
        }
        if (errno != EINTR)
            return errno;
    }
}

/* ------------------------------------------------------------ sending --- */

typedef struct {
    bool was_pending; /* a SIGPIPE was pending before: not ours to take */
    bool unblock;     /* we blocked SIGPIPE: unblock it after */
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
    sigset_t pipe_set, pending, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    g->unblock = false;
    /* A pending SIGPIPE is necessarily blocked already. */
    if (!g->was_pending && pthread_sigmask(SIG_BLOCK, &pipe_set, &old) == 0)
        g->unblock = sigismember(&old, SIGPIPE) != 1;
}

static void sigpipe_unblock(const sigpipe_guard *g, bool got_epipe)
{
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (got_epipe && !g->was_pending) {
        /* The EPIPE raised a SIGPIPE at this thread: take it. */
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) == -1 && errno == EINTR)
            ;
    }
    if (g->unblock)
        pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL);
}

/* Writes the iovecs whole: loops over partial writes and EINTR. */
static int write_all(rlab_conn *c, struct iovec *v, int cnt)
{
    static const rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    sigpipe_guard g = {false, false};
    bool epipe = false;
    int rc = 0;
    if (!c->is_sock)
        sigpipe_block(&g);
    while (cnt > 0) {
        ssize_t w;
        if (c->is_sock) {
            struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)cnt};
            w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        } else {
            w = writev(c->fd, v, cnt);
        }
        if (w < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                /* Someone made the description non-blocking. */
                rc = wait_fd(c->fd, POLLOUT, &forever);
                if (rc)
                    break;
                continue;
            }
            epipe = e == EPIPE;
            rc = e == EPIPE || e == ECONNRESET ? RLAB_EEOF : e;
            break;
        }
        size_t done = (size_t)w;
        while (cnt > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    if (!c->is_sock)
        sigpipe_unblock(&g, epipe);
    return rc;
}

int rlab_conn_send(rlab_conn *c, const void *data, size_t len)
{
    if (!c || (!data && len > 0))
        return EINVAL;
    if (!c->can_write)
        return EBADF;
    if (len > atomic_load_explicit(&c->max, memory_order_relaxed) ||
        (uint64_t)len == HELLO)
        return EMSGSIZE;
    unsigned char hdr[HDR];
    put_le64(hdr, len);
    struct iovec v[2] = {{hdr, HDR}, {(void *)data, len}};
    return write_all(c, v, len > 0 ? 2 : 1);
}

int rlab__conn_sendv(rlab_conn *c, const struct iovec *iov, int n)
{
    if (!c || n < 0 || n > RLAB__SENDV_MAX || (n > 0 && !iov))
        return EINVAL;
    if (!c->can_write)
        return EBADF;
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    if (len > atomic_load_explicit(&c->max, memory_order_relaxed) ||
        (uint64_t)len == HELLO)
        return EMSGSIZE;
    unsigned char hdr[HDR];
    put_le64(hdr, len);
    struct iovec v[RLAB__SENDV_MAX + 1];
    v[0] = (struct iovec){hdr, HDR};
    int k = 1;
    for (int i = 0; i < n; i++)
        if (iov[i].iov_len > 0)
            v[k++] = iov[i];
    return write_all(c, v, k);
}

/* ---------------------------------------------------------- receiving --- */

/* Reads at most n bytes into buf, waiting until the deadline for the first:
 * 0 and *got (0 at end of file), ETIMEDOUT, or an errno code. */
static int read_some(rlab_conn *c, void *buf, size_t n, const rlab_deadline *d,
                     size_t *got)
{
    if (n > READ_MAX)
        n = READ_MAX;
    /* Without a deadline the read itself blocks.  With one, a pipe read
     * (which cannot time out) waits in poll first; a socket read tries
     * first (MSG_DONTWAIT) and polls only when nothing is there. */
    bool timed = d->kind != RLAB_WAIT_FOREVER;
    bool must_wait = timed && !c->is_sock;
    for (;;) {
        if (must_wait) {
            int rc = wait_fd(c->fd, POLLIN, d);
            if (rc)
                return rc;
        }
        ssize_t r = c->is_sock ? recv(c->fd, buf, n, timed ? MSG_DONTWAIT : 0)
                               : read(c->fd, buf, n);
        if (r >= 0) {
            *got = (size_t)r;
            return 0;
        }
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == ECONNRESET) {
            *got = 0;
            return 0;
        }
        if (e != EAGAIN && e != EWOULDBLOCK)
            return e;
        must_wait = true;
    }
}

/* Reads more of the stream (into the buffer, or straight into a large
 * body): 0 when bytes arrived or end of file was seen, else an error. */
static int fill(rlab_conn *c, const rlab_deadline *d)
{
    unsigned char *dst;
    size_t room;
    bool direct = false;
    if (c->rpos == c->rend)
        c->rpos = c->rend = 0;
    if (c->stage == ST_BODY && c->rend == 0 &&
        c->blen - c->bgot >= DIRECT_MIN) {
        dst = c->body + c->bgot;
        room = c->blen - c->bgot;
        direct = true;
    } else {
        if (!c->rbuf && !(c->rbuf = malloc(RBUF_CAP)))
            return ENOMEM;
        if (c->rpos > 0) { /* fewer than HDR bytes left: keep them */
            memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
            c->rend -= c->rpos;
            c->rpos = 0;
        }
        dst = c->rbuf + c->rend;
        room = RBUF_CAP - c->rend;
    }
    size_t got = 0;
    int rc = read_some(c, dst, room, d, &got);
    if (rc)
        return rc;
    if (got == 0)
        c->eof = true;
    else if (direct)
        c->bgot += got;
    else
        c->rend += got;
    return 0;
}

/* Moves the message in progress forward with the bytes already buffered:
 * 0 with *out and *outlen once it is whole; EMSGSIZE once an oversized
 * message has been dropped; ENOMEM (its header stays buffered); EAGAIN
 * when more bytes are needed. */
static int advance(rlab_conn *c, void **out, size_t *outlen)
{
    for (;;) {
        size_t avail = c->rend - c->rpos;
        if (c->stage == ST_HEADER) {
            if (avail < HDR)
                return EAGAIN;
            uint64_t n = get_le64(c->rbuf + c->rpos);
            if (n == HELLO) {
                c->rpos += HDR;
                continue;
            }
            if (n > atomic_load_explicit(&c->max, memory_order_relaxed)) {
                c->rpos += HDR;
                c->skip = n;
                c->stage = ST_SKIP;
                continue;
            }
            unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
            if (!b)
                return ENOMEM;
            c->rpos += HDR;
            c->body = b;
            c->blen = (size_t)n;
            c->bgot = 0;
            c->stage = ST_BODY;
        } else if (c->stage == ST_BODY) {
            size_t k = c->blen - c->bgot;
            if (k > avail)
                k = avail;
            if (k > 0) {
                memcpy(c->body + c->bgot, c->rbuf + c->rpos, k);
                c->bgot += k;
                c->rpos += k;
            }
            if (c->bgot < c->blen)
                return EAGAIN;
            *out = c->body;
            *outlen = c->blen;
            c->body = NULL;
            c->stage = ST_HEADER;
            return 0;
        } else {
            size_t k = c->skip < avail ? (size_t)c->skip : avail;
            c->rpos += k;
            c->skip -= k;
            if (c->skip > 0)
                return EAGAIN;
            c->stage = ST_HEADER;
            return EMSGSIZE;
        }
    }
}

/* At end of file: a message cut short by the peer's close is dropped. */
static void drop_partial(rlab_conn *c)
{
    free(c->body);
    c->body = NULL;
    c->stage = ST_HEADER;
    c->skip = 0;
    c->rpos = c->rend = 0;
}

int rlab_conn_recv(rlab_conn *c, double timeout, void **data, size_t *len)
{
    rlab_deadline d;
    if (!c || !data || !len || rlab__deadline(timeout, &d))
        return EINVAL;
    if (!c->can_read)
        return EBADF;
    for (;;) {
        int rc = advance(c, data, len);
        if (rc != EAGAIN)
            return rc;
        if (c->eof) {
            drop_partial(c);
            return RLAB_EEOF;
        }
        rc = fill(c, &d);
        if (rc)
            return rc;
    }
}

int rlab_conn_poll(rlab_conn *c, double timeout)
{
    rlab_deadline d;
    if (!c || rlab__deadline(timeout, &d))
        return EINVAL;
    if (!c->can_read)
        return EBADF;
    for (;;) {
        while (c->stage == ST_HEADER && c->rend - c->rpos >= HDR &&
               get_le64(c->rbuf + c->rpos) == HELLO)
            c->rpos += HDR;
        /* Ready once recv will not wait for a header: one is in hand
         * (buffered, or already taken for a message in progress), or the
         * stream has ended. */
        if (c->stage != ST_HEADER || c->rend - c->rpos >= HDR || c->eof)
            return 0;
        int rc = fill(c, &d);
        if (rc)
            return rc;
    }
}

/* ------------------------------------------------------------ handles --- */

int rlab_pipe(bool duplex, rlab_conn **a, rlab_conn **b)
{
    if (!a || !b || a == b)
        return EINVAL;
    rlab_conn *ca = conn_alloc(), *cb = conn_alloc();
    if (!ca || !cb) {
        free(ca);
        free(cb);
        return ENOMEM;
    }
    int fds[2];
    int r = duplex ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)
                   : pipe2(fds, O_CLOEXEC);
    if (r != 0) {
        int e = errno;
        free(ca);
        free(cb);
        return e;
    }
    conn_init(ca, fds[0], true, duplex);
    conn_init(cb, fds[1], duplex, true);
    *a = ca;
    *b = cb;
    return 0;
}

int rlab_conn_set_max_message(rlab_conn *c, size_t max)
{
    if (!c || max == 0)
        return EINVAL;
    atomic_store_explicit(&c->max, max, memory_order_relaxed);
    return 0;
}

int rlab_conn_fileno(const rlab_conn *c)
{
    return c ? c->fd : -1;
}

void rlab_conn_close(rlab_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd); /* on Linux the fd is gone even after EINTR */
    free(c->rbuf);
    free(c->body);
    free(c);
}

int rlab__conn_fd(const rlab_conn *c)
{
    return c ? c->fd : -1;
}

bool rlab__conn_can_read(const rlab_conn *c)
{
    return c && c->can_read;
}

bool rlab__conn_can_write(const rlab_conn *c)
{
    return c && c->can_write;
}

bool rlab__conn_buffered(const rlab_conn *c)
{
    if (!c || !c->can_read)
        return false;
    if (c->stage != ST_HEADER || c->eof)
        return true;
    size_t pos = c->rpos;
    while (c->rend - pos >= HDR && get_le64(c->rbuf + pos) == HELLO)
        pos += HDR;
    return c->rend - pos >= HDR;
}

rlab_conn *rlab__conn_adopt(int fd, bool can_read, bool can_write)
{
    if (fd < 0 || (!can_read && !can_write)) {
        errno = fd < 0 ? EBADF : EINVAL;
        return NULL;
    }
    rlab_conn *c = conn_alloc();
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    conn_init(c, fd, can_read, can_write);
    return c;
}

/* -------------------------------------------------------------- FIFOs --- */

/* mkfifo(path, 0600) unless a FIFO is there already. */
static int make_fifo(const char *path)
{
    if (mkfifo(path, 0600) == 0)
        return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        return 0;
    return e;
}

/* The descriptor must be a FIFO (the path may have been replaced between
 * make_fifo and open): 0, or EEXIST after closing it. */
static int check_fifo(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
        return 0;
    close(fd);
    return EEXIST;
}

static int set_blocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1)
        return errno;
    return 0;
}

/* Pauses between a writer's attempts: 1 ms doubling to 32 ms, never past
 * the deadline. */
static void backoff(long *ns, const rlab_deadline *d)
{
    struct timespec ts = {0, *ns};
    if (d->kind == RLAB_WAIT_DEADLINE) {
        double left =
            (double)d->at.tv_sec + (double)d->at.tv_nsec / 1e9 - rlab__now();
        if (left < (double)*ns / 1e9)
            ts.tv_nsec = left > 0 ? (long)(left * 1e9) : 0;
    }
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
    if (*ns < 32000000L)
        *ns *= 2;
}

/* The reading end: opened at once without blocking (so writers see a
 * reader), then the wait for a writer's hello frame or first bytes, or
 * the hang-up of a writer that came and went. */
static int open_reader(const char *path, const rlab_deadline *d, int *out)
{
    int fd;
    do
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    while (fd == -1 && errno == EINTR);
    if (fd == -1)
        return errno;
    int rc = check_fifo(fd);
    if (rc)
        return rc;
    rc = wait_fd(fd, POLLIN, d);
    if (!rc)
        rc = set_blocking(fd);
    if (rc) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* The writing end: a non-blocking open fails with ENXIO while the FIFO
 * has no reader, so it is retried until the deadline; without one, a
 * blocking open waits for the reader in the kernel. */
static int open_writer(const char *path, const rlab_deadline *d, int *out)
{
    int flags = O_WRONLY | O_CLOEXEC;
    if (d->kind != RLAB_WAIT_FOREVER)
        flags |= O_NONBLOCK;
    long pause = 1000000L;
    int fd;
    for (;;) {
        fd = open(path, flags);
        if (fd >= 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != ENXIO)
            return e;
        if (rlab__expired(d))
            return ETIMEDOUT;
        backoff(&pause, d);
    }
    int rc = check_fifo(fd);
    if (rc)
        return rc;
    if ((rc = set_blocking(fd))) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int rlab_fifo_open(const char *path, bool for_write, double timeout,
                   rlab_conn **out)
{
    rlab_deadline d;
    if (!path || !*path || !out || rlab__deadline(timeout, &d))
        return EINVAL;
    rlab_conn *c = conn_alloc();
    if (!c)
        return ENOMEM;
    int fd = -1;
    int rc = make_fifo(path);
    if (!rc)
        rc =
            for_write ? open_writer(path, &d, &fd) : open_reader(path, &d, &fd);
    if (rc) {
        free(c);
        return rc;
    }
    conn_init(c, fd, !for_write, for_write);
    if (for_write) {
        /* Tells a waiting reader that its writer is here.  A reader that
         * left meanwhile shows up as RLAB_EEOF on the first send. */
        unsigned char hdr[HDR];
        put_le64(hdr, HELLO);
        struct iovec v = {hdr, HDR};
        write_all(c, &v, 1);
    }
    *out = c;
    return 0;
}
