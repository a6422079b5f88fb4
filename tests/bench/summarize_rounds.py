#!/usr/bin/env python3
"""Summarises the rounds tests/bench/run_bench.sh collected: one line per row and round,
`<round> <row> <ms> <cpu/wall>`. Every ratio is taken within one round (the row against its
floor or peer measured minutes apart at most, under the same load), and the table gives its
range over the rounds, never one lucky run.

The second file holds bench_loss's `scaling` lines, `<round> <kernel> <kernel's 2-thread
speed-up> <its ISA's FMA loop's> <the first over the second>`, each speed-up the median of that
round's alternating 1- and 2-thread runs; a second table gives their range and median over the
rounds.

Usage: summarize_rounds.py ROUNDS_FILE [SCALING_FILE]"""
import statistics
import sys

KERNELS = ("avx512", "avx2", "scalar")


def lines_of(path, fields):
    """The lines of path that have `fields` fields, split (the round number first)."""
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == fields:
                yield parts


def spread(vals):
    """min-max (median) of a list of ratios."""
    return f"{min(vals):.2f}-{max(vals):.2f} ({statistics.median(vals):.2f})"


def load(path):
    rounds = {}
    for parts in lines_of(path, 4):
        rounds.setdefault(int(parts[0]), {})[parts[1]] = (float(parts[2]), float(parts[3]))
    return rounds


def ratios(rnd):
    """(row, ratio, what the ratio is) for one round; None where a row has no peer."""
    ms = {name: v[0] for name, v in rnd.items()}
    floor = min(ms.get("floor_1t", 1e30), ms.get("floor_2t", 1e30))
    best = next((k for k in KERNELS if f"{k}_2t" in ms), None)
    def fma_speedup(isa):
        """The FMA loop's 2-thread speed-up in isa's instructions ("" the plain one)."""
        one, two = f"fma{isa}_1t", f"fma{isa}_2t"
        return ms[one] / ms[two] if one in ms and two in ms else None

    out = []
    for name, t in ms.items():
        one = name[:-3] + "_1t"
        if name.startswith("torch_"):
            n = name.split("_")[1]
            peer = ms.get(f"{best}_{n}") if best else None
            out.append((name, t / peer if peer else None, f"x segloss {best} at {n}"))
        elif name == "floor_1t" or (name.startswith("fma") and name.endswith("_1t")) or \
                "_cached_1t" in name:
            out.append((name, None, ""))
        elif name.endswith("_2t") and one in ms:
            speedup = ms[one] / t
            out.append((name, speedup, "2 threads' speed-up over 1"))
            if name.startswith(KERNELS) and "_cached" not in name:
                out.append((name, t / floor, "x memory floor"))
            if name.startswith(KERNELS):
                isa = name.split("_")[0]
                # the kernel's own ISA's loop where there is one (not for scalar), else the plain
                peer, what = fma_speedup(f"_{isa}"), f"the {isa} FMA loop's"
                if not peer:
                    peer, what = fma_speedup(""), "the FMA loop's"
                if peer:
                    out.append((name, speedup / peer, f"that speed-up / {what}"))
        else:
            out.append((name, t / floor, "x memory floor"))
    return out


def main():
    rounds = load(sys.argv[1])
    if not rounds:
        print("no rounds")
        return
    rows, what = {}, {}
    order = []
    for r in sorted(rounds):
        for name, ratio, desc in ratios(rounds[r]):
            if (name, desc) not in what:
                what[(name, desc)] = desc
                order.append((name, desc))
            rows.setdefault((name, desc), []).append(ratio)
    print(f"| row | ms, median of {len(rounds)} rounds (min-max) | cpu/wall (min-max) | "
          "ratio in the same round, min-max (median) | ratio |")
    print("|---|---:|---:|---:|---|")
    for name, desc in order:
        key = name.strip()
        ms = [rounds[r][key][0] for r in sorted(rounds) if key in rounds[r]]
        busy = [rounds[r][key][1] for r in sorted(rounds) if key in rounds[r]]
        vals = [v for v in rows[(name, desc)] if v is not None]
        rng = spread(vals) if vals else ""
        cpu = f"{min(busy):.2f}-{max(busy):.2f}" if max(busy) > 0 else "-"
        print(f"| {key} | {statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f}) | {cpu} | "
              f"{rng} | {desc} |")

    if len(sys.argv) > 2:
        scaling(sys.argv[2])


def scaling(path):
    """The run-by-run 2-thread speed-ups (bench_loss.c time_scaling), per kernel."""
    per_kernel = {}
    for parts in lines_of(path, 5):
        per_kernel.setdefault(parts[1], []).append([float(v) for v in parts[2:]])
    if not per_kernel:
        return
    print()
    print("2 threads over 1, run by run: each round's median of its alternating 1- and 2-thread"
          " runs; the FMA loop in the kernel's own instructions, as long as its run")
    print()
    print("| kernel | rounds | kernel's speed-up, min-max (median) | FMA loop's | kernel's / loop's |")
    print("|---|---:|---:|---:|---:|")
    for kernel, rows in per_kernel.items():
        cells = [spread([r[col] for r in rows]) for col in range(3)]
        print(f"| {kernel} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
