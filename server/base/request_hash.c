/*
 * request_hash.c - SHA-256 of a request's fields through GnuTLS (see request_hash.h).
 */
#include "base/request_hash.h"

#include <gnutls/crypto.h>
#include <stdlib.h>

struct request_hash {
    gnutls_hash_hd_t hd;
};

bool request_key_ok(const char *key)
{
    size_t n = 0;
    for (; key && key[n]; n++)
        if (key[n] < '!' || key[n] > '~' || n >= REQUEST_KEY_MAX)
            return false;
    return n > 0;
}

request_hash *request_hash_new(void)
{
    request_hash *h = malloc(sizeof *h);
    if (h && gnutls_hash_init(&h->hd, GNUTLS_DIG_SHA256) < 0) {
        free(h);
        h = NULL;
    }
    return h;
}

void request_hash_add(request_hash *h, const void *data, size_t len)
{
    uint8_t prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (uint8_t)((uint64_t)len >> (8 * i));
    gnutls_hash(h->hd, prefix, sizeof prefix);
    if (len)
        gnutls_hash(h->hd, data, len);
}

void request_hash_finish(request_hash *h, uint8_t out[REQUEST_HASH_LEN])
{
    gnutls_hash_deinit(h->hd, out);
    free(h);
}
