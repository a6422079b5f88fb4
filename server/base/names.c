/*
 * names.c - the rules for run and split names (names.h).
 */
#include "base/names.h"

bool names_ok(const char *name, size_t max)
{
    if (!name || !*name)
        return false;
    for (size_t n = 0; name[n]; n++) {
        char c = name[n];
        if (n >= max || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool names_run_ok(const char *run)
{
    return names_ok(run, NAMES_RUN_MAX);
}

bool names_split_ok(const char *split)
{
    return names_ok(split, NAMES_SPLIT_MAX);
}

bool names_new_ok(const char *name, size_t max)
{
    return names_ok(name, max) && name[0] != '.';
}
