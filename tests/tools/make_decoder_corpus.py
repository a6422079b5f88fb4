#!/usr/bin/env python3
"""Writes the decoders' fuzz seed corpora and crashers (standard library only).

    python3 tests/tools/make_decoder_corpus.py        # from the repository root

tests/fuzz/corpus/<name>/ gets small valid and near-valid files, the seeds libFuzzer mutates;
tests/crashers/<name>/ gets malformed files that the decoder must refuse cleanly (the replay
driver in `make test` checks each one returns an error). PNG and .npy/safetensors bytes are
built by hand here; JPEG goes through libturbojpeg's tjCompress2 via ctypes, since the
standard library has no JPEG encoder. The output is deterministic and committed; rerun this
after changing it. Files found by fuzzing are added to the folders directly, not here.
"""
import ctypes
import ctypes.util
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def out(kind, name, folder, data):
    d = os.path.join(ROOT, "tests", folder, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, kind), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- .npy
def npy(descr, shape, data, version=1, fortran=False, dict_text=None, pad=True):
    if dict_text is None:
        shape_text = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "")
        shape_text += ")"
        dict_text = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, "True" if fortran else "False", shape_text)
    header = dict_text.encode("latin1")
    prefix = 10 if version == 1 else 12
    if pad:
        total = prefix + len(header) + 1
        header += b" " * ((64 - total % 64) % 64)
    header += b"\n"
    fmt = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, len(header)) + header + data


def npy_files():
    f32 = struct.pack("<24f", *[i * 0.25 - 2 for i in range(24)])
    seeds = {
        "logits_f4_v1.npy": npy("<f4", (1, 2, 3, 4), f32),
        "logits_f4_v2_chw.npy": npy("<f4", (2, 3, 4), f32, version=2),
        "logits_f4_v3.npy": npy("<f4", (1, 2, 3, 4), f32, version=3),
        "logits_f2.npy": npy("<f2", (1, 2, 3, 4), f32[:48]),
        "logits_f8.npy": npy("<f8", (1, 1, 2, 3), f32[:48]),
        "mask_u1.npy": npy("|u1", (4, 6), bytes(range(24))),
        "mask_i1_nhw.npy": npy("|i1", (2, 3, 4), bytes(range(24))),
        "mask_u2.npy": npy("<u2", (3, 4), struct.pack("<12H", *range(12))),
        "mask_i4.npy": npy("<i4", (3, 4), struct.pack("<12i", *range(12))),
        "mask_i8.npy": npy("<i8", (1, 2, 3), struct.pack("<6q", *range(6))),
        "keys_reordered.npy": npy(None, None, f32, dict_text=(
            "{\"shape\": (2L, 3L, 4L), \"descr\": \"<f4\", \"fortran_order\": False}")),
        "unpadded.npy": npy("|u1", (2, 2), b"\x00\x01\x02\x03", pad=False),
    }
    for name, data in seeds.items():
        out(name, "npy", "fuzz/corpus", data)
    crashers = {
        "big_endian.npy": npy(">f4", (1, 2, 3, 4), f32),
        "fortran.npy": npy("<f4", (1, 2, 3, 4), f32, fortran=True),
        "short_data.npy": npy("<f4", (1, 2, 3, 4), f32[:-4]),
        "long_data.npy": npy("<f4", (1, 2, 3, 4), f32 + b"\0\0\0\0"),
        "header_too_long.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", 10001) + b"{" * 10001,
        "header_past_end.npy": b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f4'",
        "huge_shape.npy": npy("<f4", (65536, 65536, 65536, 65536), f32),
        "overflow_dim.npy": npy(None, None, f32, dict_text=(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 18446744073709551617, 1)}")),
        "negative_dim.npy": npy(None, None, f32, dict_text=(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -2, 3, 4)}")),
        "duplicate_key.npy": npy(None, None, f32, dict_text=(
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3, 4)}")),
        "missing_key.npy": npy(None, None, f32, dict_text="{'descr': '<f4', 'shape': (24,)}"),
        "unterminated.npy": npy(None, None, f32, dict_text="{'descr': '<f4', 'shape': (1, 2"),
        "rank1.npy": npy("<f4", (24,), f32),
        "version9.npy": b"\x93NUMPY\x09\x00" + npy("<f4", (1, 2, 3, 4), f32)[8:],
        "structured.npy": npy(None, None, f32, dict_text=(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1, 2, 3, 4)}")),
    }
    for name, data in crashers.items():
        out(name, "npy", "crashers", data)


