/*
 * test_params.c - parameters from JSON and the query string: defaults, strict types, messages
 * naming the field, a key given both ways, checks against C.
 */
#include <stdint.h>
#include <string.h>

#include "service/params.h"
#include "testing.h"

static char detail[512];

static int json(params_request *p, const char *text)
{
    detail[0] = '\0';
    return params_set_json(p, text, strlen(text), 65536, detail, sizeof detail);
}

static int query(params_request *p, const char *key, const char *value)
{
    detail[0] = '\0';
    return params_set_query(p, key, value, detail, sizeof detail);
}

static void test_defaults(void)
{
    params_request p;
    params_init(&p);
    CHECK_CLOSE(p.loss.alpha, 0.5, 0, 0);
    CHECK_EQ_INT(p.loss.alpha_kind, SEGLOSS_ALPHA_SCALAR);
    CHECK_CLOSE(p.loss.gamma, 2, 0, 0);
    CHECK_CLOSE(p.loss.beta, 1, 0, 0);
    CHECK_CLOSE(p.loss.smooth, 1e-5, 0, 0);
    CHECK_CLOSE(p.loss.threshold, 0.5, 0, 0);
    CHECK_EQ_INT(p.loss.main_loss, SEGLOSS_MAIN_CE);
    CHECK_EQ_INT(p.loss.semantics, SEGLOSS_SEED);
    CHECK(!p.loss.dice_loss);
    CHECK(!p.confusion_matrix);
    CHECK(p.class_weights == NULL);
    CHECK_EQ_INT(params_check_classes(&p, 21, detail, sizeof detail), 0);
    params_free(&p);
}

static void test_json_all_keys(void)
{
    params_request p;
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_weights\":[1,2.5,0],\"alpha\":[0.1,0.2,0.3],\"gamma\":0,"
                          "\"beta\":2,\"smooth\":0.001,\"threshold\":0.25,\"main_loss\":\"focal\","
                          "\"dice_loss\":true,\"num_classes\":3,\"semantics\":\"standard\","
                          "\"confusion_matrix\":true,\"run\":\"exp-1.a\",\"step\":42,"
                          "\"split\":\"val\"}"),
                 0);
    CHECK_EQ_INT(p.class_weights_len, 3);
    CHECK_CLOSE(p.loss.class_weights[1], 2.5, 0, 0);
    CHECK_EQ_INT(p.loss.alpha_kind, SEGLOSS_ALPHA_PER_CLASS);
    CHECK_EQ_INT(p.loss.alpha_len, 3);
    CHECK_CLOSE(p.loss.gamma, 0, 0, 0);
    CHECK_CLOSE(p.loss.beta, 2, 0, 0);
    CHECK_EQ_INT(p.loss.main_loss, SEGLOSS_MAIN_FOCAL);
    CHECK(p.loss.dice_loss);
    CHECK_EQ_INT(p.loss.semantics, SEGLOSS_STANDARD);
    CHECK(p.confusion_matrix);
    CHECK(p.has_num_classes && p.num_classes == 3);
    CHECK(p.run && strcmp(p.run, "exp-1.a") == 0);
    CHECK(p.has_step && p.step == 42);
    CHECK(p.split && strcmp(p.split, "val") == 0);
    CHECK_EQ_INT(params_check_classes(&p, 3, detail, sizeof detail), 0);
    CHECK_EQ_INT(params_check_classes(&p, 4, detail, sizeof detail), 422);
    CHECK(strstr(detail, "num_classes is 3") != NULL);
    params_free(&p);
}

