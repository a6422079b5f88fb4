/*
 * errors.h - the one list of segloss error codes.
 *
 * Every library function that can fail returns int: 0 on success or one of the negative codes
 * below. A human-readable detail (which element, which field, what to do) goes into a buffer the
 * caller passes; the library never keeps error state of its own. The server maps each code to an
 * HTTP status through the same list, so the three stay in step.
 */
#ifndef SEGLOSS_ERRORS_H
#define SEGLOSS_ERRORS_H

#include <stddef.h>

/* X(name, value, message, http_status) */
#define SEGLOSS_ERRORS(X)                                                                          \
    X(SEGLOSS_EINVAL, -1, "invalid argument", 400)                                                 \
    X(SEGLOSS_EFORMAT, -2, "malformed input", 400)                                                 \
    X(SEGLOSS_EUNSUPPORTED, -3, "unsupported format", 415)                                         \
    X(SEGLOSS_ESHAPE, -4, "inconsistent shapes", 422)                                              \
    X(SEGLOSS_ENONFINITE, -5, "non-finite logits", 422)                                            \
    X(SEGLOSS_EPARAM, -6, "parameter does not fit the inputs", 422)                                \
    X(SEGLOSS_ELIMIT, -7, "input over a size limit", 413)                                          \
    X(SEGLOSS_ENOMEM, -8, "out of memory", 503)                                                    \
    X(SEGLOSS_EINTERNAL, -9, "internal error", 500)                                                \
    X(SEGLOSS_EKERNEL, -10, "the CPU cannot run the kernel asked for", 500)

enum segloss_error {
#define SEGLOSS__ERROR_ENUM(name, value, message, status) name = (value),
    SEGLOSS_ERRORS(SEGLOSS__ERROR_ENUM)
#undef SEGLOSS__ERROR_ENUM
};

/* A static message for a code ("unknown error" for anything not in the list). Thread-safe. */
const char *segloss_strerror(int code);

/* The code's symbolic name, e.g. "SEGLOSS_ESHAPE". Thread-safe. */
const char *segloss_error_name(int code);

/*
 * Formats a detail message into buf (always NUL-terminated when buf_len > 0, silently truncated)
 * and returns code, so an error path reads `return segloss__fail(detail, len, SEGLOSS_ESHAPE,
 * "...", ...)`. buf may be NULL. Thread-safe.
 */
int segloss_fail(char *buf, size_t buf_len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
