/* rc4.c - RC4 (ARCFOUR), from the algorithm's description: the key
 * scheduling algorithm (KSA) permutes S = 0 .. 255 under the key, the
 * pseudo-random generation algorithm (PRGA) walks i and j through S,
 * swapping, and yields S[S[i] + S[j]] as the next keystream byte. */
#include "wl_internal.h"

#include <errno.h>

int rlab_wl_rc4_init(rlab_wl_rc4 *st, const void *key, size_t keylen)
{
    if (!st || !key || keylen < 1 || keylen > 256)
        return EINVAL;
    const unsigned char *k = key;
    for (int i = 0; i < 256; i++)
        st->s[i] = (unsigned char)i;
    unsigned char j = 0;
    for (int i = 0; i < 256; i++) {
        j = (unsigned char)(j + st->s[i] + k[(size_t)i % keylen]);
        unsigned char t = st->s[i];
        st->s[i] = st->s[j];
        st->s[j] = t;
    }
    st->i = 0;
    st->j = 0;
    return 0;
}

void rlab_wl_rc4_crypt(rlab_wl_rc4 *st, const void *in, void *out, size_t len,
                       const rlab_wl_hook *hook)
{
    const unsigned char *src = in;
    unsigned char *dst = out;
    unsigned char *s = st->s;
    unsigned char i = st->i, j = st->j;
    wl_ticker tk;
    wl_ticker_init(&tk, hook);
    size_t pos = 0;
    while (pos < len) {
        size_t span = (size_t)wl_span(&tk, len - pos);
        for (size_t end = pos + span; pos < end; pos++) {
            i = (unsigned char)(i + 1);
            unsigned char si = s[i];
            j = (unsigned char)(j + si);
            unsigned char sj = s[j];
            s[i] = sj;
            s[j] = si;
            dst[pos] = src[pos] ^ s[(unsigned char)(si + sj)];
        }
        wl_advance(&tk, span);
    }
    st->i = i;
    st->j = j;
}
