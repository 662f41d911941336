/*
 * shm.c - the shared arena and the process-shared objects of
 * multiprocessing.h: Lock and RLock (rlab_plock), Semaphore, Event,
 * Condition and Value.
 *
 * The arena.  Every process-shared object lives in one memfd of a fixed
 * reserved size (ARENA_SIZE; tmpfs pages are only allocated when touched),
 * mapped MAP_SHARED at the same address in every process of the family, so
 * a pointer to a shared object is valid in all of them: fork children
 * inherit the mapping, spawn and forkserver children map the exported fd at
 * the same address (rlab__shm_import).  It is made lazily by the first
 * shared object and lives as long as the process.
 *
 * The allocator's state lives in the arena too, guarded by a robust
 * process-shared mutex, so any process of the family can allocate and free.
 * It is a bitmap of 64-byte units (one bit each, 128 KiB of bits for 64
 * MiB) searched first-fit from the lowest unit that may be free: freed
 * neighbours merge by themselves, objects never share a cache line, and
 * memory stays packed at the low end so few pages are ever touched.  A
 * block starts with a 16-byte header (a tag and its length) and pages of a
 * big freed block go back to the system.  Every update only sets or clears
 * bits, so a process killed inside the allocator can at worst leak the
 * units it was moving, never hand one out twice; the next locker recovers
 * the mutex (EOWNERDEAD) and carries on.
 *
 * Locks are pthread mutexes with PTHREAD_PROCESS_SHARED and
 * PTHREAD_MUTEX_ROBUST: ThreadSanitizer intercepts them (so it sees the
 * happens-before edges inside each process), and the kernel marks a mutex
 * whose holder died so that the next acquirer recovers it.  Beside the
 * mutex, a lock records its holder as an *owner token*: a 64-bit number
 * drawn once per thread from a counter in the arena header, never reused
 * and reset in a fork child (pthread_atfork).  Ownership questions (a
 * release by a non-owner, a re-acquire by the holder) are answered from the
 * token before pthread is called, because ThreadSanitizer reports an unlock
 * by a non-owner even when pthread would refuse it, and because a dead
 * holder's thread id can be reused by a living thread.  (A child made with
 * a raw clone() or _Fork(), which skip the atfork handlers, must not use
 * a plock before it execs.)
 *
 * Semaphore and Event are futex words without FUTEX_PRIVATE_FLAG, so a wake
 * in one process reaches a waiter in another; their happens-before edges
 * are C11 atomics, which ThreadSanitizer understands.  Condition keeps a
 * FIFO of waiter records in the arena (as CPython's Condition keeps a deque
 * of waiter locks), so notify(n) wakes exactly n waiters, and a waiter whose
 * process died is skipped instead of swallowing a notification.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mp_internal.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux 4.17; older glibc headers */
#endif

/* ------------------------------------------------------------ arena --- */

#define ARENA_SIZE ((size_t)64 << 20)
#define ARENA_MAGIC UINT64_C(0x31306d7362616c72) /* "rlabsm01" */

/* Where the parent asks for the arena.  A spawn child re-executes the
 * program with fresh address-space randomization and must map the arena at
 * the parent's address, so that address should lie where nothing of a
 * fresh process is ever placed.  On x86_64 (47-bit user space) the kernel
 * puts a PIE program and its brk heap at 0x5555_5555_4000 + up to 1 TiB,
 * and mmap()s top-down from below the stack (0x7fxx_xxxx_xxxx - up to
 * 1 TiB), so 0x5000_0000_0000 (80 TiB) is far from both; it is also
 * application memory for AddressSanitizer, whose own heap sits at
 * 0x6000_0000_0000.  ThreadSanitizer only accepts application mappings in
 * a few ranges (its shadow takes the rest), so its build uses
 * 0x40_0000_0000 (256 GiB), inside the low range that no process uses once
 * its program is PIE.  If the hint is taken anyway, the kernel chooses (a
 * child may then find the address busy, and import says ENOMEM). */