# ---------------------------------------------------------------- safetensors
def st(tensors, data, metadata=None, pad=True, raw_header=None):
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    header.update(tensors)
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":"))
    text = text.encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


def safetensors_files():
    f32 = struct.pack("<24f", *[i * 0.5 - 3 for i in range(24)])
    seeds = {
        "logits_f32.safetensors": st({"logits": t("F32", (1, 2, 3, 4), 0, 96)}, f32),
        "logits_f16.safetensors": st({"logits": t("F16", (2, 3, 4), 0, 48)}, f32[:48]),
        "logits_bf16.safetensors": st({"logits": t("BF16", (1, 2, 3, 4), 0, 48)}, f32[:48]),
        "logits_f64.safetensors": st({"logits": t("F64", (1, 3, 4), 0, 96)}, f32),
        "with_mask_u8.safetensors": st({"mask": t("U8", (3, 4), 0, 12),
                                        "logits": t("F32", (2, 3, 4), 12, 108)},
                                       bytes(range(12)) + f32, metadata={"format": "pt"}),
        "with_labels_i64.safetensors": st({"logits": t("F32", (1, 2, 2, 3), 0, 48),
                                           "labels": t("I64", (1, 2, 3), 48, 96)},
                                          f32[:48] + struct.pack("<6q", *range(6))),
        "with_labels_u16_i32.safetensors": st({"logits": t("F32", (1, 2, 2), 0, 16),
                                               "labels": t("U16", (2, 2), 16, 24),
                                               "other": t("I32", (2,), 24, 32)}, f32[:32]),
        "unpadded.safetensors": st({"logits": t("F32", (1, 1, 1), 0, 4)}, f32[:4], pad=False),
    }
    for name, data in seeds.items():
        out(name, "safetensors", "fuzz/corpus", data)
    crashers = {
        "overlap.safetensors": st({"logits": t("F32", (1, 2, 2), 0, 16),
                                   "mask": t("U8", (2, 2), 12, 16)}, f32[:16]),
        "out_of_range.safetensors": st({"logits": t("F32", (1, 2, 3, 4), 0, 96)}, f32[:64]),
        "length_mismatch.safetensors": st({"logits": t("F32", (1, 2, 3, 4), 0, 92)}, f32[:92]),
        "hole.safetensors": st({"logits": t("F32", (1, 2, 2), 8, 24)}, f32[:24]),
        "header_too_long.safetensors": struct.pack("<Q", 2 << 20) + b"{}" + b" " * 6,
        "header_past_end.safetensors": struct.pack("<Q", 4096) + b'{"logits":{}}',
        "not_object.safetensors": st({}, b"", raw_header="[1,2,3]"),
        "no_logits.safetensors": st({"mask": t("U8", (2, 2), 0, 4)}, b"\0\0\0\0"),
        "negative_shape.safetensors": st({"logits": t("F32", (1, -2, 2), 0, 16)}, f32[:16]),
        "huge_offsets.safetensors": st(
            {"logits": t("F32", (1, 2, 2), 0, 2 ** 60)}, f32[:16]),
        "float_offsets.safetensors": st({}, f32[:16], raw_header=(
            '{"logits":{"dtype":"F32","shape":[1,2,2],"data_offsets":[0,16.5]}}')),
        "int_logits.safetensors": st({"logits": t("I32", (1, 2, 2), 0, 16)}, f32[:16]),
        "rank2_logits.safetensors": st({"logits": t("F32", (2, 2), 0, 16)}, f32[:16]),
        "duplicate_logits.safetensors": st({}, f32[:32], raw_header=(
            '{"logits":{"dtype":"F32","shape":[1,2,2],"data_offsets":[0,16]},'
            '"logits":{"dtype":"F32","shape":[1,2,2],"data_offsets":[16,32]}}')),
        "deep_nesting.safetensors": st({}, b"", raw_header="{\"a\":" + "[" * 5000 + "]" * 5000
                                       + "}"),
    }
    for name, data in crashers.items():
        out(name, "safetensors", "crashers", data)


