"""The one exception type graphscope raises for problems the user can fix."""

from __future__ import annotations

__all__ = ["CaptureError", "GraphscopeError", "first_line"]


class GraphscopeError(Exception):
    """A problem with the user's input or model, told in one plain sentence.

    The CLI prints the message on stderr and exits 1; anything else that escapes is a bug
    in graphscope and is reported as such.
    """


class CaptureError(GraphscopeError):
    """A capture method refused a model that runs: another method may capture it.

    Only these let the default capture fall back to the next method; any other error (bad
    inputs, the model raising on its own) would fail the same way under every method.
    """


def first_line(exc: BaseException, limit: int | None = 240) -> str:
    """The first non-blank line of an exception's message (its type's name when it has none),
    cut to ``limit`` characters: framework errors run to pages, a sentence quotes one line."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]
