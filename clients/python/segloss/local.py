"""segloss.local: the daemon's numbers in-process, through libsegloss.so (ctypes).

    from segloss import local
    answer = local.evaluate(logits, labels, dice_loss=True)

For machines without a daemon. The answer has the daemon's keys (shape, num_classes, pixels,
loss, per_class, metrics, params; confusion_matrix on request) and the same numbers bit for bit:
the same library computes them. Logits: numpy or torch, float32/float16/float64, or bfloat16
(a torch bfloat16 tensor, or dtype="bfloat16" to convert); labels: integer arrays. Nothing is
copied when the arrays are C-contiguous in a dtype the library takes.

The library is found through $SEGLOSS_LIB, then the build/ folder of a source tree this package
sits in, then the system's libsegloss.so.0 (make install).
"""
import ctypes
import ctypes.util
import math
import os
import threading

import numpy as np

from . import _wire

_F32, _F16, _BF16, _F64, _U8, _I8, _U16, _I32, _I64 = range(1, 10)
_DTYPES = {np.dtype("<f4"): _F32, np.dtype("<f2"): _F16, np.dtype("<f8"): _F64,
           np.dtype("u1"): _U8, np.dtype("i1"): _I8, np.dtype("<u2"): _U16,
           np.dtype("<i4"): _I32, np.dtype("<i8"): _I64}
_MAX_RANK = 4


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.c_size_t * _MAX_RANK)]


class _Params(ctypes.Structure):
    _fields_ = [("class_weights", ctypes.POINTER(ctypes.c_double)),
                ("class_weights_len", ctypes.c_size_t),
                ("alpha_kind", ctypes.c_int),
                ("alpha", ctypes.c_double),
                ("alpha_per_class", ctypes.POINTER(ctypes.c_double)),
                ("alpha_len", ctypes.c_size_t),
                ("gamma", ctypes.c_double), ("beta", ctypes.c_double),
                ("smooth", ctypes.c_double), ("threshold", ctypes.c_double),
                ("semantics", ctypes.c_int), ("main_loss", ctypes.c_int),
                ("dice_loss", ctypes.c_bool)]


class _Sum(ctypes.Structure):
    _fields_ = [("lo", ctypes.c_uint64), ("hi", ctypes.c_int64)]


class _Stats(ctypes.Structure):
    _fields_ = [("num_classes", ctypes.c_size_t), ("semantics", ctypes.c_int),
                ("batches", ctypes.c_uint64), ("pixels_total", ctypes.c_uint64),
                ("pixels_valid", ctypes.c_uint64), ("ce_num", _Sum), ("ce_den", _Sum),
                ("focal_num", _Sum), ("dice_tp", ctypes.POINTER(_Sum)),
                ("dice_psum", ctypes.POINTER(_Sum)),
                ("fscore_tp", ctypes.POINTER(ctypes.c_uint64)),
                ("fscore_pos", ctypes.POINTER(ctypes.c_uint64)),
                ("confusion", ctypes.POINTER(ctypes.c_uint64))]


_PD = ctypes.POINTER(ctypes.c_double)


class _Result(ctypes.Structure):
    _fields_ = [("n", ctypes.c_size_t), ("c", ctypes.c_size_t), ("h", ctypes.c_size_t),
                ("w", ctypes.c_size_t), ("num_classes", ctypes.c_size_t),
                ("pixels_total", ctypes.c_uint64), ("pixels_valid", ctypes.c_uint64),
                ("pixels_ignored", ctypes.c_uint64),
                ("ce", ctypes.c_double), ("focal", ctypes.c_double),
                ("dice", ctypes.c_double), ("total", ctypes.c_double),
                ("dice_per_class", _PD), ("f_score", _PD), ("iou", _PD), ("precision", _PD),
                ("recall", _PD), ("support", ctypes.POINTER(ctypes.c_uint64)),
                ("mean_dice", ctypes.c_double), ("mean_f_score", ctypes.c_double),
                ("miou", ctypes.c_double), ("mpa", ctypes.c_double),
                ("accuracy", ctypes.c_double), ("stats", ctypes.POINTER(_Stats))]


