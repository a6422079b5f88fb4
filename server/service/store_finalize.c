/*
 * store_finalize.c - the numbers of a stored aggregate (store_finalize.h).
 */
#include "service/store_finalize.h"

#include <stdio.h>
#include <string.h>

#include "service/params.h"

int store_finalize(const segloss_stats *stats, const char *loss_params_json, segloss_result **out,
                   char *err, size_t err_len)
{
    params_request p;
    params_init(&p);
    /* what was stored passed the configured limit when it was recorded; reading it back must
     * not depend on today's --max-classes */
    p.max_classes = SEGLOSS_MAX_CLASSES_CEILING;
    *out = NULL;
    int rc = STORE_FAILED;
    char detail[256];
    if (params_set_json(&p, loss_params_json, strlen(loss_params_json), (size_t)1 << 24, detail,
                        sizeof detail) != 0) {
        snprintf(err, err_len, "stored loss parameters unreadable: %s", detail);
        goto done;
    }
    if (segloss_result_from_stats(stats, &p.loss, out, detail, sizeof detail) != 0) {
        snprintf(err, err_len, "finalising the aggregate: %s", detail);
        goto done;
    }
    (*out)->c = (*out)->num_classes = stats->num_classes;
    rc = STORE_OK;
done:
    params_free(&p);
    return rc;
}
