#!/usr/bin/env python3
"""End-to-end tests of the Open Inference Protocol v2 front door (KServe / Triton REST).

Starts build/seglossd (or $BUILD/seglossd) on a free 127.0.0.1 port and checks: the metadata
and health routes; every golden case of tests/golden and tests/golden_extra posted to
POST /v1/evaluate and to POST /v2/models/segloss/infer with the binary tensor extension (and,
for the small ones, as JSON, flat or nested) - the same numbers (1e-6 relative, with an absolute
floor of 1e-9; FP32 outputs are float32 roundings of the /v1 float64 numbers, well inside that;
null in /v1 is null in JSON and NaN in binary); a chunked binary body; the class_weights input;
a result recorded under a run; malformed requests (header length past the body,
binary_data_size against shape x datatype, unknown datatype, missing input, shape/element
mismatch, wrong types, bad JSON, over the body limit) answered with a 4xx JSON body carrying
`error`, after which the daemon still answers; and api/examples/oip_binary.py (when a python3
with numpy is found).

Standard library only (struct, zlib, json, http.client): the .npy, safetensors and PNG inputs of
the golden cases are read here. Every daemon started here is stopped on exit, on failure and by
a watchdog alarm. Prints one line per check and ends with 'N passed, N failed'."""
import http.client
import json
import math
import os
import socket
import struct
import subprocess
import sys
import zlib

import harness as h
from harness import check, finish, multipart, read_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DAEMON = h.DAEMON
CASE_DIRS = [os.path.join(ROOT, "tests", "golden"), os.path.join(ROOT, "tests", "golden_extra")]
EXAMPLE = os.path.join(ROOT, "api", "examples", "oip_binary.py")
WATCHDOG_S = 300
MAX_BODY_MB = 8
JSON_MAX_ELEMENTS = 20000     # cases up to this many logits are also sent as JSON
TOLERANCE = 1e-6
FLOOR = 1e-3
INFER = "/v2/models/segloss/infer"


def Daemon(name):
    """A daemon of harness.py with this test's body limit."""
    return h.Daemon(name, ["--max-body-mb", str(MAX_BODY_MB), "--threads", "2", "--workers", "2"])


def request(d, method, path, body=None, headers=None, timeout=60, chunked=False):
    return h.request(d, method, path, body, headers, timeout, chunked)


# ---- readers for the golden inputs (standard library) -------------------------------------

NPY_TYPES = {"<f4": ("FP32", "f", 4), "<f2": ("FP16", "e", 2), "<f8": ("FP64", "d", 8),
             "|u1": ("UINT8", "B", 1), "<u2": ("UINT16", "H", 2), "<i4": ("INT32", "i", 4),
             "<i8": ("INT64", "q", 8), "|i1": ("INT8", "b", 1)}
ST_TYPES = {"F32": ("FP32", "f", 4), "F16": ("FP16", "e", 2), "BF16": ("BF16", None, 2),
            "F64": ("FP64", "d", 8)}


