/*
 * racelab.c - the racelab command: dispatch and usage.
 *
 * With no arguments it runs the self-check and then the primitives
 * benchmark, so a fresh build can be judged with one command.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "racelab.h"

static const char usage_text[] =
    "usage: racelab [COMMAND [OPTIONS]]\n"
    "\n"
    "Python's threading, queue and concurrent.futures in C: the self-check "
    "and\n"
    "the benchmarks.\n"
    "\n"
    "commands:\n"
    "  (none)                      selfcheck, then bench primitives\n"
    "  selfcheck                   run Lock, RLock, Semaphore, "
    "BoundedSemaphore,\n"
    "                              Condition, Event, Barrier, Thread and local "
    "on\n"
    "                              real threads against exact expected "
    "results;\n"
    "                              exit 1 if any check fails\n"
    "  bench NAME [OPTIONS]        time librlab against a reference doing the\n"
    "                              same job, in one run: median of trials,\n"
    "                              subject and reference interleaved; speedup "
    "=\n"
    "                              reference / subject (> 1: racelab is "
    "faster)\n"
    "    primitives                Lock, RLock, Semaphore, Event and a "
    "contended\n"
    "                              Lock against raw pthread, sem_t and GLib\n"
    "    queue                     Queue and SimpleQueue against GAsyncQueue,\n"
    "                              1 producer/1 consumer and 2/2; ns per item\n"
    "    executor                  ThreadPoolExecutor against GThreadPool "
    "with\n"
    "                              2 and 4 workers; ns per trivial task\n"
    "      --json                  print the results as JSON\n"
    "      --trials N              trials per measurement (default 7)\n"
    "      --iters M               iterations per trial: lock pairs (default\n"
    "                              1000000; a contended run shares them among "
    "2\n"
    "                              threads), queue items (1000000, shared "
    "among\n"
    "                              the producers), executor tasks (100000)\n"
    "      --quick                 3 trials of 20000 iterations (executor: "
    "2000\n"
    "                              tasks), a smoke test\n"
    "  help, --help, -h            print this help\n"
    "  version, --version          print the version\n"
    "\n"
    "exit status: 0 success, 1 a check or a measurement failed (a benchmark "
    "also\n"
    "fails if items or tasks are lost), 2 usage error\n";

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

static int run_default(void)
{
    char *check[] = {"selfcheck", NULL};
    char *bench[] = {"bench", "primitives", NULL};
    int rc = cli_selfcheck(1, check);
    putchar('\n');
    fflush(stdout);
    int brc = cli_bench(2, bench);
    return rc != CLI_OK ? rc : brc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return run_default();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        cli_usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("racelab %s\n", RLAB_VERSION_STRING);
        return CLI_OK;
    }
    if (!strcmp(cmd, "selfcheck"))
        return cli_selfcheck(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cli_bench(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cli_usage_error("unknown option '%s'", cmd);
    return cli_usage_error("unknown command '%s'", cmd);
}
