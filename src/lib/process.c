/*
 * process.c - multiprocessing.Process: the task registry, byte buffers, the
 * three start methods (fork, spawn, forkserver), the child side of each
 * (rlab_mp_main), and the exit-time cleanup of children.
 *
 * Reaping.  Every child is reaped by join, exitcode, is_alive, the sweep of
 * freed handles at the next start, or the exit handler; nothing installs a
 * SIGCHLD handler, which could clash with the program's own.  A fork or
 * spawn child is ours to waitpid: join polls a pidfd (pidfd_open right
 * after the child is made, so it names that child even if its pid is
 * reused later) until the deadline and then reaps with WNOHANG; without
 * pidfds it polls waitpid(WNOHANG) with short sleeps.
 *
 * Forkserver children are the server's children, not ours, so the parent
 * cannot waitpid them.  The server is their reaper and forwards each exit
 * status: every request carries the write end of a fresh status pipe, the
 * server keeps it while the child runs and, when waitpid reports the child
 * (SIGCHLD read through a signalfd in the server's single-threaded poll
 * loop), writes the raw wait status (4 bytes, atomic in a pipe) and closes
 * it.  The parent's join polls the read end.  For terminate and kill the
 * server opens a pidfd on the child while it is still unreaped (so it
 * cannot name a recycled pid) and sends it back with the pid over
 * SCM_RIGHTS; the parent signals through it with pidfd_send_signal.  If
 * the server dies, the status pipe reads EOF with no status: the parent
 * then waits on the pidfd for the child's end and reports exit code 1 (the
 * real code is lost with the reaper).
 *
 * Jobs.  A spawn or forkserver child gets its job in a memfd: task name,
 * process name and identity, the argument bytes, the directions of the
 * connections it inherits, the shared arena's address and size, and the
 * parent's pid.  A memfd never blocks the parent, whatever the size of the
 * argument and however slowly the child starts.  The child finds the job
 * at fd 3 (RLAB_MP_JOB names it), its connections at 4, 5 ... and the
 * arena's fd after them; everything else is closed (spawn: closefrom in the
 * posix_spawn file actions; forkserver child: close_range after moving its
 * fds down).  Every fd this file makes is close-on-exec.
 *
 * Locks.  Three mutexes, always taken in this order: task_mu (registry
 * writers), fs_mu (the forkserver exchange), mp_mu (children list and
 * handle state; never held across a blocking call).  All three are held
 * across fork() by pthread_atfork handlers, so a child never inherits one
 * locked by another thread; the child then forgets the parent's children
 * and forkserver.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "mp_internal.h"

extern char **environ;

#define TASK_NAME_MAX 63
#define MAX_CONNS 64
#define MP_ENV "RLAB_MP_JOB"
#define CHILD_FD 3 /* where a child finds its job; connections follow */
#define FS_REPLY_TIMEOUT 30.0
#define FS_EXIT_TIMEOUT 5.0

/* ---------------------------------------------------------------- Bytes --- */

