"""Per-tensor summaries: shape, dtype, min, max, mean, std and the NaN/+Inf/-Inf/zero counts.

A summary is computed by the framework that holds the tensor (no copy to numpy): a few
reductions, and the counting passes only when the min/max already show a non-finite value,
so a healthy tensor costs five memory-bound passes (min/max, sum, sum of squares, and two
over its bits for the zeros, skipped when 0 is outside [min, max]). When a tensor has non-finite
values, min/max/mean/std are those of its finite values.

Every summary is a plain dict with the keys of :data:`SUMMARY_KEYS` (``None`` when a value does
not apply: the mean of an empty tensor, the stats of a string tensor).
"""

from __future__ import annotations

import math
import re
import struct
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


_COUNTED = re.compile(r"(float|bfloat|half|int|uint|bool|complex)")


def counted(summary: dict[str, Any] | None) -> bool:
    """Were the summary's NaN and infinities counted? Not for a TensorFlow variant (a loop's
    TensorList), a resource, a string or a quantized tensor: their counts of 0 say nothing."""
    return summary is None or bool(_COUNTED.match(str(summary.get("dtype") or "float")))


def is_finite(summary: dict[str, Any] | None) -> bool:
    """True unless the summary counts a NaN or an infinity."""
    if not summary:
        return True
    return not (summary.get("nan") or summary.get("posinf") or summary.get("neginf"))


# -- PyTorch ---------------------------------------------------------------------------------


def summarize_torch(t: Any) -> dict[str, Any]:
    """The summary of a ``torch.Tensor``, computed with torch kernels (call under no_grad)."""
    import torch

    if t.layout == torch.sparse_coo:  # an nn.Embedding(sparse=True)'s gradient: the values it stands for
        t = t.to_dense()
    shape = list(t.shape)
    dtype = str(t.dtype).removeprefix("torch.")
    n = t.numel()
    if n == 0 or t.layout != torch.strided or t.is_quantized or t.device.type == "meta":
        return make(shape, dtype)
    if t.is_complex():
        return _summarize_complex(torch, t.detach(), shape, dtype)
    x = t.detach()
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    if not x.is_floating_point():
        mn, mx = torch.aminmax(x)
        std, mean = torch.std_mean(x.to(torch.float64), correction=0)
        values = torch.stack([mn.double(), mx.double(), mean, std]).tolist()
        return make(shape, dtype, values, (0, 0, 0, _zeros(torch, x.reshape(-1), n)))
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()  # half/bfloat16: reduce in float32
    flat = x.reshape(-1)
    a = _as_numpy(torch, flat)
    if a is not None:
        fast = _summarize_cpu_float(torch, flat, a, shape, dtype, n)
        if fast is not None:
            return fast
        return _summarize_nonfinite(torch, x, flat, shape, dtype, n, a)
    mn, mx = torch.aminmax(flat)
    # sum and sum of squares (a BLAS dot) are memory-bound passes; std_mean's Welford loop is
    # five times slower. E[x^2] - E[x]^2 loses precision when |mean| >> std: redone exactly then.
    # One stack and one .tolist(): each scalar fetched on its own costs a dispatch.
    values = torch.stack([mn, mx, flat.sum()]).tolist()
    if math.isfinite(values[0]) and math.isfinite(values[1]):
        # No zero lies outside [min, max]: most activations cross zero, but not all of them.
        zeros = _zeros(torch, flat, n) if values[0] <= 0 <= values[1] else 0
        return _finite_summary(torch, flat, shape, dtype, n, values, zeros)
    return _summarize_nonfinite(torch, x, flat, shape, dtype, n)


def _summarize_complex(torch: Any, z: Any, shape: list[Any], dtype: str) -> dict[str, Any]:
    """Complex values (an FFT's spectrum) have no order, so no min, max or mean, but they hold
    NaN and infinities: counted by element, a NaN in either part a NaN, else an infinity in either
    part +inf or -inf by its sign. Uncounted, a NaN made in the complex domain was blamed on the
    op that brought it back to real numbers."""
    parts = torch.view_as_real(z.resolve_conj())  # [..., 2]: the real and imaginary parts
    nan = torch.isnan(parts).any(-1)
    posinf = (parts == math.inf).any(-1) & ~nan
    neginf = (parts == -math.inf).any(-1) & ~nan & ~posinf
    zeros = (parts == 0).all(-1)
    nan_n, posinf_n, neginf_n, zeros_n = torch.stack(
        [nan.sum(), posinf.sum(), neginf.sum(), zeros.sum()]
    ).tolist()
    return make(shape, dtype, None, (nan_n, posinf_n, neginf_n, zeros_n))


