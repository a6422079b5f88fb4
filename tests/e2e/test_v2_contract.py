#!/usr/bin/env python3
"""What KServe's and Triton's REST clients expect of the /v2 routes (standard library only).

A real seglossd on a free loopback port. Checks: the health and model ready routes answer
application/json bodies ({"live": true}, {"ready": true}; {"ready": false} with 503 while the
daemon drains after SIGTERM), which the clients parse with .json(); every /v2 error - 404, 405,
400, 413, 415, 422, and 401 under --token-file - is application/json holding exactly
{"error": "..."} (the protocol's error object, not problem+json); and /v2 messages speak the
protocol's words (inputs, labels, parameters), never the multipart door's "masks" or "params".
Ends with 'N passed, N failed'.
"""
import json
import os
import re
import socket
import time

import harness as h
from harness import check, finish, request

WATCHDOG_S = 120
INFER = "/v2/models/segloss/infer"
READY_ROUTES = ("/v2/health/ready", "/v2/models/segloss/ready",
                "/v2/models/segloss/versions/1/ready")
# A word of /v1/evaluate's multipart vocabulary: "mask", "masks", "params" (not "parameters").
V1_WORDS = re.compile(r"\bmasks?\b|\bparams\b")
RW_TOKEN = "rw-token-for-the-v2-contract-test"


def json_body(body):
    try:
        return json.loads(body)
    except ValueError:
        return None


def error_why(status, headers, body, want):
    """'' when the answer is the OIP error object with status want, else why not."""
    if status != want:
        return f"status {status}, wanted {want}: {body[:200]!r}"
    if headers.get("content-type") != "application/json":
        return f"Content-Type {headers.get('content-type')!r}, wanted application/json"
    doc = json_body(body)
    if not isinstance(doc, dict) or set(doc) != {"error"} or not isinstance(doc["error"], str) \
            or not doc["error"]:
        return f"not exactly {{\"error\": \"...\"}}: {body[:200]!r}"
    return ""


def infer_body(logits_shape, labels_shape, parameters=None, labels_type="UINT8"):
    n = 1
    for x in logits_shape:
        n *= x
    m = 1
    for x in labels_shape:
        m *= x
    doc = {"inputs": [
        {"name": "logits", "datatype": "FP32", "shape": logits_shape, "data": [0.5] * n},
        {"name": "labels", "datatype": labels_type, "shape": labels_shape, "data": [1] * m}]}
    if parameters is not None:
        doc["parameters"] = parameters
    return json.dumps(doc).encode()


def health(d):
    for path, want in (("/v2/health/live", {"live": True}),
                       *((p, {"ready": True}) for p in READY_ROUTES)):
        status, hd, body = request(d, "GET", path)
        check(f"GET {path}: 200 application/json {json.dumps(want)}",
              status == 200 and hd.get("content-type") == "application/json"
              and json_body(body) == want, f"{status} {hd.get('content-type')} {body[:100]!r}")


def head_only(d, method, path, headers, length):
    """(status, headers, body) of a request whose body is announced but never sent: a refusal
    known from the head comes at once and closes, and a client still writing the body would
    see its connection reset before it reads the answer (a race, not the contract)."""
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_text, _, rest = data.partition(b"\r\n\r\n")
        lines = head_text.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        want = int(hdrs.get("content-length", "0"))
        while len(rest) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        h.record_answer(method, path, int(lines[0].split()[1]), hdrs, rest)
        return int(lines[0].split()[1]), hdrs, rest


