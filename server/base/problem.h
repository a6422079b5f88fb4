/*
 * problem.h - error answers as application/problem+json (RFC 9457).
 *
 * Every error the daemon sends, and the one `seglossd eval` prints on stderr, is built here:
 * {"type","title","status","detail","error","request_id"}. `error` repeats `detail` for clients
 * that look for that key; `detail` always says what to fix. The HTTP status of a library error
 * code comes from the SEGLOSS_ERRORS list itself, so there is no second table to keep in step.
 */
#ifndef SERVER_PROBLEM_H
#define SERVER_PROBLEM_H

#include <stddef.h>

#define PROBLEM_CONTENT_TYPE "application/problem+json"
/* RFC 9457 3.1: "about:blank" means the problem is what the status code says. */
#define PROBLEM_TYPE "about:blank"

/* The HTTP status for a negative SEGLOSS_E* code (500 for anything not in the list). */
int problem_status_for_code(int code);

/* The reason phrase of an HTTP status ("Unprocessable Content"); "Error" when unknown. */
const char *problem_title(int status);

/*
 * The problem JSON text for status and detail; request_id may be NULL. Returns a NUL-terminated
 * string the caller frees with free(), its length in *len; NULL on OOM.
 */
char *problem_json(int status, const char *detail, const char *request_id, size_t *len);

#endif
