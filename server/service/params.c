/*
 * params.c - parses and checks the evaluation parameters from JSON and from the query string.
 *
 * Both sources end in the same setters (set_number, set_weights, ...), so the rules and the
 * messages are the same whichever way a client sends a key.
 */
#include "service/params.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/names.h"
#include "base/text.h"
#include "segloss/limits.h"

/* The largest integer every JSON reader keeps exactly (a double's 53 bits; JavaScript's
 * Number.MAX_SAFE_INTEGER): the dashboard and most clients read step as a double. */
#define PARAMS_MAX_STEP INT64_C(9007199254740991)

static const char *const key_names[PARAMS_KEY_COUNT] = {
    [PARAMS_CLASS_WEIGHTS] = "class_weights",
    [PARAMS_ALPHA] = "alpha",
    [PARAMS_GAMMA] = "gamma",
    [PARAMS_BETA] = "beta",
    [PARAMS_SMOOTH] = "smooth",
    [PARAMS_THRESHOLD] = "threshold",
    [PARAMS_MAIN_LOSS] = "main_loss",
    [PARAMS_DICE_LOSS] = "dice_loss",
    [PARAMS_NUM_CLASSES] = "num_classes",
    [PARAMS_SEMANTICS] = "semantics",
    [PARAMS_CONFUSION_MATRIX] = "confusion_matrix",
    [PARAMS_RUN] = "run",
    [PARAMS_STEP] = "step",
    [PARAMS_SPLIT] = "split",
    [PARAMS_CLASS_NAMES] = "class_names",
};

#define KNOWN_KEYS                                                                                 \
    "class_weights, alpha, gamma, beta, smooth, threshold, main_loss, dice_loss, "                 \
    "num_classes, semantics, confusion_matrix, run, step, split, class_names"

const char *params_key_name(params_key key)
{
    return (unsigned)key < PARAMS_KEY_COUNT ? key_names[key] : NULL;
}

static int find_key(const char *name)
{
    for (int k = 0; k < PARAMS_KEY_COUNT; k++)
        if (strcmp(key_names[k], name) == 0)
            return k;
    return -1;
}

void params_init(params_request *p)
{
    memset(p, 0, sizeof *p);
    segloss_params_default(&p->loss);
    p->max_classes = SEGLOSS_MAX_CLASSES;
}

void params_free(params_request *p)
{
    if (!p)
        return;
    free(p->class_weights);
    free(p->alpha_values);
    free(p->run);
    free(p->split);
    free(p->class_names_json);
    params_init(p);
}

/* ---- setters shared by both sources ---------------------------------------------------- */

static int set_number(params_request *p, params_key key, double v, char *detail, size_t dl)
{
    const char *name = key_names[key];
    switch (key) {
    case PARAMS_GAMMA:
    case PARAMS_SMOOTH:
        if (!isfinite(v) || v < 0)
            return detail_fail(detail, dl, 400, "%s must be a number >= 0", name);
        if (key == PARAMS_GAMMA)
            p->loss.gamma = v;
        else
            p->loss.smooth = v;
        return 0;
    case PARAMS_BETA:
        if (!isfinite(v) || v <= 0)
            return detail_fail(detail, dl, 400, "beta must be a number > 0");
        p->loss.beta = v;
        return 0;
    case PARAMS_THRESHOLD:
        if (!isfinite(v) || v < 0 || v > 1)
            return detail_fail(detail, dl, 400, "threshold must be a number from 0 to 1");
        p->loss.threshold = v;
        return 0;
    case PARAMS_ALPHA:
        if (!isfinite(v) || v < 0 || v > SEGLOSS_MAX_WEIGHT)
            return detail_fail(detail, dl, 400,
                               "alpha must be null, a number from 0 to %g, or a list",
                               SEGLOSS_MAX_WEIGHT);
        p->loss.alpha_kind = SEGLOSS_ALPHA_SCALAR;
        p->loss.alpha = v;
        return 0;
    default: return detail_fail(detail, dl, 400, "%s must not be a number", name);
    }
}

