/*
 * workloads.h - the CPU-bound experiments of the source material, in C.
 *
 * Four workloads, each a job made of independent units that the callers
 * spread over threads, processes or a simulated GIL:
 *
 *   factorize    the prime factors of [2139079, 1214759, 1516637, 1852285]
 *                * 4 (one unit per number), by trial division over every
 *                candidate from 2 to the number, as the Python version
 *                loops over `range(1, number + 1)`;
 *   count_prime  the primes below a limit, split into ranges (one unit per
 *                range), is_prime by trial division up to the square root;
 *   rc4          ten buffers of 149 to 384 KB, each encrypted and decrypted
 *                with its own key (one unit per buffer), round trip checked;
 *                RC4 (KSA and PRGA) is written here, as the Python version
 *                writes it in Python;
 *   sha256       the SHA-256 digests of ten 1 MiB buffers, through OpenSSL's
 *                EVP interface as hashlib does.
 *
 * Buffer contents and keys are pseudo-random but fixed: a splitmix64 stream
 * per buffer, from a seed, so every run and every process sees the same
 * bytes and the digests can be checked against known values.
 *
 * One compute path serves every mode:
 *   sequential   rlab_wl_job_run (or rlab_wl_job_run_unit in a loop);
 *   threads      rlab_wl_unit_task, an rlab_task_fn, with the argument
 *                rlab_wl_job_unit(job, i), on a ThreadPoolExecutor;
 *   processes    rlab_wl_unit_pack makes a unit's input into bytes (what
 *                ProcessPoolExecutor.submit would pickle), the registered
 *                task rlab_wl_bytes_task computes it in the child and
 *                rlab_wl_job_store takes its result back;
 *   under a GIL  a hook (rlab_wl_hook) whose tick the inner loops call at
 *                their back-edges, where CPython's eval loop checks its eval
 *                breaker.
 * rlab_wl_job_check then says whether every unit ran and got it right.
 *
 * Units of one job may run at the same time on different threads; one unit
 * runs on one thread at a time, and the job is checked, reset or freed only
 * once its units are done (a future's result is enough to order them).
 * Errors are racelab's: 0 or a positive code.
 */
#ifndef RLAB_WORKLOADS_H
#define RLAB_WORKLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "racelab/multiprocessing.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- hook --- */

/* Iterations between two ticks when rlab_wl_hook.every is 0. */
#define RLAB_WL_TICK_EVERY 256UL

/* What the inner loops call.  An iteration is one candidate divisor
 * (factorize), one number or one trial division (count_prime), one byte
 * (rc4) or one 64-byte block (sha256).  All members are optional; a NULL
 * hook pointer means no calls at all. */
typedef struct {
    /* At a loop back-edge, every `every` iterations: the place for a
     * simulated GIL's check (rlab_gil_check). */
    void (*tick)(void *ctx);
    /* sha256 only: called around the whole OpenSSL call when set, as
     * CPython's hashlib releases the GIL while it hashes more than 2 KiB
     * (Py_BEGIN_ALLOW_THREADS); no ticks are made inside.  Both or
     * neither. */
    void (*release)(void *ctx);
    void (*reacquire)(void *ctx);
    void *ctx;
    unsigned long every; /* 0: RLAB_WL_TICK_EVERY */
} rlab_wl_hook;

/* ---------------------------------------------------------- primitives --- */

/* Room for the prime factors of any 64-bit number (with multiplicity). */
#define RLAB_WL_MAX_FACTORS 64

/* The prime factors of n >= 1, in ascending order with multiplicity (none
 * for 1), by trial division with every candidate d = 2 .. n: the loop runs
 * n - 1 times whatever the factors are, as the source material's does (a
 * loop that stopped at the square root would do the book's numbers in
 * microseconds; the experiment measures this loop).  Meant for the book's
 * seven-digit numbers: the cost is linear in n.  0 with *count set;
 * ERANGE if more than cap factors (the first cap are stored, *count is the
 * number needed); EINVAL for n == 0 or a NULL pointer. */
int rlab_wl_factorize(uint64_t n, uint64_t *factors, size_t cap, size_t *count,
                      const rlab_wl_hook *hook);

/* is_prime(n) by trial division with 2 and the odd numbers up to sqrt(n). */
bool rlab_wl_is_prime(uint64_t n);
/* The number of primes p with lo <= p < hi (0 if hi <= lo), each tested
 * with is_prime; the hook ticks per number and per trial division. */
uint64_t rlab_wl_count_primes(uint64_t lo, uint64_t hi,
                              const rlab_wl_hook *hook);

