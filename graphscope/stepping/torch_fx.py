"""PyTorch through ``torch.fx.Interpreter``: step the ``fx`` and ``export`` captures node by node.

The records' node ids are the capture's own, so a stepped graph is the same IR that
``graphscope trace --method fx|export`` writes, with values on it.
"""

from __future__ import annotations

from typing import Any

from graphscope.stepping import numerics
from graphscope.stepping.records import InputKeeper, Record, Steps
from graphscope.tracers import _torch_common as common


class _Collector:
    """Summaries of each node's real value, in the order the interpreter ran them."""

    def __init__(self, skip_kinds: Any = None, keep: frozenset[str] = frozenset()) -> None:
        self.keep = keep
        self.kept: dict[str, list[Any]] = {}
        self.rows: list[tuple[str, list[dict[str, Any] | None], Any]] = []
        # the non-finite nodes' inputs (InputKeeper): names, summaries, kinds of those not in the graph
        self.keeps_inputs = InputKeeper()
        self.skip = skip_kinds or (lambda node: node.op in ("get_attr", "output"))

    def __call__(self, node: Any, result: Any, interp: Any) -> None:
        if self.skip(node):
            return
        summaries = _summaries(result)
        if node.name in self.keep:
            self.kept[node.name] = _tensors(result)
        self.rows.append((node.name, summaries, None))
        if self.keeps_inputs(summaries):
            # Inputs are still in the interpreter's environment: it frees them after this call.
            names = [a.name for a in node.all_input_nodes]
            values = [interp.env.get(a) for a in node.all_input_nodes]
            kinds: dict[str, str] = {}
            if node.op == "call_module":
                # A leaf module's weights are inputs too, though no edge of the graph shows them.
                module = interp.module.get_submodule(node.target)
                for pname, tensor in [*module.named_parameters(), *module.named_buffers()]:
                    names.append(f"{node.target}.{pname}")
                    values.append(tensor)
                    kinds[names[-1]] = "param"
            culprit = (names, [_first(_summaries(v)) for v in values], kinds)
            self.rows[-1] = (node.name, summaries, culprit)

    def steps(self, graph: Any) -> Steps:
        records = []
        for i, (node_id, summaries, culprit) in enumerate(self.rows):
            node = graph.node(node_id)
            rec = Record(i, node_id, node["op"], node["scope"], node["source"], summaries)
            if culprit is not None:
                rec.input_nodes, rec.inputs, rec.input_kinds = culprit
            records.append(rec)
        steps = Steps(graph, records)
        steps.values = self.kept
        return steps


def _summaries(value: Any) -> list[dict[str, Any] | None]:
    import torch
    from torch.utils._pytree import tree_leaves

    if isinstance(value, torch.Tensor):
        return [numerics.summarize_torch(value)]
    return [numerics.summarize_torch(v) if isinstance(v, torch.Tensor) else None for v in tree_leaves(value)]


def _tensors(value: Any) -> list[Any]:
    import torch
    from torch.utils._pytree import tree_leaves

    leaves = [value] if isinstance(value, torch.Tensor) else tree_leaves(value)
    return [v.detach().clone() if isinstance(v, torch.Tensor) else None for v in leaves]


def _first(summaries: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    return next((s for s in summaries if s is not None), None)


def step(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    method: str = "fx",
    signature: Any = None,
    keep: frozenset[str] = frozenset(),
) -> Steps:
    torch = common.require_torch()
    from torch.fx import Interpreter

    if method == "fx":
        from graphscope.tracers import torch_fx

        collector = _Collector(keep=keep)
        _, graph = torch_fx.capture_module(model, tuple(example_inputs), name=name, on_value=collector)
        return collector.steps(graph)

    from graphscope.tracers import torch_export

    ep = torch_export.export_program(model, tuple(example_inputs))
    graph = torch_export.to_ir(ep, tuple(example_inputs), name=name)
    lifted = _lifted_arguments(ep, example_inputs)
    roles = {n["id"]: n["kind"] for n in graph.nodes()}
    collector = _Collector(
        lambda node: node.op == "output" or roles.get(node.name) in ("param", "const"), keep=keep
    )

    class Stepper(Interpreter):
        def run_node(self, n: Any) -> Any:
            result = super().run_node(n)
            collector(n, result, self)
            return result

    module = model if isinstance(model, torch.nn.Module) else None
    with common.model_left_untouched(module or torch.nn.Module()), common.quiet_torch_logs(), torch.no_grad():
        try:
            Stepper(ep.graph_module).run(*lifted)
        except Exception as exc:
            from graphscope.stepping.torch_eager import run_error

            raise run_error(exc) from None
    return collector.steps(graph)


def _lifted_arguments(ep: Any, example_inputs: Any) -> list[Any]:
    """The exported graph's placeholders' values: parameters, buffers, constants and the inputs."""
    from torch.utils._pytree import tree_leaves

    user = iter(tree_leaves(tuple(example_inputs)))
    args = []
    for spec in ep.graph_signature.input_specs:
        kind = spec.kind.name
        if kind == "USER_INPUT":
            args.append(next(user))
        elif spec.target in ep.state_dict:
            args.append(ep.state_dict[spec.target])
        else:
            args.append(ep.constants[spec.target])
    return args
