/*
 * npy.c - the .npy reader: NumPy's own array file, as numpy.save writes it.
 *
 * A .npy file is "\x93NUMPY", a version (1.0, 2.0 or 3.0), a little-endian header length (2
 * bytes in v1, 4 in v2/v3), a Python dict literal such as
 * "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 21, 64, 64), }" padded with spaces and
 * a newline, then the raw array. The header comes from an upload, so it is parsed as a tiny
 * grammar, never evaluated: exactly the three keys, in any order, each once; single- or
 * double-quoted strings; a tuple of non-negative integers. The data must be exactly as long as
 * the shape says, neither shorter (truncated upload) nor longer (a lying header or two arrays
 * glued together).
 *
 * Byte order and layout are converted, in one copy into aligned memory: big-endian data
 * ('>f4', as numpy writes on a big-endian machine or for arr.astype('>f4')) is byte-swapped, and
 * fortran_order True (what numpy.save writes for a transposed or Fortran-contiguous array, e.g.
 * x.T) is reordered into C order. Little-endian C-ordered data, the common case, is used in
 * place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_internal.h"
#include "decode/decode_internal.h"
#include "segloss/decode.h"
#include "segloss/errors.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6

typedef struct npy_cursor {
    const char *p;
    const char *end;
} npy_cursor;

typedef struct npy_header {
    char descr[32];
    int have_descr, have_fortran, have_shape;
    int fortran_order;
    int rank;
    size_t shape[SEGLOSS_MAX_RANK];
} npy_header;

static void skip_space(npy_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int accept_char(npy_cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/*
 * A Python string literal without escapes (numpy never writes any in these three keys) into
 * out. Returns 0, or -1 when it is not a string, has an escape or does not fit.
 */
static int parse_string(npy_cursor *c, char *out, size_t out_len)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= out_len)
            return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = '\0';
    return 0;
}

/* A non-negative decimal integer (Python 2's "L" suffix tolerated). -1 on overflow or none. */
static int parse_dim(npy_cursor *c, size_t *out)
{
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    size_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (__builtin_mul_overflow(v, (size_t)10, &v) ||
            __builtin_add_overflow(v, (size_t)(*c->p - '0'), &v))
            return -1;
        c->p++;
    }
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *out = v;
    return 0;
}

static int parse_shape(npy_cursor *c, npy_header *h, char *detail, size_t detail_len)
{
    if (!accept_char(c, '('))
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            ".npy header: 'shape' is not a tuple");
    h->rank = 0;
    if (accept_char(c, ')'))
        return 0;
    for (;;) {
        size_t dim;
        if (parse_dim(c, &dim) != 0)
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                ".npy header: 'shape' holds something other than "
                                "non-negative integers");
        if (h->rank == SEGLOSS_MAX_RANK)
            return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                                ".npy array has more than %d dimensions", SEGLOSS_MAX_RANK);
        h->shape[h->rank++] = dim;
        if (accept_char(c, ')'))
            return 0;
        if (!accept_char(c, ','))
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                ".npy header: 'shape' tuple is malformed");
        if (accept_char(c, ')'))
            return 0;
    }
}

