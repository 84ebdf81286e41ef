"""Is this graph static? Capture twice, with two input sets, and say what changed.

Three verdicts:

- ``static``: the same graph: the same ops, edges and attributes; only the shapes of the values
  flowing through it follow the input (``export`` of an MLP, for any batch size).
- ``shape-specialised``: the same ops and edges, but sizes of the input baked into integer
  attributes (``export`` of GPT-2 with another sequence length: its ``view`` shapes and
  ``arange`` ends). The graph works for this shape only; its structure does not depend on the
  input. The report lists them.
- ``input-dependent``: ops, edges or branches differ (``jit-trace`` unrolling a loop over the
  sequence length, or recording the branch one input took).

Per-trace counters are not differences: TensorFlow's ``_gradient_op_type`` (``CustomGradient-N``
for each ``tf.custom_gradient`` trace, Keras' swish among them) is numbered anew every trace, and
tf2onnx names what it makes from one running counter (``const_fold_opt__10``), so the same
constant of a static model can be ``const_fold_opt__9`` in the second conversion. Nor is a
constant's name: tf2onnx keeps one of several equal constants (MobileNetV2's batch-norm scales
of equal width), and which one's name survives varies between conversions. A constant or
weight that reads nothing is the same node in both captures when it has the same op, kind and
outputs and the same readers at the same ports; its value, where recorded, is compared as any
attribute is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from graphscope.ir import Graph

__all__ = ["VERDICTS", "DynamicReport", "alternative_inputs", "compare"]

SHOWN = 8  # how many changed nodes a report names
ROUNDS = 8  # of pairing unmatched nodes by their place (see _paired_by_place)
VERDICTS = ("static", "shape-specialised", "input-dependent")

# Attributes a framework numbers per trace: two traces of one graph differ in them (the name
# TensorFlow gives a call's argument is a number when the user gave none: 1804, then 3343).
_PER_TRACE = frozenset({"_gradient_op_type", "_user_specified_name"})
# Attributes that record the shapes of the values (a placeholder's, TF's declared output shapes
# of an If or While): they follow the input, as the IR's own output shapes do.
_SHAPES = frozenset({"shape", "_output_shapes", "output_shapes"})
# tf2onnx's made-up names: a stem and its counter (utils.make_name).
_COUNTED_NAME = re.compile(r"^(.*)__\d+$")


@dataclass
class DynamicReport:
    """What differs between the graphs captured from two input sets."""

    method: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # same id, other op or inputs
    reshaped: list[str] = field(default_factory=list)  # same op and inputs, other shapes
    # sizes baked into integer attributes: {"node", "attr", "a", "b"}
    specialised: list[dict[str, Any]] = field(default_factory=list)
    alt_source: str = "example_inputs_alt"
    retraced: bool | None = None  # tf.function: did the second input make it trace again?

    @property
    def verdict(self) -> str:
        """``static``, ``shape-specialised`` or ``input-dependent`` (see the module docstring)."""
        if self.added or self.removed or self.changed:
            return "input-dependent"
        return "shape-specialised" if self.specialised else "static"

    @property
    def static(self) -> bool:
        return self.verdict == "static"

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.retraced:
            notes.append(
                f"check-dynamic: tf.function traced a second concrete function for {self.alt_source} (retracing)"
            )
        if self.static:
            notes.append(f"check-dynamic: {self.method} captured the same graph for both inputs (static)")
        elif self.verdict == "shape-specialised":
            notes.append(
                f"check-dynamic: {self.method} captured the same ops and edges for {self.alt_source}, "
                f"with sizes baked in (shape-specialised): {self.specialised_summary()}"
            )
        else:
            notes.append(
                f"check-dynamic: {self.method} captured a different graph for {self.alt_source}: {self.summary()}"
            )
        return notes

    def summary(self) -> str:
        parts = []
        if self.added:
            parts.append(f"{len(self.added)} nodes added ({_short(self.added)})")
        if self.removed:
            parts.append(f"{len(self.removed)} removed ({_short(self.removed)})")
        if self.changed:
            parts.append(f"{len(self.changed)} changed ({_short([c['node'] for c in self.changed])})")
        return ", ".join(parts)

    def specialised_summary(self) -> str:
        shown = [f"{c['node']}.{c['attr']} {_value(c['a'])} -> {_value(c['b'])}" for c in self.specialised]
        more = f", ... {len(shown) - SHOWN} more" if len(shown) > SHOWN else ""
        noun = "attribute" if len(shown) == 1 else "attributes"
        return f"{len(shown)} {noun} ({', '.join(shown[:SHOWN])}{more})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "static": self.static,
            "method": self.method,
            "second_input": self.alt_source,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "reshaped": self.reshaped,
            "specialised": self.specialised,
            "retraced": self.retraced,
        }

    def renderable(self) -> RenderableType:
        from rich.text import Text

        if self.static:
            text = Text("static: ", style="bold green")
            text.append(f"{self.method} captured the same ops and edges for both inputs")
            if self.reshaped:
                text.append(f" (only shapes differ, in {len(self.reshaped)} nodes)")
            return text
        if self.verdict == "shape-specialised":
            text = Text("shape-specialised: ", style="bold yellow")
            text.append(
                f"{self.method} captured the same ops and edges for both inputs, with the input's "
                f"sizes baked into {self.specialised_summary()}"
            )
            return text
        text = Text("input-dependent: ", style="bold red")
        text.append(f"{self.method} captured a different graph for {self.alt_source}: {self.summary()}")
        return text


def _value(v: Any) -> str:
    text = str(v).replace(" ", "")
    return text if len(text) <= 24 else text[:23] + "…"


def _short(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN])
    return shown + (f", ... {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")


def alternative_inputs(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """The same inputs with the batch (first) dimension grown by one, for a second capture.

    Works on torch and TensorFlow tensors and numpy arrays; anything else is passed as is.
    """
    out = []
    for value in inputs:
        shape = getattr(value, "shape", None)
        if shape is None or len(shape) == 0:
            out.append(value)
            continue
        module = type(value).__module__
        if module.startswith("torch"):
            import torch

            out.append(torch.cat([value, value[:1]], dim=0))
        elif module.startswith("tensorflow"):
            import tensorflow as tf

            out.append(tf.concat([value, value[:1]], axis=0))
        else:
            import numpy as np

            out.append(np.concatenate([value, value[:1]], axis=0))
    return tuple(out)


def _is_size(value: Any) -> bool:
    """An int, or a (nested) list of ints and None: a size or shape an attribute holds. A whole
    float counts too: keras-hub's GPT-2 computes positions with ``tf.range`` over a float32
    length, a Const of 8.0 for 8 tokens."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return True
    return isinstance(value, (list, tuple)) and all(v is None or _is_size(v) for v in value)