rlab_bytes *rlab_bytes_new(const void *data, size_t len)
{
    if (!data && len) {
        errno = EINVAL;
        return NULL;
    }
    if (len > SIZE_MAX - sizeof(rlab_bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    rlab_bytes *b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    b->len = len;
    if (len)
        memcpy(b->data, data, len);
    return b;
}

void rlab_bytes_free(rlab_bytes *b)
{
    free(b);
}

/* -------------------------------------------------------- Task registry --- */

/* A list that only grows, published with release stores: lookups read it
 * without a lock (so a fork child never waits on one), writers serialize on
 * task_mu. */
typedef struct task_entry {
    struct task_entry *next;
    rlab_task_fn fn;
    char name[TASK_NAME_MAX + 1];
} task_entry;

static _Atomic(task_entry *) task_head;
static pthread_mutex_t task_mu = PTHREAD_MUTEX_INITIALIZER;

static void mp_init(void);
static int task_add(const char *name, size_t n, rlab_task_fn fn);

int rlab_task_register(const char *name, rlab_task_fn fn)
{
    if (!name || !fn)
        return EINVAL;
    size_t n = strnlen(name, TASK_NAME_MAX + 1);
    if (n == 0 || n > TASK_NAME_MAX)
        return EINVAL;
    mp_init();
    return task_add(name, n, fn);
}

/* Adds name (n characters, checked) unless it is already there. */
static int task_add(const char *name, size_t n, rlab_task_fn fn)
{
    pthread_mutex_lock(&task_mu);
    int rc = 0;
    task_entry *head = atomic_load_explicit(&task_head, memory_order_relaxed);
    for (task_entry *e = head; e; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            rc = e->fn == fn ? 0 : EEXIST;
            goto out;
        }
        if (e->fn == fn) {
            rc = EEXIST;
            goto out;
        }
    }
    task_entry *e = malloc(sizeof *e);
    if (!e) {
        rc = ENOMEM;
        goto out;
    }
    e->fn = fn;
    memcpy(e->name, name, n + 1);
    e->next = head;
    atomic_store_explicit(&task_head, e, memory_order_release);
out:
    pthread_mutex_unlock(&task_mu);
    return rc;
}

const char *rlab_task_name(rlab_task_fn fn)
{
    for (task_entry *e = atomic_load_explicit(&task_head, memory_order_acquire);
         e; e = e->next)
        if (fn && e->fn == fn)
            return e->name;
    return NULL;
}

rlab_task_fn rlab_task_lookup(const char *name)
{
    for (task_entry *e = atomic_load_explicit(&task_head, memory_order_acquire);
         e && name; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e->fn;
    return NULL;
}

/* -------------------------------------------------------- Start methods --- */

static atomic_int default_method = RLAB_START_FORKSERVER;

int rlab_set_start_method(rlab_start_method m)
{
    if ((int)m < RLAB_START_DEFAULT || m > RLAB_START_FORKSERVER)
        return EINVAL;
    atomic_store(&default_method,
                 m == RLAB_START_DEFAULT ? RLAB_START_FORKSERVER : (int)m);
    return 0;
}

rlab_start_method rlab_get_start_method(void)
{
    return (rlab_start_method)atomic_load(&default_method);
}

const char *rlab_start_method_name(rlab_start_method m)
{
    switch (m) {
    case RLAB_START_FORK:
        return "fork";
    case RLAB_START_SPAWN:
        return "spawn";
    case RLAB_START_FORKSERVER:
        return "forkserver";
    case RLAB_START_DEFAULT:
        return rlab_start_method_name(rlab_get_start_method());
    }
    return NULL;
}

/* ---------------------------------------------------------- The process --- */

enum { P_NEW, P_STARTING, P_RUNNING, P_DONE };

struct rlab_process {
    /* Fixed at new(). */
    rlab_task_fn fn;
    const char *task; /* the registry's copy of the name */
    rlab_bytes *arg;
    char *name;
    char *ident; /* Python's _identity: "3", "3:1" in a child of Process-3 */
    bool daemon;
    rlab_start_method method;
    pid_t owner; /* the process that made the handle */
    /* Our own copies of the connections' fds, kept until start. */
    size_t nconns;
    int *cfd;
    unsigned char *cmode; /* bit 0 read, bit 1 write */

    /* Under mp_mu. */
    int state;
    pid_t pid;
    int pidfd;        /* -1: none (no pidfd support) */
    int statfd;       /* forkserver: the status pipe's read end, else -1 */
    bool server_lost; /* statfd hit EOF without a status */
    int code;         /* exitcode once P_DONE */
    bool listed;      /* on the children list */
    bool orphan;      /* the handle was freed while the child ran */
    bool exiting;     /* the exit handler owns its lifetime for now */
    rlab_process *prev, *next;
};

static pthread_mutex_t mp_mu = PTHREAD_MUTEX_INITIALIZER;
static rlab_process *children; /* started and not yet reaped */
static atomic_uint process_counter;

/* This process's identity.  Written only while a child boots (one thread),
 * read afterwards. */
static const char *cur_name = "MainProcess";
static const char *cur_ident = "";
static pid_t cur_parent;
static bool is_child;
static bool is_fresh; /* a spawn or forkserver child, not a fork */
static rlab_conn **child_conns;
static size_t child_nconns;
static const char *prog_argv0;
static atomic_bool mp_main_called;

/* The forkserver, under fs_mu. */
static pthread_mutex_t fs_mu = PTHREAD_MUTEX_INITIALIZER;
static int fs_sock = -1;
static pid_t fs_pid;
static int fs_pidfd = -1;

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static int pidfd_signal_(int pidfd, int sig)
{
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
    (void)pidfd;
    (void)sig;
    errno = ENOSYS;
    return -1;
#endif
}

static void close_from(int lowfd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = lowfd; fd < (max > 0 ? max : 1024); fd++)
        close((int)fd);
}

/* Time left until d (RLAB_WAIT_DEADLINE), at least 0. */
static struct timespec time_left(const rlab_deadline *d)
{
    struct timespec now, left = {0, 0};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > d->at.tv_sec ||
        (now.tv_sec == d->at.tv_sec && now.tv_nsec >= d->at.tv_nsec))
        return left;
    left.tv_sec = d->at.tv_sec - now.tv_sec;
    left.tv_nsec = d->at.tv_nsec - now.tv_nsec;
    if (left.tv_nsec < 0) {
        left.tv_sec--;
        left.tv_nsec += 1000000000L;
    }
    return left;
}

/* Waits until fd is readable (or hung up), d passes (ETIMEDOUT) or a
 * signal arrives (0: the caller re-checks). */
static int wait_readable(int fd, const rlab_deadline *d)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    struct timespec ts, *tp = NULL;
    if (d->kind != RLAB_WAIT_FOREVER) {
        ts = d->kind == RLAB_WAIT_TRY ? (struct timespec){0, 0} : time_left(d);
        tp = &ts;
    }
    int n = ppoll(&pfd, 1, tp, NULL);
    return n == 0 ? ETIMEDOUT : 0;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return 1;
}

static void unlink_locked(rlab_process *p)
{
    if (!p->listed)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        children = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->listed = false;
}

static void finish_locked(rlab_process *p, int code)
{
    p->code = code;
    p->state = P_DONE;
    unlink_locked(p);
}

/* Under mp_mu: true once p's child has ended (recording its exit code and
 * reaping it); never blocks. */
