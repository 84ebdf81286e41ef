"""Graph diff: which node of A is which node of B, and what changed between them.

Matching is near-linear, not graph edit distance. Nodes are labelled by canonical op; each
pass pairs the nodes whose key is unique on both sides, and keys go from strict to loose:

1. canonical op + scope + a Weisfeiler-Lehman hash of the neighbourhood (3, 2, then 1 hops);
   canonical op + scope + output shapes (a weight whose user was deleted keeps those); then
   the hashes without the scope, for the nodes of layers missing on the other side (a renamed
   layer keeps its neighbourhood);
2. propagation along edges: from a matched pair, the unmatched inputs (and outputs) with the
   same op and port on both sides are the same node, told apart by their output shapes when
   op and port are not enough — this walks through repeated blocks whose hashes are all alike;
   between two captures of one framework, an op's look-alike inputs (attention's q, k and v)
   are told apart by the input port they feed;
3. identity: the same id or name with the same op, for what structure could not tell apart
   (within one capture, or across TF and ONNX, whose names are the user's);
4. what is left: an op inserted (or deleted) before a matched node's input is looked through
   (the weight behind an inserted dropout); nodes alike in op, scope and shapes, as many on
   each side, paired in the order of the ports they feed, then of execution (nothing else
   tells a deleted batch norm's four orphaned [C] weights apart); the rest aligned by canonical
   op in execution order; and last, a node sitting alone between matched neighbours on both
   sides (each matched neighbour of one is, through layout ops, a neighbour of the other) is
   the same node changed (an activation swapped).

Backward nodes (``phase: backward``) take no part in the key passes: each pairs with the
backward node of the other side that differentiates its forward node's match (``grad_of``),
with the same canonical op (``grad:linear``, ``accumulate_grad``), once the forward nodes are
matched, and then, whatever its op, the one gradient of a forward node with the one gradient of
its match (an activation swapped; ``ReluBackward0`` and TensorFlow's ``ReluGrad``). No pass
pairs two gradients of different forward nodes, nor, with different ops, a gradient with one of
several (eager's ``AddmmBackward0`` is none of the seven ATen ops of a joint graph's). A fused bias
add stands for its matmul here too, and the edges between the phases (a forward value saved for
the backward pass) are left out of matching, so that each phase's structure is matched as it is.
Propagation and the last passes place what ``grad_of`` cannot (the gradient seed).

Within one framework a pair is only made inside one scope, or between two scopes that are each
missing on the other side (a renamed layer): repeated blocks look alike, and with one of them
deleted its neighbour would otherwise be taken for it, and the whole chain shifted by one.

``ignore`` (canonical ops, e.g. the layout ops ``transpose``/``reshape``/``identity``) removes
nodes from both graphs before matching, joining their inputs to their outputs: NHWC/NCHW
transposes and the frameworks' lowering noise stop getting in the way of a cross-framework
match. ``cross`` compares only what frameworks share: canonical op, dtype, and shapes up to
a permutation of their dims.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphscope import _gc
from graphscope.ops import LAYOUT_OPS

if TYPE_CHECKING:
    from rich.console import RenderableType

    from graphscope.ir import Graph
    from graphscope.stepping.records import Steps

__all__ = ["LAYOUT_OPS", "Diff", "diff", "match"]

SHOWN = 12  # nodes named per list in the terminal report
_NAMED = frozenset({"tf", "onnx"})


class _Side:
    """One graph, reduced to what matching needs: labels, scopes, order and contracted edges."""

    def __init__(self, graph: Graph, ignore: frozenset[str], *, cross: bool = False) -> None:
        self.graph = graph
        nodes = {n["id"]: n for n in graph.nodes()}
        self.nodes = nodes
        order = graph.order()
        self.position = {node_id: i for i, node_id in enumerate(order)}
        self.ignored = {i for i, n in nodes.items() if n["kind"] == "op" and n["canonical_op"] in ignore}
        if cross:
            # A TF variable's resource handle is not a value: its read (ReadVariableOp) is the
            # variable, as a torch parameter is.
            self.ignored |= {
                i for i, n in nodes.items() if any(o.get("dtype") == "resource" for o in n["outputs"])
            }
        # Bookkeeping is not the model: TF1 variable initialisers, and the read of a variable
        # that nobody uses (the Read/ReadVariableOp snapshot TF1 makes with each variable).
        # An unread torch weight is kept: it is what remains of a deleted layer.
        self.bookkeeping = {
            i
            for i, n in nodes.items()
            if n["attrs"].get("initializer") is True
            or (n["op"] == "ReadVariableOp" and not graph.nx.out_degree(i))
        } - self.ignored
        self.ignored |= self.bookkeeping
        fused = _fused_linears(graph, nodes, self.ignored)
        self.ignored |= set(fused.values())
        self.fused = fused  # matmul id -> its bias add: the linear's value is the add's
        # Across captures, fx's getitem of a multi-output op is the op's output port in eager,
        # TorchScript, TF and ONNX: its readers read that port (which of q, k, v they are).
        picked = _picked_outputs(graph, nodes) if cross else {}
        self.ids = [i for i in order if i not in self.ignored and i not in picked]
        self.label = {
            i: _BIASED[nodes[i]["canonical_op"]] if i in fused else nodes[i]["canonical_op"] for i in self.ids
        }
        self.scope = {i: tuple(nodes[i]["scope"]) for i in self.ids}
        self.scopes = set(self.scope.values())
        self.sig = {i: _signature(nodes[i]) for i in self.ids}  # kind, output dtypes and shapes
        # An edge is (neighbour, (output port read, input port fed)).
        self.preds: dict[str, list[tuple[str, Port]]] = {i: [] for i in self.ids}
        self.succs: dict[str, list[tuple[str, Port]]] = {i: [] for i in self.ids}
        data_in: dict[str, list[tuple[str, Port]]] = defaultdict(list)
        real_port: dict[tuple[str, str], int] = {}
        for u, v, d in graph.nx.edges(data=True):
            if not d["control"] and v not in picked:
                src, src_port = picked.get(u, (u, d["src_port"]))
                # Frameworks order an op's inputs differently (addmm(bias, x, w) vs MatMul(x, w)).
                data_in[v].append((src, (src_port, 0 if cross else d["dst_port"])))
                real_port[(src, v)] = min(real_port.get((src, v), d["dst_port"]), d["dst_port"])
        # A bias add is its matmul ...
        memo: dict[str, list[tuple[str, int]]] = {add: [(mm, 0)] for mm, add in fused.items()}
        for mm, add in fused.items():  # ... and the bias is the matmul's input
            data_in[mm].extend((p, (sp, 0 if cross else 2)) for p, (sp, _) in data_in.get(add, ()) if p != mm)

        def kept_sources(u: str, src_port: int) -> list[tuple[str, int]]:
            """``u`` itself, or the kept nodes feeding an ignored ``u`` (through ignored chains),
            with the output port read."""
            if u not in self.ignored:
                return [(u, src_port)]
            if u in memo:
                return memo[u]
            memo[u] = []  # a cycle of ignored nodes feeds nothing
            stack, seen, found = [u], {u}, []
            while stack:
                w = stack.pop()
                for p, (sp, _) in data_in.get(w, ()):
                    if p in self.ignored:
                        if p not in seen:
                            seen.add(p)
                            stack.append(p)
                    else:
                        found.append((p, sp))
            memo[u] = found
            return found

        # A forward value read by a backward node (what autograd saved) is not part of either
        # phase's structure: the two phases are matched each on its own, joined by grad_of.
        backward = {i for i in self.ids if nodes[i]["phase"] == "backward"}
        # What each backward node differentiates, as matching sees it: a fused bias add is its
        # matmul (TF's BiasAddGrad differentiates the linear that torch's AddmmBackward0 does).
        alias = {add: mm for mm, add in fused.items()}
        self.grad_of = {
            i: alias.get(nodes[i]["grad_of"], nodes[i]["grad_of"]) for i in backward if nodes[i]["grad_of"]
        }
        self.grads = Counter(self.grad_of.values())  # forward node -> how many gradient nodes
        # The input port each kept predecessor feeds, even where ``cross`` leaves ports out of the
        # keys: within one framework it still orders an op's look-alike inputs (q, k, v).
        self.fed_port: dict[tuple[str, str], int] = {}
        for v in self.ids:
            for u, (src_port, dst_port) in data_in.get(v, ()):
                for src, sp in kept_sources(u, src_port):
                    if backward and (src in backward) != (v in backward):
                        continue
                    port = real_port.get((u, v), dst_port)
                    self.fed_port[(src, v)] = min(self.fed_port.get((src, v), port), port)
                    self.preds[v].append((src, (sp, dst_port)))
                    self.succs[src].append((v, (sp, dst_port)))

    def wl_hashes(self, rounds: int, *, with_attrs: bool) -> list[dict[str, int]]:
        """Weisfeiler-Lehman hashes of each node after 1..rounds rounds (in and out neighbours,
        with ports). ``with_attrs`` starts from the attributes too: which output a ``getitem``
        takes, a conv's stride (one framework only: attribute names are the framework's)."""
        if with_attrs:
            h = {
                i: hash((self.label[i], self.nodes[i]["kind"], _attrs_key(self.nodes[i]["attrs"])))
                for i in self.ids
            }
        else:
            h = {i: hash((self.label[i], self.nodes[i]["kind"])) for i in self.ids}
        out = []
        for _ in range(rounds):
            h = {
                i: hash(
                    (
                        h[i],
                        tuple(sorted((h[p], port) for p, port in self.preds[i])),
                        tuple(sorted((h[s], port) for s, port in self.succs[i])),
                    )
                )
                for i in self.ids
            }
            out.append(h)
        return out


Port = tuple[int, int]  # an edge's (output port of its source, input port of its destination)


def _picked_outputs(graph: Graph, nodes: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """fx's ``getitem`` nodes that pick output k of a multi-output op: id -> (op id, k)."""
    picked = {}
    for n in nodes.values():
        index = n["attrs"].get("arg1")
        if n["kind"] != "op" or n["canonical_op"] != "getitem" or type(index) is not int:
            continue
        preds = [u for u, _, d in graph.nx.in_edges(n["id"], data=True) if not d["control"]]
        if (
            len(preds) == 1
            and len(nodes[preds[0]]["outputs"]) > 1
            and 0 <= index < len(nodes[preds[0]]["outputs"])
        ):
            picked[n["id"]] = (preds[0], index)
    return picked


