/*
 * main.c - seglossd's entry point: `serve` (the default), `eval`, `healthcheck`, `--help`,
 * `--version`.
 *
 * `eval` reads files into memory and runs the same evaluation_run as POST /v1/evaluate, so it
 * prints exactly the HTTP answer (the problem JSON goes to stderr with a non-zero exit).
 * `healthcheck` is for container images without curl (healthcheck.c).
 * `serve` blocks SIGTERM and SIGINT in every thread and waits for them here, so shutdown is
 * ordinary code rather than a signal handler.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/result_json.h"
#include "api/routes.h"
#include "base/aligned.h"
#include "base/config.h"
#include "base/ids.h"
#include "base/log.h"
#include "base/problem.h"
#include "http/healthcheck.h"
#include "http/http.h"
#include "segloss/segloss.h"
#include "service/evaluation.h"
#include "service/params.h"

/* Exit statuses of `eval`: 1 the input is bad (problem JSON on stderr), 2 usage. */
#define EXIT_BAD_INPUT 1
#define EXIT_USAGE 2
/* Files `eval` reads are loaded into memory: the server's default body limit bounds them. */
#define EVAL_MAX_FILE_BYTES ((size_t)CONFIG_DEFAULT_MAX_BODY_MB << 20)
/* File buffers are aligned like the server's part buffers. */
#define EVAL_FILE_ALIGN 64

static void usage(FILE *out)
{
    fprintf(out,
            "seglossd %s - semantic-segmentation loss service\n\n"
            "Usage:\n"
            "  seglossd [serve] [OPTIONS]     run the HTTP daemon (POST /v1/evaluate ...)\n"
            "  seglossd eval --logits FILE --mask FILE [--mask FILE ...] [--image FILE ...]\n"
            "                [--params FILE.json] [OPTIONS]\n"
            "                                 print the JSON answer POST /v1/evaluate would give\n"
            "  seglossd healthcheck [OPTIONS] GET /livez on --port (HTTPS with --tls-cert)\n"
            "  seglossd --help | --version\n\n",
            SEGLOSS_VERSION);
    config_usage(out);
}

/* ---- eval ---------------------------------------------------------------------------- */

/* Reads a whole file into an aligned buffer (caller frees). 0, or -1 with a message. */
static int read_file(const char *path, void **data, size_t *len, char *err, size_t err_len)
{
    int rc = -1;
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    *data = NULL;
    *len = 0;
    if (!f) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s is not a regular file", path);
        goto done;
    }
    size_t size = (size_t)st.st_size;
    if ((unsigned long long)st.st_size > EVAL_MAX_FILE_BYTES) {
        snprintf(err, err_len, "%s has %lld bytes; the limit is %zu", path, (long long)st.st_size,
                 EVAL_MAX_FILE_BYTES);
        goto done;
    }
    buf = aligned_buffer(EVAL_FILE_ALIGN, size);
    if (!buf) {
        snprintf(err, err_len, "out of memory reading %s", path);
        goto done;
    }
    if (size && fread(buf, 1, size, f) != size) {
        snprintf(err, err_len, "cannot read %s", path);
        goto done;
    }
    *data = buf;
    *len = size;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static int print_problem(int status, const char *detail)
{
    size_t len = 0;
    char *body = problem_json(status, detail, NULL, &len);
    if (body) {
        fprintf(stderr, "%s\n", body);
        free(body);
    } else {
        fprintf(stderr, "%s\n", detail);
    }
    return EXIT_BAD_INPUT;
}

