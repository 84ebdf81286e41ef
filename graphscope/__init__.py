"""graphscope: see the computational graph your deep-learning framework built.

The public Python API. Every function imports what it needs when called, so
``import graphscope`` is cheap and never imports torch or tensorflow.

>>> import graphscope
>>> g = graphscope.load("tests/golden/torch/or_gate.fx.json")   # doctest: +SKIP
>>> graphscope.render(g, "or_gate.svg")                           # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from graphscope.diffing import Diff
    from graphscope.ir import Graph
    from graphscope.stepping.records import Steps

__all__ = ["__version__", "browse", "diff", "load", "render", "save", "step", "trace"]

__version__ = "0.1.0"

PathLike = str | os.PathLike[str]


def load(path: PathLike) -> Graph:
    """Read a graph saved as graphscope JSON."""
    from graphscope import ir

    return ir.load(path)


def save(graph: Graph, path: PathLike) -> Path:
    """Write ``graph`` as graphscope JSON (atomically)."""
    from graphscope import ir

    return ir.save(graph, path)


def trace(
    target: Any,
    example_inputs: Any = None,
    *,
    fw: str | None = None,
    method: str | None = None,
    entry: str | None = None,
    name: str | None = None,
) -> Graph:
    """Capture a graph.

    ``target`` is a path (a ``model.py``, a saved graph or a model file the loader recognises)
    or a live model object, in which case ``example_inputs`` is its input tuple.

    >>> g = graphscope.trace(my_module, (torch.randn(2, 3),), fw="torch", method="export")  # doctest: +SKIP
    """
    from graphscope import loader, tracers

    if isinstance(target, (str, os.PathLike)):
        found = loader.load_target(target, fw=fw, entry=entry)
        if name:
            found.name = name
        return tracers.capture_target(found, method=method)
    if fw is None:
        fw = loader.guess_framework(target)
    return tracers.capture(target, example_inputs, fw=fw, method=method, name=name or type(target).__name__)


def step(
    target: Any,
    example_inputs: Any = None,
    *,
    fw: str | None = None,
    method: str | None = None,
    entry: str | None = None,
    keep: Any = (),
) -> Steps:
    """Run a model node by node and return its records (a summary of every value).

    ``target`` is a model file (as for :func:`trace`) or a live model with its inputs. The
    result walks like a debugger: ``steps.first_nonfinite``, ``steps.seek(node_id)``,
    ``steps.back()``, ``steps.forward()``; ``steps.graph`` is the IR with the stats attached.

    >>> steps = graphscope.stepping(model, (x,), fw="torch")      # doctest: +SKIP
    >>> steps.first_nonfinite.node, steps.first_nonfinite.born_here  # doctest: +SKIP
    ('log', True)
    """
    from graphscope import loader, stepping

    if isinstance(target, (str, os.PathLike)):
        found = loader.load_target(target, fw=fw, entry=entry)
        return stepping.step_target(found, method=method, keep=keep)
    if fw is None:
        fw = loader.guess_framework(target)
    return stepping.step(target, example_inputs, fw=fw, method=method, name=type(target).__name__, keep=keep)


def diff(a: Graph | PathLike, b: Graph | PathLike, *, ignore: Any = (), fw: str | None = None) -> Diff:
    """Match two graphs (Graphs, saved .json files or model files) and list what changed.

    >>> d = graphscope.diff("v1.json", "v2.json")                 # doctest: +SKIP
    >>> d.added, d.removed, [c["fields"] for c in d.changed]      # doctest: +SKIP
    """
    from graphscope import diffing, ir

    graphs = [g if isinstance(g, ir.Graph) else trace(g, fw=fw) for g in (a, b)]
    return diffing.diff(graphs[0], graphs[1], ignore=ignore)


def browse(graph: Graph | PathLike, *, steps: Steps | None = None) -> None:
    """Open the TUI on a graph (or a saved .json), as `graphscope tui` does."""
    from graphscope import ir
    from graphscope.tui.app import GraphscopeApp

    g = graph if isinstance(graph, ir.Graph) else ir.load(graph)
    GraphscopeApp(g, steps=steps).run()


def render(graph: Graph | PathLike, output: PathLike, **options: Any) -> Path:
    """Draw ``graph`` (a Graph or a saved .json) to an SVG file."""
    from graphscope import ir
    from graphscope.rendering import svg

    g = graph if isinstance(graph, ir.Graph) else ir.load(graph)
    return svg.render(g, output, **options)
