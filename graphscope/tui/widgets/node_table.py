"""The node table: a Line API widget, so only the visible rows are ever rendered (50k+ nodes)."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

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


class Column(NamedTuple):
    """A table column: the width it never goes below, the width it gives way to first when
    space is short, the most it takes, and how readily it goes altogether (0: never; the
    highest goes first)."""

    name: str
    least: int
    comfortable: int
    most: int
    drop: int = 0


# Most telling first. The mark column holds a glyph: ● a breakpoint, ▶ the current step, and
# the diff's + - ~ ! (colour alone does not show on every terminal, or to every eye).
COLUMNS = (
    Column("", 1, 1, 1),
    Column("id", 10, 20, 40),
    Column("op", 8, 14, 24),
    Column("values", 14, 24, 30),
    Column("shape", 9, 14, 20),
    Column("dtype", 7, 8, 8, drop=1),
    Column("kind", 5, 7, 7, drop=2),
)
# A graph without values (browsing a capture) has no use for their column: the shape moves left.
COLUMNS_WITHOUT_VALUES = tuple(c for c in COLUMNS if c.name != "values")
_SHRINKS = ("id", "op", "values", "shape")  # the columns that give way


def fit_columns(
    columns: tuple[Column, ...], width: int, content: dict[str, int] | None = None
) -> list[tuple[str, int]]:
    """Widths for ``columns`` in ``width`` characters.

    Each column is as wide as its longest cell (``content``: name -> length) within its least
    and most. When that is too wide, id, op, values and shape give way down to their
    comfortable widths, then the droppable columns go (kind, then dtype), then the four give
    way down to their least; each gives in proportion to what it has above the floor.

    >>> fit_columns(COLUMNS_WITHOUT_VALUES, 80, {"id": 30, "op": 12, "shape": 9, "dtype": 7, "kind": 6})
    [('', 1), ('id', 30), ('op', 12), ('shape', 9), ('dtype', 7), ('kind', 6)]
    >>> fit_columns(COLUMNS_WITHOUT_VALUES, 60, {"id": 30, "op": 24, "shape": 9, "dtype": 7, "kind": 6})
    [('', 1), ('id', 20), ('op', 14), ('shape', 9), ('dtype', 7)]
    >>> fit_columns(COLUMNS, 60, {"id": 30, "op": 12, "values": 24, "shape": 9, "dtype": 7, "kind": 6})
    [('', 1), ('id', 17), ('op', 10), ('values', 19), ('shape', 9)]
    """
    content = content or {}
    want = {c.name: max(c.least, min(c.most, max(content.get(c.name, c.most), len(c.name)))) for c in columns}
    kept = list(columns)

    def over() -> int:
        return sum(want[c.name] for c in kept) + len(kept) - 1 - width

    def give_way(floor: dict[str, int]) -> None:
        spare = {c.name: max(0, want[c.name] - floor[c.name]) for c in kept if c.name in floor}
        room, excess = sum(spare.values()), over()
        if excess <= 0 or not room:
            return
        for name, extra in spare.items():
            want[name] -= min(extra, -(-excess * extra // room))  # rounded up
        if "id" in want and over() < 0:  # rounding took a character too many: back to the id
            want["id"] = min(want["id"] - over(), max(want["id"], content.get("id", 0)))

    give_way({c.name: c.comfortable for c in columns if c.name in _SHRINKS})
    for c in sorted((c for c in columns if c.drop), key=lambda c: -c.drop):
        if over() <= 0:
            break
        if over() <= want[c.name] - c.least:  # cutting this column short is enough
            want[c.name] -= over()
            break
        kept.remove(c)
    give_way({c.name: c.least for c in columns if c.name in _SHRINKS})
    return [(c.name, want[c.name]) for c in kept]


_STYLES = {
    "input": Style(color="green"),
    "output": Style(color="blue"),
    "param": Style(color="bright_black"),
    "const": Style(color="bright_black"),
    "control": Style(color="yellow"),
    "op": Style(),
}
_CURSOR = Style(reverse=True)
# The mark column's glyphs stand out from their row: a breakpoint red, the current step magenta.
_GLYPH_STYLES = {"●": Style(color="bright_red", bold=True), "▶": Style(color="magenta", bold=True)}
_GLYPH_DEFAULT = Style(bold=True)
_BAD = Style(color="red", bold=True)
_MARK = Style(color="magenta", bold=True)


def _cell(text: str, width: int) -> str:
    text = one_line(text)  # a model's name with a newline, an ESC, a bidi override
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


def header_text(fitted: list[tuple[str, int]]) -> str:
    return " ".join(_cell(name, width) for name, width in fitted)


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

    class ColumnsFitted(Message):
        """The columns were fitted to a new width (or new content): ``header`` heads them."""

        def __init__(self, table: NodeTable, header: str) -> None:
            super().__init__()
            self.table = table
            self.header = header

        @property
        def control(self) -> NodeTable:
            return self.table

    def __init__(self, *, id: str | None = None, columns: tuple[Column, ...] = COLUMNS) -> None:
        super().__init__(id=id)
        self.columns = columns
        self.content_widths: dict[str, int] = {}  # column -> its longest cell, over the level
        self.fitted: list[tuple[str, int]] = [(c.name, c.least) for c in columns]
        self.glyphs: dict[str, str] = {}  # node id -> the mark column's glyph
        self.rows: list[Row] = []
        self.marks: dict[str, Style] = {}  # node id -> style (breakpoints, the current step, diff status)
        self.step_of: dict[str, int] = {}  # step mode: node id -> its step; values after `shown_until` hidden
        self.shown_until: int | None = None

    # -- content --------------------------------------------------------------------------

    def fit(self, content_widths: dict[str, int] | None = None) -> None:
        """Fit the columns to the width (and, given them, to new content widths)."""
        if content_widths is not None:
            self.content_widths = content_widths
        fitted = fit_columns(self.columns, max(self.scrollable_content_region.width, 1), self.content_widths)
        if fitted != self.fitted:
            self.fitted = fitted
            self.refresh()
        self.post_message(self.ColumnsFitted(self, header_text(fitted)))

    def on_resize(self) -> None:
        self.fit()
        # Shorter now (a pane above took rows, the terminal shrank): the cursor stays in sight.
        height, top = self.scrollable_content_region.height, int(self.scroll_offset.y)
        if self.rows and height > 0 and not top <= self.cursor < top + height:
            self.scroll_to(y=max(0, self.cursor - height + 1), animate=False)

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
        glyph = self.glyphs.get(r.id, " ")
        cells = {
            "": glyph,
            "id": r.id,
            "op": short_op(r.op),
            "values": stats,
            "shape": r.shape,
            "dtype": r.dtype,
        }
        text = " ".join(_cell(cells.get(name, r.kind), w) for name, w in self.fitted)
        text = text[:width].ljust(width)
        if glyph == " " or not self.fitted or self.fitted[0][0] != "":
            return Strip([Segment(text, style)])
        return Strip(
            [Segment(text[0], style + _GLYPH_STYLES.get(glyph, _GLYPH_DEFAULT)), Segment(text[1:], style)]
        )
