#!/usr/bin/env python3
"""End-to-end tests of seglossd on a real loopback port (standard library and curl only).

Starts build/seglossd (or $BUILD/seglossd) on a free 127.0.0.1 port and checks: every golden
case over HTTP and through `seglossd eval` (golden_check.py); the bad-request corpus of
bad_requests/cases.json (status, problem+json body, Allow, then the daemon still answers);
request ids, query parameters, /v1/info, /metrics, the probes; a chunked body over the limit; a
too-slow upload (408) and a stalled one (closed); 8 parallel clients; SIGTERM with requests in
flight (they complete, new connections are refused, exit status 0).

Every daemon started here is stopped on exit, on failure and by a watchdog alarm. Prints one
line per check and ends with 'N passed, N failed'."""
import http.client
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import harness as h
from harness import check, finish, free_port, multipart, read_file, request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DAEMON = h.DAEMON
GOLDEN = os.path.join(ROOT, "tests", "golden")
BAD = os.path.join(HERE, "bad_requests")
FILES = os.path.join(BAD, "files")
WATCHDOG_S = 600          # the whole run; a hang fails the run instead of blocking CI
UPLOAD_TIMEOUT_S = 2      # the test daemon's --upload-timeout
IDLE_TIMEOUT_S = 3        # the test daemon's --idle-timeout
MAX_BODY_MB = 8           # the test daemon's --max-body-mb
PARALLEL_CLIENTS = 8
REQUESTS_PER_CLIENT = 4
tmpdir = h.tmpdir


def Daemon(name, extra=()):
    """A daemon of harness.py with this test's limits and timeouts (extra flags win)."""
    return h.Daemon(name, ["--max-body-mb", str(MAX_BODY_MB),
                           "--upload-timeout", str(UPLOAD_TIMEOUT_S),
                           "--idle-timeout", str(IDLE_TIMEOUT_S), "--shutdown-timeout", "10",
                           "--threads", "2", "--workers", "2", *extra])


def problem_ok(status, headers, body, want_status):
    """Why a response is not the expected problem+json (every member, an X-Request-Id), or ''."""
    return h.problem_ok(status, headers, body, want_status, strict=True)


def part_source(source):
    kind, _, value = source.partition(":")
    if kind == "file":
        return read_file(os.path.join(FILES, value)), value
    if kind == "text":
        return value.encode(), None
    if kind == "padded_params":  # {"gamma": 1} padded with blanks to `value` bytes
        return b'{"gamma": 1' + b" " * (int(value) - 12) + b"}", None
    raise ValueError(f"bad part source {source!r}")


# ---- the checks ----------------------------------------------------------------------------

def golden(mode_args, label):
    cmd = [sys.executable, os.path.join(HERE, "golden_check.py"), "--cases", GOLDEN, *mode_args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=300, text=True)
    except subprocess.TimeoutExpired:
        check(f"golden {label}", False, "timed out")
        return
    for line in proc.stdout.splitlines():
        if line.startswith("ok   "):
            check(f"golden {label} {line[5:]}", True)
        elif line.startswith("FAIL "):
            name, _, why = line[5:].partition(": ")
            check(f"golden {label} {name}", False, why)
    if "passed" not in proc.stdout:
        check(f"golden {label}", False, proc.stderr[-500:])


def bad_requests(d):
    with open(os.path.join(BAD, "cases.json")) as f:
        cases = json.load(f)["cases"]
    check("bad-request corpus has at least 30 cases", len(cases) >= 30, str(len(cases)))
    for case in cases:
        name = f"bad request {case['name']} -> {case['status']}"
        try:
            if "huge_content_length" in case:
                status, headers, body = raw_huge_length(d, case["huge_content_length"])
            else:
                method = case.get("method", "POST")
                path = case.get("path", "/v1/evaluate")
                if case.get("query"):
                    path += "?" + case["query"]
                headers = dict(case.get("headers", {}))
                body = None
                if "parts" in case:
                    parts = []
                    for pname, source in case["parts"]:
                        data, filename = part_source(source)
                        parts.append((pname, data, filename))
                    headers["Content-Type"], body = multipart(parts)
                elif "raw" in case:
                    headers["Content-Type"] = case["content_type"]
                    body = case["raw"].encode("latin1")
                status, headers, body = request(d, method, path, body=body, headers=headers)
            why = problem_ok(status, headers, body, case["status"])
            if not why and case.get("detail"):
                detail = json.loads(body)["detail"]
                if case["detail"] not in detail:
                    why = f"detail {detail!r} lacks {case['detail']!r}"
            if not why and case.get("allow") and headers.get("allow") != case["allow"]:
                why = f"Allow {headers.get('allow')!r}, wanted {case['allow']!r}"
            check(name, not why, why)
        except (OSError, http.client.HTTPException, ValueError) as e:
            check(name, False, f"{type(e).__name__}: {e}")
    status, _, _ = request(d, "GET", "/livez")
    check("daemon still answers after the bad-request corpus", status == 200, str(status))
    check("daemon still running after the corpus", d.proc.poll() is None, d.tail())