def _finite_summary(
    torch: Any,
    flat: Any,
    shape: list[Any],
    dtype: str,
    n: int,
    values: list[float],
    zeros: int,
    a: Any = None,
) -> dict[str, Any]:
    """The summary of a float tensor with no NaN or infinity, from ``values = [min, max, sum]``
    (``a``: its memory as a numpy array, when the caller has it)."""
    avg = values[2] / n
    square = _sum_of_squares(torch, flat, a)
    var = square / n - avg * avg
    if not math.isfinite(values[2]) or not math.isfinite(square) or var <= 1e-3 * avg * avg:
        std_t, mean_t = torch.std_mean(flat.double() if n < 2**20 else flat, correction=0)
        avg, var = float(mean_t), float(std_t) ** 2
    return make(shape, dtype, [values[0], values[1], avg, math.sqrt(max(var, 0.0))], (0, 0, 0, zeros))


# A float's bits read as an integer of its width, and back (exact: no rounding either way).
_BITS = {4: (struct.Struct("<i"), struct.Struct("<f")), 8: (struct.Struct("<q"), struct.Struct("<d"))}


def _summarize_cpu_float(
    torch: Any, flat: Any, a: Any, shape: list[Any], dtype: str, n: int
) -> dict[str, Any] | None:
    """The summary of a 1-D float32/float64 CPU tensor whose memory numpy sees as ``a``; None
    when it holds a NaN or an infinity (the caller counts them).

    The min and max come from the values' bits seen as integers: ``torch.aminmax`` over those
    takes 40% of its time over the floats (no NaN to propagate). A non-negative float's bits
    order as the float does; a negative one's (sign bit set: a negative integer) in reverse. So
    when every value has one sign, the integer min and max are the float min and max (swapped
    for negatives); when the signs are mixed, the integer max is the float max and numpy's min
    gives the float min. A NaN or an infinity shows as a non-finite min or max either way. The
    integer minimum also says whether a -0.0 (the sign bit alone) is there, for the zero count.
    Min, max, sum, sum of squares and counts are exactly those of the float reductions."""
    pack, unpack = _BITS[a.dtype.itemsize]
    lo_t, hi_t = torch.aminmax(flat.view(torch.int32 if a.dtype.itemsize == 4 else torch.int64))
    lo, hi = lo_t.item(), hi_t.item()
    if lo >= 0:
        mn, mx = unpack.unpack(pack.pack(lo))[0], unpack.unpack(pack.pack(hi))[0]
    elif hi < 0:
        mn, mx = unpack.unpack(pack.pack(hi))[0], unpack.unpack(pack.pack(lo))[0]
    else:
        mn, mx = float(a.min()), unpack.unpack(pack.pack(hi))[0]
    if not (math.isfinite(mn) and math.isfinite(mx)):
        return None
    negative_zero = lo == -(1 << (8 * a.dtype.itemsize - 1))
    # No zero lies outside [min, max]: most activations cross zero, but not all of them.
    zeros = _count_zeros(a, n, negative_zero) if mn <= 0 <= mx else 0
    return _finite_summary(torch, flat, shape, dtype, n, [mn, mx, flat.sum().item()], zeros, a)


def _summarize_nonfinite(
    torch: Any, x: Any, flat: Any, shape: list[Any], dtype: str, n: int, a: Any = None
) -> dict[str, Any]:
    """Non-finite values: count them, and describe the finite rest. ``a``: ``flat``'s memory
    as a numpy array, when the caller has it."""
    zeros = _zeros(torch, flat, n)
    if a is not None:
        # On the CPU numpy counts and selects ten to twenty times faster than torch's
        # comparisons, sums of booleans and masked selection (a causal mask's 1M-value attention
        # scores, half -inf: 7 ms in torch, 0.4 ms here). The finite values come out in the same
        # order as ``x[torch.isfinite(x)]``, so torch's reductions below give the same numbers.
        import numpy as np

        nan = int(np.count_nonzero(np.isnan(a)))
        posinf = int(np.count_nonzero(a == np.inf))
        neginf = int(np.count_nonzero(a == -np.inf))
        finite = torch.from_numpy(a[np.isfinite(a)])
    else:
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


