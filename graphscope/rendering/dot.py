"""IR -> Graphviz DOT: labels, styles by kind, scopes as clusters, collapsing, highlights.

Backward nodes (``phase: backward``) are drawn in :data:`BACKWARD_STYLE`, a pink fill with a
dashed outline (optimizer nodes in :data:`OPTIMIZER_STYLE`, cyan and dashed), inside the same
scope cluster as the forward node they differentiate, and a dotted line without an arrowhead
(:data:`GRAD_LINK`) joins each forward node to its (first) gradient (``grad_of``); a gradient
accumulation, whose parameter is folded away, names the parameter in its label. Collapsed, a
scope's backward nodes make a box of their own (``hidden ∇``, ``encoder.layer ∇``), in a tree
of clusters that mirrors the forward one (``encoder ∇`` > ``layer``), below it.

Everything that comes from the model (names, ops, attrs, scopes) reaches Graphviz only inside
HTML-like labels, escaped with :func:`html.escape`; DOT node names are generated (``n12``), so
no model text is ever parsed as DOT syntax. The output is deterministic: same graph, same DOT.
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphscope.rendering.text import format_shape
from graphscope.stepping.numerics import is_finite

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["NODE_BUDGET", "DotOptions", "Layout", "to_dot"]

# Above this many drawn nodes the layout takes more than a few seconds (dot 2.43: 2k nodes
# 0.8 s, 5k nodes 7 s), so the renderer collapses scopes until the drawing fits.
NODE_BUDGET = 1500

# Fills readable on white and on dark backgrounds (dark text on mid-light fills), the
# background transparent; edges in a grey that shows on both.
STYLE = {
    "input": {"fillcolor": "#b7e4c7", "color": "#2d6a4f"},
    "output": {"fillcolor": "#a9d6f5", "color": "#1d4e89"},
    "param": {"fillcolor": "#e9ecef", "color": "#868e96"},
    "const": {"fillcolor": "#f1f3f5", "color": "#adb5bd"},
    "op": {"fillcolor": "#fff3bf", "color": "#8d6e00"},
    "control": {"fillcolor": "#ffd8a8", "color": "#c2410c"},
    "group": {"fillcolor": "#e5dbff", "color": "#5f3dc4"},
    "fold": {"fillcolor": "#d0ebff", "color": "#1864ab"},
}
# Backward nodes, whatever their kind: the fill tells the phase, the dashed outline says it
# again in greyscale print.
BACKWARD_STYLE = {"fillcolor": "#ffdeeb", "color": "#a61e4d", "style": "rounded,filled,dashed"}
# constraint=false: a link says which gradient is whose; it does not rank either (minlen=0
# links, beside edge xlabels, made dot lose some of them: "lost edge", and the render fail).
GRAD_LINK = {"style": "dotted", "color": "#a61e4d", "arrowhead": "none", "constraint": "false"}
# Parameter updates (phase optimizer, a TF1 training graph's GradientDescent/...).
OPTIMIZER_STYLE = {"fillcolor": "#c5f6fa", "color": "#0b7285", "style": "rounded,filled,dashed"}
GRAD_MARK = "∇"  # after a collapsed scope's name: that scope's backward nodes
HIGHLIGHT = {"fillcolor": "#ff8787", "color": "#c92a2a", "penwidth": "3"}
EDGE_COLOR = "#868e96"
BACK_EDGE_COLOR = "#e8590c"
CLUSTER_COLOR = "#adb5bd"
NONFINITE_COLOR = "#e03131"  # the border and counts of a stepped node that held a NaN/Inf
TEXT_ON_HIGHLIGHT = "#3b0000"  # the NaN/Inf counts on a highlighted node's red fill
# Text drawn on the page itself (title, edge labels): a grey that reads on white and on dark.
PAGE_TEXT_COLOR = "#868e96"
FONT = "Helvetica"


@dataclass
class DotOptions:
    collapse: int | None = None  # show scopes deeper than this as single nodes
    highlight: list[str] = field(default_factory=list)  # node ids to colour
    show_params: bool = False  # draw params/consts as nodes (default: fold into consumers)
    legend: bool = True
    budget: int = NODE_BUDGET
    title: str | None = None
    fold: bool = True  # draw runs of identical sibling scopes once, with a ×N badge
    fill: dict[str, str] = field(default_factory=dict)  # node id (path/id in subgraphs) -> fill colour
    name_prefix: str = "n"  # generated DOT names; two graphs in one drawing need two prefixes
    highlight_label: str = "highlighted (--highlight)"  # what a highlight means, in the legend


@dataclass
class Layout:
    """What :func:`to_dot` decided: the DOT text and what it had to do to fit the budget."""

    source: str
    drawn_nodes: int
    collapse: int | None
    notes: list[str]


# Control characters (XML cannot carry most), surrogates, and the bidi marks, embeddings,
# overrides and isolates (a label with U+202E reads backwards: a spoofed name).
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


def _esc(text: Any) -> str:
    """Model text as HTML-label content: escaped, and control characters (which XML cannot
    carry) and bidi controls shown as ``\\xNN`` / ``\\uNNNN``."""
    # Graphviz reads backslash escapes even in HTML labels (\N is the DOT node's name, \G
    # the graph's): a doubled backslash shows as one. Its HTML-label parser (dot 2.43) calls
    # a text that is just "]" or "]]" a syntax error (found by fuzzing), and an empty element
    # (<B></B>: an empty op or name) too: such a text is written as entities, nothing as a
    # no-break space.
    escaped = html.escape(_printable(str(text)), quote=True).replace("\\", "\\\\")
    if not escaped.strip("]"):
        return escaped.replace("]", "&#93;") or "&#160;"
    return escaped


def _short_op(node: dict[str, Any]) -> str:
    """``aten.linear.default`` -> ``linear``; ``call_module:Conv2d`` + 3x3 -> ``Conv2d 3x3``."""
    op = node["op"]
    if op.startswith("call_module:"):
        op = op.split(":", 1)[1]
        kernel = node["attrs"].get("kernel_size")
        if isinstance(kernel, list) and kernel:
            op += " " + "x".join(str(k) for k in kernel)
    elif op.startswith(("call_function:", "call_method:")):
        op = op.split(":", 1)[1]
    elif op.startswith("aten."):
        parts = op.split(".")
        op = parts[1] if len(parts) > 1 else op
    elif op.startswith(("aten::", "operator.")):
        op = op.split("::", 1)[-1].removeprefix("operator.")
    return op


def _label(
    node: dict[str, Any],
    extra: str | None = None,
    scope_leaf: str | None = None,
    *,
    highlighted: bool = False,
) -> str:
    op = _short_op(node)
    shape = ""
    if node["outputs"]:
        first = node["outputs"][0]
        if first["shape"] is not None:
            shape = format_shape(first["shape"])
        if len(node["outputs"]) > 1:
            shape += f" +{len(node['outputs']) - 1}"
    # Clipped: Graphviz refuses a label past ~16k characters (a 100k-dim shape from a file).
    title = f"<B>{_esc(_clip(op, 60))}</B>" + (f"&#160;·&#160;{_esc(_clip(shape, 60))}" if shape else "")
    rows = [title]
    named = node["kind"] in ("input", "output", "param", "const") or node["name"] != node["id"]
    # TorchScript's value names ("h.1", "17") say little: only a named value is shown.
    if scope_leaf is not None:  # the one node of its scope: the scope's name instead of a cluster
        rows.append(f'<FONT POINT-SIZE="9">{_esc(_clip(scope_leaf))}</FONT>')
    if named and node["name"] not in (op, scope_leaf) and not node["name"].split(".")[0].isdigit():
        rows.append(f'<FONT POINT-SIZE="9">{_esc(_clip(node["name"]))}</FONT>')
    reason = node["attrs"].get("reason")
    if isinstance(reason, str) and reason:  # a Dynamo graph break says why, over a few short lines
        lines = textwrap.wrap(reason, 40, max_lines=4, placeholder=" …") or [_clip(reason, 60)]
        rows.append(f'<FONT POINT-SIZE="9">{"<BR/>".join(_esc(line) for line in lines)}</FONT>')
    if extra:
        rows.append(f'<FONT POINT-SIZE="9">{extra}</FONT>')
    stats = _stats_row(node, on_highlight=highlighted)
    if stats:
        rows.append(stats)
    return "<" + "<BR/>".join(rows) + ">"


def _nonfinite(node: dict[str, Any]) -> bool:
    """A stepped node whose output held a NaN or an infinity."""
    return not all(is_finite(o.get("stats")) for o in node["outputs"])


def _stats_row(node: dict[str, Any], *, on_highlight: bool = False) -> str | None:
    """The value summary a stepped graph carries: the range and mean, or the NaN/Inf counts
    (red, or dark and bold on the red fill of a highlighted node)."""
    stats = node["outputs"][0].get("stats") if node["outputs"] else None
    if not isinstance(stats, dict):
        return None
    from graphscope.rendering.steps import format_number, nonfinite_text

    bad = nonfinite_text(stats)
    if bad and on_highlight:
        return f'<FONT POINT-SIZE="9" COLOR="{TEXT_ON_HIGHLIGHT}"><B>{_esc(bad)}</B></FONT>'
    if bad:
        return f'<FONT POINT-SIZE="9" COLOR="{NONFINITE_COLOR}">{_esc(bad)}</FONT>'
    lo, hi, mean = (format_number(stats.get(k)) for k in ("min", "max", "mean"))
    return f'<FONT POINT-SIZE="9" COLOR="#495057">{_esc(f"[{lo}, {hi}] mean {mean}")}</FONT>'


def _clip(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# The attributes whose values graphscope writes as HTML-like labels (<...>), built by _esc.
_HTML_ATTRS = frozenset({"label", "xlabel", "headlabel", "taillabel"})


def _attrs(attrs: dict[str, str]) -> str:
    parts = []
    for key in sorted(attrs):
        value = attrs[key]
        # Any other value is quoted, whatever it looks like: a tooltip from a scope named
        # "<b>] x [URL=...> " would otherwise be DOT syntax.
        if key in _HTML_ATTRS and value.startswith("<") and value.endswith(">"):
            parts.append(f"{key}={value}")
        else:
            quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
            parts.append(f'{key}="{quoted}"')
    return "[" + " ".join(parts) + "]"


class _Writer:
    """Accumulates DOT lines with generated, DOT-safe node names."""

    def __init__(self, prefix: str = "n") -> None:
        self.lines: list[str] = []
        self.count = 0
        self.prefix = prefix
        self.used: set[str] = set()  # what the drawing shows: the legend explains only these
        self.folds_drawn: set[Any] = set()  # the runs of identical blocks drawn folded

    def new_name(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count}"


def to_dot(graph: Graph, options: DotOptions | None = None) -> Layout:
    """Lay out ``graph`` as DOT text, collapsing scopes when it would exceed the budget."""
    opts = options or DotOptions()
    notes: list[str] = []
    collapse = opts.collapse
    visible = _visible_nodes(graph, opts)
    folds = _Folds(graph if opts.fold else None, opts.highlight)
    runs = False  # draw runs of consecutive nodes: scopes cannot make the graph small enough
    bodies = True  # draw control-flow bodies beside the nodes that run them
    counts = _ScopeCounts(graph, visible, opts, scope_of=folds.scope_of) if collapse is None else None
    if counts is not None and counts.drawn(None) > opts.budget:
        total = counts.drawn(None)
        collapse = counts.fitting_depth(opts.budget)
        if counts.drawn(collapse) > opts.budget:
            # Collapsing scopes is not enough: fold the bodies into the nodes that run them.
            bodies = False
            n_bodies, in_bodies = counts.body_nodes()
            if n_bodies:
                notes.append(
                    f"{n_bodies} control-flow bodies ({in_bodies} nodes) are not drawn, only the nodes "
                    "that run them: with them the drawing has too many nodes even with every scope collapsed"
                )
            collapse = counts.fitting_depth(opts.budget, bodies=False)
        if collapse is not None and counts.drawn(collapse, bodies=bodies) > opts.budget:
            runs = True
            notes.append(
                f"{total} nodes is more than Graphviz lays out quickly, "
                f"and still {counts.drawn(collapse, bodies=bodies)} boxes with every scope collapsed"
            )
            collapse = None
        elif collapse is not None:
            notes.append(
                f"{total} nodes is more than Graphviz lays out quickly; "
                f"collapsed scopes below depth {collapse} (use --collapse to choose)"
            )
    w = _Writer(opts.name_prefix)
    w.lines.append("digraph graphscope {")
    w.lines.append(
        f'  graph [rankdir=TB bgcolor="transparent" fontname="{FONT}" fontsize=12 fontcolor="{PAGE_TEXT_COLOR}" '
        "compound=true nodesep=0.25 ranksep=0.35 newrank=true]"
    )
    w.lines.append(
        f'  node [shape=box style="rounded,filled" fontname="{FONT}" fontsize=11 margin="0.12,0.04" height=0.3]'
    )
    w.lines.append(
        f'  edge [color="{EDGE_COLOR}" arrowsize=0.6 fontname="{FONT}" fontsize=9 fontcolor="{PAGE_TEXT_COLOR}"]'
    )
    if opts.title:
        w.lines.append(f"  label={_title_label(opts.title)} labelloc=t")
    drawn = _draw_graph(
        graph,
        w,
        opts,
        collapse,
        visible,
        prefix="",
        indent="  ",
        notes=notes,
        runs=runs,
        bodies=bodies,
        folds=folds,
    )
    drawn_folds = [f for f in folds.folds if f in w.folds_drawn]  # not those inside a collapsed box
    if drawn_folds:
        notes.append(
            "folded "
            + "; ".join(
                f"{f.count} identical {'.'.join(f.parent) or 'top-level'} blocks" for f in drawn_folds
            )
            + " (the first drawn; --no-fold draws them all)"
        )
    if drawn > opts.budget:
        notes.append(f"the drawing still has {drawn} nodes; Graphviz may take a while")
    if opts.legend:
        _legend(w, opts)
    w.lines.append("}")
    return Layout("\n".join(w.lines) + "\n", drawn, collapse, notes)


def _title_label(title: str) -> str:
    return f"<<B>{_esc(title)}</B>>"


def _visible_nodes(graph: Graph, opts: DotOptions) -> set[str]:
    """Params and consts are folded into their consumers' labels (unused ones, such as
    BatchNorm's ``num_batches_tracked`` in eval mode, are left out), and TF1 variable
    initialisers are left out, unless asked for (``show_params``). So is an op that reads
    nothing but those and that nothing reads (BatchNorm's ``empty`` reserve tensor, 53 of them
    in a ResNet-50 training step; its ``num_batches_tracked += 1`` in train mode): drawn with no
    edge, each sat on the top rank, stretching its scope's box over the whole drawing."""
    if opts.show_params:
        return set(graph.nx.nodes)
    nx = graph.nx
    has_edges = nx.number_of_edges() > 0  # a graph of lone nodes is drawn as it is

    def hidden(n: dict[str, Any]) -> bool:
        if n["id"] in opts.highlight or n["id"] in graph.outputs:
            return False
        if n["kind"] in ("param", "const") or n["attrs"].get("initializer") is True:
            return True
        return (
            has_edges
            and n["kind"] == "op"
            and not n["subgraphs"]
            and nx.out_degree(n["id"]) == 0
            and all(graph.node(p)["kind"] in ("param", "const") for p in nx.predecessors(n["id"]))
        )

    return {n["id"] for n in graph.nodes() if not hidden(n)}


