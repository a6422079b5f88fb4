/*
 * http_head.h - the checks on a request head that libmicrohttpd 0.9.75 does not make, and the
 * server's one percent-decoder, as pure functions over bytes (no MHD), so they can be tested and
 * fuzzed directly (tests/unit/server/http/test_http_head.c, tests/fuzz/fuzz_http_head.c).
 *
 * http.c runs them on every request before authentication or any route:
 *   - http_head_check: the framing rules of RFC 9112 section 6 (Content-Length with
 *     Transfer-Encoding, conflicting or malformed Content-Length, a transfer coding other than
 *     chunked) and Host (section 3.2). Any failure is answered and the connection closed,
 *     so bytes a proxy framed differently are never read as a next request.
 *   - http_target_path: the path of an origin-form or absolute-form target.
 *   - http_percent_decode: %XX escapes of a path or a query key or value, decoded exactly once;
 *     a NUL (%00) or a malformed escape is refused, so the name a handler acts on is the whole
 *     name the client sent.
 *
 * Thread-safe: no state.
 */
#ifndef SERVER_HTTP_HEAD_H
#define SERVER_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

/* One header line as received: name and value, NUL-terminated (MHD's). */
typedef struct http_header {
    const char *name;
    const char *value;
} http_header;

/*
 * Checks the framing headers of a request. version is the request line's ("HTTP/1.1", or ""
 * for HTTP/0.9); headers[0..count) in the order received, repeated names as separate entries.
 * Returns 0 when the request may be read; 400 (malformed or ambiguous framing, a missing or
 * repeated Host) or 501 (a transfer coding other than chunked) with a message in detail. The
 * connection must be closed after either answer.
 */
int http_head_check(const char *version, const http_header *headers, size_t count, char *detail,
                    size_t detail_len);

/*
 * The path of a request target (RFC 9112 section 3.2): target itself for origin-form
 * ("/v1/info"); for absolute-form ("http://host:8080/v1/info", scheme case-insensitive) the
 * part after the authority, or "/" when there is none. Returns a pointer into target or to a
 * static "/"; never NULL for a non-NULL target.
 */
const char *http_target_path(const char *target);

typedef enum http_decode_result {
    HTTP_DECODE_OK = 0,
    HTTP_DECODE_MALFORMED = -1, /* '%' not followed by two hex digits */
    HTTP_DECODE_NUL = -2        /* %00 (or a raw NUL byte) */
} http_decode_result;

/*
 * Decodes the %XX escapes of in[0..len) into out, which must hold len + 1 bytes (it may be in
 * itself: the result is never longer); '+' is left as it is (MHD turns '+' in a query into a
 * space before this runs). *out_len gets the decoded length, and out is NUL-terminated.
 * Returns HTTP_DECODE_OK, or an error with out unspecified.
 */
http_decode_result http_percent_decode(const char *in, size_t len, char *out, size_t *out_len);

#endif
