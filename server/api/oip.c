/*
 * oip.c - Open Inference Protocol v2 requests and answers (see oip.h).
 */
#include "api/oip.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/aligned.h"
#include "base/detail.h"
#include "base/json_writer.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "binary tensors are read and written in place: little-endian hosts only"
#endif

/* Integers a JSON double holds exactly. */
#define OIP_MAX_EXACT_INT 9007199254740992.0

/* ---- datatypes ------------------------------------------------------------------------ */

typedef struct oip_type {
    const char *name;
    segloss_dtype dtype; /* SEGLOSS_DTYPE_NONE: a protocol type segloss takes nowhere */
} oip_type;

static const oip_type types[] = {
    {"FP32", SEGLOSS_F32},         {"FP16", SEGLOSS_F16},          {"BF16", SEGLOSS_BF16},
    {"FP64", SEGLOSS_F64},         {"UINT8", SEGLOSS_U8},          {"INT8", SEGLOSS_I8},
    {"UINT16", SEGLOSS_U16},       {"INT32", SEGLOSS_I32},         {"INT64", SEGLOSS_I64},
    {"BOOL", SEGLOSS_DTYPE_NONE},  {"UINT32", SEGLOSS_DTYPE_NONE}, {"UINT64", SEGLOSS_DTYPE_NONE},
    {"INT16", SEGLOSS_DTYPE_NONE}, {"BYTES", SEGLOSS_DTYPE_NONE},
};

static const char *type_name(segloss_dtype d)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].dtype == d)
            return types[i].name;
    return "?";
}

/* The inputs of the model. */
typedef enum oip_role { ROLE_LOGITS, ROLE_LABELS, ROLE_WEIGHTS, ROLE_COUNT } oip_role;

static const char *const role_names[ROLE_COUNT] = {"logits", "labels", "class_weights"};
static const char *const role_types[ROLE_COUNT] = {
    "FP32, FP16, BF16 or FP64", "UINT8, INT8, UINT16, INT32 or INT64", "FP32 or FP64"};

static bool role_takes(oip_role role, segloss_dtype d)
{
    switch (role) {
    case ROLE_LOGITS: return segloss_dtype_is_float(d);
    case ROLE_LABELS: return d != SEGLOSS_DTYPE_NONE && !segloss_dtype_is_float(d);
    default: return d == SEGLOSS_F32 || d == SEGLOSS_F64;
    }
}

/* ---- outputs -------------------------------------------------------------------------- */

typedef enum out_kind { OUT_SCALAR, OUT_PER_CLASS, OUT_COUNTS, OUT_MATRIX } out_kind;

static const struct {
    const char *name;
    out_kind kind;
} outputs[OIP_OUT_COUNT] = {
    [OIP_OUT_CE] = {"ce", OUT_SCALAR},
    [OIP_OUT_FOCAL] = {"focal", OUT_SCALAR},
    [OIP_OUT_DICE] = {"dice", OUT_SCALAR},
    [OIP_OUT_TOTAL] = {"total", OUT_SCALAR},
    [OIP_OUT_DICE_PER_CLASS] = {"dice_per_class", OUT_PER_CLASS},
    [OIP_OUT_IOU_PER_CLASS] = {"iou_per_class", OUT_PER_CLASS},
    [OIP_OUT_F_SCORE_PER_CLASS] = {"f_score_per_class", OUT_PER_CLASS},
    [OIP_OUT_CONFUSION_MATRIX] = {"confusion_matrix", OUT_MATRIX},
    [OIP_OUT_PRECISION_PER_CLASS] = {"precision_per_class", OUT_PER_CLASS},
    [OIP_OUT_RECALL_PER_CLASS] = {"recall_per_class", OUT_PER_CLASS},
    [OIP_OUT_SUPPORT_PER_CLASS] = {"support_per_class", OUT_COUNTS},
    [OIP_OUT_MEAN_DICE] = {"mean_dice", OUT_SCALAR},
    [OIP_OUT_MEAN_F_SCORE] = {"mean_f_score", OUT_SCALAR},
    [OIP_OUT_MIOU] = {"miou", OUT_SCALAR},
    [OIP_OUT_MPA] = {"mpa", OUT_SCALAR},
    [OIP_OUT_ACCURACY] = {"accuracy", OUT_SCALAR},
};

/* Answered when `outputs` is absent (plus confusion_matrix when the parameter asks). */
#define OIP_DEFAULT_OUTPUTS (OIP_OUT_F_SCORE_PER_CLASS + 1)

