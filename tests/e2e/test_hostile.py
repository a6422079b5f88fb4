#!/usr/bin/env python3
"""Hostile clients against a real seglossd (issue 7).

- Slowloris: 200 connections trickle header bytes (one byte each every 0.2 s) from 127.0.0.2-5
  (50 per address, under the default --max-per-ip 64; 200 under the default --max-connections
  256); meanwhile a normal client on 127.0.0.1 must get every answer (GET and a small
  evaluation) within a second. The daemon runs with its default limits and timeouts.
- Per-IP limit: with --max-per-ip 4 a fifth connection from one address is closed unanswered
  while another address is still served. Total limit: with --max-connections 8 a ninth
  connection is closed, and once the eight go away new clients are served again.
- Upload deadline: a body that keeps trickling past --upload-timeout gets 408 problem+json.
- Aborted uploads: 100 uploads declaring 50 MB are cut off halfway; the daemon's RSS must come
  back within 10% of its level before them. With --buffer-cache-mb 0 that is checked as is.
  The buffer pool keeps part buffers for reuse on purpose, bounded by --buffer-cache-mb, and
  a kept buffer stays as resident as the furthest an upload wrote into it (the copy faults
  pages in 8 MiB windows ahead, so where the abort lands moves that by a window). So with the
  pool on (64 MiB: room for one 50 MB buffer; and the default, 1024 MiB) the baseline is taken
  after 10 warm-up aborts and the growth must stay within 10% plus the pool's bound: bounded,
  not a leak.

Every socket is on 127.0.0.0/8. Ends with 'N passed, N failed'."""
import os
import selectors
import socket
import threading
import time

import harness as h
from harness import check

SLOW_CONNECTIONS = 200
SLOW_SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
SLOW_SECONDS = 6
NORMAL_DEADLINE_S = 3.0 if h.SANITIZER else 1.0
ABORTS = 20 if h.SANITIZER else 100  # RSS is not judged under sanitizers: fewer, faster
ABORT_DECLARED = 50 << 20
RSS_TOLERANCE = 0.10


