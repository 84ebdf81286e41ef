"""A rich Console that never lets a model's text drive the terminal.

Node names, ops, scopes and notes come from files people download. Written raw to a terminal,
an ESC inside a node name is a command (clear the screen, retitle the window, OSC 52: write the
clipboard), and a bidi override reorders what is shown. rich passes those characters through
(it drops only BEL, BS, VT, FF and CR), so :class:`SafeConsole` removes them from the text of
every segment it renders. rich gives them no cell width, so tables stay aligned. JSON output
needs none of this: ``json.dumps`` writes them as ``\\u001b`` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.segment import Segment

if TYPE_CHECKING:
    from rich.console import ConsoleOptions, RenderableType

__all__ = ["UNSAFE", "SafeConsole", "strip_unsafe"]

# C0 controls but TAB and LF, DEL, C1 controls, and the bidi marks, embeddings, overrides and isolates.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strip_unsafe(text: str) -> str:
    """``text`` without the characters a terminal would obey instead of showing."""
    return UNSAFE.sub("", text)


class SafeConsole(Console):
    """A rich ``Console`` whose rendered text never carries terminal control characters."""

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            # Control segments are rich's own (cursor moves): the model's text is never one.
            if segment.control is None and UNSAFE.search(segment.text):
                yield Segment(strip_unsafe(segment.text), segment.style)
            else:
                yield segment