/*
 * num_classes and step, from their text in the query string or the params part: parsed as
 * integers, never through a double (which rounds 9007199254740993 to ...992 without a word).
 * An optional fraction of zeros is allowed ("42.0", as a float counter prints); exponents and
 * anything else are not.
 */
static int set_integer(params_request *p, params_key key, const char *text, size_t len,
                       char *detail, size_t dl)
{
    int64_t min = key == PARAMS_STEP ? 0 : 1;
    int64_t max = key == PARAMS_STEP ? PARAMS_MAX_STEP : (int64_t)p->max_classes;
    bool negative = len > 0 && text[0] == '-';
    size_t i = negative, digits = 0;
    uint64_t v = 0;
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++, digits++)
        if (v <= (uint64_t)max) /* saturates far above max: stays out of range */
            v = v * 10 + (uint64_t)(text[i] - '0');
    if (i < len && text[i] == '.') {
        for (i++; i < len && text[i] == '0'; i++)
            ;
    }
    bool ok =
        digits > 0 && i == len && !(negative && v != 0) && v >= (uint64_t)min && v <= (uint64_t)max;
    if (!ok) {
        char shown[40], echo[TEXT_ECHO_SIZE(32)]; /* the text is not NUL-terminated */
        size_t shown_len = len < sizeof shown - 1 ? len : sizeof shown - 1;
        memcpy(shown, text, shown_len);
        shown[shown_len] = '\0';
        return detail_fail(detail, dl, 400, "%s must be an integer from %lld to %lld, not '%s'",
                           key_names[key], (long long)min, (long long)max,
                           text_echo(echo, sizeof echo, shown, 32));
    }
    if (key == PARAMS_STEP) {
        p->has_step = true;
        p->step = (int64_t)v;
    } else {
        p->has_num_classes = true;
        p->num_classes = (size_t)v;
    }
    return 0;
}

/* One element of class_weights or alpha: the message names the index. */
static int check_element(params_key key, size_t i, double v, char *detail, size_t dl)
{
    if (!isfinite(v) || v < 0 || v > SEGLOSS_MAX_WEIGHT)
        return detail_fail(detail, dl, 400, "%s[%zu] must be a number >= 0 (and at most %g)",
                           key_names[key], i, SEGLOSS_MAX_WEIGHT);
    return 0;
}

/* Takes ownership of values (malloc'ed, n elements, already checked). */
static void set_array(params_request *p, params_key key, double *values, size_t n)
{
    if (key == PARAMS_CLASS_WEIGHTS) {
        free(p->class_weights);
        p->class_weights = values;
        p->class_weights_len = n;
        p->loss.class_weights = values;
        p->loss.class_weights_len = n;
    } else {
        free(p->alpha_values);
        p->alpha_values = values;
        p->alpha_len = n;
        p->loss.alpha_kind = SEGLOSS_ALPHA_PER_CLASS;
        p->loss.alpha_per_class = values;
        p->loss.alpha_len = n;
    }
}