def raw_huge_length(d, length):
    """Headers only: the 413 must come before any of the body is sent."""
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        s.sendall(b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                  b"boundary=b\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n")
        return read_raw_response(s)


def read_raw_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def refused_after_the_body(d):
    """A request refused for its query or Content-Type, whose client sends the body after a
    pause and reads only then: the answer must still arrive whole. Answering and closing at
    the headers made the kernel reset the connection when the body came, which can destroy
    the answer before it is read (curl: "Send failure: Broken pipe", no status)."""
    ctype, body = multipart(small_request_parts())
    cases = [("an unknown query parameter", "/v1/evaluate?nonsense=1", ctype, 400),
             ("a body that is not multipart", "/v1/evaluate", "application/json", 415)]
    for what, path, content_type, want in cases:
        try:
            with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}"
                          f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
                time.sleep(0.3)  # an early answer and close would be there by now
                half = len(body) // 2
                s.sendall(body[:half])
                time.sleep(0.1)  # a reset for the first half would be back by now
                s.sendall(body[half:])
                status, headers, answer = read_raw_response(s)
            why = problem_ok(status, headers, answer, want)
        except OSError as e:
            why = f"{type(e).__name__}: {e}"
        check(f"{what}, body sent after a pause: the whole {want} arrives", not why, why)
    ctype, body = multipart(small_request_parts())
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        s.sendall(f"POST /v1/evaluate?nonsense=1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  f"{ctype}\r\nContent-Length: {len(body)}\r\nExpect: 100-continue"
                  f"\r\n\r\n".encode())
        status, headers, answer = read_raw_response(s)
    check("with Expect: 100-continue the refusal comes before the body",
          not problem_ok(status, headers, answer, 400), f"{status} {answer[:200]!r}")


def small_request_parts(extra=()):
    return [("logits", read_file(os.path.join(FILES, "logits_1x3x4x4.npy")), "l.npy"),
            ("mask", read_file(os.path.join(FILES, "mask_4x4.png")), "m.png"), *extra]


def request_ids_and_query(d):
    ctype, body = multipart(small_request_parts())
    status, headers, answer = request(
        d, "POST", "/v1/evaluate?main_loss=focal&class_weights=1,2,3&confusion_matrix=true",
        body=body, headers={"Content-Type": ctype, "X-Request-Id": "trace-42"})
    check("X-Request-Id is echoed", headers.get("x-request-id") == "trace-42",
          str(headers.get("x-request-id")))
    ok = status == 200
    doc = json.loads(answer) if ok else {}
    p = doc.get("params", {})
    check("query parameters are applied and echoed",
          ok and p.get("main_loss") == "focal" and p.get("class_weights") == [1, 2, 3]
          and doc.get("confusion_matrix") is not None
          and abs(doc["loss"]["total"] - doc["loss"]["focal"]) < 1e-12,
          f"{status} {answer[:300]!r}")
    check("every effective parameter is echoed, defaults included",
          ok and all(k in p for k in ("alpha", "gamma", "beta", "smooth", "threshold",
                                      "dice_loss", "num_classes", "semantics")),
          str(p))
    check("timing is measured", ok and all(doc["timing"][k] >= 0 for k in
                                           ("decode_ms", "compute_ms", "total_ms")),
          str(doc.get("timing")))
    status, headers, _ = request(d, "GET", "/livez", headers={"X-Request-Id": "bad id with spaces"})
    rid = headers.get("x-request-id", "")
    check("an unusable X-Request-Id is replaced",
          status == 200 and len(rid) == 32 and " " not in rid, rid)


