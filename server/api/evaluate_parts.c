/*
 * evaluate_parts.c - POST /v1/evaluate's parts on the generic multipart parser (see
 * evaluate_parts.h).
 *
 * The parser's detail says what went wrong in its own words; an answer adds what a client of
 * this route should do about it (the parts it takes, the flag that sets a limit). The 415 is
 * this route's own sentence.
 */
#include "api/evaluate_parts.h"

#include "base/detail.h"
#include "segloss/decode.h"

#include <stdio.h>
#include <string.h>

/* The .npy header of the logits says how long the part is (segloss_npy_probe). */
static int npy_length(const unsigned char *data, size_t len, size_t *need, size_t *total)
{
    size_t header = 0;
    int rc = segloss_npy_probe(data, len, SEGLOSS_ROLE_LOGITS, NULL, &header, total, NULL);
    if (rc == 1 && header > len) {
        *need = header;
        return 1;
    }
    return rc == 0 ? 0 : -1;
}

/* The HTTP status of a parser error, and the advice appended to its detail. */
static int answer(int rc, char *detail, size_t detail_len)
{
    int status = 400;
    const char *advice = "";
    switch (rc) {
    case 0: return 0;
    case MULTIPART_E_NOT_FORM: status = 415; break;
    case MULTIPART_E_UNKNOWN:
        advice = "; the parts are logits (once), mask (one per batch item), image (optional) "
                 "and params (optional)";
        break;
    case MULTIPART_E_BODY_LIMIT:
        status = 413;
        advice = " (--max-body-mb)";
        break;
    case MULTIPART_E_PART_LIMIT: /* only params has a limit of its own */
        status = 413;
        advice = "; send only the parameter object";
        break;
    case MULTIPART_E_PART_COUNT:
        status = 413;
        advice = " (--max-parts)";
        break;
    case MULTIPART_E_NOMEM: status = 503; break;
    default: /* MULTIPART_E_SYNTAX, MULTIPART_E_REPEATED, MULTIPART_E_TRUNCATED */ break;
    }
    size_t used = detail && detail_len ? strnlen(detail, detail_len) : 0;
    if (detail && used + 1 < detail_len)
        snprintf(detail + used, detail_len - used, "%s", advice);
    return status;
}

int evaluate_parts_new(const char *content_type, size_t body_len,
                       const evaluate_parts_limits *limits, multipart_parser **out, char *detail,
                       size_t detail_len)
{
    const multipart_field fields[] = {
        [EVALUATE_PART_LOGITS] = {"logits", true, 0, true, npy_length, 8 /* magic, version */},
        [EVALUATE_PART_MASK] = {"mask", false, 0, false, NULL, 0},
        [EVALUATE_PART_IMAGE] = {"image", false, 0, false, NULL, 0},
        [EVALUATE_PART_PARAMS] = {"params", true, limits->max_params_bytes, false, NULL, 0},
    };
    multipart_limits ml = {limits->max_body, limits->max_parts, limits->pool, fields,
                           sizeof fields / sizeof fields[0]};
    int rc = multipart_new(content_type, body_len, &ml, out, detail, detail_len);
    if (rc == MULTIPART_E_NOT_FORM)
        return detail_fail(detail, detail_len, 415,
                           "POST /v1/evaluate takes multipart/form-data (got Content-Type "
                           "'%.80s'); e.g. curl -F logits=@logits.npy -F mask=@mask.png",
                           content_type ? content_type : "none");
    return answer(rc, detail, detail_len);
}

int evaluate_parts_feed(multipart_parser *parser, const void *data, size_t len, char *detail,
                        size_t detail_len)
{
    return answer(multipart_feed(parser, data, len, detail, detail_len), detail, detail_len);
}

int evaluate_parts_finish(multipart_parser *parser, bool allow_no_mask, char *detail,
                          size_t detail_len)
{
    int rc = multipart_finish(parser, detail, detail_len);
    if (rc)
        return answer(rc, detail, detail_len);
    if (multipart_count_kind(parser, EVALUATE_PART_LOGITS) == 0)
        return detail_fail(detail, detail_len, 400,
                           "the logits part is missing; send it as -F logits=@logits.npy");
    if (!allow_no_mask && multipart_count_kind(parser, EVALUATE_PART_MASK) == 0)
        return detail_fail(detail, detail_len, 400,
                           "no mask part; send one PNG per batch item (-F mask=@mask_0.png) or "
                           "one .npy label array");
    return 0;
}

size_t evaluate_parts_blobs(const multipart_parser *parser, evaluate_part kind,
                            evaluation_blob *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < multipart_count(parser) && n < max; i++) {
        const multipart_part *p = multipart_get(parser, i);
        if (p->kind == (size_t)kind)
            out[n++] = (evaluation_blob){p->data, p->len};
    }
    return n;
}