# ---------------------------------------------------------------- PNG
def chunk(kind, payload, bad_crc=False):
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    if bad_crc:
        crc ^= 1
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def pack_row(samples, depth):
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    bits, acc, n, outb = 0, 0, 0, bytearray()
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            outb.append(acc)
            acc, bits = 0, 0
    if bits:
        outb.append(acc << (8 - bits))
    return bytes(outb)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png(w, h, color_type, depth, sample, interlace=False, palette=None, extra=b"",
        idat_split=0):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for (x0, y0, dx, dy) in passes:
        xs = list(range(x0, w, dx))
        if not xs:
            continue
        for y in range(y0, h, dy):
            samples = [sample(x, y, c) for x in xs for c in range(channels)]
            raw += b"\x00" + pack_row(samples, depth)
    data = zlib.compress(bytes(raw), 9)
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0,
                                      1 if interlace else 0))
    if palette is not None:
        body += chunk(b"PLTE", bytes(palette))
    body += extra
    if idat_split:
        for i in range(0, len(data), idat_split):
            body += chunk(b"IDAT", data[i:i + idat_split])
    else:
        body += chunk(b"IDAT", data)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def png_files():
    def grad(mod):
        return lambda x, y, c: (x * 3 + y * 5 + c) % mod
    red = [200, 10, 10] * 256
    seeds = {
        "grey8.png": png(16, 16, 0, 8, grad(256)),
        "grey16.png": png(9, 7, 0, 16, lambda x, y, c: (x * 4099 + y * 977) % 65536),
        "palette8_same_colours.png": png(16, 12, 3, 8, grad(21), palette=red,
                                         extra=chunk(b"tRNS", b"\x00")),
        "grey1.png": png(13, 5, 0, 1, grad(2)),
        "grey2.png": png(13, 5, 0, 2, grad(4)),
        "grey4.png": png(13, 5, 0, 4, grad(16)),
        "palette1.png": png(11, 3, 3, 1, grad(2), palette=red[:6]),
        "palette2.png": png(11, 3, 3, 2, grad(4), palette=red[:12]),
        "palette4.png": png(11, 3, 3, 4, grad(16), palette=red[:48]),
        "interlaced_grey8.png": png(13, 11, 0, 8, grad(256), interlace=True),
        "interlaced_palette4.png": png(10, 9, 3, 4, grad(16), palette=red[:48],
                                       interlace=True),
        "text_chunks.png": png(8, 8, 0, 8, grad(256),
                               extra=chunk(b"tEXt", b"Comment\x00hello") +
                               chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"x" * 64))),
        "split_idat.png": png(16, 16, 0, 8, grad(256), idat_split=7),
        "rgb8.png": png(6, 5, 2, 8, grad(256)),
        "rgba16.png": png(3, 3, 6, 16, lambda x, y, c: (x * 20000 + c * 999) % 65536),
        "grey_alpha8.png": png(4, 4, 4, 8, grad(256)),
    }
    for name, data in seeds.items():
        out(name, "png", "fuzz/corpus", data)
    good = seeds["grey8.png"]
    ihdr_only = good[:33]

    def ihdr(w, h, depth, ctype, interlace=0):
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype,
                                                                 0, 0, interlace))
    idat_at = good.index(b"IDAT")
    bad_idat_crc = bytearray(good)
    bad_idat_crc[idat_at + 4 + struct.unpack(">I", good[idat_at - 4:idat_at])[0]] ^= 1
    crashers = {
        "truncated_half.png": good[: len(good) // 2],
        "no_iend.png": good[:-12],
        "ihdr_only.png": ihdr_only,
        "bad_idat_crc.png": bytes(bad_idat_crc),
        "bad_ihdr_crc.png": good[:29] + b"\0\0\0\0" + good[33:],
        "huge_dimensions.png": ihdr(100000, 100000, 8, 0) + good[33:],
        "bomb_16k.png": ihdr(16384, 16384, 8, 0) + chunk(
            b"IDAT", zlib.compress(b"\0" * (16385 * 64))) + chunk(b"IEND", b""),
        "zero_width.png": ihdr(0, 16, 8, 0) + good[33:],
        "bad_depth.png": ihdr(16, 16, 16, 3) + good[33:],
        "rgb_mask.png": seeds["rgb8.png"],
        "rgba_mask.png": seeds["rgba16.png"],
        "palette_no_plte.png": png(4, 4, 3, 8, grad(4)),
        "garbage_zlib.png": ihdr(4, 4, 8, 0) + chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 20) +
        chunk(b"IEND", b""),
        "too_little_data.png": ihdr(64, 64, 8, 0) + chunk(b"IDAT", zlib.compress(b"\0" * 65)) +
        chunk(b"IEND", b""),
        "unknown_critical_chunk.png": good[:33] + chunk(b"ABCD", b"xx") + good[33:],
        # 1x1 image, then 80 MB of zeros in the same zlib stream (about 80 KB compressed).
        "bomb_trailing_idat.png": ihdr(1, 1, 8, 0) + chunk(
            b"IDAT", zlib.compress(b"\0\7" + bytes(80 << 20), 9)) + chunk(b"IEND", b""),
    }
    for name, data in crashers.items():
        out(name, "png", "crashers", data)


