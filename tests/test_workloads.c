/* test_workloads.c - the CPU-bound workloads (src/workloads): factorize,
 * count_prime, RC4 and SHA-256 against values that do not come from the
 * code under test (published vectors, a second algorithm, or independent
 * tools run when the test was written), then the same jobs run on a
 * ThreadPoolExecutor, through the bytes a process unit travels in, and with
 * a hook, which must change nothing in the results. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "racelab/gil.h"
#include "rlab_test.h"
#include "workloads.h"

/* ------------------------------------------------------------- helpers --- */

/* Primality the slow obvious way: no divisor in 2 .. n - 1.  Independent of
 * rlab_wl_is_prime (which stops at the square root and skips evens). */
static bool naive_prime(uint64_t n)
{
    if (n < 2)
        return false;
    for (uint64_t d = 2; d < n; d++)
        if (n % d == 0)
            return false;
    return true;
}

/* Checks a factor list on its own terms: ascending, each factor prime,
 * product n. */
static void assert_factorization(uint64_t n, const uint64_t *f, size_t k)
{
    uint64_t prod = 1;
    for (size_t i = 0; i < k; i++) {
        ck_assert_msg(naive_prime(f[i]), "%llu: factor %llu is not prime",
                      (unsigned long long)n, (unsigned long long)f[i]);
        ck_assert_msg(i == 0 || f[i - 1] <= f[i], "%llu: factors not sorted",
                      (unsigned long long)n);
        ck_assert_uint_le(prod, UINT64_MAX / f[i]);
        prod *= f[i];
    }
    ck_assert_msg(prod == n, "factors of %llu multiply to %llu",
                  (unsigned long long)n, (unsigned long long)prod);
}

