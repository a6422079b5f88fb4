/*
 * ids.c - identifiers from getrandom(2), with a clock-and-counter fallback when the kernel
 * refuses (an id must never fail: it is needed to report the failure).
 */
#include "base/ids.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void ids_new(char *out)
{
    static atomic_uint_fast64_t counter;
    uint8_t bytes[IDS_LEN / 2];
    if (getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != (ssize_t)sizeof bytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t b = atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u;
        memcpy(bytes, &a, 8);
        memcpy(bytes + 8, &b, 8);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof bytes; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[IDS_LEN] = '\0';
}

bool ids_client_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > IDS_MAX_CLIENT_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}
