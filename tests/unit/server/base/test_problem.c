/*
 * test_problem.c - problem+json documents, the code-to-status mapping from SEGLOSS_ERRORS, and
 * the JSON writer they are built with (17 digits, NaN as null, escaping).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "base/json_writer.h"
#include "base/problem.h"
#include "segloss/errors.h"
#include "testing.h"

static void test_status_mapping(void)
{
    CHECK_EQ_INT(problem_status_for_code(SEGLOSS_EFORMAT), 400);
    CHECK_EQ_INT(problem_status_for_code(SEGLOSS_EUNSUPPORTED), 415);
    CHECK_EQ_INT(problem_status_for_code(SEGLOSS_ESHAPE), 422);
    CHECK_EQ_INT(problem_status_for_code(SEGLOSS_ENONFINITE), 422);
    CHECK_EQ_INT(problem_status_for_code(SEGLOSS_ELIMIT), 413);
    CHECK_EQ_INT(problem_status_for_code(SEGLOSS_ENOMEM), 503);
    CHECK_EQ_INT(problem_status_for_code(-12345), 500);
    CHECK(strcmp(problem_title(422), "Unprocessable Content") == 0);
    CHECK(strcmp(problem_title(413), "Content Too Large") == 0);
}

static void test_document(void)
{
    size_t len = 0;
    char *text = problem_json(422, "mask 2 is \"odd\"\n", "req-1", &len);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK_EQ_INT(strlen(text), len);
    cJSON *doc = cJSON_Parse(text);
    CHECK(doc != NULL);
    if (doc) {
        CHECK(strcmp(cJSON_GetObjectItem(doc, "type")->valuestring, "about:blank") == 0);
        CHECK(strcmp(cJSON_GetObjectItem(doc, "title")->valuestring, "Unprocessable Content") == 0);
        CHECK_EQ_INT(cJSON_GetObjectItem(doc, "status")->valueint, 422);
        CHECK(strcmp(cJSON_GetObjectItem(doc, "detail")->valuestring, "mask 2 is \"odd\"\n") == 0);
        CHECK(strcmp(cJSON_GetObjectItem(doc, "error")->valuestring,
                     cJSON_GetObjectItem(doc, "detail")->valuestring) == 0);
        CHECK(strcmp(cJSON_GetObjectItem(doc, "request_id")->valuestring, "req-1") == 0);
        cJSON_Delete(doc);
    }
    free(text);
    /* No detail: the title stands in, so `detail` is never empty. */
    text = problem_json(404, NULL, NULL, &len);
    CHECK(text && strstr(text, "\"detail\":\"Not Found\"") && !strstr(text, "request_id"));
    free(text);
}

static void test_writer_numbers(void)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "a");
    json_number(&w, 0.1);
    json_key(&w, "nan");
    json_number(&w, NAN);
    json_key(&w, "inf");
    json_number(&w, -INFINITY);
    json_key(&w, "arr");
    double v[] = {1.0 / 3.0, 1e-300, 2};
    json_number_array(&w, v, 3);
    json_key(&w, "nested");
    json_object_begin(&w);
    json_key(&w, "s");
    json_string(&w, "tab\t\x01");
    json_key(&w, "u");
    json_uint(&w, 18446744073709551615ull);
    json_object_end(&w);
    json_key(&w, "empty");
    json_array_begin(&w);
    json_array_end(&w);
    json_object_end(&w);
    size_t len = 0;
    char *text = json_writer_finish(&w, &len);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK(strstr(text, "\"a\":0.10000000000000001") != NULL);
    CHECK(strstr(text, "\"nan\":null,\"inf\":null") != NULL);
    CHECK(strstr(text, "\"s\":\"tab\\t\\u0001\"") != NULL);
    CHECK(strstr(text, "\"empty\":[]") != NULL);
    cJSON *doc = cJSON_Parse(text);
    CHECK(doc != NULL);
    if (doc) {
        const cJSON *arr = cJSON_GetObjectItem(doc, "arr");
        /* 17 digits read back to the same double. */
        CHECK(cJSON_GetArrayItem(arr, 0)->valuedouble == 1.0 / 3.0);
        CHECK(cJSON_GetArrayItem(arr, 1)->valuedouble == 1e-300);
        cJSON_Delete(doc);
    }
    free(text);
}

int main(void)
{
    RUN(test_status_mapping);
    RUN(test_document);
    RUN(test_writer_numbers);
    return TESTS_DONE();
}