def _as_numpy(torch: Any, flat: Any) -> Any:
    """A 1-D CPU tensor's memory as a numpy array (no copy), or None where numpy cannot see it
    (another device, a tensor subclass, a lazy negation or conjugation)."""
    if flat.device.type != "cpu" or type(flat) is not torch.Tensor or flat.is_neg() or flat.is_conj():
        return None
    try:
        return flat.numpy()
    except (RuntimeError, TypeError):
        return None


def _sum_of_squares(torch: Any, flat: Any, a: Any = None) -> float:
    """Σx² of a 1-D float tensor, a BLAS dot (numpy's on the CPU: about half torch.dot's time).
    ``a``: the tensor's memory as a numpy array, when the caller has it."""
    if a is None:
        a = _as_numpy(torch, flat)
    if a is None:
        return float(torch.dot(flat, flat))
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is an infinity, handled
        return float(np.dot(a, a))


def _zeros(torch: Any, flat: Any, n: int) -> int:
    """How many values of a 1-D tensor are zero (for floats, +0.0 and -0.0).

    ``torch.count_nonzero`` takes five times a sum on the CPU; numpy's count over the values'
    bits as integers takes one and a half. A float zero is all-zero bits, or the sign bit alone
    (-0.0), the integer type's minimum: those are counted apart, when the minimum shows one."""
    a = _as_numpy(torch, flat)
    if a is None:
        return n - int(torch.count_nonzero(flat))
    if a.dtype.kind != "f":
        import numpy as np

        return n - int(np.count_nonzero(a))
    bits = a.view(_INT_OF[a.dtype.itemsize])
    return _count_zeros(a, n, bits.min() == _LOWEST[a.dtype.itemsize])


def _count_zeros(a: Any, n: int, negative_zero: bool) -> int:
    """The zeros of a 1-D float array, +0.0 (all bits clear) and, when ``negative_zero`` says
    one is there, -0.0 (the sign bit alone, the integer type's minimum)."""
    import numpy as np

    bits = a.view(_INT_OF[a.dtype.itemsize])
    zeros = n - int(np.count_nonzero(bits))
    if negative_zero:
        zeros += int(np.count_nonzero(bits == _LOWEST[a.dtype.itemsize]))
    return zeros


_INT_OF = {4: "int32", 8: "int64"}  # numpy's integer type of a float's width
_LOWEST = {4: -(1 << 31), 8: -(1 << 63)}  # -0.0's bits as that integer


# -- NumPy -----------------------------------------------------------------------------------


def summarize_numpy(a: Any) -> dict[str, Any]:
    """The summary of a numpy array (values fetched from a framework that has no reductions)."""
    import numpy as np

    a = np.asarray(a)
    shape, dtype = list(a.shape), str(a.dtype)
    if a.size and a.dtype.kind == "c":  # as _summarize_complex: counted by element, no order
        nan = np.isnan(a.real) | np.isnan(a.imag)
        posinf = ((a.real == np.inf) | (a.imag == np.inf)) & ~nan
        neginf = ((a.real == -np.inf) | (a.imag == -np.inf)) & ~nan & ~posinf
        zeros = int(np.count_nonzero(a == 0))
        return make(shape, dtype, None, (int(nan.sum()), int(posinf.sum()), int(neginf.sum()), zeros))
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

# Float32 tensors of at least this many values whose shape is known are summarised with
# multi-threaded reductions (:func:`summary_node_defs`); DebugNumericSummary is one thread.
FAST_MIN_SIZE = 1 << 16
# The reductions' variance E[x²] - E[x]² (float32 sums) is used when it is above this fraction
# of the squared mean: within about 1e-5 of the exact one. Below, the exact op is run instead.
_FAST_VARIANCE_RATIO = 0.1
# Their zeros are counted in blocks of at most this many values.
_ZERO_BLOCK = 1 << 20
# The streams that summaries are laid out in, and their dtypes. The pieces of ``fast`` are
# scalars (packed), the others' 1-D vectors (concatenated).
TF_STREAMS = {"exact": "float64", "fast": "float32", "zeros": "uint8"}


def tf_has_stats(dtype: Any) -> bool:
    """Does a TensorFlow dtype get min/max/mean/std (bool, integers, real floats), or only a shape?"""
    dtype = dtype.base_dtype
    return bool((dtype.is_bool or dtype.is_integer or dtype.is_floating) and not dtype.is_quantized)