static int set_word(params_request *p, params_key key, const char *s, char *detail, size_t dl)
{
    switch (key) {
    case PARAMS_MAIN_LOSS:
        if (strcmp(s, "ce") == 0)
            p->loss.main_loss = SEGLOSS_MAIN_CE;
        else if (strcmp(s, "focal") == 0)
            p->loss.main_loss = SEGLOSS_MAIN_FOCAL;
        else
            return detail_fail(detail, dl, 400, "main_loss must be \"ce\" or \"focal\"");
        return 0;
    case PARAMS_SEMANTICS:
        if (strcmp(s, "seed") == 0)
            p->loss.semantics = SEGLOSS_SEED;
        else if (strcmp(s, "standard") == 0)
            p->loss.semantics = SEGLOSS_STANDARD;
        else
            return detail_fail(detail, dl, 400, "semantics must be \"seed\" or \"standard\"");
        return 0;
    case PARAMS_RUN:
    case PARAMS_SPLIT: {
        size_t max = key == PARAMS_RUN ? PARAMS_MAX_RUN_LEN : PARAMS_MAX_SPLIT_LEN;
        if (!names_new_ok(s, max))
            return detail_fail(detail, dl, 400,
                               "%s must be 1 to %zu characters of A-Z a-z 0-9 . _ - (not starting "
                               "with '.')",
                               key_names[key], max);
        char *copy = strdup(s);
        if (!copy)
            return detail_fail(detail, dl, 503, "out of memory");
        char **slot = key == PARAMS_RUN ? &p->run : &p->split;
        free(*slot);
        *slot = copy;
        return 0;
    }
    default: return detail_fail(detail, dl, 400, "%s must not be a string", key_names[key]);
    }
}

static int set_bool(params_request *p, params_key key, bool v, char *detail, size_t dl)
{
    if (key == PARAMS_DICE_LOSS)
        p->loss.dice_loss = v;
    else if (key == PARAMS_CONFUSION_MATRIX)
        p->confusion_matrix = v;
    else
        return detail_fail(detail, dl, 400, "%s must not be true or false", key_names[key]);
    return 0;
}

/* What a key takes, for the messages of wrongly typed values. */
static const char *expected_type(params_key key)
{
    switch (key) {
    case PARAMS_CLASS_WEIGHTS: return "a list of numbers >= 0, one per class";
    case PARAMS_ALPHA: return "null, a number >= 0, or a list of numbers >= 0, one per class";
    case PARAMS_GAMMA:
    case PARAMS_SMOOTH: return "a number >= 0";
    case PARAMS_BETA: return "a number > 0";
    case PARAMS_THRESHOLD: return "a number from 0 to 1";
    case PARAMS_MAIN_LOSS: return "\"ce\" or \"focal\"";
    case PARAMS_SEMANTICS: return "\"seed\" or \"standard\"";
    case PARAMS_DICE_LOSS:
    case PARAMS_CONFUSION_MATRIX: return "true or false";
    case PARAMS_NUM_CLASSES: return "an integer >= 1";
    case PARAMS_STEP: return "an integer >= 0";
    case PARAMS_RUN:
    case PARAMS_SPLIT: return "a string";
    case PARAMS_CLASS_NAMES: return "an array of strings";
    default: return "a valid value";
    }
}

/* Records that key came from a source; 400 when it came from the other one or twice. */
static int mark_given(params_request *p, params_key key, bool from_json, char *detail, size_t dl)
{
    uint32_t bit = (uint32_t)1 << key;
    uint32_t *mine = from_json ? &p->given_json : &p->given_query;
    uint32_t other = from_json ? p->given_query : p->given_json;
    if (other & bit)
        return detail_fail(detail, dl, 400,
                           "%s was given both in the query string and in the params part; give it "
                           "once",
                           key_names[key]);
    if (*mine & bit)
        return detail_fail(detail, dl, 400, "%s was given twice in the %s; give it once",
                           key_names[key], from_json ? "params part" : "query string");
    *mine |= bit;
    return 0;
}

/* ---- query string ---------------------------------------------------------------------- */

/* Strict decimal number: the whole string, nothing else. */
static bool parse_double(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789+-.eE", buf[i]))
            return false; /* refuses "nan", "inf", hex and whitespace */
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || !end || *end)
        return false;
    *out = v;
    return true;
}