static bool try_reap_locked(rlab_process *p)
{
    if (p->state == P_DONE)
        return true;
    if (p->state != P_RUNNING || p->owner != getpid())
        return false;
    int status;
    if (p->statfd >= 0 && !p->server_lost) {
        ssize_t n;
        do
            n = read(p->statfd, &status, sizeof status);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof status) {
            finish_locked(p, exit_code(status));
            return true;
        }
        if (n != 0)
            return false; /* EAGAIN: still running */
        p->server_lost = true;
    }
    if (p->server_lost) {
        /* The reaper died: the child's end is all that can be learned. */
        bool gone;
        if (p->pidfd >= 0) {
            struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
            gone = poll(&pfd, 1, 0) > 0;
        } else {
            gone = kill(p->pid, 0) < 0 && errno == ESRCH;
        }
        if (gone)
            finish_locked(p, 1);
        return gone;
    }
    pid_t r;
    do
        r = waitpid(p->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return false;
    /* ECHILD: somebody else reaped it (a waitpid(-1) of the program's own);
     * its status is lost, report a failure. */
    finish_locked(p, r == p->pid ? exit_code(status) : 1);
    return true;
}

/* The fd that turns readable when p's state may have changed, or -1. */
static int wait_fd_locked(const rlab_process *p)
{
    if (p->statfd >= 0 && !p->server_lost)
        return p->statfd;
    return p->pidfd;
}

/* Waits until p's child ended (0) or d passed (ETIMEDOUT). */
static int wait_done(rlab_process *p, const rlab_deadline *d)
{
    double nap = 1e-3;
    for (;;) {
        pthread_mutex_lock(&mp_mu);
        bool done = try_reap_locked(p);
        int fd = wait_fd_locked(p);
        pthread_mutex_unlock(&mp_mu);
        if (done)
            return 0;
        if (d->kind == RLAB_WAIT_TRY ||
            (d->kind == RLAB_WAIT_DEADLINE && rlab__expired(d)))
            return ETIMEDOUT;
        if (fd >= 0) {
            wait_readable(fd, d);
            continue;
        }
        /* No pidfd: poll waitpid with short naps. */
        double s = nap;
        if (d->kind == RLAB_WAIT_DEADLINE) {
            struct timespec l = time_left(d);
            double left = (double)l.tv_sec + (double)l.tv_nsec / 1e9;
            s = left < s ? left : s;
        }
        struct timespec ts = {0, (long)(s * 1e9)};
        nanosleep(&ts, NULL);
        nap = nap < 0.01 ? nap * 2 : 0.01;
    }
}

/* Under mp_mu: signals p's child if it still runs. */
static void signal_locked(rlab_process *p, int sig)
{
    if (try_reap_locked(p))
        return;
    if (p->pidfd >= 0 && pidfd_signal_(p->pidfd, sig) == 0)
        return;
    if (p->pidfd >= 0 && errno == ESRCH)
        return;
    /* No pidfd.  Our own unreaped child cannot have lost its pid (we hold
     * mp_mu, so nobody reaps it meanwhile); a forkserver child without a
     * pidfd can, a race we accept only on kernels without pidfds. */
    kill(p->pid, sig);
}

static void free_record(rlab_process *p)
{
    if (p->pidfd >= 0)
        close(p->pidfd);
    if (p->statfd >= 0)
        close(p->statfd);
    for (size_t i = 0; i < p->nconns; i++)
        if (p->cfd[i] >= 0)
            close(p->cfd[i]);
    free(p->cfd);
    free(p->cmode);
    rlab_bytes_free(p->arg);
    free(p->name);
    free(p->ident);
    free(p);
}

