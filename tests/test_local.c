/* test_local.c - threading.local: per-thread values and their destructor. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rlab_test.h"

/* The destructor counts its calls, remembers the last value and flags a
 * NULL value (which must never be passed). */
static atomic_int dtor_calls;
static atomic_int dtor_null_calls;
static _Atomic(void *) dtor_last;

static void count_dtor(void *v)
{
    if (!v)
        atomic_fetch_add(&dtor_null_calls, 1);
    atomic_store(&dtor_last, v);
    atomic_fetch_add(&dtor_calls, 1);
}

/* A destructor that owns heap values: ASan's leak check covers the rest. */
static atomic_int freed;
static void free_dtor(void *v)
{
    atomic_fetch_add(&freed, 1);
    free(v);
}

static void reset_counts(void)
{
    atomic_store(&dtor_calls, 0);
    atomic_store(&dtor_null_calls, 0);
    atomic_store(&dtor_last, NULL);
    atomic_store(&freed, 0);
}

/* A worker's view of one local; filled in the worker, read after join. */
typedef struct {
    rlab_local *local;
    void *value;           /* what the worker sets (NULL: set nothing) */
    rlab_barrier *all_set; /* optional: wait here after setting */
    rlab_event *hold;      /* set_and_hold: block here before exiting */
    void *seen_before, *seen_after;
    int set_rc, barrier_rc, hold_rc;
} peek;

static void *set_and_peek(void *p)
{
    peek *k = p;
    k->seen_before = rlab_local_get(k->local);
    if (k->value)
        k->set_rc = rlab_local_set(k->local, k->value);
    if (k->all_set)
        k->barrier_rc = rlab_barrier_wait(k->all_set, RLAB_GUARD, NULL);
    k->seen_after = rlab_local_get(k->local);
    return NULL;
}

START_TEST(value_is_null_until_set_in_this_thread)
{
    reset_counts();
    rlab_local *l = rlab_local_new(count_dtor);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_null(rlab_local_get(l));
    int mine;
    ck_assert_rc(rlab_local_set(l, &mine), 0);
    ck_assert_ptr_eq(rlab_local_get(l), &mine);

    /* Another thread still starts with nothing. */
    peek k = {.local = l};
    rlab_test_join(rlab_test_spawn(set_and_peek, &k));
    ck_assert_ptr_null(k.seen_before);
    ck_assert_ptr_null(k.seen_after);
    ck_assert_ptr_eq(rlab_local_get(l), &mine);
    ck_assert_int_eq(atomic_load(&dtor_calls), 0);
    rlab_local_free(l);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
}
END_TEST

START_TEST(each_thread_sees_only_its_own_value)
{
    enum { N = 4 };
    reset_counts();
    rlab_local *l = rlab_local_new(NULL);
    rlab_barrier *all_set = rlab_barrier_new(N + 1, NULL, NULL, RLAB_FOREVER);
    int vals[N], main_val;
    peek k[N];
    rlab_thread *t[N];
    ck_assert_rc(rlab_local_set(l, &main_val), 0);
    for (int i = 0; i < N; i++) {
        k[i] = (peek){.local = l, .value = &vals[i], .all_set = all_set};
        t[i] = rlab_test_spawn(set_and_peek, &k[i]);
    }
    /* Every thread has set its value before any reads it back. */
    ck_assert_rc(rlab_barrier_wait(all_set, RLAB_GUARD, NULL), 0);
    ck_assert_ptr_eq(rlab_local_get(l), &main_val);
    for (int i = 0; i < N; i++) {
        rlab_test_join(t[i]);
        ck_assert_rc(k[i].set_rc, 0);
        ck_assert_rc(k[i].barrier_rc, 0);
        ck_assert_ptr_null(k[i].seen_before);
        ck_assert_ptr_eq(k[i].seen_after, &vals[i]);
    }
    ck_assert_ptr_eq(rlab_local_get(l), &main_val);
    rlab_local_free(l);
    rlab_barrier_free(all_set);
}
END_TEST

