#!/usr/bin/python3
"""make bench rows for the Python client (clients/python) against a real seglossd.

1. How long a training loop is blocked per Client.log() of an 8x21x512x512 float32 batch
   (168 MiB): ROUNDS training steps of STEP_S seconds each (time.sleep, the GPU's share of a
   step) followed by one log(); every log() call is timed. Target: <= 1 ms.
2. A synchronous Client.evaluate() of the same batch against curl posting the same bytes (the
   body the client sends, written to a file once, streamed by curl -T): ROUNDS interleaved rounds, each timing one
   client call and one curl call, medians and ranges printed. Target: <= 1.2x.
3. A recorded Client.evaluate(run=, step=) (params, masks, logits: the client's part order)
   against the same post with its parts in the order the client used before (logits, masks,
   params; the same Idempotency-Key handling): ROUNDS interleaved rounds; the time of each
   post, the answer's compute_ms (the loss pass left after the last byte) and the batch items
   the daemon evaluated during the upload (segloss_batch_items_total).

  tests/bench/bench_client.py [--build build] [--rounds 7]
"""
import argparse
import json
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

        # 3. the client's part order against logits first, both recorded
        def during_upload():
            text = client.request("GET", "/metrics")[2].decode()
            line = next(x for x in text.splitlines()
                        if x.startswith('segloss_batch_items_total{evaluated="during_upload"}'))
            return int(float(line.split()[-1]))

        def logits_first(step):
            params = {"run": "bench-order-logits-first", "step": step}
            body = _wire.Body(_wire.encode_logits(logits), _wire.encode_labels(labels), params,
                              ("logits", "mask", "params"))
            headers = {"Content-Type": body.content_type,
                       "Idempotency-Key": f"bench-order-{step}"}
            return json.loads(client.request("POST", "/v1/evaluate", body.buffers, headers,
                                             body.length)[2])

        rows = {"params, masks, logits (the client's)": ([], [], []),
                "logits, masks, params (before)": ([], [], [])}
        for step in range(args.rounds):
            for name, (wall, compute, items) in rows.items():
                before = during_upload()
                t0 = time.perf_counter()
                if name.endswith("(the client's)"):
                    answer = client.evaluate(logits, labels, run="bench-order-client", step=step)
                else:
                    answer = logits_first(step)
                wall.append((time.perf_counter() - t0) * 1e3)
                compute.append(answer["timing"]["compute_ms"])
                items.append(during_upload() - before)
        ours, before = (w for w, _, _ in rows.values())
        ratios = [a / b for a, b in zip(ours, before)]  # each round's own
        for name, (wall, compute, items) in rows.items():
            print(f"| recorded Client.evaluate(run=, step=), parts {name}, {args.rounds} "
                  f"interleaved rounds | median {statistics.median(wall):.1f} ms, range "
                  f"{min(wall):.1f}-{max(wall):.1f} ms | compute_ms after the body: median "
                  f"{statistics.median(compute):.1f}, range {min(compute):.1f}-"
                  f"{max(compute):.1f} | items evaluated during the upload: "
                  f"{min(items)}-{max(items)} of {N} |")
        print(f"| the client's order over logits first, round by round | "
              f"{min(ratios):.2f}-{max(ratios):.2f}x (median {statistics.median(ratios):.2f}) "
              f"| | |")
        client.close()
    finally:
        daemon.kill()
        daemon.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