static int find_output(const char *name)
{
    for (int i = 0; i < OIP_OUT_COUNT; i++)
        if (strcmp(outputs[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- helpers -------------------------------------------------------------------------- */

static void shape_text(const segloss_tensor *t, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->rank && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", d ? "," : "", t->shape[d]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

static uint16_t float_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);          /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* ---- one input ------------------------------------------------------------------------ */

typedef struct input_slot {
    bool given;
    segloss_tensor t;
    void *owned;
    const cJSON *data; /* JSON data, or NULL */
    bool binary;
    size_t binary_size; /* bytes, binary inputs */
    size_t elements;
} input_slot;

/* Shape and limits: rank, dims, element count. */
static int check_shape(oip_role role, segloss_tensor *t, const segloss_limits *lim,
                       size_t *elements, char *detail, size_t dl)
{
    const char *name = role_names[role];
    int lo = role == ROLE_LOGITS ? 3 : role == ROLE_LABELS ? 2 : 1;
    int hi = role == ROLE_LOGITS ? 4 : role == ROLE_LABELS ? 3 : 1;
    if (t->rank < lo || t->rank > hi)
        return detail_fail(detail, dl, 400, "input %s has %d dimensions; its shape must be %s",
                           name, t->rank,
                           role == ROLE_LOGITS   ? "[N,C,H,W] (or [C,H,W])"
                           : role == ROLE_LABELS ? "[N,H,W] (or [H,W])"
                                                 : "[C]");
    if (segloss_tensor_elements(t, elements) != 0 || *elements > lim->max_elements)
        return detail_fail(detail, dl, 413,
                           "input %s has more than %zu elements; send a smaller batch", name,
                           lim->max_elements);
    if (role == ROLE_WEIGHTS)
        return 0;
    size_t h = t->shape[t->rank - 2], w = t->shape[t->rank - 1];
    size_t n = t->rank == hi ? t->shape[0] : 1;
    size_t pixels = 0;
    if (h > lim->max_side || w > lim->max_side || segloss_mul_size(h, w, &pixels) ||
        pixels > lim->max_pixels)
        return detail_fail(detail, dl, 413,
                           "input %s is %zu x %zu (H x W); at most %zu per side and %zu pixels",
                           name, h, w, lim->max_side, lim->max_pixels);
    if (n > lim->max_batch)
        return detail_fail(detail, dl, 413, "input %s holds %zu images; at most %zu per request",
                           name, n, lim->max_batch);
    if (role == ROLE_LOGITS && t->shape[t->rank - 3] > lim->max_classes)
        return detail_fail(detail, dl, 413,
                           "input logits has %zu classes; at most %zu are supported",
                           t->shape[t->rank - 3], lim->max_classes);
    return 0;
}

/* Where JSON data is written: element by element, converted to the datatype. */
typedef struct filler {
    oip_role role;
    segloss_dtype dtype;
    unsigned char *dst;
    size_t count, cap;
} filler;

static int fill_one(filler *f, const cJSON *v, char *detail, size_t dl)
{
    const char *name = role_names[f->role];
    if (!cJSON_IsNumber(v))
        return detail_fail(detail, dl, 400, "input %s: data[%zu] must be a number, not %s", name,
                           f->count,
                           cJSON_IsBool(v)     ? "true or false"
                           : cJSON_IsString(v) ? "a string"
                           : cJSON_IsNull(v)   ? "null"
                                               : "an object");
    if (f->count >= f->cap)
        return detail_fail(detail, dl, 400,
                           "input %s has more values in data than its shape holds (%zu)", name,
                           f->cap);
    double x = v->valuedouble;
    size_t i = f->count++;
    if (!segloss_dtype_is_float(f->dtype)) {
        double lo = 0, hi = 0;
        switch (f->dtype) {
        case SEGLOSS_U8:
            lo = 0;
            hi = 255;
            break;
        case SEGLOSS_I8:
            lo = -128;
            hi = 127;
            break;
        case SEGLOSS_U16:
            lo = 0;
            hi = 65535;
            break;
        case SEGLOSS_I32:
            lo = -2147483648.0;
            hi = 2147483647.0;
            break;
        default:
            lo = -9223372036854775808.0;
            hi = 9223372036854775808.0;
            break;
        }
        if (x != floor(x) || x < lo || x > hi)
            return detail_fail(detail, dl, 400,
                               "input %s: data[%zu] must be an integer from %.0f to %.0f (%s)",
                               name, i, lo, hi, type_name(f->dtype));
    }
    switch (f->dtype) {
    case SEGLOSS_F32: ((float *)(void *)f->dst)[i] = (float)x; break;
    case SEGLOSS_F64: ((double *)(void *)f->dst)[i] = x; break;
    case SEGLOSS_F16: ((uint16_t *)(void *)f->dst)[i] = segloss_float_to_half((float)x); break;
    case SEGLOSS_BF16: ((uint16_t *)(void *)f->dst)[i] = float_to_bf16((float)x); break;
    case SEGLOSS_U8: f->dst[i] = (unsigned char)x; break;
    case SEGLOSS_I8: ((int8_t *)(void *)f->dst)[i] = (int8_t)x; break;
    case SEGLOSS_U16: ((uint16_t *)(void *)f->dst)[i] = (uint16_t)x; break;
    case SEGLOSS_I32: ((int32_t *)(void *)f->dst)[i] = (int32_t)x; break;
    case SEGLOSS_I64: /* 2^63 saturates: any label >= C is ignored alike */
        ((int64_t *)(void *)f->dst)[i] = x >= 9223372036854775807.0 ? INT64_MAX : (int64_t)x;
        break;
    default: return detail_fail(detail, dl, 400, "input %s: no datatype", name);
    }
    return 0;
}

/* Nested data: depth d must be an array of shape[d] entries, numbers at the innermost level. */
static int fill_nested(filler *f, const cJSON *arr, const segloss_tensor *t, int depth,
                       char *detail, size_t dl)
{
    if (depth == t->rank)
        return fill_one(f, arr, detail, dl);
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != t->shape[depth]) {
        char shape[96];
        shape_text(t, shape, sizeof shape);
        return detail_fail(
            detail, dl, 400,
            "input %s: nested data does not match the shape %s at dimension %d (%s); "
            "send data flat or nested exactly as the shape",
            role_names[f->role], shape, depth, cJSON_IsArray(arr) ? "wrong length" : "not a list");
    }
    const cJSON *item;
    cJSON_ArrayForEach (item, arr) {
        int rc = fill_nested(f, item, t, depth + 1, detail, dl);
        if (rc)
            return rc;
    }
    return 0;
}

static int fill_json(oip_role role, input_slot *s, char *detail, size_t dl)
{
    const char *name = role_names[role];
    size_t elem = segloss_dtype_size(s->t.dtype), bytes = 0;
    if (!cJSON_IsArray(s->data))
        return detail_fail(detail, dl, 400,
                           "input %s: data must be a list of numbers (flat or nested "
                           "row-major)",
                           name);
    if (segloss_mul_size(s->elements, elem, &bytes))
        return detail_fail(detail, dl, 413, "input %s is too large", name);
    s->owned = aligned_buffer(OIP_BODY_ALIGN, bytes);
    if (!s->owned)
        return detail_fail(detail, dl, 503, "out of memory for input %s; retry later", name);
    filler f = {role, s->t.dtype, s->owned, 0, s->elements};
    const cJSON *first = s->data->child;
    int rc = 0;
    if (first && cJSON_IsArray(first)) {
        rc = fill_nested(&f, s->data, &s->t, 0, detail, dl);
    } else {
        const cJSON *item;
        cJSON_ArrayForEach (item, s->data) {
            rc = fill_one(&f, item, detail, dl);
            if (rc)
                break;
        }
    }
    if (rc)
        return rc;
    if (f.count != s->elements) {
        char shape[96];
        shape_text(&s->t, shape, sizeof shape);
        return detail_fail(detail, dl, 400,
                           "input %s has %zu values in data; its shape %s needs %zu", name, f.count,
                           shape, s->elements);
    }
    s->t.data = s->owned;
    return 0;
}

/* Reads one entry of `inputs` (not its data yet). */
static int parse_input(const cJSON *in, size_t index, input_slot slots[ROLE_COUNT],
                       oip_role *role_out, const segloss_limits *lim, char *detail, size_t dl)
{
    if (!cJSON_IsObject(in))
        return detail_fail(detail, dl, 400,
                           "inputs[%zu] must be an object with name, datatype, shape "
                           "and data",
                           index);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (!cJSON_IsString(name))
        return detail_fail(detail, dl, 400, "inputs[%zu] has no name (a string)", index);
    int role = -1;
    for (int r = 0; r < ROLE_COUNT; r++)
        if (strcmp(name->valuestring, role_names[r]) == 0)
            role = r;
    if (role < 0)
        return detail_fail(
            detail, dl, 400,
            "unknown input '%.64s'; model segloss takes logits, labels and optionally "
            "class_weights",
            name->valuestring);
    input_slot *s = &slots[role];
    if (s->given)
        return detail_fail(detail, dl, 400, "input %s is given twice", role_names[role]);
    s->given = true;
    *role_out = (oip_role)role;
    const char *rn = role_names[role];
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    if (!cJSON_IsString(dt))
        return detail_fail(detail, dl, 400, "input %s has no datatype (a string such as \"FP32\")",
                           rn);
    const oip_type *type = NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, dt->valuestring) == 0)
            type = &types[i];
    if (!type)
        return detail_fail(detail, dl, 400, "input %s: unknown datatype '%.32s'; %s takes %s", rn,
                           dt->valuestring, rn, role_types[role]);
    if (!role_takes((oip_role)role, type->dtype))
        return detail_fail(detail, dl, 415, "input %s is %s; %s must be %s", rn, type->name, rn,
                           role_types[role]);
    s->t.dtype = type->dtype;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    if (!cJSON_IsArray(shape))
        return detail_fail(detail, dl, 400, "input %s has no shape (a list of integers)", rn);
    int rank = cJSON_GetArraySize(shape);
    if (rank < 1 || rank > SEGLOSS_MAX_RANK)
        return detail_fail(detail, dl, 400, "input %s has %d dimensions; at most %d", rn, rank,
                           SEGLOSS_MAX_RANK);
    s->t.rank = rank;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach (dim, shape) {
        double v = cJSON_IsNumber(dim) ? dim->valuedouble : -1;
        if (v < 0 || v != floor(v) || v > OIP_MAX_EXACT_INT)
            return detail_fail(detail, dl, 400, "input %s: shape[%d] must be an integer >= 0", rn,
                               d);
        s->t.shape[d++] = (size_t)v;
    }
    int rc = check_shape((oip_role)role, &s->t, lim, &s->elements, detail, dl);
    if (rc)
        return rc;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    const cJSON *bsize = NULL;
    if (params) {
        if (!cJSON_IsObject(params))
            return detail_fail(detail, dl, 400, "input %s: parameters must be an object", rn);
        if (cJSON_GetObjectItemCaseSensitive(params, "shared_memory_region"))
            return detail_fail(detail, dl, 400,
                               "input %s: shared memory is not supported; send the "
                               "data in the body (JSON or binary_data_size)",
                               rn);
        bsize = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    }
    s->data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (bsize) {
        if (s->data)
            return detail_fail(detail, dl, 400,
                               "input %s has both data and binary_data_size; give one", rn);
        double v = cJSON_IsNumber(bsize) ? bsize->valuedouble : -1;
        if (v < 0 || v != floor(v) || v > OIP_MAX_EXACT_INT)
            return detail_fail(detail, dl, 400,
                               "input %s: binary_data_size must be an integer >= 0", rn);
        size_t want = 0;
        if (segloss_mul_size(s->elements, segloss_dtype_size(s->t.dtype), &want))
            return detail_fail(detail, dl, 413, "input %s is too large", rn);
        if ((size_t)v != want) {
            char text[96];
            shape_text(&s->t, text, sizeof text);
            return detail_fail(
                detail, dl, 400,
                "input %s: binary_data_size is %.0f but shape %s of %s needs %zu bytes "
                "(%zu elements x %zu)",
                rn, v, text, type->name, want, s->elements, segloss_dtype_size(s->t.dtype));
        }
        s->binary = true;
        s->binary_size = want;
    } else if (!s->data) {
        return detail_fail(detail, dl, 400,
                           "input %s has no data; give data (JSON) or parameters.binary_data_size "
                           "with the bytes after the JSON header",
                           rn);
    }
    return 0;
}

/* Parameters: the protocol's own key out, the class_weights input in, then params.c. */
static int parse_parameters(const cJSON *root, const input_slot *weights, size_t max_params_bytes,
                            oip_request *out, char *detail, size_t dl)
{
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (given && !cJSON_IsObject(given) && !cJSON_IsNull(given))
        return detail_fail(detail, dl, 400, "parameters must be an object, e.g. {\"gamma\": 2}");
    cJSON *p = given && cJSON_IsObject(given) ? cJSON_Duplicate(given, 1) : cJSON_CreateObject();
    if (!p)
        return detail_fail(detail, dl, 503, "out of memory; retry later");
    int rc = 0;
    char *text = NULL;
    cJSON *bin = cJSON_DetachItemFromObjectCaseSensitive(p, "binary_data_output");
    if (bin) {
        if (!cJSON_IsBool(bin))
            rc = detail_fail(detail, dl, 400, "binary_data_output must be true or false");
        out->binary_output = cJSON_IsTrue(bin);
        cJSON_Delete(bin);
        if (rc)
            goto done;
    }
    if (weights->given) {
        if (cJSON_GetObjectItemCaseSensitive(p, "class_weights")) {
            rc = detail_fail(detail, dl, 400,
                             "class_weights was given both as an input and in "
                             "parameters; give it once");
            goto done;
        }
        cJSON *arr = cJSON_CreateArray();
        if (!arr || !cJSON_AddItemToObject(p, "class_weights", arr)) {
            cJSON_Delete(arr);
            rc = detail_fail(detail, dl, 503, "out of memory; retry later");
            goto done;
        }
        for (size_t i = 0; i < weights->elements; i++) {
            double v = weights->t.dtype == SEGLOSS_F32 ? (double)((const float *)weights->t.data)[i]
                                                       : ((const double *)weights->t.data)[i];
            if (!isfinite(v)) {
                rc = detail_fail(detail, dl, 400, "class_weights[%zu] must be a number >= 0", i);
                goto done;
            }
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(v));
        }
    }
    text = cJSON_PrintUnformatted(p);
    if (!text) {
        rc = detail_fail(detail, dl, 503, "out of memory; retry later");
        goto done;
    }
    rc = params_set_json(&out->params, text, strlen(text), max_params_bytes, detail, dl);
done:
    free(text);
    cJSON_Delete(p);
    return rc;
}

