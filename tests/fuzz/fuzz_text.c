/*
 * fuzz_text.c - libFuzzer harness for the UTF-8 checks and the echo of client text in details
 * (server/base/text.c): every detail that quotes a client's bytes goes through text_echo, and every
 * name a client gives passes text_utf8_valid / text_printable first.
 *
 * fuzz-extra-src: server/base/text.c
 *
 * Input: any bytes, taken as a client's string (cut at its first NUL, as a C string would be).
 * Checked: text_utf8_prefix is at most the length and its prefix is valid, and the whole string
 * is valid exactly when the prefix is all of it; the sequence lengths walk the valid prefix to
 * its end; text_printable implies valid; text_echo's output is NUL-terminated inside its buffer,
 * is itself valid and printable UTF-8 (so the JSON it lands in is valid), quotes a valid
 * printable string unchanged when it fits, and never overruns a buffer one byte too small.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/text", NULL};

static void check_echo(const char *s, size_t len, size_t max_bytes, size_t out_len)
{
    char *out = malloc(out_len);
    if (!out)
        abort();
    memset(out, 'Z', out_len);
    const char *r = text_echo(out, out_len, s, max_bytes);
    if (r != out)
        abort();
    size_t n = strnlen(out, out_len);
    if (n == out_len) /* not NUL-terminated inside the buffer */
        abort();
    if (!text_utf8_valid(out, n) || !text_printable(out, n))
        abort();
    if (out_len >= TEXT_ECHO_SIZE(max_bytes) && len <= max_bytes && text_printable(s, len) &&
        (n != len || memcmp(out, s, len) != 0))
        abort();
    free(out);
}

int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    size_t len = strlen(s);
    size_t prefix = text_utf8_prefix(s, len);
    if (prefix > len || !text_utf8_valid(s, prefix) || text_utf8_valid(s, len) != (prefix == len))
        abort();
    size_t at = 0;
    while (at < prefix) {
        size_t step = text_utf8_sequence((const unsigned char *)s + at, len - at);
        if (step == 0 || step > 4 || at + step > prefix)
            abort();
        at += step;
    }
    if (text_printable(s, len) && !text_utf8_valid(s, len))
        abort();
    if (text_utf8_valid(s, prefix) && text_utf8_length(s, prefix) > prefix)
        abort();
    size_t max_bytes = size ? data[0] % 80 : 8;
    check_echo(s, len, max_bytes, TEXT_ECHO_SIZE(max_bytes));
    check_echo(s, len, max_bytes, TEXT_ECHO_SIZE(max_bytes) / 2 + 1); /* a short buffer */
    check_echo(s, len, TEXT_ECHO_MAX, 1);
    free(s);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)segloss_fuzz_decode(data, size);
    return 0;
}