/* The forkserver's end, at exit or after it broke.  Under fs_mu. */
static void fs_stop_locked(void)
{
    if (fs_sock < 0)
        return;
    close(fs_sock); /* the server sees EOF and exits */
    fs_sock = -1;
    if (fs_pidfd >= 0) {
        /* It exits at once; a server that does not is killed. */
        rlab_deadline d;
        rlab__deadline(FS_EXIT_TIMEOUT, &d);
        struct pollfd pfd = {.fd = fs_pidfd, .events = POLLIN};
        while (poll(&pfd, 1, 0) == 0 && !rlab__expired(&d))
            wait_readable(fs_pidfd, &d);
        if (poll(&pfd, 1, 0) == 0)
            pidfd_signal_(fs_pidfd, SIGKILL);
        close(fs_pidfd);
        fs_pidfd = -1;
    }
    while (waitpid(fs_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    fs_pid = 0;
}

/* Python's _exit_function: terminate the daemon children, then join every
 * child, daemon or not, including those whose handles were freed. */
static void exit_children(void)
{
    pthread_mutex_lock(&mp_mu);
    rlab_process *list = children;
    children = NULL;
    for (rlab_process *p = list; p; p = p->next) {
        p->listed = false;
        p->exiting = true;
        if (p->daemon)
            signal_locked(p, SIGTERM);
    }
    pthread_mutex_unlock(&mp_mu);
    rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    for (rlab_process *p = list, *next; p; p = next) {
        next = p->next;
        p->prev = p->next = NULL;
        wait_done(p, &forever);
        pthread_mutex_lock(&mp_mu);
        p->exiting = false;
        bool dispose = p->orphan;
        pthread_mutex_unlock(&mp_mu);
        if (dispose)
            free_record(p);
    }
}

static void mp_atexit(void)
{
    exit_children();
    pthread_mutex_lock(&fs_mu);
    fs_stop_locked();
    pthread_mutex_unlock(&fs_mu);
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&task_mu);
    pthread_mutex_lock(&fs_mu);
    pthread_mutex_lock(&mp_mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&mp_mu);
    pthread_mutex_unlock(&fs_mu);
    pthread_mutex_unlock(&task_mu);
}

/* The parent's children and forkserver are not the child's: forget them
 * (the records stay, unreachable, in the child's copy of the heap), and
 * close the child's copy of the server's socket so the server still sees
 * EOF when the parent closes its own. */
static void atfork_child(void)
{
    children = NULL;
    if (fs_sock >= 0)
        close(fs_sock);
    if (fs_pidfd >= 0)
        close(fs_pidfd);
    fs_sock = fs_pidfd = -1;
    fs_pid = 0;
    pthread_mutex_unlock(&mp_mu);
    pthread_mutex_unlock(&fs_mu);
    pthread_mutex_unlock(&task_mu);
}

static pthread_once_t mp_once = PTHREAD_ONCE_INIT;

static void mp_init_once(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atexit(mp_atexit);
    /* The library's own task, there in every process it starts. */
    task_add(RLAB__POOL_WORKER, strlen(RLAB__POOL_WORKER), rlab__pool_worker);
}

static void mp_init(void)
{
    pthread_once(&mp_once, mp_init_once);
}

/* ------------------------------------------------------- Process handle --- */

rlab_process *rlab_process_new(rlab_task_fn fn, const void *arg, size_t len,
                               const rlab_process_opts *opts)
{
    static const rlab_process_opts none = {0};
    if (!opts)
        opts = &none;
    const char *task = rlab_task_name(fn);
    bool bad = !task || (!arg && len) || (int)opts->method < 0 ||
               opts->method > RLAB_START_FORKSERVER ||
               (opts->nconns && !opts->conns) || opts->nconns > MAX_CONNS;
    for (size_t i = 0; !bad && i < opts->nconns; i++)
        bad = !opts->conns[i] || rlab__conn_fd(opts->conns[i]) < 0;
    if (bad) {
        errno = EINVAL;
        return NULL;
    }
    rlab_process *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->fn = fn;
    p->task = task;
    p->daemon = opts->daemon;
    p->method = opts->method;
    p->owner = getpid();
    p->pidfd = p->statfd = -1;
    p->arg = rlab_bytes_new(arg, len);
    unsigned n = atomic_fetch_add(&process_counter, 1) + 1;
    size_t ilen = strlen(cur_ident) + 16;
    p->ident = malloc(ilen);
    if (p->ident)
        snprintf(p->ident, ilen, *cur_ident ? "%s:%u" : "%s%u", cur_ident, n);
    if (opts->name)
        p->name = strdup(opts->name);
    else if (p->ident && (p->name = malloc(ilen + 8)))
        snprintf(p->name, ilen + 8, "Process-%s", p->ident);
    p->nconns = opts->nconns;
    p->cfd = malloc((p->nconns + 1) * sizeof *p->cfd);
    p->cmode = malloc(p->nconns + 1);
    if (!p->arg || !p->ident || !p->name || !p->cfd || !p->cmode) {
        p->nconns = 0;
        free_record(p);
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < p->nconns; i++) {
        const rlab_conn *c = opts->conns[i];
        p->cmode[i] = (unsigned char)((rlab__conn_can_read(c) ? 1 : 0) |
                                      (rlab__conn_can_write(c) ? 2 : 0));
        p->cfd[i] = fcntl(rlab__conn_fd(c), F_DUPFD_CLOEXEC, 3);
        if (p->cfd[i] < 0) {
            int e = errno;
            p->nconns = i;
            free_record(p);
            errno = e;
            return NULL;
        }
    }
    return p;
}

/* ----------------------------------------------------- The child's side --- */

/* The end of every child: never exit(), which would run the atexit
 * handlers a fork child inherited from the parent's program. */
static _Noreturn void child_exit(int rc)
{
    /* Python's _bootstrap runs util._exit_function in the child too: its
     * own children are joined (daemons terminated) before it ends. */
    mp_atexit();
    if (is_fresh) {
        fflush(NULL);
    } else {
        /* A fork child's other streams hold the parent's unwritten bytes
         * too; only the standard ones are flushed, as in Python. */
        fflush(stdout);
        fflush(stderr);
    }
    _exit(rc >= 0 && rc <= 255 ? rc : 1);
}

static _Noreturn void child_run(rlab_task_fn fn, rlab_bytes *arg)
{
    void *result = NULL;
    int rc = fn(arg, &result);
    rlab_bytes_free(result); /* a Process has nowhere to send it */
    child_exit(rc);
}

static _Noreturn void child_fail(const char *what, int err)
{
    fprintf(stderr, "racelab: child %d: %s: %s\n", (int)getpid(), what,
            rlab_strerror(err));
    _exit(1);
}

/* The fork child: everything is already in memory. */
static _Noreturn void fork_child(rlab_process *p, pid_t parent)
{
    is_child = true;
    cur_parent = parent;
    cur_name = p->name;
    cur_ident = p->ident;
    atomic_store(&process_counter, 0);
    child_conns = NULL; /* a child's child must not see its parent's */
    child_nconns = 0;
    if (p->nconns) {
        child_conns = calloc(p->nconns, sizeof *child_conns);
        if (!child_conns)
            child_fail("connections", ENOMEM);
    }
    for (size_t i = 0; i < p->nconns; i++) {
        child_conns[i] =
            rlab__conn_adopt(p->cfd[i], p->cmode[i] & 1, p->cmode[i] & 2);
        if (!child_conns[i])
            child_fail("connections", ENOMEM);
        p->cfd[i] = -1;
    }
    child_nconns = p->nconns;
    child_run(p->fn, p->arg);
}

/* The job a spawn or forkserver child reads. */
typedef struct {
    char magic[8];
    int32_t parent_pid;
    uint32_t ntask, nname, nident, nconns, has_shm;
    uint64_t narg, shm_addr, shm_size;
} job_header;

static const char job_magic[8] = "RLABJOB1";

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* A memfd holding p's job; shm describes the arena (has_shm false: none). */
static int job_make(const rlab_process *p, bool has_shm, void *shm_addr,
                    size_t shm_size, int *out)
{
    job_header h = {
        .parent_pid = (int32_t)getpid(),
        .ntask = (uint32_t)strlen(p->task),
        .nname = (uint32_t)strlen(p->name),
        .nident = (uint32_t)strlen(p->ident),
        .nconns = (uint32_t)p->nconns,
        .has_shm = has_shm,
        .narg = p->arg->len,
        .shm_addr = (uint64_t)(uintptr_t)shm_addr,
        .shm_size = shm_size,
    };
    memcpy(h.magic, job_magic, sizeof h.magic);
    struct iovec iov[] = {
        {&h, sizeof h},        {(void *)p->task, h.ntask},
        {p->name, h.nname},    {p->ident, h.nident},
        {p->cmode, p->nconns}, {p->arg->data, p->arg->len},
    };
    int fd = memfd_create("rlab-job", MFD_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = write_all(fd, iov, (int)(sizeof iov / sizeof *iov));
    if (rc) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static char *take_str(const unsigned char **at, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, *at, n);
        s[n] = '\0';
    }
    *at += n;
    return s;
}

/* A spawn or forkserver child: the job is at jobfd, its connections at
 * jobfd + 1 ..., the arena's fd after them. */
static _Noreturn void job_child(int jobfd)
{
    struct stat st;
    if (fstat(jobfd, &st) < 0 || st.st_size < (off_t)sizeof(job_header))
        child_fail("reading the job", errno ? errno : EINVAL);
    size_t size = (size_t)st.st_size;
    unsigned char *buf = malloc(size);
    if (!buf)
        child_fail("reading the job", ENOMEM);
    for (size_t got = 0; got < size;) {
        ssize_t r = pread(jobfd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            child_fail("reading the job", r < 0 ? errno : EIO);
        got += (size_t)r;
    }
    close(jobfd);
    job_header h;
    memcpy(&h, buf, sizeof h);
    uint64_t need =
        (uint64_t)sizeof h + h.ntask + h.nname + h.nident + h.nconns + h.narg;
    if (memcmp(h.magic, job_magic, sizeof h.magic) != 0 || h.narg > size ||
        need != size || h.nconns > MAX_CONNS)
        child_fail("reading the job", EINVAL);
    const unsigned char *at = buf + sizeof h;
    char *task = take_str(&at, h.ntask);
    char *name = take_str(&at, h.nname);
    char *ident = take_str(&at, h.nident);
    const unsigned char *modes = at;
    at += h.nconns;
    rlab_bytes *arg = rlab_bytes_new(at, (size_t)h.narg);
    if (!task || !name || !ident || !arg)
        child_fail("reading the job", ENOMEM);
    rlab_task_fn fn = rlab_task_lookup(task);
    if (!fn) {
        fprintf(stderr, "racelab: child %d: no task registered as \"%s\"\n",
                (int)getpid(), task);
        _exit(1);
    }
    if (h.has_shm) {
        int rc =
            rlab__shm_import(jobfd + 1 + (int)h.nconns,
                             (void *)(uintptr_t)h.shm_addr, (size_t)h.shm_size);
        if (rc)
            child_fail("mapping the shared arena", rc);
        close(jobfd + 1 + (int)h.nconns); /* the arena keeps its own copy */
    }
    if (h.nconns) {
        child_conns = calloc(h.nconns, sizeof *child_conns);
        if (!child_conns)
            child_fail("connections", ENOMEM);
    }
    for (uint32_t i = 0; i < h.nconns; i++) {
        child_conns[i] =
            rlab__conn_adopt(jobfd + 1 + (int)i, modes[i] & 1, modes[i] & 2);
        if (!child_conns[i])
            child_fail("connections", ENOMEM);
    }
    child_nconns = h.nconns;
    is_child = is_fresh = true;
    cur_parent = (pid_t)h.parent_pid;
    cur_name = name;
    cur_ident = ident;
    free(task);
    free(buf);
    child_run(fn, arg);
}

/* --------------------------------------------------------------- spawn --- */

/* posix_spawn of /proc/self/exe with argv[0] and RLAB_MP_JOB=role:3, the
 * fds src[0..n) at 3, 4 ... in the child and nothing else past stderr. */
static int spawn_self(const char *role, const int *src, int n, pid_t *pid)
{
    int tmp[MAX_CONNS + 2];
    char var[64];
    snprintf(var, sizeof var, MP_ENV "=%s:%d", role, CHILD_FD);
    size_t nenv = 0;
    while (environ && environ[nenv])
        nenv++;
    char **envp = malloc((nenv + 2) * sizeof *envp);
    if (!envp)
        return ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], MP_ENV "=", sizeof MP_ENV) != 0)
            envp[k++] = environ[i];
    envp[k++] = var;
    envp[k] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    int rc = 0, made = 0;
    /* Copies above the target range first, so no dup2 onto a target can
     * clobber a source that a later dup2 still reads. */
    for (; made < n; made++) {
        tmp[made] = fcntl(src[made], F_DUPFD_CLOEXEC, CHILD_FD + n);
        if (tmp[made] < 0) {
            rc = errno;
            break;
        }
        if ((rc = posix_spawn_file_actions_adddup2(&fa, tmp[made],
                                                   CHILD_FD + made))) {
            made++;
            break;
        }
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, CHILD_FD + n);
#endif
    /* A child starts with an empty signal mask, whichever thread made it. */
    sigset_t empty;
    sigemptyset(&empty);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    char *argv0 = (char *)(prog_argv0 ? prog_argv0 : program_invocation_name);
    char *argv[] = {argv0, NULL};
    if (!rc)
        rc = posix_spawn(pid, "/proc/self/exe", &fa, &attr, argv, envp);
    for (int i = 0; i < made; i++)
        close(tmp[i]);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(envp);
    return rc;
}

