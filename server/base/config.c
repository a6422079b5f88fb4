/*
 * config.c - flags, their SEGLOSS_* environment twins, and the checks on their values.
 *
 * The options are one table: the flag, the environment variable (derived from the flag, so the
 * two cannot drift apart), the field, its range and the help text. --help prints the table, so
 * the documentation cannot drift either.
 */
#include "base/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum option_type { OPT_UNSIGNED, OPT_SIZE, OPT_STRING, OPT_LOG_FORMAT } option_type;

typedef struct option_spec {
    const char *flag; /* without the leading "--" */
    option_type type;
    size_t offset; /* of the field in server_config */
    size_t size;   /* of the field (string buffers) */
    unsigned long long min, max;
    const char *help;
} option_spec;

#define FIELD(f) offsetof(server_config, f), sizeof(((server_config *)0)->f)

static const option_spec options[] = {
    {"port", OPT_UNSIGNED, FIELD(port), 1, 65535, "TCP port to listen on (default 8080)"},
    {"bind", OPT_STRING, FIELD(bind), 0, 0,
     "address to listen on (default 127.0.0.1; 0.0.0.0: all IPv4)"},
    {"threads", OPT_UNSIGNED, FIELD(threads), 0, CONFIG_MAX_THREADS,
     "HTTP I/O threads (default 0 = one per CPU)"},
    {"eval-threads", OPT_UNSIGNED, FIELD(eval_threads), 0, CONFIG_MAX_THREADS,
     "threads of the loss evaluation (default 0 = one per CPU)"},
    {"workers", OPT_UNSIGNED, FIELD(workers), 1, CONFIG_MAX_THREADS,
     "evaluations decoded/computed at once (default 2)"},
    {"queue-depth", OPT_UNSIGNED, FIELD(queue_depth), 1, 65536,
     "uploaded requests waiting for a worker before 503 (default 16)"},
    {"max-body-mb", OPT_SIZE, FIELD(max_body_mb), 1, CONFIG_MAX_BODY_MB_CEILING,
     "largest request body in MiB; larger is 413 (default 1024)"},
    {"buffer-cache-mb", OPT_SIZE, FIELD(buffer_cache_mb), 0, CONFIG_MAX_BODY_MB_CEILING,
     "upload buffers kept for reuse between requests, MiB (default 1024, at most the default "
     "--max-inflight-mb; 0 = none)"},
    {"max-inflight-mb", OPT_SIZE, FIELD(max_inflight_mb), 1, CONFIG_MAX_BODY_MB_CEILING,
     "request bodies held at once, MiB; beyond is 503, a larger body 413 (default a quarter "
     "of RAM or of the cgroup limit, at least 64)"},
    {"max-parts", OPT_SIZE, FIELD(max_parts), 2, 1000000,
     "most multipart parts in one request (default 8194)"},
    {"max-params-bytes", OPT_SIZE, FIELD(max_params_bytes), 2, 16 << 20,
     "largest params JSON part in bytes (default 1048576)"},
    {"max-classes", OPT_SIZE, FIELD(limits.max_classes), 1, SEGLOSS_MAX_CLASSES_CEILING,
     "most classes C (default 1024)"},
    {"max-side", OPT_SIZE, FIELD(limits.max_side), 1, 1 << 20,
     "longest image side H or W (default 16384)"},
    {"max-pixels", OPT_SIZE, FIELD(limits.max_pixels), 1, (unsigned long long)1 << 40,
     "most pixels H*W of one image (default 67108864)"},
    {"max-batch", OPT_SIZE, FIELD(limits.max_batch), 1, 1 << 20,
     "most batch items N (default 4096)"},
    {"max-elements", OPT_SIZE, FIELD(limits.max_elements), 1, (unsigned long long)1 << 40,
     "most elements of one tensor (default 1073741824)"},
    {"max-connections", OPT_UNSIGNED, FIELD(max_connections), 1, 100000,
     "concurrent connections (default 256)"},
    {"max-per-ip", OPT_UNSIGNED, FIELD(max_per_ip), 1, 100000,
     "concurrent connections from one address (default 64)"},
    {"idle-timeout", OPT_UNSIGNED, FIELD(idle_timeout_s), 1, 86400,
     "seconds a silent connection is kept (default 30)"},
    {"upload-timeout", OPT_UNSIGNED, FIELD(upload_timeout_s), 1, 86400,
     "seconds an upload may take in all; slower is 408 (default 300)"},
    {"shutdown-timeout", OPT_UNSIGNED, FIELD(shutdown_timeout_s), 0, 3600,
     "seconds SIGTERM waits for in-flight requests (default 25)"},
    {"data-dir", OPT_STRING, FIELD(data_dir), 0, 0, "directory for stored runs (default ./data)"},
    {"store", OPT_STRING, FIELD(store), 0, 0,
     "runs store: postgres://... to share runs between replicas (default SQLite in data-dir)"},
    {"retain-evaluations", OPT_SIZE, FIELD(retain_evaluations), 0, (size_t)1 << 40,
     "evaluations kept per run, oldest dropped first; aggregates stay (default 0 = all)"},
    {"token-file", OPT_STRING, FIELD(token_file), 0, 0,
     "file of 'rw TOKEN' / 'ro TOKEN' lines: /v1/* and the dashboard then need a Bearer token"},
    {"metrics-token", OPT_STRING, FIELD(metrics_token), 0, 0,
     "token (or a file holding it) that GET /metrics then needs (default: /metrics open)"},
    {"tls-cert", OPT_STRING, FIELD(tls_cert), 0, 0,
     "PEM certificate (chain) file: serve HTTPS (with --tls-key)"},
    {"tls-key", OPT_STRING, FIELD(tls_key), 0, 0, "PEM private key file of --tls-cert"},
    {"log-format", OPT_LOG_FORMAT, FIELD(log_format), 0, 0,
     "json (one object per line, default) or text"},
};

