/*
 * test_auth.c - the token file format, scopes by method and path, Bearer and Basic headers,
 * read-only tokens on write routes, the metrics token, and messages that never hold a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/routes.h"
#include "http/auth.h"
#include "testing.h"

#define RW "rw-token-0123456789abcdef"
#define RO "ro_token.0123456789ABCDEF"

static char dir[] = "/tmp/segloss_test_auth_XXXXXX";

/* Writes text to dir/name with the given mode; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static void test_load_and_check(void)
{
    char err[512] = "";
    auth *a = NULL;
    const char *p = write_file("tokens", "# tokens\n\nrw " RW "  # trainer\n  ro\t" RO "\n", 0600);
    CHECK_EQ_INT(auth_load(p, NULL, &a, err, sizeof err), 0);
    CHECK(a != NULL);
    CHECK_EQ_INT(auth_lookup(a, RW, strlen(RW), false), AUTH_WRITE);
    CHECK_EQ_INT(auth_lookup(a, RO, strlen(RO), false), AUTH_READ);
    CHECK_EQ_INT(auth_lookup(a, RW, strlen(RW) - 1, false), AUTH_NONE);
    CHECK_EQ_INT(auth_lookup(a, RW "x", strlen(RW) + 1, false), AUTH_NONE);
    CHECK_EQ_INT(auth_lookup(a, "", 0, false), AUTH_NONE);

    auth_verdict v = auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false, NULL);
    CHECK_EQ_INT(v.status, 401);
    CHECK(strstr(v.challenge, "Bearer realm=\"segloss\"") != NULL);
    v = auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false,
                   "Bearer wrong-token-0123456789");
    CHECK_EQ_INT(v.status, 401);
    CHECK(strstr(v.challenge, "invalid_token") != NULL);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false, "Bearer " RO).status,
                 0);
    CHECK_EQ_INT(
        auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false, "bearer  " RW " ").status, 0);
    CHECK_EQ_INT(
        auth_check(a, &routes_auth_policy, "POST", "/v1/evaluate", false, "Bearer " RO).status,
        403);
    CHECK_EQ_INT(
        auth_check(a, &routes_auth_policy, "DELETE", "/v1/runs/x", false, "Bearer " RO).status,
        403);
    CHECK_EQ_INT(
        auth_check(a, &routes_auth_policy, "POST", "/v1/evaluate", false, "Bearer " RW).status, 0);
    /* Basic: user:token in base64 ("x:" RO) */
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/", true,
                            "Basic eDpyb190b2tlbi4wMTIzNDU2Nzg5QUJDREVG")
                     .status,
                 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/", true, "Basic !!!").status, 401);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/", true, NULL).status, 401);
    CHECK(strncmp(auth_check(a, &routes_auth_policy, "GET", "/", true, NULL).challenge, "Basic",
                  5) == 0);
    /* open paths */
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/livez", false, NULL).status, 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/readyz", false, NULL).status, 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/healthz", false, NULL).status, 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/metrics", false, NULL).status, 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/nowhere", false, NULL).status, 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/v1", false, NULL).status, 401);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/v1/no/such/route", false, NULL).status,
                 401);
    /* a long header is refused, not overflowed */
    char big[4096];
    memset(big, 'A', sizeof big);
    memcpy(big, "Basic ", 6);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false, big).status, 401);
    memcpy(big, "Bearer", 6);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false, big).status, 401);
    auth_free(a);
    /* no auth: everything passes */
    CHECK_EQ_INT(auth_check(NULL, &routes_auth_policy, "DELETE", "/v1/runs/x", false, NULL).status,
                 0);
}

static void test_metrics_token(void)
{
    char err[512] = "";
    auth *a = NULL;
    CHECK_EQ_INT(auth_load(NULL, "metrics-token-0123456789", &a, err, sizeof err), 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/metrics", false, NULL).status, 401);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/metrics", false,
                            "Bearer metrics-token-0123456789")
                     .status,
                 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false, NULL).status,
                 0); /* no token file */
    auth_free(a);
    char p[256], t[256];
    snprintf(p, sizeof p, "%s",
             write_file("metrics", "# prometheus\nmetrics-from-file-0123456789\n", 0600));
    snprintf(t, sizeof t, "%s", write_file("tokens2", "ro " RO "\n", 0600));
    CHECK_EQ_INT(auth_load(t, p, &a, err, sizeof err), 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/metrics", false,
                            "Bearer metrics-from-file-0123456789")
                     .status,
                 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/metrics", false, "Bearer " RO).status,
                 0);
    CHECK_EQ_INT(auth_check(a, &routes_auth_policy, "GET", "/v1/runs", false,
                            "Bearer metrics-from-file-0123456789")
                     .status,
                 401);
    auth_free(a);
}

static void test_bad_files(void)
{
    char err[512];
    auth *a = NULL;
    const char *cases[] = {
        "",                              /* no token */
        "# only a comment\n",            /* no token */
        "rw\n",                          /* no token on the line */
        "admin " RW "\n",                /* unknown access */
        "rw short\n",                    /* too short */
        "rw " RW " extra\n",             /* three words */
        "rw bad\"token-0123456789abc\n", /* outside the alphabet */
        "rw " RW "\nro " RW "\n",        /* twice */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        const char *p = write_file("bad", cases[i], 0600);
        CHECK_MSG(auth_load(p, NULL, &a, err, sizeof err) == -1, "case %zu", i);
        CHECK(a == NULL);
        CHECK_MSG(err[0] != '\0', "case %zu has no message", i);
        CHECK_MSG(strstr(err, RW) == NULL && strstr(err, "token-0123") == NULL,
                  "case %zu: the message shows the token: %s", i, err);
    }
    const char *p = write_file("writable", "rw " RW "\n", 0666);
    CHECK_EQ_INT(auth_load(p, NULL, &a, err, sizeof err), -1);
    CHECK(strstr(err, "writable") != NULL);
    CHECK_EQ_INT(auth_load("/nonexistent/tokens", NULL, &a, err, sizeof err), -1);
    CHECK(strstr(err, "cannot be read") != NULL);
    CHECK_EQ_INT(auth_load(NULL, "short", &a, err, sizeof err), -1);
    CHECK(strstr(err, "short") == NULL);
    CHECK_EQ_INT(auth_load(NULL, NULL, &a, err, sizeof err), 0);
    CHECK(a == NULL);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_load_and_check);
    RUN(test_metrics_token);
    RUN(test_bad_files);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return TESTS_DONE();
}
