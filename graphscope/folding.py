"""Repeated blocks: runs of sibling scopes with the same graph structure, folded into one.

A transformer's ``layers.0`` ... ``layers.79``, a Keras ``block_1`` ... ``block_16``: siblings
under one parent scope whose sub-graphs are the same. Two scopes are the same when their nodes,
in graph order, have the same ops, kinds, scopes below the sibling, output shapes and dtypes,
and the same edges between them (by position, with ports) and from outside (by port). Names are
not compared: ``layers.3`` is one by what it computes, not by its number.

Only consecutive siblings fold (in the order they first appear in the graph), so a block that
differs in the middle of a stack splits the run and is shown, never hidden; siblings that
compute the same ops on other shapes are listed as :attr:`Fold.differing`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["SIZE_LIMIT", "Fold", "find_folds", "folded_nodes"]

# Graphs above this many nodes are not searched (about 15 µs a node: 1.5 s at the limit): a
# drawing of a bigger one is collapsed anyway, and `info` and the TUI must answer quickly.
SIZE_LIMIT = 100_000

_SKIPPED_KINDS = ("input", "output")


@dataclass(frozen=True)
class Fold:
    """``count`` identical sibling scopes ``parent + (member,)``, in graph order."""

    parent: tuple[str, ...]
    members: tuple[str, ...]
    nodes: int  # in each instance
    differing: tuple[tuple[str, str], ...] = field(default=())  # (sibling, how it differs)

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def first(self) -> tuple[str, ...]:
        return (*self.parent, self.members[0])

    @property
    def rest_key(self) -> tuple[str, ...]:
        """The scope path the folded instances (all but the first) are drawn as."""
        return (*self.parent, f"{self.members[1]}–{self.members[-1]}")

    def label(self) -> str:
        where = ".".join(self.parent) or "(top level)"
        return f"{where}.{{{self.members[0]}…{self.members[-1]}}}"

    def describe(self) -> str:
        """``80 × model.layers.N (identical, 73 nodes each): model.layers.0 … model.layers.79``"""
        base = ".".join(self.parent)
        name = f"{base}.N" if base else "N"
        text = (
            f"{self.count} × {name} (identical, {self.nodes} nodes each): "
            f"{'.'.join(self.first)} … {'.'.join((*self.parent, self.members[-1]))}"
        )
        for sibling, how in self.differing:
            text += f"; {'.'.join((*self.parent, sibling))} differs: {how}"
        return text


def find_folds(graph: Graph, *, min_count: int = 2) -> list[Fold]:
    """The runs of identical sibling scopes in ``graph`` (its top level), outermost first.

    A run inside a folded instance other than the first is not listed (it is not drawn), nor
    looked for: parents are visited outermost first, and those under a hidden instance skipped.
    A graph of more than :data:`SIZE_LIMIT` nodes has none."""
    if len(graph) > SIZE_LIMIT:
        return []
    children = _children(graph)
    into: dict[str, list[tuple[str, int, int, bool]]] = defaultdict(list)  # dst -> its in-edges
    for u, v, d in graph.edge_data():
        into[v].append((u, d["src_port"], d["dst_port"], bool(d["control"])))
    by_parent: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
    for child in children:  # dicts keep insertion order: first appearance in graph order
        by_parent[child[:-1]].append(child)
    data = graph.nx._node  # the node dicts, without networkx's view per lookup

    def signature(child: tuple[str, ...], with_shapes: bool) -> Any:
        return _signature(data, children[child], len(child), into, with_shapes=with_shapes)

    folds: list[Fold] = []
    hidden: set[tuple[str, ...]] = set()  # the instances after the first of a fold found
    for parent in sorted(by_parent, key=len):
        siblings = by_parent[parent]
        if len(siblings) < min_count or any(parent[:d] in hidden for d in range(1, len(parent) + 1)):
            continue
        shapes = {c: signature(c, True) for c in siblings}
        start = 0
        while start < len(siblings):
            end = start + 1
            while end < len(siblings) and shapes[siblings[end]] == shapes[siblings[start]]:
                end += 1
            if end - start >= min_count and _worth_folding(end - start, len(children[siblings[start]])):
                run = siblings[start:end]
                ops = signature(run[0], False)
                differing = tuple(
                    (c[-1], "the same ops on other shapes")
                    for c in (
                        siblings[start - 1] if start else None,
                        siblings[end] if end < len(siblings) else None,
                    )
                    if c is not None and signature(c, False) == ops
                )
                folds.append(Fold(parent, tuple(c[-1] for c in run), len(children[run[0]]), differing))
                hidden.update(run[1:])
            start = end
    folds.sort(key=lambda f: (len(f.parent), f.parent))
    return folds


def _worth_folding(count: int, nodes: int) -> bool:
    """Two one-node siblings (``k_proj``, ``v_proj``) are clearer drawn than folded."""
    return nodes >= 3 and (count - 1) * nodes >= 16


def folded_nodes(graph: Graph, folds: list[Fold]) -> dict[str, tuple[str, ...]]:
    """Node id -> the scope path it is drawn as: every instance after the first as one."""
    rest = {(*f.parent, m): f.rest_key for f in folds for m in f.members[1:]}
    depths = sorted({len(k) for k in rest})
    out: dict[str, tuple[str, ...]] = {}
    for n in graph.nodes():
        scope = tuple(n["scope"])
        for d in depths:
            key = rest.get(scope[:d])
            if key is not None:
                out[n["id"]] = key
                break
    return out


def _children(graph: Graph) -> dict[tuple[str, ...], list[str]]:
    """Every scope path (at every depth) -> its nodes, in graph order."""
    members: dict[tuple[str, ...], list[str]] = defaultdict(list)
    data = graph.nx._node
    for node_id in graph.order():
        n = data[node_id]
        if n["kind"] in _SKIPPED_KINDS:
            continue
        scope = tuple(n["scope"])
        for d in range(1, len(scope) + 1):
            members[scope[:d]].append(node_id)
    return members


def _signature(
    data: Any,
    node_ids: list[str],
    depth: int,
    into: dict[str, list[tuple[str, int, int, bool]]],
    *,
    with_shapes: bool,
) -> Any:
    """What a scope computes, without its name: nodes in order, edges inside and from outside."""
    index = {node_id: i for i, node_id in enumerate(node_ids)}
    nodes = []
    edges = []
    for i, node_id in enumerate(node_ids):
        n = data[node_id]
        outputs = tuple((str(o.get("shape")), o.get("dtype")) for o in n["outputs"]) if with_shapes else ()
        nodes.append((n["canonical_op"], n["kind"], tuple(n["scope"][depth:]), outputs))
        for src, sp, dp, control in into.get(node_id, ()):
            edges.append((index.get(src, -1), i, sp, dp, control))
    return (tuple(nodes), tuple(sorted(edges)))
