/*
 * thread.c - threading.Thread and current_thread().
 *
 * Each racelab thread has a refcounted record shared by its handle and the
 * running thread, so rlab_thread_free may detach a thread that is still
 * running.  join() waits on a monotonic condition variable for the end of
 * the thread function, then reaps the pthread (which also waits for
 * thread-local destructors, so a local's destructor has run once join
 * returns).  Non-daemon threads are kept in a registry that an atexit
 * handler drains, as CPython joins non-daemon threads at shutdown; a
 * fork child starts with an empty registry, since its parent's threads do
 * not exist there.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "racelab/threading.h"

struct rlab_thread {
    pthread_t tid;
    char *name;
    void *(*fn)(void *);
    void *arg;
    void *result;
    bool daemon;
    long native_id;
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, finished, reaping, reaped;
    bool keyed; /* the running thread's reference is dropped by self_key */
    struct rlab_thread *next, *prev; /* registry of running non-daemons */
};

static _Thread_local rlab_thread *current;
static atomic_ulong thread_counter, dummy_counter;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static rlab_thread *registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void unref(rlab_thread *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->name);
    free(t);
}

static void registry_remove_locked(rlab_thread *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else if (registry == t)
        registry = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

/* Waits until t's function has returned, or the deadline; 0 or ETIMEDOUT. */
static int wait_finished(rlab_thread *t, const rlab_deadline *d)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    while (!t->finished && rc == 0) {
        if (d->kind == RLAB_WAIT_TRY)
            rc = ETIMEDOUT;
        else if (d->kind == RLAB_WAIT_FOREVER)
            pthread_cond_wait(&t->cv, &t->mu);
        else if (pthread_cond_timedwait(&t->cv, &t->mu, &d->at) == ETIMEDOUT)
            rc = t->finished ? 0 : ETIMEDOUT;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* Reaps the pthread of a thread whose function has returned, unless a
 * joiner already does or it was detached.  Called, and returns, with t->mu
 * held. */
static void reap_locked(rlab_thread *t)
{
    if (t->reaping)
        return;
    t->reaping = true;
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->tid, NULL);
    pthread_mutex_lock(&t->mu);
    t->reaped = true;
    pthread_cond_broadcast(&t->cv);
}

/* atexit: join every non-daemon racelab thread still running, reaping the
 * ones whose handle still holds them (an unreaped thread is a leak, and
 * ThreadSanitizer reports it). */
static void join_non_daemons(void)
{
    rlab_deadline forever = {.kind = RLAB_WAIT_FOREVER};
    pthread_mutex_lock(&registry_mu);
    for (;;) {
        rlab_thread *t = registry;
        while (t && t == current)
            t = t->next;
        if (!t)
            break;
        atomic_fetch_add(&t->refs, 1);
        pthread_mutex_unlock(&registry_mu);
        wait_finished(t, &forever);
        pthread_mutex_lock(&t->mu);
        reap_locked(t);
        pthread_mutex_unlock(&t->mu);
        pthread_mutex_lock(&registry_mu);
        unref(t);
    }
    pthread_mutex_unlock(&registry_mu);
}

static void fork_child(void)
{
    /* Only the forking thread exists in the child. */
    pthread_mutex_init(&registry_mu, NULL);
    registry = NULL;
}

/* The running thread drops its reference from a key destructor rather than
 * when fn returns: the thread's locals are destroyed after that, and their
 * destructors may still ask for the current thread's name. */
static pthread_key_t self_key;
static bool self_key_ok;
static _Thread_local bool self_rearmed;

static void drop_self(void *p)
{
    /* Key destructors run in rounds, in no promised order: go round once
     * more, so every local's destructor of the first round has run. */
    if (!self_rearmed && pthread_setspecific(self_key, p) == 0) {
        self_rearmed = true;
        return;
    }
    current = NULL;
    unref(p);
}

static void registry_init(void)
{
    self_key_ok = pthread_key_create(&self_key, drop_self) == 0;
    atexit(join_non_daemons);
    pthread_atfork(NULL, NULL, fork_child);
}

/* The end of a thread's function: publish the result, wake joiners. */
static void finish(rlab_thread *t, void *result)
{
    pthread_mutex_lock(&t->mu);
    t->result = result;
    t->finished = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (!t->daemon) {
        pthread_mutex_lock(&registry_mu);
        registry_remove_locked(t);
        pthread_mutex_unlock(&registry_mu);
    }
    if (!t->keyed)
        unref(t);
}

/* The function left through pthread_exit (or was cancelled): it still
 * ends, with a NULL result, so joiners and the exit handler do not hang. */
static void finish_unwound(void *p)
{
    finish(p, NULL);
}

static void *trampoline(void *p)
{
    rlab_thread *t = p;
    current = t;
    t->keyed = self_key_ok && pthread_setspecific(self_key, t) == 0;
    char short_name[16]; /* the kernel keeps 15 characters */
    snprintf(short_name, sizeof short_name, "%s", t->name);
    pthread_setname_np(pthread_self(), short_name);

    pthread_mutex_lock(&t->mu);
    t->native_id = (long)gettid();
    t->started = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);

    void *result;
    pthread_cleanup_push(finish_unwound, t);
    result = t->fn(t->arg);
    pthread_cleanup_pop(0);
    finish(t, result);
    return NULL;
}