#define OPTION_COUNT (sizeof options / sizeof options[0])

/* A number from a one-line file (a cgroup limit); 0 when absent, "max" or unreadable. */
static unsigned long long read_limit(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

unsigned long long config_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    unsigned long long mem = 0;
    if (pages > 0 && page > 0)
        mem = (unsigned long long)pages * (unsigned long long)page;
    const char *const limits[] = {"/sys/fs/cgroup/memory.max",
                                  "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        unsigned long long v = read_limit(limits[i]);
        if (v && (!mem || v < mem))
            mem = v;
    }
    return mem;
}

size_t config_default_inflight_mb(unsigned long long memory_bytes)
{
    unsigned long long mb = (memory_bytes >> 20) / CONFIG_INFLIGHT_MEMORY_DIVISOR;
    if (mb < CONFIG_MIN_INFLIGHT_MB)
        mb = CONFIG_MIN_INFLIGHT_MB;
    if (mb > CONFIG_MAX_BODY_MB_CEILING)
        mb = CONFIG_MAX_BODY_MB_CEILING;
    return (size_t)mb;
}

unsigned config_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CONFIG_MAX_THREADS ? CONFIG_MAX_THREADS : (unsigned)n;
}

void config_defaults(server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = CONFIG_DEFAULT_PORT;
    snprintf(cfg->bind, sizeof cfg->bind, "%s", CONFIG_DEFAULT_BIND);
    cfg->threads = 0;
    cfg->eval_threads = 0;
    cfg->workers = CONFIG_DEFAULT_WORKERS;
    cfg->queue_depth = CONFIG_DEFAULT_QUEUE_DEPTH;
    cfg->max_body_mb = CONFIG_DEFAULT_MAX_BODY_MB;
    cfg->max_inflight_mb = config_default_inflight_mb(config_memory_bytes());
    cfg->buffer_cache_mb = CONFIG_DEFAULT_BUFFER_CACHE_MB < cfg->max_inflight_mb
                               ? CONFIG_DEFAULT_BUFFER_CACHE_MB
                               : cfg->max_inflight_mb;
    cfg->max_parts = CONFIG_DEFAULT_MAX_PARTS;
    cfg->max_params_bytes = CONFIG_DEFAULT_MAX_PARAMS_BYTES;
    cfg->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
    cfg->max_per_ip = CONFIG_DEFAULT_MAX_PER_IP;
    cfg->idle_timeout_s = CONFIG_DEFAULT_IDLE_TIMEOUT_S;
    cfg->upload_timeout_s = CONFIG_DEFAULT_UPLOAD_TIMEOUT_S;
    cfg->shutdown_timeout_s = CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_S;
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", "./data");
    cfg->log_format = CONFIG_LOG_JSON;
    segloss_limits_default(&cfg->limits);
    cfg->max_body_bytes = cfg->max_body_mb << 20;
    cfg->max_inflight_bytes = cfg->max_inflight_mb << 20;
}

