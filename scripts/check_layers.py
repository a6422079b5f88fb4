#!/usr/bin/env python3
"""Fails when an #include crosses a layer the wrong way (docs/ARCHITECTURE.md section 2).

Each source file belongs to one layer (LAYERS, first matching pattern wins); a file may include
headers of its own layer and of the layers below it. Quoted includes are resolved the way the
Makefile's -I flags resolve them (the including file's folder, then include/, lib/, server/);
system headers (<...>) are not checked. A wrong-way include that the tree still has is listed in
KNOWN_DEBTS with the reason it is there: the check fails on any other wrong-way include, and on a
debt that is gone (so the list only shrinks).

Usage: check_layers.py [ROOT]   (ROOT defaults to the repository; the test points it at a
fixture tree). Prints one line per violation and "N passed, N failed".
"""
import fnmatch
import os
import re
import sys

# (pattern relative to ROOT, layer name), lowest layer first; rank = position in LAYER_ORDER.
LAYER_ORDER = ["lib", "base", "store", "service", "transport", "api", "main"]
LAYERS = [
    ("include/segloss/*.h", "lib"),
    ("lib/*", "lib"),
    ("server/main.c", "main"),
    ("server/config.*", "base"),
    ("server/log.*", "base"),
    ("server/metrics.*", "base"),
    ("server/ids.*", "base"),
    ("server/json_writer.*", "base"),
    ("server/text.*", "base"),
    ("server/request_hash.*", "base"),
    ("server/problem.*", "base"),
    ("server/workqueue.*", "base"),
    ("server/store*", "store"),
    ("server/evaluation.*", "service"),
    ("server/params.*", "service"),
    ("server/http.*", "transport"),
    ("server/route.*", "transport"),
    ("server/http_head.*", "transport"),
    ("server/multipart.*", "transport"),
    ("server/intake.*", "transport"),
    ("server/bufpool.*", "transport"),
    ("server/auth.*", "transport"),
    ("server/healthcheck.*", "transport"),
    ("server/runs_api.*", "api"),
    ("server/oip.*", "api"),
    ("server/routes.*", "api"),
    ("server/evaluate_route.*", "api"),
    ("server/oip_route.*", "api"),
    ("server/result_json.*", "api"),
    ("server/overlay.*", "api"),
    ("server/assets.*", "api"),
]

# (includer, included header): why the wrong-way include is still there. Remove a line when the
# restructuring removes the include; the check then keeps it out.
KNOWN_DEBTS = {
    ("server/store.c", "server/params.h"): "the store validates run names with params' rules",
    ("server/store_sqlite.c", "server/params.h"): "the store validates run names with params' rules",
    ("server/store_postgres.c", "server/params.h"): "the store validates run names with params' rules",
    ("server/evaluation.c", "server/result_json.h"): "the service writes the /v1 answer itself",
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    for pattern, layer in LAYERS:
        if fnmatch.fnmatch(rel, pattern):
            return layer
    return None


def resolve(root, rel, header):
    for base in (os.path.dirname(rel), "include", "lib", "server"):
        cand = os.path.normpath(os.path.join(base, header))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    passed = failed = 0
    seen_debts = set()
    for folder in ("include", "lib", "server"):
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for name in sorted(files):
                if not name.endswith((".c", ".h")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                mine = layer_of(rel)
                if mine is None:
                    print(f"FAIL {rel}: no layer (add it to LAYERS in scripts/check_layers.py)")
                    failed += 1
                    continue
                text = open(os.path.join(dirpath, name), encoding="utf-8", errors="replace").read()
                for header in INCLUDE_RE.findall(text):
                    target = resolve(root, rel, header)
                    if target is None:
                        continue  # generated (build/gen) or system header
                    theirs = layer_of(target)
                    if theirs is None or LAYER_ORDER.index(theirs) <= LAYER_ORDER.index(mine):
                        passed += 1
                        continue
                    if (rel, target) in KNOWN_DEBTS:
                        seen_debts.add((rel, target))
                        passed += 1
                        continue
                    print(f"FAIL {rel} ({mine}) includes {target} ({theirs}): an include may "
                          f"only point to its own layer or below ({' < '.join(LAYER_ORDER)})")
                    failed += 1
    if os.path.exists(os.path.join(root, "server", "main.c")):
        for debt in sorted(set(KNOWN_DEBTS) - seen_debts):
            print(f"FAIL known debt {debt[0]} -> {debt[1]} is gone: remove it from KNOWN_DEBTS")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
