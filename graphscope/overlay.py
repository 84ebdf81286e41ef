"""Static against executed: lay what one input actually ran over a static capture of the model.

The static graph (a TorchScript ``prim::If``/``prim::Loop`` with its bodies, Dynamo's graphs
and breaks, TF's ``If``/``While`` functions) is flattened with its subgraphs, matched against
the eager run (:mod:`graphscope.stepping.torch_eager`) with :func:`graphscope.diffing.diff`, and
read back per control-flow node: which branch of each ``If`` ran, about how many times each
loop body ran, which static ops never ran, where Dynamo broke the graph.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphscope import ir
from graphscope.ops import LAYOUT_OPS

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["Overlay", "flatten", "has_control_flow", "overlay"]

_NOT_OPS = frozenset({"input", "output", "param", "const"})
_LOOPS = ("loop", "while")
_BRANCHES = ("if", "cond", "statelessif", "statelesswhile")


def has_control_flow(graph: ir.Graph) -> bool:
    """Subgraphs to overlay, or Dynamo graph breaks."""
    return bool(graph.subgraphs) or any(
        n["op"] == "graph_break" or n["id"].startswith("break_") for n in graph.nodes()
    )


def flatten(graph: ir.Graph) -> ir.Graph:
    """One graph with every subgraph's nodes in it, their ids prefixed by the subgraph's path."""
    flat = ir.Graph(graph.name, framework=graph.framework, capture=graph.capture)
    for path, g in [("", graph), *graph.walk_subgraphs()]:
        prefix = f"{path}/" if path else ""
        for n in g.nodes():
            flat.nx.add_node(prefix + n["id"], **{**n, "id": prefix + n["id"]})
        for e in g.edges():
            flat.add_edge(
                prefix + e.src, prefix + e.dst, src_port=e.src_port, dst_port=e.dst_port, control=e.control
            )
    flat.inputs = list(graph.inputs)
    flat.outputs = list(graph.outputs)
    return flat


@dataclass
class Overlay:
    """What of ``static`` ran on this input, read from the eager ``run``."""

    static: ir.Graph
    run: ir.Graph
    ran: list[str] = field(default_factory=list)  # static op ids (path/id) matched to a run op
    never_ran: list[str] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)
    loops: list[dict[str, Any]] = field(default_factory=list)
    breaks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "static": {"name": self.static.name, "capture": self.static.capture},
            "run": {"name": self.run.name, "capture": self.run.capture},
            "ran": len(self.ran),
            "never_ran": self.never_ran,
            "branches": self.branches,
            "loops": self.loops,
            "graph_breaks": self.breaks,
        }

    def renderable(self) -> RenderableType:
        from rich.text import Text

        t = Text(
            f"executed on this input ({self.run.capture} run over the {self.static.capture} graph):",
            style="bold",
        )
        t.append(f"\n  {len(self.ran)} static ops ran, {len(self.never_ran)} never ran")
        unknown = 0
        for b in self.branches:
            if b["taken"] is None:
                unknown += 1
                continue
            t.append(f"\n  {b['node']}: took {b['taken']}")
        if unknown:
            t.append(f"\n  {unknown} branch point(s) where no op of either branch matched the run")
        for lp in self.loops:
            if lp["iterations"] is None:
                t.append(f"\n  {lp['node']}: how often its body ran cannot be read from the run's ops")
            else:
                t.append(f"\n  {lp['node']}: body ran about {lp['iterations']} times")
        for br in self.breaks:
            t.append(f"\n  dynamo broke the graph at {br['node']}: {br.get('reason') or ''}")
        if self.never_ran:
            shown = ", ".join(self.never_ran[:8]) + (", ..." if len(self.never_ran) > 8 else "")
            t.append(f"\n  never ran: {shown}")
        return t


def overlay(static: ir.Graph, run: ir.Graph) -> Overlay:
    """Read ``run`` (an eager capture of one input) over the static graph."""
    from graphscope import diffing as diff

    flat = flatten(static)
    d = diff.diff(flat, run, ignore=LAYOUT_OPS, cross=True)
    matched = dict(d.matched)
    # Nodes that hold subgraphs (an If, a Dynamo graph call) are containers, not ops.
    ops = [n["id"] for n in flat.nodes() if n["kind"] not in _NOT_OPS and not n["subgraphs"]]
    result = Overlay(static, run)
    result.ran = [i for i in ops if i in matched]
    result.never_ran = [i for i in ops if i not in matched and flat.node(i)["kind"] == "op"]
    run_labels = Counter(n["canonical_op"] for n in run.nodes() if n["kind"] == "op")
    for path, g in [("", static), *static.walk_subgraphs()]:
        prefix = f"{path}/" if path else ""
        for n in g.nodes():
            if not n["subgraphs"]:
                if n["id"].startswith("break_") or n["op"] == "graph_break":
                    result.breaks.append(
                        {"node": prefix + n["id"], "reason": n["attrs"].get("reason"), "source": n["source"]}
                    )
                continue
            leaf = n["op"].split("::")[-1].lower()
            bodies = {s: _ops_under(flat, f"{prefix}{s}/") for s in n["subgraphs"]}
            if any(k in leaf for k in _LOOPS):
                result.loops.append(
                    {"node": prefix + n["id"], "iterations": _iterations(flat, bodies, run_labels, static)}
                )
            elif any(k in leaf for k in _BRANCHES):
                ran = {s: sum(1 for i in ids if i in matched) for s, ids in bodies.items()}
                best = max(ran.values(), default=0)
                taken = [s for s, k in ran.items() if k == best and best > 0]
                result.branches.append(
                    {"node": prefix + n["id"], "taken": taken[0] if len(taken) == 1 else None, "ran": ran}
                )
    return result


def _ops_under(flat: ir.Graph, prefix: str) -> list[str]:
    return [n["id"] for n in flat.nodes() if n["id"].startswith(prefix) and n["kind"] == "op"]


def _iterations(
    flat: ir.Graph, bodies: dict[str, list[str]], run_labels: Counter[str], static: ir.Graph
) -> int | None:
    """How many times a loop body ran: run ops of a label only the body has, per body copy."""
    body = Counter(flat.node(i)["canonical_op"] for ids in bodies.values() for i in ids)
    outside = Counter(n["canonical_op"] for n in static.nodes() if n["kind"] == "op")
    ratios = [
        run_labels[label] // count
        for label, count in body.items()
        if label not in outside
        and label not in LAYOUT_OPS
        and run_labels.get(label)
        and run_labels[label] % count == 0  # a whole number of body copies, or no evidence
    ]
    if not ratios:
        return None  # the run's ops do not tell (the body's ops were lowered differently)
    return Counter(ratios).most_common(1)[0][0]