static int run_eval(int argc, char **argv)
{
    int exit_code = EXIT_USAGE;
    server_config cfg;
    config_defaults(&cfg);
    const char *logits_path = NULL, *params_path = NULL;
    const char **mask_paths = calloc((size_t)argc + 1, sizeof *mask_paths);
    const char **image_paths = calloc((size_t)argc + 1, sizeof *image_paths);
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    void **files = calloc((size_t)argc + 2, sizeof *files);
    evaluation_blob *blobs = calloc((size_t)argc + 1, sizeof *blobs);
    size_t masks = 0, images = 0, nfiles = 0;
    int nrest = 0;
    segloss_ctx *ctx = NULL;
    params_request params;
    params_init(&params);
    evaluation_outcome out = {0};
    char err[512];
    double started = evaluation_now();
    if (!mask_paths || !image_paths || !rest || !files || !blobs) {
        fprintf(stderr, "seglossd eval: out of memory\n");
        goto done;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--logits") == 0 && has_value)
            logits_path = argv[++i];
        else if (strcmp(a, "--mask") == 0 && has_value)
            mask_paths[masks++] = argv[++i];
        else if (strcmp(a, "--image") == 0 && has_value)
            image_paths[images++] = argv[++i];
        else if (strcmp(a, "--params") == 0 && has_value)
            params_path = argv[++i];
        else if (strcmp(a, "--logits") == 0 || strcmp(a, "--mask") == 0 ||
                 strcmp(a, "--image") == 0 || strcmp(a, "--params") == 0) {
            fprintf(stderr, "seglossd eval: %s needs a file\n", a);
            goto done;
        } else
            rest[nrest++] = argv[i];
    }
    if (config_load(&cfg, nrest, rest, err, sizeof err) != 0) {
        fprintf(stderr, "seglossd eval: %s\n", err);
        goto done;
    }
    params.max_classes = cfg.limits.max_classes;
    if (!logits_path) {
        fprintf(stderr, "seglossd eval: --logits FILE is required (see --help)\n");
        goto done;
    }
    exit_code = EXIT_BAD_INPUT;
    evaluation_blob logits = {0};
    void *data = NULL;
    size_t len = 0;
    if (read_file(logits_path, &data, &len, err, sizeof err) != 0) {
        exit_code = print_problem(400, err);
        goto done;
    }
    files[nfiles++] = data;
    logits = (evaluation_blob){data, len};
    for (size_t i = 0; i < masks + images; i++) {
        const char *path = i < masks ? mask_paths[i] : image_paths[i - masks];
        if (read_file(path, &data, &len, err, sizeof err) != 0) {
            exit_code = print_problem(400, err);
            goto done;
        }
        files[nfiles++] = data;
        blobs[i] = (evaluation_blob){data, len};
    }
    if (params_path) {
        if (read_file(params_path, &data, &len, err, sizeof err) != 0) {
            exit_code = print_problem(400, err);
            goto done;
        }
        files[nfiles++] = data;
        int status = params_set_json(&params, data, len, cfg.max_params_bytes, err, sizeof err);
        if (status) {
            exit_code = print_problem(status, err);
            goto done;
        }
    }
    int rc = segloss_ctx_new(&ctx, cfg.eval_threads, SEGLOSS_KERNEL_AUTO);
    if (!rc)
        rc = segloss_ctx_set_limits(ctx, &cfg.limits);
    if (rc) {
        exit_code = print_problem(503, segloss_strerror(rc));
        goto done;
    }
    char id[IDS_LEN + 1];
    ids_new(id);
    evaluation_request req = {
        .logits = logits,
        .masks = blobs,
        .mask_count = masks,
        .images = blobs + masks,
        .image_count = images,
        .params = &params,
        .id = id,
        .started = started,
    };
    evaluation_run(ctx, &cfg.limits, &req, &out);
    evaluation_answer_json(&out, &req);
    if (out.status != 200) {
        exit_code = print_problem(out.status, out.detail);
        goto done;
    }
    fwrite(out.body, 1, out.body_len, stdout);
    fputc('\n', stdout);
    exit_code = fflush(stdout) == 0 ? 0 : EXIT_BAD_INPUT;
done:
    evaluation_outcome_clear(&out);
    segloss_ctx_free(ctx);
    params_free(&params);
    for (size_t i = 0; files && i < nfiles; i++)
        free(files[i]);
    free(files);
    free(blobs);
    free(rest);
    free(image_paths);
    free(mask_paths);
    return exit_code;
}

/* ---- healthcheck --------------------------------------------------------------------- */

static int run_healthcheck(int argc, char **argv)
{
    server_config cfg;
    char err[512];
    config_defaults(&cfg);
    if (config_load(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "seglossd healthcheck: %s\n", err);
        return EXIT_USAGE;
    }
    int rc = healthcheck_run(&cfg, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "seglossd healthcheck: %s\n", err);
    return rc;
}

/* ---- serve --------------------------------------------------------------------------- */

static int run_serve(int argc, char **argv)
{
    server_config cfg;
    char err[512];
    config_defaults(&cfg);
    if (config_load(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "seglossd: %s\n", err);
        return EXIT_USAGE;
    }
    log_set_format(cfg.log_format);
    /* Before any thread starts, so every thread inherits the mask and only sigwait sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    http_server *server = NULL;
    /* Every route, the runs store and what evaluations run with (routes.h). */
    routes *r = NULL;
    if (routes_open(&cfg, &r, err, sizeof err) != 0) {
        log_event("error", "%s", err);
        return 1;
    }
    if (http_server_start(&cfg, routes_table(r), &server, err, sizeof err) != 0) {
        log_event("error", "%s", err);
        routes_close(r);
        return 1;
    }
    log_event("info", "seglossd %s listening on %s:%u (max body %zu MiB, %u workers%s%s)",
              SEGLOSS_VERSION, cfg.bind, cfg.port, cfg.max_body_mb, cfg.workers,
              cfg.tls_cert[0] ? ", TLS" : "", cfg.token_file[0] ? ", tokens required" : "");
    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    /* A second SIGTERM or Ctrl-C while draining takes the default action: stop at once. The
     * other threads keep the signals blocked, so it is delivered here. */
    pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
    log_event("info", "%s: draining, waiting up to %u s for in-flight requests",
              sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.shutdown_timeout_s);
    http_server_drain(server);
    int idle = http_server_wait_idle(server, cfg.shutdown_timeout_s);
    if (idle != 0)
        log_event("warn", "shutdown deadline passed with requests in flight; stopping anyway");
    http_server_stop(server);
    routes_close(r);
    log_event("info", "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("seglossd %s\n", SEGLOSS_VERSION);
        return 0;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    if (strcmp(cmd, "eval") == 0)
        return run_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "healthcheck") == 0)
        return run_healthcheck(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0)
        return run_serve(argc - 2, argv + 2);
    if (strncmp(cmd, "--", 2) == 0)
        return run_serve(argc - 1, argv + 1);
    fprintf(stderr, "seglossd: unknown command '%s' (serve, eval, healthcheck; see --help)\n", cmd);
    return EXIT_USAGE;
}
