#!/usr/bin/env python3
"""HTTP/1.1 framing and request-target rules against a real seglossd, over raw sockets (issue 12).

Every case sends exact bytes and reads until the server closes (or a deadline passes), then
checks the status line, that the connection was closed when it must be, and that bytes hidden
behind a refused head were never answered as a second request:

- Content-Length with Transfer-Encoding (any case, either order), two different
  Content-Length headers or a list "5, 6": 400 and close; the smuggled GET gets no answer.
- A transfer coding other than chunked (gzip, xchunked, "chunked, identity"): 501 and close,
  at once (well before --idle-timeout).
- HTTP/1.1 without Host: 400 (HTTP/1.0 without Host is served); an absolute-form target
  `GET http://host/v1/info` is served like `/v1/info`.
- %00 anywhere in a path or query value: 400, and the name is untouched (DELETE
  /v1/runs/nultest%00junk deletes nothing); names are decoded exactly once (/v1/runs/dd%252ex
  is the run "dd%2ex", not "dd.x").
- A client that half-closes (shutdown(SHUT_WR)) in the middle of a body is dropped promptly.
- POST /v1/evaluate with Content-Encoding: gzip: 415 naming the header.
- X-Content-Type-Options: nosniff on every answer; the dashboard's page carries a
  Content-Security-Policy with frame-ancestors 'none' and X-Frame-Options: DENY; with tokens
  on, the runs API answers Cache-Control: private.

Ends with 'N passed, N failed'."""
import json
import os
import socket
import time

import harness as h
from harness import check

IDLE_TIMEOUT_S = 10
# A refused head is answered at once; this is far below the idle timeout yet generous for a
# loaded machine.
PROMPT_S = 3.0