static void hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
    ck_assert_uint_eq(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

static void assert_digest(const unsigned char *got, const char *hex)
{
    unsigned char want[32];
    hex_to_bytes(hex, want, 32);
    char got_hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(got_hex + 2 * i, 3, "%02x", got[i]);
    ck_assert_msg(memcmp(got, want, 32) == 0, "digest %s, want %s", got_hex,
                  hex);
}

static rlab_wl_job *new_job(rlab_wl_kind kind, const rlab_wl_params *p)
{
    rlab_wl_job *job = rlab_wl_job_new(kind, p);
    ck_assert_msg(job != NULL, "rlab_wl_job_new(%s): %s",
                  rlab_wl_kind_name(kind), rlab_strerror(errno));
    return job;
}

/* A tick counter shared by the threads of a run. */
static void count_tick(void *ctx)
{
    atomic_fetch_add_explicit((atomic_ulong *)ctx, 1, memory_order_relaxed);
}

/* ----------------------------------------------------------- factorize --- */

/* The source material's numbers.  Their factors came from coreutils'
 * `factor` when the test was written; the test does not trust that either
 * and checks each list by multiplying it back and testing every factor for
 * primality by exhaustive division. */
static const struct {
    uint64_t n;
    size_t k;
    uint64_t f[4];
} book[4] = {
    {2139079, 2, {101, 21179}},
    {1214759, 4, {7, 7, 13, 1907}},
    {1516637, 2, {19, 79823}},
    {1852285, 3, {5, 271, 1367}},
};

START_TEST(factorize_book_numbers_gives_their_prime_factors)
{
    for (int b = 0; b < 4; b++) {
        assert_factorization(book[b].n, book[b].f, book[b].k);
        uint64_t f[RLAB_WL_MAX_FACTORS];
        size_t k = 99;
        ck_assert_rc(
            rlab_wl_factorize(book[b].n, f, RLAB_WL_MAX_FACTORS, &k, NULL), 0);
        ck_assert_uint_eq(k, book[b].k);
        for (size_t i = 0; i < k; i++)
            ck_assert_uint_eq(f[i], book[b].f[i]);
    }
}
END_TEST

START_TEST(factorize_small_numbers_multiply_back_to_primes)
{
    for (uint64_t n = 1; n <= 3000; n++) {
        uint64_t f[RLAB_WL_MAX_FACTORS];
        size_t k = 99;
        ck_assert_rc(rlab_wl_factorize(n, f, RLAB_WL_MAX_FACTORS, &k, NULL), 0);
        assert_factorization(n, f, k);
    }
    /* 1 has no prime factors; a prime is its own list. */
    uint64_t f[RLAB_WL_MAX_FACTORS];
    size_t k = 99;
    ck_assert_rc(rlab_wl_factorize(1, f, RLAB_WL_MAX_FACTORS, &k, NULL), 0);
    ck_assert_uint_eq(k, 0);
    ck_assert_rc(rlab_wl_factorize(2999, f, RLAB_WL_MAX_FACTORS, &k, NULL), 0);
    ck_assert_uint_eq(k, 1);
    ck_assert_uint_eq(f[0], 2999);
}
END_TEST

START_TEST(factorize_rejects_zero_and_reports_a_short_array)
{
    uint64_t f[4] = {0};
    size_t k = 99;
    ck_assert_rc(rlab_wl_factorize(0, f, 4, &k, NULL), EINVAL);
    ck_assert_uint_eq(k, 99);
    ck_assert_rc(rlab_wl_factorize(12, f, 4, NULL, NULL), EINVAL);
    ck_assert_rc(rlab_wl_factorize(12, NULL, 4, &k, NULL), EINVAL);
    /* 1024 = 2**10: ten factors do not fit in four. */
    ck_assert_rc(rlab_wl_factorize(1024, f, 4, &k, NULL), ERANGE);
    ck_assert_uint_eq(k, 10);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(f[i], 2);
    /* Counting only. */
    ck_assert_rc(rlab_wl_factorize(1024, NULL, 0, &k, NULL), ERANGE);
    ck_assert_uint_eq(k, 10);
}
END_TEST

START_TEST(factorize_job_is_the_book_list_times_four)
{
    rlab_wl_job *job = new_job(RLAB_WL_FACTORIZE, NULL);
    ck_assert_uint_eq(rlab_wl_job_units(job), 16);
    ck_assert_uint_eq(rlab_wl_job_size(job),
                      4 * (2139079 + 1214759 + 1516637 + 1852285));
    size_t bad = 99;
    ck_assert_rc(rlab_wl_job_check(job, &bad), EBADMSG); /* not run yet */
    ck_assert_uint_eq(bad, 0);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    for (size_t i = 0; i < 16; i++) {
        rlab_wl_input in;
        ck_assert_rc(rlab_wl_job_input(job, i, &in), 0);
        ck_assert_uint_eq(in.number, book[i % 4].n);
        const rlab_wl_result *r = rlab_wl_job_result(job, i);
        ck_assert(r->done);
        ck_assert_uint_eq(r->nfactors, book[i % 4].k);
        for (size_t j = 0; j < r->nfactors; j++)
            ck_assert_uint_eq(r->factors[j], book[i % 4].f[j]);
    }
    rlab_wl_job_free(job);
}
END_TEST

/* --------------------------------------------------------- count_prime --- */

START_TEST(is_prime_agrees_with_exhaustive_division)
{
    for (uint64_t n = 0; n < 5000; n++)
        ck_assert_msg(rlab_wl_is_prime(n) == naive_prime(n), "is_prime(%llu)",
                      (unsigned long long)n);
    /* Large cases, known from number theory: the Mersenne prime 2**31 - 1,
     * the largest 32-bit prime, 10**9 + 7; Euler's 2**32 + 1 = 641 *
     * 6700417, and squares of primes (the square-root bound itself). */
    ck_assert(rlab_wl_is_prime(2147483647ULL));
    ck_assert(rlab_wl_is_prime(4294967291ULL));
    ck_assert(rlab_wl_is_prime(1000000007ULL));
    ck_assert(!rlab_wl_is_prime(4294967297ULL));
    ck_assert(!rlab_wl_is_prime(65521ULL * 65521ULL));
    ck_assert(!rlab_wl_is_prime(1000000007ULL * 3));
}
END_TEST

START_TEST(count_primes_matches_pi_of_powers_of_ten)
{
    /* pi(10**k), the prime-counting function's well-known values. */
    ck_assert_uint_eq(rlab_wl_count_primes(0, 10, NULL), 4);
    ck_assert_uint_eq(rlab_wl_count_primes(0, 100, NULL), 25);
    ck_assert_uint_eq(rlab_wl_count_primes(0, 1000, NULL), 168);
    ck_assert_uint_eq(rlab_wl_count_primes(0, 100000, NULL), 9592);
    /* Ranges add up, and an empty range counts none. */
    ck_assert_uint_eq(rlab_wl_count_primes(0, 37, NULL) +
                          rlab_wl_count_primes(37, 100000, NULL),
                      9592);
    ck_assert_uint_eq(rlab_wl_count_primes(500, 500, NULL), 0);
    ck_assert_uint_eq(rlab_wl_count_primes(500, 10, NULL), 0);
}
END_TEST

START_TEST(count_prime_job_below_a_million_finds_78498)
{
    rlab_wl_params p = {.limit = 1000000};
    rlab_wl_job *job = new_job(RLAB_WL_COUNT_PRIME, &p);
    ck_assert_uint_eq(rlab_wl_job_units(job), RLAB_WL_PRIME_RANGES);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    uint64_t total = 0, next = 0;
    for (size_t i = 0; i < rlab_wl_job_units(job); i++) {
        rlab_wl_input in;
        ck_assert_rc(rlab_wl_job_input(job, i, &in), 0);
        ck_assert_uint_eq(in.lo, next); /* the ranges tile [0, limit) */
        next = in.hi;
        total += rlab_wl_job_result(job, i)->primes;
    }
    ck_assert_uint_eq(next, 1000000);
    ck_assert_uint_eq(total, 78498);
    rlab_wl_job_free(job);
}
END_TEST

START_TEST(count_prime_check_catches_a_wrong_count)
{
    rlab_wl_params p = {.limit = 20000, .units = 4};
    rlab_wl_job *job = new_job(RLAB_WL_COUNT_PRIME, &p);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    /* A count that is off by one in unit 2 (through the process path's
     * store, the only way in from outside). */
    rlab_bytes *in = rlab_wl_unit_pack(job, 2);
    ck_assert_ptr_nonnull(in);
    void *out = NULL;
    ck_assert_rc(rlab_wl_bytes_task(in, &out), 0);
    rlab_bytes *res = out;
    rlab_wl_result r;
    ck_assert_uint_gt(res->len, sizeof r);
    rlab_wl_job_reset(job);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    /* The result struct sits at the end of the message. */
    memcpy(&r, res->data + res->len - sizeof r, sizeof r);
    r.primes++;
    memcpy(res->data + res->len - sizeof r, &r, sizeof r);
    ck_assert_rc(rlab_wl_job_store(job, 2, res), 0);
    size_t bad = 99;
    ck_assert_rc(rlab_wl_job_check(job, &bad), EBADMSG);
    ck_assert_uint_eq(bad, 2);
    rlab_bytes_free(in);
    rlab_bytes_free(res);
    rlab_wl_job_free(job);
}
END_TEST

/* ----------------------------------------------------------------- RC4 --- */

static void keystream(const char *key_hex, size_t keylen, size_t offset,
                      const char *want_hex)
{
    unsigned char key[32], want[16], got[16];
    hex_to_bytes(key_hex, key, keylen);
    hex_to_bytes(want_hex, want, 16);
    rlab_wl_rc4 st;
    ck_assert_rc(rlab_wl_rc4_init(&st, key, keylen), 0);
    unsigned char zeros[4096] = {0};
    unsigned char skip[4096];
    ck_assert_uint_le(offset, sizeof skip);
    rlab_wl_rc4_crypt(&st, zeros, skip, offset, NULL);
    rlab_wl_rc4_crypt(&st, zeros, got, 16, NULL);
    ck_assert_msg(memcmp(got, want, 16) == 0, "key %s offset %zu", key_hex,
                  offset);
}

START_TEST(rc4_matches_rfc6229_keystreams)
{
    /* RFC 6229, section 2: the keystream of key 0x0102030405 (40 bits) ... */
    const char *k40 = "0102030405";
    keystream(k40, 5, 0, "b2396305f03dc027ccc3524a0a1118a8");
    keystream(k40, 5, 16, "6982944f18fc82d589c403a47a0d0919");
    keystream(k40, 5, 240, "28cb1132c96ce286421dcaadb8b69eae");
    keystream(k40, 5, 256, "1cfcf62b03eddb641d77dfcf7f8d8c93");
    /* ... and of the 128-bit key 0x0102...10, out to offset 4096 (which
     * `openssl enc -rc4` also gives). */
    const char *k128 = "0102030405060708090a0b0c0d0e0f10";
    keystream(k128, 16, 0, "9ac7cc9a609d1ef7b2932899cde41b97");
    keystream(k128, 16, 16, "5248c4959014126a6e8a84f11d1a9e1c");
    keystream(k128, 16, 240, "065902e4b620f6cc36c8589f66432f2b");
    keystream(k128, 16, 256, "d39d566bc6bce3010768151549f3873f");
    keystream(k128, 16, 4080, "ff38265c1642c1abe8d3c2fe5e572bf8");
    keystream(k128, 16, 4096, "a36a4c301ae8ac13610ccbc12256cacc");
}
END_TEST

START_TEST(rc4_matches_the_classic_ascii_vectors)
{
    static const struct {
        const char *key, *plain, *cipher_hex;
    } v[] = {
        {"Key", "Plaintext", "bbf316e8d940af0ad3"},
        {"Wiki", "pedia", "1021bf0420"},
        {"Secret", "Attack at dawn", "45a01f645fc35b383552544b9bf5"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].plain);
        unsigned char want[32], got[32];
        hex_to_bytes(v[i].cipher_hex, want, n);
        rlab_wl_rc4 st;
        ck_assert_rc(rlab_wl_rc4_init(&st, v[i].key, strlen(v[i].key)), 0);
        rlab_wl_rc4_crypt(&st, v[i].plain, got, n, NULL);
        ck_assert_msg(memcmp(got, want, n) == 0, "RC4(%s, %s)", v[i].key,
                      v[i].plain);
    }
}
END_TEST