START_TEST(destructor_has_run_on_a_threads_value_when_join_returns)
{
    reset_counts();
    rlab_local *l = rlab_local_new(count_dtor);
    int a, b;
    peek k = {.local = l, .value = &a};
    rlab_test_join(rlab_test_spawn(set_and_peek, &k));
    ck_assert_rc(k.set_rc, 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &a);

    /* Once per thread, on that thread's value. */
    k = (peek){.local = l, .value = &b};
    rlab_test_join(rlab_test_spawn(set_and_peek, &k));
    ck_assert_int_eq(atomic_load(&dtor_calls), 2);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &b);

    rlab_local_free(l); /* nothing left to destroy */
    ck_assert_int_eq(atomic_load(&dtor_calls), 2);
    ck_assert_int_eq(atomic_load(&dtor_null_calls), 0);
}
END_TEST

/* A destructor that takes its time, and notices if the join it should hold
 * up has returned already. */
static rlab_event *joined;
static atomic_bool dtor_ran_after_join;

static void slow_dtor(void *v)
{
    /* Time passing is the point: a join that does not wait for the
     * destructors returns within this wait. */
    if (rlab_event_wait(joined, 0.1) == 0)
        atomic_store(&dtor_ran_after_join, true);
    count_dtor(v);
}

START_TEST(join_returns_only_after_a_slow_destructor_finished)
{
    reset_counts();
    joined = rlab_event_new();
    atomic_store(&dtor_ran_after_join, false);
    rlab_local *l = rlab_local_new(slow_dtor);
    int a;
    peek k = {.local = l, .value = &a};
    rlab_thread *t = rlab_test_spawn(set_and_peek, &k);
    ck_assert_rc(rlab_thread_join(t, RLAB_GUARD, NULL), 0);
    rlab_event_set(joined);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert(!atomic_load(&dtor_ran_after_join));
    rlab_thread_free(t);
    rlab_local_free(l);
    rlab_event_free(joined);
}
END_TEST

/* The destructor's view of the exiting thread, reported through a pipe: the
 * write is its last touch of shared memory, so the test may read name_seen
 * (and free what the thread used) once the byte arrived. */
static char name_seen[64];
static int name_fd = -1;

static void name_dtor(void *v)
{
    (void)v;
    snprintf(name_seen, sizeof name_seen, "%s", rlab_current_thread_name());
    char c = 'k';
    ssize_t n = write(name_fd, &c, 1);
    (void)n;
}

typedef struct {
    rlab_local *local;
    rlab_event *go;
    int set_rc, wait_rc;
} named_set;

static void *set_then_wait(void *p)
{
    named_set *ns = p;
    ns->set_rc = rlab_local_set(ns->local, ns);
    ns->wait_rc = rlab_event_wait(ns->go, RLAB_GUARD);
    return NULL;
}

START_TEST(destructor_at_thread_exit_sees_the_threads_name)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    name_fd = fds[1];
    rlab_local *l = rlab_local_new(name_dtor);
    rlab_event *go = rlab_event_new();
    /* First with the handle kept and joined, then with the handle freed
     * while the thread runs (nothing else then keeps its record alive). */
    for (int detach = 0; detach < 2; detach++) {
        named_set ns = {.local = l, .go = go};
        memset(name_seen, 0, sizeof name_seen);
        rlab_event_clear(go);
        rlab_thread *t = NULL;
        ck_assert_rc(
            rlab_thread_start(&t, "exiting-worker", set_then_wait, &ns, false),
            0);
        if (detach)
            rlab_thread_free(t);
        rlab_event_set(go);
        char c = 0;
        ck_assert_int_eq(read(fds[0], &c, 1), 1);
        if (!detach)
            rlab_test_join(t);
        ck_assert_rc(ns.set_rc, 0);
        ck_assert_rc(ns.wait_rc, 0);
        ck_assert_str_eq(name_seen, "exiting-worker");
    }
    rlab_local_free(l);
    rlab_event_free(go);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

static void *set_in_plain_pthread(void *p)
{
    peek *k = p;
    k->set_rc = rlab_local_set(k->local, k->value);
    return NULL;
}

