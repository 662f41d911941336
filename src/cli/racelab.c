/*
 * racelab.c - the racelab command: dispatch and usage.
 *
 * With no arguments it runs the whole race lab (lab.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "flags.h"
#include "lab.h"
#include "racelab.h"

static const char usage_text[] =
    "usage: racelab [COMMAND [OPTIONS]]\n"
    "\n"
    "Python's threading, queue and concurrent.futures in C, and a race lab:\n"
    "lessons that break concurrent code on purpose and prove every fix.\n"
    "\n"
    "commands:\n"
    "  (none), lab [OPTIONS]        run every variant of every lesson, then a\n"
    "                               summary; exit 0 when every racy variant\n"
    "                               failed and every fix passed\n"
    "  list [--names]               every lesson and variant, one line each\n"
    "  run LESSON[.VARIANT] [OPTIONS]\n"
    "                               stress one variant (or all of a lesson) and\n"
    "                               print the outcome table; exit 1 if a\n"
    "                               FORBIDDEN or STALE outcome was seen\n"
    "      --trials N | --time MS   how long to run (default: the variant's)\n"
    "      --threads T              actors, where the lesson lets it vary\n"
    "      --iterations M           per-actor loop count (lesson-defined)\n"
    "      --seed S                 seed for lessons that randomize\n"
    "      --amplify                widen the race window (said in the report)\n"
    "      --stride N               at most N states per batch (default: the\n"
    "                               variant's; 1 starts the actors together on\n"
    "                               every state)\n"
    "      --stale MS               report STALE after MS without progress\n"
    "      --no-pin                 let actors float (default: actor i is\n"
    "                               pinned to CPU i mod CPUs)\n"
    "      --json                   one JSON object per run\n"
    "  explain LESSON               what the race is, why each fix works, where\n"
    "                               to look in the source\n"
    "  check LESSON[.VARIANT]|all [OPTIONS] [--tries N]\n"
    "                               grade variants: a racy one must be caught\n"
    "                               by the harness (and by ThreadSanitizer in a\n"
    "                               TSan build) within N tries (default 5), a\n"
    "                               fix by neither; exit 1 otherwise\n"
    "  selfcheck                    run every threading primitive on real\n"
    "                               threads against exact expected results\n"
    "  bench NAME [OPTIONS]         time librlab against a reference doing the\n"
    "                               same job, in one run (median of trials,\n"
    "                               interleaved; speedup = reference / subject)\n"
    "    primitives                 Lock, RLock, Semaphore, Event, contended\n"
    "                               Lock vs raw pthread, sem_t and GLib\n"
    "    queue                      Queue and SimpleQueue vs GAsyncQueue\n"
    "    executor                   ThreadPoolExecutor vs GThreadPool\n"
    "    stress                     the stress harness vs a pthread_barrier\n"
    "                               per trial (store buffering, trivial)\n"
    "      --json                   print the results as JSON\n"
    "      --trials N               trials per measurement (default 7)\n"
    "      --iters M                iterations per trial (lock pairs 1000000,\n"
    "                               queue items 1000000, executor tasks 100000,\n"
    "                               stress states 2000000)\n"
    "      --quick                  3 short trials, a smoke test\n"
    "  flags --base URL --dest DIR [OPTIONS]\n"
    "                               download the source material's 21 flags\n"
    "                               from BASE/flags/<cc>/<cc>.gif, each checked\n"
    "                               against SHA256SUMS; exit 1 if one failed\n"
    "      --mode M                 sequential, threads, processes, multi\n"
    "      --workers N --retries R --timeout S --gil --json --cc CN,IN,...\n"
    "      --sums FILE              (racelab flags --help: the details)\n"
    "  help, --help, -h             print this help\n"
    "  version, --version           print the version\n"
    "\n"
    "exit status: 0 success, 1 a check failed, a run saw a FORBIDDEN or STALE\n"
    "outcome, or a benchmark lost items; 2 usage error\n";

void cli_usage(FILE *out)
{
    fputs(usage_text, out);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("racelab: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    cli_usage(stderr);
    return CLI_USAGE;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    /* Python's `if __name__ == '__main__'` guard, made explicit: the
     * lessons' child-process tasks are registered in every run, then a
     * spawn or forkserver child (a re-executed racelab) runs its task in
     * rlab_mp_main() and never comes back here. */
    int rc = lab_register_tasks();
    if (rc == 0)
        rc = bench_register_tasks();
    if (rc == 0)
        rc = flags_register_tasks();
    if (rc) {
        fprintf(stderr, "racelab: registering the child-process tasks: %s\n",
                rlab_strerror(rc));
        return CLI_FAIL;
    }
    rlab_mp_main(argc, argv);
    if (argc < 2)
        return cli_lab_all(1, argv);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        cli_usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("racelab %s\n", RLAB_VERSION_STRING);
        return CLI_OK;
    }
    if (!strcmp(cmd, "lab"))
        return cli_lab_all(argc - 1, argv + 1);
    if (!strcmp(cmd, "list"))
        return cli_lab_list(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cli_lab_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "explain"))
        return cli_lab_explain(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cli_lab_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "selfcheck"))
        return cli_selfcheck(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "flags"))
        return cli_flags(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cli_usage_error("unknown option '%s'", cmd);
    return cli_usage_error("unknown command '%s'", cmd);
}
