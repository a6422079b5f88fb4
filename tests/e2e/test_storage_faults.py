#!/usr/bin/env python3
"""Storage faults under the runs store (issue 7): a full disk, then a failing one.

Full disk: the daemon's --data-dir is on a tmpfs of TMPFS_MB (mounted here; needs root). A few
runs are recorded, then a filler file takes every free byte and results that name a run are
posted until one is refused: it must be 507 problem+json (nothing recorded), never a crash or
a 500; evaluations without a run, reads of stored runs and /readyz still answer 200. The filler
is removed and recording resumes (200), every result answered 200 is stored, and after a clean
stop SQLite's PRAGMA integrity_check says ok.

Read-only data directory: seglossd refuses to start on it with a message (exit 1, no crash).

Failing disk (when dmsetup and loop devices work): the data directory on ext4 over a
device-mapper linear target that is swapped for the 'error' target mid-run: posts with a run
are then refused with 503 (+ Retry-After) and the daemon keeps answering; reads of what was
stored keep working from SQLite's cache or give 503, never a crash.

Without root or mount permission the test says SKIP and checks nothing. Ends with
'N passed, N failed'."""
import json
import os
import sqlite3
import subprocess
import time

import harness as h
from harness import check

TMPFS_MB = 8
MAX_FILL_POSTS = 300


def sh(*args, timeout=60):
    return subprocess.run(list(args), capture_output=True, timeout=timeout)