def connect_from(source, port, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_unanswered(s, wait=3.0):
    """True when the daemon closes the connection without an HTTP answer."""
    try:
        s.settimeout(wait)
        s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(1024)
        return data == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def slowloris(d):
    socks = []
    try:
        for i in range(SLOW_CONNECTIONS):
            s = connect_from(SLOW_SOURCES[i % len(SLOW_SOURCES)], d.port)
            s.setblocking(False)
            s.send(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
    except OSError as e:
        check("200 trickling connections opened", False, f"after {len(socks)}: {e}")
        return
    check(f"{SLOW_CONNECTIONS} trickling connections opened", True)
    stop = threading.Event()
    dropped = [0]

    def trickle():
        while not stop.is_set():
            for s in socks:
                try:
                    s.send(b"a")
                except OSError:
                    dropped[0] += 1
            stop.wait(0.2)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    worst = 0.0
    answers = []
    end = time.time() + SLOW_SECONDS
    while time.time() < end:
        for fn in (lambda: h.request(d, "GET", "/v1/info", timeout=10),
                   lambda: h.post_small(d, timeout=10)):
            t0 = time.time()
            try:
                status = fn()[0]
            except OSError as e:
                status = str(e)
            worst = max(worst, time.time() - t0)
            answers.append(status)
        time.sleep(0.1)
    stop.set()
    t.join(timeout=5)
    check("the normal client got 200 every time during the slowloris",
          answers and all(a == 200 for a in answers), str(answers[:10]))
    check(f"... each within {NORMAL_DEADLINE_S} s (worst {worst * 1000:.0f} ms, "
          f"{len(answers)} requests)", worst < NORMAL_DEADLINE_S, f"{worst:.3f} s")
    alive = 0
    for s in socks:
        try:
            s.send(b"a")
            alive += 1
        except OSError:
            pass
        s.close()
    h.note(f"trickling connections still open at the end: {alive} of {SLOW_CONNECTIONS}")
    check("the daemon is alive after the slowloris", d.proc.poll() is None, d.tail())


def per_ip_limit():
    d = h.Daemon("per-ip", ["--max-per-ip", "4", "--threads", "2"])
    if not check("daemon with --max-per-ip 4 starts", d.wait_ready(), d.tail()):
        return
    held = [connect_from("127.0.0.6", d.port) for _ in range(4)]
    time.sleep(0.2)
    extra = connect_from("127.0.0.6", d.port)
    check("a fifth connection from one address is closed unanswered", closed_unanswered(extra),
          "it was answered")
    extra.close()
    status = h.request(d, "GET", "/livez")[0]
    check("another address is still served", status == 200, str(status))
    for s in held:
        s.close()
    time.sleep(0.3)
    s = connect_from("127.0.0.6", d.port)
    check("once they close, that address is served again", not closed_unanswered(s), "closed")
    s.close()
    d.stop()


def total_limit():
    """At --max-connections MHD stops accepting: a further client waits in the listen backlog,
    unanswered, and is served as soon as a slot frees."""
    d = h.Daemon("total", ["--max-connections", "8", "--threads", "2"])
    if not check("daemon with --max-connections 8 starts", d.wait_ready(), d.tail()):
        return
    held = [connect_from(f"127.0.1.{i + 1}", d.port) for i in range(8)]
    time.sleep(0.3)
    extra = connect_from("127.0.2.1", d.port, timeout=2)
    extra.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        early = extra.recv(1024)
    except socket.timeout:
        early = None
    check("a ninth connection is not served while eight are open", early is None,
          repr(early)[:100])
    for s in held:
        s.close()
    extra.settimeout(10)
    try:
        late = extra.recv(1024)
    except OSError as e:
        late = repr(e).encode()
    extra.close()
    check("... and is answered 200 once they close", late.startswith(b"HTTP/1.1 200"),
          late[:100])
    status = h.request(d, "GET", "/livez")[0]
    check("new clients are served again", status == 200, str(status))
    d.stop()


UPLOAD_TIMEOUT_S = 2
DISCARD_GRACE_S = 10  # HTTP_DISCARD_GRACE_S in server/http/http.c


def slow_upload_socket(d, length):
    s = connect_from("127.0.0.1", d.port, timeout=30)
    boundary = "slowbody"
    head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {length}\r\n\r\n")
    part = f"--{boundary}\r\nContent-Disposition: form-data; name=\"logits\"\r\n\r\n"
    s.sendall(head.encode() + part.encode())
    return s, len(part)  # body bytes sent


def read_answer(s):
    answer = b""
    try:
        s.settimeout(10)
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    return answer


def upload_deadline():
    d = h.Daemon("deadline", ["--upload-timeout", str(UPLOAD_TIMEOUT_S), "--idle-timeout", "5",
                              "--threads", "2"])
    if not check("daemon with --upload-timeout 2 starts", d.wait_ready(), d.tail()):
        return
    # Steady bytes (never idle) past the deadline, then the rest of the body: 408.
    length = 1 << 20
    s, sent = slow_upload_socket(d, length)
    t0 = time.time()
    while time.time() - t0 < UPLOAD_TIMEOUT_S + 1.5:
        s.sendall(b"\0" * 1024)
        sent += 1024
        time.sleep(0.25)
    s.sendall(b"\0" * (length - sent))
    answer = read_answer(s)
    s.close()
    check("an upload that takes longer than --upload-timeout gets 408 when its body ends",
          answer.startswith(b"HTTP/1.1 408"), answer[:100])
    # A body that never ends: cut off within deadline + discard grace (not held forever).
    s, _ = slow_upload_socket(d, 64 << 20)
    t0 = time.time()
    closed_after = None
    while time.time() - t0 < UPLOAD_TIMEOUT_S + DISCARD_GRACE_S + 8:
        try:
            s.sendall(b"\0" * 1024)
        except OSError:
            closed_after = time.time() - t0
            break
        time.sleep(0.25)
    s.close()
    check(f"a body trickling forever is cut off within --upload-timeout + "
          f"{DISCARD_GRACE_S} s (after {closed_after or 0:.1f} s)",
          closed_after is not None and closed_after < UPLOAD_TIMEOUT_S + DISCARD_GRACE_S + 3,
          str(closed_after))
    check("the daemon is alive", d.proc.poll() is None, d.tail())
    d.stop()


def abort_uploads(d, count, label):
    """count uploads that declare ABORT_DECLARED bytes and stop halfway."""
    boundary = "abortabort"
    head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {ABORT_DECLARED}\r\n\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"logits\"; "
            f"filename=\"l.npy\"\r\n\r\n").encode()
    chunk = os.urandom(1 << 20)
    for _ in range(count):
        s = connect_from("127.0.0.1", d.port, timeout=30)
        s.sendall(head)
        for _ in range((ABORT_DECLARED // 2) >> 20):
            s.sendall(chunk)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST
        s.close()


def settle_rss(d):
    """RSS (KiB) once the daemon has let go of aborted requests."""
    deadline = time.time() + 10
    while time.time() < deadline:
        _, _, body = h.request(d, "GET", "/metrics")
        line = [l for l in body.decode().splitlines()
                if l.startswith("segloss_http_requests_in_flight ")]
        if not line:
            check("/metrics has segloss_http_requests_in_flight", False, "missing")
            break
        if float(line[0].split()[-1]) <= 1:  # the /metrics request itself
            break
        time.sleep(0.1)
    time.sleep(0.5)
    return d.rss_kib()


def aborted_uploads(extra, label, warmup, allowance_kib=0):
    d = h.Daemon(f"abort-{label}", ["--threads", "2", *extra])
    if not check(f"daemon ({label}) starts", d.wait_ready(), d.tail()):
        return
    for _ in range(3):
        h.post_small(d)
    if warmup:
        abort_uploads(d, warmup, label)
    before = settle_rss(d)
    t0 = time.time()
    abort_uploads(d, ABORTS, label)
    after = settle_rss(d)
    growth = (after - before) / before
    over = (after - before - allowance_kib) / before  # what counts against the 10%
    h.note(f"{label}: RSS {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after "
           f"{ABORTS} aborted 50 MB uploads ({time.time() - t0:.1f} s)")
    what = "RSS back within 10%" if not allowance_kib else \
        f"RSS within 10% + the {allowance_kib >> 10} MiB cache bound"
    if h.SANITIZER:
        # ASan's quarantine keeps freed heap memory on purpose and TSan maps shadow memory for
        # what the buffers touched: RSS says nothing about leaks there (LeakSanitizer does).
        h.note(f"SKIP {label}: RSS bound not checked under the {h.SANITIZER} sanitizer "
               f"({growth:+.1%})")
    else:
        check(f"{label}: {what} after {ABORTS} aborted uploads ({growth:+.1%})",
              over < RSS_TOLERANCE, f"{before} -> {after} KiB")
    status = h.post_small(d)[0]
    check(f"{label}: the daemon still evaluates", status == 200, str(status))
    d.stop()


def main():
    h.install_watchdog(300)
    d = h.Daemon("slowloris", [])  # default limits and timeouts
    if check("daemon with default limits starts", d.wait_ready(), d.tail()):
        slowloris(d)
        d.stop()
    per_ip_limit()
    total_limit()
    upload_deadline()
    aborted_uploads(["--buffer-cache-mb", "64"], "--buffer-cache-mb 64, after 10 warm-up aborts",
                    10, allowance_kib=64 << 10)
    aborted_uploads(["--buffer-cache-mb", "0"], "--buffer-cache-mb 0", 0)
    aborted_uploads([], "default --buffer-cache-mb 1024", 10, allowance_kib=1024 << 10)
    h.finish()


if __name__ == "__main__":
    main()