/* RC4 (ARCFOUR): the state after the key schedule, and the keystream. */
typedef struct {
    unsigned char s[256];
    unsigned char i, j;
} rlab_wl_rc4;

/* KSA: 0; EINVAL for a NULL pointer or a key length outside 1 .. 256. */
int rlab_wl_rc4_init(rlab_wl_rc4 *st, const void *key, size_t keylen);
/* PRGA: out[k] = in[k] ^ keystream, continuing the state; in == out is
 * fine.  Encryption and decryption are the same call. */
void rlab_wl_rc4_crypt(rlab_wl_rc4 *st, const void *in, void *out, size_t len,
                       const rlab_wl_hook *hook);

/* SHA-256 of len bytes with OpenSSL's EVP interface: 0 and out filled;
 * ENOMEM (no EVP context), EIO (OpenSSL failed), EINVAL (NULL). */
int rlab_wl_sha256(const void *data, size_t len, unsigned char out[32],
                   const rlab_wl_hook *hook);

/* Fills buf with the splitmix64 stream `stream` of `seed`: each 64-bit
 * output little-endian, the last one cut to fit.  A buffer of the stream
 * is a prefix of any longer one. */
void rlab_wl_fill(void *buf, size_t len, uint64_t seed, uint64_t stream);

/* ---------------------------------------------------------------- jobs --- */

typedef enum {
    RLAB_WL_FACTORIZE = 0,
    RLAB_WL_COUNT_PRIME,
    RLAB_WL_RC4,
    RLAB_WL_SHA256,
    RLAB_WL_NKINDS
} rlab_wl_kind;

/* "factorize", "count_prime", "rc4", "sha256" (NULL for others). */
const char *rlab_wl_kind_name(rlab_wl_kind kind);
/* The kind named name: 0; EINVAL for an unknown name. */
int rlab_wl_kind_parse(const char *name, rlab_wl_kind *out);

/* The defaults, the source material's sizes. */
#define RLAB_WL_SEED 0x7261636c6162ULL /* "racelab" */
#define RLAB_WL_FACTORIZE_REPEAT 4     /* the list of four numbers * 4 */
#define RLAB_WL_PRIME_LIMIT 1000000ULL /* count the primes below this */
#define RLAB_WL_PRIME_RANGES 16
#define RLAB_WL_BUFFERS 10 /* rc4 and sha256 */
/* The smallest and largest of the book's twelve RC4 sizes,
 * 2**18 + int(2**18 / 12 * (i - 6)) for i = 1 and 12 (149.3 and 384 KiB);
 * the ten buffers are spaced evenly between them, largest first. */
#define RLAB_WL_RC4_MIN 152918
#define RLAB_WL_RC4_MAX 393216
#define RLAB_WL_RC4_KEYLEN 16
#define RLAB_WL_SHA256_SIZE (1u << 20) /* 1 MiB */

/* How big a job is; a zero member takes the default. */
typedef struct {
    /* Multiplies the work (0: 1): buffer sizes (rc4, sha256), the prime
     * limit, and the repetitions of factorize's list (at least one).
     * Below 1 for quick runs under the sanitizers. */
    double scale;
    uint64_t seed;  /* buffer contents and keys (0: RLAB_WL_SEED) */
    size_t repeat;  /* factorize: times the four numbers are listed */
    uint64_t limit; /* count_prime: primes below this */
    size_t units;   /* count_prime ranges; rc4 and sha256 buffers */
} rlab_wl_params;

/* One unit's result, filled when the unit ran (done). */
typedef struct {
    bool done;
    int code; /* the unit's status (0: it computed) */
    /* factorize */
    size_t nfactors;
    uint64_t factors[RLAB_WL_MAX_FACTORS];
    /* count_prime */
    uint64_t primes;
    /* rc4: decrypt(encrypt(plain)) == plain, and a fingerprint of the
     * ciphertext (rlab_wl_fingerprint) */
    bool roundtrip;
    uint64_t fingerprint;
    /* sha256 */
    unsigned char digest[32];
} rlab_wl_result;

/* One unit's input, as the job made it (pointers into the job). */
typedef struct {
    uint64_t number;           /* factorize */
    uint64_t lo, hi;           /* count_prime: [lo, hi) */
    const unsigned char *data; /* rc4 plaintext, sha256 message */
    size_t len;
    const unsigned char *key; /* rc4 */
    size_t keylen;
    /* rc4: the ciphertext the last in-process run of the unit wrote */
    const unsigned char *cipher;
} rlab_wl_input;

