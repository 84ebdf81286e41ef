"""`graphscope tui`: browse a graph in the terminal — scopes, nodes, edges, values, subgraphs."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.style import Style
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Static, Tree

from graphscope import _gc
from graphscope.tui.model import Level, Row
from graphscope.tui.screens.help import HelpScreen
from graphscope.tui.widgets.node_table import COLUMNS, COLUMNS_WITHOUT_VALUES, NodeTable, header_text
from graphscope.tui.widgets.panes import Details, Neighbourhood, diff_header
from graphscope.tui.widgets.scope_tree import ScopeTree

if TYPE_CHECKING:
    from graphscope.diffing import Diff
    from graphscope.ir import Graph
    from graphscope.stepping.records import Steps

__all__ = ["GraphscopeApp"]


class GraphscopeApp(App[None]):
    """Browse one graph. Subgraphs are entered with ``>`` and left with ``<``."""

    CSS_PATH = Path(__file__).parent / "graphscope.tcss"  # absolute: subclasses live elsewhere
    TITLE = "graphscope"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "keys"),
        Binding("slash", "search", "search"),
        Binding("escape", "clear_search", "clear", show=False),
        Binding("left", "edge(-1)", "edge", show=False),
        Binding("right", "edge(1)", "edge", show=False),
        Binding("enter", "follow", "follow edge"),
        Binding("greater_than_sign", "enter_subgraph", "enter"),
        Binding("less_than_sign,backspace", "leave_subgraph", "up", show=False),
        Binding("t", "focus_tree", "scopes", show=False),
        Binding("s", "export_svg", "svg"),
        Binding("n", "step(1)", "next step"),
        Binding("p", "step(-1)", "prev step"),
        Binding("c", "continue", "continue"),
        Binding("b", "breakpoint", "breakpoint"),
        Binding("right_square_bracket", "change(1)", "next change"),
        Binding("left_square_bracket", "change(-1)", "prev change"),
        Binding("d", "swap_side", "other side"),
        Binding("g", "gradient", "gradient"),
    ]

    def __init__(
        self,
        graph: Graph,
        *,
        steps: Steps | None = None,
        diff: Diff | None = None,
        svg_dir: Path | None = None,
    ) -> None:
        super().__init__()
        from graphscope.rendering.terminal import harden_text_stripping

        harden_text_stripping()  # an ESC in a node name must be shown, not obeyed by the terminal
        self.graph = graph
        self.diff = diff  # diff mode: `graph` is diff.b; `d` shows the other side
        self.side = "b"
        self.diff_status: dict[str, str] = {}
        self.steps = steps  # step mode: the run's records, walked with n / p / c
        self.step_pos = 0
        self.breakpoints: set[str] = set()
        with _gc.paused():  # a row per node, all long-lived: nothing for the collector
            self.stack: list[Level] = [Level(graph)]
        self.scope = ""
        self.search_text = ""
        self.edge_index = -1  # which neighbour ←/→ chose (-1: none)
        self._shown: str | None = None  # the node the panes show
        self.svg_dir = svg_dir or Path.cwd()

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield ScopeTree("scopes", id="scopes")
            with Vertical(id="middle"):
                yield Static("", id="where")
                yield Input(placeholder="search: words, op:relu kind:param scope:layer1", id="search")
                columns = COLUMNS if self._has_values() else COLUMNS_WITHOUT_VALUES
                yield Static(header_text(columns), id="columns")
                yield NodeTable(id="nodes", columns=columns)
            with Vertical(id="right"):
                yield Neighbourhood("", id="neighbourhood")
                with VerticalScroll(id="details-scroll"):
                    yield Details("", id="details")
        yield Footer()

    _STEP_ACTIONS = frozenset({"step", "continue", "breakpoint"})
    _DIFF_ACTIONS = frozenset({"change", "swap_side"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Step keys in step mode and diff keys in diff mode only (the footer shows what works)."""
        if action in self._STEP_ACTIONS:
            return self.steps is not None
        if action in self._DIFF_ACTIONS:
            return self.diff is not None
        if action == "gradient":  # a training step's graph only (trace --backward)
            return bool(self.level.gradients)
        return True

    def on_unmount(self) -> None:
        gc.unfreeze()  # (an app run from Python, or a test, leaves nothing frozen behind)

    def _has_values(self) -> bool:
        """Step mode, or a graph saved with its values (`step -o`): the values column is shown."""
        graphs = [self.graph] + ([self.diff.a] if self.diff is not None else [])
        return self.steps is not None or any(
            isinstance(o.get("stats"), dict) for g in graphs for n in g.nodes() for o in n["outputs"]
        )

    def on_mount(self) -> None:
        # The graph and its rows live as long as the app: out of the collector's full passes,
        # which otherwise stalled a key press now and then (0.5 s on a 50k-node graph).
        gc.freeze()
        g = self.graph
        self.sub_title = f"{g.name} · {g.framework or '?'} {g.capture or ''} · {len(g)} nodes"
        self.query_one("#search", Input).display = False
        self._show_level()
        table = self.query_one(NodeTable)
        if self.steps is not None and len(self.steps):
            table.step_of = {r.node: r.index for r in self.steps}
            self._show_step()
        if self.diff is not None:
            self._show_diff_side()
        table.focus()

    def on_resize(self, event: Any) -> None:
        """Narrow terminals: the right panes shrink, and below 100 columns the scope tree hides."""
        width = event.size.width
        self.query_one("#right").styles.width = max(30, min(56, int(width * 0.35)))
        self.query_one(ScopeTree).display = width >= 100

    @property
    def level(self) -> Level:
        return self.stack[-1]

    def _show_level(self, keep: str | None = None) -> None:
        level = self.level
        self.query_one(ScopeTree).load(level, level.path or self.graph.name)
        self.scope, self.search_text = "", ""
        self._refresh_rows(keep)

    def _refresh_rows(self, keep: str | None = None) -> None:
        rows = self.level.rows_in(self.scope)
        if self.search_text:
            rows = self.level.search(self.search_text, rows)
        table = self.query_one(NodeTable)
        table.set_rows(rows, keep=keep or (table.current.id if table.current else None))
        if table.current is None or table.current.id != self._shown:
            self.edge_index = -1
            self._show_node(table.current)  # now, not a message later: one repaint, not two
        where = self.level.path or "(top level)"
        filters = [f"scope {self.scope}" for _ in [0] if self.scope] + [
            f"search '{self.search_text}'" for _ in [0] if self.search_text
        ]
        self.query_one("#where", Static).update(
            f"{where} · {len(rows)} of {len(self.level.rows)} nodes"
            + (f" · {', '.join(filters)}" if filters else "")
        )

    # -- following the cursor --------------------------------------------------------------

    def on_node_table_highlighted(self, message: NodeTable.Highlighted) -> None:
        if message.row is not None and message.row.id == self._shown:
            return  # already drawn (a filter change keeps the cursor where it was)
        self.edge_index = -1
        self._show_node(message.row)

    def _show_node(self, row: Row | None) -> None:
        self._shown = row.id if row else None
        neighbourhood = self.query_one(Neighbourhood)
        info = self.query_one(Details)
        if row is None:
            neighbourhood.update("(no node)")
            info.update("")
            return
        neighbourhood.show(self.level, row.id, self._chosen_edge(row.id))
        table = self.query_one(NodeTable)
        not_run = table.shown_until is not None and table.step_of.get(row.id, -1) > table.shown_until
        above = None
        if self.diff is not None and len(self.stack) == 1:
            other, fields = self.counterpart(row.id)
            above = diff_header(self.diff_status.get(row.id), self.side, other, fields, self.diff)
        info.show(self.level, row.id, not_run=not_run and len(self.stack) == 1, above=above)

    def _edges_of(self, node_id: str) -> list[str]:
        return self.level.preds.get(node_id, []) + self.level.succs.get(node_id, [])

    def _chosen_edge(self, node_id: str) -> str | None:
        edges = self._edges_of(node_id)
        return edges[self.edge_index] if 0 <= self.edge_index < len(edges) else None

    # -- actions ----------------------------------------------------------------------------

    def action_edge(self, delta: int) -> None:
        row = self.query_one(NodeTable).current
        if row is None:
            return
        edges = self._edges_of(row.id)
        if not edges:
            self.bell()
            return
        self.edge_index = (
            (self.edge_index + delta) % len(edges)
            if self.edge_index >= 0
            else (0 if delta > 0 else len(edges) - 1)
        )
        self.query_one(Neighbourhood).show(self.level, row.id, self._chosen_edge(row.id))

    def action_follow(self) -> None:
        row = self.query_one(NodeTable).current
        target = self._chosen_edge(row.id) if row else None
        if target is None:
            self.bell()
            return
        self.go_to(target)

    def action_gradient(self) -> None:
        """From a forward node to its gradient, and from a backward node to what it differentiates."""
        row = self.query_one(NodeTable).current
        if row is None:
            self.bell()
            return
        target = self.level.graph.node(row.id)["grad_of"] or self.level.gradients.get(row.id)
        if target is None:
            self.bell()
            return
        self.go_to(target)

    def go_to(self, node_id: str) -> None:
        """Put the cursor on ``node_id``, clearing a filter that hides it."""
        table = self.query_one(NodeTable)
        if not table.go_to(node_id):
            self.scope, self.search_text = "", ""
            search = self.query_one("#search", Input)
            search.value, search.display = "", False
            self._refresh_rows(keep=node_id)
        table.focus()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search_text = event.value.strip()
        self._refresh_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(NodeTable).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_focus and search.value:
            search.value = ""
            return
        if search.has_focus or self.search_text:
            search.value = ""
            search.display = False
            self.search_text = ""
            self._refresh_rows()
            self.query_one(NodeTable).focus()

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        self.scope = event.node.data or ""
        self._refresh_rows()

    def action_focus_tree(self) -> None:
        self.query_one(ScopeTree).focus()

    def action_enter_subgraph(self) -> None:
        row = self.query_one(NodeTable).current
        node = self.level.graph.node(row.id) if row else None
        if not node or not node["subgraphs"]:
            self.notify("this node has no subgraph", severity="warning")
            return
        name = node["subgraphs"][0]
        sub = _resolve(self.stack, name)
        if sub is None:
            self.notify(f"subgraph {name} is not in this file", severity="error", markup=False)
            return
        path = f"{self.level.path}/{name}" if self.level.path else name
        self.stack.append(Level(sub, path))
        self._show_level()

    def action_leave_subgraph(self) -> None:
        if len(self.stack) == 1:
            self.bell()
            return
        left = self.stack.pop().path.rsplit("/", 1)[-1]
        owner = next((n["id"] for n in self.level.graph.nodes() if left in n["subgraphs"]), None)
        self._show_level(keep=owner)

    # -- diff mode ----------------------------------------------------------------------------

    def _diff_status(self) -> dict[str, str]:
        """Node id (on the shown side) -> added / removed / changed / diverged."""
        d = self.diff
        assert d is not None
        status: dict[str, str] = {}
        if self.side == "b":
            status.update({n: "added" for n in d.added})
            status.update({c["b"]: "changed" for c in d.changed})
        else:
            status.update({n: "removed" for n in d.removed})
            status.update({c["a"]: "changed" for c in d.changed})
        if d.first_divergence is not None:
            status[d.first_divergence[self.side]] = "diverged"
        return status

    def _show_diff_side(self, keep: str | None = None) -> None:
        d = self.diff
        assert d is not None
        graph = d.b if self.side == "b" else d.a
        self.graph = graph
        self.stack = [Level(graph)]
        self.diff_status = self._diff_status()
        table = self.query_one(NodeTable)
        table.marks = {n: _DIFF_STYLES[k] for n, k in self.diff_status.items()}
        other = d.a if self.side == "b" else d.b
        counts = f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed"
        self.sub_title = (
            f"diff · showing {self.side.upper()}: {graph.name} (other: {other.name}) · {counts} · d swaps"
        )
        self._show_level(keep=keep)

    def action_swap_side(self) -> None:
        if self.diff is None:
            self.notify("diff mode needs two graphs: graphscope tui A B", severity="warning")
            return
        row = self.query_one(NodeTable).current
        pairs = dict(self.diff.matched) if self.side == "a" else {y: x for x, y in self.diff.matched}
        keep = pairs.get(row.id) if row else None
        self.side = "a" if self.side == "b" else "b"
        self._show_diff_side(keep=keep)

    def action_change(self, delta: int) -> None:
        """Jump to the next (or previous) added, removed, changed or diverged node."""
        if self.diff is None:
            self.bell()
            return
        table = self.query_one(NodeTable)
        n = len(table.rows)
        for k in range(1, n + 1):
            i = (table.cursor + delta * k) % n
            if table.rows[i].id in self.diff_status:
                table.cursor = i
                return
        self.notify("no changes on this side")

    def counterpart(self, node_id: str) -> tuple[str | None, dict[str, Any] | None]:
        """The matched node on the other side, and the changed fields, in diff mode."""
        if self.diff is None:
            return None, None
        if self.side == "b":
            pairs = {y: x for x, y in self.diff.matched}
            change = next((c for c in self.diff.changed if c["b"] == node_id), None)
        else:
            pairs = dict(self.diff.matched)
            change = next((c for c in self.diff.changed if c["a"] == node_id), None)
        return pairs.get(node_id), (change or {}).get("fields")

    # -- step mode ----------------------------------------------------------------------------

    def _show_step(self) -> None:
        assert self.steps is not None
        table = self.query_one(NodeTable)
        rec = self.steps[self.step_pos]
        table.shown_until = self.step_pos
        table.marks = {b: _BREAK for b in self.breakpoints}
        table.marks[rec.node] = table.marks.get(rec.node, _NONE) + _CURRENT
        state = "non-finite!" if not rec.finite else "ok"
        self.sub_title = f"{self.graph.name} · step {rec.index}/{len(self.steps) - 1}: {rec.node} ({state})"
        if len(self.stack) == 1:
            self.go_to(rec.node)
        table.refresh()

    def action_step(self, delta: int) -> None:
        if self.steps is None:
            self.notify(
                "step mode needs a model file: graphscope tui model.py --fw torch", severity="warning"
            )
            return
        new = max(0, min(len(self.steps) - 1, self.step_pos + delta))
        if new == self.step_pos:
            self.bell()
        self.step_pos = new
        self._show_step()

    def action_continue(self) -> None:
        """Run on to the next breakpoint or the next non-finite value (or the end)."""
        if self.steps is None:
            self.action_step(0)
            return
        for rec in self.steps[self.step_pos + 1 :]:
            if rec.node in self.breakpoints or not rec.finite:
                self.step_pos = rec.index
                break
        else:
            self.step_pos = len(self.steps) - 1
            self.notify("ran to the end: no breakpoint or non-finite value on the way")
        self._show_step()

    def action_breakpoint(self) -> None:
        row = self.query_one(NodeTable).current
        if row is None:
            return
        self.breakpoints ^= {row.id}
        if self.steps is not None:
            self._show_step()
        else:
            self.query_one(NodeTable).marks = {b: _BREAK for b in self.breakpoints}
            self.query_one(NodeTable).refresh()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_export_svg(self) -> None:
        from graphscope.errors import GraphscopeError
        from graphscope.rendering import svg

        graph = self.level.graph
        label = "-".join(part for part in (self.level.path, self.scope) if part) or "graph"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)[:80]
        out = self.svg_dir / f"graphscope-{safe}.svg"
        try:
            sub = _scope_subgraph(graph, self.scope) if self.scope else graph
            svg.render(sub, out, quiet=True)
        except GraphscopeError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"wrote {out}", markup=False)