class Tensor:
    """Raw little-endian C-order bytes, the OIP datatype and shape."""

    def __init__(self, datatype, shape, raw, fmt):
        self.datatype, self.shape, self.raw, self.fmt = datatype, list(shape), raw, fmt

    def count(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def values(self):
        """Python numbers (exact: every datatype's value is a float64 or an int)."""
        n = self.count()
        if self.fmt is None:  # bfloat16: the top half of a float32
            halves = struct.unpack(f"<{n}H", self.raw)
            return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
        return list(struct.unpack(f"<{n}{self.fmt}", self.raw))


def fortran_to_c(raw, shape, size):
    """Reorders a Fortran-ordered array's bytes into C order."""
    n = 1
    for s in shape:
        n *= s
    out = bytearray(len(raw))
    rank = len(shape)
    for c_index in range(n):
        rem, idx = c_index, [0] * rank
        for d in range(rank - 1, -1, -1):
            idx[d] = rem % shape[d]
            rem //= shape[d]
        f_index, stride = 0, 1
        for d in range(rank):
            f_index += idx[d] * stride
            stride *= shape[d]
        out[c_index * size:(c_index + 1) * size] = raw[f_index * size:(f_index + 1) * size]
    return bytes(out)


def read_npy(data):
    major = data[6]
    if major == 1:
        hlen, start = struct.unpack("<H", data[8:10])[0], 10
    else:
        hlen, start = struct.unpack("<I", data[8:12])[0], 12
    header = eval(data[start:start + hlen].decode("latin1"))  # a Python literal dict
    datatype, fmt, size = NPY_TYPES[header["descr"]]
    shape = list(header["shape"])
    raw = data[start + hlen:]
    if header["fortran_order"]:
        raw = fortran_to_c(raw, shape, size)
    return Tensor(datatype, shape, raw, fmt)


def read_safetensors(data, name="logits"):
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    t = header[name]
    datatype, fmt, _ = ST_TYPES[t["dtype"]]
    begin, end = t["data_offsets"]
    return Tensor(datatype, t["shape"], data[8 + n + begin:8 + n + end], fmt)


def read_png_mask(data):
    """8- or 16-bit grey or palette, not interlaced: (width, height, bit depth, rows)."""
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = ihdr
    if depth not in (8, 16) or colour not in (0, 3) or interlace:
        raise ValueError(f"PNG depth {depth} colour {colour} interlace {interlace}")
    bpp = depth // 8
    stride = width * bpp
    raw = zlib.decompress(idat)
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, depth, rows


def case_tensors(case):
    """(logits Tensor, labels Tensor, params dict, multipart parts for /v1)."""
    files = sorted(os.listdir(case))
    parts = []
    lname = [f for f in files if f.startswith("logits.")][0]
    ldata = read_file(os.path.join(case, lname))
    parts.append(("logits", ldata, lname))
    logits = read_safetensors(ldata) if lname.endswith(".safetensors") else read_npy(ldata)
    if len(logits.shape) == 3:
        logits.shape = [1] + logits.shape
    params = json.loads(read_file(os.path.join(case, "params.json")) or b"{}")
    masks = sorted((f for f in files if f.startswith("mask")),
                   key=lambda f: int(f.split(".")[0].split("_")[1]) if "_" in f else 0)
    if masks == ["mask.npy"]:
        mdata = read_file(os.path.join(case, "mask.npy"))
        parts.append(("mask", mdata, "mask.npy"))
        labels = read_npy(mdata)
        if len(labels.shape) == 2:
            labels.shape = [1] + labels.shape
    else:
        raw, dims, wide = bytearray(), None, False
        for m in masks:
            mdata = read_file(os.path.join(case, m))
            parts.append(("mask", mdata, m))
            w, h, depth, rows = read_png_mask(mdata)
            dims = (h, w)
            wide = depth == 16
            for row in rows:
                if wide:  # PNG is big-endian; OIP binary data is little-endian
                    vals = struct.unpack(f">{w}H", row)
                    raw += struct.pack(f"<{w}H", *vals)
                else:
                    raw += row
        labels = Tensor("UINT16" if wide else "UINT8", [len(masks), dims[0], dims[1]],
                        bytes(raw), "H" if wide else "B")
    parts.append(("params", json.dumps(params).encode(), None))
    return logits, labels, params, parts


# ---- OIP requests --------------------------------------------------------------------------

OUTPUT_MAP = [  # OIP output -> path in the /v1 answer
    ("ce", ("loss", "ce")), ("focal", ("loss", "focal")), ("dice", ("loss", "dice")),
    ("total", ("loss", "total")), ("dice_per_class", ("per_class", "dice")),
    ("iou_per_class", ("per_class", "iou")), ("f_score_per_class", ("per_class", "f_score")),
    ("precision_per_class", ("per_class", "precision")),
    ("recall_per_class", ("per_class", "recall")),
    ("support_per_class", ("per_class", "support")),
    ("confusion_matrix", ("confusion_matrix",)), ("mean_dice", ("metrics", "mean_dice")),
    ("mean_f_score", ("metrics", "f_score")), ("miou", ("metrics", "miou")),
    ("mpa", ("metrics", "mpa")), ("accuracy", ("metrics", "accuracy")),
]


def binary_request(inputs, parameters, outputs=None, binary_output=True, rid=None):
    """inputs: [(name, Tensor)] -> (body, headers) with every input binary."""
    # Triton's own example request also names the model in the body: it is ignored.
    doc = {"model_name": "segloss", "inputs": [], "parameters": dict(parameters)}
    if rid is not None:
        doc["id"] = rid
    if binary_output:
        doc["parameters"]["binary_data_output"] = True
    if outputs is not None:
        doc["outputs"] = [{"name": o} for o in outputs]
    blobs = []
    for name, t in inputs:
        doc["inputs"].append({"name": name, "datatype": t.datatype, "shape": t.shape,
                              "parameters": {"binary_data_size": len(t.raw)}})
        blobs.append(t.raw)
    header = json.dumps(doc).encode()
    return header + b"".join(blobs), {"Inference-Header-Content-Length": str(len(header)),
                                      "Content-Type": "application/octet-stream"}


def nest(flat, shape):
    if len(shape) == 1:
        return list(flat)
    step = len(flat) // shape[0]
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def json_request(inputs, parameters, outputs=None, nested=False, rid=None):
    doc = {"inputs": [], "parameters": dict(parameters)}
    if rid is not None:
        doc["id"] = rid
    if outputs is not None:
        doc["outputs"] = [{"name": o} for o in outputs]
    for name, t in inputs:
        vals = t.values()
        doc["inputs"].append({"name": name, "datatype": t.datatype, "shape": t.shape,
                              "data": nest(vals, t.shape) if nested else vals})
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def parse_answer(status, headers, body):
    """{name: [values]} from a JSON or binary answer (NaN -> None)."""
    hlen = headers.get("inference-header-content-length")
    json_part = body[:int(hlen)] if hlen is not None else body
    doc = json.loads(json_part)
    pos = int(hlen) if hlen is not None else 0
    out = {}
    for o in doc["outputs"]:
        bsize = (o.get("parameters") or {}).get("binary_data_size")
        if bsize is None:
            out[o["name"]] = o["data"]
            continue
        raw = body[pos:pos + bsize]
        pos += bsize
        if o["datatype"] == "FP32":
            vals = list(struct.unpack(f"<{bsize // 4}f", raw))
            out[o["name"]] = [None if math.isnan(v) else v for v in vals]
        else:
            out[o["name"]] = list(struct.unpack(f"<{bsize // 8}q", raw))
    if hlen is not None and pos != len(body):
        raise ValueError(f"{len(body) - pos} bytes after the binary outputs")
    return doc, out


def compare(v1, outs, names=None):
    """Differences between the /v1 answer and the OIP outputs."""
    errors = []
    for name, path in OUTPUT_MAP:
        if names is not None and name not in names:
            continue
        if name not in outs:
            errors.append(f"{name}: missing")
            continue
        want = v1
        for key in path:
            want = want[key]
        if isinstance(want, list) and want and isinstance(want[0], list):
            want = [x for row in want for x in row]
        if not isinstance(want, list):
            want = [want]
        got = outs[name]
        if len(got) != len(want):
            errors.append(f"{name}: {len(got)} values, /v1 has {len(want)}")
            continue
        for i, (g, e) in enumerate(zip(got, want)):
            if e is None or g is None:
                if e is not g:
                    errors.append(f"{name}[{i}]: {g!r} vs /v1 {e!r}")
            elif isinstance(e, int) and not isinstance(e, bool) and name in (
                    "support_per_class", "confusion_matrix"):
                if g != e:
                    errors.append(f"{name}[{i}]: {g} vs /v1 {e}")
            elif abs(g - e) > TOLERANCE * max(abs(e), FLOOR):
                errors.append(f"{name}[{i}]: {g!r} vs /v1 {e!r}")
    return errors[:5]


def v1_answer(d, parts):
    ctype, body = multipart(parts)
    status, _, answer = request(d, "POST", "/v1/evaluate", body, {"Content-Type": ctype})
    if status != 200:
        raise ValueError(f"/v1/evaluate answered {status}: {answer[:200]!r}")
    return json.loads(answer)


def golden_cases(d):
    cases = []
    for root in CASE_DIRS:
        for name in sorted(os.listdir(root)):
            if os.path.isdir(os.path.join(root, name)):
                cases.append(os.path.join(root, name))
    check("golden cases found (tests/golden + tests/golden_extra)", len(cases) >= 30,
          str(len(cases)))
    all_outputs = [name for name, _ in OUTPUT_MAP]
    for n, case in enumerate(cases):
        label = os.path.basename(case)
        try:
            logits, labels, params, parts = case_tensors(case)
            params = dict(params, confusion_matrix=True)
            parts[-1] = ("params", json.dumps(params).encode(), None)
            v1 = v1_answer(d, parts)
            body, headers = binary_request([("logits", logits), ("labels", labels)], params,
                                           outputs=all_outputs, rid=f"case-{n}")
            status, rh, answer = request(d, "POST", INFER, body, headers)
            ok = status == 200 and rh.get("inference-header-content-length") is not None
            why = f"{status}: {answer[:300]!r}"
            if ok:
                doc, outs = parse_answer(status, rh, answer)
                errs = compare(v1, outs)
                if doc.get("id") != f"case-{n}" or doc.get("model_name") != "segloss":
                    errs.append(f"id/model_name not echoed: {doc.get('id')!r}")
                ok, why = not errs, "; ".join(errs)
            check(f"binary {label} {logits.datatype}/{labels.datatype} = /v1/evaluate", ok, why)
            if logits.count() > JSON_MAX_ELEMENTS:
                continue
            nested = n % 2 == 1
            inputs = [("logits", logits), ("labels", labels)]
            jparams = dict(params)
            if "class_weights" in jparams and n % 3 == 0:
                # The class_weights input (FP64: exactly the numbers of params.json).
                weights = jparams.pop("class_weights")
                inputs.append(("class_weights", Tensor("FP64", [len(weights)],
                                                       struct.pack(f"<{len(weights)}d",
                                                                   *weights), "d")))
            body, headers = json_request(inputs, jparams, outputs=all_outputs, nested=nested)
            status, rh, answer = request(d, "POST", INFER, body, headers)
            ok, why = status == 200, f"{status}: {answer[:300]!r}"
            if ok:
                ok = rh.get("content-type", "").startswith("application/json") and \
                    "inference-header-content-length" not in rh
                why = f"headers {rh}"
            if ok:
                _, outs = parse_answer(status, rh, answer)
                errs = compare(v1, outs)
                ok, why = not errs, "; ".join(errs)
            extra = " +class_weights input" if len(inputs) == 3 else ""
            check(f"json {'nested' if nested else 'flat'} {label}{extra} = /v1/evaluate", ok,
                  why)
        except Exception as e:  # one broken case must not hide the others
            check(f"case {label}", False, f"{type(e).__name__}: {e}")


# ---- routes, chunked, runs -----------------------------------------------------------------

def metadata(d):
    status, h, body = request(d, "GET", "/v2")
    doc = json.loads(body) if status == 200 else {}
    check("GET /v2 names segloss and binary_tensor_data",
          doc.get("name") == "segloss" and "binary_tensor_data" in doc.get("extensions", [])
          and isinstance(doc.get("version"), str), f"{status} {body[:200]!r}")
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/segloss/ready",
                 "/v2/models/segloss/versions/1/ready"):
        status, h, body = request(d, "GET", path)
        want = {"live": True} if path.endswith("/live") else {"ready": True}
        check(f"GET {path} is 200 with {json.dumps(want)}",
              status == 200 and h.get("content-type") == "application/json"
              and json.loads(body or b"null") == want, f"{status} {h} {body[:100]!r}")
    for path in ("/v2/models/segloss", "/v2/models/segloss/versions/1"):
        status, h, body = request(d, "GET", path)
        doc = json.loads(body) if status == 200 else {}
        names = [o["name"] for o in doc.get("outputs", [])]
        inputs = {i["name"]: (i["datatype"], i["shape"]) for i in doc.get("inputs", [])}
        ok = (doc.get("name") == "segloss" and doc.get("versions") == ["1"]
              and doc.get("platform") == "segloss"
              and inputs.get("logits") == ("FP32", [-1, -1, -1, -1])
              and inputs.get("labels") == ("UINT8", [-1, -1, -1])
              and inputs.get("class_weights") == ("FP32", [-1])
              and all(n in names for n, _ in OUTPUT_MAP))
        check(f"GET {path}: inputs and outputs", ok, f"{status} {body[:300]!r}")
    status, h, body = request(d, "HEAD", "/v2/models/segloss")
    check("HEAD /v2/models/segloss is 200", status == 200, str(status))
    status, h, body = request(d, "GET", "/v2/models/other")
    check("GET /v2/models/other is 404 with error", status == 404 and b'"error"' in body,
          f"{status} {body[:200]!r}")
    status, h, body = request(d, "GET", INFER)
    check("GET on infer is 405 with Allow: POST", status == 405 and "POST" in h.get("allow", ""),
          f"{status} {h}")
    status, h, body = request(d, "GET", "/v1/info")
    routes = json.loads(body).get("routes", []) if status == 200 else []
    check("/v1/info lists POST " + INFER, f"POST {INFER}" in routes, str(routes)[:300])


