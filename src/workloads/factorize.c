/* factorize.c - prime factors by trial division with every candidate.
 *
 * The source material's factorize tests each i in range(1, number + 1);
 * here each candidate d from 2 to n is tried against what is left of n,
 * so the loop costs n - 1 divisions, as there, and what it collects are
 * the prime factors (a d that divides the cofactor is prime, since every
 * smaller prime has been divided out already). */
#include "wl_internal.h"

#include <errno.h>

int rlab_wl_factorize(uint64_t n, uint64_t *factors, size_t cap, size_t *count,
                      const rlab_wl_hook *hook)
{
    if (n == 0 || !count || (cap > 0 && !factors))
        return EINVAL;
    wl_ticker tk;
    wl_ticker_init(&tk, hook);
    uint64_t m = n; /* the cofactor still to split */
    size_t k = 0;
    uint64_t d = 2;
    uint64_t todo = n - 1; /* candidates 2 .. n */
    while (todo > 0) {
        uint64_t span = wl_span(&tk, todo);
        /* d + span is at most n + 1; it wraps to 0 only for n = 2**64 - 1,
         * and d wraps with it. */
        for (uint64_t end = d + span; d != end; d++) {
            while (m % d == 0) {
                if (k < cap)
                    factors[k] = d;
                k++;
                m /= d;
            }
        }
        todo -= span;
        wl_advance(&tk, span);
    }
    *count = k;
    return k > cap ? ERANGE : 0;
}
