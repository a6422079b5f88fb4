/*
 * auth.c - token file parsing and the per-request check (see auth.h).
 *
 * Tokens are kept in fixed AUTH_MAX_TOKEN-byte slots, zero-padded, with their length, so the
 * comparison below reads the same number of bytes for every slot and every presented token and
 * never stops early: what it costs depends only on the number of tokens.
 */
#include "http/auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/log.h"

typedef struct token_slot {
    unsigned char bytes[AUTH_MAX_TOKEN];
    size_t len;
    auth_access access;
} token_slot;

struct auth {
    token_slot *tokens; /* from the token file */
    size_t count;
    bool has_metrics;
    token_slot metrics; /* --metrics-token */
};

#define CHALLENGE_BEARER "Bearer realm=\"segloss\""
#define CHALLENGE_INVALID "Bearer realm=\"segloss\", error=\"invalid_token\""
#define CHALLENGE_SCOPE "Bearer realm=\"segloss\", error=\"insufficient_scope\""
/* On the pages (the dashboard's own files): Basic first, so a browser shows its login prompt. */
#define CHALLENGE_DASHBOARD "Basic realm=\"segloss\", charset=\"UTF-8\", Bearer realm=\"segloss\""

static bool token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Constant-time over AUTH_MAX_TOKEN bytes: 1 when equal. */
static unsigned slot_equal(const token_slot *slot, const unsigned char *padded, size_t len)
{
    unsigned diff = 0;
    for (size_t i = 0; i < AUTH_MAX_TOKEN; i++)
        diff |= (unsigned)(slot->bytes[i] ^ padded[i]);
    diff |= (unsigned)(slot->len != len);
    return diff == 0;
}

auth_access auth_lookup(const auth *a, const char *token, size_t len, bool for_metrics)
{
    if (!a)
        return AUTH_NONE;
    unsigned char padded[AUTH_MAX_TOKEN];
    memset(padded, 0, sizeof padded);
    /* A token longer than any slot can match none; still compare, so timing says nothing. */
    size_t n = len < AUTH_MAX_TOKEN ? len : AUTH_MAX_TOKEN;
    memcpy(padded, token, n);
    if (len > AUTH_MAX_TOKEN)
        len = AUTH_MAX_TOKEN + 1;
    unsigned best = AUTH_NONE;
    for (size_t i = 0; i < a->count; i++) {
        unsigned eq = slot_equal(&a->tokens[i], padded, len);
        unsigned acc = eq * (unsigned)a->tokens[i].access;
        best |= acc; /* AUTH_READ | AUTH_WRITE -> WRITE below */
    }
    if (for_metrics && a->has_metrics)
        best |= slot_equal(&a->metrics, padded, len) * (unsigned)AUTH_READ;
    memset(padded, 0, sizeof padded);
    return (best & AUTH_WRITE) ? AUTH_WRITE : (best & AUTH_READ) ? AUTH_READ : AUTH_NONE;
}

static bool listed(const char *const *list, const char *path, bool as_prefix)
{
    for (size_t i = 0; list && list[i]; i++)
        if (as_prefix ? strncmp(path, list[i], strlen(list[i])) == 0 : strcmp(path, list[i]) == 0)
            return true;
    return false;
}

bool auth_path_protected(const auth_policy *policy, const char *path)
{
    return policy && path &&
           (listed(policy->protected_paths, path, false) ||
            listed(policy->protected_prefixes, path, true));
}

auth_scope auth_scope_of(const auth_policy *policy, const char *method, const char *path, bool page)
{
    if (policy && policy->metrics_path && path && strcmp(path, policy->metrics_path) == 0)
        return AUTH_SCOPE_METRICS;
    if (!page && !auth_path_protected(policy, path))
        return AUTH_SCOPE_OPEN;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 || strcmp(method, "OPTIONS") == 0)
        return AUTH_SCOPE_READ;
    return AUTH_SCOPE_WRITE;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 into out (NUL-terminated); -1 when malformed or too long. */
static int b64_decode(const char *in, char *out, size_t out_len)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        int v = b64_value((unsigned char)*p);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= out_len)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    return (int)n;
}

/* The token of an Authorization header: Bearer <token>, or Basic base64(user:token). Returns
 * its length and *tok (in buf or in the header), or -1 when the header is neither. */