#if UINTPTR_MAX > 0xffffffffu
#ifdef RLAB_TSAN
#define ARENA_HINT ((void *)(uintptr_t)0x4000000000)
#else
#define ARENA_HINT ((void *)(uintptr_t)0x500000000000)
#endif
#else
#define ARENA_HINT NULL
#endif

#define UNIT 64              /* allocation granule, one bit each */
#define BLK_HDR 16           /* the header before each object */
#define PUNCH_MIN (64 << 10) /* blocks this big give their pages back */
#define TAG_USED 0x55534544u
#define TAG_FREE 0x46524545u

struct arena_hdr {
    uint64_t magic;
    uint64_t size;
    pthread_mutex_t mu; /* robust; guards hint and the bitmap */
    size_t nunits;      /* size / UNIT */
    size_t hint;        /* no unit below this one is free */
    _Atomic uint64_t next_token;
};

/* Every block starts with this header; the object follows, 16-aligned. */
struct blk {
    uint32_t tag;
    uint32_t units; /* length of the block, header included */
};
_Static_assert(sizeof(struct blk) <= BLK_HDR, "block header fits");

/* The bitmap follows the header; both are marked used at creation. */
#define BITS_AT ((sizeof(struct arena_hdr) + 63) & ~(size_t)63)

/* The process-local view of the arena.  g_arena is published last (release)
 * so a reader that sees it also sees g_fd and g_size. */
static struct arena_hdr *_Atomic g_arena;
static int g_fd = -1;
static size_t g_size;
static pthread_mutex_t g_init = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

/* The calling thread's owner token; 0 until it first needs one. */
static _Thread_local uint64_t t_token;

/* g_init is held only briefly, but a fork from another thread must not
 * leave it locked in the child; the child's only thread also gets a fresh
 * token, because its parent thread's token is not its own. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&g_init);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&g_init);
}

static void atfork_child(void)
{
    pthread_mutex_unlock(&g_init);
    t_token = 0;
}

static void register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int robust_mutex_init(pthread_mutex_t *mu, int type)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc)
        return rc;
    if (!(rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) &&
        !(rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) &&
        !(rc = pthread_mutexattr_settype(&a, type)))
        rc = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

static uint64_t *arena_bits(struct arena_hdr *h)
{
    return (uint64_t *)((char *)h + BITS_AT);
}

/* Sets (or clears) the k bits from i on. */
static void bits_fill(uint64_t *b, size_t i, size_t k, bool set)
{
    while (k > 0) {
        size_t off = i & 63, take = 64 - off < k ? 64 - off : k;
        uint64_t m = (take == 64 ? ~UINT64_C(0) : (UINT64_C(1) << take) - 1)
                     << off;
        if (set)
            b[i >> 6] |= m;
        else
            b[i >> 6] &= ~m;
        i += take;
        k -= take;
    }
}

/* The first bit in [i, n) that is `set`, or n. */
static size_t bits_find(const uint64_t *b, size_t i, size_t n, bool set)
{
    while (i < n) {
        uint64_t w = set ? b[i >> 6] : ~b[i >> 6];
        w &= ~UINT64_C(0) << (i & 63);
        size_t base = i & ~(size_t)63;
        if (w) {
            size_t j = base + (size_t)__builtin_ctzll(w);
            return j < n ? j : n;
        }
        i = base + 64;
    }
    return n;
}

/* The first run of k clear bits in [i, n), or SIZE_MAX. */
static size_t bits_run(const uint64_t *b, size_t i, size_t n, size_t k)
{
    for (;;) {
        i = bits_find(b, i, n, false);
        if (n - i < k)
            return SIZE_MAX;
        size_t used = bits_find(b, i, i + k, true);
        if (used == i + k)
            return i;
        i = used;
    }
}

