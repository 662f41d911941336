/*
 * lessons.c - the lesson registry, in teaching order, and lookup by name.
 */
#include <string.h>

#include "lab.h"

extern const lab_lesson lab_lesson_counter, lab_lesson_rlock,
    lab_lesson_resource_pool, lab_lesson_condition,
    lab_lesson_event_coordinator, lab_lesson_producer_consumer,
    lab_lesson_thread_local, lab_lesson_check_then_act, lab_lesson_deadlock,
    lab_lesson_litmus, lab_lesson_fork_with_lock;

const lab_lesson *const lab_lessons[] = {
    &lab_lesson_counter,           &lab_lesson_rlock,
    &lab_lesson_resource_pool,     &lab_lesson_condition,
    &lab_lesson_event_coordinator, &lab_lesson_producer_consumer,
    &lab_lesson_thread_local,      &lab_lesson_check_then_act,
    &lab_lesson_deadlock,          &lab_lesson_litmus,
    &lab_lesson_fork_with_lock,
};
const size_t lab_lessons_count = sizeof lab_lessons / sizeof lab_lessons[0];

int lab_register_tasks(void)
{
    for (size_t i = 0; i < lab_lessons_count; i++) {
        int rc = lab_lessons[i]->register_tasks
                     ? lab_lessons[i]->register_tasks()
                     : 0;
        if (rc)
            return rc;
    }
    return 0;
}

const lab_lesson *lab_find(const char *spec, const lab_variant **variant)
{
    const char *dot = strchr(spec, '.');
    size_t n = dot ? (size_t)(dot - spec) : strlen(spec);
    if (variant)
        *variant = NULL;
    for (size_t i = 0; i < lab_lessons_count; i++) {
        const lab_lesson *l = lab_lessons[i];
        if (strlen(l->name) != n || strncmp(l->name, spec, n))
            continue;
        if (!dot)
            return l;
        for (size_t v = 0; v < l->nvariants; v++)
            if (!strcmp(l->variants[v].name, dot + 1)) {
                if (variant)
                    *variant = &l->variants[v];
                return l;
            }
        return NULL;
    }
    return NULL;
}
