#!/usr/bin/env python3
"""Evaluate a batch with seglossd from Python: the standard library and numpy, nothing else.

Start the daemon (`make run`), then:

    python3 api/examples/evaluate.py                     # http://127.0.0.1:8080
    python3 api/examples/evaluate.py --url http://host:port

It makes a batch of logits (N x C x H x W, float32) with numpy, saves it as .npy into memory,
writes one palette PNG mask per batch item with zlib and struct (palette index = class, 255 =
ignored, as in Pascal VOC), posts them as multipart/form-data with urllib, and prints
loss.total and metrics.miou. In a training loop, `logits` would be the network's output
(`output.detach().cpu().numpy()`) and the masks your label PNGs, read as bytes.
"""
import argparse
import io
import json
import os
import struct
import sys
import urllib.error
import urllib.request
import uuid
import zlib

import numpy as np

N, C, H, W = 2, 5, 48, 64
IGNORE = 255


def make_batch(seed=0):
    """Logits (N, C, H, W) float32 and labels (N, H, W) uint8: each label is the logits'
    argmax 70% of the time, a random class otherwise, with a border of ignored pixels."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(N, C, H, W)).astype(np.float32)
    labels = logits.argmax(axis=1).astype(np.uint8)
    noise = rng.random((N, H, W)) < 0.3
    labels[noise] = rng.integers(0, C, size=int(noise.sum()), dtype=np.uint8)
    labels[:, :2, :] = IGNORE
    return logits, labels


def npy_bytes(array):
    """The .npy file numpy.save would write, in memory."""
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def voc_palette():
    """Pascal VOC's 256-colour palette (class k gets the colour VOC gives it)."""
    palette = bytearray()
    for k in range(256):
        r = g = b = 0
        c = k
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += bytes((r, g, b))
    return bytes(palette)


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def palette_png(label_map):
    """An 8-bit palette PNG whose pixel values are the class indices of label_map (H, W)."""
    h, w = label_map.shape
    rows = b"".join(b"\x00" + label_map[y].astype(np.uint8).tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + png_chunk(b"PLTE", voc_palette())
            + png_chunk(b"IDAT", zlib.compress(rows, 6))
            + png_chunk(b"IEND", b""))


def multipart(parts):
    """parts: [(name, filename, content type, bytes)] -> (Content-Type, body)."""
    boundary = "segloss-" + uuid.uuid4().hex
    body = bytearray()
    for name, filename, ctype, data in parts:
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
        body += f"Content-Type: {ctype}\r\n\r\n".encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(body)


def evaluate(url, logits, labels, params=None, timeout=60):
    """POSTs one batch to {url}/v1/evaluate; returns the answer as a dict. Raises RuntimeError
    with the problem's detail when the daemon refuses it."""
    parts = [("logits", "logits.npy", "application/octet-stream", npy_bytes(logits))]
    for i, label_map in enumerate(labels):
        parts.append(("mask", f"mask_{i}.png", "image/png", palette_png(label_map)))
    if params:
        parts.append(("params", "params.json", "application/json", json.dumps(params).encode()))
    ctype, body = multipart(parts)
    req = urllib.request.Request(url.rstrip("/") + "/v1/evaluate", data=body, method="POST",
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            problem = json.load(e)
        except ValueError:
            problem = {"detail": e.reason}
        raise RuntimeError(f"HTTP {e.code}: {problem.get('detail')}") from None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("SEGLOSS_URL", "http://127.0.0.1:8080"))
    args = ap.parse_args()
    logits, labels = make_batch()
    try:
        answer = evaluate(args.url, logits, labels, params={"main_loss": "ce", "gamma": 2})
    except (RuntimeError, OSError) as e:
        print(f"evaluate.py: {e}", file=sys.stderr)
        return 1
    print(f"loss.total = {answer['loss']['total']:.6f}")
    print(f"metrics.miou = {answer['metrics']['miou']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
