"""`graphscope tui`: browse a graph in the terminal — scopes, nodes, edges, values, subgraphs."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Static, Tree

from graphscope import _gc
from graphscope.rendering.terminal import one_line
from graphscope.tui.commands import GraphscopeCommands
from graphscope.tui.dialogs.body_chooser import BodyChooser
from graphscope.tui.model import WEIGHT_KINDS, Level, Row
from graphscope.tui.screens.help import HelpScreen
from graphscope.tui.widgets.node_table import COLUMNS, COLUMNS_WITHOUT_VALUES, NodeTable
from graphscope.tui.widgets.panes import Details, Neighbourhood, diff_header
from graphscope.tui.widgets.scope_tree import ScopeTree
from graphscope.tui.widgets.training import HistoryPane, PhaseStrip, phases_of

if TYPE_CHECKING:
    from graphscope.diffing import Diff
    from graphscope.ir import Graph
    from graphscope.stepping.records import Steps

__all__ = ["GraphscopeApp"]


class GraphscopeApp(App[None]):
    """Browse one graph. Subgraphs are entered with ``>`` and left with ``<``."""

    CSS_PATH = Path(__file__).parent / "graphscope.tcss"  # absolute: subclasses live elsewhere
    TITLE = "graphscope"
    COMMANDS = App.COMMANDS | {GraphscopeCommands}  # ctrl+p: graphscope's commands, then Textual's
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
        Binding("w", "toggle_weights", "weights"),
        Binding("s", "export_svg", "svg", show=False),  # in the help and the palette: the footer is full
        Binding("n", "step(1)", "next"),
        Binding("p", "step(-1)", "prev"),
        Binding("c", "continue", "continue"),
        Binding("b", "breakpoint", "break"),
        Binding("f", "first_nonfinite", "first NaN", show=False),  # in the help and the palette
        Binding("right_square_bracket", "change(1)", "next"),
        Binding("left_square_bracket", "change(-1)", "prev"),
        Binding("d", "swap_side", "other"),
        Binding("g", "gradient", "gradient"),
    ]

    def __init__(
        self,
        graph: Graph,
        *,
        steps: Steps | None = None,
        diff: Diff | None = None,
        svg_dir: Path | None = None,
        history: Sequence[dict[str, Any]] | None = None,
        first_nonfinite_step: int | None = None,
    ) -> None:
        super().__init__()
        from graphscope.rendering.terminal import harden_text_stripping

        harden_text_stripping()  # an ESC in a node name must be shown, not obeyed by the terminal
        self.graph = graph
        self.diff = diff  # diff mode: `graph` is diff.b; `d` shows the other side
        self.side = "b"
        self.diff_status: dict[str, str] = {}
        self.steps = steps  # step mode: the run's records, walked with n / p / c
        self.step_pos = steps.position if steps is not None else 0  # (--until puts it there)
        # A training step (phases beyond forward): the phase strip above the table.
        self.training = steps is not None and any(p != "forward" for p in phases_of(steps))
        self.history = history  # a `watch` run's per-step numbers, drawn as sparklines
        self.first_nonfinite_step = first_nonfinite_step
        self._jumped: tuple[str, str] | None = None  # `g`'s last jump (from, to): `g` again goes back
        self.breakpoints: set[str] = set()
        with _gc.paused():  # a row per node, all long-lived: nothing for the collector
            self.stack: list[Level] = [Level(graph)]
        self.scope = ""
        self.search_text = ""
        self.weights_shown = True  # `w`: params and constants listed, or hidden
        self.tree_open = False  # `t` on a narrow screen: the scope tree in the table's place
        self.edge_index = -1  # which neighbour ←/→ chose (-1: none)
        self._shown: str | None = None  # the node the panes show
        self.svg_dir = svg_dir or Path.cwd()

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            yield ScopeTree("scopes", id="scopes")
            with Vertical(id="middle"):
                history = HistoryPane("", id="history")
                history.display = self.history is not None
                yield history
                phases = PhaseStrip("", id="phases")
                phases.display = self.training
                yield phases
                yield Static("", id="where")
                yield Input(placeholder="search: words, op:relu kind:param scope:layer1", id="search")
                yield Static("", id="columns")
                columns = COLUMNS if self._has_values() else COLUMNS_WITHOUT_VALUES
                yield NodeTable(id="nodes", columns=columns)
            with Vertical(id="right"):
                yield Neighbourhood("", id="neighbourhood")
                with VerticalScroll(id="details-scroll"):
                    yield Details("", id="details")
        yield Footer()

    _STEP_ACTIONS = frozenset({"step", "continue", "breakpoint", "first_nonfinite"})
    _DIFF_ACTIONS = frozenset({"change", "swap_side"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Step keys in step mode and diff keys in diff mode only (the footer shows what works)."""
        if action in self._STEP_ACTIONS:
            return self.steps is not None
        if action in self._DIFF_ACTIONS:
            return self.diff is not None
        if action == "gradient":  # a training step's graph only (trace --backward)
            return bool(self.level.gradients)
        if action == "toggle_weights":
            return self.level.weights > 0
        if action == "enter_subgraph":  # only where a node has a body to enter
            return self.level.has_bodies
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
            self.step_pos = max(0, min(self.step_pos, len(self.steps) - 1))
            self._show_step()
        if self.history is not None:
            self.call_after_refresh(self._draw_history)  # (its width is known once laid out)
        if self.diff is not None:
            self._show_diff_side()
        table.focus()

    # Below these sizes the screen changes shape (see _lay_out).
    NARROW = 100  # columns: panes stacked, the scope tree a page of its own
    TREE_BESIDE = 110  # columns: the scope tree always shown on the left
    SHORT = 32  # rows: the neighbourhood drawn on three lines

    def on_resize(self, event: Any) -> None:
        self._lay_out(event.size)

    def _lay_out(self, size: Any = None) -> None:
        """Fit the panes to the terminal.

        Wide (110+ columns): the scope tree, the table and the right-hand panes side by side,
        the tree as wide as its top labels (up to a fifth of the screen), the panes about a
        third. 100-109 columns: the tree only when ``t`` opens it. Narrow (under 100): the
        table above the details, and ``t`` shows the scope tree in their place. Short (under
        32 rows) or narrow: the neighbourhood one hop each way on three lines.
        """
        width, height = size or self.size  # (a resize's own size: self.size may lag behind it)
        main = self.screen_stack[0]  # the graph's screen, under any dialog
        body = main.query_one("#body")
        narrow = width < self.NARROW
        body.set_class(narrow, "-narrow")
        body.set_class(self.tree_open, "-tree-open")
        tree = main.query_one(ScopeTree)
        tree.display = self.tree_open or width >= self.TREE_BESIDE
        if not narrow:
            tree.styles.width = max(20, min(tree.wanted_width(), max(24, width // 5)))
            main.query_one("#right").styles.width = max(40, min(72, int(width * 0.36)))
        else:
            tree.styles.width = "1fr"
            main.query_one("#right").styles.width = "1fr"
        main.query_one(Footer).compact = narrow  # more keys in the line
        if self.training or self.history is not None:  # drawn to the new width
            self.call_after_refresh(self._redraw_training)
        neighbourhood = main.query_one(Neighbourhood)
        compact = narrow or height < self.SHORT
        if neighbourhood.compact != compact:
            neighbourhood.compact = compact
            if self._shown is not None:
                self.call_after_refresh(self._redraw_neighbourhood)

    def _redraw_neighbourhood(self) -> None:
        if self._shown is not None and self._shown in self.level.index:
            neighbourhood = self.screen_stack[0].query_one(Neighbourhood)
            neighbourhood.show(self.level, self._shown, self._chosen_edge(self._shown))

    def on_node_table_columns_fitted(self, message: NodeTable.ColumnsFitted) -> None:
        # (the table's own screen: a dialog may be on top, and app.query_one looks there)
        if not message.table.is_attached:
            return  # the app closed before the message came
        for header in message.table.screen.query("#columns").results(Static):
            header.update(Text(message.header))

    @property
    def level(self) -> Level:
        return self.stack[-1]

    def current_row(self) -> Row | None:
        """The row under the table's cursor (None in an empty table)."""
        return self.screen_stack[0].query_one(NodeTable).current

    def _show_level(self, keep: str | None = None) -> None:
        level = self.level
        self.query_one(ScopeTree).load(level, level.path or self.graph.name)
        self.query_one(NodeTable).fit(level.content_widths())
        # A search or a scope belongs to the level it was made in: entering or leaving a
        # subgraph clears both, the search box with them (its text must not outlive its rows).
        self.scope, self.search_text = "", ""
        search = self.query_one("#search", Input)
        if search.value or search.display:
            search.value, search.display = "", False
            self.query_one(NodeTable).focus()
        self._refresh_rows(keep or level.first_op, level_changed=True)
        self._lay_out()  # the scope tree as wide as this level's labels
        self.refresh_bindings()  # `w` is offered only where there are weights to hide

    def _refresh_rows(self, keep: str | None = None, *, level_changed: bool = False) -> None:
        rows = self.level.rows_in(self.scope, weights=self.weights_shown)
        if self.search_text:
            rows = self.level.search(self.search_text, rows)
        table = self.query_one(NodeTable)
        if not level_changed:
            keep = keep or (table.current.id if table.current else None)
        table.set_rows(rows, keep=keep)
        if table.current is None or table.current.id != self._shown:
            self.edge_index = -1
            self._show_node(table.current)  # now, not a message later: one repaint, not two
        where = self.level.path or "(top level)"
        filters = (
            [f"scope {self.scope}" for _ in [0] if self.scope]
            + [f"search '{self.search_text}'" for _ in [0] if self.search_text]
            + [
                f"{self.level.weights} weights hidden (w)"
                for _ in [0]
                if not self.weights_shown and self.level.weights
            ]
        )
        # As Text, never a string (read as markup): the path holds subgraph names, the filters
        # a scope and the search, all text from the file or the user ("[/x]" crashed the app).
        self.query_one("#where", Static).update(
            Text(
                one_line(
                    f"{where} · {len(rows)} of {len(self.level.rows)} nodes"
                    + (f" · {', '.join(filters)}" if filters else "")
                )
            )
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
        if self._jumped is not None and self._jumped[1] == row.id:
            target: str | None = self._jumped[0]  # back where the last `g` came from
        else:
            target = self.level.graph.node(row.id)["grad_of"] or self.level.gradients.get(row.id)
        if target is None:
            self.bell()
            return
        self.go_to(target)
        self._jumped = (row.id, target)

    def go_to(self, node_id: str) -> None:
        """Put the cursor on ``node_id``, clearing a filter that hides it."""
        table = self.query_one(NodeTable)
        if not table.go_to(node_id):
            row = self.level.rows[self.level.index[node_id]] if node_id in self.level.index else None
            if row is not None and row.kind in WEIGHT_KINDS:
                self.weights_shown = True
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
        if self.query_one(ScopeTree).has_focus:
            self._close_tree()
            return
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
        if self.tree_open:  # a narrow screen: back to the table, filtered
            self._close_tree()

    def action_focus_tree(self) -> None:
        """``t``: to the scope tree (opening it where it is hidden), or from it back to the table."""
        tree = self.query_one(ScopeTree)
        if tree.has_focus:
            self._close_tree()
            return
        if not tree.display:
            self.tree_open = True
            self._lay_out()
        tree.focus()

    def _close_tree(self) -> None:
        self.tree_open = False
        self._lay_out()
        self.query_one(NodeTable).focus()

    def action_toggle_weights(self) -> None:
        """Hide or show params and constants (a ResNet lists 320 weights before its first op)."""
        self.weights_shown = not self.weights_shown
        table = self.query_one(NodeTable)
        keep = table.current.id if table.current else None
        if not self.weights_shown and table.current is not None and table.current.kind in WEIGHT_KINDS:
            # the cursor's row goes: on to the next row that stays, else the one before
            after = [r for r in table.rows[table.cursor :] if r.kind not in WEIGHT_KINDS]
            before = [r for r in table.rows[: table.cursor] if r.kind not in WEIGHT_KINDS]
            keep = after[0].id if after else (before[-1].id if before else None)
        self._refresh_rows(keep)

    def action_enter_subgraph(self) -> None:
        """Enter the current node's body; a node with several (then / else, cond / body) asks which."""
        row = self.query_one(NodeTable).current
        node = self.level.graph.node(row.id) if row else None
        if not node or not node["subgraphs"]:
            self.notify("this node has no subgraph", severity="warning")
            return
        bodies = list(node["subgraphs"])
        if len(bodies) == 1:
            self.enter_body(bodies[0])
            return
        sizes = {name: len(sub) for name in bodies if (sub := _resolve(self.stack, name)) is not None}

        def chosen(body: str | None) -> None:
            if body is not None:
                self.enter_body(body)

        self.push_screen(BodyChooser(node["id"], bodies, sizes), chosen)

    def enter_body(self, name: str) -> None:
        """Enter the subgraph ``name`` (a body of the current level's node) like a directory."""
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
        table.glyphs = {n: _DIFF_GLYPHS[k] for n, k in self.diff_status.items()}
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
        table.glyphs = {b: BREAKPOINT for b in self.breakpoints}
        table.glyphs[rec.node] = CURRENT_STEP
        state = "non-finite!" if self.steps.counts(rec) else "ok"
        if not rec.finite and state == "ok":
            state = "a mask's -inf" if rec.node in self.steps.masks.masked else "dropped on the way"
        phase = ""
        if self.training:
            node = self.graph.node(rec.node) if rec.node in self.graph else {}
            phase = f" · {node.get('phase') or 'forward'}"
            self.screen_stack[0].query_one(PhaseStrip).show(self.steps, self.step_pos)
        self.sub_title = (
            f"{self.graph.name} · step {rec.index}/{len(self.steps) - 1}{phase}: {rec.node} ({state})"
        )
        if len(self.stack) == 1:
            self.go_to(rec.node)
        table.refresh()

    def _redraw_training(self) -> None:
        if self.training and self.steps is not None:
            self.screen_stack[0].query_one(PhaseStrip).show(self.steps, self.step_pos)
        if self.history is not None:
            self._draw_history()

    def _draw_history(self) -> None:
        assert self.history is not None
        self.screen_stack[0].query_one(HistoryPane).show(self.history, self.first_nonfinite_step)

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
            if rec.node in self.breakpoints or self.steps.counts(rec):  # a mask's -inf: on
                self.step_pos = rec.index
                break
        else:
            self.step_pos = len(self.steps) - 1
            self.notify("ran to the end: no breakpoint or non-finite value on the way")
        self._show_step()

    def action_first_nonfinite(self) -> None:
        """To the first non-finite value of the run, wherever the current step is."""
        assert self.steps is not None
        bad = self.steps.first_nonfinite
        if bad is None:
            self.notify("no NaN or Inf in this run")
            return
        self.step_pos = bad.index
        self._show_step()

    def action_breakpoint(self) -> None:
        row = self.query_one(NodeTable).current
        if row is None:
            return
        self.breakpoints ^= {row.id}
        if self.steps is not None:
            self._show_step()
        else:
            table = self.query_one(NodeTable)
            table.marks = {b: _BREAK for b in self.breakpoints}
            table.glyphs = {b: BREAKPOINT for b in self.breakpoints}
            table.refresh()

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
_DIFF_GLYPHS = {"added": "+", "removed": "-", "changed": "~", "diverged": "!"}
_BREAK = Style(bgcolor="dark_red")
BREAKPOINT, CURRENT_STEP = "●", "▶"  # the table's mark column
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
