/*
 * fuzz_safetensors.c - libFuzzer harness for the safetensors decoder (lib/decode/safetensors.c).
 *
 * Decodes logits and labels together and logits alone. A success must hand back views whose
 * every byte is readable (ASan checks the sum) and aligned to the element size; a failure must
 * leave a NUL-terminated detail and nothing owned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segloss/decode.h"
#include "segloss/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/safetensors",
                                                "tests/crashers/safetensors", NULL};

static void touch(const segloss_tensor *t)
{
    size_t count = 1;
    volatile uint8_t sink = 0;
    for (int i = 0; i < t->rank; i++)
        count *= t->shape[i];
    size_t elem = segloss_dtype_size(t->dtype);
    if (!t->data || elem == 0 || (uintptr_t)t->data % elem != 0)
        abort();
    const uint8_t *p = t->data;
    for (size_t i = 0; i < count * elem; i++)
        sink ^= p[i];
    (void)sink;
}

int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    segloss_limits limits;
    segloss_tensor logits, labels;
    void *owned_logits = NULL, *owned_labels = NULL;
    char detail[256];

    segloss_limits_default(&limits);
    limits.max_elements = (size_t)1 << 24;
    int rc = segloss_safetensors_decode(data, size, &limits, &logits, &owned_logits, &labels,
                                        &owned_labels, detail, sizeof detail);
    if (rc == 0) {
        touch(&logits);
        if (labels.rank != 0)
            touch(&labels);
    } else if (owned_logits || owned_labels || logits.rank || labels.rank ||
               strnlen(detail, sizeof detail) == sizeof detail) {
        abort();
    }
    free(owned_logits);
    free(owned_labels);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    segloss_limits limits;
    segloss_tensor logits;
    void *owned = NULL;
    char detail[256];

    int rc = segloss_fuzz_decode(data, size);
    segloss_limits_default(&limits);
    limits.max_elements = (size_t)1 << 24;
    int alone = segloss_safetensors_decode(data, size, &limits, &logits, &owned, NULL, NULL, detail,
                                           sizeof detail);
    /* Asking for labels too can only add reasons to fail, never remove one. */
    if (rc == 0 && alone != 0)
        abort();
    free(owned);
    return 0;
}
