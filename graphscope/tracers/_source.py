"""Which frames of a stack are the user's own code, and how to name their files portably."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

__all__ = ["is_user_file", "relative"]


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    dirs = [str(Path(__file__).resolve().parents[1])]  # graphscope itself
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            dirs.append(p)
    dirs.append(str(Path(contextlib.__file__).parent))  # the standard library
    return tuple(dirs)


@functools.lru_cache(maxsize=4096)
def is_user_file(filename: str) -> bool:
    """True for the user's own code: not graphscope, not the standard library, not an installed
    package (torch, tensorflow, keras, transformers...)."""
    if filename.startswith("<"):
        return False
    try:
        resolved = str(Path(filename).resolve())
    except OSError:
        resolved = filename
    return not resolved.startswith(_library_dirs())


def relative(filename: str) -> str:
    """A path relative to the working directory when it lies below it (portable goldens)."""
    return _relative(filename, str(Path.cwd()))


@functools.lru_cache(maxsize=4096)
def _relative(filename: str, cwd: str) -> str:
    # The path as given first: a file reached through a symlinked folder below the working
    # directory is named through that folder, not by where the link points.
    for resolve in (False, True):
        try:
            path = Path(filename).resolve() if resolve else Path(os.path.abspath(filename))
            return str(path.relative_to(cwd))
        except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
            continue
    return filename
