"""The node table: a Line API widget, so only the visible rows are ever rendered (50k+ nodes)."""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from graphscope.rendering.steps import short_op
from graphscope.rendering.terminal import one_line
from graphscope.tui.model import Row

# Most telling first: narrow terminals cut from the right.
COLUMNS = (("id", 22), ("op", 14), ("values", 26), ("shape", 14), ("dtype", 8), ("kind", 6))
# A graph without values (browsing a capture) has no use for their column: the shape moves left.
COLUMNS_WITHOUT_VALUES = tuple(c for c in COLUMNS if c[0] != "values")

_STYLES = {
    "input": Style(color="green"),
    "output": Style(color="blue"),
    "param": Style(color="bright_black"),
    "const": Style(color="bright_black"),
    "control": Style(color="yellow"),
    "op": Style(),
}
_CURSOR = Style(reverse=True)
_BAD = Style(color="red", bold=True)
_MARK = Style(color="magenta", bold=True)


def _cell(text: str, width: int) -> str:
    text = one_line(text)  # a model's name with a newline, an ESC, a bidi override
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


def header_text(columns: tuple[tuple[str, int], ...] = COLUMNS) -> str:
    return " ".join(_cell(name, width) for name, width in columns)


class NodeTable(ScrollView, can_focus=True):
    """Rows of nodes with a cursor; posts Highlighted as the cursor moves and Selected on Enter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("pageup", "move(-20)", show=False),
        Binding("pagedown", "move(20)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
        # ←/→ walk the current node's edges (the app's), not a horizontal scroll.
        Binding("left", "app.edge(-1)", show=False),
        Binding("right", "app.edge(1)", show=False),
        Binding("enter", "app.follow", "follow edge", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        def __init__(self, row: Row | None) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None, columns: tuple[tuple[str, int], ...] = COLUMNS) -> None:
        super().__init__(id=id)
        self.columns = columns
        self.rows: list[Row] = []
        self.marks: dict[str, Style] = {}  # node id -> style (breakpoints, the current step, diff status)
        self.step_of: dict[str, int] = {}  # step mode: node id -> its step; values after `shown_until` hidden
        self.shown_until: int | None = None

    # -- content --------------------------------------------------------------------------

    def set_rows(self, rows: list[Row], keep: str | None = None) -> None:
        """Show ``rows``; the cursor stays on ``keep`` when it is among them."""
        self.rows = rows
        self.virtual_size = Size(0, len(rows))  # columns are cut to the width: no sideways scroll
        where = next((i for i, r in enumerate(rows) if r.id == keep), 0) if keep else 0
        top, height = int(self.scroll_offset.y), self.scrollable_content_region.height
        self.cursor = where
        if not top <= where < top + height:
            # a row out of sight: brought near the top, a row or two above it for context
            self.call_after_refresh(self.scroll_to, y=max(0, where - 2), animate=False)
        self.refresh()

    @property
    def current(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def go_to(self, node_id: str) -> bool:
        for i, r in enumerate(self.rows):
            if r.id == node_id:
                self.cursor = i
                return True
        return False

    # -- keys and mouse -------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))

    def action_jump(self, where: int) -> None:
        if self.rows:
            self.cursor = where if where >= 0 else len(self.rows) - 1

    def on_click(self, event: Click) -> None:
        row = int(self.scroll_offset.y) + event.y
        if 0 <= row < len(self.rows):
            self.cursor = row

    def watch_cursor(self, old: int, new: int) -> None:
        height = max(self.scrollable_content_region.height, 1)
        top = int(self.scroll_offset.y)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False)
        else:  # only the two rows whose cursor state changed are redrawn
            self.refresh_line(old)  # virtual coordinates
            self.refresh_line(new)
        self.post_message(self.Highlighted(self.current))

    # -- drawing --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.size.width
        if index >= len(self.rows):
            return Strip.blank(width)
        r = self.rows[index]
        hidden = self.shown_until is not None and self.step_of.get(r.id, -1) > self.shown_until
        style = _BAD if r.nonfinite and not hidden else _STYLES.get(r.kind, Style())
        mark = self.marks.get(r.id)
        if mark is not None:
            style = style + mark
        if index == self.cursor:
            style = style + _CURSOR
        stats = r.stats
        if self.shown_until is not None and self.step_of.get(r.id, -1) > self.shown_until:
            stats, style = "· not run yet", style + Style(dim=True)
        cells = {"id": r.id, "op": short_op(r.op), "values": stats, "shape": r.shape, "dtype": r.dtype}
        text = " ".join(_cell(cells.get(name, r.kind), w) for name, w in self.columns)
        return Strip([Segment(text[:width].ljust(width), style)])