static void test_json_errors(void)
{
    static const struct {
        const char *text;
        int status;
        const char *needle;
    } cases[] = {
        {"{\"class_weights\":[1,2,3,-1]}", 400, "class_weights[3] must be a number >= 0"},
        {"{\"class_weights\":[1,\"2\"]}", 400, "class_weights[1]"},
        {"{\"class_weights\":[]}", 400, "class_weights"},
        {"{\"class_weights\":3}", 400, "class_weights must be a list"},
        {"{\"alpha\":\"0.5\"}", 400, "alpha must be null, a number"},
        {"{\"alpha\":[0.5,null]}", 400, "alpha[1]"},
        {"{\"gamma\":-1}", 400, "gamma must be a number >= 0"},
        {"{\"gamma\":true}", 400, "gamma"},
        {"{\"beta\":0}", 400, "beta must be a number > 0"},
        {"{\"smooth\":-0.1}", 400, "smooth"},
        {"{\"threshold\":1.5}", 400, "threshold"},
        {"{\"main_loss\":\"dice\"}", 400, "main_loss must be \"ce\" or \"focal\""},
        {"{\"semantics\":\"mmseg\"}", 400, "semantics"},
        {"{\"dice_loss\":1}", 400, "dice_loss must be true or false"},
        {"{\"num_classes\":2.5}", 400, "num_classes must be an integer"},
        {"{\"num_classes\":0}", 400, "num_classes"},
        {"{\"step\":-3}", 400, "step"},
        {"{\"run\":\"../etc\"}", 400, "run must be"},
        {"{\"run\":\"\"}", 400, "run must be"},
        {"{\"foo\":1}", 400, "unknown parameter 'foo'"},
        {"{\"gamma\":1,\"gamma\":2}", 400, "gamma was given twice"},
        {"[1,2]", 400, "must be a JSON object"},
        {"{\"gamma\":", 400, "not valid JSON"},
        {"{} x", 400, "text after the JSON object"},
        {"", 400, "the params part is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        params_request p;
        params_init(&p);
        int rc = json(&p, cases[i].text);
        CHECK_MSG(rc == cases[i].status, "%s: %d", cases[i].text, rc);
        CHECK_MSG(strstr(detail, cases[i].needle) != NULL, "%s: '%s'", cases[i].text, detail);
        params_free(&p);
    }
    /* Over the size limit: 413. */
    params_request p;
    params_init(&p);
    CHECK_EQ_INT(params_set_json(&p, "{\"gamma\": 1}", 12, 8, detail, sizeof detail), 413);
    params_free(&p);
}

static void test_query(void)
{
    params_request p;
    params_init(&p);
    CHECK_EQ_INT(query(&p, "alpha", "0.25"), 0);
    CHECK_CLOSE(p.loss.alpha, 0.25, 0, 0);
    CHECK_EQ_INT(query(&p, "main_loss", "focal"), 0);
    CHECK_EQ_INT(query(&p, "class_weights", "1,2,3"), 0);
    CHECK_EQ_INT(p.class_weights_len, 3);
    CHECK_CLOSE(p.class_weights[2], 3, 0, 0);
    CHECK_EQ_INT(query(&p, "dice_loss", "true"), 0);
    CHECK(p.loss.dice_loss);
    CHECK_EQ_INT(query(&p, "confusion_matrix", "1"), 0);
    CHECK_EQ_INT(query(&p, "step", "7"), 0);
    /* The same key from the params part: 400 naming it. */
    CHECK_EQ_INT(json(&p, "{\"alpha\": 0.5}"), 400);
    CHECK(strstr(detail, "alpha was given both") != NULL);
    params_free(&p);

    params_init(&p);
    CHECK_EQ_INT(query(&p, "alpha", "null"), 0);
    CHECK_EQ_INT(p.loss.alpha_kind, SEGLOSS_ALPHA_NONE);
    CHECK_EQ_INT(query(&p, "alpha", "0.3"), 400);
    CHECK(strstr(detail, "twice") != NULL);
    params_free(&p);

    static const struct {
        const char *key, *value, *needle;
    } bad[] = {
        {"gamma", "abc", "gamma must be a number >= 0"},
        {"gamma", "nan", "gamma"},
        {"gamma", "", "gamma"},
        {"class_weights", "1,,2", "class_weights[1]"},
        {"class_weights", "1,2,-3", "class_weights[2] must be a number >= 0"},
        {"dice_loss", "yes", "dice_loss must be true or false"},
        {"semantics", "x", "semantics"},
        {"nope", "1", "unknown parameter 'nope'"},
        {"alpha", "1,x", "alpha[1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        params_init(&p);
        CHECK_MSG(query(&p, bad[i].key, bad[i].value) == 400, "%s=%s", bad[i].key, bad[i].value);
        CHECK_MSG(strstr(detail, bad[i].needle) != NULL, "%s=%s: '%s'", bad[i].key, bad[i].value,
                  detail);
        params_free(&p);
    }
}

static void test_check_classes(void)
{
    params_request p;
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_weights\":[1,2]}"), 0);
    CHECK_EQ_INT(params_check_classes(&p, 3, detail, sizeof detail), 422);
    CHECK(strstr(detail, "class_weights has 2 values") != NULL);
    CHECK_EQ_INT(params_check_classes(&p, 2, detail, sizeof detail), 0);
    params_free(&p);

    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"alpha\":[1,2,3]}"), 0);
    CHECK_EQ_INT(params_check_classes(&p, 2, detail, sizeof detail), 422);
    CHECK(strstr(detail, "alpha has 3 values") != NULL);
    params_free(&p);
}

