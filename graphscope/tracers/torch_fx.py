"""``torch.fx.symbolic_trace`` + shape propagation: the Python-level graph of an nn.Module."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from graphscope import ir
from graphscope.tracers import _torch_common as common


def capture(model: Any, example_inputs: tuple[Any, ...], *, name: str, method: str = "fx") -> ir.Graph:
    return capture_module(model, example_inputs, name=name)[1]


@functools.cache
def _source_tracer_class() -> Any:
    import torch.fx

    class SourceTracer(torch.fx.Tracer):
        """symbolic_trace that notes each node's innermost user source line as it is created.

        fx's own ``record_stack_traces`` formats the whole Python stack for every node; that
        was half of the symbolic trace of a ResNet-50 (20 of 40 ms) for the one line kept."""

        def create_proxy(self, kind: str, *args: Any, **kwargs: Any) -> Any:
            proxy = super().create_proxy(kind, *args, **kwargs)
            if kind not in ("placeholder", "output"):  # made by the tracer, not by a line of forward()
                proxy.node.meta["graphscope_source"] = common.innermost_user_frame(sys._getframe(1))
            return proxy

    return SourceTracer


def capture_module(
    model: Any,
    example_inputs: tuple[Any, ...],
    *,
    name: str,
    on_value: Callable[[Any, Any, Any], None] | None = None,
) -> tuple[Any, ir.Graph]:
    """Trace ``model`` symbolically and run the graph once on ``example_inputs``.

    Returns the GraphModule and its IR. ``on_value(node, result, args)`` sees every node's
    real value as the run produces it (the stepper summarises them there).
    """
    common.require_torch()
    common.check_module(model, example_inputs, "fx")
    import torch
    import torch.fx

    class ShapeRecorder(torch.fx.Interpreter):
        """Run the graph once and keep every node's result's shape and dtype (not the value).

        Unlike fx's ShapeProp, this also records non-tensor results (sizes, ints, tuples).
        """

        def run_node(self, n: torch.fx.Node) -> Any:
            result = super().run_node(n)
            n.meta["graphscope_outputs"] = common.tensor_outputs(result)
            if on_value is not None:
                on_value(n, result, self)
            return result

    with common.model_left_untouched(model), common.quiet_torch_logs():
        try:
            fx_graph = _source_tracer_class()().trace(model)
            root = model if isinstance(model, torch.nn.Module) else torch.nn.Module()
            gm = torch.fx.GraphModule(root, fx_graph, name)
        except Exception as exc:
            raise common.capture_error("torch.fx.symbolic_trace", exc) from None
        try:
            with torch.no_grad():
                ShapeRecorder(gm).run(*example_inputs)
        except Exception as exc:
            raise common.capture_error("fx shape propagation", exc) from None

    graph = ir.Graph(
        name,
        framework="torch",
        capture="fx",
        framework_version=torch.__version__,
        signature=common.signature_of(example_inputs),
    )
    common.convert_fx_graph(
        gm, graph, value_of=lambda n: n, outputs_of=lambda n: n.meta.get("graphscope_outputs")
    )
    return gm, graph