class LocalError(ValueError):
    """An input the library refused; code is its SEGLOSS_E... number."""

    def __init__(self, code, detail):
        self.code = code
        self.detail = detail
        super().__init__(detail)


_lib = None
_ctx = None
_lock = threading.Lock()


def _candidates():
    env = os.environ.get("SEGLOSS_LIB")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    yield os.path.join(root, os.environ.get("BUILD", "build"), "libsegloss.so")
    yield "libsegloss.so.0"
    found = ctypes.util.find_library("segloss")
    if found:
        yield found


def library():
    """The loaded libsegloss (ctypes.CDLL), loaded on first use."""
    global _lib, _ctx
    with _lock:
        if _lib is not None:
            return _lib
        errors = []
        for path in _candidates():
            if os.sep in path and not os.path.exists(path):
                continue
            try:
                lib = ctypes.CDLL(path)
                break
            except OSError as e:
                errors.append(f"{path}: {e}")
        else:
            raise OSError("libsegloss.so not found (set SEGLOSS_LIB, run `make` in the source "
                          "tree, or `make install`): " + "; ".join(errors))
        lib.segloss_ctx_new.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint,
                                        ctypes.c_int]
        lib.segloss_ctx_free.argtypes = [ctypes.c_void_p]
        lib.segloss_params_default.argtypes = [ctypes.POINTER(_Params)]
        lib.segloss_evaluate.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Tensor),
                                         ctypes.POINTER(_Tensor), ctypes.POINTER(_Params),
                                         ctypes.POINTER(ctypes.POINTER(_Result)),
                                         ctypes.c_char_p, ctypes.c_size_t]
        lib.segloss_result_free.argtypes = [ctypes.POINTER(_Result)]
        lib.segloss_params_check.argtypes = [ctypes.POINTER(_Params), ctypes.c_size_t,
                                             ctypes.c_char_p, ctypes.c_size_t]
        ctx = ctypes.c_void_p()
        threads = int(os.environ.get("SEGLOSS_EVAL_THREADS", "0"))
        if lib.segloss_ctx_new(ctypes.byref(ctx), threads, 0) != 0:
            raise OSError("segloss_ctx_new failed")
        _lib, _ctx = lib, ctx
        return lib


def _tensor(arr, dtype_code=None):
    t = _Tensor()
    t.data = arr.ctypes.data
    t.dtype = dtype_code or _DTYPES[arr.dtype]
    t.rank = arr.ndim
    for i, s in enumerate(arr.shape):
        t.shape[i] = s
    return t


def _logits_array(logits, dtype):
    """(array, dtype code) of the logits as the library reads them (see _wire)."""
    if _wire._is_path(logits):
        logits = np.load(logits, mmap_mode="r")
    enc = _wire.encode_logits(logits, dtype)
    if enc.filename.endswith(".safetensors"):
        bits = enc.keep[1] if isinstance(enc.keep, tuple) else enc.keep
        return bits, _BF16, enc.keep
    arr = enc.keep
    return arr, _DTYPES[arr.dtype], arr


def _labels_array(labels):
    if _wire._is_path(labels) and os.fsdecode(labels).endswith(".npy"):
        labels = np.load(labels)
    parts = _wire.encode_labels(labels)
    if len(parts) != 1 or not parts[0][0].endswith(".npy") or parts[0][2] is None:
        raise TypeError("segloss.local takes labels as an integer array or tensor")
    return parts[0][2]


def _doubles(values):
    arr = (ctypes.c_double * len(values))(*[float(v) for v in values])
    return arr


def _num(x):
    return None if math.isnan(x) or math.isinf(x) else x


