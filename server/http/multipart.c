/*
 * multipart.c - the streaming multipart/form-data parser (see multipart.h for why our own).
 *
 * The body is scanned for the delimiter "\r\n--" + boundary with memmem, and the bytes before
 * it are copied to the part in one piece. A body starts with "--boundary", so the scan begins as
 * if "\r\n" had just been seen. A chunk may end inside a delimiter: that tail is held back as a
 * count of matched delimiter bytes and the match continues byte by byte in the next chunk.
 * Because a boundary cannot contain CR (RFC 2046 bchars), a partial match that fails can only
 * restart at the failing byte, and the bytes it held are the delimiter's own prefix, written to
 * the part from there.
 *
 * The bulk of a part whose own bytes say how long it is (a field's own_length: the .npy logits
 * of POST /v1/evaluate) is not scanned at all: once its header is in, that many bytes are
 * copied straight into the part and the scan resumes after them, where the delimiter should be.
 * RFC 2046 forbids the delimiter inside a part, so a body that obeys it parses as before; one
 * whose part is not as long as its header says (a truncated file, bytes appended) is caught
 * where the delimiter should have been: the copied bytes are then scanned after all and, when
 * a delimiter is in them, the part ends there and the bytes after it are parsed again
 * (unskip), so such a body too parses exactly as if every byte had been scanned. The header is
 * read at the same byte whatever the chunking (the scan is stopped there as if a chunk ended).
 */
#include "http/multipart.h"

#include "base/detail.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* First mapping for a part of unknown size (masks, images, params): one PNG mask of 512x512 is
 * typically 10-60 KiB. */
#define MULTIPART_INITIAL_CAP (64 * 1024)
/* Bytes faulted in ahead of the copy in one madvise: large enough to batch the page faults of
 * a big part (one fault per 4 KiB page costs more than the copy on a virtual machine), small
 * against the body limit. */
#define MULTIPART_PREFAULT_WINDOW ((size_t)8 << 20)

typedef enum parse_state {
    STATE_PREAMBLE,    /* before the first delimiter: discarded */
    STATE_AFTER_DELIM, /* "--" (the end) or optional blanks then CRLF (a part follows) */
    STATE_CLOSE_DASH,  /* one '-' of the closing "--" seen */
    STATE_DELIM_LF,    /* CR after the delimiter seen, LF expected */
    STATE_HEADERS,     /* a part's header block */
    STATE_BODY,        /* a part's bytes */
    STATE_END,         /* after the closing delimiter: the epilogue, discarded */
    STATE_ERROR
} parse_state;

struct multipart_parser {
    multipart_limits limits;
    multipart_field fields[MULTIPART_MAX_FIELDS]; /* limits.fields points here */
    size_t body_len;                              /* Content-Length, 0 = unknown */
    size_t fed;                                   /* bytes seen */
    parse_state state;
    char delim[4 + MULTIPART_MAX_BOUNDARY + 1];
    size_t delim_len;
    size_t match; /* delimiter bytes matched so far */
    /* the current part's own length (its field's own_length): PROBE_WAIT until probe_need
     * bytes of it are in, then PROBE_KNOWN (part->expected set) or PROBE_NONE */
    enum { PROBE_NONE, PROBE_WAIT, PROBE_KNOWN } probe;
    size_t probe_need;
    size_t skip_from; /* where in the part the unscanned copy began */
    size_t skipped;   /* bytes copied without a boundary scan */
    char header[MULTIPART_MAX_PART_HEADER];
    size_t header_len, line_start;
    multipart_part *parts;
    size_t count, parts_cap;
    int error_code;
    char error_detail[256];
};