START_TEST(destructor_runs_when_a_plain_pthread_exits)
{
    reset_counts();
    rlab_local *l = rlab_local_new(count_dtor);
    int a;
    peek k = {.local = l, .value = &a};
    pthread_t pt;
    ck_assert_int_eq(pthread_create(&pt, NULL, set_in_plain_pthread, &k), 0);
    ck_assert_int_eq(pthread_join(pt, NULL), 0);
    ck_assert_rc(k.set_rc, 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &a);
    rlab_local_free(l);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
}
END_TEST

START_TEST(destructor_runs_on_the_value_a_set_replaces)
{
    reset_counts();
    rlab_local *l = rlab_local_new(count_dtor);
    int a, b;
    ck_assert_rc(rlab_local_set(l, &a), 0);
    ck_assert_rc(rlab_local_set(l, &b), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &a);
    ck_assert_ptr_eq(rlab_local_get(l), &b);

    /* Setting the same value again destroys nothing. */
    ck_assert_rc(rlab_local_set(l, &b), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);

    /* Setting NULL destroys the old value, and leaves nothing to destroy. */
    ck_assert_rc(rlab_local_set(l, NULL), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 2);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &b);
    ck_assert_ptr_null(rlab_local_get(l));
    rlab_local_free(l);
    ck_assert_int_eq(atomic_load(&dtor_calls), 2);
    ck_assert_int_eq(atomic_load(&dtor_null_calls), 0);
}
END_TEST

static void *set_then_clear(void *p)
{
    peek *k = p;
    k->set_rc = rlab_local_set(k->local, k->value);
    k->seen_before = rlab_local_get(k->local);
    if (k->set_rc == 0)
        k->set_rc = rlab_local_set(k->local, NULL);
    k->seen_after = rlab_local_get(k->local);
    return NULL;
}

START_TEST(a_null_value_is_never_handed_to_the_destructor)
{
    reset_counts();
    rlab_local *l = rlab_local_new(count_dtor);
    int a;
    /* Set, then NULL, then exit: one call, on the real value. */
    peek k = {.local = l, .value = &a};
    rlab_test_join(rlab_test_spawn(set_then_clear, &k));
    ck_assert_rc(k.set_rc, 0);
    ck_assert_ptr_eq(k.seen_before, &a);
    ck_assert_ptr_null(k.seen_after);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &a);

    /* Only NULL ever set: no call at all. */
    k = (peek){.local = l};
    rlab_test_join(rlab_test_spawn(set_then_clear, &k));
    ck_assert_rc(k.set_rc, 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);

    ck_assert_rc(rlab_local_set(l, NULL), 0);
    rlab_local_free(l);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert_int_eq(atomic_load(&dtor_null_calls), 0);
}
END_TEST

/* Sets a value, reports it set, then stays alive without touching the local
 * again until released. */
static void *set_and_hold(void *p)
{
    peek *k = p;
    k->set_rc = rlab_local_set(k->local, k->value);
    k->barrier_rc = rlab_barrier_wait(k->all_set, RLAB_GUARD, NULL);
    k->hold_rc = rlab_event_wait(k->hold, RLAB_GUARD);
    return NULL;
}

START_TEST(free_runs_the_destructor_on_every_value_still_set)
{
    reset_counts();
    rlab_local *l = rlab_local_new(free_dtor);
    rlab_barrier *all_set = rlab_barrier_new(2, NULL, NULL, RLAB_FOREVER);
    rlab_event *hold = rlab_event_new();
    ck_assert_rc(rlab_local_set(l, malloc(16)), 0);

    /* A thread that set a value and is still alive, not touching it. */
    peek k = {
        .local = l, .value = malloc(16), .all_set = all_set, .hold = hold};
    rlab_thread *t = rlab_test_spawn(set_and_hold, &k);
    ck_assert_rc(rlab_barrier_wait(all_set, RLAB_GUARD, NULL), 0);

    rlab_local_free(l);
    ck_assert_int_eq(atomic_load(&freed), 2);

    /* The thread's exit must not destroy its value a second time. */
    rlab_event_set(hold);
    rlab_test_join(t);
    ck_assert_rc(k.set_rc, 0);
    ck_assert_rc(k.hold_rc, 0);
    ck_assert_int_eq(atomic_load(&freed), 2);
    rlab_event_free(hold);
    rlab_barrier_free(all_set);
}
END_TEST