def can_mount():
    if os.geteuid() != 0:
        return False
    probe = os.path.join(h.tmpdir, "probe")
    os.makedirs(probe)
    if sh("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe).returncode != 0:
        return False
    sh("umount", probe)
    return True


def fill(path):
    """Writes zeros to path until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (64 << 10, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def stored_ids(d, ids):
    return [i for i in ids if h.request(d, "GET", f"/v1/evaluations/{i}")[0] != 200]


def integrity(db_path):
    con = sqlite3.connect(db_path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def full_disk():
    mnt = os.path.join(h.tmpdir, "tmpfs")
    os.makedirs(mnt)
    r = sh("mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", mnt)
    if not check(f"tmpfs of {TMPFS_MB} MiB mounted", r.returncode == 0, r.stderr):
        return
    h.state["cleanup"].append(lambda: sh("umount", "-l", mnt))
    data = os.path.join(mnt, "data")
    d = h.Daemon("full", ["--threads", "2", "--workers", "2"], data_dir=data)
    if not check("daemon on the small tmpfs starts", d.wait_ready(), d.tail()):
        return
    answered = []
    for step in range(5):
        status, _, body = h.post_small(d, {"run": "full-disk", "step": step})
        if status == 200:
            answered.append(json.loads(body)["id"])
    check("results recorded before the disk fills", len(answered) == 5, str(len(answered)))
    filler = os.path.join(mnt, "filler")
    fill(filler)
    refused = None
    for step in range(MAX_FILL_POSTS):
        status, headers, body = h.post_small(d, {"run": "full-disk", "step": 5 + step})
        if status == 200:
            answered.append(json.loads(body)["id"])
            continue
        refused = (status, headers, body)
        break
    if not check("a post with a run is refused once the disk is full", refused is not None,
                 f"{MAX_FILL_POSTS} posts all answered 200"):
        return
    why = h.problem_ok(*refused, 507)
    check("the refusal is 507 problem+json", not why, why)
    h.note(f"refused after {len(answered) - 5} more results: {refused[2][:160]!r}")
    for _ in range(3):
        status, _, _ = h.post_small(d, {"run": "full-disk", "step": 999})
        check("still 507 while full (not 500, no crash)", status == 507, str(status))
    status, _, _ = h.post_small(d)
    check("an evaluation without a run is still 200 on a full disk", status == 200, str(status))
    status, _, _ = h.request(d, "GET", "/v1/runs/full-disk")
    check("reading the stored run is 200 on a full disk", status == 200, str(status))
    status, _, _ = h.request(d, "GET", "/readyz")
    check("/readyz still 200", status == 200, str(status))
    check("the daemon is alive", d.proc.poll() is None, d.tail())
    os.unlink(filler)
    status, _, body = h.post_small(d, {"run": "full-disk", "step": 1000})
    check("recording resumes once space is freed (200)", status == 200, f"{status} {body[:200]}")
    if status == 200:
        answered.append(json.loads(body)["id"])
    missing = stored_ids(d, answered)
    check("every result answered 200 is stored", not missing,
          f"{len(missing)} of {len(answered)} missing")
    rc = d.stop()
    check("clean stop after the full disk (exit 0)", rc == 0, f"{rc} {d.tail()}")
    dbs = [f for f in os.listdir(data) if f.endswith(".db") or f.endswith(".sqlite")]
    if check("the SQLite file is there", dbs, str(os.listdir(data))):
        result = integrity(os.path.join(data, dbs[0]))
        check("PRAGMA integrity_check is ok", result == "ok", result)
    d2 = h.Daemon("full-restart", ["--threads", "2"], data_dir=data)
    if check("the daemon restarts on the same data dir", d2.wait_ready(), d2.tail()):
        missing = stored_ids(d2, answered)
        check("every result answered 200 survives the restart", not missing,
              f"{len(missing)} missing")
        d2.stop()


def read_only_start():
    mnt = os.path.join(h.tmpdir, "ro")
    os.makedirs(mnt)
    r = sh("mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", mnt)
    if not check("read-only tmpfs mounted", r.returncode == 0, r.stderr):
        return
    h.state["cleanup"].append(lambda: sh("umount", "-l", mnt))
    d = h.Daemon("readonly", [], data_dir=os.path.join(mnt, "data"))
    try:
        rc = d.proc.wait(timeout=h.START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        rc = None
    log = d.log_text()
    check("a read-only data dir stops the start with exit 1 and a message",
          rc == 1 and "runs store" in log, f"exit {rc}: {log[-300:]}")


def ext4_shutdown(path):
    """EXT4_IOC_SHUTDOWN (NOLOGFLUSH): from now on every I/O of that file system fails (EIO),
    as on a disk that died or a file system the kernel took read-only."""
    import fcntl
    EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
    EXT4_GOING_FLAGS_NOLOGFLUSH = 2
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, EXT4_GOING_FLAGS_NOLOGFLUSH.to_bytes(4, "little"))
    finally:
        os.close(fd)


def failing_disk():
    """ext4 on a loop device, shut down mid-run (every write then fails with EIO)."""
    need = [p for p in ("losetup", "mkfs.ext4") if sh("which", p).returncode != 0]
    if need:
        h.note(f"SKIP failing disk: {', '.join(need)} missing")
        return
    img = os.path.join(h.tmpdir, "disk.img")
    with open(img, "wb") as f:
        f.truncate(32 << 20)
    if sh("mkfs.ext4", "-q", "-F", img).returncode != 0:
        h.note("SKIP failing disk: mkfs.ext4 failed")
        return
    mnt = os.path.join(h.tmpdir, "ext4")
    os.makedirs(mnt)
    r = sh("mount", "-o", "loop", img, mnt)
    if r.returncode != 0:
        h.note(f"SKIP failing disk: no loop mount ({r.stderr.decode().strip()})")
        return
    h.state["cleanup"].append(lambda: sh("umount", "-l", mnt))
    d = h.Daemon("failing", ["--threads", "2"], data_dir=os.path.join(mnt, "data"))
    if not check("daemon on a loop-mounted ext4 starts", d.wait_ready(), d.tail()):
        return
    ok = sum(h.post_small(d, {"run": "failing", "step": s})[0] == 200 for s in range(3))
    check("results recorded before the disk fails", ok == 3, str(ok))
    try:
        ext4_shutdown(mnt)
    except OSError as e:
        h.note(f"SKIP failing disk: EXT4_IOC_SHUTDOWN refused ({e})")
        return
    statuses = []
    for s in range(5):
        status, headers, body = h.post_small(d, {"run": "failing", "step": 10 + s})
        statuses.append(status)
        if status == 503:
            why = h.problem_ok(status, headers, body, 503)
            check("a failing disk gives 503 problem+json with Retry-After",
                  not why and "retry-after" in headers, why or str(headers))
            h.note(f"503 detail: {body[:200]!r}")
            break
    check("a post with a run on a failing disk is refused with 503 (never 500, no crash)",
          503 in statuses and 500 not in statuses, str(statuses))
    status, _, _ = h.post_small(d)
    check("an evaluation without a run is still 200 on a failing disk", status == 200,
          str(status))
    status, headers, _ = h.request(d, "GET", "/v1/runs/failing")
    check("reading a run on a failing disk is 200 or 503 (with Retry-After), never 500",
          status == 200 or (status == 503 and headers.get("retry-after")),
          f"{status} {headers}")
    check("the daemon is alive", d.proc.poll() is None, d.tail())
    rc = d.stop()
    check("it still stops cleanly (exit 0)", rc == 0, f"{rc} {d.tail()}")


def main():
    h.install_watchdog(240)
    if not can_mount():
        h.note("SKIP storage faults: needs root and mount (tmpfs); nothing checked")
        h.finish()
    for part in (full_disk, read_only_start, failing_disk):
        try:
            part()
        except Exception as e:  # a broken step fails, and the rest still cleans up
            check(f"{part.__name__} ran to its end", False, repr(e))
    h.finish()


if __name__ == "__main__":
    main()
