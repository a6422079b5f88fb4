#!/usr/bin/env python3
"""The memory budget for request bodies in flight (--max-inflight-mb), against a real seglossd.

A daemon with a 64 MiB budget (and no buffer cache, so its RSS is the bodies it holds) gets
waves of 12 clients that each declare a 16 MiB evaluation with `Expect: 100-continue`, all at
once, over raw sockets. Each wave:

- exactly 3 are admitted (100 Continue: 3 x 16 MiB fit in 64 MiB, a fourth does not) and the
  other 9 get 503 with Retry-After before sending any of their bodies, and are disconnected;
- /metrics shows the 3 reservations (segloss_inflight_body_bytes) while they are held;
- a client that declares a body and just waits (no Expect) gets its 503 at once too;
- the admitted 3 send their bodies and get 200; then the gauge is back to 0.

Then: an admitted client that disconnects mid-body gives its share back; a chunked body is
counted as it grows (503 when the budget is full, 413 once it alone is larger than the
budget), and a chunked body that fits is served; a declared body larger than the whole budget
is 413 at once (/v1 and /v2). Throughout, the daemon's peak RSS (VmHWM) stays under its
baseline + the budget + a fixed margin for the evaluations' own memory, where 12 bodies at once
would be 192 MiB.

Ends with 'N passed, N failed'."""
import json
import re
import socket
import struct
import threading
import time
import zlib

import harness as h
from harness import check

BUDGET_MB = 64
CLIENTS = 12
H_, W_ = 1024, 2048           # 2 classes of float32 logits: 16 MiB per body
ADMITTED = 3                  # floor(64 MiB / (16 MiB + the multipart framing))
# Beyond the bodies: 2 workers' decoded labels, argmax and statistics for 2 Mpixel batches,
# MHD's per-connection buffers and the allocator's slack.
MARGIN_MB = 64


