"""Deliberate infinities: the -inf of an attention mask is not the first non-finite value.

Attention code builds its mask from a literal infinity (``torch.full(..., -inf)``, SDPA's
``scalar_tensor(-inf)``, ``masked_fill(mask, -inf)``, TensorFlow's ``Const`` under
``tf.where(visible, scores, -inf)``) and softmax turns it into a weight of 0: nothing is wrong.
The rule, one for every stepper (forward, ``--train``, ONNX), the TUI and ``--until nonfinite``:

- a *mask source* is a forward record holding ±inf and no NaN that is a constant (``kind``
  const), or an op whose inputs were all finite and whose infinity came from a literal: an
  argument or attribute that is ±inf (``masked_fill(m, -inf)``, ``scalar_tensor(-inf)``), or an
  op that makes a tensor from a value alone (:data:`FILL_OPS`);
- a forward op whose output holds ±inf and no NaN, and whose every non-finite input is masked,
  *carries* the mask (``triu``, ``add``, ``where``, ``SelectV2``, a view);
- a masked value is not counted as non-finite while it stays so, and is absorbed downstream
  (softmax, ``where``, a cast to an integer make it finite again);
- a NaN is always counted (a softmax over a fully masked row is NaN: reported at the softmax,
  its origin the mask), and so is a masked value that reaches the graph's output (the loss in
  training): reported at the node that hands it to the output, its origin the mask.

A weight (``kind`` param) or an input holding ±inf is never a mask: a stored infinity is the
classic corruption, and the backward pass and the optimizer never carry a mask.

The rule reads summaries only (counts, not positions): an op that gets a masked input and also
makes new infinities of its own is taken to carry the mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphscope.stepping.numerics import is_finite

if TYPE_CHECKING:
    from graphscope.ir import Graph
    from graphscope.stepping.records import Record

__all__ = ["FILL_OPS", "Masks", "find", "op_name"]

# Ops whose output is made from a value and a shape alone: an infinity in it is the value's.
FILL_OPS = frozenset(
    {
        "full",
        "full_like",
        "new_full",
        "scalar_tensor",
        "fill",
        "fill_",
        "Fill",
        "ConstantOfShape",
    }
)


@dataclass
class Masks:
    """What :func:`find` decided for one run."""

    # node id -> the node id of its mask source, for every record not counted as non-finite
    # although it holds an infinity (a source maps to itself)
    masked: dict[str, str] = field(default_factory=dict)
    # node id -> mask source, for counted records whose non-finite input was masked (a NaN
    # made from a mask; a masked value handed to the output)
    reached: dict[str, str] = field(default_factory=dict)

    def counts(self, rec: Record) -> bool:
        """Is ``rec`` a non-finite value that counts (not a mask's deliberate infinity)?"""
        return not rec.finite and rec.node not in self.masked


def find(records: Sequence[Record], graph: Graph) -> Masks:
    """Decide, record by record in execution order, which infinities belong to a mask."""
    masks = Masks()
    for rec in records:
        if rec.finite:
            continue
        from_mask = _masked_input(rec, masks)
        if _has_nan(rec) or not _forward(rec, graph):
            if from_mask is not None:
                masks.reached[rec.node] = from_mask
            continue
        if _is_source(rec, graph):
            source = rec.node
        elif rec.given or from_mask is None or not _all_masked(rec, masks):
            continue
        else:
            source = from_mask
        if _feeds_output(rec.node, graph):
            if source != rec.node:
                masks.reached[rec.node] = source
            continue
        masks.masked[rec.node] = source
    return masks


def _has_nan(rec: Record) -> bool:
    return any(s is not None and s.get("nan") for s in rec.outputs)


def _forward(rec: Record, graph: Graph) -> bool:
    if rec.node not in graph:
        return True
    return (graph.node(rec.node).get("phase") or "forward") == "forward"


def _is_source(rec: Record, graph: Graph) -> bool:
    """A constant holding ±inf, or an op that made ±inf from finite inputs and a literal."""
    if rec.kind == "const":
        return True
    if rec.kind != "op" or rec.inputs is None or not all(is_finite(s) for s in rec.inputs):
        return False
    if rec.input_kinds:  # an fx call_module: its weights are inputs, not literals
        return False
    node = graph.node(rec.node) if rec.node in graph else {}
    op = op_name(rec.op)
    return op in FILL_OPS or _holds_infinity(node.get("attrs") or {})


def op_name(op: str) -> str:
    """``aten.full.default`` -> ``full``; ``call_function:full`` -> ``full``; TF/ONNX unchanged."""
    if op.startswith("aten."):
        return op.split(".")[1] if "." in op[5:] else op[5:]
    if "::" in op:
        return op.split("::", 1)[1]
    return op.split(":", 1)[1] if ":" in op else op


def _holds_infinity(value: Any, depth: int = 0) -> bool:
    """A literal ±inf among an op's attributes (a float, or the string JSON keeps it as)."""
    if isinstance(value, float):
        return math.isinf(value)
    if isinstance(value, str):
        return value in ("inf", "-inf", "+inf")
    if depth > 3:
        return False
    if isinstance(value, dict):
        return any(_holds_infinity(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)) and len(value) <= 64:
        return any(_holds_infinity(v, depth + 1) for v in value)
    return False


def _masked_input(rec: Record, masks: Masks) -> str | None:
    """The mask source of ``rec``'s first non-finite input that is masked, if any."""
    for node, summary in zip(rec.input_nodes, rec.inputs or [], strict=False):
        if not is_finite(summary) and node in masks.masked:
            return masks.masked[node]
    return None


def _all_masked(rec: Record, masks: Masks) -> bool:
    return all(
        is_finite(summary) or node in masks.masked
        for node, summary in zip(rec.input_nodes, rec.inputs or [], strict=False)
    )


def _feeds_output(node_id: str, graph: Graph) -> bool:
    """Is the node one of the graph's outputs, or read by one (the loss, a model output)?"""
    outputs = set(graph.outputs)
    if node_id in outputs:
        return True
    if node_id not in graph:
        return False
    for dst, keys in graph.nx._succ[node_id].items():
        if dst in outputs and any(not attrs["control"] for attrs in keys.values()):
            return True
    return False