static int query_list(params_request *p, params_key key, const char *value, char *detail, size_t dl)
{
    size_t n = 1;
    for (const char *c = value; *c; c++)
        n += *c == ',';
    if (n > p->max_classes)
        return detail_fail(detail, dl, 400, "%s has %zu values; at most %zu classes are supported",
                           key_names[key], n, p->max_classes);
    double *values = calloc(n, sizeof *values);
    if (!values)
        return detail_fail(detail, dl, 503, "out of memory");
    const char *s = value;
    for (size_t i = 0; i < n; i++) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        int rc = 0;
        if (!parse_double(s, len, &values[i])) {
            char shown[40], echo[TEXT_ECHO_SIZE(32)];
            size_t shown_len = len < sizeof shown - 1 ? len : sizeof shown - 1;
            memcpy(shown, s, shown_len);
            shown[shown_len] = '\0';
            rc = detail_fail(detail, dl, 400, "%s[%zu] must be a number >= 0, not '%s'",
                             key_names[key], i, text_echo(echo, sizeof echo, shown, 32));
        } else
            rc = check_element(key, i, values[i], detail, dl);
        if (rc) {
            free(values);
            return rc;
        }
        s = comma ? comma + 1 : s + len;
    }
    set_array(p, key, values, n);
    return 0;
}

/* class_names: C names of 1 to PARAMS_MAX_CLASS_NAME_LEN characters of printable UTF-8, kept
 * as a JSON array for the runs store (the dashboard labels its bars with them). */
static int set_class_names(params_request *p, const char *const *names, size_t n, char *detail,
                           size_t dl)
{
    if (n == 0 || n > p->max_classes)
        return detail_fail(detail, dl, 400, "class_names must list 1 to %zu names", p->max_classes);
    cJSON *array = cJSON_CreateArray();
    if (!array)
        return detail_fail(detail, dl, 503, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        bool ok = text_printable(names[i], len);
        size_t chars = ok ? text_utf8_length(names[i], len) : 0;
        if (!ok || chars < 1 || chars > PARAMS_MAX_CLASS_NAME_LEN) {
            char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
            cJSON_Delete(array);
            return detail_fail(
                detail, dl, 400,
                "class_names[%zu] must be 1 to %d printable characters of UTF-8, not "
                "'%s'",
                i, PARAMS_MAX_CLASS_NAME_LEN,
                text_echo(echo, sizeof echo, names[i], TEXT_ECHO_MAX));
        }
        cJSON_AddItemToArray(array, cJSON_CreateString(names[i]));
    }
    char *json = cJSON_PrintUnformatted(array);
    cJSON_Delete(array);
    if (!json)
        return detail_fail(detail, dl, 503, "out of memory");
    free(p->class_names_json);
    p->class_names_json = json;
    p->class_names_len = n;
    return 0;
}

static int json_class_names(params_request *p, const cJSON *item, char *detail, size_t dl)
{
    int n = cJSON_GetArraySize(item);
    const char **names = calloc(n > 0 ? (size_t)n : 1, sizeof *names);
    if (!names)
        return detail_fail(detail, dl, 503, "out of memory");
    size_t i = 0;
    const cJSON *el;
    cJSON_ArrayForEach (el, item) {
        if (!cJSON_IsString(el)) {
            free(names);
            return detail_fail(detail, dl, 400, "class_names[%zu] must be a string", i);
        }
        names[i++] = el->valuestring;
    }
    int rc = set_class_names(p, names, i, detail, dl);
    free(names);
    return rc;
}

/* class_names=a,b,c in the query string. */
static int query_class_names(params_request *p, const char *value, char *detail, size_t dl)
{
    char *copy = strdup(value);
    size_t cap = 1;
    for (const char *c = value; *c; c++)
        cap += *c == ',';
    const char **names = calloc(cap, sizeof *names);
    if (!copy || !names) {
        free(copy);
        free(names);
        return detail_fail(detail, dl, 503, "out of memory");
    }
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        names[n++] = tok;
    int rc = set_class_names(p, names, n, detail, dl);
    free(names);
    free(copy);
    return rc;
}

