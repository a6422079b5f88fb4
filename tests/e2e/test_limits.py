#!/usr/bin/env python3
"""The configured shape limits reach every check, the library's included (issue 13).

`--max-classes 2048` used to be accepted by the flag and the decoders and then refused by
segloss_evaluate, which checked the compiled-in default of 1024. Here a daemon started with
`--max-classes 2048` evaluates a 2048-class request end to end: the answer, the run it was
recorded under (C > 255 keeps its class maps as RGB PNGs) and the overlay drawn from them. A
default daemon still refuses the same request with 413 naming the limit, a lowered
`--max-classes` refuses what the default accepts, and a flag above the ceiling (4096) is a
start-up error that says the range.

Ends with 'N passed, N failed'."""
import array
import json
import random
import subprocess

import harness as h
from harness import check

C, H, W = 2048, 8, 16


class Tensor:
    """A C-ordered array as a .npy (version 1) would hold it: dtype, shape, flat values."""

    def __init__(self, descr, typecode, shape, values):
        self.descr, self.shape = descr, shape
        self.values = array.array(typecode, values)

    def npy(self):
        header = f"{{'descr': '{self.descr}', 'fortran_order': False, 'shape': {self.shape}, }}"
        header += " " * (63 - (10 + len(header)) % 64) + "\n"
        return (b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() +
                self.values.tobytes())


def batch(c, hh=H, ww=W):
    """Logits (1, c, hh, ww) of small random values and uint16 labels; every other pixel's
    true class gets +50, so half the pixels are right and the metrics are not all zero."""
    rnd = random.Random(7)
    plane = hh * ww
    labels = [rnd.randrange(c) for _ in range(plane)]
    logits = [rnd.uniform(-1, 1) for _ in range(c * plane)]
    for p in range(0, plane, 2):
        logits[labels[p] * plane + p] += 50.0
    return (Tensor("<f4", "f", (1, c, hh, ww), logits),
            Tensor("<u2", "H", (1, hh, ww), labels))


def accuracy(logits, labels):
    c, plane = logits.shape[1], len(labels.values)
    right = 0
    for p in range(plane):
        column = [logits.values[k * plane + p] for k in range(c)]
        right += column.index(max(column)) == labels.values[p]
    return right / plane


def post(d, logits, labels, query=""):
    ctype, body = h.multipart([("logits", logits.npy(), "l.npy"), ("mask", labels.npy(), "m.npy")])
    return h.request(d, "POST", "/v1/evaluate" + query, body=body,
                     headers={"Content-Type": ctype}, timeout=120)


def main():
    h.install_watchdog(300)
    logits, labels = batch(C)

    wide = h.Daemon("limits-wide", extra=["--max-classes", str(C)])
    check("a daemon with --max-classes 2048 starts", wide.wait_ready(), wide.tail())
    status, _, body = h.request(wide, "GET", "/v1/info")
    info = json.loads(body) if status == 200 else {}
    check("/v1/info reports max_classes 2048",
          info.get("limits", {}).get("max_classes") == C, body[:300])
    status, _, body = post(wide, logits, labels, "?run=wide&step=1")
    ans = json.loads(body) if status == 200 else {}
    check("a 2048-class request is evaluated (200)", status == 200, body[:300])
    if status == 200:
        check("the answer has 2048 classes", ans["num_classes"] == C and
              len(ans["per_class"]["iou"]) == C, str(ans.get("shape")))
        want = accuracy(logits, labels)
        check("its accuracy is the arg-max's", abs(ans["metrics"]["accuracy"] - want) < 1e-12,
              f'{ans["metrics"]["accuracy"]} vs {want}')
        status, _, body = h.request(wide, "GET", "/v1/runs/wide")
        check("the run was recorded", status == 200 and b'"wide"' in body, body[:200])
        status, hdrs, body = h.request(wide, "GET", f"/v1/evaluations/{ans['id']}/overlay.png")
        check("its overlay renders (200 image/png)", status == 200 and
              hdrs.get("content-type") == "image/png" and body[:4] == b"\x89PNG", body[:200])

    narrow = h.Daemon("limits-default")
    check("a default daemon starts", narrow.wait_ready(), narrow.tail())
    status, hdrs, body = post(narrow, logits, labels)
    check("the default daemon refuses 2048 classes with 413 naming the limit",
          status == 413 and b"1024" in body, f"{status} {body[:300]}")

    low = h.Daemon("limits-low", extra=["--max-classes", "16"])
    check("a daemon with --max-classes 16 starts", low.wait_ready(), low.tail())
    small_logits, small_labels = batch(21, 4, 4)
    status, _, body = post(low, small_logits, small_labels)
    check("--max-classes 16 refuses 21 classes (413)", status == 413 and b"16" in body,
          f"{status} {body[:300]}")
    status, _, body = post(low, small_logits, small_labels, "?num_classes=21")
    check("--max-classes 16 bounds num_classes in the query too (400)", status == 400,
          f"{status} {body[:300]}")

    p = subprocess.run([h.DAEMON, "serve", "--max-classes", "4097", "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    check("--max-classes above 4096 is a start-up error that says the range",
          p.returncode != 0 and "4096" in p.stderr, p.stderr[-300:])
    h.finish()


if __name__ == "__main__":
    main()