/* The job fd, the connections' fds and the arena's fd, in that order. */
static int job_fds(const rlab_process *p, int *fds, int *n)
{
    int sfd = -1;
    void *saddr = NULL;
    size_t ssize = 0;
    bool shm = rlab__shm_export(&sfd, &saddr, &ssize) == 0;
    int rc = job_make(p, shm, saddr, ssize, &fds[0]);
    if (rc)
        return rc;
    *n = 1;
    for (size_t i = 0; i < p->nconns; i++)
        fds[(*n)++] = p->cfd[i];
    if (shm)
        fds[(*n)++] = sfd;
    return 0;
}

static int start_spawn(rlab_process *p)
{
    int fds[MAX_CONNS + 2], n;
    int rc = job_fds(p, fds, &n);
    if (rc)
        return rc == ENOMEM ? ENOMEM : EAGAIN;
    pid_t pid;
    rc = spawn_self("spawn", fds, n, &pid);
    close(fds[0]);
    if (rc)
        return rc == ENOMEM ? ENOMEM : EAGAIN;
    p->pid = pid;
    p->pidfd = pidfd_open_(pid);
    return 0;
}

/* ---------------------------------------------------------------- fork --- */

static int start_fork(rlab_process *p)
{
    pid_t me = getpid();
    /* As Python does: what the parent buffered is written once, not once
     * more by every child. */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return errno == ENOMEM ? ENOMEM : EAGAIN;
    if (pid == 0)
        fork_child(p, me);
    p->pid = pid;
    p->pidfd = pidfd_open_(pid);
    return 0;
}