static int arena_create_locked(void)
{
    int fd = memfd_create("racelab-shm", MFD_CLOEXEC);
    if (fd < 0)
        return errno;
    if (ftruncate(fd, (off_t)ARENA_SIZE) != 0) {
        int rc = errno;
        close(fd);
        return rc;
    }
    void *p = MAP_FAILED;
    if (ARENA_HINT) {
        p = mmap(ARENA_HINT, ARENA_SIZE, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
        if (p != MAP_FAILED && p != ARENA_HINT) { /* kernel < 4.17 */
            munmap(p, ARENA_SIZE);
            p = MAP_FAILED;
        }
    }
    if (p == MAP_FAILED)
        p = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int rc = errno;
        close(fd);
        return rc;
    }
    struct arena_hdr *h = p;
    int rc = robust_mutex_init(&h->mu, PTHREAD_MUTEX_NORMAL);
    if (rc) {
        munmap(p, ARENA_SIZE);
        close(fd);
        return rc;
    }
    h->size = ARENA_SIZE;
    h->nunits = ARENA_SIZE / UNIT;
    size_t meta = BITS_AT + h->nunits / 8;
    h->hint = (meta + UNIT - 1) / UNIT;
    bits_fill(arena_bits(h), 0, h->hint, true); /* the memfd starts zeroed */
    atomic_init(&h->next_token, 1);
    h->magic = ARENA_MAGIC;
    g_fd = fd;
    g_size = ARENA_SIZE;
    atomic_store_explicit(&g_arena, h, memory_order_release);
    return 0;
}

/* The arena, made on first use; NULL with errno set if it cannot be. */
static struct arena_hdr *arena_get(void)
{
    struct arena_hdr *h = atomic_load_explicit(&g_arena, memory_order_acquire);
    if (h)
        return h;
    pthread_once(&g_atfork_once, register_atfork);
    pthread_mutex_lock(&g_init);
    int rc = atomic_load_explicit(&g_arena, memory_order_relaxed)
                 ? 0
                 : arena_create_locked();
    h = atomic_load_explicit(&g_arena, memory_order_relaxed);
    pthread_mutex_unlock(&g_init);
    if (!h)
        errno = rc;
    return h;
}

static void arena_lock(struct arena_hdr *h)
{
    /* A process that died in the allocator at worst leaked the units it
     * was moving (see the top of the file): the state is usable as is. */
    if (pthread_mutex_lock(&h->mu) == EOWNERDEAD)
        pthread_mutex_consistent(&h->mu);
}

/* n bytes of shared memory, 16-aligned, not zeroed; NULL with errno. */
static void *arena_alloc(size_t n)
{
    struct arena_hdr *h = arena_get();
    if (!h)
        return NULL;
    if (n > h->size) {
        errno = ENOMEM;
        return NULL;
    }
    size_t k = (n + BLK_HDR + UNIT - 1) / UNIT;
    uint64_t *bits = arena_bits(h);
    arena_lock(h);
    size_t at = bits_run(bits, h->hint, h->nunits, k);
    struct blk *b = NULL;
    if (at != SIZE_MAX) {
        bits_fill(bits, at, k, true);
        if (at == h->hint)
            h->hint = at + k;
        b = (struct blk *)((char *)h + at * UNIT);
        b->units = (uint32_t)k;
        b->tag = TAG_USED;
    }
    pthread_mutex_unlock(&h->mu);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    return (char *)b + BLK_HDR;
}

static void arena_free(void *p)
{
    struct arena_hdr *h = atomic_load_explicit(&g_arena, memory_order_acquire);
    if (!p || !h)
        return;
    uintptr_t off = (uintptr_t)p - BLK_HDR - (uintptr_t)h;
    if ((uintptr_t)p < (uintptr_t)h + BLK_HDR || off >= h->size || off % UNIT)
        return; /* not a block of the arena */
    struct blk *b = (struct blk *)((char *)h + off);
    size_t at = off / UNIT;
    arena_lock(h);
    /* Not a live block, or freed already: leave everything alone. */
    if (b->tag != TAG_USED || b->units == 0 || at + b->units > h->nunits) {
        pthread_mutex_unlock(&h->mu);
        return;
    }
    size_t k = b->units;
    b->tag = TAG_FREE;
    if (k * UNIT >= PUNCH_MIN) {
        /* Hand a big block's pages back; its first page keeps the header.
         * Done before the units are free for others to take. */
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        uintptr_t from = ((uintptr_t)b + BLK_HDR + pg - 1) & ~(pg - 1);
        uintptr_t to = ((uintptr_t)b + k * UNIT) & ~(pg - 1);
        if (to > from)
            madvise((void *)from, to - from, MADV_REMOVE);
    }
    bits_fill(arena_bits(h), at, k, false);
    if (at < h->hint)
        h->hint = at;
    pthread_mutex_unlock(&h->mu);
}

