/*
 * local.c - threading.local: one void * per thread per local.
 *
 * A pthread key holds the thread's slot; the local also lists every slot so
 * that freeing the local can hand each remaining value to the destructor,
 * as dropping a threading.local drops every thread's attributes.  A thread
 * that exits runs its slot's destructor through the key destructor.
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"
#include "racelab/threading.h"

typedef struct slot {
    struct slot *next, *prev;
    struct rlab_local *local;
    void *value;
} slot;

struct rlab_local {
    pthread_key_t key;
    void (*dtor)(void *);
    pthread_mutex_t mu;
    slot *slots;
};

static void unlink_slot(rlab_local *l, slot *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->slots = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

static void thread_exit(void *p)
{
    slot *s = p;
    rlab_local *l = s->local;
    pthread_mutex_lock(&l->mu);
    unlink_slot(l, s);
    pthread_mutex_unlock(&l->mu);
    if (l->dtor && s->value)
        l->dtor(s->value);
    free(s);
}

rlab_local *rlab_local_new(void (*destructor)(void *))
{
    rlab_local *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    int rc = pthread_key_create(&l->key, thread_exit);
    if (rc) {
        free(l);
        errno = rc;
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->dtor = destructor;
    return l;
}

void rlab_local_free(rlab_local *l)
{
    if (!l)
        return;
    pthread_key_delete(l->key); /* no key destructor runs after this */
    slot *s = l->slots;
    while (s) {
        slot *next = s->next;
        if (l->dtor && s->value)
            l->dtor(s->value);
        free(s);
        s = next;
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void *rlab_local_get(rlab_local *l)
{
    if (!l)
        return NULL;
    slot *s = pthread_getspecific(l->key);
    return s ? s->value : NULL;
}

int rlab_local_set(rlab_local *l, void *value)
{
    if (!l)
        return EINVAL;
    slot *s = pthread_getspecific(l->key);
    if (!s) {
        if (!value)
            return 0;
        s = calloc(1, sizeof *s);
        if (!s)
            return ENOMEM;
        s->local = l;
        int rc = pthread_setspecific(l->key, s);
        if (rc) {
            free(s);
            return rc;
        }
        pthread_mutex_lock(&l->mu);
        s->next = l->slots;
        if (l->slots)
            l->slots->prev = s;
        l->slots = s;
        pthread_mutex_unlock(&l->mu);
    }
    void *old = s->value;
    s->value = value;
    if (l->dtor && old && old != value)
        l->dtor(old);
    return 0;
}