def _sizes_differ(a: Any, b: Any) -> bool:
    """``a`` and ``b`` differ only in sizes: both sizes, or dicts (lists) alike but for sizes. A
    slice's bounds (the IR's ``{"slice": [0, 8, None]}``: Dynamo's ``position_ids[:, 0:8]`` for
    8 tokens), a constant too big to record summarised by its shape (Keras' LSTM starts from
    zeros of ``{"shape": [batch, 32], "dtype": "float32"}``)."""
    if _is_size(a) and _is_size(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(a[k] == b[k] or _sizes_differ(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(x == y or _sizes_differ(x, y) for x, y in zip(a, b))
    return False


def _stem(name: str) -> str:
    """A name without a converter's counter: ``const_fold_opt__10`` is ``const_fold_opt``."""
    counted = _COUNTED_NAME.match(name)
    return counted.group(1) if counted else name


def _attr_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Of the attributes that differ: those holding sizes (ints) on both sides, and the others.
    Recorded shapes follow the input, and per-trace counters say nothing: neither."""
    sizes: list[str] = []
    others: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a == b or key in _PER_TRACE or key in _SHAPES:
            continue
        (sizes if _sizes_differ(a, b) else others).append(key)
    return sizes, others


Edges = tuple[dict[str, set[tuple[str, int, int]]], dict[str, set[tuple[str, int, int]]]]


def _edges_of(g: Graph) -> Edges:
    """Each node's inputs (source, ports) and readers (target, ports)."""
    ins: dict[str, set[tuple[str, int, int]]] = {n["id"]: set() for n in g.nodes()}
    outs: dict[str, set[tuple[str, int, int]]] = {n["id"]: set() for n in g.nodes()}
    for u, v, attrs in g.edge_data():
        ins[v].add((u, attrs["src_port"], attrs["dst_port"]))
        outs[u].add((v, attrs["src_port"], attrs["dst_port"]))
    return ins, outs


def _signature(g: Graph, node: str) -> tuple[str, str, tuple[Any, ...]]:
    """What a node is, its place aside: op, kind and output dtypes (shapes follow the input)."""
    n = g.node(node)
    return n["op"], n["kind"], tuple(o.get("dtype") for o in n["outputs"])


def _alike(x: set[tuple[str, int, int]], y: set[tuple[str, int, int]], ab: dict[str, str]) -> bool:
    """Neighbours ``x`` (in ``a``) and ``y`` (in ``b``) are the same matched nodes at the same ports."""
    return {(ab.get(v), sp, dp) for v, sp, dp in x} == y


def _paired_by_place(
    a: Graph, b: Graph, edges: tuple[Edges, Edges], removed: list[str], added: list[str], ab: dict[str, str]
) -> dict[str, str]:
    """Of the nodes the diff left unmatched, pairs in the same place: the same op, kind and
    dtypes, reading the same (matched) nodes and read by the same, at the same ports. One node
    under another name: which of several equal constants tf2onnx kept, or the name tf2onnx gave
    a Reshape it made of a Transpose (ResNet-50's ``Transpose__164`` one time, ``mul_1__102``
    the next). Pairs found make their neighbours' places known: repeated until none is found
    (a few rounds: a run of renamed nodes longer than that is no naming accident)."""
    (ins_a, outs_a), (ins_b, outs_b) = edges
    pairs: dict[str, str] = {}
    left = set(added)
    for _ in range(ROUNDS):
        known = {**ab, **pairs}
        by_key: dict[Any, list[str]] = {}
        for y in sorted(left):
            key = (_signature(b, y), frozenset(ins_b[y]), frozenset(outs_b[y]))
            by_key.setdefault(key, []).append(y)
        found = False
        for x in removed:
            near = ins_a[x] | outs_a[x]
            if x in pairs or not near or any(n not in known for n, _, _ in near):
                continue
            key = (
                _signature(a, x),
                frozenset((known[u], sp, dp) for u, sp, dp in ins_a[x]),
                frozenset((known[v], sp, dp) for v, sp, dp in outs_a[x]),
            )
            same = by_key.get(key)
            if same is not None and len(same) == 1:
                pairs[x] = same.pop()
                left.discard(pairs[x])
                found = True
        if not found:
            break
    return pairs


def compare(a: Graph, b: Graph, *, method: str, alt_source: str = "example_inputs_alt") -> DynamicReport:
    """Compare two captures of one model with :mod:`graphscope.diffing`: nodes added, removed,
    changed (op, attributes or inputs), those with sizes baked into their attributes, and those
    whose only change is their shapes."""
    from graphscope import diffing as diff

    report = DynamicReport(method=method, alt_source=alt_source)
    d = diff.diff(a, b, cross=False)
    ab = dict(d.matched)
    edges = _edges_of(a), _edges_of(b)
    paired = _paired_by_place(a, b, edges, d.removed, d.added, ab)
    kept = set(paired.values())
    report.added = [y for y in d.added if y not in kept]
    report.removed = [x for x in d.removed if x not in paired]
    rewired = {v for _, v in d.removed_edges} | {d.ba_map()[v] for _, v in d.added_edges}
    changes = {c["a"]: c for c in d.changed}
    (ins_a, outs_a), (ins_b, outs_b) = edges
    renamed = {  # in the same place: between the same nodes, at the same ports
        x
        for x, y in d.matched
        if (ins_a[x] or outs_a[x]) and _alike(ins_a[x], ins_b[y], ab) and _alike(outs_a[x], outs_b[y], ab)
    }
    for x, y in [*d.matched, *paired.items()]:
        found = changes.get(x, {}).get("fields", {})
        if x in paired:  # unmatched by the diff: compare what the pairing did not
            found = {"attrs": 1} if a.node(x)["attrs"] != b.node(y)["attrs"] else {}
        fields = sorted(k for k in found if k not in ("shape", "attrs", "name"))
        if x in renamed or x in paired:  # a name a converter gave, and the scope read from it
            fields = [k for k in fields if k != "scope"]
        elif "name" in found and _stem(a.node(x)["name"]) != _stem(b.node(y)["name"]):
            fields.append("name")
        if "attrs" in found:
            before, after = a.node(x)["attrs"], b.node(y)["attrs"]
            sizes, others = _attr_changes(before, after)
            report.specialised += [
                {"node": x, "attr": k, "a": before.get(k), "b": after.get(k)} for k in sizes
            ]
            if others:
                fields.append("attrs")
        if x in rewired:
            fields.append("inputs")
        if fields:
            report.changed.append({"node": x, "fields": sorted(fields)})
        elif x in changes:
            report.reshaped.append(x)
    for name in sorted(set(a.subgraphs) | set(b.subgraphs)):
        if name not in b.subgraphs:
            report.removed.append(f"subgraph:{name}")
        elif name not in a.subgraphs:
            report.added.append(f"subgraph:{name}")
        else:
            inner = compare(a.subgraphs[name], b.subgraphs[name], method=method)
            report.added += [f"{name}/{n}" for n in inner.added]
            report.removed += [f"{name}/{n}" for n in inner.removed]
            report.changed += [{**c, "node": f"{name}/{c['node']}"} for c in inner.changed]
            report.reshaped += [f"{name}/{n}" for n in inner.reshaped]
            report.specialised += [{**c, "node": f"{name}/{c['node']}"} for c in inner.specialised]
    return report
