"""The one exception type graphscope raises for problems the user can fix."""

from __future__ import annotations

__all__ = ["GraphscopeError", "first_line"]


class GraphscopeError(Exception):
    """A problem with the user's input or model, told in one plain sentence.

    The CLI prints the message on stderr and exits 1; anything else that escapes is a bug
    in graphscope and is reported as such.
    """


def first_line(exc: BaseException, limit: int | None = 240) -> str:
    """The first non-blank line of an exception's message (its type's name when it has none),
    cut to ``limit`` characters: framework errors run to pages, a sentence quotes one line."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]
