/*
 * cli.h - the pieces of the racelab command: dispatch and usage
 * (racelab.c), the self-check (selfcheck.c) and the benchmarks
 * (bench_harness.c and the suites it runs, see bench.h).
 *
 * Every command returns a process exit status: 0 success, 1 a check or a
 * measurement failed, 2 a usage error (already reported on stderr).
 */
#ifndef RLAB_CLI_H
#define RLAB_CLI_H

#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints the usage text. */
void cli_usage(FILE *out);
/* Reports a usage error: "racelab: MESSAGE" and the usage, on stderr;
 * returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* racelab selfcheck (argv[0] is "selfcheck"). */
int cli_selfcheck(int argc, char **argv);
/* racelab bench NAME [OPTIONS] (argv[0] is "bench"), in bench_harness.c. */
int cli_bench(int argc, char **argv);
/* racelab bench seeds (argv[0] is "seeds"): the source material's tables. */
int cli_bench_seeds(int argc, char **argv);

/* The race lab (lab.c): racelab list | run | explain | check, and the
 * whole lab (racelab lab, or no command). */
int cli_lab_list(int argc, char **argv);
int cli_lab_run(int argc, char **argv);
int cli_lab_explain(int argc, char **argv);
int cli_lab_check(int argc, char **argv);
int cli_lab_all(int argc, char **argv);

/* Seconds on CLOCK_MONOTONIC. */
double cli_now(void);

#endif