def _signature(node: dict[str, Any]) -> Hashable:
    return (
        node["kind"],
        tuple(
            (o.get("dtype"), tuple(o["shape"]) if isinstance(o.get("shape"), list) else o.get("shape"))
            for o in node["outputs"]
        ),
    )


_BIASED = {"matmul": "linear", "conv2d": "conv2d", "conv1d": "conv1d", "conv3d": "conv3d"}


def _fused_linears(graph: Graph, nodes: dict[str, Any], ignored: set[str]) -> dict[str, str]:
    """matmul/conv -> add(bias) pairs, as one op (TF's MatMul + BiasAdd is torch's addmm, its
    Conv2D + add one convolution): op id -> the add's id, which matching treats as part of it."""

    def is_weight(u: str) -> bool:
        n = nodes[u]
        if n["kind"] in ("param", "const") or n["canonical_op"] == "variable":
            return True
        return u in ignored and all(is_weight(p) for p in graph.nx.predecessors(u))

    fused = {}
    for n in nodes.values():
        if n["kind"] != "op" or n["canonical_op"] not in _BIASED:
            continue
        users = list(graph.nx.successors(n["id"]))
        if len(users) != 1 or nodes[users[0]]["canonical_op"] != "add":
            continue
        others = [p for p in graph.nx.predecessors(users[0]) if p != n["id"]]
        if others and all(is_weight(p) for p in others):
            fused[n["id"]] = users[0]
    return fused


