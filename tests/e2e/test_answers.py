#!/usr/bin/env python3
"""Exact answers and statuses from a real seglossd (issue 12, "memory safety" and "wrong answers
and statuses").

- An empty params part is a 400 that says so (under ASan+UBSan it was a NULL memchr).
- Every error's JSON log line carries the answer's own detail: details written on a stack frame
  that had returned were read by the log line (garbage bytes). Under check-asan the daemon runs
  with detect_stack_use_after_return=1, so such a read aborts it.
- Non-finite logits (+inf anywhere, NaN at [0,0,0,0], -inf) are 422 naming the element, and
  finite logits beyond the accepted range (+-3.39e38 in float32) are 422 stating the range:
  never 413, which is only for sizes.

Ends with 'N passed, N failed'."""
import json
import os
import struct
import time

if "asan" in os.environ.get("BUILD", ""):
    # A detail read from a returned stack frame must abort the daemon, not print garbage.
    opts = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "detect_stack_use_after_return=1"

import harness as h  # noqa: E402  (after ASAN_OPTIONS, which the daemon inherits)
from harness import check  # noqa: E402


def npy(shape, values, descr="<f4"):
    """A .npy file (version 1.0) of the given shape and little-endian dtype."""
    dims = ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    fmt = {"<f4": "f", "<f8": "d", "<i8": "q", "<u2": "H"}[descr]
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() +
            struct.pack("<%d%s" % (len(values), fmt), *values))


def post(d, parts, query=""):
    ctype, body = h.multipart(parts)
    return h.request(d, "POST", "/v1/evaluate" + query, body=body,
                     headers={"Content-Type": ctype})


def log_lines(d):
    out = {}
    for line in d.log_text().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("msg") == "request":
            out[doc.get("request_id")] = doc
    return out


def detail_of(body):
    try:
        return json.loads(body).get("detail", "")
    except ValueError:
        return ""


C, H, W = 3, 4, 4
MASK = npy((1, H, W), [1] * (H * W), "<i8")


def logits_with(index, value, base=0.5, descr="<f4"):
    vals = [base] * (C * H * W)
    vals[index] = value
    return npy((1, C, H, W), vals, descr)


def test_empty_params(d, answered):
    status, headers, body = post(d, [("logits", logits_with(0, 0.5), "l.npy"),
                                     ("mask", MASK, "m.npy"), ("params", b"", None)])
    why = h.problem_ok(status, headers, body, 400, strict=True)
    check("empty params part: 400", not why, why)
    check("empty params part: says it is empty", "params part is empty" in detail_of(body),
          detail_of(body))
    answered.append((headers.get("x-request-id"), status, detail_of(body)))


def test_nonfinite(d, answered):
    # (name, logits, wanted status, text the detail must hold)
    cases = [
        ("+inf at [0, 1, 1, 1]", logits_with(16 + 5, float("inf")), 422,
         "logits[0, 1, 1, 1] is +infinity"),
        ("+inf at [0, 0, 0, 0]", logits_with(0, float("inf")), 422,
         "logits[0, 0, 0, 0] is +infinity"),
        ("NaN at [0, 0, 0, 0]", logits_with(0, float("nan")), 422, "logits[0, 0, 0, 0] is NaN"),
        ("NaN at [0, 2, 3, 3]", logits_with(47, float("nan")), 422,
         "logits[0, 2, 3, 3] is NaN"),
        ("-inf at [0, 2, 0, 1]", logits_with(33, float("-inf")), 422,
         "logits[0, 2, 0, 1] is -infinity"),
        ("3.39e38 float32", logits_with(0, 3.39e38, base=-3.39e38), 422,
         "logits[0, 0, 0, 0] is 3.39e+38"),
        ("-3.39e38 float64", logits_with(7, -3.39e38, descr="<f8"), 422,
         "logits[0, 0, 1, 3] is -3.39e+38"),
    ]
    for name, logits, want, text in cases:
        status, headers, body = post(d, [("logits", logits, "l.npy"), ("mask", MASK, "m.npy")])
        why = h.problem_ok(status, headers, body, want, strict=True)
        check(f"{name}: {want}", not why, why)
        det = detail_of(body)
        check(f"{name}: the detail names the element", text in det, det)
        if "e+38" in text:
            check(f"{name}: the detail states the range", "logits must be within" in det, det)
        answered.append((headers.get("x-request-id"), status, det))
    # run= goes through the store's hook too: same answer
    status, headers, body = post(d, [("logits", logits_with(5, float("inf")), "l.npy"),
                                     ("mask", MASK, "m.npy")], "?run=inf-run")
    check("+inf with run=: 422", status == 422, f"{status} {body[:200]!r}")
    answered.append((headers.get("x-request-id"), status, detail_of(body)))


def test_log_details(d, answered):
    """The log line of every error carries the answer's detail, byte for byte."""
    for method, path in [("GET", "/no/such/route"), ("DELETE", "/v1/info")]:
        status, headers, body = h.request(d, method, path)
        answered.append((headers.get("x-request-id"), status, detail_of(body)))
    status, headers, body = post(d, [("logits", logits_with(0, 0.5), "l.npy"),
                                     ("mask", MASK, "m.npy")], "?gamma=x")
    answered.append((headers.get("x-request-id"), status, detail_of(body)))
    time.sleep(0.3)  # the line is written once the answer is out
    lines = log_lines(d)
    for rid, status, det in answered:
        line = lines.get(rid)
        check(f"log line of {status} {det[:40]!r}: same detail",
              line is not None and line.get("detail") == det and line.get("status") == status,
              f"answer {det!r}, log {line!r}")


def main():
    h.install_watchdog(300)
    d = h.Daemon("answers")
    if not check("daemon starts", d.wait_ready(), d.tail()):
        h.finish()
    answered = []
    test_empty_params(d, answered)
    test_nonfinite(d, answered)
    test_log_details(d, answered)
    check("daemon still alive", d.proc.poll() is None, d.tail(20))
    h.finish()


if __name__ == "__main__":
    main()
