#!/usr/bin/env python3
"""Tokens and TLS on a real seglossd (issue 7).

Tokens: with --token-file, /v1/* and the dashboard refuse a missing or wrong token (401
problem+json with WWW-Authenticate: Bearer realm="segloss"), a read-only token on a write route
(403, insufficient_scope), and take the right one; /livez, /readyz, /healthz stay open, /metrics
is open until --metrics-token; HTTP Basic with the token as password opens the dashboard; no
token appears in the daemon's log or in any answer. A bad token file stops the daemon at start
with a message that holds no token.

TLS: a self-signed certificate made by openssl at test time; the daemon answers over HTTPS
(verified against that certificate), a plain-HTTP request gets no answer, and a key that does
not match stops the start. Skipped, with a line saying so, when openssl is missing.

Ends with 'N passed, N failed'."""
import base64
import json
import os
import shutil
import subprocess

import harness as h
from harness import check

RW = "rw-" + os.urandom(12).hex()
RO = "ro-" + os.urandom(12).hex()
METRICS = "metrics-" + os.urandom(12).hex()
WRONG = "wrong-" + os.urandom(12).hex()


def write_tokens(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def tokens(d):
    status, headers, body = h.request(d, "GET", "/v1/runs")
    why = h.problem_ok(status, headers, body, 401)
    check("no token on GET /v1/runs -> 401 problem+json", not why, why)
    check("401 carries WWW-Authenticate: Bearer realm=\"segloss\"",
          headers.get("www-authenticate", "").startswith('Bearer realm="segloss"'),
          headers.get("www-authenticate"))
    status, headers, body = h.request(d, "GET", "/v1/info", headers=h.bearer(WRONG))
    why = h.problem_ok(status, headers, body, 401)
    check("wrong token -> 401", not why, why)
    check("wrong token: error=\"invalid_token\"",
          'error="invalid_token"' in headers.get("www-authenticate", ""),
          headers.get("www-authenticate"))
    status, headers, body = h.post_small(d, headers=h.bearer(WRONG))
    check("wrong token on POST /v1/evaluate -> 401", status == 401, str(status))
    status, headers, body = h.post_small(d)
    check("no token on POST /v1/evaluate -> 401 (before the body is read)", status == 401,
          str(status))
    status, headers, body = h.post_small(d, headers=h.bearer(RO))
    why = h.problem_ok(status, headers, body, 403)
    check("read-only token on POST /v1/evaluate -> 403", not why, why)
    check("403 says insufficient_scope",
          'error="insufficient_scope"' in headers.get("www-authenticate", ""),
          headers.get("www-authenticate"))
    status, _, _ = h.request(d, "DELETE", "/v1/runs/nothing", headers=h.bearer(RO))
    check("read-only token on DELETE /v1/runs/... -> 403", status == 403, str(status))
    status, _, body = h.post_small(d, {"run": "auth-e2e", "step": 1}, headers=h.bearer(RW))
    check("read-write token on POST /v1/evaluate -> 200", status == 200, f"{status} {body[:200]}")
    for tok, label in ((RO, "read-only"), (RW, "read-write")):
        status, _, body = h.request(d, "GET", "/v1/runs/auth-e2e", headers=h.bearer(tok))
        check(f"{label} token on GET /v1/runs/auth-e2e -> 200", status == 200, str(status))
    status, _, _ = h.request(d, "DELETE", "/v1/runs/auth-e2e", headers=h.bearer(RW))
    check("read-write token on DELETE /v1/runs/... -> 200/204", status in (200, 204), str(status))
    for path in ("/livez", "/readyz", "/healthz"):
        status, _, _ = h.request(d, "GET", path)
        check(f"{path} open without a token", status == 200, str(status))
    status, _, _ = h.request(d, "GET", "/metrics")
    check("/metrics open without --metrics-token", status == 200, str(status))
    # the dashboard: the page and its assets need a token; Basic (browser prompt) works
    status, headers, _ = h.request(d, "GET", "/")
    check("dashboard / without a token -> 401 with a Basic challenge (browser prompt)",
          status == 401 and headers.get("www-authenticate", "").startswith("Basic "),
          f"{status} {headers.get('www-authenticate')}")
    status, _, _ = h.request(d, "GET", "/app.js")
    check("dashboard asset /app.js without a token -> 401", status == 401, str(status))
    basic = base64.b64encode(f"any:{RO}".encode()).decode()
    status, _, body = h.request(d, "GET", "/", headers={"Authorization": f"Basic {basic}"})
    check("dashboard / with Basic any:<ro token> -> 200", status == 200 and b"<" in body,
          str(status))
    status, _, _ = h.request(d, "GET", "/v1/runs", headers={"Authorization": f"Basic {basic}"})
    check("the dashboard's own fetch (Basic) of /v1/runs -> 200", status == 200, str(status))
    status, _, _ = h.request(d, "GET", "/", headers=h.bearer(RO))
    check("dashboard / with Bearer <ro token> -> 200", status == 200, str(status))
    status, _, _ = h.request(d, "GET", "/no-such-path")
    check("unknown path stays 404 without a token", status == 404, str(status))
    # the Open Inference Protocol door is guarded alike; its health probes stay open
    infer = json.dumps({"inputs": [
        {"name": "logits", "datatype": "FP32", "shape": [1, 2, 1, 2], "data": [0, 1, 1, 0]},
        {"name": "labels", "datatype": "UINT8", "shape": [1, 1, 2], "data": [1, 0]}]}).encode()
    ctype = {"Content-Type": "application/json"}
    status, _, _ = h.request(d, "POST", "/v2/models/segloss/infer", body=infer, headers=ctype)
    check("no token on POST /v2/models/segloss/infer -> 401", status == 401, str(status))
    status, _, _ = h.request(d, "POST", "/v2/models/segloss/infer", body=infer,
                             headers=dict(ctype, **h.bearer(RO)))
    check("read-only token on POST /v2/.../infer -> 403", status == 403, str(status))
    status, _, _ = h.request(d, "POST", "/v2/models/segloss/infer", body=infer,
                             headers=dict(ctype, **h.bearer(RW)))
    check("read-write token on POST /v2/.../infer -> 200", status == 200, str(status))
    for path, want in (("/v2", 401), ("/v2/models/segloss", 401), ("/v2/health/live", 200),
                       ("/v2/health/ready", 200)):
        status, _, _ = h.request(d, "GET", path)
        check(f"GET {path} without a token -> {want}", status == want, str(status))
    status, _, _ = h.request(d, "GET", "/v2/models/segloss", headers=h.bearer(RO))
    check("read-only token on GET /v2/models/segloss -> 200", status == 200, str(status))


def metrics_token(tokfile):
    mfile = os.path.join(h.tmpdir, "metrics.token")
    write_tokens(mfile, f"# for prometheus\n{METRICS}\n")
    d = h.Daemon("metrics", ["--token-file", tokfile, "--metrics-token", mfile])
    if not check("daemon with --metrics-token FILE starts", d.wait_ready(), d.tail()):
        return
    status, headers, body = h.request(d, "GET", "/metrics")
    why = h.problem_ok(status, headers, body, 401)
    check("/metrics without a token -> 401 once --metrics-token is set", not why, why)
    status, _, body = h.request(d, "GET", "/metrics", headers=h.bearer(METRICS))
    check("/metrics with the metrics token -> 200", status == 200 and b"segloss_" in body,
          str(status))
    check("the metrics token opens nothing else",
          h.request(d, "GET", "/v1/runs", headers=h.bearer(METRICS))[0] == 401, "")
    check("/metrics counts the refusals as unauthorized",
          b'reason="unauthorized"' in body, "")
    status, _, _ = h.request(d, "GET", "/livez")
    check("/livez still open", status == 200, str(status))
    d.stop()
    check("no token in the metrics daemon's log", METRICS not in d.log_text(), "")


def bad_token_files():
    cases = [
        ("empty", "# nothing\n", 0o600, "holds no token"),
        ("bad-access", f"admin {RW}\n", 0o600, "expected 'rw TOKEN'"),
        ("writable", f"rw {RW}\n", 0o666, "writable"),
    ]
    for name, text, mode, want in cases:
        path = os.path.join(h.tmpdir, f"tokens-{name}")
        write_tokens(path, text, mode)
        d = h.Daemon(f"bad-{name}", ["--token-file", path])
        try:
            rc = d.proc.wait(timeout=h.START_TIMEOUT_S)
        except Exception:
            rc = None
        log = d.log_text()
        check(f"token file '{name}' stops the start with a message", rc not in (None, 0) and
              want in log, f"exit {rc}: {log[-300:]}")
        check(f"token file '{name}': the message shows no token", RW not in log, log[-300:])
    d = h.Daemon("bad-missing", ["--token-file", os.path.join(h.tmpdir, "nope")])
    rc = d.proc.wait(timeout=h.START_TIMEOUT_S)
    check("a missing token file stops the start", rc != 0 and "cannot be read" in d.log_text(),
          d.tail())


def tls():
    if not shutil.which("openssl"):
        h.note("SKIP TLS: openssl is not installed (apt-get install openssl)")
        return
    cert = os.path.join(h.tmpdir, "cert.pem")
    key = os.path.join(h.tmpdir, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], capture_output=True, timeout=60)
    if not check("openssl makes a self-signed certificate", r.returncode == 0, r.stderr[-300:]):
        return
    tokfile = os.path.join(h.tmpdir, "tokens-tls")
    write_tokens(tokfile, f"rw {RW}\n")
    d = h.Daemon("tls", ["--tls-cert", cert, "--tls-key", key, "--token-file", tokfile],
                 tls_ca=cert)
    if not check("daemon with --tls-cert/--tls-key starts", d.wait_ready(), d.tail()):
        return
    status, _, _ = h.request(d, "GET", "/livez")
    check("GET /livez over HTTPS (certificate verified) -> 200", status == 200, str(status))
    status, _, body = h.post_small(d, headers=h.bearer(RW))
    check("POST /v1/evaluate over HTTPS with a token -> 200", status == 200, str(status))
    status, _, _ = h.request(d, "GET", "/v1/runs")
    check("no token over HTTPS -> 401", status == 401, str(status))
    if shutil.which("curl"):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                            cert, "-H", f"Authorization: Bearer {RW}",
                            f"https://127.0.0.1:{d.port}/v1/info"], capture_output=True,
                           timeout=30)
        check("curl --cacert over HTTPS -> 200", r.stdout == b"200", r.stdout + r.stderr)
        r = subprocess.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://127.0.0.1:{d.port}/livez"], capture_output=True, timeout=30)
        check("plain HTTP to the TLS port gets no HTTP answer", r.stdout != b"200", r.stdout)
    # The image's HEALTHCHECK reads the daemon's own environment, SEGLOSS_TLS_* included.
    probe = [h.DAEMON, "healthcheck", "--port", str(d.port)]
    env = dict(os.environ, SEGLOSS_TLS_CERT=cert, SEGLOSS_TLS_KEY=key)
    r = subprocess.run(probe, capture_output=True, timeout=30, env=env)
    check("seglossd healthcheck with SEGLOSS_TLS_CERT/KEY -> exit 0 over HTTPS",
          r.returncode == 0, r.stderr[-300:])
    r = subprocess.run(probe + ["--tls-cert", cert, "--tls-key", key], capture_output=True,
                       timeout=30)
    check("seglossd healthcheck --tls-cert --tls-key -> exit 0", r.returncode == 0,
          r.stderr[-300:])
    r = subprocess.run(probe, capture_output=True, timeout=30)
    check("seglossd healthcheck in plain HTTP against the TLS daemon -> exit 1, says why",
          r.returncode == 1 and b"no HTTP answer" in r.stderr and b"--tls-cert" in r.stderr,
          f"exit {r.returncode}: {r.stderr[-300:]}")
    d.stop()
    r = subprocess.run(probe + ["--tls-cert", cert, "--tls-key", key], capture_output=True,
                       timeout=30)
    check("seglossd healthcheck over HTTPS with nothing listening -> exit 1",
          r.returncode == 1 and b"https://127.0.0.1" in r.stderr, r.stderr[-300:])
    check("no token in the TLS daemon's log", RW not in d.log_text(), "")
    other = os.path.join(h.tmpdir, "other-key.pem")
    subprocess.run(["openssl", "genrsa", "-out", other, "2048"], capture_output=True, timeout=60)
    d = h.Daemon("tls-mismatch", ["--tls-cert", cert, "--tls-key", other])
    rc = d.proc.wait(timeout=h.START_TIMEOUT_S)
    check("a key that does not match the certificate stops the start", rc != 0, d.tail())
    d = h.Daemon("tls-half", ["--tls-cert", cert])
    rc = d.proc.wait(timeout=h.START_TIMEOUT_S)
    check("--tls-cert without --tls-key stops the start", rc != 0 and "go together" in
          d.log_text(), d.tail())


def main():
    h.install_watchdog(240)
    tokfile = os.path.join(h.tmpdir, "tokens")
    write_tokens(tokfile, f"# test tokens\n\nrw {RW}   # trainer\nro {RO}\n")
    d = h.Daemon("tokens", ["--token-file", tokfile])
    if check("daemon with --token-file starts", d.wait_ready(), d.tail()):
        tokens(d)
        # everything the daemon answered above went through its log: no token in it
        rc = d.stop()
        check("SIGTERM: exit 0", rc == 0, str(rc))
        log = d.log_text()
        check("no token (rw, ro or wrong) in the request log",
              RW not in log and RO not in log and WRONG not in log, "a token is in the log")
        check("the request log has the 401s and the 403s",
              '"status":401' in log and '"status":403' in log, "")
    metrics_token(tokfile)
    bad_token_files()
    tls()
    h.finish()


if __name__ == "__main__":
    main()
