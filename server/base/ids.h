/*
 * ids.h - random identifiers for requests and evaluations.
 *
 * 128 random bits as 32 lowercase hex digits: unguessable (an evaluation id will be a URL) and
 * collision-free across replicas without coordination. Thread-safe.
 */
#ifndef SERVER_IDS_H
#define SERVER_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define IDS_LEN 32
/* An X-Request-Id a client sends is echoed when it is 1 to 128 characters of
 * A-Z a-z 0-9 . _ : - (safe in logs and headers); otherwise a new one is made. */
#define IDS_MAX_CLIENT_LEN 128

/* Writes IDS_LEN hex digits and a NUL into out (at least IDS_LEN + 1 bytes). */
void ids_new(char *out);

/* Whether a client-supplied request id may be echoed as is. */
bool ids_client_ok(const char *id);

#endif
