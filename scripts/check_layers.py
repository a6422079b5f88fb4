#!/usr/bin/env python3
"""Fails when an #include crosses a layer the wrong way (docs/ARCHITECTURE.md section 2).

Each folder of lib/ and server/ is one layer (LAYERS, first matching pattern wins); a file may
include headers of its own layer and of the layers below it, never of a sibling layer, and the
server reaches the library only through include/segloss/. Quoted includes are resolved the way
the Makefile's -I flags resolve them (the including file's folder, then SEARCH); system headers
(<...>) are not checked. A wrong-way include that the tree still has is listed in
KNOWN_DEBTS with the reason it is there: the check fails on any other wrong-way include, and on a
debt that is gone (so the list only shrinks).

Usage: check_layers.py [ROOT]   (ROOT defaults to the repository; the test points it at a
fixture tree). Prints one line per violation and "N passed, N failed".
"""
import fnmatch
import os
import re
import sys

# Every folder is one layer; a file's layer is its folder (the public headers are placed by what
# they declare). RANK orders them, lowest first: a file may include headers of its own layer and
# of layers of a lower rank. Layers of the same rank are siblings and may not include each other
# (lib/decode and lib/loss share only lib/common).
RANK = {
    "lib/common": 0,
    "lib/decode": 1,
    "lib/loss": 1,
    "include": 2,          # the umbrella header segloss/segloss.h
    "server/base": 3,
    "server/store/backend": 4,  # the SQL steps a backend gives; never sees the facade
    "server/store": 5,
    "server/service": 6,
    "server/http": 7,
    "server/api": 8,
    "server/main": 9,
}
LAYERS = [
    ("include/segloss/errors.h", "lib/common"),
    ("include/segloss/limits.h", "lib/common"),
    ("include/segloss/tensor.h", "lib/common"),
    ("include/segloss/decode.h", "lib/decode"),
    ("include/segloss/loss.h", "lib/loss"),
    ("include/segloss/segloss.h", "include"),
    ("lib/common/*", "lib/common"),
    ("lib/decode/*", "lib/decode"),
    ("lib/loss/*", "lib/loss"),
    ("server/base/*", "server/base"),
    ("server/store/backend/*", "server/store/backend"),
    ("server/store/*", "server/store"),
    ("server/service/*", "server/service"),
    ("server/http/*", "server/http"),
    ("server/api/*", "server/api"),
    ("server/main.c", "server/main"),
]
LAYER_ORDER = sorted(RANK, key=RANK.get)

# (includer, included header): why the wrong-way include is still there. Remove a line when the
# restructuring removes the include; the check then keeps it out.
KNOWN_DEBTS = {
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    for pattern, layer in LAYERS:
        if fnmatch.fnmatch(rel, pattern):
            return layer
    return None


# Where a quoted include is looked for: the including file's folder, then the Makefile's -I list
# (an include names the folder it reaches into: "base/log.h", "decode/decode_internal.h").
SEARCH = ["include", "lib", "server"]


def resolve(root, rel, header):
    for base in [os.path.dirname(rel)] + SEARCH:
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
                    print(f"FAIL {rel}: no layer (put it in a layer folder, or add it to LAYERS in "
                          f"scripts/check_layers.py)")
                    failed += 1
                    continue
                text = open(os.path.join(dirpath, name), encoding="utf-8", errors="replace").read()
                for header in INCLUDE_RE.findall(text):
                    target = resolve(root, rel, header)
                    if target is None:
                        continue  # generated (build/gen) or system header
                    theirs = layer_of(target)
                    if rel.startswith("server/") and target.startswith("lib/"):
                        print(f"FAIL {rel} includes {target}: the server uses the library only "
                              f"through include/segloss/")
                        failed += 1
                        continue
                    if theirs is None or theirs == mine or RANK[theirs] < RANK[mine]:
                        passed += 1
                        continue
                    if (rel, target) in KNOWN_DEBTS:
                        seen_debts.add((rel, target))
                        passed += 1
                        continue
                    print(f"FAIL {rel} ({mine}) includes {target} ({theirs}): an include may "
                          f"only point to its own layer or below ({' < '.join(LAYER_ORDER)}; "
                          f"layers of one rank are siblings)")
                    failed += 1
    if os.path.exists(os.path.join(root, "server", "main.c")):
        for debt in sorted(set(KNOWN_DEBTS) - seen_debts):
            print(f"FAIL known debt {debt[0]} -> {debt[1]} is gone: remove it from KNOWN_DEBTS")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