START_TEST(rc4_round_trips_in_pieces_in_place_and_with_ticks)
{
    enum { N = 10000 };
    static unsigned char plain[N], whole[N], piece[N], back[N];
    rlab_wl_fill(plain, N, 42, 7);
    const unsigned char key[] = "racelab";
    rlab_wl_rc4 st;
    ck_assert_rc(rlab_wl_rc4_init(&st, key, 7), 0);
    rlab_wl_rc4_crypt(&st, plain, whole, N, NULL);
    ck_assert(memcmp(whole, plain, N) != 0);
    /* Split calls continue the keystream; in == out is fine; the hook
     * ticks every 100 bytes and changes nothing. */
    atomic_ulong ticks = 0;
    rlab_wl_hook h = {.tick = count_tick, .ctx = &ticks, .every = 100};
    memcpy(piece, plain, N);
    ck_assert_rc(rlab_wl_rc4_init(&st, key, 7), 0);
    rlab_wl_rc4_crypt(&st, piece, piece, 1234, &h);
    rlab_wl_rc4_crypt(&st, piece + 1234, piece + 1234, N - 1234, &h);
    ck_assert(memcmp(piece, whole, N) == 0);
    unsigned long n_ticks = atomic_load(&ticks);
    ck_assert_uint_eq(n_ticks, 12 + (N - 1234) / 100);
    ck_assert_rc(rlab_wl_rc4_init(&st, key, 7), 0);
    rlab_wl_rc4_crypt(&st, whole, back, N, NULL);
    ck_assert(memcmp(back, plain, N) == 0);
}
END_TEST

START_TEST(rc4_init_rejects_bad_keys)
{
    rlab_wl_rc4 st;
    unsigned char key[257] = {1};
    ck_assert_rc(rlab_wl_rc4_init(&st, key, 0), EINVAL);
    ck_assert_rc(rlab_wl_rc4_init(&st, key, 257), EINVAL);
    ck_assert_rc(rlab_wl_rc4_init(&st, NULL, 5), EINVAL);
    ck_assert_rc(rlab_wl_rc4_init(NULL, key, 5), EINVAL);
    ck_assert_rc(rlab_wl_rc4_init(&st, key, 256), 0);
}
END_TEST

