/*
 * evaluate_case.c - a program outside the tree that uses the installed library: built by
 * tests/e2e/test_install.sh with `pkg-config --cflags --libs segloss` only. It evaluates the
 * logits and labels .npy files given on the command line with default parameters and prints
 * loss.total, loss.ce, metrics.miou and metrics.mean_dice, one per line (%.17g).
 */
#include <segloss/segloss.h>
#include <stdio.h>
#include <stdlib.h>

static void *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long n;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    else {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    char detail[512] = "";
    size_t llen = 0, mlen = 0;
    void *lbuf = NULL, *mbuf = NULL, *lown = NULL, *mown = NULL;
    segloss_tensor logits = {0}, labels = {0};
    segloss_ctx *ctx = NULL;
    segloss_result *res = NULL;
    segloss_limits limits;
    segloss_params params;
    int rc = 1;
    if (argc != 3) {
        fprintf(stderr, "usage: %s logits.npy labels.npy\n", argv[0]);
        return 2;
    }
    segloss_limits_default(&limits);
    segloss_params_default(&params);
    if (!(lbuf = read_all(argv[1], &llen)) || !(mbuf = read_all(argv[2], &mlen)))
        goto fail;
    if (segloss_logits_decode(lbuf, llen, &limits, &logits, &lown, detail, sizeof detail) ||
        segloss_npy_decode(mbuf, mlen, SEGLOSS_ROLE_LABELS, &limits, &labels, &mown, detail,
                           sizeof detail) ||
        segloss_ctx_new(&ctx, 0, SEGLOSS_KERNEL_AUTO) ||
        segloss_evaluate(ctx, &logits, &labels, &params, &res, detail, sizeof detail))
        goto fail;
    printf("%.17g\n%.17g\n%.17g\n%.17g\n", res->total, res->ce, res->miou, res->mean_dice);
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "evaluate_case: %s\n", detail[0] ? detail : "cannot read the files");
    segloss_result_free(res);
    segloss_ctx_free(ctx);
    free(lown);
    free(mown);
    free(lbuf);
    free(mbuf);
    return rc;
}