def raw(d, data, read_s=IDLE_TIMEOUT_S + 3, half_close=False):
    """Sends data on a fresh connection and reads until the server closes or read_s passes.
    Returns (bytes received, whether the server closed, seconds until then)."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=read_s)
    t0 = time.time()
    out = b""
    closed = False
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        deadline = t0 + read_s
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    finally:
        s.close()
    return out, closed, time.time() - t0


def statuses(out):
    """The status codes of every response in out, in order."""
    codes = []
    for line in out.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and len(line) >= 12:
            try:
                codes.append(int(line[9:12]))
            except ValueError:
                pass
    return codes


def head_of(out):
    """Lower-case header names -> values of the first response."""
    head = out.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]
    return dict((k.strip().lower(), v.strip()) for k, _, v in (x.partition(":") for x in head))


SMUGGLED = b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n"


def refused(d, name, data, want, prompt=False):
    out, closed, secs = raw(d, data)
    codes = statuses(out)
    check(f"{name}: {want}", codes[:1] == [want], f"got {codes} {out[:300]!r}")
    check(f"{name}: connection closed", closed, f"still open after {secs:.1f} s")
    # (MHD answers a malformed Content-Length itself, and repeats its status line: one answer)
    check(f"{name}: nothing else answered",
          all(c == want for c in codes) and b"seglossd" not in out, f"answers {codes}")
    if prompt:
        check(f"{name}: answered at once", secs < PROMPT_S, f"{secs:.1f} s")
    if codes[:1] == [want] and want != 400 or b"problem+json" in out:
        ctype = head_of(out).get("content-type", "")
        check(f"{name}: problem+json", ctype.startswith("application/problem+json"), ctype)


def smuggling(d):
    body = b"0\r\n\r\n" + SMUGGLED
    for te in (b"Transfer-Encoding: chunked", b"transfer-encoding: CHUNKED",
               b"Transfer-Encoding: Chunked"):
        for order in ("cl-te", "te-cl"):
            cl = b"Content-Length: %d" % len(body)
            hdrs = [cl, te] if order == "cl-te" else [te, cl]
            req = (b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\n" + b"\r\n".join(hdrs) +
                   b"\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n" + body)
            refused(d, f"CL+TE ({te.decode()}, {order})", req, 400, prompt=True)
    # a GET with both is refused too (any method)
    req = (b"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
    refused(d, "GET with CL+TE", req, 400, prompt=True)
    # two different Content-Length headers: one framing hides a request from the other
    req = (b"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n"
           b"\r\n" % len(SMUGGLED)) + SMUGGLED
    refused(d, "two Content-Length headers (0, n)", req, 400, prompt=True)
    req = (b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: 0"
           b"\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n" % len(SMUGGLED)) + \
        SMUGGLED
    refused(d, "two Content-Length headers (n, 0)", req, 400, prompt=True)
    req = (b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n"
           b"Content-Type: multipart/form-data; boundary=b\r\n\r\n12345" + SMUGGLED)
    refused(d, "Content-Length list 5, 6", req, 400, prompt=True)
    # identical repeats are one length (RFC 9110 8.6): served
    out, _, _ = raw(d, b"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                       b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    check("two equal Content-Length headers: served", statuses(out)[:1] == [200],
          f"{out[:200]!r}")


def transfer_codings(d):
    for te in (b"gzip", b"xchunked", b"chunked, identity", b"identity", b"gzip, chunked"):
        req = (b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
               b"\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
               + SMUGGLED)
        refused(d, f"Transfer-Encoding: {te.decode()}", req, 501, prompt=True)
    req = (b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Transfer-Encoding: chunked\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n"
           b"0\r\n\r\n" + SMUGGLED)
    refused(d, "Transfer-Encoding: chunked twice", req, 501, prompt=True)
    req = (b"POST /v1/evaluate HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Content-Type: multipart/form-data; boundary=b\r\n\r\n0\r\n\r\n" + SMUGGLED)
    refused(d, "Transfer-Encoding in HTTP/1.0", req, 400, prompt=True)


def host_and_target(d):
    refused(d, "HTTP/1.1 without Host", b"GET /v1/info HTTP/1.1\r\n\r\n" + SMUGGLED, 400,
            prompt=True)
    refused(d, "two Host headers",
            b"GET /v1/info HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + SMUGGLED, 400, prompt=True)
    out, _, _ = raw(d, b"GET /v1/info HTTP/1.0\r\n\r\n")
    check("HTTP/1.0 without Host: served", statuses(out)[:1] == [200], f"{out[:200]!r}")
    for target in (b"http://127.0.0.1/v1/info", b"HTTP://example.org:8080/v1/info",
                   b"https://x/v1/info"):
        out, _, _ = raw(d, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = out.split(b"\r\n\r\n", 1)[-1]
        ok = statuses(out)[:1] == [200] and b'"service":"seglossd"' in body
        check(f"absolute-form GET {target.decode()}: served like /v1/info", ok, f"{out[:300]!r}")
    out, _, _ = raw(d, b"GET http://x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check("absolute-form without a path is /", statuses(out)[:1] == [200], f"{out[:200]!r}")


def evaluate(d, run):
    status, _, body = h.post_small(d, params={"run": run})
    check(f"evaluation recorded in run {run}", status == 200, f"{status} {body[:200]!r}")
    return json.loads(body).get("id", "") if status == 200 else ""


def get(d, path, method="GET"):
    out, _, _ = raw(d, method.encode() + b" " + path.encode() +
                    b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    codes = statuses(out)
    return (codes[0] if codes else 0), out


def nul_and_decoding(d):
    evaluate(d, "nultest")
    ev = evaluate(d, "dd.x")
    evaluate(d, "aA")
    status, out = get(d, "/v1/runs/nultest%00junk", "DELETE")
    check("DELETE /v1/runs/nultest%00junk -> 400", status == 400, f"{out[:300]!r}")
    status, _ = get(d, "/v1/runs/nultest")
    check("... and run nultest is still there", status == 200, str(status))
    status, out = get(d, "/v1/runs/nultest%00")
    check("GET /v1/runs/nultest%00 -> 400", status == 400, f"{out[:200]!r}")
    status, out = get(d, "/style.css%00.html")
    check("GET /style.css%00.html -> 400", status == 400, f"{out[:200]!r}")
    status, out = get(d, f"/v1/evaluations/{ev}/overlay.png?item=0%00")
    check("overlay.png?item=0%00 -> 400", status == 400, f"{out[:200]!r}")
    status, out = get(d, f"/v1/evaluations/{ev}/overlay.png?item=0")
    check("overlay.png?item=0 -> 200", status == 200, f"{out[:200]!r}")
    status, out = get(d, "/v1/runs?max_results=5%00x")
    check("GET /v1/runs?max_results=5%00x -> 400", status == 400, f"{out[:200]!r}")
    status, out = get(d, "/v1/runs/nultest/history?key%00=loss.total")
    check("a NUL in a query key -> 400", status == 400, f"{out[:200]!r}")
    status, out = get(d, "/v1/runs/bad%zzescape")
    check("malformed escape in the path -> 400", status == 400, f"{out[:200]!r}")
    ctype, body = h.multipart(h.small_parts())
    status, _, rb = h.request(d, "POST", "/v1/evaluate?run=nul%00test", body=body,
                              headers={"Content-Type": ctype})
    check("POST /v1/evaluate?run=nul%00test -> 400", status == 400, f"{status} {rb[:200]!r}")
    # decoded exactly once
    status, out = get(d, "/v1/runs/dd%2Ex")
    check("/v1/runs/dd%2Ex is run dd.x", status == 200, f"{out[:200]!r}")
    status, out = get(d, "/v1/runs/dd%252ex")
    check("/v1/runs/dd%252ex is run \"dd%2ex\" (404), not dd.x",
          status == 404 and b"dd%2ex" in out, f"{out[:300]!r}")
    status, out = get(d, "/v1/runs/dd%252ex", "DELETE")
    check("DELETE /v1/runs/dd%252ex deletes nothing", status == 404, f"{out[:200]!r}")
    status, _ = get(d, "/v1/runs/dd.x")
    check("... and run dd.x is still there", status == 200, str(status))
    status, out = get(d, "/v1/runs/a%2541")
    check("/v1/runs/a%2541 is run \"a%41\" (404), not aA", status == 404 and b"a%41" in out,
          f"{out[:300]!r}")
    status, _ = get(d, "/v1/runs/a%41")
    check("/v1/runs/a%41 is run aA", status == 200, str(status))
    status, out = get(d, "/v1/runs?max_results=%32")
    check("query values are decoded once (max_results=%32 is 2)", status == 200, f"{out[:200]!r}")


def half_close(d):
    head = (b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    out, closed, secs = raw(d, head + b"--b\r\n" + b"x" * 20000, half_close=True)
    check("half-close mid-body: connection dropped promptly", closed and secs < PROMPT_S,
          f"closed={closed} after {secs:.1f} s: {out[:200]!r}")
    chunked = (b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: multipart/form-data; boundary=b\r\n\r\n1000\r\n" + b"y" * 100)
    out, closed, secs = raw(d, chunked, half_close=True)
    check("half-close mid-chunk: connection dropped promptly", closed and secs < PROMPT_S,
          f"closed={closed} after {secs:.1f} s: {out[:200]!r}")
    oip = (b"POST /v2/models/segloss/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n"
           b"Content-Type: application/json\r\n\r\n{\"inputs\": [")
    out, closed, secs = raw(d, oip, half_close=True)
    check("half-close mid-body (/v2 infer): connection dropped promptly",
          closed and secs < PROMPT_S, f"closed={closed} after {secs:.1f} s: {out[:200]!r}")
    status, _, _ = h.request(d, "GET", "/livez")
    check("daemon still serves after the half-closes", status == 200, str(status))


def content_encoding(d):
    ctype, body = h.multipart(h.small_parts())
    for enc in ("gzip", "br", "deflate"):
        status, headers, rb = h.request(d, "POST", "/v1/evaluate", body=body,
                                        headers={"Content-Type": ctype,
                                                 "Content-Encoding": enc})
        why = h.problem_ok(status, headers, rb, 415)
        check(f"POST /v1/evaluate Content-Encoding: {enc} -> 415", not why, why)
        check(f"... the 415 names Content-Encoding ({enc})",
              b"Content-Encoding" in rb, f"{rb[:200]!r}")
    status, _, rb = h.request(d, "POST", "/v1/evaluate", body=body,
                              headers={"Content-Type": ctype, "Content-Encoding": "identity"})
    check("Content-Encoding: identity is served", status == 200, f"{status} {rb[:200]!r}")


def security_headers(d):
    for method, path in (("GET", "/v1/info"), ("GET", "/livez"), ("GET", "/metrics"),
                         ("GET", "/nosuch"), ("GET", "/v1/runs"), ("GET", "/"),
                         ("GET", "/app.js"), ("GET", "/v2/health/ready"),
                         ("DELETE", "/v1/info")):
        status, headers, _ = h.request(d, method, path)
        check(f"{method} {path} ({status}): X-Content-Type-Options: nosniff",
              headers.get("x-content-type-options") == "nosniff", str(headers))
    status, headers, _ = h.post_small(d)
    check("POST /v1/evaluate: X-Content-Type-Options: nosniff",
          headers.get("x-content-type-options") == "nosniff", str(headers))
    status, headers, _ = h.request(d, "GET", "/")
    csp = headers.get("content-security-policy", "")
    check("GET /: Content-Security-Policy with frame-ancestors 'none' and default-src 'self'",
          "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, csp)
    check("GET /: no 'unsafe-inline' or 'unsafe-eval'", "unsafe" not in csp, csp)
    check("GET /: X-Frame-Options: DENY", headers.get("x-frame-options") == "DENY",
          str(headers))


def private_cache(tmp):
    token = "rw" + "5" * 30
    path = os.path.join(tmp, "tokens")
    with open(path, "w") as f:
        f.write(f"rw {token}\n")
    os.chmod(path, 0o600)
    d = h.Daemon("protocol-tokens", ["--token-file", path])
    if not check("daemon with --token-file starts", d.wait_ready(), d.tail()):
        return
    auth = h.bearer(token)
    h.post_small(d, params={"run": "cachetest"}, headers=auth)
    for p in ("/v1/runs", "/v1/runs/cachetest", "/v1/runs/cachetest/history", "/"):
        status, headers, _ = h.request(d, "GET", p, headers=auth)
        cc = headers.get("cache-control", "")
        check(f"tokens on: GET {p} ({status}) Cache-Control is private or no-store",
              status == 200 and ("private" in cc or "no-store" in cc), cc)
    d.stop()


def default_budget(d):
    """The default --max-inflight-mb reaches /metrics: a quarter of the memory (the cgroup's
    limit when lower), at least 64 MiB."""
    mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                v = f.read().strip()
            if v.isdigit() and 0 < int(v) < mem:
                mem = int(v)
        except OSError:
            pass
    want = max(64, (mem >> 20) // 4) << 20
    status, _, body = h.request(d, "GET", "/metrics")
    lines = body.decode(errors="replace").split("\n")
    check("/metrics: segloss_inflight_body_budget_bytes is the default budget",
          f"segloss_inflight_body_budget_bytes {want}" in lines, f"want {want}")
    check("/metrics: segloss_inflight_body_bytes is 0 when idle",
          "segloss_inflight_body_bytes 0" in lines, "")


def main():
    h.install_watchdog(600)
    d = h.Daemon("protocol", ["--idle-timeout", str(IDLE_TIMEOUT_S)])
    if not check("daemon starts", d.wait_ready(), d.tail()):
        h.finish()
    smuggling(d)
    transfer_codings(d)
    host_and_target(d)
    nul_and_decoding(d)
    content_encoding(d)
    security_headers(d)
    half_close(d)
    default_budget(d)
    status, _, _ = h.request(d, "GET", "/livez")
    check("daemon alive after every case", status == 200, str(status))
    d.stop()
    private_cache(h.tmpdir)
    h.finish()


if __name__ == "__main__":
    main()