/* ---------------------------------------------------------- forkserver --- */

/* A request is one SOCK_SEQPACKET message: this header, and the status
 * pipe's write end, the job and the job's other fds as SCM_RIGHTS.  The
 * reply: the child's pid (or -errno) and a pidfd on it when there is one. */
typedef struct {
    uint32_t nfds;
} fs_request;

typedef struct {
    int32_t pid_or_err;
} fs_reply;

static int send_fds(int sock, const void *data, size_t len, const int *fds,
                    int n)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * (MAX_CONNS + 3))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)data, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
        memset(&u, 0, sizeof u);
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    }
    ssize_t w;
    do
        w = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)len ? 0 : (w < 0 ? errno : EIO);
}

/* 0 and the message (and up to max fds, CLOEXEC); RLAB_EEOF on EOF. */
static int recv_fds(int sock, void *data, size_t len, int *fds, int max, int *n)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * (MAX_CONNS + 3))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {data, len};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    ssize_t r;
    do
        r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    *n = 0;
    if (r < 0)
        return errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[MAX_CONNS + 3];
        memcpy(got, CMSG_DATA(c), sizeof(int) * (size_t)k);
        for (int i = 0; i < k; i++) {
            if (*n < max)
                fds[(*n)++] = got[i];
            else
                close(got[i]);
        }
    }
    if (r == 0)
        return RLAB_EEOF;
    if ((size_t)r != len || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        return EBADMSG;
    return 0;
}

/* Under fs_mu: the server is running (0) or could not be started. */
static int fs_ensure_locked(void)
{
    if (fs_sock >= 0)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return errno;
    pid_t pid;
    int rc = spawn_self("forkserver", &sv[1], 1, &pid);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    fs_sock = sv[0];
    fs_pid = pid;
    fs_pidfd = pidfd_open_(pid);
    return 0;
}

/* One exchange: 0, or ECONNRESET when the server closed its end with the
 * request unread (AF_UNIX reports unread data at close as a reset, plain
 * EOF otherwise), so the request is known not to have been served. */
static int fs_exchange_locked(const int *fds, int n, pid_t *pid, int *pidfd)
{
    fs_request req = {.nfds = (uint32_t)n};
    int rc = send_fds(fs_sock, &req, sizeof req, fds, n);
    if (rc)
        return rc == EPIPE ? ECONNRESET : rc;
    rlab_deadline d;
    rlab__deadline(FS_REPLY_TIMEOUT, &d);
    struct pollfd pfd = {.fd = fs_sock, .events = POLLIN};
    while (poll(&pfd, 1, 0) == 0) {
        if (rlab__expired(&d))
            return ETIMEDOUT;
        wait_readable(fs_sock, &d);
    }
    fs_reply rep;
    int got;
    if ((rc = recv_fds(fs_sock, &rep, sizeof rep, pidfd, 1, &got)))
        return rc == RLAB_EEOF ? EPIPE : rc;
    if (!got)
        *pidfd = -1;
    if (rep.pid_or_err <= 0) {
        if (got)
            close(*pidfd);
        return rep.pid_or_err < 0 ? -rep.pid_or_err : EIO;
    }
    *pid = (pid_t)rep.pid_or_err;
    return 0;
}

