/*
 * safetensors.c - the safetensors reader (Hugging Face's format for tensors without pickle).
 *
 * A file is a little-endian u64 N, N bytes of JSON ({"name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {...}}), then the data section, into
 * which every offset points. The header is untrusted: it is capped at
 * SEGLOSS_SAFETENSORS_MAX_HEADER before cJSON sees it, and every tensor in it is checked, not
 * just the ones segloss reads, the way the reference implementation validates a file: shapes
 * are arrays of non-negative integers, offsets lie inside the data section, end - begin equals
 * elements x dtype size, and the tensors tile the data section without overlap or holes. Only
 * then are "logits" and "mask"/"labels" handed out as views (copied when misaligned).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decode_internal.h"
#include "segloss/decode.h"
#include "segloss/errors.h"

/* More dimensions than any real tensor has; only bounds the work spent on a hostile header. */
#define ST_MAX_ANY_RANK 64

typedef struct st_dtype_entry {
    const char *name;
    size_t size;         /* bytes per element; 0 when elements are not whole bytes */
    segloss_dtype dtype; /* SEGLOSS_DTYPE_NONE: known to safetensors, not used by segloss */
} st_dtype_entry;

/* Every dtype safetensors defines, so other tensors in the file can be validated too. */
static const st_dtype_entry st_dtypes[] = {
    {"F32", 4, SEGLOSS_F32},
    {"F16", 2, SEGLOSS_F16},
    {"BF16", 2, SEGLOSS_BF16},
    {"F64", 8, SEGLOSS_F64},
    {"U8", 1, SEGLOSS_U8},
    {"I8", 1, SEGLOSS_I8},
    {"U16", 2, SEGLOSS_U16},
    {"I32", 4, SEGLOSS_I32},
    {"I64", 8, SEGLOSS_I64},
    {"BOOL", 1, SEGLOSS_DTYPE_NONE},
    {"I16", 2, SEGLOSS_DTYPE_NONE},
    {"U32", 4, SEGLOSS_DTYPE_NONE},
    {"U64", 8, SEGLOSS_DTYPE_NONE},
    {"F8_E4M3", 1, SEGLOSS_DTYPE_NONE},
    {"F8_E5M2", 1, SEGLOSS_DTYPE_NONE},
    {"E8M0", 1, SEGLOSS_DTYPE_NONE},
};

typedef struct st_tensor {
    const char *name; /* points into the cJSON tree */
    const st_dtype_entry *dtype;
    int rank;
    size_t shape[SEGLOSS_MAX_RANK]; /* filled only up to SEGLOSS_MAX_RANK */
    size_t elements;
    size_t begin, end;
} st_tensor;

/* A JSON number that is an integer in [0, 2^53] (beyond that doubles lose integers). */
static int json_size(const cJSON *item, size_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (!(v >= 0.0) || v > 9007199254740992.0 || floor(v) != v)
        return -1;
    *out = (size_t)v;
    return 0;
}

static const st_dtype_entry *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (strcmp(name, st_dtypes[i].name) == 0)
            return &st_dtypes[i];
    }
    return NULL;
}