/* SHA-256 of each default rc4 job's ciphertext, made independently when
 * the test was written: the job's plaintexts and keys written to files,
 * each encrypted with `openssl enc -rc4 -K <key hex> -nosalt -provider
 * legacy -provider default` (the keys are 16 bytes, RC4's EVP key length)
 * and hashed with `sha256sum`.  A Python splitmix64 reproduced the
 * plaintexts and keys byte for byte. */
static const char *const rc4_cipher_sha256[RLAB_WL_BUFFERS] = {
    "c85920142089aa026172c1f3226c3fba071cb4a5ad5de4480e24c3e86ed2737c",
    "c5333aa139cfe2052cf369276177f660f7faa4e4c3d2b893a44456b8b9844e02",
    "f8a5d4395157e8e48256238c187c24b42acbe9604acd613e2cbd0723afd50e3d",
    "8c331013b4a9e5924b4fe9ce150ff121b431278cee9c66c916df80b5bc50c4cd",
    "e38a889047891a3ea481f9e6f3485bc238f6c126dcc552b5706695fa8541513b",
    "494c2c4be0359bd273ce3011be2f855d01b3e3fedd535b0cdc40b3d3e33cd443",
    "7a4a5fd56e01ef7179decb0bfce466142f401643f282f90321afaae79c926749",
    "d2c4185db14ce3fbb876d3517b1695f5fb4766518d3f868ce0496df4b4df3cd1",
    "aef4cab22db635d8d5a812e83aeeeade53165ec8d6c7e404fdfeddbf268dbb1f",
    "5a4f8937a32e6bebdc7278da783db707138e97a0b03754845e11145658c9305a",
};

START_TEST(rc4_job_encrypts_ten_buffers_as_openssl_does_and_round_trips)
{
    rlab_wl_job *job = new_job(RLAB_WL_RC4, NULL);
    ck_assert_uint_eq(rlab_wl_job_units(job), 10);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    size_t prev = SIZE_MAX;
    for (size_t i = 0; i < 10; i++) {
        rlab_wl_input in;
        ck_assert_rc(rlab_wl_job_input(job, i, &in), 0);
        /* 149.3 to 384 KiB, largest first. */
        ck_assert_uint_ge(in.len, RLAB_WL_RC4_MIN);
        ck_assert_uint_le(in.len, RLAB_WL_RC4_MAX);
        ck_assert_uint_lt(in.len, prev);
        prev = in.len;
        ck_assert_uint_eq(in.keylen, RLAB_WL_RC4_KEYLEN);
        const rlab_wl_result *r = rlab_wl_job_result(job, i);
        ck_assert(r->roundtrip);
        ck_assert_uint_eq(r->fingerprint,
                          rlab_wl_fingerprint(in.cipher, in.len));
        unsigned char d[32];
        ck_assert_rc(rlab_wl_sha256(in.cipher, in.len, d, NULL), 0);
        assert_digest(d, rc4_cipher_sha256[i]);
    }
    rlab_wl_job_free(job);
}
END_TEST

/* -------------------------------------------------------------- SHA-256 --- */

