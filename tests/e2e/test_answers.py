#!/usr/bin/env python3
r"""Exact answers and statuses from a real seglossd (issue 12, "memory safety" and "wrong answers
and statuses").

- An empty params part is a 400 that says so (under ASan+UBSan it was a NULL memchr).
- Every error's JSON log line carries the answer's own detail: details written on a stack frame
  that had returned were read by the log line (garbage bytes). Under check-asan the daemon runs
  with detect_stack_use_after_return=1, so such a read aborts it.
- Non-finite logits (+inf anywhere, NaN at [0,0,0,0], -inf) are 422 naming the element, and
  finite logits beyond the accepted range (+-3.39e38 in float32) are 422 stating the range:
  never 413, which is only for sizes.
- Integers are parsed as integers: step 9007199254740993 is a 400 (it was stored as ...992);
  2^53 - 1 is stored exactly. An upper-case evaluation id finds its evaluation.
- UTF-8: every answer body is valid UTF-8 JSON, also when the query echoes %FF; class names
  that are not UTF-8, or hold \u0000, are refused; non-ASCII names come back intact.
- 1024 class names of 64 characters (both documented maxima, written with \u escapes as
  Python's json.dumps does) fit the default --max-params-bytes.

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


def strict_json(body):
    """The document, or None when body is not valid UTF-8 JSON."""
    try:
        return json.loads(body.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError):
        return None


def test_integers_and_ids(d, answered):
    ok_parts = [("logits", logits_with(0, 0.5), "l.npy"), ("mask", MASK, "m.npy")]
    for where, query, params in [
            ("params part", "?run=ints", {"step": 9007199254740993}),
            ("query", "?run=ints&step=9007199254740993", None)]:
        parts = ok_parts + ([("params", json.dumps(params).encode(), None)] if params else [])
        status, headers, body = post(d, parts, query)
        check(f"step 2^53 + 1 in the {where}: 400", status == 400 and
              "step must be an integer from 0 to 9007199254740991" in detail_of(body),
              f"{status} {body[:200]!r}")
        answered.append((headers.get("x-request-id"), status, detail_of(body)))
    status, _, body = post(d, ok_parts, "?run=ints&step=9007199254740991")
    check("step 2^53 - 1: 200", status == 200, f"{status} {body[:200]!r}")
    eid = json.loads(body)["id"] if status == 200 else "0"
    status, _, body = h.request(d, "GET", "/v1/runs/ints/history?key=loss.ce")
    doc = strict_json(body) or {}
    steps = [p.get("step") for p in doc.get("points", doc.get("history", []))] \
        if isinstance(doc, dict) else []
    check("step 2^53 - 1 stored exactly", b"9007199254740991" in body and
          b"9007199254740992" not in body, f"{steps} {body[:300]!r}")
    status, _, lower = h.request(d, "GET", f"/v1/evaluations/{eid}")
    status_up, _, upper = h.request(d, "GET", f"/v1/evaluations/{eid.upper()}")
    check("upper-case evaluation id: same answer as lower-case", status == 200 and
          status_up == 200 and upper == lower, f"{status} {status_up} {upper[:200]!r}")
    status, _, png = h.request(d, "GET", f"/v1/evaluations/{eid}/overlay.png")
    status_up, _, png_up = h.request(d, "GET", f"/v1/evaluations/{eid.upper()}/overlay.png")
    check("upper-case evaluation id: same overlay as lower-case",
          status == 200 and status_up == 200 and png == png_up, f"{status} {status_up}")
    for path in ["/v1/runs?max_results=%2B5", "/v1/runs?max_results=%205",
                 "/v1/runs?max_results=0x10"]:
        status, headers, body = h.request(d, "GET", path)
        check(f"{path}: 400", status == 400, f"{status} {body[:200]!r}")


def test_utf8(d, answered):
    ok_parts = [("logits", logits_with(0, 0.5), "l.npy"), ("mask", MASK, "m.npy")]
    for method, path in [("GET", "/v1/runs?max_results=%FF"),
                         ("GET", "/v1/runs?max_results=1%C3"),
                         ("GET", "/v1/runs/ints/history?key=%FF"),
                         ("GET", "/v1/runs/ints/history?key=" + "%C3%A9" * 40),
                         ("GET", "/v1/runs/ints/history?format=%E7%8C"),
                         ("GET", "/v1/evaluations/%FF%FE")]:
        status, headers, body = h.request(d, method, path)
        doc = strict_json(body)
        check(f"{path}: {status} with a valid UTF-8 JSON body", status in (400, 404) and
              doc is not None, f"{status} {body[:200]!r}")
    for name, parts, query in [
            ("unknown query key %FF%FE", ok_parts, "?%FF%FE=1"),
            ("gamma=%FF", ok_parts, "?gamma=%FF"),
            ("class_names=a,%FF,c", ok_parts, "?class_names=a,%FF,c"),
            ("class name not UTF-8",
             ok_parts + [("params", b'{"class_names": ["a", "b\xff", "c"]}', None)], ""),
            ("class name a\\u0000b",
             ok_parts + [("params", b'{"class_names": ["a\\u0000b", "b", "c"]}', None)],
             "?run=nul-names"),
            ("unknown JSON key not UTF-8",
             ok_parts + [("params", b'{"\xff\xfe": 1}', None)], "")]:
        status, headers, body = post(d, parts, query)
        check(f"{name}: 400 with a valid UTF-8 JSON body",
              status == 400 and strict_json(body) is not None, f"{status} {body[:200]!r}")
        answered.append((headers.get("x-request-id"), status, detail_of(body)))
    status, _, _ = h.request(d, "GET", "/v1/runs/nul-names")
    check("a refused class name records nothing", status == 404, str(status))
    names = ["ciel \u00e9toil\u00e9", "\u732b", "\U0001F600 face"]
    status, _, body = post(d, ok_parts + [("params", json.dumps(
        {"class_names": names}).encode(), None)], "?run=utf8-names")
    check("non-ASCII class names: 200", status == 200, f"{status} {body[:200]!r}")
    status, _, body = h.request(d, "GET", "/v1/runs/utf8-names")
    doc = strict_json(body)
    check("GET /v1/runs/{run}: valid UTF-8 JSON with the names intact",
          doc is not None and doc.get("class_names") == names, f"{body[:300]!r}")


def test_class_name_maxima(d):
    """1024 names of 64 characters, each written as \\uXXXX escapes (json.dumps' default
    for non-ASCII), plus class_weights and alpha with 1024 full-precision numbers each."""
    classes = 1024
    logits = npy((1, classes, 1, 2), [0.25 * (i % 7) for i in range(classes * 2)])
    mask = npy((1, 1, 2), [3, 1000], "<i8")
    names = [("%04d" % i) + "\u00e9" * 60 for i in range(classes)]
    params = json.dumps({"class_names": names,
                         "class_weights": [1 / 3 + i * 1e-9 for i in range(classes)],
                         "alpha": [2 / 3 + i * 1e-9 for i in range(classes)]}).encode()
    h.note(f"params part of {len(params)} bytes")
    status, _, body = post(d, [("logits", logits, "l.npy"), ("mask", mask, "m.npy"),
                               ("params", params, None)], "?run=maxima")
    check("1024 class names of 64 characters fit the default --max-params-bytes",
          status == 200, f"{status} {body[:200]!r}")
    status, _, body = h.request(d, "GET", "/v1/runs/maxima")
    doc = strict_json(body) or {}
    check("the 1024 names are stored intact", doc.get("class_names") == names,
          f"{status} {body[:200]!r}")
    names[5] += "x"
    params = json.dumps({"class_names": names}).encode()
    status, _, body = post(d, [("logits", logits, "l.npy"), ("mask", mask, "m.npy"),
                               ("params", params, None)])
    check("a 65-character class name: 400 naming it", status == 400 and
          "class_names[5]" in detail_of(body), f"{status} {body[:200]!r}")


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
    test_integers_and_ids(d, answered)
    test_utf8(d, answered)
    test_class_name_maxima(d)
    test_log_details(d, answered)
    check("daemon still alive", d.proc.poll() is None, d.tail(20))
    h.finish()


if __name__ == "__main__":
    main()
