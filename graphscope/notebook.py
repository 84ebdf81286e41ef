"""How graphscope's results show themselves in Jupyter.

A :class:`~graphscope.ir.Graph` displays as its SVG diagram (the same drawing as
``graphscope render``, big graphs collapsed automatically); :class:`~graphscope.stepping.Steps`
and :class:`~graphscope.diffing.Diff` display as the tables the CLI prints, in HTML. The classes'
``_repr_*_`` methods are one line each and call in here, so nothing below is imported until a
notebook asks.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphscope.errors import GraphscopeError

if TYPE_CHECKING:
    from graphscope.diffing import Diff
    from graphscope.ir import Graph
    from graphscope.stepping.records import Steps

__all__ = ["TIMEOUT", "diff_html", "graph_svg", "rich_html", "steps_html"]

TIMEOUT = 20.0  # seconds Graphviz may take for a cell's drawing; a notebook should not stall
WIDTH = 110  # characters of the HTML tables


def graph_svg(graph: Graph) -> str | None:
    """``graph`` drawn as SVG text, or None when Graphviz is missing, fails or takes too long
    (IPython then shows the text repr instead)."""
    from graphscope import render

    try:
        with tempfile.TemporaryDirectory(prefix="graphscope-") as tmp:
            return render(graph, Path(tmp) / "graph.svg", quiet=True, timeout=TIMEOUT).read_text("utf-8")
    except (GraphscopeError, OSError):
        return None


def rich_html(renderable: Any) -> str:
    """A rich renderable as an HTML ``<pre>`` with inline colours."""
    from rich.console import Console

    console = Console(
        record=True, file=io.StringIO(), width=WIDTH, force_terminal=True, color_system="truecolor"
    )
    console.print(renderable)
    return console.export_html(
        inline_styles=True,
        code_format='<pre style="font-family:monospace;font-size:12px;line-height:1.3">{code}</pre>',
    )


def steps_html(steps: Steps, max_rows: int = 40) -> str:
    """The step table (the last ``max_rows`` rows up to the stop) and the verdict."""
    from rich.console import Group

    from graphscope.rendering import steps as report

    table = report.steps_renderable(steps, max_rows=max_rows, width=WIDTH)
    return rich_html(Group(table, report.verdict(steps, total=len(steps))))


def diff_html(d: Diff) -> str:
    return rich_html(d.renderable())