def tiny_inputs():
    case = os.path.join(CASE_DIRS[0], "tiny_worked_example")
    logits, labels, params, parts = case_tensors(case)
    return logits, labels, params, parts


def chunked_and_versions(d):
    logits, labels, params, parts = case_tensors(os.path.join(CASE_DIRS[0], "voc_palette_weighted"))
    v1 = v1_answer(d, parts)
    body, headers = binary_request([("logits", logits), ("labels", labels)], params)
    headers["Transfer-Encoding"] = "chunked"

    def pieces():
        for i in range(0, len(body), 7777):  # odd sizes: chunks straddle the JSON header
            yield body[i:i + 7777]
    status, rh, answer = request(d, "POST", INFER, pieces(), headers, chunked=True)
    ok, why = status == 200, f"{status} {answer[:200]!r}"
    if ok:
        _, outs = parse_answer(status, rh, answer)
        errs = compare(v1, outs, names=[n for n, _ in OUTPUT_MAP[:7]])
        ok, why = not errs, "; ".join(errs)
    check("chunked binary body (no Content-Length) = /v1/evaluate", ok, why)
    body, headers = binary_request([("logits", logits), ("labels", labels)], params,
                                   binary_output=False)
    status, rh, answer = request(d, "POST", "/v2/models/segloss/versions/1/infer", body, headers)
    ok, why = status == 200, f"{status} {answer[:200]!r}"
    if ok:
        doc, outs = parse_answer(status, rh, answer)
        names = [o["name"] for o in doc["outputs"]]
        ok = names == ["ce", "focal", "dice", "total", "dice_per_class", "iou_per_class",
                       "f_score_per_class"] and not compare(v1, outs, names=names)
        why = f"{names} {compare(v1, outs, names=names)}"
    check("versions/1/infer, default outputs as JSON for binary inputs", ok, why)
    # An empty outputs list is no list: the default outputs, not an answer with none.
    body, headers = binary_request([("logits", logits), ("labels", labels)], params, outputs=[],
                                   binary_output=False)
    status, rh, answer = request(d, "POST", INFER, body, headers)
    ok, why = status == 200, f"{status} {answer[:200]!r}"
    if ok:
        doc, outs = parse_answer(status, rh, answer)
        names = [o["name"] for o in doc["outputs"]]
        ok = names == [n for n, _ in OUTPUT_MAP[:7]] and not compare(v1, outs, names=names)
        why = f"{names} {compare(v1, outs, names=names)}"
    check("\"outputs\": [] answers the default outputs", ok, why)
    # JSON tensors with an Inference-Header-Content-Length of the whole body (no binary part).
    body, headers = json_request([("logits", logits), ("labels", labels)], params)
    headers["Inference-Header-Content-Length"] = str(len(body))
    status, rh, answer = request(d, "POST", INFER, body, headers)
    ok, why = status == 200, f"{status} {answer[:200]!r}"
    if ok:
        _, outs = parse_answer(status, rh, answer)
        errs = compare(v1, outs, names=["ce", "total"])
        ok, why = not errs, "; ".join(errs)
    check("JSON tensors with a header length of the whole body", ok, why)
    # One output binary, the others JSON.
    body, headers = binary_request([("logits", logits), ("labels", labels)], params,
                                   binary_output=False)
    doc = json.loads(body[:int(headers["Inference-Header-Content-Length"])])
    doc["outputs"] = [{"name": "dice_per_class", "parameters": {"binary_data": True}},
                      {"name": "miou"}]
    header = json.dumps(doc).encode()
    rest = body[int(headers["Inference-Header-Content-Length"]):]
    headers["Inference-Header-Content-Length"] = str(len(header))
    status, rh, answer = request(d, "POST", INFER, header + rest, headers)
    ok, why = status == 200, f"{status} {answer[:200]!r}"
    if ok:
        _, outs = parse_answer(status, rh, answer)
        errs = compare(v1, outs, names=["dice_per_class", "miou"])
        ok = not errs and rh.get("content-type") == "application/octet-stream"
        why = f"{errs} {rh.get('content-type')}"
    check("per-output binary_data: dice_per_class binary, miou JSON", ok, why)


