"""`graphscope diff --svg`: both graphs side by side, each node coloured by what the diff found."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from graphscope.ir import write_atomic
from graphscope.rendering.dot import CLUSTER_COLOR, FONT, DotOptions, Layout, to_dot
from graphscope.rendering.svg import DEFAULT_TIMEOUT, svg_text

if TYPE_CHECKING:
    from graphscope.diffing import Diff
    from graphscope.overlay import Overlay

__all__ = ["COLORS", "diff_dot", "render"]

COLORS = {"added": "#b2f2bb", "removed": "#ffc9c9", "changed": "#ffc078", "never ran": "#dee2e6"}


def diff_dot(d: Diff, executed: Overlay | None = None) -> Layout:
    """One DOT drawing: A (removed and changed coloured) beside B (added and changed); with an
    eager run laid over a static capture, the static ops that never ran are greyed."""
    fill_a = {x: COLORS["removed"] for x in d.removed}
    fill_b = {y: COLORS["added"] for y in d.added}
    if executed is not None:
        static_fill = fill_a if executed.static is d.a else fill_b
        static_fill.update({n: COLORS["never ran"] for n in executed.never_ran})
    for c in d.changed:
        fill_a[c["a"]] = fill_b[c["b"]] = COLORS["changed"]
    fd = d.first_divergence
    sides = []
    for tag, graph, fill, diverged in (
        ("a", d.a, fill_a, fd["a"] if fd else None),
        ("b", d.b, fill_b, fd["b"] if fd else None),
    ):
        title = f"{tag.upper()}: {graph.name} · {graph.framework or '?'} {graph.capture or ''}".strip()
        sides.append(
            to_dot(
                graph,
                DotOptions(
                    fill=fill,
                    highlight=[diverged] if diverged else [],
                    name_prefix=tag,
                    legend=False,
                    title=title,
                ),
            )
        )
    lines = [
        "digraph graphscope_diff {",
        f'  graph [bgcolor="transparent" fontname="{FONT}" newrank=true compound=true]',
    ]
    for tag, layout in zip("ab", sides, strict=True):
        body = layout.source.strip().splitlines()[1:-1]  # inside `digraph graphscope { ... }`
        lines.append(f"  subgraph cluster_{tag} {{")
        lines.extend("  " + line for line in body)
        lines.append(f'    style="rounded" color="{CLUSTER_COLOR}"')
        lines.append("  }")
    lines.append(_legend(d, executed))
    lines.append("}")
    notes = [n for layout in sides for n in layout.notes]
    return Layout("\n".join(lines) + "\n", sum(s.drawn_nodes for s in sides), None, notes)


def _legend(d: Diff, executed: Overlay | None = None) -> str:
    rows = [
        ("added", COLORS["added"], len(d.added)),
        ("removed", COLORS["removed"], len(d.removed)),
        ("changed", COLORS["changed"], len(d.changed)),
    ]
    if executed is not None:
        rows.append(("never ran", COLORS["never ran"], len(executed.never_ran)))
    cells = "".join(
        f'<TD BGCOLOR="{color}" BORDER="1">&#160;{name}: {count}&#160;</TD>' for name, color, count in rows
    )
    if d.first_divergence is not None:
        cells += '<TD BGCOLOR="#ff8787" BORDER="1">&#160;values diverge first&#160;</TD>'
    return (
        f'  diff_legend [shape=plaintext fontname="{FONT}" fontsize=10 '
        f'label=<<TABLE BORDER="0" CELLSPACING="4"><TR>{cells}</TR></TABLE>>]'
    )


def render(
    d: Diff,
    output: str | os.PathLike[str],
    *,
    executed: Overlay | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Draw the diff to an SVG file (written atomically)."""
    return write_atomic(output, svg_text(diff_dot(d, executed), timeout=timeout))