class _Matcher:
    def __init__(self, a: _Side, b: _Side, *, cross: bool = False) -> None:
        self.a, self.b = a, b
        self.cross = cross
        # Two captures of one framework (export and eager) name their scopes alike, from the
        # same module paths: a node of layer 0 is not a look-alike of layer 1's, and q's view
        # is not k's. Across frameworks (or a capture without scopes) nothing says so.
        shared = (a.scopes & b.scopes) - {()}
        self.scoped = not cross or (
            a.graph.framework == b.graph.framework
            and 2 * len(shared) >= min(len(a.scopes - {()}), len(b.scopes - {()}))
            and bool(shared)
        )
        self.ab: dict[str, str] = {}
        self.ba: dict[str, str] = {}

    def pair(self, x: str, y: str) -> None:
        self.ab[x] = y
        self.ba[y] = x

    def compatible(self, x: str, y: str) -> bool:
        """Whether the scopes allow ``x`` and ``y`` to be one node: within one framework, the
        same scope, or scopes that are each missing on the other side (a renamed layer). A node
        whose layer is still there is that layer's, never a look-alike in another layer.

        In any diff, a forward node is never a backward one, and two gradients are one only
        if what they differentiate is one: an ATen joint graph has several look-alike
        backward ops per forward op (``mm``, ``t``, ``sum``), and propagation would otherwise
        pair one with a gradient of a neighbour."""
        if not self._same_gradient(x, y):
            return False
        if not self.scoped:
            return True
        sx, sy = self.a.scope[x], self.b.scope[y]
        return sx == sy or (sx not in self.b.scopes and sy not in self.a.scopes)

    def _same_gradient(self, x: str, y: str) -> bool:
        if self.a.nodes[x]["phase"] != self.b.nodes[y]["phase"]:
            return False
        gx, gy = self.a.grad_of.get(x), self.b.grad_of.get(y)
        if gx is None and gy is None:
            return True
        if gx is None or gy is None:  # bookkeeping (the seed) is no op's gradient
            return False
        if gx not in self.a.label or gy not in self.b.label:  # an ignored op's: nothing to check
            return True
        if self.ab.get(gx) != gy:
            return False
        # Two spellings of one gradient (ReluBackward0, ReluGrad) pair only when each is its
        # op's one gradient: eager's AddmmBackward0 is not the view among the seven ATen ops
        # that compute the same gradients in a joint graph.
        return self.a.label[x] == self.b.label[y] or (self.a.grads[gx] == 1 and self.b.grads[gy] == 1)

    def unique_pass(
        self,
        key_a: Callable[[str], Hashable],
        key_b: Callable[[str], Hashable],
        fits: Callable[[str, str], bool] | None = None,
    ) -> list[str]:
        """Pair the unmatched nodes whose key occurs exactly once on each side (and whose
        scopes are compatible, and which ``fits`` allows)."""
        groups_a: dict[Hashable, list[str]] = defaultdict(list)
        for x in self.a.ids:
            if x not in self.ab:
                k = key_a(x)
                if k is not None:
                    groups_a[k].append(x)
        groups_b: dict[Hashable, list[str]] = defaultdict(list)
        for y in self.b.ids:
            if y not in self.ba:
                k = key_b(y)
                if k is not None:
                    groups_b[k].append(y)
        new = []
        for k, xs in groups_a.items():
            ys = groups_b.get(k)
            if (
                len(xs) == 1
                and ys is not None
                and len(ys) == 1
                and self.compatible(xs[0], ys[0])
                and (fits is None or fits(xs[0], ys[0]))
            ):
                self.pair(xs[0], ys[0])
                new.append(xs[0])
        return new

    def propagate(self, seeds: Iterable[str], *, same_label: bool = True) -> None:
        """Walk out from matched pairs: unmatched neighbours with one candidate on each side."""
        queue = list(seeds)
        while queue:
            x = queue.pop()
            y = self.ab[x]
            for nbrs_a, nbrs_b in ((self.a.preds, self.b.preds), (self.a.succs, self.b.succs)):
                cand_a: dict[Hashable, list[str]] = defaultdict(list)
                for n, port in nbrs_a[x]:
                    if n not in self.ab:
                        cand_a[self._near_key(self.a, n, port, same_label)].append(n)
                if not cand_a:
                    continue
                cand_b: dict[Hashable, list[str]] = defaultdict(list)
                for n, port in nbrs_b[y]:
                    if n not in self.ba:
                        cand_b[self._near_key(self.b, n, port, same_label)].append(n)
                for k, xs in cand_a.items():
                    ys = cand_b.get(k)
                    if ys is None:
                        continue
                    pairs = self._unique_pairs(xs, ys, tiebreak=same_label and not self.cross)
                    if not pairs and same_label and nbrs_a is self.a.preds:
                        pairs = self._by_input_port(x, y, xs, ys)
                    for x1, y1 in pairs:
                        if (
                            same_label
                            or (
                                self.a.nodes[x1]["kind"] == self.b.nodes[y1]["kind"]
                                and self._same_neighbours(x1, y1)
                            )
                        ) and self.compatible(x1, y1):
                            self.pair(x1, y1)
                            queue.append(x1)

    def _same_neighbours(self, x: str, y: str) -> bool:
        """Whether ``x`` and ``y`` sit between the same matched nodes: each matched input and
        user of one is (the match of) an input and a user of the other, or is reached through
        unmatched layout ops (eager's view and transpose around addmm). Export's linear is not
        eager's transpose of its weight, though both read that weight: the linear reads the
        activation too, and the transpose feeds the mm."""
        for nbrs_a, nbrs_b in ((self.a.preds, self.b.preds), (self.a.succs, self.b.succs)):
            of_x = _through_layout(self.a, nbrs_a, x, self.ab)
            of_y = _through_layout(self.b, nbrs_b, y, self.ba)
            if any(self.ab[n] not in of_y for n in of_x if n in self.ab):
                return False
            if any(self.ba[n] not in of_x for n in of_y if n in self.ba):
                return False
        return True

    def _unique_pairs(self, xs: list[str], ys: list[str], *, tiebreak: bool) -> list[tuple[str, str]]:
        """The one candidate on each side; or, with ``tiebreak``, the candidates that are alone
        on each side with their output shapes (two weights of one op, two users of one value)."""
        distinct_a, distinct_b = dict.fromkeys(xs), dict.fromkeys(ys)  # a node fed twice is one
        if len(distinct_a) == 1 and len(distinct_b) == 1:
            return [(xs[0], ys[0])]
        if not tiebreak:
            return []
        by_a: dict[Hashable, list[str]] = defaultdict(list)
        for x in distinct_a:
            by_a[self.a.sig[x]].append(x)
        by_b: dict[Hashable, list[str]] = defaultdict(list)
        for y in distinct_b:
            by_b[self.b.sig[y]].append(y)
        return [(x1[0], by_b[s][0]) for s, x1 in by_a.items() if len(x1) == 1 and len(by_b.get(s, ())) == 1]

    def _by_input_port(self, x: str, y: str, xs: list[str], ys: list[str]) -> list[tuple[str, str]]:
        """Look-alike inputs of ``x`` and of its match ``y`` (attention's q, k and v: one op,
        one shape) paired in the order of the input ports they feed, between two captures of one
        framework, whose ops take their arguments in one order (export's and eager's attention
        read q, k, v at ports 0, 1, 2). Across frameworks the orders differ, and nothing is
        paired here. Only when every candidate feeds one port of its own on both sides."""
        if not (self.cross and self.scoped and self.a.graph.framework == self.b.graph.framework):
            return []
        xs, ys = list(dict.fromkeys(xs)), list(dict.fromkeys(ys))
        if len(xs) != len(ys):
            return []
        ports_a = [self.a.fed_port.get((n, x)) for n in xs]
        ports_b = [self.b.fed_port.get((n, y)) for n in ys]
        for ports in (ports_a, ports_b):
            if None in ports or len(set(ports)) != len(ports):
                return []
        in_a = [n for _, n in sorted(zip(ports_a, xs))]
        in_b = [n for _, n in sorted(zip(ports_b, ys))]
        return list(zip(in_a, in_b))

    def _near_key(self, side: _Side, n: str, port: Port, same_label: bool) -> Hashable:
        """How a neighbour is told apart from its siblings: op and port; across frameworks,
        where ports differ, op and dims in any order (a [2,4] kernel is a [4,2] weight)."""
        if not same_label:
            return port
        if self.cross:
            return (side.label[n], _dims(side.nodes[n]), port[0])  # which output: q, k or v of a split
        return (side.label[n], port)

    def _align_key(self, side: _Side, x: str) -> Hashable:
        """Canonical op, and the output shapes: within one capture as they are (a weight is not
        a bias), across two captures of one framework up to the order of the dims."""
        if self.cross:
            return (side.label[x], _dims(side.nodes[x])) if self.scoped else side.label[x]
        return (side.label[x], repr([o.get("shape") for o in side.nodes[x]["outputs"]]))

    def align_rest(self) -> list[str]:
        """Align the still-unmatched nodes of each side by canonical op, in execution order:
        the ops apart from the weights and inputs, which one capture lists first (export) and
        another where they are first used (eager), so that one order would not tie up the other."""
        new = []
        for ops in (True, False):
            rest_a = [x for x in self.a.ids if x not in self.ab and (self.a.nodes[x]["kind"] == "op") == ops]
            rest_b = [y for y in self.b.ids if y not in self.ba and (self.b.nodes[y]["kind"] == "op") == ops]
            if not rest_a or not rest_b or len(rest_a) * len(rest_b) > 25_000_000:
                continue
            seq_a = [self._align_key(self.a, x) for x in rest_a]
            seq_b = [self._align_key(self.b, y) for y in rest_b]
            sm = difflib.SequenceMatcher(None, seq_a, seq_b, autojunk=False)
            for block in sm.get_matching_blocks():
                for k in range(block.size):
                    x, y = rest_a[block.a + k], rest_b[block.b + k]
                    if self.compatible(x, y):
                        self.pair(x, y)
                        new.append(x)
        return new

    def look_through(self) -> list[str]:
        """An op inserted on one side before a matched node's input: on that port, the
        unmatched input of one side is the same node as the only unmatched input with its op
        of the other side's (inserted, or deleted) input."""
        new = []
        for x, y in list(self.ab.items()):
            ports_a: dict[Port, list[str]] = defaultdict(list)
            for n, port in self.a.preds[x]:
                if n not in self.ab:
                    ports_a[port].append(n)
            if not ports_a:
                continue
            ports_b: dict[Port, list[str]] = defaultdict(list)
            for n, port in self.b.preds[y]:
                if n not in self.ba:
                    ports_b[port].append(n)
            for port, xs in ports_a.items():
                ys = ports_b.get(port)
                if len(xs) != 1 or ys is None or len(ys) != 1:
                    continue
                u, v = xs[0], ys[0]
                if self.a.label[u] == self.b.label[v]:
                    continue
                candidates = []
                inner_b = {
                    n for n, _ in self.b.preds[v] if n not in self.ba and self.b.label[n] == self.a.label[u]
                }
                if len(inner_b) == 1:  # v inserted before y
                    candidates.append((u, inner_b.pop()))
                inner_a = {
                    n for n, _ in self.a.preds[u] if n not in self.ab and self.a.label[n] == self.b.label[v]
                }
                if len(inner_a) == 1:  # u deleted: y reads its input
                    candidates.append((inner_a.pop(), v))
                for x1, y1 in candidates:
                    if x1 not in self.ab and y1 not in self.ba and self.compatible(x1, y1):
                        self.pair(x1, y1)
                        new.append(x1)
        return new

    def through_grad_of(self) -> list[str]:
        """Backward nodes paired through the forward nodes they differentiate: the one unmatched
        node with a canonical op whose ``grad_of`` is ``x`` in A and ``x``'s match in B; then,
        whatever their ops (an activation swapped, or the two frameworks' spellings of one
        gradient), the one unmatched gradient of ``x`` and the one of its match."""
        new = self._grad_of_pass(labelled=True)
        return new + self._grad_of_pass(labelled=False)

    def _grad_of_pass(self, *, labelled: bool) -> list[str]:
        groups_b: dict[Hashable, list[str]] = defaultdict(list)
        for y in self.b.ids:
            grad_of = self.b.grad_of.get(y)
            if y not in self.ba and grad_of is not None:
                groups_b[(grad_of, self.b.label[y] if labelled else None)].append(y)
        if not groups_b:
            return []
        groups_a: dict[Hashable, list[str]] = defaultdict(list)
        for x in self.a.ids:
            grad_of = self.a.grad_of.get(x)
            if x not in self.ab and grad_of in self.ab:
                groups_a[(self.ab[grad_of], self.a.label[x] if labelled else None)].append(x)
        new = []
        for k, xs in groups_a.items():
            ys = groups_b.get(k)
            if len(xs) == 1 and ys is not None and len(ys) == 1 and self.compatible(xs[0], ys[0]):
                self.pair(xs[0], ys[0])
                new.append(xs[0])
        return new

    def align_groups(self) -> list[str]:
        """Within one framework, unmatched nodes alike in op, scope, kind and output shapes
        (a deleted batch norm's weight, bias and running statistics, now used by nothing),
        as many on each side: paired in the order of the ports they feed, then of execution.
        Nothing in the graphs tells them apart: any pairing gives the same diff."""
        groups_a: dict[Hashable, list[str]] = defaultdict(list)
        for x in self.a.ids:
            if x not in self.ab:
                groups_a[(self.a.label[x], self.a.scope[x], self.a.sig[x])].append(x)
        groups_b: dict[Hashable, list[str]] = defaultdict(list)
        for y in self.b.ids:
            if y not in self.ba:
                groups_b[(self.b.label[y], self.b.scope[y], self.b.sig[y])].append(y)
        new = []
        for k, xs in groups_a.items():
            ys = groups_b.get(k)
            if ys is None or len(xs) != len(ys):
                continue
            xs = sorted(xs, key=lambda x: (sorted(p for _, p in self.a.succs[x]), self.a.position[x]))
            ys = sorted(ys, key=lambda y: (sorted(p for _, p in self.b.succs[y]), self.b.position[y]))
            for x, y in zip(xs, ys):
                if self.compatible(x, y):
                    self.pair(x, y)
                    new.append(x)
        return new


