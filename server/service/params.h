/*
 * params.h - the evaluation parameters of one request: the `params` JSON part merged with the
 * query string, strictly typed.
 *
 * A key may come from either source but not both (400 naming the key), and not twice from one
 * source. Types are strict (a JSON string where a number belongs is an error) and every message
 * names the field and says what is allowed, e.g. "class_weights[3] must be a number >= 0".
 * Checks that need the logits (lengths against C, num_classes == C) are params_check_classes,
 * run once C is known; they answer 422.
 *
 * `run`, `step` and `split` are parsed and carried for the runs store; nothing else reads them.
 *
 * Ownership: a params_request owns its arrays and strings; params_free releases them. The
 * segloss_params inside points into them and stays valid until params_free.
 */
#ifndef SERVER_PARAMS_H
#define SERVER_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/names.h"
#include "segloss/loss.h"

/* The longest run name and split (names.h holds their rules). */
#define PARAMS_MAX_RUN_LEN NAMES_RUN_MAX
#define PARAMS_MAX_SPLIT_LEN NAMES_SPLIT_MAX
/* A class name is a label on the dashboard ("pottedplant", "traffic sign"). */
#define PARAMS_MAX_CLASS_NAME_LEN 64

/* The keys, one bit each in the given_* masks. */
typedef enum params_key {
    PARAMS_CLASS_WEIGHTS,
    PARAMS_ALPHA,
    PARAMS_GAMMA,
    PARAMS_BETA,
    PARAMS_SMOOTH,
    PARAMS_THRESHOLD,
    PARAMS_MAIN_LOSS,
    PARAMS_DICE_LOSS,
    PARAMS_NUM_CLASSES,
    PARAMS_SEMANTICS,
    PARAMS_CONFUSION_MATRIX,
    PARAMS_RUN,
    PARAMS_STEP,
    PARAMS_SPLIT,
    PARAMS_CLASS_NAMES,
    PARAMS_KEY_COUNT
} params_key;

typedef struct params_request {
    segloss_params loss;   /* effective loss parameters (arrays point below) */
    double *class_weights; /* NULL = all 1 */
    size_t class_weights_len;
    double *alpha_values; /* per-class alpha */
    size_t alpha_len;
    bool confusion_matrix;
    bool has_num_classes;
    size_t num_classes;
    char *run; /* NULL when not given */
    bool has_step;
    int64_t step;
    char *split;            /* NULL when not given */
    char *class_names_json; /* the names as a JSON array (for the runs store), or NULL */
    size_t class_names_len;
    uint32_t given_query; /* bit (1 << params_key) per key seen in the query string */
    uint32_t given_json;  /* ... in the params part */
    size_t max_classes;   /* the configured --max-classes: bounds num_classes and lists */
} params_request;

/* The defaults of docs/ARCHITECTURE.md §5.4. */
void params_init(params_request *p);
void params_free(params_request *p);

/* The key's name as clients spell it; NULL for an out-of-range key. */
const char *params_key_name(params_key key);

/*
 * One query-string pair. Values: numbers, "null" (alpha), comma-separated lists (class_weights,
 * alpha), true/false/1/0 (booleans), words. Returns 0, or 400 with a detail naming the key.
 */
int params_set_query(params_request *p, const char *key, const char *value, char *detail,
                     size_t detail_len);

/* The params part: a JSON object of at most max_bytes. Returns 0, 400 or 413 with a detail. */
int params_set_json(params_request *p, const char *json, size_t len, size_t max_bytes, char *detail,
                    size_t detail_len);

/*
 * Checks against the logits' class count C (num_classes, array lengths) and the library's own
 * checks. Returns 0 or 422 with a detail.
 */
int params_check_classes(const params_request *p, size_t num_classes, char *detail,
                         size_t detail_len);

#endif