/* ---------------------------------------------------------- many locals --- */

enum { MANY = 200 };

typedef struct {
    rlab_local **locals;
    int *vals;
    int set_failures, wrong;
} many;

static void *set_many(void *p)
{
    many *m = p;
    for (int i = 0; i < MANY; i++)
        if (rlab_local_set(m->locals[i], &m->vals[i]) != 0)
            m->set_failures++;
    for (int i = 0; i < MANY; i++)
        if (rlab_local_get(m->locals[i]) != &m->vals[i])
            m->wrong++;
    return NULL;
}

START_TEST(many_locals_keep_separate_values_and_destructors)
{
    reset_counts();
    rlab_local *locals[MANY];
    int main_vals[MANY], thread_vals[MANY];
    for (int i = 0; i < MANY; i++) {
        /* Half with a destructor, half without. */
        locals[i] = rlab_local_new(i % 2 ? count_dtor : NULL);
        ck_assert_ptr_nonnull(locals[i]);
    }
    many mm = {.locals = locals, .vals = main_vals};
    set_many(&mm);
    ck_assert_int_eq(mm.set_failures, 0);
    ck_assert_int_eq(mm.wrong, 0);

    many mt = {.locals = locals, .vals = thread_vals};
    rlab_test_join(rlab_test_spawn(set_many, &mt));
    ck_assert_int_eq(mt.set_failures, 0);
    ck_assert_int_eq(mt.wrong, 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), MANY / 2);

    for (int i = 0; i < MANY; i++)
        ck_assert_ptr_eq(rlab_local_get(locals[i]), &main_vals[i]);
    for (int i = 0; i < MANY; i++)
        rlab_local_free(locals[i]);
    ck_assert_int_eq(atomic_load(&dtor_calls), MANY);
    ck_assert_int_eq(atomic_load(&dtor_null_calls), 0);
}
END_TEST

START_TEST(a_new_local_does_not_see_a_freed_locals_value)
{
    reset_counts();
    int a;
    for (int round = 0; round < 50; round++) {
        rlab_local *l = rlab_local_new(NULL);
        ck_assert_ptr_nonnull(l);
        ck_assert_ptr_null(rlab_local_get(l));
        ck_assert_rc(rlab_local_set(l, &a), 0);
        rlab_local_free(l);
    }
}
END_TEST

START_TEST(a_null_handle_is_einval)
{
    int a;
    ck_assert_rc(rlab_local_set(NULL, &a), EINVAL);
    ck_assert_rc(rlab_local_set(NULL, NULL), EINVAL);
    ck_assert_ptr_null(rlab_local_get(NULL));
    rlab_local_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("local");
    TCase *tc = tcase_create("values");
    tcase_add_test(tc, value_is_null_until_set_in_this_thread);
    tcase_add_test(tc, each_thread_sees_only_its_own_value);
    tcase_add_test(tc, many_locals_keep_separate_values_and_destructors);
    tcase_add_test(tc, a_new_local_does_not_see_a_freed_locals_value);
    tcase_add_test(tc, a_null_handle_is_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("destructor");
    tcase_add_test(tc, destructor_has_run_on_a_threads_value_when_join_returns);
    tcase_add_test(tc, join_returns_only_after_a_slow_destructor_finished);
    tcase_add_test(tc, destructor_at_thread_exit_sees_the_threads_name);
    tcase_add_test(tc, destructor_runs_when_a_plain_pthread_exits);
    tcase_add_test(tc, destructor_runs_on_the_value_a_set_replaces);
    tcase_add_test(tc, a_null_value_is_never_handed_to_the_destructor);
    tcase_add_test(tc, free_runs_the_destructor_on_every_value_still_set);
    suite_add_tcase(s, tc);
    return rlab_test_main(s);
}