def _through_layout(
    side: _Side, nbrs: dict[str, list[tuple[str, Port]]], x: str, matched: dict[str, str]
) -> set[str]:
    """``x``'s neighbours in ``nbrs``' direction, and the neighbours behind unmatched layout ops."""
    found: set[str] = set()
    stack = [n for n, _ in nbrs[x]]
    while stack and len(found) < 64:
        n = stack.pop()
        if n in found:
            continue
        found.add(n)
        if n not in matched and side.label[n] in LAYOUT_OPS:
            stack.extend(m for m, _ in nbrs[n])
    return found


def match(a: Graph, b: Graph, *, ignore: Iterable[str] = ()) -> dict[str, str]:
    """Node ids of ``a`` mapped to node ids of ``b`` (see the module docstring)."""
    cross = (a.framework, a.capture) != (b.framework, b.capture)
    with _gc.paused():  # see diff()
        return _matcher(a, b, frozenset(ignore), cross).ab


def _matcher(a: Graph, b: Graph, ignore: frozenset[str], cross: bool) -> _Matcher:
    return _match(_Side(a, ignore, cross=cross), _Side(b, ignore, cross=cross), cross=cross)


def _key(
    side: _Side,
    *,
    scoped: bool,
    wl: dict[str, int] | None = None,
    attr: str | None = None,
    shaped: bool = False,
    among: set[str] | None = None,
) -> Any:
    """A matching key: canonical op, and the scope, a WL hash, the output shapes or a node
    field; None (no key) for the nodes not ``among`` those given."""

    def key(x: str) -> Hashable:
        if among is not None and x not in among:
            return None
        return (
            side.label[x],
            side.scope[x] if scoped else None,
            wl[x] if wl is not None else None,
            side.nodes[x][attr] if attr else None,
            side.sig[x] if shaped else None,
        )

    return key


def _dims(node: dict[str, Any]) -> Hashable:
    shape = node["outputs"][0].get("shape") if node["outputs"] else None
    return tuple(sorted(map(str, shape))) if isinstance(shape, list) else None


def _attrs_key(attrs: dict[str, Any]) -> Hashable:
    return tuple(sorted((k, repr(v)) for k, v in attrs.items() if k != "target"))


