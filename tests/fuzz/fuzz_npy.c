/*
 * fuzz_npy.c - libFuzzer harness for the .npy decoder (lib/decode/npy.c) and the logits dispatch.
 *
 * Each input is decoded in both roles. A success must hand back a view whose every byte is
 * readable (ASan checks the sum below) and aligned to its element size; a failure must leave
 * a NUL-terminated detail and nothing owned. Limits are smaller than the daemon's so that a
 * valid-looking header cannot make one run allocate gigabytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segloss/decode.h"
#include "segloss/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/npy", "tests/crashers/npy",
                                                NULL};

static void fuzz_limits(segloss_limits *limits)
{
    segloss_limits_default(limits);
    limits->max_elements = (size_t)1 << 24;
}

/* Reads every byte of the view and checks its alignment; aborts on a broken promise. */
static void touch(const segloss_tensor *t)
{
    size_t count = 1;
    volatile uint8_t sink = 0;
    for (int i = 0; i < t->rank; i++)
        count *= t->shape[i];
    size_t elem = segloss_dtype_size(t->dtype);
    if (t->rank == 0 || !t->data || elem == 0 || (uintptr_t)t->data % elem != 0)
        abort();
    const uint8_t *p = t->data;
    for (size_t i = 0; i < count * elem; i++)
        sink ^= p[i];
    (void)sink;
}

static int decode_role(const uint8_t *data, size_t size, segloss_tensor_role role)
{
    segloss_limits limits;
    segloss_tensor t;
    void *owned = NULL;
    char detail[256];

    fuzz_limits(&limits);
    int rc = segloss_npy_decode(data, size, role, &limits, &t, &owned, detail, sizeof detail);
    if (rc == 0) {
        touch(&t);
        free(owned);
    } else if (owned || t.rank != 0 || strnlen(detail, sizeof detail) == sizeof detail) {
        abort();
    }
    return rc;
}

/* 0 when either role accepts the bytes, else the logits role's error code. */
int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    int logits = decode_role(data, size, SEGLOSS_ROLE_LOGITS);
    int labels = decode_role(data, size, SEGLOSS_ROLE_LABELS);
    return logits == 0 || labels == 0 ? 0 : logits;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    segloss_limits limits;
    segloss_tensor t;
    void *owned = NULL;
    char detail[256];

    (void)segloss_fuzz_decode(data, size);
    fuzz_limits(&limits);
    if (segloss_logits_decode(data, size, &limits, &t, &owned, detail, sizeof detail) == 0)
        touch(&t);
    free(owned);
    (void)segloss_detect_format(data, size);
    return 0;
}
