"""A rich Console that never lets a model's text drive the terminal.

Node names, ops, scopes and notes come from files people download. Written raw to a terminal,
an ESC inside a node name is a command (clear the screen, retitle the window, OSC 52: write the
clipboard), and a bidi override reorders what is shown. rich passes those characters through
(it drops only BEL, BS, VT, FF and CR), so :class:`SafeConsole` removes them from the text of
every segment it renders. rich gives them no cell width, so tables stay aligned. JSON output
keeps them, escaped: ``json.dumps`` writes C0 controls as ``\\u001b``, and :func:`escape_json`
does the same for DEL, the C1 controls and the bidi marks, which it leaves raw.

The TUI draws through Textual, which has the same short list: :func:`harden_text_stripping`
lengthens rich's and Textual's own lists, so that every Text and Content drops them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.segment import Segment

if TYPE_CHECKING:
    from rich.console import ConsoleOptions, RenderableType

__all__ = ["UNSAFE", "SafeConsole", "escape_json", "harden_text_stripping", "one_line", "strip_unsafe"]

# C0 controls but TAB and LF, DEL, C1 controls, and the bidi marks, embeddings, overrides and isolates.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_CODEPOINTS = [
    *range(0x00, 0x09),
    *range(0x0B, 0x20),
    *range(0x7F, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]


def escape_json(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with every :data:`UNSAFE`
    character written as a ``\\uXXXX`` escape: the same document, inert in a terminal. (Such a
    character can only be inside a JSON string, where the escape means the same character.)"""
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def strip_unsafe(text: str) -> str:
    """``text`` without the characters a terminal would obey instead of showing."""
    return UNSAFE.sub("", text)


def one_line(text: str) -> str:
    """``text`` for a place that holds one line (a table cell, a box, a tree label): a newline
    in a node's name is shown as ``↵`` instead of breaking the layout, a tab as a space."""
    if text.isprintable():
        return text
    return strip_unsafe(text.replace("\r\n", "↵").replace("\n", "↵").replace("\r", "↵").replace("\t", " "))


class SafeConsole(Console):
    """A rich ``Console`` whose rendered text never carries terminal control characters."""

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            # Control segments are rich's own (cursor moves): the model's text is never one.
            if segment.control is None and UNSAFE.search(segment.text):
                yield Segment(strip_unsafe(segment.text), segment.style)
            else:
                yield segment


def harden_text_stripping() -> None:
    """Make rich's ``Text`` and Textual's ``Content`` drop every :data:`UNSAFE` character.

    Both strip control codes through a module-level translation table (BEL, BS, VT, FF, CR);
    this adds the rest to those tables. Newlines and tabs stay. Where a version of either
    library has no such table, nothing changes (and graphscope's CLI tables still go through
    :class:`SafeConsole`).
    """
    import importlib

    extra = dict.fromkeys(_UNSAFE_CODEPOINTS)
    for module_name in ("rich.control", "textual.content"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        table = getattr(module, "_CONTROL_STRIP_TRANSLATE", None)
        if isinstance(table, dict):
            table.update(extra)
