"""Is this graph static? Capture twice, with two input sets, and say what changed.

A static capture (``export`` of an MLP) gives the same ops and edges for any batch size: only
shapes move. A tracer that specialised on the input (``jit-trace`` unrolling a loop over the
sequence length, or recording the branch one input took) gives a different graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from graphscope.ir import Graph

__all__ = ["DynamicReport", "alternative_inputs", "compare"]

SHOWN = 8  # how many changed nodes a report names


@dataclass
class DynamicReport:
    """What differs between the graphs captured from two input sets."""

    method: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # same id, other op or inputs
    reshaped: list[str] = field(default_factory=list)  # same op and inputs, other shapes
    alt_source: str = "example_inputs_alt"
    retraced: bool | None = None  # tf.function: did the second input make it trace again?

    @property
    def static(self) -> bool:
        return not (self.added or self.removed or self.changed)

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.retraced:
            notes.append(
                f"check-dynamic: tf.function traced a second concrete function for {self.alt_source} (retracing)"
            )
        if self.static:
            notes.append(f"check-dynamic: {self.method} captured the same graph for both inputs (static)")
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "static": self.static,
            "method": self.method,
            "second_input": self.alt_source,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "reshaped": self.reshaped,
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
        text = Text("input-dependent: ", style="bold red")
        text.append(f"{self.method} captured a different graph for {self.alt_source}: {self.summary()}")
        return text


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


def _shape_attrs_only(attrs_change: list[dict[str, Any]]) -> bool:
    """A placeholder's ``shape`` attribute follows the input: a shape change, not a new op."""
    return set(attrs_change[0]) | set(attrs_change[1]) <= {"shape", "_output_shapes"}


def compare(a: Graph, b: Graph, *, method: str, alt_source: str = "example_inputs_alt") -> DynamicReport:
    """Compare two captures of one model with :mod:`graphscope.diffing`: nodes added, removed,
    changed (op, attributes or inputs), and those whose only change is their shapes."""
    from graphscope import diffing as diff

    report = DynamicReport(method=method, alt_source=alt_source)
    d = diff.diff(a, b, cross=False)
    report.added = list(d.added)
    report.removed = list(d.removed)
    rewired = {v for _, v in d.removed_edges} | {d.ba_map()[v] for _, v in d.added_edges}
    changes = {c["a"]: c for c in d.changed}
    for x, _ in d.matched:
        found = changes.get(x, {}).get("fields", {})
        fields = sorted(
            k for k in found if k != "shape" and not (k == "attrs" and _shape_attrs_only(found[k]))
        )
        if x in rewired:
            fields.append("inputs")
        if fields:
            report.changed.append({"node": x, "fields": fields})
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
    return report
