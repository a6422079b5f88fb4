/*
 * tensor_checks.c - the checks every tensor decoder shares: a shape against its role and the
 * limits, a shape printed as Python prints it, and the "borrow when aligned, copy when not" step.
 *
 * npy.c and safetensors.c both call these, so both formats give the same answer (and the same
 * message) for the same array. format.c, which dispatches to those decoders, sits above them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_internal.h"
#include "decode/decode_internal.h"
#include "segloss/errors.h"

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

int segloss__check_shape(const char *what, segloss_tensor_role role, const size_t *shape, int rank,
                         const segloss_limits *limits, size_t *elements, char *detail,
                         size_t detail_len)
{
    char text[128];
    int logits = role == SEGLOSS_ROLE_LOGITS;
    int min_rank = logits ? 3 : 2;
    size_t count = 1;

    segloss__format_shape(shape, rank, text, sizeof text);
    if (rank < min_rank || rank > min_rank + 1)
        return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE, "%s has shape %s; %s", what, text,
                            logits ? "logits must be (N, C, H, W) or (C, H, W)"
                                   : "masks must be (N, H, W) or (H, W)");
    for (int i = 0; i < rank; i++) {
        if (shape[i] == 0)
            return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                                "%s has shape %s; every dimension must be at least 1", what, text);
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
    *owned = NULL;
    if (elem_size <= 1 || (uintptr_t)data % elem_size == 0) {
        *view = data;
        return 0;
    }
    void *copy = segloss__aligned_alloc(SEGLOSS__COPY_ALIGN, nbytes);
    if (!copy)
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                            "out of memory copying %zu bytes of misaligned tensor data", nbytes);
    memcpy(copy, data, nbytes);
    *view = copy;
    *owned = copy;
    return 0;
}
