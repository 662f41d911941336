/*
 * flags.h - the flag downloader of the source material (Fluent Python's
 * flags.py, flags_threadpool.py, flags_processpool.py and flags2's error
 * handling), in C with libcurl: `racelab flags`, and the API a benchmark
 * calls to time each mode.
 *
 * Every flag BASE/flags/<cc>/<cc>.gif (lower-case cc, the layout of
 * src/flagserver) is fetched into DEST/<cc>.gif.  The body streams into a
 * temporary file made by mkstemp in DEST (".<cc>.gif.XXXXXX") while its
 * SHA-256 is computed; only when the transfer succeeded with HTTP 200 and
 * the digest matches the manifest (fixtures/flags/SHA256SUMS format:
 * "<64 hex>  <cc>.gif") is it renamed to DEST/<cc>.gif.  Every failure path
 * unlinks the temporary file, so DEST never holds a partial or unverified
 * flag.  HTTP 5xx, resets (short reads), time-outs and bad digests (a
 * truncated body is well formed: only the digest catches it) are retried
 * up to `retries` times with exponential backoff (10 ms, doubling, at most
 * 250 ms); other failures (404, no server, a local I/O error) are final.
 *
 * Modes:
 *   sequential  one loop, one easy handle (its connection is kept alive);
 *   threads     a ThreadPoolExecutor (racelab/futures.h) of `workers`
 *               threads, one task per flag; with `gil`, every task holds a
 *               simulated GIL (racelab/gil.h) while it "runs Python" and
 *               releases it around the blocking parts (the transfer's waits
 *               and the file writes), as CPython does;
 *   processes   a ProcessPoolExecutor (racelab/multiprocessing.h) of
 *               `workers` processes running the registered task
 *               "flags.download" (flags_register_tasks), which downloads,
 *               verifies and renames one flag; its result bytes carry the
 *               flag's outcome;
 *   multi       libcurl's multi interface on the calling thread, at most
 *               `workers` transfers in flight.
 *
 * libcurl and threads: flags_run calls curl_global_init before it starts
 * any thread (reference counted, and thread-safe in the libcurl this
 * builds against) and curl_global_cleanup after they are gone; every
 * handle has CURLOPT_NOSIGNAL and connect and total time-outs.  Threads
 * share one CURLSH holding the DNS cache (CURL_LOCK_DATA_DNS), whose lock
 * callbacks take one rlab_lock per curl_lock_data.  Connections are NOT
 * shared through the CURLSH (CURL_LOCK_DATA_CONNECT): libcurl documents a
 * shared connection cache used by concurrent threads as a known bug
 * (curl issue 4915, "A shared connection cache is not thread-safe").
 * Instead each task borrows an easy handle from a lock-protected free list
 * of at most `workers` handles, so every connection is used by one thread
 * at a time and kept alive for that handle's next flag.
 *
 * Errors are racelab's: 0 or a positive code.
 */
#ifndef RLAB_FLAGS_H
#define RLAB_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The source material's 20 most populous countries, plus FR. */
#define FLAGS_NDEFAULT 21
extern const char *const flags_default_codes[FLAGS_NDEFAULT];

/* At most this many codes per run (26 x 26 two-letter codes). */
#define FLAGS_MAX_CODES 676

typedef enum {
    FLAGS_SEQUENTIAL = 0,
    FLAGS_THREADS,
    FLAGS_PROCESSES,
    FLAGS_MULTI,
    FLAGS_NMODES
} flags_mode;

/* "sequential", "threads", "processes", "multi" (NULL for others). */
const char *flags_mode_name(flags_mode m);
/* 0 and *out; EINVAL for an unknown name. */
int flags_mode_parse(const char *name, flags_mode *out);

/* A flag's outcome. */
typedef enum {
    FLAG_OK = 0,    /* downloaded, digest verified, renamed into place */
    FLAG_HTTP,      /* the last reply's status was not 200 */
    FLAG_CURL,      /* libcurl failed (no server, time-out ...) */
    FLAG_TRUNCATED, /* a short read: the connection closed mid-body */
    FLAG_CHECKSUM,  /* a whole reply whose SHA-256 is not the manifest's */
    FLAG_NOSUM,     /* no manifest entry for <cc>.gif: nothing requested */
    FLAG_IO,        /* writing DEST failed (mkstemp, write, rename) */
    FLAG_CANCELLED, /* flags_cancel() before it finished */
    FLAG_NSTATUS
} flags_status;

