/*
 * resize.c - the tables behind resizing logits to the mask grid on the fly: bilinear with
 * align_corners=True, as the seed's F.interpolate does, for one axis at a time.
 */
#include <stdlib.h>

#include "loss/loss_internal.h"
#include "segloss/errors.h"

void segloss__resize_axis(size_t in, size_t out, size_t *i0, size_t *i1, float *l1)
{
    /* PyTorch's area_pixel_compute_scale and source index, computed in double */
    double scale = out > 1 ? (double)(in - 1) / (double)(out - 1) : 0.0;
    for (size_t d = 0; d < out; d++) {
        double src = scale * (double)d;
        size_t a = (size_t)src;
        if (a > in - 1)
            a = in - 1;
        i0[d] = a;
        i1[d] = a < in - 1 ? a + 1 : a;
        l1[d] = (float)(src - (double)a);
    }
}

int segloss__lerp_cols_build(size_t w_in, size_t w_out, const size_t *col0, const size_t *col1,
                             const float *l1, int32_t **storage, segloss__lerp_cols *out)
{
    size_t groups = (w_out + 7) / 8;
    int32_t *c0 = malloc((4 * w_out + groups) * sizeof(int32_t));
    *storage = c0;
    if (!c0)
        return SEGLOSS_ENOMEM;
    int32_t *c1 = c0 + w_out, *off0 = c1 + w_out, *off1 = off0 + w_out, *window = off1 + w_out;
    for (size_t j = 0; j < w_out; j++) {
        c0[j] = (int32_t)col0[j];
        c1[j] = (int32_t)col1[j];
        off0[j] = off1[j] = 0;
    }
    for (size_t g = 0; g < groups; g++) {
        size_t first = 8 * g, base = col0[first];
        /* source columns never decrease along a row, so the group's last column reads
         * furthest; the window must also lie inside the source row */
        int fits = first + 8 <= w_out && base + 8 <= w_in && col1[first + 7] - base < 8;
        window[g] = fits ? (int32_t)base : -1;
        for (size_t j = first; fits && j < first + 8; j++) {
            off0[j] = (int32_t)(col0[j] - base);
            off1[j] = (int32_t)(col1[j] - base);
        }
    }
    *out = (segloss__lerp_cols){
        .c0 = c0, .c1 = c1, .off0 = off0, .off1 = off1, .window = window, .l1 = l1};
    return 0;
}
