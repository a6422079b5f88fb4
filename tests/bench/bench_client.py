#!/usr/bin/python3
"""make bench rows for the Python client (clients/python) against a real seglossd.

1. How long a training loop is blocked per Client.log() of an 8x21x512x512 float32 batch
   (168 MiB): ROUNDS training steps of STEP_S seconds each (time.sleep, the GPU's share of a
   step) followed by one log(); every log() call is timed. Target: <= 1 ms.
2. A synchronous Client.evaluate() of the same batch against curl posting the same bytes (the
   body the client sends, written to a file once, streamed by curl -T): ROUNDS interleaved rounds, each timing one
   client call and one curl call, medians and ranges printed. Target: <= 1.2x.

  tests/bench/bench_client.py [--build build] [--rounds 7]
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import numpy as np  # noqa: E402

import segloss  # noqa: E402
from segloss import _wire  # noqa: E402

N, C, H, W = 8, 21, 512, 512
# A training step of this batch size takes about a second on one GPU; the senders must keep up
# with the loop for log() never to wait (a recorded 168 MiB post takes 0.3-0.8 s here).
STEP_S = 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="segloss_bench_client_")
    port = free_port()
    log = open(os.path.join(tmp, "daemon.log"), "wb")
    daemon = subprocess.Popen([os.path.join(ROOT, args.build, "seglossd"), "serve", "--port",
                               str(port), "--bind", "127.0.0.1", "--data-dir",
                               os.path.join(tmp, "data")], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        client = segloss.Client(url, queue_size=4, senders=2)
        for _ in range(100):
            try:
                client.get_json("/livez")
                break
            except segloss.SeglossError:
                time.sleep(0.1)
        rng = np.random.default_rng(0)
        logits = rng.standard_normal((N, C, H, W), dtype=np.float32)
        labels = rng.integers(0, C, (N, H, W)).astype(np.uint8)
        mib = logits.nbytes / 2**20

        # 1. log() in a training loop
        client.evaluate(logits, labels)  # warm-up: connection, daemon buffers
        blocked = []
        for step in range(10):
            time.sleep(STEP_S)
            t0 = time.perf_counter()
            client.log(logits, labels, run="bench-log", step=step)
            blocked.append((time.perf_counter() - t0) * 1e3)
        client.flush()
        med = statistics.median(blocked)
        print(f"| Client.log() of {N}x{C}x{H}x{W} float32 ({mib:.0f} MiB) in a loop of "
              f"{STEP_S * 1e3:.0f} ms steps, {len(blocked)} calls | median {med:.3f} ms, "
              f"range {min(blocked):.3f}-{max(blocked):.3f} ms | target <= 1 ms: "
              f"{'met' if med <= 1 else 'not met'} | sent {client.sent}, dropped {client.dropped} |")

        # 2. evaluate() against curl with the same bytes
        body = _wire.Body(_wire.encode_logits(logits), _wire.encode_labels(labels), {})
        path = os.path.join(tmp, "body.bin")
        with open(path, "wb") as f:
            for b in body.buffers:
                f.write(b)
        # -T streams the file (--data-binary @file first reads it into memory, 5-10x slower)
        curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
                f"Content-Type: {body.content_type}", "-H", "Expect:", "-T", path,
                url + "/v1/evaluate"]
        subprocess.run(curl, capture_output=True, check=True)  # warm-up
        ours, theirs = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            client.evaluate(logits, labels)
            ours.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            out = subprocess.run(curl, capture_output=True, text=True)
            theirs.append((time.perf_counter() - t0) * 1e3)
            if out.stdout != "200":
                raise SystemExit(f"curl got {out.stdout}")
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(f"| Client.evaluate() of the same batch ({body.length / 2**20:.0f} MiB body), "
              f"{args.rounds} interleaved rounds | median {mo:.1f} ms, range "
              f"{min(ours):.1f}-{max(ours):.1f} ms | curl -T of the same bytes: "
              f"median {mt:.1f} ms, range {min(theirs):.1f}-{max(theirs):.1f} ms | "
              f"{mo / mt:.2f}x; target <= 1.2x: {'met' if mo / mt <= 1.2 else 'not met'} |")
        client.close()
    finally:
        daemon.kill()
        daemon.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
