#!/usr/bin/env python3
"""Evaluate a batch through seglossd's Open Inference Protocol v2 door (KServe / Triton REST)
with the binary tensor extension: the standard library and numpy, nothing else.

Start the daemon (`make run`), then:

    python3 api/examples/oip_binary.py                     # http://127.0.0.1:8080
    python3 api/examples/oip_binary.py --url http://host:port

The request body is a JSON header followed by the raw bytes of each input (little-endian,
row-major, in input order); the header's length goes in the Inference-Header-Content-Length
request header and each input says its byte count in parameters.binary_data_size. Loss
parameters (docs/ARCHITECTURE.md §5.4) go in the request's "parameters". With binary_data_output the
answer is also a JSON header (its length in the answer's Inference-Header-Content-Length)
followed by each output's raw bytes; undefined numbers are NaN there (null in JSON outputs).
A Triton client (tritonclient.http) sends the same bytes: model "segloss", inputs "logits" and
"labels".
"""
import argparse
import json
import sys
import urllib.error
import urllib.request

import numpy as np

N, C, H, W = 2, 5, 48, 64
IGNORE = 255


def make_batch(seed=0):
    """Logits (N, C, H, W) float32 and labels (N, H, W) uint8 (255 = ignored)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(N, C, H, W)).astype(np.float32)
    labels = logits.argmax(axis=1).astype(np.uint8)
    noise = rng.random((N, H, W)) < 0.3
    labels[noise] = rng.integers(0, C, size=int(noise.sum()), dtype=np.uint8)
    labels[:, :2, :] = IGNORE
    return logits, labels


DATATYPES = {np.dtype("float32"): "FP32", np.dtype("float16"): "FP16",
             np.dtype("float64"): "FP64", np.dtype("uint8"): "UINT8",
             np.dtype("uint16"): "UINT16", np.dtype("int32"): "INT32",
             np.dtype("int64"): "INT64"}
NUMPY_TYPES = {"FP32": np.float32, "INT64": np.int64}


def binary_request(inputs, parameters):
    """inputs: {name: numpy array} -> (body bytes, headers)."""
    header = {"id": "example-1", "inputs": [], "parameters": parameters}
    blobs = []
    for name, array in inputs.items():
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header["inputs"].append({"name": name, "datatype": DATATYPES[array.dtype],
                                 "shape": list(array.shape),
                                 "parameters": {"binary_data_size": len(raw)}})
        blobs.append(raw)
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {"Content-Type": "application/octet-stream",
                                    "Inference-Header-Content-Length": str(len(head))}


def parse_answer(body, header_length):
    """{output name: numpy array} from a JSON or binary answer."""
    n = int(header_length) if header_length is not None else len(body)
    answer = json.loads(body[:n])
    outputs, pos = {}, n
    for out in answer["outputs"]:
        size = (out.get("parameters") or {}).get("binary_data_size")
        dtype = NUMPY_TYPES[out["datatype"]]
        if size is None:   # JSON data: null (undefined) becomes NaN
            values = np.array([np.nan if v is None else v for v in out["data"]], dtype=dtype)
        else:
            values = np.frombuffer(body[pos:pos + size], dtype=np.dtype(dtype).newbyteorder("<"))
            pos += size
        outputs[out["name"]] = values.reshape(out["shape"])
    return answer, outputs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    args = ap.parse_args()
    logits, labels = make_batch()
    body, headers = binary_request(
        {"logits": logits, "labels": labels},
        {"main_loss": "focal", "dice_loss": True, "gamma": 2, "alpha": 0.25,
         "confusion_matrix": True, "binary_data_output": True})
    req = urllib.request.Request(args.url + "/v2/models/segloss/infer", data=body,
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = resp.read()
            answer, outputs = parse_answer(data, resp.headers.get("Inference-Header-Content-Length"))
    except urllib.error.HTTPError as e:
        print(f"HTTP {e.code}: {json.loads(e.read()).get('error')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as e:
        print(f"cannot reach {args.url}: {e.reason} (is seglossd running?)", file=sys.stderr)
        return 1
    print(f"id {answer.get('id')}, evaluation {answer['parameters']['evaluation_id']}")
    for name in ("ce", "focal", "dice", "total"):
        print(f"{name:6s} {float(outputs[name][0]):.6f}")
    print("dice_per_class", np.round(outputs["dice_per_class"].astype(float), 4).tolist())
    print("iou_per_class ", np.round(outputs["iou_per_class"].astype(float), 4).tolist())
    cm = outputs["confusion_matrix"]
    print(f"confusion_matrix {cm.shape[0]}x{cm.shape[1]}, {int(cm.sum())} valid pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
