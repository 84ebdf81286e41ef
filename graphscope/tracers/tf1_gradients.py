"""The backward graph of a TF1 graph that holds its own: ``trace --fw tf1 --backward``.

A TF1 training graph is built whole before it runs: ``tf.compat.v1.gradients(loss, ...)`` (or an
optimizer's ``minimize``) adds the gradient ops to it, each under ``gradients/<op>_grad/``,
where ``<op>`` is the name of the forward op it differentiates; ``minimize`` then adds the
update ops under the optimizer's name (``GradientDescent/update_dense/kernel/...``). The graph
is captured as ``--fw tf1`` captures any, and then:

- every op under ``gradients/`` (or ``gradients_1/`` ... for a second call) is ``backward``;
  its ``grad_of`` is the forward op its ``<op>_grad`` scope names, and it takes that op's scope
  (and source line, when it has none of its own). The ops of ``gradients/`` itself (the seed
  ``Fill`` of ones, the ``AddN`` that sums the gradients of a value used twice) are bookkeeping,
  ``grad_of`` null;
- every op under the scope of a parameter update (an ``Apply*`` / ``ResourceApply*`` op's
  top-level scope: the optimizer's name) is ``optimizer``.

Nothing is added to the graph: one without gradient ops is refused.
"""

from __future__ import annotations

import re
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.tracers import tf1

__all__ = ["capture"]

_GRADIENTS = re.compile(r"^gradients(_\d+)?/")


def capture(
    model: Any,
    example_inputs: Any = None,
    *,
    name: str,
    method: str = "tf1",
    example_targets: Any = None,
    loss_fn: Any = None,
    where: str = "the model",
) -> ir.Graph:
    graph = tf1.capture(model, example_inputs, name=name, method=method)
    if not any(_GRADIENTS.match(n["name"]) for n in graph.nodes()):
        raise GraphscopeError(
            f"{where}: the TF1 graph holds no gradient ops (gradients/...): build them into it with "
            "tf.compat.v1.gradients(loss, variables) or an optimizer's minimize(loss)"
        )
    _mark_backward(graph)
    _mark_optimizer(graph)
    return graph


def forward_name(op_name: str) -> str | None:
    """``gradients/dense/MatMul_grad/MatMul_1`` -> ``dense/MatMul``; None for the ops of
    ``gradients/`` itself (``gradients/Fill``, ``gradients/AddN``).

    >>> forward_name("gradients_1/loss/Mean_grad/Tile")
    'loss/Mean'
    """
    parts = _GRADIENTS.sub("", op_name).split("/")
    for i, part in enumerate(parts[:-1]):
        if part.endswith("_grad"):
            return "/".join([*parts[:i], part.removesuffix("_grad")])
    return None


def _mark_backward(graph: ir.Graph) -> None:
    for node in graph.nodes():
        if not _GRADIENTS.match(node["name"]):
            continue
        node["phase"] = "backward"
        forward = forward_name(node["name"])
        if forward is None or forward not in graph:
            node["scope"] = []  # the bookkeeping of gradients/ itself
            continue
        fwd = graph.node(forward)
        node["grad_of"] = forward
        node["scope"] = list(fwd["scope"])
        if node["source"] is None:
            node["source"] = fwd["source"]


def _mark_optimizer(graph: ir.Graph) -> None:
    scopes = {
        n["name"].split("/")[0]
        for n in graph.nodes()
        if n["op"].startswith(("Apply", "ResourceApply")) and "/" in n["name"]
    }
    for node in graph.nodes():
        if node["phase"] == "forward" and node["name"].split("/")[0] in scopes:
            node["phase"] = "optimizer"