def tf_counted(dtype: Any) -> bool:
    """Are a TensorFlow dtype's NaN and infinities counted: those with stats, and complex numbers
    (counted through their modulus, which is NaN, infinite or 0 exactly when the number is)."""
    return tf_has_stats(dtype) or bool(dtype.base_dtype.is_complex)


def summarize_tf_graph(tensor: Any) -> Any:
    """The summary of a TensorFlow tensor, as ops in the tensor's own graph (or run eagerly).

    Returns a small 1-D float64 tensor to fetch instead of the tensor; :func:`read_tf_summary`
    turns it into a summary dict. Numbers go through one ``DebugNumericSummary`` op (TensorFlow's
    own debugger reduction: the counts, and min/max/mean/variance of the finite values, in one
    kernel), which gives the semantics of :func:`summarize_torch`: bools count as 0/1, half floats
    reduce in float32, and NaN/Inf are counted and left out of the statistics. Complex numbers
    are summarised through their modulus, counts only. Strings, resources and variants get
    ``[rank, *shape]`` only.

    This is the exact reference; the stepper's :func:`summary_node_defs` takes a faster path for
    large float32 tensors.
    """
    import tensorflow as tf

    dtype = tensor.dtype.base_dtype
    if not tf_counted(dtype):
        shape = tf.shape(tensor, out_type=tf.int64)
        return tf.concat(
            [tf.reshape(tf.cast(tf.size(shape), tf.float64), [1]), tf.cast(shape, tf.float64)], 0
        )
    if dtype.is_complex:
        tensor = tf.abs(tensor)  # the modulus: read back as counts only (read_tf_summary)
    if dtype.is_floating and dtype not in (tf.float32, tf.float64):
        tensor = tf.cast(tensor, tf.float32)  # half / bfloat16: reduce in float32, as torch does
    name = "t:0" if tf.executing_eagerly() else tensor.name  # the op insists on a tensor name
    return tf.raw_ops.DebugNumericSummary(input=tensor, tensor_name=name)


class TFSummary:
    """How :func:`summary_node_defs` summarises one tensor, and where its values are.

    ``kind`` is ``"exact"``: one vector in the ``exact`` stream, DebugNumericSummary's (or
    ``[rank, *shape]`` for a dtype with no stats); ``"fast"``: four float32 values in ``fast``
    (min, max, sum, sqrt of the sum of squares), the zero counts of ``rows`` rows in ``zeros``,
    and in ``exact`` ``[-1]``, or DebugNumericSummary's vector when those cannot be used (a NaN
    or an infinity, or a variance too small for float32 sums); ``"static"``: nothing to fetch,
    a dtype with no stats whose shape is known. ``pieces``: stream -> this tensor's pieces of
    it. ``done``: the nodes after which the summary no longer needs the tensor.
    """

    __slots__ = ("done", "dtype", "kind", "pieces", "rows", "shape")

    def __init__(self, kind: str, dtype: Any, shape: list[Any] | None) -> None:
        self.kind = kind
        self.dtype = dtype
        self.shape = shape
        self.rows = 0
        self.pieces: dict[str, list[str]] = {}
        self.done: list[str] = []