/* Parses the dict literal. Returns 0 or SEGLOSS_EFORMAT / SEGLOSS_ESHAPE with a detail. */
static int parse_header(const char *text, size_t len, npy_header *h, char *detail,
                        size_t detail_len)
{
    npy_cursor c = {text, text + len};
    memset(h, 0, sizeof *h);
    if (!accept_char(&c, '{'))
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            ".npy header is not a Python dict literal");
    for (;;) {
        char key[16];
        if (accept_char(&c, '}'))
            break;
        if (parse_string(&c, key, sizeof key) != 0 || !accept_char(&c, ':'))
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                ".npy header: expected a key ('descr', 'fortran_order' or "
                                "'shape') followed by ':'");
        if (strcmp(key, "descr") == 0) {
            if (h->have_descr++)
                return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                    ".npy header: 'descr' given twice");
            if (parse_string(&c, h->descr, sizeof h->descr) != 0)
                return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                                    ".npy 'descr' is not a simple dtype string; structured "
                                    "arrays are not supported");
        } else if (strcmp(key, "fortran_order") == 0) {
            if (h->have_fortran++)
                return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                    ".npy header: 'fortran_order' given twice");
            skip_space(&c);
            size_t left = (size_t)(c.end - c.p);
            if (left >= 4 && memcmp(c.p, "True", 4) == 0) {
                h->fortran_order = 1;
                c.p += 4;
            } else if (left >= 5 && memcmp(c.p, "False", 5) == 0) {
                c.p += 5;
            } else {
                return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                    ".npy header: 'fortran_order' is neither True nor False");
            }
        } else if (strcmp(key, "shape") == 0) {
            if (h->have_shape++)
                return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                    ".npy header: 'shape' given twice");
            int rc = parse_shape(&c, h, detail, detail_len);
            if (rc != 0)
                return rc;
        } else {
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                ".npy header: unexpected key '%s'", key);
        }
        if (accept_char(&c, '}'))
            break;
        if (!accept_char(&c, ','))
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                ".npy header: expected ',' or '}' after a value");
    }
    skip_space(&c);
    if (c.p != c.end)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            ".npy header: unexpected bytes after the dict");
    if (!h->have_descr || !h->have_fortran || !h->have_shape)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT, ".npy header lacks '%s'",
                            !h->have_descr     ? "descr"
                            : !h->have_fortran ? "fortran_order"
                                               : "shape");
    return 0;
}

typedef struct npy_dtype_entry {
    const char *descr;
    segloss_dtype dtype;
    segloss_tensor_role role;
} npy_dtype_entry;

/* Exactly what numpy.save writes on a little-endian machine for the accepted dtypes. */
static const npy_dtype_entry npy_dtypes[] = {
    {"<f4", SEGLOSS_F32, SEGLOSS_ROLE_LOGITS}, {"<f2", SEGLOSS_F16, SEGLOSS_ROLE_LOGITS},
    {"<f8", SEGLOSS_F64, SEGLOSS_ROLE_LOGITS}, {"|u1", SEGLOSS_U8, SEGLOSS_ROLE_LABELS},
    {"|i1", SEGLOSS_I8, SEGLOSS_ROLE_LABELS},  {"<u2", SEGLOSS_U16, SEGLOSS_ROLE_LABELS},
    {"<i4", SEGLOSS_I32, SEGLOSS_ROLE_LABELS}, {"<i8", SEGLOSS_I64, SEGLOSS_ROLE_LABELS},
};

static int lookup_dtype(const char *descr, segloss_tensor_role role, segloss_dtype *out, int *swap,
                        char *detail, size_t detail_len)
{
    char little[8];
    *swap = 0;
    /* '>f4' is '<f4' byte-swapped; '|' types have no byte order */
    if (descr[0] == '>' && strlen(descr) < sizeof little) {
        little[0] = '<';
        memcpy(little + 1, descr + 1, strlen(descr)); /* with the NUL */
        for (size_t i = 0; i < sizeof npy_dtypes / sizeof npy_dtypes[0]; i++)
            if (strcmp(little, npy_dtypes[i].descr) == 0 && npy_dtypes[i].role == role) {
                *out = npy_dtypes[i].dtype;
                *swap = 1;
                return 0;
            }
    }
    const char *accepted = role == SEGLOSS_ROLE_LOGITS
                               ? "logits must be float32, float16 or float64 "
                                 "('<f4', '<f2', '<f8')"
                               : "masks must be integer class indices: uint8, int8, uint16, "
                                 "int32 or int64 ('|u1', '|i1', '<u2', '<i4', '<i8')";
    for (size_t i = 0; i < sizeof npy_dtypes / sizeof npy_dtypes[0]; i++) {
        if (strcmp(descr, npy_dtypes[i].descr) != 0)
            continue;
        if (npy_dtypes[i].role != role)
            break;
        *out = npy_dtypes[i].dtype;
        return 0;
    }
    return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                        ".npy descr '%s' is not supported: %s", descr, accepted);
}

