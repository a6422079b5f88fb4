"""Shared pieces of the reliability and security e2e tests (test_auth_tls.py, test_hostile.py,
test_storage_faults.py, soak.py): a seglossd on a free 127.0.0.1 port that dies with the test,
HTTP helpers (plain or TLS, with or without a token), multipart bodies, RSS, the check counter
and the 'N passed, N failed' ending. Standard library only. Not a test itself (no test_ prefix).
"""
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
DAEMON = os.path.join(ROOT, BUILD, "seglossd")
FILES = os.path.join(HERE, "bad_requests", "files")
# check-tsan sets SEGLOSS_SANITIZER=thread; check-asan builds into build-asan.
SANITIZER = os.environ.get("SEGLOSS_SANITIZER", "") or \
    ("address" if "asan" in BUILD else "thread" if "tsan" in BUILD else "")
START_TIMEOUT_S = 30 if SANITIZER else 15

state = {"passed": 0, "failed": 0, "daemons": [], "cleanup": []}
tmpdir = tempfile.mkdtemp(prefix="segloss_rel_")


def check(name, ok, why=""):
    if ok:
        state["passed"] += 1
        print(f"ok   {name}")
    else:
        state["failed"] += 1
        print(f"FAIL {name}: {why}")
    sys.stdout.flush()
    return ok


def note(text):
    print(f"     {text}")
    sys.stdout.flush()


# What a sanitizer build prints when it finds something in a daemon: ThreadSanitizer goes on
# after a race (its exit code is lost when the test kills the daemon), so the logs are read.
SANITIZER_REPORTS = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                     "ERROR: LeakSanitizer", "runtime error:")


def finish():
    for d in state["daemons"]:
        try:
            text = d.log_text()
        except OSError:
            continue
        found = [r for r in SANITIZER_REPORTS if r in text]
        if found:
            at = text.index(found[0])
            check(f"daemon {d.name}: no sanitizer report in its log", False,
                  text[at:at + 1500])
    for d in state["daemons"]:
        d.kill()
    for fn in reversed(state["cleanup"]):
        try:
            fn()
        except Exception as e:  # cleanup must not hide the summary
            print(f"     cleanup: {e}")
    if state["failed"] == 0:
        shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        print(f"daemon logs kept in {tmpdir}")
    print(f"{state['passed']} passed, {state['failed']} failed")
    sys.stdout.flush()
    os._exit(0 if state["failed"] == 0 else 1)


def install_watchdog(seconds):
    def fire(signum, frame):
        check("watchdog", False, f"the run took longer than {seconds} s")
        finish()
    signal.signal(signal.SIGALRM, fire)
    signal.signal(signal.SIGTERM, lambda s, f: (check("terminated", False, "SIGTERM"), finish()))
    signal.alarm(seconds)


def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, name, extra=(), data_dir=None, tls_ca=None):
        self.name = name
        self.port = free_port()
        self.log_path = os.path.join(tmpdir, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.tls_ca = tls_ca
        self.data_dir = data_dir or os.path.join(tmpdir, f"{name}-data")
        args = [DAEMON, "serve", "--port", str(self.port), "--bind", "127.0.0.1",
                "--data-dir", self.data_dir, "--shutdown-timeout", "5", *extra]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     preexec_fn=die_with_parent)
        state["daemons"].append(self)

    @property
    def url(self):
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    def connection(self, timeout=30):
        if self.tls_ca:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def wait_ready(self):
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if request(self, "GET", "/livez", timeout=2)[0] == 200:
                    return True
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
        return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        """SIGTERM and wait; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(timeout=10)
        return self.proc.returncode

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def tail(self, lines=5):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


# Every answer request() gets is appended to this file when it is set (tests/run_all.sh sets
# it): one JSON line per answer, which tests/e2e/contract_check.sh then validates against
# api/openapi.yaml. A test that sends something on purpose outside the HTTP contract (a
# malformed request line, a dropped connection) uses its own socket, not request().
RESPONSE_LOG = os.environ.get("SEGLOSS_RESPONSE_LOG", "")
RECORDED_HEADERS = ("allow", "etag", "retry-after", "x-request-id", "www-authenticate",
                    "inference-header-content-length", "x-next-page-token")


def record_answer(method, path, status, headers, body):
    """Appends one answer to SEGLOSS_RESPONSE_LOG (no-op when unset). JSON bodies are kept
    whole (up to 1 MiB), others by length only."""
    if not RESPONSE_LOG:
        return
    ctype = headers.get("content-type", "")
    text = None
    if "json" in ctype.split(";")[0] and len(body) <= 1 << 20:
        text = body.decode("utf-8", errors="replace")
    line = {"test": os.path.basename(sys.argv[0]), "method": method, "path": path,
            "status": status, "content_type": ctype, "body_len": len(body), "body": text,
            "headers": {k: headers[k] for k in RECORDED_HEADERS if k in headers}}
    with open(RESPONSE_LOG, "a") as f:  # one write per line: safe across processes
        f.write(json.dumps(line) + "\n")


def request(d, method, path, body=None, headers=None, timeout=30, chunked=False):
    """(status, headers with lower-case names, body); chunked: body is an iterable of pieces
    sent with Transfer-Encoding: chunked. The answer is recorded (record_answer)."""
    conn = d.connection(timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        hdrs = dict((k.lower(), v) for k, v in resp.getheaders())
        data = resp.read()
        record_answer(method, path, resp.status, hdrs, data)
        return resp.status, hdrs, data
    finally:
        conn.close()


def bearer(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def multipart(parts):
    boundary = "segloss" + uuid.uuid4().hex
    out = bytearray()
    for name, data, filename in parts:
        out += f"--{boundary}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename:
            disp += f'; filename="{filename}"'
        out += disp.encode() + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(out)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def small_parts(params=None):
    """A valid 1x3x4x4 request (a few hundred bytes)."""
    parts = [("logits", read_file(os.path.join(FILES, "logits_1x3x4x4.npy")), "l.npy"),
             ("mask", read_file(os.path.join(FILES, "mask_4x4.png")), "m.png")]
    if params is not None:
        parts.append(("params", json.dumps(params).encode(), None))
    return parts


def post_small(d, params=None, headers=None, timeout=30):
    ctype, body = multipart(small_parts(params))
    h = {"Content-Type": ctype}
    h.update(headers or {})
    return request(d, "POST", "/v1/evaluate", body=body, headers=h, timeout=timeout)


PROBLEM_KEYS = ("type", "title", "status", "detail", "error")


def problem_ok(status, headers, body, want, strict=False):
    """Why a response is not the expected problem+json, or '' when it is. strict: also every
    RFC 9457 member plus `error`, error == detail, and an X-Request-Id header."""
    if status != want:
        return f"status {status}, wanted {want}: {body[:300]!r}"
    if not headers.get("content-type", "").startswith("application/problem+json"):
        return f"content type {headers.get('content-type')!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    if not strict:
        return "" if doc.get("status") == want and doc.get("detail") else f"bad problem {doc}"
    missing = [k for k in PROBLEM_KEYS if k not in doc]
    if missing:
        return f"problem keys missing: {missing}"
    if doc["status"] != want or doc["error"] != doc["detail"] or not doc["detail"]:
        return f"inconsistent problem: {doc}"
    if not headers.get("x-request-id"):
        return "no X-Request-Id"
    return ""
