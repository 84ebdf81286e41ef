"""The one exception type graphscope raises for problems the user can fix."""

from __future__ import annotations

__all__ = ["GraphscopeError"]


class GraphscopeError(Exception):
    """A problem with the user's input or model, told in one plain sentence.

    The CLI prints the message on stderr and exits 1; anything else that escapes is a bug
    in graphscope and is reported as such.
    """