class _NodeDefs:
    """NodeDefs for a GraphDef (inputs ``node:port``) or a FunctionDef (``node:arg:index``)."""

    def __init__(self, prefix: str, function: bool) -> None:
        self.prefix = prefix
        self.function = function
        self.nodes: list[Any] = []
        self._consts: dict[tuple[str, str], str] = {}

    def out(self, node: str, arg: str = "output", port: int = 0, index: int = 0) -> str:
        """The name of an output: ``arg`` is its name in the op's definition (``index`` in it,
        for a list), ``port`` its index among the op's outputs."""
        return f"{node}:{arg}:{index}" if self.function else f"{node}:{port}"

    def add(self, name: str, op: str, inputs: list[str], **attrs: Any) -> str:
        import tensorflow as tf
        from tensorflow.core.framework import node_def_pb2

        n = node_def_pb2.NodeDef(name=f"{self.prefix}/{name}", op=op, input=inputs)
        for key, value in attrs.items():
            if isinstance(value, tf.DType):
                n.attr[key].type = value.as_datatype_enum
            elif isinstance(value, str):
                n.attr[key].s = value.encode()
            elif isinstance(value, bool):
                n.attr[key].b = value
            else:
                n.attr[key].i = value
        self.nodes.append(n)
        return str(n.name)

    def const(self, value: Any, dtype: Any) -> str:
        """A constant, one node per value."""
        import tensorflow as tf

        key = (repr(value), dtype.name)
        if key not in self._consts:
            name = self.add(f"const/{len(self._consts)}", "Const", [], dtype=dtype)
            self.nodes[-1].attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype))
            self._consts[key] = self.out(name)
        return self._consts[key]

    def concat(self, name: str, pieces: list[str], dtype: Any, *, scalars: bool = False) -> str:
        """The 1-D ``pieces`` end to end (ConcatV2 takes two or more), or the ``scalars`` packed."""
        import numpy as np
        import tensorflow as tf

        if not pieces:
            return self.const(np.zeros([0], dtype.as_numpy_dtype), dtype)
        if scalars:
            return self.out(self.add(name, "Pack", pieces, T=dtype, N=len(pieces), axis=0))
        if len(pieces) == 1:
            return self.out(self.add(name, "Identity", pieces, T=dtype))
        axis = self.const(0, tf.int32)
        return self.out(self.add(name, "ConcatV2", [*pieces, axis], T=dtype, N=len(pieces), Tidx=tf.int32))


def summary_node_defs(
    tensors: list[tuple[str, Any, list[Any] | None]],
    prefix: str,
    *,
    function: bool = False,
    concat: bool = False,
) -> tuple[list[Any], list[TFSummary], dict[str, str]]:
    """The summaries of many tensors as ``NodeDef`` protos, to add to a GraphDef or, with
    ``function``, to a FunctionDef's body (``tensors``: ``(tensor, dtype, static shape or None)``,
    the tensor named as that format wants it; node names start with ``prefix``).

    Building thousands of summaries op by op in Python costs about a millisecond each;
    NodeDefs are imported by TensorFlow in one go. Returns the NodeDefs, a :class:`TFSummary`
    per tensor and, with ``concat``, each stream of :data:`TF_STREAMS` as one tensor: the
    tensors' pieces end to end, for :func:`read_tf_summaries`.

    Most tensors get one ``DebugNumericSummary`` op (:func:`summarize_tf_graph`). It runs on one
    thread, at about 0.5 GB/s: large float32 tensors (:data:`FAST_MIN_SIZE` values or more) are
    reduced instead by multi-threaded Min, Max, Sum and EuclideanNorm ops, their zeros counted
    with Equal, and the exact op runs only when those cannot describe the tensor: a NaN or an
    infinity (the sums are then not finite), or a variance under a tenth of the squared mean
    (E[x²] - E[x]² from float32 sums would lose digits). A ``Switch`` picks one or the other.
    """
    import tensorflow as tf

    b = _NodeDefs(prefix, function)
    summaries = []
    for i, (tensor, dtype, shape) in enumerate(tensors):
        dtype = dtype.base_dtype
        known = shape is not None and all(isinstance(d, int) for d in shape)
        size = math.prod(shape) if known and shape is not None else None
        if dtype == tf.float32 and size is not None and size >= FAST_MIN_SIZE and shape is not None:
            s = _fast_summary(b, i, tensor, dtype, list(shape), size)
            if s is not None:
                summaries.append(s)
                continue
        if tf_counted(dtype):
            s = TFSummary("exact", dtype, None)
            source = tensor
            if dtype.is_complex:  # its modulus, counted (as summarize_tf_graph)
                modulus = tf.float32 if dtype == tf.complex64 else tf.float64
                node = b.add(f"{i}/abs", "ComplexAbs", [tensor], T=dtype, Tout=modulus)
                source, dtype = b.out(node, "y"), modulus
            if dtype.is_floating and dtype not in (tf.float32, tf.float64):
                cast = b.add(f"{i}/cast", "Cast", [tensor], SrcT=dtype, DstT=tf.float32, Truncate=False)
                source, dtype = b.out(cast, "y"), tf.float32
            node = b.add(f"{i}", "DebugNumericSummary", [source], T=dtype, tensor_name=_tensor_name(tensor))
            s.pieces["exact"] = [b.out(node)]
            s.done.append(node)
        elif known:
            s = TFSummary("static", dtype, list(shape or []))
        else:
            s = TFSummary("exact", dtype, None)
            dims = b.add(f"{i}/shape", "Shape", [tensor], T=dtype, out_type=tf.int64)
            dims = b.add(f"{i}/dims", "Cast", [b.out(dims)], SrcT=tf.int64, DstT=tf.float64, Truncate=False)
            rank = b.add(f"{i}/rank", "Size", [b.out(dims, "y")], T=tf.float64, out_type=tf.int64)
            rank = b.add(f"{i}/rank_f", "Cast", [b.out(rank)], SrcT=tf.int64, DstT=tf.float64, Truncate=False)
            rank = b.add(f"{i}/rank_1", "Pack", [b.out(rank, "y")], T=tf.float64, N=1, axis=0)
            s.pieces["exact"] = [b.concat(f"{i}/vector", [b.out(rank), b.out(dims, "y")], tf.float64)]
        summaries.append(s)
    streams = {}
    if concat:
        for stream, dtype_name in TF_STREAMS.items():
            pieces = [p for s in summaries for p in s.pieces.get(stream, [])]
            streams[stream] = b.concat(
                f"concat_{stream}", pieces, tf.as_dtype(dtype_name), scalars=stream == "fast"
            )
    return b.nodes, summaries, streams