static int parse_outputs(const cJSON *root, oip_request *out, char *detail, size_t dl)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    bool seen[OIP_OUT_COUNT] = {false};
    out->output_count = 0;
    if (list && !cJSON_IsNull(list) && !cJSON_IsArray(list))
        return detail_fail(detail, dl, 400, "outputs must be a list of {\"name\": ...} objects");
    /* An empty list names no output in particular: like an absent one (and like Triton), it
     * gets the default outputs rather than an answer with none. */
    if (cJSON_GetArraySize(list) > 0) {
        size_t i = 0;
        const cJSON *o;
        cJSON_ArrayForEach (o, list) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
            if (!cJSON_IsObject(o) || !cJSON_IsString(name))
                return detail_fail(detail, dl, 400, "outputs[%zu] must be an object with a name",
                                   i);
            int k = find_output(name->valuestring);
            if (k < 0)
                return detail_fail(
                    detail, dl, 400,
                    "unknown output '%.64s'; GET /v2/models/segloss lists the outputs",
                    name->valuestring);
            if (seen[k])
                return detail_fail(detail, dl, 400, "output %s is asked for twice",
                                   outputs[k].name);
            seen[k] = true;
            out->outputs[out->output_count++] = (oip_output)k;
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "parameters");
            if (params && !cJSON_IsObject(params))
                return detail_fail(detail, dl, 400, "outputs[%zu].parameters must be an object", i);
            const cJSON *bin = cJSON_GetObjectItemCaseSensitive(params, "binary_data");
            if (bin && !cJSON_IsBool(bin))
                return detail_fail(detail, dl, 400,
                                   "outputs[%zu].parameters.binary_data must be true "
                                   "or false",
                                   i);
            out->output_binary[k] = cJSON_IsTrue(bin) || (!bin && out->binary_output);
            i++;
        }
    } else {
        for (int k = 0; k < OIP_DEFAULT_OUTPUTS; k++) {
            seen[k] = true;
            out->outputs[out->output_count++] = (oip_output)k;
        }
        for (int k = 0; k < OIP_OUT_COUNT; k++)
            out->output_binary[k] = out->binary_output;
    }
    if (out->params.confusion_matrix && !seen[OIP_OUT_CONFUSION_MATRIX]) {
        out->outputs[out->output_count++] = OIP_OUT_CONFUSION_MATRIX;
        out->output_binary[OIP_OUT_CONFUSION_MATRIX] = out->binary_output;
    }
    return 0;
}