/* Reads and checks one tensor entry (not yet against the data section). */
static int parse_tensor(const cJSON *entry, st_tensor *t, char *detail, size_t detail_len)
{
    const char *name = entry->string;
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    const cJSON *dim;

    memset(t, 0, sizeof *t);
    t->name = name;
    if (!cJSON_IsObject(entry) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) ||
        !cJSON_IsArray(offsets))
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "safetensors tensor '%.64s' lacks a string 'dtype', an array "
                            "'shape' or an array 'data_offsets'",
                            name);
    t->dtype = find_dtype(dtype->valuestring);
    if (!t->dtype)
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "safetensors tensor '%.64s' has unknown dtype '%.32s'", name,
                            dtype->valuestring);
    t->elements = 1;
    cJSON_ArrayForEach (dim, shape) {
        size_t d;
        if (json_size(dim, &d) != 0)
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                "safetensors tensor '%.64s': shape holds something other "
                                "than non-negative integers",
                                name);
        if (t->rank == ST_MAX_ANY_RANK)
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                "safetensors tensor '%.64s' has more than %d dimensions", name,
                                ST_MAX_ANY_RANK);
        if (t->rank < SEGLOSS_MAX_RANK)
            t->shape[t->rank] = d;
        t->rank++;
        if (segloss_mul_size(t->elements, d, &t->elements) != 0)
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                "safetensors tensor '%.64s': shape overflows", name);
    }
    if (cJSON_GetArraySize(offsets) != 2 || json_size(offsets->child, &t->begin) != 0 ||
        json_size(offsets->child->next, &t->end) != 0 || t->end < t->begin)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "safetensors tensor '%.64s': data_offsets must be [begin, end] "
                            "with 0 <= begin <= end",
                            name);
    size_t need;
    if (segloss_mul_size(t->elements, t->dtype->size, &need) != 0 || need != t->end - t->begin)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "safetensors tensor '%.64s' has %zu bytes of data; its shape "
                            "of %s needs %zu x %zu",
                            name, t->end - t->begin, t->dtype->name, t->elements, t->dtype->size);
    return 0;
}

static int compare_begin(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Hands one checked tensor out as a segloss_tensor in the role's dtype and rank. */
static int export_tensor(const st_tensor *t, segloss_tensor_role role, const uint8_t *data,
                         const segloss_limits *limits, segloss_tensor *out, void **owned,
                         char *detail, size_t detail_len)
{
    char what[96];
    size_t elements;
    int logits = role == SEGLOSS_ROLE_LOGITS;
    segloss_dtype d = t->dtype->dtype;
    int fits = logits ? segloss_dtype_is_float(d)
                      : (d != SEGLOSS_DTYPE_NONE && !segloss_dtype_is_float(d));

    if (!fits)
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "safetensors tensor '%s' is %s; %s", t->name, t->dtype->name,
                            logits ? "logits must be F32, F16, BF16 or F64"
                                   : "masks must be U8, I8, U16, I32 or I64 class indices");
    snprintf(what, sizeof what, "safetensors tensor '%s'", t->name);
    if (t->rank > SEGLOSS_MAX_RANK)
        return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE, "%s has %d dimensions; %s", what,
                            t->rank,
                            logits ? "logits must be (N, C, H, W) or (C, H, W)"
                                   : "masks must be (N, H, W) or (H, W)");
    int rc =
        segloss__check_shape(what, role, t->shape, t->rank, limits, &elements, detail, detail_len);
    if (rc != 0)
        return rc;
    rc = segloss__view_or_copy(data + t->begin, t->end - t->begin, t->dtype->size, &out->data,
                               owned, detail, detail_len);
    if (rc != 0)
        return rc;
    out->dtype = d;
    out->rank = t->rank;
    memcpy(out->shape, t->shape, sizeof out->shape);
    return 0;
}

