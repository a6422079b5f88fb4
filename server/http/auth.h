/*
 * auth.h - bearer tokens for seglossd (--token-file, --metrics-token).
 *
 * The token file holds one token per line, each with its access:
 *
 *     # comments and blank lines are ignored
 *     rw  3f9c1e0d5b7a4c2e8f6a9d1b0c3e5f7a   # may POST /v1/evaluate and DELETE runs
 *     ro  a1b2c3d4e5f60718293a4b5c6d7e8f90   # may only read (GET, HEAD)
 *
 * A token is 16 to AUTH_MAX_TOKEN characters of RFC 6750's b64token alphabet (A-Z a-z 0-9
 * - . _ ~ + / and trailing =). Once a file is given, every protected path (the route table's
 * auth_policy: for seglossd /v1/..., /v2, /v2/models/...; and the pages, the dashboard's files,
 * which the route table marks) needs `Authorization: Bearer <token>`;
 * methods other than GET, HEAD and OPTIONS need an rw token. HTTP Basic with the token as the
 * password (any user name) is accepted too, so a browser's own login prompt opens the
 * dashboard, and the browser then sends the same credentials with the dashboard's fetches.
 * /livez, /readyz, /healthz and /v2/health/... are always open; /metrics is open unless
 * --metrics-token is given (then it takes that token or any token of the file).
 *
 * Comparison is constant-time: the presented token is compared with every known token over
 * AUTH_MAX_TOKEN bytes, whatever matched before or how long either is. Tokens are never copied
 * into messages, logs or answers.
 *
 * Ownership: auth_load allocates; auth_free releases (accepts NULL). After loading, an auth is
 * read-only and safe to use from any thread.
 */
#ifndef SERVER_AUTH_H
#define SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* Longest token: a 256-bit secret in hex is 64 characters, a JWT a few hundred; 512 bounds the
 * per-request comparison work (tokens x 512 bytes). */
#define AUTH_MAX_TOKEN 512
/* Shortest token: 16 characters of hex are 64 bits, the least a guessable-by-network token
 * should have. */
#define AUTH_MIN_TOKEN 16
/* Tokens in one file: one per client or team; the comparison touches each of them. */
#define AUTH_MAX_TOKENS 1024
/* Longest line of a token file (access word, spaces, token, comment). */
#define AUTH_MAX_LINE 2048

typedef struct auth auth;

typedef enum auth_access { AUTH_NONE = 0, AUTH_READ = 1, AUTH_WRITE = 2 } auth_access;

/* What a request needs, from its method and path. */
typedef enum auth_scope {
    AUTH_SCOPE_OPEN = 0, /* probes, unknown paths: no token */
    AUTH_SCOPE_METRICS,  /* /metrics */
    AUTH_SCOPE_READ,     /* a protected path, read method */
    AUTH_SCOPE_WRITE     /* a protected path, any other method */
} auth_scope;

/*
 * Loads the token file (NULL or "" for none) and the metrics token (NULL or "" for none; the
 * name of a readable file whose first non-comment line is the token, else the token itself).
 * Returns 0 and *out (NULL when neither is set: everything open), or -1 with a message in err
 * that names the file and line but never a token. A file that cannot be read, holds no token,
 * a malformed line, or is writable by others is refused.
 */
int auth_load(const char *token_file, const char *metrics_token, auth **out, char *err,
              size_t err_len);
void auth_free(auth *a);

/* Which paths need a token, as the route table says (the transport knows no route by name): a
 * path that is one of protected_paths or starts with one of protected_prefixes (both NULL-ended
 * lists, either NULL), and every page (the caller says which, route.h's ROUTE_PAGE); the
 * metrics_path (NULL: none) takes the --metrics-token as well. Every other path is open. */
typedef struct auth_policy {
    const char *const *protected_paths;
    const char *const *protected_prefixes;
    const char *metrics_path;
} auth_policy;

/* Whether a path needs a token when a token file is loaded (policy may be NULL: none does). */
bool auth_path_protected(const auth_policy *policy, const char *path);

/* The scope of one request; page: the path is a page (protected). */
auth_scope auth_scope_of(const auth_policy *policy, const char *method, const char *path,
                         bool page);

typedef struct auth_verdict {
    int status;            /* 0 = let through, 401 or 403 */
    const char *challenge; /* the WWW-Authenticate value to send with it (static) */
    const char *detail;    /* problem detail (static, names no token) */
} auth_verdict;

/* Checks the Authorization header (NULL when absent) of a request. a may be NULL (no tokens
 * configured: everything passes). page: the path is a page a browser opens (protected; a
 * missing or wrong token asks for the browser's login prompt, HTTP Basic). */
auth_verdict auth_check(const auth *a, const auth_policy *policy, const char *method,
                        const char *path, bool page, const char *authorization);

/* The access a presented token grants (constant-time over every token); for tests. */
auth_access auth_lookup(const auth *a, const char *token, size_t len, bool for_metrics);

#endif
