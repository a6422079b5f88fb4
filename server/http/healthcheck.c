/*
 * healthcheck.c - GET /livez on the daemon's own port, over plain HTTP or HTTPS (healthcheck.h).
 *
 * HTTPS goes through GnuTLS, which libmicrohttpd already serves TLS with. The probe does not
 * verify the daemon's certificate: it runs beside the daemon, talks to it over loopback, and asks
 * only whether it answers. A certificate issued for a public name would not match 127.0.0.1, and
 * a probe that fails on that would restart a healthy container.
 */
#include "http/healthcheck.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The status line is all the probe reads: "HTTP/1.1 200 OK". */
#define STATUS_LINE_MIN 12

typedef struct probe {
    int fd;
    gnutls_session_t tls; /* NULL: plain HTTP */
    gnutls_certificate_credentials_t cred;
} probe;

/* Whether a failed send or receive (n < 0) was interrupted and is to be tried again. */
static bool probe_again(const probe *p, ssize_t n)
{
    return n < 0 && (p->tls ? n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN : errno == EINTR);
}

static int probe_send(probe *p, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = p->tls ? gnutls_record_send(p->tls, buf, len) : write(p->fd, buf, len);
        if (probe_again(p, n))
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until at least `want` bytes, the end of the answer, or an error. Returns the count. */
static size_t probe_recv(probe *p, char *buf, size_t cap, size_t want)
{
    size_t got = 0;
    while (got < want && got < cap) {
        ssize_t n = p->tls ? gnutls_record_recv(p->tls, buf + got, cap - got)
                           : read(p->fd, buf + got, cap - got);
        if (probe_again(p, n))
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static int tls_begin(probe *p, char *detail, size_t dl)
{
    int rc = gnutls_certificate_allocate_credentials(&p->cred);
    if (rc == 0)
        rc = gnutls_init(&p->tls, GNUTLS_CLIENT);
    if (rc == 0)
        rc = gnutls_set_default_priority(p->tls);
    if (rc == 0)
        rc = gnutls_credentials_set(p->tls, GNUTLS_CRD_CERTIFICATE, p->cred);
    if (rc != 0) {
        snprintf(detail, dl, "TLS set-up: %s", gnutls_strerror(rc));
        return -1;
    }
    gnutls_transport_set_int(p->tls, p->fd);
    gnutls_handshake_set_timeout(p->tls, HEALTHCHECK_TIMEOUT_S * 1000);
    do
        rc = gnutls_handshake(p->tls);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc < 0) {
        snprintf(detail, dl, "TLS handshake: %s", gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

static void probe_close(probe *p)
{
    if (p->tls) {
        gnutls_bye(p->tls, GNUTLS_SHUT_WR);
        gnutls_deinit(p->tls);
    }
    if (p->cred)
        gnutls_certificate_free_credentials(p->cred);
    if (p->fd >= 0)
        close(p->fd);
}

int healthcheck_run(const server_config *cfg, char *detail, size_t dl)
{
    const char *host = cfg->bind;
    if (strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    bool tls = cfg->tls_cert[0] != '\0';
    char url[128];
    snprintf(url, sizeof url, "%s://%s%s%s:%u/livez", tls ? "https" : "http",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", cfg->port);

    struct sockaddr_storage ss;
    socklen_t sslen;
    if (config_socket_address(host, cfg->port, &ss, &sslen) != 0) {
        snprintf(detail, dl, "--bind %s is not an IP address", host);
        return 2;
    }

    probe p = {.fd = socket(ss.ss_family, SOCK_STREAM, 0)};
    int result = 1;
    if (p.fd < 0) {
        snprintf(detail, dl, "socket: %s", strerror(errno));
        return 1;
    }
    /* On Linux the send timeout bounds connect() too. */
    struct timeval tv = {HEALTHCHECK_TIMEOUT_S, 0};
    setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(p.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char why[160] = "";
    char buf[256];
    int n = snprintf(buf, sizeof buf, "GET /livez HTTP/1.0\r\nHost: %s\r\n\r\n", host);
    if (connect(p.fd, (struct sockaddr *)&ss, sslen) != 0) {
        snprintf(why, sizeof why, "%s", strerror(errno));
        goto done;
    }
    if (tls && tls_begin(&p, why, sizeof why) != 0)
        goto done;
    if (probe_send(&p, buf, (size_t)n) != 0) {
        snprintf(why, sizeof why, "the request could not be sent");
        goto done;
    }
    size_t got = probe_recv(&p, buf, sizeof buf - 1, STATUS_LINE_MIN);
    buf[got] = '\0';
    if (got < STATUS_LINE_MIN || strncmp(buf, "HTTP/1.", 7) != 0) {
        snprintf(why, sizeof why, "no HTTP answer%s",
                 tls ? "" : " (for a daemon serving HTTPS, give --tls-cert and --tls-key)");
        goto done;
    }
    if (strncmp(buf + 8, " 200", 4) != 0) {
        snprintf(why, sizeof why, "status %.3s", buf + 9);
        goto done;
    }
    result = 0;
done:
    probe_close(&p);
    if (result != 0)
        snprintf(detail, dl, "no 200 from %s: %s", url, why);
    return result;
}
