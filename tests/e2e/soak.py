#!/usr/bin/env python3
"""Soak test of seglossd (issue 7; `make soak`, not part of `make check`).

SOAK_CLIENTS clients (default 8) each send SOAK_REQUESTS requests (default 2000), a fixed-seed
mix of: good evaluations (some recorded under a run), reads (/v1/runs, a run, /v1/info,
/livez, /metrics), bad requests (malformed npy 400, wrong shapes 422, JPEG mask 415, unknown
route 404), oversized bodies (Content-Length over --max-body-mb: 413 before the body is read)
and aborted uploads (half a body, then the connection is reset: no answer expected). Every
answer must have the status its kind expects: no 5xx, nothing unexpected. The daemon's RSS is
sampled once the first quarter of the requests is done (the warm-up: buffer pool, SQLite page
cache and MHD's pools have reached their working size) and at the end; growth must stay under
10%. Prints p50/p99/max latency per kind and overall. Requests are small (a 1x3x4x4 batch), so
16,000 of them take a minute or two on 2 cores.

Ends with 'N passed, N failed'."""
import json
import os
import random
import socket
import threading
import time

import harness as h
from harness import check

CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
REQUESTS = int(os.environ.get("SOAK_REQUESTS", "2000"))
SEED = 7
MAX_BODY_MB = 1
RSS_TOLERANCE = 0.10
WARMUP_FRACTION = 0.25

KINDS = [  # kind, weight, expected statuses
    ("good", 30, {200}),
    ("good_run", 10, {200}),
    ("read", 20, {200}),
    ("bad_npy", 8, {400}),
    ("bad_shape", 8, {422}),
    ("bad_type", 6, {415}),
    ("not_found", 4, {404}),
    ("oversized", 7, {413}),
    ("aborted", 7, {None}),
]


def file(name):
    return h.read_file(os.path.join(h.FILES, name))


LOGITS = file("logits_1x3x4x4.npy")
LOGITS2 = file("logits_2x3x4x4.npy")
MASK = file("mask_4x4.png")
MASK_JPG = file("mask.jpg")
BAD_NPY = file("npy_truncated_header.npy")


def body_for(kind, client, i):
    if kind == "good":
        return h.multipart([("logits", LOGITS, "l.npy"), ("mask", MASK, "m.png")])
    if kind == "good_run":
        params = json.dumps({"run": f"soak-{client}", "step": i // 10}).encode()
        return h.multipart([("logits", LOGITS, "l.npy"), ("mask", MASK, "m.png"),
                            ("params", params, None)])
    if kind == "bad_npy":
        return h.multipart([("logits", BAD_NPY, "l.npy"), ("mask", MASK, "m.png")])
    if kind == "bad_shape":  # N=2 logits, one mask
        return h.multipart([("logits", LOGITS2, "l.npy"), ("mask", MASK, "m.png")])
    if kind == "bad_type":
        return h.multipart([("logits", LOGITS, "l.npy"), ("mask", MASK_JPG, "m.jpg")])
    return None, None


def raw(d, data, expect_answer=True, timeout=30):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        s.sendall(data)
        if not expect_answer:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            return None
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        parts = answer.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    finally:
        s.close()


def one(d, kind, client, i, rng):
    if kind == "read":
        path = rng.choice(["/v1/runs", f"/v1/runs/soak-{client}", "/v1/info", "/livez",
                           "/metrics"])
        status = h.request(d, "GET", path)[0]
        # a client's run does not exist until its first recorded result
        return 200 if path.startswith("/v1/runs/") and status == 404 else status
    if kind == "not_found":
        return h.request(d, "GET", f"/v1/nothing/{i}")[0]
    if kind == "oversized":
        head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                f"boundary=b\r\nContent-Length: {(MAX_BODY_MB << 20) + 1 + i}\r\n"
                f"Connection: close\r\n\r\n").encode()
        return raw(d, head)
    if kind == "aborted":
        ctype, body = h.multipart([("logits", LOGITS, "l.npy"), ("mask", MASK, "m.png")])
        head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return raw(d, head + body[:len(body) // 2], expect_answer=False)
    ctype, body = body_for(kind, client, i)
    return h.request(d, "POST", "/v1/evaluate", body=body, headers={"Content-Type": ctype})[0]


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    h.install_watchdog(900)
    d = h.Daemon("soak", ["--max-body-mb", str(MAX_BODY_MB), "--threads", "2", "--workers", "2",
                          "--idle-timeout", "10", "--upload-timeout", "30"])
    if not check("daemon starts", d.wait_ready(), d.tail()):
        h.finish()
    weights = [w for _, w, _ in KINDS]
    expected = {k: e for k, _, e in KINDS}
    lock = threading.Lock()
    latencies = {k: [] for k, _, _ in KINDS}
    unexpected = []
    done = [0]
    total = CLIENTS * REQUESTS
    rss = {}

    def client(c):
        rng = random.Random(SEED * 1000 + c)
        for i in range(REQUESTS):
            kind = rng.choices([k for k, _, _ in KINDS], weights)[0]
            t0 = time.perf_counter()
            try:
                status = one(d, kind, c, i, rng)
            except (OSError, ValueError) as e:
                status = f"{type(e).__name__}: {e}"
            dt = time.perf_counter() - t0
            with lock:
                latencies[kind].append(dt)
                if status not in expected[kind]:
                    unexpected.append((kind, status))
                done[0] += 1
                if "warm" not in rss and done[0] >= total * WARMUP_FRACTION:
                    rss["warm"] = d.rss_kib()

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    time.sleep(1.0)
    rss["end"] = d.rss_kib()
    h.note(f"{total} requests from {CLIENTS} clients in {elapsed:.1f} s "
           f"({total / elapsed:.0f} req/s)")
    every = []
    for kind, _, _ in KINDS:
        lat = latencies[kind]
        every += lat
        h.note(f"{kind:10s} n={len(lat):5d}  p50 {percentile(lat, 50) * 1e3:7.2f} ms  "
               f"p99 {percentile(lat, 99) * 1e3:7.2f} ms  max {max(lat or [0]) * 1e3:7.2f} ms")
    h.note(f"{'all':10s} n={len(every):5d}  p50 {percentile(every, 50) * 1e3:7.2f} ms  "
           f"p99 {percentile(every, 99) * 1e3:7.2f} ms")
    five = [u for u in unexpected if isinstance(u[1], int) and u[1] >= 500]
    check("no 5xx answer", not five, str(five[:10]))
    check("no unexpected status (each kind answered as expected)", not unexpected,
          f"{len(unexpected)}: {unexpected[:10]}")
    check("every request was sent", done[0] == total, f"{done[0]} of {total}")
    growth = (rss["end"] - rss["warm"]) / rss["warm"]
    h.note(f"RSS after warm-up {rss['warm'] / 1024:.1f} MiB, at the end "
           f"{rss['end'] / 1024:.1f} MiB ({growth:+.1%})")
    check("RSS growth after warm-up under 10%", growth < RSS_TOLERANCE, f"{growth:+.1%}")
    status, _, body = h.request(d, "GET", "/metrics")
    check("/metrics still answers", status == 200, str(status))
    stored = h.request(d, "GET", "/v1/runs/soak-0")
    check("a soak run is stored", stored[0] == 200, str(stored[0]))
    rc = d.stop()
    check("SIGTERM after the soak: exit 0", rc == 0, f"{rc} {d.tail()}")
    log = d.log_text()
    check("no error-level log line other than request lines",
          not [l for l in log.splitlines() if '"level":"error"' in l and '"msg":"request"'
               not in l], "")
    h.finish()


if __name__ == "__main__":
    main()