def _phase_path(node: dict[str, Any], path: tuple[str, ...], collapse: int | None) -> tuple[str, ...]:
    """The cluster path a node is drawn under: its scope's; collapsed, for a backward node the
    same path in a tree of its own, whose top scope is marked (``encoder ∇`` > ``layer``).
    Backward runs from the loss back to the inputs: in its forward node's box a gradient
    stretches every enclosing box from the forward pass down to the backward one (a collapsed
    BERT's embeddings box spanned the drawing: twice as wide). Uncollapsed, the mirrored tree
    costs dot minutes on a BERT where one box costs seconds: gradients stay with their scope."""
    if path and collapse and node["phase"] == "backward":
        return (f"{path[0]} {GRAD_MARK}", *path[1:])
    return path


def _group_key(
    node: dict[str, Any], collapse: int | None, folded: tuple[str, ...] | None = None
) -> tuple[str, ...] | None:
    """The box a node is drawn in: its scope at the collapse depth, or its fold's, whichever
    is shallower (a collapsed scope holds its folds), or None: drawn on its own."""
    if collapse is None or collapse < 1 or len(node["scope"]) < collapse:
        return folded
    key = _phase_path(node, tuple(node["scope"][:collapse]), collapse)
    # At the collapse depth each instance is one box already: folding them says less.
    return folded if folded is not None and len(folded) < len(key) else key