def operations(d):
    status, headers, body = request(d, "GET", "/v1/info")
    info = json.loads(body) if status == 200 else {}
    check("GET /v1/info", status == 200 and "version" in info and "limits" in info
          and "defaults" in info and info["limits"]["max_body_bytes"] == MAX_BODY_MB << 20,
          body[:200])
    for path in ("/livez", "/healthz", "/readyz"):
        status, _, _ = request(d, "GET", path)
        check(f"GET {path}", status == 200, str(status))
    status, headers, body = request(d, "HEAD", "/livez")
    check("HEAD /livez", status == 200, str(status))
    status, headers, body = request(d, "GET", "/metrics")
    text = body.decode()
    check("GET /metrics is Prometheus text 0.0.4",
          status == 200 and "version=0.0.4" in headers.get("content-type", ""), str(headers))
    for name in ("segloss_build_info{", "segloss_http_requests_total{route=\"/v1/evaluate\"",
                 "segloss_http_request_duration_seconds_bucket", "segloss_http_request_body_bytes",
                 "segloss_http_requests_in_flight", "segloss_evaluation_seconds_count",
                 "segloss_rejections_total{reason=\"body_too_large\"}"):
        check(f"metrics has {name}", name in text, "missing")
    prefix = "segloss_rejections_total{reason=\"malformed\"}"
    rejected = [line for line in text.splitlines() if line.startswith(prefix)]
    check("malformed requests are counted",
          rejected and int(rejected[0].split()[-1]) > 0, str(rejected))


def extensions_wired(d):
    """The runs store and the dashboard are plugged in (their own tests go deeper)."""
    ctype, body = multipart(small_request_parts())
    status, _, answer = request(d, "POST", "/v1/evaluate?run=e2e-wiring&step=3",
                                body=body, headers={"Content-Type": ctype})
    eid = json.loads(answer).get("id") if status == 200 else None
    status, _, run = request(d, "GET", "/v1/runs/e2e-wiring")
    check("a result posted with run is stored (GET /v1/runs/{run})",
          eid and status == 200 and json.loads(run).get("last_step") == 3,
          f"{status} {run[:200]!r}")
    status, _, stored = request(d, "GET", f"/v1/evaluations/{eid}")
    check("the stored answer is the one sent", status == 200 and json.loads(stored)["id"] == eid,
          str(status))
    status, headers, page = request(d, "GET", "/")
    check("GET / serves the dashboard", status == 200 and
          headers.get("content-type", "").startswith("text/html"), str(status))