/* Records a sticky error, so later feeds answer the same. */
static int parser_fail(multipart_parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parser_fail(multipart_parser *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->error_code = detail_vfail(p->error_detail, sizeof p->error_detail, code, fmt, ap);
    va_end(ap);
    p->state = STATE_ERROR;
    return code;
}

/* RFC 2046 bchars: DIGIT / ALPHA / ' ( ) + _ , - . / : = ? and space (not last). */
static bool boundary_char(char c)
{
    return isalnum((unsigned char)c) || strchr("'()+_,-./:=? ", c) != NULL;
}

int multipart_boundary(const char *content_type, char *out, size_t out_len, char *detail,
                       size_t detail_len)
{
    static const char type[] = "multipart/form-data";
    if (!content_type || strncasecmp(content_type, type, sizeof type - 1) != 0 ||
        (content_type[sizeof type - 1] != ';' && content_type[sizeof type - 1] != ' ' &&
         content_type[sizeof type - 1] != '\0'))
        return detail_fail(detail, detail_len, MULTIPART_E_NOT_FORM,
                           "the Content-Type is not multipart/form-data (got '%.80s')",
                           content_type ? content_type : "none");
    const char *s = content_type + sizeof type - 1;
    while (*s) {
        while (*s == ';' || *s == ' ' || *s == '\t')
            s++;
        const char *name = s;
        while (*s && *s != '=' && *s != ';')
            s++;
        size_t name_len = (size_t)(s - name);
        if (*s != '=') {
            continue;
        }
        s++;
        char value[MULTIPART_MAX_BOUNDARY + 2];
        size_t vlen = 0;
        bool too_long = false;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                if (vlen < sizeof value - 1)
                    value[vlen++] = *s;
                else
                    too_long = true;
                s++;
            }
            if (*s != '"')
                return detail_fail(detail, detail_len, MULTIPART_E_SYNTAX,
                                   "the boundary in Content-Type has no closing quote");
            s++;
        } else {
            while (*s && *s != ';' && *s != ' ' && *s != '\t') {
                if (vlen < sizeof value - 1)
                    value[vlen++] = *s;
                else
                    too_long = true;
                s++;
            }
        }
        value[vlen] = '\0';
        if (name_len == 8 && strncasecmp(name, "boundary", 8) == 0) {
            bool ok =
                !too_long && vlen >= 1 && vlen <= MULTIPART_MAX_BOUNDARY && value[vlen - 1] != ' ';
            for (size_t i = 0; ok && i < vlen; i++)
                ok = boundary_char(value[i]);
            if (!ok)
                return detail_fail(detail, detail_len, MULTIPART_E_SYNTAX,
                                   "the multipart boundary must be 1 to 70 characters of RFC "
                                   "2046 (letters, digits, '()+_,-./:=?)");
            if (vlen + 1 > out_len)
                return detail_fail(detail, detail_len, MULTIPART_E_SYNTAX,
                                   "the multipart boundary is too long");
            memcpy(out, value, vlen + 1);
            return 0;
        }
    }
    return detail_fail(detail, detail_len, MULTIPART_E_SYNTAX,
                       "Content-Type multipart/form-data has no boundary parameter");
}

int multipart_new(const char *content_type, size_t body_len, const multipart_limits *limits,
                  multipart_parser **out, char *detail, size_t detail_len)
{
    char boundary[MULTIPART_MAX_BOUNDARY + 1];
    *out = NULL;
    int rc = multipart_boundary(content_type, boundary, sizeof boundary, detail, detail_len);
    if (rc)
        return rc;
    multipart_parser *p = calloc(1, sizeof *p);
    if (!p)
        return detail_fail(detail, detail_len, MULTIPART_E_NOMEM, "out of memory");
    p->limits = *limits;
    if (p->limits.field_count > MULTIPART_MAX_FIELDS)
        p->limits.field_count = MULTIPART_MAX_FIELDS;
    memcpy(p->fields, limits->fields, p->limits.field_count * sizeof *p->fields);
    p->limits.fields = p->fields;
    p->body_len = body_len;
    p->delim_len = (size_t)snprintf(p->delim, sizeof p->delim, "\r\n--%s", boundary);
    p->state = STATE_PREAMBLE;
    p->match = 2; /* the body starts with "--boundary": as if "\r\n" had been seen */
    *out = p;
    return 0;
}

void multipart_free(multipart_parser *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        bufpool_put(p->limits.pool, p->parts[i].data, p->parts[i].cap, p->parts[i].prefaulted);
    free(p->parts);
    free(p);
}

/* Makes room for `need` bytes in the part. exact: the size is known (a bulk part of a body with
 * Content-Length). Growth uses mremap: pages move, bytes are not copied again. */
