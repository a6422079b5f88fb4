/*
 * text.c - UTF-8 well-formedness (RFC 3629, Unicode table 3-7) and echoes of client text.
 */
#include "base/text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t text_utf8_sequence(const unsigned char *s, size_t len)
{
    if (len == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* nothing beyond U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

size_t text_utf8_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = text_utf8_sequence(p + i, len - i);
        if (!n)
            break;
        i += n;
    }
    return i;
}

bool text_utf8_valid(const char *s, size_t len)
{
    return text_utf8_prefix(s, len) == len;
}

/* Whether the character of n bytes at p is a control character (C0, DEL or C1). */
static bool is_control(const unsigned char *p, size_t n)
{
    return (n == 1 && (p[0] < 0x20 || p[0] == 0x7f)) || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

bool text_printable(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = text_utf8_sequence(p + i, len - i);
        if (!n || is_control(p + i, n))
            return false;
        i += n;
    }
    return true;
}

size_t text_utf8_length(const char *s, size_t len)
{
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
    return chars;
}

const char *text_echo(char *out, size_t out_len, const char *s, size_t max_bytes)
{
    if (!out || out_len == 0)
        return "";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p), j = 0, i = 0;
    /* room kept for "..." and the NUL */
    while (i < len && i < max_bytes) {
        size_t n = text_utf8_sequence(p + i, len - i);
        bool raw = n && !is_control(p + i, n);
        size_t step = raw ? n : 1, need = raw ? n : 4;
        if (i + step > max_bytes || j + need + 4 > out_len)
            break;
        if (raw)
            memcpy(out + j, p + i, n);
        else
            snprintf(out + j, 5, "\\x%02X", p[i]);
        j += need;
        i += step;
    }
    if (i < len && j + 4 <= out_len) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}
