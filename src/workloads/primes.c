/* primes.c - is_prime by trial division, and counting primes in a range. */
#include "wl_internal.h"

/* Trial division by 2 and by the odd numbers up to sqrt(n).  With a
 * ticker, each division is an iteration. */
static bool is_prime_ticked(uint64_t n, wl_ticker *tk)
{
    if (n < 2)
        return false;
    if (n < 4)
        return true;
    if (n % 2 == 0)
        return false;
    uint64_t d = 3;
    for (;;) {
        uint64_t span = wl_span(tk, UINT64_MAX);
        for (uint64_t k = 0; k < span; k++, d += 2) {
            /* d > n / d means d * d > n (without overflow): no divisor is
             * left below the square root. */
            if (n / d < d || n % d == 0) {
                wl_advance(tk, k + 1);
                return n / d < d;
            }
        }
        wl_advance(tk, span);
    }
}

bool rlab_wl_is_prime(uint64_t n)
{
    wl_ticker none;
    wl_ticker_init(&none, NULL);
    return is_prime_ticked(n, &none);
}

uint64_t rlab_wl_count_primes(uint64_t lo, uint64_t hi,
                              const rlab_wl_hook *hook)
{
    wl_ticker tk;
    wl_ticker_init(&tk, hook);
    uint64_t found = 0;
    for (uint64_t n = lo; n < hi; n++) {
        found += is_prime_ticked(n, &tk);
        wl_advance(&tk, 1);
    }
    return found;
}