int rlab_thread_start(rlab_thread **out, const char *name, void *(*fn)(void *),
                      void *arg, bool daemon)
{
    if (!out || !fn)
        return EINVAL;
    pthread_once(&registry_once, registry_init);
    rlab_thread *t = calloc(1, sizeof *t);
    if (!t)
        return ENOMEM;
    if (name) {
        t->name = strdup(name);
    } else {
        char buf[32];
        snprintf(buf, sizeof buf, "Thread-%lu",
                 atomic_fetch_add(&thread_counter, 1) + 1);
        t->name = strdup(buf);
    }
    if (!t->name) {
        free(t);
        return ENOMEM;
    }
    t->fn = fn;
    t->arg = arg;
    t->daemon = daemon;
    atomic_init(&t->refs, 2); /* the handle and the running thread */
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);

    if (!daemon) {
        pthread_mutex_lock(&registry_mu);
        t->next = registry;
        if (registry)
            registry->prev = t;
        registry = t;
        pthread_mutex_unlock(&registry_mu);
    }
    int rc = pthread_create(&t->tid, NULL, trampoline, t);
    if (rc != 0) {
        if (!daemon) {
            pthread_mutex_lock(&registry_mu);
            registry_remove_locked(t);
            pthread_mutex_unlock(&registry_mu);
        }
        atomic_store(&t->refs, 1);
        unref(t);
        return rc;
    }
    pthread_mutex_lock(&t->mu); /* as Python's start(): wait until running */
    while (!t->started)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    *out = t;
    return 0;
}

int rlab_thread_join(rlab_thread *t, double timeout, void **result)
{
    rlab_deadline d;
    if (!t || rlab__deadline(timeout, &d))
        return EINVAL;
    if (t == current)
        return EDEADLK;
    int rc = wait_finished(t, &d);
    if (rc)
        return rc;
    /* The function has returned; reap the pthread exactly once.  Other
     * joiners wait for the reaper, within their deadline. */
    pthread_mutex_lock(&t->mu);
    reap_locked(t);
    while (!t->reaped && rc == 0) {
        if (d.kind == RLAB_WAIT_TRY)
            rc = ETIMEDOUT;
        else if (d.kind == RLAB_WAIT_FOREVER)
            pthread_cond_wait(&t->cv, &t->mu);
        else if (pthread_cond_timedwait(&t->cv, &t->mu, &d.at) == ETIMEDOUT)
            rc = t->reaped ? 0 : ETIMEDOUT;
    }
    if (rc == 0 && result)
        *result = t->result;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

bool rlab_thread_is_alive(rlab_thread *t)
{
    if (!t)
        return false;
    pthread_mutex_lock(&t->mu);
    bool alive = !t->finished;
    pthread_mutex_unlock(&t->mu);
    return alive;
}

bool rlab_thread_daemon(rlab_thread *t)
{
    return t && t->daemon;
}

const char *rlab_thread_name(rlab_thread *t)
{
    return t ? t->name : NULL;
}

unsigned long rlab_thread_ident(rlab_thread *t)
{
    return t ? (unsigned long)t->tid : 0;
}

long rlab_thread_native_id(rlab_thread *t)
{
    return t ? t->native_id : 0;
}

void rlab_thread_free(rlab_thread *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    if (!t->reaping) {
        t->reaping = true;
        pthread_detach(t->tid);
    }
    pthread_mutex_unlock(&t->mu);
    unref(t);
}

const char *rlab_current_thread_name(void)
{
    static _Thread_local char dummy[32];
    if (current)
        return current->name;
    if (gettid() == getpid())
        return "MainThread";
    if (!dummy[0])
        snprintf(dummy, sizeof dummy, "Dummy-%lu",
                 atomic_fetch_add(&dummy_counter, 1) + 1);
    return dummy;
}

unsigned long rlab_get_ident(void)
{
    return (unsigned long)pthread_self();
}

long rlab_get_native_id(void)
{
    return (long)gettid();
}