/* Strict decimal; false for anything else. */
static bool parse_size(const char *s, size_t *out)
{
    size_t n = 0;
    if (!s || !*s)
        return false;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || n > (SIZE_MAX - 9) / 10)
            return false;
        n = n * 10 + (size_t)(*c - '0');
    }
    *out = n;
    return true;
}

int oip_parse(const void *body, size_t len, const char *header_len, const segloss_limits *limits,
              size_t max_params_bytes, oip_request *out, char *detail, size_t dl)
{
    memset(out, 0, sizeof *out);
    params_init(&out->params);
    out->params.max_classes = limits->max_classes;
    input_slot slots[ROLE_COUNT];
    memset(slots, 0, sizeof slots);
    cJSON *root = NULL;
    int rc = 0;
    size_t json_len = len;
    if (header_len) {
        if (!parse_size(header_len, &json_len))
            return detail_fail(detail, dl, 400,
                               OIP_HEADER_LENGTH " must be a decimal byte count, not "
                                                 "'%.32s'",
                               header_len);
        if (json_len > len)
            return detail_fail(detail, dl, 400,
                               OIP_HEADER_LENGTH " is %zu but the body has only %zu bytes",
                               json_len, len);
    }
    if (json_len == 0)
        return detail_fail(detail, dl, 400,
                           "the body is empty; send a JSON inference request "
                           "({\"inputs\": [...]})");
    if (json_len > OIP_MAX_JSON_BYTES)
        return detail_fail(
            detail, dl, 413,
            "the JSON part is %zu bytes; the limit is %zu: send large tensors with the "
            "binary tensor extension (" OIP_HEADER_LENGTH ", binary_data_size)",
            json_len, OIP_MAX_JSON_BYTES);
    const char *json = body;
    if (memchr(json, '\0', json_len))
        return detail_fail(detail, dl, 400, "the JSON part contains a NUL byte%s",
                           header_len ? ""
                                      : " (binary data needs the " OIP_HEADER_LENGTH " header)");
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(json, json_len, &end, 0);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return detail_fail(
            detail, dl, 400, "the request is not valid JSON (error near byte %zu)%s", at,
            header_len ? "" : "; binary data needs the " OIP_HEADER_LENGTH " header");
    }
    for (const char *c = end; c && c < json + json_len; c++) {
        if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n') {
            rc = detail_fail(
                detail, dl, 400, "text after the JSON object at byte %zu%s", (size_t)(c - json),
                header_len ? "" : "; binary data needs the " OIP_HEADER_LENGTH " header");
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = detail_fail(detail, dl, 400, "the request must be a JSON object with inputs");
        goto done;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !cJSON_IsNull(id)) {
        if (!cJSON_IsString(id) || strlen(id->valuestring) > 256) {
            rc = detail_fail(detail, dl, 400, "id must be a string of at most 256 characters");
            goto done;
        }
        out->id = strdup(id->valuestring);
        if (!out->id) {
            rc = detail_fail(detail, dl, 503, "out of memory; retry later");
            goto done;
        }
    }
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs)) {
        rc = detail_fail(detail, dl, 400,
                         "inputs must be a list (logits, labels, optionally "
                         "class_weights)");
        goto done;
    }
    /* The binary section: slices in input order. */
    const unsigned char *bin = (const unsigned char *)body + json_len;
    size_t bin_len = len - json_len, bin_used = 0;
    size_t index = 0;
    const cJSON *in;
    cJSON_ArrayForEach (in, inputs) {
        oip_role role = ROLE_COUNT;
        rc = parse_input(in, index++, slots, &role, limits, detail, dl);
        if (rc)
            goto done;
        input_slot *s = &slots[role];
        if (!s->binary)
            continue;
        if (!header_len) {
            rc = detail_fail(
                detail, dl, 400,
                "input %s has binary_data_size but the request has no " OIP_HEADER_LENGTH " header",
                role_names[role]);
            goto done;
        }
        if (s->binary_size > bin_len - bin_used) {
            rc = detail_fail(detail, dl, 400,
                             "input %s needs %zu bytes of binary data but only %zu follow the JSON "
                             "header (" OIP_HEADER_LENGTH " %zu)",
                             role_names[role], s->binary_size, bin_len - bin_used, json_len);
            goto done;
        }
        const unsigned char *p = bin + bin_used;
        bin_used += s->binary_size;
        size_t elem = segloss_dtype_size(s->t.dtype);
        if ((uintptr_t)p % elem) {
            s->owned = aligned_buffer(OIP_BODY_ALIGN, s->binary_size);
            if (!s->owned) {
                rc = detail_fail(detail, dl, 503, "out of memory for input %s; retry later",
                                 role_names[role]);
                goto done;
            }
            memcpy(s->owned, p, s->binary_size);
            p = s->owned;
        }
        s->t.data = p;
    }
    if (bin_used != bin_len) {
        rc = detail_fail(
            detail, dl, 400,
            "%zu bytes follow the JSON header but the inputs' binary_data_size add up to "
            "%zu",
            bin_len, bin_used);
        goto done;
    }
    for (int r = 0; r < ROLE_WEIGHTS; r++) {
        if (!slots[r].given) {
            rc = detail_fail(detail, dl, 400,
                             "input %s is missing; model segloss needs logits "
                             "[N,C,H,W] and labels [N,H,W]",
                             role_names[r]);
            goto done;
        }
    }
    for (int r = 0; r < ROLE_COUNT; r++) {
        if (slots[r].given && !slots[r].binary) {
            rc = fill_json((oip_role)r, &slots[r], detail, dl);
            if (rc)
                goto done;
        }
    }
    rc = parse_parameters(root, &slots[ROLE_WEIGHTS], max_params_bytes, out, detail, dl);
    if (rc)
        goto done;
    rc = parse_outputs(root, out, detail, dl);
    if (rc)
        goto done;
    out->logits = slots[ROLE_LOGITS].t;
    out->owned_logits = slots[ROLE_LOGITS].owned;
    out->labels = slots[ROLE_LABELS].t;
    out->owned_labels = slots[ROLE_LABELS].owned;
    slots[ROLE_LOGITS].owned = slots[ROLE_LABELS].owned = NULL;
