/*
 * test_text.c - UTF-8 well-formedness, echoes of client text in details, and the JSON writer
 * never emitting invalid UTF-8 (issue 12).
 */
#include <stdlib.h>
#include <string.h>

#include "base/json_writer.h"
#include "base/text.h"
#include "testing.h"

static void test_sequences(void)
{
    static const struct {
        const char *bytes;
        size_t len, want;
    } cases[] = {
        {"a", 1, 1},
        {"\xc3\xa9", 2, 2},         /* é */
        {"\xe7\x8c\xab", 3, 3},     /* 猫 */
        {"\xf0\x9f\x98\x80", 4, 4}, /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
        {"\x80", 1, 0},             /* stray continuation */
        {"\xc0\xaf", 2, 0},         /* overlong '/' */
        {"\xc1\xbf", 2, 0},
        {"\xe0\x80\xaf", 3, 0},     /* overlong */
        {"\xed\xa0\x80", 3, 0},     /* surrogate U+D800 */
        {"\xf0\x80\x80\xaf", 4, 0}, /* overlong */
        {"\xf4\x90\x80\x80", 4, 0}, /* beyond U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xff", 1, 0},
        {"\xc3", 1, 0}, /* cut short */
        {"\xe7\x8c", 2, 0},
        {"\xe7\x8c"
         "a",
         3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = text_utf8_sequence((const unsigned char *)cases[i].bytes, cases[i].len);
        CHECK_MSG(got == cases[i].want, "case %zu: %zu, wanted %zu", i, got, cases[i].want);
    }
    CHECK(text_utf8_valid("caf\xc3\xa9 \xe7\x8c\xab", 9));
    CHECK(!text_utf8_valid("caf\xc3", 4));
    CHECK(text_printable("traffic sign", 12));
    CHECK(!text_printable("a\tb", 3));
    CHECK(!text_printable("\xc2\x85", 2)); /* C1 NEL */
    CHECK(text_printable("\xc2\xa0", 2));  /* no-break space */
    CHECK_EQ_INT(text_utf8_length("\xc3\xa9t\xc3\xa9", 5), 3);
}

static void test_echo(void)
{
    char out[TEXT_ECHO_SIZE(8)];
    CHECK(strcmp(text_echo(out, sizeof out, "abc", 8), "abc") == 0);
    CHECK(strcmp(text_echo(out, sizeof out, "\xff\xfe", 8), "\\xFF\\xFE") == 0);
    CHECK(strcmp(text_echo(out, sizeof out, "a\nb", 8), "a\\x0Ab") == 0);
    CHECK(strcmp(text_echo(out, sizeof out, "abcdefghij", 8), "abcdefgh...") == 0);
    /* é is 2 bytes: 4 fit in 8 bytes, the 5th is not split */
    CHECK(strcmp(text_echo(out, sizeof out, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8),
                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...") == 0);
    CHECK(strcmp(text_echo(out, sizeof out, "abcdefg\xc3\xa9", 8), "abcdefg...") == 0);
    CHECK(strcmp(text_echo(out, sizeof out, NULL, 8), "") == 0);
    /* a too small buffer still ends in a NUL and never splits a character */
    char small[6];
    text_echo(small, sizeof small, "\xe7\x8c\xab\xe7\x8c\xab", 8);
    CHECK_MSG(strcmp(small, "...") == 0, "%s", small);
}

static void test_writer_replaces_invalid(void)
{
    json_writer w;
    json_writer_init(&w);
    json_array_begin(&w);
    json_string(&w, "ok \xc3\xa9");
    json_string(&w, "bad \xff\xfe end");
    json_string(&w, "cut \xe7\x8c");
    json_string(&w, "\xed\xa0\x80");
    json_array_end(&w);
    size_t len = 0;
    char *text = json_writer_finish(&w, &len);
    CHECK(text != NULL);
    if (text)
        CHECK_MSG(strcmp(text, "[\"ok \xc3\xa9\",\"bad \\ufffd\\ufffd end\",\"cut \\ufffd\\ufffd\","
                               "\"\\ufffd\\ufffd\\ufffd\"]") == 0,
                  "%s", text);
    free(text);
}

int main(void)
{
    RUN(test_sequences);
    RUN(test_echo);
    RUN(test_writer_replaces_invalid);
    return TESTS_DONE();
}