/*
 * Copies the array into aligned memory in C order and host (little-endian) byte order:
 * element (i0, i1, i2, i3) of a Fortran-ordered array is at i0 + s0 * (i1 + s1 * (i2 + s2 * i3)).
 * The shape was checked against the limits, so the element count fits.
 */
static int reorder_copy(const uint8_t *src, size_t elem, const size_t *shape, int rank, int swap,
                        int fortran, const void **view, void **owned, char *detail,
                        size_t detail_len)
{
    size_t dims[4] = {1, 1, 1, 1}, count = 1;
    for (int i = 0; i < rank; i++) {
        dims[4 - rank + i] = shape[i];
        count *= shape[i];
    }
    void *copy = segloss__aligned_alloc(SEGLOSS__COPY_ALIGN, count * elem);
    if (!copy)
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                            "out of memory reordering %zu .npy elements", count);
    /* strides, in elements, of the source for each C-order index */
    size_t stride[4];
    if (fortran) {
        /* only the real dimensions count: the padded leading ones have extent 1 */
        size_t s = 1;
        for (int i = 4 - rank; i < 4; i++) {
            stride[i] = s;
            s *= dims[i];
        }
        for (int i = 0; i < 4 - rank; i++)
            stride[i] = 0;
    } else {
        stride[3] = 1;
        for (int i = 2; i >= 0; i--)
            stride[i] = stride[i + 1] * dims[i + 1];
    }
    uint8_t *dst = copy;
    for (size_t a = 0; a < dims[0]; a++)
        for (size_t b = 0; b < dims[1]; b++)
            for (size_t c = 0; c < dims[2]; c++)
                for (size_t d = 0; d < dims[3]; d++) {
                    const uint8_t *from =
                        src +
                        (a * stride[0] + b * stride[1] + c * stride[2] + d * stride[3]) * elem;
                    for (size_t k = 0; k < elem; k++)
                        dst[k] = from[swap ? elem - 1 - k : k];
                    dst += elem;
                }
    *view = copy;
    *owned = copy;
    return 0;
}

int segloss_npy_decode(const void *buf, size_t len, segloss_tensor_role role,
                       const segloss_limits *limits, segloss_tensor *out, void **owned,
                       char *detail, size_t detail_len)
{
    const uint8_t *bytes = buf;
    npy_header h;
    size_t header_len, prefix, elements, need;
    segloss_dtype dtype = SEGLOSS_DTYPE_NONE;
    int rc;

    if (owned)
        *owned = NULL;
    if (!out || !owned || !limits || (!buf && len))
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "npy_decode: NULL argument");
    memset(out, 0, sizeof *out);
    if (len < NPY_MAGIC_LEN + 2 || memcmp(bytes, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "not a .npy file (it must start with \\x93NUMPY)");
    int major = bytes[6], minor = bytes[7];
    if (major == 1 && minor == 0) {
        if (len < 10)
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                ".npy file is truncated in its header length");
        header_len = (size_t)bytes[8] | (size_t)bytes[9] << 8;
        prefix = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (len < 12)
            return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                                ".npy file is truncated in its header length");
        header_len = (size_t)bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16 |
                     (size_t)bytes[11] << 24;
        prefix = 12;
    } else {
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            ".npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)",
                            major, minor);
    }
    if (header_len > SEGLOSS_NPY_MAX_HEADER)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            ".npy header is %zu bytes; at most %d are accepted", header_len,
                            SEGLOSS_NPY_MAX_HEADER);
    if (header_len > len - prefix)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            ".npy header says %zu bytes but only %zu follow (truncated upload?)",
                            header_len, len - prefix);
    rc = parse_header((const char *)bytes + prefix, header_len, &h, detail, detail_len);
    if (rc != 0)
        return rc;
    int swap = 0;
    rc = lookup_dtype(h.descr, role, &dtype, &swap, detail, detail_len);
    if (rc != 0)
        return rc;
    rc = segloss__check_shape(".npy array", role, h.shape, h.rank, limits, &elements, detail,
                              detail_len);
    if (rc != 0)
        return rc;

    size_t elem = segloss_dtype_size(dtype);
    size_t have = len - prefix - header_len;
    char shape_text[96];
    if (segloss_mul_size(elements, elem, &need) != 0)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT, ".npy shape %s is too large",
                            segloss__format_shape(h.shape, h.rank, shape_text, sizeof shape_text));
    if (need != have)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            ".npy data is %zu bytes; shape %s of %s needs %zu%s", have,
                            segloss__format_shape(h.shape, h.rank, shape_text, sizeof shape_text),
                            segloss_dtype_name(dtype), need,
                            have < need ? " (truncated upload?)" : "");

    if (swap || h.fortran_order)
        rc = reorder_copy(bytes + prefix + header_len, elem, h.shape, h.rank, swap, h.fortran_order,
                          &out->data, owned, detail, detail_len);
    else
        rc = segloss__view_or_copy(bytes + prefix + header_len, need, elem, &out->data, owned,
                                   detail, detail_len);
    if (rc != 0)
        return rc;
    out->dtype = dtype;
    out->rank = h.rank;
    memcpy(out->shape, h.shape, sizeof out->shape);
    return 0;
}