def _match(sa: _Side, sb: _Side, *, cross: bool = False) -> _Matcher:
    m = _Matcher(sa, sb, cross=cross)
    wa, wb = sa.wl_hashes(3, with_attrs=not cross), sb.wl_hashes(3, with_attrs=not cross)
    # The key passes see the forward nodes only (None: every node, a graph without gradients).
    fwd_a, fwd_b = _forward_ids(sa), _forward_ids(sb)
    for r in (2, 1, 0):
        m.propagate(
            m.unique_pass(
                _key(sa, scoped=True, wl=wa[r], among=fwd_a), _key(sb, scoped=True, wl=wb[r], among=fwd_b)
            )
        )
    if not cross:  # a weight whose user was deleted: its scope and shape are left
        m.propagate(
            m.unique_pass(
                _key(sa, scoped=True, shaped=True, among=fwd_a),
                _key(sb, scoped=True, shaped=True, among=fwd_b),
            )
        )
    # Without the scope, only the nodes of layers missing on the other side (renamed): the
    # others' look-alikes in other layers (repeated blocks, one deleted) are not them.
    among_a = _both(fwd_a, None if cross else {x for x in sa.ids if sa.scope[x] not in sb.scopes})
    among_b = _both(fwd_b, None if cross else {y for y in sb.ids if sb.scope[y] not in sa.scopes})
    for r in (2, 1, 0):
        new = m.unique_pass(
            _key(sa, scoped=False, wl=wa[r], among=among_a), _key(sb, scoped=False, wl=wb[r], among=among_b)
        )
        m.propagate(new)
    # Two captures of one model compute the same values: a look-alike of another shape is
    # another node (export's no-op float cast is not eager's cast of the mask to bool).
    # (A capture without shapes, TorchScript's, says nothing against a pair.)
    fits = None
    if cross and m.scoped:

        def fits(x: str, y: str) -> bool:
            da, db = _dims(sa.nodes[x]), _dims(sb.nodes[y])
            return da is None or db is None or da == db

    m.propagate(m.unique_pass(_key(sa, scoped=True, among=fwd_a), _key(sb, scoped=True, among=fwd_b), fits))
    # Ids and names say which node is which within one capture, and across TF and ONNX (the
    # user's layer names); across torch captures they are counters (export's view_2 is k, eager's
    # is q) and would pair unrelated nodes.
    if not cross or {sa.graph.framework, sb.graph.framework} <= _NAMED:
        for attr in ("id", "name"):
            m.propagate(
                m.unique_pass(
                    _key(sa, scoped=False, attr=attr, among=fwd_a),
                    _key(sb, scoped=False, attr=attr, among=fwd_b),
                )
            )
    m.propagate(m.through_grad_of())
    if not cross:
        m.propagate(m.look_through())
        m.propagate(m.align_groups())
    m.propagate(m.through_grad_of())  # the gradients of forward nodes matched since
    m.propagate(m.align_rest())
    m.propagate(list(m.ab), same_label=False)  # an op swapped between matched neighbours
    new = m.through_grad_of()  # the gradients of the ops swapped just now
    m.propagate(new, same_label=False)
    return m


def _forward_ids(side: _Side) -> set[str] | None:
    """The ids of the side's nodes other than backward ones, or None when it has no backward node."""
    backward = {i for i in side.ids if side.nodes[i]["phase"] == "backward"}
    return {i for i in side.ids if i not in backward} if backward else None