int rlab__shm_export(int *fd, void **addr, size_t *size)
{
    struct arena_hdr *h = atomic_load_explicit(&g_arena, memory_order_acquire);
    if (!fd || !addr || !size)
        return EINVAL;
    if (!h)
        return ENOENT;
    *fd = g_fd;
    *addr = h;
    *size = g_size;
    return 0;
}

int rlab__shm_import(int fd, void *addr, size_t size)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    if (fd < 0 || !addr || (uintptr_t)addr % pg || size < 2 * pg || size % pg)
        return EINVAL;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return errno;
    if (st.st_size < 0 || (size_t)st.st_size != size)
        return EINVAL;
    pthread_once(&g_atfork_once, register_atfork);
    pthread_mutex_lock(&g_init);
    int rc = 0;
    void *p = mmap(addr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    if (p == MAP_FAILED) {
        rc = errno == EEXIST ? ENOMEM : errno;
        goto out;
    }
    struct arena_hdr *h = p;
    int copy = -1;
    if (p != addr) /* kernel < 4.17 took the flag as a hint */
        rc = ENOMEM;
    else if (h->magic != ARENA_MAGIC || h->size != size ||
             h->nunits != size / UNIT)
        rc = EINVAL;
    else if (atomic_load_explicit(&g_arena, memory_order_relaxed))
        rc = EBUSY; /* this process already has an arena elsewhere */
    else if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
        rc = errno;
    if (rc) {
        munmap(p, size);
        goto out;
    }
    g_fd = copy;
    g_size = size;
    atomic_store_explicit(&g_arena, h, memory_order_release);
out:
    pthread_mutex_unlock(&g_init);
    return rc;
}

static uint64_t my_token(void)
{
    uint64_t t = t_token;
    if (__builtin_expect(t != 0, 1))
        return t;
    /* Only a thread that uses a shared object asks, so the arena exists. */
    struct arena_hdr *h = atomic_load_explicit(&g_arena, memory_order_acquire);
    t_token =
        atomic_fetch_add_explicit(&h->next_token, 1, memory_order_relaxed);
    return t_token;
}

#ifdef RLAB_TSAN
/* ThreadSanitizer does not intercept pthread_mutex_clocklock, so its build
 * waits with pthread_mutex_timedlock on CLOCK_REALTIME, re-deriving the
 * real-time deadline from the monotonic one after any early timeout (a
 * clock step forward).  Its timedlock interceptor also ignores EOWNERDEAD,
 * so that acquisition is reported to it by hand. */
static int mutex_lock_until(pthread_mutex_t *mu, const rlab_deadline *d)
{
    for (;;) {
        struct timespec mono, real;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_REALTIME, &real);
        long long ns = (long long)(d->at.tv_sec - mono.tv_sec) * 1000000000LL +
                       (d->at.tv_nsec - mono.tv_nsec);
        if (ns <= 0) {
            int rc = pthread_mutex_trylock(mu);
            return rc == EBUSY ? ETIMEDOUT : rc;
        }
        ns += real.tv_nsec;
        struct timespec at = {real.tv_sec + (time_t)(ns / 1000000000LL),
                              (long)(ns % 1000000000LL)};
        int rc = pthread_mutex_timedlock(mu, &at);
        if (rc == EOWNERDEAD) {
            __tsan_mutex_pre_lock(mu, __tsan_mutex_try_lock);
            __tsan_mutex_post_lock(mu, __tsan_mutex_try_lock, 0);
        }
        if (rc != ETIMEDOUT || rlab__expired(d))
            return rc;
    }
}
#else
static int mutex_lock_until(pthread_mutex_t *mu, const rlab_deadline *d)
{
    return pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &d->at);
}
#endif