static int part_reserve(multipart_parser *p, multipart_part *part, size_t need, bool exact)
{
    if (need <= part->cap)
        return 0;
    void *mem;
    size_t cap = part->cap;
    if (!part->data) {
        size_t first = exact || need > MULTIPART_INITIAL_CAP ? need : MULTIPART_INITIAL_CAP;
        mem = bufpool_get(p->limits.pool, first, &cap, &part->prefaulted);
    } else {
        size_t want = cap;
        while (want < need)
            want = want > SIZE_MAX / 2 ? need : want * 2;
        mem = bufpool_grow(part->data, &cap, want);
    }
    if (!mem)
        return parser_fail(p, MULTIPART_E_NOMEM, "out of memory holding the %s part (%zu bytes)",
                           p->fields[part->kind].name, need);
    part->data = mem;
    part->cap = cap;
    return 0;
}

static int part_append(multipart_parser *p, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    multipart_part *part = &p->parts[p->count - 1];
    const multipart_field *field = &p->fields[part->kind];
    if (field->max_bytes && part->len + n > field->max_bytes)
        return parser_fail(p, MULTIPART_E_PART_LIMIT, "the %s part is over %zu bytes", field->name,
                           field->max_bytes);
    int rc = part_reserve(p, part, part->len + n, false);
    if (rc)
        return rc;
    /* Fault pages in a window ahead of the copy, never beyond what has arrived plus the
     * window: a lying Content-Length must not commit memory. */
    if (part->len + n > part->prefaulted) {
        size_t want = part->len + n + MULTIPART_PREFAULT_WINDOW;
        bufpool_prefault(part->data, part->cap, part->prefaulted, want - part->prefaulted);
        part->prefaulted = want < part->cap ? want : part->cap;
    }
    memcpy(part->data + part->len, data, n);
    part->len += n;
    return 0;
}

/* Copies a header parameter value (quoted or token) into out. */
static void header_param(const char *line, const char *key, char *out, size_t out_len)
{
    size_t key_len = strlen(key);
    const char *s = line;
    out[0] = '\0';
    while ((s = strchr(s, ';')) != NULL) {
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncasecmp(s, key, key_len) != 0 || s[key_len] != '=')
            continue;
        s += key_len + 1;
        size_t n = 0;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                if (n + 1 < out_len)
                    out[n++] = *s;
                s++;
            }
        } else {
            while (*s && *s != ';' && *s != ' ' && *s != '\t') {
                if (n + 1 < out_len)
                    out[n++] = *s;
                s++;
            }
        }
        out[n] = '\0';
        return;
    }
}

/* The header block of a part is complete: name it, check it, size its buffer. */
static int start_part(multipart_parser *p)
{
    char name[MULTIPART_MAX_NAME] = "";
    char filename[MULTIPART_MAX_NAME] = "";
    char ctype[MULTIPART_MAX_NAME] = "";
    bool disposition = false;
    size_t index = p->count;
    /* The block is NUL-free text lines separated by CRLF. */
    for (char *line = p->header; *line;) {
        char *eol = strstr(line, "\r\n");
        if (eol)
            *eol = '\0';
        if (strncasecmp(line, "Content-Disposition:", 20) == 0) {
            const char *v = line + 20;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strncasecmp(v, "form-data", 9) != 0)
                return parser_fail(p, MULTIPART_E_SYNTAX,
                                   "part %zu: Content-Disposition must be form-data", index);
            disposition = true;
            header_param(v, "name", name, sizeof name);
            header_param(v, "filename", filename, sizeof filename);
        } else if (strncasecmp(line, "Content-Type:", 13) == 0) {
            const char *v = line + 13;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(ctype, sizeof ctype, "%s", v);
        }
        if (!eol)
            break;
        line = eol + 2;
    }
    if (!disposition || !name[0])
        return parser_fail(p, MULTIPART_E_SYNTAX,
                           "part %zu has no Content-Disposition: form-data; name=\"...\" header",
                           index);
    size_t kind = 0;
    while (kind < p->limits.field_count && strcmp(name, p->fields[kind].name) != 0)
        kind++;
    if (kind == p->limits.field_count)
        return parser_fail(p, MULTIPART_E_UNKNOWN, "unknown part '%.64s'", name);
    const multipart_field *field = &p->fields[kind];
    if (field->once && multipart_count_kind(p, kind) > 0)
        return parser_fail(p, MULTIPART_E_REPEATED, "the %s part was given twice; send it once",
                           name);
    if (p->count >= p->limits.max_parts)
        return parser_fail(p, MULTIPART_E_PART_COUNT, "more than %zu parts in one request",
                           p->limits.max_parts);
    if (p->count == p->parts_cap) {
        size_t cap = p->parts_cap ? p->parts_cap * 2 : 8;
        multipart_part *np = realloc(p->parts, cap * sizeof *np);
        if (!np)
            return parser_fail(p, MULTIPART_E_NOMEM, "out of memory");
        p->parts = np;
        p->parts_cap = cap;
    }
    multipart_part *part = &p->parts[p->count++];
    memset(part, 0, sizeof *part);
    part->kind = kind;
    snprintf(part->filename, sizeof part->filename, "%s", filename);
    snprintf(part->content_type, sizeof part->content_type, "%s", ctype);
    p->probe = field->own_length ? PROBE_WAIT : PROBE_NONE;
    p->probe_need = field->first_bytes;
    /* A bulk part is most of the body: what is left of a body of known length bounds it, so
     * one mapping holds it and it is copied once. Untouched pages cost no memory. */
    if (field->bulk && p->body_len > p->fed) {
        int rc = part_reserve(p, part, p->body_len - p->fed, true);
        part->fixed = rc == 0;
        return rc;
    }
    return 0;
}