static int fs_request_locked(const int *fds, int n, pid_t *pid, int *pidfd)
{
    int rc = ECONNRESET;
    /* A request the server never read is sent again to a new server; one
     * it may have served (the reply is lost) is not: the child may exist. */
    for (int attempt = 0; attempt < 2 && rc == ECONNRESET; attempt++) {
        if ((rc = fs_ensure_locked()))
            return rc;
        rc = fs_exchange_locked(fds, n, pid, pidfd);
        if (rc && rc != EAGAIN && rc != ENOMEM && rc != EINVAL)
            fs_stop_locked();
    }
    return rc;
}

static int start_forkserver(rlab_process *p)
{
    int fds[MAX_CONNS + 3], n, st[2];
    if (pipe2(st, O_CLOEXEC | O_NONBLOCK) < 0)
        return errno == ENOMEM ? ENOMEM : EAGAIN;
    int rc = job_fds(p, fds + 1, &n);
    if (rc) {
        close(st[0]);
        close(st[1]);
        return rc == ENOMEM ? ENOMEM : EAGAIN;
    }
    fds[0] = st[1];
    pid_t pid = 0;
    int pidfd = -1;
    pthread_mutex_lock(&fs_mu);
    rc = fs_request_locked(fds, n + 1, &pid, &pidfd);
    pthread_mutex_unlock(&fs_mu);
    close(st[1]);
    close(fds[1]);
    if (rc) {
        close(st[0]);
        return rc == ENOMEM ? ENOMEM : EAGAIN;
    }
    p->pid = pid;
    p->pidfd = pidfd;
    p->statfd = st[0];
    return 0;
}

/* The server's side.  Single-threaded: it forks every child from this
 * loop, and reaps them through a signalfd for SIGCHLD. */
typedef struct {
    pid_t pid;
    int statfd;
} fs_child;

static _Noreturn void fs_serve_child(int *fds, int n)
{
    /* fds[0] is the status pipe: the server's.  The job's fds go to 3 ...,
     * the rest (the server's socket, signalfd, other children's status
     * pipes) is closed. */
    int tmp[MAX_CONNS + 2];
    int k = n - 1;
    for (int i = 0; i < k; i++)
        if ((tmp[i] = fcntl(fds[1 + i], F_DUPFD, CHILD_FD + k)) < 0)
            child_fail("arranging fds", errno);
    for (int i = 0; i < k; i++)
        if (dup2(tmp[i], CHILD_FD + i) < 0)
            child_fail("arranging fds", errno);
    close_from(CHILD_FD + k);
    sigset_t empty;
    sigemptyset(&empty);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    job_child(CHILD_FD);
}

static void fs_reap(fs_child **kids, size_t *nkids)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < *nkids; i++) {
            if ((*kids)[i].pid != pid)
                continue;
            ssize_t w;
            do
                w = write((*kids)[i].statfd, &status, sizeof status);
            while (w < 0 && errno == EINTR);
            close((*kids)[i].statfd);
            (*kids)[i] = (*kids)[--*nkids];
            break;
        }
    }
}

static _Noreturn void fs_serve(int sock)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    /* As Python's server: ^C is the parent's to handle, not the server's. */
    signal(SIGINT, SIG_IGN);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        child_fail("forkserver signalfd", errno);
    fs_child *kids = NULL;
    size_t nkids = 0, cap = 0;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = sock, .events = POLLIN},
                                {.fd = sfd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            child_fail("forkserver poll", errno);
        }
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0)
                ;
            fs_reap(&kids, &nkids);
        }
        if (!pfd[0].revents)
            continue;
        fs_request req;
        int fds[MAX_CONNS + 3], n;
        int rc = recv_fds(sock, &req, sizeof req, fds, MAX_CONNS + 3, &n);
        if (rc == RLAB_EEOF || (rc && rc != EBADMSG && rc != EAGAIN))
            break; /* the parent closed its end (or it is gone) */
        fs_reply rep = {.pid_or_err = -EINVAL};
        int pidfd = -1;
        if (!rc && n >= 2 && (uint32_t)n == req.nfds) {
            if (nkids == cap) {
                size_t c = cap ? cap * 2 : 16;
                fs_child *k = realloc(kids, c * sizeof *k);
                if (k) {
                    kids = k;
                    cap = c;
                }
            }
            pid_t pid = nkids < cap ? fork() : (errno = ENOMEM, -1);
            if (pid == 0)
                fs_serve_child(fds, n);
            if (pid > 0) {
                pidfd = pidfd_open_(pid);
                kids[nkids++] = (fs_child){pid, fds[0]};
                fds[0] = -1;
                rep.pid_or_err = pid;
            } else {
                rep.pid_or_err = -errno;
            }
        }
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        send_fds(sock, &rep, sizeof rep, &pidfd, pidfd >= 0 ? 1 : 0);
        if (pidfd >= 0)
            close(pidfd);
    }
    _exit(0);
}

/* -------------------------------------------------------- Process calls --- */

static void sweep_orphans(void)
{
    rlab_process *dead = NULL;
    pthread_mutex_lock(&mp_mu);
    for (rlab_process *p = children, *next; p; p = next) {
        next = p->next;
        if (p->orphan && try_reap_locked(p)) {
            p->next = dead;
            dead = p;
        }
    }
    pthread_mutex_unlock(&mp_mu);
    while (dead) {
        rlab_process *p = dead;
        dead = p->next;
        free_record(p);
    }
}

