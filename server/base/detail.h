/*
 * detail.h - the one way an error's detail is written into a caller's buffer.
 *
 * Functions that fail return a code (an HTTP status, a module's own error code) and say why in
 * a detail buffer the caller owns: a NULL buffer or a zero length means the caller does not
 * want the text. The detail is always NUL-terminated and truncated to the buffer. Pure and
 * thread-safe. (The library has its own, segloss_fail: lib/ cannot use server code.)
 */
#ifndef SERVER_DETAIL_H
#define SERVER_DETAIL_H

#include <stdarg.h>
#include <stddef.h>

/* Writes the formatted detail into detail[0..len) and returns code. */
int detail_fail(char *detail, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The same with a va_list, for a helper that keeps the detail with other state. */
int detail_vfail(char *detail, size_t len, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
