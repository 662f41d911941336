/* sha256.c - SHA-256 through OpenSSL's EVP interface, fed in spans so a
 * hook can tick between them. */
#include "wl_internal.h"

#include <errno.h>
#include <openssl/evp.h>

/* Feeds len bytes, ticking every tk->every blocks. */
static int digest_update(EVP_MD_CTX *ctx, const unsigned char *p, size_t len,
                         wl_ticker *tk)
{
    if (!tk->tick)
        return EVP_DigestUpdate(ctx, p, len) == 1 ? 0 : EIO;
    while (len > 0) {
        uint64_t blocks = (len + 63) / 64;
        uint64_t span = wl_span(tk, blocks);
        size_t n = span == blocks ? len : (size_t)span * 64;
        if (EVP_DigestUpdate(ctx, p, n) != 1)
            return EIO;
        p += n;
        len -= n;
        wl_advance(tk, span);
    }
    return 0;
}

int rlab_wl_sha256(const void *data, size_t len, unsigned char out[32],
                   const rlab_wl_hook *hook)
{
    if ((!data && len > 0) || !out)
        return EINVAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return ENOMEM;
    wl_ticker tk;
    wl_ticker_init(&tk, hook);
    bool released = hook && hook->release && hook->reacquire;
    int rc = EIO;
    unsigned int outlen = 0;
    if (released) {
        /* hashlib's way: the GIL is let go for the whole call. */
        tk.tick = NULL;
        hook->release(hook->ctx);
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
        rc = digest_update(ctx, data, len, &tk);
        if (rc == 0 &&
            (EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != 32))
            rc = EIO;
    }
    if (released)
        hook->reacquire(hook->ctx);
    EVP_MD_CTX_free(ctx);
    return rc;
}