def _fast_summary(
    b: _NodeDefs, i: int, tensor: str, dtype: Any, shape: list[int], size: int
) -> TFSummary | None:
    """The nodes of a ``"fast"`` :class:`TFSummary` (see :func:`summary_node_defs`), or None
    when its size has no divisor to count zeros by rows. TensorFlow takes about 50 µs a node
    to set up a graph: a summary has 17 of them, and 3 more per extra block of zeros."""
    import tensorflow as tf

    zeros = _zero_counts(b, str(i), tensor, dtype, size)
    if zeros is None:
        return None
    s = TFSummary("fast", dtype, shape)
    s.rows, counts = zeros
    p = str(i)
    axes = b.const(list(range(len(shape))), tf.int32)
    mn, mx, total, norm = (
        b.out(b.add(f"{p}/{op.lower()}", op, [tensor, axes], T=dtype, Tidx=tf.int32, keep_dims=False))
        for op in ("Min", "Max", "Sum", "EuclideanNorm")
    )
    # Usable when n * sum(x²) > (1 + r) * sum(x)², i.e. variance > r * mean², written as
    # sqrt(sum(x²)) * sqrt(n / (1 + r)) - |sum(x)| > 0; its log is finite only when it is positive
    # and finite, so a NaN or infinite sum (a NaN or an infinity in the tensor, an overflow)
    # takes the exact op too.
    scale = b.const(math.sqrt(size / (1 + _FAST_VARIANCE_RATIO)), dtype)
    scaled = b.add(f"{p}/scaled_norm", "Mul", [norm, scale], T=dtype)
    magnitude = b.add(f"{p}/abs_sum", "Abs", [total], T=dtype)
    gap = b.add(f"{p}/gap", "Sub", [b.out(scaled, "z"), b.out(magnitude, "y")], T=dtype)
    log_gap = b.add(f"{p}/log_gap", "Log", [b.out(gap, "z")], T=dtype)
    usable = b.out(b.add(f"{p}/usable", "IsFinite", [b.out(log_gap, "y")], T=dtype), "y")
    switch = b.add(f"{p}/switch", "Switch", [tensor, usable], T=dtype)
    exact = b.add(
        f"{p}/exact",
        "DebugNumericSummary",
        [b.out(switch, "output_false", 0)],
        T=dtype,
        tensor_name=_tensor_name(tensor),
    )
    marker = b.add(f"{p}/marker", "Switch", [b.const([-1.0], tf.float64), usable], T=tf.float64)
    merged = b.add(f"{p}/merge", "Merge", [b.out(exact), b.out(marker, "output_true", 1)], T=tf.float64, N=2)
    s.pieces = {"exact": [b.out(merged)], "fast": [mn, mx, total, norm], "zeros": counts}
    s.done = [n.split(":")[0] for n in (mn, mx, counts[-1], b.out(merged))]
    return s