/* Locks a robust mutex: 0, EAGAIN (a try found it held), ETIMEDOUT, or
 * RLAB_EOWNERDEAD (held, and made consistent again). */
static int mutex_lock(pthread_mutex_t *mu, const rlab_deadline *d)
{
    int rc;
    switch (d->kind) {
    case RLAB_WAIT_TRY:
        rc = pthread_mutex_trylock(mu);
        if (rc == EBUSY)
            rc = EAGAIN;
        break;
    case RLAB_WAIT_FOREVER:
        rc = pthread_mutex_lock(mu);
        break;
    default:
        rc = mutex_lock_until(mu, d);
        break;
    }
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(mu);
        rc = RLAB_EOWNERDEAD;
    }
    return rc;
}

/* For the shared objects of other files (pqueue.c): see mp_internal.h. */
void *rlab__shm_alloc(size_t n)
{
    return arena_alloc(n);
}

void rlab__shm_free(void *p)
{
    arena_free(p);
}

int rlab__shm_mutex_init(pthread_mutex_t *mu)
{
    return robust_mutex_init(mu, PTHREAD_MUTEX_NORMAL);
}

int rlab__shm_mutex_lock(pthread_mutex_t *mu, const rlab_deadline *d)
{
    return mutex_lock(mu, d);
}

/* ------------------------------------------------------ Lock/RLock --- */

struct rlab_plock {
    pthread_mutex_t mu;
    _Atomic uint64_t owner; /* the holder's token, 0 when free */
    long count;             /* recursion depth; only the holder touches it */
    bool recursive;
};

static int plock_init(struct rlab_plock *l, bool recursive)
{
    /* The token check refuses a self re-acquire before pthread sees it;
     * ERRORCHECK / RECURSIVE keep pthread itself from self-deadlocking. */
    int rc = robust_mutex_init(&l->mu, recursive ? PTHREAD_MUTEX_RECURSIVE
                                                 : PTHREAD_MUTEX_ERRORCHECK);
    if (rc)
        return rc;
    atomic_init(&l->owner, 0);
    l->count = 0;
    l->recursive = recursive;
    return 0;
}

static bool plock_owned(struct rlab_plock *l)
{
    return atomic_load_explicit(&l->owner, memory_order_relaxed) == my_token();
}

static int plock_acquire_d(struct rlab_plock *l, const rlab_deadline *d)
{
    if (plock_owned(l)) {
        if (!l->recursive)
            return EDEADLK;
        if (l->count == LONG_MAX)
            return EOVERFLOW;
        l->count++;
        return 0;
    }
    int rc = mutex_lock(&l->mu, d);
    if (rc == 0 || rc == RLAB_EOWNERDEAD) {
        atomic_store_explicit(&l->owner, my_token(), memory_order_relaxed);
        l->count = 1;
    }
    return rc;
}

/* Releases every level the caller holds; returns the depth it had. */
static long plock_release_all(struct rlab_plock *l)
{
    long depth = l->count;
    l->count = 0;
    atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
    pthread_mutex_unlock(&l->mu);
    return depth;
}

static void plock_destroy(struct rlab_plock *l)
{
    /* Python lets a held lock be dropped.  Its holder releases it first so
     * ThreadSanitizer does not see the destroy of a locked mutex; one held
     * elsewhere is dropped without a destroy (which does nothing for a
     * robust mutex in glibc anyway). */
    if (plock_owned(l))
        plock_release_all(l);
    if (atomic_load_explicit(&l->owner, memory_order_relaxed) == 0)
        pthread_mutex_destroy(&l->mu);
}