int segloss_npy_probe(const void *buf, size_t len, segloss_tensor_role role,
                      const segloss_limits *limits, size_t *header_bytes, size_t *total_bytes,
                      segloss_tensor *layout)
{
    const uint8_t *bytes = buf;
    segloss_limits defaults;
    npy_header h;
    segloss_dtype dtype = SEGLOSS_DTYPE_NONE;
    size_t prefix, header_len, elements, need;
    int swap = 0, rc;
    if (!limits) {
        segloss_limits_default(&defaults);
        limits = &defaults;
    }
    *header_bytes = *total_bytes = 0;
    size_t magic = len < NPY_MAGIC_LEN ? len : NPY_MAGIC_LEN;
    if (!buf || memcmp(bytes, NPY_MAGIC, magic) != 0)
        return SEGLOSS_EFORMAT;
    if (len < 8) {
        *header_bytes = 8;
        return 1;
    }
    if (bytes[6] == 1 && bytes[7] == 0)
        prefix = 10;
    else if ((bytes[6] == 2 || bytes[6] == 3) && bytes[7] == 0)
        prefix = 12;
    else
        return SEGLOSS_EUNSUPPORTED;
    if (len < prefix) {
        *header_bytes = prefix;
        return 1;
    }
    header_len = (size_t)bytes[8] | (size_t)bytes[9] << 8;
    if (prefix == 12)
        header_len |= (size_t)bytes[10] << 16 | (size_t)bytes[11] << 24;
    if (header_len > SEGLOSS_NPY_MAX_HEADER)
        return SEGLOSS_EFORMAT;
    *header_bytes = prefix + header_len;
    if (len < prefix + header_len)
        return 1;
    if ((rc = parse_header((const char *)bytes + prefix, header_len, &h, NULL, 0)) != 0 ||
        (rc = lookup_dtype(h.descr, role, &dtype, &swap, NULL, 0)) != 0 ||
        (rc = segloss__check_shape(".npy array", role, h.shape, h.rank, limits, &elements, NULL,
                                   0)) != 0)
        return rc;
    if (segloss_mul_size(elements, segloss_dtype_size(dtype), &need) != 0 ||
        need > SIZE_MAX - *header_bytes)
        return SEGLOSS_ELIMIT;
    *total_bytes = *header_bytes + need;
    if (layout) {
        const uint8_t *data = bytes + *header_bytes;
        size_t elem = segloss_dtype_size(dtype);
        memset(layout, 0, sizeof *layout);
        layout->dtype = dtype;
        layout->rank = h.rank;
        memcpy(layout->shape, h.shape, sizeof layout->shape);
        if (!swap && !h.fortran_order && (elem <= 1 || (uintptr_t)data % elem == 0))
            layout->data = data;
    }
    return 0;
}
