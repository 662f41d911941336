/*
 * tsan_report.c - counts ThreadSanitizer's reports in this process, so
 * `racelab check` can tell "TSan saw the race" from "it did not" without
 * parsing stderr.
 *
 * TSan calls the weak hook __tsan_on_report(report) for every report it
 * prints, and __tsan_get_report_data() names its kind ("data-race",
 * "lock-order-inversion" ...).  Both are part of the TSan runtime's
 * debugging interface (the one debuggers use); without TSan this file
 * only says "not active".
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "lab.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LAB_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define LAB_TSAN 1
#endif

static atomic_ulong n_races, n_lock_order, n_other;

#ifdef LAB_TSAN
int __tsan_get_report_data(void *report, const char **description, int *count,
                           int *stack_count, int *mop_count, int *loc_count,
                           int *mutex_count, int *thread_count,
                           int *unique_tid_count, void **sleep_trace,
                           uintptr_t trace_size);
void __tsan_on_report(void *report);

void __tsan_on_report(void *report)
{
    const char *kind = "";
    int count, stacks, mops, locs, mutexes, threads, tids;
    void *trace[1];
    if (!__tsan_get_report_data(report, &kind, &count, &stacks, &mops, &locs,
                                &mutexes, &threads, &tids, trace, 1))
        kind = "";
    if (!strcmp(kind, "data-race"))
        atomic_fetch_add(&n_races, 1);
    else if (!strcmp(kind, "lock-order-inversion"))
        atomic_fetch_add(&n_lock_order, 1);
    else
        atomic_fetch_add(&n_other, 1);
}

bool lab_tsan_active(void)
{
    return true;
}
#else
bool lab_tsan_active(void)
{
    return false;
}
#endif

lab_tsan_counts lab_tsan_counts_now(void)
{
    return (lab_tsan_counts){atomic_load(&n_races), atomic_load(&n_lock_order),
                             atomic_load(&n_other)};
}
