#!/usr/bin/env python3
"""Checks seglossd answers against the golden parity cases in tests/golden.

  golden_check.py --cases tests/golden --cli build/seglossd        # offline: seglossd eval
  golden_check.py --cases tests/golden --url http://127.0.0.1:8080  # a running daemon (curl)

Each case folder holds logits.npy or logits.safetensors, mask_<i>.png (in batch order) or
mask.npy, params.json and expected.json. Every number must be within
1e-6 * max(|expected|, 1e-3); integers, strings and nulls must match exactly (the tolerance of
tests/golden/README.md). The answer must also carry the keys of docs/ARCHITECTURE.md §5.3 (id, shape,
num_classes, pixels, loss, per_class, metrics, params, timing), whatever expected.json lists.

Prints one line per case and ends with 'N passed, N failed'; exits 0 only when all pass.
Standard library and curl only."""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

TOLERANCE = 1e-6
FLOOR = 1e-3
ANSWER_KEYS = {
    "id": str, "shape": dict, "num_classes": int, "pixels": dict, "loss": dict,
    "per_class": dict, "metrics": dict, "params": dict, "timing": dict,
}
TIMING_KEYS = ("decode_ms", "compute_ms", "total_ms")


def compare(got, exp, path, errors):
    """Appends to errors every place where got differs from exp beyond the tolerance."""
    if isinstance(exp, dict):
        if not isinstance(got, dict):
            errors.append(f"{path}: expected an object, got {type(got).__name__}")
            return
        for key, value in exp.items():
            if key not in got:
                errors.append(f"{path}.{key}: missing")
            else:
                compare(got[key], value, f"{path}.{key}", errors)
    elif isinstance(exp, list):
        if not isinstance(got, list) or len(got) != len(exp):
            errors.append(f"{path}: expected a list of {len(exp)}, got {got!r:.80}")
            return
        for i, (g, e) in enumerate(zip(got, exp)):
            compare(g, e, f"{path}[{i}]", errors)
    elif exp is None or isinstance(exp, (bool, str)):
        if got != exp or type(got) is not type(exp):
            errors.append(f"{path}: expected {exp!r}, got {got!r}")
    elif isinstance(exp, int):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != exp:
            errors.append(f"{path}: expected {exp}, got {got!r}")
    else:
        if isinstance(got, bool) or not isinstance(got, (int, float)) or math.isnan(got) \
                or abs(got - exp) > TOLERANCE * max(abs(exp), FLOOR):
            errors.append(f"{path}: expected {exp!r}, got {got!r}")


def check_shape_of_answer(got, errors):
    for key, kind in ANSWER_KEYS.items():
        if not isinstance(got.get(key), kind) or isinstance(got.get(key), bool):
            errors.append(f"$.{key}: missing or not {kind.__name__}")
    timing = got.get("timing") or {}
    for key in TIMING_KEYS:
        value = timing.get(key)
        if not isinstance(value, (int, float)) or value < 0:
            errors.append(f"$.timing.{key}: missing or negative")


def case_inputs(case):
    files = sorted(os.listdir(case))
    logits = [f for f in files if f.startswith("logits.")]
    if len(logits) != 1:
        raise ValueError("a case needs exactly one logits.* file")

    def mask_index(name):
        stem = name.split(".")[0]
        return int(stem.split("_")[1]) if "_" in stem else 0

    masks = sorted((f for f in files if f.startswith("mask")), key=mask_index)
    with open(os.path.join(case, "params.json")) as f:
        params = json.load(f)
    with open(os.path.join(case, "expected.json")) as f:
        expected = json.load(f)
    if "confusion_matrix" in expected:
        params = dict(params, confusion_matrix=True)
    return logits[0], masks, params, expected


def run_case(case, args, tmpdir):
    logits, masks, params, expected = case_inputs(case)
    params_file = os.path.join(tmpdir, "params.json")
    with open(params_file, "w") as f:
        json.dump(params, f)
    if args.cli:
        cmd = [args.cli, "eval", "--logits", os.path.join(case, logits)]
        for m in masks:
            cmd += ["--mask", os.path.join(case, m)]
        cmd += ["--params", params_file]
    else:
        cmd = ["curl", "-sS", "--max-time", "60", "-F", f"logits=@{os.path.join(case, logits)}"]
        for m in masks:
            cmd += ["-F", f"mask=@{os.path.join(case, m)}"]
        cmd += ["-F", f"params=<{params_file};type=application/json",
                args.url.rstrip("/") + "/v1/evaluate"]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    try:
        got = json.loads(proc.stdout)
    except ValueError:
        return [f"not JSON (exit {proc.returncode}): {proc.stdout[:200]!r} {proc.stderr[:300]!r}"]
    if proc.returncode != 0:
        return [f"exit status {proc.returncode}: {proc.stderr[:300]!r}"]
    errors = []
    check_shape_of_answer(got, errors)
    compare(got, expected, "$", errors)
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", required=True)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--cli")
    mode.add_argument("--url")
    ap.add_argument("-v", action="store_true", help="print every mismatch")
    args = ap.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="golden_check_") as tmpdir:
        for name in sorted(os.listdir(args.cases)):
            case = os.path.join(args.cases, name)
            if not os.path.isdir(case):
                continue
            try:
                errors = run_case(case, args, tmpdir)
            except Exception as e:  # a hung or missing binary fails that case only
                errors = [f"{type(e).__name__}: {e}"]
            if errors:
                failed += 1
                shown = errors if args.v else errors[:3]
                more = "" if args.v or len(errors) <= 3 else f" (+{len(errors) - 3} more)"
                print(f"FAIL {name}: " + "; ".join(shown) + more)
            else:
                passed += 1
                print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
