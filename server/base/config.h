/*
 * config.h - the daemon's settings: every flag, its environment twin and its default.
 *
 * One server_config is filled once at start (defaults, then SEGLOSS_* environment variables,
 * then command-line flags, so a flag beats the environment) and passed down read-only; no other
 * module reads the environment or keeps settings of its own. Every limit on untrusted input is a
 * named constant here or in segloss/limits.h, with the reason for its number.
 */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "segloss/limits.h"

/* 8080 is what the README, the container and `make run` use. */
#define CONFIG_DEFAULT_PORT 8080
/* Loopback: a fresh checkout must not expose an unauthenticated service; the container image
 * sets SEGLOSS_BIND=0.0.0.0. */
#define CONFIG_DEFAULT_BIND "127.0.0.1"
/* 1 GiB: a validation batch of 8x21x1024x1024 float32 logits is 704 MiB and 16x150x256x256 (an
 * ADE20K batch) 630 MiB, so real requests fit; a body is held in memory while it is evaluated,
 * so the limit is also what one request may cost. Raise it with --max-body-mb. */
#define CONFIG_DEFAULT_MAX_BODY_MB 1024
/* Largest value --max-body-mb accepts: 64 GiB, beyond any machine this runs on. */
#define CONFIG_MAX_BODY_MB_CEILING 65536
/* One mask and one image per batch item, plus the logits and the params parts. */
#define CONFIG_DEFAULT_MAX_PARTS (2 * SEGLOSS_MAX_BATCH + 2)
/* Room for the largest params object the documented maxima allow: 1024 class names of 64
 * characters (PARAMS_MAX_CLASS_NAME_LEN), each character written as a 12-byte \u escape pair
 * at worst (json.dumps escapes everything beyond ASCII), is 1024 x (768 + 4) = 772 KiB; with
 * class_weights and alpha of 1024 numbers of 25 characters (50 KiB) and the other keys it stays
 * under 1 MiB, which still bounds the JSON parser's work to milliseconds. */
#define CONFIG_DEFAULT_MAX_PARAMS_BYTES ((size_t)1 << 20)
/* Concurrent TCP connections: each costs a socket and MHD's 32 KiB connection memory, and an
 * upload in progress holds its body. */
#define CONFIG_DEFAULT_MAX_CONNECTIONS 256
/* One training cluster's NAT address may carry many jobs; 64 still stops one client from
 * taking every connection. */
#define CONFIG_DEFAULT_MAX_PER_IP 64
/* Seconds a connection may stay silent (keep-alive idle or a stalled upload) before MHD
 * closes it. */
#define CONFIG_DEFAULT_IDLE_TIMEOUT_S 30
/* Seconds an upload may take in all, however steadily it trickles in: 1 GiB at 10 MB/s is
 * about 100 s, so 300 s only cuts off clients that are far too slow (408). */
#define CONFIG_DEFAULT_UPLOAD_TIMEOUT_S 300
/* Seconds SIGTERM waits for in-flight requests before the daemon stops anyway. Kubernetes
 * waits 30 s before SIGKILL; finishing first keeps the exit clean. */
#define CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_S 25
/* Evaluation workers: the loss library runs one evaluation at a time on its own thread pool,
 * so a second worker only overlaps the decoding of one request with another's evaluation. */
#define CONFIG_DEFAULT_WORKERS 2
/* Finished uploads waiting for a worker; beyond this a request is refused with 503 and
 * Retry-After instead of holding its body in memory for an unbounded wait. */
#define CONFIG_DEFAULT_QUEUE_DEPTH 16
/* Part buffers kept for the next request (bufpool.h), so steady training traffic reuses warm
 * pages: 1 GiB holds the buffers of four 8x21x512x512 float32 batches (176 MiB each) and their
 * masks, what four clients posting such batches hold at once. With 256 MiB (one batch) three of
 * the four bodies went to fresh pages each time: 0.13-0.16 CPU-seconds per request in the
 * daemon against 0.07-0.08 with the buffers reused, measured with
 * tests/bench/cpu_per_request.py. Never more than the default --max-inflight-mb, so a small
 * machine or container does not keep more at rest than it may hold in flight. */