done:
    for (int r = 0; r < ROLE_COUNT; r++)
        free(slots[r].owned);
    cJSON_Delete(root);
    return rc;
}

void oip_request_free(oip_request *req)
{
    if (!req)
        return;
    free(req->id);
    free(req->owned_logits);
    free(req->owned_labels);
    params_free(&req->params);
    memset(req, 0, sizeof *req);
}

/* ---- answers -------------------------------------------------------------------------- */

/* The values of one output: doubles (FP32 outputs) or counts (INT64). */
static void output_values(const segloss_result *r, oip_output k, const double **d,
                          const uint64_t **u, size_t *n, double *scalar)
{
    size_t c = r->num_classes;
    *d = NULL;
    *u = NULL;
    *n = c;
    switch (k) {
    case OIP_OUT_CE: *scalar = r->ce; break;
    case OIP_OUT_FOCAL: *scalar = r->focal; break;
    case OIP_OUT_DICE: *scalar = r->dice; break;
    case OIP_OUT_TOTAL: *scalar = r->total; break;
    case OIP_OUT_MEAN_DICE: *scalar = r->mean_dice; break;
    case OIP_OUT_MEAN_F_SCORE: *scalar = r->mean_f_score; break;
    case OIP_OUT_MIOU: *scalar = r->miou; break;
    case OIP_OUT_MPA: *scalar = r->mpa; break;
    case OIP_OUT_ACCURACY: *scalar = r->accuracy; break;
    case OIP_OUT_DICE_PER_CLASS: *d = r->dice_per_class; return;
    case OIP_OUT_IOU_PER_CLASS: *d = r->iou; return;
    case OIP_OUT_F_SCORE_PER_CLASS: *d = r->f_score; return;
    case OIP_OUT_PRECISION_PER_CLASS: *d = r->precision; return;
    case OIP_OUT_RECALL_PER_CLASS: *d = r->recall; return;
    case OIP_OUT_SUPPORT_PER_CLASS: *u = r->support; return;
    case OIP_OUT_CONFUSION_MATRIX:
        *u = r->stats ? r->stats->confusion : NULL;
        *n = c * c;
        return;
    default: break;
    }
    *d = scalar;
    *n = 1;
}

