"""`?`: the keys, as one table on a screen of their own (fits 80 columns; scrolls when short)."""

from __future__ import annotations

from typing import ClassVar

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# (section, [(keys, what they do)]); a section is a mode the keys work in.
KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "browse",
        [
            ("↑ ↓ j k", "move in the node table (or click a row)"),
            ("PgUp PgDn", "a page up / down; Home End: the first / last row"),
            ("← → Enter", "choose an edge (inputs, then users); Enter follows it"),
            ("/", "search: fuzzy words; op:NAME kind:NAME scope:PREFIX"),
            ("Esc", "clear the search; leave the search box or scope tree"),
            ("t", "the scope tree: Enter there filters the table to a scope"),
            ("w", "hide / show weights and constants"),
            (">", "enter the node's subgraph; with several bodies, choose"),
            ("<", "back up to the enclosing graph"),
            ("s", "write the graph or scope as SVG (graphscope-*.svg)"),
            ("g", "a node's gradient (or update) and back (training graphs)"),
        ],
    ),
    (
        "step mode: graphscope tui model.py --fw FW [--train]",
        [
            ("n p", "next / previous step: values appear as steps run"),
            ("c", "continue to a breakpoint or the first NaN/Inf"),
            ("f", "the first NaN/Inf of the run, before or after this step"),
            ("b", "toggle a breakpoint: ● in the first column (▶ the step)"),
        ],
    ),
    (
        "diff mode: graphscope tui A B",
        [
            ("] [", "next / previous change: + added - removed ~ changed"),
            ("d", "show the other side, on the counterpart"),
        ],
    ),
    (
        "everywhere",
        [
            ("ctrl+p", "commands: go to a node, enter a body, weights, SVG …"),
            ("?", "these keys (Esc closes them)"),
            ("q", "quit"),
        ],
    ),
]


def keys_table() -> Table:
    """Every key, a section per mode, in a table that fits 76 columns."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("what it does")
    for i, (section, rows) in enumerate(KEYS):
        table.add_row("", Text(section, style="bold"), end_section=False)
        for j, (keys, does) in enumerate(rows):
            table.add_row(keys, does, end_section=j == len(rows) - 1 and i < len(KEYS) - 1)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 80;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 0 1;
        border: thick $primary;
        border-title-align: center;
        background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        scroll = VerticalScroll(id="help")
        scroll.border_title = "graphscope tui — keys"
        with scroll:
            yield Static(keys_table())