START_TEST(sha256_matches_fips_180_vectors)
{
    unsigned char d[32];
    /* FIPS 180-2 appendix B: "abc", the two-block message, and a million
     * 'a's; the empty message's digest is the well-known e3b0c442... */
    ck_assert_rc(rlab_wl_sha256("abc", 3, d, NULL), 0);
    assert_digest(
        d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_rc(rlab_wl_sha256("", 0, d, NULL), 0);
    assert_digest(
        d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_rc(rlab_wl_sha256(NULL, 0, d, NULL), 0);
    assert_digest(
        d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ck_assert_rc(rlab_wl_sha256(two, strlen(two), d, NULL), 0);
    assert_digest(
        d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    ck_assert_ptr_nonnull(million);
    memset(million, 'a', 1000000);
    ck_assert_rc(rlab_wl_sha256(million, 1000000, d, NULL), 0);
    assert_digest(
        d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* Fed one block per tick (and an odd tail): same digest, one tick per
     * 64-byte block. */
    atomic_ulong ticks = 0;
    rlab_wl_hook h = {.tick = count_tick, .ctx = &ticks, .every = 1};
    ck_assert_rc(rlab_wl_sha256(million, 1000000, d, &h), 0);
    assert_digest(
        d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    unsigned long n_ticks = atomic_load(&ticks);
    ck_assert_uint_eq(n_ticks, (1000000 + 63) / 64);
    free(million);
    ck_assert_rc(rlab_wl_sha256(NULL, 1, d, NULL), EINVAL);
    ck_assert_rc(rlab_wl_sha256("abc", 3, NULL, NULL), EINVAL);
}
END_TEST

typedef struct {
    int released, reacquired, ticks;
    bool inside; /* between release and reacquire */
} gil_log;

static void log_release(void *ctx)
{
    gil_log *g = ctx;
    g->released++;
    g->inside = true;
}

static void log_reacquire(void *ctx)
{
    gil_log *g = ctx;
    g->reacquired++;
    g->inside = false;
}

static void log_tick(void *ctx)
{
    ((gil_log *)ctx)->ticks++;
}

START_TEST(sha256_releases_around_the_whole_call_like_hashlib)
{
    gil_log g = {0};
    rlab_wl_hook h = {.tick = log_tick,
                      .release = log_release,
                      .reacquire = log_reacquire,
                      .ctx = &g,
                      .every = 1};
    static unsigned char buf[100000];
    rlab_wl_fill(buf, sizeof buf, 1, 2);
    unsigned char d1[32], d2[32];
    ck_assert_rc(rlab_wl_sha256(buf, sizeof buf, d1, &h), 0);
    ck_assert_int_eq(g.released, 1);
    ck_assert_int_eq(g.reacquired, 1);
    ck_assert_int_eq(g.ticks, 0);
    ck_assert(!g.inside);
    ck_assert_rc(rlab_wl_sha256(buf, sizeof buf, d2, NULL), 0);
    ck_assert(memcmp(d1, d2, 32) == 0);
}
END_TEST

/* The default sha256 job's buffers, written to files when the test was
 * written and hashed with coreutils' `sha256sum` (and the buffers
 * reproduced byte for byte by a Python splitmix64). */
static const char *const sha256_buffers[RLAB_WL_BUFFERS] = {
    "9c0e03f71f7445087be4a44f0860e7a9a7febe61bce650a15ec05c3aa5a99229",
    "dc8402437a58f86dcc9e27e6da54d0d466dcbeb3d134c4b277a5092b411d6552",
    "3e8b0391d10aebdf883604d15e174857576eb8898d3e6aca2505456d7e5bb1cb",
    "8fe85644427247ae1948d4dc8bcef3989b2e82ab814bfc45e115506e37950222",
    "845faab1631623206a28089278d119e9a999bab2422124b388ef9774574c00bc",
    "cc1712e493609cc01a1cb84732a43b04732b940f727f54fdbef834dbfc792a1e",
    "66677fe75ab308c0df96d79310a77707bd48b8f657670b719961e53931ccf553",
    "09070480922e9f9c903d8a3e65d9cfae5433ce795a74844f8c085473ec90347e",
    "fc5986d0ffebe7d12864ab2e18833170849bf996673ef64386271c609cc4f11b",
    "7c94a94311490110a06ae303bab863bb0117e96c7f5999ebd62dc3ebc47125ec",
};

START_TEST(sha256_job_digests_ten_mib_buffers_as_sha256sum_does)
{
    rlab_wl_job *job = new_job(RLAB_WL_SHA256, NULL);
    ck_assert_uint_eq(rlab_wl_job_units(job), 10);
    ck_assert_uint_eq(rlab_wl_job_size(job), 10u << 20);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    for (size_t i = 0; i < 10; i++)
        assert_digest(rlab_wl_job_result(job, i)->digest, sha256_buffers[i]);
    rlab_wl_job_free(job);
}
END_TEST

START_TEST(fill_is_deterministic_and_prefix_stable)
{
    unsigned char a[37], b[64], c[64];
    rlab_wl_fill(a, sizeof a, 5, 9);
    rlab_wl_fill(b, sizeof b, 5, 9);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    rlab_wl_fill(c, sizeof c, 5, 10);
    ck_assert(memcmp(b, c, sizeof b) != 0); /* another stream */
    rlab_wl_fill(c, sizeof c, 6, 9);
    ck_assert(memcmp(b, c, sizeof b) != 0); /* another seed */
}
END_TEST

/* ------------------------------------------------- other ways to run --- */

/* Small enough for the sanitizers, big enough to spread over workers. */
static rlab_wl_params sized(rlab_wl_kind kind)
{
    rlab_wl_params p = {0};
    if (kind == RLAB_WL_COUNT_PRIME)
        p.limit = 1000000;
    return p;
}

/* What a run left: the results, plus the rc4 ciphertexts' fingerprints. */
static rlab_wl_result *snapshot(const rlab_wl_job *job)
{
    size_t n = rlab_wl_job_units(job);
    rlab_wl_result *s = calloc(n, sizeof *s);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        s[i] = *rlab_wl_job_result(job, i);
    return s;
}

static void assert_same_results(const rlab_wl_job *job,
                                const rlab_wl_result *want)
{
    for (size_t i = 0; i < rlab_wl_job_units(job); i++) {
        const rlab_wl_result *r = rlab_wl_job_result(job, i);
        ck_assert_msg(r->done && r->code == 0, "unit %zu", i);
        ck_assert_uint_eq(r->nfactors, want[i].nfactors);
        ck_assert(memcmp(r->factors, want[i].factors, sizeof r->factors) == 0);
        ck_assert_uint_eq(r->primes, want[i].primes);
        ck_assert_int_eq(r->roundtrip, want[i].roundtrip);
        ck_assert_uint_eq(r->fingerprint, want[i].fingerprint);
        ck_assert(memcmp(r->digest, want[i].digest, 32) == 0);
    }
}

START_TEST(thread_pool_runs_give_the_sequential_results)
{
    rlab_wl_kind kind = (rlab_wl_kind)_i;
    rlab_wl_params p = sized(kind);
    rlab_wl_job *job = new_job(kind, &p);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    rlab_wl_result *seq = snapshot(job);
    rlab_wl_job_reset(job);
    ck_assert_rc(rlab_wl_job_check(job, NULL), EBADMSG);

    size_t n = rlab_wl_job_units(job);
    void **args = calloc(n, sizeof *args);
    void **results = calloc(n, sizeof *results);
    int *codes = calloc(n, sizeof *codes);
    ck_assert(args && results && codes);
    for (size_t i = 0; i < n; i++)
        args[i] = rlab_wl_job_unit(job, i);
    rlab_executor *ex = rlab_thread_pool_new(4, "wl", NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    ck_assert_rc(rlab_executor_map(ex, rlab_wl_unit_task, args, n, results,
                                   codes, RLAB_GUARD * 4),
                 0);
    rlab_executor_free(ex);
    for (size_t i = 0; i < n; i++) {
        ck_assert_rc(codes[i], 0);
        ck_assert_ptr_eq(results[i], args[i]);
    }
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    assert_same_results(job, seq);
    free(args);
    free(results);
    free(codes);
    free(seq);
    rlab_wl_job_free(job);
}
END_TEST

START_TEST(hooked_thread_pool_runs_tick_and_change_nothing)
{
    rlab_wl_kind kind = (rlab_wl_kind)_i;
    rlab_wl_params p = sized(kind);
    rlab_wl_job *job = new_job(kind, &p);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    rlab_wl_result *seq = snapshot(job);
    rlab_wl_job_reset(job);

    atomic_ulong ticks = 0;
    rlab_wl_hook h = {.tick = count_tick, .ctx = &ticks, .every = 64};
    rlab_wl_job_set_hook(job, &h);
    size_t n = rlab_wl_job_units(job);
    rlab_executor *ex = rlab_thread_pool_new(3, "wlhook", NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    rlab_future **fs = calloc(n, sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    for (size_t i = 0; i < n; i++)
        ck_assert_rc(rlab_executor_submit(ex, rlab_wl_unit_task,
                                          rlab_wl_job_unit(job, i), &fs[i]),
                     0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_rc(rlab_future_result(fs[i], RLAB_GUARD * 4, NULL), 0);
        rlab_future_free(fs[i]);
    }
    rlab_executor_free(ex);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    assert_same_results(job, seq);
    /* At least one tick per 64 iterations of the main loop: the candidates
     * (factorize), the numbers (count_prime), the bytes, twice (rc4), the
     * blocks (sha256). */
    uint64_t size = rlab_wl_job_size(job);
    uint64_t iterations = kind == RLAB_WL_FACTORIZE     ? size - n
                          : kind == RLAB_WL_COUNT_PRIME ? size
                          : kind == RLAB_WL_RC4         ? 2 * size
                                                        : size / 64;
    /* (each call starts its own count: up to 63 per call go untolled) */
    unsigned long n_ticks = atomic_load(&ticks);
    ck_assert_uint_ge(n_ticks, iterations / 64 - 2 * n);
    /* Unhooked again: no more ticks. */
    unsigned long before = atomic_load(&ticks);
    rlab_wl_job_set_hook(job, NULL);
    ck_assert_rc(rlab_wl_job_run_unit(job, 0), 0);
    unsigned long after = atomic_load(&ticks);
    ck_assert_uint_eq(after, before);
    free(fs);
    free(seq);
    rlab_wl_job_free(job);
}
END_TEST

START_TEST(bytes_path_gives_the_sequential_results)
{
    rlab_wl_kind kind = (rlab_wl_kind)_i;
    rlab_wl_params p = sized(kind);
    rlab_wl_job *job = new_job(kind, &p);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    rlab_wl_result *seq = snapshot(job);
    rlab_wl_job_reset(job);
    /* What a process worker does, done here: unpack, compute, pack. */
    for (size_t i = 0; i < rlab_wl_job_units(job); i++) {
        rlab_bytes *in = rlab_wl_unit_pack(job, i);
        ck_assert_ptr_nonnull(in);
        void *out = NULL;
        ck_assert_rc(rlab_wl_bytes_task(in, &out), 0);
        ck_assert_ptr_nonnull(out);
        ck_assert_rc(rlab_wl_job_store(job, i, out), 0);
        rlab_bytes_free(in);
        rlab_bytes_free(out);
    }
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    assert_same_results(job, seq);
    free(seq);
    rlab_wl_job_free(job);
}
END_TEST

START_TEST(bytes_path_rejects_malformed_and_misdirected_messages)
{
    rlab_wl_params p = {.scale = 0.01};
    rlab_wl_job *job = new_job(RLAB_WL_RC4, &p);
    rlab_wl_job *other = new_job(RLAB_WL_SHA256, &p);
    rlab_bytes *in = rlab_wl_unit_pack(job, 3);
    ck_assert_ptr_nonnull(in);
    void *out = NULL;

    /* Cut short, or with a key length that overruns the message. */
    size_t len = in->len;
    in->len = 10;
    ck_assert_rc(rlab_wl_bytes_task(in, &out), EINVAL);
    in->len = len - 1;
    ck_assert_rc(rlab_wl_bytes_task(in, &out), EINVAL);
    in->len = len;
    in->data[0] ^= 0xff; /* the magic */
    ck_assert_rc(rlab_wl_bytes_task(in, &out), EINVAL);
    in->data[0] ^= 0xff;
    ck_assert_ptr_null(out);
    ck_assert_rc(rlab_wl_bytes_task(NULL, &out), EINVAL);

    ck_assert_rc(rlab_wl_bytes_task(in, &out), 0);
    rlab_bytes *res = out;
    /* Stored anywhere but its own unit of its own kind: refused, and the
     * job does not change. */
    ck_assert_rc(rlab_wl_job_store(job, 2, res), EINVAL);
    ck_assert_rc(rlab_wl_job_store(other, 3, res), EINVAL);
    ck_assert_rc(rlab_wl_job_store(job, 99, res), EINVAL);
    ck_assert(!rlab_wl_job_result(job, 2)->done);
    ck_assert(!rlab_wl_job_result(other, 3)->done);
    res->len--;
    ck_assert_rc(rlab_wl_job_store(job, 3, res), EINVAL);
    res->len++;
    ck_assert(!rlab_wl_job_result(job, 3)->done);
    ck_assert_rc(rlab_wl_job_store(job, 3, res), 0);
    ck_assert(rlab_wl_job_result(job, 3)->done);
    ck_assert(rlab_wl_job_result(job, 3)->roundtrip);

    ck_assert_ptr_null(rlab_wl_unit_pack(job, 99));
    ck_assert_int_eq(errno, EINVAL);
    rlab_bytes_free(in);
    rlab_bytes_free(res);
    rlab_wl_job_free(job);
    rlab_wl_job_free(other);
}
END_TEST

/* Under the simulated GIL: each task holds the GIL while it computes and
 * the hook's tick is the GIL's check, as the bench runs "threads under the
 * GIL".  The results must not change, and no two units may compute at
 * once. */
typedef struct {
    rlab_gil *gil;
    atomic_int inside; /* tasks holding the GIL now */
    atomic_int most;   /* the most that ever held it at once */
    atomic_ulong checks;
} gil_run;

static void gil_tick(void *ctx)
{
    gil_run *g = ctx;
    atomic_fetch_add(&g->checks, 1);
    atomic_fetch_sub(&g->inside, 1); /* a check may hand the GIL over */
    rlab_gil_check(g->gil);
    int now = atomic_fetch_add(&g->inside, 1) + 1;
    int most = atomic_load(&g->most);
    while (now > most && !atomic_compare_exchange_weak(&g->most, &most, now))
        ;
}

static gil_run *the_gil_run;

static int gil_task(void *unit, void **result)
{
    gil_run *g = the_gil_run;
    int rc = rlab_gil_acquire(g->gil, RLAB_GUARD);
    if (rc != 0)
        return rc;
    int now = atomic_fetch_add(&g->inside, 1) + 1;
    int most = atomic_load(&g->most);
    while (now > most && !atomic_compare_exchange_weak(&g->most, &most, now))
        ;
    rc = rlab_wl_unit_task(unit, result);
    atomic_fetch_sub(&g->inside, 1);
    int rel = rlab_gil_release(g->gil);
    return rc ? rc : rel;
}

START_TEST(gil_threads_compute_one_at_a_time_and_give_the_sequential_results)
{
    rlab_wl_kind kind = (rlab_wl_kind)_i;
    rlab_wl_params p = sized(kind);
    p.scale = 0.25;
    rlab_wl_job *job = new_job(kind, &p);
    ck_assert_rc(rlab_wl_job_run(job), 0);
    rlab_wl_result *seq = snapshot(job);
    rlab_wl_job_reset(job);

    gil_run g = {.gil = rlab_gil_new(0.0005)};
    ck_assert_ptr_nonnull(g.gil);
    the_gil_run = &g;
    rlab_wl_hook h = {.tick = gil_tick, .ctx = &g};
    rlab_wl_job_set_hook(job, &h);
    size_t n = rlab_wl_job_units(job);
    void **args = calloc(n, sizeof *args);
    int *codes = calloc(n, sizeof *codes);
    ck_assert(args && codes);
    for (size_t i = 0; i < n; i++)
        args[i] = rlab_wl_job_unit(job, i);
    rlab_executor *ex = rlab_thread_pool_new(2, "wlgil", NULL, NULL);
    ck_assert_ptr_nonnull(ex);
    ck_assert_rc(
        rlab_executor_map(ex, gil_task, args, n, NULL, codes, RLAB_GUARD * 4),
        0);
    rlab_executor_free(ex);
    for (size_t i = 0; i < n; i++)
        ck_assert_rc(codes[i], 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    assert_same_results(job, seq);
    int most = atomic_load(&g.most);
    ck_assert_int_eq(most, 1);
    unsigned long checks = atomic_load(&g.checks);
    ck_assert_uint_gt(checks, 0);
    rlab_gil_free(g.gil);
    free(args);
    free(codes);
    free(seq);
    rlab_wl_job_free(job);
}
END_TEST

/* --------------------------------------------------------------- jobs --- */

START_TEST(jobs_reject_bad_parameters)
{
    errno = 0;
    ck_assert_ptr_null(rlab_wl_job_new(RLAB_WL_NKINDS, NULL));
    ck_assert_int_eq(errno, EINVAL);
    rlab_wl_params neg = {.scale = -1};
    errno = 0;
    ck_assert_ptr_null(rlab_wl_job_new(RLAB_WL_RC4, &neg));
    ck_assert_int_eq(errno, EINVAL);
    rlab_wl_params nan = {.scale = NAN};
    errno = 0;
    ck_assert_ptr_null(rlab_wl_job_new(RLAB_WL_SHA256, &nan));
    ck_assert_int_eq(errno, EINVAL);
    rlab_wl_params many = {.units = 100000};
    errno = 0;
    ck_assert_ptr_null(rlab_wl_job_new(RLAB_WL_COUNT_PRIME, &many));
    ck_assert_int_eq(errno, EINVAL);

    rlab_wl_params p = {.limit = 1000, .units = 3};
    rlab_wl_job *job = new_job(RLAB_WL_COUNT_PRIME, &p);
    rlab_wl_input in;
    ck_assert_rc(rlab_wl_job_run_unit(job, 3), EINVAL);
    ck_assert_rc(rlab_wl_job_input(job, 3, &in), EINVAL);
    ck_assert_ptr_null(rlab_wl_job_result(job, 3));
    ck_assert_ptr_null(rlab_wl_job_unit(job, 3));
    ck_assert_rc(rlab_wl_unit_task(NULL, NULL), EINVAL);
    ck_assert_rc(rlab_wl_job_check(NULL, NULL), EINVAL);
    /* Run in part: the first missing unit is named. */
    ck_assert_rc(rlab_wl_job_run_unit(job, 0), 0);
    ck_assert_rc(rlab_wl_job_run_unit(job, 2), 0);
    size_t bad = 99;
    ck_assert_rc(rlab_wl_job_check(job, &bad), EBADMSG);
    ck_assert_uint_eq(bad, 1);
    ck_assert_rc(rlab_wl_job_run_unit(job, 1), 0);
    ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
    rlab_wl_job_free(job);
    rlab_wl_job_free(NULL);
}
END_TEST

START_TEST(scaled_jobs_shrink_and_still_check)
{
    rlab_wl_params p = {.scale = 0.25};
    for (int k = 0; k < RLAB_WL_NKINDS; k++) {
        rlab_wl_job *full = new_job((rlab_wl_kind)k, NULL);
        rlab_wl_job *job = new_job((rlab_wl_kind)k, &p);
        ck_assert_uint_lt(rlab_wl_job_size(job), rlab_wl_job_size(full));
        ck_assert_rc(rlab_wl_job_run(job), 0);
        ck_assert_rc(rlab_wl_job_check(job, NULL), 0);
        rlab_wl_job_free(full);
        rlab_wl_job_free(job);
    }
    /* factorize lists the four numbers once at a quarter. */
    rlab_wl_job *f = new_job(RLAB_WL_FACTORIZE, &p);
    ck_assert_uint_eq(rlab_wl_job_units(f), 4);
    rlab_wl_job_free(f);
}
END_TEST

START_TEST(kind_names_round_trip)
{
    for (int k = 0; k < RLAB_WL_NKINDS; k++) {
        rlab_wl_kind got = RLAB_WL_NKINDS;
        ck_assert_rc(
            rlab_wl_kind_parse(rlab_wl_kind_name((rlab_wl_kind)k), &got), 0);
        ck_assert_int_eq(got, k);
    }
    rlab_wl_kind got = RLAB_WL_RC4;
    ck_assert_rc(rlab_wl_kind_parse("sha1", &got), EINVAL);
    ck_assert_int_eq(got, RLAB_WL_RC4);
    ck_assert_ptr_null(rlab_wl_kind_name(RLAB_WL_NKINDS));
    ck_assert_str_eq(rlab_wl_kind_name(RLAB_WL_COUNT_PRIME), "count_prime");
}
END_TEST

static Suite *workloads_suite(void)
{
    Suite *s = suite_create("workloads");
    TCase *tc = tcase_create("factorize");
    tcase_add_test(tc, factorize_book_numbers_gives_their_prime_factors);
    tcase_add_test(tc, factorize_small_numbers_multiply_back_to_primes);
    tcase_add_test(tc, factorize_rejects_zero_and_reports_a_short_array);
    tcase_add_test(tc, factorize_job_is_the_book_list_times_four);
    suite_add_tcase(s, tc);

    tc = tcase_create("count_prime");
    tcase_add_test(tc, is_prime_agrees_with_exhaustive_division);
    tcase_add_test(tc, count_primes_matches_pi_of_powers_of_ten);
    tcase_add_test(tc, count_prime_job_below_a_million_finds_78498);
    tcase_add_test(tc, count_prime_check_catches_a_wrong_count);
    suite_add_tcase(s, tc);

    tc = tcase_create("rc4");
    tcase_add_test(tc, rc4_matches_rfc6229_keystreams);
    tcase_add_test(tc, rc4_matches_the_classic_ascii_vectors);
    tcase_add_test(tc, rc4_round_trips_in_pieces_in_place_and_with_ticks);
    tcase_add_test(tc, rc4_init_rejects_bad_keys);
    tcase_add_test(
        tc, rc4_job_encrypts_ten_buffers_as_openssl_does_and_round_trips);
    suite_add_tcase(s, tc);

    tc = tcase_create("sha256");
    tcase_add_test(tc, sha256_matches_fips_180_vectors);
    tcase_add_test(tc, sha256_releases_around_the_whole_call_like_hashlib);
    tcase_add_test(tc, sha256_job_digests_ten_mib_buffers_as_sha256sum_does);
    tcase_add_test(tc, fill_is_deterministic_and_prefix_stable);
    suite_add_tcase(s, tc);

    tc = tcase_create("modes");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, thread_pool_runs_give_the_sequential_results, 0,
                        RLAB_WL_NKINDS);
    tcase_add_loop_test(tc, hooked_thread_pool_runs_tick_and_change_nothing, 0,
                        RLAB_WL_NKINDS);
    tcase_add_loop_test(tc, bytes_path_gives_the_sequential_results, 0,
                        RLAB_WL_NKINDS);
    tcase_add_loop_test(
        tc, gil_threads_compute_one_at_a_time_and_give_the_sequential_results,
        0, RLAB_WL_NKINDS);
    tcase_add_test(tc, bytes_path_rejects_malformed_and_misdirected_messages);
    suite_add_tcase(s, tc);

    tc = tcase_create("jobs");
    tcase_add_test(tc, jobs_reject_bad_parameters);
    tcase_add_test(tc, scaled_jobs_shrink_and_still_check);
    tcase_add_test(tc, kind_names_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return rlab_test_main(workloads_suite());
}