rlab_plock *rlab_plock_new(bool recursive)
{
    struct rlab_plock *l = arena_alloc(sizeof *l);
    if (!l)
        return NULL;
    int rc = plock_init(l, recursive);
    if (rc) {
        arena_free(l);
        errno = rc;
        return NULL;
    }
    return l;
}

int rlab_plock_acquire(rlab_plock *l, double timeout)
{
    rlab_deadline d;
    if (!l || rlab__deadline(timeout, &d))
        return EINVAL;
    return plock_acquire_d(l, &d);
}

int rlab_plock_release(rlab_plock *l)
{
    if (!l)
        return EINVAL;
    if (!plock_owned(l))
        return EPERM;
    if (l->count > 1) {
        l->count--;
        return 0;
    }
    plock_release_all(l);
    return 0;
}

void rlab_plock_free(rlab_plock *l)
{
    if (!l)
        return;
    plock_destroy(l);
    arena_free(l);
}

/* ------------------------------------------------------- Semaphore --- */

struct rlab_psemaphore {
    atomic_uint value;
    atomic_uint waiters; /* may overcount after a waiter died: extra wakes */
    unsigned bound;      /* 0: unbounded (up to INT_MAX, like SEM_VALUE_MAX) */
};

rlab_psemaphore *rlab_psemaphore_new(long value, long bound)
{
    if (value < 0 || value > INT_MAX || bound < 0 || bound > INT_MAX ||
        (bound && value > bound)) {
        errno = EINVAL;
        return NULL;
    }
    struct rlab_psemaphore *s = arena_alloc(sizeof *s);
    if (!s)
        return NULL;
    atomic_init(&s->value, (unsigned)value);
    atomic_init(&s->waiters, 0);
    s->bound = (unsigned)bound;
    return s;
}

