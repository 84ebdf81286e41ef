"""Non-finite values dropped on the way: a NaN or an infinity that no output ever holds.

T5's relative-position buckets take ``log(0) = -inf`` near the diagonal, cast it to an integer
and select around it with ``where``; ``where(x > 0, sqrt(x), 0)`` makes a NaN and throws it
away. The model's output is finite. Naming such a value as *the* first non-finite one is a wrong
culprit as soon as a real NaN is born later in the same run, so it is set aside and said aside.

The rule, read from the records alone (one for every stepper, ``--train``, the TUI and
``--until nonfinite``), in reverse execution order:

- a non-finite record *reaches* when it is one of the graph's outputs or is read by one (the
  loss, a model output), when it was given (an input, a weight, a variable: a stored infinity is
  the classic corruption, whatever reads it), when nothing reads it (a value kept aside, a gradient, an update:
  nothing says it is harmless), when a reader left no record, or when a record that read it as
  non-finite is non-finite itself and reaches;
- a reader that is finite *absorbed* it (a cast to an integer, ``where``, ``nan_to_num``);
- a non-finite record that does not reach is *dropped*: not counted, reported with the records
  that absorbed it.

So a dropped value is never the origin of one that counts. In training, the backward pass reads
the forward values it saved: a NaN that ``where`` drops in forward still reaches through the
gradient it poisons, and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graphscope.stepping.masks import op_name
from graphscope.stepping.numerics import counted, is_finite

if TYPE_CHECKING:
    from graphscope.ir import Graph
    from graphscope.stepping.records import Record

__all__ = ["SHAPE_ONLY", "find", "through_backward"]

# Readers of a tensor's shape and dtype alone: finite whatever it holds, so not what made a value
# finite again (``zeros_like(root)`` beside ``where``).
SHAPE_ONLY = frozenset(
    {"zeros_like", "ones_like", "empty_like", "full_like", "new_zeros", "new_ones", "new_empty", "new_full"}
    | {"sym_size", "size", "Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike"}
)


def find(records: Sequence[Record], graph: Graph) -> dict[str, list[str]]:
    """node id -> the finite records that made it finite again (through the non-finite values it
    was handed on to), for every dropped non-finite record, in no particular order."""
    by_node = {r.node: r for r in records}
    outputs = set(graph.outputs)
    reaches: dict[str, bool] = {}
    dropped: dict[str, list[str]] = {}
    for rec in reversed(records):
        if rec.finite:
            continue
        if rec.node not in graph or rec.node in outputs or rec.given:
            reaches[rec.node] = True  # a weight or an input holding it: stored so, never dropped
            continue
        readers = [
            dst
            for dst, keys in graph.nx._succ[rec.node].items()
            if any(not a["control"] for a in keys.values())
        ]
        absorbed: list[str] = []
        reached = not readers
        for dst in readers:
            reader = by_node.get(dst)
            if reader is None or dst in outputs or not _all_counted(reader):
                # an output, a node that left no record, or one whose values were not counted
                # (a loop's TensorList): nothing says it dropped it
                reached = True
            elif reader.finite:
                if op_name(reader.op) not in SHAPE_ONLY:
                    absorbed.append(dst)
            elif _read_nonfinite(reader, rec.node):
                if reaches.get(dst, True):
                    reached = True
                else:  # handed on to a value dropped later: what absorbed that absorbed this
                    absorbed += dropped.get(dst, [])
            if reached:
                break
        reaches[rec.node] = reached
        if not reached:
            dropped[rec.node] = list(dict.fromkeys(absorbed))
    return dropped


def _read_nonfinite(reader: Record, node_id: str) -> bool:
    """Did ``reader`` read a non-finite output of ``node_id``? Yes when its inputs were not kept,
    or when what it read was not counted."""
    if reader.inputs is None:
        return True
    return any(
        n == node_id and not (is_finite(s) and counted(s))
        for n, s in zip(reader.input_nodes, reader.inputs, strict=False)
    )


def _all_counted(rec: Record) -> bool:
    return all(counted(s) for s in rec.outputs)


def through_backward(rec: Record, records: Sequence[Record], graph: Graph) -> dict[str, Any] | None:
    """For a forward value that every forward reader made finite again but a gradient reads
    (``where(x > 0, sqrt(x), 0)``: sqrt's gradient divides by its NaN): ``{"made_finite_by":
    [...], "gradient": node id}``; None otherwise."""
    if rec.node not in graph or (graph.node(rec.node).get("phase") or "forward") != "forward":
        return None
    by_node = {r.node: r for r in records}
    made_finite: list[str] = []
    gradient = None
    for dst, keys in graph.nx._succ[rec.node].items():
        if all(a["control"] for a in keys.values()):
            continue
        reader = by_node.get(dst)
        if reader is None:
            return None
        backward = graph.node(dst).get("phase") == "backward"
        if not _all_counted(reader):
            return None  # its values were not counted: nothing says it made them finite
        if reader.finite:
            if not backward and op_name(reader.op) not in SHAPE_ONLY:
                made_finite.append(dst)
        elif _read_nonfinite(reader, rec.node):
            if not backward:
                return None  # the forward pass carries it on
            gradient = gradient or dst
    if gradient is None or not made_finite:
        return None
    order = {r.node: r.index for r in records}
    return {"made_finite_by": sorted(made_finite, key=lambda n: order.get(n, -1)), "gradient": gradient}
