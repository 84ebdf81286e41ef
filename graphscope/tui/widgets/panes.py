"""The right-hand panes: the selected node's neighbourhood drawn with box characters, and its
details (attributes, inputs and outputs, the user's source lines, the value summary)."""

from __future__ import annotations

import io
import linecache
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from graphscope.rendering.steps import format_number, nonfinite_text, short_op
from graphscope.rendering.terminal import one_line
from graphscope.rendering.text import format_outputs
from graphscope.tui.model import Level, neighbourhood

if TYPE_CHECKING:
    from rich.console import RenderableType

BOX = 16  # characters inside a neighbour's box, at most


def _box_row(ids: list[str], level: Level, chosen: str | None, box: int) -> list[Text]:
    """Three lines drawing ``ids`` as boxes side by side; ``chosen`` is drawn reversed."""
    top, mid, bottom = Text(), Text(), Text()
    for node_id in ids:
        if node_id.startswith("+") and node_id not in level.index:
            mid.append(f"{node_id} more", style="dim")  # the ring's overflow: text, not a box
            continue
        shown = one_line(node_id)
        label = (shown if len(shown) <= box else shown[: box - 1] + "…").center(box)
        style = "bold reverse" if node_id == chosen else ""
        top.append("┌" + "─" * box + "┐ ", style=style)
        mid.append("│" + label + "│ ", style=style)
        bottom.append("└" + "─" * box + "┘ ", style=style)
    return [top, mid, bottom]