/* An empty params part (curl -F 'params=;type=application/json') arrives as no bytes at all,
 * possibly with a NULL pointer: a 400 that says it is empty, never a NULL read. */
static void test_empty_part(void)
{
    params_request p;
    params_init(&p);
    detail[0] = '\0';
    CHECK_EQ_INT(params_set_json(&p, NULL, 0, 65536, detail, sizeof detail), 400);
    CHECK_MSG(strstr(detail, "the params part is empty") != NULL, "%s", detail);
    detail[0] = '\0';
    CHECK_EQ_INT(params_set_json(&p, "", 0, 65536, detail, sizeof detail), 400);
    CHECK_MSG(strstr(detail, "the params part is empty") != NULL, "%s", detail);
    CHECK_EQ_INT(p.given_json, 0);
    params_free(&p);
}

/* Issue 12: integers are read from their text, not through a double. */
static void test_integers_exact(void)
{
    params_request p;
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"step\": 9007199254740991, \"num_classes\": 3}"), 0);
    CHECK(p.has_step && p.step == INT64_C(9007199254740991));
    CHECK_EQ_INT(p.num_classes, 3);
    params_free(&p);
    static const char *const refused[] = {
        "{\"step\": 9007199254740993}",
        "{\"step\": 9007199254740992}",
        "{\"step\": 4503599627370496.5}",
        "{\"step\": 1e3}",
        "{\"step\": -1}",
        "{\"step\": 18446744073709551617}",
        "{\"num_classes\": 3.5}",
        "{\"num_classes\": 1025}",
        "{\"num_classes\": 0}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        params_init(&p);
        CHECK_MSG(json(&p, refused[i]) == 400, "%s accepted", refused[i]);
        CHECK_MSG(strstr(detail, "must be an integer from") != NULL, "%s", detail);
        params_free(&p);
    }
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"step\": 9007199254740993}"), 400);
    CHECK_MSG(strstr(detail, "not '9007199254740993'") != NULL, "%s", detail);
    params_free(&p);
    /* a float counter's "42.0" is 42; nested values before it do not confuse the reader */
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_names\": [\"a,\\\"}\", \"b\"], \"alpha\" : {\"x\": 1}}"), 400);
    params_free(&p);
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{ \"class_names\" : [\"a,\\\"}]\", \"b\"] , \"class_weights\":[1,2],"
                          "\"step\" :42.0 }"),
                 0);
    CHECK(p.has_step && p.step == 42);
    params_free(&p);
    params_init(&p);
    CHECK_EQ_INT(query(&p, "step", "9007199254740993"), 400);
    params_free(&p);
    params_init(&p);
    CHECK_EQ_INT(query(&p, "step", "9007199254740991"), 0);
    CHECK(p.step == INT64_C(9007199254740991));
    params_free(&p);
    params_init(&p);
    CHECK_EQ_INT(query(&p, "num_classes", " 3"), 400);
    params_free(&p);
}

/* Whether s is well-formed UTF-8 (a check independent of text.c). */
static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (!n || (n == 2 && *p < 0xc2))
            return 0;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

/* Issue 12: class names and values are UTF-8 (400 otherwise), "a\u0000b" is refused, the
 * 64-character limit counts characters, and details quote client text as valid UTF-8. */
