"""graphscope: see the computational graph your deep-learning framework built.

The public Python API, the same operations as the CLI: :func:`trace` captures a graph
(an :class:`graphscope.ir.Graph`), :func:`save` / :func:`load` write and read it as JSON,
:func:`render` draws it to SVG, :func:`step` runs a model node by node
(:class:`graphscope.stepping.Steps`), :func:`diff` compares two graphs
(:class:`graphscope.diffing.Diff`) and :func:`browse` opens the TUI. Every function imports
what it needs when called, so ``import graphscope`` is cheap and never imports torch or
tensorflow. Errors in the input are :class:`graphscope.errors.GraphscopeError`, one sentence.

In Jupyter a Graph displays as its SVG diagram, Steps and Diff as the CLI's tables.

>>> import graphscope
>>> g = graphscope.trace("examples/or_gate_torch.py", fw="torch", method="export")  # doctest: +SKIP
>>> g                                                                               # doctest: +SKIP
<Graph 'or_gate_torch' torch/export: 14 nodes, 13 edges, 0 subgraphs>
>>> graphscope.render(g, "or_gate.svg")                                             # doctest: +SKIP
PosixPath('or_gate.svg')
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from graphscope.diffing import Diff
    from graphscope.ir import Graph
    from graphscope.stepping.records import Steps

__all__ = ["__version__", "browse", "diff", "load", "render", "save", "step", "trace", "watch"]

__version__ = "0.1.0"

PathLike = str | os.PathLike[str]


def load(path: PathLike) -> Graph:
    """Read a graph saved as graphscope JSON (by :func:`save` or ``graphscope trace -o``).

    The file is validated; a wrong one raises ``GraphscopeError`` naming the file and the
    problem. Only ``.json`` is read here: other graph files go through :func:`trace`.

    >>> g = graphscope.load("or_gate.json")        # doctest: +SKIP
    >>> g.name, len(g), g.number_of_edges()         # doctest: +SKIP
    ('or_gate_torch', 14, 13)
    """
    from graphscope import ir

    return ir.load(path)


def save(graph: Graph, path: PathLike) -> Path:
    """Write ``graph`` as graphscope JSON and return the path written.

    The write is atomic (a temporary file renamed over ``path``), and the bytes are
    deterministic (sorted keys, one node or edge per line), so saved graphs diff cleanly in git.

    >>> graphscope.save(g, "or_gate.json")          # doctest: +SKIP
    PosixPath('or_gate.json')
    """
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
    backward: bool = False,
    example_targets: Any = None,
    loss_fn: Any = None,
) -> Graph:
    """Capture a model's graph and return it as an :class:`~graphscope.ir.Graph`.

    ``target`` is a path, as ``graphscope trace`` takes it: a ``model.py`` (imported, so it
    runs; it defines ``model`` and ``example_inputs``, or the function named by ``entry``), or
    a graph file (``.json``, ``.onnx``, ``.pb``/``.pbtxt``, a SavedModel, a TorchScript
    ``.pt``), read as data. Or ``target`` is a live model (an ``nn.Module``, a Keras model, a
    ``tf.function``) and ``example_inputs`` its input tuple. ``fw`` is ``torch``, ``tf``,
    ``tf1`` or ``onnx`` (guessed for a live model); ``method`` the capture method (torch:
    ``export`` by default, ``fx``, ``jit-trace``, ``jit-script``, ``dynamo``, ``eager``; tf:
    ``tf-function``, ``onnx``); ``name`` replaces the graph's name.

    ``backward=True`` captures a training step (torch: method ``eager``, the autograd graph, or
    ``export``, AOTAutograd's joint ATen graph): the forward pass,
    the loss ``loss_fn(output, *example_targets)`` (the output itself when it is a scalar) and
    the backward graph, whose nodes have ``phase="backward"`` and a ``grad_of``. A model file
    gives its own ``example_targets`` and ``loss_fn``; a live model takes them as arguments.

    >>> g = graphscope.trace("examples/or_gate_torch.py", fw="torch", method="jit-script")  # doctest: +SKIP
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())                 # doctest: +SKIP
    >>> graphscope.trace(model, (torch.randn(2, 3),), method="export")                       # doctest: +SKIP
    <Graph 'Sequential' torch/export: 6 nodes, 5 edges, 0 subgraphs>
    """
    from graphscope import loader, tracers

    if isinstance(target, (str, os.PathLike)):
        found = loader.load_target(target, fw=fw, entry=entry)
        if name:
            found.name = name
        return tracers.capture_target(found, method=method, backward=backward)
    if fw is None:
        fw = loader.guess_framework(target)
    if backward:
        return tracers.capture_backward(
            target,
            example_inputs,
            fw=fw,
            method=method,
            name=name or type(target).__name__,
            example_targets=example_targets,
            loss_fn=loss_fn,
            where=name or type(target).__name__,
        )
    return tracers.capture(target, example_inputs, fw=fw, method=method, name=name or type(target).__name__)


def step(
    target: Any,
    example_inputs: Any = None,
    *,
    fw: str | None = None,
    method: str | None = None,
    entry: str | None = None,
    keep: Any = (),
    train: bool = False,
    targets: Any = None,
    loss_fn: Any = None,
    optimizer: Any = None,
) -> Steps:
    """Run a model node by node and return its :class:`~graphscope.stepping.Steps`.

    ``train=True`` (implied by ``targets``, ``loss_fn`` or ``optimizer``) steps one PyTorch or
    TensorFlow (Keras) training step instead, as ``step --train``: forward, ``loss_fn(output, *targets)`` (the
    output itself when it is a scalar), backward, and the optimizer's update on copies; a model
    file gives its own ``example_targets``, ``loss_fn`` and ``optimizer``.

    ``target`` is a model file (as for :func:`trace`; a saved graph holds no weights, so it
    cannot be stepped) or a live model with its ``example_inputs``. ``method``: torch ``eager``
    (default), ``fx``, ``export``; tf ``tf-function``; tf1 ``tf1``. Each record summarises a
    node's outputs (shape, dtype, min/max/mean/std, NaN/Inf/zero counts); ``keep`` names nodes
    whose whole tensors are kept too (``steps.values``).

    The result walks like a debugger: ``steps.first_nonfinite`` (where a NaN/Inf was born,
    when ``born_here``), ``steps.seek(node_id)``, ``steps.back()``, ``steps.forward()``;
    ``steps.graph`` is the IR with each output's ``"stats"`` attached.

    >>> steps = graphscope.step("examples/nan_torch.py", fw="torch")   # doctest: +SKIP
    >>> steps                                                         # doctest: +SKIP
    <Steps of 'nan_torch': 11 records, first non-finite at 'log'>
    >>> steps.first_nonfinite.node, steps.first_nonfinite.born_here  # doctest: +SKIP
    ('log', True)
    """
    from graphscope import loader, stepping

    train = train or targets is not None or loss_fn is not None or optimizer is not None
    if isinstance(target, (str, os.PathLike)):
        found = loader.load_target(target, fw=fw, entry=entry)
    else:
        if fw is None:
            fw = loader.guess_framework(target)
        if not train:
            return stepping.step(
                target, example_inputs, fw=fw, method=method, name=type(target).__name__, keep=keep
            )
        from pathlib import Path as _Path

        found = loader.Target(_Path("<model>"), "python", fw=fw, name=type(target).__name__, model=target)
        found.example_inputs = (
            tuple(example_inputs) if isinstance(example_inputs, (list, tuple)) else (example_inputs,)
        )
    if not train:
        return stepping.step_target(found, method=method, keep=keep)
    if targets is not None:
        found.example_targets = tuple(targets) if isinstance(targets, (list, tuple)) else (targets,)
    found.loss_fn = loss_fn if loss_fn is not None else found.loss_fn
    found.optimizer = optimizer if optimizer is not None else found.optimizer
    return stepping.step_train_target(found, method=method)


def watch(
    model: Any,
    example_inputs: Any = None,
    *,
    steps: int,
    targets: Any = None,
    loss_fn: Any = None,
    optimizer: Any = None,
    batches: Any = None,
    fw: str | None = None,
) -> Any:
    """Train a PyTorch or Keras model for up to ``steps`` steps, as ``graphscope watch`` does, and return
    a ``Watch``: ``history`` (loss, gradient norms, non-finite counts per step),
    ``first_nonfinite_step`` (from 1, or None) and ``replay``, that step's ``Steps`` stepped in
    full from the state before it. ``model`` may be a model file (with ``fw="torch"|"tf"``) that
    defines ``optimizer`` (and optionally ``batches()``). Runs on copies: the model and the
    optimizer are left as they were."""
    from graphscope import loader, stepping

    if isinstance(model, (str, os.PathLike)):
        found = loader.load_target(model, fw=fw or "torch")
        return stepping.watcher(found.fw).watch_target(found, steps=steps)
    return stepping.watcher(fw or loader.guess_framework(model)).watch(
        model,
        example_inputs,
        steps=steps,
        name=type(model).__name__,
        example_targets=targets,
        loss_fn=loss_fn,
        optimizer=optimizer,
        batches=batches,
    )


def diff(a: Graph | PathLike, b: Graph | PathLike, *, ignore: Any = (), fw: str | None = None) -> Diff:
    """Match two graphs and return a :class:`~graphscope.diffing.Diff` of what changed.

    ``a`` and ``b`` are Graphs, saved ``.json`` files or model files (captured with ``fw``'s
    default method). ``ignore`` names canonical ops to leave out before matching (e.g.
    ``graphscope.ops.LAYOUT_OPS``). The result lists node ids: ``added`` (in b), ``removed``
    (in a), ``changed`` (``{"a", "b", "fields": {field: [in a, in b]}}``), ``matched`` pairs;
    ``identical`` is True when nothing structural changed; ``rollup()`` counts per scope.

    >>> d = graphscope.diff("examples/edit_v1_torch.py", "examples/edit_v2_torch.py", fw="torch")  # doctest: +SKIP
    >>> d                                                                                          # doctest: +SKIP
    <Diff 'edit_v1_torch' -> 'edit_v2_torch': 19 matched, 3 added, 0 removed, 4 changed>
    """
    from graphscope import diffing, ir

    graphs = [g if isinstance(g, ir.Graph) else trace(g, fw=fw) for g in (a, b)]
    return diffing.diff(graphs[0], graphs[1], ignore=ignore)


def browse(graph: Graph | PathLike, *, steps: Steps | None = None) -> None:
    """Open the TUI on a graph (or a saved .json), as ``graphscope tui`` does; returns on ``q``.

    Give ``steps`` (from :func:`step`) to browse the values too. Needs a terminal.

    >>> graphscope.browse(g)                                    # doctest: +SKIP
    """
    from graphscope import ir
    from graphscope.tui.app import GraphscopeApp

    g = graph if isinstance(graph, ir.Graph) else ir.load(graph)
    GraphscopeApp(g, steps=steps).run()


def render(graph: Graph | PathLike, output: PathLike, **options: Any) -> Path:
    """Draw ``graph`` (a Graph or a saved .json) to an SVG file with Graphviz; return its path.

    Options, as ``graphscope render`` has them: ``collapse`` (draw each scope at this depth as
    one node), ``highlight`` (node ids to colour), ``show_params`` (weights as nodes),
    ``legend`` (default True), ``timeout`` (seconds for Graphviz, default 60), ``quiet`` (no
    notice on stderr when a big graph is collapsed automatically). Without Graphviz's ``dot``
    it raises ``GraphscopeError`` saying how to install it.

    >>> graphscope.render(g, "or_gate.svg", highlight=["linear"])   # doctest: +SKIP
    PosixPath('or_gate.svg')
    """
    from graphscope import ir
    from graphscope.rendering import svg

    g = graph if isinstance(graph, ir.Graph) else ir.load(graph)
    return svg.render(g, output, **options)