def _build_params(p, params, c):
    keep = []
    known = {"class_weights", "alpha", "gamma", "beta", "smooth", "threshold", "main_loss",
             "dice_loss", "semantics", "num_classes", "confusion_matrix", "class_names"}
    unknown = set(params) - known
    if unknown:
        raise LocalError(-7, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    if params.get("class_weights") is not None:
        w = _doubles(params["class_weights"])
        keep.append(w)
        p.class_weights = ctypes.cast(w, _PD)
        p.class_weights_len = len(params["class_weights"])
    if "alpha" in params:
        a = params["alpha"]
        if a is None:
            p.alpha_kind = 0
        elif isinstance(a, (list, tuple)):
            arr = _doubles(a)
            keep.append(arr)
            p.alpha_kind, p.alpha_per_class, p.alpha_len = 2, ctypes.cast(arr, _PD), len(a)
        else:
            p.alpha_kind, p.alpha = 1, float(a)
    for k in ("gamma", "beta", "smooth", "threshold"):
        if params.get(k) is not None:
            setattr(p, k, float(params[k]))
    if "main_loss" in params:
        p.main_loss = {"ce": 0, "focal": 1}[params["main_loss"]]
    if "semantics" in params:
        p.semantics = {"seed": 0, "standard": 1}[params["semantics"]]
    if "dice_loss" in params:
        p.dice_loss = bool(params["dice_loss"])
    if params.get("num_classes") is not None and int(params["num_classes"]) != c:
        raise LocalError(-7, f"num_classes is {params['num_classes']} but the logits have "
                             f"{c} classes")
    return keep


def evaluate(logits, labels, dtype=None, **params):
    """The answer POST /v1/evaluate gives for these inputs (without id, timing, run)."""
    lib = library()
    arr, code, keep_logits = _logits_array(logits, dtype)
    lab = _labels_array(labels)
    c = arr.shape[1] if arr.ndim == 4 else arr.shape[0]
    p = _Params()
    lib.segloss_params_default(ctypes.byref(p))
    keep = _build_params(p, params, c)
    detail = ctypes.create_string_buffer(512)
    if lib.segloss_params_check(ctypes.byref(p), c, detail, len(detail)) != 0:
        raise LocalError(-7, detail.value.decode(errors="replace"))
    lt, bt = _tensor(arr, code), _tensor(lab)
    res = ctypes.POINTER(_Result)()
    rc = lib.segloss_evaluate(_ctx, ctypes.byref(lt), ctypes.byref(bt), ctypes.byref(p),
                              ctypes.byref(res), detail, len(detail))
    del keep, keep_logits
    if rc != 0:
        raise LocalError(rc, detail.value.decode(errors="replace"))
    try:
        return _answer(res.contents, p, params)
    finally:
        lib.segloss_result_free(res)


def _answer(r, p, params):
    c = r.num_classes

    def arr(ptr):
        return [_num(ptr[i]) for i in range(c)]
    out = {
        "shape": {"n": r.n, "c": r.c, "h": r.h, "w": r.w},
        "num_classes": c,
        "pixels": {"total": r.pixels_total, "valid": r.pixels_valid,
                   "ignored": r.pixels_ignored},
        "loss": {"ce": _num(r.ce), "focal": _num(r.focal), "dice": _num(r.dice),
                 "total": _num(r.total)},
        "per_class": {"dice": arr(r.dice_per_class), "f_score": arr(r.f_score),
                      "iou": arr(r.iou), "precision": arr(r.precision),
                      "recall": arr(r.recall), "support": [r.support[i] for i in range(c)]},
        "metrics": {"mean_dice": _num(r.mean_dice), "f_score": _num(r.mean_f_score),
                    "miou": _num(r.miou), "mpa": _num(r.mpa), "accuracy": _num(r.accuracy)},
        "params": {
            "class_weights": [p.class_weights[i] if p.class_weights else 1.0
                              for i in range(c)],
            "alpha": None if p.alpha_kind == 0 else p.alpha if p.alpha_kind == 1 else
            [p.alpha_per_class[i] for i in range(p.alpha_len)],
            "gamma": p.gamma, "beta": p.beta, "smooth": p.smooth, "threshold": p.threshold,
            "main_loss": "focal" if p.main_loss == 1 else "ce", "dice_loss": bool(p.dice_loss),
            "num_classes": c, "semantics": "standard" if p.semantics == 1 else "seed",
            "confusion_matrix": bool(params.get("confusion_matrix", False)),
        },
    }
    if params.get("confusion_matrix") and r.stats and r.stats.contents.confusion:
        cm = r.stats.contents.confusion
        out["confusion_matrix"] = [[cm[i * c + j] for j in range(c)] for i in range(c)]
    from .client import Answer
    return Answer(out)