def _both(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None or b is None:
        return b if a is None else a
    return a & b


# -- the result -----------------------------------------------------------------------------


@dataclass
class Diff:
    """What differs between graph ``a`` and graph ``b``."""

    a: Graph
    b: Graph
    matched: list[tuple[str, str]]
    added: list[str]  # ids in b
    removed: list[str]  # ids in a
    changed: list[dict[str, Any]]  # {"a", "b", "fields": {field: [value in a, value in b]}}
    added_edges: list[tuple[str, str]] = field(default_factory=list)  # in b
    removed_edges: list[tuple[str, str]] = field(default_factory=list)  # in a
    ignored: tuple[int, int] = (0, 0)  # nodes left out by --ignore in a and b
    bookkeeping: tuple[int, int] = (0, 0)  # initialisers and unread variable reads, left out in a and b
    value_of: tuple[dict[str, str], dict[str, str]] = ({}, {})  # node -> node holding its value
    first_divergence: dict[str, Any] | None = None
    # matched pairs whose values were not compared: their elements correspond in no known way
    not_compared: list[dict[str, Any]] = field(default_factory=list)  # {"a", "b", "shape_a", "shape_b"}
    notes: list[str] = field(default_factory=list)
    # Stacks of identical blocks that differ only in depth: {"scope", "a", "b", "nodes"}, the
    # nodes being the added (or removed) blocks' (graphscope.folding).
    depth_changes: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:  # the dataclass's own would print both whole graphs
        return (
            f"<Diff {self.a.name!r} -> {self.b.name!r}: {len(self.matched)} matched, "
            f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed>"
        )

    def _repr_html_(self) -> str:
        """Jupyter shows the report `graphscope diff` prints."""
        from graphscope.notebook import diff_html

        return diff_html(self)

    @property
    def identical(self) -> bool:
        """No node or edge added, removed or changed (values aside)."""
        return not (self.added or self.removed or self.changed or self.added_edges or self.removed_edges)

    def rollup(self) -> list[tuple[str, dict[str, int]]]:
        """Counts of added / removed / changed nodes per scope, largest first (the nodes of
        blocks added to or removed from a stack are said once, as a depth change)."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        in_blocks = {n for change in self.depth_changes for n in change["nodes"]}
        for node_id in self.added:
            if node_id not in in_blocks:
                counts[_scope_key(self.b, node_id)]["added"] += 1
        for node_id in self.removed:
            if node_id not in in_blocks:
                counts[_scope_key(self.a, node_id)]["removed"] += 1
        for c in self.changed:
            counts[_scope_key(self.b, c["b"])]["changed"] += 1
        return sorted(((k, dict(v)) for k, v in counts.items()), key=lambda kv: (-sum(kv[1].values()), kv[0]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": {"name": self.a.name, "framework": self.a.framework, "capture": self.a.capture},
            "b": {"name": self.b.name, "framework": self.b.framework, "capture": self.b.capture},
            "identical": self.identical,
            "matched": [list(p) for p in self.matched],
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "added_edges": [list(e) for e in self.added_edges],
            "removed_edges": [list(e) for e in self.removed_edges],
            "ignored": {"a": self.ignored[0], "b": self.ignored[1]},
            "bookkeeping": {"a": self.bookkeeping[0], "b": self.bookkeeping[1]},
            "by_scope": {k: v for k, v in self.rollup()},
            "first_divergence": self.first_divergence,
            "depth_changes": [{k: v for k, v in c.items() if k != "nodes"} for c in self.depth_changes],
            "values_not_compared": self.not_compared,
            "notes": self.notes,
        }

    def compare_values(
        self, steps_a: Steps, steps_b: Steps, *, rtol: float = 1e-3, atol: float = 1e-5
    ) -> None:
        """Compare the matched nodes' values, in B's execution order, and keep the first divergence.

        ``steps_a`` / ``steps_b`` are runs of ``a`` and ``b`` that kept their values
        (``keep=KEEP_ALL``). Across frameworks, values of different layouts are compared through
        the permutation of dims that makes them agree (NHWC against NCHW); values whose elements
        correspond in no known way (a reshape between them) are left out and counted, never
        called a divergence (see ``_compare_arrays``); values that agree up to ``rtol`` (relative
        to the tensor's largest magnitude) and ``atol`` are the same. The suspects of a divergence
        are the nodes between it and the last inputs that still agreed which have no counterpart
        (a transpose, a reshape, an op on one side only): that is where to look.
        """
        from graphscope.stepping.values import to_numpy

        position = {r.node: r.index for r in steps_b}
        alias_a, alias_b = self.value_of
        pairs = sorted(
            (
                (x, y)
                for x, y in self.matched
                if y in position
                and alias_a.get(x, x) in steps_a.values
                and alias_b.get(y, y) in steps_b.values
            ),
            key=lambda p: position[p[1]],
        )
        layouts = self.a.framework != self.b.framework
        compared = 0
        self.not_compared = []
        matched_a, matched_b = set(self.ab_map()), set(self.ba_map())
        uninitialised = 0
        unsure: list[str] = []
        ab = self.ab_map()
        garbage_a, garbage_b = _uninitialised(self.a), _uninitialised(self.b)
        for x, y in pairs:
            if x in garbage_a or y in garbage_b:
                # torch.empty* and views of it before it is written: whatever the allocator's
                # memory held, on each side its own.
                uninitialised += 1
                continue
            va = _first_array(steps_a.values[alias_a.get(x, x)], to_numpy)
            vb = _first_array(steps_b.values[alias_b.get(y, y)], to_numpy)
            if va is None or vb is None:
                continue
            verdict = _compare_arrays(va, vb, rtol=rtol, atol=atol, layouts=layouts)
            if verdict is None and va.shape != vb.shape:
                # eager's addmm [16, 32] is export's linear [2, 8, 32] once its own view has
                # given it that shape: compare the view's value, which the graph computed.
                for side, steps, node, shape in (
                    (self.b, steps_b, y, va.shape),
                    (self.a, steps_a, x, vb.shape),
                ):
                    view = _view_to(side, node, shape, matched_b if side is self.b else matched_a)
                    if view is not None and view in steps.values:
                        value = _first_array(steps.values[view], to_numpy)
                        if value is not None:
                            va, vb = (va, value) if side is self.b else (value, vb)
                            verdict = _compare_arrays(va, vb, rtol=rtol, atol=atol, layouts=layouts)
                            break
            if verdict is None:
                if va.shape != vb.shape and va.size:
                    self.not_compared.append(
                        {"a": x, "b": y, "shape_a": list(va.shape), "shape_b": list(vb.shape)}
                    )
                continue
            compared += 1
            if verdict == "":
                continue
            if (
                not layouts
                and self.a.node(x)["canonical_op"] != self.b.node(y)["canonical_op"]
                and not _same_inputs(self.a, self.b, x, y, ab)
            ) or _crossed_inputs(self.a, self.b, x, y, ab, matched_a, matched_b):
                # Matched across a decomposition (export's matmul, eager's expand + bmm + view):
                # which of the other side's tensors is this one is a guess, so a difference here
                # is no verdict. (An op replaced by another on the same inputs, relu -> gelu, is
                # one.) A real divergence shows again at the next pair of the same op. Across
                # frameworks ops differ by nature (MatMul + BiasAdd is addmm): matched as such.
                # Nor is a pair whose inputs were matched elsewhere (BART's q and k views, the
                # one's input matched to the other's): the pair itself is the guess.
                unsure.append(
                    f"{x} ({self.a.node(x)['canonical_op']}) against {y} ({self.b.node(y)['canonical_op']})"
                )
                # and what reads them looks further up, past this guess
                ab.pop(x, None)
                matched_a.discard(x)
                matched_b.discard(y)
                continue
            self.first_divergence = {
                "a": x,
                "b": y,
                "op": self.b.node(y)["canonical_op"],
                "scope": ".".join(self.b.node(y)["scope"]),
                "source": self.b.node(y)["source"],
                "reason": verdict,
                "suspects": _suspects(self.b, y, set(self.ba_map()), "b")
                + _suspects(self.a, x, set(self.ab_map()), "a"),
            }
            break
        self.notes.append(f"values: {compared} matched nodes compared")
        if unsure:
            more = f" and {len(unsure) - 1} more" if len(unsure) > 1 else ""
            self.notes.append(
                f"values: {len(unsure)} matched pair{'s' if len(unsure) > 1 else ''} differ but "
                f"not called a divergence (ops or inputs that do not correspond: the pairing is a "
                f"guess): {unsure[0]}{more}"
            )
        if uninitialised:
            self.notes.append(
                f"values: {uninitialised} uninitialised allocation{'s' if uninitialised > 1 else ''} "
                "(torch.empty*) not compared"
            )
        if self.not_compared:
            first = self.not_compared[0]
            n = len(self.not_compared)
            more = f" and {n - 1} more" if n > 1 else ""
            self.notes.append(
                f"values: {n} matched node{'s' if n > 1 else ''} not compared: the shapes differ and no "
                f"known layout pairs their elements ({first['a']} {first['shape_a']} against "
                f"{first['b']} {first['shape_b']}{more})"
            )

    def ab_map(self) -> dict[str, str]:
        return dict(self.matched)

    def ba_map(self) -> dict[str, str]:
        return {y: x for x, y in self.matched}

    def renderable(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        parts: list[Any] = []
        head = Text()
        head.append(f"{self.a.name} ({self.a.framework} {self.a.capture})", style="bold")
        head.append("  ->  ")
        head.append(f"{self.b.name} ({self.b.framework} {self.b.capture})", style="bold")
        head.append(
            f"\n{len(self.matched)} matched, {len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.changed)} changed; edges: {len(self.added_edges)} added, {len(self.removed_edges)} removed"
        )
        if any(self.ignored):
            head.append(f"; ignored: {self.ignored[0]} in a, {self.ignored[1]} in b")
        if any(self.bookkeeping):
            head.append(
                f"; left out as bookkeeping (variable initialisers, unread variable reads): "
                f"{self.bookkeeping[0]} in a, {self.bookkeeping[1]} in b"
            )
        parts.append(head)
        if self.identical:
            parts.append(Text("The graphs have the same structure.", style="green"))
        in_blocks: set[str] = set()
        for change in self.depth_changes:
            more = change["b"] > change["a"]
            parts.append(
                Text(
                    f"{change['scope'] or '(top level)'}: {change['a']} → {change['b']} identical blocks "
                    f"({len(change['nodes'])} {'added' if more else 'removed'} nodes are the "
                    f"{abs(change['b'] - change['a'])} {'new' if more else 'dropped'} blocks)",
                    style="bold",
                )
            )
            in_blocks.update(change["nodes"])
        for title, all_ids, graph, style in (
            ("added", self.added, self.b, "green"),
            ("removed", self.removed, self.a, "red"),
        ):
            ids = [i for i in all_ids if i not in in_blocks]
            if ids:
                t = Text(f"{title}:", style=f"bold {style}")
                for node_id in ids[:SHOWN]:
                    n = graph.node(node_id)
                    t.append(f"\n  {node_id} ({n['canonical_op']}){_in_scope(n)}")
                if len(ids) > SHOWN:
                    t.append(f"\n  ... {len(ids) - SHOWN} more")
                parts.append(t)
        if self.changed:
            t = Text("changed:", style="bold yellow")
            for c in self.changed[:SHOWN]:
                fields = "; ".join(
                    f"{k} {_field_text(k, v[0])} -> {_field_text(k, v[1])}" for k, v in c["fields"].items()
                )
                name = c["a"] if c["a"] == c["b"] else f"{c['a']} -> {c['b']}"
                t.append(f"\n  {name}: {fields}")
            if len(self.changed) > SHOWN:
                t.append(f"\n  ... {len(self.changed) - SHOWN} more")
            parts.append(t)
        rollup = self.rollup()
        if rollup and len(rollup) > 1:
            t = Text("by scope:", style="bold")
            for scope, counts in rollup[:SHOWN]:
                t.append(f"\n  {scope}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
            if len(rollup) > SHOWN:
                t.append(f"\n  ... {len(rollup) - SHOWN} more scopes (--json lists all)")
            parts.append(t)
        if self.first_divergence is not None:
            fd = self.first_divergence
            t = Text("values first diverge at ", style="bold red")
            where = f" in {fd['scope']}" if fd.get("scope") else ""
            if fd.get("source"):
                where += f" at {fd['source']['file']}:{fd['source'].get('line')}"
            t.append(f"{fd['b']} ({fd['op']}){where}", style="bold red")
            t.append(f" [a: {fd['a']}]: {fd['reason']}")
            if fd.get("suspects"):
                t.append("\n  between the last agreeing values and there, with no counterpart:")
            for s in fd.get("suspects", []):
                at = f" at {s['source']['file']}:{s['source'].get('line')}" if s.get("source") else ""
                t.append(f"\n    {s['node']} ({s['op']}) in {s['side']}{at}")
            parts.append(t)
        elif any(n.startswith("values:") for n in self.notes):
            if not self.not_compared:
                parts.append(Text("The matched nodes' values agree.", style="green"))
            elif any(n.startswith("values: 0 ") for n in self.notes):
                parts.append(Text("No matched values could be compared.", style="yellow"))
            else:
                parts.append(
                    Text("The matched nodes' values agree where they could be compared.", style="green")
                )
        for note in self.notes:
            parts.append(Text(f"note: {note}", style="dim"))
        return Group(*parts)


# Ops whose output is uninitialised memory: their values mean nothing until written over.
_UNINITIALISED = frozenset({"empty", "empty_like", "new_empty", "empty_strided", "empty_permuted"})


# Ops that only look at their first input's memory another way.
_VIEWS = LAYOUT_OPS | frozenset(
    {
        "view",
        "slice",
        "select",
        "getitem",
        "narrow",
        "as_strided",
        "alias",
        "unsqueeze",
        "squeeze",
        "permute",
        "t",
        "flatten",
        "unflatten",
        "split",
        "chunk",
        "unbind",
        "detach",
    }
)


def _uninitialised(graph: Graph) -> set[str]:
    """Nodes whose values are uninitialised memory: torch.empty* and views of it."""
    found = {n["id"] for n in graph.nodes() if n["canonical_op"] in _UNINITIALISED}
    if not found:
        return found
    first_input = {e.dst: e.src for e in graph.edges() if not e.control and e.dst_port == 0}
    for node_id in graph.order():
        if graph.node(node_id)["canonical_op"] in _VIEWS and first_input.get(node_id) in found:
            found.add(node_id)
    return found


def _matched_above(graph: Graph, node: str, matched: set[str], limit: int = 64) -> set[str]:
    """The nearest matched nodes upstream of ``node``'s data inputs (through unmatched ones)."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = [u for u, _, d in graph.nx.in_edges(node, data=True) if not d["control"]]
    while todo and len(seen) < limit:
        u = todo.pop()
        if u in seen:
            continue
        seen.add(u)
        if u in matched:
            found.add(u)
        else:
            todo += [w for w, _, d in graph.nx.in_edges(u, data=True) if not d["control"]]
    return found


def _crossed_inputs(
    a: Graph, b: Graph, x: str, y: str, ab: dict[str, str], matched_a: set[str], matched_b: set[str]
) -> bool:
    """Whether ``x`` and ``y`` read matched tensors that are not each other's counterparts:
    the nearest matched nodes above each exist and have nothing in common."""
    above_a = {ab[u] for u in _matched_above(a, x, matched_a)}
    above_b = _matched_above(b, y, matched_b)
    return bool(above_a) and bool(above_b) and not above_a & above_b


def _same_inputs(a: Graph, b: Graph, x: str, y: str, ab: dict[str, str]) -> bool:
    """Whether ``x``'s data inputs are matched, one for one, to ``y``'s."""
    ins_a = sorted({u for u, _, d in a.nx.in_edges(x, data=True) if not d["control"]})
    ins_b = {u for u, _, d in b.nx.in_edges(y, data=True) if not d["control"]}
    return bool(ins_a) and len(ins_a) == len(ins_b) and all(ab.get(u) in ins_b for u in ins_a)


def _first_array(values: list[Any], to_numpy: Callable[[Any], Any]) -> Any:
    """The first output that is a numeric array (not a TF resource handle, not None)."""
    for v in values:
        if v is None:
            continue
        try:
            return to_numpy(v)
        except Exception:  # a resource or variant tensor has no array
            continue
    return None


def _compare_arrays(a: Any, b: Any, *, rtol: float, atol: float, layouts: bool = False) -> str | None:
    """``""`` when ``a`` and ``b`` agree, why not when they do not, None when incomparable.

    Elements are paired only where the correspondence is known: the same shape (size-1 dims
    aside, which leave the order of the elements as it is) and, with ``layouts`` (two
    frameworks), the layout permutations frameworks differ by: channels last against channels
    first (NHWC, NCHW), HWIO kernels against OIHW, a transposed dense kernel. Arrays that only
    have the same size ([2, 8, 4, 8] against [16, 32]) are not compared: a reshape would pair
    elements that have nothing to do with each other, and call that a divergence.
    """
    import numpy as np

    if a.size == 0 or a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
        return None
    candidates = [b.reshape(a.shape)] if _squeezed(a.shape) == _squeezed(b.shape) else []
    if layouts:
        candidates += [
            b.transpose(p) for p in _layout_permutations(b.ndim) if _permuted(b.shape, p) == a.shape
        ]
    if not candidates:
        return None
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    # The tolerance scales with the finite values only: an infinity would make it infinite.
    scale = max(float(np.abs(a[finite]).max()) if finite.any() else 0.0, 1e-30)
    best = None
    for c in candidates:
        c = c.astype(np.float64)
        # The same infinity on both sides (a mask's -inf) is the same value, as NaN against NaN.
        same = (a == c) | (np.isnan(a) & np.isnan(c))
        with np.errstate(invalid="ignore"):
            err = np.where(same, 0.0, np.abs(a - c))
        worst = float(np.nanmax(err)) if err.size else 0.0
        if np.isnan(err).any():
            worst = float("inf")  # NaN on one side only
        if best is None or worst < best:
            best = worst
        if worst <= atol + rtol * scale:
            return ""
    return f"max abs difference {best:.4g} (values up to {scale:.4g})"


def _view_to(graph: Graph, node_id: str, shape: tuple[int, ...], matched: set[str]) -> str | None:
    """The reshape that is ``node_id``'s only user, has no counterpart and gives it ``shape``:
    the same elements in the same order, in the shape the other graph computed at once."""
    users = graph.successors(node_id)
    if len(users) != 1 or users[0] in matched:
        return None
    user = graph.node(users[0])
    outs = user["outputs"]
    if (
        user["canonical_op"] != "reshape"
        or len(outs) != 1
        or tuple(outs[0].get("shape") or ()) != tuple(shape)
    ):
        return None
    return str(user["id"])


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _permuted(shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[p] for p in perm)


def _layout_permutations(ndim: int) -> list[tuple[int, ...]]:
    """The permutations of dims that turn one framework's layout into another's."""
    if ndim == 2:
        return [(1, 0)]  # a dense kernel [in, out] against a linear weight [out, in]
    if not 3 <= ndim <= 5:
        return []
    spatial = tuple(range(2, ndim))
    return [
        (0, *spatial, 1),  # channels first -> channels last
        (0, ndim - 1, *range(1, ndim - 1)),  # channels last -> channels first
        (*spatial, 1, 0),  # OIHW -> HWIO
        (ndim - 1, ndim - 2, *range(ndim - 2)),  # HWIO -> OIHW
    ]


def _suspects(graph: Graph, node_id: str, matched: set[str], side: str) -> list[dict[str, Any]]:
    """Nodes without a counterpart between ``node_id`` and the matched inputs it depends on,
    in execution order; nodes that only prepare weights (a weight's transpose) are left out."""
    found = []
    seen = {node_id}
    stack = list(graph.predecessors(node_id))
    weight_only: dict[str, bool] = {}

    def only_weights(n: str) -> bool:
        if n not in weight_only:
            node = graph.node(n)
            weight_only[n] = True  # cycles: assume so while looking
            preds = graph.predecessors(n)
            weight_only[n] = node["kind"] in ("param", "const") or (
                bool(preds) and all(only_weights(p) for p in preds)
            )
        return weight_only[n]

    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        node = graph.node(n)
        if n in matched or node["kind"] in ("param", "const", "input") or only_weights(n):
            continue
        found.append(n)
        stack.extend(graph.predecessors(n))
    position = {n: i for i, n in enumerate(graph.nx)}
    return [
        {"node": n, "op": graph.node(n)["canonical_op"], "side": side, "source": graph.node(n)["source"]}
        for n in sorted(found, key=position.__getitem__)
    ]


def _scope_key(graph: Graph, node_id: str) -> str:
    scope = graph.node(node_id)["scope"]
    return ".".join(scope) if scope else "(top level)"


def _in_scope(node: dict[str, Any]) -> str:
    return f" in {'.'.join(node['scope'])}" if node["scope"] else ""


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _field_text(key: str, value: Any) -> str:
    """A changed field as the summary writes it: ``[2,3]``, ``float32``, ``dim=1``; ``?`` for
    unknown, outputs in parentheses when there are several, never a Python repr."""
    from graphscope.rendering.text import format_shape

    if key in ("shape", "dtype") and isinstance(value, list):
        items = [format_shape(v) if key == "shape" else (v or "?") for v in value]
        if len(items) == 1:
            return items[0]
        return "(" + ", ".join(items) + ")" if items else "none"
    if isinstance(value, dict):
        return _short(", ".join(f"{k}={'?' if v is None else v}" for k, v in value.items()))
    return _short(value)


def _shapes(node: dict[str, Any], cross: bool) -> list[Any]:
    shapes = [o.get("shape") for o in node["outputs"]]
    if cross:  # NHWC vs NCHW: the same dims in another order
        return [sorted(s, key=str) if isinstance(s, list) else s for s in shapes]
    return shapes


def _changes(
    x: dict[str, Any], y: dict[str, Any], cross: bool, meaningful_names: bool
) -> dict[str, list[Any]]:
    fields: dict[str, list[Any]] = {}
    if x["canonical_op"] != y["canonical_op"]:
        fields["canonical_op"] = [x["canonical_op"], y["canonical_op"]]
    if _shapes(x, cross) != _shapes(y, cross):
        fields["shape"] = [[o.get("shape") for o in x["outputs"]], [o.get("shape") for o in y["outputs"]]]
    dx, dy = [o.get("dtype") for o in x["outputs"]], [o.get("dtype") for o in y["outputs"]]
    if dx != dy:
        fields["dtype"] = [dx, dy]
    if cross:
        return fields
    if x["op"] != y["op"] and "canonical_op" not in fields:
        fields["op"] = [x["op"], y["op"]]
    if x["scope"] != y["scope"]:
        fields["scope"] = [".".join(x["scope"]), ".".join(y["scope"])]
    elif meaningful_names and x["name"] != y["name"]:
        fields["name"] = [x["name"], y["name"]]
    if "canonical_op" in fields:
        return fields  # another op has other attributes: that says nothing more
    ax = {k: v for k, v in x["attrs"].items() if k != "target"}  # target: the scope again
    ay = {k: v for k, v in y["attrs"].items() if k != "target"}
    if ax != ay:
        keys = sorted(k for k in ax.keys() | ay.keys() if ax.get(k) != ay.get(k))
        fields["attrs"] = [{k: ax.get(k) for k in keys}, {k: ay.get(k) for k in keys}]
    return fields


def diff(a: Graph, b: Graph, *, ignore: Iterable[str] = (), cross: bool | None = None) -> Diff:
    """Match ``a`` and ``b`` and list what was added, removed and changed.

    ``cross`` (default: the graphs come from different frameworks or capture methods, which
    spell the same op differently) compares only canonical ops, dtypes and shapes up to a
    permutation of their dims.
    """
    if cross is None:
        cross = (a.framework, a.capture) != (b.framework, b.capture)
    # Matching builds millions of small tuples and no cycles: collections while it runs (and
    # right after, over what it has built) cost more than the matching. Paused until its
    # temporaries are freed, on leaving _diff.
    with _gc.paused():
        return _diff(a, b, frozenset(ignore), cross)


def _diff(a: Graph, b: Graph, ignore: frozenset[str], cross: bool) -> Diff:
    m = _matcher(a, b, ignore, cross)
    sa, sb = m.a, m.b
    matched = [(x, m.ab[x]) for x in sa.ids if x in m.ab]
    removed = [x for x in sa.ids if x not in m.ab]
    added = [y for y in sb.ids if y not in m.ba]
    # TF and ONNX names are the user's scopes and layer names; torch's repeat the ids, and
    # TorchScript's are SSA value numbers that shift with any edit.
    meaningful_names = a.framework in _NAMED and b.framework in _NAMED
    changed = []
    for x, y in matched:
        fields = _changes(
            {**sa.nodes[x], "canonical_op": sa.label[x]},
            {**sb.nodes[y], "canonical_op": sb.label[y]},
            cross,
            meaningful_names,
        )
        if fields:
            changed.append({"a": x, "b": y, "fields": fields})
    edges_a = {(u, v) for v in sa.ids for u, _ in sa.preds[v]}
    edges_b = {(u, v) for v in sb.ids for u, _ in sb.preds[v]}
    removed_edges = sorted(
        (u, v) for u, v in edges_a if u in m.ab and v in m.ab and (m.ab[u], m.ab[v]) not in edges_b
    )
    added_edges = sorted(
        (u, v) for u, v in edges_b if u in m.ba and v in m.ba and (m.ba[u], m.ba[v]) not in edges_a
    )
    diff = Diff(
        a,
        b,
        matched,
        added,
        removed,
        changed,
        added_edges=added_edges,
        removed_edges=removed_edges,
        ignored=(len(sa.ignored - sa.bookkeeping), len(sb.ignored - sb.bookkeeping)),
        bookkeeping=(len(sa.bookkeeping), len(sb.bookkeeping)),
        value_of=(sa.fused, sb.fused),
    )
    diff.depth_changes = _depth_changes(a, b, added, removed)
    return diff


def _depth_changes(a: Graph, b: Graph, added: list[str], removed: list[str]) -> list[dict[str, Any]]:
    """Stacks of identical blocks (the same scope in both) that differ only in how many."""
    from graphscope import folding

    folds_a = {f.parent: f for f in folding.find_folds(a)}
    folds_b = {f.parent: f for f in folding.find_folds(b)}
    changes = []
    for parent in sorted(folds_a.keys() & folds_b.keys()):
        x, y = folds_a[parent], folds_b[parent]
        if x.count == y.count or x.nodes != y.nodes:
            continue
        longer, graph, ids = (y, b, added) if y.count > x.count else (x, a, removed)
        shorter = x if longer is y else y
        extra = {(*parent, m) for m in longer.members if m not in shorter.members}
        depth = len(parent) + 1
        nodes = [i for i in ids if tuple(graph.node(i)["scope"][:depth]) in extra]
        changes.append({"scope": ".".join(parent), "a": x.count, "b": y.count, "nodes": nodes})
    return changes