_NONE = Style()
_DIFF_STYLES = {
    "added": Style(bgcolor="dark_green"),
    "removed": Style(bgcolor="dark_red"),
    "changed": Style(bgcolor="dark_goldenrod"),
    "diverged": Style(bgcolor="magenta", bold=True),
}
_BREAK = Style(bgcolor="dark_red")
_CURRENT = Style(color="magenta", bold=True, underline=True)


def _resolve(stack: list[Level], name: str) -> Any:
    """A subgraph name resolves in the current level's graph or an enclosing one."""
    for level in reversed(stack):
        if name in level.graph.subgraphs:
            return level.graph.subgraphs[name]
    return None


def _scope_subgraph(graph: Graph, scope: str) -> Graph:
    """The nodes under ``scope`` (and the edges between them), as a graph of their own."""
    from graphscope.ir import Graph as IRGraph

    prefix = scope.split(".")
    keep = [n for n in graph.nodes() if n["scope"][: len(prefix)] == prefix]
    sub = IRGraph(f"{graph.name} · {scope}", framework=graph.framework, capture=graph.capture)
    for n in keep:
        sub.nx.add_node(n["id"], **n)
    for e in graph.edges():
        if e.src in sub.nx and e.dst in sub.nx:
            sub.add_edge(e.src, e.dst, src_port=e.src_port, dst_port=e.dst_port, control=e.control)
    sub.subgraphs = graph.subgraphs
    return sub