def npy_f32_zeros(shape):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % \
        "".join(f"{n}, " for n in shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode()
    count = 1
    for n in shape:
        count *= n
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(4 * count)


def png_zeros(width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = bytes(height * (width + 1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


CTYPE, BODY = h.multipart([("logits", npy_f32_zeros((1, 2, H_, W_)), "l.npy"),
                           ("mask", png_zeros(W_, H_), "m.png")])


def head(length, expect=True, chunked=False, path="/v1/evaluate", ctype=CTYPE):
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n{framing}\r\n"
            + ("Expect: 100-continue\r\n" if expect else "") + "\r\n").encode()


def read_head(sock, timeout=15):
    """The status and the raw head of the next response on sock (0 on timeout or close)."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    m = re.match(rb"HTTP/1\.1 (\d{3})", buf)
    return (int(m.group(1)) if m else 0), buf


def read_rest(sock, timeout=30):
    """Reads until the server closes; True when it did."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def read_answer(sock, timeout=60):
    """The final status and body of a response (after a 100 Continue)."""
    status, buf = read_head(sock, timeout)
    while status == 100:
        rest = buf.split(b"\r\n\r\n", 1)[1]
        if not re.match(rb"HTTP/1\.1 \d{3}", rest) or b"\r\n\r\n" not in rest:
            more = sock.recv(65536)
            buf = rest + more
        else:
            buf = rest
        m = re.match(rb"HTTP/1\.1 (\d{3})", buf)
        status = int(m.group(1)) if m else 0
    headers, _, body = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length: (\d+)", headers)
    want = int(m.group(1)) if m else 0
    sock.settimeout(timeout)
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def gauge(d):
    status, _, body = h.request(d, "GET", "/metrics")
    m = re.search(rb"^segloss_inflight_body_bytes (\d+)$", body, re.M)
    return int(m.group(1)) if status == 200 and m else -1


def wait_gauge(d, want, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if gauge(d) == want:
            return True
        time.sleep(0.05)
    return False


def vm(d, key):
    with open(f"/proc/{d.proc.pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    return 0


def wave(d, n):
    socks = [socket.create_connection(("127.0.0.1", d.port), timeout=30) for _ in range(CLIENTS)]
    for s in socks:
        s.sendall(head(len(BODY)))
    answers = [read_head(s) for s in socks]
    admitted = [s for s, (st, _) in zip(socks, answers) if st == 100]
    refused = [(s, raw) for s, (st, raw) in zip(socks, answers) if st == 503]
    check(f"wave {n}: {ADMITTED} of {CLIENTS} admitted (100 Continue)",
          len(admitted) == ADMITTED, f"statuses {[st for st, _ in answers]}")
    check(f"wave {n}: the other {CLIENTS - ADMITTED} get 503 before sending their bodies",
          len(refused) == CLIENTS - ADMITTED, f"statuses {[st for st, _ in answers]}")
    check(f"wave {n}: the 503s carry Retry-After",
          all(re.search(rb"(?i)\r\nretry-after: \d+", raw) for _, raw in refused), "")
    check(f"wave {n}: refused clients are disconnected",
          all(read_rest(s, 10) for s, _ in refused), "a refused connection stayed open")
    check(f"wave {n}: /metrics shows the admitted bodies held",
          gauge(d) == ADMITTED * len(BODY), f"{gauge(d)} != {ADMITTED * len(BODY)}")
    # A client that declares a body and waits for an answer gets the 503 at once, too.
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    s.sendall(head(len(BODY), expect=False))
    st, _ = read_head(s, 10)
    s.close()
    check(f"wave {n}: without Expect, 503 before the body is sent",
          st == 503 and time.time() - t0 < 5, f"{st} after {time.time() - t0:.1f} s")
    results = []

    def send(sock):
        try:
            sock.sendall(BODY)
            results.append(read_answer(sock))
        except OSError as e:
            results.append((0, str(e).encode()))
        finally:
            sock.close()
    threads = [threading.Thread(target=send, args=(s,)) for s in admitted]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(f"wave {n}: admitted clients get 200",
          len(results) == ADMITTED and all(st == 200 for st, _ in results),
          f"{[(st, b[:120]) for st, b in results]}")
    check(f"wave {n}: budget released after the answers", wait_gauge(d, 0), str(gauge(d)))
    for s in socks:
        s.close()


def aborts(d):
    socks = [socket.create_connection(("127.0.0.1", d.port), timeout=30) for _ in range(ADMITTED)]
    for s in socks:
        s.sendall(head(len(BODY)))
    ok = all(read_head(s)[0] == 100 for s in socks)
    for s in socks:
        s.sendall(BODY[: len(BODY) // 2])
    time.sleep(0.3)
    for s in socks:
        s.close()
    check("aborted uploads were admitted", ok, "")
    check("aborted uploads give their budget back", wait_gauge(d, 0), str(gauge(d)))


def chunked(d):
    def pieces(data, size=1 << 20):
        out = bytearray()
        for i in range(0, len(data), size):
            part = data[i:i + size]
            out += b"%x\r\n" % len(part) + part + b"\r\n"
        return bytes(out + b"0\r\n\r\n")

    # a chunked body that fits is served and released
    s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
    s.sendall(head(0, expect=False, chunked=True) + pieces(BODY))
    st, body = read_answer(s)
    s.close()
    check("chunked 16 MiB body within the budget: 200", st == 200, f"{st} {body[:200]!r}")
    check("... and its budget is released", wait_gauge(d, 0), str(gauge(d)))
    # the budget full (3 admitted, held): a chunked body is refused as it grows
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=30) for _ in range(ADMITTED)]
    for s in held:
        s.sendall(head(len(BODY)))
    check("budget filled by 3 declared bodies", all(read_head(s)[0] == 100 for s in held), "")
    s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
    s.sendall(head(0, expect=False, chunked=True) + pieces(BODY))
    st, body = read_answer(s)
    s.close()
    check("chunked body while the budget is full: 503", st == 503, f"{st} {body[:200]!r}")
    check("... the gauge never went past the budget",
          0 <= gauge(d) <= BUDGET_MB << 20, str(gauge(d)))
    for s in held:
        s.close()
    check("held bodies released", wait_gauge(d, 0), str(gauge(d)))
    # alone but larger than the whole budget: 413
    big = BODY + bytes((BUDGET_MB << 20) + (1 << 20) - len(BODY))
    s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
    s.sendall(head(0, expect=False, chunked=True))
    try:
        s.sendall(pieces(big))
    except OSError:
        pass
    st, body = read_answer(s)
    s.close()
    check("chunked body larger than the budget: 413", st == 413 and b"max-inflight" in body,
          f"{st} {body[:200]!r}")
    check("... released", wait_gauge(d, 0), str(gauge(d)))


def too_large(d):
    for path, ctype in (("/v1/evaluate", CTYPE),
                        ("/v2/models/segloss/infer", "application/json")):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        t0 = time.time()
        s.sendall(head((BUDGET_MB << 20) + 1, expect=False, path=path, ctype=ctype))
        st, body = read_answer(s, 10)
        s.close()
        check(f"{path}: a declared body larger than the budget is 413 at once",
              st == 413 and b"max-inflight-mb" in body and time.time() - t0 < 5,
              f"{st} {body[:200]!r}")


def main():
    h.install_watchdog(600)
    d = h.Daemon("budget", ["--max-inflight-mb", str(BUDGET_MB), "--buffer-cache-mb", "0",
                            "--max-body-mb", "256", "--workers", "2"])
    if not check("daemon starts", d.wait_ready(), d.tail()):
        h.finish()
    status, _, info = h.request(d, "GET", "/metrics")
    check("/metrics shows the configured budget",
          f"segloss_inflight_body_budget_bytes {BUDGET_MB << 20}".encode() in info, "")
    # warm up: one evaluation of the size used below, then the baseline
    status, _, body = h.request(d, "POST", "/v1/evaluate", body=BODY,
                                headers={"Content-Type": CTYPE}, timeout=120)
    check("warm-up evaluation: 200", status == 200, f"{status} {body[:200]!r}")
    base = vm(d, "VmRSS")
    h.note(f"body {len(BODY)} bytes; baseline RSS {base} MiB")
    for n in range(3):
        wave(d, n + 1)
    aborts(d)
    chunked(d)
    too_large(d)
    peak = vm(d, "VmHWM")
    h.note(f"peak RSS {peak} MiB = baseline {base} + {peak - base} MiB "
           f"(budget {BUDGET_MB}, margin {MARGIN_MB}; {CLIENTS} bodies at once would be "
           f"{CLIENTS * len(BODY) >> 20} MiB)")
    if h.SANITIZER == "thread":
        # ThreadSanitizer keeps shadow and history memory per allocation (several times the
        # bytes): RSS says nothing about the budget there; the 503s above still hold.
        h.note("peak RSS bound not checked under the thread sanitizer build")
    else:
        check(f"peak RSS under baseline + budget + {MARGIN_MB} MiB",
              peak <= base + BUDGET_MB + MARGIN_MB, f"peak {peak} MiB, baseline {base} MiB")
    status, _, _ = h.request(d, "GET", "/livez")
    check("daemon alive", status == 200, str(status))
    d.stop()
    h.finish()


if __name__ == "__main__":
    main()
