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
    ("lib/common/tensor.c", "http/http.h",
     "lib/common/tensor.c (lib/common) includes server/http/http.h (server/http)"),
    ("lib/loss/evaluate.c", "decode/decode_internal.h",
     "lib/loss/evaluate.c (lib/loss) includes lib/decode/decode_internal.h (lib/decode)"),
    ("server/base/json_writer.c", "store/store.h",
     "server/base/json_writer.c (server/base) includes server/store/store.h"),
    ("server/store/store.c", "api/runs_api.h",
     "server/store/store.c (server/store) includes server/api/runs_api.h (server/api)"),
    ("server/service/evaluation.c", "http/http.h",
     "server/service/evaluation.c (server/service) includes server/http/http.h"),
    ("server/api/overlay.c", "loss/loss_internal.h",
     "server/api/overlay.c includes lib/loss/loss_internal.h: the server uses the library only"),
    ("server/store/backend/store_sqlite.c", "store/store.h",
     "server/store/backend/store_sqlite.c (server/store/backend) includes server/store/store.h"),
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
# a copy of the check that lists one more debt, an include the tree does not have, must fail.
tmp = copy_tree()
try:
    with open(CHECK, encoding="utf-8") as f:
        text = f.read()
    marker = "KNOWN_DEBTS = {\n"
    assert marker in text
    text = text.replace(marker, marker + '    ("server/http/auth.c", "server/api/runs_api.h"): "paid",\n')
    os.makedirs(os.path.join(tmp, "scripts"))
    check_copy = os.path.join(tmp, "scripts", "check_layers.py")
    with open(check_copy, "w", encoding="utf-8") as f:
        f.write(text)
    p = subprocess.run([sys.executable, check_copy, tmp], capture_output=True, text=True,
                       timeout=60)
    result(p.returncode != 0 and "server/http/auth.c -> server/api/runs_api.h is gone" in p.stdout,
           "a paid debt still listed fails the check", p.stdout.strip())
finally:
    shutil.rmtree(tmp)

# A new source file outside the layer folders has no layer: the check names it.
tmp = copy_tree()
try:
    with open(os.path.join(tmp, "server", "stray.c"), "w", encoding="utf-8") as f:
        f.write('#include "base/log.h"\n')
    rc, out = run(tmp)
    result(rc != 0 and "server/stray.c: no layer" in out, "a file outside the layer folders fails",
           out.strip())
finally:
    shutil.rmtree(tmp)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
