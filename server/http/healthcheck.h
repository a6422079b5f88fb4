/*
 * healthcheck.h - `seglossd healthcheck`: is the daemon of this configuration alive?
 *
 * For container images without curl (the image's HEALTHCHECK). The probe reads the same flags
 * and SEGLOSS_* environment as the daemon, so it finds the daemon where it listens and speaks
 * what it speaks: plain HTTP, or HTTPS when --tls-cert is set.
 */
#ifndef SERVER_HEALTHCHECK_H
#define SERVER_HEALTHCHECK_H

#include <stddef.h>

#include "base/config.h"

/* Seconds the probe waits for each of connect, the TLS handshake, the request and the answer. */
#define HEALTHCHECK_TIMEOUT_S 3

/*
 * GET /livez on cfg's port (a wildcard --bind is reached through loopback). Returns 0 when the
 * daemon answers 200; otherwise 1 with what went wrong in detail (e.g. "no answer from
 * https://127.0.0.1:8080/livez: connection refused"), or 2 when the configuration cannot be
 * probed (a --bind that is not an IP address).
 */
int healthcheck_run(const server_config *cfg, char *detail, size_t detail_len);

#endif
