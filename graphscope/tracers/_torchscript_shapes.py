"""Shapes and dtypes of a scripted graph's tensors, observed by running it once, for ``torch_jit``.

``torch.jit.script`` types every tensor as plain ``Tensor``: no shape, no dtype. TorchScript's
legacy shape propagation (``_jit_pass_complete_shape_analysis``) leaves a module's graph
untyped (its weights come through ``prim::GetAttr``, which it cannot see into), and lowering
the module's graph to plain inputs (``_jit_pass_lower_graph``) refuses common attributes (a
BatchNorm's ``training`` flag). So a copy of the inlined graph gets, after each node with a
tensor output, a call to a probe operator that notes the tensor's shape and dtype, and the copy
is run once on the example inputs, without graph optimisations (nothing fused, nothing moved).
A value is typed only when it was seen: a branch not taken stays unknown; a value seen with
several shapes (a loop's body, once per iteration) keeps the dims they share.

The model is run as capture's other methods run it: under ``no_grad``, its buffers and the RNG
restored afterwards (``_torch_common.model_left_untouched``).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

from graphscope.tracers import _torch_common as common

_PROBE = "graphscope_jit::probe"
_seen: dict[str, set[tuple[tuple[int, ...], str]]] | None = None


@functools.cache
def _register_probe() -> None:
    import torch

    @torch.library.custom_op(_PROBE, mutates_args=(), schema="(Tensor x, str name) -> ()")
    def probe(x: Any, name: str) -> None:
        if _seen is not None:
            _seen[name].add((tuple(x.shape), common.dtype_name(x.dtype)))


def observed(scripted: Any, ts_graph: Any, example_inputs: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
    """``{value debug name: {shape, dtype}}`` for the tensors of ``ts_graph`` (the inlined graph
    of ``scripted``, already read: probes are added to it) that one run on ``example_inputs``
    produced. Empty when the run fails: the graph then keeps the types TorchScript gave it."""
    global _seen
    import torch

    try:  # any failure here leaves the graph as TorchScript typed it: never the capture's
        _register_probe()
        # The probes go into the graph that was read, after reading it: a copy renames values
        # (Graph.copy() numbers them anew), and a probe must name the value it was read as.
        # ``inlined_graph`` is a new graph at each access: the model's own is not touched.
        graph = ts_graph
        _add_probes(graph, graph)
        fn = torch._C._create_function_from_graph("graphscope_observed", graph)
    except Exception:
        return {}
    args = _with_defaults(scripted, list(example_inputs))
    if args is None:
        return {}
    _seen = defaultdict(set)
    try:
        with common.model_left_untouched(scripted), torch.no_grad(), torch.jit.optimized_execution(False):
            fn(scripted._c, *args)
    except Exception:
        return {}
    finally:
        seen, _seen = _seen, None
    return {name: _merged(shapes) for name, shapes in seen.items()}


def _with_defaults(scripted: Any, args: list[Any]) -> list[Any] | None:
    """The example inputs, and forward's defaults for the arguments after them (a function made
    from a graph has none of its own: ``nn.Transformer``'s masks)."""
    try:
        params = scripted.forward.schema.arguments[1:]  # after self
    except Exception:
        return None
    for param in params[len(args) :]:
        if not param.has_default_value():
            return None
        args.append(param.default_value)
    return args


def _add_probes(graph: Any, block: Any) -> None:
    for node in list(block.nodes()):
        for inner in node.blocks():
            _add_probes(graph, inner)
        if node.kind() in ("prim::Constant", "prim::Uninitialized"):  # no value (a raise path)
            continue
        after = node
        for value in node.outputs():
            if value.type().kind() != "TensorType":
                continue
            name = graph.insertConstant(value.debugName())
            probe = graph.create(_PROBE, [value, name], 0)
            probe.insertAfter(after)
            name.node().moveBefore(probe)
            after = probe


def _merged(seen: set[tuple[tuple[int, ...], str]]) -> dict[str, Any]:
    """One shape when the value always had it; else the dims all runs agree on (others null)."""
    shapes = {shape for shape, _ in seen}
    dtypes = {dtype for _, dtype in seen}
    ranks = {len(s) for s in shapes}
    shape: list[Any] | None = None
    if len(ranks) == 1:
        shape = [dims.pop() if len(dims := set(d)) == 1 else None for d in zip(*shapes)]
    return {"shape": shape, "dtype": dtypes.pop() if len(dtypes) == 1 else None}
