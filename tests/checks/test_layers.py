#!/usr/bin/env python3
"""The layer check (scripts/check_layers.py) passes on the tree and fails on a wrong-way include.

Runs the check on the repository, then on copies of include/, lib/ and server/ into which one
deliberate mistake is written at a time: the check must name it, or it proves nothing.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECK = os.path.join(ROOT, "scripts", "check_layers.py")
passed = failed = 0


def result(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def run(root):
    p = subprocess.run([sys.executable, CHECK, root], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout


def copy_tree():
    tmp = tempfile.mkdtemp(prefix="segloss-layers-")
    for folder in ("include", "lib", "server"):
        shutil.copytree(os.path.join(ROOT, folder), os.path.join(tmp, folder))
    return tmp


def append_include(tmp, rel, header):
    path = os.path.join(tmp, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'#include "{header}"\n' + text)


rc, out = run(ROOT)
result(rc == 0, "the tree keeps its layers", out.strip().splitlines()[-5:])

cases = [
    ("lib/tensor.c", "http.h", "lib/tensor.c (lib) includes server/http.h (transport)"),
    ("server/json_writer.c", "store.h", "server/json_writer.c (base) includes server/store.h"),
    ("server/store.c", "runs_api.h", "server/store.c (store) includes server/runs_api.h (api)"),
    ("server/evaluation.c", "http.h", "server/evaluation.c (service) includes server/http.h"),
]
for rel, header, expected in cases:
    tmp = copy_tree()
    try:
        append_include(tmp, rel, header)
        rc, out = run(tmp)
        result(rc != 0 and expected in out, f"a wrong-way include in {rel} fails the check",
               out.strip())
    finally:
        shutil.rmtree(tmp)

# A debt that the restructuring paid must leave KNOWN_DEBTS, or the list would stop shrinking:
# one still listed is paid in a copy (its include taken out), and the check must fail on it.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(CHECK))
import check_layers  # noqa: E402

debts = sorted(check_layers.KNOWN_DEBTS)
if not debts:
    result(True, "a paid debt still listed fails the check (no debt left to pay)")
else:
    includer, header = debts[0]
    tmp = copy_tree()
    try:
        path = os.path.join(tmp, includer)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(f'#include "{os.path.basename(header)}"\n', ""))
        rc, out = run(tmp)
        result(rc != 0 and f"{includer} -> {header} is gone" in out,
               "a paid debt still listed fails the check", out.strip())
    finally:
        shutil.rmtree(tmp)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
