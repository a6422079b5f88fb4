#!/usr/bin/env python3
"""Writes the input files of the bad-request corpus (files/), with the standard library only.

The files are committed; run this again after changing it. .npy bytes are written by hand
(struct), PNGs with zlib + struct, so every defect is exactly the one named. The JPEG mask is a
JFIF header and junk: format detection is all that looks at it."""
import json
import os
import struct
import zlib

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files")


def npy(descr, shape, payload, fortran=False, header_pad_to=64, header_text=None):
    if header_text is None:
        shape_text = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        header_text = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, "True" if fortran else "False", shape_text)
    header = header_text.encode("latin1")
    total = 10 + len(header) + 1
    pad = (-total) % header_pad_to
    header = header + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def floats(values, fmt="<f"):
    return b"".join(struct.pack(fmt, v) for v in values)


def png(width, height, rows, color_type=0, bit_depth=8, corrupt_crc=False, palette=None):
    def chunk(kind, data, bad=False):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        if bad:
            crc ^= 0xDEADBEEF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if palette is not None:
        out += chunk(b"PLTE", palette)
    out += chunk(b"IDAT", zlib.compress(raw), bad=corrupt_crc)
    return out + chunk(b"IEND", b"")


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(HERE, exist_ok=True)
    n, c, h, w = 1, 3, 4, 4
    logits = [((i * 37) % 11) / 5.0 - 1.0 for i in range(n * c * h * w)]
    write("logits_1x3x4x4.npy", npy("<f4", (n, c, h, w), floats(logits)))
    write("logits_2x3x4x4.npy", npy("<f4", (2, c, h, w), floats(logits * 2)))
    mask_rows = [[(x + y) % 3 for x in range(w)] for y in range(h)]
    write("mask_4x4.png", png(w, h, mask_rows))
    write("mask_5x4.png", png(5, 4, [[x % 3 for x in range(5)] for _ in range(4)]))
    write("mask_rgb.png", png(w, h, [[v for v in row for _ in range(3)] for row in mask_rows],
                              color_type=2))
    write("mask_grey_alpha.png", png(w, h, [[v for v in row for _ in (0, 1)] for row in mask_rows],
                                     color_type=4))
    good_png = png(w, h, mask_rows)
    write("mask_truncated.png", good_png[: len(good_png) - 20])
    write("mask_bad_crc.png", png(w, h, mask_rows, corrupt_crc=True))
    write("mask_float.npy", npy("<f4", (1, h, w), floats([0.0] * (h * w))))
    write("mask_u8_1x4x4.npy", npy("|u1", (1, h, w), bytes(v for row in mask_rows for v in row)))
    # Only the start matters: masks are refused by format before anything is decoded.
    write("mask.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
          + b"\x00" * 64 + b"\xff\xd9")
    payload = floats(logits)
    write("npy_truncated_data.npy", npy("<f4", (n, c, h, w), payload[:-7]))
    write("npy_truncated_header.npy", npy("<f4", (n, c, h, w), payload)[:30])
    lying = bytearray(npy("<f4", (n, c, h, w), payload))
    struct.pack_into("<H", lying, 8, 60000)  # header length far past the end of the file
    write("npy_lying_header_len.npy", bytes(lying))
    write("npy_lying_shape.npy", npy("<f4", (n, c, 400, 400), payload))
    write("npy_bad_magic.npy", b"\x93NUMPX" + npy("<f4", (n, c, h, w), payload)[6:])
    write("npy_header_garbage.npy",
          npy("<f4", (), payload, header_text="this is not a Python dict"))
    write("npy_complex_logits.npy", npy("<c8", (n, c, h, w), floats(logits * 2)))
    write("npy_int_logits.npy", npy("<i4", (n, c, h, w), struct.pack("<48i", *range(48))))
    write("npy_huge_shape.npy", npy("<f4", (100000, 100000, 100000, 100000), payload))
    nan = list(logits)
    nan[1 * h * w + 2 * w + 3] = float("nan")  # logits[0,1,2,3]
    write("npy_nan.npy", npy("<f4", (n, c, h, w), floats(nan)))
    inf = list(logits)
    inf[2 * h * w] = float("-inf")  # logits[0,2,0,0]
    write("npy_inf.npy", npy("<f4", (n, c, h, w), floats(inf)))
    write("npy_rank2.npy", npy("<f4", (h, w), floats(logits[: h * w])))
    header = json.dumps({"logits": {"dtype": "F32", "shape": [1, 3, 4, 4],
                                    "data_offsets": [0, 999999]}}).encode()
    write("safetensors_bad_offsets.safetensors", struct.pack("<Q", len(header)) + header + payload)
    write("empty.bin", b"")


if __name__ == "__main__":
    main()
