"""Full tensors for `graphscope step --save-values DIR`: which nodes, how much, and the files.

Stepping keeps only summaries. Saving values is a second run that keeps the outputs of the
nodes chosen here: the culprit and its inputs first, then the steps nearest the stop point,
until the size cap. The values go to ``DIR/values.npz`` (numpy arrays only, never pickle),
described by ``DIR/index.json`` (node, output, key, shape, dtype, summary).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphscope.errors import GraphscopeError

if TYPE_CHECKING:
    from graphscope.stepping.records import Steps

__all__ = ["DEFAULT_CAP_BYTES", "save", "select", "to_numpy"]

DEFAULT_CAP_BYTES = 256 * 2**20

_ITEMSIZE = {"float64": 8, "int64": 8, "complex64": 8, "complex128": 16, "float16": 2, "bfloat16": 2}


def _nbytes(summary: dict[str, Any] | None) -> int:
    if not summary or summary.get("shape") is None:
        return 0
    n = 1
    for d in summary["shape"]:
        n *= d if isinstance(d, int) else 1
    dtype = str(summary.get("dtype"))
    size = _ITEMSIZE.get(dtype, 1 if dtype in ("bool", "int8", "uint8") else 4)
    return n * size


def select(steps: Steps, cap_bytes: int = DEFAULT_CAP_BYTES) -> tuple[list[str], int]:
    """Node ids to save, most telling first, within ``cap_bytes``; and how many were left out."""
    order: list[str] = []
    bad = steps.first_nonfinite
    if bad is not None:
        order.append(bad.node)
        order.extend(n for n in bad.input_nodes if steps.record(n) is not None)
    order.extend(r.node for r in reversed(list(steps)))
    chosen: list[str] = []
    seen: set[str] = set()
    used = 0
    for node_id in order:
        if node_id in seen:
            continue
        seen.add(node_id)
        rec = steps.record(node_id)
        size = sum(_nbytes(s) for s in rec.outputs) if rec else 0
        if used + size > cap_bytes:
            continue
        used += size
        chosen.append(node_id)
    return chosen, len(seen) - len(chosen)


def to_numpy(value: Any) -> Any:
    """A numpy array from a torch tensor, a TF tensor or an array (bfloat16 widened to float32)."""
    import numpy as np

    if hasattr(value, "detach"):  # torch
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    return np.asarray(value)


def save(
    steps: Steps, values: dict[str, list[Any]], directory: str | Path, order: list[str] | None = None
) -> list[Path]:
    """Write ``values`` (node id -> its outputs) to ``directory``, in ``order`` (the selection's,
    most telling first); returns the files written."""
    import numpy as np

    from graphscope.ir import write_atomic

    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GraphscopeError(f"cannot create {folder}: {exc.strerror or exc}") from None
    arrays: dict[str, Any] = {}
    index = []
    for node_id in order or list(values):
        outputs = values.get(node_id, [])
        rec = steps.record(node_id)
        for port, value in enumerate(outputs):
            if value is None:
                continue
            array = to_numpy(value)
            if array.dtype.hasobject:
                # numpy stores object arrays by pickling them, and reading them back needs
                # allow_pickle: values.npz holds plain arrays only (a TF string tensor's bytes
                # become fixed-width bytes).
                try:
                    array = array.astype(np.bytes_)
                except (TypeError, ValueError):
                    continue
            key = f"v{len(arrays):05d}"  # safe archive member names, whatever the node is called
            arrays[key] = array
            index.append(
                {
                    "node": node_id,
                    "output": port,
                    "key": key,
                    "step": rec.index if rec else None,
                    "shape": list(arrays[key].shape),
                    "dtype": str(arrays[key].dtype),
                    "summary": rec.outputs[port] if rec and port < len(rec.outputs) else None,
                }
            )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    npz = write_atomic(folder / "values.npz", buffer.getvalue())
    doc = {"format": "graphscope.values", "version": 1, "graph": steps.graph.name, "values": index}
    listing = write_atomic(folder / "index.json", json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return [npz, listing]
