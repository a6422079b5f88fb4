#!/usr/bin/env python3
"""Runs the README's code blocks against a real seglossd on loopback (standard library; the
Python blocks need numpy).

Every fenced block tagged sh, bash or python is run, in order, unless the line before it is
`<!-- not-run: reason -->` (e.g. `make run`, which would start a daemon of its own); blocks
in other languages (json, text, untagged) are data, not code. Each block runs in a scratch
directory holding links to api/, tests/ and the build directory (as build/), and the files the
README's commands name: logits.npy, a batch of 2 with 5 classes, its masks mask_0.png and
mask_1.png, and p.json. The README's http://127.0.0.1:8080 becomes the test daemon's URL.
Shell blocks run under `bash -eo pipefail` with curl failing on an HTTP error
(--fail-with-body), so a refused request fails its block; a block passes when it exits 0 and
prints something. The run ends with how many blocks ran and were skipped, and
'N passed, N failed'.
"""
import os
import re
import subprocess
import sys

import harness as h
from harness import check, finish

WATCHDOG_S = 240
BLOCK_TIMEOUT_S = 60
README = os.path.join(h.ROOT, "README.md")
RUN_LANGS = {"sh": "shell", "bash": "shell", "python": "python"}
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.+?)\s*-->\s*$")
README_URL = "http://127.0.0.1:8080"
# Debian's python3 has numpy; a pyenv python3 first in PATH may not.
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def blocks(text):
    """[(line number, language, code, not-run reason or None)] of the fenced blocks."""
    out = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        reason = None
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0:
            nm = NOT_RUN.match(lines[k].strip())
            reason = nm.group(1) if nm else None
        out.append((start + 1, lang, "\n".join(lines[start + 1:j]), reason))
        i = j + 1
    return out


def scratch_dir():
    """The directory the blocks run in, with the files the README's commands name."""
    d = os.path.join(h.tmpdir, "readme")
    os.makedirs(d, exist_ok=True)
    for name, target in (("api", os.path.join(h.ROOT, "api")),
                         ("tests", os.path.join(h.ROOT, "tests")),
                         ("build", os.path.join(h.ROOT, h.BUILD))):
        os.symlink(target, os.path.join(d, name))
    make = f"""
import sys
sys.path.insert(0, {os.path.join(h.ROOT, 'api', 'examples')!r})
import numpy as np
import evaluate as ex
rng = np.random.default_rng(7)
logits = rng.normal(0, 2, size=(2, 5, 32, 40)).astype(np.float32)
labels = logits.argmax(axis=1).astype(np.uint8)
labels[:, :2] = 255
open("logits.npy", "wb").write(ex.npy_bytes(logits))
for i in range(2):
    open(f"mask_{{i}}.png", "wb").write(ex.palette_png(labels[i]))
open("p.json", "w").write('{{"main_loss": "focal", "dice_loss": true}}')
"""
    proc = subprocess.run([PY, "-c", make], cwd=d, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return d, proc


def run_block(d, kind, code, url):
    code = code.replace(README_URL, url)
    # the README's Python blocks use the client from the source tree (clients/python)
    client = os.path.join(h.ROOT, "clients", "python")
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SEGLOSS_URL": url,
           "PYTHONPATH": client + (os.pathsep + path if path else "")}
    if kind == "shell":
        prelude = 'curl() { command curl --fail-with-body "$@"; }\n'
        argv = ["bash", "-eo", "pipefail", "-c", prelude + code]
    else:
        argv = [PY, "-c", code]
    return subprocess.run(argv, cwd=d, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S,
                          env=env)


def main():
    h.install_watchdog(WATCHDOG_S)
    with open(README) as f:
        found = blocks(f.read())
    runnable = [b for b in found if b[1] in RUN_LANGS]
    check(f"README.md has code blocks to run ({len(runnable)} of {len(found)})", runnable,
          "no sh or python block")
    if not check("seglossd is built", os.access(h.DAEMON, os.X_OK), h.DAEMON):
        finish()
    d = h.Daemon("readme")
    if not check("daemon starts", d.wait_ready(), d.tail()):
        finish()
    work, made = scratch_dir()
    if not check("the scratch files the README names are made", made.returncode == 0,
                 made.stderr[-500:]):
        finish()
    ran = skipped = 0
    for line, lang, code, reason in found:
        if lang not in RUN_LANGS:
            continue
        name = f"README.md line {line} ({lang})"
        if not reason and h.SANITIZER and "segloss import local" in code:
            # a sanitized libsegloss.so cannot be loaded into an unsanitized python
            reason = f"segloss.local under the {h.SANITIZER} sanitizer build"
        if reason:
            skipped += 1
            h.note(f"skip {name}: {reason}")
            continue
        ran += 1
        try:
            proc = run_block(work, RUN_LANGS[lang], code, d.url)
        except subprocess.TimeoutExpired:
            check(f"{name} runs", False, f"still running after {BLOCK_TIMEOUT_S} s")
            continue
        check(f"{name} runs and prints something",
              proc.returncode == 0 and proc.stdout.strip(),
              f"exit {proc.returncode}: {proc.stdout[-300:]!r} {proc.stderr[-600:]!r}")
    h.note(f"README code blocks: {ran} ran, {skipped} skipped (not-run), "
           f"{len(found) - ran - skipped} not code (json, text)")
    check("at least one shell and one Python block ran",
          any(RUN_LANGS[b[1]] == "python" for b in runnable if not b[3])
          and any(RUN_LANGS[b[1]] == "shell" for b in runnable if not b[3]), "")
    finish()


if __name__ == "__main__":
    main()
