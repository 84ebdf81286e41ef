"""Export a graph for other tools: Google's Model Explorer (its graph JSON), Netron (ONNX),
Graphviz (the DOT text `graphscope render` lays out).

Each exporter reads the IR only; ``onnx`` is imported when ONNX is asked for, never before.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from graphscope.errors import GraphscopeError

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["FORMATS", "Exported", "export", "write"]

FORMATS = ("model-explorer", "onnx", "dot")


@dataclass
class Exported:
    """The bytes of the exported file, and what the export had to leave out or decide."""

    data: bytes
    notes: list[str] = field(default_factory=list)


def export(graph: Graph, fmt: str) -> Exported:
    """``graph`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "model-explorer":
        from graphscope.interop import model_explorer

        return Exported(model_explorer.dumps(graph).encode("utf-8"))
    if fmt == "onnx":
        from graphscope.interop import onnx_export

        result = onnx_export.to_onnx(graph)
        return Exported(result.model.SerializeToString(), result.notes())
    if fmt == "dot":
        from graphscope.rendering.dot import DotOptions, to_dot

        # The same drawing as `graphscope render`, so `dot -Tpng` gives what render would.
        title = f"{graph.name} · {graph.framework or '?'} {graph.capture or ''}".strip()
        layout = to_dot(graph, DotOptions(title=title))
        return Exported(layout.source.encode("utf-8"), list(layout.notes))
    raise GraphscopeError(f"cannot export to {fmt!r}: the formats are {', '.join(FORMATS)}")


def write(graph: Graph, fmt: str, output: str | os.PathLike[str]) -> Exported:
    """Export and write to ``output`` atomically (nothing is written if the export fails);
    ``-`` writes a text format to stdout."""
    if str(output) == "-" and fmt == "onnx":
        raise GraphscopeError("ONNX is a binary format: give a file name with -o, not -")
    result = export(graph, fmt)
    if str(output) == "-":
        sys.stdout.flush()  # text already printed goes first
        sys.stdout.buffer.write(result.data)
        sys.stdout.buffer.flush()
        return result
    from graphscope.ir import write_atomic

    write_atomic(Path(output), result.data)
    return result