char *oip_response(const oip_request *req, const segloss_result *r, const char *eval_id,
                   size_t *len, size_t *json_len)
{
    size_t c = r->num_classes;
    size_t bin_total = 0;
    double scalars[OIP_OUT_COUNT];
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "model_name");
    json_string(&w, OIP_MODEL_NAME);
    json_key(&w, "model_version");
    json_string(&w, OIP_MODEL_VERSION);
    if (req->id) {
        json_key(&w, "id");
        json_string(&w, req->id);
    }
    json_key(&w, "parameters");
    json_object_begin(&w);
    json_key(&w, "evaluation_id");
    json_string(&w, eval_id ? eval_id : "");
    json_key(&w, "num_classes");
    json_uint(&w, c);
    json_key(&w, "pixels_total");
    json_uint(&w, r->pixels_total);
    json_key(&w, "pixels_valid");
    json_uint(&w, r->pixels_valid);
    json_object_end(&w);
    json_key(&w, "outputs");
    json_array_begin(&w);
    for (size_t i = 0; i < req->output_count; i++) {
        oip_output k = req->outputs[i];
        const double *d;
        const uint64_t *u;
        size_t n;
        output_values(r, k, &d, &u, &n, &scalars[k]);
        bool counts = outputs[k].kind == OUT_COUNTS || outputs[k].kind == OUT_MATRIX;
        json_object_begin(&w);
        json_key(&w, "name");
        json_string(&w, outputs[k].name);
        json_key(&w, "datatype");
        json_string(&w, counts ? "INT64" : "FP32");
        json_key(&w, "shape");
        json_array_begin(&w);
        if (outputs[k].kind == OUT_MATRIX) {
            json_uint(&w, c);
            json_uint(&w, c);
        } else {
            json_uint(&w, n);
        }
        json_array_end(&w);
        if (req->output_binary[k]) {
            size_t bytes = n * (counts ? 8 : 4);
            bin_total += bytes;
            json_key(&w, "parameters");
            json_object_begin(&w);
            json_key(&w, "binary_data_size");
            json_uint(&w, bytes);
            json_object_end(&w);
        } else {
            json_key(&w, "data");
            json_array_begin(&w);
            for (size_t j = 0; j < n; j++) {
                if (counts)
                    json_uint(&w, u ? u[j] : 0);
                else
                    json_number(&w, (double)(float)d[j]); /* NaN -> null */
            }
            json_array_end(&w);
        }
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);
    size_t jl = 0;
    char *text = json_writer_finish(&w, &jl);
    if (!text)
        return NULL;
    *json_len = jl;
    *len = jl;
    if (bin_total == 0)
        return text;
    char *all = malloc(jl + bin_total);
    if (!all) {
        free(text);
        return NULL;
    }
    memcpy(all, text, jl);
    free(text);
    unsigned char *p = (unsigned char *)all + jl;
    for (size_t i = 0; i < req->output_count; i++) {
        oip_output k = req->outputs[i];
        if (!req->output_binary[k])
            continue;
        const double *d;
        const uint64_t *u;
        size_t n;
        output_values(r, k, &d, &u, &n, &scalars[k]);
        bool counts = outputs[k].kind == OUT_COUNTS || outputs[k].kind == OUT_MATRIX;
        for (size_t j = 0; j < n; j++) {
            if (counts) {
                int64_t v = u ? (int64_t)u[j] : 0;
                memcpy(p, &v, 8);
                p += 8;
            } else {
                float v = (float)d[j]; /* NaN stays NaN */
                memcpy(p, &v, 4);
                p += 4;
            }
        }
    }
    *len = jl + bin_total;
    return all;
}

