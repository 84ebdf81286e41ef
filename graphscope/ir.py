"""The graphscope IR: one graph format for every framework and capture method.

A :class:`Graph` wraps a :class:`networkx.MultiDiGraph` whose nodes all carry the same keys.
Unknown values are ``None``; a key is never missing.

Node fields
-----------
``id``            stable unique string within its graph, e.g. ``"linear_1"``.
``name``          the framework's own name for the node, e.g. ``"encoder/dense/MatMul"``.
``op``            the framework's op as it names it: ``"aten::linear"``, ``"MatMul"``,
                  ``"call_module:Linear"``.
``canonical_op``  the framework-neutral op from :mod:`graphscope.ops` (``"linear"``,
                  ``"matmul"``, ``"relu"``), or the lowercased op where no mapping exists yet.
``kind``          one of :class:`NodeKind`: ``input``, ``output``, ``param``, ``const``, ``op``,
                  ``control``.
``scope``         the hierarchy as a list: ``["layer1", "0", "conv1"]`` from a module path,
                  ``["dense"]`` from the TF name ``dense/MatMul`` (the leaf is dropped).
``outputs``       one ``{"shape": [...], "dtype": "float32"}`` per output. A dim is an int, a
                  string for a symbolic dim (``"s0"``), or ``None`` when unknown; the whole
                  shape is ``None`` when even the rank is unknown. Dtypes use numpy names.
``attrs``         JSON-safe dict of the op's attributes (see :func:`json_safe`).
``source``        ``{"file": str, "line": int}`` of the user code that made the node, or None.
``subgraphs``     names of body graphs this node runs (``then``, ``else``, ``body``, ...);
                  each resolves in this graph's ``subgraphs`` or an enclosing graph's.
``phase``         one of :class:`Phase`: ``forward`` (the model and its loss), ``backward``
                  (the gradient computation) or ``optimizer`` (the parameter update).
``grad_of``       for a ``backward`` node, the id of the forward node it differentiates: a
                  ``MulBackward0`` names the ``mul`` whose output gradient it takes in, and a
                  gradient accumulation (``AccumulateGrad``) names the parameter it writes to.
                  ``None`` for forward nodes, and for bookkeeping nodes that differentiate
                  nothing (their ``op`` says what they are). Always a node of the same graph.

Edge fields: ``src_port`` (output index of ``src``), ``dst_port`` (input index of ``dst``),
``control`` (a TF control dependency: ordering only, no data).

Graph fields: ``name``, ``framework``, ``capture`` (the method), ``framework_version``,
``inputs`` / ``outputs`` (ordered node ids), ``signature`` (the input shapes/dtypes the graph
was captured with), ``subgraphs`` (name -> Graph), ``notes`` (what the tracer warned about).

Cycles are allowed (a TF1 while loop's ``NextIteration -> Merge`` edge); code that needs an
order uses :meth:`Graph.order`, which names the back edges it ignores.

JSON form: ``{"format": "graphscope.ir", "version": 2, "graph": G}``; see :func:`dumps`.
Version 1 files (before ``phase`` and ``grad_of``) still load: their nodes are all
``forward``, with ``grad_of`` null.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import heapq
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import networkx as nx

from graphscope import _gc
from graphscope.errors import GraphscopeError
from graphscope.ops import canonical

__all__ = [
    "FORMAT",
    "NODE_KEYS",
    "VERSION",
    "Edge",
    "Graph",
    "NodeKind",
    "Phase",
    "dumps",
    "json_safe",
    "load",
    "loads",
    "save",
]

FORMAT = "graphscope.ir"
VERSION = 2
# Versions this graphscope reads: 1 had no "phase" / "grad_of" (every node forward).
READABLE_VERSIONS = (1, 2)

NODE_KEYS = (
    "id",
    "name",
    "op",
    "canonical_op",
    "kind",
    "scope",
    "outputs",
    "attrs",
    "source",
    "subgraphs",
    "phase",
    "grad_of",
)
GRAPH_KEYS = (
    "name",
    "framework",
    "capture",
    "framework_version",
    "inputs",
    "outputs",
    "signature",
    "notes",
    "nodes",
    "edges",
    "subgraphs",
)
EDGE_KEYS = ("src", "dst", "src_port", "dst_port", "control")
_NODE_KEY_SET = frozenset(NODE_KEYS)
_EDGE_KEY_SET = frozenset(EDGE_KEYS)

# Nesting deeper than this is not a model, it is an attack on the loader's recursion.
MAX_SUBGRAPH_DEPTH = 64


class NodeKind(str, Enum):
    """What role a node plays in the graph."""

    INPUT = "input"  # a value fed from outside (placeholder, forward argument)
    OUTPUT = "output"  # a value returned to the caller
    PARAM = "param"  # trained state: a weight, a buffer, a TF variable
    CONST = "const"  # a literal baked into the graph
    OP = "op"  # a computation
    CONTROL = "control"  # control flow plumbing (Switch, Merge, NoOp, prim::If)


KINDS = frozenset(k.value for k in NodeKind)


class Phase(str, Enum):
    """Which part of a training step a node belongs to."""

    FORWARD = "forward"  # the model's forward pass, the loss included (every inference graph)
    BACKWARD = "backward"  # the gradients, as autograd / GradientTape computes them
    OPTIMIZER = "optimizer"  # the parameter update


PHASES = frozenset(p.value for p in Phase)


def json_safe(value: Any, *, max_items: int = 64, _depth: int = 0) -> Any:
    """Turn ``value`` into something ``json.dumps`` writes exactly and reads back the same.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``; tuples become
    lists; long sequences are summarised as ``{"len": n, "head": [...]}`` so that a large
    constant is never embedded; lists and mappings nested deeper than
    :data:`MAX_VALUE_DEPTH` become ``"..."`` (a saved graph may nest no deeper); anything
    else unknown becomes its ``repr``.

    >>> json_safe((1, float("inf"), "a"))
    [1, 'inf', 'a']
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Enum):
        return json_safe(value.value, max_items=max_items, _depth=_depth)
    if isinstance(value, (Mapping, list, tuple)) and _depth >= MAX_VALUE_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, max_items=max_items, _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) > max_items:
            head = [json_safe(v, max_items=max_items, _depth=_depth + 2) for v in value[:8]]
            return {"len": len(value), "head": head}
        return [json_safe(v, max_items=max_items, _depth=_depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        if len(value) <= max_items:
            return value.decode("utf-8", errors="backslashreplace")
        return {"bytes": len(value)}
    return repr(value)


class Edge:
    """A read-only view of one edge, for iteration."""

    __slots__ = ("control", "dst", "dst_port", "src", "src_port")

    def __init__(self, src: str, dst: str, src_port: int, dst_port: int, control: bool):
        self.src = src
        self.dst = dst
        self.src_port = src_port
        self.dst_port = dst_port
        self.control = control

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in EDGE_KEYS}

    def __repr__(self) -> str:
        kind = " control" if self.control else ""
        return f"Edge({self.src}:{self.src_port} -> {self.dst}:{self.dst_port}{kind})"


class Graph:
    """A captured computational graph.

    >>> g = Graph("tiny", framework="torch", capture="fx")
    >>> _ = g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": [2], "dtype": "float32"}])
    >>> _ = g.add_node("relu", op="call_function:relu", canonical_op="relu")
    >>> g.add_edge("x", "relu")
    >>> g.inputs, g.outputs = ["x"], ["relu"]
    >>> g.validate()
    >>> [n["id"] for n in g.nodes()]
    ['x', 'relu']
    """

    def __init__(
        self,
        name: str = "graph",
        *,
        framework: str | None = None,
        capture: str | None = None,
        framework_version: str | None = None,
        signature: Any = None,
        notes: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.framework = framework
        self.capture = capture
        self.framework_version = framework_version
        self.signature = signature
        self.notes: list[str] = list(notes)
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.subgraphs: dict[str, Graph] = {}
        self.nx = nx.MultiDiGraph()

    # -- building -------------------------------------------------------------------------

    def add_node(
        self,
        id: str,
        *,
        op: str,
        name: str | None = None,
        canonical_op: str | None = None,
        kind: str | NodeKind = NodeKind.OP,
        scope: Sequence[str] = (),
        outputs: Sequence[Mapping[str, Any]] = (),
        attrs: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
        subgraphs: Sequence[str] = (),
        phase: str | Phase = Phase.FORWARD,
        grad_of: str | None = None,
    ) -> dict[str, Any]:
        """Add a node with every schema key filled in and return its (live) attribute dict.

        ``grad_of`` must name a node of this graph by the time :meth:`validate` runs."""
        if id in self.nx:
            raise ValueError(f"node id {id!r} is already in graph {self.name!r}")
        if canonical_op is None:
            canonical_op = canonical(op)
        # Tracers add tens of thousands of nodes: the common cases skip the general conversions.
        data = {
            "id": id,
            "name": id if name is None else name,
            "op": op,
            "canonical_op": canonical_op,
            "kind": kind if (kind.__class__ is str and kind in KINDS) else NodeKind(kind).value,
            "scope": [str(s) for s in scope] if scope else [],
            "outputs": [{"shape": _shape(o.get("shape")), "dtype": o.get("dtype")} for o in outputs],
            "attrs": (dict(attrs) if _plain(attrs) else json_safe(dict(attrs))) if attrs else {},
            "source": None if source is None else dict(source),
            "subgraphs": list(subgraphs),
            "phase": phase if (phase.__class__ is str and phase in PHASES) else Phase(phase).value,
            "grad_of": grad_of,
        }
        # Straight into networkx's own tables (the layout it documents for subclasses):
        # add_node would copy the fresh dict, a third of the time a tracer spends per node.
        self.nx._node[id] = data
        self.nx._succ[id] = {}
        self.nx._pred[id] = {}
        _forget_nx_cache(self.nx)
        return data  # the live dict

    def add_node_dict(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add a node whose attribute dict the caller built itself, as :meth:`add_node` would
        have: every key of :data:`NODE_KEYS`, in its order, values JSON-safe and lists its own.
        The dict is taken, not copied, and returned. For the eager recorder, which adds a node per
        op as the model runs: add_node's conversions cost as much as the rest of its work per op.
        :meth:`validate` checks these nodes like any other."""
        node_id = data["id"]
        table = self.nx._node
        if node_id in table:
            raise ValueError(f"node id {node_id!r} is already in graph {self.name!r}")
        table[node_id] = data
        self.nx._succ[node_id] = {}
        self.nx._pred[node_id] = {}
        _forget_nx_cache(self.nx)
        return data

    def add_edge(
        self,
        src: str,
        dst: str,
        *,
        src_port: int = 0,
        dst_port: int = 0,
        control: bool = False,
    ) -> None:
        """Join ``src``'s output ``src_port`` to ``dst``'s input ``dst_port``."""
        succ = self.nx._succ
        for end in (src, dst):
            if end not in succ:
                raise ValueError(f"edge {src!r} -> {dst!r}: no node {end!r} in {self.name!r}")
        _insert_edge(succ, self.nx._pred, src, dst, src_port, dst_port, control)
        _forget_nx_cache(self.nx)

    # -- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.nx.number_of_nodes())

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nx

    def node(self, node_id: str) -> dict[str, Any]:
        """The attribute dict of one node (a live view: edits change the graph)."""
        try:
            return self.nx.nodes[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id!r} in graph {self.name!r}") from None

    def nodes(self) -> Iterator[dict[str, Any]]:
        """Node attribute dicts in insertion order (the framework's own order)."""
        return iter(self.nx._node.values())  # networkx's own dict: no view objects per node

    def edges(self, where: Callable[[str, str], bool] | None = None) -> Iterator[Edge]:
        """Edges in a canonical order: by source position, source port, target position.

        ``where(src, dst)`` keeps only the edges it accepts, before they are built and sorted
        (a drawing of a million-node graph needs the few thousand that cross its boxes)."""
        index = {n: i for i, n in enumerate(self.nx)}
        rows = sorted(
            (index[u], d["src_port"], index[v], d["dst_port"], bool(d["control"]), u, v)
            for u, v, d in self.edge_data()
            if where is None or where(u, v)
        )
        for _, sp, _, dp, ctl, u, v in rows:
            yield Edge(u, v, sp, dp, ctl)

    def number_of_edges(self) -> int:
        # networkx counts through degree views: 5 s on a million nodes, this 0.3 s.
        return sum(len(keys) for nbrs in self.nx._succ.values() for keys in nbrs.values())

    def number_of_control_edges(self) -> int:
        return sum(1 for _, _, attrs in self.edge_data() if attrs["control"])

    def edge_data(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every edge as ``(src, dst, attrs)`` in insertion order, unsorted (:meth:`edges`
        sorts): for counting and indexing a big graph without networkx's views."""
        for u, nbrs in self.nx._succ.items():
            for v, keys in nbrs.items():
                for attrs in keys.values():
                    yield u, v, attrs

    def predecessors(self, node_id: str) -> list[str]:
        return list(self.nx.predecessors(node_id))

    def successors(self, node_id: str) -> list[str]:
        return list(self.nx.successors(node_id))

    def walk_subgraphs(self, prefix: str = "") -> Iterator[tuple[str, Graph]]:
        """Every nested subgraph, depth first, with its path (``"cond/then"``)."""
        for name in sorted(self.subgraphs):
            path = f"{prefix}{name}"
            sub = self.subgraphs[name]
            yield path, sub
            yield from sub.walk_subgraphs(path + "/")

    # -- order ----------------------------------------------------------------------------

    def back_edges(self) -> list[tuple[str, str, int]]:
        """The edges that close cycles, found by a depth-first walk from the inputs.

        The walk starts at nodes without predecessors (inputs first, then in insertion
        order), so in a TF1 while loop the edge found is ``NextIteration -> Merge``, the
        loop's real back edge. Returns ``(src, dst, key)`` triples.
        """
        if self._is_acyclic():  # most graphs: no cycle, nothing to walk
            return []
        return self._back_edges_walk()

    def _back_edges_walk(self) -> list[tuple[str, str, int]]:
        g = self.nx
        position = {n: i for i, n in enumerate(g)}
        roots = [n for n in self.inputs if n in g]
        given = set(roots)
        roots += [n for n in g if g.in_degree(n) == 0 and n not in given]
        roots += list(g)  # nodes reachable only from a cycle
        state: dict[str, int] = {}  # 1 on the stack, 2 done
        found: list[tuple[str, str, int]] = []
        for root in roots:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, self._out_edges_sorted(root, position))]
            while stack:
                node, it = stack[-1]
                advanced = False
                for _, child, key in it:
                    s = state.get(child)
                    if s == 1:
                        found.append((node, child, key))
                    elif s is None:
                        state[child] = 1
                        stack.append((child, self._out_edges_sorted(child, position)))
                        advanced = True
                        break
                if not advanced:
                    state[node] = 2
                    stack.pop()
        return found

    def _out_edges_sorted(self, node: str, position: Mapping[str, int]) -> Iterator[tuple[str, str, int]]:
        edges = sorted(self.nx.out_edges(node, keys=True), key=lambda e: (position[e[1]], e[2]))
        return iter(edges)

    def order(self) -> list[str]:
        """All node ids in a topological order, ties broken by insertion order.

        Back edges (see :meth:`back_edges`) are ignored, so this works on cyclic graphs.
        """
        return self.order_and_back_edges()[0]

    def order_and_back_edges(self) -> tuple[list[str], list[tuple[str, str, int]]]:
        """:meth:`order` and :meth:`back_edges` at once (one pass finds both on a graph
        without cycles)."""
        order = self._acyclic_order()
        if order is not None:
            return order, []
        back = self._back_edges_walk()
        dag = self.nx
        if back:  # copy only when there is something to remove
            dag = nx.MultiDiGraph(self.nx)
            dag.remove_edges_from(back)
        position = {n: i for i, n in enumerate(self.nx)}
        return list(nx.lexicographical_topological_sort(dag, key=position.__getitem__)), back

    def _is_acyclic(self) -> bool:
        """Kahn's algorithm without the ordering: can every node be taken once its inputs are?"""
        adjacency = self.nx._succ  # networkx's own {node: {successor: {key: attrs}}}
        indegree = dict.fromkeys(adjacency, 0)
        for nbrs in adjacency.values():
            for v, keys in nbrs.items():
                indegree[v] += len(keys)
        ready = [n for n, d in indegree.items() if d == 0]
        taken = 0
        while ready:
            u = ready.pop()
            taken += 1
            for v, keys in adjacency[u].items():
                left = indegree[v] - len(keys)
                indegree[v] = left
                if left == 0:
                    ready.append(v)
        return taken == len(indegree)

    def _acyclic_order(self) -> list[str] | None:
        """Kahn's algorithm, ties broken by insertion order: :meth:`order` when the graph has
        no cycle (None when it has one). Plain dicts and a heap: a million nodes in seconds,
        where looking for back edges first took minutes."""
        g = self.nx
        nodes = list(g)
        position = {n: i for i, n in enumerate(nodes)}
        indegree = dict.fromkeys(nodes, 0)
        adjacency = g._succ  # networkx's own {node: {successor: {key: attrs}}}
        for nbrs in adjacency.values():
            for v, keys in nbrs.items():
                indegree[v] += len(keys)
        heap = [position[n] for n in nodes if indegree[n] == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            u = nodes[heapq.heappop(heap)]
            order.append(u)
            for v, keys in adjacency[u].items():
                indegree[v] -= len(keys)
                if indegree[v] == 0:
                    heapq.heappush(heap, position[v])
        return order if len(order) == len(nodes) else None

    # -- checks ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the schema; raise :class:`GraphscopeError` saying what is wrong and where."""
        _validate(self, self.name, [])

    # -- equality and JSON ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form of the graph (without the format envelope)."""
        return {
            "name": self.name,
            "framework": self.framework,
            "capture": self.capture,
            "framework_version": self.framework_version,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "signature": json_safe(self.signature),
            "notes": list(self.notes),
            "nodes": [{k: n[k] for k in NODE_KEYS} for n in self.nodes()],
            "edges": [e.as_dict() for e in self.edges()],
            "subgraphs": {k: self.subgraphs[k].to_dict() for k in sorted(self.subgraphs)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "graph") -> Graph:
        """Build a graph from :meth:`to_dict`'s form, validating as it goes."""
        # The loader keeps the dicts it is given (a parsed file's, which nothing else holds):
        # a caller's own data is copied first, so the graph never shares it.
        return _from_dict(copy.deepcopy(dict(data)), where, depth=0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<Graph {self.name!r} {self.framework}/{self.capture}: "
            f"{len(self)} nodes, {self.number_of_edges()} edges, "
            f"{len(self.subgraphs)} subgraphs>"
        )

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a Graph as its diagram (None without Graphviz: the text repr instead)."""
        from graphscope.notebook import graph_svg

        return graph_svg(self)


def _insert_edge(
    succ: dict[str, Any],
    pred: dict[str, Any],
    src: str,
    dst: str,
    src_port: int,
    dst_port: int,
    control: bool,
) -> None:
    """What MultiDiGraph.add_edge does for two existing nodes, without its per-call overhead:
    the parallel edges of one pair share one key dict, in both directions."""
    keydict: dict[int, dict[str, Any]] | None = succ[src].get(dst)
    if keydict is None:
        keydict = succ[src][dst] = pred[dst][src] = {}
    edge_key = len(keydict)  # networkx's own choice of key for a parallel edge
    while edge_key in keydict:
        edge_key += 1
    keydict[edge_key] = {"src_port": src_port, "dst_port": dst_port, "control": control}


def _plain(attrs: Mapping[str, Any]) -> bool:
    """Whether json_safe() would return ``attrs`` as it is (most nodes' attributes: no walk)."""
    return all(v is None or v.__class__ in _PLAIN_VALUES for v in attrs.values()) and all(
        k.__class__ is str for k in attrs
    )


_PLAIN_VALUES = frozenset({bool, int, str})

# How deep a value in a saved graph (an attribute, the signature) may nest: writing and
# exporting walk values recursively, and 500 levels ran out of Python's stack.
MAX_VALUE_DEPTH = 32


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` (JSON data) has lists or objects nested more than ``limit`` deep."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if item.__class__ is dict:
            item = item.values()
        elif item.__class__ is not list:
            continue
        if depth >= limit:
            return True
        stack.extend((v, depth + 1) for v in item)
    return False


def _forget_nx_cache(g: Any) -> None:
    """networkx caches converted copies of a graph (for its backends) and drops them on change."""
    cache = getattr(g, "__networkx_cache__", None)
    if cache:
        cache.clear()


def _shape(shape: Any) -> list[Any] | None:
    if shape is None:
        return None
    return [d if (d is None or d.__class__ is int or isinstance(d, (int, str))) else str(d) for d in shape]


# -- validation ----------------------------------------------------------------------------


def _validate(g: Graph, where: str, enclosing: list[Graph], *, nodes_checked: bool = False) -> None:
    """Check ``g`` and its subgraphs. ``nodes_checked``: the loader already checked every
    node's fields while reading them, so only the cross-references are left to check."""
    scopes = [*enclosing, g]
    table = g.nx._node
    for node_id, data in table.items():
        if not nodes_checked and not (
            data.keys() >= _NODE_KEY_SET and data["id"] == node_id and _node_is_valid(data)
        ):
            at = f"{where}: node {data.get('id')!r}"
            missing = [k for k in NODE_KEYS if k not in data]
            if missing:
                raise GraphscopeError(f"{at} has no {', '.join(repr(k) for k in missing)} field")
            _check_node(data, at)
            raise GraphscopeError(f"{at} is filed under the id {node_id!r}")
        grad_of = data["grad_of"]
        if grad_of is not None and (grad_of not in table or grad_of == node_id):
            what = "itself" if grad_of == node_id else f"{grad_of!r}, which is not a node of this graph"
            raise GraphscopeError(f"{where}: node {node_id!r} is the gradient of {what} ('grad_of')")
        for sub in data["subgraphs"]:
            if not any(sub in s.subgraphs for s in scopes):
                raise GraphscopeError(
                    f"{where}: node {data['id']!r} runs subgraph {sub!r}, which is not defined"
                )
    if not nodes_checked:  # else the loader checked each edge as it read it
        for u, targets in g.nx._succ.items():
            for v in targets:
                if u not in table or v not in table:
                    raise GraphscopeError(f"{where}: edge {u!r} -> {v!r} joins a node that does not exist")
    for field in ("inputs", "outputs"):
        for node_id in getattr(g, field):
            if node_id not in table:
                raise GraphscopeError(f"{where}: {field} lists {node_id!r}, which is not a node")
    if len(scopes) > MAX_SUBGRAPH_DEPTH:
        raise GraphscopeError(f"{where}: subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH} levels")
    for name in sorted(g.subgraphs):
        _validate(g.subgraphs[name], f"{where}/{name}", scopes, nodes_checked=nodes_checked)


def _node_is_valid(data: Mapping[str, Any]) -> bool:
    """The schema check of :func:`_check_node` without its messages, fast for the common case
    (every graph a tracer builds is checked: 33k nodes for a scripted transformer)."""
    if not (
        data["id"].__class__ is str
        and data["id"]
        and data["name"].__class__ is str
        and data["op"].__class__ is str
        and data["canonical_op"].__class__ is str
        and data["kind"].__class__ is str
        and data["kind"] in KINDS
        and data["scope"].__class__ is list
        and data["outputs"].__class__ is list
        and data["attrs"].__class__ is dict
        and data["subgraphs"].__class__ is list
        and data["phase"].__class__ is str
        and data["phase"] in PHASES
    ):
        return False
    grad_of = data["grad_of"]
    if grad_of is not None and (grad_of.__class__ is not str or data["phase"] == "forward"):
        return False
    for s in data["scope"]:
        if s.__class__ is not str:
            return False
    for s in data["subgraphs"]:
        if s.__class__ is not str:
            return False
    for out in data["outputs"]:
        if out.__class__ is not dict or "shape" not in out or "dtype" not in out:
            return False
        shape, dtype = out["shape"], out["dtype"]
        if dtype is not None and dtype.__class__ is not str:
            return False
        if shape is not None:
            if shape.__class__ is not list:
                return False
            for d in shape:
                if not (d is None or d.__class__ is str or (d.__class__ is int and d >= 0)):
                    return False
        if "stats" in out and not _stats_are_valid(out["stats"]):
            return False
    src = data["source"]
    if src is not None:
        line = src.get("line") if src.__class__ is dict else None
        if src.__class__ is not dict or src.get("file").__class__ is not str:
            return False
        if line is not None and line.__class__ is not int:
            return False
    return True


_STAT_NUMBERS = ("min", "max", "mean", "std")
_STAT_COUNTS = ("nan", "posinf", "neginf", "zeros")


def _stats_are_valid(stats: Any) -> bool:
    """An output's ``stats`` (a stepped graph's value summary), as the renderers read it: a
    string where a number belongs crashed ``render`` and the TUI."""
    if stats is None:
        return True
    if stats.__class__ is not dict:
        return False
    for key in _STAT_NUMBERS:
        value = stats.get(key)
        if not (
            value is None or value.__class__ is int or (value.__class__ is float and math.isfinite(value))
        ):
            return False
    for key in _STAT_COUNTS:
        value = stats.get(key)
        if not (value is None or (value.__class__ is int and value >= 0)):
            return False
    return True


def _check_node(data: Mapping[str, Any], at: str) -> None:
    if _node_is_valid(data):
        return
    # Something is wrong: find the first problem and say it.

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise GraphscopeError(f"{at}: {what}")

    need(isinstance(data["id"], str) and data["id"] != "", "'id' must be a non-empty string")
    need(isinstance(data["name"], str), "'name' must be a string")
    need(isinstance(data["op"], str), "'op' must be a string")
    need(isinstance(data["canonical_op"], str), "'canonical_op' must be a string")
    need(
        isinstance(data["kind"], str) and data["kind"] in KINDS,
        f"'kind' must be one of {', '.join(sorted(KINDS))}",
    )
    need(
        isinstance(data["scope"], list) and all(isinstance(s, str) for s in data["scope"]),
        "'scope' must be a list of strings",
    )
    outputs = data["outputs"]
    need(isinstance(outputs, list), "'outputs' must be a list")
    for i, out in enumerate(outputs):
        need(
            isinstance(out, dict) and {"shape", "dtype"} <= out.keys(),
            f"output {i} needs 'shape' and 'dtype'",
        )
        shape = out["shape"]
        need(
            shape is None
            or (
                isinstance(shape, list)
                and all(
                    d is None
                    or isinstance(d, str)
                    or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
                    for d in shape
                )
            ),
            f"output {i} 'shape' must be null or a list of ints >= 0, strings or nulls",
        )
        need(
            out["dtype"] is None or isinstance(out["dtype"], str),
            f"output {i} 'dtype' must be a string or null",
        )
        need(
            _stats_are_valid(out.get("stats")),
            f"output {i} 'stats' must be null or an object of numbers: min, max, mean, std "
            "(or null) and counts nan, posinf, neginf, zeros (ints >= 0)",
        )
    need(isinstance(data["attrs"], dict), "'attrs' must be an object")
    need(
        isinstance(data["phase"], str) and data["phase"] in PHASES,
        f"'phase' must be one of {', '.join(p.value for p in Phase)}",
    )
    need(data["grad_of"] is None or isinstance(data["grad_of"], str), "'grad_of' must be a node id or null")
    need(
        data["grad_of"] is None or data["phase"] != "forward",
        "a forward node differentiates nothing: its 'grad_of' must be null",
    )
    src = data["source"]
    need(
        src is None
        or (
            isinstance(src, dict)
            and isinstance(src.get("file"), str)
            and (
                src.get("line") is None
                or (isinstance(src.get("line"), int) and not isinstance(src.get("line"), bool))
            )
        ),
        "'source' must be null or {file: string, line: int}",
    )
    need(
        isinstance(data["subgraphs"], list) and all(isinstance(s, str) for s in data["subgraphs"]),
        "'subgraphs' must be a list of strings",
    )


def _from_dict(data: Any, where: str, depth: int, *, consume: bool = False, legacy: bool = False) -> Graph:
    """``consume``: ``data`` is a parsed file's, owned by the loader: each edge's dict is
    dropped from it once read (a million of them are a tenth of the loader's peak memory).
    ``legacy``: a version 1 file, whose nodes have no ``phase`` / ``grad_of`` (all forward)."""
    if depth > MAX_SUBGRAPH_DEPTH:
        raise GraphscopeError(f"{where}: subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH} levels")
    if not isinstance(data, dict):
        raise GraphscopeError(f"{where}: a graph must be a JSON object, not {_json_type(data)}")
    missing = [k for k in GRAPH_KEYS if k not in data]
    if missing:
        raise GraphscopeError(f"{where}: the graph has no {', '.join(repr(k) for k in missing)} field")
    for key, typ in (
        ("nodes", list),
        ("edges", list),
        ("subgraphs", dict),
        ("inputs", list),
        ("outputs", list),
        ("notes", list),
    ):
        if not isinstance(data[key], typ):
            raise GraphscopeError(
                f"{where}: {key!r} must be a JSON {'array' if typ is list else 'object'}, not {_json_type(data[key])}"
            )
    for key in ("name",):
        if not isinstance(data[key], str):
            raise GraphscopeError(f"{where}: {key!r} must be a string, not {_json_type(data[key])}")
    for key in ("framework", "capture", "framework_version"):
        if data[key] is not None and not isinstance(data[key], str):
            raise GraphscopeError(f"{where}: {key!r} must be a string or null, not {_json_type(data[key])}")
    for key in ("inputs", "outputs", "notes"):
        if not all(isinstance(x, str) for x in data[key]):
            raise GraphscopeError(f"{where}: {key!r} must list strings")
    if _nests_deeper(data["signature"], MAX_VALUE_DEPTH):
        raise GraphscopeError(f"{where}: 'signature' nests deeper than {MAX_VALUE_DEPTH} levels")
    g = Graph(
        data["name"],
        framework=data["framework"],
        capture=data["capture"],
        framework_version=data["framework_version"],
        signature=data["signature"],
        notes=data["notes"],
    )
    # A saved graph may have a million nodes: the freshly parsed dicts go straight into
    # networkx's own adjacency structures (the layout networkx documents for subclasses)
    # instead of through add_node/add_edge, which copy every dict (twice the memory) and
    # cost 3x the time. The checks are the same.
    node_attrs, succ, pred = g.nx._node, g.nx._succ, g.nx._pred
    strings: dict[str, str] = {}
    ids: dict[str, str] = {}  # each id's one string object, for the edges' dict keys
    for i, node in enumerate(data["nodes"]):
        if legacy and node.__class__ is dict:
            node.setdefault("phase", Phase.FORWARD.value)
            node.setdefault("grad_of", None)
        if node.__class__ is not dict or not node.keys() >= _NODE_KEY_SET:
            at = f"{where}: nodes[{i}]"
            if not isinstance(node, dict):
                raise GraphscopeError(f"{at} must be a JSON object, not {_json_type(node)}")
            missing = [k for k in NODE_KEYS if k not in node]
            raise GraphscopeError(f"{at} has no {', '.join(repr(k) for k in missing)} field")
        if not _node_is_valid(node):
            _check_node(node, f"{where}: node {node['id']!r}")
        node_id = node["id"]
        if node_id in node_attrs:
            raise GraphscopeError(f"{where}: node id {node_id!r} appears twice")
        if not _plain(node["attrs"]) and _nests_deeper(node["attrs"], MAX_VALUE_DEPTH):
            raise GraphscopeError(
                f"{where}: node {node_id!r}'s attrs nest deeper than {MAX_VALUE_DEPTH} levels"
            )
        if len(node) != len(NODE_KEYS):  # keys from elsewhere are not kept
            node = {k: node[k] for k in NODE_KEYS}
        # The JSON parser makes a new string for every value; ops, kinds, scopes and dtypes
        # repeat across nodes: one copy of each (a 1M-node file: 0.5 GB less).
        node["op"] = strings.setdefault(node["op"], node["op"])
        node["canonical_op"] = strings.setdefault(node["canonical_op"], node["canonical_op"])
        node["kind"] = strings.setdefault(node["kind"], node["kind"])
        node["phase"] = strings.setdefault(node["phase"], node["phase"])
        scope = node["scope"]
        for j, part in enumerate(scope):
            scope[j] = strings.setdefault(part, part)
        for out in node["outputs"]:
            if out["dtype"] is not None:
                out["dtype"] = strings.setdefault(out["dtype"], out["dtype"])
        node_attrs[node_id] = node
        ids[node_id] = node_id
        succ[node_id] = {}
        pred[node_id] = {}
    edges = data["edges"]
    for i, edge in enumerate(edges):
        if consume:
            edges[i] = None
        if edge.__class__ is not dict or not edge.keys() >= _EDGE_KEY_SET:
            raise GraphscopeError(f"{where}: edges[{i}] must be an object with {', '.join(EDGE_KEYS)}")
        src, dst, src_port, dst_port, control = (
            edge["src"],
            edge["dst"],
            edge["src_port"],
            edge["dst_port"],
            edge["control"],
        )
        if not (
            src.__class__ is str
            and dst.__class__ is str
            and src in node_attrs
            and dst in node_attrs
            and src_port.__class__ is int
            and dst_port.__class__ is int
            and control.__class__ is bool
        ):
            _edge_problem(edge, f"{where}: edges[{i}]", node_attrs)
        _insert_edge(succ, pred, ids[src], ids[dst], src_port, dst_port, control)
    g.inputs = list(data["inputs"])
    g.outputs = list(data["outputs"])
    for name, sub in data["subgraphs"].items():
        g.subgraphs[name] = _from_dict(sub, f"{where}/{name}", depth + 1, consume=consume, legacy=legacy)
    if depth == 0:
        _validate(g, where, [], nodes_checked=True)
    return g


def _edge_problem(edge: dict[str, Any], at: str, nodes: Mapping[str, Any]) -> None:
    """Raise the sentence that says what is wrong with one edge of a file."""
    src, dst = edge["src"], edge["dst"]
    for end in (src, dst):
        if not isinstance(end, str) or end not in nodes:
            raise GraphscopeError(f"{at} ({src!r} -> {dst!r}) refers to node {end!r}, which does not exist")
    for port in ("src_port", "dst_port"):
        if not isinstance(edge[port], int) or isinstance(edge[port], bool):
            raise GraphscopeError(f"{at}: {port!r} must be an integer")
    if not isinstance(edge["control"], bool):
        raise GraphscopeError(f"{at}: 'control' must be true or false")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


# -- JSON text -----------------------------------------------------------------------------


def _compact(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False,
    separators=(",", ":"))``: each node and edge is one of these, a million in a big graph."""
    return "".join(_encode_compact(value, 0))


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _compact_encoder() -> Any:
    # json.dumps builds a JSONEncoder and a C encoder for every call: half the time of
    # writing a graph went there. One C encoder, made as JSONEncoder.iterencode makes it.
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)  # CPython's C accelerator (not in typeshed)
    if make is None:
        return lambda value, _level: [
            json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        ]
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
    return make(None, _not_json, encoder.encode_basestring, None, ":", ",", True, False, False)


_encode_compact = _compact_encoder()


def _dump_graph(d: Mapping[str, Any], indent: str, out: list[str]) -> None:
    """Write one graph object: each node and each edge on a line of its own (git-friendly)."""
    inner = indent + " "
    keys = sorted(d)
    out.append("{\n")
    for i, key in enumerate(keys):
        out.append(f"{inner}{_compact(key)}: ")
        value = d[key]
        if key in ("nodes", "edges") and value:
            out.append("[\n")
            out.append(",\n".join(f"{inner}  {_compact(item)}" for item in value))
            out.append(f"\n{inner}]")
        elif key == "subgraphs" and value:
            out.append("{\n")
            for j, name in enumerate(sorted(value)):
                out.append(f"{inner}  {_compact(name)}: ")
                _dump_graph(value[name], inner + "  ", out)
                out.append(",\n" if j < len(value) - 1 else "\n")
            out.append(f"{inner}}}")
        else:
            out.append(_compact(value))
        out.append(",\n" if i < len(keys) - 1 else "\n")
    out.append(f"{indent}}}")


def dumps(graph: Graph) -> str:
    """The graph as JSON text; the same graph always gives the same text."""
    parts: list[str] = [f'{{"format": "{FORMAT}", "version": {VERSION}, "graph": ']
    _dump_graph(graph.to_dict(), "", parts)
    parts.append("}\n")
    return "".join(parts)


def loads(text: str, *, source: str = "<string>") -> Graph:
    """Parse :func:`dumps`' text. Errors name ``source`` and the problem in one sentence."""
    # Millions of small dicts and lists, none of them garbage: the collector's full passes
    # over them cost more than the parse (a 1M-node file: minutes instead of seconds).
    with _gc.paused():
        return _build(_parse(text, source), source)


def _parse(text: str, source: str) -> Any:
    """The JSON document of a saved graph, checked up to its "graph" field."""
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        # A string still open at the end of the text is reported where it starts.
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise GraphscopeError(
                f"{source} is not complete JSON: it ends early at line {exc.lineno} (truncated?)"
            ) from None
        raise GraphscopeError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise GraphscopeError(f"{source} nests JSON too deeply to be a graphscope graph") from None
    except _NotJSONNumber as exc:  # Python's json reads NaN; graphscope never writes it
        raise GraphscopeError(f"{source} is not valid JSON: {exc.args[0]} is not a JSON number") from None
    except _TooLarge as exc:
        raise GraphscopeError(f"{source} holds a number too large for a float: {exc.args[0]}") from None
    except ValueError:  # int() refuses numbers of more than 4300 digits
        raise GraphscopeError(f"{source} holds a number too long to be a graphscope graph's") from None
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(doc):
        # "\ud800" alone decodes to a str that cannot be written as UTF-8 (to a file, a terminal).
        raise GraphscopeError(f"{source} holds a lone UTF-16 surrogate escape (\\udXXX), which is not text")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        hint = f' (its "format" is {found!r})' if isinstance(found, str) else ""
        raise GraphscopeError(
            f'{source} is JSON but not a graphscope graph: it lacks "format": "{FORMAT}"{hint}'
        )
    version = doc.get("version")
    if version.__class__ is not int or version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise GraphscopeError(
            f"{source} is graphscope IR version {version!r}, but this graphscope reads versions {readable}"
        )
    if "graph" not in doc:
        raise GraphscopeError(f'{source} has no "graph" field')
    return doc


def _build(doc: Any, source: str) -> Graph:
    """The graph of a parsed document, which the graph then owns (its edge list is emptied)."""
    try:
        return _from_dict(doc["graph"], source, depth=0, consume=True, legacy=doc["version"] == 1)
    except RecursionError:
        raise GraphscopeError(f"{source}: subgraphs nest too deeply") from None


class _NotJSONNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJSONNumber(name)


class _TooLarge(ValueError):
    pass


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent, which must fit a float: ``1e999`` is valid
    JSON, but Python reads it as infinity, which no JSON output can carry back."""
    value = float(text)
    if math.isinf(value):
        raise _TooLarge(text if len(text) <= 24 else text[:20] + "...")
    return value


def _has_lone_surrogate(doc: Any) -> bool:
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def save(graph: Graph, path: str | os.PathLike[str]) -> Path:
    """Write ``graph`` to ``path`` atomically: readers see the old file or the new, never half."""
    text = dumps(graph)
    return write_atomic(path, text)


def write_atomic(path: str | os.PathLike[str], text: str | bytes) -> Path:
    """Write ``text`` to ``path`` so that no reader ever sees half of it.

    A regular file (or a new one) is written through a temporary file in the same folder,
    then renamed over it, keeping the old file's mode (and, for root, its owner). A symbolic
    link is written through: the file it names is replaced, the link stays. Anything else
    that exists is written into, never replaced: a character device (``/dev/null``, a
    terminal) or a pipe with a reader; a pipe nothing reads (the write would wait forever), a
    socket, a block device or a directory is refused."""
    if not os.fspath(path):
        raise GraphscopeError("cannot write to an empty path")
    given = Path(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        found = os.stat(given)  # through links
    except FileNotFoundError:
        found = None
    except OSError as exc:  # a loop of links, a name too long
        raise GraphscopeError(f"cannot write {given}: {exc.strerror or exc}") from None
    if found is not None and not stat.S_ISREG(found.st_mode):
        _write_into(given, found.st_mode, data)
        return given
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    folder = target.parent
    if not folder.is_dir():
        raise GraphscopeError(f"cannot write {given}: folder {folder} does not exist")
    try:
        # The name cut short: a 255-byte name (the limit) must still leave room around it.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise GraphscopeError(f"cannot write {given}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes 0600: the old file's mode, or the usual one for a new file.
        os.chmod(tmp, stat.S_IMODE(found.st_mode) if found is not None else 0o666 & ~_umask())
        if found is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.chown(tmp, found.st_uid, found.st_gid)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise GraphscopeError(f"cannot write {given}: {exc.strerror or exc}") from None
        raise
    return given


def _write_into(path: Path, mode: int, data: bytes) -> None:
    """Write into an existing file that is not a regular one (see :func:`write_atomic`)."""
    if stat.S_ISDIR(mode):
        raise GraphscopeError(f"cannot write {path}: it is a directory")
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise GraphscopeError(f"cannot write {path}: it is a socket or a block device, not a file")
    try:
        # Non-blocking, so that opening a pipe nothing reads fails at once instead of waiting.
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise GraphscopeError(f"cannot write {path}: it is a pipe that nothing is reading") from None
        raise GraphscopeError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise GraphscopeError(f"cannot write {path}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike[str]) -> Graph:
    """Read a graph saved by :func:`save`."""
    p = Path(path)
    if p.is_dir():
        raise GraphscopeError(f"{p} is a directory, not a graphscope .json file")
    if p.exists() and not p.is_file():  # reading a FIFO waits for a writer forever
        raise GraphscopeError(f"{p} is not a regular file (a pipe, a socket or a device)")
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise GraphscopeError(f"{p} does not exist") from None
    except OSError as exc:
        raise GraphscopeError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GraphscopeError(
            f"{p} is not a graphscope .json file: byte {exc.start} is not UTF-8 text"
        ) from None
    del raw  # a big file's bytes need not stay beside its text and its parse
    if not text or text.isspace():  # (strip() would copy the whole text)
        raise GraphscopeError(f"{p} is empty")
    with _gc.paused():
        doc = _parse(text, str(p))
        del text  # the file's text need not stay beside its graph (320 MB for 1M nodes)
        return _build(doc, str(p))