static int scan(multipart_parser *p, const unsigned char *data, size_t len, bool keep, size_t *used,
                bool *found);

/* Reads the current part's own length once probe_need bytes of it are in: it becomes
 * part->expected, or there is none to know. */
static void probe_part(multipart_parser *p, multipart_part *part)
{
    size_t need = 0, total = 0;
    if (part->len < p->probe_need)
        return;
    int rc = p->fields[part->kind].own_length(part->data, part->len, &need, &total);
    if (rc == 1 && need > part->len) {
        p->probe_need = need;
    } else if (rc == 0) {
        part->expected = total;
        p->skip_from = part->len; /* everything before was scanned */
        p->probe = PROBE_KNOWN;
    } else {
        p->probe = PROBE_NONE;
    }
}

/* A part's bytes: copied straight while a known length says they are the part's, else
 * scanned for the delimiter (stopping where a header to probe is complete). */
static int body_bytes(multipart_parser *p, const unsigned char *data, size_t len, size_t *used,
                      bool *found)
{
    multipart_part *part = &p->parts[p->count - 1];
    *found = false;
    if (p->probe == PROBE_WAIT)
        probe_part(p, part);
    if (p->probe == PROBE_KNOWN && p->match == 0 && part->len < part->expected) {
        size_t n = part->expected - part->len < len ? part->expected - part->len : len;
        int rc = part_append(p, data, n);
        if (rc)
            return rc;
        p->skipped += n;
        *used = n;
        return 0;
    }
    if (p->probe == PROBE_WAIT && p->probe_need - part->len < len)
        len = p->probe_need - part->len;
    return scan(p, data, len, true, used, found);
}

/* Scans data for the delimiter; bytes before it go to the current part when keep is set.
 * Returns the bytes consumed (up to and including a completed delimiter) via *used and whether
 * the delimiter completed via *found. */
static int scan(multipart_parser *p, const unsigned char *data, size_t len, bool keep, size_t *used,
                bool *found)
{
    size_t i = 0;
    *found = false;
    while (i < len) {
        if (p->match == 0) {
            /* memmem skips through binary data far faster than stopping at every CR, and the
             * bytes before the delimiter go to the part in one copy. */
            const unsigned char *hit = memmem(data + i, len - i, p->delim, p->delim_len);
            size_t end = hit ? (size_t)(hit - data) : len;
            size_t hold = 0;
            if (!hit) {
                /* The chunk may end inside a delimiter: keep back a tail that is a prefix of
                 * it. Such a tail starts with the delimiter's only CR, so there is one. */
                size_t tail = len - i < p->delim_len - 1 ? len - i : p->delim_len - 1;
                for (size_t k = len - tail; k < len; k++) {
                    if (data[k] == '\r' && memcmp(data + k, p->delim, len - k) == 0) {
                        hold = len - k;
                        break;
                    }
                }
                end = len - hold;
            }
            if (keep && end > i) {
                int rc = part_append(p, data + i, end - i);
                if (rc)
                    return rc;
            }
            if (hit) {
                i = end + p->delim_len;
                *found = true;
                break;
            }
            p->match = hold;
            i = len;
            break;
        }
        if (data[i] == (unsigned char)p->delim[p->match]) {
            p->match++;
            i++;
            if (p->match == p->delim_len) {
                p->match = 0;
                *found = true;
                break;
            }
            continue;
        }
        /* Not the delimiter after all: the bytes matched so far were data. The current byte
         * is looked at again from the delimiter's start. */
        if (keep) {
            int rc = part_append(p, p->delim, p->match);
            if (rc)
                return rc;
        }
        p->match = 0;
    }
    *used = i;
    return 0;
}