/* The words of /v1/evaluate's messages (params.c, evaluation.c, the library) in the
 * protocol's own: a request has `parameters` and the `labels` input, not a params part and
 * masks. Longer phrases first. */
static const char *const vocabulary[][2] = {
    {"the params part", "the parameters"},
    {"in params;", "in parameters;"},
    {"but there are ", "but labels hold "},
    {" masks", " images"},
    {"masks", "labels"},
    {"mask", "labels"},
};

void oip_speak_v2(char *detail, size_t detail_len)
{
    char out[EVALUATION_DETAIL_MAX];
    size_t used = 0;
    const char *p = detail;
    bool quoted = false; /* a name the client sent, 'like this', is left as it is */
    if (!detail || !detail_len)
        return;
    while (*p && used + 1 < sizeof out) {
        size_t i = 0, n = sizeof vocabulary / sizeof vocabulary[0];
        if (*p == '\'')
            quoted = !quoted;
        for (; i < n && !quoted; i++)
            if (strncmp(p, vocabulary[i][0], strlen(vocabulary[i][0])) == 0)
                break;
        if (quoted || i == n) {
            out[used++] = *p++;
            continue;
        }
        size_t len = strlen(vocabulary[i][1]);
        if (used + len >= sizeof out)
            break;
        memcpy(out + used, vocabulary[i][1], len);
        used += len;
        p += strlen(vocabulary[i][0]);
    }
    out[used] = '\0';
    snprintf(detail, detail_len, "%s", out);
}

char *oip_error_json(const char *detail, size_t *len)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "error");
    json_string(&w, detail && *detail ? detail : "error");
    json_object_end(&w);
    return json_writer_finish(&w, len);
}

static void outcome_fail(oip_outcome *out, int status, const char *detail)
{
    out->status = status;
    snprintf(out->detail, sizeof out->detail, "%s", detail);
    oip_speak_v2(out->detail, sizeof out->detail);
}

