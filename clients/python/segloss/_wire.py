"""The wire format of POST /v1/evaluate, chosen for speed.

Logits go as one .npy (float32, float16, float64) or, for bfloat16, one safetensors file; labels
as one raw integer .npy of shape (N, H, W) (no PNG encoding). The body is a list of buffers: the
small headers the client writes and memoryviews of the arrays themselves, so the logits are
never copied to build a body, and its Content-Length is the sum of their lengths.

Parts go params, masks, logits: the daemon evaluates batch item i as soon as its logits are in
when it already has every item's labels and the parameters, so with this order all items but
the last are done while the body is still arriving (server/api/intake.c); the answer is the
same for any order.

An array is copied at most once on the client side: when it has to move (a GPU tensor comes to
the CPU), change dtype (float16/bfloat16 on request, or a dtype the daemon does not take), or
become C-contiguous. Those steps are fused into one where the library allows it.
"""
import json
import mmap
import os
import uuid

import numpy as np

# dtypes the daemon takes as logits (.npy) and as labels
LOGIT_DTYPES = {np.dtype("<f4"), np.dtype("<f2"), np.dtype("<f8")}
LABEL_DTYPES = {np.dtype("u1"), np.dtype("<u2"), np.dtype("<i4"), np.dtype("<i8")}
# bfloat16 is converted in blocks of this many elements, so no full-size temporary is made
_BF16_BLOCK = 1 << 20
_NPY_ALIGN = 64


def _is_torch(x):
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "detach")


def _is_path(x):
    return isinstance(x, (str, bytes, os.PathLike))


def npy_header(dtype, shape):
    """The bytes of a version 1.0 .npy header whose data starts 64-byte aligned."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    pad = (-(10 + len(text) + 1)) % _NPY_ALIGN
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def safetensors_header(name, dtype, shape, nbytes):
    """The bytes before one tensor's data in a safetensors file (data 64-byte aligned)."""
    head = json.dumps({name: {"dtype": dtype, "shape": list(shape),
                              "data_offsets": [0, nbytes]}}, separators=(",", ":"))
    head += " " * ((-(8 + len(head))) % _NPY_ALIGN)
    return len(head).to_bytes(8, "little") + head.encode()


def _bytes_view(arr):
    """A flat memoryview of a C-contiguous array's bytes (no copy)."""
    return memoryview(arr).cast("B") if arr.ndim else memoryview(arr.reshape(1)).cast("B")


def _f32_to_bf16(src, out):
    """Round-to-nearest-even float32 -> bfloat16 bits, block by block into out (uint16)."""
    flat_in = src.reshape(-1)
    flat_out = out.reshape(-1)
    for start in range(0, flat_in.size, _BF16_BLOCK):
        u = flat_in[start:start + _BF16_BLOCK].astype(np.float32, copy=False).view(np.uint32)
        r = (u >> 16) & 1
        r += 0x7FFF
        r += u
        nan = np.isnan(flat_in[start:start + _BF16_BLOCK])
        r >>= 16
        if nan.any():
            r[nan] = 0x7FC0
        flat_out[start:start + _BF16_BLOCK] = r


class Logits:
    """Logits ready to send: (name of the part's file, header bytes, data buffer, shape)."""

    def __init__(self, filename, header, data, keep=None):
        self.filename = filename
        self.header = header
        self.data = data
        self.keep = keep  # what the data buffer borrows from (an array, an mmap)

    @property
    def buffers(self):
        return [self.header, self.data]


def _torch_logits(t, dtype):
    import torch
    t = t.detach()
    want = {None: None, "float16": torch.float16, "bfloat16": torch.bfloat16,
            "float32": torch.float32}[dtype]
    if want is None and t.dtype not in (torch.float32, torch.float16, torch.bfloat16,
                                        torch.float64):
        want = torch.float32
    # one copy at most: dtype conversion on the device, then one move to the CPU
    if want is not None and t.dtype != want:
        t = t.to(dtype=want)
    if t.device.type != "cpu":
        t = t.to("cpu")
    t = t.contiguous()
    shape = tuple(t.shape)
    if t.dtype == torch.bfloat16:
        arr = t.view(torch.int16).numpy().view(np.uint16)
        return Logits("logits.safetensors",
                      safetensors_header("logits", "BF16", shape, arr.nbytes),
                      _bytes_view(arr), keep=(t, arr))
    arr = t.numpy()
    return _numpy_logits(arr, None)


