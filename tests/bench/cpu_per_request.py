#!/usr/bin/env python3
"""CPU-seconds per request of a server and of its curl clients, a figure the machine's load
hardly moves (wall-clock figures on a shared machine do): the server's user+system time from
/proc/PID/stat before and after, each client's from wait4's rusage.

Runs REQUESTS requests over CLIENTS curl processes, each sending its share one after another on
one kept-alive connection (as tests/bench/bench_http.sh's requests/s row does), and prints one
line:

    server_cpu_s=<per request> client_cpu_s=<per request> wall_s=<all> rps=<requests/s>

It fails unless every answer has status WANT. With CPU_PER_THREAD=1 in the environment it also
prints each live server thread's share, in thread-id (creation) order.

Usage: cpu_per_request.py PID URL WANT CLIENTS REQUESTS CURL_ARGS...
PID is the server process (its threads' time is in its /proc/PID/stat); CURL_ARGS are the
arguments that make the body (e.g. -F logits=@x.npy -F mask=@m.png)."""
import os
import subprocess
import sys
import time

CURL_MAX_S = "120"


def process_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after the ")"
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads_cpu_s(pid):
    """{tid: CPU seconds} of the process's live threads."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    pid, url, want = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    clients, requests = int(sys.argv[4]), int(sys.argv[5])
    body = sys.argv[6:]
    per_thread = os.environ.get("CPU_PER_THREAD") == "1"
    threads_before = threads_cpu_s(pid) if per_thread else {}
    before = process_cpu_s(pid)
    start = time.monotonic()
    procs = []
    for c in range(clients):
        share = len(range(c, requests, clients))
        args = ["curl", "-s", "--max-time", CURL_MAX_S, "-w", "%{http_code}\n", *body]
        for _ in range(share):
            args += ["-o", "/dev/null", url]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE))
    client_cpu = 0.0
    codes = []
    for p in procs:
        out = p.stdout.read().decode()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        client_cpu += usage.ru_utime + usage.ru_stime
        codes += out.split()
    wall = time.monotonic() - start
    server_cpu = process_cpu_s(pid) - before
    bad = [c for c in codes if c != want]
    if bad or len(codes) != requests:
        sys.exit(f"cpu_per_request: {url}: {len(codes)} answers, not {want}: {sorted(set(bad))}")
    # microseconds: a 1 MiB request takes about 0.3 ms of the server (4 decimals showed 0.0003)
    print(f"server_cpu_s={server_cpu / requests:.6f} client_cpu_s={client_cpu / requests:.6f} "
          f"wall_s={wall:.3f} rps={requests / wall:.3f}")
    if per_thread:
        after = threads_cpu_s(pid)
        print("  per thread (tid order), s per request: " + " ".join(
            f"{t}:{(after[t] - threads_before.get(t, 0.0)) / requests:.4f}" for t in sorted(after)))


if __name__ == "__main__":
    main()