int params_set_query(params_request *p, const char *key, const char *value, char *detail,
                     size_t detail_len)
{
    char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
    int k = find_key(key);
    if (k < 0)
        return detail_fail(detail, detail_len, 400,
                           "unknown parameter '%s' in the query string; known: " KNOWN_KEYS,
                           text_echo(echo, sizeof echo, key, TEXT_ECHO_MAX));
    int rc = mark_given(p, (params_key)k, false, detail, detail_len);
    if (rc)
        return rc;
    if (!value)
        value = "";
    if (!text_utf8_valid(value, strlen(value)))
        return detail_fail(detail, detail_len, 400, "%s is not valid UTF-8: '%s'", key,
                           text_echo(echo, sizeof echo, value, TEXT_ECHO_MAX));
    double v = 0;
    switch ((params_key)k) {
    case PARAMS_CLASS_NAMES: return query_class_names(p, value, detail, detail_len);
    case PARAMS_CLASS_WEIGHTS: return query_list(p, (params_key)k, value, detail, detail_len);
    case PARAMS_ALPHA:
        if (strcmp(value, "null") == 0 || strcmp(value, "none") == 0) {
            p->loss.alpha_kind = SEGLOSS_ALPHA_NONE;
            return 0;
        }
        if (strchr(value, ','))
            return query_list(p, (params_key)k, value, detail, detail_len);
        __attribute__((fallthrough)); /* one number */
    case PARAMS_GAMMA:
    case PARAMS_BETA:
    case PARAMS_SMOOTH:
    case PARAMS_THRESHOLD:
        if (!parse_double(value, strlen(value), &v))
            return detail_fail(detail, detail_len, 400, "%s must be %s, not '%s'", key,
                               expected_type((params_key)k),
                               text_echo(echo, sizeof echo, value, 32));
        return set_number(p, (params_key)k, v, detail, detail_len);
    case PARAMS_NUM_CLASSES:
    case PARAMS_STEP:
        return set_integer(p, (params_key)k, value, strlen(value), detail, detail_len);
    case PARAMS_DICE_LOSS:
    case PARAMS_CONFUSION_MATRIX:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            return set_bool(p, (params_key)k, true, detail, detail_len);
        if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            return set_bool(p, (params_key)k, false, detail, detail_len);
        return detail_fail(detail, detail_len, 400, "%s must be true or false, not '%s'", key,
                           text_echo(echo, sizeof echo, value, 32));
    default: return set_word(p, (params_key)k, value, detail, detail_len);
    }
}

/* ---- JSON part ------------------------------------------------------------------------- */

static int json_list(params_request *p, params_key key, const cJSON *arr, char *detail, size_t dl)
{
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0)
        return detail_fail(detail, dl, 400, "%s must have one number per class, not be empty",
                           key_names[key]);
    if (n > p->max_classes)
        return detail_fail(detail, dl, 400, "%s has %zu values; at most %zu classes are supported",
                           key_names[key], n, p->max_classes);
    double *values = calloc(n, sizeof *values);
    if (!values)
        return detail_fail(detail, dl, 503, "out of memory");
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach (item, arr) {
        int rc = 0;
        if (!cJSON_IsNumber(item) || cJSON_IsBool(item))
            rc = detail_fail(detail, dl, 400, "%s[%zu] must be a number >= 0", key_names[key], i);
        else
            rc = check_element(key, i, item->valuedouble, detail, dl);
        if (rc) {
            free(values);
            return rc;
        }
        values[i++] = item->valuedouble;
    }
    set_array(p, key, values, n);
    return 0;
}