def runs_recorded(d):
    logits, labels, params, _ = tiny_inputs()
    body, headers = binary_request([("logits", logits), ("labels", labels)],
                                   dict(params, run="oip-run", step=3))
    status, rh, answer = request(d, "POST", INFER, body, headers)
    ok = status == 200
    eval_id = ""
    if ok:
        doc, _ = parse_answer(status, rh, answer)
        eval_id = doc.get("parameters", {}).get("evaluation_id", "")
    status2, _, body2 = request(d, "GET", "/v1/runs/oip-run")
    status3, _, body3 = request(d, "GET", f"/v1/evaluations/{eval_id}")
    check("a result with run/step is recorded in the runs store",
          ok and status2 == 200 and status3 == 200 and b"oip-run" in body2,
          f"{status} {status2} {status3} {answer[:200]!r}")


# ---- malformed requests --------------------------------------------------------------------

def error_ok(status, headers, body, lo=400, hi=499):
    if not lo <= status <= hi:
        return f"status {status}: {body[:300]!r}"
    if not headers.get("content-type", "").startswith("application/json"):
        return f"content type {headers.get('content-type')!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    if not isinstance(doc.get("error"), str) or not doc["error"]:
        return f"no error member: {doc}"
    return ""


def malformed(d):
    logits, labels, params, _ = tiny_inputs()
    good, gh = binary_request([("logits", logits), ("labels", labels)], params)
    hl = int(gh["Inference-Header-Content-Length"])
    doc = json.loads(good[:hl])
    binary = good[hl:]

    def with_doc(mutate, extra=b"", header_len=None):
        x = json.loads(json.dumps(doc))
        mutate(x)
        header = json.dumps(x).encode()
        return header + binary + extra, {
            "Inference-Header-Content-Length": str(len(header) if header_len is None
                                                   else header_len)}

    def set_(path, value):
        def m(x):
            obj = x
            for k in path[:-1]:
                obj = obj[k]
            obj[path[-1]] = value
        return m

    def jreq(text):
        return text.encode(), {"Content-Type": "application/json"}

    logits_json = ('{"name":"logits","datatype":"FP32","shape":[1,2,1,3],'
                   '"data":[1,2,3,3,2,1]}')
    labels_json = '{"name":"labels","datatype":"UINT8","shape":[1,1,3],"data":[0,1,2]}'
    cases = [
        ("header length past the body", (good, {"Inference-Header-Content-Length":
                                                str(len(good) + 10)}), 400),
        ("header length not a number", (good, {"Inference-Header-Content-Length": "12x"}), 400),
        ("header length cuts the JSON", (good, {"Inference-Header-Content-Length": "10"}), 400),
        ("binary_data_size not shape x datatype",
         with_doc(set_(["inputs", 0, "parameters", "binary_data_size"], 12)), 400),
        ("binary_data_size with the wrong datatype",
         with_doc(set_(["inputs", 0, "datatype"], "FP64")), 400),
        ("bytes left over after the binary inputs", with_doc(lambda x: None, b"\0\0\0\0"), 400),
        ("binary data without the header", (good, {}), 400),
        ("unknown datatype", with_doc(set_(["inputs", 0, "datatype"], "FLOAT32")), 400),
        ("datatype the input does not take",
         with_doc(set_(["inputs", 1, "datatype"], "FP32")), 415),
        ("missing input labels", jreq('{"inputs":[' + logits_json + ']}'), 400),
        ("missing inputs", jreq('{"parameters":{}}'), 400),
        ("unknown input", jreq('{"inputs":[' + logits_json + ',' + labels_json +
                               ',{"name":"mask","datatype":"UINT8","shape":[1],"data":[0]}]}'),
         400),
        ("shape/element mismatch", jreq('{"inputs":[{"name":"logits","datatype":"FP32",'
                                        '"shape":[1,2,1,3],"data":[1,2,3]},' + labels_json +
                                        ']}'), 400),
        ("labels N differs from logits N",
         jreq('{"inputs":[' + logits_json + ',{"name":"labels","datatype":"UINT8",'
              '"shape":[2,1,3],"data":[0,1,2,0,1,2]}]}'), 422),
        ("string in data", jreq('{"inputs":[{"name":"logits","datatype":"FP32",'
                                '"shape":[1,2,1,3],"data":[1,2,"3",3,2,1]},' + labels_json +
                                ']}'), 400),
        ("label 256 in UINT8", jreq('{"inputs":[' + logits_json + ',{"name":"labels",'
                                    '"datatype":"UINT8","shape":[1,1,3],"data":[0,1,256]}]}'),
         400),
        ("fractional label", jreq('{"inputs":[' + logits_json + ',{"name":"labels",'
                                  '"datatype":"INT32","shape":[1,1,3],"data":[0,1.5,2]}]}'),
         400),
        ("shape not a list", jreq('{"inputs":[{"name":"logits","datatype":"FP32",'
                                  '"shape":"1,2,1,3","data":[1,2,3,3,2,1]},' + labels_json +
                                  ']}'), 400),
        ("bad parameter", jreq('{"inputs":[' + logits_json + ',' + labels_json +
                               '],"parameters":{"gamma":-1}}'), 400),
        ("num_classes != C", jreq('{"inputs":[' + logits_json + ',' + labels_json +
                                  '],"parameters":{"num_classes":5}}'), 422),
        ("unknown output", jreq('{"inputs":[' + logits_json + ',' + labels_json +
                                '],"outputs":[{"name":"loss"}]}'), 400),
        ("not JSON", jreq('{"inputs": ['), 400),
        ("empty body", (b"", {}), 400),
        ("gzip body", (good, dict(gh, **{"Content-Encoding": "gzip"})), 415),
    ]
    for name, (body, headers), want in cases:
        try:
            status, rh, answer = request(d, "POST", INFER, body, headers)
            why = error_ok(status, rh, answer)
            if not why and status != want:
                why = f"status {status}, wanted {want}: {answer[:200]!r}"
            check(f"malformed: {name} -> {want}", not why, why)
        except (OSError, http.client.HTTPException) as e:
            check(f"malformed: {name} -> {want}", False, repr(e))
    # Over the body limit: refused from Content-Length before the body is sent.
    try:
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            s.sendall(b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                      b"Inference-Header-Content-Length: 10\r\nContent-Length: " +
                      str((MAX_BODY_MB + 1) << 20).encode() + b"\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        check("Content-Length over --max-body-mb is 413 before the body",
              data.startswith(b"HTTP/1.1 413"), repr(data[:100]))
    except OSError as e:
        check("Content-Length over --max-body-mb is 413 before the body", False, repr(e))
    # A chunked body over the limit: 413 as it arrives.
    def big():
        yield b'{"inputs":[]}'
        for _ in range(MAX_BODY_MB + 2):
            yield b"\0" * (1 << 20)
    try:
        status, rh, answer = request(d, "POST", INFER, big(),
                                     {"Inference-Header-Content-Length": "13"}, chunked=True)
        why = error_ok(status, rh, answer, 413, 413)
        check("chunked body over --max-body-mb is 413", not why, why)
    except (OSError, http.client.HTTPException) as e:
        check("chunked body over --max-body-mb is 413", False, repr(e))
    status, _, _ = request(d, "GET", "/v2/health/live")
    check("daemon still answers after the malformed requests", status == 200, str(status))


