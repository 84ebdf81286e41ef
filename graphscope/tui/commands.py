"""graphscope's commands in Textual's command palette (ctrl+p): go to a node, enter a body,
hide the weights, write an SVG, toggle a breakpoint, step, jump between changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from graphscope.rendering.terminal import one_line

if TYPE_CHECKING:
    from graphscope.tui.app import GraphscopeApp

__all__ = ["GraphscopeCommands"]

NODE_HITS = 40  # "go to" hits at most: a 500k-node graph offers the best few, not all


class GraphscopeCommands(Provider):
    """The app's actions by name, and every node of the current level by id (fuzzy)."""

    @property
    def graphscope(self) -> GraphscopeApp:
        from graphscope.tui.app import GraphscopeApp

        app = self.app
        assert isinstance(app, GraphscopeApp)
        return app

    def commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        """(name, what it runs, help) for what makes sense now: mode, level and node."""
        app = self.graphscope
        row = app.current_row()
        node = app.level.graph.node(row.id) if row else None
        for body in (node or {}).get("subgraphs") or []:
            yield (
                f"enter subgraph {body}",
                partial(app.enter_body, body),
                f"a body of {row.id if row else ''}",
            )
        if len(app.stack) > 1:
            yield "leave subgraph", app.action_leave_subgraph, f"back up from {app.level.path}"
        if app.level.weights:
            shown = "hide" if app.weights_shown else "show"
            yield (
                f"{shown} weights and constants",
                app.action_toggle_weights,
                f"{app.level.weights} params and constants in this level (w)",
            )
        yield (
            "write SVG of the current graph",
            app.action_export_svg,
            "the current level or scope, in this directory (s)",
        )
        yield "show the scope tree", app.action_focus_tree, "filter the table to a scope (t)"
        yield "search nodes", app.action_search, "words, op:NAME kind:NAME scope:PREFIX (/)"
        if app.steps is not None:
            if row is not None:
                on = "remove breakpoint" if row.id in app.breakpoints else "set breakpoint"
                yield f"{on} on {row.id}", app.action_breakpoint, "continue stops there (b)"
            yield "next step", partial(app.action_step, 1), "(n)"
            yield "previous step", partial(app.action_step, -1), "(p)"
            yield "continue", app.action_continue, "to a breakpoint or the first NaN/Inf (c)"
            yield "first non-finite value", app.action_first_nonfinite, "of the whole run (f)"
        if app.diff is not None:
            yield "next change", partial(app.action_change, 1), "(])"
            yield "previous change", partial(app.action_change, -1), "([)"
            yield "show the other side", app.action_swap_side, "the other graph, on the counterpart (d)"
        yield "keys", app.action_help, "every key, on one screen (?)"

    async def discover(self) -> Hits:
        for name, run, help_text in self.commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, run, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, text=name, help=help_text)
        app = self.graphscope
        words = query.lower().removeprefix("go to").strip()
        if not words:
            return
        for row in app.level.search(words)[:NODE_HITS]:
            text = f"go to {one_line(row.id)}"
            score = matcher.match(text)
            display = matcher.highlight(text) if score > 0 else Text(text)
            # a node the table's search finds is a hit even when the palette's matcher disagrees
            yield Hit(
                max(score, 0.05),
                display,
                partial(app.go_to, row.id),
                text=text,
                help=f"{row.kind} · {one_line(row.op)}" + (f" · {one_line(row.scope)}" if row.scope else ""),
            )