static long presented_token(const char *header, const char **tok, char *buf, size_t buf_len)
{
    while (*header == ' ')
        header++;
    if (strncasecmp(header, "Bearer ", 7) == 0) {
        const char *t = header + 7;
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        while (len && is_space(t[len - 1]))
            len--;
        *tok = t;
        return (long)len;
    }
    if (strncasecmp(header, "Basic ", 6) == 0) {
        const char *t = header + 6;
        while (*t == ' ')
            t++;
        if (strlen(t) > 4 * (buf_len / 3))
            return -1;
        int n = b64_decode(t, buf, buf_len);
        if (n < 0)
            return -1;
        char *colon = memchr(buf, ':', (size_t)n);
        if (!colon)
            return -1;
        *tok = colon + 1;
        return (long)((size_t)n - (size_t)(colon + 1 - buf));
    }
    return -1;
}

auth_verdict auth_check(const auth *a, const auth_policy *policy, const char *method,
                        const char *path, bool page, const char *authorization)
{
    auth_verdict v = {0, NULL, NULL};
    if (!a)
        return v;
    auth_scope scope = auth_scope_of(policy, method, path, page);
    if (scope == AUTH_SCOPE_OPEN)
        return v;
    if (scope == AUTH_SCOPE_METRICS && !a->has_metrics)
        return v;
    if ((scope == AUTH_SCOPE_READ || scope == AUTH_SCOPE_WRITE) && a->count == 0)
        return v; /* only --metrics-token was given */
    if (!authorization || !*authorization) {
        v.status = 401;
        v.challenge = page ? CHALLENGE_DASHBOARD : CHALLENGE_BEARER;
        v.detail = "this route needs a token: send Authorization: Bearer <token>";
        return v;
    }
    char buf[AUTH_MAX_TOKEN * 2];
    const char *tok = NULL;
    long len = presented_token(authorization, &tok, buf, sizeof buf);
    auth_access acc = AUTH_NONE;
    if (len >= 0)
        acc = auth_lookup(a, tok, (size_t)len, scope == AUTH_SCOPE_METRICS);
    memset(buf, 0, sizeof buf);
    if (acc == AUTH_NONE) {
        v.status = 401;
        v.challenge = page ? CHALLENGE_DASHBOARD : CHALLENGE_INVALID;
        v.detail =
            len < 0 ? "the Authorization header must be Bearer <token>" : "the token is not valid";
        return v;
    }
    if (scope == AUTH_SCOPE_WRITE && acc != AUTH_WRITE) {
        v.status = 403;
        v.challenge = CHALLENGE_SCOPE;
        v.detail = "this token is read-only (ro); this route changes data and needs an rw token";
        return v;
    }
    return v;
}

/* ---- loading ------------------------------------------------------------------------- */

/* Stores a token into slot after checking its alphabet and length; 0 or -1 with a message. */
static int slot_set(token_slot *slot, const char *tok, size_t len, auth_access access,
                    const char *where, char *err, size_t err_len)
{
    if (len < AUTH_MIN_TOKEN || len > AUTH_MAX_TOKEN) {
        snprintf(err, err_len, "%s: a token must be %d to %d characters (this one has %zu)", where,
                 AUTH_MIN_TOKEN, AUTH_MAX_TOKEN, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!token_char((unsigned char)tok[i])) {
            snprintf(err, err_len,
                     "%s: a token may hold only A-Z a-z 0-9 - . _ ~ + / = (character %zu is "
                     "not one of them)",
                     where, i + 1);
            return -1;
        }
    }
    memset(slot, 0, sizeof *slot);
    memcpy(slot->bytes, tok, len);
    slot->len = len;
    slot->access = access;
    return 0;
}

/* Opens a secrets file: readable, a regular file, not writable by group or others. */
static FILE *open_secret(const char *path, const char *what, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "%s %s cannot be read: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s %s is not a regular file", what, path);
        fclose(f);
        return NULL;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, err_len, "%s %s is writable by group or others; chmod go-w it", what, path);
        fclose(f);
        return NULL;
    }
    if (st.st_mode & S_IROTH)
        log_event("warn", "%s %s is readable by every user; consider chmod 600", what, path);
    return f;
}

