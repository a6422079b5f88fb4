/*
 * store_backend.c - what the backends share (store_backend.h): hex and the history page tokens,
 * so that a token means the same whichever backend made it.
 */
#include "store/backend/store_backend.h"

#include <stdlib.h>
#include <string.h>

void store__hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Decodes exactly n bytes from 2n hex digits; -1 when the text is anything else. */
int store__hex_decode(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* A history page token: the (step, seq) of the last point returned, 32 hex digits. */
char *store__history_token(int64_t step, int64_t seq)
{
    uint8_t raw[16];
    put_u64(raw, (uint64_t)step);
    put_u64(raw + 8, (uint64_t)seq);
    char *out = malloc(33);
    if (out)
        store__hex_encode(raw, 16, out);
    return out;
}

int store__history_token_parse(const char *token, int64_t *step, int64_t *seq)
{
    uint8_t raw[16];
    if (store__hex_decode(token, raw, 16) != 0)
        return -1;
    *step = (int64_t)get_u64(raw);
    *seq = (int64_t)get_u64(raw + 8);
    return *seq >= 0 ? 0 : -1;
}
