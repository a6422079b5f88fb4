#!/usr/bin/env python3
"""Where a single-image request's time goes beyond the upload floor: the time from the client's
last byte to the answer's first byte, for seglossd and for the floor server, in interleaved
rounds.

Each post is one multipart body (the logits part, then the mask part, the order of
curl -F logits=@... -F mask=@...) written with one sendall on a fresh loopback connection:
  send        first byte to last byte handed to the kernel (the server draining the socket
              is what bounds it: a loopback socket holds a few MiB)
  after body  last byte sent to the answer's first byte: what the server does once the body is
              in, plus whatever of the body it had not yet read
  total       the two together
and, for seglossd, the answer's own `timing.decode_ms` and `timing.compute_ms` (the mask decoded
and the loss pass run after the body: a 1xCxHxW item's pass can only start once its last class
plane, the body's last logits bytes, is in).

A round is the median of POSTS posts to each server, alternating; the summary gives each
figure's range and median over the rounds. Both servers listen on 127.0.0.1 and are killed at
the end (and live at most ab_daemons.LIFETIME_S).

  tests/bench/after_body.py SEGLOSSD FLOOR_SERVER [ROUNDS [POSTS]]

FLOOR_SERVER is tests/bench/floor_server.c built (`make bench` leaves it at
build/tests/floor_server). The body is one 1x21x512x512 float32 item from a fixed seed and a
512x512 palette mask of 32x32 blocks with an ignored border, the shapes of bench_http.sh's
single-image row; ROUNDS defaults to 7 and POSTS to 5, e.g.
  /usr/bin/python3 tests/bench/after_body.py build/seglossd build/tests/floor_server 7 5
Needs numpy (Debian: python3-numpy).
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

import numpy as np

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "api", "examples")]
from ab_daemons import LIFETIME_S, free_port, spread, start, stop  # noqa: E402
from evaluate import multipart, npy_bytes, palette_png  # noqa: E402

RECV_TIMEOUT_S = 60


def single_image_body(seed=20261129, c=21, h=512, w=512, block=32, border=4):
    """(Content-Type, body): the logits part, then the mask part."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((1, c, h, w), dtype=np.float32)
    blocks = rng.integers(0, c, size=(h // block, w // block), dtype=np.uint8)
    label = np.kron(blocks, np.ones((block, block), dtype=np.uint8))
    label[:border, :] = label[-border:, :] = label[:, :border] = label[:, -border:] = 255
    octet = "application/octet-stream"
    return multipart([("logits", "logits.npy", octet, npy_bytes(logits)),
                      ("mask", "mask.png", "image/png", palette_png(label))])


def post(port, path, content_type, body):
    """One post: (send ms, after-body ms, status, answer bytes)."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT_S) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        s.sendall(head)
        s.sendall(body)
        t1 = time.perf_counter()
        got = s.recv(1 << 16)
        t2 = time.perf_counter()
        while True:  # the server closes after the answer (Connection: close)
            more = s.recv(1 << 16)
            if not more:
                break
            got += more
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else 0
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, status, got.partition(b"\r\n\r\n")[2]


def start_floor(binary):
    port = free_port()
    proc = subprocess.Popen([binary, str(port), "0", LIFETIME_S], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"after_body: {binary} did not start")


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__)
    seglossd, floor_bin = sys.argv[1:3]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    posts = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    content_type, body = single_image_body()
    tmp = tempfile.mkdtemp(prefix="segloss_after_body_")
    daemon = floor_proc = None
    try:
        daemon = start(seglossd, tmp)
        floor_proc, floor_port = start_floor(floor_bin)
        servers = {"seglossd": (urlsplit(daemon[2]).port, "/v1/evaluate"),
                   "floor": (floor_port, "/upload")}

        def one(name):
            port, path = servers[name]
            send, after, status, answer = post(port, path, content_type, body)
            if status != 200:
                sys.exit(f"after_body: {name} answered {status}: {answer[:300]!r}")
            timing = json.loads(answer)["timing"] if name == "seglossd" else {}
            return send, after, timing.get("decode_ms", 0.0) + timing.get("compute_ms", 0.0)

        for name in servers:  # warm-up: buffers, pages, the pools' threads
            one(name)
        per_round = {"seglossd": [], "floor": []}
        for r in range(rounds):
            got = {"seglossd": [], "floor": []}
            for _ in range(posts):
                for name in servers:
                    got[name].append(one(name))
            for name, v in got.items():
                per_round[name].append(tuple(statistics.median(x[i] for x in v)
                                             for i in range(3)))
            (ss, sa, se), (fs, fa, _) = per_round["seglossd"][-1], per_round["floor"][-1]
            print(f"round {r + 1}: send ms seglossd {ss:.2f} floor {fs:.2f}; after the body "
                  f"seglossd {sa:.2f} (evaluation {se:.2f}) floor {fa:.2f}; total "
                  f"{(ss + sa) / (fs + fa):.2f}x the floor's")
        seg, flo = per_round["seglossd"], per_round["floor"]
        print(f"{rounds} rounds of {posts} posts each, {len(body)}-byte body:")
        print(f"  send, ms: seglossd {spread([s for s, _, _ in seg], '{:.2f}')}, "
              f"floor {spread([s for s, _, _ in flo], '{:.2f}')}")
        print(f"  after the body, ms: seglossd {spread([a for _, a, _ in seg], '{:.2f}')}, "
              f"floor {spread([a for _, a, _ in flo], '{:.2f}')}")
        print(f"  of which the answer's decode + compute, ms: "
              f"{spread([e for _, _, e in seg], '{:.2f}')}")
        print(f"  total over the floor's, per round: "
              f"{spread([(s[0] + s[1]) / (f[0] + f[1]) for s, f in zip(seg, flo)], '{:.2f}')}x")
        print(f"  after-body evaluation over the floor's total, per round: "
              f"{spread([s[2] / (f[0] + f[1]) for s, f in zip(seg, flo)], '{:.2f}')}")
    finally:
        if daemon:
            stop(daemon[0], daemon[1])
        if floor_proc:
            floor_proc.kill()
            floor_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
