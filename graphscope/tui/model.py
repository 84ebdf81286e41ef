"""What the TUI shows, computed without Textual: rows, scopes, search, neighbourhoods.

Kept apart from the widgets so that it is fast to test and fast to run on huge graphs: every
index here is built once per graph level in one pass over the nodes.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any, NamedTuple

from graphscope.rendering.text import format_shape

if TYPE_CHECKING:
    from graphscope.folding import Fold
    from graphscope.ir import Graph

__all__ = ["WEIGHT_KINDS", "Level", "Row", "fuzzy_score", "neighbourhood", "without_weights"]

WEIGHT_KINDS = frozenset({"param", "const"})  # what `w` hides


class Row(NamedTuple):
    """One node as the table shows it (a tuple: half a million of them are made at once)."""

    id: str
    op: str
    canonical: str
    kind: str
    shape: str
    dtype: str
    scope: str
    stats: str  # "[min, max] mean" or NaN counts, once stepped
    nonfinite: bool
    haystack: str  # what search looks in, lowercased


def _stats_text(node: dict[str, Any]) -> tuple[str, bool]:
    stats = node["outputs"][0].get("stats") if node["outputs"] else None
    if not isinstance(stats, dict):
        return "", False
    from graphscope.rendering.steps import format_number, nonfinite_text

    bad = nonfinite_text(stats)
    if bad:
        return bad, True
    return (
        f"[{format_number(stats.get('min'))}, {format_number(stats.get('max'))}] μ {format_number(stats.get('mean'))}",
        False,
    )


def _folds(graph: Graph) -> dict[str, Fold]:
    """Scope -> the run of identical blocks under it (none above folding.SIZE_LIMIT nodes)."""
    from graphscope import folding

    return {".".join(f.parent): f for f in folding.find_folds(graph)}


class Level:
    """One graph level (the top graph or a subgraph entered like a directory)."""

    def __init__(self, graph: Graph, path: str = "") -> None:
        self.graph = graph
        self.path = path  # "" for the top level, "if.then" or "loop.body/if.then" below it
        self.rows: list[Row] = []
        self.index: dict[str, int] = {}
        self._widths: dict[str, int] | None = None
        scopes: Counter[str] = Counter()
        own: Counter[str] = Counter()  # nodes directly in each scope
        shapes: dict[tuple[Any, ...] | None, str] = {}  # each distinct shape formatted once
        # forward node -> its gradient (the first backward node whose grad_of it is), for `g`
        self.gradients: dict[str, str] = {}
        for n in graph.nodes():
            if n["grad_of"] is not None:
                self.gradients.setdefault(n["grad_of"], n["id"])
            first = n["outputs"][0] if n["outputs"] else {}
            scope = ".".join(n["scope"])
            if first:
                shape = first.get("shape")
                key = tuple(shape) if shape is not None else None
                shape_text = shapes.get(key)
                if shape_text is None:
                    shape_text = shapes[key] = format_shape(shape)
            else:
                shape_text = ""
            stats, bad = _stats_text(n)
            row = Row(
                id=n["id"],
                op=n["op"],
                canonical=n["canonical_op"],
                kind=n["kind"],
                shape=shape_text,
                dtype=str(first.get("dtype") or ""),
                scope=scope,
                stats=stats,
                nonfinite=bad,
                haystack=f"{n['id']} {n['name']} {n['op']} {n['canonical_op']} {scope} {n['kind']}".lower()
                + ("" if n["phase"] == "forward" else f" {n['phase']}"),
            )
            self.index[row.id] = len(self.rows)
            self.rows.append(row)
            own[scope] += 1
        # Counted per distinct scope, then added to every enclosing one (not per node and depth).
        for scope, count in own.items():
            parts = scope.split(".") if scope else []
            for depth in range(len(parts) + 1):
                scopes[".".join(parts[:depth])] += count
        self.scope_counts = scopes  # "" -> all nodes; "layer1" -> nodes under layer1
        self.folds = _folds(graph)  # "model.layers" -> its run of identical blocks
        self.has_bodies = any(n["subgraphs"] for n in graph.nodes())  # `>` enters one
        self.weights = sum(1 for r in self.rows if r.kind in WEIGHT_KINDS)  # params and constants
        # Where the table opens: the first op, not the hundreds of weights listed before it.
        self.first_op = next((r.id for r in self.rows if r.kind == "op"), None)
        # Inputs in port order, users in graph order; parallel edges once.
        ins: dict[str, list[tuple[int, str]]] = defaultdict(list)
        succs: dict[str, dict[str, None]] = defaultdict(dict)
        for u, v, attrs in graph.edge_data():
            ins[v].append((attrs["dst_port"] or 0, u))
            succs[u][v] = None
        self.preds = {k: list(dict.fromkeys(u for _, u in sorted(v))) for k, v in ins.items()}
        self.succs = {k: list(v) for k, v in succs.items()}

    def content_widths(self) -> dict[str, int]:
        """The longest cell of each table column, over this level (distinct values measured once)."""
        if self._widths is None:
            from graphscope.rendering.steps import short_op

            rows = self.rows
            self._widths = {
                "id": max(map(len, (r.id for r in rows)), default=0),
                "op": max(map(len, map(short_op, {r.op for r in rows})), default=0),
                "values": max(map(len, {r.stats for r in rows}), default=0),
                "shape": max(map(len, {r.shape for r in rows}), default=0),
                "dtype": max(map(len, {r.dtype for r in rows}), default=0),
                "kind": max(map(len, {r.kind for r in rows}), default=0),
            }
        return self._widths

    def rows_in(self, scope: str, *, weights: bool = True) -> list[Row]:
        """The rows under ``scope`` ("" for all), without params and constants unless ``weights``."""
        rows = self._rows_in(scope)
        return rows if weights or not self.weights else without_weights(rows)

    def _rows_in(self, scope: str) -> list[Row]:
        if not scope:
            return self.rows
        prefix = scope + "."
        return [r for r in self.rows if r.scope == scope or r.scope.startswith(prefix)]

    def search(self, query: str, rows: list[Row] | None = None) -> list[Row]:
        """Rows matching ``query``: ``op:NAME`` / ``kind:NAME`` / ``scope:PREFIX`` filters and
        words, best match first (ties in graph order)."""
        rows = self.rows if rows is None else rows
        words = query.lower().split()
        filters = [
            w.split(":", 1) for w in words if ":" in w and w.split(":", 1)[0] in ("op", "kind", "scope")
        ]
        terms = [w for w in words if not (":" in w and w.split(":", 1)[0] in ("op", "kind", "scope"))]
        for key, value in filters:
            if key == "op":
                rows = [r for r in rows if value in r.canonical or value in r.op.lower()]
            elif key == "kind":
                rows = [r for r in rows if r.kind == value]
            else:
                rows = [r for r in rows if r.scope.lower().startswith(value)]
        if not terms:
            return rows
        # Fast path: rows holding every term as a substring (C-speed `in`), ids that start
        # with the first term first; letters-in-order fuzzy matching only when none does.
        exact = rows
        for term in terms:
            exact = [r for r in exact if term in r.haystack]
        if exact:
            # The haystack starts with the lowercased id: no .lower() per row.
            first = terms[0]
            starts = [r for r in exact if r.haystack.startswith(first)]
            if not starts or len(starts) == len(exact):
                return exact
            ids = {r.id for r in starts}
            whole = first + " "
            same = [r for r in starts if r.haystack.startswith(whole)]
            return (
                same
                + [r for r in starts if not r.haystack.startswith(whole)]
                + [r for r in exact if r.id not in ids]
            )
        # A regex (C speed) keeps the rows whose letters could match closely enough; only
        # those are scored in Python.
        pattern = re.compile(".*?".join(re.escape(ch) for ch in terms[0]))
        candidates = [r for r in rows if pattern.search(r.haystack)]
        scored = []
        for i, r in enumerate(candidates):
            total = 0
            for term in terms:
                score = fuzzy_score(term, r.haystack)
                if score is None:
                    break
                total += score
            else:
                scored.append((total, i, r))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [r for _, _, r in scored]


def without_weights(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.kind not in WEIGHT_KINDS]


def fuzzy_score(term: str, text: str) -> int | None:
    """How well ``term`` matches ``text`` (both lowercased), None when it does not.

    A substring scores highest (more at a word start); otherwise the term's letters must appear
    in order, and closer letters score more.

    >>> fuzzy_score("relu", "layer1.relu_2 call_function:relu") > fuzzy_score("rlu", "layer1.relu_2")
    True
    >>> fuzzy_score("xyz", "relu") is None
    True
    """
    at = text.find(term)
    if at >= 0:
        start = at == 0 or not text[at - 1].isalnum()
        return 1000 + (200 if start else 0) - min(at, 100)
    score, pos, last, first = 0, 0, -1, -1
    for ch in term:
        found = text.find(ch, pos)
        if found < 0:
            return None
        if first < 0:
            first = found
        score += 10 if found == last + 1 else 1
        last, pos = found, found + 1
    if last - first + 1 > 2 * len(term) + 2:
        return None  # letters scattered over the whole text: not what was typed
    return score


def neighbourhood(level: Level, node_id: str, hops: int = 2, width: int = 6) -> dict[str, list[list[str]]]:
    """Predecessors and successors of ``node_id``, ring by ring (``width`` per ring at most)."""
    out: dict[str, list[list[str]]] = {"up": [], "down": []}
    for direction, edges in (("up", level.preds), ("down", level.succs)):
        frontier, seen = [node_id], {node_id}
        for _ in range(hops):
            ring: list[str] = []
            for n in frontier:
                for m in edges.get(n, []):
                    if m not in seen:
                        seen.add(m)
                        ring.append(m)
            if not ring:
                break
            out[direction].append(ring[:width] + ([f"+{len(ring) - width}"] if len(ring) > width else []))
            frontier = ring
    return out