def draw_neighbourhood(level: Level, node_id: str, chosen: str | None, width: int = 54) -> RenderableType:
    """The node, its inputs above and its outputs below, two hops each way, fitted to ``width``."""
    per_row = max(1, min(3, (width - 9) // (BOX + 3)))  # room for a "+N more" after the boxes
    box = max(6, min(BOX, (width - 9) // per_row - 3))
    ring = neighbourhood(level, node_id, width=per_row)
    lines: list[Text] = []
    for ids in reversed(ring["up"]):
        lines += _box_row(ids, level, chosen, box)
        lines.append(Text("        │ ▼"))
    row = level.rows[level.index[node_id]]
    lines.append(Text(f"  ▶ {one_line(node_id)}  ({short_op(row.op)} {row.shape})", style="bold cyan"))
    for ids in ring["down"]:
        lines.append(Text("        │ ▼"))
        lines += _box_row(ids, level, chosen, box)
    if not ring["up"] and not ring["down"]:
        lines.append(Text("  (no edges)", style="dim"))
    return Group(*lines)


def _line_of_ids(arrow: str, ids: list[str], chosen: str | None, width: int) -> Text:
    """``↑ a  b  c`` in ``width`` columns, ``chosen`` reversed and kept in sight, cut with …"""
    shown = [one_line(i) for i in ids]
    if chosen in ids:
        at = ids.index(chosen)
        # drop neighbours from the front until the chosen one fits
        while at > 0 and len(arrow) + 2 + sum(len(s) + 2 for s in shown[: at + 1]) > width:
            ids, shown, at = ids[1:], shown[1:], at - 1
            arrow = arrow.rstrip("…") + "…"
    line = Text(arrow + " ", style="dim")
    for node_id, text in zip(ids, shown, strict=True):
        line.append(text, style="bold reverse" if node_id == chosen else "")
        line.append("  ")
    line.rstrip()
    line.truncate(width, overflow="ellipsis")
    return line


def draw_compact_neighbourhood(level: Level, node_id: str, chosen: str | None, width: int) -> RenderableType:
    """One hop each way on three lines (inputs, the node, users): for small terminals."""
    row = level.rows[level.index[node_id]]
    ups, downs = level.preds.get(node_id, []), level.succs.get(node_id, [])
    me = Text(f"▶ {one_line(node_id)}  ({short_op(row.op)} {row.shape})", style="bold cyan")
    me.truncate(width, overflow="ellipsis")
    lines = [_line_of_ids("↑", ups, chosen, width)] if ups else [Text("↑ (no inputs)", style="dim")]
    lines.append(me)
    lines.append(_line_of_ids("↓", downs, chosen, width) if downs else Text("↓ (no users)", style="dim"))
    return Group(*lines)


class Neighbourhood(Static):
    """Draws the neighbourhood; ←/→ choose an edge (a neighbour one hop away), Enter follows it.

    Two hops each way in boxes; ``compact`` (a small terminal) one hop each way on three lines.
    """

    compact: reactive[bool] = reactive(False)

    def watch_compact(self, compact: bool) -> None:
        self.set_class(compact, "-compact")

    def show(self, level: Level, node_id: str, chosen: str | None) -> None:
        width = self.content_region.width or 54
        if self.compact:
            self.update(draw_compact_neighbourhood(level, node_id, chosen, width))
        else:
            self.update(draw_neighbourhood(level, node_id, chosen, width))


def _sparkbar(value: float | None, lo: float | None, hi: float | None, width: int = 20) -> str:
    """Where ``value`` sits between ``lo`` and ``hi``: ``──────●─────``."""
    if value is None or lo is None or hi is None or hi <= lo:
        return ""
    at = int((value - lo) / (hi - lo) * (width - 1))
    return "─" * at + "●" + "─" * (width - 1 - at)


def details(level: Level, node: dict[str, Any]) -> RenderableType:
    """Everything about one node, top to bottom."""
    parts: list[Any] = []
    head = Text(one_line(node["id"]), style="bold")
    head.append(one_line(f" · {node['op']} → {node['canonical_op']} · {node['kind']}"), style="not bold")
    if node["phase"] != "forward":
        head.append(f" · {node['phase']}", style="not bold magenta")
    parts.append(head)
    gradient = level.gradients.get(node["id"])
    forward = level.graph.node(node["grad_of"]) if node["grad_of"] in level.index else None
    source = node["source"] or (forward or {}).get("source")  # an AccumulateGrad: its parameter's
    if node["grad_of"] is not None and node["phase"] == "optimizer":
        parts.append(Text(f"update of {one_line(node['grad_of'])}   (g jumps there)", style="magenta"))
        parts.append(_update_line(node["attrs"]))
    elif node["grad_of"] is not None:
        line = Text(f"grad of  {one_line(node['grad_of'])}", style="magenta")
        if forward is not None:
            line.append(one_line(f" ({forward['op']})"))
            if forward["source"] and forward["source"].get("file"):
                line.append(one_line(f" at {forward['source']['file']}:{forward['source'].get('line')}"))
        line.append("   (g jumps there)", style="dim")
        parts.append(line)
    elif gradient is not None:
        parts.append(Text(f"gradient {one_line(gradient)}   (g jumps there)", style="magenta"))
    if node["name"] != node["id"]:
        parts.append(Text(f"name   {one_line(node['name'])}"))
    if node["scope"]:
        parts.append(Text(f"scope  {one_line('.'.join(node['scope']))}"))
    if node["outputs"]:
        parts.append(Text(f"out    {format_outputs(node['outputs'])}"))
    for i, out in enumerate(node["outputs"]):
        stats = out.get("stats")
        if isinstance(stats, dict):
            line = Text(f"value{i if len(node['outputs']) > 1 else ''}  ")
            bad = nonfinite_text(stats)
            if bad:
                line.append(bad + "  ", style="bold red")
            line.append(
                f"min {format_number(stats.get('min'))}  max {format_number(stats.get('max'))}  "
                f"mean {format_number(stats.get('mean'))}  std {format_number(stats.get('std'))}  "
                f"zeros {stats.get('zeros')}"
            )
            parts.append(line)
            bar = _sparkbar(stats.get("mean"), stats.get("min"), stats.get("max"))
            if bar:
                parts.append(Text(f"       {bar} mean in [min, max]", style="dim"))
    preds, succs = level.preds.get(node["id"], []), level.succs.get(node["id"], [])
    for title, ids in (("inputs ", preds), ("users  ", succs)):
        if ids:
            parts.append(
                Text.assemble(
                    (title, "bold"), one_line(", ".join(ids[:12])) + (" …" if len(ids) > 12 else "")
                )
            )
    if node["subgraphs"]:
        parts.append(Text(f"subgraphs {one_line(', '.join(node['subgraphs']))}   (> enters)", style="yellow"))
    if node["attrs"]:
        attrs = node["attrs"]
        lines = ["\n  " + one_line(f"{key} = {attrs[key]}")[:90] for key in list(attrs)[:20]]
        parts.append(Text.assemble(("attrs", "bold"), "".join(lines)))
    if source and source.get("file"):
        parts.append(_source_lines(source["file"], source.get("line")))
    return Group(*parts)


def _update_line(attrs: dict[str, Any]) -> Text:
    """An optimizer step's size: ‖new − old‖ / ‖old‖ (about 1e-3 is a usual step; near 1 or
    above, the update rewrites the weight)."""
    ratio = attrs.get("update_to_weight")
    line = Text("update/weight ", style="bold")
    line.append(format_number(ratio) if ratio is not None else "- (the weight was 0)")
    line.append(
        f"   ‖Δ‖ {format_number(attrs.get('update_norm'))}  ‖w‖ {format_number(attrs.get('weight_norm'))}",
        style="dim",
    )
    return line


def _source_lines(filename: str, line: int | None, around: int = 3) -> RenderableType:
    out = Text.assemble(("source ", "bold"), f"{filename}:{line}")
    if not line:
        return out
    for n in range(max(1, line - around), line + around + 1):
        text = linecache.getline(filename, n).rstrip("\n")
        if not text and n > line:
            break
        marker = "▶" if n == line else " "
        out.append(f"\n{marker}{n:5d} {text}", style="bold yellow" if n == line else "dim")
    return out


def diff_header(status: str | None, side: str, other: str | None, fields: Any, diff: Any) -> RenderableType:
    """The diff's view of a node: its status, its counterpart on the other side, the changes."""
    head = Text()
    head.append(f"{status or 'unchanged'}", style="bold reverse" if status else "bold")
    head.append(f"  counterpart in {'A' if side == 'b' else 'B'}: {one_line(other or '(none)')}")
    for key, (before, after) in (fields or {}).items():
        head.append(f"\n  {key}: {str(before)[:60]} → {str(after)[:60]}", style="yellow")
    fd = diff.first_divergence
    if status == "diverged" and fd is not None:
        head.append(f"\n  values first diverge here: {fd['reason']}", style="bold magenta")
    return head


class Details(Static):
    def show(
        self, level: Level, node_id: str, *, not_run: bool = False, above: RenderableType | None = None
    ) -> None:
        node = level.graph.node(node_id)
        parts: list[Any] = [above] if above is not None else []
        if not_run:  # step mode, before this node's step: no values yet
            node = {
                **node,
                "outputs": [{k: v for k, v in o.items() if k != "stats"} for o in node["outputs"]],
            }
            parts.append(Text("not run yet (n steps, c continues)", style="dim italic"))
        parts.append(details(level, node))
        self.shown = Group(*parts)
        self.update(self.shown)

    def plain_text(self, width: int = 80) -> str:
        """What the pane shows, as plain text (for tests and copy-paste)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=io.StringIO())
        console.print(getattr(self, "shown", ""))
        return console.export_text()
