/*
 * format.c - which decoder an upload goes to, and the checks every tensor decoder shares.
 *
 * Formats are told apart by their first bytes, never by a file name or a Content-Type a client
 * may have got wrong. segloss_logits_decode is the one entry point the server calls for the
 * logits part: it sends .npy and safetensors to their decoders and refuses images with a detail
 * that says what to upload instead. The role checks (rank, zero dimensions, size limits) and
 * the "borrow when aligned, copy when not" step live here so both tensor formats give the same
 * answer for the same array.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "segloss/decode.h"
#include "segloss/errors.h"

segloss_format segloss_detect_format(const void *buf, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = buf;

    if (!buf)
        return SEGLOSS_FORMAT_UNKNOWN;
    if (len >= 6 && memcmp(b, "\x93NUMPY", 6) == 0)
        return SEGLOSS_FORMAT_NPY;
    if (len >= 8 && memcmp(b, png_sig, 8) == 0)
        return SEGLOSS_FORMAT_PNG;
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return SEGLOSS_FORMAT_JPEG;
    /*
     * safetensors has no magic: a u64 little-endian header length, then a JSON object. A JSON
     * header is never 4 GiB, so the high half must be zero, and the object starts with '{'.
     * A file whose length field overruns it is still called safetensors so that its decoder
     * can say precisely what is wrong.
     */
    if (len >= 9 && b[8] == '{' && b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0)
        return SEGLOSS_FORMAT_SAFETENSORS;
    return SEGLOSS_FORMAT_UNKNOWN;
}

const char *segloss_format_name(segloss_format format)
{
    switch (format) {
    case SEGLOSS_FORMAT_NPY: return "npy";
    case SEGLOSS_FORMAT_SAFETENSORS: return "safetensors";
    case SEGLOSS_FORMAT_PNG: return "png";
    case SEGLOSS_FORMAT_JPEG: return "jpeg";
    case SEGLOSS_FORMAT_UNKNOWN: break;
    }
    return "unknown";
}

int segloss_logits_decode(const void *buf, size_t len, const segloss_limits *limits,
                          segloss_tensor *out, void **owned, char *detail, size_t detail_len)
{
    segloss_format format = segloss_detect_format(buf, len);

    if (owned)
        *owned = NULL;
    if (out)
        memset(out, 0, sizeof *out);
    switch (format) {
    case SEGLOSS_FORMAT_NPY:
        return segloss_npy_decode(buf, len, SEGLOSS_ROLE_LOGITS, limits, out, owned, detail,
                                  detail_len);
    case SEGLOSS_FORMAT_SAFETENSORS:
        return segloss_safetensors_decode(buf, len, limits, out, owned, NULL, NULL, detail,
                                          detail_len);
    case SEGLOSS_FORMAT_PNG:
    case SEGLOSS_FORMAT_JPEG:
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "logits are a %s image; upload the raw network output as .npy "
                            "(np.save) or safetensors",
                            format == SEGLOSS_FORMAT_PNG ? "PNG" : "JPEG");
    case SEGLOSS_FORMAT_UNKNOWN: break;
    }
    return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                        "logits are neither .npy (starts with \\x93NUMPY) nor safetensors "
                        "(8-byte header length, then a JSON object)");
}

char *segloss__format_shape(const size_t *shape, int rank, char *buf, size_t buf_len)
{
    size_t used = 0;
    if (buf_len == 0)
        return buf;
    buf[0] = '\0';
    for (int i = -1; i <= rank && used < buf_len; i++) {
        int n;
        if (i < 0)
            n = snprintf(buf + used, buf_len - used, "(");
        else if (i == rank)
            n = snprintf(buf + used, buf_len - used, "%s)", rank == 1 ? "," : "");
        else
            n = snprintf(buf + used, buf_len - used, "%s%zu", i ? ", " : "", shape[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

int segloss__check_shape(const char *what, segloss_tensor_role role, const size_t *shape,
                         int rank, const segloss_limits *limits, size_t *elements, char *detail,
                         size_t detail_len)
{
    char text[128];
    int logits = role == SEGLOSS_ROLE_LOGITS;
    int min_rank = logits ? 3 : 2;
    size_t count = 1;

    segloss__format_shape(shape, rank, text, sizeof text);
    if (rank < min_rank || rank > min_rank + 1)
        return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                            "%s has shape %s; %s", what, text,
                            logits ? "logits must be (N, C, H, W) or (C, H, W)"
                                   : "masks must be (N, H, W) or (H, W)");
    for (int i = 0; i < rank; i++) {
        if (shape[i] == 0)
            return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                                "%s has shape %s; every dimension must be at least 1", what,
                                text);
    }
    size_t h = shape[rank - 2], w = shape[rank - 1], pixels;
    if (h > limits->max_side || w > limits->max_side)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "%s has shape %s; height and width are limited to %zu", what, text,
                            limits->max_side);
    if (segloss_mul_size(h, w, &pixels) != 0 || pixels > limits->max_pixels)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "%s has shape %s; one image is limited to %zu pixels", what, text,
                            limits->max_pixels);
    if (logits && shape[rank - 3] > limits->max_classes)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "%s has shape %s; at most %zu classes are supported", what, text,
                            limits->max_classes);
    if (rank == min_rank + 1 && shape[0] > limits->max_batch)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "%s has shape %s; a batch is limited to %zu images", what, text,
                            limits->max_batch);
    for (int i = 0; i < rank; i++) {
        if (segloss_mul_size(count, shape[i], &count) != 0)
            count = (size_t)-1;
    }
    if (count > limits->max_elements)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "%s has shape %s; a tensor is limited to %zu elements", what, text,
                            limits->max_elements);
    *elements = count;
    return 0;
}

int segloss__view_or_copy(const void *data, size_t nbytes, size_t elem_size, const void **view,
                          void **owned, char *detail, size_t detail_len)
{
    void *copy = NULL;

    *owned = NULL;
    if (elem_size <= 1 || (uintptr_t)data % elem_size == 0) {
        *view = data;
        return 0;
    }
    /* posix_memalign rather than aligned_alloc: no size-multiple rule to round up to. */
    if (posix_memalign(&copy, SEGLOSS__COPY_ALIGN, nbytes ? nbytes : 1) != 0)
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                            "out of memory copying %zu bytes of misaligned tensor data",
                            nbytes);
    memcpy(copy, data, nbytes);
    *view = copy;
    *owned = copy;
    return 0;
}