/* "max-body-mb" -> "SEGLOSS_MAX_BODY_MB" */
static void env_name(const char *flag, char *out, size_t out_len)
{
    size_t n = (size_t)snprintf(out, out_len, "SEGLOSS_");
    for (; *flag && n + 1 < out_len; flag++, n++)
        out[n] = *flag == '-' ? '_' : (char)toupper((unsigned char)*flag);
    out[n] = '\0';
}

static int set_option(server_config *cfg, const option_spec *opt, const char *value,
                      const char *source, char *err, size_t err_len)
{
    char *field = (char *)cfg + opt->offset;
    if (opt->type == OPT_STRING) {
        size_t len = strlen(value);
        if (len == 0 || len >= opt->size) {
            snprintf(err, err_len, "%s must be 1 to %zu characters", source, opt->size - 1);
            return -1;
        }
        memcpy(field, value, len + 1);
        return 0;
    }
    if (opt->type == OPT_LOG_FORMAT) {
        if (strcmp(value, "json") == 0)
            *(config_log_format *)(void *)field = CONFIG_LOG_JSON;
        else if (strcmp(value, "text") == 0)
            *(config_log_format *)(void *)field = CONFIG_LOG_TEXT;
        else {
            snprintf(err, err_len, "%s must be json or text, not '%s'", source, value);
            return -1;
        }
        return 0;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || errno || !end || *end || v < opt->min || v > opt->max) {
        snprintf(err, err_len, "%s must be an integer from %llu to %llu, not '%s'", source,
                 opt->min, opt->max, value);
        return -1;
    }
    if (opt->type == OPT_UNSIGNED)
        *(unsigned *)(void *)field = (unsigned)v;
    else
        *(size_t *)(void *)field = (size_t)v;
    return 0;
}

static const option_spec *find_option(const char *flag, size_t len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strlen(options[i].flag) == len && memcmp(options[i].flag, flag, len) == 0)
            return &options[i];
    return NULL;
}

int config_load(server_config *cfg, int argc, char **argv, char *err, size_t err_len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char name[64];
        env_name(options[i].flag, name, sizeof name);
        const char *v = getenv(name);
        if (v && *v && set_option(cfg, &options[i], v, name, err, err_len) != 0)
            return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_len, "unexpected argument '%s' (see --help)", arg);
            return -1;
        }
        arg += 2;
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        const option_spec *opt = find_option(arg, flen);
        if (!opt) {
            snprintf(err, err_len, "unknown flag '%s' (see --help)", argv[i]);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) {
                snprintf(err, err_len, "--%s needs a value", opt->flag);
                return -1;
            }
            value = argv[++i];
        }
        char source[80];
        snprintf(source, sizeof source, "--%s", opt->flag);
        if (set_option(cfg, opt, value, source, err, err_len) != 0)
            return -1;
    }
    cfg->max_body_bytes = cfg->max_body_mb << 20;
    cfg->max_inflight_bytes = cfg->max_inflight_mb << 20;
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, err_len, "--tls-cert and --tls-key go together: give both or neither");
        return -1;
    }
    return 0;
}

void config_usage(FILE *out)
{
    fprintf(out, "Options (each flag has an environment twin; a flag beats the variable):\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char name[64];
        env_name(options[i].flag, name, sizeof name);
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", options[i].flag);
        fprintf(out, "  %-20s %-26s %s\n", flag, name, options[i].help);
    }
}

int config_socket_address(const char *host, unsigned port, struct sockaddr_storage *ss,
                          socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}
