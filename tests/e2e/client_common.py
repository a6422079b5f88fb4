"""What the tests of the Python client share (not a test itself): running under Debian's
python3 (which has numpy and torch), importing the package from the source tree, the golden
cases as arrays (a small PNG decoder, the safetensors logits), a fake HTTP server for the retry
and queue tests, and exact comparison of aggregates.
"""
import json
import os
import struct
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENT_DIR = os.path.join(ROOT, "clients", "python")
GOLDEN_DIRS = [os.path.join(ROOT, "tests", "golden"), os.path.join(ROOT, "tests", "golden_extra")]
DEBIAN_PY = "/usr/bin/python3"


def use_debian_python():
    """numpy and torch come from Debian's packages: re-run under /usr/bin/python3 when the
    python3 on PATH (a pyenv, say) lacks numpy."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        if os.path.exists(DEBIAN_PY) and os.path.realpath(sys.executable) != \
                os.path.realpath(DEBIAN_PY):
            os.execv(DEBIAN_PY, [DEBIAN_PY] + sys.argv)
        raise


def import_client():
    if CLIENT_DIR not in sys.path:
        sys.path.insert(0, CLIENT_DIR)
    import segloss
    return segloss


def png_labels(path):
    """Class indices of an 8-bit grey, 16-bit grey or palette PNG (non-interlaced), (H, W)."""
    import numpy as np
    data = open(path, "rb").read()
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    if interlace or ctype not in (0, 3) or depth not in (8, 16):
        raise ValueError(f"{path}: unsupported PNG for this decoder")
    bpp = depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return np.frombuffer(bytes(out), ">u2" if depth == 16 else "u1").reshape(h, w).astype(
        np.uint16 if depth == 16 else np.uint8)


def safetensors_logits(path):
    """(array, bf16): the "logits" tensor; bfloat16 comes back as exact float32 and True."""
    import numpy as np
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    head = json.loads(data[8:8 + n])
    t = head["logits"]
    begin, end = t["data_offsets"]
    raw = data[8 + n + begin:8 + n + end]
    if t["dtype"] == "BF16":
        bits = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(t["shape"]), True
    dt = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}[t["dtype"]]
    return np.frombuffer(raw, dt).reshape(t["shape"]).copy(), False


class Case:
    def __init__(self, folder):
        import numpy as np
        self.name = os.path.basename(folder)
        self.folder = folder
        files = sorted(os.listdir(folder))
        self.logits_path = os.path.join(folder, next(f for f in files if f.startswith("logits.")))

        def mask_index(name):
            stem = name.split(".")[0]
            return int(stem.split("_")[1]) if "_" in stem else 0
        self.mask_paths = [os.path.join(folder, f) for f in
                           sorted((f for f in files if f.startswith("mask")), key=mask_index)]
        with open(os.path.join(folder, "params.json")) as f:
            self.params = json.load(f)
        with open(os.path.join(folder, "expected.json")) as f:
            self.expected = json.load(f)
        if "confusion_matrix" in self.expected:
            self.params["confusion_matrix"] = True
        if self.logits_path.endswith(".npy"):
            self.logits, self.bf16 = np.load(self.logits_path), False
        else:
            self.logits, self.bf16 = safetensors_logits(self.logits_path)
        if self.mask_paths[0].endswith(".npy"):
            self.labels = np.load(self.mask_paths[0])
        else:
            maps = [png_labels(p) for p in self.mask_paths]
            self.labels = np.stack(maps) if self.logits.ndim == 4 else maps[0]

    def torch_logits(self):
        """The logits as a torch tensor in the case's own dtype (bfloat16 included)."""
        import torch
        t = torch.from_numpy(self.logits.copy())
        return t.to(torch.bfloat16) if self.bf16 else t


def cases():
    out = []
    for d in GOLDEN_DIRS:
        for name in sorted(os.listdir(d)):
            if os.path.isdir(os.path.join(d, name)):
                out.append(Case(os.path.join(d, name)))
    return out


# One rank of a data-parallel validation (torch.distributed's RANK and WORLD_SIZE): the 40
# images of a set made from seed 7 (6 classes, 20x20), this rank's pairs of them logged under
# run "dp", step 3. The tests compare the run's aggregate with one post of all 40.
SHARD_SCRIPT = r"""
import os, sys, numpy as np
sys.path.insert(0, os.environ["CLIENT_DIR"])
import segloss
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
rng = np.random.default_rng(7)
c = 6
logits = rng.standard_normal((40, c, 20, 20)).astype(np.float32)
labels = rng.integers(0, c, (40, 20, 20)).astype(np.int64)
with segloss.Client(os.environ["SEGLOSS_URL"]) as client:
    for i in range(rank * 2, 40, world * 2):
        client.log(logits[i:i + 2], labels[i:i + 2], run="dp", step=3, split="val")
    client.flush()
    sys.exit(0 if client.sent > 0 and client.failed == 0 else 1)
"""


def shard_set():
    import numpy as np
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((40, 6, 20, 20)).astype(np.float32)
    labels = rng.integers(0, 6, (40, 20, 20)).astype(np.int64)
    return logits, labels


def golden_errors(got, expected):
    sys.path.insert(0, HERE)
    import golden_check
    errors = []
    golden_check.compare(got, expected, "$", errors)
    return errors


# keys of an answer that are about the request, not the numbers
VOLATILE = ("id", "timing", "params", "timestamp", "latest_evaluations", "evaluations",
            "step", "split", "run", "batches", "shape")


def numbers(doc):
    """The numbers of an answer or aggregate (losses, metrics, per class, pixels, matrix)."""
    return {k: v for k, v in doc.items() if k not in VOLATILE}


class FakeDaemon:
    """A scripted HTTP server on 127.0.0.1: answers POSTs from a list of (status, headers,
    body, delay) in turn (the last one repeats); records each request's headers and length."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with fake.lock:
                    fake.requests.append((dict(self.headers), len(body)))
                    i = min(len(fake.requests), len(fake.script)) - 1
                    status, headers, payload, delay = fake.script[i]
                if delay:
                    import time
                    time.sleep(delay)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


OK_ANSWER = json.dumps({"id": "f" * 32, "loss": {"total": 1.0}, "metrics": {"miou": 0.5}}).encode()


def problem(status, detail):
    return json.dumps({"type": "about:blank", "title": "Title", "status": status,
                       "detail": detail, "error": detail, "request_id": "rid-1"}).encode()


class LossyProxy:
    """A TCP proxy on 127.0.0.1 in front of upstream_port that loses answers: every
    `every`-th time the daemon's answer begins (a small answer comes in one read) it closes
    both sides instead of passing it on, so the request is done (and recorded) but the client
    never hears of it, the case a retry must not count twice. The rest passes untouched."""

    def __init__(self, upstream_port, every=4):
        import socket
        self.upstream_port = upstream_port
        self.every = every
        self.connections = 0
        self.answers = 0
        self.lost = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, up, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, client, True), daemon=True).start()

    def _pipe(self, src, dst, answers):
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                if answers:
                    with self.lock:
                        self.answers += 1
                        lose = self.answers % self.every == 0
                        self.lost += lose
                    if lose:
                        break
                dst.sendall(data)
        except OSError:
            pass
        import socket
        for s in (src, dst):  # shutdown wakes the other pipe's recv; close alone would not
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.sock.close()