# ---------------------------------------------------------------- JPEG
def jpeg_files():
    lib = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
    tj = ctypes.CDLL(lib)
    tj.tjInitCompress.restype = ctypes.c_void_p
    tj.tjCompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                               ctypes.c_int, ctypes.c_int,
                               ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),
                               ctypes.POINTER(ctypes.c_ulong), ctypes.c_int, ctypes.c_int,
                               ctypes.c_int]
    tj.tjFree.argtypes = [ctypes.c_void_p]
    tj.tjDestroy.argtypes = [ctypes.c_void_p]
    TJPF_RGB, TJPF_CMYK = 0, 11
    TJSAMP_444, TJSAMP_420, TJSAMP_GRAY = 0, 2, 3
    TJFLAG_PROGRESSIVE = 16384

    def compress(w, h, samp, flags=0, pf=TJPF_RGB):
        ch = 4 if pf == TJPF_CMYK else 3
        pix = bytes(((x * 255 // max(w - 1, 1)) if c == 0 else (y * 255 // max(h - 1, 1))
                     if c == 1 else 90) for y in range(h) for x in range(w) for c in range(ch))
        handle = tj.tjInitCompress()
        buf = ctypes.POINTER(ctypes.c_ubyte)()
        size = ctypes.c_ulong(0)
        rc = tj.tjCompress2(handle, pix, w, 0, h, pf, ctypes.byref(buf), ctypes.byref(size),
                            samp, 85, flags)
        assert rc == 0
        data = ctypes.string_at(buf, size.value)
        tj.tjFree(buf)
        tj.tjDestroy(handle)
        return data

    seeds = {
        "baseline444_16x16.jpg": compress(16, 16, TJSAMP_444),
        "baseline420_24x16.jpg": compress(24, 16, TJSAMP_420),
        "grey_8x8.jpg": compress(8, 8, TJSAMP_GRAY),
        "progressive_16x16.jpg": compress(16, 16, TJSAMP_420, TJFLAG_PROGRESSIVE),
        "progressive_grey_9x7.jpg": compress(9, 7, TJSAMP_GRAY, TJFLAG_PROGRESSIVE),
    }
    for name, data in seeds.items():
        out(name, "jpeg", "fuzz/corpus", data)
    good = seeds["baseline420_24x16.jpg"]
    prog = seeds["progressive_16x16.jpg"]
    sof = good.index(b"\xff\xc0")
    zero_h = bytearray(good)
    zero_h[sof + 5:sof + 7] = b"\0\0"
    huge = bytearray(good)
    huge[sof + 5:sof + 9] = b"\xff\xff\xff\xff"
    dht = good.index(b"\xff\xc4")
    bad_dht = bytearray(good)
    bad_dht[dht + 5:dht + 21] = b"\xff" * 16
    over = bytearray(good)
    over[sof + 5:sof + 9] = struct.pack(">HH", 20000, 20000)
    # A progressive JPEG whose last scan is repeated 600 times (TJFLAG_LIMITSCANS stops at 500;
    # the repeated refinement is an inconsistent progression, itself fatal under
    # TJFLAG_STOPONWARNING, so this one fails before the scan limit is reached).
    last_sos = prog.rindex(b"\xff\xda")
    repeated_scans = prog[:last_sos] + prog[last_sos:-2] * 600 + b"\xff\xd9"
    crashers = {
        "truncated_half.jpg": good[: len(good) // 2],
        "headers_only.jpg": good[: good.index(b"\xff\xda")],
        "zero_height.jpg": bytes(zero_h),
        "huge_size.jpg": bytes(huge),
        "bad_huffman_table.jpg": bytes(bad_dht),
        "cmyk.jpg": compress(8, 8, TJSAMP_444, 0, TJPF_CMYK),
        "repeated_scans.jpg": repeated_scans,
        "over_limit_20000x20000.jpg": bytes(over),
        "soi_only.jpg": b"\xff\xd8\xff",
        "progressive_truncated.jpg": prog[: len(prog) * 2 // 3],
    }
    for name, data in crashers.items():
        out(name, "jpeg", "crashers", data)


if __name__ == "__main__":
    npy_files()
    safetensors_files()
    png_files()
    jpeg_files()
