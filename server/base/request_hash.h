/*
 * request_hash.h - the fingerprint of a request that an Idempotency-Key is bound to.
 *
 * A retry of a recorded request must be told from a new request that reuses its key. The
 * fingerprint is SHA-256 (GnuTLS) over length-prefixed fields the caller adds in a fixed order:
 * for POST /v1/evaluate the query parameters and every part's kind and bytes, so a multipart
 * boundary that differs between two sends of the same data (curl draws a new one each time)
 * does not make them different requests. Not thread-safe per object; one per request.
 */
#ifndef SERVER_REQUEST_HASH_H
#define SERVER_REQUEST_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQUEST_HASH_LEN 32
/* An Idempotency-Key is 1..REQUEST_KEY_MAX characters from '!' to '~' (a UUID is 36; the bound
 * keeps the key table's index small and a hostile header cheap). */
#define REQUEST_KEY_MAX 255

bool request_key_ok(const char *key);

typedef struct request_hash request_hash;

/* A new fingerprint; NULL when out of memory. */
request_hash *request_hash_new(void);
/* Adds one field: its length (8 bytes, little-endian), then its bytes. */
void request_hash_add(request_hash *h, const void *data, size_t len);
/* Writes the digest into out and frees h. */
void request_hash_finish(request_hash *h, uint8_t out[REQUEST_HASH_LEN]);

#endif