typedef struct rlab_wl_job rlab_wl_job;
typedef struct rlab_wl_unit rlab_wl_unit;

/* A job of the given kind and size (params may be NULL: the defaults), its
 * inputs made and what its check expects worked out (the known digests for
 * the default rc4 and sha256 jobs; a reference run for other sizes; a
 * sieve for count_prime).  NULL with errno EINVAL (unknown kind, negative
 * or NaN scale) or ENOMEM. */
rlab_wl_job *rlab_wl_job_new(rlab_wl_kind kind, const rlab_wl_params *params);
/* NULL is a no-op. */
void rlab_wl_job_free(rlab_wl_job *job);

rlab_wl_kind rlab_wl_job_kind(const rlab_wl_job *job);
/* The number of units. */
size_t rlab_wl_job_units(const rlab_wl_job *job);
/* The bytes the job processes (rc4: plaintext bytes, once; sha256:
 * message bytes), or the numbers it tests (factorize: the sum of the
 * numbers, count_prime: the limit): a size to print beside a time. */
uint64_t rlab_wl_job_size(const rlab_wl_job *job);

/* The hook every later unit run of this job uses (NULL: none); copied.
 * Not while units run. */
void rlab_wl_job_set_hook(rlab_wl_job *job, const rlab_wl_hook *hook);

/* Runs unit i here and now, storing its result in the job: the unit's
 * code (0: computed); EINVAL for a bad index. */
int rlab_wl_job_run_unit(rlab_wl_job *job, size_t i);
/* Runs every unit in order on the calling thread (the sequential
 * baseline): 0, or the first failing unit's code. */
int rlab_wl_job_run(rlab_wl_job *job);

/* The task argument for unit i (stays valid until the job is freed), and
 * the task: rlab_wl_unit_task(rlab_wl_job_unit(job, i), &r) is
 * rlab_wl_job_run_unit(job, i), with r set to the unit pointer. */
rlab_wl_unit *rlab_wl_job_unit(rlab_wl_job *job, size_t i);
int rlab_wl_unit_task(void *unit, void **result);

/* 0 when every unit ran and its result is right: the factors multiply
 * back to the number and each is prime; the prime counts match a sieve;
 * every rc4 round trip held and the ciphertext fingerprints match; the
 * digests match.  Otherwise the failing unit's code, or EBADMSG for a unit
 * that did not run or got it wrong; *bad (may be NULL) is that unit's
 * index.  EINVAL for NULL. */
int rlab_wl_job_check(const rlab_wl_job *job, size_t *bad);
/* Forgets every result, for another run. */
void rlab_wl_job_reset(rlab_wl_job *job);

/* Unit i's result and input (NULL for a bad index). */
const rlab_wl_result *rlab_wl_job_result(const rlab_wl_job *job, size_t i);
int rlab_wl_job_input(const rlab_wl_job *job, size_t i, rlab_wl_input *out);

/* -------------------------------------------------- across processes --- */

/* The name rlab_wl_register_tasks gives rlab_wl_bytes_task. */
#define RLAB_WL_TASK_NAME "rlab_wl_unit"

/* Registers rlab_wl_bytes_task (see racelab/multiprocessing.h); call it in
 * main() before rlab_mp_main().  0, or rlab_task_register's code. */
int rlab_wl_register_tasks(void);

/* Unit i's input as bytes, all a child needs to compute it: NULL with
 * errno EINVAL (bad index) or ENOMEM.  Free with rlab_bytes_free. */
rlab_bytes *rlab_wl_unit_pack(const rlab_wl_job *job, size_t i);

/* The process task: arg is an rlab_bytes made by rlab_wl_unit_pack; 0 and
 * *result, an rlab_bytes holding the unit's result; the unit's code (no
 * result); EINVAL for malformed bytes, ENOMEM.  Runs without a hook (a
 * process has the GIL to itself). */
int rlab_wl_bytes_task(void *arg, void **result);

/* Stores in unit i the result bytes rlab_wl_bytes_task made for it: 0;
 * EINVAL (and nothing changes) if they are malformed or belong to another
 * kind or unit. */
int rlab_wl_job_store(rlab_wl_job *job, size_t i, const rlab_bytes *result);

/* ------------------------------------------------------------- helpers --- */

/* The ciphertext fingerprint rc4 units report: h = len; for each 8-byte
 * little-endian word w of the data (the last one zero-padded),
 * h = (h ^ w) * 0x100000001b3 mod 2**64, then h ^= h >> 32.  Cheap beside
 * RC4 itself; not cryptographic, it only tells outputs apart. */
uint64_t rlab_wl_fingerprint(const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
