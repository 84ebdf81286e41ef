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

Nodes are paired by their place in the graph, never by their names (see ``compare``): what a
framework or converter names, it numbers anew each time. TensorFlow's ``_gradient_op_type``
(``CustomGradient-N`` for each ``tf.custom_gradient`` trace, Keras' swish among them), the
functions a call or a loop runs (``__inference_while_body_1234``) and the arguments of those
functions (``while_cond_162___redundant_placeholder0``, paired by position); tf2onnx's names,
from one running counter (``const_fold_opt__10``, then ``__9``), and which of several equal
constants it keeps (MobileNetV2's batch-norm scales of equal width). A constant whose shape
changed (zeros of the batch's size) is a size baked in, not another node; a dtype that changed
(ONNX ``Cast``'s ``to``) is a difference, and so is, in PyTorch, another parameter in the same
place (a branch between two layers alike): a parameter's name is its module path.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from graphscope.ir import Graph

__all__ = ["VERDICTS", "DynamicReport", "alternative_inputs", "compare"]

SHOWN = 8  # how many changed nodes a report names
VERDICTS = ("static", "shape-specialised", "input-dependent")

# Attributes a framework numbers per trace: two traces of one graph differ in them (the name
# TensorFlow gives a call's argument is a number when the user gave none: 1804, then 3343).
_PER_TRACE = frozenset({"_gradient_op_type", "_user_specified_name"})
# Attributes that record the shapes of the values (a placeholder's, TF's declared output shapes
# of an If or While): they follow the input, as the IR's own output shapes do.
_SHAPES = frozenset({"shape", "_output_shapes", "output_shapes"})
# Attributes naming the function a call, loop or branch runs, after a counter TensorFlow bumps
# with every trace: ``__inference__conv_xla_frozen_4982``, then ``_13046``.
_FUNCTIONS = frozenset({"f", "cond", "body", "then_branch", "else_branch", "branches"})
_TRACE_NUMBER = re.compile(r"_\d+$")
# Attributes holding a dtype's code (ONNX's ``Cast.to``: 1 float32, 7 int64), never a size.
_DTYPE_CODES = frozenset({"to", "dtype"})


@dataclass
class DynamicReport:
    """What differs between the graphs captured from two input sets."""

    method: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # paired: other op, dtype, attrs or inputs
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


def _attr_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Of the attributes that differ: those holding sizes (ints) on both sides, and the others.
    Recorded shapes follow the input, per-trace counters and the numbers in a called function's
    name say nothing: neither. A dtype's code (ONNX ``Cast``'s ``to``) is no size."""
    sizes: list[str] = []
    others: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if key in _FUNCTIONS:
            a, b = _unnumbered(a), _unnumbered(b)
        if a == b or key in _PER_TRACE or key in _SHAPES:
            continue
        (sizes if key not in _DTYPE_CODES and _sizes_differ(a, b) else others).append(key)
    return sizes, others


def _unnumbered(value: Any) -> Any:
    """A function's name (or a list of them) without the number of the trace that made it."""
    if isinstance(value, str):
        return _TRACE_NUMBER.sub("", value)
    if isinstance(value, list):
        return [_unnumbered(v) for v in value]
    return value


Edge = tuple[str, int, int, bool]  # the node at the other end, output port, input port, control
Edges = tuple[dict[str, set[Edge]], dict[str, set[Edge]]]


def _edges_of(g: Graph) -> Edges:
    """Each node's inputs (source, ports) and readers (target, ports)."""
    ins: dict[str, set[Edge]] = {n["id"]: set() for n in g.nodes()}
    outs: dict[str, set[Edge]] = {n["id"]: set() for n in g.nodes()}
    for u, v, attrs in g.edge_data():
        control = bool(attrs.get("control"))
        ins[v].add((u, attrs["src_port"], attrs["dst_port"], control))
        outs[u].add((v, attrs["src_port"], attrs["dst_port"], control))
    return ins, outs


def _labels(g: Graph) -> dict[str, Hashable]:
    """What each node is, its name aside: op, kind, output dtypes (shapes follow the input),
    its depth (the longest path to it from a node that reads nothing: the tenth of a chain of
    equal ops is told from the ninth at once), and for an input of the graph (a function's
    argument) its position."""
    order, back = g.order_and_back_edges()
    skipped = {(u, v) for u, v, _ in back}
    depth: dict[str, int] = {}
    for v in order:
        depth[v] = max((depth[u] + 1 for u in g.nx.predecessors(v) if (u, v) not in skipped), default=0)
    labels: dict[str, Hashable] = {}
    for n in g.nodes():
        place = g.inputs.index(n["id"]) if n["id"] in g.inputs else None
        labels[n["id"]] = (
            n["op"],
            n["kind"],
            tuple(o.get("dtype") for o in n["outputs"]),
            depth[n["id"]],
            place,
        )
    return labels


def _colours(graphs: tuple[Graph, Graph], edges: tuple[Edges, Edges]) -> tuple[dict[str, int], ...]:
    """Colour refinement (Weisfeiler-Lehman) over both graphs at once: a node's colour is its
    label, then its colour with its inputs' and readers' colours at their ports, until no colour
    splits. Nodes of the two graphs with the same colour are in the same place."""
    colours = tuple({node: hash(label) for node, label in _labels(g).items()} for g in graphs)
    count = len(set(colours[0].values()) | set(colours[1].values()))
    while True:
        refined = tuple(
            {
                x: hash(
                    (
                        c[x],
                        tuple(sorted((c[u], sp, dp, ctl) for u, sp, dp, ctl in ins[x])),
                        tuple(sorted((c[v], sp, dp, ctl) for v, sp, dp, ctl in outs[x])),
                    )
                )
                for x in c
            }
            for c, (ins, outs) in zip(colours, edges)
        )
        now = len(set(refined[0].values()) | set(refined[1].values()))
        if now == count:
            return colours
        colours, count = refined, now


def _paired_by_place(a: Graph, b: Graph, edges: tuple[Edges, Edges]) -> dict[str, str]:
    """Nodes of ``a`` and ``b`` in the same place, whatever their names: those the only ones of
    their colour on each side (see :func:`_colours`), then, among several alike (repeated
    blocks nothing tells apart), the one whose neighbours are the paired node's neighbours
    (ties: the same id, else the order of capture). A colour with more nodes on one side than
    the other pairs none of them: the graphs differ there."""
    colours = _colours((a, b), edges)
    classes: dict[int, tuple[list[str], list[str]]] = {}
    for side, c in enumerate(colours):
        for node, colour in c.items():
            classes.setdefault(colour, ([], []))[side].append(node)
    pairs = {xs[0]: ys[0] for xs, ys in classes.values() if len(xs) == len(ys) == 1}
    for xs, ys in classes.values():
        if len(xs) == len(ys) > 1:
            left = list(ys)
            for x in xs:
                best = max(left, key=lambda y: (_agreement(x, y, edges, pairs), y == x, -left.index(y)))
                pairs[x] = best
                left.remove(best)
    return pairs


def _agreement(x: str, y: str, edges: tuple[Edges, Edges], pairs: dict[str, str]) -> int:
    """How many of ``x``'s neighbours are paired with ``y``'s, at the same ports."""
    (ins_a, outs_a), (ins_b, outs_b) = edges
    near_a = {("in", pairs.get(u), *ports) for u, *ports in ins_a[x]}
    near_a |= {("out", pairs.get(v), *ports) for v, *ports in outs_a[x]}
    near_b = {("in", u, *ports) for u, *ports in ins_b[y]} | {("out", v, *ports) for v, *ports in outs_b[y]}
    return len(near_a & near_b)


def _pairs(a: Graph, b: Graph, edges: tuple[Edges, Edges]) -> dict[str, str]:
    """Each node of ``a`` and its node in ``b``: the graphs' inputs by position, the rest by
    place (:func:`_paired_by_place`); where the graphs differ, what :mod:`graphscope.diffing`
    matched, so that the report names the nodes that changed."""
    from graphscope import diffing

    pairs = dict(zip(a.inputs, b.inputs))
    taken = set(pairs.values())
    for x, y in _paired_by_place(a, b, edges).items():
        if x not in pairs and y not in taken:
            pairs[x] = y
            taken.add(y)
    if len(pairs) < min(len(a), len(b)):
        for x, y in diffing.diff(a, b, cross=False).matched:
            if x not in pairs and y not in taken:
                pairs[x] = y
                taken.add(y)
    return pairs


def _baked_shape(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any] | None:
    """A constant (or initializer) whose shape changed: a size baked in (zeros of the batch's
    size), whatever its value, as ``{"attr": "shape", "a", "b"}``; None for any other node."""
    shapes = [[o.get("shape") for o in n["outputs"]] for n in (x, y)]
    if x["kind"] not in ("const", "param") or shapes[0] == shapes[1]:
        return None
    a, b = (s[0] if len(s) == 1 else s for s in shapes)
    return {"node": x["id"], "attr": "shape", "a": a, "b": b}


def _differences(
    x: dict[str, Any], y: dict[str, Any], *, weight_names: bool = False
) -> tuple[list[str], list[dict[str, Any]]]:
    """What differs between two paired nodes, their inputs aside: the fields that make them
    different nodes (``op``, ``dtype``, ``attrs``, and with ``weight_names`` a parameter's
    ``name``), and the sizes baked in (``{"node", "attr", "a", "b"}``; for a constant whose
    shape changed, its shape, and its value follows)."""
    fields = []
    if (x["op"], x["kind"]) != (y["op"], y["kind"]):
        fields.append("op")
    if weight_names and x["kind"] == "param" and x["name"] != y["name"]:
        fields.append("name")  # another weight in the same place: a branch between layers alike
    if [o.get("dtype") for o in x["outputs"]] != [o.get("dtype") for o in y["outputs"]]:
        fields.append("dtype")
    baked = _baked_shape(x, y)
    sizes, others = _attr_changes(x["attrs"], y["attrs"])
    if baked:
        sizes, others = [k for k in sizes if k != "value"], [k for k in others if k != "value"]
    if others:
        fields.append("attrs")
    found = [{"node": x["id"], "attr": k, "a": x["attrs"].get(k), "b": y["attrs"].get(k)} for k in sizes]
    return fields, ([baked] if baked else []) + found


def _input_changes(
    x: str, y: str, edges: tuple[Edges, Edges], pairs: dict[str, str], taken: set[str]
) -> bool:
    """Whether ``x`` and its pair ``y`` read paired nodes differently (other nodes, or at other
    ports). An input that is paired with nothing is a node added or removed, reported as such."""
    (ins_a, _), (ins_b, _) = edges
    read_a = {(pairs[u], *ports) for u, *ports in ins_a[x] if u in pairs}
    return read_a != {edge for edge in ins_b[y] if edge[0] in taken}


def compare(a: Graph, b: Graph, *, method: str, alt_source: str = "example_inputs_alt") -> DynamicReport:
    """Compare two captures of one model: nodes added, removed, changed (op, dtypes, attributes
    or inputs), those with sizes baked into their attributes (or, for a constant, its shape),
    and those whose only change is their shapes. Nodes are paired by their place in the graph
    (:func:`_pairs`), never by name: names are what converters and TensorFlow number anew."""
    report = DynamicReport(method=method, alt_source=alt_source)
    edges = _edges_of(a), _edges_of(b)
    pairs = _pairs(a, b, edges)
    taken = set(pairs.values())
    # A PyTorch parameter's name is its module path, the same in every capture; TensorFlow's
    # captured variables and converters' initializers are named by counters.
    weight_names = a.framework == b.framework == "torch"
    report.removed = [n["id"] for n in a.nodes() if n["id"] not in pairs]
    report.added = [n["id"] for n in b.nodes() if n["id"] not in taken]
    for x, y in pairs.items():
        fields, sizes = _differences(a.node(x), b.node(y), weight_names=weight_names)
        report.specialised += sizes
        if _input_changes(x, y, edges, pairs, taken):
            fields.append("inputs")
        if fields:
            report.changed.append({"node": x, "fields": fields})
        elif not sizes and a.node(x)["outputs"] != b.node(y)["outputs"]:
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