class _Folds:
    """The runs of identical blocks a drawing folds (graphscope.folding), keyed for drawing.

    A run is not folded when one of the instances it would hide holds a highlighted node (the
    culprit of a NaN, a --highlight) or a non-finite value: what the drawing is about stays
    visible."""

    def __init__(self, graph: Graph | None, highlight: list[str] | None = None) -> None:
        from graphscope import folding

        self.folds = folding.find_folds(graph) if graph is not None else []
        if graph is not None and self.folds:
            marked = set(highlight or ()) | {n["id"] for n in graph.nodes() if _nonfinite(n)}
            hidden = folding.folded_nodes(graph, self.folds)
            spoiled = {hidden[i] for i in marked if i in hidden}
            self.folds = [f for f in self.folds if f.rest_key not in spoiled]
        self.scope_of = folding.folded_nodes(graph, self.folds) if graph is not None and self.folds else {}
        self.by_rest = {f.rest_key: f for f in self.folds}
        self.by_first = {f.first: f for f in self.folds}


class _ScopeCounts:
    """How many boxes each collapse depth draws, control-flow bodies included: a body is drawn
    beside the node that runs it when that node is drawn as itself, not folded into a collapsed
    scope (a scripted nn.Transformer: 262 top-level nodes, 11,556 drawn with its ``prim::If``
    bodies). From one pass over each graph's nodes (a million nodes: one pass, not one per
    depth tried); a body shared by several callers is counted once per graph, as it is drawn."""

    deepest: int  # the deepest scope, bodies included

    def __init__(
        self,
        graph: Graph,
        visible: set[str],
        opts: DotOptions,
        memo: dict[int, _ScopeCounts] | None = None,
        *,
        scope_of: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        memo = {} if memo is None else memo
        # A folded run of identical blocks counts as its one box (scope_of maps the nodes of the
        # instances after the first to the fold's key); what runs inside them is not drawn.
        folded = scope_of or {}
        nodes = [n for n in graph.nodes() if n["id"] in visible]
        self.scopes: Counter[tuple[str, ...]] = Counter(
            folded.get(n["id"]) or tuple(n["scope"][:MAX_CLUSTER_DEPTH]) for n in nodes
        )
        for key in set(folded.values()):
            if key in self.scopes:
                self.scopes[key] = 1
        self.runners = [
            (tuple(n["scope"][:MAX_CLUSTER_DEPTH]), list(n["subgraphs"]))
            for n in nodes
            if n["subgraphs"] and n["id"] not in folded
        ]
        self.bodies: dict[str, _ScopeCounts] = {}
        for _, names in self.runners:
            for name in names:
                sub = _find_subgraph([graph], name)
                if name in self.bodies or sub is None or len(sub) == 0:
                    continue
                if id(sub) not in memo:
                    memo[id(sub)] = _ScopeCounts(sub, _visible_nodes(sub, opts), opts, memo)
                self.bodies[name] = memo[id(sub)]
        self.deepest = max(
            [len(s) for s in self.scopes] + [b.deepest for b in self.bodies.values()], default=0
        )

    def drawn(self, collapse: int | None, *, bodies: bool = True) -> int:
        if collapse is None or collapse < 1:
            boxes = sum(self.scopes.values())
            groups: Counter[tuple[str, ...]] = Counter()
        else:
            groups = Counter()
            for scope, k in self.scopes.items():
                if len(scope) >= collapse:
                    groups[scope[:collapse]] += k
            boxes = sum(k for scope, k in self.scopes.items() if len(scope) < collapse) + len(groups)
        if bodies:
            counted: set[str] = set()
            for scope, names in self.runners:
                if (
                    collapse is not None
                    and collapse >= 1
                    and len(scope) >= collapse
                    and groups[scope[:collapse]] > 1
                ):
                    continue  # folded into a collapsed scope: its bodies are not drawn
                for name in names:
                    if name in self.bodies and name not in counted:
                        counted.add(name)
                        boxes += self.bodies[name].drawn(collapse)
        return boxes

    def body_nodes(self) -> tuple[int, int]:
        """How many bodies the top level runs, and how many nodes they hold (nested ones too)."""
        return len(self.bodies), sum(b.drawn(None) for b in self.bodies.values())

    def fitting_depth(self, budget: int, *, bodies: bool = True) -> int | None:
        for depth in range(self.deepest, 0, -1):
            if self.drawn(depth, bodies=bodies) <= budget:
                return depth
        return 1 if self.deepest else None


def _draw_graph(
    graph: Graph,
    w: _Writer,
    opts: DotOptions,
    collapse: int | None,
    visible: set[str],
    *,
    prefix: str,
    indent: str,
    notes: list[str],
    enclosing: list[Graph] | None = None,
    drawn_bodies: set[str] | None = None,
    runs: bool = False,
    bodies: bool = True,
    folds: _Folds | None = None,
) -> int:
    """Emit nodes (in scope clusters), edges and control-flow subgraphs; return nodes drawn."""
    folds = folds or _Folds(None)
    enclosing = enclosing or []
    drawn_bodies = set() if drawn_bodies is None else drawn_bodies  # a body shared by callers is drawn once
    names: dict[str, str] = {}  # IR node id (or group key) -> DOT name
    boxed: dict[str, tuple[str, ...]] = {}  # DOT name -> the path of the box it is drawn in
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    singles: list[dict[str, Any]] = []
    for n in graph.nodes():
        if n["id"] not in visible:
            continue
        key = _group_key(n, collapse, folds.scope_of.get(n["id"]))
        if key is None:
            singles.append(n)
        else:
            groups[key].append(n)

    # Overflow of a flat graph (no scopes to collapse), or of one whose top-level scopes alone
    # are too many: group runs of nodes in graph order. Also under an explicit --collapse: on a
    # graph without scopes it left every node single (200k nodes sent to dot, which crashed).
    if runs or len(singles) > opts.budget:
        order_ids, back_edges = graph.order_and_back_edges()
        order = [n for n in (graph.node(i) for i in order_ids) if n["id"] in visible]
        size = math.ceil(len(order) / (opts.budget // 2))
        groups.clear()
        for start in range(0, len(order), size):
            run = order[start : start + size]
            groups[("#", f"nodes {start}–{start + len(run) - 1}")] = run
        singles = []
        what = "nodes have no scopes to collapse" if not runs else "nodes"
        notes.append(f"{len(order)} {what}: drew runs of {size} nodes in graph order")
    else:
        back_edges = graph.back_edges()

    for key in [k for k, members in groups.items() if len(members) == 1 and k[0] != "#"]:
        singles.append(groups.pop(key)[0])  # a scope of one node is drawn as that node
    if len(singles) > 1:
        position = {node_id: i for i, node_id in enumerate(graph.nx)}
        singles.sort(key=lambda n: position[n["id"]])
    single_ids = {n["id"] for n in singles}
    folded = _folded_inputs(graph, visible)
    highlight = set(opts.highlight)
    tree: dict[tuple[str, ...], list[str]] = defaultdict(list)  # cluster path -> node lines
    lone = _lone_scopes(singles, groups, collapse)

    for n in singles:
        name = w.new_name()
        names[n["id"]] = name
        style = dict(STYLE[n["kind"]])
        w.used.add(n["kind"])
        if n["kind"] == "param":
            style["fontsize"] = "9"
        if _nonfinite(n):
            style.update({"color": NONFINITE_COLOR, "penwidth": "2"})
            w.used.add("nonfinite")
        elif _stats_row(n) is not None:
            w.used.add("stats")
        if len(n["outputs"]) > 1 and n["outputs"][0]["shape"] is not None:
            w.used.add("extra-outputs")
        fill = opts.fill.get(prefix + n["id"])  # ids inside subgraphs are keyed by their path
        if fill is not None:
            style.update({"fillcolor": fill, "penwidth": "2"})
        if n["id"] in highlight:
            style.update(HIGHLIGHT)
            w.used.add("highlight")
        if n["kind"] in ("input", "output"):
            style["shape"] = "box"
            style["style"] = "filled"
        if n["kind"] == "control" and n["canonical_op"] == "graph_break":
            # Its reason runs over lines: a hexagon that holds them grows very wide.
            style["style"] = "filled,dashed"
            w.used.add("graph-break")
        elif n["kind"] == "control":
            style["shape"] = "hexagon"
            style["style"] = "filled"
        if n["phase"] in ("backward", "optimizer") and n["id"] not in highlight:
            style.update(BACKWARD_STYLE if n["phase"] == "backward" else OPTIMIZER_STYLE)
            w.used.add(n["phase"])
            if n["kind"] == "control":  # a training step's NoOps: its phase tells more than a hexagon
                style["shape"] = "box"
            if fill is not None:
                style.update({"fillcolor": fill, "penwidth": "2"})
        extra = folded.get(n["id"])
        if n["grad_of"] is not None and n["grad_of"] not in visible:  # AccumulateGrad's parameter
            target = _esc(_clip(graph.node(n["grad_of"])["name"], 40))
            extra = f"∂ {target}" + (f", {extra}" if extra else "")
        path = _phase_path(n, tuple(n["scope"][:MAX_CLUSTER_DEPTH]), collapse)
        leaf = None
        if path in lone:
            path, leaf = path[:-1], path[-1]
        style["label"] = _label(n, extra, leaf, highlighted=n["id"] in highlight)
        style["tooltip"] = _printable(_clip(f"{n['id']} ({n['op']})", 120))
        tree[path].append(f"{name} {_attrs(style)}")
        boxed[name] = path

    for key in sorted(groups, key=lambda k: (k[0] == "#", k)):
        members = groups[key]
        name = w.new_name()
        for n in members:
            names[n["id"]] = name
        ids = {n["id"] for n in members}
        style = dict(STYLE["group"])
        w.used.add("group" if key not in folds.by_rest else "fold")
        backward = all(n["phase"] == "backward" for n in members)
        if backward:
            style.update({k: v for k, v in BACKWARD_STYLE.items() if k != "style"})
            w.used.add("backward")
        if ids & highlight:
            style.update(HIGHLIGHT)
            w.used.add("highlight")
        ops = sum(1 for n in members if n["kind"] == "op")
        # The box shows the shape of the last value leaving it (searched from the end).
        last = next(
            (n for n in reversed(members) if any(s not in ids for s in graph.nx.successors(n["id"]))), None
        )
        shape = ""
        if last is not None and last["outputs"] and last["outputs"][0]["shape"] is not None:
            shape = "&#160;·&#160;" + _esc(_clip(format_shape(last["outputs"][0]["shape"]), 60))
        title = key[-1] if key[0] == "#" else ".".join(key)
        if key[0].endswith(f" {GRAD_MARK}"):  # a backward tree's box: hidden.fc ∇
            title = ".".join((key[0].removesuffix(f" {GRAD_MARK}"), *key[1:])) + f" {GRAD_MARK}"
        fold = folds.by_rest.get(key)
        what = f"{ops} op{'s' if ops != 1 else ''}"
        if fold is not None:  # the instances after the first of a run of identical blocks
            w.folds_drawn.add(fold)
            title = ".".join((*fold.parent, f"{fold.members[1]} … {fold.members[-1]}"))
            what = f"×{fold.count - 1} more, each the same as {fold.members[0]} ({fold.nodes} nodes)"
            style.update(STYLE["fold"])
        style["label"] = (
            f'<<B>{_esc(_clip(title, 60))}</B>{shape}<BR/><FONT POINT-SIZE="9">{_esc(what)}</FONT>>'
        )
        style["shape"] = "box3d"
        style["style"] = "filled,dashed" if backward else "filled"
        style["tooltip"] = _printable(_clip(title, 120))
        parent = key[:-1] if key[0] != "#" else ()
        tree[parent].append(f"{name} {_attrs(style)}")
        boxed[name] = key  # a box of its own: a collapsed scope's gradients are another box

    _emit_clusters(tree, w, indent, prefix, badges={f.first: f"×{f.count}" for f in folds.folds})

    back = {(u, v) for u, v, _ in back_edges}
    seen_edges: set[tuple[str, str, bool]] = set()
    # Only the edges between two drawn boxes (of a million, the few thousand that cross).
    crossing = graph.edges(lambda u, v: (a := names.get(u)) is not None and names.get(v) not in (None, a))
    for e in crossing:
        a, b = names[e.src], names[e.dst]
        key2 = (a, b, e.control)
        if key2 in seen_edges:
            continue
        seen_edges.add(key2)
        attrs: dict[str, str] = {}
        if e.control:
            attrs["style"] = "dashed"
            attrs["arrowhead"] = "odot"
            w.used.add("control-edge")
        # Edge text is an xlabel, placed once the layout is done: a `label` on any edge makes
        # dot double every edge's rank span (a label is laid out as a node half way), and one
        # split's port label made a 580-node UNet's layout 5x slower.
        if (e.src, e.dst) in back:
            attrs["constraint"] = "false"
            attrs["color"] = BACK_EDGE_COLOR
            attrs["penwidth"] = "1.5"
            attrs["xlabel"] = "<back>"
            w.used.add("back-edge")
        src_node = graph.node(e.src)
        if len(src_node["outputs"]) > 1 and e.src in single_ids and e.src_port > 0:
            out = src_node["outputs"][e.src_port] if e.src_port < len(src_node["outputs"]) else None
            if out is not None and out["shape"] is not None:
                attrs["xlabel"] = f"<{_esc(_clip(str(e.src_port) + ': ' + format_shape(out['shape']), 60))}>"
                w.used.add("port-label")
        dst_node = graph.node(e.dst)
        phases = (src_node["phase"], dst_node["phase"])
        stored = dst_node["grad_of"] is not None and dst_node["grad_of"] not in visible
        if phases == ("backward", "backward") and not stored:
            # The backward pass runs from the loss back to the inputs: drawn upwards, so that a
            # layer's gradients rank beside the layer (a ladder), not below the whole forward pass.
            # A gradient stored into a weight (AccumulateGrad) hangs below what made it: drawn
            # above, the first conv's would rank beside the previous block's last op, and every
            # block's box would be pushed beside the one before (ResNet-50: 31,000 pt wide).
            attrs["dir"] = "back"
            a, b = b, a
        elif phases == ("forward", "backward"):
            # A value saved for the gradient: the gradient may rank beside what it read. A rank
            # below, ResNet-50's gradients each took a rank of the next block, and each block's
            # box was pushed beside the one before. (Not constraint=false: dot then loses edges
            # between clusters.)
            attrs["minlen"] = "0"
        w.lines.append(f"{indent}{a} -> {b}{' ' + _attrs(attrs) if attrs else ''}")
    _grad_links(graph, names, boxed, w, indent)

    drawn = len(singles) + len(groups)
    # Control-flow bodies: a cluster per subgraph, linked from the node that runs it
    # (a node folded into a collapsed scope shows its bodies only when expanded).
    for n in singles if bodies else ():
        for sub_name in n["subgraphs"]:
            sub = _find_subgraph([*enclosing, graph], sub_name)
            if sub is None or len(sub) == 0 or sub_name in drawn_bodies:
                continue
            drawn_bodies.add(sub_name)
            cluster = f"cluster_sub_{w.new_name()}"
            w.lines.append(f"{indent}subgraph {cluster} {{")
            w.lines.append(
                f'{indent}  label=<<I>{_esc(sub_name)}</I>> style="dashed,rounded" color="{STYLE["control"]["color"]}" '
                f'fontcolor="{STYLE["control"]["color"]}" fontsize=10'
            )
            first = w.count + 1
            drawn += _draw_graph(
                sub,
                w,
                opts,
                collapse,
                _visible_nodes(sub, opts),
                prefix=prefix + sub_name + "/",
                indent=indent + "  ",
                notes=notes,
            )
            w.lines.append(f"{indent}}}")
            if w.count >= first:
                w.used.add("body")
                w.lines.append(
                    f'{indent}{names[n["id"]]} -> {w.prefix}{first} [style=dotted color="{STYLE["control"]["color"]}" '
                    f"lhead={cluster} arrowhead=empty]"
                )
    return drawn


def _grad_links(
    graph: Graph, names: dict[str, str], boxed: dict[str, tuple[str, ...]], w: _Writer, indent: str
) -> None:
    """A dotted line from each drawn forward box to the first drawn box of its gradient (TF
    builds several ops for one gradient: a line to each would hide the drawing), where the two
    are drawn in different boxes (a collapsed scope's gradients, in the ``∇`` tree). In one box
    the gradient is drawn beside its op already, and dot fails to route some of those lines
    ("lost edge": the whole render failed on ResNet-50's training step)."""
    linked: set[str] = set()
    for n in graph.nodes():
        grad_of = n["grad_of"]
        if grad_of is None:
            continue
        a, b = names.get(grad_of), names.get(n["id"])
        if a is None or b is None or a == b or a in linked or boxed.get(a) == boxed.get(b):
            continue
        linked.add(a)
        w.lines.append(f"{indent}{a} -> {b} {_attrs(dict(GRAD_LINK))}")
        w.used.add("grad-link")


def _badge(badges: dict[tuple[str, ...], str] | None, path: tuple[str, ...]) -> str:
    """`` ×80`` after the name of a block drawn once for a run of identical ones."""
    badge = (badges or {}).get(path)
    return f'&#160;<B><FONT COLOR="{STYLE["fold"]["color"]}">{_esc(badge)}</FONT></B>' if badge else ""


def _lone_scopes(
    singles: list[dict[str, Any]], groups: dict[tuple[str, ...], list[dict[str, Any]]], collapse: int | None
) -> set[tuple[str, ...]]:
    """Scope paths that would make a cluster around one node and nothing else (every
    ``Conv2d`` of a ResNet in its own box): that node is drawn in the parent cluster with
    the scope's name in its label. A third of the clusters of a ResNet, and of dot's time."""
    count: Counter[tuple[str, ...]] = Counter(
        _phase_path(n, tuple(n["scope"][:MAX_CLUSTER_DEPTH]), collapse) for n in singles
    )
    occupied = {key[:-1] for key in groups if key[0] != "#"}  # where group boxes are drawn
    for path in [*count, *occupied]:
        occupied.update(path[:i] for i in range(len(path)))  # enclosing clusters
    return {path for path, k in count.items() if path and k == 1 and path not in occupied}


def _find_subgraph(chain: list[Graph], name: str) -> Graph | None:
    """A body resolves in the graph that runs it or any enclosing graph (TF keeps its whole
    function library at the top)."""
    for g in reversed(chain):
        if name in g.subgraphs:
            return g.subgraphs[name]
    return None


def _folded_inputs(graph: Graph, visible: set[str]) -> dict[str, str]:
    """Per visible node, a short escaped line naming the params/consts folded into it."""
    out: dict[str, list[str]] = defaultdict(list)
    for e in graph.edges(lambda u, v: u not in visible and v in visible):
        src = graph.node(e.src)
        leaf = src["name"].rsplit(".", 1)[-1].rsplit("/", 1)[-1] if src["kind"] == "param" else src["kind"]
        shape = src["outputs"][0]["shape"] if src["outputs"] else None
        if (
            src["kind"] == "const"
            and "value" in src["attrs"]
            and not isinstance(src["attrs"]["value"], (dict, list))
        ):
            item = f"{leaf}={src['attrs']['value']}"
        else:
            item = leaf + (format_shape(shape) if shape is not None else "")
        out[e.dst].append(_clip(item, 40))
    return {k: _esc(", ".join(v[:4]) + (f", +{len(v) - 4}" if len(v) > 4 else "")) for k, v in out.items()}


# Clusters nest at most this deep; a node in a deeper scope is drawn in its scope's ancestor
# at this depth (a scope 2,000 levels deep ran out of Python's stack, and 20,000 levels of
# indented clusters took 3 GB).
MAX_CLUSTER_DEPTH = 32


def _emit_clusters(
    tree: dict[tuple[str, ...], list[str]],
    w: _Writer,
    indent: str,
    prefix: str,
    badges: dict[tuple[str, ...], str] | None = None,
) -> None:
    """Nested ``subgraph cluster_*`` blocks, one per scope path, in sorted order."""
    if any(len(path) > MAX_CLUSTER_DEPTH for path in tree):
        cut: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for path, lines in tree.items():
            cut[path[:MAX_CLUSTER_DEPTH]].extend(lines)
        tree = cut
    paths = set(tree)
    for path in list(paths):
        for i in range(1, len(path)):
            paths.add(path[:i])
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
    for path in paths:
        if path:
            children[path[:-1]].append(path)

    def emit(path: tuple[str, ...], ind: str) -> None:
        if path:
            cluster = f"cluster_{w.new_name()}"
            w.lines.append(f"{ind}subgraph {cluster} {{")
            w.lines.append(
                f'{ind}  label=<{_esc(path[-1])}{_badge(badges, path)}> style="rounded" color="{CLUSTER_COLOR}" '
                f'fontcolor="#868e96" fontsize=10 labeljust=l'
            )
            inner = ind + "  "
        else:
            inner = ind
        for line in tree.get(path, []):
            w.lines.append(f"{inner}{line}")
        for child in sorted(children.get(path, [])):
            emit(child, inner)
        if path:
            w.lines.append(f"{ind}}}")

    emit((), indent)


# The legend's rows, in this order, each shown only when the drawing has one: (key, sample
# cell attributes, sample text, meaning). Kinds use their STYLE colours.
_LEGEND_ROWS: list[tuple[str, str, str, str]] = [
    ("input", "", "input", "a model input"),
    ("op", "", "op · [4,16]", "an operation, and the shape of its (first) output"),
    ("param", "", "param", "a weight or buffer drawn as a node"),
    ("const", "", "const", "a constant"),
    ("control", "", "control", "control flow: a branch, a loop, a call"),
    ("graph-break", "", "graph break", "where Dynamo split the graph, and why"),
    ("group", "", "scope · 12 ops", "a scope drawn as one box (--collapse)"),
    ("fold", "", "×79 more", "identical blocks after the first (the ×N one), folded (--no-fold)"),
    ("output", "", "output", "a model output"),
    ("extra-outputs", "", "+2", "an op with more outputs than the first (here 2 more)"),
    ("stats", "", "[-1, 2.5] mean 0.3", "the value's range and mean (a stepped graph)"),
    ("nonfinite", "", "27 nan", "red outline: the value held NaN or Inf values"),
    ("highlight", "", "", ""),  # text from DotOptions.highlight_label
    ("port-label", "", "1: [2,3]", "an edge from output 1 of its op, of shape [2,3]"),
    ("control-edge", "", "- - -⊙", "a control dependency: runs after, no value passed"),
    ("back-edge", "", "back", "a loop's back edge (NextIteration to Merge)"),
    ("body", "", "· · ·▷", "to the body a control-flow node runs"),
    ("backward", "", "grad", "a backward node: a gradient (trace --backward)"),
    ("grad-link", "", "· · ·", "joins a gradient to the forward node it differentiates"),
    ("optimizer", "", "update", "an optimizer node: a parameter update"),
]


def _legend(w: _Writer, opts: DotOptions) -> None:
    """A narrow table explaining what this drawing uses, and nothing it does not."""
    rows = []
    for key, cell, sample, meaning in _LEGEND_ROWS:
        if key not in w.used:
            continue
        style = STYLE.get(key) or STYLE.get("control" if key == "graph-break" else "")
        if key in ("backward", "optimizer"):
            style = BACKWARD_STYLE if key == "backward" else OPTIMIZER_STYLE
        if key == "highlight":
            style, sample, meaning = HIGHLIGHT, "culprit", opts.highlight_label
        if key == "nonfinite":
            style = {"fillcolor": STYLE["op"]["fillcolor"], "color": NONFINITE_COLOR}
        if style is not None:
            cell = f'BGCOLOR="{style["fillcolor"]}" COLOR="{style["color"]}"'
        text_color = PAGE_TEXT_COLOR if style is None else "#212529"
        if key in ("nonfinite", "back-edge"):
            text_color = NONFINITE_COLOR if key == "nonfinite" else BACK_EDGE_COLOR
        if key == "grad-link":
            text_color = GRAD_LINK["color"]
        rows.append(
            f'<TR><TD {cell} BORDER="{1 if style is not None else 0}" ALIGN="CENTER">'
            f'<FONT COLOR="{text_color}">{_esc(sample)}</FONT></TD>'
            f'<TD ALIGN="LEFT"><FONT COLOR="{PAGE_TEXT_COLOR}">{_esc(meaning)}</FONT></TD></TR>'
        )
    if not rows:
        return
    name = w.new_name()
    w.lines.append(
        f'  {name} [shape=plaintext style=solid fontsize=9 fontname="{FONT}" tooltip="legend" label=<'
        '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">'
        f'<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT COLOR="{PAGE_TEXT_COLOR}"><B>legend</B></FONT></TD></TR>'
        + "".join(rows)
        + "</TABLE>>]"
    )