static void test_utf8(void)
{
    params_request p;
    static const char *const refused[] = {
        "{\"class_names\": [\"ok\", \"bad\xff\"]}",
        "{\"class_names\": [\"a\\u0000b\"]}",
        "{\"class_names\": [\"caf\xc3\"]}",
        "{\"class_names\": [\"\xed\xa0\x80\"]}", /* a surrogate */
        "{\"class_names\": [\"tab\\tname\"]}",
        "{\"class_names\": [\"c1\\u0085\"]}",
        "{\"\xff\xfe\": 1}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        params_init(&p);
        CHECK_MSG(json(&p, refused[i]) == 400, "%s accepted", refused[i]);
        CHECK_MSG(utf8_ok(detail), "detail not UTF-8: %s", detail);
        CHECK(p.class_names_json == NULL);
        params_free(&p);
    }
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_names\": [\"a\\u0000b\"]}"), 400);
    CHECK_MSG(strstr(detail, "\\u0000") != NULL, "%s", detail);
    params_free(&p);
    /* 64 characters of two bytes each are fine, 65 are not */
    char text[512], name[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(name, "\xc3\xa9");
    snprintf(text, sizeof text, "{\"class_names\": [\"%s\", \"\xe7\x8c\xab\"]}", name);
    params_init(&p);
    CHECK_MSG(json(&p, text) == 0, "%s", detail);
    CHECK(p.class_names_json && strstr(p.class_names_json, "\xe7\x8c\xab") != NULL);
    params_free(&p);
    strcat(name, "\xc3\xa9");
    snprintf(text, sizeof text, "{\"class_names\": [\"%s\"]}", name);
    params_init(&p);
    CHECK_EQ_INT(json(&p, text), 400);
    CHECK_MSG(strstr(detail, "1 to 64 printable characters") != NULL, "%s", detail);
    CHECK_MSG(utf8_ok(detail), "%s", detail);
    params_free(&p);
    /* the query string: values and unknown keys */
    params_init(&p);
    CHECK_EQ_INT(query(&p, "class_names", "a,\xff"), 400);
    CHECK(utf8_ok(detail));
    CHECK_EQ_INT(query(&p, "split", "v\xc3"), 400);
    CHECK(utf8_ok(detail));
    CHECK_EQ_INT(query(&p, "\xff\xfe", "1"), 400);
    CHECK_MSG(utf8_ok(detail) && strstr(detail, "'\\xFF\\xFE'") != NULL, "%s", detail);
    CHECK_EQ_INT(query(&p, "gamma", "\xff"), 400);
    CHECK_MSG(utf8_ok(detail), "%s", detail);
    /* a long key of 2-byte characters is cut at a character boundary */
    char key[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(key, i ? "\xc3\xa9" : "x");
    CHECK_EQ_INT(query(&p, key, "1"), 400);
    CHECK_MSG(utf8_ok(detail) && strstr(detail, "...'") != NULL, "%s", detail);
    params_free(&p);
}

/* Mutated params objects: always 0 or a 4xx with a detail, never a crash. */
/* class_names: strings only, one per class, kept as a JSON array for the runs store. */
static void test_class_names(void)
{
    params_request p;
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_names\": [\"background\", \"cat\", \"potted plant\"]}"), 0);
    CHECK(p.class_names_json &&
          strcmp(p.class_names_json, "[\"background\",\"cat\",\"potted plant\"]") == 0);
    CHECK_EQ_INT(p.class_names_len, 3);
    CHECK_EQ_INT(params_check_classes(&p, 3, detail, sizeof detail), 0);
    CHECK_EQ_INT(params_check_classes(&p, 4, detail, sizeof detail), 422);
    CHECK(strstr(detail, "class_names has 3 names but the logits have 4 classes") != NULL);
    params_free(&p);

    params_init(&p);
    CHECK_EQ_INT(query(&p, "class_names", "road,car,sky"), 0);
    CHECK_EQ_INT(p.class_names_len, 3);
    params_free(&p);

    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_names\": [\"a\", 2]}"), 400);
    CHECK(strstr(detail, "class_names[1] must be a string") != NULL);
    params_free(&p);
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_names\": \"a,b\"}"), 400);
    params_free(&p);
    params_init(&p);
    CHECK_EQ_INT(json(&p, "{\"class_names\": [\"\"]}"), 400);
    params_free(&p);
}

static void test_random_mutations(void)
{
    static const char base[] =
        "{\"class_weights\":[1,2.5,0],\"alpha\":[0.1,0.2,0.3],\"gamma\":0,\"beta\":2,"
        "\"main_loss\":\"focal\",\"dice_loss\":true,\"num_classes\":3,\"run\":\"r\"}";
    uint64_t state = 0x2545f4914f6cdd1du;
    int bad = 0;
    for (int iter = 0; iter < 5000; iter++) {
        char text[sizeof base];
        memcpy(text, base, sizeof base);
        size_t len = sizeof base - 1 - (size_t)(iter % 7);
        for (int e = 0; e < 3; e++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text[state % len] = "{}[],:\"0123456789.-etrufalsn \\"[(state >> 20) % 30];
        }
        params_request p;
        params_init(&p);
        detail[0] = '\0';
        int rc = params_set_json(&p, text, len, 65536, detail, sizeof detail);
        if (rc != 0 && (rc < 400 || rc > 499 || detail[0] == '\0'))
            bad++;
        if (rc == 0)
            (void)params_check_classes(&p, 3, detail, sizeof detail);
        params_free(&p);
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_json_all_keys);
    RUN(test_json_errors);
    RUN(test_query);
    RUN(test_check_classes);
    RUN(test_class_names);
    RUN(test_empty_part);
    RUN(test_integers_exact);
    RUN(test_utf8);
    RUN(test_random_mutations);
    return TESTS_DONE();
}
