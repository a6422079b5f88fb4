/*
 * test_config.c - defaults, environment twins, flags beating the environment, and the messages
 * for bad values.
 */
#include <netinet/in.h>
#include <stdlib.h>

#include "base/config.h"
#include "testing.h"

static void test_defaults(void)
{
    server_config cfg;
    config_defaults(&cfg);
    CHECK_EQ_INT(cfg.port, 8080);
    CHECK(strcmp(cfg.bind, "127.0.0.1") == 0);
    CHECK_EQ_INT(cfg.max_body_bytes, (size_t)1024 << 20);
    CHECK_EQ_INT(cfg.max_params_bytes, (size_t)1 << 20);
    CHECK_EQ_INT(cfg.limits.max_classes, SEGLOSS_MAX_CLASSES);
    CHECK_EQ_INT(cfg.log_format, CONFIG_LOG_JSON);
    CHECK_EQ_INT(cfg.max_inflight_mb, config_default_inflight_mb(config_memory_bytes()));
    CHECK_EQ_INT(cfg.max_inflight_bytes, cfg.max_inflight_mb << 20);
}

static void test_inflight_default(void)
{
    /* a quarter of the memory, at least 64 MiB */
    CHECK_EQ_INT(config_default_inflight_mb((unsigned long long)16 << 30), 4096);
    CHECK_EQ_INT(config_default_inflight_mb((unsigned long long)1 << 30), 256);
    CHECK_EQ_INT(config_default_inflight_mb((unsigned long long)128 << 20), 64);
    CHECK_EQ_INT(config_default_inflight_mb(0), 64);
    CHECK(config_memory_bytes() > 0);
    server_config cfg;
    char err[256] = "";
    config_defaults(&cfg);
    setenv("SEGLOSS_MAX_INFLIGHT_MB", "48", 1);
    CHECK_EQ_INT(config_load(&cfg, 0, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(cfg.max_inflight_bytes, (size_t)48 << 20);
    char *argv[] = {"--max-inflight-mb", "96"};
    CHECK_EQ_INT(config_load(&cfg, 2, argv, err, sizeof err), 0);
    CHECK_EQ_INT(cfg.max_inflight_bytes, (size_t)96 << 20);
    unsetenv("SEGLOSS_MAX_INFLIGHT_MB");
    char *zero[] = {"--max-inflight-mb", "0"};
    CHECK_EQ_INT(config_load(&cfg, 2, zero, err, sizeof err), -1);
    CHECK(strstr(err, "--max-inflight-mb") != NULL);
}

static void test_env_and_flags(void)
{
    server_config cfg;
    char err[256] = "";
    config_defaults(&cfg);
    setenv("SEGLOSS_PORT", "9000", 1);
    setenv("SEGLOSS_MAX_BODY_MB", "16", 1);
    setenv("SEGLOSS_LOG_FORMAT", "text", 1);
    char *argv[] = {"--port", "9100", "--bind=0.0.0.0", "--max-classes", "50"};
    CHECK_EQ_INT(config_load(&cfg, 5, argv, err, sizeof err), 0);
    CHECK_EQ_INT(cfg.port, 9100); /* the flag wins */
    CHECK(strcmp(cfg.bind, "0.0.0.0") == 0);
    CHECK_EQ_INT(cfg.max_body_bytes, (size_t)16 << 20);
    CHECK_EQ_INT(cfg.log_format, CONFIG_LOG_TEXT);
    CHECK_EQ_INT(cfg.limits.max_classes, 50);
    unsetenv("SEGLOSS_PORT");
    unsetenv("SEGLOSS_MAX_BODY_MB");
    unsetenv("SEGLOSS_LOG_FORMAT");
}

static void test_socket_address(void)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    CHECK(config_socket_address("127.0.0.1", 8080, &ss, &len) == 0);
    CHECK(ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in));
    CHECK(ntohs(((struct sockaddr_in *)&ss)->sin_port) == 8080);
    CHECK(config_socket_address("::1", 9000, &ss, &len) == 0);
    CHECK(ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6));
    CHECK(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == 9000);
    CHECK(config_socket_address("localhost", 8080, &ss, &len) == -1);
    CHECK(config_socket_address("", 8080, &ss, &len) == -1);
}

static void test_errors(void)
{
    server_config cfg;
    char err[256] = "";
    config_defaults(&cfg);
    char *bad_port[] = {"--port", "70000"};
    CHECK_EQ_INT(config_load(&cfg, 2, bad_port, err, sizeof err), -1);
    CHECK(strstr(err, "--port must be an integer from 1 to 65535") != NULL);
    char *unknown[] = {"--colour"};
    CHECK_EQ_INT(config_load(&cfg, 1, unknown, err, sizeof err), -1);
    CHECK(strstr(err, "unknown flag '--colour'") != NULL);
    char *missing[] = {"--threads"};
    CHECK_EQ_INT(config_load(&cfg, 1, missing, err, sizeof err), -1);
    CHECK(strstr(err, "needs a value") != NULL);
    char *fmt[] = {"--log-format", "xml"};
    CHECK_EQ_INT(config_load(&cfg, 2, fmt, err, sizeof err), -1);
    setenv("SEGLOSS_THREADS", "-1", 1);
    CHECK_EQ_INT(config_load(&cfg, 0, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "SEGLOSS_THREADS") != NULL);
    unsetenv("SEGLOSS_THREADS");
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_inflight_default);
    RUN(test_env_and_flags);
    RUN(test_errors);
    RUN(test_socket_address);
    return TESTS_DONE();
}