/* item is the value of key; raw[0..raw_len) its text in the part. */
static int json_value(params_request *p, params_key key, const cJSON *item, const char *raw,
                      size_t raw_len, char *detail, size_t dl)
{
    const char *name = key_names[key];
    switch (key) {
    case PARAMS_CLASS_NAMES:
        if (!cJSON_IsArray(item))
            break;
        return json_class_names(p, item, detail, dl);
    case PARAMS_CLASS_WEIGHTS:
        if (!cJSON_IsArray(item))
            break;
        return json_list(p, key, item, detail, dl);
    case PARAMS_ALPHA:
        if (cJSON_IsNull(item)) {
            p->loss.alpha_kind = SEGLOSS_ALPHA_NONE;
            return 0;
        }
        if (cJSON_IsArray(item))
            return json_list(p, key, item, detail, dl);
        if (!cJSON_IsNumber(item))
            break;
        return set_number(p, key, item->valuedouble, detail, dl);
    case PARAMS_GAMMA:
    case PARAMS_BETA:
    case PARAMS_SMOOTH:
    case PARAMS_THRESHOLD:
        if (!cJSON_IsNumber(item))
            break;
        return set_number(p, key, item->valuedouble, detail, dl);
    case PARAMS_NUM_CLASSES:
    case PARAMS_STEP:
        if (!cJSON_IsNumber(item))
            break;
        return set_integer(p, key, raw, raw_len, detail, dl);
    case PARAMS_DICE_LOSS:
    case PARAMS_CONFUSION_MATRIX:
        if (!cJSON_IsBool(item))
            break;
        return set_bool(p, key, cJSON_IsTrue(item), detail, dl);
    case PARAMS_MAIN_LOSS:
    case PARAMS_SEMANTICS:
    case PARAMS_RUN:
    case PARAMS_SPLIT:
        if (!cJSON_IsString(item))
            break;
        return set_word(p, key, item->valuestring, detail, dl);
    default: break;
    }
    return detail_fail(detail, dl, 400, "%s must be %s", name, expected_type(key));
}

/*
 * A cursor over the text of the params object cJSON has already accepted, to read the
 * members' values as written (cJSON keeps numbers only as doubles). Members come in the
 * order cJSON lists them.
 */
