/*
 * errors.c - messages and names for the SEGLOSS_ERRORS list, and the detail formatter every
 * error path uses.
 */
#include <stdarg.h>
#include <stdio.h>

#include "segloss/errors.h"

const char *segloss_strerror(int code)
{
    switch (code) {
#define SEGLOSS__ERROR_MESSAGE(name, value, message, status)                                       \
    case value: return message;
        SEGLOSS_ERRORS(SEGLOSS__ERROR_MESSAGE)
#undef SEGLOSS__ERROR_MESSAGE
    case 0: return "success";
    default: return "unknown error";
    }
}

const char *segloss_error_name(int code)
{
    switch (code) {
#define SEGLOSS__ERROR_NAME(name, value, message, status)                                          \
    case value: return #name;
        SEGLOSS_ERRORS(SEGLOSS__ERROR_NAME)
#undef SEGLOSS__ERROR_NAME
    case 0: return "SEGLOSS_OK";
    default: return "SEGLOSS_EUNKNOWN";
    }
}

int segloss_fail(char *buf, size_t buf_len, int code, const char *fmt, ...)
{
    if (buf && buf_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, buf_len, fmt, ap);
        va_end(ap);
    }
    return code;
}
