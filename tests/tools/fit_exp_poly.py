#!/usr/bin/python3
"""Fits the polynomial and the table of lib/loss/kernel_avx2.c's exp_nonpositive.

The kernel reduces x to |r| <= ln2/(2*TABLE) with a TABLE-entry table of 2^(j/TABLE) and
approximates e^r by 1 + r*(c1 + c2 r + c3 r^2 ...) of DEGREE; the coefficients minimise the
largest relative error (Lawson's iteratively reweighted least squares) and are then evaluated
the way the kernel does (float32 coefficients, float32 Horner steps) to report the error it
gets. Needs numpy (Debian: python3-numpy); not used by `make check`.
"""
import numpy as np


DEGREE = 3
TABLE = 8


def fit(degree=DEGREE, nodes=4000, rounds=300):
    half = np.log(2.0) / 2 / TABLE
    r = np.cos(np.linspace(0.0, np.pi, nodes)) * half
    f = np.exp(r)
    basis = np.stack([r ** k for k in range(1, degree + 1)], axis=1) / f[:, None]
    target = (f - 1.0) / f
    weight = np.full(nodes, 1.0 / nodes)
    for _ in range(rounds):
        root = np.sqrt(weight)
        coef, *_ = np.linalg.lstsq(basis * root[:, None], target * root, rcond=None)
        err = np.abs(basis @ coef - target)
        weight = weight * err
        weight /= weight.sum()
    return coef


def float32_error(coef):
    half = np.log(2.0) / 2 / TABLE
    r = np.linspace(-half, half, 200001)
    c = np.float32(coef)
    p = np.float64(c[-1])
    for k in range(len(c) - 2, -1, -1):
        p = np.float64(np.float32(p * r + np.float64(c[k])))
    p = np.float32(p * r + 1.0)
    return float(np.max(np.abs(p / np.exp(r) - 1.0)))


if __name__ == "__main__":
    coef = fit()
    for k, c in enumerate(coef, start=1):
        print(f"c{k} = {float(np.float32(c))!r}")
    print(f"largest relative error, float32 evaluation: {float32_error(coef):.3g}")
    table = ", ".join(repr(float(np.float32(2.0 ** (j / TABLE)))) for j in range(TABLE))
    print(f"table 2^(j/{TABLE}): {table}")
    print(f"{TABLE}/ln2 = {float(np.float32(TABLE / np.log(2.0)))!r}, "
          f"ln2/{TABLE} = {float(np.float32(np.log(2.0) / TABLE))!r}")
