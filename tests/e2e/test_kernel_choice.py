#!/usr/bin/env python3
"""The daemon's kernel choice: SEGLOSS_KERNEL=scalar|avx2|avx512 runs that kernel (GET /v1/info
says which); a kernel the CPU lacks, or a name that is no kernel, stops the start-up with a
non-zero exit and a message saying why. The kernels this CPU lacks are reported as skipped."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.install_watchdog(120)


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


flags = cpu_flags()
has = {
    "scalar": True,
    "avx2": {"avx2", "fma", "f16c"} <= flags,
    "avx512": {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags,
}
needs = {"avx2": "AVX2", "avx512": "AVX-512"}


def start(name, kernel):
    saved = os.environ.get("SEGLOSS_KERNEL")
    os.environ["SEGLOSS_KERNEL"] = kernel
    try:
        return h.Daemon(name)
    finally:
        if saved is None:
            del os.environ["SEGLOSS_KERNEL"]
        else:
            os.environ["SEGLOSS_KERNEL"] = saved


def refused(d, want):
    """The daemon exits non-zero by itself, its log saying `want`."""
    try:
        code = d.proc.wait(timeout=h.START_TIMEOUT_S)
    except Exception:
        d.kill()
        return False, "still running"
    text = d.log_text()
    return code != 0 and want in text, f"exit {code}, log: {text[-300:]}"


for kernel in ("scalar", "avx2", "avx512"):
    d = start(f"kernel-{kernel}", kernel)
    if has[kernel]:
        ok = d.wait_ready()
        info = {}
        if ok:
            status, _, body = h.request(d, "GET", "/v1/info")
            info = json.loads(body) if status == 200 else {}
        h.check(f"SEGLOSS_KERNEL={kernel} runs the {kernel} kernel",
                ok and info.get("kernel") == kernel, f"info {info}, log: {d.tail()}")
        d.stop()
    else:
        h.note(f"SEGLOSS_KERNEL={kernel} runs: skipped: CPU has no {needs[kernel]}")
        ok, why = refused(d, f"asked for the {kernel} kernel, but this CPU (or build) has no")
        h.check(f"SEGLOSS_KERNEL={kernel} on a CPU without {needs[kernel]} stops the start-up",
                ok, why)

d = start("kernel-unknown", "avx1024")
ok, why = refused(d, "cannot start the loss library: SEGLOSS_KERNEL=avx1024 names no kernel")
h.check("SEGLOSS_KERNEL=avx1024 stops the start-up with a message", ok, why)

h.finish()
