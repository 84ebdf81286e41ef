"""Run Graphviz's `dot` on the DOT from :mod:`graphscope.rendering.dot`, within time and memory limits."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphscope.errors import GraphscopeError
from graphscope.ir import write_atomic
from graphscope.rendering.dot import DotOptions, Layout, to_dot

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["DEFAULT_TIMEOUT", "find_dot", "render", "svg_text"]

DEFAULT_TIMEOUT = 60.0  # seconds for one Graphviz layout
MEMORY_LIMIT = 4 << 30  # bytes of address space for `dot`

_INSTALL_HINT = "install Graphviz (./setup.sh does, or: apt-get install graphviz)"


# Above how many drawn nodes dot's network simplex is bounded from the start; below, a layout
# that takes more than UNBOUNDED_TRY seconds is done again bounded. Keras' ConvNeXtTiny drew 802
# nodes at batch 1 (bounded: 0.4 s) and 799 at batch 2, which took 8.3 s unbounded.
NSLIMIT_ABOVE = 800
UNBOUNDED_TRY = 2.0


def find_dot() -> str:
    """The path of Graphviz's ``dot``, or one sentence saying how to get it."""
    dot = os.environ.get("GRAPHSCOPE_DOT") or shutil.which("dot")
    if not dot or not os.path.exists(dot):
        raise GraphscopeError(
            f"Graphviz's `dot` program is not installed, so no SVG can be drawn: {_INSTALL_HINT}"
        )
    return dot


def _limited(args: list[str]) -> list[str]:
    """``args`` run under a memory limit. A shell's ``ulimit`` sets it rather than a
    ``preexec_fn``: that would make Python fork the whole process (with torch or TensorFlow
    loaded, 19 ms a call) instead of spawning `dot` (2 ms with the shell)."""
    sh = "/bin/sh"
    if sys.platform == "win32" or not os.path.exists(sh):
        return args
    return [sh, "-c", f'ulimit -v {MEMORY_LIMIT >> 10} 2>/dev/null; exec "$@"', "sh", *args]


def svg_text(layout: Layout, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Lay out DOT text and return the SVG."""
    dot = find_dot()
    args = [dot, "-Tsvg"]
    source = layout.source.encode("utf-8")
    # Network-simplex iterations dominate on big graphs; bounding them costs little time but
    # some room (ResNet-50's training step: 5,143 points wide unbounded, 6,688 bounded). Big
    # graphs are bounded at once; middling ones get UNBOUNDED_TRY seconds unbounded first.
    try:
        if layout.drawn_nodes > NSLIMIT_ABOVE:
            proc = _run_dot([*args, *_BOUNDED], source, timeout)
        else:
            try:
                proc = _run_dot(args, source, min(timeout, UNBOUNDED_TRY))
            except subprocess.TimeoutExpired:
                if timeout <= UNBOUNDED_TRY:
                    raise
                proc = _run_dot([*args, *_BOUNDED], source, timeout - UNBOUNDED_TRY)
    except subprocess.TimeoutExpired:
        raise GraphscopeError(
            f"Graphviz did not finish laying out {layout.drawn_nodes} nodes within {timeout:g} s; "
            "draw fewer with --collapse DEPTH"
        ) from None
    except OSError as exc:
        raise GraphscopeError(
            f"cannot run Graphviz's `dot` ({dot}): {exc.strerror or exc}; {_INSTALL_HINT}"
        ) from None
    if proc.returncode in (126, 127) and not proc.stdout:  # the shell could not exec `dot`
        raise GraphscopeError(f"cannot run Graphviz's `dot` ({dot}); {_INSTALL_HINT}")
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        first = message[-1] if message else f"exit code {proc.returncode}"
        raise GraphscopeError(f"Graphviz failed to lay out the graph: {first}")
    return _clean(proc.stdout.decode("utf-8"))


_BOUNDED = ("-Gnslimit=2", "-Gnslimit1=2", "-Gmclimit=0.5")


def _run_dot(args: list[str], source: bytes, timeout: float) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(_limited(args), input=source, capture_output=True, timeout=timeout, check=False)


_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)


def _clean(svg: str) -> str:
    """Drop Graphviz's comments (its version, the generated node names): stable bytes."""
    return _COMMENT.sub("", svg)


def render(
    graph: Graph,
    output: str | os.PathLike[str],
    *,
    collapse: int | None = None,
    highlight: list[str] | None = None,
    show_params: bool = False,
    legend: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    quiet: bool = False,
    highlight_label: str | None = None,
    fold: bool = True,
    **_: Any,
) -> Path:
    """Draw ``graph`` to an SVG file at ``output`` (written atomically)."""
    missing = [h for h in highlight or [] if h not in graph]
    if missing:
        raise GraphscopeError(f"--highlight names no node of this graph: {', '.join(missing[:5])}")
    options = DotOptions(
        collapse=collapse,
        highlight=list(highlight or []),
        show_params=show_params,
        legend=legend,
        fold=fold,
        title=f"{graph.name} · {graph.framework or '?'} {graph.capture or ''}".strip(),
    )
    if highlight_label:
        options.highlight_label = highlight_label
    layout = to_dot(graph, options)
    if not quiet:
        for note in layout.notes:
            print(f"graphscope: {note}", file=sys.stderr)
    text = svg_text(layout, timeout=timeout)
    return write_atomic(output, text)