def errors(d):
    json_type = {"Content-Type": "application/json"}
    cases = [
        ("404 an unknown model", "GET", "/v2/models/other", None, {}, 404),
        ("404 an unknown model's ready", "GET", "/v2/models/other/ready", None, {}, 404),
        ("404 an unknown version", "GET", "/v2/models/segloss/versions/2", None, {}, 404),
        ("405 GET on infer", "GET", INFER, None, {}, 405),
        ("405 DELETE on /v2/health/live", "DELETE", "/v2/health/live", None, {}, 405),
        ("405 POST on model metadata", "POST", "/v2/models/segloss", b"{}", json_type, 405),
        ("400 not JSON", "POST", INFER, b"{nope", json_type, 400),
        ("400 an unknown parameter", "POST", INFER,
         infer_body([1, 2, 1, 1], [1, 1, 1], {"nonsense": 1}), json_type, 400),
        ("415 FP32 labels", "POST", INFER,
         infer_body([1, 2, 1, 1], [1, 1, 1], labels_type="FP32"), json_type, 415),
        ("415 a gzip body", "POST", INFER, b"\x1f\x8b\x08\x00",
         {**json_type, "Content-Encoding": "gzip"}, 415),
        ("422 labels N other than the logits' N", "POST", INFER,
         infer_body([2, 2, 1, 1], [1, 1, 1]), json_type, 422),
        ("422 num_classes other than C", "POST", INFER,
         infer_body([1, 2, 1, 1], [1, 1, 1], {"num_classes": 3}), json_type, 422),
        ("413 a body over --max-body-mb", "POST", INFER, b"x" * (2 << 20), json_type, 413),
    ]
    for name, method, path, body, headers, want in cases:
        if want == 413:  # answered from Content-Length before the body: send only the head
            status, hd, answer = head_only(d, method, path, headers, len(body))
        else:
            status, hd, answer = request(d, method, path, body=body, headers=headers)
        why = error_why(status, hd, answer, want)
        if not why and want == 405 and not hd.get("allow"):
            why = "no Allow header"
        check(f"/v2 {name}: application/json {{\"error\"}}", not why, why)
        if status >= 400 and json_body(answer):
            text = str(json_body(answer).get("error", ""))
            check(f"/v2 {name}: the message speaks of inputs and parameters",
                  not V1_WORDS.search(text), text)
    # The words of the two common 400/422 messages, exactly.
    _, _, answer = request(d, "POST", INFER, infer_body([1, 2, 1, 1], [1, 1, 1], {"bad": 1}),
                           json_type)
    text = (json_body(answer) or {}).get("error", "")
    check("an unknown parameter is named as one of the request's parameters",
          "unknown parameter 'bad' in parameters" in text, text)
    _, _, answer = request(d, "POST", INFER, infer_body([2, 2, 1, 1], [1, 1, 1]), json_type)
    text = (json_body(answer) or {}).get("error", "")
    check("a batch mismatch names logits and labels", "logits" in text and "labels" in text
          and "mask" not in text, text)


def tokens():
    path = os.path.join(h.tmpdir, "tokens")
    with open(path, "w") as f:
        f.write(f"rw {RW_TOKEN}\n")
    d = h.Daemon("v2-tokens", ["--token-file", path])
    if not check("daemon with --token-file starts", d.wait_ready(), d.tail()):
        return
    status, hd, body = request(d, "GET", "/v2/models/segloss")
    why = error_why(status, hd, body, 401)
    check("/v2 401 without a token: application/json {\"error\"}", not why, why)
    status, hd, body = request(d, "GET", "/v2/health/ready")
    check("/v2/health/ready stays open with tokens on: {\"ready\": true}",
          status == 200 and json_body(body) == {"ready": True}, f"{status} {body[:100]!r}")
    d.kill()


def draining():
    """SIGTERM with an upload in flight: the daemon drains and the ready routes say so. It
    stops accepting connections, so each route is asked on a connection opened before."""
    d = h.Daemon("v2-drain", ["--shutdown-timeout", "20", "--upload-timeout", "30"])
    if not check("daemon to drain starts", d.wait_ready(), d.tail()):
        return
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    routes = (*READY_ROUTES, "/v2/health/live")
    conns = []
    try:
        for _ in routes:
            c = d.connection(timeout=10)
            c.request("GET", "/livez")
            c.getresponse().read()  # accepted and kept alive
            conns.append(c)
        s.sendall(b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        time.sleep(0.3)
        d.proc.send_signal(15)
        time.sleep(0.3)
        for c, path in zip(conns, routes):
            c.request("GET", path)
            r = c.getresponse()
            status, ctype, body = r.status, r.getheader("Content-Type"), r.read()
            want = (200, {"live": True}) if path.endswith("/live") else (503, {"ready": False})
            check(f"draining: {path} is {want[0]} {json.dumps(want[1])}",
                  (status, json_body(body)) == want and ctype == "application/json",
                  f"{status} {ctype} {body[:100]!r}")
    except OSError as e:
        check("draining", False, repr(e))
    finally:
        s.close()
        for c in conns:
            c.close()
    d.kill()


def main():
    h.install_watchdog(WATCHDOG_S)
    if not check("seglossd is built", os.access(h.DAEMON, os.X_OK), h.DAEMON):
        finish()
    d = h.Daemon("v2", ["--max-body-mb", "1"])
    if not check("daemon starts", d.wait_ready(), d.tail()):
        finish()
    try:
        health(d)
        errors(d)
        tokens()
        draining()
    except Exception as e:  # one broken step must not hide the summary
        check("v2 contract run", False, f"{type(e).__name__}: {e}")
    finish()


if __name__ == "__main__":
    main()