/* Splits a line into words, ignoring a # comment; returns the word count (at most max). */
static size_t split_words(char *line, char **words, size_t max)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    size_t n = 0;
    char *p = line;
    for (;;) {
        while (*p && is_space(*p))
            p++;
        if (!*p)
            break;
        if (n == max)
            return max + 1;
        words[n++] = p;
        while (*p && !is_space(*p))
            p++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

static int load_token_file(auth *a, const char *path, char *err, size_t err_len)
{
    int rc = -1;
    char *line = malloc(AUTH_MAX_LINE + 2);
    FILE *f = open_secret(path, "--token-file", err, err_len);
    size_t cap = 0;
    unsigned lineno = 0;
    if (!f || !line) {
        if (!line)
            snprintf(err, err_len, "out of memory");
        goto done;
    }
    while (fgets(line, AUTH_MAX_LINE + 2, f)) {
        lineno++;
        char where[1200];
        snprintf(where, sizeof where, "--token-file %.1024s line %u", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, err_len, "%s: longer than %d characters", where, AUTH_MAX_LINE);
            goto done;
        }
        char *words[3];
        size_t n = split_words(line, words, 2);
        if (n == 0)
            continue;
        auth_access access = AUTH_NONE;
        if (n == 2 && strcmp(words[0], "rw") == 0)
            access = AUTH_WRITE;
        else if (n == 2 && strcmp(words[0], "ro") == 0)
            access = AUTH_READ;
        if (access == AUTH_NONE) {
            snprintf(err, err_len, "%s: expected 'rw TOKEN' or 'ro TOKEN'", where);
            goto done;
        }
        if (a->count == AUTH_MAX_TOKENS) {
            snprintf(err, err_len, "%s: more than %d tokens", where, AUTH_MAX_TOKENS);
            goto done;
        }
        if (a->count == cap) {
            size_t grown_cap = cap ? cap * 2 : 8;
            token_slot *grown = realloc(a->tokens, grown_cap * sizeof *grown);
            if (!grown) {
                snprintf(err, err_len, "out of memory");
                goto done;
            }
            a->tokens = grown;
            cap = grown_cap;
        }
        token_slot *slot = &a->tokens[a->count];
        if (slot_set(slot, words[1], strlen(words[1]), access, where, err, err_len) != 0)
            goto done;
        for (size_t i = 0; i < a->count; i++) {
            if (a->tokens[i].len == slot->len &&
                memcmp(a->tokens[i].bytes, slot->bytes, slot->len) == 0) {
                snprintf(err, err_len, "%s: the same token as an earlier line", where);
                goto done;
            }
        }
        a->count++;
    }
    if (ferror(f)) {
        snprintf(err, err_len, "--token-file %s: read error", path);
        goto done;
    }
    if (a->count == 0) {
        snprintf(err, err_len, "--token-file %s holds no token ('rw TOKEN' or 'ro TOKEN' lines)",
                 path);
        goto done;
    }
    rc = 0;
done:
    if (line) {
        memset(line, 0, AUTH_MAX_LINE + 2);
        free(line);
    }
    if (f)
        fclose(f);
    return rc;
}

static int load_metrics_token(auth *a, const char *value, char *err, size_t err_len)
{
    struct stat st;
    if (stat(value, &st) != 0) {
        /* Not a file: the token itself. */
        if (slot_set(&a->metrics, value, strlen(value), AUTH_READ, "--metrics-token", err,
                     err_len) != 0)
            return -1;
        a->has_metrics = true;
        return 0;
    }
    char line[AUTH_MAX_LINE + 2];
    int rc = -1;
    FILE *f = open_secret(value, "--metrics-token", err, err_len);
    if (!f)
        return -1;
    snprintf(err, err_len, "--metrics-token %s holds no token", value);
    while (fgets(line, sizeof line, f)) {
        char *words[2];
        size_t n = split_words(line, words, 1);
        if (n == 0)
            continue;
        if (n == 1)
            rc = slot_set(&a->metrics, words[0], strlen(words[0]), AUTH_READ,
                          "--metrics-token file", err, err_len);
        else
            snprintf(err, err_len, "--metrics-token %s: the first line must be the token alone",
                     value);
        break;
    }
    memset(line, 0, sizeof line);
    fclose(f);
    if (rc == 0)
        a->has_metrics = true;
    return rc;
}

int auth_load(const char *token_file, const char *metrics_token, auth **out, char *err,
              size_t err_len)
{
    *out = NULL;
    bool tokens = token_file && *token_file;
    bool metrics = metrics_token && *metrics_token;
    if (!tokens && !metrics)
        return 0;
    auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if ((tokens && load_token_file(a, token_file, err, err_len) != 0) ||
        (metrics && load_metrics_token(a, metrics_token, err, err_len) != 0)) {
        auth_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void auth_free(auth *a)
{
    if (!a)
        return;
    if (a->tokens) {
        memset(a->tokens, 0, a->count * sizeof *a->tokens);
        free(a->tokens);
    }
    memset(a, 0, sizeof *a);
    free(a);
}