def example(d):
    for py in ("/usr/bin/python3", sys.executable):
        if os.access(py, os.X_OK) and subprocess.run(
                [py, "-c", "import numpy"], capture_output=True).returncode == 0:
            break
    else:
        print("skip api/examples/oip_binary.py: no python3 with numpy")
        return
    proc = subprocess.run([py, EXAMPLE, "--url", d.url], capture_output=True, text=True,
                          timeout=120)
    ok = proc.returncode == 0 and "total" in proc.stdout and "dice_per_class" in proc.stdout
    check("api/examples/oip_binary.py runs against the daemon", ok,
          f"exit {proc.returncode}: {proc.stdout[-300:]} {proc.stderr[-500:]}")


def main():
    h.install_watchdog(WATCHDOG_S)
    if not check("seglossd is built", os.access(DAEMON, os.X_OK), DAEMON):
        finish()
    d = Daemon("oip")
    if not check("daemon starts and answers /v2/health/live", d.wait_ready(), d.tail()):
        finish()
    try:
        metadata(d)
        golden_cases(d)
        chunked_and_versions(d)
        runs_recorded(d)
        malformed(d)
        example(d)
        status, _, _ = request(d, "GET", "/v2/health/ready")
        check("daemon still ready at the end", status == 200, str(status))
    except Exception as e:
        check("oip e2e run", False, f"{type(e).__name__}: {e}")
    finish()


if __name__ == "__main__":
    main()