/* "ok", "http", "curl", "truncated", "checksum", "nosum", "io",
 * "cancelled". */
const char *flags_status_name(flags_status s);

/* One flag, as the last attempt left it. */
typedef struct {
    char cc[3]; /* lower case */
    flags_status status;
    long http;        /* last HTTP status, 0 if none was received */
    int curl_code;    /* last CURLcode (0: CURLE_OK) */
    size_t bytes;     /* size of the file (ok) or of the last body */
    int attempts;     /* requests made (0 for FLAG_NOSUM) */
    double ms;        /* from its first request to its outcome */
    char reason[160]; /* "" when ok, else a sentence for a human */
} flags_result;

typedef struct {
    const char *base; /* e.g. "http://127.0.0.1:8001" (a trailing '/'
                         is ignored) */
    const char *dest; /* an existing directory */
    flags_mode mode;
    int workers;      /* 0: the mode's default (flags_default_workers) */
    bool gil;         /* threads only: run under a simulated GIL */
    int retries;      /* extra attempts per flag, 0 .. 100 */
    double timeout;   /* seconds per attempt, connect included; 0: 10 */
    const char *sums; /* manifest path; NULL: flags_default_sums() */
    /* Country codes (two ASCII letters each, any case; no duplicates);
     * NULL or 0: flags_default_codes. */
    const char *const *codes;
    size_t ncodes;
    /* Called on the calling thread each time a flag's outcome is known
     * (done of total so far); may be NULL.  Not called from workers. */
    void (*progress)(size_t done, size_t total, void *arg);
    void *progress_arg;
} flags_opts;

typedef struct {
    flags_mode mode;
    int workers; /* after the default was applied */
    bool gil;
    size_t n; /* results[0 .. n), in the order of the codes */
    flags_result *results;
    size_t ok, failed; /* ok + failed == n */
    size_t bytes;      /* bytes of the files written */
    int requests;      /* attempts, summed */
    double wall;       /* seconds, from the first request to the last
                          outcome (set-up and pool start-up excluded
                          for processes: see flags_run) */
    /* Under the GIL: switches between threads and releases around
     * blocking calls (0 otherwise). */
    unsigned long gil_switches, gil_blocking;
} flags_report;

/* True when cc is exactly two ASCII letters. */
bool flags_valid_code(const char *cc);

/* The manifest compiled in: the source tree's fixtures/flags/SHA256SUMS. */
const char *flags_default_sums(void);

/* The mode's default worker count for n flags: sequential 1; threads and
 * multi min(n, 20) (the source's MAX_WORKERS); processes the number of
 * CPUs, at most n. */
int flags_default_workers(flags_mode m, size_t n);

/* Downloads every code of o as described at the top; fills *out (release
 * it with flags_report_free, also after a failure).  Returns 0 when every
 * flag was attempted and has its outcome in out->results, whatever those
 * outcomes are (out->failed says how many failed); EINVAL for bad options
 * (a NULL or empty base or dest, an invalid or duplicate country code,
 * workers outside 0 .. 1024, retries outside 0 .. 100, a negative or NaN
 * timeout, gil without threads), checked before any request is made;
 * ENOENT when dest or the manifest does not exist, EIO when either cannot
 * be read, ENOTDIR when dest is no directory (these leave out->n 0); ENOMEM;
 * RLAB_EBROKEN when a pool could not be started or broke (the flags it did not
 * finish are FLAG_CANCELLED, "not run: ..."); RLAB_ECANCELLED after
 * flags_cancel() (each flag then has an outcome, FLAG_CANCELLED for those not
 * finished).  out->wall times only the downloads: the pool is started before
 * the clock starts, so modes compare on the same work. */
int flags_run(const flags_opts *o, flags_report *out);

/* Frees out->results (out may be NULL; the report may be zeroed). */
void flags_report_free(flags_report *out);

/* Asks the running flags_run (all of them) to stop: transfers in flight
 * are aborted, their temporary files removed.  Async-signal-safe; once
 * called, later runs are cancelled at once too. */
void flags_cancel(void);

/* Registers the processes mode's task ("flags.download"); main() calls it
 * before rlab_mp_main(), as it does lab_register_tasks().  0 or
 * rlab_task_register's code. */
int flags_register_tasks(void);

/* racelab flags [OPTIONS] (argv[0] is "flags"): the process exit status,
 * 0 every flag ok, 1 some failed, 2 a usage error, 130 interrupted. */
int cli_flags(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