int rlab_process_start(rlab_process *p)
{
    if (!p)
        return EINVAL;
    mp_init();
    pthread_mutex_lock(&mp_mu);
    bool ok = p->state == P_NEW && p->owner == getpid();
    if (ok)
        p->state = P_STARTING;
    pthread_mutex_unlock(&mp_mu);
    if (!ok)
        return EPERM;
    sweep_orphans();
    rlab_start_method m =
        p->method == RLAB_START_DEFAULT ? rlab_get_start_method() : p->method;
    int rc;
    if (m != RLAB_START_FORK && !atomic_load(&mp_main_called))
        rc = EPERM; /* the child would run main() instead of its task */
    else if (m == RLAB_START_FORK)
        rc = start_fork(p);
    else if (m == RLAB_START_SPAWN)
        rc = start_spawn(p);
    else
        rc = start_forkserver(p);
    pthread_mutex_lock(&mp_mu);
    if (rc) {
        p->state = P_NEW;
    } else {
        p->state = P_RUNNING;
        p->listed = true;
        p->prev = NULL;
        p->next = children;
        if (children)
            children->prev = p;
        children = p;
    }
    pthread_mutex_unlock(&mp_mu);
    if (!rc) {
        for (size_t i = 0; i < p->nconns; i++) {
            close(p->cfd[i]);
            p->cfd[i] = -1;
        }
    }
    return rc;
}

int rlab_process_join(rlab_process *p, double timeout)
{
    rlab_deadline d;
    if (!p || rlab__deadline(timeout, &d))
        return EINVAL;
    pthread_mutex_lock(&mp_mu);
    int st = p->state;
    bool ours = p->owner == getpid();
    pthread_mutex_unlock(&mp_mu);
    if (st == P_DONE)
        return 0;
    if (st != P_RUNNING || !ours)
        return EPERM;
    return wait_done(p, &d);
}

bool rlab_process_is_alive(rlab_process *p)
{
    if (!p)
        return false;
    pthread_mutex_lock(&mp_mu);
    bool alive =
        p->state == P_RUNNING && p->owner == getpid() && !try_reap_locked(p);
    pthread_mutex_unlock(&mp_mu);
    return alive;
}

static int send_signal(rlab_process *p, int sig)
{
    if (!p)
        return EINVAL;
    pthread_mutex_lock(&mp_mu);
    int rc = 0;
    if (p->state == P_NEW || p->state == P_STARTING)
        rc = EPERM;
    else if (p->state == P_RUNNING && p->owner != getpid())
        rc = EPERM;
    else if (p->state == P_RUNNING)
        signal_locked(p, sig);
    pthread_mutex_unlock(&mp_mu);
    return rc;
}

int rlab_process_terminate(rlab_process *p)
{
    return send_signal(p, SIGTERM);
}

int rlab_process_kill(rlab_process *p)
{
    return send_signal(p, SIGKILL);
}

int rlab_process_exitcode(rlab_process *p, int *code)
{
    if (!p || !code)
        return EINVAL;
    pthread_mutex_lock(&mp_mu);
    bool done = try_reap_locked(p);
    if (done)
        *code = p->code;
    pthread_mutex_unlock(&mp_mu);
    return done ? 0 : EAGAIN;
}

pid_t rlab_process_pid(const rlab_process *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&mp_mu);
    pid_t pid = p->state == P_STARTING ? 0 : p->pid;
    pthread_mutex_unlock(&mp_mu);
    return pid;
}

const char *rlab_process_name(const rlab_process *p)
{
    return p ? p->name : NULL;
}

bool rlab_process_daemon(const rlab_process *p)
{
    return p && p->daemon;
}

void rlab_process_free(rlab_process *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&mp_mu);
    bool keep = p->owner == getpid() &&
                ((p->state == P_RUNNING && !try_reap_locked(p)) || p->exiting);
    if (keep)
        p->orphan = true; /* joined (a daemon terminated) at exit */
    pthread_mutex_unlock(&mp_mu);
    if (!keep)
        free_record(p);
}

/* ------------------------------------------------- Current process info --- */

const char *rlab_current_process_name(void)
{
    return cur_name;
}

pid_t rlab_current_pid(void)
{
    return getpid();
}

pid_t rlab_parent_pid(void)
{
    return cur_parent;
}

rlab_conn *rlab_process_conn(size_t i)
{
    return i < child_nconns ? child_conns[i] : NULL;
}

bool rlab__mp_is_child(void)
{
    return is_child;
}

void rlab_mp_main(int argc, char **argv)
{
    mp_init();
    if (argc > 0 && argv && argv[0])
        prog_argv0 = argv[0];
    atomic_store(&mp_main_called, true);
    const char *v = getenv(MP_ENV);
    if (!v)
        return;
    char role[16];
    int fd = -1;
    if (sscanf(v, "%15[a-z]:%d", role, &fd) != 2 || fd < 0) {
        fprintf(stderr, "racelab: bad %s=%s\n", MP_ENV, v);
        _exit(1);
    }
    /* Nothing the task starts (a shell, another program) inherits it. */
    unsetenv(MP_ENV);
    if (strcmp(role, "spawn") == 0)
        job_child(fd);
    if (strcmp(role, "forkserver") == 0)
        fs_serve(fd);
    fprintf(stderr, "racelab: unknown role %s\n", role);
    _exit(1);
}
