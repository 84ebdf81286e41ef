"""Per-tensor summaries: shape, dtype, min, max, mean, std and the NaN/+Inf/-Inf/zero counts.

A summary is computed by the framework that holds the tensor (no copy to numpy): a few
reductions, and the counting passes only when the min/max already show a non-finite value,
so a healthy tensor costs about three passes over its memory. When a tensor has non-finite
values, min/max/mean/std are those of its finite values.

Every summary is a plain dict with the keys of :data:`SUMMARY_KEYS` (``None`` when a value does
not apply: the mean of an empty tensor, the stats of a string tensor).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["SUMMARY_KEYS", "is_finite", "make", "summarize_numpy", "summarize_torch"]

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
    mn, mx = torch.aminmax(x)
    std, mean = torch.std_mean(x, correction=0)
    nonzero = torch.count_nonzero(x)
    values = torch.stack([mn.double(), mx.double(), mean.double(), std.double(), nonzero.double()]).tolist()
    zeros = n - int(values[4])
    if math.isfinite(values[0]) and math.isfinite(values[1]):
        return make(shape, dtype, values[:4], (0, 0, 0, zeros))
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
        xf = x.astype(np.float64) if x.dtype.itemsize < 4 else x
        return make(shape, dtype, [x.min(), x.max(), xf.mean(), xf.std()], (0, 0, 0, zeros))
    counts = (int(np.isnan(x).sum()), int((x == np.inf).sum()), int((x == -np.inf).sum()), zeros)
    finite = x[finite_mask].astype(np.float64)
    if finite.size == 0:
        return make(shape, dtype, None, counts)
    return make(shape, dtype, [finite.min(), finite.max(), finite.mean(), finite.std()], counts)