/* True when the current part was copied unscanned and turned out not to be as long as its
 * header said: it went on past that length, or the body ended (at_end) inside it. */
static bool skip_went_wrong(const multipart_parser *p, bool at_end)
{
    if (p->probe != PROBE_KNOWN || p->count == 0)
        return false;
    const multipart_part *part = &p->parts[p->count - 1];
    return part->len > part->expected || (at_end && p->state == STATE_BODY);
}

/*
 * Scans the bytes of the current part that were copied unscanned. A delimiter: the part ends
 * there, and the bytes after it (with the delimiter bytes the parser has consumed since: all of
 * it when found, else the prefix held in match) are parsed again. No delimiter: the part's last
 * delim_len - 1 unscanned bytes may still begin one that the bytes after them complete (the copy
 * ran past the header's length by a few bytes of "\r\n--boundary" when the body came in small
 * pieces), so they are parsed again too, with what the parser holds after them.
 */
static int unskip(multipart_parser *p, bool found)
{
    multipart_part *part = &p->parts[p->count - 1];
    p->probe = PROBE_NONE;
    const unsigned char *from = part->data + p->skip_from;
    const unsigned char *hit = memmem(from, part->len - p->skip_from, p->delim, p->delim_len);
    if (!hit) {
        unsigned char back[MULTIPART_MAX_BOUNDARY + 4];
        size_t n = part->len - p->skip_from;
        if (n > p->delim_len - 1)
            n = p->delim_len - 1;
        size_t tail = found ? p->delim_len : p->match;
        memcpy(back, part->data + part->len - n, n);
        part->len -= n;
        p->state = STATE_BODY;
        p->match = 0;
        p->fed -= n + tail; /* counted again as they are fed */
        int rc = multipart_feed(p, back, n, NULL, 0);
        if (rc == 0)
            rc = multipart_feed(p, p->delim, tail, NULL, 0);
        return rc;
    }
    size_t end = (size_t)(hit - part->data);
    size_t rest = part->len - end - p->delim_len;
    size_t tail = found ? p->delim_len : p->match;
    part->len = end;
    p->state = STATE_AFTER_DELIM;
    p->match = 0;
    p->fed -= rest + tail; /* counted again as they are fed */
    /* The part is closed for good (the bytes parsed again go to parts after it), so its buffer
     * still holds these bytes while they are parsed. */
    int rc = multipart_feed(p, hit + p->delim_len, rest, NULL, 0);
    if (rc == 0)
        rc = multipart_feed(p, p->delim, tail, NULL, 0);
    return rc;
}