def _zero_counts(b: _NodeDefs, p: str, tensor: str, dtype: Any, size: int) -> tuple[int, list[str]] | None:
    """The number of rows of a tensor seen as rows of at most 255 values (the largest divisor
    of its size), and the nodes counting each row's zeros in uint8 (Equal, Cast, Sum: a float
    count would take 4 bytes a value); their vectors are fetched and added up.

    Equal and Cast still take two bytes a value: a large tensor is counted in blocks (views of
    it, made by Unpack) one after the other, each of at most :data:`_ZERO_BLOCK` values."""
    import tensorflow as tf

    row = max(d for d in range(1, 256) if size % d == 0)
    if row < 16:
        return None
    rows = size // row
    blocks = next(c for c in range(1, rows + 1) if rows % c == 0 and size // c <= _ZERO_BLOCK)
    if size // blocks % 16:  # each block must start 64 bytes apart to be a view, not a copy
        blocks = 1
    if blocks == 1:
        row_shape = b.const([-1, row], tf.int32)
        parts = [b.out(b.add(f"{p}/rows", "Reshape", [tensor, row_shape], T=dtype, Tshape=tf.int32))]
    else:
        block_shape = b.const([blocks, -1, row], tf.int32)
        split = b.add(f"{p}/blocks", "Reshape", [tensor, block_shape], T=dtype, Tshape=tf.int32)
        unpacked = b.add(f"{p}/block", "Unpack", [b.out(split)], T=dtype, num=blocks, axis=0)
        parts = [b.out(unpacked, "output", j, j) for j in range(blocks)]
    counts: list[str] = []
    for j, part in enumerate(parts):
        after = [f"^{counts[-1].split(':')[0]}"] if counts else []
        is_zero = b.add(
            f"{p}/is_zero_{j}",
            "Equal",
            [part, b.const(0.0, dtype), *after],
            T=dtype,
            incompatible_shape_error=True,
        )
        as_u8 = b.add(
            f"{p}/is_zero_u8_{j}", "Cast", [b.out(is_zero, "z")], SrcT=tf.bool, DstT=tf.uint8, Truncate=False
        )
        per_row = [b.out(as_u8, "y"), b.const(1, tf.int32)]
        counts.append(
            b.out(b.add(f"{p}/zeros_{j}", "Sum", per_row, T=tf.uint8, Tidx=tf.int32, keep_dims=False))
        )
    return rows, counts


def _tensor_name(tensor: str) -> str:
    """``node:port`` (DebugNumericSummary parses it) from a GraphDef's or a FunctionDef's name."""
    parts = tensor.split(":")
    return f"{parts[0]}:{parts[-1] if len(parts) > 1 else 0}"


def read_tf_summaries(streams: dict[str, Any], summaries: list[TFSummary]) -> list[dict[str, Any]]:
    """The summary dicts of :func:`summary_node_defs`'s ``summaries`` (or of those among them
    whose pieces were concatenated), from the fetched streams (stream -> 1-D array)."""
    at = dict.fromkeys(TF_STREAMS, 0)
    out = []
    for s in summaries:
        if s.kind == "static":
            out.append(make(list(s.shape or []), s.dtype.name))
            continue
        if s.kind == "fast":
            mn, mx, total, norm = (float(v) for v in streams["fast"][at["fast"] : at["fast"] + 4])
            zeros = int(streams["zeros"][at["zeros"] : at["zeros"] + s.rows].sum(dtype="int64"))
            at["fast"] += 4
            at["zeros"] += s.rows
            if float(streams["exact"][at["exact"]]) == -1.0:
                at["exact"] += 1
                n = math.prod(s.shape or [])
                mean = total / n
                var = max(norm * norm / n - mean * mean, 0.0)
                out.append(
                    make(list(s.shape or []), s.dtype.name, [mn, mx, mean, math.sqrt(var)], (0, 0, 0, zeros))
                )
                continue
        summary, at["exact"] = read_tf_summary(streams["exact"], s.dtype, at["exact"])
        out.append(summary)
    return out


def read_tf_summary(values: Any, dtype: Any, offset: int = 0) -> tuple[dict[str, Any], int]:
    """Read one :func:`summarize_tf_graph` vector from ``values`` (a fetched 1-D array, maybe
    several vectors end to end) at ``offset``: the summary dict of a tensor of TensorFlow
    ``dtype``, and the offset just past that vector."""
    dtype = dtype.base_dtype
    if not tf_counted(dtype):
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
    if dtype.is_complex:  # counted through the modulus: no order, no statistics (as torch's)
        return make(shape, dtype.name, None, counts), end
    if nan + posinf + neginf == count:  # nothing finite to describe
        return make(shape, dtype.name, None, counts), end
    std = math.sqrt(max(v[11], 0.0))
    return make(shape, dtype.name, [v[8], v[9], v[10], std], counts), end