int segloss_safetensors_decode(const void *buf, size_t len, const segloss_limits *limits,
                               segloss_tensor *logits, void **owned_logits, segloss_tensor *labels,
                               void **owned_labels, char *detail, size_t detail_len)
{
    const uint8_t *bytes = buf;
    cJSON *root = NULL;
    st_tensor *tensors = NULL;
    size_t count = 0, header_len = 0, data_len;
    const st_tensor *want_logits = NULL, *want_labels = NULL;
    const char *parse_end = NULL;
    int rc = 0;

    if (owned_logits)
        *owned_logits = NULL;
    if (owned_labels)
        *owned_labels = NULL;
    if (!logits || !owned_logits || !limits || (labels && !owned_labels) || (!buf && len))
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "safetensors_decode: NULL argument");
    memset(logits, 0, sizeof *logits);
    if (labels)
        memset(labels, 0, sizeof *labels);

    if (len < 8)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "safetensors file is %zu bytes; even the header length needs 8", len);
    uint64_t declared = 0;
    for (int i = 7; i >= 0; i--)
        declared = declared << 8 | bytes[i];
    if (declared > SEGLOSS_SAFETENSORS_MAX_HEADER)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "safetensors header length is %llu bytes; at most %zu are accepted",
                            (unsigned long long)declared, (size_t)SEGLOSS_SAFETENSORS_MAX_HEADER);
    header_len = (size_t)declared;
    if (header_len > len - 8)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "safetensors header says %zu bytes but only %zu follow "
                            "(truncated upload?)",
                            header_len, len - 8);
    data_len = len - 8 - header_len;

    root = cJSON_ParseWithLengthOpts((const char *)bytes + 8, header_len, &parse_end, 0);
    if (!root || !cJSON_IsObject(root)) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                          "safetensors header is not a JSON object");
        goto done;
    }
    /* The format pads the header with spaces to 8 bytes; anything else after it is junk. */
    for (const char *p = parse_end; p < (const char *)bytes + 8 + header_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                              "safetensors header has bytes after its JSON object");
            goto done;
        }
    }

    int n = cJSON_GetArraySize(root);
    tensors = calloc(n > 0 ? (size_t)n : 1, sizeof *tensors);
    if (!tensors) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                          "out of memory reading a safetensors header");
        goto done;
    }
    const cJSON *entry;
    int n_logits = 0, n_labels = 0;
    cJSON_ArrayForEach (entry, root) {
        if (entry->string && strcmp(entry->string, "__metadata__") == 0)
            continue;
        rc = parse_tensor(entry, &tensors[count], detail, detail_len);
        if (rc != 0)
            goto done;
        if (tensors[count].end > data_len) {
            rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                              "safetensors tensor '%.64s' ends at byte %zu of a %zu-byte data "
                              "section (truncated upload?)",
                              entry->string, tensors[count].end, data_len);
            goto done;
        }
        if (strcmp(entry->string, "logits") == 0)
            n_logits++;
        if (strcmp(entry->string, "mask") == 0 || strcmp(entry->string, "labels") == 0)
            n_labels++;
        count++;
    }
    if (n_logits > 1 || n_labels > 1) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                          "safetensors header names %s more than once",
                          n_logits > 1 ? "'logits'" : "a mask ('mask' or 'labels')");
        goto done;
    }

    /* Sorted by begin, the tensors must tile [0, data_len) exactly. */
    qsort(tensors, count, sizeof *tensors, compare_begin);
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        if (tensors[i].begin != at) {
            rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                              "safetensors tensor '%.64s' starts at byte %zu, expected %zu "
                              "(tensors %s)",
                              tensors[i].name, tensors[i].begin, at,
                              tensors[i].begin < at ? "overlap" : "leave a hole");
            goto done;
        }
        at = tensors[i].end;
        if (strcmp(tensors[i].name, "logits") == 0)
            want_logits = &tensors[i];
        else if (strcmp(tensors[i].name, "mask") == 0 || strcmp(tensors[i].name, "labels") == 0)
            want_labels = &tensors[i];
    }
    if (at != data_len) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                          "safetensors data section is %zu bytes but its tensors cover %zu",
                          data_len, at);
        goto done;
    }
    if (!want_logits) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                          "safetensors file has no tensor named 'logits' (%zu other tensor%s)",
                          count, count == 1 ? "" : "s");
        goto done;
    }

    const uint8_t *data = bytes + 8 + header_len;
    rc = export_tensor(want_logits, SEGLOSS_ROLE_LOGITS, data, limits, logits, owned_logits, detail,
                       detail_len);
    if (rc == 0 && labels && want_labels)
        rc = export_tensor(want_labels, SEGLOSS_ROLE_LABELS, data, limits, labels, owned_labels,
                           detail, detail_len);

done:
    if (rc != 0) {
        free(*owned_logits);
        *owned_logits = NULL;
        memset(logits, 0, sizeof *logits);
        if (labels) {
            free(*owned_labels);
            *owned_labels = NULL;
            memset(labels, 0, sizeof *labels);
        }
    }
    free(tensors);
    cJSON_Delete(root);
    return rc;
}