def _numpy_logits(arr, dtype):
    arr = np.asarray(arr)
    if arr.dtype.kind != "f":
        raise TypeError(f"logits must be a floating-point array, not {arr.dtype}")
    if dtype == "bfloat16":
        out = np.empty(arr.shape, np.uint16)
        _f32_to_bf16(np.ascontiguousarray(arr) if arr.dtype == np.float32 else arr, out)
        return Logits("logits.safetensors",
                      safetensors_header("logits", "BF16", arr.shape, out.nbytes),
                      _bytes_view(out), keep=out)
    want = {None: None, "float16": np.float16, "float32": np.float32}[dtype]
    if want is None and arr.dtype.newbyteorder("<") not in LOGIT_DTYPES:
        want = np.float32
    target = np.dtype(want or arr.dtype).newbyteorder("<")
    arr = np.ascontiguousarray(arr, dtype=target) if (arr.dtype != target or
                                                      not arr.flags.c_contiguous) else arr
    return Logits("logits.npy", npy_header(arr.dtype, arr.shape), _bytes_view(arr), keep=arr)


def _file_view(path):
    """A read-only memoryview of a whole file (mapped, not read), and what keeps it alive."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return memoryview(b""), None
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return memoryview(m), m


def encode_logits(logits, dtype=None):
    """Logits as they go on the wire. dtype: None (their own), "float16", "bfloat16" or
    "float32"."""
    if dtype not in (None, "float16", "bfloat16", "float32"):
        raise ValueError("dtype must be None, 'float16', 'bfloat16' or 'float32'")
    if _is_path(logits):
        view, keep = _file_view(logits)
        name = os.fsdecode(logits)
        return Logits(os.path.basename(name) or "logits.npy", b"", view, keep=keep)
    if _is_torch(logits):
        return _torch_logits(logits, dtype)
    return _numpy_logits(logits, dtype)


def encode_labels(labels):
    """[(filename, [buffers], keep)] mask parts: files as they are (PNG or .npy), arrays and
    tensors as one raw integer .npy."""
    if _is_path(labels):
        labels = [labels]
    if isinstance(labels, (list, tuple)) and labels and all(_is_path(p) for p in labels):
        parts = []
        for p in labels:
            view, keep = _file_view(p)
            parts.append((os.path.basename(os.fsdecode(p)), [view], keep))
        return parts
    if _is_torch(labels):
        labels = labels.detach().to("cpu").contiguous().numpy()
    elif isinstance(labels, (list, tuple)):
        labels = np.stack([x.detach().cpu().numpy() if _is_torch(x) else np.asarray(x)
                           for x in labels])
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu" and arr.dtype != np.bool_:
        raise TypeError(f"labels must be an integer array of class indices, not {arr.dtype}")
    target = arr.dtype.newbyteorder("<")
    if target not in LABEL_DTYPES:
        target = np.dtype("<i8") if arr.dtype.kind == "u" and arr.dtype.itemsize >= 4 \
            else np.dtype("<i4")
    if arr.dtype != target or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=target)
    return [("labels.npy", [npy_header(arr.dtype, arr.shape), _bytes_view(arr)], arr)]


# What every batch item needs first, the logits last (see the module's docstring).
PART_ORDER = ("params", "mask", "logits")


class Body:
    """A multipart/form-data body held as a list of buffers (sent without joining them).
    order: the part names in body order (the answer is the same for any; benchmarks compare)."""

    def __init__(self, logits, labels, params, order=PART_ORDER):
        if sorted(order) != sorted(PART_ORDER):
            raise ValueError(f"order must name each of {PART_ORDER} once, not {order!r}")
        self.boundary = "segloss-" + uuid.uuid4().hex
        b = self.boundary
        self.buffers = []
        self.keep = [logits.keep] + [keep for _, _, keep in labels]

        def part(name, filename, ctype, bufs):
            disp = f'Content-Disposition: form-data; name="{name}"'
            if filename:
                disp += f'; filename="{filename}"'
            self.buffers.append(f"--{b}\r\n{disp}\r\nContent-Type: {ctype}\r\n\r\n".encode())
            self.buffers.extend(x for x in bufs if len(x))
            self.buffers.append(b"\r\n")

        for name in order:
            if name == "params" and params:
                part("params", None, "application/json",
                     [json.dumps(params, separators=(",", ":")).encode()])
            elif name == "mask":
                for filename, bufs, _ in labels:
                    part("mask", filename, "application/octet-stream", bufs)
            elif name == "logits":
                part("logits", logits.filename, "application/octet-stream", logits.buffers)
        self.buffers.append(f"--{b}--\r\n".encode())
        self.length = sum(len(x) for x in self.buffers)

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"
