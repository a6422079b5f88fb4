/*
 * detail.c - an error's detail into a caller's buffer (see detail.h).
 */
#include "base/detail.h"

#include <stdio.h>

int detail_vfail(char *detail, size_t len, int code, const char *fmt, va_list ap)
{
    if (detail && len)
        vsnprintf(detail, len, fmt, ap);
    return code;
}

int detail_fail(char *detail, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    detail_vfail(detail, len, code, fmt, ap);
    va_end(ap);
    return code;
}
