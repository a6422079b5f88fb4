#!/usr/bin/env python3
"""Two seglossd builds against each other on one request: the server's CPU time per request and
the wall time per request, in interleaved rounds (the order alternates), each round's new/old
ratio printed and their range and median at the end. For a change whose effect is smaller than
what this machine drifts between runs of make bench.

CPU time is the sum over the daemon's threads of /proc/PID/task/TID/schedstat (nanoseconds; the
clock ticks of /proc/PID/stat are 10 ms, too coarse for a 0.3 ms request). Each round runs
REQUESTS requests on one kept-alive curl connection per build. Both daemons listen on loopback
and are killed at the end (and live at most LIFETIME_S).

  tests/bench/ab_daemons.py OLD_SEGLOSSD NEW_SEGLOSSD ROUNDS REQUESTS WANT -- CURL_ARGS...

e.g. old tree built in a worktree, 1 MiB body without a mask (400 once the body is in):
  tests/bench/ab_daemons.py /tmp/old/build/seglossd build/seglossd 9 300 400 -- \\
      -F logits=@blob_1m.npy
"""
import glob
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

LIFETIME_S = "900"
CURL_MAX_S = "120"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid):
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):  # a thread that ended meanwhile
            pass
    return total


def start(binary, data_dir):
    port = free_port()
    proc = subprocess.Popen(["timeout", LIFETIME_S, binary, "serve", "--port", str(port),
                             "--bind", "127.0.0.1", "--data-dir", data_dir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        if subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "1", url + "/livez"]
                          ).returncode == 0:
            break
        time.sleep(0.1)
    kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    if not kids.stdout.split():
        proc.kill()
        sys.exit(f"ab_daemons: {binary} did not start")
    return proc, int(kids.stdout.split()[0]), url + "/v1/evaluate"


def stop(proc, pid):
    """Kills a daemon start() started: the daemon itself (killing timeout would leave it
    running), then timeout."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.kill()
    proc.wait()


def one_round(pid, url, requests, want, curl_args):
    args = []
    for i in range(requests):
        args += ["-s", "-o", "/dev/null", "-w", "%{http_code}\\n", "--max-time", CURL_MAX_S]
        args += curl_args + [url] + (["--next"] if i < requests - 1 else [])
    before, t0 = cpu_ns(pid), time.perf_counter()
    out = subprocess.run(["curl"] + args, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, cpu_ns(pid) - before
    codes = out.stdout.split()
    if codes != [want] * requests:
        sys.exit(f"ab_daemons: {url} answered {sorted(set(codes))}, not {want}")
    return cpu / requests / 1e3, wall / requests * 1e3


def spread(values, fmt="{:.3f}"):
    return (f"{fmt.format(min(values))}-{fmt.format(max(values))} "
            f"(median {fmt.format(statistics.median(values))})")


def main():
    if "--" not in sys.argv or sys.argv.index("--") != 6:
        sys.exit(__doc__)
    old, new, rounds, requests, want = sys.argv[1:6]
    rounds, requests = int(rounds), int(requests)
    curl_args = sys.argv[7:]
    tmp = tempfile.mkdtemp(prefix="segloss_ab_")
    daemons = {}
    try:
        for name, binary in (("old", old), ("new", new)):
            daemons[name] = start(binary, os.path.join(tmp, name))
        for name in daemons:  # warm-up: buffers cached, pages in
            one_round(daemons[name][1], daemons[name][2], 2, want, curl_args)
        got = {"old": [], "new": []}
        for r in range(rounds):
            for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                got[name].append(one_round(daemons[name][1], daemons[name][2], requests, want,
                                           curl_args))
            (oc, ow), (nc, nw) = got["old"][-1], got["new"][-1]
            print(f"round {r + 1}: server CPU us/request old {oc:.1f} new {nc:.1f} "
                  f"({nc / oc:.3f}); wall ms/request old {ow:.3f} new {nw:.3f} ({nw / ow:.3f})")
        cpu = [n[0] / o[0] for o, n in zip(got["old"], got["new"])]
        wall = [n[1] / o[1] for o, n in zip(got["old"], got["new"])]
        print(f"new/old, {rounds} rounds of {requests} requests: server CPU {spread(cpu)}; "
              f"wall {spread(wall)}")
    finally:
        for proc, pid, _ in daemons.values():
            stop(proc, pid)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
