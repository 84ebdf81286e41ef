"""Per-tensor summaries: shape, dtype, min, max, mean, std and the NaN/+Inf/-Inf/zero counts.

A summary is computed by the framework that holds the tensor (no copy to numpy): a few
reductions, and the counting passes only when the min/max already show a non-finite value,
so a healthy tensor costs four memory-bound passes (min/max, sum, sum of squares, zeros). When a tensor has non-finite
values, min/max/mean/std are those of its finite values.

Every summary is a plain dict with the keys of :data:`SUMMARY_KEYS` (``None`` when a value does
not apply: the mean of an empty tensor, the stats of a string tensor).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "SUMMARY_KEYS",
    "is_finite",
    "make",
    "read_tf_summary",
    "summarize_numpy",
    "summarize_tf_graph",
    "summarize_torch",
]

SUMMARY_KEYS = ("shape", "dtype", "min", "max", "mean", "std", "nan", "posinf", "neginf", "zeros")


def make(
    shape: list[Any] | None,
    dtype: str | None,
    stats: list[float] | None = None,
    counts: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> dict[str, Any]:
    """A summary dict from ``stats = [min, max, mean, std]`` and ``counts = (nan, +inf, -inf, zeros)``."""
    mn, mx, mean, std = stats if stats is not None else (None, None, None, None)
    nan, posinf, neginf, zeros = counts
    return {
        "shape": shape,
        "dtype": dtype,
        "min": _number(mn),
        "max": _number(mx),
        "mean": _number(mean),
        "std": _number(std),
        "nan": int(nan),
        "posinf": int(posinf),
        "neginf": int(neginf),
        "zeros": int(zeros),
    }


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):  # min/max of a tensor with no finite value at all
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def is_finite(summary: dict[str, Any] | None) -> bool:
    """True unless the summary counts a NaN or an infinity."""
    if not summary:
        return True
    return not (summary.get("nan") or summary.get("posinf") or summary.get("neginf"))


# -- PyTorch ---------------------------------------------------------------------------------


def summarize_torch(t: Any) -> dict[str, Any]:
    """The summary of a ``torch.Tensor``, computed with torch kernels (call under no_grad)."""
    import torch

    shape = list(t.shape)
    dtype = str(t.dtype).removeprefix("torch.")
    n = t.numel()
    if n == 0 or t.layout != torch.strided or t.is_quantized or t.device.type == "meta" or t.is_complex():
        return make(shape, dtype)
    x = t.detach()
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    if not x.is_floating_point():
        mn, mx = torch.aminmax(x)
        std, mean = torch.std_mean(x.to(torch.float64), correction=0)
        nonzero = torch.count_nonzero(x)
        values = torch.stack([mn.double(), mx.double(), mean, std, nonzero.double()]).tolist()
        return make(shape, dtype, values[:4], (0, 0, 0, n - int(values[4])))
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()  # half/bfloat16: reduce in float32
    flat = x.reshape(-1)
    mn, mx = torch.aminmax(flat)
    # sum and sum of squares (a BLAS dot) are memory-bound passes; std_mean's Welford loop is
    # five times slower. E[x^2] - E[x]^2 loses precision when |mean| >> std: redone exactly then.
    # One stack and one .tolist(): each scalar fetched on its own costs a dispatch.
    values = torch.stack([mn, mx, flat.sum(), torch.dot(flat, flat)]).tolist()
    values.append(float(torch.count_nonzero(flat)))
    zeros = n - int(values[4])
    if math.isfinite(values[0]) and math.isfinite(values[1]):
        avg = values[2] / n
        var = values[3] / n - avg * avg
        if not math.isfinite(values[2]) or not math.isfinite(values[3]) or var <= 1e-3 * avg * avg:
            std_t, mean_t = torch.std_mean(flat.double() if n < 2**20 else flat, correction=0)
            avg, var = float(mean_t), float(std_t) ** 2
        return make(shape, dtype, [values[0], values[1], avg, math.sqrt(max(var, 0.0))], (0, 0, 0, zeros))
    # Non-finite values: count them, and describe the finite rest.
    nan = int(torch.isnan(x).sum())
    posinf = int((x == math.inf).sum())
    neginf = int((x == -math.inf).sum())
    finite = x[torch.isfinite(x)]
    if finite.numel() == 0:
        return make(shape, dtype, None, (nan, posinf, neginf, zeros))
    fmn, fmx = torch.aminmax(finite)
    fstd, fmean = torch.std_mean(finite, correction=0)
    stats = torch.stack([fmn.double(), fmx.double(), fmean.double(), fstd.double()]).tolist()
    return make(shape, dtype, stats, (nan, posinf, neginf, zeros))


# -- NumPy -----------------------------------------------------------------------------------


def summarize_numpy(a: Any) -> dict[str, Any]:
    """The summary of a numpy array (values fetched from a framework that has no reductions)."""
    import numpy as np

    a = np.asarray(a)
    shape, dtype = list(a.shape), str(a.dtype)
    if a.size == 0 or a.dtype.kind not in "biuf":
        return make(shape, dtype)
    x = a.astype(np.uint8) if a.dtype.kind == "b" else a
    zeros = int(x.size - np.count_nonzero(x))
    if x.dtype.kind != "f":
        xf = x.astype(np.float64)
        return make(shape, dtype, [x.min(), x.max(), xf.mean(), xf.std()], (0, 0, 0, zeros))
    finite_mask = np.isfinite(x)
    if finite_mask.all():
        xf = x.astype(np.float64)  # numpy's float32 mean drifts on large arrays
        return make(shape, dtype, [x.min(), x.max(), xf.mean(), xf.std()], (0, 0, 0, zeros))
    counts = (int(np.isnan(x).sum()), int((x == np.inf).sum()), int((x == -np.inf).sum()), zeros)
    finite = x[finite_mask].astype(np.float64)
    if finite.size == 0:
        return make(shape, dtype, None, counts)
    return make(shape, dtype, [finite.min(), finite.max(), finite.mean(), finite.std()], counts)


# -- TensorFlow ------------------------------------------------------------------------------

# DebugNumericSummary's vector: [initialized, count, nan, -inf, negative, zero, positive, +inf,
# min, max, mean, variance, dtype enum, rank, *shape]; min/max/mean/variance are over the finite
# values. It has CPU kernels for bool, the integers, float32 and float64.
_DNS_HEAD = 14


def tf_has_stats(dtype: Any) -> bool:
    """Does a TensorFlow dtype get min/max/mean/std (bool, integers, real floats), or only a shape?"""
    dtype = dtype.base_dtype
    return bool((dtype.is_bool or dtype.is_integer or dtype.is_floating) and not dtype.is_quantized)


def summarize_tf_graph(tensor: Any) -> Any:
    """The summary of a TensorFlow tensor, as ops in the tensor's own graph (or run eagerly).

    Returns a small 1-D float64 tensor to fetch instead of the tensor; :func:`read_tf_summary`
    turns it into a summary dict. Numbers go through one ``DebugNumericSummary`` op (TensorFlow's
    own debugger reduction: the counts, and min/max/mean/variance of the finite values, in one
    kernel), which gives the semantics of :func:`summarize_torch`: bools count as 0/1, half floats
    reduce in float32, and NaN/Inf are counted and left out of the statistics. Strings,
    resources, variants and complex numbers get ``[rank, *shape]`` only.
    """
    import tensorflow as tf

    dtype = tensor.dtype.base_dtype
    if not tf_has_stats(dtype):
        shape = tf.shape(tensor, out_type=tf.int64)
        return tf.concat(
            [tf.reshape(tf.cast(tf.size(shape), tf.float64), [1]), tf.cast(shape, tf.float64)], 0
        )
    if dtype.is_floating and dtype not in (tf.float32, tf.float64):
        tensor = tf.cast(tensor, tf.float32)  # half / bfloat16: reduce in float32, as torch does
    name = "t:0" if tf.executing_eagerly() else tensor.name  # the op insists on a tensor name
    return tf.raw_ops.DebugNumericSummary(input=tensor, tensor_name=name)


def summary_node_defs(tensors: list[tuple[str, Any]], prefix: str) -> tuple[list[Any], list[str]]:
    """:func:`summarize_tf_graph` for many tensors at once, as ``NodeDef`` protos to add to a
    GraphDef (``tensors``: ``(tensor name, dtype)``; node names start with ``prefix``).

    Building thousands of summaries op by op in Python costs about a millisecond each;
    NodeDefs are imported by TensorFlow's C++ importer in one go. Returns the NodeDefs and the
    name of each tensor's summary vector, in the order of ``tensors``.
    """
    import tensorflow as tf
    from tensorflow.core.framework import node_def_pb2

    def node(name: str, op: str, inputs: list[str], **attrs: Any) -> Any:
        n = node_def_pb2.NodeDef(name=f"{prefix}/{name}", op=op, input=inputs)
        for key, value in attrs.items():
            if isinstance(value, tf.DType):
                n.attr[key].type = value.as_datatype_enum
            elif isinstance(value, bytes):
                n.attr[key].s = value
            elif isinstance(value, bool):
                n.attr[key].b = value
            else:
                n.attr[key].i = value
        nodes.append(n)
        return n.name

    nodes: list[Any] = []
    names: list[str] = []
    axis = None
    for i, (tensor, dtype) in enumerate(tensors):
        dtype = dtype.base_dtype
        if tf_has_stats(dtype):
            source = tensor
            if dtype.is_floating and dtype not in (tf.float32, tf.float64):
                source = node(f"{i}/cast", "Cast", [tensor], SrcT=dtype, DstT=tf.float32, Truncate=False)
                dtype = tf.float32
            names.append(
                node(f"{i}", "DebugNumericSummary", [source], T=dtype, tensor_name=tensor.encode()) + ":0"
            )
            continue
        if axis is None:
            axis = node("axis", "Const", [], dtype=tf.int32)
            nodes[-1].attr["value"].tensor.CopyFrom(tf.make_tensor_proto(0, tf.int32))
        shape = node(f"{i}/shape", "Shape", [tensor], T=dtype, out_type=tf.int64)
        dims = node(f"{i}/dims", "Cast", [shape], SrcT=tf.int64, DstT=tf.float64, Truncate=False)
        rank = node(f"{i}/rank", "Size", [shape], T=tf.int64, out_type=tf.int64)
        rank = node(f"{i}/rank_f", "Cast", [rank], SrcT=tf.int64, DstT=tf.float64, Truncate=False)
        rank = node(f"{i}/rank_1", "Pack", [rank], T=tf.float64, N=1, axis=0)
        names.append(node(f"{i}", "ConcatV2", [rank, dims, axis], T=tf.float64, N=2, Tidx=tf.int32) + ":0")
    return nodes, names


def read_tf_summary(values: Any, dtype: Any, offset: int = 0) -> tuple[dict[str, Any], int]:
    """Read one :func:`summarize_tf_graph` vector from ``values`` (a fetched 1-D array, maybe
    several vectors end to end) at ``offset``: the summary dict of a tensor of TensorFlow
    ``dtype``, and the offset just past that vector."""
    dtype = dtype.base_dtype
    if not tf_has_stats(dtype):
        rank = int(values[offset])
        shape = [int(d) for d in values[offset + 1 : offset + 1 + rank]]
        return make(shape, dtype.name), offset + 1 + rank
    v = [float(x) for x in values[offset : offset + _DNS_HEAD]]
    rank = int(v[13])
    end = offset + _DNS_HEAD + rank
    shape = [int(d) for d in values[offset + _DNS_HEAD : end]]
    count, nan, neginf, zeros, posinf = (int(x) for x in (v[1], v[2], v[3], v[5], v[7]))
    if count == 0:
        return make(shape, dtype.name), end
    counts = (nan, posinf, neginf, zeros)
    if nan + posinf + neginf == count:  # nothing finite to describe
        return make(shape, dtype.name, None, counts), end
    std = math.sqrt(max(v[11], 0.0))
    return make(shape, dtype.name, [v[8], v[9], v[10], std], counts), end