static bool sem_take(struct rlab_psemaphore *s)
{
    unsigned v = atomic_load_explicit(&s->value, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

int rlab_psemaphore_acquire(rlab_psemaphore *s, double timeout)
{
    if (!s || !rlab__timeout_ok(timeout))
        return EINVAL;
    if (sem_take(s)) /* no clock reading on the fast path */
        return 0;
    rlab_deadline d;
    rlab__deadline(timeout, &d);
    if (d.kind == RLAB_WAIT_TRY)
        return EAGAIN;
    /* The waiter count and the value are sequentially consistent: either a
     * release sees this waiter and wakes, or the futex sees its value. */
    atomic_fetch_add(&s->waiters, 1);
    int rc;
    for (;;) {
        if (sem_take(s)) {
            rc = 0;
            break;
        }
        if (rlab__futex_wait_shared(&s->value, 0, &d) == ETIMEDOUT) {
            rc = sem_take(s) ? 0 : ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&s->waiters, 1);
    return rc;
}

int rlab_psemaphore_release(rlab_psemaphore *s)
{
    if (!s)
        return EINVAL;
    unsigned max = s->bound ? s->bound : INT_MAX;
    unsigned v = atomic_load_explicit(&s->value, memory_order_relaxed);
    do {
        if (v >= max)
            return EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&s->value, &v, v + 1));
    if (atomic_load(&s->waiters) > 0)
        rlab__futex_wake_shared(&s->value, 1);
    return 0;
}

long rlab_psemaphore_value(rlab_psemaphore *s)
{
    return s ? (long)atomic_load_explicit(&s->value, memory_order_acquire) : 0;
}

void rlab_psemaphore_free(rlab_psemaphore *s)
{
    arena_free(s);
}

/* ----------------------------------------------------------- Event --- */

/* Bit 0 is the flag; every set() also advances the generation in the
 * other bits, so a set() then clear() still releases the waiters that were
 * parked (as event.c does for threads). */
struct rlab_pevent {
    atomic_uint word;
    atomic_uint waiters;
};

rlab_pevent *rlab_pevent_new(void)
{
    struct rlab_pevent *e = arena_alloc(sizeof *e);
    if (!e)
        return NULL;
    atomic_init(&e->word, 0);
    atomic_init(&e->waiters, 0);
    return e;
}

int rlab_pevent_set(rlab_pevent *e)
{
    if (!e)
        return EINVAL;
    if (rlab__genword_set(&e->word) && atomic_load(&e->waiters) > 0)
        rlab__futex_wake_shared(&e->word, INT_MAX);
    return 0;
}

int rlab_pevent_clear(rlab_pevent *e)
{
    if (!e)
        return EINVAL;
    atomic_fetch_and(&e->word, ~1u);
    return 0;
}

bool rlab_pevent_is_set(rlab_pevent *e)
{
    return e && (atomic_load_explicit(&e->word, memory_order_acquire) & 1);
}

int rlab_pevent_wait(rlab_pevent *e, double timeout)
{
    return e ? rlab__genword_wait(&e->word, &e->waiters, timeout, true)
             : EINVAL;
}

void rlab_pevent_free(rlab_pevent *e)
{
    arena_free(e);
}

/* ------------------------------------------------------- Condition --- */

/* One per wait, in the arena, linked in the condition's FIFO while the
 * waiter is queued.  The list is guarded by the condition's lock; word
 * turns 1 (release) when a notify picks the waiter. */
struct cond_waiter {
    atomic_uint word;
    pid_t pid;
    struct cond_waiter *prev, *next;
};

struct rlab_pcondition {
    struct rlab_plock *lock;
    bool own_lock;
    struct cond_waiter *head, *tail;
};

rlab_pcondition *rlab_pcondition_new(rlab_plock *lock)
{
    struct rlab_pcondition *c = arena_alloc(sizeof *c);
    if (!c)
        return NULL;
    c->own_lock = lock == NULL;
    /* Python's Condition() makes an RLock. */
    c->lock = lock ? lock : rlab_plock_new(true);
    if (!c->lock) {
        int rc = errno;
        arena_free(c);
        errno = rc;
        return NULL;
    }
    c->head = c->tail = NULL;
    return c;
}

int rlab_pcondition_acquire(rlab_pcondition *c, double timeout)
{
    return c ? rlab_plock_acquire(c->lock, timeout) : EINVAL;
}

int rlab_pcondition_release(rlab_pcondition *c)
{
    return c ? rlab_plock_release(c->lock) : EINVAL;
}

static void cond_unlink(struct rlab_pcondition *c, struct cond_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        c->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        c->tail = w->prev;
    w->prev = w->next = NULL;
}

int rlab_pcondition_wait(rlab_pcondition *c, double timeout)
{
    rlab_deadline d;
    if (!c || rlab__deadline(timeout, &d))
        return EINVAL;
    struct rlab_plock *l = c->lock;
    if (!plock_owned(l))
        return EPERM;
    struct cond_waiter *w = arena_alloc(sizeof *w);
    if (!w)
        return ENOMEM;
    atomic_init(&w->word, 0);
    w->pid = getpid();
    w->next = NULL;
    w->prev = c->tail;
    if (c->tail)
        c->tail->next = w;
    else
        c->head = w;
    c->tail = w;

    long depth = plock_release_all(l);
    while (atomic_load_explicit(&w->word, memory_order_acquire) == 0)
        if (rlab__futex_wait_shared(&w->word, 0, &d) == ETIMEDOUT)
            break;
    /* Python reacquires without a timeout; so does this. */
    rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    int lrc = mutex_lock(&l->mu, &forever);
    atomic_store_explicit(&l->owner, my_token(), memory_order_relaxed);
    l->count = depth;

    /* Under the lock again: a notify either picked this waiter (word 1,
     * already unlinked) or did not, and then the waiter leaves the queue. */
    bool notified = atomic_load_explicit(&w->word, memory_order_acquire);
    if (!notified)
        cond_unlink(c, w);
    arena_free(w);
    if (lrc == RLAB_EOWNERDEAD)
        return lrc;
    return notified ? 0 : ETIMEDOUT;
}

/* A waiter of another process that no longer exists (reaped). */
static bool waiter_dead(const struct cond_waiter *w, pid_t self)
{
    return w->pid != self && kill(w->pid, 0) == -1 && errno == ESRCH;
}

int rlab_pcondition_notify(rlab_pcondition *c, int n)
{
    if (!c || n < 0)
        return EINVAL;
    if (!plock_owned(c->lock))
        return EPERM;
    pid_t self = getpid();
    while (n > 0 && c->head) {
        struct cond_waiter *w = c->head;
        cond_unlink(c, w);
        if (waiter_dead(w, self)) {
            arena_free(w);
            continue;
        }
        /* The waiter frees w only after it holds the lock, which this
         * thread holds: the wake below touches live memory. */
        atomic_store_explicit(&w->word, 1, memory_order_release);
        rlab__futex_wake_shared(&w->word, 1);
        n--;
    }
    return 0;
}

int rlab_pcondition_notify_all(rlab_pcondition *c)
{
    return rlab_pcondition_notify(c, INT_MAX);
}

void rlab_pcondition_free(rlab_pcondition *c)
{
    if (!c)
        return;
    while (c->head) { /* records of waiters that died waiting */
        struct cond_waiter *w = c->head;
        cond_unlink(c, w);
        arena_free(w);
    }
    if (c->own_lock)
        rlab_plock_free(c->lock);
    arena_free(c);
}

/* ----------------------------------------------------------- Value --- */

struct rlab_value {
    struct rlab_plock lock;
    size_t size;
    alignas(16) unsigned char data[];
};

rlab_value *rlab_value_new(size_t size)
{
    if (size == 0 || size > ARENA_SIZE) {
        errno = size ? ENOMEM : EINVAL;
        return NULL;
    }
    struct rlab_value *v = arena_alloc(sizeof *v + size);
    if (!v)
        return NULL;
    /* An RLock, as Python's Value(lock=True) makes, so that the value can
     * be read and written while its lock is held (`with v.get_lock()`). */
    int rc = plock_init(&v->lock, true);
    if (rc) {
        arena_free(v);
        errno = rc;
        return NULL;
    }
    v->size = size;
    memset(v->data, 0, size);
    return v;
}

void *rlab_value_ptr(rlab_value *v)
{
    return v ? v->data : NULL;
}

rlab_plock *rlab_value_lock(rlab_value *v)
{
    return v ? &v->lock : NULL;
}

/* Takes the value's lock for one short access: 0 or RLAB_EOWNERDEAD (held
 * either way). */
static int value_lock(struct rlab_value *v)
{
    rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    return plock_acquire_d(&v->lock, &forever);
}

static int value_unlock(struct rlab_value *v, int rc)
{
    rlab_plock_release(&v->lock);
    return rc;
}

int rlab_value_get_long(rlab_value *v, long *out)
{
    if (!v || !out || v->size < sizeof(long))
        return EINVAL;
    int rc = value_lock(v);
    if (rc && rc != RLAB_EOWNERDEAD)
        return rc;
    memcpy(out, v->data, sizeof *out);
    return value_unlock(v, rc);
}

int rlab_value_set_long(rlab_value *v, long x)
{
    if (!v || v->size < sizeof(long))
        return EINVAL;
    int rc = value_lock(v);
    if (rc && rc != RLAB_EOWNERDEAD)
        return rc;
    memcpy(v->data, &x, sizeof x);
    return value_unlock(v, rc);
}

int rlab_value_add_long(rlab_value *v, long delta, long *result)
{
    if (!v || v->size < sizeof(long))
        return EINVAL;
    int rc = value_lock(v);
    if (rc && rc != RLAB_EOWNERDEAD)
        return rc;
    long x;
    memcpy(&x, v->data, sizeof x);
    /* Wraps like a C long in ctypes, without signed-overflow UB. */
    x = (long)((unsigned long)x + (unsigned long)delta);
    memcpy(v->data, &x, sizeof x);
    if (result)
        *result = x;
    return value_unlock(v, rc);
}

void rlab_value_free(rlab_value *v)
{
    if (!v)
        return;
    plock_destroy(&v->lock);
    arena_free(v);
}
