/*
 * text.h - UTF-8 checks and the one way client text is echoed in a detail.
 *
 * Every string a client sends may be any bytes. Inputs that are kept (class names, keys,
 * values of the params part and the query string) are checked with text_utf8_valid and refused
 * with a 400 when they are not UTF-8. A detail that quotes a client's string quotes it through
 * text_echo, which never splits a character and shows invalid bytes as \xHH, so a detail is
 * always valid UTF-8 and says what was sent. json_writer, the last line of defence, uses
 * text_utf8_sequence to pass valid characters and replace any other byte with U+FFFD.
 * All functions are pure and thread-safe.
 */
#ifndef SERVER_TEXT_H
#define SERVER_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes text_echo needs for an echo of at most max_bytes bytes of input: each byte may become
 * \xHH (4 bytes), plus "..." and the NUL. */
#define TEXT_ECHO_SIZE(max_bytes) (4 * (max_bytes) + 4)
/* How much of a client's string a detail quotes. */
#define TEXT_ECHO_MAX 64

/* The length (1 to 4) of the well-formed UTF-8 character at s (len bytes available), or 0 when
 * the bytes there are not one (stray continuation, overlong form, surrogate, beyond U+10FFFF,
 * cut short). */
size_t text_utf8_sequence(const unsigned char *s, size_t len);

/* The length of the longest well-formed UTF-8 prefix of s[0..len): len when all of it is. */
size_t text_utf8_prefix(const char *s, size_t len);

/* Whether s[0..len) is well-formed UTF-8 throughout. */
bool text_utf8_valid(const char *s, size_t len);

/* Whether s[0..len) is well-formed UTF-8 with no control character (C0, DEL, C1). */
bool text_printable(const char *s, size_t len);

/* The number of characters (code points) of well-formed UTF-8 s[0..len). */
size_t text_utf8_length(const char *s, size_t len);

/*
 * Writes into out (out_len bytes, at least TEXT_ECHO_SIZE(max_bytes) to never cut) a quotable
 * form of the NUL-terminated s: its first characters up to max_bytes bytes of input, cut only
 * at a character boundary and then followed by "..."; bytes that are not UTF-8 characters and
 * control characters appear as \xHH. Returns out, so it can be an argument of a printf.
 */
const char *text_echo(char *out, size_t out_len, const char *s, size_t max_bytes);

#endif