void oip_infer(segloss_ctx *ctx, const oip_infer_input *in, oip_outcome *out)
{
    char detail[EVALUATION_DETAIL_MAX - 32] = "";
    oip_request req;
    evaluation_outcome done = {0};
    memset(out, 0, sizeof *out);
    double t0 = evaluation_now();
    int status = oip_parse(in->body, in->len, in->header_len, in->limits, in->max_params_bytes,
                           &req, detail, sizeof detail);
    if (status) {
        outcome_fail(out, status, detail);
        goto done;
    }
    size_t c = req.logits.shape[req.logits.rank == 4];
    status = params_check_classes(&req.params, c, detail, sizeof detail);
    if (status) {
        outcome_fail(out, status, detail);
        goto done;
    }
    evaluation_request er = {
        .params = &req.params,
        .id = in->id,
        .started = in->started,
        .hook = in->hook,
        .hook_arg = in->hook_arg,
    };
    evaluation_finish(ctx, &req.logits, &req.labels, &er, t0, &done);
    out->decode_ms = done.decode_ms;
    out->compute_ms = done.compute_ms;
    if (done.status != 200) {
        outcome_fail(out, done.status, done.detail);
        goto done;
    }
    out->body = oip_response(&req, done.result, in->id, &out->body_len, &out->json_len);
    if (!out->body) {
        outcome_fail(out, 503, "out of memory writing the answer; retry later");
        goto done;
    }
    out->items = done.result->n;
    out->status = 200;
done:
    evaluation_outcome_clear(&done);
    oip_request_free(&req);
}

void oip_outcome_clear(oip_outcome *out)
{
    free(out->body);
    memset(out, 0, sizeof *out);
}

/* ---- metadata ------------------------------------------------------------------------- */

char *oip_server_metadata(size_t *len)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "name");
    json_string(&w, OIP_MODEL_NAME);
    json_key(&w, "version");
    json_string(&w, SEGLOSS_VERSION);
    json_key(&w, "extensions");
    json_array_begin(&w);
    json_string(&w, "binary_tensor_data");
    json_array_end(&w);
    json_object_end(&w);
    return json_writer_finish(&w, len);
}

static void tensor_meta(json_writer *w, const char *name, const char *type, int rank)
{
    json_object_begin(w);
    json_key(w, "name");
    json_string(w, name);
    json_key(w, "datatype");
    json_string(w, type);
    json_key(w, "shape");
    json_array_begin(w);
    for (int i = 0; i < rank; i++)
        json_int(w, rank == 0 ? 1 : -1);
    if (rank == 0)
        json_int(w, 1);
    json_array_end(w);
    json_object_end(w);
}

char *oip_model_metadata(size_t *len)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "name");
    json_string(&w, OIP_MODEL_NAME);
    json_key(&w, "versions");
    json_array_begin(&w);
    json_string(&w, OIP_MODEL_VERSION);
    json_array_end(&w);
    json_key(&w, "platform");
    json_string(&w, "segloss");
    json_key(&w, "inputs");
    json_array_begin(&w);
    tensor_meta(&w, "logits", "FP32", 4);
    tensor_meta(&w, "labels", "UINT8", 3);
    tensor_meta(&w, "class_weights", "FP32", 1);
    json_array_end(&w);
    json_key(&w, "outputs");
    json_array_begin(&w);
    for (int k = 0; k < OIP_OUT_COUNT; k++) {
        switch (outputs[k].kind) {
        case OUT_SCALAR: tensor_meta(&w, outputs[k].name, "FP32", 0); break;
        case OUT_PER_CLASS: tensor_meta(&w, outputs[k].name, "FP32", 1); break;
        case OUT_COUNTS: tensor_meta(&w, outputs[k].name, "INT64", 1); break;
        case OUT_MATRIX: tensor_meta(&w, outputs[k].name, "INT64", 2); break;
        }
    }
    json_array_end(&w);
    json_object_end(&w);
    return json_writer_finish(&w, len);
}

/* {"live": true}, {"ready": false}...: KServe's and Triton's clients parse the body. */
static char *health_json(const char *key, bool value, size_t *len)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, key);
    json_bool(&w, value);
    json_object_end(&w);
    return json_writer_finish(&w, len);
}

bool oip_get(const char *path, bool draining, int *status, char **body, size_t *len)
{
    static const char model[] = "/v2/models/" OIP_MODEL_NAME;
    static const char version[] = "/versions/" OIP_MODEL_VERSION;
    char rest[64] = "";
    *body = NULL;
    *len = 0;
    if (strcmp(path, "/v2") == 0 || strcmp(path, "/v2/") == 0) {
        *status = 200;
        *body = oip_server_metadata(len);
        return true;
    }
    if (strcmp(path, "/v2/health/live") == 0) {
        *status = 200;
        *body = health_json("live", true, len);
        return true;
    }
    if (strcmp(path, "/v2/health/ready") == 0) {
        *status = draining ? 503 : 200;
        *body = health_json("ready", !draining, len);
        return true;
    }
    if (strncmp(path, model, sizeof model - 1) != 0)
        return false;
    path += sizeof model - 1;
    if (strncmp(path, version, sizeof version - 1) == 0)
        path += sizeof version - 1;
    snprintf(rest, sizeof rest, "%s", path);
    if (rest[0] == '\0') {
        *status = 200;
        *body = oip_model_metadata(len);
        return true;
    }
    if (strcmp(rest, "/ready") == 0) {
        *status = draining ? 503 : 200;
        *body = health_json("ready", !draining, len);
        return true;
    }
    return false;
}