static const char *skip_space(const char *c, const char *end)
{
    while (c < end && (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n'))
        c++;
    return c;
}

static const char *skip_string(const char *c, const char *end)
{
    for (c++; c < end && *c != '"'; c++)
        if (*c == '\\')
            c++;
    return c < end ? c + 1 : end;
}

static const char *skip_value(const char *c, const char *end)
{
    int depth = 0;
    while (c < end) {
        if (*c == '"') {
            c = skip_string(c, end);
            if (depth == 0)
                return c;
            continue;
        }
        if (*c == '[' || *c == '{') {
            depth++;
        } else if (*c == ']' || *c == '}') {
            if (depth == 0)
                return c; /* the close of the params object after a number */
            if (--depth == 0)
                return c + 1;
        } else if (depth == 0 &&
                   (*c == ',' || *c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')) {
            return c;
        }
        c++;
    }
    return c;
}

/* From just after '{' or a member's value: the next member's value span; the cursor moves
 * past it. */
static void next_member(const char **cursor, const char *end, const char **value, size_t *len)
{
    const char *c = skip_space(*cursor, end);
    if (c < end && *c == ',')
        c = skip_space(c + 1, end);
    c = skip_space(skip_string(c, end), end); /* the key */
    if (c < end && *c == ':')
        c = skip_space(c + 1, end);
    *value = c;
    c = skip_value(c, end);
    *len = (size_t)(c - *value);
    *cursor = c;
}

/* The offset of the first \u0000 escape inside a string of the text, or len: cJSON would cut
 * the string there ("a\u0000b" becoming "a"). */
static size_t escaped_nul(const char *json, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '"') {
            in_string = !in_string;
        } else if (in_string && json[i] == '\\') {
            if (i + 5 < len && json[i + 1] == 'u' && memcmp(json + i + 2, "0000", 4) == 0)
                return i;
            i++;
        }
    }
    return len;
}

int params_set_json(params_request *p, const char *json, size_t len, size_t max_bytes, char *detail,
                    size_t detail_len)
{
    int rc = 0;
    cJSON *root = NULL;
    if (len > max_bytes)
        return detail_fail(detail, detail_len, 413,
                           "the params part has %zu bytes; the limit is %zu", len, max_bytes);
    if (!json || len == 0)
        return detail_fail(
            detail, detail_len, 400,
            "the params part is empty; send a JSON object such as {\"gamma\": 2}, or "
            "leave the part out for the defaults");
    if (memchr(json, '\0', len))
        return detail_fail(detail, detail_len, 400, "the params part contains a NUL byte");
    size_t utf8 = text_utf8_prefix(json, len);
    if (utf8 < len)
        return detail_fail(detail, detail_len, 400,
                           "the params part is not valid UTF-8 (byte %zu); send its text in UTF-8",
                           utf8);
    size_t nul = escaped_nul(json, len);
    if (nul < len)
        return detail_fail(detail, detail_len, 400,
                           "the params part has a \\u0000 escape in a string (byte %zu); names and "
                           "values may not contain NUL",
                           nul);
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        rc = detail_fail(detail, detail_len, 400,
                         "the params part is not valid JSON (error near byte %zu)", at);
        goto done;
    }
    for (const char *c = end; c && c < json + len; c++) {
        if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n') {
            rc = detail_fail(detail, detail_len, 400,
                             "the params part has text after the JSON object (byte %zu)",
                             (size_t)(c - json));
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = detail_fail(detail, detail_len, 400,
                         "the params part must be a JSON object, e.g. {\"gamma\": 2}");
        goto done;
    }
    const cJSON *item;
    const char *cursor = skip_space(json, json + len) + 1; /* after '{' */
    cJSON_ArrayForEach (item, root) {
        const char *raw;
        size_t raw_len;
        next_member(&cursor, json + len, &raw, &raw_len);
        int k = find_key(item->string ? item->string : "");
        if (k < 0) {
            char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
            rc = detail_fail(
                detail, detail_len, 400, "unknown parameter '%s' in params; known: " KNOWN_KEYS,
                text_echo(echo, sizeof echo, item->string ? item->string : "", TEXT_ECHO_MAX));
            goto done;
        }
        rc = mark_given(p, (params_key)k, true, detail, detail_len);
        if (rc)
            goto done;
        rc = json_value(p, (params_key)k, item, raw, raw_len, detail, detail_len);
        if (rc)
            goto done;
    }
done:
    cJSON_Delete(root);
    return rc;
}

int params_check_classes(const params_request *p, size_t num_classes, char *detail,
                         size_t detail_len)
{
    if (p->has_num_classes && p->num_classes != num_classes)
        return detail_fail(detail, detail_len, 422,
                           "num_classes is %zu but the logits have %zu classes (axis 1 of N,C,H,W)",
                           p->num_classes, num_classes);
    if (p->class_weights && p->class_weights_len != num_classes)
        return detail_fail(detail, detail_len, 422,
                           "class_weights has %zu values but the logits have %zu classes; give one "
                           "weight per class",
                           p->class_weights_len, num_classes);
    if (p->class_names_json && p->class_names_len != num_classes)
        return detail_fail(
            detail, detail_len, 422,
            "class_names has %zu names but the logits have %zu classes; give one name "
            "per class",
            p->class_names_len, num_classes);
    if (p->loss.alpha_kind == SEGLOSS_ALPHA_PER_CLASS && p->alpha_len != num_classes)
        return detail_fail(detail, detail_len, 422,
                           "alpha has %zu values but the logits have %zu classes; give one number, "
                           "null, or one value per class",
                           p->alpha_len, num_classes);
    char lib_detail[256] = "";
    int code = segloss_params_check(&p->loss, num_classes, lib_detail, sizeof lib_detail);
    if (code != 0)
        return detail_fail(detail, detail_len, 422, "%s",
                           lib_detail[0] ? lib_detail : "invalid parameters");
    return 0;
}
