/*
 * format.c - which decoder an upload goes to.
 *
 * Formats are told apart by their first bytes, never by a file name or a Content-Type a client
 * may have got wrong. segloss_logits_decode is the one entry point the server calls for the
 * logits part: it sends .npy and safetensors to their decoders and refuses images with a detail
 * that says what to upload instead. The checks both tensor decoders share are in
 * tensor_checks.c, below the decoders, so no file here depends on one that depends on it.
 */
#include <string.h>

#include "decode/decode_internal.h"
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
