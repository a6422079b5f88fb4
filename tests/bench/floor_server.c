/*
 * floor_server.c - the floor of the HTTP benchmark: a libmicrohttpd 0.9.75 server that reads a
 * POST body, counts its bytes, and answers 200 with the count. No parsing, no copy, no maths:
 * whatever seglossd takes beyond this server's time for the same bytes is its own cost.
 *
 * It is set up like seglossd's listener (internal polling threads with a pool, the same
 * per-connection buffer), so the difference is the daemon's work, not MHD's configuration.
 *
 *   floor_server PORT [THREADS [LIFETIME_S]]
 *
 * Listens on 127.0.0.1 only. Stops on SIGTERM or SIGINT, and by itself after LIFETIME_S
 * seconds (default 300) so a benchmark that dies cannot leave it running.
 *
 * Not part of the Makefile's bench_* pattern on purpose: tests/bench/bench_http.sh builds it
 * with `cc -O2 tests/bench/floor_server.c -lmicrohttpd`.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The same per-connection buffer as seglossd (HTTP_CONNECTION_MEMORY in server/http/http.c). */
#define FLOOR_CONNECTION_MEMORY ((size_t)256 << 10)
#define FLOOR_DEFAULT_LIFETIME_S 300u

typedef struct upload {
    unsigned long long bytes;
} upload;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    upload *u = *con_cls;
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u)
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_data_size) {
        u->bytes += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    char body[64];
    int len = snprintf(body, sizeof body, "{\"bytes\":%llu}\n", u->bytes);
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)len, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS [LIFETIME_S]]\n", argv[0]);
        return 2;
    }
    unsigned port = (unsigned)strtoul(argv[1], NULL, 10);
    unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
    unsigned lifetime = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : FLOOR_DEFAULT_LIFETIME_S;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    /* Signals are taken here with sigwait, so every MHD thread must block them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
        NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        FLOOR_CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "floor_server: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    alarm(lifetime);
    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