#define CONFIG_DEFAULT_BUFFER_CACHE_MB 1024
/* Request bodies held in memory at once (--max-inflight-mb), by default a quarter of the memory
 * the daemon may use (physical memory, or the cgroup's memory.max when lower): a body being
 * evaluated costs about as much again in decoded tensors, and the buffer cache
 * (--buffer-cache-mb) and the other processes of the machine need the rest. */
#define CONFIG_INFLIGHT_MEMORY_DIVISOR 4
/* ... but never less than 64 MiB, so a small container still takes ordinary batches. */
#define CONFIG_MIN_INFLIGHT_MB 64
/* Upper bound for thread counts given on the command line. */
#define CONFIG_MAX_THREADS 256

typedef enum config_log_format { CONFIG_LOG_JSON = 0, CONFIG_LOG_TEXT = 1 } config_log_format;

typedef struct server_config {
    unsigned port;
    char bind[64];
    unsigned threads;      /* HTTP polling threads (MHD thread pool); 0 = online CPUs */
    unsigned eval_threads; /* loss library threads; 0 = online CPUs */
    unsigned workers;      /* evaluation workers */
    unsigned queue_depth;  /* evaluations waiting for a worker */
    size_t max_body_mb;
    size_t max_body_bytes;     /* derived from max_body_mb */
    size_t buffer_cache_mb;    /* bufpool bound */
    size_t max_inflight_mb;    /* request bodies held at once (the memory budget) */
    size_t max_inflight_bytes; /* derived from max_inflight_mb */
    size_t max_parts;
    size_t max_params_bytes;
    unsigned max_connections;
    unsigned max_per_ip;
    unsigned idle_timeout_s;
    unsigned upload_timeout_s;
    unsigned shutdown_timeout_s;
    char data_dir[1024];
    char store[1024];          /* "" = SQLite under data_dir; or postgres://... */
    size_t retain_evaluations; /* per run; 0 = keep every evaluation (aggregates always) */
    char token_file[1024];     /* "" = no tokens (auth.h) */
    char metrics_token[1024];  /* "" = /metrics open; a token or a file holding one */
    char tls_cert[1024];       /* PEM files; both or neither: HTTPS instead of HTTP */
    char tls_key[1024];
    config_log_format log_format;
    segloss_limits limits; /* dims, pixels, classes, batch */
} server_config;

/*
 * The socket address of an IPv4 or IPv6 literal (a --bind value) and a port, for the daemon's
 * listening socket and the health probe alike. Returns 0, or -1 when host is not an IP literal.
 */
int config_socket_address(const char *host, unsigned port, struct sockaddr_storage *ss,
                          socklen_t *len);

/* Fills *cfg with the defaults above (threads resolved to the online CPU count). */
void config_defaults(server_config *cfg);

/*
 * Applies SEGLOSS_* environment variables, then the flags in argv[0..argc). Returns 0, or -1
 * with a message naming the flag or variable in err. Unknown flags are errors. `--help` is not
 * handled here (main() looks for it first).
 */
int config_load(server_config *cfg, int argc, char **argv, char *err, size_t err_len);

/* Writes the flag table with env twins and defaults (the body of `seglossd --help`). */
void config_usage(FILE *out);

/* The memory this process may use in bytes: physical memory, or the cgroup's limit when lower;
 * 0 when unknown. */
unsigned long long config_memory_bytes(void);

/* The default --max-inflight-mb for a machine with memory_bytes of memory (0 = unknown):
 * memory / CONFIG_INFLIGHT_MEMORY_DIVISOR, at least CONFIG_MIN_INFLIGHT_MB. */
size_t config_default_inflight_mb(unsigned long long memory_bytes);

/* Resolves 0 ("as many as CPUs") to the online CPU count. */
unsigned config_cpu_count(void);

#endif