int multipart_feed(multipart_parser *p, const void *data, size_t len, char *detail,
                   size_t detail_len)
{
    const unsigned char *d = data;
    if (p->state == STATE_ERROR)
        return detail_fail(detail, detail_len, p->error_code, "%s", p->error_detail);
    if (len > p->limits.max_body || p->fed > p->limits.max_body - len) {
        parser_fail(p, MULTIPART_E_BODY_LIMIT, "the body is over the limit of %zu bytes",
                    p->limits.max_body);
        return detail_fail(detail, detail_len, p->error_code, "%s", p->error_detail);
    }
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        size_t used = 0;
        bool found = false;
        switch (p->state) {
        case STATE_PREAMBLE:
        case STATE_BODY:
            rc = p->state == STATE_BODY ? body_bytes(p, d + i, len - i, &used, &found)
                                        : scan(p, d + i, len - i, false, &used, &found);
            p->fed += used;
            i += used;
            if (rc == 0 && found)
                p->state = STATE_AFTER_DELIM;
            if (rc == 0 && skip_went_wrong(p, false))
                rc = unskip(p, found);
            continue;
        case STATE_AFTER_DELIM:
            if (d[i] == '-')
                p->state = STATE_CLOSE_DASH;
            else if (d[i] == '\r')
                p->state = STATE_DELIM_LF;
            else if (d[i] != ' ' && d[i] != '\t')
                rc = parser_fail(p, MULTIPART_E_SYNTAX,
                                 "malformed multipart body: a boundary "
                                 "line is followed by 0x%02x instead of CRLF or \"--\"",
                                 d[i]);
            break;
        case STATE_CLOSE_DASH:
            if (d[i] == '-')
                p->state = STATE_END;
            else
                rc = parser_fail(p, MULTIPART_E_SYNTAX,
                                 "malformed multipart body: \"-\" after "
                                 "a boundary must be the closing \"--\"");
            break;
        case STATE_DELIM_LF:
            if (d[i] == '\n') {
                p->state = STATE_HEADERS;
                p->header_len = p->line_start = 0;
            } else {
                rc = parser_fail(p, MULTIPART_E_SYNTAX,
                                 "malformed multipart body: CR without "
                                 "LF after a boundary");
            }
            break;
        case STATE_HEADERS:
            if (d[i] == '\0') {
                rc = parser_fail(p, MULTIPART_E_SYNTAX, "part %zu: a NUL byte in its headers",
                                 p->count);
                break;
            }
            if (p->header_len + 1 >= sizeof p->header) {
                rc = parser_fail(p, MULTIPART_E_SYNTAX, "part %zu: headers longer than %d bytes",
                                 p->count, MULTIPART_MAX_PART_HEADER);
                break;
            }
            p->header[p->header_len++] = (char)d[i];
            p->header[p->header_len] = '\0';
            if (p->header_len >= 2 && p->header[p->header_len - 2] == '\r' &&
                p->header[p->header_len - 1] == '\n') {
                if (p->header_len == p->line_start + 2) {
                    p->header[p->line_start] = '\0'; /* drop the empty line */
                    p->fed++;
                    i++;
                    rc = start_part(p);
                    if (rc == 0)
                        p->state = STATE_BODY;
                    continue;
                }
                p->line_start = p->header_len;
            }
            break;
        case STATE_END:
            p->fed += len - i; /* the epilogue is ignored */
            i = len;
            continue;
        case STATE_ERROR: rc = p->error_code; break;
        }
        if (rc == 0) {
            p->fed++;
            i++;
        }
    }
    if (rc)
        return detail_fail(detail, detail_len, p->error_code ? p->error_code : rc, "%s",
                           p->error_detail);
    return 0;
}

int multipart_finish(multipart_parser *p, char *detail, size_t detail_len)
{
    if (skip_went_wrong(p, true))
        (void)unskip(p, false); /* an error is kept in the parser's state */
    if (p->state == STATE_ERROR)
        return detail_fail(detail, detail_len, p->error_code, "%s", p->error_detail);
    if (p->state != STATE_END)
        return detail_fail(detail, detail_len, MULTIPART_E_TRUNCATED,
                           "the multipart body ended before its closing boundary \"--%s--\" "
                           "(truncated upload?)",
                           p->delim + 4);
    return 0;
}

size_t multipart_bytes(const multipart_parser *p)
{
    return p->fed;
}

bool multipart_ended(const multipart_parser *p)
{
    return p->state == STATE_END;
}

size_t multipart_complete_count(const multipart_parser *p)
{
    if (p->count == 0 || p->state == STATE_ERROR)
        return 0;
    return p->state == STATE_BODY ? p->count - 1 : p->count;
}

size_t multipart_settled_len(const multipart_parser *p, size_t index)
{
    if (p->state == STATE_ERROR || index >= p->count)
        return 0;
    const multipart_part *part = &p->parts[index];
    if (index < multipart_complete_count(p))
        return part->len;
    size_t reparsed = p->delim_len - 1; /* unskip's most, when no delimiter is in the copy */
    return part->len > reparsed ? part->len - reparsed : 0;
}

size_t multipart_bytes_unscanned(const multipart_parser *p)
{
    return p->skipped;
}

size_t multipart_count(const multipart_parser *p)
{
    return p->count;
}

const multipart_part *multipart_get(const multipart_parser *p, size_t index)
{
    return index < p->count ? &p->parts[index] : NULL;
}

const multipart_part *multipart_first(const multipart_parser *p, size_t kind)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->parts[i].kind == kind)
            return &p->parts[i];
    return NULL;
}

size_t multipart_count_kind(const multipart_parser *p, size_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++)
        n += p->parts[i].kind == kind;
    return n;
}