def eval_mode_errors():
    proc = subprocess.run([DAEMON, "eval", "--logits", os.path.join(FILES, "npy_nan.npy"),
                           "--mask", os.path.join(FILES, "mask_4x4.png")],
                          capture_output=True, timeout=60)
    try:
        doc = json.loads(proc.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        doc = {}
    check("eval: bad input exits non-zero with problem JSON on stderr",
          proc.returncode != 0 and proc.stdout == b"" and doc.get("status") == 422
          and "logits[0, 1, 2, 3]" in doc.get("detail", ""), proc.stderr[:300])
    proc = subprocess.run([DAEMON, "eval", "--mask", "x.png"], capture_output=True, timeout=60)
    check("eval: missing --logits is a usage error", proc.returncode == 2, proc.stderr[:200])
    proc = subprocess.run([DAEMON, "--help"], capture_output=True, timeout=60, text=True)
    check("--help documents the flags and their environment twins",
          proc.returncode == 0 and "SEGLOSS_PORT" in proc.stdout and "--max-body-mb" in proc.stdout
          and "SEGLOSS_LOG_FORMAT" in proc.stdout, proc.stdout[:200])
    proc = subprocess.run([DAEMON, "--version"], capture_output=True, timeout=60, text=True)
    check("--version", proc.returncode == 0 and proc.stdout.startswith("seglossd "), proc.stdout)


def healthcheck(d):
    proc = subprocess.run([DAEMON, "healthcheck", "--port", str(d.port)], capture_output=True,
                          timeout=30)
    check("healthcheck exits 0 against a live daemon", proc.returncode == 0, proc.stderr[:200])
    proc = subprocess.run([DAEMON, "healthcheck", "--port", str(free_port())],
                          capture_output=True, timeout=30)
    check("healthcheck exits 1 when nothing listens", proc.returncode == 1, proc.stderr[:200])


def chunked_over_limit(d):
    ctype, _ = multipart([])
    boundary = ctype.split("boundary=")[1]
    chunk = b"\0" * (1 << 20)

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"logits\"\r\n\r\n").encode()
        for _ in range(MAX_BODY_MB + 2):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        conn.request("POST", "/v1/evaluate", body=body(), encode_chunked=True,
                     headers={"Content-Type": ctype, "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        status, answer = resp.status, resp.read()
        why = problem_ok(status, headers, answer, 413)
        check("chunked body over --max-body-mb is 413, counted as it arrives", not why, why)
    except (OSError, http.client.HTTPException) as e:
        check("chunked body over --max-body-mb is 413, counted as it arrives", False, repr(e))
    finally:
        conn.close()


def slow_upload(d):
    ctype, body = multipart(small_request_parts())
    head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", d.port), timeout=30) as s:
        s.sendall(head + body[:50])
        time.sleep(UPLOAD_TIMEOUT_S + 0.5)  # steady but too slow: past the upload deadline
        s.sendall(body[50:])
        status, headers, answer = read_raw_response(s)
    why = problem_ok(status, headers, answer, 408)
    check("an upload slower than --upload-timeout is 408", not why, why)
    # A stalled upload (nothing more arrives) is closed after --idle-timeout.
    with socket.create_connection(("127.0.0.1", d.port), timeout=IDLE_TIMEOUT_S + 10) as s:
        s.sendall(head + body[:50])
        start = time.time()
        try:
            closed = s.recv(1024) == b""
        except OSError:
            closed = True
        took = time.time() - start
    check("a stalled upload is closed after --idle-timeout",
          closed and took < IDLE_TIMEOUT_S + 5, f"closed={closed} after {took:.1f}s")


def parallel_clients(d):
    case = os.path.join(GOLDEN, "voc_palette_weighted")
    with open(os.path.join(case, "expected.json")) as f:
        expected = json.load(f)
    parts = [("logits", read_file(os.path.join(case, "logits.npy")), "logits.npy")]
    masks = sorted(m for m in os.listdir(case) if m.startswith("mask_"))
    parts += [("mask", read_file(os.path.join(case, m)), m) for m in masks]
    parts.append(("params", read_file(os.path.join(case, "params.json")), None))
    ctype, body = multipart(parts)
    errors = []
    lock = threading.Lock()

    def client(i):
        for _ in range(REQUESTS_PER_CLIENT):
            try:
                status, _, answer = request(d, "POST", "/v1/evaluate", body=body,
                                            headers={"Content-Type": ctype}, timeout=60)
                if status != 200:
                    raise ValueError(f"status {status}: {answer[:200]!r}")
                got = json.loads(answer)["loss"]["ce"]
                want = expected["loss"]["ce"]
                if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
                    raise ValueError(f"ce {got} != {want}")
            except Exception as e:  # any failure of any client fails the check
                with lock:
                    errors.append(f"client {i}: {e}")
    probe_ms = []

    def prober():
        while any(t.is_alive() for t in threads):
            t0 = time.time()
            try:
                request(d, "GET", "/livez", timeout=10)
                probe_ms.append((time.time() - t0) * 1e3)
            except OSError as e:
                errors.append(f"probe: {e}")
            time.sleep(0.01)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(PARALLEL_CLIENTS)]
    for t in threads:
        t.start()
    p = threading.Thread(target=prober)
    p.start()
    for t in threads:
        t.join(timeout=120)
    p.join(timeout=30)
    check(f"{PARALLEL_CLIENTS} parallel clients x {REQUESTS_PER_CLIENT} requests all answered "
          "correctly", not errors, "; ".join(errors[:3]))
    check("probes stay responsive during parallel evaluations",
          probe_ms and max(probe_ms) < 2000, f"max {max(probe_ms or [0]):.0f} ms")


def png_zeros(width, height):
    """An all-zero 8-bit grey PNG: a few KiB that decode to width x height labels."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = bytes(height * (width + 1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def queue_full():
    """One worker, one queue slot, six uploads finishing at once: the surplus is 503 with
    Retry-After, at once, and the rest are answered. Each evaluation is made slow (tiny logits
    resized to a 4096x4096 mask) so the six arrive while the first is still being computed."""
    d = Daemon("queue", ["--workers", "1", "--queue-depth", "1"])
    if not check("queue daemon starts", d.wait_ready(), d.tail()):
        return
    ctype, body = multipart([("logits", read_file(os.path.join(FILES, "logits_1x3x4x4.npy")), "l"),
                             ("mask", png_zeros(4096, 4096), "m.png")])
    head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    socks = []
    for _ in range(6):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
        s.sendall(head + body[:-1])
        socks.append(s)
    time.sleep(0.3)
    for s in socks:
        s.sendall(body[-1:])
    answers = []
    for s in socks:
        try:
            answers.append(read_raw_response(s))
        except OSError as e:
            answers.append((repr(e), {}, b""))
        finally:
            s.close()
    statuses = sorted(a[0] for a in answers if isinstance(a[0], int))
    busy = [a for a in answers if a[0] == 503]
    check("a full evaluation queue answers 503 at once, the others 200",
          len(statuses) == 6 and 200 in statuses and busy and set(statuses) <= {200, 503},
          str([a[0] for a in answers]))
    why = problem_ok(*busy[0], 503) if busy else "no 503"
    check("503 from a full queue is problem+json with Retry-After",
          not why and busy[0][1].get("retry-after") == "1", why or str(busy[0][1]))
    d.proc.send_signal(signal.SIGTERM)
    try:
        d.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass


def sigterm_in_flight():
    d = Daemon("sigterm")
    if not check("second daemon starts", d.wait_ready(), d.tail()):
        return
    ctype, body = multipart(small_request_parts())
    head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    socks = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
        s.sendall(head + body[: len(body) // 2])  # in flight: half the body is in
        socks.append(s)
    keep = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    keep.request("GET", "/livez")
    keep.getresponse().read()
    time.sleep(0.2)
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    try:
        keep.request("GET", "/readyz")
        r = keep.getresponse()
        r.read()
        check("readyz is 503 while draining", r.status == 503, str(r.status))
    except (OSError, http.client.HTTPException) as e:
        check("readyz is 503 while draining", False, repr(e))
    finally:
        keep.close()
    try:
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    check("no new connections while draining", refused, "a connection was accepted")
    statuses = []
    for s in socks:
        try:
            s.sendall(body[len(body) // 2:])
            statuses.append(read_raw_response(s)[0])
        except OSError as e:
            statuses.append(repr(e))
        finally:
            s.close()
    check("in-flight requests complete after SIGTERM", statuses == [200, 200, 200], str(statuses))
    try:
        code = d.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        code = None
    check("SIGTERM: exit status 0 within the deadline", code == 0, f"{code} {d.tail()}")


def main():
    h.install_watchdog(WATCHDOG_S)
    if not check("seglossd is built", os.access(DAEMON, os.X_OK), DAEMON):
        finish()
    d = Daemon("main")
    if not check("daemon starts and answers /livez", d.wait_ready(), d.tail()):
        finish()
    try:
        golden(["--url", d.url], "http")
        golden(["--cli", DAEMON], "eval")
        bad_requests(d)
        refused_after_the_body(d)
        request_ids_and_query(d)
        operations(d)
        extensions_wired(d)
        eval_mode_errors()
        healthcheck(d)
        chunked_over_limit(d)
        slow_upload(d)
        parallel_clients(d)
        status, _, _ = request(d, "GET", "/livez")
        check("daemon still answers at the end", status == 200, str(status))
        d.proc.send_signal(signal.SIGTERM)
        try:
            code = d.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = None
        check("main daemon exits 0 on SIGTERM", code == 0, f"{code} {d.tail()}")
        sigterm_in_flight()
        queue_full()
    except Exception as e:  # an unexpected error is a failure, never a hang or a lost summary
        check("e2e run", False, f"{type(e).__name__}: {e}")
    finish()


if __name__ == "__main__":
    main()
